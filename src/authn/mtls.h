/*
 * mtls: service accounts authenticated by TLS client certificates. When the
 * server is started with --client-ca, TLS clients are asked for (not
 * required to present) a certificate, which GnuTLS verifies against that
 * CA bundle. A verified certificate is bound to a service account
 * explicitly, by the SHA-256 fingerprint of its DER encoding (never by its
 * subject), with roles like an API token: every decision is also taken as
 * the binding's owner (api/gate.c). The certificate's notAfter is the
 * credential's expiry; deleting the binding revokes it on the next request.
 */
#ifndef COFFER_AUTHN_MTLS_H
#define COFFER_AUTHN_MTLS_H

#include <stdint.h>

#include "http/http.h"

/* Whether the connection of r carries a client certificate at all. */
int mtls_has_certificate(const struct request *r);

/* Authenticates the client certificate of r's TLS connection and fills
 * r->who as service:NAME (auth_method "mtls", token_id = -binding id, the
 * owner's clearance and attributes, the owner's name and groups for the
 * second decision). ERR_UNAUTHENTICATED when there is no certificate, it
 * does not verify against the client CAs (unknown issuer, expired, not yet
 * valid, bad signature), it is not bound, or the owner is disabled;
 * ERR_UNAVAILABLE when the store fails. */
enum err mtls_authenticate(struct request *r);

/* Parses a SHA-256 fingerprint given as 64 hex digits, optionally in
 * colon-separated pairs (openssl x509 -fingerprint -sha256), any case.
 * 0 on success, -1 when malformed. */
int mtls_fingerprint_parse(const char *text, uint8_t out[32]);

#endif
