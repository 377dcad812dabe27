#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <argon2.h>
#include <cmocka.h>

#include "authn/password.h"

static int setup(void **state)
{
    (void)state;
    setenv("COFFER_ARGON2_MEMORY_KIB", "8192", 1);
    return 0;
}

static void test_round_trip(void **state)
{
    (void)state;
    char *enc = NULL;
    assert_int_equal(password_hash("correct horse battery staple", &enc), ERR_OK);
    assert_non_null(enc);
    assert_int_equal(strncmp(enc, "$argon2id$v=19$m=8192,t=2,p=1$", 30), 0);
    assert_int_equal(password_verify(enc, "correct horse battery staple"), 1);
    assert_int_equal(password_verify(enc, "correct horse battery stapl"), 0);
    assert_int_equal(password_verify(enc, "correct horse battery staple!"), 0);
    assert_int_equal(password_verify(enc, ""), 0);
    free(enc);
}

static void test_salt_is_random(void **state)
{
    (void)state;
    char *a = NULL, *b = NULL;
    assert_int_equal(password_hash("same password here", &a), ERR_OK);
    assert_int_equal(password_hash("same password here", &b), ERR_OK);
    assert_string_not_equal(a, b);
    assert_int_equal(password_verify(a, "same password here"), 1);
    assert_int_equal(password_verify(b, "same password here"), 1);
    free(a);
    free(b);
}

static void test_env_override_floor_and_default(void **state)
{
    (void)state;
    char *enc = NULL;
    setenv("COFFER_ARGON2_MEMORY_KIB", "16", 1);
    assert_int_equal(password_hash("a password of some length", &enc), ERR_OK);
    assert_int_equal(strncmp(enc, "$argon2id$v=19$m=8192,", 22), 0);
    free(enc);
    setenv("COFFER_ARGON2_MEMORY_KIB", "9000", 1);
    assert_int_equal(password_hash("a password of some length", &enc), ERR_OK);
    assert_int_equal(strncmp(enc, "$argon2id$v=19$m=9000,t=2,p=1$", 30), 0);
    assert_int_equal(password_verify(enc, "a password of some length"), 1);
    free(enc);
    setenv("COFFER_ARGON2_MEMORY_KIB", "8192", 1);
}

