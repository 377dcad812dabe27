/*
 * pii: streaming detection of personal data in uploaded text.
 *
 * The stream is scanned in rounds over a working buffer w = (bytes kept from
 * the previous round) + (the next piece of at most PII_PIECE bytes). A
 * matcher is run at an "anchor" (a candidate position) and may read up to
 * PII_BACK bytes before it and PII_FWD bytes after it. In a round, anchors
 * are examined only up to PII_FWD bytes before the end of w (everywhere at
 * the end of the stream); the last PII_BACK + PII_FWD bytes are kept for the
 * next round, so every anchor is examined exactly once, with its whole
 * context in view, wherever the chunk boundaries fall.
 */
#include "app/pii.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "meta/access.h"

#define PII_BACK 72
#define PII_FWD 160
#define PII_KEEP (PII_BACK + PII_FWD)
#define PII_PIECE 65536

#define PII_EMAIL_LOCAL_MAX 64
#define PII_EMAIL_DOMAIN_MAX 128
#define PII_NUM_SPAN_MAX 40
#define PII_NUM_DIGITS_MAX 24
#define PII_NUM_GROUPS_MAX 12

struct pii_sample {
    enum pii_type type;
    uint64_t offset;
    char text[PII_SAMPLE_MAX];
};

struct pii_scanner {
    uint8_t *w;        /* PII_KEEP + PII_PIECE bytes */
    size_t len;        /* bytes in w kept from the previous round */
    size_t from;       /* anchors before this index of w were examined */
    size_t skip;       /* anchors before this index lie inside a finding */
    uint64_t base;     /* stream offset of w[0] */
    uint64_t fed;      /* bytes of the stream seen */
    uint64_t controls; /* control bytes within the first PII_SNIFF_BYTES */
    int binary;
    int finished;
    uint64_t counts[PII_TYPE_COUNT];
    struct pii_sample samples[PII_SAMPLES_MAX];
    size_t n_samples;
};

/* Which bytes can start a finding. */
enum { T_NONE, T_AT, T_DIGIT, T_PLUS, T_PAREN, T_UPPER };

static const uint8_t pii_trigger[256] = {
    ['@'] = T_AT, ['0' ... '9'] = T_DIGIT, ['+'] = T_PLUS, ['('] = T_PAREN, ['A' ... 'Z'] = T_UPPER,
};

static int pii_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static int pii_upper(uint8_t c)
{
    return c >= 'A' && c <= 'Z';
}

static int pii_alnum(uint8_t c)
{
    return pii_digit(c) || pii_upper(c) || (c >= 'a' && c <= 'z');
}

static const char *const pii_names[PII_TYPE_COUNT] = {"email", "phone",  "card",
                                                      "iban",  "us_ssn", "uk_nino"};

const char *pii_type_name(enum pii_type t)
{
    return (unsigned)t < PII_TYPE_COUNT ? pii_names[t] : "unknown";
}

enum err pii_scanner_new(struct pii_scanner **out)
{
    struct pii_scanner *s = calloc(1, sizeof(*s));
    if (s != NULL)
        s->w = malloc(PII_KEEP + PII_PIECE);
    if (s == NULL || s->w == NULL) {
        free(s);
        *out = NULL;
        return ERR_INTERNAL;
    }
    *out = s;
    return ERR_OK;
}

void pii_scanner_free(struct pii_scanner *s)
{
    if (s == NULL)
        return;
    /* The buffer held uploaded content, possibly personal data. */
    memset(s->w, 0, PII_KEEP + PII_PIECE);
    free(s->w);
    free(s);
}

/* Records a finding at w[at] of type t with its redacted form. */
static int pii_sample_wanted(const struct pii_scanner *s, enum pii_type t)
{
    if (s->n_samples >= PII_SAMPLES_MAX)
        return 0;
    size_t same = 0;
    for (size_t k = 0; k < s->n_samples; k++)
        same += s->samples[k].type == t;
    return same < PII_SAMPLES_PER_TYPE;
}

/* Counts a finding of type t at w[at]; keeps redacted (made only when
 * pii_sample_wanted said so) as a sample while there is room. */
static void pii_found(struct pii_scanner *s, enum pii_type t, size_t at, const char *redacted)
{
    s->counts[t]++;
    if (!pii_sample_wanted(s, t))
        return;
    struct pii_sample *sm = &s->samples[s->n_samples++];
    sm->type = t;
    sm->offset = s->base + at;
    size_t n = strlen(redacted);
    if (n >= sizeof(sm->text))
        n = sizeof(sm->text) - 1;
    memcpy(sm->text, redacted, n);
    sm->text[n] = '\0';
}

/* ------------------------------------------------------------------ e-mail */

