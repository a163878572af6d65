#!/usr/bin/env bash
# Client certificates and CRLs for test_tls.c, made with the openssl CLI
# next to a cluster started by the harness (its CA is DIR/pki/ca.pem/.key,
# from deploy/gen-pki). Everything is written under DIR/tls/.
#
#   tls_pki.sh DIR issue NAME ROLE [STARTDATE ENDDATE]
#       client certificate /O=131016/OU=ROLE/CN=NAME signed by the cluster CA
#       (`openssl ca`, so it can be revoked later); STARTDATE/ENDDATE as
#       YYMMDDHHMMSSZ make one that is already expired
#   tls_pki.sh DIR other-ca NAME ROLE
#       the same, signed by a throw-away CA the cluster does not know
#   tls_pki.sh DIR revoke NAME
#   tls_pki.sh DIR crl OUT
#       the cluster CA's CRL (PEM, valid 7 days), written atomically to OUT
#   tls_pki.sh DIR serial FILE
#       the serial number of a PEM certificate (hex, as `openssl x509 -serial`)
#
# NAME.pem and NAME.key land in DIR/tls/. `openssl ca` needs a database; it
# lives in DIR/tls/db (index.txt, serial) and is created on first use.
set -euo pipefail

DIR=$1 CMD=$2
shift 2
PKI=$DIR/pki
T=$DIR/tls
ORG=131016
mkdir -p "$T/db"
umask 077

die() { printf 'tls_pki: %s\n' "$*" >&2; exit 1; }

ca_conf() { # CA_PEM CA_KEY -> writes $T/db/ca.cnf
  [[ -f $T/db/index.txt ]] || : >"$T/db/index.txt"
  [[ -f $T/db/serial ]] || openssl rand -hex 16 >"$T/db/serial"
  cat >"$T/db/ca.cnf" <<EOF
[ca]
default_ca = kz
[kz]
database = $T/db/index.txt
new_certs_dir = $T/db
serial = $T/db/serial
certificate = $1
private_key = $2
default_md = sha256
default_days = 30
default_crl_days = 7
policy = any
unique_subject = no
x509_extensions = client
[any]
organizationName = supplied
organizationalUnitName = supplied
commonName = supplied
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
EOF
}

issue_with() { # CA_PEM CA_KEY NAME ROLE [START END]
  local ca=$1 cakey=$2 name=$3 role=$4 dates=()
  [[ $# -ge 6 ]] && dates=(-startdate "$5" -enddate "$6")
  ca_conf "$ca" "$cakey"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$T/$name.key" 2>/dev/null || die "key for $name"
  openssl req -new -key "$T/$name.key" -subj "/O=$ORG/OU=$role/CN=$name" \
    -out "$T/$name.csr" 2>/dev/null || die "CSR for $name"
  openssl ca -batch -notext -config "$T/db/ca.cnf" -in "$T/$name.csr" \
    -out "$T/$name.pem" "${dates[@]}" >"$T/db/last.log" 2>&1 ||
    die "signing $name: $(cat "$T/db/last.log")"
}

case $CMD in
  issue)
    [[ $# -eq 2 || $# -eq 4 ]] || die "issue NAME ROLE [START END]"
    issue_with "$PKI/ca.pem" "$PKI/ca.key" "$@"
    ;;
  other-ca)
    [[ $# -eq 2 ]] || die "other-ca NAME ROLE"
    if [[ ! -f $T/other-ca.pem ]]; then
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/other-ca.key" -out "$T/other-ca.pem" -days 30 \
        -subj "/CN=Kizuna Dev CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null ||
        die "other CA"
    fi
    # A separate database: this CA's serials are not the cluster CA's.
    T0=$T
    T=$T/other
    mkdir -p "$T/db"
    issue_with "$T0/other-ca.pem" "$T0/other-ca.key" "$@"
    mv "$T/$1.pem" "$T/$1.key" "$T0/"
    ;;
  revoke)
    [[ $# -eq 1 ]] || die "revoke NAME"
    ca_conf "$PKI/ca.pem" "$PKI/ca.key"
    openssl ca -config "$T/db/ca.cnf" -revoke "$T/$1.pem" \
      >"$T/db/last.log" 2>&1 || die "revoke $1: $(cat "$T/db/last.log")"
    ;;
  crl)
    [[ $# -eq 1 ]] || die "crl OUT"
    ca_conf "$PKI/ca.pem" "$PKI/ca.key"
    openssl ca -config "$T/db/ca.cnf" -gencrl -out "$T/crl.tmp" \
      >"$T/db/last.log" 2>&1 || die "CRL: $(cat "$T/db/last.log")"
    chmod 0644 "$T/crl.tmp"
    mv "$T/crl.tmp" "$1"
    ;;
  serial)
    [[ $# -eq 1 ]] || die "serial FILE"
    openssl x509 -in "$1" -noout -serial | sed 's/^serial=//'
    ;;
  *) die "unknown command $CMD" ;;
esac
