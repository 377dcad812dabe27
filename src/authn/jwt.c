#include "authn/jwt.h"

#include <math.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/secure.h"

/* Latest NumericDate accepted (9999-12-31T23:59:59Z); keeps arithmetic with
 * the leeway far from overflow. */
#define JWT_DATE_MAX INT64_C(253402300799)
/* Largest decoded RSA modulus: 8192 bits, plus a leading zero byte some
 * issuers emit. */
#define JWT_RSA_N_MAX (JWT_RSA_MAX_BITS / 8 + 1)

enum jwt_alg { JWT_ALG_NONE = 0, JWT_ALG_RS256, JWT_ALG_ES256, JWT_ALG_EDDSA };

struct jwks_key {
    char *kid; /* NULL when the JWK has none */
    enum jwt_alg alg;
    EVP_PKEY *pkey;
};

struct jwks {
    size_t n;
    struct jwks_key keys[JWKS_MAX_KEYS];
};

/* The three segments of a compact JWS, pointing into the token. */
struct jwt_parts {
    const char *header;
    size_t header_len;
    const char *payload;
    size_t payload_len;
    const char *sig;
    size_t sig_len;
};

static void jwt_why(char *why, size_t why_len, const char *msg)
{
    if (why != NULL && why_len > 0)
        snprintf(why, why_len, "%s", msg);
}

static const char *jwt_alg_name(enum jwt_alg alg)
{
    switch (alg) {
    case JWT_ALG_RS256:
        return "RS256";
    case JWT_ALG_ES256:
        return "ES256";
    case JWT_ALG_EDDSA:
        return "EdDSA";
    default:
        return "";
    }
}

static enum jwt_alg jwt_alg_from_name(const char *s)
{
    if (strcmp(s, "RS256") == 0)
        return JWT_ALG_RS256;
    if (strcmp(s, "ES256") == 0)
        return JWT_ALG_ES256;
    if (strcmp(s, "EdDSA") == 0)
        return JWT_ALG_EDDSA;
    return JWT_ALG_NONE;
}

static int jwt_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/*
 * Decodes strictly unpadded base64url (no '=', no whitespace) into a new
 * buffer of at most max bytes. Returns the buffer (caller frees) and its
 * length in *out_len, or NULL on bad input or allocation failure.
 */
static uint8_t *jwt_b64_decode_alloc(const char *s, size_t n, size_t max, size_t *out_len)
{
    if (n == 0 || n > (size_t)INT32_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!jwt_b64_char(s[i]))
            return NULL;
    }
    size_t cap = n / 4 * 3 + 3;
    if (cap > max + 3)
        return NULL;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    int got = b64url_decode(s, n, buf, cap);
    if (got < 0 || (size_t)got > max) {
        free(buf);
        return NULL;
    }
    *out_len = (size_t)got;
    return buf;
}

/* Same as jwt_b64_decode_alloc into a caller buffer. Returns bytes or -1. */
static int jwt_b64_decode_into(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0 || n > (size_t)INT32_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!jwt_b64_char(s[i]))
            return -1;
    }
    return b64url_decode(s, n, out, cap);
}

/* ---- JWKS ---- */

/* Decodes the base64url string member name of jwk into out. Returns bytes
 * written or -1 if it is missing, not a string or malformed. */
static int jwks_member_bytes(json_t *jwk, const char *name, uint8_t *out, size_t cap)
{
    json_t *v = json_object_get(jwk, name);
    if (!json_is_string(v))
        return -1;
    return jwt_b64_decode_into(json_string_value(v), json_string_length(v), out, cap);
}

