/*
 * In-memory failure counters with exponential back-off and temporary locks.
 */
#include "authn/lockout.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "util/log.h"

struct lockout_entry {
    char key[LOCKOUT_KEY_MAX];
    int failures;
    int64_t last_failure;
    int64_t locked_until;
};

struct lockout_table {
    struct lockout_entry e[LOCKOUT_TABLE_MAX];
    size_t n;
};

static pthread_mutex_t lockout_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lockout_table lockout_users;
static struct lockout_table lockout_ips;
static struct lockout_config lockout_cfg = {5, 2, 20, 10, 900, 900, 1, 60};

void lockout_config_defaults(struct lockout_config *cfg)
{
    struct lockout_config d = {5, 2, 20, 10, 900, 900, 1, 60};
    *cfg = d;
}

enum err lockout_config_from_json(json_t *obj, struct lockout_config *cfg, char *why,
                                  size_t why_len)
{
    struct {
        const char *name;
        int64_t *v64;
        int *v32;
        int64_t min, max;
    } fields[] = {
        {"user_threshold", NULL, &cfg->user_threshold, 1, 1000},
        {"user_backoff_after", NULL, &cfg->user_backoff_after, 1, 1000},
        {"ip_threshold", NULL, &cfg->ip_threshold, 1, 100000},
        {"ip_backoff_after", NULL, &cfg->ip_backoff_after, 1, 100000},
        {"window_seconds", &cfg->window, NULL, 1, 86400 * 7},
        {"lock_seconds", &cfg->lock_seconds, NULL, 1, 86400 * 7},
        {"backoff_base_seconds", &cfg->backoff_base, NULL, 0, 3600},
        {"backoff_max_seconds", &cfg->backoff_max, NULL, 0, 86400},
    };
    if (!json_is_object(obj)) {
        snprintf(why, why_len, "lockout settings must be an object");
        return ERR_INVALID;
    }
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        size_t i;
        for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
            if (strcmp(k, fields[i].name) == 0)
                break;
        }
        if (i == sizeof(fields) / sizeof(fields[0])) {
            snprintf(why, why_len, "unknown lockout setting '%.40s'", k);
            return ERR_INVALID;
        }
        json_int_t x = json_integer_value(v);
        if (!json_is_integer(v) || x < fields[i].min || x > fields[i].max) {
            snprintf(why, why_len, "lockout setting %s must be an integer in %lld..%lld", k,
                     (long long)fields[i].min, (long long)fields[i].max);
            return ERR_INVALID;
        }
        if (fields[i].v64 != NULL)
            *fields[i].v64 = (int64_t)x;
        else
            *fields[i].v32 = (int)x;
    }
    return ERR_OK;
}

void lockout_configure(const struct lockout_config *cfg)
{
    pthread_mutex_lock(&lockout_lock);
    lockout_cfg = *cfg;
    lockout_users.n = 0;
    lockout_ips.n = 0;
    pthread_mutex_unlock(&lockout_lock);
}

/* Finds the entry for key; with create, adds one (dropping the stalest entry
 * when the table is full). Caller holds the lock. */
static struct lockout_entry *lockout_find(struct lockout_table *t, const char *key, int create)
{
    size_t stalest = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->e[i].key, key) == 0)
            return &t->e[i];
        int64_t ti = t->e[i].locked_until > t->e[i].last_failure ? t->e[i].locked_until
                                                                 : t->e[i].last_failure;
        int64_t ts = t->e[stalest].locked_until > t->e[stalest].last_failure
                         ? t->e[stalest].locked_until
                         : t->e[stalest].last_failure;
        if (ti < ts)
            stalest = i;
    }
    if (!create)
        return NULL;
    struct lockout_entry *e = t->n < LOCKOUT_TABLE_MAX ? &t->e[t->n++] : &t->e[stalest];
    memset(e, 0, sizeof(*e));
    snprintf(e->key, sizeof(e->key), "%s", key);
    return e;
}

/* Seconds until an attempt on entry e may proceed (0: now). Resets counters
 * whose window has passed. Caller holds the lock. */
