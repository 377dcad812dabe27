#!/usr/bin/env bash
# Load benchmark (docs/PERFORMANCE.md, "Load"), with wrk over HTTPS keep-alive
# on loopback:
#   1. authorized metadata reads per second (GET /v1/artifacts/PATH with a
#      bearer token) against nginx serving a small static file, in the same
#      run, same client settings (target: Coffer >= 0.5x nginx);
#   2. 500 concurrent connections of mixed reads, downloads and uploads for
#      DURATION seconds (default 60): zero errors, and the server's RSS is
#      sampled every second to show it stays bounded.
# Environment: COFFER_BIN (default build/coffer), DURATION (60), ROUNDS (5
# pairs of read runs, order alternating; the median ratio is the result),
# RPS_SECONDS (10 per run), RPS_CONNS (64), THREADS (2 wrk threads).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BIN="${COFFER_BIN:-$ROOT/build/coffer}"
DURATION="${DURATION:-60}"
RPS_SECONDS="${RPS_SECONDS:-10}"
ROUNDS="${ROUNDS:-5}"
RPS_CONNS="${RPS_CONNS:-64}"
THREADS="${THREADS:-2}"
die() { echo "load.sh: $*" >&2; exit 1; }
note() { echo "# $*"; }
[ -x "$BIN" ] || die "build first (make build) or set COFFER_BIN"
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx is missing (apt-get install nginx-light)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/coffer-load.XXXXXX")
chmod 700 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

DATA="$WORK/data"
PW='Load-Bench-Admin-Password-1'
printf '%s\n' "$PW" | "$BIN" init --data "$DATA" --admin admin --admin-password-stdin >/dev/null
"$BIN" server --data "$DATA" --listen 127.0.0.1:0 --port-file "$WORK/port" --max-per-ip 1024 \
    >"$WORK/server.log" 2>&1 &
