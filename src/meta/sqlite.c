/*
 * SQLite implementation of the metadata store.
 */
#include "meta/meta.h"

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/json_text.h"
#include "util/str.h"
#include "util/log.h"
#include "util/secure.h"

#include "meta/access.h"
#include "meta/meta_int.h"

static const char *const meta_migrations[] = {
    /* 1: initial schema */
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " pw_hash TEXT,"
    " clearance INTEGER NOT NULL DEFAULT 1,"
    " attrs TEXT NOT NULL DEFAULT '{}',"
    " disabled INTEGER NOT NULL DEFAULT 0,"
    " is_admin INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE sessions ("
    " id INTEGER PRIMARY KEY,"
    " token_hash BLOB NOT NULL UNIQUE,"
    " user_id INTEGER NOT NULL REFERENCES users(id),"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0,"
    " mfa INTEGER NOT NULL DEFAULT 0,"
    " mfa_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE artifacts ("
    " id INTEGER PRIMARY KEY,"
    " path TEXT NOT NULL UNIQUE,"
    " project TEXT NOT NULL,"
    " env TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " sensitivity INTEGER NOT NULL,"
    " tags TEXT NOT NULL DEFAULT '{}',"
    " created_at INTEGER NOT NULL,"
    " created_by TEXT NOT NULL);"
    "CREATE TABLE versions ("
    " id INTEGER PRIMARY KEY,"
    " artifact_id INTEGER NOT NULL REFERENCES artifacts(id),"
    " version INTEGER NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " sensitivity INTEGER,"
    " message TEXT,"
    " parents TEXT NOT NULL DEFAULT '[]',"
    " created_by TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " blob_id TEXT NOT NULL UNIQUE,"
    " wrapped_dek BLOB NOT NULL,"
    " kek_id TEXT NOT NULL,"
    " deleted INTEGER NOT NULL DEFAULT 0,"
    " deleted_at INTEGER,"
    " deleted_by TEXT,"
    " UNIQUE(artifact_id, version));"
    "CREATE INDEX versions_sha ON versions(artifact_id, sha256);"
    "CREATE TABLE lineage ("
    " child INTEGER NOT NULL REFERENCES versions(id),"
    " parent_ref TEXT NOT NULL);",
    /* 2: access policies, roles, bindings, groups */
    "CREATE TABLE policies ("
    " name TEXT PRIMARY KEY,"
    " document TEXT NOT NULL,"
    " global INTEGER NOT NULL DEFAULT 0,"
    " builtin INTEGER NOT NULL DEFAULT 0,"
    " updated_at INTEGER NOT NULL,"
    " updated_by TEXT NOT NULL);"
    "CREATE TABLE roles ("
    " name TEXT PRIMARY KEY,"
    " builtin INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE role_policies ("
    " role TEXT NOT NULL REFERENCES roles(name) ON DELETE CASCADE,"
    " policy TEXT NOT NULL REFERENCES policies(name) ON DELETE CASCADE,"
    " PRIMARY KEY(role, policy));"
    "CREATE TABLE bindings ("
    " id INTEGER PRIMARY KEY,"
    " role TEXT NOT NULL REFERENCES roles(name) ON DELETE CASCADE,"
    " principal TEXT NOT NULL,"
    " scope TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL,"
    " created_by TEXT NOT NULL,"
    " UNIQUE(role, principal, scope));"
    "CREATE INDEX bindings_principal ON bindings(principal);"
    "CREATE TABLE groups ("
    " name TEXT PRIMARY KEY,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE group_members ("
    " grp TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,"
    " principal TEXT NOT NULL,"
    " PRIMARY KEY(grp, principal));"
    "CREATE INDEX group_members_principal ON group_members(principal);"
    "CREATE TABLE settings ("
    " key TEXT PRIMARY KEY,"
    " value TEXT NOT NULL);",
    /* 3: strong authentication: TOTP, recovery codes, API tokens, OIDC issuers */
    "CREATE TABLE totp ("
    " user_id INTEGER PRIMARY KEY REFERENCES users(id),"
    " wrapped_secret BLOB NOT NULL,"
    " kek_id TEXT NOT NULL,"
    " recovery_salt BLOB NOT NULL,"
    " confirmed INTEGER NOT NULL DEFAULT 0,"
    " last_used_step INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " confirmed_at INTEGER);"
    "CREATE TABLE mfa_recovery ("
    " id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id),"
    " code_hash BLOB NOT NULL,"
    " used_at INTEGER);"
    "CREATE INDEX mfa_recovery_user ON mfa_recovery(user_id);"
    "CREATE TABLE api_tokens ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " owner_id INTEGER NOT NULL REFERENCES users(id),"
    " token_hash BLOB NOT NULL UNIQUE,"
    " roles TEXT NOT NULL DEFAULT '[]',"
    " scope TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " last_used_at INTEGER,"
    " last_used_ip TEXT,"
    " revoked_at INTEGER,"
    " revoked_by TEXT);"
    "CREATE INDEX api_tokens_owner ON api_tokens(owner_id);"
    "CREATE INDEX api_tokens_name ON api_tokens(name);"
    "CREATE TABLE oidc_issuers ("
    " name TEXT PRIMARY KEY,"
    " config TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " updated_by TEXT NOT NULL);",
    /* 4: key rotation progress, crypto-shredding tombstones, legal holds, retention */
    "ALTER TABLE versions ADD COLUMN erased_at INTEGER;"
    "ALTER TABLE versions ADD COLUMN erased_by TEXT;"
    "ALTER TABLE versions ADD COLUMN erase_reason TEXT;"
    "CREATE INDEX versions_kek ON versions(kek_id);"
    "CREATE INDEX versions_blob ON versions(blob_id);"
    "CREATE TABLE key_rotations ("
    " id INTEGER PRIMARY KEY,"
    " new_kek TEXT NOT NULL,"
    " started_at INTEGER NOT NULL,"
    " started_by TEXT NOT NULL,"
    " batch INTEGER NOT NULL,"
    " pause_ms INTEGER NOT NULL,"
    " rewrapped INTEGER NOT NULL DEFAULT 0,"
    " destroyed TEXT NOT NULL DEFAULT '[]',"
    " finished_at INTEGER);"
    "CREATE TABLE legal_holds ("
    " path TEXT PRIMARY KEY,"
    " reason TEXT NOT NULL,"
    " set_at INTEGER NOT NULL,"
    " set_by TEXT NOT NULL);"
    "CREATE TABLE retention_locks ("
    " path TEXT PRIMARY KEY,"
    " mode TEXT NOT NULL,"
    " until INTEGER NOT NULL,"
    " set_at INTEGER NOT NULL,"
    " set_by TEXT NOT NULL);"
    "CREATE TABLE retention_rules ("
    " id INTEGER PRIMARY KEY,"
    " scope TEXT NOT NULL,"
    " kind TEXT,"
    " tag_key TEXT,"
    " tag_value TEXT,"
    " after_seconds INTEGER NOT NULL,"
    " action TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " created_by TEXT NOT NULL);",
    /* 5: share links, promotion requests and their approvals */
    "CREATE TABLE shares ("
    " id INTEGER PRIMARY KEY,"
    " token_hash BLOB NOT NULL UNIQUE,"
    " path TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " version_id INTEGER NOT NULL REFERENCES versions(id),"
    " creator TEXT NOT NULL,"
    " creator_id INTEGER NOT NULL REFERENCES users(id),"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " max_uses INTEGER,"
    " uses INTEGER NOT NULL DEFAULT 0,"
    " networks TEXT NOT NULL DEFAULT '[]',"
    " last_used_at INTEGER,"
    " last_used_ip TEXT,"
    " revoked_at INTEGER,"
    " revoked_by TEXT);"
    "CREATE INDEX shares_creator ON shares(creator_id);"
    "CREATE TABLE promotions ("
    " id INTEGER PRIMARY KEY,"
    " source_path TEXT NOT NULL,"
    " source_version INTEGER NOT NULL,"
    " target_path TEXT NOT NULL,"
    " target_env TEXT NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " requested_by TEXT NOT NULL,"
    " requester TEXT NOT NULL,"
    " message TEXT,"
    " state TEXT NOT NULL,"
    " approvals_required INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " decided_at INTEGER,"
    " decided_by TEXT,"
    " reason TEXT,"
    " target_version INTEGER);"
    "CREATE INDEX promotions_state ON promotions(state);"
    "CREATE TABLE promotion_approvals ("
    " request_id INTEGER NOT NULL REFERENCES promotions(id),"
    " approver TEXT NOT NULL,"
    " principal TEXT NOT NULL,"
    " approved_at INTEGER NOT NULL,"
    " PRIMARY KEY(request_id, approver));",
    /* 6: anomaly findings, holds on principals (suspension, step-up), access reviews */
    "CREATE TABLE monitor_findings ("
    " id INTEGER PRIMARY KEY,"
    " rule TEXT NOT NULL,"
    " severity TEXT NOT NULL,"
    " principal TEXT NOT NULL,"
    " event_time INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " summary TEXT NOT NULL,"
    " evidence TEXT NOT NULL DEFAULT '{}',"
    " events TEXT NOT NULL DEFAULT '[]',"
    " responses TEXT NOT NULL DEFAULT '[]',"
    " acked_at INTEGER,"
    " acked_by TEXT);"
    "CREATE INDEX monitor_findings_open ON monitor_findings(acked_at);"
    "CREATE TABLE monitor_holds ("
    " principal TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " since INTEGER NOT NULL,"
    " finding_id INTEGER,"
    " reason TEXT NOT NULL,"
    " PRIMARY KEY(principal, kind));"
    "CREATE TABLE review_decisions ("
    " id INTEGER PRIMARY KEY,"
    " reviewer TEXT NOT NULL,"
    " role TEXT NOT NULL,"
    " principal TEXT NOT NULL,"
    " scope TEXT NOT NULL,"
    " decision TEXT NOT NULL,"
    " note TEXT,"
    " decided_at INTEGER NOT NULL);",
    /* service accounts authenticated by TLS client certificates */
    "CREATE TABLE service_certs ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " owner_id INTEGER NOT NULL REFERENCES users(id),"
    " fingerprint BLOB NOT NULL,"
    " roles TEXT NOT NULL,"
    " scope TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL,"
    " last_used_at INTEGER,"
    " last_used_ip TEXT,"
    " revoked_at INTEGER,"
    " revoked_by TEXT);"
    "CREATE UNIQUE INDEX service_certs_active ON service_certs(fingerprint)"
    " WHERE revoked_at IS NULL;",
};

