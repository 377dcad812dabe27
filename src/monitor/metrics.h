/*
 * metrics: process-wide counters and histograms for the Prometheus text
 * format. Every update is a relaxed C11 atomic add on a fixed slot (no lock,
 * no allocation), so request threads never wait on monitoring. Label sets
 * are fixed: routes of the route table, a list of HTTP statuses, the
 * documented actions (others count as "other").
 */
#ifndef COFFER_MONITOR_METRICS_H
#define COFFER_MONITOR_METRICS_H

#include <stdint.h>
#include <stdio.h>

#define METRICS_MAX_ROUTES 256

/* One finished HTTP request: route index in api_routes (-1: no route),
 * status, latency in microseconds, body bytes received and sent. */
void metrics_request(int route, int status, int64_t usec, uint64_t bytes_in, uint64_t bytes_out);

/* One audit event: decision counters, authentication failures and lockouts. */
void metrics_event(const char *action, int allow, int status);

/* A credential that failed authentication (bad, expired or revoked token). */
void metrics_auth_failure(void);

/* A request refused because of a hold (suspension or step-up). */
void metrics_blocked(void);

/* An anomaly finding of rule (0..ANOMALY_RULE_COUNT-1). */
void metrics_finding(int rule);

/* A webhook delivery that succeeded (ok) or was given up. */
void metrics_webhook(int ok);

/* Writes every counter above in the Prometheus text format (0.0.4). */
void metrics_write(FILE *f);

/* Resets every counter (tests). */
void metrics_reset(void);

#endif
