/*
 * err: the one error table. Every failure in Coffer is an enum err value;
 * this table maps it to its HTTP status, its CLI exit code, a stable code
 * string for the JSON error body and a default message.
 */
#ifndef COFFER_UTIL_ERR_H
#define COFFER_UTIL_ERR_H

enum err {
    ERR_OK = 0,
    ERR_INTERNAL,        /* 500, exit 1: a bug or an unexpected system failure */
    ERR_IO,              /* 500, exit 1: a read/write/fsync failed */
    ERR_INVALID,         /* 400, exit 2: malformed input */
    ERR_UNAUTHENTICATED, /* 401, exit 3 */
    ERR_FORBIDDEN,       /* 403, exit 4 */
    ERR_NOT_FOUND,       /* 404, exit 5 */
    ERR_METHOD,          /* 405, exit 2 */
    ERR_CONFLICT,        /* 409, exit 6 */
    ERR_GONE,            /* 410, exit 5 */
    ERR_LENGTH_REQUIRED, /* 411, exit 2 */
    ERR_TOO_LARGE,       /* 413, exit 2 */
    ERR_MEDIA_TYPE,      /* 415, exit 2 */
    ERR_INTEGRITY,       /* 422, exit 7: hash mismatch, failed authentication tag, tampering */
    ERR_RATE_LIMITED,    /* 429, exit 1 */
    ERR_UNAVAILABLE,     /* 503, exit 1: e.g. the audit log cannot be written */
    ERR_COUNT
};

struct err_info {
    const char *code; /* stable machine-readable code, e.g. "not_found" */
    int http_status;
    int exit_code;
    const char *message; /* default one-line message */
};

/* Returns the table row for e (never NULL; out-of-range maps to ERR_INTERNAL). */
const struct err_info *err_info(enum err e);

/* Maps a code string from an error body back to its enum; ERR_INTERNAL if unknown. */
enum err err_from_code(const char *code);

/* Maps an HTTP status to the closest error (used when a body has no code). */
enum err err_from_http(int status);

#endif
