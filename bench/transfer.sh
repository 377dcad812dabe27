#!/usr/bin/env bash
# Transfer benchmark: Coffer vs nginx over HTTPS, same file, same machine,
# same curl client, in one run.
#
#   pull: GET  /v1/objects/bench/dev/pull-src@1   (Coffer: read, AES-256-GCM decrypt)
#         GET  /files/src.bin                       (nginx: static file)
#   push: PUT  /v1/objects/bench/dev/push-rN       (Coffer: SHA-256, AES-256-GCM encrypt, fsync)
#         PUT  /up/push-rN                          (nginx: WebDAV PUT, no fsync)
#
# Environment:
#   SIZE_MB=1024   size of the test file in MiB
#   ROUNDS=3       timed rounds (each round: 2 pulls and 2 pushes, order alternating)
#   WORK_BASE=...  where the servers' storage and the source file live
#                  (default /dev/shm, a tmpfs, when writable; else $TMPDIR or /tmp)
#   COFFER_BIN=... the coffer binary (default build/coffer; built with `make build` if missing)
#   KEEP=1         keep the work directory (logs, configs) after the run
#   STRICT=1       exit 1 when a target is missed
#
# Needs: curl, openssl, nginx with the WebDAV module (installs nginx-light with
# apt-get when nginx is missing; Debian's nginx-light and nginx-core both have
# http_dav_module). Runs nginx as a foreground child with its own prefix; never
# touches a system nginx service.
set -euo pipefail

SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-3}
KEEP=${KEEP:-0}
STRICT=${STRICT:-0}
TARGET_RATIO=0.8
TARGET_RSS_MIB=64
CIPHER=TLS_AES_256_GCM_SHA384

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
COFFER_BIN=${COFFER_BIN:-$REPO/build/coffer}

die() {
    echo "transfer.sh: $*" >&2
    # Say whether a server went away, and show its last words.
    if [ -n "${COFFER_PID:-}" ]; then
        kill -0 "$COFFER_PID" 2>/dev/null || echo "transfer.sh: the coffer server (pid $COFFER_PID) is no longer running" >&2
        [ -f "${WORK:-}/coffer.log" ] && tail -3 "$WORK/coffer.log" | sed 's/^/  coffer.log: /' >&2
    fi
    if [ -n "${NGINX_PID:-}" ]; then
        kill -0 "$NGINX_PID" 2>/dev/null || echo "transfer.sh: nginx (pid $NGINX_PID) is no longer running" >&2
        [ -f "${NPREFIX:-}/error.log" ] && tail -3 "$NPREFIX/error.log" | sed 's/^/  nginx error.log: /' >&2
    fi
    exit 2
}
note() { echo "== $*"; }

case $SIZE_MB in '' | *[!0-9]*) die "SIZE_MB must be a positive integer" ;; esac
case $ROUNDS in '' | *[!0-9]*) die "ROUNDS must be a positive integer" ;; esac
[ "$SIZE_MB" -ge 1 ] && [ "$ROUNDS" -ge 1 ] || die "SIZE_MB and ROUNDS must be >= 1"

# ---- dependencies --------------------------------------------------------

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "need root to run: $*"
    fi
}

