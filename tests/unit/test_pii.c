/*
 * Unit tests of the streaming PII scanner: what it finds, what it must not
 * find (near-misses), matches split across chunks at every offset, binary
 * content, redaction and the settings that decide which uploads are scanned.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "app/pii.h"
#include "meta/access.h"
#include "meta/meta.h"

struct counts {
    uint64_t n[PII_TYPE_COUNT];
};

static struct counts scan_chunks(const char *text, size_t len, size_t chunk)
{
    struct pii_scanner *s = NULL;
    assert_int_equal(pii_scanner_new(&s), ERR_OK);
    for (size_t off = 0; off < len; off += chunk)
        pii_scanner_feed(s, (const uint8_t *)text + off, len - off < chunk ? len - off : chunk);
    pii_scanner_finish(s);
    struct counts c;
    for (int t = 0; t < PII_TYPE_COUNT; t++)
        c.n[t] = pii_scanner_count(s, (enum pii_type)t);
    pii_scanner_free(s);
    return c;
}

static struct counts scan(const char *text)
{
    size_t len = strlen(text);
    return scan_chunks(text, len, len > 0 ? len : 1);
}

static uint64_t total(struct counts c)
{
    uint64_t n = 0;
    for (int t = 0; t < PII_TYPE_COUNT; t++)
        n += c.n[t];
    return n;
}

struct fixture {
    const char *text;
    enum pii_type type;
};

/* Each holds exactly one finding of its type, in some context. */
static const struct fixture positives[] = {
    {"contact: john.smith@example.com, thanks", PII_EMAIL},
    {"Jane <jane_doe+ml@mail.co.uk>", PII_EMAIL},
    {"id,email\n7,A.B-C@Sub.Example.ORG\n", PII_EMAIL},
    {"\"x@y.io\"", PII_EMAIL},
    {"card 4111 1111 1111 1111 expires", PII_CARD},
    {"4111-1111-1111-1111", PII_CARD},
    {"n,4111111111111111,ok", PII_CARD},
    {"amex 3782 822463 10005.", PII_CARD},
    {"mc 5555555555554444", PII_CARD},
    {"mc2 2223003122003222", PII_CARD},
    {"discover 6011111111111117", PII_CARD},
    {"visa13 4222222222222", PII_CARD},
    {"call +44 20 7946 0958 now", PII_PHONE},
    {"+14155552671", PII_PHONE},
    {"(415) 555-2671", PII_PHONE},
    {"tel: 415-555-2671.", PII_PHONE},
    {"415.555.2671", PII_PHONE},
    {"1-415-555-2671", PII_PHONE},
    {"+1 (415) 555-2671", PII_PHONE},
    {"uk 020 7946 0958", PII_PHONE},
    {"fr 01 23 45 67 89", PII_PHONE},
    {"iban GB82 WEST 1234 5698 7654 32 end", PII_IBAN},
    {"DE89370400440532013000", PII_IBAN},
    {"FR1420041010050500013M02606,", PII_IBAN},
    {"NL91ABNA0417164300", PII_IBAN},
    {"ssn 536-22-1234;", PII_US_SSN},
    {"nino AB123456C.", PII_UK_NINO},
    {"AB 12 34 56 C", PII_UK_NINO},
};

/* None of these is personal data as far as the scanner is concerned. */
static const char *const negatives[] = {
    "card 4111 1111 1111 1112 (Luhn fails)",
    "4111111111111112",
    "5555555555554443",
    "1234567812345670",                /* Luhn-valid, no issuer prefix */
    "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", /* a table of small numbers */
    "4111 11111 111 1111",             /* not a card grouping */
    "id4111111111111111",              /* glued to a word */
    "4111111111111111x",
    "0.4111111111111111",          /* a decimal */
    "GB82 WEST 1234 5698 7654 33", /* bad check digits */
    "DE89370400440532013001",
    "XX89370400440532013000", /* unknown country */
    "DE8937040044053201300",  /* too short */
    "user@example",
    "@property\ndef f(self): pass",
    "obj@property",
    "y = x@self.weight + b",
    "icon@2x.png",
    "npm i left-pad@1.3.0",
    "a@b.c",
    "mail@@example.com",
    ".a@example.com is not valid, nor a.@example.com",
    "v1.2.3.4 and 10.0.0.1 and 192.168.100.200",
    "2024-01-15 10:30:00",
    "2024-01-15T10:30:00Z",
    "ts=1700000000 ms=1700000000123",
    "000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000 078-05-1120",
    "123456789",
    "QQ123456C AB123456E GB123456A AB12345C",
    "555-1234",
    "123-456-7890",
    "4155552671",
    "pi 3.14159 2.71828 1.41421",
    "price,qty\n12.50,3\n1999.99,10\n",
    "+12",
    "(555)",
    "THE QUICK BROWN FOX AB CD",
};

