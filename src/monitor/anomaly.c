/*
 * anomaly: per-principal baselines and rules over the audit stream. See
 * anomaly.h for the rules; docs/MONITORING.md for their tuning.
 */
#include "monitor/anomaly.h"
#include "util/str.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ANOMALY_BUCKETS 4096
#define ANOMALY_NETS 32
#define ANOMALY_SET 256
#define ANOMALY_RING 64
#define ANOMALY_TOKEN_NETS 8

struct recent_net {
    uint64_t net;
    int64_t time;
    uint64_t index;
};

struct pstate {
    struct pstate *next;
    char name[ANOMALY_PRINCIPAL_MAX];
    uint64_t events;
    int64_t first_seen;
    int64_t last_seen;
    /* hour-of-day activity profile */
    double hours[24];
    double hours_total;
    int64_t off_fired_until;
    /* source networks seen, least recently used replaced first */
    uint64_t nets[ANOMALY_NETS];
    int64_t net_used[ANOMALY_NETS];
    size_t n_nets;
    /* the current rate window */
    int64_t win_id;
    int win_active;
    int64_t win_bytes;
    uint64_t arts[ANOMALY_SET];
    size_t n_arts;
    uint64_t projs[ANOMALY_SET];
    size_t n_projs;
    uint64_t dl_idx[ANOMALY_MAX_EVENT_IDS];
    size_t n_dl;
    uint64_t proj_idx[ANOMALY_MAX_EVENT_IDS];
    size_t n_proj_idx;
    int bulk_fired;
    int proj_fired;
    /* baselines: exponentially weighted means over active windows */
    double base_bytes, base_arts, base_projs;
    int hist_windows;
    /* denied requests */
    int64_t deny_t[ANOMALY_RING];
    uint64_t deny_idx[ANOMALY_RING];
    size_t deny_n, deny_pos;
    int64_t deny_fired_until;
    /* networks of an API token */
    struct recent_net tok[ANOMALY_TOKEN_NETS];
    size_t n_tok;
    int64_t tok_fired_until;
};

struct anomaly_detector {
    struct anomaly_config cfg;
    anomaly_finding_fn fn;
    void *ctx;
    int muted;
    size_t n_principals;
    struct pstate *buckets[ANOMALY_BUCKETS];
};

static const char *const rule_names[ANOMALY_RULE_COUNT] = {
    "bulk_download", "new_network", "off_hours", "deny_burst", "token_networks", "project_sweep",
};
static const char *const severity_names[] = {"low", "medium", "high"};

const char *anomaly_rule_name(enum anomaly_rule r)
{
    return (int)r >= 0 && r < ANOMALY_RULE_COUNT ? rule_names[r] : NULL;
}

const char *anomaly_severity_name(enum anomaly_severity s)
{
    return (int)s >= 0 && s <= ANOMALY_HIGH ? severity_names[s] : NULL;
}

int anomaly_rule_from_name(const char *name)
{
    for (int i = 0; name != NULL && i < ANOMALY_RULE_COUNT; i++) {
        if (strcmp(name, rule_names[i]) == 0)
            return i;
    }
    return -1;
}

void anomaly_config_defaults(struct anomaly_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->window = 86400;
    cfg->alpha = 0.3;
    cfg->min_history_windows = 3;
    cfg->bulk_factor = 10.0;
    cfg->bulk_min_bytes = 100LL << 20;
    cfg->bulk_min_artifacts = 20;
    cfg->bulk_abs_bytes = 10LL << 30;
    cfg->network_min_events = 20;
    cfg->network_min_age = 7 * 86400;
    cfg->off_hours_share = 0.02;
    cfg->off_hours_min_events = 50;
    cfg->tz_offset = 0;
    cfg->deny_count = 10;
    cfg->deny_window = 300;
    cfg->token_networks = 3;
    cfg->token_window = 3600;
    cfg->projects_factor = 3.0;
    cfg->projects_min = 5;
    cfg->max_principals = 100000;
}

