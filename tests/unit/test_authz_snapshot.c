/*
 * Snapshot tests: the index keeps unrelated statements out of a decision
 * (10,000 statements, counted through statements_visited), a decision makes
 * no heap allocation (counted through allocator hooks), and snapshots are
 * swapped under concurrent readers without use-after-free (run under ASan).
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authz/authz.h"

/* ---- Allocation counting ------------------------------------------------------ */

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

static atomic_int counting;
static atomic_long allocations;

#ifdef TEST_ASAN
/* The sanitizer allocator calls these hooks on every allocation. */
int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
                                              void (*f)(const volatile void *));

static void on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    if (atomic_load(&counting))
        atomic_fetch_add(&allocations, 1);
}

static void on_free(const volatile void *p)
{
    (void)p;
}

static void counting_init(void)
{
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#else
/* Without a sanitizer, interpose the allocator and forward to glibc's. */
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t m);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);

void *malloc(size_t n)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&allocations, 1);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&allocations, 1);
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&allocations, 1);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}

static void counting_init(void)
{
}
#endif

/* ---- Helpers ------------------------------------------------------------------ */

static void add_doc(struct authz_builder *b, const char *role, const char *name, const char *doc,
                    bool global)
{
    char err[AUTHZ_ERRBUF];
    enum err e = global ? authz_builder_add_global(b, name, doc, strlen(doc), err, sizeof(err))
                        : authz_builder_attach(b, role, name, doc, strlen(doc), err, sizeof(err));
    if (e != ERR_OK)
        fail_msg("%s", err);
}

static struct authz_request base_request(void)
{
    struct authz_request r;
    memset(&r, 0, sizeof(r));
    r.principal_name = "alice";
    r.clearance = 1;
    r.mfa_age = -1;
    r.now = 1709721000;
    r.action = "artifact:Read";
    r.resource = "fraud/prod/model@3";
    r.resource_sensitivity = -1;
    return r;
}

/*
 * 100 policies of 100 statements each (10,000) for role "big": statement
 * (p, s) allows `action` on "proj-P-S/" followed by a star (or a Deny, for globals).
 */
static void add_many(struct authz_builder *b, const char *action, bool global)
{
    size_t cap = 16384;
    char *doc = malloc(cap);
    assert_non_null(doc);
    for (int p = 0; p < 100; p++) {
        size_t off = (size_t)snprintf(doc, cap, "{\"Version\":\"2012-10-17\",\"Statement\":[");
        for (int s = 0; s < 100; s++)
            off += (size_t)snprintf(doc + off, cap - off,
                                    "%s{\"Effect\":\"%s\",%s\"Action\":\"%s\",\"Resource\":"
                                    "\"proj-%d-%d/*\"}",
                                    s ? "," : "", global ? "Deny" : "Allow",
                                    global ? "\"Principal\":\"*\"," : "", action, p, s);
        snprintf(doc + off, cap - off, "]}");
        char name[32];
        snprintf(name, sizeof(name), "%s%d", global ? "g" : "p", p);
        add_doc(b, "big", name, doc, global);
    }
    free(doc);
}

/* ---- Tests -------------------------------------------------------------------- */

