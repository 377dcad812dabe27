#!/usr/bin/env bash
# Static checks of the C sources: banned functions (scripts/check-banned.sh)
# and cppcheck, which must report nothing.
#
#   bash scripts/static-check.sh
#
# cppcheck does not read system headers (they make it slow and noisy), so the
# jansson iteration macros the code uses are described to it below. Known
# false positives are suppressed by file and id in SUPPRESS, each with the
# reason it is a false positive; prefer fixing the code.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/check-banned.sh

# Formatting: every C file follows the repository's .clang-format.
if command -v clang-format >/dev/null 2>&1; then
    if ! clang-format --dry-run --Werror $(git ls-files '*.c' '*.h') 2>/dev/null; then
        echo "static-check: files are not formatted; run 'make format'" >&2
        clang-format --dry-run $(git ls-files '*.c' '*.h') 2>&1 | grep -o '^[^:]*\.[ch]' | sort -u >&2
        exit 1
    fi
fi

if ! command -v cppcheck >/dev/null 2>&1; then
    echo "static-check: cppcheck is not installed (bash scripts/install-deps.sh)" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/coffer-cppcheck.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat >"$work/jansson.cfg" <<'CFG'
<?xml version="1.0"?>
<def format="2">
  <define name="json_array_foreach(array, index, value)"
          value="for (index = 0; index &lt; json_array_size(array) &amp;&amp; (value = json_array_get(array, index)); index++)"/>
  <define name="json_object_foreach(object, key, value)"
          value="for (key = json_object_iter_key(json_object_iter(object)); key &amp;&amp; (value = json_object_iter_value(json_object_key_to_iter(key))); key = json_object_iter_key(json_object_iter_next(object, json_object_key_to_iter(key))))"/>
  <define name="json_object_foreach_safe(object, n, key, value)"
          value="for (key = json_object_iter_key(json_object_iter(object)), n = json_object_iter_next(object, json_object_key_to_iter(key)); key &amp;&amp; (value = json_object_iter_value(json_object_key_to_iter(key))); key = json_object_iter_key(n), n = json_object_iter_next(object, json_object_key_to_iter(key)))"/>
</def>
CFG

# file:id  reason
SUPPRESS=(
    # dots[] is read only when ndots == 2, i.e. after both entries were written.
    "uninitvar:src/authn/jwt.c"
    # p->n_tok never exceeds ANOMALY_TOKEN_NETS (8): the window is trimmed before each push.
    "arrayIndexOutOfBounds:src/monitor/anomaly.c"
)
sup_args=()
for s in "${SUPPRESS[@]}"; do
    sup_args+=("--suppress=$s")
done

jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 2 ] && jobs=2
cppcheck -q --std=c11 --enable=warning,portability,performance --inline-suppr \
    --error-exitcode=1 -j "$jobs" -I src -D_GNU_SOURCE --library="$work/jansson.cfg" \
    --suppress=missingIncludeSystem "${sup_args[@]}" src/ 2>"$work/report" || true
if [ -s "$work/report" ]; then
    cat "$work/report" >&2
    echo "static-check: cppcheck reported $(grep -c ': \(error\|warning\|style\|performance\|portability\):' "$work/report") finding(s)" >&2
    exit 1
fi
echo "static-check: cppcheck found nothing in src/"
