#!/usr/bin/env bash
# End-to-end test of the core: init, server, login/logout/whoami, push/pull
# (0 B, 1 MiB, 200 MiB, every kind of reference), path validation in the
# CLI and the server, ls/show/versions/label/rm, a non-admin user, encryption
# at rest, restart, a crash in the middle of an upload and tamper detection.
. "$(dirname "$0")/lib.sh"
e2e_init core

ADMIN_PW='Adm1n-E2E-Password-long!'
BOB_PW='Bob-E2E-Password-42'
DATA="$E2E_ROOT/data"
FILES=$(e2e_tmpdir files)

# --------------------------------------------------------------------------
log "init"
run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init creates a data directory"
assert_contains "$(cat "$LAST_OUT")" "$DATA/tls/ca.pem" "init prints the CA certificate path"
assert_contains "$(cat "$LAST_OUT")" "SHA256:" "init prints the CA fingerprint"
assert_not_contains "$(cat "$LAST_OUT" "$LAST_ERR")" "$ADMIN_PW" \
    "init does not echo a password read from stdin"
assert_file_mode "$DATA" 700
assert_file_mode "$DATA/keys/keyring.json" 600
assert_file_mode "$DATA/tls/ca.key" 600
assert_file_mode "$DATA/tls/server.key" 600
check "CA certificate exists" test -s "$DATA/tls/ca.pem"
check "database exists" test -s "$DATA/coffer.db"
db_sum=$(cat "$DATA/coffer.db" "$DATA/keys/keyring.json" "$DATA/tls/ca.pem" | sha256sum)
run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 6 "init refuses to re-initialise a non-empty directory (exit 6)"
assert_eq "$(cat "$DATA/coffer.db" "$DATA/keys/keyring.json" "$DATA/tls/ca.pem" | sha256sum)" \
    "$db_sum" "refused init leaves the existing data untouched"
OTHER=$(e2e_tmpdir other)
echo keep >"$OTHER/file"
run_cmd init_data "$OTHER" "$ADMIN_PW"
assert_eq "$LAST_RC" 6 "init refuses a foreign non-empty directory (exit 6)"
assert_eq "$(cat "$OTHER/file")" keep "foreign directory untouched"
expect_exit 2 init_data "$E2E_ROOT/weak" "short"
assert_no_file "$E2E_ROOT/weak/coffer.db" "a refused weak password creates no database"

# --------------------------------------------------------------------------
log "server and login"
if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
ok "server starts and answers /v1/health"

run_cmd login_cli admin 'wrong-password-123'
assert_eq "$LAST_RC" 3 "login with a wrong password fails (exit 3)"
wrong_pw_msg=$(cat "$LAST_ERR")
run_cmd login_cli nosuchuser 'wrong-password-123'
assert_eq "$LAST_RC" 3 "login as an unknown user fails (exit 3)"
assert_eq "$(cat "$LAST_ERR")" "$wrong_pw_msg" "unknown user and wrong password give the same message"
assert_no_file "$XDG_CONFIG_HOME/coffer/credentials.json" "failed login stores nothing"
expect_ok login_cli admin "$ADMIN_PW"
assert_file_mode "$XDG_CONFIG_HOME/coffer/credentials.json" 600
assert_not_contains "$(cat "$XDG_CONFIG_HOME/coffer/credentials.json")" "$ADMIN_PW" \
    "stored credentials do not contain the password"
expect_ok coffer whoami
assert_contains "$(cat "$LAST_OUT")" "user:admin" "whoami names the admin"
expect_ok coffer whoami --json
assert_eq "$(json_field principal "$LAST_OUT")" admin "whoami --json principal"
assert_eq "$(json_field clearance "$LAST_OUT")" restricted "whoami --json shows the admin clearance"

old_token=$(json_field token "$XDG_CONFIG_HOME/coffer/credentials.json")
expect_ok coffer logout
expect_exit 3 coffer whoami
assert_eq "$(api GET /v1/auth/whoami -H "Authorization: Bearer $old_token")" 401 \
    "the token is revoked on the server after logout"
