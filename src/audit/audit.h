/*
 * audit: Coffer's tamper-evident audit log.
 *
 * Events (one JSON object per event, see audit/event.h) are appended to
 * DIR/events.log as [u32 BE length][bytes] records; each event is a leaf of
 * an RFC 6962 Merkle tree; signed tree heads (Ed25519) are appended to
 * DIR/heads.log. Any change, deletion, reordering or truncation of events
 * covered by a signed head is detected by audit_verify_dir. docs/AUDIT.md
 * describes the formats and what is and is not guaranteed.
 *
 * Thread safety: every audit_log_* function may be called from any thread
 * concurrently, except audit_log_close.
 */
#ifndef COFFER_AUDIT_AUDIT_H
#define COFFER_AUDIT_AUDIT_H

#include "util/err.h"

#include <stddef.h>
#include <stdint.h>

/* Largest event accepted, in bytes. */
#define AUDIT_EVENT_MAX (1024 * 1024)

struct audit_log;

struct audit_options {
    /* Sign a head automatically once this many events are not yet covered by
     * one (0: never by count). Default 1000. */
    uint32_t sign_every_events;
    /* Sign a head every this many milliseconds if events were added since the
     * last head, from a background thread (0: no timer). Default 60000. */
    uint32_t sign_interval_ms;
    /* If the existing log does not verify against its last signed head,
     * accept it anyway: append a "log.segment" event that records the failure
     * and continue (the evidence stays; audit_verify_dir keeps reporting it).
     * Default 0: audit_log_open fails with ERR_INTEGRITY. */
    int start_new_segment;
};

/* Fills o with the defaults described above. */
void audit_options_init(struct audit_options *o);

/*
 * Opens (creating if needed) the log in dir: creates dir with mode 0700, the
 * Ed25519 key pair signing.key (0600) / signing.pub on first use, and the
 * log files. Reads every event to rebuild the in-memory index, checks the
 * last signed head (signature, and root equal to the recomputed root at its
 * size, and the log not shorter than it), and removes a torn final record
 * written after the last head by a crash (recorded as a "log.repair" event).
 * Takes an exclusive lock on the directory: a second opener gets ERR_CONFLICT.
 * opt may be NULL (defaults). *out is released with audit_log_close.
 * Errors: ERR_INTEGRITY (tampering, unless opt->start_new_segment),
 * ERR_IO, ERR_INVALID (bad key file), ERR_CONFLICT, ERR_INTERNAL.
 */
enum err audit_log_open(const char *dir, const struct audit_options *opt, struct audit_log **out);

/*
 * Appends one event: a single-line JSON object of at most AUDIT_EVENT_MAX
 * bytes (validated). Returns only once the event is durable (written and
 * fdatasync'ed); concurrent callers share one write + fdatasync (group
 * commit). *index_out (may be NULL) receives the event's 0-based index.
 * Errors: ERR_INVALID (not a JSON object, contains a newline, too long),
 * ERR_UNAVAILABLE if the log could not be written; after the first write or
 * sync failure the log fails closed: every later append also returns
 * ERR_UNAVAILABLE until it is closed and reopened. An append that failed may
 * still be present in the file after a restart.
 */
enum err audit_log_append(struct audit_log *log, const char *event_json, size_t len,
                          uint64_t *index_out);

/*
 * Waiting for durability without holding a thread. audit_log_submit queues
 * an event and returns its index at once; the log's flusher thread writes
 * and syncs it with the next batch. A caller that must not act before the
 * event is durable (a server holding a response) registers a waiter with
 * audit_log_notify; fn(ctx) then runs once, on the flusher thread, when
 * every event up to index is durable or the log has failed (tell which with
 * audit_log_durable). fn must not block or call back into the log. The
 * waiter is the caller's and must stay valid until fn has run or
 * audit_log_cancel has returned.
 */
struct audit_waiter {
    uint64_t index;
    void (*fn)(void *ctx);
    void *ctx;
    /* owned by the log */
    struct audit_waiter *next;
    int state;
    uint64_t gen;
};

enum audit_notify {
    AUDIT_NOTIFY_QUEUED,  /* fn will run */
    AUDIT_NOTIFY_DURABLE, /* already durable; fn will not run */
    AUDIT_NOTIFY_FAILED,  /* the log failed; fn will not run */
    AUDIT_NOTIFY_CLOSED   /* no more waiters taken (shutdown): use audit_log_wait */
};

