#include "authn/password.h"

#include <argon2.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include "util/secure.h"

#define PASSWORD_ENV_MEMORY "COFFER_ARGON2_MEMORY_KIB"
#define PASSWORD_PHC_PREFIX "$argon2id$v=19$"

/* Bounds on the decoded salt and hash of a stored encoding. */
#define PASSWORD_SALT_MIN 8u
#define PASSWORD_SALT_MAX 64u
#define PASSWORD_DIGEST_MIN 16u
#define PASSWORD_DIGEST_MAX 64u

/* The dummy hash: 16 zero bytes of salt and 32 zero bytes of hash. No
 * password hashes to all zeros in practice, so verifying against it always
 * fails, after exactly the work of a real verification. */
#define PASSWORD_DUMMY_SALT "AAAAAAAAAAAAAAAAAAAAAA"
#define PASSWORD_DUMMY_HASH "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* The memory cost for new hashes: the constant, or the test override. */
static uint32_t password_memory_kib(void)
{
    const char *s = getenv(PASSWORD_ENV_MEMORY);
    if (s == NULL || *s < '0' || *s > '9')
        return PASSWORD_ARGON2_MEMORY_KIB;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0')
        return PASSWORD_ARGON2_MEMORY_KIB;
    if (v < PASSWORD_ARGON2_MEMORY_KIB_MIN)
        return PASSWORD_ARGON2_MEMORY_KIB_MIN;
    if (v > PASSWORD_ARGON2_MEMORY_KIB_MAX)
        return PASSWORD_ARGON2_MEMORY_KIB_MAX;
    return (uint32_t)v;
}

/* At most PASSWORD_CONCURRENCY Argon2 computations run at once, so a burst
 * of logins cannot push the server's memory past a known bound. */
#define PASSWORD_CONCURRENCY 2
static pthread_mutex_t password_gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t password_gate_cond = PTHREAD_COND_INITIALIZER;
static int password_gate_busy;

static void password_gate_enter(void)
{
    pthread_mutex_lock(&password_gate_lock);
    while (password_gate_busy >= PASSWORD_CONCURRENCY)
        pthread_cond_wait(&password_gate_cond, &password_gate_lock);
    password_gate_busy++;
    pthread_mutex_unlock(&password_gate_lock);
}

static void password_gate_leave(void)
{
    pthread_mutex_lock(&password_gate_lock);
    password_gate_busy--;
    pthread_cond_signal(&password_gate_cond);
    pthread_mutex_unlock(&password_gate_lock);
}

enum err password_hash(const char *password, char **encoded_out)
{
    if (encoded_out == NULL)
        return ERR_INTERNAL;
    *encoded_out = NULL;
    if (password == NULL)
        return ERR_INVALID;
    size_t pwd_len = strnlen(password, PASSWORD_MAX_BYTES + 1);
    if (pwd_len > PASSWORD_MAX_BYTES)
        return ERR_INVALID;

    uint32_t m_cost = password_memory_kib();
    size_t enc_len = argon2_encodedlen(PASSWORD_ARGON2_T_COST, m_cost, PASSWORD_ARGON2_PARALLELISM,
                                       PASSWORD_SALT_LEN, PASSWORD_HASH_LEN, Argon2_id);
    if (enc_len == 0 || enc_len > PASSWORD_ENCODED_MAX)
        return ERR_INTERNAL;

    uint8_t salt[PASSWORD_SALT_LEN];
    if (secure_random(salt, sizeof salt) != 0)
        return ERR_INTERNAL;
    char *encoded = calloc(1, enc_len);
    if (encoded == NULL) {
        secure_wipe(salt, sizeof salt);
        return ERR_INTERNAL;
    }
    password_gate_enter();
    int rc =
        argon2id_hash_encoded(PASSWORD_ARGON2_T_COST, m_cost, PASSWORD_ARGON2_PARALLELISM, password,
                              pwd_len, salt, sizeof salt, PASSWORD_HASH_LEN, encoded, enc_len);
    password_gate_leave();
    secure_wipe(salt, sizeof salt);
    if (rc != ARGON2_OK) {
        free(encoded);
        return ERR_INTERNAL;
    }
    *encoded_out = encoded;
    return ERR_OK;
}

