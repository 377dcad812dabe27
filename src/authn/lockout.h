/*
 * lockout: brute-force defence for logins and one-time codes. Failures are
 * counted per user name (whether the user exists or not, so the answer never
 * reveals it) and per source IP. After `backoff_after` failures within the
 * window each further attempt must wait base * 2^(n - backoff_after) seconds
 * (capped); at `threshold` failures the key is locked for lock_seconds.
 * A success clears the user's counter (not the IP's: one good account must
 * not launder an address that guesses at others).
 *
 * Counters live in memory, in two bounded tables (LOCKOUT_TABLE_MAX entries
 * each; when full, the stalest entry is dropped); a restart clears them.
 * Thread-safe.
 */
#ifndef COFFER_AUTHN_LOCKOUT_H
#define COFFER_AUTHN_LOCKOUT_H

#include <jansson.h>
#include <stdint.h>

#include "util/err.h"

#define LOCKOUT_TABLE_MAX 4096
#define LOCKOUT_KEY_MAX 96

struct lockout_config {
    int user_threshold;     /* failures per user name that lock it (default 5) */
    int user_backoff_after; /* failures per user before back-off starts (default 2) */
    int ip_threshold;       /* failures per source IP that lock it (default 20) */
    int ip_backoff_after;   /* (default 10) */
    int64_t window;         /* seconds after the last failure when a counter resets (900) */
    int64_t lock_seconds;   /* length of a lock (900) */
    int64_t backoff_base;   /* first back-off delay in seconds (1) */
    int64_t backoff_max;    /* longest back-off delay (60) */
};

/* The defaults listed above. */
void lockout_config_defaults(struct lockout_config *cfg);

/*
 * Overrides fields of cfg from a JSON object such as
 * {"user_threshold": 5, "window_seconds": 900, "lock_seconds": 900, ...}
 * (names as the struct fields; window and lock take the _seconds suffix,
 * backoff_base/backoff_max too). Unknown keys and out-of-range values are
 * refused with ERR_INVALID and a reason in why.
 */
enum err lockout_config_from_json(json_t *obj, struct lockout_config *cfg, char *why,
                                  size_t why_len);

struct app_config;

/* Installs the "lockout" object of DATA/authn.json (if the file exists) once
 * per process; later calls do nothing. A malformed file is logged and the
 * defaults stay in force. */
void lockout_setup(const struct app_config *app_cfg);

/* Installs cfg for the process and clears every counter. */
void lockout_configure(const struct lockout_config *cfg);

/* The clock the functions below take: Unix time in milliseconds. */
int64_t lockout_now_ms(void);

/*
 * Returns 0 when an attempt for user from ip may proceed at now
 * (milliseconds), else the number of seconds to wait, rounded up (>= 1).
 * user may be NULL (IP only).
 */
int64_t lockout_check(const char *user, const char *ip, int64_t now);

/* Counts a failed attempt for user (may be NULL) and ip at now (milliseconds). */
void lockout_failure(const char *user, const char *ip, int64_t now);

/* Clears the user's counter after a successful login. */
void lockout_success(const char *user);

#endif
