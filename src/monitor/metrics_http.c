/*
 * metrics_http: plain-HTTP GET /metrics on a loopback address (see
 * metrics_http.h).
 */
#include "monitor/metrics_http.h"

#include "http/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "app/app.h"
#include "monitor/monitor.h"
#include "util/log.h"

#define METRICS_HTTP_CONNECTIONS 16
#define METRICS_HTTP_TIMEOUT 10

enum err metrics_http_parse(const char *listen, char *host, size_t host_cap, uint16_t *port)
{
    if (listen == NULL || host_cap == 0)
        return ERR_INVALID;
    const char *colon = strrchr(listen, ':');
    if (colon == NULL)
        return ERR_INVALID;
    size_t hlen = (size_t)(colon - listen);
    const char *h = listen;
    if (hlen >= 2 && listen[0] == '[' && listen[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= host_cap)
        return ERR_INVALID;
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == colon + 1 || p < 0 || p > 65535)
        return ERR_INVALID;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    int loopback = 0;
    if (inet_pton(AF_INET, host, &a4) == 1)
        loopback = (ntohl(a4.s_addr) >> 24) == 127;
    else if (inet_pton(AF_INET6, host, &a6) == 1)
        loopback = IN6_IS_ADDR_LOOPBACK(&a6);
    if (!loopback)
        return ERR_INVALID;
    *port = (uint16_t)p;
    return ERR_OK;
}

static enum MHD_Result metrics_http_reply(struct MHD_Connection *conn, unsigned status,
                                          const char *text, const char *allow)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (allow != NULL)
        MHD_add_response_header(resp, "Allow", allow);
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result metrics_http_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                            const char *method, const char *version,
                                            const char *upload_data, size_t *upload_data_size,
                                            void **con_cls)
{
    (void)version;
    (void)upload_data;
    struct app *app = cls;
    /* First call: headers only. A request body is refused below. */
    if (*con_cls == NULL) {
        *con_cls = (void *)1;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES; /* discarded; answered once the body is over */
    }
    if (strcmp(url, "/metrics") != 0)
        return metrics_http_reply(conn, MHD_HTTP_NOT_FOUND,
                                  "only GET /metrics is served on this address\n", NULL);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return metrics_http_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET\n", "GET, HEAD");
    char *text = NULL;
    size_t len = 0;
    if (monitor_metrics_text(app, &text, &len) != ERR_OK)
        return metrics_http_reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                  "cannot render the metrics\n", NULL);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum err metrics_http_listen(const char *listen, int *fd, unsigned *bound)
{
    char host[64];
    uint16_t port = 0, got = 0;
    if (metrics_http_parse(listen, host, sizeof(host), &port) != ERR_OK) {
        log_error("--metrics-listen must be a numeric loopback HOST:PORT (127.0.0.1 or ::1): %s",
                  listen != NULL ? listen : "");
        return ERR_INVALID;
    }
    *fd = http_listen_socket(host, port, &got);
    if (*fd < 0) {
        log_error("cannot listen for metrics on %s: %s", listen, strerror(errno));
        return ERR_IO;
    }
    *bound = got;
    return ERR_OK;
}

enum err metrics_http_start(struct app *app, int fd, struct MHD_Daemon **out)
{
    *out = NULL;
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0,
                         NULL, NULL, metrics_http_handler, app, MHD_OPTION_LISTEN_SOCKET, fd,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_CONNECTIONS,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_HTTP_TIMEOUT,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_END);
    if (d == NULL) {
        log_error("cannot start the metrics listener: %s", strerror(errno));
        return ERR_IO;
    }
    *out = d;
    return ERR_OK;
}

void metrics_http_stop(struct MHD_Daemon *d)
{
    if (d != NULL)
        MHD_stop_daemon(d);
}
