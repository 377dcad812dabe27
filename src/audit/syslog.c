#include "audit/syslog.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

/* RFC 5424 facility 13: log audit. */
#define SYSLOG_FACILITY 13
#define SYSLOG_SEV_NOTICE 5
#define SYSLOG_SEV_INFO 6
/* Longest HOSTNAME and MSGID allowed by RFC 5424. */
#define SYSLOG_HOST_MAX 255
#define SYSLOG_MSGID_MAX 32
#define SYSLOG_CLOSE_WAIT_MS 2000
#define SYSLOG_RETRY_MAX_MS 5000
#define SYSLOG_CONNECT_TIMEOUT_MS 2000

enum syslog_kind { SYSLOG_UDP, SYSLOG_TCP, SYSLOG_UNIX };

struct syslog_msg {
    struct syslog_msg *next;
    size_t len;
    char data[]; /* the message, without transport framing */
};

struct audit_syslog {
    enum syslog_kind kind;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int fd;
    char hostname[SYSLOG_HOST_MAX + 1];
    long pid;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct syslog_msg *head, *tail;
    size_t queued, queued_bytes;
    uint64_t sent, dropped;
    int stopping;
    int64_t stop_deadline_ms;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies the printable US-ASCII characters of src (RFC 5424 PRINTUSASCII)
 * into out, replacing others with '_'; "-" if src is empty or NULL. */
static void syslog_token(char *out, size_t cap, const char *src)
{
    size_t n = 0;
    for (; src != NULL && src[n] != '\0' && n + 1 < cap; n++) {
        unsigned char c = (unsigned char)src[n];
        out[n] = c >= 33 && c <= 126 ? (char)c : '_';
    }
    if (n == 0 && cap >= 2)
        out[n++] = '-';
    out[n] = '\0';
}

/* The event's time if it is a plausible RFC 3339 timestamp, else now. */
static void syslog_time(const char *t, char *out, size_t cap)
{
    size_t n = t != NULL ? strlen(t) : 0;
    int ok = n >= 20 && n <= 32 && t[4] == '-' && t[10] == 'T' && t[n - 1] == 'Z';
    for (size_t i = 0; ok && i < n; i++) {
        char c = t[i];
        ok = (c >= '0' && c <= '9') || c == '-' || c == ':' || c == '.' || c == 'T' || c == 'Z';
    }
    if (ok) {
        snprintf(out, cap, "%s", t);
        return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

long audit_syslog_format(uint64_t index, const char *event_json, size_t len, const char *hostname,
                         long procid, char **out)
{
    *out = NULL;
    json_t *ev = json_loadb(event_json, len, 0, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        return -1;
    }
    const char *decision = json_string_value(json_object_get(ev, "decision"));
    int deny = decision == NULL || strcmp(decision, "allow") != 0;
    char msgid[SYSLOG_MSGID_MAX + 1], host[SYSLOG_HOST_MAX + 1], when[96];
    syslog_token(msgid, sizeof(msgid), json_string_value(json_object_get(ev, "action")));
    syslog_token(host, sizeof(host), hostname);
    syslog_time(json_string_value(json_object_get(ev, "time")), when, sizeof(when));
    json_decref(ev);

    char header[512];
    int hl = snprintf(header, sizeof(header),
                      "<%d>1 %s %s coffer %ld %s [coffer@32473 index=\"%llu\" decision=\"%s\"] ",
                      SYSLOG_FACILITY * 8 + (deny ? SYSLOG_SEV_NOTICE : SYSLOG_SEV_INFO), when,
                      host, procid, msgid, (unsigned long long)index, deny ? "deny" : "allow");
    if (hl < 0 || (size_t)hl >= sizeof(header) || len > SIZE_MAX / 2)
        return -1;
    char *m = malloc((size_t)hl + len + 1);
    if (m == NULL)
        return -1;
    memcpy(m, header, (size_t)hl);
    memcpy(m + hl, event_json, len);
    m[(size_t)hl + len] = '\0';
    *out = m;
    return (long)((size_t)hl + len);
}

/* ---- transport ------------------------------------------------------------ */

static void syslog_disconnect(struct audit_syslog *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* Opens the socket (and connects it, with a timeout for TCP). 0 or -1. */
static int syslog_connect(struct audit_syslog *s)
{
    int type = s->kind == SYSLOG_TCP ? SOCK_STREAM : SOCK_DGRAM;
    int fd = socket(s->addr.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&s->addr, s->addrlen) != 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (poll(&p, 1, SYSLOG_CONNECT_TIMEOUT_MS) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            close(fd);
            return -1;
        }
    }
    s->fd = fd;
    return 0;
}

/* Writes all of buf to a stream socket, waiting for room at most 2 s at a time. */
static int syslog_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, 2000) == 1)
                continue;
        }
        return -1;
    }
    return 0;
}

