/*
 * json_text: compact JSON serialisation (see json_text.h).
 */
#include "util/json_text.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct text {
    char *p;
    size_t len, cap;
    int failed;
};

static int text_reserve(struct text *t, size_t n)
{
    if (t->failed)
        return -1;
    if (n <= t->cap - t->len)
        return 0;
    size_t cap = t->cap != 0 ? t->cap : 256;
    while (cap - t->len < n) {
        if (cap > SIZE_MAX / 2) {
            t->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    char *np = realloc(t->p, cap);
    if (np == NULL) {
        t->failed = 1;
        return -1;
    }
    t->p = np;
    t->cap = cap;
    return 0;
}

static void text_put(struct text *t, const char *s, size_t n)
{
    if (text_reserve(t, n) != 0)
        return;
    memcpy(t->p + t->len, s, n);
    t->len += n;
}

static void text_char(struct text *t, char c)
{
    if (text_reserve(t, 1) == 0)
        t->p[t->len++] = c;
}

/* A string with the escapes json_dumps uses without flags: quote,
 * backslash and control characters; other bytes (UTF-8) as they are. */
size_t json_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (k > n)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

static void text_string(struct text *t, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    text_char(t, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t k = json_utf8_seq((const unsigned char *)s + i, n - i);
            if (k == 0) {
                t->failed = 1; /* json_dumps refuses it too */
                return;
            }
            i += k - 1;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        text_put(t, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t k = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            k = 6;
        }
        text_put(t, esc, k);
    }
    text_put(t, s + run, n - run);
    text_char(t, '"');
}

static void text_integer(struct text *t, json_int_t v)
{
    char num[24];
    size_t k = sizeof(num);
    /* Digits of the magnitude, from the end; unsigned so INT64_MIN works. */
    unsigned long long m = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        num[--k] = (char)('0' + m % 10);
        m /= 10;
    } while (m != 0);
    if (v < 0)
        num[--k] = '-';
    text_put(t, num + k, sizeof(num) - k);
}

/* As jansson: 17 significant digits, a ".0" when the text would otherwise
 * read as an integer, and an exponent without "+" or leading zeros. */
static void text_real(struct text *t, double d)
{
    if (!isfinite(d)) {
        t->failed = 1;
        return;
    }
    char num[40];
    int k = snprintf(num, sizeof(num), "%.17g", d);
    if (k <= 0 || (size_t)k >= sizeof(num) - 3) {
        t->failed = 1;
        return;
    }
    char *e = strchr(num, 'e');
    if (e == NULL && strchr(num, '.') == NULL) {
        num[k++] = '.';
        num[k++] = '0';
    }
    if (e != NULL) {
        /* "1e+300" and "1e-07" are written "1e300" and "1e-7". */
        char *to = e + 1;
        if (*to == '-')
            to++;
        char *from = e + 1;
        if (*from == '+' || *from == '-')
            from++;
        while (*from == '0' && from[1] != '\0')
            from++;
        size_t rest = strlen(from);
        memmove(to, from, rest + 1);
        k = (int)(to - num) + (int)rest;
    }
    text_put(t, num, (size_t)k);
}

static void text_value(struct text *t, const json_t *v, unsigned depth)
{
    if (depth > JSON_TEXT_DEPTH_MAX) {
        t->failed = 1;
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        text_char(t, '{');
        /* jansson keeps insertion order; keys may hold NUL (json_object_setn). */
        int first = 1;
        for (void *it = json_object_iter((json_t *)v); it != NULL && !t->failed;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first)
                text_char(t, ',');
            first = 0;
            text_string(t, json_object_iter_key(it), json_object_iter_key_len(it));
            text_char(t, ':');
            text_value(t, json_object_iter_value(it), depth + 1);
        }
        text_char(t, '}');
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        text_char(t, '[');
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                text_char(t, ',');
            text_value(t, json_array_get(v, i), depth + 1);
        }
        text_char(t, ']');
        break;
    }
    case JSON_STRING:
        text_string(t, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        text_integer(t, json_integer_value(v));
        break;
    case JSON_REAL:
        text_real(t, json_real_value(v));
        break;
    case JSON_TRUE:
        text_put(t, "true", 4);
        break;
    case JSON_FALSE:
        text_put(t, "false", 5);
        break;
    case JSON_NULL:
        text_put(t, "null", 4);
        break;
    }
}

char *json_text(const json_t *v, size_t *len)
{
    struct text t = {NULL, 0, 0, 0};
    if (v == NULL)
        return NULL;
    text_value(&t, v, 0);
    text_char(&t, '\0');
    if (t.failed) {
        free(t.p);
        return NULL;
    }
    if (len != NULL)
        *len = t.len - 1;
    return t.p;
}
