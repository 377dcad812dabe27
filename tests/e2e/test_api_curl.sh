#!/usr/bin/env bash
# End-to-end test of the HTTP API driven with curl (and openssl s_client for
# the TLS checks): status codes, error bodies, request validation, streamed
# push and pull, and the TLS protocol and cipher policy.
. "$(dirname "$0")/lib.sh"
e2e_init api

ADMIN_PW='Adm1n-Api-Password-long!'
DATA="$E2E_ROOT/data"
FILES=$(e2e_tmpdir files)

run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
ok "server starts"
CA="$DATA/tls/ca.pem"
HOSTPORT="127.0.0.1:$SERVER_PORT"

# assert_error STATUS_GOT STATUS_WANT CODE DESC: checks the status and that
# the body of the last api call is {"error":{"code":CODE,"message":...}}.
assert_error() {
    assert_eq "$1" "$2" "$4: status $2"
    local body
    body=$(api_body)
    if printf '%s' "$body" | grep -qE '^\{"error":\{' &&
        [ "$(json_field code "$E2E_ROOT/api.body")" = "$3" ] &&
        [ -n "$(json_field message "$E2E_ROOT/api.body")" ]; then
        ok "$4: error body with code $3 and a message"
    else
        fail "$4: error body with code $3 and a message (got: $(printf '%s' "$body" | head -c 300))"
    fi
}

# headers_of METHOD PATH [curl options]: response headers (lower-cased names).
headers_of() {
    local method="$1" path="$2"
    shift 2
    curl -s --path-as-is --max-time 60 --cacert "$CA" -X "$method" -o /dev/null -D - "$@" \
        "$SERVER_URL$path" | tr -d '\r' | sed -E 's/^([^:]+):/\L\1:/'
}

# --------------------------------------------------------------------------
log "health and authentication"
assert_eq "$(api GET /v1/health)" 200 "GET /v1/health without authentication"
assert_eq "$(json_field status "$E2E_ROOT/api.body")" ok "health body"
hdrs=$(headers_of GET /v1/health)
assert_contains "$hdrs" "content-type: application/json" "JSON content type"
assert_contains "$hdrs" "cache-control: no-store" "responses are not cached"
assert_contains "$hdrs" "strict-transport-security:" "HSTS header"
assert_contains "$hdrs" "x-content-type-options: nosniff" "nosniff header"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -I --cacert "$CA" "$SERVER_URL/v1/health")" 200 \
    "HEAD /v1/health"
assert_ne "$(curl -s -o /dev/null -w '%{http_code}' "$SERVER_URL/v1/health")" 200 \
    "an untrusted CA is refused by a verifying client"

assert_error "$(api GET /v1/auth/whoami)" 401 unauthenticated "whoami without a token"
assert_contains "$(headers_of GET /v1/auth/whoami)" "www-authenticate: Bearer" \
    "401 carries WWW-Authenticate: Bearer"
assert_error "$(api GET /v1/auth/whoami -H 'Authorization: Bearer cfs_not-a-real-token')" 401 \
    unauthenticated "whoami with a bad token"
assert_error "$(api GET /v1/auth/whoami -H 'Authorization: Bearer ')" 401 unauthenticated \
    "whoami with an empty token"
assert_error "$(api GET /v1/auth/whoami -H 'Authorization: Basic YWRtaW46eA==')" 401 \
    unauthenticated "whoami with Basic authentication"
assert_error "$(api GET /v1/list)" 401 unauthenticated "list without a token"
assert_error "$(api PUT /v1/objects/fraud/dev/x -H 'Content-Type: application/octet-stream' \
    --data-binary 'abc')" 401 unauthenticated "push without a token"
assert_error "$(api GET /v1/objects/fraud/dev/x)" 401 unauthenticated "pull without a token"

status=$(api POST /v1/auth/login -H 'Content-Type: application/json' \
    --data-binary '{"user":"admin","password":"not-the-password"}')
