# Shared helpers for the end-to-end tests. Source it from a test script:
#
#   . "$(dirname "$0")/lib.sh"
#   e2e_init "core"
#   ... assertions ...
#   e2e_finish
#
# Environment: COFFER_BIN (the coffer binary, required unless a build is
# found next to the sources) and COFFER_SRC (repository root). Everything a
# test creates lives under one temporary directory that is removed on exit,
# and every server started here is stopped on exit, even after a failure or
# an interrupt.

set -u

E2E_PASS=0
E2E_FAIL=0
E2E_ROOT=""
E2E_NAME="e2e"
E2E_SERVER_PIDS=()
E2E_BG_PIDS=()

# Output of the last command run by expect_exit / run_cmd.
LAST_OUT=""
LAST_ERR=""
LAST_RC=0

# The current server (set by server_start).
SERVER_PID=""
SERVER_PORT=""
SERVER_URL=""
SERVER_DATA=""
SERVER_LOG=""

: "${COFFER_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
if [ -z "${COFFER_BIN:-}" ]; then
    for c in "$COFFER_SRC/build/coffer" "$COFFER_SRC/build-asan/coffer"; do
        if [ -x "$c" ]; then
            COFFER_BIN="$c"
            break
        fi
    done
fi

# Sanitizer defaults when the caller did not choose any.
: "${ASAN_OPTIONS:=detect_leaks=1:abort_on_error=1}"
: "${UBSAN_OPTIONS:=print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS UBSAN_OPTIONS

log() { printf '# %s\n' "$*" >&2; }

# The coffer CLI under test.
coffer() { "$COFFER_BIN" "$@"; }

ok() {
    E2E_PASS=$((E2E_PASS + 1))
    printf 'ok %d - %s\n' "$((E2E_PASS + E2E_FAIL))" "$*"
}

fail() {
    E2E_FAIL=$((E2E_FAIL + 1))
    printf 'not ok %d - %s\n' "$((E2E_PASS + E2E_FAIL))" "$*"
}

# Prints the captured output of the last command (after a failure).
show_last() {
    if [ -n "$LAST_OUT" ] && [ -s "$LAST_OUT" ]; then
        sed -e 's/^/#   stdout: /' "$LAST_OUT" | head -n 20 >&2
    fi
    if [ -n "$LAST_ERR" ] && [ -s "$LAST_ERR" ]; then
        sed -e 's/^/#   stderr: /' "$LAST_ERR" | head -n 20 >&2
    fi
}

# run_cmd CMD...: runs CMD with stdout/stderr captured in $LAST_OUT/$LAST_ERR,
# exit status in $LAST_RC. stdin is inherited (so pipes into it work).
run_cmd() {
    LAST_OUT="$E2E_ROOT/last.out"
    LAST_ERR="$E2E_ROOT/last.err"
    "$@" >"$LAST_OUT" 2>"$LAST_ERR"
    LAST_RC=$?
    return 0
}

# expect_exit CODE CMD...: checks that CMD exits with CODE.
expect_exit() {
    local want="$1"
    shift
    run_cmd "$@"
    if [ "$LAST_RC" -eq "$want" ]; then
        ok "exit $want: $*"
        return 0
    fi
    fail "exit $want (got $LAST_RC): $*"
    show_last
    return 1
}

# expect_ok CMD...: same as expect_exit 0.
expect_ok() { expect_exit 0 "$@"; }

# expect_fail CMD...: checks that CMD exits with any non-zero status below
# 128 (a signal or a sanitizer abort is never a clean failure).
expect_fail() {
    run_cmd "$@"
    if [ "$LAST_RC" -ne 0 ] && [ "$LAST_RC" -lt 128 ]; then
        ok "fails cleanly ($LAST_RC): $*"
        return 0
    fi
    fail "should fail cleanly (got $LAST_RC): $*"
    show_last
    return 1
}

# check DESC CMD...: passes when CMD succeeds (its output is discarded).
check() {
    local desc="$1"
    shift
    if "$@" >/dev/null 2>&1; then
        ok "$desc"
        return 0
    fi
    fail "$desc"
    return 1
}

# check_not DESC CMD...: passes when CMD fails.
check_not() {
    local desc="$1"
    shift
    if "$@" >/dev/null 2>&1; then
        fail "$desc"
        return 1
    fi
    ok "$desc"
    return 0
}

# assert_eq ACTUAL EXPECTED DESC
assert_eq() {
    if [ "$1" = "$2" ]; then
        ok "$3"
        return 0
    fi
    fail "$3 (expected '$2', got '$1')"
    return 1
}

# assert_ne ACTUAL UNEXPECTED DESC
assert_ne() {
    if [ "$1" != "$2" ]; then
        ok "$3"
        return 0
    fi
    fail "$3 (got '$1')"
    return 1
}