/* Sends one message. 0 sent, -1 transport failure (retry later). */
static int syslog_transmit(struct audit_syslog *s, const struct syslog_msg *m)
{
    if (s->fd < 0 && syslog_connect(s) != 0)
        return -1;
    if (s->kind != SYSLOG_TCP) {
        if (send(s->fd, m->data, m->len, MSG_NOSIGNAL) == (ssize_t)m->len)
            return 0;
        /* A datagram that the receiver did not take (nobody listening:
         * ECONNREFUSED) is lost like any UDP datagram; only a broken socket
         * is reopened. */
        if (errno == ECONNREFUSED || errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
            return 0;
        syslog_disconnect(s);
        return -1;
    }
    char prefix[32];
    int pl = snprintf(prefix, sizeof(prefix), "%zu ", m->len);
    if (syslog_write_all(s->fd, prefix, (size_t)pl) != 0 ||
        syslog_write_all(s->fd, m->data, m->len) != 0) {
        syslog_disconnect(s);
        return -1;
    }
    return 0;
}

static void *syslog_main(void *arg)
{
    struct audit_syslog *s = arg;
    int backoff_ms = 100;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->head == NULL && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->head == NULL || (s->stopping && now_ms() >= s->stop_deadline_ms))
            break;
        struct syslog_msg *m = s->head;
        pthread_mutex_unlock(&s->mu);
        int rc = syslog_transmit(s, m);
        pthread_mutex_lock(&s->mu);
        if (rc == 0) {
            s->head = m->next;
            if (s->head == NULL)
                s->tail = NULL;
            s->queued--;
            s->queued_bytes -= m->len;
            s->sent++;
            free(m);
            backoff_ms = 100;
            continue;
        }
        /* Collector unreachable: keep the message and retry with backoff. */
        int wait_ms = s->stopping ? 100 : backoff_ms;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cv, &s->mu, &until);
        backoff_ms = backoff_ms * 2 > SYSLOG_RETRY_MAX_MS ? SYSLOG_RETRY_MAX_MS : backoff_ms * 2;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- setup ---------------------------------------------------------------- */

/* Splits HOST:PORT or [V6]:PORT and resolves it for the socket type. */
static enum err syslog_resolve(struct audit_syslog *s, const char *hostport)
{
    const char *colon = strrchr(hostport, ':');
    if (colon == NULL || colon[1] == '\0')
        return ERR_INVALID;
    size_t hlen = (size_t)(colon - hostport);
    const char *host = hostport;
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    char h[256], port[16];
    if (hlen == 0 || hlen >= sizeof(h) || strlen(colon + 1) >= sizeof(port))
        return ERR_INVALID;
    memcpy(h, host, hlen);
    h[hlen] = '\0';
    snprintf(port, sizeof(port), "%s", colon + 1);
    char *end;
    long p = strtol(port, &end, 10);
    if (*end != '\0' || p < 1 || p > 65535)
        return ERR_INVALID;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = s->kind == SYSLOG_TCP ? SOCK_STREAM : SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(h, port, &hints, &res) != 0 || res == NULL)
        return ERR_INVALID;
    if (res->ai_addrlen > sizeof(s->addr)) {
        freeaddrinfo(res);
        return ERR_INVALID;
    }
    memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
    s->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return ERR_OK;
}