assert_error "$status" 401 unauthenticated "login with a wrong password"
wrong_msg=$(json_field message "$E2E_ROOT/api.body")
status=$(api POST /v1/auth/login -H 'Content-Type: application/json' \
    --data-binary '{"user":"ghost","password":"not-the-password"}')
assert_error "$status" 401 unauthenticated "login as an unknown user"
assert_eq "$(json_field message "$E2E_ROOT/api.body")" "$wrong_msg" \
    "unknown user and wrong password: same message"
assert_error "$(api POST /v1/auth/login -H 'Content-Type: application/json' \
    --data-binary '{"user":"admin"}')" 400 invalid_argument "login without a password"
assert_error "$(api POST /v1/auth/login -H 'Content-Type: application/json' \
    --data-binary '{"user":"admin","password":"x\u0000y"}')" 400 invalid_argument \
    "login with a NUL in the password"

TOKEN=$(api_token admin "$ADMIN_PW")
assert_ne "$TOKEN" "" "POST /v1/auth/login returns a token"
AUTH=(-H "Authorization: Bearer $TOKEN")
assert_eq "$(api GET /v1/auth/whoami "${AUTH[@]}")" 200 "whoami with the token"
assert_eq "$(json_field principal "$E2E_ROOT/api.body")" admin "whoami principal"
assert_eq "$(api GET /v1/auth/whoami -H "Authorization: bearer $TOKEN")" 200 \
    "the Bearer scheme is case-insensitive"

# --------------------------------------------------------------------------
log "request validation"
assert_error "$(api DELETE /v1/health)" 405 method_not_allowed "DELETE on /v1/health"
assert_error "$(api GET /v1/auth/login)" 405 method_not_allowed "GET on /v1/auth/login"
assert_error "$(api POST /v1/list "${AUTH[@]}")" 405 method_not_allowed "POST on /v1/list"
assert_contains "$(headers_of DELETE /v1/health)" "allow: GET" "405 carries an Allow header"
assert_error "$(api TRACE /v1/health)" 405 method_not_allowed "TRACE is not supported"
assert_error "$(api GET /v1/nope "${AUTH[@]}")" 404 not_found "unknown endpoint"
assert_error "$(api GET /v2/health)" 404 not_found "unknown API version"
assert_error "$(api GET /)" 404 not_found "root path"
assert_error "$(api GET /v1/healthz)" 404 not_found "a longer name is not a prefix match"

assert_error "$(api PUT /v1/objects/fraud/dev/x "${AUTH[@]}" -H 'Content-Type: text/plain' \
    --data-binary 'abc')" 415 unsupported_media_type "push as text/plain"
assert_error "$(api PUT /v1/objects/fraud/dev/x "${AUTH[@]}" --data-binary 'abc')" 415 \
    unsupported_media_type "push as application/x-www-form-urlencoded"
assert_error "$(api POST /v1/auth/login -H 'Content-Type: text/plain' \
    --data-binary '{"user":"admin","password":"x"}')" 415 unsupported_media_type \
    "login as text/plain"

head -c $((1024 * 1024 + 100)) /dev/zero | tr '\0' 'a' |
    sed -e 's/^/{"user":"admin","password":"/' -e 's/$/"}/' >"$FILES/huge.json"
assert_error "$(api POST /v1/auth/login -H 'Content-Type: application/json' \
    --data-binary @"$FILES/huge.json")" 413 payload_too_large "login with a JSON body over 1 MiB"
assert_error "$(api POST /v1/auth/login -H 'Content-Type: application/json' \
    -H 'Transfer-Encoding: chunked' --data-binary @"$FILES/huge.json")" 413 payload_too_large \
    "chunked JSON body over 1 MiB"
assert_error "$(api POST /v1/auth/login -H 'Content-Type: application/json' \
    --data-binary '{"user": "admin", "password": ')" 400 invalid_argument "malformed JSON"