static void test_positives(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(positives) / sizeof(positives[0]); i++) {
        struct counts c = scan(positives[i].text);
        if (c.n[positives[i].type] != 1 || total(c) != 1)
            fail_msg("'%s': expected one %s, got %llu of it and %llu in all", positives[i].text,
                     pii_type_name(positives[i].type), (unsigned long long)c.n[positives[i].type],
                     (unsigned long long)total(c));
    }
}

static void test_negatives(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(negatives) / sizeof(negatives[0]); i++) {
        struct counts c = scan(negatives[i]);
        if (total(c) != 0) {
            for (int t = 0; t < PII_TYPE_COUNT; t++) {
                if (c.n[t] > 0)
                    print_error("'%s': found %s\n", negatives[i], pii_type_name((enum pii_type)t));
            }
            fail_msg("near-miss %zu was reported", i);
        }
    }
}

/* Every fixture, in a line of filler, split in two at every offset and fed
 * one byte at a time, gives the same answer as in one piece. */
static void test_split_everywhere(void **state)
{
    (void)state;
    char line[256];
    for (size_t i = 0; i < sizeof(positives) / sizeof(positives[0]); i++) {
        int n = snprintf(line, sizeof(line), "lorem ipsum, %s\n", positives[i].text);
        assert_true(n > 0 && (size_t)n < sizeof(line));
        struct counts whole = scan(line);
        assert_int_equal(whole.n[positives[i].type], 1);
        for (size_t cut = 1; cut < (size_t)n; cut++) {
            struct pii_scanner *s = NULL;
            assert_int_equal(pii_scanner_new(&s), ERR_OK);
            pii_scanner_feed(s, (const uint8_t *)line, cut);
            pii_scanner_feed(s, (const uint8_t *)line + cut, (size_t)n - cut);
            pii_scanner_finish(s);
            if (pii_scanner_count(s, positives[i].type) != 1 || pii_scanner_total(s) != 1)
                fail_msg("'%s' split at %zu: %llu found", positives[i].text, cut,
                         (unsigned long long)pii_scanner_total(s));
            pii_scanner_free(s);
        }
        struct counts bytes = scan_chunks(line, (size_t)n, 1);
        assert_memory_equal(&bytes, &whole, sizeof(whole));
    }
}

/* Text of short numbers, decimals, times and words: many anchors that the
 * first pass must drop, and none that is a finding. */
static const char filler[] = "id 7,12.50 09:30 x-1 (3) 2024-01-02 batch 42, ab 123456789012, "
                             "note AB c 1.2.3 +7 x 99 0.25 done 8 ";

/* Every fixture at every position relative to the first pass's 64-byte
 * windows, between fillers ('|' keeps a filler's number from running into
 * the fixture's): positives counted once, negatives never. */
static void test_window_offsets(void **state)
{
    (void)state;
    char text[1024];
    for (size_t off = 0; off < 130; off++) {
        for (size_t i = 0; i < sizeof(positives) / sizeof(positives[0]); i++) {
            int n = snprintf(text, sizeof(text), "%.*s | %s | \n%s", (int)off, filler,
                             positives[i].text, filler);
            assert_true(n > 0 && (size_t)n < sizeof(text));
            struct counts c = scan(text);
            if (c.n[positives[i].type] != 1 || total(c) != 1)
                fail_msg("'%s' at %zu: %llu found", positives[i].text, off,
                         (unsigned long long)total(c));
            struct counts odd = scan_chunks(text, (size_t)n, 61);
            assert_memory_equal(&odd, &c, sizeof(c));
        }
        for (size_t i = 0; i < sizeof(negatives) / sizeof(negatives[0]); i++) {
            int n = snprintf(text, sizeof(text), "%.*s | %s | \n%s", (int)off, filler, negatives[i],
                             filler);
            assert_true(n > 0 && (size_t)n < sizeof(text));
            if (total(scan(text)) != 0)
                fail_msg("'%s' at %zu: found", negatives[i], off);
        }
    }
}

