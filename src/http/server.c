/*
 * The libmicrohttpd server: TLS set-up, request validation, routing,
 * authentication, error responses and per-request state.
 */
#include "http/http.h"
#include "http/listen.h"
#include "http/validate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "authn/apitoken.h"
#include "authn/mtls.h"
#include "authn/oidc.h"
#include "authn/session.h"
#include "meta/meta.h"
#include "monitor/monitor.h"
#include "util/json_text.h"
#include "util/log.h"
#include "util/secure.h"
#include "util/str.h"

/* TLS 1.2 and 1.3 only; AEAD ciphers with forward secrecy only; no compression. */
/* Bytes of a failed request's body read and discarded so that the error can
 * still be answered. */
#define HTTP_DRAIN_MAX (64ULL << 20)

#define HTTP_TLS_PRIORITIES                                                                        \
    "NONE:+VERS-TLS1.3:+VERS-TLS1.2:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:+AEAD:"           \
    "+ECDHE-ECDSA:+ECDHE-RSA:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+SIGN-ALL:"           \
    "+COMP-NULL:+CTYPE-X509:%SAFE_RENEGOTIATION"

enum err http_fail(struct request *r, enum err e, const char *fmt, ...)
{
    r->err = e;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
        va_end(ap);
    }
    return e;
}

struct query_lookup {
    const char *name;
    const char *value;
    int count;
    void (*fn)(const char *value, void *ctx);
    void *ctx;
};

/* libmicrohttpd's memory per connection: request line, headers, the read
 * buffer and the answer's header. It zeroes the whole area after every
 * request of a keep-alive connection, so it is no larger than needed: 16
 * KiB holds a header block of up to about 14 KB (nginx's default limit is
 * 8 KB per header line); more gets 431. */
#define HTTP_CONNECTION_MEMORY (16 * 1024)

/* At a stop, how long requests already started may take to be answered
 * (including answers held for their audit record) before the remaining
 * connections are closed. */
#define HTTP_DRAIN_MS 10000

/* Requests started and not yet completed, and whether a stop is draining
 * them (every answer then says Connection: close). */
static atomic_int http_in_flight;
static atomic_int http_draining;

/* ---- one TLS record per small answer ------------------------------------
 * libmicrohttpd hands an answer's header and body to GnuTLS separately: two
 * TLS records, two sendmsg calls, and a client that reads each record's
 * header and body with separate calls. For a small answer the TLS session
 * is corked when the answer is queued, so both parts are buffered, and
 * uncorked when the request completes (libmicrohttpd calls http_completed
 * right after handing over the last byte, before any close): one record,
 * one sendmsg.
 *
 * libmicrohttpd corks the TCP socket before the first answer's header and
 * from then on pushes each answer by setting TCP_NODELAY, leaving TCP_CORK
 * on: what GnuTLS sends after that push would wait for the kernel's 200 ms
 * cork timer. So after the first uncorked answer of a connection, TCP_CORK
 * is cleared (which pushes it). TCP_NODELAY is on by then, and
 * libmicrohttpd, which believes the socket still corked, does not cork it
 * again on a TLS connection. Larger answers (downloads) are not corked at
 * either level and leave as libmicrohttpd sends them. */
#define HTTP_CORK_MAX 8192

/* GnuTLS reads a record's 5-byte header and its body with two recv calls.
 * Each TLS connection's reads go through a buffer instead, filled by one
 * recv of up to HTTP_TLS_INBUF bytes: a request that fits in one record then
 * costs one recv. Reads of at least that size go to the socket directly
 * (once the buffer is empty). Bytes left in the buffer are never lost from
 * view: libmicrohttpd (epoll, edge-triggered) keeps reading a connection
 * until a read reports EAGAIN, and this one does only when the buffer is
 * empty and the socket has nothing either. */
#define HTTP_TLS_INBUF 4096

/* Per connection (libmicrohttpd's socket context). */
struct http_conn {
    gnutls_session_t tls;
    int fd;
    int tcp_uncorked; /* TCP_CORK cleared */
    int key_update;   /* a TLS 1.3 KeyUpdate came from the client */
    size_t in_off, in_len;
    uint8_t in[HTTP_TLS_INBUF];
};

