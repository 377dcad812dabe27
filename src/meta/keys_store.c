/*
 * Wrapped keys and KEK rotation records in SQLite.
 */
#include "meta/keys_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta_int.h"

/* Reads up to cap rows of one table into rows. Caller holds m->lock. */
static enum err keys_scan_table(struct meta *m, const char *keep_kek, struct keys_scan *scan,
                                struct keys_wrapped_row *rows, size_t cap, size_t *n)
{
    static const char *const sql[] = {
        "SELECT id, blob_id, kek_id, wrapped_dek FROM versions WHERE id > ?1 AND kek_id <> ?2 "
        "AND kek_id <> '' AND length(wrapped_dek) > 0 ORDER BY id LIMIT ?3",
        "SELECT user_id, '', kek_id, wrapped_secret FROM totp WHERE user_id > ?1 AND kek_id <> ?2 "
        "AND length(wrapped_secret) > 0 ORDER BY user_id LIMIT ?3",
    };
    sqlite3_stmt *st = meta_prepare(&m->w, sql[scan->table]);
    if (st == NULL)
        return ERR_IO;
    sqlite3_bind_int64(st, 1, scan->after);
    sqlite3_bind_text(st, 2, keep_kek, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)cap);
    int rc = SQLITE_DONE;
    while (*n < cap && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct keys_wrapped_row *row = &rows[*n];
        int len = sqlite3_column_bytes(st, 3);
        scan->after = sqlite3_column_int64(st, 0);
        if (len <= 0 || (size_t)len > sizeof(row->wrapped))
            continue; /* not a key this provider produced; left for an operator */
        memset(row, 0, sizeof(*row));
        row->table = scan->table;
        row->id = scan->after;
        if (scan->table == KEYS_ROW_VERSION)
            meta_copy_text(row->identity, sizeof(row->identity), st, 1);
        else
            snprintf(row->identity, sizeof(row->identity), "coffer-totp/v1/%lld",
                     (long long)row->id);
        meta_copy_text(row->kek_id, sizeof(row->kek_id), st, 2);
        memcpy(row->wrapped, sqlite3_column_blob(st, 3), (size_t)len);
        row->wrapped_len = (size_t)len;
        (*n)++;
    }
    sqlite3_finalize(st);
    return *n < cap && rc != SQLITE_DONE && rc != SQLITE_ROW ? ERR_IO : ERR_OK;
}

