/*
 * Tests of the streaming AEAD format: round trips at the sizes around
 * segment boundaries with many input chunkings, and detection of every kind
 * of tampering (flipped bits, truncation, reordering, splicing, wrong key or
 * identity).
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

#include "crypt/stream.h"

#define SEG STREAM_MIN_SEGMENT

static const uint8_t key_a[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t key_b[32] = {99};
static const char id_a[] = "blob-0001";
static const char id_b[] = "blob-0002";

struct membuf {
    uint8_t *data;
    size_t len, cap;
    int fail_after; /* sink fails on this call number (1-based); 0 = never */
    int calls;
};

static int membuf_sink(void *ctx, const uint8_t *buf, size_t len)
{
    struct membuf *m = ctx;
    m->calls++;
    if (m->fail_after != 0 && m->calls >= m->fail_after)
        return -1;
    if (m->len + len > m->cap) {
        size_t cap = m->cap == 0 ? 1024 : m->cap;
        while (cap < m->len + len)
            cap *= 2;
        uint8_t *p = realloc(m->data, cap);
        assert_non_null(p);
        m->data = p;
        m->cap = cap;
    }
    if (len > 0)
        memcpy(m->data + m->len, buf, len);
    m->len += len;
    return 0;
}

static void membuf_free(struct membuf *m)
{
    free(m->data);
    memset(m, 0, sizeof(*m));
}

/* Deterministic pseudo-random generator so failures reproduce. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint8_t *make_plain(size_t len)
{
    uint8_t *p = malloc(len + 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)rng_next();
    return p;
}

enum chunking { CHUNK_ALL, CHUNK_ONE, CHUNK_RANDOM, CHUNK_SEGMENT, CHUNK_COUNT };

/* Seals plain into out, feeding it with the given chunking. */
static void seal(const uint8_t *key, const char *id, uint32_t seg, const uint8_t *plain, size_t len,
                 enum chunking how, struct membuf *out)
{
    struct stream_writer *w = NULL;
    assert_int_equal(
        stream_writer_new(&w, key, (const uint8_t *)id, strlen(id), seg, membuf_sink, out), ERR_OK);
    assert_int_equal(out->len, STREAM_HEADER_LEN);
    size_t off = 0;
    while (off < len) {
        size_t n = len - off;
        if (how == CHUNK_ONE)
            n = 1;
        else if (how == CHUNK_RANDOM)
            n = 1 + (size_t)(rng_next() % (3 * (seg == 0 ? STREAM_DEFAULT_SEGMENT : seg)));
        else if (how == CHUNK_SEGMENT)
            n = seg;
        if (n > len - off)
            n = len - off;
        assert_int_equal(stream_writer_update(w, plain + off, n), ERR_OK);
        off += n;
        if (how == CHUNK_RANDOM && rng_next() % 4 == 0)
            assert_int_equal(stream_writer_update(w, plain + off, 0), ERR_OK);
    }
    assert_int_equal(stream_writer_finish(w), ERR_OK);
    stream_writer_free(w);
}

/*
 * Opens every segment of the stream in buf. Returns the first error; on
 * success *plain holds the plaintext (caller frees).
 */
static enum err open_all(const uint8_t *key, const char *id, const uint8_t *buf, size_t len,
                         uint8_t **plain, size_t *plain_len)
{
    struct stream_reader *r = NULL;
    *plain = NULL;
    *plain_len = 0;
    enum err rc = stream_reader_new(&r, key, (const uint8_t *)id, strlen(id), buf, len, len);
    if (rc != ERR_OK)
        return rc;
    uint64_t total = stream_reader_plaintext_size(r);
    uint8_t *out = malloc(total + 1);
    assert_non_null(out);
    size_t pos = 0;
    for (uint64_t i = 0; i < stream_reader_segment_count(r); i++) {
        uint64_t off = stream_reader_segment_offset(r, i);
        size_t sealed_len = stream_reader_segment_sealed_len(r, i), n = 0;
        assert_true(off + sealed_len <= len);
        rc = stream_reader_open_segment(r, i, buf + off, sealed_len, out + pos, total - pos, &n);
        if (rc != ERR_OK)
            break;
        pos += n;
    }
    stream_reader_free(r);
    if (rc != ERR_OK) {
        free(out);
        return rc;
    }
    assert_int_equal(pos, total);
    *plain = out;
    *plain_len = pos;
    return ERR_OK;
}

