#!/usr/bin/env bash
# End-to-end test of environments and promotion: a request, approval by
# other principals (two-person rule, N approvers), self-approval refused
# even for an admin, rejection, expiry, direct pushes into a promotion-only
# environment refused, prod refused without MFA, and identical content
# (same SHA-256, re-encrypted, lineage to the source) after promotion.
. "$(dirname "$0")/lib.sh"
e2e_init promote

ADMIN_PW='Adm1n-Promote-Password-long!'
DATA="$E2E_ROOT/data"
FILES=$(e2e_tmpdir files)

as() {
    local u="$1"
    shift
    (
        export XDG_CONFIG_HOME="$E2E_ROOT/config-$u"
        "$@"
    )
}
pw_of() { printf '%s-Promote-Pw-2024!' "$1"; }

run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
check "init writes the default environments file" test -s "$DATA/environments.json"
assert_file_mode "$DATA/environments.json" 600
assert_contains "$(cat "$DATA/environments.json")" '"approvals_required": 2' "prod needs two approvers by default"

# staging accepts versions only by promotion, with two approvers.
cat >"$DATA/environments.json" <<'JSON'
{
  "environments": [
    {"name": "dev", "mfa_for_writes": false, "allowed_networks": [], "direct_push": true, "approvals_required": 0},
    {"name": "staging", "mfa_for_writes": false, "allowed_networks": ["127.0.0.0/8", "::1/128"], "direct_push": false, "approvals_required": 2},
    {"name": "prod", "mfa_for_writes": true, "allowed_networks": ["10.0.0.0/8"], "direct_push": false, "approvals_required": 2}
  ],
  "promotion": {"request_lifetime": "1h"}
}
JSON
if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
ok "server starts with a custom environments file"

as admin login_cli admin "$ADMIN_PW" >/dev/null 2>&1
for u in alice bob carol dave; do
    pw_of "$u" | as admin coffer user add "$u" --password-stdin >/dev/null 2>&1
    as "$u" login_cli "$u" "$(pw_of "$u")" >/dev/null 2>&1
done
cat >"$FILES/approver.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [
  {"Sid": "ApproveStaging", "Effect": "Allow", "Action": "artifact:Approve", "Resource": "*/staging/*"},
  {"Sid": "ReadAll", "Effect": "Allow", "Action": ["artifact:List", "artifact:Read", "artifact:Download"], "Resource": "*"}
]}
JSON
expect_ok as admin coffer role create release-approver --policy "$FILES/approver.json"
expect_ok as admin coffer role bind ml-engineer user:alice
expect_ok as admin coffer role bind release-approver user:bob
expect_ok as admin coffer role bind release-approver user:carol
expect_ok as admin coffer role bind viewer user:dave

printf 'MARKER-PLAINTEXT-%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$FILES/model"
head -c 200000 /dev/urandom >>"$FILES/model"
random_file "$FILES/model2" 5000
expect_ok as alice coffer push "$FILES/model" fraud/dev/scorer --kind model --tag owner=alice
expect_ok as alice coffer push "$FILES/model2" fraud/dev/ranker --kind model
expect_ok as admin coffer push "$FILES/model2" fraud/dev/admins --kind model

# --------------------------------------------------------------------------
log "environment rules"
expect_exit 4 as alice coffer push "$FILES/model" fraud/staging/scorer --kind model
assert_contains "$(cat "$LAST_ERR")" "only by promotion" "direct push into a promotion-only environment is refused"
expect_exit 4 as admin coffer push "$FILES/model" fraud/staging/scorer --kind model
assert_contains "$(cat "$LAST_ERR")" "only by promotion" "even for an admin"
expect_exit 4 as alice coffer promote fraud/dev/scorer@1 --to prod
assert_contains "$(cat "$LAST_ERR")" "DenyProdWritesAndPromotionsWithoutMfa" \
    "promotion into prod without MFA is refused (built-in guardrail)"
expect_exit 2 as alice coffer promote fraud/dev/scorer@1 --to dev
expect_exit 2 as alice coffer promote fraud/dev/scorer@1 --to qa
expect_exit 5 as alice coffer promote fraud/dev/nosuch@1 --to staging
expect_exit 4 as dave coffer promote fraud/dev/scorer@1 --to staging

# --------------------------------------------------------------------------
log "request and approvals"
run_cmd as alice coffer --json promote fraud/dev/scorer@1 --to staging -m "candidate for release"
assert_eq "$LAST_RC" 0 "alice requests a promotion to staging"
REQ=$(json_field id "$LAST_OUT")
assert_eq "$(json_field state "$LAST_OUT")" pending "the request is pending"
assert_eq "$(json_field approvals_required "$LAST_OUT")" 2 "staging needs two approvals"
expect_exit 6 as alice coffer promote fraud/dev/scorer@1 --to staging
run_cmd as bob coffer requests
assert_contains "$(cat "$LAST_OUT")" "fraud/dev/scorer@1 -> fraud/staging/scorer" "approvers see the pending request"
expect_exit 4 as alice coffer approve "$REQ"
expect_exit 4 as dave coffer approve "$REQ"
expect_exit 5 as bob coffer approve 9999
run_cmd as bob coffer approve "$REQ"
assert_eq "$LAST_RC" 0 "bob approves"
assert_contains "$(cat "$LAST_OUT")" "pending: 1 of 2" "one approval of two: still pending"
expect_exit 5 as bob coffer show fraud/staging/scorer@1
expect_exit 6 as bob coffer approve "$REQ"
assert_contains "$(cat "$LAST_ERR")" "already approved" "a second approval by the same principal does not count"
run_cmd as carol coffer approve "$REQ"
assert_eq "$LAST_RC" 0 "carol approves"
assert_contains "$(cat "$LAST_OUT")" "Promoted fraud/dev/scorer@1 to fraud/staging/scorer@1" "the second approval completes the promotion"
expect_exit 6 as carol coffer reject "$REQ"

