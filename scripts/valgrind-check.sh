#!/usr/bin/env bash
# Runs a subset of the tests under valgrind (memcheck) on a build WITHOUT
# sanitizers (valgrind and ASan cannot be combined): a few unit tests of the
# parsers and the crypto, then the offline CLI paths (init, fsck, audit
# verify) on a fresh data directory. Any memory error or definite leak fails.
#
#   bash scripts/valgrind-check.sh BUILD_DIR
set -uo pipefail
build="${1:?usage: scripts/valgrind-check.sh BUILD_DIR}"
if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind-check: valgrind is not installed (bash scripts/install-deps.sh)" >&2
    exit 1
fi
VG=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --track-origins=yes --num-callers=30)
UNITS=(test_path test_stream test_keyring test_audit_event test_authz_policy)

work=$(mktemp -d "${TMPDIR:-/tmp}/coffer-valgrind.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"
fails=0
run() {
    local name="$1"
    shift
    if "${VG[@]}" --log-file="$work/$name.vg" "$@" >"$work/$name.out" 2>&1; then
        if [ -s "$work/$name.vg" ]; then
            echo "valgrind-check: $name: valgrind reported:" >&2
            cat "$work/$name.vg" >&2
            fails=$((fails + 1))
        else
            echo "valgrind-check: $name: clean"
        fi
    else
        echo "valgrind-check: $name: failed (exit $?)" >&2
        tail -n 40 "$work/$name.out" "$work/$name.vg" >&2
        fails=$((fails + 1))
    fi
}

for t in "${UNITS[@]}"; do
    if [ -x "$build/$t" ]; then
        run "$t" "$build/$t"
    else
        echo "valgrind-check: $build/$t is missing" >&2
        fails=$((fails + 1))
    fi
done

data="$work/data"
run init sh -c "printf '%s\n' 'Valgrind-admin-pw-1' | \"$build/coffer\" init --data \"$data\" \
    --admin admin --admin-password-stdin"
run fsck "$build/coffer" fsck --data "$data" --deep
run audit-verify "$build/coffer" audit verify --data "$data"

if [ "$fails" -ne 0 ]; then
    echo "valgrind-check: $fails run(s) failed" >&2
    exit 1
fi
echo "valgrind-check: all runs clean"
