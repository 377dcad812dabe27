/*
 * The audit log on a real directory: append/read/reopen, proofs, exported
 * heads, the tamper matrix (each change found and located by the offline
 * verifier), failing closed, new segments and crash repair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit/audit.h"
#include "audit/merkle.h"
#include "audit/sth.h"
#include "util/secure.h"

#include <dirent.h>
#include <pthread.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers --------------------------------------------------------------- */

struct fixture {
    char root[64];
    char dir[128];
    char path[256];
};

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->root, sizeof(f->root), "/tmp/coffer-audit-XXXXXX");
    if (mkdtemp(f->root) == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/audit", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nftw(f->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static const char *file_in(struct fixture *f, const char *name)
{
    snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
    return f->path;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

static int event_of(char *buf, size_t cap, int i)
{
    return snprintf(buf, cap,
                    "{\"v\":1,\"action\":\"artifact:Read\",\"resource\":\"p/dev/m\",\"n\":%d}", i);
}

static void append_n(struct audit_log *log, int from, int n)
{
    char ev[256];
    for (int i = from; i < from + n; i++) {
        uint64_t idx = 0;
        int len = event_of(ev, sizeof(ev), i);
        assert_int_equal(audit_log_append(log, ev, (size_t)len, &idx), ERR_OK);
        assert_int_equal(idx, (uint64_t)i);
    }
}

/* Opens the fixture's log with a head every `every` events (0: none) and no
 * timer. */
static struct audit_log *open_log(struct fixture *f, uint32_t every)
{
    struct audit_options o;
    audit_options_init(&o);
    o.sign_every_events = every;
    o.sign_interval_ms = 0;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, &o, &log), ERR_OK);
    return log;
}

/* Writes a log of n events with a head every `every` events, and closes it. */
static void make_log(struct fixture *f, int n, uint32_t every)
{
    struct audit_log *log = open_log(f, every);
    append_n(log, 0, n);
    audit_log_close(log);
}

/* Offsets of the records in an events.log image; returns the count. */
static size_t record_offsets(const uint8_t *buf, size_t len, size_t *off, size_t max)
{
    size_t n = 0, p = 0;
    while (p + 4 <= len && n < max) {
        uint32_t l = (uint32_t)buf[p] << 24 | (uint32_t)buf[p + 1] << 16 |
                     (uint32_t)buf[p + 2] << 8 | buf[p + 3];
        off[n++] = p;
        p += 4 + l;
    }
    return n;
}

static enum err verify(struct fixture *f, const char *trusted, struct audit_verify_report *rep)
{
    enum err rc = audit_verify_dir(f->dir, trusted, rep);
    if (rc != ERR_OK)
        print_message("verify: %s\n", rep->reason);
    return rc;
}

static enum err try_open(struct fixture *f)
{
    struct audit_options o;
    audit_options_init(&o);
    o.sign_interval_ms = 0;
    struct audit_log *log = NULL;
    enum err rc = audit_log_open(f->dir, &o, &log);
    audit_log_close(log);
    return rc;
}

/* Saves the current exported head to ROOT/trusted.json (outside the log dir). */
static const char *export_trusted(struct fixture *f, char *path, size_t cap)
{
    struct audit_log *log = NULL;
    struct audit_options o;
    audit_options_init(&o);
    o.sign_interval_ms = 0;
    assert_int_equal(audit_log_open(f->dir, &o, &log), ERR_OK);
    char *json = NULL;
    assert_int_equal(audit_export_head(log, &json), ERR_OK);
    audit_log_close(log);
    snprintf(path, cap, "%s/trusted.json", f->root);
    spit(path, json, strlen(json));
    free(json);
    return path;
}

/* Recomputes and re-signs every head in heads.log with key, over the
 * current events.log: what someone holding a signing key could do. */
