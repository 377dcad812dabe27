/*
 * compliance_store: crypto-shredding tombstones, legal holds, retention
 * locks and retention rules in the metadata store.
 *
 * Path patterns (holds, locks, rule scopes) are an artifact path
 * (PROJECT/ENV/NAME, exact) or a prefix followed by a star, which matches
 * every path that starts with the prefix (a lone star matches everything).
 */
#ifndef COFFER_META_COMPLIANCE_STORE_H
#define COFFER_META_COMPLIANCE_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct meta;

#define COMPLIANCE_PATTERN_MAX 600
#define COMPLIANCE_REASON_MAX 1024

/* 1 when path matches pattern (exact, or prefix before a final '*'). */
int compliance_path_match(const char *pattern, const char *path);

/* 1 when pattern is well formed: printable, at most COMPLIANCE_PATTERN_MAX
 * bytes, '*' only at the end. */
int compliance_pattern_valid(const char *pattern);

/*
 * Versions to act on, as a new JSON array of objects {version_id, path,
 * version, sha256, size, kind, sensitivity (effective level), tags,
 * blob_id, created_at, deleted, erased}. Exactly one selector is used:
 *   path != NULL and version > 0: that version;
 *   path != NULL and version == 0: every version of that artifact;
 *   tag_key != NULL: every version of every artifact tagged tag_key=tag_value
 *   whose path matches prefix (pattern, may be NULL for all).
 * Caller decrefs. Errors: ERR_IO.
 */
enum err compliance_versions(struct meta *m, const char *path, uint64_t version,
                             const char *tag_key, const char *tag_value, const char *prefix,
                             json_t **out);

/*
 * Crypto-shreds one version in one transaction: its wrapped DEK and KEK id
 * are cleared, it is tombstoned, and erased_at/by/reason are recorded.
 * *blob_free is set to 1 when no version left references its blob (the
 * caller then deletes the blob), 0 when another version still uses it.
 * Then checkpoints the WAL so the old wrapped key is not left in the
 * journal (pages are zeroed: PRAGMA secure_delete is on).
 * Errors: ERR_GONE (already erased), ERR_NOT_FOUND, ERR_IO.
 */
enum err compliance_erase_version(struct meta *m, int64_t version_id, const char *by,
                                  const char *reason, int *blob_free);

/*
 * Whether an action that deletes or erases path (an artifact path) is
 * blocked at time now by a legal hold or an unexpired retention lock. Returns
 * ERR_OK when free, ERR_CONFLICT when blocked (why: one line naming the hold
 * or lock), ERR_IO.
 */
enum err compliance_blocked(struct meta *m, const char *path, int64_t now, char *why,
                            size_t why_cap);

/* Legal holds. set: ERR_CONFLICT when one exists on pattern; clear: ERR_NOT_FOUND. */
enum err compliance_hold_set(struct meta *m, const char *pattern, const char *reason,
                             const char *by);
enum err compliance_hold_clear(struct meta *m, const char *pattern);
enum err compliance_hold_list(struct meta *m, json_t **out);

/*
 * Retention locks (minimum retention, as S3 Object Lock): no deletion or
 * erasure before until. mode "governance" may be shortened or removed by
 * whoever may set it; mode "compliance" can only be extended, by anyone,
 * admins included. Errors: ERR_CONFLICT (would shorten or weaken a
 * compliance lock; *current_until set), ERR_IO.
 */
enum err compliance_lock_set(struct meta *m, const char *pattern, const char *mode, int64_t until,
                             const char *by, int64_t *current_until);
/* Removes a governance lock, or an expired compliance lock. ERR_CONFLICT, ERR_NOT_FOUND. */
enum err compliance_lock_clear(struct meta *m, const char *pattern, int64_t now);
enum err compliance_lock_list(struct meta *m, json_t **out);

/* Retention rules: action "erase" or "delete" after after_seconds from upload. */
struct compliance_rule {
    int64_t id;
    char scope[COMPLIANCE_PATTERN_MAX + 1];
    char kind[16];     /* "" = any */
    char tag_key[129]; /* "" = any */
    char tag_value[257];
    int64_t after_seconds;
    char action[8];
};
enum err compliance_rule_add(struct meta *m, const struct compliance_rule *rule, const char *by,
                             int64_t *id);
enum err compliance_rule_delete(struct meta *m, int64_t id);
/* All rules as a new JSON array. */
enum err compliance_rule_list(struct meta *m, json_t **out);
/*
 * Versions due under rule at time now (uploaded at or before now -
 * after_seconds, not yet erased; for "delete" not yet deleted), in the
 * format of compliance_versions, at most limit. Errors: ERR_IO.
 */
enum err compliance_rule_due(struct meta *m, const struct compliance_rule *rule, int64_t now,
                             size_t limit, json_t **out);
/* Fills rule from a rule_list entry. */
void compliance_rule_from_json(json_t *o, struct compliance_rule *rule);

#endif
