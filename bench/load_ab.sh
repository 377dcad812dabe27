#!/usr/bin/env bash
# A/B of authorized metadata reads between two coffer binaries (for example
# one built from an older commit): each round starts a fresh server per
# binary, pushes a 1 KiB artifact, logs in, and runs
#   wrk -t2 -c64 -d${SECONDS_PER_RUN}s GET /v1/artifacts/bench/dev/small
# against one then the other (order alternating between rounds). Printed per
# run: requests/s and the server's CPU time per request (user + system, and
# user alone, from /proc/PID/stat), which varies far less than requests/s on
# a machine shared with other work.
# Usage: bench/load_ab.sh OLD_BINARY NEW_BINARY
# Environment: ROUNDS (5), SECONDS_PER_RUN (10), CONNS (64), THREADS (server
# worker threads, default: the server's default).
# INSTR=1 counts instead the server's user-space instructions per read under
# valgrind's callgrind (8 connections, --no-seccomp since valgrind cannot
# run under the filter), leaving out the TLS handshakes. Far slower, but the
# same from run to run: the way to compare changes of a few percent on a
# noisy machine. It does not see the kernel's share, and it overstates two
# things: memset of large areas (rep stosb counts per byte under valgrind)
# and SHA-256 (valgrind hides the CPU's SHA extensions).
# SERVER_ENV="VAR=value ..." is set for both servers (for example
# LD_PRELOAD of another allocator); KEEP=1 keeps the work directory (and
# with INSTR=1 the last run's callgrind profile, run/cg.out).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
[ $# -eq 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
ROUNDS="${ROUNDS:-5}"
SECS="${SECONDS_PER_RUN:-10}"
CONNS="${CONNS:-64}"
command -v wrk >/dev/null || { echo "load_ab.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/coffer-load-ab.XXXXXX")
chmod 700 "$WORK"
SPID=""
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    [ -n "${KEEP:-}" ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT
TICK=$(getconf CLK_TCK)

# instr_run LABEL URL TOKEN DIR: the measured part of an INSTR=1 run, with
# the server started under callgrind; prints "LABEL instructions/request".
instr_run() {
    local label="$1" url="$2" token="$3" d="$4"
    export COFFER_TOKEN="$token" LOAD_PATH=bench/dev/small LOAD_MODE=read
    wrk -t1 -c8 -d2s -s "$HERE/load/mixed.lua" "$url" >/dev/null # warm-up
    callgrind_control -i on "$SPID" >/dev/null 2>&1
    wrk -t1 -c8 -d"${SECS}s" -s "$HERE/load/mixed.lua" "$url" >"$d/wrk.txt"
    callgrind_control -i off "$SPID" >/dev/null 2>&1
    kill "$SPID"
    wait "$SPID" 2>/dev/null || true
    SPID=""
    local req all hs
    req=$(awk '/requests in/ {print $1}' "$d/wrk.txt")
    all=$(callgrind_annotate "$d/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    hs=$(callgrind_annotate --inclusive=yes "$d/cg.out" 2>/dev/null |
        awk '/gnutls_handshake \[/ {gsub(",", "", $1); print $1}' | head -n 1 || true)
    python3 -c "import sys; print('%-4s %6d reads  %8.0f user instructions/read (TLS handshakes left out)' \
% (sys.argv[1], int(sys.argv[2]), (int(sys.argv[3]) - int(sys.argv[4] or 0)) / int(sys.argv[2])))" \
        "$label" "$req" "$all" "${hs:-0}"
}

# run BINARY LABEL: one measured run; prints "LABEL req/s cpu_us user_us".
run() {
    local bin="$1" label="$2" d="$WORK/run" pw='Load-AB-Admin-Password-1'
    rm -rf "$d"
    mkdir -p "$d"
    printf '%s\n' "$pw" | "$bin" init --data "$d/data" --admin admin --admin-password-stdin >/dev/null
    local targs=() pre=()
    [ -n "${SERVER_ENV:-}" ] && pre=(env ${SERVER_ENV})
    [ -n "${THREADS:-}" ] && targs=(--threads "$THREADS")
    if [ -n "${INSTR:-}" ]; then
        pre+=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$d/cg.out")
        targs+=(--no-seccomp)
    fi
    "${pre[@]+"${pre[@]}"}" "$bin" server --data "$d/data" --listen 127.0.0.1:0 \
        --port-file "$d/port" --max-per-ip 1024 "${targs[@]+"${targs[@]}"}" >"$d/server.log" 2>&1 &
    SPID=$!
    for _ in $(seq 1 600); do [ -s "$d/port" ] && break; sleep 0.1; done
    local url="https://127.0.0.1:$(cat "$d/port")" ca="$d/data/tls/ca.pem" token
    token=$(curl -s --cacert "$ca" -H 'Content-Type: application/json' \
        --data-binary "{\"user\":\"admin\",\"password\":\"$pw\"}" "$url/v1/auth/login" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    head -c 1024 /dev/urandom >"$d/small.bin"
    curl -s --fail -o /dev/null --cacert "$ca" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/octet-stream' --data-binary @"$d/small.bin" \
        -X PUT "$url/v1/objects/bench/dev/small?kind=other"
    if [ -n "${INSTR:-}" ]; then
        instr_run "$label" "$url" "$token" "$d"
        return
    fi
    local t0 u0 t1 u1
    read -r u0 t0 < <(awk '{print $14, $14 + $15}' "/proc/$SPID/stat")
    COFFER_TOKEN="$token" LOAD_PATH=bench/dev/small LOAD_MODE=read \
        wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$HERE/load/mixed.lua" "$url" >"$d/wrk.txt"
    read -r u1 t1 < <(awk '{print $14, $14 + $15}' "/proc/$SPID/stat")
    kill "$SPID"
    wait "$SPID" 2>/dev/null || true
    SPID=""
    local req rps
    req=$(awk '/requests in/ {print $1}' "$d/wrk.txt")
    rps=$(awk '/^Requests\/sec/ {print $2}' "$d/wrk.txt")
    python3 -c "import sys; r=int(sys.argv[1]); t=int(sys.argv[6]); \
print('%-4s %9s req/s  server CPU %6.1f us/request (user %6.1f)' % (sys.argv[2], sys.argv[3], \
(int(sys.argv[5]) - int(sys.argv[4])) * 1e6 / t / r, (int(sys.argv[8]) - int(sys.argv[7])) * 1e6 / t / r))" \
        "$req" "$label" "$rps" "$t0" "$t1" "$TICK" "$u0" "$u1"
}

if [ -n "${INSTR:-}" ]; then
    command -v callgrind_control >/dev/null || { echo "load_ab.sh: valgrind is missing" >&2; exit 1; }
    echo "# callgrind; wrk -t1 -c8 -d${SECS}s; A=$1; B=$2"
else
    echo "# $(nproc) CPUs; wrk -t2 -c$CONNS -d${SECS}s; A=$1; B=$2"
fi
for i in $(seq 1 "$ROUNDS"); do
    if [ $((i % 2)) -eq 1 ]; then
        run "$1" A
        run "$2" B
    else
        run "$2" B
        run "$1" A
    fi
done