expect_ok login_cli admin "$ADMIN_PW"
expect_ok coffer whoami

# --------------------------------------------------------------------------
log "push and pull"
random_file "$FILES/zero" 0
random_file "$FILES/one" 1048576
random_file "$FILES/one-b" 1048576
random_file "$FILES/big" $((200 * 1048576))

expect_ok coffer push "$FILES/zero" fraud/dev/empty
assert_contains "$(cat "$LAST_OUT")" "fraud/dev/empty@1" "first push is version 1"
expect_ok coffer pull fraud/dev/empty -o "$FILES/zero.out"
assert_same_file "$FILES/zero.out" "$FILES/zero" "0 B round trip"

expect_ok coffer push --json "$FILES/one" fraud/dev/models/one --kind model -m "first cut"
assert_eq "$(json_field version "$LAST_OUT")" 1 "1 MiB push is version 1"
sha_one=$(sha256sum "$FILES/one" | cut -c1-64)
assert_eq "$(json_field sha256 "$LAST_OUT")" "$sha_one" "push reports the SHA-256 of the content"
assert_eq "$(json_field size "$LAST_OUT")" 1048576 "push reports the size"
expect_ok coffer push --json "$FILES/one-b" fraud/dev/models/one
assert_eq "$(json_field version "$LAST_OUT")" 2 "second push is version 2"
expect_ok coffer push --json "$FILES/one" fraud/dev/models/one
assert_eq "$(json_field version "$LAST_OUT")" 3 "third push (same content) is version 3"
sha_b=$(sha256sum "$FILES/one-b" | cut -c1-64)

expect_ok coffer pull fraud/dev/models/one@1 -o "$FILES/o1"
assert_same_file "$FILES/o1" "$FILES/one" "pull @1"
expect_ok coffer pull fraud/dev/models/one@2 -o "$FILES/o2"
assert_same_file "$FILES/o2" "$FILES/one-b" "pull @2"
expect_ok coffer pull fraud/dev/models/one@latest -o "$FILES/olatest"
assert_same_file "$FILES/olatest" "$FILES/one" "pull @latest is the newest version"
expect_ok coffer pull fraud/dev/models/one -o "$FILES/obare"
assert_same_file "$FILES/obare" "$FILES/one" "pull of a bare path is @latest"
expect_ok coffer pull "fraud/dev/models/one@sha256:$sha_b" -o "$FILES/osha"
assert_same_file "$FILES/osha" "$FILES/one-b" "pull @sha256:HEX"
sha_b_upper=$(printf '%s' "$sha_b" | tr 'a-f' 'A-F')
expect_ok coffer pull "fraud/dev/models/one@sha256:$sha_b_upper" -o "$FILES/osha2"
assert_same_file "$FILES/osha2" "$FILES/one-b" "pull @sha256:HEX in upper case"
PULLDIR=$(e2e_tmpdir pulldir)
(cd "$PULLDIR" && coffer pull fraud/dev/models/one@2 >/dev/null 2>&1)
assert_same_file "$PULLDIR/one" "$FILES/one-b" "pull without -o writes the last name segment"
coffer pull fraud/dev/models/one@2 -o - >"$FILES/ostdout" 2>/dev/null
assert_same_file "$FILES/ostdout" "$FILES/one-b" "pull -o - writes to stdout"
expect_exit 5 coffer pull fraud/dev/models/one@99 -o "$FILES/o99"
assert_no_file "$FILES/o99" "pull of a missing version writes no file"
expect_exit 5 coffer pull "fraud/dev/models/one@sha256:$(printf '0%.0s' $(seq 1 64))" -o "$FILES/o0"

