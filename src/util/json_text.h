/*
 * json_text: compact JSON text of a jansson value, written in one pass into
 * one growing buffer. The output is the same as json_dumps(v, JSON_COMPACT)
 * for every value, at a fraction of its cost (answers are serialised on
 * every request).
 */
#ifndef COFFER_UTIL_JSON_TEXT_H
#define COFFER_UTIL_JSON_TEXT_H

#include <jansson.h>
#include <stddef.h>

/* Nesting deeper than this fails (jansson's own parser stops at 2048). */
#define JSON_TEXT_DEPTH_MAX 2048

/* The text of v, NUL-terminated, to free(); its length in *len. NULL when
 * out of memory, for a value nested deeper than JSON_TEXT_DEPTH_MAX, or a
 * real that is not finite (as json_dumps). */
char *json_text(const json_t *v, size_t *len);

/* Length of the well-formed UTF-8 sequence at s (1 to 4 of the n bytes
 * there, n >= 1): no overlong forms, surrogates or code points past
 * U+10FFFF. 0 if invalid. */
size_t json_utf8_seq(const unsigned char *s, size_t n);

#endif
