/*
 * coffer server: runs the HTTPS server until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "meta/meta.h"
#include "app/sandbox.h"
#include "audit/syslog.h"
#include "cli/cli.h"
#include "http/http.h"
#include "monitor/metrics_http.h"
#include "util/log.h"

static void server_usage(FILE *f)
{
    fprintf(f, "usage: coffer server --data DIR [--listen HOST:PORT] [--port-file FILE]\n"
               "                     [--threads N] [--behind-proxy] [--new-audit-segment]\n"
               "                     [--syslog udp://HOST:PORT|tcp://HOST:PORT|unix:PATH]\n"
               "                     [--user NAME] [--no-seccomp] [--master-key-file PATH]\n"
               "                     [--max-per-ip N] [--client-ca FILE]\n"
               "                     [--metrics-listen 127.0.0.1:PORT]\n\n"
               "Serves the registry over HTTPS (default 127.0.0.1:8443). Port 0 picks a free\n"
               "port; --port-file writes the port chosen. --behind-proxy serves plain HTTP on a\n"
               "loopback address for a TLS-terminating proxy that sets X-Forwarded-For and\n"
               "X-Forwarded-Proto; it is refused on any other address. The server refuses to\n"
               "start when its audit log fails verification, unless --new-audit-segment is\n"
               "given: the old log is kept and the new segment is recorded. --syslog also\n"
               "forwards every audit event as an RFC 5424 message (best effort; the audit log\n"
               "stays the record). --user drops root to NAME once the socket is bound (DIR must\n"
               "belong to NAME). After start-up the process is confined to a seccomp allow-list\n"
               "of system calls (docs/SECURITY.md); --no-seccomp turns that off. --max-per-ip\n"
               "caps concurrent connections from one client address (default 256).\n"
               "--master-key-file opens a keyring sealed under a master key (or set\n"
               "COFFER_MASTER_KEY / COFFER_MASTER_KEY_FILE); see docs/KEYS.md.\n"
               "--client-ca asks TLS clients for a certificate issued by one of the CAs in\n"
               "FILE (PEM); a certificate bound with 'coffer service cert add' authenticates\n"
               "as its service account (docs/AUTHENTICATION.md).\n"
               "--metrics-listen also serves GET /metrics over plain HTTP without\n"
               "authentication on a loopback address only (for Prometheus on the same host);\n"
               "see docs/MONITORING.md.\n");
}

/* Splits HOST:PORT or [V6]:PORT. */
static int server_parse_listen(const char *s, struct app_config *cfg)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL)
        return -1;
    size_t hlen = (size_t)(colon - s);
    const char *host = s;
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(cfg->listen_host))
        return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    memcpy(cfg->listen_host, host, hlen);
    cfg->listen_host[hlen] = '\0';
    cfg->listen_port = (uint16_t)port;
    return 0;
}

/* Stops forwarding to syslog (no event is passed after this), closes the
 * forwarder, then the application (whose last events are not forwarded). */
static void server_close(struct app *app)
{
    if (app->audit != NULL && app->audit_syslog != NULL)
        audit_log_set_forward(app->audit, NULL, NULL);
    audit_syslog_close(app->audit_syslog);
    app->audit_syslog = NULL;
    app_close(app);
}

static int server_is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
}

