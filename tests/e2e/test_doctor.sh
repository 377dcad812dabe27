#!/usr/bin/env bash
# End-to-end test of 'coffer doctor': silent (exit 0, no finding) on a clean
# data directory whose administrator has MFA, then each planted
# misconfiguration is found with its severity and fix, and a high finding
# makes the exit status non-zero.
. "$(dirname "$0")/lib.sh"
e2e_init doctor

ADMIN_PW='Adm1n-E2E-Password-long!'
DATA="$E2E_ROOT/data"
totp() { oathtool --totp -b "$1" --now "@$2"; }

run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"

log "an administrator without MFA is a high finding"
expect_exit 1 coffer doctor --data "$DATA"
assert_contains "$(cat "$LAST_OUT")" "[high] mfa: administrator admin has no multi-factor" "admin without MFA"
assert_contains "$(cat "$LAST_OUT")" "fix: " "each finding carries its fix"

log "enrol the administrator: clean setup"
if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
use_config admin
expect_ok login_cli admin "$ADMIN_PW"
expect_ok coffer mfa enroll --json
SECRET=$(json_field secret "$LAST_OUT")
expect_ok coffer mfa confirm "$(totp "$SECRET" "$(date +%s)")"

log "online checks of the running server (GET /v1/doctor)"
status=$(api GET /v1/doctor)
assert_eq "$status" 401 "the doctor endpoint needs a credential"
ROOT_EXIT=0
[ "$(id -u)" = 0 ] && ROOT_EXIT=1
expect_exit "$ROOT_EXIT" coffer doctor
OUT=$(cat "$LAST_OUT")
assert_contains "$OUT" "server $SERVER_URL: listen 127.0.0.1:$SERVER_PORT" "the stored login is used"
assert_contains "$OUT" "TLS TLS1.3,TLS1.2" "protocols in force"
assert_contains "$OUT" "seccomp on" "seccomp in force"
assert_contains "$OUT" "key provider keyring" "the key provider"
assert_contains "$OUT" "[low] keys: the keyring's KEKs are stored unsealed" "an unsealed keyring is a low finding"
if [ "$ROOT_EXIT" = 1 ]; then
    assert_contains "$OUT" "[high] process: the server runs as root" "running as root is a high finding"
else
    assert_not_contains "$OUT" "runs as root" "not root"
fi
assert_not_contains "$OUT" "[high] audit" "the audit log has not failed"
expect_exit "$ROOT_EXIT" coffer doctor --json
assert_contains "$(cat "$LAST_OUT")" '"failed_closed": false' "audit failed-closed state"
assert_contains "$(cat "$LAST_OUT")" '"unsigned_events"' "unsigned events"
assert_contains "$(cat "$LAST_OUT")" '"last_head_age_seconds"' "age of the last head"
assert_contains "$(cat "$LAST_OUT")" '"AES-256-GCM"' "ciphers in force"
assert_contains "$(cat "$LAST_OUT")" '"worker": true' "rotation worker state"
assert_contains "$(cat "$LAST_OUT")" '"state": "current"' "KEK ages through the provider"
check "server stops cleanly" server_stop
expect_ok coffer doctor --data "$DATA"
assert_contains "$(cat "$LAST_OUT")" "0 high, 0 medium, 0 low" "silent on a clean setup"
assert_eq "$(grep -c '^\[' "$LAST_OUT")" 0 "no finding printed"
expect_ok coffer doctor --data "$DATA" --json
assert_contains "$(cat "$LAST_OUT")" '"high": 0' "JSON output"

# plant CHECK SEVERITY NEEDLE: doctor reports NEEDLE at SEVERITY.
plant_check() {
    local exitc=0
    [ "$2" = high ] && exitc=1
    expect_exit "$exitc" coffer doctor --data "$DATA"
    assert_contains "$(cat "$LAST_OUT")" "[$2] $1: $3" "$1: $3"
}

