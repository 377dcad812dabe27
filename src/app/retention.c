/*
 * Crypto-shredding and the retention job.
 */
#include "app/retention.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "audit/audit.h"
#include "audit/event.h"
#include "blob/blob.h"
#include "meta/access.h"
#include "meta/compliance_store.h"
#include "util/log.h"

struct retention_job {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
    int64_t interval;
};

enum err retention_erase_version(struct app *app, json_t *v, const char *by, const char *reason,
                                 int *blob_removed)
{
    *blob_removed = 0;
    int blob_free = 0;
    int64_t id = (int64_t)json_integer_value(json_object_get(v, "version_id"));
    enum err e = compliance_erase_version(app->meta, id, by, reason, &blob_free);
    if (e != ERR_OK)
        return e;
    const char *blob = json_string_value(json_object_get(v, "blob_id"));
    if (blob_free && blob != NULL && blob_id_valid(blob)) {
        if (blob_remove(app->blobs, blob) == ERR_OK)
            *blob_removed = 1;
        else
            log_error("erase: the blob of %s@%lld could not be deleted; its data key is gone, "
                      "and the next start removes it",
                      json_string_value(json_object_get(v, "path")),
                      (long long)json_integer_value(json_object_get(v, "version")));
    }
    return ERR_OK;
}

static void retention_audit(struct app *app, const char *action, const char *resource, int allow,
                            const char *reason, const char *sha256, json_t *detail)
{
    struct audit_event ev = {.principal = "system:retention",
                             .auth_method = "none",
                             .action = action,
                             .resource = resource,
                             .allow = allow,
                             .reason = reason,
                             .sha256 = sha256,
                             .detail = detail};
    char *text = NULL;
    size_t len = 0;
    if (app->audit == NULL || audit_event_encode(&ev, &text, &len) != ERR_OK ||
        audit_log_append(app->audit, text, len, NULL) != ERR_OK)
        log_error("retention: cannot record '%s' for %s in the audit log", reason, resource);
    free(text);
}

/* Applies one rule; appends to acted and kept. */
static enum err retention_apply(struct app *app, const struct compliance_rule *rule, int dry_run,
                                int64_t now, json_t *acted, json_t *kept)
{
    json_t *due = NULL;
    enum err e = compliance_rule_due(app->meta, rule, now, RETENTION_MAX_PER_RUN, &due);
    if (e != ERR_OK)
        return e;
    int erase = strcmp(rule->action, "erase") == 0;
    char reason[160];
    snprintf(reason, sizeof(reason), "retention rule %lld: %s %lld s after upload",
             (long long)rule->id, rule->action, (long long)rule->after_seconds);
    size_t i;
    json_t *v;
    json_array_foreach(due, i, v)
    {
        const char *path = json_string_value(json_object_get(v, "path"));
        char ref[700], why[300];
        snprintf(ref, sizeof(ref), "%s@%lld", path,
                 (long long)json_integer_value(json_object_get(v, "version")));
        const char *sha = json_string_value(json_object_get(v, "sha256"));
        json_t *detail =
            json_pack("{s:I, s:s}", "rule", (json_int_t)rule->id, "action", rule->action);
        enum err b = compliance_blocked(app->meta, path, now, why, sizeof(why));
        if (b == ERR_CONFLICT) {
            json_array_append_new(kept, json_pack("{s:s, s:s}", "ref", ref, "why", why));
            if (!dry_run)
                retention_audit(app, erase ? "artifact:Erase" : "artifact:Delete", ref, 0, why, sha,
                                detail);
            json_decref(detail);
            continue;
        }
        if (b != ERR_OK) {
            json_decref(detail);
            e = b;
            break;
        }
        json_array_append_new(acted, json_pack("{s:s, s:s, s:I}", "ref", ref, "action",
                                               rule->action, "rule", (json_int_t)rule->id));
        if (dry_run) {
            json_decref(detail);
            continue;
        }
        enum err a;
        if (erase) {
            int removed = 0;
            a = retention_erase_version(app, v, "system:retention", reason, &removed);
            json_object_set_new(detail, "blob_removed", json_boolean(removed));
        } else {
            a = meta_version_tombstone(
                app->meta, (int64_t)json_integer_value(json_object_get(v, "version_id")),
                "system:retention");
        }
        if (a == ERR_OK)
            retention_audit(app, erase ? "artifact:Erase" : "artifact:Delete", ref, 1, reason, sha,
                            detail);
        else if (a != ERR_GONE && a != ERR_NOT_FOUND)
            log_error("retention: %s of %s failed: %s", rule->action, ref, err_info(a)->message);
        json_decref(detail);
    }
    json_decref(due);
    return e;
}

