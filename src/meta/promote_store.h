/*
 * promote_store: promotion requests and their approvals in the metadata
 * store. State changes are conditional updates (pending -> completing ->
 * completed, pending -> rejected | expired, completing -> failed), so two
 * concurrent approvals can never complete one request twice.
 */
#ifndef COFFER_META_PROMOTE_STORE_H
#define COFFER_META_PROMOTE_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "meta/meta.h"

#define META_PRINCIPAL_MAX 160
#define META_PROMOTION_MESSAGE_MAX 1024

struct meta_promotion {
    int64_t id;
    char source_path[PATH_FULL_MAX + 1];
    uint64_t source_version;
    char target_path[PATH_FULL_MAX + 1];
    char target_env[PATH_ENV_MAX + 1];
    char sha256[65];
    char requested_by[META_PRINCIPAL_MAX]; /* the principal, e.g. "service:ci" */
    char requester[META_PRINCIPAL_MAX];    /* the accountable user, e.g. "user:alice" */
    char message[META_PROMOTION_MESSAGE_MAX + 1];
    char state[16]; /* pending, completing, completed, rejected, expired, failed */
    int approvals_required;
    int64_t created_at;
    int64_t expires_at;
    uint64_t target_version; /* 0 until completed */
};

/* Stores a new request in state p->state; sets *id. Errors: ERR_IO. */
enum err meta_promotion_create(struct meta *m, const struct meta_promotion *p, int64_t *id);

/* Fills p. Errors: ERR_NOT_FOUND, ERR_IO. */
enum err meta_promotion_get(struct meta *m, int64_t id, struct meta_promotion *p);

/* Id of a pending request for the same source version and target, or 0. */
enum err meta_promotion_find_pending(struct meta *m, const char *source_path,
                                     uint64_t source_version, const char *target_path, int64_t *id);

/* Marks every pending request whose expiry is at or before now as expired. */
enum err meta_promotion_expire(struct meta *m, int64_t now);

/* Records an approval of request id by approver (the accountable identity)
 * acting as principal, and sets *count to the request's approvals so far.
 * Errors: ERR_CONFLICT (approver already approved), ERR_IO. */
enum err meta_promotion_approve(struct meta *m, int64_t id, const char *approver,
                                const char *principal, int *count);

/* Moves request id from state from to state to, recording by, reason and
 * (when non-zero) the target version. Errors: ERR_CONFLICT (not in state
 * from any more), ERR_IO. */
enum err meta_promotion_transition(struct meta *m, int64_t id, const char *from, const char *to,
                                   const char *by, const char *reason, uint64_t target_version);

/* Requests as a JSON array, newest first, each with its approvals; only
 * pending ones unless all. Caller decrefs *out. */
enum err meta_promotion_list(struct meta *m, int all, json_t **out);

/* One request as a JSON object with its approvals. Caller decrefs *out. */
enum err meta_promotion_json(struct meta *m, int64_t id, json_t **out);

#endif
