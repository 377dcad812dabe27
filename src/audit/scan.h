/*
 * scan: the reader of events.log framing, shared by the log, the iterators
 * and the verifier. A record is [u32 BE length][length bytes], with
 * 1 <= length <= AUDIT_EVENT_MAX. The records may be followed by zero bytes
 * up to the end of the file: space the writer allocated ahead, so that
 * fdatasync writes data only. A zero length prefix (or fewer than four zero
 * bytes) therefore ends the records, and everything after it must be zero.
 * Files are streamed through one large buffer; in-memory contents are
 * walked without copying.
 */
#ifndef COFFER_AUDIT_SCAN_H
#define COFFER_AUDIT_SCAN_H

#include "util/err.h"

#include <stddef.h>
#include <stdint.h>

/* Where records come from: a file descriptor read with pread from pos up to
 * limit (UINT64_MAX: to end of file), or a memory buffer (mem != NULL). */
struct audit_src {
    int fd;
    uint64_t pos;
    uint64_t limit;
    const uint8_t *mem;
    size_t mem_len;
};

/* Called for each complete record; offset is the record's position (of its
 * length prefix) relative to the start of the source. Return 0 to go on,
 * nonzero to stop. */
typedef int (*audit_record_fn)(void *ctx, uint64_t index, uint64_t offset, const uint8_t *data,
                               size_t len);

struct audit_scan_result {
    uint64_t records;  /* complete records passed to the callback */
    uint64_t good_end; /* offset just past the last complete record */
    int torn;          /* the source ends inside a record (or its length prefix) */
    int bad_length;    /* a length prefix is larger than AUDIT_EVENT_MAX */
    int junk;          /* a zero length prefix is followed by non-zero bytes */
    int stopped;       /* the callback asked to stop */
};

/* Whether a record has the framing of every event the log writes: one JSON
 * object on one line, without NUL bytes. A record that fails this (inside
 * space allocated ahead, a crash can leave zero bytes in a record whose
 * write was interrupted) is not an event. */
int audit_record_framed(const uint8_t *data, size_t len);

/* Streams records from src, numbering them from first_index. Returns ERR_OK
 * (framing problems are reported in *res), ERR_IO or ERR_INTERNAL. */
enum err audit_scan(struct audit_src *src, uint64_t first_index, audit_record_fn fn, void *ctx,
                    struct audit_scan_result *res);

#endif
