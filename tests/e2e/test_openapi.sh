#!/usr/bin/env bash
# docs/openapi.yaml against the route table: every route of src/api/routes.c
# must be described (method and path template), with the route's
# authentication (security: [] exactly where the route needs no credential)
# and body kind (application/json, application/octet-stream or none); every
# operation of the document must belong to a route; every error code of
# src/util/err.c must be in the Error schema; every $ref must resolve.
#
# A prefix route ("/v1/users/") is described by templates that continue the
# prefix with a parameter ("/v1/users/{name}", "/v1/users/{name}/disable").
# Needs no server and no coffer binary.

. "$(dirname "$0")/lib.sh"

ROUTES="$COFFER_SRC/src/api/routes.c"
SPEC="$COFFER_SRC/docs/openapi.yaml"
ERRS="$COFFER_SRC/src/util/err.c"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/coffer-openapi.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# routes.c -> "METHOD PREFIX EXACT BODY AUTH" per route.
parse_routes() {
    sed -n -E 's/^[[:space:]]*\{"([A-Z]+)", "([^"]+)", ([01]), BODY_([A-Z]+), ([01]),.*/\1 \2 \3 \4 \5/p' "$1"
}

# openapi.yaml -> "METHOD PATH SECURITY BODY" per operation, where SECURITY is
# "none" for `security: []` and "default" otherwise, and BODY is JSON, STREAM
# or NONE (from the requestBody's media type).
parse_ops() {
    awk '
    function flush() {
        if (method != "")
            print toupper(method), path, sec, body
        method = ""
    }
    /^[^ #]/ { flush(); inpaths = ($0 ~ /^paths:/); path = ""; next }
    !inpaths { next }
    /^  [^ ]/ {
        flush()
        path = $0
        sub(/^  /, "", path); sub(/:[ ]*$/, "", path); gsub(/["\047]/, "", path)
        next
    }
    /^    (get|put|post|delete|patch|head|options|trace):/ {
        flush()
        method = $1; sub(/:$/, "", method)
        sec = "default"; body = "NONE"; inbody = 0
        next
    }
    method == "" { next }
    /^      [^ ]/ { inbody = ($0 ~ /^      requestBody:/) }
    /^      security: *\[\] *$/ { sec = "none" }
    inbody && /application\/json:/ { body = "JSON" }
    inbody && /application\/octet-stream:/ { body = "STREAM" }
    END { flush() }
    ' "$1"
}

# ops_for METHOD PREFIX EXACT OPS: the operations of OPS that route serves.
ops_for() {
    local m="$1" prefix="$2" exact="$3" ops="$4"
    awk -v m="$m" -v p="$prefix" -v ex="$exact" '
        $1 != m { next }
        ex == 1 && $2 == p { print; next }
        ex == 0 && index($2, p) == 1 && substr($2, length(p) + 1, 1) == "{" { print }
    ' "$ops"
}

parse_routes "$ROUTES" >"$TMP/routes"
parse_ops "$SPEC" >"$TMP/ops"

n_routes=$(wc -l <"$TMP/routes")
n_table=$(grep -c -E '^[[:space:]]*\{"[A-Z]+", "' "$ROUTES")
if [ "$n_routes" -gt 50 ] && [ "$n_routes" -eq "$n_table" ]; then
    ok "parsed all $n_routes routes of routes.c"
else
    fail "parsed $n_routes routes of $n_table table rows in routes.c (is the row format unchanged?)"
fi
if [ "$(wc -l <"$TMP/ops")" -ge "$n_routes" ]; then
    ok "parsed $(wc -l <"$TMP/ops") operations of openapi.yaml"
else
    fail "parsed only $(wc -l <"$TMP/ops") operations of openapi.yaml"
fi

# ---------------------------------------------------------------- routes
while read -r m prefix exact body auth; do
    ops=$(ops_for "$m" "$prefix" "$exact" "$TMP/ops")
    what="$m $prefix$([ "$exact" = 0 ] && echo '{...}')"
    if [ -z "$ops" ]; then
        fail "$what is not in docs/openapi.yaml"
        continue
    fi
    ok "$what is documented"
    want_sec=$([ "$auth" = 1 ] && echo default || echo none)
    bad=$(awk -v s="$want_sec" '$3 != s { print $2 }' <<<"$ops")
    if [ -z "$bad" ]; then
        ok "$what: security matches auth=$auth"
    else
        fail "$what: security of $bad does not match auth=$auth (security: [] only for routes without auth)"
    fi
    bad=$(awk -v b="$body" '$4 != b { print $2 " has " $4 }' <<<"$ops")
    if [ -z "$bad" ]; then
        ok "$what: request body matches BODY_$body"
    else
        fail "$what: request body does not match BODY_$body: $bad"
    fi
done <"$TMP/routes"

# ------------------------------------------------- operations without a route
while read -r m path _; do
    found=0
    while read -r rm prefix exact _; do
        [ "$rm" = "$m" ] || continue
        if [ "$exact" = 1 ] && [ "$path" = "$prefix" ]; then
            found=1
        elif [ "$exact" = 0 ] && [ "${path#"$prefix"}" != "$path" ] && [ "$path" != "$prefix" ]; then
            found=1
        fi
        [ "$found" = 1 ] && break
    done <"$TMP/routes"
    if [ "$found" = 1 ]; then
        ok "$m $path belongs to a route"
    else
        fail "$m $path is in openapi.yaml but no route of routes.c serves it"
    fi
done <"$TMP/ops"

# ---------------------------------------------------------- error codes
awk '/^    Error:/ { on = 1; next } on && /^    [^ ]/ { on = 0 } on' "$SPEC" >"$TMP/error_schema"
codes=$(grep -v '\[ERR_OK\]' "$ERRS" | sed -n -E 's/^[[:space:]]*\[ERR_[A-Z_]+\] = \{"([a-z_]+)".*/\1/p')
if [ -n "$codes" ]; then
    ok "read the error codes of err.c"
else
    fail "no error codes read from $ERRS"
fi
for c in $codes; do
    if grep -q -w -- "$c" "$TMP/error_schema"; then
        ok "error code $c is in the Error schema"
    else
        fail "error code $c of err.c is missing from the Error schema"
    fi
done

# ------------------------------------------------------------------ $refs
missing=""
for r in $(grep -o -E "#/components/(schemas|responses|headers|parameters)/[A-Za-z0-9_.-]+" "$SPEC" | sort -u); do
    section=$(cut -d/ -f3 <<<"$r")
    name=$(cut -d/ -f4 <<<"$r")
    if ! awk -v s="  $section:" -v n="    $name:" '
            $0 == s { on = 1; next } on && /^  [^ ]/ { on = 0 } on && index($0, n) == 1 { f = 1 }
            END { exit !f }' "$SPEC"; then
        missing="$missing $r"
    fi
done
if [ -z "$missing" ]; then
    ok "every \$ref resolves"
else
    fail "unresolved \$ref:$missing"
fi

# ---------------------------------------------------------------- YAML
if python3 -c 'import yaml' 2>/dev/null; then
    if python3 - "$SPEC" <<'EOF'; then
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert d["openapi"].startswith("3.0"), "not OpenAPI 3.0"
ids = [o["operationId"] for p in d["paths"].values() for k, o in p.items() if k != "parameters"]
assert len(ids) == len(set(ids)), "duplicate operationId"
EOF
        ok "openapi.yaml parses as YAML with unique operationIds"
    else
        fail "openapi.yaml does not parse as YAML, or has duplicate operationIds"
    fi
elif command -v ruby >/dev/null 2>&1; then
    if ruby -ryaml -e 'YAML.safe_load(File.read(ARGV[0]))' "$SPEC"; then
        ok "openapi.yaml parses as YAML"
    else
        fail "openapi.yaml does not parse as YAML"
    fi
else
    log "no YAML parser (python3-yaml or ruby): YAML syntax not checked"
fi

# ------------------------------------------ the checks can fail
# A route the document lacks, and a document lacking a route, are reported.
printf '    {"GET", "/v1/no-such-route", 1, BODY_NONE, 1, NULL, NULL, api_health, NULL},\n' >"$TMP/fake_routes.c"
parse_routes "$TMP/fake_routes.c" >"$TMP/fake_routes"
if [ "$(cat "$TMP/fake_routes")" = "GET /v1/no-such-route 1 NONE 1" ] &&
    [ -z "$(ops_for GET /v1/no-such-route 1 "$TMP/ops")" ] &&
    [ -z "$(ops_for POST /v1/objects/ 0 "$TMP/ops")" ]; then
    ok "an undocumented route would be reported"
else
    fail "the route check does not notice an undocumented route"
fi
awk '/^  \/v1\/list:/ { skip = 1; next } skip && /^  [^ ]/ { skip = 0 } !skip' "$SPEC" >"$TMP/cut.yaml"
parse_ops "$TMP/cut.yaml" >"$TMP/cut_ops"
if [ -n "$(ops_for GET /v1/list 1 "$TMP/ops")" ] && [ -z "$(ops_for GET /v1/list 1 "$TMP/cut_ops")" ]; then
    ok "a path removed from the document would be reported"
else
    fail "removing /v1/list from the document goes unnoticed"
fi

e2e_finish