/* Queues one event without waiting for it to be durable; *index_out
 * receives its index. The event must come from audit_event_encode: its
 * framing is checked (length, braces, no line break: ERR_INVALID) but it is
 * not parsed again. ERR_UNAVAILABLE once the log has failed. */
enum err audit_log_submit(struct audit_log *log, const char *event_json, size_t len,
                          uint64_t *index_out);
/* 1 when every event up to index is durable, 0 while not yet, -1 when the
 * log failed before it was. */
int audit_log_durable(struct audit_log *log, uint64_t index);
/* Blocks until every event up to index is durable: ERR_OK, or
 * ERR_UNAVAILABLE when the log failed first. */
enum err audit_log_wait(struct audit_log *log, uint64_t index);
enum audit_notify audit_log_notify(struct audit_log *log, struct audit_waiter *w);
/* Withdraws a waiter; if its fn is running, returns once it has finished. */
void audit_log_cancel(struct audit_log *log, struct audit_waiter *w);
/* Refuses new waiters (audit_log_notify answers AUDIT_NOTIFY_CLOSED) and
 * returns once every registered waiter's fn has run. For shutdown. */
void audit_log_notify_close(struct audit_log *log);

/*
 * Forwarding: fn(ctx, index, event, len) runs for every event once it is
 * durable, in log order, on the thread that wrote it (outside the log's
 * lock; it must not block or call back into the log). Events written before
 * it is set are not passed. Setting NULL waits for a write in progress, so
 * after it returns fn is never called again.
 */
typedef void (*audit_forward_fn)(void *ctx, uint64_t index, const char *event_json, size_t len);
void audit_log_set_forward(struct audit_log *log, audit_forward_fn fn, void *ctx);

/* Appends a signed tree head for the current durable size to heads.log and
 * syncs it. ERR_UNAVAILABLE if the log has failed closed or the write fails. */
enum err audit_log_sign_head(struct audit_log *log);

/* Stops the signing timer, signs a final head if events were added since the
 * last one, and frees everything. NULL is a no-op. */
void audit_log_close(struct audit_log *log);

/* Number of durable events. */
uint64_t audit_log_size(struct audit_log *log);

/* Counters for monitoring. */
struct audit_stats {
    uint64_t events;  /* durable events */
    uint64_t flushes; /* write + fdatasync batches since open (group commit: <= appends) */
    uint64_t heads;   /* heads signed since open */
    uint64_t last_head_size;
    int failed;     /* 1 once the log has failed closed */
    uint64_t bytes; /* length of the durable records in events.log */
};

/* Fills st with a consistent snapshot of the counters. */
void audit_log_stats(struct audit_log *log, struct audit_stats *st);

/* Copies event `index` into a new NUL-terminated buffer (*json_out, caller
 * frees with free). ERR_NOT_FOUND if index >= size, ERR_IO on read errors. */
enum err audit_log_read(struct audit_log *log, uint64_t index, char **json_out, size_t *len_out);

/*
 * Callback for the iterators: return 0 to continue, nonzero to stop (the
 * iterator then returns ERR_OK). json is valid only during the call and is
 * not NUL-terminated.
 */
typedef int (*audit_iter_fn)(void *ctx, uint64_t index, const char *json, size_t len);

/* Calls fn for each durable event from from_index on, in order. Events
 * appended during the iteration are not visited. */
enum err audit_log_iter(struct audit_log *log, uint64_t from_index, audit_iter_fn fn, void *ctx);

/* Same over a log directory that is not open (a stopped server, a copy). No
 * verification is done: run audit_verify_dir for that. ERR_INTEGRITY if the
 * record framing is broken. */
enum err audit_iter_dir(const char *dir, uint64_t from_index, audit_iter_fn fn, void *ctx);

/*
 * Inclusion proof of event `index` against the latest signed head (a new
 * head is signed first if the latest does not cover index). *json_out
 * (caller frees) is:
 *   {"format":"coffer-inclusion-v1","index":I,"leaf_hash":HEX,"tree_size":N,
 *    "root":HEX,"timestamp":MS,"signature":HEX,"public_key":HEX,
 *    "key_fingerprint":"sha256:HEX","path":[HEX,...]}
 * ERR_NOT_FOUND if index >= size.
 */
enum err audit_log_inclusion_proof(struct audit_log *log, uint64_t index, char **json_out);

