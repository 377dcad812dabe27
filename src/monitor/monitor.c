/*
 * monitor: detector feed, finding responses, holds, webhook sender and the
 * metrics page. See monitor.h.
 */
#include "monitor/monitor.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "api/record.h"
#include "audit/audit.h"
#include "audit/event.h"
#include "keys/keyring.h"
#include "meta/monitor_store.h"
#include "monitor/anomaly.h"
#include "monitor/metrics.h"
#include "util/log.h"
#include "util/secure.h"

#define MONITOR_CONFIG_MAX (256 * 1024)
#define MONITOR_QUEUE_MAX 1000
#define MONITOR_REPLAY_DEFAULT 100000
#define MONITOR_URL_MAX 1024
#define MONITOR_SECRET_MAX 256

enum monitor_response { RESP_RECORD = 1, RESP_WEBHOOK = 2, RESP_STEPUP = 4, RESP_SUSPEND = 8 };

struct hold {
    char principal[ANOMALY_PRINCIPAL_MAX];
    char kind[8];
    int64_t since;
};

struct webhook_msg {
    struct webhook_msg *next;
    char *body;
};

struct monitor {
    struct app *app;
    pthread_mutex_t lock; /* the detector */
    struct anomaly_detector *det;
    unsigned responses[ANOMALY_RULE_COUNT];
    /* holds, mirrored from the store */
    pthread_mutex_t holds_lock;
    struct hold *holds;
    size_t n_holds;
    /* webhook */
    char url[MONITOR_URL_MAX];
    char secret[MONITOR_SECRET_MAX];
    pthread_t thread;
    int thread_started;
    pthread_mutex_t q_lock;
    pthread_cond_t q_cond;
    struct webhook_msg *q_head, *q_tail;
    size_t q_len;
    int stopping;
};

/* ---- holds ------------------------------------------------------------------- */

static void monitor_holds_reload(struct monitor *mon)
{
    json_t *list = NULL;
    if (meta_hold_list(mon->app->meta, &list) != ERR_OK)
        return;
    size_t n = json_array_size(list);
    struct hold *h = n > 0 ? calloc(n, sizeof(*h)) : NULL;
    if (n > 0 && h == NULL) {
        json_decref(list);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(list, i);
        snprintf(h[i].principal, sizeof(h[i].principal), "%s",
                 json_string_value(json_object_get(o, "principal")));
        snprintf(h[i].kind, sizeof(h[i].kind), "%s", json_string_value(json_object_get(o, "kind")));
        h[i].since = (int64_t)json_integer_value(json_object_get(o, "since"));
    }
    json_decref(list);
    pthread_mutex_lock(&mon->holds_lock);
    free(mon->holds);
    mon->holds = h;
    mon->n_holds = n;
    pthread_mutex_unlock(&mon->holds_lock);
}

/* The hold of kind on principal: its start time, or -1. */
static int64_t monitor_hold_since(struct monitor *mon, const char *principal, const char *kind)
{
    int64_t since = -1;
    pthread_mutex_lock(&mon->holds_lock);
    for (size_t i = 0; i < mon->n_holds; i++) {
        if (strcmp(mon->holds[i].principal, principal) == 0 &&
            strcmp(mon->holds[i].kind, kind) == 0)
            since = mon->holds[i].since;
    }
    pthread_mutex_unlock(&mon->holds_lock);
    return since;
}

int monitor_is_suspended(struct app *app, const char *principal)
{
    if (app == NULL || app->monitor == NULL || principal == NULL)
        return 0;
    return monitor_hold_since(app->monitor, principal, META_HOLD_SUSPEND) >= 0;
}

enum err monitor_clear_hold(struct app *app, const char *principal, const char *kind)
{
    if (app->monitor == NULL)
        return ERR_UNAVAILABLE;
    enum err e = meta_hold_clear(app->meta, principal, kind);
    monitor_holds_reload(app->monitor);
    return e;
}

