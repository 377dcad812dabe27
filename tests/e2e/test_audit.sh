#!/usr/bin/env bash
# End-to-end test of the audit log as users see it: events recorded by real
# CLI use, `coffer audit tail/export/head/proof/verify/verify-proof`, syslog
# forwarding, the tamper matrix on copies of a stopped server's data
# directory (each tampering detected with exit 7 and its position named),
# trusted heads, and failing closed when the audit directory is full.
. "$(dirname "$0")/lib.sh"
e2e_init audit

ADMIN_PW='Adm1n-Audit-Password-long!'
BOB_PW='Bob-Audit-Password-42'
DATA="$E2E_ROOT/data"
FILES=$(e2e_tmpdir files)
HAVE_PY=0
command -v python3 >/dev/null 2>&1 && HAVE_PY=1

# --------------------------------------------------------------------------
# Helpers

# audit_server_start DATA [OPTION...]: like server_start, with extra server
# options; SERVER_WRAP (array) may hold a command that execs the server.
SERVER_WRAP=()
audit_server_start() {
    local data="$1"
    shift
    local n
    n=$(find "$E2E_ROOT" -maxdepth 1 -name 'server-*.log' | wc -l)
    SERVER_DATA="$data"
    SERVER_LOG="$E2E_ROOT/server-$n.log"
    local port_file="$E2E_ROOT/server-$n.port"
    rm -f "$port_file"
    "${SERVER_WRAP[@]}" "$COFFER_BIN" server --data "$data" --listen 127.0.0.1:0 \
        --port-file "$port_file" "$@" >"$SERVER_LOG" 2>&1 </dev/null &
    SERVER_PID=$!
    E2E_SERVER_PIDS+=("$SERVER_PID")
    SERVER_PORT=""
    local i
    for i in $(seq 1 600); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "server exited during start-up; log:"
            sed -e 's/^/#   /' "$SERVER_LOG" >&2
            return 1
        fi
        if [ -z "$SERVER_PORT" ] && [ -s "$port_file" ]; then
            SERVER_PORT=$(tr -dc '0-9' <"$port_file")
        fi
        if [ -n "$SERVER_PORT" ]; then
            SERVER_URL="https://127.0.0.1:$SERVER_PORT"
            if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
                --cacert "$data/tls/ca.pem" "$SERVER_URL/v1/health")" = 200 ]; then
                return 0
            fi
        fi
        sleep 0.1
    done
    log "server did not become ready within 60 s"
    return 1
}

