#include "app/access.h"

#include <stdio.h>
#include <string.h>

#include "authz/authz.h"
#include "meta/access.h"
#include "util/log.h"

#define ACCESS_SEEDED_KEY "builtins_seeded"

enum err access_seed_builtins(struct meta *m)
{
    char value[16];
    if (meta_setting_get(m, ACCESS_SEEDED_KEY, value, sizeof(value)) == ERR_OK)
        return ERR_OK;
    size_t n = 0;
    const struct authz_builtin *b = authz_builtins(&n);
    for (size_t i = 0; i < n; i++) {
        enum err e = meta_policy_put(m, b[i].name, b[i].json, b[i].global, "system", NULL);
        if (e == ERR_OK)
            e = meta_policy_mark_builtin(m, b[i].name);
        if (e == ERR_OK && !b[i].global) {
            e = meta_role_create(m, b[i].name, 1);
            if (e == ERR_CONFLICT)
                e = ERR_OK;
            if (e == ERR_OK)
                e = meta_role_attach(m, b[i].name, b[i].name);
        }
        if (e != ERR_OK) {
            log_error("cannot store the built-in policy %s", b[i].name);
            return e;
        }
    }
    return meta_setting_set(m, ACCESS_SEEDED_KEY, "1");
}

static enum err access_fill(struct authz_builder *b, json_t *all, char *err, size_t cap)
{
    json_t *policies = json_object_get(all, "policies");
    json_t *roles = json_object_get(all, "roles");
    const char *name;
    json_t *val;
    enum err e = ERR_OK;
    json_object_foreach(roles, name, val)
    {
        if ((e = authz_builder_add_role(b, name, err, cap)) != ERR_OK)
            return e;
        size_t i;
        json_t *pn;
        json_array_foreach(val, i, pn)
        {
            json_t *p = json_object_get(policies, json_string_value(pn));
            const char *doc = json_string_value(json_object_get(p, "document"));
            if (doc == NULL || json_is_true(json_object_get(p, "global")))
                continue;
            e = authz_builder_attach(b, name, json_string_value(pn), doc, strlen(doc), err, cap);
            if (e != ERR_OK)
                return e;
        }
    }
    json_object_foreach(policies, name, val)
    {
        if (!json_is_true(json_object_get(val, "global")))
            continue;
        const char *doc = json_string_value(json_object_get(val, "document"));
        if ((e = authz_builder_add_global(b, name, doc, strlen(doc), err, cap)) != ERR_OK)
            return e;
    }
    size_t i;
    json_t *bind;
    json_array_foreach(json_object_get(all, "bindings"), i, bind)
    {
        const char *scope = json_string_value(json_array_get(bind, 2));
        e = authz_builder_bind(b, json_string_value(json_array_get(bind, 1)),
                               json_string_value(json_array_get(bind, 0)),
                               scope != NULL && scope[0] != '\0' ? scope : NULL, err, cap);
        if (e != ERR_OK)
            return e;
    }
    return ERR_OK;
}

enum err access_reload(struct meta *m, char *err, size_t cap)
{
    json_t *all = NULL;
    enum err e = meta_access_load(m, &all);
    if (e != ERR_OK) {
        snprintf(err, cap, "cannot read policies from the store");
        return e;
    }
    struct authz_builder *b = authz_builder_new();
    if (b == NULL) {
        json_decref(all);
        snprintf(err, cap, "out of memory");
        return ERR_INTERNAL;
    }
    e = access_fill(b, all, err, cap);
    json_decref(all);
    if (e != ERR_OK) {
        authz_builder_free(b);
        return e;
    }
    struct authz_snapshot *snap = NULL;
    e = authz_builder_build(b, &snap, err, cap);
    if (e != ERR_OK)
        return e;
    log_info("access policies compiled: %zu statements", authz_snapshot_statement_count(snap));
    authz_slot_set(&authz_global_slot, snap);
    return ERR_OK;
}

void access_unload(void)
{
    authz_slot_set(&authz_global_slot, NULL);
}
