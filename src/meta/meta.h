/*
 * meta: the metadata store (users, sessions, artifacts, versions) over
 * SQLite in WAL mode. Every function is thread-safe: calls are serialised
 * on one connection, and multi-statement changes run in one transaction,
 * so a version is either fully recorded or absent.
 *
 * Schema changes are numbered migrations applied at open (PRAGMA
 * user_version records how far a database has been migrated).
 */
#ifndef COFFER_META_META_H
#define COFFER_META_META_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "registry/path.h"
#include "util/err.h"

#define META_NAME_MAX 64
#define META_WRAPPED_MAX 256
#define META_KEK_ID_MAX 64
#define META_BLOB_ID_LEN 32

struct meta;

struct meta_user {
    int64_t id;
    char name[META_NAME_MAX + 1];
    char *pw_hash; /* heap, may be NULL; free with meta_user_clear */
    int clearance; /* 0..3 */
    json_t *attrs; /* object; owned */
    int disabled;
    int is_admin;
    int64_t created_at;
};

struct meta_session {
    int64_t id;
    int64_t user_id;
    int64_t created_at;
    int64_t expires_at;
    int mfa;
    int64_t mfa_at;
};

struct meta_version {
    int64_t artifact_id;
    int64_t version_id;
    char path[PATH_FULL_MAX + 1];
    char kind[16];
    int artifact_sensitivity;
    int version_sensitivity; /* -1 when the version carries no label of its own */
    uint64_t version;
    char sha256[65];
    uint64_t size;
    char blob_id[META_BLOB_ID_LEN + 1];
    uint8_t wrapped_dek[META_WRAPPED_MAX];
    size_t wrapped_len;
    char kek_id[META_KEK_ID_MAX + 1];
    int deleted;
    json_t *tags; /* artifact tags, object; owned */
    uint64_t gen; /* the store's generation when this was read (0: unknown) */
};

struct meta_new_version {
    const struct artifact_path *path;
    const char *kind;    /* NULL: "other" for a new artifact, unchanged otherwise */
    int sensitivity;     /* -1: "internal" for a new artifact; else the version's label */
    json_t *tags;        /* object of tags to set on the artifact, or NULL */
    json_t *parents;     /* array of "PATH@N" strings, or NULL */
    const char *message; /* may be NULL */
    const char *creator; /* principal name */
    const char *sha256;  /* hex */
    uint64_t size;
    const char *blob_id;
    const uint8_t *wrapped_dek;
    size_t wrapped_len;
    const char *kek_id;
};

/* Opens (creating if create != 0) the database at path and applies migrations. */
enum err meta_open(const char *path, int create, struct meta **out);
void meta_close(struct meta *m);
/* Opens n (at most 64) read-only connections for the lookups every request
 * makes (sessions, users, groups, versions), so that concurrent requests do
 * not wait for one another; the server opens one per worker thread. Without
 * them every query uses the one main connection. */
enum err meta_open_readers(struct meta *m, unsigned n);
/* Until meta_read_unpin, this thread's reads share one reader and one read
 * transaction (one snapshot, one lock acquisition) instead of one each; the
 * transaction starts at the first read that the store's cache (memo.h) does
 * not answer, so a request answered from the cache opens none.
 * For code that reads what was there before it started: a write made
 * meanwhile through the main connection (an API token's last use) is
 * allowed but not seen by the pinned reads. A nested pin joins the outer
 * one. No-op without readers. */
void meta_read_pin(struct meta *m);
void meta_read_unpin(struct meta *m);
/* Lookups the cache of per-request reads answered and did not (memo.h);
 * both 0 without a read pool. */
void meta_memo_counts(struct meta *m, uint64_t *hits, uint64_t *misses);

/* Users. */
enum err meta_user_create(struct meta *m, const char *name, const char *pw_hash, int clearance,
                          json_t *attrs, int is_admin);
