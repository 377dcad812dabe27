/*
 * mfa: TOTP second factor for users, on top of authn/totp.h and the store.
 *
 * Enrolment: mfa_enroll_begin makes a random 160-bit secret, wraps it with
 * the key provider's current KEK (associated data "coffer-totp/v1/USER_ID",
 * so a wrapped secret copied onto another user does not unwrap) and stores
 * it unconfirmed; mfa_enroll_confirm checks a first code, activates the
 * enrolment and issues MFA_RECOVERY_COUNT single-use recovery codes, of
 * which only HMAC-SHA256(per-user salt, code) is kept.
 *
 * Codes are SHA-1, 6 digits, 30 s, accepted one step either side; each
 * accepted step is stored, so a code works once (no replay in its window).
 */
#ifndef COFFER_AUTHN_MFA_H
#define COFFER_AUTHN_MFA_H

#include <stddef.h>
#include <stdint.h>

#include "app/app.h"
#include "authn/totp.h"
#include "util/err.h"

#define MFA_ISSUER "Coffer"
#define MFA_PERIOD 30
#define MFA_DIGITS 6
#define MFA_SKEW 1
#define MFA_RECOVERY_COUNT TOTP_RECOVERY_COUNT
#define MFA_URI_MAX 1024
#define MFA_SECRET_B32_MAX 128

struct mfa_status {
    int enrolled; /* a confirmed enrolment exists */
    int pending;  /* an unconfirmed enrolment exists */
    int recovery_left;
};

/*
 * Starts (or restarts) an enrolment for user_id, whose name account appears
 * in the authenticator app. Writes the otpauth:// URI (uri_cap bytes) and the
 * base32 secret (b32_cap bytes); both hold the secret, so the caller wipes
 * them after sending. ERR_CONFLICT if MFA is already active.
 */
enum err mfa_enroll_begin(struct app *app, int64_t user_id, const char *account, char *uri,
                          size_t uri_cap, char *secret_b32, size_t b32_cap);

/*
 * Confirms the pending enrolment with a current code and writes
 * MFA_RECOVERY_COUNT recovery codes into codes (the caller shows them once
 * and wipes them). ERR_NOT_FOUND without a pending enrolment,
 * ERR_UNAUTHENTICATED for a wrong code.
 */
enum err mfa_enroll_confirm(struct app *app, int64_t user_id, const char *code, int64_t now,
                            char codes[MFA_RECOVERY_COUNT][16]);

/* Fills st for user_id. */
enum err mfa_get_status(struct app *app, int64_t user_id, struct mfa_status *st);

/*
 * Checks a second factor for a user with active MFA and consumes it: a
 * 6-digit TOTP code (accepted once) or a recovery code (any case, dashes
 * optional; accepted once). *used_recovery (may be NULL) tells which.
 * ERR_NOT_FOUND if the user has no active MFA, ERR_UNAUTHENTICATED for a
 * wrong, malformed or replayed code, ERR_UNAVAILABLE / ERR_INTEGRITY when the
 * store or the key provider fails.
 */
enum err mfa_verify(struct app *app, int64_t user_id, const char *code, int64_t now,
                    int *used_recovery) __attribute__((warn_unused_result));

/* Removes the enrolment and the recovery codes. */
enum err mfa_disable(struct app *app, int64_t user_id);

#endif
