/*
 * monitor: the server side of monitoring. It feeds every recorded audit
 * event to the anomaly detector (warmed at start by replaying the end of the
 * audit log), stores each finding and carries out the responses configured
 * for its rule: record only, a signed webhook, forced step-up MFA, or
 * suspension of the principal until an administrator clears it. It also
 * enforces those holds at authentication and renders GET /metrics.
 *
 * Configuration: DATA/monitor.json (optional, mode 0600 as it holds the
 * webhook secret):
 *   {"detector": {anomaly_config fields}, "replay_events": 100000,
 *    "webhook": {"url": "https://...", "secret": "..."},
 *    "responses": {"bulk_download": ["webhook", "suspend"], ...}}
 * Response names: "record", "webhook", "stepup", "suspend".
 */
#ifndef COFFER_MONITOR_MONITOR_H
#define COFFER_MONITOR_MONITOR_H

#include <stdint.h>

#include "http/http.h"
#include "util/err.h"

struct audit_event;

/* Opens monitoring for app (meta and audit open): reads the configuration,
 * loads the holds, replays history, starts the webhook sender. A missing
 * configuration file means defaults. Errors: ERR_INVALID (bad file),
 * ERR_INTERNAL. */
enum err monitor_open(struct app *app);

/* Stops the webhook sender (pending deliveries get about 2 s) and frees. */
void monitor_close(struct app *app);

/* Feeds one durable audit event (index in the log) to metrics and the
 * detector. Never fails the request. */
void monitor_observe(struct app *app, const struct audit_event *ev, uint64_t index);

/* After authentication: refuses (and records) a request of a principal
 * that is suspended, or that must step up to MFA and has not. ERR_OK when
 * the request may go on. */
enum err monitor_check_principal(struct request *r);

/* 1 when principal ("user:NAME", "token:ID", ...) is under a suspension
 * hold, 0 otherwise (or when monitoring is off). Thread-safe. */
int monitor_is_suspended(struct app *app, const char *principal);

/* Clears the holds of principal (kind NULL: all). ERR_NOT_FOUND if none. */
enum err monitor_clear_hold(struct app *app, const char *principal, const char *kind);

/* Timestamp (unix ms) of the last signed tree head in DATA/audit/heads.log,
 * or -1 when none can be read. */
int64_t monitor_last_head_ms(struct app *app);

/* Metrics of one finished request (from the completion callback). */
void monitor_request_done(struct request *r);

/* The Prometheus text of every metric, as a new string (caller frees). */
enum err monitor_metrics_text(struct app *app, char **out, size_t *len);

/* HMAC-SHA256 of body with secret as "sha256=HEX" into out (>= 72 bytes). */
void monitor_sign(const char *secret, const char *body, size_t len, char *out, size_t cap);

#endif
