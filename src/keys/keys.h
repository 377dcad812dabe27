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

/* Public facts about one KEK (never its key). */
struct keys_kek_info {
    char id[KEYS_KEK_ID_CAP];
    int64_t created; /* unix time */
    int current;     /* 1 for the current KEK, 0 for a retired one */
};

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

    /*
     * Optional KEK management hooks (NULL when the provider cannot do it);
     * call them through keys_rotate, keys_destroy_kek, keys_kek_count and
     * keys_kek_info below.
     *
     * rotate: creates a fresh KEK, makes it current and retires the previous
     * one (still used to unwrap); copies the new id into new_id (may be NULL).
     * destroy_kek: destroys the retired KEK id for good (ERR_NOT_FOUND,
     * ERR_CONFLICT for the current KEK). kek_count / kek_info: the KEKs the
     * provider holds, oldest first.
     */
    enum err (*rotate)(struct key_provider *kp, char *new_id, size_t new_id_cap);
    enum err (*destroy_kek)(struct key_provider *kp, const char *id);
    size_t (*kek_count)(struct key_provider *kp);
    enum err (*kek_info)(struct key_provider *kp, size_t i, struct keys_kek_info *info);

    void *impl; /* implementation state */
};

/* Destroys kp through its destroy hook. NULL is a no-op. */
static inline void key_provider_free(struct key_provider *kp)
{
    if (kp != NULL && kp->destroy != NULL)
        kp->destroy(kp);
}

/* Rotates the KEK of kp. Errors: ERR_UNAVAILABLE (kp cannot rotate), those of the hook. */
static inline enum err keys_rotate(struct key_provider *kp, char *new_id, size_t new_id_cap)
{
    if (kp == NULL || kp->rotate == NULL)
        return ERR_UNAVAILABLE;
    return kp->rotate(kp, new_id, new_id_cap);
}

/* Destroys retired KEK id. Errors: ERR_UNAVAILABLE (kp cannot), those of the hook. */
static inline enum err keys_destroy_kek(struct key_provider *kp, const char *id)
{
    if (kp == NULL || kp->destroy_kek == NULL)
        return ERR_UNAVAILABLE;
    return kp->destroy_kek(kp, id);
}

/* Number of KEKs kp holds, 0 when it cannot tell. */
static inline size_t keys_kek_count(struct key_provider *kp)
{
    return kp != NULL && kp->kek_count != NULL ? kp->kek_count(kp) : 0;
}

/* Facts about KEK i (0 = oldest). Errors: ERR_UNAVAILABLE, ERR_NOT_FOUND (i). */
static inline enum err keys_kek_info(struct key_provider *kp, size_t i, struct keys_kek_info *info)
{
    if (kp == NULL || kp->kek_info == NULL)
        return ERR_UNAVAILABLE;
    return kp->kek_info(kp, i, info);
}

#endif