static void test_index_skips_unrelated_statements(void **state)
{
    (void)state;
    char err[AUTHZ_ERRBUF];
    struct authz_builder *b = authz_builder_new();
    assert_non_null(b);
    add_many(b, "artifact:Write", false);
    add_many(b, "artifact:Download", true);
    add_doc(b, "big", "generic",
            "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":"
            "\"artifact:Read\",\"Resource\":\"*/prod/*\"}}",
            false);
    assert_int_equal(authz_builder_bind(b, "user:alice", "big", NULL, err, sizeof(err)), ERR_OK);
    struct authz_snapshot *s;
    assert_int_equal(authz_builder_build(b, &s, err, sizeof(err)), ERR_OK);
    assert_int_equal(authz_snapshot_statement_count(s), 20001);

    struct authz_request r = base_request();
    struct authz_decision d;
    /* Unrelated action: only the one generic Read statement is examined. */
    authz_decide(s, &r, &d);
    assert_int_equal(d.effect, AUTHZ_ALLOW);
    assert_int_equal(d.statements_visited, 1);

    /* Write on an unrelated project: nothing of the 10,000 Write statements. */
    r.action = "artifact:Write";
    authz_decide(s, &r, &d);
    assert_int_equal(d.reason, AUTHZ_REASON_IMPLICIT_DENY);
    assert_int_equal(d.statements_visited, 0);

    /* Write on an indexed project: exactly its statement. */
    r.resource = "proj-42-7/dev/m";
    authz_decide(s, &r, &d);
    assert_int_equal(d.effect, AUTHZ_ALLOW);
    assert_int_equal(d.statements_visited, 1);
    assert_int_equal(d.deciding[0].index, 7);
    assert_string_equal(d.deciding[0].policy, "p42");

    /* Global denies are indexed the same way. */
    r.action = "artifact:Download";
    r.resource = "proj-99-99/prod/m@1";
    authz_decide(s, &r, &d);
    assert_int_equal(d.reason, AUTHZ_REASON_EXPLICIT_DENY);
    assert_int_equal(d.statements_visited, 1);
    r.resource = "proj-99-100/prod/m@1";
    authz_decide(s, &r, &d);
    assert_int_equal(d.reason, AUTHZ_REASON_IMPLICIT_DENY);
    assert_int_equal(d.statements_visited, 0);
    r.resource = "other/prod/m@1";
    authz_decide(s, &r, &d);
    assert_int_equal(d.statements_visited, 0);

    /* Another principal has no binding: nothing is examined at all. */
    r.principal_name = "bob";
    r.action = "artifact:Write";
    authz_decide(s, &r, &d);
    assert_int_equal(d.statements_visited, 0);
    authz_snapshot_release(s);
}

static void test_decision_does_not_allocate(void **state)
{
    (void)state;
    counting_init();
    char err[AUTHZ_ERRBUF];
    struct authz_builder *b = authz_builder_new();
    assert_non_null(b);
    assert_int_equal(authz_builder_add_builtins(b, err, sizeof(err)), ERR_OK);
    add_doc(b, "custom", "vars",
            "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\","
            "\"Resource\":\"home/${coffer:username}/*\",\"Condition\":{"
            "\"IpAddress\":{\"coffer:SourceIp\":\"10.0.0.0/8\"},"
            "\"DateLessThan\":{\"coffer:CurrentTime\":\"2030-01-01T00:00:00Z\"},"
            "\"NumericLessThan\":{\"coffer:CurrentHour\":\"${coffer:PrincipalTag/until}\"},"
            "\"ForAllValues:StringLike\":{\"coffer:Groups\":\"team-*\"},"
            "\"StringEquals\":{\"coffer:ResourceTag/owner\":\"${coffer:username}\","
            "\"coffer:CurrentDayOfWeek\":\"wed\",\"coffer:Project\":\"home\"}}}]}",
            false);
    add_doc(b, NULL, "guard",
            "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Principal\":"
            "{\"Coffer\":[\"role:custom\",\"group:team-b\"]},\"Action\":\"*\",\"NotResource\":"
            "\"home/*\"}]}",
            true);
    assert_int_equal(authz_builder_bind(b, "user:alice", "custom", NULL, err, sizeof(err)), ERR_OK);
    assert_int_equal(authz_builder_bind(b, "group:team-a", "viewer", "home/*", err, sizeof(err)),
                     ERR_OK);
    struct authz_snapshot *s;
    assert_int_equal(authz_builder_build(b, &s, err, sizeof(err)), ERR_OK);

    const char *groups[] = {"team-a", "team-b"};
    struct authz_kv ptags[] = {{"until", "18"}};
    struct authz_kv rtags[] = {{"owner", "alice"}};
    struct authz_request r = base_request();
    r.groups = groups;
    r.n_groups = 2;
    r.principal_tags = ptags;
    r.n_principal_tags = 1;
    r.resource_tags = rtags;
    r.n_resource_tags = 1;
    r.source_ip.family = 4;
    r.source_ip.addr[0] = 10;
    r.source_ip.addr[3] = 7;
    r.resource = "home/alice/model@2";
    r.action = "artifact:Download";

    struct authz_decision d1, d2;
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
    authz_decide(s, &r, &d1);
    r.resource = "fraud/prod/model@2";
    authz_decide(s, &r, &d2);
    atomic_store(&counting, 0);
    long n = atomic_load(&allocations);

    assert_int_equal(d1.effect, AUTHZ_ALLOW);
    assert_int_equal(d2.reason, AUTHZ_REASON_EXPLICIT_DENY);
    assert_true(d1.statements_visited > 0);
    assert_int_equal(n, 0);

    /* The counter works: building a snapshot allocates. */
    atomic_store(&counting, 1);
    struct authz_builder *b2 = authz_builder_new();
    atomic_store(&counting, 0);
    assert_true(atomic_load(&allocations) > 0);
    authz_builder_free(b2);
    authz_snapshot_release(s);
}

