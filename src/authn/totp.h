/*
 * totp: time-based one-time passwords (RFC 6238) on top of HOTP (RFC 4226)
 * for second-factor login, plus what enrolment needs: random secrets, their
 * base32 form (RFC 4648, unpadded), the otpauth:// provisioning URI, a QR
 * code drawn with Unicode half blocks for the terminal, and single-use
 * recovery codes.
 *
 * Secrets are raw bytes; callers wipe them with secure_wipe after use.
 * Nothing in this module logs.
 */
#ifndef COFFER_AUTHN_TOTP_H
#define COFFER_AUTHN_TOTP_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define TOTP_SECRET_LEN 20u     /* default secret size: 160 bits, as RFC 4226 recommends */
#define TOTP_SECRET_MIN_LEN 16u /* 128 bits, the RFC 4226 minimum */
#define TOTP_SECRET_MAX_LEN 64u
#define TOTP_DEFAULT_PERIOD 30
#define TOTP_DEFAULT_DIGITS 6
#define TOTP_DIGITS_MIN 6
#define TOTP_DIGITS_MAX 8
#define TOTP_PERIOD_MAX 3600
#define TOTP_SKEW_MAX 10

/* Recovery codes: "xxxx-xxxx-xxxx" from a 31-symbol alphabet without 0, 1,
 * i, l and o (12 symbols, about 59 bits each). */
#define TOTP_RECOVERY_COUNT 10
#define TOTP_RECOVERY_LEN 14 /* without the NUL */
#define TOTP_RECOVERY_ALPHABET "23456789abcdefghjkmnpqrstuvwxyz"

/* Longest text totp_qr_terminal accepts, in bytes. */
#define TOTP_QR_TEXT_MAX 1024u

/*
 * Fills secret with len bytes from the CSPRNG. len must be between
 * TOTP_SECRET_MIN_LEN and TOTP_SECRET_MAX_LEN (use TOTP_SECRET_LEN).
 * Returns ERR_INVALID for a bad length, ERR_INTERNAL if the generator fails
 * (secret is zeroed then).
 */
enum err totp_generate_secret(uint8_t *secret, size_t len);

/*
 * HOTP (RFC 4226) value for counter: HMAC(alg, key, counter as 8 big-endian
 * bytes), dynamically truncated, reduced modulo 10^digits and written with
 * leading zeros and a NUL into out. A TOTP code is totp_code(key, len,
 * unix_time / period, ...). alg is "SHA1", "SHA256" or "SHA512" (case
 * insensitive; NULL means "SHA1"); digits is TOTP_DIGITS_MIN..MAX; cap must
 * be at least digits + 1. key_len may be 1..TOTP_SECRET_MAX_LEN * 2 (the
 * RFC 6238 SHA-512 test seed is 64 bytes). Returns 0, or -1 on bad arguments
 * or an HMAC failure (out is then an empty string when cap > 0).
 */
int totp_code(const uint8_t *key, size_t key_len, uint64_t counter, int digits, const char *alg,
              char *out, size_t cap) __attribute__((warn_unused_result));

/*
 * Checks a user-supplied SHA-1 TOTP code at unix time now. code must be
 * exactly `digits` ASCII digits, nothing else. Every step from
 * now/period - skew_steps to now/period + skew_steps is computed and
 * compared in constant time (all candidates are always compared). The code
 * is accepted only for a matching step strictly greater than
 * last_used_step, so each code works once: the caller stores *matched_step
 * (may be NULL) as the new last_used_step after ERR_OK, and passes 0 when no
 * code was ever accepted. If the code matches several steps the highest is
 * reported. period is 1..TOTP_PERIOD_MAX, digits TOTP_DIGITS_MIN..MAX,
 * skew_steps 0..TOTP_SKEW_MAX, now >= 0.
 * Returns ERR_OK, ERR_UNAUTHENTICATED for a wrong, malformed or replayed
 * code, ERR_INVALID for bad parameters, ERR_INTERNAL if HMAC fails.
 */
enum err totp_verify(const uint8_t *key, size_t key_len, const char *code, int64_t now, int period,
                     int digits, int skew_steps, uint64_t last_used_step, uint64_t *matched_step)
    __attribute__((warn_unused_result));

/*
 * Unpadded upper-case RFC 4648 base32 of len bytes into out (cap bytes incl.
 * the NUL; ceil(len * 8 / 5) + 1 are needed). Returns the number of
 * characters written or -1 if out is too small.
 */
int totp_base32_encode(const uint8_t *in, size_t len, char *out, size_t cap);

/*
 * Decodes RFC 4648 base32 (either case; trailing '=' padding optional; no
 * other characters, no spaces). Rejects impossible lengths and non-zero
 * trailing bits. Returns the number of bytes written or -1 on bad input or
 * if more than cap bytes would be written.
 */
int totp_base32_decode(const char *in, size_t in_len, uint8_t *out, size_t cap);

/*
 * Writes the provisioning URI authenticator apps read from a QR code:
 * otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
 * with issuer and account percent-encoded (RFC 3986 unreserved characters
 * are kept). issuer and account must be non-empty, at most 256 bytes each
 * and free of ':' and control characters; len is the secret length
 * (1..TOTP_SECRET_MAX_LEN). Returns ERR_OK, ERR_INVALID for bad arguments,
 * ERR_TOO_LARGE if out (cap bytes) is too small. out contains the secret:
 * wipe it after use.
 */
enum err totp_uri(const uint8_t *secret, size_t len, const char *issuer, const char *account,
                  char *out, size_t cap);

/*
 * Renders text (at most TOTP_QR_TEXT_MAX bytes) as a QR code (ECC level M,
 * byte mode) for a terminal: each character covers two module rows with
 * U+2580 upper half block, U+2584 lower half block, U+2588 full block or a
 * space, and a quiet zone of 2 modules surrounds the symbol. Light modules
 * are drawn and dark modules are left blank, which reads correctly on the
 * usual dark-background terminal. For a symbol of W modules the result has
 * (W + 5) / 2 lines of W + 4 characters, each ending in '\n'. Returns a
 * malloc'd NUL-terminated UTF-8 string the caller frees (wipe it first if
 * text was secret), or NULL on bad input or failure.
 */
char *totp_qr_terminal(const char *text);

/*
 * Generates TOTP_RECOVERY_COUNT recovery codes of the form "xxxx-xxxx-xxxx"
 * from TOTP_RECOVERY_ALPHABET (uniformly, by rejection sampling). Returns
 * ERR_OK or ERR_INTERNAL if the random generator fails (codes are then
 * wiped). The caller shows them once, stores only a hash, and wipes them.
 */
enum err totp_recovery_codes(char codes[TOTP_RECOVERY_COUNT][16]);

/*
 * Brings a recovery code typed by a user to the canonical form produced by
 * totp_recovery_codes: letters lower-cased, spaces and dashes dropped, then
 * dashes put back after every 4 symbols. Returns ERR_OK, or ERR_INVALID if
 * the input does not hold exactly 12 symbols of the alphabet (out is then an
 * empty string). in may be at most 64 bytes.
 */
enum err totp_recovery_normalize(const char *in, char out[16]);

#endif
