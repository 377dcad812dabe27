#!/usr/bin/env bash
# PII scan benchmark: upload throughput of a large CSV dataset with the scan
# on and with it off (database setting pii.scan), same server, same file,
# same curl client, in one run, order alternating between rounds.
#
#   push: PUT /v1/objects/bench/dev/pii-{on,off}-rN?kind=dataset
#
# Environment:
#   SIZE_MB=512    size of the generated CSV in MiB
#   ROUNDS=3       timed rounds (each: one push with the scan on, one with it off)
#   WORK_BASE=...  where the data directory and the CSV live (default /dev/shm)
#   COFFER_BIN=... the coffer binary (default build/coffer)
#   KEEP=1         keep the work directory
#   STRICT=1       exit 1 when the target (scan on >= 0.8x scan off) is missed
#
# Needs: curl, sqlite3, awk.
set -euo pipefail

SIZE_MB=${SIZE_MB:-512}
ROUNDS=${ROUNDS:-3}
KEEP=${KEEP:-0}
STRICT=${STRICT:-0}
TARGET_RATIO=0.8

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
COFFER_BIN=${COFFER_BIN:-$REPO/build/coffer}

die() {
    echo "pii.sh: $*" >&2
    exit 2
}
note() { echo "== $*"; }

case $SIZE_MB in '' | *[!0-9]*) die "SIZE_MB must be a positive integer" ;; esac
case $ROUNDS in '' | *[!0-9]*) die "ROUNDS must be a positive integer" ;; esac
for tool in curl sqlite3 awk; do command -v "$tool" >/dev/null || die "$tool is needed"; done
[ -x "$COFFER_BIN" ] || die "no coffer binary at $COFFER_BIN (make build)"

if [ -z "${WORK_BASE:-}" ]; then
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then WORK_BASE=/dev/shm; else WORK_BASE=${TMPDIR:-/tmp}; fi
fi
WORK=$(mktemp -d "$WORK_BASE/coffer-pii-bench.XXXXXX")
COFFER_PID=
cleanup() {
    if [ -n "$COFFER_PID" ] && kill -0 "$COFFER_PID" 2>/dev/null; then
        kill "$COFFER_PID" 2>/dev/null || true
        wait "$COFFER_PID" 2>/dev/null || true
    fi
    if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---- the dataset -------------------------------------------------------------
# A customer table: ids, names, amounts, timestamps, large integers, free
# text; one row in 500 holds an e-mail address, one in 2000 a phone number
# and one in 5000 a card number (so the scan finds, counts and samples).
SRC=$WORK/customers.csv
note "generating a ${SIZE_MB} MiB CSV in $WORK"
awk 'BEGIN {
    srand(7);
    print "id,name,contact,amount,updated,account,note";
    for (i = 1; i <= 90000; i++) {
        contact = "";
        if (i % 500 == 0) contact = "user" i "@example.com";
        if (i % 2000 == 7) contact = "+44 20 7946 " sprintf("%04d", i % 10000);
        if (i % 5000 == 11) contact = "4111 1111 1111 1111";
        printf "%d,Customer %d,%s,%.2f,2024-%02d-%02d %02d:%02d:%02d,%d,order shipped to the warehouse in batch %d\n",
            i, i, contact, rand() * 1000, i % 12 + 1, i % 28 + 1, i % 24, i % 60, (i * 7) % 60,
            int(rand() * 1e9), i % 97;
    }
}' >"$WORK/block.csv"
BLOCK=$(stat -c %s "$WORK/block.csv")
TARGET_BYTES=$((SIZE_MB * 1024 * 1024))
: >"$SRC"
while [ "$(stat -c %s "$SRC")" -lt "$TARGET_BYTES" ]; do cat "$WORK/block.csv" >>"$SRC"; done
truncate -s "$TARGET_BYTES" "$SRC"
SIZE_BYTES=$(stat -c %s "$SRC")
rm -f "$WORK/block.csv"
note "dataset: $SIZE_BYTES bytes (a ${BLOCK}-byte block repeated)"

# ---- server ------------------------------------------------------------------
CDATA=$WORK/coffer
PASSWORD='Bench-Pii-Password-long!'
printf '%s\n' "$PASSWORD" | "$COFFER_BIN" init --data "$CDATA" --admin-password-stdin >"$WORK/init.log" 2>&1 ||
    die "coffer init failed: $(cat "$WORK/init.log")"
