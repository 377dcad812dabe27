#!/usr/bin/env bash
# End-to-end test of the keyring master key: a store initialised with
# --master-key-file keeps only sealed KEKs in keyring.json, refuses to start
# without the key (or with a wrong one, or a key file others can read),
# starts with --master-key-file, COFFER_MASTER_KEY or COFFER_MASTER_KEY_FILE,
# stays sealed across a rotation, and `coffer keys seal` seals an existing store.
. "$(dirname "$0")/lib.sh"
e2e_init masterkey

ADMIN_PW='Adm1n-Master-Password!'
DATA="$E2E_ROOT/data"
SECRETS=$(e2e_tmpdir secrets)
FILES=$(e2e_tmpdir files)
OUT=$(e2e_tmpdir out)
MK="$SECRETS/master.key"

# start_with_flag DATA ARGS...: coffer server with extra arguments; 0 once healthy.
start_with_flag() {
    local data="$1"
    shift
    local pf="$E2E_ROOT/flag.port"
    rm -f "$pf"
    "$COFFER_BIN" server --data "$data" --listen 127.0.0.1:0 --port-file "$pf" "$@" \
        >"$E2E_ROOT/flag.log" 2>&1 </dev/null &
    SERVER_PID=$!
    E2E_SERVER_PIDS+=("$SERVER_PID")
    SERVER_DATA="$data"
    SERVER_LOG="$E2E_ROOT/flag.log"
    for _ in $(seq 1 300); do
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        if [ -s "$pf" ]; then
            SERVER_PORT=$(tr -dc '0-9' <"$pf")
            SERVER_URL="https://127.0.0.1:$SERVER_PORT"
            [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$data/tls/ca.pem" \
                "$SERVER_URL/v1/health")" = 200 ] && return 0
        fi
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- init
printf '%s\n' "$ADMIN_PW" | coffer init --data "$E2E_ROOT/inside" --admin-password-stdin \
    --master-key-file "$E2E_ROOT/inside/keys/master.key" >/dev/null 2>"$E2E_ROOT/in.err"
assert_ne "$?" 0 "a master key file inside the data directory is refused"
assert_contains "$(cat "$E2E_ROOT/in.err")" "outside" "the refusal says to keep it outside"

run_cmd sh -c "printf '%s\n' '$ADMIN_PW' | '$COFFER_BIN' init --data '$DATA' --admin-password-stdin --master-key-file '$MK'"
assert_eq "$LAST_RC" 0 "init --master-key-file (file created)"
assert_contains "$(cat "$LAST_OUT")" "sealed under the master key" "init reports the sealing"
assert_file_mode "$MK" 600
check "the master key file holds 64 hex digits" grep -qE '^[0-9a-f]{64}$' "$MK"
KR="$DATA/keys/keyring.json"
assert_file_mode "$KR" 600
assert_contains "$(cat "$KR")" '"sealed": "aes-256-gcm"' "keyring.json is sealed"
assert_contains "$(cat "$KR")" '"sealed_key"' "KEKs are stored sealed"
assert_not_contains "$(cat "$KR")" '"key":' "keyring.json holds no plaintext KEK"
check_not "keyring.json holds no bare 32-byte hex key" grep -qE '"[0-9a-f]{64}"' "$KR"

# ---------------------------------------------------------------- start-up
unset COFFER_MASTER_KEY COFFER_MASTER_KEY_FILE
check_not "the server does not start without the master key" server_start "$DATA"
assert_contains "$(cat "$SERVER_LOG")" "sealed with a master key" "the error says the key is missing"
assert_contains "$(cat "$SERVER_LOG")" "--master-key-file" "the error says how to give it"
COFFER_MASTER_KEY=$(head -c 32 /dev/urandom | xxd -p -c 64) check_not \
    "the server does not start with a wrong master key" server_start "$DATA"
assert_contains "$(cat "$SERVER_LOG")" "does not open" "the wrong key is named"
chmod 644 "$MK"
check_not "a master key file others can read is refused" start_with_flag "$DATA" --master-key-file "$MK"
assert_contains "$(cat "$SERVER_LOG")" "chmod 600" "the refusal says how to fix it"
chmod 600 "$MK"

start_with_flag "$DATA" --master-key-file "$MK" && ok "the server starts with --master-key-file" ||
    { fail "the server starts with --master-key-file"; sed 's/^/#   /' "$SERVER_LOG" >&2; e2e_finish; }
expect_ok login_cli admin "$ADMIN_PW"
random_file "$FILES/a" 123457
expect_ok coffer push "$FILES/a" mk/dev/model
expect_ok coffer pull mk/dev/model -o "$OUT/a1"
assert_same_file "$OUT/a1" "$FILES/a" "pull under a sealed keyring"
expect_ok coffer keys rotate
assert_contains "$(cat "$KR")" '"kek-2"' "rotation added kek-2"
assert_not_contains "$(cat "$KR")" '"key":' "the keyring stays sealed after a rotation"
server_stop TERM

COFFER_MASTER_KEY=$(cat "$MK") server_start "$DATA" && ok "COFFER_MASTER_KEY (hex) opens it" ||
    fail "COFFER_MASTER_KEY (hex) opens it"
server_stop TERM
B64=$(xxd -r -p "$MK" | base64 -w0)
COFFER_MASTER_KEY="$B64" server_start "$DATA" && ok "COFFER_MASTER_KEY (base64) opens it" ||
    fail "COFFER_MASTER_KEY (base64) opens it"
server_stop TERM
export COFFER_MASTER_KEY_FILE="$MK"
server_start "$DATA" || { fail "COFFER_MASTER_KEY_FILE opens it"; e2e_finish; }
ok "COFFER_MASTER_KEY_FILE opens it"
expect_ok login_cli admin "$ADMIN_PW"
expect_ok coffer pull mk/dev/model -o "$OUT/a2"
assert_same_file "$OUT/a2" "$FILES/a" "pull after restart with the rotated, sealed keyring"
server_stop TERM
unset COFFER_MASTER_KEY_FILE

# ---------------------------------------------------------------- sealing an existing store
PLAIN="$E2E_ROOT/plain"
run_cmd init_data "$PLAIN" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init an unsealed store"
assert_contains "$(cat "$PLAIN/keys/keyring.json")" '"key":' "an unsealed keyring is unchanged (backward compatible)"
server_start "$PLAIN" || { fail "unsealed store starts without a master key"; e2e_finish; }
use_config plain
expect_ok login_cli admin "$ADMIN_PW"
expect_ok coffer push "$FILES/a" plain/dev/model
expect_exit 6 coffer keys seal --data "$PLAIN" --master-key-file "$SECRETS/plain.key"
server_stop TERM
expect_ok coffer keys seal --data "$PLAIN" --master-key-file "$SECRETS/plain.key"
assert_file_mode "$SECRETS/plain.key" 600
assert_not_contains "$(cat "$PLAIN/keys/keyring.json")" '"key":' "keys seal removed the plaintext KEK"
check_not "the sealed store needs its key" server_start "$PLAIN"
COFFER_MASTER_KEY_FILE="$SECRETS/plain.key" server_start "$PLAIN" ||
    { fail "the sealed store starts with its key"; e2e_finish; }
expect_ok login_cli admin "$ADMIN_PW"
expect_ok coffer pull plain/dev/model -o "$OUT/p"
assert_same_file "$OUT/p" "$FILES/a" "content survives sealing"
server_stop TERM
# Re-sealing under a new key: the old one comes from the environment.
COFFER_MASTER_KEY_FILE="$SECRETS/plain.key" expect_ok coffer keys seal --data "$PLAIN" \
    --master-key-file "$SECRETS/new.key"
COFFER_MASTER_KEY_FILE="$SECRETS/plain.key" check_not "the old master key no longer opens it" \
    server_start "$PLAIN"
COFFER_MASTER_KEY_FILE="$SECRETS/new.key" server_start "$PLAIN" && ok "the new master key opens it" ||
    fail "the new master key opens it"
server_stop TERM
assert_eq "$?" 0 "server stops cleanly"
e2e_finish