#define META_MIGRATION_COUNT (int)(sizeof(meta_migrations) / sizeof(meta_migrations[0]))

static const char *const sensitivity_names[] = {"public", "internal", "confidential", "restricted"};
static const char *const kind_names[] = {"model",   "dataset", "features", "params",
                                         "metrics", "code",    "other",    NULL};

int meta_sensitivity_level(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (name != NULL && strcmp(name, sensitivity_names[i]) == 0)
            return i;
    }
    return -1;
}

const char *meta_sensitivity_name(int level)
{
    return level >= 0 && level < 4 ? sensitivity_names[level] : "unknown";
}

int meta_kind_valid(const char *kind)
{
    for (int i = 0; kind_names[i] != NULL; i++) {
        if (strcmp(kind, kind_names[i]) == 0)
            return 1;
    }
    return 0;
}

int64_t meta_now(void)
{
    return (int64_t)time(NULL);
}

enum err meta_exec(struct meta_conn *c, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("database: %s", msg != NULL ? msg : "unknown error");
        sqlite3_free(msg);
        return ERR_IO;
    }
    return ERR_OK;
}

enum err meta_step_done(sqlite3_stmt *st)
{
    if (st == NULL)
        return ERR_IO;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return ERR_OK;
    return rc == SQLITE_CONSTRAINT ? ERR_CONFLICT : ERR_IO;
}

enum err meta_step_one(struct meta_conn *c, sqlite3_stmt *st)
{
    if (st == NULL)
        return ERR_IO;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ERR_IO;
    return sqlite3_changes(c->db) == 1 ? ERR_OK : ERR_NOT_FOUND;
}

enum err meta_credential_touch(struct meta *m, const char *sql, int64_t id, int64_t now,
                               const char *ip)
{
    pthread_mutex_lock(&m->w.lock);
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, ip, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, id);
    }
    enum err e = meta_step_done(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_credential_create(struct meta *m, const char *sql, const char *name, int64_t owner_id,
                                const uint8_t key[32], json_t *roles, const char *scope,
                                int64_t expires_at, int64_t *id_out)
{
    char *roles_text = json_dumps(roles, JSON_COMPACT);
    if (roles_text == NULL)
        return ERR_INTERNAL;
    pthread_mutex_lock(&m->w.lock);
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st != NULL) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, owner_id);
        sqlite3_bind_blob(st, 3, key, 32, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, roles_text, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, scope != NULL ? scope : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, meta_now());
        if (sqlite3_bind_parameter_count(st) >= 7)
            sqlite3_bind_int64(st, 7, expires_at);
    }
    enum err e = meta_step_done(st);
    if (e == ERR_OK)
        *id_out = sqlite3_last_insert_rowid(m->w.db);
    pthread_mutex_unlock(&m->w.lock);
    free(roles_text);
    return e;
}

void meta_credential_bind_key(sqlite3_stmt *st, const uint8_t *blob, const char *text, int64_t id)
{
    if (blob != NULL)
        sqlite3_bind_blob(st, 1, blob, 32, SQLITE_STATIC);
    else if (text != NULL)
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, id);
}

