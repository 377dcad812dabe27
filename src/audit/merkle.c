#include "audit/merkle.h"

#include "util/secure.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

int merkle_hasher_init(struct merkle_hasher *h)
{
    h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    h->ctx = EVP_MD_CTX_new();
    if (h->md == NULL || h->ctx == NULL) {
        merkle_hasher_free(h);
        return -1;
    }
    return 0;
}

void merkle_hasher_free(struct merkle_hasher *h)
{
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->md);
    h->ctx = NULL;
    h->md = NULL;
}

/* SHA-256 over (prefix byte, a, b). Failures of a fetched SHA-256 cannot
 * happen short of memory corruption, so they abort rather than produce a
 * wrong hash that would later look like tampering. */
static void hash3(struct merkle_hasher *h, uint8_t prefix, const void *a, size_t alen,
                  const void *b, size_t blen, merkle_hash out)
{
    unsigned int outlen = 0;
    if (EVP_DigestInit_ex2(h->ctx, h->md, NULL) != 1 || EVP_DigestUpdate(h->ctx, &prefix, 1) != 1 ||
        (alen > 0 && EVP_DigestUpdate(h->ctx, a, alen) != 1) ||
        (blen > 0 && EVP_DigestUpdate(h->ctx, b, blen) != 1) ||
        EVP_DigestFinal_ex(h->ctx, out, &outlen) != 1 || outlen != MERKLE_HASH_LEN)
        abort();
}

void merkle_leaf_hash(struct merkle_hasher *h, const void *data, size_t len, merkle_hash out)
{
    hash3(h, 0x00, data, len, NULL, 0, out);
}

void merkle_node_hash(struct merkle_hasher *h, const merkle_hash left, const merkle_hash right,
                      merkle_hash out)
{
    uint8_t buf[2 * MERKLE_HASH_LEN];
    memcpy(buf, left, MERKLE_HASH_LEN);
    memcpy(buf + MERKLE_HASH_LEN, right, MERKLE_HASH_LEN);
    hash3(h, 0x01, buf, sizeof(buf), NULL, 0, out);
}

void merkle_empty_root(merkle_hash out)
{
    static const uint8_t empty[MERKLE_HASH_LEN] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
                                                   0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
                                                   0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
                                                   0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    memcpy(out, empty, MERKLE_HASH_LEN);
}

/* ---- in-memory tree ---------------------------------------------------- */

void merkle_tree_init(struct merkle_tree *t)
{
    memset(t, 0, sizeof(*t));
}

void merkle_tree_thin(struct merkle_tree *t, unsigned low, merkle_leaf_fn fn, void *ctx)
{
    t->low = low > 16 ? 16 : low;
    t->leaves = fn;
    t->leaves_ctx = ctx;
}

void merkle_tree_free(struct merkle_tree *t)
{
    for (size_t k = 0; k < 64; k++)
        free(t->level[k].h);
    merkle_tree_init(t);
}

static int level_push(struct merkle_level *lv, const merkle_hash v)
{
    if (lv->len == lv->cap) {
        size_t ncap = lv->cap ? lv->cap * 2 : 64;
        if (ncap > SIZE_MAX / MERKLE_HASH_LEN)
            return -1;
        merkle_hash *n = realloc(lv->h, ncap * MERKLE_HASH_LEN);
        if (n == NULL)
            return -1;
        lv->h = n;
        lv->cap = ncap;
    }
    memcpy(lv->h[lv->len++], v, MERKLE_HASH_LEN);
    return 0;
}

int merkle_tree_append(struct merkle_tree *t, struct merkle_hasher *h, const merkle_hash leaf)
{
    /* Reserve room on every level first so that a failure leaves the tree unchanged. */
    uint64_t n = t->size + 1;
    for (size_t k = 0; k < 64 && (n >> k) > 0; k++) {
        struct merkle_level *lv = &t->level[k];
        if (lv->base + lv->len < (n >> k) && lv->len == lv->cap) {
            size_t ncap = lv->cap ? lv->cap * 2 : 64;
            if (ncap > SIZE_MAX / MERKLE_HASH_LEN)
                return -1;
            merkle_hash *p = realloc(lv->h, ncap * MERKLE_HASH_LEN);
            if (p == NULL)
                return -1;
            lv->h = p;
            lv->cap = ncap;
        }
    }
    merkle_hash cur;
    memcpy(cur, leaf, MERKLE_HASH_LEN);
    for (size_t k = 0; k < 64; k++) {
        struct merkle_level *lv = &t->level[k];
        if (level_push(lv, cur) != 0)
            return -1; /* cannot happen: reserved above */
        if ((lv->base + lv->len) % 2 != 0)
            break;
        merkle_node_hash(h, lv->h[lv->len - 2], lv->h[lv->len - 1], cur);
    }
    t->size = n;
    if (t->low > 0 && n % (1ULL << t->low) == 0) {
        /* The block is complete and its root is on level low: the nodes
         * below it are dropped (their storage is reused by the next block). */
        for (unsigned k = 0; k < t->low; k++) {
            t->level[k].base += t->level[k].len;
            t->level[k].len = 0;
        }
    }
    return 0;
}

