/*
 * Online KEK rotation: the background worker, the batch re-wrap and the
 * destruction of retired KEKs that protect nothing any more.
 */
#include "keys/rotate.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "audit/audit.h"
#include "audit/event.h"
#include "meta/access.h"
#include "meta/keys_store.h"
#include "util/log.h"
#include "util/secure.h"

struct keys_rotator {
    struct app *app;
    pthread_t thread;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;
    pthread_rwlock_t wraps; /* read: a push between wrap and commit; write: destroying a KEK */
    volatile int stop;
    int work;    /* a pass was requested */
    int running; /* a pass is in progress */
    int batch, pause_ms;
    int64_t id;
    char new_kek[KEYS_KEK_ID_CAP];
    volatile int64_t rewrapped;
    int64_t period;
    char error[160];
};

/* ---- provider dispatch (any provider with the KEK management hooks) ---- */

enum err rotate_current_kek(struct key_provider *kp, char *out, size_t cap)
{
    size_t n = keys_kek_count(kp);
    for (size_t i = 0; i < n; i++) {
        struct keys_kek_info info;
        if (keys_kek_info(kp, i, &info) == ERR_OK && info.current) {
            int w = snprintf(out, cap, "%s", info.id);
            return w < 0 || (size_t)w >= cap ? ERR_INVALID : ERR_OK;
        }
    }
    return ERR_UNAVAILABLE;
}

static int64_t rotate_current_created(struct key_provider *kp)
{
    size_t n = keys_kek_count(kp);
    for (size_t i = 0; i < n; i++) {
        struct keys_kek_info info;
        if (keys_kek_info(kp, i, &info) == ERR_OK && info.current)
            return info.created;
    }
    return 0;
}

/* ---- audit ---- */

static void rotate_audit(struct app *app, const char *action, const char *resource,
                         const char *reason, json_t *detail)
{
    if (app->audit == NULL)
        return;
    struct audit_event ev = {.principal = "system:coffer",
                             .auth_method = "none",
                             .action = action,
                             .resource = resource,
                             .allow = 1,
                             .reason = reason,
                             .detail = detail};
    char *text = NULL;
    size_t len = 0;
    if (audit_event_encode(&ev, &text, &len) != ERR_OK ||
        audit_log_append(app->audit, text, len, NULL) != ERR_OK)
        log_error("key rotation: cannot record '%s' in the audit log", reason);
    free(text);
}

/* ---- re-wrap ---- */

