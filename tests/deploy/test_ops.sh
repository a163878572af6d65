#!/usr/bin/env bash
# The operating procedures of docs/OPERATIONS.md, run as written.
#
#   tests/deploy/test_ops.sh SOURCE_DIR BUILD_DIR   (CTest: integration_ops)
#
# One cluster on a random loopback network 127.x.y.0, each node a kizunad
# of BUILD_DIR/bin with the configuration of deploy/examples/node<N>.conf
# (documentation addresses, /etc/kizuna and /var/lib/kizuna mapped to this
# machine: see map()), through the sections of OPERATIONS.md in order:
#
#  0. nodes 1-4 (tokyo 2, osaka 2) up; the CA's records for `openssl ca`
#     and its first CRL ("Issuing certificates from the cluster CA");
#  1. "Adding a region": node 5 in sapporo (certificate, added with its
#     addresses into the replicated address book, standby, caught up,
#     voter), and the region check refusing to remove it again;
#  2. "Replacing a failed node": node 1 killed and its data deleted,
#     removed (refused without --force), node 6 in its place (a node line
#     in every file, rolling restart);
#  3. "Rotating certificates": node 2's certificate renewed and reloaded
#     (the API then shows the new serial), a revoked client certificate
#     refused on every node after a CRL update and a reload (API or SIGHUP);
#  4. "Reading the metrics during a region loss": osaka killed, the leader's
#     /metrics shows the lost peers' lag growing and their match index
#     frozen; osaka back, the lag drains; tokyo (the leader's region)
#     killed, the survivors' term and leader id move on;
#  5. "Disk use under a steady write load": kizuna cluster snapshot, and
#     the checkpoint it names on disk.
#
# Every command a **Tested** block of those sections shows goes through
# run(): it first checks that OPERATIONS.md holds the command exactly as
# written (line continuations joined), then runs it with the paths and
# addresses mapped. The ini file the doc shows for `openssl ca` is taken
# from the doc itself. Every kizunad this script starts is its child and
# is stopped by its pid on exit, however the script ends.
set -uo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2; exit 2; }
SRC=$(cd "$1" && pwd -P) || exit 2
BUILD=$(cd "$2" && pwd -P) || exit 2
DOC=$SRC/docs/OPERATIONS.md
EX=$SRC/deploy/examples
[[ -x $BUILD/bin/kizunad && -x $BUILD/bin/kizuna ]] || { echo "no $BUILD/bin/kizunad: build first" >&2; exit 1; }
for tool in jq curl openssl; do
  command -v "$tool" >/dev/null || { echo "FAIL  $tool is not installed (deploy/install-deps)"; exit 1; }
done
export PATH=$BUILD/bin:$PATH