/* The node at level k, position p (a complete subtree of the tree): kept, or
 * recomputed from its 2^k leaves. 0 or -1. */
static int node_get(const struct merkle_tree *t, struct merkle_hasher *h, unsigned k, uint64_t p,
                    merkle_hash out)
{
    const struct merkle_level *lv = &t->level[k];
    if (p >= lv->base && p - lv->base < lv->len) {
        memcpy(out, lv->h[p - lv->base], MERKLE_HASH_LEN);
        return 0;
    }
    if (t->leaves == NULL || k >= t->low)
        return -1;
    uint64_t n = 1ULL << k;
    merkle_hash *buf = malloc(n * MERKLE_HASH_LEN);
    if (buf == NULL)
        return -1;
    int rc = t->leaves(t->leaves_ctx, h, p << k, n, buf);
    for (uint64_t m = n; rc == 0 && m > 1; m /= 2) {
        for (uint64_t i = 0; i < m / 2; i++)
            merkle_node_hash(h, buf[2 * i], buf[2 * i + 1], buf[i]);
    }
    if (rc == 0)
        memcpy(out, buf[0], MERKLE_HASH_LEN);
    free(buf);
    return rc == 0 ? 0 : -1;
}

int merkle_tree_leaf(const struct merkle_tree *t, struct merkle_hasher *h, uint64_t i,
                     merkle_hash out)
{
    return i < t->size ? node_get(t, h, 0, i, out) : -1;
}