static int pii_email_local_char(uint8_t c)
{
    return pii_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static int pii_label_char(uint8_t c)
{
    return pii_alnum(c) || c == '-';
}

/* Top-level "domains" that are in practice file extensions (icon@2x.png). */
static int pii_tld_is_extension(const uint8_t *t, size_t n)
{
    static const char *const ext[] = {"png", "jpg", "jpeg", "gif",  "svg",  "webp", "bmp",
                                      "ico", "js",  "ts",   "css",  "json", "py",   "txt",
                                      "csv", "md",  "yml",  "yaml", "xml",  "pdf",  "zip",
                                      "gz",  "go",  "rs",   "html", "java"};
    char low[5];
    if (n > 4)
        return 0;
    for (size_t k = 0; k < n; k++)
        low[k] = (char)(t[k] | 0x20);
    low[n] = '\0';
    for (size_t k = 0; k < sizeof(ext) / sizeof(ext[0]); k++) {
        if (strcmp(ext[k], low) == 0)
            return 1;
    }
    return 0;
}

/* First labels that mark an attribute access in code (x@self.weight). */
static int pii_label_is_code(const uint8_t *t, size_t n)
{
    return (n == 4 && (memcmp(t, "self", 4) == 0 || memcmp(t, "this", 4) == 0)) ||
           (n == 3 && memcmp(t, "cls", 3) == 0);
}

/* '@' at w[at]. Returns the index after the address, or 0. */
static size_t pii_match_email(struct pii_scanner *s, size_t n, size_t at)
{
    const uint8_t *w = s->w;
    size_t ls = at;
    while (ls > 0 && at - ls < PII_EMAIL_LOCAL_MAX + 1 && pii_email_local_char(w[ls - 1]))
        ls--;
    if (ls == at || at - ls > PII_EMAIL_LOCAL_MAX || w[ls] == '.' || w[at - 1] == '.')
        return 0;
    if (ls > 0 && (pii_email_local_char(w[ls - 1]) || w[ls - 1] == '@'))
        return 0;
    for (size_t k = ls; k + 1 < at; k++) {
        if (w[k] == '.' && w[k + 1] == '.')
            return 0;
    }
    /* Labels separated by single dots; at least two; the last alphabetic. */
    size_t j = at + 1, labels = 0, last = 0, last_len = 0, first_len = 0;
    for (;;) {
        size_t st = j;
        while (j < n && j - at <= PII_EMAIL_DOMAIN_MAX && pii_label_char(w[j]))
            j++;
        size_t ll = j - st;
        if (ll == 0 || ll > 63 || w[st] == '-' || w[j - 1] == '-')
            break;
        if (labels == 0)
            first_len = ll;
        labels++;
        last = st;
        last_len = ll;
        if (j + 1 < n && w[j] == '.' && pii_label_char(w[j + 1]))
            j++;
        else
            break;
    }
    if (labels < 2 || j - at > PII_EMAIL_DOMAIN_MAX || (j < n && pii_label_char(w[j])))
        return 0;
    /* j may stop on a label that was rejected (empty, or bad dashes): the
     * domain then ends at the last accepted label. */
    size_t end = last + last_len;
    if (last_len < 2 || last_len > 24)
        return 0;
    for (size_t k = last; k < end; k++) {
        if (pii_digit(w[k]) || w[k] == '-')
            return 0;
    }
    if (pii_tld_is_extension(w + last, last_len) || pii_label_is_code(w + at + 1, first_len))
        return 0;
    char red[PII_SAMPLE_MAX] = "";
    size_t tl = last_len > 12 ? 12 : last_len;
    if (pii_sample_wanted(s, PII_EMAIL))
        snprintf(red, sizeof(red), "%c***@%c***.%.*s", w[ls], w[at + 1], (int)tl,
                 (const char *)(w + last));
    pii_found(s, PII_EMAIL, ls, red);
    return end;
}

/* ------------------------------------------------------------------ numbers */

struct pii_num {
    uint8_t d[PII_NUM_DIGITS_MAX]; /* the digits, as values */
    size_t nd;
    size_t glen[PII_NUM_GROUPS_MAX];   /* digits per group */
    size_t gfirst[PII_NUM_GROUPS_MAX]; /* index of the group's first digit in d */
    uint8_t sep[PII_NUM_GROUPS_MAX];   /* separator after the group (0: none) */
    size_t gend[PII_NUM_GROUPS_MAX];   /* index in w after the group (and its ')') */
    size_t ng;
    int plus;
    int parens;
    int overflow; /* the span went on past the limits */
};

/* Bytes that must not precede a number (it would be part of a word, a
 * decimal, a time or an address). */
static int pii_num_glued(uint8_t c)
{
    return pii_alnum(c) || c == '_' || c == '.' || c == ':' || c == '@';
}

/* Whether w[j] continues the number that ends before it. */
static int pii_num_glued_right(const uint8_t *w, size_t n, size_t j)
{
    if (j >= n)
        return 0;
    uint8_t c = w[j];
    if (pii_alnum(c) || c == '_' || c == ':' || c == '@')
        return 1;
    return (c == '.' || c == '-' || c == '/') && j + 1 < n && pii_digit(w[j + 1]);
}

/* Gathers digit groups from w[j]: single separators (space, '-', '.'), a
 * group may be wrapped in parentheses. */
static void pii_num_collect(const uint8_t *w, size_t n, size_t j, struct pii_num *nm)
{
    size_t start = j;
    for (;;) {
        int open = 0;
        if (j < n && w[j] == '(') {
            open = 1;
            j++;
        }
        size_t gs = j;
        while (j < n && pii_digit(w[j]) && nm->nd < PII_NUM_DIGITS_MAX &&
               j - start < PII_NUM_SPAN_MAX)
            nm->d[nm->nd++] = (uint8_t)(w[j++] - '0');
        if (j < n && pii_digit(w[j])) {
            nm->overflow = 1;
            return;
        }
        if (j == gs || (open && (j >= n || w[j] != ')')))
            return; /* empty or unclosed group: it does not count */
        size_t g = nm->ng++;
        nm->glen[g] = j - gs;
        nm->gfirst[g] = nm->nd - nm->glen[g];
        nm->sep[g] = 0;
        if (open) {
            nm->parens++;
            j++;
        }
        nm->gend[g] = j;
        if (nm->ng == PII_NUM_GROUPS_MAX || j >= n || j - start >= PII_NUM_SPAN_MAX)
            return;
        uint8_t c = w[j];
        if (open && pii_digit(c)) {
            nm->sep[g] = ')';
            continue;
        }
        if ((c == ' ' || c == '-' || c == '.') && j + 1 < n &&
            (pii_digit(w[j + 1]) || (c == ' ' && w[j + 1] == '('))) {
            nm->sep[g] = open ? ')' : c;
            j++;
            continue;
        }
        return;
    }
}

static int pii_luhn(const uint8_t *d, size_t n)
{
    unsigned sum = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned v = d[n - 1 - k];
        if (k % 2 == 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

static unsigned pii_prefix(const uint8_t *d, size_t k)
{
    unsigned v = 0;
    for (size_t i = 0; i < k; i++)
        v = v * 10 + d[i];
    return v;
}

/* Issuer prefixes (IIN) and lengths of the major card networks. */
static int pii_card_iin(const uint8_t *d, size_t n)
{
    unsigned p1 = d[0], p2 = pii_prefix(d, 2), p3 = pii_prefix(d, 3), p4 = pii_prefix(d, 4);
    if (p1 == 4)
        return n == 13 || n == 16 || n == 19; /* Visa */
    if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))
        return n == 16; /* Mastercard */
    if (p2 == 34 || p2 == 37)
        return n == 15; /* American Express */
    if (p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65 || p2 == 62)
        return n >= 16; /* Discover, UnionPay */
    if (p4 >= 3528 && p4 <= 3589)
        return n >= 16; /* JCB */
    if ((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 || p2 == 39)
        return n >= 14; /* Diners Club */
    return 0;
}

static int pii_card_shape(const struct pii_num *nm, size_t k)
{
    if (k == 1)
        return 1;
    for (size_t g = 0; g + 1 < k; g++) {
        if (nm->sep[g] != nm->sep[0] || (nm->sep[0] != ' ' && nm->sep[0] != '-'))
            return 0;
    }
    if (k == 3 && nm->glen[0] == 4 && nm->glen[1] == 6 && (nm->glen[2] == 5 || nm->glen[2] == 4))
        return 1; /* 4-6-5 (Amex), 4-6-4 (Diners) */
    for (size_t g = 0; g + 1 < k; g++) {
        if (nm->glen[g] != 4)
            return 0;
    }
    return nm->glen[k - 1] >= 1 && nm->glen[k - 1] <= 4;
}

static int pii_ssn_valid(const uint8_t *d)
{
    unsigned area = pii_prefix(d, 3), group = pii_prefix(d + 3, 2), serial = pii_prefix(d + 5, 4);
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0)
        return 0;
    /* Numbers published in advertising, never assigned to a person. */
    return !(area == 78 && group == 5 && serial == 1120) &&
           !(area == 219 && group == 9 && serial == 9999);
}

static int pii_phone(const struct pii_num *nm, size_t k, size_t nd)
{
    const uint8_t *d = nm->d;
    if (nm->plus) {
        if (nd < 8 || nd > 15 || d[0] == 0)
            return 0;
        for (size_t g = 1; g < k; g++) {
            if (nm->glen[g] < 2)
                return 0;
        }
        return k == 1 || nm->glen[0] <= 4;
    }
    for (size_t g = 0; g + 1 < k; g++) {
        if (nm->sep[g] == 0)
            return 0;
    }
    /* North American numbers: (NPA) NXX-XXXX, with or without a leading 1. */
    if (nd == 10 && k == 3 && nm->glen[0] == 3 && nm->glen[1] == 3 && nm->glen[2] == 4)
        return d[0] >= 2 && d[3] >= 2;
    if (nd == 11 && k == 4 && nm->glen[0] == 1 && nm->glen[1] == 3 && nm->glen[2] == 3 &&
        nm->glen[3] == 4)
        return d[0] == 1 && d[1] >= 2 && d[4] >= 2;
    /* National numbers with a trunk prefix 0 (UK, FR, DE, ...), grouped. */
    if (d[0] == 0 && d[1] != 0 && nd >= 10 && nd <= 11 && k >= 2 && k <= 5) {
        for (size_t g = 0; g < k; g++) {
            if (nm->glen[g] < 2)
                return 0;
        }
        return 1;
    }
    return 0;
}

/* Classifies the first k groups of nm; -1 when they are nothing known. */
static int pii_num_classify(const struct pii_num *nm, size_t k)
{
    size_t nd = nm->gfirst[k - 1] + nm->glen[k - 1];
    if (!nm->plus && !nm->parens) {
        if (k == 3 && nm->glen[0] == 3 && nm->glen[1] == 2 && nm->glen[2] == 4 &&
            nm->sep[0] == '-' && nm->sep[1] == '-')
            return pii_ssn_valid(nm->d) ? PII_US_SSN : -1;
        if (nd >= 13 && nd <= 19 && pii_card_shape(nm, k) && pii_card_iin(nm->d, nd) &&
            pii_luhn(nm->d, nd))
            return PII_CARD;
    }
    return pii_phone(nm, k, nd) ? PII_PHONE : -1;
}

static void pii_num_redact(const struct pii_num *nm, size_t nd, int type, char *out, size_t cap)
{
    const char *mask = type == PII_CARD ? "****" : type == PII_US_SSN ? "***-**-**" : "***";
    snprintf(out, cap, "%s%s%u%u", nm->plus ? "+" : "", mask, nm->d[nd - 2], nm->d[nd - 1]);
}

/* The index after the run of digits at or after w[j]. */
static size_t pii_skip_digits(const uint8_t *w, size_t n, size_t j)
{
    while (j < n && !pii_digit(w[j]))
        j++;
    while (j < n && pii_digit(w[j]))
        j++;
    return j;
}

/* The value of k decimal digits written at p. */
static unsigned pii_text_value(const uint8_t *p, size_t k)
{
    unsigned v = 0;
    for (size_t i = 0; i < k; i++)
        v = v * 10 + (unsigned)(p[i] - '0');
    return v;
}

/* Bytes a number candidate can span: digits and its separators. */
static const uint8_t pii_num_span[256] = {
    ['0' ... '9'] = 2, [' '] = 1, ['-'] = 1, ['.'] = 1, ['('] = 1, [')'] = 1, ['+'] = 1,
};

/* Cheap tests that rule out most numbers in data (amounts, counts, ids,
 * dates) before the full parse: 1 when w[at] cannot start a finding. */
static int pii_number_unlikely(const uint8_t *w, size_t n, size_t at, size_t *resume)
{
    size_t j = at + (w[at] == '+' || w[at] == '(');
    size_t run_end = j;
    while (run_end < n && pii_digit(w[run_end]))
        run_end++;
    *resume = run_end > at ? run_end : at + 1;
    uint8_t c = run_end < n ? w[run_end] : 0;
    int more = (c == ' ' || c == '-' || c == '.' || c == ')') && run_end + 1 < n &&
               pii_num_span[w[run_end + 1]] != 0;
    /* One group of digits alone can only be a card number (or E.164). */
    if (!more && w[at] != '+' && (run_end - j < 13 || run_end - j > 19))
        return 1;
    /* A date: YYYY-MM-DD or YYYY/MM/DD. */
    if (run_end - j == 4 && (c == '-' || c == '/') && run_end + 5 < n &&
        pii_digit(w[run_end + 1]) && pii_digit(w[run_end + 2]) && w[run_end + 3] == c &&
        pii_digit(w[run_end + 4]) && pii_digit(w[run_end + 5])) {
        unsigned y = pii_text_value(w + j, 4), m = pii_text_value(w + run_end + 1, 2);
        if (y >= 1900 && y <= 2099 && m >= 1 && m <= 12) {
            *resume = run_end + 6;
            return 1;
        }
    }
    /* Every finding has at least 8 digits. */
    unsigned digits = 0;
    for (size_t k = at; k < n && k - at < PII_NUM_SPAN_MAX + 8 && pii_num_span[w[k]] != 0; k++)
        digits += pii_num_span[w[k]] == 2;
    return digits < 8;
}

/* A digit, '+' or '(' at w[at]. Returns where scanning resumes (> at). */
static size_t pii_match_number(struct pii_scanner *s, size_t n, size_t at)
{
    const uint8_t *w = s->w;
    if (at > 0 && pii_num_glued(w[at - 1]))
        return pii_digit(w[at]) ? pii_skip_digits(w, n, at) : at + 1;
    size_t resume;
    if (pii_number_unlikely(w, n, at, &resume))
        return resume;
    struct pii_num nm;
    nm.nd = nm.ng = 0;
    nm.plus = nm.parens = nm.overflow = 0;
    size_t j = at;
    if (w[at] == '+') {
        if (at + 1 >= n || (!pii_digit(w[at + 1]) && w[at + 1] != '('))
            return at + 1;
        nm.plus = 1;
        j++;
    } else if (w[at] == '(' && (at + 1 >= n || !pii_digit(w[at + 1]))) {
        return at + 1;
    }
    pii_num_collect(w, n, j, &nm);
    /* Longest prefix of whole groups that is a finding wins. */
    for (size_t k = nm.ng; k >= 1; k--) {
        if (k == nm.ng && (nm.overflow || pii_num_glued_right(w, n, nm.gend[k - 1])))
            continue;
        size_t nd = nm.gfirst[k - 1] + nm.glen[k - 1];
        if (nd < 2)
            break;
        int type = pii_num_classify(&nm, k);
        if (type >= 0) {
            char red[PII_SAMPLE_MAX] = "";
            if (pii_sample_wanted(s, (enum pii_type)type))
                pii_num_redact(&nm, nd, type, red, sizeof(red));
            pii_found(s, (enum pii_type)type, at, red);
            return nm.gend[k - 1];
        }
    }
    return pii_skip_digits(w, n, at);
}

/* ------------------------------------------------------------------ letters */

struct pii_iban_len {
    char cc[3];
    uint8_t len;
};

static const struct pii_iban_len pii_iban_table[] = {
    {"AD", 24}, {"AE", 23}, {"AT", 20}, {"BE", 16}, {"BG", 22}, {"BH", 22}, {"BR", 29}, {"CH", 21},
    {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DK", 18}, {"EE", 20}, {"ES", 24}, {"FI", 18}, {"FO", 18},
    {"FR", 27}, {"GB", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"HR", 21}, {"HU", 28}, {"IE", 22},
    {"IL", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LI", 21},
    {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MT", 31}, {"NL", 18}, {"NO", 15}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SE", 24},
    {"SI", 19}, {"SK", 24}, {"SM", 27}, {"TN", 24}, {"TR", 26}, {"UA", 29},
};

#define PII_IBAN_MAX 34

/* Country code at w[at]. Returns the index after the IBAN, or 0. */
static size_t pii_match_iban(struct pii_scanner *s, size_t n, size_t at)
{
    const uint8_t *w = s->w;
    if (at + 4 > n || !pii_digit(w[at + 2]) || !pii_digit(w[at + 3]))
        return 0;
    size_t len = 0;
    for (size_t k = 0; k < sizeof(pii_iban_table) / sizeof(pii_iban_table[0]); k++) {
        if (pii_iban_table[k].cc[0] == w[at] && pii_iban_table[k].cc[1] == w[at + 1])
            len = pii_iban_table[k].len;
    }
    if (len == 0)
        return 0;
    /* Electronic form, or printed in groups of four separated by one space. */
    uint8_t c[PII_IBAN_MAX];
    size_t got = 0, j = at;
    while (got < len && j < n) {
        if (pii_digit(w[j]) || pii_upper(w[j])) {
            c[got++] = w[j++];
        } else if (w[j] == ' ' && got % 4 == 0 && j + 1 < n &&
                   (pii_digit(w[j + 1]) || pii_upper(w[j + 1]))) {
            j++;
        } else {
            break;
        }
    }
    if (got != len || (j < n && pii_alnum(w[j])))
        return 0;
    unsigned r = 0;
    for (size_t k = 0; k < len; k++) {
        uint8_t ch = c[(k + 4) % len];
        r = pii_digit(ch) ? (r * 10 + (unsigned)(ch - '0')) % 97
                          : (r * 100 + (unsigned)(ch - 'A' + 10)) % 97;
    }
    if (r != 1)
        return 0;
    char red[PII_SAMPLE_MAX] = "";
    if (pii_sample_wanted(s, PII_IBAN))
        snprintf(red, sizeof(red), "%c%c****%c%c", c[0], c[1], c[len - 2], c[len - 1]);
    pii_found(s, PII_IBAN, at, red);
    return j;
}

/* UK National Insurance number: AB 12 34 56 C (spaces optional). */
static size_t pii_match_nino(struct pii_scanner *s, size_t n, size_t at)
{
    const uint8_t *w = s->w;
    uint8_t a = w[at], b = w[at + 1];
    if (strchr("DFIQUV", a) != NULL || strchr("DFIOQUV", b) != NULL)
        return 0;
    static const char *const banned[] = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"};
    for (size_t k = 0; k < sizeof(banned) / sizeof(banned[0]); k++) {
        if (banned[k][0] == a && banned[k][1] == b)
            return 0;
    }
    size_t j = at + 2;
    int spaced = j < n && w[j] == ' ';
    for (int pair = 0; pair < 3; pair++) {
        if (spaced) {
            if (j >= n || w[j] != ' ')
                return 0;
            j++;
        }
        if (j + 2 > n || !pii_digit(w[j]) || !pii_digit(w[j + 1]))
            return 0;
        j += 2;
    }
    if (spaced && j < n && w[j] == ' ')
        j++;
    if (j >= n || w[j] < 'A' || w[j] > 'D' || (j + 1 < n && pii_alnum(w[j + 1])))
        return 0;
    char red[PII_SAMPLE_MAX] = "";
    if (pii_sample_wanted(s, PII_UK_NINO))
        snprintf(red, sizeof(red), "********%c", w[j]);
    pii_found(s, PII_UK_NINO, at, red);
    return j + 1;
}

/* An upper-case letter at w[at]. Returns where scanning resumes (> at). */
static size_t pii_match_letters(struct pii_scanner *s, size_t n, size_t at)
{
    const uint8_t *w = s->w;
    if ((at > 0 && pii_alnum(w[at - 1])) || at + 1 >= n || !pii_upper(w[at + 1]))
        return at + 1;
    size_t end = pii_match_iban(s, n, at);
    if (end == 0)
        end = pii_match_nino(s, n, at);
    return end > at ? end : at + 2;
}

/* ------------------------------------------------------------------ rounds */

/* pii_num_glued as a table. */
static const uint8_t pii_glued_tab[256] = {
    ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['_'] = 1,
    ['.'] = 1,         [':'] = 1,         ['@'] = 1,
};

/* Bytes after a run of digits that may continue a number. */
static const uint8_t pii_num_more_tab[256] = {
    [' '] = 1, ['-'] = 1, ['.'] = 1, [')'] = 1, ['/'] = 1,
};

/*
 * The first pass classifies 64 bytes at a time into bit masks (bit k for
 * byte k of the window) and derives from them the anchors worth a closer
 * look; the bytes between them are never looked at one by one, and a window
 * is classified once however many anchors it holds.
 */
struct pii_masks {
    uint64_t dig;   /* '0'..'9' */
    uint64_t up;    /* 'A'..'Z' */
    uint64_t glue;  /* bytes a number may not follow (pii_num_glued) */
    uint64_t cont;  /* bytes after a run of digits that may continue a number */
    uint64_t other; /* '@', '+', '(': always anchors */
    uint64_t span;  /* bytes a number candidate can span (pii_num_span) */
};

#ifdef __SSE2__
/* Bytes of x in [lo, lo + span], as a vector of 0xff / 0x00. */
static __m128i pii_range16(__m128i x, char lo, char span)
{
    __m128i d = _mm_sub_epi8(x, _mm_set1_epi8(lo));
    return _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(span)), d);
}

static __m128i pii_eq16(__m128i x, char c)
{
    return _mm_cmpeq_epi8(x, _mm_set1_epi8(c));
}

static uint64_t pii_bits16(__m128i v, int k)
{
    return (uint64_t)(unsigned)_mm_movemask_epi8(v) << (16 * k);
}

/* Classifies p[0, 64) with SSE2. */
static void pii_classify64_sse2(const uint8_t *p, struct pii_masks *m)
{
    memset(m, 0, sizeof(*m));
    for (int k = 0; k < 4; k++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        __m128i dig = pii_range16(x, '0', 9);
        __m128i up = pii_range16(x, 'A', 25);
        __m128i alpha = pii_range16(_mm_or_si128(x, _mm_set1_epi8(0x20)), 'a', 25);
        __m128i at = pii_eq16(x, '@');
        __m128i dot = pii_eq16(x, '.');
        __m128i glue = _mm_or_si128(
            _mm_or_si128(dig, alpha),
            _mm_or_si128(_mm_or_si128(at, dot), _mm_or_si128(pii_eq16(x, '_'), pii_eq16(x, ':'))));
        __m128i cont = _mm_or_si128(
            _mm_or_si128(dot, pii_eq16(x, ' ')),
            _mm_or_si128(_mm_or_si128(pii_eq16(x, '-'), pii_eq16(x, ')')), pii_eq16(x, '/')));
        __m128i plus = pii_eq16(x, '+'), open = pii_eq16(x, '(');
        __m128i other = _mm_or_si128(at, _mm_or_si128(plus, open));
        __m128i span = _mm_or_si128(
            _mm_or_si128(_mm_or_si128(dig, dot), _mm_or_si128(plus, open)),
            _mm_or_si128(_mm_or_si128(pii_eq16(x, ' '), pii_eq16(x, '-')), pii_eq16(x, ')')));
        m->span |= pii_bits16(span, k);
        m->dig |= pii_bits16(dig, k);
        m->up |= pii_bits16(up, k);
        m->glue |= pii_bits16(glue, k);
        m->cont |= pii_bits16(cont, k);
        m->other |= pii_bits16(other, k);
    }
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define PII_HAVE_AVX2 1
__attribute__((target("avx2"))) static __m256i pii_range32(__m256i x, char lo, char span)
{
    __m256i d = _mm256_sub_epi8(x, _mm256_set1_epi8(lo));
    return _mm256_cmpeq_epi8(_mm256_min_epu8(d, _mm256_set1_epi8(span)), d);
}

__attribute__((target("avx2"))) static __m256i pii_eq32(__m256i x, char c)
{
    return _mm256_cmpeq_epi8(x, _mm256_set1_epi8(c));
}

__attribute__((target("avx2"))) static uint64_t pii_bits32(__m256i v, int k)
{
    return (uint64_t)(uint32_t)_mm256_movemask_epi8(v) << (32 * k);
}

/* Classifies p[0, 64) with AVX2 (same masks as the SSE2 version). */
__attribute__((target("avx2"))) static void pii_classify64_avx2(const uint8_t *p,
                                                                struct pii_masks *m)
{
    memset(m, 0, sizeof(*m));
    for (int k = 0; k < 2; k++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32 * k));
        __m256i dig = pii_range32(x, '0', 9);
        __m256i up = pii_range32(x, 'A', 25);
        __m256i alpha = pii_range32(_mm256_or_si256(x, _mm256_set1_epi8(0x20)), 'a', 25);
        __m256i at = pii_eq32(x, '@');
        __m256i dot = pii_eq32(x, '.');
        __m256i glue =
            _mm256_or_si256(_mm256_or_si256(dig, alpha),
                            _mm256_or_si256(_mm256_or_si256(at, dot),
                                            _mm256_or_si256(pii_eq32(x, '_'), pii_eq32(x, ':'))));
        __m256i cont = _mm256_or_si256(
            _mm256_or_si256(dot, pii_eq32(x, ' ')),
            _mm256_or_si256(_mm256_or_si256(pii_eq32(x, '-'), pii_eq32(x, ')')), pii_eq32(x, '/')));
        __m256i plus = pii_eq32(x, '+'), open = pii_eq32(x, '(');
        __m256i other = _mm256_or_si256(at, _mm256_or_si256(plus, open));
        __m256i span = _mm256_or_si256(
            _mm256_or_si256(_mm256_or_si256(dig, dot), _mm256_or_si256(plus, open)),
            _mm256_or_si256(_mm256_or_si256(pii_eq32(x, ' '), pii_eq32(x, '-')), pii_eq32(x, ')')));
        m->span |= pii_bits32(span, k);
        m->dig |= pii_bits32(dig, k);
        m->up |= pii_bits32(up, k);
        m->glue |= pii_bits32(glue, k);
        m->cont |= pii_bits32(cont, k);
        m->other |= pii_bits32(other, k);
    }
}
#endif

