#!/usr/bin/env bash
# End-to-end test of 'coffer review' on a fixture organisation: effective
# access (direct and through a group) checked cell by cell in the CSV,
# unused grants, privileged users without MFA, dormant accounts, JSON and
# text output; then 'review certify' revokes exactly the grants marked.
. "$(dirname "$0")/lib.sh"
e2e_init review

ADMIN_PW='Adm1n-E2E-Password-long!'
PW='User-E2E-Password-4242'
DATA="$E2E_ROOT/data"
run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
use_config admin
expect_ok login_cli admin "$ADMIN_PW"
for u in alice bob carol dave; do
    printf '%s\n' "$PW" | coffer user add "$u" --password-stdin >/dev/null
done
expect_ok coffer role bind data-scientist user:alice
expect_ok coffer role bind ml-engineer user:alice --scope 'fraud/*'
expect_ok coffer group add team
expect_ok coffer group member add team user:bob
expect_ok coffer role bind viewer group:team
expect_ok coffer role bind admin user:carol
echo "model-bytes" >"$E2E_ROOT/m.bin"
expect_ok coffer push "$E2E_ROOT/m.bin" fraud/dev/m --kind model

use_config alice
expect_ok login_cli alice "$PW"
expect_ok coffer pull fraud/dev/m -o "$E2E_ROOT/out.bin"
use_config admin
sqlite3 "$DATA/coffer.db" "UPDATE users SET created_at = created_at - 200 * 86400 WHERE name='dave'"

expect_ok coffer review --format csv
CSV="$E2E_ROOT/review.csv"
cp "$LAST_OUT" "$CSV"
assert_eq "$(head -n 1 "$CSV")" "principal,type,role,scope,via,privileged,last_used,unused,actions,flags,decision" "CSV header"
# cell ROW-MATCH COLUMN: the column (1-based) of the row whose first columns match.
cell() { awk -F, -v k="$1" -v c="$2" 'index($0, k) == 1 { print $c; exit }' "$CSV"; }
assert_eq "$(cell 'user:alice,user,data-scientist,' 5)" "direct" "alice: data-scientist direct"
assert_eq "$(cell 'user:alice,user,data-scientist,' 6)" "no" "alice: data-scientist not privileged"
assert_eq "$(cell 'user:alice,user,data-scientist,' 8)" "no" "alice: data-scientist used (download)"
assert_contains "$(cell 'user:alice,user,data-scientist,' 9)" "artifact:Download" "alice: actions listed"
assert_ne "$(cell 'user:alice,user,data-scientist,' 7)" "never" "alice: last use shown"
assert_eq "$(cell 'user:alice,user,ml-engineer,' 4)" 'fraud/*' "alice: ml-engineer scope"
assert_eq "$(cell 'user:bob,user,viewer,' 5)" "group:team" "bob: viewer via group:team"
assert_eq "$(cell 'user:bob,user,viewer,' 7)" "never" "bob: never used"
assert_eq "$(cell 'user:bob,user,viewer,' 8)" "yes" "bob: unused grant"
assert_contains "$(cell 'user:bob,user,viewer,' 10)" "unused_grants" "bob: flagged unused"
assert_eq "$(cell 'user:carol,user,admin,' 6)" "yes" "carol: admin is privileged"
assert_contains "$(cell 'user:carol,user,admin,' 10)" "privileged_without_mfa" "carol: no MFA flagged"
assert_contains "$(cell 'user:dave,user,' 10)" "dormant" "dave: dormant"
assert_eq "$(cell 'user:dave,user,' 3)" "" "dave: no grant"
assert_not_contains "$(cell 'user:alice,user,data-scientist,' 10)" "dormant" "alice is not dormant"

expect_ok coffer review --format json
assert_contains "$(cat "$LAST_OUT")" '"unused_days": 90' "JSON output with the default period"
expect_ok coffer review
assert_contains "$(cat "$LAST_OUT")" "via group:team" "text output"

log "certify"
awk -F, 'BEGIN{OFS=","} index($0,"user:bob,user,viewer,")==1 {$11="revoke"} index($0,"user:alice,user,data-scientist,")==1 {$11="keep"} index($0,"user:alice,user,ml-engineer,")==1 {$11="revoke"} {print}' "$CSV" >"$E2E_ROOT/decided.csv"
expect_ok coffer review certify "$E2E_ROOT/decided.csv"
assert_contains "$(cat "$LAST_OUT")" "3 decision(s) recorded, 2 binding(s) revoked" "certify summary"
expect_ok coffer review --format csv
cp "$LAST_OUT" "$CSV"
assert_eq "$(cell 'user:bob,user,viewer,' 3)" "" "bob's group grant is revoked"
assert_eq "$(cell 'user:alice,user,ml-engineer,' 3)" "" "alice's ml-engineer grant is revoked"
assert_eq "$(cell 'user:alice,user,data-scientist,' 3)" "data-scientist" "alice's kept grant stays"
assert_eq "$(sqlite3 "$DATA/coffer.db" "SELECT count(*) FROM review_decisions WHERE reviewer='user:admin'")" 3 "decisions recorded"
expect_exit 5 coffer review certify "$E2E_ROOT/decided.csv"
check "server stops cleanly" server_stop
e2e_finish
