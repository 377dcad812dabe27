#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <qrencode.h>

#include "authn/totp.h"

static const uint8_t seed20[] = "12345678901234567890";
static const uint8_t seed32[] = "12345678901234567890123456789012";
static const uint8_t seed64[] = "1234567890123456789012345678901234567890123456789012345678901234";

/* RFC 6238 Appendix B. */
static void test_rfc6238_vectors(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *sha1, *sha256, *sha512;
    } v[] = {
        {59, "94287082", "46119246", "90693936"},
        {1111111109, "07081804", "68084774", "25091201"},
        {1111111111, "14050471", "67062674", "99943326"},
        {1234567890, "89005924", "91819424", "93441116"},
        {2000000000, "69279037", "90698825", "38618901"},
        {20000000000, "65353130", "77737706", "47863826"},
    };
    char out[16];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint64_t step = (uint64_t)v[i].t / 30;
        assert_int_equal(totp_code(seed20, 20, step, 8, "SHA1", out, sizeof out), 0);
        assert_string_equal(out, v[i].sha1);
        assert_int_equal(totp_code(seed32, 32, step, 8, "SHA256", out, sizeof out), 0);
        assert_string_equal(out, v[i].sha256);
        assert_int_equal(totp_code(seed64, 64, step, 8, "sha512", out, sizeof out), 0);
        assert_string_equal(out, v[i].sha512);
    }
}

/* RFC 4226 Appendix D. */
static void test_rfc4226_vectors(void **state)
{
    (void)state;
    static const char *const expect[] = {"755224", "287082", "359152", "969429", "338314",
                                         "254676", "287922", "162583", "399871", "520489"};
    char out[8];
    for (uint64_t c = 0; c < 10; c++) {
        assert_int_equal(totp_code(seed20, 20, c, 6, NULL, out, sizeof out), 0);
        assert_string_equal(out, expect[c]);
    }
}

static void test_code_bad_args(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(totp_code(seed20, 20, 1, 6, "MD5", out, sizeof out), -1);
    assert_string_equal(out, "");
    assert_int_equal(totp_code(seed20, 20, 1, 5, "SHA1", out, sizeof out), -1);
    assert_int_equal(totp_code(seed20, 20, 1, 9, "SHA1", out, sizeof out), -1);
    assert_int_equal(totp_code(seed20, 20, 1, 6, "SHA1", out, 6), -1);
    assert_int_equal(totp_code(seed20, 0, 1, 6, "SHA1", out, sizeof out), -1);
    assert_int_equal(totp_code(NULL, 20, 1, 6, "SHA1", out, sizeof out), -1);
}

static void code_at(uint64_t step, char out[8])
{
    assert_int_equal(totp_code(seed20, 20, step, 6, "SHA1", out, 8), 0);
}

static void test_verify_window(void **state)
{
    (void)state;
    const int64_t now = 1111111111;
    const uint64_t step = (uint64_t)now / 30;
    char code[8];
    uint64_t matched = 0;
    for (int d = -1; d <= 1; d++) {
        code_at(step + (uint64_t)(int64_t)d, code);
        matched = 0;
        assert_int_equal(totp_verify(seed20, 20, code, now, 30, 6, 1, 0, &matched), ERR_OK);
        assert_true(matched == step + (uint64_t)(int64_t)d);
    }
    code_at(step + 2, code);
    assert_int_equal(totp_verify(seed20, 20, code, now, 30, 6, 1, 0, &matched),
                     ERR_UNAUTHENTICATED);
    code_at(step - 2, code);
    assert_int_equal(totp_verify(seed20, 20, code, now, 30, 6, 1, 0, &matched),
                     ERR_UNAUTHENTICATED);
    /* With no skew only the current step is accepted. */
    code_at(step - 1, code);
    assert_int_equal(totp_verify(seed20, 20, code, now, 30, 6, 0, 0, &matched),
                     ERR_UNAUTHENTICATED);
    code_at(step, code);
    assert_int_equal(totp_verify(seed20, 20, code, now, 30, 6, 0, 0, &matched), ERR_OK);
    /* A wider window reaches further. */
    code_at(step - 3, code);
    assert_int_equal(totp_verify(seed20, 20, code, now, 30, 6, 3, 0, &matched), ERR_OK);
    assert_true(matched == step - 3);
}