assert_error "$(api POST /v1/auth/login -H 'Content-Type: application/json' \
    --data-binary '["admin"]')" 400 invalid_argument "JSON that is not an object"
assert_error "$(api POST /v1/auth/login -H 'Content-Type: application/json' \
    --data-binary '{"user":"admin","user":"root","password":"x"}')" 400 invalid_argument \
    "JSON with a duplicate key"
assert_error "$(api GET /v1/auth/whoami "${AUTH[@]}" -H 'Content-Type: application/json' \
    --data-binary '{}')" 400 invalid_argument "a body on an endpoint that takes none"

assert_error "$(api PUT '/v1/objects/fraud/dev/dup?kind=model&kind=dataset' "${AUTH[@]}" \
    -H 'Content-Type: application/octet-stream' --data-binary 'abc')" 400 invalid_argument \
    "duplicate query parameter kind"
assert_error "$(api PUT '/v1/objects/fraud/dev/dup?kind=weights' "${AUTH[@]}" \
    -H 'Content-Type: application/octet-stream' --data-binary 'abc')" 400 invalid_argument \
    "unknown kind"
assert_error "$(api PUT '/v1/objects/fraud/dev/dup?sensitivity=secret' "${AUTH[@]}" \
    -H 'Content-Type: application/octet-stream' --data-binary 'abc')" 400 invalid_argument \
    "unknown sensitivity"
assert_error "$(api PUT '/v1/objects/fraud/dev/dup?tag=novalue' "${AUTH[@]}" \
    -H 'Content-Type: application/octet-stream' --data-binary 'abc')" 400 invalid_argument \
    "tag without ="
assert_error "$(api GET '/v1/list?prefix=a&prefix=b' "${AUTH[@]}")" 400 invalid_argument \
    "duplicate query parameter prefix"
assert_error "$(api GET '/v1/objects/fraud/dev/caf%C3%A9' "${AUTH[@]}")" 400 invalid_argument \
    "non-ASCII path"
assert_error "$(api GET "/v1/objects/fraud/dev/$(printf 'x%.0s' $(seq 1 2100))" "${AUTH[@]}")" \
    400 invalid_argument "request path over the limit"
assert_error "$(api GET /v1/objects/fraud/dev/../../etc/passwd "${AUTH[@]}")" 400 \
    invalid_argument "dot-dot path"
assert_error "$(api GET /v1/versions/fraud/dev/dup "${AUTH[@]}")" 404 not_found \
    "versions of a missing artifact"
assert_eq "$(api GET /v1/versions/fraud/dev/dup "${AUTH[@]}")" 404 "nothing was created by the bad pushes"

# Content-Length over the upload limit: refused before any body is read.
raw=$(printf 'PUT /v1/objects/fraud/dev/toolarge HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/octet-stream\r\nContent-Length: 999999999999999\r\nConnection: close\r\n\r\n' \
    "$HOSTPORT" "$TOKEN" | timeout 30 openssl s_client -quiet -connect "$HOSTPORT" \
    -CAfile "$CA" 2>/dev/null | head -n 1 | tr -d '\r')
assert_contains "$raw" " 413" "Content-Length over the upload limit is 413"

# --------------------------------------------------------------------------
log "push and pull"
random_file "$FILES/blob" $((5 * 1048576 + 123))
sha=$(sha256sum "$FILES/blob" | cut -c1-64)
status=$(api PUT '/v1/objects/fraud/dev/curl/model.bin?kind=model&tag=team=risk&message=via%20curl' \
    "${AUTH[@]}" -H 'Content-Type: application/octet-stream' -T "$FILES/blob")
