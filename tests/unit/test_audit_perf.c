/*
 * Scale: a log of many small events opens (index rebuild) and verifies
 * quickly. Set COFFER_AUDIT_PERF_EVENTS to change the size (default 200000).
 * Rates are printed; the hard bounds are loose enough for sanitizer builds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit/audit.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void test_open_and_verify_scale(void **state)
{
    (void)state;
    const char *env = getenv("COFFER_AUDIT_PERF_EVENTS");
    long n = env ? atol(env) : 200000;
    assert_true(n > 0);
    char root[] = "/tmp/coffer-audit-perf-XXXXXX";
    assert_non_null(mkdtemp(root));
    char dir[128], path[160];
    snprintf(dir, sizeof(dir), "%s/audit", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/events.log", dir);

    /* Write the events in the documented framing, in big chunks. */
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    char ev[256];
    for (long i = 0; i < n; i++) {
        int len = snprintf(ev + 4, sizeof(ev) - 4,
                           "{\"v\":1,\"time\":\"2024-05-01T12:00:00.123Z\",\"principal\":"
                           "\"user:alice\",\"action\":\"artifact:Read\",\"resource\":\"p/dev/m\","
                           "\"decision\":\"allow\",\"n\":%ld}",
                           i);
        ev[0] = 0;
        ev[1] = 0;
        ev[2] = (char)(len >> 8);
        ev[3] = (char)len;
        assert_int_equal(fwrite(ev, 1, (size_t)len + 4, fp), (size_t)len + 4);
    }
    fclose(fp);

    struct audit_options o;
    audit_options_init(&o);
    o.sign_interval_ms = 0;
    struct audit_log *log = NULL;
    double t0 = now_s();
    assert_int_equal(audit_log_open(dir, &o, &log), ERR_OK);
    double t_open = now_s() - t0;
    assert_int_equal(audit_log_size(log), (uint64_t)n);
    char *proof = NULL;
    assert_int_equal(audit_log_inclusion_proof(log, (uint64_t)n / 3, &proof), ERR_OK);
    free(proof);
    audit_log_close(log);

    struct audit_verify_report rep;
    t0 = now_s();
    assert_int_equal(audit_verify_dir(dir, NULL, &rep), ERR_OK);
    double t_verify = now_s() - t0;
    assert_int_equal(rep.events, (uint64_t)n);
    print_message("%ld events: open %.3f s (%.0f events/s), verify %.3f s (%.0f events/s)\n", n,
                  t_open, (double)n / t_open, t_verify, (double)n / t_verify);
    assert_true(t_open < 30.0);
    assert_true(t_verify < 30.0);
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_verify_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
