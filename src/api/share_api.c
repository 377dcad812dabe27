/*
 * Share links: a creator with artifact:Share hands out an HTTPS URL that
 * downloads exactly one version (and reads its metadata) with no other
 * credential, until it expires, is revoked or runs out of downloads.
 *
 * The link is its own credential: GET /v1/shared/TOKEN is unauthenticated
 * at the HTTP layer and the handler authenticates the token here. A link
 * acts as principal link:ID and may never do more than its creator may
 * still do (the gate decides as user:CREATOR, without MFA).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/args.h"
#include "api/gate.h"
#include "api/record.h"
#include "app/environments.h"
#include "authn/session.h"
#include "meta/access.h"
#include "meta/meta.h"
#include "meta/share_store.h"
#include "registry/path.h"
#include "util/log.h"
#include "util/secure.h"

#define SHARE_TOKEN_PREFIX "cfl_"
#define SHARE_TOKEN_RAW 32
#define SHARE_TOKEN_LEN 47 /* prefix + 43 base64url characters */
#define SHARE_MAX_DOWNLOADS 1000000
#define SHARE_URL_PREFIX "/v1/shared/"

static int share_effective(const struct meta_version *v)
{
    return v->version_sensitivity > v->artifact_sensitivity ? v->version_sensitivity
                                                            : v->artifact_sensitivity;
}

static void share_facts(const struct meta_version *v, const struct artifact_path *p,
                        struct gate_resource *res)
{
    res->kind = v->kind;
    res->sensitivity = share_effective(v);
    res->tags = v->tags;
    res->project = p->project;
    res->env = p->env;
    res->version = v->version;
}

/* Resolves ref to one live version the caller may read, download and share.
 * Hides existence from those who may not read it. */
static enum err share_resolve(struct request *r, const char *text, struct artifact_ref *ref,
                              struct meta_version *v, char *canon, size_t canon_cap)
{
    char why[200];
    if (text == NULL || ref_parse(text, NULL, ref, why, sizeof(why)) != ERR_OK)
        return http_fail(r, ERR_INVALID, "invalid reference: %s",
                         text == NULL ? "give ref (PATH@VERSION)" : why);
    enum err e = meta_version_get(r->app->meta, ref, v);
    if (e == ERR_OK && v->deleted) {
        meta_version_clear(v);
        e = ERR_NOT_FOUND;
    }
    if (e == ERR_NOT_FOUND) {
        struct record rec = {.action = "artifact:Share",
                             .resource = text,
                             .allow = 0,
                             .reason = "not found",
                             .status = 404};
        if (api_record(r, &rec) != ERR_OK)
            return ERR_UNAVAILABLE;
        return http_fail(r, ERR_NOT_FOUND, "%s not found (or not visible to you)", text);
    }
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    struct gate_resource res;
    share_facts(v, &ref->path, &res);
    snprintf(canon, canon_cap, "%s@%llu", v->path, (unsigned long long)v->version);
    if (gate_check(r, "artifact:Read", canon, &res) != ERR_OK) {
        int may_read = gate_allows(r, "artifact:Read", canon, &res);
        meta_version_clear(v);
        if (!may_read)
            return http_fail(r, ERR_NOT_FOUND, "%s not found (or not visible to you)", text);
        return ERR_FORBIDDEN;
    }
    /* The creator must be able to download what the link hands out. */
    if ((e = gate_check(r, "artifact:Download", canon, &res)) != ERR_OK ||
        (e = gate_check(r, "artifact:Share", canon, &res)) != ERR_OK) {
        meta_version_clear(v);
        return e;
    }
    return ERR_OK;
}

/* Validates the networks list: at most ENV_MAX_NETWORKS CIDR strings. */
static enum err share_networks(struct request *r, json_t *nets)
{
    if (nets == NULL)
        return ERR_OK;
    if (!json_is_array(nets) || json_array_size(nets) > ENV_MAX_NETWORKS)
        return http_fail(r, ERR_INVALID, "networks must be a list of at most %d CIDRs",
                         ENV_MAX_NETWORKS);
    size_t i;
    json_t *n;
    json_array_foreach(nets, i, n)
    {
        struct env_cidr c;
        if (!json_is_string(n) || env_cidr_parse(json_string_value(n), &c) != 0)
            return http_fail(r, ERR_INVALID,
                             "--ip takes an IPv4 or IPv6 address or CIDR such as 10.0.0.0/8");
    }
    return ERR_OK;
}

