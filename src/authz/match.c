/*
 * authz match: the arena that holds compiled snapshots, the action table,
 * wildcard matching and the strict parsers for numbers, dates, booleans and
 * IP addresses used both at validation time and at decision time. Nothing
 * here allocates except the arena functions.
 */
#include "authz/authz_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

/* ---- Arena ------------------------------------------------------------- */

#define AZ_CHUNK_SIZE 16384

struct az_chunk {
    struct az_chunk *next;
    size_t used;
    size_t cap;
    alignas(max_align_t) unsigned char data[];
};

void *az_alloc(struct az_arena *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + align - 1) & ~(align - 1);
    struct az_chunk *c = a->head;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > AZ_CHUNK_SIZE ? n : AZ_CHUNK_SIZE;
        c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void *az_calloc(struct az_arena *a, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / 4 / size)
        return NULL;
    return az_alloc(a, count * size);
}

char *az_strndup(struct az_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = az_alloc(a, n + 1);
    if (p != NULL && n > 0)
        memcpy(p, s, n);
    return p;
}

void az_arena_free(struct az_arena *a)
{
    struct az_chunk *c = a->head;
    while (c != NULL) {
        struct az_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

/* ---- Actions ------------------------------------------------------------ */

const char *const az_action_names[AZ_N_ACTIONS] = {
    "artifact:List",    "artifact:Read",    "artifact:Download",   "artifact:Write",
    "artifact:Delete",  "artifact:Label",   "artifact:Declassify", "artifact:Share",
    "artifact:Promote", "artifact:Approve", "artifact:Erase",      "artifact:Hold",
    "audit:Read",       "admin:Users",      "admin:Policies",      "admin:Keys",
};

int az_action_id(const char *s, size_t n)
{
    for (int i = 0; i < AZ_N_ACTIONS; i++) {
        if (az_ieq(s, n, az_action_names[i], strlen(az_action_names[i])))
            return i;
    }
    return -1;
}

bool az_action_is_clearance_read(int id)
{
    return id == 0 || id == 1 || id == 2; /* List, Read, Download */
}

int authz_action_known(const char *action)
{
    return action != NULL && az_action_id(action, strlen(action)) >= 0;
}

/* ---- Strings and wildcards ------------------------------------------------ */

static unsigned char az_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool az_ieq(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++) {
        if (az_lower((unsigned char)a[i]) != az_lower((unsigned char)b[i]))
            return false;
    }
    return true;
}

/*
 * Iterative glob with single-star backtracking: O(len(p) * len(s)) in the
 * worst case, no recursion, no allocation. Correct because a later '*'
 * subsumes every earlier backtracking point.
 */
bool az_glob(const char *p, size_t pn, const char *s, size_t sn, bool icase)
{
    size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;
    while (si < sn) {
        if (pi < pn && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < pn &&
                   (p[pi] == '?' || p[pi] == s[si] ||
                    (icase && az_lower((unsigned char)p[pi]) == az_lower((unsigned char)s[si])))) {
            pi++;
            si++;
        } else if (star != SIZE_MAX) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

/* ---- Numbers, booleans --------------------------------------------------- */

static bool az_digit(char c)
{
    return c >= '0' && c <= '9';
}

int az_parse_number(const char *s, size_t n, double *out)
{
    char buf[64];
    size_t i = 0;
    if (n == 0 || n >= sizeof(buf))
        return -1;
    if (s[i] == '-' || s[i] == '+')
        i++;
    size_t d0 = i;
    while (i < n && az_digit(s[i]))
        i++;
    if (i == d0)
        return -1;
    if (i < n && s[i] == '.') {
        size_t f0 = ++i;
        while (i < n && az_digit(s[i]))
            i++;
        if (i == f0)
            return -1;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t e0 = i;
        while (i < n && az_digit(s[i]))
            i++;
        if (i == e0)
            return -1;
    }
    if (i != n)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    double v = strtod(buf, NULL);
    if (!isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int az_parse_bool(const char *s, size_t n, bool *out)
{
    if (az_ieq(s, n, "true", 4)) {
        *out = true;
        return 0;
    }
    if (az_ieq(s, n, "false", 5)) {
        *out = false;
        return 0;
    }
    return -1;
}

/* ---- Dates ----------------------------------------------------------------- */

/* Reads exactly k digits at s[*i]. */
static int az_fixed_digits(const char *s, size_t n, size_t *i, int k, int *out)
{
    int v = 0;
    for (int j = 0; j < k; j++) {
        if (*i >= n || !az_digit(s[*i]))
            return -1;
        v = v * 10 + (s[*i] - '0');
        (*i)++;
    }
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t az_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int az_days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

static int az_parse_epoch(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == n || n - i > 15) /* 15 digits: far beyond year 9999, no overflow */
        return -1;
    int64_t v = 0;
    for (; i < n; i++) {
        if (!az_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

static int az_parse_zone(const char *s, size_t n, size_t *i, int64_t *offset)
{
    *offset = 0;
    if (*i == n)
        return 0; /* no zone: UTC */
    if (s[*i] == 'Z' || s[*i] == 'z') {
        (*i)++;
        return 0;
    }
    if (s[*i] != '+' && s[*i] != '-')
        return -1;
    int sign = s[*i] == '-' ? -1 : 1;
    int hh, mm;
    (*i)++;
    if (az_fixed_digits(s, n, i, 2, &hh) != 0)
        return -1;
    if (*i < n && s[*i] == ':')
        (*i)++;
    if (az_fixed_digits(s, n, i, 2, &mm) != 0 || hh > 23 || mm > 59)
        return -1;
    *offset = sign * (int64_t)(hh * 3600 + mm * 60);
    return 0;
}

int az_parse_date(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int y, mo, d, hh = 0, mi = 0, ss = 0;
    if (n > 64)
        return -1;
    if (n < 10 || s[4] != '-')
        return az_parse_epoch(s, n, out);
    if (az_fixed_digits(s, n, &i, 4, &y) != 0 || s[i++] != '-' ||
        az_fixed_digits(s, n, &i, 2, &mo) != 0 || i >= n || s[i++] != '-' ||
        az_fixed_digits(s, n, &i, 2, &d) != 0)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > az_days_in_month(y, mo))
        return -1;
    int64_t offset = 0;
    if (i < n) {
        if (s[i] != 'T' && s[i] != 't')
            return -1;
        i++;
        if (az_fixed_digits(s, n, &i, 2, &hh) != 0 || i >= n || s[i++] != ':' ||
            az_fixed_digits(s, n, &i, 2, &mi) != 0)
            return -1;
        if (i < n && s[i] == ':') {
            i++;
            if (az_fixed_digits(s, n, &i, 2, &ss) != 0)
                return -1;
            if (i < n && s[i] == '.') {
                size_t f0 = ++i;
                while (i < n && az_digit(s[i]))
                    i++;
                if (i == f0)
                    return -1; /* fraction ignored: instants have second resolution */
            }
        }
        if (hh > 23 || mi > 59 || ss > 59)
            return -1;
        if (az_parse_zone(s, n, &i, &offset) != 0)
            return -1;
    }
    if (i != n)
        return -1;
    *out = az_days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - offset;
    return 0;
}

/* ---- IP addresses --------------------------------------------------------- */

int az_parse_ip(const char *s, size_t n, struct authz_ip *out)
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(out, 0, sizeof(*out));
    if (memchr(buf, ':', n) != NULL) {
        if (inet_pton(AF_INET6, buf, out->addr) != 1)
            return -1;
        out->family = 6;
    } else {
        if (inet_pton(AF_INET, buf, out->addr) != 1)
            return -1;
        out->family = 4;
    }
    return 0;
}

int az_parse_cidr(const char *s, size_t n, struct az_cidr *out)
{
    const char *slash = memchr(s, '/', n);
    size_t alen = slash != NULL ? (size_t)(slash - s) : n;
    struct authz_ip ip;
    if (az_parse_ip(s, alen, &ip) != 0)
        return -1;
    unsigned max = ip.family == 4 ? 32 : 128;
    unsigned prefix = max;
    if (slash != NULL) {
        size_t i = alen + 1;
        if (i == n || n - i > 3)
            return -1;
        prefix = 0;
        for (; i < n; i++) {
            if (!az_digit(s[i]))
                return -1;
            prefix = prefix * 10 + (unsigned)(s[i] - '0');
        }
        if (prefix > max)
            return -1;
    }
    out->family = ip.family;
    memcpy(out->addr, ip.addr, sizeof(out->addr));
    out->prefix = prefix;
    return 0;
}

static bool az_prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rem = bits % 8;
    if (memcmp(a, b, bytes) != 0)
        return false;
    if (rem == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rem));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

bool az_cidr_contains(const struct az_cidr *c, const struct authz_ip *ip)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (c->family == 4 && ip->family == 6 && memcmp(ip->addr, mapped, 12) == 0)
        return az_prefix_equal(c->addr, ip->addr + 12, c->prefix); /* IPv4-mapped */
    if (c->family != ip->family)
        return false;
    return az_prefix_equal(c->addr, ip->addr, c->prefix);
}
