/*
 * reencrypt: copies a version's content into a new blob under a fresh data
 * key. Promotion uses the copy to store the content in another environment;
 * `coffer keys rotate --reencrypt` uses it to move one version onto a new
 * blob and DEK in place (for a DEK that may have leaked). Plaintext exists
 * only in memory, one segment at a time; the copy is verified against the
 * recorded SHA-256 and size before it is committed.
 */
#ifndef COFFER_APP_REENCRYPT_H
#define COFFER_APP_REENCRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "blob/blob.h"
#include "keys/keys.h"
#include "util/err.h"

struct app;
struct meta_version;

/*
 * Decrypts src's blob with its DEK and re-encrypts it under a fresh DEK into
 * a new blob, committed (fsynced and renamed) as up->blob_id only if its
 * SHA-256 and size equal src->sha256 and src->size. Writes the new DEK
 * wrapped under the current KEK (bound to the new blob id) to wrapped
 * (wrapped_cap bytes; KEYS_WRAPPED_MAX is enough), its length to
 * *wrapped_len and its KEK id to kek_id (kek_cap bytes; KEYS_KEK_ID_CAP).
 * On failure no new blob remains. Both DEKs are wiped on every path.
 * Errors: ERR_INTEGRITY (content or key failed verification), ERR_NOT_FOUND
 * (blob or KEK missing), ERR_IO, ERR_INTERNAL, those of the key provider.
 */
enum err reencrypt_copy_blob(struct app *app, const struct meta_version *src,
                             struct blob_upload *up, uint8_t *wrapped, size_t wrapped_cap,
                             size_t *wrapped_len, char *kek_id, size_t kek_cap);

/* What reencrypt_version did. */
struct reencrypt_result {
    char old_blob[BLOB_ID_LEN + 1];
    char new_blob[BLOB_ID_LEN + 1];
    char old_kek[KEYS_KEK_ID_CAP];
    char new_kek[KEYS_KEK_ID_CAP];
    int old_removed; /* the old blob file was deleted (no other version used it) */
};

/*
 * Moves version v (not erased) onto a new blob under a fresh DEK: copies it
 * (reencrypt_copy_blob), swaps blob id, wrapped DEK and KEK id in one
 * transaction, then deletes the old blob unless another version still uses
 * it. Fills *res. On failure the version is unchanged and the new blob removed.
 * Errors: ERR_GONE (v is or became erased), ERR_CONFLICT (v changed blob
 * meanwhile), those of reencrypt_copy_blob, ERR_IO.
 */
enum err reencrypt_version(struct app *app, const struct meta_version *v,
                           struct reencrypt_result *res);

#endif
