#include "crypt/stream.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/secure.h"

#define STREAM_NONCE_LEN 12
#define STREAM_ID_LEN_BYTES 4
#define STREAM_FLAG_BYTES 1

enum stream_writer_state { WRITER_OPEN, WRITER_FINISHED, WRITER_FAILED };

struct stream_writer {
    EVP_CIPHER_CTX *ctx;
    uint8_t *aad; /* header || u32 identity length || identity || last flag */
    size_t aad_len;
    uint8_t prefix[STREAM_NONCE_PREFIX_LEN];
    uint32_t segment_size;
    uint64_t index;  /* index of the next segment to seal */
    uint8_t *buf;    /* segment_size + tag: pending plaintext, then the sealed segment */
    size_t buffered; /* plaintext bytes pending in buf */
    stream_sink_fn sink;
    void *sink_ctx;
    enum stream_writer_state state;
};

struct stream_reader {
    EVP_CIPHER_CTX *ctx;
    uint8_t *aad;
    size_t aad_len;
    uint8_t prefix[STREAM_NONCE_PREFIX_LEN];
    uint32_t segment_size;
    uint64_t count;        /* number of segments, >= 1 */
    uint64_t plain_size;   /* total plaintext bytes */
    size_t last_plain_len; /* plaintext bytes in the last segment */
};

static void stream_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t stream_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int stream_segment_size_ok(uint32_t segment_size)
{
    return segment_size >= STREAM_MIN_SEGMENT && segment_size <= STREAM_MAX_SEGMENT;
}

/*
 * Builds the associated data shared by every segment of one stream; only the
 * trailing last-segment flag changes per segment. Caller frees with free().
 */
static uint8_t *stream_build_aad(const uint8_t header[STREAM_HEADER_LEN], const uint8_t *identity,
                                 size_t identity_len, size_t *aad_len)
{
    size_t len = STREAM_HEADER_LEN + STREAM_ID_LEN_BYTES + identity_len + STREAM_FLAG_BYTES;
    uint8_t *aad = malloc(len);
    if (aad == NULL)
        return NULL;
    memcpy(aad, header, STREAM_HEADER_LEN);
    stream_put_be32(aad + STREAM_HEADER_LEN, (uint32_t)identity_len);
    if (identity_len > 0)
        memcpy(aad + STREAM_HEADER_LEN + STREAM_ID_LEN_BYTES, identity, identity_len);
    aad[len - 1] = 0;
    *aad_len = len;
    return aad;
}

/* Creates an AES-256-GCM context keyed once; each segment later sets only its IV. */
static EVP_CIPHER_CTX *stream_cipher_new(const uint8_t key[STREAM_KEY_LEN], int encrypt)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return NULL;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, STREAM_NONCE_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, NULL, encrypt) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void stream_nonce(uint8_t nonce[STREAM_NONCE_LEN], const uint8_t *prefix, uint64_t index)
{
    memcpy(nonce, prefix, STREAM_NONCE_PREFIX_LEN);
    stream_put_be32(nonce + STREAM_NONCE_PREFIX_LEN, (uint32_t)index);
}

static int stream_parse_header(const uint8_t *header, uint32_t *segment_size)
{
    if (memcmp(header, STREAM_MAGIC, STREAM_MAGIC_LEN) != 0)
        return -1;
    if (header[STREAM_MAGIC_LEN] != STREAM_VERSION)
        return -1;
    *segment_size = stream_get_be32(header + STREAM_MAGIC_LEN + 1);
    return stream_segment_size_ok(*segment_size) ? 0 : -1;
}

/* ---- writer ---- */

/*
 * Seals len bytes at in as segment w->index into w->buf (in may be w->buf
 * itself) and hands the sealed bytes to the sink.
 */
