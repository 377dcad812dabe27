/*
 * Re-encryption of a version's content under a fresh data key.
 */
#include "app/reencrypt.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "crypt/envelope.h"
#include "crypt/stream.h"
#include "keys/rotate.h"
#include "meta/meta.h"
#include "meta/reencrypt_store.h"
#include "util/log.h"
#include "util/secure.h"

struct reencrypt_copy {
    EVP_MD_CTX *sha;
    struct stream_writer *writer;
    uint64_t size;
};

/* Receives each verified plaintext segment: hashes it and seals it again. */
static int reencrypt_sink(void *ctx, const uint8_t *buf, size_t len)
{
    struct reencrypt_copy *rc = ctx;
    rc->size += len;
    if (EVP_DigestUpdate(rc->sha, buf, len) != 1)
        return -1;
    return stream_writer_update(rc->writer, buf, len) == ERR_OK ? 0 : -1;
}

/* Compares the copied content's digest and size with the recorded ones. */
static enum err reencrypt_verify(struct reencrypt_copy *rc, const struct meta_version *src)
{
    uint8_t digest[32];
    char hex[65];
    unsigned dlen = 0;
    if (EVP_DigestFinal_ex(rc->sha, digest, &dlen) != 1 || dlen != sizeof(digest))
        return ERR_INTERNAL;
    hex_encode(digest, sizeof(digest), hex);
    if (rc->size != src->size || strcmp(hex, src->sha256) != 0)
        return ERR_INTEGRITY;
    return ERR_OK;
}

enum err reencrypt_copy_blob(struct app *app, const struct meta_version *src,
                             struct blob_upload *up, uint8_t *wrapped, size_t wrapped_cap,
                             size_t *wrapped_len, char *kek_id, size_t kek_cap)
{
    uint8_t old_dek[ENVELOPE_DEK_LEN], new_dek[ENVELOPE_DEK_LEN];
    struct reencrypt_copy rc = {0};
    int fd = -1, upload_open = 0;
    uint64_t fsize = 0;
    enum err e = envelope_unwrap(app->keys, src->kek_id, src->wrapped_dek, src->wrapped_len,
                                 (const uint8_t *)src->blob_id, BLOB_ID_LEN, old_dek);
    if (e == ERR_OK)
        e = envelope_new_dek(new_dek);
    else
        secure_wipe(new_dek, sizeof(new_dek));
    if (e == ERR_OK)
        e = blob_open_read(app->blobs, src->blob_id, &fd, &fsize);
    if (e == ERR_OK && (e = blob_upload_begin(app->blobs, up)) == ERR_OK)
        upload_open = 1;
    rc.sha = EVP_MD_CTX_new();
    if (e == ERR_OK && (rc.sha == NULL || EVP_DigestInit_ex(rc.sha, EVP_sha256(), NULL) != 1))
        e = ERR_INTERNAL;
    if (e == ERR_OK)
        e = stream_writer_new(&rc.writer, new_dek, (const uint8_t *)up->blob_id, BLOB_ID_LEN,
                              app->cfg.segment_size, blob_upload_write, up);
    if (e == ERR_OK)
        e = stream_decrypt_fd(fd, old_dek, (const uint8_t *)src->blob_id, BLOB_ID_LEN,
                              reencrypt_sink, &rc);
    secure_wipe(old_dek, sizeof(old_dek));
    if (e == ERR_OK)
        e = stream_writer_finish(rc.writer);
    if (e == ERR_OK)
        e = reencrypt_verify(&rc, src);
    if (e == ERR_OK)
        e = envelope_wrap(app->keys, new_dek, (const uint8_t *)up->blob_id, BLOB_ID_LEN, wrapped,
                          wrapped_cap, wrapped_len, kek_id, kek_cap);
    secure_wipe(new_dek, sizeof(new_dek));
    stream_writer_free(rc.writer);
    EVP_MD_CTX_free(rc.sha);
    if (fd >= 0)
        close(fd);
    if (e == ERR_OK)
        e = blob_upload_commit(app->blobs, up);
    if (e != ERR_OK && upload_open)
        blob_upload_abort(up);
    return e;
}

enum err reencrypt_version(struct app *app, const struct meta_version *v,
                           struct reencrypt_result *res)
{
    memset(res, 0, sizeof(*res));
    if (v->wrapped_len == 0)
        return ERR_GONE;
    snprintf(res->old_blob, sizeof(res->old_blob), "%s", v->blob_id);
    snprintf(res->old_kek, sizeof(res->old_kek), "%s", v->kek_id);
    struct blob_upload up;
    uint8_t wrapped[KEYS_WRAPPED_MAX];
    size_t wrapped_len = 0;
    /* A KEK is never destroyed while a key wrapped under it is not yet recorded. */
    rotate_wrap_enter(app);
    enum err e = reencrypt_copy_blob(app, v, &up, wrapped, sizeof(wrapped), &wrapped_len,
                                     res->new_kek, sizeof(res->new_kek));
    int old_free = 0;
    if (e == ERR_OK) {
        e = reencrypt_store_swap(app->meta, v->version_id, v->blob_id, up.blob_id, wrapped,
                                 wrapped_len, res->new_kek, &old_free);
        if (e != ERR_OK)
            blob_remove(app->blobs, up.blob_id);
    }
    rotate_wrap_leave(app);
    secure_wipe(wrapped, sizeof(wrapped));
    if (e != ERR_OK)
        return e;
    snprintf(res->new_blob, sizeof(res->new_blob), "%s", up.blob_id);
    if (old_free) {
        if (blob_remove(app->blobs, res->old_blob) == ERR_OK)
            res->old_removed = 1;
        else
            log_warn("reencrypt: old blob %s could not be removed; 'coffer gc' removes it later",
                     res->old_blob);
    }
    return ERR_OK;
}
