/*
 * merkle: RFC 6962 / RFC 9162 Merkle tree hashing over SHA-256.
 *
 *   leaf hash  = SHA-256(0x00 || leaf bytes)
 *   node hash  = SHA-256(0x01 || left || right)
 *   empty tree = SHA-256("")
 *
 * Three tools live here: a hasher that reuses one OpenSSL context (hashing is
 * the hot path of verification), an in-memory tree that keeps every complete
 * subtree so that roots and proofs for any size cost O(log n) hashes, and a
 * streaming stack that computes the root of a growing tree in O(log n) memory.
 * Proof generation and verification follow RFC 9162 sections 2.1.3 and 2.1.4.
 */
#ifndef COFFER_AUDIT_MERKLE_H
#define COFFER_AUDIT_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_LEN 32
/* An inclusion proof has at most 64 hashes; a consistency proof at most 2*64 + 1. */
#define MERKLE_MAX_PATH 130

typedef uint8_t merkle_hash[MERKLE_HASH_LEN];

struct evp_md_ctx_st;
struct evp_md_st;

/* A reusable SHA-256 context. Not thread-safe: one per thread or per lock. */
struct merkle_hasher {
    struct evp_md_ctx_st *ctx;
    struct evp_md_st *md;
};

/* Prepares h. Returns 0, or -1 if OpenSSL could not allocate or fetch SHA-256. */
int merkle_hasher_init(struct merkle_hasher *h);

/* Frees what merkle_hasher_init allocated. Safe on a zeroed or freed hasher. */
void merkle_hasher_free(struct merkle_hasher *h);

/* out = SHA-256(0x00 || data). */
void merkle_leaf_hash(struct merkle_hasher *h, const void *data, size_t len, merkle_hash out);

/* out = SHA-256(0x01 || left || right). out may alias left or right. */
void merkle_node_hash(struct merkle_hasher *h, const merkle_hash left, const merkle_hash right,
                      merkle_hash out);

/* out = SHA-256("") : the root of the empty tree. */
void merkle_empty_root(merkle_hash out);

/*
 * An append-only tree of leaf hashes that stores every complete subtree:
 * level k holds the hashes of the aligned subtrees of 2^k leaves. It uses
 * about 64 bytes per leaf, unless it is thinned (merkle_tree_thin).
 */
struct merkle_level {
    merkle_hash *h; /* h[i] is the node at position base + i */
    size_t len, cap;
    uint64_t base;
};

/* For a thinned tree: the hashes of leaves [first, first + n), from where
 * the leaves are kept (the audit log reads its events file). 0 or -1. */
typedef int (*merkle_leaf_fn)(void *ctx, struct merkle_hasher *h, uint64_t first, uint64_t n,
                              merkle_hash *out);

struct merkle_tree {
    uint64_t size;
    unsigned low; /* levels below this keep only the last, incomplete block (0: all kept) */
    merkle_leaf_fn leaves;
    void *leaves_ctx;
    struct merkle_level level[64];
};

/* Initialises an empty tree (no allocation). */
void merkle_tree_init(struct merkle_tree *t);

/* Makes an empty tree keep its levels below `low` (1..16) only for the last,
 * incomplete block of 2^low leaves, so that it uses about 64 / 2^low bytes
 * per leaf instead of 64. Nodes no longer kept are recomputed from at most
 * 2^(low-1) leaf hashes obtained from fn when an old root or a proof needs
 * them; roots and proofs of the current size need none. */
void merkle_tree_thin(struct merkle_tree *t, unsigned low, merkle_leaf_fn fn, void *ctx);

/* Frees every level; the tree is empty afterwards (and no longer thinned). */
void merkle_tree_free(struct merkle_tree *t);

/* Appends one leaf hash. Returns 0, or -1 on allocation failure (tree unchanged). */
int merkle_tree_append(struct merkle_tree *t, struct merkle_hasher *h, const merkle_hash leaf);

/* The hash of leaf i (i < t->size). 0, or -1 (out of range, or the leaf
 * source failed). */
int merkle_tree_leaf(const struct merkle_tree *t, struct merkle_hasher *h, uint64_t i,
                     merkle_hash out);

/* Root of the first `size` leaves (size <= t->size). Returns 0, or -1 if size
 * is too large or the leaf source of a thinned tree failed. */
int merkle_tree_root(const struct merkle_tree *t, struct merkle_hasher *h, uint64_t size,
                     merkle_hash out);

/*
 * Inclusion proof (audit path) of leaf `index` in the tree of the first `size`
 * leaves, RFC 9162 2.1.3.1. path must hold MERKLE_MAX_PATH hashes; *n is set
 * to the count. Returns 0, or -1 if index >= size or size > t->size (or the
 * leaf source of a thinned tree failed).
 */
int merkle_tree_inclusion(const struct merkle_tree *t, struct merkle_hasher *h, uint64_t index,
                          uint64_t size, merkle_hash *path, size_t *n);

/*
 * Consistency proof between the trees of the first `old_size` and `size`
 * leaves, RFC 9162 2.1.4.1 (empty when old_size is 0 or equal to size).
 * Returns 0, or -1 if old_size > size or size > t->size (or the leaf source
 * of a thinned tree failed).
 */
int merkle_tree_consistency(const struct merkle_tree *t, struct merkle_hasher *h, uint64_t old_size,
                            uint64_t size, merkle_hash *path, size_t *n);

/* Verifies an inclusion proof, RFC 9162 2.1.3.2. Returns 1 if valid, 0 if not. */
int merkle_verify_inclusion(struct merkle_hasher *h, const merkle_hash leaf, uint64_t index,
                            uint64_t size, const merkle_hash *path, size_t n,
                            const merkle_hash root) __attribute__((warn_unused_result));

/*
 * Verifies a consistency proof, RFC 9162 2.1.4.2. The trivial cases are
 * accepted only with an empty proof: old_size 0 (old_root must be the empty
 * root) and old_size == size (roots equal). Returns 1 if valid, 0 if not.
 */
int merkle_verify_consistency(struct merkle_hasher *h, uint64_t old_size, uint64_t size,
                              const merkle_hash old_root, const merkle_hash root,
                              const merkle_hash *path, size_t n)
    __attribute__((warn_unused_result));

/* A streaming root computation: push leaf hashes in order, ask for the root at any time. */
struct merkle_stack {
    uint64_t count;
    unsigned top;
    merkle_hash h[64];
};

/* Empties s. */
void merkle_stack_init(struct merkle_stack *s);

/* Adds the next leaf hash. */
void merkle_stack_push(struct merkle_stack *s, struct merkle_hasher *h, const merkle_hash leaf);

/* Root of the leaves pushed so far. */
void merkle_stack_root(const struct merkle_stack *s, struct merkle_hasher *h, merkle_hash out);

#endif
