#!/usr/bin/env bash
# Hostile-input suite against a live server: malformed and oversized
# requests, slow clients, invalid UTF-8 and NUL bytes, encoded path
# traversal, CRLF injection, deeply nested JSON, bad lengths, wrong content
# types, duplicate parameters, replayed / expired / revoked / forged
# credentials, cross-project access (IDOR) and oversized policies. Each case
# must get its documented 4xx (docs/SECURITY.md lists them) or, for broken
# HTTP framing, a closed connection; the server must stay up; and a digest
# of the store (metadata, blobs, keys) must be the same after the attack as
# before it.
. "$(dirname "$0")/lib.sh"
e2e_init hostile

ADMIN_PW='Adm1n-Hostile-Password!'
ALICE_PW='Alice-Hostile-Password-1'
BOB_PW='Bob-Hostile-Password-22'
DATA="$E2E_ROOT/data"
CASES=0

run_cmd init_data "$DATA" "$ADMIN_PW"
assert_eq "$LAST_RC" 0 "init"
if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
ok "server starts"
CA="$DATA/tls/ca.pem"

# --------------------------------------------------------------- helpers
# A raw TLS client: sends the bytes of a Python expression, prints the
# response status, "closed" (no response) or "error:NAME".
cat >"$E2E_ROOT/raw.py" <<'PY'
import hashlib, socket, ssl, sys, time
mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def conn(rcvbuf=0):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(20)
    s.connect(("127.0.0.1", port))
    return ctx.wrap_socket(s, server_hostname="localhost")
def read_answer(f):
    """One answer from a keep-alive stream: (status, body), None at its end."""
    line = f.readline()
    if not line.startswith(b"HTTP/"):
        return None
    length = 0
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        if k.strip().lower() == "content-length":
            length = int(v)
    body = f.read(length)
    return (line.split()[1].decode(), body) if len(body) == length else None
def read_status(s):
    buf = b""
    try:
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except (socket.timeout, ConnectionResetError, ssl.SSLError):
        pass
    parts = buf.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    if len(parts) > 1 and parts[0].startswith("HTTP/"):
        return parts[1]
    return "closed" if not buf else "garbage"
if mode == "send":
    data = eval(sys.argv[4], {})
    try:
        s = conn()
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        print(read_status(s))
        s.close()
    except OSError as e:
        print("error:%s" % type(e).__name__)
elif mode == "plain":
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(eval(sys.argv[4], {}))
    try:
        buf = s.recv(4096)
    except (socket.timeout, ConnectionResetError):
        buf = b""
    print("closed" if not buf or not buf.startswith(b"HTTP/") else "http")
elif mode == "keepalive":
    # GETs each path in turn on one connection with a bearer token; prints
    # "STATUS:SHA256-PREFIX" per answer, then the milliseconds it all took.
    token, paths = sys.argv[4], sys.argv[5:]
    s = conn()
    f = s.makefile("rb")
    t0, out = time.time(), []
    for p in paths:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
                   % (p, token)).encode())
        a = read_answer(f)
        out.append("closed" if a is None else "%s:%s" % (a[0], hashlib.sha256(a[1]).hexdigest()[:12]))
        if a is None:
            break
    print(" ".join(out))
    print(int((time.time() - t0) * 1000))
elif mode == "pipeline":
    # Sends N requests for PATH at once (HTTP pipelining), reads nothing for
    # WAIT seconds (with a receive buffer of RCVBUF bytes; 0: the default),
    # then reads the answers: prints how many complete 200 answers came, in
    # order, and whether the stream then ended ("end") or stopped at N.
    n, path, wait, rcvbuf = int(sys.argv[4]), sys.argv[5], float(sys.argv[6]), int(sys.argv[7])
    s = conn(rcvbuf)
    try:
        for _ in range(n):  # one TLS record each: several reach the server at once
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    except (OSError, ssl.SSLError):
        pass
    time.sleep(wait)
    f = s.makefile("rb")
    got = 0
    try:
        while got < n:
            a = read_answer(f)
            if a is None or a[0] != "200":
                break
            got += 1
    except (OSError, ssl.SSLError):
        pass
    print("%d %s" % (got, "all" if got == n else "end"))
