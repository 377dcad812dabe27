#!/usr/bin/env bash
# Policy decision benchmark: Coffer's authz_decide() against Casbin (node-casbin)
# and Cedar (cedar-wasm, prepared policy set) on equivalent RBAC + condition
# workloads, in one run, each pinned to one core.
#
#   sizes:    10, 1,000 and 10,000 statements (rules / policies), 100,000 role bindings
#   requests: early (first statement of the principal's first role),
#             late (last statement of its last role), none (nothing matches)
#   reports:  p50 / p99 latency and decisions/s per engine, and the ratios
#             Casbin/Coffer and Cedar/Coffer.
#
# The workload is described in bench/authz_peers/workload.js and implemented
# the same way in bench/authz_bench.c. docs/PERFORMANCE.md ("Policy
# decisions") says where the models differ.
#
# Environment:
#   BUILD_DIR=build      CMake build directory for the coffer_core library
#   CPU=0                the core every engine is pinned to (taskset -c)
#   SIZES="10 1000 10000"
#   PEERS=1              0: measure Coffer only (no npm install)
#   PEER_BUDGET_MS=3000  time budget per engine, size and request class for a
#                        peer (at least 10 decisions are timed, at most 20,000)
#   CASBIN_G_FIRST=0     1: also run Casbin with the role test first in the
#                        matcher (the order of Casbin's documentation examples)
#   AUTHZ_BENCH_SAMPLES=200000, AUTHZ_BENCH_BATCHES=300, AUTHZ_BENCH_ROUNDS=10
#                        Coffer's sample counts per class, split into rounds
#                        in which the three request classes take turns
#   STRICT=1             exit 1 when a Coffer target is missed
#
# Needs: cmake, a C compiler, pkg-config and Coffer's library dependencies;
# node and npm for the peers (installed with apt-get when missing). The npm
# packages (pinned in bench/authz_peers/package.json) are installed into
# bench/authz_peers/node_modules by this script.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$REPO/$BUILD_DIR ;; esac
CPU=${CPU:-0}
SIZES=${SIZES:-10 1000 10000}
PEERS=${PEERS:-1}
STRICT=${STRICT:-0}
CASBIN_G_FIRST=${CASBIN_G_FIRST:-0}
export PEER_BUDGET_MS=${PEER_BUDGET_MS:-3000}
OUT=$REPO/bench/out/authz
PEER_DIR=$HERE/authz_peers
TARGET_P50_NS=1000
TARGET_P99_NS=5000

die() {
    echo "authz.sh: $*" >&2
    exit 2
}
note() { echo "== $*"; }

case $CPU in '' | *[!0-9]*) die "CPU must be a core number" ;; esac
for n in $SIZES; do
    case $n in '' | *[!0-9]*) die "SIZES must be numbers" ;; esac
done

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        return 1
    fi
}

PIN=()
if command -v taskset >/dev/null; then PIN=(taskset -c "$CPU"); else
    note "taskset not found: engines are not pinned to one core"
fi

