#!/usr/bin/env bash
# A multi-host rehearsal (docs/OPERATIONS.md): five nodes, each in a network
# namespace of its own with a non-loopback address, in three regions
# (deploy/netns-cluster), through the failover scenario of the loopback
# tests and a region cut by nft.
#
#   tests/deploy/test_netns.sh SOURCE_DIR BUILD_DIR   (CTest: integration_netns)
#
#  1. `deploy/netns-cluster up`: five nodes answer /readyz and elect a leader;
#  2. victims registered with `kizuna victim add` from node 1's namespace;
#  3. kill -9 of the leader: a write succeeds again within 30 s, every
#     surviving node serves every registered record (linearizable reads,
#     each node asked alone), and the killed node, started again, catches up
#     (its applied index reaches the leader's, it serves every record);
#  4. `deploy/netns-cluster cut` of the leader's region: the other two
#     regions elect a leader among themselves and take writes within 30 s,
#     while a write through a node of the cut region does not succeed;
#  5. `heal`: the cut region catches up (every node at the same applied
#     index) and serves every record, including those written during the cut.
# Everything runs through the kizuna CLI and the HTTP API (curl), from inside
# the namespaces: no log line is read. `down` runs on every exit and leaves no
# namespace and no node behind. SKIP (exit 0) where network namespaces cannot
# be made (not root, no nft, `ip netns add` refused). Exit 0 when every check
# passed.
set -uo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2; exit 2; }
SRC=$(cd "$1" && pwd -P) || exit 2
BUILD=$(cd "$2" && pwd -P) || exit 2
NC=$SRC/deploy/netns-cluster
KIZUNA=$BUILD/bin/kizuna
DEADLINE=30          # seconds for each failover / catch-up
POLL=0.2

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'ok    %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
skip() { printf 'SKIP  %s\n' "$*"; exit 0; }
# abort WHY: a failure after which the rest cannot run.
abort() { fail "$*"; exit 1; }

now_ms() { local t=${EPOCHREALTIME/[.,]/}; printf '%s' "$((t / 1000))"; }
secs_since() { local d=$(($(now_ms) - $1)); printf '%d.%01d' "$((d / 1000))" "$((d % 1000 / 100))"; }

[[ -x $KIZUNA && -x $BUILD/bin/kizunad ]] || { echo "no $KIZUNA or kizunad: build first" >&2; exit 1; }

# --- can this machine make network namespaces? --------------------------
[[ $(id -u) -eq 0 ]] || skip "network namespaces need root (running as uid $(id -u))"
for t in ip nft curl jq openssl; do
  command -v "$t" >/dev/null 2>&1 || skip "$t not found (deploy/install-deps installs it)"
done
PROBE=kz-probe-$$
if ! err=$(ip netns add "$PROBE" 2>&1); then
  skip "ip netns add failed: $err (a container without CAP_SYS_ADMIN?)"
fi
if ! err=$(ip netns exec "$PROBE" nft add table inet kz_probe 2>&1); then
  ip netns del "$PROBE" 2>/dev/null
  skip "nft inside a network namespace failed: $err"
fi
ip netns del "$PROBE"
if ip netns list | grep -Eq '^kz-(r|n[1-5])( |$)'; then
  echo "FAIL  namespaces of another netns cluster exist: $(ip netns list | grep -E '^kz-' | tr '\n' ' ')" 
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kz-netns.XXXXXX") || exit 1
cleanup() {
  local rc=$?
  "$NC" down "$WORK" >"$WORK/down.log" 2>&1 || { echo "down failed:"; cat "$WORK/down.log"; rc=1; }
  local left
  left=$(ip netns list | grep -E '^kz-(r|n[1-5])( |$)' | tr '\n' ' ')
  if [[ -n $left ]]; then echo "FAIL  down left namespaces: $left"; rc=1; fi
  if [[ $rc -eq 0 && $FAILED -eq 0 ]]; then
    rm -rf "$WORK"
  else
    echo "logs kept in $WORK (node<i>/kizunad.log)"
  fi
  exit "$rc"
}
trap cleanup EXIT

