/*
 * Policies, roles, bindings, groups and policy explain.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/args.h"
#include "api/gate.h"
#include "api/record.h"
#include "app/access.h"
#include "authz/authz.h"
#include "meta/access.h"
#include "meta/meta.h"
#include "registry/path.h"

/* Records a completed change of access configuration and recompiles the
 * snapshot. A change that does not compile is impossible after validation,
 * but if the store cannot be read the old snapshot stays in force. */
static enum err access_changed(struct request *r, const char *what, const char *resource,
                               json_t *detail)
{
    char why[256];
    if (access_reload(r->app->meta, why, sizeof(why)) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "the change was stored but could not be compiled: %s",
                         why);
    return api_record_change(r, "admin:Policies", resource, what, detail);
}

static enum err access_store_error(struct request *r, enum err e, const char *what)
{
    if (e == ERR_NOT_FOUND)
        return http_fail(r, e, "%s not found", what);
    if (e == ERR_CONFLICT)
        return http_fail(r, e, "%s already exists or is in use", what);
    return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
}

/* "user:NAME", "group:NAME" or "service:NAME" with NAME [a-z0-9][a-z0-9._-]{0,63}. */
static int principal_valid(const char *p)
{
    const char *colon = p != NULL ? strchr(p, ':') : NULL;
    if (colon == NULL)
        return 0;
    size_t tl = (size_t)(colon - p);
    if (!((tl == 4 && strncmp(p, "user", 4) == 0) || (tl == 5 && strncmp(p, "group", 5) == 0) ||
          (tl == 7 && strncmp(p, "service", 7) == 0)))
        return 0;
    const char *n = colon + 1;
    size_t len = strlen(n);
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              (i > 0 && (c == '.' || c == '_' || c == '-'))))
            return 0;
    }
    return 1;
}

/* Checks that a user or group principal exists (service accounts are
 * named before they are created, so their bindings can be prepared). */
static enum err principal_exists(struct request *r, const char *p)
{
    if (strncmp(p, "user:", 5) == 0) {
        struct meta_user u;
        enum err e = meta_user_get(r->app->meta, p + 5, &u);
        if (e == ERR_OK)
            meta_user_clear(&u);
        return e == ERR_OK ? ERR_OK : access_store_error(r, e, p);
    }
    if (strncmp(p, "group:", 6) == 0) {
        json_t *groups = NULL;
        enum err e = meta_group_list(r->app->meta, &groups);
        if (e != ERR_OK)
            return access_store_error(r, e, p);
        size_t i;
        json_t *g;
        int found = 0;
        json_array_foreach(groups, i, g) found |=
            strcmp(json_string_value(json_object_get(g, "name")), p + 6) == 0;
        json_decref(groups);
        return found ? ERR_OK : http_fail(r, ERR_NOT_FOUND, "%s not found", p);
    }
    return ERR_OK;
}

/* Splits "NAME/SUFFIX" from the route parameter; suffix "" means just NAME. */
static enum err name_from_param(struct request *r, const char *suffix, char *name, size_t cap)
{
    enum err e = api_args_name(r, suffix, name, cap);
    if (e != ERR_OK)
        return e;
    if (!authz_name_valid(name))
        return http_fail(r, ERR_INVALID, "invalid name '%.64s': use 1-128 of A-Z a-z 0-9 . _ -",
                         name);
    return ERR_OK;
}

/* ------------------------------------------------------------- policies */

