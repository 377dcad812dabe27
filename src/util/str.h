/*
 * Bounded string building for the per-request paths, where snprintf's
 * format parsing shows up in profiles. Each function writes at most cap
 * bytes (cap > 0) including the terminating NUL, cuts what does not fit
 * (as snprintf does) and returns the length written.
 */
#ifndef COFFER_UTIL_STR_H
#define COFFER_UTIL_STR_H

#include <stddef.h>
#include <stdint.h>

/* dst = src. */
size_t str_copy(char *dst, size_t cap, const char *src);
/* dst = the strings given, up to a NULL, one after the other. */
size_t str_concat(char *dst, size_t cap, ...);
/* dst = v in decimal. */
size_t str_u64(char *dst, size_t cap, uint64_t v);
/* dst = a, then "@", then n in decimal (an artifact reference PATH@N). */
size_t str_ref(char *dst, size_t cap, const char *a, uint64_t n);

#endif
