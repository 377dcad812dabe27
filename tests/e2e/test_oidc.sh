#!/usr/bin/env bash
# End-to-end test of OIDC bearer tokens against a real provider
# (oidc-provider from the npm registry, started on loopback) issuing JWT
# access tokens through the client-credentials grant, signed RS256, ES256 and
# EdDSA; group mapping, amr -> MFA, COFFER_TOKEN and login
# --oidc-token-stdin; forged tokens for every rejection rule; a JWKS file
# issuer whose key set is refreshed on an unknown kid, at most every 30 s.
. "$(dirname "$0")/lib.sh"
e2e_init oidc

ADMIN_PW='Adm1n-E2E-Password-long!'
DATA="$E2E_ROOT/data"
OIDC_SRC="$COFFER_SRC/tests/e2e/oidc"
IDP="$E2E_ROOT/idp"

log "installing the test identity provider (npm)"
mkdir -p "$IDP"
cp "$OIDC_SRC/package.json" "$OIDC_SRC/provider.js" "$OIDC_SRC/forge.js" "$IDP/"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    fail "node and npm are installed (Debian packages nodejs and npm)"
    e2e_finish
fi
if ! (cd "$IDP" && npm install --no-audit --no-fund --loglevel=error >"$E2E_ROOT/npm.log" 2>&1); then
    sed -e 's/^/#   /' "$E2E_ROOT/npm.log" | tail -n 20 >&2
    fail "npm install oidc-provider"
    e2e_finish
fi
ok "npm install oidc-provider"

node "$IDP/provider.js" "$IDP/port" "$IDP/keys.json" >"$E2E_ROOT/idp.log" 2>&1 &
IDP_PID=$!
bg_track "$IDP_PID"
for _ in $(seq 1 100); do
    [ -s "$IDP/port" ] && break
    sleep 0.1
done
if [ ! -s "$IDP/port" ]; then
    sed -e 's/^/#   /' "$E2E_ROOT/idp.log" >&2
    fail "the identity provider starts"
    e2e_finish
fi
IDP_URL="http://127.0.0.1:$(cat "$IDP/port")"
ok "the identity provider listens on $IDP_URL"

# get_token CLIENT: an access token from the client-credentials grant.
get_token() {
    curl -s --max-time 30 -u "$1:$1-secret-0123456789" -d grant_type=client_credentials \
        -d resource=urn:coffer -d scope=registry "$IDP_URL/token" | json_field access_token
}
forge() { node "$IDP/forge.js" sign "$IDP/keys.json" "$1" "${2:-$IDP_URL}" urn:coffer "${3:-ci-forged}"; }
whoami_status() { api GET /v1/auth/whoami -H "Authorization: Bearer $1"; }

run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
ok "server starts"
use_config admin
expect_ok login_cli admin "$ADMIN_PW"
expect_ok coffer group add ml
expect_ok coffer role bind ml-engineer group:ml

log "issuer configuration"
expect_exit 2 coffer oidc add bad --issuer https://idp.example --audience urn:coffer \
    --jwks-uri http://idp.example/jwks
assert_contains "$(cat "$LAST_ERR")" "https" "a plain-http JWKS URL off loopback is refused"
expect_exit 2 coffer oidc add bad --issuer https://idp.example --audience urn:coffer
expect_ok coffer oidc add testidp --issuer "$IDP_URL" --audience urn:coffer \
    --jwks-uri "$IDP_URL/jwks" --type service --map-group ml-engineers=ml --mfa-amr hwk
expect_ok coffer oidc ls
assert_contains "$(cat "$LAST_OUT")" "$IDP_URL" "oidc ls shows the issuer"

log "tokens from the provider"
for client in ci-rsa ci-ec ci-ed; do
    tok=$(get_token "$client")
    assert_ne "$tok" "" "$client gets an access token from the provider"
    assert_eq "$(whoami_status "$tok")" 200 "$client token is accepted"
    assert_eq "$(json_field principal "$E2E_ROOT/api.body")" "$client" "$client: principal from sub"
    assert_eq "$(json_field auth_method "$E2E_ROOT/api.body")" oidc "$client: auth method oidc"
    assert_eq "$(json_field type "$E2E_ROOT/api.body")" service "$client: principal type service"
    assert_eq "$(json_field mfa "$E2E_ROOT/api.body")" false "$client: no MFA without an amr"
done
alg_of() { cut -d. -f1 <<<"$1" | tr '_-' '/+' | base64 -d 2>/dev/null | json_field alg; }
assert_eq "$(alg_of "$(get_token ci-ed)")" EdDSA "the provider signed ci-ed's token with EdDSA"
assert_eq "$(alg_of "$(get_token ci-rsa)")" RS256 "the provider signed ci-rsa's token with RS256"
TOKEN=$(get_token ci-ec)
whoami_status "$TOKEN" >/dev/null
assert_contains "$(api_body)" '"ml"' "the IdP group ml-engineers maps to the Coffer group ml"
assert_not_contains "$(api_body)" "unmapped-team" "unmapped IdP groups are ignored"
MFA_TOKEN=$(get_token ci-mfa)
whoami_status "$MFA_TOKEN" >/dev/null
assert_eq "$(json_field mfa "$E2E_ROOT/api.body")" true "amr hwk counts as MFA"