#ifndef __SSE2__
/* Classifies p[0, 64) one byte at a time (no vector unit). */
static void pii_classify64_scalar(const uint8_t *p, struct pii_masks *m)
{
    memset(m, 0, sizeof(*m));
    for (int k = 0; k < 64; k++) {
        uint8_t t = pii_trigger[p[k]];
        uint64_t b = 1ull << k;
        m->dig |= t == T_DIGIT ? b : 0;
        m->up |= t == T_UPPER ? b : 0;
        m->glue |= pii_glued_tab[p[k]] ? b : 0;
        m->cont |= pii_num_more_tab[p[k]] ? b : 0;
        m->other |= (t == T_AT || t == T_PLUS || t == T_PAREN) ? b : 0;
        m->span |= pii_num_span[p[k]] ? b : 0;
    }
}
#endif

/*
 * Bit k set when byte k of the window may be an anchor: '@', '+', '(', an
 * upper-case letter followed by another (or at the window's end), a digit
 * that starts a run (not preceded by a letter, digit, '_', '.', ':' or '@';
 * prev is the byte before the window, 0 at the start) unless the run is at
 * most 12 digits long and ends inside the window at a byte that cannot
 * continue a number (pii_scan skips such runs too). A superset of what the
 * matchers accept: every anchor is checked again byte by byte.
 */