enum err meta_credential_revoke(struct meta *m, const char *sql, int64_t id, const char *by)
{
    pthread_mutex_lock(&m->w.lock);
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, meta_now());
        sqlite3_bind_text(st, 2, by, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, id);
    }
    enum err e = meta_step_one(&m->w, st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

static enum err meta_migrate(struct meta *m)
{
    sqlite3_stmt *st;
    int current = 0;
    if (sqlite3_prepare_v2(m->w.db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return ERR_IO;
    if (sqlite3_step(st) == SQLITE_ROW)
        current = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (current > META_MIGRATION_COUNT) {
        log_error("database schema version %d is newer than this coffer (%d); upgrade coffer",
                  current, META_MIGRATION_COUNT);
        return ERR_CONFLICT;
    }
    for (int i = current; i < META_MIGRATION_COUNT; i++) {
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", i + 1);
        if (meta_exec(&m->w, "BEGIN IMMEDIATE") != ERR_OK)
            return ERR_IO;
        if (meta_exec(&m->w, meta_migrations[i]) != ERR_OK || meta_exec(&m->w, pragma) != ERR_OK) {
            meta_exec(&m->w, "ROLLBACK");
            return ERR_IO;
        }
        if (meta_exec(&m->w, "COMMIT") != ERR_OK)
            return ERR_IO;
        log_info("database migrated to schema version %d", i + 1);
    }
    return ERR_OK;
}

/* The commit hook runs before a commit of the main connection becomes
 * visible, the WAL hook after: the generation moves on both sides of it, so
 * no value read across a commit is kept as current (meta_int.h). */
static int meta_on_commit(void *ctx)
{
    struct meta *m = ctx;
    __atomic_add_fetch(&m->gen, 1, __ATOMIC_SEQ_CST);
    return 0; /* let the commit go on */
}

static int meta_on_wal(void *ctx, sqlite3 *db, const char *name, int frames)
{
    struct meta *m = ctx;
    __atomic_add_fetch(&m->gen, 1, __ATOMIC_SEQ_CST);
    /* A WAL hook replaces SQLite's automatic checkpoint: do what it did
     * (a passive checkpoint once the log holds 1000 pages). */
    if (frames >= 1000)
        (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

enum err meta_open(const char *path, int create, struct meta **out)
{
    struct meta *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return ERR_INTERNAL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &m->w.db, flags, NULL) != SQLITE_OK) {
        log_error("cannot open database %s: %s", path, sqlite3_errmsg(m->w.db));
        sqlite3_close(m->w.db);
        free(m);
        return create ? ERR_IO : ERR_NOT_FOUND;
    }
    pthread_mutex_init(&m->w.lock, NULL);
    sqlite3_busy_timeout(m->w.db, 5000);
    if (meta_exec(&m->w, "PRAGMA journal_mode=WAL") != ERR_OK ||
        meta_exec(&m->w, "PRAGMA synchronous=FULL") != ERR_OK ||
        meta_exec(&m->w, "PRAGMA foreign_keys=ON") != ERR_OK ||
        meta_exec(&m->w, "PRAGMA secure_delete=ON") != ERR_OK) {
        meta_close(m);
        return ERR_IO;
    }
    enum err e = meta_migrate(m);
    if (e != ERR_OK) {
        meta_close(m);
        return e;
    }
    sqlite3_commit_hook(m->w.db, meta_on_commit, m);
    sqlite3_wal_hook(m->w.db, meta_on_wal, m);
    *out = m;
    return ERR_OK;
}

static void conn_close(struct meta_conn *c)
{
    for (size_t i = 0; i < META_STMT_CACHE; i++)
        sqlite3_finalize(c->stmts[i].st);
    sqlite3_close(c->db);
    pthread_mutex_destroy(&c->lock);
}

enum err meta_open_readers(struct meta *m, unsigned n)
{
    if (m->readers != NULL || n == 0)
        return ERR_OK;
    if (n > META_READERS_MAX)
        n = META_READERS_MAX;
    const char *path = sqlite3_db_filename(m->w.db, "main");
    if (path == NULL || path[0] == '\0')
        return ERR_OK; /* a temporary database has nothing to share */
    struct meta_conn *r = calloc(n, sizeof(*r));
    if (r == NULL)
        return ERR_INTERNAL;
    unsigned k = 0;
    enum err e = ERR_OK;
    for (; k < n; k++) {
        /* Each reader has its own lock, so SQLite's own mutex is not needed. */
        if (sqlite3_open_v2(path, &r[k].db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK) {
            log_error("cannot open a read connection to %s: %s", path, sqlite3_errmsg(r[k].db));
            sqlite3_close(r[k].db);
            e = ERR_IO;
            break;
        }
        pthread_mutex_init(&r[k].lock, NULL);
        sqlite3_busy_timeout(r[k].db, 5000);
        /* The first read opens the WAL and its index now, before the
         * sandbox narrows what the process may open. */
        if (meta_exec(&r[k], "PRAGMA query_only=1") != ERR_OK ||
            meta_exec(&r[k], "SELECT count(*) FROM sqlite_master") != ERR_OK) {
            conn_close(&r[k]);
            e = ERR_IO;
            break;
        }
    }
    if (e != ERR_OK) {
        while (k > 0)
            conn_close(&r[--k]);
        free(r);
        return e;
    }
    m->readers = r;
    m->n_readers = n;
    m->memo = memo_new(META_MEMO_SLOTS); /* NULL: no cache, every lookup reads */
    return ERR_OK;
}

void meta_close(struct meta *m)
{
    if (m == NULL)
        return;
    for (unsigned i = 0; i < m->n_readers; i++)
        conn_close(&m->readers[i]);
    free(m->readers);
    conn_close(&m->w);
    memo_free(m->memo);
    free(m);
}

/* This thread's pin (meta_read_pin): its store, the generation when it
 * began, and the reader that its first read took, with the transaction. */
static _Thread_local struct meta *pin_meta;
static _Thread_local struct meta_conn *pinned;
static _Thread_local uint64_t pin_gen;
static _Thread_local unsigned pin_nested; /* pins inside the outer one */

/* Runs a statement without results from the connection's cache. */
static enum err conn_run(struct meta_conn *c, const char *sql)
{
    sqlite3_stmt *st = meta_stmt(c, sql);
    enum err e = st != NULL && sqlite3_step(st) == SQLITE_DONE ? ERR_OK : ERR_IO;
    meta_stmt_done(c, st);
    return e;
}

static struct meta_conn *meta_read_take(struct meta *m)
{
    if (m->n_readers == 0) {
        pthread_mutex_lock(&m->w.lock);
        return &m->w;
    }
    /* Each thread starts at its own reader, so with at most as many threads
     * as readers nobody waits; a busy one sends it to the next free one. */
    static _Thread_local unsigned hint = UINT_MAX;
    if (hint == UINT_MAX)
        hint = __atomic_fetch_add(&m->next_reader, 1, __ATOMIC_RELAXED);
    unsigned n = m->n_readers;
    for (unsigned i = 0; i < n; i++) {
        struct meta_conn *c = &m->readers[(hint + i) % n];
        if (pthread_mutex_trylock(&c->lock) == 0)
            return c;
    }
    struct meta_conn *c = &m->readers[hint % n];
    pthread_mutex_lock(&c->lock);
    return c;
}

struct meta_conn *meta_read(struct meta *m)
{
    if (pin_meta != m)
        return meta_read_take(m);
    if (pinned != NULL)
        return pinned; /* already locked, inside the pin's transaction */
    /* The pin's first read: its transaction starts here. */
    struct meta_conn *c = meta_read_take(m);
    if (conn_run(c, "BEGIN") == ERR_OK)
        pinned = c;
    return c; /* without a transaction, this query runs on its own */
}

void meta_read_done(struct meta_conn *c)
{
    if (c != pinned)
        pthread_mutex_unlock(&c->lock);
}

void meta_read_pin(struct meta *m)
{
    if (pin_meta == m) {
        pin_nested++; /* the outer pin's unpin ends the transaction */
        return;
    }
    if (m->n_readers == 0 || pin_meta != NULL)
        return;
    pin_meta = m;
    pin_gen = __atomic_load_n(&m->gen, __ATOMIC_SEQ_CST);
}

void meta_read_unpin(struct meta *m)
{
    if (pin_meta != m)
        return;
    if (pin_nested > 0) {
        pin_nested--;
        return;
    }
    struct meta_conn *c = pinned;
    pin_meta = NULL;
    pinned = NULL;
    if (c == NULL)
        return; /* nothing was read from the database */
    if (conn_run(c, "COMMIT") != ERR_OK)
        (void)meta_exec(c, "ROLLBACK");
    pthread_mutex_unlock(&c->lock);
}

uint64_t meta_memo_gen(struct meta *m)
{
    return pin_meta == m ? pin_gen : __atomic_load_n(&m->gen, __ATOMIC_SEQ_CST);
}

int meta_memo_get(struct meta *m, const void *key, size_t klen, memo_copy_fn copy, void *out)
{
    if (m->memo == NULL)
        return 0;
    return memo_get(m->memo, __atomic_load_n(&m->gen, __ATOMIC_SEQ_CST), key, klen, copy, out);
}

void meta_memo_counts(struct meta *m, uint64_t *hits, uint64_t *misses)
{
    memo_counts(m->memo, hits, misses);
}

void meta_memo_put(struct meta *m, uint64_t gen, const void *key, size_t klen, void *val,
                   memo_drop_fn drop)
{
    if (m->memo == NULL)
        drop(val);
    else
        memo_put(m->memo, gen, key, klen, val, drop);
}

sqlite3_stmt *meta_prepare(struct meta_conn *c, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("database: prepare failed: %s", sqlite3_errmsg(c->db));
        return NULL;
    }
    return st;
}

sqlite3_stmt *meta_stmt(struct meta_conn *c, const char *sql)
{
    size_t free_slot = META_STMT_CACHE;
    for (size_t i = 0; i < META_STMT_CACHE; i++) {
        struct meta_stmt_slot *slot = &c->stmts[i];
        if (slot->st == NULL) {
            if (free_slot == META_STMT_CACHE)
                free_slot = i;
            continue;
        }
        /* The text check guards against a non-literal reusing an address. */
        if (slot->sql == sql && strcmp(sqlite3_sql(slot->st), sql) == 0) {
            sqlite3_reset(slot->st);
            return slot->st;
        }
    }
    sqlite3_stmt *st = meta_prepare(c, sql);
    if (st != NULL && free_slot < META_STMT_CACHE) {
        c->stmts[free_slot].sql = sql;
        c->stmts[free_slot].st = st;
    }
    return st;
}

void meta_stmt_done(struct meta_conn *c, sqlite3_stmt *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < META_STMT_CACHE; i++) {
        if (c->stmts[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return;
        }
    }
    sqlite3_finalize(st);
}

void meta_copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t != NULL ? (const char *)t : "");
}

json_t *meta_column_json(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    json_t *j = t != NULL ? json_loads((const char *)t, 0, NULL) : NULL;
    return j;
}

json_t *meta_column_array(sqlite3_stmt *st, int col)
{
    json_t *j = meta_column_json(st, col);
    if (!json_is_array(j)) {
        json_decref(j);
        j = json_array();
    }
    return j;
}

enum err meta_hand_over(enum err e, json_t *v, json_t **out)
{
    if (e != ERR_OK) {
        json_decref(v);
        return e;
    }
    *out = v;
    return ERR_OK;
}

static char *meta_json_text(json_t *j, const char *fallback)
{
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    return s != NULL ? s : strdup(fallback);
}

/* ---------------------------------------------------------------- users */

enum err meta_user_create(struct meta *m, const char *name, const char *pw_hash, int clearance,
                          json_t *attrs, int is_admin)
{
    char *attrs_text = meta_json_text(attrs, "{}");
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "INSERT INTO users(name, pw_hash, clearance, attrs, "
                                           "is_admin, created_at) VALUES(?,?,?,?,?,?)");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (pw_hash != NULL)
            sqlite3_bind_text(st, 2, pw_hash, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, clearance);
        sqlite3_bind_text(st, 4, attrs_text, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, is_admin);
        sqlite3_bind_int64(st, 6, meta_now());
        int rc = sqlite3_step(st);
        e = rc == SQLITE_DONE ? ERR_OK : rc == SQLITE_CONSTRAINT ? ERR_CONFLICT : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    free(attrs_text);
    return e;
}