expect_ok coffer push --json "$FILES/big" fraud/dev/data/big --kind dataset
assert_eq "$(json_field size "$LAST_OUT")" $((200 * 1048576)) "200 MiB push stored every byte"
expect_ok coffer pull fraud/dev/data/big -o "$FILES/big.out"
assert_same_file "$FILES/big.out" "$FILES/big" "200 MiB round trip"
big_sha=$(sha256sum "$FILES/big" | cut -c1-64)
rm -f "$FILES/big.out"

expect_ok coffer versions --json fraud/dev/models/one
assert_eq "$(grep -oE '"version": *[0-9]+' "$LAST_OUT" | grep -oE '[0-9]+' | tr '\n' ' ')" \
    "1 2 3 " "versions lists 1 2 3 in order"

expect_fail coffer push "$FILES" fraud/dev/models/dir
assert_eq "$(wc -l <"$LAST_ERR")" 1 "push of a directory: one-line error"
expect_fail coffer push "$FILES/does-not-exist" fraud/dev/models/missing
assert_eq "$(wc -l <"$LAST_ERR")" 1 "push of a missing file: one-line error"
expect_exit 5 coffer versions fraud/dev/models/dir
expect_exit 5 coffer versions fraud/dev/models/missing
expect_exit 2 coffer push "$FILES/one" fraud/dev/models/one --kind nonsense
expect_exit 6 coffer push "$FILES/one" fraud/dev/models/one --kind dataset
expect_exit 2 coffer push "$FILES/one"

# --------------------------------------------------------------------------
log "missing artifacts and invalid paths"
expect_exit 5 coffer pull fraud/dev/nothing/here -o "$FILES/nothing"
assert_eq "$(wc -l <"$LAST_ERR")" 1 "not found: one-line error"
assert_no_file "$FILES/nothing" "pull of a missing artifact writes no file"
expect_exit 5 coffer show fraud/dev/nothing/here
expect_exit 5 coffer versions fraud/dev/nothing/here

long_seg=$(printf 'a%.0s' $(seq 1 129))
seg110=$(printf 'b%.0s' $(seq 1 110))
long_name="$seg110/$seg110/$seg110/$seg110/$seg110" # 554 bytes, valid segments
long_proj=$(printf 'p%.0s' $(seq 1 64))
BAD_PATHS=(
    "../x" "Fraud/dev/x" "fraud/qa/x" "fraud/dev/." "fraud/dev/.." "fraud/dev//x"
    "fraud/dev/x/" "fraud/dev/x/../y" "/fraud/dev/x" "fraud/dev" "fraud/dev/"
    "fraud//dev/x" "fraud/dev/-x" "fraud/dev/x%zz" "fraud/dev/a~b" "fraud/DEV/x"
    "-fraud/dev/x" "$long_proj/dev/x" "fraud/dev/$long_seg" "fraud/dev/$long_name"
)
for p in "${BAD_PATHS[@]}"; do
    expect_exit 2 coffer pull "$p" -o "$FILES/bad"
    expect_exit 2 coffer push "$FILES/one" "$p"
done
expect_exit 2 coffer show "fraud/dev/x@0"
expect_exit 2 coffer show "fraud/dev/x@01"
expect_exit 2 coffer show "fraud/dev/x@9007199254740993"
expect_exit 2 coffer show "fraud/dev/x@sha256:abc"
expect_exit 2 coffer show "fraud/dev/x@"
expect_exit 2 coffer versions "fraud/dev/models/one@1"
expect_exit 2 coffer ls "../"
expect_exit 2 coffer ls "fraud//"
assert_no_file "$FILES/bad" "invalid paths write no file"

# The server answers 400 to the same paths, whatever the CLI does.
TOKEN=$(json_field token "$XDG_CONFIG_HOME/coffer/credentials.json")
AUTH=(-H "Authorization: Bearer $TOKEN")
SERVER_BAD=("${BAD_PATHS[@]}" "fraud/dev/%2e%2e" "fraud/dev/a%00b" "fraud/dev/a%20b"
    "fraud/dev/x@0" "fraud/dev/x@sha256:abc" "fraud/dev/x@-1" "fraud/dev/%c3%a9")