int cli_server(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"port-file", required_argument, NULL, 'P'},
        {"threads", required_argument, NULL, 't'},
        {"behind-proxy", no_argument, NULL, 'x'},
        {"new-audit-segment", no_argument, NULL, 'N'},
        {"syslog", required_argument, NULL, 'S'},
        {"user", required_argument, NULL, 'u'},
        {"no-seccomp", no_argument, NULL, 'n'},
        {"max-per-ip", required_argument, NULL, 'I'},
        {"master-key-file", required_argument, NULL, 'M'},
        {"metrics-listen", required_argument, NULL, 'm'},
        {"client-ca", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = NULL, *listen = NULL, *port_file = NULL, *syslog_target = NULL;
    long threads = 0;
    int behind_proxy = 0, new_segment = 0, c;
    const char *run_as = NULL, *master_key_file = NULL, *client_ca = NULL;
    const char *metrics_listen = NULL;
    int no_seccomp = 0;
    long max_per_ip = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'P':
            port_file = optarg;
            break;
        case 't':
            threads = strtol(optarg, NULL, 10);
            if (threads < 1 || threads > 256) {
                fprintf(stderr, "coffer server: --threads must be 1..256\n");
                return 2;
            }
            break;
        case 'x':
            behind_proxy = 1;
            break;
        case 'N':
            new_segment = 1;
            break;
        case 'u':
            run_as = optarg;
            break;
        case 'n':
            no_seccomp = 1;
            break;
        case 'I':
            max_per_ip = strtol(optarg, NULL, 10);
            if (max_per_ip < 1 || max_per_ip > 65536) {
                fprintf(stderr, "coffer server: --max-per-ip must be 1..65536\n");
                return 2;
            }
            break;
        case 'M':
            master_key_file = optarg;
            break;
        case 'm':
            metrics_listen = optarg;
            break;
        case 'C':
            client_ca = optarg;
            break;
        case 'S':
            syslog_target = optarg;
            break;
        case 'h':
            server_usage(stdout);
            return 0;
        default:
            server_usage(stderr);
            return 2;
        }
    }
    if (data == NULL || optind != argc || strlen(data) > 900) {
        server_usage(stderr);
        return 2;
    }
    struct app app;
    memset(&app, 0, sizeof(app));
    app_config_defaults(&app.cfg, data);
    if (listen != NULL && server_parse_listen(listen, &app.cfg) != 0) {
        fprintf(stderr, "coffer server: --listen must be HOST:PORT with a numeric address\n");
        return 2;
    }
    if (threads > 0)
        app.cfg.threads = (unsigned)threads;
    if (max_per_ip > 0)
        app.cfg.max_per_ip = (unsigned)max_per_ip;
    app.cfg.behind_proxy = behind_proxy;
    app.cfg.seccomp = !no_seccomp;
    app.cfg.audit_new_segment = new_segment;
    if (master_key_file != NULL &&
        snprintf(app.cfg.master_key_file, sizeof(app.cfg.master_key_file), "%s", master_key_file) >=
            (int)sizeof(app.cfg.master_key_file)) {
        fprintf(stderr, "coffer server: --master-key-file path too long\n");
        return 2;
    }
    if (client_ca != NULL && (behind_proxy || client_ca[0] == '\0' ||
                              snprintf(app.cfg.client_ca, sizeof(app.cfg.client_ca), "%s",
                                       client_ca) >= (int)sizeof(app.cfg.client_ca))) {
        fprintf(stderr, "coffer server: --client-ca takes a PEM file path and cannot be combined "
                        "with --behind-proxy (the proxy terminates TLS)\n");
        return 2;
    }
    if (metrics_listen != NULL) {
        char mhost[64];
        uint16_t mport = 0;
        if (metrics_http_parse(metrics_listen, mhost, sizeof(mhost), &mport) != ERR_OK) {
            fprintf(stderr, "coffer server: --metrics-listen serves metrics without "
                            "authentication and is allowed only on a numeric loopback address "
                            "(127.0.0.1:PORT or [::1]:PORT)\n");
            return 2;
        }
    }
    if (behind_proxy && !server_is_loopback(app.cfg.listen_host)) {
        fprintf(stderr, "coffer server: --behind-proxy serves plain HTTP and is allowed only on a "
                        "loopback address\n");
        return 2;
    }
    /* Signals are taken synchronously by this thread; workers never see them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    enum err e = ERR_OK;
    if (syslog_target != NULL &&
        (e = audit_syslog_open(syslog_target, &app.audit_syslog)) != ERR_OK) {
        fprintf(stderr, "coffer server: --syslog must be udp://HOST:PORT, tcp://HOST:PORT or "
                        "unix:/PATH with a host that resolves\n");
        return err_info(e)->exit_code;
    }
    e = sandbox_check_files(data);
    if (e == ERR_OK)
        e = app_open(&app);
    if (e == ERR_OK)
        e = meta_open_readers(app.meta, app.cfg.threads);
    /* Every event written from now on goes to syslog once it is durable. */
    if (e == ERR_OK && app.audit_syslog != NULL)
        audit_log_set_forward(app.audit, audit_syslog_forward, app.audit_syslog);
    if (e != ERR_OK) {
        server_close(&app);
        return err_info(e)->exit_code;
    }
    /* Sockets are bound first (a privileged port needs root), then root is
     * given up, and only then do the daemons start: no request is ever
     * served with root's privileges. */
    int lfd = -1, mfd = -1;
    unsigned mport = 0;
    e = http_listen(&app, &lfd);
    if (e == ERR_OK && metrics_listen != NULL)
        e = metrics_http_listen(metrics_listen, &mfd, &mport);
    if (e == ERR_OK)
        e = sandbox_drop_user(run_as, data);
    struct MHD_Daemon *d = NULL, *md = NULL;
    if (e == ERR_OK)
        e = http_start(&app, lfd, &d);
    else if (lfd >= 0)
        close(lfd);
    if (e == ERR_OK && mfd >= 0) {
        e = metrics_http_start(&app, mfd, &md);
        if (e == ERR_OK) {
            char mhost[64];
            uint16_t unused = 0;
            metrics_http_parse(metrics_listen, mhost, sizeof(mhost), &unused);
            int mv6 = strchr(mhost, ':') != NULL;
            snprintf(app.cfg.metrics_listen, sizeof(app.cfg.metrics_listen), "%s%s%s:%u",
                     mv6 ? "[" : "", mhost, mv6 ? "]" : "", mport);
            printf("coffer: metrics on http://%s/metrics (no authentication)\n",
                   app.cfg.metrics_listen);
        }
    } else if (mfd >= 0) {
        close(mfd);
    }
    /* Start-up is over: every file is open and the daemons run unprivileged. */
    if (e == ERR_OK && !no_seccomp)
        e = sandbox_seccomp();
    if (e != ERR_OK) {
        metrics_http_stop(md);
        http_stop(&app, d);
        server_close(&app);
        return err_info(e)->exit_code;
    }
    unsigned port = app.cfg.listen_port; /* the port bound (http_listen) */
    int v6 = strchr(app.cfg.listen_host, ':') != NULL;
    printf("coffer: listening on %s://%s%s%s:%u\n", behind_proxy ? "http" : "https", v6 ? "[" : "",
           app.cfg.listen_host, v6 ? "]" : "", port);
    fflush(stdout);
    if (port_file != NULL) {
        /* Written once serving (as the --user account, if one is given). */
        FILE *pf = fopen(port_file, "w");
        int ok = pf != NULL && fprintf(pf, "%u\n", port) >= 0;
        if (pf != NULL && fclose(pf) != 0)
            ok = 0;
        if (!ok)
            log_error("cannot write the port file %s: %s", port_file, strerror(errno));
    }
    int sig = 0;
    sigwait(&set, &sig);
    log_info("signal %d received; shutting down", sig);
    metrics_http_stop(md);
    http_stop(&app, d);
    server_close(&app);
    log_info("stopped");
    return 0;
}
