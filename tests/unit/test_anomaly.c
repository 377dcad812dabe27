/*
 * The anomaly detector: four simulated weeks of normal work by several
 * principals raise nothing; each rule fires on a workload built for it,
 * names the principal and the audit events, and only that rule fires.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "monitor/anomaly.h"

#define DAY 86400
#define T0 1714521600 /* 2024-05-01T00:00:00Z, a Wednesday */
#define MAX_FOUND 256

struct found {
    enum anomaly_rule rule[MAX_FOUND];
    enum anomaly_severity sev[MAX_FOUND];
    char principal[MAX_FOUND][ANOMALY_PRINCIPAL_MAX];
    uint64_t first_event[MAX_FOUND];
    size_t n_events[MAX_FOUND];
    size_t n;
};

static void on_finding(void *ctx, const struct anomaly_finding *f)
{
    struct found *fd = ctx;
    assert_non_null(f->evidence);
    assert_true(f->summary[0] != '\0');
    if (fd->n == MAX_FOUND)
        return;
    fd->rule[fd->n] = f->rule;
    fd->sev[fd->n] = f->severity;
    snprintf(fd->principal[fd->n], ANOMALY_PRINCIPAL_MAX, "%s", f->principal);
    fd->first_event[fd->n] = f->n_events > 0 ? f->events[0] : UINT64_MAX;
    fd->n_events[fd->n] = f->n_events;
    fd->n++;
}

static uint64_t next_index;
static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) & 0xffffff;
}

static uint64_t feed(struct anomaly_detector *d, int64_t t, const char *who, const char *method,
                     const char *ip, const char *action, const char *res, int allow, int64_t bytes,
                     int sens)
{
    struct anomaly_event ev = {.index = next_index++,
                               .time = t,
                               .principal = who,
                               .auth_method = method,
                               .source_ip = ip,
                               .action = action,
                               .resource = res,
                               .allow = allow,
                               .status = allow ? 200 : 403,
                               .bytes = bytes,
                               .sensitivity = sens};
    anomaly_feed(d, &ev);
    return ev.index;
}

/* One download as the server records it: the gate's decision (with the
 * sensitivity) and the "content served" event (with the bytes). */
static uint64_t download(struct anomaly_detector *d, int64_t t, const char *who, const char *ip,
                         const char *res, int64_t bytes, int sens)
{
    const char *method = strncmp(who, "service:", 8) == 0 ? "token" : "password";
    uint64_t i = feed(d, t, who, method, ip, "artifact:Download", res, 1, 0, sens);
    feed(d, t, who, method, ip, "artifact:Download", res, 1, bytes, -1);
    return i;
}

struct user {
    const char *name;
    const char *ip[2];
    const char *projects[3];
    int n_projects;
};

static const struct user users[] = {
    {"user:alice", {"10.1.0.11", "10.1.0.12"}, {"fraud", "churn"}, 2},
    {"user:bob", {"10.1.0.21", "10.1.0.21"}, {"churn", "ads", "pricing"}, 3},
    {"user:carol", {"10.1.0.31", "10.1.0.32"}, {"fraud"}, 1},
};

/* Normal work for days [from, to): users on weekdays between 09:00 and
 * 17:59 UTC from their office addresses, in their usual projects, with a few
 * denied requests; a CI token every hour from its runner. */
static void normal_days(struct anomaly_detector *d, int from, int to)
{
    char res[128];
    for (int day = from; day < to; day++) {
        int64_t base = T0 + (int64_t)day * DAY;
        int weekday = (3 + day) % 7; /* 0 = Sunday */
        for (int h = 0; h < 24; h++) {
            snprintf(res, sizeof(res), "ci/dev/build-cache@%d", day);
            download(d, base + h * 3600 + 120, "service:ci", "10.2.0.5", res, 10 << 20, 1);
        }
        if (weekday == 0 || weekday == 6)
            continue;
        for (size_t u = 0; u < sizeof(users) / sizeof(users[0]); u++) {
            const struct user *us = &users[u];
            int n = 20 + (int)(rng() % 20);
            for (int k = 0; k < n; k++) {
                int64_t t = base + 9 * 3600 + (int64_t)(rng() % (9 * 3600));
                const char *ip = us->ip[rng() % 2];
                const char *proj = us->projects[rng() % (unsigned)us->n_projects];
                snprintf(res, sizeof(res), "%s/prod/model-%u@1", proj, rng() % 6);
                unsigned r = rng() % 10;
                if (r < 4)
                    feed(d, t, us->name, "password", ip, "artifact:Read", res, 1, 0, 1);
                else if (r < 6)
                    feed(d, t, us->name, "password", ip, "artifact:List", proj, 1, 0, -1);
                else if (r < 9)
                    download(d, t, us->name, ip, res, (int64_t)(5 + rng() % 45) << 20,
                             1 + (int)(rng() % 2));
                else
                    feed(d, t, us->name, "password", ip, "artifact:Write", res, rng() % 3 != 0, 0,
                         -1);
            }
        }
    }
}

