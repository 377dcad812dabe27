/*
 * util/json_text: the compact text of every value is byte for byte what
 * json_dumps(v, JSON_COMPACT) gives, on fixed cases and on random trees.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/json_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void same_as_jansson(json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t len = 0;
    char *got = json_text(v, &len);
    assert_non_null(want);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(want);
    free(got);
}

static void test_fixed(void **state)
{
    (void)state;
    const char *docs[] = {
        "{}",
        "[]",
        "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
        "[0,-1,9223372036854775807,-9223372036854775808,42]",
        "[0.0,1.5,-0.0,1e300,1e-7,100.0,0.1,123456789012345678.0,-2.5e-300]",
        "{\"z\":1,\"a\":2,\"m\":3}", /* insertion order, not sorted */
        "[\"quote \\\" backslash \\\\ slash / del \\u007f\"]",
        "[\"\\u00e9t\\u00e9 \\u6f22\\u5b57 \\ud83d\\ude00\"]",
        "[[[[[[{\"deep\":[[[]]]}]]]]]]",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_error_t err;
        json_t *v = json_loads(docs[i], JSON_DECODE_ANY, &err);
        assert_non_null(v);
        same_as_jansson(v);
        json_decref(v);
    }
    /* Every byte below 0x20, one per string and all in one. */
    char all[32];
    for (int c = 1; c < 32; c++) {
        char one[4] = {'a', (char)c, 'b', 0};
        json_t *s = json_string(one);
        assert_non_null(s);
        same_as_jansson(s);
        json_decref(s);
        all[c - 1] = (char)c;
    }
    json_t *s = json_stringn(all, 31);
    same_as_jansson(s);
    json_decref(s);
    /* NUL inside a string and inside a key. */
    json_t *o = json_object();
    json_object_setn_new(o, "k\0ey", 4, json_stringn("v\0al", 4));
    json_object_set_new(o, "plain", json_integer(7));
    same_as_jansson(o);
    json_decref(o);
    /* Scalars alone. */
    json_t *scalars[] = {json_true(),      json_false(),   json_null(),
                         json_integer(-5), json_real(2.0), json_string("")};
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        same_as_jansson(scalars[i]);
        json_decref(scalars[i]);
    }
}

/* Strings jansson would not write (not UTF-8) are refused the same way. */
static void test_invalid_utf8(void **state)
{
    (void)state;
    const char *bad[] = {
        "\x80",
        "\xC0\xAF",
        "\xC2",
        "\xE0\x80\xAF",
        "\xED\xA0\x80",
        "\xF4\x90\x80\x80",
        "\xF8\x88\x80\x80\x80",
        "ok\xFF",
        "\xE2\x82",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *v = json_array();
        json_array_append_new(v, json_stringn_nocheck(bad[i], strlen(bad[i])));
        char *want = json_dumps(v, JSON_COMPACT);
        assert_null(want);
        assert_null(json_text(v, NULL));
        json_decref(v);
    }
    assert_null(json_text(NULL, NULL));
}

static void test_depth(void **state)
{
    (void)state;
    json_t *root = json_array();
    json_t *cur = root;
    for (int i = 0; i < JSON_TEXT_DEPTH_MAX; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    same_as_jansson(root); /* JSON_TEXT_DEPTH_MAX + 1 levels: the limit */
    json_array_append_new(cur, json_array());
    assert_null(json_text(root, NULL));
    json_decref(root);
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* A random valid UTF-8 string: ASCII (controls included), 2-, 3- and 4-byte
 * code points. */
static json_t *random_string(void)
{
    char buf[256];
    size_t n = 0, want = next_rand() % 40;
    while (n < want && n + 4 < sizeof(buf)) {
        uint32_t kind = next_rand() % 8, cp;
        if (kind < 5)
            cp = next_rand() % 0x80;
        else if (kind == 5)
            cp = 0x80 + next_rand() % (0x800 - 0x80);
        else if (kind == 6)
            cp = 0x800 + next_rand() % (0x10000 - 0x800);
        else
            cp = 0x10000 + next_rand() % (0x110000 - 0x10000);
        if (cp >= 0xD800 && cp <= 0xDFFF)
            cp = 'x';
        if (cp < 0x80) {
            buf[n++] = (char)cp;
        } else if (cp < 0x800) {
            buf[n++] = (char)(0xC0 | (cp >> 6));
            buf[n++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            buf[n++] = (char)(0xE0 | (cp >> 12));
            buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            buf[n++] = (char)(0x80 | (cp & 0x3F));
        } else {
            buf[n++] = (char)(0xF0 | (cp >> 18));
            buf[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            buf[n++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return json_stringn(buf, n);
}

static json_t *random_value(int depth)
{
    uint32_t kind = next_rand() % (depth < 5 ? 8 : 6);
    switch (kind) {
    case 0:
        return json_integer((json_int_t)(((uint64_t)next_rand() << 32) | next_rand()));
    case 1: {
        double d = (double)(int32_t)next_rand() / (double)(1 + next_rand() % 100000);
        if (next_rand() % 4 == 0)
            d *= 1e200;
        return json_real(d);
    }
    case 2:
        return json_boolean(next_rand() % 2);
    case 3:
        return json_null();
    case 4:
    case 5:
        return random_string();
    case 6: {
        json_t *a = json_array();
        for (uint32_t i = next_rand() % 6; i > 0; i--)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (uint32_t i = next_rand() % 6; i > 0; i--) {
            json_t *k = random_string();
            json_object_setn_new(o, json_string_value(k), json_string_length(k),
                                 random_value(depth + 1));
            json_decref(k);
        }
        return o;
    }
    }
}

static void test_random_trees(void **state)
{
    (void)state;
    for (int i = 0; i < 3000; i++) {
        json_t *v = random_value(0);
        assert_non_null(v);
        same_as_jansson(v);
        json_decref(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_random_trees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