static ssize_t http_tls_pull(gnutls_transport_ptr_t p, void *data, size_t size)
{
    struct http_conn *hc = p;
    if (hc->in_off == hc->in_len) {
        if (size >= sizeof(hc->in))
            return recv(hc->fd, data, size, 0);
        ssize_t n = recv(hc->fd, hc->in, sizeof(hc->in), 0);
        if (n <= 0)
            return n;
        hc->in_off = 0;
        hc->in_len = (size_t)n;
    }
    size_t k = hc->in_len - hc->in_off;
    if (k > size)
        k = size;
    memcpy(data, hc->in + hc->in_off, k);
    hc->in_off += k;
    return (ssize_t)k;
}

static int http_tls_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
    struct http_conn *hc = p;
    if (hc->in_off < hc->in_len)
        return 1;
    struct pollfd pfd = {.fd = hc->fd, .events = POLLIN};
    return poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

static ssize_t http_tls_push(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt)
{
    struct http_conn *hc = p;
    struct msghdr m;
    memset(&m, 0, sizeof(m));
    m.msg_iov = (struct iovec *)iov;
    m.msg_iovlen = (size_t)iovcnt;
    return sendmsg(hc->fd, &m, MSG_NOSIGNAL);
}

/* A client's TLS 1.3 KeyUpdate may ask for the server's own, which GnuTLS
 * sends before the next application data. Corking the session would
 * overwrite that pending state (gnutls_record_cork sets the session's send
 * state whatever it was), so the answer after a KeyUpdate is not corked. */
static int http_tls_hook(gnutls_session_t s, unsigned int htype, unsigned int when,
                         unsigned int incoming, const gnutls_datum_t *msg)
{
    (void)htype;
    (void)when;
    (void)msg;
    struct http_conn *hc = gnutls_transport_get_ptr(s);
    if (incoming && hc != NULL)
        hc->key_update = 1;
    return 0;
}

static void http_connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                                   enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED) {
        free(*socket_context); /* its buffer held ciphertext only */
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *fi =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *si =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (fi == NULL || si == NULL || si->tls_session == NULL)
        return; /* no TLS (behind a proxy): libmicrohttpd's own reads and writes */
    struct http_conn *hc = malloc(sizeof(*hc));
    if (hc == NULL)
        return; /* GnuTLS reads the socket itself; answers are not corked */
    gnutls_session_t s = (gnutls_session_t)si->tls_session;
    hc->tls = s;
    hc->fd = fi->connect_fd;
    hc->tcp_uncorked = 0;
    hc->key_update = 0;
    hc->in_off = hc->in_len = 0;
    gnutls_transport_set_ptr(s, hc);
    gnutls_transport_set_pull_function(s, http_tls_pull);
    gnutls_transport_set_pull_timeout_function(s, http_tls_pull_timeout);
    gnutls_transport_set_vec_push_function(s, http_tls_push);
    gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_KEY_UPDATE, GNUTLS_HOOK_POST,
                                       http_tls_hook);
    *socket_context = hc;
}

/* The connection's own TLS transport; NULL without TLS (behind a proxy). */
static struct http_conn *http_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

/* After an answer of len body bytes was queued. */
static void http_tls_cork(struct request *r, size_t len)
{
    if (len == 0 || len > HTTP_CORK_MAX)
        return;
    struct http_conn *hc = http_conn_of(r->conn);
    if (hc == NULL)
        return;
    if (hc->key_update) {
        hc->key_update = 0; /* this answer carries the KeyUpdate first */
        return;
    }
    gnutls_record_cork(hc->tls);
    r->tls_corked = 1;
}

/* When the request completes: sends the buffered answer as one record. */
static void http_tls_uncork(struct MHD_Connection *conn)
{
    struct http_conn *hc = http_conn_of(conn);
    if (hc == NULL)
        return;
    int fd = hc->fd;
    if (gnutls_record_uncork(hc->tls, 0) < 0) {
        /* The socket's buffer is full (a client that pipelines requests and
         * does not read the answers) or the connection failed. Waiting
         * would block the worker thread and its other connections: the
         * connection is ended instead. */
        shutdown(fd, SHUT_RDWR);
        return;
    }
    if (!hc->tcp_uncorked) {
        int off = 0;
        hc->tcp_uncorked = setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off)) == 0;
    }
}

