/*
 * The offline verifier: needs only the log files and the public key.
 */
#include "audit/audit.h"

#include "audit/merkle.h"
#include "audit/scan.h"
#include "audit/sth.h"
#include "util/secure.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 4096
#define HEADS_FILE_MAX (256u * 1024 * 1024)
#define TRUSTED_FILE_MAX 65536

struct verifier {
    struct merkle_hasher hs;
    struct merkle_stack stack;
    EVP_PKEY *pub;
    uint8_t pub_raw[AUDIT_PUBKEY_LEN];
    struct audit_sth *heads;
    size_t nheads, next; /* next head to check */
    uint64_t good_size;  /* size of the last head that verified */
    struct audit_sth trusted;
    int have_trusted, trusted_done;
    int failed;
    struct audit_verify_report *rep;
};

static void fail(struct verifier *v, int64_t ev_first, int64_t ev_last, int64_t head,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void fail(struct verifier *v, int64_t ev_first, int64_t ev_last, int64_t head,
                 const char *fmt, ...)
{
    if (v->failed)
        return;
    v->failed = 1;
    v->rep->ok = 0;
    v->rep->bad_event_first = ev_first;
    v->rep->bad_event_last = ev_last;
    v->rep->bad_head = head;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->rep->reason, sizeof(v->rep->reason), fmt, ap);
    va_end(ap);
}

/* The events a head at `size` vouches for beyond the last good head. */
static void fail_head(struct verifier *v, size_t h, const char *what)
{
    uint64_t size = v->heads[h].tree_size;
    int64_t first = size > v->good_size ? (int64_t)v->good_size : -1;
    int64_t last = size > v->good_size ? (int64_t)size - 1 : -1;
    if (first >= 0)
        fail(v, first, last, (int64_t)h, "head %zu (tree_size %llu): %s; events %lld..%lld", h,
             (unsigned long long)size, what, (long long)first, (long long)last);
    else
        fail(v, -1, -1, (int64_t)h, "head %zu (tree_size %llu): %s", h, (unsigned long long)size,
             what);
}

/* Checks every head and the trusted head at the current tree size. */
static void checkpoint(struct verifier *v)
{
    uint64_t count = v->stack.count;
    merkle_hash root;
    int have_root = 0;
    while (!v->failed && v->next < v->nheads && v->heads[v->next].tree_size == count) {
        size_t h = v->next++;
        if (!audit_sth_verify(v->pub, &v->heads[h])) {
            fail_head(v, h, "signature does not verify with signing.pub");
            return;
        }
        if (!have_root) {
            merkle_stack_root(&v->stack, &v->hs, root);
            have_root = 1;
        }
        if (!secure_equal(root, v->heads[h].root, MERKLE_HASH_LEN)) {
            fail_head(v, h,
                      "root differs from the recomputed root: events were changed, "
                      "removed, inserted or reordered");
            return;
        }
        v->good_size = count;
        v->rep->heads++;
    }
    if (!v->failed && v->have_trusted && !v->trusted_done && v->trusted.tree_size == count) {
        if (!have_root)
            merkle_stack_root(&v->stack, &v->hs, root);
        v->trusted_done = 1;
        if (!secure_equal(root, v->trusted.root, MERKLE_HASH_LEN)) {
            fail(v, 0, count ? (int64_t)count - 1 : -1, -1,
                 "the log differs from the trusted head (tree_size %llu): events 0..%lld were "
                 "rewritten",
                 (unsigned long long)count, (long long)count - 1);
            return;
        }
        v->rep->trusted_checked = 1;
    }
}

static int verify_record_cb(void *ctx, uint64_t index, uint64_t offset, const uint8_t *data,
                            size_t len)
{
    struct verifier *v = ctx;
    if (!v->failed)
        checkpoint(v);
    if (!v->failed && !audit_record_framed(data, len))
        fail(v, (int64_t)index, (int64_t)index, -1,
             "event %llu at offset %llu of events.log is not one line of JSON (damaged, or a "
             "write that a crash interrupted)",
             (unsigned long long)index, (unsigned long long)offset);
    if (v->failed) {
        v->stack.count++; /* keep counting events only */
        return 0;
    }
    merkle_hash leaf;
    merkle_leaf_hash(&v->hs, data, len, leaf);
    merkle_stack_push(&v->stack, &v->hs, leaf);
    return 0;
}