# --- helpers ------------------------------------------------------------
ENDPOINTS=$WORK/endpoints
url_of() { printf 'https://10.77.0.%s:7400' "$((10 + $1))"; }
region_of() { case $1 in 1|2) echo tokyo ;; 3|4) echo osaka ;; 5) echo sapporo ;; esac; }
nodes_of() { case $1 in tokyo) echo 1 2 ;; osaka) echo 3 4 ;; sapporo) echo 5 ;; esac; }

# kz NS ROLE TIMEOUT ENDPOINTS ARGS...: the CLI in node NS's namespace.
kz() {
  local ns=$1 role=$2 timeout=$3 ep=$4; shift 4
  "$NC" exec "$ns" "$KIZUNA" --endpoints "$ep" --cacert "$WORK/pki/ca.pem" \
    --cert "$WORK/pki/$role.pem" --key "$WORK/pki/$role.key" \
    --purpose 'netns rehearsal' --timeout "$timeout" --json "$@"
}

# api NS NODE PATH: GET with the operator certificate from namespace NS
# (a node's number, or r for the router) to node NODE; prints the body.
api() {
  local ns=kz-n$1; [[ $1 == r ]] && ns=kz-r
  ip netns exec "$ns" curl -sf --max-time 5 --connect-timeout 1 --cacert "$WORK/pki/ca.pem" \
    --cert "$WORK/pki/operator.pem" --key "$WORK/pki/operator.key" "$(url_of "$2")$3"
}

# metric NODE NAME: a gauge of NODE's GET /metrics (its own view, answered
# at once also when its peers are cut off; GET /v1/cluster waits for them).
metric() {
  local v
  v=$(api r "$1" /metrics 2>/dev/null | awk -v m="$2" '$1 == m { print $2; exit }')
  [[ $v =~ ^[0-9]+$ ]] && printf '%s' "$v"
}

# leader_from NODE: the leader NODE knows (0: none, or no answer).
leader_from() { metric "$1" kizuna_raft_leader_id || printf 0; }

# applied NODE: NODE's applied index (-1: no answer).
applied() { metric "$1" kizuna_raft_applied_index || printf -- -1; }

IDS=()
SEQ=0
# add_victim NS TIMEOUT ENDPOINTS: one registration; appends its id to IDS.
add_victim() {
  local out id
  SEQ=$((SEQ + 1))
  out=$(kz "$1" registrar "$2" "$3" victim add --name "避難 花子$SEQ" --name-kana "ヒナン ハナコ" \
          --dob "1980-04-$(printf '%02d' $((SEQ % 28 + 1)))" --sex female --status safe 2>/dev/null) || return 1
  id=$(jq -r '.id // empty' <<<"$out" 2>/dev/null)
  [[ -n $id ]] || return 1
  IDS+=("$id")
}

# reads_all NODE: every id in IDS, read from NODE alone (linearizable) in
# node NODE's own namespace; prints the ids it did not serve.
reads_missing() {
  local id missing=()
  for id in "${IDS[@]}"; do
    kz "$1" caseworker 10 "$(url_of "$1")" victim get "$id" 2>/dev/null |
      jq -e --arg id "$id" '.id == $id' >/dev/null 2>&1 || missing+=("$id")
  done
  printf '%s' "${missing[*]}"
}

# wait_for SECONDS CMD...: polls CMD until it succeeds; fails at the deadline.
wait_for() {
  local deadline=$(($(now_ms) + $1 * 1000)); shift
  until "$@"; do
    [[ $(now_ms) -lt $deadline ]] || return 1
    sleep "$POLL"
  done
}

# --- 1. up ----------------------------------------------------------------
t0=$(now_ms)
if "$NC" up "$BUILD" "$WORK" >"$WORK/up.log" 2>&1; then
  pass "netns-cluster up: 5 namespaces, /readyz 200 on all 5 nodes, a leader ($(secs_since "$t0") s)"