static enum MHD_Result http_query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    (void)kind;
    struct query_lookup *q = cls;
    if (strcmp(key, q->name) == 0) {
        q->count++;
        q->value = value != NULL ? value : "";
        if (q->fn != NULL)
            q->fn(q->value, q->ctx);
    }
    return MHD_YES;
}

const char *http_query(struct request *r, const char *name, int *dup)
{
    struct query_lookup q = {name, NULL, 0, NULL, NULL};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, http_query_iter, &q);
    if (dup != NULL)
        *dup = q.count > 1;
    return q.value;
}

void http_query_each(struct request *r, const char *name, void (*fn)(const char *value, void *ctx),
                     void *ctx)
{
    struct query_lookup q = {name, NULL, 0, fn, ctx};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, http_query_iter, &q);
}

static void http_add_common_headers(struct request *r, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    if (atomic_load(&http_draining))
        MHD_add_response_header(resp, "Connection", "close");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (!r->app->cfg.behind_proxy)
        MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
}

/* Queues text (a JSON document, taken over) as the answer. */
static enum MHD_Result http_queue_text(struct request *r, int status, char *text, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    http_add_common_headers(r, resp);
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"coffer\"");
    if (status == 429) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%lld", (long long)(r->retry_after > 0 ? r->retry_after : 60));
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (status == 405 && r->allow[0] != '\0')
        MHD_add_response_header(resp, "Allow", r->allow);
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (rc == MHD_YES)
        http_tls_cork(r, len);
    r->status = status;
    r->responded = 1;
    return rc;
}

static enum MHD_Result http_queue_json(struct request *r, int status, json_t *body)
{
    size_t len = 0;
    char *text = json_text(body, &len);
    if (text == NULL)
        return MHD_NO;
    return http_queue_text(r, status, text, len);
}

static enum MHD_Result http_queue_error(struct request *r)
{
    const struct err_info *info = err_info(r->err);
    const char *msg = r->errmsg[0] != '\0' ? r->errmsg : info->message;
    json_t *body = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", info->code, "message", msg,
                             "request_id", r->request_id);
    if (r->err == ERR_INTERNAL || r->err == ERR_IO)
        log_error("request %s %s %s failed: %s", r->request_id, r->method, r->path, msg);
    enum MHD_Result rc = http_queue_json(r, info->http_status, body);
    json_decref(body);
    return rc;
}

static enum MHD_Result http_queue_result(struct request *r)
{
    if (r->err != ERR_OK)
        return http_queue_error(r);
    if (r->response != NULL) {
        http_add_common_headers(r, r->response);
        enum MHD_Result rc =
            MHD_queue_response(r->conn, (unsigned)(r->status ? r->status : 200), r->response);
        MHD_destroy_response(r->response);
        r->response = NULL;
        r->responded = 1;
        return rc;
    }
    if (r->json_body != NULL) {
        char *text = r->json_body;
        r->json_body = NULL;
        return http_queue_text(r, r->status ? r->status : 200, text, r->json_body_len);
    }
    if (r->json == NULL) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        http_add_common_headers(r, resp);
        enum MHD_Result rc = MHD_queue_response(r->conn, 204, resp);
        MHD_destroy_response(resp);
        r->status = 204;
        r->responded = 1;
        return rc;
    }
    return http_queue_json(r, r->status ? r->status : 200, r->json);
}

static void http_client_address(struct request *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(r->source_ip, sizeof(r->source_ip), "unknown");
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, r->source_ip,
                  sizeof(r->source_ip));
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6))
            inet_ntop(AF_INET, &a6->s6_addr[12], r->source_ip, sizeof(r->source_ip));
        else
            inet_ntop(AF_INET6, a6, r->source_ip, sizeof(r->source_ip));
    }
    if (r->app->cfg.behind_proxy) {
        /* Only the proxy's own entry (the last one) can be trusted. */
        const char *xff = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-For");
        if (xff != NULL) {
            const char *last = strrchr(xff, ',');
            last = last != NULL ? last + 1 : xff;
            while (*last == ' ')
                last++;
            unsigned char buf[sizeof(struct in6_addr)];
            if (inet_pton(AF_INET, last, buf) == 1 || inet_pton(AF_INET6, last, buf) == 1)
                snprintf(r->source_ip, sizeof(r->source_ip), "%s", last);
        }
        const char *proto =
            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-Proto");
        r->secure_transport = proto != NULL && strcmp(proto, "https") == 0;
    }
}