mkdir -p "$OUT"
rm -f "$OUT"/*.txt "$OUT/results.tsv"

# ---- Coffer side -------------------------------------------------------------

note "building coffer_core in $BUILD_DIR"
cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" --target coffer_core -j 2 >/dev/null
LIBS=$(pkg-config --libs libmicrohttpd gnutls libcrypto sqlite3 jansson libcurl libargon2 libqrencode)
# shellcheck disable=SC2086
${CC:-cc} -O2 -g -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -D_GNU_SOURCE \
    -I "$REPO/src" "$HERE/authz_bench.c" "$BUILD_DIR/libcoffer_core.a" $LIBS -lpthread -lm \
    -o "$BUILD_DIR/authz_bench"

# ---- Peers: node, npm and the pinned packages --------------------------------

peers_ok=0
peer_note=""
if [ "$PEERS" = 1 ]; then
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        note "node/npm missing: installing nodejs and npm with apt-get"
        as_root apt-get update -qq >/dev/null 2>&1 || true
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null 2>&1 || true
    fi
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        peer_note="node/npm could not be installed"
    else
        note "installing the peers (npm install in bench/authz_peers)"
        # No lock file: package.json pins the two packages exactly.
        if (cd "$PEER_DIR" && npm install --no-audit --no-fund --no-package-lock --loglevel=error); then
            peers_ok=1
        else
            peer_note="npm install failed"
        fi
    fi
    [ -z "$peer_note" ] || note "peers skipped: $peer_note (Coffer is still measured)"
fi

# ---- Machine -------------------------------------------------------------------

pkg_version() {
    node -e "process.stdout.write(require('$PEER_DIR/node_modules/$1/package.json').version)" 2>/dev/null || echo "?"
}
note "machine and versions"
echo "nproc: $(nproc)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "kernel: $(uname -r)"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "coffer: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?') ($(${CC:-cc} --version | head -1), RelWithDebInfo coffer_core, -O2 bench)"
if [ "$peers_ok" = 1 ]; then
    echo "node: $(node --version), npm $(npm --version)"
    echo "casbin: $(pkg_version casbin), @cedar-policy/cedar-wasm: $(pkg_version @cedar-policy/cedar-wasm)"
fi
echo "pinned to: ${PIN[*]:-(not pinned)}"

# ---- Runs ----------------------------------------------------------------------

# shellcheck disable=SC2086
{
    note "coffer"
    "${PIN[@]}" "$BUILD_DIR/authz_bench" $SIZES | tee "$OUT/coffer.txt"
    if [ "$peers_ok" = 1 ]; then
        note "casbin (budget ${PEER_BUDGET_MS} ms per size and class)"
        (cd "$PEER_DIR" && CASBIN_G_FIRST=0 "${PIN[@]}" node casbin_bench.js "$OUT" $SIZES) |
            tee "$OUT/casbin.txt"
        if [ "$CASBIN_G_FIRST" = 1 ]; then
            note "casbin, role test first in the matcher"
            (cd "$PEER_DIR" && CASBIN_G_FIRST=1 "${PIN[@]}" node casbin_bench.js "$OUT" $SIZES) |
                tee "$OUT/casbin_gfirst.txt"
        fi
        note "cedar (budget ${PEER_BUDGET_MS} ms per size and class)"
        (cd "$PEER_DIR" && "${PIN[@]}" node cedar_bench.js "$OUT" $SIZES) | tee "$OUT/cedar.txt"
    fi
} || die "a benchmark program failed"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- Summary -------------------------------------------------------------------

cat "$OUT"/*.txt | grep -E '^(RESULT|SANITY)' >"$OUT/results.tsv" || true
if grep -q '^SANITY' "$OUT/results.tsv"; then
    grep '^SANITY' "$OUT/results.tsv" >&2
    die "an engine returned a wrong decision: its numbers are not reported"
fi

awk -v sizes="$SIZES" -v tp50="$TARGET_P50_NS" -v tp99="$TARGET_P99_NS" -v peers="$peers_ok" '
function us(ns) { return ns == "" ? "-" : sprintf("%.2f", ns / 1000) }
function dps(v) { return v == "" ? "-" : sprintf("%.0f", v) }
function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.0fx", a / b) }
$1 == "RESULT" {
    k = $2 SUBSEP $3 SUBSEP $4
    p50[k] = $5; p99[k] = $6; rate[k] = $7; iters[k] = $8
    seen[$2] = 1
}
END {
    nn = split(sizes, N, " ")
    split("early late none", C, " ")
    ne = 0
    x = split("casbin casbin-gfirst cedar", ALL, " ")
    for (i = 1; i <= x; i++)
        if (ALL[i] in seen) E[++ne] = ALL[i]
    printf "\n%-6s %-5s | %-24s |", "N", "class", "coffer p50/p99 us, dec/s"
    for (m = 1; m <= ne; m++) printf " %-36s |", E[m] " p50/p99 us, dec/s (samples)"
    for (m = 1; m <= ne; m++) printf " %-22s |", E[m] "/coffer p50, p99"
    printf "\n"
    for (i = 1; i <= nn; i++) for (j = 1; j <= 3; j++) {
        kc = "coffer" SUBSEP N[i] SUBSEP C[j]
        printf "%-6s %-5s | %6s/%6s %10s |", N[i], C[j], us(p50[kc]), us(p99[kc]), dps(rate[kc])
        for (m = 1; m <= ne; m++) {
            ke = E[m] SUBSEP N[i] SUBSEP C[j]
            printf " %9s/%9s %8s (%6s) |", us(p50[ke]), us(p99[ke]), dps(rate[ke]), iters[ke] == "" ? "-" : iters[ke]
        }
        for (m = 1; m <= ne; m++) {
            ke = E[m] SUBSEP N[i] SUBSEP C[j]
            printf " %9s, %10s |", ratio(p50[ke], p50[kc]), ratio(p99[ke], p99[kc])
        }
        printf "\n"
    }
    # Targets at the largest size, and flatness from the smallest to the largest.
    lo = N[1]; hi = N[nn]; miss = 0
    printf "\ntargets at %s statements: p50 <= %.1f us, p99 <= %.1f us\n", hi, tp50 / 1000, tp99 / 1000
    for (j = 1; j <= 3; j++) {
        kc = "coffer" SUBSEP hi SUBSEP C[j]; kl = "coffer" SUBSEP lo SUBSEP C[j]
        ok = (p50[kc] != "" && p50[kc] <= tp50 && p99[kc] <= tp99)
        if (!ok) miss = 1
        printf "  %-5s p50 %s us, p99 %s us: %s; p50 at %s / p50 at %s = %.2f\n", C[j], us(p50[kc]),
               us(p99[kc]), ok ? "met" : "MISSED", hi, lo, p50[kl] ? p50[kc] / p50[kl] : 0
    }
    if (!peers) printf "peers: not measured\n"
    exit miss ? 3 : 0
}' "$OUT/results.tsv" | tee "$OUT/summary.txt" || rc=$?
rc=${rc:-0}
[ "$rc" = 0 ] || [ "$rc" = 3 ] || die "summary failed"
echo "raw output: $OUT"
if [ "$rc" = 3 ] && [ "$STRICT" = 1 ]; then exit 1; fi
exit 0