enum err retention_run(struct app *app, int dry_run, json_t **report)
{
    json_t *rules = NULL;
    enum err e = compliance_rule_list(app->meta, &rules);
    if (e != ERR_OK)
        return e;
    json_t *acted = json_array(), *kept = json_array();
    int64_t now = (int64_t)time(NULL);
    size_t i;
    json_t *o;
    json_array_foreach(rules, i, o)
    {
        struct compliance_rule rule;
        compliance_rule_from_json(o, &rule);
        if ((e = retention_apply(app, &rule, dry_run, now, acted, kept)) != ERR_OK)
            break;
    }
    json_decref(rules);
    if (e != ERR_OK) {
        json_decref(acted);
        json_decref(kept);
        return e;
    }
    if (json_array_size(acted) > 0 || json_array_size(kept) > 0)
        log_info("retention%s: %zu version(s) due, %zu kept by holds or locks",
                 dry_run ? " (dry run)" : "", json_array_size(acted), json_array_size(kept));
    if (report != NULL)
        *report = json_pack("{s:b, s:o, s:o}", "dry_run", dry_run, "applied", acted, "kept", kept);
    else {
        json_decref(acted);
        json_decref(kept);
    }
    return ERR_OK;
}

static void *retention_main(void *arg)
{
    struct app *app = arg;
    struct retention_job *job = app->retention;
    pthread_mutex_lock(&job->lock);
    while (!job->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += job->interval;
        pthread_cond_timedwait(&job->wake, &job->lock, &ts);
        if (job->stop)
            break;
        pthread_mutex_unlock(&job->lock);
        if (retention_run(app, 0, NULL) != ERR_OK)
            log_error("retention: the run failed; it is retried at the next interval");
        pthread_mutex_lock(&job->lock);
    }
    pthread_mutex_unlock(&job->lock);
    return NULL;
}

enum err retention_open(struct app *app)
{
    struct retention_job *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return ERR_INTERNAL;
    job->interval = RETENTION_DEFAULT_INTERVAL;
    char text[32];
    if (meta_setting_get(app->meta, RETENTION_SETTING_INTERVAL, text, sizeof(text)) == ERR_OK) {
        long long v = strtoll(text, NULL, 10);
        if (v >= 1 && v <= 30LL * 86400)
            job->interval = v;
    }
    pthread_mutex_init(&job->lock, NULL);
    pthread_cond_init(&job->wake, NULL);
    app->retention = job;
    if (pthread_create(&job->thread, NULL, retention_main, app) != 0) {
        app->retention = NULL;
        pthread_cond_destroy(&job->wake);
        pthread_mutex_destroy(&job->lock);
        free(job);
        return ERR_INTERNAL;
    }
    return ERR_OK;
}

void retention_close(struct app *app)
{
    struct retention_job *job = app->retention;
    if (job == NULL)
        return;
    pthread_mutex_lock(&job->lock);
    job->stop = 1;
    pthread_cond_broadcast(&job->wake);
    pthread_mutex_unlock(&job->lock);
    pthread_join(job->thread, NULL);
    app->retention = NULL;
    pthread_cond_destroy(&job->wake);
    pthread_mutex_destroy(&job->lock);
    free(job);
}