enum anomaly_field_type { F_I64, F_INT, F_DBL, F_SIZE };

struct anomaly_field {
    const char *name;
    enum anomaly_field_type type;
    size_t off;
    double min, max;
};

#define AF(n, t, lo, hi)                                                                           \
    {                                                                                              \
#n, t, offsetof(struct anomaly_config, n), lo, hi                                          \
    }

static const struct anomaly_field anomaly_fields[] = {
    AF(window, F_I64, 60, 30 * 86400),
    AF(alpha, F_DBL, 0.01, 1),
    AF(min_history_windows, F_INT, 1, 1000),
    AF(bulk_factor, F_DBL, 1, 1e6),
    AF(bulk_min_bytes, F_I64, 0, 9e18),
    AF(bulk_min_artifacts, F_INT, 1, 1e9),
    AF(bulk_abs_bytes, F_I64, 1, 9e18),
    AF(network_min_events, F_INT, 0, 1e9),
    AF(network_min_age, F_I64, 0, 3650.0 * 86400),
    AF(off_hours_share, F_DBL, 0, 1),
    AF(off_hours_min_events, F_INT, 1, 1e9),
    AF(tz_offset, F_I64, -14 * 3600, 14 * 3600),
    AF(deny_count, F_INT, 2, ANOMALY_RING),
    AF(deny_window, F_I64, 1, 86400),
    AF(token_networks, F_INT, 2, ANOMALY_TOKEN_NETS),
    AF(token_window, F_I64, 1, 7 * 86400),
    AF(projects_factor, F_DBL, 1, 1e6),
    AF(projects_min, F_INT, 2, ANOMALY_SET),
    AF(max_principals, F_SIZE, 1, 1e7),
};

enum err anomaly_config_from_json(json_t *obj, struct anomaly_config *cfg, char *why,
                                  size_t why_cap)
{
    if (!json_is_object(obj)) {
        snprintf(why, why_cap, "the detector settings must be a JSON object");
        return ERR_INVALID;
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const struct anomaly_field *f = NULL;
        for (size_t i = 0; i < sizeof(anomaly_fields) / sizeof(anomaly_fields[0]); i++) {
            if (strcmp(key, anomaly_fields[i].name) == 0)
                f = &anomaly_fields[i];
        }
        if (f == NULL) {
            snprintf(why, why_cap, "unknown detector setting \"%s\"", key);
            return ERR_INVALID;
        }
        if (!json_is_number(v) || json_number_value(v) < f->min || json_number_value(v) > f->max ||
            (f->type != F_DBL && !json_is_integer(v))) {
            snprintf(why, why_cap, "detector setting \"%s\" must be a number in [%g, %g]", key,
                     f->min, f->max);
            return ERR_INVALID;
        }
        char *p = (char *)cfg + f->off;
        switch (f->type) {
        case F_I64: {
            int64_t x = (int64_t)json_integer_value(v);
            memcpy(p, &x, sizeof(x));
            break;
        }
        case F_INT: {
            int x = (int)json_integer_value(v);
            memcpy(p, &x, sizeof(x));
            break;
        }
        case F_SIZE: {
            size_t x = (size_t)json_integer_value(v);
            memcpy(p, &x, sizeof(x));
            break;
        }
        case F_DBL: {
            double x = json_number_value(v);
            memcpy(p, &x, sizeof(x));
            break;
        }
        }
    }
    return ERR_OK;
}

struct anomaly_detector *anomaly_new(const struct anomaly_config *cfg, anomaly_finding_fn fn,
                                     void *ctx)
{
    struct anomaly_detector *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    if (cfg != NULL)
        d->cfg = *cfg;
    else
        anomaly_config_defaults(&d->cfg);
    d->fn = fn;
    d->ctx = ctx;
    return d;
}