T=$(mktemp -d "${TMPDIR:-/tmp}/kz-ops.XXXXXX") || exit 1
NET=127.$((RANDOM % 200 + 20)).$((RANDOM % 240 + 10))
P=$((30000 + RANDOM % 15000 * 2)) # API port; raft on P+1
P1=$((P + 1))
T0=$(date +%s)

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'ok    %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
note() { printf '      %s\n' "$*"; }
check() { # DESCRIPTION CMD...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# ---- the nodes: children of this script, stopped by pid ---------------------
declare -A PID=()
alive() { # PID: exists and is not a zombie
  local st
  st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z && $st != X ]]
}
conf_of() { printf '%s/host%s/etc/kizunad.conf' "$T" "$1"; }
start_node() { # ID
  local id=$1
  printf '=== %s start\n' "$(date -u +%FT%TZ)" >>"$T/host$id/kizunad.log"
  kizunad --config "$(conf_of "$id")" </dev/null >>"$T/host$id/kizunad.log" 2>&1 &
  PID[$id]=$!
}
stop_node() { # ID [SIGNAL]: signal, wait up to 15 s, then SIGKILL; reaped
  local id=$1 sig=${2:-TERM} pid=${PID[$1]:-} k
  [[ -n $pid ]] || return 0
  {
    kill -s "$sig" "$pid"
    for ((k = 0; k < 75; k++)); do alive "$pid" || break; sleep 0.2; done
    alive "$pid" && kill -s KILL "$pid"
    wait "$pid"
  } 2>/dev/null
  unset "PID[$id]"
}
cleanup() {
  local id pid
  trap - EXIT INT TERM
  for id in "${!PID[@]}"; do
    pid=${PID[$id]}
    alive "$pid" && kill -s KILL "$pid" 2>/dev/null
  done
  for id in "${!PID[@]}"; do wait "${PID[$id]}" 2>/dev/null; done
  if [[ $FAILED -gt 0 || ${KEEP_OPS_DIR:-0} == 1 ]]; then
    for log in "$T"/host*/kizunad.log; do
      [[ -f $log ]] || continue
      printf -- '--- last lines of %s\n' "$log"
      tail -n 15 "$log" | sed 's/^/    /'
    done
  fi
  [[ ${KEEP_OPS_DIR:-0} == 1 ]] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'fail "interrupted"; exit 1' INT TERM

# poll SECONDS CMD...: until CMD succeeds (0) or the deadline (1). The
# whole script gives up at BUDGET seconds, well inside CTest's timeout, so
# that its own cleanup stops the nodes.
BUDGET=${OPS_BUDGET:-330}
poll() {
  local deadline=$(($(date +%s%N) / 1000000 + $1 * 1000)); shift
  until "$@"; do
    if (($(date +%s) - T0 > BUDGET)); then
      fail "over the budget of $BUDGET s, while waiting for: $*"
      exit 1
    fi
    (($(date +%s%N) / 1000000 < deadline)) || return 1
    sleep 0.2
  done
}

# ---- the documented commands ------------------------------------------------
# The doc with backslash-continued lines joined and blanks squeezed: a
# command checked against it must appear there as written.
norm() { sed -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta' | sed -e 's/^[[:space:]]*//' | tr -s ' '; }
DOCN=$(norm <"$DOC")

# map CONTEXT TEXT: the doc's paths and addresses as this test has them.
# CONTEXT: ca (the CA machine), op (the operator's shell), hostN (node N's host).
map() {
  local ctx=$1 s=$2 i
  s=${s//\/srv\/kizuna-ca/$T/ca}
  case $ctx in
    op) s=${s//\/etc\/kizuna\/endpoints/$T/op/endpoints}
        s=${s//\/etc\/kizuna\/tls\//$T/op/} ;;
    host*) s=${s//\/etc\/kizuna\//$T/$ctx/etc/}
           s=${s//\/var\/lib\/kizuna/$T/$ctx/data} ;;
  esac
  s=${s//192.0.2.11/$NET.11}; s=${s//192.0.2.12/$NET.12}; s=${s//192.0.2.16/$NET.16}
  s=${s//198.51.100.13/$NET.13}; s=${s//198.51.100.14/$NET.14}; s=${s//203.0.113.15/$NET.15}
  s=${s//:7400/:$P}; s=${s//:7401/:$P1}
  printf '%s' "$s"
}
ctx_dir() { case $1 in ca) echo "$T/ca" ;; op) echo "$T/op" ;; *) echo "$T/$1" ;; esac; }

# run CONTEXT COMMAND [FROM TO]...: COMMAND must be in OPERATIONS.md; runs
# it mapped, in the context's directory, with each FROM replaced by TO
# first (the same command for another node than the doc's example).
# OUT: its stdout+stderr, RC: its exit status.
OUT="" RC=0 SHOWN=""
run() {
  local ctx=$1 cmd=$2 n
  shift 2
  n=$(printf '%s\n' "$cmd" | norm)
  if [[ $DOCN != *"$n"* ]]; then
    fail "OPERATIONS.md does not show: $cmd"
    OUT="" RC=99
    return 99
  fi
  while [[ $# -ge 2 ]]; do cmd=${cmd//"$1"/"$2"}; shift 2; done
  SHOWN=$(printf '%s' "$cmd" | norm | tr '\n' ' ')
  OUT=$(cd "$(ctx_dir "$ctx")" && eval "$(map "$ctx" "$cmd")" 2>&1)
  RC=$?
  return $RC
}
# step CONTEXT COMMAND [FROM TO]...: run, and pass when it exits 0.
step() {
  if run "$@"; then
    pass "[$1] $SHOWN"
  else
    [[ $RC -eq 99 ]] || fail "[$1] $SHOWN: exit $RC: $(tail -n 5 <<<"$OUT")"
    return 1
  fi
}
# refused CONTEXT COMMAND TEXT: run; passes when it exits 1 and says TEXT.
refused() {
  run "$1" "$2"
  if [[ $RC -eq 1 && $OUT == *"$3"* ]]; then
    pass "[$1] $SHOWN: refused ($(tr '\n' ' ' <<<"$OUT" | cut -c1-160))"
  elif [[ $RC -ne 99 ]]; then
    fail "[$1] $SHOWN: want exit 1 and '$3', got exit $RC: $OUT"
  fi
}

# The ini file of the CA, as the doc shows it (the first ```ini block).
doc_ini() { awk '/^```ini$/ { on = 1; next } on && /^```$/ { exit } on' "$DOC"; }

# ---- cluster helpers (the test's own, not documented commands) --------------
OPC=(--cacert "$T/op/ca.pem" --cert "$T/op/operator.pem" --key "$T/op/operator.key")
readyz() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${OPC[@]}" "https://$NET.1$1:$P/readyz") == 200 ]]; }
cluster_json() { kizuna --timeout 5 --json cluster status 2>/dev/null; }
leader() { cluster_json | jq -r '.leader // 0'; }
# voters: the sorted ids of the voters, one line ("2 3 4 5 6")
voters() { cluster_json | jq -r '[.nodes[] | select(.role == "voter") | .id] | sort | map(tostring) | join(" ")'; }
node_field() { cluster_json | jq -r --argjson id "$1" ".nodes[] | select(.id == \$id) | .$2"; }
metrics() { curl -s --max-time 3 "${OPC[@]}" "https://$NET.1$1:$P/metrics"; }
series() { # NODE SERIES -> value (empty when absent)
  metrics "$1" | awk -v s="$2" '$1 == s { print $2 }'
}
writes() { # COUNT: registrations through the CLI (registrar), on any node
  kizuna --cert "$T/ca/registrar.pem" --key "$T/ca/registrar.key" --purpose 'ops test' \
    --timeout 20 sample load --count "$1" --shelters 1 --seed "$RANDOM" >/dev/null 2>"$T/writes.err"
}
restart_node() { # ID: TERM, start, ready
  stop_node "$1" TERM
  start_node "$1"
  if poll 60 readyz "$1"; then pass "node $1 restarted and ready"
  else fail "node $1 not ready 60 s after its restart"; fi
}

# ---- 0. nodes 1-4 of the example, tokyo 2 and osaka 2 ------------------------
echo "# network $NET.0, API port $P, raft port $P1, dir $T"
mkdir -p "$T/op"
KZ_SAMPLE_ORGS="" "$SRC/deploy/gen-pki" "$T/ca" 1:"$NET.11" 2:"$NET.12" 3:"$NET.13" 4:"$NET.14" >"$T/gen-pki.log" 2>&1 ||
  { fail "deploy/gen-pki: $(tail -n 3 "$T/gen-pki.log")"; exit 1; }
cp "$T/ca/ca.pem" "$T/ca/operator.pem" "$T/ca/operator.key" "$T/op/"

# The CA's records for `openssl ca` (OPERATIONS.md, "Issuing certificates").
map ca "$(doc_ini)" >"$T/ca/ca.cnf"
check "OPERATIONS.md shows ca.cnf (an \`\`\`ini block)" grep -q '^default_ca' "$T/ca/ca.cnf"
step ca 'cd /srv/kizuna-ca'
step ca 'mkdir -p issued && touch index.txt && openssl rand -hex 16 > serial'
step ca 'openssl ca -config ca.cnf -gencrl -out crl.pem'

( umask 077; printf '# test keyring\n1 %s\n' "$(openssl rand -hex 32)" >"$T/master.key" )
make_host() { # ID EXAMPLE-FILE: host dir with the example's configuration, mapped
  local id=$1 ex=$2 h=$T/host$1
  mkdir -p "$h/etc/tls" "$h/data"
  cp "$T/ca/ca.pem" "$T/ca/crl.pem" "$h/etc/tls/"
  ( umask 077; cp "$T/master.key" "$h/etc/master.key" )
  # leader_hold_down_s: 3600 here, so that leadership moves only when this
  # script moves it (60 s in the example); auth_ca: no cards in this test.
  printf '%s\n' "$(map "host$id" "$(cat "$ex")")" | sed -e 's/^leader_hold_down_s .*/leader_hold_down_s 3600/' -e '/^auth_ca /d' >"$h/etc/kizunad.conf"
}
for i in 1 2 3 4; do
  make_host "$i" "$EX/node$i.conf"
  sed -i '/^node 5 /d' "$(conf_of "$i")" # the cluster before sapporo
  cp "$T/ca/node-$i.pem" "$T/ca/node-$i.key" "$T/host$i/etc/tls/"
  echo "https://$NET.1$i:$P $i $(awk '$1 == "region" { print $2 }' "$(conf_of "$i")")"
done >"$T/op/endpoints"
for i in 1 2 3 4; do start_node "$i"; done

# The operator's shell of every section below.
if run op 'export KIZUNA_ENDPOINTS=/etc/kizuna/endpoints KIZUNA_CACERT=/etc/kizuna/tls/ca.pem \
       KIZUNA_CERT=/etc/kizuna/tls/operator.pem KIZUNA_KEY=/etc/kizuna/tls/operator.key'; then
  eval "$(map op 'export KIZUNA_ENDPOINTS=/etc/kizuna/endpoints KIZUNA_CACERT=/etc/kizuna/tls/ca.pem KIZUNA_CERT=/etc/kizuna/tls/operator.pem KIZUNA_KEY=/etc/kizuna/tls/operator.key')"
  pass "[op] export KIZUNA_ENDPOINTS=... KIZUNA_KEY=..."
fi
all_ready() { local i; for i in "$@"; do readyz "$i" || return 1; done; }
if poll 60 all_ready 1 2 3 4; then pass "nodes 1-4 (tokyo 2, osaka 2) ready"
else fail "nodes 1-4 not ready within 60 s"; exit 1; fi
# Keys are created just after the first election: wait until a write goes through.
poll 30 writes 2 || fail "no write accepted 30 s after start: $(cat "$T/writes.err")"
# A known start: node 1 leads (the doc restarts the followers 2-4 first).
kizuna cluster transfer-leader --to 1 >/dev/null 2>&1
check "node 1 leads" test "$(leader)" = 1


# The doc's example addresses of nodes 1-6.
DOCIP=([1]=192.0.2.11 [2]=192.0.2.12 [3]=198.51.100.13 [4]=198.51.100.14 [5]=203.0.113.15 [6]=192.0.2.16)
READYZ_CMD="curl -s --cacert /etc/kizuna/tls/ca.pem --cert /etc/kizuna/tls/operator.pem \\
     --key /etc/kizuna/tls/operator.key -o /dev/null -w '%{http_code}\\n' https://192.0.2.12:7400/readyz"
doc_ready() { run op "$READYZ_CMD" 192.0.2.12 "${DOCIP[$1]}" && [[ $OUT == 200 ]]; }
# restart_doc ID: a restart, then the doc's readiness check until it says 200
restart_doc() {
  stop_node "$1" TERM
  start_node "$1"
  if poll 60 doc_ready "$1"; then pass "[op] node $1 restarted; its /readyz (the doc's curl) says 200"
  else fail "node $1 not ready 60 s after its restart (last: $OUT)"; fi
}
# rolling TO ID...: restart ID... one at a time, the leader last, after
# handing leadership to TO (already restarted), as the doc says.
rolling() {
  local to=$1 id l; shift
  l=$(leader)
  for id in "$@"; do [[ $id == "$l" ]] || restart_doc "$id"; done
  if [[ " $* " == *" $l "* ]]; then
    transfer_to "$to"
    restart_doc "$l"
  fi
}
# transfer_to ID: the doc's hand-over, then a check that ID leads. The call
# answers once the old leader has stepped down, and another voter may win
# the election that follows (seen after node 2's certificate was rotated):
# the doc says to check and ask again, and so does this.
transfer_to() {
  local k l
  for ((k = 1; k <= 5; k++)); do
    run op 'kizuna cluster transfer-leader --to 2' '--to 2' "--to $1"
    [[ $RC -ne 99 ]] || return 1
    poll 5 eval '[[ $(leader) != 0 ]]'
    l=$(leader)
    [[ $l == "$1" ]] && break
    note "transfer-leader --to $1 exited $RC ($(tr '\n' ' ' <<<"$OUT")), and node $l leads: again (attempt $k)"
  done
  check "[op] $SHOWN: node $1 leads (attempts: $k)" test "$l" = "$1"
}
# sign_node ID: the node's key and request on its host, signed on the CA
# machine, the certificate back on the host: the doc's commands for node 5.
sign_node() {
  local id=$1 r=(node-5 "node-$1" 203.0.113.15 "${DOCIP[$1]}")
  mkdir -p "$T/host$id/etc/tls" "$T/host$id/data"
  step "host$id" '(umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out /etc/kizuna/tls/node-5.key)' "${r[@]}"
  step "host$id" 'openssl req -new -key /etc/kizuna/tls/node-5.key -subj /CN=node-5 \
        -addext subjectAltName=DNS:node-5,IP:203.0.113.15 -out /etc/kizuna/tls/node-5.csr' "${r[@]}"
  cp "$T/host$id/etc/tls/node-$id.csr" "$T/ca/"  # carried to the CA machine
  step ca "openssl req -in node-5.csr -noout -text | grep -E 'Subject:|IP Address'" "${r[@]}"
  [[ $OUT == *"CN = node-$id"* && $OUT == *"IP Address:$NET.1$id"* ]] ||
    fail "the request of node $id does not show CN node-$id and its address: $OUT"
  step ca 'openssl ca -batch -notext -config ca.cnf -extensions node -in node-5.csr -out node-5.pem' "${r[@]}"
  step ca 'openssl verify -CAfile ca.pem node-5.pem' "${r[@]}"
  cp "$T/ca/node-$id.pem" "$T/host$id/etc/tls/"  # carried back
}
caught_up() { # ID TARGET: its applied index is at least TARGET
  local a; a=$(node_field "$1" applied_index)
  [[ $a =~ ^[0-9]+$ && $a -ge $2 ]]
}
reachable_is() { [[ $(node_field "$1" reachable) == "$2" ]]; }

# ---- 1. Adding a region -------------------------------------------------------
echo "# Adding a region ($(($(date +%s) - T0)) s)"
sign_node 5
make_host 5 "$EX/node5.conf"
step host5 "sed -i 's/^node 5 .*/& join/' /etc/kizuna/kizunad.conf"
step host5 'kizunad --check-config --config /etc/kizuna/kizunad.conf'
check "node 5's file: node 5, the five node lines, node 5 marked join" \
  test "$(grep -c '^node ' "$(conf_of 5)") $(grep -c '^node 5 .* join$' "$(conf_of 5)")" = "5 1"
start_node 5
refused op 'kizuna cluster promote 5' 'is not a member'
check "nodes 1-4 have no line for node 5" test "$(cat "$(conf_of 1)" "$(conf_of 2)" "$(conf_of 3)" "$(conf_of 4)" | grep -c '^node 5 ')" = 0
step op 'kizuna cluster add 5 --address 203.0.113.15:7401 --api 203.0.113.15:7400 --region sapporo --role standby'
target=$(node_field "$(leader)" applied_index)
if poll 60 caught_up 5 "$target"; then pass "node 5 (standby) reached the leader's applied index $target"
else fail "node 5 (standby) did not catch up to $target within 60 s"; fi
step op 'kizuna cluster status' && note "${OUT//$'\n'/$'\n'      }"
check "node 5 is a standby before the promotion" test "$(node_field 5 role)" = standby
step op 'kizuna cluster promote 5'
step op 'kizuna cluster status' && note "${OUT//$'\n'/$'\n'      }"
check "voters 1 2 3 4 5 (got: $(voters))" test "$(voters)" = "1 2 3 4 5"
check "node 5: sapporo, reachable" test "$(node_field 5 region) $(node_field 5 reachable)" = "sapporo true"
step op "echo 'https://203.0.113.15:7400 5 sapporo' >> /etc/kizuna/endpoints"
refused op 'kizuna cluster remove 5' would_lose_region_tolerance
check "still voters 1 2 3 4 5 after the refusal" test "$(voters)" = "1 2 3 4 5"

# ---- 2. Replacing a failed node ------------------------------------------------
echo "# Replacing a failed node ($(($(date +%s) - T0)) s)"
[[ $(leader) != 1 ]] || kizuna cluster transfer-leader --to 2 >/dev/null 2>&1
check "node 1, to fail, is not the leader" test "$(leader)" != 1
stop_node 1 KILL
rm -rf "$T/host1/data" # its disk is lost
step op 'kizuna cluster status' && note "${OUT//$'\n'/$'\n'      }"
check "cluster status: node 1 unreachable" poll 10 reachable_is 1 false
refused op 'kizuna cluster remove 1' would_lose_region_tolerance
step op 'kizuna cluster remove 1 --force'
check "voters 2 3 4 5 (got: $(voters))" test "$(voters)" = "2 3 4 5"
sign_node 6
for i in 2 3 4 5; do
  step "host$i" "echo 'node 6 tokyo 192.0.2.16:7401 192.0.2.16:7400 join' >> /etc/kizuna/kizunad.conf"
  step "host$i" 'kizunad --check-config --config /etc/kizuna/kizunad.conf'
done
rolling 3 3 4 5 2
# The new host's file: node 2's, with its own id, addresses and certificate.
make_host 6 /dev/null
sed -e 's/^id 2$/id 6/' -e "s/^\(api_listen\|raft_listen\) $NET\.12:/\1 $NET.16:/" \
    -e 's#/node-2\.\(pem\|key\)$#/node-6.\1#' -e "s#$T/host2/#$T/host6/#g" "$(conf_of 2)" >"$(conf_of 6)"
step host6 'kizunad --check-config --config /etc/kizuna/kizunad.conf'
check "node 6's file names node 6: $OUT" grep -q 'node 6' <<<"$OUT"
start_node 6
step op 'kizuna cluster add 6'
step op 'kizuna cluster status' && note "${OUT//$'\n'/$'\n'      }"
check "voters 2 3 4 5 6 (got: $(voters))" test "$(voters)" = "2 3 4 5 6"
check "node 1: no longer a member (role none)" test "$(node_field 1 role)" = none
step op "sed -i '/ 1 tokyo$/d' /etc/kizuna/endpoints"
step op "echo 'https://192.0.2.16:7400 6 tokyo' >> /etc/kizuna/endpoints"
check "endpoints: nodes 2 3 4 5 6" test "$(awk '{ print $2 }' "$T/op/endpoints" | sort | tr '\n' ' ')" = "2 3 4 5 6 "

# ---- 3. Rotating certificates -------------------------------------------------
echo "# Rotating certificates ($(($(date +%s) - T0)) s)"
LIVE=(2 3 4 5 6)
step op '(umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out alice.key)'
step op 'openssl req -new -key alice.key -subj /O=131016/OU=operator/CN=alice -out alice.csr'
cp "$T/op/alice.csr" "$T/ca/"
step ca 'openssl ca -batch -notext -config ca.cnf -extensions client -in alice.csr -out alice.pem'
cp "$T/ca/alice.pem" "$T/op/"
ALICE_CMD="curl -s --cacert /etc/kizuna/tls/ca.pem --cert alice.pem --key alice.key \\
     -o /dev/null -w '%{http_code}\\n' https://192.0.2.12:7400/v1/cluster"
codes=""
for i in "${LIVE[@]}"; do run op "$ALICE_CMD" 192.0.2.12 "${DOCIP[$i]}"; codes+="$OUT "; done
check "alice's certificate is accepted by nodes ${LIVE[*]} before its revocation ($codes)" test "$codes" = "200 200 200 200 200 "

old_serial=$(openssl x509 -in "$T/host2/etc/tls/node-2.pem" -noout -serial)
step host2 '(umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out /etc/kizuna/tls/node-2.key.new)'
step host2 'openssl req -new -key /etc/kizuna/tls/node-2.key.new -subj /CN=node-2 \
        -addext subjectAltName=DNS:node-2,IP:192.0.2.12 -out /etc/kizuna/tls/node-2.csr'
cp "$T/host2/etc/tls/node-2.csr" "$T/ca/"
step ca 'openssl ca -batch -notext -config ca.cnf -extensions node -in node-5.csr -out node-5.pem' node-5 node-2
cp "$T/ca/node-2.pem" "$T/host2/etc/tls/node-2.pem.new"
step host2 'mv /etc/kizuna/tls/node-2.key.new /etc/kizuna/tls/node-2.key'
step host2 'mv /etc/kizuna/tls/node-2.pem.new /etc/kizuna/tls/node-2.pem'
RELOAD_CMD="curl -s --cacert /etc/kizuna/tls/ca.pem --cert /etc/kizuna/tls/operator.pem \\
     --key /etc/kizuna/tls/operator.key -X POST https://192.0.2.12:7400/v1/cluster/reload-tls"
step op "$RELOAD_CMD" && note "$OUT"
check "reload-tls: reloaded" test "$(jq -r .reloaded <<<"$OUT" 2>/dev/null)" = true
step host2 'openssl x509 -in /etc/kizuna/tls/node-2.pem -noout -serial'
new_serial=$OUT
step op 'openssl s_client -connect 192.0.2.12:7400 -CAfile /etc/kizuna/tls/ca.pem -cert /etc/kizuna/tls/operator.pem \
        -key /etc/kizuna/tls/operator.key </dev/null 2>/dev/null | openssl x509 -noout -serial'
check "node 2's API now shows the new certificate ($OUT; the file: $new_serial; before: $old_serial)" \
  test "$OUT" = "$new_serial" -a "$new_serial" != "$old_serial"
check "cluster status: every member reachable after the reload" \
  poll 20 eval 'test "$(cluster_json | jq "[.nodes[] | select(.role == \"voter\" and .reachable)] | length")" = 5'

step ca 'openssl ca -config ca.cnf -revoke alice.pem'
step ca 'openssl ca -config ca.cnf -gencrl -out crl.pem'
step ca 'openssl crl -in crl.pem -noout -nextupdate' && note "$OUT"
for i in "${LIVE[@]}"; do cp "$T/ca/crl.pem" "$T/host$i/etc/tls/crl.pem"; done # distributed
RELOAD_ALL="for h in 192.0.2.12 192.0.2.16 198.51.100.13 198.51.100.14 203.0.113.15; do
  curl -s --cacert /etc/kizuna/tls/ca.pem --cert /etc/kizuna/tls/operator.pem \\
       --key /etc/kizuna/tls/operator.key -X POST https://\$h:7400/v1/cluster/reload-tls; echo
done"
step op "$RELOAD_ALL" && note "${OUT//$'\n'/$'\n'      }"
check "every node reloaded with one revoked certificate in its CRL" \
  test "$(jq -s '[.[] | select(.reloaded == true and .crl_revoked == 1)] | length' <<<"$OUT" 2>/dev/null)" = 5
# systemctl reload kizunad is SIGHUP: the same reload, by signal.
before=$(series 6 'kizuna_tls_reloads_total{result="ok"}')
kill -s HUP "${PID[6]}"
reloaded_by_hup() { [[ $(series 6 'kizuna_tls_reloads_total{result="ok"}') == $((before + 1)) ]]; }
check "SIGHUP (systemctl reload) reloads node 6 too: kizuna_tls_reloads_total{result=\"ok\"} $before -> $((before + 1))" \
  poll 10 reloaded_by_hup
codes=""
for i in "${LIVE[@]}"; do run op "$ALICE_CMD" 192.0.2.12 "${DOCIP[$i]}"; codes+="$OUT "; done
check "alice's revoked certificate is refused by nodes ${LIVE[*]} ($codes)" test "$codes" = "000 000 000 000 000 "
step op 'kizuna cluster status' >/dev/null

# ---- 4. Reading the metrics during a region loss ------------------------------
echo "# Reading the metrics during a region loss ($(($(date +%s) - T0)) s)"
METRICS_CMD="curl -s --cacert /etc/kizuna/tls/ca.pem --cert /etc/kizuna/tls/operator.pem \\
     --key /etc/kizuna/tls/operator.key https://192.0.2.12:7400/metrics |
  grep -E '^kizuna_(raft_(state|term|leader_id|seconds_since_leader|commit_index|peer_match_index|peer_lag_entries)|peer_reachable|proposal_duration_seconds_count|http_responses_total|request_timeouts_total)'"
val() { awk -v s="$1" '$1 == s { print $2 }' <<<"$OUT"; }
transfer_to 2
term0=$(series 2 kizuna_raft_term)
stop_node 3 KILL
stop_node 4 KILL # osaka is lost
check "cluster status: nodes 3 and 4 unreachable" poll 10 eval 'reachable_is 3 false && reachable_is 4 false'
m3=$(series 2 'kizuna_raft_peer_match_index{peer="3"}')
m4=$(series 2 'kizuna_raft_peer_match_index{peer="4"}')
p0=$(series 2 kizuna_proposal_duration_seconds_count)
if poll 30 writes 10; then pass "10 registrations with osaka lost (3 of 5 voters)"
else fail "registrations with osaka lost: $(cat "$T/writes.err")"; fi
lag_settled() { # the live followers hold everything; the probes saw osaka go
  run op "$METRICS_CMD" &&
    [[ $(val 'kizuna_raft_peer_lag_entries{peer="5"}') == 0 && $(val 'kizuna_raft_peer_lag_entries{peer="6"}') == 0 ]] &&
    [[ $(val 'kizuna_peer_reachable{peer="3",region="osaka"}') == 0 && $(val 'kizuna_peer_reachable{peer="4",region="osaka"}') == 0 ]]
}
check "leader: live peers 5 and 6 at lag 0, peers 3 and 4 unreachable" poll 10 lag_settled
note "${OUT//$'\n'/$'\n'      }"
check "leader: kizuna_raft_state{state=\"leader\"} 1" test "$(val 'kizuna_raft_state{state="leader"}')" = 1
check "leader: peers 5 and 6 reachable" \
  test "$(val 'kizuna_peer_reachable{peer="5",region="sapporo"}') $(val 'kizuna_peer_reachable{peer="6",region="tokyo"}')" = "1 1"
check "leader: term unchanged ($term0)" test "$(val kizuna_raft_term)" = "$term0"
check "leader: peers 3 and 4 lag by 10 or more ($(val 'kizuna_raft_peer_lag_entries{peer="3"}'), $(val 'kizuna_raft_peer_lag_entries{peer="4"}'))" \
  test "$(val 'kizuna_raft_peer_lag_entries{peer="3"}')" -ge 10 -a "$(val 'kizuna_raft_peer_lag_entries{peer="4"}')" -ge 10
check "leader: match index of 3 and 4 frozen ($m3, $m4)" \
  test "$(val 'kizuna_raft_peer_match_index{peer="3"}') $(val 'kizuna_raft_peer_match_index{peer="4"}')" = "$m3 $m4"
check "leader: proposals committed meanwhile ($p0 -> $(val kizuna_proposal_duration_seconds_count))" \
  test "$(val kizuna_proposal_duration_seconds_count)" -gt "$p0"
step op "$METRICS_CMD" 192.0.2.12 203.0.113.15
check "follower 5: knows leader 2, is a follower, shows no lag series" \
  test "$(val kizuna_raft_leader_id) $(val 'kizuna_raft_state{state="follower"}') $(grep -c peer_lag <<<"$OUT")" = "2 1 0"
# Its own probes: within 3 s of its last answer from osaka.
follower_sees() {
  run op "$METRICS_CMD" 192.0.2.12 203.0.113.15 &&
    [[ $(val 'kizuna_peer_reachable{peer="3",region="osaka"}')$(val 'kizuna_peer_reachable{peer="4",region="osaka"}')$(val 'kizuna_peer_reachable{peer="6",region="tokyo"}') == 001 ]]
}
check "follower 5: osaka unreachable, node 6 reachable" poll 10 follower_sees
note "${OUT//$'\n'/$'\n'      }"

start_node 3
start_node 4 # osaka is back
drained() {
  run op "$METRICS_CMD" &&
    [[ $(val 'kizuna_raft_peer_lag_entries{peer="3"}') == 0 && $(val 'kizuna_raft_peer_lag_entries{peer="4"}') == 0 ]]
}
check "osaka back: the leader's lag for peers 3 and 4 drains to 0" poll 60 drained
back() { run op "$METRICS_CMD" && [[ $(val 'kizuna_peer_reachable{peer="3",region="osaka"}')$(val 'kizuna_peer_reachable{peer="4",region="osaka"}') == 11 ]]; }
check "osaka back: the leader's probes reach nodes 3 and 4" poll 10 back

stop_node 2 KILL
stop_node 6 KILL # tokyo, the leader's region, is lost
new_leader() {
  run op "$METRICS_CMD" 192.0.2.12 198.51.100.13 || return 1
  local l; l=$(val kizuna_raft_leader_id)
  [[ $l == 3 || $l == 4 || $l == 5 ]] && [[ $(val kizuna_raft_term) -gt $term0 ]]
}
if poll 30 new_leader; then
  pass "[op] node 3's metrics after tokyo's loss: leader $(val kizuna_raft_leader_id), term $term0 -> $(val kizuna_raft_term)"
else
  fail "node 3's metrics do not show a new leader in a later term: $OUT"
fi
note "${OUT//$'\n'/$'\n'      }"
L=$(val kizuna_raft_leader_id)
if poll 30 writes 5; then pass "5 registrations with tokyo lost"
else fail "registrations with tokyo lost: $(cat "$T/writes.err")"; fi
run op "$METRICS_CMD" 192.0.2.12 "${DOCIP[$L]:-none}"
check "new leader $L: peers 2 and 6 lag by 5 or more ($(val 'kizuna_raft_peer_lag_entries{peer="2"}'), $(val 'kizuna_raft_peer_lag_entries{peer="6"}'))" \
  test "$(val 'kizuna_raft_peer_lag_entries{peer="2"}')" -ge 5 -a "$(val 'kizuna_raft_peer_lag_entries{peer="6"}')" -ge 5

# ---- 5. Disk use: a snapshot on request ---------------------------------------
echo "# A snapshot on request ($(($(date +%s) - T0)) s)"
snap_ok() { run op 'kizuna cluster snapshot' && [[ $RC -eq 0 ]] && jq -e .index <<<"$OUT" >/dev/null 2>&1; }
if poll 20 snap_ok; then
  sidx=$(jq -r .index <<<"$OUT")
  snode=$(jq -r .node <<<"$OUT")
  pass "[op] kizuna cluster snapshot: node $snode at index $sidx"
  check "node $snode's data/snapshots holds the checkpoint $(printf %020d "$sidx")" \
    test -d "$T/host$snode/data/snapshots/$(printf %020d "$sidx")"
else
  fail "kizuna cluster snapshot did not succeed within 20 s: exit $RC: $OUT"
fi

for id in "${!PID[@]}"; do stop_node "$id" TERM; done
check "every node this test started has stopped" test "${#PID[@]}" -eq 0
echo "test_ops: $PASSED passed, $FAILED failed ($(($(date +%s) - T0)) s)"
[[ $FAILED -eq 0 ]]