static enum err syslog_parse_target(struct audit_syslog *s, const char *target)
{
    if (strncmp(target, "udp://", 6) == 0) {
        s->kind = SYSLOG_UDP;
        return syslog_resolve(s, target + 6);
    }
    if (strncmp(target, "tcp://", 6) == 0) {
        s->kind = SYSLOG_TCP;
        return syslog_resolve(s, target + 6);
    }
    if (strncmp(target, "unix:", 5) == 0) {
        s->kind = SYSLOG_UNIX;
        struct sockaddr_un *un = (struct sockaddr_un *)&s->addr;
        const char *path = target + 5;
        size_t n = strlen(path);
        if (n == 0 || n >= sizeof(un->sun_path) || path[0] != '/')
            return ERR_INVALID;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, n + 1);
        s->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        return ERR_OK;
    }
    return ERR_INVALID;
}

enum err audit_syslog_open(const char *target, struct audit_syslog **out)
{
    *out = NULL;
    if (target == NULL || strlen(target) > 512)
        return ERR_INVALID;
    struct audit_syslog *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ERR_INTERNAL;
    s->fd = -1;
    enum err e = syslog_parse_target(s, target);
    if (e != ERR_OK) {
        free(s);
        return e;
    }
    if (gethostname(s->hostname, sizeof(s->hostname) - 1) != 0 || s->hostname[0] == '\0')
        snprintf(s->hostname, sizeof(s->hostname), "-");
    s->pid = (long)getpid();
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return ERR_INTERNAL;
    }
    if (pthread_cond_init(&s->cv, NULL) != 0 ||
        pthread_create(&s->thread, NULL, syslog_main, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return ERR_INTERNAL;
    }
    *out = s;
    return ERR_OK;
}

void audit_syslog_send(struct audit_syslog *s, uint64_t index, const char *event_json, size_t len)
{
    if (s == NULL)
        return;
    char *text = NULL;
    long n = audit_syslog_format(index, event_json, len, s->hostname, s->pid, &text);
    struct syslog_msg *m = NULL;
    if (n > 0 && !(s->kind != SYSLOG_TCP && n > AUDIT_SYSLOG_UDP_MAX))
        m = malloc(sizeof(*m) + (size_t)n);
    if (m != NULL) {
        m->next = NULL;
        m->len = (size_t)n;
        memcpy(m->data, text, (size_t)n);
    }
    free(text);
    uint64_t dropped = 0;
    pthread_mutex_lock(&s->mu);
    if (m != NULL && s->queued < AUDIT_SYSLOG_QUEUE_MAX &&
        s->queued_bytes + m->len <= AUDIT_SYSLOG_QUEUE_BYTES && !s->stopping) {
        if (s->tail != NULL)
            s->tail->next = m;
        else
            s->head = m;
        s->tail = m;
        s->queued++;
        s->queued_bytes += m->len;
        m = NULL;
        pthread_cond_signal(&s->cv);
    } else {
        dropped = ++s->dropped;
    }
    pthread_mutex_unlock(&s->mu);
    if (m != NULL || dropped > 0) {
        free(m);
        if (dropped == 1 || dropped % 1000 == 0)
            log_warn("syslog: %llu audit message(s) not forwarded so far (collector too slow "
                     "or message too long); the audit log itself is complete",
                     (unsigned long long)dropped);
    }
}

void audit_syslog_forward(void *ctx, uint64_t index, const char *event_json, size_t len)
{
    audit_syslog_send(ctx, index, event_json, len);
}

void audit_syslog_stats(struct audit_syslog *s, struct audit_syslog_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    st->sent = s->sent;
    st->dropped = s->dropped;
    st->queued = s->queued;
    pthread_mutex_unlock(&s->mu);
}

void audit_syslog_close(struct audit_syslog *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    s->stop_deadline_ms = now_ms() + SYSLOG_CLOSE_WAIT_MS;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    if (s->queued > 0)
        log_warn("syslog: %zu audit message(s) were not forwarded before shutdown", s->queued);
    while (s->head != NULL) {
        struct syslog_msg *m = s->head;
        s->head = m->next;
        free(m);
    }
    syslog_disconnect(s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