static void expect_integrity(const uint8_t *key, const char *id, const uint8_t *buf, size_t len)
{
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    assert_int_equal(open_all(key, id, buf, len, &plain, &plain_len), ERR_INTEGRITY);
    assert_null(plain);
}

static void test_round_trip_sizes(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 3 * SEG - 1, 10 * SEG + 7};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint8_t *plain = make_plain(sizes[s]);
        for (int how = 0; how < CHUNK_COUNT; how++) {
            struct membuf ct = {0};
            seal(key_a, id_a, SEG, plain, sizes[s], (enum chunking)how, &ct);
            assert_int_equal(ct.len, stream_ciphertext_size(sizes[s], SEG));

            struct stream_reader *r = NULL;
            assert_int_equal(stream_reader_new(&r, key_a, (const uint8_t *)id_a, strlen(id_a),
                                               ct.data, ct.len, ct.len),
                             ERR_OK);
            uint64_t want_segments = sizes[s] == 0 ? 1 : (sizes[s] + SEG - 1) / SEG;
            assert_int_equal(stream_reader_segment_count(r), want_segments);
            assert_int_equal(stream_reader_plaintext_size(r), sizes[s]);
            assert_int_equal(stream_reader_segment_size(r), SEG);
            stream_reader_free(r);

            uint8_t *out = NULL;
            size_t out_len = 0;
            assert_int_equal(open_all(key_a, id_a, ct.data, ct.len, &out, &out_len), ERR_OK);
            assert_int_equal(out_len, sizes[s]);
            assert_memory_equal(out, plain, sizes[s]);
            free(out);
            membuf_free(&ct);
        }
        free(plain);
    }
}

static void test_default_segment_size(void **state)
{
    (void)state;
    const size_t len = 3 * STREAM_DEFAULT_SEGMENT + 123;
    uint8_t *plain = make_plain(len);
    struct membuf ct = {0};
    seal(key_a, id_a, 0, plain, len, CHUNK_RANDOM, &ct);
    /* Segment size is stored big-endian right after magic and version. */
    assert_memory_equal(ct.data, "CFRSTRM\x01\x00\x01\x00\x00", 12);
    assert_int_equal(ct.len, stream_ciphertext_size(len, 0));
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_int_equal(open_all(key_a, id_a, ct.data, ct.len, &out, &out_len), ERR_OK);
    assert_int_equal(out_len, len);
    assert_memory_equal(out, plain, len);
    free(out);
    free(plain);
    membuf_free(&ct);
}