/* Parses a decimal without sign or leading zeros at *p, in [min, max],
 * followed by the character stop; advances *p past stop. 0 on success. */
static int password_parse_uint(const char **p, uint32_t min, uint32_t max, char stop, uint32_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9') {
        if (n >= 10)
            return -1;
        v = v * 10 + (uint64_t)(s[n] - '0');
        n++;
    }
    if (n == 0 || (n > 1 && s[0] == '0') || s[n] != stop)
        return -1;
    if (v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    *p = s + n + 1;
    return 0;
}

/* Measures a run of unpadded standard base64 at s ending at stop, and checks
 * its decoded length lies in [min, max]. Returns the run length or 0. */
static size_t password_b64_span(const char *s, char stop, size_t min, size_t max)
{
    size_t n = 0;
    for (;; n++) {
        char c = s[n];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '+' || c == '/')
            continue;
        break;
    }
    if (s[n] != stop || n % 4 == 1)
        return 0;
    size_t decoded = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (decoded < min || decoded > max)
        return 0;
    return n;
}

/* Checks that encoded is an argon2id v19 PHC string whose costs are within
 * the verification bounds. 0 if acceptable, -1 otherwise. */
static int password_check_encoding(const char *encoded)
{
    size_t len = strnlen(encoded, PASSWORD_ENCODED_MAX + 1);
    size_t prefix_len = strlen(PASSWORD_PHC_PREFIX);
    if (len > PASSWORD_ENCODED_MAX || len < prefix_len ||
        memcmp(encoded, PASSWORD_PHC_PREFIX, prefix_len) != 0)
        return -1;
    const char *p = encoded + prefix_len;
    uint32_t m = 0, t = 0, lanes = 0;
    if (strncmp(p, "m=", 2) != 0)
        return -1;
    p += 2;
    if (password_parse_uint(&p, PASSWORD_ARGON2_MEMORY_KIB_MIN, PASSWORD_ARGON2_MEMORY_KIB_MAX, ',',
                            &m) != 0 ||
        strncmp(p, "t=", 2) != 0)
        return -1;
    p += 2;
    if (password_parse_uint(&p, 1, PASSWORD_ARGON2_T_COST_MAX, ',', &t) != 0 ||
        strncmp(p, "p=", 2) != 0)
        return -1;
    p += 2;
    if (password_parse_uint(&p, 1, PASSWORD_ARGON2_PARALLELISM_MAX, '$', &lanes) != 0)
        return -1;
    /* Argon2 needs at least 8 KiB of memory per lane. */
    if (m < 8u * lanes)
        return -1;
    size_t n = password_b64_span(p, '$', PASSWORD_SALT_MIN, PASSWORD_SALT_MAX);
    if (n == 0)
        return -1;
    p += n + 1;
    if (password_b64_span(p, '\0', PASSWORD_DIGEST_MIN, PASSWORD_DIGEST_MAX) == 0)
        return -1;
    return 0;
}

/* The one verification path, shared by real and dummy verification so that
 * both cost the same. */
static int password_verify_encoded(const char *encoded, const char *password, size_t pwd_len)
{
    if (password_check_encoding(encoded) != 0)
        return 0;
    password_gate_enter();
    int rc = argon2id_verify(encoded, password, pwd_len);
    password_gate_leave();
    return rc == ARGON2_OK;
}

