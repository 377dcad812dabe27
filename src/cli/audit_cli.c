/*
 * coffer audit: tail, export, head, proof, verify, verify-proof.
 *
 * verify --data and verify-proof run offline on files alone; the others
 * read the log through the server and need audit:Read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/util.h"
#include "util/err.h"
#include "util/secure.h"

#define AUDIT_CLI_FILE_MAX (16u * 1024 * 1024)
#define AUDIT_CLI_PAGE 1000
#define AUDIT_CLI_TAIL_DEFAULT 20

static const char audit_usage[] =
    "usage: coffer audit tail [-n N] [-f [--interval SECONDS]] [FILTERS]\n"
    "       coffer audit export [--since TIME] [--until TIME] [--from INDEX] [FILTERS]\n"
    "       coffer audit verify [--data DIR] [--trusted-head FILE]\n"
    "       coffer audit head [-o FILE]\n"
    "       coffer audit proof EVENT [-o FILE]\n"
    "       coffer audit verify-proof FILE --public-key PEM [--event FILE] [--trusted-head FILE]\n"
    "\n"
    "FILTERS: --principal P (user:alice, or alice for any type), --prefix RESOURCE-PREFIX,\n"
    "         --action A, --decision allow|deny. TIME: RFC 3339 (2024-05-01, "
    "2024-05-01T12:00:00Z)\n"
    "         or an age such as 30m, 12h, 7d.\n"
    "verify --data DIR checks a stopped server's data directory (or a copy) offline; without\n"
    "--data the server verifies its live log. --trusted-head FILE also checks the log still\n"
    "contains a head saved earlier with 'coffer audit head -o FILE'. Exit 7 on tampering.\n"
    "export prints JSON lines {\"index\":N,\"event\":{...}}; tail prints one line per event\n"
    "(--json: JSON lines). verify-proof needs only the log's public key "
    "(DATA/audit/signing.pub).\n";

/* ---- helpers ---------------------------------------------------------------- */