static inline __attribute__((always_inline)) uint64_t pii_window_anchors(const struct pii_masks *m,
                                                                         uint8_t prev)
{
    uint64_t pairs = m->up & ((m->up >> 1) | (1ull << 63));
    uint64_t starts = m->dig & ~((m->glue << 1) | (uint64_t)pii_glued_tab[prev]);
    /* The byte after each run that starts here (lost past the window: unknown). */
    uint64_t after = (m->dig + starts) & ~m->dig;
    uint64_t ended = (after & ~m->cont) >> 1;
    /* Marks the digits up to 11 before each last digit, within its run:
     * steps of 1, 2, 4 and 4 over runs of 2, 4 and 4 digits. */
    uint64_t d2 = m->dig & (m->dig >> 1), d4 = d2 & (d2 >> 2);
    ended |= (ended >> 1) & m->dig;
    ended |= (ended >> 2) & d2;
    ended |= (ended >> 4) & d4;
    ended |= (ended >> 4) & d4;
    return (starts & ~ended) | pairs | m->other;
}

/*
 * 1 when the anchor at bit k of the window is a digit, '+' or '(' whose
 * number span (pii_num_span bytes from it) ends inside the window, within
 * the bytes pii_number_unlikely counts, with fewer than 8 digits: no number
 * finding has fewer, so it is skipped without a look (decimals, times, ...).
 */
