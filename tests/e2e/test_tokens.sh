#!/usr/bin/env bash
# End-to-end test of API tokens (service accounts): shown once with the
# cfr_ prefix, stored only as a hash, COFFER_TOKEN and Bearer use, the scope
# is the intersection of the token's roles and its owner's permissions,
# mandatory and capped expiry, expiry and revocation effective on the next
# request, last use shown, owners and administrators only, audit events.
. "$(dirname "$0")/lib.sh"
e2e_init tokens

ADMIN_PW='Adm1n-E2E-Password-long!'
ALICE_PW='Alice-E2E-Password-42'
BOB_PW='Bob-E2E-Password-4242'
DATA="$E2E_ROOT/data"

run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
echo '{"tokens": {"max_lifetime_days": 30}}' >"$DATA/authn.json"
if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
ok "server starts"
echo "bytes" >"$E2E_ROOT/f.bin"

use_config admin
expect_ok login_cli admin "$ADMIN_PW"
printf '%s\n' "$ALICE_PW" | coffer user add alice --password-stdin >/dev/null
printf '%s\n' "$BOB_PW" | coffer user add bob --password-stdin >/dev/null
expect_ok coffer role bind data-scientist user:alice
expect_ok coffer role bind viewer user:bob

use_config alice
expect_ok login_cli alice "$ALICE_PW"

log "creation"
expect_exit 2 coffer token create --name ci --role ml-engineer
assert_contains "$(cat "$LAST_ERR")" "--expires" "expiry is mandatory"
expect_exit 2 coffer token create --name ci --expires 31d --role ml-engineer
assert_contains "$(cat "$LAST_ERR")" "30 days" "expiry is capped by the configured maximum"
expect_exit 2 coffer token create --name ci --expires 1d --role no-such-role
expect_exit 2 coffer token create --name 'Bad Name' --expires 1d --role viewer
expect_ok coffer token create --name ci --expires 7d --role ml-engineer
TOKEN=$(head -n 1 "$LAST_OUT")
assert_contains "$TOKEN" "cfr_" "the token has the cfr_ prefix"
assert_eq "${#TOKEN}" 47 "the token is 47 characters"
assert_contains "$(cat "$LAST_ERR")" "shown only now" "the CLI says the token is shown once"
expect_exit 6 coffer token create --name ci --expires 1d --role viewer
ok "an active token name cannot be reused"

log "hash-only storage"
check_not "the token text is not in the database" grep -qaF "$TOKEN" "$DATA"/coffer.db*
check_not "the token's secret part is not in the database" grep -qaF "${TOKEN#cfr_}" "$DATA"/coffer.db*
check_not "the token is not in the server log" grep -qF "$TOKEN" "$SERVER_LOG"

log "use"
status=$(api GET /v1/auth/whoami -H "Authorization: Bearer $TOKEN")
assert_eq "$status" 200 "Authorization: Bearer with the token"
assert_eq "$(json_field principal "$E2E_ROOT/api.body")" ci "the token acts as its service account"
assert_eq "$(json_field type "$E2E_ROOT/api.body")" service "principal type service"
assert_eq "$(json_field auth_method "$E2E_ROOT/api.body")" token "auth method token"
assert_eq "$(json_field owner "$E2E_ROOT/api.body")" alice "the owner is named"
with_token() { COFFER_TOKEN="$TOKEN" coffer "$@"; }
expect_ok with_token whoami
assert_contains "$(cat "$LAST_OUT")" "service:ci" "COFFER_TOKEN works with the CLI"

