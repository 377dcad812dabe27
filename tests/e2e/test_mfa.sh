#!/usr/bin/env bash
# End-to-end test of TOTP multi-factor authentication and the brute-force
# defence: enrolment with codes computed by oathtool, login with a code,
# replay refused, recovery codes single-use, step-up of an existing session,
# the prod-write guardrail denied without MFA and allowed with it, the secret
# encrypted at rest, audit events; back-off, lockout with 429 + Retry-After,
# and identical answers (and timing) for unknown users and wrong passwords.
. "$(dirname "$0")/lib.sh"
e2e_init mfa

ADMIN_PW='Adm1n-E2E-Password-long!'
CAROL_PW='Carol-E2E-Password-42'
DATA="$E2E_ROOT/data"

if ! command -v oathtool >/dev/null 2>&1; then
    fail "oathtool is installed (Debian package oathtool)"
    e2e_finish
fi

run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
# Short locks so the test can watch one expire; the per-IP limit is raised
# because every request of this test comes from 127.0.0.1.
cat >"$DATA/authn.json" <<'JSON'
{"lockout": {"user_threshold": 5, "user_backoff_after": 2, "ip_threshold": 200,
             "ip_backoff_after": 150, "lock_seconds": 4, "backoff_base_seconds": 1,
             "window_seconds": 900}}
JSON
if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
ok "server starts"
CA="$DATA/tls/ca.pem"

totp() { oathtool --totp -b "$1" --now "@$2"; }

# --------------------------------------------------------------------------
log "enrolment"
use_config old
expect_ok login_cli admin "$ADMIN_PW"
use_config admin
expect_ok login_cli admin "$ADMIN_PW"
echo "model-bytes" >"$E2E_ROOT/model.bin"
expect_exit 4 coffer push "$E2E_ROOT/model.bin" fraud/prod/scorer --kind model
assert_contains "$(cat "$LAST_ERR")" "denied" "push into prod without MFA is denied by the guardrail"
expect_ok coffer push "$E2E_ROOT/model.bin" fraud/dev/scorer --kind model

expect_ok coffer mfa status
assert_contains "$(cat "$LAST_OUT")" "not enrolled" "mfa status before enrolment"
expect_ok coffer mfa enroll
assert_contains "$(cat "$LAST_OUT")" "otpauth://totp/Coffer:admin?secret=" "enroll prints the otpauth URI"
assert_contains "$(cat "$LAST_OUT")" "█" "enroll draws a QR code in the terminal"
expect_ok coffer mfa enroll --json
SECRET=$(json_field secret "$LAST_OUT")
assert_ne "$SECRET" "" "enroll --json gives the base32 secret"
assert_contains "$(json_field uri "$LAST_OUT")" "secret=$SECRET" "the URI carries the same secret"
# The first enrolment was replaced by the second one: its code must not work.

NOW=$(date +%s)
expect_exit 3 coffer mfa confirm 000000
assert_contains "$(cat "$LAST_ERR")" "one-time code" "a wrong confirmation code is refused"
CODE0=$(totp "$SECRET" "$NOW")
expect_ok coffer mfa confirm "$CODE0" --json
RECOVERY=$(grep -oE '"[2-9a-z]{4}-[2-9a-z]{4}-[2-9a-z]{4}"' "$LAST_OUT" | tr -d '"')
assert_eq "$(printf '%s\n' "$RECOVERY" | grep -c .)" 10 "confirm returns ten recovery codes"
R1=$(printf '%s\n' "$RECOVERY" | sed -n 1p)
R2=$(printf '%s\n' "$RECOVERY" | sed -n 2p)
expect_ok coffer whoami --json
assert_eq "$(json_field mfa "$LAST_OUT")" true "the confirming session has MFA"
expect_ok coffer push "$E2E_ROOT/model.bin" fraud/prod/scorer --kind model
ok "push into prod is allowed with MFA"
expect_exit 6 coffer mfa enroll
expect_ok coffer mfa status
assert_contains "$(cat "$LAST_OUT")" "active; 10 recovery codes left" "mfa status after confirm"

