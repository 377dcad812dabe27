/*
 * The caller's own TOTP second factor: status, enrol, confirm, disable;
 * and the administrators' reset for a user who lost both the device and the
 * recovery codes. Every change and every failed code is recorded.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/args.h"
#include "api/gate.h"
#include "api/record.h"
#include "authn/lockout.h"
#include "authn/mfa.h"
#include "meta/authn_store.h"
#include "meta/meta.h"
#include "util/log.h"
#include "util/secure.h"

static enum err mfa_api_record(struct request *r, const char *op, const char *user, int ok,
                               const char *reason, int status)
{
    char res[META_NAME_MAX + 8];
    snprintf(res, sizeof(res), "user:%s", user);
    json_t *detail = json_pack("{s:s}", "op", op);
    struct record rec = {.action = "self:Mfa",
                         .resource = res,
                         .allow = ok,
                         .reason = reason,
                         .status = status,
                         .detail = detail};
    enum err e = api_record(r, &rec);
    json_decref(detail);
    return e;
}

/* Only users logged in with a password manage their own second factor. */
static enum err mfa_api_self(struct request *r)
{
    enum err e = gate_check(r, "self:Mfa", "*", NULL);
    if (e != ERR_OK)
        return e;
    if (!api_args_session_user(r) || strcmp(r->who.auth_method, "password") != 0)
        return http_fail(r, ERR_FORBIDDEN,
                         "multi-factor enrolment needs a password session of "
                         "the user ('coffer login'), not an API or OIDC token");
    return ERR_OK;
}

/* Reads {"code": "..."} from the body. */
static const char *mfa_api_code(struct request *r)
{
    const char *code = json_string_value(json_object_get(r->body_json, "code"));
    if (code == NULL || code[0] == '\0' || strlen(code) > 64)
        return NULL;
    return code;
}

/* Refuses while the user is backing off after wrong codes. */
static enum err mfa_api_lockout(struct request *r)
{
    lockout_setup(&r->app->cfg);
    int64_t wait = lockout_check(r->who.name, r->source_ip, lockout_now_ms());
    if (wait <= 0)
        return ERR_OK;
    if (mfa_api_record(r, "code", r->who.name, 0, "too many failed attempts", 429) != ERR_OK)
        return ERR_UNAVAILABLE;
    r->retry_after = wait;
    return http_fail(r, ERR_RATE_LIMITED, "too many wrong codes; wait %lld seconds",
                     (long long)wait);
}

/* Counts and records a wrong code. */
static enum err mfa_api_wrong_code(struct request *r, const char *op)
{
    lockout_failure(r->who.name, r->source_ip, lockout_now_ms());
    if (mfa_api_record(r, op, r->who.name, 0, "wrong one-time code", 401) != ERR_OK)
        return ERR_UNAVAILABLE;
    return http_fail(r, ERR_UNAUTHENTICATED, "wrong, expired or already used one-time code");
}

enum err api_mfa_status(struct request *r)
{
    enum err e = mfa_api_self(r);
    if (e != ERR_OK)
        return e;
    struct mfa_status st;
    if (mfa_get_status(r->app, r->who.user_id, &st) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    r->json = json_pack("{s:b, s:b, s:i, s:b}", "enrolled", st.enrolled, "pending", st.pending,
                        "recovery_codes_left", st.recovery_left, "session_mfa", r->who.mfa);
    return ERR_OK;
}

enum err api_mfa_enroll(struct request *r)
{
    enum err e = mfa_api_self(r);
    if (e != ERR_OK)
        return e;
    char uri[MFA_URI_MAX], secret[MFA_SECRET_B32_MAX];
    e = mfa_enroll_begin(r->app, r->who.user_id, r->who.name, uri, sizeof(uri), secret,
                         sizeof(secret));
    if (e == ERR_CONFLICT)
        return http_fail(r, e,
                         "multi-factor authentication is already active; run 'coffer mfa "
                         "disable CODE' first to enrol a new device");
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "cannot start the enrolment right now");
    if (mfa_api_record(r, "enroll", r->who.name, 1, "enrolment started", 200) != ERR_OK) {
        secure_wipe(uri, sizeof(uri));
        secure_wipe(secret, sizeof(secret));
        return ERR_UNAVAILABLE;
    }
    r->json = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s}", "issuer", MFA_ISSUER, "account",
                        r->who.name, "secret", secret, "uri", uri, "digits", MFA_DIGITS, "period",
                        MFA_PERIOD, "algorithm", "SHA1");
    secure_wipe(uri, sizeof(uri));
    secure_wipe(secret, sizeof(secret));
    return ERR_OK;
}

