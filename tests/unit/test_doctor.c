/*
 * Unit tests for the pieces of the online doctor and the metrics listener
 * that need no server: the TLS priority parser (monitor/doctor.h), the
 * loopback-only address parser (monitor/metrics_http.h), and the report of
 * a bare application (no stores open).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "app/app.h"
#include "http/http.h"
#include "monitor/doctor.h"
#include "monitor/metrics_http.h"

static int has_string(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (strcmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

static void test_tls_parse_server_priorities(void **state)
{
    (void)state;
    json_t *p = json_array(), *c = json_array();
    assert_int_equal(doctor_tls_parse(http_tls_priorities(), p, c), 0);
    assert_int_equal(json_array_size(p), 2);
    assert_true(has_string(p, "TLS1.3"));
    assert_true(has_string(p, "TLS1.2"));
    assert_true(has_string(c, "AES-256-GCM"));
    assert_true(has_string(c, "CHACHA20-POLY1305"));
    json_decref(p);
    json_decref(c);
}

static void test_tls_parse_weak(void **state)
{
    (void)state;
    static const char *const weak[] = {
        "NONE:+VERS-TLS1.2:+VERS-TLS1.0:+AES-128-GCM",
        "NONE:+VERS-TLS1.2:+AES-128-CBC",
        "NONE:+VERS-TLS1.3:+ARCFOUR-128",
        "NONE:+VERS-TLS1.2:+3DES-CBC",
        "NORMAL:+VERS-ALL",
    };
    for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
        json_t *p = json_array(), *c = json_array();
        assert_int_equal(doctor_tls_parse(weak[i], p, c), 1);
        json_decref(p);
        json_decref(c);
    }
    /* Removals enable nothing. */
    json_t *p = json_array(), *c = json_array();
    assert_int_equal(
        doctor_tls_parse("NONE:+VERS-TLS1.3:-VERS-TLS1.0:+AES-256-GCM:-AES-128-CBC", p, c), 0);
    assert_int_equal(json_array_size(p), 1);
    assert_int_equal(json_array_size(c), 1);
    json_decref(p);
    json_decref(c);
}

static void test_metrics_listen_parse(void **state)
{
    (void)state;
    char host[64];
    uint16_t port = 1;
    assert_int_equal(metrics_http_parse("127.0.0.1:9464", host, sizeof(host), &port), ERR_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9464);
    assert_int_equal(metrics_http_parse("127.1.2.3:0", host, sizeof(host), &port), ERR_OK);
    assert_int_equal(port, 0);
    assert_int_equal(metrics_http_parse("[::1]:9100", host, sizeof(host), &port), ERR_OK);
    assert_string_equal(host, "::1");
    static const char *const bad[] = {
        "0.0.0.0:9100",
        "10.0.0.1:9100",
        "[::]:9100",
        "localhost:9100",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "127.0.0.1:9x",
        ":9100",
        "[::ffff:10.0.0.1]:1",
        "128.0.0.1:80",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(metrics_http_parse(bad[i], host, sizeof(host), &port), ERR_INVALID);
    /* Too long for the buffer. */
    assert_int_equal(metrics_http_parse("127.0.0.1:1", host, 4, &port), ERR_INVALID);
}

static void test_report_bare_app(void **state)
{
    (void)state;
    struct app app;
    memset(&app, 0, sizeof(app));
    app_config_defaults(&app.cfg, "/nonexistent-coffer-data");
    snprintf(app.cfg.listen_host, sizeof(app.cfg.listen_host), "0.0.0.0");
    app.cfg.seccomp = 0;
    json_t *rep = NULL;
    assert_int_equal(doctor_report(&app, &rep), ERR_OK);
    assert_non_null(rep);
    assert_true(json_is_false(json_object_get(rep, "seccomp")));
    assert_true(json_is_false(json_object_get(rep, "listen_loopback")));
    assert_true(json_is_true(json_object_get(json_object_get(rep, "tls"), "enabled")));
    json_t *f = json_object_get(rep, "findings");
    int seccomp = 0, network = 0;
    size_t i;
    json_t *v;
    json_array_foreach(f, i, v)
    {
        const char *check = json_string_value(json_object_get(v, "check"));
        const char *problem = json_string_value(json_object_get(v, "problem"));
        assert_non_null(json_string_value(json_object_get(v, "fix")));
        seccomp |= strcmp(check, "process") == 0 && strstr(problem, "seccomp") != NULL;
        network |= strcmp(check, "network") == 0;
    }
    assert_true(seccomp);
    assert_true(network);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rep, "keys"), "provider")), "none");
    json_decref(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_parse_server_priorities),
        cmocka_unit_test(test_tls_parse_weak),
        cmocka_unit_test(test_metrics_listen_parse),
        cmocka_unit_test(test_report_bare_app),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
