/*
 * Key management endpoints (admin:Keys): status of the KEKs and of the
 * rotation worker, starting a rotation, the automatic rotation period.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/gate.h"
#include "api/record.h"
#include "app/environments.h"
#include "keys/keys.h"
#include "keys/rotate.h"
#include "meta/keys_store.h"

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
