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

struct meta {
    sqlite3 *db;
    pthread_mutex_t lock; /* serialises every use of db */
};

/* Runs sql (no results). Caller holds m->lock. */
enum err meta_exec(struct meta *m, const char *sql);
/* Prepares sql; NULL (logged) on failure. Caller holds m->lock. */
sqlite3_stmt *meta_prepare(struct meta *m, const char *sql);
int64_t meta_now(void);
/* Parses a JSON text column; NULL if NULL or malformed. */
json_t *meta_column_json(sqlite3_stmt *st, int col);

#endif
