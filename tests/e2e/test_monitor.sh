#!/usr/bin/env bash
# End-to-end test of monitoring: GET /metrics (authenticated, audit:Read),
# an anomaly finding raised by a burst of denied requests, its signed
# webhook delivered to a receiver started here, suspension of the principal
# on its next request, clearing it, and acknowledging the finding.
. "$(dirname "$0")/lib.sh"
e2e_init monitor

ADMIN_PW='Adm1n-E2E-Password-long!'
BOB_PW='Bob-E2E-Password-4242'
DATA="$E2E_ROOT/data"
SECRET='e2e-webhook-secret-0123456789'

run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"

# A webhook receiver: stores each body and its signature header.
HOOK_DIR="$E2E_ROOT/hook"
mkdir -p "$HOOK_DIR"
cat >"$E2E_ROOT/receiver.py" <<'PY'
import http.server, sys, os
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get('Content-Length', '0'))
        body = self.rfile.read(n)
        k = len(os.listdir(out)) // 2
        open(os.path.join(out, '%d.body' % k), 'wb').write(body)
        open(os.path.join(out, '%d.sig' % k), 'w').write(self.headers.get('X-Coffer-Signature', ''))
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
open(sys.argv[2], 'w').write(str(s.server_address[1]))
s.serve_forever()
PY
python3 "$E2E_ROOT/receiver.py" "$HOOK_DIR" "$E2E_ROOT/hook.port" &
bg_track $!
for _ in $(seq 1 50); do [ -s "$E2E_ROOT/hook.port" ] && break; sleep 0.1; done
HOOK_PORT=$(cat "$E2E_ROOT/hook.port")

cat >"$DATA/monitor.json" <<EOF2
{"detector": {"deny_count": 5, "deny_window": 120},
 "webhook": {"url": "http://127.0.0.1:$HOOK_PORT/hook", "secret": "$SECRET"},
 "responses": {"deny_burst": ["webhook", "suspend"]}}
EOF2
chmod 600 "$DATA/monitor.json"

if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
ok "server starts with monitoring configured"

use_config admin
expect_ok login_cli admin "$ADMIN_PW"
printf '%s\n' "$BOB_PW" | coffer user add bob --password-stdin >/dev/null
expect_ok coffer role bind viewer user:bob
ADMIN_TOKEN=$(api_token admin "$ADMIN_PW")
BOB_TOKEN=$(api_token bob "$BOB_PW")
assert_ne "$BOB_TOKEN" "" "bob gets a session"

log "metrics"
status=$(api GET /metrics)
assert_eq "$status" 401 "metrics need a credential"
status=$(api GET /metrics -H "Authorization: Bearer $BOB_TOKEN")
assert_eq "$status" 403 "metrics need audit:Read"
status=$(api GET /metrics -H "Authorization: Bearer $ADMIN_TOKEN")
assert_eq "$status" 200 "an administrator reads the metrics"
M=$(api_body)
assert_contains "$M" '# TYPE coffer_http_requests_total counter' "request counter"
assert_contains "$M" 'coffer_http_requests_total{method="GET",route="/metrics",status="403"} 1' \
    "requests by route and status"
assert_contains "$M" 'coffer_http_request_duration_seconds_bucket{method="GET",route="/v1/health",le="+Inf"}' \
    "latency histogram"
assert_contains "$M" 'coffer_decisions_total{action="audit:Read",decision="deny"} 1' \
    "decisions by action"
assert_contains "$M" 'coffer_auth_failures_total{kind="credential"} 1' "credential failures"
assert_contains "$M" 'coffer_audit_events ' "audit log size"
EV=$(printf '%s\n' "$M" | awk '$1 == "coffer_audit_events" {print $2}')
FL=$(printf '%s\n' "$M" | awk '$1 == "coffer_audit_flushes_total" {print $2}')
if [ -n "$FL" ] && [ "$FL" -ge 1 ] && [ "$FL" -le "$EV" ]; then
    ok "audit flushes counted ($FL for $EV events)"
else
    fail "coffer_audit_flushes_total ($FL) should be between 1 and the events ($EV)"
fi
# The admin's session was looked up for each of these requests: from the
# second one on, the store's cache answers (no commit in between).
HIT=$(printf '%s\n' "$M" | awk '$1 == "coffer_store_cache_lookups_total{result=\"hit\"}" {print $2}')
MISS=$(printf '%s\n' "$M" | awk '$1 == "coffer_store_cache_lookups_total{result=\"miss\"}" {print $2}')
if [ -n "$HIT" ] && [ -n "$MISS" ] && [ "$MISS" -ge 1 ]; then
    ok "store cache lookups counted (hit $HIT, miss $MISS)"
