/*
 * stream: the segmented AEAD format Coffer uses to store every artifact
 * version at rest (byte layout and rationale: docs/FORMAT.md).
 *
 * A stream is a fixed header followed by segments sealed with AES-256-GCM
 * under the version's data key (DEK). Each segment's nonce is the header's
 * random prefix followed by the segment index, and its associated data binds
 * the header, the caller's identity for the version (e.g. its blob id) and a
 * last-segment flag. Truncation, reordering, splicing segments from another
 * stream and any modified bit are therefore detected as ERR_INTEGRITY.
 *
 * The writer is push-style (data in, sealed bytes out through a sink); the
 * reader opens any segment on its own, so a server can answer range requests
 * with pread. Neither object is safe to share between threads; create one per
 * request instead (creation is cheap).
 */
#ifndef COFFER_CRYPT_STREAM_H
#define COFFER_CRYPT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define STREAM_MAGIC "CFRSTRM" /* 7 bytes, no NUL on disk */
#define STREAM_MAGIC_LEN 7
#define STREAM_VERSION 1
#define STREAM_NONCE_PREFIX_LEN 8
#define STREAM_HEADER_LEN 20 /* magic 7 + version 1 + segment size 4 + prefix 8 */
#define STREAM_KEY_LEN 32
#define STREAM_TAG_LEN 16
#define STREAM_MIN_SEGMENT 4096u
#define STREAM_MAX_SEGMENT (16u * 1024u * 1024u)
#define STREAM_DEFAULT_SEGMENT 65536u
#define STREAM_MAX_SEGMENTS 0xFFFFFFFFull /* segment indices are 0 .. 2^32-2 */
#define STREAM_MAX_IDENTITY 4096          /* bytes of caller identity bound into each segment */

/* Receives output bytes. Returns 0 on success, -1 on failure (the writer then fails with ERR_IO).
 */
typedef int (*stream_sink_fn)(void *ctx, const uint8_t *buf, size_t len);

struct stream_writer;
struct stream_reader;

/*
 * Starts a stream sealed with key (32 bytes) and bound to identity (may be
 * NULL when identity_len is 0; at most STREAM_MAX_IDENTITY bytes). A
 * segment_size of 0 selects STREAM_DEFAULT_SEGMENT; otherwise it must lie in
 * STREAM_MIN_SEGMENT..STREAM_MAX_SEGMENT. Draws a fresh random nonce prefix
 * and emits the header through sink before returning.
 * On success *out is owned by the caller (stream_writer_free). The writer keeps
 * no copy of key outside the OpenSSL cipher context, which it wipes on free.
 * Errors: ERR_INVALID (arguments), ERR_IO (sink failed), ERR_INTERNAL.
 */
enum err stream_writer_new(struct stream_writer **out, const uint8_t key[32],
                           const uint8_t *identity, size_t identity_len, uint32_t segment_size,
                           stream_sink_fn sink, void *sink_ctx);

/*
 * Appends len bytes of plaintext (any chunking, len 0 allowed). Buffers at
 * most one segment: a full segment is sealed only once more data arrives,
 * because only then is it known not to be the last one.
 * Errors: ERR_INVALID (writer already finished or failed), ERR_TOO_LARGE
 * (more than STREAM_MAX_SEGMENTS segments), ERR_IO (sink failed),
 * ERR_INTERNAL. After any error the writer refuses further input.
 */
enum err stream_writer_update(struct stream_writer *w, const uint8_t *data, size_t len);

/*
 * Seals the buffered data as the last segment (zero bytes if the stream is
 * empty) and emits it. The stream is complete only once this returned ERR_OK.
 * Errors: as stream_writer_update.
 */
enum err stream_writer_finish(struct stream_writer *w);

/* Wipes the buffered plaintext and the key schedule, then frees. NULL is a no-op. */
void stream_writer_free(struct stream_writer *w);

/*
 * Exact size in bytes of the stream (header included) that sealing
 * plaintext_size bytes with segment_size (0 = default) produces.
 * Returns 0 if segment_size is out of range or the content would need more
 * than STREAM_MAX_SEGMENTS segments.
 */
uint64_t stream_ciphertext_size(uint64_t plaintext_size, uint32_t segment_size);

/*
 * Prepares to open the segments of a stream of total_size bytes (header
 * included) sealed with key for identity. header points to at least
 * STREAM_HEADER_LEN bytes read from the start of the file (extra bytes are
 * ignored). Checks the magic, version and segment size, and that total_size
 * is exactly what a writer produces for some plaintext size.
 * On success *out is owned by the caller (stream_reader_free).
 * Errors: ERR_INVALID (NULL arguments, identity too long), ERR_INTEGRITY
 * (malformed header or inconsistent size), ERR_INTERNAL.
 */
enum err stream_reader_new(struct stream_reader **out, const uint8_t key[32],
                           const uint8_t *identity, size_t identity_len, const uint8_t *header,
                           size_t header_len, uint64_t total_size);

/* Plaintext bytes in the whole stream, as implied by its size. */
uint64_t stream_reader_plaintext_size(const struct stream_reader *r);

/* Number of segments (at least 1). */
uint64_t stream_reader_segment_count(const struct stream_reader *r);

/* Plaintext bytes per full segment, from the header. */
uint32_t stream_reader_segment_size(const struct stream_reader *r);

/* File offset of sealed segment idx (idx < segment count). */
uint64_t stream_reader_segment_offset(const struct stream_reader *r, uint64_t idx);

/* Length of sealed segment idx (plaintext + tag), 0 if idx is out of range. */
size_t stream_reader_segment_sealed_len(const struct stream_reader *r, uint64_t idx);

/*
 * Authenticates and decrypts sealed segment idx (sealed_len bytes read from
 * stream_reader_segment_offset) into plain_out, which must hold at least
 * sealed_len - STREAM_TAG_LEN bytes; plain_out may be exactly sealed (in place)
 * but must not otherwise overlap it. Sets *plain_len.
 * No plaintext is released unless the tag verifies: on failure plain_out is wiped.
 * Errors: ERR_INVALID (idx out of range, plain_cap too small), ERR_INTEGRITY
 * (wrong length, key, identity, position or any modified byte), ERR_INTERNAL.
 */
enum err stream_reader_open_segment(struct stream_reader *r, uint64_t idx, const uint8_t *sealed,
                                    size_t sealed_len, uint8_t *plain_out, size_t plain_cap,
                                    size_t *plain_len);

/* Wipes the key schedule and frees. NULL is a no-op. */
void stream_reader_free(struct stream_reader *r);

/*
 * Decrypts the whole stream in in_fd (read with pread from offset 0, the
 * size taken from fstat) and writes the plaintext to sink, one segment at a
 * time. Each segment reaches sink only after its tag verified, but truncation
 * of the file is detected only at the last segment: on any error the caller
 * must discard what sink already received (e.g. abort the HTTP response).
 * Errors: as stream_reader_new and stream_reader_open_segment, ERR_IO (read
 * failed or sink failed), ERR_INTEGRITY (file shorter than its size implied).
 */
enum err stream_decrypt_fd(int in_fd, const uint8_t key[32], const uint8_t *identity,
                           size_t identity_len, stream_sink_fn sink, void *ctx);

#endif