log "secret encrypted at rest"
raw_hex=$(python3 -c "import base64,sys; print(base64.b32decode(sys.argv[1]+'='*(-len(sys.argv[1])%8)).hex())" "$SECRET")
db_hex=$(cat "$DATA"/coffer.db* | xxd -p | tr -d '\n')
assert_not_contains "$db_hex" "$raw_hex" "the raw TOTP secret is not in the database"
check_not "the base32 secret is not in the database" grep -qaF "$SECRET" "$DATA"/coffer.db*
for code in $RECOVERY; do
    if cat "$DATA"/coffer.db* | grep -qaF "$code"; then
        fail "recovery code $code stored in clear"
    fi
done
ok "recovery codes are not stored in clear"

log "login with a second factor"
use_config fresh
run_cmd login_cli admin "$ADMIN_PW"
assert_eq "$LAST_RC" 3 "login without a code is refused once MFA is active"
assert_contains "$(cat "$LAST_ERR")" "--otp" "the refusal says to give --otp"
CODE1=$(totp "$SECRET" $((NOW + 30)))
run_cmd login_cli admin "$ADMIN_PW" --otp "$CODE0"
assert_eq "$LAST_RC" 3 "the code used for confirmation cannot be replayed"
login_otp() {
    printf '%s\n' "$ADMIN_PW" | coffer login --server "$SERVER_URL" --ca "$CA" --user admin \
        --password-stdin --otp "$1"
}
expect_ok login_otp "$CODE1"
assert_contains "$(cat "$LAST_OUT")" "with MFA" "login with a code reports MFA"
expect_ok coffer whoami --json
assert_eq "$(json_field mfa "$LAST_OUT")" true "the new session has MFA"
expect_ok coffer push "$E2E_ROOT/model.bin" fraud/prod/scorer --kind model
expect_exit 3 login_otp "$CODE1"
assert_contains "$(cat "$LAST_ERR")" "already used" "a code is accepted only once"
expect_ok login_otp "$R1"
ok "a recovery code logs in"
expect_exit 3 login_otp "$R1"
ok "the same recovery code is refused the second time"
R2_UPPER=$(printf '%s' "$R2" | tr 'a-z' 'A-Z' | tr -d '-')
expect_ok coffer mfa status
assert_contains "$(cat "$LAST_OUT")" "9 recovery codes left" "one recovery code was used"

log "step-up of an existing session"
use_config old
expect_ok coffer whoami --json
assert_eq "$(json_field mfa "$LAST_OUT")" false "a session from before enrolment has no MFA"
expect_exit 4 coffer push "$E2E_ROOT/model.bin" fraud/prod/scorer --kind model
expect_exit 3 coffer login --otp "$CODE1"
ok "step-up with a used code is refused"
sleep 1.2 # two failures in a row start a one-second back-off
expect_ok coffer login --otp "$R2_UPPER"
assert_contains "$(cat "$LAST_OUT")" "stepped up" "step-up with a recovery code (any case, no dashes)"
expect_ok coffer whoami --json
assert_eq "$(json_field mfa "$LAST_OUT")" true "the stepped-up session has MFA"
expect_ok coffer push "$E2E_ROOT/model.bin" fraud/prod/scorer --kind model
ok "push into prod allowed after step-up"