static void test_verify_replay(void **state)
{
    (void)state;
    const int64_t now = 1234567890;
    const uint64_t step = (uint64_t)now / 30;
    char code[8];
    uint64_t matched = 0;
    code_at(step, code);
    assert_int_equal(totp_verify(seed20, 20, code, now, 30, 6, 1, 0, &matched), ERR_OK);
    assert_true(matched == step);
    uint64_t last = matched;
    /* The same code again, even a few seconds later, is refused. */
    assert_int_equal(totp_verify(seed20, 20, code, now, 30, 6, 1, last, &matched),
                     ERR_UNAUTHENTICATED);
    assert_int_equal(totp_verify(seed20, 20, code, now + 5, 30, 6, 1, last, &matched),
                     ERR_UNAUTHENTICATED);
    /* An older code still inside the window is refused too. */
    code_at(step - 1, code);
    assert_int_equal(totp_verify(seed20, 20, code, now, 30, 6, 1, last, &matched),
                     ERR_UNAUTHENTICATED);
    /* The next step's code is accepted once. */
    code_at(step + 1, code);
    assert_int_equal(totp_verify(seed20, 20, code, now + 30, 30, 6, 1, last, &matched), ERR_OK);
    assert_true(matched == step + 1);
}

static void test_verify_rejects_malformed(void **state)
{
    (void)state;
    const int64_t now = 1111111111;
    char code[8];
    code_at((uint64_t)now / 30, code);
    char buf[16];
    uint64_t matched = 0;
    /* Sanity: the well-formed code passes. */
    assert_int_equal(totp_verify(seed20, 20, code, now, 30, 6, 1, 0, &matched), ERR_OK);
    snprintf(buf, sizeof buf, "%s ", code);
    assert_int_equal(totp_verify(seed20, 20, buf, now, 30, 6, 1, 0, NULL), ERR_UNAUTHENTICATED);
    snprintf(buf, sizeof buf, " %s", code);
    assert_int_equal(totp_verify(seed20, 20, buf, now, 30, 6, 1, 0, NULL), ERR_UNAUTHENTICATED);
    snprintf(buf, sizeof buf, "%.5s", code);
    assert_int_equal(totp_verify(seed20, 20, buf, now, 30, 6, 1, 0, NULL), ERR_UNAUTHENTICATED);
    snprintf(buf, sizeof buf, "%s0", code);
    assert_int_equal(totp_verify(seed20, 20, buf, now, 30, 6, 1, 0, NULL), ERR_UNAUTHENTICATED);
    snprintf(buf, sizeof buf, "%.5sa", code);
    assert_int_equal(totp_verify(seed20, 20, buf, now, 30, 6, 1, 0, NULL), ERR_UNAUTHENTICATED);
    assert_int_equal(totp_verify(seed20, 20, "", now, 30, 6, 1, 0, NULL), ERR_UNAUTHENTICATED);
    assert_int_equal(totp_verify(seed20, 20, "-12345", now, 30, 6, 1, 0, NULL),
                     ERR_UNAUTHENTICATED);
    /* Bad parameters. */
    assert_int_equal(totp_verify(seed20, 20, code, -1, 30, 6, 1, 0, NULL), ERR_INVALID);
    assert_int_equal(totp_verify(seed20, 20, code, now, 0, 6, 1, 0, NULL), ERR_INVALID);
    assert_int_equal(totp_verify(seed20, 20, code, now, 30, 4, 1, 0, NULL), ERR_INVALID);
    assert_int_equal(totp_verify(seed20, 20, code, now, 30, 6, 11, 0, NULL), ERR_INVALID);
    assert_int_equal(totp_verify(seed20, 20, NULL, now, 30, 6, 1, 0, NULL), ERR_INVALID);
}

