/*
 * Eight threads append at once: every event lands exactly once, indexes are
 * unique, the durable count is right, fsyncs are shared (group commit), and
 * the result verifies. When the storage fails under many writers, every
 * writer queued behind the failed flush returns an error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit/audit.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define THREADS 8
#define PER_THREAD 250
#define TOTAL (THREADS * PER_THREAD)

struct worker {
    struct audit_log *log;
    int id;
    uint64_t idx[PER_THREAD];
    int errors;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char ev[128];
    for (int i = 0; i < PER_THREAD; i++) {
        int len =
            snprintf(ev, sizeof(ev), "{\"v\":1,\"action\":\"t\",\"thread\":%d,\"i\":%d}", w->id, i);
        if (audit_log_append(w->log, ev, (size_t)len, &w->idx[i]) != ERR_OK)
            w->errors++;
        if (i == PER_THREAD / 2 && w->id == 0 && audit_log_sign_head(w->log) != ERR_OK)
            w->errors++;
    }
    return NULL;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int owner_of[TOTAL];

static int check_cb(void *ctx, uint64_t index, const char *json, size_t len)
{
    (void)ctx;
    int t = -1, i = -1;
    char buf[128];
    if (len >= sizeof(buf))
        return 1;
    memcpy(buf, json, len);
    buf[len] = 0;
    if (sscanf(buf, "{\"v\":1,\"action\":\"t\",\"thread\":%d,\"i\":%d}", &t, &i) != 2)
        return 1;
    owner_of[index] = t * PER_THREAD + i;
    return 0;
}

static void test_concurrent_appends(void **state)
{
    (void)state;
    char root[] = "/tmp/coffer-audit-conc-XXXXXX";
    assert_non_null(mkdtemp(root));
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/audit", root);
    struct audit_options o;
    audit_options_init(&o);
    o.sign_every_events = 100;
    o.sign_interval_ms = 5;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(dir, &o, &log), ERR_OK);

    static struct worker w[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t].log = log;
        w[t].id = t;
        w[t].errors = 0;
        assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);

    static int used[TOTAL];
    memset(used, 0, sizeof(used));
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(w[t].errors, 0);
        for (int i = 0; i < PER_THREAD; i++) {
            assert_true(w[t].idx[i] < TOTAL);
            used[w[t].idx[i]]++;
            /* One thread's events keep their order. */
            if (i > 0)
                assert_true(w[t].idx[i] > w[t].idx[i - 1]);
        }
    }
    for (int i = 0; i < TOTAL; i++)
        assert_int_equal(used[i], 1);

    struct audit_stats st;
    audit_log_stats(log, &st);
    assert_int_equal(st.events, TOTAL);
    assert_true(st.flushes >= 1 && st.flushes <= TOTAL);
    print_message("%d appends shared %llu write+fdatasync batches\n", TOTAL,
                  (unsigned long long)st.flushes);
    assert_int_equal(audit_log_size(log), TOTAL);

    /* The event at each index is the one its appender was told. */
    memset(owner_of, 0xff, sizeof(owner_of));
    assert_int_equal(audit_log_iter(log, 0, check_cb, NULL), ERR_OK);
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++)
            assert_int_equal(owner_of[w[t].idx[i]], t * PER_THREAD + i);
    audit_log_close(log);

    struct audit_verify_report rep;
    assert_int_equal(audit_verify_dir(dir, NULL, &rep), ERR_OK);
    assert_int_equal(rep.events, TOTAL);
    assert_int_equal(rep.last_head_size, TOTAL);
    assert_true(rep.heads >= 2);
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

#define FAIL_THREADS 16
#define FAIL_MAX_APPENDS 1000000

struct fail_worker {
    struct audit_log *log;
    int id;
    int appended;
    enum err last;
};

/* Appends until an append fails. */
static void *fail_worker_main(void *arg)
{
    struct fail_worker *w = arg;
    char ev[128];
    w->last = ERR_OK;
    for (int i = 0; i < FAIL_MAX_APPENDS && w->last == ERR_OK; i++) {
        int len =
            snprintf(ev, sizeof(ev), "{\"v\":1,\"action\":\"t\",\"thread\":%d,\"i\":%d}", w->id, i);
        w->last = audit_log_append(w->log, ev, (size_t)len, NULL);
        if (w->last == ERR_OK)
            w->appended++;
    }
    return NULL;
}

static void test_storage_failure_wakes_every_writer(void **state)
{
    (void)state;
    char root[] = "/tmp/coffer-audit-fail-XXXXXX";
    assert_non_null(mkdtemp(root));
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/audit", root);
    struct audit_options o;
    audit_options_init(&o);
    o.sign_every_events = 50;
    o.sign_interval_ms = 0;
    struct audit_log *log = NULL;
    assert_int_equal(audit_log_open(dir, &o, &log), ERR_OK);

    static struct fail_worker w[FAIL_THREADS];
    pthread_t th[FAIL_THREADS];
    for (int t = 0; t < FAIL_THREADS; t++) {
        w[t] = (struct fail_worker){.log = log, .id = t};
        assert_int_equal(pthread_create(&th[t], NULL, fail_worker_main, &w[t]), 0);
    }
    /* Break the storage while the writers are queued behind flushes. */
    while (audit_log_size(log) < 300)
        usleep(1000);
    assert_int_equal(audit_log_test_break_storage(log), 0);
    /* Every writer returns (none is left waiting for a flush that never
     * comes) and the last append of each failed. */
    long total = 0;
    for (int t = 0; t < FAIL_THREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(w[t].last, ERR_UNAVAILABLE);
        total += w[t].appended;
    }
    struct audit_stats st;
    audit_log_stats(log, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal((long)st.events, total);
    audit_log_close(log);

    /* What was reported durable is on the disk and verifies. */
    struct audit_verify_report rep;
    assert_int_equal(audit_verify_dir(dir, NULL, &rep), ERR_OK);
    assert_int_equal((long)rep.events, total);
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_appends),
        cmocka_unit_test(test_storage_failure_wakes_every_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