void anomaly_free(struct anomaly_detector *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < ANOMALY_BUCKETS; i++) {
        struct pstate *p = d->buckets[i];
        while (p != NULL) {
            struct pstate *n = p->next;
            free(p);
            p = n;
        }
    }
    free(d);
}

void anomaly_set_muted(struct anomaly_detector *d, int muted)
{
    d->muted = muted;
}

size_t anomaly_principals(const struct anomaly_detector *d)
{
    return d->n_principals;
}

/* FNV-1a, 64 bits. */
static uint64_t anomaly_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static struct pstate *anomaly_state(struct anomaly_detector *d, const char *principal)
{
    size_t len = strlen(principal);
    if (len >= ANOMALY_PRINCIPAL_MAX)
        return NULL;
    size_t b = (size_t)(anomaly_hash(principal, len) % ANOMALY_BUCKETS);
    for (struct pstate *p = d->buckets[b]; p != NULL; p = p->next) {
        if (strcmp(p->name, principal) == 0)
            return p;
    }
    if (d->n_principals >= d->cfg.max_principals)
        return NULL;
    struct pstate *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    memcpy(p->name, principal, len + 1);
    p->win_id = INT64_MIN;
    p->next = d->buckets[b];
    d->buckets[b] = p;
    d->n_principals++;
    return p;
}

/* The network of an address: /24 for IPv4, /64 for IPv6, hashed with its
 * family. 0 when the address does not parse. */
static uint64_t anomaly_network(const char *ip, char *text, size_t cap)
{
    unsigned char a[16];
    if (ip == NULL)
        return 0;
    if (inet_pton(AF_INET, ip, a) == 1) {
        snprintf(text, cap, "%u.%u.%u.0/24", a[0], a[1], a[2]);
        return anomaly_hash((const char *)a, 3) ^ 4;
    }
    if (inet_pton(AF_INET6, ip, a) == 1) {
        char full[INET6_ADDRSTRLEN];
        memset(a + 8, 0, 8);
        inet_ntop(AF_INET6, a, full, sizeof(full));
        snprintf(text, cap, "%s/64", full);
        return anomaly_hash((const char *)a, 8) ^ 6;
    }
    return 0;
}

static int anomaly_set_add(uint64_t *set, size_t *n, uint64_t h)
{
    for (size_t i = 0; i < *n; i++) {
        if (set[i] == h)
            return 0;
    }
    if (*n < ANOMALY_SET)
        set[(*n)++] = h;
    return 1;
}

static void anomaly_ids_push(uint64_t *ids, size_t *n, uint64_t idx)
{
    if (*n < ANOMALY_MAX_EVENT_IDS) {
        ids[(*n)++] = idx;
        return;
    }
    /* Keep the first event and the latest ones. */
    memmove(ids + 1, ids + 2, (ANOMALY_MAX_EVENT_IDS - 2) * sizeof(*ids));
    ids[ANOMALY_MAX_EVENT_IDS - 1] = idx;
}

static void anomaly_emit(struct anomaly_detector *d, struct anomaly_finding *f)
{
    if (!d->muted && d->fn != NULL)
        d->fn(d->ctx, f);
    json_decref(f->evidence);
    f->evidence = NULL;
}

static void anomaly_finding_init(struct anomaly_finding *f, enum anomaly_rule rule,
                                 enum anomaly_severity sev, const struct pstate *p,
                                 const struct anomaly_event *ev)
{
    memset(f, 0, sizeof(*f));
    f->rule = rule;
    f->severity = sev;
    str_copy(f->principal, sizeof(f->principal), p->name);
    f->time = ev->time;
}

/* Closes the principal's window when ev falls in a later one, folding it
 * into the baselines if it saw activity. */
