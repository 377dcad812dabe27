/*
 * Tombstones of erased versions, legal holds, retention locks and rules in SQLite.
 */
#include "meta/compliance_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta.h"
#include "meta/meta_int.h"

int compliance_path_match(const char *pattern, const char *path)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*')
        return strncmp(pattern, path, n - 1) == 0;
    return strcmp(pattern, path) == 0;
}

int compliance_pattern_valid(const char *pattern)
{
    size_t n = strnlen(pattern, COMPLIANCE_PATTERN_MAX + 1);
    if (n == 0 || n > COMPLIANCE_PATTERN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)pattern[i];
        if (c <= 0x20 || c > 0x7e || (c == '*' && i != n - 1) || c == '@' || c == '?')
            return 0;
    }
    return 1;
}

static const char *cs_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t != NULL ? (const char *)t : "";
}

/* ------------------------------------------------------------ versions */

#define CS_VERSION_COLUMNS                                                                         \
    "v.id, a.path, v.version, v.sha256, v.size, a.kind, a.sensitivity, v.sensitivity, a.tags, "    \
    "v.blob_id, v.created_at, v.deleted, v.erased_at"

static json_t *cs_version_row(sqlite3_stmt *st)
{
    int sens = sqlite3_column_int(st, 6);
    if (sqlite3_column_type(st, 7) != SQLITE_NULL && sqlite3_column_int(st, 7) > sens)
        sens = sqlite3_column_int(st, 7);
    json_t *tags = meta_column_json(st, 8);
    return json_pack("{s:I, s:s, s:I, s:s, s:I, s:s, s:i, s:o, s:s, s:I, s:b, s:b}", "version_id",
                     (json_int_t)sqlite3_column_int64(st, 0), "path", cs_text(st, 1), "version",
                     (json_int_t)sqlite3_column_int64(st, 2), "sha256", cs_text(st, 3), "size",
                     (json_int_t)sqlite3_column_int64(st, 4), "kind", cs_text(st, 5), "sensitivity",
                     sens, "tags", tags != NULL ? tags : json_object(), "blob_id", cs_text(st, 9),
                     "created_at", (json_int_t)sqlite3_column_int64(st, 10), "deleted",
                     sqlite3_column_int(st, 11), "erased",
                     sqlite3_column_type(st, 12) != SQLITE_NULL);
}

/* Runs a version query; keep (may be NULL) filters rows. Caller holds no lock. */
static enum err cs_version_query(struct meta *m, sqlite3_stmt *st, json_t *arr, const char *prefix,
                                 size_t limit)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (prefix != NULL && !compliance_path_match(prefix, cs_text(st, 1)))
            continue;
        json_array_append_new(arr, cs_version_row(st));
        if (limit > 0 && json_array_size(arr) >= limit)
            break;
    }
    (void)m;
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? ERR_OK : ERR_IO;
}

enum err compliance_versions(struct meta *m, const char *path, uint64_t version,
                             const char *tag_key, const char *tag_value, const char *prefix,
                             json_t **out)
{
    const char *sql;
    if (path != NULL && version > 0)
        sql = "SELECT " CS_VERSION_COLUMNS " FROM versions v JOIN artifacts a ON "
              "v.artifact_id=a.id WHERE a.path=?1 AND v.version=?2";
    else if (path != NULL)
        sql = "SELECT " CS_VERSION_COLUMNS " FROM versions v JOIN artifacts a ON "
              "v.artifact_id=a.id WHERE a.path=?1 ORDER BY v.version";
    else
        sql = "SELECT " CS_VERSION_COLUMNS " FROM versions v JOIN artifacts a ON "
              "v.artifact_id=a.id WHERE json_extract(a.tags, '$.\"' || ?3 || '\"')=?4 "
              "ORDER BY a.path, v.version";
    json_t *arr = json_array();
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st != NULL) {
        if (path != NULL)
            sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
        if (version > 0)
            sqlite3_bind_int64(st, 2, (sqlite3_int64)version);
        if (path == NULL) {
            sqlite3_bind_text(st, 3, tag_key != NULL ? tag_key : "", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, tag_value != NULL ? tag_value : "", -1, SQLITE_STATIC);
        }
        e = cs_version_query(m, st, arr, path == NULL ? prefix : NULL, 0);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return meta_hand_over(e, arr, out);
}

