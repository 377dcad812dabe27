/*
 * keys: the key provider interface. A key provider holds key-encryption keys
 * (KEKs) and wraps / unwraps data keys (DEKs) with them; KEK material never
 * leaves the provider. Implementations: the local keyring file
 * (keys/keyring.h); a hardware module (PKCS#11) fits the same interface.
 *
 * A provider has one current KEK, used for every new wrap, and any number of
 * older KEKs kept for unwrapping until their DEKs have been re-wrapped.
 * Providers are safe to call from several threads at once.
 */
#ifndef COFFER_KEYS_KEYS_H
#define COFFER_KEYS_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Buffer size for a KEK id, NUL included ("kek-1" ... up to 63 characters). */
#define KEYS_KEK_ID_CAP 64

/* Largest DEK a provider wraps, and the largest wrapped form it produces. */
#define KEYS_DEK_MAX 64
#define KEYS_WRAPPED_MAX 256

struct key_provider {
    const char *name; /* e.g. "keyring"; static storage */

    /*
     * Wraps dek (1..KEYS_DEK_MAX bytes) with the current KEK, binding ad
     * (associated data, may be NULL when ad_len is 0) so the wrapped key only
     * unwraps with the same ad. Writes at most out_cap bytes to out, sets
     * *out_len, and copies the KEK's id (NUL-terminated) into kek_id.
     * Errors: ERR_INVALID (lengths, capacities), ERR_INTERNAL.
     */
    enum err (*wrap)(struct key_provider *kp, const uint8_t *dek, size_t dek_len, const uint8_t *ad,
                     size_t ad_len, uint8_t *out, size_t out_cap, size_t *out_len, char *kek_id,
                     size_t kek_id_cap);

    /*
     * Unwraps a key wrapped under KEK kek_id (current or retired) with the
     * same ad. Writes the DEK to dek_out (dek_cap bytes) and sets *dek_len.
     * Errors: ERR_NOT_FOUND (unknown kek_id), ERR_INTEGRITY (tampered wrapped
     * key, wrong ad or wrong KEK; dek_out is then wiped), ERR_INVALID, ERR_INTERNAL.
     */
    enum err (*unwrap)(struct key_provider *kp, const char *kek_id, const uint8_t *wrapped,
                       size_t wrapped_len, const uint8_t *ad, size_t ad_len, uint8_t *dek_out,
                       size_t dek_cap, size_t *dek_len);

    /* Wipes all key material and frees the provider itself. */
    void (*destroy)(struct key_provider *kp);

    void *impl; /* implementation state */
};

/* Destroys kp through its destroy hook. NULL is a no-op. */
static inline void key_provider_free(struct key_provider *kp)
{
    if (kp != NULL && kp->destroy != NULL)
        kp->destroy(kp);
}

#endif