static enum err share_parse_body(struct request *r, const struct env_config *cfg, int64_t *lifetime,
                                 int64_t *max_uses)
{
    static const char *const fields[] = {"ref", "expires_in", "max_downloads", "networks", NULL};
    enum err e = api_args_fields(r, fields);
    if (e != ERR_OK)
        return e;
    json_t *b = r->body_json;
    json_t *exp = json_object_get(b, "expires_in");
    *lifetime = cfg->share_default_lifetime;
    if (exp != NULL) {
        if (!json_is_integer(exp) || json_integer_value(exp) <= 0 ||
            json_integer_value(exp) > cfg->share_max_lifetime)
            return http_fail(r, ERR_INVALID,
                             "--expires must be a duration between 1s and %lld seconds (%lld "
                             "days), the configured maximum",
                             (long long)cfg->share_max_lifetime,
                             (long long)(cfg->share_max_lifetime / 86400));
        *lifetime = (int64_t)json_integer_value(exp);
    }
    json_t *max = json_object_get(b, "max_downloads");
    *max_uses = 0;
    if (max != NULL && !json_is_null(max)) {
        if (!json_is_integer(max) || json_integer_value(max) < 1 ||
            json_integer_value(max) > SHARE_MAX_DOWNLOADS)
            return http_fail(r, ERR_INVALID, "--max-downloads must be between 1 and %d",
                             SHARE_MAX_DOWNLOADS);
        *max_uses = (int64_t)json_integer_value(max);
    }
    return share_networks(r, json_object_get(b, "networks"));
}

/* Draws a token and its hash. The caller wipes token. */
static enum err share_token_new(char token[SHARE_TOKEN_LEN + 1], uint8_t hash[32])
{
    uint8_t raw[SHARE_TOKEN_RAW];
    if (secure_random(raw, sizeof(raw)) != 0)
        return ERR_INTERNAL;
    memcpy(token, SHARE_TOKEN_PREFIX, 4);
    int n = b64url_encode(raw, sizeof(raw), token + 4, SHARE_TOKEN_LEN + 1 - 4);
    secure_wipe(raw, sizeof(raw));
    if (n < 0 || strlen(token) != SHARE_TOKEN_LEN)
        return ERR_INTERNAL;
    session_token_hash(token, hash);
    return ERR_OK;
}

/* The URL as the creator reached the server (the CLI uses its own --server). */
static void share_url(struct request *r, const char *token, char *out, size_t cap)
{
    const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
    int host_ok = host != NULL && host[0] != '\0' && strlen(host) < 256;
    for (const char *p = host; host_ok && *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        host_ok = c > 0x20 && c < 0x7f && c != '/' && c != '@' && c != '\\';
    }
    if (host_ok)
        snprintf(out, cap, "https://%s" SHARE_URL_PREFIX "%s", host, token);
    else
        snprintf(out, cap, SHARE_URL_PREFIX "%s", token);
}

static enum err share_record(struct request *r, const char *resource, const char *op, int64_t id,
                             const char *reason, json_t *extra)
{
    json_t *detail = json_pack("{s:s, s:I}", "op", op, "link_id", (json_int_t)id);
    if (extra != NULL)
        json_object_update(detail, extra);
    enum err e = api_record_change(r, "artifact:Share", resource, reason, detail);
    json_decref(detail);
    return e;
}

