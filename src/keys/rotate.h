/*
 * rotate: online KEK rotation. A rotation makes a fresh KEK current, then a
 * background worker re-wraps every wrapped key (artifact DEKs, TOTP secrets)
 * in batches, each batch one transaction, optionally pausing between
 * batches to bound the load. Content is never re-encrypted. Progress lives
 * in the database, so a rotation interrupted by a crash resumes when the
 * server starts again. Once a retired KEK protects nothing, it is destroyed.
 *
 * The worker also starts a rotation on its own when the configured rotation
 * period (setting "keys.rotation_period", seconds, 0 = off) has elapsed
 * since the last one.
 */
#ifndef COFFER_KEYS_ROTATE_H
#define COFFER_KEYS_ROTATE_H

#include <stddef.h>
#include <stdint.h>

#include "keys/keys.h"
#include "util/err.h"

struct app;
struct meta;

#define ROTATE_BATCH_DEFAULT 1000
#define ROTATE_BATCH_MAX 10000
#define ROTATE_PAUSE_MAX_MS 60000
#define ROTATE_SETTING_PERIOD "keys.rotation_period"

struct rotate_status {
    int running;                   /* a rotation is in progress */
    int64_t id;                    /* its record id (or the last one's), 0 if none */
    char new_kek[KEYS_KEK_ID_CAP]; /* the KEK it re-wraps to */
    int64_t rewrapped;             /* keys re-wrapped so far by this server run */
    int64_t period;                /* automatic rotation period in seconds, 0 = off */
    char error[160];               /* last error of the worker, "" if none */
};

/*
 * Starts the worker of app (app->meta and app->keys open). Resumes an
 * unfinished rotation, or re-wrapping left over by one that crashed before
 * it was recorded. Errors: ERR_INTERNAL (no thread).
 */
enum err rotate_open(struct app *app);

/* Stops the worker (waits for the batch in flight) and frees it. No-op if not open. */
void rotate_close(struct app *app);

/*
 * Makes a fresh KEK current and starts re-wrapping under it, batch keys
 * (1..ROTATE_BATCH_MAX) per transaction with pause_ms (0..ROTATE_PAUSE_MAX_MS)
 * between batches. Copies the new KEK id to new_kek (KEYS_KEK_ID_CAP bytes).
 * by names the principal for the record.
 * Errors: ERR_CONFLICT (a rotation is running), ERR_INVALID, ERR_UNAVAILABLE
 * (the key provider cannot rotate), ERR_IO.
 */
enum err rotate_start(struct app *app, const char *by, int batch, int pause_ms, char *new_kek,
                      size_t new_kek_cap);

/* Fills *st with the worker's state. */
void rotate_status_get(struct app *app, struct rotate_status *st);

/* Sets the automatic rotation period (seconds, 0 = off) and stores it. Errors: ERR_IO. */
enum err rotate_set_period(struct app *app, int64_t seconds);

/*
 * Brackets the time between wrapping a new key and recording it (a push):
 * a KEK is never destroyed while such a key may still be on its way to the
 * database. Both are no-ops when the worker is not open.
 */
void rotate_wrap_enter(struct app *app);
void rotate_wrap_leave(struct app *app);

/*
 * Re-wraps, synchronously, every key not under the provider's current KEK,
 * batch keys per transaction. Used by the worker and the benchmark. Adds the
 * number re-wrapped to *count; stops early (ERR_OK) when *stop becomes
 * non-zero. rotation_id (0: none) receives the progress.
 * Errors: ERR_IO, and those of the provider (a key that fails to unwrap is
 * logged and skipped; the KEK it names is then kept).
 */
enum err rotate_rewrap_all(struct meta *m, struct key_provider *kp, int batch, int pause_ms,
                           const volatile int *stop, int64_t rotation_id, int64_t *count);

/* The current KEK id of kp (keyring) into out. Errors: ERR_UNAVAILABLE. */
enum err rotate_current_kek(struct key_provider *kp, char *out, size_t cap);

#endif
