/*
 * API tokens: create (shown once), list, revoke. A token acts as
 * service:NAME, bound to the roles named at creation; the gate also decides
 * every request as the token's owner, so a token never exceeds its owner.
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
#include "authn/apitoken.h"
#include "authz/authz.h"
#include "meta/access.h"
#include "meta/authn_store.h"
#include "util/log.h"
#include "util/secure.h"

#define TOKEN_MIN_LIFETIME 1

static enum err token_record(struct request *r, const char *op, int64_t id, const char *name,
                             const char *reason)
{
    return api_service_record(r, "self:Token", name, op, "token_id", id, reason);
}

/* A token of the same name that is still active is a conflict; an expired
 * one is revoked (and its bindings removed) so the name can be reused. */
static enum err token_free_name(struct request *r, const char *name, int64_t now)
{
    struct meta_apitoken old;
    enum err e = meta_apitoken_by_name(r->app->meta, name, &old);
    if (e == ERR_NOT_FOUND)
        return ERR_OK;
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    if (old.expires_at > now) {
        meta_apitoken_clear(&old);
        return http_fail(r, ERR_CONFLICT,
                         "an active token is already called '%s'; revoke it or "
                         "choose another name",
                         name);
    }
    meta_apitoken_revoke(r->app->meta, old.id, "system:expired");
    api_service_unbind(r, old.name, old.roles, old.scope);
    meta_apitoken_clear(&old);
    return ERR_OK;
}

enum err api_token_create(struct request *r)
{
    enum err e = gate_check(r, "self:Token", "*", NULL);
    if (e != ERR_OK)
        return e;
    if (!api_args_session_user(r))
        return http_fail(r, ERR_FORBIDDEN, "only a logged-in user can create API tokens");
    static const char *const fields[] = {"name", "roles", "expires_in", "scope", NULL};
    if ((e = api_args_fields(r, fields)) != ERR_OK)
        return e;
    json_t *b = r->body_json;
    const char *name = json_string_value(json_object_get(b, "name"));
    if (!apitoken_name_valid(name))
        return http_fail(r, ERR_INVALID,
                         "invalid token name: use 1-64 of a-z 0-9 . _ -, "
                         "starting with a-z or 0-9");
    json_t *exp = json_object_get(b, "expires_in");
    int64_t max = apitoken_max_lifetime(r->app);
    if (!json_is_integer(exp) || json_integer_value(exp) < TOKEN_MIN_LIFETIME ||
        json_integer_value(exp) > max)
        return http_fail(r, ERR_INVALID,
                         "an expiry is required: between %d seconds and %lld days (--expires "
                         "30d)",
                         TOKEN_MIN_LIFETIME, (long long)(max / 86400));
    json_t *roles = json_object_get(b, "roles");
    if ((e = api_service_check_roles(r, roles)) != ERR_OK)
        return e;
    json_t *scope_j = json_object_get(b, "scope");
    const char *scope = scope_j != NULL ? json_string_value(scope_j) : "";
    if (scope == NULL || strlen(scope) > META_TOKEN_SCOPE_MAX)
        return http_fail(r, ERR_INVALID, "scope must be a resource pattern such as 'fraud/*'");
    int64_t now = (int64_t)time(NULL);
    if ((e = token_free_name(r, name, now)) != ERR_OK)
        return e;
    if ((e = api_service_bind(r, name, roles, scope)) != ERR_OK)
        return e;
    char token[APITOKEN_LEN + 1];
    int64_t id = 0, expires = now + (int64_t)json_integer_value(exp);
    e = apitoken_issue(r->app, name, r->who.user_id, roles, scope, expires, token, &id);
    if (e != ERR_OK) {
        api_service_unbind(r, name, roles, scope);
        return http_fail(r, ERR_UNAVAILABLE, "cannot store the token right now");
    }
    if (token_record(r, "create", id, name, "token issued") != ERR_OK) {
        secure_wipe(token, sizeof(token));
        meta_apitoken_revoke(r->app->meta, id, "system:audit-failure");
        api_service_unbind(r, name, roles, scope);
        return ERR_UNAVAILABLE;
    }
    char principal[META_TOKEN_NAME_MAX + 16];
    snprintf(principal, sizeof(principal), "service:%s", name);
    r->json = json_pack("{s:I, s:s, s:s, s:s, s:s, s:O, s:s, s:I}", "id", (json_int_t)id, "name",
                        name, "principal", principal, "owner", r->who.name, "token", token, "roles",
                        roles, "scope", scope, "expires_at", (json_int_t)expires);
    secure_wipe(token, sizeof(token));
    r->status = 201;
    log_info("tokens %s: '%s' created token %lld (%s)", r->request_id, r->who.name, (long long)id,
             name);
    return ERR_OK;
}

