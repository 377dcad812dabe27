/*
 * pkcs11: the key provider backed by a PKCS#11 token (an HSM, or SoftHSM2
 * for tests). KEKs are AES-256 secret key objects generated inside the
 * token (CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true; CKA_EXTRACTABLE false),
 * labelled "coffer-kek-N" (the label is the KEK id Coffer records) with
 * CKA_ID holding their creation time as decimal Unix seconds. The highest N
 * is the current KEK. A DEK is wrapped with C_Encrypt under CKM_AES_GCM:
 * 12-byte random IV, AAD "coffer-dek-v1" || ad, 128-bit tag; the wrapped
 * form is IV || ciphertext || tag, the same layout as the keyring's.
 *
 * The module is loaded with dlopen and initialised with CKF_OS_LOCKING_OK;
 * one session stays logged in as the user for the provider's lifetime and
 * each operation borrows a session from a small pool, so the provider is
 * safe to call from several threads.
 *
 * Configuration, given as a PKCS#11 URI (RFC 7512 style):
 *   pkcs11:module=/usr/lib/softhsm/libsofthsm2.so;token=coffer;pin-file=/etc/coffer/pin
 * The PIN comes from pin-file (mode 0600) or, without one, from the
 * environment variable COFFER_PKCS11_PIN. It is never stored by Coffer.
 * A data directory that uses a token records the configuration (no PIN) in
 * DATA/keys/provider.json: {"provider": "pkcs11", "module", "token", "pin_file"}.
 */
#ifndef COFFER_KEYS_PKCS11_H
#define COFFER_KEYS_PKCS11_H

#include <stddef.h>
#include <stdint.h>

#include "keys/keys.h"
#include "util/err.h"

#define PKCS11_PIN_ENV "COFFER_PKCS11_PIN"
#define PKCS11_LABEL_PREFIX "coffer-kek-"
#define PKCS11_PROVIDER_FILE "keys/provider.json"

struct pkcs11_config {
    char module[1024];   /* absolute path of the PKCS#11 module */
    char token[33];      /* token label (at most 32 bytes) */
    char pin_file[1024]; /* "" when the PIN comes from COFFER_PKCS11_PIN */
};

/*
 * Parses a "pkcs11:" URI. Attributes are separated by ';', '?' or '&':
 * module (alias module-path), token, pin-file (alias pin-source, with or
 * without a "file:" prefix); values may be percent-encoded. module and
 * token are required, module must be an absolute path. On failure writes a
 * one-line reason to why (why_cap bytes). Errors: ERR_INVALID.
 */
enum err pkcs11_parse_uri(const char *uri, struct pkcs11_config *cfg, char *why, size_t why_cap);

/* What pkcs11_open does about the token's coffer KEKs. */
enum {
    PKCS11_OPEN_EXISTING = 0, /* the token must hold at least one */
    PKCS11_OPEN_CREATE = 1,   /* generate coffer-kek-1 when it holds none */
    PKCS11_OPEN_NEW = 2,      /* it must hold none (ERR_CONFLICT); generate coffer-kek-1 */
};

/*
 * Opens the token cfg names: loads the module, finds the token by label,
 * logs in with the PIN, and lists its coffer KEKs; create (PKCS11_OPEN_*)
 * says whether to generate the first one. Several stores must not share a
 * token: each destroys retired KEKs that its own database no longer uses. On success *out is
 * owned by the caller (key_provider_free, which logs out, finalises and
 * unloads the module). Only one provider per module may be open at a time
 * in a process. Errors: ERR_NOT_FOUND (module, token or, with
 * PKCS11_OPEN_EXISTING, KEK missing), ERR_CONFLICT (PKCS11_OPEN_NEW), ERR_UNAUTHENTICATED (no PIN
 * or PIN refused), ERR_FORBIDDEN (PIN file readable by others), ERR_INTERNAL (module failure).
 */
enum err pkcs11_open(const struct pkcs11_config *cfg, int create, struct key_provider **out);

/* 1 when kp is a PKCS#11 provider. */
int pkcs11_is(struct key_provider *kp);

/*
 * Reads the CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE and CKA_SENSITIVE
 * attributes of KEK id (each 0 or 1). Errors: ERR_INVALID, ERR_NOT_FOUND, ERR_INTERNAL.
 */
enum err pkcs11_kek_attributes(struct key_provider *kp, const char *id, int *extractable,
                               int *never_extractable, int *sensitive);

/*
 * Reads DATA/keys/provider.json. Sets *found to 0 when the file does not
 * exist (the directory uses the local keyring). Errors: ERR_INVALID
 * (malformed or unknown provider), ERR_IO.
 */
enum err pkcs11_config_load(const char *data_dir, struct pkcs11_config *cfg, int *found);

/*
 * Writes DATA/keys/provider.json for cfg atomically (temporary file, fsync,
 * rename, mode 0600). Errors: ERR_INVALID, ERR_IO.
 */
enum err pkcs11_config_save(const char *data_dir, const struct pkcs11_config *cfg);

#endif
