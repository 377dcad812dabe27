#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for a fixed time each.
#
#   bash fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]
#
# Each target starts from a copy of its seed corpus (fuzz/corpus/NAME/) in a
# temporary directory, so the repository's seeds are never modified. Any
# crash, leak, timeout, out-of-memory or sanitizer report fails the run; the
# input that triggered it is kept under BUILD_DIR/fuzz-artifacts/NAME/ and
# can be replayed with `BUILD_DIR/NAME FILE`. Targets run one after another.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]}"
seconds="${2:-30}"
shift 2 2>/dev/null || shift $#
case "$seconds" in
'' | *[!0-9]*)
    echo "fuzz/run.sh: SECONDS must be a whole number" >&2
    exit 2
    ;;
esac

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for src in "$here"/fuzz_*.c; do
        targets+=("$(basename "$src" .c)")
    done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/coffer-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
for t in "${targets[@]}"; do
    bin="$build/$t"
    if [ ! -x "$bin" ]; then
        echo "fuzz/run.sh: $bin is missing (build with CC=clang -DCOFFER_FUZZ=ON)" >&2
        failed+=("$t(missing)")
        continue
    fi
    corpus="$work/$t"
    mkdir -p "$corpus"
    if [ -d "$here/corpus/$t" ]; then
        cp -R "$here/corpus/$t/." "$corpus/"
    else
        echo "fuzz/run.sh: warning: no seed corpus in fuzz/corpus/$t" >&2
    fi
    artifacts="$build/fuzz-artifacts/$t"
    mkdir -p "$artifacts"
    log="$work/$t.log"
    echo "== $t: ${seconds}s from $(find "$corpus" -type f | wc -l) seed(s)"
    "$bin" "$corpus" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
        -max_len=65536 -detect_leaks=1 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1
    rc=$?
    if [ $rc -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
        echo "== $t: FAILED (exit $rc); log tail:" >&2
        tail -n 60 "$log" >&2
        ls -1 "$artifacts" >&2
        failed+=("$t")
    else
        execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
        cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)
        echo "== $t: ok (${execs:-?} runs, ${cov:-cov: ?})"
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} target(s) ran ${seconds}s each without a finding"