/* Findings around the scanner's own 64 KiB pieces, in one large feed and in
 * odd-sized chunks: every one is counted once. */
static void test_large_stream(void **state)
{
    (void)state;
    size_t len = 300 * 1024;
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    for (size_t k = 0; k < len; k++)
        buf[k] = "the quick brown fox, 12 jumps.\n"[k % 31];
    buf[len] = '\0';
    const char *email = " jane.doe@example.com ";
    const char *card = " 4111 1111 1111 1111 ";
    size_t el = strlen(email), cl = strlen(card);
    size_t placed = 0;
    for (size_t k = 0; k < 48; k++) {
        size_t at = (k % 2 ? 131072 : 65536) - 600 + k * 25;
        const char *what = k % 2 ? card : email;
        memcpy(buf + at, what, k % 2 ? cl : el);
        placed++;
    }
    /* And one at the very end of the stream. */
    memcpy(buf + len - el, email, el);
    struct counts one = scan_chunks(buf, len, len);
    assert_int_equal(one.n[PII_EMAIL], 25);
    assert_int_equal(one.n[PII_CARD], 24);
    assert_int_equal(total(one), placed + 1);
    static const size_t chunks[] = {1, 7, 4096, 65535, 65536, 65537, 100000};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct counts got = scan_chunks(buf, len, chunks[c]);
        assert_memory_equal(&got, &one, sizeof(one));
    }
    free(buf);
}

static void test_binary_skipped(void **state)
{
    (void)state;
    static const char bin[] = "PAR1\0\0\x15\x04 jane.doe@example.com 4111111111111111";
    struct pii_scanner *s = NULL;
    assert_int_equal(pii_scanner_new(&s), ERR_OK);
    pii_scanner_feed(s, (const uint8_t *)bin, sizeof(bin) - 1);
    pii_scanner_finish(s);
    assert_int_equal(pii_scanner_is_text(s), 0);
    assert_int_equal(pii_scanner_total(s), 0);
    pii_scanner_free(s);

    /* A NUL within the sniffed prefix voids findings made before it. */
    char buf[9000];
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "x jane.doe@example.com ", 23);
    buf[8000] = '\0';
    assert_int_equal(pii_scanner_new(&s), ERR_OK);
    pii_scanner_feed(s, (const uint8_t *)buf, 100);
    pii_scanner_feed(s, (const uint8_t *)buf + 100, sizeof(buf) - 100);
    pii_scanner_finish(s);
    assert_int_equal(pii_scanner_is_text(s), 0);
    assert_int_equal(pii_scanner_total(s), 0);
    pii_scanner_free(s);

    /* Past the sniffed prefix, a NUL no longer makes it binary. */
    buf[8000] = 'a';
    buf[8500] = '\0';
    assert_int_equal(pii_scanner_new(&s), ERR_OK);
    pii_scanner_feed(s, (const uint8_t *)buf, sizeof(buf));
    pii_scanner_finish(s);
    assert_int_equal(pii_scanner_is_text(s), 1);
    assert_int_equal(pii_scanner_count(s, PII_EMAIL), 1);
    pii_scanner_free(s);

    /* Many control bytes: binary. */
    char ctl[200];
    memset(ctl, 'b', sizeof(ctl));
    memcpy(ctl, "a@example.com ", 14);
    for (size_t k = 20; k < sizeof(ctl); k += 10)
        ctl[k] = 0x01;
    struct counts c = scan_chunks(ctl, sizeof(ctl), sizeof(ctl));
    assert_int_equal(total(c), 0);
}