static void resign_heads(struct fixture *f, EVP_PKEY *key)
{
    size_t elen, hlen;
    uint8_t *ev = slurp(file_in(f, "events.log"), &elen);
    char *heads = (char *)slurp(file_in(f, "heads.log"), &hlen);
    size_t off[1024];
    size_t n = record_offsets(ev, elen, off, 1024);
    struct merkle_hasher hs;
    struct merkle_tree t;
    assert_int_equal(merkle_hasher_init(&hs), 0);
    merkle_tree_init(&t);
    for (size_t i = 0; i < n; i++) {
        uint32_t l = (uint32_t)ev[off[i]] << 24 | (uint32_t)ev[off[i] + 1] << 16 |
                     (uint32_t)ev[off[i] + 2] << 8 | ev[off[i] + 3];
        merkle_hash leaf;
        merkle_leaf_hash(&hs, ev + off[i] + 4, l, leaf);
        assert_int_equal(merkle_tree_append(&t, &hs, leaf), 0);
    }
    FILE *out = fopen(file_in(f, "heads.log"), "wb");
    assert_non_null(out);
    char *save = NULL;
    for (char *line = strtok_r(heads, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct audit_sth s;
        assert_int_equal(audit_sth_parse(line, strlen(line), &s), ERR_OK);
        if (s.tree_size > n)
            s.tree_size = n;
        assert_int_equal(merkle_tree_root(&t, &hs, s.tree_size, s.root), 0);
        assert_int_equal(audit_sth_sign(key, &s), ERR_OK);
        char buf[AUDIT_STH_LINE_MAX];
        assert_true(audit_sth_format(&s, buf, sizeof(buf)) > 0);
        fprintf(out, "%s\n", buf);
    }
    fclose(out);
    merkle_tree_free(&t);
    merkle_hasher_free(&hs);
    free(ev);
    free(heads);
}

static size_t count_lines(const char *path)
{
    size_t len, n = 0;
    uint8_t *b = slurp(path, &len);
    for (size_t i = 0; i < len; i++)
        n += b[i] == '\n';
    free(b);
    return n;
}

/* ---- basic behaviour ------------------------------------------------------- */

static void test_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct audit_options o;
    audit_options_init(&o);
    o.sign_every_events = 4;
    o.sign_interval_ms = 0;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, &o, &log), ERR_OK);
    assert_int_equal(audit_log_size(log), 0);
    append_n(log, 0, 10);
    assert_int_equal(audit_log_size(log), 10);
    for (int i = 0; i < 10; i++) {
        char want[256], *got = NULL;
        size_t len = 0;
        int wl = event_of(want, sizeof(want), i);
        assert_int_equal(audit_log_read(log, (uint64_t)i, &got, &len), ERR_OK);
        assert_int_equal(len, (size_t)wl);
        assert_string_equal(got, want);
        free(got);
    }
    char *got = NULL;
    size_t len;
    assert_int_equal(audit_log_read(log, 10, &got, &len), ERR_NOT_FOUND);
    /* A second opener is refused while the log is open. */
    struct audit_log *other = NULL;
    assert_int_equal(audit_log_open(f->dir, &o, &other), ERR_CONFLICT);
    assert_null(other);
    audit_log_close(log);

    /* Heads at 4 and 8 by count, and a final one at 10 on close. */
    assert_int_equal(count_lines(file_in(f, "heads.log")), 3);

    struct stat sb;
    assert_int_equal(stat(f->dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(file_in(f, "signing.key"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(file_in(f, "signing.pub"), &sb), 0);

    /* Reopen: everything is there, and appends continue the numbering. */
    assert_int_equal(audit_log_open(f->dir, &o, &log), ERR_OK);
    assert_int_equal(audit_log_size(log), 10);
    append_n(log, 10, 3);
    assert_int_equal(audit_log_read(log, 12, &got, &len), ERR_OK);
    assert_non_null(strstr(got, "\"n\":12"));
    free(got);
    audit_log_close(log);

    struct audit_verify_report rep;
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    assert_true(rep.ok);
    assert_int_equal(rep.events, 13);
    assert_int_equal(rep.heads, 4);
    assert_int_equal(rep.last_head_size, 13);
    assert_int_equal(rep.bad_head, -1);
}

static void test_invalid_events(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, NULL, &log), ERR_OK);
    const char *bad[] = {"",       "not json", "[1,2]", "{\"a\":1}\n", "{\"a\":\n1}", "{\"a\":1} x",
                         "\"str\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(audit_log_append(log, bad[i], strlen(bad[i]), NULL), ERR_INVALID);
    size_t big = AUDIT_EVENT_MAX + 1;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    assert_int_equal(audit_log_append(log, huge, big, NULL), ERR_INVALID);
    free(huge);
    assert_int_equal(audit_log_size(log), 0);
    audit_log_close(log);
}

static int collect_cb(void *ctx, uint64_t index, const char *json, size_t len)
{
    int *seen = ctx;
    char want[256];
    int wl = event_of(want, sizeof(want), (int)index);
    if ((size_t)wl != len || memcmp(want, json, len) != 0)
        return 1;
    seen[index]++;
    return index == 8; /* stop after 8 */
}

static void test_iterators(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, NULL, &log), ERR_OK);
    append_n(log, 0, 12);
    int seen[16] = {0};
    assert_int_equal(audit_log_iter(log, 3, collect_cb, seen), ERR_OK);
    for (int i = 0; i < 12; i++)
        assert_int_equal(seen[i], i >= 3 && i <= 8);
    assert_int_equal(audit_log_iter(log, 12, collect_cb, seen), ERR_OK);
    audit_log_close(log);

    memset(seen, 0, sizeof(seen));
    assert_int_equal(audit_iter_dir(f->dir, 5, collect_cb, seen), ERR_OK);
    for (int i = 0; i < 12; i++)
        assert_int_equal(seen[i], i >= 5 && i <= 8);
}

/* ---- proofs ------------------------------------------------------------------ */

static void test_inclusion_proofs(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = open_log(f, 0);
    append_n(log, 0, 11);
    const char *pub = file_in(f, "signing.pub");
    char pubpath[256];
    snprintf(pubpath, sizeof(pubpath), "%s", pub);
    char reason[256];
    for (uint64_t i = 0; i < 11; i++) {
        char *proof = NULL, ev[256];
        int el = event_of(ev, sizeof(ev), (int)i);
        assert_int_equal(audit_log_inclusion_proof(log, i, &proof), ERR_OK);
        json_t *j = json_loads(proof, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "index")), (json_int_t)i);
        assert_int_equal(json_integer_value(json_object_get(j, "tree_size")), 11);
        json_decref(j);
        struct audit_proof_check chk = {.event_json = ev, .event_len = (size_t)el};
        assert_int_equal(audit_verify_proof_json(proof, pubpath, &chk, reason, sizeof(reason)),
                         ERR_OK);
        /* Another event does not match the proof. */
        char other[256];
        int ol = event_of(other, sizeof(other), (int)i + 1);
        struct audit_proof_check wrong = {.event_json = other, .event_len = (size_t)ol};
        assert_int_equal(audit_verify_proof_json(proof, pubpath, &wrong, reason, sizeof(reason)),
                         ERR_INTEGRITY);
        /* A changed path hash is refused. */
        char *p = strstr(proof, "\"path\":[\"");
        if (p != NULL && i != 0) {
            p += 9;
            *p = *p == 'a' ? 'b' : 'a';
            assert_int_equal(audit_verify_proof_json(proof, pubpath, NULL, reason, sizeof(reason)),
                             ERR_INTEGRITY);
        }
        free(proof);
    }
    char *proof = NULL;
    assert_int_equal(audit_log_inclusion_proof(log, 11, &proof), ERR_NOT_FOUND);

    /* An event appended after the last head gets a fresh head. */
    append_n(log, 11, 1);
    assert_int_equal(audit_log_inclusion_proof(log, 11, &proof), ERR_OK);
    assert_non_null(strstr(proof, "\"tree_size\":12"));
    assert_int_equal(audit_verify_proof_json(proof, pubpath, NULL, reason, sizeof(reason)), ERR_OK);

    /* A proof checked with another key is refused. */
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    uint8_t raw[32];
    assert_int_equal(audit_pubkey_raw(k, raw), 0);
    assert_int_equal(audit_verify_proof_json_raw(proof, raw, NULL, reason, sizeof(reason)),
                     ERR_INTEGRITY);
    EVP_PKEY_free(k);
    /* A changed tree size breaks the signature. */
    char *ts = strstr(proof, "\"tree_size\":12");
    ts[13] = '3';
    assert_int_equal(audit_verify_proof_json(proof, pubpath, NULL, reason, sizeof(reason)),
                     ERR_INTEGRITY);
    free(proof);
    assert_int_equal(audit_verify_proof_json("{", pubpath, NULL, reason, sizeof(reason)),
                     ERR_INVALID);
    audit_log_close(log);
}

