/*
 * file: small helpers for writing files durably.
 */
#ifndef COFFER_UTIL_FILE_H
#define COFFER_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Writes all len bytes of data to fd, retrying after EINTR and short
 * writes. 0, or -1 with errno set. */
int file_write_all(int fd, const void *data, size_t len);

/* Writes all len bytes of data to fd at offset (pwrite), retrying after
 * EINTR and short writes. 0, or -1 with errno set. */
int file_pwrite_all(int fd, const void *data, size_t len, uint64_t offset);

/* fsyncs the directory that holds path, so that a file created or renamed
 * there survives a crash. 0, or -1 with errno set. */
int file_sync_parent(const char *path);

/* Replaces path atomically with data followed by a newline, mode 0600: a
 * temporary file next to it (created exclusively), written, fsynced,
 * renamed over path, then the directory fsynced. Either the old or the new
 * content is there after a crash; the temporary file is removed on
 * failure. 0, or -1 with errno set (ENAMETOOLONG for a path too long). */
int file_replace_private(const char *path, const void *data, size_t len);

#endif
