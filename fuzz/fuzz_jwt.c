/*
 * Fuzz target for JWKS parsing and JWT verification. The first byte picks a
 * mode:
 *   even: the rest is a JWKS document, a NUL byte, and a token. The document
 *         goes to jwks_parse and the token to jwt_peek_kid and jwt_verify
 *         (against the parsed set, or an empty one).
 *   odd:  the rest is a header JSON text, a NUL byte, and a payload JSON
 *         text. They are encoded and signed with the fixed Ed25519 key below,
 *         so that the header and claim checks behind the signature are
 *         reached too.
 * The seed corpus holds valid pairs for RS256, ES256 and EdDSA (tokens
 * valid at fuzz_now, signed by the keys in their documents) and valid
 * header/payload pairs for the odd mode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "authn/jwt.h"
#include "util/secure.h"

static const int64_t fuzz_now = INT64_C(1767225600); /* 2026-01-01T00:00:00Z */
static const struct jwt_config fuzz_cfg = {"https://idp.example.com", "coffer", NULL, NULL, 60};

/* Ed25519 private key seed of the odd mode; its JWK has kid "fuzz-ed". */
static const uint8_t fuzz_ed_seed[32] = {
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};

static EVP_PKEY *fuzz_ed_key;
static struct jwks *fuzz_ed_jwks;

/* Builds the odd mode's key and key set once. Returns 0 or -1. */
static int fuzz_init(void)
{
    if (fuzz_ed_jwks != NULL)
        return 0;
    fuzz_ed_key = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, fuzz_ed_seed, 32);
    uint8_t pub[32];
    size_t pub_len = sizeof pub;
    char x[64], doc[256];
    if (fuzz_ed_key == NULL || EVP_PKEY_get_raw_public_key(fuzz_ed_key, pub, &pub_len) != 1 ||
        b64url_encode(pub, pub_len, x, sizeof x) < 0)
        abort();
    int n = snprintf(doc, sizeof doc,
                     "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"fuzz-ed\","
                     "\"x\":\"%s\"}]}",
                     x);
    if (n < 0 || (size_t)n >= sizeof doc || jwks_parse(doc, (size_t)n, &fuzz_ed_jwks) != ERR_OK)
        abort();
    return 0;
}

static void fuzz_verify(const char *token, size_t len, const struct jwks *keys)
{
    struct jwt_result r;
    char why[128];
    enum err rc = jwt_verify(token, len, keys, &fuzz_cfg, fuzz_now, &r, why, sizeof why);
    if (rc == ERR_OK) {
        /* Invariants of a successful result. */
        if (r.subject == NULL || r.subject[0] == '\0' || r.claims == NULL ||
            r.n_groups > JWT_MAX_GROUPS || r.n_amr > JWT_MAX_AMR || r.exp + 60 <= fuzz_now)
            abort();
        for (size_t i = 0; i < r.n_groups; i++) {
            if (r.groups[i] == NULL || r.groups[i][0] == '\0')
                abort();
        }
    } else if (r.subject != NULL || r.claims != NULL || r.groups != NULL) {
        abort();
    }
    jwt_result_clear(&r);
}

static void fuzz_pair(const uint8_t *data, size_t size)
{
    const uint8_t *sep = memchr(data, 0, size);
    size_t doc_len = sep != NULL ? (size_t)(sep - data) : size;
    const char *token = sep != NULL ? (const char *)sep + 1 : "";
    size_t token_len = sep != NULL ? size - doc_len - 1 : 0;

    struct jwks *keys = NULL;
    if (jwks_parse((const char *)data, doc_len, &keys) == ERR_OK && jwks_count(keys) == 0)
        abort();
    char kid[JWT_KID_MAX + 1];
    if (jwt_peek_kid(token, token_len, kid, sizeof kid) == ERR_OK && keys != NULL)
        (void)jwks_has_kid(keys, kid);
    fuzz_verify(token, token_len, keys);
    jwks_free(keys);
}

static void fuzz_signed(const uint8_t *data, size_t size)
{
    const uint8_t *sep = memchr(data, 0, size);
    if (sep == NULL)
        return;
    size_t hl = (size_t)(sep - data), pl = size - hl - 1;
    if (hl > JWT_MAX_TOKEN_BYTES || pl > JWT_MAX_TOKEN_BYTES)
        return;
    size_t cap = (hl + pl) / 3 * 4 + 16 + 2 + 90;
    char *tok = malloc(cap);
    if (tok == NULL)
        return;
    int a = b64url_encode(data, hl, tok, cap);
    if (a < 0)
        goto done;
    tok[a] = '.';
    int b = b64url_encode(sep + 1, pl, tok + a + 1, cap - (size_t)a - 1);
    if (b < 0)
        goto done;
    size_t signing_len = (size_t)a + 1 + (size_t)b;
    uint8_t sig[64];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL &&
             EVP_DigestSignInit_ex(ctx, NULL, NULL, NULL, NULL, fuzz_ed_key, NULL) == 1 &&
             EVP_DigestSign(ctx, sig, &sig_len, (const uint8_t *)tok, signing_len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        abort();
    tok[signing_len] = '.';
    int c = b64url_encode(sig, sig_len, tok + signing_len + 1, cap - signing_len - 1);
    if (c < 0)
        goto done;
    fuzz_verify(tok, signing_len + 1 + (size_t)c, fuzz_ed_jwks);
done:
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || fuzz_init() != 0)
        return 0;
    if (data[0] & 1)
        fuzz_signed(data + 1, size - 1);
    else
        fuzz_pair(data + 1, size - 1);
    return 0;
}