/* Builds a public key of type name from the parameters in bld. */
static EVP_PKEY *jwks_fromdata(const char *name, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (pkey == NULL)
        return NULL;
    /* Reject keys OpenSSL itself considers broken (e.g. EC points off the
     * curve or at infinity, even RSA moduli). */
    EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok = check != NULL && EVP_PKEY_public_check(check) == 1;
    EVP_PKEY_CTX_free(check);
    if (!ok) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

static EVP_PKEY *jwks_rsa_key(json_t *jwk)
{
    uint8_t nbuf[JWT_RSA_N_MAX + 3], ebuf[8 + 3];
    int nlen = jwks_member_bytes(jwk, "n", nbuf, sizeof nbuf);
    int elen = jwks_member_bytes(jwk, "e", ebuf, sizeof ebuf);
    if (nlen <= 0 || nlen > JWT_RSA_N_MAX || elen <= 0 || elen > 8)
        return NULL;
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    BIGNUM *n = BN_bin2bn(nbuf, nlen, NULL);
    BIGNUM *e = BN_bin2bn(ebuf, elen, NULL);
    if (n == NULL || e == NULL)
        goto done;
    int bits = BN_num_bits(n);
    if (bits < JWT_RSA_MIN_BITS || bits > JWT_RSA_MAX_BITS || !BN_is_odd(n) || !BN_is_odd(e) ||
        BN_is_one(e))
        goto done;
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
        goto done;
    pkey = jwks_fromdata("RSA", bld);
done:
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

static EVP_PKEY *jwks_ec_key(json_t *jwk)
{
    json_t *crv = json_object_get(jwk, "crv");
    if (!json_is_string(crv) || strcmp(json_string_value(crv), "P-256") != 0)
        return NULL;
    uint8_t point[65], tmp[32 + 3];
    point[0] = 0x04; /* uncompressed point: 04 || x || y */
    int xl = jwks_member_bytes(jwk, "x", tmp, sizeof tmp);
    if (xl != 32)
        return NULL;
    memcpy(point + 1, tmp, 32);
    int yl = jwks_member_bytes(jwk, "y", tmp, sizeof tmp);
    if (yl != 32)
        return NULL;
    memcpy(point + 33, tmp, 32);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld != NULL &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point) == 1)
        pkey = jwks_fromdata("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

static EVP_PKEY *jwks_okp_key(json_t *jwk)
{
    json_t *crv = json_object_get(jwk, "crv");
    if (!json_is_string(crv) || strcmp(json_string_value(crv), "Ed25519") != 0)
        return NULL;
    uint8_t x[32 + 3];
    if (jwks_member_bytes(jwk, "x", x, sizeof x) != 32)
        return NULL;
    return EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, 32);
}

/* 1 if the JWK may be used to verify signatures according to use and
 * key_ops. */
static int jwks_usable_for_sig(json_t *jwk)
{
    json_t *use = json_object_get(jwk, "use");
    if (use != NULL && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
        return 0;
    json_t *ops = json_object_get(jwk, "key_ops");
    if (ops == NULL)
        return 1;
    if (!json_is_array(ops))
        return 0;
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0)
            return 1;
    }
    return 0;
}

/*
 * Builds the key for one JWK into *key. Returns 1 if the entry is usable,
 * 0 if it must be skipped, -1 on allocation failure.
 */
static int jwks_parse_key(json_t *jwk, struct jwks_key *key)
{
    if (!json_is_object(jwk) || !jwks_usable_for_sig(jwk))
        return 0;
    json_t *kty = json_object_get(jwk, "kty");
    json_t *alg = json_object_get(jwk, "alg");
    json_t *kid = json_object_get(jwk, "kid");
    if (!json_is_string(kty) || (alg != NULL && !json_is_string(alg)))
        return 0;
    if (kid != NULL && (!json_is_string(kid) || json_string_length(kid) == 0 ||
                        json_string_length(kid) > JWT_KID_MAX))
        return 0;
    const char *t = json_string_value(kty);
    enum jwt_alg fits;
    EVP_PKEY *(*build)(json_t *);
    if (strcmp(t, "RSA") == 0) {
        fits = JWT_ALG_RS256;
        build = jwks_rsa_key;
    } else if (strcmp(t, "EC") == 0) {
        fits = JWT_ALG_ES256;
        build = jwks_ec_key;
    } else if (strcmp(t, "OKP") == 0) {
        fits = JWT_ALG_EDDSA;
        build = jwks_okp_key;
    } else {
        return 0;
    }
    if (alg != NULL && jwt_alg_from_name(json_string_value(alg)) != fits)
        return 0;
    EVP_PKEY *pkey = build(jwk);
    if (pkey == NULL)
        return 0;
    char *kid_copy = NULL;
    if (kid != NULL) {
        kid_copy = strdup(json_string_value(kid));
        if (kid_copy == NULL) {
            EVP_PKEY_free(pkey);
            return -1;
        }
    }
    key->kid = kid_copy;
    key->alg = fits;
    key->pkey = pkey;
    return 1;
}

