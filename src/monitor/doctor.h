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
