#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "authn/jwt.h"
#include "util/secure.h"

#define ISSUER "https://idp.example.com"
#define AUDIENCE "coffer"
#define NOW INT64_C(1767225600) /* 2026-01-01T00:00:00Z */

/* Keys generated once for all tests, and the JWKS document naming them. */
static EVP_PKEY *rsa_key, *ec_key, *ed_key, *rsa_weak, *ec_other;
static struct jwks *keyset;

static const struct jwt_config default_cfg = {ISSUER, AUDIENCE, NULL, NULL, 60};

/* ---- helpers: encoding, JWKs, signing ---- */

static char *b64u(const uint8_t *in, size_t len)
{
    size_t cap = len / 3 * 4 + 5;
    char *out = malloc(cap);
    assert_non_null(out);
    assert_true(b64url_encode(in, len, out, cap) >= 0);
    return out;
}

static char *b64u_bn(const BIGNUM *bn, int pad)
{
    uint8_t buf[1024];
    int n = pad > 0 ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    assert_true(n > 0);
    return b64u(buf, (size_t)n);
}

static void set_b64(json_t *o, const char *name, char *b64)
{
    json_object_set_new(o, name, json_string(b64));
    free(b64);
}

static json_t *jwk_rsa(EVP_PKEY *k, const char *kid)
{
    BIGNUM *n = NULL, *e = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    json_t *o = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "kid", kid, "use", "sig");
    set_b64(o, "n", b64u_bn(n, 0));
    set_b64(o, "e", b64u_bn(e, 0));
    BN_free(n);
    BN_free(e);
    return o;
}

static json_t *jwk_ec(EVP_PKEY *k, const char *kid)
{
    BIGNUM *x = NULL, *y = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "kid", kid, "crv", "P-256", "alg", "ES256");
    set_b64(o, "x", b64u_bn(x, 32));
    set_b64(o, "y", b64u_bn(y, 32));
    BN_free(x);
    BN_free(y);
    return o;
}

static json_t *jwk_ed(EVP_PKEY *k, const char *kid)
{
    uint8_t raw[32];
    size_t len = sizeof raw;
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &len), 1);
    json_t *o = json_pack("{s:s, s:s, s:s}", "kty", "OKP", "kid", kid, "crv", "Ed25519");
    set_b64(o, "x", b64u(raw, len));
    return o;
}

static char *dumps_keys(json_t *keys)
{
    json_t *doc = json_pack("{s:o}", "keys", keys);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    assert_non_null(s);
    return s;
}

static struct jwks *parse_keys(json_t *keys, enum err expect)
{
    char *s = dumps_keys(keys);
    struct jwks *set = NULL;
    assert_int_equal(jwks_parse(s, strlen(s), &set), expect);
    free(s);
    if (expect != ERR_OK)
        assert_null(set);
    return set;
}

/* Signs data with key for alg ("RS256", "ES256", "EdDSA", "ES256-DER" for a
 * deliberately wrong DER encoding). Returns the signature bytes in sig. */
static size_t sign_bytes(const char *alg, EVP_PKEY *key, const char *data, size_t len, uint8_t *sig,
                         size_t cap)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    const char *md = strcmp(alg, "EdDSA") == 0 ? NULL : "SHA256";
    assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, key, NULL), 1);
    uint8_t der[1024];
    size_t n = sizeof der;
    assert_int_equal(EVP_DigestSign(ctx, der, &n, (const uint8_t *)data, len), 1);
    EVP_MD_CTX_free(ctx);
    if (strcmp(alg, "ES256") == 0) {
        const uint8_t *p = der;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
        assert_non_null(es);
        assert_true(cap >= 64);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32), 32);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32), 32);
        ECDSA_SIG_free(es);
        return 64;
    }
    assert_true(n <= cap);
    memcpy(sig, der, n);
    return n;
}

/* Builds a token from header and payload JSON texts. alg selects the
 * signer: "RS256", "ES256", "ES256-DER", "EdDSA", "HS256" (HMAC with
 * hmac_key) or "" (empty signature). */