enum err jwks_parse(const char *json, size_t len, struct jwks **out)
{
    *out = NULL;
    if (json == NULL || len == 0 || len > JWKS_MAX_BYTES)
        return ERR_INVALID;
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *arr = json_object_get(doc, "keys");
    if (!json_is_object(doc) || !json_is_array(arr) || json_array_size(arr) > JWKS_MAX_KEYS) {
        json_decref(doc);
        return ERR_INVALID;
    }
    struct jwks *set = calloc(1, sizeof *set);
    if (set == NULL) {
        json_decref(doc);
        return ERR_INTERNAL;
    }
    enum err rc = ERR_OK;
    size_t i;
    json_t *jwk;
    json_array_foreach(arr, i, jwk)
    {
        int r = jwks_parse_key(jwk, &set->keys[set->n]);
        if (r < 0) {
            rc = ERR_INTERNAL;
            break;
        }
        if (r > 0)
            set->n++;
    }
    json_decref(doc);
    if (rc == ERR_OK && set->n == 0)
        rc = ERR_INVALID;
    if (rc != ERR_OK) {
        jwks_free(set);
        return rc;
    }
    *out = set;
    return ERR_OK;
}

void jwks_free(struct jwks *keys)
{
    if (keys == NULL)
        return;
    for (size_t i = 0; i < keys->n; i++) {
        free(keys->keys[i].kid);
        EVP_PKEY_free(keys->keys[i].pkey);
    }
    free(keys);
}

size_t jwks_count(const struct jwks *keys)
{
    return keys == NULL ? 0 : keys->n;
}

int jwks_has_kid(const struct jwks *keys, const char *kid)
{
    if (keys == NULL || kid == NULL)
        return 0;
    for (size_t i = 0; i < keys->n; i++) {
        if (keys->keys[i].kid != NULL && strcmp(keys->keys[i].kid, kid) == 0)
            return 1;
    }
    return 0;
}

/* ---- token structure and header ---- */

/* Splits token into its three segments, checking size and alphabet. */
static enum err jwt_split(const char *token, size_t len, struct jwt_parts *p, char *why,
                          size_t why_len)
{
    if (token == NULL || len == 0) {
        jwt_why(why, why_len, "empty token");
        return ERR_INVALID;
    }
    if (len > JWT_MAX_TOKEN_BYTES) {
        jwt_why(why, why_len, "token too large");
        return ERR_INVALID;
    }
    size_t dots[2], ndots = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (ndots == 2) {
                jwt_why(why, why_len, "token does not have three segments");
                return ERR_INVALID;
            }
            dots[ndots++] = i;
        } else if (!jwt_b64_char(token[i])) {
            jwt_why(why, why_len, "token has a character outside base64url");
            return ERR_INVALID;
        }
    }
    if (ndots != 2 || dots[0] == 0 || dots[1] == dots[0] + 1 || dots[1] + 1 == len) {
        jwt_why(why, why_len, "token does not have three non-empty segments");
        return ERR_INVALID;
    }
    p->header = token;
    p->header_len = dots[0];
    p->payload = token + dots[0] + 1;
    p->payload_len = dots[1] - dots[0] - 1;
    p->sig = token + dots[1] + 1;
    p->sig_len = len - dots[1] - 1;
    return ERR_OK;
}

/* Decodes a segment and parses it as a JSON object without duplicate
 * members. Returns a new reference or NULL. */