static void anomaly_roll_window(struct anomaly_detector *d, struct pstate *p, int64_t t)
{
    int64_t id = t >= 0 ? t / d->cfg.window : -1 - (-1 - t) / d->cfg.window;
    if (id == p->win_id)
        return;
    if (p->win_active && id > p->win_id) {
        double a = p->hist_windows == 0 ? 1.0 : d->cfg.alpha;
        p->base_bytes = a * (double)p->win_bytes + (1 - a) * p->base_bytes;
        p->base_arts = a * (double)p->n_arts + (1 - a) * p->base_arts;
        p->base_projs = a * (double)p->n_projs + (1 - a) * p->base_projs;
        p->hist_windows++;
    }
    if (id < p->win_id)
        return; /* a late event: counted in the current window */
    p->win_id = id;
    p->win_active = 0;
    p->win_bytes = 0;
    p->n_arts = p->n_projs = p->n_dl = p->n_proj_idx = 0;
    p->bulk_fired = p->proj_fired = 0;
}

static int anomaly_is_artifact(const char *action)
{
    return action != NULL && strncasecmp(action, "artifact:", 9) == 0;
}

static int anomaly_is_download(const struct anomaly_event *ev)
{
    return ev->allow && ev->action != NULL && strcasecmp(ev->action, "artifact:Download") == 0 &&
           ev->bytes > 0;
}

static void anomaly_check_bulk(struct anomaly_detector *d, struct pstate *p,
                               const struct anomaly_event *ev)
{
    const char *res = ev->resource != NULL ? ev->resource : "";
    const char *at = strchr(res, '@');
    size_t plen = at != NULL ? (size_t)(at - res) : strlen(res);
    anomaly_set_add(p->arts, &p->n_arts, anomaly_hash(res, plen));
    if (ev->bytes > 0 && p->win_bytes <= INT64_MAX - ev->bytes)
        p->win_bytes += ev->bytes;
    anomaly_ids_push(p->dl_idx, &p->n_dl, ev->index);
    if (p->bulk_fired)
        return;
    const struct anomaly_config *c = &d->cfg;
    int trusted = p->hist_windows >= c->min_history_windows;
    int by_bytes = (trusted && (double)p->win_bytes > c->bulk_factor * p->base_bytes &&
                    p->win_bytes >= c->bulk_min_bytes) ||
                   p->win_bytes >= c->bulk_abs_bytes;
    int by_arts = trusted && (double)p->n_arts > c->bulk_factor * p->base_arts &&
                  (int)p->n_arts >= c->bulk_min_artifacts;
    if (!by_bytes && !by_arts)
        return;
    p->bulk_fired = 1;
    struct anomaly_finding f;
    anomaly_finding_init(&f, ANOMALY_BULK_DOWNLOAD, ANOMALY_HIGH, p, ev);
    snprintf(f.summary, sizeof(f.summary),
             "%s downloaded %lld bytes from %zu artifacts in one window (baseline %.0f bytes, "
             "%.1f artifacts)",
             p->name, (long long)p->win_bytes, p->n_arts, p->base_bytes, p->base_arts);
    f.evidence = json_pack("{s:I, s:i, s:f, s:f, s:i, s:I, s:s}", "bytes", (json_int_t)p->win_bytes,
                           "artifacts", (int)p->n_arts, "baseline_bytes", p->base_bytes,
                           "baseline_artifacts", p->base_arts, "history_windows", p->hist_windows,
                           "window_seconds", (json_int_t)c->window, "trigger",
                           by_bytes ? "bytes" : "artifacts");
    memcpy(f.events, p->dl_idx, p->n_dl * sizeof(uint64_t));
    f.n_events = p->n_dl;
    anomaly_emit(d, &f);
}

