/*
 * envelope: envelope encryption of artifact versions. Each version gets its
 * own random data key (DEK) that seals its content (crypt/stream.h); the DEK
 * is stored only wrapped by a key-encryption key (KEK) of a key provider
 * (keys/keys.h), bound to the version's identity so a wrapped DEK copied onto
 * another version does not unwrap. Rotating the KEK re-wraps DEKs without
 * touching content; erasing the wrapped DEK crypto-shreds the version.
 */
#ifndef COFFER_CRYPT_ENVELOPE_H
#define COFFER_CRYPT_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "keys/keys.h"
#include "util/err.h"

#define ENVELOPE_DEK_LEN 32
/* Size of a wrapped DEK from the keyring: 12-byte nonce + 32-byte DEK + 16-byte tag. */
#define ENVELOPE_WRAPPED_LEN 60

/* Fills dek with a fresh random data key. Errors: ERR_INTERNAL (no randomness; dek is wiped). */
enum err envelope_new_dek(uint8_t dek[ENVELOPE_DEK_LEN]);

/*
 * Wraps dek with kp's current KEK, bound to identity (the same bytes the
 * stream is bound to, e.g. the blob id). Writes the wrapped key to out
 * (out_cap bytes, KEYS_WRAPPED_MAX is always enough), its length to
 * *out_len, and the KEK id, which the caller stores next to it, to kek_id
 * (KEYS_KEK_ID_CAP bytes is always enough).
 * Errors: those of the provider's wrap.
 */
enum err envelope_wrap(struct key_provider *kp, const uint8_t dek[ENVELOPE_DEK_LEN],
                       const uint8_t *identity, size_t identity_len, uint8_t *out, size_t out_cap,
                       size_t *out_len, char *kek_id, size_t kek_id_cap);

/*
 * Unwraps a DEK stored with kek_id for identity into dek. Fails unless the
 * result is exactly ENVELOPE_DEK_LEN bytes; dek is wiped on every failure.
 * Errors: ERR_NOT_FOUND (unknown KEK), ERR_INTEGRITY (tampered, wrong
 * identity or wrong length), ERR_INVALID, ERR_INTERNAL.
 */
enum err envelope_unwrap(struct key_provider *kp, const char *kek_id, const uint8_t *wrapped,
                         size_t wrapped_len, const uint8_t *identity, size_t identity_len,
                         uint8_t dek[ENVELOPE_DEK_LEN]);

/*
 * Re-wraps a wrapped DEK under kp's current KEK (for KEK rotation): unwraps
 * with old_kek_id, wraps again, wipes the plaintext DEK. Outputs as envelope_wrap.
 * Errors: those of envelope_unwrap and envelope_wrap.
 */
enum err envelope_rewrap(struct key_provider *kp, const char *old_kek_id, const uint8_t *wrapped,
                         size_t wrapped_len, const uint8_t *identity, size_t identity_len,
                         uint8_t *out, size_t out_cap, size_t *out_len, char *kek_id,
                         size_t kek_id_cap);

#endif
