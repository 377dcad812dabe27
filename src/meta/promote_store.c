/*
 * Promotion requests and approvals in SQLite.
 */
#include "meta/promote_store.h"

#include <stdio.h>
#include <string.h>

#include "meta/meta_int.h"

#define PROMO_COLUMNS                                                                              \
    "id, source_path, source_version, target_path, target_env, sha256, requested_by, requester, "  \
    "message, state, approvals_required, created_at, expires_at, COALESCE(target_version, 0), "    \
    "decided_at, decided_by, reason"

static void promo_fill(sqlite3_stmt *st, struct meta_promotion *p)
{
    memset(p, 0, sizeof(*p));
    p->id = sqlite3_column_int64(st, 0);
    meta_copy_text(p->source_path, sizeof(p->source_path), st, 1);
    p->source_version = (uint64_t)sqlite3_column_int64(st, 2);
    meta_copy_text(p->target_path, sizeof(p->target_path), st, 3);
    meta_copy_text(p->target_env, sizeof(p->target_env), st, 4);
    meta_copy_text(p->sha256, sizeof(p->sha256), st, 5);
    meta_copy_text(p->requested_by, sizeof(p->requested_by), st, 6);
    meta_copy_text(p->requester, sizeof(p->requester), st, 7);
    meta_copy_text(p->message, sizeof(p->message), st, 8);
    meta_copy_text(p->state, sizeof(p->state), st, 9);
    p->approvals_required = sqlite3_column_int(st, 10);
    p->created_at = sqlite3_column_int64(st, 11);
    p->expires_at = sqlite3_column_int64(st, 12);
    p->target_version = (uint64_t)sqlite3_column_int64(st, 13);
}

