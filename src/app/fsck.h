/*
 * fsck: the offline consistency check of a data directory (`coffer fsck`).
 * It checks that every version is complete and verifiable (its blob exists,
 * has exactly the ciphertext size its plaintext size implies, and its first
 * segment authenticates under the version's unwrapped data key; with deep,
 * the whole content decrypts and hashes to the recorded SHA-256), that
 * metadata and blobs agree (no orphan blobs, no leftover temporary uploads,
 * no stray files), that SQLite's integrity check passes, and that the audit
 * log verifies. With repair it deletes what is safe to delete: leftover
 * temporary uploads and blobs no version refers to (the server does the
 * same at start). It never changes metadata or the audit log.
 */
#ifndef COFFER_APP_FSCK_H
#define COFFER_APP_FSCK_H

#include <stdint.h>

#include "util/err.h"

struct fsck_options {
    int repair; /* delete leftover temporary files and orphan blobs */
    int deep;   /* decrypt every version in full and compare its SHA-256 */
};

struct fsck_report {
    uint64_t versions;  /* version rows checked */
    uint64_t verified;  /* versions whose content checked out */
    uint64_t erased;    /* crypto-shredded versions (no content expected) */
    uint64_t blobs;     /* blob files found */
    uint64_t problems;  /* integrity problems found and not repaired */
    uint64_t repaired;  /* files deleted by repair */
    uint64_t leftovers; /* leftover temporary files and orphan blobs found */
    uint64_t audit_events;
    int audit_ok;
};

/* Receives one finding: severity is "problem", "repaired" or "note". */
typedef void (*fsck_note_fn)(void *ctx, const char *severity, const char *text);

/*
 * Checks the stopped data directory data_dir and fills *rep. Takes the audit
 * log's lock for the duration, so a server cannot start meanwhile.
 * Returns ERR_OK when nothing is wrong (after repair, if asked);
 * ERR_INTEGRITY when problems remain; ERR_CONFLICT when a server is using
 * the directory; ERR_NOT_FOUND when it is not a data directory; ERR_FORBIDDEN
 * or ERR_IO when it cannot be read.
 */
enum err fsck_run(const char *data_dir, const struct fsck_options *opt, fsck_note_fn note,
                  void *ctx, struct fsck_report *rep);

#endif
