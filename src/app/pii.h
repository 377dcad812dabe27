/*
 * pii: a streaming scan of uploaded text for personal data (e-mail
 * addresses, phone numbers, payment card numbers, IBANs, US social security
 * numbers and UK national insurance numbers).
 *
 * The scanner sees the upload chunk by chunk, as the push handler receives
 * it, and never holds more than one 64 KiB piece plus a few hundred bytes of
 * the previous one, so a match split across chunks is still found. Matchers
 * are hand-written, bounded in the bytes they read, and run only at
 * candidate positions ('@', the start of a run of digits, '+', '(', an
 * upper-case letter followed by another).
 *
 * Only counts, stream offsets and redacted samples (never a full value)
 * leave the scanner. docs/COMPLIANCE.md lists what it cannot catch.
 */
#ifndef COFFER_APP_PII_H
#define COFFER_APP_PII_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct meta;

enum pii_type { PII_EMAIL, PII_PHONE, PII_CARD, PII_IBAN, PII_US_SSN, PII_UK_NINO, PII_TYPE_COUNT };

/* Settings (meta_setting_get): "on" (default) or "off"; the kinds scanned. */
#define PII_SETTING_SCAN "pii.scan"
#define PII_SETTING_KINDS "pii.kinds"
#define PII_DEFAULT_KINDS "dataset,features"

/* The first PII_SNIFF_BYTES decide whether the content is text: a NUL byte,
 * or more than 1% other control bytes, and it is treated as binary. */
#define PII_SNIFF_BYTES 8192
#define PII_SAMPLES_MAX 8
#define PII_SAMPLES_PER_TYPE 2
#define PII_SAMPLE_MAX 48

struct pii_scanner;

/* Allocates a scanner (about 66 KiB). Free with pii_scanner_free.
 * Errors: ERR_INTERNAL (out of memory). */
enum err pii_scanner_new(struct pii_scanner **out);

/* Scans the next len bytes of the stream. Never fails; after the content
 * has been found to be binary it returns at once. */
void pii_scanner_feed(struct pii_scanner *s, const uint8_t *buf, size_t len);

/* Scans what was held back at the end of the stream. Call once, after the
 * last pii_scanner_feed; further feeds are ignored. */
void pii_scanner_finish(struct pii_scanner *s);

/* 1 once the content is known (or, before PII_SNIFF_BYTES, assumed) to be
 * text; 0 when it was found to be binary and was not scanned. */
int pii_scanner_is_text(const struct pii_scanner *s);

/* Findings of type t, and of all types. Binary content has none. */
uint64_t pii_scanner_count(const struct pii_scanner *s, enum pii_type t);
uint64_t pii_scanner_total(const struct pii_scanner *s);

/* A new JSON object {"detected": bool, "types": {NAME: count, ...},
 * "samples": [{"type", "offset", "redacted"}, ...]} (types with findings
 * only). The caller decrefs. NULL on allocation failure. */
json_t *pii_scanner_report(const struct pii_scanner *s);

/* NULL is a no-op. */
void pii_scanner_free(struct pii_scanner *s);

/* "email", "phone", "card", "iban", "us_ssn", "uk_nino". */
const char *pii_type_name(enum pii_type t);

/* Whether uploads of kind should be scanned, from the settings in m
 * (pii.scan, pii.kinds; defaults: on, dataset and features). */
int pii_scan_wanted(struct meta *m, const char *kind);

#endif