static void test_consistency_proofs(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = open_log(f, 0);
    append_n(log, 0, 5);
    char *old_head = NULL;
    assert_int_equal(audit_export_head(log, &old_head), ERR_OK);
    assert_non_null(strstr(old_head, "\"tree_size\":5"));
    assert_non_null(strstr(old_head, "\"key_fingerprint\":\"sha256:"));
    append_n(log, 5, 8);
    char pubpath[256];
    snprintf(pubpath, sizeof(pubpath), "%s", file_in(f, "signing.pub"));
    char reason[256];
    for (uint64_t m = 0; m <= 13; m++) {
        char *proof = NULL;
        assert_int_equal(audit_log_consistency_proof(log, m, &proof), ERR_OK);
        assert_int_equal(audit_verify_proof_json(proof, pubpath, NULL, reason, sizeof(reason)),
                         ERR_OK);
        struct audit_proof_check chk = {.trusted_head_json = old_head};
        assert_int_equal(audit_verify_proof_json(proof, pubpath, &chk, reason, sizeof(reason)),
                         m == 5 ? ERR_OK : ERR_INTEGRITY);
        free(proof);
    }
    char *proof = NULL;
    assert_int_equal(audit_log_consistency_proof(log, 14, &proof), ERR_NOT_FOUND);
    free(old_head);
    audit_log_close(log);
}

/* Past the first blocks of 1024 events the log keeps only a sparse index
 * and the upper part of the tree: reads, iteration, inclusion and
 * consistency proofs of old and recent events stay exact, also after a
 * reopen (which rebuilds the index from the file). */
static int count_cb(void *ctx, uint64_t index, const char *json, size_t len)
{
    uint64_t *next = ctx;
    char want[256];
    int wl = event_of(want, sizeof(want), (int)index);
    if (index != *next || len != (size_t)wl || memcmp(json, want, len) != 0)
        return 1;
    (*next)++;
    return 0;
}

static void check_big_log(struct fixture *f, struct audit_log *log, uint64_t size)
{
    char pubpath[256];
    snprintf(pubpath, sizeof(pubpath), "%s", file_in(f, "signing.pub"));
    char reason[256];
    const uint64_t idx[] = {0, 1, 63, 64, 65, 1023, 1024, 1500, 2047, 2048, 2999, size - 1};
    for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
        char *got = NULL, want[256];
        size_t len = 0;
        int wl = event_of(want, sizeof(want), (int)idx[i]);
        assert_int_equal(audit_log_read(log, idx[i], &got, &len), ERR_OK);
        assert_int_equal(len, (size_t)wl);
        assert_memory_equal(got, want, len);
        free(got);
        char *proof = NULL;
        assert_int_equal(audit_log_inclusion_proof(log, idx[i], &proof), ERR_OK);
        struct audit_proof_check chk = {.event_json = want, .event_len = (size_t)wl};
        assert_int_equal(audit_verify_proof_json(proof, pubpath, &chk, reason, sizeof(reason)),
                         ERR_OK);
        free(proof);
        assert_int_equal(audit_log_consistency_proof(log, idx[i] + 1, &proof), ERR_OK);
        assert_int_equal(audit_verify_proof_json(proof, pubpath, NULL, reason, sizeof(reason)),
                         ERR_OK);
        free(proof);
        uint64_t next = idx[i];
        assert_int_equal(audit_log_iter(log, idx[i], count_cb, &next), ERR_OK);
        assert_int_equal(next, size);
    }
    char *got = NULL;
    assert_int_equal(audit_log_read(log, size, &got, NULL), ERR_NOT_FOUND);
}

static void test_big_log_sparse_index(void **state)
{
    struct fixture *f = *state;
    struct audit_options o;
    audit_options_init(&o);
    o.sign_interval_ms = 0;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, &o, &log), ERR_OK);
    append_n(log, 0, 3100);
    check_big_log(f, log, 3100);
    audit_log_close(log);
    assert_int_equal(audit_log_open(f->dir, &o, &log), ERR_OK);
    check_big_log(f, log, 3100);
    audit_log_close(log);
    struct audit_verify_report rep;
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    assert_int_equal(rep.events, 3100);
}

/* ---- the tamper matrix --------------------------------------------------------- */

/* 20 events, heads at 4, 8, 12, 16, 20 (lines 0..4 of heads.log). */
#define N_EVENTS 20

static void expect_tamper(struct fixture *f, const char *trusted, int64_t event, int64_t head,
                          const char *words)
{
    struct audit_verify_report rep;
    assert_int_equal(verify(f, trusted, &rep), ERR_INTEGRITY);
    assert_false(rep.ok);
    if (event >= 0) {
        assert_true(rep.bad_event_first >= 0);
        assert_true(rep.bad_event_first <= event);
        assert_true(rep.bad_event_last >= event);
    }
    if (head >= 0)
        assert_int_equal(rep.bad_head, head);
    assert_non_null(strstr(rep.reason, words));
}

static void test_untouched_log_verifies(void **state)
{
    struct fixture *f = *state;
    make_log(f, N_EVENTS, 4);
    assert_int_equal(count_lines(file_in(f, "heads.log")), 5);
    char tp[256];
    export_trusted(f, tp, sizeof(tp));
    struct audit_verify_report rep;
    assert_int_equal(verify(f, tp, &rep), ERR_OK);
    assert_true(rep.ok);
    assert_true(rep.trusted_checked);
    assert_int_equal(rep.events, N_EVENTS);
    assert_int_equal(rep.heads, 5);
    assert_string_equal(rep.reason, "");
    assert_int_equal(try_open(f), ERR_OK);
}

static void test_flip_byte(void **state)
{
    struct fixture *f = *state;
    make_log(f, N_EVENTS, 4);
    size_t len, off[64];
    uint8_t *b = slurp(file_in(f, "events.log"), &len);
    assert_int_equal(record_offsets(b, len, off, 64), N_EVENTS);
    b[off[9] + 4 + 10] ^= 0x01;
    spit(file_in(f, "events.log"), b, len);
    free(b);
    expect_tamper(f, NULL, 9, 2, "root differs");
    assert_int_equal(try_open(f), ERR_INTEGRITY);
}

static void test_delete_event(void **state)
{
    struct fixture *f = *state;
    make_log(f, N_EVENTS, 4);
    size_t len, off[64];
    uint8_t *b = slurp(file_in(f, "events.log"), &len);
    assert_int_equal(record_offsets(b, len, off, 64), N_EVENTS);
    memmove(b + off[9], b + off[10], len - off[10]);
    spit(file_in(f, "events.log"), b, len - (off[10] - off[9]));
    free(b);
    expect_tamper(f, NULL, 9, 2, "root differs");
    assert_int_equal(try_open(f), ERR_INTEGRITY);
}

