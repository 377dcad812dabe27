/*
 * Merkle tree hashing against the RFC 6962 reference vectors (the
 * Certificate Transparency test leaves) and against a naive recursive
 * implementation written straight from RFC 9162 2.1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit/merkle.h"
#include "util/secure.h"

#include <stdlib.h>
#include <string.h>

static const char *ct_leaves_hex[] = {"",
                                      "00",
                                      "10",
                                      "2021",
                                      "3031",
                                      "40414243",
                                      "5051525354555657",
                                      "606162636465666768696a6b6c6d6e6f"};

static const char *ct_roots[] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

struct vector {
    uint64_t a, b; /* inclusion: index, size; consistency: old, new */
    int n;
    const char *path[4];
};

static const struct vector ct_inclusion[] = {
    {0,
     8,
     3,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5,
     8,
     3,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {0, 1, 0, {NULL}},
};

static const struct vector ct_consistency[] = {
    {2,
     8,
     2,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     3,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

static struct merkle_hasher hs;
static struct merkle_tree ct_tree;

static void unhex(const char *s, merkle_hash out)
{
    assert_int_equal(hex_decode(s, strlen(s), out, MERKLE_HASH_LEN), 0);
}

static void assert_hash(const merkle_hash got, const char *want)
{
    char hex[65];
    hex_encode(got, MERKLE_HASH_LEN, hex);
    assert_string_equal(hex, want);
}

static int setup(void **state)
{
    (void)state;
    if (merkle_hasher_init(&hs) != 0)
        return -1;
    merkle_tree_init(&ct_tree);
    for (size_t i = 0; i < 8; i++) {
        uint8_t buf[16];
        size_t n = strlen(ct_leaves_hex[i]) / 2;
        if (hex_decode(ct_leaves_hex[i], 2 * n, buf, n) != 0)
            return -1;
        merkle_hash leaf;
        merkle_leaf_hash(&hs, buf, n, leaf);
        if (merkle_tree_append(&ct_tree, &hs, leaf) != 0)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    merkle_tree_free(&ct_tree);
    merkle_hasher_free(&hs);
    return 0;
}

static void test_ct_roots(void **state)
{
    (void)state;
    merkle_hash root;
    for (uint64_t n = 0; n <= 8; n++) {
        assert_int_equal(merkle_tree_root(&ct_tree, &hs, n, root), 0);
        assert_hash(root, ct_roots[n]);
    }
    assert_int_equal(merkle_tree_root(&ct_tree, &hs, 9, root), -1);

    /* The streaming stack must agree at every size. */
    struct merkle_stack st;
    merkle_stack_init(&st);
    merkle_stack_root(&st, &hs, root);
    assert_hash(root, ct_roots[0]);
    for (uint64_t n = 1; n <= 8; n++) {
        merkle_stack_push(&st, &hs, ct_tree.level[0].h[n - 1]);
        merkle_stack_root(&st, &hs, root);
        assert_hash(root, ct_roots[n]);
    }
}

static void test_ct_inclusion(void **state)
{
    (void)state;
    merkle_hash path[MERKLE_MAX_PATH], root, want[4];
    for (size_t v = 0; v < sizeof(ct_inclusion) / sizeof(ct_inclusion[0]); v++) {
        const struct vector *t = &ct_inclusion[v];
        size_t n = 99;
        assert_int_equal(merkle_tree_inclusion(&ct_tree, &hs, t->a, t->b, path, &n), 0);
        assert_int_equal(n, t->n);
        for (int i = 0; i < t->n; i++) {
            assert_hash(path[i], t->path[i]);
            unhex(t->path[i], want[i]);
        }
        unhex(ct_roots[t->b], root);
        assert_true(merkle_verify_inclusion(&hs, ct_tree.level[0].h[t->a], t->a, t->b, want,
                                            (size_t)t->n, root));
    }
    size_t n;
    assert_int_equal(merkle_tree_inclusion(&ct_tree, &hs, 8, 8, path, &n), -1);
    assert_int_equal(merkle_tree_inclusion(&ct_tree, &hs, 0, 9, path, &n), -1);
}

static void test_ct_consistency(void **state)
{
    (void)state;
    merkle_hash path[MERKLE_MAX_PATH], r1, r2, want[4];
    for (size_t v = 0; v < sizeof(ct_consistency) / sizeof(ct_consistency[0]); v++) {
        const struct vector *t = &ct_consistency[v];
        size_t n = 99;
        assert_int_equal(merkle_tree_consistency(&ct_tree, &hs, t->a, t->b, path, &n), 0);
        assert_int_equal(n, t->n);
        for (int i = 0; i < t->n; i++) {
            assert_hash(path[i], t->path[i]);
            unhex(t->path[i], want[i]);
        }
        unhex(ct_roots[t->a], r1);
        unhex(ct_roots[t->b], r2);
        assert_true(merkle_verify_consistency(&hs, t->a, t->b, r1, r2, want, (size_t)t->n));
        /* Swapped roots must not verify. */
        assert_false(merkle_verify_consistency(&hs, t->a, t->b, r2, r1, want, (size_t)t->n));
    }
    /* Trivial cases take an empty proof and nothing else. */
    unhex(ct_roots[0], r1);
    unhex(ct_roots[8], r2);
    assert_true(merkle_verify_consistency(&hs, 0, 8, r1, r2, NULL, 0));
    assert_false(merkle_verify_consistency(&hs, 0, 8, r2, r2, NULL, 0));
    assert_false(merkle_verify_consistency(&hs, 0, 8, r1, r2, &r1, 1));
    assert_true(merkle_verify_consistency(&hs, 8, 8, r2, r2, NULL, 0));
    assert_false(merkle_verify_consistency(&hs, 8, 8, r1, r2, NULL, 0));
    assert_false(merkle_verify_consistency(&hs, 8, 8, r2, r2, &r1, 1));
    assert_false(merkle_verify_consistency(&hs, 4, 8, r1, r2, NULL, 0));
    assert_false(merkle_verify_consistency(&hs, 9, 8, r1, r2, NULL, 0));
    size_t n;
    assert_int_equal(merkle_tree_consistency(&ct_tree, &hs, 5, 4, path, &n), -1);
}

/* ---- naive RFC 9162 implementation ---------------------------------------- */

static uint64_t k_of(uint64_t n)
{
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    return k;
}

static void naive_mth(const merkle_hash *d, uint64_t n, merkle_hash out)
{
    if (n == 0) {
        merkle_empty_root(out);
        return;
    }
    if (n == 1) {
        memcpy(out, d[0], MERKLE_HASH_LEN);
        return;
    }
    uint64_t k = k_of(n);
    merkle_hash l, r;
    naive_mth(d, k, l);
    naive_mth(d + k, n - k, r);
    merkle_node_hash(&hs, l, r, out);
}

static void naive_path(uint64_t m, const merkle_hash *d, uint64_t n, merkle_hash *out, size_t *c)
{
    if (n == 1)
        return;
    uint64_t k = k_of(n);
    if (m < k) {
        naive_path(m, d, k, out, c);
        naive_mth(d + k, n - k, out[(*c)++]);
    } else {
        naive_path(m - k, d + k, n - k, out, c);
        naive_mth(d, k, out[(*c)++]);
    }
}

static void naive_subproof(uint64_t m, const merkle_hash *d, uint64_t n, int b, merkle_hash *out,
                           size_t *c)
{
    if (m == n) {
        if (!b)
            naive_mth(d, n, out[(*c)++]);
        return;
    }
    uint64_t k = k_of(n);
    if (m <= k) {
        naive_subproof(m, d, k, b, out, c);
        naive_mth(d + k, n - k, out[(*c)++]);
    } else {
        naive_subproof(m - k, d + k, n - k, 0, out, c);
        naive_mth(d, k, out[(*c)++]);
    }
}

#define NAIVE_MAX 70

static void test_against_naive(void **state)
{
    (void)state;
    merkle_hash leaves[NAIVE_MAX], roots[NAIVE_MAX + 1];
    struct merkle_tree t;
    merkle_tree_init(&t);
    for (int i = 0; i < NAIVE_MAX; i++) {
        uint8_t data[2] = {(uint8_t)i, (uint8_t)(i * 7)};
        merkle_leaf_hash(&hs, data, sizeof(data), leaves[i]);
        assert_int_equal(merkle_tree_append(&t, &hs, leaves[i]), 0);
    }
    for (uint64_t n = 0; n <= NAIVE_MAX; n++) {
        merkle_hash got;
        naive_mth(leaves, n, roots[n]);
        assert_int_equal(merkle_tree_root(&t, &hs, n, got), 0);
        assert_memory_equal(got, roots[n], MERKLE_HASH_LEN);
    }
    merkle_hash p1[MERKLE_MAX_PATH], p2[MERKLE_MAX_PATH];
    for (uint64_t n = 1; n <= NAIVE_MAX; n++) {
        for (uint64_t m = 0; m < n; m++) {
            size_t c1 = 0, c2 = 0;
            naive_path(m, leaves, n, p1, &c1);
            assert_int_equal(merkle_tree_inclusion(&t, &hs, m, n, p2, &c2), 0);
            assert_int_equal(c1, c2);
            assert_memory_equal(p1, p2, c1 * MERKLE_HASH_LEN);
            assert_true(merkle_verify_inclusion(&hs, leaves[m], m, n, p2, c2, roots[n]));
            /* Every mutation must be refused. */
            assert_false(merkle_verify_inclusion(&hs, leaves[m], m, n, p2, c2, roots[n - 1]));
            assert_false(merkle_verify_inclusion(&hs, leaves[m], n, n, p2, c2, roots[n]));
            if (c2 > 0) {
                p2[c2 - 1][5] ^= 1;
                assert_false(merkle_verify_inclusion(&hs, leaves[m], m, n, p2, c2, roots[n]));
                p2[c2 - 1][5] ^= 1;
                assert_false(merkle_verify_inclusion(&hs, leaves[m], m, n, p2, c2 - 1, roots[n]));
                assert_false(
                    merkle_verify_inclusion(&hs, leaves[(m + 1) % n], m, n, p2, c2, roots[n]));
                if (m + 1 < n)
                    assert_false(
                        merkle_verify_inclusion(&hs, leaves[m], m + 1, n, p2, c2, roots[n]));
            }
            memcpy(p2[c2], roots[0], MERKLE_HASH_LEN);
            assert_false(merkle_verify_inclusion(&hs, leaves[m], m, n, p2, c2 + 1, roots[n]));
        }
        for (uint64_t m = 1; m < n; m++) {
            size_t c1 = 0, c2 = 0;
            naive_subproof(m, leaves, n, 1, p1, &c1);
            assert_int_equal(merkle_tree_consistency(&t, &hs, m, n, p2, &c2), 0);
            assert_int_equal(c1, c2);
            assert_memory_equal(p1, p2, c1 * MERKLE_HASH_LEN);
            assert_true(merkle_verify_consistency(&hs, m, n, roots[m], roots[n], p2, c2));
            assert_false(merkle_verify_consistency(&hs, m, n, roots[m - 1], roots[n], p2, c2));
            assert_false(merkle_verify_consistency(&hs, m, n, roots[m], roots[n - 1], p2, c2));
            p2[0][3] ^= 0x80;
            assert_false(merkle_verify_consistency(&hs, m, n, roots[m], roots[n], p2, c2));
            p2[0][3] ^= 0x80;
            assert_false(merkle_verify_consistency(&hs, m, n, roots[m], roots[n], p2, c2 - 1));
            memcpy(p2[c2], roots[0], MERKLE_HASH_LEN);
            assert_false(merkle_verify_consistency(&hs, m, n, roots[m], roots[n], p2, c2 + 1));
        }
    }
    merkle_tree_free(&t);
}

static void test_large_tree(void **state)
{
    (void)state;
    /* A tree of a size with many set bits: the stack, the stored tree and
     * proofs over it must agree. */
    const uint64_t n = 5000 + 123;
    struct merkle_tree t;
    struct merkle_stack st;
    merkle_tree_init(&t);
    merkle_stack_init(&st);
    for (uint64_t i = 0; i < n; i++) {
        merkle_hash leaf;
        merkle_leaf_hash(&hs, &i, sizeof(i), leaf);
        assert_int_equal(merkle_tree_append(&t, &hs, leaf), 0);
        merkle_stack_push(&st, &hs, leaf);
    }
    merkle_hash a, b, path[MERKLE_MAX_PATH];
    merkle_stack_root(&st, &hs, a);
    assert_int_equal(merkle_tree_root(&t, &hs, n, b), 0);
    assert_memory_equal(a, b, MERKLE_HASH_LEN);
    for (uint64_t i = 0; i < n; i += 97) {
        size_t c;
        assert_int_equal(merkle_tree_inclusion(&t, &hs, i, n, path, &c), 0);
        assert_true(merkle_verify_inclusion(&hs, t.level[0].h[i], i, n, path, c, b));
        merkle_hash old;
        assert_int_equal(merkle_tree_root(&t, &hs, i + 1, old), 0);
        assert_int_equal(merkle_tree_consistency(&t, &hs, i + 1, n, path, &c), 0);
        assert_true(merkle_verify_consistency(&hs, i + 1, n, old, b, path, c));
    }
    merkle_tree_free(&t);
}

/* ---- thinned trees -------------------------------------------------------- */

struct leaf_store {
    merkle_hash *leaf;
    uint64_t calls, hashes;
    int fail;
};

static int store_leaves(void *ctx, struct merkle_hasher *h, uint64_t first, uint64_t n,
                        merkle_hash *out)
{
    (void)h;
    struct leaf_store *ls = ctx;
    ls->calls++;
    ls->hashes += n;
    if (ls->fail)
        return -1;
    memcpy(out, ls->leaf + first, n * MERKLE_HASH_LEN);
    return 0;
}

/* A tree thinned below level 3 (blocks of 8 leaves) gives the same roots,
 * leaves, inclusion and consistency proofs as a full one for every size and
 * position up to 70 leaves, keeps no more than one block of low nodes, and
 * reads leaves only for what it dropped. */
static void test_thinned_matches_full(void **state)
{
    (void)state;
    enum { N = 70 };
    struct leaf_store ls = {calloc(N, MERKLE_HASH_LEN), 0, 0, 0};
    assert_non_null(ls.leaf);
    struct merkle_tree full, thin;
    merkle_tree_init(&full);
    merkle_tree_init(&thin);
    merkle_tree_thin(&thin, 3, store_leaves, &ls);
    for (uint64_t i = 0; i < N; i++) {
        uint8_t data[8];
        memcpy(data, &i, sizeof(data));
        merkle_leaf_hash(&hs, data, sizeof(data), ls.leaf[i]);
        assert_int_equal(merkle_tree_append(&full, &hs, ls.leaf[i]), 0);
        assert_int_equal(merkle_tree_append(&thin, &hs, ls.leaf[i]), 0);
        for (unsigned k = 0; k < 3; k++)
            assert_true(thin.level[k].len <= (8u >> k));
        /* The root of the current size needs no leaf reads. */
        uint64_t calls = ls.calls;
        merkle_hash a, b;
        assert_int_equal(merkle_tree_root(&full, &hs, i + 1, a), 0);
        assert_int_equal(merkle_tree_root(&thin, &hs, i + 1, b), 0);
        assert_memory_equal(a, b, MERKLE_HASH_LEN);
        assert_int_equal(ls.calls, calls);
    }
    merkle_hash pf[MERKLE_MAX_PATH], pt[MERKLE_MAX_PATH], a, b;
    size_t nf, nt;
    for (uint64_t size = 0; size <= N; size++) {
        assert_int_equal(merkle_tree_root(&full, &hs, size, a), 0);
        assert_int_equal(merkle_tree_root(&thin, &hs, size, b), 0);
        assert_memory_equal(a, b, MERKLE_HASH_LEN);
        for (uint64_t i = 0; i < size; i++) {
            assert_int_equal(merkle_tree_inclusion(&full, &hs, i, size, pf, &nf), 0);
            assert_int_equal(merkle_tree_inclusion(&thin, &hs, i, size, pt, &nt), 0);
            assert_int_equal(nf, nt);
            assert_memory_equal(pf, pt, nf * MERKLE_HASH_LEN);
            assert_int_equal(merkle_tree_leaf(&thin, &hs, i, b), 0);
            assert_memory_equal(ls.leaf[i], b, MERKLE_HASH_LEN);
            assert_true(merkle_verify_inclusion(&hs, b, i, size, pt, nt, a));
        }
        for (uint64_t old = 0; old <= size; old++) {
            assert_int_equal(merkle_tree_consistency(&full, &hs, old, size, pf, &nf), 0);
            assert_int_equal(merkle_tree_consistency(&thin, &hs, old, size, pt, &nt), 0);
            assert_int_equal(nf, nt);
            assert_memory_equal(pf, pt, nf * MERKLE_HASH_LEN);
        }
    }
    assert_true(ls.calls > 0);
    assert_true(ls.hashes / ls.calls <= 4); /* at most 2^(low-1) leaves a node */
    /* A failing source makes the proof fail instead of giving a wrong one. */
    ls.fail = 1;
    assert_int_equal(merkle_tree_inclusion(&thin, &hs, 3, 64, pt, &nt), -1);
    assert_int_equal(merkle_tree_root(&thin, &hs, 13, b), -1);
    assert_int_equal(merkle_tree_leaf(&thin, &hs, 1, b), -1);
    assert_int_equal(merkle_tree_leaf(&thin, &hs, N - 1, b), 0); /* the last block is kept */
    assert_int_equal(merkle_tree_leaf(&thin, &hs, N, b), -1);
    merkle_tree_free(&full);
    merkle_tree_free(&thin);
    free(ls.leaf);
}

/* Memory of a thinned tree: 100,000 leaves with blocks of 1024 keep about
 * 100 KB of hashes (one block of low nodes plus ~200 block roots) where the
 * full tree keeps 6.4 MB; growing to 200,000 leaves adds almost nothing. */
static void test_thinned_memory(void **state)
{
    (void)state;
    struct leaf_store ls = {NULL, 0, 0, 1};
    struct merkle_tree thin;
    merkle_tree_init(&thin);
    merkle_tree_thin(&thin, 10, store_leaves, &ls);
    merkle_hash leaf;
    memset(leaf, 7, sizeof(leaf));
    for (int i = 0; i < 100000; i++)
        assert_int_equal(merkle_tree_append(&thin, &hs, leaf), 0);
    size_t kept = 0;
    for (int k = 0; k < 64; k++)
        kept += thin.level[k].cap;
    assert_true(kept * MERKLE_HASH_LEN < 128 * 1024);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(merkle_tree_append(&thin, &hs, leaf), 0);
    size_t kept2 = 0;
    for (int k = 0; k < 64; k++)
        kept2 += thin.level[k].cap;
    assert_true((kept2 - kept) * MERKLE_HASH_LEN <= 16 * 1024);
    merkle_hash r;
    assert_int_equal(merkle_tree_root(&thin, &hs, 200000, r), 0);
    assert_int_equal(ls.calls, 0);
    merkle_tree_free(&thin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ct_roots),       cmocka_unit_test(test_ct_inclusion),
        cmocka_unit_test(test_ct_consistency), cmocka_unit_test(test_against_naive),
        cmocka_unit_test(test_large_tree),     cmocka_unit_test(test_thinned_matches_full),
        cmocka_unit_test(test_thinned_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
