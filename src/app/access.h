/*
 * access (server side): seeds the built-in roles and guardrails into a new
 * store, and compiles the stored policies, roles and bindings into the
 * policy engine's snapshot, swapped in atomically on every change.
 */
#ifndef COFFER_APP_ACCESS_H
#define COFFER_APP_ACCESS_H

#include <stddef.h>

#include "meta/meta.h"
#include "util/err.h"

/* Stores the built-in roles and global guardrails once per store (editable
 * afterwards; a deleted one does not come back). */
enum err access_seed_builtins(struct meta *m);

/* Rebuilds the snapshot from the store and installs it. On failure the
 * previous snapshot stays in force and err says why. */
enum err access_reload(struct meta *m, char *err, size_t cap);

/* Drops the installed snapshot (at shutdown). */
void access_unload(void);

#endif