# wait_for FILE PATTERN SECONDS: waits until FILE has a line matching PATTERN (ERE).
wait_for() {
    local i
    for i in $(seq 1 $(($3 * 10))); do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Records and heads of a log directory, edited with a small Python helper.
cat >"$E2E_ROOT/tamper.py" <<'EOF'
import hashlib, json, os, struct, subprocess, sys

def records(path):
    data = open(path, "rb").read()
    out, off = [], 0
    while off + 4 <= len(data):
        n = struct.unpack(">I", data[off:off + 4])[0]
        if n == 0:  # zero bytes allocated ahead: the end of the records
            break
        out.append((off, data[off + 4:off + 4 + n]))
        off += 4 + n
    return data, out

def write_records(path, recs):
    with open(path, "wb") as f:
        for r in recs:
            f.write(struct.pack(">I", len(r)) + r)

def mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()

cmd, d = sys.argv[1], sys.argv[2]
if cmd == "event-of-proof":    # the exact event bytes carried by a proof
    sys.stdout.write(json.load(open(d))["event"])
    sys.exit(0)
ev, hd = os.path.join(d, "events.log"), os.path.join(d, "heads.log")
data, recs = records(ev)
bodies = [r for _, r in recs]
if cmd == "count":
    print(len(recs))
elif cmd == "flip":            # flip one byte in the middle of event k
    k = int(sys.argv[3]); off, body = recs[k]
    pos = off + 4 + len(body) // 2
    b = bytearray(data); b[pos] = ord("X") if b[pos] != ord("X") else ord("Y")
    open(ev, "wb").write(bytes(b))
elif cmd == "delete":
    k = int(sys.argv[3]); del bodies[k]; write_records(ev, bodies)
elif cmd == "swap":            # swap events k and k+1
    k = int(sys.argv[3]); bodies[k], bodies[k + 1] = bodies[k + 1], bodies[k]
    write_records(ev, bodies)
elif cmd == "cut-inside":      # truncate the file inside event k
    k = int(sys.argv[3]); off, body = recs[k]
    with open(ev, "r+b") as f:
        f.truncate(off + 4 + len(body) // 2)
elif cmd == "cut-tail":        # remove events >= n and every head above n
    n = int(sys.argv[3])
    write_records(ev, bodies[:n])
    lines = [l for l in open(hd).read().splitlines() if json.loads(l)["tree_size"] <= n]
    open(hd, "w").write("".join(l + "\n" for l in lines))
elif cmd == "heads":           # tree sizes of the heads, one a line
    for l in open(hd).read().splitlines():
        print(json.loads(l)["tree_size"])
elif cmd == "resign":          # change one hex digit of head h's signature
    h = int(sys.argv[3]); lines = open(hd).read().splitlines()
    o = json.loads(lines[h]); s = o["signature"]
    o["signature"] = ("0" if s[0] != "0" else "1") + s[1:]
    lines[h] = json.dumps(o, separators=(",", ":"))
    open(hd, "w").write("".join(l + "\n" for l in lines))
elif cmd == "forge":           # append an event and a head signed by another key
    key = sys.argv[3]
    forged = json.loads(bodies[-1]); forged["reason"] = "forged"
    bodies.append(json.dumps(forged, separators=(",", ":")).encode())
    write_records(ev, bodies)
    leaves = [hashlib.sha256(b"\x00" + b).digest() for b in bodies]
    root = mth(leaves)
    last = json.loads(open(hd).read().splitlines()[-1])
    ts = last["timestamp"] + 1
    msg = b"coffer-sth-v1" + struct.pack(">QQ", len(bodies), ts) + root
    open(d + "/msg.bin", "wb").write(msg)
    sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", key,
                          "-in", d + "/msg.bin"], check=True, capture_output=True).stdout
    os.unlink(d + "/msg.bin")
    head = {"tree_size": len(bodies), "timestamp": ts, "root": root.hex(), "signature": sig.hex()}
    with open(hd, "a") as f:
        f.write(json.dumps(head, separators=(",", ":")) + "\n")
    print(len(bodies) - 1)
EOF
tamper() { python3 "$E2E_ROOT/tamper.py" "$@"; }

# fresh_copy NAME: a copy of the stopped server's audit directory.
fresh_copy() {
    local c="$E2E_ROOT/copies/$1"
    rm -rf "$c"
    mkdir -p "$E2E_ROOT/copies"
    cp -a "$DATA" "$c"
    printf '%s\n' "$c"
}

# expect_tampered DESC COPY LO HI [VERIFY-OPTIONS...]: verify exits 7 and
# names a first bad event in LO..HI whose reported range reaches HI (the
# changed event); with LO=head:N, it names the bad head N.
expect_tampered() {
    local desc="$1" copy="$2" lo="$3" hi="$4"
    shift 4
    run_cmd coffer audit verify --data "$copy" "$@"
    if [ "$LAST_RC" -ne 7 ]; then
        fail "$desc: exit 7 (got $LAST_RC)"
        show_last
        return
    fi
    ok "$desc: exit 7"
    local out first last
    out=$(cat "$LAST_OUT" "$LAST_ERR")
    case "$lo" in
    head:*)
        assert_contains "$out" "bad head: ${lo#head:} " "$desc: names head ${lo#head:}"
        ;;
    *)
        first=$(sed -nE 's/^first bad event: ([0-9]+) .*/\1/p' "$LAST_OUT" | head -n 1)
        last=$(sed -nE 's/^first bad event: .*events [0-9]+\.\.([0-9]+)\).*/\1/p' "$LAST_OUT" | head -n 1)
        if [ -n "$first" ] && [ -n "$last" ] && [ "$first" -ge "$lo" ] && [ "$first" -le "$hi" ] &&
            [ "$last" -ge "$hi" ]; then
            ok "$desc: names first bad event $first, range $first..$last holds event $hi"
        else
            fail "$desc: names the first bad event in $lo..$hi (output: $(head -c 300 "$LAST_OUT"))"
        fi
        ;;
    esac
}