static void test_swap_events(void **state)
{
    struct fixture *f = *state;
    make_log(f, N_EVENTS, 4);
    size_t len, off[64];
    uint8_t *b = slurp(file_in(f, "events.log"), &len);
    assert_int_equal(record_offsets(b, len, off, 64), N_EVENTS);
    size_t l5 = off[6] - off[5], l6 = off[7] - off[6];
    assert_int_equal(l5, l6);
    uint8_t tmp[512];
    memcpy(tmp, b + off[5], l5);
    memcpy(b + off[5], b + off[6], l6);
    memcpy(b + off[6], tmp, l5);
    spit(file_in(f, "events.log"), b, len);
    free(b);
    expect_tamper(f, NULL, 5, 1, "root differs");
    expect_tamper(f, NULL, 6, 1, "reordered");
    assert_int_equal(try_open(f), ERR_INTEGRITY);
}

static void test_truncate_file(void **state)
{
    struct fixture *f = *state;
    make_log(f, N_EVENTS, 4);
    size_t len, off[64];
    uint8_t *b = slurp(file_in(f, "events.log"), &len);
    assert_int_equal(record_offsets(b, len, off, 64), N_EVENTS);
    /* Cut inside the last record. */
    spit(file_in(f, "events.log"), b, len - 3);
    expect_tamper(f, NULL, 19, -1, "truncated record");
    assert_int_equal(try_open(f), ERR_INTEGRITY);
    /* Cut on a record boundary: shorter than the last head. */
    spit(file_in(f, "events.log"), b, off[18]);
    expect_tamper(f, NULL, 18, 4, "events were removed");
    assert_int_equal(try_open(f), ERR_INTEGRITY);
    free(b);
}

static void test_truncate_tail_with_heads(void **state)
{
    struct fixture *f = *state;
    make_log(f, N_EVENTS, 4);
    char tp[256];
    export_trusted(f, tp, sizeof(tp));
    size_t len, hlen, off[64];
    uint8_t *b = slurp(file_in(f, "events.log"), &len);
    assert_int_equal(record_offsets(b, len, off, 64), N_EVENTS);
    spit(file_in(f, "events.log"), b, off[16]);
    free(b);
    /* Keep the first four heads (sizes 4..16). */
    char *h = (char *)slurp(file_in(f, "heads.log"), &hlen);
    char *p = h;
    for (int i = 0; i < 4; i++)
        p = strchr(p, '\n') + 1;
    spit(file_in(f, "heads.log"), h, (size_t)(p - h));
    free(h);

    /* Without a trusted head this cannot be told from a shorter log. */
    struct audit_verify_report rep;
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    assert_int_equal(rep.events, 16);
    /* With the head exported earlier it is caught. */
    expect_tamper(f, tp, 16, -1, "trusted head covers 20");
}

static void test_replace_signature(void **state)
{
    struct fixture *f = *state;
    make_log(f, N_EVENTS, 4);
    size_t hlen;
    char *h = (char *)slurp(file_in(f, "heads.log"), &hlen);
    char *line = h;
    for (int i = 0; i < 2; i++)
        line = strchr(line, '\n') + 1;
    char *sig = strstr(line, "\"signature\":\"") + 13;
    sig[10] = sig[10] == '0' ? '1' : '0';
    spit(file_in(f, "heads.log"), h, hlen);
    free(h);
    expect_tamper(f, NULL, 9, 2, "signature does not verify");
}

static void test_forged_event_and_head(void **state)
{
    struct fixture *f = *state;
    make_log(f, N_EVENTS, 4);
    /* Append an event and a head that covers it, signed by another key. */
    const char forged[] = "{\"v\":1,\"action\":\"artifact:Erase\",\"n\":666}";
    uint8_t rec[4 + sizeof(forged)];
    uint32_t l = (uint32_t)strlen(forged);
    rec[0] = 0;
    rec[1] = 0;
    rec[2] = 0;
    rec[3] = (uint8_t)l;
    memcpy(rec + 4, forged, l);
    int fd = open(file_in(f, "events.log"), O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rec, 4 + l), (ssize_t)(4 + l));
    close(fd);
    EVP_PKEY *evil = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(evil);
    /* Start from a copy of the last genuine head. */
    size_t hlen;
    char *h = (char *)slurp(file_in(f, "heads.log"), &hlen);
    char *last = h + hlen - 1;
    while (last > h && last[-1] != '\n')
        last--;
    struct audit_sth s;
    assert_int_equal(audit_sth_parse(last, (size_t)(h + hlen - 1 - last), &s), ERR_OK);
    free(h);
    /* Root of the 21 events, computed by the attacker. */
    size_t elen, off[64];
    uint8_t *ev = slurp(file_in(f, "events.log"), &elen);
    size_t n = record_offsets(ev, elen, off, 64);
    assert_int_equal(n, 21);
    struct merkle_hasher hs;
    struct merkle_stack st;
    assert_int_equal(merkle_hasher_init(&hs), 0);
    merkle_stack_init(&st);
    for (size_t i = 0; i < n; i++) {
        size_t rl = (i + 1 < n ? off[i + 1] : elen) - off[i] - 4;
        merkle_hash leaf;
        merkle_leaf_hash(&hs, ev + off[i] + 4, rl, leaf);
        merkle_stack_push(&st, &hs, leaf);
    }
    s.tree_size = 21;
    merkle_stack_root(&st, &hs, s.root);
    merkle_hasher_free(&hs);
    free(ev);
    assert_int_equal(audit_sth_sign(evil, &s), ERR_OK);
    char buf[AUDIT_STH_LINE_MAX];
    int bl = audit_sth_format(&s, buf, sizeof(buf) - 1);
    buf[bl++] = '\n';
    fd = open(file_in(f, "heads.log"), O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, buf, (size_t)bl), bl);
    close(fd);
    EVP_PKEY_free(evil);
    expect_tamper(f, NULL, 20, 5, "signature does not verify");
    assert_int_equal(try_open(f), ERR_INTEGRITY);
}