for p in "${SERVER_BAD[@]}"; do
    assert_eq "$(api GET "/v1/objects/$p" "${AUTH[@]}")" 400 "server: GET /v1/objects/$p is 400"
    assert_eq "$(api GET "/v1/artifacts/$p" "${AUTH[@]}")" 400 "server: GET /v1/artifacts/$p is 400"
    assert_eq "$(api PUT "/v1/objects/$p" "${AUTH[@]}" \
        -H 'Content-Type: application/octet-stream' --data-binary @"$FILES/zero")" 400 \
        "server: PUT /v1/objects/$p is 400"
done
assert_eq "$(api GET "/v1/list?prefix=../" "${AUTH[@]}")" 400 "server: invalid list prefix is 400"
expect_ok coffer ls --json
assert_not_contains "$(cat "$LAST_OUT")" "fraud/dev/x" "no artifact was created by invalid paths"

# --------------------------------------------------------------------------
log "ls, show, versions, label, rm"
expect_ok coffer push "$FILES/one" credit/staging/scorer --kind model
expect_ok coffer ls fraud/
assert_contains "$(cat "$LAST_OUT")" "fraud/dev/models/one" "ls fraud/ lists fraud artifacts"
assert_not_contains "$(cat "$LAST_OUT")" "credit/staging/scorer" "ls fraud/ hides other projects"
expect_ok coffer ls credit
assert_contains "$(cat "$LAST_OUT")" "credit/staging/scorer" "ls with a partial prefix"
assert_not_contains "$(cat "$LAST_OUT")" "fraud/" "ls credit hides fraud"
expect_ok coffer ls fraud/dev/models/
assert_eq "$(grep -c . "$LAST_OUT")" 1 "ls fraud/dev/models/ lists exactly one artifact"
expect_ok coffer ls nothing/
assert_eq "$(grep -c . "$LAST_OUT")" 0 "ls of an empty prefix lists nothing"
expect_ok coffer ls
assert_contains "$(cat "$LAST_OUT")" "credit/staging/scorer" "ls without a prefix lists everything"

# Lineage.
expect_ok coffer push "$FILES/one" fraud/dev/lineage/ds --kind dataset
expect_ok coffer push "$FILES/one-b" fraud/dev/lineage/model --kind model \
    --parent fraud/dev/lineage/ds@1 -m "trained on ds@1"
expect_ok coffer show fraud/dev/lineage/model
assert_contains "$(cat "$LAST_OUT")" "parent:      fraud/dev/lineage/ds@1" "show prints the parent"
assert_contains "$(cat "$LAST_OUT")" "trained on ds@1" "show prints the message"
expect_ok coffer show fraud/dev/lineage/ds@1
assert_contains "$(cat "$LAST_OUT")" "child:       fraud/dev/lineage/model@1" "show prints the child"
expect_ok coffer show --json fraud/dev/lineage/model@1
assert_eq "$(json_field kind "$LAST_OUT")" model "show --json kind"
assert_eq "$(json_field sha256 "$LAST_OUT")" "$sha_b" "show --json sha256"
expect_exit 5 coffer push "$FILES/one" fraud/dev/lineage/orphan --parent fraud/dev/lineage/ds@9
expect_exit 5 coffer versions fraud/dev/lineage/orphan
expect_exit 2 coffer push "$FILES/one" fraud/dev/lineage/orphan --parent "bad//ref"

