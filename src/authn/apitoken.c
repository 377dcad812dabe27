/*
 * API tokens: issue, authenticate, limits.
 */
#include "authn/apitoken.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "authn/session.h"
#include "meta/access.h"
#include "meta/authn_store.h"
#include "meta/meta.h"
#include "util/secure.h"

/* Uses are written at most this often per token (a write per request would
 * make every call wait for an fsync). */
#define APITOKEN_TOUCH_INTERVAL 60

int apitoken_name_valid(const char *s)
{
    size_t n = s != NULL ? strnlen(s, META_TOKEN_NAME_MAX + 1) : 0;
    if (n == 0 || n > META_TOKEN_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 (i > 0 && (c == '.' || c == '_' || c == '-'));
        if (!ok)
            return 0;
    }
    return 1;
}

int64_t apitoken_max_lifetime(const struct app *app)
{
    char path[1200];
    if (app_path(&app->cfg, "authn.json", path, sizeof(path)) != 0)
        return APITOKEN_MAX_LIFETIME_DEFAULT;
    json_t *cfg = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    json_t *days = json_object_get(json_object_get(cfg, "tokens"), "max_lifetime_days");
    int64_t out = APITOKEN_MAX_LIFETIME_DEFAULT;
    if (json_is_integer(days) && json_integer_value(days) > 0 && json_integer_value(days) <= 3660)
        out = (int64_t)json_integer_value(days) * 86400;
    json_decref(cfg);
    return out;
}

enum err apitoken_issue(struct app *app, const char *name, int64_t owner_id, json_t *roles,
                        const char *scope, int64_t expires_at, char token_out[APITOKEN_LEN + 1],
                        int64_t *id)
{
    uint8_t raw[32], hash[32];
    if (secure_random(raw, sizeof(raw)) != 0)
        return ERR_INTERNAL;
    memcpy(token_out, APITOKEN_PREFIX, 4);
    b64url_encode(raw, sizeof(raw), token_out + 4, APITOKEN_LEN + 1 - 4);
    secure_wipe(raw, sizeof(raw));
    session_token_hash(token_out, hash);
    enum err e =
        meta_apitoken_create(app->meta, name, owner_id, hash, roles, scope, expires_at, id);
    if (e != ERR_OK)
        secure_wipe(token_out, APITOKEN_LEN + 1);
    return e;
}

enum err apitoken_principal(struct request *r, int64_t owner_id, const char *name,
                            const char *method, int64_t token_id, const uint8_t *token_hash)
{
    struct meta_user u;
    enum err e = meta_user_get_by_id(r->app->meta, owner_id, &u);
    if (e != ERR_OK)
        return e == ERR_NOT_FOUND ? ERR_UNAUTHENTICATED : ERR_UNAVAILABLE;
    if (u.disabled) {
        meta_user_clear(&u);
        return ERR_UNAUTHENTICATED;
    }
    struct principal *p = &r->who;
    p->user_id = u.id;
    snprintf(p->type, sizeof(p->type), "service");
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->auth_method, sizeof(p->auth_method), "%s", method);
    p->clearance = u.clearance;
    p->is_admin = 0;
    p->mfa = 0;
    p->mfa_at = 0;
    p->attrs = json_incref(u.attrs);
    if (token_hash != NULL)
        memcpy(p->token_hash, token_hash, sizeof(p->token_hash));
    p->token_id = token_id;
    snprintf(p->owner, sizeof(p->owner), "%s", u.name);
    meta_user_clear(&u);
    char principal[sizeof(p->name) + 16];
    snprintf(principal, sizeof(principal), "service:%s", p->name);
    e = meta_principal_groups(r->app->meta, principal, &p->groups);
    snprintf(principal, sizeof(principal), "user:%s", p->owner);
    if (e == ERR_OK)
        e = meta_principal_groups(r->app->meta, principal, &p->owner_groups);
    return e == ERR_OK ? ERR_OK : ERR_UNAVAILABLE;
}

enum err apitoken_authenticate(struct request *r, const char *token)
{
    if (strlen(token) != APITOKEN_LEN || memcmp(token, APITOKEN_PREFIX, 4) != 0)
        return ERR_UNAUTHENTICATED;
    uint8_t hash[32];
    session_token_hash(token, hash);
    struct meta_apitoken t;
    enum err e = meta_apitoken_by_hash(r->app->meta, hash, &t);
    if (e != ERR_OK)
        return e == ERR_NOT_FOUND ? ERR_UNAUTHENTICATED : ERR_UNAVAILABLE;
    int64_t now = (int64_t)time(NULL);
    if (t.revoked_at != 0 || t.expires_at <= now) {
        meta_apitoken_clear(&t);
        return ERR_UNAUTHENTICATED;
    }
    e = apitoken_principal(r, t.owner_id, t.name, "token", t.id, hash);
    if (e == ERR_OK && now - t.last_used_at >= APITOKEN_TOUCH_INTERVAL &&
        meta_apitoken_touch(r->app->meta, t.id, now, r->source_ip) != ERR_OK)
        e = ERR_UNAVAILABLE;
    meta_apitoken_clear(&t);
    if (e != ERR_OK)
        return e;
    r->authenticated = 1;
    return ERR_OK;
}
