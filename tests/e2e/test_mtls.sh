#!/usr/bin/env bash
# End-to-end test of TLS client certificates for service accounts: with
# --client-ca the server asks for a client certificate; one bound by its
# SHA-256 fingerprint acts as service:NAME with the binding's roles,
# intersected with its owner's permissions. Unbound certificates, those of
# another CA, expired ones and removed bindings are refused; without
# --client-ca a client certificate is ignored.
. "$(dirname "$0")/lib.sh"
e2e_init mtls

ADMIN_PW='Adm1n-E2E-Password-long!'
ALICE_PW='Alice-E2E-Password-42'
DATA="$E2E_ROOT/data"
PKI="$E2E_ROOT/pki"
mkdir -p "$PKI"

# make_ca NAME: a self-signed CA in $PKI/NAME.{pem,key}.
make_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=$1" -keyout "$PKI/$1.key" -out "$PKI/$1.pem" 2>/dev/null
}
# make_cert NAME CA DAYS: a client certificate for CN=NAME signed by CA,
# valid for DAYS days (a negative count gives an expired certificate).
make_cert() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$PKI/$1.key" -out "$PKI/$1.csr" 2>/dev/null &&
        printf 'extendedKeyUsage=clientAuth\n' >"$PKI/ext.cnf" &&
        openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/$2.pem" -CAkey "$PKI/$2.key" \
            -CAcreateserial -days "$3" -extfile "$PKI/ext.cnf" -out "$PKI/$1.pem" 2>/dev/null
}
fingerprint() { openssl x509 -in "$PKI/$1.pem" -noout -fingerprint -sha256 | cut -d= -f2; }
# with_cert NAME METHOD PATH [curl options]: api call with the client certificate NAME.
with_cert() {
    local name="$1"
    shift
    api "$@" --cert "$PKI/$name.pem" --key "$PKI/$name.key"
}
# start_server [--client-ca FILE]: server_start with extra server options.
start_server() {
    local wrapper="$E2E_ROOT/coffer-wrapper" real="$COFFER_BIN" rc
    printf '#!/bin/sh\n[ "$1" = server ] && { shift; exec "%s" server "$@" %s; }\nexec "%s" "$@"\n' \
        "$real" "$*" "$real" >"$wrapper"
    chmod 700 "$wrapper"
    COFFER_BIN="$wrapper"
    server_start "$DATA"
    rc=$?
    COFFER_BIN="$real"
    return "$rc"
}

make_ca client-ca && make_ca other-ca &&
    make_cert ci client-ca 10 && make_cert stranger client-ca 10 &&
    make_cert old client-ca -1 && make_cert foreign other-ca 10
assert_eq "$?" 0 "test certificates created"

run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
if ! start_server --client-ca "$PKI/client-ca.pem"; then
    fail "server starts with --client-ca"
    e2e_finish
fi
ok "server starts with --client-ca"
echo "bytes" >"$E2E_ROOT/f.bin"

use_config admin
expect_ok login_cli admin "$ADMIN_PW"
printf '%s\n' "$ALICE_PW" | coffer user add alice --password-stdin >/dev/null
expect_ok coffer role bind data-scientist user:alice
use_config alice
expect_ok login_cli alice "$ALICE_PW"
expect_ok coffer push "$E2E_ROOT/f.bin" fraud/dev/data-a --kind dataset
expect_ok coffer push "$E2E_ROOT/f.bin" fraud/dev/model-a --kind model

log "binding"
FP=$(fingerprint ci)
expect_exit 4 coffer service cert add ci-cert --fingerprint "$FP" --role ml-engineer
ok "a non-administrator cannot bind a certificate"
use_config admin
expect_exit 2 coffer service cert add ci-cert --fingerprint abcd --role ml-engineer
ok "a malformed fingerprint is refused"
expect_exit 2 coffer service cert add ci-cert --fingerprint "$FP" --role no-such-role
expect_exit 2 coffer service cert add ci-cert --fingerprint "$FP" --role ml-engineer --owner nobody
expect_ok coffer service cert add ci-cert --fingerprint "$FP" --role ml-engineer --owner alice
assert_contains "$(cat "$LAST_OUT")" "service:ci-cert" "the binding names the service account"
expect_exit 6 coffer service cert add ci-other --fingerprint "$FP" --role viewer
ok "a certificate is bound at most once"
expect_exit 6 coffer service cert add ci-cert --fingerprint "$(fingerprint stranger)" --role viewer
ok "an active service account name cannot be reused"
expect_ok coffer service cert add old-cert --fingerprint "$(fingerprint old)" --role viewer
expect_ok coffer service cert add foreign-cert --fingerprint "$(fingerprint foreign)" --role viewer