elif mode == "dribble":
    # Handshake and request written to the socket STEP bytes at a time, so
    # that TLS records arrive cut at arbitrary places; prints the status.
    step = int(sys.argv[4])
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    t = ctx.wrap_bio(inc, out, server_hostname="localhost")
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    def flush():
        data = out.read()
        for i in range(0, len(data), step):
            sock.sendall(data[i:i + step])
            time.sleep(0.001)
    def fill():
        d = sock.recv(65536)
        if not d:
            raise EOFError
        inc.write(d)
    try:
        while True:
            try:
                t.do_handshake()
                break
            except ssl.SSLWantReadError:
                flush()
                fill()
        flush()
        t.write(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        flush()
        buf = b""
        while b"\r\n" not in buf:
            try:
                buf += t.read(4096)
            except ssl.SSLWantReadError:
                fill()
        print(buf.split(b" ")[1].decode())
    except (OSError, EOFError, ssl.SSLError) as e:
        print("error:%s" % type(e).__name__)
elif mode == "slowbody":
    # Declares a body and sends it one byte a second: must not block others.
    s = conn()
    s.sendall(sys.argv[4].encode())
    print("started", flush=True)
    for i in range(int(sys.argv[5])):
        try:
            s.sendall(b"{")
        except OSError:
            break
        time.sleep(1)
elif mode == "slow":
    # Opens N connections that trickle header lines for HOLD seconds.
    n, hold = int(sys.argv[4]), float(sys.argv[5])
    socks = []
    for i in range(n):
        try:
            s = conn()
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            break
    print("open:%d" % len(socks), flush=True)
    end = time.time() + hold
    while time.time() < end:
        for s in socks:
            try:
                s.sendall(b"X-Slow: a\r\n")
            except OSError:
                pass
        time.sleep(1)
    print("held", flush=True)
PY
raw() { python3 "$E2E_ROOT/raw.py" send "$SERVER_PORT" "$CA" "$1"; }
plain() { python3 "$E2E_ROOT/raw.py" plain "$SERVER_PORT" "$CA" "$1"; }

# The store's state: every metadata table except those that record traffic
# by design (sessions, the anomaly monitor's findings and holds, last-use
# columns), every blob file with its SHA-256, and the keyring. The audit log
# grows with every decision by design and is checked by 'audit verify'.
store_digest() {
    python3 - "$DATA" <<'PY'
import hashlib, os, sqlite3, sys
d = sys.argv[1]
h = hashlib.sha256()
con = sqlite3.connect("file:%s/coffer.db?mode=ro" % d, uri=True)
skip = {"sessions", "monitor_findings", "monitor_holds"}
for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"):
    if t in skip or t.startswith("sqlite_"):
        continue
    cols = [r[1] for r in con.execute("PRAGMA table_info(\"%s\")" % t)
            if not r[1].startswith("last_used")]
    rows = con.execute("SELECT %s FROM \"%s\"" % (",".join('"%s"' % c for c in cols), t))
    for r in sorted(repr(x) for x in rows):
        h.update(("%s:%s\n" % (t, r)).encode())
con.close()
for root, dirs, files in sorted(os.walk(os.path.join(d, "blobs"))):
    dirs.sort()
    for f in sorted(files):
        p = os.path.join(root, f)
        h.update(("%s %s\n" % (os.path.relpath(p, d),
                               hashlib.sha256(open(p, "rb").read()).hexdigest())).encode())
h.update(open(os.path.join(d, "keys", "keyring.json"), "rb").read())
print(h.hexdigest())
PY
}

# hc DESC WANT GOT: one hostile case. WANT is a status or a|b list; the
# server must still be running afterwards, and every 10 cases it must
# answer /v1/health.
hc() {
    local desc="$1" want="$2" got="$3"
    CASES=$((CASES + 1))
    if [[ "|$want|" == *"|$got|"* ]]; then
        ok "hostile $CASES: $desc -> $got"
    else
        fail "hostile $CASES: $desc (want $want, got $got)"
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        fail "the server died after hostile case $CASES ($desc)"
        sed -e 's/^/#   /' "$SERVER_LOG" | tail -n 40 >&2
        e2e_finish
    fi
    if [ $((CASES % 10)) -eq 0 ] && [ "$(api GET /v1/health)" != 200 ]; then
        fail "the server stopped answering after hostile case $CASES"
    fi
}

# ------------------------------------------------------------ the store
ADMIN=$(api_token admin "$ADMIN_PW")
assert_ne "$ADMIN" "" "admin token"
AA=(-H "Authorization: Bearer $ADMIN")
J=(-H 'Content-Type: application/json')
O=(-H 'Content-Type: application/octet-stream')
for u in alice:"$ALICE_PW" bob:"$BOB_PW"; do
    api POST /v1/users "${AA[@]}" "${J[@]}" \
        --data-binary "{\"name\":\"${u%%:*}\",\"password\":\"${u#*:}\"}" >/dev/null
done
use_config admin
expect_ok login_cli admin "$ADMIN_PW"
expect_ok coffer role bind data-scientist user:alice --scope 'fraud/*'
expect_ok coffer role bind viewer user:bob --scope 'credit/*'
random_file "$E2E_ROOT/a.bin" 70000
expect_ok coffer push "$E2E_ROOT/a.bin" fraud/dev/secret --kind model
expect_ok coffer push "$E2E_ROOT/a.bin" fraud/dev/restricted --kind model --sensitivity restricted
expect_ok coffer push "$E2E_ROOT/a.bin" credit/dev/report --kind metrics
ALICE=$(api_token alice "$ALICE_PW")
BOB=$(api_token bob "$BOB_PW")
assert_ne "$BOB" "" "bob's token"
LA=(-H "Authorization: Bearer $ALICE")
LB=(-H "Authorization: Bearer $BOB")
# A session revoked by logout (for replay), an API token revoked, one expiring.
GONE=$(api_token alice "$ALICE_PW")
assert_eq "$(api POST /v1/auth/logout -H "Authorization: Bearer $GONE")" 204 "logout (for replay)"
api POST /v1/tokens "${AA[@]}" "${J[@]}" \
    --data-binary '{"name":"revoked-ci","roles":["viewer"],"expires_in":3600}' >/dev/null
REVOKED=$(json_field token "$E2E_ROOT/api.body")
RID=$(json_field id "$E2E_ROOT/api.body")
st=$(api DELETE "/v1/tokens/$RID" "${AA[@]}")
check "revoke an API token ($st)" test "$st" = 200 -o "$st" = 204
api POST /v1/tokens "${AA[@]}" "${J[@]}" \
    --data-binary '{"name":"short-ci","roles":["viewer"],"expires_in":1}' >/dev/null
EXPIRED=$(json_field token "$E2E_ROOT/api.body")
assert_ne "$EXPIRED" "" "a token that expires in a second"
sleep 2

BEFORE=$(store_digest)
assert_ne "$BEFORE" "" "digest of the store before the attack"

# ------------------------------------- request line, headers, framing
log "request line, headers and framing"
hc "header of 70 KB" "431|413" "$(raw "b'GET /v1/health HTTP/1.1\r\nHost: a\r\nX-Big: ' + b'a'*70000 + b'\r\n\r\n'")"
hc "header of 40 KB (over the 32 KiB per connection)" "431|413" "$(raw "b'GET /v1/health HTTP/1.1\r\nHost: a\r\nX-Big: ' + b'a'*40000 + b'\r\n\r\n'")"
hc "header of 20 KB (over the 16 KiB per connection)" "431|413" "$(raw "b'GET /v1/health HTTP/1.1\r\nHost: a\r\nX-Big: ' + b'a'*20000 + b'\r\n\r\n'")"
hc "header of 10 KB (within the 16 KiB per connection)" 200 "$(raw "b'GET /v1/health HTTP/1.1\r\nHost: a\r\nX-Big: ' + b'a'*10000 + b'\r\n\r\n'")"
hc "3000 headers" "431|413" "$(raw "b'GET /v1/health HTTP/1.1\r\nHost: a\r\n' + b'X-H: aaaaaaaaaaaaaaaaaaaaaaaa\r\n'*3000 + b'\r\n'")"
hc "request line of 70 KB" "414|431" "$(raw "b'GET /v1/' + b'a'*70000 + b' HTTP/1.1\r\nHost: a\r\n\r\n'")"
hc "100 KB of garbage" "414|431|400|closed" "$(raw "b'A'*100000")"
hc "path of 2049 bytes" 400 "$(api GET "/v1/objects/fraud/dev/$(head -c 2030 /dev/zero | tr '\0' a)" "${AA[@]}")"
hc "HTTP/0.9 request" "400|closed" "$(raw "b'GET /v1/health\r\n\r\n'")"
hc "HTTP/2.0 in an HTTP/1 request line" "505|400" "$(raw "b'GET /v1/health HTTP/2.0\r\nHost: a\r\n\r\n'")"
hc "HTTP/3.0 in an HTTP/1 request line" "505|400" "$(raw "b'GET /v1/health HTTP/3.0\r\nHost: a\r\n\r\n'")"
hc "header line without a colon" 400 "$(raw "b'GET /v1/health HTTP/1.1\r\nHost: a\r\nBadHeader\r\n\r\n'")"
hc "NUL byte in the request line" "400|404" "$(raw "b'GET /v1/he\x00alth HTTP/1.1\r\nHost: a\r\n\r\n'")"
# libmicrohttpd cuts a header value at a NUL byte, so only what precedes it counts.
hc "NUL byte in the Authorization header" "401|400" "$(raw "b'GET /v1/auth/whoami HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer cfs_\x00$ADMIN\r\n\r\n'")"
hc "unknown method FOO" 405 "$(api FOO /v1/health)"
hc "lower-case method" 405 "$(raw "b'get /v1/health HTTP/1.1\r\nHost: a\r\n\r\n'")"
hc "TRACE" 405 "$(api TRACE /v1/health)"
hc "OPTIONS *" 405 "$(raw "b'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n'")"
hc "CONNECT" "405|400" "$(raw "b'CONNECT localhost:443 HTTP/1.1\r\nHost: a\r\n\r\n'")"
hc "method name of 4 KB" "405|400|414|431" "$(raw "b'G'*4096 + b' /v1/health HTTP/1.1\r\nHost: a\r\n\r\n'")"
hc "absolute-form target" "404|400" "$(raw "b'GET https://localhost/v1/list HTTP/1.1\r\nHost: a\r\n\r\n'")"
hc "DELETE on a GET-only path" 405 "$(api DELETE /v1/health)"
hc "double slash" 404 "$(api GET //v1/health)"
hc "plain HTTP on the TLS port" closed "$(plain "b'GET /v1/health HTTP/1.1\r\nHost: a\r\n\r\n'")"
hc "SSLv3 ClientHello" closed "$(plain "b'\x16\x03\x00\x00\x2f\x01\x00\x00\x2b\x03\x00' + b'\x00'*40")"
hc "TLS record of garbage" closed "$(plain "b'\x16\x03\x01\xff\xff' + b'\xab'*300")"

# --------------------------------------------------------- lengths and bodies
log "lengths, transfer encodings and bodies"
LOGIN_HEAD="b'POST /v1/auth/login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
hc "Content-Length -1" 400 "$(raw "${LOGIN_HEAD}Content-Length: -1\r\n\r\n'")"
hc "Content-Length 2^64+" "400|413" "$(raw "${LOGIN_HEAD}Content-Length: 99999999999999999999999\r\n\r\n'")"
hc "Content-Length 2^63" 413 "$(raw "${LOGIN_HEAD}Content-Length: 9223372036854775808\r\n\r\n'")"
hc "Content-Length in hex" 400 "$(raw "${LOGIN_HEAD}Content-Length: 0x10\r\n\r\n'")"
hc "Content-Length 1e3" 400 "$(raw "${LOGIN_HEAD}Content-Length: 1e3\r\n\r\n'")"
hc "two different Content-Lengths" "400|closed" "$(raw "${LOGIN_HEAD}Content-Length: 2\r\nContent-Length: 7\r\n\r\n{}'")"
hc "Content-Length with Transfer-Encoding (smuggling)" "400|closed" "$(raw "${LOGIN_HEAD}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'")"
hc "chunk size overflowing 64 bits" "400|413|closed" "$(raw "${LOGIN_HEAD}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nab\r\n0\r\n\r\n'")"
hc "chunk size not hex" "400|closed" "$(raw "${LOGIN_HEAD}Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n'")"
hc "Transfer-Encoding gzip" "400|411|501|closed" "$(raw "${LOGIN_HEAD}Transfer-Encoding: gzip\r\n\r\nabc'")"
hc "JSON body over 1 MiB (declared)" 413 "$(api POST /v1/auth/login "${J[@]}" -H 'Content-Length: 1048577' --data-binary '{}')"
head -c 2100000 /dev/zero | tr '\0' ' ' >"$E2E_ROOT/big.json"
hc "JSON body over 1 MiB (chunked)" 413 "$(api POST /v1/auth/login "${J[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$E2E_ROOT/big.json")"
hc "JSON body over 1 MiB (sent)" 413 "$(api POST /v1/auth/login "${J[@]}" --data-binary @"$E2E_ROOT/big.json")"
hc "upload over the 64 GiB cap (declared)" 413 "$(raw "b'PUT /v1/objects/fraud/dev/huge HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer $ADMIN\r\nContent-Type: application/octet-stream\r\nContent-Length: 68719476737\r\n\r\n'")"
hc "body on a body-less route" 400 "$(api GET /v1/list "${AA[@]}" "${J[@]}" --data-binary '{}')"
hc "body on DELETE" 400 "$(api DELETE /v1/objects/fraud/dev/secret@1 "${AA[@]}" "${O[@]}" --data-binary 'x')"
hc "body shorter than Content-Length, then close" "closed|400|408" "$(timeout 30 python3 -c "
import socket, ssl
ctx = ssl.create_default_context(cafile='$CA'); ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', $SERVER_PORT)), server_hostname='localhost')
s.sendall(b'PUT /v1/objects/fraud/dev/partial HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer $ADMIN\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n' + b'x'*5000)
s.close(); print('closed')")"

# ------------------------------------------------------- content types
log "content types"
hc "JSON route with text/plain" 415 "$(api POST /v1/auth/login -H 'Content-Type: text/plain' --data-binary '{}')"
hc "JSON route with application/jsonx" 415 "$(api POST /v1/auth/login -H 'Content-Type: application/jsonx' --data-binary '{}')"
hc "JSON route with multipart/form-data" 415 "$(api POST /v1/auth/login -F a=b)"
hc "JSON route with form encoding" 415 "$(api POST /v1/auth/login --data 'user=admin&password=x')"
hc "JSON route with no content type" 415 "$(api POST /v1/auth/login -H 'Content-Type:' --data-binary '{}')"
hc "upload as application/json" 415 "$(api PUT /v1/objects/fraud/dev/ct "${AA[@]}" "${J[@]}" --data-binary '{}')"
hc "upload without a content type" 415 "$(api PUT /v1/objects/fraud/dev/ct "${AA[@]}" -H 'Content-Type:' --data-binary 'x')"
hc "upload as text/html" 415 "$(api PUT /v1/objects/fraud/dev/ct "${AA[@]}" -H 'Content-Type: text/html' --data-binary 'x')"

# ------------------------------------------------------------------- JSON
log "JSON bodies"
jb() { api POST /v1/auth/login "${J[@]}" --data-binary "$1"; }
hc "malformed JSON" 400 "$(jb '{"user":')"
hc "JSON array at the top" 400 "$(jb '[1,2]')"
hc "JSON null" 400 "$(jb 'null')"
hc "JSON string at the top" 400 "$(jb '"admin"')"
hc "duplicate JSON keys" 400 "$(jb '{"user":"admin","user":"x","password":"y"}')"
hc "raw NUL byte in JSON" 400 "$(printf '{"user":"admin","n":4\0,"password":"x"}' | api POST /v1/auth/login "${J[@]}" --data-binary @-)"
hc "escaped NUL in a JSON string" 400 "$(jb '{"user":"ad\u0000min","password":"x"}')"
hc "invalid UTF-8 in JSON" 400 "$(printf '{"user":"\xff\xfe","password":"x"}' | api POST /v1/auth/login "${J[@]}" --data-binary @-)"
hc "overlong UTF-8 in JSON" 400 "$(printf '{"user":"\xc0\xaf","password":"x"}' | api POST /v1/auth/login "${J[@]}" --data-binary @-)"
hc "lone surrogate escape" 400 "$(jb '{"user":"\ud800","password":"x"}')"
python3 -c "print('['*100000 + ']'*100000)" >"$E2E_ROOT/deep1.json"
hc "100000 nested arrays" 400 "$(api POST /v1/auth/login "${J[@]}" --data-binary @"$E2E_ROOT/deep1.json")"
python3 -c "print('{\"user\":' + '{\"a\":'*5000 + '1' + '}'*5000 + '}')" >"$E2E_ROOT/deep2.json"
hc "5000 nested objects in a field" 400 "$(api POST /v1/auth/login "${J[@]}" --data-binary @"$E2E_ROOT/deep2.json")"
hc "wrong JSON types for credentials" "400|401" "$(jb '{"user":1,"password":["x"]}')"
hc "integer beyond 64 bits" 400 "$(jb '{"user":"admin","password":"x","n":184467440737095516150}')"
hc "BOM before JSON" 400 "$(printf '\xef\xbb\xbf{"user":"admin","password":"x"}' | api POST /v1/auth/login "${J[@]}" --data-binary @-)"
hc "metadata GET with a JSON body" 400 "$(api GET /v1/artifacts/fraud/dev/secret "${AA[@]}" "${J[@]}" --data-binary '{"a":1}')"
hc "metadata GET with a chunked body" 400 "$(api GET /v1/artifacts/fraud/dev/secret "${AA[@]}" -H 'Transfer-Encoding: chunked' --data-binary 'x')"
hc "metadata GET, Content-Length 0" 200 "$(api GET /v1/artifacts/fraud/dev/secret "${AA[@]}" -H 'Content-Length: 0')"
hc "label with unknown sensitivity" 400 "$(api PATCH /v1/artifacts/fraud/dev/secret "${AA[@]}" "${J[@]}" --data-binary '{"sensitivity":"top-secret"}')"
hc "label with a nested tag value" 400 "$(api PATCH /v1/artifacts/fraud/dev/secret "${AA[@]}" "${J[@]}" --data-binary '{"tags":{"a":{"b":"c"}}}')"
python3 -c "import json; print(json.dumps({'tags': {'k%d' % i: 'v' for i in range(1000)}}))" >"$E2E_ROOT/tags.json"
hc "label with 1000 tags" 400 "$(api PATCH /v1/artifacts/fraud/dev/secret "${AA[@]}" "${J[@]}" --data-binary @"$E2E_ROOT/tags.json")"
hc "label with a 10 KB tag value" 400 "$(api PATCH /v1/artifacts/fraud/dev/secret "${AA[@]}" "${J[@]}" --data-binary "{\"tags\":{\"a\":\"$(head -c 10000 /dev/zero | tr '\0' v)\"}}")"
hc "label with a CRLF in a tag value" 400 "$(api PATCH /v1/artifacts/fraud/dev/secret "${AA[@]}" "${J[@]}" --data-binary '{"tags":{"a":"x\r\nSet-Cookie: y"}}')"
hc "user name of 10 KB at login" "400|401" "$(jb "{\"user\":\"$(head -c 10000 /dev/zero | tr '\0' u)\",\"password\":\"x\"}")"

# ------------------------------------------------- paths and references
log "paths, traversal, UTF-8, NUL"
hp() { api GET "$1" "${AA[@]}"; }
hc "../ traversal" 400 "$(hp /v1/objects/fraud/dev/../../etc/passwd)"
hc "%2e%2e traversal" 400 "$(hp /v1/objects/fraud/dev/%2e%2e/%2e%2e/etc/passwd)"
hc "..%2f traversal" 400 "$(hp /v1/objects/fraud/dev/..%2f..%2fetc%2fpasswd)"
hc "double-encoded traversal" 400 "$(hp /v1/objects/fraud/dev/%252e%252e%252fetc)"
hc "backslash traversal" 400 "$(hp '/v1/objects/fraud/dev/..%5c..%5cetc')"
hc "overlong UTF-8 dot-dot" 400 "$(hp /v1/objects/fraud/dev/%c0%ae%c0%ae/x)"
hc "./ segment" 400 "$(hp /v1/objects/fraud/dev/./secret)"
hc "empty segment" 400 "$(hp /v1/objects/fraud/dev//secret)"
hc "absolute path as artifact name" 400 "$(hp /v1/objects//etc/passwd)"
hc "invalid UTF-8 in the path" 400 "$(hp /v1/objects/fraud/dev/%ff%fe)"
hc "raw high bytes in the path" "400|404" "$(raw "b'GET /v1/objects/fraud/dev/\xff\xfe HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer $ADMIN\r\n\r\n'")"
hc "%00 in the path" 400 "$(hp /v1/objects/fraud/dev/sec%00ret)"
hc "CRLF in the path" 400 "$(hp /v1/objects/fraud/dev/x%0d%0aSet-Cookie:%20a=b)"
hc "tab in the path" 400 "$(hp /v1/objects/fraud/dev/x%09y)"
hc "unknown environment" 400 "$(hp /v1/objects/fraud/qa/secret)"
hc "upper-case project" 400 "$(hp /v1/objects/Fraud/dev/secret)"
hc "segment of 129 bytes" 400 "$(hp "/v1/objects/fraud/dev/$(head -c 129 /dev/zero | tr '\0' n)")"
hc "version 0" 400 "$(hp /v1/objects/fraud/dev/secret@0)"
hc "negative version" 400 "$(hp /v1/objects/fraud/dev/secret@-1)"
hc "version beyond 2^53" 400 "$(hp /v1/objects/fraud/dev/secret@9007199254740993)"
hc "version overflowing 64 bits" 400 "$(hp /v1/objects/fraud/dev/secret@99999999999999999999999)"
hc "short content address" 400 "$(hp /v1/objects/fraud/dev/secret@sha256:abc)"
hc "two @ in a reference" 400 "$(hp /v1/objects/fraud/dev/secret@latest@1)"
hc "version with leading plus" 400 "$(hp /v1/objects/fraud/dev/secret@+1)"
hc "push to a reference with a version" 400 "$(api PUT /v1/objects/fraud/dev/secret@7 "${AA[@]}" "${O[@]}" --data-binary x)"

# ---------------------------------------------- query strings, duplicates
log "query strings and duplicate parameters"
hp2() { api PUT "$1" "${AA[@]}" "${O[@]}" --data-binary 'hostile'; }
hc "duplicate kind" 400 "$(hp2 '/v1/objects/fraud/dev/q?kind=model&kind=dataset')"
hc "duplicate sensitivity" 400 "$(hp2 '/v1/objects/fraud/dev/q?sensitivity=public&sensitivity=restricted')"
hc "duplicate message" 400 "$(hp2 '/v1/objects/fraud/dev/q?message=a&message=b')"
hc "duplicate prefix" 400 "$(hp '/v1/list?prefix=fraud/&prefix=credit/')"
hc "CRLF injection in the message" 400 "$(hp2 '/v1/objects/fraud/dev/q?message=a%0d%0aX-Injected:%20yes')"
hc "CRLF injection in a tag" 400 "$(hp2 '/v1/objects/fraud/dev/q?tag=a=b%0d%0aSet-Cookie:%20c')"
hc "%00 in the kind" 400 "$(hp2 '/v1/objects/fraud/dev/q?kind=mo%00del')"
hc "invalid UTF-8 in a tag" 400 "$(hp2 '/v1/objects/fraud/dev/q?tag=a=%ff')"
hc "unknown kind" 400 "$(hp2 '/v1/objects/fraud/dev/q?kind=../../x')"
hc "parent that is not a reference" 400 "$(hp2 '/v1/objects/fraud/dev/q?parent=../../etc/passwd')"
q=$(python3 -c "print('&'.join('tag=k%d=v' % i for i in range(200)))")
hc "200 tags" 400 "$(hp2 "/v1/objects/fraud/dev/q?$q")"
q=$(python3 -c "print('&'.join('parent=fraud/dev/secret@1' for i in range(100)))")
hc "100 parents" 400 "$(hp2 "/v1/objects/fraud/dev/q?$q")"
hc "prefix with traversal" 400 "$(hp '/v1/list?prefix=../')"
hc "prefix with CRLF" 400 "$(hp '/v1/list?prefix=fraud%0d%0a')"
hc "prefix with %00" 400 "$(hp '/v1/list?prefix=fraud%00')"
hc "message of 2 KB" 400 "$(hp2 "/v1/objects/fraud/dev/q?message=$(head -c 2000 /dev/zero | tr '\0' m)")"
H=$(curl -s --path-as-is --cacert "$CA" -D - -o /dev/null "${AA[@]}" \
    "$SERVER_URL/v1/list?prefix=a%0d%0aSet-Cookie:%20x=y" | tr -d '\r')
hc "no header injected into the response" ok "$(printf '%s' "$H" | grep -qi '^set-cookie' && echo injected || echo ok)"

# ----------------------------------------------------------- credentials
log "replayed, expired, revoked and forged credentials"
who() { api GET /v1/auth/whoami "$@"; }
hc "no credential" 401 "$(who)"
hc "Basic authentication" 401 "$(who -H 'Authorization: Basic YWRtaW46eA==')"
hc "bearer with no token" 401 "$(who -H 'Authorization: Bearer')"
hc "session replayed after logout" 401 "$(who -H "Authorization: Bearer $GONE")"
hc "revoked API token" 401 "$(who -H "Authorization: Bearer $REVOKED")"
hc "expired API token" 401 "$(who -H "Authorization: Bearer $EXPIRED")"
last=${ADMIN: -1}; [ "$last" = A ] && sub=B || sub=A
hc "session token with one character changed" 401 "$(who -H "Authorization: Bearer ${ADMIN%?}$sub")"
hc "session token truncated" 401 "$(who -H "Authorization: Bearer ${ADMIN%?????}")"
hc "session token extended" 401 "$(who -H "Authorization: Bearer ${ADMIN}A")"
hc "forged session token" 401 "$(who -H "Authorization: Bearer cfs_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')")"
hc "forged API token" 401 "$(who -H "Authorization: Bearer cfr_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')")"
hdr=$(printf '{"alg":"none","typ":"JWT"}' | base64 | tr '+/' '-_' | tr -d '=\n')
pl=$(printf '{"iss":"https://evil","sub":"admin","exp":9999999999}' | base64 | tr '+/' '-_' | tr -d '=\n')
hc "unsigned JWT (alg none)" 401 "$(who -H "Authorization: Bearer $hdr.$pl.")"
hdr=$(printf '{"alg":"HS256","typ":"JWT"}' | base64 | tr '+/' '-_' | tr -d '=\n')
hc "HS256 JWT signed with a guessed key" 401 "$(who -H "Authorization: Bearer $hdr.$pl.$(printf x | base64 | tr -d '=')")"
# Sent whole before the answer is read: a client that stops at its first
# send error (curl) may see the connection closed instead of the 431.
hc "token of 60 KB" "401|431" "$(raw "b'GET /v1/auth/whoami HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ' + b'a'*60000 + b'\r\n\r\n'")"
hc "CRLF in a bearer token" "401|400" "$(raw "b'GET /v1/auth/whoami HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\n\r\nGET /v1/list HTTP/1.1\r\nHost: a\r\n\r\n'")"
hc "wrong password" 401 "$(jb '{"user":"bob","password":"wrong-password-123"}')"
hc "unknown user" 401 "$(jb '{"user":"mallory","password":"wrong-password-123"}')"
hc "SQL in the user name" 401 "$(jb "{\"user\":\"admin' OR '1'='1\",\"password\":\"x' OR '1'='1\"}")"

# ------------------------------------------- cross-project access (IDOR)
log "cross-project access (bob may only read credit/*)"
hc "bob reads his own project" 200 "$(api GET /v1/artifacts/credit/dev/report "${LB[@]}")"
hc "bob reads fraud metadata" 404 "$(api GET /v1/artifacts/fraud/dev/secret "${LB[@]}")"
hc "bob downloads fraud content" 404 "$(api GET /v1/objects/fraud/dev/secret "${LB[@]}")"
hc "bob downloads by version" 404 "$(api GET /v1/objects/fraud/dev/secret@1 "${LB[@]}")"
hc "bob lists fraud versions" 404 "$(api GET /v1/versions/fraud/dev/secret "${LB[@]}")"
hc "bob pushes into fraud" 403 "$(api PUT /v1/objects/fraud/dev/secret "${LB[@]}" "${O[@]}" --data-binary x)"
hc "bob pushes into his own project (viewer)" 403 "$(api PUT /v1/objects/credit/dev/report "${LB[@]}" "${O[@]}" --data-binary x)"
hc "bob deletes a fraud version" "403|404" "$(api DELETE /v1/objects/fraud/dev/secret@1 "${LB[@]}")"
hc "bob relabels a fraud artifact" "403|404" "$(api PATCH /v1/artifacts/fraud/dev/secret "${LB[@]}" "${J[@]}" --data-binary '{"sensitivity":"public"}')"
L=$(api GET '/v1/list?prefix=fraud/' "${LB[@]}"; api_body)
hc "bob's listing of fraud/ hides it" ok "$(printf '%s' "$L" | grep -q secret && echo leaked || echo ok)"
hc "bob lists users" 403 "$(api GET /v1/users "${LB[@]}")"
hc "bob shows alice" 403 "$(api GET /v1/users/alice "${LB[@]}")"
hc "bob disables admin" 403 "$(api POST /v1/users/admin/disable "${LB[@]}")"
hc "bob sets alice's password" 403 "$(api PUT /v1/users/alice/password "${LB[@]}" "${J[@]}" --data-binary '{"password":"Bob-owns-alice-now-1"}')"
hc "bob binds himself to admin" 403 "$(api POST /v1/roles/admin/bindings "${LB[@]}" "${J[@]}" --data-binary '{"principal":"user:bob"}')"
hc "bob writes a policy" 403 "$(api PUT /v1/policies/mine "${LB[@]}" "${J[@]}" --data-binary '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}')"
hc "bob reads the audit log" 403 "$(api GET /v1/audit/events "${LB[@]}")"
hc "bob revokes the admin's token" "403|404" "$(api DELETE "/v1/tokens/$RID" "${LB[@]}")"
hc "alice reads a restricted version above her clearance" 404 "$(api GET /v1/objects/fraud/dev/restricted "${LA[@]}")"
hc "alice reads credit (outside her scope)" 404 "$(api GET /v1/artifacts/credit/dev/report "${LA[@]}")"
hc "alice tombstones in credit" "403|404" "$(api DELETE /v1/objects/credit/dev/report@1 "${LA[@]}")"
hc "alice declassifies the restricted artifact" "403|404" "$(api PATCH /v1/artifacts/fraud/dev/restricted "${LA[@]}" "${J[@]}" --data-binary '{"sensitivity":"public"}')"
hc "alice lists users" 403 "$(api GET /v1/users "${LA[@]}")"

# ---------------------------------------------------------- policies
log "oversized and malformed policies"
pp() { api PUT "/v1/policies/$1" "${AA[@]}" "${J[@]}" --data-binary "$2"; }
python3 -c "
import json
print(json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Deny','Action':'artifact:Read','Resource':'x%d/*' % i} for i in range(5000)]}))" >"$E2E_ROOT/p1.json"
hc "policy of 5000 statements" "400|413" "$(api PUT /v1/policies/huge "${AA[@]}" "${J[@]}" --data-binary @"$E2E_ROOT/p1.json")"
python3 -c "
import json
print(json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Deny','Action':'artifact:Read','Resource':'r'*70000}]}))" >"$E2E_ROOT/p2.json"
hc "policy over 64 KB" "400|413" "$(api PUT /v1/policies/huge "${AA[@]}" "${J[@]}" --data-binary @"$E2E_ROOT/p2.json")"
python3 -c "
import json
print(json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Deny','Action':['a:%d' % i for i in range(1000)],'Resource':'*'}]}))" >"$E2E_ROOT/p3.json"
hc "policy with 1000 actions" "400|413" "$(api PUT /v1/policies/huge "${AA[@]}" "${J[@]}" --data-binary @"$E2E_ROOT/p3.json")"
hc "policy with a 2 KB resource pattern" 400 "$(pp long "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"$(head -c 2000 /dev/zero | tr '\0' r)\"}]}")"
hc "policy with an unknown operator" 400 "$(pp bad '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEvil":{"a":"b"}}}]}')"
hc "policy with Effect Maybe" 400 "$(pp bad '{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}')"
hc "policy that is a JSON array" 400 "$(pp bad '[]')"
hc "policy with a nested condition bomb" "400|413" "$(pp bad "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":$(python3 -c "print('{\"a\":'*3000 + '1' + '}'*3000)")}]}")"
hc "policy name with traversal" "400|404" "$(pp ../../etc '{"Version":"2012-10-17","Statement":[]}')"
# A name longer than the limit is invalid input: 400.
hc "policy name of 300 bytes" "400" "$(pp "$(head -c 300 /dev/zero | tr '\0' p)" '{"Version":"2012-10-17","Statement":[]}')"

# ---------------------------------------------- keep-alive and pipelining
# Small answers leave as one TLS record, sent when the request completes
# (http/server.c); larger ones as libmicrohttpd sends them. On one
# connection: small, large (70 000 bytes) and small answers in turn, each
# complete and right, none waiting for the kernel's 200 ms TCP cork timer.
log "keep-alive and pipelining"
META_PATH=/v1/artifacts/fraud/dev/secret
BLOB_PATH=/v1/objects/fraud/dev/secret
KA_PATHS=()
for i in $(seq 1 15); do KA_PATHS+=("$META_PATH" "$BLOB_PATH" /v1/health); done
python3 "$E2E_ROOT/raw.py" keepalive "$SERVER_PORT" "$CA" "$ADMIN" "${KA_PATHS[@]}" >"$E2E_ROOT/ka.out" 2>&1
BLOB_SUM=$(sha256sum "$E2E_ROOT/a.bin" | cut -c1-12)
KA_ANSWERS=$(head -1 "$E2E_ROOT/ka.out")
KA_MS=$(sed -n 2p "$E2E_ROOT/ka.out")
hc "45 keep-alive answers, all 200" 45 "$(tr ' ' '\n' <<<"$KA_ANSWERS" | grep -c '^200:')"
hc "the 15 downloads on it are the artifact" 15 "$(tr ' ' '\n' <<<"$KA_ANSWERS" | grep -c "^200:$BLOB_SUM\$")"
hc "the 15 metadata answers on it are identical" 1 "$(tr ' ' '\n' <<<"$KA_ANSWERS" | sed -n '1~3p' | sort -u | wc -l)"
hc "45 keep-alive answers in under 4.5 s (${KA_MS:-?} ms)" ok "$([ "${KA_MS:-99999}" -lt 4500 ] && echo ok || echo slow)"
# A client that pipelines and reads gets every answer, in order.
hc "50 pipelined requests, all answered" "50 all" "$(python3 "$E2E_ROOT/raw.py" pipeline "$SERVER_PORT" "$CA" 50 /v1/health 0 0)"
# TLS records cut at arbitrary places (the server reads ahead into a buffer).
hc "handshake and request arriving 7 bytes at a time" 200 "$(python3 "$E2E_ROOT/raw.py" dribble "$SERVER_PORT" "$CA" 7)"
hc "handshake and request arriving 1 byte at a time" 200 "$(python3 "$E2E_ROOT/raw.py" dribble "$SERVER_PORT" "$CA" 1)"
# One that pipelines and does not read fills its socket: the server ends
# that connection rather than block a worker thread, and serves the others.
python3 "$E2E_ROOT/raw.py" pipeline "$SERVER_PORT" "$CA" 20000 /v1/health 4 4096 >"$E2E_ROOT/pipe.out" 2>&1 &
PIPE=$!
bg_track "$PIPE"
sleep 1
t0=$(date +%s%N)
hc "health while a client pipelines without reading" 200 "$(api GET /v1/health)"
hc "an authorized read meanwhile" 200 "$(api GET "$META_PATH" "${AA[@]}")"
t1=$(date +%s%N)
hc "those answers took under 3 s" ok "$([ $(((t1 - t0) / 1000000)) -lt 3000 ] && echo ok || echo slow)"
wait "$PIPE" 2>/dev/null
hc "the non-reading client got complete answers, then its connection ended" ok \
    "$(grep -qE '^[0-9]+ (end|all)$' "$E2E_ROOT/pipe.out" && echo ok || cat "$E2E_ROOT/pipe.out")"
log "pipelining client without reading: $(cat "$E2E_ROOT/pipe.out") of 20000 answers"

# --------------------------------------------------------- slow clients
log "slow clients"
python3 "$E2E_ROOT/raw.py" slow "$SERVER_PORT" "$CA" 60 6 >"$E2E_ROOT/slow.out" 2>&1 &
SLOW=$!
bg_track "$SLOW"
python3 "$E2E_ROOT/raw.py" slowbody "$SERVER_PORT" "$CA" \
    "$(printf 'POST /v1/auth/login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n')" 6 \
    >/dev/null 2>&1 &
SLOWB=$!
bg_track "$SLOWB"
for i in $(seq 1 50); do
    grep -q open: "$E2E_ROOT/slow.out" 2>/dev/null && break
    sleep 0.2
done
t0=$(date +%s%N)
hc "health while 60 clients trickle headers" 200 "$(api GET /v1/health)"
hc "an authorized read while clients trickle" 200 "$(api GET /v1/artifacts/fraud/dev/secret "${AA[@]}")"
t1=$(date +%s%N)
hc "those answers took under 5 s" ok "$([ $(((t1 - t0) / 1000000)) -lt 5000 ] && echo ok || echo slow)"
wait "$SLOW" "$SLOWB" 2>/dev/null
hc "slow clients held their connections" ok "$(grep -q held "$E2E_ROOT/slow.out" && echo ok || cat "$E2E_ROOT/slow.out")"
hc "health after the slow clients" 200 "$(api GET /v1/health)"

# ------------------------------------------------------------ verdict
log "the store after $CASES hostile cases"
AFTER=$(store_digest)
assert_eq "$AFTER" "$BEFORE" "the store's digest is unchanged by the attack"
check "at least 100 hostile cases ran ($CASES)" test "$CASES" -ge 100
assert_eq "$(api GET /v1/health)" 200 "the server still answers"
assert_eq "$(find "$DATA/blobs/tmp" -type f | wc -l)" 0 "no temporary upload left behind"
expect_ok coffer audit verify --data "$DATA"
check_not "no sanitizer report in the server log" grep -qE 'AddressSanitizer|runtime error|LeakSanitizer' "$SERVER_LOG"
run_cmd server_stop
assert_eq "$LAST_RC" 0 "the server shuts down cleanly (no leak or sanitizer report)"
expect_ok coffer fsck --data "$DATA" --deep
e2e_finish
