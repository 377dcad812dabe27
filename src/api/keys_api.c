/*
 * Key management endpoints (admin:Keys): status of the KEKs and of the
 * rotation worker, starting a rotation, the automatic rotation period, and
 * re-encrypting one version's content under a fresh data key.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/gate.h"
#include "api/record.h"
#include "app/environments.h"
#include "app/reencrypt.h"
#include "keys/keys.h"
#include "keys/rotate.h"
#include "meta/keys_store.h"
#include "meta/meta.h"
#include "registry/path.h"

static void keys_principal(const struct request *r, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%s", r->who.type[0] != '\0' ? r->who.type : "user", r->who.name);
}

static enum err keys_record(struct request *r, const char *resource, const char *reason, int status,
                            json_t *detail)
{
    struct record rec = {.action = "admin:Keys",
                         .resource = resource,
                         .allow = 1,
                         .reason = reason,
                         .status = status,
                         .detail = detail};
    return api_record(r, &rec);
}

enum err api_keys_status(struct request *r)
{
    enum err e = gate_check(r, "admin:Keys", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *counts = NULL, *rotations = NULL;
    if (keys_store_kek_counts(r->app->meta, &counts) != ERR_OK ||
        keys_store_rotation_list(r->app->meta, 10, &rotations) != ERR_OK) {
        json_decref(counts);
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    }
    json_t *keks = json_array();
    int64_t now = (int64_t)time(NULL);
    size_t n = keys_kek_count(r->app->keys);
    for (size_t i = 0; i < n; i++) {
        struct keys_kek_info info;
        if (keys_kek_info(r->app->keys, i, &info) != ERR_OK)
            continue;
        json_t *c = json_object_get(counts, info.id);
        json_int_t deks = json_integer_value(json_object_get(c, "deks"));
        json_int_t totp = json_integer_value(json_object_get(c, "totp"));
        json_array_append_new(keks, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "id", info.id,
                                              "state", info.current ? "current" : "retired",
                                              "created", (json_int_t)info.created, "age_seconds",
                                              (json_int_t)(now - info.created), "deks", deks,
                                              "totp_secrets", totp));
    }
    /* Keys recorded under a KEK the provider no longer has (e.g. restored from a backup). */
    json_t *orphans = json_object();
    const char *kek;
    json_t *c;
    json_object_foreach(counts, kek, c)
    {
        int known = 0;
        size_t i;
        json_t *k;
        json_array_foreach(keks, i, k)
        {
            if (strcmp(json_string_value(json_object_get(k, "id")), kek) == 0)
                known = 1;
        }
        if (!known)
            json_object_set(orphans, kek, c);
    }
    json_decref(counts);
    struct rotate_status st;
    rotate_status_get(r->app, &st);
    json_t *rot = json_pack("{s:b, s:I, s:s, s:I, s:I}", "running", st.running, "id",
                            (json_int_t)st.id, "new_kek", st.new_kek, "rewrapped",
                            (json_int_t)st.rewrapped, "period_seconds", (json_int_t)st.period);
    if (st.error[0] != '\0')
        json_object_set_new(rot, "error", json_string(st.error));
    r->json = json_pack("{s:s, s:o, s:o, s:o, s:o}", "provider", r->app->keys->name, "keks", keks,
                        "unknown_keks", orphans, "rotation", rot, "history", rotations);
    return ERR_OK;
}