static struct anomaly_detector *history(struct found *fd)
{
    memset(fd, 0, sizeof(*fd));
    next_index = 0;
    rng_state = 12345;
    struct anomaly_detector *d = anomaly_new(NULL, on_finding, fd);
    assert_non_null(d);
    normal_days(d, 0, 28);
    return d;
}

static size_t count_rule(const struct found *fd, enum anomaly_rule r, size_t from)
{
    size_t n = 0;
    for (size_t i = from; i < fd->n; i++)
        n += fd->rule[i] == r;
    return n;
}

/* The findings from index `from` on are exactly one, of rule r for who. */
static size_t expect_only(const struct found *fd, size_t from, enum anomaly_rule r, const char *who)
{
    for (size_t i = from; i < fd->n; i++) {
        if (fd->rule[i] != r)
            fail_msg("unexpected %s finding for %s", anomaly_rule_name(fd->rule[i]),
                     fd->principal[i]);
    }
    assert_int_equal(count_rule(fd, r, from), 1);
    assert_string_equal(fd->principal[from], who);
    return from;
}

static void test_normal_workload_is_quiet(void **state)
{
    (void)state;
    struct found fd;
    struct anomaly_detector *d = history(&fd);
    for (size_t i = 0; i < fd.n; i++)
        print_message("unexpected: %s %s\n", anomaly_rule_name(fd.rule[i]), fd.principal[i]);
    assert_int_equal(fd.n, 0);
    assert_int_equal(anomaly_principals(d), 4);
    /* Two more weeks, still quiet with established baselines. */
    normal_days(d, 28, 42);
    assert_int_equal(fd.n, 0);
    anomaly_free(d);
}

static void test_bulk_download(void **state)
{
    (void)state;
    struct found fd;
    struct anomaly_detector *d = history(&fd);
    int64_t t = T0 + 28 * DAY + 10 * 3600; /* a Wednesday, working hours */
    char res[64];
    uint64_t first = 0;
    for (int i = 0; i < 60; i++) {
        snprintf(res, sizeof(res), "fraud/prod/dump-%d@1", i);
        uint64_t idx = download(d, t + i * 30, "user:alice", "10.1.0.11", res, 50 << 20, 1);
        if (i == 0)
            first = idx;
    }
    size_t k = expect_only(&fd, 0, ANOMALY_BULK_DOWNLOAD, "user:alice");
    assert_int_equal(fd.sev[k], ANOMALY_HIGH);
    assert_true(fd.n_events[k] > 1);
    assert_true(fd.first_event[k] >= first);
    anomaly_free(d);
}

static void test_bulk_download_absolute_without_history(void **state)
{
    (void)state;
    struct found fd;
    memset(&fd, 0, sizeof(fd));
    struct anomaly_config cfg;
    anomaly_config_defaults(&cfg);
    cfg.bulk_abs_bytes = 1LL << 30;
    struct anomaly_detector *d = anomaly_new(&cfg, on_finding, &fd);
    for (int i = 0; i < 3; i++)
        download(d, T0 + i, "user:new", "10.9.0.1", "x/dev/a@1", 400 << 20, 1);
    assert_int_equal(count_rule(&fd, ANOMALY_BULK_DOWNLOAD, 0), 1);
    anomaly_free(d);
}

static void test_new_network(void **state)
{
    (void)state;
    struct found fd;
    struct anomaly_detector *d = history(&fd);
    int64_t t = T0 + 28 * DAY + 11 * 3600;
    uint64_t idx = feed(d, t, "user:alice", "password", "203.0.113.7", "artifact:Read",
                        "fraud/prod/model-1@1", 1, 0, 1);
    size_t k = expect_only(&fd, 0, ANOMALY_NEW_NETWORK, "user:alice");
    assert_int_equal(fd.first_event[k], idx);
    /* The network is now known: a second use raises nothing. */
    feed(d, t + 60, "user:alice", "password", "203.0.113.9", "artifact:Read",
         "fraud/prod/model-1@1", 1, 0, 1);
    assert_int_equal(fd.n, 1);
    anomaly_free(d);
}

