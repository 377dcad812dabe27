#include "authn/totp.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <qrencode.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/secure.h"

static const uint32_t totp_pow10[TOTP_DIGITS_MAX + 1] = {
    1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u};

enum err totp_generate_secret(uint8_t *secret, size_t len)
{
    if (secret == NULL || len < TOTP_SECRET_MIN_LEN || len > TOTP_SECRET_MAX_LEN)
        return ERR_INVALID;
    if (secure_random(secret, len) != 0) {
        secure_wipe(secret, len);
        return ERR_INTERNAL;
    }
    return ERR_OK;
}

/* Maps an algorithm name to its digest, or NULL if it is not one we allow. */
static const EVP_MD *totp_md(const char *alg)
{
    if (alg == NULL || strcasecmp(alg, "SHA1") == 0)
        return EVP_sha1();
    if (strcasecmp(alg, "SHA256") == 0)
        return EVP_sha256();
    if (strcasecmp(alg, "SHA512") == 0)
        return EVP_sha512();
    return NULL;
}

/* Computes the HOTP value for counter as an integer below 10^digits.
 * Arguments are checked by the callers. Returns 0 or -1. */
static int totp_value(const uint8_t *key, size_t key_len, uint64_t counter, int digits,
                      const EVP_MD *md, uint32_t *value)
{
    uint8_t msg[8];
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    for (int i = 7; i >= 0; i--) {
        msg[i] = (uint8_t)(counter & 0xff);
        counter >>= 8;
    }
    if (HMAC(md, key, (int)key_len, msg, sizeof msg, mac, &mac_len) == NULL || mac_len < 20) {
        secure_wipe(mac, sizeof mac);
        return -1;
    }
    /* Dynamic truncation (RFC 4226 section 5.3): the low nibble of the last
     * byte selects four bytes, of which the top bit is dropped. */
    unsigned off = mac[mac_len - 1] & 0x0f;
    uint32_t bin = (uint32_t)(mac[off] & 0x7f) << 24 | (uint32_t)mac[off + 1] << 16 |
                   (uint32_t)mac[off + 2] << 8 | (uint32_t)mac[off + 3];
    *value = bin % totp_pow10[digits];
    secure_wipe(mac, sizeof mac);
    return 0;
}

/* Writes value as exactly digits decimal characters and a NUL. */
static void totp_format(uint32_t value, int digits, char *out)
{
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = (char)('0' + value % 10);
        value /= 10;
    }
    out[digits] = '\0';
}

int totp_code(const uint8_t *key, size_t key_len, uint64_t counter, int digits, const char *alg,
              char *out, size_t cap)
{
    if (out != NULL && cap > 0)
        out[0] = '\0';
    const EVP_MD *md = totp_md(alg);
    if (key == NULL || key_len == 0 || key_len > 2 * TOTP_SECRET_MAX_LEN || md == NULL ||
        digits < TOTP_DIGITS_MIN || digits > TOTP_DIGITS_MAX || out == NULL ||
        cap < (size_t)digits + 1)
        return -1;
    uint32_t value = 0;
    if (totp_value(key, key_len, counter, digits, md, &value) != 0)
        return -1;
    totp_format(value, digits, out);
    return 0;
}

/* 1 if code is exactly digits ASCII digits. */
static int totp_code_well_formed(const char *code, int digits)
{
    size_t n = strnlen(code, (size_t)TOTP_DIGITS_MAX + 1);
    if (n != (size_t)digits)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (code[i] < '0' || code[i] > '9')
            return 0;
    }
    return 1;
}

enum err totp_verify(const uint8_t *key, size_t key_len, const char *code, int64_t now, int period,
                     int digits, int skew_steps, uint64_t last_used_step, uint64_t *matched_step)
{
    if (key == NULL || key_len == 0 || key_len > 2 * TOTP_SECRET_MAX_LEN || code == NULL ||
        now < 0 || period < 1 || period > TOTP_PERIOD_MAX || digits < TOTP_DIGITS_MIN ||
        digits > TOTP_DIGITS_MAX || skew_steps < 0 || skew_steps > TOTP_SKEW_MAX)
        return ERR_INVALID;
    if (!totp_code_well_formed(code, digits))
        return ERR_UNAUTHENTICATED;

    const uint64_t step = (uint64_t)now / (uint64_t)period;
    const uint64_t skew = (uint64_t)skew_steps;
    const uint64_t first = step >= skew ? step - skew : 0;
    const uint64_t last = step + skew;
    uint64_t best = 0;
    int found = 0;
    char cand[TOTP_DIGITS_MAX + 1];
    /* Every candidate is computed and compared so that the time taken does
     * not depend on which step (if any) matched. */
    for (uint64_t s = first; s <= last; s++) {
        uint32_t value = 0;
        if (totp_value(key, key_len, s, digits, EVP_sha1(), &value) != 0) {
            secure_wipe(cand, sizeof cand);
            return ERR_INTERNAL;
        }
        totp_format(value, digits, cand);
        int eq = secure_equal(cand, code, (size_t)digits);
        int fresh = s > last_used_step;
        uint64_t take = (uint64_t)0 - (uint64_t)(eq & fresh);
        best = (best & ~take) | (s & take);
        found |= eq & fresh;
    }
    secure_wipe(cand, sizeof cand);
    if (!found)
        return ERR_UNAUTHENTICATED;
    if (matched_step != NULL)
        *matched_step = best;
    return ERR_OK;
}

