#include "api/record.h"

#include <stdio.h>
#include <stdlib.h>

#include "audit/audit.h"
#include "audit/event.h"
#include "monitor/monitor.h"
#include "util/log.h"
#include "util/str.h"

enum err api_record(struct request *r, const struct record *rec)
{
    if (r->app->audit == NULL)
        return http_fail(r, ERR_UNAVAILABLE, "the audit log is not open; the request was refused");
    char principal[128];
    if (rec->principal_override != NULL)
        str_copy(principal, sizeof(principal), rec->principal_override);
    else if (r->authenticated)
        str_concat(principal, sizeof(principal), r->who.type, ":", r->who.name, (const char *)NULL);
    else
        snprintf(principal, sizeof(principal), "anonymous");
    struct audit_event ev = {
        .time = NULL,
        .request_id = r->request_id,
        .principal = principal,
        .auth_method = rec->auth_method_override != NULL ? rec->auth_method_override
                       : r->authenticated                ? r->who.auth_method
                                                         : "none",
        .mfa = r->authenticated && r->who.mfa,
        .source_ip = r->source_ip,
        .user_agent = r->user_agent,
        .action = rec->action,
        .resource = rec->resource,
        .allow = rec->allow,
        .reason = rec->reason,
        .statements = rec->statements,
        .n_statements = rec->n_statements,
        .status = rec->status,
        .bytes = rec->bytes,
        .sha256 = rec->sha256,
        .detail = rec->detail,
    };
    char *json = NULL;
    size_t len = 0;
    uint64_t index = 0;
    enum err e = audit_event_encode(&ev, &json, &len);
    if (e == ERR_OK && r->audit_defer) {
        /* A read-only request: the answer is held until this is durable
         * (http_respond), so no thread needs to wait for it here. */
        e = audit_log_submit(r->app->audit, json, len, &index);
        if (e == ERR_OK) {
            r->audit_hold = 1;
            if (index > r->audit_index)
                r->audit_index = index;
        }
    } else if (e == ERR_OK) {
        e = audit_log_append(r->app->audit, json, len, &index);
    }
    if (e == ERR_OK)
        monitor_observe(r->app, &ev, index);
    free(json);
    if (e != ERR_OK) {
        log_error("audit: cannot record %s on %s for request %s; refusing the request", rec->action,
                  rec->resource != NULL ? rec->resource : "-", r->request_id);
        return http_fail(r, ERR_UNAVAILABLE,
                         "the audit log cannot be written, so the request was refused; an "
                         "administrator must check the server's audit directory");
    }
    return ERR_OK;
}

enum err api_record_change(struct request *r, const char *action, const char *resource,
                           const char *reason, json_t *detail)
{
    struct record rec = {.action = action,
                         .resource = resource,
                         .allow = 1,
                         .reason = reason,
                         .status = 200,
                         .detail = detail};
    return api_record(r, &rec);
}

enum err api_record_sync(struct request *r)
{
    if (!r->audit_hold)
        return ERR_OK;
    if (audit_log_wait(r->app->audit, r->audit_index) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE,
                         "the audit log cannot be written, so the request was refused; an "
                         "administrator must check the server's audit directory");
    r->audit_hold = 0;
    return ERR_OK;
}