# --------------------------------------------------------------------------
log "server with syslog forwarding, events from real CLI use"
run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"

SYSLOG_OUT="$E2E_ROOT/syslog.out"
SYSLOG_PORT=""
if [ "$HAVE_PY" = 1 ]; then
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(sys.argv[1] + ".port", "w").write(str(s.getsockname()[1]))
s.settimeout(600)
with open(sys.argv[1], "ab", buffering=0) as f:
    while True:
        data, _ = s.recvfrom(65535)
        f.write(data.replace(b"\n", b" ") + b"\n")
' "$SYSLOG_OUT" &
    bg_track $!
    disown $!
    wait_for "$SYSLOG_OUT.port" '[0-9]' 10 && SYSLOG_PORT=$(cat "$SYSLOG_OUT.port")
fi
expect_exit 2 coffer server --data "$DATA" --syslog "ftp://nowhere"
SYSLOG_OPT=()
[ -n "$SYSLOG_PORT" ] && SYSLOG_OPT=(--syslog "udp://127.0.0.1:$SYSLOG_PORT")
if ! audit_server_start "$DATA" "${SYSLOG_OPT[@]}"; then
    fail "server starts"
    e2e_finish
fi
ok "server starts"

expect_ok login_cli admin "$ADMIN_PW"
random_file "$FILES/m1" 4096
random_file "$FILES/m2" 8192
expect_ok coffer push "$FILES/m1" fraud/dev/model
expect_ok coffer push "$FILES/m2" fraud/dev/model
expect_ok coffer push "$FILES/m1" other/dev/data
expect_ok coffer pull fraud/dev/model@1 -o "$FILES/out1"
expect_ok coffer ls
expect_ok coffer user add bob --password-stdin <<<"$BOB_PW"

# A non-admin: his reads of the audit log are denied (and recorded).
use_config bob
expect_ok login_cli bob "$BOB_PW"
expect_exit 4 coffer audit tail
expect_exit 4 coffer audit verify
expect_exit 4 coffer audit export
use_config default

# --------------------------------------------------------------------------
log "tail and export"
expect_ok coffer audit tail -n 50
tail_out=$(cat "$LAST_OUT")
assert_contains "$tail_out" "artifact:Write" "tail shows uploads"
assert_contains "$tail_out" "fraud/dev/model@2" "tail shows the version written"
assert_contains "$tail_out" "user:bob" "tail shows bob's requests"
expect_ok coffer audit tail -n 3 --json
assert_eq "$(wc -l <"$LAST_OUT")" 3 "tail -n 3 prints three events"
assert_eq "$(grep -c '^{"index":[0-9]*,"event":{"v":1,' "$LAST_OUT")" 3 "tail --json prints JSON lines"

expect_ok coffer audit export
export_all="$E2E_ROOT/export-all.jsonl"
cp "$LAST_OUT" "$export_all"
n_all=$(wc -l <"$export_all")
check "export prints every event from index 0" test "$n_all" -ge 15
idx=$(sed -nE 's/^\{"index":([0-9]+),.*/\1/p' "$export_all" | tr '\n' ' ')
assert_eq "$idx" "$(seq 0 $((n_all - 1)) | tr '\n' ' ')" "export indexes are 0..N-1 in order"

