#include "util/str.h"

#include <stdarg.h>
#include <string.h>

/* Appends src at dst[len], within cap; returns the new length. */
static size_t str_put(char *dst, size_t cap, size_t len, const char *src, size_t n)
{
    if (len + 1 >= cap)
        return len;
    if (n > cap - 1 - len)
        n = cap - 1 - len;
    memcpy(dst + len, src, n);
    len += n;
    dst[len] = '\0';
    return len;
}

size_t str_copy(char *dst, size_t cap, const char *src)
{
    dst[0] = '\0';
    return str_put(dst, cap, 0, src, strlen(src));
}

size_t str_concat(char *dst, size_t cap, ...)
{
    va_list ap;
    va_start(ap, cap);
    size_t len = 0;
    dst[0] = '\0';
    for (const char *s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *))
        len = str_put(dst, cap, len, s, strlen(s));
    va_end(ap);
    return len;
}

size_t str_u64(char *dst, size_t cap, uint64_t v)
{
    char digits[21];
    size_t i = sizeof(digits);
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    dst[0] = '\0';
    return str_put(dst, cap, 0, digits + i, sizeof(digits) - i);
}

size_t str_ref(char *dst, size_t cap, const char *a, uint64_t n)
{
    char num[21];
    size_t nl = str_u64(num, sizeof(num), n);
    dst[0] = '\0';
    size_t len = str_put(dst, cap, 0, a, strlen(a));
    len = str_put(dst, cap, len, "@", 1);
    return str_put(dst, cap, len, num, nl);
}
