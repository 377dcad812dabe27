/*
 * Audit log benchmark (not a test): durable appends per second with 1, 8
 * and 64 concurrent writers (group commit), and offline verification speed
 * for a log of EVENTS events. Built and run by bench/audit.sh.
 *
 *   audit_bench DIR [SECONDS_PER_RUN] [EVENTS]
 *
 * DIR must be on the file system to measure (appends are fdatasync'ed).
 * Prints one line per measurement and "targets: met" or "targets: MISSED".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/event.h"

#define TARGET_APPENDS_PER_S 20000.0
#define TARGET_VERIFY_PER_S 1000000.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A realistic event, about 420 bytes, as the server records a download. */
static char *make_event(unsigned long n, size_t *len)
{
    char rid[40], res[64];
    snprintf(rid, sizeof(rid), "%032lx", n * 2654435761UL);
    snprintf(res, sizeof(res), "fraud/prod/model-%lu@%lu", n % 97, n % 13 + 1);
    static const char *const stmts[] = {"builtin/reader#0 ReadAll"};
    struct audit_event ev = {
        .time = "2024-05-01T12:00:00.123Z",
        .request_id = rid,
        .principal = "user:alice",
        .auth_method = "token",
        .mfa = 1,
        .source_ip = "10.1.2.3",
        .user_agent = "coffer-cli/0.1",
        .action = "artifact:Download",
        .resource = res,
        .allow = 1,
        .reason = "allow",
        .statements = stmts,
        .n_statements = 1,
        .status = 200,
        .bytes = 104857600,
        .sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    };
    char *json = NULL;
    if (audit_event_encode(&ev, &json, len) != ERR_OK) {
        fprintf(stderr, "audit_bench: cannot encode an event\n");
        exit(1);
    }
    return json;
}

struct writer {
    struct audit_log *log;
    double deadline;
    atomic_ulong *total;
    unsigned id;
    int failed;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    unsigned long n = (unsigned long)w->id << 32;
    while (now_s() < w->deadline) {
        size_t len;
        char *ev = make_event(n++, &len);
        enum err e = audit_log_append(w->log, ev, len, NULL);
        free(ev);
        if (e != ERR_OK) {
            w->failed = 1;
            break;
        }
        atomic_fetch_add(w->total, 1);
    }
    return NULL;
}

static int rm_tree(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

/* Appends from `threads` writers for `seconds`; returns events per second. */
static double bench_appends(const char *base, unsigned threads, double seconds)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/appends-%u", base, threads);
    rm_tree(dir);
    struct audit_options o;
    audit_options_init(&o);
    struct audit_log *log = NULL;
    if (audit_log_open(dir, &o, &log) != ERR_OK) {
        fprintf(stderr, "audit_bench: cannot open a log in %s\n", dir);
        exit(1);
    }
    atomic_ulong total = 0;
    struct writer *ws = calloc(threads, sizeof(*ws));
    pthread_t *tids = calloc(threads, sizeof(*tids));
    if (ws == NULL || tids == NULL)
        exit(1);
    double t0 = now_s();
    for (unsigned i = 0; i < threads; i++) {
        ws[i] = (struct writer){log, t0 + seconds, &total, i, 0};
        if (pthread_create(&tids[i], NULL, writer_main, &ws[i]) != 0)
            exit(1);
    }
    int failed = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        failed |= ws[i].failed;
    }
    double dt = now_s() - t0;
    struct audit_stats st;
    audit_log_stats(log, &st);
    audit_log_close(log);
    if (failed) {
        fprintf(stderr, "audit_bench: an append failed\n");
        exit(1);
    }
    double rate = (double)total / dt;
    printf("appends  writers=%-3u events=%-8lu flushes=%-7llu events/flush=%-6.1f "
           "durable events/s=%.0f\n",
           threads, (unsigned long)total, (unsigned long long)st.flushes,
           st.flushes ? (double)total / (double)st.flushes : 0.0, rate);
    fflush(stdout);
    rm_tree(dir);
    free(ws);
    free(tids);
    return rate;
}

/* Builds a log of n events (written in the documented framing, then opened
 * once so that a head is signed), and times audit_verify_dir over it. */
static double bench_verify(const char *base, unsigned long n)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof(dir), "%s/verify", base);
    rm_tree(dir);
    if (mkdir(dir, 0700) != 0) {
        perror("mkdir");
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/events.log", dir);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    uint64_t bytes = 0;
    for (unsigned long i = 0; i < n; i++) {
        size_t len;
        char *ev = make_event(i, &len);
        unsigned char hdr[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                                (unsigned char)(len >> 8), (unsigned char)len};
        if (fwrite(hdr, 1, 4, f) != 4 || fwrite(ev, 1, len, f) != len)
            exit(1);
        bytes += 4 + len;
        free(ev);
    }
    if (fclose(f) != 0)
        exit(1);
    struct audit_options o;
    audit_options_init(&o);
    o.sign_interval_ms = 0;
    struct audit_log *log = NULL;
    double t0 = now_s();
    if (audit_log_open(dir, &o, &log) != ERR_OK) {
        fprintf(stderr, "audit_bench: cannot open the generated log\n");
        exit(1);
    }
    double t_open = now_s() - t0;
    if (audit_log_sign_head(log) != ERR_OK)
        exit(1);
    audit_log_close(log);

    struct audit_verify_report rep;
    t0 = now_s();
    enum err e = audit_verify_dir(dir, NULL, &rep);
    double dt = now_s() - t0;
    if (e != ERR_OK || !rep.ok || rep.events != n) {
        fprintf(stderr, "audit_bench: verification failed: %s\n", rep.reason);
        exit(1);
    }
    double rate = (double)n / dt;
    printf("verify   events=%lu size=%.0f MB open(index rebuild)=%.2f s verify=%.2f s "
           "events/s=%.0f MB/s=%.0f\n",
           n, (double)bytes / 1e6, t_open, dt, rate, (double)bytes / 1e6 / dt);
    fflush(stdout);
    rm_tree(dir);
    return rate;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: audit_bench DIR [SECONDS_PER_RUN] [EVENTS]\n");
        return 2;
    }
    const char *base = argv[1];
    double seconds = argc > 2 ? atof(argv[2]) : 5.0;
    unsigned long events = argc > 3 ? strtoul(argv[3], NULL, 10) : 1000000UL;
    if (seconds <= 0 || events == 0) {
        fprintf(stderr, "audit_bench: SECONDS_PER_RUN and EVENTS must be positive\n");
        return 2;
    }
    static const unsigned writers[] = {1, 8, 64};
    double best = 0;
    for (size_t i = 0; i < sizeof(writers) / sizeof(writers[0]); i++) {
        double r = bench_appends(base, writers[i], seconds);
        if (writers[i] == 64)
            best = r;
    }
    double v = bench_verify(base, events);
    int met = best >= TARGET_APPENDS_PER_S && v >= TARGET_VERIFY_PER_S;
    printf("targets: %s (>= %.0f durable events/s with 64 writers: %.0f; >= %.0f verified "
           "events/s: %.0f)\n",
           met ? "met" : "MISSED", TARGET_APPENDS_PER_S, best, TARGET_VERIFY_PER_S, v);
    return 0;
}
