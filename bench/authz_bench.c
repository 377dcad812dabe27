/*
 * Policy decision benchmark: decision latency (p50, p99) and decisions per
 * second of authz_decide() on one core, at 10, 1,000 and 10,000 statements
 * with 100,000 role bindings, for requests that match early, late and not
 * at all. Built and run by bench/authz.sh, which runs the Casbin and Cedar
 * peers on the same workload (bench/authz_peers/workload.js describes it;
 * workload_* below implements the same rules and must stay in step).
 *
 * Output: a human-readable table, and one line per measurement
 *   RESULT coffer N CLASS P50_NS P99_NS DECISIONS_PER_S SAMPLES EXTRA
 * that bench/authz.sh reads to print the comparison.
 *
 *   authz_bench [N...]        default: 10 1000 10000
 * Environment: AUTHZ_BENCH_SAMPLES (single-timed decisions per class,
 * default 200000), AUTHZ_BENCH_BATCHES (batches of 1000 per class, default
 * 300), AUTHZ_BENCH_ROUNDS (rounds the samples are split into, the three
 * classes taking turns, default 10).
 */
#include "authz/authz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_GROUPS 500
#define N_BINDINGS 100000
#define BATCH 1000
#define DOC_CAP 8192

struct shape {
    unsigned roles, kg, ku, users, step;
};

static struct shape workload_shape(unsigned n)
{
    struct shape s;
    s.roles = n / 10;
    s.kg = s.roles < 2 ? s.roles : 2;
    s.ku = s.roles < 4 ? s.roles : 4;
    s.users = (N_BINDINGS - N_GROUPS * s.kg) / s.ku;
    s.step = s.ku > 1 ? (s.roles - 1) / (s.ku - 1) : 0;
    return s;
}

/* The policy document of role r: 10 statements (see workload.js). */
static int workload_role_doc(unsigned r, char *doc, size_t cap)
{
    size_t off = 0;
    int w = snprintf(doc, cap, "{\"Version\":\"2012-10-17\",\"Statement\":[");
    if (w < 0 || (size_t)w >= cap)
        return -1;
    off = (size_t)w;
    for (unsigned j = 0; j < 10; j++) {
        const char *acts = j % 2 == 0
                               ? "[\"artifact:Read\",\"artifact:Download\"]"
                               : "[\"artifact:Download\",\"artifact:Write\",\"artifact:Share\"]";
        char cond[128];
        if (j % 2 == 0)
            snprintf(cond, sizeof(cond), "{\"StringEquals\":{\"coffer:ResourceKind\":\"model\"}}");
        else
            snprintf(cond, sizeof(cond), "{\"IpAddress\":{\"coffer:SourceIp\":\"10.%u.0.0/16\"}}",
                     j);
        w = snprintf(doc + off, cap - off,
                     "%s{\"Sid\":\"S%u\",\"Effect\":\"Allow\",\"Action\":%s,"
                     "\"Resource\":\"proj%u/e%u/*\",\"Condition\":%s}",
                     j == 0 ? "" : ",", j, acts, r, j, cond);
        if (w < 0 || (size_t)w >= cap - off)
            return -1;
        off += (size_t)w;
    }
    w = snprintf(doc + off, cap - off, "]}");
    return (w < 0 || (size_t)w >= cap - off) ? -1 : 0;
}

static int bind_one(struct authz_builder *b, const char *principal, unsigned role)
{
    char rn[32], err[AUTHZ_ERRBUF];
    snprintf(rn, sizeof(rn), "r%u", role);
    if (authz_builder_bind(b, principal, rn, NULL, err, sizeof(err)) != ERR_OK) {
        fprintf(stderr, "bind %s %s: %s\n", principal, rn, err);
        return -1;
    }
    return 0;
}

/* Builds the snapshot for n statements; NULL on failure (message printed). */
static struct authz_snapshot *workload_build(unsigned n, size_t *bindings)
{
    struct shape s = workload_shape(n);
    char err[AUTHZ_ERRBUF], doc[DOC_CAP], name[64];
    struct authz_builder *b = authz_builder_new();
    if (b == NULL)
        return NULL;
    *bindings = 0;
    for (unsigned r = 0; r < s.roles; r++) {
        char rn[32];
        snprintf(rn, sizeof(rn), "r%u", r);
        snprintf(name, sizeof(name), "pol-r%u", r);
        if (workload_role_doc(r, doc, sizeof(doc)) != 0 ||
            authz_builder_attach(b, rn, name, doc, strlen(doc), err, sizeof(err)) != ERR_OK) {
            fprintf(stderr, "role %s: %s\n", rn, err);
            goto fail;
        }
    }
    for (unsigned u = 0; u < s.users; u++) {
        snprintf(name, sizeof(name), "user:u%u", u);
        for (unsigned k = 0; k < s.ku; k++, (*bindings)++) {
            if (bind_one(b, name, (u + k * s.step) % s.roles) != 0)
                goto fail;
        }
    }
    for (unsigned g = 0; g < N_GROUPS; g++) {
        snprintf(name, sizeof(name), "group:g%u", g);
        for (unsigned k = 0; k < s.kg; k++, (*bindings)++) {
            if (bind_one(b, name, (s.roles / 2 + g + k) % s.roles) != 0)
                goto fail;
        }
    }
    struct authz_snapshot *snap;
    if (authz_builder_build(b, &snap, err, sizeof(err)) != ERR_OK) {
        fprintf(stderr, "build: %s\n", err);
        return NULL;
    }
    return snap;
fail:
    authz_builder_free(b);
    return NULL;
}

