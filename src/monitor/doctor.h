/*
 * doctor: the checks of the running configuration behind GET /v1/doctor
 * (coffer doctor --server). It reports what is in force in this process:
 * TLS protocols and ciphers of the priority string, seccomp, the running
 * user, proxy mode and listen address, the audit log (failed closed,
 * unsigned events, age of the last signed head), the KEK rotation worker
 * and the key provider (KEK ages through keys_kek_info, sealed keyring and
 * where its master key lives), each problem as a finding with a severity
 * ("high", "medium", "low") and a fix.
 */
#ifndef COFFER_MONITOR_DOCTOR_H
#define COFFER_MONITOR_DOCTOR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct app;

/* The findings of a run of checks and their count per severity. */
struct doctor_findings {
    json_t *list; /* [{"severity", "check", "problem", "fix"}], freed by the owner */
    int high, medium, low;
};

/*
 * Appends a finding to d->list: severity sev ("high", "medium", "low" or
 * "info"; anything but high and medium counts as low), the check's name,
 * the fix, and the problem formatted from fmt (cut to 511 bytes).
 */
void doctor_finding_add(struct doctor_findings *d, const char *sev, const char *check,
                        const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * Builds the report of the running server app:
 *   {"tls": {...}, "seccomp": B, "user": {"uid": N, "root": B},
 *    "behind_proxy": B, "listen": "HOST:PORT", "audit": {...},
 *    "rotation": {...}, "keys": {...},
 *    "findings": [{"severity", "check", "problem", "fix"}], "high": N,
 *    "medium": N, "low": N}
 * On success *out is a new reference (caller decrefs). Never contains key
 * material. Errors: ERR_INTERNAL (allocation).
 */
enum err doctor_report(struct app *app, json_t **out);

/*
 * Splits a GnuTLS priority string into the protocol versions ("TLS1.3")
 * and the bulk ciphers ("AES-256-GCM") it enables, appended as strings to
 * protocols and ciphers (JSON arrays). Returns 1 when it enables a weak
 * protocol (SSL 3.0, TLS 1.0 or 1.1) or cipher (CBC, RC4, 3DES, NULL),
 * 0 otherwise.
 */
int doctor_tls_parse(const char *priority, json_t *protocols, json_t *ciphers);

#endif