enum err api_policy_list(struct request *r)
{
    enum err e = gate_check(r, "admin:Policies", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *arr = NULL;
    if ((e = meta_policy_list(r->app->meta, &arr)) != ERR_OK)
        return access_store_error(r, e, "policies");
    r->json = json_pack("{s:o}", "policies", arr);
    return ERR_OK;
}

enum err api_policy_show(struct request *r)
{
    char name[AUTHZ_NAME_MAX + 1];
    enum err e = name_from_param(r, "", name, sizeof(name));
    if (e != ERR_OK || (e = gate_check(r, "admin:Policies", "*", NULL)) != ERR_OK)
        return e;
    if ((e = meta_policy_get(r->app->meta, name, &r->json)) != ERR_OK)
        return access_store_error(r, e, "policy");
    return ERR_OK;
}

enum err api_policy_put(struct request *r)
{
    char name[AUTHZ_NAME_MAX + 1];
    enum err e = name_from_param(r, "", name, sizeof(name));
    if (e != ERR_OK || (e = gate_check(r, "admin:Policies", "*", NULL)) != ERR_OK)
        return e;
    int dup = 0;
    const char *g = http_query(r, "global", &dup);
    if (dup || (g != NULL && strcmp(g, "true") != 0 && strcmp(g, "false") != 0))
        return http_fail(r, ERR_INVALID, "global must be given once, as true or false");
    int global = g != NULL && strcmp(g, "true") == 0;
    json_t *existing = NULL;
    if (meta_policy_get(r->app->meta, name, &existing) == ERR_OK) {
        int was_global = json_is_true(json_object_get(existing, "global"));
        json_decref(existing);
        if (was_global != global)
            return http_fail(r, ERR_CONFLICT, "policy %s is %s; delete it first to change its kind",
                             name, was_global ? "global (use --global)" : "a role policy");
    }
    char why[AUTHZ_ERRBUF];
    if (r->body_len == 0)
        return http_fail(r, ERR_INVALID, "send the policy document as the body");
    e = authz_policy_validate(r->body, r->body_len, global, why, sizeof(why));
    if (e != ERR_OK)
        return http_fail(r, e == ERR_TOO_LARGE ? e : ERR_INVALID, "policy %s: %s", name, why);
    char *doc = json_dumps(r->body_json, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int created = 0;
    e = doc != NULL ? meta_policy_put(r->app->meta, name, doc, global, r->who.name, &created)
                    : ERR_INTERNAL;
    free(doc);
    if (e != ERR_OK)
        return access_store_error(r, e, "policy");
    char res[AUTHZ_NAME_MAX + 8];
    snprintf(res, sizeof(res), "policy:%s", name);
    if ((e = access_changed(r, created ? "policy created" : "policy replaced", res, NULL)) !=
        ERR_OK)
        return e;
    r->status = created ? 201 : 200;
    return meta_policy_get(r->app->meta, name, &r->json) == ERR_OK ? ERR_OK : ERR_OK;
}

enum err api_policy_delete(struct request *r)
{
    char name[AUTHZ_NAME_MAX + 1];
    enum err e = name_from_param(r, "", name, sizeof(name));
    if (e != ERR_OK || (e = gate_check(r, "admin:Policies", "*", NULL)) != ERR_OK)
        return e;
    e = meta_policy_delete(r->app->meta, name);
    if (e == ERR_CONFLICT)
        return http_fail(r, e, "policy %s is attached to a role; detach or delete the role first",
                         name);
    if (e != ERR_OK)
        return access_store_error(r, e, "policy");
    char res[AUTHZ_NAME_MAX + 8];
    snprintf(res, sizeof(res), "policy:%s", name);
    if ((e = access_changed(r, "policy deleted", res, NULL)) != ERR_OK)
        return e;
    r->json = json_pack("{s:s, s:b}", "name", name, "deleted", 1);
    return ERR_OK;
}

/* ---------------------------------------------------------------- roles */

enum err api_role_list(struct request *r)
{
    enum err e = gate_check(r, "admin:Policies", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *arr = NULL;
    if ((e = meta_role_list(r->app->meta, &arr)) != ERR_OK)
        return access_store_error(r, e, "roles");
    r->json = json_pack("{s:o}", "roles", arr);
    return ERR_OK;
}

enum err api_role_show(struct request *r)
{
    char name[AUTHZ_NAME_MAX + 1];
    enum err e = name_from_param(r, "", name, sizeof(name));
    if (e != ERR_OK || (e = gate_check(r, "admin:Policies", "*", NULL)) != ERR_OK)
        return e;
    if ((e = meta_role_get(r->app->meta, name, &r->json)) != ERR_OK)
        return access_store_error(r, e, "role");
    return ERR_OK;
}

enum err api_role_create(struct request *r)
{
    enum err e = gate_check(r, "admin:Policies", "*", NULL);
    if (e != ERR_OK)
        return e;
    static const char *const fields[] = {"name", "policy", "attach", NULL};
    if ((e = api_args_fields(r, fields)) != ERR_OK)
        return e;
    json_t *b = r->body_json;
    const char *name = json_string_value(json_object_get(b, "name"));
    if (name == NULL || !authz_name_valid(name))
        return http_fail(r, ERR_INVALID, "invalid role name: use 1-128 of A-Z a-z 0-9 . _ -");
    json_t *policy = json_object_get(b, "policy");
    json_t *attach = json_object_get(b, "attach");
    if (policy == NULL && attach == NULL)
        return http_fail(r, ERR_INVALID, "a role needs a policy document or policies to attach");
    if (attach != NULL && (!json_is_array(attach) || json_array_size(attach) > 32))
        return http_fail(r, ERR_INVALID, "attach must be an array of at most 32 policy names");
    char *doc = NULL;
    if (policy != NULL) {
        char why[AUTHZ_ERRBUF];
        doc = json_dumps(policy, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (doc == NULL)
            return http_fail(r, ERR_INVALID, "policy must be a JSON object");
        e = authz_policy_validate(doc, strlen(doc), false, why, sizeof(why));
        if (e != ERR_OK) {
            free(doc);
            return http_fail(r, ERR_INVALID, "role %s: %s", name, why);
        }
    }
    size_t i;
    json_t *val;
    json_array_foreach(attach, i, val)
    {
        json_t *p = NULL;
        const char *pn = json_string_value(val);
        e = pn != NULL ? meta_policy_get(r->app->meta, pn, &p) : ERR_INVALID;
        int global = e == ERR_OK && json_is_true(json_object_get(p, "global"));
        json_decref(p);
        if (e != ERR_OK || global) {
            free(doc);
            return http_fail(r, e == ERR_OK ? ERR_INVALID : ERR_NOT_FOUND, "policy '%.64s' %s",
                             pn != NULL ? pn : "?",
                             e == ERR_OK ? "is global and cannot be attached to a role"
                                         : "not found");
        }
    }
    e = meta_role_create(r->app->meta, name, 0);
    if (e == ERR_OK && doc != NULL) {
        int created = 0;
        json_t *clash = NULL;
        if (meta_policy_get(r->app->meta, name, &clash) == ERR_OK) {
            json_decref(clash);
            e = ERR_CONFLICT;
        } else {
            e = meta_policy_put(r->app->meta, name, doc, 0, r->who.name, &created);
        }
        if (e == ERR_OK)
            e = meta_role_attach(r->app->meta, name, name);
    }
    json_array_foreach(attach, i, val)
    {
        if (e == ERR_OK)
            e = meta_role_attach(r->app->meta, name, json_string_value(val));
    }
    free(doc);
    if (e != ERR_OK)
        return e == ERR_CONFLICT ? http_fail(r, e, "role or policy '%s' already exists", name)
                                 : access_store_error(r, e, "role");
    char res[AUTHZ_NAME_MAX + 8];
    snprintf(res, sizeof(res), "role:%s", name);
    if ((e = access_changed(r, "role created", res, NULL)) != ERR_OK)
        return e;
    r->status = 201;
    meta_role_get(r->app->meta, name, &r->json);
    return ERR_OK;
}

static enum err binding_args(struct request *r, char *role, size_t cap, const char **principal,
                             const char **scope)
{
    enum err e = name_from_param(r, "/bindings", role, cap);
    if (e != ERR_OK)
        return e;
    if (r->body_json != NULL) {
        *principal = json_string_value(json_object_get(r->body_json, "principal"));
        *scope = json_string_value(json_object_get(r->body_json, "scope"));
    } else {
        int d1 = 0, d2 = 0;
        *principal = http_query(r, "principal", &d1);
        *scope = http_query(r, "scope", &d2);
        if (d1 || d2)
            return http_fail(r, ERR_INVALID, "principal and scope may be given once");
    }
    if (!principal_valid(*principal))
        return http_fail(r, ERR_INVALID,
                         "invalid principal: use user:NAME, group:NAME or service:NAME");
    if (*scope != NULL && (strlen(*scope) == 0 || strlen(*scope) > PATH_FULL_MAX))
        return http_fail(r, ERR_INVALID, "invalid scope pattern");
    return gate_check(r, "admin:Policies", "*", NULL);
}

enum err api_role_bind(struct request *r)
{
    char role[AUTHZ_NAME_MAX + 1];
    const char *principal = NULL, *scope = NULL;
    enum err e = binding_args(r, role, sizeof(role), &principal, &scope);
    if (e != ERR_OK || (e = principal_exists(r, principal)) != ERR_OK)
        return e;
    json_t *existing = NULL;
    if ((e = meta_role_get(r->app->meta, role, &existing)) != ERR_OK)
        return access_store_error(r, e, "role");
    json_decref(existing);
    /* A scope is validated by compiling it, before it is stored. */
    struct authz_builder *b = authz_builder_new();
    char why[AUTHZ_ERRBUF] = "";
    if (b != NULL) {
        authz_builder_add_role(b, role, why, sizeof(why));
        e = authz_builder_bind(b, principal, role, scope, why, sizeof(why));
        authz_builder_free(b);
        if (e != ERR_OK)
            return http_fail(r, ERR_INVALID, "invalid binding: %s", why);
    }
    e = meta_binding_add(r->app->meta, role, principal, scope, r->who.name);
    if (e == ERR_CONFLICT)
        return http_fail(r, e, "%s is already bound to %s with that scope", principal, role);
    if (e != ERR_OK)
        return access_store_error(r, e, "binding");
    json_t *detail =
        json_pack("{s:s, s:s, s:s?}", "role", role, "principal", principal, "scope", scope);
    char res[AUTHZ_NAME_MAX + 8];
    snprintf(res, sizeof(res), "role:%s", role);
    e = access_changed(r, "role bound", res, detail);
    if (e == ERR_OK)
        r->json = json_incref(detail);
    json_decref(detail);
    r->status = 201;
    return e;
}

enum err api_role_unbind(struct request *r)
{
    char role[AUTHZ_NAME_MAX + 1];
    const char *principal = NULL, *scope = NULL;
    enum err e = binding_args(r, role, sizeof(role), &principal, &scope);
    if (e != ERR_OK)
        return e;
    e = meta_binding_remove(r->app->meta, role, principal, scope);
    if (e != ERR_OK)
        return access_store_error(r, e, "binding");
    json_t *detail =
        json_pack("{s:s, s:s, s:s?}", "role", role, "principal", principal, "scope", scope);
    char res[AUTHZ_NAME_MAX + 8];
    snprintf(res, sizeof(res), "role:%s", role);
    e = access_changed(r, "role unbound", res, detail);
    if (e == ERR_OK)
        r->json = json_incref(detail);
    json_decref(detail);
    return e;
}

/* --------------------------------------------------------------- groups */

enum err api_group_list(struct request *r)
{
    enum err e = gate_check(r, "admin:Users", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *arr = NULL;
    if ((e = meta_group_list(r->app->meta, &arr)) != ERR_OK)
        return access_store_error(r, e, "groups");
    r->json = json_pack("{s:o}", "groups", arr);
    return ERR_OK;
}

enum err api_group_add(struct request *r)
{
    enum err e = gate_check(r, "admin:Users", "*", NULL);
    if (e != ERR_OK)
        return e;
    const char *name = json_string_value(json_object_get(r->body_json, "name"));
    char principal[80];
    snprintf(principal, sizeof(principal), "group:%s", name != NULL ? name : "");
    if (name == NULL || strlen(name) > 64 || !principal_valid(principal))
        return http_fail(r, ERR_INVALID,
                         "invalid group name: use 1-64 of a-z 0-9 . _ -, starting with a-z or 0-9");
    e = meta_group_create(r->app->meta, name);
    if (e != ERR_OK)
        return access_store_error(r, e, "group");
    if ((e = access_changed(r, "group created", principal, NULL)) != ERR_OK)
        return e;
    r->status = 201;
    r->json = json_pack("{s:s, s:[]}", "name", name, "members");
    return ERR_OK;
}

static enum err member_args(struct request *r, char *group, size_t cap, const char **principal)
{
    size_t plen = strlen(r->param);
    static const char suffix[] = "/members";
    size_t slen = sizeof(suffix) - 1;
    if (plen <= slen || strcmp(r->param + plen - slen, suffix) != 0)
        return http_fail(r, ERR_NOT_FOUND, "no such endpoint");
    if (plen - slen >= cap)
        return http_fail(r, ERR_INVALID, "name longer than %zu bytes", cap - 1);
    memcpy(group, r->param, plen - slen);
    group[plen - slen] = '\0';
    int dup = 0;
    *principal = r->body_json != NULL
                     ? json_string_value(json_object_get(r->body_json, "principal"))
                     : http_query(r, "principal", &dup);
    if (dup || !principal_valid(*principal) || strncmp(*principal, "group:", 6) == 0)
        return http_fail(r, ERR_INVALID, "members are user:NAME or service:NAME");
    return gate_check(r, "admin:Users", "*", NULL);
}

enum err api_group_member_add(struct request *r)
{
    char group[72];
    const char *principal = NULL;
    enum err e = member_args(r, group, sizeof(group), &principal);
    if (e != ERR_OK || (e = principal_exists(r, principal)) != ERR_OK)
        return e;
    e = meta_group_add_member(r->app->meta, group, principal);
    if (e != ERR_OK)
        return access_store_error(r, e, "group");
    json_t *detail = json_pack("{s:s, s:s}", "group", group, "principal", principal);
    char res[96];
    snprintf(res, sizeof(res), "group:%s", group);
    e = access_changed(r, "group member added", res, detail);
    if (e == ERR_OK)
        r->json = json_incref(detail);
    json_decref(detail);
    return e;
}

enum err api_group_member_remove(struct request *r)
{
    char group[72];
    const char *principal = NULL;
    enum err e = member_args(r, group, sizeof(group), &principal);
    if (e != ERR_OK)
        return e;
    e = meta_group_remove_member(r->app->meta, group, principal);
    if (e != ERR_OK)
        return access_store_error(r, e, "group member");
    json_t *detail = json_pack("{s:s, s:s}", "group", group, "principal", principal);
    char res[96];
    snprintf(res, sizeof(res), "group:%s", group);
    e = access_changed(r, "group member removed", res, detail);
    if (e == ERR_OK)
        r->json = json_incref(detail);
    json_decref(detail);
    return e;
}

/* -------------------------------------------------------------- explain */

static int parse_time(const char *s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return -1;
    if (*end == '.') {
        end++;
        while (*end >= '0' && *end <= '9')
            end++;
    }
    long offset = 0;
    if (*end == 'Z') {
        end++;
    } else if (*end == '+' || *end == '-') {
        int hh = 0, mm = 0;
        if (sscanf(end + 1, "%2d:%2d", &hh, &mm) != 2)
            return -1;
        offset = (hh * 3600L + mm * 60L) * (*end == '-' ? -1 : 1);
        end += 6;
    } else {
        return -1;
    }
    if (*end != '\0')
        return -1;
    *out = (int64_t)timegm(&tm) - offset;
    return 0;
}

enum err api_explain(struct request *r)
{
    enum err e = gate_check(r, "admin:Policies", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *b = r->body_json;
    const char *as = json_string_value(json_object_get(b, "as"));
    const char *action = json_string_value(json_object_get(b, "action"));
    const char *resource = json_string_value(json_object_get(b, "resource"));
    const char *ip = json_string_value(json_object_get(b, "ip"));
    const char *when = json_string_value(json_object_get(b, "time"));
    int mfa = json_is_true(json_object_get(b, "mfa"));
    if (as == NULL || !principal_valid(as) || strncmp(as, "group:", 6) == 0)
        return http_fail(r, ERR_INVALID, "as must be user:NAME or service:NAME");
    if (action == NULL || resource == NULL || strlen(action) > 64 || strlen(resource) > REF_MAX)
        return http_fail(r, ERR_INVALID, "give an action and a resource");
    if (!authz_action_known(action))
        return http_fail(r, ERR_INVALID, "unknown action '%.64s'", action);
    struct request q;
    memset(&q, 0, sizeof(q));
    q.app = r->app;
    q.authenticated = 1;
    q.secure_transport = 1;
    snprintf(q.source_ip, sizeof(q.source_ip), "%s", ip != NULL ? ip : r->source_ip);
    unsigned char buf[16];
    if (ip != NULL && inet_pton(AF_INET, ip, buf) != 1 && inet_pton(AF_INET6, ip, buf) != 1)
        return http_fail(r, ERR_INVALID, "ip must be an IPv4 or IPv6 address");
    if (when != NULL && parse_time(when, &q.now_override) != 0)
        return http_fail(r, ERR_INVALID, "time must be ISO 8601, e.g. 2026-05-01T09:30:00Z");
    struct principal *p = &q.who;
    snprintf(p->type, sizeof(p->type), "%.*s", (int)(strchr(as, ':') - as), as);
    snprintf(p->name, sizeof(p->name), "%s", strchr(as, ':') + 1);
    snprintf(p->auth_method, sizeof(p->auth_method), "%s",
             strcmp(p->type, "user") == 0 ? "password" : "token");
    p->mfa = mfa;
    p->mfa_at = mfa ? (q.now_override != 0 ? q.now_override : (int64_t)time(NULL)) : 0;
    p->clearance = 1;
    if (strcmp(p->type, "user") == 0) {
        struct meta_user u;
        e = meta_user_get(r->app->meta, p->name, &u);
        if (e != ERR_OK)
            return access_store_error(r, e, as);
        p->clearance = u.clearance;
        p->attrs = json_incref(u.attrs);
        meta_user_clear(&u);
    }
    if (meta_principal_groups(r->app->meta, as, &p->groups) != ERR_OK) {
        json_decref(p->attrs);
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    }
    /* Facts of an existing artifact make conditions on kind, tags and
     * sensitivity meaningful; a path that does not exist is decided without. */
    struct artifact_ref ref;
    struct meta_version v;
    struct gate_resource res = {NULL, -1, NULL, NULL, NULL, 0};
    int have_v = 0;
    if (strchr(action, ':') != NULL && strncasecmp(action, "artifact:", 9) == 0 &&
        ref_parse(resource, NULL, &ref, NULL, 0) == ERR_OK &&
        meta_version_get(r->app->meta, &ref, &v) == ERR_OK) {
        have_v = 1;
        res.kind = v.kind;
        res.sensitivity = v.version_sensitivity > v.artifact_sensitivity ? v.version_sensitivity
                                                                         : v.artifact_sensitivity;
        res.tags = v.tags;
        res.project = ref.path.project;
        res.env = ref.path.env;
        res.version = ref.explicit_version ? v.version : 0;
    }
    struct authz_decision d;
    gate_decide(&q, action, resource, &res, &d);
    char line[1024];
    authz_decision_format(&d, line, sizeof(line));
    r->json = authz_decision_to_json(&d);
    if (r->json != NULL) {
        json_object_set_new(r->json, "summary", json_string(line));
        json_object_set_new(r->json, "resource_found", json_boolean(have_v));
    }
    if (have_v)
        meta_version_clear(&v);
    json_decref(p->attrs);
    json_decref(p->groups);
    return r->json != NULL ? ERR_OK : http_fail(r, ERR_INTERNAL, "out of memory");
}