log "planted misconfigurations"
chmod 755 "$DATA"
plant_check permissions high "$DATA/. is accessible by other users (mode 755)"
assert_contains "$(cat "$LAST_OUT")" "fix: chmod 700" "the fix is the chmod"
chmod 700 "$DATA"

chmod 644 "$DATA/keys/keyring.json"
plant_check keys high "$DATA/keys/keyring.json is accessible by other users"
chmod 600 "$DATA/keys/keyring.json"

chmod 640 "$DATA/tls/server.key"
plant_check tls high "$DATA/tls/server.key is accessible by other users"
chmod 600 "$DATA/tls/server.key"

chmod 644 "$DATA/audit/signing.key"
plant_check audit high "$DATA/audit/signing.key is accessible by other users"
chmod 600 "$DATA/audit/signing.key"

echo '{"webhook": {"url": "http://127.0.0.1:1/x", "secret": "0123456789abcdef0"}}' >"$DATA/monitor.json"
chmod 644 "$DATA/monitor.json"
plant_check secrets medium "$DATA/monitor.json is accessible by other users"
rm -f "$DATA/monitor.json"

sqlite3 "$DATA/coffer.db" "UPDATE policies SET global=0 WHERE name='restricted-not-shareable'"
plant_check guardrails high "the global guardrail restricted-not-shareable is missing or no longer global"
sqlite3 "$DATA/coffer.db" "UPDATE policies SET global=1 WHERE name='restricted-not-shareable'"

python3 - "$DATA/keys/keyring.json" <<'PY'
import json, sys
p = sys.argv[1]
k = json.load(open(p))
for e in k["keks"]:
    e["created"] -= 400 * 86400
json.dump(k, open(p, "w"))
PY
plant_check keys medium "the current KEK kek-1 is 400 days old"
assert_contains "$(cat "$LAST_OUT")" "coffer keys rotate" "the fix names the rotation"

NOW=$(date +%s)
sqlite3 "$DATA/coffer.db" "INSERT INTO api_tokens(name, owner_id, token_hash, roles, scope, created_at, expires_at) VALUES('forever', 1, X'00112233', '[]', '', $NOW, $((NOW + 3650 * 86400)))"
plant_check tokens medium "API token #1 (forever) lives 3650 days"

sqlite3 "$DATA/coffer.db" "UPDATE users SET created_at = created_at - 200 * 86400 WHERE name='admin'"
expect_exit 0 coffer doctor --data "$DATA" --dormant-days 365
assert_not_contains "$(cat "$LAST_OUT")" "dormant" "an active administrator is not dormant"

log "a sealed keyring: its master key must live outside the data directory"
expect_ok coffer keys seal --data "$DATA" --master-key-file "$E2E_ROOT/master.key"
assert_contains "$(cat "$DATA/keys/keyring.json")" '"sealed"' "the keyring is sealed"
expect_exit 0 coffer doctor --data "$DATA" --master-key-file "$E2E_ROOT/master.key"
assert_not_contains "$(cat "$LAST_OUT")" "master key" "a master key outside the data directory is fine"
assert_contains "$(cat "$LAST_OUT")" "[medium] keys: the current KEK kek-1 is 400 days old" \
    "KEK ages of a sealed keyring"
install -m 600 "$E2E_ROOT/master.key" "$DATA/master.key"
expect_exit 1 coffer doctor --data "$DATA" --master-key-file "$DATA/master.key"
assert_contains "$(cat "$LAST_OUT")" "[high] keys: the master key file $DATA/master.key lies inside the data directory" \
    "a master key file inside the data directory is a high finding"
COFFER_MASTER_KEY_FILE="$DATA/master.key" expect_exit 1 coffer doctor --data "$DATA"
assert_contains "$(cat "$LAST_OUT")" "lies inside the data directory" "also when named by COFFER_MASTER_KEY_FILE"
rm -f "$DATA/master.key"

log "a tampered audit log is a high finding"
python3 - "$DATA/audit/events.log" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(b'"admin"')
b[i + 1] ^= 0x20
open(p, "wb").write(bytes(b))
PY
plant_check audit high "the audit log fails verification"
e2e_finish
