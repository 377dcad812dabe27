#!/usr/bin/env bash
# Dropping root with `coffer server --user NAME`, end to end, as the
# unprivileged account every Debian system has (nobody:nogroup, 65534):
#   - the server refuses --user root, an unknown user, a data directory
#     (or anything in it) still owned by root, and a data directory the user
#     cannot reach; each time it exits non-zero before listening, with one
#     error line naming the problem;
#   - once running, all its uids and gids are 65534, it has no other group
#     and no capability, and it serves login, push, pull and metadata; what
#     it creates belongs to nobody with the same 0600/0700 modes; after a
#     clean stop the audit log verifies;
#   - it restarts as nobody, including after a SIGKILL that left SQLite's
#     -wal/-shm files behind (even when they belong to root by then).
# Needs root; skipped otherwise.
. "$(dirname "$0")/lib.sh"
e2e_init privdrop

if [ "$(id -u)" -ne 0 ]; then
    log "skip: --user needs the server to start as root (this is uid $(id -u))"
    assert_ne "$(id -u)" 0 "skipped: not running as root"
    e2e_finish
fi

RUN_AS=nobody
RUN_GROUP=nogroup
RUN_ID=65534
ADMIN_PW='Adm1n-Privdrop-Password-long!'
FILES=$(e2e_tmpdir files)

assert_eq "$(getent passwd "$RUN_AS" | cut -d: -f3,4)" "$RUN_ID:$RUN_ID" \
    "$RUN_AS exists with uid and gid $RUN_ID"
assert_eq "$(getent group "$RUN_GROUP" | cut -d: -f3)" "$RUN_ID" "$RUN_GROUP has gid $RUN_ID"

# An AddressSanitizer build runs its leak check at exit, after the drop.
ASAN_BUILD=0
if grep -qa __asan_init "$COFFER_BIN"; then
    ASAN_BUILD=1
fi

# status_field PID NAME: the values of one line of /proc/PID/status, one
# space apart.
status_field() {
    awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ +/, ""); sub(/ +$/, ""); print }' "/proc/$1/status"
}

# refused DESC NEEDLE DATA [OPTION...]: the server must stop on its own
# before listening, with a clean non-zero exit and exactly one error line
# in its log, which contains NEEDLE.
refused() {
    local desc="$1" needle="$2"
    shift 2
    if server_start "$@" 2>/dev/null; then
        fail "$desc: refused, but the server started"
        server_stop
        return 1
    fi
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        fail "$desc: the server neither started nor stopped"
        server_stop KILL
        return 1
    fi
    wait "$SERVER_PID" 2>/dev/null
    local rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ]; then
        ok "$desc: exits cleanly with $rc"
    else
        fail "$desc: exit status $rc (want 1..127)"
    fi
    assert_no_file "${SERVER_LOG%.log}.port" "$desc: never listened (no port file)"
    local errors
    errors=$(grep ' error ' "$SERVER_LOG")
    assert_eq "$(printf '%s\n' "$errors" | grep -c .)" 1 "$desc: one error line"
    assert_contains "$errors" "$needle" "$desc: the message names the problem"
}

# push_version PATH FILE: pushes FILE and prints the version number.
push_version() {
    local status
    status=$(api PUT "/v1/objects/$1?kind=model" "${AUTH[@]}" \
        -H 'Content-Type: application/octet-stream' --data-binary "@$2")
    [ "$status" = 201 ] || return 1
    json_field version "$E2E_ROOT/api.body"
}

# pull_matches PATH@V FILE: GET returns exactly the bytes of FILE.
pull_matches() {
    [ "$(api GET "/v1/objects/$1" "${AUTH[@]}")" = 200 ] &&
        cmp -s "$E2E_ROOT/api.body" "$2"
}

# not_owned DATA: prints every entry of DATA not owned by nobody:nogroup.
not_owned() {
    find "$1" \( ! -user "$RUN_AS" -o ! -group "$RUN_GROUP" \) -printf '%u:%g %p\n'
}

# modes_unchanged DATA DESC: files 0600, directories 0700, nothing else.
modes_unchanged() {
    assert_eq "$(find "$1" \( -type f ! -perm 600 \) -o \( -type d ! -perm 700 \) \
        -o \( ! -type f ! -type d \) | head -n 5)" "" "$2: files 0600, directories 0700"
}

# --- refusals -----------------------------------------------------------
# A fresh data directory belongs to root.
FRESH="$E2E_ROOT/fresh"
run_cmd init_data "$FRESH" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init of a data directory owned by root"
refused "--user nobody on a root-owned data directory" \
    "data directory $FRESH must belong to $RUN_AS" "$FRESH" --user "$RUN_AS"
refused "--user root" "--user root is root" "$FRESH" --user root
refused "--user of an unknown account" "no such user: no-such-user-xyz" "$FRESH" \
    --user no-such-user-xyz

