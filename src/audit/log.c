/*
 * The writer side of the audit log: open (rebuild the index, check the last
 * signed head), group-committed appends, signed heads, reads and proofs.
 */
#include "audit/audit.h"

#include "audit/event.h"
#include "audit/merkle.h"
#include "audit/scan.h"
#include "audit/sth.h"
#include "util/file.h"
#include "util/log.h"
#include "util/secure.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Appenders wait once this many bytes are queued behind a flush in progress. */
#define PENDING_MAX (64u * 1024 * 1024)
/* Longest wait for company before a batch of held answers is written, and
 * the batch size that ends the wait early. */
#define FLUSH_GATHER_US 1000
#define GATHER_BYTES_MAX (1u * 1024 * 1024)
/* The index keeps the file offset of every OFFSET_STRIDE-th record and the
 * Merkle tree only its nodes of 2^TREE_LOW leaves and up (plus the current
 * block): about 0.2 bytes per event instead of 72. Reads walk at most
 * OFFSET_STRIDE - 1 length prefixes; a proof for an old event rereads at most
 * 2^TREE_LOW events. */
#define OFFSET_STRIDE 64u
#define TREE_LOW 10u
/* events.log is extended with zero bytes this far past the records at a
 * time: a write into space already allocated and written leaves no metadata
 * to sync, so fdatasync writes the data alone (on ext4 without a journal,
 * about 40 % less time per sync than an append that grows the file). */
#define PREALLOC_BYTES (1u << 20)
/* heads.log is read whole at open; a larger one is refused. */
#define HEADS_FILE_MAX (256u * 1024 * 1024)
#define PATH_CAP 4096

struct buffer {
    uint8_t *data;
    size_t len, cap;
    merkle_hash *leaf;
    size_t n, ncap;
};

struct audit_log {
    char dir[PATH_CAP];
    int efd; /* events.log, for writes (pwrite at file_end) */
    int rfd; /* events.log, for reads */
    int hfd; /* heads.log, O_APPEND */
    EVP_PKEY *key;
    uint8_t pub_raw[AUDIT_PUBKEY_LEN];
    char fingerprint[AUDIT_FINGERPRINT_LEN];
    struct audit_options opt;

    pthread_mutex_t mu;
    pthread_cond_t flushed; /* a flush finished */
    /* Appenders wait on batch_cv[id & 1] for the flush of batch `id` (the
     * pending batch has number pending_id, the batch in flight the one
     * before): a finished flush wakes only its own writers, plus one writer
     * of the next batch to lead its flush. */
    pthread_cond_t batch_cv[2];
    uint64_t pending_id;
    struct merkle_hasher hs;
    struct merkle_tree tree; /* durable events only */
    uint64_t *offsets;       /* offsets[i]: file offset of record i * OFFSET_STRIDE */
    size_t offsets_cap;
    uint64_t file_end;      /* end of the durable records */
    uint64_t alloc_end;     /* size of events.log: zero bytes from file_end on */
    struct buffer pending;  /* queued, not yet written */
    struct buffer inflight; /* being written by the leader (empty otherwise) */
    int flushing;
    int failed;
    uint64_t n_flushes, n_heads;
    struct audit_sth last;
    int have_head;

    pthread_t timer;
    int timer_running;
    int stopping;
    pthread_cond_t timer_cv;

    /* The flusher writes what audit_log_submit queued and runs waiters. */
    pthread_t flusher;
    int flusher_thread;  /* created (to join at close) */
    int flusher_running; /* taking submits and waiters */
    int flusher_idle;    /* waiting on work_cv */
    /* Gathering: the flusher waits up to FLUSH_GATHER_US for the queue to
     * reach gather_goal events (the size of its last batch) before it
     * writes, so concurrent answers share one fdatasync. */
    int flusher_gathering;
    size_t gather_goal;
    audit_forward_fn forward; /* audit_log_set_forward */
    void *forward_ctx;
    int flusher_stop;
    pthread_cond_t work_cv;
    struct audit_waiter *waiters;
    int notify_closed;
    uint64_t fire_gen, fired_gen; /* batches of waiters started, finished */
    pthread_cond_t fired_cv;
};

enum { WAITER_IDLE, WAITER_QUEUED, WAITER_FIRING };

void audit_options_init(struct audit_options *o)
{
    o->sign_every_events = 1000;
    o->sign_interval_ms = 60000;
    o->start_new_segment = 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int path_join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_CAP, "%s/%s", dir, name);
    return n < 0 || n >= PATH_CAP ? -1 : 0;
}

/* ---- buffers and the index ---------------------------------------------- */

static void buffer_free(struct buffer *b)
{
    free(b->data);
    free(b->leaf);
    memset(b, 0, sizeof(*b));
}

/* Queues one framed record and its leaf hash. Returns 0 or -1 (no memory). */
static int buffer_add(struct buffer *b, const char *ev, size_t len, const merkle_hash leaf)
{
    size_t need = b->len + 4 + len;
    if (need > b->cap) {
        size_t ncap = b->cap ? b->cap : 65536;
        while (ncap < need)
            ncap *= 2;
        uint8_t *d = realloc(b->data, ncap);
        if (d == NULL)
            return -1;
        b->data = d;
        b->cap = ncap;
    }
    if (b->n == b->ncap) {
        size_t ncap = b->ncap ? b->ncap * 2 : 256;
        merkle_hash *l = realloc(b->leaf, ncap * sizeof(merkle_hash));
        if (l == NULL)
            return -1;
        b->leaf = l;
        b->ncap = ncap;
    }
    put_be32(b->data + b->len, (uint32_t)len);
    memcpy(b->data + b->len + 4, ev, len);
    b->len = need;
    memcpy(b->leaf[b->n++], leaf, MERKLE_HASH_LEN);
    return 0;
}

/* Adds one durable record to the tree and the offset index. 0 or -1. */
static int index_add(struct audit_log *log, uint64_t offset, const merkle_hash leaf)
{
    uint64_t i = log->tree.size;
    if (i % OFFSET_STRIDE == 0 && i / OFFSET_STRIDE >= log->offsets_cap) {
        size_t ncap = log->offsets_cap ? log->offsets_cap * 2 : 1024;
        uint64_t *o = realloc(log->offsets, ncap * sizeof(uint64_t));
        if (o == NULL)
            return -1;
        log->offsets = o;
        log->offsets_cap = ncap;
    }
    if (merkle_tree_append(&log->tree, &log->hs, leaf) != 0)
        return -1;
    if (i % OFFSET_STRIDE == 0)
        log->offsets[i / OFFSET_STRIDE] = offset;
    return 0;
}