static inline __attribute__((always_inline)) int pii_window_short_number(const struct pii_masks *m,
                                                                         unsigned k)
{
    if (((m->dig | m->other) >> k & 1) == 0 || (m->other >> k & 1 && !(m->span >> k & 1)))
        return 0; /* '@' is in other but not in span */
    uint64_t rest = ~m->span >> k;
    if (rest == 0)
        return 0; /* the span goes on past the window */
    unsigned len = (unsigned)__builtin_ctzll(rest);
    if (len > PII_NUM_SPAN_MAX + 8)
        return 0;
    uint64_t digits = (m->dig >> k) & ((1ull << len) - 1);
    for (int d = 0; d < 7 && digits != 0; d++)
        digits &= digits - 1; /* drops the lowest digit */
    return digits == 0;
}

/* Examines a possible anchor at w[i] of w[0, n). Returns where the next
 * anchor may be (> i; findings are skipped over whole). */
static inline size_t pii_anchor(struct pii_scanner *s, size_t n, size_t i)
{
    const uint8_t *w = s->w;
    uint8_t t = pii_trigger[w[i]];
    if (t == T_NONE)
        return i + 1;
    if (t == T_DIGIT) {
        /* Most numbers in data are short and end at a delimiter: skip
         * them here without the full parse. */
        size_t e = i + 1;
        while (e < n && pii_digit(w[e]))
            e++;
        if ((i > 0 && pii_glued_tab[w[i - 1]]) ||
            (e < n && !pii_num_more_tab[w[e]] && (e - i < 13 || e - i > 19)))
            return e;
    } else if (t == T_UPPER &&
               ((i > 0 && pii_alnum(w[i - 1])) || i + 1 >= n || !pii_upper(w[i + 1]))) {
        return i + 1;
    }
    size_t next;
    if (t == T_AT) {
        next = pii_match_email(s, n, i);
        next = next > i ? next : i + 1;
    } else if (t == T_UPPER) {
        next = pii_match_letters(s, n, i);
    } else {
        next = pii_match_number(s, n, i);
    }
    return next;
}