static enum err stream_writer_seal(struct stream_writer *w, const uint8_t *in, size_t len, int last)
{
    /* A non-last segment promises a successor, whose index must still fit. */
    if (w->index >= (last ? STREAM_MAX_SEGMENTS : STREAM_MAX_SEGMENTS - 1))
        return ERR_TOO_LARGE;
    uint8_t nonce[STREAM_NONCE_LEN];
    stream_nonce(nonce, w->prefix, w->index);
    w->aad[w->aad_len - 1] = last ? 1 : 0;
    int outl = 0, finl = 0;
    if (EVP_EncryptInit_ex(w->ctx, NULL, NULL, NULL, nonce) != 1 ||
        EVP_EncryptUpdate(w->ctx, NULL, &outl, w->aad, (int)w->aad_len) != 1)
        return ERR_INTERNAL;
    outl = 0;
    if (len > 0 && EVP_EncryptUpdate(w->ctx, w->buf, &outl, in, (int)len) != 1)
        return ERR_INTERNAL;
    if (EVP_EncryptFinal_ex(w->ctx, w->buf + outl, &finl) != 1 || (size_t)outl + finl != len ||
        EVP_CIPHER_CTX_ctrl(w->ctx, EVP_CTRL_GCM_GET_TAG, STREAM_TAG_LEN, w->buf + len) != 1)
        return ERR_INTERNAL;
    if (w->sink(w->sink_ctx, w->buf, len + STREAM_TAG_LEN) != 0)
        return ERR_IO;
    w->index++;
    return ERR_OK;
}

enum err stream_writer_new(struct stream_writer **out, const uint8_t key[32],
                           const uint8_t *identity, size_t identity_len, uint32_t segment_size,
                           stream_sink_fn sink, void *sink_ctx)
{
    if (out == NULL || key == NULL || sink == NULL || (identity == NULL && identity_len > 0) ||
        identity_len > STREAM_MAX_IDENTITY)
        return ERR_INVALID;
    *out = NULL;
    if (segment_size == 0)
        segment_size = STREAM_DEFAULT_SEGMENT;
    if (!stream_segment_size_ok(segment_size))
        return ERR_INVALID;

    enum err rc = ERR_INTERNAL;
    struct stream_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return ERR_INTERNAL;
    w->segment_size = segment_size;
    w->sink = sink;
    w->sink_ctx = sink_ctx;
    w->state = WRITER_OPEN;

    uint8_t header[STREAM_HEADER_LEN];
    memcpy(header, STREAM_MAGIC, STREAM_MAGIC_LEN);
    header[STREAM_MAGIC_LEN] = STREAM_VERSION;
    stream_put_be32(header + STREAM_MAGIC_LEN + 1, segment_size);
    if (secure_random(w->prefix, sizeof(w->prefix)) != 0)
        goto fail;
    memcpy(header + STREAM_MAGIC_LEN + 1 + 4, w->prefix, sizeof(w->prefix));

    w->buf = malloc((size_t)segment_size + STREAM_TAG_LEN);
    w->aad = stream_build_aad(header, identity, identity_len, &w->aad_len);
    w->ctx = stream_cipher_new(key, 1);
    if (w->buf == NULL || w->aad == NULL || w->ctx == NULL)
        goto fail;
    if (sink(sink_ctx, header, sizeof(header)) != 0) {
        rc = ERR_IO;
        goto fail;
    }
    *out = w;
    return ERR_OK;
fail:
    stream_writer_free(w);
    return rc;
}

enum err stream_writer_update(struct stream_writer *w, const uint8_t *data, size_t len)
{
    if (w == NULL || w->state != WRITER_OPEN || (data == NULL && len > 0))
        return ERR_INVALID;
    const size_t seg = w->segment_size;
    enum err rc = ERR_OK;
    while (len > 0) {
        /* More data follows, so a full pending segment is not the last one. */
        if (w->buffered == seg) {
            rc = stream_writer_seal(w, w->buf, seg, 0);
            if (rc != ERR_OK)
                break;
            w->buffered = 0;
        }
        /* Fast path: seal straight from the caller's buffer, skipping a copy. */
        if (w->buffered == 0 && len > seg) {
            rc = stream_writer_seal(w, data, seg, 0);
            if (rc != ERR_OK)
                break;
            data += seg;
            len -= seg;
            continue;
        }
        size_t n = seg - w->buffered;
        if (n > len)
            n = len;
        memcpy(w->buf + w->buffered, data, n);
        w->buffered += n;
        data += n;
        len -= n;
    }
    if (rc != ERR_OK) {
        w->state = WRITER_FAILED;
        secure_wipe(w->buf, seg + STREAM_TAG_LEN);
    }
    return rc;
}

enum err stream_writer_finish(struct stream_writer *w)
{
    if (w == NULL || w->state != WRITER_OPEN)
        return ERR_INVALID;
    enum err rc = stream_writer_seal(w, w->buf, w->buffered, 1);
    w->state = rc == ERR_OK ? WRITER_FINISHED : WRITER_FAILED;
    secure_wipe(w->buf, (size_t)w->segment_size + STREAM_TAG_LEN);
    w->buffered = 0;
    return rc;
}