static void test_too_long_password(void **state)
{
    (void)state;
    char big[PASSWORD_MAX_BYTES + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *enc = (char *)1;
    assert_int_equal(password_hash(big, &enc), ERR_INVALID);
    assert_null(enc);
    /* Exactly the maximum is accepted. */
    big[PASSWORD_MAX_BYTES] = '\0';
    assert_int_equal(password_hash(big, &enc), ERR_OK);
    assert_int_equal(password_verify(enc, big), 1);
    big[PASSWORD_MAX_BYTES] = 'x';
    assert_int_equal(password_verify(enc, big), 0);
    free(enc);
}

static void test_malformed_encodings(void **state)
{
    (void)state;
    char *enc = NULL;
    const char *pwd = "malformed test password";
    assert_int_equal(password_hash(pwd, &enc), ERR_OK);
    size_t len = strlen(enc);
    char buf[512];

    /* Truncated at every position: never a match, never a crash. */
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(buf, enc, cut);
        buf[cut] = '\0';
        assert_int_equal(password_verify(buf, pwd), 0);
    }
    /* A flipped hash character. */
    memcpy(buf, enc, len + 1);
    buf[len - 1] = buf[len - 1] == 'A' ? 'B' : 'A';
    assert_int_equal(password_verify(buf, pwd), 0);
    /* Trailing garbage. */
    snprintf(buf, sizeof buf, "%s$", enc);
    assert_int_equal(password_verify(buf, pwd), 0);
    snprintf(buf, sizeof buf, "%sA", enc);
    assert_int_equal(password_verify(buf, pwd), 0);

    const char *bad[] = {
        "",
        "$",
        "plaintext",
        "$argon2id$",
        "$argon2id$v=19$m=8192,t=3,p=1$$",
        "$argon2id$v=19$m=8192,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$",
        "$argon2id$v=19$m=8192,t=3,p=1$$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=08192,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=-8192,t=3,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=8192,t=3,p=1$c2Fsd*NhbHRzYWx0c2FsdA$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=8192,t=3,p=1,x=1$c2FsdHNhbHRzYWx0c2FsdA$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$t=3,m=8192,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(password_verify(bad[i], pwd), 0);
    assert_int_equal(password_verify(NULL, pwd), 0);
    assert_int_equal(password_verify(enc, NULL), 0);
    free(enc);
}

/* Replaces the "$argon2id$v=19$m=8192,t=3,p=1$" head of enc with head. */
static void rewrite_head(const char *enc, const char *head, char *out, size_t cap)
{
    const char *rest = strstr(enc + 1, "$");
    rest = strstr(rest + 1, "$");
    rest = strstr(rest + 1, "$");
    snprintf(out, cap, "%s%s", head, rest);
}

static void test_rejects_other_variants_and_bounds(void **state)
{
    (void)state;
    char *enc = NULL;
    const char *pwd = "variant test password";
    assert_int_equal(password_hash(pwd, &enc), ERR_OK);
    char buf[512];

    /* Sanity: rewriting with the same head still verifies. */
    rewrite_head(enc, "$argon2id$v=19$m=8192,t=2,p=1", buf, sizeof buf);
    assert_string_equal(buf, enc);
    assert_int_equal(password_verify(buf, pwd), 1);

    const char *heads[] = {
        "$argon2i$v=19$m=8192,t=3,p=1",         "$argon2d$v=19$m=8192,t=3,p=1",
        "$argon2id$v=16$m=8192,t=3,p=1",        "$argon2id$m=8192,t=3,p=1",
        "$argon2id$v=19$m=4096,t=3,p=1",        "$argon2id$v=19$m=4194304,t=3,p=1",
        "$argon2id$v=19$m=8192,t=0,p=1",        "$argon2id$v=19$m=8192,t=1000,p=1",
        "$argon2id$v=19$m=8192,t=3,p=0",        "$argon2id$v=19$m=8192,t=3,p=64",
        "$argon2id$v=19$m=99999999999,t=3,p=1", "$ARGON2ID$v=19$m=8192,t=3,p=1",
    };
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        rewrite_head(enc, heads[i], buf, sizeof buf);
        assert_int_equal(password_verify(buf, pwd), 0);
    }

    /* Genuine argon2i and argon2d hashes of the right password are refused. */
    uint8_t salt[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    assert_int_equal(
        argon2i_hash_encoded(3, 8192, 1, pwd, strlen(pwd), salt, sizeof salt, 32, buf, sizeof buf),
        ARGON2_OK);
    assert_int_equal(argon2i_verify(buf, pwd, strlen(pwd)), ARGON2_OK);
    assert_int_equal(password_verify(buf, pwd), 0);
    assert_int_equal(
        argon2d_hash_encoded(3, 8192, 1, pwd, strlen(pwd), salt, sizeof salt, 32, buf, sizeof buf),
        ARGON2_OK);
    assert_int_equal(password_verify(buf, pwd), 0);
    /* The same salt and parameters with argon2id are accepted. */
    assert_int_equal(
        argon2id_hash_encoded(3, 8192, 1, pwd, strlen(pwd), salt, sizeof salt, 32, buf, sizeof buf),
        ARGON2_OK);
    assert_int_equal(password_verify(buf, pwd), 1);
    free(enc);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_dummy(void **state)
{
    (void)state;
    password_verify_dummy("");
    password_verify_dummy(NULL);

    /* The dummy does real Argon2 work: loosely, the slowest of three dummy
     * runs is not much faster than the fastest of three real verifications. */
    char *enc = NULL;
    assert_int_equal(password_hash("timing test password", &enc), ERR_OK);
    double real_min = 1e9, dummy_max = 0;
    for (int i = 0; i < 3; i++) {
        double t0 = now_seconds();
        assert_int_equal(password_verify(enc, "wrong password here"), 0);
        double t1 = now_seconds();
        password_verify_dummy("wrong password here");
        double t2 = now_seconds();
        if (t1 - t0 < real_min)
            real_min = t1 - t0;
        if (t2 - t1 > dummy_max)
            dummy_max = t2 - t1;
    }
    assert_true(dummy_max * 4 >= real_min);
    free(enc);
}

static int in_alphabet(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static void test_generate(void **state)
{
    (void)state;
    char a[PASSWORD_GENERATED_LEN + 1], b[64];
    assert_int_equal(password_generate(a, sizeof a), ERR_OK);
    assert_int_equal(password_generate(b, sizeof b), ERR_OK);
    assert_int_equal(strlen(a), 24);
    assert_int_equal(strlen(b), 24);
    assert_string_not_equal(a, b);
    for (size_t i = 0; i < 24; i++) {
        assert_true(in_alphabet(a[i]));
        assert_true(in_alphabet(b[i]));
    }
    assert_int_equal(password_check_policy(a, NULL, 0), ERR_OK);

    /* Over many draws every character class shows up. */
    int seen[256] = {0};
    for (int k = 0; k < 200; k++) {
        assert_int_equal(password_generate(b, sizeof b), ERR_OK);
        for (size_t i = 0; i < 24; i++)
            seen[(unsigned char)b[i]] = 1;
    }
    int distinct = 0;
    for (int c = 0; c < 256; c++) {
        if (seen[c]) {
            assert_true(in_alphabet((char)c));
            distinct++;
        }
    }
    assert_int_equal(distinct, 64);

    char small[PASSWORD_GENERATED_LEN];
    assert_int_equal(password_generate(small, sizeof small), ERR_INVALID);
    assert_int_equal(small[0], '\0');
    assert_int_equal(password_generate(NULL, 100), ERR_INVALID);
}

static void test_policy(void **state)
{
    (void)state;
    char why[128];
    assert_int_equal(password_check_policy("twelve chars", why, sizeof why), ERR_OK);
    assert_string_equal(why, "");

    assert_int_equal(password_check_policy("eleven char", why, sizeof why), ERR_INVALID);
    assert_non_null(strstr(why, "at least 12"));
    assert_int_equal(password_check_policy("", why, sizeof why), ERR_INVALID);

    /* 12 characters, 24 bytes: counted in characters. */
    assert_int_equal(password_check_policy("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                           "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                                           why, sizeof why),
                     ERR_OK);

    assert_int_equal(password_check_policy("with a\ttab inside", why, sizeof why), ERR_INVALID);
    assert_non_null(strstr(why, "control"));
    assert_int_equal(password_check_policy("with a newline\n", why, sizeof why), ERR_INVALID);
    assert_int_equal(password_check_policy("with a DEL \x7f char", why, sizeof why), ERR_INVALID);
    assert_int_equal(password_check_policy("with C1 \xc2\x85 control", why, sizeof why),
                     ERR_INVALID);
    assert_int_equal(password_check_policy("bad utf8 \xff\xfe here", why, sizeof why), ERR_INVALID);
    assert_non_null(strstr(why, "UTF-8"));
    assert_int_equal(password_check_policy("overlong \xc0\xaf slash", why, sizeof why),
                     ERR_INVALID);
    assert_int_equal(password_check_policy("truncated seq \xe2\x82", why, sizeof why), ERR_INVALID);

    char big[PASSWORD_MAX_BYTES + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(password_check_policy(big, why, sizeof why), ERR_INVALID);
    assert_non_null(strstr(why, "1024"));
    big[PASSWORD_MAX_BYTES] = '\0';
    assert_int_equal(password_check_policy(big, why, sizeof why), ERR_OK);

    /* A short why buffer is truncated, not overrun; NULL why is fine. */
    char tiny[4];
    assert_int_equal(password_check_policy("short", tiny, sizeof tiny), ERR_INVALID);
    assert_int_equal(strlen(tiny), 3);
    assert_int_equal(password_check_policy("short", NULL, 0), ERR_INVALID);
    assert_int_equal(password_check_policy(NULL, why, sizeof why), ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_salt_is_random),
        cmocka_unit_test(test_env_override_floor_and_default),
        cmocka_unit_test(test_too_long_password),
        cmocka_unit_test(test_malformed_encodings),
        cmocka_unit_test(test_rejects_other_variants_and_bounds),
        cmocka_unit_test(test_dummy),
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_policy),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