else
    fail "coffer_store_cache_lookups_total missing or without misses (hit '$HIT', miss '$MISS')"
fi
for _ in 1 2 3; do api GET /metrics -H "Authorization: Bearer $ADMIN_TOKEN" >/dev/null; done
HIT2=$(api_body | awk '$1 == "coffer_store_cache_lookups_total{result=\"hit\"}" {print $2}')
if [ -n "$HIT2" ] && [ "$HIT2" -gt "$HIT" ]; then
    ok "repeated requests of one session are answered from the cache ($HIT -> $HIT2 hits)"
else
    fail "repeated requests did not hit the store's cache ($HIT -> '$HIT2')"
fi
assert_contains "$M" 'coffer_audit_last_head_age_seconds' "last signed head age"
assert_contains "$M" 'coffer_kek_age_seconds{kek="kek-1",state="current"}' "KEK age"
assert_contains "$M" 'coffer_share_links_active 0' "share links active"
assert_contains "$M" 'coffer_anomaly_findings_total{rule="deny_burst"} 0' "findings by rule"
printf '{"user":"bob","password":"wrong-password-x"}' >"$E2E_ROOT/bad.json"
api POST /v1/auth/login -H 'Content-Type: application/json' --data-binary @"$E2E_ROOT/bad.json" >/dev/null
api GET /metrics -H "Authorization: Bearer $ADMIN_TOKEN" >/dev/null
assert_contains "$(api_body)" 'coffer_auth_failures_total{kind="login"} 1' "login failures"

log "a burst of denied requests"
for i in 1 2 3 4 5; do
    status=$(api GET /v1/audit/events -H "Authorization: Bearer $BOB_TOKEN")
    assert_eq "$status" 403 "denied request $i"
done
status=$(api GET /v1/auth/whoami -H "Authorization: Bearer $BOB_TOKEN")
assert_eq "$status" 403 "the suspended principal's next request is refused"
assert_contains "$(api_body)" "clear-suspension user:bob" "the refusal says how to clear it"
expect_ok coffer alerts
assert_contains "$(cat "$LAST_OUT")" "deny_burst" "coffer alerts lists the finding"
assert_contains "$(cat "$LAST_OUT")" "user:bob" "for bob"
assert_contains "$(cat "$LAST_OUT")" "hold: user:bob suspend" "and the suspension"
expect_ok coffer alerts --json
FID=$(json_field id "$LAST_OUT")
assert_ne "$FID" "" "the finding has an id"