void stream_writer_free(struct stream_writer *w)
{
    if (w == NULL)
        return;
    EVP_CIPHER_CTX_free(w->ctx); /* cleanses the key schedule */
    if (w->buf != NULL) {
        secure_wipe(w->buf, (size_t)w->segment_size + STREAM_TAG_LEN);
        free(w->buf);
    }
    free(w->aad);
    secure_wipe(w, sizeof(*w));
    free(w);
}

uint64_t stream_ciphertext_size(uint64_t plaintext_size, uint32_t segment_size)
{
    if (segment_size == 0)
        segment_size = STREAM_DEFAULT_SEGMENT;
    if (!stream_segment_size_ok(segment_size))
        return 0;
    uint64_t count = plaintext_size / segment_size + (plaintext_size % segment_size != 0);
    if (count == 0)
        count = 1;
    if (count > STREAM_MAX_SEGMENTS)
        return 0;
    /* count <= 2^32-1 and segment_size <= 2^24 bound the sum well below 2^64. */
    return STREAM_HEADER_LEN + count * STREAM_TAG_LEN + plaintext_size;
}

/* ---- reader ---- */

/*
 * Derives the segment layout from the file size. Only sizes a writer can
 * produce are accepted: a final segment with no plaintext exists only when
 * the whole stream is empty.
 */
static int stream_reader_layout(struct stream_reader *r, uint64_t total_size)
{
    if (total_size < STREAM_HEADER_LEN)
        return -1;
    const uint64_t body = total_size - STREAM_HEADER_LEN;
    const uint64_t full = (uint64_t)r->segment_size + STREAM_TAG_LEN;
    const uint64_t n = body / full, rest = body % full;
    if (rest == 0) {
        if (n == 0)
            return -1;
        r->count = n;
        r->last_plain_len = r->segment_size;
    } else {
        if (rest < STREAM_TAG_LEN || (rest == STREAM_TAG_LEN && n > 0))
            return -1;
        r->count = n + 1;
        r->last_plain_len = (size_t)(rest - STREAM_TAG_LEN);
    }
    if (r->count > STREAM_MAX_SEGMENTS)
        return -1;
    r->plain_size = (r->count - 1) * r->segment_size + r->last_plain_len;
    return 0;
}

enum err stream_reader_new(struct stream_reader **out, const uint8_t key[32],
                           const uint8_t *identity, size_t identity_len, const uint8_t *header,
                           size_t header_len, uint64_t total_size)
{
    if (out == NULL || key == NULL || (identity == NULL && identity_len > 0) ||
        identity_len > STREAM_MAX_IDENTITY || (header == NULL && header_len > 0))
        return ERR_INVALID;
    *out = NULL;
    if (header_len < STREAM_HEADER_LEN)
        return ERR_INTEGRITY;
    struct stream_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return ERR_INTERNAL;
    enum err rc = ERR_INTEGRITY;
    if (stream_parse_header(header, &r->segment_size) != 0 ||
        stream_reader_layout(r, total_size) != 0)
        goto fail;
    memcpy(r->prefix, header + STREAM_MAGIC_LEN + 1 + 4, sizeof(r->prefix));
    rc = ERR_INTERNAL;
    r->aad = stream_build_aad(header, identity, identity_len, &r->aad_len);
    r->ctx = stream_cipher_new(key, 0);
    if (r->aad == NULL || r->ctx == NULL)
        goto fail;
    *out = r;
    return ERR_OK;
fail:
    stream_reader_free(r);
    return rc;
}

uint64_t stream_reader_plaintext_size(const struct stream_reader *r)
{
    return r->plain_size;
}

uint64_t stream_reader_segment_count(const struct stream_reader *r)
{
    return r->count;
}

uint32_t stream_reader_segment_size(const struct stream_reader *r)
{
    return r->segment_size;
}

uint64_t stream_reader_segment_offset(const struct stream_reader *r, uint64_t idx)
{
    return STREAM_HEADER_LEN + idx * ((uint64_t)r->segment_size + STREAM_TAG_LEN);
}

size_t stream_reader_segment_sealed_len(const struct stream_reader *r, uint64_t idx)
{
    if (idx >= r->count)
        return 0;
    if (idx == r->count - 1)
        return r->last_plain_len + STREAM_TAG_LEN;
    return (size_t)r->segment_size + STREAM_TAG_LEN;
}