static void test_rewrite_with_keys(void **state)
{
    struct fixture *f = *state;
    make_log(f, N_EVENTS, 4);
    char tp[256];
    export_trusted(f, tp, sizeof(tp));

    /* Someone with the real signing key rewrites event 3 and every head. */
    size_t len, off[64];
    uint8_t *b = slurp(file_in(f, "events.log"), &len);
    assert_int_equal(record_offsets(b, len, off, 64), N_EVENTS);
    b[off[3] + 4 + 20] ^= 0x02;
    spit(file_in(f, "events.log"), b, len);
    free(b);
    EVP_PKEY *key = NULL;
    assert_int_equal(audit_key_load_or_create(f->dir, &key), ERR_OK);
    resign_heads(f, key);
    EVP_PKEY_free(key);
    struct audit_verify_report rep;
    assert_int_equal(verify(f, NULL, &rep), ERR_OK); /* the documented limit */
    expect_tamper(f, tp, 3, -1, "differs from the trusted head");

    /* Someone without it replaces the key pair and re-signs everything. */
    EVP_PKEY *evil = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    unlink(file_in(f, "signing.key"));
    unlink(file_in(f, "signing.pub"));
    FILE *fp = fopen(file_in(f, "signing.pub"), "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_PUBKEY(fp, evil), 1);
    fclose(fp);
    resign_heads(f, evil);
    EVP_PKEY_free(evil);
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    expect_tamper(f, tp, -1, -1, "key was replaced");
}

/* ---- failure handling ---------------------------------------------------------- */

static void test_fail_closed(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, NULL, &log), ERR_OK);
    append_n(log, 0, 3);
    assert_int_equal(audit_log_test_break_storage(log), 0);
    char ev[256];
    int el = event_of(ev, sizeof(ev), 3);
    uint64_t idx = 77;
    assert_int_equal(audit_log_append(log, ev, (size_t)el, &idx), ERR_UNAVAILABLE);
    assert_int_equal(idx, 77);
    /* It stays failed, even though nothing changed on the disk since. */
    assert_int_equal(audit_log_append(log, ev, (size_t)el, &idx), ERR_UNAVAILABLE);
    assert_int_equal(audit_log_sign_head(log), ERR_UNAVAILABLE);
    assert_int_equal(audit_log_size(log), 3);
    char *got = NULL;
    size_t len;
    assert_int_equal(audit_log_read(log, 2, &got, &len), ERR_OK);
    free(got);
    audit_log_close(log);

    /* A restart gets a working log with the durable events. */
    assert_int_equal(audit_log_open(f->dir, NULL, &log), ERR_OK);
    assert_int_equal(audit_log_size(log), 3);
    append_n(log, 3, 1);
    audit_log_close(log);
    struct audit_verify_report rep;
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    assert_int_equal(rep.events, 4);
}

static char *last_event(struct audit_log *log)
{
    char *got = NULL;
    size_t len;
    assert_int_equal(audit_log_read(log, audit_log_size(log) - 1, &got, &len), ERR_OK);
    return got;
}

static void test_new_segment(void **state)
{
    struct fixture *f = *state;
    make_log(f, N_EVENTS, 4);
    size_t len, off[64];
    uint8_t *b = slurp(file_in(f, "events.log"), &len);
    assert_int_equal(record_offsets(b, len, off, 64), N_EVENTS);
    b[off[9] + 4 + 10] ^= 0x01;
    spit(file_in(f, "events.log"), b, len);
    free(b);
    assert_int_equal(try_open(f), ERR_INTEGRITY);

    struct audit_options o;
    audit_options_init(&o);
    o.sign_interval_ms = 0;
    o.start_new_segment = 1;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, &o, &log), ERR_OK);
    assert_int_equal(audit_log_size(log), N_EVENTS + 1);
    char *ev = last_event(log);
    assert_non_null(strstr(ev, "\"action\":\"log.segment\""));
    assert_non_null(strstr(ev, "differ from what the last signed head covers"));
    free(ev);
    append_n(log, N_EVENTS + 1, 2);
    audit_log_close(log);

    /* The next start verifies against the new head: no new marker. */
    o.start_new_segment = 0;
    assert_int_equal(audit_log_open(f->dir, &o, &log), ERR_OK);
    assert_int_equal(audit_log_size(log), N_EVENTS + 3);
    audit_log_close(log);
    /* The evidence stays: the offline verifier still reports the change. */
    expect_tamper(f, NULL, 9, 2, "root differs");
}

static void test_new_segment_after_broken_framing(void **state)
{
    struct fixture *f = *state;
    make_log(f, N_EVENTS, 4);
    size_t len, off[64];
    uint8_t *b = slurp(file_in(f, "events.log"), &len);
    assert_int_equal(record_offsets(b, len, off, 64), N_EVENTS);
    memset(b + off[5], 0xff, 4);
    spit(file_in(f, "events.log"), b, len);
    free(b);
    expect_tamper(f, NULL, 5, -1, "invalid record length");
    assert_int_equal(try_open(f), ERR_INTEGRITY);

    struct audit_options o;
    audit_options_init(&o);
    o.sign_interval_ms = 0;
    o.start_new_segment = 1;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, &o, &log), ERR_OK);
    assert_int_equal(audit_log_size(log), 1);
    char *ev = last_event(log);
    assert_non_null(strstr(ev, "log.segment"));
    assert_non_null(strstr(ev, "events.log.broken-"));
    free(ev);
    audit_log_close(log);
    struct audit_verify_report rep;
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    /* The unusable files are kept. */
    DIR *d = opendir(f->dir);
    int kept = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        kept += strstr(e->d_name, ".broken-") != NULL;
    closedir(d);
    assert_int_equal(kept, 2);
}

static void test_torn_tail_repair(void **state)
{
    struct fixture *f = *state;
    make_log(f, 5, 0);
    /* A crash in the middle of a write leaves half a record. */
    int fd = open(file_in(f, "events.log"), O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "\x00\x00\x00\x40{\"v\":1", 10), 10);
    close(fd);
    /* A crash in the middle of a head leaves half a line. */
    fd = open(file_in(f, "heads.log"), O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "{\"tree_si", 9), 9);
    close(fd);
    expect_tamper(f, NULL, -1, 1, "incomplete last line");

    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, NULL, &log), ERR_OK);
    assert_int_equal(audit_log_size(log), 6);
    char *ev = last_event(log);
    assert_non_null(strstr(ev, "\"action\":\"log.repair\""));
    assert_non_null(strstr(ev, "\"truncated_bytes\":10"));
    free(ev);
    audit_log_close(log);
    struct audit_verify_report rep;
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    assert_int_equal(rep.events, 6);
}

static off_t file_size(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_size;
}