static enum err monitor_block(struct request *r, const char *principal, int suspend)
{
    metrics_blocked();
    struct record rec = {.action = "auth:Blocked",
                         .resource = principal,
                         .allow = 0,
                         .reason = suspend ? "principal suspended by an anomaly response"
                                           : "step-up MFA required by an anomaly response",
                         .status = suspend ? 403 : 401};
    enum err e = api_record(r, &rec);
    if (e != ERR_OK)
        return e;
    if (suspend)
        return http_fail(r, ERR_FORBIDDEN,
                         "%s is suspended after a security alert; an administrator must review "
                         "it and run 'coffer alerts clear-suspension %s'",
                         principal, principal);
    return http_fail(r, ERR_UNAUTHENTICATED,
                     "a security alert requires multi-factor authentication again; run 'coffer "
                     "login' with your one-time code");
}

enum err monitor_check_principal(struct request *r)
{
    struct monitor *mon = r->app->monitor;
    if (mon == NULL || !r->authenticated)
        return ERR_OK;
    pthread_mutex_lock(&mon->holds_lock);
    size_t n = mon->n_holds;
    pthread_mutex_unlock(&mon->holds_lock);
    if (n == 0)
        return ERR_OK;
    char who[2][ANOMALY_PRINCIPAL_MAX];
    int nwho = 1;
    snprintf(who[0], sizeof(who[0]), "%s:%s", r->who.type, r->who.name);
    if (r->who.token_id != 0 && r->who.owner[0] != '\0') {
        /* A token of a suspended owner is suspended too. */
        snprintf(who[1], sizeof(who[1]), "user:%s", r->who.owner);
        nwho = 2;
    }
    for (int i = 0; i < nwho; i++) {
        if (monitor_hold_since(mon, who[i], META_HOLD_SUSPEND) >= 0)
            return monitor_block(r, who[i], 1);
    }
    int64_t since = monitor_hold_since(mon, who[0], META_HOLD_STEPUP);
    if (since >= 0 && !(r->who.mfa && r->who.mfa_at >= since)) {
        /* Stepping up must stay possible. */
        if (strcmp(r->path, "/v1/auth/mfa") == 0 || strcmp(r->path, "/v1/auth/logout") == 0 ||
            strcmp(r->path, "/v1/auth/whoami") == 0)
            return ERR_OK;
        return monitor_block(r, who[0], 0);
    }
    return ERR_OK;
}

/* ---- webhook ----------------------------------------------------------------- */

void monitor_sign(const char *secret, const char *body, size_t len, char *out, size_t cap)
{
    uint8_t mac[32];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac,
         &mac_len);
    char hex[65];
    hex_encode(mac, 32, hex);
    snprintf(out, cap, "sha256=%s", hex);
    secure_wipe(mac, sizeof(mac));
}

static size_t monitor_discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

static int monitor_post(struct monitor *mon, const char *body)
{
    CURL *c = curl_easy_init();
    if (c == NULL)
        return -1;
    char sig[96], hdr[128];
    monitor_sign(mon->secret, body, strlen(body), sig, sizeof(sig));
    snprintf(hdr, sizeof(hdr), "X-Coffer-Signature: %s", sig);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, hdr);
    h = curl_slist_append(h, "User-Agent: coffer-alerts/1");
    curl_easy_setopt(c, CURLOPT_URL, mon->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, monitor_discard);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc == CURLE_OK && status >= 200 && status < 300 ? 0 : -1;
}

static void *monitor_sender(void *arg)
{
    struct monitor *mon = arg;
    for (;;) {
        pthread_mutex_lock(&mon->q_lock);
        while (mon->q_head == NULL && !mon->stopping)
            pthread_cond_wait(&mon->q_cond, &mon->q_lock);
        struct webhook_msg *m = mon->q_head;
        if (m == NULL) {
            pthread_mutex_unlock(&mon->q_lock);
            return NULL;
        }
        mon->q_head = m->next;
        if (mon->q_head == NULL)
            mon->q_tail = NULL;
        mon->q_len--;
        int stopping = mon->stopping;
        pthread_mutex_unlock(&mon->q_lock);
        int ok = 0;
        for (int attempt = 0; attempt < (stopping ? 1 : 3) && !ok; attempt++) {
            if (attempt > 0)
                sleep((unsigned)attempt);
            ok = monitor_post(mon, m->body) == 0;
        }
        metrics_webhook(ok);
        if (!ok)
            log_warn("monitor: could not deliver an alert to the webhook");
        free(m->body);
        free(m);
    }
}

