#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "meta/access.h"
#include "meta/meta.h"
#include "meta/meta_int.h"

struct fixture {
    char dir[64];
    char path[128];
    struct meta *m;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/coffer-metastmt-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/coffer.db", f->dir);
    assert_int_equal(meta_open(f->path, 1, &f->m), ERR_OK);
    *state = f;
    return 0;
}

/* The same store with a pool of read connections, as the server opens it. */
static int setup_pool(void **state)
{
    setup(state);
    struct fixture *f = *state;
    assert_int_equal(meta_open_readers(f->m, 3), ERR_OK);
    assert_int_equal(f->m->n_readers, 3);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    meta_close(f->m);
    char p[160];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static const char sql_one[] = "SELECT ?1 + 1";
static const char sql_two[] = "SELECT ?1 * 2";

/* The same literal gives the same statement back, reset and without the
 * previous bindings; a different literal gives another one. */
static void test_reuse_and_reset(void **state)
{
    struct fixture *f = *state;
    struct meta *m = f->m;
    pthread_mutex_lock(&m->w.lock);
    sqlite3_stmt *a = meta_stmt(&m->w, sql_one);
    assert_non_null(a);
    sqlite3_bind_int(a, 1, 41);
    assert_int_equal(sqlite3_step(a), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(a, 0), 42);
    assert_true(sqlite3_stmt_busy(a));
    meta_stmt_done(&m->w, a);
    assert_false(sqlite3_stmt_busy(a));

    sqlite3_stmt *b = meta_stmt(&m->w, sql_one);
    assert_ptr_equal(a, b);
    /* Bindings were cleared: NULL + 1 is NULL. */
    assert_int_equal(sqlite3_step(b), SQLITE_ROW);
    assert_int_equal(sqlite3_column_type(b, 0), SQLITE_NULL);
    /* Abandoned mid-result: the next meta_stmt still starts from the top. */
    sqlite3_stmt *c = meta_stmt(&m->w, sql_one);
    assert_ptr_equal(a, c);
    sqlite3_bind_int(c, 1, 1);
    assert_int_equal(sqlite3_step(c), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(c, 0), 2);
    meta_stmt_done(&m->w, c);

    sqlite3_stmt *d = meta_stmt(&m->w, sql_two);
    assert_non_null(d);
    assert_ptr_not_equal(a, d);
    meta_stmt_done(&m->w, d);
    pthread_mutex_unlock(&m->w.lock);
}

/* A buffer that reuses an address with other text is not given the old
 * statement. */
static void test_same_address_other_text(void **state)
{
    struct fixture *f = *state;
    struct meta *m = f->m;
    char sql[32];
    pthread_mutex_lock(&m->w.lock);
    snprintf(sql, sizeof(sql), "SELECT 7");
    sqlite3_stmt *a = meta_stmt(&m->w, sql);
    assert_non_null(a);
    assert_int_equal(sqlite3_step(a), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(a, 0), 7);
    meta_stmt_done(&m->w, a);
    snprintf(sql, sizeof(sql), "SELECT 8");
    sqlite3_stmt *b = meta_stmt(&m->w, sql);
    assert_non_null(b);
    assert_int_equal(sqlite3_step(b), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(b, 0), 8);
    meta_stmt_done(&m->w, b);
    pthread_mutex_unlock(&m->w.lock);
}

/* When the table is full, statements are still served and finalized on
 * done (no leak under the sanitizer). */
static void test_full_table(void **state)
{
    struct fixture *f = *state;
    struct meta *m = f->m;
    static char sql[META_STMT_CACHE + 4][24];
    pthread_mutex_lock(&m->w.lock);
    for (int i = 0; i < META_STMT_CACHE + 4; i++) {
        snprintf(sql[i], sizeof(sql[i]), "SELECT %d", i);
        sqlite3_stmt *st = meta_stmt(&m->w, sql[i]);
        assert_non_null(st);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), i);
        meta_stmt_done(&m->w, st);
    }
    assert_null(meta_stmt(&m->w, "SELECT FROM nowhere"));
    pthread_mutex_unlock(&m->w.lock);
}