static void rotate_sleep_ms(int ms, const volatile int *stop)
{
    while (ms > 0 && (stop == NULL || !*stop)) {
        int step = ms > 20 ? 20 : ms;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* Re-wraps one key under the current KEK into out. */
static enum err rotate_rewrap_one(struct key_provider *kp, const struct keys_wrapped_row *in,
                                  struct keys_wrapped_row *out)
{
    uint8_t key[KEYS_DEK_MAX];
    size_t key_len = 0;
    const uint8_t *ad = (const uint8_t *)in->identity;
    size_t ad_len = strlen(in->identity);
    enum err e = kp->unwrap(kp, in->kek_id, in->wrapped, in->wrapped_len, ad, ad_len, key,
                            sizeof(key), &key_len);
    if (e == ERR_OK) {
        *out = *in;
        e = kp->wrap(kp, key, key_len, ad, ad_len, out->wrapped, sizeof(out->wrapped),
                     &out->wrapped_len, out->kek_id, sizeof(out->kek_id));
    }
    secure_wipe(key, sizeof(key));
    return e;
}

enum err rotate_rewrap_all(struct meta *m, struct key_provider *kp, int batch, int pause_ms,
                           const volatile int *stop, int64_t rotation_id, int64_t *count)
{
    if (m == NULL || kp == NULL || batch < 1 || batch > ROTATE_BATCH_MAX || count == NULL)
        return ERR_INVALID;
    char current[KEYS_KEK_ID_CAP];
    enum err e = rotate_current_kek(kp, current, sizeof(current));
    if (e != ERR_OK)
        return e;
    struct keys_wrapped_row *old = calloc((size_t)batch, sizeof(*old));
    struct keys_wrapped_row *neu = calloc((size_t)batch, sizeof(*neu));
    if (old == NULL || neu == NULL) {
        free(old);
        free(neu);
        return ERR_INTERNAL;
    }
    struct keys_scan scan = {KEYS_ROW_VERSION, 0};
    for (;;) {
        if (stop != NULL && *stop)
            break;
        size_t n = 0, ok = 0, applied = 0;
        if ((e = keys_store_next(m, current, &scan, old, (size_t)batch, &n)) != ERR_OK || n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            enum err re = rotate_rewrap_one(kp, &old[i], &neu[ok]);
            if (re != ERR_OK) {
                log_error("key rotation: a key wrapped under %s (%s %lld) could not be "
                          "re-wrapped: %s; its KEK is kept",
                          old[i].kek_id, old[i].table == KEYS_ROW_TOTP ? "totp" : "version",
                          (long long)old[i].id, err_info(re)->message);
                continue;
            }
            if (ok != i)
                old[ok] = old[i];
            ok++;
        }
        if (ok > 0 && (e = keys_store_replace(m, old, neu, ok, &applied)) != ERR_OK)
            break;
        *count += (int64_t)applied;
        if (rotation_id != 0 && applied > 0)
            keys_store_rotation_progress(m, rotation_id, (int64_t)applied);
        if (pause_ms > 0)
            rotate_sleep_ms(pause_ms, stop);
    }
    secure_wipe(old, (size_t)batch * sizeof(*old));
    secure_wipe(neu, (size_t)batch * sizeof(*neu));
    free(old);
    free(neu);
    return e;
}

/* Destroys every retired KEK that protects nothing. Returns the ids destroyed (new array). */
static json_t *rotate_destroy_unused(struct app *app, struct keys_rotator *kr)
{
    json_t *destroyed = json_array();
    pthread_rwlock_wrlock(&kr->wraps);
    size_t n = keys_kek_count(app->keys);
    for (size_t i = n; i-- > 0;) {
        struct keys_kek_info info;
        int64_t refs = -1;
        if (keys_kek_info(app->keys, i, &info) != ERR_OK || info.current)
            continue;
        if (keys_store_kek_refs(app->meta, info.id, &refs) != ERR_OK || refs != 0)
            continue;
        if (keys_destroy_kek(app->keys, info.id) == ERR_OK)
            json_array_append_new(destroyed, json_string(info.id));
    }
    pthread_rwlock_unlock(&kr->wraps);
    return destroyed;
}

/* One pass: re-wrap what is left, destroy unused KEKs, close the record. */
static void rotate_pass(struct app *app, struct keys_rotator *kr)
{
    struct keys_rotation_rec rec;
    int have_rec = keys_store_rotation_open(app->meta, &rec) == ERR_OK;
    pthread_mutex_lock(&kr->lock);
    int batch = have_rec && rec.batch > 0 ? rec.batch : kr->batch;
    int pause_ms = have_rec ? rec.pause_ms : kr->pause_ms;
    if (batch < 1 || batch > ROTATE_BATCH_MAX)
        batch = ROTATE_BATCH_DEFAULT;
    if (pause_ms < 0 || pause_ms > ROTATE_PAUSE_MAX_MS)
        pause_ms = 0;
    if (have_rec) {
        kr->id = rec.id;
        snprintf(kr->new_kek, sizeof(kr->new_kek), "%s", rec.new_kek);
    }
    kr->error[0] = '\0';
    pthread_mutex_unlock(&kr->lock);

    int64_t count = 0;
    enum err e = rotate_rewrap_all(app->meta, app->keys, batch, pause_ms, &kr->stop,
                                   have_rec ? rec.id : 0, &count);
    pthread_mutex_lock(&kr->lock);
    kr->rewrapped += count;
    if (e != ERR_OK)
        snprintf(kr->error, sizeof(kr->error), "re-wrapping stopped: %s", err_info(e)->message);
    pthread_mutex_unlock(&kr->lock);
    if (e != ERR_OK || kr->stop)
        return;
    json_t *destroyed = rotate_destroy_unused(app, kr);
    if (have_rec) {
        keys_store_rotation_finish(app->meta, rec.id, destroyed);
        json_t *detail = json_pack("{s:I, s:I, s:O}", "rotation", (json_int_t)rec.id, "rewrapped",
                                   (json_int_t)(rec.rewrapped + count), "destroyed", destroyed);
        rotate_audit(app, "admin:Keys", rec.new_kek, "key rotation finished", detail);
        json_decref(detail);
        log_info("key rotation %lld to %s finished: %lld key(s) re-wrapped, %zu KEK(s) destroyed",
                 (long long)rec.id, rec.new_kek, (long long)(rec.rewrapped + count),
                 json_array_size(destroyed));
    } else if (count > 0 || json_array_size(destroyed) > 0) {
        json_t *detail =
            json_pack("{s:I, s:O}", "rewrapped", (json_int_t)count, "destroyed", destroyed);
        rotate_audit(app, "admin:Keys", "*", "left-over keys re-wrapped", detail);
        json_decref(detail);
    }
    json_decref(destroyed);
}

/* Starts a rotation when the current KEK is older than the configured period. */
static void rotate_maybe_auto(struct app *app, struct keys_rotator *kr)
{
    pthread_mutex_lock(&kr->lock);
    int64_t period = kr->period;
    int busy = kr->running || kr->work;
    pthread_mutex_unlock(&kr->lock);
    if (period <= 0 || busy)
        return;
    int64_t created = rotate_current_created(app->keys);
    if (created <= 0 || (int64_t)time(NULL) - created < period)
        return;
    char id[KEYS_KEK_ID_CAP];
    if (rotate_start(app, "system:auto-rotation", ROTATE_BATCH_DEFAULT, 0, id, sizeof(id)) ==
        ERR_OK)
        log_info("automatic key rotation: %s is now the current KEK", id);
}

static void *rotate_main(void *arg)
{
    struct app *app = arg;
    struct keys_rotator *kr = app->rotator;
    pthread_mutex_lock(&kr->lock);
    while (!kr->stop) {
        if (!kr->work) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&kr->wake, &kr->lock, &ts);
        }
        if (kr->stop)
            break;
        if (!kr->work) {
            pthread_mutex_unlock(&kr->lock);
            rotate_maybe_auto(app, kr);
            pthread_mutex_lock(&kr->lock);
            continue;
        }
        kr->work = 0;
        kr->running = 1;
        pthread_mutex_unlock(&kr->lock);
        rotate_pass(app, kr);
        pthread_mutex_lock(&kr->lock);
        kr->running = 0;
    }
    pthread_mutex_unlock(&kr->lock);
    return NULL;
}