struct leaves_ctx {
    struct merkle_hasher *h;
    uint64_t first, n, got;
    merkle_hash *out;
};

static int leaves_cb(void *ctx, uint64_t index, uint64_t offset, const uint8_t *data, size_t len)
{
    struct leaves_ctx *lc = ctx;
    (void)offset;
    if (index < lc->first)
        return 0;
    merkle_leaf_hash(lc->h, data, len, lc->out[index - lc->first]);
    return ++lc->got == lc->n;
}

/* The tree's leaf source: rehashes durable events [first, first + n) from
 * events.log. Called with mu held (from the tree functions). 0 or -1. */
static int log_leaves(void *ctx, struct merkle_hasher *h, uint64_t first, uint64_t n,
                      merkle_hash *out)
{
    struct audit_log *log = ctx;
    if (n == 0 || first >= log->tree.size || n > log->tree.size - first)
        return -1;
    uint64_t start = first - first % OFFSET_STRIDE;
    struct audit_src src = {
        .fd = log->rfd, .pos = log->offsets[start / OFFSET_STRIDE], .limit = log->file_end};
    struct leaves_ctx lc = {h, first, n, 0, out};
    struct audit_scan_result res;
    if (audit_scan(&src, start, leaves_cb, &lc, &res) != ERR_OK || lc.got != n) {
        log_error("audit: cannot reread events %llu..%llu of %s/events.log",
                  (unsigned long long)first, (unsigned long long)(first + n - 1), log->dir);
        return -1;
    }
    return 0;
}

/* ---- signed heads -------------------------------------------------------- */

/* Signs and durably appends a head for the current size. Caller holds mu. */
static enum err sign_head_locked(struct audit_log *log)
{
    if (log->failed)
        return ERR_UNAVAILABLE;
    struct audit_sth s;
    memset(&s, 0, sizeof(s));
    s.tree_size = log->tree.size;
    s.timestamp_ms = now_ms();
    if (log->have_head && s.timestamp_ms < log->last.timestamp_ms)
        s.timestamp_ms = log->last.timestamp_ms; /* heads never go back in time */
    if (merkle_tree_root(&log->tree, &log->hs, s.tree_size, s.root) != 0 ||
        audit_sth_sign(log->key, &s) != ERR_OK)
        return ERR_INTERNAL;
    char line[AUDIT_STH_LINE_MAX];
    int n = audit_sth_format(&s, line, sizeof(line) - 1);
    if (n < 0)
        return ERR_INTERNAL;
    line[n++] = '\n';
    if (file_write_all(log->hfd, line, (size_t)n) != 0 || fdatasync(log->hfd) != 0) {
        log->failed = 1;
        log_error("audit: cannot write %s/heads.log: %s; failing closed", log->dir,
                  strerror(errno));
        /* Queued appenders may have no flush left to wake them. */
        pthread_cond_broadcast(&log->batch_cv[0]);
        pthread_cond_broadcast(&log->batch_cv[1]);
        pthread_cond_broadcast(&log->flushed);
        pthread_cond_signal(&log->work_cv);
        return ERR_UNAVAILABLE;
    }
    log->last = s;
    log->have_head = 1;
    log->n_heads++;
    return ERR_OK;
}

enum err audit_log_sign_head(struct audit_log *log)
{
    pthread_mutex_lock(&log->mu);
    enum err rc = sign_head_locked(log);
    pthread_mutex_unlock(&log->mu);
    return rc;
}

static int head_is_stale(const struct audit_log *log)
{
    return !log->have_head || log->last.tree_size != log->tree.size;
}