static void test_new_principal_learns_first(void **state)
{
    (void)state;
    struct found fd;
    memset(&fd, 0, sizeof(fd));
    struct anomaly_detector *d = anomaly_new(NULL, on_finding, &fd);
    feed(d, T0, "user:dave", "password", "10.3.0.1", "artifact:Read", "a/dev/x", 1, 0, 1);
    feed(d, T0 + 60, "user:dave", "password", "192.0.2.1", "artifact:Read", "a/dev/x", 1, 0, 1);
    assert_int_equal(fd.n, 0);
    anomaly_free(d);
}

static void test_off_hours_confidential(void **state)
{
    (void)state;
    struct found fd;
    struct anomaly_detector *d = history(&fd);
    int64_t night = T0 + 28 * DAY + 3 * 3600 + 17 * 60; /* 03:17 */
    /* Internal content at night is not flagged. */
    download(d, night, "user:carol", "10.1.0.31", "fraud/prod/model-2@1", 1 << 20, 1);
    assert_int_equal(fd.n, 0);
    uint64_t idx =
        download(d, night + 60, "user:carol", "10.1.0.31", "fraud/prod/secret@1", 1 << 20, 3);
    size_t k = expect_only(&fd, 0, ANOMALY_OFF_HOURS, "user:carol");
    assert_int_equal(fd.sev[k], ANOMALY_HIGH);
    assert_int_equal(fd.first_event[k], idx);
    /* Confidential content during working hours is not flagged. */
    download(d, T0 + 28 * DAY + 14 * 3600, "user:carol", "10.1.0.31", "fraud/prod/secret@1",
             1 << 20, 2);
    assert_int_equal(fd.n, 1);
    anomaly_free(d);
}

static void test_deny_burst(void **state)
{
    (void)state;
    struct found fd;
    struct anomaly_detector *d = history(&fd);
    int64_t t = T0 + 28 * DAY + 10 * 3600;
    uint64_t last = 0;
    for (int i = 0; i < 12; i++)
        last = feed(d, t + i * 5, "user:bob", "password", "10.1.0.21", "artifact:Download",
                    "fraud/prod/model-1@1", 0, 0, 2);
    size_t k = expect_only(&fd, 0, ANOMALY_DENY_BURST, "user:bob");
    assert_int_equal(fd.n_events[k], 10);
    assert_true(fd.first_event[k] <= last);
    anomaly_free(d);
}

static void test_slow_denies_are_quiet(void **state)
{
    (void)state;
    struct found fd;
    struct anomaly_detector *d = history(&fd);
    int64_t t = T0 + 28 * DAY + 9 * 3600;
    for (int i = 0; i < 12; i++)
        feed(d, t + i * 60, "user:bob", "password", "10.1.0.21", "artifact:Download",
             "fraud/prod/model-1@1", 0, 0, 2);
    assert_int_equal(fd.n, 0);
    anomaly_free(d);
}

static void test_token_several_networks(void **state)
{
    (void)state;
    struct found fd;
    struct anomaly_detector *d = history(&fd);
    int64_t t = T0 + 28 * DAY + 10 * 3600 + 600;
    struct anomaly_config cfg;
    anomaly_config_defaults(&cfg);
    download(d, t, "service:ci", "10.2.0.5", "ci/dev/build-cache@1", 1 << 20, 1);
    download(d, t + 60, "service:ci", "198.51.100.4", "ci/dev/build-cache@1", 1 << 20, 1);
    download(d, t + 120, "service:ci", "203.0.113.50", "ci/dev/build-cache@1", 1 << 20, 1);
    assert_int_equal(count_rule(&fd, ANOMALY_TOKEN_NETWORKS, 0), 1);
    /* The two new networks are also first uses. */
    assert_int_equal(count_rule(&fd, ANOMALY_NEW_NETWORK, 0), 2);
    assert_int_equal(fd.n, 3);
    for (size_t i = 0; i < fd.n; i++) {
        if (fd.rule[i] == ANOMALY_TOKEN_NETWORKS) {
            assert_int_equal(fd.sev[i], ANOMALY_HIGH);
            assert_int_equal(fd.n_events[i], 3);
        }
    }
    anomaly_free(d);
}

static void test_project_sweep(void **state)
{
    (void)state;
    struct found fd;
    struct anomaly_detector *d = history(&fd);
    int64_t t = T0 + 28 * DAY + 13 * 3600;
    static const char *const projects[] = {"fraud", "churn", "ads",     "pricing",
                                           "hr",    "legal", "finance", "risk"};
    char res[64];
    for (size_t i = 0; i < 8; i++) {
        snprintf(res, sizeof(res), "%s/prod/model@1", projects[i]);
        feed(d, t + (int64_t)i * 20, "user:carol", "password", "10.1.0.31", "artifact:Read", res, 1,
             0, 1);
    }
    size_t k = expect_only(&fd, 0, ANOMALY_PROJECT_SWEEP, "user:carol");
    assert_int_equal(fd.n_events[k], 5);
    anomaly_free(d);
}

