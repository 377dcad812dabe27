#!/usr/bin/env bash
# End-to-end test of the PKCS#11 key provider with SoftHSM2: a token
# initialised in a temporary directory, `coffer init --kek pkcs11:...`,
# push, pull byte-for-byte, KEK rotation inside the token (the retired KEK
# object destroyed), restart, the KEK never extractable, a wrong PIN, and the
# migration of an existing keyring store (a few versions) to the token.
. "$(dirname "$0")/lib.sh"
e2e_init pkcs11

MODULE=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
    [ -f "$m" ] && MODULE="$m" && break
done
if [ -z "$MODULE" ] || ! command -v softhsm2-util >/dev/null 2>&1; then
    fail "SoftHSM2 is installed (scripts/install-deps.sh)"
    e2e_finish
fi
command -v sqlite3 >/dev/null 2>&1 || { fail "sqlite3 is installed"; e2e_finish; }

ADMIN_PW='Adm1n-Pkcs11-Password!'
FILES=$(e2e_tmpdir files)
OUT=$(e2e_tmpdir out)
HSM=$(e2e_tmpdir hsm)
mkdir -p "$HSM/tokens"
cat >"$HSM/softhsm2.conf" <<CONF
directories.tokendir = $HSM/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$HSM/softhsm2.conf"
PIN=4711-coffer
expect_ok softhsm2-util --init-token --free --label coffer --pin "$PIN" --so-pin 0000-so
expect_ok softhsm2-util --init-token --free --label second --pin "$PIN" --so-pin 0000-so
printf '%s\n' "$PIN" >"$HSM/pin"
chmod 600 "$HSM/pin"
URI="pkcs11:module=$MODULE;token=coffer;pin-file=$HSM/pin"

# SoftHSM2 keeps a few process-lifetime allocations; they are its own.
printf 'leak:libsofthsm2\n' >"$E2E_ROOT/lsan.supp"
export LSAN_OPTIONS="suppressions=$E2E_ROOT/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

DATA="$E2E_ROOT/data"
db() { sqlite3 -readonly "$1/coffer.db" "$2"; }
token_objects() {
    pkcs11-tool --module "$MODULE" --token-label "$1" --login --pin "$PIN" --list-objects \
        --type secrkey 2>/dev/null
}

# ---------------------------------------------------------------- init
expect_exit 2 coffer init --data "$E2E_ROOT/bad" --kek "pkcs11:token=coffer"
assert_contains "$(cat "$LAST_ERR")" "module=" "a URI without a module is refused with the syntax"
expect_exit 2 coffer init --data "$E2E_ROOT/bad" --kek "pkcs11:module=$MODULE;token=coffer;pin-value=1"
printf '%s\n' "$ADMIN_PW" | COFFER_PKCS11_PIN=wrong-pin coffer init --data "$E2E_ROOT/wrongpin" \
    --admin-password-stdin --kek "pkcs11:module=$MODULE;token=coffer" >/dev/null 2>"$E2E_ROOT/wp.err"
assert_ne "$?" 0 "init with a wrong PIN fails"
assert_contains "$(cat "$E2E_ROOT/wp.err")" "refused the PIN" "the wrong PIN is named"

run_cmd sh -c "printf '%s\n' '$ADMIN_PW' | '$COFFER_BIN' init --data '$DATA' --admin-password-stdin --kek '$URI'"
assert_eq "$LAST_RC" 0 "init --kek pkcs11:..."
assert_contains "$(cat "$LAST_OUT")" "pkcs11 token 'coffer'" "init names the token"
assert_no_file "$DATA/keys/keyring.json" "no keyring file with a token"
assert_file_mode "$DATA/keys/provider.json" 600
assert_contains "$(cat "$DATA/keys/provider.json")" '"token": "coffer"' "provider.json records the token"
assert_not_contains "$(cat "$DATA/keys/provider.json")" "$PIN" "provider.json holds no PIN"
objs=$(token_objects coffer)
assert_contains "$objs" "coffer-kek-1" "the KEK was generated in the token"
assert_contains "$objs" "never extractable" "the KEK is never extractable"
assert_contains "$objs" "sensitive" "the KEK is sensitive"
check_not "the token refuses to export the KEK" pkcs11-tool --module "$MODULE" --token-label coffer \
    --login --pin "$PIN" --read-object --type secrkey --label coffer-kek-1
expect_exit 6 sh -c "printf '%s\n' '$ADMIN_PW' | '$COFFER_BIN' init --data '$E2E_ROOT/shared' --admin-password-stdin --kek '$URI'"

# ---------------------------------------------------------------- push, pull
server_start "$DATA" || { fail "server starts with the token"; e2e_finish; }
expect_ok login_cli admin "$ADMIN_PW"
for i in 1 2 3; do
    random_file "$FILES/f$i" $((1000 * i + 17))
    expect_ok coffer push "$FILES/f$i" hsm/dev/model --kind model
done
expect_ok coffer pull hsm/dev/model@2 -o "$OUT/p2"
assert_same_file "$OUT/p2" "$FILES/f2" "pull is byte-for-byte"
assert_eq "$(db "$DATA" "SELECT count(*) FROM versions WHERE kek_id='coffer-kek-1'")" 3 \
    "the DEKs are wrapped by the token KEK"
assert_eq "$(db "$DATA" "SELECT DISTINCT length(wrapped_dek) FROM versions")" 60 \
    "a wrapped DEK is IV || ciphertext || tag (60 bytes)"