/* Appends `n` bytes of value `byte` at the end of path. */
static void append_bytes(const char *path, int byte, size_t n)
{
    uint8_t buf[4096];
    memset(buf, byte, sizeof(buf));
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    while (n > 0) {
        size_t k = n < sizeof(buf) ? n : sizeof(buf);
        assert_int_equal(write(fd, buf, k), (ssize_t)k);
        n -= k;
    }
    close(fd);
}

/* While open, events.log holds the records and then zero bytes allocated
 * ahead; readers stop at them. A clean close gives the space back. */
static void test_space_allocated_ahead(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = open_log(f, 4);
    append_n(log, 0, 10);
    struct audit_stats st;
    audit_log_stats(log, &st);
    assert_int_equal(st.events, 10);
    assert_true(st.bytes > 10 * 4);
    assert_true((uint64_t)file_size(file_in(f, "events.log")) >= st.bytes + (1u << 20));
    /* The offline verifier and the iterators read it while it is open. */
    struct audit_verify_report rep;
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    assert_int_equal(rep.events, 10);
    uint64_t next = 0;
    assert_int_equal(audit_iter_dir(f->dir, 0, count_cb, &next), ERR_OK);
    assert_int_equal(next, 10);
    audit_log_close(log);
    assert_int_equal((uint64_t)file_size(file_in(f, "events.log")), st.bytes);

    /* A crash leaves the zero bytes: they are kept, nothing is repaired, and
     * the next events are written right after the last record. */
    append_bytes(file_in(f, "events.log"), 0, 5000);
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    log = open_log(f, 4);
    assert_int_equal(audit_log_size(log), 10);
    append_n(log, 10, 3);
    char *ev = last_event(log);
    assert_null(strstr(ev, "log.repair"));
    free(ev);
    audit_log_close(log);
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    assert_int_equal(rep.events, 13);
    /* Fewer than four zero bytes end the records too. */
    append_bytes(file_in(f, "events.log"), 0, 3);
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    assert_int_equal(try_open(f), ERR_OK);
}

/* A write a crash interrupted inside allocated space: the tail holds part of
 * a batch (a record with zero bytes inside, or bytes after a zero length).
 * The verifier reports it; opening cuts it off and records the repair. */
static void test_torn_in_allocated_space(void **state)
{
    struct fixture *f = *state;
    static const char *const cases[] = {"hole", "junk", "nul"};
    for (int c = 0; c < 3; c++) {
        nftw(f->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        assert_int_equal(mkdir(f->root, 0700), 0);
        make_log(f, 8, 4);
        const char *ev = file_in(f, "events.log");
        off_t good = file_size(ev);
        char rec[256];
        int len = event_of(rec, sizeof(rec), 8);
        uint8_t img[8 + 256 + 64];
        memset(img, 0, sizeof(img));
        img[3] = (uint8_t)len;
        memcpy(img + 4, rec, (size_t)len);
        size_t n = 4 + (size_t)len + 64;
        if (c == 0) {
            memset(img + 10, 0, 12); /* a page of the record never reached the disk */
        } else if (c == 1) {
            memset(img, 0, 4 + 8); /* its first page never did: zero length, then data */
        } else {
            img[4 + (size_t)len / 2] = 0;
        }
        assert_int_equal(truncate(ev, good), 0);
        int fd = open(ev, O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, img, n), (ssize_t)n);
        close(fd);
        append_bytes(ev, 0, 4096);
        print_message("case %s\n", cases[c]);

        struct audit_verify_report rep;
        assert_int_equal(audit_verify_dir(f->dir, NULL, &rep), ERR_INTEGRITY);
        assert_int_equal(rep.bad_event_first, 8);
        assert_non_null(
            strstr(rep.reason, c == 1 ? "non-zero bytes after the end" : "not one line of JSON"));

        struct audit_log *log = NULL;
        assert_int_equal(audit_log_open(f->dir, NULL, &log), ERR_OK);
        assert_int_equal(audit_log_size(log), 9);
        char *last = last_event(log);
        assert_non_null(strstr(last, "\"action\":\"log.repair\""));
        assert_non_null(strstr(last, "\"at_offset\":"));
        free(last);
        audit_log_close(log);
        assert_int_equal(verify(f, NULL, &rep), ERR_OK);
        assert_int_equal(rep.events, 9);
    }
}

/* Zero bytes before the end of what a signed head covers are not space
 * allocated ahead but removed events. */
static void test_zeroed_signed_events(void **state)
{
    struct fixture *f = *state;
    make_log(f, N_EVENTS, 4);
    size_t len, off[64];
    uint8_t *b = slurp(file_in(f, "events.log"), &len);
    assert_int_equal(record_offsets(b, len, off, 64), N_EVENTS);
    memset(b + off[15], 0, len - off[15]);
    spit(file_in(f, "events.log"), b, len);
    free(b);
    expect_tamper(f, NULL, 15, 3, "events were removed");
    assert_int_equal(try_open(f), ERR_INTEGRITY);
}

static void test_timer_signs_heads(void **state)
{
    struct fixture *f = *state;
    struct audit_options o;
    audit_options_init(&o);
    o.sign_every_events = 0;
    o.sign_interval_ms = 30;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, &o, &log), ERR_OK);
    append_n(log, 0, 3);
    int found = 0;
    for (int i = 0; i < 200 && !found; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        size_t len;
        char *h = (char *)slurp(file_in(f, "heads.log"), &len);
        found = strstr(h, "\"tree_size\":3,") != NULL;
        free(h);
    }
    assert_true(found);
    audit_log_close(log);
    /* Nothing new: close does not sign again. */
    assert_int_equal(count_lines(file_in(f, "heads.log")), 1);
}

static void test_verify_missing_dir(void **state)
{
    struct fixture *f = *state;
    struct audit_verify_report rep;
    assert_int_equal(audit_verify_dir(f->dir, NULL, &rep), ERR_NOT_FOUND);
    assert_false(rep.ok);
    make_log(f, 2, 0);
    assert_int_equal(audit_verify_dir(f->dir, "/nonexistent/trusted.json", &rep), ERR_NOT_FOUND);
    assert_false(rep.ok);
}

/* ---- waiting without a thread (audit_log_submit / audit_log_notify) ------ */

struct fired {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int count;
};

static void on_durable(void *ctx)
{
    struct fired *fd = ctx;
    pthread_mutex_lock(&fd->mu);
    fd->count++;
    pthread_cond_broadcast(&fd->cv);
    pthread_mutex_unlock(&fd->mu);
}

