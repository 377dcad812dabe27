/*
 * util/duration: the one parser of "30m", "12h", "7d" used by the server
 * configuration, the API and the CLI.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "app/environments.h"
#include "util/duration.h"

#define SENTINEL ((int64_t)-12345)

/* Parses text against max; returns the seconds, or -1 when refused (then
 * the output must not have been touched). */
static int64_t parse(const char *text, long long max)
{
    int64_t out = SENTINEL;
    if (duration_parse(text, max, &out) != 0) {
        assert_int_equal(out, SENTINEL);
        return -1;
    }
    return out;
}

static void test_units(void **state)
{
    (void)state;
    assert_int_equal(parse("90s", DURATION_TEN_YEARS), 90);
    assert_int_equal(parse("30m", DURATION_TEN_YEARS), 1800);
    assert_int_equal(parse("12h", DURATION_TEN_YEARS), 43200);
    assert_int_equal(parse("7d", DURATION_TEN_YEARS), 604800);
    assert_int_equal(parse("2w", DURATION_TEN_YEARS), 1209600);
    assert_int_equal(parse("1s", DURATION_TEN_YEARS), 1);
}

static void test_no_unit_is_seconds(void **state)
{
    (void)state;
    assert_int_equal(parse("45", DURATION_TEN_YEARS), 45);
    assert_int_equal(parse("007", DURATION_TEN_YEARS), 7);
}

static void test_zero_and_sign(void **state)
{
    (void)state;
    assert_int_equal(parse("0", DURATION_TEN_YEARS), -1);
    assert_int_equal(parse("0d", DURATION_TEN_YEARS), -1);
    assert_int_equal(parse("-5m", DURATION_TEN_YEARS), -1);
    assert_int_equal(parse("+5m", DURATION_TEN_YEARS), -1);
    assert_int_equal(parse(" 5m", DURATION_TEN_YEARS), -1);
}

static void test_malformed(void **state)
{
    (void)state;
    assert_int_equal(parse(NULL, DURATION_TEN_YEARS), -1);
    assert_int_equal(parse("", DURATION_TEN_YEARS), -1);
    assert_int_equal(parse("d", DURATION_TEN_YEARS), -1);
    assert_int_equal(parse("5x", DURATION_TEN_YEARS), -1);
    assert_int_equal(parse("5M", DURATION_TEN_YEARS), -1);
    assert_int_equal(parse("5dd", DURATION_TEN_YEARS), -1);
    assert_int_equal(parse("5ms", DURATION_TEN_YEARS), -1); /* two-letter suffix */
    assert_int_equal(parse("5d ", DURATION_TEN_YEARS), -1); /* trailing garbage */
    assert_int_equal(parse("5 d", DURATION_TEN_YEARS), -1);
    assert_int_equal(parse("1.5h", DURATION_TEN_YEARS), -1);
    assert_int_equal(parse("5d\n", DURATION_TEN_YEARS), -1);
}

static void test_overflow(void **state)
{
    (void)state;
    /* Larger than a long long: strtoll sets ERANGE. */
    assert_int_equal(parse("99999999999999999999", INT64_MAX), -1);
    assert_int_equal(parse("99999999999999999999w", INT64_MAX), -1);
    /* Fits a long long, but times the unit it would overflow. */
    assert_int_equal(parse("9223372036854775807w", INT64_MAX), -1);
    assert_int_equal(parse("9223372036854775807", INT64_MAX), INT64_MAX);
}

static void test_maximum(void **state)
{
    (void)state;
    /* Ten years, in seconds and in whole days. */
    assert_int_equal(parse("316224000", DURATION_TEN_YEARS), DURATION_TEN_YEARS);
    assert_int_equal(parse("316224001", DURATION_TEN_YEARS), -1);
    assert_int_equal(parse("3660d", DURATION_TEN_YEARS), DURATION_TEN_YEARS);
    assert_int_equal(parse("3661d", DURATION_TEN_YEARS), -1);
    assert_int_equal(parse("522w", DURATION_TEN_YEARS), 522LL * 7 * 86400);
    assert_int_equal(parse("523w", DURATION_TEN_YEARS), -1);
    /* Each caller's own maximum. */
    assert_int_equal(parse("1h", 3600), 3600);
    assert_int_equal(parse("61m", 3600), -1);
    assert_int_equal(parse("3601", 3600), -1);
    assert_int_equal(parse("1d", 86400), 86400);
    assert_int_equal(parse("2d", 86400), -1);
    assert_int_equal(parse("1s", 0), -1); /* no positive maximum, nothing fits */
}

static void test_env_parse_duration(void **state)
{
    (void)state;
    /* The server configuration goes through the same parser, capped at ten years. */
    assert_int_equal(env_parse_duration("24h"), 86400);
    assert_int_equal(env_parse_duration("3660d"), DURATION_TEN_YEARS);
    assert_int_equal(env_parse_duration("3661d"), -1);
    assert_int_equal(env_parse_duration("0"), -1);
    assert_int_equal(env_parse_duration("12hh"), -1);
    assert_int_equal(env_parse_duration(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_no_unit_is_seconds),
        cmocka_unit_test(test_zero_and_sign),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_maximum),
        cmocka_unit_test(test_env_parse_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