expect_ok coffer audit export --decision deny
deny_n=$(wc -l <"$LAST_OUT")
check "export --decision deny finds bob's denied reads" test "$deny_n" -ge 3
assert_eq "$(grep -c '"decision":"deny"' "$LAST_OUT")" "$deny_n" "every exported event is a denial"
expect_ok coffer audit export --principal bob
assert_eq "$(grep -vc '"principal":"user:bob"' "$LAST_OUT")" 0 "--principal bob: only bob's events"
check "--principal bob: some events" test -s "$LAST_OUT"
expect_ok coffer audit export --prefix fraud/dev/
n_prefix=$(wc -l <"$LAST_OUT")
check "--prefix: some events" test "$n_prefix" -ge 3
assert_eq "$(grep -vc '"resource":"fraud/dev/' "$LAST_OUT")" 0 "--prefix: only fraud/dev/ resources"
expect_ok coffer audit export --action artifact:Write --prefix other/
check "--action with --prefix: the other/dev upload" grep -q '"resource":"other/dev/data@1"' "$LAST_OUT"
assert_eq "$(grep -vc '"action":"artifact:Write"' "$LAST_OUT")" 0 "--action: only artifact:Write"
expect_ok coffer audit export --since 1h --until 2999-01-01T00:00:00Z
check "--since 1h --until 2999: everything so far" test "$(wc -l <"$LAST_OUT")" -ge "$n_all"
expect_ok coffer audit export --until 2000-01-01
assert_eq "$(wc -c <"$LAST_OUT")" 0 "--until 2000-01-01: nothing"
expect_ok coffer audit export --since 2999-01-01T00:00:00+02:00
assert_eq "$(wc -c <"$LAST_OUT")" 0 "--since in the future: nothing"
expect_exit 2 coffer audit export --since yesterday-ish
expect_exit 2 coffer audit export --decision maybe
assert_eq "$(api GET '/v1/audit/events?limit=100000' -H "Authorization: Bearer $(json_field token "$XDG_CONFIG_HOME/coffer/credentials.json")")" \
    400 "the API caps limit"

# --------------------------------------------------------------------------
log "heads and proofs"
expect_ok coffer audit head -o "$E2E_ROOT/trusted1.json"
T1=$(json_field tree_size "$E2E_ROOT/trusted1.json")
check "the exported head has a signature" grep -q '"signature":"[0-9a-f]\{128\}"' "$E2E_ROOT/trusted1.json"
expect_ok coffer audit proof 3 -o "$E2E_ROOT/proof3.json"
check "the proof is an inclusion proof" grep -q '"format": "coffer-inclusion-v1"' "$E2E_ROOT/proof3.json"
expect_ok coffer audit verify-proof "$E2E_ROOT/proof3.json" --public-key "$DATA/audit/signing.pub"
assert_contains "$(cat "$LAST_OUT")" "proof OK: event 3" "verify-proof checks the proof offline"
assert_contains "$(cat "$LAST_OUT")" "matches its leaf hash" "verify-proof checks the event carried"
if [ "$HAVE_PY" = 1 ]; then
    tamper event-of-proof "$E2E_ROOT/proof3.json" >"$E2E_ROOT/event3.json"
    expect_ok coffer audit verify-proof "$E2E_ROOT/proof3.json" --public-key "$DATA/audit/signing.pub" \
        --event "$E2E_ROOT/event3.json"
    sed -i 's/"v":1/"v":2/' "$E2E_ROOT/event3.json"
    expect_exit 7 coffer audit verify-proof "$E2E_ROOT/proof3.json" --public-key \
        "$DATA/audit/signing.pub" --event "$E2E_ROOT/event3.json"
fi
# Change the first hex digit of the leaf hash to another one (0 -> 1, else -> 0).
sed -E 's/("leaf_hash": ")0/\1X/; s/("leaf_hash": ")[1-9a-f]/\10/; s/("leaf_hash": ")X/\11/' \
    "$E2E_ROOT/proof3.json" >"$E2E_ROOT/proof3-bad.json"