static void test_muted_replay_reports_nothing(void **state)
{
    (void)state;
    struct found fd;
    memset(&fd, 0, sizeof(fd));
    struct anomaly_detector *d = anomaly_new(NULL, on_finding, &fd);
    anomaly_set_muted(d, 1);
    for (int i = 0; i < 20; i++)
        feed(d, T0 + i, "user:x", "password", "10.0.0.1", "artifact:Read", "p/dev/a", 0, 0, 1);
    assert_int_equal(fd.n, 0);
    anomaly_set_muted(d, 0);
    anomaly_free(d);
}

static void test_event_from_json(void **state)
{
    (void)state;
    const char *j =
        "{\"v\":1,\"time\":\"2024-05-01T12:00:00.123Z\",\"request_id\":\"r\","
        "\"principal\":\"user:alice\",\"auth_method\":\"password\",\"mfa\":false,"
        "\"source_ip\":\"10.0.0.1\",\"user_agent\":null,\"action\":\"artifact:Download\","
        "\"resource\":\"a/prod/m@1\",\"decision\":\"allow\",\"reason\":null,"
        "\"statements\":[],\"status\":200,\"bytes\":42,"
        "\"detail\":{\"sensitivity\":\"restricted\"}}";
    struct anomaly_event ev;
    json_t *holder;
    assert_int_equal(anomaly_event_from_json(j, strlen(j), 7, &ev, &holder), ERR_OK);
    assert_int_equal(ev.index, 7);
    assert_int_equal(ev.time, 1714564800);
    assert_string_equal(ev.principal, "user:alice");
    assert_true(ev.allow);
    assert_int_equal(ev.bytes, 42);
    assert_int_equal(ev.sensitivity, 3);
    json_decref(holder);
    assert_int_equal(anomaly_event_from_json("[1]", 3, 0, &ev, &holder), ERR_INVALID);
    assert_null(holder);
    const char *bad_time = "{\"time\":\"yesterday\",\"action\":\"x\"}";
    assert_int_equal(anomaly_event_from_json(bad_time, strlen(bad_time), 0, &ev, &holder),
                     ERR_INVALID);
    assert_int_equal(anomaly_parse_time("2024-05-01T00:00:00Z"), T0);
    assert_int_equal(anomaly_parse_time("2024-05-01T00:00:00+02:00"), -1);
}

static void test_config_from_json(void **state)
{
    (void)state;
    struct anomaly_config cfg;
    anomaly_config_defaults(&cfg);
    char why[128];
    json_t *o = json_pack("{s:i, s:f, s:i}", "deny_count", 5, "bulk_factor", 4.5, "window", 3600);
    assert_int_equal(anomaly_config_from_json(o, &cfg, why, sizeof(why)), ERR_OK);
    assert_int_equal(cfg.deny_count, 5);
    assert_true(cfg.bulk_factor > 4.4 && cfg.bulk_factor < 4.6);
    assert_int_equal(cfg.window, 3600);
    json_decref(o);
    o = json_pack("{s:i}", "no_such", 1);
    assert_int_equal(anomaly_config_from_json(o, &cfg, why, sizeof(why)), ERR_INVALID);
    assert_non_null(strstr(why, "no_such"));
    json_decref(o);
    o = json_pack("{s:i}", "deny_count", 1000);
    assert_int_equal(anomaly_config_from_json(o, &cfg, why, sizeof(why)), ERR_INVALID);
    json_decref(o);
    assert_string_equal(anomaly_rule_name(ANOMALY_DENY_BURST), "deny_burst");
    assert_int_equal(anomaly_rule_from_name("project_sweep"), ANOMALY_PROJECT_SWEEP);
    assert_int_equal(anomaly_rule_from_name("nope"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal_workload_is_quiet),
        cmocka_unit_test(test_bulk_download),
        cmocka_unit_test(test_bulk_download_absolute_without_history),
        cmocka_unit_test(test_new_network),
        cmocka_unit_test(test_new_principal_learns_first),
        cmocka_unit_test(test_off_hours_confidential),
        cmocka_unit_test(test_deny_burst),
        cmocka_unit_test(test_slow_denies_are_quiet),
        cmocka_unit_test(test_token_several_networks),
        cmocka_unit_test(test_project_sweep),
        cmocka_unit_test(test_muted_replay_reports_nothing),
        cmocka_unit_test(test_event_from_json),
        cmocka_unit_test(test_config_from_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