/* Runs one statement binding (int64 id, text, text, int64). Caller holds m->lock. */
static int cs_step(struct meta *m, const char *sql, int64_t a, const char *b, const char *c,
                   int64_t d)
{
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, a);
    if (b != NULL)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    if (c != NULL)
        sqlite3_bind_text(st, 3, c, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, d);
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(m->w.db);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? changes : -1;
}

enum err compliance_erase_version(struct meta *m, int64_t version_id, const char *by,
                                  const char *reason, int *blob_free)
{
    *blob_free = 0;
    pthread_mutex_lock(&m->w.lock);
    enum err e = meta_exec(&m->w, "BEGIN IMMEDIATE");
    if (e != ERR_OK) {
        pthread_mutex_unlock(&m->w.lock);
        return e;
    }
    sqlite3_stmt *st = meta_prepare(&m->w, "SELECT erased_at IS NOT NULL, blob_id FROM versions "
                                           "WHERE id=?");
    char blob[META_BLOB_ID_LEN + 1] = "";
    e = ERR_IO;
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, version_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            e = sqlite3_column_int(st, 0) ? ERR_GONE : ERR_OK;
            snprintf(blob, sizeof(blob), "%s", cs_text(st, 1));
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
    }
    sqlite3_finalize(st);
    int64_t now = meta_now();
    if (e == ERR_OK &&
        cs_step(m,
                "UPDATE versions SET wrapped_dek=x'', kek_id='', erased_at=?4, erased_by=?2, "
                "erase_reason=?3, deleted=1, deleted_at=COALESCE(deleted_at, ?4), "
                "deleted_by=COALESCE(deleted_by, ?2) WHERE id=?1",
                version_id, by, reason, now) != 1)
        e = ERR_IO;
    if (e == ERR_OK) {
        st = meta_prepare(&m->w,
                          "SELECT count(*) FROM versions WHERE blob_id=? AND erased_at IS NULL");
        e = ERR_IO;
        if (st != NULL) {
            sqlite3_bind_text(st, 1, blob, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) {
                *blob_free = sqlite3_column_int64(st, 0) == 0;
                e = ERR_OK;
            }
        }
        sqlite3_finalize(st);
    }
    if (e == ERR_OK)
        e = meta_exec(&m->w, "COMMIT");
    if (e != ERR_OK) {
        meta_exec(&m->w, "ROLLBACK");
        *blob_free = 0;
    } else {
        /* Move the zeroed pages into the database and truncate the journal. */
        sqlite3_wal_checkpoint_v2(m->w.db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    }
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

/* ------------------------------------------------------- holds and locks */

enum err compliance_blocked(struct meta *m, const char *path, int64_t now, char *why,
                            size_t why_cap)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st =
        meta_prepare(&m->w, "SELECT 'hold', path, reason, 0 FROM legal_holds UNION ALL "
                            "SELECT 'lock', path, mode, until FROM retention_locks "
                            "WHERE until > ?");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, now);
        int rc;
        e = ERR_OK;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (!compliance_path_match(cs_text(st, 1), path))
                continue;
            if (strcmp(cs_text(st, 0), "hold") == 0)
                snprintf(why, why_cap, "%s is under legal hold '%s' (%.200s)", path, cs_text(st, 1),
                         cs_text(st, 2));
            else
                snprintf(why, why_cap, "%s is under a %s-mode retention lock '%s' until %lld", path,
                         cs_text(st, 2), cs_text(st, 1), (long long)sqlite3_column_int64(st, 3));
            e = ERR_CONFLICT;
            break;
        }
        if (e == ERR_OK && rc != SQLITE_DONE)
            e = ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err compliance_hold_set(struct meta *m, const char *pattern, const char *reason,
                             const char *by)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "INSERT INTO legal_holds(path, reason, set_at, set_by) "
                                           "VALUES(?,?,?,?)");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, pattern, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, meta_now());
        sqlite3_bind_text(st, 4, by, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        e = rc == SQLITE_DONE ? ERR_OK : rc == SQLITE_CONSTRAINT ? ERR_CONFLICT : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err compliance_hold_clear(struct meta *m, const char *pattern)
{
    pthread_mutex_lock(&m->w.lock);
    int n = cs_step(m, "DELETE FROM legal_holds WHERE ?4=?4 AND path=?2", 0, pattern, NULL, 0);
    pthread_mutex_unlock(&m->w.lock);
    return n < 0 ? ERR_IO : n == 0 ? ERR_NOT_FOUND : ERR_OK;
}

static enum err cs_list(struct meta *m, const char *sql, json_t *(*row)(sqlite3_stmt *),
                        json_t **out)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st != NULL) {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            json_array_append_new(arr, row(st));
        e = rc == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return meta_hand_over(e, arr, out);
}

