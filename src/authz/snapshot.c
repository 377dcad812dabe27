/*
 * authz snapshot: the builder that collects roles, policies, bindings and
 * global policies; the compiler that indexes them into an immutable
 * struct authz_snapshot; reference counting; and the slot through which the
 * server swaps snapshots atomically.
 *
 * Index: bindings sorted by (principal type, name) for binary search; per
 * role and per action a bucket of candidate statements, split into a
 * "generic" list and entries keyed by the literal first path segment
 * (project) of every Resource pattern, sorted for binary search. A decision
 * thus visits only statements that can match its action and project.
 */
#include "authz/authz_int.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct b_pol {
    struct az_policy *p;
    struct b_pol *next;
};

struct b_role {
    const char *name;
    struct b_pol *head, **tail;
    size_t n_stmts;
    struct b_role *next;
};

struct b_bind {
    enum az_ptype type;
    const char *name;
    const char *role;
    const char *scope;
    struct b_bind *next;
};

struct authz_builder {
    struct az_arena arena;
    struct b_role *roles;
    size_t n_roles;
    struct b_bind *binds;
    size_t n_binds;
    struct b_pol *globals, **globals_tail;
    size_t n_global_stmts;
};

static enum err bfail(char *err, size_t cap, enum err e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum err bfail(char *err, size_t cap, enum err e, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return e;
}

struct authz_builder *authz_builder_new(void)
{
    struct authz_builder *b = calloc(1, sizeof(*b));
    if (b != NULL)
        b->globals_tail = &b->globals;
    return b;
}

void authz_builder_free(struct authz_builder *b)
{
    if (b == NULL)
        return;
    az_arena_free(&b->arena);
    free(b);
}

static struct b_role *role_find(struct authz_builder *b, const char *name)
{
    for (struct b_role *r = b->roles; r != NULL; r = r->next) {
        if (strcmp(r->name, name) == 0)
            return r;
    }
    return NULL;
}

static struct b_role *role_get(struct authz_builder *b, const char *name, char *err, size_t cap)
{
    if (!authz_name_valid(name)) {
        bfail(err, cap, ERR_INVALID, "role name must be 1-%d letters, digits, '.', '_' or '-'",
              AUTHZ_NAME_MAX);
        return NULL;
    }
    struct b_role *r = role_find(b, name);
    if (r != NULL)
        return r;
    r = az_alloc(&b->arena, sizeof(*r));
    if (r == NULL || (r->name = az_strndup(&b->arena, name, strlen(name))) == NULL) {
        bfail(err, cap, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    r->tail = &r->head;
    r->next = b->roles;
    b->roles = r;
    b->n_roles++;
    return r;
}

enum err authz_builder_add_role(struct authz_builder *b, const char *role, char *err, size_t cap)
{
    return role_get(b, role, err, cap) != NULL
               ? ERR_OK
               : (authz_name_valid(role) ? ERR_INTERNAL : ERR_INVALID);
}

/* Parses a document and prefixes errors with the policy name. */
static enum err parse_named(struct authz_builder *b, const char *policy_name, const char *json,
                            size_t len, bool global, struct az_policy **out, char *err, size_t cap)
{
    char msg[AUTHZ_ERRBUF];
    if (!authz_name_valid(policy_name))
        return bfail(err, cap, ERR_INVALID,
                     "policy name must be 1-%d letters, digits, '.', '_' or '-'", AUTHZ_NAME_MAX);
    enum err e = az_policy_parse(&b->arena, policy_name, json, len, global, out, msg, sizeof(msg));
    if (e != ERR_OK)
        return bfail(err, cap, e, "policy \"%s\": %s", policy_name, msg);
    return ERR_OK;
}

enum err authz_builder_attach(struct authz_builder *b, const char *role, const char *policy_name,
                              const char *json, size_t len, char *err, size_t cap)
{
    struct b_role *r = role_get(b, role, err, cap);
    if (r == NULL)
        return authz_name_valid(role) ? ERR_INTERNAL : ERR_INVALID;
    struct az_policy *p;
    enum err e = parse_named(b, policy_name, json, len, false, &p, err, cap);
    if (e != ERR_OK)
        return e;
    struct b_pol *n = az_alloc(&b->arena, sizeof(*n));
    if (n == NULL)
        return bfail(err, cap, ERR_INTERNAL, "out of memory");
    n->p = p;
    *r->tail = n;
    r->tail = &n->next;
    r->n_stmts += p->n_stmts;
    return ERR_OK;
}

enum err authz_builder_add_global(struct authz_builder *b, const char *policy_name,
                                  const char *json, size_t len, char *err, size_t cap)
{
    struct az_policy *p;
    enum err e = parse_named(b, policy_name, json, len, true, &p, err, cap);
    if (e != ERR_OK)
        return e;
    struct b_pol *n = az_alloc(&b->arena, sizeof(*n));
    if (n == NULL)
        return bfail(err, cap, ERR_INTERNAL, "out of memory");
    n->p = p;
    *b->globals_tail = n;
    b->globals_tail = &n->next;
    b->n_global_stmts += p->n_stmts;
    return ERR_OK;
}

/* A scope is a resource pattern: printable, no spaces, at most one '@'. */
static bool scope_ok(const char *s)
{
    size_t n = strlen(s), ats = 0;
    if (n == 0 || n > AUTHZ_MAX_STRING)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
        ats += c == '@';
    }
    return ats <= 1;
}

enum err authz_builder_bind(struct authz_builder *b, const char *principal, const char *role,
                            const char *scope, char *err, size_t cap)
{
    enum az_ptype type;
    const char *name;
    size_t nl;
    if (principal == NULL ||
        az_principal_parse(principal, strlen(principal), false, &type, &name, &nl) != 0)
        return bfail(err, cap, ERR_INVALID,
                     "principal must be user:NAME, group:NAME, service:NAME or link:ID");
    if (!authz_name_valid(role))
        return bfail(err, cap, ERR_INVALID, "invalid role name");
    if (scope != NULL && !scope_ok(scope))
        return bfail(err, cap, ERR_INVALID,
                     "scope must be a resource pattern (no spaces, at most one '@', at most %d "
                     "bytes)",
                     AUTHZ_MAX_STRING);
    struct b_bind *bb = az_alloc(&b->arena, sizeof(*bb));
    if (bb == NULL || (bb->name = az_strndup(&b->arena, name, nl)) == NULL ||
        (bb->role = az_strndup(&b->arena, role, strlen(role))) == NULL ||
        (scope != NULL && (bb->scope = az_strndup(&b->arena, scope, strlen(scope))) == NULL))
        return bfail(err, cap, ERR_INTERNAL, "out of memory");
    bb->type = type;
    bb->next = b->binds;
    b->binds = bb;
    b->n_binds++;
    return ERR_OK;
}

/* ---- Compilation ---------------------------------------------------------- */

/* Literal first segments of a statement's resources; 0 if it must be generic. */
static size_t stmt_keys(const struct az_stmt *st, const char **keys, size_t *lens)
{
    size_t n = 0;
    if (st->not_resource)
        return 0;
    for (size_t i = 0; i < st->n_res; i++) {
        const char *p = st->res[i].text;
        size_t k = 0;
        while (k < st->res[i].len && p[k] != '/' && p[k] != '@') {
            if (p[k] == '*' || p[k] == '?' || (p[k] == '$' && st->res[i].has_vars && st->vars))
                return 0;
            k++;
        }
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = lens[j] == k && memcmp(keys[j], p, k) == 0;
        if (!dup) {
            keys[n] = p;
            lens[n] = k;
            n++;
        }
    }
    return n;
}

struct seq_entry {
    struct az_entry e;
    size_t seq;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct seq_entry *x = a, *y = b;
    size_t n = x->e.key_len < y->e.key_len ? x->e.key_len : y->e.key_len;
    int c = memcmp(x->e.key, y->e.key, n);
    if (c != 0)
        return c;
    if (x->e.key_len != y->e.key_len)
        return x->e.key_len < y->e.key_len ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* Builds the AZ_N_ACTIONS buckets for an array of statements. 0 ok, -1 OOM. */
static int build_buckets(struct az_arena *a, const struct az_stmt *const *sts, size_t n,
                         struct az_bucket *bk)
{
    const char *keys[AUTHZ_MAX_VALUES];
    size_t lens[AUTHZ_MAX_VALUES];
    size_t n_gen[AZ_N_ACTIONS] = {0}, n_key[AZ_N_ACTIONS] = {0};
    for (size_t i = 0; i < n; i++) {
        size_t k = stmt_keys(sts[i], keys, lens);
        for (int act = 0; act < AZ_N_ACTIONS; act++) {
            if (!(sts[i]->actions & (1u << act)))
                continue;
            if (k == 0)
                n_gen[act]++;
            else
                n_key[act] += k;
        }
    }
    for (int act = 0; act < AZ_N_ACTIONS; act++) {
        bk[act].generic = az_calloc(a, n_gen[act], sizeof(*bk[act].generic));
        struct seq_entry *tmp = calloc(n_key[act] ? n_key[act] : 1, sizeof(*tmp));
        bk[act].by_key = az_calloc(a, n_key[act], sizeof(*bk[act].by_key));
        if (bk[act].generic == NULL || bk[act].by_key == NULL || tmp == NULL) {
            free(tmp);
            return -1;
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (!(sts[i]->actions & (1u << act)))
                continue;
            size_t k = stmt_keys(sts[i], keys, lens);
            if (k == 0)
                bk[act].generic[bk[act].n_generic++] = sts[i];
            for (size_t j = 0; j < k; j++, m++) {
                tmp[m].e.key = keys[j];
                tmp[m].e.key_len = lens[j];
                tmp[m].e.st = sts[i];
                tmp[m].seq = m;
            }
        }
        qsort(tmp, m, sizeof(*tmp), entry_cmp);
        for (size_t j = 0; j < m; j++)
            bk[act].by_key[j] = tmp[j].e;
        bk[act].n_by_key = m;
        free(tmp);
    }
    return 0;
}

/* Statement pointers of a policy list, in order (malloc'd; caller frees). */
static const struct az_stmt **collect(const struct b_pol *head, size_t n)
{
    const struct az_stmt **v = calloc(n ? n : 1, sizeof(*v));
    size_t k = 0;
    for (const struct b_pol *p = head; v != NULL && p != NULL; p = p->next) {
        for (size_t i = 0; i < p->p->n_stmts && k < n; i++)
            v[k++] = &p->p->stmts[i];
    }
    return v;
}

static int role_cmp(const void *a, const void *b)
{
    return strcmp(((const struct az_role *)a)->name, ((const struct az_role *)b)->name);
}

static int bind_cmp(const void *a, const void *b)
{
    const struct az_binding *x = a, *y = b;
    if (x->type != y->type)
        return x->type < y->type ? -1 : 1;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return strcmp(x->role->name, y->role->name);
}

static enum err compile_roles(struct authz_builder *b, struct authz_snapshot *s, char *err,
                              size_t cap)
{
    s->roles = az_calloc(&s->arena, b->n_roles, sizeof(*s->roles));
    if (s->roles == NULL && b->n_roles > 0)
        return bfail(err, cap, ERR_INTERNAL, "out of memory");
    size_t i = 0;
    for (struct b_role *r = b->roles; r != NULL; r = r->next, i++) {
        const struct az_stmt **v = collect(r->head, r->n_stmts);
        if (v == NULL)
            return bfail(err, cap, ERR_INTERNAL, "out of memory");
        s->roles[i].name = r->name;
        int rc = build_buckets(&s->arena, v, r->n_stmts, s->roles[i].buckets);
        free(v);
        if (rc != 0)
            return bfail(err, cap, ERR_INTERNAL, "out of memory");
        s->n_statements += r->n_stmts;
    }
    s->n_roles = b->n_roles;
    qsort(s->roles, s->n_roles, sizeof(*s->roles), role_cmp);
    return ERR_OK;
}

static enum err compile_bindings(struct authz_builder *b, struct authz_snapshot *s, char *err,
                                 size_t cap)
{
    s->bindings = az_calloc(&s->arena, b->n_binds, sizeof(*s->bindings));
    if (s->bindings == NULL && b->n_binds > 0)
        return bfail(err, cap, ERR_INTERNAL, "out of memory");
    size_t i = 0;
    for (struct b_bind *bb = b->binds; bb != NULL; bb = bb->next, i++) {
        struct az_role key = {.name = bb->role};
        const struct az_role *r = bsearch(&key, s->roles, s->n_roles, sizeof(*s->roles), role_cmp);
        if (r == NULL)
            return bfail(err, cap, ERR_INVALID, "binding of %s: unknown role \"%s\"", bb->name,
                         bb->role);
        s->bindings[i].type = bb->type;
        s->bindings[i].name = bb->name;
        s->bindings[i].name_len = strlen(bb->name);
        s->bindings[i].role = r;
        s->bindings[i].scope = bb->scope;
        s->bindings[i].scope_len = bb->scope != NULL ? strlen(bb->scope) : 0;
    }
    s->n_bindings = b->n_binds;
    qsort(s->bindings, s->n_bindings, sizeof(*s->bindings), bind_cmp);
    return ERR_OK;
}

enum err authz_builder_build(struct authz_builder *b, struct authz_snapshot **out, char *err,
                             size_t cap)
{
    *out = NULL;
    if (b == NULL)
        return bfail(err, cap, ERR_INTERNAL, "no builder");
    struct authz_snapshot *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        authz_builder_free(b);
        return bfail(err, cap, ERR_INTERNAL, "out of memory");
    }
    s->arena = b->arena; /* the snapshot takes over every parsed object */
    b->arena.head = NULL;
    atomic_init(&s->refs, 1);
    enum err e = compile_roles(b, s, err, cap);
    if (e == ERR_OK)
        e = compile_bindings(b, s, err, cap);
    if (e == ERR_OK) {
        const struct az_stmt **v = collect(b->globals, b->n_global_stmts);
        if (v == NULL || build_buckets(&s->arena, v, b->n_global_stmts, s->globals) != 0)
            e = bfail(err, cap, ERR_INTERNAL, "out of memory");
        free(v);
        s->n_statements += b->n_global_stmts;
    }
    /* The builder's lists live in the arena now owned by s: free the shell only. */
    free(b);
    if (e != ERR_OK) {
        az_arena_free(&s->arena);
        free(s);
        return e;
    }
    *out = s;
    return ERR_OK;
}

struct authz_snapshot *authz_snapshot_acquire(struct authz_snapshot *s)
{
    if (s != NULL)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void authz_snapshot_release(struct authz_snapshot *s)
{
    if (s == NULL)
        return;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        az_arena_free(&s->arena);
        free(s);
    }
}

size_t authz_snapshot_statement_count(const struct authz_snapshot *s)
{
    return s != NULL ? s->n_statements : 0;
}

/* ---- Slot -------------------------------------------------------------------- */

struct authz_slot authz_global_slot = AUTHZ_SLOT_INIT;

/*
 * The window between loading slot->current and incrementing its count is
 * covered by slot->acquiring (all sequentially consistent): a writer that
 * exchanged the pointer waits until no reader is inside that window before
 * dropping the slot's reference, so a reader never increments a freed count.
 */
struct authz_snapshot *authz_slot_acquire(struct authz_slot *slot)
{
    atomic_fetch_add(&slot->acquiring, 1);
    struct authz_snapshot *s = atomic_load(&slot->current);
    if (s != NULL)
        atomic_fetch_add(&s->refs, 1);
    atomic_fetch_sub(&slot->acquiring, 1);
    return s;
}

void authz_slot_set(struct authz_slot *slot, struct authz_snapshot *s)
{
    pthread_mutex_lock(&slot->set_lock);
    struct authz_snapshot *old = atomic_exchange(&slot->current, s);
    while (atomic_load(&slot->acquiring) != 0)
        sched_yield();
    pthread_mutex_unlock(&slot->set_lock);
    authz_snapshot_release(old);
}