static void test_verify_early_steps(void **state)
{
    (void)state;
    /* At step 0 the window must not wrap around below zero. */
    char code[8];
    uint64_t matched = 99;
    code_at(1, code);
    assert_int_equal(totp_verify(seed20, 20, code, 10, 30, 6, 1, 0, &matched), ERR_OK);
    assert_true(matched == 1);
}

static void test_base32_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out, *padded;
    } v[] = {
        {"", "", ""},
        {"f", "MY", "MY======"},
        {"fo", "MZXQ", "MZXQ===="},
        {"foo", "MZXW6", "MZXW6==="},
        {"foob", "MZXW6YQ", "MZXW6YQ="},
        {"fooba", "MZXW6YTB", "MZXW6YTB"},
        {"foobar", "MZXW6YTBOI", "MZXW6YTBOI======"},
    };
    char enc[32];
    uint8_t dec[32];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n = strlen(v[i].in);
        assert_int_equal(totp_base32_encode((const uint8_t *)v[i].in, n, enc, sizeof enc),
                         (int)strlen(v[i].out));
        assert_string_equal(enc, v[i].out);
        assert_int_equal(totp_base32_decode(v[i].out, strlen(v[i].out), dec, sizeof dec), (int)n);
        assert_memory_equal(dec, v[i].in, n);
        assert_int_equal(totp_base32_decode(v[i].padded, strlen(v[i].padded), dec, sizeof dec),
                         (int)n);
        assert_memory_equal(dec, v[i].in, n);
    }
    /* Lower case is accepted. */
    assert_int_equal(totp_base32_decode("mzxw6ytboi", 10, dec, sizeof dec), 6);
    assert_memory_equal(dec, "foobar", 6);
    /* Bad characters, impossible lengths, non-zero trailing bits, spaces. */
    assert_int_equal(totp_base32_decode("MZXW1", 5, dec, sizeof dec), -1);
    assert_int_equal(totp_base32_decode("M", 1, dec, sizeof dec), -1);
    assert_int_equal(totp_base32_decode("MZX", 3, dec, sizeof dec), -1);
    assert_int_equal(totp_base32_decode("MZ", 2, dec, sizeof dec), -1);
    assert_int_equal(totp_base32_decode("MZXW 6YTB", 9, dec, sizeof dec), -1);
    /* Output capacity is enforced. */
    assert_int_equal(totp_base32_decode("MZXW6YTBOI", 10, dec, 5), -1);
    assert_int_equal(totp_base32_encode((const uint8_t *)"foobar", 6, enc, 10), -1);
    assert_int_equal(totp_base32_encode((const uint8_t *)"foobar", 6, enc, 11), 10);
}

static void test_base32_round_trip(void **state)
{
    (void)state;
    uint8_t secret[64], back[64];
    char enc[128];
    for (size_t len = TOTP_SECRET_MIN_LEN; len <= TOTP_SECRET_MAX_LEN; len++) {
        assert_int_equal(totp_generate_secret(secret, len), ERR_OK);
        int n = totp_base32_encode(secret, len, enc, sizeof enc);
        assert_true(n > 0);
        assert_int_equal(totp_base32_decode(enc, (size_t)n, back, sizeof back), (int)len);
        assert_memory_equal(secret, back, len);
    }
}

static void test_generate_secret(void **state)
{
    (void)state;
    uint8_t a[TOTP_SECRET_LEN], b[TOTP_SECRET_LEN];
    assert_int_equal(totp_generate_secret(a, sizeof a), ERR_OK);
    assert_int_equal(totp_generate_secret(b, sizeof b), ERR_OK);
    assert_memory_not_equal(a, b, sizeof a);
    assert_int_equal(totp_generate_secret(a, 8), ERR_INVALID);
    assert_int_equal(totp_generate_secret(a, 65), ERR_INVALID);
}