typedef void (*pii_classify_fn)(const uint8_t *p, struct pii_masks *m);

/* Examines the anchors in w[start, limit) of w[0, n), classifying windows
 * with classify (inlined into each instance below). Returns where the next
 * anchor may be (findings are skipped over whole). */
static inline __attribute__((always_inline)) size_t
pii_scan_with(struct pii_scanner *s, size_t n, size_t start, size_t limit, pii_classify_fn classify)
{
    const uint8_t *w = s->w;
    size_t i = start;
    while (i + 64 <= limit) {
        struct pii_masks m;
        classify(w + i, &m);
        uint64_t bits = pii_window_anchors(&m, i > 0 ? w[i - 1] : 0);
        size_t base = i;
        i = base + 64;
        while (bits != 0) {
            unsigned k = (unsigned)__builtin_ctzll(bits);
            size_t at = base + k;
            size_t next = pii_window_short_number(&m, k) ? at + 1 : pii_anchor(s, n, at);
            if (next >= base + 64) {
                i = next;
                break;
            }
            bits &= ~0ull << (next - base);
        }
    }
    /* The last few bytes of the round, one by one. */
    while (i < limit)
        i = pii_anchor(s, n, i);
    return i;
}

#ifdef PII_HAVE_AVX2
__attribute__((target("avx2"))) static size_t pii_scan_avx2(struct pii_scanner *s, size_t n,
                                                            size_t start, size_t limit)
{
    return pii_scan_with(s, n, start, limit, pii_classify64_avx2);
}
#endif