/* ---- Reference counting and the slot ------------------------------------------ */

static struct authz_snapshot *make_snapshot(bool allow)
{
    char err[AUTHZ_ERRBUF];
    struct authz_builder *b = authz_builder_new();
    assert_non_null(b);
    const char *doc = allow ? "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\","
                              "\"Action\":\"*\",\"Resource\":\"*\"}}"
                            : "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Deny\","
                              "\"Action\":\"*\",\"Resource\":\"*\"}}";
    add_doc(b, "r", "p", doc, false);
    assert_int_equal(authz_builder_bind(b, "user:alice", "r", NULL, err, sizeof(err)), ERR_OK);
    struct authz_snapshot *s;
    assert_int_equal(authz_builder_build(b, &s, err, sizeof(err)), ERR_OK);
    return s;
}

static void test_refcount(void **state)
{
    (void)state;
    struct authz_slot slot = AUTHZ_SLOT_INIT;
    assert_null(authz_slot_acquire(&slot));
    struct authz_snapshot *s = make_snapshot(true);
    authz_slot_set(&slot, s); /* the slot owns the only reference */
    struct authz_snapshot *held = authz_slot_acquire(&slot);
    assert_ptr_equal(held, s);
    authz_slot_set(&slot, make_snapshot(false)); /* old one survives: we hold it */
    struct authz_request r = base_request();
    struct authz_decision d;
    authz_decide(held, &r, &d);
    assert_int_equal(d.effect, AUTHZ_ALLOW);
    authz_snapshot_release(held); /* freed here (ASan checks) */
    struct authz_snapshot *cur = authz_slot_acquire(&slot);
    authz_decide(cur, &r, &d);
    assert_int_equal(d.reason, AUTHZ_REASON_EXPLICIT_DENY);
    assert_ptr_equal(authz_snapshot_acquire(cur), cur);
    authz_snapshot_release(cur);
    authz_snapshot_release(cur);
    authz_slot_set(&slot, NULL);
    authz_snapshot_release(NULL);
}

struct reader_arg {
    struct authz_slot *slot;
    atomic_int *stop;
    atomic_long decisions;
    long bad;
};

static void *reader(void *p)
{
    struct reader_arg *a = p;
    struct authz_request r = base_request();
    while (!atomic_load(a->stop)) {
        struct authz_snapshot *s = authz_slot_acquire(a->slot);
        struct authz_decision d;
        authz_decide(s, &r, &d);
        if (d.reason != AUTHZ_REASON_ALLOW && d.reason != AUTHZ_REASON_EXPLICIT_DENY)
            a->bad++;
        authz_snapshot_release(s);
        a->decisions++;
    }
    return NULL;
}

static void test_swap_under_readers(void **state)
{
    (void)state;
    struct authz_slot slot = AUTHZ_SLOT_INIT;
    atomic_int stop = 0;
    authz_slot_set(&slot, make_snapshot(true));
    pthread_t th[3];
    struct reader_arg args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (struct reader_arg){&slot, &stop, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    for (int i = 0; i < 300; i++)
        authz_slot_set(&slot, make_snapshot(i % 2 == 0));
    /* On a loaded machine the readers may not have run yet: let each decide
     * at least once before stopping them. */
    for (int i = 0; i < 3; i++) {
        while (atomic_load(&args[i].decisions) == 0)
            sched_yield();
    }
    atomic_store(&stop, 1);
    long total = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].bad, 0);
        total += args[i].decisions;
    }
    assert_true(total > 0);
    authz_slot_set(&slot, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_skips_unrelated_statements),
        cmocka_unit_test(test_decision_does_not_allocate),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_swap_under_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