static const char totp_b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int totp_base32_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    if (len > (SIZE_MAX - 5) / 8 || out == NULL)
        return -1;
    size_t need = (len * 8 + 4) / 5 + 1;
    if (need > cap || need > (size_t)INT32_MAX)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = totp_b32_alphabet[(acc >> bits) & 31];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits > 0)
        out[o++] = totp_b32_alphabet[(acc << (5 - bits)) & 31];
    out[o] = '\0';
    return (int)o;
}

static int totp_b32_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

int totp_base32_decode(const char *in, size_t in_len, uint8_t *out, size_t cap)
{
    if (in == NULL || in_len > (size_t)INT32_MAX)
        return -1;
    while (in_len > 0 && in[in_len - 1] == '=')
        in_len--;
    /* 8 characters carry 5 bytes; a final group of 1, 3 or 6 characters
     * cannot come from any byte count. */
    size_t rem = in_len % 8;
    if (rem == 1 || rem == 3 || rem == 6)
        return -1;
    return base2n_decode(in, in_len, 5, totp_b32_value, out, cap);
}

/* Appends s to out at *pos, percent-encoding everything except RFC 3986
 * unreserved characters. Returns 0, or -1 if it does not fit. */
static int totp_append_pct(char *out, size_t cap, size_t *pos, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        int keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                   (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        size_t need = keep ? 1 : 3;
        if (cap - *pos <= need)
            return -1;
        if (keep) {
            out[(*pos)++] = (char)*p;
        } else {
            out[(*pos)++] = '%';
            out[(*pos)++] = hex[*p >> 4];
            out[(*pos)++] = hex[*p & 15];
        }
    }
    out[*pos] = '\0';
    return 0;
}

/* Appends the literal s. Returns 0, or -1 if it does not fit. */
static int totp_append(char *out, size_t cap, size_t *pos, const char *s)
{
    size_t n = strlen(s);
    if (cap - *pos <= n)
        return -1;
    memcpy(out + *pos, s, n + 1);
    *pos += n;
    return 0;
}

