/*
 * blob: the content store. Blobs are ciphertext files named by a random
 * 128-bit id (never by path or hash, so names leak nothing). An upload is
 * written to DIR/tmp/, fsynced, then renamed to DIR/xx/ID and the directory
 * fsynced: a blob is either complete in its final place or not there.
 */
#ifndef COFFER_BLOB_BLOB_H
#define COFFER_BLOB_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define BLOB_ID_LEN 32

struct blob_store;

struct blob_upload {
    int fd;
    char blob_id[BLOB_ID_LEN + 1];
    char tmp_path[4096];
    uint64_t written;
    uint64_t flushed; /* bytes handed to write-back so far */
    uint64_t limit;   /* maximum bytes accepted; 0 means no limit */
    int failed;
};

/* Opens the store rooted at dir (created with mode 0700 if absent). */
enum err blob_fs_open(const char *dir, struct blob_store **out);
void blob_fs_close(struct blob_store *bs);

/* Starts an upload with a fresh random id. */
enum err blob_upload_begin(struct blob_store *bs, struct blob_upload *up);
/* stream_sink_fn-compatible writer: ctx is a struct blob_upload. 0 ok, -1 error. */
int blob_upload_write(void *ctx, const uint8_t *buf, size_t len);
/* Makes the upload durable and moves it into place. */
enum err blob_upload_commit(struct blob_store *bs, struct blob_upload *up);
/* Removes a committed blob (used when the metadata commit fails). */
enum err blob_remove(struct blob_store *bs, const char *blob_id);
/* Closes and deletes an unfinished upload. Safe to call twice. */
void blob_upload_abort(struct blob_upload *up);
/* Opens a blob read-only; *fd must be closed by the caller. */
enum err blob_open_read(struct blob_store *bs, const char *blob_id, int *fd, uint64_t *size);

/* Deletes every leftover temporary upload and every blob for which
 * is_referenced returns 0. Returns the number of files removed in *removed. */
enum err blob_cleanup(struct blob_store *bs, int (*is_referenced)(const char *blob_id, void *ctx),
                      void *ctx, unsigned *removed);

/* Validates the form of a blob id (32 lower-case hex digits). */
int blob_id_valid(const char *id);

#endif
