/*
 * Health, login, logout and whoami.
 */
#include <string.h>

#include "api/api.h"
#include "api/gate.h"
#include "api/record.h"
#include "authn/password.h"
#include "authn/session.h"
#include "meta/meta.h"
#include "util/log.h"
#include "util/secure.h"

enum err api_health(struct request *r)
{
    r->json = json_pack("{s:s}", "status", "ok");
    return ERR_OK;
}

enum err api_login(struct request *r)
{
    json_t *b = r->body_json;
    const char *user = json_string_value(json_object_get(b, "user"));
    const char *password = json_string_value(json_object_get(b, "password"));
    if (user == NULL || password == NULL || strlen(user) > META_NAME_MAX ||
        strlen(password) > 1024 || json_string_length(json_object_get(b, "password")) !=
                                       strlen(password))
        return http_fail(r, ERR_INVALID, "send {\"user\": NAME, \"password\": PASSWORD}");
    struct meta_user u;
    enum err e = meta_user_get(r->app->meta, user, &u);
    int ok = 0;
    if (e == ERR_OK && u.pw_hash != NULL) {
        ok = password_verify(u.pw_hash, password) && !u.disabled;
    } else {
        /* Same work for unknown users, so the answer time does not reveal them. */
        password_verify_dummy(password);
    }
    if (e != ERR_OK && e != ERR_NOT_FOUND)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    char who[META_NAME_MAX + 8];
    snprintf(who, sizeof(who), "user:%s", user);
    struct record rec = {.action = "auth:Login",
                         .resource = "*",
                         .allow = ok,
                         .reason = ok ? "password" : "wrong user name or password",
                         .status = ok ? 200 : 401,
                         .principal_override = who,
                         .auth_method_override = "password"};
    if (!ok) {
        if (e == ERR_OK)
            meta_user_clear(&u);
        log_info("login failed %s for '%s' from %s", r->request_id, user, r->source_ip);
        if (api_record(r, &rec) != ERR_OK)
            return ERR_UNAVAILABLE;
        return http_fail(r, ERR_UNAUTHENTICATED, "wrong user name or password");
    }
    if (api_record(r, &rec) != ERR_OK) {
        meta_user_clear(&u);
        return ERR_UNAVAILABLE;
    }
    char token[SESSION_TOKEN_LEN + 1];
    int64_t expires = 0;
    e = session_issue(r->app, u.id, r->app->cfg.session_lifetime, 0, token, &expires);
    if (e != ERR_OK) {
        meta_user_clear(&u);
        return http_fail(r, ERR_UNAVAILABLE, "cannot create a session right now");
    }
    r->json = json_pack("{s:s, s:I, s:s}", "token", token, "expires_at", (json_int_t)expires,
                        "user", u.name);
    secure_wipe(token, sizeof(token));
    log_info("login %s user '%s' from %s", r->request_id, u.name, r->source_ip);
    meta_user_clear(&u);
    return ERR_OK;
}

enum err api_logout(struct request *r)
{
    enum err e = gate_check(r, "self:Logout", "*", NULL);
    if (e != ERR_OK)
        return e;
    if (session_revoke_current(r) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "cannot revoke the session right now");
    return ERR_OK;
}

enum err api_whoami(struct request *r)
{
    enum err e = gate_check(r, "self:Whoami", "*", NULL);
    if (e != ERR_OK)
        return e;
    struct principal *p = &r->who;
    r->json = json_pack("{s:s, s:s, s:s, s:s, s:b, s:O, s:O, s:s}", "principal", p->name, "type",
                        p->type, "auth_method", p->auth_method, "clearance",
                        meta_sensitivity_name(p->clearance), "mfa", p->mfa, "attrs",
                        p->attrs != NULL ? p->attrs : json_object(), "groups",
                        p->groups != NULL ? p->groups : json_array(), "source_ip", r->source_ip);
    return ERR_OK;
}
