#!/usr/bin/env bash
# KEK rotation benchmark: data keys re-wrapped per second with the local
# keyring, through the server's own re-wrap code (batches of BATCH keys, one
# durable SQLite transaction each). Target: 100,000 DEKs in <= 10 s.
# Not part of the test suite.
#
# Environment:
#   COUNT=100000   versions (DEKs) in the store
#   BATCH=1000     keys per transaction
#   BENCH_DIR=...  where the database lives (default: a new directory under
#                  $TMPDIR or /tmp; every batch is fsynced, so the disk matters)
#   BUILD=build    the CMake build whose libcoffer_core.a is linked
#   HSM=1          also run it with the KEKs in a SoftHSM2 token (a temporary
#                  token, initialised here), HSM_COUNT DEKs (default COUNT)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
COUNT=${COUNT:-100000}
BATCH=${BATCH:-1000}

if [ ! -f "$BUILD/libcoffer_core.a" ]; then
    echo "== building libcoffer_core.a (make build)"
    make -C "$REPO" build BUILD="$BUILD" >/dev/null
fi
BIN="$BUILD/rewrap_bench"
# shellcheck disable=SC2046
cc -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$REPO/src" \
    "$HERE/rewrap_bench.c" "$BUILD/libcoffer_core.a" \
    $(pkg-config --libs libmicrohttpd gnutls libcrypto sqlite3 jansson libcurl libargon2 libqrencode) \
    -lpthread -lm -o "$BIN"

WORK=${BENCH_DIR:-}
CLEAN=0
if [ -z "$WORK" ]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/coffer-rewrap-bench.XXXXXX")
    CLEAN=1
fi
mkdir -p "$WORK"
chmod 700 "$WORK"
trap '[ "$CLEAN" = 1 ] && rm -rf "$WORK"' EXIT
echo "== re-wrap benchmark: $(nproc) cores, $COUNT DEKs, batch $BATCH, database in $WORK ($(df -PT "$WORK" | awk 'NR==2 {print $2}'))"
"$BIN" "$WORK" "$COUNT" "$BATCH"

if [ "${HSM:-0}" = 1 ]; then
    MODULE=/usr/lib/softhsm/libsofthsm2.so
    [ -f "$MODULE" ] || { echo "SoftHSM2 is not installed (scripts/install-deps.sh)" >&2; exit 1; }
    HSM_WORK="$WORK/hsm"
    mkdir -p "$HSM_WORK/tokens" "$HSM_WORK/store"
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$HSM_WORK" >"$HSM_WORK/softhsm2.conf"
    export SOFTHSM2_CONF="$HSM_WORK/softhsm2.conf"
    softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 5678 >/dev/null
    echo "== SoftHSM2: ${HSM_COUNT:-$COUNT} DEKs, batch $BATCH"
    COFFER_PKCS11_PIN=1234 "$BIN" "$HSM_WORK/store" "${HSM_COUNT:-$COUNT}" "$BATCH" \
        "pkcs11:module=$MODULE;token=bench"
fi