static size_t pii_scan_base(struct pii_scanner *s, size_t n, size_t start, size_t limit)
{
#ifdef __SSE2__
    return pii_scan_with(s, n, start, limit, pii_classify64_sse2);
#else
    return pii_scan_with(s, n, start, limit, pii_classify64_scalar);
#endif
}

/* pii_scan_with with the widest vector unit this CPU has. */
static size_t pii_scan(struct pii_scanner *s, size_t n, size_t start, size_t limit)
{
#ifdef PII_HAVE_AVX2
    if (__builtin_cpu_supports("avx2"))
        return pii_scan_avx2(s, n, start, limit);
#endif
    return pii_scan_base(s, n, start, limit);
}

/* Counts control bytes of the first PII_SNIFF_BYTES; NUL marks binary. */
static void pii_sniff(struct pii_scanner *s, const uint8_t *buf, size_t len)
{
    if (s->fed >= PII_SNIFF_BYTES)
        return;
    size_t n = PII_SNIFF_BYTES - (size_t)s->fed;
    if (n > len)
        n = len;
    for (size_t k = 0; k < n; k++) {
        uint8_t c = buf[k];
        if (c == 0) {
            s->binary = 1;
            return;
        }
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v' &&
             c != 0x1b) ||
            c == 0x7f)
            s->controls++;
    }
}

