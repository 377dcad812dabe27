/*
 * record: writes the audit event of a request. Every authorization
 * decision and every change is recorded durably before its result is
 * returned; when the log cannot be written the request fails with 503.
 */
#ifndef COFFER_API_RECORD_H
#define COFFER_API_RECORD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

struct record {
    const char *action;
    const char *resource;
    int allow;
    const char *reason;
    const char *const *statements;
    size_t n_statements;
    int status;
    int64_t bytes;
    const char *sha256;
    json_t *detail;                 /* borrowed */
    const char *principal_override; /* e.g. the user name of a failed login */
    const char *auth_method_override;
};

/* Appends the event. Returns ERR_OK, or ERR_UNAVAILABLE (with r->errmsg set)
 * when the audit log cannot be written. */
enum err api_record(struct request *r, const struct record *rec);

/* Records an allowed change: action on resource, status 200, with reason and
 * detail (borrowed, may be NULL). Returns as api_record. */
enum err api_record_change(struct request *r, const char *action, const char *resource,
                           const char *reason, json_t *detail);

/* Waits until the events this request has recorded are durable, for a
 * read-only handler whose answer must include them (a page of the audit log
 * shows the read that fetched it). ERR_UNAVAILABLE (answered) if the log
 * fails. */
enum err api_record_sync(struct request *r);

#endif
