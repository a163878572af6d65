# Kizuna — top-level entry points.
#   make          configure (once) and build into build/ (binaries in build/bin/)
#   make deps     install the Debian build/test dependencies (deploy/install-deps)
#   make demo     deps + build + 5-node 3-region demo cluster (deploy/demo)
#   make check    deps + build + ASan/UBSan unit tests (build-asan/) + all tests (build/)
#                 + 30 s of fuzzing per driver (build-fuzz/)
#   make fuzz     deps + 60 s of fuzzing per libFuzzer driver (deploy/run-fuzz, build-fuzz/)
#   make chaos    deps + build + every kizuna-chaos scenario on a 5-node 3-region
#                 cluster, 60 s each (deploy/chaos all; report in build/chaos/)
#   make bench    deps + build + Kizuna against etcd on this machine, 3 nodes each:
#                 write, linearizable and stale reads, peak RSS, failover; then a
#                 1,000,000-row CSV import into a fresh Kizuna cluster (deploy/bench;
#                 apt-gets etcd-server if missing; build/bench/results.json). Not in check.
#   make soak     deps + build + 3 nodes under a steady update load for SOAK_MINUTES (20):
#                 raft log and RocksDB disk use sampled, "bounded" or "GROWING" (deploy/soak;
#                 build/soak/samples.csv, results.json). Not in check.
#   make search-recall  deps + build + recall@5 of the name search on tests/search/ (one
#                 node; deploy/search-recall; build/search-recall/results.tsv). Not in check.
#   make clean    remove build/, build-asan/ and build-fuzz/ (a cluster's data in var/ is kept)

SHELL := /bin/bash
KZ_ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
JOBS ?= 2

# Prerequisites run in the order written (deps before the build), even with -j.
.NOTPARALLEL:
.PHONY: all deps demo check fuzz chaos bench snapshot-bench soak search-recall clean

all:
	@test -f $(KZ_ROOT)/build/CMakeCache.txt || \
	  cmake -S $(KZ_ROOT) -B $(KZ_ROOT)/build -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(KZ_ROOT)/build -j$(JOBS)

deps:
	@$(KZ_ROOT)/deploy/install-deps

demo: deps all
	$(KZ_ROOT)/deploy/demo

check: deps all
	@JOBS=$(JOBS) $(KZ_ROOT)/deploy/run-tests

fuzz: deps
	@JOBS=$(JOBS) $(KZ_ROOT)/deploy/run-fuzz 60

chaos: deps all
	$(KZ_ROOT)/deploy/chaos all

bench: deps all
	$(KZ_ROOT)/deploy/bench

snapshot-bench: deps all
	$(KZ_ROOT)/deploy/snapshot-bench

soak: deps all
	$(KZ_ROOT)/deploy/soak

search-recall: deps all
	$(KZ_ROOT)/deploy/search-recall

clean:
	rm -rf $(KZ_ROOT)/build $(KZ_ROOT)/build-asan $(KZ_ROOT)/build-fuzz