log "use through the CLI"
echo "bytes" >"$E2E_ROOT/f.bin"
expect_ok env COFFER_TOKEN="$TOKEN" "$COFFER_BIN" push "$E2E_ROOT/f.bin" fraud/dev/m --kind model
ok "COFFER_TOKEN with an OIDC token: push allowed through the mapped group's role"
expect_exit 4 env COFFER_TOKEN="$TOKEN" "$COFFER_BIN" push "$E2E_ROOT/f.bin" fraud/dev/d --kind dataset
use_config oidc
run_cmd sh -c "printf '%s\n' '$TOKEN' | '$COFFER_BIN' login --server '$SERVER_URL' --ca '$DATA/tls/ca.pem' --oidc-token-stdin"
assert_eq "$LAST_RC" 0 "login --oidc-token-stdin"
expect_ok coffer whoami
assert_contains "$(cat "$LAST_OUT")" "service:ci-ec" "whoami after login --oidc-token-stdin"
run_cmd sh -c "printf 'not-a-token\n' | '$COFFER_BIN' login --server '$SERVER_URL' --ca '$DATA/tls/ca.pem' --oidc-token-stdin"
assert_eq "$LAST_RC" 3 "login --oidc-token-stdin refuses a bad token"

log "forged tokens"
assert_eq "$(whoami_status "$(forge valid-ec)")" 200 "control: a token signed with the issuer's ES256 key passes"
assert_eq "$(whoami_status "$(forge valid-rsa)")" 200 "control: RS256"
assert_eq "$(whoami_status "$(forge valid-ed)")" 200 "control: EdDSA"
assert_eq "$(whoami_status "$(forge leeway)")" 200 "expired 20 s ago passes within the 60 s leeway"
for c in none hs256 confusion expired nbf future-iat wrong-aud no-exp unknown-kid wrong-key alg-mismatch tampered; do
    assert_eq "$(whoami_status "$(forge "$c")")" 401 "forged token rejected: $c"
done
assert_eq "$(whoami_status "$(forge valid-ec http://127.0.0.1:1)")" 401 "forged token rejected: untrusted issuer"
assert_eq "$(whoami_status "$(forge valid-ec "$IDP_URL" 'bad name!')")" 401 "forged token rejected: unusable subject"
assert_eq "$(whoami_status "${TOKEN}x")" 401 "a token with a damaged signature is rejected"
check_not "rejections do not log tokens" grep -qF "$TOKEN" "$SERVER_LOG"
assert_contains "$(cat "$SERVER_LOG")" "rejected" "rejections are logged with a reason"

log "JWKS file issuer: refresh on an unknown kid"
use_config admin
node "$IDP/forge.js" genkeys "$IDP/file-keys.json" a b
node -e "const fs=require('fs');const k=JSON.parse(fs.readFileSync(process.argv[1]));k.keys=k.keys.filter(x=>x.kid==='a');fs.writeFileSync(process.argv[2],JSON.stringify(k))" \
    "$IDP/file-keys.json" "$IDP/file-a.json"
node "$IDP/forge.js" public "$IDP/file-a.json" "$DATA/jwks-file.json"
expect_ok coffer oidc add files --issuer https://files.example --audience urn:coffer \
    --jwks-file "$DATA/jwks-file.json" --user-claim sub
file_tok() { node "$IDP/forge.js" sign "$IDP/file-keys.json" "kid=$1" https://files.example urn:coffer file-user; }
assert_eq "$(whoami_status "$(file_tok a)")" 200 "file issuer: token with key a"
assert_eq "$(json_field type "$E2E_ROOT/api.body")" user "file issuer: principal type user by default"
assert_eq "$(whoami_status "$(file_tok b)")" 401 "file issuer: key b is unknown"
node "$IDP/forge.js" public "$IDP/file-keys.json" "$DATA/jwks-file.json"
assert_eq "$(whoami_status "$(file_tok b)")" 401 "no refresh within 30 s of the last fetch"
sleep 31
assert_eq "$(whoami_status "$(file_tok b)")" 200 "an unknown kid refreshes the key set after 30 s"
expect_ok coffer oidc rm files
assert_eq "$(whoami_status "$(file_tok a)")" 401 "a removed issuer's tokens are refused"

audit_text=$(cat "$DATA"/audit/* 2>/dev/null | tr -c '[:print:]\n' '\n')
assert_contains "$audit_text" '"oidc"' "requests with OIDC tokens are audit events with auth method oidc"
assert_contains "$audit_text" 'oidc-add' "issuer changes are audit events"

expect_ok server_stop
kill "$IDP_PID" 2>/dev/null
wait "$IDP_PID" 2>/dev/null
e2e_finish
