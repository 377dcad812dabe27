#!/usr/bin/env bash
# End-to-end test of crypto-shredding: coffer erase of one version, of a
# whole artifact and of everything with a tag (with dry runs); 410 Gone
# afterwards; the DEK gone from the database, the blob gone from disk, the
# tombstone and the audit event present; legal hold and retention locks
# blocking erasure and deletion; a compliance lock that cannot be shortened.
#
# The MFA guardrail for erasure: the built-in global guardrail
# erase-needs-mfa refuses an erase without MFA; this test checks that, puts
# the same Deny again under that name (as an administrator restoring it
# would), checks the refusal again, then relaxes that guardrail with
# `coffer policy put` so the rest of the test can erase with a password login.
. "$(dirname "$0")/lib.sh"
e2e_init erase

ADMIN_PW='Adm1n-Erase-Password-long!'
DATA="$E2E_ROOT/data"
FILES=$(e2e_tmpdir files)
command -v sqlite3 >/dev/null 2>&1 || { fail "sqlite3 is installed"; e2e_finish; }
db() { sqlite3 -readonly "$DATA/coffer.db" "$@"; }

run_cmd init_data "$DATA" "$ADMIN_PW"
server_start "$DATA" || { fail "server starts"; e2e_finish; }
expect_ok login_cli admin "$ADMIN_PW"

for i in 1 2 3; do random_file "$FILES/m$i" $((70000 * i)); done
expect_ok coffer push "$FILES/m1" gdpr/dev/model --kind model
expect_ok coffer push "$FILES/m2" gdpr/dev/model
expect_ok coffer push "$FILES/m3" gdpr/dev/model
expect_ok coffer push "$FILES/m1" gdpr/dev/subjects/a --tag subject=s-42
expect_ok coffer push "$FILES/m2" gdpr/dev/subjects/b --tag subject=s-42
expect_ok coffer push "$FILES/m3" gdpr/dev/subjects/c --tag subject=s-7
blob_v2=$(db "SELECT v.blob_id FROM versions v JOIN artifacts a ON v.artifact_id=a.id WHERE a.path='gdpr/dev/model' AND v.version=2")
check "version 2 has a blob on disk" test -f "$DATA/blobs/${blob_v2:0:2}/$blob_v2"
sha2=$(sha256sum "$FILES/m2" | cut -c1-64)

# ---------------------------------------------------------------- guardrail
expect_exit 4 coffer erase gdpr/dev/model@2 --reason "subject request"
assert_contains "$(cat "$LAST_ERR")" "DenyEraseWithoutMfa" "the built-in guardrail refuses an erase without MFA"
cat >"$FILES/guard.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Sid": "DenyEraseWithoutMfa", "Effect": "Deny",
  "Principal": "*", "Action": "artifact:Erase", "Resource": "*",
  "Condition": {"BoolIfExists": {"coffer:MultiFactorAuthPresent": "false"}}}]}
JSON
expect_ok coffer policy put erase-needs-mfa "$FILES/guard.json" --global
expect_exit 4 coffer erase gdpr/dev/model@2 --reason "subject request"
check "the refused erase left the DEK" test "$(db "SELECT length(wrapped_dek) FROM versions WHERE blob_id='$blob_v2'")" -gt 0
# Relax the guardrail for this password-only test data directory.
cat >"$FILES/guard-off.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Sid": "DenyEraseWithoutMfa", "Effect": "Deny",
  "Principal": "*", "Action": "artifact:Erase", "Resource": "nothing/*"}]}
JSON
expect_ok coffer policy put erase-needs-mfa "$FILES/guard-off.json" --global

# ---------------------------------------------------------------- usage
expect_exit 2 coffer erase gdpr/dev/model@2
expect_exit 2 coffer erase gdpr/dev/model --reason "no version"
expect_exit 5 coffer erase gdpr/dev/model@99 --reason "missing"

# ---------------------------------------------------------------- legal hold
expect_ok coffer hold set gdpr/dev/model --reason "litigation 2026-17"
expect_exit 6 coffer erase gdpr/dev/model@2 --reason "subject request"
assert_contains "$(cat "$LAST_ERR")" "legal hold" "erase under legal hold is refused (409)"
expect_exit 6 coffer rm gdpr/dev/model@2
assert_contains "$(cat "$LAST_ERR")" "legal hold" "deletion under legal hold is refused"
expect_ok coffer erase gdpr/dev/model@2 --reason "subject request" --dry-run
assert_contains "$(cat "$LAST_OUT")" "blocked gdpr/dev/model@2" "a dry run reports the hold"
expect_ok coffer hold ls
assert_contains "$(cat "$LAST_OUT")" "litigation 2026-17" "hold ls lists the hold"
expect_ok coffer hold clear gdpr/dev/model
expect_exit 5 coffer hold clear gdpr/dev/model

