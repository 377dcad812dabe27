#!/usr/bin/env bash
# Crash consistency: the server is killed with SIGKILL at random moments
# while clients push, label, tombstone, request promotions and rotate the
# key-encryption key concurrently. After every kill:
#   - `coffer fsck --repair` on the dead server's directory finds every
#     recorded version complete and authenticating (only leftovers of
#     interrupted uploads may need deleting);
#   - the server restarts, and after a clean stop `coffer fsck --deep` finds
#     nothing wrong (metadata and blobs agree, every version decrypts to its
#     SHA-256, the audit log verifies);
#   - every push the client saw succeed is there with its content.
# CRASH_ROUNDS (default 10) sets the number of kills.
. "$(dirname "$0")/lib.sh"
e2e_init crash

ADMIN_PW='Adm1n-Crash-Password-long!'
DATA="$E2E_ROOT/data"
ROUNDS="${CRASH_ROUNDS:-10}"
ACKED="$E2E_ROOT/acked.txt"
: >"$ACKED"

run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
# The session outlives restarts; the port changes with each start.
COFFER_TOKEN=$(api_token admin "$ADMIN_PW")
assert_ne "$COFFER_TOKEN" "" "admin session"
export COFFER_TOKEN COFFER_SERVER="$SERVER_URL" COFFER_CA="$DATA/tls/ca.pem"
for s in 1000 70000 300000 1500000; do
    random_file "$E2E_ROOT/in-$s.bin" "$s"
done

# pusher N ROUND: pushes until killed; records each acknowledged version.
pusher() {
    local n="$1" round="$2" i=0 out size
    while :; do
        i=$((i + 1))
        for size in 1000 70000 300000 1500000; do
            out=$(coffer push "$E2E_ROOT/in-$size.bin" "fraud/dev/p$n" --kind model \
                --tag round="$round" 2>/dev/null) || continue
            # "PATH@N sha256:HEX SIZE bytes"
            printf '%s\n' "$out" | awk '{print $1, $2}' >>"$ACKED"
        done
    done
}
# churner ROUND: labels, tombstones and promotion requests on its own artifact.
churner() {
    local round="$1" i=0
    while :; do
        i=$((i + 1))
        coffer push "$E2E_ROOT/in-1000.bin" fraud/dev/churn --kind model >/dev/null 2>&1
        coffer label fraud/dev/churn --tag "r$round=$i" >/dev/null 2>&1
        coffer rm fraud/dev/churn@latest >/dev/null 2>&1
        coffer promote fraud/dev/p1@1 --to staging >/dev/null 2>&1
    done
}
rotator() {
    while :; do
        coffer keys rotate --no-wait >/dev/null 2>&1
        sleep 0.3
    done
}

fsck_json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }

for round in $(seq 1 "$ROUNDS"); do
    log "round $round: load, then SIGKILL"
    pids=()
    for n in 1 2 3; do
        pusher "$n" "$round" &
        pids+=($!)
    done
    churner "$round" &
    pids+=($!)
    rotator &
    pids+=($!)
    for p in "${pids[@]}"; do bg_track "$p"; done
    # A random moment between 0.5 and 4 s into the load.
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.5, 4.0), 2))')"
    kill -9 "$SERVER_PID"
    run_cmd server_stop KILL
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null
    done

    run_cmd coffer fsck --data "$DATA" --repair --json
    if [ "$LAST_RC" -eq 0 ] || [ "$LAST_RC" -eq 7 ]; then
        v=$(fsck_json_field "$LAST_OUT" versions)
        e=$(fsck_json_field "$LAST_OUT" erased)
        ver=$(fsck_json_field "$LAST_OUT" verified)
        assert_eq "$ver" "$((v - e))" "round $round: right after the kill, all $v recorded versions authenticate"
        bad=$(python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
print(sum(1 for f in r['findings'] if f['severity'] == 'problem' and 'audit log' not in f['text']))" "$LAST_OUT")
        assert_eq "$bad" 0 "round $round: only leftovers of interrupted uploads (and a torn audit tail) to repair"
    else
        fail "round $round: fsck of the killed server's directory (exit $LAST_RC)"
        show_last
    fi

    if ! server_start "$DATA"; then
        fail "round $round: the server restarts after SIGKILL"
        e2e_finish
    fi
    export COFFER_SERVER="$SERVER_URL" # each start picks a new port
    ok "round $round: the server restarts"
done

log "after $ROUNDS kills"
run_cmd server_stop
assert_eq "$LAST_RC" 0 "clean shutdown"
expect_ok coffer fsck --data "$DATA" --deep
assert_contains "$(cat "$LAST_OUT")" "0 problem(s)" "fsck --deep: no problem"
expect_ok coffer audit verify --data "$DATA"
n_acked=$(wc -l <"$ACKED")
check "some pushes were acknowledged ($n_acked)" test "$n_acked" -gt 0

if ! server_start "$DATA"; then
    fail "the server starts for the final reads"
    e2e_finish
fi
export COFFER_SERVER="$SERVER_URL"
missing=0
checked=0
while read -r ref sha; do
    checked=$((checked + 1))
    [ "$checked" -gt 40 ] && break
    if ! coffer pull "$ref" -o "$E2E_ROOT/out.bin" >/dev/null 2>"$E2E_ROOT/pull.err" ||
        [ "sha256:$(sha256sum "$E2E_ROOT/out.bin" | cut -d' ' -f1)" != "$sha" ]; then
        missing=$((missing + 1))
        log "acknowledged $ref ($sha) is missing or differs: $(head -c 300 "$E2E_ROOT/pull.err")"
    fi
done < <(shuf -n 40 "$ACKED")
assert_eq "$missing" 0 "every acknowledged push that was sampled ($checked) is present and intact"
check_not "no sanitizer report in the server logs" grep -qE 'AddressSanitizer|runtime error|LeakSanitizer' "$E2E_ROOT"/server-*.log
e2e_finish