/* Parses heads.log: one head per line, every line ending with '\n', sizes
 * never decreasing. Fails the verification on the first bad line. */
static enum err parse_heads(struct verifier *v, const uint8_t *buf, size_t len)
{
    size_t cap = 0, pos = 0;
    while (pos < len && !v->failed) {
        const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
        size_t h = v->nheads;
        if (nl == NULL) {
            fail(v, -1, -1, (int64_t)h, "head %zu: incomplete last line in heads.log", h);
            break;
        }
        size_t l = (size_t)(nl - (buf + pos));
        if (v->nheads == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct audit_sth *p = realloc(v->heads, ncap * sizeof(*p));
            if (p == NULL)
                return ERR_INTERNAL;
            v->heads = p;
            cap = ncap;
        }
        if (l == 0 || l > AUDIT_STH_LINE_MAX ||
            audit_sth_parse((const char *)buf + pos, l, &v->heads[h]) != ERR_OK) {
            fail(v, -1, -1, (int64_t)h, "head %zu: malformed line in heads.log", h);
            break;
        }
        if (h > 0 && v->heads[h].tree_size < v->heads[h - 1].tree_size) {
            fail(v, -1, -1, (int64_t)h,
                 "head %zu: tree_size %llu is smaller than the previous "
                 "head's %llu",
                 h, (unsigned long long)v->heads[h].tree_size,
                 (unsigned long long)v->heads[h - 1].tree_size);
            break;
        }
        v->nheads++;
        pos += l + 1;
    }
    if (v->nheads > 0)
        v->rep->last_head_size = v->heads[v->nheads - 1].tree_size;
    return ERR_OK;
}

/* Parses a trusted head (audit_export_head JSON) and checks that it was
 * signed by the key the log is verified with. */
static void load_trusted(struct verifier *v, const char *json)
{
    if (audit_sth_parse(json, strlen(json), &v->trusted) != ERR_OK) {
        fail(v, -1, -1, -1, "the trusted head is malformed");
        return;
    }
    json_t *o = json_loads(json, 0, NULL);
    json_t *pk = json_object_get(o, "public_key");
    uint8_t raw[AUDIT_PUBKEY_LEN];
    int key_differs =
        json_is_string(pk) &&
        (hex_decode(json_string_value(pk), json_string_length(pk), raw, sizeof(raw)) != 0 ||
         !secure_equal(raw, v->pub_raw, sizeof(raw)));
    json_decref(o);
    if (key_differs)
        fail(v, -1, -1, -1,
             "signing.pub is not the key that signed the trusted head: the key "
             "was replaced");
    else if (!audit_sth_verify(v->pub, &v->trusted))
        fail(v, -1, -1, -1, "the trusted head's signature does not verify with signing.pub");
    else
        v->have_trusted = 1;
}

static void report_init(struct audit_verify_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    rep->ok = 1;
    rep->bad_event_first = rep->bad_event_last = rep->bad_head = -1;
}

/* The verification shared by the file and memory entry points. */
static enum err verify_core(struct audit_src *events, const uint8_t *heads, size_t heads_len,
                            const uint8_t pubkey_raw[32], const char *trusted_json,
                            struct audit_verify_report *rep)
{
    struct verifier v;
    memset(&v, 0, sizeof(v));
    v.rep = rep;
    merkle_stack_init(&v.stack);
    memcpy(v.pub_raw, pubkey_raw, AUDIT_PUBKEY_LEN);
    v.pub = audit_pubkey_from_raw(pubkey_raw);
    enum err rc = ERR_INTERNAL;
    if (v.pub == NULL || merkle_hasher_init(&v.hs) != 0)
        goto out;
    rc = parse_heads(&v, heads, heads_len);
    if (rc != ERR_OK)
        goto out;
    if (trusted_json != NULL && !v.failed)
        load_trusted(&v, trusted_json);

