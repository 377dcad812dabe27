#include "api/gate.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/record.h"
#include "authz/authz.h"
#include "util/log.h"
#include "util/str.h"

#define GATE_MAX_GROUPS 64
#define GATE_MAX_TAGS 64

/* Self-service actions every authenticated principal may take on itself;
 * they are not policy actions. */
static int gate_is_self_service(const char *action)
{
    return strcasecmp(action, "self:Whoami") == 0 || strcasecmp(action, "self:Logout") == 0 ||
           strcasecmp(action, "self:Password") == 0 || strcasecmp(action, "self:Mfa") == 0 ||
           strcasecmp(action, "self:Token") == 0 || strcasecmp(action, "self:Share") == 0;
}

static size_t gate_kv(json_t *obj, struct authz_kv *out, size_t cap)
{
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (n == cap)
            break;
        if (json_is_string(v)) {
            out[n].key = k;
            out[n].value = json_string_value(v);
            n++;
        }
    }
    return n;
}

static void gate_ip(const char *text, struct authz_ip *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (inet_pton(AF_INET, text, ip->addr) == 1)
        ip->family = 4;
    else if (inet_pton(AF_INET6, text, ip->addr) == 1)
        ip->family = 6;
}

enum authz_principal_type gate_principal_type(const char *type)
{
    if (strcmp(type, "service") == 0)
        return AUTHZ_PRINCIPAL_SERVICE;
    if (strcmp(type, "link") == 0)
        return AUTHZ_PRINCIPAL_LINK;
    return AUTHZ_PRINCIPAL_USER;
}

void gate_decide(struct request *r, const char *action, const char *resource,
                 const struct gate_resource *res, struct authz_decision *d)
{
    const char *groups[GATE_MAX_GROUPS];
    struct authz_kv ptags[GATE_MAX_TAGS], rtags[GATE_MAX_TAGS];
    size_t ng = 0;
    size_t i;
    json_t *g;
    json_array_foreach(r->who.groups, i, g)
    {
        if (ng < GATE_MAX_GROUPS && json_is_string(g))
            groups[ng++] = json_string_value(g);
    }
    time_t now = r->now_override != 0 ? (time_t)r->now_override : time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    struct authz_request q = {
        .principal_type = gate_principal_type(r->who.type),
        .principal_name = r->who.name,
        .groups = groups,
        .n_groups = ng,
        .principal_tags = ptags,
        .n_principal_tags = gate_kv(r->who.attrs, ptags, GATE_MAX_TAGS),
        .clearance = r->who.clearance,
        .auth_method = r->who.auth_method,
        .mfa_present = r->who.mfa != 0,
        .mfa_age = r->who.mfa ? (int64_t)now - r->who.mfa_at : -1,
        .secure_transport = r->secure_transport != 0,
        .now = (int64_t)now,
        .tz_offset = (int32_t)tm.tm_gmtoff,
        .action = action,
        .resource = resource,
        .resource_kind = res != NULL ? res->kind : NULL,
        .resource_sensitivity = res != NULL ? res->sensitivity : -1,
        .resource_tags = rtags,
        .n_resource_tags =
            res != NULL && res->tags != NULL ? gate_kv(res->tags, rtags, GATE_MAX_TAGS) : 0,
        .project = res != NULL ? res->project : NULL,
        .environment = res != NULL ? res->env : NULL,
        .version = res != NULL ? res->version : 0,
    };
    gate_ip(r->source_ip, &q.source_ip);
    /* No snapshot means no policy could be compiled: everything is denied. */
    struct authz_snapshot *snap = authz_slot_acquire(&authz_global_slot);
    authz_decide(snap, &q, d);
    /* A share link holds no roles: it may do what its creator may still do
     * (decided as user:CREATOR, without MFA), and a Deny that matches the
     * link itself (link:ID, coffer:PrincipalType link) still wins. */
    if (q.principal_type == AUTHZ_PRINCIPAL_LINK && d->reason != AUTHZ_REASON_EXPLICIT_DENY &&
        d->reason != AUTHZ_REASON_CLEARANCE && r->who.owner[0] != '\0') {
        const char *cgroups[GATE_MAX_GROUPS];
        size_t ncg = 0;
        json_array_foreach(r->who.owner_groups, i, g)
        {
            if (ncg < GATE_MAX_GROUPS && json_is_string(g))
                cgroups[ncg++] = json_string_value(g);
        }
        struct authz_request creator = q;
        creator.principal_type = AUTHZ_PRINCIPAL_USER;
        creator.principal_name = r->who.owner;
        creator.groups = cgroups;
        creator.n_groups = ncg;
        authz_decide(snap, &creator, d);
    }
    /* An API token may do only what both it (service:NAME with its roles)
     * and its owner may: decide again as the owner and keep a denial. */
    if (r->who.token_id != 0 && d->effect == AUTHZ_ALLOW) {
        const char *ogroups[GATE_MAX_GROUPS];
        size_t nog = 0;
        json_array_foreach(r->who.owner_groups, i, g)
        {
            if (nog < GATE_MAX_GROUPS && json_is_string(g))
                ogroups[nog++] = json_string_value(g);
        }
        struct authz_request owner = q;
        owner.principal_type = AUTHZ_PRINCIPAL_USER;
        owner.principal_name = r->who.owner;
        owner.groups = ogroups;
        owner.n_groups = nog;
        struct authz_decision od;
        authz_decide(snap, &owner, &od);
        if (od.effect != AUTHZ_ALLOW)
            *d = od;
    }
    authz_snapshot_release(snap);
}

