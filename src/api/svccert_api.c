/*
 * Client-certificate bindings of service accounts: bind (admin), list,
 * revoke. A binding maps the SHA-256 fingerprint of a certificate issued by
 * a client CA (coffer server --client-ca) to service:NAME with roles, on
 * behalf of an owner; the gate decides every request both as the service
 * account and as the owner (authn/mtls.h). Fingerprints are not secret, so
 * only administrators bind them: anyone able to bind could otherwise lend
 * their rights to a certificate held by someone else.
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
#include "authn/mtls.h"
#include "authz/authz.h"
#include "meta/access.h"
#include "meta/authn_store.h"
#include "meta/svccert_store.h"
#include "util/log.h"
#include "util/secure.h"

static enum err svccert_record(struct request *r, const char *op, int64_t id, const char *name,
                               const char *reason)
{
    return api_service_record(r, "admin:Users", name, op, "cert_id", id, reason);
}

/* The service account name must not be in use by an active API token or
 * certificate binding: their role bindings would merge. */
static enum err svccert_name_free(struct request *r, const char *name)
{
    struct meta_svccert c;
    enum err e = meta_svccert_by_name(r->app->meta, name, &c);
    meta_svccert_clear(&c);
    if (e == ERR_OK)
        return http_fail(r, ERR_CONFLICT,
                         "a certificate is already bound as service:%s; remove it first or "
                         "choose another name",
                         name);
    if (e != ERR_NOT_FOUND)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    struct meta_apitoken t;
    e = meta_apitoken_by_name(r->app->meta, name, &t);
    int active = e == ERR_OK && t.expires_at > (int64_t)time(NULL);
    meta_apitoken_clear(&t);
    if (e != ERR_OK && e != ERR_NOT_FOUND)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    if (active)
        return http_fail(r, ERR_CONFLICT, "an active API token is called '%s'; choose another name",
                         name);
    return ERR_OK;
}