log "webhook"
for _ in $(seq 1 50); do [ -s "$HOOK_DIR/0.body" ] && break; sleep 0.1; done
check "the webhook received the finding" test -s "$HOOK_DIR/0.body"
assert_contains "$(cat "$HOOK_DIR/0.body")" '"rule":"deny_burst"' "webhook body names the rule"
assert_contains "$(cat "$HOOK_DIR/0.body")" '"events":[' "webhook body lists the audit events"
EXPECTED=$(python3 -c 'import hmac,hashlib,sys; print("sha256="+hmac.new(sys.argv[1].encode(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$SECRET" "$HOOK_DIR/0.body")
assert_eq "$(cat "$HOOK_DIR/0.sig")" "$EXPECTED" "the HMAC-SHA256 signature verifies"
WRONG=$(python3 -c 'import hmac,hashlib,sys; print("sha256="+hmac.new(b"other-secret", open(sys.argv[1],"rb").read(), hashlib.sha256).hexdigest())' "$HOOK_DIR/0.body")
assert_ne "$(cat "$HOOK_DIR/0.sig")" "$WRONG" "a different secret does not verify"

log "the suspension is recorded and can be cleared"
expect_ok coffer audit tail -n 50 --action auth:Blocked --json
assert_contains "$(cat "$LAST_OUT")" '"principal":"user:bob"' "the refusal is in the audit log"
printf '{"user":"bob","password":"%s"}' "$BOB_PW" >"$E2E_ROOT/bob.json"
status=$(api POST /v1/auth/login -H 'Content-Type: application/json' --data-binary @"$E2E_ROOT/bob.json")
assert_eq "$status" 403 "the suspended principal cannot log in again"
assert_contains "$(api_body)" "administrator must review" "the login refusal says an admin must clear it"
assert_not_contains "$(api_body)" '"token"' "no session is issued"
use_config bob
expect_exit 4 login_cli bob "$BOB_PW"
ok "coffer login of the suspended principal is refused"
use_config admin
expect_ok coffer audit tail -n 50 --action auth:Login --json
assert_contains "$(cat "$LAST_OUT")" 'principal suspended by an anomaly response' \
    "the refused login is audited"
expect_exit 5 coffer alerts clear-suspension user:nobody
expect_ok coffer alerts clear-suspension user:bob
status=$(api GET /v1/auth/whoami -H "Authorization: Bearer $BOB_TOKEN")
assert_eq "$status" 200 "cleared: bob works again"
status=$(api POST /v1/auth/login -H 'Content-Type: application/json' --data-binary @"$E2E_ROOT/bob.json")
assert_eq "$status" 200 "cleared: bob can log in again"
expect_ok coffer alerts ack "$FID"
expect_exit 5 coffer alerts ack "$FID"
expect_ok coffer alerts
assert_contains "$(cat "$LAST_OUT")" "no open findings" "acknowledged findings leave the open list"
expect_ok coffer alerts --all
assert_contains "$(cat "$LAST_OUT")" "acknowledged" "but stay in the history"
api GET /metrics -H "Authorization: Bearer $ADMIN_TOKEN" >/dev/null
assert_contains "$(api_body)" 'coffer_anomaly_findings_total{rule="deny_burst"} 1' "finding counted"
assert_contains "$(api_body)" 'coffer_webhook_deliveries_total{result="ok"} 1' "delivery counted"
check "blocked requests counted" grep -Eq '^coffer_blocked_requests_total [2-9]' "$E2E_ROOT/api.body"

log "restart: findings and holds persist, replay raises nothing new"
check "server stops cleanly" server_stop
if server_start "$DATA"; then ok "server restarts"; else fail "server restarts"; fi
expect_ok login_cli admin "$ADMIN_PW"
expect_ok coffer alerts --all --json
assert_eq "$(grep -c '"rule"' "$LAST_OUT")" 1 "still exactly one finding after the replay"
assert_contains "$(cat "$SERVER_LOG")" "learned baselines" "baselines were warmed from the log"
check "server stops cleanly" server_stop

log "--metrics-listen: plain-HTTP /metrics on loopback only"
expect_exit 2 coffer server --data "$DATA" --listen 127.0.0.1:0 --metrics-listen 0.0.0.0:0
assert_contains "$(cat "$LAST_ERR" 2>/dev/null)$(cat "$LAST_OUT")" "loopback" "a non-loopback metrics address is refused"
expect_exit 2 coffer server --data "$DATA" --listen 127.0.0.1:0 --metrics-listen localhost:9100
MLOG="$E2E_ROOT/metrics-server.log"
"$COFFER_BIN" server --data "$DATA" --listen 127.0.0.1:0 --port-file "$E2E_ROOT/m.port" \
    --metrics-listen 127.0.0.1:0 >"$MLOG" 2>&1 </dev/null &
MPID=$!
E2E_SERVER_PIDS+=("$MPID")
MURL=""
for _ in $(seq 1 300); do
    MURL=$(grep -o 'http://127\.0\.0\.1:[0-9]*/metrics' "$MLOG" | head -n 1)
    [ -n "$MURL" ] && [ -s "$E2E_ROOT/m.port" ] && break
    sleep 0.1
done
assert_ne "$MURL" "" "the server prints the metrics address"
status=$(curl -s --max-time 10 -o "$E2E_ROOT/m.body" -w '%{http_code}' "$MURL")
assert_eq "$status" 200 "GET /metrics needs no credential on the metrics address"
assert_contains "$(cat "$E2E_ROOT/m.body")" '# TYPE coffer_http_requests_total counter' "Prometheus text"
assert_contains "$(cat "$E2E_ROOT/m.body")" 'coffer_anomaly_findings_total' "monitor metrics"
status=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "${MURL%/metrics}/v1/health")
assert_eq "$status" 404 "nothing else is served there"
status=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "${MURL%/metrics}/v1/auth/whoami")
assert_eq "$status" 404 "not even the API"
status=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$MURL")
assert_eq "$status" 405 "only GET"
MAIN_PORT=$(tr -dc '0-9' <"$E2E_ROOT/m.port")
status=$(curl -s --max-time 10 --cacert "$DATA/tls/ca.pem" -o /dev/null -w '%{http_code}' \
    "https://127.0.0.1:$MAIN_PORT/metrics")
assert_eq "$status" 401 "the HTTPS /metrics still needs a credential"
kill -TERM "$MPID"
wait "$MPID"
assert_eq "$?" 0 "the server with a metrics listener stops cleanly"
e2e_finish