static json_t *cs_hold_row(sqlite3_stmt *st)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "path", cs_text(st, 0), "reason", cs_text(st, 1),
                     "set_at", (json_int_t)sqlite3_column_int64(st, 2), "set_by", cs_text(st, 3));
}

enum err compliance_hold_list(struct meta *m, json_t **out)
{
    return cs_list(m, "SELECT path, reason, set_at, set_by FROM legal_holds ORDER BY path",
                   cs_hold_row, out);
}

enum err compliance_lock_set(struct meta *m, const char *pattern, const char *mode, int64_t until,
                             const char *by, int64_t *current_until)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "SELECT mode, until FROM retention_locks WHERE path=?");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, pattern, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        e = rc == SQLITE_ROW || rc == SQLITE_DONE ? ERR_OK : ERR_IO;
        if (rc == SQLITE_ROW && strcmp(cs_text(st, 0), "compliance") == 0 &&
            sqlite3_column_int64(st, 1) > meta_now() &&
            (sqlite3_column_int64(st, 1) > until || strcmp(mode, "compliance") != 0)) {
            *current_until = sqlite3_column_int64(st, 1);
            e = ERR_CONFLICT;
        }
    }
    sqlite3_finalize(st);
    if (e == ERR_OK) {
        st =
            meta_prepare(&m->w, "INSERT OR REPLACE INTO retention_locks(path, mode, until, set_at, "
                                "set_by) VALUES(?,?,?,?,?)");
        e = ERR_IO;
        if (st != NULL) {
            sqlite3_bind_text(st, 1, pattern, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, mode, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, until);
            sqlite3_bind_int64(st, 4, meta_now());
            sqlite3_bind_text(st, 5, by, -1, SQLITE_STATIC);
            e = sqlite3_step(st) == SQLITE_DONE ? ERR_OK : ERR_IO;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err compliance_lock_clear(struct meta *m, const char *pattern, int64_t now)
{
    pthread_mutex_lock(&m->w.lock);
    int n = cs_step(m,
                    "DELETE FROM retention_locks WHERE path=?2 AND (mode <> 'compliance' OR "
                    "until <= ?4) AND ?1=?1",
                    0, pattern, NULL, now);
    enum err e = n < 0 ? ERR_IO : n == 1 ? ERR_OK : ERR_NOT_FOUND;
    if (e == ERR_NOT_FOUND) {
        sqlite3_stmt *st = meta_prepare(&m->w, "SELECT 1 FROM retention_locks WHERE path=?");
        if (st != NULL) {
            sqlite3_bind_text(st, 1, pattern, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW)
                e = ERR_CONFLICT;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

static json_t *cs_lock_row(sqlite3_stmt *st)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:s}", "path", cs_text(st, 0), "mode", cs_text(st, 1),
                     "until", (json_int_t)sqlite3_column_int64(st, 2), "set_at",
                     (json_int_t)sqlite3_column_int64(st, 3), "set_by", cs_text(st, 4));
}

enum err compliance_lock_list(struct meta *m, json_t **out)
{
    return cs_list(m, "SELECT path, mode, until, set_at, set_by FROM retention_locks ORDER BY path",
                   cs_lock_row, out);
}

/* --------------------------------------------------------------- rules */

enum err compliance_rule_add(struct meta *m, const struct compliance_rule *rule, const char *by,
                             int64_t *id)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st =
        meta_prepare(&m->w, "INSERT INTO retention_rules(scope, kind, tag_key, "
                            "tag_value, after_seconds, action, created_at, created_by) "
                            "VALUES(?,?,?,?,?,?,?,?)");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, rule->scope, -1, SQLITE_STATIC);
        if (rule->kind[0] != '\0')
            sqlite3_bind_text(st, 2, rule->kind, -1, SQLITE_STATIC);
        if (rule->tag_key[0] != '\0') {
            sqlite3_bind_text(st, 3, rule->tag_key, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, rule->tag_value, -1, SQLITE_STATIC);
        }
        sqlite3_bind_int64(st, 5, rule->after_seconds);
        sqlite3_bind_text(st, 6, rule->action, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, meta_now());
        sqlite3_bind_text(st, 8, by, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_DONE) {
            *id = sqlite3_last_insert_rowid(m->w.db);
            e = ERR_OK;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err compliance_rule_delete(struct meta *m, int64_t id)
{
    pthread_mutex_lock(&m->w.lock);
    int n = cs_step(m, "DELETE FROM retention_rules WHERE id=?1 AND ?4=?4", id, NULL, NULL, 0);
    pthread_mutex_unlock(&m->w.lock);
    return n < 0 ? ERR_IO : n == 0 ? ERR_NOT_FOUND : ERR_OK;
}

static json_t *cs_rule_row(sqlite3_stmt *st)
{
    json_t *o =
        json_pack("{s:I, s:s, s:I, s:s, s:I, s:s}", "id", (json_int_t)sqlite3_column_int64(st, 0),
                  "scope", cs_text(st, 1), "after_seconds", (json_int_t)sqlite3_column_int64(st, 5),
                  "action", cs_text(st, 6), "created_at", (json_int_t)sqlite3_column_int64(st, 7),
                  "created_by", cs_text(st, 8));
    if (sqlite3_column_type(st, 2) != SQLITE_NULL)
        json_object_set_new(o, "kind", json_string(cs_text(st, 2)));
    if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
        json_object_set_new(o, "tag_key", json_string(cs_text(st, 3)));
        json_object_set_new(o, "tag_value", json_string(cs_text(st, 4)));
    }
    return o;
}

enum err compliance_rule_list(struct meta *m, json_t **out)
{
    return cs_list(m,
                   "SELECT id, scope, kind, tag_key, tag_value, after_seconds, action, "
                   "created_at, created_by FROM retention_rules ORDER BY id",
                   cs_rule_row, out);
}

void compliance_rule_from_json(json_t *o, struct compliance_rule *rule)
{
    memset(rule, 0, sizeof(*rule));
    rule->id = (int64_t)json_integer_value(json_object_get(o, "id"));
    const char *s;
    if ((s = json_string_value(json_object_get(o, "scope"))) != NULL)
        snprintf(rule->scope, sizeof(rule->scope), "%s", s);
    if ((s = json_string_value(json_object_get(o, "kind"))) != NULL)
        snprintf(rule->kind, sizeof(rule->kind), "%s", s);
    if ((s = json_string_value(json_object_get(o, "tag_key"))) != NULL)
        snprintf(rule->tag_key, sizeof(rule->tag_key), "%s", s);
    if ((s = json_string_value(json_object_get(o, "tag_value"))) != NULL)
        snprintf(rule->tag_value, sizeof(rule->tag_value), "%s", s);
    rule->after_seconds = (int64_t)json_integer_value(json_object_get(o, "after_seconds"));
    if ((s = json_string_value(json_object_get(o, "action"))) != NULL)
        snprintf(rule->action, sizeof(rule->action), "%s", s);
}

enum err compliance_rule_due(struct meta *m, const struct compliance_rule *rule, int64_t now,
                             size_t limit, json_t **out)
{
    int erase = strcmp(rule->action, "erase") == 0;
    const char *sql =
        erase ? "SELECT " CS_VERSION_COLUMNS " FROM versions v JOIN artifacts a ON "
                "v.artifact_id=a.id WHERE v.erased_at IS NULL AND v.created_at <= ?1 AND "
                "(?2 = '' OR a.kind = ?2) AND (?3 = '' OR json_extract(a.tags, '$.\"' || ?3 || "
                "'\"') = ?4) ORDER BY v.id"
              : "SELECT " CS_VERSION_COLUMNS " FROM versions v JOIN artifacts a ON "
                "v.artifact_id=a.id WHERE v.deleted = 0 AND v.created_at <= ?1 AND "
                "(?2 = '' OR a.kind = ?2) AND (?3 = '' OR json_extract(a.tags, '$.\"' || ?3 || "
                "'\"') = ?4) ORDER BY v.id";
    json_t *arr = json_array();
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, now - rule->after_seconds);
        sqlite3_bind_text(st, 2, rule->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, rule->tag_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, rule->tag_value, -1, SQLITE_STATIC);
        e = cs_version_query(m, st, arr, rule->scope, limit);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return meta_hand_over(e, arr, out);
}
