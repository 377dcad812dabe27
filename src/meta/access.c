/*
 * Policies, roles, bindings and groups in SQLite.
 */
#include "meta/access.h"

#include <stdio.h>
#include <string.h>

#include "meta/meta_int.h"

typedef void (*access_row_fn)(sqlite3_stmt *st, void *ctx);

/* Runs one statement with text parameters (NULL binds SQL NULL), calling
 * row for each result row. Sets *changes when given. Caller holds no lock. */
static enum err access_run_locked(struct meta *m, const char *sql, const char *const *params, int n,
                                  access_row_fn row, void *ctx, int *changes)
{
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st == NULL)
        return ERR_IO;
    for (int i = 0; i < n; i++) {
        if (params[i] != NULL)
            sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_STATIC);
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (row != NULL)
            row(st, ctx);
    }
    sqlite3_finalize(st);
    if (changes != NULL)
        *changes = sqlite3_changes(m->w.db);
    if (rc == SQLITE_CONSTRAINT)
        return ERR_CONFLICT;
    return rc == SQLITE_DONE ? ERR_OK : ERR_IO;
}

static enum err access_run(struct meta *m, const char *sql, const char *const *params, int n,
                           access_row_fn row, void *ctx, int *changes)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = access_run_locked(m, sql, params, n, row, ctx, changes);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t != NULL ? (const char *)t : "";
}

static void row_append_text(sqlite3_stmt *st, void *ctx)
{
    json_array_append_new(ctx, json_string(col_text(st, 0)));
}

/* Runs sql, which selects at most one row by one text parameter, and hands
 * the value row builds from it to *out (the caller's reference).
 * ERR_NOT_FOUND when there is no row. */
static enum err access_get_one(struct meta *m, const char *sql, const char *param,
                               access_row_fn row, json_t **out)
{
    const char *p[] = {param};
    json_t *arr = json_array();
    enum err e = access_run(m, sql, p, 1, row, arr, NULL);
    if (e == ERR_OK && json_array_size(arr) == 0)
        e = ERR_NOT_FOUND;
    if (e == ERR_OK)
        *out = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return e;
}

/* ------------------------------------------------------------- policies */

enum err meta_policy_put(struct meta *m, const char *name, const char *doc, int global,
                         const char *by, int *created)
{
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)meta_now());
    const char *params[] = {name, doc, global ? "1" : "0", now, by};
    pthread_mutex_lock(&m->w.lock);
    int exists = 0;
    const char *p1[] = {name};
    json_t *found = json_array();
    enum err e = access_run_locked(m, "SELECT name FROM policies WHERE name=?", p1, 1,
                                   row_append_text, found, NULL);
    exists = json_array_size(found) > 0;
    json_decref(found);
    if (e == ERR_OK)
        e = access_run_locked(m,
                              exists ? "UPDATE policies SET document=?2, global=?3, updated_at=?4, "
                                       "updated_by=?5 WHERE name=?1"
                                     : "INSERT INTO policies(name, document, global, updated_at, "
                                       "updated_by) VALUES(?1,?2,?3,?4,?5)",
                              params, 5, NULL, NULL, NULL);
    pthread_mutex_unlock(&m->w.lock);
    if (created != NULL)
        *created = !exists;
    return e;
}

static void row_policy(sqlite3_stmt *st, void *ctx)
{
    json_t *o =
        json_pack("{s:s, s:b, s:b, s:I, s:s}", "name", col_text(st, 0), "global",
                  sqlite3_column_int(st, 2), "builtin", sqlite3_column_int(st, 3), "updated_at",
                  (json_int_t)sqlite3_column_int64(st, 4), "updated_by", col_text(st, 5));
    json_t *doc = meta_column_json(st, 1);
    json_object_set_new(o, "document", doc != NULL ? doc : json_null());
    json_array_append_new(ctx, o);
}

static enum err access_policy_roles(struct meta *m, json_t *policy)
{
    const char *p[] = {json_string_value(json_object_get(policy, "name"))};
    json_t *roles = json_array();
    enum err e = access_run(m, "SELECT role FROM role_policies WHERE policy=? ORDER BY role", p, 1,
                            row_append_text, roles, NULL);
    json_object_set_new(policy, "roles", roles);
    return e;
}

