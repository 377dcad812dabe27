/*
 * keys_store: the key-management view of the metadata store. It finds the
 * wrapped keys (artifact DEKs and TOTP secrets) that a KEK still protects,
 * replaces them after a re-wrap, counts references per KEK, and records the
 * progress of each KEK rotation so an interrupted one resumes.
 */
#ifndef COFFER_META_KEYS_STORE_H
#define COFFER_META_KEYS_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "keys/keys.h"
#include "util/err.h"

struct meta;

enum keys_row_table { KEYS_ROW_VERSION = 0, KEYS_ROW_TOTP = 1 };

#define KEYS_STORE_IDENTITY_CAP 64

/* One wrapped key and the identity (associated data) it is bound to. */
struct keys_wrapped_row {
    enum keys_row_table table;
    int64_t id;                             /* versions.id or totp.user_id */
    char identity[KEYS_STORE_IDENTITY_CAP]; /* blob id, or "coffer-totp/v1/USER_ID" */
    char kek_id[KEYS_KEK_ID_CAP];
    uint8_t wrapped[KEYS_WRAPPED_MAX];
    size_t wrapped_len;
};

/* Position of a scan over every wrapped key (start from {0}). */
struct keys_scan {
    enum keys_row_table table;
    int64_t after; /* last id returned in table */
};

/*
 * Fills rows (cap entries) with the next wrapped keys, after the position in
 * *scan, whose KEK is not keep_kek; erased versions hold no key and are
 * skipped. Sets *n (0 when the scan is complete) and advances *scan.
 * Errors: ERR_IO.
 */
enum err keys_store_next(struct meta *m, const char *keep_kek, struct keys_scan *scan,
                         struct keys_wrapped_row *rows, size_t cap, size_t *n);

/*
 * Replaces, in one transaction, each row's wrapped key by its re-wrapped form
 * (same table, id and identity) unless the stored key changed meanwhile
 * (compare-and-swap on the old KEK id and bytes). Sets *applied to the number
 * replaced. Errors: ERR_IO (nothing replaced).
 */
enum err keys_store_replace(struct meta *m, const struct keys_wrapped_row *old,
                            const struct keys_wrapped_row *rewrapped, size_t n, size_t *applied);

/* Number of wrapped keys (DEKs and TOTP secrets) under kek_id in *count. Errors: ERR_IO. */
enum err keys_store_kek_refs(struct meta *m, const char *kek_id, int64_t *count);

/* A new JSON object {"KEK_ID": {"deks": N, "totp": M}, ...}. Caller decrefs. Errors: ERR_IO. */
enum err keys_store_kek_counts(struct meta *m, json_t **out);

/* One KEK rotation, as recorded. */
struct keys_rotation_rec {
    int64_t id;
    char new_kek[KEYS_KEK_ID_CAP];
    int64_t started_at;
    char started_by[96];
    int batch;
    int pause_ms;
    int64_t rewrapped;
    int64_t finished_at; /* 0 while unfinished */
};

/* Records the start of a rotation to new_kek; sets *id. Errors: ERR_IO. */
enum err keys_store_rotation_begin(struct meta *m, const char *new_kek, const char *by, int batch,
                                   int pause_ms, int64_t *id);
/* The newest unfinished rotation in *rec. Errors: ERR_NOT_FOUND, ERR_IO. */
enum err keys_store_rotation_open(struct meta *m, struct keys_rotation_rec *rec);
/* Adds count to the rotation's re-wrapped total. Errors: ERR_IO. */
enum err keys_store_rotation_progress(struct meta *m, int64_t id, int64_t count);
/* Marks the rotation finished; destroyed is a JSON array of KEK ids (borrowed). */
enum err keys_store_rotation_finish(struct meta *m, int64_t id, json_t *destroyed);
/* The newest `limit` rotations as a new JSON array, newest first. Caller decrefs. */
enum err keys_store_rotation_list(struct meta *m, int limit, json_t **out);
/* Start time of the newest rotation (0 if none) in *at. Errors: ERR_IO. */
enum err keys_store_rotation_last_start(struct meta *m, int64_t *at);

#endif
