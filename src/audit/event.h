/*
 * event: builds audit events in the documented schema v1 (docs/AUDIT.md).
 *
 *   {"v":1,"time":"2024-05-01T12:00:00.123Z","request_id":..,"principal":..,
 *    "auth_method":..,"mfa":bool,"source_ip":..,"user_agent":..,"action":..,
 *    "resource":..,"decision":"allow"|"deny","reason":..,"statements":[..],
 *    "status":int,"bytes":int,"sha256":..(optional),"detail":{..}(optional)}
 *
 * Unknown string fields are null. Strings are cut to a bounded length and
 * invalid UTF-8 is replaced, so any input yields one valid JSON line.
 * Never pass a secret (password, token, key, share-link secret) in any field:
 * the audit log is readable by auditors and is kept for years.
 */
#ifndef COFFER_AUDIT_EVENT_H
#define COFFER_AUDIT_EVENT_H

#include "util/err.h"

#include <stddef.h>
#include <stdint.h>

#define AUDIT_EVENT_VERSION 1
/* Longest value kept for a string field; longer ones are cut and marked with "...". */
#define AUDIT_FIELD_MAX 1024
/* Most statements recorded for one decision. */
#define AUDIT_STATEMENTS_MAX 32

struct json_t;

struct audit_event {
    const char *time; /* RFC 3339 UTC with milliseconds; NULL: now */
    const char *request_id;
    const char *principal;   /* "user:alice", "service:ci", "link:ID", "system:coffer" */
    const char *auth_method; /* password|token|oidc|mtls|sigv4|link|none */
    int mfa;
    const char *source_ip;
    const char *user_agent;
    const char *action;            /* required, e.g. "artifact:Download", "log.segment" */
    const char *resource;          /* e.g. "fraud/prod/model@3" */
    int allow;                     /* decision: nonzero allow, 0 deny */
    const char *reason;            /* why: deciding rule, error message */
    const char *const *statements; /* deciding statements, "policy/Sid" */
    size_t n_statements;
    int status;            /* HTTP status of the response, 0 if none */
    int64_t bytes;         /* content bytes transferred */
    const char *sha256;    /* hex content hash, NULL to omit */
    struct json_t *detail; /* an object, borrowed (not freed), NULL to omit */
};

/* Encodes ev as one compact JSON line (no trailing newline). *json_out is a
 * NUL-terminated string the caller frees with free; *len_out its length.
 * ERR_INVALID if action is missing or detail is not an object. */
enum err audit_event_encode(const struct audit_event *ev, char **json_out, size_t *len_out);

/* Writes the current UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (>= 25 bytes). */
void audit_event_time_now(char *out, size_t cap);

#endif