static void anomaly_check_projects(struct anomaly_detector *d, struct pstate *p,
                                   const struct anomaly_event *ev)
{
    const char *res = ev->resource;
    if (res == NULL || res[0] == '\0' || res[0] == '*')
        return;
    const char *slash = strchr(res, '/');
    size_t plen = slash != NULL ? (size_t)(slash - res) : strlen(res);
    const char *star = memchr(res, '*', plen);
    if (star != NULL || plen == 0)
        return;
    if (anomaly_set_add(p->projs, &p->n_projs, anomaly_hash(res, plen)))
        anomaly_ids_push(p->proj_idx, &p->n_proj_idx, ev->index);
    if (p->proj_fired)
        return;
    const struct anomaly_config *c = &d->cfg;
    int n = (int)p->n_projs;
    int fire = p->hist_windows >= c->min_history_windows
                   ? n >= c->projects_min && (double)n > c->projects_factor * p->base_projs
                   : n >= 2 * c->projects_min;
    if (!fire)
        return;
    p->proj_fired = 1;
    struct anomaly_finding f;
    anomaly_finding_init(&f, ANOMALY_PROJECT_SWEEP, ANOMALY_MEDIUM, p, ev);
    snprintf(f.summary, sizeof(f.summary), "%s accessed %d projects in one window (baseline %.1f)",
             p->name, n, p->base_projs);
    f.evidence =
        json_pack("{s:i, s:f, s:i, s:I}", "projects", n, "baseline_projects", p->base_projs,
                  "history_windows", p->hist_windows, "window_seconds", (json_int_t)c->window);
    memcpy(f.events, p->proj_idx, p->n_proj_idx * sizeof(uint64_t));
    f.n_events = p->n_proj_idx;
    anomaly_emit(d, &f);
}

static void anomaly_check_hours(struct anomaly_detector *d, struct pstate *p,
                                const struct anomaly_event *ev)
{
    const struct anomaly_config *c = &d->cfg;
    int64_t local = ev->time + c->tz_offset;
    int64_t sod = ((local % 86400) + 86400) % 86400;
    int hour = (int)(sod / 3600);
    if (ev->allow && ev->sensitivity >= 2 && anomaly_is_artifact(ev->action) &&
        p->hours_total >= c->off_hours_min_events && ev->time >= p->off_fired_until) {
        double share = p->hours[hour] / p->hours_total;
        if (share < c->off_hours_share) {
            p->off_fired_until = ev->time - sod % 3600 + 3600;
            struct anomaly_finding f;
            anomaly_finding_init(&f, ANOMALY_OFF_HOURS,
                                 ev->sensitivity >= 3 ? ANOMALY_HIGH : ANOMALY_MEDIUM, p, ev);
            snprintf(f.summary, sizeof(f.summary),
                     "%s accessed %s content at %02d:%02d, an hour with %.1f%% of its activity",
                     p->name, ev->sensitivity >= 3 ? "restricted" : "confidential", hour,
                     (int)(sod % 3600 / 60), share * 100);
            f.evidence = json_pack("{s:i, s:f, s:f, s:s?, s:s?, s:i}", "hour", hour, "share", share,
                                   "history_events", p->hours_total, "action", ev->action,
                                   "resource", ev->resource, "sensitivity", ev->sensitivity);
            f.events[0] = ev->index;
            f.n_events = 1;
            anomaly_emit(d, &f);
        }
    }
    p->hours[hour] += 1;
    p->hours_total += 1;
}

static void anomaly_check_network(struct anomaly_detector *d, struct pstate *p,
                                  const struct anomaly_event *ev, uint64_t net,
                                  const char *net_text)
{
    for (size_t i = 0; i < p->n_nets; i++) {
        if (p->nets[i] == net) {
            p->net_used[i] = ev->time;
            return;
        }
    }
    const struct anomaly_config *c = &d->cfg;
    if (p->n_nets > 0 && p->events >= (uint64_t)c->network_min_events &&
        ev->time - p->first_seen >= c->network_min_age) {
        struct anomaly_finding f;
        anomaly_finding_init(&f, ANOMALY_NEW_NETWORK, ANOMALY_MEDIUM, p, ev);
        snprintf(f.summary, sizeof(f.summary), "%s used the network %s for the first time", p->name,
                 net_text);
        f.evidence =
            json_pack("{s:s, s:s?, s:i, s:I}", "network", net_text, "source_ip", ev->source_ip,
                      "known_networks", (int)p->n_nets, "history_events", (json_int_t)p->events);
        f.events[0] = ev->index;
        f.n_events = 1;
        anomaly_emit(d, &f);
    }
    size_t slot = p->n_nets;
    if (slot == ANOMALY_NETS) {
        slot = 0;
        for (size_t i = 1; i < ANOMALY_NETS; i++) {
            if (p->net_used[i] < p->net_used[slot])
                slot = i;
        }
    } else {
        p->n_nets++;
    }
    p->nets[slot] = net;
    p->net_used[slot] = ev->time;
}

