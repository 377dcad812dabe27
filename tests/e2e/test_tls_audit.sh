#!/usr/bin/env bash
# TLS audit of a live server with sslscan (Debian) and openssl: no protocol
# below TLS 1.2, only AEAD ciphers with forward secrecy, no compression, no
# insecure renegotiation, not vulnerable to Heartbleed, and a certificate
# that chains to the data directory's CA and is valid for the names served.
#
# sslscan 2.0's own TLS 1.2 probe does not complete a handshake with
# GnuTLS (it reports TLS 1.2 as disabled although real clients negotiate
# it), so TLS 1.2 and its cipher suites are enumerated with openssl
# s_client, one suite at a time, over every suite OpenSSL knows.
. "$(dirname "$0")/lib.sh"
e2e_init tls_audit

if ! command -v sslscan >/dev/null 2>&1; then
    fail "sslscan is installed (bash scripts/install-deps.sh)"
    e2e_finish
fi
DATA="$E2E_ROOT/data"
run_cmd init_data "$DATA" 'Adm1n-Tls-Audit-Password!'
assert_eq "$LAST_RC" 0 "init"
if ! server_start "$DATA"; then
    fail "server starts"
    e2e_finish
fi
CA="$DATA/tls/ca.pem"
HP="127.0.0.1:$SERVER_PORT"

log "sslscan"
sslscan --no-colour --sni-name=localhost "$HP" >"$E2E_ROOT/sslscan.txt" 2>&1
SCAN=$(cat "$E2E_ROOT/sslscan.txt")
for p in SSLv2 SSLv3 TLSv1.0 TLSv1.1; do
    assert_contains "$SCAN" "$(printf '%-9s disabled' "$p")" "sslscan: $p is disabled"
done
assert_contains "$SCAN" "TLSv1.3   enabled" "sslscan: TLS 1.3 is enabled"
assert_not_contains "$SCAN" "Compression enabled" "sslscan: no TLS compression"
assert_not_contains "$SCAN" "Insecure session renegotiation supported" "sslscan: no insecure renegotiation"
hb=$(grep -i 'vulnerable to heartbleed' "$E2E_ROOT/sslscan.txt" | grep -vi 'not vulnerable' || true)
assert_eq "$hb" "" "sslscan: not vulnerable to Heartbleed"
accepted=$(grep -E '^(Preferred|Accepted) ' "$E2E_ROOT/sslscan.txt" | awk '{print $2, $5}')
check "sslscan: some cipher suites are accepted" test -n "$accepted"
bad=$(printf '%s\n' "$accepted" | grep -vE '(GCM|CHACHA20|CCM)' || true)
assert_eq "$bad" "" "sslscan: every accepted suite is AEAD"

log "openssl: protocol floor"
probe() { # probe ARGS...: 0 if a handshake completes
    echo | timeout 10 openssl s_client -connect "$HP" -servername localhost -CAfile "$CA" \
        "$@" >"$E2E_ROOT/probe.out" 2>&1 && grep -q 'Cipher is [A-Z]' "$E2E_ROOT/probe.out" &&
        ! grep -q 'Cipher is (NONE)' "$E2E_ROOT/probe.out"
}
check_not "TLS 1.0 is refused" probe -tls1 -cipher 'ALL:@SECLEVEL=0'
check_not "TLS 1.1 is refused" probe -tls1_1 -cipher 'ALL:@SECLEVEL=0'
check "TLS 1.2 is accepted" probe -tls1_2
check "TLS 1.3 is accepted" probe -tls1_3

log "openssl: every TLS 1.2 suite"
n_ok=0
n_bad=0
for c in $(openssl ciphers -s -tls1_2 'ALL:COMPLEMENTOFALL:@SECLEVEL=0' | tr ':' ' '); do
    case "$c" in TLS_*) continue ;; esac # TLS 1.3 suites
    if probe -tls1_2 -cipher "$c:@SECLEVEL=0"; then
        n_ok=$((n_ok + 1))
        case "$c" in
        ECDHE-*GCM* | ECDHE-*CHACHA20* | DHE-*GCM* | DHE-*CHACHA20*) ;;
        *)
            n_bad=$((n_bad + 1))
            log "accepted a suite without AEAD or forward secrecy: $c"
            ;;
        esac
    fi
