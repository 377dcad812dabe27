/*
 * Promotion between environments: a request names a source version and a
 * target environment; it completes at once where the environment needs no
 * approval, otherwise when enough principals other than the requester have
 * approved it. Completion stores a new version in PROJECT/TARGET/NAME with
 * the same content (same SHA-256), re-encrypted under a fresh data key and
 * a new blob id, with the source as its lineage parent.
 *
 * Also the environment rules applied to every write (api_env_check_write).
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
#include "app/reencrypt.h"
#include "blob/blob.h"
#include "meta/meta.h"
#include "meta/promote_store.h"
#include "registry/path.h"
#include "util/log.h"

#define PROMOTE_MESSAGE_MAX 512

enum err api_env_check_write(struct request *r, const char *env, const char *resource,
                             const char *action)
{
    const struct env_settings *s = env_find(r->app->envs, env);
    const char *why = NULL;
    char msg[HTTP_ERRMSG_MAX];
    if (s == NULL) {
        why = "environment not configured";
        snprintf(msg, sizeof(msg), "environment %s is not configured on this server (see %s)", env,
                 ENV_CONFIG_FILE);
    } else if (strcmp(action, "artifact:Write") == 0 && !s->direct_push) {
        why = "environment accepts promotions only";
        snprintf(msg, sizeof(msg),
                 "%s accepts new versions only by promotion; push to a lower environment and "
                 "run 'coffer promote REF --to %s'",
                 env, env);
    } else if (s->mfa_for_writes && !r->who.mfa) {
        why = "environment requires MFA for changes";
        snprintf(msg, sizeof(msg),
                 "changes in %s need MFA; log in again with 'coffer login --otp "
                 "CODE'",
                 env);
    } else if (!env_network_allowed(s, r->source_ip)) {
        why = "source address not allowed by the environment";
        snprintf(msg, sizeof(msg), "changes in %s are not allowed from %.64s", env, r->source_ip);
    }
    if (why == NULL)
        return ERR_OK;
    json_t *detail = json_pack("{s:s}", "environment", env);
    struct record rec = {.action = action,
                         .resource = resource,
                         .allow = 0,
                         .reason = why,
                         .status = 403,
                         .detail = detail};
    enum err e = api_record(r, &rec);
    json_decref(detail);
    if (e != ERR_OK)
        return e;
    return http_fail(r, ERR_FORBIDDEN, "%s", msg);
}

/* The principal acting, and the accountable identity for the two-person
 * rule: an API token counts as its owner. */
static void promote_identity(struct request *r, char *principal, size_t pcap, char *identity,
                             size_t icap)
{
    snprintf(principal, pcap, "%s:%s", r->who.type, r->who.name);
    if (r->who.token_id != 0 && r->who.owner[0] != '\0')
        snprintf(identity, icap, "user:%s", r->who.owner);
    else
        snprintf(identity, icap, "%s", principal);
}

static int promote_effective(const struct meta_version *v)
{
    return v->version_sensitivity > v->artifact_sensitivity ? v->version_sensitivity
                                                            : v->artifact_sensitivity;
}

/* Gate facts of a promotion: the source version's facts, in the target env. */
static void promote_facts(const struct meta_version *v, const struct artifact_path *target,
                          struct gate_resource *res)
{
    memset(res, 0, sizeof(*res));
    res->kind = v != NULL ? v->kind : NULL;
    res->sensitivity = v != NULL ? promote_effective(v) : -1;
    res->tags = v != NULL ? v->tags : NULL;
    res->project = target->project;
    res->env = target->env;
}

static enum err promote_source(struct request *r, const char *path, uint64_t version,
                               struct meta_version *v)
{
    struct artifact_ref ref = {.kind = REF_NUMBER, .version = version, .explicit_version = 1};
    if (path_parse(path, NULL, &ref.path, NULL, 0) != ERR_OK)
        return ERR_NOT_FOUND;
    enum err e = meta_version_get(r->app->meta, &ref, v);
    if (e == ERR_OK && v->deleted) {
        meta_version_clear(v);
        e = ERR_NOT_FOUND;
    }
    return e;
}

/* Completes request p (in state completing): copies the content into the
 * target and commits the new version. Fills r->json on success. */
