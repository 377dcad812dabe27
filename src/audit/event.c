#include "audit/event.h"

#include "audit/audit.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void audit_event_time_now(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return c == 0 ? 0 : 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* A JSON string of s, cut to AUDIT_FIELD_MAX bytes on a character boundary,
 * invalid UTF-8 bytes replaced by '?'. NULL s gives JSON null. */
static json_t *safe_string(const char *s)
{
    if (s == NULL)
        return json_null();
    size_t n = strlen(s);
    int cut = n > AUDIT_FIELD_MAX;
    if (cut)
        n = AUDIT_FIELD_MAX;
    char *buf = malloc(n + 4);
    if (buf == NULL)
        return NULL;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t l = utf8_seq((const unsigned char *)s + i, n - i);
        if (l == 0) {
            buf[o++] = '?';
            i++;
        } else {
            memcpy(buf + o, s + i, l);
            o += l;
            i += l;
        }
    }
    if (cut) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

static int set_new(json_t *o, const char *key, json_t *v)
{
    return v == NULL ? -1 : json_object_set_new(o, key, v);
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
    json_t *o = json_object();
    json_t *st = json_array();
    int bad = o == NULL || st == NULL;
    size_t ns = ev->n_statements < AUDIT_STATEMENTS_MAX ? ev->n_statements : AUDIT_STATEMENTS_MAX;
    for (size_t i = 0; !bad && i < ns; i++)
        bad = json_array_append_new(st, safe_string(ev->statements[i])) != 0;
    bad = bad || set_new(o, "v", json_integer(AUDIT_EVENT_VERSION)) ||
          set_new(o, "time", safe_string(time)) ||
          set_new(o, "request_id", safe_string(ev->request_id)) ||
          set_new(o, "principal", safe_string(ev->principal)) ||
          set_new(o, "auth_method", safe_string(ev->auth_method)) ||
          set_new(o, "mfa", json_boolean(ev->mfa)) ||
          set_new(o, "source_ip", safe_string(ev->source_ip)) ||
          set_new(o, "user_agent", safe_string(ev->user_agent)) ||
          set_new(o, "action", safe_string(ev->action)) ||
          set_new(o, "resource", safe_string(ev->resource)) ||
          set_new(o, "decision", json_string(ev->allow ? "allow" : "deny")) ||
          set_new(o, "reason", safe_string(ev->reason)) || json_object_set(o, "statements", st) ||
          set_new(o, "status", json_integer(ev->status)) ||
          set_new(o, "bytes", json_integer(ev->bytes)) ||
          (ev->sha256 != NULL && set_new(o, "sha256", safe_string(ev->sha256))) ||
          (ev->detail != NULL && json_object_set(o, "detail", ev->detail));
    json_decref(st);
    char *s = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s == NULL)
        return ERR_INTERNAL;
    size_t len = strlen(s);
    if (len > AUDIT_EVENT_MAX) {
        free(s);
        return ERR_INVALID;
    }
    *json_out = s;
    *len_out = len;
    return ERR_OK;
}
