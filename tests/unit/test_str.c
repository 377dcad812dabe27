/* util/str.c: the bounded string builders agree with snprintf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/str.h"

static void test_copy_and_cut(void **state)
{
    (void)state;
    char b[6];
    assert_int_equal(str_copy(b, sizeof(b), "abc"), 3);
    assert_string_equal(b, "abc");
    assert_int_equal(str_copy(b, sizeof(b), "abcdefgh"), 5);
    assert_string_equal(b, "abcde");
    assert_int_equal(str_copy(b, sizeof(b), ""), 0);
    assert_string_equal(b, "");
    char one[1];
    assert_int_equal(str_copy(one, sizeof(one), "x"), 0);
    assert_string_equal(one, "");
}

static void test_concat(void **state)
{
    (void)state;
    char b[16];
    assert_int_equal(str_concat(b, sizeof(b), "user", ":", "alice", (const char *)NULL), 10);
    assert_string_equal(b, "user:alice");
    assert_int_equal(str_concat(b, sizeof(b), (const char *)NULL), 0);
    assert_string_equal(b, "");
    /* Cut like snprintf. */
    char want[8];
    snprintf(want, sizeof(want), "%s%s%s", "abc", "defg", "hij");
    char got[8];
    str_concat(got, sizeof(got), "abc", "defg", "hij", (const char *)NULL);
    assert_string_equal(got, want);
}

static void test_numbers(void **state)
{
    (void)state;
    const uint64_t cases[] = {0, 1, 9, 10, 99, 100, 12345, 4294967295u, UINT64_MAX};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char got[24], want[24];
        snprintf(want, sizeof(want), "%llu", (unsigned long long)cases[i]);
        assert_int_equal(str_u64(got, sizeof(got), cases[i]), strlen(want));
        assert_string_equal(got, want);
        char ref[64], wref[64];
        snprintf(wref, sizeof(wref), "p/dev/m@%llu", (unsigned long long)cases[i]);
        assert_int_equal(str_ref(ref, sizeof(ref), "p/dev/m", cases[i]), strlen(wref));
        assert_string_equal(ref, wref);
    }
    char small[4];
    assert_int_equal(str_u64(small, sizeof(small), 123456), 3);
    assert_string_equal(small, "123");
    assert_int_equal(str_ref(small, sizeof(small), "ab", 7), 3);
    assert_string_equal(small, "ab@");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_and_cut),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
