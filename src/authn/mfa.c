/*
 * TOTP enrolment and verification with secrets wrapped by the key provider.
 */
#include "authn/mfa.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "keys/keys.h"
#include "keys/rotate.h"
#include "meta/authn_store.h"
#include "util/secure.h"

static void mfa_identity(int64_t user_id, char *out, size_t cap)
{
    snprintf(out, cap, "coffer-totp/v1/%lld", (long long)user_id);
}

/* Unwraps the stored secret of t into secret (TOTP_SECRET_MAX_LEN bytes). */
static enum err mfa_unwrap(struct app *app, const struct meta_totp *t, uint8_t *secret, size_t *len)
{
    char id[64];
    mfa_identity(t->user_id, id, sizeof(id));
    struct key_provider *kp = app->keys;
    if (kp == NULL || kp->unwrap == NULL)
        return ERR_UNAVAILABLE;
    enum err e = kp->unwrap(kp, t->kek_id, t->wrapped, t->wrapped_len, (const uint8_t *)id,
                            strlen(id), secret, TOTP_SECRET_MAX_LEN, len);
    if (e != ERR_OK || *len < TOTP_SECRET_MIN_LEN) {
        secure_wipe(secret, TOTP_SECRET_MAX_LEN);
        return e == ERR_OK ? ERR_INTEGRITY : e;
    }
    return ERR_OK;
}

static int mfa_recovery_hash(const uint8_t salt[META_TOTP_SALT_LEN], const char *code,
                             uint8_t out[32])
{
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), salt, META_TOTP_SALT_LEN, (const unsigned char *)code, strlen(code), out,
             &len) == NULL ||
        len != 32)
        return -1;
    return 0;
}

enum err mfa_enroll_begin(struct app *app, int64_t user_id, const char *account, char *uri,
                          size_t uri_cap, char *secret_b32, size_t b32_cap)
{
    struct meta_totp t;
    memset(&t, 0, sizeof(t));
    t.user_id = user_id;
    uint8_t secret[TOTP_SECRET_LEN];
    enum err e = totp_generate_secret(secret, sizeof(secret));
    if (e == ERR_OK && secure_random(t.recovery_salt, sizeof(t.recovery_salt)) != 0)
        e = ERR_INTERNAL;
    char id[64];
    mfa_identity(user_id, id, sizeof(id));
    if (e == ERR_OK && (app->keys == NULL || app->keys->wrap == NULL))
        e = ERR_UNAVAILABLE;
    /* From the wrap until the secret is stored, its KEK must not be destroyed
     * by a rotation finishing in between (the re-wrap pass would miss it). */
    rotate_wrap_enter(app);
    if (e == ERR_OK)
        e = app->keys->wrap(app->keys, secret, sizeof(secret), (const uint8_t *)id, strlen(id),
                            t.wrapped, sizeof(t.wrapped), &t.wrapped_len, t.kek_id,
                            sizeof(t.kek_id));
    if (e == ERR_OK)
        e = totp_uri(secret, sizeof(secret), MFA_ISSUER, account, uri, uri_cap);
    if (e == ERR_OK && totp_base32_encode(secret, sizeof(secret), secret_b32, b32_cap) < 0)
        e = ERR_INTERNAL;
    secure_wipe(secret, sizeof(secret));
    if (e == ERR_OK)
        e = meta_totp_put_pending(app->meta, &t);
    rotate_wrap_leave(app);
    if (e != ERR_OK) {
        secure_wipe(uri, uri_cap);
        secure_wipe(secret_b32, b32_cap);
    }
    secure_wipe(&t, sizeof(t));
    return e;
}

/* Checks a TOTP code against t at now; on success *step is the matched step. */
static enum err mfa_check_code(struct app *app, const struct meta_totp *t, const char *code,
                               int64_t now, uint64_t *step)
{
    uint8_t secret[TOTP_SECRET_MAX_LEN];
    size_t len = 0;
    enum err e = mfa_unwrap(app, t, secret, &len);
    if (e != ERR_OK)
        return e;
    e = totp_verify(secret, len, code, now, MFA_PERIOD, MFA_DIGITS, MFA_SKEW, t->last_used_step,
                    step);
    secure_wipe(secret, sizeof(secret));
    return e == ERR_INVALID ? ERR_UNAUTHENTICATED : e;
}

