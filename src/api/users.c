/*
 * User administration: add, list, show, disable, change password.
 */
#include <string.h>

#include "api/api.h"
#include "api/args.h"
#include "api/gate.h"
#include "api/record.h"
#include "authn/apitoken.h"
#include "authn/password.h"
#include "app/access.h"
#include "meta/access.h"
#include "meta/authn_store.h"
#include "meta/meta.h"
#include "util/secure.h"

#define API_ATTRS_MAX 32

/* User names follow the rule of service account names (authn/apitoken.h):
 * [a-z0-9][a-z0-9._-]{0,63}. */
_Static_assert(META_NAME_MAX == META_TOKEN_NAME_MAX, "user and service names have one length");

static int user_name_valid(const char *s)
{
    return apitoken_name_valid(s);
}

static int attrs_valid(json_t *attrs)
{
    if (!json_is_object(attrs) || json_object_size(attrs) > API_ATTRS_MAX)
        return 0;
    const char *k;
    json_t *v;
    json_object_foreach(attrs, k, v)
    {
        size_t kl = strlen(k);
        if (kl == 0 || kl > 64 || !json_is_string(v) || json_string_length(v) > 256)
            return 0;
        for (size_t i = 0; i < kl; i++) {
            char c = k[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.'))
                return 0;
        }
    }
    return 1;
}

/* Records a completed change of a user account. */
static enum err user_record(struct request *r, const char *op, const char *name)
{
    json_t *detail = json_pack("{s:s, s:s}", "op", op, "user", name);
    char res[META_NAME_MAX + 8];
    snprintf(res, sizeof(res), "user:%s", name);
    enum err e = api_record_change(r, "admin:Users", res, op, detail);
    json_decref(detail);
    return e;
}

static json_t *user_json(const struct meta_user *u)
{
    return json_pack("{s:s, s:s, s:O, s:b, s:b, s:I}", "name", u->name, "clearance",
                     meta_sensitivity_name(u->clearance), "attrs", u->attrs, "disabled",
                     u->disabled, "admin", u->is_admin, "created_at", (json_int_t)u->created_at);
}

enum err api_user_list(struct request *r)
{
    enum err e = gate_check(r, "admin:Users", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *arr = NULL;
    if (meta_user_list(r->app->meta, &arr) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    r->json = json_pack("{s:o}", "users", arr);
    return ERR_OK;
}

enum err api_user_add(struct request *r)
{
    enum err e = gate_check(r, "admin:Users", "*", NULL);
    if (e != ERR_OK)
        return e;
    static const char *const fields[] = {"name", "password", "clearance", "attrs", "admin", NULL};
    if ((e = api_args_fields(r, fields)) != ERR_OK)
        return e;
    json_t *b = r->body_json;
    const char *name = json_string_value(json_object_get(b, "name"));
    if (!user_name_valid(name))
        return http_fail(r, ERR_INVALID,
                         "invalid user name: use 1-64 of a-z 0-9 . _ -, starting with a-z or 0-9");
    json_t *pw = json_object_get(b, "password");
    const char *password = json_string_value(pw);
    char why[160];
    if (pw != NULL && (password == NULL || json_string_length(pw) != strlen(password) ||
                       password_check_policy(password, why, sizeof(why)) != ERR_OK))
        return http_fail(r, ERR_INVALID, "unacceptable password: %s",
                         password == NULL ? "not a string" : why);
    int clearance = 1;
    json_t *cl = json_object_get(b, "clearance");
    if (cl != NULL && (clearance = meta_sensitivity_level(json_string_value(cl))) < 0)
        return http_fail(r, ERR_INVALID,
                         "unknown clearance; use public, internal, confidential or restricted");
    json_t *attrs = json_object_get(b, "attrs");
    if (attrs != NULL && !attrs_valid(attrs))
        return http_fail(r, ERR_INVALID, "attrs must be an object of at most %d key=value strings",
                         API_ATTRS_MAX);
    json_t *admin = json_object_get(b, "admin");
    if (admin != NULL && !json_is_boolean(admin))
        return http_fail(r, ERR_INVALID, "admin must be true or false");
    /* Making someone an admin is a policy change too. */
    if (json_is_true(admin) && (e = gate_check(r, "admin:Policies", "*", NULL)) != ERR_OK)
        return e;
    char *hash = NULL;
    if (password != NULL && password_hash(password, &hash) != ERR_OK)
        return http_fail(r, ERR_INTERNAL, "password hashing failed");
    e = meta_user_create(r->app->meta, name, hash, clearance, attrs, json_is_true(admin));
    secure_free_str(hash);
    if (e == ERR_CONFLICT)
        return http_fail(r, e, "user '%s' already exists", name);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    if (json_is_true(admin)) {
        char principal[META_NAME_MAX + 8], reload_why[256];
        snprintf(principal, sizeof(principal), "user:%s", name);
        if (meta_binding_add(r->app->meta, "admin", principal, NULL, r->who.name) != ERR_OK ||
            access_reload(r->app->meta, reload_why, sizeof(reload_why)) != ERR_OK)
            return http_fail(r, ERR_UNAVAILABLE,
                             "the user was created but the admin role "
                             "could not be bound");
    }
    if ((e = user_record(r, "user added", name)) != ERR_OK)
        return e;
    struct meta_user u;
    if (meta_user_get(r->app->meta, name, &u) == ERR_OK) {
        r->json = user_json(&u);
        meta_user_clear(&u);
    }
    r->status = 201;
    return ERR_OK;
}

/* The user named by the path, after "/v1/users/". */
static enum err user_from_path(struct request *r, const char *suffix, char *name, size_t cap)
{
    enum err e = api_args_name(r, suffix, name, cap);
    if (e != ERR_OK)
        return e;
    if (!user_name_valid(name))
        return http_fail(r, ERR_INVALID, "invalid user name");
    return ERR_OK;
}

enum err api_user_show(struct request *r)
{
    char name[META_NAME_MAX + 1];
    enum err e = user_from_path(r, "", name, sizeof(name));
    if (e != ERR_OK)
        return e;
    if (strcmp(name, r->who.name) != 0 && (e = gate_check(r, "admin:Users", "*", NULL)) != ERR_OK)
        return e;
    struct meta_user u;
    e = meta_user_get(r->app->meta, name, &u);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, e, "no user '%s'", name);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    r->json = user_json(&u);
    meta_user_clear(&u);
    return ERR_OK;
}

enum err api_user_disable(struct request *r)
{
    char name[META_NAME_MAX + 1];
    enum err e = user_from_path(r, "/disable", name, sizeof(name));
    if (e != ERR_OK || (e = gate_check(r, "admin:Users", "*", NULL)) != ERR_OK)
        return e;
    if (strcmp(name, r->who.name) == 0)
        return http_fail(r, ERR_CONFLICT, "you cannot disable yourself");
    struct meta_user u;
    e = meta_user_get(r->app->meta, name, &u);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, e, "no user '%s'", name);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    e = meta_user_set_disabled(r->app->meta, name, 1);
    if (e == ERR_OK)
        e = meta_session_revoke_user(r->app->meta, u.id);
    meta_user_clear(&u);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    if ((e = user_record(r, "user disabled", name)) != ERR_OK)
        return e;
    r->json = json_pack("{s:s, s:b}", "name", name, "disabled", 1);
    return ERR_OK;
}

enum err api_user_passwd(struct request *r)
{
    char name[META_NAME_MAX + 1];
    enum err e = user_from_path(r, "/password", name, sizeof(name));
    if (e != ERR_OK)
        return e;
    int self = strcmp(name, r->who.name) == 0;
    e = gate_check(r, self ? "self:Password" : "admin:Users", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *pw = json_object_get(r->body_json, "password");
    const char *password = json_string_value(pw);
    char why[160];
    if (password == NULL || json_string_length(pw) != strlen(password) ||
        password_check_policy(password, why, sizeof(why)) != ERR_OK)
        return http_fail(r, ERR_INVALID, "unacceptable password: %s",
                         password == NULL ? "send {\"password\": NEW}" : why);
    struct meta_user u;
    e = meta_user_get(r->app->meta, name, &u);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, e, "no user '%s'", name);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    if (self) {
        /* Changing one's own password needs the current one. */
        const char *current = json_string_value(json_object_get(r->body_json, "current_password"));
        if (current == NULL || u.pw_hash == NULL || !password_verify(u.pw_hash, current)) {
            meta_user_clear(&u);
            return http_fail(r, ERR_FORBIDDEN, "the current password is wrong");
        }
    }
    char *hash = NULL;
    e = password_hash(password, &hash);
    if (e == ERR_OK)
        e = meta_user_set_password(r->app->meta, name, hash);
    if (e == ERR_OK && !self)
        e = meta_session_revoke_user(r->app->meta, u.id);
    secure_free_str(hash);
    meta_user_clear(&u);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "password change failed");
    if ((e = user_record(r, "password changed", name)) != ERR_OK)
        return e;
    r->json = json_pack("{s:s, s:b}", "name", name, "password_changed", 1);
    return ERR_OK;
}