expect_ok coffer keys status
assert_contains "$(cat "$LAST_OUT")" "provider: pkcs11" "keys status names the provider"
check "keys status lists the token KEK as current" grep -qE '^coffer-kek-1 +current' "$LAST_OUT"

# ---------------------------------------------------------------- rotation
expect_ok coffer keys rotate
assert_contains "$(cat "$LAST_ERR")" "coffer-kek-2" "rotate names the new token KEK"
assert_eq "$(db "$DATA" "SELECT count(*) FROM versions WHERE kek_id='coffer-kek-2'")" 3 \
    "every DEK is re-wrapped under coffer-kek-2"
objs=$(token_objects coffer)
assert_contains "$objs" "coffer-kek-2" "the new KEK lives in the token"
assert_not_contains "$objs" "coffer-kek-1" "the retired KEK object is destroyed"
expect_ok coffer pull hsm/dev/model@1 -o "$OUT/r1"
assert_same_file "$OUT/r1" "$FILES/f1" "pull after rotation"
# doctor and metrics read KEK ages through the provider, not a keyring file
ROOT_EXIT=0
[ "$(id -u)" = 0 ] && ROOT_EXIT=1
expect_exit "$ROOT_EXIT" coffer doctor --json
assert_contains "$(cat "$LAST_OUT")" '"provider": "pkcs11"' "online doctor names the provider"
assert_contains "$(cat "$LAST_OUT")" '"id": "coffer-kek-2"' "online doctor lists the token KEK"
expect_exit 1 coffer doctor --data "$DATA"
assert_not_contains "$(cat "$LAST_OUT")" "keyring.json" "offline doctor expects no keyring with a token"
assert_not_contains "$(cat "$LAST_OUT")" "could not be opened" "offline doctor opens the token"
api GET /metrics -H "Authorization: Bearer $(api_token admin "$ADMIN_PW")" >/dev/null
assert_contains "$(api_body)" 'coffer_kek_age_seconds{kek="coffer-kek-2",state="current"}' \
    "the KEK age metric covers the token"
random_file "$FILES/f4" 5000
expect_ok coffer push "$FILES/f4" hsm/dev/model
server_stop TERM
assert_eq "$?" 0 "server stops cleanly"

# ---------------------------------------------------------------- restart
server_start "$DATA" || { fail "server restarts with the token"; e2e_finish; }
expect_ok login_cli admin "$ADMIN_PW"
for i in 1 2 3 4; do
    expect_ok coffer pull "hsm/dev/model@$i" -o "$OUT/s$i"
    assert_same_file "$OUT/s$i" "$FILES/f$i" "pull of version $i after restart"
done
server_stop TERM
cp "$HSM/pin" "$HSM/pin.bak"
chmod 644 "$HSM/pin"
server_start "$DATA" 2>/dev/null && { fail "a PIN file others can read is refused"; server_stop; } ||
    ok "a PIN file others can read is refused"
assert_contains "$(cat "$SERVER_LOG")" "chmod 600" "the refusal says how to fix it"
chmod 600 "$HSM/pin"

# ---------------------------------------------------------------- migration keyring -> token
MIG="$E2E_ROOT/mig"
run_cmd init_data "$MIG" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init a keyring store"
server_start "$MIG" || { fail "keyring server starts"; e2e_finish; }
use_config mig
expect_ok login_cli admin "$ADMIN_PW"
for i in 1 2 3 4 5; do
    random_file "$FILES/m$i" $((700 * i))
    expect_ok coffer push "$FILES/m$i" mig/dev/data --kind dataset
done
expect_exit 6 coffer keys migrate --data "$MIG" --to "pkcs11:module=$MODULE;token=second;pin-file=$HSM/pin"
assert_contains "$(cat "$LAST_ERR")" "stop it first" "migration refuses a running server"
server_stop TERM
blobs_before=$(blob_files "$MIG" | xargs sha256sum)
expect_exit 5 coffer keys migrate --data "$MIG" --to "pkcs11:module=$MODULE;token=nosuch;pin-file=$HSM/pin"
assert_contains "$(cat "$DATA/keys/provider.json")" coffer "a failed migration changes nothing"
check "the keyring stays after a failed migration" test -f "$MIG/keys/keyring.json"
expect_ok coffer keys migrate --data "$MIG" --to "pkcs11:module=$MODULE;token=second;pin-file=$HSM/pin"
assert_contains "$(cat "$LAST_OUT")" "Migrated 5 key(s)" "migration re-wraps the 5 DEKs"
assert_no_file "$MIG/keys/keyring.json" "the keyring is removed after the migration"
assert_eq "$(db "$MIG" "SELECT count(*) FROM versions WHERE kek_id='coffer-kek-1'")" 5 \
    "every DEK is under the token KEK"
assert_eq "$(blob_files "$MIG" | xargs sha256sum)" "$blobs_before" "content files are untouched"
check "the migration is audited" grep -rq "migrated from the keyring" "$MIG/audit"
expect_exit 6 coffer keys migrate --data "$MIG" --to "pkcs11:module=$MODULE;token=second;pin-file=$HSM/pin"
server_start "$MIG" || { fail "the migrated store starts on the token"; e2e_finish; }
expect_ok login_cli admin "$ADMIN_PW"
for i in 1 2 3 4 5; do
    expect_ok coffer pull "mig/dev/data@$i" -o "$OUT/m$i"
    assert_same_file "$OUT/m$i" "$FILES/m$i" "pull of migrated version $i"
done
expect_ok coffer audit verify --data "$MIG"
server_stop TERM
assert_eq "$?" 0 "server stops cleanly"
e2e_finish