/* ---- public API ---- */

enum err rotate_open(struct app *app)
{
    struct keys_rotator *kr = calloc(1, sizeof(*kr));
    if (kr == NULL)
        return ERR_INTERNAL;
    kr->app = app;
    kr->batch = ROTATE_BATCH_DEFAULT;
    pthread_mutex_init(&kr->lock, NULL);
    pthread_cond_init(&kr->wake, NULL);
    pthread_rwlock_init(&kr->wraps, NULL);
    char text[32];
    if (meta_setting_get(app->meta, ROTATE_SETTING_PERIOD, text, sizeof(text)) == ERR_OK)
        kr->period = strtoll(text, NULL, 10);
    /* Resume: an unfinished rotation, or keys left under a retired KEK. */
    struct keys_rotation_rec rec;
    kr->work = keys_store_rotation_open(app->meta, &rec) == ERR_OK || keys_kek_count(app->keys) > 1;
    if (kr->work)
        log_info("key rotation: resuming re-wrapping under the current KEK");
    app->rotator = kr;
    if (pthread_create(&kr->thread, NULL, rotate_main, app) != 0) {
        app->rotator = NULL;
        pthread_rwlock_destroy(&kr->wraps);
        pthread_cond_destroy(&kr->wake);
        pthread_mutex_destroy(&kr->lock);
        free(kr);
        return ERR_INTERNAL;
    }
    return ERR_OK;
}