check "the altered proof differs" test "$(md5sum <"$E2E_ROOT/proof3.json")" != "$(md5sum <"$E2E_ROOT/proof3-bad.json")"
expect_exit 7 coffer audit verify-proof "$E2E_ROOT/proof3-bad.json" --public-key "$DATA/audit/signing.pub"
openssl genpkey -algorithm ed25519 -out "$E2E_ROOT/other.key" 2>/dev/null
openssl pkey -in "$E2E_ROOT/other.key" -pubout -out "$E2E_ROOT/other.pub" 2>/dev/null
expect_exit 7 coffer audit verify-proof "$E2E_ROOT/proof3.json" --public-key "$E2E_ROOT/other.pub"
assert_contains "$(cat "$LAST_OUT")" "different key" "verify-proof names the wrong key"
expect_exit 5 coffer audit proof 999999
expect_exit 2 coffer audit proof notanumber

# --------------------------------------------------------------------------
log "tail -f"
TAILF="$E2E_ROOT/tailf.out"
coffer audit tail -f -n 0 --interval 1 --json >"$TAILF" 2>"$E2E_ROOT/tailf.err" &
TAIL_PID=$!
bg_track "$TAIL_PID"
sleep 1.5
expect_ok coffer show other/dev/data@1
if wait_for "$TAILF" '"action":"artifact:Read","resource":"other/dev/data@1"' 15; then
    ok "tail -f prints a new event"
else
    fail "tail -f prints a new event ($(head -c 300 "$TAILF"; head -c 300 "$E2E_ROOT/tailf.err"))"
fi
sleep 2.5
kill "$TAIL_PID" 2>/dev/null
wait "$TAIL_PID" 2>/dev/null
assert_eq "$(grep -c '"action":"audit:Read"' "$TAILF")" 0 "tail -f does not echo its own polling"

# --------------------------------------------------------------------------
log "online verification"
expect_ok coffer audit verify
assert_contains "$(cat "$LAST_OUT")" "audit log OK" "online verify reports OK"
expect_ok coffer audit verify --trusted-head "$E2E_ROOT/trusted1.json"
assert_contains "$(cat "$LAST_OUT")" "trusted head matched" "online verify checks the trusted head"
assert_contains "$(cat "$LAST_OUT")" "extends the trusted head" "the CLI checks a consistency proof itself"
expect_ok coffer audit verify --json
check "verify --json has ok:true" grep -q '"ok":true' "$LAST_OUT"

# --------------------------------------------------------------------------
log "syslog forwarding"
if [ -n "$SYSLOG_PORT" ]; then
    re='^<11[01]>1 [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z [!-~]+ coffer [0-9]+ artifact:Write \[coffer@32473 index="[0-9]+" decision="allow"\] \{"v":1,'
    if wait_for "$SYSLOG_OUT" "$re" 10; then
        ok "an RFC 5424 message reaches the UDP collector"
    else
        fail "an RFC 5424 message reaches the UDP collector ($(head -c 400 "$SYSLOG_OUT"))"
    fi
    check "denials are forwarded with severity notice" \
        grep -qE '^<109>1 .* audit:Read \[coffer@32473 index="[0-9]+" decision="deny"\] .*"principal":"user:bob"' "$SYSLOG_OUT"
    first_idx=$(sed -nE 's/.*index="([0-9]+)".*/\1/p' "$SYSLOG_OUT" | head -n 1)
    first_line=$(grep -m1 "index=\"$first_idx\"" "$SYSLOG_OUT" | sed -E 's/^[^{]*//')
    event_line=$(grep -m1 "^{\"index\":$first_idx," "$export_all" | sed -E 's/^\{"index":[0-9]+,"event"://; s/\}$//')
    assert_eq "$first_line" "$event_line" "the forwarded message carries the event as recorded"
    check "reads answered from held connections are forwarded too" \
        grep -qE ' artifact:Read \[coffer@32473 index="[0-9]+" decision="allow"\]' "$SYSLOG_OUT"
    idx_list=$(sed -nE 's/.*index="([0-9]+)".*/\1/p' "$SYSLOG_OUT")
    if [ "$idx_list" = "$(printf '%s\n' "$idx_list" | sort -n -u)" ]; then
        ok "events are forwarded once each, in log order (once durable)"
    else
        fail "events are forwarded once each, in log order: $(printf '%s\n' "$idx_list" | tr '\n' ' ' | head -c 300)"
    fi
