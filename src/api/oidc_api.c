/*
 * Trusted OIDC issuers: list, add or replace, remove (admin:Users).
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/gate.h"
#include "api/record.h"
#include "authn/oidc.h"
#include "authz/authz.h"
#include "meta/authn_store.h"

static enum err oidc_api_record(struct request *r, const char *op, const char *name)
{
    char res[OIDC_NAME_MAX + 8];
    snprintf(res, sizeof(res), "oidc:%s", name);
    json_t *detail = json_pack("{s:s, s:s}", "op", op, "issuer", name);
    enum err e = api_record_change(r, "admin:Users", res, op, detail);
    json_decref(detail);
    return e;
}

enum err api_oidc_list(struct request *r)
{
    enum err e = gate_check(r, "admin:Users", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *all = NULL;
    if (meta_oidc_all(r->app->meta, &all) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    r->json = json_pack("{s:o}", "issuers", all);
    return ERR_OK;
}

enum err api_oidc_put(struct request *r)
{
    enum err e = gate_check(r, "admin:Users", "*", NULL);
    if (e != ERR_OK)
        return e;
    const char *name = r->param;
    if (!authz_name_valid(name) || strlen(name) > OIDC_NAME_MAX)
        return http_fail(r, ERR_INVALID, "issuer names use 1-64 of A-Z a-z 0-9 . _ -");
    char why[200];
    if (oidc_config_validate(r->body_json, why, sizeof(why)) != ERR_OK)
        return http_fail(r, ERR_INVALID, "%s", why);
    json_t *all = NULL;
    if (meta_oidc_all(r->app->meta, &all) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    const char *iss = json_string_value(json_object_get(r->body_json, "issuer"));
    const char *k;
    json_t *c;
    json_object_foreach(all, k, c)
    {
        if (strcmp(k, name) != 0 &&
            strcmp(json_string_value(json_object_get(c, "issuer")), iss) == 0) {
            json_decref(all);
            return http_fail(r, ERR_CONFLICT, "issuer %s is already configured as '%s'", iss, k);
        }
    }
    int created = json_object_get(all, name) == NULL;
    json_decref(all);
    char by[128];
    snprintf(by, sizeof(by), "%s:%s", r->who.type, r->who.name);
    if (meta_oidc_put(r->app->meta, name, r->body_json, by) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "cannot store the issuer right now");
    oidc_cache_clear();
    if ((e = oidc_api_record(r, created ? "oidc-add" : "oidc-replace", name)) != ERR_OK)
        return e;
    r->json = json_pack("{s:s, s:O}", "name", name, "config", r->body_json);
    r->status = created ? 201 : 200;
    return ERR_OK;
}

enum err api_oidc_delete(struct request *r)
{
    enum err e = gate_check(r, "admin:Users", "*", NULL);
    if (e != ERR_OK)
        return e;
    e = meta_oidc_delete(r->app->meta, r->param);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, e, "no issuer '%.64s'", r->param);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    oidc_cache_clear();
    return oidc_api_record(r, "oidc-remove", r->param);
}