enum err meta_policy_get(struct meta *m, const char *name, json_t **out)
{
    enum err e = access_get_one(m,
                                "SELECT name, document, global, builtin, updated_at, updated_by "
                                "FROM policies WHERE name=?",
                                name, row_policy, out);
    if (e == ERR_OK)
        e = access_policy_roles(m, *out);
    return e;
}

enum err meta_policy_list(struct meta *m, json_t **out)
{
    json_t *arr = json_array();
    enum err e = access_run(m,
                            "SELECT name, document, global, builtin, updated_at, updated_by "
                            "FROM policies ORDER BY name",
                            NULL, 0, row_policy, arr, NULL);
    size_t i;
    json_t *p;
    json_array_foreach(arr, i, p)
    {
        json_object_del(p, "document");
        if (e == ERR_OK)
            e = access_policy_roles(m, p);
    }
    return meta_hand_over(e, arr, out);
}

enum err meta_policy_delete(struct meta *m, const char *name)
{
    const char *p[] = {name};
    json_t *roles = json_array();
    pthread_mutex_lock(&m->w.lock);
    enum err e = access_run_locked(m, "SELECT role FROM role_policies WHERE policy=?", p, 1,
                                   row_append_text, roles, NULL);
    int changes = 0;
    if (e == ERR_OK && json_array_size(roles) > 0)
        e = ERR_CONFLICT;
    if (e == ERR_OK)
        e = access_run_locked(m, "DELETE FROM policies WHERE name=?", p, 1, NULL, NULL, &changes);
    pthread_mutex_unlock(&m->w.lock);
    json_decref(roles);
    if (e == ERR_OK && changes == 0)
        e = ERR_NOT_FOUND;
    return e;
}

/* ---------------------------------------------------------------- roles */

enum err meta_role_create(struct meta *m, const char *name, int builtin)
{
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)meta_now());
    const char *p[] = {name, builtin ? "1" : "0", now};
    return access_run(m, "INSERT INTO roles(name, builtin, created_at) VALUES(?,?,?)", p, 3, NULL,
                      NULL, NULL);
}

enum err meta_role_attach(struct meta *m, const char *role, const char *policy)
{
    const char *p[] = {role, policy};
    return access_run(m, "INSERT OR IGNORE INTO role_policies(role, policy) VALUES(?,?)", p, 2,
                      NULL, NULL, NULL);
}

static void row_role(sqlite3_stmt *st, void *ctx)
{
    json_array_append_new(ctx, json_pack("{s:s, s:b, s:I}", "name", col_text(st, 0), "builtin",
                                         sqlite3_column_int(st, 1), "bindings",
                                         (json_int_t)sqlite3_column_int64(st, 2)));
}

enum err meta_role_list(struct meta *m, json_t **out)
{
    json_t *arr = json_array();
    enum err e = access_run(m,
                            "SELECT r.name, r.builtin, (SELECT COUNT(*) FROM bindings b WHERE "
                            "b.role=r.name) FROM roles r ORDER BY r.name",
                            NULL, 0, row_role, arr, NULL);
    size_t i;
    json_t *r;
    json_array_foreach(arr, i, r)
    {
        const char *p[] = {json_string_value(json_object_get(r, "name"))};
        json_t *pols = json_array();
        if (e == ERR_OK)
            e = access_run(m, "SELECT policy FROM role_policies WHERE role=? ORDER BY policy", p, 1,
                           row_append_text, pols, NULL);
        json_object_set_new(r, "policies", pols);
    }
    return meta_hand_over(e, arr, out);
}

static void row_binding(sqlite3_stmt *st, void *ctx)
{
    json_array_append_new(ctx, json_pack("{s:s, s:s, s:s, s:I}", "principal", col_text(st, 0),
                                         "scope", col_text(st, 1), "created_by", col_text(st, 2),
                                         "created_at", (json_int_t)sqlite3_column_int64(st, 3)));
}

