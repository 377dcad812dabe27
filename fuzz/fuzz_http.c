/*
 * Fuzz target for request validation: the input is a raw HTTP/1.1 request
 * head (request line and header lines). It is split the way
 * libmicrohttpd splits it, the path and query arguments are percent-decoded
 * by the server's own decoder, and the head goes through http_check_head
 * against the real route table, in the order the server uses: method, path,
 * content type, length. Routes that carry an artifact path or reference
 * then parse it as their handlers do. Invariants: the decoder never grows a
 * string or makes a NUL, and whatever validation accepts is a routed,
 * printable, bounded path whose declared length is within the route's cap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/validate.h"
#include "registry/path.h"

#define FUZZ_MAX_JSON (1u << 20)
#define FUZZ_MAX_UPLOAD (64ULL << 30)

struct fuzz_headers {
    const char *content_type;
    const char *content_length;
    const char *transfer_encoding;
    const char *authorization;
};

/* Decodes s in place and checks the decoder's invariants. */
static void fuzz_unescape(char *s)
{
    size_t before = strlen(s);
    size_t after = http_unescape_inplace(s);
    if (after > before || strlen(s) != after)
        abort();
}

/* Splits a query string into arguments and decodes each key and value. */
static void fuzz_query(char *q)
{
    char *save = NULL;
    for (char *arg = strtok_r(q, "&", &save); arg != NULL; arg = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(arg, '=');
        if (eq != NULL) {
            *eq = '\0';
            fuzz_unescape(eq + 1);
        }
        fuzz_unescape(arg);
    }
}

/* Fills h from "Name: value" lines (names are case-insensitive). */
static void fuzz_header_lines(char *lines, struct fuzz_headers *h)
{
    char *save = NULL;
    for (char *ln = strtok_r(lines, "\r\n", &save); ln != NULL;
         ln = strtok_r(NULL, "\r\n", &save)) {
        char *colon = strchr(ln, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (strcasecmp(ln, "Content-Type") == 0)
            h->content_type = v;
        else if (strcasecmp(ln, "Content-Length") == 0)
            h->content_length = v;
        else if (strcasecmp(ln, "Transfer-Encoding") == 0)
            h->transfer_encoding = v;
        else if (strcasecmp(ln, "Authorization") == 0)
            h->authorization = v;
    }
}

/* What the handlers of artifact routes do with the route parameter. */
static void fuzz_param(const struct route *rt, const char *param)
{
    char why[256];
    if (strcmp(rt->prefix, "/v1/objects/") == 0 && strcmp(rt->method, "PUT") == 0) {
        struct artifact_path p;
        (void)path_parse(param, NULL, &p, why, sizeof(why));
    } else if (strcmp(rt->prefix, "/v1/objects/") == 0 ||
               strcmp(rt->prefix, "/v1/artifacts/") == 0 ||
               strcmp(rt->prefix, "/v1/versions/") == 0) {
        struct artifact_ref ref;
        (void)ref_parse(param, NULL, &ref, why, sizeof(why));
    }
}

static void fuzz_check(const char *method, char *target, struct fuzz_headers *hd)
{
    char *q = strchr(target, '?');
    if (q != NULL) {
        *q++ = '\0';
        fuzz_query(q);
    }
    fuzz_unescape(target);
    struct http_head h = {
        method,        target,         hd->content_type, hd->content_length, hd->transfer_encoding,
        FUZZ_MAX_JSON, FUZZ_MAX_UPLOAD};
    struct http_verdict v;
    enum err e = http_check_head(api_routes, &h, &v);
    if (e != ERR_OK) {
        if (v.why[0] == '\0')
            abort();
        return;
    }
    size_t ulen = strlen(target);
    if (v.route == NULL || !v.method_known || ulen > HTTP_PATH_MAX || v.param_off > ulen)
        abort();
    for (size_t i = 0; i < ulen; i++) {
        if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7f)
            abort();
    }
    if (hd->content_length != NULL) {
        uint64_t cap = v.route->body == BODY_JSON ? FUZZ_MAX_JSON : FUZZ_MAX_UPLOAD;
        if (v.route->body == BODY_NONE ? v.content_length != 0 : v.content_length > cap)
            abort();
    }
    if (v.route->body == BODY_STREAM &&
        !http_content_type_is(hd->content_type, "application/octet-stream"))
        abort();
    fuzz_param(v.route, target + v.param_off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *eol = strpbrk(buf, "\r\n");
    char *rest = NULL;
    if (eol != NULL) {
        *eol = '\0';
        rest = eol + 1;
    }
    /* Request line: METHOD SP TARGET [SP VERSION]. */
    char *save = NULL;
    char *method = strtok_r(buf, " ", &save);
    char *target = method != NULL ? strtok_r(NULL, " ", &save) : NULL;
    if (method != NULL && target != NULL) {
        struct fuzz_headers hd = {NULL, NULL, NULL, NULL};
        if (rest != NULL)
            fuzz_header_lines(rest, &hd);
        fuzz_check(method, target, &hd);
    }
    free(buf);
    return 0;
}
