#include "util/duration.h"

#include <errno.h>
#include <stdlib.h>

/* Seconds per unit letter; 0 for a letter that is not a unit. */
static long long duration_unit(char u)
{
    switch (u) {
    case 's':
        return 1;
    case 'm':
        return 60;
    case 'h':
        return 3600;
    case 'd':
        return 86400;
    case 'w':
        return 7 * 86400;
    default:
        return 0;
    }
}

int duration_parse(const char *text, long long max_seconds, int64_t *out)
{
    /* strtoll would also take leading space and a sign: refuse them first. */
    if (text == NULL || *text < '0' || *text > '9' || max_seconds <= 0)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || v <= 0 || v > max_seconds)
        return -1;
    long long mul = 1;
    if (*end != '\0') {
        if (end[1] != '\0' || (mul = duration_unit(*end)) == 0)
            return -1;
    }
    /* Compare before multiplying so that the product cannot overflow. */
    if (v > max_seconds / mul)
        return -1;
    *out = (int64_t)(v * mul);
    return 0;
}