enum err meta_role_get(struct meta *m, const char *name, json_t **out)
{
    json_t *role = NULL;
    enum err e = access_get_one(m,
                                "SELECT r.name, r.builtin, (SELECT COUNT(*) FROM bindings b WHERE "
                                "b.role=r.name) FROM roles r WHERE r.name=?",
                                name, row_role, &role);
    if (e != ERR_OK)
        return e;
    const char *p[] = {name};
    json_t *pols = json_array();
    e = access_run(m,
                   "SELECT p.name, p.document, p.global, p.builtin, p.updated_at, p.updated_by "
                   "FROM policies p JOIN role_policies rp ON rp.policy=p.name WHERE rp.role=? "
                   "ORDER BY p.name",
                   p, 1, row_policy, pols, NULL);
    json_object_set_new(role, "policies", pols);
    json_t *binds = json_array();
    if (e == ERR_OK)
        e = access_run(m,
                       "SELECT principal, scope, created_by, created_at FROM bindings WHERE "
                       "role=? ORDER BY principal, scope",
                       p, 1, row_binding, binds, NULL);
    json_object_set_new(role, "bindings", binds);
    return meta_hand_over(e, role, out);
}

enum err meta_binding_add(struct meta *m, const char *role, const char *principal,
                          const char *scope, const char *by)
{
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)meta_now());
    const char *p[] = {role, principal, scope != NULL ? scope : "", now, by};
    return access_run(m,
                      "INSERT INTO bindings(role, principal, scope, created_at, created_by) "
                      "VALUES(?,?,?,?,?)",
                      p, 5, NULL, NULL, NULL);
}

enum err meta_binding_remove(struct meta *m, const char *role, const char *principal,
                             const char *scope)
{
    const char *p[] = {role, principal, scope};
    int changes = 0;
    enum err e =
        access_run(m,
                   scope != NULL ? "DELETE FROM bindings WHERE role=? AND principal=? AND scope=?"
                                 : "DELETE FROM bindings WHERE role=? AND principal=?",
                   p, scope != NULL ? 3 : 2, NULL, NULL, &changes);
    if (e == ERR_OK && changes == 0)
        e = ERR_NOT_FOUND;
    return e;
}

/* --------------------------------------------------------------- groups */

enum err meta_group_create(struct meta *m, const char *name)
{
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)meta_now());
    const char *p[] = {name, now};
    return access_run(m, "INSERT INTO groups(name, created_at) VALUES(?,?)", p, 2, NULL, NULL,
                      NULL);
}

enum err meta_group_add_member(struct meta *m, const char *group, const char *principal)
{
    const char *p[] = {group, principal};
    json_t *found = json_array();
    enum err e =
        access_run(m, "SELECT name FROM groups WHERE name=?", p, 1, row_append_text, found, NULL);
    int exists = json_array_size(found) > 0;
    json_decref(found);
    if (e != ERR_OK)
        return e;
    if (!exists)
        return ERR_NOT_FOUND;
    return access_run(m, "INSERT OR IGNORE INTO group_members(grp, principal) VALUES(?,?)", p, 2,
                      NULL, NULL, NULL);
}

enum err meta_group_remove_member(struct meta *m, const char *group, const char *principal)
{
    const char *p[] = {group, principal};
    int changes = 0;
    enum err e = access_run(m, "DELETE FROM group_members WHERE grp=? AND principal=?", p, 2, NULL,
                            NULL, &changes);
    if (e == ERR_OK && changes == 0)
        e = ERR_NOT_FOUND;
    return e;
}

static void row_group(sqlite3_stmt *st, void *ctx)
{
    json_array_append_new(ctx, json_pack("{s:s, s:[]}", "name", col_text(st, 0), "members"));
}

enum err meta_group_list(struct meta *m, json_t **out)
{
    json_t *arr = json_array();
    enum err e =
        access_run(m, "SELECT name FROM groups ORDER BY name", NULL, 0, row_group, arr, NULL);
    size_t i;
    json_t *g;
    json_array_foreach(arr, i, g)
    {
        const char *p[] = {json_string_value(json_object_get(g, "name"))};
        if (e == ERR_OK)
            e = access_run(m, "SELECT principal FROM group_members WHERE grp=? ORDER BY principal",
                           p, 1, row_append_text, json_object_get(g, "members"), NULL);
    }
    return meta_hand_over(e, arr, out);
}

static enum err meta_principal_groups_read(struct meta *m, const char *principal, json_t **out);

