#include "meta/memo.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A stored value: copied by readers outside the cache's lock, so it is
 * freed by whoever lets go of it last. */
struct memo_val {
    unsigned refs; /* atomic */
    void *val;
    memo_drop_fn drop;
};

struct memo_slot {
    uint64_t gen;
    uint64_t hash;
    uint8_t *key; /* NULL: empty */
    size_t klen;
    struct memo_val *v;
};

struct memo {
    pthread_mutex_t lock;
    size_t mask;
    struct memo_slot *slots;
    uint64_t hits, misses; /* atomics */
};

/* FNV-1a: keys may be chosen by a client, but a collision only costs a
 * slot's eviction, never a wrong answer (keys are compared in full). */
static uint64_t memo_hash(const void *key, size_t klen)
{
    const uint8_t *p = key;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < klen; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

struct memo *memo_new(size_t slots)
{
    size_t n = 16;
    while (n < slots && n < ((size_t)1 << 20))
        n <<= 1;
    struct memo *mc = calloc(1, sizeof(*mc));
    if (mc == NULL)
        return NULL;
    mc->slots = calloc(n, sizeof(*mc->slots));
    if (mc->slots == NULL) {
        free(mc);
        return NULL;
    }
    mc->mask = n - 1;
    pthread_mutex_init(&mc->lock, NULL);
    return mc;
}

static void val_release(struct memo_val *v)
{
    if (v != NULL && __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        v->drop(v->val);
        free(v);
    }
}

static void slot_release(struct memo_slot *s)
{
    if (s->key == NULL)
        return;
    val_release(s->v);
    free(s->key);
    memset(s, 0, sizeof(*s));
}

void memo_free(struct memo *mc)
{
    if (mc == NULL)
        return;
    for (size_t i = 0; i <= mc->mask; i++)
        slot_release(&mc->slots[i]);
    free(mc->slots);
    pthread_mutex_destroy(&mc->lock);
    free(mc);
}

static int slot_matches(const struct memo_slot *s, uint64_t h, const void *key, size_t klen)
{
    /* CRYPTO_memcmp: some keys are digests of credentials. */
    return s->key != NULL && s->hash == h && s->klen == klen &&
           CRYPTO_memcmp(s->key, key, klen) == 0;
}

int memo_get(struct memo *mc, uint64_t gen, const void *key, size_t klen, memo_copy_fn copy,
             void *out)
{
    if (mc == NULL)
        return 0;
    uint64_t h = memo_hash(key, klen);
    struct memo_slot stale = {0};
    struct memo_val *v = NULL;
    pthread_mutex_lock(&mc->lock);
    struct memo_slot *s = &mc->slots[h & mc->mask];
    if (slot_matches(s, h, key, klen)) {
        if (s->gen == gen) {
            v = s->v;
            __atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED);
        } else {
            stale = *s; /* released outside the lock */
            memset(s, 0, sizeof(*s));
        }
    }
    pthread_mutex_unlock(&mc->lock);
    slot_release(&stale);
    int found = v != NULL && copy(out, v->val) == 0;
    val_release(v);
    __atomic_fetch_add(found ? &mc->hits : &mc->misses, 1, __ATOMIC_RELAXED);
    return found;
}

void memo_put(struct memo *mc, uint64_t gen, const void *key, size_t klen, void *val,
              memo_drop_fn drop)
{
    if (mc == NULL) {
        drop(val);
        return;
    }
    struct memo_slot fresh = {.gen = gen, .hash = memo_hash(key, klen), .klen = klen};
    fresh.key = malloc(klen > 0 ? klen : 1);
    fresh.v = malloc(sizeof(*fresh.v));
    if (fresh.key == NULL || fresh.v == NULL) {
        free(fresh.key);
        free(fresh.v);
        drop(val);
        return;
    }
    memcpy(fresh.key, key, klen);
    *fresh.v = (struct memo_val){.refs = 1, .val = val, .drop = drop};
    pthread_mutex_lock(&mc->lock);
    struct memo_slot *s = &mc->slots[fresh.hash & mc->mask];
    struct memo_slot old = fresh; /* dropped when the slot holds a newer read */
    if (s->key == NULL || s->gen <= gen) {
        old = *s;
        *s = fresh;
    }
    pthread_mutex_unlock(&mc->lock);
    slot_release(&old);
}

json_t *memo_json_copy(json_t *v)
{
    return json_deep_copy(v);
}

int memo_copy_json(void *out, const void *val)
{
    json_t **o = out;
    *o = memo_json_copy((json_t *)val);
    return *o != NULL ? 0 : -1;
}

void memo_drop_json(void *val)
{
    json_decref(val);
}

void memo_counts(struct memo *mc, uint64_t *hits, uint64_t *misses)
{
    *hits = mc != NULL ? __atomic_load_n(&mc->hits, __ATOMIC_RELAXED) : 0;
    *misses = mc != NULL ? __atomic_load_n(&mc->misses, __ATOMIC_RELAXED) : 0;
}