static void *timer_main(void *arg)
{
    struct audit_log *log = arg;
    pthread_mutex_lock(&log->mu);
    while (!log->stopping) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += log->opt.sign_interval_ms / 1000;
        dl.tv_nsec += (long)(log->opt.sign_interval_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        int r = 0;
        while (!log->stopping && r != ETIMEDOUT)
            r = pthread_cond_timedwait(&log->timer_cv, &log->mu, &dl);
        if (!log->stopping && !log->failed && log->tree.size > 0 && head_is_stale(log))
            (void)sign_head_locked(log);
    }
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

/* ---- append with group commit -------------------------------------------- */

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Allocates events.log ahead to at least `need` bytes and PREALLOC_BYTES
 * more, by writing zero bytes after alloc_end (made durable by the
 * fdatasync that follows). On failure the batch is written anyway; it
 * extends the file itself. */
static void extend_file(struct audit_log *log, uint64_t need)
{
    static const uint8_t zeros[64 * 1024];
    uint64_t target = (need + PREALLOC_BYTES + 4095) & ~(uint64_t)4095;
    while (log->alloc_end < target) {
        uint64_t left = target - log->alloc_end;
        size_t n = left < sizeof(zeros) ? (size_t)left : sizeof(zeros);
        if (file_pwrite_all(log->efd, zeros, n, log->alloc_end) != 0) {
            log_warn("audit: cannot allocate space ahead in %s/events.log: %s", log->dir,
                     strerror(errno));
            return;
        }
        log->alloc_end += n;
    }
}

/* Writes the queued records as the leader. Called with mu held; releases it
 * during the write and fdatasync so that others can queue the next batch. */
static void flush_locked(struct audit_log *log)
{
    struct buffer empty = log->inflight;
    log->inflight = log->pending;
    log->pending = empty;
    uint64_t id = log->pending_id++;
    log->flushing = 1;
    /* Fixed while flushing: only a flush moves the size, and
     * audit_log_set_forward waits for the flush to end. */
    uint64_t first = log->tree.size;
    audit_forward_fn forward = log->forward;
    void *forward_ctx = log->forward_ctx;
    pthread_mutex_unlock(&log->mu);

    const struct buffer *b = &log->inflight; /* only this thread touches it while flushing */
    /* file_end and alloc_end, too, move only in a flush. */
    if (log->file_end + b->len > log->alloc_end)
        extend_file(log, log->file_end + b->len);
    int ok =
        file_pwrite_all(log->efd, b->data, b->len, log->file_end) == 0 && fdatasync(log->efd) == 0;
    int saved = errno;
    if (ok && log->file_end + b->len > log->alloc_end)
        log->alloc_end = log->file_end + b->len;
    for (size_t i = 0, off = 0; ok && forward != NULL && i < b->n; i++) {
        size_t len = get_be32(b->data + off);
        forward(forward_ctx, first + i, (const char *)b->data + off + 4, len);
        off += 4 + len;
    }

    pthread_mutex_lock(&log->mu);
    size_t pos = 0;
    for (size_t i = 0; ok && i < b->n; i++) {
        ok = index_add(log, log->file_end + pos, b->leaf[i]) == 0;
        pos += 4 + (size_t)get_be32(b->data + pos);
        if (!ok)
            saved = ENOMEM;
    }
    if (ok) {
        log->file_end += pos;
        log->n_flushes++;
    } else {
        log->failed = 1;
        log_error("audit: cannot write %s/events.log: %s; failing closed", log->dir,
                  strerror(saved));
    }
    log->inflight.len = 0;
    log->inflight.n = 0;
    log->flushing = 0;
    if (ok && log->opt.sign_every_events > 0 &&
        log->tree.size - (log->have_head ? log->last.tree_size : 0) >= log->opt.sign_every_events)
        (void)sign_head_locked(log);
    pthread_cond_broadcast(&log->batch_cv[id & 1]);
    if (log->failed)
        pthread_cond_broadcast(&log->batch_cv[(id + 1) & 1]);
    else if (log->pending.n > 0)
        pthread_cond_signal(&log->batch_cv[(id + 1) & 1]); /* the next leader */
    pthread_cond_broadcast(&log->flushed);
    /* The flusher runs due waiters and writes what was queued meanwhile by
     * audit_log_submit (no appender may be left to lead that flush). */
    if (log->waiters != NULL || log->flusher_stop || log->pending.n > 0)
        pthread_cond_signal(&log->work_cv);
}

/* The framing of an event: one line, braces at both ends, bounded length.
 * Enough for events made by audit_event_encode (audit_log_submit). */
static int event_framed(const char *ev, size_t len)
{
    return len <= AUDIT_EVENT_MAX && audit_record_framed((const uint8_t *)ev, len);
}

/* Checks that ev is one JSON object on one line. */
static int event_valid(const char *ev, size_t len)
{
    if (!event_framed(ev, len))
        return 0;
    json_t *j = json_loadb(ev, len, 0, NULL);
    int ok = json_is_object(j);
    json_decref(j);
    return ok;
}

/* Queues a validated event behind the durable ones and the batch in flight.
 * Caller holds mu. *my: its index; *batch: the batch it joins. */
static enum err queue_locked(struct audit_log *log, const char *event_json, size_t len,
                             uint64_t *my, uint64_t *batch)
{
    while (!log->failed && log->pending.len > 0 && log->pending.len + len > PENDING_MAX)
        pthread_cond_wait(&log->flushed, &log->mu);
    if (log->failed)
        return ERR_UNAVAILABLE;
    merkle_hash leaf;
    merkle_leaf_hash(&log->hs, event_json, len, leaf);
    *my = log->tree.size + log->inflight.n + log->pending.n;
    *batch = log->pending_id;
    if (buffer_add(&log->pending, event_json, len, leaf) != 0)
        return ERR_INTERNAL;
    return ERR_OK;
}

enum err audit_log_append(struct audit_log *log, const char *event_json, size_t len,
                          uint64_t *index_out)
{
    if (event_json == NULL || !event_valid(event_json, len))
        return ERR_INVALID;
    pthread_mutex_lock(&log->mu);
    uint64_t my = 0, batch = 0;
    enum err rc = queue_locked(log, event_json, len, &my, &batch);
    while (rc == ERR_OK && !log->failed && log->tree.size <= my) {
        if (!log->flushing)
            flush_locked(log);
        else
            pthread_cond_wait(&log->batch_cv[batch & 1], &log->mu);
    }
    if (rc == ERR_OK && log->tree.size <= my)
        rc = ERR_UNAVAILABLE;
    pthread_mutex_unlock(&log->mu);
    if (rc == ERR_OK && index_out != NULL)
        *index_out = my;
    return rc;
}

enum err audit_log_submit(struct audit_log *log, const char *event_json, size_t len,
                          uint64_t *index_out)
{
    if (event_json == NULL || !event_framed(event_json, len))
        return ERR_INVALID;
    pthread_mutex_lock(&log->mu);
    uint64_t my = 0, batch = 0;
    enum err rc =
        log->flusher_running ? queue_locked(log, event_json, len, &my, &batch) : ERR_UNAVAILABLE;
    if (rc == ERR_OK &&
        (log->flusher_idle || (log->flusher_gathering && log->pending.n >= log->gather_goal)))
        pthread_cond_signal(&log->work_cv);
    pthread_mutex_unlock(&log->mu);
    if (rc == ERR_OK && index_out != NULL)
        *index_out = my;
    return rc;
}

void audit_log_set_forward(struct audit_log *log, audit_forward_fn fn, void *ctx)
{
    pthread_mutex_lock(&log->mu);
    while (log->flushing)
        pthread_cond_wait(&log->flushed, &log->mu);
    log->forward = fn;
    log->forward_ctx = ctx;
    pthread_mutex_unlock(&log->mu);
}

int audit_log_durable(struct audit_log *log, uint64_t index)
{
    pthread_mutex_lock(&log->mu);
    int d = log->tree.size > index ? 1 : log->failed ? -1 : 0;
    pthread_mutex_unlock(&log->mu);
    return d;
}

enum err audit_log_wait(struct audit_log *log, uint64_t index)
{
    pthread_mutex_lock(&log->mu);
    while (!log->failed && log->tree.size <= index) {
        if (!log->flushing && log->pending.n > 0)
            flush_locked(log);
        else
            pthread_cond_wait(&log->flushed, &log->mu);
    }
    enum err rc = log->tree.size > index ? ERR_OK : ERR_UNAVAILABLE;
    pthread_mutex_unlock(&log->mu);
    return rc;
}

enum audit_notify audit_log_notify(struct audit_log *log, struct audit_waiter *w)
{
    pthread_mutex_lock(&log->mu);
    enum audit_notify n;
    if (log->tree.size > w->index) {
        n = AUDIT_NOTIFY_DURABLE;
    } else if (log->failed) {
        n = AUDIT_NOTIFY_FAILED;
    } else if (log->notify_closed || !log->flusher_running) {
        n = AUDIT_NOTIFY_CLOSED;
    } else {
        w->state = WAITER_QUEUED;
        w->next = log->waiters;
        log->waiters = w;
        if (log->flusher_idle)
            pthread_cond_signal(&log->work_cv);
        n = AUDIT_NOTIFY_QUEUED;
    }
    pthread_mutex_unlock(&log->mu);
    return n;
}

void audit_log_cancel(struct audit_log *log, struct audit_waiter *w)
{
    pthread_mutex_lock(&log->mu);
    if (w->state == WAITER_QUEUED) {
        for (struct audit_waiter **p = &log->waiters; *p != NULL; p = &(*p)->next) {
            if (*p == w) {
                *p = w->next;
                break;
            }
        }
        pthread_cond_broadcast(&log->fired_cv);
    } else if (w->state == WAITER_FIRING) {
        while (log->fired_gen < w->gen)
            pthread_cond_wait(&log->fired_cv, &log->mu);
    }
    w->state = WAITER_IDLE;
    pthread_mutex_unlock(&log->mu);
}

void audit_log_notify_close(struct audit_log *log)
{
    pthread_mutex_lock(&log->mu);
    log->notify_closed = 1;
    pthread_cond_signal(&log->work_cv);
    while (log->waiters != NULL || log->fired_gen < log->fire_gen)
        pthread_cond_wait(&log->fired_cv, &log->mu);
    pthread_mutex_unlock(&log->mu);
}

/* Takes the waiters that are due (all of them once the log has failed or is
 * stopping) and runs them with mu released. Caller holds mu. 1 if any ran. */
static int fire_due_locked(struct audit_log *log)
{
    int all = log->failed || (log->flusher_stop && log->pending.n == 0 && !log->flushing);
    struct audit_waiter *due = NULL;
    for (struct audit_waiter **p = &log->waiters; *p != NULL;) {
        struct audit_waiter *w = *p;
        if (all || log->tree.size > w->index) {
            *p = w->next;
            w->next = due;
            due = w;
        } else {
            p = &w->next;
        }
    }
    if (due == NULL)
        return 0;
    uint64_t gen = ++log->fire_gen;
    for (struct audit_waiter *w = due; w != NULL; w = w->next) {
        w->state = WAITER_FIRING;
        w->gen = gen;
    }
    pthread_mutex_unlock(&log->mu);
    /* A waiter may be freed once its fn has run (after fired_gen moves on,
     * for audit_log_cancel), so next is read first. */
    while (due != NULL) {
        struct audit_waiter *next = due->next;
        due->fn(due->ctx);
        due = next;
    }
    pthread_mutex_lock(&log->mu);
    log->fired_gen = gen;
    pthread_cond_broadcast(&log->fired_cv);
    return 1;
}

/* Waits (mu held) until the queue holds gather_goal events, for at most
 * FLUSH_GATHER_US. Only a flusher whose last batch had company waits: a lone
 * client's answer is written at once. */
static void gather_locked(struct audit_log *log)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += FLUSH_GATHER_US * 1000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    log->flusher_gathering = 1;
    while (!log->failed && !log->flusher_stop && !log->notify_closed &&
           log->pending.n < log->gather_goal && log->pending.len < GATHER_BYTES_MAX) {
        if (pthread_cond_timedwait(&log->work_cv, &log->mu, &until) != 0)
            break;
    }
    log->flusher_gathering = 0;
}

