/*
 * Role bindings of machine principals (service:NAME), shared by API tokens
 * and client-certificate registrations: both bind the roles named at
 * creation to their service principal and remove them when revoked.
 */
#include <stdio.h>

#include "api/api.h"
#include "api/record.h"
#include "app/access.h"
#include "authn/apitoken.h"
#include "authz/authz.h"
#include "meta/access.h"
#include "util/log.h"

#define SERVICE_PRINCIPAL_MAX 160

void api_service_unbind(struct request *r, const char *name, json_t *roles, const char *scope)
{
    char principal[SERVICE_PRINCIPAL_MAX];
    snprintf(principal, sizeof(principal), "service:%s", name);
    size_t i;
    json_t *role;
    json_array_foreach(roles, i, role)
    {
        meta_binding_remove(r->app->meta, json_string_value(role), principal,
                            scope[0] != '\0' ? scope : NULL);
    }
    char err[AUTHZ_ERRBUF];
    if (access_reload(r->app->meta, err, sizeof(err)) != ERR_OK)
        log_error("%s: cannot recompile policies after removing bindings: %s", principal, err);
}

enum err api_service_bind(struct request *r, const char *name, json_t *roles, const char *scope)
{
    char principal[SERVICE_PRINCIPAL_MAX], by[META_NAME_MAX + 8];
    snprintf(principal, sizeof(principal), "service:%s", name);
    snprintf(by, sizeof(by), "user:%s", r->who.name);
    size_t i;
    json_t *role;
    json_array_foreach(roles, i, role)
    {
        enum err e = meta_binding_add(r->app->meta, json_string_value(role), principal,
                                      scope[0] != '\0' ? scope : NULL, by);
        if (e != ERR_OK && e != ERR_CONFLICT) {
            api_service_unbind(r, name, roles, scope);
            return http_fail(r, e == ERR_NOT_FOUND ? ERR_INVALID : ERR_UNAVAILABLE,
                             "cannot bind role '%s'", json_string_value(role));
        }
    }
    char err[AUTHZ_ERRBUF];
    if (access_reload(r->app->meta, err, sizeof(err)) != ERR_OK) {
        api_service_unbind(r, name, roles, scope);
        return http_fail(r, ERR_INVALID, "the roles or scope are not valid: %s", err);
    }
    return ERR_OK;
}

enum err api_service_check_roles(struct request *r, json_t *roles)
{
    if (!json_is_array(roles) || json_array_size(roles) == 0 ||
        json_array_size(roles) > APITOKEN_MAX_ROLES)
        return http_fail(r, ERR_INVALID, "give 1 to %d roles (--role NAME)", APITOKEN_MAX_ROLES);
    size_t i;
    json_t *role;
    json_array_foreach(roles, i, role)
    {
        const char *name = json_string_value(role);
        json_t *found = NULL;
        if (name == NULL || !authz_name_valid(name))
            return http_fail(r, ERR_INVALID, "invalid role name");
        enum err e = meta_role_get(r->app->meta, name, &found);
        json_decref(found);
        if (e == ERR_NOT_FOUND)
            return http_fail(r, ERR_INVALID, "no role '%s'; see 'coffer role ls'", name);
        if (e != ERR_OK)
            return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    }
    return ERR_OK;
}

enum err api_service_record(struct request *r, const char *action, const char *name, const char *op,
                            const char *id_key, int64_t id, const char *reason)
{
    char res[SERVICE_PRINCIPAL_MAX];
    snprintf(res, sizeof(res), "service:%s", name);
    json_t *detail = json_pack("{s:s, s:I}", "op", op, id_key, (json_int_t)id);
    enum err e = api_record_change(r, action, res, reason, detail);
    json_decref(detail);
    return e;
}