install_packages() {
    # Keep apt from starting the packaged nginx service: the benchmark runs its
    # own nginx. A policy-rc.d that denies service starts is created only when
    # none exists, and removed again afterwards.
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
        made_policy=1
    fi
    as_root apt-get update -qq || true
    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || rc=$?
    if [ "$made_policy" -eq 1 ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
    [ "$rc" -eq 0 ] || die "apt-get install $* failed"
}

need=()
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || [ ! -x /usr/sbin/nginx ] || NGINX=/usr/sbin/nginx
[ -n "$NGINX" ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
    note "installing ${need[*]}"
    install_packages "${need[@]}"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx not found after installing nginx-light"
"$NGINX" -V 2>&1 | grep -q -- '--with-http_dav_module' ||
    die "$NGINX lacks http_dav_module; install nginx-light or nginx-core"

if [ ! -x "$COFFER_BIN" ]; then
    note "building coffer (make build)"
    make -C "$REPO" build >/dev/null
fi
[ -x "$COFFER_BIN" ] || die "no coffer binary at $COFFER_BIN"

# ---- work directory and clean-up ----------------------------------------

if [ -z "${WORK_BASE:-}" ]; then
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then WORK_BASE=/dev/shm; else WORK_BASE=${TMPDIR:-/tmp}; fi
fi
COFFER_PID=
NGINX_PID=
WORK=$(mktemp -d "$WORK_BASE/coffer-bench.XXXXXX")
NPREFIX=$WORK/nginx

cleanup() {
    local rc=$?
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [ -n "$COFFER_PID" ] && kill -0 "$COFFER_PID" 2>/dev/null; then
        kill -TERM "$COFFER_PID" 2>/dev/null || true
        wait "$COFFER_PID" 2>/dev/null || true
    fi
    if [ "$KEEP" = 1 ]; then
        echo "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SIZE_BYTES=$((SIZE_MB * 1024 * 1024))
# Source file + nginx copy + Coffer's pull object + (rounds + 1) uploads per server.
need_mb=$((SIZE_MB * (2 * ROUNDS + 5) + 64))
avail_mb=$(df -Pm "$WORK" | awk 'NR == 2 { print $4 }')
[ "$avail_mb" -ge "$need_mb" ] ||
    die "$WORK has $avail_mb MiB free, the run needs about $need_mb MiB (lower SIZE_MB or ROUNDS, or set WORK_BASE)"

FSTYPE=$(stat -f -c %T "$WORK")
SRC=$WORK/src.bin
CDATA=$WORK/coffer
NROOT=$NPREFIX/root
mkdir -p "$NPREFIX"/{client_body,proxy,fastcgi,uwsgi,scgi} "$NROOT/files" "$NROOT/up"

# ---- helpers --------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)
# CPU seconds (user+system, all threads) consumed so far by process $1.
cpu_seconds() {
    awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat"
}
# A field of /proc/PID/status in MiB (VmRSS, VmHWM).
status_mib() {
    awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}
# Resets the peak RSS (VmHWM) of process $1 to its current RSS (Linux >= 4.0),
# so that VmHWM read after a transfer is the peak during that transfer.
HWM_RESET=1
reset_hwm() {
    if [ "$HWM_RESET" = 1 ] && ! { echo 5 >"/proc/$1/clear_refs"; } 2>/dev/null; then
        HWM_RESET=0
        echo "WARNING: cannot reset VmHWM; peaks below include everything since start"
    fi
}
max_of() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0) ? a : b }'; }

CURL_COMMON=(curl -sS --fail --http1.1 --tlsv1.3 --tls13-ciphers "$CIPHER" --cacert "$CDATA/tls/ca.pem")

PASSWORD=$(openssl rand -hex 16)
TOKEN=

# transfer KIND(pull|push) URL  -> prints "seconds bytes"
transfer() {
    local kind=$1 url=$2 out
    if [ "$kind" = pull ]; then
        out=$("${CURL_COMMON[@]}" -H "Authorization: Bearer $TOKEN" -o /dev/null \
            -w '%{http_code} %{time_total} %{size_download}' "$url")
    else
        out=$("${CURL_COMMON[@]}" -H "Authorization: Bearer $TOKEN" \
            -H 'Content-Type: application/octet-stream' -T "$SRC" -o /dev/null \
            -w '%{http_code} %{time_total} %{size_upload}' "$url")
    fi
    set -- $out
    case $1 in 2??) ;; *) die "$kind $url: HTTP $1" ;; esac
    [ "$3" -eq "$SIZE_BYTES" ] || die "$kind $url moved $3 bytes, expected $SIZE_BYTES"
    echo "$2 $3"
}

mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / s / 1e6 }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# ---- set-up ---------------------------------------------------------------

note "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)"
note "tools: $(curl --version | head -1 | cut -d' ' -f1-5), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
note "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on the machine add noise)"
note "data: source file, Coffer data dir and nginx root all in $WORK ($FSTYPE)"
if [ "$FSTYPE" = tmpfs ]; then
    note "note: on tmpfs Coffer's fsync of each upload costs almost nothing; on a disk it would not (nginx never fsyncs)"