static void monitor_enqueue(struct monitor *mon, char *body)
{
    struct webhook_msg *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        free(body);
        return;
    }
    m->body = body;
    pthread_mutex_lock(&mon->q_lock);
    if (mon->q_len >= MONITOR_QUEUE_MAX || !mon->thread_started) {
        pthread_mutex_unlock(&mon->q_lock);
        log_warn("monitor: webhook queue full; alert not sent (it is stored: 'coffer alerts')");
        metrics_webhook(0);
        free(body);
        free(m);
        return;
    }
    if (mon->q_tail != NULL)
        mon->q_tail->next = m;
    else
        mon->q_head = m;
    mon->q_tail = m;
    mon->q_len++;
    pthread_cond_signal(&mon->q_cond);
    pthread_mutex_unlock(&mon->q_lock);
}

/* ---- findings ---------------------------------------------------------------- */

static json_t *monitor_response_names(unsigned r)
{
    json_t *a = json_array();
    if (r & RESP_RECORD)
        json_array_append_new(a, json_string("record"));
    if (r & RESP_WEBHOOK)
        json_array_append_new(a, json_string("webhook"));
    if (r & RESP_STEPUP)
        json_array_append_new(a, json_string("stepup"));
    if (r & RESP_SUSPEND)
        json_array_append_new(a, json_string("suspend"));
    return a;
}

static void monitor_on_finding(void *ctx, const struct anomaly_finding *f)
{
    struct monitor *mon = ctx;
    unsigned resp = mon->responses[f->rule];
    json_t *events = json_array();
    for (size_t i = 0; i < f->n_events; i++)
        json_array_append_new(events, json_integer((json_int_t)f->events[i]));
    json_t *names = monitor_response_names(resp);
    const char *rule = anomaly_rule_name(f->rule);
    const char *sev = anomaly_severity_name(f->severity);
    struct meta_finding mf = {rule,       sev,         f->principal, f->time,
                              f->summary, f->evidence, events,       names};
    int64_t id = 0;
    metrics_finding((int)f->rule);
    log_warn("monitor: %s finding %s for %s: %s", sev, rule, f->principal, f->summary);
    if (meta_finding_add(mon->app->meta, &mf, &id) != ERR_OK)
        log_error("monitor: cannot store a finding");
    char reason[320];
    snprintf(reason, sizeof(reason), "%s (finding %lld)", rule, (long long)id);
    int64_t now = (int64_t)time(NULL);
    int holds = 0;
    if (resp & RESP_SUSPEND) {
        holds |= meta_hold_set(mon->app->meta, f->principal, META_HOLD_SUSPEND, now, id, reason) ==
                 ERR_OK;
    }
    if (resp & RESP_STEPUP) {
        holds |= meta_hold_set(mon->app->meta, f->principal, META_HOLD_STEPUP, now, id, reason) ==
                 ERR_OK;
    }
    if (holds)
        monitor_holds_reload(mon);
    if ((resp & RESP_WEBHOOK) && mon->url[0] != '\0') {
        char t[32];
        time_t tt = (time_t)f->time;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *msg = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:O, s:O, s:O}", "type",
                                "coffer.finding", "id", (json_int_t)id, "rule", rule, "severity",
                                sev, "principal", f->principal, "time", t, "summary", f->summary,
                                "evidence", f->evidence, "events", events, "responses", names);
        char *body = msg != NULL ? json_dumps(msg, JSON_COMPACT) : NULL;
        json_decref(msg);
        if (body != NULL)
            monitor_enqueue(mon, body);
    }
    json_decref(events);
    json_decref(names);
}