else
  cat "$WORK/up.log"
  abort "netns-cluster up"
fi
addrs=""
for i in 1 2 3 4 5; do
  addrs+="$(ip -n "kz-n$i" -4 -o addr show dev eth0 | awk '{ print $4 }') "
done
if [[ $addrs == "10.77.0.11/24 10.77.0.12/24 10.77.0.13/24 10.77.0.14/24 10.77.0.15/24 " ]]; then
  pass "nodes on non-loopback addresses: $addrs"
else
  fail "node addresses: $addrs"
fi
routes=$(for i in 1 2 3 4 5; do ip -n "kz-n$i" route show default; done; ip -n kz-r route show default)
if [[ -z $routes ]]; then pass "no default route in any namespace"; else fail "default routes: $routes"; fi

# --- 2. registrations -------------------------------------------------------
for k in 1 2 3 4 5; do
  wait_for 20 add_victim 1 5 "$ENDPOINTS" || abort "victim add $k from kz-n1"
done
pass "5 victims registered with kizuna victim add from kz-n1"

# --- 3. kill -9 of the leader -----------------------------------------------
leader_known() { LEADER=$(leader_from 1); [[ $LEADER -ne 0 ]]; }
wait_for 10 leader_known || abort "no leader known to node 1"
OLD=$LEADER
"$NC" kill "$OLD" "$WORK" >/dev/null || abort "netns-cluster kill $OLD"
t_kill=$(now_ms)
SURV=()
for i in 1 2 3 4 5; do [[ $i -eq $OLD ]] || SURV+=("$i"); done
# Writes from a surviving node's namespace, through the surviving nodes.
surv_urls=$(for i in "${SURV[@]}"; do url_of "$i"; printf ','; done); surv_urls=${surv_urls%,}
if wait_for "$DEADLINE" add_victim "${SURV[0]}" 3 "$surv_urls"; then
  FAILOVER_S=$(secs_since "$t_kill")
  pass "leader node $OLD ($(region_of "$OLD")) killed -9: a write succeeded again after $FAILOVER_S s"
else
  abort "no write succeeded within ${DEADLINE}s of killing the leader (node $OLD)"
fi
new_leader() { LEADER=$(leader_from "${SURV[0]}"); [[ $LEADER -ne 0 && $LEADER -ne $OLD ]]; }
if wait_for 10 new_leader; then pass "new leader: node $LEADER ($(region_of "$LEADER"))"; else fail "no new leader"; fi
for i in "${SURV[@]}"; do
  miss=$(reads_missing "$i")
  if [[ -z $miss ]]; then
    pass "node $i serves all ${#IDS[@]} records (linearizable reads, node $i alone)"
  else
    fail "node $i does not serve: $miss"
  fi
done

"$NC" start "$OLD" "$WORK" >/dev/null || abort "netns-cluster start $OLD"
t_start=$(now_ms)
target=$(applied "$LEADER")
caught_up() { local a; a=$(applied "$OLD"); [[ $a -ge $target && $target -gt 0 ]]; }
if wait_for "$DEADLINE" caught_up; then
  pass "node $OLD restarted: applied index $(applied "$OLD") >= leader's $target after $(secs_since "$t_start") s"
else
  fail "node $OLD restarted: applied index $(applied "$OLD") < leader's $target after ${DEADLINE}s"
fi
miss=$(reads_missing "$OLD")
if [[ -z $miss ]]; then pass "node $OLD serves all ${#IDS[@]} records after its restart"; else fail "node $OLD does not serve: $miss"; fi

# --- 4. cut the leader's region ----------------------------------------------
wait_for 10 leader_known || abort "no leader before the cut"
CUT=$(region_of "$LEADER")
read -r -a CUT_NODES <<<"$(nodes_of "$CUT")"
REST=()
for i in 1 2 3 4 5; do [[ $(region_of "$i") == "$CUT" ]] || REST+=("$i"); done
"$NC" cut "$CUT" >/dev/null || abort "netns-cluster cut $CUT"
t_cut=$(now_ms)
rest_leader() {
  LEADER=$(leader_from "${REST[0]}")
  [[ $LEADER -ne 0 && $(region_of "$LEADER") != "$CUT" ]]
}
if wait_for "$DEADLINE" rest_leader; then
  CUT_LEADER_S=$(secs_since "$t_cut")
  pass "region $CUT (leader's, nodes ${CUT_NODES[*]}) cut by nft: node $LEADER ($(region_of "$LEADER")) leads after $CUT_LEADER_S s"