fi

note "generating a ${SIZE_MB} MiB random source file"
head -c "$SIZE_BYTES" /dev/urandom >"$SRC"
SRC_SHA=$(sha256sum "$SRC" | cut -d' ' -f1)

note "starting coffer"
printf '%s\n' "$PASSWORD" | "$COFFER_BIN" init --data "$CDATA" --admin-password-stdin >"$WORK/coffer-init.log" 2>&1 ||
    die "coffer init failed: $(cat "$WORK/coffer-init.log")"
"$COFFER_BIN" server --data "$CDATA" --listen 127.0.0.1:0 --port-file "$WORK/coffer.port" \
    >"$WORK/coffer.log" 2>&1 &
COFFER_PID=$!
for _ in $(seq 100); do
    [ -s "$WORK/coffer.port" ] && break
    kill -0 "$COFFER_PID" 2>/dev/null || die "coffer server exited: $(tail -5 "$WORK/coffer.log")"
    sleep 0.1
done
COFFER_PORT=$(cat "$WORK/coffer.port")
COFFER_URL=https://127.0.0.1:$COFFER_PORT
login=$("${CURL_COMMON[@]}" -H 'Content-Type: application/json' \
    --data "{\"user\":\"admin\",\"password\":\"$PASSWORD\"}" "$COFFER_URL/v1/auth/login")
