#!/usr/bin/env bash
# End-to-end test of KEK rotation with the local keyring: 1,000 versions,
# an online rotation in small throttled batches, a crash (SIGKILL) in the
# middle, the resumption at the next start, byte-for-byte downloads, content
# files untouched, the retired KEK destroyed, status, conflicts, permissions
# and automatic rotation.
. "$(dirname "$0")/lib.sh"
e2e_init rotation

ADMIN_PW='Adm1n-Rotation-Password!'
VIEWER_PW='Viewer-Rotation-Pass-42'
DATA="$E2E_ROOT/data"
FILES=$(e2e_tmpdir files)
OUT=$(e2e_tmpdir out)
N=1000

command -v sqlite3 >/dev/null 2>&1 || { fail "sqlite3 is installed"; e2e_finish; }
db() { sqlite3 -readonly "$DATA/coffer.db" "$@"; }
kek_count() { db "SELECT count(*) FROM versions WHERE kek_id='$1'"; }

run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
server_start "$DATA" || { fail "server starts"; e2e_finish; }
expect_ok login_cli admin "$ADMIN_PW"
TOKEN=$(json_field token "$XDG_CONFIG_HOME/coffer/credentials.json")

# ---------------------------------------------------------------- 1,000 versions
log "pushing $N versions over one connection"
CFG="$E2E_ROOT/push.curl"
# One curl process, one connection: "next" starts a new transfer and resets
# its options, so each block carries them all.
for i in $(seq 1 $N); do
    head -c $((100 + (i * 37) % 4000)) /dev/urandom >"$FILES/f$i"
    [ "$i" -gt 1 ] && printf 'next\n'
    printf 'cacert = "%s"\nheader = "Authorization: Bearer %s"\n' "$DATA/tls/ca.pem" "$TOKEN"
    printf 'header = "Content-Type: application/octet-stream"\nrequest = "PUT"\n'
    printf 'write-out = "%%{http_code}\\n"\noutput = "/dev/null"\n'
    printf 'url = "%s/v1/objects/rot/dev/a%d/file"\nupload-file = "%s"\n' \
        "$SERVER_URL" $((i % 10)) "$FILES/f$i"
done >"$CFG"
codes=$(curl -s -K "$CFG" | sort | uniq -c | tr -s ' ')
assert_eq "$codes" " $N 201" "$N pushes answered 201"
assert_eq "$(db 'SELECT count(*) FROM versions')" "$N" "$N versions recorded"
assert_eq "$(kek_count kek-1)" "$N" "every DEK is wrapped by kek-1"
blob_sums_before=$(blob_files "$DATA" | xargs sha256sum)
assert_eq "$(printf '%s\n' "$blob_sums_before" | wc -l)" "$N" "$N content files"

expect_ok coffer keys status --json
assert_contains "$(tr -d ' \n' <"$LAST_OUT")" '"deks":1000' "keys status counts 1000 DEKs under kek-1"
expect_ok coffer keys status
assert_contains "$(cat "$LAST_OUT")" "kek-1" "keys status lists kek-1"

# ---------------------------------------------------------------- permissions
printf '%s\n' "$VIEWER_PW" | coffer user add viewer1 --password-stdin >/dev/null 2>&1
coffer role bind viewer user:viewer1 >/dev/null 2>&1
use_config viewer
expect_ok login_cli viewer1 "$VIEWER_PW"
expect_exit 4 coffer keys status
expect_exit 4 coffer keys rotate
use_config default
check "a refused rotation changes nothing" test "$(kek_count kek-1)" = "$N"

# ---------------------------------------------------------------- crash mid-rotation
log "rotation in batches of 20 with 100 ms pauses, killed in the middle"
expect_ok coffer keys rotate --batch 20 --pause-ms 100 --no-wait
assert_contains "$(cat "$LAST_ERR")" "kek-2" "rotate names the new KEK"
expect_exit 6 coffer keys rotate
assert_contains "$(cat "$LAST_ERR")" "already running" "a second rotation while one runs is refused"
# Downloads keep working while re-wrapping runs (no downtime).
expect_ok coffer pull rot/dev/a1/file@1 -o "$OUT/during"
assert_same_file "$OUT/during" "$FILES/f1" "download during the rotation"
for _ in $(seq 1 100); do
    [ "$(kek_count kek-2)" -ge 100 ] && break
    sleep 0.05
done
server_stop KILL
done2=$(kek_count kek-2)
left1=$(kek_count kek-1)
log "at the crash: $done2 re-wrapped, $left1 left"
check "the crash happened after some DEKs were re-wrapped" test "$done2" -gt 0
check "the crash happened before every DEK was re-wrapped" test "$left1" -gt 0
assert_eq "$((done2 + left1))" "$N" "no DEK is lost or half-written at the crash"
assert_contains "$(cat "$DATA/keys/keyring.json")" '"kek-1"' "kek-1 is kept while DEKs need it"
assert_eq "$(db 'SELECT count(*) FROM key_rotations WHERE finished_at IS NULL')" 1 \
    "the unfinished rotation is recorded"