enum err meta_principal_groups(struct meta *m, const char *principal, json_t **out)
{
    char key[1 + 256] = {'G'};
    size_t pl = strlen(principal);
    int memo = pl < sizeof(key) - 1;
    if (memo) {
        memcpy(key + 1, principal, pl);
        if (meta_memo_get(m, key, 1 + pl, memo_copy_json, out))
            return ERR_OK;
    }
    uint64_t gen = meta_memo_gen(m);
    enum err e = meta_principal_groups_read(m, principal, out);
    if (e == ERR_OK && memo) {
        json_t *keep = memo_json_copy(*out);
        if (keep != NULL)
            meta_memo_put(m, gen, key, 1 + pl, keep, memo_drop_json);
    }
    return e;
}

static enum err meta_principal_groups_read(struct meta *m, const char *principal, json_t **out)
{
    json_t *arr = json_array();
    struct meta_conn *c = meta_read(m);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_stmt(c, "SELECT grp FROM group_members WHERE principal=? ORDER BY grp");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, principal, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            row_append_text(st, arr);
        e = rc == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    meta_stmt_done(c, st);
    meta_read_done(c);
    return meta_hand_over(e, arr, out);
}

/* ----------------------------------------------------------------- load */

static void row_load_policy(sqlite3_stmt *st, void *ctx)
{
    json_object_set_new(
        ctx, col_text(st, 0),
        json_pack("{s:s, s:b}", "document", col_text(st, 1), "global", sqlite3_column_int(st, 2)));
}

static void row_load_role(sqlite3_stmt *st, void *ctx)
{
    json_t *roles = ctx;
    const char *role = col_text(st, 0);
    json_t *list = json_object_get(roles, role);
    if (list == NULL) {
        list = json_array();
        json_object_set_new(roles, role, list);
    }
    if (sqlite3_column_type(st, 1) != SQLITE_NULL)
        json_array_append_new(list, json_string(col_text(st, 1)));
}

static void row_load_binding(sqlite3_stmt *st, void *ctx)
{
    json_array_append_new(
        ctx, json_pack("[s, s, s]", col_text(st, 0), col_text(st, 1), col_text(st, 2)));
}

enum err meta_access_load(struct meta *m, json_t **out)
{
    json_t *all = json_pack("{s:{}, s:{}, s:[]}", "roles", "policies", "bindings");
    pthread_mutex_lock(&m->w.lock);
    enum err e = meta_exec(&m->w, "BEGIN");
    if (e == ERR_OK)
        e = access_run_locked(m, "SELECT name, document, global FROM policies", NULL, 0,
                              row_load_policy, json_object_get(all, "policies"), NULL);
    if (e == ERR_OK)
        e = access_run_locked(m,
                              "SELECT r.name, rp.policy FROM roles r LEFT JOIN role_policies rp "
                              "ON rp.role=r.name ORDER BY r.name, rp.policy",
                              NULL, 0, row_load_role, json_object_get(all, "roles"), NULL);
    if (e == ERR_OK)
        e = access_run_locked(m, "SELECT role, principal, scope FROM bindings ORDER BY id", NULL, 0,
                              row_load_binding, json_object_get(all, "bindings"), NULL);
    meta_exec(&m->w, e == ERR_OK ? "COMMIT" : "ROLLBACK");
    pthread_mutex_unlock(&m->w.lock);
    return meta_hand_over(e, all, out);
}

enum err meta_setting_get(struct meta *m, const char *key, char *out, size_t cap)
{
    json_t *value = NULL;
    enum err e =
        access_get_one(m, "SELECT value FROM settings WHERE key=?", key, row_append_text, &value);
    if (e == ERR_OK)
        snprintf(out, cap, "%s", json_string_value(value));
    json_decref(value);
    return e;
}

enum err meta_setting_set(struct meta *m, const char *key, const char *value)
{
    const char *p[] = {key, value};
    return access_run(m, "INSERT OR REPLACE INTO settings(key, value) VALUES(?,?)", p, 2, NULL,
                      NULL, NULL);
}

enum err meta_policy_mark_builtin(struct meta *m, const char *name)
{
    const char *p[] = {name};
    return access_run(m, "UPDATE policies SET builtin=1 WHERE name=?", p, 1, NULL, NULL, NULL);
}
