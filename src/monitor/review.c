/*
 * review: effective access and its use; see review.h.
 */
#include "monitor/review.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit/audit.h"
#include "authn/apitoken.h"
#include "meta/access.h"
#include "meta/authn_store.h"
#include "meta/meta.h"
#include "monitor/anomaly.h"

struct review_use {
    json_t *last; /* {PRINCIPAL: {"seen": T, "actions": {ACTION: T}, "max_sens": L}} */
};

static int review_event(void *ctx, uint64_t index, const char *json, size_t len)
{
    (void)index;
    struct review_use *u = ctx;
    struct anomaly_event ev;
    json_t *holder = NULL;
    if (anomaly_event_from_json(json, len, 0, &ev, &holder) != ERR_OK)
        return 0;
    if (ev.principal != NULL && ev.allow && strncmp(ev.principal, "system:", 7) != 0) {
        json_t *p = json_object_get(u->last, ev.principal);
        if (p == NULL) {
            p = json_pack("{s:I, s:{}, s:i}", "seen", (json_int_t)0, "actions", "max_sens", -1);
            json_object_set_new(u->last, ev.principal, p);
        }
        json_object_set_new(p, "seen", json_integer(ev.time));
        json_object_set_new(json_object_get(p, "actions"), ev.action, json_integer(ev.time));
        if (ev.sensitivity > json_integer_value(json_object_get(p, "max_sens")))
            json_object_set_new(p, "max_sens", json_integer(ev.sensitivity));
    }
    json_decref(holder);
    return 0;
}

/* Adds each string of v (a string or an array of strings) to set. */
static void review_collect(json_t *v, json_t *set)
{
    if (json_is_string(v)) {
        json_object_set_new(set, json_string_value(v), json_true());
        return;
    }
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x)
    {
        if (json_is_string(x))
            json_object_set_new(set, json_string_value(x), json_true());
    }
}

static json_t *review_keys(json_t *set)
{
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v) json_array_append_new(a, json_string(k));
    return a;
}

/* Actions and resources the Allow statements of role's policies grant. */
static void review_role_grants(json_t *load, const char *role, json_t *actions, json_t *resources)
{
    json_t *pols = json_object_get(json_object_get(load, "roles"), role);
    size_t i;
    json_t *pn;
    json_array_foreach(pols, i, pn)
    {
        json_t *pol = json_object_get(json_object_get(load, "policies"), json_string_value(pn));
        const char *text = json_string_value(json_object_get(pol, "document"));
        json_t *doc = text != NULL ? json_loads(text, 0, NULL) : NULL;
        json_t *st = json_object_get(doc, "Statement");
        json_t *one = json_is_object(st) ? json_pack("[O]", st) : json_incref(st);
        size_t j;
        json_t *s;
        json_array_foreach(one, j, s)
        {
            const char *eff = json_string_value(json_object_get(s, "Effect"));
            if (eff == NULL || strcmp(eff, "Allow") != 0)
                continue;
            review_collect(json_object_get(s, "Action"), actions);
            review_collect(json_object_get(s, "Resource"), resources);
        }
        json_decref(one);
        json_decref(doc);
    }
}

static int review_privileged(json_t *actions)
{
    const char *k;
    json_t *v;
    json_object_foreach(actions, k, v)
    {
        if (strcmp(k, "*") == 0 || strncasecmp(k, "admin:", 6) == 0)
            return 1;
    }
    return 0;
}

/* Latest use by usage (one principal's {"actions":{...}}) of an action the grant allows. */
static int64_t review_last_used(json_t *usage, json_t *actions)
{
    int64_t best = 0;
    const char *a, *pat;
    json_t *t, *v;
    json_object_foreach(json_object_get(usage, "actions"), a, t)
    {
        json_object_foreach(actions, pat, v)
        {
            if (fnmatch(pat, a, FNM_CASEFOLD) == 0 && json_integer_value(t) > best)
                best = (int64_t)json_integer_value(t);
        }
    }
    return best;
}

