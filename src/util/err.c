#include "util/err.h"

#include <string.h>

static const struct err_info err_table[ERR_COUNT] = {
    [ERR_OK] = {"ok", 200, 0, "ok"},
    [ERR_INTERNAL] = {"internal", 500, 1, "internal error; see the server log"},
    [ERR_IO] = {"io", 500, 1, "storage input/output failed; check disk space and permissions"},
    [ERR_INVALID] = {"invalid_argument", 400, 2, "invalid input"},
    [ERR_UNAUTHENTICATED] = {"unauthenticated", 401, 3,
                             "not authenticated; run 'coffer login' or set COFFER_TOKEN"},
    [ERR_FORBIDDEN] = {"forbidden", 403, 4, "access denied by policy"},
    [ERR_NOT_FOUND] = {"not_found", 404, 5, "not found"},
    [ERR_METHOD] = {"method_not_allowed", 405, 2, "method not allowed for this path"},
    [ERR_CONFLICT] = {"conflict", 409, 6, "conflict with the current state"},
    [ERR_GONE] = {"gone", 410, 5, "the content was erased"},
    [ERR_LENGTH_REQUIRED] = {"length_required", 411, 2, "a Content-Length is required"},
    [ERR_TOO_LARGE] = {"payload_too_large", 413, 2, "request too large"},
    [ERR_MEDIA_TYPE] = {"unsupported_media_type", 415, 2, "unsupported content type"},
    [ERR_INTEGRITY] = {"integrity", 422, 7, "integrity check failed"},
    [ERR_RATE_LIMITED] = {"rate_limited", 429, 1, "too many attempts; wait and retry"},
    [ERR_UNAVAILABLE] = {"unavailable", 503, 1, "service unavailable; retry later"},
};

const struct err_info *err_info(enum err e)
{
    if ((int)e < 0 || e >= ERR_COUNT)
        e = ERR_INTERNAL;
    return &err_table[e];
}

enum err err_from_code(const char *code)
{
    if (code == NULL)
        return ERR_INTERNAL;
    for (int i = 0; i < ERR_COUNT; i++) {
        if (strcmp(err_table[i].code, code) == 0)
            return (enum err)i;
    }
    return ERR_INTERNAL;
}

enum err err_from_http(int status)
{
    for (int i = 1; i < ERR_COUNT; i++) {
        if (err_table[i].http_status == status)
            return (enum err)i;
    }
    return status >= 200 && status < 300 ? ERR_OK : ERR_INTERNAL;
}