TOKEN=$(printf '%s' "$login" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || die "login failed: $login"
sleep 0.5
COFFER_IDLE_RSS=$(status_mib "$COFFER_PID" VmRSS)
COFFER_START_HWM=$(status_mib "$COFFER_PID" VmHWM)

note "coffer server idle after start and login: VmRSS $COFFER_IDLE_RSS MiB, VmHWM $COFFER_START_HWM MiB"

note "starting nginx (one worker, foreground, prefix $NPREFIX)"
start_nginx() {
    local port=$1
    sed -e "s|@PREFIX@|$NPREFIX|g" -e "s|@ROOT@|$NROOT|g" -e "s|@PORT@|$port|g" \
        -e "s|@CERT@|$CDATA/tls/server.pem|g" -e "s|@KEY@|$CDATA/tls/server.key|g" \
        -e "s|@USER@|$(id -un)|g" -e "s|@GROUP@|$(id -gn)|g" \
        "$HERE/nginx/nginx.conf.in" >"$NPREFIX/nginx.conf"
    "$NGINX" -t -q -p "$NPREFIX" -c "$NPREFIX/nginx.conf" -e "$NPREFIX/error.log" ||
        die "nginx rejected its configuration: $(tail -3 "$NPREFIX/error.log")"
    "$NGINX" -p "$NPREFIX" -c "$NPREFIX/nginx.conf" -e "$NPREFIX/error.log" &
    NGINX_PID=$!
    for _ in $(seq 50); do
        kill -0 "$NGINX_PID" 2>/dev/null || return 1
        # Any HTTP status (403 for the directory) means nginx is serving TLS.
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CDATA/tls/ca.pem" \
            "https://127.0.0.1:$port/files/")" != 000 ]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}
for _ in $(seq 10); do
    NGINX_PORT=$((20000 + RANDOM % 40000))
    start_nginx "$NGINX_PORT" && break
    if [ -n "$NGINX_PID" ]; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    NGINX_PID=
done
[ -n "$NGINX_PID" ] || die "nginx did not start: $(tail -3 "$NPREFIX/error.log")"
NGINX_URL=https://127.0.0.1:$NGINX_PORT
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)
[ -n "$NGINX_WORKER" ] || die "no nginx worker process"

# ---- warm-up and correctness checks (not timed) --------------------------

note "warm-up: one push and one pull on each server, checking SHA-256"
cp "$SRC" "$NROOT/files/src.bin"
reset_hwm "$COFFER_PID"
"${CURL_COMMON[@]}" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/octet-stream' \
    -T "$SRC" -o "$WORK/push.json" "$COFFER_URL/v1/objects/bench/dev/pull-src" ||
    die "coffer push failed: $(cat "$WORK/push.json" 2>/dev/null)"
grep -q "$SRC_SHA" "$WORK/push.json" || die "coffer push answered an unexpected digest: $(cat "$WORK/push.json")"
got=$("${CURL_COMMON[@]}" -v -H "Authorization: Bearer $TOKEN" \
    "$COFFER_URL/v1/objects/bench/dev/pull-src@1" 2>"$WORK/curl-coffer.log" | sha256sum | cut -d' ' -f1)
[ "$got" = "$SRC_SHA" ] || die "coffer pull returned different content"
got=$("${CURL_COMMON[@]}" -v "$NGINX_URL/files/src.bin" 2>"$WORK/curl-nginx.log" | sha256sum | cut -d' ' -f1)
[ "$got" = "$SRC_SHA" ] || die "nginx pull returned different content"
transfer push "$NGINX_URL/up/warm" >/dev/null
[ "$(sha256sum "$NROOT/up/warm" | cut -d' ' -f1)" = "$SRC_SHA" ] || die "nginx PUT stored different content"
rm -f "$NROOT/up/warm"
TLS_COFFER=$(sed -n 's/^\* SSL connection using //p' "$WORK/curl-coffer.log" | head -1)
TLS_NGINX=$(sed -n 's/^\* SSL connection using //p' "$WORK/curl-nginx.log" | head -1)
note "TLS negotiated by curl: coffer: ${TLS_COFFER:-?}; nginx: ${TLS_NGINX:-?}"
[ "$TLS_COFFER" = "$TLS_NGINX" ] || echo "WARNING: the two servers negotiated different TLS parameters"

COFFER_WARM_HWM=$(status_mib "$COFFER_PID" VmHWM)
NGINX_IDLE_RSS=$(status_mib "$NGINX_WORKER" VmRSS)

# ---- timed rounds ----------------------------------------------------------

declare -A MB CPU HWM SECS
run_one() { # SERVER KIND ROUND
    local server=$1 kind=$2 round=$3 url pid t0 t1 res secs
    if [ "$server" = coffer ]; then
        pid=$COFFER_PID
        if [ "$kind" = pull ]; then url=$COFFER_URL/v1/objects/bench/dev/pull-src@1; else
            url=$COFFER_URL/v1/objects/bench/dev/push-r$round
        fi
    else
        pid=$NGINX_WORKER
        if [ "$kind" = pull ]; then url=$NGINX_URL/files/src.bin; else url=$NGINX_URL/up/push-r$round; fi
    fi
    reset_hwm "$pid"
    t0=$(cpu_seconds "$pid")
    res=$(transfer "$kind" "$url")
    t1=$(cpu_seconds "$pid")
    local hwm
    hwm=$(status_mib "$pid" VmHWM)
    HWM[$server.$kind]=$(max_of "${HWM[$server.$kind]:-0}" "$hwm")
    secs=${res%% *}
    local rate
    rate=$(mbps "$SIZE_BYTES" "$secs")
    local cpu
    cpu=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    MB[$server.$kind]+="$rate "
    SECS[$server.$kind.$round]=$secs
    CPU[$server.$kind]+="$cpu "
    printf '  round %d  %-6s %-4s %8.2f s  %8s MB/s  server CPU %6s s  peak RSS %7s MiB\n' \
        "$round" "$server" "$kind" "$secs" "$rate" "$cpu" "$hwm"
    if [ "$server" = nginx ] && [ "$kind" = push ]; then rm -f "$NROOT/up/push-r$round"; fi
}

note "timed rounds: $ROUNDS x (pull, push) per server, ${SIZE_MB} MiB each, order alternating"
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then order=(coffer nginx); else order=(nginx coffer); fi
    for kind in pull push; do
        for s in "${order[@]}"; do run_one "$s" "$kind" "$r"; done
    done
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
# Ratio of the two servers' times within each round: both ran back to back,
# so load that drifts over the run largely cancels out.
paired() {
    local k=$1 out="" r
    for r in $(seq "$ROUNDS"); do
        out+="$(ratio "${SECS[nginx.$k.$r]}" "${SECS[coffer.$k.$r]}") "
    done
    echo "${out% }"
}
PULL_PAIRS=$(paired pull)
PUSH_PAIRS=$(paired push)
COFFER_HWM=$(max_of "${HWM[coffer.pull]}" "${HWM[coffer.push]}")
COFFER_RSS_AFTER=$(status_mib "$COFFER_PID" VmRSS)

# ---- report ------------------------------------------------------------

cp_m=$(echo "${MB[coffer.pull]}" | median)
ng_m=$(echo "${MB[nginx.pull]}" | median)
cu_m=$(echo "${MB[coffer.push]}" | median)
nu_m=$(echo "${MB[nginx.push]}" | median)
pull_ratio=$(ratio "$cp_m" "$ng_m")
push_ratio=$(ratio "$cu_m" "$nu_m")
cpc=$(echo "${CPU[coffer.pull]}" | median)
npc=$(echo "${CPU[nginx.pull]}" | median)
cuc=$(echo "${CPU[coffer.push]}" | median)
nuc=$(echo "${CPU[nginx.push]}" | median)

verdict() { awk -v r="$1" -v t="$TARGET_RATIO" 'BEGIN { print (r >= t) ? "PASS" : "MISS" }'; }
pull_v=$(verdict "$pull_ratio")
push_v=$(verdict "$push_ratio")
rss_v=$(awk -v m="$COFFER_HWM" -v t="$TARGET_RSS_MIB" 'BEGIN { print (m <= t) ? "PASS" : "MISS" }')

echo
echo "Results: ${SIZE_MB} MiB file, $ROUNDS rounds, median of each; MB/s = 10^6 bytes/s;"
echo "data in $WORK_BASE ($FSTYPE); TLS ${TLS_COFFER:-?}; server CPU = user+sys seconds per transfer"
echo
row() { printf '%-9s | %11s | %11s | %7s | %-6s | %s\n' "$@"; }
row direction "coffer MB/s" "nginx MB/s" "ratio" "target" "server CPU s/transfer (coffer / nginx)"
row --------- ----------- ----------- ------- ------ --------------------------------------
row pull "$cp_m" "$ng_m" "${pull_ratio}x" "$pull_v" "$cpc / $npc"
row push "$cu_m" "$nu_m" "${push_ratio}x" "$push_v" "$cuc / $nuc"
echo
printf 'peak RSS during transfers (VmHWM)  coffer server: pull %s MiB, push %s MiB; target <= %s MiB: %s\n' \
    "${HWM[coffer.pull]}" "${HWM[coffer.push]}" "$TARGET_RSS_MIB" "$rss_v"
printf '                                   nginx worker:  pull %s MiB, push %s MiB\n' \
    "${HWM[nginx.pull]}" "${HWM[nginx.push]}"
printf 'coffer server RSS: idle %s MiB (peak since start incl. login %s MiB), warm-up transfers peak %s MiB, after the runs %s MiB\n' \
    "$COFFER_IDLE_RSS" "$COFFER_START_HWM" "$COFFER_WARM_HWM" "$COFFER_RSS_AFTER"
printf 'nginx worker RSS: idle %s MiB\n' "$NGINX_IDLE_RSS"
echo "per-round samples MB/s: coffer pull [${MB[coffer.pull]% }] nginx pull [${MB[nginx.pull]% }]" \
    "coffer push [${MB[coffer.push]% }] nginx push [${MB[nginx.push]% }]"
echo "per-round ratios coffer/nginx: pull [$PULL_PAIRS] (median $(echo "$PULL_PAIRS" | median))," \
    "push [$PUSH_PAIRS] (median $(echo "$PUSH_PAIRS" | median)); load average at end: $LOAD_END"
echo
echo "RESULT: pull ${pull_ratio}x nginx ($pull_v), push ${push_ratio}x nginx ($push_v)," \
    "coffer peak RSS ${COFFER_HWM} MiB ($rss_v); targets >= ${TARGET_RATIO}x and <= ${TARGET_RSS_MIB} MiB"

if [ "$STRICT" = 1 ] && { [ "$pull_v" != PASS ] || [ "$push_v" != PASS ] || [ "$rss_v" != PASS ]; }; then
    exit 1
fi
exit 0