    struct audit_scan_result res;
    rc = audit_scan(events, 0, verify_record_cb, &v, &res);
    if (rc != ERR_OK)
        goto out;
    rep->events = res.records;
    if (res.bad_length || res.torn || res.junk)
        fail(&v, (int64_t)res.records, (int64_t)res.records, -1,
             "event %llu: %s at offset %llu of events.log", (unsigned long long)res.records,
             res.torn   ? "truncated record"
             : res.junk ? "non-zero bytes after the end of the records"
                        : "invalid record length",
             (unsigned long long)res.good_end);
    if (!v.failed)
        checkpoint(&v);
    if (!v.failed && v.next < v.nheads)
        fail(
            &v, (int64_t)res.records, (int64_t)v.heads[v.nheads - 1].tree_size - 1, (int64_t)v.next,
            "events.log has %llu events but head %zu covers %llu: events were removed",
            (unsigned long long)res.records, v.next, (unsigned long long)v.heads[v.next].tree_size);
    if (!v.failed && v.have_trusted && !v.trusted_done)
        fail(&v, (int64_t)res.records, (int64_t)v.trusted.tree_size - 1, -1,
             "events.log has %llu events but the trusted head covers %llu: events were removed",
             (unsigned long long)res.records, (unsigned long long)v.trusted.tree_size);
    rc = v.failed ? ERR_INTEGRITY : ERR_OK;
out:
    merkle_hasher_free(&v.hs);
    EVP_PKEY_free(v.pub);
    free(v.heads);
    return rc;
}

enum err audit_verify_buffers(const uint8_t *events, size_t events_len, const uint8_t *heads,
                              size_t heads_len, const uint8_t pubkey_raw[32],
                              const char *trusted_head_json, struct audit_verify_report *rep)
{
    report_init(rep);
    static const uint8_t none[1] = {0};
    struct audit_src src = {
        .fd = -1, .mem = events ? events : none, .mem_len = events ? events_len : 0};
    return verify_core(&src, heads ? heads : none, heads ? heads_len : 0, pubkey_raw,
                       trusted_head_json, rep);
}

/* Reads a whole file of at most max bytes (NUL-terminated; caller frees). */
static enum err read_file(const char *path, size_t max, char **out, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? ERR_NOT_FOUND : ERR_IO;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < 0 || (uint64_t)sb.st_size > max) {
        close(fd);
        return ERR_TOO_LARGE;
    }
    size_t len = (size_t)sb.st_size, got = 0;
    char *buf = malloc(len + 1);
    if (buf == NULL) {
        close(fd);
        return ERR_INTERNAL;
    }
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len_out = got;
    return ERR_OK;
}

static int join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_CAP, "%s/%s", dir, name);
    return n < 0 || n >= PATH_CAP ? -1 : 0;
}

enum err audit_verify_dir(const char *dir, const char *trusted_head_path,
                          struct audit_verify_report *rep)
{
    report_init(rep);
    char ep[PATH_CAP], hp[PATH_CAP], kp[PATH_CAP];
    if (join(ep, dir, "events.log") || join(hp, dir, "heads.log") || join(kp, dir, "signing.pub"))
        return ERR_INVALID;