static void anomaly_check_token(struct anomaly_detector *d, struct pstate *p,
                                const struct anomaly_event *ev, uint64_t net)
{
    const struct anomaly_config *c = &d->cfg;
    size_t k = 0;
    for (size_t i = 0; i < p->n_tok; i++) {
        if (ev->time - p->tok[i].time <= c->token_window && p->tok[i].net != net)
            p->tok[k++] = p->tok[i];
    }
    p->n_tok = k;
    if (p->n_tok == ANOMALY_TOKEN_NETS) {
        memmove(p->tok, p->tok + 1, (ANOMALY_TOKEN_NETS - 1) * sizeof(p->tok[0]));
        p->n_tok--;
    }
    p->tok[p->n_tok++] = (struct recent_net){net, ev->time, ev->index};
    if ((int)p->n_tok < c->token_networks || ev->time < p->tok_fired_until)
        return;
    p->tok_fired_until = ev->time + c->token_window;
    struct anomaly_finding f;
    anomaly_finding_init(&f, ANOMALY_TOKEN_NETWORKS, ANOMALY_HIGH, p, ev);
    snprintf(f.summary, sizeof(f.summary),
             "the API token of %s was used from %zu networks within %lld seconds", p->name,
             p->n_tok, (long long)c->token_window);
    f.evidence = json_pack("{s:i, s:I, s:s?}", "networks", (int)p->n_tok, "window_seconds",
                           (json_int_t)c->token_window, "latest_ip", ev->source_ip);
    for (size_t i = 0; i < p->n_tok && i < ANOMALY_MAX_EVENT_IDS; i++)
        f.events[f.n_events++] = p->tok[i].index;
    anomaly_emit(d, &f);
}

static void anomaly_check_denies(struct anomaly_detector *d, struct pstate *p,
                                 const struct anomaly_event *ev)
{
    const struct anomaly_config *c = &d->cfg;
    size_t cap = (size_t)c->deny_count;
    p->deny_t[p->deny_pos] = ev->time;
    p->deny_idx[p->deny_pos] = ev->index;
    p->deny_pos = (p->deny_pos + 1) % cap;
    if (p->deny_n < cap)
        p->deny_n++;
    if (p->deny_n < cap || ev->time < p->deny_fired_until)
        return;
    int64_t oldest = p->deny_t[p->deny_pos]; /* the slot written next is the oldest */
    if (ev->time - oldest > c->deny_window)
        return;
    p->deny_fired_until = ev->time + c->deny_window;
    struct anomaly_finding f;
    anomaly_finding_init(&f, ANOMALY_DENY_BURST, ANOMALY_MEDIUM, p, ev);
    snprintf(f.summary, sizeof(f.summary), "%s was denied %d times within %lld seconds", p->name,
             c->deny_count, (long long)(ev->time - oldest));
    f.evidence = json_pack("{s:i, s:I, s:s?, s:s?}", "denied", c->deny_count, "seconds",
                           (json_int_t)(ev->time - oldest), "last_action", ev->action,
                           "last_resource", ev->resource);
    for (size_t i = 0; i < cap && f.n_events < ANOMALY_MAX_EVENT_IDS; i++) {
        size_t j = (p->deny_pos + cap - 1 - i) % cap; /* newest first */
        f.events[f.n_events++] = p->deny_idx[j];
    }
    anomaly_emit(d, &f);
}

