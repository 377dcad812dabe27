/*
 * Health, login, logout and whoami.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/gate.h"
#include "api/record.h"
#include "authn/lockout.h"
#include "authn/mfa.h"
#include "authn/password.h"
#include "authn/session.h"
#include "meta/authn_store.h"
#include "meta/meta.h"
#include "monitor/monitor.h"
#include "util/log.h"
#include "util/secure.h"

enum err api_health(struct request *r)
{
    r->json = json_pack("{s:s}", "status", "ok");
    return ERR_OK;
}

/* Records a login attempt (success or failure) for the submitted name. */
static enum err auth_record_login(struct request *r, const char *action, const char *user, int ok,
                                  const char *reason, int status, int mfa)
{
    char who[META_NAME_MAX + 8];
    snprintf(who, sizeof(who), "user:%s", user);
    json_t *detail = json_pack("{s:b}", "mfa", mfa);
    struct record rec = {.action = action,
                         .resource = "*",
                         .allow = ok,
                         .reason = reason,
                         .status = status,
                         .detail = detail,
                         .principal_override = who,
                         .auth_method_override = "password"};
    enum err e = api_record(r, &rec);
    json_decref(detail);
    return e;
}

/* Refuses an attempt while the user name or the source address is locked
 * out or backing off: 429 with Retry-After, recorded. */
static enum err auth_check_lockout(struct request *r, const char *action, const char *user)
{
    lockout_setup(&r->app->cfg);
    int64_t wait = lockout_check(user, r->source_ip, lockout_now_ms());
    if (wait <= 0)
        return ERR_OK;
    log_info("login refused %s for '%s' from %s: back-off %lld s", r->request_id, user,
             r->source_ip, (long long)wait);
    if (auth_record_login(r, action, user, 0, "too many failed attempts", 429, 0) != ERR_OK)
        return ERR_UNAVAILABLE;
    r->retry_after = wait;
    return http_fail(r, ERR_RATE_LIMITED,
                     "too many failed attempts; wait %lld seconds and try again", (long long)wait);
}

/* Checks the second factor of a user whose password was right. Returns
 * ERR_OK with *mfa set (1 when a code was checked), or a recorded failure. */
static enum err auth_second_factor(struct request *r, const struct meta_user *u, const char *otp,
                                   int64_t now, int *mfa)
{
    *mfa = 0;
    struct mfa_status st;
    if (mfa_get_status(r->app, u->id, &st) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    if (!st.enrolled) {
        if (otp == NULL)
            return ERR_OK;
        if (auth_record_login(r, "auth:Login", u->name, 0, "no MFA enrolled", 400, 0) != ERR_OK)
            return ERR_UNAVAILABLE;
        return http_fail(r, ERR_INVALID,
                         "this account has no multi-factor authentication; log "
                         "in without --otp, then run 'coffer mfa enroll'");
    }
    if (otp == NULL) {
        if (auth_record_login(r, "auth:Login", u->name, 0, "one-time code required", 401, 0) !=
            ERR_OK)
            return ERR_UNAVAILABLE;
        return http_fail(r, ERR_UNAUTHENTICATED,
                         "this account uses multi-factor authentication; log in with --otp CODE "
                         "(a code from your authenticator app or a recovery code)");
    }
    int recovery = 0;
    enum err e = mfa_verify(r->app, u->id, otp, now, &recovery);
    if (e == ERR_UNAUTHENTICATED) {
        lockout_failure(u->name, r->source_ip, lockout_now_ms());
        log_info("login failed %s for '%s' from %s: wrong one-time code", r->request_id, u->name,
                 r->source_ip);
        if (auth_record_login(r, "auth:Login", u->name, 0, "wrong one-time code", 401, 0) != ERR_OK)
            return ERR_UNAVAILABLE;
        return http_fail(r, ERR_UNAUTHENTICATED, "wrong, expired or already used one-time code");
    }
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "cannot check the one-time code right now");
    if (recovery)
        log_info("login %s: '%s' used a recovery code", r->request_id, u->name);
    *mfa = 1;
    return ERR_OK;
}