log "restart: the rotation resumes"
server_start "$DATA" || { fail "server restarts"; e2e_finish; }
expect_ok login_cli admin "$ADMIN_PW"
for _ in $(seq 1 300); do
    [ "$(db 'SELECT count(*) FROM key_rotations WHERE finished_at IS NULL')" = 0 ] && break
    sleep 0.1
done
assert_eq "$(db 'SELECT count(*) FROM key_rotations WHERE finished_at IS NULL')" 0 \
    "the resumed rotation finishes"
assert_eq "$(kek_count kek-2)" "$N" "every DEK is wrapped by kek-2"
assert_eq "$(kek_count kek-1)" 0 "no DEK is left under kek-1"
assert_not_contains "$(cat "$DATA/keys/keyring.json")" '"kek-1"' "kek-1 is destroyed"
assert_file_mode "$DATA/keys/keyring.json" 600
assert_eq "$(blob_files "$DATA" | xargs sha256sum)" "$blob_sums_before" \
    "content files are unchanged (no re-encryption)"
check "the finished rotation is in the audit log" grep -rq "key rotation finished" "$DATA/audit"
expect_ok coffer keys status
check_not "keys status no longer lists kek-1" grep -q '^kek-1 ' "$LAST_OUT"
check "keys status lists kek-2 as current" grep -qE '^kek-2 +current +[0-9]+s +1000 ' "$LAST_OUT"
expect_ok coffer keys status --json
assert_contains "$(tr -d ' \n' <"$LAST_OUT")" '"destroyed":["kek-1"]' "the history names the destroyed KEK"

log "every version downloads byte-for-byte"
DCFG="$E2E_ROOT/pull.curl"
: >"$DCFG"
for i in $(seq 1 $N); do
    a=$((i % 10))
    v=$(((i - 1) / 10 + 1))
    [ "$a" = 0 ] && v=$((i / 10))
    printf 'write-out = "%%{http_code}\\n"\ncacert = "%s"\nheader = "Authorization: Bearer %s"\nurl = "%s/v1/objects/rot/dev/a%d/file@%d"\noutput = "%s/f%d"\n' \
        "$DATA/tls/ca.pem" "$TOKEN" "$SERVER_URL" "$a" "$v" "$OUT" "$i" >>"$DCFG"
    [ "$i" -lt "$N" ] && printf 'next\n' >>"$DCFG"
done
codes=$(curl -s -K "$DCFG" | sort | uniq -c | tr -s ' ')
assert_eq "$codes" " $N 200" "$N downloads answered 200"
bad=0
for i in $(seq 1 $N); do
    cmp -s "$FILES/f$i" "$OUT/f$i" || bad=$((bad + 1))
done
assert_eq "$bad" 0 "all $N downloads are identical to what was pushed"
expect_ok coffer pull rot/dev/a3/file@7 -o "$OUT/cli"
assert_same_file "$OUT/cli" "$FILES/f63" "CLI pull verifies the SHA-256 after rotation"

# ---------------------------------------------------------------- second rotation, waited for
expect_ok coffer keys rotate
assert_contains "$(cat "$LAST_OUT")" "kek-3" "a waited rotation reports the new KEK"
assert_eq "$(kek_count kek-3)" "$N" "the second rotation re-wrapped everything"
assert_not_contains "$(cat "$DATA/keys/keyring.json")" '"kek-2"' "kek-2 is destroyed"
expect_ok coffer push "$FILES/f1" rot/dev/after/file
expect_ok coffer pull rot/dev/after/file -o "$OUT/after"
assert_same_file "$OUT/after" "$FILES/f1" "push and pull under the new KEK"
assert_eq "$(db "SELECT kek_id FROM versions v JOIN artifacts a ON v.artifact_id=a.id WHERE a.path='rot/dev/after/file'")" \
    kek-3 "new versions are wrapped by the current KEK"

# ---------------------------------------------------------------- automatic rotation
expect_exit 2 coffer keys auto-rotate soon
expect_ok coffer keys auto-rotate 2s
for _ in $(seq 1 100); do
    grep -q '"kek-4"' "$DATA/keys/keyring.json" && break
    sleep 0.1
done
assert_contains "$(cat "$DATA/keys/keyring.json")" '"kek-4"' "automatic rotation made kek-4"
expect_ok coffer keys auto-rotate off
for _ in $(seq 1 100); do
    [ "$(kek_count kek-3)" = 0 ] && break
    sleep 0.1
done
assert_eq "$(kek_count kek-3)" 0 "the automatic rotation re-wrapped every DEK"
expect_ok coffer keys status
assert_contains "$(cat "$LAST_OUT")" "automatic: off" "automatic rotation is off again"

server_stop TERM
assert_eq "$?" 0 "server stops cleanly"
e2e_finish