void monitor_observe(struct app *app, const struct audit_event *ev, uint64_t index)
{
    metrics_event(ev->action, ev->allow, ev->status);
    struct monitor *mon = app->monitor;
    if (mon == NULL)
        return;
    struct anomaly_event ae = {.index = index,
                               .time = (int64_t)time(NULL),
                               .principal = ev->principal,
                               .auth_method = ev->auth_method,
                               .source_ip = ev->source_ip,
                               .action = ev->action,
                               .resource = ev->resource,
                               .allow = ev->allow,
                               .status = ev->status,
                               .bytes = ev->bytes,
                               .sensitivity = -1};
    json_t *s = ev->detail != NULL ? json_object_get(ev->detail, "sensitivity") : NULL;
    if (json_is_integer(s))
        ae.sensitivity = (int)json_integer_value(s);
    else if (json_is_string(s))
        ae.sensitivity = meta_sensitivity_level(json_string_value(s));
    pthread_mutex_lock(&mon->lock);
    anomaly_feed(mon->det, &ae);
    pthread_mutex_unlock(&mon->lock);
}

/* ---- configuration ----------------------------------------------------------- */

static int monitor_parse_responses(json_t *arr, unsigned *out, char *why, size_t cap)
{
    *out = 0;
    size_t i;
    json_t *v;
    if (!json_is_array(arr)) {
        snprintf(why, cap, "each entry of \"responses\" must be an array of names");
        return -1;
    }
    json_array_foreach(arr, i, v)
    {
        const char *n = json_string_value(v);
        if (n != NULL && strcmp(n, "record") == 0)
            *out |= RESP_RECORD;
        else if (n != NULL && strcmp(n, "webhook") == 0)
            *out |= RESP_WEBHOOK;
        else if (n != NULL && strcmp(n, "stepup") == 0)
            *out |= RESP_STEPUP;
        else if (n != NULL && strcmp(n, "suspend") == 0)
            *out |= RESP_SUSPEND;
        else {
            snprintf(why, cap, "unknown response \"%s\" (use record, webhook, stepup, suspend)",
                     n != NULL ? n : "?");
            return -1;
        }
    }
    *out |= RESP_RECORD;
    return 0;
}

static enum err monitor_configure(struct monitor *mon, json_t *cfg, struct anomaly_config *ac,
                                  int64_t *replay, char *why, size_t cap)
{
    const char *key;
    json_t *v;
    json_object_foreach(cfg, key, v)
    {
        if (strcmp(key, "detector") == 0) {
            if (anomaly_config_from_json(v, ac, why, cap) != ERR_OK)
                return ERR_INVALID;
        } else if (strcmp(key, "replay_events") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > 10000000) {
                snprintf(why, cap, "\"replay_events\" must be an integer in [0, 10000000]");
                return ERR_INVALID;
            }
            *replay = (int64_t)json_integer_value(v);
        } else if (strcmp(key, "webhook") == 0) {
            const char *url = json_string_value(json_object_get(v, "url"));
            const char *secret = json_string_value(json_object_get(v, "secret"));
            if (url == NULL || secret == NULL || strlen(url) >= sizeof(mon->url) ||
                strlen(secret) < 16 || strlen(secret) >= sizeof(mon->secret) ||
                (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)) {
                snprintf(why, cap,
                         "\"webhook\" needs an http(s) \"url\" and a \"secret\" of "
                         "16 to 255 characters");
                return ERR_INVALID;
            }
            snprintf(mon->url, sizeof(mon->url), "%s", url);
            snprintf(mon->secret, sizeof(mon->secret), "%s", secret);
        } else if (strcmp(key, "responses") == 0 && json_is_object(v)) {
            const char *rule;
            json_t *arr;
            json_object_foreach(v, rule, arr)
            {
                int r = anomaly_rule_from_name(rule);
                if (r < 0) {
                    snprintf(why, cap, "unknown rule \"%s\" in \"responses\"", rule);
                    return ERR_INVALID;
                }
                if (monitor_parse_responses(arr, &mon->responses[r], why, cap) != 0)
                    return ERR_INVALID;
            }
        } else {
            snprintf(why, cap, "unknown key \"%s\"", key);
            return ERR_INVALID;
        }
    }
    return ERR_OK;
}

