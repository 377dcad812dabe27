/*
 * jwt: verification of OpenID Connect / OAuth 2 bearer tokens: compact JWS
 * (RFC 7515) JSON Web Tokens (RFC 7519) signed with RS256, ES256 or EdDSA
 * (Ed25519, RFC 8037), against the issuer's JSON Web Key Set (RFC 7517).
 *
 * Only asymmetric algorithms exist here: "none" and the HMAC family are
 * always refused, and a token's alg must agree with the type (and, if
 * present, the alg) of the key it names, so a public key can never be used
 * as an HMAC secret. The module does no I/O: the caller fetches the JWKS
 * document and passes the clock in.
 */
#ifndef COFFER_AUTHN_JWT_H
#define COFFER_AUTHN_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/err.h"

#define JWT_MAX_TOKEN_BYTES 16384u /* a longer token is malformed */
#define JWKS_MAX_BYTES 262144u     /* a longer JWKS document is malformed */
#define JWKS_MAX_KEYS 64u          /* entries in "keys", usable or not */
#define JWT_KID_MAX 255u           /* bytes of a kid, without the NUL */
#define JWT_RSA_MIN_BITS 2048
#define JWT_RSA_MAX_BITS 8192
#define JWT_MAX_GROUPS 256u /* a token with more groups is refused, never truncated */
#define JWT_MAX_AMR 16u
#define JWT_MAX_CLAIM_STR 512u /* bytes of the subject and of each group or amr value */
#define JWT_MAX_LEEWAY 600     /* seconds */
#define JWT_DEFAULT_LEEWAY 60

/* A parsed key set: immutable once built, so one set may be shared by
 * threads that verify concurrently. */
struct jwks;

/*
 * Parses a JWKS document ({"keys": [...]}, at most JWKS_MAX_BYTES bytes and
 * JWKS_MAX_KEYS entries, duplicate JSON members refused) and builds a public
 * key for each usable entry:
 *   kty "RSA" with n and e (modulus JWT_RSA_MIN_BITS..JWT_RSA_MAX_BITS bits),
 *   kty "EC" with crv "P-256", x and y (32 bytes each, point on the curve),
 *   kty "OKP" with crv "Ed25519" and x (32 bytes).
 * Entries are skipped (not an error) when "use" is present and not "sig",
 * when "key_ops" is present without "verify", when "alg" is present and is
 * not the one algorithm that fits the key type, when kty or crv is another
 * one, or when the key material is malformed or too weak. kid is optional
 * (at most JWT_KID_MAX bytes). Binary members are unpadded base64url.
 * Returns ERR_OK with *out set (free with jwks_free), or ERR_INVALID if the
 * document is malformed or yields no usable key, ERR_INTERNAL on allocation
 * failure; *out is NULL then.
 */
enum err jwks_parse(const char *json, size_t len, struct jwks **out);

/* Frees a key set. NULL is a no-op. */
void jwks_free(struct jwks *keys);

/* Number of usable keys in the set (0 for NULL). */
size_t jwks_count(const struct jwks *keys);

/* 1 if some usable key has exactly this kid, 0 otherwise (also for NULL). */
int jwks_has_kid(const struct jwks *keys, const char *kid);

struct jwt_config {
    const char *issuer;       /* required; "iss" must equal it exactly */
    const char *audience;     /* required; "aud" (string or array) must contain it */
    const char *user_claim;   /* claim naming the user; NULL means "sub" */
    const char *groups_claim; /* claim listing groups; NULL means "groups" */
    int64_t leeway;           /* clock skew allowed in seconds, 0..JWT_MAX_LEEWAY */
};

struct jwt_result {
    char *subject; /* value of cfg->user_claim: a non-empty string */
    char **groups; /* values of cfg->groups_claim (absent claim: none) */
    size_t n_groups;
    char **amr; /* values of "amr" (absent claim: none) */
    size_t n_amr;
    int64_t exp; /* "exp", always present in a valid token */
    int64_t iat; /* "iat", or 0 when has_iat is 0 */
    int has_iat;
    char alg[8];               /* "RS256", "ES256" or "EdDSA" */
    char kid[JWT_KID_MAX + 1]; /* header kid, or empty */
    json_t *claims;            /* the whole payload object, one reference owned by the result */
};

/*
 * Verifies a compact JWS token of len bytes against keys at unix time now.
 * Checks, in this order: size (<= JWT_MAX_TOKEN_BYTES), exactly three
 * non-empty unpadded base64url segments; header JSON (an object, no
 * duplicate members) with alg RS256, ES256 or EdDSA, no "crit", typ (if
 * present) "JWT" or "at+jwt" (case insensitive, "application/" prefix
 * allowed); key selection by kid (without kid, the set must hold exactly one
 * key fitting alg) and agreement of alg with the key; the signature (ES256:
 * 64-byte r||s); then the payload JSON (an object, no duplicates) and its
 * claims: iss, aud, exp required and later than now - leeway, nbf and iat
 * (if present) not after now + leeway, the user claim a non-empty string,
 * groups and amr arrays of non-empty strings (a single string is taken as a
 * one-element list), within the caps above.
 * On ERR_OK *out is filled and must be released with jwt_result_clear. On
 * failure *out is zeroed and why (why_len bytes, may be NULL) holds a
 * one-line reason for logs that never quotes the token or its contents.
 * Returns ERR_INVALID for a malformed token or a bad cfg, ERR_UNAUTHENTICATED
 * for an unacceptable alg, unknown kid, bad signature or failed claim
 * check, ERR_INTERNAL on allocation or library failure.
 */
enum err jwt_verify(const char *token, size_t len, const struct jwks *keys,
                    const struct jwt_config *cfg, int64_t now, struct jwt_result *out, char *why,
                    size_t why_len) __attribute__((warn_unused_result));

/*
 * Releases everything a jwt_result owns (including one reference to claims)
 * and zeroes it. A caller that wants to keep claims takes them first
 * (c = r->claims; r->claims = NULL). NULL is a no-op.
 */
void jwt_result_clear(struct jwt_result *r);

/*
 * Reads the kid from the (unverified) header of a token, with the same
 * structural checks as jwt_verify, so that the caller can refresh its JWKS
 * when the kid is unknown. Returns ERR_OK with kid written (cap bytes incl.
 * the NUL), ERR_NOT_FOUND if the header has no kid, ERR_INVALID for a
 * malformed token or a kid that is not a string or does not fit.
 */
enum err jwt_peek_kid(const char *token, size_t len, char *kid, size_t cap);

#endif
