/*
 * migrate: which key provider a data directory uses, and moving a store
 * from the local keyring to a PKCS#11 token.
 *
 * A data directory uses a PKCS#11 token when DATA/keys/provider.json says
 * so (keys/pkcs11.h); otherwise it uses the keyring DATA/keys/keyring.json,
 * sealed or not under a master key (keys/masterkey.h).
 */
#ifndef COFFER_KEYS_MIGRATE_H
#define COFFER_KEYS_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "keys/keys.h"
#include "keys/pkcs11.h"
#include "util/err.h"

/*
 * Opens the key provider data_dir is configured for. master_key_file (may
 * be NULL: then COFFER_MASTER_KEY or COFFER_MASTER_KEY_FILE if set) is the
 * master key of a sealed keyring; it must lie outside data_dir. Logs a
 * one-line reason on failure. On success *out is owned by the caller
 * (key_provider_free).
 * Errors: those of keyring_open_sealed, pkcs11_open, masterkey_read_file;
 * ERR_INVALID (master key file inside data_dir, bad provider.json).
 */
enum err keys_open_configured(const char *data_dir, const char *master_key_file,
                              struct key_provider **out);

/*
 * Moves the stopped store data_dir from its keyring to the token cfg names:
 * creates coffer-kek-1 in the token if it holds no coffer KEK, re-wraps
 * every data key and TOTP secret under the token's current KEK (batch keys
 * per transaction, each a compare-and-swap, so an interrupted run resumes
 * where it stopped when run again), then records the provider in
 * DATA/keys/provider.json, overwrites and removes the keyring file, and
 * records an audit event. Refuses while a server holds the audit log.
 * *count receives the number of keys re-wrapped. Writes a one-line reason
 * to why on failure.
 * Errors: ERR_CONFLICT (a server is running, or the store already uses a
 * token), ERR_INTEGRITY (some keys could not be re-wrapped; the keyring is
 * kept), those of the providers, ERR_IO.
 */
enum err keys_migrate_to_pkcs11(const char *data_dir, const char *master_key_file,
                                const struct pkcs11_config *cfg, int batch, int64_t *count,
                                char *why, size_t why_cap);

/*
 * Seals the keyring of the stopped store data_dir under the master key in
 * master_key_file, creating that file (mode 0600) when it does not exist.
 * Errors: ERR_CONFLICT (a server is running), ERR_INVALID (file inside
 * data_dir, the store uses a token), those of keyring_seal.
 */
enum err keys_seal_keyring(const char *data_dir, const char *master_key_file, int *created,
                           char *why, size_t why_cap);

#endif