    char *heads = NULL, *trusted = NULL;
    size_t heads_len = 0, tlen = 0;
    EVP_PKEY *pub = NULL;
    uint8_t raw[AUDIT_PUBKEY_LEN];
    int fd = -1;
    enum err rc = audit_pubkey_load(kp, &pub);
    if (rc != ERR_OK) {
        snprintf(rep->reason, sizeof(rep->reason), "cannot load %.200s", kp);
        goto out;
    }
    if (audit_pubkey_raw(pub, raw) != 0) {
        rc = ERR_INTERNAL;
        goto out;
    }
    rc = read_file(hp, HEADS_FILE_MAX, &heads, &heads_len);
    if (rc == ERR_NOT_FOUND) {
        heads_len = 0;
        rc = ERR_OK;
    }
    if (rc == ERR_OK && trusted_head_path != NULL) {
        rc = read_file(trusted_head_path, TRUSTED_FILE_MAX, &trusted, &tlen);
        if (rc == ERR_OK && (tlen == 0 || memchr(trusted, '\0', tlen) != NULL))
            rc = ERR_INVALID;
        if (rc != ERR_OK)
            snprintf(rep->reason, sizeof(rep->reason), "cannot read the trusted head %.180s",
                     trusted_head_path);
    }
    if (rc != ERR_OK)
        goto out;
    fd = open(ep, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? ERR_NOT_FOUND : ERR_IO;
        snprintf(rep->reason, sizeof(rep->reason), "cannot open %.200s", ep);
        goto out;
    }
    struct audit_src src = {.fd = fd, .pos = 0, .limit = UINT64_MAX};
    rc = verify_core(&src, (const uint8_t *)(heads ? heads : ""), heads_len, raw, trusted, rep);
out:
    if (rc != ERR_OK && rc != ERR_INTEGRITY)
        rep->ok = 0;
    if (fd >= 0)
        close(fd);
    free(heads);
    free(trusted);
    EVP_PKEY_free(pub);
    return rc;
}

/* ---- proofs --------------------------------------------------------------- */

static void say(char *reason, size_t cap, const char *msg)
{
    if (reason != NULL && cap > 0)
        snprintf(reason, cap, "%s", msg);
}

static int get_hash(json_t *o, const char *key, merkle_hash out)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) && hex_decode(json_string_value(v), json_string_length(v), out,
                                           MERKLE_HASH_LEN) == 0
               ? 0
               : -1;
}

static int get_size(json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Decodes the "path" array. Returns the count or -1. */
static int get_path(json_t *o, merkle_hash *path)
{
    json_t *a = json_object_get(o, "path");
    if (!json_is_array(a) || json_array_size(a) > MERKLE_MAX_PATH)
        return -1;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *e = json_array_get(a, i);
        if (!json_is_string(e) ||
            hex_decode(json_string_value(e), json_string_length(e), path[i], MERKLE_HASH_LEN) != 0)
            return -1;
    }
    return (int)json_array_size(a);
}

static enum err check_inclusion(json_t *o, struct merkle_hasher *hs, const struct audit_sth *s,
                                const struct audit_proof_check *chk, char *reason, size_t cap)
{
    uint64_t index;
    merkle_hash leaf, path[MERKLE_MAX_PATH];
    int n = get_path(o, path);
    if (get_size(o, "index", &index) != 0 || get_hash(o, "leaf_hash", leaf) != 0 || n < 0) {
        say(reason, cap, "malformed inclusion proof");
        return ERR_INVALID;
    }
    if (chk != NULL && chk->event_json != NULL) {
        merkle_hash ev;
        merkle_leaf_hash(hs, chk->event_json, chk->event_len, ev);
        if (!secure_equal(ev, leaf, MERKLE_HASH_LEN)) {
            say(reason, cap, "the event does not match the proof's leaf hash");
            return ERR_INTEGRITY;
        }
    }
    if (!merkle_verify_inclusion(hs, leaf, index, s->tree_size, path, (size_t)n, s->root)) {
        say(reason, cap, "the inclusion path does not lead to the signed root");
        return ERR_INTEGRITY;
    }
    say(reason, cap, "ok");
    return ERR_OK;
}