enum err api_share_create(struct request *r)
{
    if (!api_args_session_user(r))
        return http_fail(r, ERR_FORBIDDEN,
                         "share links are created by users; log in with "
                         "'coffer login'");
    int64_t lifetime = 0, max_uses = 0;
    enum err e = share_parse_body(r, r->app->envs, &lifetime, &max_uses);
    if (e != ERR_OK)
        return e;
    struct artifact_ref ref;
    struct meta_version v;
    char canon[REF_MAX + 1];
    e = share_resolve(r, json_string_value(json_object_get(r->body_json, "ref")), &ref, &v, canon,
                      sizeof(canon));
    if (e != ERR_OK)
        return e;
    json_t *nets = json_object_get(r->body_json, "networks");
    struct meta_share s = {.version = v.version,
                           .version_id = v.version_id,
                           .creator_id = r->who.user_id,
                           .created_at = (int64_t)time(NULL),
                           .max_uses = max_uses,
                           .networks = nets};
    snprintf(s.path, sizeof(s.path), "%s", v.path);
    snprintf(s.creator, sizeof(s.creator), "%s", r->who.name);
    s.expires_at = s.created_at + lifetime;
    meta_version_clear(&v);
    char token[SHARE_TOKEN_LEN + 1];
    uint8_t hash[32];
    int64_t id = 0;
    if ((e = share_token_new(token, hash)) != ERR_OK)
        return http_fail(r, ERR_INTERNAL, "no randomness for a link token");
    if ((e = meta_share_create(r->app->meta, hash, &s, &id)) != ERR_OK) {
        secure_wipe(token, sizeof(token));
        return http_fail(r, ERR_UNAVAILABLE, "cannot store the link right now; retry");
    }
    json_t *extra =
        json_pack("{s:I, s:O?}", "expires_at", (json_int_t)s.expires_at, "networks", nets);
    if (max_uses > 0)
        json_object_set_new(extra, "max_downloads", json_integer((json_int_t)max_uses));
    e = share_record(r, canon, "create", id, "share link created", extra);
    json_decref(extra);
    if (e != ERR_OK) {
        secure_wipe(token, sizeof(token));
        meta_share_revoke(r->app->meta, id, "system:audit-failure");
        return e;
    }
    char url[512], path[128];
    share_url(r, token, url, sizeof(url));
    snprintf(path, sizeof(path), SHARE_URL_PREFIX "%s", token);
    r->json =
        json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:O?}", "id", (json_int_t)id, "ref", canon,
                  "token", token, "path", path, "url", url, "expires_at", (json_int_t)s.expires_at,
                  "created_at", (json_int_t)s.created_at, "networks", nets);
    json_object_set_new(r->json, "max_downloads",
                        max_uses > 0 ? json_integer((json_int_t)max_uses) : json_null());
    secure_wipe(token, sizeof(token));
    secure_wipe(url, sizeof(url));
    secure_wipe(path, sizeof(path));
    r->status = 201;
    log_info("share %s: %s created link %lld for %s", r->request_id, r->who.name, (long long)id,
             canon);
    return ERR_OK;
}

enum err api_share_list(struct request *r)
{
    enum err e = gate_check(r, "self:Share", "*", NULL);
    if (e != ERR_OK)
        return e;
    int64_t creator = r->who.token_id != 0 ? 0 : r->who.user_id;
    if (api_args_flag(r, "all")) {
        if ((e = gate_check(r, "admin:Users", "*", NULL)) != ERR_OK)
            return e;
        creator = 0;
    } else if (creator <= 0) {
        r->json = json_pack("{s:[]}", "links");
        return ERR_OK;
    }
    json_t *list = NULL;
    if (meta_share_list(r->app->meta, creator, &list) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    int64_t now = (int64_t)time(NULL);
    size_t i;
    json_t *l;
    json_array_foreach(list, i, l)
    {
        json_t *max = json_object_get(l, "max_downloads");
        const char *state =
            !json_is_null(json_object_get(l, "revoked_at"))               ? "revoked"
            : json_integer_value(json_object_get(l, "expires_at")) <= now ? "expired"
            : json_is_integer(max) &&
                    json_integer_value(json_object_get(l, "uses")) >= json_integer_value(max)
                ? "used-up"
                : "active";
        json_object_set_new(l, "state", json_string(state));
    }
    r->json = json_pack("{s:o}", "links", list);
    return ERR_OK;
}

enum err api_share_revoke(struct request *r)
{
    enum err e = gate_check(r, "self:Share", "*", NULL);
    if (e != ERR_OK)
        return e;
    long long id = 0;
    if ((e = api_args_id(r, "give the link id shown by 'coffer share ls'", &id)) != ERR_OK)
        return e;
    struct meta_share s;
    e = meta_share_by_id(r->app->meta, (int64_t)id, &s);
    if (e != ERR_OK && e != ERR_NOT_FOUND)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    int own = e == ERR_OK && r->who.token_id == 0 && strcmp(r->who.type, "user") == 0 &&
              s.creator_id == r->who.user_id;
    if (e == ERR_OK && !own && !gate_allows(r, "admin:Users", "*", NULL)) {
        meta_share_clear(&s);
        e = ERR_NOT_FOUND;
    }
    if (e == ERR_NOT_FOUND)
        return http_fail(r, ERR_NOT_FOUND, "no link %lld of yours", id);
    char by[128], target[REF_MAX + 1];
    snprintf(by, sizeof(by), "%s:%s", r->who.type, r->who.name);
    snprintf(target, sizeof(target), "%s@%llu", s.path, (unsigned long long)s.version);
    meta_share_clear(&s);
    e = meta_share_revoke(r->app->meta, (int64_t)id, by);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, ERR_CONFLICT, "link %lld is already revoked", id);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "cannot revoke the link right now");
    e = share_record(
        r, target, "revoke", (int64_t)id,
        own ? "share link revoked by its creator" : "share link revoked by an administrator", NULL);
    if (e == ERR_OK)
        r->json = json_pack("{s:I, s:b}", "id", (json_int_t)id, "revoked", 1);
    return e;
}

