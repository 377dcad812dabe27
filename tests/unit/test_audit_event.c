/*
 * Event schema v1: every field present and typed, hostile strings made safe,
 * one line whatever the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit/audit.h"
#include "audit/event.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *encode(const struct audit_event *ev)
{
    char *s = NULL;
    size_t len = 0;
    assert_int_equal(audit_event_encode(ev, &s, &len), ERR_OK);
    assert_int_equal(strlen(s), len);
    assert_null(memchr(s, '\n', len));
    json_error_t e;
    json_t *j = json_loadb(s, len, 0, &e);
    assert_non_null(j);
    free(s);
    return j;
}

static const char *str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static void test_full_event(void **state)
{
    (void)state;
    const char *stmts[] = {"data-scientist/Download", "guardrail/RestrictedNeedsMfa"};
    json_t *detail = json_pack("{s:s}", "share_id", "abc");
    struct audit_event ev = {.time = "2024-05-01T12:00:00.123Z",
                             .request_id = "req-1",
                             .principal = "user:alice",
                             .auth_method = "password",
                             .mfa = 1,
                             .source_ip = "10.0.0.7",
                             .user_agent = "coffer-cli/1.0",
                             .action = "artifact:Download",
                             .resource = "fraud/prod/model@3",
                             .allow = 0,
                             .reason = "explicit deny",
                             .statements = stmts,
                             .n_statements = 2,
                             .status = 403,
                             .bytes = 0,
                             .sha256 = "ab12",
                             .detail = detail};
    json_t *j = encode(&ev);
    assert_int_equal(json_integer_value(json_object_get(j, "v")), 1);
    assert_string_equal(str(j, "time"), "2024-05-01T12:00:00.123Z");
    assert_string_equal(str(j, "request_id"), "req-1");
    assert_string_equal(str(j, "principal"), "user:alice");
    assert_string_equal(str(j, "auth_method"), "password");
    assert_true(json_is_true(json_object_get(j, "mfa")));
    assert_string_equal(str(j, "source_ip"), "10.0.0.7");
    assert_string_equal(str(j, "user_agent"), "coffer-cli/1.0");
    assert_string_equal(str(j, "action"), "artifact:Download");
    assert_string_equal(str(j, "resource"), "fraud/prod/model@3");
    assert_string_equal(str(j, "decision"), "deny");
    assert_string_equal(str(j, "reason"), "explicit deny");
    json_t *st = json_object_get(j, "statements");
    assert_int_equal(json_array_size(st), 2);
    assert_string_equal(json_string_value(json_array_get(st, 1)), "guardrail/RestrictedNeedsMfa");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 403);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes")), 0);
    assert_string_equal(str(j, "sha256"), "ab12");
    assert_string_equal(str(json_object_get(j, "detail"), "share_id"), "abc");
    json_decref(j);
    /* detail is borrowed: still ours. */
    assert_int_equal(detail->refcount, 1);
    json_decref(detail);
}

static void test_minimal_event(void **state)
{
    (void)state;
    struct audit_event ev = {.action = "artifact:List", .allow = 1, .status = 200, .bytes = 12};
    json_t *j = encode(&ev);
    assert_string_equal(str(j, "decision"), "allow");
    assert_true(json_is_null(json_object_get(j, "principal")));
    assert_true(json_is_null(json_object_get(j, "source_ip")));
    assert_null(json_object_get(j, "sha256"));
    assert_null(json_object_get(j, "detail"));
    assert_int_equal(json_array_size(json_object_get(j, "statements")), 0);
    /* The time is now, RFC 3339 UTC with milliseconds. */
    const char *t = str(j, "time");
    assert_int_equal(strlen(t), 24);
    assert_int_equal(t[10], 'T');
    assert_int_equal(t[19], '.');
    assert_int_equal(t[23], 'Z');
    json_decref(j);
}

/* audit_event_time_now: the clock's second in RFC 3339 UTC (the cached
 * date of the thread follows the clock across seconds) with milliseconds,
 * and a short buffer gets a cut, terminated string. */
static void test_time_now(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        time_t before = time(NULL);
        char t[32];
        audit_event_time_now(t, sizeof(t));
        time_t after = time(NULL);
        char a[32], b[32];
        struct tm tm;
        strftime(a, sizeof(a), "%Y-%m-%dT%H:%M:%S", gmtime_r(&before, &tm));
        strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", gmtime_r(&after, &tm));
        assert_int_equal(strlen(t), 24);
        assert_true(strncmp(t, a, 19) == 0 || strncmp(t, b, 19) == 0);
        assert_true(t[19] == '.' && t[23] == 'Z');
        for (int k = 20; k < 23; k++)
            assert_true(t[k] >= '0' && t[k] <= '9');
        if (i < 2) {
            struct timespec pause = {1, 100000000};
            nanosleep(&pause, NULL);
        }
    }
    char cut[11];
    memset(cut, 'x', sizeof(cut));
    audit_event_time_now(cut, sizeof(cut));
    assert_int_equal(strlen(cut), 10);
    assert_int_equal(cut[4], '-');
}

static void test_hostile_strings(void **state)
{
    (void)state;
    char *longua = malloc(5000);
    assert_non_null(longua);
    memset(longua, 'x', 4999);
    longua[4999] = 0;
    struct audit_event ev = {.action = "artifact:Read",
                             .user_agent = longua,
                             .principal = "user:\xff\xfe\xc3(bad",
                             .resource = "a\nb\r\"c\\",
                             .reason = "caf\xc3\xa9"};
    json_t *j = encode(&ev);
    const char *ua = str(j, "user_agent");
    assert_int_equal(strlen(ua), AUDIT_FIELD_MAX + 3);
    assert_string_equal(ua + AUDIT_FIELD_MAX, "...");
    assert_string_equal(str(j, "principal"), "user:??"
                                             "?(bad");
    assert_string_equal(str(j, "resource"), "a\nb\r\"c\\");
    assert_string_equal(str(j, "reason"), "caf\xc3\xa9");
    json_decref(j);
    free(longua);
}