static void test_uri(void **state)
{
    (void)state;
    char uri[512];
    assert_int_equal(totp_uri(seed20, 20, "Coffer Corp", "alice@example.com", uri, sizeof uri),
                     ERR_OK);
    assert_string_equal(uri, "otpauth://totp/Coffer%20Corp:alice%40example.com"
                             "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Coffer%20Corp"
                             "&algorithm=SHA1&digits=6&period=30");
    assert_int_equal(totp_uri(seed20, 20, "Coffer", "b\xc3\xa9&a=1?x/y", uri, sizeof uri), ERR_OK);
    assert_string_equal(uri, "otpauth://totp/Coffer:b%C3%A9%26a%3D1%3Fx%2Fy"
                             "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Coffer"
                             "&algorithm=SHA1&digits=6&period=30");
    assert_int_equal(totp_uri(seed20, 20, "Co:ffer", "alice", uri, sizeof uri), ERR_INVALID);
    assert_int_equal(totp_uri(seed20, 20, "Coffer", "al:ice", uri, sizeof uri), ERR_INVALID);
    assert_int_equal(totp_uri(seed20, 20, "", "alice", uri, sizeof uri), ERR_INVALID);
    assert_int_equal(totp_uri(seed20, 20, "Coffer", "a\nb", uri, sizeof uri), ERR_INVALID);
    assert_int_equal(totp_uri(seed20, 20, "Coffer", "alice", uri, 40), ERR_TOO_LARGE);
    assert_string_equal(uri, "");
}

/* Counts UTF-8 code points in s[0..n). */
static size_t utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            k++;
    }
    return k;
}

static void test_qr_terminal(void **state)
{
    (void)state;
    char uri[512];
    assert_int_equal(totp_uri(seed20, 20, "Coffer", "alice", uri, sizeof uri), ERR_OK);
    QRcode *ref = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    assert_non_null(ref);
    const size_t width = (size_t)ref->width;
    QRcode_free(ref);

    char *qr = totp_qr_terminal(uri);
    assert_non_null(qr);
    const size_t total = width + 4;
    size_t lines = 0;
    const char *p = qr;
    const char *line1 = NULL;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        assert_int_equal(utf8_len(p, (size_t)(nl - p)), total);
        for (const char *c = p; c < nl; c++) {
            /* Only spaces and the three block characters. */
            if (*c == ' ')
                continue;
            assert_int_equal((unsigned char)c[0], 0xe2);
            assert_int_equal((unsigned char)c[1], 0x96);
            assert_true((unsigned char)c[2] == 0x80 || (unsigned char)c[2] == 0x84 ||
                        (unsigned char)c[2] == 0x88);
            c += 2;
        }
        if (lines == 1)
            line1 = p;
        lines++;
        p = nl + 1;
    }
    assert_int_equal(lines, (width + 5) / 2);
    /* The first line is quiet zone only: light on both rows. */
    for (size_t i = 0; i < total; i++)
        assert_memory_equal(qr + 3 * i, "\xe2\x96\x88", 3);
    /* Line 1 covers the top edge of the finder pattern (all dark) and its
     * second row (dark, five light, dark): x=2 is dark over dark (space),
     * x=3 is dark over light (lower half block). */
    assert_non_null(line1);
    assert_memory_equal(line1, "\xe2\x96\x88\xe2\x96\x88 \xe2\x96\x84", 10);
    free(qr);

    assert_null(totp_qr_terminal(NULL));
    assert_null(totp_qr_terminal(""));
    char *big = malloc(TOTP_QR_TEXT_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', TOTP_QR_TEXT_MAX + 1);
    big[TOTP_QR_TEXT_MAX + 1] = '\0';
    assert_null(totp_qr_terminal(big));
    free(big);
}

static void test_recovery_codes(void **state)
{
    (void)state;
    char codes[TOTP_RECOVERY_COUNT][16];
    assert_int_equal(totp_recovery_codes(codes), ERR_OK);
    for (int i = 0; i < TOTP_RECOVERY_COUNT; i++) {
        assert_int_equal(strlen(codes[i]), TOTP_RECOVERY_LEN);
        for (int k = 0; k < TOTP_RECOVERY_LEN; k++) {
            if (k == 4 || k == 9)
                assert_int_equal(codes[i][k], '-');
            else
                assert_non_null(strchr(TOTP_RECOVERY_ALPHABET, codes[i][k]));
        }
        for (int j = 0; j < i; j++)
            assert_string_not_equal(codes[i], codes[j]);
        char norm[16];
        assert_int_equal(totp_recovery_normalize(codes[i], norm), ERR_OK);
        assert_string_equal(norm, codes[i]);
    }
    /* 12 symbols of a 31-symbol alphabet: at least 50 bits. */
    assert_true(sizeof TOTP_RECOVERY_ALPHABET - 1 == 31);
    for (const char *a = "01ilo"; *a; a++)
        assert_null(strchr(TOTP_RECOVERY_ALPHABET, *a));
}

