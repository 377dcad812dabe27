/*
 * anomaly: real-time anomaly detection on the audit stream, per principal.
 *
 * The detector is pure: it sees only the events it is fed, and its clock is
 * the events' own time, so the same events always give the same findings
 * (replaying history at start, unit tests simulating weeks of traffic).
 * Baselines are learned per principal from what the principal did before:
 * exponentially weighted per-window rates (bytes, distinct artifacts,
 * distinct projects), an hour-of-day activity profile, and the set of
 * source networks seen. Rules:
 *
 *   bulk_download     bytes or distinct artifacts downloaded in one window
 *                     far above the principal's baseline (possible exfiltration)
 *   new_network       first use of a source network (/24 IPv4, /64 IPv6) by a
 *                     principal with an established history
 *   off_hours         access to confidential or restricted content in an hour
 *                     in which the principal is rarely active
 *   deny_burst        many denied requests in a short time
 *   token_networks    one API token used from several networks in a short time
 *   project_sweep     access across many more projects than usual in one window
 *
 * Not thread-safe: the caller serialises calls on one detector.
 */
#ifndef COFFER_MONITOR_ANOMALY_H
#define COFFER_MONITOR_ANOMALY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum anomaly_rule {
    ANOMALY_BULK_DOWNLOAD,
    ANOMALY_NEW_NETWORK,
    ANOMALY_OFF_HOURS,
    ANOMALY_DENY_BURST,
    ANOMALY_TOKEN_NETWORKS,
    ANOMALY_PROJECT_SWEEP,
    ANOMALY_RULE_COUNT
};

enum anomaly_severity { ANOMALY_LOW, ANOMALY_MEDIUM, ANOMALY_HIGH };

#define ANOMALY_MAX_EVENT_IDS 16
#define ANOMALY_PRINCIPAL_MAX 128

/* One audit event, as the detector needs it. Strings are borrowed. */
struct anomaly_event {
    uint64_t index;          /* audit event index */
    int64_t time;            /* Unix seconds (UTC) */
    const char *principal;   /* "user:alice"; events without one are ignored */
    const char *auth_method; /* "token" marks an API token */
    const char *source_ip;
    const char *action;   /* "artifact:Download", ... */
    const char *resource; /* "fraud/prod/model@3" */
    int allow;
    int status;
    int64_t bytes;
    int sensitivity; /* 0..3, -1 when the event does not say */
};

/* Thresholds; anomaly_config_defaults gives the documented defaults. */
struct anomaly_config {
    int64_t window;           /* seconds of one rate window (bulk, projects): 86400 */
    double alpha;             /* weight of the newest window in the baselines: 0.3 */
    int min_history_windows;  /* windows with activity before baselines are trusted: 3 */
    double bulk_factor;       /* fire above factor x baseline: 10 */
    int64_t bulk_min_bytes;   /* and above this many bytes: 100 MiB */
    int bulk_min_artifacts;   /* or distinct artifacts above factor x baseline and this: 20 */
    int64_t bulk_abs_bytes;   /* fire regardless of history above: 10 GiB */
    int network_min_events;   /* events before new networks are noticed: 20 */
    int64_t network_min_age;  /* seconds since first seen, likewise: 7 days */
    double off_hours_share;   /* hour share of activity under which it is unusual: 0.02 */
    int off_hours_min_events; /* events of history before the rule applies: 50 */
    int64_t tz_offset;        /* seconds east of UTC for hours of the day: 0 */
    int deny_count;           /* denied requests ... : 10 */
    int64_t deny_window;      /* ... within this many seconds: 300 */
    int token_networks;       /* networks for one token ... : 3 */
    int64_t token_window;     /* ... within this many seconds: 3600 */
    double projects_factor;   /* distinct projects above factor x baseline: 3 */
    int projects_min;         /* and at least: 5 */
    size_t max_principals;    /* principals tracked; later ones ignored: 100000 */
};

struct anomaly_finding {
    enum anomaly_rule rule;
    enum anomaly_severity severity;
    char principal[ANOMALY_PRINCIPAL_MAX];
    int64_t time;      /* time of the event that triggered it */
    char summary[256]; /* one line for people */
    json_t *evidence;  /* object, owned by the detector: incref to keep */
    uint64_t events[ANOMALY_MAX_EVENT_IDS];
    size_t n_events;
};

/* Receives each finding; f is valid only during the call. */
typedef void (*anomaly_finding_fn)(void *ctx, const struct anomaly_finding *f);

struct anomaly_detector;

void anomaly_config_defaults(struct anomaly_config *cfg);

/* Overrides fields from a JSON object with the struct's field names (e.g.
 * {"bulk_factor": 5, "deny_count": 20}). Unknown keys or bad values:
 * ERR_INVALID with the reason in why. */
enum err anomaly_config_from_json(json_t *obj, struct anomaly_config *cfg, char *why,
                                  size_t why_cap);

/* A new detector (cfg copied; NULL: defaults). fn may be NULL. Free with
 * anomaly_free. NULL when out of memory. */
struct anomaly_detector *anomaly_new(const struct anomaly_config *cfg, anomaly_finding_fn fn,
                                     void *ctx);
void anomaly_free(struct anomaly_detector *d);

/* While muted, events update the baselines but no finding is reported
 * (used while replaying history at start). */
void anomaly_set_muted(struct anomaly_detector *d, int muted);

/* Feeds one event; findings go to the callback. Events should come in time
 * order; an event older than the principal's latest is still counted. */
void anomaly_feed(struct anomaly_detector *d, const struct anomaly_event *ev);

/* Parses one audit event (schema v1 JSON) into ev, whose strings point into
 * *holder (the caller decrefs it after feeding). ERR_INVALID if malformed. */
enum err anomaly_event_from_json(const char *json, size_t len, uint64_t index,
                                 struct anomaly_event *ev, json_t **holder);

/* Number of principals tracked. */
size_t anomaly_principals(const struct anomaly_detector *d);

/* Stable rule / severity names ("bulk_download", "high"); NULL if out of range. */
const char *anomaly_rule_name(enum anomaly_rule r);
const char *anomaly_severity_name(enum anomaly_severity s);
/* -1 if unknown. */
int anomaly_rule_from_name(const char *name);

/* Parses "2024-05-01T12:00:00.123Z" to Unix seconds; -1 if malformed. */
int64_t anomaly_parse_time(const char *s);

#endif