# Labels.
expect_ok coffer label fraud/dev/lineage/model --tag pii=true --tag owner=risk-team
expect_ok coffer show --json fraud/dev/lineage/model
assert_eq "$(json_field pii "$LAST_OUT")" true "label sets tag pii=true"
assert_eq "$(json_field owner "$LAST_OUT")" risk-team "label sets tag owner=risk-team"
expect_ok coffer label fraud/dev/lineage/model --untag pii
expect_ok coffer show --json fraud/dev/lineage/model
assert_eq "$(json_field pii "$LAST_OUT")" "" "label --untag removes the tag"
assert_eq "$(json_field owner "$LAST_OUT")" risk-team "other tags stay"
expect_ok coffer label fraud/dev/lineage/model --sensitivity confidential
expect_ok coffer show --json fraud/dev/lineage/model
assert_eq "$(json_field effective_sensitivity "$LAST_OUT")" confidential "label raises sensitivity"
expect_ok coffer label fraud/dev/lineage/model@1 --sensitivity restricted
expect_ok coffer show --json fraud/dev/lineage/model@1
assert_eq "$(json_field effective_sensitivity "$LAST_OUT")" restricted \
    "a version label above the artifact's wins"
expect_ok coffer ls --json fraud/dev/lineage/model
assert_eq "$(json_field sensitivity "$LAST_OUT")" confidential "ls shows the artifact label"
expect_exit 2 coffer label fraud/dev/lineage/model --sensitivity top-secret
expect_exit 2 coffer label fraud/dev/lineage/model
expect_exit 5 coffer label fraud/dev/nothing/here --tag a=b

# rm: tombstones.
expect_ok coffer push "$FILES/one" fraud/dev/rmme
expect_ok coffer push "$FILES/one-b" fraud/dev/rmme
expect_ok coffer rm fraud/dev/rmme@1
expect_exit 5 coffer pull fraud/dev/rmme@1 -o "$FILES/rm1"
assert_no_file "$FILES/rm1" "pull of a deleted version writes no file"
expect_ok coffer pull fraud/dev/rmme -o "$FILES/rm2"
assert_same_file "$FILES/rm2" "$FILES/one-b" "the other version is still there"
expect_ok coffer versions fraud/dev/rmme
assert_contains "$(grep -E '^1 ' "$LAST_OUT")" "(deleted)" "versions marks version 1 deleted"
assert_not_contains "$(grep -E '^2 ' "$LAST_OUT")" "(deleted)" "version 2 is not deleted"
expect_ok coffer show fraud/dev/rmme@1
assert_contains "$(cat "$LAST_OUT")" "deleted:     yes" "show of a tombstone says deleted"
expect_exit 5 coffer rm fraud/dev/rmme@1
expect_ok coffer rm fraud/dev/rmme@2
expect_exit 5 coffer pull fraud/dev/rmme -o "$FILES/rm3"
expect_ok coffer ls fraud/dev/rmme
assert_eq "$(grep -c . "$LAST_OUT")" 0 "an artifact whose versions are all deleted leaves ls"
expect_ok coffer versions --json fraud/dev/rmme
assert_eq "$(grep -c '"deleted": true' "$LAST_OUT")" 2 \
    "versions still lists both tombstoned versions"
expect_exit 5 coffer rm fraud/dev/nothing/here

# --------------------------------------------------------------------------
log "non-admin user"
run_cmd coffer user add bob --password-stdin <<<"$BOB_PW"
assert_eq "$LAST_RC" 0 "admin adds user bob"
run_cmd coffer user add bob --password-stdin <<<"$BOB_PW"
assert_eq "$LAST_RC" 6 "adding bob twice is a conflict (exit 6)"
use_config bob
expect_ok login_cli bob "$BOB_PW"
expect_ok coffer whoami
assert_contains "$(cat "$LAST_OUT")" "user:bob" "bob's whoami"
assert_not_contains "$(cat "$LAST_OUT")" "admin" "bob is not an admin"
expect_exit 4 coffer push "$FILES/one" fraud/dev/bob-was-here
expect_exit 4 coffer push "$FILES/one" fraud/dev/models/one
expect_ok coffer ls
assert_eq "$(grep -c . "$LAST_OUT")" 0 "bob's ls shows nothing"
expect_ok coffer ls --json fraud/
assert_not_contains "$(cat "$LAST_OUT")" "fraud/dev" "bob's ls --json shows nothing"
expect_exit 5 coffer pull fraud/dev/models/one -o "$FILES/bob1"
hidden_msg=$(sed 's#fraud/dev/models/one#PATH#' "$LAST_ERR")
assert_no_file "$FILES/bob1" "bob's denied pull writes no file"
expect_exit 5 coffer pull fraud/dev/models/nonexistent -o "$FILES/bob2"
assert_eq "$(sed 's#fraud/dev/models/nonexistent#PATH#' "$LAST_ERR")" "$hidden_msg" \
    "denied and missing give the same message"