# ---------------------------------------------------------------- erase one version
expect_ok coffer erase gdpr/dev/model@2 --reason "subject request" --dry-run
assert_contains "$(cat "$LAST_OUT")" "would erase gdpr/dev/model@2" "dry run names the version"
check "a dry run erases nothing" test -f "$DATA/blobs/${blob_v2:0:2}/$blob_v2"
expect_ok coffer erase gdpr/dev/model@2 --reason "subject request"
assert_contains "$(cat "$LAST_OUT")" "erased gdpr/dev/model@2" "erase reports the version"
assert_eq "$(db "SELECT length(wrapped_dek) || ':' || kek_id FROM versions WHERE blob_id='$blob_v2'")" "0:" \
    "the wrapped DEK is gone from the database"
assert_no_file "$DATA/blobs/${blob_v2:0:2}/$blob_v2" "the blob is deleted"
expect_exit 5 coffer pull gdpr/dev/model@2 -o "$FILES/out2"
assert_no_file "$FILES/out2" "no file is written for an erased version"
TOKEN=$(json_field token "$XDG_CONFIG_HOME/coffer/credentials.json")
assert_eq "$(api GET /v1/objects/gdpr/dev/model@2 -H "Authorization: Bearer $TOKEN")" 410 \
    "download of an erased version answers 410 Gone"
assert_contains "$(api_body)" '"gone"' "the error code is gone"
expect_ok coffer show gdpr/dev/model@2 --json
assert_eq "$(json_field erase_reason "$LAST_OUT")" "subject request" "tombstone: why"
assert_eq "$(json_field erased_by "$LAST_OUT")" "user:admin" "tombstone: who"
check "tombstone: when" test -n "$(json_field erased_at "$LAST_OUT")"
assert_eq "$(json_field sha256 "$LAST_OUT")" "$sha2" "tombstone: SHA-256"
assert_eq "$(json_field size "$LAST_OUT")" 140000 "tombstone: size"
expect_exit 5 coffer erase gdpr/dev/model@2 --reason "again"
assert_contains "$(cat "$LAST_ERR")" "already erased" "erasing twice answers 410"
check "the erase is in the audit log" grep -rq '"action":"artifact:Erase".*gdpr/dev/model@2' "$DATA/audit"
expect_ok coffer pull gdpr/dev/model@1 -o "$FILES/o1"
assert_same_file "$FILES/o1" "$FILES/m1" "other versions are untouched"

# ---------------------------------------------------------------- whole artifact, by tag
expect_ok coffer erase gdpr/dev/model --all-versions --reason "model withdrawn" --dry-run
assert_contains "$(cat "$LAST_OUT")" "2 version(s) would be erased" "dry run of a whole artifact"
expect_ok coffer erase gdpr/dev/model --all-versions --reason "model withdrawn"
assert_eq "$(db "SELECT count(*) FROM versions v JOIN artifacts a ON v.artifact_id=a.id WHERE a.path='gdpr/dev/model' AND erased_at IS NOT NULL")" 3 \
    "every version of the artifact is erased"
expect_ok coffer erase --tag subject=s-42 --reason "erasure request s-42" --dry-run
assert_contains "$(cat "$LAST_OUT")" "2 version(s) would be erased" "dry run by tag"
expect_ok coffer erase --tag subject=s-42 --reason "erasure request s-42"
assert_eq "$(db "SELECT count(*) FROM versions WHERE erased_at IS NOT NULL")" 5 "erase by tag erased two more"
expect_ok coffer pull gdpr/dev/subjects/c -o "$FILES/oc"
assert_same_file "$FILES/oc" "$FILES/m3" "an artifact with another tag value is untouched"
assert_eq "$(blob_files "$DATA" | wc -l)" 1 "only the untouched version's blob remains"

# ---------------------------------------------------------------- retention locks
expect_ok coffer retention lock gdpr/dev/subjects/c --for 30d --mode compliance
expect_exit 6 coffer erase gdpr/dev/subjects/c@1 --reason "too early"
assert_contains "$(cat "$LAST_ERR")" "retention lock" "erase under a compliance lock is refused"
expect_exit 6 coffer retention lock gdpr/dev/subjects/c --for 1d --mode compliance
assert_contains "$(cat "$LAST_ERR")" "nobody can shorten" "the admin cannot shorten a compliance lock"
expect_exit 6 coffer retention lock gdpr/dev/subjects/c --for 60d --mode governance
expect_exit 6 coffer retention unlock gdpr/dev/subjects/c
expect_ok coffer retention lock gdpr/dev/subjects/c --for 60d --mode compliance
expect_ok coffer hold ls --json
assert_contains "$(cat "$LAST_OUT")" '"compliance"' "the extended lock is listed"
expect_ok coffer retention lock gdpr/dev/subjects/g --for 10d
expect_ok coffer retention lock gdpr/dev/subjects/g --for 1d
expect_ok coffer retention unlock gdpr/dev/subjects/g

server_stop TERM
assert_eq "$?" 0 "server stops cleanly"
e2e_finish