static void test_recovery_normalize(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(totp_recovery_normalize("ABCD EFGH-JKMN", out), ERR_OK);
    assert_string_equal(out, "abcd-efgh-jkmn");
    assert_int_equal(totp_recovery_normalize("abcdefghjkmn", out), ERR_OK);
    assert_string_equal(out, "abcd-efgh-jkmn");
    assert_int_equal(totp_recovery_normalize("abcd-efgh-jkm0", out), ERR_INVALID);
    assert_string_equal(out, "");
    assert_int_equal(totp_recovery_normalize("abcd-efgh-jkm", out), ERR_INVALID);
    assert_int_equal(totp_recovery_normalize("abcd-efgh-jkmnp", out), ERR_INVALID);
    assert_int_equal(totp_recovery_normalize("", out), ERR_INVALID);
}

/* Runs oathtool and returns its one-line output in out, or -1. */
static int run_oathtool(const char *args, char *out, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "oathtool %s 2>/dev/null", args);
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return -1;
    char *got = fgets(out, (int)cap, f);
    int st = pclose(f);
    if (got == NULL || st != 0)
        return -1;
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

static void test_oathtool_interop(void **state)
{
    (void)state;
    if (system("command -v oathtool >/dev/null 2>&1") != 0) {
        print_message("oathtool not installed (Debian package oathtool): interop "
                      "check skipped\n");
        skip();
    }
    static const int64_t times[] = {59, 1111111109, 1700000000, 1767225600, 2000000000, 4102444800};
    static const char *const algs[] = {"SHA1", "SHA256", "SHA512"};
    for (int round = 0; round < 3; round++) {
        uint8_t secret[TOTP_SECRET_LEN];
        char b32[64];
        assert_int_equal(totp_generate_secret(secret, sizeof secret), ERR_OK);
        assert_true(totp_base32_encode(secret, sizeof secret, b32, sizeof b32) > 0);
        for (size_t t = 0; t < sizeof times / sizeof times[0]; t++) {
            int digits = round == 1 ? 8 : 6;
            char args[256], theirs[32], ours[16];
            snprintf(args, sizeof args, "--totp=%s --base32 --digits=%d --now=@%lld %s",
                     algs[round], digits, (long long)times[t], b32);
            assert_int_equal(run_oathtool(args, theirs, sizeof theirs), 0);
            assert_int_equal(totp_code(secret, sizeof secret, (uint64_t)times[t] / 30, digits,
                                       algs[round], ours, sizeof ours),
                             0);
            assert_string_equal(ours, theirs);
            if (round == 0) {
                uint64_t matched = 0;
                assert_int_equal(
                    totp_verify(secret, sizeof secret, theirs, times[t], 30, 6, 1, 0, &matched),
                    ERR_OK);
                assert_true(matched == (uint64_t)times[t] / 30);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6238_vectors),
        cmocka_unit_test(test_rfc4226_vectors),
        cmocka_unit_test(test_code_bad_args),
        cmocka_unit_test(test_verify_window),
        cmocka_unit_test(test_verify_replay),
        cmocka_unit_test(test_verify_rejects_malformed),
        cmocka_unit_test(test_verify_early_steps),
        cmocka_unit_test(test_base32_vectors),
        cmocka_unit_test(test_base32_round_trip),
        cmocka_unit_test(test_generate_secret),
        cmocka_unit_test(test_uri),
        cmocka_unit_test(test_qr_terminal),
        cmocka_unit_test(test_recovery_codes),
        cmocka_unit_test(test_recovery_normalize),
        cmocka_unit_test(test_oathtool_interop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
