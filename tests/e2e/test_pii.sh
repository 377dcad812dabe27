#!/usr/bin/env bash
# End-to-end test of PII detection on upload: a CSV dataset with personal
# data is tagged pii=detected and labelled confidential, the uploader is
# warned on stderr, the audit event has counts and redacted samples but no
# value; clean CSVs, binary files and kinds outside pii.kinds are untouched;
# a user cleared for internal cannot read the flagged version; the pii.scan
# and pii.kinds settings switch the scan off and widen it.
. "$(dirname "$0")/lib.sh"
e2e_init pii

ADMIN_PW='Adm1n-Pii-Password-long!'
CAROL_PW='Carol-Pii-Password-long!'
DATA="$E2E_ROOT/data"
FILES=$(e2e_tmpdir files)
command -v sqlite3 >/dev/null 2>&1 || { fail "sqlite3 is installed"; e2e_finish; }
setting() { sqlite3 "$DATA/coffer.db" "INSERT OR REPLACE INTO settings(key, value) VALUES('$1', '$2')"; }
field_of() { # field_of REF FIELD: a field of coffer show --json
    coffer show "$1" --json >"$FILES/show.json" 2>/dev/null && json_field "$2" "$FILES/show.json"
}

run_cmd init_data "$DATA" "$ADMIN_PW"
server_start "$DATA" || { fail "server starts"; e2e_finish; }
expect_ok login_cli admin "$ADMIN_PW"

# A CSV with personal data, larger than one upload chunk, the findings far
# apart; a clean CSV of the same shape with near-misses only.
{
    echo "id,name,contact,account,amount,updated"
    for i in $(seq 1 20000); do
        echo "$i,customer $i,ref-$i,acct-$((i * 7)),$((i % 997)).$((i % 100)),2024-01-15 10:30:00"
    done
    echo "20001,Jane Doe,jane.doe@example.com,GB82 WEST 1234 5698 7654 32,12.50,2024-01-15 10:30:00"
    for i in $(seq 20002 40000); do
        echo "$i,customer $i,ref-$i,acct-$((i * 7)),$((i % 997)).$((i % 100)),2024-01-15 10:30:00"
    done
    echo "40001,John Roe,+44 20 7946 0958,4111 1111 1111 1111,9.99,2024-01-15 10:30:00"
} >"$FILES/customers.csv"
{
    echo "id,name,contact,account,amount,updated"
    for i in $(seq 1 5000); do
        echo "$i,customer $i,user@example,4111 1111 1111 1112,1700000000,v1.2.3,192.168.1.$((i % 255))"
    done
} >"$FILES/clean.csv"
check "the PII fixture is larger than one upload chunk" test "$(file_size "$FILES/customers.csv")" -gt 1000000

# ---------------------------------------------------------------- detection
expect_ok coffer push "$FILES/customers.csv" crm/dev/customers --kind dataset --json
assert_contains "$(cat "$LAST_ERR")" "warning: personal data detected" "the uploader is warned on stderr"
assert_contains "$(cat "$LAST_ERR")" "email 1" "the warning counts e-mail addresses"
assert_eq "$(json_field detected "$LAST_OUT")" true "the push answer says pii detected"
assert_eq "$(json_field card "$LAST_OUT")" 1 "the answer counts one card number"
assert_eq "$(json_field iban "$LAST_OUT")" 1 "the answer counts one IBAN"
assert_eq "$(json_field phone "$LAST_OUT")" 1 "the answer counts one phone number"
assert_not_contains "$(cat "$LAST_OUT")" "jane.doe" "the answer does not show the e-mail address"
assert_not_contains "$(cat "$LAST_OUT")" "4111 1111" "the answer does not show the card number"
assert_eq "$(field_of crm/dev/customers@1 pii)" detected "the artifact is tagged pii=detected"
assert_eq "$(field_of crm/dev/customers@1 effective_sensitivity)" confidential \
    "the flagged version is confidential"
check "the audit event carries the findings" grep -aq '"pii":{' "$DATA/audit/events.log"
check_not "the audit log holds no e-mail address" grep -aq 'jane.doe@example.com' "$DATA/audit/events.log"
check_not "the audit log holds no card number" grep -aq '4111 1111 1111 1111' "$DATA/audit/events.log"