static void wait_fired(struct fired *fd, int n)
{
    pthread_mutex_lock(&fd->mu);
    while (fd->count < n)
        pthread_cond_wait(&fd->cv, &fd->mu);
    pthread_mutex_unlock(&fd->mu);
}

/* Submitted events get consecutive indexes, become durable without anyone
 * waiting, and a waiter runs once they are; a waiter for a durable index is
 * not queued. */
static void test_submit_and_notify(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, NULL, &log), ERR_OK);
    append_n(log, 0, 2);
    char ev[256];
    uint64_t idx[5];
    for (int i = 0; i < 5; i++) {
        int el = event_of(ev, sizeof(ev), 2 + i);
        assert_int_equal(audit_log_submit(log, ev, (size_t)el, &idx[i]), ERR_OK);
        assert_int_equal(idx[i], 2 + (uint64_t)i);
    }
    struct fired fd = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct audit_waiter w = {.index = idx[4], .fn = on_durable, .ctx = &fd};
    enum audit_notify n = audit_log_notify(log, &w);
    assert_true(n == AUDIT_NOTIFY_QUEUED || n == AUDIT_NOTIFY_DURABLE);
    if (n == AUDIT_NOTIFY_QUEUED)
        wait_fired(&fd, 1);
    assert_int_equal(audit_log_durable(log, idx[4]), 1);
    assert_int_equal(audit_log_wait(log, idx[4]), ERR_OK);
    assert_int_equal(audit_log_size(log), 7);
    struct audit_waiter done = {.index = idx[0], .fn = on_durable, .ctx = &fd};
    assert_int_equal(audit_log_notify(log, &done), AUDIT_NOTIFY_DURABLE);
    audit_log_cancel(log, &w); /* after it ran: a no-op */
    assert_int_equal(fd.count, n == AUDIT_NOTIFY_QUEUED ? 1 : 0);
    /* Framing is checked; the parse is left to the encoder. */
    assert_int_equal(audit_log_submit(log, "[1]", 3, NULL), ERR_INVALID);
    assert_int_equal(audit_log_submit(log, "{\"a\":\n1}", 8, NULL), ERR_INVALID);
    assert_int_equal(audit_log_submit(log, "{", 1, NULL), ERR_INVALID);
    audit_log_close(log);
    struct audit_verify_report rep;
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    assert_int_equal(rep.events, 7);
}

struct submitter {
    struct audit_log *log;
    int base;
    struct fired *fd;
    struct audit_waiter w[50];
    int queued;
};

static void *submit_main(void *p)
{
    struct submitter *s = p;
    char ev[256];
    for (int i = 0; i < 50; i++) {
        int el = event_of(ev, sizeof(ev), s->base + i);
        uint64_t idx = 0;
        if (audit_log_submit(s->log, ev, (size_t)el, &idx) != ERR_OK)
            return NULL;
        s->w[i] = (struct audit_waiter){.index = idx, .fn = on_durable, .ctx = s->fd};
        if (audit_log_notify(s->log, &s->w[i]) == AUDIT_NOTIFY_QUEUED)
            s->queued++;
    }
    return NULL;
}

/* Eight threads submit and wait by callback: every queued waiter runs exactly
 * once, and the log holds every event. */
static void test_notify_concurrent(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, NULL, &log), ERR_OK);
    struct fired fd = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct submitter *s = calloc(8, sizeof(*s));
    assert_non_null(s);
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        s[i].log = log;
        s[i].base = i * 50;
        s[i].fd = &fd;
        assert_int_equal(pthread_create(&th[i], NULL, submit_main, &s[i]), 0);
    }
    int queued = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        queued += s[i].queued;
    }
    wait_fired(&fd, queued);
    audit_log_notify_close(log);
    assert_int_equal(fd.count, queued);
    assert_int_equal(audit_log_size(log), 400);
    /* After notify_close, waiters are refused and audit_log_wait still works. */
    struct audit_waiter w = {.index = 400, .fn = on_durable, .ctx = &fd};
    char ev[256];
    int el = event_of(ev, sizeof(ev), 400);
    uint64_t idx = 0;
    assert_int_equal(audit_log_submit(log, ev, (size_t)el, &idx), ERR_OK);
    w.index = idx;
    enum audit_notify n = audit_log_notify(log, &w);
    assert_true(n == AUDIT_NOTIFY_CLOSED || n == AUDIT_NOTIFY_DURABLE);
    assert_int_equal(audit_log_wait(log, idx), ERR_OK);
    free(s);
    audit_log_close(log);
    struct audit_verify_report rep;
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    assert_int_equal(rep.events, 401);
}

/* A client that waits for each answer before sending the next: one event
 * per round trip, so nothing may be held back to gather company. */
static void *closed_loop_main(void *p)
{
    struct submitter *s = p;
    char ev[256];
    for (int i = 0; i < 30; i++) {
        int el = event_of(ev, sizeof(ev), s->base + i);
        uint64_t idx = 0;
        if (audit_log_submit(s->log, ev, (size_t)el, &idx) != ERR_OK)
            return NULL;
        struct fired fd = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
        s->w[0] = (struct audit_waiter){.index = idx, .fn = on_durable, .ctx = &fd};
        if (audit_log_notify(s->log, &s->w[0]) == AUDIT_NOTIFY_QUEUED)
            wait_fired(&fd, 1);
        s->queued++;
    }
    return NULL;
}

/* Held answers share a sync: a lone client gets one flush per event (never
 * held for company), 16 clients in closed loop share flushes, and a lone
 * client after them is still answered (the wait for company is bounded). */
static void test_flusher_gathers(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, NULL, &log), ERR_OK);
    struct audit_stats st0, st1;
    struct submitter lone = {.log = log, .base = 0};
    audit_log_stats(log, &st0);
    closed_loop_main(&lone);
    audit_log_stats(log, &st1);
    assert_int_equal(lone.queued, 30);
    assert_int_equal(st1.flushes - st0.flushes, 30);

    struct submitter *s = calloc(16, sizeof(*s));
    assert_non_null(s);
    pthread_t th[16];
    for (int i = 0; i < 16; i++) {
        s[i].log = log;
        s[i].base = 100 + i * 30;
        assert_int_equal(pthread_create(&th[i], NULL, closed_loop_main, &s[i]), 0);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(s[i].queued, 30);
    }
    struct audit_stats st2;
    audit_log_stats(log, &st2);
    uint64_t flushes = st2.flushes - st1.flushes;
    /* 480 events; without gathering, fast syncs make this close to 480. */
    print_message("16 closed-loop clients: 480 events in %llu flushes\n",
                  (unsigned long long)flushes);
    assert_true(flushes * 3 <= 480);

    lone.base = 1000;
    lone.queued = 0;
    closed_loop_main(&lone);
    assert_int_equal(lone.queued, 30);
    free(s);
    audit_log_close(log);
    struct audit_verify_report rep;
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
    assert_int_equal(rep.events, 540);
}

