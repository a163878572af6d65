#!/usr/bin/env bash
# Deployment packaging (docs/OPERATIONS.md): what an operator installs.
#
#   tests/deploy/test_deploy.sh SOURCE_DIR BUILD_DIR   (CTest: integration_deploy)
#
#  1. every deploy/examples/*.conf passes `kizunad --check-config`, the files
#     describe one cluster (same node lines, tokyo 2 / osaka 2 / sapporo 1,
#     each file's own settings matching its node line, RFC 5737 addresses
#     only), and broken copies are refused with the parser's message;
#     --check-config creates no data dir;
#  2. deploy/systemd/kizunad.service passes `systemd-analyze verify` (when
#     systemd-analyze is installed; otherwise said so and skipped);
#  3. `cmake --install BUILD --prefix TMP` installs the binaries, the unit,
#     the docs and the examples;
#  4. `cpack -G DEB` in a temporary directory makes a .deb that holds
#     /usr/bin/kizunad and the unit, with shlibdeps' dependencies;
#  5. the package's postinst creates the kizuna user and group, twice in a
#     row without error: run as root in a private mount namespace over a
#     copy of /etc and an empty /run, so this host's users and its systemd
#     are never touched (skipped, and said so, where unshare is not allowed).
# Nothing here starts a node or opens a port. Exit 0 when every check passed.
set -uo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2; exit 2; }
SRC=$(cd "$1" && pwd -P) || exit 2
BUILD=$(cd "$2" && pwd -P) || exit 2
KIZUNAD=$BUILD/bin/kizunad
EX=$SRC/deploy/examples
UNIT=$SRC/deploy/systemd/kizunad.service

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kz-deploy.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'ok    %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
skip() { printf 'SKIP  %s\n' "$*"; }
# check DESCRIPTION CMD...: passes when CMD exits 0.
check() {
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

[[ -x $KIZUNAD ]] || { echo "no $KIZUNAD: build first" >&2; exit 1; }

# --- 1. example configurations ------------------------------------------
# field FILE KEY: the value of a `key value` line ('#' comments dropped).
field() { sed -e 's/#.*//' "$1" | awk -v k="$2" '$1 == k { $1 = ""; sub(/^ +/, ""); v = $0 } END { print v }'; }
node_lines() { sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$1" | grep -E '^node[[:space:]]'; }

shopt -s nullglob
CONFS=("$EX"/*.conf)
check "deploy/examples holds 5 node files" test "${#CONFS[@]}" -eq 5

for f in "${CONFS[@]}"; do
  name=$(basename "$f")
  out=$("$KIZUNAD" --check-config --config "$f" 2>&1)
  rc=$?
  id=$(field "$f" id)
  if [[ $rc -eq 0 && $out == *"configuration OK: node $id,"* ]]; then
    pass "kizunad --check-config --config $name: $out"
  else
    fail "kizunad --check-config --config $name: exit $rc: $out"
  fi
  check "$name: file name names its id ($id)" test "$name" = "node$id.conf"
  check "$name: the same node lines as node1.conf" \
    cmp -s <(node_lines "$f") <(node_lines "$EX/node1.conf")
  own=$(node_lines "$f" | awk -v id="$id" '$2 == id')
  read -r _ _ own_region own_raft own_api _ <<<"$own"
  check "$name: region, raft_listen, api_listen match its node line" \
    test "$(field "$f" region) $(field "$f" raft_listen) $(field "$f" api_listen)" = \
    "${own_region:-?} ${own_raft:-?} ${own_api:-?}"
  check "$name: data_dir /var/lib/kizuna" test "$(field "$f" data_dir)" = /var/lib/kizuna
  tls_ok=1
  for k in tls_cert tls_key tls_ca tls_crl auth_ca; do
    [[ $(field "$f" "$k") == /etc/kizuna/tls/* ]] || tls_ok=0
  done
  check "$name: TLS files under /etc/kizuna/tls/" test $tls_ok -eq 1
  check "$name: preferred_leader_region and min_free_mb set" \
    test -n "$(field "$f" preferred_leader_region)" -a -n "$(field "$f" min_free_mb)"
  bad=$(grep -oE '\b[0-9]{1,3}(\.[0-9]{1,3}){3}\b' "$f" |
        grep -vE '^(192\.0\.2|198\.51\.100|203\.0\.113)\.' | sort -u | tr '\n' ' ')
  check "$name: only RFC 5737 documentation addresses${bad:+ (not: $bad)}" test -z "$bad"
done

regions=$(node_lines "$EX/node1.conf" | awk '{ print $3 }' | sort | uniq -c |
          awk '{ printf "%s:%s ", $2, $1 }')
check "regions of the node lines: osaka:2 sapporo:1 tokyo:2 (got: $regions)" \
  test "$regions" = "osaka:2 sapporo:1 tokyo:2 "

# Broken copies: refused with exit 2 and the parser's own message.
# refused DESCRIPTION EXPECTED_TEXT FILE [ARGS...]
refused() {
  local what=$1 want=$2 file=$3 out rc; shift 3
  out=$("$KIZUNAD" --check-config --config "$file" "$@" 2>&1)
  rc=$?
  if [[ $rc -eq 2 && $out == *"$want"* ]]; then
    pass "refused: $what ($out)"
  else
    fail "refused: $what: exit $rc: $out"
  fi
}
sed 's/^election_timeout_ms /electon_timeout_ms /' "$EX/node1.conf" >"$TMP/typo.conf"
refused "a misspelt key" "typo.conf:" "$TMP/typo.conf"
refused "a misspelt key names it" "unknown setting 'electon_timeout_ms'" "$TMP/typo.conf"
sed 's/^id 1$/id 9/' "$EX/node1.conf" >"$TMP/stranger.conf"
refused "an id without a node line" "node 9 is not among the 'node' lines" "$TMP/stranger.conf"
grep -v '^master_key_file' "$EX/node1.conf" >"$TMP/nokey.conf"
refused "no master_key_file" "master_key_file is required" "$TMP/nokey.conf"
refused "a flag override is checked too" "heartbeat_timeout_ms must be at most half" \
  "$EX/node1.conf" --heartbeat-timeout-ms 900
sed 's#^node 5 sapporo 203.0.113.15:7401 #node 5 sapporo 203.0.113.15 #' "$EX/node1.conf" >"$TMP/noport.conf"
refused "a node line without a raft port" "addresses must be host:port" "$TMP/noport.conf"

# Nothing but the config file is opened: the data dir is not created (and
# the examples' TLS files and addresses do not exist on this host).
sed "s#^data_dir .*#data_dir $TMP/never-created#" "$EX/node2.conf" >"$TMP/dd.conf"
out=$("$KIZUNAD" --config "$TMP/dd.conf" --check-config 2>&1)
rc=$?
check "--check-config after --config: exit 0 ($out)" test $rc -eq 0
check "--check-config creates no data_dir" test ! -e "$TMP/never-created"

# --- 2. the systemd unit -------------------------------------------------
check "unit: ExecStart=/usr/bin/kizunad --config /etc/kizuna/kizunad.conf" \
  grep -qx 'ExecStart=/usr/bin/kizunad --config /etc/kizuna/kizunad.conf' "$UNIT"
check "unit: exit 75 (disk) is not restarted" grep -qE '^RestartPreventExitStatus=(.* )?75( |$)' "$UNIT"
# shellcheck disable=SC2016 # $MAINPID is systemd's, not ours
for line in User=kizuna Group=kizuna Restart=on-failure 'ExecReload=/bin/kill -HUP $MAINPID' \
    NoNewPrivileges=yes ProtectSystem=strict ReadWritePaths=/var/lib/kizuna ProtectHome=yes \
    PrivateTmp=yes PrivateDevices=yes ProtectKernelTunables=yes ProtectKernelModules=yes \
    ProtectControlGroups=yes 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
    LimitNOFILE=65536 StateDirectory=kizuna CapabilityBoundingSet= \
    SystemCallFilter=@system-service UMask=0077 LimitCORE=0; do
  check "unit: $line" grep -qxF "$line" "$UNIT"
done

# --- 3. cmake --install --------------------------------------------------
INST=$TMP/inst
if cmake --install "$BUILD" --prefix "$INST" >"$TMP/install.log" 2>&1; then
  pass "cmake --install $BUILD --prefix $INST"
else
  fail "cmake --install: $(tail -n 5 "$TMP/install.log")"
fi
for b in kizunad kizuna kizuna-bench kizuna-chaos; do
  check "installed bin/$b" test -x "$INST/bin/$b"
done
check "installed lib/systemd/system/kizunad.service" \
  cmp -s "$UNIT" "$INST/lib/systemd/system/kizunad.service"
for d in README.md ARCHITECTURE.md OPERATIONS.md openapi.yaml; do
  check "installed share/doc/kizuna/$d" test -s "$INST/share/doc/kizuna/$d"
done
installed_accepts() { "$INST/bin/kizunad" --check-config --config "$1" >/dev/null 2>&1; }
for f in "${CONFS[@]}"; do
  check "installed examples/$(basename "$f"), accepted by the installed kizunad" \
    installed_accepts "$INST/share/doc/kizuna/examples/$(basename "$f")"
done

# The unit with the installed binary in ExecStart (verify wants it to
# exist); everything else as shipped. verify prints nothing when clean.
if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir -p "$TMP/unit"
  sed "s#^ExecStart=/usr/bin/kizunad #ExecStart=$INST/bin/kizunad #" "$UNIT" >"$TMP/unit/kizunad.service"
  out=$(cd "$TMP/unit" && systemd-analyze verify "$TMP/unit/kizunad.service" 2>&1)
  rc=$?
  if [[ $rc -eq 0 && -z $out ]]; then
    pass "systemd-analyze verify kizunad.service"
  else
    fail "systemd-analyze verify kizunad.service: exit $rc: $out"
  fi
else
  skip "systemd-analyze not installed: the unit was not verified"
fi

# --- 4. cpack -G DEB -----------------------------------------------------
PKG=$TMP/pkg
mkdir -p "$PKG"
if (cd "$PKG" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$PKG") >"$TMP/cpack.log" 2>&1; then
  pass "cpack -G DEB"
else
  fail "cpack -G DEB: $(tail -n 8 "$TMP/cpack.log")"
fi
DEBS=("$PKG"/*.deb)
check "cpack made one .deb (${DEBS[*]##*/})" test "${#DEBS[@]}" -eq 1
DEB=${DEBS[0]:-$PKG/none.deb}
dpkg-deb -c "$DEB" >"$TMP/contents" 2>&1
for p in ./usr/bin/kizunad ./usr/bin/kizuna ./usr/bin/kizuna-bench ./usr/bin/kizuna-chaos \
    ./usr/lib/systemd/system/kizunad.service ./usr/share/doc/kizuna/OPERATIONS.md \
    ./usr/share/doc/kizuna/examples/node1.conf; do
  check "dpkg-deb -c lists $p" grep -qE " ${p//./\\.}\$" "$TMP/contents"
done
check ".deb: Package kizuna" test "$(dpkg-deb -f "$DEB" Package 2>/dev/null)" = kizuna
check ".deb: Section admin" test "$(dpkg-deb -f "$DEB" Section 2>/dev/null)" = admin
check ".deb: Maintainer set" test -n "$(dpkg-deb -f "$DEB" Maintainer 2>/dev/null)"
depends=$(dpkg-deb -f "$DEB" Depends 2>/dev/null)
has_depends() { [[ $depends == *libc6* && $depends == *librocksdb* && $depends == *adduser* ]]; }
check ".deb: Depends from dpkg-shlibdeps (libc6, librocksdb) and adduser: $depends" has_depends
dpkg-deb -e "$DEB" "$TMP/control" 2>/dev/null
check ".deb: postinst, mode 755" test "$(stat -c %a "$TMP/control/postinst" 2>/dev/null)" = 755

# --- 5. the postinst, against a copy of /etc -----------------------------
POSTINST=$TMP/control/postinst
if [[ ! -f $POSTINST ]]; then
  fail "postinst: not in the package"
elif [[ $(id -u) -ne 0 ]] || ! unshare --mount --propagation private true 2>/dev/null; then
  skip "postinst: needs root and unshare --mount to run against a copy of /etc"
else
  host_before=$(getent passwd kizuna; getent group kizuna)
  cp -a /etc "$TMP/etc"
  # shellcheck disable=SC2016
  out=$(unshare --mount --propagation private sh -c '
          mount --bind "$1/etc" /etc || exit 9
          mount -t tmpfs tmpfs /run || exit 9  # no systemctl, no nscd
          "$2" configure || exit 1
          "$2" configure || exit 2
          getent passwd kizuna | cut -d: -f1,6,7
          id -gn kizuna' sh "$TMP" "$POSTINST" 2>&1)
  rc=$?
  if [[ $rc -eq 0 && $out == *"kizuna:/var/lib/kizuna:/usr/sbin/nologin"* && $(tail -n 1 <<<"$out") == kizuna ]]; then
    pass "postinst configure, twice: system user kizuna, group kizuna"
  else
    fail "postinst configure, twice: exit $rc: $out"
  fi
  check "postinst: this host's users untouched" test "$(getent passwd kizuna; getent group kizuna)" = "$host_before"
fi

echo "test_deploy: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
