/* The store's cache of per-request lookups (meta/memo.h): values are served
 * only at the generation they were read at, and every change made through
 * the store is seen by the next lookup. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "meta/access.h"
#include "meta/memo.h"
#include "meta/meta.h"
#include "meta/meta_int.h"
#include "registry/path.h"

/* ---- the cache on its own */

static int drops;

static void drop_int(void *val)
{
    drops++;
    free(val);
}

static int copy_int(void *out, const void *val)
{
    memcpy(out, val, sizeof(int));
    return 0;
}

static int *boxed(int v)
{
    int *p = malloc(sizeof(*p));
    assert_non_null(p);
    *p = v;
    return p;
}

static void test_memo_generations(void **state)
{
    (void)state;
    drops = 0;
    struct memo *mc = memo_new(16);
    assert_non_null(mc);
    int out = 0;
    assert_int_equal(memo_get(mc, 1, "k", 1, copy_int, &out), 0);
    memo_put(mc, 1, "k", 1, boxed(7), drop_int);
    assert_int_equal(memo_get(mc, 1, "k", 1, copy_int, &out), 1);
    assert_int_equal(out, 7);
    /* Another key of the same length and first byte is not this one. */
    assert_int_equal(memo_get(mc, 1, "j", 1, copy_int, &out), 0);
    assert_int_equal(memo_get(mc, 1, "kk", 2, copy_int, &out), 0);
    /* A later generation does not see it, and it is dropped. */
    assert_int_equal(memo_get(mc, 2, "k", 1, copy_int, &out), 0);
    assert_int_equal(drops, 1);
    assert_int_equal(memo_get(mc, 1, "k", 1, copy_int, &out), 0);
    /* A value read at an older generation does not replace a newer one. */
    memo_put(mc, 5, "k", 1, boxed(5), drop_int);
    memo_put(mc, 4, "k", 1, boxed(4), drop_int);
    assert_int_equal(drops, 2);
    assert_int_equal(memo_get(mc, 5, "k", 1, copy_int, &out), 1);
    assert_int_equal(out, 5);
    memo_put(mc, 6, "k", 1, boxed(6), drop_int);
    assert_int_equal(drops, 3);
    uint64_t hits, misses;
    memo_counts(mc, &hits, &misses);
    assert_int_equal(hits, 2);
    assert_int_equal(misses, 5);
    memo_free(mc);
    assert_int_equal(drops, 4);
}

/* Many keys in few slots: evictions, never a wrong value. */
static void test_memo_evictions(void **state)
{
    (void)state;
    struct memo *mc = memo_new(16);
    char key[16];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        memo_put(mc, 3, key, strlen(key), boxed(i), free);
    }
    int found = 0;
    for (int i = 0; i < 500; i++) {
        int out = -1;
        snprintf(key, sizeof(key), "key-%d", i);
        if (memo_get(mc, 3, key, strlen(key), copy_int, &out)) {
            assert_int_equal(out, i);
            found++;
        }
    }
    assert_true(found > 0 && found <= 16);
    memo_free(mc);
}

static void test_memo_json_copy(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s, s:[i, {s:b}], s:n}", "a", "text", "b", 1, "c", 1, "d");
    json_t *c = memo_json_copy(v);
    assert_true(json_equal(v, c));
    assert_ptr_not_equal(json_object_get(v, "b"), json_object_get(c, "b"));
    assert_ptr_not_equal(json_array_get(json_object_get(v, "b"), 1),
                         json_array_get(json_object_get(c, "b"), 1));
    /* Changing the copy's containers leaves the original alone. */
    json_array_append_new(json_object_get(c, "b"), json_integer(2));
    json_object_set_new(c, "a", json_string("other"));
    assert_int_equal(json_array_size(json_object_get(v, "b")), 2);
    assert_string_equal(json_string_value(json_object_get(v, "a")), "text");
    json_decref(c);
    json_decref(v);
}

/* 4 threads reading and replacing the same keys (run under the sanitizers). */
struct churn {
    struct memo *mc;
    int seed;
};

static void *churn_main(void *arg)
{
    struct churn *c = arg;
    char key[8];
    for (int i = 0; i < 20000; i++) {
        int k = (i * 7 + c->seed) % 40;
        snprintf(key, sizeof(key), "k%d", k);
        int out = -1;
        if (memo_get(c->mc, (uint64_t)(i / 1000), key, strlen(key), copy_int, &out))
            assert_int_equal(out, k);
        else
            memo_put(c->mc, (uint64_t)(i / 1000), key, strlen(key), boxed(k), free);
    }
    return NULL;
}

