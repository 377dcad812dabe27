#!/usr/bin/env bash
# Read-only requests answer only once their audit record is durable, without
# a thread waiting for the disk (the connection is suspended until the audit
# flusher has synced the record):
#   - many concurrent reads through two worker threads all succeed, and each
#     answered request has exactly one event in the log;
#   - after SIGKILL in the middle of a flood of reads, every request that was
#     answered 200 has its event in the log (durable before the answer);
#   - SIGTERM in the middle of a flood stops the server cleanly (exit 0),
#     and every read it had started is answered first (no empty reply);
#   - the log verifies afterwards.
. "$(dirname "$0")/lib.sh"
e2e_init held

ADMIN_PW='Adm1n-Held-Answers-Password!'
DATA="$E2E_ROOT/data"
run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
server_start "$DATA" --threads 2 || { fail "server starts"; e2e_finish; }
TOKEN=$(api_token admin "$ADMIN_PW")
assert_ne "$TOKEN" "" "admin session"
random_file "$E2E_ROOT/m.bin" 2048
status=$(api PUT "/v1/objects/held/dev/model?kind=model" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$E2E_ROOT/m.bin")
assert_eq "$status" 201 "push the artifact the reads fetch"

# flood_cfg N CFG: a curl config of N reads of the artifact's metadata (odd
# ones) and content (even ones).
flood_cfg() {
    awk -v n="$1" -v u="$SERVER_URL" 'BEGIN {
        for (i = 1; i <= n; i++) {
            printf "url = \"%s/v1/%s/held/dev/model\"\noutput = \"/dev/null\"\n",
                u, (i % 2 ? "artifacts" : "objects")
        }
    }' >"$2"
}

# flood CFG OUT: the reads of CFG, 48 at a time; one line "STATUS REQUEST-ID
# CURL-EXIT-CODE" per read in OUT (no request id without an answer).
flood() {
    curl -s --parallel --parallel-max 48 --max-time 60 --cacert "$DATA/tls/ca.pem" \
        -H "Authorization: Bearer $TOKEN" -w '%{http_code} %header{x-request-id} %{exitcode}\n' \
        -K "$1" >"$2" 2>/dev/null
    return 0
}

# wait_answers OUT N: waits (up to 60 s) until OUT holds N answers.
wait_answers() {
    local i
    for i in $(seq 1 600); do
        [ "$(grep -c '^200 ' "$1" 2>/dev/null)" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# events_with_ids IDS: of the request ids (one per line in IDS), how many
# have an artifact:Read event in DATA/audit/events.log, how many have none and
# how many more than one: prints "FOUND MISSING DUPLICATED".
events_with_ids() {
    python3 - "$DATA/audit/events.log" "$1" <<'PY'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
seen = {}
pos = 0
while pos + 4 <= len(data):
    (n,) = struct.unpack(">I", data[pos:pos + 4])
    if n == 0:  # zero bytes allocated ahead: the end of the records
        break
    if pos + 4 + n > len(data):
        break
    ev = json.loads(data[pos + 4:pos + 4 + n])
    rid = ev.get("request_id")
    if rid and ev.get("action") == "artifact:Read":
        seen[rid] = seen.get(rid, 0) + 1
    pos += 4 + n
ids = [l.strip() for l in open(sys.argv[2]) if l.strip()]
found = sum(1 for i in ids if i in seen)
dup = sum(1 for i in ids if seen.get(i, 0) > 1)
print(found, len(ids) - found, dup)
PY
}

log "400 concurrent reads through two worker threads"
flood_cfg 400 "$E2E_ROOT/flood1.cfg"
flood "$E2E_ROOT/flood1.cfg" "$E2E_ROOT/flood1.txt"
assert_eq "$(wc -l <"$E2E_ROOT/flood1.txt")" 400 "every read is answered"
assert_eq "$(grep -c '^200 ' "$E2E_ROOT/flood1.txt")" 400 "every read is answered 200"
awk '$1 == 200 {print $2}' "$E2E_ROOT/flood1.txt" >"$E2E_ROOT/ids1.txt"
assert_eq "$(sort -u "$E2E_ROOT/ids1.txt" | wc -l)" 400 "each answer has its own request id"
assert_eq "$(events_with_ids "$E2E_ROOT/ids1.txt")" "400 0 0" \
    "each answered read has exactly one event in the log"
check "the server is still up" kill -0 "$SERVER_PID"

log "SIGKILL during a flood: every answered read is in the log"
flood_cfg 20000 "$E2E_ROOT/flood2.cfg"
flood "$E2E_ROOT/flood2.cfg" "$E2E_ROOT/flood2.txt" &
FLOOD=$!
bg_track "$FLOOD"
wait_answers "$E2E_ROOT/flood2.txt" 200 || log "the flood was slow to start"
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
wait "$FLOOD" 2>/dev/null
SERVER_PID=""
awk '$1 == 200 {print $2}' "$E2E_ROOT/flood2.txt" >"$E2E_ROOT/ids2.txt"
answered=$(wc -l <"$E2E_ROOT/ids2.txt")
check "some reads were answered before the kill ($answered)" test "$answered" -gt 0
check "the kill cut the flood short ($answered of 20000)" test "$answered" -lt 20000
read -r found missing dup <<<"$(events_with_ids "$E2E_ROOT/ids2.txt")"
assert_eq "$missing" 0 "no answered read is missing from the log ($found found)"
assert_eq "$dup" 0 "no read was recorded twice"

log "SIGTERM during a flood: a clean stop"
server_start "$DATA" --threads 2 || { fail "server restarts after SIGKILL"; e2e_finish; }
ok "server restarts after SIGKILL"
flood_cfg 20000 "$E2E_ROOT/flood3.cfg"
flood "$E2E_ROOT/flood3.cfg" "$E2E_ROOT/flood3.txt" &
FLOOD=$!
bg_track "$FLOOD"
wait_answers "$E2E_ROOT/flood3.txt" 200 || log "the flood was slow to start"
run_cmd server_stop TERM
assert_eq "$LAST_RC" 0 "the server stops cleanly with reads in flight"
wait "$FLOOD" 2>/dev/null
assert_not_contains "$(cat "$SERVER_LOG")" "suspended" "no complaint about held connections"
# Each read either completes (curl exits 0) or, after the stop, is refused
# at connect (7) or in the TLS handshake (35). Anything else is a read sent
# and not answered whole: an empty reply (52), a reset (56), or an answer
# cut off (18, which the stop without draining left).
outcomes=$(awk '{print $1 "/" $NF}' "$E2E_ROOT/flood3.txt" | sort | uniq -c | tr -s ' \n' ' ')
log "status/curl exit code: $outcomes"
unanswered=$(awk '$NF != 0 && $NF != 7 && $NF != 35' "$E2E_ROOT/flood3.txt" | wc -l)
answered=$(grep -c '^200 ' "$E2E_ROOT/flood3.txt")
check "the stop came during the flood ($answered of 20000 answered)" test "$answered" -lt 20000
assert_eq "$unanswered" 0 "every read the server had started was answered before it stopped"
awk '$1 == 200 {print $2}' "$E2E_ROOT/flood3.txt" >"$E2E_ROOT/ids3.txt"
read -r found missing dup <<<"$(events_with_ids "$E2E_ROOT/ids3.txt")"
assert_eq "$missing" 0 "every read answered before the stop is in the log ($found found)"

expect_ok coffer audit verify --data "$DATA"
e2e_finish