static json_t *jwt_segment_json(const char *s, size_t n)
{
    size_t blen = 0;
    uint8_t *buf = jwt_b64_decode_alloc(s, n, JWT_MAX_TOKEN_BYTES, &blen);
    if (buf == NULL)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)buf, blen, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Reads the optional kid of a parsed header into kid (cap bytes). Returns
 * ERR_OK, ERR_NOT_FOUND if absent, ERR_INVALID if malformed or too long. */
static enum err jwt_header_kid(json_t *hdr, char *kid, size_t cap)
{
    if (cap > 0)
        kid[0] = '\0';
    json_t *v = json_object_get(hdr, "kid");
    if (v == NULL)
        return ERR_NOT_FOUND;
    size_t n = json_string_length(v);
    if (!json_is_string(v) || n == 0 || n > JWT_KID_MAX || n >= cap)
        return ERR_INVALID;
    memcpy(kid, json_string_value(v), n + 1);
    return ERR_OK;
}

enum err jwt_peek_kid(const char *token, size_t len, char *kid, size_t cap)
{
    if (kid == NULL || cap == 0)
        return ERR_INVALID;
    kid[0] = '\0';
    struct jwt_parts p;
    enum err rc = jwt_split(token, len, &p, NULL, 0);
    if (rc != ERR_OK)
        return rc;
    json_t *hdr = jwt_segment_json(p.header, p.header_len);
    if (hdr == NULL)
        return ERR_INVALID;
    rc = jwt_header_kid(hdr, kid, cap);
    json_decref(hdr);
    return rc;
}

/* 1 if typ is acceptable for an access or ID token. */
static int jwt_typ_ok(const char *typ)
{
    if (strncasecmp(typ, "application/", 12) == 0)
        typ += 12;
    return strcasecmp(typ, "JWT") == 0 || strcasecmp(typ, "at+jwt") == 0;
}

/* Checks the header's alg, crit and typ and reads its kid. */
static enum err jwt_check_header(json_t *hdr, enum jwt_alg *alg, char *kid, size_t kid_cap,
                                 char *why, size_t why_len)
{
    json_t *a = json_object_get(hdr, "alg");
    if (!json_is_string(a)) {
        jwt_why(why, why_len, "header alg missing or not a string");
        return ERR_INVALID;
    }
    const char *name = json_string_value(a);
    *alg = jwt_alg_from_name(name);
    if (*alg == JWT_ALG_NONE) {
        if (strcasecmp(name, "none") == 0)
            jwt_why(why, why_len, "unsigned token (alg none) refused");
        else if (strncasecmp(name, "HS", 2) == 0)
            jwt_why(why, why_len, "symmetric alg refused");
        else
            jwt_why(why, why_len, "alg not supported (RS256, ES256, EdDSA only)");
        return ERR_UNAUTHENTICATED;
    }
    if (json_object_get(hdr, "crit") != NULL) {
        jwt_why(why, why_len, "crit header not supported");
        return ERR_UNAUTHENTICATED;
    }
    json_t *typ = json_object_get(hdr, "typ");
    if (typ != NULL && (!json_is_string(typ) || !jwt_typ_ok(json_string_value(typ)))) {
        jwt_why(why, why_len, "typ is not JWT or at+jwt");
        return ERR_UNAUTHENTICATED;
    }
    enum err rc = jwt_header_kid(hdr, kid, kid_cap);
    if (rc == ERR_INVALID) {
        jwt_why(why, why_len, "header kid malformed");
        return ERR_INVALID;
    }
    return ERR_OK;
}

