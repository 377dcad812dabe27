#include "crypt/envelope.h"

#include <string.h>

#include "util/secure.h"

enum err envelope_new_dek(uint8_t dek[ENVELOPE_DEK_LEN])
{
    if (dek == NULL)
        return ERR_INVALID;
    if (secure_random(dek, ENVELOPE_DEK_LEN) != 0) {
        secure_wipe(dek, ENVELOPE_DEK_LEN);
        return ERR_INTERNAL;
    }
    return ERR_OK;
}

enum err envelope_wrap(struct key_provider *kp, const uint8_t dek[ENVELOPE_DEK_LEN],
                       const uint8_t *identity, size_t identity_len, uint8_t *out, size_t out_cap,
                       size_t *out_len, char *kek_id, size_t kek_id_cap)
{
    if (kp == NULL || kp->wrap == NULL || dek == NULL)
        return ERR_INVALID;
    return kp->wrap(kp, dek, ENVELOPE_DEK_LEN, identity, identity_len, out, out_cap, out_len,
                    kek_id, kek_id_cap);
}

enum err envelope_unwrap(struct key_provider *kp, const char *kek_id, const uint8_t *wrapped,
                         size_t wrapped_len, const uint8_t *identity, size_t identity_len,
                         uint8_t dek[ENVELOPE_DEK_LEN])
{
    if (kp == NULL || kp->unwrap == NULL || dek == NULL)
        return ERR_INVALID;
    uint8_t buf[KEYS_DEK_MAX];
    size_t len = 0;
    enum err rc = kp->unwrap(kp, kek_id, wrapped, wrapped_len, identity, identity_len, buf,
                             sizeof(buf), &len);
    if (rc == ERR_OK && len != ENVELOPE_DEK_LEN)
        rc = ERR_INTEGRITY;
    if (rc == ERR_OK)
        memcpy(dek, buf, ENVELOPE_DEK_LEN);
    else
        secure_wipe(dek, ENVELOPE_DEK_LEN);
    secure_wipe(buf, sizeof(buf));
    return rc;
}

enum err envelope_rewrap(struct key_provider *kp, const char *old_kek_id, const uint8_t *wrapped,
                         size_t wrapped_len, const uint8_t *identity, size_t identity_len,
                         uint8_t *out, size_t out_cap, size_t *out_len, char *kek_id,
                         size_t kek_id_cap)
{
    uint8_t dek[ENVELOPE_DEK_LEN];
    enum err rc =
        envelope_unwrap(kp, old_kek_id, wrapped, wrapped_len, identity, identity_len, dek);
    if (rc == ERR_OK)
        rc = envelope_wrap(kp, dek, identity, identity_len, out, out_cap, out_len, kek_id,
                           kek_id_cap);
    secure_wipe(dek, sizeof(dek));
    return rc;
}
