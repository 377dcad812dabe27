/*
 * duration: the one parser of lengths of time written as a number and an
 * optional unit ("90s", "30m", "12h", "7d", "2w"), used by the server
 * configuration and the API (env_parse_duration) and by the CLI.
 */
#ifndef COFFER_UTIL_DURATION_H
#define COFFER_UTIL_DURATION_H

#include <stdint.h>

/* Ten years: the longest duration anything in Coffer accepts. */
#define DURATION_TEN_YEARS (10LL * 366 * 86400)

/*
 * Parses text: decimal digits (no sign, no leading space) followed by at
 * most one unit letter s, m, h, d or w (a bare number is seconds). On
 * success stores the seconds in *out and returns 0. Returns -1, leaving
 * *out alone, when text is NULL or malformed (trailing characters, two
 * letters, unknown unit), when the value is zero, overflows, or is longer
 * than max_seconds (which must be positive).
 */
int duration_parse(const char *text, long long max_seconds, int64_t *out);

#endif
