/*
 * Queries of the consistency checker (see meta/fsck_store.h).
 */
#include "meta/fsck_store.h"

#include <stdio.h>
#include <string.h>

#include "meta/meta_int.h"

static void fsck_copy_text(sqlite3_stmt *st, int col, char *out, size_t cap, int *bad)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = t != NULL ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (n >= cap) {
        *bad = 1;
        n = 0;
    }
    if (n > 0)
        memcpy(out, t, n);
    out[n] = '\0';
}

static void fsck_fill_row(sqlite3_stmt *st, struct fsck_version_row *row)
{
    int bad = 0;
    memset(row, 0, sizeof(*row));
    row->id = sqlite3_column_int64(st, 0);
    char path[PATH_FULL_MAX + 1];
    fsck_copy_text(st, 1, path, sizeof(path), &bad);
    snprintf(row->ref, sizeof(row->ref), "%s@%lld", path, (long long)sqlite3_column_int64(st, 2));
    fsck_copy_text(st, 3, row->sha256, sizeof(row->sha256), &bad);
    sqlite3_int64 size = sqlite3_column_int64(st, 4);
    row->size = size > 0 ? (uint64_t)size : 0;
    int blob_bad = 0;
    fsck_copy_text(st, 5, row->blob_id, sizeof(row->blob_id), &blob_bad);
    int wlen = sqlite3_column_bytes(st, 6);
    const void *w = sqlite3_column_blob(st, 6);
    if (w != NULL && wlen > 0 && (size_t)wlen <= sizeof(row->wrapped)) {
        memcpy(row->wrapped, w, (size_t)wlen);
        row->wrapped_len = (size_t)wlen;
    }
    fsck_copy_text(st, 7, row->kek_id, sizeof(row->kek_id), &bad);
    row->deleted = sqlite3_column_int(st, 8) != 0;
    row->erased = sqlite3_column_type(st, 9) != SQLITE_NULL;
    if (blob_bad || bad)
        row->blob_id[0] = '\0';
}

enum err meta_fsck_versions(struct meta *m,
                            int (*fn)(const struct fsck_version_row *row, void *ctx), void *ctx)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(
        &m->w, "SELECT v.id, a.path, v.version, v.sha256, v.size, v.blob_id, v.wrapped_dek, "
               "v.kek_id, v.deleted, v.erased_at FROM versions v JOIN artifacts a ON "
               "a.id = v.artifact_id ORDER BY v.id");
    if (st != NULL) {
        struct fsck_version_row row;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            fsck_fill_row(st, &row);
            if (fn(&row, ctx) != 0) {
                rc = SQLITE_DONE;
                break;
            }
        }
        e = rc == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_fsck_integrity(struct meta *m, char *out, size_t cap)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "PRAGMA integrity_check");
    if (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", t != NULL ? (const char *)t : "");
        e = t != NULL && strcmp((const char *)t, "ok") == 0 ? ERR_OK : ERR_INTEGRITY;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}
