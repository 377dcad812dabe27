/*
 * metrics: lock-free counters; see metrics.h.
 */
#include "monitor/metrics.h"

#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "monitor/anomaly.h"

static const int metrics_statuses[] = {200, 201, 204, 206, 304, 400, 401, 403, 404, 405,
                                       409, 410, 411, 413, 415, 422, 429, 500, 503, 0};
#define METRICS_N_STATUS (sizeof(metrics_statuses) / sizeof(metrics_statuses[0]))

/* Latency bucket upper bounds in seconds. */
static const double metrics_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10,   30};
#define METRICS_N_BUCKETS (sizeof(metrics_buckets) / sizeof(metrics_buckets[0]))

static const char *const metrics_actions[] = {"artifact:List",
                                              "artifact:Read",
                                              "artifact:Download",
                                              "artifact:Write",
                                              "artifact:Delete",
                                              "artifact:Label",
                                              "artifact:Declassify",
                                              "artifact:Share",
                                              "artifact:Promote",
                                              "artifact:Approve",
                                              "artifact:Erase",
                                              "artifact:Hold",
                                              "audit:Read",
                                              "admin:Users",
                                              "admin:Policies",
                                              "admin:Keys",
                                              "auth:Login",
                                              "auth:StepUp",
                                              "auth:Blocked",
                                              "self:Whoami",
                                              "self:Logout",
                                              "self:Password",
                                              "self:Mfa",
                                              "self:Token",
                                              "other"};
#define METRICS_N_ACTIONS (sizeof(metrics_actions) / sizeof(metrics_actions[0]))

struct route_metrics {
    atomic_uint_fast64_t status[METRICS_N_STATUS];
    atomic_uint_fast64_t bucket[METRICS_N_BUCKETS]; /* not cumulative; summed on output */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t usec_sum;
    atomic_uint_fast64_t bytes_in;
    atomic_uint_fast64_t bytes_out;
};

static struct route_metrics metrics_routes[METRICS_MAX_ROUTES + 1]; /* last: no route */
static atomic_uint_fast64_t metrics_decisions[METRICS_N_ACTIONS][2];
static atomic_uint_fast64_t metrics_login_failures;
static atomic_uint_fast64_t metrics_cred_failures;
static atomic_uint_fast64_t metrics_lockouts;
static atomic_uint_fast64_t metrics_blocked_n;
static atomic_uint_fast64_t metrics_findings[ANOMALY_RULE_COUNT];
static atomic_uint_fast64_t metrics_webhooks[2];

