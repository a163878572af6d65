#!/usr/bin/env bash
# The web console (/ui/) in a real browser: Debian's chromium, headless,
# driven by playwright-core (tests/ui/console.test.js).
#
#   tests/ui/test_ui.sh SOURCE_DIR BUILD_DIR      (CTest: integration_ui)
#
# A 3-region loopback cluster (deploy/local-cluster: tokyo, osaka, sapporo,
# one node each) with 100 sample people and one known person with a face
# photo. The browser presents the client certificates itself: each role's
# certificate and key go into an NSS database in a temporary $HOME
# ($HOME/.pki/nssdb, where Chromium on Linux looks), the cluster CA is
# trusted there (no certificate errors are ignored), and each role's browser
# profile selects its certificate without a dialog through the
# AutoSelectCertificateForUrls content setting in its Preferences (filter:
# the certificate's subject OU). Screenshots go to BUILD_DIR/ui-screenshots/.
#
# playwright-core is installed once from the npm registry, pinned, into
# ${XDG_CACHE_HOME:-~/.cache}/kizuna-ui/playwright-core-<version> (outside
# the repository, like deploy/check-openapi's validator); it never downloads
# a browser (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD). A missing tool is a failure
# with its reason, not a skip.
#
# Every kizunad the cluster runs, and the browser driver, are stopped by
# their pids on exit however the script ends.
set -uo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2; exit 2; }
SRC=$(cd "$1" && pwd -P) || exit 2
BUILD=$(cd "$2" && pwd -P) || exit 2
PW_VERSION=${KZ_PLAYWRIGHT_VERSION:-1.65.2}
CHROMIUM=${KZ_CHROMIUM:-/usr/bin/chromium}
CACHE=${KZ_UI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kizuna-ui}
PW_PREFIX=$CACHE/playwright-core-$PW_VERSION
SHOTS=$BUILD/ui-screenshots
LC=$SRC/deploy/local-cluster

fail() { printf 'FAIL  %s\n' "$*"; exit 1; }
[[ -x $BUILD/bin/kizunad && -x $BUILD/bin/kizuna ]] || fail "no $BUILD/bin/kizunad: build first"
[[ -x $CHROMIUM ]] || fail "$CHROMIUM is not installed (deploy/install-deps installs chromium)"
for tool in certutil:libnss3-tools pk12util:libnss3-tools node:nodejs npm:npm jq:jq openssl:openssl curl:curl; do
  command -v "${tool%%:*}" >/dev/null || fail "${tool%%:*} is not installed (Debian package ${tool#*:}; deploy/install-deps)"
done

# ---- playwright-core, pinned, into the cache ---------------------------------
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_config_update_notifier=false
pw_version() { node -p "require('$PW_PREFIX/node_modules/playwright-core/package.json').version" 2>/dev/null; }
if [[ $(pw_version) != "$PW_VERSION" ]]; then
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.install.lock"
  flock 9 2>/dev/null || true
  if [[ $(pw_version) != "$PW_VERSION" ]]; then
    printf 'test_ui: installing playwright-core@%s into %s\n' "$PW_VERSION" "$PW_PREFIX"
    rm -rf "$PW_PREFIX"
    npm install --prefix "$PW_PREFIX" --no-audit --no-fund --loglevel=error \
      "playwright-core@$PW_VERSION" || fail "npm install playwright-core@$PW_VERSION"
    [[ $(pw_version) == "$PW_VERSION" ]] || fail "playwright-core does not report version $PW_VERSION"
  fi
  exec 9>&-
fi

# ---- the cluster: stopped by pid whatever happens ----------------------------
T=$(mktemp -d "${TMPDIR:-/tmp}/kz-ui.XXXXXX") || exit 1
DIR=$T/cluster
NET=127.$((RANDOM % 200 + 20)).$((RANDOM % 240 + 10))
PORT=$((30000 + RANDOM % 15000 * 2))
DRIVER_PID=