static int audit_read_file(const char *path, char **out, size_t *len_out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "coffer: cannot open %s: %s\n", path, strerror(errno));
        return errno == ENOENT ? 5 : 1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > (off_t)AUDIT_CLI_FILE_MAX) {
        close(fd);
        fprintf(stderr, "coffer: %s is not a regular file of at most 16 MiB\n", path);
        return 2;
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    size_t got = 0;
    while (buf != NULL && got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (buf == NULL || got != (size_t)sb.st_size) {
        free(buf);
        fprintf(stderr, "coffer: cannot read %s\n", path);
        return 1;
    }
    buf[got] = '\0';
    *out = buf;
    if (len_out != NULL)
        *len_out = got;
    return 0;
}

/* Writes text (plus a newline) to path, or to stdout for NULL or "-". */
static int audit_write_out(const char *path, const char *text)
{
    if (path == NULL || strcmp(path, "-") == 0) {
        printf("%s\n", text);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "coffer: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    int bad = fprintf(f, "%s\n", text) < 0;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad) {
        fprintf(stderr, "coffer: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

/* An age such as 90s, 30m, 12h, 7d, 2w becomes an RFC 3339 time that long
 * ago; anything else is passed on for the server to check. */
static const char *audit_time_arg(const char *s, char *buf, size_t cap)
{
    size_t n = strlen(s);
    if (n < 2 || n > 10 || strspn(s, "0123456789") != n - 1)
        return s;
    long long v = strtoll(s, NULL, 10), unit;
    switch (s[n - 1]) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    default:
        return s;
    }
    cli_time_utc((long long)(time(NULL) - (time_t)(v * unit)), buf, cap);
    return buf;
}

/* The filter options shared by tail and export, as a query string. */
static int audit_filter_query(const struct args *a, char *q, size_t cap)
{
    static const struct {
        const char *opt, *param;
    } map[] = {{"--principal", "principal"}, {"--prefix", "prefix"}, {"--action", "action"},
               {"--decision", "decision"},   {"--since", "since"},   {"--until", "until"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        const char *v = args_get(a, map[i].opt);
        if (v == NULL)
            continue;
        char tbuf[40];
        if (strcmp(map[i].param, "since") == 0 || strcmp(map[i].param, "until") == 0)
            v = audit_time_arg(v, tbuf, sizeof(tbuf));
        if (cli_query_add(q, cap, map[i].param, v) != 0) {
            fprintf(stderr, "coffer: the filter options are too long\n");
            return 2;
        }
    }
    const char *d = args_get(a, "--decision");
    if (d != NULL && strcmp(d, "allow") != 0 && strcmp(d, "deny") != 0) {
        fprintf(stderr, "coffer: --decision must be allow or deny\n");
        return 2;
    }
    return 0;
}

static int audit_parse_count(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0' && *out <= max ? 0 : -1;
}

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "-";
}

/* Prints one {"index":N,"event":{...}} item as a JSON line or a summary line. */
static void audit_print_event(json_t *item, int as_json)
{
    if (as_json) {
        char *s = json_dumps(item, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s != NULL)
            printf("%s\n", s);
        free(s);
        return;
    }
    json_t *ev = json_object_get(item, "event");
    printf("%-6lld %s %-20s %-5s %-22s %s status=%lld reason=%s\n",
           (long long)json_integer_value(json_object_get(item, "index")), jstr(ev, "time"),
           jstr(ev, "principal"), jstr(ev, "decision"), jstr(ev, "action"), jstr(ev, "resource"),
           (long long)json_integer_value(json_object_get(ev, "status")), jstr(ev, "reason"));
}

/* Prints the events of a page, except the event of the page's own request
 * (each read of the log is itself recorded). Returns the page's "next". */
static uint64_t audit_print_page(json_t *page, int as_json, int skip_own)
{
    const char *own = json_string_value(json_object_get(page, "request_id"));
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(page, "events"), i, item)
    {
        const char *rid =
            json_string_value(json_object_get(json_object_get(item, "event"), "request_id"));
        if (skip_own && own != NULL && rid != NULL && strcmp(own, rid) == 0)
            continue;
        audit_print_event(item, as_json);
    }
    fflush(stdout);
    return (uint64_t)json_integer_value(json_object_get(page, "next"));
}

static int audit_get_page(struct client *c, const char *filters, const char *where, json_t **out)
{
    char url[8192];
    int n = snprintf(url, sizeof(url), "/v1/audit/events%s%s%s", filters,
                     filters[0] != '\0' ? "&" : "?", where);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        fprintf(stderr, "coffer: the filter options are too long\n");
        return 2;
    }
    int rc = client_json(c, "GET", url, NULL, out);
    if (rc == 0 && !json_is_array(json_object_get(*out, "events"))) {
        json_decref(*out);
        *out = NULL;
        fprintf(stderr, "coffer: the server sent a malformed answer\n");
        return 1;
    }
    return rc;
}

/* ---- tail and export -------------------------------------------------------- */

static int audit_tail(struct client *c, const struct args *a)
{
    unsigned long long n = AUDIT_CLI_TAIL_DEFAULT, interval = 1;
    if (args_has(a, "-n") && audit_parse_count(args_get(a, "-n"), 10000, &n) != 0) {
        fprintf(stderr, "coffer: -n must be 0..10000\n");
        return 2;
    }
    if (args_has(a, "--interval") &&
        (audit_parse_count(args_get(a, "--interval"), 3600, &interval) != 0 || interval < 1)) {
        fprintf(stderr, "coffer: --interval must be 1..3600 seconds\n");
        return 2;
    }
    int follow = args_has(a, "-f") || args_has(a, "--follow");
    char filters[4096] = "";
    int rc = audit_filter_query(a, filters, sizeof(filters));
    if (rc != 0)
        return rc;
    json_t *page = NULL;
    char where[64];
    uint64_t next;
    if (n > 0) {
        snprintf(where, sizeof(where), "last=%llu", n);
        if ((rc = audit_get_page(c, filters, where, &page)) != 0)
            return rc;
        next = audit_print_page(page, c->json_output, follow);
    } else {
        /* Nothing to show yet: only learn where the log ends. */
        if ((rc = audit_get_page(c, filters, "last=1", &page)) != 0)
            return rc;
        next = (uint64_t)json_integer_value(json_object_get(page, "next"));
    }
    json_decref(page);
    while (follow) {
        sleep((unsigned)interval);
        snprintf(where, sizeof(where), "from=%llu&limit=%d", (unsigned long long)next,
                 AUDIT_CLI_PAGE);
        if ((rc = audit_get_page(c, filters, where, &page)) != 0)
            return rc;
        next = audit_print_page(page, c->json_output, 1);
        json_decref(page);
    }
    return 0;
}

static int audit_export(struct client *c, const struct args *a)
{
    unsigned long long from = 0;
    if (args_has(a, "--from") && audit_parse_count(args_get(a, "--from"), INT64_MAX, &from) != 0) {
        fprintf(stderr, "coffer: --from must be an event index\n");
        return 2;
    }
    char filters[4096] = "";
    int rc = audit_filter_query(a, filters, sizeof(filters));
    if (rc != 0)
        return rc;
    /* The export ends where the log ended at its first page: the export's
     * own reads are recorded too and would otherwise never let it finish. */
    uint64_t next = from, end = UINT64_MAX;
    for (;;) {
        char where[64];
        snprintf(where, sizeof(where), "from=%llu&limit=%d", (unsigned long long)next,
                 AUDIT_CLI_PAGE * 10);
        json_t *page = NULL;
        if ((rc = audit_get_page(c, filters, where, &page)) != 0)
            return rc;
        if (end == UINT64_MAX)
            end = (uint64_t)json_integer_value(json_object_get(page, "size"));
        /* JSON lines always: an export is for machines. */
        uint64_t got = audit_print_page(page, 1, 0);
        json_decref(page);
        if (got <= next || got >= end)
            break;
        next = got;
    }
    return 0;
}

/* ---- head and proof --------------------------------------------------------- */

static int audit_head(struct client *c, const struct args *a)
{
    json_t *out = NULL;
    int rc = client_json(c, "GET", "/v1/audit/head", NULL, &out);
    if (rc != 0)
        return rc;
    char *text = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    const char *path = args_get(a, "-o");
    rc = text != NULL ? audit_write_out(path, text) : 1;
    if (rc == 0 && path != NULL && strcmp(path, "-") != 0)
        fprintf(stderr,
                "Saved the signed head (tree_size %lld, key %s) to %s. Keep it where the "
                "server cannot write; 'coffer audit verify --trusted-head %s' checks against it.\n",
                (long long)json_integer_value(json_object_get(out, "tree_size")),
                jstr(out, "key_fingerprint"), path, path);
    free(text);
    json_decref(out);
    return rc;
}

static int audit_proof(struct client *c, const struct args *a)
{
    unsigned long long index;
    if (audit_parse_count(a->pos[1], INT64_MAX, &index) != 0) {
        fprintf(stderr, "coffer: EVENT must be an event index (as shown by 'coffer audit tail')\n");
        return 2;
    }
    char url[64];
    snprintf(url, sizeof(url), "/v1/audit/proof/%llu", index);
    json_t *out = NULL;
    int rc = client_json(c, "GET", url, NULL, &out);
    if (rc != 0)
        return rc;
    char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    rc = text != NULL ? audit_write_out(args_get(a, "-o"), text) : 1;
    free(text);
    json_decref(out);
    return rc;
}

/* ---- verification ----------------------------------------------------------- */

/* Prints a verification report (from the server or the local verifier) and
 * returns the exit code: 0 good, 7 tampering. */
static int audit_print_report(json_t *rep, int as_json, const char *what)
{
    int good = json_is_true(json_object_get(rep, "ok"));
    long long events = (long long)json_integer_value(json_object_get(rep, "events"));
    long long heads = (long long)json_integer_value(json_object_get(rep, "heads"));
    long long covered = (long long)json_integer_value(json_object_get(rep, "last_head_size"));
    long long first = (long long)json_integer_value(json_object_get(rep, "bad_event_first"));
    long long last = (long long)json_integer_value(json_object_get(rep, "bad_event_last"));
    long long head = (long long)json_integer_value(json_object_get(rep, "bad_head"));
    if (as_json) {
        char *s = json_dumps(rep, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s != NULL)
            printf("%s\n", s);
        free(s);
    } else if (good) {
        printf("audit log OK (%s): %lld events, %lld signed heads checked\n", what, events, heads);
        printf("covered by the last signed head: %lld events", covered);
        if (events > covered)
            printf(" (%lld newer not yet signed)", events - covered);
        printf("\n");
        if (json_is_true(json_object_get(rep, "trusted_checked")))
            printf("trusted head matched: the log still holds the events it signed\n");
    } else {
        printf("audit log FAILED verification (%s): %s\n", what, jstr(rep, "reason"));
        if (first >= 0)
            printf("first bad event: %lld (problem within events %lld..%lld)\n", first, first,
                   last);
        if (head >= 0)
            printf("bad head: %lld (0-based line of heads.log)\n", head);
    }
    if (good)
        return 0;
    if (first >= 0)
        fprintf(stderr,
                "coffer: the audit log has been altered or damaged from event %lld on; "
                "keep a copy of the directory for investigation\n",
                first);
    else
        fprintf(stderr, "coffer: the audit log has been altered or damaged; keep a copy of the "
                        "directory for investigation\n");
    return err_info(ERR_INTEGRITY)->exit_code;
}

static json_t *audit_report_to_json(const struct audit_verify_report *rep)
{
    return json_pack("{s:b, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:s}", "ok", rep->ok, "events",
                     (json_int_t)rep->events, "heads", (json_int_t)rep->heads, "last_head_size",
                     (json_int_t)rep->last_head_size, "trusted_checked", rep->trusted_checked,
                     "bad_event_first", (json_int_t)rep->bad_event_first, "bad_event_last",
                     (json_int_t)rep->bad_event_last, "bad_head", (json_int_t)rep->bad_head,
                     "reason", rep->reason);
}

static int audit_verify_offline(const char *data, const char *trusted, int as_json)
{
    char dir[4096];
    struct stat sb;
    int n = snprintf(dir, sizeof(dir), "%s/audit", data);
    if (n < 0 || (size_t)n >= sizeof(dir)) {
        fprintf(stderr, "coffer: --data is too long\n");
        return 2;
    }
    /* --data may also name the audit directory itself. */
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        snprintf(dir, sizeof(dir), "%s", data);
    struct audit_verify_report rep;
    enum err e = audit_verify_dir(dir, trusted, &rep);
    if (e != ERR_OK && e != ERR_INTEGRITY) {
        fprintf(stderr, "coffer: cannot verify %s: %s\n", dir,
                rep.reason[0] != '\0' ? rep.reason : err_info(e)->message);
        return err_info(e)->exit_code;
    }
    json_t *j = audit_report_to_json(&rep);
    if (j == NULL)
        return 1;
    if (e == ERR_INTEGRITY)
        json_object_set_new(j, "ok", json_false());
    int rc = audit_print_report(j, as_json, dir);
    json_decref(j);
    return rc;
}

/* Checks that the server's latest signed head extends the trusted head, with
 * the key of the trusted head: this holds even if the server lies. */
static int audit_check_extends(struct client *c, json_t *trusted, const char *trusted_text)
{
    uint8_t raw[32];
    const char *pk = json_string_value(json_object_get(trusted, "public_key"));
    json_t *size = json_object_get(trusted, "tree_size");
    if (pk == NULL || !json_is_integer(size) || json_integer_value(size) < 0 ||
        hex_decode(pk, strlen(pk), raw, sizeof(raw)) != 0) {
        fprintf(stderr, "coffer: the trusted head has no valid public_key or tree_size\n");
        return 2;
    }
    char url[64];
    snprintf(url, sizeof(url), "/v1/audit/consistency/%lld", (long long)json_integer_value(size));
    json_t *proof = NULL;
    int rc = client_json(c, "GET", url, NULL, &proof);
    if (rc != 0)
        return rc == 5 ? err_info(ERR_INTEGRITY)->exit_code : rc;
    char *text = json_dumps(proof, JSON_COMPACT);
    json_decref(proof);
    if (text == NULL)
        return 1;
    struct audit_proof_check chk = {.trusted_head_json = trusted_text};
    char reason[256] = "";
    enum err e = audit_verify_proof_json_raw(text, raw, &chk, reason, sizeof(reason));
    free(text);
    if (e != ERR_OK) {
        printf("the server's signed head does not extend the trusted head: %s\n", reason);
        fprintf(stderr, "coffer: the audit log was rewritten after the trusted head was saved\n");
        return err_info(ERR_INTEGRITY)->exit_code;
    }
    printf("consistency proof checked locally: the server's latest head extends the trusted "
           "head\n");
    return 0;
}

static int audit_verify_online(struct client *c, const char *trusted_path)
{
    json_t *trusted = NULL, *body = NULL, *rep = NULL;
    char *trusted_text = NULL;
    int rc;
    if (trusted_path != NULL) {
        if ((rc = audit_read_file(trusted_path, &trusted_text, NULL)) != 0)
            return rc;
        trusted = json_loads(trusted_text, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(trusted)) {
            fprintf(stderr, "coffer: %s is not a head saved by 'coffer audit head'\n",
                    trusted_path);
            json_decref(trusted);
            free(trusted_text);
            return 2;
        }
        body = json_pack("{s:O}", "trusted_head", trusted);
    }
    rc = client_json(c, body != NULL ? "POST" : "GET", "/v1/audit/verify", body, &rep);
    json_decref(body);
    if (rc == 0) {
        rc = audit_print_report(rep, c->json_output, "live log, verified by the server");
        json_decref(rep);
    }
    if (rc == 0 && trusted != NULL)
        rc = audit_check_extends(c, trusted, trusted_text);
    json_decref(trusted);
    free(trusted_text);
    return rc;
}

static int audit_verify_proof(const struct args *a)
{
    const char *pem = args_get(a, "--public-key");
    if (pem == NULL) {
        fprintf(stderr, "coffer: verify-proof needs --public-key PEM (the log's signing.pub)\n");
        return 2;
    }
    char *proof = NULL, *event = NULL, *trusted = NULL;
    size_t event_len = 0;
    int rc = audit_read_file(a->pos[1], &proof, NULL);
    if (rc == 0 && args_has(a, "--event"))
        rc = audit_read_file(args_get(a, "--event"), &event, &event_len);
    if (rc == 0 && args_has(a, "--trusted-head"))
        rc = audit_read_file(args_get(a, "--trusted-head"), &trusted, NULL);
    json_t *o = rc == 0 ? json_loads(proof, 0, NULL) : NULL;
    if (rc == 0 && !json_is_object(o)) {
        fprintf(stderr, "coffer: %s is not a proof made by 'coffer audit proof'\n", a->pos[1]);
        rc = 2;
    }
    struct audit_proof_check chk = {0};
    if (rc == 0) {
        if (event != NULL) {
            while (event_len > 0 && (event[event_len - 1] == '\n' || event[event_len - 1] == '\r'))
                event_len--;
            chk.event_json = event;
            chk.event_len = event_len;
        } else if (json_is_string(json_object_get(o, "event"))) {
            chk.event_json = json_string_value(json_object_get(o, "event"));
            chk.event_len = json_string_length(json_object_get(o, "event"));
        }
        chk.trusted_head_json = trusted;
        char reason[256] = "";
        enum err e = audit_verify_proof_json(proof, pem, &chk, reason, sizeof(reason));
        if (e == ERR_OK) {
            const char *fmt = jstr(o, "format");
            if (strcmp(fmt, "coffer-inclusion-v1") == 0)
                printf("proof OK: event %lld is in the log of %lld events signed by %s%s\n",
                       (long long)json_integer_value(json_object_get(o, "index")),
                       (long long)json_integer_value(json_object_get(o, "tree_size")),
                       jstr(o, "key_fingerprint"),
                       chk.event_json != NULL ? "; the event matches its leaf hash" : "");
            else
                printf("proof OK: the log of %lld events extends the log of %lld events, signed "
                       "by %s\n",
                       (long long)json_integer_value(json_object_get(o, "tree_size")),
                       (long long)json_integer_value(json_object_get(o, "old_size")),
                       jstr(o, "key_fingerprint"));
        } else {
            printf("proof FAILED: %s\n", reason);
            fprintf(stderr, "coffer: the proof does not hold: %s\n", reason);
            rc = err_info(e)->exit_code;
        }
    }
    json_decref(o);
    free(proof);
    free(event);
    free(trusted);
    return rc;
}

/* ---- dispatch --------------------------------------------------------------- */

#define OPT(name, value)                                                                           \
    {                                                                                              \
        name, value, 0, {0}, 0                                                                     \
    }
#define OPT_END                                                                                    \
    {                                                                                              \
        NULL, 0, 0, {0}, 0                                                                         \
    }
#define FILTER_OPTS                                                                                \
    OPT("--principal", 1), OPT("--prefix", 1), OPT("--action", 1), OPT("--decision", 1),           \
        OPT("--since", 1), OPT("--until", 1)

int cli_audit(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fprintf(argc < 2 ? stderr : stdout, "%s", audit_usage);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    struct args_opt tail_opts[] = {OPT("-n", 1),         OPT("-f", 0), OPT("--follow", 0),
                                   OPT("--interval", 1), FILTER_OPTS,  OPT_END};
    struct args_opt export_opts[] = {OPT("--from", 1), FILTER_OPTS, OPT_END};
    struct args_opt verify_opts[] = {OPT("--data", 1), OPT("--trusted-head", 1), OPT_END};
    struct args_opt out_opts[] = {OPT("-o", 1), OPT_END};
    struct args_opt vp_opts[] = {OPT("--public-key", 1), OPT("--event", 1),
                                 OPT("--trusted-head", 1), OPT_END};
    struct args_opt *opts;
    int npos, online = 1;
    if (strcmp(sub, "tail") == 0) {
        opts = tail_opts;
        npos = 1;
    } else if (strcmp(sub, "export") == 0) {
        opts = export_opts;
        npos = 1;
    } else if (strcmp(sub, "verify") == 0) {
        opts = verify_opts;
        npos = 1;
    } else if (strcmp(sub, "head") == 0) {
        opts = out_opts;
        npos = 1;
    } else if (strcmp(sub, "proof") == 0) {
        opts = out_opts;
        npos = 2;
    } else if (strcmp(sub, "verify-proof") == 0) {
        opts = vp_opts;
        npos = 2;
        online = 0;
    } else {
        fprintf(stderr, "coffer: unknown audit command '%s'\n%s", sub, audit_usage);
        return 2;
    }
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    /* argv[0] is skipped by the parser: start at the subcommand. */
    int rc = args_parse(&a, &c, argc - 1, argv + 1, audit_usage);
    if (rc != 0 || a.help)
        return rc;
    /* The subcommand counts as the first positional argument. */
    if (a.npos + 1 != npos) {
        fprintf(stderr, "%s", audit_usage);
        return 2;
    }
    for (int i = a.npos; i > 0; i--)
        a.pos[i] = a.pos[i - 1];
    a.pos[0] = sub;
    a.npos++;
    if (strcmp(sub, "verify") == 0 && args_has(&a, "--data"))
        return audit_verify_offline(args_get(&a, "--data"), args_get(&a, "--trusted-head"),
                                    c.json_output);
    if (!online)
        return audit_verify_proof(&a);
    if ((rc = client_setup(&c, 1)) != 0)
        return rc;
    if (strcmp(sub, "tail") == 0)
        return audit_tail(&c, &a);
    if (strcmp(sub, "export") == 0)
        return audit_export(&c, &a);
    if (strcmp(sub, "verify") == 0)
        return audit_verify_online(&c, args_get(&a, "--trusted-head"));
    if (strcmp(sub, "head") == 0)
        return audit_head(&c, &a);
    return audit_proof(&c, &a);
}