enum err keys_store_next(struct meta *m, const char *keep_kek, struct keys_scan *scan,
                         struct keys_wrapped_row *rows, size_t cap, size_t *n)
{
    *n = 0;
    if (cap == 0)
        return ERR_INVALID;
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_OK;
    while (e == ERR_OK && *n == 0 && scan->table <= KEYS_ROW_TOTP) {
        e = keys_scan_table(m, keep_kek, scan, rows, cap, n);
        if (e == ERR_OK && *n == 0) {
            if (scan->table == KEYS_ROW_TOTP) {
                scan->table = KEYS_ROW_TOTP + 1;
                break;
            }
            scan->table = KEYS_ROW_TOTP;
            scan->after = 0;
        }
    }
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err keys_store_replace(struct meta *m, const struct keys_wrapped_row *old,
                            const struct keys_wrapped_row *rewrapped, size_t n, size_t *applied)
{
    static const char *const sql[] = {
        "UPDATE versions SET wrapped_dek=?1, kek_id=?2 WHERE id=?3 AND kek_id=?4 AND "
        "wrapped_dek=?5",
        "UPDATE totp SET wrapped_secret=?1, kek_id=?2 WHERE user_id=?3 AND kek_id=?4 AND "
        "wrapped_secret=?5",
    };
    *applied = 0;
    pthread_mutex_lock(&m->w.lock);
    enum err e = meta_exec(&m->w, "BEGIN IMMEDIATE");
    sqlite3_stmt *st[2] = {NULL, NULL};
    size_t done = 0;
    for (size_t i = 0; e == ERR_OK && i < n; i++) {
        int t = old[i].table == KEYS_ROW_TOTP ? 1 : 0;
        if (st[t] == NULL && (st[t] = meta_prepare(&m->w, sql[t])) == NULL) {
            e = ERR_IO;
            break;
        }
        sqlite3_reset(st[t]);
        sqlite3_bind_blob(st[t], 1, rewrapped[i].wrapped, (int)rewrapped[i].wrapped_len,
                          SQLITE_STATIC);
        sqlite3_bind_text(st[t], 2, rewrapped[i].kek_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st[t], 3, old[i].id);
        sqlite3_bind_text(st[t], 4, old[i].kek_id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st[t], 5, old[i].wrapped, (int)old[i].wrapped_len, SQLITE_STATIC);
        if (sqlite3_step(st[t]) != SQLITE_DONE)
            e = ERR_IO;
        else
            done += (size_t)sqlite3_changes(m->w.db);
    }
    sqlite3_finalize(st[0]);
    sqlite3_finalize(st[1]);
    if (e == ERR_OK)
        e = meta_exec(&m->w, "COMMIT");
    if (e != ERR_OK)
        meta_exec(&m->w, "ROLLBACK");
    else
        *applied = done;
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err keys_store_kek_refs(struct meta *m, const char *kek_id, int64_t *count)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st =
        meta_prepare(&m->w, "SELECT (SELECT count(*) FROM versions WHERE kek_id=?1) + "
                            "(SELECT count(*) FROM totp WHERE kek_id=?1)");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, kek_id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *count = sqlite3_column_int64(st, 0);
            e = ERR_OK;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err keys_store_kek_counts(struct meta *m, json_t **out)
{
    json_t *o = json_object();
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(
        &m->w, "SELECT kek_id, 'deks', count(*) FROM versions WHERE kek_id <> '' GROUP BY kek_id "
               "UNION ALL SELECT kek_id, 'totp', count(*) FROM totp GROUP BY kek_id");
    if (st != NULL) {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *kek = (const char *)sqlite3_column_text(st, 0);
            const char *what = (const char *)sqlite3_column_text(st, 1);
            if (kek == NULL || what == NULL)
                continue;
            json_t *entry = json_object_get(o, kek);
            if (entry == NULL) {
                entry = json_pack("{s:I, s:I}", "deks", (json_int_t)0, "totp", (json_int_t)0);
                json_object_set_new(o, kek, entry);
            }
            json_object_set_new(entry, what, json_integer(sqlite3_column_int64(st, 2)));
        }
        e = rc == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return meta_hand_over(e, o, out);
}

enum err keys_store_rotation_begin(struct meta *m, const char *new_kek, const char *by, int batch,
                                   int pause_ms, int64_t *id)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "INSERT INTO key_rotations(new_kek, started_at, "
                                           "started_by, batch, pause_ms) VALUES(?,?,?,?,?)");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, new_kek, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, meta_now());
        sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, batch);
        sqlite3_bind_int(st, 5, pause_ms);
        if (sqlite3_step(st) == SQLITE_DONE) {
            *id = sqlite3_last_insert_rowid(m->w.db);
            e = ERR_OK;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

#define KEYS_ROTATION_COLUMNS                                                                      \
    "id, new_kek, started_at, started_by, batch, pause_ms, rewrapped, finished_at, destroyed"

static void keys_rotation_fill(sqlite3_stmt *st, struct keys_rotation_rec *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->id = sqlite3_column_int64(st, 0);
    meta_copy_text(rec->new_kek, sizeof(rec->new_kek), st, 1);
    rec->started_at = sqlite3_column_int64(st, 2);
    meta_copy_text(rec->started_by, sizeof(rec->started_by), st, 3);
    rec->batch = sqlite3_column_int(st, 4);
    rec->pause_ms = sqlite3_column_int(st, 5);
    rec->rewrapped = sqlite3_column_int64(st, 6);
    rec->finished_at = sqlite3_column_int64(st, 7);
}

enum err keys_store_rotation_open(struct meta *m, struct keys_rotation_rec *rec)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "SELECT " KEYS_ROTATION_COLUMNS " FROM key_rotations "
                                           "WHERE finished_at IS NULL ORDER BY id DESC LIMIT 1");
    if (st != NULL) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            keys_rotation_fill(st, rec);
            e = ERR_OK;
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

static enum err keys_rotation_update(struct meta *m, const char *sql, int64_t id, int64_t num,
                                     const char *text)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, num);
        sqlite3_bind_int64(st, 2, id);
        if (text != NULL)
            sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
        e = sqlite3_step(st) == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err keys_store_rotation_progress(struct meta *m, int64_t id, int64_t count)
{
    return keys_rotation_update(m, "UPDATE key_rotations SET rewrapped=rewrapped+?1 WHERE id=?2",
                                id, count, NULL);
}

enum err keys_store_rotation_finish(struct meta *m, int64_t id, json_t *destroyed)
{
    char *text = destroyed != NULL ? json_dumps(destroyed, JSON_COMPACT) : strdup("[]");
    if (text == NULL)
        return ERR_INTERNAL;
    enum err e =
        keys_rotation_update(m, "UPDATE key_rotations SET finished_at=?1, destroyed=?3 WHERE id=?2",
                             id, meta_now(), text);
    free(text);
    return e;
}

enum err keys_store_rotation_list(struct meta *m, int limit, json_t **out)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "SELECT " KEYS_ROTATION_COLUMNS " FROM key_rotations "
                                           "ORDER BY id DESC LIMIT ?");
    if (st != NULL) {
        sqlite3_bind_int(st, 1, limit);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct keys_rotation_rec rec;
            keys_rotation_fill(st, &rec);
            json_t *destroyed = meta_column_json(st, 8);
            json_t *o =
                json_pack("{s:I, s:s, s:I, s:s, s:I, s:o}", "id", (json_int_t)rec.id, "new_kek",
                          rec.new_kek, "started_at", (json_int_t)rec.started_at, "started_by",
                          rec.started_by, "rewrapped", (json_int_t)rec.rewrapped, "destroyed",
                          destroyed != NULL ? destroyed : json_array());
            if (rec.finished_at != 0)
                json_object_set_new(o, "finished_at", json_integer(rec.finished_at));
            json_array_append_new(arr, o);
        }
        e = rc == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return meta_hand_over(e, arr, out);
}

enum err keys_store_rotation_last_start(struct meta *m, int64_t *at)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st =
        meta_prepare(&m->w, "SELECT COALESCE(MAX(started_at), 0) FROM key_rotations");
    if (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
        *at = sqlite3_column_int64(st, 0);
        e = ERR_OK;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}