/* ------------------------------------------------------------ link use */

/* Records a refused use of a link (principal link:ID once known) and fails. */
static enum err shared_refuse(struct request *r, enum err code, const char *action,
                              const char *resource, int64_t link_id, const char *reason,
                              const char *msg)
{
    json_t *detail = link_id > 0 ? json_pack("{s:I}", "link_id", (json_int_t)link_id) : NULL;
    struct record rec = {.action = action,
                         .resource = resource,
                         .allow = 0,
                         .reason = reason,
                         .status = err_info(code)->http_status,
                         .detail = detail,
                         .auth_method_override = "link"};
    enum err e = api_record(r, &rec);
    json_decref(detail);
    if (e != ERR_OK)
        return e;
    return http_fail(r, code, "%s", msg);
}

static int shared_token_syntax(const char *t, size_t len)
{
    if (len != SHARE_TOKEN_LEN || memcmp(t, SHARE_TOKEN_PREFIX, 4) != 0)
        return 0;
    for (size_t i = 4; i < len; i++) {
        char c = t[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* Makes the request act as link:ID on behalf of its creator. */
static enum err shared_become_link(struct request *r, const struct meta_share *s)
{
    struct meta_user u;
    enum err e = meta_user_get_by_id(r->app->meta, s->creator_id, &u);
    if (e != ERR_OK)
        return e;
    if (u.disabled) {
        meta_user_clear(&u);
        return ERR_FORBIDDEN;
    }
    struct principal *p = &r->who;
    p->user_id = 0;
    snprintf(p->type, sizeof(p->type), "link");
    snprintf(p->name, sizeof(p->name), "%lld", (long long)s->id);
    snprintf(p->auth_method, sizeof(p->auth_method), "link");
    snprintf(p->owner, sizeof(p->owner), "%s", u.name);
    p->clearance = u.clearance;
    p->attrs = json_incref(u.attrs);
    p->groups = json_array();
    meta_user_clear(&u);
    char principal[sizeof(p->owner) + 8];
    snprintf(principal, sizeof(principal), "user:%s", p->owner);
    if (meta_principal_groups(r->app->meta, principal, &p->owner_groups) != ERR_OK)
        return ERR_UNAVAILABLE;
    r->authenticated = 1;
    return ERR_OK;
}

static enum err shared_meta(struct request *r, const struct meta_version *v,
                            const struct meta_share *s, const char *canon)
{
    json_t *o = NULL;
    if (meta_version_describe(r->app->meta, v, &o) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    /* Lineage names other versions, which a link does not reveal. */
    json_object_del(o, "children");
    json_object_del(o, "parents");
    json_t *link = json_pack("{s:I, s:I, s:I}", "id", (json_int_t)s->id, "expires_at",
                             (json_int_t)s->expires_at, "uses", (json_int_t)s->uses);
    json_object_set_new(link, "max_downloads",
                        s->max_uses > 0 ? json_integer((json_int_t)s->max_uses) : json_null());
    json_object_set_new(o, "link", link);
    json_t *detail = json_pack("{s:I}", "link_id", (json_int_t)s->id);
    struct record rec = {.action = "artifact:Read",
                         .resource = canon,
                         .allow = 1,
                         .reason = "metadata served through a share link",
                         .status = 200,
                         .detail = detail};
    enum err e = api_record(r, &rec);
    json_decref(detail);
    if (e != ERR_OK) {
        json_decref(o);
        return e;
    }
    r->json = o;
    return ERR_OK;
}

/* Checks everything the link itself decides: revocation, expiry, uses
 * left and the source address. */
static enum err shared_check_link(struct request *r, const struct meta_share *s, const char *action,
                                  const char *canon, int64_t now)
{
    if (s->revoked_at > 0)
        return shared_refuse(r, ERR_GONE, action, canon, s->id, "share link revoked",
                             "this share link was revoked; ask its creator for a new one");
    if (s->expires_at <= now)
        return shared_refuse(r, ERR_GONE, action, canon, s->id, "share link expired",
                             "this share link has expired; ask its creator for a new one");
    if (s->max_uses > 0 && s->uses >= s->max_uses)
        return shared_refuse(r, ERR_GONE, action, canon, s->id, "share link used up",
                             "this share link has no downloads left; ask its creator for a new "
                             "one");
    size_t n = json_array_size(s->networks), i;
    json_t *c;
    int allowed = n == 0;
    json_array_foreach(s->networks, i, c)
    {
        struct env_cidr cidr;
        if (env_cidr_parse(json_string_value(c), &cidr) == 0 && env_cidr_match(&cidr, r->source_ip))
            allowed = 1;
    }
    if (!allowed)
        return shared_refuse(r, ERR_FORBIDDEN, action, canon, s->id,
                             "source address not allowed by the share link",
                             "this share link cannot be used from your network address");
    return ERR_OK;
}

static enum err shared_version(struct request *r, const struct meta_share *s,
                               struct meta_version *v, const char *action, const char *canon)
{
    struct artifact_ref ref = {.kind = REF_NUMBER, .version = s->version, .explicit_version = 1};
    enum err e = path_parse(s->path, NULL, &ref.path, NULL, 0);
    if (e == ERR_OK)
        e = meta_version_get(r->app->meta, &ref, v);
    if (e == ERR_OK && (v->deleted || v->version_id != s->version_id)) {
        meta_version_clear(v);
        e = ERR_NOT_FOUND;
    }
    if (e == ERR_NOT_FOUND)
        return shared_refuse(r, ERR_GONE, action, canon, s->id, "version no longer available",
                             "the shared version no longer exists");
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    return ERR_OK;
}

enum err api_shared_get(struct request *r)
{
    const char *param = r->param;
    const char *slash = strchr(param, '/');
    size_t tlen = slash != NULL ? (size_t)(slash - param) : strlen(param);
    int want_meta = slash != NULL && strcmp(slash, "/meta") == 0;
    const char *action = want_meta ? "artifact:Read" : "artifact:Download";
    if ((slash != NULL && !want_meta) || !shared_token_syntax(param, tlen))
        return shared_refuse(r, ERR_UNAUTHENTICATED, action, "shared-link", 0,
                             "malformed share link", "invalid share link; check the URL");
    char token[SHARE_TOKEN_LEN + 1];
    uint8_t hash[32];
    memcpy(token, param, tlen);
    token[tlen] = '\0';
    session_token_hash(token, hash);
    secure_wipe(token, sizeof(token));
    struct meta_share s;
    enum err e = meta_share_by_hash(r->app->meta, hash, &s);
    if (e == ERR_NOT_FOUND)
        return shared_refuse(r, ERR_UNAUTHENTICATED, action, "shared-link", 0, "unknown share link",
                             "invalid share link; check the URL");
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    char canon[REF_MAX + 1];
    snprintf(canon, sizeof(canon), "%s@%llu", s.path, (unsigned long long)s.version);
    e = shared_become_link(r, &s);
    if (e != ERR_OK) {
        meta_share_clear(&s);
        if (e == ERR_UNAVAILABLE || e == ERR_IO)
            return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
        return shared_refuse(r, ERR_GONE, action, canon, 0, "share link creator disabled",
                             "this share link is no longer valid; ask its creator for a new one");
    }
    int64_t now = (int64_t)time(NULL);
    struct meta_version v;
    if ((e = shared_check_link(r, &s, action, canon, now)) != ERR_OK ||
        (e = shared_version(r, &s, &v, action, canon)) != ERR_OK) {
        meta_share_clear(&s);
        return e;
    }
    struct gate_resource res;
    struct artifact_path p;
    path_parse(v.path, NULL, &p, NULL, 0);
    share_facts(&v, &p, &res);
    e = gate_check(r, action, canon, &res);
    if (e == ERR_OK && want_meta) {
        e = shared_meta(r, &v, &s, canon);
    } else if (e == ERR_OK) {
        /* A download is counted when it starts: one conditional UPDATE
         * decides, so concurrent downloads never exceed the limit. */
        e = meta_share_take_use(r->app->meta, s.id, now, r->source_ip);
        if (e == ERR_FORBIDDEN)
            e = shared_refuse(r, ERR_GONE, action, canon, s.id, "share link used up",
                              "this share link has no downloads left; ask its creator for a new "
                              "one");
        else if (e != ERR_OK)
            e = http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
        if (e == ERR_OK) {
            json_t *detail = json_pack("{s:I}", "link_id", (json_int_t)s.id);
            e = api_serve_version(r, &v, detail);
            json_decref(detail);
        }
    }
    meta_version_clear(&v);
    meta_share_clear(&s);
    return e;
}
