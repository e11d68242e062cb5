#!/usr/bin/env bash
# Regenerates the sslsocket test PKI in the directory containing this script.
#
# Usage: bash ca/gen.sh        (from any working directory)
#
# Only needs `openssl` (tested with OpenSSL 3.0). Idempotent: every generated
# file in ca/ is deleted first and then recreated (keys, serial numbers and
# OCSP timestamps change on every run). gen.sh and README.md are kept.
# See README.md for a description of every file.

set -euo pipefail
umask 022

CA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PASS="sslsocket-test"
DAYS=36500     # ~100 years, so the tests never rot

# `bash ca/gen.sh --only-missing` creates only the files of `added_files`
# (below) that do not exist yet, signed by the existing intermediate CA, and
# touches nothing else: for files added after the PKI was generated.
ONLY_MISSING=false
if [ "${1:-}" = "--only-missing" ]; then
    ONLY_MISSING=true
fi

command -v openssl >/dev/null || { echo "gen.sh: openssl not found" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Clean up previously generated files (and only those).
# ---------------------------------------------------------------------------
if ! $ONLY_MISSING; then
rm -rf "$CA/broken" "$CA/ocsp"
rm -f "$CA"/*.pem "$CA"/*.key "$CA"/*.der "$CA"/*.p12
mkdir -p "$CA/broken" "$CA/ocsp"
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------------------
# OpenSSL configuration (one file, all CAs; $CADIR and $SAN come from the env)
# ---------------------------------------------------------------------------
export SAN="DNS:localhost, IP:127.0.0.1, IP:::1"
export CADIR="$TMP/unused"
CNF="$TMP/openssl.cnf"
cat >"$CNF" <<'EOF'
[ req ]
distinguished_name = req_dn
prompt             = no
string_mask        = utf8only
utf8               = yes

[ req_dn ]

[ ca ]
default_ca = CA_default

[ CA_default ]
dir              = $ENV::CADIR
certificate      = $dir/ca.pem
private_key      = $dir/ca.key
database         = $dir/index.txt
new_certs_dir    = $dir/newcerts
crlnumber        = $dir/crlnumber
rand_serial      = yes
unique_subject   = no
default_md       = sha256
default_days     = 36500
default_crl_days = 36500
policy           = policy_any
preserve         = yes
email_in_dn      = no
copy_extensions  = none
name_opt         = ca_default
cert_opt         = ca_default
crl_extensions   = crl_ext

[ policy_any ]
countryName            = optional
stateOrProvinceName    = optional
localityName           = optional
organizationName       = optional
organizationalUnitName = optional
commonName             = supplied
emailAddress           = optional

[ crl_ext ]
authorityKeyIdentifier = keyid:always

[ v3_root ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_intermediate ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

# "Intermediate" that is not a CA at all (broken/invalid-ca).
[ v3_fake_ca ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_server_ec ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = $ENV::SAN
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_server_rsa ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = $ENV::SAN
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

# Self-signed end-entity: no authorityKeyIdentifier issuer lookup needed.
[ v3_server_selfsigned ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = $ENV::SAN
subjectKeyIdentifier   = hash

# Server names, but only clientAuth (broken/wrong-purpose).
[ v3_wrong_purpose ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectAltName         = $ENV::SAN
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_client ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ v3_ocsp ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = critical, OCSPSigning
noCheck                = ignored
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
ec_key()  { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
                -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null; }
rsa_key() { openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$2" -out "$1" 2>/dev/null; }
rand_serial() { echo "0x7$(openssl rand -hex 15)"; }   # positive, 16 bytes, never 0

# init_ca NAME CERT KEY: set up an `openssl ca` working directory in $TMP.
init_ca() {
    local d="$TMP/$1"
    mkdir -p "$d/newcerts"
    cp "$2" "$d/ca.pem"; cp "$3" "$d/ca.key"
    : >"$d/index.txt"
    echo 1000 >"$d/crlnumber"
}

# self_signed_ca KEY CERT SUBJECT EXT
self_signed() {
    openssl req -new -x509 -config "$CNF" -key "$1" -out "$2" -subj "$3" \
        -extensions "$4" -days "$DAYS" -sha256 -set_serial "$(rand_serial)"
}

# sign CA_NAME KEY OUT SUBJECT EXT [extra openssl ca args...]
sign() {
    local caname="$1" key="$2" out="$3" subj="$4" ext="$5"; shift 5
    local csr="$TMP/req.csr"
    openssl req -new -config "$CNF" -key "$key" -subj "$subj" -out "$csr"
    CADIR="$TMP/$caname" openssl ca -batch -config "$CNF" -notext -preserveDN \
        -extensions "$ext" -in "$csr" -out "$out" "$@" 2>"$TMP/ca.log" \
        || { cat "$TMP/ca.log" >&2; exit 1; }
}

ROOT_SUBJ="/O=sslsocket/CN=sslsocket Test Root CA"
INT_SUBJ="/O=sslsocket/CN=sslsocket Test Intermediate CA"

# Files added after the first PKI; each is made only if missing, so that
# `--only-missing` leaves existing files alone. Needs the `int` CA set up.
added_files() {
    # wildcard: a server certificate for *.wild.test only (RFC 6125 wildcard
    # matching: a.wild.test matches, a.b.wild.test and wild.test do not).
    if [ ! -e wildcard.pem ] || [ ! -e wildcard.key ]; then
        ec_key wildcard.key
        SAN="DNS:*.wild.test" sign int wildcard.key "$TMP/wildcard-leaf.pem" \
            "/O=sslsocket/CN=*.wild.test" v3_server_ec
        cat "$TMP/wildcard-leaf.pem" intermediate-ca.pem >wildcard.pem
    fi
    # forged-intermediate, forged-root: a localhost leaf whose issuer name is
    # the real intermediate's (root's) but which a throwaway key signed,
    # with no authority key identifier, sent with the real CA certificate.
    # The name matches, the signature does not: what an attacker sends to
    # satisfy an ignore rule pinned to the real CA certificate.
    forged broken/forged-intermediate "$INT_SUBJ" intermediate-ca.pem
    forged broken/forged-root "$ROOT_SUBJ" root-ca.pem
    # escaped-names: a self-signed certificate whose name values hold the
    # characters RFC 4514 escapes (, + " \ < > ; a leading # or space, a
    # trailing space) and non-ASCII text: subject_info returns the values,
    # subject_dn the escaped string.
    if [ ! -e escaped-names.pem ]; then
        ec_key "$TMP/escaped.key"
        openssl req -new -x509 -key "$TMP/escaped.key" -days "$DAYS" -utf8 \
            -subj '/O=#hash org /OU=a\\b/OU= Jürgen/CN=Doe, John \+ Co <x>; "q"  back ' \
            -out escaped-names.pem
    fi
}

# forged BASE ISSUER_SUBJECT REAL_CA_CERT: BASE.pem (forged leaf + the real
# CA certificate) and BASE.key, unless they exist.
forged() {
    local base="$1" issuer="$2" real="$3"
    if [ -e "$base.pem" ] && [ -e "$base.key" ]; then
        return
    fi
    ec_key "$TMP/forger.key"
    openssl req -new -x509 -key "$TMP/forger.key" -subj "$issuer" -days "$DAYS" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign" -out "$TMP/forger.pem"
    ec_key "$base.key"
    openssl req -new -key "$base.key" -subj "/O=sslsocket/OU=broken $(basename "$base")/CN=localhost" \
        -out "$TMP/forged.csr"
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
        "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" "authorityKeyIdentifier=none" \
        "subjectKeyIdentifier=none" >"$TMP/forged.ext"
    openssl x509 -req -in "$TMP/forged.csr" -CA "$TMP/forger.pem" -CAkey "$TMP/forger.key" \
        -set_serial "$(rand_serial)" -days "$DAYS" -sha256 -extfile "$TMP/forged.ext" \
        -out "$TMP/forged-leaf.pem" 2>/dev/null
    cat "$TMP/forged-leaf.pem" "$real" >"$base.pem"
}

if $ONLY_MISSING; then
    cd "$CA"
    init_ca int intermediate-ca.pem intermediate-ca.key
    added_files
    echo "gen.sh: missing files created in $CA"
    exit 0
fi

# ---------------------------------------------------------------------------
# Core PKI
# ---------------------------------------------------------------------------
cd "$CA"

# Root CA
ec_key root-ca.key
self_signed root-ca.key root-ca.pem "$ROOT_SUBJ" v3_root
openssl x509 -in root-ca.pem -outform DER -out root-ca.der
init_ca root root-ca.pem root-ca.key

# Intermediate CA
ec_key intermediate-ca.key
sign root intermediate-ca.key intermediate-ca.pem "$INT_SUBJ" v3_intermediate
init_ca int intermediate-ca.pem intermediate-ca.key

# Server (ECDSA P-256)
ec_key server.key
sign int server.key server-leaf.pem "/O=sslsocket/CN=localhost" v3_server_ec
cat server-leaf.pem intermediate-ca.pem >server.pem

# Server (RSA 2048)
rsa_key server-rsa.key 2048
sign int server-rsa.key "$TMP/server-rsa-leaf.pem" "/O=sslsocket/OU=rsa/CN=localhost" v3_server_rsa
cat "$TMP/server-rsa-leaf.pem" intermediate-ca.pem >server-rsa.pem

# Second server cert for SNI selection tests: other.localhost only
ec_key server-sni.key
SAN="DNS:other.localhost" sign int server-sni.key "$TMP/server-sni-leaf.pem" \
    "/O=sslsocket/CN=other.localhost" v3_server_ec
cat "$TMP/server-sni-leaf.pem" intermediate-ca.pem >server-sni.pem

# Client
ec_key client.key
sign int client.key "$TMP/client-leaf.pem" "/O=sslsocket/CN=sslsocket test client" v3_client
cat "$TMP/client-leaf.pem" intermediate-ca.pem >client.pem

# Unrelated root + a client certificate it issued
ec_key other-ca.key
self_signed other-ca.key other-ca.pem "/O=sslsocket/CN=sslsocket Other CA" v3_root
init_ca other other-ca.pem other-ca.key
ec_key other-client.key
sign other other-client.key other-client.pem "/O=sslsocket/CN=sslsocket other client" v3_client

# Key / container format variants
openssl pkcs8 -topk8 -nocrypt -in server.key -outform DER -out server.key.der
openssl x509 -in server-leaf.pem -outform DER -out server-leaf.der
openssl pkcs8 -topk8 -in server.key -out server-encrypted.key \
    -v2 aes-256-cbc -v2prf hmacWithSHA256 -passout "pass:$PASS"
openssl pkcs12 -export -out server.p12 -inkey server.key -in server-leaf.pem \
    -certfile intermediate-ca.pem -name "sslsocket test server" \
    -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 -passout "pass:$PASS"
openssl pkcs12 -export -out client.p12 -inkey client.key -in "$TMP/client-leaf.pem" \
    -certfile intermediate-ca.pem -name "sslsocket test client" \
    -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 -passout "pass:$PASS"

# ---------------------------------------------------------------------------
# Broken certificates
# ---------------------------------------------------------------------------
B="$CA/broken"
LH="/O=sslsocket/OU=broken"

# expired: 2000-01-01 .. 2001-01-01
ec_key "$B/expired.key"
sign int "$B/expired.key" "$TMP/expired.pem" "$LH expired/CN=localhost" v3_server_ec \
    -startdate 20000101000000Z -enddate 20010101000000Z
cat "$TMP/expired.pem" intermediate-ca.pem >"$B/expired.pem"

# not-yet-valid: 2090-01-01 .. 2190-01-01
ec_key "$B/not-yet-valid.key"
sign int "$B/not-yet-valid.key" "$TMP/nyv.pem" "$LH not-yet-valid/CN=localhost" v3_server_ec \
    -startdate 20900101000000Z -enddate 21900101000000Z
cat "$TMP/nyv.pem" intermediate-ca.pem >"$B/not-yet-valid.pem"

# wrong-host: only wrong.example
ec_key "$B/wrong-host.key"
SAN="DNS:wrong.example" sign int "$B/wrong-host.key" "$TMP/wrong-host.pem" \
    "$LH wrong-host/CN=wrong.example" v3_server_ec
cat "$TMP/wrong-host.pem" intermediate-ca.pem >"$B/wrong-host.pem"

# self-signed: self-signed end-entity certificate (CA:FALSE)
ec_key "$B/self-signed.key"
self_signed "$B/self-signed.key" "$B/self-signed.pem" \
    "$LH self-signed/CN=localhost" v3_server_selfsigned

# untrusted-root: leaf from other-ca, chain = leaf + other-ca
ec_key "$B/untrusted-root.key"
sign other "$B/untrusted-root.key" "$TMP/untrusted-root.pem" \
    "$LH untrusted-root/CN=localhost" v3_server_ec
cat "$TMP/untrusted-root.pem" other-ca.pem >"$B/untrusted-root.pem"

# missing-intermediate: the normal server leaf, sent without the intermediate
cp server-leaf.pem "$B/missing-intermediate.pem"
cp server.key "$B/missing-intermediate.key"

# invalid-ca: leaf issued by a CA:FALSE "intermediate" (no keyCertSign) under root
ec_key "$B/invalid-ca-intermediate.key"
sign root "$B/invalid-ca-intermediate.key" "$B/invalid-ca-intermediate.pem" \
    "/O=sslsocket/OU=broken invalid-ca/CN=sslsocket Fake Intermediate (CA:FALSE)" v3_fake_ca
init_ca fake "$B/invalid-ca-intermediate.pem" "$B/invalid-ca-intermediate.key"
ec_key "$B/invalid-ca.key"
sign fake "$B/invalid-ca.key" "$TMP/invalid-ca.pem" \
    "$LH invalid-ca/CN=localhost" v3_server_ec
cat "$TMP/invalid-ca.pem" "$B/invalid-ca-intermediate.pem" >"$B/invalid-ca.pem"

# wrong-purpose: EKU clientAuth only
ec_key "$B/wrong-purpose.key"
sign int "$B/wrong-purpose.key" "$TMP/wrong-purpose.pem" \
    "$LH wrong-purpose/CN=localhost" v3_wrong_purpose
cat "$TMP/wrong-purpose.pem" intermediate-ca.pem >"$B/wrong-purpose.pem"

# sha1: signed with ecdsa-with-SHA1 by the intermediate
ec_key "$B/sha1.key"
sign int "$B/sha1.key" "$TMP/sha1.pem" \
    "$LH sha1/CN=localhost" v3_server_ec -md sha1
cat "$TMP/sha1.pem" intermediate-ca.pem >"$B/sha1.pem"

# rsa1024: 1024-bit RSA leaf key, SHA-256 signature
rsa_key "$B/rsa1024.key" 1024
sign int "$B/rsa1024.key" "$TMP/rsa1024.pem" \
    "$LH rsa1024/CN=localhost" v3_server_rsa
cat "$TMP/rsa1024.pem" intermediate-ca.pem >"$B/rsa1024.pem"

# revoked: leaf revoked in the intermediate's CRL
ec_key "$B/revoked.key"
sign int "$B/revoked.key" "$TMP/revoked.pem" \
    "$LH revoked/CN=localhost" v3_server_ec
cat "$TMP/revoked.pem" intermediate-ca.pem >"$B/revoked.pem"
CADIR="$TMP/int" openssl ca -batch -config "$CNF" -revoke "$TMP/revoked.pem" \
    -crl_reason keyCompromise 2>"$TMP/ca.log" || { cat "$TMP/ca.log" >&2; exit 1; }

# ---------------------------------------------------------------------------
# OCSP responder (signed by the intermediate) -- issued before the CRL so that
# the CRL / index below describe every certificate the intermediate issued.
# ---------------------------------------------------------------------------
O="$CA/ocsp"
ec_key "$O/ocsp-responder.key"
sign int "$O/ocsp-responder.key" "$O/ocsp-responder.pem" \
    "/O=sslsocket/CN=sslsocket Test OCSP Responder" v3_ocsp

# CRL of the intermediate (lists broken/revoked's leaf)
CADIR="$TMP/int" openssl ca -batch -config "$CNF" -gencrl -crldays "$DAYS" \
    -out "$B/intermediate.crl.pem" 2>"$TMP/ca.log" || { cat "$TMP/ca.log" >&2; exit 1; }
cp "$B/intermediate.crl.pem" "$B/revoked.crl.pem"
cat root-ca.pem "$B/intermediate.crl.pem" >"$B/root-ca-with-crl.pem"
cat root-ca.pem intermediate-ca.pem "$B/intermediate.crl.pem" >"$B/root-and-intermediate-with-crl.pem"

# OCSP responses (for stapling), valid for $DAYS days
cp "$TMP/int/index.txt" "$O/index.txt"
ocsp_resp() {   # LEAF OUT
    openssl ocsp -issuer intermediate-ca.pem -cert "$1" -no_nonce -reqout "$TMP/ocsp.req" 2>/dev/null
    openssl ocsp -index "$O/index.txt" -CA intermediate-ca.pem \
        -rsigner "$O/ocsp-responder.pem" -rkey "$O/ocsp-responder.key" \
        -reqin "$TMP/ocsp.req" -respout "$2" -ndays "$DAYS" >/dev/null 2>&1
}
ocsp_resp server-leaf.pem "$O/server-ocsp-good.der"
ocsp_resp "$TMP/revoked.pem" "$O/server-ocsp-revoked.der"

# ---------------------------------------------------------------------------
# Files added later (see added_files)
# ---------------------------------------------------------------------------
cd "$CA"
added_files

echo "gen.sh: test PKI regenerated in $CA"