static enum err check_consistency(json_t *o, struct merkle_hasher *hs, EVP_PKEY *pub,
                                  const struct audit_sth *s, const struct audit_proof_check *chk,
                                  char *reason, size_t cap)
{
    uint64_t old_size;
    merkle_hash old_root, path[MERKLE_MAX_PATH];
    int n = get_path(o, path);
    if (get_size(o, "old_size", &old_size) != 0 || get_hash(o, "old_root", old_root) != 0 ||
        n < 0) {
        say(reason, cap, "malformed consistency proof");
        return ERR_INVALID;
    }
    if (chk != NULL && chk->trusted_head_json != NULL) {
        struct audit_sth t;
        if (audit_sth_parse(chk->trusted_head_json, strlen(chk->trusted_head_json), &t) != ERR_OK) {
            say(reason, cap, "malformed trusted head");
            return ERR_INVALID;
        }
        if (!audit_sth_verify(pub, &t) || t.tree_size != old_size ||
            !secure_equal(t.root, old_root, MERKLE_HASH_LEN)) {
            say(reason, cap, "the proof does not start from the trusted head");
            return ERR_INTEGRITY;
        }
    }
    if (!merkle_verify_consistency(hs, old_size, s->tree_size, old_root, s->root, path,
                                   (size_t)n)) {
        say(reason, cap, "the consistency path does not join the old root to the signed root");
        return ERR_INTEGRITY;
    }
    say(reason, cap, "ok");
    return ERR_OK;
}

enum err audit_verify_proof_json_raw(const char *proof_json, const uint8_t pubkey_raw[32],
                                     const struct audit_proof_check *chk, char *reason,
                                     size_t reason_cap)
{
    json_t *o = json_loads(proof_json, JSON_REJECT_DUPLICATES, NULL);
    json_t *fmt = json_object_get(o, "format");
    json_t *pk = json_object_get(o, "public_key");
    struct audit_sth s;
    uint8_t raw[AUDIT_PUBKEY_LEN];
    struct merkle_hasher hs = {0};
    EVP_PKEY *pub = NULL;
    enum err rc = ERR_INVALID;
    if (!json_is_object(o) || !json_is_string(fmt) || !json_is_string(pk) ||
        audit_sth_parse(proof_json, strlen(proof_json), &s) != ERR_OK ||
        hex_decode(json_string_value(pk), json_string_length(pk), raw, sizeof(raw)) != 0) {
        say(reason, reason_cap, "malformed proof");
        goto out;
    }
    if (!secure_equal(raw, pubkey_raw, sizeof(raw))) {
        say(reason, reason_cap, "the proof was signed by a different key");
        rc = ERR_INTEGRITY;
        goto out;
    }
    rc = ERR_INTERNAL;
    pub = audit_pubkey_from_raw(pubkey_raw);
    if (pub == NULL || merkle_hasher_init(&hs) != 0)
        goto out;
    if (!audit_sth_verify(pub, &s)) {
        say(reason, reason_cap, "the head signature does not verify");
        rc = ERR_INTEGRITY;
        goto out;
    }
    if (strcmp(json_string_value(fmt), "coffer-inclusion-v1") == 0) {
        rc = check_inclusion(o, &hs, &s, chk, reason, reason_cap);
    } else if (strcmp(json_string_value(fmt), "coffer-consistency-v1") == 0) {
        rc = check_consistency(o, &hs, pub, &s, chk, reason, reason_cap);
    } else {
        say(reason, reason_cap, "unknown proof format");
        rc = ERR_INVALID;
    }
out:
    merkle_hasher_free(&hs);
    EVP_PKEY_free(pub);
    json_decref(o);
    return rc;
}

enum err audit_verify_proof_json(const char *proof_json, const char *pubkey_pem_path,
                                 const struct audit_proof_check *chk, char *reason,
                                 size_t reason_cap)
{
    EVP_PKEY *pub = NULL;
    uint8_t raw[AUDIT_PUBKEY_LEN];
    if (proof_json == NULL || pubkey_pem_path == NULL)
        return ERR_INVALID;
    enum err rc = audit_pubkey_load(pubkey_pem_path, &pub);
    if (rc == ERR_OK && audit_pubkey_raw(pub, raw) != 0)
        rc = ERR_INTERNAL;
    EVP_PKEY_free(pub);
    if (rc != ERR_OK) {
        say(reason, reason_cap, "cannot load the public key");
        return rc;
    }
    return audit_verify_proof_json_raw(proof_json, raw, chk, reason, reason_cap);
}
