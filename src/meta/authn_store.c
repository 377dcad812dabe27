/*
 * Strong-authentication records in SQLite: TOTP, recovery codes, API
 * tokens and OIDC issuers.
 */
#include "meta/authn_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta_int.h"
#include "util/log.h"

/* Runs a prepared statement to completion; maps constraint failures to
 * ERR_CONFLICT. Finalizes st. Caller holds the lock. */
/* ----------------------------------------------------------------- totp */

enum err meta_totp_get(struct meta *m, int64_t user_id, struct meta_totp *t)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st =
        meta_prepare(&m->w, "SELECT wrapped_secret, kek_id, recovery_salt, confirmed, "
                            "last_used_step FROM totp WHERE user_id=?");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, user_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            int wl = sqlite3_column_bytes(st, 0);
            const void *w = sqlite3_column_blob(st, 0);
            const unsigned char *kid = sqlite3_column_text(st, 1);
            int sl = sqlite3_column_bytes(st, 2);
            const void *salt = sqlite3_column_blob(st, 2);
            if (w != NULL && wl > 0 && (size_t)wl <= sizeof(t->wrapped) && kid != NULL &&
                strlen((const char *)kid) < sizeof(t->kek_id) && salt != NULL &&
                sl == META_TOTP_SALT_LEN) {
                t->user_id = user_id;
                memcpy(t->wrapped, w, (size_t)wl);
                t->wrapped_len = (size_t)wl;
                snprintf(t->kek_id, sizeof(t->kek_id), "%s", (const char *)kid);
                memcpy(t->recovery_salt, salt, META_TOTP_SALT_LEN);
                t->confirmed = sqlite3_column_int(st, 3);
                sqlite3_int64 step = sqlite3_column_int64(st, 4);
                t->last_used_step = step > 0 ? (uint64_t)step : 0;
                e = ERR_OK;
            } else {
                e = ERR_INTEGRITY;
            }
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_totp_put_pending(struct meta *m, const struct meta_totp *t)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = meta_exec(&m->w, "BEGIN IMMEDIATE");
    if (e != ERR_OK) {
        pthread_mutex_unlock(&m->w.lock);
        return e;
    }
    sqlite3_stmt *st = meta_prepare(&m->w, "SELECT confirmed FROM totp WHERE user_id=?");
    int confirmed = 0;
    if (st == NULL) {
        e = ERR_IO;
    } else {
        sqlite3_bind_int64(st, 1, t->user_id);
        if (sqlite3_step(st) == SQLITE_ROW)
            confirmed = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (e == ERR_OK && confirmed)
        e = ERR_CONFLICT;
    if (e == ERR_OK) {
        st = meta_prepare(&m->w, "INSERT OR REPLACE INTO totp(user_id, wrapped_secret, kek_id, "
                                 "recovery_salt, confirmed, last_used_step, created_at) "
                                 "VALUES(?,?,?,?,0,0,?)");
        if (st != NULL) {
            sqlite3_bind_int64(st, 1, t->user_id);
            sqlite3_bind_blob(st, 2, t->wrapped, (int)t->wrapped_len, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, t->kek_id, -1, SQLITE_STATIC);
            sqlite3_bind_blob(st, 4, t->recovery_salt, META_TOTP_SALT_LEN, SQLITE_STATIC);
            sqlite3_bind_int64(st, 5, meta_now());
        }
        e = meta_step_done(st);
    }
    if (e == ERR_OK)
        e = meta_exec(&m->w, "COMMIT");
    if (e != ERR_OK)
        meta_exec(&m->w, "ROLLBACK");
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

/* Sets last_used_step = step when step is later; ERR_CONFLICT otherwise.
 * confirm: also activate a pending enrolment. Caller holds the lock. */
static enum err meta_totp_advance_locked(struct meta *m, int64_t user_id, uint64_t step,
                                         int confirm)
{
    sqlite3_stmt *st = meta_prepare(
        &m->w, confirm ? "UPDATE totp SET last_used_step=?1, confirmed=1, confirmed_at=?3 "
                         "WHERE user_id=?2 AND confirmed=0 AND last_used_step < ?1"
                       : "UPDATE totp SET last_used_step=?1 WHERE user_id=?2 AND confirmed=1 AND "
                         "last_used_step < ?1");
    if (st == NULL)
        return ERR_IO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)step);
    sqlite3_bind_int64(st, 2, user_id);
    if (confirm)
        sqlite3_bind_int64(st, 3, meta_now());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ERR_IO;
    return sqlite3_changes(m->w.db) == 1 ? ERR_OK : ERR_CONFLICT;
}