/* Finds the key for alg and kid (kid empty: the only key fitting alg). */
static const struct jwks_key *jwt_select_key(const struct jwks *keys, enum jwt_alg alg,
                                             const char *kid, char *why, size_t why_len)
{
    size_t n = keys == NULL ? 0 : keys->n;
    const struct jwks_key *found = NULL;
    if (kid[0] != '\0') {
        int kid_seen = 0;
        for (size_t i = 0; i < n && found == NULL; i++) {
            const struct jwks_key *k = &keys->keys[i];
            if (k->kid == NULL || strcmp(k->kid, kid) != 0)
                continue;
            kid_seen = 1;
            if (k->alg == alg)
                found = k;
        }
        if (found == NULL)
            jwt_why(why, why_len, kid_seen ? "key named by kid does not fit alg" : "unknown kid");
        return found;
    }
    size_t fitting = 0;
    for (size_t i = 0; i < n; i++) {
        if (keys->keys[i].alg == alg) {
            fitting++;
            found = &keys->keys[i];
        }
    }
    if (fitting != 1) {
        jwt_why(why, why_len,
                "token has no kid and the key set does not have exactly one key "
                "for its alg");
        return NULL;
    }
    return found;
}

/* ---- signatures ---- */

/* Converts a 64-byte JWS ES256 signature (r || s) to DER. Returns the DER
 * length or -1. */
static int jwt_es256_der(const uint8_t *sig, uint8_t *der, size_t cap)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL);
    BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return -1;
    }
    int n = i2d_ECDSA_SIG(es, NULL);
    if (n <= 0 || (size_t)n > cap) {
        ECDSA_SIG_free(es);
        return -1;
    }
    uint8_t *p = der;
    n = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    return n;
}

/* Verifies sig over msg with key. Returns 1 if valid, 0 if not, -1 on a
 * library failure. */
static int jwt_verify_sig(const struct jwks_key *key, const char *msg, size_t msg_len,
                          const uint8_t *sig, size_t sig_len)
{
    uint8_t der[80];
    const char *md = NULL;
    switch (key->alg) {
    case JWT_ALG_RS256:
        if (sig_len != (size_t)EVP_PKEY_get_size(key->pkey))
            return 0;
        md = "SHA256";
        break;
    case JWT_ALG_ES256: {
        if (sig_len != 64)
            return 0;
        int n = jwt_es256_der(sig, der, sizeof der);
        if (n < 0)
            return 0;
        sig = der;
        sig_len = (size_t)n;
        md = "SHA256";
        break;
    }
    case JWT_ALG_EDDSA:
        if (sig_len != 64)
            return 0;
        break;
    default:
        return 0;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return -1;
    int ok = -1;
    if (EVP_DigestVerifyInit_ex(ctx, NULL, md, NULL, NULL, key->pkey, NULL) == 1)
        ok = EVP_DigestVerify(ctx, sig, sig_len, (const uint8_t *)msg, msg_len) == 1 ? 1 : 0;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* ---- claims ---- */

/* Reads a NumericDate (integer or finite real, 0..JWT_DATE_MAX). Returns 0
 * or -1. */
static int jwt_numeric_date(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > JWT_DATE_MAX)
            return -1;
        *out = (int64_t)i;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d < 0 || d > (double)JWT_DATE_MAX)
            return -1;
        *out = (int64_t)floor(d);
        return 0;
    }
    return -1;
}

/* 1 if v is a string of 1..JWT_MAX_CLAIM_STR bytes without control
 * characters (these values end up in logs and policy decisions). */
static int jwt_clean_string(json_t *v)
{
    if (!json_is_string(v))
        return 0;
    size_t n = json_string_length(v);
    if (n == 0 || n > JWT_MAX_CLAIM_STR)
        return 0;
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    }
    return 1;
}

static void jwt_free_list(char **list, size_t n)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* Copies a claim that is a string or an array of strings (at most max) into
 * a new list. An absent claim gives an empty list. Returns 0, -1 if the
 * claim is malformed or over the cap, -2 on allocation failure. */
static int jwt_string_list(json_t *v, size_t max, char ***out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (v == NULL)
        return 0;
    size_t count = json_is_string(v) ? 1 : json_is_array(v) ? json_array_size(v) : 0;
    if (!json_is_string(v) && !json_is_array(v))
        return -1;
    if (count > max)
        return -1;
    if (count == 0)
        return 0;
    char **list = calloc(count, sizeof *list);
    if (list == NULL)
        return -2;
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_is_string(v) ? v : json_array_get(v, i);
        if (!jwt_clean_string(e)) {
            jwt_free_list(list, count);
            return -1;
        }
        list[i] = strdup(json_string_value(e));
        if (list[i] == NULL) {
            jwt_free_list(list, count);
            return -2;
        }
    }
    *out = list;
    *n_out = count;
    return 0;
}

