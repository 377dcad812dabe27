/*
 * authn_store: what strong authentication keeps in the metadata store:
 * TOTP enrolments (secret wrapped by the key provider, never plaintext),
 * hashed recovery codes, API tokens (hash only) and trusted OIDC issuers.
 * Every function is thread-safe (the store's lock) and multi-row changes run
 * in one transaction.
 */
#ifndef COFFER_META_AUTHN_STORE_H
#define COFFER_META_AUTHN_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "keys/keys.h"
#include "meta/meta.h"

#define META_TOTP_SALT_LEN 16
#define META_TOKEN_NAME_MAX 64
#define META_TOKEN_SCOPE_MAX 512

struct meta_totp {
    int64_t user_id;
    uint8_t wrapped[KEYS_WRAPPED_MAX]; /* the TOTP secret wrapped by a KEK */
    size_t wrapped_len;
    char kek_id[KEYS_KEK_ID_CAP];
    uint8_t recovery_salt[META_TOTP_SALT_LEN];
    int confirmed;
    uint64_t last_used_step;
};

/* Fills t for user_id; ERR_NOT_FOUND when the user has no enrolment. */
enum err meta_totp_get(struct meta *m, int64_t user_id, struct meta_totp *t);

/* Stores a new, unconfirmed enrolment, replacing an earlier unconfirmed one.
 * ERR_CONFLICT when a confirmed enrolment exists. */
enum err meta_totp_put_pending(struct meta *m, const struct meta_totp *t);

/* In one transaction: marks the enrolment confirmed with last_used_step =
 * step and replaces the user's recovery codes with the n hashes given.
 * ERR_NOT_FOUND without a pending enrolment, ERR_CONFLICT if step is not
 * after the last used one (a replay). */
enum err meta_totp_confirm(struct meta *m, int64_t user_id, uint64_t step,
                           const uint8_t (*hashes)[32], size_t n);

/* Records that the code of step was used: succeeds only if step is later
 * than the stored last_used_step (atomically), else ERR_CONFLICT. */
enum err meta_totp_use_step(struct meta *m, int64_t user_id, uint64_t step);

/* Deletes the enrolment and every recovery code of the user. */
enum err meta_totp_delete(struct meta *m, int64_t user_id);

/* Marks the unused recovery code with this hash as used. ERR_NOT_FOUND if
 * there is none (wrong or already used). */
enum err meta_recovery_use(struct meta *m, int64_t user_id, const uint8_t hash[32]);

/* Number of unused recovery codes of the user. */
enum err meta_recovery_remaining(struct meta *m, int64_t user_id, int *n);

/* Marks the session with this token hash as authenticated with MFA now. */
enum err meta_session_step_up(struct meta *m, const uint8_t token_hash[32], int64_t now);

struct meta_apitoken {
    int64_t id;
    char name[META_TOKEN_NAME_MAX + 1];
    int64_t owner_id;
    json_t *roles; /* array of role names; owned */
    char scope[META_TOKEN_SCOPE_MAX + 1];
    int64_t created_at;
    int64_t expires_at;
    int64_t last_used_at; /* 0: never */
    int64_t revoked_at;   /* 0: active */
};

/* Stores a token (hash only). *id_out receives its id. */
enum err meta_apitoken_create(struct meta *m, const char *name, int64_t owner_id,
                              const uint8_t token_hash[32], json_t *roles, const char *scope,
                              int64_t expires_at, int64_t *id_out);

/* Looks a token up by hash or by id (revoked and expired ones included;
 * the caller checks). ERR_NOT_FOUND if absent. Release with meta_apitoken_clear. */
enum err meta_apitoken_by_hash(struct meta *m, const uint8_t token_hash[32],
                               struct meta_apitoken *t);
enum err meta_apitoken_by_id(struct meta *m, int64_t id, struct meta_apitoken *t);

/* The unrevoked token called name, if any (ERR_NOT_FOUND otherwise). */
enum err meta_apitoken_by_name(struct meta *m, const char *name, struct meta_apitoken *t);

void meta_apitoken_clear(struct meta_apitoken *t);

/* Records a use of the token at now from ip. */
enum err meta_apitoken_touch(struct meta *m, int64_t id, int64_t now, const char *ip);

/* ERR_NOT_FOUND if absent or already revoked. */
enum err meta_apitoken_revoke(struct meta *m, int64_t id, const char *by);

/* Tokens of owner_id (0: of everyone), newest first, as a JSON array of
 * {id, name, owner, roles, scope, created_at, expires_at, last_used_at,
 * last_used_ip, revoked_at}. Caller decrefs *out. */
enum err meta_apitoken_list(struct meta *m, int64_t owner_id, json_t **out);

/* OIDC issuers: config is a JSON object (validated by the caller). */
enum err meta_oidc_put(struct meta *m, const char *name, json_t *config, const char *by);
/* {NAME: config, ...}; caller decrefs. */
enum err meta_oidc_all(struct meta *m, json_t **out);
/* ERR_NOT_FOUND if absent. */
enum err meta_oidc_delete(struct meta *m, const char *name);

#endif