static enum err http_authenticate(struct request *r)
{
    const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (auth == NULL && r->app->cfg.client_ca[0] != '\0' && mtls_has_certificate(r)) {
        /* No bearer credential: a client certificate bound to a service account. */
        enum err me = mtls_authenticate(r);
        if (me == ERR_UNAUTHENTICATED)
            return http_fail(r, me,
                             "client certificate not accepted; it must be issued by a trusted "
                             "client CA, valid now and bound with 'coffer service cert add'");
        if (me != ERR_OK)
            return http_fail(r, me, "cannot check credentials right now; retry later");
        return ERR_OK;
    }
    if (auth == NULL)
        return http_fail(r, ERR_UNAUTHENTICATED, NULL);
    if (strncasecmp(auth, "Bearer ", 7) != 0)
        return http_fail(r, ERR_UNAUTHENTICATED,
                         "unsupported authorization scheme; use 'Authorization: Bearer TOKEN'");
    const char *token = auth + 7;
    while (*token == ' ')
        token++;
    enum err e;
    if (strncmp(token, APITOKEN_PREFIX, strlen(APITOKEN_PREFIX)) == 0)
        e = apitoken_authenticate(r, token);
    else if (strncmp(token, SESSION_TOKEN_PREFIX, strlen(SESSION_TOKEN_PREFIX)) == 0)
        e = session_authenticate(r, token);
    else
        e = oidc_authenticate(r, token);
    if (e == ERR_UNAUTHENTICATED)
        return http_fail(r, e, "invalid or expired credential; run 'coffer login'");
    if (e != ERR_OK)
        return http_fail(r, e, "cannot check credentials right now; retry later");
    return ERR_OK;
}

/* Validates in a fixed order: method, path, content type, length
 * (http_check_head); then authenticates. Nothing of the body has been read yet. */
static enum err http_validate(struct request *r, const char *url, const char *method)
{
    struct http_head h = {
        .method = method,
        .url = url,
        .content_type = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type"),
        .content_length = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length"),
        .transfer_encoding =
            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Transfer-Encoding"),
        .max_json_bytes = r->app->cfg.max_json_bytes,
        .max_upload_bytes = r->app->cfg.max_upload_bytes,
    };
    struct http_verdict v;
    enum err e = http_check_head(api_routes, &h, &v);
    if (v.method_known)
        str_copy(r->method, sizeof(r->method), method);
    if (strlen(url) <= HTTP_PATH_MAX)
        str_copy(r->path, sizeof(r->path), url);
    memcpy(r->allow, v.allow, sizeof(r->allow));
    r->route = v.route;
    if (r->route != NULL)
        r->param = r->path + v.param_off;
    r->content_length = v.content_length;
    if (e != ERR_OK)
        return http_fail(r, e, "%s", v.why);
    if (r->route->auth) {
        /* A read-only route's authentication reads one snapshot. */
        if (r->route->read_only)
            meta_read_pin(r->app->meta);
        e = http_authenticate(r);
        /* Suspension and forced step-up after an anomaly (monitor/monitor.h). */
        if (e == ERR_OK)
            e = monitor_check_principal(r);
        meta_read_unpin(r->app->meta);
        if (e != ERR_OK)
            return e;
    }
    return ERR_OK;
}

/* Runs on the audit flusher thread once the held events are durable (or the
 * log failed): libmicrohttpd then calls http_handler again. */
static void http_audit_ready(void *ctx)
{
    struct request *r = ctx;
    MHD_resume_connection(r->conn);
}

/* The held events are durable (durable > 0) or will never be (< 0): in that
 * case the prepared answer is replaced by a refusal, as for any request
 * whose audit record cannot be written. */