DATA="$E2E_ROOT/data"
run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
modes_unchanged "$DATA" "after init"
chown -R "$RUN_AS:$RUN_GROUP" "$DATA"
# Only the top directory handed over: everything below still belongs to root.
chown root:root "$DATA/audit"
refused "--user nobody when audit/ still belongs to root" \
    "$DATA/audit belongs to uid 0, not to $RUN_AS" "$DATA" --user "$RUN_AS"
chown -R "$RUN_AS:$RUN_GROUP" "$DATA"
# The scratch root is 0700 root: nobody owns DATA but cannot get to it.
refused "--user nobody with the data directory out of its reach" \
    "user $RUN_AS cannot reach the data directory $DATA" "$DATA" --user "$RUN_AS"

# From here on the server, as nobody, must reach DATA and write its port
# file (server_start puts it in the scratch root, and the server writes it
# once running as nobody). Only nogroup gets in, and it cannot list.
chgrp "$RUN_GROUP" "$E2E_ROOT"
chmod 0730 "$E2E_ROOT"

# --- a run as nobody ----------------------------------------------------
random_file "$FILES/v1.bin" 300000
random_file "$FILES/v2.bin" 70000
random_file "$FILES/v3.bin" 1000
random_file "$FILES/v4.bin" 2000
random_file "$FILES/v5.bin" 3000
EVENTS_BEFORE=$(file_size "$DATA/audit/events.log")

# In an AddressSanitizer build, LeakSanitizer logs the threads it scans:
# proof that its stop-the-world (ptrace from a helper) still works once the
# process belongs to nobody, rather than the check being skipped.
LEAK_LOG_OPTS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}log_threads=1"
if ! LSAN_OPTIONS="$LEAK_LOG_OPTS" server_start "$DATA" --user "$RUN_AS"; then
    fail "server starts as $RUN_AS"
    e2e_finish
fi
ok "server starts as $RUN_AS"
assert_contains "$(cat "$SERVER_LOG")" "running as user $RUN_AS (uid $RUN_ID, gid $RUN_ID)" \
    "the log says which user the server runs as"
assert_eq "$(status_field "$SERVER_PID" Uid)" "$RUN_ID $RUN_ID $RUN_ID $RUN_ID" \
    "real, effective, saved and fs uids are $RUN_ID"
assert_eq "$(status_field "$SERVER_PID" Gid)" "$RUN_ID $RUN_ID $RUN_ID $RUN_ID" \
    "real, effective, saved and fs gids are $RUN_ID"
groups=$(status_field "$SERVER_PID" Groups)
if [ "$groups" = "" ] || [ "$groups" = "$RUN_ID" ]; then
    ok "no supplementary group but $RUN_GROUP ('$groups')"
else
    fail "supplementary groups: '$groups' (want $RUN_ID or none)"
fi
assert_eq "$(status_field "$SERVER_PID" CapEff)" 0000000000000000 "no effective capability"
assert_eq "$(status_field "$SERVER_PID" CapPrm)" 0000000000000000 "no permitted capability"
assert_eq "$(status_field "$SERVER_PID" NoNewPrivs)" 1 "no_new_privs is set"
assert_eq "$(status_field "$SERVER_PID" Seccomp)" 2 "the seccomp filter is on"

assert_eq "$(api GET /v1/health)" 200 "GET /v1/health"
TOKEN=$(api_token admin "$ADMIN_PW")
assert_ne "$TOKEN" "" "login as admin"
AUTH=(-H "Authorization: Bearer $TOKEN")
ART=fraud/dev/privdrop/model.bin
assert_eq "$(push_version "$ART" "$FILES/v1.bin")" 1 "push (PUT /v1/objects) as $RUN_AS"
check "pull (GET /v1/objects) returns the bytes pushed" pull_matches "$ART@1" "$FILES/v1.bin"
assert_eq "$(api GET "/v1/artifacts/$ART" "${AUTH[@]}")" 200 "metadata read"
assert_eq "$(json_field sha256 "$E2E_ROOT/api.body")" \
    "$(sha256sum "$FILES/v1.bin" | cut -d' ' -f1)" "metadata has the SHA-256 of the bytes"
assert_eq "$(json_field size "$E2E_ROOT/api.body")" 300000 "metadata has the size"

BLOBS=$(blob_files "$DATA")
assert_eq "$(printf '%s\n' "$BLOBS" | grep -c .)" 1 "one blob stored"
BLOB=$(printf '%s\n' "$BLOBS" | head -n 1)
assert_eq "$(stat -c '%U:%G %a' "$BLOB" 2>/dev/null)" "$RUN_AS:$RUN_GROUP 600" \
    "the new blob belongs to $RUN_AS, mode 0600"
assert_eq "$(stat -c '%U:%G %a' "$(dirname "$BLOB")" 2>/dev/null)" "$RUN_AS:$RUN_GROUP 700" \
    "its new directory belongs to $RUN_AS, mode 0700"
assert_ne "$(file_size "$DATA/audit/events.log")" "$EVENTS_BEFORE" \
    "audit events were appended after the drop"