static void test_invalid(void **state)
{
    (void)state;
    char *s = NULL;
    size_t len = 0;
    struct audit_event ev = {.principal = "user:a"};
    assert_int_equal(audit_event_encode(&ev, &s, &len), ERR_INVALID);
    json_t *arr = json_array();
    struct audit_event ev2 = {.action = "x", .detail = arr};
    assert_int_equal(audit_event_encode(&ev2, &s, &len), ERR_INVALID);
    json_decref(arr);
    assert_null(s);
}

/* The reference for a string field: cut to AUDIT_FIELD_MAX bytes, every
 * byte that does not start a valid UTF-8 sequence (by jansson's own check)
 * replaced by '?', "..." appended when cut. */
static char *reference(const char *s)
{
    size_t n = strlen(s);
    int cut = n > AUDIT_FIELD_MAX;
    if (cut)
        n = AUDIT_FIELD_MAX;
    char *out = malloc(n + 4);
    assert_non_null(out);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t l = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        json_t *j = i + l <= n ? json_stringn(s + i, l) : NULL;
        if (j == NULL) {
            out[o++] = '?';
            i++;
        } else {
            memcpy(out + o, s + i, l);
            o += l;
            i += l;
            json_decref(j);
        }
    }
    if (cut) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

static void random_text(char *buf, size_t len, unsigned *seed)
{
    static const char *const pieces[] = {"a",
                                         "\"",
                                         "\\",
                                         "\n",
                                         "\r",
                                         "\t",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "/",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "\xc3",
                                         "\xe2\x82",
                                         "\xff",
                                         "\xed\xa0\x80",
                                         "\xc0\xaf",
                                         "{",
                                         "}",
                                         ":",
                                         ","};
    size_t o = 0;
    while (o + 5 < len) {
        const char *p = pieces[rand_r(seed) % (sizeof(pieces) / sizeof(pieces[0]))];
        size_t l = strlen(p);
        memcpy(buf + o, p, l);
        o += l;
        if (rand_r(seed) % 40 == 0)
            break;
    }
    buf[o] = '\0';
}

/* 2000 events with random hostile strings in every text field: each encodes
 * to one line of JSON that parses, with the fields in the documented order
 * and each string equal to the reference sanitisation. */
static void test_random_strings(void **state)
{
    (void)state;
    unsigned seed = 12345;
    static char f[6][1400];
    for (int round = 0; round < 2000; round++) {
        for (int i = 0; i < 6; i++)
            random_text(f[i], round % 50 == 0 ? sizeof(f[i]) : 64, &seed);
        const char *stmts[2] = {f[4], f[5]};
        struct audit_event ev = {.time = "2026-01-01T00:00:00.000Z",
                                 .request_id = f[0],
                                 .principal = f[1],
                                 .auth_method = "password",
                                 .source_ip = "::1",
                                 .user_agent = f[2],
                                 .action = "artifact:Read",
                                 .resource = f[3],
                                 .allow = round % 2,
                                 .reason = NULL,
                                 .statements = stmts,
                                 .n_statements = 2,
                                 .status = 200,
                                 .bytes = -1 - round};
        char *js = NULL;
        size_t len = 0;
        assert_int_equal(audit_event_encode(&ev, &js, &len), ERR_OK);
        assert_int_equal(strlen(js), len);
        assert_null(memchr(js, '\n', len));
        json_error_t err;
        json_t *o = json_loadb(js, len, 0, &err);
        if (o == NULL)
            fail_msg("not JSON (%s): %s", err.text, js);
        const char *keys[] = {"v",        "time",      "request_id", "principal", "auth_method",
                              "mfa",      "source_ip", "user_agent", "action",    "resource",
                              "decision", "reason",    "statements", "status",    "bytes"};
        size_t k = 0;
        const char *key;
        json_t *val;
        json_object_foreach(o, key, val)
        {
            assert_true(k < sizeof(keys) / sizeof(keys[0]));
            (void)val;
            k++;
        }
        assert_int_equal(k, sizeof(keys) / sizeof(keys[0]));
        /* Order: each key appears in the text after the previous one. */
        const char *at = js;
        for (size_t i = 0; i < k; i++) {
            char q[32];
            snprintf(q, sizeof(q), "\"%s\":", keys[i]);
            const char *hit = strstr(at, q);
            assert_non_null(hit);
            at = hit;
        }
        const char *fields[] = {"request_id", "principal", "user_agent", "resource"};
        for (int i = 0; i < 4; i++) {
            char *want = reference(f[i]);
            assert_string_equal(json_string_value(json_object_get(o, fields[i])), want);
            free(want);
        }
        for (int i = 0; i < 2; i++) {
            char *want = reference(f[4 + i]);
            assert_string_equal(
                json_string_value(json_array_get(json_object_get(o, "statements"), (size_t)i)),
                want);
            free(want);
        }
        assert_true(json_is_null(json_object_get(o, "reason")));
        assert_int_equal(json_integer_value(json_object_get(o, "bytes")), -1 - round);
        assert_string_equal(json_string_value(json_object_get(o, "decision")),
                            round % 2 ? "allow" : "deny");
        json_decref(o);
        free(js);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_event), cmocka_unit_test(test_minimal_event),
        cmocka_unit_test(test_time_now),   cmocka_unit_test(test_hostile_strings),
        cmocka_unit_test(test_invalid),    cmocka_unit_test(test_random_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
