/*
 * reencrypt_store: the metadata side of re-encrypting one version's content
 * under a fresh data key (coffer keys rotate --reencrypt). The new blob is
 * written first; this swaps the version over to it in one transaction.
 */
#ifndef COFFER_META_REENCRYPT_STORE_H
#define COFFER_META_REENCRYPT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct meta;

/*
 * In one transaction, replaces the blob id, wrapped DEK and KEK id of version
 * version_id by new_blob, wrapped (wrapped_len bytes) and kek_id, provided it
 * still uses old_blob and is not erased (compare-and-swap: a concurrent
 * erasure or re-encryption wins). Then sets *old_free to 1 when no other
 * live (not erased) version references old_blob, so the caller may delete it.
 * Errors: ERR_GONE (erased meanwhile), ERR_CONFLICT (the version moved to
 * another blob meanwhile), ERR_NOT_FOUND, ERR_INVALID, ERR_IO (nothing changed).
 */
enum err reencrypt_store_swap(struct meta *m, int64_t version_id, const char *old_blob,
                              const char *new_blob, const uint8_t *wrapped, size_t wrapped_len,
                              const char *kek_id, int *old_free);

#endif