/* Largest power of two strictly smaller than n (n >= 2). */
static uint64_t split_point(uint64_t n)
{
    uint64_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

/* MTH of leaves [start, start+n), n >= 1, start+n <= t->size. Complete
 * aligned subtrees are looked up; the ragged right edge is recombined, which
 * costs at most one hash per level. 0 or -1. */
static int range_hash(const struct merkle_tree *t, struct merkle_hasher *h, uint64_t start,
                      uint64_t n, merkle_hash out)
{
    if ((n & (n - 1)) == 0 && start % n == 0)
        return node_get(t, h, (unsigned)__builtin_ctzll(n), start / n, out);
    uint64_t k = split_point(n);
    merkle_hash left, right;
    if (range_hash(t, h, start, k, left) != 0 || range_hash(t, h, start + k, n - k, right) != 0)
        return -1;
    merkle_node_hash(h, left, right, out);
    return 0;
}

int merkle_tree_root(const struct merkle_tree *t, struct merkle_hasher *h, uint64_t size,
                     merkle_hash out)
{
    if (size > t->size)
        return -1;
    if (size == 0) {
        merkle_empty_root(out);
        return 0;
    }
    return range_hash(t, h, 0, size, out);
}

/* PATH(m, D[start:start+n]) of RFC 9162 2.1.3.1, appended leaf-first. */
static int path_rec(const struct merkle_tree *t, struct merkle_hasher *h, uint64_t m,
                    uint64_t start, uint64_t n, merkle_hash *path, size_t *cnt)
{
    if (n <= 1)
        return 0;
    uint64_t k = split_point(n);
    if (m < k)
        return path_rec(t, h, m, start, k, path, cnt) == 0 &&
                       range_hash(t, h, start + k, n - k, path[(*cnt)++]) == 0
                   ? 0
                   : -1;
    return path_rec(t, h, m - k, start + k, n - k, path, cnt) == 0 &&
                   range_hash(t, h, start, k, path[(*cnt)++]) == 0
               ? 0
               : -1;
}

int merkle_tree_inclusion(const struct merkle_tree *t, struct merkle_hasher *h, uint64_t index,
                          uint64_t size, merkle_hash *path, size_t *n)
{
    *n = 0;
    if (size > t->size || index >= size)
        return -1;
    return path_rec(t, h, index, 0, size, path, n);
}

/* SUBPROOF(m, D[start:start+n], b) of RFC 9162 2.1.4.1. */
static int subproof_rec(const struct merkle_tree *t, struct merkle_hasher *h, uint64_t m,
                        uint64_t start, uint64_t n, int b, merkle_hash *path, size_t *cnt)
{
    if (m == n)
        return b ? 0 : range_hash(t, h, start, n, path[(*cnt)++]);
    uint64_t k = split_point(n);
    if (m <= k)
        return subproof_rec(t, h, m, start, k, b, path, cnt) == 0 &&
                       range_hash(t, h, start + k, n - k, path[(*cnt)++]) == 0
                   ? 0
                   : -1;
    return subproof_rec(t, h, m - k, start + k, n - k, 0, path, cnt) == 0 &&
                   range_hash(t, h, start, k, path[(*cnt)++]) == 0
               ? 0
               : -1;
}

int merkle_tree_consistency(const struct merkle_tree *t, struct merkle_hasher *h, uint64_t old_size,
                            uint64_t size, merkle_hash *path, size_t *n)
{
    *n = 0;
    if (size > t->size || old_size > size)
        return -1;
    if (old_size == 0 || old_size == size)
        return 0;
    return subproof_rec(t, h, old_size, 0, size, 1, path, n);
}

/* ---- verification ------------------------------------------------------ */

int merkle_verify_inclusion(struct merkle_hasher *h, const merkle_hash leaf, uint64_t index,
                            uint64_t size, const merkle_hash *path, size_t n,
                            const merkle_hash root)
{
    if (index >= size || n > MERKLE_MAX_PATH)
        return 0;
    uint64_t fn = index, sn = size - 1;
    merkle_hash r;
    memcpy(r, leaf, MERKLE_HASH_LEN);
    for (size_t i = 0; i < n; i++) {
        if (sn == 0)
            return 0;
        if ((fn & 1) || fn == sn) {
            merkle_node_hash(h, path[i], r, r);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            merkle_node_hash(h, r, path[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && secure_equal(r, root, MERKLE_HASH_LEN);
}

int merkle_verify_consistency(struct merkle_hasher *h, uint64_t old_size, uint64_t size,
                              const merkle_hash old_root, const merkle_hash root,
                              const merkle_hash *path, size_t n)
{
    if (old_size > size || n > MERKLE_MAX_PATH)
        return 0;
    if (old_size == 0) {
        merkle_hash empty;
        merkle_empty_root(empty);
        return n == 0 && secure_equal(old_root, empty, MERKLE_HASH_LEN);
    }
    if (old_size == size)
        return n == 0 && secure_equal(old_root, root, MERKLE_HASH_LEN);
    if (n == 0)
        return 0;

    /* When old_size is a power of two the old root is the first node of the path. */
    const merkle_hash *p = path;
    size_t cnt = n, i = 0;
    merkle_hash fr, sr;
    if ((old_size & (old_size - 1)) == 0) {
        memcpy(fr, old_root, MERKLE_HASH_LEN);
    } else {
        memcpy(fr, p[0], MERKLE_HASH_LEN);
        i = 1;
    }
    memcpy(sr, fr, MERKLE_HASH_LEN);
    uint64_t fn = old_size - 1, sn = size - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    for (; i < cnt; i++) {
        if (sn == 0)
            return 0;
        if ((fn & 1) || fn == sn) {
            merkle_node_hash(h, p[i], fr, fr);
            merkle_node_hash(h, p[i], sr, sr);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            merkle_node_hash(h, sr, p[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && secure_equal(fr, old_root, MERKLE_HASH_LEN) &&
           secure_equal(sr, root, MERKLE_HASH_LEN);
}

/* ---- streaming stack --------------------------------------------------- */

void merkle_stack_init(struct merkle_stack *s)
{
    s->count = 0;
    s->top = 0;
}

void merkle_stack_push(struct merkle_stack *s, struct merkle_hasher *h, const merkle_hash leaf)
{
    merkle_hash cur;
    memcpy(cur, leaf, MERKLE_HASH_LEN);
    /* Each set low bit of count is a complete subtree on the stack that the new leaf closes. */
    for (uint64_t c = s->count; c & 1; c >>= 1)
        merkle_node_hash(h, s->h[--s->top], cur, cur);
    memcpy(s->h[s->top++], cur, MERKLE_HASH_LEN);
    s->count++;
}

void merkle_stack_root(const struct merkle_stack *s, struct merkle_hasher *h, merkle_hash out)
{
    if (s->top == 0) {
        merkle_empty_root(out);
        return;
    }
    merkle_hash r;
    memcpy(r, s->h[s->top - 1], MERKLE_HASH_LEN);
    for (unsigned i = s->top - 1; i-- > 0;)
        merkle_node_hash(h, s->h[i], r, r);
    memcpy(out, r, MERKLE_HASH_LEN);
}
