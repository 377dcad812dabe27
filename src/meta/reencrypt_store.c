/*
 * Swapping a version onto its re-encrypted blob, in SQLite.
 */
#include "meta/reencrypt_store.h"

#include <string.h>

#include "meta/meta.h"
#include "meta/meta_int.h"

/* Checks that version_id exists, is not erased and still uses old_blob.
 * Caller holds m->lock inside a transaction. */
static enum err reencrypt_store_check(struct meta *m, int64_t version_id, const char *old_blob)
{
    sqlite3_stmt *st =
        meta_prepare(&m->w, "SELECT erased_at IS NOT NULL, blob_id FROM versions WHERE id=?");
    if (st == NULL)
        return ERR_IO;
    sqlite3_bind_int64(st, 1, version_id);
    enum err e = ERR_IO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *blob = sqlite3_column_text(st, 1);
        if (sqlite3_column_int(st, 0))
            e = ERR_GONE;
        else if (blob == NULL || strcmp((const char *)blob, old_blob) != 0)
            e = ERR_CONFLICT;
        else
            e = ERR_OK;
    } else if (rc == SQLITE_DONE) {
        e = ERR_NOT_FOUND;
    }
    sqlite3_finalize(st);
    return e;
}

/* Counts live versions still on blob into *count. Caller holds m->lock. */
static enum err reencrypt_store_refs(struct meta *m, const char *blob, int64_t *count)
{
    sqlite3_stmt *st =
        meta_prepare(&m->w, "SELECT count(*) FROM versions WHERE blob_id=? AND erased_at IS NULL");
    if (st == NULL)
        return ERR_IO;
    sqlite3_bind_text(st, 1, blob, -1, SQLITE_STATIC);
    enum err e = ERR_IO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *count = sqlite3_column_int64(st, 0);
        e = ERR_OK;
    }
    sqlite3_finalize(st);
    return e;
}

enum err reencrypt_store_swap(struct meta *m, int64_t version_id, const char *old_blob,
                              const char *new_blob, const uint8_t *wrapped, size_t wrapped_len,
                              const char *kek_id, int *old_free)
{
    *old_free = 0;
    if (old_blob == NULL || new_blob == NULL || wrapped == NULL || kek_id == NULL ||
        wrapped_len == 0 || wrapped_len > META_WRAPPED_MAX || strlen(kek_id) > META_KEK_ID_MAX ||
        strlen(new_blob) != META_BLOB_ID_LEN)
        return ERR_INVALID;
    pthread_mutex_lock(&m->w.lock);
    enum err e = meta_exec(&m->w, "BEGIN IMMEDIATE");
    if (e != ERR_OK) {
        pthread_mutex_unlock(&m->w.lock);
        return e;
    }
    e = reencrypt_store_check(m, version_id, old_blob);
    if (e == ERR_OK) {
        sqlite3_stmt *st = meta_prepare(&m->w, "UPDATE versions SET blob_id=?2, wrapped_dek=?3, "
                                               "kek_id=?4 WHERE id=?1 AND erased_at IS NULL");
        e = ERR_IO;
        if (st != NULL) {
            sqlite3_bind_int64(st, 1, version_id);
            sqlite3_bind_text(st, 2, new_blob, -1, SQLITE_STATIC);
            sqlite3_bind_blob(st, 3, wrapped, (int)wrapped_len, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, kek_id, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(m->w.db) == 1)
                e = ERR_OK;
        }
        sqlite3_finalize(st);
    }
    int64_t refs = 1;
    if (e == ERR_OK)
        e = reencrypt_store_refs(m, old_blob, &refs);
    if (e == ERR_OK)
        e = meta_exec(&m->w, "COMMIT");
    if (e != ERR_OK)
        meta_exec(&m->w, "ROLLBACK");
    else
        *old_free = refs == 0;
    pthread_mutex_unlock(&m->w.lock);
    return e;
}