else
    log "python3 not available: syslog collector not tested"
fi

# --------------------------------------------------------------------------
log "stop the server; offline verification"
expect_ok coffer audit head -o "$E2E_ROOT/trusted2.json"
T2=$(json_field tree_size "$E2E_ROOT/trusted2.json")
# Events after the second trusted head, so that a cut tail can lie between.
expect_ok coffer ls
expect_ok coffer versions fraud/dev/model
run_cmd server_stop
assert_eq "$LAST_RC" 0 "the server stops cleanly"

expect_ok coffer audit verify --data "$DATA"
assert_contains "$(cat "$LAST_OUT")" "audit log OK" "the untouched log verifies"
expect_ok coffer audit verify --data "$DATA" --trusted-head "$E2E_ROOT/trusted1.json"
expect_ok coffer audit verify --data "$DATA/audit" --trusted-head "$E2E_ROOT/trusted2.json"
assert_contains "$(cat "$LAST_OUT")" "trusted head matched" "offline verify checks the trusted head"

# --------------------------------------------------------------------------
log "tamper matrix"
if [ "$HAVE_PY" = 1 ]; then
    N=$(tamper count "$DATA/audit")
    mapfile -t HEADS < <(tamper heads "$DATA/audit")
    log "log of $N events, heads at: ${HEADS[*]}"
    K=5

    c=$(fresh_copy untouched)
    expect_ok coffer audit verify --data "$c"

    c=$(fresh_copy flip)
    tamper flip "$c/audit" $K
    expect_tampered "a byte flipped inside event $K" "$c" 0 $K

    c=$(fresh_copy delete)
    tamper delete "$c/audit" $K
    expect_tampered "event $K deleted" "$c" 0 $K

    c=$(fresh_copy swap)
    tamper swap "$c/audit" $K
    expect_tampered "events $K and $((K + 1)) swapped" "$c" 0 $K

    c=$(fresh_copy cut)
    tamper cut-inside "$c/audit" $((N - 3))
    expect_tampered "events.log truncated inside event $((N - 3))" "$c" $((N - 3)) $((N - 3))

    c=$(fresh_copy tail)
    tamper cut-tail "$c/audit" "$T1"
    expect_ok coffer audit verify --data "$c"
    ok "a tail cut with its heads is not visible without a trusted head (documented)"
    # ...the older trusted head still matches, the newer one catches it.
    expect_ok coffer audit verify --data "$c" --trusted-head "$E2E_ROOT/trusted1.json"
    expect_exit 7 coffer audit verify --data "$c" --trusted-head "$E2E_ROOT/trusted2.json"
    assert_contains "$(cat "$LAST_OUT")" "trusted head" "the report names the trusted head"
    check "the report names where the log ends" grep -qE "first bad event: $T1 |events $T1\.\." "$LAST_OUT"

    c=$(fresh_copy sig)
    tamper resign "$c/audit" 1
    expect_tampered "the signature of head 1 replaced" "$c" head:1 ""

    c=$(fresh_copy forge)
    forged=$(tamper forge "$c/audit" "$E2E_ROOT/other.key")
    nh=$(wc -l <"$c/audit/heads.log")
    expect_tampered "event $forged appended with a head signed by another key" "$c" "$forged" "$forged"
    assert_contains "$(cat "$LAST_OUT")" "bad head: $((nh - 1)) " "the forged head is named"

    c=$(fresh_copy json)
    tamper flip "$c/audit" $K
    expect_exit 7 coffer audit verify --data "$c" --json
    check "verify --json reports ok:false" grep -q '"ok":false' "$LAST_OUT"