/* 1 if s is a usable issuer or account name. */
static int totp_label_ok(const char *s)
{
    if (s == NULL)
        return 0;
    size_t n = strnlen(s, 257);
    if (n == 0 || n > 256)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ':' || c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

enum err totp_uri(const uint8_t *secret, size_t len, const char *issuer, const char *account,
                  char *out, size_t cap)
{
    if (out == NULL || cap == 0)
        return ERR_INVALID;
    out[0] = '\0';
    if (secret == NULL || len == 0 || len > TOTP_SECRET_MAX_LEN || !totp_label_ok(issuer) ||
        !totp_label_ok(account))
        return ERR_INVALID;
    char b32[(TOTP_SECRET_MAX_LEN * 8 + 4) / 5 + 1];
    if (totp_base32_encode(secret, len, b32, sizeof b32) < 0)
        return ERR_INTERNAL;
    size_t pos = 0;
    int rc = totp_append(out, cap, &pos, "otpauth://totp/");
    rc = rc ? rc : totp_append_pct(out, cap, &pos, issuer);
    rc = rc ? rc : totp_append(out, cap, &pos, ":");
    rc = rc ? rc : totp_append_pct(out, cap, &pos, account);
    rc = rc ? rc : totp_append(out, cap, &pos, "?secret=");
    rc = rc ? rc : totp_append(out, cap, &pos, b32);
    rc = rc ? rc : totp_append(out, cap, &pos, "&issuer=");
    rc = rc ? rc : totp_append_pct(out, cap, &pos, issuer);
    rc = rc ? rc : totp_append(out, cap, &pos, "&algorithm=SHA1&digits=6&period=30");
    secure_wipe(b32, sizeof b32);
    if (rc != 0) {
        secure_wipe(out, cap);
        return ERR_TOO_LARGE;
    }
    return ERR_OK;
}

/* 1 if module (x, y) of a symbol of width w, framed by a quiet zone of q
 * modules, is dark. Everything outside the symbol is light. */
static int totp_qr_dark(const QRcode *qr, int x, int y, int q)
{
    x -= q;
    y -= q;
    if (x < 0 || y < 0 || x >= qr->width || y >= qr->width)
        return 0;
    return qr->data[(size_t)y * (size_t)qr->width + (size_t)x] & 1;
}

char *totp_qr_terminal(const char *text)
{
    enum { QUIET = 2 };
    static const char *const cell[4] = {
        "\xe2\x96\x88", /* top light, bottom light: full block */
        "\xe2\x96\x80", /* top light, bottom dark: upper half block */
        "\xe2\x96\x84", /* top dark, bottom light: lower half block */
        " ",            /* both dark */
    };
    if (text == NULL || text[0] == '\0' || strnlen(text, TOTP_QR_TEXT_MAX + 1) > TOTP_QR_TEXT_MAX)
        return NULL;
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (qr == NULL)
        return NULL;
    const int total = qr->width + 2 * QUIET;
    const int lines = (total + 1) / 2;
    /* At most 3 bytes per character plus a newline per line, plus the NUL;
     * width is at most 177 + 4, so this cannot overflow. */
    size_t cap = (size_t)lines * ((size_t)total * 3 + 1) + 1;
    char *out = malloc(cap);
    if (out == NULL) {
        QRcode_free(qr);
        return NULL;
    }
    size_t pos = 0;
    for (int line = 0; line < lines; line++) {
        for (int x = 0; x < total; x++) {
            int top = totp_qr_dark(qr, x, 2 * line, QUIET);
            int bottom = totp_qr_dark(qr, x, 2 * line + 1, QUIET);
            const char *c = cell[top << 1 | bottom];
            size_t n = strlen(c);
            memcpy(out + pos, c, n);
            pos += n;
        }
        out[pos++] = '\n';
    }
    out[pos] = '\0';
    QRcode_free(qr);
    return out;
}

/* Draws one symbol index below the alphabet size, uniformly. Returns -1 if
 * the random generator fails. */
static int totp_recovery_symbol(void)
{
    const unsigned n = sizeof TOTP_RECOVERY_ALPHABET - 1;
    const unsigned limit = 256u - 256u % n;
    for (int tries = 0; tries < 1000; tries++) {
        uint8_t b;
        if (secure_random(&b, 1) != 0)
            return -1;
        if (b < limit)
            return (int)(b % n);
    }
    return -1;
}

enum err totp_recovery_codes(char codes[TOTP_RECOVERY_COUNT][16])
{
    for (int i = 0; i < TOTP_RECOVERY_COUNT; i++) {
        size_t pos = 0;
        for (int k = 0; k < 12; k++) {
            if (k > 0 && k % 4 == 0)
                codes[i][pos++] = '-';
            int v = totp_recovery_symbol();
            if (v < 0) {
                secure_wipe(codes, sizeof(char[TOTP_RECOVERY_COUNT][16]));
                return ERR_INTERNAL;
            }
            codes[i][pos++] = TOTP_RECOVERY_ALPHABET[v];
        }
        codes[i][pos] = '\0';
    }
    return ERR_OK;
}

enum err totp_recovery_normalize(const char *in, char out[16])
{
    out[0] = '\0';
    if (in == NULL || strnlen(in, 65) > 64)
        return ERR_INVALID;
    char sym[12];
    size_t n = 0;
    for (const char *p = in; *p != '\0'; p++) {
        char c = *p;
        if (c == '-' || c == ' ')
            continue;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == '\0' || strchr(TOTP_RECOVERY_ALPHABET, c) == NULL || n == sizeof sym) {
            secure_wipe(sym, sizeof sym);
            return ERR_INVALID;
        }
        sym[n++] = c;
    }
    if (n != sizeof sym) {
        secure_wipe(sym, sizeof sym);
        return ERR_INVALID;
    }
    size_t pos = 0;
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && k % 4 == 0)
            out[pos++] = '-';
        out[pos++] = sym[k];
    }
    out[pos] = '\0';
    secure_wipe(sym, sizeof sym);
    return ERR_OK;
}
