/*
 * fsck_store: the consistency checker's view of the metadata store: every
 * version with what is needed to find and authenticate its blob, and
 * SQLite's own integrity check.
 */
#ifndef COFFER_META_FSCK_STORE_H
#define COFFER_META_FSCK_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "keys/keys.h"
#include "meta/meta.h"
#include "util/err.h"

/* One stored version as recorded (borrowed for the duration of a callback). */
struct fsck_version_row {
    int64_t id;                         /* versions.id */
    char ref[PATH_FULL_MAX + 24];       /* "PATH@N" */
    char sha256[65];                    /* hex SHA-256 of the plaintext */
    uint64_t size;                      /* plaintext bytes */
    char blob_id[META_BLOB_ID_LEN + 1]; /* as stored (may be malformed) */
    uint8_t wrapped[KEYS_WRAPPED_MAX];
    size_t wrapped_len;
    char kek_id[KEYS_KEK_ID_CAP];
    int erased;  /* crypto-shredded: no content and no key expected */
    int deleted; /* tombstoned: content kept */
};

/* Calls fn for every version, in id order. fn returns 0 to continue, -1 to
 * stop (the call then returns ERR_OK). Rows that cannot be represented
 * (oversized fields) are reported through fn with blob_id "" and the fields
 * that fit. Errors: ERR_IO. */
enum err meta_fsck_versions(struct meta *m,
                            int (*fn)(const struct fsck_version_row *row, void *ctx), void *ctx);

/* Runs SQLite's PRAGMA integrity_check; writes the first problem (or "ok")
 * into out. Returns ERR_OK when the database is sound, ERR_INTEGRITY when
 * not, ERR_IO when the check cannot run. */
enum err meta_fsck_integrity(struct meta *m, char *out, size_t cap);

#endif