static void test_report_redacted(void **state)
{
    (void)state;
    const char *text = "a,jane.doe@example.com,4111 1111 1111 1111,GB82 WEST 1234 5698 7654 32,"
                       "536-22-1234\nb,john@example.org,+44 20 7946 0958,x@y.io\n";
    struct pii_scanner *s = NULL;
    assert_int_equal(pii_scanner_new(&s), ERR_OK);
    pii_scanner_feed(s, (const uint8_t *)text, strlen(text));
    pii_scanner_finish(s);
    json_t *r = pii_scanner_report(s);
    assert_non_null(r);
    assert_true(json_is_true(json_object_get(r, "detected")));
    json_t *types = json_object_get(r, "types");
    assert_int_equal(json_integer_value(json_object_get(types, "email")), 3);
    assert_int_equal(json_integer_value(json_object_get(types, "card")), 1);
    assert_int_equal(json_integer_value(json_object_get(types, "iban")), 1);
    assert_int_equal(json_integer_value(json_object_get(types, "us_ssn")), 1);
    assert_int_equal(json_integer_value(json_object_get(types, "phone")), 1);
    assert_null(json_object_get(types, "uk_nino"));
    json_t *samples = json_object_get(r, "samples");
    /* At most two samples per type. */
    assert_int_equal(json_array_size(samples), 6);
    char *dump = json_dumps(r, JSON_COMPACT);
    assert_non_null(dump);
    static const char *const secrets[] = {"jane.doe", "john@", "example.com", "4111 1111",
                                          "41111111", "WEST",  "1234 5698",   "536-22",
                                          "7946",     "1234"};
    for (size_t k = 0; k < sizeof(secrets) / sizeof(secrets[0]); k++) {
        if (strstr(dump, secrets[k]) != NULL)
            fail_msg("the report shows '%s': %s", secrets[k], dump);
    }
    free(dump);
    json_t *first = json_array_get(samples, 0);
    assert_string_equal(json_string_value(json_object_get(first, "type")), "email");
    assert_int_equal(json_integer_value(json_object_get(first, "offset")), 2);
    assert_string_equal(json_string_value(json_object_get(first, "redacted")), "j***@e***.com");
    json_decref(r);
    pii_scanner_free(s);

    /* Nothing found: detected false, empty types. */
    assert_int_equal(pii_scanner_new(&s), ERR_OK);
    pii_scanner_feed(s, (const uint8_t *)"a,b\n1,2\n", 8);
    pii_scanner_finish(s);
    r = pii_scanner_report(s);
    assert_true(json_is_false(json_object_get(r, "detected")));
    assert_int_equal(json_object_size(json_object_get(r, "types")), 0);
    json_decref(r);
    pii_scanner_free(s);
    pii_scanner_free(NULL);
}

static void test_settings(void **state)
{
    (void)state;
    char dir[] = "/tmp/coffer-test-pii-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/coffer.db", dir);
    struct meta *m = NULL;
    assert_int_equal(meta_open(path, 1, &m), ERR_OK);
    assert_true(pii_scan_wanted(m, "dataset"));
    assert_true(pii_scan_wanted(m, "features"));
    assert_false(pii_scan_wanted(m, "model"));
    assert_false(pii_scan_wanted(m, NULL));
    assert_int_equal(meta_setting_set(m, PII_SETTING_KINDS, "dataset, other"), ERR_OK);
    assert_true(pii_scan_wanted(m, "other"));
    assert_false(pii_scan_wanted(m, "features"));
    assert_false(pii_scan_wanted(m, "data"));
    assert_int_equal(meta_setting_set(m, PII_SETTING_SCAN, "off"), ERR_OK);
    assert_false(pii_scan_wanted(m, "dataset"));
    assert_int_equal(meta_setting_set(m, PII_SETTING_SCAN, "on"), ERR_OK);
    assert_true(pii_scan_wanted(m, "dataset"));
    meta_close(m);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positives),        cmocka_unit_test(test_negatives),
        cmocka_unit_test(test_split_everywhere), cmocka_unit_test(test_large_stream),
        cmocka_unit_test(test_binary_skipped),   cmocka_unit_test(test_report_redacted),
        cmocka_unit_test(test_settings),         cmocka_unit_test(test_window_offsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