static enum MHD_Result http_audit_settled(struct request *r, int durable)
{
    r->audit_hold = 0;
    if (durable < 0) {
        log_error("audit: the record of request %s could not be made durable; refusing it",
                  r->request_id);
        http_fail(r, ERR_UNAVAILABLE,
                  "the audit log cannot be written, so the request was refused; an "
                  "administrator must check the server's audit directory");
    }
    return http_queue_result(r);
}

/* Sends the answer, but only once the request's audit events are durable:
 * until then the connection is suspended (no thread waits) and the audit
 * flusher resumes it. */
static enum MHD_Result http_respond(struct request *r)
{
    if (!r->audit_hold)
        return http_queue_result(r);
    int durable = audit_log_durable(r->app->audit, r->audit_index);
    if (durable != 0)
        return http_audit_settled(r, durable);
    r->audit_waiter.index = r->audit_index;
    r->audit_waiter.fn = http_audit_ready;
    r->audit_waiter.ctx = r;
    MHD_suspend_connection(r->conn);
    r->audit_waiting = 1;
    if (audit_log_notify(r->app->audit, &r->audit_waiter) != AUDIT_NOTIFY_QUEUED)
        MHD_resume_connection(r->conn); /* settled when the handler is called again */
    return MHD_YES;
}

/* The handler's second call after http_respond suspended the connection. */
static enum MHD_Result http_audit_resumed(struct request *r)
{
    r->audit_waiting = 0;
    int durable = audit_log_durable(r->app->audit, r->audit_index);
    if (durable == 0) /* not registered (shutting down): wait here */
        durable = audit_log_wait(r->app->audit, r->audit_index) == ERR_OK ? 1 : -1;
    return http_audit_settled(r, durable);
}

/* 16 unpredictable bytes for a request id, from a per-thread buffer that
 * one call to the random generator refills every 256 requests. 0 or -1. */
static int http_request_id_bytes(uint8_t id[16])
{
    static _Thread_local uint8_t pool[4096];
    static _Thread_local size_t left;
    if (left < 16) {
        if (secure_random(pool, sizeof(pool)) != 0)
            return -1;
        left = sizeof(pool);
    }
    left -= 16;
    memcpy(id, pool + left, 16);
    memset(pool + left, 0, 16); /* each id is handed out once */
    return 0;
}

static struct request *http_request_new(struct app *app, struct MHD_Connection *conn)
{
    struct request *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->app = app;
    r->conn = conn;
    r->secure_transport = !app->cfg.behind_proxy;
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    r->started_us = (int64_t)started.tv_sec * 1000000 + started.tv_nsec / 1000;
    uint8_t id[16];
    if (http_request_id_bytes(id) != 0) {
        free(r);
        return NULL;
    }
    hex_encode(id, sizeof(id), r->request_id);
    atomic_fetch_add(&http_in_flight, 1);
    http_client_address(r);
    const char *ua = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent");
    if (ua != NULL) {
        str_copy(r->user_agent, sizeof(r->user_agent), ua);
        for (char *p = r->user_agent; *p != '\0'; p++) {
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                *p = '?';
        }
    }
    return r;
}

static enum err http_json_append(struct request *r, const char *data, size_t len)
{
    size_t max = r->app->cfg.max_json_bytes;
    if (len > max || r->body_len > max - len)
        return http_fail(r, ERR_TOO_LARGE, "JSON body larger than %zu bytes", max);
    char *nb = realloc(r->body, r->body_len + len + 1);
    if (nb == NULL)
        return http_fail(r, ERR_INTERNAL, "out of memory");
    r->body = nb;
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return ERR_OK;
}

static enum err http_json_parse(struct request *r)
{
    char why[HTTP_ERRMSG_MAX];
    enum err e = http_json_body_parse(r->body, r->body_len, &r->body_json, why, sizeof(why));
    if (e != ERR_OK)
        return http_fail(r, e, "%s", why);
    return ERR_OK;
}

/* Runs the route's handler. A read-only route comes here with its snapshot
 * pinned (meta_read_pin), which this ends. */
