/*
 * Client-certificate bindings of service accounts (table service_certs).
 */
#include "meta/svccert_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta_int.h"
#include "util/secure.h"

enum err meta_svccert_create(struct meta *m, const char *name, int64_t owner_id,
                             const uint8_t fingerprint[32], json_t *roles, const char *scope,
                             int64_t *id_out)
{
    return meta_credential_create(m,
                                  "INSERT INTO service_certs(name, owner_id, fingerprint, "
                                  "roles, scope, created_at) VALUES(?,?,?,?,?,?)",
                                  name, owner_id, fingerprint, roles, scope, 0, id_out);
}

#define SVCCERT_COLUMNS                                                                            \
    "c.id, c.name, c.owner_id, c.fingerprint, c.roles, c.scope, c.created_at, "                    \
    "coalesce(c.last_used_at, 0), coalesce(c.revoked_at, 0)"

static void svccert_fill(sqlite3_stmt *st, struct meta_svccert *c)
{
    c->id = sqlite3_column_int64(st, 0);
    meta_copy_text(c->name, sizeof(c->name), st, 1);
    c->owner_id = sqlite3_column_int64(st, 2);
    const void *fp = sqlite3_column_blob(st, 3);
    if (fp != NULL && sqlite3_column_bytes(st, 3) == 32)
        memcpy(c->fingerprint, fp, 32);
    c->roles = meta_column_array(st, 4);
    meta_copy_text(c->scope, sizeof(c->scope), st, 5);
    c->created_at = sqlite3_column_int64(st, 6);
    c->last_used_at = sqlite3_column_int64(st, 7);
    c->revoked_at = sqlite3_column_int64(st, 8);
}

/* One-row query with one bound parameter (blob, text or integer). */
static enum err svccert_query(struct meta *m, const char *where, const uint8_t *blob,
                              const char *text, int64_t id, struct meta_svccert *c)
{
    memset(c, 0, sizeof(*c));
    char sql[320];
    snprintf(sql, sizeof(sql), "SELECT " SVCCERT_COLUMNS " FROM service_certs c WHERE %s", where);
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st != NULL) {
        meta_credential_bind_key(st, blob, text, id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            svccert_fill(st, c);
            e = ERR_OK;
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_svccert_by_fingerprint(struct meta *m, const uint8_t fingerprint[32],
                                     struct meta_svccert *c)
{
    return svccert_query(m, "c.fingerprint=? AND c.revoked_at IS NULL", fingerprint, NULL, 0, c);
}

enum err meta_svccert_by_id(struct meta *m, int64_t id, struct meta_svccert *c)
{
    return svccert_query(m, "c.id=?", NULL, NULL, id, c);
}

enum err meta_svccert_by_name(struct meta *m, const char *name, struct meta_svccert *c)
{
    return svccert_query(m, "c.name=? AND c.revoked_at IS NULL ORDER BY c.id DESC LIMIT 1", NULL,
                         name, 0, c);
}

void meta_svccert_clear(struct meta_svccert *c)
{
    if (c == NULL)
        return;
    json_decref(c->roles);
    memset(c, 0, sizeof(*c));
}

enum err meta_svccert_touch(struct meta *m, int64_t id, int64_t now, const char *ip)
{
    return meta_credential_touch(
        m, "UPDATE service_certs SET last_used_at=?, last_used_ip=? WHERE id=?", id, now, ip);
}

enum err meta_svccert_revoke(struct meta *m, int64_t id, const char *by)
{
    return meta_credential_revoke(
        m, "UPDATE service_certs SET revoked_at=?, revoked_by=? WHERE id=? AND revoked_at IS NULL",
        id, by);
}

enum err meta_svccert_list(struct meta *m, int64_t owner_id, json_t **out)
{
    *out = NULL;
    json_t *arr = json_array();
    if (arr == NULL)
        return ERR_INTERNAL;
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st =
        meta_prepare(&m->w, "SELECT " SVCCERT_COLUMNS ", u.name, coalesce(c.last_used_ip, '') "
                            "FROM service_certs c JOIN users u ON u.id = c.owner_id "
                            "WHERE ?1 = 0 OR c.owner_id = ?1 ORDER BY c.id DESC");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, owner_id);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct meta_svccert c;
            memset(&c, 0, sizeof(c));
            svccert_fill(st, &c);
            const unsigned char *owner = sqlite3_column_text(st, 9);
            const unsigned char *ip = sqlite3_column_text(st, 10);
            char fp[65];
            hex_encode(c.fingerprint, sizeof(c.fingerprint), fp);
            json_t *row = json_pack(
                "{s:I, s:s, s:s, s:s, s:O, s:s, s:I, s:I, s:s, s:I}", "id", (json_int_t)c.id,
                "name", c.name, "owner", owner != NULL ? (const char *)owner : "", "fingerprint",
                fp, "roles", c.roles, "scope", c.scope, "created_at", (json_int_t)c.created_at,
                "last_used_at", (json_int_t)c.last_used_at, "last_used_ip",
                ip != NULL ? (const char *)ip : "", "revoked_at", (json_int_t)c.revoked_at);
            meta_svccert_clear(&c);
            if (row == NULL || json_array_append_new(arr, row) != 0) {
                rc = SQLITE_NOMEM;
                break;
            }
        }
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            e = ERR_OK;
    }
    pthread_mutex_unlock(&m->w.lock);
    return meta_hand_over(e, arr, out);
}