static enum err monitor_load_config(struct monitor *mon, struct anomaly_config *ac, int64_t *replay)
{
    char path[1200], why[256];
    app_path(&mon->app->cfg, "monitor.json", path, sizeof(path));
    struct stat sb;
    if (stat(path, &sb) != 0)
        return errno == ENOENT ? ERR_OK : ERR_IO;
    if (sb.st_size > MONITOR_CONFIG_MAX) {
        log_error("%s is larger than 256 KiB", path);
        return ERR_INVALID;
    }
    if ((sb.st_mode & 0077) != 0)
        log_warn("%s can be read by other users (mode %03o); run 'chmod 600 %s'", path,
                 (unsigned)(sb.st_mode & 0777), path);
    json_error_t jerr;
    json_t *cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(cfg)) {
        log_error("%s: not a JSON object (line %d: %s)", path, jerr.line, jerr.text);
        json_decref(cfg);
        return ERR_INVALID;
    }
    enum err e = monitor_configure(mon, cfg, ac, replay, why, sizeof(why));
    json_decref(cfg);
    if (e != ERR_OK)
        log_error("%s: %s", path, why);
    return e;
}

/* ---- replay ------------------------------------------------------------------ */

static int monitor_replay_one(void *ctx, uint64_t index, const char *json, size_t len)
{
    struct monitor *mon = ctx;
    struct anomaly_event ev;
    json_t *holder = NULL;
    if (anomaly_event_from_json(json, len, index, &ev, &holder) == ERR_OK)
        anomaly_feed(mon->det, &ev);
    json_decref(holder);
    return 0;
}

/* ---- open / close ------------------------------------------------------------ */

enum err monitor_open(struct app *app)
{
    struct monitor *mon = calloc(1, sizeof(*mon));
    if (mon == NULL)
        return ERR_INTERNAL;
    mon->app = app;
    pthread_mutex_init(&mon->lock, NULL);
    pthread_mutex_init(&mon->holds_lock, NULL);
    pthread_mutex_init(&mon->q_lock, NULL);
    pthread_cond_init(&mon->q_cond, NULL);
    for (int r = 0; r < ANOMALY_RULE_COUNT; r++)
        mon->responses[r] = RESP_RECORD | RESP_WEBHOOK;
    struct anomaly_config ac;
    anomaly_config_defaults(&ac);
    int64_t replay = MONITOR_REPLAY_DEFAULT;
    app->monitor = mon;
    enum err e = monitor_load_config(mon, &ac, &replay);
    if (e != ERR_OK) {
        monitor_close(app);
        return e;
    }
    mon->det = anomaly_new(&ac, monitor_on_finding, mon);
    if (mon->det == NULL) {
        monitor_close(app);
        return ERR_INTERNAL;
    }
    monitor_holds_reload(mon);
    if (app->audit != NULL && replay > 0) {
        uint64_t size = audit_log_size(app->audit);
        uint64_t from = size > (uint64_t)replay ? size - (uint64_t)replay : 0;
        anomaly_set_muted(mon->det, 1);
        if (audit_log_iter(app->audit, from, monitor_replay_one, mon) != ERR_OK)
            log_warn("monitor: could not replay the audit log; baselines start empty");
        anomaly_set_muted(mon->det, 0);
        log_info("monitor: learned baselines of %zu principal(s) from %llu event(s)",
                 anomaly_principals(mon->det), (unsigned long long)(size - from));
    }
    if (mon->url[0] != '\0') {
        if (pthread_create(&mon->thread, NULL, monitor_sender, mon) != 0) {
            monitor_close(app);
            return ERR_INTERNAL;
        }
        mon->thread_started = 1;
    }
    return ERR_OK;
}