/* Whether the sniffed bytes say binary (decided once enough were seen). */
static int pii_sniff_binary(const struct pii_scanner *s, uint64_t seen)
{
    return s->binary || (seen > 0 && s->controls * 100 > seen);
}

static void pii_drop_findings(struct pii_scanner *s)
{
    s->binary = 1;
    memset(s->counts, 0, sizeof(s->counts));
    memset(s->samples, 0, sizeof(s->samples));
    s->n_samples = 0;
}

/* One round over w[0, n) (n = kept bytes + a new piece). */
static void pii_round(struct pii_scanner *s, size_t n, int final)
{
    size_t limit = final ? n : (n > PII_FWD ? n - PII_FWD : 0);
    size_t start = s->from > s->skip ? s->from : s->skip;
    size_t resume = start;
    if (start < limit)
        resume = pii_scan(s, n, start, limit);
    if (limit < start)
        limit = start;
    size_t keep = n < PII_KEEP ? n : PII_KEEP;
    size_t shift = n - keep;
    if (shift > limit)
        shift = limit; /* never drop bytes whose anchors are still to come */
    keep = n - shift;
    memmove(s->w, s->w + shift, keep);
    s->len = keep;
    s->base += shift;
    s->from = limit - shift;
    s->skip = resume > shift ? resume - shift : 0;
}

void pii_scanner_feed(struct pii_scanner *s, const uint8_t *buf, size_t len)
{
    if (s->finished || s->binary)
        return;
    while (len > 0) {
        size_t piece = len < PII_PIECE ? len : PII_PIECE;
        pii_sniff(s, buf, piece);
        s->fed += piece;
        if (s->fed >= PII_SNIFF_BYTES && pii_sniff_binary(s, PII_SNIFF_BYTES)) {
            pii_drop_findings(s);
            return;
        }
        if (s->binary) {
            pii_drop_findings(s);
            return;
        }
        memcpy(s->w + s->len, buf, piece);
        pii_round(s, s->len + piece, 0);
        buf += piece;
        len -= piece;
    }
}

void pii_scanner_finish(struct pii_scanner *s)
{
    if (s->finished)
        return;
    s->finished = 1;
    uint64_t seen = s->fed < PII_SNIFF_BYTES ? s->fed : PII_SNIFF_BYTES;
    if (s->binary || pii_sniff_binary(s, seen)) {
        pii_drop_findings(s);
        return;
    }
    pii_round(s, s->len, 1);
    memset(s->w, 0, PII_KEEP + PII_PIECE);
    s->len = 0;
}

int pii_scanner_is_text(const struct pii_scanner *s)
{
    return !s->binary;
}

uint64_t pii_scanner_count(const struct pii_scanner *s, enum pii_type t)
{
    return (unsigned)t < PII_TYPE_COUNT ? s->counts[t] : 0;
}

uint64_t pii_scanner_total(const struct pii_scanner *s)
{
    uint64_t n = 0;
    for (int t = 0; t < PII_TYPE_COUNT; t++)
        n += s->counts[t];
    return n;
}

json_t *pii_scanner_report(const struct pii_scanner *s)
{
    json_t *types = json_object();
    json_t *samples = json_array();
    json_t *out = json_object();
    if (types == NULL || samples == NULL || out == NULL) {
        json_decref(types);
        json_decref(samples);
        json_decref(out);
        return NULL;
    }
    for (int t = 0; t < PII_TYPE_COUNT; t++) {
        if (s->counts[t] > 0)
            json_object_set_new(types, pii_names[t], json_integer((json_int_t)s->counts[t]));
    }
    for (size_t k = 0; k < s->n_samples; k++)
        json_array_append_new(
            samples, json_pack("{s:s, s:I, s:s}", "type", pii_names[s->samples[k].type], "offset",
                               (json_int_t)s->samples[k].offset, "redacted", s->samples[k].text));
    json_object_set_new(out, "detected", json_boolean(pii_scanner_total(s) > 0));
    json_object_set_new(out, "types", types);
    json_object_set_new(out, "samples", samples);
    return out;
}

/* Whether kind is an item of the comma-separated list. */
static int pii_list_has(const char *list, const char *kind)
{
    size_t kl = strlen(kind);
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e != '\0' && *e != ',' && *e != ' ')
            e++;
        if ((size_t)(e - p) == kl && strncmp(p, kind, kl) == 0)
            return 1;
        p = e;
    }
    return 0;
}

int pii_scan_wanted(struct meta *m, const char *kind)
{
    char val[256];
    if (kind == NULL)
        return 0;
    if (meta_setting_get(m, PII_SETTING_SCAN, val, sizeof(val)) == ERR_OK && strcmp(val, "on") != 0)
        return 0;
    if (meta_setting_get(m, PII_SETTING_KINDS, val, sizeof(val)) != ERR_OK)
        snprintf(val, sizeof(val), "%s", PII_DEFAULT_KINDS);
    return pii_list_has(val, kind);
}