done
check "TLS 1.2: some suites are accepted ($n_ok)" test "$n_ok" -gt 0
assert_eq "$n_bad" 0 "TLS 1.2: only ECDHE/DHE with GCM or ChaCha20-Poly1305 is accepted"
for c in TLS_AES_128_CCM_8_SHA256; do
    check_not "TLS 1.3: $c (short tag) is refused" probe -tls1_3 -ciphersuites "$c"
done

log "compression and renegotiation"
probe -tls1_2
assert_contains "$(cat "$E2E_ROOT/probe.out")" "Compression: NONE" "TLS 1.2 session without compression"
assert_contains "$(cat "$E2E_ROOT/probe.out")" "Secure Renegotiation IS supported" \
    "TLS 1.2 renegotiation is the secure kind only (RFC 5746)"

log "certificate"
openssl s_client -connect "$HP" -servername localhost -showcerts </dev/null 2>/dev/null |
    openssl x509 -outform PEM >"$E2E_ROOT/served.pem" 2>/dev/null
check "the served certificate is the one under tls/" cmp -s \
    <(openssl x509 -in "$E2E_ROOT/served.pem" -noout -fingerprint -sha256) \
    <(openssl x509 -in "$DATA/tls/server.pem" -noout -fingerprint -sha256)
expect_ok openssl verify -CAfile "$CA" -purpose sslserver "$E2E_ROOT/served.pem"
SAN=$(openssl x509 -in "$E2E_ROOT/served.pem" -noout -ext subjectAltName 2>/dev/null)
assert_contains "$SAN" "DNS:localhost" "SAN names localhost"
assert_contains "$SAN" "IP Address:127.0.0.1" "SAN names 127.0.0.1 (the address served)"
check "valid for localhost" openssl verify -CAfile "$CA" -verify_hostname localhost "$E2E_ROOT/served.pem"
check "valid for 127.0.0.1" openssl verify -CAfile "$CA" -verify_ip 127.0.0.1 "$E2E_ROOT/served.pem"
check_not "not valid for another name" openssl verify -CAfile "$CA" -verify_hostname evil.example "$E2E_ROOT/served.pem"
check "not expired and valid for at least 30 more days" \
    openssl x509 -in "$E2E_ROOT/served.pem" -noout -checkend $((30 * 86400))
days=$(python3 -c "
import subprocess, datetime
out = subprocess.run(['openssl','x509','-in','$E2E_ROOT/served.pem','-noout','-startdate','-enddate'],
                     capture_output=True, text=True).stdout.split('\n')
f = lambda s: datetime.datetime.strptime(s.split('=',1)[1].replace('  ',' '), '%b %d %H:%M:%S %Y %Z')
print((f(out[1]) - f(out[0])).days)")
check "certificate lifetime at most 825 days ($days)" test "$days" -le 825
check_not "no SHA-1 signature" sh -c "openssl x509 -in '$E2E_ROOT/served.pem' -noout -text | grep -qi 'sha1With'"
check "curl verifies the server with the data directory's CA" \
    curl -s -o /dev/null --fail --cacert "$CA" "https://localhost:$SERVER_PORT/v1/health"

# RFC 8446 4.6.3: a KeyUpdate asking for the peer's update is answered with
# one before the next application data. s_client's "K" command sends such
# a KeyUpdate; the answer to the request that follows must come after the
# server's own (small answers are otherwise sent from a corked session).
log "TLS 1.3 KeyUpdate"
(printf 'K\n'; sleep 0.5; printf 'GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'; sleep 1) |
    timeout 10 openssl s_client -connect "$HP" -servername localhost -tls1_3 -msg -CAfile "$CA" \
        >"$E2E_ROOT/keyupdate.out" 2>&1
KU=$(grep -aE 'KeyUpdate|^HTTP/1.1' "$E2E_ROOT/keyupdate.out" | tr -d '\r' | sed -E 's/^(>>>|<<<) .*KeyUpdate$/\1 KeyUpdate/' | tr '\n' '|')
assert_eq "$KU" ">>> KeyUpdate|<<< KeyUpdate|HTTP/1.1 200 OK|" \
    "the client's KeyUpdate is answered with the server's, then the request"
e2e_finish