"$COFFER_BIN" server --data "$CDATA" --listen 127.0.0.1:0 --port-file "$WORK/coffer.port" \
    >"$WORK/coffer.log" 2>&1 &
COFFER_PID=$!
for _ in $(seq 1 100); do
    [ -s "$WORK/coffer.port" ] && break
    kill -0 "$COFFER_PID" 2>/dev/null || die "coffer server exited: $(tail -5 "$WORK/coffer.log")"
    sleep 0.1
done
URL="https://127.0.0.1:$(cat "$WORK/coffer.port")"
CURL=(curl -sS --fail --http1.1 --cacert "$CDATA/tls/ca.pem")
for _ in $(seq 1 50); do
    "${CURL[@]}" -o /dev/null "$URL/v1/health" 2>/dev/null && break
    sleep 0.1
done
login=$("${CURL[@]}" -H 'Content-Type: application/json' \
    --data "{\"user\":\"admin\",\"password\":\"$PASSWORD\"}" "$URL/v1/auth/login")
TOKEN=$(printf '%s' "$login" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || die "login failed: $login"

scan() { sqlite3 "$CDATA/coffer.db" "INSERT OR REPLACE INTO settings(key, value) VALUES('pii.scan', '$1')"; }
cpu_seconds() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$COFFER_PID/stat"; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / s / 1e6 }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A MB CPU
RATIOS=""
push() { # MODE ROUND
    local mode=$1 round=$2 out t0 t1 rate cpu
    scan "$mode"
    t0=$(cpu_seconds)
    out=$("${CURL[@]}" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/octet-stream' \
        -T "$SRC" -o "$WORK/push-$mode.json" -w '%{http_code} %{time_total} %{size_upload}' \
        "$URL/v1/objects/bench/dev/pii-$mode-r$round?kind=dataset")
    t1=$(cpu_seconds)
    set -- $out
    case $1 in 2??) ;; *) die "push ($mode): HTTP $1" ;; esac
    [ "$3" -eq "$SIZE_BYTES" ] || die "push ($mode) moved $3 bytes"
    if [ "$mode" = on ]; then
        grep -q '"detected":true' "$WORK/push-on.json" || die "the scan found nothing: $(cat "$WORK/push-on.json")"
    else
        ! grep -q '"pii"' "$WORK/push-off.json" || die "the scan ran while off"
    fi
    rate=$(mbps "$SIZE_BYTES" "$2")
    cpu=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    MB[$mode]+="$rate "
    CPU[$mode]+="$cpu "
    LAST_RATE=$rate
    printf '  round %d  scan %-3s %8.2f s  %8s MB/s  server CPU %6s s\n' "$round" "$mode" "$2" "$rate" "$cpu"
}

note "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
note "warm-up push (scan off)"
push off 0 >/dev/null
MB=() CPU=()
note "timed rounds: $ROUNDS x (scan on, scan off), order alternating"
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then order=(on off); else order=(off on); fi
    declare -A R=()
    for m in "${order[@]}"; do
        push "$m" "$r"
        R[$m]=$LAST_RATE
    done
    RATIOS+="$(awk -v a="${R[on]}" -v b="${R[off]}" 'BEGIN { printf "%.2f", a / b }') "
done
scan on
on_m=$(echo "${MB[on]}" | median)
off_m=$(echo "${MB[off]}" | median)
ratio=$(awk -v a="$on_m" -v b="$off_m" 'BEGIN { printf "%.2f", a / b }')
verdict=$(awk -v r="$ratio" -v t="$TARGET_RATIO" 'BEGIN { print (r >= t) ? "PASS" : "MISS" }')
echo
echo "Results: ${SIZE_MB} MiB CSV, $ROUNDS rounds, medians; MB/s = 10^6 bytes/s; data in $WORK_BASE"
echo "scan on : $on_m MB/s, server CPU s/push [${CPU[on]% }]"
echo "scan off: $off_m MB/s, server CPU s/push [${CPU[off]% }]"
echo "per-round samples MB/s: on [${MB[on]% }] off [${MB[off]% }]; per-round ratios on/off [${RATIOS% }]"
echo "findings in one push: $(sed -n 's/.*"types":\({[^}]*}\).*/\1/p' "$WORK/push-on.json")"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "RESULT: scan on ${ratio}x scan off ($verdict; target >= ${TARGET_RATIO}x)"
[ "$STRICT" = 1 ] && [ "$verdict" != PASS ] && exit 1
exit 0