static char *make_token_ex(const char *header, const char *payload, const char *alg, EVP_PKEY *key,
                           const uint8_t *hmac_key, size_t hmac_len)
{
    char *h = b64u((const uint8_t *)header, strlen(header));
    char *p = b64u((const uint8_t *)payload, strlen(payload));
    size_t signing_len = strlen(h) + 1 + strlen(p);
    char *signing = malloc(signing_len + 1);
    assert_non_null(signing);
    snprintf(signing, signing_len + 1, "%s.%s", h, p);
    uint8_t sig[1024];
    size_t sig_len = 0;
    if (strcmp(alg, "HS256") == 0) {
        unsigned int l = 0;
        assert_non_null(HMAC(EVP_sha256(), hmac_key, (int)hmac_len, (const uint8_t *)signing,
                             signing_len, sig, &l));
        sig_len = l;
    } else if (strcmp(alg, "ES256-DER") == 0) {
        sig_len = sign_bytes("RS256", key, signing, signing_len, sig, sizeof sig);
    } else if (alg[0] != '\0') {
        sig_len = sign_bytes(alg, key, signing, signing_len, sig, sizeof sig);
    }
    char *s = sig_len > 0 ? b64u(sig, sig_len) : strdup("");
    size_t total = signing_len + 1 + strlen(s) + 1;
    char *tok = malloc(total);
    assert_non_null(tok);
    snprintf(tok, total, "%s.%s", signing, s);
    free(h);
    free(p);
    free(signing);
    free(s);
    return tok;
}

static char *make_token(const char *header, const char *payload, const char *alg, EVP_PKEY *key)
{
    return make_token_ex(header, payload, alg, key, NULL, 0);
}

/* Standard claims valid at NOW; the caller may modify before dumping. */
static json_t *claims_std(void)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:[s,s], s:[s,s]}", "iss", ISSUER, "aud",
                     AUDIENCE, "sub", "alice", "exp", (json_int_t)(NOW + 300), "iat",
                     (json_int_t)NOW, "nbf", (json_int_t)NOW, "groups", "risk", "ml", "amr", "pwd",
                     "mfa");
}

static char *dumps(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    assert_non_null(s);
    json_decref(j);
    return s;
}

static EVP_PKEY *key_for(const char *alg)
{
    if (strcmp(alg, "RS256") == 0)
        return rsa_key;
    if (strcmp(alg, "ES256") == 0)
        return ec_key;
    return ed_key;
}

static const char *kid_for(const char *alg)
{
    if (strcmp(alg, "RS256") == 0)
        return "rsa1";
    if (strcmp(alg, "ES256") == 0)
        return "ec1";
    return "ed1";
}

/* A token for alg with the standard header and the given claims (consumed). */
static char *token_with_claims(const char *alg, json_t *claims)
{
    char header[128];
    snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg,
             kid_for(alg));
    char *payload = dumps(claims);
    char *tok = make_token(header, payload, alg, key_for(alg));
    free(payload);
    return tok;
}

static enum err verify_cfg(const char *tok, const struct jwt_config *cfg, int64_t now, char *why,
                           size_t why_len)
{
    struct jwt_result r;
    enum err rc = jwt_verify(tok, strlen(tok), keyset, cfg, now, &r, why, why_len);
    if (rc == ERR_OK) {
        assert_non_null(r.claims);
        assert_non_null(r.subject);
    } else {
        assert_null(r.claims);
        assert_null(r.subject);
        assert_int_equal(r.n_groups, 0);
        assert_true(why == NULL || why[0] != '\0');
    }
    jwt_result_clear(&r);
    return rc;
}

static enum err verify(const char *tok)
{
    char why[256];
    return verify_cfg(tok, &default_cfg, NOW, why, sizeof why);
}

/* ---- fixture ---- */

static int setup(void **state)
{
    (void)state;
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa_weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ec_other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!rsa_key || !rsa_weak || !ec_key || !ec_other || !ed_key)
        return -1;
    json_t *keys = json_pack("[o,o,o]", jwk_rsa(rsa_key, "rsa1"), jwk_ec(ec_key, "ec1"),
                             jwk_ed(ed_key, "ed1"));
    char *s = dumps_keys(keys);
    enum err rc = jwks_parse(s, strlen(s), &keyset);
    free(s);
    return rc == ERR_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    jwks_free(keyset);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_weak);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ec_other);
    EVP_PKEY_free(ed_key);
    return 0;
}

/* ---- tests ---- */

static void test_valid_each_alg(void **state)
{
    (void)state;
    static const char *const algs[] = {"RS256", "ES256", "EdDSA"};
    for (size_t i = 0; i < 3; i++) {
        char *tok = token_with_claims(algs[i], claims_std());
        struct jwt_result r;
        char why[128];
        assert_int_equal(
            jwt_verify(tok, strlen(tok), keyset, &default_cfg, NOW, &r, why, sizeof why), ERR_OK);
        assert_string_equal(r.subject, "alice");
        assert_string_equal(r.alg, algs[i]);
        assert_string_equal(r.kid, kid_for(algs[i]));
        assert_int_equal(r.n_groups, 2);
        assert_string_equal(r.groups[0], "risk");
        assert_string_equal(r.groups[1], "ml");
        assert_int_equal(r.n_amr, 2);
        assert_string_equal(r.amr[1], "mfa");
        assert_true(r.exp == NOW + 300);
        assert_int_equal(r.has_iat, 1);
        assert_true(r.iat == NOW);
        assert_string_equal(json_string_value(json_object_get(r.claims, "iss")), ISSUER);
        /* The caller may keep the claims past jwt_result_clear. */
        json_t *kept = r.claims;
        r.claims = NULL;
        jwt_result_clear(&r);
        assert_null(r.subject);
        assert_string_equal(json_string_value(json_object_get(kept, "sub")), "alice");
        json_decref(kept);
        free(tok);
    }
}