/* 1 if aud (a string or an array of strings) contains audience. */
static int jwt_aud_ok(json_t *aud, const char *audience)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), audience) == 0 &&
               json_string_length(aud) == strlen(audience);
    if (!json_is_array(aud))
        return 0;
    size_t i;
    json_t *e;
    int hit = 0;
    json_array_foreach(aud, i, e)
    {
        if (!json_is_string(e))
            return 0;
        if (strcmp(json_string_value(e), audience) == 0 &&
            json_string_length(e) == strlen(audience))
            hit = 1;
    }
    return hit;
}

/* Checks the time claims and fills exp and iat. */
static enum err jwt_check_times(json_t *claims, int64_t now, int64_t leeway, struct jwt_result *out,
                                char *why, size_t why_len)
{
    json_t *exp = json_object_get(claims, "exp");
    json_t *nbf = json_object_get(claims, "nbf");
    json_t *iat = json_object_get(claims, "iat");
    int64_t t = 0;
    if (exp == NULL || jwt_numeric_date(exp, &out->exp) != 0) {
        jwt_why(why, why_len, exp == NULL ? "exp claim missing" : "exp claim malformed");
        return ERR_UNAUTHENTICATED;
    }
    if (now >= out->exp + leeway) {
        jwt_why(why, why_len, "token expired");
        return ERR_UNAUTHENTICATED;
    }
    if (nbf != NULL && (jwt_numeric_date(nbf, &t) != 0 || t - leeway > now)) {
        jwt_why(why, why_len, "token not yet valid (nbf)");
        return ERR_UNAUTHENTICATED;
    }
    if (iat != NULL) {
        if (jwt_numeric_date(iat, &out->iat) != 0 || out->iat - leeway > now) {
            jwt_why(why, why_len, "token issued in the future (iat)");
            return ERR_UNAUTHENTICATED;
        }
        out->has_iat = 1;
    }
    return ERR_OK;
}

/* Checks the claims of a verified payload and fills out. */
static enum err jwt_check_claims(json_t *claims, const struct jwt_config *cfg, int64_t now,
                                 struct jwt_result *out, char *why, size_t why_len)
{
    json_t *iss = json_object_get(claims, "iss");
    if (!json_is_string(iss) || strcmp(json_string_value(iss), cfg->issuer) != 0 ||
        json_string_length(iss) != strlen(cfg->issuer)) {
        jwt_why(why, why_len, "issuer does not match");
        return ERR_UNAUTHENTICATED;
    }
    if (!jwt_aud_ok(json_object_get(claims, "aud"), cfg->audience)) {
        jwt_why(why, why_len, "audience does not match");
        return ERR_UNAUTHENTICATED;
    }
    enum err rc = jwt_check_times(claims, now, cfg->leeway, out, why, why_len);
    if (rc != ERR_OK)
        return rc;
    const char *user_claim = cfg->user_claim != NULL ? cfg->user_claim : "sub";
    json_t *sub = json_object_get(claims, user_claim);
    if (!jwt_clean_string(sub)) {
        jwt_why(why, why_len, "user claim missing or not a usable string");
        return ERR_UNAUTHENTICATED;
    }
    out->subject = strdup(json_string_value(sub));
    if (out->subject == NULL)
        return ERR_INTERNAL;
    const char *groups_claim = cfg->groups_claim != NULL ? cfg->groups_claim : "groups";
    int r = jwt_string_list(json_object_get(claims, groups_claim), JWT_MAX_GROUPS, &out->groups,
                            &out->n_groups);
    if (r == 0)
        r = jwt_string_list(json_object_get(claims, "amr"), JWT_MAX_AMR, &out->amr, &out->n_amr);
    if (r == -2)
        return ERR_INTERNAL;
    if (r != 0) {
        jwt_why(why, why_len, "groups or amr claim malformed or too long");
        return ERR_UNAUTHENTICATED;
    }
    return ERR_OK;
}