enum err api_keys_rotate(struct request *r)
{
    enum err e = gate_check(r, "admin:Keys", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *body = r->body_json;
    json_t *jb = json_object_get(body, "batch"), *jp = json_object_get(body, "pause_ms");
    const char *key;
    json_t *val;
    json_object_foreach(body, key, val)
    {
        if (strcmp(key, "batch") != 0 && strcmp(key, "pause_ms") != 0)
            return http_fail(r, ERR_INVALID, "unknown field '%.40s'; use batch and pause_ms", key);
    }
    if ((jb != NULL && !json_is_integer(jb)) || (jp != NULL && !json_is_integer(jp)))
        return http_fail(r, ERR_INVALID, "batch and pause_ms must be integers");
    json_int_t batch = jb != NULL ? json_integer_value(jb) : ROTATE_BATCH_DEFAULT;
    json_int_t pause = jp != NULL ? json_integer_value(jp) : 0;
    if (batch < 1 || batch > ROTATE_BATCH_MAX || pause < 0 || pause > ROTATE_PAUSE_MAX_MS)
        return http_fail(r, ERR_INVALID, "batch must be 1..%d and pause_ms 0..%d", ROTATE_BATCH_MAX,
                         ROTATE_PAUSE_MAX_MS);
    char by[128], id[KEYS_KEK_ID_CAP];
    keys_principal(r, by, sizeof(by));
    e = rotate_start(r->app, by, (int)batch, (int)pause, id, sizeof(id));
    if (e == ERR_CONFLICT)
        return http_fail(r, e,
                         "a key rotation is already running; follow it with "
                         "'coffer keys status'");
    if (e == ERR_UNAVAILABLE)
        return http_fail(r, e, "the key provider '%s' cannot rotate from here", r->app->keys->name);
    if (e != ERR_OK)
        return http_fail(r, e, "the key rotation could not start; see the server log");
    struct rotate_status st;
    rotate_status_get(r->app, &st);
    json_t *detail = json_pack("{s:I, s:I, s:I}", "rotation", (json_int_t)st.id, "batch", batch,
                               "pause_ms", pause);
    e = keys_record(r, id, "key rotation started", 202, detail);
    json_decref(detail);
    if (e != ERR_OK)
        return e;
    r->status = 202;
    r->json =
        json_pack("{s:s, s:I, s:b}", "new_kek", id, "rotation", (json_int_t)st.id, "running", 1);
    return ERR_OK;
}

enum err api_keys_period(struct request *r)
{
    enum err e = gate_check(r, "admin:Keys", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *p = json_object_get(r->body_json, "period");
    if (!json_is_string(p) || json_object_size(r->body_json) != 1)
        return http_fail(r, ERR_INVALID, "give {\"period\": DURATION} (e.g. \"90d\") or \"off\"");
    int64_t secs = 0;
    if (strcmp(json_string_value(p), "off") != 0 &&
        (secs = env_parse_duration(json_string_value(p))) <= 0)
        return http_fail(r, ERR_INVALID, "period must be a duration such as 90d or 12h, or off");
    if (rotate_set_period(r->app, secs) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    json_t *detail = json_pack("{s:I}", "period_seconds", (json_int_t)secs);
    e = keys_record(r, "*", "automatic key rotation period set", 200, detail);
    json_decref(detail);
    if (e != ERR_OK)
        return e;
    r->json = json_pack("{s:I}", "period_seconds", (json_int_t)secs);
    return ERR_OK;
}

/* Records a refused or failed re-encryption of resource. */
static enum err keys_reencrypt_refused(struct request *r, const char *resource, const char *reason,
                                       int status)
{
    struct record rec = {.action = "admin:Keys",
                         .resource = resource,
                         .allow = 0,
                         .reason = reason,
                         .status = status};
    return api_record(r, &rec);
}

/* Finds the version named by text, erased and deleted ones included. Answers
 * the request itself (and returns its error) when there is none. */
static enum err keys_reencrypt_find(struct request *r, const char *text, struct meta_version *v)
{
    struct artifact_ref ref;
    char why[200];
    if (ref_parse(text, NULL, &ref, why, sizeof(why)) != ERR_OK)
        return http_fail(r, ERR_INVALID, "invalid reference: %s", why);
    enum err e = meta_version_get_ex(r->app->meta, &ref, 1, v);
    if (e == ERR_NOT_FOUND) {
        if ((e = keys_reencrypt_refused(r, text, "not found", 404)) != ERR_OK)
            return e;
        return http_fail(r, ERR_NOT_FOUND, "%s not found; name a version as PATH@N", text);
    }
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    return ERR_OK;
}

/* The answer to a failed re-encryption of canon, recorded. */
static enum err keys_reencrypt_failed(struct request *r, const char *canon, enum err e)
{
    const char *why = e == ERR_GONE        ? "version erased"
                      : e == ERR_CONFLICT  ? "version changed during re-encryption"
                      : e == ERR_INTEGRITY ? "content failed verification"
                                           : "re-encryption failed";
    enum err re = keys_reencrypt_refused(r, canon, why, err_info(e)->http_status);
    if (re != ERR_OK)
        return re;
    if (e == ERR_GONE)
        return http_fail(r, e,
                         "%s was erased (crypto-shredded); there is no content to "
                         "re-encrypt",
                         canon);
    if (e == ERR_CONFLICT)
        return http_fail(r, e, "%s changed while it was being re-encrypted; retry", canon);
    if (e == ERR_INTEGRITY)
        return http_fail(r, e,
                         "the stored content of %s failed verification; nothing was "
                         "changed, run 'coffer fsck'",
                         canon);
    return http_fail(r, e, "re-encrypting %s failed; nothing was changed, see the server log",
                     canon);
}

enum err api_keys_reencrypt(struct request *r)
{
    enum err e = gate_check(r, "admin:Keys", "*", NULL);
    if (e != ERR_OK)
        return e;
    const char *text = json_string_value(json_object_get(r->body_json, "ref"));
    if (text == NULL || json_object_size(r->body_json) != 1)
        return http_fail(r, ERR_INVALID, "give {\"ref\": \"PATH@N\"}, the version to re-encrypt");
    struct meta_version v;
    if ((e = keys_reencrypt_find(r, text, &v)) != ERR_OK)
        return e;
    char canon[REF_MAX + 1], sha[65];
    snprintf(canon, sizeof(canon), "%s@%llu", v.path, (unsigned long long)v.version);
    snprintf(sha, sizeof(sha), "%s", v.sha256);
    struct reencrypt_result res;
    /* Holds and locks protect content, which stays the same; erased content is gone. */
    e = v.wrapped_len == 0 ? ERR_GONE : reencrypt_version(r->app, &v, &res);
    meta_version_clear(&v);
    if (e != ERR_OK)
        return keys_reencrypt_failed(r, canon, e);
    json_t *detail = json_pack("{s:s, s:s, s:s, s:s, s:b}", "old_blob", res.old_blob, "new_blob",
                               res.new_blob, "old_kek", res.old_kek, "new_kek", res.new_kek,
                               "old_blob_removed", res.old_removed);
    struct record rec = {.action = "admin:Keys",
                         .resource = canon,
                         .allow = 1,
                         .reason = "version re-encrypted under a fresh data key",
                         .status = 200,
                         .sha256 = sha,
                         .detail = detail};
    e = api_record(r, &rec);
    if (e != ERR_OK) {
        json_decref(detail);
        return e;
    }
    json_object_set_new(detail, "ref", json_string(canon));
    json_object_set_new(detail, "sha256", json_string(sha));
    r->json = detail;
    return ERR_OK;
}