enum err api_mfa_confirm(struct request *r)
{
    enum err e = mfa_api_self(r);
    if (e != ERR_OK)
        return e;
    const char *code = mfa_api_code(r);
    if (code == NULL)
        return http_fail(r, ERR_INVALID, "send {\"code\": \"123456\"}");
    int64_t now = (int64_t)time(NULL);
    if ((e = mfa_api_lockout(r)) != ERR_OK)
        return e;
    char codes[MFA_RECOVERY_COUNT][16];
    e = mfa_enroll_confirm(r->app, r->who.user_id, code, now, codes);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, e, "no enrolment is pending; run 'coffer mfa enroll' first");
    if (e == ERR_CONFLICT)
        return http_fail(r, e, "multi-factor authentication is already active");
    if (e == ERR_UNAUTHENTICATED)
        return mfa_api_wrong_code(r, "confirm");
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "cannot confirm the enrolment right now");
    /* The user just proved possession of the device: this session has MFA. */
    if (meta_session_step_up(r->app->meta, r->who.token_hash, now) == ERR_OK) {
        r->who.mfa = 1;
        r->who.mfa_at = now;
    }
    lockout_success(r->who.name);
    json_t *list = json_array();
    for (int i = 0; i < MFA_RECOVERY_COUNT; i++)
        json_array_append_new(list, json_string(codes[i]));
    secure_wipe(codes, sizeof(codes));
    if (mfa_api_record(r, "confirm", r->who.name, 1, "multi-factor authentication activated",
                       200) != ERR_OK) {
        json_decref(list);
        return ERR_UNAVAILABLE;
    }
    r->json = json_pack("{s:b, s:o}", "enrolled", 1, "recovery_codes", list);
    return ERR_OK;
}

enum err api_mfa_disable(struct request *r)
{
    enum err e = mfa_api_self(r);
    if (e != ERR_OK)
        return e;
    const char *code = mfa_api_code(r);
    if (code == NULL)
        return http_fail(r, ERR_INVALID,
                         "send {\"code\": CODE} with a current code or a recovery code");
    int64_t now = (int64_t)time(NULL);
    if ((e = mfa_api_lockout(r)) != ERR_OK)
        return e;
    e = mfa_verify(r->app, r->who.user_id, code, now, NULL);
    if (e == ERR_NOT_FOUND) {
        /* A pending (unconfirmed) enrolment is simply dropped. */
        struct mfa_status st;
        if (mfa_get_status(r->app, r->who.user_id, &st) == ERR_OK && st.pending &&
            mfa_disable(r->app, r->who.user_id) == ERR_OK)
            return mfa_api_record(r, "disable", r->who.name, 1, "pending enrolment dropped", 204);
        return http_fail(r, e, "multi-factor authentication is not active");
    }
    if (e == ERR_UNAUTHENTICATED)
        return mfa_api_wrong_code(r, "disable");
    if (e != ERR_OK || mfa_disable(r->app, r->who.user_id) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "cannot disable multi-factor authentication now");
    lockout_success(r->who.name);
    log_info("mfa %s: '%s' disabled multi-factor authentication", r->request_id, r->who.name);
    return mfa_api_record(r, "disable", r->who.name, 1, "multi-factor authentication removed", 204);
}

enum err api_mfa_reset(struct request *r)
{
    enum err e = gate_check(r, "admin:Users", "*", NULL);
    if (e != ERR_OK)
        return e;
    const char *user = json_string_value(json_object_get(r->body_json, "user"));
    if (user == NULL || strlen(user) > META_NAME_MAX)
        return http_fail(r, ERR_INVALID, "send {\"user\": NAME}");
    struct meta_user u;
    e = meta_user_get(r->app->meta, user, &u);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, e, "no user '%s'", user);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    e = mfa_disable(r->app, u.id);
    if (e == ERR_OK)
        e = meta_session_revoke_user(r->app->meta, u.id);
    meta_user_clear(&u);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "cannot reset multi-factor authentication now");
    return mfa_api_record(r, "reset", user, 1, "reset by an administrator; sessions revoked", 204);
}
