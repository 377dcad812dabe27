/*
 * The audit log over HTTP: reading events with filters, the latest signed
 * head, inclusion and consistency proofs, and verification of the live log.
 * Every endpoint needs audit:Read, and each call is itself recorded.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/record.h"
#include "api/gate.h"
#include "audit/audit.h"
#include "audit/sth.h"

#define AUDIT_API_LIMIT_DEFAULT 1000
#define AUDIT_API_LIMIT_MAX 10000
/* At most this many events are looked at per request; the answer's "next"
 * tells where to go on, so a selective filter over a large log is paged. */
#define AUDIT_API_SCAN_MAX 100000
/* Stop adding events to one answer past this many bytes of event text. */
#define AUDIT_API_BYTES_MAX (8u * 1024 * 1024)
#define AUDIT_API_HEADS_MAX (256u * 1024 * 1024)
#define AUDIT_API_FILTER_MAX 1024

struct audit_filter {
    int64_t since_ms, until_ms; /* INT64_MIN / INT64_MAX when absent */
    const char *principal;
    const char *prefix;
    const char *action;
    int decision; /* -1 any, 0 deny, 1 allow */
};

/* Days since 1970-01-01 of a proleptic Gregorian date (no time zone). */
static int64_t audit_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int audit_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/*
 * Parses an RFC 3339 time into milliseconds since the epoch:
 * YYYY-MM-DD (midnight UTC), or YYYY-MM-DDTHH:MM[:SS[.fff...]] followed by Z
 * or +HH:MM / -HH:MM. Returns 0 or -1.
 */