static void meta_user_fill(sqlite3_stmt *st, struct meta_user *u)
{
    memset(u, 0, sizeof(*u));
    u->id = sqlite3_column_int64(st, 0);
    meta_copy_text(u->name, sizeof(u->name), st, 1);
    const unsigned char *h = sqlite3_column_text(st, 2);
    u->pw_hash = h != NULL ? strdup((const char *)h) : NULL;
    u->clearance = sqlite3_column_int(st, 3);
    u->attrs = meta_column_json(st, 4);
    if (u->attrs == NULL)
        u->attrs = json_object();
    u->disabled = sqlite3_column_int(st, 5);
    u->is_admin = sqlite3_column_int(st, 6);
    u->created_at = sqlite3_column_int64(st, 7);
}

#define META_USER_COLUMNS "id, name, pw_hash, clearance, attrs, disabled, is_admin, created_at"

static enum err meta_user_query(struct meta *m, const char *sql, const char *name, int64_t id,
                                struct meta_user *u)
{
    struct meta_conn *c = meta_read(m);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_stmt(c, sql);
    if (st != NULL) {
        if (name != NULL)
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            meta_user_fill(st, u);
            e = ERR_OK;
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
    }
    meta_stmt_done(c, st);
    meta_read_done(c);
    return e;
}

enum err meta_user_get(struct meta *m, const char *name, struct meta_user *u)
{
    return meta_user_query(m, "SELECT " META_USER_COLUMNS " FROM users WHERE name=?", name, 0, u);
}

static int memo_copy_user(void *out, const void *val)
{
    struct meta_user *u = out;
    memcpy(u, val, sizeof(*u));
    u->attrs = memo_json_copy(((const struct meta_user *)val)->attrs);
    if (u->attrs == NULL) {
        memset(u, 0, sizeof(*u));
        return -1;
    }
    return 0;
}

static void memo_drop_user(void *val)
{
    meta_user_clear(val);
    free(val);
}

enum err meta_user_get_by_id(struct meta *m, int64_t id, struct meta_user *u)
{
    uint8_t key[1 + sizeof(id)] = {'U'};
    memcpy(key + 1, &id, sizeof(id));
    if (meta_memo_get(m, key, sizeof(key), memo_copy_user, u))
        return ERR_OK;
    uint64_t gen = meta_memo_gen(m);
    /* Authentication by session, token or link never needs the password
     * hash, so it is not read (pw_hash stays NULL). */
    enum err e = meta_user_query(m,
                                 "SELECT id, name, NULL, clearance, attrs, disabled, is_admin, "
                                 "created_at FROM users WHERE id=?",
                                 NULL, id, u);
    if (e == ERR_OK) {
        struct meta_user *keep = malloc(sizeof(*keep));
        if (keep != NULL && memo_copy_user(keep, u) == 0)
            meta_memo_put(m, gen, key, sizeof(key), keep, memo_drop_user);
        else
            free(keep);
    }
    return e;
}

void meta_user_clear(struct meta_user *u)
{
    if (u == NULL)
        return;
    if (u->pw_hash != NULL) {
        secure_wipe(u->pw_hash, strlen(u->pw_hash)); /* not a store the compiler may drop */
        free(u->pw_hash);
    }
    json_decref(u->attrs);
    memset(u, 0, sizeof(*u));
}

enum err meta_user_list(struct meta *m, json_t **out)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "SELECT " META_USER_COLUMNS " FROM users ORDER BY name");
    if (st != NULL) {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct meta_user u;
            meta_user_fill(st, &u);
            json_array_append_new(arr,
                                  json_pack("{s:s, s:s, s:O, s:b, s:b, s:I}", "name", u.name,
                                            "clearance", meta_sensitivity_name(u.clearance),
                                            "attrs", u.attrs, "disabled", u.disabled, "admin",
                                            u.is_admin, "created_at", (json_int_t)u.created_at));
            meta_user_clear(&u);
        }
        e = rc == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return meta_hand_over(e, arr, out);
}

static enum err meta_update_user(struct meta *m, const char *sql, const char *text, int num,
                                 const char *name)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st != NULL) {
        if (text != NULL)
            sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int(st, 1, num);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_DONE)
            e = sqlite3_changes(m->w.db) == 1 ? ERR_OK : ERR_NOT_FOUND;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_user_set_disabled(struct meta *m, const char *name, int disabled)
{
    return meta_update_user(m, "UPDATE users SET disabled=? WHERE name=?", NULL, disabled, name);
}

enum err meta_user_set_password(struct meta *m, const char *name, const char *pw_hash)
{
    return meta_update_user(m, "UPDATE users SET pw_hash=? WHERE name=?", pw_hash, 0, name);
}

/* ------------------------------------------------------------- sessions */