/* The cached per-request queries see every change made in between. */
static void test_cached_queries_see_changes(void **state)
{
    struct fixture *f = *state;
    struct meta *m = f->m;
    json_t *attrs = json_object();
    assert_int_equal(meta_user_create(m, "alice", NULL, 1, attrs, 0), ERR_OK);
    json_decref(attrs);
    struct meta_user u;
    assert_int_equal(meta_user_get(m, "alice", &u), ERR_OK);
    int64_t uid = u.id;
    meta_user_clear(&u);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(meta_user_get_by_id(m, uid, &u), ERR_OK);
        assert_string_equal(u.name, "alice");
        meta_user_clear(&u);
    }
    assert_int_equal(meta_user_get_by_id(m, uid + 100, &u), ERR_NOT_FOUND);

    uint8_t tok[32], other[32];
    memset(tok, 0xa5, sizeof(tok));
    memset(other, 0x5a, sizeof(other));
    int64_t now = meta_now();
    assert_int_equal(meta_session_create(m, tok, uid, now + 3600, 0), ERR_OK);
    struct meta_session s;
    for (int round = 0; round < 3; round++) {
        memset(&s, 0, sizeof(s));
        assert_int_equal(meta_session_lookup(m, tok, now, &s), ERR_OK);
        assert_int_equal(s.user_id, uid);
        assert_int_equal(meta_session_lookup(m, other, now, &s), ERR_UNAUTHENTICATED);
    }
    assert_int_equal(meta_session_lookup(m, tok, now + 7200, &s), ERR_UNAUTHENTICATED);
    assert_int_equal(meta_session_revoke(m, tok), ERR_OK);
    assert_int_equal(meta_session_lookup(m, tok, now, &s), ERR_UNAUTHENTICATED);

    json_t *groups = NULL;
    assert_int_equal(meta_principal_groups(m, "user:alice", &groups), ERR_OK);
    assert_int_equal(json_array_size(groups), 0);
    json_decref(groups);
    assert_int_equal(meta_group_create(m, "ml"), ERR_OK);
    assert_int_equal(meta_group_create(m, "ops"), ERR_OK);
    assert_int_equal(meta_group_add_member(m, "ops", "user:alice"), ERR_OK);
    assert_int_equal(meta_group_add_member(m, "ml", "user:alice"), ERR_OK);
    assert_int_equal(meta_principal_groups(m, "user:alice", &groups), ERR_OK);
    assert_int_equal(json_array_size(groups), 2);
    assert_string_equal(json_string_value(json_array_get(groups, 0)), "ml");
    assert_string_equal(json_string_value(json_array_get(groups, 1)), "ops");
    json_decref(groups);
    assert_int_equal(meta_group_remove_member(m, "ml", "user:alice"), ERR_OK);
    assert_int_equal(meta_principal_groups(m, "user:alice", &groups), ERR_OK);
    assert_int_equal(json_array_size(groups), 1);
    assert_string_equal(json_string_value(json_array_get(groups, 0)), "ops");
    json_decref(groups);
}

/* Readers held at the same time are different connections; they refuse
 * writes; a reader sees what the main connection committed. */
static void test_readers(void **state)
{
    struct fixture *f = *state;
    struct meta *m = f->m;
    struct meta_conn *a = meta_read(m);
    struct meta_conn *b = meta_read(m);
    struct meta_conn *c = meta_read(m);
    assert_ptr_not_equal(a, b);
    assert_ptr_not_equal(b, c);
    assert_ptr_not_equal(a, c);
    assert_ptr_not_equal(a, &m->w);
    assert_int_equal(meta_exec(a, "CREATE TABLE sneaky(x)"), ERR_IO);
    meta_read_done(c);
    meta_read_done(b);
    /* A held statement on a does not stop the main connection committing. */
    sqlite3_stmt *st = meta_stmt(a, "SELECT count(*) FROM users");
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    meta_stmt_done(a, st);
    meta_read_done(a);
    json_t *attrs = json_object();
    assert_int_equal(meta_user_create(m, "bob", NULL, 1, attrs, 0), ERR_OK);
    json_decref(attrs);
    for (int i = 0; i < 6; i++) {
        struct meta_conn *r = meta_read(m);
        st = meta_stmt(r, "SELECT count(*) FROM users");
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), 1);
        meta_stmt_done(r, st);
        meta_read_done(r);
    }
}

struct reader_arg {
    struct meta *m;
    int64_t uid;
    int failures;
};

static void *reader_main(void *p)
{
    struct reader_arg *a = p;
    for (int i = 0; i < 2000; i++) {
        struct meta_user u;
        if (meta_user_get_by_id(a->m, a->uid, &u) != ERR_OK || strcmp(u.name, "carol") != 0)
            a->failures++;
        else
            meta_user_clear(&u);
    }
    return NULL;
}

/* Threads reading through the pool while the main connection writes: every
 * read succeeds and sees a consistent row. */
static void test_readers_concurrent(void **state)
{
    struct fixture *f = *state;
    struct meta *m = f->m;
    json_t *attrs = json_object();
    assert_int_equal(meta_user_create(m, "carol", NULL, 1, attrs, 0), ERR_OK);
    struct meta_user u;
    assert_int_equal(meta_user_get(m, "carol", &u), ERR_OK);
    struct reader_arg args[5];
    pthread_t th[5];
    for (int i = 0; i < 5; i++) {
        args[i] = (struct reader_arg){m, u.id, 0};
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &args[i]), 0);
    }
    meta_user_clear(&u);
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof(name), "writer-%d", i);
        assert_int_equal(meta_user_create(m, name, NULL, 1, attrs, 0), ERR_OK);
    }
    json_decref(attrs);
    for (int i = 0; i < 5; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reuse_and_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_address_other_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cached_queries_see_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cached_queries_see_changes, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_readers, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_readers_concurrent, setup_pool, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