static int audit_parse_time(const char *s, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    size_t n = strlen(s);
    if (n < 10 || audit_digits(s, 4, &y) || s[4] != '-' || audit_digits(s + 5, 2, &mo) ||
        s[7] != '-' || audit_digits(s + 8, 2, &d))
        return -1;
    const char *p = s + 10;
    int64_t offset_min = 0;
    if (*p != '\0') {
        if ((*p != 'T' && *p != 't' && *p != ' ') || audit_digits(p + 1, 2, &h) || p[3] != ':' ||
            audit_digits(p + 4, 2, &mi))
            return -1;
        p += 6;
        if (*p == ':') {
            if (audit_digits(p + 1, 2, &sec))
                return -1;
            p += 3;
            if (*p == '.') {
                int scale = 100, any = 0;
                for (p++; *p >= '0' && *p <= '9'; p++, any = 1) {
                    ms += (*p - '0') * scale;
                    scale /= 10;
                }
                if (!any)
                    return -1;
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            if (audit_digits(p + 1, 2, &oh) || p[3] != ':' || audit_digits(p + 4, 2, &om) ||
                oh > 23 || om > 59)
                return -1;
            offset_min = (int64_t)(oh * 60 + om) * (*p == '+' ? 1 : -1);
            p += 6;
        } else {
            return -1;
        }
        if (*p != '\0')
            return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    int64_t days = audit_days_from_civil(y, mo, d);
    *out = ((days * 86400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + ms;
    return 0;
}

static int audit_parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9' || strlen(s) > 19)
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* A query argument given at most once and of bounded length. */
static enum err audit_query(struct request *r, const char *name, const char **out)
{
    int dup = 0;
    *out = http_query(r, name, &dup);
    if (dup)
        return http_fail(r, ERR_INVALID, "give '%s' at most once", name);
    if (*out != NULL && strlen(*out) > AUDIT_API_FILTER_MAX)
        return http_fail(r, ERR_INVALID, "'%s' is too long", name);
    return ERR_OK;
}

static enum err audit_filter_parse(struct request *r, struct audit_filter *f)
{
    const char *since, *until, *decision;
    enum err e;
    f->since_ms = INT64_MIN;
    f->until_ms = INT64_MAX;
    f->decision = -1;
    if ((e = audit_query(r, "since", &since)) || (e = audit_query(r, "until", &until)) ||
        (e = audit_query(r, "principal", &f->principal)) ||
        (e = audit_query(r, "prefix", &f->prefix)) || (e = audit_query(r, "action", &f->action)) ||
        (e = audit_query(r, "decision", &decision)))
        return e;
    if (since != NULL && audit_parse_time(since, &f->since_ms) != 0)
        return http_fail(r, ERR_INVALID,
                         "since must be an RFC 3339 time, e.g. 2024-05-01T12:00:00Z");
    if (until != NULL && audit_parse_time(until, &f->until_ms) != 0)
        return http_fail(r, ERR_INVALID,
                         "until must be an RFC 3339 time, e.g. 2024-05-01T12:00:00Z");
    if (decision != NULL) {
        if (strcmp(decision, "allow") == 0)
            f->decision = 1;
        else if (strcmp(decision, "deny") == 0)
            f->decision = 0;
        else
            return http_fail(r, ERR_INVALID, "decision must be allow or deny");
    }
    return ERR_OK;
}

static int audit_filter_active(const struct audit_filter *f)
{
    return f->since_ms != INT64_MIN || f->until_ms != INT64_MAX || f->principal != NULL ||
           f->prefix != NULL || f->action != NULL || f->decision >= 0;
}

/* A principal filter without a type ("alice") matches any type of that name. */
static int audit_principal_match(const char *want, const char *have)
{
    if (have == NULL)
        return 0;
    if (strchr(want, ':') != NULL)
        return strcmp(want, have) == 0;
    const char *colon = strchr(have, ':');
    return strcmp(want, colon != NULL ? colon + 1 : have) == 0;
}

static int audit_filter_match(const struct audit_filter *f, json_t *ev)
{
    if (f->since_ms != INT64_MIN || f->until_ms != INT64_MAX) {
        const char *t = json_string_value(json_object_get(ev, "time"));
        int64_t ms;
        if (t == NULL || audit_parse_time(t, &ms) != 0 || ms < f->since_ms || ms >= f->until_ms)
            return 0;
    }
    if (f->principal != NULL &&
        !audit_principal_match(f->principal, json_string_value(json_object_get(ev, "principal"))))
        return 0;
    if (f->prefix != NULL) {
        const char *res = json_string_value(json_object_get(ev, "resource"));
        if (res == NULL || strncmp(res, f->prefix, strlen(f->prefix)) != 0)
            return 0;
    }
    if (f->action != NULL) {
        const char *a = json_string_value(json_object_get(ev, "action"));
        if (a == NULL || strcasecmp(a, f->action) != 0)
            return 0;
    }
    if (f->decision >= 0) {
        const char *d = json_string_value(json_object_get(ev, "decision"));
        if (d == NULL || (strcmp(d, "allow") == 0) != f->decision)
            return 0;
    }
    return 1;
}

struct audit_page {
    const struct audit_filter *filter;
    json_t *events;
    uint64_t limit, matched, scanned, next;
    size_t bytes;
    int failed;
};

static int audit_page_cb(void *ctx, uint64_t index, const char *json, size_t len)
{
    struct audit_page *pg = ctx;
    if (pg->matched >= pg->limit || pg->scanned >= AUDIT_API_SCAN_MAX ||
        pg->bytes >= AUDIT_API_BYTES_MAX)
        return 1;
    pg->scanned++;
    pg->next = index + 1;
    json_t *ev = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(ev)) {
        /* Recorded events are validated objects: this is damage. */
        json_decref(ev);
        pg->failed = 1;
        pg->next = index;
        return 1;
    }
    if (audit_filter_match(pg->filter, ev)) {
        json_array_append_new(pg->events,
                              json_pack("{s:I, s:o}", "index", (json_int_t)index, "event", ev));
        pg->matched++;
        pg->bytes += len;
    } else {
        json_decref(ev);
    }
    return 0;
}

enum err api_audit_events(struct request *r)
{
    enum err e = gate_check(r, "audit:Read", "*", NULL);
    if (e == ERR_OK)
        e = api_record_sync(r); /* the page includes this read */
    if (e != ERR_OK)
        return e;
    struct audit_filter f;
    const char *from_s, *limit_s, *last_s;
    if ((e = audit_filter_parse(r, &f)) || (e = audit_query(r, "from", &from_s)) ||
        (e = audit_query(r, "limit", &limit_s)) || (e = audit_query(r, "last", &last_s)))
        return e;
    uint64_t from = 0, limit = AUDIT_API_LIMIT_DEFAULT, last = 0;
    if (from_s != NULL && audit_parse_u64(from_s, &from) != 0)
        return http_fail(r, ERR_INVALID, "from must be an event index (0, 1, ...)");
    if (limit_s != NULL &&
        (audit_parse_u64(limit_s, &limit) != 0 || limit < 1 || limit > AUDIT_API_LIMIT_MAX))
        return http_fail(r, ERR_INVALID, "limit must be 1..%d", AUDIT_API_LIMIT_MAX);
    if (last_s != NULL && (audit_parse_u64(last_s, &last) != 0 || last < 1 ||
                           last > AUDIT_API_LIMIT_MAX || from_s != NULL))
        return http_fail(r, ERR_INVALID, "last must be 1..%d and is not combined with from",
                         AUDIT_API_LIMIT_MAX);
    uint64_t size = audit_log_size(r->app->audit);
    if (last_s != NULL)
        from = size > last ? size - last : 0;
    if (from > size)
        from = size;
    struct audit_page pg = {.filter = &f, .events = json_array(), .limit = limit, .next = from};
    if (pg.events == NULL)
        return http_fail(r, ERR_INTERNAL, "out of memory");
    e = audit_log_iter(r->app->audit, from, audit_page_cb, &pg);
    if (e != ERR_OK || pg.failed) {
        json_decref(pg.events);
        return http_fail(r, pg.failed ? ERR_INTEGRITY : ERR_UNAVAILABLE,
                         pg.failed ? "audit event %llu is not a JSON object; run 'coffer audit "
                                     "verify'"
                                   : "the audit log cannot be read (%llu)",
                         (unsigned long long)pg.next);
    }
    /* The size may have grown during the scan; report what this page reached. */
    uint64_t now = audit_log_size(r->app->audit);
    r->json =
        json_pack("{s:o, s:I, s:I, s:I, s:b, s:s}", "events", pg.events, "next",
                  (json_int_t)pg.next, "size", (json_int_t)now, "scanned", (json_int_t)pg.scanned,
                  "filtered", audit_filter_active(&f), "request_id", r->request_id);
    return r->json != NULL ? ERR_OK : http_fail(r, ERR_INTERNAL, "out of memory");
}

/* Turns a JSON text made by the audit module into the response. */
static enum err audit_respond_text(struct request *r, char *text, json_t *extra_event)
{
    json_t *o = text != NULL ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (!json_is_object(o)) {
        json_decref(o);
        json_decref(extra_event);
        return http_fail(r, ERR_INTERNAL, "malformed answer from the audit log");
    }
    if (extra_event != NULL)
        json_object_set_new(o, "event", extra_event);
    r->json = o;
    return ERR_OK;
}

static enum err audit_module_fail(struct request *r, enum err e, const char *what)
{
    if (e == ERR_NOT_FOUND)
        return http_fail(r, e, "no such event: the log holds %llu events",
                         (unsigned long long)audit_log_size(r->app->audit));
    return http_fail(r, ERR_UNAVAILABLE, "the audit log cannot produce the %s", what);
}

enum err api_audit_head(struct request *r)
{
    enum err e = gate_check(r, "audit:Read", "*", NULL);
    if (e != ERR_OK)
        return e;
    char *text = NULL;
    if ((e = audit_export_head(r->app->audit, &text)) != ERR_OK)
        return audit_module_fail(r, e, "signed head");
    return audit_respond_text(r, text, NULL);
}

enum err api_audit_proof(struct request *r)
{
    enum err e = gate_check(r, "audit:Read", "*", NULL);
    if (e != ERR_OK)
        return e;
    uint64_t index;
    if (audit_parse_u64(r->param, &index) != 0)
        return http_fail(r, ERR_INVALID, "give the event index: /v1/audit/proof/INDEX");
    char *ev = NULL, *text = NULL;
    size_t ev_len = 0;
    if ((e = audit_log_read(r->app->audit, index, &ev, &ev_len)) != ERR_OK)
        return audit_module_fail(r, e, "event");
    /* The event travels as a string of its exact recorded bytes: its leaf
     * hash is computed over them. */
    json_t *event = json_stringn(ev, ev_len);
    free(ev);
    if ((e = audit_log_inclusion_proof(r->app->audit, index, &text)) != ERR_OK) {
        json_decref(event);
        return audit_module_fail(r, e, "inclusion proof");
    }
    return audit_respond_text(r, text, event);
}

enum err api_audit_consistency(struct request *r)
{
    enum err e = gate_check(r, "audit:Read", "*", NULL);
    if (e != ERR_OK)
        return e;
    uint64_t old_size;
    if (audit_parse_u64(r->param, &old_size) != 0)
        return http_fail(r, ERR_INVALID, "give the old tree size: /v1/audit/consistency/SIZE");
    char *text = NULL;
    if ((e = audit_log_consistency_proof(r->app->audit, old_size, &text)) != ERR_OK)
        return audit_module_fail(r, e, "consistency proof");
    return audit_respond_text(r, text, NULL);
}

/* ---- verification of the live log ---------------------------------------- */

static pthread_mutex_t audit_verify_mu = PTHREAD_MUTEX_INITIALIZER;

static enum err audit_read_all(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? ERR_NOT_FOUND : ERR_IO;
    struct stat sb;
    enum err rc = ERR_IO;
    char *buf = NULL;
    size_t got = 0;
    if (fstat(fd, &sb) != 0 || sb.st_size < 0 || (uint64_t)sb.st_size > max)
        goto out;
    buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        rc = ERR_INTERNAL;
        goto out;
    }
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    rc = ERR_OK;
out:
    close(fd);
    if (rc != ERR_OK) {
        free(buf);
        buf = NULL;
    }
    *out = buf;
    *len = got;
    return rc;
}

/* Byte length of the first `count` records of a mapped events.log, or the
 * whole length if it holds fewer (the verifier then reports what is wrong). */
static size_t audit_prefix_len(const uint8_t *ev, size_t len, uint64_t count)
{
    size_t off = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (len - off < 4)
            return len;
        uint32_t n = (uint32_t)ev[off] << 24 | (uint32_t)ev[off + 1] << 16 |
                     (uint32_t)ev[off + 2] << 8 | ev[off + 3];
        if (n == 0 || n > AUDIT_EVENT_MAX || len - off - 4 < n)
            return len;
        off += 4 + (size_t)n;
    }
    return off;
}

static json_t *audit_report_json(const struct audit_verify_report *rep, uint64_t live_size)
{
    return json_pack("{s:b, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:s, s:I}", "ok", rep->ok, "events",
                     (json_int_t)rep->events, "heads", (json_int_t)rep->heads, "last_head_size",
                     (json_int_t)rep->last_head_size, "trusted_checked", rep->trusted_checked,
                     "bad_event_first", (json_int_t)rep->bad_event_first, "bad_event_last",
                     (json_int_t)rep->bad_event_last, "bad_head", (json_int_t)rep->bad_head,
                     "reason", rep->reason, "live_size", (json_int_t)live_size);
}

/*
 * Verifies the live log up to a head signed for this request. heads.log is
 * read before events.log is mapped, so every head read covers only events
 * already durable in the file, and events.log is cut after the records the
 * last head covers: a record being written concurrently is never seen.
 */
static enum err audit_verify_live(struct request *r, const char *trusted,
                                  struct audit_verify_report *rep)
{
    char dir[1200], path[1300];
    if (app_path(&r->app->cfg, "audit", dir, sizeof(dir)) != 0)
        return ERR_INTERNAL;
    enum err e = audit_log_sign_head(r->app->audit);
    if (e != ERR_OK)
        return ERR_UNAVAILABLE;
    char *heads = NULL;
    size_t heads_len = 0;
    uint8_t raw[AUDIT_PUBKEY_LEN];
    EVP_PKEY *pub = NULL;
    snprintf(path, sizeof(path), "%s/signing.pub", dir);
    if ((e = audit_pubkey_load(path, &pub)) != ERR_OK || audit_pubkey_raw(pub, raw) != 0) {
        memset(rep, 0, sizeof(*rep));
        rep->bad_event_first = rep->bad_event_last = rep->bad_head = -1;
        snprintf(rep->reason, sizeof(rep->reason), "signing.pub cannot be loaded");
        EVP_PKEY_free(pub);
        return ERR_INTEGRITY;
    }
    EVP_PKEY_free(pub);
    snprintf(path, sizeof(path), "%s/heads.log", dir);
    if ((e = audit_read_all(path, AUDIT_API_HEADS_MAX, &heads, &heads_len)) != ERR_OK)
        return ERR_IO;
    /* A line being appended right now is left out. */
    while (heads_len > 0 && heads[heads_len - 1] != '\n')
        heads_len--;
    uint64_t covered = 0;
    if (heads_len > 0) {
        size_t start = heads_len - 1;
        while (start > 0 && heads[start - 1] != '\n')
            start--;
        struct audit_sth last;
        if (audit_sth_parse(heads + start, heads_len - 1 - start, &last) == ERR_OK)
            covered = last.tree_size;
    }
    snprintf(path, sizeof(path), "%s/events.log", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    void *map = NULL;
    size_t map_len = 0;
    e = ERR_IO;
    if (fd >= 0 && fstat(fd, &sb) == 0) {
        map_len = (size_t)sb.st_size;
        map = map_len > 0 ? mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
        if (map != MAP_FAILED) {
            const uint8_t *ev = map != NULL ? map : (const uint8_t *)"";
            size_t use = audit_prefix_len(ev, map_len, covered);
            e = audit_verify_buffers(ev, use, (const uint8_t *)heads, heads_len, raw, trusted, rep);
            if (map != NULL)
                munmap(map, map_len);
        }
    }
    if (fd >= 0)
        close(fd);
    free(heads);
    return e;
}

enum err api_audit_verify(struct request *r)
{
    enum err e = gate_check(r, "audit:Read", "*", NULL);
    if (e != ERR_OK)
        return e;
    char *trusted = NULL;
    if (r->body_json != NULL && json_object_get(r->body_json, "trusted_head") != NULL) {
        json_t *t = json_object_get(r->body_json, "trusted_head");
        if (!json_is_object(t))
            return http_fail(r, ERR_INVALID,
                             "trusted_head must be the JSON of 'coffer audit head'");
        trusted = json_dumps(t, JSON_COMPACT);
        if (trusted == NULL)
            return http_fail(r, ERR_INTERNAL, "out of memory");
    }
    if (pthread_mutex_trylock(&audit_verify_mu) != 0) {
        free(trusted);
        return http_fail(r, ERR_RATE_LIMITED, "a verification is already running; try again");
    }
    struct audit_verify_report rep;
    e = audit_verify_live(r, trusted, &rep);
    pthread_mutex_unlock(&audit_verify_mu);
    int had_trusted = trusted != NULL;
    free(trusted);
    if (e == ERR_INVALID && had_trusted)
        return http_fail(r, ERR_INVALID, "the trusted head is malformed");
    if (e != ERR_OK && e != ERR_INTEGRITY)
        return http_fail(r, ERR_UNAVAILABLE, "the audit log cannot be read for verification");
    r->json = audit_report_json(&rep, audit_log_size(r->app->audit));
    return r->json != NULL ? ERR_OK : http_fail(r, ERR_INTERNAL, "out of memory");
}