void password_verify_dummy(const char *password)
{
    char dummy[PASSWORD_ENCODED_MAX];
    int n = snprintf(dummy, sizeof dummy, PASSWORD_PHC_PREFIX "m=%u,t=%u,p=%u$%s$%s",
                     (unsigned)password_memory_kib(), PASSWORD_ARGON2_T_COST,
                     PASSWORD_ARGON2_PARALLELISM, PASSWORD_DUMMY_SALT, PASSWORD_DUMMY_HASH);
    if (n < 0 || (size_t)n >= sizeof dummy)
        return;
    const char *pwd = password != NULL ? password : "";
    size_t pwd_len = strnlen(pwd, PASSWORD_MAX_BYTES);
    int ok = password_verify_encoded(dummy, pwd, pwd_len);
    (void)ok;
}

int password_verify(const char *encoded, const char *password)
{
    if (encoded == NULL || password == NULL) {
        password_verify_dummy(password);
        return 0;
    }
    size_t pwd_len = strnlen(password, PASSWORD_MAX_BYTES + 1);
    if (pwd_len > PASSWORD_MAX_BYTES) {
        /* No stored hash can match; spend the same time anyway. */
        password_verify_dummy(password);
        return 0;
    }
    return password_verify_encoded(encoded, password, pwd_len);
}

enum err password_generate(char *out, size_t cap)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (out == NULL || cap < PASSWORD_GENERATED_LEN + 1) {
        if (out != NULL && cap > 0)
            out[0] = '\0';
        return ERR_INVALID;
    }
    uint8_t rnd[PASSWORD_GENERATED_LEN];
    if (secure_random(rnd, sizeof rnd) != 0) {
        secure_wipe(rnd, sizeof rnd);
        out[0] = '\0';
        return ERR_INTERNAL;
    }
    /* 64 symbols divide 256 evenly, so masking keeps the choice uniform. */
    for (size_t i = 0; i < PASSWORD_GENERATED_LEN; i++)
        out[i] = alphabet[rnd[i] & 63];
    out[PASSWORD_GENERATED_LEN] = '\0';
    secure_wipe(rnd, sizeof rnd);
    return ERR_OK;
}

/* Decodes one UTF-8 sequence at s[*i] (strict: no overlongs, surrogates or
 * code points above U+10FFFF). 0 and advances *i on success, -1 otherwise. */
static int password_utf8_next(const unsigned char *s, size_t len, size_t *i, uint32_t *cp)
{
    unsigned char c = s[*i];
    size_t need;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        (*i)++;
        return 0;
    } else if (c >= 0xc2 && c <= 0xdf) {
        need = 1, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3, v = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (len - *i <= need)
        return -1;
    for (size_t k = 1; k <= need; k++) {
        unsigned char cc = s[*i + k];
        if ((cc & 0xc0) != 0x80)
            return -1;
        v = (v << 6) | (cc & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return -1;
    *cp = v;
    *i += need + 1;
    return 0;
}

static enum err password_policy_fail(char *why, size_t why_len, const char *reason)
{
    if (why != NULL && why_len > 0)
        snprintf(why, why_len, "%s", reason);
    return ERR_INVALID;
}

enum err password_check_policy(const char *password, char *why, size_t why_len)
{
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    if (password == NULL)
        return password_policy_fail(why, why_len, "password is missing");
    size_t len = strnlen(password, PASSWORD_MAX_BYTES + 1);
    if (len > PASSWORD_MAX_BYTES)
        return password_policy_fail(why, why_len, "password is longer than 1024 bytes");
    const unsigned char *s = (const unsigned char *)password;
    size_t i = 0, chars = 0;
    while (i < len) {
        uint32_t cp = 0;
        if (password_utf8_next(s, len, &i, &cp) != 0)
            return password_policy_fail(why, why_len, "password is not valid UTF-8");
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            return password_policy_fail(why, why_len, "password contains a control character");
        chars++;
    }
    if (chars < PASSWORD_MIN_CHARS)
        return password_policy_fail(why, why_len, "password must be at least 12 characters long");
    return ERR_OK;
}