static void test_alg_none_rejected(void **state)
{
    (void)state;
    char *payload = dumps(claims_std());
    char *tok = make_token("{\"alg\":\"none\",\"kid\":\"rsa1\"}", payload, "", NULL);
    assert_int_not_equal(verify(tok), ERR_OK);
    free(tok);
    /* Even with something in the signature slot. */
    tok = make_token("{\"alg\":\"none\",\"kid\":\"rsa1\"}", payload, "RS256", rsa_key);
    char why[128];
    assert_int_equal(verify_cfg(tok, &default_cfg, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    assert_non_null(strstr(why, "none"));
    free(tok);
    tok = make_token("{\"alg\":\"None\",\"kid\":\"rsa1\"}", payload, "RS256", rsa_key);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
    free(payload);
}

static void test_hmac_confusion_rejected(void **state)
{
    (void)state;
    /* The classic attack: HS256 keyed with the server's RSA public key. */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, rsa_key), 1);
    char *pem = NULL;
    long pem_len = BIO_get_mem_data(bio, &pem);
    assert_true(pem_len > 0);
    char *payload = dumps(claims_std());
    static const char *const hs[] = {"HS256", "HS384", "HS512"};
    for (size_t i = 0; i < 3; i++) {
        char header[64];
        snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"rsa1\"}", hs[i]);
        char *tok =
            make_token_ex(header, payload, "HS256", NULL, (const uint8_t *)pem, (size_t)pem_len);
        char why[128];
        assert_int_equal(verify_cfg(tok, &default_cfg, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
        assert_non_null(strstr(why, "symmetric"));
        free(tok);
    }
    /* Other algorithms we do not support are refused too. */
    char *tok = make_token("{\"alg\":\"RS384\",\"kid\":\"rsa1\"}", payload, "RS256", rsa_key);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
    tok = make_token("{\"alg\":\"PS256\",\"kid\":\"rsa1\"}", payload, "RS256", rsa_key);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
    free(payload);
    BIO_free(bio);
}

static void test_alg_key_mismatch_rejected(void **state)
{
    (void)state;
    char *payload = dumps(claims_std());
    char why[128];
    /* RS256 naming the EC key. */
    char *tok = make_token("{\"alg\":\"RS256\",\"kid\":\"ec1\"}", payload, "RS256", rsa_key);
    assert_int_equal(verify_cfg(tok, &default_cfg, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    assert_non_null(strstr(why, "does not fit alg"));
    free(tok);
    /* ES256 naming the RSA key, EdDSA naming the EC key, ES256 naming Ed25519. */
    tok = make_token("{\"alg\":\"ES256\",\"kid\":\"rsa1\"}", payload, "ES256", ec_key);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
    tok = make_token("{\"alg\":\"EdDSA\",\"kid\":\"ec1\"}", payload, "EdDSA", ed_key);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
    tok = make_token("{\"alg\":\"ES256\",\"kid\":\"ed1\"}", payload, "ES256", ec_key);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
    free(payload);
}

static void test_tampering_rejected(void **state)
{
    (void)state;
    static const char *const algs[] = {"RS256", "ES256", "EdDSA"};
    for (size_t i = 0; i < 3; i++) {
        char *tok = token_with_claims(algs[i], claims_std());
        assert_int_equal(verify(tok), ERR_OK);

        /* Swap in a payload naming another user, keep the signature. */
        json_t *c = claims_std();
        json_object_set_new(c, "sub", json_string("mallory"));
        char *evil = token_with_claims(algs[i], c);
        char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
        char *edot1 = strchr(evil, '.'), *edot2 = strrchr(evil, '.');
        size_t total = strlen(tok) + strlen(evil);
        char *mixed = malloc(total);
        assert_non_null(mixed);
        snprintf(mixed, total, "%.*s%.*s%s", (int)(dot1 - tok), tok, (int)(edot2 - edot1), edot1,
                 dot2);
        char why[128];
        assert_int_equal(verify_cfg(mixed, &default_cfg, NOW, why, sizeof why),
                         ERR_UNAUTHENTICATED);
        assert_string_equal(why, "bad signature");
        free(mixed);
        free(evil);

        /* Flip one character in the middle of the signature. */
        char *sig = dot2 + 1;
        size_t mid = strlen(sig) / 2;
        sig[mid] = sig[mid] == 'A' ? 'B' : 'A';
        assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
        free(tok);
    }
    /* Signed by another key under a known kid. */
    char *payload = dumps(claims_std());
    char *tok = make_token("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", payload, "ES256", ec_other);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
    /* ES256 signatures must be raw r||s, not DER. */
    tok = make_token("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", payload, "ES256-DER", ec_key);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
    free(payload);
}

static void test_time_claims(void **state)
{
    (void)state;
    struct jwt_config strict = default_cfg;
    strict.leeway = 0;
    char why[128];
    static const char *const algs[] = {"RS256", "ES256", "EdDSA"};
    const char *alg = algs[0];

    /* Expired beyond the leeway. */
    json_t *c = claims_std();
    json_object_set_new(c, "exp", json_integer(NOW - 61));
    char *tok = token_with_claims(alg, c);
    assert_int_equal(verify_cfg(tok, &default_cfg, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    assert_string_equal(why, "token expired");
    free(tok);

    /* Expired 30 s ago: inside a 60 s leeway, outside none. */
    c = claims_std();
    json_object_set_new(c, "exp", json_integer(NOW - 30));
    tok = token_with_claims(algs[1], c);
    assert_int_equal(verify(tok), ERR_OK);
    assert_int_equal(verify_cfg(tok, &strict, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    free(tok);

    /* exp == now is expired. */
    c = claims_std();
    json_object_set_new(c, "exp", json_integer(NOW));
    json_object_del(c, "iat");
    json_object_del(c, "nbf");
    tok = token_with_claims(alg, c);
    assert_int_equal(verify_cfg(tok, &strict, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    assert_int_equal(verify_cfg(tok, &strict, NOW - 1, why, sizeof why), ERR_OK);
    free(tok);

    /* nbf in the future. */
    c = claims_std();
    json_object_set_new(c, "nbf", json_integer(NOW + 120));
    tok = token_with_claims(algs[2], c);
    assert_int_equal(verify_cfg(tok, &default_cfg, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    assert_non_null(strstr(why, "nbf"));
    assert_int_equal(verify_cfg(tok, &default_cfg, NOW + 60, why, sizeof why), ERR_OK);
    free(tok);
    c = claims_std();
    json_object_set_new(c, "nbf", json_integer(NOW + 30));
    tok = token_with_claims(alg, c);
    assert_int_equal(verify(tok), ERR_OK);
    assert_int_equal(verify_cfg(tok, &strict, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    free(tok);

    /* iat in the future. */
    c = claims_std();
    json_object_set_new(c, "iat", json_integer(NOW + 120));
    tok = token_with_claims(alg, c);
    assert_int_equal(verify_cfg(tok, &default_cfg, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    assert_non_null(strstr(why, "iat"));
    free(tok);
    c = claims_std();
    json_object_set_new(c, "iat", json_integer(NOW + 30));
    tok = token_with_claims(alg, c);
    assert_int_equal(verify(tok), ERR_OK);
    free(tok);

    /* exp is required and must be a number; reals are accepted. */
    c = claims_std();
    json_object_del(c, "exp");
    tok = token_with_claims(alg, c);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
    c = claims_std();
    json_object_set_new(c, "exp", json_string("9999999999"));
    tok = token_with_claims(alg, c);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
    c = claims_std();
    json_object_set_new(c, "exp", json_real((double)(NOW + 100) + 0.5));
    tok = token_with_claims(alg, c);
    assert_int_equal(verify(tok), ERR_OK);
    free(tok);
    c = claims_std();
    json_object_set_new(c, "exp", json_integer(INT64_MAX));
    tok = token_with_claims(alg, c);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
    /* Without iat the result says so. */
    c = claims_std();
    json_object_del(c, "iat");
    tok = token_with_claims(alg, c);
    struct jwt_result r;
    assert_int_equal(jwt_verify(tok, strlen(tok), keyset, &default_cfg, NOW, &r, NULL, 0), ERR_OK);
    assert_int_equal(r.has_iat, 0);
    jwt_result_clear(&r);
    free(tok);
}

static void test_issuer_audience(void **state)
{
    (void)state;
    char why[128];
    json_t *c = claims_std();
    json_object_set_new(c, "iss", json_string(ISSUER "/"));
    char *tok = token_with_claims("RS256", c);
    assert_int_equal(verify_cfg(tok, &default_cfg, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    assert_string_equal(why, "issuer does not match");
    free(tok);

    c = claims_std();
    json_object_del(c, "iss");
    tok = token_with_claims("RS256", c);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);

    c = claims_std();
    json_object_set_new(c, "aud", json_string("other"));
    tok = token_with_claims("ES256", c);
    assert_int_equal(verify_cfg(tok, &default_cfg, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    assert_string_equal(why, "audience does not match");
    free(tok);

    c = claims_std();
    json_object_set_new(c, "aud", json_pack("[s,s]", "other", AUDIENCE));
    tok = token_with_claims("ES256", c);
    assert_int_equal(verify(tok), ERR_OK);
    free(tok);

    c = claims_std();
    json_object_set_new(c, "aud", json_pack("[s,s]", "other", "coffer2"));
    tok = token_with_claims("EdDSA", c);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);

    c = claims_std();
    json_object_del(c, "aud");
    tok = token_with_claims("EdDSA", c);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
}

static void test_kid_lookup(void **state)
{
    (void)state;
    char *payload = dumps(claims_std());
    char why[128];
    char *tok = make_token("{\"alg\":\"RS256\",\"kid\":\"rotated-2\"}", payload, "RS256", rsa_key);
    assert_int_equal(verify_cfg(tok, &default_cfg, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    assert_string_equal(why, "unknown kid");
    char kid[64];
    assert_int_equal(jwt_peek_kid(tok, strlen(tok), kid, sizeof kid), ERR_OK);
    assert_string_equal(kid, "rotated-2");
    assert_int_equal(jwks_has_kid(keyset, "rotated-2"), 0);
    assert_int_equal(jwks_has_kid(keyset, "rsa1"), 1);
    assert_int_equal(jwt_peek_kid(tok, strlen(tok), kid, 5), ERR_INVALID);
    free(tok);

    /* Without kid, the single key fitting the alg is used. */
    tok = make_token("{\"alg\":\"EdDSA\"}", payload, "EdDSA", ed_key);
    assert_int_equal(verify(tok), ERR_OK);
    assert_int_equal(jwt_peek_kid(tok, strlen(tok), kid, sizeof kid), ERR_NOT_FOUND);
    free(tok);
    /* ...but not when several keys fit. */
    json_t *keys = json_pack("[o,o]", jwk_ec(ec_key, "a"), jwk_ec(ec_other, "b"));
    struct jwks *two = parse_keys(keys, ERR_OK);
    assert_int_equal(jwks_count(two), 2);
    tok = make_token("{\"alg\":\"ES256\"}", payload, "ES256", ec_key);
    struct jwt_result r;
    assert_int_equal(jwt_verify(tok, strlen(tok), two, &default_cfg, NOW, &r, why, sizeof why),
                     ERR_UNAUTHENTICATED);
    jwks_free(two);
    free(tok);
    /* kid must be a string. */
    tok = make_token("{\"alg\":\"EdDSA\",\"kid\":7}", payload, "EdDSA", ed_key);
    assert_int_equal(verify(tok), ERR_INVALID);
    assert_int_equal(jwt_peek_kid(tok, strlen(tok), kid, sizeof kid), ERR_INVALID);
    free(tok);
    /* A NULL key set knows no kid. */
    tok = token_with_claims("RS256", claims_std());
    assert_int_equal(jwt_verify(tok, strlen(tok), NULL, &default_cfg, NOW, &r, why, sizeof why),
                     ERR_UNAUTHENTICATED);
    free(tok);
    free(payload);
}

static void test_malformed_tokens(void **state)
{
    (void)state;
    char *good = token_with_claims("EdDSA", claims_std());
    assert_int_equal(verify(good), ERR_OK);
    size_t n = strlen(good);
    char *buf = malloc(n + 64);
    assert_non_null(buf);

    /* Padding, whitespace, foreign characters. */
    snprintf(buf, n + 64, "%s=", good);
    assert_int_equal(verify(buf), ERR_INVALID);
    snprintf(buf, n + 64, " %s", good);
    assert_int_equal(verify(buf), ERR_INVALID);
    snprintf(buf, n + 64, "%s\n", good);
    assert_int_equal(verify(buf), ERR_INVALID);
    memcpy(buf, good, n + 1);
    buf[3] = '+';
    assert_int_equal(verify(buf), ERR_INVALID);
    /* Extra and missing segments. */
    snprintf(buf, n + 64, "%s.", good);
    assert_int_equal(verify(buf), ERR_INVALID);
    snprintf(buf, n + 64, "%s.AAAA", good);
    assert_int_equal(verify(buf), ERR_INVALID);
    snprintf(buf, n + 64, "%.*s", (int)(strrchr(good, '.') - good), good);
    assert_int_equal(verify(buf), ERR_INVALID);
    snprintf(buf, n + 64, ".%s", strchr(good, '.') + 1);
    assert_int_equal(verify(buf), ERR_INVALID);
    assert_int_equal(verify(""), ERR_INVALID);
    assert_int_equal(verify(".."), ERR_INVALID);
    /* An embedded NUL inside the given length. */
    struct jwt_result r;
    memcpy(buf, good, n + 1);
    buf[10] = '\0';
    assert_int_equal(jwt_verify(buf, n, keyset, &default_cfg, NOW, &r, NULL, 0), ERR_INVALID);
    free(buf);
    free(good);

    /* Header that is not JSON, not an object, or has duplicate members. */
    char *payload = dumps(claims_std());
    static const char *const bad_headers[] = {
        "not json",           "[\"alg\",\"EdDSA\"]", "{\"alg\":\"EdDSA\",\"alg\":\"EdDSA\"}",
        "{\"alg\":\"EdDSA\"", "{\"kid\":\"ed1\"}",   "{\"alg\":5}"};
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        char *tok = make_token(bad_headers[i], payload, "EdDSA", ed_key);
        assert_int_equal(verify(tok), ERR_INVALID);
        free(tok);
    }
    free(payload);
    /* Payload that is validly signed but not an object or has duplicates. */
    static const char *const bad_payloads[] = {
        "[1,2]", "\"sub\"", "{\"sub\":\"a\",\"sub\":\"b\",\"iss\":\"" ISSUER "\"}", "{"};
    for (size_t i = 0; i < sizeof bad_payloads / sizeof bad_payloads[0]; i++) {
        char *tok =
            make_token("{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", bad_payloads[i], "EdDSA", ed_key);
        assert_int_equal(verify(tok), ERR_INVALID);
        free(tok);
    }

    /* A huge token is refused before any work. */
    size_t big = JWT_MAX_TOKEN_BYTES + 1;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'A', big);
    huge[100] = '.';
    huge[200] = '.';
    huge[big] = '\0';
    char why[128];
    assert_int_equal(verify_cfg(huge, &default_cfg, NOW, why, sizeof why), ERR_INVALID);
    assert_string_equal(why, "token too large");
    free(huge);

    /* A large but legal payload still verifies. */
    json_t *c = claims_std();
    char filler[8000];
    memset(filler, 'x', sizeof filler - 1);
    filler[sizeof filler - 1] = '\0';
    json_object_set_new(c, "filler", json_string(filler));
    char *tok = token_with_claims("RS256", c);
    assert_true(strlen(tok) < JWT_MAX_TOKEN_BYTES);
    assert_int_equal(verify(tok), ERR_OK);
    free(tok);
}

static void test_crit_and_typ(void **state)
{
    (void)state;
    char *payload = dumps(claims_std());
    char why[128];
    char *tok = make_token("{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"exp\"],\"exp\":1}",
                           payload, "RS256", rsa_key);
    assert_int_equal(verify_cfg(tok, &default_cfg, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    assert_non_null(strstr(why, "crit"));
    free(tok);
    static const struct {
        const char *typ;
        enum err expect;
    } typs[] = {{"JWT", ERR_OK},
                {"jwt", ERR_OK},
                {"at+jwt", ERR_OK},
                {"AT+JWT", ERR_OK},
                {"application/at+jwt", ERR_OK},
                {"dpop+jwt", ERR_UNAUTHENTICATED},
                {"JWS", ERR_UNAUTHENTICATED},
                {"", ERR_UNAUTHENTICATED}};
    for (size_t i = 0; i < sizeof typs / sizeof typs[0]; i++) {
        char header[128];
        snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"typ\":\"%s\"}",
                 typs[i].typ);
        tok = make_token(header, payload, "ES256", ec_key);
        assert_int_equal(verify(tok), typs[i].expect);
        free(tok);
    }
    tok = make_token("{\"alg\":\"ES256\",\"kid\":\"ec1\",\"typ\":1}", payload, "ES256", ec_key);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
    free(payload);
}

static void test_subject_and_groups(void **state)
{
    (void)state;
    struct jwt_config cfg = default_cfg;
    cfg.user_claim = "email";
    cfg.groups_claim = "roles";
    json_t *c = claims_std();
    json_object_set_new(c, "email", json_string("alice@example.com"));
    json_object_set_new(c, "roles", json_pack("[s,s,s]", "a", "b", "c"));
    char *tok = token_with_claims("RS256", c);
    struct jwt_result r;
    char why[128];
    assert_int_equal(jwt_verify(tok, strlen(tok), keyset, &cfg, NOW, &r, why, sizeof why), ERR_OK);
    assert_string_equal(r.subject, "alice@example.com");
    assert_int_equal(r.n_groups, 3);
    assert_string_equal(r.groups[2], "c");
    jwt_result_clear(&r);
    free(tok);

    /* Missing user claim. */
    c = claims_std();
    tok = token_with_claims("RS256", c);
    assert_int_equal(verify_cfg(tok, &cfg, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    free(tok);
    /* Absent groups claim: no groups. */
    c = claims_std();
    json_object_set_new(c, "email", json_string("alice@example.com"));
    tok = token_with_claims("RS256", c);
    assert_int_equal(jwt_verify(tok, strlen(tok), keyset, &cfg, NOW, &r, why, sizeof why), ERR_OK);
    assert_int_equal(r.n_groups, 0);
    assert_null(r.groups);
    jwt_result_clear(&r);
    free(tok);
    /* A single string is one group. */
    c = claims_std();
    json_object_set_new(c, "groups", json_string("solo"));
    tok = token_with_claims("EdDSA", c);
    assert_int_equal(jwt_verify(tok, strlen(tok), keyset, &default_cfg, NOW, &r, why, sizeof why),
                     ERR_OK);
    assert_int_equal(r.n_groups, 1);
    assert_string_equal(r.groups[0], "solo");
    jwt_result_clear(&r);
    free(tok);
    /* Non-string members, empty strings, control characters, too many. */
    json_t *bad[4];
    bad[0] = json_pack("[s,i]", "a", 1);
    bad[1] = json_pack("[s]", "");
    bad[2] = json_pack("[s]", "a\nb");
    bad[3] = json_array();
    for (size_t i = 0; i <= JWT_MAX_GROUPS; i++)
        json_array_append_new(bad[3], json_string("g"));
    for (size_t i = 0; i < 4; i++) {
        c = claims_std();
        json_object_set_new(c, "groups", bad[i]);
        tok = token_with_claims("EdDSA", c);
        assert_int_equal(verify_cfg(tok, &default_cfg, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
        free(tok);
    }
    /* Exactly the cap is fine. */
    c = claims_std();
    json_t *many = json_array();
    for (size_t i = 0; i < JWT_MAX_GROUPS; i++)
        json_array_append_new(many, json_string("g"));
    json_object_set_new(c, "groups", many);
    tok = token_with_claims("EdDSA", c);
    assert_int_equal(jwt_verify(tok, strlen(tok), keyset, &default_cfg, NOW, &r, why, sizeof why),
                     ERR_OK);
    assert_int_equal(r.n_groups, JWT_MAX_GROUPS);
    jwt_result_clear(&r);
    free(tok);
    /* Subject must be a non-empty string. */
    c = claims_std();
    json_object_set_new(c, "sub", json_integer(42));
    tok = token_with_claims("ES256", c);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
    c = claims_std();
    json_object_set_new(c, "sub", json_string(""));
    tok = token_with_claims("ES256", c);
    assert_int_equal(verify(tok), ERR_UNAUTHENTICATED);
    free(tok);
}

static void test_bad_config(void **state)
{
    (void)state;
    char *tok = token_with_claims("RS256", claims_std());
    struct jwt_config cfg = default_cfg;
    cfg.issuer = NULL;
    assert_int_equal(verify_cfg(tok, &cfg, NOW, NULL, 0), ERR_INVALID);
    cfg = default_cfg;
    cfg.audience = "";
    assert_int_equal(verify_cfg(tok, &cfg, NOW, NULL, 0), ERR_INVALID);
    cfg = default_cfg;
    cfg.leeway = -1;
    assert_int_equal(verify_cfg(tok, &cfg, NOW, NULL, 0), ERR_INVALID);
    cfg.leeway = JWT_MAX_LEEWAY + 1;
    assert_int_equal(verify_cfg(tok, &cfg, NOW, NULL, 0), ERR_INVALID);
    struct jwt_result r;
    assert_int_equal(jwt_verify(tok, strlen(tok), keyset, NULL, NOW, &r, NULL, 0), ERR_INVALID);
    free(tok);
}

static void test_why_does_not_echo_token(void **state)
{
    (void)state;
    json_t *c = claims_std();
    json_object_set_new(c, "iss", json_string("https://evil.example"));
    char *tok = token_with_claims("RS256", c);
    char why[256];
    assert_int_equal(verify_cfg(tok, &default_cfg, NOW, why, sizeof why), ERR_UNAUTHENTICATED);
    assert_null(strstr(why, "evil"));
    assert_null(strstr(why, "alice"));
    assert_null(strstr(why, "eyJ"));
    assert_null(strchr(why, '\n'));
    free(tok);
}

static void test_jwks_parsing(void **state)
{
    (void)state;
    struct jwks *set = NULL;
    /* Encryption keys, weak RSA, unknown kty and mismatched alg are skipped. */
    json_t *enc = jwk_rsa(rsa_key, "enc");
    json_object_set_new(enc, "use", json_string("enc"));
    json_t *weak = jwk_rsa(rsa_weak, "weak");
    json_t *oct = json_pack("{s:s, s:s, s:s}", "kty", "oct", "kid", "hmac", "k", "c2VjcmV0");
    json_t *mism = jwk_rsa(rsa_key, "mism");
    json_object_set_new(mism, "alg", json_string("ES256"));
    json_t *ops = jwk_ed(ed_key, "ops");
    json_object_set_new(ops, "key_ops", json_pack("[s]", "encrypt"));
    json_t *good = jwk_ec(ec_key, "good");
    set = parse_keys(json_pack("[o,o,o,o,o,o]", enc, weak, oct, mism, ops, good), ERR_OK);
    assert_int_equal(jwks_count(set), 1);
    assert_int_equal(jwks_has_kid(set, "good"), 1);
    assert_int_equal(jwks_has_kid(set, "enc"), 0);
    assert_int_equal(jwks_has_kid(set, "weak"), 0);
    assert_int_equal(jwks_has_kid(set, "hmac"), 0);
    assert_int_equal(jwks_has_kid(set, "mism"), 0);
    assert_int_equal(jwks_has_kid(set, "ops"), 0);
    jwks_free(set);

    /* Only a weak key: nothing usable. */
    parse_keys(json_pack("[o]", jwk_rsa(rsa_weak, "weak")), ERR_INVALID);

    /* EC point not on the curve. */
    json_t *off = jwk_ec(ec_key, "off");
    char *y = strdup(json_string_value(json_object_get(off, "y")));
    y[5] = y[5] == 'A' ? 'B' : 'A';
    json_object_set_new(off, "y", json_string(y));
    free(y);
    parse_keys(json_pack("[o]", off), ERR_INVALID);

    /* Wrong sizes and padding. */
    json_t *shortx = jwk_ed(ed_key, "short");
    json_object_set_new(shortx, "x", json_string("AAAA"));
    parse_keys(json_pack("[o]", shortx), ERR_INVALID);
    json_t *padded = jwk_ed(ed_key, "padded");
    char *x = NULL;
    if (asprintf(&x, "%s=", json_string_value(json_object_get(padded, "x"))) < 0)
        fail();
    json_object_set_new(padded, "x", json_string(x));
    free(x);
    parse_keys(json_pack("[o]", padded), ERR_INVALID);
    json_t *p384 = jwk_ec(ec_key, "p384");
    json_object_set_new(p384, "crv", json_string("P-384"));
    parse_keys(json_pack("[o]", p384), ERR_INVALID);

    /* Too many keys. */
    json_t *arr = json_array();
    for (size_t i = 0; i <= JWKS_MAX_KEYS; i++)
        json_array_append_new(arr, jwk_ed(ed_key, "many"));
    parse_keys(arr, ERR_INVALID);
    arr = json_array();
    for (size_t i = 0; i < JWKS_MAX_KEYS; i++)
        json_array_append_new(arr, jwk_ed(ed_key, "many"));
    set = parse_keys(arr, ERR_OK);
    assert_int_equal(jwks_count(set), JWKS_MAX_KEYS);
    jwks_free(set);

    /* Malformed documents. */
    static const char *const docs[] = {"",
                                       "{",
                                       "[]",
                                       "{\"keys\":{}}",
                                       "{\"keys\":[]}",
                                       "{\"nokeys\":[]}",
                                       "{\"keys\":[],\"keys\":[]}"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        set = (struct jwks *)1;
        assert_int_equal(jwks_parse(docs[i], strlen(docs[i]), &set), ERR_INVALID);
        assert_null(set);
    }
    char *huge = malloc(JWKS_MAX_BYTES + 2);
    assert_non_null(huge);
    memset(huge, ' ', JWKS_MAX_BYTES + 1);
    memcpy(huge, "{\"keys\":[]}", 11);
    assert_int_equal(jwks_parse(huge, JWKS_MAX_BYTES + 1, &set), ERR_INVALID);
    free(huge);
    jwks_free(NULL);
    assert_int_equal(jwks_count(NULL), 0);
    assert_int_equal(jwks_has_kid(NULL, "x"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_each_alg),
        cmocka_unit_test(test_alg_none_rejected),
        cmocka_unit_test(test_hmac_confusion_rejected),
        cmocka_unit_test(test_alg_key_mismatch_rejected),
        cmocka_unit_test(test_tampering_rejected),
        cmocka_unit_test(test_time_claims),
        cmocka_unit_test(test_issuer_audience),
        cmocka_unit_test(test_kid_lookup),
        cmocka_unit_test(test_malformed_tokens),
        cmocka_unit_test(test_crit_and_typ),
        cmocka_unit_test(test_subject_and_groups),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_why_does_not_echo_token),
        cmocka_unit_test(test_jwks_parsing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