# assert_contains TEXT NEEDLE DESC (fixed-string match)
assert_contains() {
    if printf '%s' "$1" | grep -qF -- "$2"; then
        ok "$3"
        return 0
    fi
    fail "$3 ('$2' not in: $(printf '%s' "$1" | head -c 400))"
    return 1
}

# assert_not_contains TEXT NEEDLE DESC
assert_not_contains() {
    if printf '%s' "$1" | grep -qF -- "$2"; then
        fail "$3 ('$2' found in: $(printf '%s' "$1" | head -c 400))"
        return 1
    fi
    ok "$3"
    return 0
}

# assert_file_mode FILE MODE (octal, e.g. 600)
assert_file_mode() {
    local m
    m=$(stat -c '%a' "$1" 2>/dev/null || echo missing)
    assert_eq "$m" "$2" "mode of ${1#"$E2E_ROOT"/} is $2"
}

# assert_same_file A B DESC: byte-for-byte comparison.
assert_same_file() {
    if [ -f "$1" ] && [ -f "$2" ] && cmp -s "$1" "$2"; then
        ok "$3"
        return 0
    fi
    fail "$3 ($1 and $2 differ or are missing)"
    return 1
}

# assert_no_file PATH DESC
assert_no_file() {
    if [ -e "$1" ]; then
        fail "$2 ($1 exists)"
        return 1
    fi
    ok "$2"
    return 0
}

# json_field NAME [FILE]: the first value of "NAME": (a string without its
# quotes, a number, true/false) in a JSON text read from FILE or stdin.
# Enough for the flat fields the tests look at; not a JSON parser.
json_field() {
    local name="$1"
    shift
    grep -oE "\"$name\"[[:space:]]*:[[:space:]]*(\"[^\"]*\"|-?[0-9]+|true|false|null)" "$@" |
        head -n 1 | sed -E "s/^\"$name\"[[:space:]]*:[[:space:]]*//; s/^\"//; s/\"$//"
}