enum err api_token_list(struct request *r)
{
    enum err e = gate_check(r, "self:Token", "*", NULL);
    if (e != ERR_OK)
        return e;
    int64_t owner = r->who.user_id;
    if (api_args_flag(r, "all")) {
        if ((e = gate_check(r, "admin:Users", "*", NULL)) != ERR_OK)
            return e;
        owner = 0;
    } else if (owner <= 0) {
        r->json = json_pack("{s:[]}", "tokens");
        return ERR_OK;
    }
    json_t *list = NULL;
    if (meta_apitoken_list(r->app->meta, owner, &list) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    int64_t now = (int64_t)time(NULL);
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        const char *state = json_integer_value(json_object_get(t, "revoked_at")) != 0 ? "revoked"
                            : json_integer_value(json_object_get(t, "expires_at")) <= now
                                ? "expired"
                                : "active";
        json_object_set_new(t, "state", json_string(state));
    }
    r->json = json_pack("{s:o}", "tokens", list);
    return ERR_OK;
}

enum err api_token_revoke(struct request *r)
{
    enum err e = gate_check(r, "self:Token", "*", NULL);
    if (e != ERR_OK)
        return e;
    long long id = 0;
    if ((e = api_args_id(r, "give the token id shown by 'coffer token ls'", &id)) != ERR_OK)
        return e;
    struct meta_apitoken t;
    e = meta_apitoken_by_id(r->app->meta, (int64_t)id, &t);
    if (e != ERR_OK && e != ERR_NOT_FOUND)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    int own = e == ERR_OK && t.owner_id == r->who.user_id &&
              (r->who.token_id == 0 || r->who.token_id == t.id);
    if (e == ERR_OK && !own && !gate_allows(r, "admin:Users", "*", NULL)) {
        meta_apitoken_clear(&t);
        e = ERR_NOT_FOUND;
    }
    if (e == ERR_NOT_FOUND)
        return http_fail(r, ERR_NOT_FOUND, "no token %lld of yours", id);
    char by[META_NAME_MAX + 16];
    snprintf(by, sizeof(by), "%s:%s", r->who.type, r->who.name);
    e = meta_apitoken_revoke(r->app->meta, t.id, by);
    if (e == ERR_OK || e == ERR_NOT_FOUND)
        api_service_unbind(r, t.name, t.roles, t.scope);
    if (e == ERR_NOT_FOUND) {
        meta_apitoken_clear(&t);
        return http_fail(r, ERR_CONFLICT, "token %lld is already revoked", id);
    }
    if (e != ERR_OK) {
        meta_apitoken_clear(&t);
        return http_fail(r, ERR_UNAVAILABLE, "cannot revoke the token right now");
    }
    e = token_record(r, "revoke", t.id, t.name,
                     own ? "revoked by its owner"
                         : "revoked by an "
                           "administrator");
    log_info("tokens %s: token %lld (%s) revoked by %s", r->request_id, id, t.name, by);
    meta_apitoken_clear(&t);
    return e;
}