static void *flusher_main(void *arg)
{
    struct audit_log *log = arg;
    pthread_mutex_lock(&log->mu);
    for (;;) {
        if (fire_due_locked(log))
            continue;
        if (!log->failed && log->pending.n > 0 && !log->flushing) {
            if (log->pending.n < log->gather_goal)
                gather_locked(log);
            if (log->failed || log->flushing || log->pending.n == 0)
                continue; /* failed, or an appender took the batch meanwhile */
            size_t n = log->pending.n;
            flush_locked(log);
            log->gather_goal = n;
            continue;
        }
        if (log->flusher_stop && log->waiters == NULL &&
            (log->failed || (log->pending.n == 0 && !log->flushing)))
            break;
        log->flusher_idle = 1;
        pthread_cond_wait(&log->work_cv, &log->mu);
        log->flusher_idle = 0;
    }
    log->flusher_running = 0; /* later submits and waiters are refused */
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

/* ---- open ----------------------------------------------------------------- */

/* Makes the creation of files in dir durable. */
static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static enum err open_files(struct audit_log *log)
{
    char p[PATH_CAP], h[PATH_CAP];
    if (path_join(p, log->dir, "events.log") != 0 || path_join(h, log->dir, "heads.log") != 0)
        return ERR_INVALID;
    log->efd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (log->efd < 0)
        return ERR_IO;
    if (flock(log->efd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? ERR_CONFLICT : ERR_IO;
    struct stat sb;
    if (fstat(log->efd, &sb) != 0)
        return ERR_IO;
    log->alloc_end = (uint64_t)sb.st_size;
    log->rfd = open(p, O_RDONLY | O_CLOEXEC);
    log->hfd = open(h, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log->rfd < 0 || log->hfd < 0 || fsync_dir(log->dir) != 0)
        return ERR_IO;
    return ERR_OK;
}

static void close_files(struct audit_log *log)
{
    if (log->efd >= 0)
        close(log->efd);
    if (log->rfd >= 0)
        close(log->rfd);
    if (log->hfd >= 0)
        close(log->hfd);
    log->efd = log->rfd = log->hfd = -1;
}

/* What open found wrong with the existing files. */
struct open_state {
    char problem[256];  /* empty if the log verified */
    int framing_broken; /* records cannot be appended after what is there */
    uint64_t repaired_bytes, repaired_at;
};

/* Reads the last complete line of heads.log into log->last. A final line
 * without newline is a head whose write a crash interrupted: it is cut off. */
static enum err load_last_head(struct audit_log *log, struct open_state *st)
{
    struct stat sb;
    if (fstat(log->hfd, &sb) != 0)
        return ERR_IO;
    uint64_t size = (uint64_t)sb.st_size;
    if (size == 0)
        return ERR_OK;
    char tail[4 * AUDIT_STH_LINE_MAX];
    size_t n = size < sizeof(tail) ? (size_t)size : sizeof(tail);
    char hp[PATH_CAP];
    if (path_join(hp, log->dir, "heads.log") != 0)
        return ERR_INVALID;
    int fd = open(hp, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ERR_IO;
    ssize_t r = pread(fd, tail, n, (off_t)(size - n));
    close(fd);
    if (r != (ssize_t)n)
        return ERR_IO;
    size_t end = n;
    while (end > 0 && tail[end - 1] != '\n')
        end--;
    if (end != n) {
        if (end == 0 && size > n) {
            snprintf(st->problem, sizeof(st->problem), "heads.log ends with an overlong line");
            return ERR_OK;
        }
        log_warn("audit: cutting an incomplete final line (%zu bytes) from heads.log", n - end);
        if (ftruncate(log->hfd, (off_t)(size - (n - end))) != 0 || fdatasync(log->hfd) != 0)
            return ERR_IO;
    }
    if (end == 0)
        return ERR_OK; /* no complete head */
    size_t start = end - 1;
    while (start > 0 && tail[start - 1] != '\n')
        start--;
    if (start == 0 && size > n) {
        snprintf(st->problem, sizeof(st->problem), "heads.log ends with an overlong line");
        return ERR_OK;
    }
    if (audit_sth_parse(tail + start, end - 1 - start, &log->last) != ERR_OK) {
        snprintf(st->problem, sizeof(st->problem), "the last line of heads.log is not a head");
        return ERR_OK;
    }
    log->have_head = 1;
    return ERR_OK;
}

struct open_scan {
    struct audit_log *log;
    uint64_t covered; /* events the last signed head covers */
    int damaged;      /* a record after them is not a whole event */
    uint64_t damaged_at;
    int no_memory;
};

static int open_index_cb(void *ctx, uint64_t index, uint64_t offset, const uint8_t *data,
                         size_t len)
{
    struct open_scan *os = ctx;
    /* Past the last head, a crash may have left part of a batch unwritten:
     * inside allocated space that shows as zero bytes, not as a short file.
     * Every event the log writes is one line of JSON without NUL bytes. */
    if (index >= os->covered && !audit_record_framed(data, len)) {
        os->damaged = 1;
        os->damaged_at = offset;
        return 1;
    }
    merkle_hash leaf;
    merkle_leaf_hash(&os->log->hs, data, len, leaf);
    if (index_add(os->log, offset, leaf) != 0) {
        os->no_memory = 1;
        return 1;
    }
    return 0;
}

/* Offset just past the last non-zero byte of fd in [from, end), or from if
 * there is none. UINT64_MAX on a read error. */
static uint64_t nonzero_end(int fd, uint64_t from, uint64_t end)
{
    uint8_t buf[64 * 1024];
    uint64_t last = from;
    for (uint64_t pos = from; pos < end;) {
        size_t want = end - pos < sizeof(buf) ? (size_t)(end - pos) : sizeof(buf);
        ssize_t r = pread(fd, buf, want, (off_t)pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return UINT64_MAX;
        for (size_t i = (size_t)r; i > 0; i--)
            if (buf[i - 1] != 0) {
                last = pos + i;
                break;
            }
        pos += (uint64_t)r;
    }
    return last;
}

/* Rebuilds the index from events.log and checks it against the last head.
 * What follows the last whole record after the last head (a write a crash
 * interrupted) is cut off; the zero bytes allocated ahead are kept. */
static enum err load_events(struct audit_log *log, struct open_state *st)
{
    struct audit_src src = {.fd = log->rfd, .pos = 0, .limit = UINT64_MAX};
    struct audit_scan_result res;
    uint64_t covered = log->have_head ? log->last.tree_size : 0;
    struct open_scan os = {.log = log, .covered = covered};
    enum err rc = audit_scan(&src, 0, open_index_cb, &os, &res);
    if (rc != ERR_OK)
        return rc;
    if (os.no_memory)
        return ERR_INTERNAL;
    uint64_t n = log->tree.size;
    log->file_end = os.damaged ? os.damaged_at : res.good_end;
    if (res.bad_length) {
        snprintf(st->problem, sizeof(st->problem),
                 "event %llu: invalid record length at offset %llu", (unsigned long long)n,
                 (unsigned long long)res.good_end);
        st->framing_broken = 1;
        return ERR_OK;
    }
    int cut = os.damaged || res.torn || res.junk;
    if (cut && n < covered) {
        snprintf(st->problem, sizeof(st->problem),
                 "event %llu: %s at offset %llu, before the last signed head",
                 (unsigned long long)n,
                 res.torn ? "truncated record" : "non-zero bytes after the end of the records",
                 (unsigned long long)log->file_end);
        st->framing_broken = 1;
        return ERR_OK;
    }
    if (cut) {
        struct stat sb;
        if (fstat(log->rfd, &sb) != 0)
            return ERR_IO;
        uint64_t end = nonzero_end(log->rfd, log->file_end, (uint64_t)sb.st_size);
        if (end == UINT64_MAX)
            return ERR_IO;
        st->repaired_at = log->file_end;
        st->repaired_bytes = end - log->file_end;
        log_warn("audit: cutting an incomplete final record (%llu bytes) from events.log",
                 (unsigned long long)st->repaired_bytes);
        if (ftruncate(log->efd, (off_t)log->file_end) != 0 || fdatasync(log->efd) != 0)
            return ERR_IO;
        log->alloc_end = log->file_end;
    }
    if (st->problem[0] != '\0' || !log->have_head)
        return ERR_OK;
    merkle_hash root;
    EVP_PKEY *pub = audit_pubkey_from_raw(log->pub_raw);
    if (pub == NULL)
        return ERR_INTERNAL;
    int sig_ok = audit_sth_verify(pub, &log->last);
    EVP_PKEY_free(pub);
    if (n < covered)
        snprintf(st->problem, sizeof(st->problem),
                 "events.log has %llu events but the last signed head covers %llu",
                 (unsigned long long)n, (unsigned long long)covered);
    else if (!sig_ok)
        snprintf(st->problem, sizeof(st->problem),
                 "the signature of the last signed head does not verify with signing.pub");
    else if (merkle_tree_root(&log->tree, &log->hs, covered, root) != 0 ||
             !secure_equal(root, log->last.root, MERKLE_HASH_LEN))
        snprintf(st->problem, sizeof(st->problem),
                 "events 0..%llu differ from what the last signed head covers",
                 (unsigned long long)(covered ? covered - 1 : 0));
    return ERR_OK;
}

/* Moves the unusable files aside (kept as evidence) and starts empty ones. */
static enum err archive_files(struct audit_log *log, char *names, size_t cap)
{
    char from[PATH_CAP], to[PATH_CAP];
    uint64_t ms = now_ms();
    close_files(log);
    const char *files[2] = {"events.log", "heads.log"};
    size_t used = 0;
    names[0] = '\0';
    for (int i = 0; i < 2; i++) {
        int n = snprintf(to, sizeof(to), "%s/%s.broken-%llu", log->dir, files[i],
                         (unsigned long long)ms);
        if (n < 0 || n >= (int)sizeof(to) || path_join(from, log->dir, files[i]) != 0)
            return ERR_INVALID;
        if (rename(from, to) != 0 && errno != ENOENT)
            return ERR_IO;
        n = snprintf(names + used, cap - used, "%s%s.broken-%llu", i ? " " : "", files[i],
                     (unsigned long long)ms);
        if (n > 0 && (size_t)n < cap - used)
            used += (size_t)n;
    }
    merkle_tree_free(&log->tree);
    log->file_end = 0;
    log->have_head = 0;
    memset(&log->last, 0, sizeof(log->last));
    return open_files(log);
}

/* Appends an event written by the log itself (repair, new segment). */
static enum err append_system_event(struct audit_log *log, const char *action, const char *reason,
                                    json_t *detail)
{
    struct audit_event ev = {.principal = "system:coffer",
                             .auth_method = "none",
                             .action = action,
                             .resource = "audit",
                             .allow = 1,
                             .reason = reason,
                             .detail = detail};
    char *json = NULL;
    size_t len = 0;
    enum err rc = audit_event_encode(&ev, &json, &len);
    if (rc == ERR_OK)
        rc = audit_log_append(log, json, len, NULL);
    free(json);
    return rc;
}

/* Accepts a log that failed verification: records why, and signs a head so
 * that the next open verifies against the log as it now is. */
static enum err start_segment(struct audit_log *log, struct open_state *st)
{
    char archived[PATH_CAP * 2] = "";
    uint64_t old_events = log->tree.size;
    uint64_t old_head = log->have_head ? log->last.tree_size : 0;
    merkle_hash root;
    char root_hex[2 * MERKLE_HASH_LEN + 1];
    if (merkle_tree_root(&log->tree, &log->hs, old_events, root) != 0)
        return ERR_INTERNAL;
    hex_encode(root, MERKLE_HASH_LEN, root_hex);
    if (st->framing_broken) {
        enum err rc = archive_files(log, archived, sizeof(archived));
        if (rc != ERR_OK)
            return rc;
    }
    log_error("audit: %s: %s; starting a new segment", log->dir, st->problem);
    json_t *detail =
        json_pack("{s:I,s:I,s:s,s:s}", "events", (json_int_t)old_events, "last_head_size",
                  (json_int_t)old_head, "recomputed_root", root_hex, "archived", archived);
    if (detail == NULL)
        return ERR_INTERNAL;
    enum err rc = append_system_event(log, "log.segment", st->problem, detail);
    json_decref(detail);
    if (rc == ERR_OK)
        rc = audit_log_sign_head(log);
    return rc;
}

static enum err log_init(struct audit_log *log, const char *dir, const struct audit_options *opt)
{
    log->efd = log->rfd = log->hfd = -1;
    if (strlen(dir) + 32 >= PATH_CAP)
        return ERR_INVALID;
    memcpy(log->dir, dir, strlen(dir) + 1);
    if (opt != NULL)
        log->opt = *opt;
    else
        audit_options_init(&log->opt);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->flushed, NULL);
    pthread_cond_init(&log->batch_cv[0], NULL);
    pthread_cond_init(&log->batch_cv[1], NULL);
    pthread_cond_init(&log->timer_cv, &ca);
    pthread_cond_init(&log->work_cv, &ca);
    pthread_cond_init(&log->fired_cv, NULL);
    pthread_condattr_destroy(&ca);
    merkle_tree_init(&log->tree);
    merkle_tree_thin(&log->tree, TREE_LOW, log_leaves, log);
    if (merkle_hasher_init(&log->hs) != 0)
        return ERR_INTERNAL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return ERR_IO;
    enum err rc = audit_key_load_or_create(dir, &log->key);
    if (rc != ERR_OK)
        return rc;
    if (audit_pubkey_raw(log->key, log->pub_raw) != 0 ||
        audit_pubkey_fingerprint(log->key, log->fingerprint) != 0)
        return ERR_INTERNAL;
    return open_files(log);
}

static void log_free(struct audit_log *log)
{
    close_files(log);
    EVP_PKEY_free(log->key);
    merkle_hasher_free(&log->hs);
    merkle_tree_free(&log->tree);
    free(log->offsets);
    buffer_free(&log->pending);
    buffer_free(&log->inflight);
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->flushed);
    pthread_cond_destroy(&log->batch_cv[0]);
    pthread_cond_destroy(&log->batch_cv[1]);
    pthread_cond_destroy(&log->timer_cv);
    pthread_cond_destroy(&log->work_cv);
    pthread_cond_destroy(&log->fired_cv);
    free(log);
}

enum err audit_log_open(const char *dir, const struct audit_options *opt, struct audit_log **out)
{
    *out = NULL;
    struct audit_log *log = calloc(1, sizeof(*log));
    if (log == NULL)
        return ERR_INTERNAL;
    struct open_state st;
    memset(&st, 0, sizeof(st));
    enum err rc = log_init(log, dir, opt);
    if (rc == ERR_OK)
        rc = load_last_head(log, &st);
    if (rc == ERR_OK && st.problem[0] == '\0')
        rc = load_events(log, &st);
    else if (rc == ERR_OK)
        st.framing_broken = 1; /* heads.log itself is unusable */
    if (rc == ERR_OK && st.problem[0] != '\0') {
        if (!log->opt.start_new_segment) {
            log_error("audit: %s: %s", dir, st.problem);
            rc = ERR_INTEGRITY;
        } else {
            rc = start_segment(log, &st);
        }
    }
    if (rc == ERR_OK && st.repaired_bytes > 0) {
        json_t *detail = json_pack("{s:I,s:I}", "truncated_bytes", (json_int_t)st.repaired_bytes,
                                   "at_offset", (json_int_t)st.repaired_at);
        rc = detail ? append_system_event(log, "log.repair",
                                          "incomplete final record from an interrupted write "
                                          "removed",
                                          detail)
                    : ERR_INTERNAL;
        json_decref(detail);
    }
    if (rc == ERR_OK && log->opt.sign_interval_ms > 0) {
        if (pthread_create(&log->timer, NULL, timer_main, log) != 0)
            rc = ERR_INTERNAL;
        else
            log->timer_running = 1;
    }
    if (rc == ERR_OK) {
        log->flusher_running = 1;
        if (pthread_create(&log->flusher, NULL, flusher_main, log) != 0) {
            log->flusher_running = 0;
            rc = ERR_INTERNAL;
        } else {
            log->flusher_thread = 1;
        }
    }
    if (rc != ERR_OK) {
        if (log->timer_running) {
            pthread_mutex_lock(&log->mu);
            log->stopping = 1;
            pthread_cond_signal(&log->timer_cv);
            pthread_mutex_unlock(&log->mu);
            pthread_join(log->timer, NULL);
        }
        log_free(log);
        return rc;
    }
    *out = log;
    return ERR_OK;
}

void audit_log_close(struct audit_log *log)
{
    if (log == NULL)
        return;
    if (log->timer_running) {
        pthread_mutex_lock(&log->mu);
        log->stopping = 1;
        pthread_cond_signal(&log->timer_cv);
        pthread_mutex_unlock(&log->mu);
        pthread_join(log->timer, NULL);
    }
    if (log->flusher_thread) {
        /* The flusher writes what is queued and runs every waiter first. */
        pthread_mutex_lock(&log->mu);
        log->flusher_stop = 1;
        log->notify_closed = 1;
        pthread_cond_signal(&log->work_cv);
        pthread_mutex_unlock(&log->mu);
        pthread_join(log->flusher, NULL);
    }
    pthread_mutex_lock(&log->mu);
    while (log->flushing)
        pthread_cond_wait(&log->flushed, &log->mu);
    if (!log->failed && head_is_stale(log))
        (void)sign_head_locked(log);
    /* A log closed cleanly keeps no space allocated ahead. If this is lost
     * in a crash, the zero bytes are still read as the end of the records. */
    if (!log->failed && log->alloc_end > log->file_end &&
        ftruncate(log->efd, (off_t)log->file_end) == 0)
        log->alloc_end = log->file_end;
    pthread_mutex_unlock(&log->mu);
    log_free(log);
}

uint64_t audit_log_size(struct audit_log *log)
{
    pthread_mutex_lock(&log->mu);
    uint64_t n = log->tree.size;
    pthread_mutex_unlock(&log->mu);
    return n;
}

void audit_log_stats(struct audit_log *log, struct audit_stats *st)
{
    pthread_mutex_lock(&log->mu);
    st->events = log->tree.size;
    st->flushes = log->n_flushes;
    st->heads = log->n_heads;
    st->last_head_size = log->have_head ? log->last.tree_size : 0;
    st->failed = log->failed;
    st->bytes = log->file_end;
    pthread_mutex_unlock(&log->mu);
}

/* ---- reading ------------------------------------------------------------- */

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

enum err audit_log_read(struct audit_log *log, uint64_t index, char **json_out, size_t *len_out)
{
    pthread_mutex_lock(&log->mu);
    if (index >= log->tree.size) {
        pthread_mutex_unlock(&log->mu);
        return ERR_NOT_FOUND;
    }
    uint64_t off = log->offsets[index / OFFSET_STRIDE];
    uint64_t end = log->file_end;
    pthread_mutex_unlock(&log->mu);
    /* Walk the length prefixes from the indexed record to this one. */
    for (uint64_t i = index - index % OFFSET_STRIDE; i < index; i++) {
        uint8_t h4[4];
        if (off + 4 > end || pread_all(log->rfd, h4, 4, off) != 0)
            return ERR_IO;
        uint32_t skip = get_be32(h4);
        if (skip == 0 || skip > AUDIT_EVENT_MAX)
            return ERR_INTEGRITY;
        off += 4 + (uint64_t)skip;
    }
    uint8_t hdr[4];
    if (pread_all(log->rfd, hdr, 4, off) != 0)
        return ERR_IO;
    uint32_t len = get_be32(hdr);
    if (len == 0 || len > AUDIT_EVENT_MAX)
        return ERR_INTEGRITY;
    char *buf = malloc((size_t)len + 1);
    if (buf == NULL)
        return ERR_INTERNAL;
    if (pread_all(log->rfd, buf, len, off + 4) != 0) {
        free(buf);
        return ERR_IO;
    }
    buf[len] = '\0';
    *json_out = buf;
    if (len_out != NULL)
        *len_out = len;
    return ERR_OK;
}

struct iter_ctx {
    audit_iter_fn fn;
    void *ctx;
    uint64_t from;
};

static int iter_cb(void *ctx, uint64_t index, uint64_t offset, const uint8_t *data, size_t len)
{
    struct iter_ctx *it = ctx;
    (void)offset;
    if (index < it->from)
        return 0;
    return it->fn(it->ctx, index, (const char *)data, len);
}

enum err audit_log_iter(struct audit_log *log, uint64_t from_index, audit_iter_fn fn, void *ctx)
{
    pthread_mutex_lock(&log->mu);
    uint64_t size = log->tree.size;
    if (from_index >= size) {
        pthread_mutex_unlock(&log->mu);
        return ERR_OK;
    }
    /* From the indexed record at or before from_index; iter_cb skips to it. */
    uint64_t start = from_index - from_index % OFFSET_STRIDE;
    struct audit_src src = {
        .fd = log->rfd, .pos = log->offsets[start / OFFSET_STRIDE], .limit = log->file_end};
    pthread_mutex_unlock(&log->mu);
    struct iter_ctx it = {fn, ctx, from_index};
    struct audit_scan_result res;
    enum err rc = audit_scan(&src, start, iter_cb, &it, &res);
    if (rc == ERR_OK && !res.stopped && res.records != size - start)
        rc = ERR_INTEGRITY;
    return rc;
}

enum err audit_iter_dir(const char *dir, uint64_t from_index, audit_iter_fn fn, void *ctx)
{
    char p[PATH_CAP];
    if (path_join(p, dir, "events.log") != 0)
        return ERR_INVALID;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? ERR_NOT_FOUND : ERR_IO;
    struct audit_src src = {.fd = fd, .pos = 0, .limit = UINT64_MAX};
    struct iter_ctx it = {fn, ctx, from_index};
    struct audit_scan_result res;
    enum err rc = audit_scan(&src, 0, iter_cb, &it, &res);
    close(fd);
    if (rc == ERR_OK && !res.stopped && (res.torn || res.bad_length || res.junk))
        rc = ERR_INTEGRITY;
    return rc;
}

/* ---- proofs and exported heads ------------------------------------------- */

/* Adds the head and key fields shared by proofs and exported heads. */
static int add_head_fields(json_t *o, const struct audit_log *log, const struct audit_sth *s)
{
    char root[2 * MERKLE_HASH_LEN + 1], sig[2 * AUDIT_SIG_LEN + 1], pub[2 * AUDIT_PUBKEY_LEN + 1];
    hex_encode(s->root, MERKLE_HASH_LEN, root);
    hex_encode(s->sig, AUDIT_SIG_LEN, sig);
    hex_encode(log->pub_raw, AUDIT_PUBKEY_LEN, pub);
    return json_object_set_new(o, "tree_size", json_integer((json_int_t)s->tree_size)) ||
           json_object_set_new(o, "timestamp", json_integer((json_int_t)s->timestamp_ms)) ||
           json_object_set_new(o, "root", json_string(root)) ||
           json_object_set_new(o, "signature", json_string(sig)) ||
           json_object_set_new(o, "public_key", json_string(pub)) ||
           json_object_set_new(o, "key_fingerprint", json_string(log->fingerprint));
}

static json_t *path_json(const merkle_hash *path, size_t n)
{
    json_t *a = json_array();
    char hex[2 * MERKLE_HASH_LEN + 1];
    for (size_t i = 0; a != NULL && i < n; i++) {
        hex_encode(path[i], MERKLE_HASH_LEN, hex);
        if (json_array_append_new(a, json_string(hex)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static enum err dump_json(json_t *o, int bad, char **json_out)
{
    char *s = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s == NULL)
        return ERR_INTERNAL;
    *json_out = s;
    return ERR_OK;
}

/* Makes sure the latest head covers at least `size` events. Caller holds mu. */
static enum err head_covering(struct audit_log *log, uint64_t size)
{
    if (log->have_head && log->last.tree_size >= size)
        return ERR_OK;
    return sign_head_locked(log);
}

enum err audit_log_inclusion_proof(struct audit_log *log, uint64_t index, char **json_out)
{
    merkle_hash path[MERKLE_MAX_PATH], leaf;
    size_t n = 0;
    struct audit_sth s;
    pthread_mutex_lock(&log->mu);
    enum err rc = index < log->tree.size ? head_covering(log, index + 1) : ERR_NOT_FOUND;
    if (rc == ERR_OK) {
        s = log->last;
        if (merkle_tree_leaf(&log->tree, &log->hs, index, leaf) != 0 ||
            merkle_tree_inclusion(&log->tree, &log->hs, index, s.tree_size, path, &n) != 0)
            rc = ERR_IO;
    }
    pthread_mutex_unlock(&log->mu);
    if (rc != ERR_OK)
        return rc;
    char lh[2 * MERKLE_HASH_LEN + 1];
    hex_encode(leaf, MERKLE_HASH_LEN, lh);
    json_t *o = json_object();
    int bad = o == NULL || json_object_set_new(o, "format", json_string("coffer-inclusion-v1")) ||
              json_object_set_new(o, "index", json_integer((json_int_t)index)) ||
              json_object_set_new(o, "leaf_hash", json_string(lh)) || add_head_fields(o, log, &s) ||
              json_object_set_new(o, "path", path_json(path, n));
    return dump_json(o, bad, json_out);
}

enum err audit_log_consistency_proof(struct audit_log *log, uint64_t old_size, char **json_out)
{
    merkle_hash path[MERKLE_MAX_PATH], old_root;
    size_t n = 0;
    struct audit_sth s;
    pthread_mutex_lock(&log->mu);
    enum err rc = old_size <= log->tree.size ? head_covering(log, old_size) : ERR_NOT_FOUND;
    if (rc == ERR_OK) {
        s = log->last;
        if (merkle_tree_root(&log->tree, &log->hs, old_size, old_root) != 0 ||
            merkle_tree_consistency(&log->tree, &log->hs, old_size, s.tree_size, path, &n) != 0)
            rc = ERR_IO;
    }
    pthread_mutex_unlock(&log->mu);
    if (rc != ERR_OK)
        return rc;
    char oh[2 * MERKLE_HASH_LEN + 1];
    hex_encode(old_root, MERKLE_HASH_LEN, oh);
    json_t *o = json_object();
    int bad = o == NULL || json_object_set_new(o, "format", json_string("coffer-consistency-v1")) ||
              json_object_set_new(o, "old_size", json_integer((json_int_t)old_size)) ||
              json_object_set_new(o, "old_root", json_string(oh)) || add_head_fields(o, log, &s) ||
              json_object_set_new(o, "path", path_json(path, n));
    return dump_json(o, bad, json_out);
}

enum err audit_export_head(struct audit_log *log, char **json_out)
{
    struct audit_sth s;
    pthread_mutex_lock(&log->mu);
    enum err rc = head_is_stale(log) ? sign_head_locked(log) : ERR_OK;
    s = log->last;
    pthread_mutex_unlock(&log->mu);
    if (rc != ERR_OK)
        return rc;
    json_t *o = json_object();
    int bad = o == NULL || json_object_set_new(o, "format", json_string("coffer-sth-v1")) ||
              add_head_fields(o, log, &s);
    return dump_json(o, bad, json_out);
}

int audit_log_test_break_storage(struct audit_log *log)
{
    pthread_mutex_lock(&log->mu);
    while (log->flushing)
        pthread_cond_wait(&log->flushed, &log->mu);
    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    int rc = 0;
    if (fd >= 0) {
        rc = dup2(fd, log->efd) < 0 || dup2(fd, log->hfd) < 0 ? -1 : 0;
        close(fd);
    } else {
        /* Without /dev/full, a closed descriptor fails every write with EBADF. */
        close(log->efd);
        close(log->hfd);
        log->efd = log->hfd = -1;
    }
    pthread_mutex_unlock(&log->mu);
    return rc;
}