enum err meta_promotion_create(struct meta *m, const struct meta_promotion *p, int64_t *id)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(
        &m->w,
        "INSERT INTO promotions(source_path, source_version, target_path, target_env, sha256, "
        "requested_by, requester, message, state, approvals_required, created_at, expires_at) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, p->source_path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)p->source_version);
        sqlite3_bind_text(st, 3, p->target_path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, p->target_env, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, p->sha256, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, p->requested_by, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, p->requester, -1, SQLITE_STATIC);
        if (p->message[0] != '\0')
            sqlite3_bind_text(st, 8, p->message, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, p->state, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 10, p->approvals_required);
        sqlite3_bind_int64(st, 11, p->created_at);
        sqlite3_bind_int64(st, 12, p->expires_at);
        if (sqlite3_step(st) == SQLITE_DONE) {
            *id = sqlite3_last_insert_rowid(m->w.db);
            e = ERR_OK;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_promotion_get(struct meta *m, int64_t id, struct meta_promotion *p)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "SELECT " PROMO_COLUMNS " FROM promotions WHERE id=?");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            promo_fill(st, p);
            e = ERR_OK;
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_promotion_find_pending(struct meta *m, const char *source_path,
                                     uint64_t source_version, const char *target_path, int64_t *id)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    *id = 0;
    sqlite3_stmt *st =
        meta_prepare(&m->w, "SELECT id FROM promotions WHERE source_path=? AND "
                            "source_version=? AND target_path=? AND state='pending'");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, source_path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)source_version);
        sqlite3_bind_text(st, 3, target_path, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            *id = sqlite3_column_int64(st, 0);
        e = rc == SQLITE_ROW || rc == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_promotion_expire(struct meta *m, int64_t now)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "UPDATE promotions SET state='expired', decided_at=?1, "
                                           "decided_by='system:expiry' WHERE state='pending' AND "
                                           "expires_at<=?1");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, now);
        e = sqlite3_step(st) == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_promotion_approve(struct meta *m, int64_t id, const char *approver,
                                const char *principal, int *count)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "INSERT INTO promotion_approvals(request_id, approver, "
                                           "principal, approved_at) VALUES(?,?,?,?)");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, approver, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, principal, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, meta_now());
        int rc = sqlite3_step(st);
        e = rc == SQLITE_DONE ? ERR_OK : rc == SQLITE_CONSTRAINT ? ERR_CONFLICT : ERR_IO;
    }
    sqlite3_finalize(st);
    if (e == ERR_OK) {
        e = ERR_IO;
        st = meta_prepare(&m->w, "SELECT COUNT(*) FROM promotion_approvals WHERE request_id=?");
        if (st != NULL) {
            sqlite3_bind_int64(st, 1, id);
            if (sqlite3_step(st) == SQLITE_ROW) {
                *count = sqlite3_column_int(st, 0);
                e = ERR_OK;
            }
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_promotion_transition(struct meta *m, int64_t id, const char *from, const char *to,
                                   const char *by, const char *reason, uint64_t target_version)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(
        &m->w,
        "UPDATE promotions SET state=?3, decided_at=?4, decided_by=COALESCE(?5, decided_by), "
        "reason=COALESCE(?6, reason), target_version=COALESCE(?7, target_version) "
        "WHERE id=?1 AND state=?2");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, from, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, to, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, meta_now());
        if (by != NULL)
            sqlite3_bind_text(st, 5, by, -1, SQLITE_STATIC);
        if (reason != NULL)
            sqlite3_bind_text(st, 6, reason, -1, SQLITE_STATIC);
        if (target_version > 0)
            sqlite3_bind_int64(st, 7, (int64_t)target_version);
        if (sqlite3_step(st) == SQLITE_DONE)
            e = sqlite3_changes(m->w.db) == 1 ? ERR_OK : ERR_CONFLICT;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

/* Caller holds m->lock. */
static json_t *promo_row_json(struct meta *m, sqlite3_stmt *st)
{
    struct meta_promotion p;
    promo_fill(st, &p);
    json_t *o = json_pack(
        "{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I}", "id", (json_int_t)p.id,
        "source", p.source_path, "source_version", (json_int_t)p.source_version, "target",
        p.target_path, "to", p.target_env, "sha256", p.sha256, "requested_by", p.requested_by,
        "requester", p.requester, "state", p.state, "approvals_required", p.approvals_required,
        "created_at", (json_int_t)p.created_at, "expires_at", (json_int_t)p.expires_at);
    if (p.message[0] != '\0')
        json_object_set_new(o, "message", json_string(p.message));
    if (p.target_version > 0)
        json_object_set_new(o, "target_version", json_integer((json_int_t)p.target_version));
    if (sqlite3_column_type(st, 14) != SQLITE_NULL)
        json_object_set_new(o, "decided_at", json_integer(sqlite3_column_int64(st, 14)));
    const unsigned char *t = sqlite3_column_text(st, 15);
    if (t != NULL)
        json_object_set_new(o, "decided_by", json_string((const char *)t));
    t = sqlite3_column_text(st, 16);
    if (t != NULL)
        json_object_set_new(o, "reason", json_string((const char *)t));
    json_t *approvals = json_array();
    sqlite3_stmt *as = meta_prepare(&m->w, "SELECT approver, principal, approved_at FROM "
                                           "promotion_approvals WHERE request_id=? ORDER BY "
                                           "approved_at, approver");
    if (as != NULL) {
        sqlite3_bind_int64(as, 1, p.id);
        while (sqlite3_step(as) == SQLITE_ROW) {
            json_array_append_new(approvals,
                                  json_pack("{s:s, s:s, s:I}", "approver",
                                            (const char *)sqlite3_column_text(as, 0), "principal",
                                            (const char *)sqlite3_column_text(as, 1), "approved_at",
                                            (json_int_t)sqlite3_column_int64(as, 2)));
        }
    }
    sqlite3_finalize(as);
    json_object_set_new(o, "approvals", approvals);
    return o;
}

static enum err promo_query(struct meta *m, const char *sql, int64_t arg, json_t **out)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, arg);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            json_array_append_new(arr, promo_row_json(m, st));
        e = rc == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return meta_hand_over(e, arr, out);
}

enum err meta_promotion_list(struct meta *m, int all, json_t **out)
{
    return promo_query(m,
                       "SELECT " PROMO_COLUMNS " FROM promotions WHERE ?1=1 OR state='pending' "
                       "ORDER BY id DESC LIMIT 1000",
                       all ? 1 : 0, out);
}

enum err meta_promotion_json(struct meta *m, int64_t id, json_t **out)
{
    json_t *arr = NULL;
    enum err e = promo_query(m, "SELECT " PROMO_COLUMNS " FROM promotions WHERE id=?1", id, &arr);
    if (e != ERR_OK)
        return e;
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return ERR_NOT_FOUND;
    }
    *out = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return ERR_OK;
}
