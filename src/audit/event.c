#include "audit/event.h"

#include "audit/audit.h"
#include "util/json_text.h"
#include "util/str.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void audit_event_time_now(char *out, size_t cap)
{
    /* The date and time to the second are formatted once per second and
     * thread; every event only adds its milliseconds. */
    static _Thread_local time_t sec = (time_t)-1;
    static _Thread_local char head[32];
    static _Thread_local size_t head_len;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        int n = snprintf(head, sizeof(head), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        head_len = n > 0 && (size_t)n < sizeof(head) ? (size_t)n : 0;
        sec = head_len > 0 ? ts.tv_sec : (time_t)-1;
    }
    long ms = ts.tv_nsec / 1000000;
    if (cap == 0)
        return;
    if (head_len == 0) { /* a date gmtime cannot give: as it comes */
        snprintf(out, cap, "%lld.%03ldZ", (long long)ts.tv_sec, ms);
        return;
    }
    if (cap < head_len + 6) {
        snprintf(out, cap, "%.*s.%03ldZ", (int)head_len, head, ms);
        return;
    }
    memcpy(out, head, head_len);
    char *t = out + head_len;
    t[0] = '.';
    t[1] = (char)('0' + ms / 100);
    t[2] = (char)('0' + ms / 10 % 10);
    t[3] = (char)('0' + ms % 10);
    t[4] = 'Z';
    t[5] = '\0';
}

/* A growing output buffer; oom is set (and further output dropped) when
 * memory runs out. */
struct jbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static void jb_put(struct jbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n > b->cap - b->len) {
        size_t ncap = b->cap ? b->cap : 1024;
        while (ncap - b->len < n)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (np == NULL) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void jb_lit(struct jbuf *b, const char *s)
{
    jb_put(b, s, strlen(s));
}

/* A JSON string of s, cut to AUDIT_FIELD_MAX bytes (then "..."), invalid
 * UTF-8 bytes replaced by '?', quotes, backslashes and control characters
 * escaped. NULL s gives JSON null. */
static void jb_str(struct jbuf *b, const char *s)
{
    if (s == NULL) {
        jb_lit(b, "null");
        return;
    }
    size_t n = strlen(s);
    int cut = n > AUDIT_FIELD_MAX;
    if (cut)
        n = AUDIT_FIELD_MAX;
    jb_put(b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        size_t run = i; /* bytes copied as they are */
        while (run < n) {
            unsigned char c = (unsigned char)s[run];
            if (c < 0x80 && c >= 0x20 && c != '"' && c != '\\') {
                run++;
                continue;
            }
            size_t l = c < 0x80 ? 0 : json_utf8_seq((const unsigned char *)s + run, n - run);
            if (l == 0)
                break;
            run += l;
        }
        jb_put(b, s + i, run - i);
        i = run;
        if (i >= n)
            break;
        unsigned char c = (unsigned char)s[i++];
        char esc[8];
        switch (c) {
        case '"':
            jb_lit(b, "\\\"");
            break;
        case '\\':
            jb_lit(b, "\\\\");
            break;
        case '\n':
            jb_lit(b, "\\n");
            break;
        case '\r':
            jb_lit(b, "\\r");
            break;
        case '\t':
            jb_lit(b, "\\t");
            break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                jb_lit(b, esc);
            } else {
                jb_put(b, "?", 1); /* not valid UTF-8 */
            }
            break;
        }
    }
    if (cut)
        jb_put(b, "...", 3);
    jb_put(b, "\"", 1);
}

static void jb_int(struct jbuf *b, long long v)
{
    char num[24];
    size_t k = 0;
    if (v < 0) {
        num[k++] = '-';
        k += str_u64(num + k, sizeof(num) - k, (uint64_t)0 - (uint64_t)v);
    } else {
        k = str_u64(num, sizeof(num), (uint64_t)v);
    }
    jb_put(b, num, k);
}

/* ,"key": */
static void jb_key(struct jbuf *b, const char *key)
{
    jb_put(b, ",\"", 2);
    jb_lit(b, key);
    jb_put(b, "\":", 2);
}

enum err audit_event_encode(const struct audit_event *ev, char **json_out, size_t *len_out)
{
    if (ev->action == NULL || (ev->detail != NULL && !json_is_object(ev->detail)))
        return ERR_INVALID;
    char now[40];
    const char *time = ev->time;
    if (time == NULL) {
        audit_event_time_now(now, sizeof(now));
        time = now;
    }
    /* Written directly, in this field order (it is the documented one);
     * the verifier and every reader parse it as JSON. */
    struct jbuf b = {NULL, 0, 0, 0};
    jb_lit(&b, "{\"v\":");
    jb_int(&b, AUDIT_EVENT_VERSION);
    jb_key(&b, "time");
    jb_str(&b, time);
    jb_key(&b, "request_id");
    jb_str(&b, ev->request_id);
    jb_key(&b, "principal");
    jb_str(&b, ev->principal);
    jb_key(&b, "auth_method");
    jb_str(&b, ev->auth_method);
    jb_key(&b, "mfa");
    jb_lit(&b, ev->mfa ? "true" : "false");
    jb_key(&b, "source_ip");
    jb_str(&b, ev->source_ip);
    jb_key(&b, "user_agent");
    jb_str(&b, ev->user_agent);
    jb_key(&b, "action");
    jb_str(&b, ev->action);
    jb_key(&b, "resource");
    jb_str(&b, ev->resource);
    jb_key(&b, "decision");
    jb_lit(&b, ev->allow ? "\"allow\"" : "\"deny\"");
    jb_key(&b, "reason");
    jb_str(&b, ev->reason);
    jb_key(&b, "statements");
    jb_put(&b, "[", 1);
    size_t ns = ev->n_statements < AUDIT_STATEMENTS_MAX ? ev->n_statements : AUDIT_STATEMENTS_MAX;
    for (size_t i = 0; i < ns; i++) {
        if (i > 0)
            jb_put(&b, ",", 1);
        jb_str(&b, ev->statements[i]);
    }
    jb_put(&b, "]", 1);
    jb_key(&b, "status");
    jb_int(&b, ev->status);
    jb_key(&b, "bytes");
    jb_int(&b, (long long)ev->bytes);
    if (ev->sha256 != NULL) {
        jb_key(&b, "sha256");
        jb_str(&b, ev->sha256);
    }
    if (ev->detail != NULL) {
        size_t dl = 0;
        char *d = json_text(ev->detail, &dl);
        if (d == NULL) {
            free(b.p);
            return ERR_INTERNAL;
        }
        jb_key(&b, "detail");
        jb_put(&b, d, dl);
        free(d);
    }
    jb_put(&b, "}", 2); /* with the terminating NUL */
    if (b.oom) {
        free(b.p);
        return ERR_INTERNAL;
    }
    size_t len = b.len - 1;
    if (len > AUDIT_EVENT_MAX) {
        free(b.p);
        return ERR_INVALID;
    }
    *json_out = b.p;
    *len_out = len;
    return ERR_OK;
}
