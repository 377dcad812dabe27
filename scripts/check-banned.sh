#!/usr/bin/env bash
# Fails when C sources call a banned function (the list and the reason for
# each are below). Comments and string literals are ignored; a call is a
# name followed by '(' that is not a member (x.f( or x->f().
#
#   bash scripts/check-banned.sh [DIR...]     (default: src fuzz tests/unit)
#
# Everywhere: unbounded copies and formatting, and strtok (not reentrant).
# In product code (src/, fuzz/) also: conversions without error detection
# (atoi & co.), shell execution, weak randomness, predictable temporary names,
# stack allocation of unbounded size.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    set -- src fuzz tests/unit
fi
exec python3 - "$@" <<'PY'
import os, re, sys

EVERYWHERE = {
    "sprintf": "use snprintf and check the result",
    "vsprintf": "use vsnprintf",
    "strcpy": "use memcpy with a checked length or snprintf",
    "stpcpy": "use memcpy with a checked length",
    "strcat": "use snprintf into a bounded buffer",
    "strncat": "use snprintf into a bounded buffer",
    "strncpy": "it may not NUL-terminate; use snprintf or memcpy",
    "gets": "use fgets",
    "strtok": "use strtok_r",
    "wcscpy": "use a bounded copy",
    "wcscat": "use a bounded copy",
}
PRODUCT = {
    "atoi": "use strtol/strtoull with end and range checks",
    "atol": "use strtol with end and range checks",
    "atoll": "use strtoll with end and range checks",
    "system": "never run a shell",
    "popen": "never run a shell",
    "rand": "use secure_random",
    "srand": "use secure_random",
    "random": "use secure_random",
    "tmpnam": "use mkstemp",
    "tempnam": "use mkstemp",
    "mktemp": "use mkstemp",
    "alloca": "use a bounded buffer or the heap",
}

def strip(text):
    """Blanks out comments and string/char literals, keeping line numbers."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j]) + c); i = j + 1
        else:
            out.append(c); i += 1
    return "".join(out)

bad = 0
for root in sys.argv[1:]:
    product = not root.startswith("tests")
    banned = dict(EVERYWHERE, **(PRODUCT if product else {}))
    pat = re.compile(r"(?<![\w.>])(" + "|".join(sorted(banned)) + r")\s*\(")
    for dirpath, _, files in os.walk(root):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, f)
            with open(path, encoding="utf-8", errors="replace") as fh:
                code = strip(fh.read())
            for ln, line in enumerate(code.split("\n"), 1):
                for m in pat.finditer(line):
                    name = m.group(1)
                    print(f"{path}:{ln}: banned function {name}(): {banned[name]}")
                    bad += 1
if bad:
    print(f"check-banned: {bad} call(s) to banned functions", file=sys.stderr)
    sys.exit(1)
print("check-banned: no banned function calls")
PY