void monitor_close(struct app *app)
{
    struct monitor *mon = app->monitor;
    if (mon == NULL)
        return;
    if (mon->thread_started) {
        pthread_mutex_lock(&mon->q_lock);
        mon->stopping = 1;
        pthread_cond_signal(&mon->q_cond);
        pthread_mutex_unlock(&mon->q_lock);
        pthread_join(mon->thread, NULL);
    }
    while (mon->q_head != NULL) {
        struct webhook_msg *m = mon->q_head;
        mon->q_head = m->next;
        free(m->body);
        free(m);
    }
    anomaly_free(mon->det);
    free(mon->holds);
    secure_wipe(mon->secret, sizeof(mon->secret));
    pthread_mutex_destroy(&mon->lock);
    pthread_mutex_destroy(&mon->holds_lock);
    pthread_mutex_destroy(&mon->q_lock);
    pthread_cond_destroy(&mon->q_cond);
    free(mon);
    app->monitor = NULL;
}

/* ---- metrics ----------------------------------------------------------------- */

void monitor_request_done(struct request *r)
{
    if (r->route == NULL && r->status == 0 && !r->responded)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    int route = r->route != NULL ? (int)(r->route - api_routes) : -1;
    if (r->route != NULL && r->route->auth && !r->authenticated && r->err == ERR_UNAUTHENTICATED)
        metrics_auth_failure();
    int status = r->status;
    if (status == 0 && r->err != ERR_OK)
        status = err_info(r->err)->http_status;
    metrics_request(route, status, now_us - r->started_us, r->body_bytes, r->bytes_out);
}

