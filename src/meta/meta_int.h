/*
 * Internals shared by the files of the SQLite metadata store. Not for use
 * outside src/meta/.
 */
#ifndef COFFER_META_META_INT_H
#define COFFER_META_META_INT_H

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "util/err.h"

/* Prepared statements kept for the life of the connection, for the queries
 * run on every request. Keyed by the address of the SQL text, which must be
 * a string literal. */
#define META_STMT_CACHE 16

struct meta_stmt_slot {
    const char *sql;
    sqlite3_stmt *st;
};

struct meta {
    sqlite3 *db;
    pthread_mutex_t lock; /* serialises every use of db and of stmts */
    struct meta_stmt_slot stmts[META_STMT_CACHE];
};

/* Runs sql (no results). Caller holds m->lock. */
enum err meta_exec(struct meta *m, const char *sql);
/* Prepares sql; NULL (logged) on failure. Caller holds m->lock. */
sqlite3_stmt *meta_prepare(struct meta *m, const char *sql);
/* A ready-to-bind statement for sql, which must be a string literal: the
 * cached one when there is one, else newly prepared (and cached while the
 * table has room). NULL (logged) on failure. Caller holds m->lock and hands
 * the statement back with meta_stmt_done, never sqlite3_finalize. */
sqlite3_stmt *meta_stmt(struct meta *m, const char *sql);
/* Ends a use of st from meta_stmt (NULL is a no-op): a cached statement is
 * reset and its bindings cleared, any other one finalized. Caller holds
 * m->lock. */
void meta_stmt_done(struct meta *m, sqlite3_stmt *st);
int64_t meta_now(void);
/* Parses a JSON text column; NULL if NULL or malformed. */
json_t *meta_column_json(sqlite3_stmt *st, int col);

#endif
