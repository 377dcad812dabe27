#!/usr/bin/env bash
# Audit log benchmark: durable appends per second with 1, 8 and 64
# concurrent writers (group commit), and verification speed over a log of
# EVENTS events. Not part of the test suite.
#
# Environment:
#   BENCH_DIR=...   where the logs are written (default: a new directory under
#                   $TMPDIR or /tmp; put it on the disk you want to measure,
#                   since every append is fdatasync'ed)
#   SECONDS_PER_RUN=5   duration of each append run
#   EVENTS=1000000      size of the log that is verified
#   BUILD=build         the CMake build whose libcoffer_core.a is linked
#                       (built with `make build` when missing)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
EVENTS=${EVENTS:-1000000}

if [ ! -f "$BUILD/libcoffer_core.a" ]; then
    echo "== building libcoffer_core.a (make build)"
    make -C "$REPO" build BUILD="$BUILD" >/dev/null
fi
BIN="$BUILD/audit_bench"
# shellcheck disable=SC2046
cc -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$REPO/src" \
    "$HERE/audit_bench.c" "$BUILD/libcoffer_core.a" \
    $(pkg-config --libs libmicrohttpd gnutls libcrypto sqlite3 jansson libcurl libargon2 libqrencode) \
    -lpthread -lm -o "$BIN"

WORK=${BENCH_DIR:-}
CLEAN=0
if [ -z "$WORK" ]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/coffer-audit-bench.XXXXXX")
    CLEAN=1
fi
mkdir -p "$WORK"
trap '[ "$CLEAN" = 1 ] && rm -rf "$WORK"' EXIT
echo "== audit benchmark: $(nproc) cores, logs in $WORK ($(df -PT "$WORK" | awk 'NR==2 {print $2}'))"
"$BIN" "$WORK" "$SECONDS_PER_RUN" "$EVENTS"