int64_t monitor_last_head_ms(struct app *app)
{
    char path[1200];
    app_path(&app->cfg, "audit/heads.log", path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat sb;
    char buf[1025];
    ssize_t n = -1;
    if (fstat(fd, &sb) == 0 && sb.st_size > 0) {
        off_t off = sb.st_size > 1024 ? sb.st_size - 1024 : 0;
        n = pread(fd, buf, 1024, off);
    }
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    char *line = strrchr(buf, '\n');
    line = line != NULL ? line + 1 : buf;
    json_t *o = json_loads(line, 0, NULL);
    int64_t ms = json_is_integer(json_object_get(o, "timestamp"))
                     ? (int64_t)json_integer_value(json_object_get(o, "timestamp"))
                     : -1;
    json_decref(o);
    return ms;
}

static void monitor_write_app(FILE *f, struct app *app)
{
    int64_t now = (int64_t)time(NULL);
    if (app->audit != NULL) {
        struct audit_stats st;
        audit_log_stats(app->audit, &st);
        fprintf(f,
                "# HELP coffer_audit_events Events in the audit log.\n"
                "# TYPE coffer_audit_events gauge\ncoffer_audit_events %llu\n"
                "# HELP coffer_audit_unsigned_events Events not yet covered by a signed head.\n"
                "# TYPE coffer_audit_unsigned_events gauge\ncoffer_audit_unsigned_events %llu\n"
                "# HELP coffer_audit_failed 1 when the audit log has failed closed.\n"
                "# TYPE coffer_audit_failed gauge\ncoffer_audit_failed %d\n"
                "# HELP coffer_audit_flushes_total Writes with fdatasync of queued events "
                "(events per flush shows how well answers share a sync).\n"
                "# TYPE coffer_audit_flushes_total counter\ncoffer_audit_flushes_total %llu\n",
                (unsigned long long)st.events, (unsigned long long)(st.events - st.last_head_size),
                st.failed, (unsigned long long)st.flushes);
        fprintf(f,
                "# HELP coffer_audit_log_bytes Bytes of events in events.log (the file also "
                "holds up to 1 MiB of zero bytes allocated ahead).\n"
                "# TYPE coffer_audit_log_bytes gauge\ncoffer_audit_log_bytes %llu\n",
                (unsigned long long)st.bytes);
        int64_t ms = monitor_last_head_ms(app);
        if (ms >= 0) {
            struct timeval tv;
            gettimeofday(&tv, NULL);
            int64_t now_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
            fprintf(f,
                    "# HELP coffer_audit_last_head_age_seconds Age of the last signed tree "
                    "head.\n# TYPE coffer_audit_last_head_age_seconds gauge\n"
                    "coffer_audit_last_head_age_seconds %.3f\n",
                    (double)(now_ms - ms) / 1000.0);
        }
    }
    size_t nkeks = keys_kek_count(app->keys);
    if (nkeks > 0) {
        fprintf(f, "# HELP coffer_kek_age_seconds Age of each key-encryption key.\n"
                   "# TYPE coffer_kek_age_seconds gauge\n");
        for (size_t i = 0; i < nkeks; i++) {
            struct keys_kek_info ki;
            if (keys_kek_info(app->keys, i, &ki) == ERR_OK)
                fprintf(f, "coffer_kek_age_seconds{kek=\"%s\",state=\"%s\"} %lld\n", ki.id,
                        ki.current ? "current" : "retired", (long long)(now - ki.created));
        }
    }
    if (app->meta != NULL) {
        int64_t shares = -1, tokens = -1;
        meta_monitor_counts(app->meta, now, &shares, &tokens);
        if (shares >= 0)
            fprintf(f,
                    "# HELP coffer_share_links_active Share links neither expired, revoked nor "
                    "used up.\n# TYPE coffer_share_links_active gauge\n"
                    "coffer_share_links_active %lld\n",
                    (long long)shares);
        if (tokens >= 0)
            fprintf(f,
                    "# HELP coffer_api_tokens_active API tokens neither expired nor revoked.\n"
                    "# TYPE coffer_api_tokens_active gauge\ncoffer_api_tokens_active %lld\n",
                    (long long)tokens);
        uint64_t hits = 0, misses = 0;
        meta_memo_counts(app->meta, &hits, &misses);
        fprintf(f,
                "# HELP coffer_store_cache_lookups_total Per-request lookups (session, user, "
                "groups, version, description) answered from the store's cache or read.\n"
                "# TYPE coffer_store_cache_lookups_total counter\n"
                "coffer_store_cache_lookups_total{result=\"hit\"} %llu\n"
                "coffer_store_cache_lookups_total{result=\"miss\"} %llu\n",
                (unsigned long long)hits, (unsigned long long)misses);
    }
    struct monitor *mon = app->monitor;
    if (mon != NULL) {
        size_t susp = 0, step = 0;
        pthread_mutex_lock(&mon->holds_lock);
        for (size_t i = 0; i < mon->n_holds; i++) {
            susp += strcmp(mon->holds[i].kind, META_HOLD_SUSPEND) == 0;
            step += strcmp(mon->holds[i].kind, META_HOLD_STEPUP) == 0;
        }
        pthread_mutex_unlock(&mon->holds_lock);
        pthread_mutex_lock(&mon->lock);
        size_t tracked = anomaly_principals(mon->det);
        pthread_mutex_unlock(&mon->lock);
        fprintf(f,
                "# HELP coffer_holds Principals held by anomaly responses.\n"
                "# TYPE coffer_holds gauge\ncoffer_holds{kind=\"suspend\"} %zu\n"
                "coffer_holds{kind=\"stepup\"} %zu\n"
                "# HELP coffer_anomaly_principals Principals with a learned baseline.\n"
                "# TYPE coffer_anomaly_principals gauge\ncoffer_anomaly_principals %zu\n",
                susp, step, tracked);
    }
}

enum err monitor_metrics_text(struct app *app, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = open_memstream(out, len);
    if (f == NULL)
        return ERR_INTERNAL;
    metrics_write(f);
    monitor_write_app(f, app);
    if (fclose(f) != 0) {
        free(*out);
        *out = NULL;
        return ERR_INTERNAL;
    }
    return ERR_OK;
}