SPID=$!
PIDS+=("$SPID")
for i in $(seq 1 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/port")
URL="https://127.0.0.1:$PORT"
CA="$DATA/tls/ca.pem"
TOKEN=$(curl -s --cacert "$CA" -H 'Content-Type: application/json' \
    --data-binary "{\"user\":\"admin\",\"password\":\"$PW\"}" "$URL/v1/auth/login" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
head -c 1024 /dev/urandom >"$WORK/small.bin"
curl -s --fail -o /dev/null --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/small.bin" \
    -X PUT "$URL/v1/objects/bench/dev/small?kind=other" || die "cannot push the test artifact"
curl -s --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$URL/v1/artifacts/bench/dev/small" \
    >"$WORK/meta.json"
META_BYTES=$(wc -c <"$WORK/meta.json")

# nginx: one static file of the same size as Coffer's metadata answer, same
# certificate, keep-alive, as many workers as Coffer has threads (4).
NPREFIX="$WORK/nginx"
mkdir -p "$NPREFIX/root"
cp "$WORK/meta.json" "$NPREFIX/root/small.json"
cp "$DATA/tls/server.pem" "$DATA/tls/server.key" "$NPREFIX/"
# Started as root, nginx's workers run as nobody: they must be able to reach
# and read the file (the work directory is otherwise private; Coffer's data
# directory inside it keeps its own 0700).
chmod 711 "$WORK" "$NPREFIX"
chmod 755 "$NPREFIX/root"
chmod 644 "$NPREFIX/root/small.json"
NPORT=$(free_port)
cat >"$NPREFIX/nginx.conf" <<NGX
worker_processes 4;
pid $NPREFIX/nginx.pid;
error_log $NPREFIX/error.log warn;
daemon off;
events { worker_connections 2048; }
http {
    client_body_temp_path $NPREFIX/cb; proxy_temp_path $NPREFIX/px;
    fastcgi_temp_path $NPREFIX/fc; uwsgi_temp_path $NPREFIX/uw; scgi_temp_path $NPREFIX/sc;
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NPORT ssl;
        ssl_certificate $NPREFIX/server.pem;
        ssl_certificate_key $NPREFIX/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $NPREFIX/root;
        location / { default_type application/json; }
    }
}
NGX
"$NGINX" -p "$NPREFIX" -c "$NPREFIX/nginx.conf" -e "$NPREFIX/error.log" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
for i in $(seq 1 50); do
    curl -s -k -o /dev/null "https://127.0.0.1:$NPORT/small.json" && break
    sleep 0.1
done
# Both peers must answer 200 with the same body, or the ratio means nothing.
curl -s -k --fail -o "$WORK/nginx.json" -H "Authorization: Bearer $TOKEN" \
    "https://127.0.0.1:$NPORT/small.json" || die "nginx does not serve the test file"
cmp -s "$WORK/nginx.json" "$WORK/meta.json" || die "nginx serves another body than Coffer's"

note "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
note "$(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), $("$NGINX" -v 2>&1 | sed 's/.*version: //'), coffer $("$BIN" version | cut -d' ' -f2)"
note "metadata answer: $META_BYTES bytes; nginx serves a static copy of it"

export COFFER_TOKEN="$TOKEN" LOAD_PATH=bench/dev/small
rps() { grep -E '^Requests/sec' "$1" | awk '{print $2}'; }
# ROUNDS pairs, the order alternating, each pair's ratio printed; the
# median ratio is the result (one pair moves with the machine's load).
# Each run also prints the server's CPU time per request (user + system
# from /proc: Coffer's process, nginx's master and workers), and each round
# runs Coffer's GET /v1/health too (no credential, no audit record): what
# the HTTP and TLS layer alone costs.
# The client is the same for both peers: plain wrk, one request built once,
# with the same Authorization header (nginx ignores it). A wrk Lua script
# with request()/response() functions costs the client about 4 us more per
# request, which on a 2-CPU machine comes out of the server's share; the
# script is used only for the mixed run below, where requests differ. Any
# non-2xx answer or socket error in a read run makes its ratio invalid.
TICK=$(getconf CLK_TCK)
cpu_ticks() {
    local t=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$t"
}
# measured NAME URL PID... [-- WRK-ARGS]: one wrk run; "REQ/S CPU-US".
measured() {
    local name="$1" url="$2" t0 t1 n
    shift 2
    local pids=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do pids+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    t0=$(cpu_ticks "${pids[@]}")
    wrk -t"$THREADS" -c"$RPS_CONNS" -d"${RPS_SECONDS}s" --latency "$@" "$url" >"$WORK/$name.txt" 2>&1
    t1=$(cpu_ticks "${pids[@]}")
    n=$(awk '/requests in/ {print $1}' "$WORK/$name.txt")
    echo "$(rps "$WORK/$name.txt") $(python3 -c "print('%.0f' % (($t1 - $t0) * 1e6 / $TICK / max(1, $n)))")"
}
AUTH="Authorization: Bearer $TOKEN"
c_run() { read -r C CU < <(measured coffer-rps "$URL/v1/artifacts/$LOAD_PATH" "$SPID" -- -H "$AUTH"); }
n_run() {
    # shellcheck disable=SC2046
    read -r N NU < <(measured nginx-rps "https://127.0.0.1:$NPORT/small.json" "$NGINX_PID" \
        $(pgrep -P "$NGINX_PID") -- -H "$AUTH")
}
# clean NAME: fails the run if wrk saw a non-2xx answer or a socket error.
clean() {
    if grep -qE 'Non-2xx|Socket errors' "$WORK/$1.txt"; then
        cat "$WORK/$1.txt" >&2
        die "$1: errors during a read run (above); its ratio would be meaningless"
    fi
}
h_run() { read -r H HU < <(measured health-rps "$URL/v1/health" "$SPID"); }
RATIOS=()
for i in $(seq 1 "$ROUNDS"); do
    if [ $((i % 2)) -eq 1 ]; then c_run; n_run; h_run; else h_run; n_run; c_run; fi
    clean coffer-rps
    clean nginx-rps
    clean health-rps
    RATIO=$(python3 -c "print('%.2f' % ($C / $N))")
    RATIOS+=("$RATIO")
    echo "round $i: reads/s (server CPU us/request): coffer metadata $C ($CU), nginx static $N ($NU), coffer health $H ($HU); ratio $RATIO"
done
echo "metadata reads, median ratio of $ROUNDS rounds: $(printf '%s\n' "${RATIOS[@]}" | sort -n |
    awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}') (target >= 0.5)"

rss() { awk '/VmRSS/ {print $2}' "/proc/$SPID/status"; }
RSS0=$(rss)
( while kill -0 "$SPID" 2>/dev/null; do rss; sleep 1; done ) >"$WORK/rss.txt" &
SAMPLER=$!
PIDS+=("$SAMPLER")
LOAD_MODE=mixed wrk -t"$THREADS" -c500 -d"${DURATION}s" --timeout 10s --latency \
    -s "$HERE/load/mixed.lua" "$URL" >"$WORK/mixed.txt" 2>&1
kill "$SAMPLER" 2>/dev/null || true
LINE=$(grep -E '^LOAD' "$WORK/mixed.txt" || echo "LOAD missing")
echo "500 connections, ${DURATION}s mixed: $(rps "$WORK/mixed.txt") req/s; $LINE"
grep -E 'Non-2xx|Socket errors' "$WORK/mixed.txt" || echo "no socket errors, no non-2xx answers"
python3 - "$WORK/rss.txt" "$RSS0" <<'PY'
import sys
v = [int(x) for x in open(sys.argv[1]).read().split()]
n = len(v); q = max(1, n // 4)
print("server RSS (MiB): before %.1f, max %.1f, mean of first quarter %.1f, of last quarter %.1f, samples %d"
      % (int(sys.argv[2]) / 1024, max(v) / 1024, sum(v[:q]) / q / 1024, sum(v[-q:]) / q / 1024, n))
PY
kill -0 "$SPID" || die "the server died under load"
echo "server log errors: $(grep -c ' error ' "$WORK/server.log" || true)"
