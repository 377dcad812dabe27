/*
 * http/validate: the pure part of request validation. It checks a request's
 * head in a fixed order (method, path, content type, length) against a route
 * table, percent-decodes paths and query values, and parses JSON bodies,
 * without touching libmicrohttpd or any server state, so that the fuzz
 * targets and the unit tests exercise exactly the code the server runs.
 */
#ifndef COFFER_HTTP_VALIDATE_H
#define COFFER_HTTP_VALIDATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "util/err.h"

/* What the server knows of a request before its body: borrowed strings. */
struct http_head {
    const char *method;            /* request method, NUL-terminated */
    const char *url;               /* percent-decoded path, without the query */
    const char *content_type;      /* header value or NULL */
    const char *content_length;    /* header value or NULL */
    const char *transfer_encoding; /* header value or NULL */
    size_t max_json_bytes;         /* cap of JSON bodies */
    uint64_t max_upload_bytes;     /* cap of streamed uploads */
};

/* The outcome of http_check_head. */
struct http_verdict {
    int method_known;          /* 1 if the method is one Coffer uses */
    const struct route *route; /* the matching route, or NULL */
    size_t param_off;          /* offset in url of the route's parameter */
    uint64_t content_length;   /* declared length; UINT64_MAX when none was given */
    char allow[48];            /* methods allowed on the path (for a 405) */
    char why[HTTP_ERRMSG_MAX]; /* one-line reason when the result is not ERR_OK */
};

/*
 * Validates h against routes (terminated by a row with method NULL), in this
 * order: the method is known (else ERR_METHOD); the path is at most
 * HTTP_PATH_MAX bytes of printable ASCII (else ERR_INVALID) and names a route
 * (else ERR_METHOD when another method is routed there, ERR_NOT_FOUND
 * otherwise; HEAD is routed as GET); Content-Length is a plain decimal
 * number (else ERR_INVALID); the content type fits the route's body (else
 * ERR_MEDIA_TYPE; a body on a body-less route is ERR_INVALID); the declared
 * length is within the route's cap (else ERR_TOO_LARGE). v->route is set as
 * soon as a route matched, even when a later check fails.
 * Returns ERR_OK or the first failure, with v->why filled in.
 */
enum err http_check_head(const struct route *routes, const struct http_head *h,
                         struct http_verdict *v);

/* Parses a Content-Length value: 1 to 19 decimal digits, nothing else.
 * Returns 0 and sets *out, or -1. */
int http_parse_length(const char *s, uint64_t *out);

/* 1 if the media type ct (header value, may be NULL) is want, ignoring case
 * and parameters after ';'. */
int http_content_type_is(const char *ct, const char *want);

/* Percent-decodes s in place, except that %00 is left as it is, so a NUL can
 * never cut a path or value short (path validation then rejects the '%').
 * Returns the new length. */
size_t http_unescape_inplace(char *s);

/*
 * Parses a JSON request body of len bytes (NUL bytes, duplicate keys and
 * anything but an object at the top level are refused; an empty body is an
 * empty object). On success *out is a new reference the caller decrefs.
 * Returns ERR_OK or ERR_INVALID with a one-line reason in why.
 */
enum err http_json_body_parse(const char *body, size_t len, json_t **out, char *why,
                              size_t why_cap);

#endif
