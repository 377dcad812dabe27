/*
 * Share links in SQLite.
 */
#include "meta/share_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta_int.h"

#define SHARE_COLUMNS                                                                              \
    "id, path, version, version_id, creator, creator_id, created_at, expires_at, "                 \
    "COALESCE(max_uses, 0), uses, COALESCE(revoked_at, 0), networks, last_used_at, "               \
    "last_used_ip, revoked_by"

static void share_fill(sqlite3_stmt *st, struct meta_share *s)
{
    memset(s, 0, sizeof(*s));
    s->id = sqlite3_column_int64(st, 0);
    meta_copy_text(s->path, sizeof(s->path), st, 1);
    s->version = (uint64_t)sqlite3_column_int64(st, 2);
    s->version_id = sqlite3_column_int64(st, 3);
    meta_copy_text(s->creator, sizeof(s->creator), st, 4);
    s->creator_id = sqlite3_column_int64(st, 5);
    s->created_at = sqlite3_column_int64(st, 6);
    s->expires_at = sqlite3_column_int64(st, 7);
    s->max_uses = sqlite3_column_int64(st, 8);
    s->uses = sqlite3_column_int64(st, 9);
    s->revoked_at = sqlite3_column_int64(st, 10);
    s->networks = meta_column_array(st, 11);
}

void meta_share_clear(struct meta_share *s)
{
    if (s == NULL)
        return;
    json_decref(s->networks);
    memset(s, 0, sizeof(*s));
}

enum err meta_share_create(struct meta *m, const uint8_t token_hash[32], const struct meta_share *s,
                           int64_t *id)
{
    char *nets = s->networks != NULL ? json_dumps(s->networks, JSON_COMPACT) : strdup("[]");
    if (nets == NULL)
        return ERR_INTERNAL;
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st =
        meta_prepare(&m->w, "INSERT INTO shares(token_hash, path, version, version_id, "
                            "creator, creator_id, created_at, expires_at, max_uses, "
                            "networks) VALUES(?,?,?,?,?,?,?,?,?,?)");
    if (st != NULL) {
        sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t)s->version);
        sqlite3_bind_int64(st, 4, s->version_id);
        sqlite3_bind_text(st, 5, s->creator, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, s->creator_id);
        sqlite3_bind_int64(st, 7, s->created_at);
        sqlite3_bind_int64(st, 8, s->expires_at);
        if (s->max_uses > 0)
            sqlite3_bind_int64(st, 9, s->max_uses);
        sqlite3_bind_text(st, 10, nets, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        e = rc == SQLITE_DONE ? ERR_OK : rc == SQLITE_CONSTRAINT ? ERR_CONFLICT : ERR_IO;
        if (e == ERR_OK)
            *id = sqlite3_last_insert_rowid(m->w.db);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    free(nets);
    return e;
}

static enum err share_get(struct meta *m, const char *sql, const uint8_t *hash, int64_t id,
                          struct meta_share *s)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st != NULL) {
        if (hash != NULL)
            sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            share_fill(st, s);
            e = ERR_OK;
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_share_by_hash(struct meta *m, const uint8_t token_hash[32], struct meta_share *s)
{
    return share_get(m, "SELECT " SHARE_COLUMNS " FROM shares WHERE token_hash=?", token_hash, 0,
                     s);
}

enum err meta_share_by_id(struct meta *m, int64_t id, struct meta_share *s)
{
    return share_get(m, "SELECT " SHARE_COLUMNS " FROM shares WHERE id=?", NULL, id, s);
}

enum err meta_share_take_use(struct meta *m, int64_t id, int64_t now, const char *ip)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    /* One statement decides and counts: two concurrent downloads can never
     * both take the last use. */
    sqlite3_stmt *st = meta_prepare(&m->w, "UPDATE shares SET uses=uses+1, last_used_at=?2, "
                                           "last_used_ip=?3 WHERE id=?1 AND revoked_at IS NULL AND "
                                           "expires_at>?2 AND (max_uses IS NULL OR uses<max_uses)");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, ip, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_DONE)
            e = sqlite3_changes(m->w.db) == 1 ? ERR_OK : ERR_FORBIDDEN;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_share_revoke(struct meta *m, int64_t id, const char *by)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st =
        meta_prepare(&m->w, "UPDATE shares SET revoked_at=?, revoked_by=? WHERE id=? "
                            "AND revoked_at IS NULL");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, meta_now());
        sqlite3_bind_text(st, 2, by, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, id);
        if (sqlite3_step(st) == SQLITE_DONE)
            e = sqlite3_changes(m->w.db) == 1 ? ERR_OK : ERR_NOT_FOUND;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

static json_t *share_row_json(sqlite3_stmt *st)
{
    struct meta_share s;
    share_fill(st, &s);
    json_t *o =
        json_pack("{s:I, s:s, s:I, s:s, s:I, s:I, s:I, s:O}", "id", (json_int_t)s.id, "path",
                  s.path, "version", (json_int_t)s.version, "creator", s.creator, "created_at",
                  (json_int_t)s.created_at, "expires_at", (json_int_t)s.expires_at, "uses",
                  (json_int_t)s.uses, "networks", s.networks);
    json_object_set_new(o, "max_downloads",
                        s.max_uses > 0 ? json_integer((json_int_t)s.max_uses) : json_null());
    json_object_set_new(o, "last_used_at",
                        sqlite3_column_type(st, 12) == SQLITE_NULL
                            ? json_null()
                            : json_integer((json_int_t)sqlite3_column_int64(st, 12)));
    const unsigned char *ip = sqlite3_column_text(st, 13);
    json_object_set_new(o, "last_used_ip",
                        ip != NULL ? json_string((const char *)ip) : json_null());
    json_object_set_new(o, "revoked_at",
                        s.revoked_at > 0 ? json_integer((json_int_t)s.revoked_at) : json_null());
    const unsigned char *by = sqlite3_column_text(st, 14);
    if (by != NULL)
        json_object_set_new(o, "revoked_by", json_string((const char *)by));
    meta_share_clear(&s);
    return o;
}

enum err meta_share_list(struct meta *m, int64_t creator_id, json_t **out)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "SELECT " SHARE_COLUMNS " FROM shares WHERE ?1=0 OR "
                                           "creator_id=?1 ORDER BY id DESC LIMIT 1000");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, creator_id);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            json_array_append_new(arr, share_row_json(st));
        e = rc == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return meta_hand_over(e, arr, out);
}