else
    log "python3 not available: tamper matrix skipped"
fi
expect_exit 5 coffer audit verify --data "$E2E_ROOT/nonexistent"

# --------------------------------------------------------------------------
log "fail closed: the audit directory on a full file system"
FC="$E2E_ROOT/failclosed"
cp -a "$DATA" "$FC"
cat >"$E2E_ROOT/tmpfs-wrap.sh" <<'EOF'
# Runs the server with DATA/audit on a small tmpfs of its own (private
# mount namespace), holding a copy of the audit files.
set -e
data="$1"
shift
save="$data.audit-save"
cp -a "$data/audit" "$save"
mount -t tmpfs -o size=1m,mode=0700 tmpfs "$data/audit"
cp -a "$save/." "$data/audit/"
exec "$@"
EOF
if unshare -m true 2>/dev/null && unshare -m sh -c "mount -t tmpfs -o size=64k tmpfs '$E2E_ROOT'" 2>/dev/null; then
    versions_before=$(sqlite3 "$FC/coffer.db" 'select count(*) from versions' 2>/dev/null || echo "?")
    blobs_before=$(blob_files "$FC" | wc -l)
    SERVER_WRAP=(unshare -m bash "$E2E_ROOT/tmpfs-wrap.sh" "$FC")
    if audit_server_start "$FC"; then
        ok "server runs with its audit log on a small tmpfs"
        SERVER_WRAP=()
        FILL="/proc/$SERVER_PID/root$FC/audit/fill"
        dd if=/dev/zero of="$FILL" bs=4096 >/dev/null 2>&1
        check "the audit file system is full" test -s "$FILL"
        TOKEN=$(api_token admin "$ADMIN_PW")
        # The last page of events.log may still take an event or two.
        status=""
        for i in $(seq 1 40); do
            status=$(api GET /v1/auth/whoami -H "Authorization: Bearer $TOKEN")
            [ "$status" = 503 ] && break
        done
        assert_eq "$status" 503 "a request whose event cannot be written fails with 503"
        status=$(api PUT "/v1/objects/fraud/dev/model" -H "Authorization: Bearer $TOKEN" \
            -H 'Content-Type: application/octet-stream' --data-binary @"$FILES/m1")
        assert_eq "$status" 503 "a push is refused with 503"
        assert_contains "$(api_body)" "audit" "the error names the audit log"
        rm -f "$FILL"
        status=$(api GET /v1/auth/whoami -H "Authorization: Bearer $TOKEN")
        assert_eq "$status" 503 "the log stays failed closed after space comes back"
        run_cmd server_stop
        versions_after=$(sqlite3 "$FC/coffer.db" 'select count(*) from versions' 2>/dev/null || echo "?")
        assert_eq "$versions_after" "$versions_before" "no version was added"
        assert_eq "$(blob_files "$FC" | wc -l)" "$blobs_before" "no blob was stored"
        # The log on disk (the state before the tmpfs) still verifies and serves.
        if audit_server_start "$FC"; then
            TOKEN=$(api_token admin "$ADMIN_PW")
            expect_ok env COFFER_TOKEN="$TOKEN" "$COFFER_BIN" versions fraud/dev/model \
                --server "$SERVER_URL" --ca "$FC/tls/ca.pem"
            assert_eq "$(grep -c 'sha256:' "$LAST_OUT")" 2 "the artifact still has exactly two versions"
            server_stop
        else
            fail "server restarts on the data directory"
        fi
    else
        SERVER_WRAP=()
        fail "server runs with its audit log on a small tmpfs"
    fi
else
    log "mount namespaces are not available: fail-closed test skipped"
fi

e2e_finish