static void test_ciphertext_size(void **state)
{
    (void)state;
    assert_int_equal(stream_ciphertext_size(0, SEG), STREAM_HEADER_LEN + 16);
    assert_int_equal(stream_ciphertext_size(1, SEG), STREAM_HEADER_LEN + 16 + 1);
    assert_int_equal(stream_ciphertext_size(SEG, SEG), STREAM_HEADER_LEN + 16 + SEG);
    assert_int_equal(stream_ciphertext_size(SEG + 1, SEG), STREAM_HEADER_LEN + 32 + SEG + 1);
    assert_int_equal(stream_ciphertext_size(SEG, SEG - 1), 0);
    assert_int_equal(stream_ciphertext_size(SEG, STREAM_MAX_SEGMENT + 1), 0);
    /* 2^32-1 segments is the limit. */
    uint64_t max_plain = STREAM_MAX_SEGMENTS * SEG;
    assert_int_equal(stream_ciphertext_size(max_plain, SEG),
                     STREAM_HEADER_LEN + STREAM_MAX_SEGMENTS * 16 + max_plain);
    assert_int_equal(stream_ciphertext_size(max_plain + 1, SEG), 0);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    struct membuf ct = {0};
    struct stream_writer *w = (struct stream_writer *)&ct;
    assert_int_equal(stream_writer_new(&w, key_a, NULL, 0, SEG - 1, membuf_sink, &ct), ERR_INVALID);
    assert_null(w);
    assert_int_equal(
        stream_writer_new(&w, key_a, NULL, 0, STREAM_MAX_SEGMENT + 1, membuf_sink, &ct),
        ERR_INVALID);
    assert_int_equal(stream_writer_new(&w, key_a, NULL, 5, SEG, membuf_sink, &ct), ERR_INVALID);
    assert_int_equal(stream_writer_new(&w, key_a, NULL, 0, SEG, NULL, &ct), ERR_INVALID);
    static uint8_t big_id[STREAM_MAX_IDENTITY + 1];
    assert_int_equal(stream_writer_new(&w, key_a, big_id, sizeof(big_id), SEG, membuf_sink, &ct),
                     ERR_INVALID);
    assert_int_equal(ct.len, 0);

    /* An empty identity is allowed. */
    assert_int_equal(stream_writer_new(&w, key_a, NULL, 0, SEG, membuf_sink, &ct), ERR_OK);
    assert_int_equal(stream_writer_update(w, (const uint8_t *)"x", 1), ERR_OK);
    assert_int_equal(stream_writer_finish(w), ERR_OK);
    /* A finished writer takes no more data. */
    assert_int_equal(stream_writer_update(w, (const uint8_t *)"x", 1), ERR_INVALID);
    assert_int_equal(stream_writer_finish(w), ERR_INVALID);
    stream_writer_free(w);
    stream_writer_free(NULL);
    stream_reader_free(NULL);
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_int_equal(open_all(key_a, "", ct.data, ct.len, &out, &out_len), ERR_OK);
    assert_int_equal(out_len, 1);
    assert_int_equal(out[0], 'x');
    free(out);
    expect_integrity(key_a, id_a, ct.data, ct.len);
    membuf_free(&ct);
}

/* A full segment is held back until the writer knows whether more data follows. */
static void test_holds_back_full_segment(void **state)
{
    (void)state;
    uint8_t *plain = make_plain(2 * SEG);
    struct membuf ct = {0};
    struct stream_writer *w = NULL;
    assert_int_equal(stream_writer_new(&w, key_a, NULL, 0, SEG, membuf_sink, &ct), ERR_OK);
    assert_int_equal(stream_writer_update(w, plain, SEG), ERR_OK);
    assert_int_equal(ct.len, STREAM_HEADER_LEN);
    assert_int_equal(stream_writer_update(w, plain + SEG, 1), ERR_OK);
    assert_int_equal(ct.len, STREAM_HEADER_LEN + SEG + 16);
    assert_int_equal(stream_writer_update(w, plain + SEG + 1, SEG - 1), ERR_OK);
    assert_int_equal(ct.len, STREAM_HEADER_LEN + SEG + 16);
    assert_int_equal(stream_writer_finish(w), ERR_OK);
    assert_int_equal(ct.len, stream_ciphertext_size(2 * SEG, SEG));
    stream_writer_free(w);
    free(plain);
    membuf_free(&ct);
}

static void test_sink_failure(void **state)
{
    (void)state;
    uint8_t *plain = make_plain(3 * SEG);
    struct membuf ct = {.fail_after = 1};
    struct stream_writer *w = NULL;
    assert_int_equal(stream_writer_new(&w, key_a, NULL, 0, SEG, membuf_sink, &ct), ERR_IO);
    assert_null(w);

    ct.fail_after = 3; /* header and first segment succeed */
    ct.calls = 0;
    assert_int_equal(stream_writer_new(&w, key_a, NULL, 0, SEG, membuf_sink, &ct), ERR_OK);
    assert_int_equal(stream_writer_update(w, plain, 3 * SEG), ERR_IO);
    /* A failed writer refuses further use. */
    assert_int_equal(stream_writer_update(w, plain, 1), ERR_INVALID);
    assert_int_equal(stream_writer_finish(w), ERR_INVALID);
    stream_writer_free(w);

    ct.calls = 0;
    ct.fail_after = 2;
    assert_int_equal(stream_writer_new(&w, key_a, NULL, 0, SEG, membuf_sink, &ct), ERR_OK);
    assert_int_equal(stream_writer_update(w, plain, 10), ERR_OK);
    assert_int_equal(stream_writer_finish(w), ERR_IO);
    stream_writer_free(w);
    free(plain);
    membuf_free(&ct);
}