struct req_class {
    const char *name;
    char resource[64];
    const char *kind;
    uint8_t ip[4];
    enum authz_effect expect;
};

static void workload_requests(unsigned n, struct req_class rc[3])
{
    unsigned last = workload_shape(n).roles - 1;
    rc[0] = (struct req_class){"early", "", "model", {10, 0, 0, 7}, AUTHZ_ALLOW};
    snprintf(rc[0].resource, sizeof(rc[0].resource), "proj0/e0/a");
    rc[1] = (struct req_class){"late", "", "model", {10, 9, 3, 4}, AUTHZ_ALLOW};
    snprintf(rc[1].resource, sizeof(rc[1].resource), "proj%u/e9/a", last);
    rc[2] = (struct req_class){"none", "", "dataset", {192, 0, 2, 1}, AUTHZ_DENY};
    snprintf(rc[2].resource, sizeof(rc[2].resource), "proj%u/e9/a", last);
}

static const char *const bench_groups[] = {"g0"};

static void request_fill(struct authz_request *q, const struct req_class *rc)
{
    memset(q, 0, sizeof(*q));
    q->principal_type = AUTHZ_PRINCIPAL_USER;
    q->principal_name = "u0";
    q->groups = bench_groups;
    q->n_groups = 1;
    q->clearance = 3;
    q->auth_method = "token";
    q->mfa_age = -1;
    q->source_ip.family = 4;
    memcpy(q->source_ip.addr, rc->ip, 4);
    q->secure_transport = true;
    q->now = 1767261600; /* fixed instant: decisions do not depend on the clock */
    q->action = "artifact:Download";
    q->resource = rc->resource;
    q->resource_kind = rc->kind;
    q->resource_sensitivity = 1;
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y);
}

static uint64_t pct(const uint64_t *sorted, size_t n, double p)
{
    size_t i = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (i == 0)
        i = 1;
    if (i > n)
        i = n;
    return sorted[i - 1];
}

/* Median cost of one clock_gettime pair with nothing between, in ns. */
static uint64_t clock_overhead(uint64_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        uint64_t t1 = now_ns();
        buf[i] = t1 - t0;
    }
    qsort(buf, n, sizeof(*buf), cmp_u64);
    return pct(buf, n, 50);
}

static volatile unsigned bench_sink;

/* Samples of one request class, pooled over the rounds. */
struct class_run {
    struct authz_request q;
    uint64_t *single; /* ns per decision, one per single-timed decision */
    uint64_t *batch;  /* ns per BATCH decisions */
    size_t n_single, n_batch;
    uint64_t batch_total;
    double round_p50_min, round_p50_max;
};

/* One round of one class: warm-up, single-timed decisions, then batches. */
static void measure_round(const struct authz_snapshot *snap, struct class_run *cr, size_t singles,
                          size_t batches, uint64_t overhead)
{
    struct authz_decision d;
    for (size_t i = 0; i < 5000; i++) { /* caches and branch predictors */
        authz_decide(snap, &cr->q, &d);
        bench_sink += d.effect;
    }
    uint64_t *first = cr->single + cr->n_single;
    for (size_t i = 0; i < singles; i++) {
        uint64_t t0 = now_ns();
        authz_decide(snap, &cr->q, &d);
        uint64_t t1 = now_ns();
        bench_sink += d.effect;
        uint64_t dt = t1 - t0;
        cr->single[cr->n_single++] = dt > overhead ? dt - overhead : 0;
    }
    /* This round's median, to show how much the rounds disagree. */
    qsort(first, singles, sizeof(*first), cmp_u64);
    double p50 = (double)pct(first, singles, 50);
    if (cr->round_p50_min == 0 || p50 < cr->round_p50_min)
        cr->round_p50_min = p50;
    if (p50 > cr->round_p50_max)
        cr->round_p50_max = p50;
    for (size_t bi = 0; bi < batches; bi++) {
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < BATCH; i++) {
            authz_decide(snap, &cr->q, &d);
            bench_sink += d.effect;
        }
        uint64_t dt = now_ns() - t0;
        cr->batch_total += dt;
        cr->batch[cr->n_batch++] = dt;
    }
}

static size_t env_size(const char *name, size_t def, size_t min)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return def;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    return (*end != '\0' || x < min || x > 100000000ull) ? def : (size_t)x;
}