/*
 * Consistency proof from the tree of old_size events to the latest signed
 * head. *json_out (caller frees):
 *   {"format":"coffer-consistency-v1","old_size":M,"old_root":HEX,
 *    "tree_size":N,"root":HEX,"timestamp":MS,"signature":HEX,
 *    "public_key":HEX,"key_fingerprint":"sha256:HEX","path":[HEX,...]}
 * ERR_NOT_FOUND if old_size > size.
 */
enum err audit_log_consistency_proof(struct audit_log *log, uint64_t old_size, char **json_out);

/*
 * The latest signed head, signing one first if there is none or events were
 * added since. *json_out (caller frees):
 *   {"format":"coffer-sth-v1","tree_size":N,"timestamp":MS,"root":HEX,
 *    "signature":HEX,"public_key":HEX,"key_fingerprint":"sha256:HEX"}
 * Keep it somewhere the log's host cannot write: audit_verify_dir with this
 * file proves the log still contains these events.
 */
enum err audit_export_head(struct audit_log *log, char **json_out);

/* What the verifier found. */
struct audit_verify_report {
    uint64_t events;         /* well-formed event records read */
    uint64_t heads;          /* signed heads whose signature and root were checked */
    uint64_t last_head_size; /* tree_size of the last head in heads.log (0 if none) */
    int trusted_checked;     /* 1 if a trusted head was given and matched */
    int ok;                  /* 1 if no problem was found */
    /* On failure: the events where the problem lies, [bad_event_first,
     * bad_event_last] (a changed event can only be located between the last
     * good head and the first bad one), -1 if not about events; bad_head is
     * the 0-based line of the bad head in heads.log (-1 if none). */
    int64_t bad_event_first;
    int64_t bad_event_last;
    int64_t bad_head;
    char reason[256]; /* one line, empty if ok */
};

/*
 * Offline verification of a log directory with only DIR/signing.pub: frames
 * and hashes every event, recomputes the tree, checks each signed head's
 * signature and that its root equals the recomputed root at its size (which
 * also proves every head consistent with every other), and that the log is
 * not shorter than the last head. With trusted_head_path (a file written
 * from audit_export_head), also checks that signing.pub is the key that
 * signed it and that the log contains that head (size >= its size, same root
 * at its size). rep is always filled.
 * Returns ERR_OK, ERR_INTEGRITY on any tampering, ERR_IO / ERR_NOT_FOUND if
 * files cannot be read, ERR_INVALID if the trusted head file is malformed.
 */
enum err audit_verify_dir(const char *dir, const char *trusted_head_path,
                          struct audit_verify_report *rep);

/*
 * The same verification over in-memory contents of events.log and heads.log
 * with a raw 32-byte Ed25519 public key; trusted_head_json may be NULL.
 * Used by audit_verify_dir's tests and the fuzz target.
 */
enum err audit_verify_buffers(const uint8_t *events, size_t events_len, const uint8_t *heads,
                              size_t heads_len, const uint8_t pubkey_raw[32],
                              const char *trusted_head_json, struct audit_verify_report *rep);

/* Optional extra checks for audit_verify_proof_json. */
struct audit_proof_check {
    /* inclusion proofs: the event itself; its leaf hash must match */
    const char *event_json;
    size_t event_len;
    /* consistency proofs: a head exported earlier (audit_export_head JSON);
     * its size and root must equal old_size and old_root */
    const char *trusted_head_json;
};

/*
 * Offline check of a proof made by audit_log_inclusion_proof or
 * audit_log_consistency_proof, with only the log's public key (PEM file):
 * the embedded key must be that key, the head signature must verify, and
 * the path must lead from the leaf (or old root) to the signed root.
 * chk may be NULL. reason (may be NULL) receives a one-line explanation.
 * Returns ERR_OK, ERR_INTEGRITY if the proof does not hold, ERR_INVALID if
 * it is malformed, ERR_IO/ERR_NOT_FOUND/ERR_INVALID for the key file.
 */
enum err audit_verify_proof_json(const char *proof_json, const char *pubkey_pem_path,
                                 const struct audit_proof_check *chk, char *reason,
                                 size_t reason_cap);

/* The same with a raw 32-byte Ed25519 public key. */
enum err audit_verify_proof_json_raw(const char *proof_json, const uint8_t pubkey_raw[32],
                                     const struct audit_proof_check *chk, char *reason,
                                     size_t reason_cap);

/*
 * For tests only: makes the next writes of the log fail as a full disk
 * would (the event file descriptor is pointed at /dev/full, or closed if
 * that is unavailable). Returns 0 or -1.
 */
int audit_log_test_break_storage(struct audit_log *log);

#endif