struct forwarded {
    pthread_mutex_t mu;
    int n;
    uint64_t index[64];
    char text[64][128];
};

static void on_forward(void *ctx, uint64_t index, const char *ev, size_t len)
{
    struct forwarded *fw = ctx;
    pthread_mutex_lock(&fw->mu);
    if (fw->n < 64 && len < sizeof(fw->text[0])) {
        fw->index[fw->n] = index;
        memcpy(fw->text[fw->n], ev, len);
        fw->text[fw->n][len] = '\0';
        fw->n++;
    }
    pthread_mutex_unlock(&fw->mu);
}

/* The forward hook sees every event once it is durable, in log order, with
 * its exact text and index, whether appended or submitted; nothing written
 * before it was set or after it was cleared, and nothing the log failed to
 * write. */
static void test_forward_durable_only(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, NULL, &log), ERR_OK);
    append_n(log, 0, 3);
    struct forwarded fw = {.mu = PTHREAD_MUTEX_INITIALIZER};
    audit_log_set_forward(log, on_forward, &fw);
    append_n(log, 3, 2);
    char ev[256];
    uint64_t idx = 0;
    for (int i = 5; i < 10; i++) {
        int el = event_of(ev, sizeof(ev), i);
        assert_int_equal(audit_log_submit(log, ev, (size_t)el, &idx), ERR_OK);
    }
    assert_int_equal(audit_log_wait(log, idx), ERR_OK);
    pthread_mutex_lock(&fw.mu);
    assert_int_equal(fw.n, 7);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(fw.index[i], (uint64_t)(3 + i));
        event_of(ev, sizeof(ev), 3 + i);
        assert_string_equal(fw.text[i], ev);
    }
    pthread_mutex_unlock(&fw.mu);
    audit_log_set_forward(log, NULL, NULL);
    append_n(log, 10, 1);
    assert_int_equal(fw.n, 7);
    /* A failed write forwards nothing. */
    audit_log_set_forward(log, on_forward, &fw);
    assert_int_equal(audit_log_test_break_storage(log), 0);
    int el = event_of(ev, sizeof(ev), 11);
    assert_int_equal(audit_log_submit(log, ev, (size_t)el, &idx), ERR_OK);
    assert_int_equal(audit_log_wait(log, idx), ERR_UNAVAILABLE);
    assert_int_equal(fw.n, 7);
    audit_log_close(log);
}

struct appender {
    struct audit_log *log;
    int stop;
};

static void *append_loop(void *p)
{
    struct appender *a = p;
    char ev[256];
    int el = event_of(ev, sizeof(ev), 0);
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE))
        assert_int_equal(audit_log_append(a->log, ev, (size_t)el, NULL), ERR_OK);
    return NULL;
}

/* An event submitted while another thread leads a flush is written by the
 * flusher afterwards, even when nothing else happens in the log (no later
 * append, submit or waiter to trigger it). */
static void test_submit_during_flush(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, NULL, &log), ERR_OK);
    char ev[256];
    int el = event_of(ev, sizeof(ev), 1);
    for (int round = 0; round < 30; round++) {
        struct appender a = {log, 0};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, append_loop, &a), 0);
        struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
        uint64_t idx = 0;
        assert_int_equal(audit_log_submit(log, ev, (size_t)el, &idx), ERR_OK);
        __atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
        pthread_join(th, NULL);
        /* Only polling from here on: durable must turn 1 by itself. */
        int d = 0;
        for (int i = 0; i < 2000 && (d = audit_log_durable(log, idx)) == 0; i++) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        assert_int_equal(d, 1);
    }
    audit_log_close(log);
    struct audit_verify_report rep;
    assert_int_equal(verify(f, NULL, &rep), ERR_OK);
}

/* When the log fails, queued events never become durable: durable says -1,
 * waiters are refused, and submit fails closed. */
static void test_submit_fail_closed(void **state)
{
    struct fixture *f = *state;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(f->dir, NULL, &log), ERR_OK);
    append_n(log, 0, 2);
    assert_int_equal(audit_log_test_break_storage(log), 0);
    char ev[256];
    int el = event_of(ev, sizeof(ev), 2);
    uint64_t idx = 0;
    enum err e = audit_log_submit(log, ev, (size_t)el, &idx);
    assert_int_equal(e, ERR_OK);
    assert_int_equal(audit_log_wait(log, idx), ERR_UNAVAILABLE);
    assert_int_equal(audit_log_durable(log, idx), -1);
    struct fired fd = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct audit_waiter w = {.index = idx, .fn = on_durable, .ctx = &fd};
    assert_int_equal(audit_log_notify(log, &w), AUDIT_NOTIFY_FAILED);
    assert_int_equal(audit_log_submit(log, ev, (size_t)el, &idx), ERR_UNAVAILABLE);
    assert_int_equal(audit_log_size(log), 2);
    audit_log_close(log);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_roundtrip),
        T(test_invalid_events),
        T(test_iterators),
        T(test_inclusion_proofs),
        T(test_consistency_proofs),
        T(test_untouched_log_verifies),
        T(test_flip_byte),
        T(test_delete_event),
        T(test_swap_events),
        T(test_truncate_file),
        T(test_truncate_tail_with_heads),
        T(test_replace_signature),
        T(test_forged_event_and_head),
        T(test_rewrite_with_keys),
        T(test_fail_closed),
        T(test_new_segment),
        T(test_new_segment_after_broken_framing),
        T(test_torn_tail_repair),
        T(test_space_allocated_ahead),
        T(test_torn_in_allocated_space),
        T(test_zeroed_signed_events),
        T(test_timer_signs_heads),
        T(test_verify_missing_dir),
        T(test_submit_and_notify),
        T(test_notify_concurrent),
        T(test_submit_fail_closed),
        T(test_submit_during_flush),
        T(test_flusher_gathers),
        T(test_forward_durable_only),
        T(test_big_log_sparse_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
