/*
 * Compliance endpoints: crypto-shredding erase (artifact:Erase), legal
 * holds, retention locks and retention rules (artifact:Hold).
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
#include "app/retention.h"
#include "meta/compliance_store.h"
#include "meta/meta.h"
#include "registry/path.h"

#define ERASE_MAX_TARGETS 100000

static void comp_principal(const struct request *r, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%s", r->who.type[0] != '\0' ? r->who.type : "user", r->who.name);
}

/* Printable text of 1..max bytes. */
static int comp_text_ok(const char *s, size_t max)
{
    if (s == NULL)
        return 0;
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

/* Gate facts for a version entry of compliance_versions; p receives the parsed path. */
static void comp_facts(json_t *v, struct artifact_path *p, struct gate_resource *res, char *ref,
                       size_t ref_cap)
{
    const char *path = json_string_value(json_object_get(v, "path"));
    memset(p, 0, sizeof(*p));
    path_parse(path, NULL, p, NULL, 0);
    res->kind = json_string_value(json_object_get(v, "kind"));
    res->sensitivity = (int)json_integer_value(json_object_get(v, "sensitivity"));
    res->tags = json_object_get(v, "tags");
    res->project = p->project;
    res->env = p->env;
    res->version = (uint64_t)json_integer_value(json_object_get(v, "version"));
    snprintf(ref, ref_cap, "%s@%llu", path, (unsigned long long)res->version);
}

/* Collects the versions an erase request names into *out. */
static enum err erase_targets(struct request *r, int *single, json_t **out)
{
    json_t *body = r->body_json;
    const char *ref_s = json_string_value(json_object_get(body, "ref"));
    const char *path_s = json_string_value(json_object_get(body, "path"));
    const char *tag = json_string_value(json_object_get(body, "tag"));
    const char *prefix = json_string_value(json_object_get(body, "prefix"));
    int all = json_is_true(json_object_get(body, "all_versions"));
    char why[200];
    *single = 0;
    if ((ref_s != NULL) + (path_s != NULL) + (tag != NULL) != 1)
        return http_fail(r, ERR_INVALID,
                         "name what to erase: ref (PATH@N), path with "
                         "all_versions, or tag (KEY=VALUE)");
    if (ref_s != NULL) {
        struct artifact_ref ref;
        if (ref_parse(ref_s, NULL, &ref, why, sizeof(why)) != ERR_OK)
            return http_fail(r, ERR_INVALID, "invalid reference: %s", why);
        if (!ref.explicit_version)
            return http_fail(r, ERR_INVALID,
                             "erase needs an explicit version (PATH@N); to "
                             "erase every version use --all-versions");
        uint64_t version = ref.version;
        if (ref.kind == REF_SHA256) {
            struct meta_version v;
            if (meta_version_get(r->app->meta, &ref, &v) != ERR_OK)
                return http_fail(r, ERR_NOT_FOUND, "%s not found (or not visible to you)", ref_s);
            version = v.version;
            meta_version_clear(&v);
        }
        *single = 1;
        if (compliance_versions(r->app->meta, ref.path.full, version, NULL, NULL, NULL, out) !=
            ERR_OK)
            return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
        return ERR_OK;
    }
    if (path_s != NULL) {
        struct artifact_path p;
        if (path_parse(path_s, NULL, &p, why, sizeof(why)) != ERR_OK)
            return http_fail(r, ERR_INVALID, "invalid path: %s", why);
        if (!all)
            return http_fail(r, ERR_INVALID, "erasing every version of %s needs all_versions",
                             p.full);
        if (compliance_versions(r->app->meta, p.full, 0, NULL, NULL, NULL, out) != ERR_OK)
            return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
        return ERR_OK;
    }
    const char *eq = strchr(tag, '=');
    char key[129];
    if (eq == NULL || eq == tag || (size_t)(eq - tag) >= sizeof(key) ||
        !comp_text_ok(eq + 1, 256) || strchr(tag, '"') != NULL)
        return http_fail(r, ERR_INVALID, "tag must be KEY=VALUE");
    memcpy(key, tag, (size_t)(eq - tag));
    key[eq - tag] = '\0';
    if (prefix != NULL && !compliance_pattern_valid(prefix))
        return http_fail(r, ERR_INVALID, "invalid prefix pattern");
    if (compliance_versions(r->app->meta, NULL, 0, key, eq + 1, prefix, out) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    return ERR_OK;
}

enum err api_erase(struct request *r)
{
    static const char *const fields[] = {"ref",    "path",   "all_versions", "tag",
                                         "prefix", "reason", "dry_run",      NULL};
    enum err e = api_args_fields(r, fields);
    if (e != ERR_OK)
        return e;
    const char *reason = json_string_value(json_object_get(r->body_json, "reason"));
    int dry = json_is_true(json_object_get(r->body_json, "dry_run"));
    if (!comp_text_ok(reason, COMPLIANCE_REASON_MAX))
        return http_fail(r, ERR_INVALID, "erase needs a reason (--reason TEXT, at most %d bytes)",
                         COMPLIANCE_REASON_MAX);
    int single = 0;
    json_t *all = NULL;
    if ((e = erase_targets(r, &single, &all)) != ERR_OK)
        return e;
    json_t *targets = json_array(), *gone = json_array(), *blocked = json_array();
    size_t i;
    json_t *v;
    int64_t now = (int64_t)time(NULL);
    if (json_array_size(all) > ERASE_MAX_TARGETS)
        e = http_fail(r, ERR_TOO_LARGE, "more than %d versions; narrow the selection",
                      ERASE_MAX_TARGETS);
    json_array_foreach(all, i, v)
    {
        if (e != ERR_OK)
            break;
        struct artifact_path p;
        struct gate_resource res;
        char ref[REF_MAX + 32], why[300];
        comp_facts(v, &p, &res, ref, sizeof(ref));
        /* Those who may not read a version do not learn that it exists. */
        if (!gate_allows(r, "artifact:Read", ref, &res))
            continue;
        if ((e = gate_check(r, "artifact:Erase", ref, &res)) != ERR_OK)
            break;
        if (json_is_true(json_object_get(v, "erased"))) {
            json_array_append_new(gone, json_string(ref));
            continue;
        }
        enum err b = compliance_blocked(r->app->meta, p.full, now, why, sizeof(why));
        if (b == ERR_CONFLICT)
            json_array_append_new(blocked, json_pack("{s:s, s:s}", "ref", ref, "why", why));
        else if (b != ERR_OK)
            e = http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
        json_array_append(targets, v);
    }
    if (e == ERR_OK && single && json_array_size(targets) + json_array_size(gone) == 0)
        e = http_fail(r, ERR_NOT_FOUND, "%s not found (or not visible to you)",
                      json_string_value(json_object_get(r->body_json, "ref")));
    if (e == ERR_OK && single && json_array_size(gone) > 0)
        e = http_fail(r, ERR_GONE, "%s was already erased",
                      json_string_value(json_array_get(gone, 0)));
    if (e == ERR_OK && !dry && json_array_size(blocked) > 0)
        e = http_fail(r, ERR_CONFLICT, "%s; nothing was erased",
                      json_string_value(json_object_get(json_array_get(blocked, 0), "why")));
    json_t *done = json_array();
    char by[128];
    comp_principal(r, by, sizeof(by));
    json_array_foreach(targets, i, v)
    {
        if (e != ERR_OK)
            break;
        struct artifact_path p;
        struct gate_resource res;
        char ref[REF_MAX + 32];
        comp_facts(v, &p, &res, ref, sizeof(ref));
        json_t *item = json_pack("{s:s, s:s, s:O}", "ref", ref, "sha256",
                                 json_string_value(json_object_get(v, "sha256")), "size",
                                 json_object_get(v, "size"));
        if (dry) {
            json_array_append_new(done, item);
            continue;
        }
        int removed = 0;
        enum err x = retention_erase_version(r->app, v, by, reason, &removed);
        if (x == ERR_GONE || x == ERR_NOT_FOUND) {
            json_decref(item);
            continue;
        }
        if (x != ERR_OK) {
            json_decref(item);
            e = http_fail(r, ERR_UNAVAILABLE,
                          "erasing %s failed; versions listed before it "
                          "were erased, retry for the rest",
                          ref);
            break;
        }
        json_object_set_new(item, "blob_removed", json_boolean(removed));
        json_t *detail = json_pack("{s:s, s:b}", "reason", reason, "blob_removed", removed);
        struct record rec = {.action = "artifact:Erase",
                             .resource = ref,
                             .allow = 1,
                             .reason = "version crypto-shredded",
                             .status = 200,
                             .bytes = (int64_t)json_integer_value(json_object_get(v, "size")),
                             .sha256 = json_string_value(json_object_get(v, "sha256")),
                             .detail = detail};
        e = api_record(r, &rec);
        json_decref(detail);
        json_array_append_new(done, item);
    }
    if (e == ERR_OK)
        r->json = json_pack("{s:b, s:s, s:O, s:O, s:O}", "dry_run", dry, "reason", reason,
                            dry ? "would_erase" : "erased", done, "already_erased", gone, "blocked",
                            blocked);
    json_decref(done);
    json_decref(all);
    json_decref(targets);
    json_decref(gone);
    json_decref(blocked);
    return e;
}

/* ---------------------------------------------------------------- holds */

/* Checks artifact:Hold on a pattern (a path or prefix with a final star). */
static enum err comp_hold_gate(struct request *r, const char *pattern)
{
    if (!compliance_pattern_valid(pattern))
        return http_fail(r, ERR_INVALID, "give an artifact path or a prefix ending in '*'");
    struct artifact_path p;
    struct gate_resource res = {NULL, -1, NULL, NULL, NULL, 0};
    if (path_parse(pattern, NULL, &p, NULL, 0) == ERR_OK) {
        res.project = p.project;
        res.env = p.env;
    }
    return gate_check(r, "artifact:Hold", pattern, &res);
}

static enum err comp_changed(struct request *r, const char *resource, const char *reason,
                             json_t *detail)
{
    return api_record_change(r, "artifact:Hold", resource, reason, detail);
}

enum err api_legal_hold_list(struct request *r)
{
    enum err e = gate_check(r, "artifact:Hold", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *holds = NULL, *locks = NULL;
    if (compliance_hold_list(r->app->meta, &holds) != ERR_OK ||
        compliance_lock_list(r->app->meta, &locks) != ERR_OK) {
        json_decref(holds);
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    }
    r->json = json_pack("{s:o, s:o}", "holds", holds, "locks", locks);
    return ERR_OK;
}

enum err api_legal_hold_set(struct request *r)
{
    static const char *const fields[] = {"path", "reason", NULL};
    enum err e = api_args_fields(r, fields);
    const char *path = json_string_value(json_object_get(r->body_json, "path"));
    const char *reason = json_string_value(json_object_get(r->body_json, "reason"));
    if (e != ERR_OK)
        return e;
    if (path == NULL)
        return http_fail(r, ERR_INVALID, "give the path to hold");
    if (reason == NULL)
        reason = "legal hold";
    if (!comp_text_ok(reason, COMPLIANCE_REASON_MAX))
        return http_fail(r, ERR_INVALID, "reason must be printable text");
    if ((e = comp_hold_gate(r, path)) != ERR_OK)
        return e;
    char by[128];
    comp_principal(r, by, sizeof(by));
    e = compliance_hold_set(r->app->meta, path, reason, by);
    if (e == ERR_CONFLICT)
        return http_fail(r, e, "%s is already under legal hold", path);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    json_t *detail = json_pack("{s:s}", "reason", reason);
    e = comp_changed(r, path, "legal hold set", detail);
    json_decref(detail);
    if (e == ERR_OK)
        r->json = json_pack("{s:s, s:s, s:b}", "path", path, "reason", reason, "held", 1);
    return e;
}

enum err api_legal_hold_clear(struct request *r)
{
    const char *path = r->param;
    enum err e = comp_hold_gate(r, path);
    if (e != ERR_OK)
        return e;
    e = compliance_hold_clear(r->app->meta, path);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, e,
                         "%s is not under legal hold (clear it by the exact path it was "
                         "set on)",
                         path);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    if ((e = comp_changed(r, path, "legal hold cleared", NULL)) == ERR_OK)
        r->json = json_pack("{s:s, s:b}", "path", path, "held", 0);
    return e;
}

/* ------------------------------------------------------- retention locks */

enum err api_lock_set(struct request *r)
{
    static const char *const fields[] = {"path", "mode", "until", "for", NULL};
    enum err e = api_args_fields(r, fields);
    json_t *body = r->body_json;
    const char *path = json_string_value(json_object_get(body, "path"));
    const char *mode = json_string_value(json_object_get(body, "mode"));
    json_t *until_j = json_object_get(body, "until");
    const char *dur = json_string_value(json_object_get(body, "for"));
    if (e != ERR_OK)
        return e;
    if (mode == NULL)
        mode = "governance";
    if (path == NULL || (strcmp(mode, "governance") != 0 && strcmp(mode, "compliance") != 0))
        return http_fail(r, ERR_INVALID, "give path and mode governance or compliance");
    int64_t now = (int64_t)time(NULL), until = 0;
    if (json_is_integer(until_j) && dur == NULL) {
        until = (int64_t)json_integer_value(until_j);
    } else if (until_j == NULL && dur != NULL) {
        int64_t secs = env_parse_duration(dur);
        if (secs <= 0)
            return http_fail(r, ERR_INVALID, "for must be a duration such as 365d");
        until = now + secs;
    } else {
        return http_fail(r, ERR_INVALID, "give either until (unix time) or for (a duration)");
    }
    if (until <= now)
        return http_fail(r, ERR_INVALID, "the lock must end in the future");
    if ((e = comp_hold_gate(r, path)) != ERR_OK)
        return e;
    char by[128];
    comp_principal(r, by, sizeof(by));
    int64_t current = 0;
    e = compliance_lock_set(r->app->meta, path, mode, until, by, &current);
    if (e == ERR_CONFLICT) {
        json_t *detail = json_pack("{s:s, s:I, s:I}", "mode", mode, "until", (json_int_t)until,
                                   "locked_until", (json_int_t)current);
        struct record rec = {.action = "artifact:Hold",
                             .resource = path,
                             .allow = 0,
                             .reason = "refused: a compliance-mode lock cannot be shortened",
                             .status = 409,
                             .detail = detail};
        enum err re = api_record(r, &rec);
        json_decref(detail);
        if (re != ERR_OK)
            return re;
        return http_fail(r, e,
                         "%s has a compliance-mode retention lock until %lld that nobody "
                         "can shorten or weaken; only a later date is accepted",
                         path, (long long)current);
    }
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    json_t *detail = json_pack("{s:s, s:I}", "mode", mode, "until", (json_int_t)until);
    e = comp_changed(r, path, "retention lock set", detail);
    json_decref(detail);
    if (e == ERR_OK)
        r->json =
            json_pack("{s:s, s:s, s:I}", "path", path, "mode", mode, "until", (json_int_t)until);
    return e;
}

enum err api_lock_clear(struct request *r)
{
    const char *path = r->param;
    enum err e = comp_hold_gate(r, path);
    if (e != ERR_OK)
        return e;
    e = compliance_lock_clear(r->app->meta, path, (int64_t)time(NULL));
    if (e == ERR_CONFLICT)
        return http_fail(r, e,
                         "%s has an unexpired compliance-mode retention lock; it cannot be "
                         "removed",
                         path);
    if (e == ERR_NOT_FOUND)
        return http_fail(r, e, "%s has no retention lock", path);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    if ((e = comp_changed(r, path, "retention lock removed", NULL)) == ERR_OK)
        r->json = json_pack("{s:s, s:b}", "path", path, "locked", 0);
    return e;
}

/* ------------------------------------------------------- retention rules */

enum err api_retention_list(struct request *r)
{
    enum err e = gate_check(r, "artifact:Hold", "*", NULL);
    if (e != ERR_OK)
        return e;
    json_t *rules = NULL;
    if (compliance_rule_list(r->app->meta, &rules) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    r->json = json_pack("{s:o}", "rules", rules);
    return ERR_OK;
}

enum err api_retention_add(struct request *r)
{
    static const char *const fields[] = {"scope", "after", "kind", "tag", "action", NULL};
    enum err e = api_args_fields(r, fields);
    if (e != ERR_OK)
        return e;
    json_t *body = r->body_json;
    struct compliance_rule rule;
    memset(&rule, 0, sizeof(rule));
    const char *scope = json_string_value(json_object_get(body, "scope"));
    const char *after = json_string_value(json_object_get(body, "after"));
    const char *kind = json_string_value(json_object_get(body, "kind"));
    const char *tag = json_string_value(json_object_get(body, "tag"));
    const char *action = json_string_value(json_object_get(body, "action"));
    if (scope == NULL || after == NULL)
        return http_fail(r, ERR_INVALID, "give scope (a path or prefix*) and after (a duration)");
    if ((rule.after_seconds = env_parse_duration(after)) <= 0)
        return http_fail(r, ERR_INVALID, "after must be a duration such as 365d");
    if (action == NULL)
        action = "erase";
    if (strcmp(action, "erase") != 0 && strcmp(action, "delete") != 0)
        return http_fail(r, ERR_INVALID, "action must be erase or delete");
    if (kind != NULL && !meta_kind_valid(kind))
        return http_fail(r, ERR_INVALID, "unknown kind");
    if (tag != NULL) {
        const char *eq = strchr(tag, '=');
        if (eq == NULL || eq == tag || (size_t)(eq - tag) >= sizeof(rule.tag_key) ||
            strlen(eq + 1) >= sizeof(rule.tag_value) || strchr(tag, '"') != NULL)
            return http_fail(r, ERR_INVALID, "tag must be KEY=VALUE");
        memcpy(rule.tag_key, tag, (size_t)(eq - tag));
        snprintf(rule.tag_value, sizeof(rule.tag_value), "%s", eq + 1);
    }
    if ((e = comp_hold_gate(r, scope)) != ERR_OK)
        return e;
    snprintf(rule.scope, sizeof(rule.scope), "%s", scope);
    snprintf(rule.kind, sizeof(rule.kind), "%s", kind != NULL ? kind : "");
    snprintf(rule.action, sizeof(rule.action), "%s", action);
    char by[128];
    comp_principal(r, by, sizeof(by));
    int64_t id = 0;
    if (compliance_rule_add(r->app->meta, &rule, by, &id) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    json_t *detail =
        json_pack("{s:I, s:I, s:s, s:s?, s:s?}", "rule", (json_int_t)id, "after_seconds",
                  (json_int_t)rule.after_seconds, "action", action, "kind", kind, "tag", tag);
    e = comp_changed(r, scope, "retention rule added", detail);
    json_decref(detail);
    if (e == ERR_OK) {
        r->status = 201;
        r->json = json_pack("{s:I, s:s, s:I, s:s}", "id", (json_int_t)id, "scope", scope,
                            "after_seconds", (json_int_t)rule.after_seconds, "action", action);
    }
    return e;
}

enum err api_retention_delete(struct request *r)
{
    long long id = 0;
    enum err e = api_args_id(r, "give the numeric id of the rule (coffer retention ls)", &id);
    if (e != ERR_OK)
        return e;
    json_t *rules = NULL;
    if (compliance_rule_list(r->app->meta, &rules) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable; retry later");
    const char *scope = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(rules, i, o)
    {
        if (json_integer_value(json_object_get(o, "id")) == id)
            scope = json_string_value(json_object_get(o, "scope"));
    }
    char res[COMPLIANCE_PATTERN_MAX + 1];
    snprintf(res, sizeof(res), "%s", scope != NULL ? scope : "*");
    json_decref(rules);
    e = comp_hold_gate(r, res);
    if (e != ERR_OK)
        return e;
    if (scope == NULL || compliance_rule_delete(r->app->meta, id) != ERR_OK)
        return http_fail(r, ERR_NOT_FOUND, "no retention rule %lld", id);
    json_t *detail = json_pack("{s:I}", "rule", (json_int_t)id);
    e = comp_changed(r, res, "retention rule removed", detail);
    json_decref(detail);
    if (e == ERR_OK)
        r->json = json_pack("{s:I, s:b}", "id", (json_int_t)id, "deleted", 1);
    return e;
}

enum err api_retention_run(struct request *r)
{
    static const char *const fields[] = {"dry_run", NULL};
    enum err e = api_args_fields(r, fields);
    if (e != ERR_OK || (e = gate_check(r, "artifact:Hold", "*", NULL)) != ERR_OK)
        return e;
    int dry = json_is_true(json_object_get(r->body_json, "dry_run"));
    json_t *report = NULL;
    if (retention_run(r->app, dry, &report) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "the retention run failed; see the server log");
    json_t *detail = json_pack("{s:b, s:I}", "dry_run", dry, "applied",
                               (json_int_t)json_array_size(json_object_get(report, "applied")));
    e = comp_changed(r, "*", dry ? "retention dry run" : "retention run", detail);
    json_decref(detail);
    if (e != ERR_OK) {
        json_decref(report);
        return e;
    }
    r->json = report;
    return ERR_OK;
}