static void http_finish(struct request *r)
{
    r->audit_defer = r->route->read_only;
    if (r->route->finish(r) != ERR_OK && r->err == ERR_OK)
        r->err = ERR_INTERNAL;
    meta_read_unpin(r->app->meta);
    r->audit_defer = 0;
    r->finished = 1;
}

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    (void)version;
    struct app *app = cls;
    struct request *r = *con_cls;
    if (r == NULL) {
        r = http_request_new(app, conn);
        if (r == NULL)
            return MHD_NO;
        *con_cls = r;
        /* A GET may be answered in this first call: when its route only
         * reads and takes no body, authentication and handler share one
         * snapshot and one read transaction. */
        int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
        if (get)
            meta_read_pin(app->meta);
        if (http_validate(r, url, method) != ERR_OK) {
            if (get)
                meta_read_unpin(app->meta);
            return http_queue_error(r);
        }
        if (get && r->route->read_only && r->route->body == BODY_NONE && r->route->start == NULL) {
            /* Answered on the next call: libmicrohttpd resumes a connection
             * suspended this early only at its next timeout. */
            http_finish(r); /* ends the pin */
            return MHD_YES;
        }
        if (get)
            meta_read_unpin(app->meta);
        if (r->route->start != NULL && r->route->start(r) != ERR_OK)
            return http_queue_error(r);
        return MHD_YES;
    }
    if (r->responded) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->audit_waiting)
        return http_audit_resumed(r);
    if (r->finished)
        return http_respond(r);
    if (r->body_failed) {
        /* libmicrohttpd cannot answer while a body is still arriving: the
         * rest is read and discarded, up to a bound, then the error is sent.
         * Past the bound the connection is closed instead. */
        if (*upload_data_size == 0)
            return http_queue_error(r);
        if (*upload_data_size > HTTP_DRAIN_MAX - r->body_bytes)
            return MHD_NO;
        r->body_bytes += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (n > UINT64_MAX - r->body_bytes)
            return MHD_NO;
        r->body_bytes += n;
        enum err e;
        if (r->route->body == BODY_STREAM)
            e = r->route->data(r, (const uint8_t *)upload_data, n);
        else if (r->route->body == BODY_JSON)
            e = http_json_append(r, upload_data, n);
        else
            e = http_fail(r, ERR_INVALID, "this endpoint takes no request body");
        if (e != ERR_OK) {
            r->body_failed = 1;
            if (r->route->cleanup != NULL) {
                /* Release the upload's resources now rather than at the end. */
                r->route->cleanup(r);
            }
        }
        return MHD_YES;
    }
    /* The whole request has arrived. */
    if (r->route->body == BODY_JSON && http_json_parse(r) != ERR_OK)
        return http_queue_error(r);
    if (r->route->read_only)
        meta_read_pin(r->app->meta);
    http_finish(r);
    return http_respond(r);
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    struct request *r = *con_cls;
    if (r == NULL)
        return;
    if (r->tls_corked)
        http_tls_uncork(conn);
    if (r->audit_waiting)
        audit_log_cancel(r->app->audit, &r->audit_waiter);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->route != NULL)
        log_info("request %s %s %s ended early (code %d)", r->request_id, r->method, r->path,
                 (int)toe);
    monitor_request_done(r);
    if (r->route != NULL && r->route->cleanup != NULL)
        r->route->cleanup(r);
    if (r->response != NULL)
        MHD_destroy_response(r->response);
    json_decref(r->json);
    free(r->json_body);
    json_decref(r->body_json);
    json_decref(r->who.attrs);
    json_decref(r->who.groups);
    json_decref(r->who.owner_groups);
    if (r->body != NULL) {
        secure_wipe(r->body, r->body_len);
        free(r->body);
    }
    secure_wipe(r, sizeof(*r));
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&http_in_flight, 1);
}

/* Percent-decodes in place (never to a NUL byte: see http_unescape_inplace). */
static size_t http_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return http_unescape_inplace(s);
}

static char *http_read_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size <= 0 || sb.st_size > 1 << 20) {
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    ssize_t n = buf != NULL ? read(fd, buf, (size_t)sb.st_size) : -1;
    close(fd);
    if (n != sb.st_size) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static void http_log_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
    (void)cls;
    log_error("http: fatal error in %s:%u: %s", file, line, reason != NULL ? reason : "");
    abort();
}

const char *http_tls_priorities(void)
{
    return HTTP_TLS_PRIORITIES;
}