static enum err promote_complete(struct request *r, struct meta_promotion *p)
{
    struct meta_version src;
    enum err e = promote_source(r, p->source_path, p->source_version, &src);
    if (e == ERR_OK && strcmp(src.sha256, p->sha256) != 0) {
        meta_version_clear(&src);
        e = ERR_INTEGRITY;
    }
    struct artifact_path target;
    if (e == ERR_OK && path_parse(p->target_path, NULL, &target, NULL, 0) != ERR_OK) {
        meta_version_clear(&src);
        e = ERR_INVALID;
    }
    struct blob_upload up;
    uint8_t wrapped[KEYS_WRAPPED_MAX];
    size_t wrapped_len = 0;
    char kek_id[KEYS_KEK_ID_CAP];
    if (e == ERR_OK) {
        e = reencrypt_copy_blob(r->app, &src, &up, wrapped, sizeof(wrapped), &wrapped_len, kek_id,
                                sizeof(kek_id));
        if (e != ERR_OK)
            meta_version_clear(&src);
    }
    uint64_t version = 0;
    if (e == ERR_OK) {
        char parent[REF_MAX + 1], message[META_PROMOTION_MESSAGE_MAX + 128];
        snprintf(parent, sizeof(parent), "%s@%llu", src.path, (unsigned long long)src.version);
        snprintf(message, sizeof(message), "promoted from %s (request %lld)%s%s", parent,
                 (long long)p->id, p->message[0] != '\0' ? ": " : "", p->message);
        json_t *parents = json_pack("[s]", parent);
        const char *creator = strchr(p->requested_by, ':');
        struct meta_new_version nv = {
            .path = &target,
            .kind = src.kind,
            .sensitivity = promote_effective(&src),
            .tags = src.tags,
            .parents = parents,
            .message = message,
            .creator = creator != NULL ? creator + 1 : p->requested_by,
            .sha256 = src.sha256,
            .size = src.size,
            .blob_id = up.blob_id,
            .wrapped_dek = wrapped,
            .wrapped_len = wrapped_len,
            .kek_id = kek_id,
        };
        e = meta_version_commit(r->app->meta, &nv, &version);
        json_decref(parents);
        meta_version_clear(&src);
        if (e != ERR_OK)
            blob_remove(r->app->blobs, up.blob_id);
    }
    char principal[META_PRINCIPAL_MAX], identity[META_PRINCIPAL_MAX];
    promote_identity(r, principal, sizeof(principal), identity, sizeof(identity));
    if (e != ERR_OK) {
        const char *why = e == ERR_CONFLICT    ? "the target exists with another kind"
                          : e == ERR_INTEGRITY ? "the source content failed verification"
                          : e == ERR_NOT_FOUND ? "the source version no longer exists"
                                               : "storing the promoted version failed";
        meta_promotion_transition(r->app->meta, p->id, "completing", "failed", principal, why, 0);
        json_t *detail =
            json_pack("{s:I, s:s}", "request_id", (json_int_t)p->id, "source", p->source_path);
        struct record rec = {.action = "artifact:Promote",
                             .resource = p->target_path,
                             .allow = 0,
                             .reason = why,
                             .status = err_info(e)->http_status,
                             .detail = detail};
        enum err re = api_record(r, &rec);
        json_decref(detail);
        if (re != ERR_OK)
            return re;
        return http_fail(r, e == ERR_NOT_FOUND ? ERR_CONFLICT : e, "promotion %lld failed: %s",
                         (long long)p->id, why);
    }
    p->target_version = version;
    meta_promotion_transition(r->app->meta, p->id, "completing", "completed", principal, NULL,
                              version);
    char ref[REF_MAX + 1], source[REF_MAX + 1];
    snprintf(ref, sizeof(ref), "%s@%llu", p->target_path, (unsigned long long)version);
    snprintf(source, sizeof(source), "%s@%llu", p->source_path,
             (unsigned long long)p->source_version);
    json_t *detail = json_pack("{s:I, s:s, s:s}", "request_id", (json_int_t)p->id, "source", source,
                               "requested_by", p->requested_by);
    struct record rec = {.action = "artifact:Promote",
                         .resource = ref,
                         .allow = 1,
                         .reason = "promotion completed",
                         .status = 201,
                         .sha256 = p->sha256,
                         .detail = detail};
    e = api_record(r, &rec);
    json_decref(detail);
    log_info("promote %s: request %lld completed: %s -> %s", r->request_id, (long long)p->id,
             source, ref);
    return e;
}