enum err meta_session_create(struct meta *m, const uint8_t token_hash[32], int64_t user_id,
                             int64_t expires_at, int mfa)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "INSERT INTO sessions(token_hash, user_id, created_at, "
                                           "expires_at, mfa, mfa_at) VALUES(?,?,?,?,?,?)");
    if (st != NULL) {
        int64_t now = meta_now();
        sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, user_id);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_int64(st, 4, expires_at);
        sqlite3_bind_int(st, 5, mfa);
        sqlite3_bind_int64(st, 6, mfa ? now : 0);
        e = sqlite3_step(st) == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

/* Copies for the store's cache (memo.h) of the per-request lookups. */
static int memo_copy_session(void *out, const void *val)
{
    memcpy(out, val, sizeof(struct meta_session));
    return 0;
}

static void *memo_dup(const void *val, size_t len)
{
    void *p = malloc(len);
    if (p != NULL)
        memcpy(p, val, len);
    return p;
}

static void memo_put_dup(struct meta *m, uint64_t gen, const void *key, size_t klen,
                         const void *val, size_t len)
{
    void *p = memo_dup(val, len);
    if (p != NULL)
        meta_memo_put(m, gen, key, klen, p, free);
}

enum err meta_session_lookup(struct meta *m, const uint8_t token_hash[32], int64_t now,
                             struct meta_session *s)
{
    uint8_t key[33] = {'S'};
    memcpy(key + 1, token_hash, 32);
    if (meta_memo_get(m, key, sizeof(key), memo_copy_session, s))
        return s->expires_at > now ? ERR_OK : ERR_UNAUTHENTICATED;
    uint64_t gen = meta_memo_gen(m);
    struct meta_conn *c = meta_read(m);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_stmt(c, "SELECT id, user_id, created_at, expires_at, mfa, mfa_at "
                                    "FROM sessions WHERE token_hash=? AND revoked=0");
    if (st != NULL) {
        sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            s->id = sqlite3_column_int64(st, 0);
            s->user_id = sqlite3_column_int64(st, 1);
            s->created_at = sqlite3_column_int64(st, 2);
            s->expires_at = sqlite3_column_int64(st, 3);
            s->mfa = sqlite3_column_int(st, 4);
            s->mfa_at = sqlite3_column_int64(st, 5);
            e = s->expires_at > now ? ERR_OK : ERR_UNAUTHENTICATED;
            memo_put_dup(m, gen, key, sizeof(key), s, sizeof(*s));
        } else if (rc == SQLITE_DONE) {
            e = ERR_UNAUTHENTICATED;
        }
    }
    meta_stmt_done(c, st);
    meta_read_done(c);
    return e;
}

/* A session with its user and the user's groups (meta_session_principal). */
struct memo_principal {
    struct meta_session s;
    struct meta_user u; /* without the password hash */
    json_t *groups;
};

static int memo_copy_principal(void *out, const void *val)
{
    const struct memo_principal *from = val;
    struct memo_principal *to = out;
    to->s = from->s;
    if (memo_copy_user(&to->u, &from->u) != 0)
        return -1;
    to->groups = memo_json_copy(from->groups);
    if (to->groups == NULL) {
        meta_user_clear(&to->u);
        return -1;
    }
    return 0;
}

static void memo_drop_principal(void *val)
{
    struct memo_principal *p = val;
    meta_user_clear(&p->u);
    json_decref(p->groups);
    free(p);
}

enum err meta_session_principal(struct meta *m, const uint8_t token_hash[32], int64_t now,
                                struct meta_session *s, struct meta_user *u, json_t **groups)
{
    uint8_t key[33] = {'P'};
    memcpy(key + 1, token_hash, 32);
    struct memo_principal got;
    if (meta_memo_get(m, key, sizeof(key), memo_copy_principal, &got)) {
        if (got.s.expires_at <= now) {
            meta_user_clear(&got.u);
            json_decref(got.groups);
            return ERR_UNAUTHENTICATED;
        }
        *s = got.s;
        *u = got.u;
        *groups = got.groups;
        return ERR_OK;
    }
    uint64_t gen = meta_memo_gen(m);
    enum err e = meta_session_lookup(m, token_hash, now, s);
    if (e != ERR_OK)
        return e;
    e = meta_user_get_by_id(m, s->user_id, u);
    if (e != ERR_OK)
        return e;
    char principal[sizeof(u->name) + 8];
    str_concat(principal, sizeof(principal), "user:", u->name, (const char *)NULL);
    e = meta_principal_groups(m, principal, groups);
    if (e != ERR_OK) {
        meta_user_clear(u);
        return ERR_IO;
    }
    struct memo_principal *keep = malloc(sizeof(*keep));
    struct memo_principal now_read = {.s = *s, .u = *u, .groups = *groups};
    if (keep != NULL && memo_copy_principal(keep, &now_read) == 0)
        meta_memo_put(m, gen, key, sizeof(key), keep, memo_drop_principal);
    else
        free(keep);
    return ERR_OK;
}

static enum err meta_session_update(struct meta *m, const char *sql, const void *blob, int64_t id)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st != NULL) {
        if (blob != NULL)
            sqlite3_bind_blob(st, 1, blob, 32, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, 1, id);
        e = sqlite3_step(st) == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_session_revoke(struct meta *m, const uint8_t token_hash[32])
{
    return meta_session_update(m, "UPDATE sessions SET revoked=1 WHERE token_hash=?", token_hash,
                               0);
}

enum err meta_session_revoke_user(struct meta *m, int64_t user_id)
{
    return meta_session_update(m, "UPDATE sessions SET revoked=1 WHERE user_id=?", NULL, user_id);
}

/* ------------------------------------------------------------- versions */

static enum err meta_artifact_ensure(struct meta *m, const struct meta_new_version *nv,
                                     int64_t *artifact_id)
{
    sqlite3_stmt *st = meta_prepare(&m->w, "SELECT id, kind, tags FROM artifacts WHERE path=?");
    if (st == NULL)
        return ERR_IO;
    sqlite3_bind_text(st, 1, nv->path->full, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *artifact_id = sqlite3_column_int64(st, 0);
        const char *kind = (const char *)sqlite3_column_text(st, 1);
        int kind_differs = nv->kind != NULL && kind != NULL && strcmp(kind, nv->kind) != 0;
        json_t *tags = meta_column_json(st, 2);
        sqlite3_finalize(st);
        if (kind_differs) {
            json_decref(tags);
            return ERR_CONFLICT;
        }
        enum err e = ERR_OK;
        if (nv->tags != NULL && json_object_size(nv->tags) > 0) {
            if (tags == NULL)
                tags = json_object();
            json_object_update(tags, nv->tags);
            char *text = meta_json_text(tags, "{}");
            sqlite3_stmt *up = meta_prepare(&m->w, "UPDATE artifacts SET tags=? WHERE id=?");
            e = ERR_IO;
            if (up != NULL) {
                sqlite3_bind_text(up, 1, text, -1, SQLITE_STATIC);
                sqlite3_bind_int64(up, 2, *artifact_id);
                e = sqlite3_step(up) == SQLITE_DONE ? ERR_OK : ERR_IO;
            }
            sqlite3_finalize(up);
            free(text);
        }
        json_decref(tags);
        return e;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ERR_IO;
    char *tags_text = meta_json_text(nv->tags, "{}");
    st = meta_prepare(&m->w,
                      "INSERT INTO artifacts(path, project, env, name, kind, sensitivity, tags, "
                      "created_at, created_by) VALUES(?,?,?,?,?,?,?,?,?)");
    enum err e = ERR_IO;
    if (st != NULL) {
        sqlite3_bind_text(st, 1, nv->path->full, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, nv->path->project, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, nv->path->env, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, nv->path->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, nv->kind != NULL ? nv->kind : "other", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, nv->sensitivity >= 0 ? nv->sensitivity : 1);
        sqlite3_bind_text(st, 7, tags_text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, meta_now());
        sqlite3_bind_text(st, 9, nv->creator, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_DONE) {
            *artifact_id = sqlite3_last_insert_rowid(m->w.db);
            e = ERR_OK;
        }
    }
    sqlite3_finalize(st);
    free(tags_text);
    return e;
}

static enum err meta_version_insert(struct meta *m, const struct meta_new_version *nv,
                                    int64_t artifact_id, int new_artifact, uint64_t *version_out)
{
    sqlite3_stmt *st = meta_prepare(
        &m->w, "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE artifact_id=?");
    if (st == NULL)
        return ERR_IO;
    sqlite3_bind_int64(st, 1, artifact_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return ERR_IO;
    }
    uint64_t next = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);

    char *parents = meta_json_text(nv->parents, "[]");
    st = meta_prepare(&m->w,
                      "INSERT INTO versions(artifact_id, version, sha256, size, sensitivity, "
                      "message, parents, created_by, created_at, blob_id, wrapped_dek, kek_id) "
                      "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    enum err e = ERR_IO;
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, artifact_id);
        sqlite3_bind_int64(st, 2, (int64_t)next);
        sqlite3_bind_text(st, 3, nv->sha256, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (int64_t)nv->size);
        /* On a new artifact the requested label is the artifact's own. */
        if (nv->sensitivity >= 0 && !new_artifact)
            sqlite3_bind_int(st, 5, nv->sensitivity);
        if (nv->message != NULL)
            sqlite3_bind_text(st, 6, nv->message, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, parents, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, nv->creator, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 9, meta_now());
        sqlite3_bind_text(st, 10, nv->blob_id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 11, nv->wrapped_dek, (int)nv->wrapped_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 12, nv->kek_id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_DONE) {
            e = ERR_OK;
            *version_out = next;
        }
    }
    sqlite3_finalize(st);
    if (e == ERR_OK && nv->parents != NULL) {
        int64_t child = sqlite3_last_insert_rowid(m->w.db);
        size_t i;
        json_t *p;
        json_array_foreach(nv->parents, i, p)
        {
            sqlite3_stmt *ls =
                meta_prepare(&m->w, "INSERT INTO lineage(child, parent_ref) VALUES(?,?)");
            if (ls == NULL) {
                e = ERR_IO;
                break;
            }
            sqlite3_bind_int64(ls, 1, child);
            sqlite3_bind_text(ls, 2, json_string_value(p), -1, SQLITE_STATIC);
            if (sqlite3_step(ls) != SQLITE_DONE)
                e = ERR_IO;
            sqlite3_finalize(ls);
        }
    }
    free(parents);
    return e;
}

