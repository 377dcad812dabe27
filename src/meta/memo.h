/*
 * A bounded cache of values read from the metadata store, each valid only
 * while the store's generation (meta_int.h, meta_memo_gen) is still the one
 * it was read at. Every commit of the store changes the generation, so a
 * value is never served after a change it does not reflect.
 *
 * The cache is direct-mapped: a key has one slot, and a newer value for
 * another key in the same slot replaces the older one. Values are owned by
 * the cache and never changed: memo_get hands out a copy (made outside the
 * cache's lock), so no caller can change what another one is given.
 * Thread-safe.
 */
#ifndef COFFER_META_MEMO_H
#define COFFER_META_MEMO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct memo;

/* Frees a value handed to memo_put. */
typedef void (*memo_drop_fn)(void *val);
/* Copies val into out; 0 on success, -1 (out left cleared) on failure. */
typedef int (*memo_copy_fn)(void *out, const void *val);

/* A cache of slots entries (rounded up to a power of two, at least 16).
 * NULL when out of memory. */
struct memo *memo_new(size_t slots);
void memo_free(struct memo *mc);

/* Copies the value stored for key at generation gen into out: 1 when found,
 * 0 when absent, stale (then dropped) or the copy failed. */
int memo_get(struct memo *mc, uint64_t gen, const void *key, size_t klen, memo_copy_fn copy,
             void *out);
/* Stores val for key, read at generation gen (taken before the read began).
 * The cache owns val from here on: on any failure it is dropped at once. */
void memo_put(struct memo *mc, uint64_t gen, const void *key, size_t klen, void *val,
              memo_drop_fn drop);

/* A copy of a JSON value for a memo or for a caller: a deep one. Nothing is
 * shared between threads: jansson counts references atomically, but the
 * release that frees a value is not ordered after other threads' reads of
 * it (no acquire), so sharing even immutable strings would be a data race
 * under the C memory model. NULL when out of memory. */
json_t *memo_json_copy(json_t *v);
/* memo_copy_fn and memo_drop_fn for a value that is a JSON document: out
 * is a json_t ** that receives a memo_json_copy. */
int memo_copy_json(void *out, const void *val);
void memo_drop_json(void *val);

/* Lookups answered and not answered since the cache was made. */
void memo_counts(struct memo *mc, uint64_t *hits, uint64_t *misses);

#endif