else
  abort "no leader outside $CUT within ${DEADLINE}s of the cut"
fi
rest_urls=$(for i in "${REST[@]}"; do url_of "$i"; printf ','; done); rest_urls=${rest_urls%,}
if wait_for "$DEADLINE" add_victim "${REST[0]}" 3 "$rest_urls"; then
  CUT_WRITE_S=$(secs_since "$t_cut")
  pass "the other regions take writes during the cut: first after $CUT_WRITE_S s"
else
  abort "no write through ${REST[*]} within ${DEADLINE}s of the cut"
fi
for k in 1 2; do add_victim "${REST[$k]}" 5 "$rest_urls" || fail "write $k during the cut"; done
# A write through a node of the cut region alone finds no majority.
n_before=${#IDS[@]}
if add_victim "${CUT_NODES[0]}" 4 "$(url_of "${CUT_NODES[0]}")"; then
  fail "a write through node ${CUT_NODES[0]} of the cut region succeeded"
else
  pass "a write through node ${CUT_NODES[0]} of the cut region does not succeed"
fi
[[ ${#IDS[@]} -eq $n_before ]] || IDS=("${IDS[@]:0:$n_before}")
# The cut region is really unreachable from the others (TCP to its raft port;
# a connection that succeeds returns at once, a dropped SYN until timeout).
if ip netns exec "kz-n${REST[0]}" timeout 2 bash -c \
     "exec 3<>/dev/tcp/10.77.0.$((10 + CUT_NODES[0]))/7401" 2>/dev/null; then
  fail "node ${REST[0]} still reaches node ${CUT_NODES[0]}'s raft port during the cut"
else
  pass "node ${REST[0]} cannot reach node ${CUT_NODES[0]}'s raft port during the cut"
fi

# --- 5. heal -------------------------------------------------------------------
# What the cut region missed: the majority's index against its own.
target=$(applied "$LEADER")
behind=$(for i in "${CUT_NODES[@]}"; do printf 'node %s at %s, ' "$i" "$(applied "$i")"; done)
"$NC" heal "$CUT" >/dev/null || abort "netns-cluster heal $CUT"
t_heal=$(now_ms)
same_index() {
  local i a first=""
  for i in 1 2 3 4 5; do
    a=$(applied "$i")
    [[ $a -ge $target ]] || return 1
    [[ -n $first ]] || first=$a
    [[ $a -eq $first ]] || return 1
  done
  INDEX=$first
}
if [[ $target -gt 0 ]] && wait_for "$DEADLINE" same_index; then
  pass "healed: all 5 nodes at applied index $INDEX after $(secs_since "$t_heal") s (before: ${behind}leader $target)"
else
  fail "healed: applied indexes differ after ${DEADLINE}s: $(for i in 1 2 3 4 5; do printf '%s=%s ' "$i" "$(applied "$i")"; done)"
fi
for i in "${CUT_NODES[@]}"; do
  miss=$(reads_missing "$i")
  if [[ -z $miss ]]; then
    pass "node $i (cut region $CUT) serves all ${#IDS[@]} records after the heal"
  else
    fail "node $i (cut region $CUT) does not serve: $miss"
  fi
done

printf '\ntimings: failover (kill -9 of the leader to the first accepted write) %s s; region cut (cut to a leader outside it) %s s, (to the first accepted write) %s s\n' \
  "${FAILOVER_S:-?}" "${CUT_LEADER_S:-?}" "${CUT_WRITE_S:-?}"
printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
[[ $FAILED -eq 0 ]]