assert_eq "$status" 201 "push with curl -T is 201 Created"
assert_eq "$(json_field version "$E2E_ROOT/api.body")" 1 "push returns version 1"
assert_eq "$(json_field sha256 "$E2E_ROOT/api.body")" "$sha" "push returns the SHA-256"
assert_eq "$(json_field size "$E2E_ROOT/api.body")" $((5 * 1048576 + 123)) "push returns the size"
status=$(api PUT '/v1/objects/fraud/dev/curl/model.bin' "${AUTH[@]}" \
    -H 'Content-Type: application/octet-stream; charset=binary' --data-binary 'second')
assert_eq "$status" 201 "content type parameters are accepted"
assert_eq "$(json_field version "$E2E_ROOT/api.body")" 2 "second push is version 2"

curl -s --cacert "$CA" "${AUTH[@]}" -D "$FILES/pull.hdr" -o "$FILES/pull.out" \
    -w '%{http_code}' "$SERVER_URL/v1/objects/fraud/dev/curl/model.bin@1" >"$FILES/pull.status"
assert_eq "$(cat "$FILES/pull.status")" 200 "GET content is 200"
assert_same_file "$FILES/pull.out" "$FILES/blob" "GET content returns the pushed bytes"
hdr=$(tr -d '\r' <"$FILES/pull.hdr" | sed -E 's/^([^:]+):/\L\1:/')
assert_contains "$hdr" "x-coffer-sha256: $sha" "X-Coffer-Sha256 header is the content hash"
assert_contains "$hdr" "x-coffer-version: 1" "X-Coffer-Version header"
assert_contains "$hdr" "content-type: application/octet-stream" "content is octet-stream"
assert_contains "$hdr" "content-length: $((5 * 1048576 + 123))" "Content-Length of the content"
assert_eq "$(curl -s --cacert "$CA" "${AUTH[@]}" "$SERVER_URL/v1/objects/fraud/dev/curl/model.bin")" \
    second "GET of the bare path is the latest version"
assert_eq "$(api GET "/v1/objects/fraud/dev/curl/model.bin@sha256:$sha" "${AUTH[@]}")" 200 \
    "GET by content address"
assert_same_file "$E2E_ROOT/api.body" "$FILES/blob" "content address returns the right bytes"
assert_error "$(api GET /v1/objects/fraud/dev/curl/model.bin@3 "${AUTH[@]}")" 404 not_found \
    "GET of a missing version"

assert_eq "$(api GET /v1/artifacts/fraud/dev/curl/model.bin@1 "${AUTH[@]}")" 200 "show via the API"
assert_eq "$(json_field kind "$E2E_ROOT/api.body")" model "show: kind"
assert_eq "$(json_field team "$E2E_ROOT/api.body")" risk "show: tag from the query"
assert_eq "$(json_field message "$E2E_ROOT/api.body")" "via curl" "show: message from the query"
assert_eq "$(api GET /v1/versions/fraud/dev/curl/model.bin "${AUTH[@]}")" 200 "versions via the API"
assert_eq "$(grep -o '"version":[0-9]*' "$E2E_ROOT/api.body" | tr '\n' ' ')" \
    '"version":1 "version":2 ' "versions lists 1 and 2"
assert_eq "$(api GET '/v1/list?prefix=fraud/dev/' "${AUTH[@]}")" 200 "list via the API"
assert_contains "$(api_body)" '"path":"fraud/dev/curl/model.bin"' "list shows the artifact"
assert_eq "$(api GET '/v1/list?prefix=credit/' "${AUTH[@]}")" 200 "list of another prefix"
assert_not_contains "$(api_body)" 'fraud/dev/curl' "list honours the prefix"

assert_eq "$(api PATCH /v1/artifacts/fraud/dev/curl/model.bin "${AUTH[@]}" \
    -H 'Content-Type: application/json' --data-binary '{"tags":{"pii":"true"}}')" 200 \
    "PATCH label"
assert_eq "$(json_field pii "$E2E_ROOT/api.body")" true "PATCH label sets the tag"
assert_error "$(api PATCH /v1/artifacts/fraud/dev/curl/model.bin "${AUTH[@]}" \
    -H 'Content-Type: application/json' --data-binary '{"colour":"red"}')" 400 invalid_argument \
    "PATCH with an unknown field"
