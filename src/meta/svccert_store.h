/*
 * svccert_store: bindings of TLS client certificates to service accounts.
 * A binding names the certificate by the SHA-256 of its DER encoding and
 * acts as service:NAME with the roles given, on behalf of its owner (like
 * an API token). Thread-safe (the store's lock).
 */
#ifndef COFFER_META_SVCCERT_STORE_H
#define COFFER_META_SVCCERT_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "meta/meta.h"

#define META_SVCCERT_NAME_MAX 64
#define META_SVCCERT_SCOPE_MAX 512

struct meta_svccert {
    int64_t id;
    char name[META_SVCCERT_NAME_MAX + 1];
    int64_t owner_id;
    uint8_t fingerprint[32];
    json_t *roles; /* array of role names; owned */
    char scope[META_SVCCERT_SCOPE_MAX + 1];
    int64_t created_at;
    int64_t last_used_at; /* 0: never */
    int64_t revoked_at;   /* 0: active */
};

/* Stores a binding. ERR_CONFLICT if an unrevoked binding has the same
 * fingerprint. *id_out receives its id. */
enum err meta_svccert_create(struct meta *m, const char *name, int64_t owner_id,
                             const uint8_t fingerprint[32], json_t *roles, const char *scope,
                             int64_t *id_out);

/* The unrevoked binding of this fingerprint, or by id (revoked included),
 * or the unrevoked binding called name. ERR_NOT_FOUND if absent. Release
 * with meta_svccert_clear. */
enum err meta_svccert_by_fingerprint(struct meta *m, const uint8_t fingerprint[32],
                                     struct meta_svccert *c);
enum err meta_svccert_by_id(struct meta *m, int64_t id, struct meta_svccert *c);
enum err meta_svccert_by_name(struct meta *m, const char *name, struct meta_svccert *c);

void meta_svccert_clear(struct meta_svccert *c);

/* Records a use of the binding at now from ip. */
enum err meta_svccert_touch(struct meta *m, int64_t id, int64_t now, const char *ip);

/* ERR_NOT_FOUND if absent or already revoked. */
enum err meta_svccert_revoke(struct meta *m, int64_t id, const char *by);

/* Bindings of owner_id (0: of everyone), newest first, as a JSON array of
 * {id, name, owner, fingerprint (hex), roles, scope, created_at,
 * last_used_at, last_used_ip, revoked_at}. Caller decrefs *out. */
enum err meta_svccert_list(struct meta *m, int64_t owner_id, json_t **out);

#endif
