/*
 * Unit tests for artifact path and reference parsing (registry/path.h):
 * the grammar of the product contract, its limits, and hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry/path.h"

#define HEX64_LOWER "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX64_UPPER "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
#define HEX64_MIXED "0123456789aBcDeF0123456789AbCdEf0123456789abcdef0123456789ABCDEF"

/* Fills buf with n copies of c and a terminating NUL. */
static char *repeat(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* Builds "prefix" + segments of seg_len bytes of c joined by '/' until the
 * name has exactly name_len bytes (the last segment takes the remainder). */
static void build_name(char *out, size_t cap, const char *prefix, size_t seg_len, size_t name_len)
{
    size_t p = strlen(prefix);
    assert_true(p + name_len < cap);
    memcpy(out, prefix, p);
    size_t used = 0;
    while (used < name_len) {
        if (used > 0) {
            out[p + used] = '/';
            used++;
        }
        size_t left = name_len - used;
        size_t n = left < seg_len ? left : seg_len;
        memset(out + p + used, 'n', n);
        used += n;
    }
    out[p + used] = '\0';
}

static void expect_path_ok(const char *s, const char *project, const char *env, const char *name)
{
    struct artifact_path p;
    char why[256] = "";
    enum err e = path_parse(s, NULL, &p, why, sizeof(why));
    if (e != ERR_OK)
        fail_msg("path_parse(\"%.80s\") failed: %s", s, why);
    assert_string_equal(p.project, project);
    assert_string_equal(p.env, env);
    assert_string_equal(p.name, name);
    assert_string_equal(p.full, s);
}

static void expect_path_bad(const char *s)
{
    struct artifact_path p;
    char why[256] = "";
    enum err e = path_parse(s, NULL, &p, why, sizeof(why));
    if (e != ERR_INVALID)
        fail_msg("path_parse(\"%.80s\") should fail with ERR_INVALID, got %d", s, (int)e);
    /* Every refusal says why, in one line. */
    assert_true(why[0] != '\0');
    assert_null(strchr(why, '\n'));
}

static void test_path_valid(void **state)
{
    (void)state;
    expect_path_ok("fraud/dev/model", "fraud", "dev", "model");
    expect_path_ok("fraud/staging/model", "fraud", "staging", "model");
    expect_path_ok("fraud/prod/model", "fraud", "prod", "model");
    expect_path_ok("a/dev/b", "a", "dev", "b");
    expect_path_ok("0/dev/9", "0", "dev", "9");
    expect_path_ok("fr.a_u-d9/dev/x", "fr.a_u-d9", "dev", "x");
    expect_path_ok("fraud/dev/Model-V2.final_1", "fraud", "dev", "Model-V2.final_1");
    expect_path_ok("fraud/dev/a/b/c", "fraud", "dev", "a/b/c");
    expect_path_ok("fraud/dev/x../y.", "fraud", "dev", "x../y.");
    expect_path_ok("fraud/dev/a.b/c..d/e...", "fraud", "dev", "a.b/c..d/e...");
    expect_path_ok("fraud/dev/0", "fraud", "dev", "0");
    expect_path_ok("fraud/dev/Z", "fraud", "dev", "Z");
    expect_path_ok("p-/dev/x", "p-", "dev", "x");
    expect_path_ok("p./dev/x", "p.", "dev", "x");
}

static void test_path_project_limits(void **state)
{
    (void)state;
    char proj[100], s[200];
    repeat(proj, 'p', 63);
    snprintf(s, sizeof(s), "%s/dev/x", proj);
    expect_path_ok(s, proj, "dev", "x");
    repeat(proj, 'p', 64);
    snprintf(s, sizeof(s), "%s/dev/x", proj);
    expect_path_bad(s);

    const char *bad[] = {
        "Fraud/dev/x",  "fRaud/dev/x",  "FRAUD/dev/x",  ".fraud/dev/x",  "_fraud/dev/x",
        "-fraud/dev/x", "fr aud/dev/x", "fr@ud/dev/x",  "fr%61ud/dev/x", "fr~ud/dev/x",
        "/dev/x",       "../dev/x",     "./dev/x",      "fr+ud/dev/x",   "fr*ud/dev/x",
        "fr:ud/dev/x",  "fr\\ud/dev/x", "fr\"ud/dev/x", "fr'ud/dev/x",   "fr;ud/dev/x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_path_bad(bad[i]);
}

static void test_path_env(void **state)
{
    (void)state;
    const char *bad[] = {"fraud/qa/x",         "fraud/DEV/x",  "fraud/Dev/x",    "fraud/dev./x",
                         "fraud/de/x",         "fraud/devv/x", "fraud//x",       "fraud/ dev/x",
                         "fraud/production/x", "fraud/*/x",    "fraud/dev%2f/x", "fraud/.."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_path_bad(bad[i]);

    /* A configured list replaces the defaults. */
    const char *const envs[] = {"qa", "perf-test", NULL};
    struct artifact_path p;
    char why[256];
    assert_int_equal(path_parse("fraud/qa/x", envs, &p, why, sizeof(why)), ERR_OK);
    assert_string_equal(p.env, "qa");
    assert_int_equal(path_parse("fraud/perf-test/x", envs, &p, why, sizeof(why)), ERR_OK);
    assert_int_equal(path_parse("fraud/dev/x", envs, &p, why, sizeof(why)), ERR_INVALID);
    assert_int_equal(path_parse("fraud/q/x", envs, &p, why, sizeof(why)), ERR_INVALID);
    assert_int_equal(path_parse("fraud/qaa/x", envs, &p, why, sizeof(why)), ERR_INVALID);

    /* An environment name longer than the buffer is refused, not copied. */
    const char *const long_envs[] = {"an-environment-name-longer-than-32-bytes", NULL};
    assert_int_equal(path_parse("fraud/an-environment-name-longer-than-32-bytes/x", long_envs, &p,
                                why, sizeof(why)),
                     ERR_INVALID);
    const char *const empty_envs[] = {NULL};
    assert_int_equal(path_parse("fraud/dev/x", empty_envs, &p, why, sizeof(why)), ERR_INVALID);
}

static void test_path_name_segments(void **state)
{
    (void)state;
    const char *bad[] = {
        "fraud/dev/",
        "fraud/dev",
        "fraud",
        "",
        "fraud/dev/.",
        "fraud/dev/..",
        "fraud/dev/./x",
        "fraud/dev/../x",
        "fraud/dev/x/.",
        "fraud/dev/x/..",
        "fraud/dev/x/../y",
        "fraud/dev/x/./y",
        "fraud/dev//x",
        "fraud/dev/x//y",
        "fraud/dev/x/",
        "fraud/dev/x//",
        "/fraud/dev/x",
        "fraud/dev/.x",
        "fraud/dev/-x",
        "fraud/dev/_x",
        "fraud/dev/x/.y",
        "fraud/dev/x/-y",
        "fraud/dev/x/_y",
        "fraud/dev/...",
        "fraud/dev/a b",
        "fraud/dev/a+b",
        "fraud/dev/a@b",
        "fraud/dev/a:b",
        "fraud/dev/a%2e",
        "fraud/dev/%2e%2e",
        "fraud/dev/a%2Fb",
        "fraud/dev/a%00b",
        "fraud/dev/a\\b",
        "fraud/dev/a?b",
        "fraud/dev/a#b",
        "fraud/dev/a*",
        "fraud/dev/a~",
        "fraud/dev/a,b",
        "fraud/dev/a;b",
        "fraud/dev/a=b",
        "fraud/dev/a&b",
        "fraud/dev/a|b",
        "fraud/dev/a<b>",
        "fraud/dev/a'b",
        "fraud/dev/a\"b",
        "fraud/dev/a`b",
        "fraud/dev/a$b",
        "fraud/dev/a!b",
        "fraud/dev/(a)",
        "fraud/dev/[a]",
        "fraud/dev/{a}",
        "fraud/dev/a^b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_path_bad(bad[i]);
}

static void test_path_control_and_non_ascii(void **state)
{
    (void)state;
    const char *bad[] = {
        "fraud/dev/a\tb",
        "fraud/dev/a\nb",
        "fraud/dev/a\rb",
        "fraud/dev/a\x01",
        "fraud/dev/a\x7f",
        "fraud/dev/a\x1b[0m",
        "fraud/dev/caf\xc3\xa9",
        "fraud/dev/\xc3\xa9",
        "fr\xc3\xa9ud/dev/x",
        "fraud/d\xc3\xa9v/x",
        "fraud/dev/a\xff",
        "fraud/dev/a\x80",
        "fraud/dev/x\xe2\x80\xae"
        "gpj.exe",
        "fraud/dev/\xef\xbc\x8e\xef\xbc\x8e", /* fullwidth ".." */
        "fraud/dev/x\xc0\xae\xc0\xae",        /* overlong-encoded ".." */
        "\x00",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_path_bad(bad[i]);
    /* An embedded NUL ends the string: what follows is not part of the path. */
    const char with_nul[] = "fraud/dev/x\0/../../etc";
    expect_path_ok(with_nul, "fraud", "dev", "x");
}

static void test_path_length_limits(void **state)
{
    (void)state;
    char seg[200], s[3000], name[1000];

    /* A segment: 128 bytes is fine, 129 is not. */
    snprintf(s, sizeof(s), "fraud/dev/%s", repeat(seg, 'a', 128));
    expect_path_ok(s, "fraud", "dev", seg);
    snprintf(s, sizeof(s), "fraud/dev/%s", repeat(seg, 'a', 129));
    expect_path_bad(s);
    snprintf(s, sizeof(s), "fraud/dev/x/%s/y", repeat(seg, 'a', 129));
    expect_path_bad(s);
    snprintf(s, sizeof(s), "fraud/dev/x/%s/y", repeat(seg, 'a', 128));
    expect_path_ok(s, "fraud", "dev", s + strlen("fraud/dev/"));

    /* The name: 512 bytes in all is fine, 513 is not, with valid segments. */
    build_name(s, sizeof(s), "fraud/dev/", 128, 512);
    assert_int_equal(strlen(s), strlen("fraud/dev/") + 512);
    expect_path_ok(s, "fraud", "dev", s + strlen("fraud/dev/"));
    build_name(s, sizeof(s), "fraud/dev/", 128, 513);
    expect_path_bad(s);
    build_name(s, sizeof(s), "fraud/dev/", 1, 511);
    expect_path_ok(s, "fraud", "dev", s + strlen("fraud/dev/"));
    build_name(s, sizeof(s), "fraud/dev/", 1, 513);
    expect_path_bad(s);

    /* The longest valid path: 63-byte project, longest default env, 512-byte name. */
    char proj[80];
    repeat(proj, 'p', 63);
    build_name(name, sizeof(name), "", 128, 512);
    snprintf(s, sizeof(s), "%s/staging/%s", proj, name);
    expect_path_ok(s, proj, "staging", name);

    /* With a configured 32-byte environment the path is exactly PATH_FULL_MAX. */
    const char *const envs32[] = {"e0123456789012345678901234567890", NULL};
    snprintf(s, sizeof(s), "%s/%s/%s", proj, envs32[0], name);
    assert_int_equal(strlen(s), PATH_FULL_MAX);
    struct artifact_path p;
    char why1[256];
    assert_int_equal(path_parse(s, envs32, &p, why1, sizeof(why1)), ERR_OK);
    assert_string_equal(p.full, s);
    assert_string_equal(p.env, envs32[0]);

    /* Far too long input is refused without reading past the limit. */
    size_t big = 1 << 20;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memcpy(huge, "fraud/dev/", 10);
    memset(huge + 10, 'a', big - 10);
    huge[big] = '\0';
    expect_path_bad(huge);
    struct artifact_ref ref;
    char why[256];
    assert_int_equal(ref_parse(huge, NULL, &ref, why, sizeof(why)), ERR_INVALID);
    assert_int_equal(path_prefix_check(huge, why, sizeof(why)), ERR_INVALID);
    free(huge);
}

static void test_path_why_buffer(void **state)
{
    (void)state;
    struct artifact_path p;
    /* NULL or empty reason buffers are allowed. */
    assert_int_equal(path_parse("../x", NULL, &p, NULL, 0), ERR_INVALID);
    assert_int_equal(path_parse("fraud/dev/x", NULL, &p, NULL, 0), ERR_OK);
    char tiny[5] = "xxxx";
    assert_int_equal(path_parse("fraud/qa/x", NULL, &p, tiny, 0), ERR_INVALID);
    assert_string_equal(tiny, "xxxx");
    /* A short buffer is truncated and terminated, never overrun. */
    char small[8];
    memset(small, 'Z', sizeof(small));
    assert_int_equal(path_parse("fraud/qa/x", NULL, &p, small, 6), ERR_INVALID);
    assert_int_equal(strlen(small), 5);
    assert_int_equal(small[6], 'Z');
    assert_int_equal(path_parse(NULL, NULL, &p, small, sizeof(small)), ERR_INVALID);
    /* The reason names the problem. */
    char why[256];
    assert_int_equal(path_parse("fraud/qa/x", NULL, &p, why, sizeof(why)), ERR_INVALID);
    assert_non_null(strstr(why, "qa"));
}

static void expect_ref_bad(const char *s)
{
    struct artifact_ref r;
    char why[256] = "";
    enum err e = ref_parse(s, NULL, &r, why, sizeof(why));
    if (e != ERR_INVALID)
        fail_msg("ref_parse(\"%.100s\") should fail with ERR_INVALID, got %d", s, (int)e);
    assert_true(why[0] != '\0');
}

static void test_ref_latest(void **state)
{
    (void)state;
    struct artifact_ref r;
    char why[256];
    assert_int_equal(ref_parse("fraud/dev/m", NULL, &r, why, sizeof(why)), ERR_OK);
    assert_int_equal(r.kind, REF_LATEST);
    assert_int_equal(r.explicit_version, 0);
    assert_string_equal(r.path.full, "fraud/dev/m");
    assert_string_equal(r.path.name, "m");

    assert_int_equal(ref_parse("fraud/dev/a/b@latest", NULL, &r, why, sizeof(why)), ERR_OK);
    assert_int_equal(r.kind, REF_LATEST);
    assert_int_equal(r.explicit_version, 1);
    assert_string_equal(r.path.full, "fraud/dev/a/b");
    assert_string_equal(r.path.name, "a/b");

    expect_ref_bad("fraud/dev/m@");
    expect_ref_bad("fraud/dev/m@latest2");
    expect_ref_bad("fraud/dev/m@lates");
    expect_ref_bad("fraud/dev/m@latest@1");
    expect_ref_bad("fraud/dev/m@ latest");
    expect_ref_bad("fraud/dev/m@latest ");
    expect_ref_bad("@latest");
    expect_ref_bad("fraud/dev/@latest");
    expect_ref_bad("Fraud/dev/m@latest");
}

static void test_ref_number(void **state)
{
    (void)state;
    struct artifact_ref r;
    char why[256];
    assert_int_equal(ref_parse("fraud/dev/m@1", NULL, &r, why, sizeof(why)), ERR_OK);
    assert_int_equal(r.kind, REF_NUMBER);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.explicit_version, 1);
    assert_string_equal(r.path.full, "fraud/dev/m");

    assert_int_equal(ref_parse("fraud/dev/m@42", NULL, &r, why, sizeof(why)), ERR_OK);
    assert_int_equal(r.version, 42);
    assert_int_equal(ref_parse("fraud/dev/m@1000000", NULL, &r, why, sizeof(why)), ERR_OK);
    assert_int_equal(r.version, 1000000);

    /* 2^53 is the largest version (exact in a JSON number / double). */
    assert_int_equal(ref_parse("fraud/dev/m@9007199254740992", NULL, &r, why, sizeof(why)), ERR_OK);
    assert_true(r.version == (UINT64_C(1) << 53));
    assert_int_equal(ref_parse("fraud/dev/m@9007199254740991", NULL, &r, why, sizeof(why)), ERR_OK);
    assert_true(r.version == (UINT64_C(1) << 53) - 1);

    const char *bad[] = {
        "fraud/dev/m@0",
        "fraud/dev/m@00",
        "fraud/dev/m@01",
        "fraud/dev/m@007",
        "fraud/dev/m@-1",
        "fraud/dev/m@+1",
        "fraud/dev/m@1.0",
        "fraud/dev/m@1e3",
        "fraud/dev/m@0x10",
        "fraud/dev/m@ 1",
        "fraud/dev/m@1 ",
        "fraud/dev/m@1a",
        "fraud/dev/m@a1",
        "fraud/dev/m@1@2",
        "fraud/dev/m@@1",
        "fraud/dev/m@1/x",
        "fraud/dev/m@\xd9\xa1",     /* Arabic-Indic digit one */
        "fraud/dev/m@\xef\xbc\x91", /* fullwidth digit one */
        "fraud/dev/m@9007199254740993",
        "fraud/dev/m@9999999999999999",
        "fraud/dev/m@10000000000000000",
        "fraud/dev/m@18446744073709551615",
        "fraud/dev/m@18446744073709551616",
        "fraud/dev/m@18446744073709551617",
        "fraud/dev/m@99999999999999999999999999999999",
        "fraud/dev/m@00000000000000000000001",
        "fraud/dev/m@1\n",
        "@1",
        "fraud/dev@1",
        "fraud/dev/@1",
        "fraud/qa/m@1",
        "fraud/dev/../m@1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_ref_bad(bad[i]);
}

static void test_ref_sha256(void **state)
{
    (void)state;
    struct artifact_ref r;
    char why[256];
    assert_int_equal(ref_parse("fraud/dev/m@sha256:" HEX64_LOWER, NULL, &r, why, sizeof(why)),
                     ERR_OK);
    assert_int_equal(r.kind, REF_SHA256);
    assert_int_equal(r.explicit_version, 1);
    assert_string_equal(r.sha256, HEX64_LOWER);
    assert_string_equal(r.path.full, "fraud/dev/m");

    /* Upper and mixed case are normalised to lower case. */
    assert_int_equal(ref_parse("fraud/dev/m@sha256:" HEX64_UPPER, NULL, &r, why, sizeof(why)),
                     ERR_OK);
    assert_string_equal(r.sha256, HEX64_LOWER);
    assert_int_equal(ref_parse("fraud/dev/m@sha256:" HEX64_MIXED, NULL, &r, why, sizeof(why)),
                     ERR_OK);
    assert_string_equal(r.sha256, HEX64_LOWER);

    char s[400], hex[200];
    /* 63 and 65 hex digits are refused. */
    snprintf(s, sizeof(s), "fraud/dev/m@sha256:%s", repeat(hex, 'a', 63));
    expect_ref_bad(s);
    snprintf(s, sizeof(s), "fraud/dev/m@sha256:%s", repeat(hex, 'a', 65));
    expect_ref_bad(s);
    snprintf(s, sizeof(s), "fraud/dev/m@sha256:%s", repeat(hex, 'a', 128));
    expect_ref_bad(s);
    /* Non-hex characters anywhere. */
    repeat(hex, 'a', 64);
    const char subs[] = {'g', 'G', 'x', ' ', '-', ':', '@', '/', '.', '\n', '%', 'z'};
    for (size_t i = 0; i < sizeof(subs); i++) {
        for (size_t pos = 0; pos < 64; pos += 21) {
            char h[65];
            memcpy(h, hex, sizeof(h));
            h[pos] = subs[i];
            snprintf(s, sizeof(s), "fraud/dev/m@sha256:%s", h);
            expect_ref_bad(s);
        }
    }
    expect_ref_bad("fraud/dev/m@sha256:");
    expect_ref_bad("fraud/dev/m@sha256");
    expect_ref_bad("fraud/dev/m@sha512:" HEX64_LOWER);
    expect_ref_bad("fraud/dev/m@sha256:" HEX64_LOWER "@1");
    expect_ref_bad("fraud/dev/m@sha256:" HEX64_LOWER "/x");
    expect_ref_bad("fraud/dev/m@sha256::" HEX64_LOWER);
    expect_ref_bad("fraud/dev/m@sha256: " HEX64_LOWER);
    expect_ref_bad("fraud/dev/m@" HEX64_LOWER);
    expect_ref_bad("Fraud/dev/m@sha256:" HEX64_LOWER);
}

static void test_ref_length_limits(void **state)
{
    (void)state;
    char s[REF_MAX + 200], name[700];
    struct artifact_ref r;
    char why[256];
    /* The longest valid reference: longest path and a content address. */
    char proj[80];
    repeat(proj, 'p', 63);
    build_name(name, sizeof(name), "", 128, 512);
    snprintf(s, sizeof(s), "%s/staging/%s@sha256:%s", proj, name, HEX64_LOWER);
    assert_int_equal(ref_parse(s, NULL, &r, why, sizeof(why)), ERR_OK);
    assert_int_equal(r.kind, REF_SHA256);
    assert_string_equal(r.path.name, name);
    /* A name over the limit is refused even with a valid version. */
    build_name(name, sizeof(name), "", 128, 513);
    snprintf(s, sizeof(s), "fraud/dev/%s@1", name);
    expect_ref_bad(s);
    /* Anything longer than REF_MAX. */
    memset(s, 'a', REF_MAX + 10);
    memcpy(s, "fraud/dev/", 10);
    s[REF_MAX + 10] = '\0';
    expect_ref_bad(s);
    assert_int_equal(ref_parse(NULL, NULL, &r, why, sizeof(why)), ERR_INVALID);
}

static void test_ref_format_round_trip(void **state)
{
    (void)state;
    const char *refs[] = {
        "fraud/dev/m@1",
        "fraud/prod/a/b/c@9007199254740992",
        "fraud/dev/m@sha256:" HEX64_LOWER,
        "fraud/staging/x.y@latest",
    };
    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        struct artifact_ref r, r2;
        char out[REF_MAX + 1], why[256];
        assert_int_equal(ref_parse(refs[i], NULL, &r, why, sizeof(why)), ERR_OK);
        assert_int_equal(ref_format(&r, out, sizeof(out)), 0);
        assert_string_equal(out, refs[i]);
        assert_int_equal(ref_parse(out, NULL, &r2, why, sizeof(why)), ERR_OK);
        assert_int_equal(r2.kind, r.kind);
        assert_true(r2.version == r.version);
        assert_string_equal(r2.sha256, r.sha256);
        assert_string_equal(r2.path.full, r.path.full);
    }
    /* A bare path formats as @latest; upper-case digests format in lower case. */
    struct artifact_ref r;
    char out[REF_MAX + 1], why[256];
    assert_int_equal(ref_parse("fraud/dev/m", NULL, &r, why, sizeof(why)), ERR_OK);
    assert_int_equal(ref_format(&r, out, sizeof(out)), 0);
    assert_string_equal(out, "fraud/dev/m@latest");
    assert_int_equal(ref_parse("fraud/dev/m@sha256:" HEX64_UPPER, NULL, &r, why, sizeof(why)),
                     ERR_OK);
    assert_int_equal(ref_format(&r, out, sizeof(out)), 0);
    assert_string_equal(out, "fraud/dev/m@sha256:" HEX64_LOWER);
    /* Too small an output buffer is reported, not overrun. */
    char small[32];
    memset(small, 'Z', sizeof(small));
    assert_int_equal(ref_parse("fraud/dev/model@12", NULL, &r, why, sizeof(why)), ERR_OK);
    assert_int_equal(ref_format(&r, small, 10), -1);
    assert_int_equal(small[10], 'Z');
    /* 18 characters need 19 bytes: one less does not fit. */
    assert_int_equal(ref_format(&r, small, strlen("fraud/dev/model@12")), -1);
    char exact[19];
    assert_int_equal(ref_format(&r, exact, sizeof(exact)), 0);
    assert_string_equal(exact, "fraud/dev/model@12");
}

static void test_prefix_valid(void **state)
{
    (void)state;
    const char *good[] = {
        "",
        "f",
        "fraud",
        "fraud/",
        "fraud/d",
        "fraud/dev",
        "fraud/dev/",
        "fraud/dev/mo",
        "fraud/dev/a/b/",
        "fraud/dev/Model.v2",
        "0",
        "fraud/dev/x-",
        "fraud/dev/a_",
        "F",
        "fraud/dev/x..",
    };
    char why[256];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (path_prefix_check(good[i], why, sizeof(why)) != ERR_OK)
            fail_msg("path_prefix_check(\"%s\") failed: %s", good[i], why);
    }
}

static void test_prefix_invalid(void **state)
{
    (void)state;
    const char *bad[] = {
        "/",         "/fraud",       "//",           "fraud//",      "fraud//dev",
        ".",         "..",           "../",          "fraud/.",      "fraud/..",
        "fraud/../", "fraud/dev/.x", "fraud/dev/-x", "fraud/dev/_x", "-x",
        "_x",        ".x",           "a b",          "a\tb",         "a\n",
        "a%2e",      "%2e%2e",       "a@1",          "a*",           "a?",
        "a\\b",      "caf\xc3\xa9",  "a\x7f",        "a\x01",        "a\xff",
    };
    char why[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        if (path_prefix_check(bad[i], why, sizeof(why)) != ERR_INVALID)
            fail_msg("path_prefix_check(\"%s\") should fail", bad[i]);
        assert_true(why[0] != '\0');
    }
    /* Length: a prefix cannot be longer than the longest path. */
    char s[PATH_FULL_MAX + 10];
    memset(s, 'a', PATH_FULL_MAX + 1);
    s[PATH_FULL_MAX + 1] = '\0';
    assert_int_equal(path_prefix_check(s, why, sizeof(why)), ERR_INVALID);
    assert_int_equal(path_prefix_check("fraud/..", NULL, 0), ERR_INVALID);
}

/* Deterministic pseudo-random strings over a hostile alphabet: whatever the
 * input, parsing never crashes, and anything accepted satisfies the grammar. */
static int char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '/';
}

static void test_random_inputs(void **state)
{
    (void)state;
    static const char alphabet[] = "ab/./..//@-_%Ze\x01\x7f\xc3\xa9 devprodstaging:sha256";
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    char s[80], why[256];
    for (int iter = 0; iter < 200000; iter++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t len = (size_t)(x % 40);
        /* Half of the inputs start from a valid prefix to reach deeper checks. */
        size_t start = 0;
        if (x & (1ULL << 40)) {
            memcpy(s, "fraud/dev/", 10);
            start = 10;
        }
        for (size_t i = start; i < start + len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s[i] = alphabet[x % (sizeof(alphabet) - 1)];
        }
        s[start + len] = '\0';
        struct artifact_path p;
        if (path_parse(s, NULL, &p, why, sizeof(why)) == ERR_OK) {
            for (size_t i = 0; s[i] != '\0'; i++)
                assert_true(char_ok(s[i]));
            assert_null(strstr(s, "//"));
            assert_null(strstr(s, "/."));
            assert_true(s[strlen(s) - 1] != '/');
            assert_string_equal(p.full, s);
        }
        struct artifact_ref r;
        if (ref_parse(s, NULL, &r, why, sizeof(why)) == ERR_OK) {
            assert_null(strstr(r.path.full, "/."));
            if (r.kind == REF_NUMBER)
                assert_true(r.version >= 1 && r.version <= (UINT64_C(1) << 53));
        }
        if (path_prefix_check(s, why, sizeof(why)) == ERR_OK) {
            for (size_t i = 0; s[i] != '\0'; i++)
                assert_true(char_ok(s[i]));
            assert_null(strstr(s, "//"));
            assert_null(strstr(s, "/."));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_valid),
        cmocka_unit_test(test_path_project_limits),
        cmocka_unit_test(test_path_env),
        cmocka_unit_test(test_path_name_segments),
        cmocka_unit_test(test_path_control_and_non_ascii),
        cmocka_unit_test(test_path_length_limits),
        cmocka_unit_test(test_path_why_buffer),
        cmocka_unit_test(test_ref_latest),
        cmocka_unit_test(test_ref_number),
        cmocka_unit_test(test_ref_sha256),
        cmocka_unit_test(test_ref_length_limits),
        cmocka_unit_test(test_ref_format_round_trip),
        cmocka_unit_test(test_prefix_valid),
        cmocka_unit_test(test_prefix_invalid),
        cmocka_unit_test(test_random_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