static void test_memo_threads(void **state)
{
    (void)state;
    struct memo *mc = memo_new(32);
    pthread_t t[4];
    struct churn c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (struct churn){mc, i};
        assert_int_equal(pthread_create(&t[i], NULL, churn_main, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    memo_free(mc);
}

/* ---- through the store, with a read pool as the server opens it */

struct fixture {
    char dir[64];
    char path[128];
    struct meta *m;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/coffer-memo-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/coffer.db", f->dir);
    assert_int_equal(meta_open(f->path, 1, &f->m), ERR_OK);
    assert_int_equal(meta_open_readers(f->m, 2), ERR_OK);
    assert_non_null(f->m->memo);
    *state = f;
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

static uint64_t hits_of(struct meta *m)
{
    uint64_t h, miss;
    memo_counts(m->memo, &h, &miss);
    return h;
}

static int64_t user_id(struct meta *m, const char *name)
{
    struct meta_user u;
    assert_int_equal(meta_user_get(m, name, &u), ERR_OK);
    int64_t id = u.id;
    meta_user_clear(&u);
    return id;
}

static void test_session_and_user(void **state)
{
    struct fixture *f = *state;
    struct meta *m = f->m;
    json_t *attrs = json_pack("{s:s}", "team", "vision");
    assert_int_equal(meta_user_create(m, "alice", "$argon2id$x", 1, attrs, 0), ERR_OK);
    json_decref(attrs);
    int64_t uid = user_id(m, "alice");
    uint8_t hash[32];
    memset(hash, 0xab, sizeof(hash));
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(meta_session_create(m, hash, uid, now + 3600, 0), ERR_OK);

    struct meta_session s;
    assert_int_equal(meta_session_lookup(m, hash, now, &s), ERR_OK);
    uint64_t h0 = hits_of(m);
    assert_int_equal(meta_session_lookup(m, hash, now, &s), ERR_OK);
    assert_int_equal(hits_of(m), h0 + 1); /* answered from the cache */
    assert_int_equal(s.user_id, uid);
    /* Expiry is decided at each lookup, cached or not. */
    assert_int_equal(meta_session_lookup(m, hash, now + 3600, &s), ERR_UNAUTHENTICATED);

    struct meta_user u;
    assert_int_equal(meta_user_get_by_id(m, uid, &u), ERR_OK);
    assert_null(u.pw_hash); /* never read for authentication */
    assert_int_equal(u.disabled, 0);
    meta_user_clear(&u);
    assert_int_equal(meta_user_get_by_id(m, uid, &u), ERR_OK);
    assert_string_equal(json_string_value(json_object_get(u.attrs, "team")), "vision");
    /* The caller's copy is its own. */
    json_object_set_new(u.attrs, "team", json_string("changed"));
    meta_user_clear(&u);
    assert_int_equal(meta_user_get_by_id(m, uid, &u), ERR_OK);
    assert_string_equal(json_string_value(json_object_get(u.attrs, "team")), "vision");
    meta_user_clear(&u);

    /* The session with its user and groups, as authentication reads it. */
    struct meta_session ps;
    json_t *groups = NULL;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(meta_session_principal(m, hash, now, &ps, &u, &groups), ERR_OK);
        assert_int_equal(ps.user_id, uid);
        assert_string_equal(u.name, "alice");
        assert_null(u.pw_hash);
        assert_int_equal(json_array_size(groups), 0);
        meta_user_clear(&u);
        json_decref(groups);
    }
    assert_int_equal(meta_session_principal(m, hash, now + 3600, &ps, &u, &groups),
                     ERR_UNAUTHENTICATED);
    assert_int_equal(meta_group_create(m, "vision"), ERR_OK);
    assert_int_equal(meta_group_add_member(m, "vision", "user:alice"), ERR_OK);
    assert_int_equal(meta_session_principal(m, hash, now, &ps, &u, &groups), ERR_OK);
    assert_string_equal(json_string_value(json_array_get(groups, 0)), "vision");
    meta_user_clear(&u);
    json_decref(groups);

    /* Disabling the user and revoking the session show at once. */
    assert_int_equal(meta_user_set_disabled(m, "alice", 1), ERR_OK);
    assert_int_equal(meta_session_principal(m, hash, now, &ps, &u, &groups), ERR_OK);
    assert_int_equal(u.disabled, 1);
    meta_user_clear(&u);
    json_decref(groups);
    assert_int_equal(meta_user_get_by_id(m, uid, &u), ERR_OK);
    assert_int_equal(u.disabled, 1);
    meta_user_clear(&u);
    assert_int_equal(meta_session_revoke(m, hash), ERR_OK);
    assert_int_equal(meta_session_lookup(m, hash, now, &s), ERR_UNAUTHENTICATED);
    assert_int_equal(meta_session_principal(m, hash, now, &ps, &u, &groups), ERR_UNAUTHENTICATED);
}

static void test_groups(void **state)
{
    struct fixture *f = *state;
    struct meta *m = f->m;
    assert_int_equal(meta_group_create(m, "ml"), ERR_OK);
    json_t *g = NULL;
    assert_int_equal(meta_principal_groups(m, "user:bob", &g), ERR_OK);
    assert_int_equal(json_array_size(g), 0);
    json_decref(g);
    assert_int_equal(meta_group_add_member(m, "ml", "user:bob"), ERR_OK);
    assert_int_equal(meta_principal_groups(m, "user:bob", &g), ERR_OK);
    assert_int_equal(json_array_size(g), 1);
    json_decref(g);
    uint64_t h0 = hits_of(m);
    assert_int_equal(meta_principal_groups(m, "user:bob", &g), ERR_OK);
    assert_int_equal(hits_of(m), h0 + 1);
    assert_string_equal(json_string_value(json_array_get(g, 0)), "ml");
    json_decref(g);
    assert_int_equal(meta_group_remove_member(m, "ml", "user:bob"), ERR_OK);
    assert_int_equal(meta_principal_groups(m, "user:bob", &g), ERR_OK);
    assert_int_equal(json_array_size(g), 0);
    json_decref(g);
}

static void commit_version(struct meta *m, const struct artifact_path *p, const char *sha,
                           uint64_t expect)
{
    uint8_t dek[40];
    memset(dek, 1, sizeof(dek));
    char blob_id[33];
    memcpy(blob_id, sha, 32); /* one blob per version */
    blob_id[32] = '\0';
    struct meta_new_version nv = {.path = p,
                                  .kind = "model",
                                  .sensitivity = -1,
                                  .creator = "user:alice",
                                  .sha256 = sha,
                                  .size = 10,
                                  .blob_id = blob_id,
                                  .wrapped_dek = dek,
                                  .wrapped_len = sizeof(dek),
                                  .kek_id = "kek-1"};
    uint64_t n = 0;
    assert_int_equal(meta_version_commit(m, &nv, &n), ERR_OK);
    assert_int_equal(n, expect);
}

static void test_versions(void **state)
{
    struct fixture *f = *state;
    struct meta *m = f->m;
    char why[200];
    struct artifact_ref latest, first;
    assert_int_equal(ref_parse("proj/dev/model", NULL, &latest, why, sizeof(why)), ERR_OK);
    assert_int_equal(ref_parse("proj/dev/model@1", NULL, &first, why, sizeof(why)), ERR_OK);
    char sha1[65], sha2[65];
    memset(sha1, 'a', 64);
    memset(sha2, 'b', 64);
    sha1[64] = sha2[64] = '\0';
    commit_version(m, &latest.path, sha1, 1);

    struct meta_version v;
    assert_int_equal(meta_version_get(m, &latest, &v), ERR_OK);
    assert_int_equal(v.version, 1);
    json_t *d = NULL;
    assert_int_equal(meta_version_describe(m, &v, &d), ERR_OK);
    assert_int_equal(json_array_size(json_object_get(d, "children")), 0);
    json_decref(d);
    meta_version_clear(&v);
    uint64_t h0 = hits_of(m);
    assert_int_equal(meta_version_get(m, &latest, &v), ERR_OK);
    assert_int_equal(meta_version_describe(m, &v, &d), ERR_OK);
    assert_int_equal(hits_of(m), h0 + 2);
    /* The answer is the same, key order included. */
    json_t *again = NULL;
    assert_int_equal(meta_version_describe(m, &v, &again), ERR_OK);
    char *a = json_dumps(d, JSON_COMPACT), *b = json_dumps(again, JSON_COMPACT);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(again);
    json_decref(d);
    meta_version_clear(&v);

    /* A new version moves "latest" at once; version 1 stays itself. */
    commit_version(m, &latest.path, sha2, 2);
    assert_int_equal(meta_version_get(m, &latest, &v), ERR_OK);
    assert_int_equal(v.version, 2);
    assert_string_equal(v.sha256, sha2);
    meta_version_clear(&v);
    assert_int_equal(meta_version_get(m, &first, &v), ERR_OK);
    assert_string_equal(v.sha256, sha1);

    /* Labels and tombstones show at once. */
    json_t *tags = json_pack("{s:s}", "stage", "review");
    assert_int_equal(meta_label(m, &latest.path, 0, 3, tags, NULL), ERR_OK);
    json_decref(tags);
    meta_version_clear(&v);
    assert_int_equal(meta_version_get(m, &first, &v), ERR_OK);
    assert_int_equal(v.artifact_sensitivity, 3);
    assert_string_equal(json_string_value(json_object_get(v.tags, "stage")), "review");
    assert_int_equal(meta_version_describe(m, &v, &d), ERR_OK);
    assert_string_equal(json_string_value(json_object_get(d, "effective_sensitivity")),
                        meta_sensitivity_name(3));
    /* The answer's text is the description's, and follows it. */
    char *text = NULL;
    size_t len = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(meta_version_answer(m, &v, &text, &len), ERR_OK);
        char *want = json_dumps(d, JSON_COMPACT);
        assert_string_equal(text, want);
        assert_int_equal(len, strlen(want));
        free(want);
        free(text);
    }
    json_decref(d);
    json_t *more = json_pack("{s:s}", "owner", "vision");
    assert_int_equal(meta_label(m, &latest.path, 0, -1, more, NULL), ERR_OK);
    json_decref(more);
    meta_version_clear(&v);
    assert_int_equal(meta_version_get(m, &first, &v), ERR_OK);
    assert_int_equal(meta_version_answer(m, &v, &text, &len), ERR_OK);
    assert_non_null(strstr(text, "\"owner\":\"vision\""));
    free(text);
    /* A version read before a commit does not leave a stale answer behind:
     * the answer is stored under the older generation. */
    struct meta_version old;
    assert_int_equal(meta_version_get(m, &first, &old), ERR_OK);
    more = json_pack("{s:s}", "owner", "platform");
    assert_int_equal(meta_label(m, &latest.path, 0, -1, more, NULL), ERR_OK);
    json_decref(more);
    assert_int_equal(meta_version_answer(m, &old, &text, &len), ERR_OK);
    free(text);
    meta_version_clear(&old);
    meta_version_clear(&v);
    assert_int_equal(meta_version_get(m, &first, &v), ERR_OK);
    assert_int_equal(meta_version_answer(m, &v, &text, &len), ERR_OK);
    assert_non_null(strstr(text, "\"owner\":\"platform\""));
    free(text);
    assert_int_equal(meta_version_tombstone(m, v.version_id, "user:alice"), ERR_OK);
    meta_version_clear(&v);
    assert_int_equal(meta_version_get(m, &first, &v), ERR_OK);
    assert_int_equal(v.deleted, 1);
    assert_int_equal(meta_version_describe(m, &v, &d), ERR_OK);
    assert_true(json_is_true(json_object_get(d, "deleted")));
    json_decref(d);
    meta_version_clear(&v);
}

/* Inside a pin, a value read is stored under the pin's generation: after a
 * commit made meanwhile it is not served, although the pin's snapshot may
 * have been taken before the commit. */
static void test_pin_generation(void **state)
{
    struct fixture *f = *state;
    struct meta *m = f->m;
    assert_int_equal(meta_group_create(m, "g1"), ERR_OK);
    meta_read_pin(m);
    json_t *g = NULL;
    assert_int_equal(meta_principal_groups(m, "user:carol", &g), ERR_OK); /* snapshot starts */
    json_decref(g);
    assert_int_equal(meta_group_add_member(m, "g1", "user:carol"), ERR_OK);
    meta_read_unpin(m);
    meta_read_pin(m);
    assert_int_equal(meta_principal_groups(m, "user:carol", &g), ERR_OK);
    assert_int_equal(json_array_size(g), 1);
    json_decref(g);
    meta_read_unpin(m);

    /* A pin that began before a commit stores what it reads under the old
     * generation: never served afterwards. */
    meta_read_pin(m);
    uint64_t pin = meta_memo_gen(m);
    assert_int_equal(meta_group_add_member(m, "g1", "user:dave"), ERR_OK);
    assert_true(meta_memo_gen(m) == pin);
    assert_true(__atomic_load_n(&m->gen, __ATOMIC_SEQ_CST) >= pin + 2);
    assert_int_equal(meta_principal_groups(m, "user:dave", &g), ERR_OK);
    json_decref(g);
    meta_read_unpin(m);
    uint64_t h0 = hits_of(m);
    assert_int_equal(meta_principal_groups(m, "user:dave", &g), ERR_OK);
    assert_int_equal(hits_of(m), h0); /* read again, not served */
    assert_int_equal(json_array_size(g), 1);
    json_decref(g);
}

/* Readers on 3 threads while commits change what they read: every answer
 * is one of the states committed, and once the writer is done every reader
 * sees the last one (the cache never serves a value from before it). */
struct reader_arg {
    struct meta *m;
    uint8_t hash[32];
    int stop; /* atomic */
    int bad;  /* atomic */
};

static void *reader_main(void *arg)
{
    struct reader_arg *a = arg;
    int64_t now = (int64_t)time(NULL);
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
        meta_read_pin(a->m);
        struct meta_session s;
        struct meta_user u;
        json_t *groups = NULL;
        if (meta_session_principal(a->m, a->hash, now, &s, &u, &groups) == ERR_OK) {
            size_t n = json_array_size(groups);
            if (n > 1 ||
                (n == 1 && strcmp(json_string_value(json_array_get(groups, 0)), "flip") != 0))
                __atomic_store_n(&a->bad, 1, __ATOMIC_RELEASE);
            meta_user_clear(&u);
            json_decref(groups);
        } else {
            __atomic_store_n(&a->bad, 1, __ATOMIC_RELEASE);
        }
        meta_read_unpin(a->m);
    }
    return NULL;
}