enum err meta_totp_confirm(struct meta *m, int64_t user_id, uint64_t step,
                           const uint8_t (*hashes)[32], size_t n)
{
    if (step > INT64_MAX)
        return ERR_INVALID;
    pthread_mutex_lock(&m->w.lock);
    enum err e = meta_exec(&m->w, "BEGIN IMMEDIATE");
    if (e != ERR_OK) {
        pthread_mutex_unlock(&m->w.lock);
        return e;
    }
    e = meta_totp_advance_locked(m, user_id, step, 1);
    if (e == ERR_OK) {
        sqlite3_stmt *st = meta_prepare(&m->w, "DELETE FROM mfa_recovery WHERE user_id=?");
        if (st != NULL)
            sqlite3_bind_int64(st, 1, user_id);
        e = meta_step_done(st);
    }
    for (size_t i = 0; e == ERR_OK && i < n; i++) {
        sqlite3_stmt *st =
            meta_prepare(&m->w, "INSERT INTO mfa_recovery(user_id, code_hash) VALUES(?,?)");
        if (st != NULL) {
            sqlite3_bind_int64(st, 1, user_id);
            sqlite3_bind_blob(st, 2, hashes[i], 32, SQLITE_STATIC);
        }
        e = meta_step_done(st);
    }
    if (e == ERR_OK)
        e = meta_exec(&m->w, "COMMIT");
    if (e != ERR_OK)
        meta_exec(&m->w, "ROLLBACK");
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_totp_use_step(struct meta *m, int64_t user_id, uint64_t step)
{
    if (step > INT64_MAX)
        return ERR_INVALID;
    pthread_mutex_lock(&m->w.lock);
    enum err e = meta_totp_advance_locked(m, user_id, step, 0);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_totp_delete(struct meta *m, int64_t user_id)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = meta_exec(&m->w, "BEGIN IMMEDIATE");
    if (e != ERR_OK) {
        pthread_mutex_unlock(&m->w.lock);
        return e;
    }
    static const char *const sql[] = {"DELETE FROM mfa_recovery WHERE user_id=?",
                                      "DELETE FROM totp WHERE user_id=?"};
    for (size_t i = 0; e == ERR_OK && i < 2; i++) {
        sqlite3_stmt *st = meta_prepare(&m->w, sql[i]);
        if (st != NULL)
            sqlite3_bind_int64(st, 1, user_id);
        e = meta_step_done(st);
    }
    if (e == ERR_OK)
        e = meta_exec(&m->w, "COMMIT");
    if (e != ERR_OK)
        meta_exec(&m->w, "ROLLBACK");
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_recovery_use(struct meta *m, int64_t user_id, const uint8_t hash[32])
{
    pthread_mutex_lock(&m->w.lock);
    sqlite3_stmt *st = meta_prepare(&m->w, "UPDATE mfa_recovery SET used_at=? WHERE id=(SELECT id "
                                           "FROM mfa_recovery WHERE user_id=? AND code_hash=? AND "
                                           "used_at IS NULL LIMIT 1)");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, meta_now());
        sqlite3_bind_int64(st, 2, user_id);
        sqlite3_bind_blob(st, 3, hash, 32, SQLITE_STATIC);
    }
    enum err e = meta_step_one(&m->w, st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_recovery_remaining(struct meta *m, int64_t user_id, int *n)
{
    *n = 0;
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(
        &m->w, "SELECT count(*) FROM mfa_recovery WHERE user_id=? AND used_at IS NULL");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, user_id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *n = sqlite3_column_int(st, 0);
            e = ERR_OK;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_session_step_up(struct meta *m, const uint8_t token_hash[32], int64_t now)
{
    pthread_mutex_lock(&m->w.lock);
    sqlite3_stmt *st =
        meta_prepare(&m->w, "UPDATE sessions SET mfa=1, mfa_at=? WHERE token_hash=? AND revoked=0");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_blob(st, 2, token_hash, 32, SQLITE_STATIC);
    }
    enum err e = meta_step_one(&m->w, st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

/* ----------------------------------------------------------- API tokens */

enum err meta_apitoken_create(struct meta *m, const char *name, int64_t owner_id,
                              const uint8_t token_hash[32], json_t *roles, const char *scope,
                              int64_t expires_at, int64_t *id_out)
{
    return meta_credential_create(m,
                                  "INSERT INTO api_tokens(name, owner_id, token_hash, roles, "
                                  "scope, created_at, expires_at) VALUES(?,?,?,?,?,?,?)",
                                  name, owner_id, token_hash, roles, scope, expires_at, id_out);
}

#define APITOKEN_COLUMNS                                                                           \
    "id, name, owner_id, roles, scope, created_at, expires_at, coalesce(last_used_at, 0), "        \
    "coalesce(revoked_at, 0)"

static void meta_apitoken_fill(sqlite3_stmt *st, struct meta_apitoken *t)
{
    t->id = sqlite3_column_int64(st, 0);
    meta_copy_text(t->name, sizeof(t->name), st, 1);
    t->owner_id = sqlite3_column_int64(st, 2);
    t->roles = meta_column_array(st, 3);
    meta_copy_text(t->scope, sizeof(t->scope), st, 4);
    t->created_at = sqlite3_column_int64(st, 5);
    t->expires_at = sqlite3_column_int64(st, 6);
    t->last_used_at = sqlite3_column_int64(st, 7);
    t->revoked_at = sqlite3_column_int64(st, 8);
}

/* Runs a one-row token query with one bound parameter (blob, integer or text). */
static enum err meta_apitoken_query(struct meta *m, const char *where, const void *blob, int64_t id,
                                    const char *text, struct meta_apitoken *t)
{
    memset(t, 0, sizeof(*t));
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT " APITOKEN_COLUMNS " FROM api_tokens WHERE %s", where);
    struct meta_conn *c = meta_read(m);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(c, sql);
    if (st != NULL) {
        meta_credential_bind_key(st, blob, text, id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            meta_apitoken_fill(st, t);
            e = ERR_OK;
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
        sqlite3_finalize(st);
    }
    meta_read_done(c);
    return e;
}

enum err meta_apitoken_by_hash(struct meta *m, const uint8_t token_hash[32],
                               struct meta_apitoken *t)
{
    return meta_apitoken_query(m, "token_hash=?", token_hash, 0, NULL, t);
}

enum err meta_apitoken_by_id(struct meta *m, int64_t id, struct meta_apitoken *t)
{
    return meta_apitoken_query(m, "id=?", NULL, id, NULL, t);
}

enum err meta_apitoken_by_name(struct meta *m, const char *name, struct meta_apitoken *t)
{
    return meta_apitoken_query(m, "name=? AND revoked_at IS NULL ORDER BY id DESC LIMIT 1", NULL, 0,
                               name, t);
}

void meta_apitoken_clear(struct meta_apitoken *t)
{
    if (t == NULL)
        return;
    json_decref(t->roles);
    memset(t, 0, sizeof(*t));
}

enum err meta_apitoken_touch(struct meta *m, int64_t id, int64_t now, const char *ip)
{
    return meta_credential_touch(
        m, "UPDATE api_tokens SET last_used_at=?, last_used_ip=? WHERE id=?", id, now, ip);
}

enum err meta_apitoken_revoke(struct meta *m, int64_t id, const char *by)
{
    return meta_credential_revoke(
        m, "UPDATE api_tokens SET revoked_at=?, revoked_by=? WHERE id=? AND revoked_at IS NULL", id,
        by);
}

enum err meta_apitoken_list(struct meta *m, int64_t owner_id, json_t **out)
{
    *out = NULL;
    json_t *arr = json_array();
    if (arr == NULL)
        return ERR_INTERNAL;
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(
        &m->w, "SELECT t.id, t.name, t.owner_id, t.roles, t.scope, t.created_at, t.expires_at, "
               "coalesce(t.last_used_at, 0), coalesce(t.revoked_at, 0), u.name, "
               "coalesce(t.last_used_ip, '') FROM api_tokens t JOIN users u ON u.id = t.owner_id "
               "WHERE ?1 = 0 OR t.owner_id = ?1 ORDER BY t.id DESC");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, owner_id);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct meta_apitoken t;
            memset(&t, 0, sizeof(t));
            meta_apitoken_fill(st, &t);
            const unsigned char *owner = sqlite3_column_text(st, 9);
            const unsigned char *ip = sqlite3_column_text(st, 10);
            json_t *row = json_pack(
                "{s:I, s:s, s:s, s:O, s:s, s:I, s:I, s:I, s:s, s:I}", "id", (json_int_t)t.id,
                "name", t.name, "owner", owner != NULL ? (const char *)owner : "", "roles", t.roles,
                "scope", t.scope, "created_at", (json_int_t)t.created_at, "expires_at",
                (json_int_t)t.expires_at, "last_used_at", (json_int_t)t.last_used_at,
                "last_used_ip", ip != NULL ? (const char *)ip : "", "revoked_at",
                (json_int_t)t.revoked_at);
            meta_apitoken_clear(&t);
            if (row != NULL)
                json_array_append_new(arr, row);
        }
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            e = ERR_OK;
    }
    pthread_mutex_unlock(&m->w.lock);
    return meta_hand_over(e, arr, out);
}

/* ---------------------------------------------------------- OIDC issuers */

enum err meta_oidc_put(struct meta *m, const char *name, json_t *config, const char *by)
{
    char *text = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        return ERR_INTERNAL;
    pthread_mutex_lock(&m->w.lock);
    sqlite3_stmt *st = meta_prepare(&m->w, "INSERT OR REPLACE INTO oidc_issuers(name, config, "
                                           "updated_at, updated_by) VALUES(?,?,?,?)");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, meta_now());
        sqlite3_bind_text(st, 4, by, -1, SQLITE_STATIC);
    }
    enum err e = meta_step_done(st);
    pthread_mutex_unlock(&m->w.lock);
    free(text);
    return e;
}

enum err meta_oidc_all(struct meta *m, json_t **out)
{
    *out = NULL;
    json_t *obj = json_object();
    if (obj == NULL)
        return ERR_INTERNAL;
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "SELECT name, config FROM oidc_issuers ORDER BY name");
    if (st != NULL) {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const unsigned char *name = sqlite3_column_text(st, 0);
            json_t *cfg = meta_column_json(st, 1);
            if (name != NULL && json_is_object(cfg))
                json_object_set_new(obj, (const char *)name, cfg);
            else
                json_decref(cfg);
        }
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            e = ERR_OK;
    }
    pthread_mutex_unlock(&m->w.lock);
    return meta_hand_over(e, obj, out);
}

enum err meta_oidc_delete(struct meta *m, const char *name)
{
    pthread_mutex_lock(&m->w.lock);
    sqlite3_stmt *st = meta_prepare(&m->w, "DELETE FROM oidc_issuers WHERE name=?");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    }
    enum err e = meta_step_one(&m->w, st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}
