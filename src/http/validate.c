/*
 * Request validation without server state (see http/validate.h).
 */
#include "http/validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int http_content_type_is(const char *ct, const char *want)
{
    if (ct == NULL)
        return 0;
    size_t n = strlen(want);
    if (strncasecmp(ct, want, n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

int http_parse_length(const char *s, uint64_t *out)
{
    /* 19 digits always fit in 64 bits, so the sum below cannot overflow. */
    if (s == NULL || *s == '\0' || strlen(s) > 19)
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return 0;
}

static int http_method_known(const char *method)
{
    static const char *const methods[] = {"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", NULL};
    for (int i = 0; methods[i] != NULL; i++) {
        if (strcmp(method, methods[i]) == 0)
            return 1;
    }
    return 0;
}

/* Finds the route for method and path. Sets *path_known when some route
 * matches the path with another method, and lists those methods in allow. */
static const struct route *http_route_find(const struct route *routes, const char *method,
                                           const char *path, int *path_known, char *allow,
                                           size_t allow_cap)
{
    *path_known = 0;
    allow[0] = '\0';
    for (const struct route *rt = routes; rt->method != NULL; rt++) {
        size_t plen = strlen(rt->prefix);
        int match = rt->exact ? strcmp(path, rt->prefix) == 0
                              : strncmp(path, rt->prefix, plen) == 0 && path[plen] != '\0';
        if (!match)
            continue;
        if (strcmp(rt->method, method) == 0)
            return rt;
        *path_known = 1;
        if (strstr(allow, rt->method) == NULL) {
            size_t used = strlen(allow);
            snprintf(allow + used, allow_cap - used, "%s%s", used ? ", " : "", rt->method);
        }
    }
    return NULL;
}

static enum err http_check_fail(struct http_verdict *v, enum err e, const char *msg)
{
    snprintf(v->why, sizeof(v->why), "%s", msg);
    return e;
}

/* Checks the content type and declared length against the route's body kind. */
static enum err http_check_body(const struct http_head *h, struct http_verdict *v)
{
    v->content_length = UINT64_MAX;
    if (h->content_length != NULL && http_parse_length(h->content_length, &v->content_length) != 0)
        return http_check_fail(v, ERR_INVALID, "malformed Content-Length");
    int declared = h->content_length != NULL;
    int has_body = (declared && v->content_length > 0) || h->transfer_encoding != NULL;
    switch (v->route->body) {
    case BODY_NONE:
        if (has_body)
            return http_check_fail(v, ERR_INVALID, "this endpoint takes no request body");
        break;
    case BODY_JSON:
        if (has_body && !http_content_type_is(h->content_type, "application/json"))
            return http_check_fail(v, ERR_MEDIA_TYPE, "send the body as application/json");
        if (declared && v->content_length > h->max_json_bytes) {
            snprintf(v->why, sizeof(v->why), "JSON body larger than %zu bytes", h->max_json_bytes);
            return ERR_TOO_LARGE;
        }
        break;
    case BODY_STREAM:
        if (!http_content_type_is(h->content_type, "application/octet-stream"))
            return http_check_fail(v, ERR_MEDIA_TYPE, "send content as application/octet-stream");
        if (declared && v->content_length > h->max_upload_bytes) {
            snprintf(v->why, sizeof(v->why), "content larger than the limit of %llu bytes",
                     (unsigned long long)h->max_upload_bytes);
            return ERR_TOO_LARGE;
        }
        break;
    }
    return ERR_OK;
}

enum err http_check_head(const struct route *routes, const struct http_head *h,
                         struct http_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->content_length = UINT64_MAX;
    v->method_known = http_method_known(h->method);
    if (!v->method_known) {
        snprintf(v->why, sizeof(v->why), "method %.16s is not supported", h->method);
        return ERR_METHOD;
    }
    size_t ulen = strlen(h->url);
    if (ulen > HTTP_PATH_MAX) {
        snprintf(v->why, sizeof(v->why), "request path longer than %d bytes", HTTP_PATH_MAX);
        return ERR_INVALID;
    }
    for (size_t i = 0; i < ulen; i++) {
        unsigned char c = (unsigned char)h->url[i];
        if (c < 0x21 || c > 0x7e)
            return http_check_fail(v, ERR_INVALID,
                                   "request path contains a control or non-ASCII byte");
    }
    int path_known = 0;
    const char *lookup = strcmp(h->method, "HEAD") == 0 ? "GET" : h->method;
    v->route = http_route_find(routes, lookup, h->url, &path_known, v->allow, sizeof(v->allow));
    if (v->route == NULL) {
        if (path_known) {
            snprintf(v->why, sizeof(v->why), "method %s is not allowed on %.200s", h->method,
                     h->url);
            return ERR_METHOD;
        }
        return http_check_fail(v, ERR_NOT_FOUND, "no such endpoint; see docs/openapi.yaml");
    }
    v->param_off = strlen(v->route->prefix);
    return http_check_body(h, v);
}

static int http_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t http_unescape_inplace(char *s)
{
    char *w = s;
    for (const char *p = s; *p != '\0'; p++) {
        if (p[0] == '%' && p[1] != '\0' && p[2] != '\0') {
            int hi = http_hex_value(p[1]), lo = http_hex_value(p[2]);
            if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
                *w++ = (char)(hi * 16 + lo);
                p += 2;
                continue;
            }
        }
        *w++ = *p;
    }
    *w = '\0';
    return (size_t)(w - s);
}

enum err http_json_body_parse(const char *body, size_t len, json_t **out, char *why, size_t why_cap)
{
    *out = NULL;
    if (len == 0) {
        *out = json_object();
        if (*out == NULL) {
            snprintf(why, why_cap, "out of memory");
            return ERR_INTERNAL;
        }
        return ERR_OK;
    }
    /* jansson refuses a NUL inside a string but skips one after a number
     * ("{\"a\":4\0}" loads), so NUL bytes are refused here, anywhere. */
    if (memchr(body, '\0', len) != NULL) {
        snprintf(why, why_cap, "the JSON body contains a NUL byte");
        return ERR_INVALID;
    }
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        snprintf(why, why_cap, "malformed JSON at line %d: %.100s", jerr.line, jerr.text);
        return ERR_INVALID;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(why, why_cap, "the JSON body must be an object");
        return ERR_INVALID;
    }
    *out = j;
    return ERR_OK;
}