assert_error "$(api PATCH /v1/artifacts/fraud/dev/curl/model.bin "${AUTH[@]}" \
    -H 'Content-Type: application/json' --data-binary '{"sensitivity":"ultra"}')" 400 \
    invalid_argument "PATCH with an unknown sensitivity"
assert_error "$(api PUT '/v1/objects/fraud/dev/curl/model.bin?kind=dataset' "${AUTH[@]}" \
    -H 'Content-Type: application/octet-stream' --data-binary 'x')" 409 conflict \
    "a new version cannot change the kind"

assert_eq "$(api DELETE /v1/objects/fraud/dev/curl/model.bin@2 "${AUTH[@]}")" 200 "DELETE a version"
assert_error "$(api GET /v1/objects/fraud/dev/curl/model.bin@2 "${AUTH[@]}")" 404 not_found \
    "GET of a deleted version"
assert_eq "$(api GET /v1/objects/fraud/dev/curl/model.bin "${AUTH[@]}")" 200 \
    "latest falls back to the remaining version"
assert_same_file "$E2E_ROOT/api.body" "$FILES/blob" "latest is version 1 again"

# Logout revokes the token.
assert_eq "$(api POST /v1/auth/logout "${AUTH[@]}")" 204 "logout"
assert_error "$(api GET /v1/auth/whoami "${AUTH[@]}")" 401 unauthenticated "token revoked by logout"

# --------------------------------------------------------------------------
log "TLS"
if curl -s -o /dev/null --max-time 20 --cacert "$CA" --tlsv1 --tls-max 1.1 \
    "$SERVER_URL/v1/health"; then
    fail "TLS 1.1 is refused"
else
    ok "TLS 1.1 is refused"
fi
if curl -s -o /dev/null --max-time 20 --cacert "$CA" --tlsv1.2 --tls-max 1.2 \
    "$SERVER_URL/v1/health"; then
    ok "TLS 1.2 is accepted"
else
    fail "TLS 1.2 is accepted"
fi
tls_probe() {
    timeout 20 openssl s_client -connect "$HOSTPORT" -CAfile "$CA" -verify_return_error "$@" \
        </dev/null >"$E2E_ROOT/tls.out" 2>&1
}
check "TLS 1.3 handshake succeeds" tls_probe -tls1_3
assert_contains "$(cat "$E2E_ROOT/tls.out")" "TLSv1.3" "TLS 1.3 is negotiated"
check "TLS 1.2 with an AEAD ECDHE cipher succeeds" tls_probe -tls1_2 \
    -cipher 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256'
check_not "TLS 1.2 with AES128-SHA (CBC, no forward secrecy) fails" tls_probe -tls1_2 \
    -cipher AES128-SHA
check_not "TLS 1.2 with ECDHE-ECDSA-AES128-SHA (CBC) fails" tls_probe -tls1_2 \
    -cipher 'ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA'
check_not "TLS 1.2 with AES256-GCM-SHA384 (no forward secrecy) fails" tls_probe -tls1_2 \
    -cipher AES256-GCM-SHA384
check_not "TLS 1.1 handshake fails" tls_probe -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
check_not "plain HTTP on the TLS port gets no HTTP answer" \
    sh -c "curl -s --max-time 10 'http://$HOSTPORT/v1/health' | grep -q status"

server_stop TERM
assert_eq "$?" 0 "server exits 0 on SIGTERM"
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$E2E_ROOT"/server-*.log; then
    fail "sanitizer reports in the server log"
    grep -hE -A5 'AddressSanitizer|LeakSanitizer|runtime error' "$E2E_ROOT"/server-*.log | head -40 >&2
else
    ok "no sanitizer reports in the server log"
fi

e2e_finish