enum err http_listen(struct app *app, int *fd)
{
    uint16_t bound = 0;
    *fd = http_listen_socket(app->cfg.listen_host, app->cfg.listen_port, &bound);
    if (*fd < 0) {
        if (errno == EINVAL)
            log_error("listen address must be a numeric IPv4 or IPv6 address: %s",
                      app->cfg.listen_host);
        else
            log_error("cannot listen on %s port %u: %s", app->cfg.listen_host,
                      (unsigned)app->cfg.listen_port, strerror(errno));
        return errno == EINVAL ? ERR_INVALID : ERR_IO;
    }
    app->cfg.listen_port = bound;
    return ERR_OK;
}

enum err http_start(struct app *app, int fd, struct MHD_Daemon **out)
{
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                         MHD_ALLOW_SUSPEND_RESUME;
    if (strchr(app->cfg.listen_host, ':') != NULL)
        flags |= MHD_USE_IPv6;

    char *cert = NULL, *key = NULL, *client_ca = NULL;
    if (!app->cfg.behind_proxy && app->cfg.client_ca[0] != '\0') {
        client_ca = http_read_file(app->cfg.client_ca);
        if (client_ca == NULL || strstr(client_ca, "-----BEGIN CERTIFICATE-----") == NULL) {
            log_error("cannot read client CA certificates (PEM) from %s", app->cfg.client_ca);
            free(client_ca);
            close(fd);
            return ERR_IO;
        }
    }
    if (!app->cfg.behind_proxy) {
        char path[1200];
        app_path(&app->cfg, "tls/server.pem", path, sizeof(path));
        cert = http_read_file(path);
        app_path(&app->cfg, "tls/server.key", path, sizeof(path));
        key = http_read_file(path);
        if (cert == NULL || key == NULL) {
            log_error("cannot read the TLS certificate and key under %s/tls", app->cfg.data_dir);
            free(cert);
            secure_free_str(key);
            free(client_ca);
            close(fd);
            return ERR_IO;
        }
        flags |= MHD_USE_TLS;
    }
    MHD_set_panic_func(http_log_panic, NULL);
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, key},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)HTTP_TLS_PRIORITIES},
        /* With client CAs, libmicrohttpd asks TLS clients for a certificate
         * (without requiring one); authn/mtls.c verifies it per request. */
        {client_ca != NULL ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, client_ca},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, http_handler, app, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, app->cfg.threads, MHD_OPTION_CONNECTION_LIMIT,
        app->cfg.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, app->cfg.max_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, app->cfg.timeout_seconds, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HTTP_CONNECTION_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, http_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, http_connection_notify, NULL, MHD_OPTION_UNESCAPE_CALLBACK,
        http_unescape, NULL, MHD_OPTION_ARRAY, app->cfg.behind_proxy ? no_opts : tls_opts,
        MHD_OPTION_END);
    free(cert);
    secure_free_str(key);
    free(client_ca);
    if (d == NULL) {
        log_error("cannot start serving on %s port %u: %s", app->cfg.listen_host,
                  (unsigned)app->cfg.listen_port, strerror(errno));
        return ERR_IO; /* the process ends; the socket with it */
    }
    *out = d;
    return ERR_OK;
}

void http_stop(struct app *app, struct MHD_Daemon *d)
{
    if (d == NULL)
        return;
    /* No new connections; the requests already started are answered (held
     * answers once their audit record is durable), each with Connection:
     * close, for up to HTTP_DRAIN_MS. A request that arrives on an idle
     * keep-alive connection meanwhile is answered too. */
    atomic_store(&http_draining, 1);
    MHD_socket ls = MHD_quiesce_daemon(d);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    for (int waited = 0; atomic_load(&http_in_flight) > 0 && waited < HTTP_DRAIN_MS; waited += 10) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&http_in_flight) > 0)
        log_warn("stopping with %d requests unanswered after %d s", atomic_load(&http_in_flight),
                 HTTP_DRAIN_MS / 1000);
    /* Every answer still held is released first: libmicrohttpd must not
     * stop with a connection suspended. */
    if (app->audit != NULL)
        audit_log_notify_close(app->audit);
    MHD_stop_daemon(d);
    atomic_store(&http_draining, 0);
}
