/*
 * Monitoring endpoints: GET /metrics (Prometheus text), anomaly findings
 * (/v1/alerts), holds on principals (/v1/holds) and the checks of the
 * running configuration (GET /v1/doctor, admin:Keys or audit:Read).
 *
 * Reading needs audit:Read; acknowledging findings and clearing holds need
 * admin:Users. An allowed metrics scrape is not recorded in the audit log
 * (a scraper every 15 s would add thousands of events a day); a refused one is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/args.h"
#include "api/gate.h"
#include "api/record.h"
#include "app/access.h"
#include "meta/access.h"
#include "meta/monitor_store.h"
#include "monitor/doctor.h"
#include "monitor/monitor.h"
#include "monitor/review.h"

enum err api_metrics(struct request *r)
{
    if (!gate_allows(r, "audit:Read", "*", NULL)) {
        enum err e = gate_check(r, "audit:Read", "*", NULL);
        return e != ERR_OK ? e : http_fail(r, ERR_FORBIDDEN, "audit:Read is needed for metrics");
    }
    char *text = NULL;
    size_t len = 0;
    if (monitor_metrics_text(r->app, &text, &len) != ERR_OK)
        return http_fail(r, ERR_INTERNAL, "cannot render the metrics");
    r->response = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (r->response == NULL) {
        free(text);
        return http_fail(r, ERR_INTERNAL, "cannot create the response");
    }
    MHD_add_response_header(r->response, "Content-Type", "text/plain; version=0.0.4");
    r->status = 200;
    return ERR_OK;
}

enum err api_alerts_list(struct request *r)
{
    enum err e = gate_check(r, "audit:Read", "*", NULL);
    if (e != ERR_OK)
        return e;
    int dup = 0;
    const char *lim = http_query(r, "limit", &dup);
    long limit = lim != NULL ? strtol(lim, NULL, 10) : 100;
    if (limit < 1 || limit > 10000)
        return http_fail(r, ERR_INVALID, "limit must be 1..10000");
    json_t *findings = NULL, *holds = NULL;
    if (meta_finding_list(r->app->meta, api_args_flag(r, "all"), (int)limit, &findings) != ERR_OK ||
        meta_hold_list(r->app->meta, &holds) != ERR_OK) {
        json_decref(findings);
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    }
    r->json = json_pack("{s:o, s:o}", "findings", findings, "holds", holds);
    return ERR_OK;
}

enum err api_alert_ack(struct request *r)
{
    long long id = 0;
    enum err e = api_args_id(r, "give a finding id, e.g. POST /v1/alerts/12", &id);
    if (e != ERR_OK)
        return e;
    char res[48];
    snprintf(res, sizeof(res), "finding:%lld", id);
    e = gate_check(r, "admin:Users", res, NULL);
    if (e != ERR_OK)
        return e;
    char by[128];
    snprintf(by, sizeof(by), "%s:%s", r->who.type, r->who.name);
    e = meta_finding_ack(r->app->meta, (int64_t)id, by);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, e, "finding %lld does not exist or is already acknowledged", id);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    if ((e = api_record_change(r, "admin:Users", res, "finding acknowledged", NULL)) != ERR_OK)
        return e;
    r->json = json_pack("{s:I, s:b}", "id", (json_int_t)id, "acknowledged", 1);
    return ERR_OK;
}

enum err api_holds_list(struct request *r)
{
    enum err e = gate_check(r, "audit:Read", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *holds = NULL;
    if (meta_hold_list(r->app->meta, &holds) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    r->json = json_pack("{s:o}", "holds", holds);
    return ERR_OK;
}

enum err api_hold_clear(struct request *r)
{
    const char *principal = r->param;
    const char *colon = strchr(principal, ':');
    if (colon == NULL || colon == principal || colon[1] == '\0' || strlen(principal) > 120)
        return http_fail(r, ERR_INVALID, "give a principal such as user:alice");
    int dup = 0;
    const char *kind = http_query(r, "kind", &dup);
    if (kind != NULL && strcmp(kind, META_HOLD_SUSPEND) != 0 && strcmp(kind, META_HOLD_STEPUP) != 0)
        return http_fail(r, ERR_INVALID, "kind must be suspend or stepup");
    char res[160];
    snprintf(res, sizeof(res), "hold:%s", principal);
    enum err e = gate_check(r, "admin:Users", res, NULL);
    if (e != ERR_OK)
        return e;
    e = monitor_clear_hold(r->app, principal, kind);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, e, "%s has no %s hold", principal, kind != NULL ? kind : "");
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    const char *reason = kind != NULL && strcmp(kind, META_HOLD_STEPUP) == 0
                             ? "step-up hold cleared"
                             : "hold cleared";
    if ((e = api_record_change(r, "admin:Users", res, reason, NULL)) != ERR_OK)
        return e;
    r->json = json_pack("{s:s, s:b}", "principal", principal, "cleared", 1);
    return ERR_OK;
}

enum err api_review(struct request *r)
{
    enum err e = gate_check(r, "audit:Read", "*", NULL);
    if (e != ERR_OK)
        return e;
    int dup = 0;
    const char *d = http_query(r, "unused_days", &dup);
    long days = d != NULL ? strtol(d, NULL, 10) : 90;
    if (days < 1 || days > 3650)
        return http_fail(r, ERR_INVALID, "unused_days must be 1..3650");
    e = review_build(r->app, (int)days, (int64_t)time(NULL), &r->json);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "cannot build the review right now; retry later");
    return ERR_OK;
}

/* Applies one certify decision {role, principal, scope, decision, note}. */
static enum err review_certify_one(struct request *r, json_t *d, const char *reviewer, int *revoked)
{
    const char *role = json_string_value(json_object_get(d, "role"));
    const char *principal = json_string_value(json_object_get(d, "principal"));
    const char *scope = json_string_value(json_object_get(d, "scope"));
    const char *decision = json_string_value(json_object_get(d, "decision"));
    const char *note = json_string_value(json_object_get(d, "note"));
    if (role == NULL || principal == NULL || decision == NULL ||
        (strcmp(decision, "keep") != 0 && strcmp(decision, "revoke") != 0))
        return http_fail(r, ERR_INVALID,
                         "each decision needs role, principal, scope and "
                         "decision keep or revoke");
    if (scope == NULL)
        scope = "";
    if (strcmp(decision, "revoke") == 0) {
        enum err e = meta_binding_remove(r->app->meta, role, principal, scope);
        if (e == ERR_NOT_FOUND)
            return http_fail(r, e, "no binding of role %s to %s with scope '%s'", role, principal,
                             scope);
        if (e != ERR_OK)
            return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
        (*revoked)++;
    }
    if (meta_review_decision_add(r->app->meta, reviewer, role, principal, scope, decision, note) !=
        ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    json_t *detail = json_pack("{s:s, s:s, s:s, s:s}", "role", role, "principal", principal,
                               "scope", scope, "decision", decision);
    enum err e = api_record_change(
        r, "admin:Policies", principal,
        strcmp(decision, "revoke") == 0 ? "access review: revoked" : "access review: kept", detail);
    json_decref(detail);
    return e;
}

enum err api_review_certify(struct request *r)
{
    enum err e = gate_check(r, "admin:Policies", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *ds = json_object_get(r->body_json, "decisions");
    if (!json_is_array(ds) || json_array_size(ds) == 0 || json_array_size(ds) > 10000)
        return http_fail(r, ERR_INVALID,
                         "give {\"decisions\": [{\"role\", \"principal\", "
                         "\"scope\", \"decision\": \"keep\"|\"revoke\"}]}");
    char reviewer[128];
    snprintf(reviewer, sizeof(reviewer), "%s:%s", r->who.type, r->who.name);
    int revoked = 0;
    size_t i;
    json_t *d;
    json_array_foreach(ds, i, d)
    {
        if ((e = review_certify_one(r, d, reviewer, &revoked)) != ERR_OK)
            break;
    }
    char why[256];
    if (revoked > 0 && access_reload(r->app->meta, why, sizeof(why)) != ERR_OK && e == ERR_OK)
        e = http_fail(r, ERR_UNAVAILABLE, "revoked, but the policies could not be recompiled: %s",
                      why);
    if (e != ERR_OK)
        return e;
    r->json = json_pack("{s:i, s:i}", "decisions", (int)json_array_size(ds), "revoked", revoked);
    return ERR_OK;
}

enum err api_doctor(struct request *r)
{
    const char *action = gate_allows(r, "admin:Keys", "*", NULL) ? "admin:Keys" : "audit:Read";
    enum err e = gate_check(r, action, "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *rep = NULL;
    if (doctor_report(r->app, &rep) != ERR_OK)
        return http_fail(r, ERR_INTERNAL, "cannot build the report; retry later");
    r->json = rep;
    return ERR_OK;
}