static void review_add_principal(json_t *out_list, const char *principal, json_t *groups_of,
                                 json_t *load, json_t *usage, int64_t cutoff)
{
    json_t *grants = json_array();
    size_t i;
    json_t *b;
    int privileged = 0;
    json_array_foreach(json_object_get(load, "bindings"), i, b)
    {
        const char *role = json_string_value(json_array_get(b, 0));
        const char *who = json_string_value(json_array_get(b, 1));
        const char *scope = json_string_value(json_array_get(b, 2));
        const char *via = NULL;
        if (who != NULL && strcmp(who, principal) == 0)
            via = "direct";
        else if (who != NULL && strncmp(who, "group:", 6) == 0 &&
                 json_object_get(groups_of, who + 6) != NULL)
            via = who;
        if (via == NULL || role == NULL)
            continue;
        json_t *actions = json_object(), *resources = json_object();
        review_role_grants(load, role, actions, resources);
        int priv = review_privileged(actions);
        privileged |= priv;
        int64_t last = review_last_used(usage, actions);
        json_array_append_new(
            grants,
            json_pack("{s:s, s:s, s:s, s:o, s:o, s:b, s:o, s:b}", "role", role, "scope",
                      scope != NULL ? scope : "", "via", via, "actions", review_keys(actions),
                      "resources", review_keys(resources), "privileged", priv, "last_used",
                      last > 0 ? json_integer(last) : json_null(), "unused", last < cutoff));
        json_decref(actions);
        json_decref(resources);
    }
    json_t *p = json_pack("{s:s, s:o, s:b}", "principal", principal, "grants", grants, "privileged",
                          privileged);
    json_t *seen = json_object_get(usage, "seen");
    json_object_set_new(p, "last_seen",
                        json_integer_value(seen) > 0 ? json_integer(json_integer_value(seen))
                                                     : json_null());
    json_object_set_new(p, "max_sensitivity_used",
                        usage != NULL && json_integer_value(json_object_get(usage, "max_sens")) >= 0
                            ? json_string(meta_sensitivity_name(
                                  (int)json_integer_value(json_object_get(usage, "max_sens"))))
                            : json_null());
    json_object_set_new(p, "flags", json_array());
    json_array_append_new(out_list, p);
}

/* Groups of principal as a set {NAME: true}. */
static json_t *review_groups_of(json_t *groups, const char *principal)
{
    json_t *set = json_object();
    size_t i, j;
    json_t *g, *m;
    json_array_foreach(groups, i, g)
    {
        json_array_foreach(json_object_get(g, "members"), j, m)
        {
            if (json_is_string(m) && strcmp(json_string_value(m), principal) == 0)
                json_object_set_new(set, json_string_value(json_object_get(g, "name")),
                                    json_true());
        }
    }
    return set;
}

static void review_flag(json_t *p, const char *flag)
{
    json_array_append_new(json_object_get(p, "flags"), json_string(flag));
}

static void review_users(struct app *app, json_t *users, json_t *groups, json_t *load, json_t *last,
                         int64_t now, int64_t cutoff, json_t *list)
{
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u)
    {
        const char *name = json_string_value(json_object_get(u, "name"));
        char principal[META_NAME_MAX + 8];
        snprintf(principal, sizeof(principal), "user:%s", name);
        json_t *gs = review_groups_of(groups, principal);
        json_t *usage = json_object_get(last, principal);
        review_add_principal(list, principal, gs, load, usage, cutoff);
        json_decref(gs);
        json_t *p = json_array_get(list, json_array_size(list) - 1);
        int disabled = json_is_true(json_object_get(u, "disabled"));
        int admin = json_is_true(json_object_get(u, "admin"));
        const char *clear = json_string_value(json_object_get(u, "clearance"));
        int mfa = 0;
        struct meta_user mu;
        if (meta_user_get(app->meta, name, &mu) == ERR_OK) {
            struct meta_totp t;
            mfa = meta_totp_get(app->meta, mu.id, &t) == ERR_OK && t.confirmed;
            memset(&t, 0, sizeof(t));
            meta_user_clear(&mu);
        }
        json_object_set_new(p, "type", json_string("user"));
        json_object_set_new(p, "disabled", json_boolean(disabled));
        json_object_set_new(p, "admin", json_boolean(admin));
        json_object_set_new(p, "mfa", json_boolean(mfa));
        json_object_set_new(p, "clearance", json_string(clear != NULL ? clear : "?"));
        if (admin)
            json_object_set_new(p, "privileged", json_true());
        int priv = json_is_true(json_object_get(p, "privileged"));
        if (disabled)
            continue;
        if (priv && !mfa)
            review_flag(p, "privileged_without_mfa");
        int64_t seen = (int64_t)json_integer_value(json_object_get(p, "last_seen"));
        int64_t created = (int64_t)json_integer_value(json_object_get(u, "created_at"));
        if (seen < cutoff && created < cutoff)
            review_flag(p, "dormant");
        int lvl = meta_sensitivity_level(clear);
        const char *used = json_string_value(json_object_get(p, "max_sensitivity_used"));
        if (lvl > (used != NULL ? meta_sensitivity_level(used) : 0) && lvl > 1)
            review_flag(p, "clearance_above_use");
        size_t j;
        json_t *g;
        json_array_foreach(json_object_get(p, "grants"), j, g)
        {
            if (json_is_true(json_object_get(g, "unused"))) {
                review_flag(p, "unused_grants");
                break;
            }
        }
        (void)now;
    }
}