/* A 3.5-segment stream used by the tampering tests. */
static void tamper_fixture(struct membuf *ct, uint8_t **plain, size_t *len)
{
    *len = 3 * SEG + SEG / 2;
    *plain = make_plain(*len);
    seal(key_a, id_a, SEG, *plain, *len, CHUNK_ALL, ct);
}

static void test_flip_header_bytes(void **state)
{
    (void)state;
    struct membuf ct = {0};
    uint8_t *plain;
    size_t len;
    tamper_fixture(&ct, &plain, &len);
    const uint8_t masks[] = {0x01, 0x80, 0xFF};
    for (size_t i = 0; i < STREAM_HEADER_LEN; i++) {
        for (size_t m = 0; m < sizeof(masks); m++) {
            ct.data[i] ^= masks[m];
            expect_integrity(key_a, id_a, ct.data, ct.len);
            ct.data[i] ^= masks[m];
        }
    }
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_int_equal(open_all(key_a, id_a, ct.data, ct.len, &out, &out_len), ERR_OK);
    free(out);
    free(plain);
    membuf_free(&ct);
}

static void test_flip_tags_and_ciphertext(void **state)
{
    (void)state;
    struct membuf ct = {0};
    uint8_t *plain;
    size_t len;
    tamper_fixture(&ct, &plain, &len);
    struct stream_reader *r = NULL;
    assert_int_equal(
        stream_reader_new(&r, key_a, (const uint8_t *)id_a, strlen(id_a), ct.data, ct.len, ct.len),
        ERR_OK);
    uint8_t *out = malloc(SEG);
    assert_non_null(out);
    for (uint64_t i = 0; i < stream_reader_segment_count(r); i++) {
        size_t off = (size_t)stream_reader_segment_offset(r, i);
        size_t sealed_len = stream_reader_segment_sealed_len(r, i), n = 0;
        /* Every tag byte. */
        for (size_t t = sealed_len - 16; t < sealed_len; t++) {
            ct.data[off + t] ^= 0x01;
            memset(out, 0xAA, SEG);
            assert_int_equal(
                stream_reader_open_segment(r, i, ct.data + off, sealed_len, out, SEG, &n),
                ERR_INTEGRITY);
            assert_int_equal(n, 0);
            /* No unauthenticated plaintext is released. */
            for (size_t k = 0; k < sealed_len - 16; k++)
                assert_int_equal(out[k], 0);
            ct.data[off + t] ^= 0x01;
        }
        /* A sample of ciphertext bytes, first and last included. */
        for (size_t c = 0; c < sealed_len - 16; c += (c < 64 ? 1 : 61)) {
            ct.data[off + c] ^= 0x40;
            assert_int_equal(
                stream_reader_open_segment(r, i, ct.data + off, sealed_len, out, SEG, &n),
                ERR_INTEGRITY);
            ct.data[off + c] ^= 0x40;
        }
        ct.data[off + sealed_len - 17] ^= 0x40;
        assert_int_equal(stream_reader_open_segment(r, i, ct.data + off, sealed_len, out, SEG, &n),
                         ERR_INTEGRITY);
        ct.data[off + sealed_len - 17] ^= 0x40;
        /* Untouched again, it opens. */
        assert_int_equal(stream_reader_open_segment(r, i, ct.data + off, sealed_len, out, SEG, &n),
                         ERR_OK);
        assert_int_equal(n, sealed_len - 16);
        assert_memory_equal(out, plain + i * SEG, n);
    }
    free(out);
    stream_reader_free(r);
    free(plain);
    membuf_free(&ct);
}