enum err stream_reader_open_segment(struct stream_reader *r, uint64_t idx, const uint8_t *sealed,
                                    size_t sealed_len, uint8_t *plain_out, size_t plain_cap,
                                    size_t *plain_len)
{
    if (r == NULL || sealed == NULL || plain_out == NULL || plain_len == NULL || idx >= r->count)
        return ERR_INVALID;
    *plain_len = 0;
    if (sealed_len != stream_reader_segment_sealed_len(r, idx))
        return ERR_INTEGRITY;
    const size_t len = sealed_len - STREAM_TAG_LEN;
    if (plain_cap < len)
        return ERR_INVALID;

    uint8_t nonce[STREAM_NONCE_LEN], tag[STREAM_TAG_LEN];
    stream_nonce(nonce, r->prefix, idx);
    memcpy(tag, sealed + len, STREAM_TAG_LEN);
    r->aad[r->aad_len - 1] = idx == r->count - 1 ? 1 : 0;
    int outl = 0, finl = 0;
    enum err rc = ERR_INTERNAL;
    if (EVP_DecryptInit_ex(r->ctx, NULL, NULL, NULL, nonce) != 1 ||
        EVP_DecryptUpdate(r->ctx, NULL, &outl, r->aad, (int)r->aad_len) != 1)
        goto fail;
    outl = 0;
    if (len > 0 && EVP_DecryptUpdate(r->ctx, plain_out, &outl, sealed, (int)len) != 1)
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_GCM_SET_TAG, STREAM_TAG_LEN, tag) != 1)
        goto fail;
    if (EVP_DecryptFinal_ex(r->ctx, plain_out + outl, &finl) != 1) {
        rc = ERR_INTEGRITY;
        goto fail;
    }
    *plain_len = len;
    return ERR_OK;
fail:
    secure_wipe(plain_out, len);
    return rc;
}

void stream_reader_free(struct stream_reader *r)
{
    if (r == NULL)
        return;
    EVP_CIPHER_CTX_free(r->ctx);
    free(r->aad);
    secure_wipe(r, sizeof(*r));
    free(r);
}

/* Reads exactly len bytes at off. 0 on success, 1 on early end of file, -1 on error. */
static int stream_pread_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        if (off > (uint64_t)INT64_MAX)
            return -1;
        ssize_t n = pread(fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 1;
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

enum err stream_decrypt_fd(int in_fd, const uint8_t key[32], const uint8_t *identity,
                           size_t identity_len, stream_sink_fn sink, void *ctx)
{
    if (in_fd < 0 || sink == NULL)
        return ERR_INVALID;
    struct stat st;
    if (fstat(in_fd, &st) != 0 || st.st_size < 0)
        return ERR_IO;
    uint8_t header[STREAM_HEADER_LEN];
    size_t header_len = (uint64_t)st.st_size < sizeof(header) ? (size_t)st.st_size : sizeof(header);
    int got = stream_pread_full(in_fd, header, header_len, 0);
    if (got < 0)
        return ERR_IO;
    if (got > 0)
        return ERR_INTEGRITY;

    struct stream_reader *r = NULL;
    enum err rc = stream_reader_new(&r, key, identity, identity_len, header, header_len,
                                    (uint64_t)st.st_size);
    if (rc != ERR_OK)
        return rc;
    /* No sealed segment is larger than the file body, so small files need small buffers. */
    size_t cap = (size_t)r->segment_size + STREAM_TAG_LEN;
    if ((uint64_t)st.st_size - STREAM_HEADER_LEN < cap)
        cap = (size_t)st.st_size - STREAM_HEADER_LEN;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        rc = ERR_INTERNAL;
        goto done;
    }
    for (uint64_t i = 0; i < r->count; i++) {
        size_t sealed_len = stream_reader_segment_sealed_len(r, i), plain_len = 0;
        got = stream_pread_full(in_fd, buf, sealed_len, stream_reader_segment_offset(r, i));
        if (got != 0) {
            rc = got < 0 ? ERR_IO : ERR_INTEGRITY;
            break;
        }
        rc = stream_reader_open_segment(r, i, buf, sealed_len, buf, cap, &plain_len);
        if (rc != ERR_OK)
            break;
        if (plain_len > 0 && sink(ctx, buf, plain_len) != 0) {
            rc = ERR_IO;
            break;
        }
    }
done:
    if (buf != NULL) {
        secure_wipe(buf, cap);
        free(buf);
    }
    stream_reader_free(r);
    return rc;
}