enum err meta_version_commit(struct meta *m, const struct meta_new_version *nv,
                             uint64_t *version_out)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = meta_exec(&m->w, "BEGIN IMMEDIATE");
    if (e == ERR_OK) {
        int64_t artifact_id = 0;
        int64_t before = sqlite3_last_insert_rowid(m->w.db);
        e = meta_artifact_ensure(m, nv, &artifact_id);
        int new_artifact = e == ERR_OK && sqlite3_last_insert_rowid(m->w.db) != before &&
                           sqlite3_last_insert_rowid(m->w.db) == artifact_id;
        if (e == ERR_OK)
            e = meta_version_insert(m, nv, artifact_id, new_artifact, version_out);
        if (e == ERR_OK)
            e = meta_exec(&m->w, "COMMIT");
        if (e != ERR_OK)
            meta_exec(&m->w, "ROLLBACK");
    }
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

#define META_VERSION_COLUMNS                                                                       \
    "a.id, v.id, a.path, a.kind, a.sensitivity, v.sensitivity, v.version, v.sha256, v.size, "      \
    "v.blob_id, v.wrapped_dek, v.kek_id, v.deleted, a.tags"

static void meta_version_fill(sqlite3_stmt *st, struct meta_version *v)
{
    memset(v, 0, sizeof(*v));
    v->artifact_id = sqlite3_column_int64(st, 0);
    v->version_id = sqlite3_column_int64(st, 1);
    meta_copy_text(v->path, sizeof(v->path), st, 2);
    meta_copy_text(v->kind, sizeof(v->kind), st, 3);
    v->artifact_sensitivity = sqlite3_column_int(st, 4);
    v->version_sensitivity =
        sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 5);
    v->version = (uint64_t)sqlite3_column_int64(st, 6);
    meta_copy_text(v->sha256, sizeof(v->sha256), st, 7);
    v->size = (uint64_t)sqlite3_column_int64(st, 8);
    meta_copy_text(v->blob_id, sizeof(v->blob_id), st, 9);
    int n = sqlite3_column_bytes(st, 10);
    if (n > 0 && (size_t)n <= sizeof(v->wrapped_dek)) {
        memcpy(v->wrapped_dek, sqlite3_column_blob(st, 10), (size_t)n);
        v->wrapped_len = (size_t)n;
    }
    meta_copy_text(v->kek_id, sizeof(v->kek_id), st, 11);
    v->deleted = sqlite3_column_int(st, 12);
    v->tags = meta_column_json(st, 13);
    if (v->tags == NULL)
        v->tags = json_object();
}

static int memo_copy_version(void *out, const void *val)
{
    struct meta_version *v = out;
    memcpy(v, val, sizeof(*v));
    v->tags = memo_json_copy(((const struct meta_version *)val)->tags);
    if (v->tags == NULL) {
        memset(v, 0, sizeof(*v));
        return -1;
    }
    return 0;
}

static void memo_drop_version(void *val)
{
    meta_version_clear(val);
    free(val);
}

enum err meta_version_get(struct meta *m, const struct artifact_ref *ref, struct meta_version *v)
{
    return meta_version_get_ex(m, ref, 0, v);
}

