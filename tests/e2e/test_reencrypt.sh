#!/usr/bin/env bash
# End-to-end test of `coffer keys rotate --reencrypt`: one version's content
# moves to a new blob under a fresh data key; the download stays
# byte-for-byte identical, the old content file is deleted, the new one and
# the wrapped DEK differ, the change is audited with both blob ids; holds do
# not block it, an erased version is refused (410), a non-admin is refused,
# and no plaintext reaches the disk.
. "$(dirname "$0")/lib.sh"
e2e_init reencrypt

ADMIN_PW='Adm1n-Reencrypt-Password!'
VIEWER_PW='Viewer-Reencrypt-Pass-42'
DATA="$E2E_ROOT/data"
FILES=$(e2e_tmpdir files)

command -v sqlite3 >/dev/null 2>&1 || { fail "sqlite3 is installed"; e2e_finish; }
db() { sqlite3 -readonly "$DATA/coffer.db" "$@"; }
vcol() { db "SELECT v.$1 FROM versions v JOIN artifacts a ON v.artifact_id=a.id WHERE a.path='$2' AND v.version=$3"; }
dek() { db "SELECT hex(v.wrapped_dek) FROM versions v JOIN artifacts a ON v.artifact_id=a.id WHERE a.path='$1' AND v.version=$2"; }
blob_path() { printf '%s/blobs/%s/%s' "$DATA" "${1:0:2}" "$1"; }

run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
server_start "$DATA" || { fail "server starts"; e2e_finish; }
expect_ok login_cli admin "$ADMIN_PW"
TOKEN=$(json_field token "$XDG_CONFIG_HOME/coffer/credentials.json")

# Content with a recognisable pattern (to look for plaintext on disk) spanning
# several segments, plus random bytes.
yes 'REENCRYPT-PLAINTEXT-MARKER' | head -c 300000 >"$FILES/m1"
random_file "$FILES/rnd" 123457
cat "$FILES/rnd" >>"$FILES/m1"
random_file "$FILES/m2" 70001
expect_ok coffer push "$FILES/m1" re/dev/model --kind model
expect_ok coffer push "$FILES/m2" re/dev/model
expect_ok coffer push "$FILES/m2" re/dev/other

old_blob=$(vcol blob_id re/dev/model 1)
old_dek=$(dek re/dev/model 1)
check "version 1 has a content file" test -f "$(blob_path "$old_blob")"
old_sum=$(sha256sum "$(blob_path "$old_blob")" | cut -c1-64)
check "version 1 has a wrapped DEK" test -n "$old_dek"
nblobs=$(blob_files "$DATA" | wc -l)

# ---------------------------------------------------------------- permissions
printf '%s\n' "$VIEWER_PW" | coffer user add viewer1 --password-stdin >/dev/null 2>&1
coffer role bind viewer user:viewer1 >/dev/null 2>&1
use_config viewer
expect_ok login_cli viewer1 "$VIEWER_PW"
expect_exit 4 coffer keys rotate --reencrypt re/dev/model@1
use_config default
assert_eq "$(vcol blob_id re/dev/model 1)" "$old_blob" "a refused re-encryption changes nothing"
check "a refused re-encryption keeps the content file" test -f "$(blob_path "$old_blob")"

# ---------------------------------------------------------------- usage
expect_exit 2 coffer keys rotate --reencrypt re/dev/model@1 --batch 5
expect_exit 5 coffer keys rotate --reencrypt re/dev/model@99
assert_eq "$(api POST /v1/keys/reencrypt -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary '{"ref":"re/dev/model@1","x":1}')" 400 \
    "an unknown field is refused"
assert_eq "$(api POST /v1/keys/reencrypt -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary '{}')" 400 "a missing ref is refused"

# ---------------------------------------------------------------- re-encrypt (under a legal hold)
expect_ok coffer hold set re/dev/model --reason "litigation 2026-99"
expect_ok coffer keys rotate --reencrypt re/dev/model@1 --json
new_blob=$(vcol blob_id re/dev/model 1)
new_dek=$(dek re/dev/model 1)
assert_eq "$(json_field old_blob "$LAST_OUT")" "$old_blob" "the answer names the old blob"
assert_eq "$(json_field new_blob "$LAST_OUT")" "$new_blob" "the answer names the new blob"
assert_eq "$(json_field ref "$LAST_OUT")" "re/dev/model@1" "the answer names the version"
assert_ne "$new_blob" "$old_blob" "the version has a new blob id"
assert_ne "$new_dek" "$old_dek" "the wrapped DEK changed"
assert_eq "$(vcol kek_id re/dev/model 1)" "kek-1" "the new DEK is wrapped by the current KEK"
assert_no_file "$(blob_path "$old_blob")" "the old content file is deleted"
check "the new content file exists" test -f "$(blob_path "$new_blob")"
new_sum=$(sha256sum "$(blob_path "$new_blob")" | cut -c1-64)
assert_ne "$new_sum" "$old_sum" "the new content file differs"
assert_eq "$(blob_files "$DATA" | wc -l)" "$nblobs" "no content file is left over"
check_not "no plaintext in the blob store" grep -rqa 'REENCRYPT-PLAINTEXT-MARKER' "$DATA"
expect_ok coffer pull re/dev/model@1 -o "$FILES/o1"
assert_same_file "$FILES/o1" "$FILES/m1" "the download is byte-for-byte identical"
expect_ok coffer pull re/dev/model@2 -o "$FILES/o2"
assert_same_file "$FILES/o2" "$FILES/m2" "other versions are untouched"
check "the re-encryption is audited with both blob ids" \
    grep -rq "\"action\":\"admin:Keys\".*re/dev/model@1.*$old_blob.*$new_blob\|\"action\":\"admin:Keys\".*re/dev/model@1.*$new_blob.*$old_blob" "$DATA/audit"
expect_ok coffer hold clear re/dev/model

# Twice in a row works too (the new blob is replaced in turn).
expect_ok coffer keys rotate --reencrypt re/dev/model@1
assert_contains "$(cat "$LAST_OUT")" "Re-encrypted re/dev/model@1" "the text answer names the version"
assert_no_file "$(blob_path "$new_blob")" "the second re-encryption deletes the first new file"
expect_ok coffer pull re/dev/model@1 -o "$FILES/o1b"
assert_same_file "$FILES/o1b" "$FILES/m1" "identical after a second re-encryption"

# ---------------------------------------------------------------- erased version
cat >"$FILES/guard-off.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Sid": "DenyEraseWithoutMfa", "Effect": "Deny",
  "Principal": "*", "Action": "artifact:Erase", "Resource": "nothing/*"}]}
JSON
expect_ok coffer policy put erase-needs-mfa "$FILES/guard-off.json" --global
expect_ok coffer erase re/dev/other@1 --reason "subject request"
expect_exit 5 coffer keys rotate --reencrypt re/dev/other@1
assert_contains "$(cat "$LAST_ERR")" "erased" "re-encrypting an erased version is refused"
assert_eq "$(api POST /v1/keys/reencrypt -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary '{"ref":"re/dev/other@1"}')" 410 \
    "the API answers 410 Gone for an erased version"
assert_eq "$(db "SELECT length(wrapped_dek) FROM versions v JOIN artifacts a ON v.artifact_id=a.id WHERE a.path='re/dev/other'")" 0 \
    "the erased version stays without a key"

server_stop
e2e_finish
