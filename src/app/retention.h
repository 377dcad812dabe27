/*
 * retention: crypto-shredding of versions and the retention job.
 *
 * retention_erase_version destroys one version's data key and, when no other
 * version shares it, its blob. The retention job applies the stored
 * retention rules (meta/compliance_store.h): every version a rule makes due
 * is erased (or tombstoned), unless a legal hold or retention lock covers
 * it; every action and every skip is written to the audit log as
 * system:retention. The job runs in the background every
 * "retention.interval" seconds (setting, default 3600) and on demand.
 */
#ifndef COFFER_APP_RETENTION_H
#define COFFER_APP_RETENTION_H

#include <jansson.h>
#include <stdint.h>

#include "util/err.h"

struct app;

#define RETENTION_SETTING_INTERVAL "retention.interval"
#define RETENTION_DEFAULT_INTERVAL 3600
#define RETENTION_MAX_PER_RUN 10000

/*
 * Erases the version described by v (an entry of compliance_versions) as by
 * with reason: the wrapped DEK is destroyed in the database, the blob is
 * deleted when no other version references it (*blob_removed = 1).
 * Errors: ERR_GONE (already erased), ERR_NOT_FOUND, ERR_IO.
 */
enum err retention_erase_version(struct app *app, json_t *v, const char *by, const char *reason,
                                 int *blob_removed);

/*
 * Applies every retention rule once. With dry_run nothing changes and
 * nothing is logged. *report (new object, caller decrefs) lists what was
 * (or would be) erased or deleted, and what holds or locks kept.
 * Errors: ERR_IO.
 */
enum err retention_run(struct app *app, int dry_run, json_t **report);

/* Starts / stops the background job. rotate-style: no-ops when absent. */
enum err retention_open(struct app *app);
void retention_close(struct app *app);

#endif