log "audit"
audit_text=$(cat "$DATA"/audit/* 2>/dev/null | tr -c '[:print:]\n' '\n')
assert_contains "$audit_text" '"auth:Login"' "logins are audit events"
assert_contains "$audit_text" 'wrong one-time code' "failed codes are audit events"
assert_contains "$audit_text" '"auth:StepUp"' "step-up is an audit event"
assert_contains "$audit_text" 'multi-factor authentication activated' "activation is an audit event"

log "disable"
use_config admin
expect_exit 3 coffer mfa disable 123456
R3=$(printf '%s\n' "$RECOVERY" | sed -n 3p)
expect_ok coffer mfa disable "$R3"
use_config fresh2
expect_ok login_cli admin "$ADMIN_PW"
ok "after disable a password alone logs in again"
expect_exit 2 login_otp "$CODE1"

# --------------------------------------------------------------------------
log "brute-force defence"
use_config admin
printf '%s\n' "$CAROL_PW" | coffer user add carol --password-stdin >/dev/null
attempt() { # USER PASSWORD -> status; body in $E2E_ROOT/api.body, headers in .hdr
    local body
    body=$(printf '{"user":"%s","password":"%s"}' "$1" "$2")
    curl -s --max-time 60 --cacert "$CA" -D "$E2E_ROOT/api.hdr" -o "$E2E_ROOT/api.body" \
        -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$body" \
        "$SERVER_URL/v1/auth/login"
}
strip_id() { sed -E 's/"request_id":"[0-9a-f]+"//' "$E2E_ROOT/api.body"; }
retry_after() { tr -d '\r' <"$E2E_ROOT/api.hdr" | awk -F': ' 'tolower($1)=="retry-after"{print $2}'; }

seq_for() { # USER: runs the same sequence and prints status/body per step
    local u="$1" out=""
    s=$(attempt "$u" wrong-password-1); out+="$s $(strip_id)|"
    s=$(attempt "$u" wrong-password-2); out+="$s $(strip_id)|"
    s=$(attempt "$u" wrong-password-3); out+="$s $(strip_id) ra=$(retry_after)|"
    printf '%s' "$out"
}
carol_seq=$(seq_for carol)
ghost_seq=$(seq_for ghost-user)
assert_eq "$ghost_seq" "$carol_seq" "unknown user and wrong password: identical statuses and bodies"
assert_contains "$carol_seq" "429" "the third quick failure is answered 429"
assert_contains "$carol_seq" "ra=1" "with Retry-After: 1 (back-off after two failures)"
assert_eq "$(attempt carol "$CAROL_PW")" 429 "even the right password waits during back-off"
sleep 1.2
assert_eq "$(attempt carol wrong-password-3)" 401 "after the back-off a try is allowed again"
assert_eq "$(attempt carol wrong-password-4)" 429 "the next back-off is longer"
assert_eq "$(retry_after)" 2 "Retry-After doubles to 2"
sleep 2.2
assert_eq "$(attempt carol wrong-password-4)" 401 "fourth failure"
sleep 4.2
assert_eq "$(attempt carol wrong-password-5)" 401 "fifth failure"
assert_eq "$(attempt carol "$CAROL_PW")" 429 "five failures lock the account"
ra=$(retry_after)
check "Retry-After of the lock is 1..4 s (got $ra)" test "$ra" -ge 1 -a "$ra" -le 4
assert_contains "$(api_body)" "too many failed attempts" "the lock says why"
sleep 4.5
assert_eq "$(attempt carol "$CAROL_PW")" 200 "the lock expires and the right password works"
assert_eq "$(attempt carol wrong-password-6)" 401 "a success cleared the counter"
assert_eq "$(attempt carol wrong-password-7)" 401 "second failure after the reset"

log "timing"
time_attempt() {
    local body
    body=$(printf '{"user":"%s","password":"%s"}' "$1" "$2")
    curl -s --max-time 60 --cacert "$CA" -o /dev/null -w '%{time_total}' \
        -H 'Content-Type: application/json' --data-binary "$body" "$SERVER_URL/v1/auth/login"
}
printf '%s\n' "$CAROL_PW" | coffer user add dave --password-stdin >/dev/null
printf '%s\n' "$CAROL_PW" | coffer user add erin --password-stdin >/dev/null
add() { python3 -c "import sys; print(round(float(sys.argv[1]) + float(sys.argv[2]), 4))" "$1" "$2"; }
t_known=$(add "$(time_attempt dave wrong-password-1)" "$(time_attempt erin wrong-password-1)")
t_unknown=$(add "$(time_attempt nobody1 wrong-password-1)" "$(time_attempt nobody2 wrong-password-1)")
log "wrong password: ${t_known}s, unknown user: ${t_unknown}s (two tries each)"
check "unknown users cost as much time as wrong passwords" \
    python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if abs(a-b) <= 0.5*max(a,b)+0.1 else 1)" "$t_known" "$t_unknown"
check "the password check does real work for unknown users (>= 10 ms)" \
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 0.02 else 1)" "$t_unknown"

audit_text=$(cat "$DATA"/audit/* 2>/dev/null | tr -c '[:print:]\n' '\n')
assert_contains "$audit_text" 'too many failed attempts' "lockouts are audit events"
assert_contains "$audit_text" '"user:ghost-user"' "failures of unknown users are audit events"

expect_ok server_stop
e2e_finish
