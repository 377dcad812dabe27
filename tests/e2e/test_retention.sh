#!/usr/bin/env bash
# End-to-end test of retention rules: a rule erasing datasets tagged
# pii=true some time after upload, applied by `coffer retention run` (the
# background job runs the same code), with a dry run first; a legal hold and
# a retention lock keep their versions; every action is in the audit log;
# rules can be listed and removed; only artifact:Hold may manage them.
. "$(dirname "$0")/lib.sh"
e2e_init retention

ADMIN_PW='Adm1n-Retention-Password!'
VIEWER_PW='Viewer-Retention-Pass-42'
DATA="$E2E_ROOT/data"
FILES=$(e2e_tmpdir files)
command -v sqlite3 >/dev/null 2>&1 || { fail "sqlite3 is installed"; e2e_finish; }
db() { sqlite3 -readonly "$DATA/coffer.db" "$@"; }
erased() { db "SELECT count(*) FROM versions v JOIN artifacts a ON v.artifact_id=a.id WHERE a.path='$1' AND erased_at IS NOT NULL"; }

run_cmd init_data "$DATA" "$ADMIN_PW"
server_start "$DATA" || { fail "server starts"; e2e_finish; }
expect_ok login_cli admin "$ADMIN_PW"
random_file "$FILES/d" 5000
expect_ok coffer push "$FILES/d" ret/dev/pii-a --kind dataset --tag pii=true
expect_ok coffer push "$FILES/d" ret/dev/pii-b --kind dataset --tag pii=true
expect_ok coffer push "$FILES/d" ret/dev/pii-held --kind dataset --tag pii=true
expect_ok coffer push "$FILES/d" ret/dev/pii-locked --kind dataset --tag pii=true
expect_ok coffer push "$FILES/d" ret/dev/clean --kind dataset --tag pii=false
expect_ok coffer push "$FILES/d" ret/dev/model --kind model --tag pii=true

expect_exit 2 coffer retention set 'ret/*' soon
expect_exit 2 coffer retention set 'ret/*' 1s --action shred
expect_ok coffer retention set 'ret/*' 1s --kind dataset --tag pii=true
rule=$(db "SELECT id FROM retention_rules")
expect_ok coffer retention ls
assert_contains "$(cat "$LAST_OUT")" "tag pii=true" "retention ls shows the rule"
expect_ok coffer hold set ret/dev/pii-held --reason "audit 7"
expect_ok coffer retention lock ret/dev/pii-locked --for 1d --mode compliance
sleep 2

expect_ok coffer retention run --dry-run
assert_contains "$(cat "$LAST_OUT")" "would erase ret/dev/pii-a@1" "dry run lists a due version"
assert_contains "$(cat "$LAST_OUT")" "kept ret/dev/pii-held@1" "dry run reports the hold"
assert_eq "$(erased ret/dev/pii-a)" 0 "a dry run changes nothing"

expect_ok coffer retention run
assert_eq "$(erased ret/dev/pii-a)" 1 "pii-a is erased"
assert_eq "$(erased ret/dev/pii-b)" 1 "pii-b is erased"
assert_eq "$(erased ret/dev/pii-held)" 0 "the legal hold keeps pii-held"
assert_eq "$(erased ret/dev/pii-locked)" 0 "the retention lock keeps pii-locked"
assert_eq "$(erased ret/dev/clean)" 0 "pii=false is untouched"
assert_eq "$(erased ret/dev/model)" 0 "other kinds are untouched"
check "retention erasures are in the audit log" grep -rq '"principal":"system:retention".*ret/dev/pii-a@1' "$DATA/audit"
check "kept versions are in the audit log" grep -rq 'ret/dev/pii-held@1.*legal hold' "$DATA/audit"
TOKEN=$(json_field token "$XDG_CONFIG_HOME/coffer/credentials.json")
assert_eq "$(api GET /v1/objects/ret/dev/pii-a@1 -H "Authorization: Bearer $TOKEN")" 410 \
    "a version erased by retention answers 410"

expect_ok coffer hold clear ret/dev/pii-held
expect_ok coffer retention run
assert_eq "$(erased ret/dev/pii-held)" 1 "once the hold is cleared, retention erases"
assert_eq "$(erased ret/dev/pii-locked)" 0 "the compliance lock still keeps pii-locked"

# Permissions: a viewer may not manage retention.
printf '%s\n' "$VIEWER_PW" | coffer user add viewer1 --password-stdin >/dev/null 2>&1
coffer role bind viewer user:viewer1 >/dev/null 2>&1
use_config viewer
expect_ok login_cli viewer1 "$VIEWER_PW"
expect_exit 4 coffer retention set 'ret/*' 1d
expect_exit 4 coffer retention rm "$rule"
expect_exit 4 coffer hold set ret/dev/clean
expect_exit 4 coffer retention run
use_config default

expect_ok coffer retention rm "$rule"
expect_exit 5 coffer retention rm "$rule"
assert_eq "$(db 'SELECT count(*) FROM retention_rules')" 0 "the rule is removed"

server_stop TERM
assert_eq "$?" 0 "server stops cleanly"
e2e_finish