enum err mfa_enroll_confirm(struct app *app, int64_t user_id, const char *code, int64_t now,
                            char codes[MFA_RECOVERY_COUNT][16])
{
    struct meta_totp t;
    enum err e = meta_totp_get(app->meta, user_id, &t);
    if (e == ERR_OK && t.confirmed)
        e = ERR_CONFLICT;
    uint64_t step = 0;
    if (e == ERR_OK)
        e = mfa_check_code(app, &t, code, now, &step);
    uint8_t hashes[MFA_RECOVERY_COUNT][32];
    if (e == ERR_OK)
        e = totp_recovery_codes(codes);
    for (int i = 0; e == ERR_OK && i < MFA_RECOVERY_COUNT; i++) {
        if (mfa_recovery_hash(t.recovery_salt, codes[i], hashes[i]) != 0)
            e = ERR_INTERNAL;
    }
    if (e == ERR_OK) {
        e = meta_totp_confirm(app->meta, user_id, step, (const uint8_t(*)[32])hashes,
                              MFA_RECOVERY_COUNT);
        if (e == ERR_CONFLICT)
            e = ERR_UNAUTHENTICATED; /* the same code raced in twice */
    }
    if (e != ERR_OK)
        secure_wipe(codes, sizeof(char[MFA_RECOVERY_COUNT][16]));
    secure_wipe(&t, sizeof(t));
    secure_wipe(hashes, sizeof(hashes));
    return e;
}

enum err mfa_get_status(struct app *app, int64_t user_id, struct mfa_status *st)
{
    memset(st, 0, sizeof(*st));
    struct meta_totp t;
    enum err e = meta_totp_get(app->meta, user_id, &t);
    if (e == ERR_NOT_FOUND)
        return ERR_OK;
    if (e != ERR_OK)
        return e;
    st->enrolled = t.confirmed;
    st->pending = !t.confirmed;
    secure_wipe(&t, sizeof(t));
    if (st->enrolled)
        return meta_recovery_remaining(app->meta, user_id, &st->recovery_left);
    return ERR_OK;
}

static int mfa_is_digits(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return 0;
    }
    return 1;
}

enum err mfa_verify(struct app *app, int64_t user_id, const char *code, int64_t now,
                    int *used_recovery)
{
    if (used_recovery != NULL)
        *used_recovery = 0;
    if (code == NULL || strlen(code) > 64)
        return ERR_UNAUTHENTICATED;
    struct meta_totp t;
    enum err e = meta_totp_get(app->meta, user_id, &t);
    if (e == ERR_OK && !t.confirmed)
        e = ERR_NOT_FOUND;
    if (e != ERR_OK)
        return e == ERR_IO ? ERR_UNAVAILABLE : e;
    if (mfa_is_digits(code)) {
        uint64_t step = 0;
        e = mfa_check_code(app, &t, code, now, &step);
        if (e == ERR_OK) {
            e = meta_totp_use_step(app->meta, user_id, step);
            if (e == ERR_CONFLICT)
                e = ERR_UNAUTHENTICATED; /* used by a concurrent request */
            else if (e != ERR_OK)
                e = ERR_UNAVAILABLE;
        }
    } else {
        char norm[16];
        uint8_t hash[32];
        e = totp_recovery_normalize(code, norm) == ERR_OK ? ERR_OK : ERR_UNAUTHENTICATED;
        if (e == ERR_OK && mfa_recovery_hash(t.recovery_salt, norm, hash) != 0)
            e = ERR_INTERNAL;
        if (e == ERR_OK) {
            e = meta_recovery_use(app->meta, user_id, hash);
            if (e == ERR_NOT_FOUND)
                e = ERR_UNAUTHENTICATED;
            else if (e != ERR_OK)
                e = ERR_UNAVAILABLE;
        }
        if (e == ERR_OK && used_recovery != NULL)
            *used_recovery = 1;
        secure_wipe(norm, sizeof(norm));
        secure_wipe(hash, sizeof(hash));
    }
    secure_wipe(&t, sizeof(t));
    return e;
}

enum err mfa_disable(struct app *app, int64_t user_id)
{
    return meta_totp_delete(app->meta, user_id);
}
