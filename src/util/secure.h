/*
 * secure: helpers for secrets: wiping, constant-time comparison, randomness,
 * and hex / base64url encodings used for tokens and ids.
 */
#ifndef COFFER_UTIL_SECURE_H
#define COFFER_UTIL_SECURE_H

#include <stddef.h>
#include <stdint.h>

/* Overwrites len bytes at p with zeros in a way the compiler cannot elide. NULL is a no-op. */
void secure_wipe(void *p, size_t len);

/* Wipes and frees a NUL-terminated string. NULL is a no-op. */
void secure_free_str(char *s);

/* Constant-time equality of two buffers of the same length: 1 if equal, 0 if not. */
int secure_equal(const void *a, const void *b, size_t len) __attribute__((warn_unused_result));

/* Constant-time equality of two strings (time depends only on the lengths). */
int secure_streq(const char *a, const char *b) __attribute__((warn_unused_result));

/* Fills buf with len bytes from the OS CSPRNG (OpenSSL RAND_bytes). 0 on success, -1 on failure. */
int secure_random(void *buf, size_t len) __attribute__((warn_unused_result));

/* Lower-case hex of len bytes into out, which must hold 2*len+1 bytes. */
void hex_encode(const uint8_t *in, size_t len, char *out);

/* Decodes exactly out_len bytes from 2*out_len hex chars. 0 on success, -1 on bad input. */
int hex_decode(const char *in, size_t in_len, uint8_t *out, size_t out_len);

/* Unpadded base64url of len bytes into out (cap bytes incl. NUL). Returns chars written or -1. */
int b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);

/* Decodes unpadded (or padded) base64url. Returns bytes written or -1 on bad input/overflow. */
int b64url_decode(const char *in, size_t in_len, uint8_t *out, size_t cap);

/* The decoding loop shared by the power-of-two bases (base64url, base32):
 * value maps each of the in_len characters to char_bits (1..8) bits, -1 for
 * a character outside the alphabet; the bits are packed into out (cap
 * bytes). The caller strips padding and checks the length first. Returns the
 * bytes written, or -1 on a bad character, an overflow of cap, leftover bits
 * that are not zero (a non-canonical encoding) or in_len over INT32_MAX. */
int base2n_decode(const char *in, size_t in_len, int char_bits, int (*value)(char), uint8_t *out,
                  size_t cap);

#endif
