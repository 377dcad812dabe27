/*
 * monitor_store: what monitoring keeps in the metadata store: anomaly
 * findings, holds put on principals by anomaly responses (suspension of
 * their credentials, forced step-up MFA) until an administrator clears them,
 * and the decisions of access reviews. Every function is thread-safe.
 */
#ifndef COFFER_META_MONITOR_STORE_H
#define COFFER_META_MONITOR_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "meta/meta.h"

#define META_HOLD_SUSPEND "suspend"
#define META_HOLD_STEPUP "stepup"

struct meta_finding {
    const char *rule;
    const char *severity;
    const char *principal;
    int64_t event_time;
    const char *summary;
    json_t *evidence;  /* object, borrowed */
    json_t *events;    /* array of audit event indexes, borrowed */
    json_t *responses; /* array of response names, borrowed */
};

/* Stores a finding; *id receives its id. Errors: ERR_IO. */
enum err meta_finding_add(struct meta *m, const struct meta_finding *f, int64_t *id);

/* Findings newest first, at most limit (1..10000), only unacknowledged
 * ones unless all: a JSON array of {id, rule, severity, principal,
 * event_time, created_at, summary, evidence, events, responses, acked_at,
 * acked_by}. Caller decrefs *out. */
enum err meta_finding_list(struct meta *m, int all, int limit, json_t **out);

/* Acknowledges finding id. ERR_NOT_FOUND if absent or already acknowledged. */
enum err meta_finding_ack(struct meta *m, int64_t id, const char *by);

/* Counts of findings per rule since the store was created, as {RULE: N}. */
enum err meta_finding_counts(struct meta *m, json_t **out);

/* Puts (or keeps) a hold of kind (META_HOLD_*) on principal. */
enum err meta_hold_set(struct meta *m, const char *principal, const char *kind, int64_t since,
                       int64_t finding_id, const char *reason);

/* Clears the holds of principal (kind NULL: every kind). ERR_NOT_FOUND if none. */
enum err meta_hold_clear(struct meta *m, const char *principal, const char *kind);

/* Every hold: [{principal, kind, since, finding_id, reason}]. Caller decrefs. */
enum err meta_hold_list(struct meta *m, json_t **out);

/* Records an access-review decision ("keep" or "revoke") on one binding. */
enum err meta_review_decision_add(struct meta *m, const char *reviewer, const char *role,
                                  const char *principal, const char *scope, const char *decision,
                                  const char *note);

/* Counts for metrics at time now: active (unrevoked, unexpired, uses left)
 * share links and active API tokens; -1 where the table does not exist. */
void meta_monitor_counts(struct meta *m, int64_t now, int64_t *shares, int64_t *tokens);

#endif