static enum err promote_parse_body(struct request *r, const char **ref, const char **to,
                                   const char **message)
{
    static const char *const fields[] = {"ref", "to", "message", NULL};
    enum err e = api_args_fields(r, fields);
    if (e != ERR_OK)
        return e;
    *ref = json_string_value(json_object_get(r->body_json, "ref"));
    *to = json_string_value(json_object_get(r->body_json, "to"));
    *message = json_string_value(json_object_get(r->body_json, "message"));
    if (*ref == NULL || *to == NULL)
        return http_fail(r, ERR_INVALID, "give ref (PATH@VERSION) and to (an environment)");
    if (json_object_get(r->body_json, "message") != NULL &&
        (*message == NULL || strlen(*message) > PROMOTE_MESSAGE_MAX))
        return http_fail(r, ERR_INVALID, "message must be text of at most %d bytes",
                         PROMOTE_MESSAGE_MAX);
    for (const char *p = *message; p != NULL && *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            return http_fail(r, ERR_INVALID, "message must be printable text");
    }
    return ERR_OK;
}

static enum err promote_respond(struct request *r, int64_t id, int status)
{
    json_t *o = NULL;
    if (meta_promotion_json(r->app->meta, id, &o) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    r->json = o;
    r->status = status;
    return ERR_OK;
}

/* Builds the request for source v into env to, checking the gate and env. */
static enum err promote_prepare(struct request *r, const struct meta_version *v,
                                const struct artifact_path *src, const char *to,
                                struct meta_promotion *p, struct artifact_path *target)
{
    const struct env_settings *env = env_find(r->app->envs, to);
    if (env == NULL)
        return http_fail(r, ERR_INVALID, "unknown environment '%.32s'; configured: see %s", to,
                         ENV_CONFIG_FILE);
    if (strcmp(src->env, to) == 0)
        return http_fail(r, ERR_INVALID, "%s is already in %s", v->path, to);
    char tpath[PATH_FULL_MAX + 64], why[200];
    snprintf(tpath, sizeof(tpath), "%s/%s/%s", src->project, to, src->name);
    if (path_parse(tpath, NULL, target, why, sizeof(why)) != ERR_OK)
        return http_fail(r, ERR_INVALID, "invalid target: %s", why);
    struct gate_resource res;
    promote_facts(v, target, &res);
    enum err e = gate_check(r, "artifact:Promote", target->full, &res);
    if (e == ERR_OK)
        e = api_env_check_write(r, to, target->full, "artifact:Promote");
    if (e != ERR_OK)
        return e;
    memset(p, 0, sizeof(*p));
    snprintf(p->source_path, sizeof(p->source_path), "%s", v->path);
    p->source_version = v->version;
    snprintf(p->target_path, sizeof(p->target_path), "%s", target->full);
    snprintf(p->target_env, sizeof(p->target_env), "%s", to);
    snprintf(p->sha256, sizeof(p->sha256), "%s", v->sha256);
    promote_identity(r, p->requested_by, sizeof(p->requested_by), p->requester,
                     sizeof(p->requester));
    p->approvals_required = env->approvals_required;
    p->created_at = (int64_t)time(NULL);
    p->expires_at = p->created_at + r->app->envs->request_lifetime;
    snprintf(p->state, sizeof(p->state), "%s",
             p->approvals_required > 0 ? "pending" : "completing");
    return ERR_OK;
}

enum err api_promote(struct request *r)
{
    const char *text = NULL, *to = NULL, *message = NULL;
    enum err e = promote_parse_body(r, &text, &to, &message);
    if (e != ERR_OK)
        return e;
    struct artifact_ref ref;
    struct meta_version v;
    char why[200], canon[REF_MAX + 1];
    if (ref_parse(text, NULL, &ref, why, sizeof(why)) != ERR_OK)
        return http_fail(r, ERR_INVALID, "invalid reference: %s", why);
    e = meta_version_get(r->app->meta, &ref, &v);
    if (e == ERR_OK && v.deleted) {
        meta_version_clear(&v);
        e = ERR_NOT_FOUND;
    }
    if (e != ERR_OK && e != ERR_NOT_FOUND)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    struct gate_resource res;
    if (e == ERR_OK) {
        promote_facts(&v, &ref.path, &res);
        res.version = v.version;
        snprintf(canon, sizeof(canon), "%s@%llu", v.path, (unsigned long long)v.version);
        if (gate_check(r, "artifact:Read", canon, &res) != ERR_OK) {
            meta_version_clear(&v);
            e = ERR_NOT_FOUND;
        }
    } else {
        struct record rec = {.action = "artifact:Promote",
                             .resource = text,
                             .allow = 0,
                             .reason = "not found",
                             .status = 404};
        if (api_record(r, &rec) != ERR_OK)
            return ERR_UNAVAILABLE;
    }
    if (e == ERR_NOT_FOUND)
        return http_fail(r, ERR_NOT_FOUND, "%s not found (or not visible to you)", text);
    struct meta_promotion p;
    struct artifact_path target;
    e = promote_prepare(r, &v, &ref.path, to, &p, &target);
    meta_version_clear(&v);
    if (e != ERR_OK)
        return e;
    if (message != NULL)
        snprintf(p.message, sizeof(p.message), "%s", message);
    int64_t existing = 0;
    meta_promotion_expire(r->app->meta, p.created_at);
    if (meta_promotion_find_pending(r->app->meta, p.source_path, p.source_version, p.target_path,
                                    &existing) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    if (existing > 0)
        return http_fail(r, ERR_CONFLICT,
                         "request %lld already asks for this promotion; see "
                         "'coffer requests'",
                         (long long)existing);
    if (meta_promotion_create(r->app->meta, &p, &p.id) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "cannot store the request right now");
    json_t *detail =
        json_pack("{s:I, s:s, s:s, s:i}", "request_id", (json_int_t)p.id, "source", canon, "to",
                  p.target_env, "approvals_required", p.approvals_required);
    struct record rec = {.action = "artifact:Promote",
                         .resource = p.target_path,
                         .allow = 1,
                         .reason = p.approvals_required > 0 ? "promotion requested"
                                                            : "promotion needs no approval",
                         .status = p.approvals_required > 0 ? 202 : 201,
                         .sha256 = p.sha256,
                         .detail = detail};
    e = api_record(r, &rec);
    json_decref(detail);
    if (e != ERR_OK) {
        meta_promotion_transition(r->app->meta, p.id, p.state, "failed", "system:audit-failure",
                                  "the audit log could not be written", 0);
        return e;
    }
    if (p.approvals_required == 0 && (e = promote_complete(r, &p)) != ERR_OK)
        return e;
    return promote_respond(r, p.id, p.approvals_required > 0 ? 202 : 201);
}

enum err api_promotion_list(struct request *r)
{
    int want_all = api_args_flag(r, "all");
    meta_promotion_expire(r->app->meta, (int64_t)time(NULL));
    json_t *list = NULL;
    if (meta_promotion_list(r->app->meta, want_all, &list) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    char principal[META_PRINCIPAL_MAX], identity[META_PRINCIPAL_MAX];
    promote_identity(r, principal, sizeof(principal), identity, sizeof(identity));
    json_t *visible = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        /* Shown to the requester and to those who may read the source. */
        const char *src = json_string_value(json_object_get(item, "source"));
        uint64_t ver = (uint64_t)json_integer_value(json_object_get(item, "source_version"));
        int show = strcmp(json_string_value(json_object_get(item, "requester")), identity) == 0;
        struct meta_version v;
        struct artifact_path sp;
        if (!show && path_parse(src, NULL, &sp, NULL, 0) == ERR_OK &&
            promote_source(r, src, ver, &v) == ERR_OK) {
            struct gate_resource res;
            promote_facts(&v, &sp, &res);
            res.version = ver;
            char canon[REF_MAX + 1];
            snprintf(canon, sizeof(canon), "%s@%llu", src, (unsigned long long)ver);
            show = gate_allows(r, "artifact:Read", canon, &res);
            meta_version_clear(&v);
        }
        if (show)
            json_array_append(visible, item);
    }
    json_decref(list);
    json_t *detail = json_pack("{s:I}", "shown", (json_int_t)json_array_size(visible));
    struct record rec = {.action = "artifact:List",
                         .resource = "promotions",
                         .allow = 1,
                         .reason = "promotion requests filtered by policy and clearance",
                         .status = 200,
                         .detail = detail};
    enum err e = api_record(r, &rec);
    json_decref(detail);
    if (e != ERR_OK) {
        json_decref(visible);
        return e;
    }
    r->json = json_pack("{s:o}", "requests", visible);
    return ERR_OK;
}

static enum err promote_refuse(struct request *r, const struct meta_promotion *p, enum err code,
                               const char *reason, const char *msg)
{
    json_t *detail = json_pack("{s:I}", "request_id", (json_int_t)p->id);
    struct record rec = {.action = "artifact:Approve",
                         .resource = p->target_path,
                         .allow = 0,
                         .reason = reason,
                         .status = err_info(code)->http_status,
                         .detail = detail};
    enum err e = api_record(r, &rec);
    json_decref(detail);
    if (e != ERR_OK)
        return e;
    return http_fail(r, code, "%s", msg);
}

/* Approval or rejection of request p by the caller, after the gate. */
static enum err promote_decide(struct request *r, struct meta_promotion *p, int approve,
                               const char *reason)
{
    char principal[META_PRINCIPAL_MAX], identity[META_PRINCIPAL_MAX], msg[HTTP_ERRMSG_MAX];
    promote_identity(r, principal, sizeof(principal), identity, sizeof(identity));
    if (strcmp(p->state, "pending") != 0) {
        snprintf(msg, sizeof(msg), "request %lld is %s, not pending", (long long)p->id, p->state);
        return promote_refuse(r, p, ERR_CONFLICT, "request not pending", msg);
    }
    /* Two-person rule: never one's own request, whatever one's roles. */
    if (strcmp(identity, p->requester) == 0 || strcmp(principal, p->requested_by) == 0)
        return promote_refuse(r, p, ERR_FORBIDDEN, "requester cannot decide own request",
                              "you requested this promotion; another principal holding "
                              "artifact:Approve must decide it");
    json_t *detail = json_pack("{s:I, s:s}", "request_id", (json_int_t)p->id, "decision",
                               approve ? "approve" : "reject");
    int count = 0;
    enum err e;
    if (!approve) {
        e = meta_promotion_transition(r->app->meta, p->id, "pending", "rejected", principal,
                                      reason != NULL ? reason : "", 0);
    } else {
        e = meta_promotion_approve(r->app->meta, p->id, identity, principal, &count);
        json_object_set_new(detail, "approvals", json_integer(count));
        json_object_set_new(detail, "approvals_required", json_integer(p->approvals_required));
    }
    if (e == ERR_CONFLICT) {
        json_decref(detail);
        snprintf(msg, sizeof(msg),
                 approve ? "you already approved request %lld"
                         : "request %lld is no longer pending",
                 (long long)p->id);
        return promote_refuse(r, p, ERR_CONFLICT, approve ? "duplicate approval" : "not pending",
                              msg);
    }
    if (e != ERR_OK) {
        json_decref(detail);
        return http_fail(r, ERR_UNAVAILABLE, "cannot record the decision right now");
    }
    if (reason != NULL)
        json_object_set_new(detail, "reason", json_string(reason));
    struct record rec = {.action = "artifact:Approve",
                         .resource = p->target_path,
                         .allow = 1,
                         .reason = approve ? "promotion approved" : "promotion rejected",
                         .status = 200,
                         .detail = detail};
    e = api_record(r, &rec);
    json_decref(detail);
    if (e != ERR_OK)
        return e;
    /* Only the approval that moves the request out of pending completes it. */
    if (approve && count >= p->approvals_required &&
        meta_promotion_transition(r->app->meta, p->id, "pending", "completing", principal, NULL,
                                  0) == ERR_OK &&
        (e = promote_complete(r, p)) != ERR_OK)
        return e;
    return promote_respond(r, p->id, 200);
}

enum err api_promotion_decide(struct request *r)
{
    char *end = NULL;
    long long id = strtoll(r->param, &end, 10);
    int approve = end != NULL && strcmp(end, "/approve") == 0;
    if (end == r->param || id <= 0 || (!approve && strcmp(end, "/reject") != 0))
        return http_fail(r, ERR_INVALID, "use POST /v1/promotions/ID/approve or .../reject");
    json_t *rj = json_object_get(r->body_json, "reason");
    const char *reason = json_string_value(rj);
    if ((rj != NULL && (reason == NULL || strlen(reason) > PROMOTE_MESSAGE_MAX)) ||
        json_object_size(r->body_json) > (rj != NULL ? 1u : 0u))
        return http_fail(r, ERR_INVALID, "the body takes only reason (text of at most %d bytes)",
                         PROMOTE_MESSAGE_MAX);
    meta_promotion_expire(r->app->meta, (int64_t)time(NULL));
    struct meta_promotion p;
    enum err e = meta_promotion_get(r->app->meta, (int64_t)id, &p);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, ERR_NOT_FOUND, "no promotion request %lld; see 'coffer requests'", id);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    struct meta_version v;
    int have_src = promote_source(r, p.source_path, p.source_version, &v) == ERR_OK;
    struct artifact_path target;
    if (path_parse(p.target_path, NULL, &target, NULL, 0) != ERR_OK) {
        if (have_src)
            meta_version_clear(&v);
        return http_fail(r, ERR_INTERNAL, "stored request has an invalid target");
    }
    struct gate_resource res;
    promote_facts(have_src ? &v : NULL, &target, &res);
    e = gate_check(r, "artifact:Approve", p.target_path, &res);
    if (have_src)
        meta_version_clear(&v);
    if (e == ERR_OK)
        e = api_env_check_write(r, target.env, p.target_path, "artifact:Approve");
    if (e != ERR_OK)
        return e;
    return promote_decide(r, &p, approve, reason);
}
