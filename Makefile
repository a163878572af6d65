# Kizuna — top-level entry points.
#   make          configure (once) and build into build/ (binaries in build/bin/)
#   make deps     install the Debian build/test dependencies (deploy/install-deps)
#   make demo     deps + build + 5-node 3-region demo cluster (deploy/demo)
#   make check    deps + build + ASan/UBSan unit tests (build-asan/) + all tests (build/)
#   make clean    remove build/ and build-asan/ (a cluster's data in var/ is kept)

SHELL := /bin/bash
KZ_ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
JOBS ?= 2

# Prerequisites run in the order written (deps before the build), even with -j.
.NOTPARALLEL:
.PHONY: all deps demo check clean

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

clean:
	rm -rf $(KZ_ROOT)/build $(KZ_ROOT)/build-asan