void anomaly_feed(struct anomaly_detector *d, const struct anomaly_event *ev)
{
    if (ev->principal == NULL || ev->action == NULL)
        return;
    /* The server's own events and anonymous callers have no baseline. */
    if (strncmp(ev->principal, "system:", 7) == 0 || strcmp(ev->principal, "anonymous") == 0 ||
        strcasecmp(ev->action, "auth:Blocked") == 0)
        return;
    struct pstate *p = anomaly_state(d, ev->principal);
    if (p == NULL)
        return;
    if (p->events == 0)
        p->first_seen = ev->time;
    anomaly_roll_window(d, p, ev->time);
    char net_text[INET6_ADDRSTRLEN + 8];
    uint64_t net = anomaly_network(ev->source_ip, net_text, sizeof(net_text));
    if (net != 0)
        anomaly_check_network(d, p, ev, net, net_text);
    /* Machine credentials (API tokens and client certificates) are expected
     * to come from few networks. */
    if (net != 0 && ev->auth_method != NULL &&
        (strcmp(ev->auth_method, "token") == 0 || strcmp(ev->auth_method, "mtls") == 0))
        anomaly_check_token(d, p, ev, net);
    if (!ev->allow)
        anomaly_check_denies(d, p, ev);
    anomaly_check_hours(d, p, ev);
    if (anomaly_is_artifact(ev->action)) {
        p->win_active = 1;
        anomaly_check_projects(d, p, ev);
    }
    if (anomaly_is_download(ev))
        anomaly_check_bulk(d, p, ev);
    p->events++;
    if (ev->time > p->last_seen)
        p->last_seen = ev->time;
}

int64_t anomaly_parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (s == NULL)
        return -1;
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return -1;
    if (*end == '.') {
        end++;
        while (*end >= '0' && *end <= '9')
            end++;
    }
    if (*end != 'Z' || end[1] != '\0')
        return -1;
    return (int64_t)timegm(&tm);
}

static int anomaly_sensitivity_of(json_t *detail)
{
    json_t *s = json_object_get(detail, "sensitivity");
    if (json_is_integer(s))
        return (int)json_integer_value(s);
    static const char *const names[] = {"public", "internal", "confidential", "restricted"};
    const char *t = json_string_value(s);
    for (int i = 0; t != NULL && i < 4; i++) {
        if (strcmp(t, names[i]) == 0)
            return i;
    }
    return -1;
}

enum err anomaly_event_from_json(const char *json, size_t len, uint64_t index,
                                 struct anomaly_event *ev, json_t **holder)
{
    memset(ev, 0, sizeof(*ev));
    *holder = NULL;
    json_t *o = json_loadb(json, len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return ERR_INVALID;
    }
    ev->index = index;
    ev->time = anomaly_parse_time(json_string_value(json_object_get(o, "time")));
    ev->principal = json_string_value(json_object_get(o, "principal"));
    ev->auth_method = json_string_value(json_object_get(o, "auth_method"));
    ev->source_ip = json_string_value(json_object_get(o, "source_ip"));
    ev->action = json_string_value(json_object_get(o, "action"));
    ev->resource = json_string_value(json_object_get(o, "resource"));
    const char *dec = json_string_value(json_object_get(o, "decision"));
    ev->allow = dec != NULL && strcmp(dec, "allow") == 0;
    ev->status = (int)json_integer_value(json_object_get(o, "status"));
    ev->bytes = (int64_t)json_integer_value(json_object_get(o, "bytes"));
    ev->sensitivity = anomaly_sensitivity_of(json_object_get(o, "detail"));
    if (ev->time < 0 || ev->action == NULL) {
        json_decref(o);
        memset(ev, 0, sizeof(*ev));
        return ERR_INVALID;
    }
    *holder = o;
    return ERR_OK;
}