expect_exit 5 coffer show fraud/dev/models/one@1
expect_exit 5 coffer versions fraud/dev/models/one
expect_exit 5 coffer rm fraud/dev/models/one@1
expect_exit 5 coffer label fraud/dev/models/one --tag x=y
expect_exit 4 coffer user ls
run_cmd coffer user add mallory --password-stdin <<<"Mallory-Pass-123456"
assert_eq "$LAST_RC" 4 "bob cannot add users (exit 4)"
use_config default
expect_ok coffer pull fraud/dev/models/one@1 -o "$FILES/after-bob"
assert_same_file "$FILES/after-bob" "$FILES/one" "bob changed nothing"
expect_ok coffer versions --json fraud/dev/models/one
assert_eq "$(grep -c '"version"' "$LAST_OUT")" 3 "still three versions after bob"

# --------------------------------------------------------------------------
log "no plaintext at rest"
MARKER="CofferE2EPlaintextMarker$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
for i in $(seq 1 20000); do printf '%s\n' "$MARKER"; done >"$FILES/marker"
expect_ok coffer push "$FILES/marker" fraud/dev/secret-notes --kind other
expect_ok coffer pull fraud/dev/secret-notes -o "$FILES/marker.out"
assert_same_file "$FILES/marker.out" "$FILES/marker" "marker file round trip"
check_not "the data directory contains no plaintext of the upload" grep -r -a -q -F "$MARKER" "$DATA"
check_not "the database file contains no plaintext" grep -a -q -F "$MARKER" "$DATA/coffer.db"
if command -v sqlite3 >/dev/null 2>&1; then
    check_not "a dump of the database contains no plaintext" \
        sh -c "sqlite3 -readonly '$DATA/coffer.db' .dump | grep -q -F '$MARKER'"
fi
check_not "no blob holds the marker" sh -c "cat '$DATA'/blobs/*/* 2>/dev/null | grep -a -q -F '$MARKER'"