static void metrics_add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t metrics_get(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void metrics_request(int route, int status, int64_t usec, uint64_t bytes_in, uint64_t bytes_out)
{
    struct route_metrics *m =
        &metrics_routes[route >= 0 && route < METRICS_MAX_ROUTES ? route : METRICS_MAX_ROUTES];
    size_t s = METRICS_N_STATUS - 1;
    for (size_t i = 0; i + 1 < METRICS_N_STATUS; i++) {
        if (metrics_statuses[i] == status)
            s = i;
    }
    metrics_add(&m->status[s], 1);
    if (usec < 0)
        usec = 0;
    double secs = (double)usec / 1e6;
    size_t b = 0;
    while (b < METRICS_N_BUCKETS && secs > metrics_buckets[b])
        b++;
    if (b < METRICS_N_BUCKETS)
        metrics_add(&m->bucket[b], 1);
    metrics_add(&m->count, 1);
    metrics_add(&m->usec_sum, (uint64_t)usec);
    metrics_add(&m->bytes_in, bytes_in);
    metrics_add(&m->bytes_out, bytes_out);
}

void metrics_event(const char *action, int allow, int status)
{
    if (action == NULL)
        return;
    size_t a = METRICS_N_ACTIONS - 1;
    for (size_t i = 0; i + 1 < METRICS_N_ACTIONS; i++) {
        if (strcasecmp(action, metrics_actions[i]) == 0)
            a = i;
    }
    metrics_add(&metrics_decisions[a][allow ? 1 : 0], 1);
    int auth = strcasecmp(action, "auth:Login") == 0 || strcasecmp(action, "auth:StepUp") == 0;
    if (auth && !allow && status == 429)
        metrics_add(&metrics_lockouts, 1);
    else if (auth && !allow)
        metrics_add(&metrics_login_failures, 1);
}

void metrics_auth_failure(void)
{
    metrics_add(&metrics_cred_failures, 1);
}

void metrics_blocked(void)
{
    metrics_add(&metrics_blocked_n, 1);
}

void metrics_finding(int rule)
{
    if (rule >= 0 && rule < ANOMALY_RULE_COUNT)
        metrics_add(&metrics_findings[rule], 1);
}

void metrics_webhook(int ok)
{
    metrics_add(&metrics_webhooks[ok ? 1 : 0], 1);
}

void metrics_reset(void)
{
    memset(metrics_routes, 0, sizeof(metrics_routes));
    memset(metrics_decisions, 0, sizeof(metrics_decisions));
    memset(metrics_findings, 0, sizeof(metrics_findings));
    memset(metrics_webhooks, 0, sizeof(metrics_webhooks));
    atomic_store(&metrics_login_failures, 0);
    atomic_store(&metrics_cred_failures, 0);
    atomic_store(&metrics_lockouts, 0);
    atomic_store(&metrics_blocked_n, 0);
}

/* The route's label: "GET /v1/objects/" (prefix routes end with '/'). */
static void metrics_route_labels(FILE *f, int i)
{
    if (i == METRICS_MAX_ROUTES)
        fprintf(f, "method=\"other\",route=\"none\"");
    else
        fprintf(f, "method=\"%s\",route=\"%s\"", api_routes[i].method, api_routes[i].prefix);
}

static void metrics_write_requests(FILE *f, int n_routes)
{
    fprintf(f, "# HELP coffer_http_requests_total HTTP requests by route and status.\n"
               "# TYPE coffer_http_requests_total counter\n");
    for (int r = 0; r <= METRICS_MAX_ROUTES; r++) {
        if (r >= n_routes && r != METRICS_MAX_ROUTES)
            continue;
        for (size_t s = 0; s < METRICS_N_STATUS; s++) {
            uint64_t v = metrics_get(&metrics_routes[r].status[s]);
            if (v == 0)
                continue;
            fprintf(f, "coffer_http_requests_total{");
            metrics_route_labels(f, r);
            if (metrics_statuses[s] != 0)
                fprintf(f, ",status=\"%d\"} %llu\n", metrics_statuses[s], (unsigned long long)v);
            else
                fprintf(f, ",status=\"other\"} %llu\n", (unsigned long long)v);
        }
    }
    fprintf(f, "# HELP coffer_http_request_duration_seconds Time from the request line to the "
               "end of the response.\n"
               "# TYPE coffer_http_request_duration_seconds histogram\n");
    for (int r = 0; r <= METRICS_MAX_ROUTES; r++) {
        struct route_metrics *m = &metrics_routes[r];
        uint64_t count = metrics_get(&m->count);
        if (count == 0 || (r >= n_routes && r != METRICS_MAX_ROUTES))
            continue;
        uint64_t cum = 0;
        for (size_t b = 0; b < METRICS_N_BUCKETS; b++) {
            cum += metrics_get(&m->bucket[b]);
            fprintf(f, "coffer_http_request_duration_seconds_bucket{");
            metrics_route_labels(f, r);
            fprintf(f, ",le=\"%g\"} %llu\n", metrics_buckets[b], (unsigned long long)cum);
        }
        fprintf(f, "coffer_http_request_duration_seconds_bucket{");
        metrics_route_labels(f, r);
        fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)count);
        fprintf(f, "coffer_http_request_duration_seconds_sum{");
        metrics_route_labels(f, r);
        fprintf(f, "} %.6f\n", (double)metrics_get(&m->usec_sum) / 1e6);
        fprintf(f, "coffer_http_request_duration_seconds_count{");
        metrics_route_labels(f, r);
        fprintf(f, "} %llu\n", (unsigned long long)count);
    }
    uint64_t in = 0, out = 0;
    for (int r = 0; r <= METRICS_MAX_ROUTES; r++) {
        in += metrics_get(&metrics_routes[r].bytes_in);
        out += metrics_get(&metrics_routes[r].bytes_out);
    }
    fprintf(f,
            "# HELP coffer_http_received_bytes_total Request body bytes received.\n"
            "# TYPE coffer_http_received_bytes_total counter\n"
            "coffer_http_received_bytes_total %llu\n"
            "# HELP coffer_http_sent_bytes_total Artifact content bytes sent.\n"
            "# TYPE coffer_http_sent_bytes_total counter\n"
            "coffer_http_sent_bytes_total %llu\n",
            (unsigned long long)in, (unsigned long long)out);
}