for f in coffer.db-wal coffer.db-shm; do
    assert_eq "$(stat -c '%U %a' "$DATA/$f" 2>/dev/null)" "$RUN_AS 600" \
        "$f (opened by root before the drop) belongs to $RUN_AS, mode 0600"
done
assert_eq "$(not_owned "$DATA" | head -n 5)" "" "everything in the data directory belongs to $RUN_AS"
modes_unchanged "$DATA" "while running as $RUN_AS"

server_stop
assert_eq "$?" 0 "clean stop (no sanitizer report)"
if [ "$ASAN_BUILD" = 1 ] && [[ "$ASAN_OPTIONS" != *detect_leaks=0* ]]; then
    assert_contains "$(cat "$SERVER_LOG")" "Processing thread" \
        "the leak checker ran after the drop"
fi
expect_ok coffer audit verify --data "$DATA"
assert_eq "$(not_owned "$DATA" | head -n 5)" "" "still all $RUN_AS's after the stop and the check"
modes_unchanged "$DATA" "after the stop"

# --- restarts -----------------------------------------------------------
if server_start "$DATA" --user "$RUN_AS"; then
    ok "restarts as $RUN_AS"
    TOKEN=$(api_token admin "$ADMIN_PW")
    AUTH=(-H "Authorization: Bearer $TOKEN")
    assert_eq "$(push_version "$ART" "$FILES/v2.bin")" 2 "push after the restart"
    check "version 1 still pulls" pull_matches "$ART@1" "$FILES/v1.bin"
    check "version 2 pulls" pull_matches "$ART@2" "$FILES/v2.bin"
    server_stop
    assert_eq "$?" 0 "clean stop after the restart"
else
    fail "restarts as $RUN_AS"
fi

# A SIGKILL leaves the WAL and its index behind; make them root's, as a
# root process would have left them.
if server_start "$DATA" --user "$RUN_AS"; then
    TOKEN=$(api_token admin "$ADMIN_PW")
    AUTH=(-H "Authorization: Bearer $TOKEN")
    assert_eq "$(push_version "$ART" "$FILES/v3.bin")" 3 "push before the kill"
    server_stop KILL
    check "the -wal file is left behind" test -s "$DATA/coffer.db-wal"
    check "the -shm file is left behind" test -e "$DATA/coffer.db-shm"
    chown root:root "$DATA/coffer.db-wal" "$DATA/coffer.db-shm"
else
    fail "starts as $RUN_AS before the kill"
fi
if server_start "$DATA" --user "$RUN_AS"; then
    ok "restarts as $RUN_AS over root's -wal/-shm"
    for f in coffer.db-wal coffer.db-shm; do
        assert_eq "$(stat -c '%U %a' "$DATA/$f" 2>/dev/null)" "$RUN_AS 600" \
            "$f was given back to $RUN_AS when opened"
    done
    TOKEN=$(api_token admin "$ADMIN_PW")
    AUTH=(-H "Authorization: Bearer $TOKEN")
    check "version 3 (pushed just before the kill) pulls" pull_matches "$ART@3" "$FILES/v3.bin"
    assert_eq "$(push_version "$ART" "$FILES/v4.bin")" 4 "push after the restart over root's WAL"
    server_stop
    assert_eq "$?" 0 "clean stop"
else
    fail "restarts as $RUN_AS over root's -wal/-shm"
fi
expect_ok coffer audit verify --data "$DATA"

# A run as root (no --user) leaves root's blob in the directory: the next
# start as nobody is refused, naming it, until the directory is handed over.
if server_start "$DATA"; then
    TOKEN=$(api_token admin "$ADMIN_PW")
    AUTH=(-H "Authorization: Bearer $TOKEN")
    assert_eq "$(push_version "$ART" "$FILES/v5.bin")" 5 "push to a server run as root"
    server_stop
    assert_eq "$?" 0 "clean stop of the root server"
else
    fail "server starts as root"
fi
STRAY=$(not_owned "$DATA" | awk '$1 != "nobody:nogroup" { print $2; exit }')
assert_ne "$STRAY" "" "the root server left a file owned by root"
refused "--user nobody with root's files in the data directory" \
    "belongs to uid 0, not to $RUN_AS; run 'chown -R $RUN_AS $DATA'" "$DATA" --user "$RUN_AS"
chown -R "$RUN_AS:$RUN_GROUP" "$DATA"
if server_start "$DATA" --user "$RUN_AS"; then
    ok "starts as $RUN_AS once the directory is handed over again"
    TOKEN=$(api_token admin "$ADMIN_PW")
    AUTH=(-H "Authorization: Bearer $TOKEN")
    check "version 5 (stored by root) pulls" pull_matches "$ART@5" "$FILES/v5.bin"
    check "version 4 pulls" pull_matches "$ART@4" "$FILES/v4.bin"
    server_stop
    assert_eq "$?" 0 "clean stop"
else
    fail "starts as $RUN_AS once the directory is handed over again"
fi
expect_ok coffer audit verify --data "$DATA"
modes_unchanged "$DATA" "at the end"

e2e_finish