enum err meta_version_get_ex(struct meta *m, const struct artifact_ref *ref, int include_deleted,
                             struct meta_version *v)
{
    const char *sql;
    switch (include_deleted && ref->kind == REF_LATEST ? REF_COUNT_ : ref->kind) {
    case REF_COUNT_:
        sql = "SELECT " META_VERSION_COLUMNS " FROM versions v JOIN artifacts a ON "
              "v.artifact_id=a.id WHERE a.path=? ORDER BY v.version DESC LIMIT 1";
        break;
    case REF_NUMBER:
        sql = "SELECT " META_VERSION_COLUMNS " FROM versions v JOIN artifacts a ON "
              "v.artifact_id=a.id WHERE a.path=? AND v.version=?";
        break;
    case REF_SHA256:
        sql = "SELECT " META_VERSION_COLUMNS " FROM versions v JOIN artifacts a ON "
              "v.artifact_id=a.id WHERE a.path=? AND v.sha256=? AND v.deleted=0 "
              "ORDER BY v.version DESC LIMIT 1";
        break;
    default:
        sql = "SELECT " META_VERSION_COLUMNS " FROM versions v JOIN artifacts a ON "
              "v.artifact_id=a.id WHERE a.path=? AND v.deleted=0 ORDER BY v.version DESC LIMIT 1";
        break;
    }
    /* The key: what selects the query and its parameters. */
    uint8_t key[2 + sizeof(uint64_t) + sizeof(ref->sha256) + sizeof(ref->path.full)];
    size_t klen = 0;
    key[klen++] = 'V';
    key[klen++] = (uint8_t)((include_deleted ? 0x80 : 0) | (ref->kind & 0x7f));
    uint64_t number = ref->kind == REF_NUMBER ? ref->version : 0;
    memcpy(key + klen, &number, sizeof(number));
    klen += sizeof(number);
    size_t hl = ref->kind == REF_SHA256 ? strnlen(ref->sha256, sizeof(ref->sha256) - 1) : 0;
    memcpy(key + klen, ref->sha256, hl);
    klen += hl;
    key[klen++] = '\0';
    size_t pl = strnlen(ref->path.full, sizeof(ref->path.full) - 1);
    memcpy(key + klen, ref->path.full, pl);
    klen += pl;
    uint64_t gen = meta_memo_gen(m);
    if (meta_memo_get(m, key, klen, memo_copy_version, v)) {
        v->gen = gen;
        return ERR_OK;
    }
    struct meta_conn *c = meta_read(m);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_stmt(c, sql);
    if (st != NULL) {
        sqlite3_bind_text(st, 1, ref->path.full, -1, SQLITE_STATIC);
        if (ref->kind == REF_NUMBER)
            sqlite3_bind_int64(st, 2, (int64_t)ref->version);
        else if (ref->kind == REF_SHA256)
            sqlite3_bind_text(st, 2, ref->sha256, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            meta_version_fill(st, v);
            e = ERR_OK;
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
    }
    meta_stmt_done(c, st);
    meta_read_done(c);
    if (e == ERR_OK) {
        v->gen = gen;
        struct meta_version *keep = malloc(sizeof(*keep));
        if (keep != NULL && memo_copy_version(keep, v) == 0)
            meta_memo_put(m, gen, key, klen, keep, memo_drop_version);
        else
            free(keep);
    }
    return e;
}

void meta_version_clear(struct meta_version *v)
{
    if (v == NULL)
        return;
    json_decref(v->tags);
    memset(v, 0, sizeof(*v));
}

static json_t *meta_version_row_json(sqlite3_stmt *st)
{
    /* Columns: version, sha256, size, sensitivity, message, parents, created_by,
     * created_at, deleted, deleted_at, deleted_by */
    json_t *o = json_pack(
        "{s:I, s:s, s:I, s:s, s:I, s:b}", "version", (json_int_t)sqlite3_column_int64(st, 0),
        "sha256", (const char *)sqlite3_column_text(st, 1), "size",
        (json_int_t)sqlite3_column_int64(st, 2), "created_by",
        (const char *)sqlite3_column_text(st, 6), "created_at",
        (json_int_t)sqlite3_column_int64(st, 7), "deleted", sqlite3_column_int(st, 8));
    if (sqlite3_column_type(st, 3) != SQLITE_NULL)
        json_object_set_new(o, "sensitivity",
                            json_string(meta_sensitivity_name(sqlite3_column_int(st, 3))));
    if (sqlite3_column_type(st, 4) != SQLITE_NULL)
        json_object_set_new(o, "message", json_string((const char *)sqlite3_column_text(st, 4)));
    json_t *parents = meta_column_json(st, 5);
    json_object_set_new(o, "parents", parents != NULL ? parents : json_array());
    if (sqlite3_column_int(st, 8)) {
        json_object_set_new(o, "deleted_at", json_integer(sqlite3_column_int64(st, 9)));
        if (sqlite3_column_type(st, 10) != SQLITE_NULL)
            json_object_set_new(o, "deleted_by",
                                json_string((const char *)sqlite3_column_text(st, 10)));
    }
    return o;
}

#define META_VERSION_ROW_COLUMNS                                                                   \
    "version, sha256, size, sensitivity, message, parents, created_by, created_at, deleted, "      \
    "deleted_at, deleted_by"

/* What meta_version_describe reads from the database for version id (ref is
 * its PATH@N): [row, children], row being the version's own fields. */
static enum err meta_version_describe_read(struct meta *m, int64_t id, const char *ref,
                                           json_t **out)
{
    struct meta_conn *c = meta_read(m);
    enum err e = ERR_IO;
    json_t *o = NULL;
    sqlite3_stmt *st =
        meta_stmt(c, "SELECT " META_VERSION_ROW_COLUMNS
                     ", erased_at, erased_by, erase_reason FROM versions WHERE id=?");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            o = meta_version_row_json(st);
            if (sqlite3_column_type(st, 11) != SQLITE_NULL) { /* crypto-shredded */
                json_object_set_new(o, "erased", json_true());
                json_object_set_new(o, "erased_at", json_integer(sqlite3_column_int64(st, 11)));
                const unsigned char *by = sqlite3_column_text(st, 12);
                const unsigned char *why = sqlite3_column_text(st, 13);
                json_object_set_new(o, "erased_by", json_string(by ? (const char *)by : ""));
                json_object_set_new(o, "erase_reason", json_string(why ? (const char *)why : ""));
            }
            e = ERR_OK;
        } else {
            e = ERR_NOT_FOUND;
        }
    }
    meta_stmt_done(c, st);
    if (e == ERR_OK) {
        json_t *children = json_array();
        st = meta_stmt(c, "SELECT a.path, v.version FROM lineage l JOIN versions v ON "
                          "l.child=v.id JOIN artifacts a ON v.artifact_id=a.id "
                          "WHERE l.parent_ref=? ORDER BY a.path, v.version");
        if (st == NULL)
            e = ERR_IO;
        else
            sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
        int rc = SQLITE_DONE;
        while (st != NULL && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            char child[REF_MAX + 1];
            snprintf(child, sizeof(child), "%s@%lld", sqlite3_column_text(st, 0),
                     (long long)sqlite3_column_int64(st, 1));
            json_array_append_new(children, json_string(child));
        }
        if (rc != SQLITE_DONE)
            e = ERR_IO;
        meta_stmt_done(c, st);
        *out = json_pack("[o, o]", o, children);
        o = NULL;
        if (*out == NULL)
            e = ERR_INTERNAL;
        else if (e != ERR_OK)
            json_decref(*out);
    }
    json_decref(o);
    meta_read_done(c);
    return e;
}

/* The cache key of what is kept per version (tag 'D': its description,
 * 'A': its answer's text): the version's id and PATH@N, which is also
 * written to ref. Its length, or 0 when PATH@N does not fit (it always
 * does: a path is shorter). */
#define VERSION_KEY_MAX (1 + sizeof(int64_t) + REF_MAX + 1)
static size_t memo_version_key(uint8_t tag, const struct meta_version *v,
                               uint8_t key[VERSION_KEY_MAX], char ref[REF_MAX + 1])
{
    size_t rl = str_ref(ref, REF_MAX + 1, v->path, v->version);
    if (rl >= REF_MAX)
        return 0;
    key[0] = tag;
    memcpy(key + 1, &v->version_id, sizeof(int64_t));
    memcpy(key + 1 + sizeof(int64_t), ref, rl);
    return 1 + sizeof(int64_t) + rl;
}

enum err meta_version_describe(struct meta *m, const struct meta_version *v, json_t **out)
{
    char ref[REF_MAX + 1];
    uint8_t key[VERSION_KEY_MAX];
    size_t klen = memo_version_key('D', v, key, ref);
    if (klen == 0)
        return ERR_INVALID;
    json_t *read = NULL;
    if (!meta_memo_get(m, key, klen, memo_copy_json, &read)) {
        uint64_t gen = meta_memo_gen(m);
        enum err e = meta_version_describe_read(m, v->version_id, ref, &read);
        if (e != ERR_OK)
            return e;
        json_t *keep = memo_json_copy(read);
        if (keep != NULL)
            meta_memo_put(m, gen, key, klen, keep, memo_drop_json);
    }
    /* The version's own fields, then those of its artifact (from v), then
     * its children. */
    json_t *o = json_incref(json_array_get(read, 0));
    json_t *children = json_incref(json_array_get(read, 1));
    json_decref(read);
    int eff = v->version_sensitivity > v->artifact_sensitivity ? v->version_sensitivity
                                                               : v->artifact_sensitivity;
    json_object_set_new(o, "path", json_string(v->path));
    json_object_set_new(o, "kind", json_string(v->kind));
    json_object_set_new(o, "artifact_sensitivity",
                        json_string(meta_sensitivity_name(v->artifact_sensitivity)));
    json_object_set_new(o, "effective_sensitivity", json_string(meta_sensitivity_name(eff)));
    json_object_set(o, "tags", v->tags);
    json_object_set_new(o, "children", children);
    *out = o;
    return ERR_OK;
}