enum err api_login(struct request *r)
{
    json_t *b = r->body_json;
    const char *user = json_string_value(json_object_get(b, "user"));
    const char *password = json_string_value(json_object_get(b, "password"));
    json_t *otp_j = json_object_get(b, "otp");
    const char *otp = json_string_value(otp_j);
    if (user == NULL || password == NULL || strlen(user) > META_NAME_MAX ||
        strlen(password) > 1024 ||
        json_string_length(json_object_get(b, "password")) != strlen(password) ||
        (otp_j != NULL && (otp == NULL || strlen(otp) > 64 || otp[0] == '\0')))
        return http_fail(r, ERR_INVALID,
                         "send {\"user\": NAME, \"password\": PASSWORD[, \"otp\": CODE]}");
    int64_t now = (int64_t)time(NULL);
    enum err e = auth_check_lockout(r, "auth:Login", user);
    if (e != ERR_OK)
        return e;
    struct meta_user u;
    e = meta_user_get(r->app->meta, user, &u);
    int ok = 0;
    if (e == ERR_OK && u.pw_hash != NULL) {
        ok = password_verify(u.pw_hash, password) && !u.disabled;
    } else {
        /* Same work for unknown users, so the answer time does not reveal them. */
        password_verify_dummy(password);
    }
    if (e != ERR_OK && e != ERR_NOT_FOUND)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    if (!ok) {
        if (e == ERR_OK)
            meta_user_clear(&u);
        lockout_failure(user, r->source_ip, lockout_now_ms());
        log_info("login failed %s for '%s' from %s", r->request_id, user, r->source_ip);
        if (auth_record_login(r, "auth:Login", user, 0, "wrong user name or password", 401, 0) !=
            ERR_OK)
            return ERR_UNAVAILABLE;
        return http_fail(r, ERR_UNAUTHENTICATED, "wrong user name or password");
    }
    /* A suspension hold (monitor/monitor.h) outlives sessions: no new ones. */
    char held[META_NAME_MAX + 8];
    snprintf(held, sizeof(held), "user:%s", u.name);
    if (monitor_is_suspended(r->app, held)) {
        log_info("login refused %s for '%s' from %s: suspended", r->request_id, u.name,
                 r->source_ip);
        e = auth_record_login(r, "auth:Login", u.name, 0,
                              "principal suspended by an anomaly response", 403, 0);
        meta_user_clear(&u);
        if (e != ERR_OK)
            return ERR_UNAVAILABLE;
        return http_fail(r, ERR_FORBIDDEN,
                         "%s is suspended after a security alert; an administrator must review "
                         "it and run 'coffer alerts clear-suspension %s'",
                         held, held);
    }
    int mfa = 0;
    e = auth_second_factor(r, &u, otp, now, &mfa);
    if (e != ERR_OK) {
        meta_user_clear(&u);
        return e;
    }
    lockout_success(u.name);
    if (auth_record_login(r, "auth:Login", u.name, 1, mfa ? "password+totp" : "password", 200,
                          mfa) != ERR_OK) {
        meta_user_clear(&u);
        return ERR_UNAVAILABLE;
    }
    char token[SESSION_TOKEN_LEN + 1];
    int64_t expires = 0;
    e = session_issue(r->app, u.id, r->app->cfg.session_lifetime, mfa, token, &expires);
    if (e != ERR_OK) {
        meta_user_clear(&u);
        return http_fail(r, ERR_UNAVAILABLE, "cannot create a session right now");
    }
    r->json = json_pack("{s:s, s:I, s:s, s:b}", "token", token, "expires_at", (json_int_t)expires,
                        "user", u.name, "mfa", mfa);
    secure_wipe(token, sizeof(token));
    log_info("login %s user '%s' from %s%s", r->request_id, u.name, r->source_ip,
             mfa ? " with MFA" : "");
    meta_user_clear(&u);
    return ERR_OK;
}

enum err api_login_mfa(struct request *r)
{
    enum err e = gate_check(r, "self:Mfa", "*", NULL);
    if (e != ERR_OK)
        return e;
    struct principal *p = &r->who;
    if (strcmp(p->type, "user") != 0 || strcmp(p->auth_method, "password") != 0 || p->token_id != 0)
        return http_fail(r, ERR_INVALID,
                         "only a password session can be stepped up with a "
                         "one-time code; API tokens never carry MFA and OIDC "
                         "tokens carry it from their issuer");
    json_t *otp_j = json_object_get(r->body_json, "otp");
    const char *otp = json_string_value(otp_j);
    if (otp == NULL || strlen(otp) > 64 || otp[0] == '\0')
        return http_fail(r, ERR_INVALID, "send {\"otp\": CODE}");
    int64_t now = (int64_t)time(NULL);
    if ((e = auth_check_lockout(r, "auth:StepUp", p->name)) != ERR_OK)
        return e;
    int recovery = 0;
    e = mfa_verify(r->app, p->user_id, otp, now, &recovery);
    if (e == ERR_NOT_FOUND) {
        if (auth_record_login(r, "auth:StepUp", p->name, 0, "no MFA enrolled", 400, 0) != ERR_OK)
            return ERR_UNAVAILABLE;
        return http_fail(r, ERR_INVALID,
                         "no multi-factor authentication is enrolled; run "
                         "'coffer mfa enroll' first");
    }
    if (e == ERR_UNAUTHENTICATED) {
        lockout_failure(p->name, r->source_ip, lockout_now_ms());
        if (auth_record_login(r, "auth:StepUp", p->name, 0, "wrong one-time code", 401, 0) !=
            ERR_OK)
            return ERR_UNAVAILABLE;
        return http_fail(r, ERR_UNAUTHENTICATED, "wrong, expired or already used one-time code");
    }
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "cannot check the one-time code right now");
    if (meta_session_step_up(r->app->meta, p->token_hash, now) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "cannot update the session right now");
    lockout_success(p->name);
    p->mfa = 1;
    p->mfa_at = now;
    if (auth_record_login(r, "auth:StepUp", p->name, 1, recovery ? "recovery code" : "totp", 200,
                          1) != ERR_OK)
        return ERR_UNAVAILABLE;
    r->json = json_pack("{s:b, s:I}", "mfa", 1, "mfa_at", (json_int_t)now);
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
    r->json = json_pack(
        "{s:s, s:s, s:s, s:s, s:b, s:o, s:o, s:s}", "principal", p->name, "type", p->type,
        "auth_method", p->auth_method, "clearance", meta_sensitivity_name(p->clearance), "mfa",
        p->mfa, "attrs", p->attrs != NULL ? json_incref(p->attrs) : json_object(), "groups",
        p->groups != NULL ? json_incref(p->groups) : json_array(), "source_ip", r->source_ip);
    if (r->json != NULL && p->mfa)
        json_object_set_new(r->json, "mfa_at", json_integer((json_int_t)p->mfa_at));
    if (r->json != NULL && p->token_id != 0) {
        /* A negative id is a client-certificate binding (authn/mtls.h). */
        json_object_set_new(
            r->json, p->token_id > 0 ? "token_id" : "cert_id",
            json_integer((json_int_t)(p->token_id > 0 ? p->token_id : -p->token_id)));
        json_object_set_new(r->json, "owner", json_string(p->owner));
    }
    return ERR_OK;
}