alive() { # PID: exists, not a zombie
  local st
  st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z && $st != X ]]
}
# The kizunad pids of this cluster: each node's pid file, kept only when
# that process is a kizunad reading this cluster's configuration.
cluster_pids() {
  local f pid
  for f in "$DIR"/node*/pid; do
    [[ -f $f ]] || continue
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || continue
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$DIR/node" && printf '%s\n' "$pid"
  done
}
cleanup() {
  local rc=$? pid pids k
  trap - EXIT INT TERM
  [[ -n $DRIVER_PID ]] && alive "$DRIVER_PID" && kill -s TERM "$DRIVER_PID" 2>/dev/null
  mapfile -t pids < <(cluster_pids)
  for pid in "${pids[@]}"; do kill -s TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for ((k = 0; k < 100; k++)); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -s KILL "$pid" 2>/dev/null
  done
  if [[ $rc -ne 0 ]]; then
    for f in "$DIR"/node*/kizunad.log; do
      [[ -f $f ]] && { echo "--- last lines of $f"; tail -n 15 "$f"; }
    done
  fi
  rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$LC" up --dir "$DIR" --regions tokyo:1,osaka:1,sapporo:1 --net "$NET" --port "$PORT" \
  --bin "$BUILD/bin" >"$T/up.log" 2>&1 || { tail -n 30 "$T/up.log"; fail "local-cluster up"; }
PKI=$DIR/pki
kz() { # ROLE ARGS...: the CLI with that role's certificate
  local role=$1; shift
  "$BUILD/bin/kizuna" --endpoints "$DIR/endpoints" --cacert "$PKI/ca.pem" \
    --cert "$PKI/$role.pem" --key "$PKI/$role.key" "$@"
}
kz registrar sample load --count 100 >"$T/sample.log" 2>&1 || { cat "$T/sample.log"; fail "kizuna sample load"; }
ID=$(kz registrar victim add --name "絆 花子" --name-kana "きずな はなこ" --dob 1980-01-01 \
  --sex female --shelter ishinomaki-01 --needs elderly | jq -r .id) || fail "victim add"
[[ $ID =~ ^[0-9a-z]+$ ]] || fail "victim add gave no id"
printf 'ok    cluster %s.11-13:%s up, 100 sample people and %s\n' "$NET" "$PORT" "$ID"

# ---- the browser's certificates: NSS database in a temporary HOME -------------
NSS=$T/home/.pki/nssdb
mkdir -p "$NSS"
certutil -N -d "sql:$NSS" --empty-password || fail "certutil -N"
certutil -A -d "sql:$NSS" -n kizuna-dev-ca -t "C,," -i "$PKI/ca.pem" || fail "certutil -A (CA)"
for role in operator terminal caseworker auditor; do
  openssl pkcs12 -export -in "$PKI/$role.pem" -inkey "$PKI/$role.key" -name "kizuna-$role" \
    -out "$T/$role.p12" -passout pass: || fail "openssl pkcs12 ($role)"
  pk12util -i "$T/$role.p12" -d "sql:$NSS" -W '' >/dev/null || fail "pk12util ($role)"
  rm -f "$T/$role.p12"
done

mkdir -p "$SHOTS"
rm -f "$SHOTS"/*.png
URL=https://$NET.11:$PORT
KZ_UI_URL=$URL KZ_UI_TMP=$T KZ_UI_HOME=$T/home KZ_UI_SHOTS=$SHOTS KZ_UI_PKI=$PKI \
  KZ_UI_VICTIM=$ID KZ_UI_CLUSTER=$DIR KZ_UI_LC=$LC KZ_UI_CHROMIUM=$CHROMIUM \
  KZ_UI_PLAYWRIGHT=$PW_PREFIX/node_modules/playwright-core \
  node "$SRC/tests/ui/console.test.js" &
DRIVER_PID=$!
wait "$DRIVER_PID"
rc=$?
DRIVER_PID=
[[ $rc -eq 0 ]] || fail "console.test.js exited $rc"
printf 'ok    web console; screenshots in %s\n' "$SHOTS"