/* A cached answer: its text and length. */
struct memo_text {
    size_t len;
    char text[];
};

static int memo_copy_text(void *out, const void *val)
{
    const struct memo_text *t = val;
    char **text = out;
    *text = malloc(t->len + 1);
    if (*text == NULL)
        return -1;
    memcpy(*text, t->text, t->len + 1);
    return 0;
}

enum err meta_version_answer(struct meta *m, const struct meta_version *v, char **text, size_t *len)
{
    char ref[REF_MAX + 1];
    uint8_t key[VERSION_KEY_MAX];
    size_t klen = memo_version_key('A', v, key, ref);
    if (klen == 0)
        return ERR_INVALID;
    if (meta_memo_get(m, key, klen, memo_copy_text, text)) {
        *len = strlen(*text);
        return ERR_OK;
    }
    /* The answer also holds v's artifact fields: it is stored under the
     * older of v's generation and the one before the description's read. */
    uint64_t gen = meta_memo_gen(m);
    if (v->gen < gen)
        gen = v->gen;
    json_t *o = NULL;
    enum err e = meta_version_describe(m, v, &o);
    if (e != ERR_OK)
        return e;
    *text = json_text(o, len);
    json_decref(o);
    if (*text == NULL)
        return ERR_INTERNAL;
    struct memo_text *keep = malloc(sizeof(*keep) + *len + 1);
    if (keep != NULL) {
        keep->len = *len;
        memcpy(keep->text, *text, *len + 1);
        meta_memo_put(m, gen, key, klen, keep, free);
    }
    return ERR_OK;
}

enum err meta_version_list(struct meta *m, const struct artifact_path *p, json_t **out)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    json_t *arr = json_array();
    sqlite3_stmt *st =
        meta_prepare(&m->w, "SELECT " META_VERSION_ROW_COLUMNS " FROM versions WHERE artifact_id="
                            "(SELECT id FROM artifacts WHERE path=?) ORDER BY version");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, p->full, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            json_array_append_new(arr, meta_version_row_json(st));
        e = rc == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    if (e == ERR_OK && json_array_size(arr) == 0)
        e = ERR_NOT_FOUND;
    return meta_hand_over(e, arr, out);
}

enum err meta_artifact_list(struct meta *m, const char *prefix, json_t **out)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    json_t *arr = json_array();
    /* substr comparison instead of LIKE: prefixes may contain '_' and '%'-free
     * characters only, but LIKE is case-insensitive for ASCII and paths are not. */
    sqlite3_stmt *st = meta_prepare(
        &m->w, "SELECT a.path, a.kind, a.sensitivity, a.tags, "
               "(SELECT MAX(version) FROM versions v WHERE v.artifact_id=a.id AND v.deleted=0), "
               "(SELECT MAX(COALESCE(v.sensitivity, 0)) FROM versions v WHERE v.artifact_id=a.id "
               "AND v.deleted=0) FROM artifacts a WHERE substr(a.path, 1, length(?1))=?1 "
               "ORDER BY a.path");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (sqlite3_column_type(st, 4) == SQLITE_NULL)
                continue; /* every version tombstoned */
            json_t *tags = meta_column_json(st, 3);
            json_t *o =
                json_pack("{s:s, s:s, s:s, s:I, s:i, s:i, s:o}", "path",
                          (const char *)sqlite3_column_text(st, 0), "kind",
                          (const char *)sqlite3_column_text(st, 1), "sensitivity",
                          meta_sensitivity_name(sqlite3_column_int(st, 2)), "latest",
                          (json_int_t)sqlite3_column_int64(st, 4), "sensitivity_level",
                          sqlite3_column_int(st, 2), "max_version_sensitivity_level",
                          sqlite3_column_int(st, 5), "tags", tags != NULL ? tags : json_object());
            json_array_append_new(arr, o);
        }
        e = rc == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return meta_hand_over(e, arr, out);
}

enum err meta_label(struct meta *m, const struct artifact_path *p, uint64_t version,
                    int sensitivity, json_t *set_tags, json_t *untag)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = meta_exec(&m->w, "BEGIN IMMEDIATE");
    if (e != ERR_OK) {
        pthread_mutex_unlock(&m->w.lock);
        return e;
    }
    sqlite3_stmt *st = meta_prepare(&m->w, "SELECT id, tags FROM artifacts WHERE path=?");
    int64_t aid = 0;
    json_t *tags = NULL;
    e = ERR_IO;
    if (st != NULL) {
        sqlite3_bind_text(st, 1, p->full, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            aid = sqlite3_column_int64(st, 0);
            tags = meta_column_json(st, 1);
            e = ERR_OK;
        } else if (rc == SQLITE_DONE) {
            e = ERR_NOT_FOUND;
        }
    }
    sqlite3_finalize(st);
    if (e == ERR_OK && sensitivity >= 0) {
        st = version > 0 ? meta_prepare(&m->w, "UPDATE versions SET sensitivity=? WHERE "
                                               "artifact_id=? AND version=?")
                         : meta_prepare(&m->w, "UPDATE artifacts SET sensitivity=? WHERE id=?");
        e = ERR_IO;
        if (st != NULL) {
            sqlite3_bind_int(st, 1, sensitivity);
            sqlite3_bind_int64(st, 2, aid);
            if (version > 0)
                sqlite3_bind_int64(st, 3, (int64_t)version);
            if (sqlite3_step(st) == SQLITE_DONE)
                e = sqlite3_changes(m->w.db) == 1 ? ERR_OK : ERR_NOT_FOUND;
        }
        sqlite3_finalize(st);
    }
    if (e == ERR_OK && (set_tags != NULL || untag != NULL)) {
        if (tags == NULL)
            tags = json_object();
        if (set_tags != NULL)
            json_object_update(tags, set_tags);
        size_t i;
        json_t *k;
        if (untag != NULL) {
            json_array_foreach(untag, i, k) json_object_del(tags, json_string_value(k));
        }
        char *text = meta_json_text(tags, "{}");
        st = meta_prepare(&m->w, "UPDATE artifacts SET tags=? WHERE id=?");
        e = ERR_IO;
        if (st != NULL) {
            sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, aid);
            e = sqlite3_step(st) == SQLITE_DONE ? ERR_OK : ERR_IO;
        }
        sqlite3_finalize(st);
        free(text);
    }
    json_decref(tags);
    if (e == ERR_OK)
        e = meta_exec(&m->w, "COMMIT");
    if (e != ERR_OK)
        meta_exec(&m->w, "ROLLBACK");
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_version_tombstone(struct meta *m, int64_t version_id, const char *by)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st =
        meta_prepare(&m->w, "UPDATE versions SET deleted=1, deleted_at=?, deleted_by=? "
                            "WHERE id=? AND deleted=0");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, meta_now());
        sqlite3_bind_text(st, 2, by, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, version_id);
        if (sqlite3_step(st) == SQLITE_DONE)
            e = sqlite3_changes(m->w.db) == 1 ? ERR_OK : ERR_NOT_FOUND;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

enum err meta_blob_ids(struct meta *m, void (*fn)(const char *blob_id, void *ctx), void *ctx)
{
    pthread_mutex_lock(&m->w.lock);
    enum err e = ERR_IO;
    sqlite3_stmt *st = meta_prepare(&m->w, "SELECT blob_id FROM versions WHERE erased_at IS NULL");
    if (st != NULL) {
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            fn((const char *)sqlite3_column_text(st, 0), ctx);
        e = rc == SQLITE_DONE ? ERR_OK : ERR_IO;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}