log "scope: intersection of the token's roles and the owner's"
# alice (data-scientist): writes anything in dev. ml-engineer: writes models
# in dev and staging, never datasets. The token: models in dev only.
expect_ok with_token push "$E2E_ROOT/f.bin" fraud/dev/model-a --kind model
ok "token: model in dev (both allow)"
expect_exit 4 with_token push "$E2E_ROOT/f.bin" fraud/staging/model-a --kind model
ok "token: model in staging denied (the owner may not)"
expect_exit 4 with_token push "$E2E_ROOT/f.bin" fraud/dev/data-a --kind dataset
ok "token: dataset in dev denied (the token's role may not)"
expect_ok coffer push "$E2E_ROOT/f.bin" fraud/dev/data-a --kind dataset
ok "alice herself may push the dataset"
expect_exit 4 coffer push "$E2E_ROOT/f.bin" fraud/staging/model-b --kind model
ok "alice herself may not write in staging"
expect_ok with_token pull fraud/dev/model-a -o "$E2E_ROOT/out.bin"
ok "token: download of a model allowed by both"
expect_exit 4 with_token pull fraud/dev/data-a -o "$E2E_ROOT/out2.bin"
ok "token: download of training data denied (ml-engineer never reads datasets)"
expect_ok coffer token create --name ci-admin --expires 1h --role admin
ADMIN_TOKEN=$(head -n 1 "$LAST_OUT")
expect_exit 4 env COFFER_TOKEN="$ADMIN_TOKEN" "$COFFER_BIN" user ls
ok "a token bound to admin cannot exceed its non-admin owner"
expect_exit 4 with_token token create --name nested --expires 1h --role viewer
ok "a token cannot create tokens"

log "listing and last use"
expect_ok coffer token ls --json
assert_contains "$(cat "$LAST_OUT")" '"name": "ci"' "token ls lists the token"
assert_not_contains "$(cat "$LAST_OUT")" "$TOKEN" "token ls never shows the token"
used=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print([t['last_used_at'] for t in d['tokens'] if t['name']=='ci'][0])" "$LAST_OUT")
assert_ne "$used" 0 "token ls shows the last use"
expect_ok coffer token ls
assert_contains "$(cat "$LAST_OUT")" "active" "token ls shows the state"
TOKEN_ID=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print([t['id'] for t in d['tokens'] if t['name']=='ci'][0])" <(coffer token ls --json) )

log "revocation"
use_config bob
expect_ok login_cli bob "$BOB_PW"
expect_exit 5 coffer token revoke "$TOKEN_ID"
ok "another user cannot revoke the token"
expect_exit 4 coffer token ls --all
use_config alice
expect_ok coffer token revoke "$TOKEN_ID"
assert_eq "$(api GET /v1/auth/whoami -H "Authorization: Bearer $TOKEN")" 401 \
    "a revoked token is refused on the next request"
expect_exit 3 with_token whoami
expect_exit 6 coffer token revoke "$TOKEN_ID"
expect_ok coffer token create --name ci --expires 1h --role viewer
ok "the name of a revoked token can be reused"

log "expiry"
expect_ok coffer token create --name short --expires 2s --role viewer
SHORT=$(head -n 1 "$LAST_OUT")
assert_eq "$(api GET /v1/auth/whoami -H "Authorization: Bearer $SHORT")" 200 "fresh token works"
sleep 3
assert_eq "$(api GET /v1/auth/whoami -H "Authorization: Bearer $SHORT")" 401 "expired token is refused"

log "administrators and disabled owners"
use_config admin
expect_ok coffer token ls --all
assert_contains "$(cat "$LAST_OUT")" "alice" "an administrator lists everyone's tokens"
ADMIN_ID=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print([t['id'] for t in d['tokens'] if t['name']=='ci-admin'][0])" <(coffer token ls --all --json))
use_config alice
expect_ok coffer token create --name ci2 --expires 1h --role viewer
T2=$(head -n 1 "$LAST_OUT")
use_config admin
expect_ok coffer token revoke "$ADMIN_ID"
ok "an administrator revokes another user's token"
assert_eq "$(api GET /v1/auth/whoami -H "Authorization: Bearer $T2")" 200 "token works before its owner is disabled"
expect_ok coffer user disable alice
assert_eq "$(api GET /v1/auth/whoami -H "Authorization: Bearer $T2")" 401 "a disabled owner's tokens stop working"
assert_eq "$(api GET /v1/auth/whoami -H "Authorization: Bearer cfr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")" 401 "an unknown token is refused"

audit_text=$(cat "$DATA"/audit/* 2>/dev/null | tr -c '[:print:]\n' '\n')
assert_contains "$audit_text" '"self:Token"' "token changes are audit events"
assert_contains "$audit_text" 'revoked by an administrator' "revocations are audit events"
assert_not_contains "$audit_text" "$TOKEN" "the audit log never holds a token"

expect_ok server_stop
e2e_finish