void rotate_close(struct app *app)
{
    struct keys_rotator *kr = app->rotator;
    if (kr == NULL)
        return;
    pthread_mutex_lock(&kr->lock);
    kr->stop = 1;
    pthread_cond_broadcast(&kr->wake);
    pthread_mutex_unlock(&kr->lock);
    pthread_join(kr->thread, NULL);
    app->rotator = NULL;
    pthread_rwlock_destroy(&kr->wraps);
    pthread_cond_destroy(&kr->wake);
    pthread_mutex_destroy(&kr->lock);
    free(kr);
}

enum err rotate_start(struct app *app, const char *by, int batch, int pause_ms, char *new_kek,
                      size_t new_kek_cap)
{
    struct keys_rotator *kr = app->rotator;
    if (kr == NULL)
        return ERR_UNAVAILABLE;
    if (batch < 1 || batch > ROTATE_BATCH_MAX || pause_ms < 0 || pause_ms > ROTATE_PAUSE_MAX_MS ||
        new_kek == NULL)
        return ERR_INVALID;
    if (app->keys == NULL || app->keys->rotate == NULL)
        return ERR_UNAVAILABLE;
    pthread_mutex_lock(&kr->lock);
    struct keys_rotation_rec rec;
    enum err e = ERR_OK;
    if (kr->running || kr->work || keys_store_rotation_open(app->meta, &rec) == ERR_OK) {
        pthread_mutex_unlock(&kr->lock);
        return ERR_CONFLICT;
    }
    char id[KEYS_KEK_ID_CAP];
    e = keys_rotate(app->keys, id, sizeof(id));
    int64_t rid = 0;
    if (e == ERR_OK)
        e = keys_store_rotation_begin(app->meta, id, by, batch, pause_ms, &rid);
    if (e == ERR_OK) {
        kr->id = rid;
        kr->batch = batch;
        kr->pause_ms = pause_ms;
        kr->rewrapped = 0;
        snprintf(kr->new_kek, sizeof(kr->new_kek), "%s", id);
        snprintf(new_kek, new_kek_cap, "%s", id);
        kr->work = 1;
        pthread_cond_broadcast(&kr->wake);
    }
    /* A new KEK without a record is still picked up: the worker re-wraps
     * whatever is under a retired KEK when it next starts. */
    pthread_mutex_unlock(&kr->lock);
    return e;
}

void rotate_status_get(struct app *app, struct rotate_status *st)
{
    memset(st, 0, sizeof(*st));
    struct keys_rotator *kr = app->rotator;
    if (kr == NULL)
        return;
    pthread_mutex_lock(&kr->lock);
    st->running = kr->running || kr->work;
    st->id = kr->id;
    snprintf(st->new_kek, sizeof(st->new_kek), "%s", kr->new_kek);
    st->rewrapped = kr->rewrapped;
    st->period = kr->period;
    snprintf(st->error, sizeof(st->error), "%s", kr->error);
    pthread_mutex_unlock(&kr->lock);
}

enum err rotate_set_period(struct app *app, int64_t seconds)
{
    struct keys_rotator *kr = app->rotator;
    if (seconds < 0)
        return ERR_INVALID;
    char text[32];
    snprintf(text, sizeof(text), "%" PRId64, seconds);
    enum err e = meta_setting_set(app->meta, ROTATE_SETTING_PERIOD, text);
    if (e == ERR_OK && kr != NULL) {
        pthread_mutex_lock(&kr->lock);
        kr->period = seconds;
        pthread_cond_broadcast(&kr->wake);
        pthread_mutex_unlock(&kr->lock);
    }
    return e;
}

void rotate_wrap_enter(struct app *app)
{
    if (app->rotator != NULL)
        pthread_rwlock_rdlock(&app->rotator->wraps);
}

void rotate_wrap_leave(struct app *app)
{
    if (app->rotator != NULL)
        pthread_rwlock_unlock(&app->rotator->wraps);
}