enum err api_svccert_create(struct request *r)
{
    enum err e = gate_check(r, "admin:Users", "*", NULL);
    if (e != ERR_OK)
        return e;
    if (!api_args_session_user(r))
        return http_fail(r, ERR_FORBIDDEN, "only a logged-in administrator can bind certificates");
    static const char *const fields[] = {"name", "fingerprint", "roles", "scope", "owner", NULL};
    if ((e = api_args_fields(r, fields)) != ERR_OK)
        return e;
    json_t *b = r->body_json;
    const char *name = json_string_value(json_object_get(b, "name"));
    if (!apitoken_name_valid(name))
        return http_fail(r, ERR_INVALID,
                         "invalid service account name: use 1-64 of a-z 0-9 . _ -, "
                         "starting with a-z or 0-9");
    uint8_t fp[32];
    if (mtls_fingerprint_parse(json_string_value(json_object_get(b, "fingerprint")), fp) != 0)
        return http_fail(r, ERR_INVALID,
                         "fingerprint must be the certificate's SHA-256 as 64 hex digits "
                         "('openssl x509 -noout -fingerprint -sha256 -in CERT')");
    json_t *roles = json_object_get(b, "roles");
    if ((e = api_service_check_roles(r, roles)) != ERR_OK)
        return e;
    json_t *scope_j = json_object_get(b, "scope");
    const char *scope = scope_j != NULL ? json_string_value(scope_j) : "";
    if (scope == NULL || strlen(scope) > META_SVCCERT_SCOPE_MAX)
        return http_fail(r, ERR_INVALID, "scope must be a resource pattern such as 'fraud/*'");
    json_t *owner_j = json_object_get(b, "owner");
    const char *owner = owner_j != NULL ? json_string_value(owner_j) : r->who.name;
    if (owner == NULL)
        return http_fail(r, ERR_INVALID, "owner must be a user name");
    struct meta_user u;
    e = meta_user_get(r->app->meta, owner, &u);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, ERR_INVALID, "no user '%.64s'; the owner must be a user", owner);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    int64_t owner_id = u.id;
    char owner_name[META_NAME_MAX + 1];
    snprintf(owner_name, sizeof(owner_name), "%s", u.name);
    int disabled = u.disabled;
    meta_user_clear(&u);
    if (disabled)
        return http_fail(r, ERR_INVALID, "user '%s' is disabled", owner_name);
    struct meta_svccert dup;
    e = meta_svccert_by_fingerprint(r->app->meta, fp, &dup);
    meta_svccert_clear(&dup);
    if (e == ERR_OK)
        return http_fail(r, ERR_CONFLICT, "this certificate is already bound; remove it first");
    if (e != ERR_NOT_FOUND)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    if ((e = svccert_name_free(r, name)) != ERR_OK)
        return e;
    if ((e = api_service_bind(r, name, roles, scope)) != ERR_OK)
        return e;
    int64_t id = 0;
    e = meta_svccert_create(r->app->meta, name, owner_id, fp, roles, scope, &id);
    if (e != ERR_OK) {
        api_service_unbind(r, name, roles, scope);
        if (e == ERR_CONFLICT)
            return http_fail(r, ERR_CONFLICT, "this certificate is already bound; remove it first");
        return http_fail(r, ERR_UNAVAILABLE, "cannot store the binding right now");
    }
    if (svccert_record(r, "cert-add", id, name, "client certificate bound") != ERR_OK) {
        meta_svccert_revoke(r->app->meta, id, "system:audit-failure");
        api_service_unbind(r, name, roles, scope);
        return ERR_UNAVAILABLE;
    }
    char hex[65], principal[META_SVCCERT_NAME_MAX + 16];
    hex_encode(fp, sizeof(fp), hex);
    snprintf(principal, sizeof(principal), "service:%s", name);
    r->json = json_pack("{s:I, s:s, s:s, s:s, s:s, s:O, s:s}", "id", (json_int_t)id, "name", name,
                        "principal", principal, "owner", owner_name, "fingerprint", hex, "roles",
                        roles, "scope", scope);
    r->status = 201;
    log_info("service certs %s: '%s' bound certificate %s as %s (id %lld)", r->request_id,
             r->who.name, hex, principal, (long long)id);
    return ERR_OK;
}

enum err api_svccert_list(struct request *r)
{
    enum err e = gate_check(r, "admin:Users", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *list = NULL;
    if (meta_svccert_list(r->app->meta, 0, &list) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        int revoked = json_integer_value(json_object_get(c, "revoked_at")) != 0;
        json_object_set_new(c, "state", json_string(revoked ? "revoked" : "active"));
    }
    r->json = json_pack("{s:o}", "certs", list);
    return ERR_OK;
}

enum err api_svccert_revoke(struct request *r)
{
    enum err e = gate_check(r, "admin:Users", "*", NULL);
    if (e != ERR_OK)
        return e;
    long long id = 0;
    if ((e = api_args_id(r, "give the binding id shown by 'coffer service cert ls'", &id)) !=
        ERR_OK)
        return e;
    struct meta_svccert c;
    e = meta_svccert_by_id(r->app->meta, (int64_t)id, &c);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, ERR_NOT_FOUND, "no certificate binding %lld", id);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    char by[META_NAME_MAX + 16];
    snprintf(by, sizeof(by), "%s:%s", r->who.type, r->who.name);
    e = meta_svccert_revoke(r->app->meta, c.id, by);
    if (e == ERR_NOT_FOUND) {
        meta_svccert_clear(&c);
        return http_fail(r, ERR_CONFLICT, "certificate binding %lld is already removed", id);
    }
    if (e != ERR_OK) {
        meta_svccert_clear(&c);
        return http_fail(r, ERR_UNAVAILABLE, "cannot remove the binding right now");
    }
    api_service_unbind(r, c.name, c.roles, c.scope);
    e = svccert_record(r, "cert-rm", c.id, c.name, "client certificate binding removed");
    log_info("service certs %s: binding %lld (%s) removed by %s", r->request_id, id, c.name, by);
    meta_svccert_clear(&c);
    return e;
}