static int64_t lockout_wait(struct lockout_entry *e, int threshold, int backoff_after, int64_t now)
{
    /* Times are in milliseconds here; the configuration is in seconds. */
    if (e == NULL)
        return 0;
    if (e->locked_until > now)
        return e->locked_until - now;
    if (e->failures > 0 && now - e->last_failure > lockout_cfg.window * 1000) {
        e->failures = 0;
        e->locked_until = 0;
        return 0;
    }
    if (e->failures < backoff_after || e->failures >= threshold)
        return 0;
    int shift = e->failures - backoff_after;
    int64_t delay = lockout_cfg.backoff_base;
    for (int i = 0; i < shift && delay < lockout_cfg.backoff_max; i++)
        delay *= 2;
    if (delay > lockout_cfg.backoff_max)
        delay = lockout_cfg.backoff_max;
    int64_t until = e->last_failure + delay * 1000;
    return until > now ? until - now : 0;
}

int64_t lockout_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lockout_check(const char *user, const char *ip, int64_t now)
{
    pthread_mutex_lock(&lockout_lock);
    int64_t w_user = 0, w_ip = 0;
    if (user != NULL)
        w_user = lockout_wait(lockout_find(&lockout_users, user, 0), lockout_cfg.user_threshold,
                              lockout_cfg.user_backoff_after, now);
    if (ip != NULL)
        w_ip = lockout_wait(lockout_find(&lockout_ips, ip, 0), lockout_cfg.ip_threshold,
                            lockout_cfg.ip_backoff_after, now);
    pthread_mutex_unlock(&lockout_lock);
    int64_t w = w_user > w_ip ? w_user : w_ip;
    return (w + 999) / 1000;
}

static void lockout_count(struct lockout_table *t, const char *key, int threshold, int64_t now)
{
    struct lockout_entry *e = lockout_find(t, key, 1);
    if (e->failures > 0 && now - e->last_failure > lockout_cfg.window * 1000 &&
        e->locked_until <= now)
        e->failures = 0;
    if (e->failures < 1000000)
        e->failures++;
    e->last_failure = now;
    if (e->failures >= threshold)
        e->locked_until = now + lockout_cfg.lock_seconds * 1000;
}

void lockout_failure(const char *user, const char *ip, int64_t now)
{
    pthread_mutex_lock(&lockout_lock);
    if (user != NULL)
        lockout_count(&lockout_users, user, lockout_cfg.user_threshold, now);
    if (ip != NULL)
        lockout_count(&lockout_ips, ip, lockout_cfg.ip_threshold, now);
    pthread_mutex_unlock(&lockout_lock);
}

void lockout_success(const char *user)
{
    pthread_mutex_lock(&lockout_lock);
    struct lockout_entry *e = lockout_find(&lockout_users, user, 0);
    if (e != NULL) {
        *e = lockout_users.e[lockout_users.n - 1];
        lockout_users.n--;
    }
    pthread_mutex_unlock(&lockout_lock);
}

void lockout_setup(const struct app_config *app_cfg)
{
    static pthread_mutex_t setup_lock = PTHREAD_MUTEX_INITIALIZER;
    static int done;
    pthread_mutex_lock(&setup_lock);
    if (!done) {
        done = 1;
        char path[1200];
        json_error_t jerr;
        json_t *all = NULL;
        if (app_path(app_cfg, "authn.json", path, sizeof(path)) == 0 && access(path, F_OK) == 0 &&
            (all = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
            log_error("%s: %s; brute-force defence uses its defaults", path, jerr.text);
        json_t *obj = json_object_get(all, "lockout");
        if (obj != NULL) {
            struct lockout_config cfg;
            char why[160];
            lockout_config_defaults(&cfg);
            if (lockout_config_from_json(obj, &cfg, why, sizeof(why)) == ERR_OK)
                lockout_configure(&cfg);
            else
                log_error("%s: %s; brute-force defence uses its defaults", path, why);
        }
        json_decref(all);
    }
    pthread_mutex_unlock(&setup_lock);
}
