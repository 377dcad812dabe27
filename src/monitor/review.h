/*
 * review: the access review. For every principal it reports its effective
 * access (each binding, direct or through a group, with the actions and
 * resources the role's policies allow), when each grant was last used
 * (from the audit log), and flags: grants unused for N days, clearance above
 * anything ever accessed, privileged users without MFA, dormant accounts,
 * and API tokens near or past the maximum lifetime.
 */
#ifndef COFFER_MONITOR_REVIEW_H
#define COFFER_MONITOR_REVIEW_H

#include <jansson.h>
#include <stdint.h>

#include "app/app.h"
#include "util/err.h"

/* Most audit events read for last uses (the end of the log). */
#define REVIEW_MAX_EVENTS 2000000

/*
 * Builds the review at time now with grants unused for unused_days days
 * flagged. *out (caller decrefs):
 *   {"generated_at":T, "unused_days":N, "principals":[{"principal", "type",
 *    "disabled", "admin", "mfa", "clearance", "max_sensitivity_used",
 *    "last_seen", "flags":[..], "grants":[{"role","scope","via","actions":[..],
 *    "resources":[..],"privileged","last_used","unused"}]}],
 *    "tokens":[{"id","name","owner","created_at","expires_at","last_used_at",
 *    "flags":[..]}]}
 * Errors: ERR_UNAVAILABLE (store), ERR_INTERNAL.
 */
enum err review_build(struct app *app, int unused_days, int64_t now, json_t **out);

#endif
