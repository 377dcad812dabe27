/*
 * password: Argon2id password hashing (libargon2), verification, the
 * password policy, and generation of the bootstrap admin password.
 *
 * Hashes are stored as PHC strings:
 *   $argon2id$v=19$m=MEMORY_KIB,t=PASSES,p=LANES$SALT_B64$HASH_B64
 *
 * Parameters: PASSWORD_ARGON2_MEMORY_KIB, PASSWORD_ARGON2_T_COST and
 * PASSWORD_ARGON2_PARALLELISM below. The environment variable
 * COFFER_ARGON2_MEMORY_KIB overrides the memory cost of new hashes; it
 * exists only so that tests run quickly and must not be set in production.
 * Values below PASSWORD_ARGON2_MEMORY_KIB_MIN are raised to it, values above
 * PASSWORD_ARGON2_MEMORY_KIB_MAX are lowered to it, and unparsable values
 * are ignored.
 */
#ifndef COFFER_AUTHN_PASSWORD_H
#define COFFER_AUTHN_PASSWORD_H

#include <stddef.h>

#include "util/err.h"

/* OWASP's Argon2id baseline (19 MiB, 2 passes, 1 lane): strong against
 * offline guessing while keeping the server's memory bounded when several
 * logins arrive at once (each costs the full memory while it runs). */
#define PASSWORD_ARGON2_MEMORY_KIB 19456u /* 19 MiB */
#define PASSWORD_ARGON2_T_COST 2u
#define PASSWORD_ARGON2_PARALLELISM 1u
#define PASSWORD_SALT_LEN 16u
#define PASSWORD_HASH_LEN 32u

/* Bounds a stored hash must respect to be verified at all, so that a
 * tampered or hostile hash cannot make one login cost gigabytes or minutes. */
#define PASSWORD_ARGON2_MEMORY_KIB_MIN 8192u
#define PASSWORD_ARGON2_MEMORY_KIB_MAX 262144u /* 256 MiB */
#define PASSWORD_ARGON2_T_COST_MAX 10u
#define PASSWORD_ARGON2_PARALLELISM_MAX 8u
#define PASSWORD_ENCODED_MAX 256u

/* Policy limits, in characters (UTF-8 code points) and bytes. */
#define PASSWORD_MIN_CHARS 12u
#define PASSWORD_MAX_BYTES 1024u

/* Length of password_generate output, without the NUL. */
#define PASSWORD_GENERATED_LEN 24u

/*
 * Hashes password with Argon2id and a fresh random 16-byte salt, and stores
 * a newly allocated PHC string in *encoded_out; the caller frees it with
 * free(). The password is not checked against the policy here, but it must
 * be at most PASSWORD_MAX_BYTES long (ERR_INVALID otherwise). Returns
 * ERR_INTERNAL if hashing or allocation fails; *encoded_out is NULL then.
 */
enum err password_hash(const char *password, char **encoded_out);

/*
 * Returns 1 if password matches the encoded hash, 0 if it does not or if
 * encoded is malformed, not argon2id version 19, or has parameters outside
 * the bounds above. The hash comparison is constant time.
 */
int password_verify(const char *encoded, const char *password) __attribute__((warn_unused_result));

/*
 * Does the work of one password_verify against a fixed hash with the current
 * parameters and discards the result. Used for unknown users, so that the
 * response time does not reveal whether a user exists.
 */
void password_verify_dummy(const char *password);

/*
 * Writes a random password of PASSWORD_GENERATED_LEN characters from the
 * base64url alphabet (144 bits of entropy) and a NUL into out. Returns
 * ERR_INVALID if cap < PASSWORD_GENERATED_LEN + 1, ERR_INTERNAL if the
 * random generator fails (out is then an empty string). The caller wipes
 * out after use.
 */
enum err password_generate(char *out, size_t cap);

/*
 * Checks password against the policy: valid UTF-8, at least
 * PASSWORD_MIN_CHARS characters, at most PASSWORD_MAX_BYTES bytes, no control
 * characters (C0, DEL, C1). A C string cannot carry an embedded NUL, so a
 * caller that receives a length-delimited password must refuse one that
 * contains NUL before calling this. Returns ERR_OK, or ERR_INVALID with a
 * one-line reason in why (truncated to why_len; why may be NULL).
 */
enum err password_check_policy(const char *password, char *why, size_t why_len);

#endif