static int bench_size(unsigned n, size_t n_samples, size_t n_batches, size_t rounds,
                      uint64_t overhead)
{
    size_t bindings;
    uint64_t t0 = now_ns();
    struct authz_snapshot *snap = workload_build(n, &bindings);
    uint64_t build_ns = now_ns() - t0;
    if (snap == NULL)
        return -1;
    printf("INFO coffer %u: %zu statements, %zu role bindings, snapshot build %.0f ms\n", n,
           authz_snapshot_statement_count(snap), bindings, (double)build_ns / 1e6);
    struct req_class rc[3];
    struct class_run cr[3];
    char line[3][512];
    size_t visited[3];
    size_t singles = n_samples / rounds, batches = n_batches / rounds;
    int rcode = 0;
    workload_requests(n, rc);
    memset(cr, 0, sizeof(cr));
    for (int c = 0; c < 3; c++) {
        struct authz_decision d;
        request_fill(&cr[c].q, &rc[c]);
        authz_decide(snap, &cr[c].q, &d);
        authz_decision_format(&d, line[c], sizeof(line[c]));
        visited[c] = d.statements_visited;
        if (d.effect != rc[c].expect) {
            printf("SANITY coffer %u %s: %s, expected %s\n", n, rc[c].name, line[c],
                   authz_effect_name(rc[c].expect));
            rcode = -1;
        }
        cr[c].single = calloc(singles * rounds, sizeof(uint64_t));
        cr[c].batch = calloc(batches * rounds, sizeof(uint64_t));
        if (cr[c].single == NULL || cr[c].batch == NULL)
            rcode = -1;
    }
    /* Rounds interleave the classes, so that a burst of load from elsewhere
     * on the machine spreads over all of them rather than one. */
    for (size_t r = 0; rcode == 0 && r < rounds; r++) {
        for (int c = 0; c < 3; c++)
            measure_round(snap, &cr[c], singles, batches, overhead);
    }
    for (int c = 0; rcode == 0 && c < 3; c++) {
        qsort(cr[c].single, cr[c].n_single, sizeof(uint64_t), cmp_u64);
        qsort(cr[c].batch, cr[c].n_batch, sizeof(uint64_t), cmp_u64);
        double p50 = (double)pct(cr[c].single, cr[c].n_single, 50);
        double p99 = (double)pct(cr[c].single, cr[c].n_single, 99);
        double p999 = (double)pct(cr[c].single, cr[c].n_single, 99.9);
        double bp50 = (double)pct(cr[c].batch, cr[c].n_batch, 50) / BATCH;
        double bp99 = (double)pct(cr[c].batch, cr[c].n_batch, 99) / BATCH;
        double dps = (double)(cr[c].n_batch * BATCH) / ((double)cr[c].batch_total / 1e9);
        printf("  %-5s p50 %5.0f ns (rounds %.0f-%.0f)  p99 %5.0f ns  p99.9 %6.0f ns  "
               "batch mean p50 %5.0f ns p99 %5.0f ns  %8.0f decisions/s  visited %zu\n"
               "        %s\n",
               rc[c].name, p50, cr[c].round_p50_min, cr[c].round_p50_max, p99, p999, bp50, bp99,
               dps, visited[c], line[c]);
        printf("RESULT coffer %u %s %.0f %.0f %.1f %zu visited=%zu\n", n, rc[c].name, p50, p99, dps,
               cr[c].n_single, visited[c]);
    }
    for (int c = 0; c < 3; c++) {
        free(cr[c].single);
        free(cr[c].batch);
    }
    authz_snapshot_release(snap);
    return rcode;
}

int main(int argc, char **argv)
{
    size_t rounds = env_size("AUTHZ_BENCH_ROUNDS", 10, 1);
    if (rounds > 1000)
        rounds = 1000;
    size_t n_samples = env_size("AUTHZ_BENCH_SAMPLES", 200000, 100 * rounds);
    size_t n_batches = env_size("AUTHZ_BENCH_BATCHES", 300, rounds);
    size_t cap = 100000;
    uint64_t *samples = calloc(cap, sizeof(*samples));
    if (samples == NULL)
        return 1;
    uint64_t overhead = clock_overhead(samples, cap);
    free(samples);
    printf(
        "INFO coffer: %zu single-timed decisions per class (clock_gettime pair overhead %llu ns, "
        "subtracted), %zu batches of %d for decisions/s, in %zu interleaved rounds\n",
        n_samples, (unsigned long long)overhead, n_batches, BATCH, rounds);
    static const unsigned def_sizes[] = {10, 1000, 10000};
    int rc = 0;
    int n_sizes = argc > 1 ? argc - 1 : 3;
    for (int i = 0; i < n_sizes; i++) {
        unsigned n = def_sizes[i < 3 ? i : 0];
        if (argc > 1) {
            char *end;
            unsigned long v = strtoul(argv[i + 1], &end, 10);
            if (*end != '\0' || v < 10 || v % 10 != 0 || v > 100000) {
                fprintf(stderr, "usage: %s [N...] (N a multiple of 10, 10..100000)\n", argv[0]);
                return 2;
            }
            n = (unsigned)v;
        }
        if (bench_size(n, n_samples, n_batches, rounds, overhead) != 0)
            rc = 1;
    }
    return rc;
}