/* Fills u (caller calls meta_user_clear). ERR_NOT_FOUND if absent. */
enum err meta_user_get(struct meta *m, const char *name, struct meta_user *u);
enum err meta_user_get_by_id(struct meta *m, int64_t id, struct meta_user *u);
void meta_user_clear(struct meta_user *u);
/* Returns a new JSON array of user objects (no password hashes). Caller decrefs. */
enum err meta_user_list(struct meta *m, json_t **out);
enum err meta_user_set_disabled(struct meta *m, const char *name, int disabled);
enum err meta_user_set_password(struct meta *m, const char *name, const char *pw_hash);

/* Sessions: token_hash is the SHA-256 of the bearer token; the token itself is never stored. */
enum err meta_session_create(struct meta *m, const uint8_t token_hash[32], int64_t user_id,
                             int64_t expires_at, int mfa);
/* ERR_UNAUTHENTICATED when absent, expired or revoked. */
enum err meta_session_lookup(struct meta *m, const uint8_t token_hash[32], int64_t now,
                             struct meta_session *s);
/* The session for token_hash, its user (pw_hash NULL; check disabled) and
 * the user's groups, as one cached read. ERR_UNAUTHENTICATED when the
 * session is absent, expired or revoked; ERR_NOT_FOUND without its user;
 * ERR_IO when the store fails. Caller clears u and frees *groups. */
enum err meta_session_principal(struct meta *m, const uint8_t token_hash[32], int64_t now,
                                struct meta_session *s, struct meta_user *u, json_t **groups);
enum err meta_session_revoke(struct meta *m, const uint8_t token_hash[32]);
/* Revokes every session of a user (on disable or password change). */
enum err meta_session_revoke_user(struct meta *m, int64_t user_id);

/* Versions. Commits a fully written blob as the next version of its
 * artifact, creating the artifact if needed. ERR_CONFLICT if the kind differs. */
enum err meta_version_commit(struct meta *m, const struct meta_new_version *nv,
                             uint64_t *version_out);
/* Resolves a reference to a version (tombstoned versions included; check
 * v->deleted). ERR_NOT_FOUND if absent. Caller calls meta_version_clear. */
enum err meta_version_get(struct meta *m, const struct artifact_ref *ref, struct meta_version *v);
void meta_version_clear(struct meta_version *v);
/* As meta_version_get; with include_deleted, PATH@latest resolves to the
 * newest version even when it is tombstoned (for version listings). */
enum err meta_version_get_ex(struct meta *m, const struct artifact_ref *ref, int include_deleted,
                             struct meta_version *v);
/* A JSON object describing the version (and its artifact, parents and
 * children); a crypto-shredded version also has erased, erased_at,
 * erased_by and erase_reason. */
enum err meta_version_describe(struct meta *m, const struct meta_version *v, json_t **out);
/* meta_version_describe(v) as compact JSON text (util/json_text.h), from
 * the store's cache when it holds the answer for this version at the
 * current generation. Caller frees *text. */
enum err meta_version_answer(struct meta *m, const struct meta_version *v, char **text,
                             size_t *len);
/* All versions of an artifact as a JSON array, oldest first. */
enum err meta_version_list(struct meta *m, const struct artifact_path *p, json_t **out);
/* Artifacts whose path starts with prefix, as a JSON array of objects with
 * path, kind, sensitivity (level), latest version. */
enum err meta_artifact_list(struct meta *m, const char *prefix, json_t **out);
/* Applies a label change to an artifact (version == 0) or to one version. */
enum err meta_label(struct meta *m, const struct artifact_path *p, uint64_t version,
                    int sensitivity, json_t *set_tags, json_t *untag);
enum err meta_version_tombstone(struct meta *m, int64_t version_id, const char *by);
/* Calls fn for every blob id referenced by a version. */
enum err meta_blob_ids(struct meta *m, void (*fn)(const char *blob_id, void *ctx), void *ctx);

/* Sensitivity names <-> levels. */
int meta_sensitivity_level(const char *name); /* -1 if unknown */
const char *meta_sensitivity_name(int level);
int meta_kind_valid(const char *kind);

#endif