# e2e_init NAME: creates the temporary root, isolates the configuration of
# the CLI and installs the clean-up trap.
e2e_init() {
    E2E_NAME="$1"
    if [ -z "${COFFER_BIN:-}" ] || [ ! -x "$COFFER_BIN" ]; then
        echo "COFFER_BIN is not set to an executable coffer binary" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
    case "$COFFER_BIN" in
    /*) ;;
    *) COFFER_BIN="$(cd "$(dirname "$COFFER_BIN")" && pwd)/$(basename "$COFFER_BIN")" ;;
    esac
    E2E_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/coffer-e2e-$1.XXXXXX") || exit 1
    chmod 700 "$E2E_ROOT"
    exec 3>&1
    trap e2e_cleanup EXIT
    trap 'e2e_interrupted' INT TERM HUP
    # No credentials, server or CA from the caller's environment.
    unset COFFER_TOKEN COFFER_SERVER COFFER_CA
    export HOME="$E2E_ROOT/home"
    mkdir -p "$HOME"
    use_config default
    cd "$E2E_ROOT" || exit 1
    log "$E2E_NAME: binary $COFFER_BIN, scratch $E2E_ROOT"
}

# use_config NAME: switches the CLI to its own XDG_CONFIG_HOME (one per
# simulated user), so stored credentials never leak between users.
use_config() {
    export XDG_CONFIG_HOME="$E2E_ROOT/config-$1"
    mkdir -p "$XDG_CONFIG_HOME"
    chmod 700 "$XDG_CONFIG_HOME"
}

# e2e_tmpdir NAME: a fresh directory under the temporary root.
e2e_tmpdir() {
    local d
    d=$(mktemp -d "$E2E_ROOT/$1.XXXXXX") || return 1
    printf '%s\n' "$d"
}

# bg_track PID: a background helper process to kill on exit.
bg_track() { E2E_BG_PIDS+=("$1"); }

# Reports an interrupt on the test's original stdout (fd 3): the signal may
# arrive while a function's output is redirected by run_cmd.
e2e_interrupted() {
    {
        fail "interrupted by a signal"
        echo "$E2E_PASS passed, $E2E_FAIL failed"
    } >&3
    exit 1
}

e2e_cleanup() {
    local rc=$?
    local p
    for p in "${E2E_BG_PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null
    done
    for p in "${E2E_SERVER_PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null
            local i
            for i in $(seq 1 100); do
                kill -0 "$p" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$p" 2>/dev/null
        fi
        wait "$p" 2>/dev/null
    done
    if [ -n "$E2E_ROOT" ] && [ -d "$E2E_ROOT" ]; then
        cd / || true
        if [ "${E2E_KEEP:-0}" = 1 ]; then
            log "kept $E2E_ROOT"
        else
            chmod -R u+rwX "$E2E_ROOT" 2>/dev/null
            rm -rf "$E2E_ROOT"
        fi
    fi
    exit "$rc"
}

# e2e_finish: prints the summary line and exits non-zero on any failure.
e2e_finish() {
    echo "$E2E_PASS passed, $E2E_FAIL failed"
    if [ "$E2E_FAIL" -ne 0 ] || [ "$E2E_PASS" -eq 0 ]; then
        exit 1
    fi
    exit 0
}

# init_data DIR PASSWORD [ADMIN]: coffer init with the admin password on stdin.
init_data() {
    local admin="${3:-admin}"
    printf '%s\n' "$2" | coffer init --data "$1" --admin "$admin" --admin-password-stdin
}

# server_start DATA [OPTION...]: starts `coffer server` (with the extra
# options) on a random loopback port and waits until GET /v1/health answers
# 200 over TLS with the data dir's CA.
# Sets SERVER_PID, SERVER_PORT, SERVER_URL. Returns non-zero on failure.
server_start() {
    local data="$1"
    shift
    local n
    n=$(find "$E2E_ROOT" -maxdepth 1 -name 'server-*.log' | wc -l)
    SERVER_DATA="$data"
    SERVER_LOG="$E2E_ROOT/server-$n.log"
    local port_file="$E2E_ROOT/server-$n.port"
    rm -f "$port_file"
    "$COFFER_BIN" server --data "$data" --listen 127.0.0.1:0 --port-file "$port_file" "$@" \
        >"$SERVER_LOG" 2>&1 </dev/null &
    SERVER_PID=$!
    E2E_SERVER_PIDS+=("$SERVER_PID")
    SERVER_PORT=""
    local i
    for i in $(seq 1 600); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "server exited during start-up; log:"
            sed -e 's/^/#   /' "$SERVER_LOG" >&2
            return 1
        fi
        if [ -z "$SERVER_PORT" ] && [ -s "$port_file" ]; then
            SERVER_PORT=$(tr -dc '0-9' <"$port_file")
        fi
        if [ -n "$SERVER_PORT" ]; then
            SERVER_URL="https://127.0.0.1:$SERVER_PORT"
            if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
                --cacert "$data/tls/ca.pem" "$SERVER_URL/v1/health")" = 200 ]; then
                return 0
            fi
        fi
        sleep 0.1
    done
    log "server did not become ready within 60 s; log:"
    sed -e 's/^/#   /' "$SERVER_LOG" >&2
    return 1
}

# server_stop [SIGNAL]: stops the current server (default SIGTERM) and waits
# for it. Prints nothing; returns the server's exit status (0 after a clean
# shutdown; a sanitizer report makes it non-zero).
server_stop() {
    local sig="${1:-TERM}"
    local pid="$SERVER_PID"
    local rc=0
    [ -n "$pid" ] || return 0
    kill "-$sig" "$pid" 2>/dev/null
    local i
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "server $pid did not stop within 30 s; killing it"
        kill -9 "$pid" 2>/dev/null
        rc=124
    fi
    wait "$pid" 2>/dev/null
    local wrc=$?
    [ "$rc" -eq 0 ] && rc=$wrc
    local kept=()
    local p
    for p in "${E2E_SERVER_PIDS[@]}"; do
        [ "$p" = "$pid" ] || kept+=("$p")
    done
    E2E_SERVER_PIDS=("${kept[@]+"${kept[@]}"}")
    SERVER_PID=""
    return "$rc"
}

# api METHOD PATH [curl options...]: one HTTPS request to the current
# server with its CA; the body goes to $E2E_ROOT/api.body and the status is
# printed. Uses --path-as-is so hostile paths reach the server unchanged.
api() {
    local method="$1" path="$2"
    shift 2
    curl -s --path-as-is --max-time 120 --cacert "$SERVER_DATA/tls/ca.pem" -X "$method" \
        -o "$E2E_ROOT/api.body" -w '%{http_code}' "$@" "$SERVER_URL$path"
}

# api_body: the body of the last api call.
api_body() { cat "$E2E_ROOT/api.body" 2>/dev/null; }

# login_cli USER PASSWORD: logs the CLI in (current XDG_CONFIG_HOME).
login_cli() {
    printf '%s\n' "$2" | coffer login --server "$SERVER_URL" --ca "$SERVER_DATA/tls/ca.pem" \
        --user "$1" --password-stdin
}

# api_token USER PASSWORD: prints a session token from POST /v1/auth/login.
api_token() {
    local body status
    body=$(printf '{"user":"%s","password":"%s"}' "$1" "$2")
    status=$(api POST /v1/auth/login -H 'Content-Type: application/json' --data-binary "$body")
    [ "$status" = 200 ] || return 1
    json_field token "$E2E_ROOT/api.body"
}

# random_file PATH SIZE_BYTES: a file of random bytes.
random_file() {
    head -c "$2" /dev/urandom >"$1"
}

# blob_files DATA: the stored blob files (not temporary uploads), one a line.
blob_files() {
    find "$1/blobs" -mindepth 2 -maxdepth 2 -type f -path "$1/blobs/??/*" | sort
}

# file_size PATH
file_size() { stat -c '%s' "$1"; }
