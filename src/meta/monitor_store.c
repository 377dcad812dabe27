/*
 * monitor_store: findings, holds and review decisions (see monitor_store.h).
 */
#include "meta/monitor_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/meta_int.h"
#include "util/log.h"

/* A bound parameter: text when s is non-NULL or is_null, else integer. */
struct mparam {
    const char *s;
    int64_t i;
    int is_text;
};

#define MT(x)                                                                                      \
    {                                                                                              \
        (x), 0, 1                                                                                  \
    }
#define MI(x)                                                                                      \
    {                                                                                              \
        NULL, (x), 0                                                                               \
    }

/* Converts the current row into an object keyed by column names; JSON
 * columns (evidence, events, responses) are parsed. */
static json_t *monitor_row(sqlite3_stmt *st)
{
    json_t *o = json_object();
    int n = sqlite3_column_count(st);
    for (int c = 0; c < n; c++) {
        const char *name = sqlite3_column_name(st, c);
        json_t *v;
        switch (sqlite3_column_type(st, c)) {
        case SQLITE_INTEGER:
            v = json_integer(sqlite3_column_int64(st, c));
            break;
        case SQLITE_NULL:
            v = json_null();
            break;
        default:
            if (strcmp(name, "evidence") == 0 || strcmp(name, "events") == 0 ||
                strcmp(name, "responses") == 0) {
                v = meta_column_json(st, c);
                if (v == NULL)
                    v = json_null();
            } else {
                v = json_string((const char *)sqlite3_column_text(st, c));
            }
            break;
        }
        json_object_set_new(o, name, v != NULL ? v : json_null());
    }
    return o;
}

/* Runs sql with params; appends each row to rows (may be NULL); *changes
 * (may be NULL) receives the number of rows changed; *last_id (may be NULL)
 * the last inserted row id. */
static enum err monitor_run(struct meta *m, const char *sql, const struct mparam *p, int np,
                            json_t *rows, int *changes, int64_t *last_id)
{
    pthread_mutex_lock(&m->w.lock);
    sqlite3_stmt *st = meta_prepare(&m->w, sql);
    if (st == NULL) {
        pthread_mutex_unlock(&m->w.lock);
        return ERR_IO;
    }
    for (int i = 0; i < np; i++) {
        if (p[i].is_text && p[i].s != NULL)
            sqlite3_bind_text(st, i + 1, p[i].s, -1, SQLITE_TRANSIENT);
        else if (p[i].is_text)
            sqlite3_bind_null(st, i + 1);
        else
            sqlite3_bind_int64(st, i + 1, p[i].i);
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (rows != NULL)
            json_array_append_new(rows, monitor_row(st));
    }
    enum err e = ERR_OK;
    if (rc != SQLITE_DONE) {
        log_error("meta: %s", sqlite3_errmsg(m->w.db));
        e = ERR_IO;
    }
    if (changes != NULL)
        *changes = sqlite3_changes(m->w.db);
    if (last_id != NULL)
        *last_id = sqlite3_last_insert_rowid(m->w.db);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->w.lock);
    return e;
}

static char *monitor_dump(json_t *v, const char *dflt)
{
    char *s = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;
    return s != NULL ? s : strdup(dflt);
}

enum err meta_finding_add(struct meta *m, const struct meta_finding *f, int64_t *id)
{
    char *ev = monitor_dump(f->evidence, "{}");
    char *ids = monitor_dump(f->events, "[]");
    char *resp = monitor_dump(f->responses, "[]");
    enum err e = ERR_INTERNAL;
    if (ev != NULL && ids != NULL && resp != NULL) {
        struct mparam p[] = {MT(f->rule),    MT(f->severity), MT(f->principal), MI(f->event_time),
                             MI(meta_now()), MT(f->summary),  MT(ev),           MT(ids),
                             MT(resp)};
        e = monitor_run(m,
                        "INSERT INTO monitor_findings(rule, severity, principal, event_time, "
                        "created_at, summary, evidence, events, responses) "
                        "VALUES(?,?,?,?,?,?,?,?,?)",
                        p, 9, NULL, NULL, id);
    }
    free(ev);
    free(ids);
    free(resp);
    return e;
}