static void test_truncation_and_extension(void **state)
{
    (void)state;
    struct membuf ct = {0};
    uint8_t *plain;
    size_t len;
    tamper_fixture(&ct, &plain, &len);
    const size_t full = SEG + 16;
    /* Dropping the last segment, or the last two: cut exactly at a segment boundary. */
    expect_integrity(key_a, id_a, ct.data, STREAM_HEADER_LEN + 3 * full);
    expect_integrity(key_a, id_a, ct.data, STREAM_HEADER_LEN + 2 * full);
    expect_integrity(key_a, id_a, ct.data, STREAM_HEADER_LEN + 1 * full);
    /* Cuts inside segments, including ones that leave fewer bytes than a tag. */
    const size_t cuts[] = {0,
                           1,
                           STREAM_HEADER_LEN - 1,
                           STREAM_HEADER_LEN,
                           STREAM_HEADER_LEN + 15,
                           STREAM_HEADER_LEN + 16,
                           STREAM_HEADER_LEN + 17,
                           STREAM_HEADER_LEN + full + 100,
                           STREAM_HEADER_LEN + 3 * full + 1,
                           STREAM_HEADER_LEN + 3 * full + 16,
                           ct.len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        expect_integrity(key_a, id_a, ct.data, cuts[i]);

    /* Extra bytes after the stream. */
    uint8_t *longer = malloc(ct.len + full);
    assert_non_null(longer);
    memcpy(longer, ct.data, ct.len);
    memset(longer + ct.len, 0, full);
    expect_integrity(key_a, id_a, longer, ct.len + 1);
    expect_integrity(key_a, id_a, longer, ct.len + 16);
    expect_integrity(key_a, id_a, longer, ct.len + full);
    free(longer);
    free(plain);
    membuf_free(&ct);
}

/* A stream whose content is a multiple of the segment size ends in a full
 * segment; an appended empty segment is not a valid encoding. */
static void test_noncanonical_empty_tail(void **state)
{
    (void)state;
    uint8_t *plain = make_plain(2 * SEG);
    struct membuf ct = {0};
    seal(key_a, id_a, SEG, plain, 2 * SEG, CHUNK_ALL, &ct);
    struct stream_reader *r = NULL;
    assert_int_equal(stream_reader_new(&r, key_a, (const uint8_t *)id_a, strlen(id_a), ct.data,
                                       ct.len, ct.len + 16),
                     ERR_INTEGRITY);
    assert_null(r);
    free(plain);
    membuf_free(&ct);
}

static void swap_segments(uint8_t *buf, size_t a_off, size_t b_off, size_t len)
{
    uint8_t *tmp = malloc(len);
    assert_non_null(tmp);
    memcpy(tmp, buf + a_off, len);
    memcpy(buf + a_off, buf + b_off, len);
    memcpy(buf + b_off, tmp, len);
    free(tmp);
}

static void test_reorder(void **state)
{
    (void)state;
    struct membuf ct = {0};
    uint8_t *plain;
    size_t len;
    tamper_fixture(&ct, &plain, &len);
    const size_t full = SEG + 16;
    swap_segments(ct.data, STREAM_HEADER_LEN, STREAM_HEADER_LEN + full, full);
    expect_integrity(key_a, id_a, ct.data, ct.len);
    swap_segments(ct.data, STREAM_HEADER_LEN, STREAM_HEADER_LEN + full, full);
    swap_segments(ct.data, STREAM_HEADER_LEN + full, STREAM_HEADER_LEN + 2 * full, full);
    expect_integrity(key_a, id_a, ct.data, ct.len);
    swap_segments(ct.data, STREAM_HEADER_LEN + full, STREAM_HEADER_LEN + 2 * full, full);

    /* Moving the final segment forward and a full one to the end fails too
     * (the lengths differ, so build a stream of equal-length segments). */
    struct membuf even = {0};
    seal(key_a, id_a, SEG, plain, 3 * SEG, CHUNK_ALL, &even);
    swap_segments(even.data, STREAM_HEADER_LEN + full, STREAM_HEADER_LEN + 2 * full, full);
    expect_integrity(key_a, id_a, even.data, even.len);

    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_int_equal(open_all(key_a, id_a, ct.data, ct.len, &out, &out_len), ERR_OK);
    assert_memory_equal(out, plain, len);
    free(out);
    free(plain);
    membuf_free(&ct);
    membuf_free(&even);
}

static void test_splice(void **state)
{
    (void)state;
    const size_t len = 3 * SEG + 10, full = SEG + 16;
    uint8_t *plain = make_plain(len);
    struct membuf a = {0}, other_id = {0}, other_key = {0}, twin = {0};
    seal(key_a, id_a, SEG, plain, len, CHUNK_ALL, &a);
    seal(key_a, id_b, SEG, plain, len, CHUNK_ALL, &other_id);
    seal(key_b, id_a, SEG, plain, len, CHUNK_ALL, &other_key);
    seal(key_a, id_a, SEG, plain, len, CHUNK_ALL, &twin);
    struct membuf *donors[] = {&other_id, &other_key, &twin};
    for (size_t d = 0; d < 3; d++) {
        for (size_t s = 0; s < 4; s++) {
            size_t off = STREAM_HEADER_LEN + s * full;
            size_t n = s == 3 ? a.len - off : full;
            uint8_t *mixed = malloc(a.len);
            assert_non_null(mixed);
            memcpy(mixed, a.data, a.len);
            memcpy(mixed + off, donors[d]->data + off, n);
            expect_integrity(key_a, id_a, mixed, a.len);
            free(mixed);
        }
        /* A foreign header with our segments. */
        uint8_t *mixed = malloc(a.len);
        assert_non_null(mixed);
        memcpy(mixed, a.data, a.len);
        memcpy(mixed, donors[d]->data, STREAM_HEADER_LEN);
        expect_integrity(key_a, id_a, mixed, a.len);
        free(mixed);
    }
    /* Whole streams under the wrong identity or key. */
    expect_integrity(key_a, id_a, other_id.data, other_id.len);
    expect_integrity(key_a, id_a, other_key.data, other_key.len);
    expect_integrity(key_a, id_b, a.data, a.len);
    expect_integrity(key_b, id_a, a.data, a.len);
    expect_integrity(key_a, "blob-000", a.data, a.len);
    expect_integrity(key_a, "", a.data, a.len);
    free(plain);
    membuf_free(&a);
    membuf_free(&other_id);
    membuf_free(&other_key);
    membuf_free(&twin);
}

static void test_open_segment_arguments(void **state)
{
    (void)state;
    struct membuf ct = {0};
    uint8_t *plain;
    size_t len;
    tamper_fixture(&ct, &plain, &len);
    struct stream_reader *r = NULL;
    assert_int_equal(stream_reader_new(&r, key_a, (const uint8_t *)id_a, strlen(id_a), ct.data,
                                       STREAM_HEADER_LEN, ct.len),
                     ERR_OK);
    assert_int_equal(stream_reader_segment_count(r), 4);
    assert_int_equal(stream_reader_segment_sealed_len(r, 3), SEG / 2 + 16);
    assert_int_equal(stream_reader_segment_sealed_len(r, 4), 0);
    uint8_t *out = malloc(SEG + 16);
    assert_non_null(out);
    size_t n = 7;
    const uint8_t *seg0 = ct.data + STREAM_HEADER_LEN;
    assert_int_equal(stream_reader_open_segment(r, 4, seg0, SEG + 16, out, SEG, &n), ERR_INVALID);
    assert_int_equal(stream_reader_open_segment(r, 0, seg0, SEG + 16, out, SEG - 1, &n),
                     ERR_INVALID);
    assert_int_equal(stream_reader_open_segment(r, 0, seg0, SEG + 15, out, SEG, &n), ERR_INTEGRITY);
    assert_int_equal(stream_reader_open_segment(r, 0, seg0, SEG + 16, out, SEG, &n), ERR_OK);
    assert_int_equal(n, SEG);
    assert_memory_equal(out, plain, SEG);
    /* In place: the plaintext overwrites the sealed bytes. */
    memcpy(out, seg0, SEG + 16);
    assert_int_equal(stream_reader_open_segment(r, 0, out, SEG + 16, out, SEG + 16, &n), ERR_OK);
    assert_memory_equal(out, plain, SEG);
    /* Random access: segments open in any order, repeatedly. */
    for (int rep = 0; rep < 2; rep++) {
        for (uint64_t i = 4; i-- > 0;) {
            size_t sl = stream_reader_segment_sealed_len(r, i);
            assert_int_equal(
                stream_reader_open_segment(r, i, ct.data + stream_reader_segment_offset(r, i), sl,
                                           out, SEG, &n),
                ERR_OK);
            assert_memory_equal(out, plain + i * SEG, n);
        }
    }
    /* A header shorter than STREAM_HEADER_LEN is refused. */
    struct stream_reader *r2 = NULL;
    assert_int_equal(stream_reader_new(&r2, key_a, NULL, 0, ct.data, STREAM_HEADER_LEN - 1, ct.len),
                     ERR_INTEGRITY);
    free(out);
    stream_reader_free(r);
    free(plain);
    membuf_free(&ct);
}

/* Sizes implying more than 2^32-1 segments are refused. */
static void test_reader_segment_limit(void **state)
{
    (void)state;
    struct membuf ct = {0};
    seal(key_a, id_a, SEG, (const uint8_t *)"", 0, CHUNK_ALL, &ct);
    struct stream_reader *r = NULL;
    uint64_t full = SEG + 16;
    assert_int_equal(stream_reader_new(&r, key_a, NULL, 0, ct.data, ct.len,
                                       STREAM_HEADER_LEN + STREAM_MAX_SEGMENTS * full),
                     ERR_OK);
    assert_int_equal(stream_reader_segment_count(r), STREAM_MAX_SEGMENTS);
    assert_int_equal(stream_reader_segment_offset(r, STREAM_MAX_SEGMENTS - 1),
                     STREAM_HEADER_LEN + (STREAM_MAX_SEGMENTS - 1) * full);
    stream_reader_free(r);
    assert_int_equal(stream_reader_new(&r, key_a, NULL, 0, ct.data, ct.len,
                                       STREAM_HEADER_LEN + STREAM_MAX_SEGMENTS * full + 17),
                     ERR_INTEGRITY);
    assert_int_equal(stream_reader_new(&r, key_a, NULL, 0, ct.data, ct.len, UINT64_MAX),
                     ERR_INTEGRITY);
    membuf_free(&ct);
}

static int write_temp(const uint8_t *buf, size_t len, char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/coffer-test-stream-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    return fd;
}

static void test_decrypt_fd(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 5, SEG, 5 * SEG + 3};
    for (size_t s = 0; s < 4; s++) {
        uint8_t *plain = make_plain(sizes[s]);
        struct membuf ct = {0}, out = {0};
        seal(key_a, id_a, SEG, plain, sizes[s], CHUNK_RANDOM, &ct);
        char path[64];
        int fd = write_temp(ct.data, ct.len, path, sizeof(path));
        assert_int_equal(
            stream_decrypt_fd(fd, key_a, (const uint8_t *)id_a, strlen(id_a), membuf_sink, &out),
            ERR_OK);
        assert_int_equal(out.len, sizes[s]);
        if (sizes[s] > 0)
            assert_memory_equal(out.data, plain, sizes[s]);
        out.len = 0;
        assert_int_equal(
            stream_decrypt_fd(fd, key_a, (const uint8_t *)id_b, strlen(id_b), membuf_sink, &out),
            ERR_INTEGRITY);
        /* A truncated file fails at its last segment. */
        if (sizes[s] > SEG) {
            assert_int_equal(ftruncate(fd, (off_t)(STREAM_HEADER_LEN + 2 * (SEG + 16))), 0);
            out.len = 0;
            assert_int_equal(stream_decrypt_fd(fd, key_a, (const uint8_t *)id_a, strlen(id_a),
                                               membuf_sink, &out),
                             ERR_INTEGRITY);
            assert_int_equal(out.len, SEG);
        }
        assert_int_equal(ftruncate(fd, 3), 0);
        assert_int_equal(
            stream_decrypt_fd(fd, key_a, (const uint8_t *)id_a, strlen(id_a), membuf_sink, &out),
            ERR_INTEGRITY);
        close(fd);
        unlink(path);
        free(plain);
        membuf_free(&ct);
        membuf_free(&out);
    }
    assert_int_equal(stream_decrypt_fd(-1, key_a, NULL, 0, membuf_sink, NULL), ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_default_segment_size),
        cmocka_unit_test(test_ciphertext_size),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_holds_back_full_segment),
        cmocka_unit_test(test_sink_failure),
        cmocka_unit_test(test_flip_header_bytes),
        cmocka_unit_test(test_flip_tags_and_ciphertext),
        cmocka_unit_test(test_truncation_and_extension),
        cmocka_unit_test(test_noncanonical_empty_tail),
        cmocka_unit_test(test_reorder),
        cmocka_unit_test(test_splice),
        cmocka_unit_test(test_open_segment_arguments),
        cmocka_unit_test(test_reader_segment_limit),
        cmocka_unit_test(test_decrypt_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