# --------------------------------------------------------------------------
log "tamper detection"
blob_files "$DATA" >"$E2E_ROOT/blobs.before"
random_file "$FILES/tamper" $((3 * 1048576))
expect_ok coffer push "$FILES/tamper" fraud/dev/tamper/mid
blob_files "$DATA" >"$E2E_ROOT/blobs.after"
tblob=$(comm -13 "$E2E_ROOT/blobs.before" "$E2E_ROOT/blobs.after")
assert_eq "$(printf '%s\n' "$tblob" | grep -c .)" 1 "the push created exactly one blob file"
# flip_byte FILE OFFSET: inverts every bit of one byte in place.
flip_byte() {
    local b
    b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
    printf "\\$(printf '%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
if [ -f "$tblob" ]; then
    flip_byte "$tblob" $(($(file_size "$tblob") / 2))
    TDIR=$(e2e_tmpdir tamper)
    expect_exit 7 coffer pull fraud/dev/tamper/mid -o "$TDIR/out"
    assert_no_file "$TDIR/out" "a tampered pull leaves no output file"
    assert_eq "$(ls -A "$TDIR" | wc -l)" 0 "a tampered pull leaves no temporary file"
    expect_exit 7 coffer pull fraud/dev/tamper/mid -o -
fi
# A corrupted first segment (the response has not started yet or fails at once).
blob_files "$DATA" >"$E2E_ROOT/blobs.before"
expect_ok coffer push "$FILES/tamper" fraud/dev/tamper/head
blob_files "$DATA" >"$E2E_ROOT/blobs.after"
tblob=$(comm -13 "$E2E_ROOT/blobs.before" "$E2E_ROOT/blobs.after")
if [ -f "$tblob" ]; then
    flip_byte "$tblob" 100
    TDIR=$(e2e_tmpdir tamper)
    expect_exit 7 coffer pull fraud/dev/tamper/head -o "$TDIR/out"
    assert_no_file "$TDIR/out" "a pull of a corrupted first segment leaves no output file"
    # A truncated blob is damage too.
    truncate -s 1000 "$tblob"
    expect_exit 7 coffer pull fraud/dev/tamper/head -o "$TDIR/out"
    assert_no_file "$TDIR/out" "a pull of a truncated blob leaves no output file"
else
    fail "could not find the blob of fraud/dev/tamper/head"
fi
# Other versions are unaffected.
expect_ok coffer pull fraud/dev/models/one@2 -o "$FILES/still-ok"
assert_same_file "$FILES/still-ok" "$FILES/one-b" "untouched versions still verify"

# --------------------------------------------------------------------------
log "restart"
# retarget_cli: points the stored credentials of the current user at the
# current server (the port changes on every start); the token is kept.
retarget_cli() {
    local f="$XDG_CONFIG_HOME/coffer/credentials.json"
    sed -i -E "s#https://127\\.0\\.0\\.1:[0-9]+#$SERVER_URL#" "$f"
}
old_url="$SERVER_URL"
server_stop TERM
assert_eq "$?" 0 "server exits 0 on SIGTERM"
if ! server_start "$DATA"; then
    fail "server restarts"
    e2e_finish
fi
ok "server restarts on the same data directory"
assert_ne "$SERVER_URL" "$old_url" "restarted server is on a new port"
retarget_cli
expect_ok coffer whoami
assert_contains "$(cat "$LAST_OUT")" "user:admin" "the stored session survives a restart"
expect_ok env COFFER_TOKEN="$TOKEN" "$COFFER_BIN" whoami --server "$SERVER_URL" --ca "$DATA/tls/ca.pem"
expect_ok coffer pull fraud/dev/models/one@1 -o "$FILES/r1"
assert_same_file "$FILES/r1" "$FILES/one" "1 MiB version after restart"
expect_ok coffer pull fraud/dev/data/big -o "$FILES/big.out"
assert_same_file "$FILES/big.out" "$FILES/big" "200 MiB version after restart"
rm -f "$FILES/big.out"
expect_ok coffer pull fraud/dev/empty -o "$FILES/r0"
assert_same_file "$FILES/r0" "$FILES/zero" "0 B version after restart"
expect_ok coffer show fraud/dev/lineage/ds@1
assert_contains "$(cat "$LAST_OUT")" "child:       fraud/dev/lineage/model@1" "lineage after restart"
use_config bob
retarget_cli
expect_ok coffer whoami
expect_exit 5 coffer pull fraud/dev/models/one -o "$FILES/bob3"
use_config fresh
expect_ok login_cli admin "$ADMIN_PW"
expect_ok coffer pull fraud/dev/models/one@2 -o "$FILES/fresh"
assert_same_file "$FILES/fresh" "$FILES/one-b" "a new login after restart can pull"
use_config default

# --------------------------------------------------------------------------
log "SIGKILL during an upload"
# versions_of PATH: the version numbers listed for PATH, space separated.
versions_of() {
    coffer versions --json "$1" 2>/dev/null | grep -oE '"version": *[0-9]+' | grep -oE '[0-9]+' |
        tr '\n' ' '
}
db_versions() { sqlite3 -readonly "$DATA/coffer.db" 'SELECT count(*) FROM versions'; }
before_versions=$(versions_of fraud/dev/data/big)
before_blobs=$(blob_files "$DATA" | wc -l)
assert_eq "$before_versions" "1 " "one version of fraud/dev/data/big before the crash"
random_file "$FILES/huge" $((300 * 1048576))
TOKEN=$(json_field token "$XDG_CONFIG_HOME/coffer/credentials.json")
curl -s --max-time 300 --limit-rate 20M --cacert "$DATA/tls/ca.pem" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/octet-stream' \
    -T "$FILES/huge" -o /dev/null "$SERVER_URL/v1/objects/fraud/dev/data/big" &
CURL_PID=$!
bg_track "$CURL_PID"
in_flight=0
for i in $(seq 1 600); do
    part=$(find "$DATA/blobs/tmp" -type f -name '*.part' -size +4M 2>/dev/null | head -n 1)
    if [ -n "$part" ]; then
        in_flight=1
        break
    fi
    kill -0 "$CURL_PID" 2>/dev/null || break
    sleep 0.1
done
assert_eq "$in_flight" 1 "the upload is in flight (a partial file is growing)"
server_stop KILL
wait "$CURL_PID" 2>/dev/null
curl_rc=$?
assert_ne "$curl_rc" 0 "the interrupted upload fails on the client"
check "the partial upload is on disk before restart" \
    sh -c "ls '$DATA/blobs/tmp' | grep -q ."
rm -f "$FILES/huge"
if ! server_start "$DATA"; then
    fail "server restarts after SIGKILL"
    e2e_finish
fi
ok "server restarts after SIGKILL"
retarget_cli
assert_eq "$(versions_of fraud/dev/data/big)" "$before_versions" "no new version after the crash"
assert_eq "$(ls -A "$DATA/blobs/tmp" | wc -l)" 0 "blobs/tmp is empty after restart"
assert_eq "$(blob_files "$DATA" | wc -l)" "$before_blobs" "no new blob file after the crash"
if command -v sqlite3 >/dev/null 2>&1; then
    assert_eq "$(blob_files "$DATA" | wc -l)" "$(db_versions)" \
        "one blob file per version: no unreferenced blob remains"
fi
expect_ok coffer pull fraud/dev/data/big -o "$FILES/big.out"
assert_eq "$(sha256sum "$FILES/big.out" | cut -c1-64)" "$big_sha" "the old version is intact"
rm -f "$FILES/big.out"
expect_ok coffer push --json "$FILES/one" fraud/dev/data/big
assert_eq "$(json_field version "$LAST_OUT")" 2 "the next push after the crash is version 2"

# A blob moved into place whose metadata was never written is removed too.
orphan_dir="$DATA/blobs/ee"
mkdir -p "$orphan_dir"
head -c 100 /dev/urandom >"$orphan_dir/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
head -c 100 /dev/urandom >"$DATA/blobs/tmp/0123456789abcdef0123456789abcdef.part"
server_stop TERM
assert_eq "$?" 0 "server exits 0 on SIGTERM"
if server_start "$DATA"; then
    ok "server restarts"
    assert_no_file "$orphan_dir/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee" "an orphan blob is removed at start-up"
    assert_eq "$(ls -A "$DATA/blobs/tmp" | wc -l)" 0 "a stale partial upload is removed at start-up"
    retarget_cli
    expect_ok coffer pull fraud/dev/models/one@2 -o "$FILES/final"
    assert_same_file "$FILES/final" "$FILES/one-b" "content intact after the clean-up"
else
    fail "server restarts"
fi
server_stop TERM
assert_eq "$?" 0 "server exits 0 on SIGTERM (no sanitizer report)"
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$E2E_ROOT"/server-*.log; then
    fail "sanitizer reports in the server log"
    grep -hE -A5 'AddressSanitizer|LeakSanitizer|runtime error' "$E2E_ROOT"/server-*.log | head -40 >&2
else
    ok "no sanitizer reports in the server logs"
fi

e2e_finish