log "authentication"
assert_eq "$(with_cert ci GET /v1/auth/whoami)" 200 "a bound certificate authenticates"
assert_eq "$(json_field principal "$E2E_ROOT/api.body")" ci-cert "it acts as its service account"
assert_eq "$(json_field type "$E2E_ROOT/api.body")" service "principal type service"
assert_eq "$(json_field auth_method "$E2E_ROOT/api.body")" mtls "auth method mtls"
assert_eq "$(json_field owner "$E2E_ROOT/api.body")" alice "the owner is named"
assert_ne "$(json_field cert_id "$E2E_ROOT/api.body")" "" "the binding id is shown"
assert_eq "$(api GET /v1/auth/whoami)" 401 "no certificate and no token: 401"
assert_eq "$(with_cert stranger GET /v1/auth/whoami)" 401 "an unbound certificate is refused"
assert_eq "$(with_cert foreign GET /v1/auth/whoami)" 401 "a certificate of another CA is refused"
assert_eq "$(with_cert old GET /v1/auth/whoami)" 401 "an expired certificate is refused"
ADMIN_TOKEN=$(api_token admin "$ADMIN_PW")
assert_eq "$(with_cert ci GET /v1/auth/whoami -H "Authorization: Bearer $ADMIN_TOKEN")" 200 \
    "a bearer token takes precedence over the certificate"
assert_eq "$(json_field principal "$E2E_ROOT/api.body")" admin "the bearer token's principal is used"

log "scope: intersection of the binding's roles and the owner's"
put() { with_cert ci PUT "/v1/objects/$1?kind=$2" -H 'Content-Type: application/octet-stream' \
    --data-binary @"$E2E_ROOT/f.bin"; }
assert_eq "$(put fraud/dev/model-b model)" 201 "certificate: model in dev (both allow)"
assert_eq "$(put fraud/staging/model-b model)" 403 "certificate: model in staging denied (the owner may not)"
assert_eq "$(put fraud/dev/data-b dataset)" 403 "certificate: dataset denied (the role may not)"
assert_eq "$(with_cert ci GET /v1/objects/fraud/dev/model-a)" 200 "certificate: model download allowed"
assert_eq "$(with_cert ci GET /v1/objects/fraud/dev/data-a)" 403 "certificate: dataset download denied"
assert_eq "$(with_cert ci GET /v1/users)" 403 "certificate: administration denied"
assert_eq "$(with_cert ci POST /v1/tokens -H 'Content-Type: application/json' \
    --data-binary '{"name":"x","roles":["viewer"],"expires_in":60}')" 403 \
    "certificate: cannot create API tokens"

log "listing and removal"
expect_ok coffer service cert ls --json
assert_contains "$(cat "$LAST_OUT")" '"name": "ci-cert"' "ls lists the binding"
assert_contains "$(cat "$LAST_OUT")" "$(printf '%s' "$FP" | tr -d ':' | tr 'A-F' 'a-f')" \
    "ls shows the fingerprint"
CERT_ID=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print([c['id'] for c in d['certs'] if c['name']=='ci-cert'][0])" "$LAST_OUT")
used=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print([c['last_used_at'] for c in d['certs'] if c['name']=='ci-cert'][0])" "$LAST_OUT")
assert_ne "$used" 0 "ls shows the last use"
use_config alice
expect_exit 4 coffer service cert ls
ok "a non-administrator cannot list bindings"
expect_exit 4 coffer service cert rm "$CERT_ID"
use_config admin
expect_ok coffer service cert rm "$CERT_ID"
assert_eq "$(with_cert ci GET /v1/auth/whoami)" 401 "a removed binding is refused on the next request"
expect_exit 6 coffer service cert rm "$CERT_ID"
expect_exit 5 coffer service cert rm 999999
expect_ok coffer service cert add ci-cert --fingerprint "$FP" --role viewer --owner alice
assert_eq "$(with_cert ci GET /v1/auth/whoami)" 200 "the certificate can be bound again"
expect_ok coffer user disable alice
assert_eq "$(with_cert ci GET /v1/auth/whoami)" 401 "a disabled owner's certificates stop working"

audit_text=$(cat "$DATA"/audit/* 2>/dev/null | tr -c '[:print:]\n' '\n')
assert_contains "$audit_text" '"cert-add"' "bindings are audit events"
assert_contains "$audit_text" '"cert-rm"' "removals are audit events"
assert_contains "$audit_text" '"mtls"' "requests record the auth method mtls"

log "without --client-ca"
expect_ok coffer service cert add stranger-cert --fingerprint "$(fingerprint stranger)" --role viewer
assert_eq "$(with_cert stranger GET /v1/auth/whoami)" 200 "a bound certificate of the admin works"
expect_ok server_stop
if ! start_server; then
    fail "server starts without --client-ca"
    e2e_finish
fi
ok "server starts without --client-ca"
use_config admin
expect_ok login_cli admin "$ADMIN_PW"
assert_eq "$(with_cert stranger GET /v1/auth/whoami)" 401 "a bound client certificate is ignored (401)"
assert_eq "$(api GET /v1/health --cert "$PKI/stranger.pem" --key "$PKI/stranger.key")" 200 \
    "TLS with a client certificate still works"

expect_ok server_stop
e2e_finish