void metrics_write(FILE *f)
{
    int n_routes = 0;
    while (n_routes < METRICS_MAX_ROUTES && api_routes[n_routes].method != NULL)
        n_routes++;
    metrics_write_requests(f, n_routes);
    fprintf(f, "# HELP coffer_decisions_total Audited decisions by action and decision.\n"
               "# TYPE coffer_decisions_total counter\n");
    for (size_t a = 0; a < METRICS_N_ACTIONS; a++) {
        for (int d = 0; d < 2; d++) {
            uint64_t v = metrics_get(&metrics_decisions[a][d]);
            if (v != 0)
                fprintf(f, "coffer_decisions_total{action=\"%s\",decision=\"%s\"} %llu\n",
                        metrics_actions[a], d ? "allow" : "deny", (unsigned long long)v);
        }
    }
    fprintf(f,
            "# HELP coffer_auth_failures_total Failed authentications.\n"
            "# TYPE coffer_auth_failures_total counter\n"
            "coffer_auth_failures_total{kind=\"login\"} %llu\n"
            "coffer_auth_failures_total{kind=\"credential\"} %llu\n"
            "# HELP coffer_lockouts_total Login or step-up attempts refused by the lockout.\n"
            "# TYPE coffer_lockouts_total counter\n"
            "coffer_lockouts_total %llu\n"
            "# HELP coffer_blocked_requests_total Requests refused by a hold (suspension or "
            "step-up).\n"
            "# TYPE coffer_blocked_requests_total counter\n"
            "coffer_blocked_requests_total %llu\n",
            (unsigned long long)metrics_get(&metrics_login_failures),
            (unsigned long long)metrics_get(&metrics_cred_failures),
            (unsigned long long)metrics_get(&metrics_lockouts),
            (unsigned long long)metrics_get(&metrics_blocked_n));
    fprintf(f, "# HELP coffer_anomaly_findings_total Anomaly findings by rule.\n"
               "# TYPE coffer_anomaly_findings_total counter\n");
    for (int r = 0; r < ANOMALY_RULE_COUNT; r++)
        fprintf(f, "coffer_anomaly_findings_total{rule=\"%s\"} %llu\n",
                anomaly_rule_name((enum anomaly_rule)r),
                (unsigned long long)metrics_get(&metrics_findings[r]));
    fprintf(f,
            "# HELP coffer_webhook_deliveries_total Alert webhook deliveries by result.\n"
            "# TYPE coffer_webhook_deliveries_total counter\n"
            "coffer_webhook_deliveries_total{result=\"ok\"} %llu\n"
            "coffer_webhook_deliveries_total{result=\"failed\"} %llu\n",
            (unsigned long long)metrics_get(&metrics_webhooks[1]),
            (unsigned long long)metrics_get(&metrics_webhooks[0]));
}