# A requested label above confidential is kept.
expect_ok coffer push "$FILES/customers.csv" crm/dev/secret --kind dataset --sensitivity restricted
assert_eq "$(field_of crm/dev/secret@1 effective_sensitivity)" restricted "a higher label is kept"

# ---------------------------------------------------------------- untouched uploads
expect_ok coffer push "$FILES/clean.csv" crm/dev/clean --kind dataset --json
assert_not_contains "$(cat "$LAST_ERR")" "personal data" "no warning for a clean CSV"
assert_eq "$(json_field detected "$LAST_OUT")" false "the answer says nothing detected"
assert_eq "$(field_of crm/dev/clean@1 effective_sensitivity)" internal "the clean CSV keeps its label"
assert_eq "$(field_of crm/dev/clean@1 pii)" "" "the clean CSV is not tagged"

{ head -c 4096 /dev/urandom; printf '\0\0 jane.doe@example.com 4111111111111111 '; head -c 4096 /dev/urandom; } \
    >"$FILES/data.bin"
expect_ok coffer push "$FILES/data.bin" crm/dev/blob --kind dataset --json
assert_eq "$(json_field scanned "$LAST_OUT")" false "binary content is not scanned"
assert_not_contains "$(cat "$LAST_ERR")" "personal data" "no warning for a binary file"
assert_eq "$(field_of crm/dev/blob@1 effective_sensitivity)" internal "the binary file keeps its label"

expect_ok coffer push "$FILES/customers.csv" crm/dev/model --kind model --json
assert_not_contains "$(cat "$LAST_OUT")" '"pii"' "kinds outside pii.kinds are not scanned"
assert_eq "$(field_of crm/dev/model@1 effective_sensitivity)" internal "the model keeps its label"

# ---------------------------------------------------------------- a version of an existing artifact
expect_ok coffer push "$FILES/clean.csv" crm/dev/mixed --kind dataset --sensitivity public
expect_ok coffer push "$FILES/customers.csv" crm/dev/mixed --sensitivity public
assert_eq "$(field_of crm/dev/mixed@2 effective_sensitivity)" confidential "the flagged version is confidential"
assert_eq "$(field_of crm/dev/mixed@1 effective_sensitivity)" public "the earlier version keeps its label"

# ---------------------------------------------------------------- clearance
run_cmd coffer user add carol --clearance internal --password-stdin <<<"$CAROL_PW"
assert_eq "$LAST_RC" 0 "admin adds carol (clearance internal)"
expect_ok coffer role bind data-scientist user:carol
use_config carol
expect_ok login_cli carol "$CAROL_PW"
expect_exit 5 coffer pull crm/dev/customers -o "$FILES/carol1"
assert_no_file "$FILES/carol1" "carol cannot download the flagged dataset"
expect_exit 5 coffer show crm/dev/customers@1
expect_exit 5 coffer pull crm/dev/mixed@2 -o "$FILES/carol2"
expect_ok coffer pull crm/dev/mixed@1 -o "$FILES/carol3"
assert_same_file "$FILES/carol3" "$FILES/clean.csv" "carol still reads the clean version"
expect_ok coffer pull crm/dev/clean -o "$FILES/carol4"
use_config default

# ---------------------------------------------------------------- settings
setting pii.scan off
expect_ok coffer push "$FILES/customers.csv" crm/dev/off --kind dataset --json
assert_not_contains "$(cat "$LAST_OUT")" '"pii"' "pii.scan=off: no scan"
assert_eq "$(field_of crm/dev/off@1 effective_sensitivity)" internal "pii.scan=off: label unchanged"
setting pii.scan on
setting pii.kinds "dataset,features,model"
expect_ok coffer push "$FILES/customers.csv" crm/dev/model2 --kind model
assert_contains "$(cat "$LAST_ERR")" "personal data detected" "pii.kinds widens the scan to models"
assert_eq "$(field_of crm/dev/model2@1 effective_sensitivity)" confidential "the model is flagged"

server_stop
check "server stops cleanly" test $? -eq 0
e2e_finish
