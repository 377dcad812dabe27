/*
 * certgen: generation of the server's TLS material at `coffer init`: a
 * private CA and a server certificate signed by it, both ECDSA P-256 with
 * SHA-256 signatures (OpenSSL 3). Clients trust DIR/tls/ca.pem, identified
 * out of band by the SHA-256 fingerprint of its DER encoding.
 */
#ifndef COFFER_TLS_CERTGEN_H
#define COFFER_TLS_CERTGEN_H

#include <stddef.h>

#include "util/err.h"

#define TLS_CA_CERT_FILE "ca.pem"
#define TLS_CA_KEY_FILE "ca.key"
#define TLS_SERVER_CERT_FILE "server.pem"
#define TLS_SERVER_KEY_FILE "server.key"

#define TLS_CA_DAYS 3650
#define TLS_SERVER_DAYS 825
/* Most extra subjectAltName entries accepted, and longest DNS name. */
#define TLS_EXTRA_SANS_MAX 64
#define TLS_HOSTNAME_MAX 253

/*
 * Creates ca.pem, ca.key, server.pem and server.key in tls_dir, which must
 * exist. The CA is valid for TLS_CA_DAYS days (CA:TRUE, pathlen:0, keyUsage
 * keyCertSign and cRLSign); the server certificate for TLS_SERVER_DAYS days
 * (CA:FALSE, digitalSignature, serverAuth) with subjectAltName DNS:localhost,
 * IP:127.0.0.1, IP:::1 and each of the n_extra entries of extra_sans: an
 * entry that parses as an IPv4 or IPv6 address becomes an IP name, any other
 * must be a hostname (letters, digits, '-' and '.', optionally starting with
 * "*.", at most TLS_HOSTNAME_MAX characters) and becomes a DNS name.
 *
 * Each file is written under a temporary name, fsynced and renamed into
 * place without replacing anything; key files are created with mode 0600.
 * On success, fingerprint_out receives the lower-case hex SHA-256 of the CA
 * certificate's DER encoding.
 *
 * Returns ERR_INVALID for a bad SAN or too many of them, ERR_CONFLICT if
 * any of the four files already exists (nothing is written then), ERR_IO on
 * a file system failure and ERR_INTERNAL on a cryptographic failure. On any
 * failure, the files this call created are removed again.
 */
enum err tls_generate(const char *tls_dir, const char *const *extra_sans, size_t n_extra,
                      char fingerprint_out[65]);

/*
 * Writes into out the lower-case hex SHA-256 of the DER encoding of the
 * first certificate in the PEM file cert_pem_path. Returns ERR_IO if the
 * file cannot be opened, ERR_INVALID if it holds no PEM certificate.
 */
enum err tls_fingerprint_file(const char *cert_pem_path, char out[65]);

#endif