static int jwt_config_ok(const struct jwt_config *cfg)
{
    return cfg != NULL && cfg->issuer != NULL && cfg->issuer[0] != '\0' && cfg->audience != NULL &&
           cfg->audience[0] != '\0' && cfg->leeway >= 0 && cfg->leeway <= JWT_MAX_LEEWAY &&
           (cfg->user_claim == NULL || cfg->user_claim[0]) &&
           (cfg->groups_claim == NULL || cfg->groups_claim[0]);
}

/* Checks structure, header, key and signature; returns the payload's
 * parsed claims in *claims_out on success. */
static enum err jwt_verify_signed(const char *token, size_t len, const struct jwks *keys,
                                  struct jwt_result *out, json_t **claims_out, char *why,
                                  size_t why_len)
{
    struct jwt_parts p;
    enum err rc = jwt_split(token, len, &p, why, why_len);
    if (rc != ERR_OK)
        return rc;
    json_t *hdr = jwt_segment_json(p.header, p.header_len);
    if (hdr == NULL) {
        jwt_why(why, why_len, "header is not a base64url JSON object");
        return ERR_INVALID;
    }
    enum jwt_alg alg = JWT_ALG_NONE;
    rc = jwt_check_header(hdr, &alg, out->kid, sizeof out->kid, why, why_len);
    json_decref(hdr);
    if (rc != ERR_OK)
        return rc;
    const struct jwks_key *key = jwt_select_key(keys, alg, out->kid, why, why_len);
    if (key == NULL)
        return ERR_UNAUTHENTICATED;
    size_t sig_len = 0;
    uint8_t *sig = jwt_b64_decode_alloc(p.sig, p.sig_len, JWT_RSA_N_MAX, &sig_len);
    if (sig == NULL) {
        jwt_why(why, why_len, "signature is not base64url or too long");
        return ERR_INVALID;
    }
    int v = jwt_verify_sig(key, token, p.header_len + 1 + p.payload_len, sig, sig_len);
    free(sig);
    if (v < 0) {
        jwt_why(why, why_len, "signature check failed to run");
        return ERR_INTERNAL;
    }
    if (v == 0) {
        jwt_why(why, why_len, "bad signature");
        return ERR_UNAUTHENTICATED;
    }
    snprintf(out->alg, sizeof out->alg, "%s", jwt_alg_name(alg));
    *claims_out = jwt_segment_json(p.payload, p.payload_len);
    if (*claims_out == NULL) {
        jwt_why(why, why_len, "payload is not a base64url JSON object");
        return ERR_INVALID;
    }
    return ERR_OK;
}

enum err jwt_verify(const char *token, size_t len, const struct jwks *keys,
                    const struct jwt_config *cfg, int64_t now, struct jwt_result *out, char *why,
                    size_t why_len)
{
    jwt_why(why, why_len, "");
    if (out == NULL)
        return ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!jwt_config_ok(cfg)) {
        jwt_why(why, why_len, "bad token verification configuration");
        return ERR_INVALID;
    }
    json_t *claims = NULL;
    enum err rc = jwt_verify_signed(token, len, keys, out, &claims, why, why_len);
    if (rc == ERR_OK)
        rc = jwt_check_claims(claims, cfg, now, out, why, why_len);
    if (rc != ERR_OK) {
        if (rc == ERR_INTERNAL && why != NULL && why_len > 0 && why[0] == '\0')
            jwt_why(why, why_len, "out of memory");
        json_decref(claims);
        jwt_result_clear(out);
        return rc;
    }
    out->claims = claims;
    return ERR_OK;
}

void jwt_result_clear(struct jwt_result *r)
{
    if (r == NULL)
        return;
    free(r->subject);
    jwt_free_list(r->groups, r->n_groups);
    jwt_free_list(r->amr, r->n_amr);
    json_decref(r->claims);
    memset(r, 0, sizeof *r);
}