# --------------------------------------------------------------------------
log "content after promotion"
expect_ok as alice coffer pull fraud/staging/scorer@1 -o "$FILES/promoted"
assert_same_file "$FILES/promoted" "$FILES/model" "the promoted version has identical content"
run_cmd as alice coffer --json show fraud/staging/scorer@1
assert_eq "$(json_field sha256 "$LAST_OUT")" "$(sha256sum "$FILES/model" | cut -d' ' -f1)" "same content address"
assert_contains "$(cat "$LAST_OUT")" '"fraud/dev/scorer@1"' "lineage points to the source"
assert_contains "$(cat "$LAST_OUT")" '"owner": "alice"' "tags travel with the version"
assert_eq "$(json_field kind "$LAST_OUT")" model "kind travels with the version"
run_cmd as alice coffer --json show fraud/dev/scorer@1
assert_contains "$(cat "$LAST_OUT")" '"fraud/staging/scorer@1"' "the source lists the promoted version as a child"
assert_eq "$(blob_files "$DATA" | wc -l)" 4 "the promoted version has its own blob"
check_not "no plaintext on disk" grep -rqaF "MARKER-PLAINTEXT" "$DATA"
run_cmd as bob coffer requests --all
assert_contains "$(cat "$LAST_OUT")" "completed" "requests --all shows the completed request"

# --------------------------------------------------------------------------
log "two-person rule for admins; rejection"
run_cmd as admin coffer --json promote fraud/dev/admins@1 --to staging
ADM=$(json_field id "$LAST_OUT")
expect_exit 4 as admin coffer approve "$ADM"
assert_contains "$(cat "$LAST_ERR")" "you requested this promotion" "an admin cannot approve their own request"
expect_exit 4 as admin coffer reject "$ADM"
run_cmd as alice coffer --json promote fraud/dev/ranker@1 --to staging
REJ=$(json_field id "$LAST_OUT")
expect_ok as bob coffer reject "$REJ" --reason "metrics regressed"
run_cmd as bob coffer --json requests --all
assert_contains "$(cat "$LAST_OUT")" '"reason": "metrics regressed"' "the rejection keeps its reason"
expect_exit 6 as carol coffer approve "$REJ"
expect_exit 5 as alice coffer show fraud/staging/ranker@1
expect_ok as bob coffer approve "$ADM"
expect_ok as carol coffer approve "$ADM"
expect_ok as carol coffer show fraud/staging/admins@1

# --------------------------------------------------------------------------
log "promotion that needs no approval"
run_cmd as alice coffer promote fraud/staging/scorer@1 --to dev
assert_eq "$LAST_RC" 0 "promotion into dev (no approvals) completes at once"
assert_contains "$(cat "$LAST_OUT")" "Promoted fraud/staging/scorer@1 to fraud/dev/scorer@2" "a new version in the target"

# --------------------------------------------------------------------------
log "audit"
as admin coffer audit export >"$FILES/audit.jsonl" 2>/dev/null
check "the request is audited" bash -c "grep -F 'promotion requested' '$FILES/audit.jsonl' | grep -qF 'user:alice'"
check "approvals are audited" bash -c "grep -F 'promotion approved' '$FILES/audit.jsonl' | grep -qF 'user:carol'"
check "self-approval attempts are audited" grep -qF 'requester cannot decide own request' "$FILES/audit.jsonl"
check "completion is audited with the content address" \
    bash -c "grep -F 'promotion completed' '$FILES/audit.jsonl' | grep -F 'fraud/staging/scorer@1' | grep -qF '$(sha256sum "$FILES/model" | cut -d' ' -f1)'"
check "refused direct pushes are audited" grep -qF 'environment accepts promotions only' "$FILES/audit.jsonl"

# --------------------------------------------------------------------------
log "expiry"
server_stop || fail "server stops cleanly"
sed -i 's/"request_lifetime": "1h"/"request_lifetime": "2s"/' "$DATA/environments.json"
server_start "$DATA" || fail "server restarts"
for u in alice bob; do # the stored logins name the old port
    as "$u" login_cli "$u" "$(pw_of "$u")" >/dev/null 2>&1
done
run_cmd as alice coffer --json promote fraud/dev/ranker@1 --to staging
EXP=$(json_field id "$LAST_OUT")
assert_eq "$(json_field state "$LAST_OUT")" pending "a new request is pending" || show_last
sleep 3
run_cmd as bob coffer requests
assert_not_contains "$(cat "$LAST_OUT")" "fraud/dev/ranker@1" "an expired request is no longer listed as pending"
expect_exit 6 as bob coffer approve "$EXP"
assert_contains "$(cat "$LAST_ERR")" "expired" "an expired request cannot be approved"
echo '{"environments": [{"name": "dev", "colour": "blue"}]}' >"$DATA/environments.json"
server_stop || fail "server stops cleanly"
run_cmd coffer server --data "$DATA" --listen 127.0.0.1:0
check "a malformed environments file stops the server from starting" test "$LAST_RC" -ne 0
assert_contains "$(cat "$LAST_OUT" "$LAST_ERR")" "colour" "the error names the bad key"
e2e_finish