enum err meta_finding_list(struct meta *m, int all, int limit, json_t **out)
{
    *out = json_array();
    if (*out == NULL)
        return ERR_INTERNAL;
    struct mparam p[] = {MI(all ? 1 : 0), MI(limit < 1 ? 1 : limit > 10000 ? 10000 : limit)};
    enum err e = monitor_run(m,
                             "SELECT id, rule, severity, principal, event_time, created_at, "
                             "summary, evidence, events, responses, acked_at, acked_by "
                             "FROM monitor_findings WHERE ?1 OR acked_at IS NULL "
                             "ORDER BY id DESC LIMIT ?2",
                             p, 2, *out, NULL, NULL);
    if (e != ERR_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return e;
}

enum err meta_finding_ack(struct meta *m, int64_t id, const char *by)
{
    struct mparam p[] = {MI(meta_now()), MT(by), MI(id)};
    int changes = 0;
    enum err e = monitor_run(m,
                             "UPDATE monitor_findings SET acked_at=?, acked_by=? "
                             "WHERE id=? AND acked_at IS NULL",
                             p, 3, NULL, &changes, NULL);
    if (e == ERR_OK && changes == 0)
        e = ERR_NOT_FOUND;
    return e;
}

enum err meta_finding_counts(struct meta *m, json_t **out)
{
    json_t *rows = json_array();
    enum err e = monitor_run(m, "SELECT rule, count(*) AS n FROM monitor_findings GROUP BY rule",
                             NULL, 0, rows, NULL, NULL);
    *out = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        json_object_set(*out, json_string_value(json_object_get(r, "rule")),
                        json_object_get(r, "n"));
    }
    json_decref(rows);
    return e;
}

enum err meta_hold_set(struct meta *m, const char *principal, const char *kind, int64_t since,
                       int64_t finding_id, const char *reason)
{
    struct mparam p[] = {MT(principal), MT(kind), MI(since), MI(finding_id), MT(reason)};
    return monitor_run(m,
                       "INSERT OR IGNORE INTO monitor_holds(principal, kind, since, finding_id, "
                       "reason) VALUES(?,?,?,?,?)",
                       p, 5, NULL, NULL, NULL);
}

enum err meta_hold_clear(struct meta *m, const char *principal, const char *kind)
{
    struct mparam p[] = {MT(principal), MT(kind)};
    int changes = 0;
    enum err e = monitor_run(m,
                             "DELETE FROM monitor_holds WHERE principal=?1 AND "
                             "(?2 IS NULL OR kind=?2)",
                             p, 2, NULL, &changes, NULL);
    if (e == ERR_OK && changes == 0)
        e = ERR_NOT_FOUND;
    return e;
}

enum err meta_hold_list(struct meta *m, json_t **out)
{
    *out = json_array();
    enum err e = monitor_run(m,
                             "SELECT principal, kind, since, finding_id, reason FROM monitor_holds "
                             "ORDER BY principal, kind",
                             NULL, 0, *out, NULL, NULL);
    if (e != ERR_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return e;
}

enum err meta_review_decision_add(struct meta *m, const char *reviewer, const char *role,
                                  const char *principal, const char *scope, const char *decision,
                                  const char *note)
{
    struct mparam p[] = {MT(reviewer), MT(role), MT(principal), MT(scope),
                         MT(decision), MT(note), MI(meta_now())};
    return monitor_run(m,
                       "INSERT INTO review_decisions(reviewer, role, principal, scope, decision, "
                       "note, decided_at) VALUES(?,?,?,?,?,?,?)",
                       p, 7, NULL, NULL, NULL);
}

static int64_t monitor_count(struct meta *m, const char *sql, int64_t now)
{
    json_t *rows = json_array();
    struct mparam p[] = {MI(now)};
    int64_t n = -1;
    if (monitor_run(m, sql, p, 1, rows, NULL, NULL) == ERR_OK)
        n = (int64_t)json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
    json_decref(rows);
    return n;
}

void meta_monitor_counts(struct meta *m, int64_t now, int64_t *shares, int64_t *tokens)
{
    *shares = monitor_count(m,
                            "SELECT count(*) AS n FROM shares WHERE revoked_at IS NULL AND "
                            "expires_at > ?1 AND (max_uses IS NULL OR max_uses = 0 OR uses < "
                            "max_uses)",
                            now);
    *tokens = monitor_count(m,
                            "SELECT count(*) AS n FROM api_tokens WHERE revoked_at IS NULL AND "
                            "expires_at > ?1",
                            now);
}