static void test_readers_during_commits(void **state)
{
    struct fixture *f = *state;
    struct meta *m = f->m;
    assert_int_equal(meta_user_create(m, "erin", "$argon2id$x", 0, NULL, 0), ERR_OK);
    struct reader_arg a = {.m = m};
    memset(a.hash, 0x5a, sizeof(a.hash));
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(meta_session_create(m, a.hash, user_id(m, "erin"), now + 3600, 0), ERR_OK);
    assert_int_equal(meta_group_create(m, "flip"), ERR_OK);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &a), 0);
    for (int i = 0; i < 60; i++) {
        if (i % 2 == 0)
            assert_int_equal(meta_group_add_member(m, "flip", "user:erin"), ERR_OK);
        else
            assert_int_equal(meta_group_remove_member(m, "flip", "user:erin"), ERR_OK);
    }
    /* The last commit removed erin from the group: every thread now sees
     * that, cached or not. */
    struct meta_session s;
    struct meta_user u;
    json_t *groups = NULL;
    assert_int_equal(meta_session_principal(m, a.hash, now, &s, &u, &groups), ERR_OK);
    assert_int_equal(json_array_size(groups), 0);
    meta_user_clear(&u);
    json_decref(groups);
    __atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(a.bad, 0);
}

/* A store without a read pool (the command-line tools) keeps no cache. */
static void test_no_pool_no_cache(void **state)
{
    (void)state;
    char dir[64], path[128];
    snprintf(dir, sizeof(dir), "/tmp/coffer-memo-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/coffer.db", dir);
    struct meta *m = NULL;
    assert_int_equal(meta_open(path, 1, &m), ERR_OK);
    assert_null(m->memo);
    json_t *g = NULL;
    assert_int_equal(meta_principal_groups(m, "user:x", &g), ERR_OK);
    json_decref(g);
    meta_close(m);
    char p[160];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memo_generations),
        cmocka_unit_test(test_memo_evictions),
        cmocka_unit_test(test_memo_json_copy),
        cmocka_unit_test(test_memo_threads),
        cmocka_unit_test_setup_teardown(test_session_and_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_during_commits, setup, teardown),
        cmocka_unit_test(test_no_pool_no_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