static void review_tokens(struct app *app, json_t *tokens, int64_t now, json_t *out)
{
    int64_t max = apitoken_max_lifetime(app);
    size_t i;
    json_t *t;
    json_array_foreach(tokens, i, t)
    {
        if (!json_is_null(json_object_get(t, "revoked_at")) &&
            json_integer_value(json_object_get(t, "revoked_at")) > 0)
            continue;
        int64_t created = (int64_t)json_integer_value(json_object_get(t, "created_at"));
        int64_t expires = (int64_t)json_integer_value(json_object_get(t, "expires_at"));
        if (expires <= now)
            continue;
        json_t *o = json_deep_copy(t);
        json_t *flags = json_array();
        if (expires - created > max)
            json_array_append_new(flags, json_string("lifetime_above_maximum"));
        if (now - created > max)
            json_array_append_new(flags, json_string("past_maximum_lifetime"));
        else if ((now - created) * 10 >= max * 8)
            json_array_append_new(flags, json_string("near_maximum_lifetime"));
        json_object_set_new(o, "flags", flags);
        json_array_append_new(out, o);
    }
}

enum err review_build(struct app *app, int unused_days, int64_t now, json_t **out)
{
    *out = NULL;
    json_t *users = NULL, *groups = NULL, *load = NULL, *tokens = NULL;
    struct review_use use = {json_object()};
    enum err e = meta_user_list(app->meta, &users);
    if (e == ERR_OK)
        e = meta_group_list(app->meta, &groups);
    if (e == ERR_OK)
        e = meta_access_load(app->meta, &load);
    if (e == ERR_OK)
        e = meta_apitoken_list(app->meta, 0, &tokens);
    if (e == ERR_OK && app->audit != NULL) {
        uint64_t size = audit_log_size(app->audit);
        uint64_t from = size > REVIEW_MAX_EVENTS ? size - REVIEW_MAX_EVENTS : 0;
        e = audit_log_iter(app->audit, from, review_event, &use);
    }
    if (e == ERR_OK) {
        int64_t cutoff = now - (int64_t)unused_days * 86400;
        json_t *list = json_array();
        review_users(app, users, groups, load, use.last, now, cutoff, list);
        /* Service accounts: the names of API tokens. */
        json_t *seen = json_object();
        size_t i;
        json_t *t;
        json_array_foreach(tokens, i, t)
        {
            const char *n = json_string_value(json_object_get(t, "name"));
            char principal[META_TOKEN_NAME_MAX + 16];
            snprintf(principal, sizeof(principal), "service:%s", n != NULL ? n : "?");
            if (json_object_get(seen, principal) != NULL)
                continue;
            json_object_set_new(seen, principal, json_true());
            json_t *gs = review_groups_of(groups, principal);
            review_add_principal(list, principal, gs, load, json_object_get(use.last, principal),
                                 cutoff);
            json_decref(gs);
            json_object_set_new(json_array_get(list, json_array_size(list) - 1), "type",
                                json_string("service"));
        }
        json_decref(seen);
        json_t *toks = json_array();
        review_tokens(app, tokens, now, toks);
        *out = json_pack("{s:I, s:i, s:o, s:o}", "generated_at", (json_int_t)now, "unused_days",
                         unused_days, "principals", list, "tokens", toks);
        if (*out == NULL)
            e = ERR_INTERNAL;
    }
    json_decref(users);
    json_decref(groups);
    json_decref(load);
    json_decref(tokens);
    json_decref(use.last);
    return e == ERR_IO ? ERR_UNAVAILABLE : e;
}
