#include "app/app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/access.h"
#include "app/retention.h"
#include "app/environments.h"
#include "audit/audit.h"
#include "blob/blob.h"
#include "crypt/stream.h"
#include "keys/migrate.h"
#include "keys/rotate.h"
#include "meta/meta.h"
#include "monitor/monitor.h"
#include "util/log.h"

void app_config_defaults(struct app_config *cfg, const char *data_dir)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", data_dir);
    snprintf(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
    cfg->listen_port = 8443;
    cfg->threads = 4;
    cfg->max_connections = 1024;
    cfg->max_per_ip = 256;
    cfg->timeout_seconds = 60;
    cfg->max_upload_bytes = 64ULL << 30;
    cfg->max_json_bytes = 1 << 20;
    cfg->session_lifetime = 12 * 3600;
    cfg->segment_size = STREAM_DEFAULT_SEGMENT;
}

int app_path(const struct app_config *cfg, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", cfg->data_dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

struct id_set {
    char **ids;
    size_t n, cap;
};

static void id_set_add(const char *id, void *ctx)
{
    struct id_set *s = ctx;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 256;
        char **nids = realloc(s->ids, ncap * sizeof(*nids));
        if (nids == NULL)
            return;
        s->ids = nids;
        s->cap = ncap;
    }
    s->ids[s->n] = strdup(id);
    if (s->ids[s->n] != NULL)
        s->n++;
}

static int id_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int id_set_has(const char *id, void *ctx)
{
    struct id_set *s = ctx;
    return s->n > 0 && bsearch(&id, s->ids, s->n, sizeof(*s->ids), id_cmp) != NULL;
}

/* Removes uploads interrupted by a crash: temporary files, and blobs moved
 * into place whose metadata was never committed. */
static enum err app_cleanup(struct app *app)
{
    struct id_set set = {0};
    enum err e = meta_blob_ids(app->meta, id_set_add, &set);
    if (e == ERR_OK) {
        if (set.n > 0)
            qsort(set.ids, set.n, sizeof(*set.ids), id_cmp);
        unsigned removed = 0;
        e = blob_cleanup(app->blobs, id_set_has, &set, &removed);
        if (removed > 0)
            log_info("removed %u leftover file(s) of interrupted uploads", removed);
    }
    for (size_t i = 0; i < set.n; i++)
        free(set.ids[i]);
    free(set.ids);
    return e;
}

enum err app_open(struct app *app)
{
    char path[1200];
    struct stat sb;
    if (stat(app->cfg.data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        log_error("data directory %s does not exist; run 'coffer init --data %s' first",
                  app->cfg.data_dir, app->cfg.data_dir);
        return ERR_NOT_FOUND;
    }
    if ((sb.st_mode & 0077) != 0) {
        log_error("data directory %s is accessible by other users (mode %03o); run 'chmod 700 "
                  "%s'",
                  app->cfg.data_dir, (unsigned)(sb.st_mode & 0777), app->cfg.data_dir);
        return ERR_FORBIDDEN;
    }
    app_path(&app->cfg, "coffer.db", path, sizeof(path));
    enum err e = meta_open(path, 0, &app->meta);
    if (e != ERR_OK)
        return e;
    char why[256];
    if ((e = access_seed_builtins(app->meta)) != ERR_OK)
        return e;
    if ((e = access_reload(app->meta, why, sizeof(why))) != ERR_OK) {
        log_error("cannot compile the stored access policies: %s", why);
        return e;
    }
    app->envs = malloc(sizeof(*app->envs));
    if (app->envs == NULL)
        return ERR_INTERNAL;
    if ((e = env_config_load(app->cfg.data_dir, app->envs, why, sizeof(why))) != ERR_OK) {
        log_error("cannot load the environments: %s", why);
        return e;
    }
    app_path(&app->cfg, "blobs", path, sizeof(path));
    if ((e = blob_fs_open(path, &app->blobs)) != ERR_OK)
        return e;
    if ((e = keys_open_configured(app->cfg.data_dir,
                                  app->cfg.master_key_file[0] ? app->cfg.master_key_file : NULL,
                                  &app->keys)) != ERR_OK)
        return e;
    app_path(&app->cfg, "audit", path, sizeof(path));
    struct audit_options ao;
    audit_options_init(&ao);
    ao.start_new_segment = app->cfg.audit_new_segment;
    e = audit_log_open(path, &ao, &app->audit);
    if (e == ERR_INTEGRITY) {
        log_error("the audit log in %s fails verification against its last signed head; run "
                  "'coffer audit verify --data %s' to see where, keep a copy for investigation, "
                  "and start with --new-audit-segment to continue in a new, recorded segment",
                  path, app->cfg.data_dir);
        return e;
    }
    if (e == ERR_CONFLICT) {
        log_error("the audit log in %s is in use by another coffer server", path);
        return e;
    }
    if (e != ERR_OK) {
        log_error("cannot open the audit log in %s", path);
        return e;
    }
    if ((e = app_cleanup(app)) != ERR_OK)
        return e;
    if ((e = monitor_open(app)) != ERR_OK) {
        log_error("cannot start monitoring; check %s/monitor.json", app->cfg.data_dir);
        return e;
    }
    if ((e = rotate_open(app)) != ERR_OK)
        return e;
    return retention_open(app);
}

void app_close(struct app *app)
{
    retention_close(app);
    rotate_close(app);
    monitor_close(app);
    audit_log_close(app->audit);
    app->audit = NULL;
    access_unload();
    key_provider_free(app->keys);
    app->keys = NULL;
    blob_fs_close(app->blobs);
    app->blobs = NULL;
    meta_close(app->meta);
    app->meta = NULL;
    free(app->envs);
    app->envs = NULL;
}