int gate_allows(struct request *r, const char *action, const char *resource,
                const struct gate_resource *res)
{
    if (!r->authenticated)
        return 0;
    if (gate_is_self_service(action))
        return 1;
    struct authz_decision d;
    gate_decide(r, action, resource, res, &d);
    return d.effect == AUTHZ_ALLOW;
}

enum err gate_check(struct request *r, const char *action, const char *resource,
                    const struct gate_resource *res)
{
    if (!r->authenticated)
        return http_fail(r, ERR_UNAUTHENTICATED, NULL);
    struct authz_decision d;
    memset(&d, 0, sizeof(d));
    char stmt_text[AUTHZ_MAX_DECIDING][AUTHZ_NAME_MAX * 4 + 64];
    const char *stmts[AUTHZ_MAX_DECIDING];
    size_t n = 0;
    const char *reason;
    int allowed;
    if (gate_is_self_service(action)) {
        allowed = 1;
        reason = "self-service";
    } else {
        gate_decide(r, action, resource, res, &d);
        allowed = d.effect == AUTHZ_ALLOW;
        reason = authz_reason_name(d.reason);
        for (; n < d.n_deciding && n < AUTHZ_MAX_DECIDING; n++) {
            const struct authz_stmt_ref *s = &d.deciding[n];
            char index[12];
            str_u64(index, sizeof(index), s->index);
            str_concat(stmt_text[n], sizeof(stmt_text[n]), s->policy, s->via[0] ? " via " : "",
                       s->via, "#", index, s->sid[0] ? " " : "", s->sid, (const char *)NULL);
            stmts[n] = stmt_text[n];
        }
    }
    log_debug("authz %s %s %s on %s: %s (%s)", r->request_id, r->who.name, action, resource,
              allowed ? "allow" : "deny", reason);
    struct record rec = {.action = action,
                         .resource = resource,
                         .allow = allowed,
                         .reason = reason,
                         .statements = stmts,
                         .n_statements = n,
                         .status = allowed ? 0 : 403};
    /* The effective sensitivity, for auditors and the anomaly detector. */
    json_t *detail = NULL;
    if (res != NULL && res->sensitivity >= 0 && authz_sensitivity_name(res->sensitivity) != NULL)
        detail = json_pack("{s:s}", "sensitivity", authz_sensitivity_name(res->sensitivity));
    rec.detail = detail;
    enum err e = api_record(r, &rec);
    json_decref(detail);
    if (e != ERR_OK)
        return e;
    if (allowed)
        return ERR_OK;
    if (!d.unknown_action && d.reason == AUTHZ_REASON_CLEARANCE)
        return http_fail(
            r, ERR_FORBIDDEN,
            "%s on %s denied: the resource is %s and your "
            "clearance is %s",
            action, resource,
            authz_sensitivity_name(d.sensitivity) ? authz_sensitivity_name(d.sensitivity) : "?",
            authz_sensitivity_name(d.clearance) ? authz_sensitivity_name(d.clearance) : "?");
    if (d.reason == AUTHZ_REASON_EXPLICIT_DENY && n > 0)
        return http_fail(r, ERR_FORBIDDEN, "%s on %s denied by %s", action, resource, stmts[0]);
    return http_fail(r, ERR_FORBIDDEN, "%s on %s denied: no policy allows it", action, resource);
}
