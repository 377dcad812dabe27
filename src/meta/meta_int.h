/*
 * Internals shared by the files of the SQLite metadata store. Not for use
 * outside src/meta/.
 */
#ifndef COFFER_META_META_INT_H
#define COFFER_META_META_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <sqlite3.h>
#include <stdint.h>

#include "meta/memo.h"
#include "util/err.h"

/* Prepared statements kept for the life of a connection, for the queries
 * run on every request. Keyed by the address of the SQL text, which must be
 * a string literal. */
#define META_STMT_CACHE 48
/* The most read-only connections a store keeps (meta_open_readers). */
#define META_READERS_MAX 64
/* Slots of the store's cache of per-request lookups (memo.h). */
#define META_MEMO_SLOTS 1024

struct meta_stmt_slot {
    const char *sql;
    sqlite3_stmt *st;
};

/* One SQLite connection, its lock and its statement cache. */
struct meta_conn {
    sqlite3 *db;
    pthread_mutex_t lock; /* serialises every use of db and of stmts */
    struct meta_stmt_slot stmts[META_STMT_CACHE];
};

struct meta {
    struct meta_conn w; /* the connection every write (and, without a pool, every read) uses */
    /* Read-only connections (query_only) for the per-request lookups, so
     * that concurrent requests do not queue behind one lock. In WAL mode a
     * reader sees every transaction committed before its statement began. */
    struct meta_conn *readers;
    unsigned n_readers;
    unsigned next_reader;
    /* Changes (atomically) when a commit of w starts and again once it is
     * visible: a value read after observing gen reflects a state no older
     * than gen, and is current only while gen has not moved. */
    uint64_t gen;
    /* Values of the per-request lookups (memo.h), with the read pool only. */
    struct memo *memo;
};

/* Runs sql (no results). Caller holds c->lock. */
enum err meta_exec(struct meta_conn *c, const char *sql);
/* Prepares sql; NULL (logged) on failure. Caller holds c->lock. */
sqlite3_stmt *meta_prepare(struct meta_conn *c, const char *sql);
/* A ready-to-bind statement for sql, which must be a string literal: the
 * cached one when there is one, else newly prepared (and cached while the
 * table has room). NULL (logged) on failure. Caller holds c->lock and hands
 * the statement back with meta_stmt_done, never sqlite3_finalize. */
sqlite3_stmt *meta_stmt(struct meta_conn *c, const char *sql);
/* Ends a use of st from meta_stmt (NULL is a no-op): a cached statement is
 * reset and its bindings cleared, any other one finalized. Caller holds
 * c->lock. */
void meta_stmt_done(struct meta_conn *c, sqlite3_stmt *st);
/* A connection for statements that only read, returned locked: one of the
 * read pool, or the main connection when the store has no pool. Hand it
 * back with meta_read_done. */
struct meta_conn *meta_read(struct meta *m);
void meta_read_done(struct meta_conn *c);
/* The generation to store a value under that is about to be read (take it
 * before the read): the pin's, inside meta_read_pin, else the current one. */
uint64_t meta_memo_gen(struct meta *m);
/* memo_get/memo_put on the store's cache, valid at the current generation;
 * without a cache (no read pool) get finds nothing and put drops val. */
int meta_memo_get(struct meta *m, const void *key, size_t klen, memo_copy_fn copy, void *out);
void meta_memo_put(struct meta *m, uint64_t gen, const void *key, size_t klen, void *val,
                   memo_drop_fn drop);
int64_t meta_now(void);
/* Steps st once and finalizes it (NULL: ERR_IO): ERR_OK when done,
 * ERR_CONFLICT on a constraint, else ERR_IO. Caller holds the lock. */
enum err meta_step_done(sqlite3_stmt *st);
/* Runs and finalizes st, a statement of the write connection c meant to
 * change one row: ERR_OK when exactly one changed, ERR_NOT_FOUND when none
 * (or more), ERR_IO when st is NULL or fails. Caller holds c's lock. */
enum err meta_step_one(struct meta_conn *c, sqlite3_stmt *st);
/* For credential tables (api_tokens, service_certs): records the last use
 * of row id (sql: "UPDATE T SET last_used_at=?, last_used_ip=? WHERE id=?"),
 * or revokes it (sql: "UPDATE T SET revoked_at=?, revoked_by=? WHERE id=?
 * AND revoked_at IS NULL"; ERR_NOT_FOUND when no live row). Take the lock. */
enum err meta_credential_touch(struct meta *m, const char *sql, int64_t id, int64_t now,
                               const char *ip);
enum err meta_credential_revoke(struct meta *m, const char *sql, int64_t id, const char *by);
/* Parses a JSON text column; NULL if NULL or malformed. */
json_t *meta_column_json(sqlite3_stmt *st, int col);
/* Parses a JSON text column that should hold an array: an empty array when
 * it is NULL, malformed or not an array. The caller owns the result. */
json_t *meta_column_array(sqlite3_stmt *st, int col);
/* Copies text column col into dst (cap bytes with the NUL, truncated; ""
 * for NULL). */
void meta_copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col);
/* Ends a function that built v for *out: on ERR_OK hands v to *out, else
 * frees v and leaves *out alone. Returns e. */
enum err meta_hand_over(enum err e, json_t *v, json_t **out);
/* For credential tables (api_tokens, service_certs): inserts a row (sql:
 * "INSERT INTO T(name, owner_id, KEY, roles, scope, created_at[,
 * expires_at]) VALUES(...)") with the 32-byte key (token hash or
 * certificate fingerprint), roles as compact JSON, scope ("" for NULL), now,
 * and expires_at when sql has a seventh parameter; *id_out gets the row id.
 * ERR_CONFLICT on a constraint. Takes the lock. */
enum err meta_credential_create(struct meta *m, const char *sql, const char *name, int64_t owner_id,
                                const uint8_t key[32], json_t *roles, const char *scope,
                                int64_t expires_at, int64_t *id_out);
/* Binds parameter 1 of a one-row credential lookup: the 32-byte blob when
 * it is not NULL, else text when it is not NULL, else id. */
void meta_credential_bind_key(sqlite3_stmt *st, const uint8_t *blob, const char *text, int64_t id);

#endif
