/*
 * share_store: share links in the metadata store. A link names exactly one
 * version; its token is stored only as a SHA-256 hash. Uses are counted by
 * one conditional UPDATE, so the count is exact under concurrency.
 */
#ifndef COFFER_META_SHARE_STORE_H
#define COFFER_META_SHARE_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "meta/meta.h"

struct meta_share {
    int64_t id;
    char path[PATH_FULL_MAX + 1];
    uint64_t version;
    int64_t version_id;
    char creator[META_NAME_MAX + 1]; /* user name */
    int64_t creator_id;
    int64_t created_at;
    int64_t expires_at;
    int64_t max_uses; /* 0: unlimited */
    int64_t uses;
    int64_t revoked_at; /* 0: not revoked */
    json_t *networks;   /* owned: array of CIDR strings (empty: any address) */
};

/* Stores a new link (s->id, uses and revoked_at are ignored) under the
 * token hash; sets *id. Errors: ERR_CONFLICT (hash exists), ERR_IO. */
enum err meta_share_create(struct meta *m, const uint8_t token_hash[32], const struct meta_share *s,
                           int64_t *id);

/* Fills s from the link with this token hash (revoked and expired links
 * included: the caller decides). Caller calls meta_share_clear.
 * Errors: ERR_NOT_FOUND, ERR_IO. */
enum err meta_share_by_hash(struct meta *m, const uint8_t token_hash[32], struct meta_share *s);

/* As meta_share_by_hash, by id. */
enum err meta_share_by_id(struct meta *m, int64_t id, struct meta_share *s);

/* Takes one use of link id atomically: succeeds only while the link is
 * neither revoked nor expired at now and has uses left; records now and ip
 * as its last use. Errors: ERR_FORBIDDEN (nothing left to take), ERR_IO. */
enum err meta_share_take_use(struct meta *m, int64_t id, int64_t now, const char *ip);

/* Marks the link revoked by by. Errors: ERR_NOT_FOUND (absent or already revoked), ERR_IO. */
enum err meta_share_revoke(struct meta *m, int64_t id, const char *by);

/* Links created by creator_id (0: every link), newest first, as a JSON array
 * of objects (never the token or its hash). Caller decrefs *out. */
enum err meta_share_list(struct meta *m, int64_t creator_id, json_t **out);

/* Frees what s owns. NULL is a no-op. */
void meta_share_clear(struct meta_share *s);

#endif
