/*
 * masterkey: the master key that seals the KEKs of a local keyring
 * (keys/keyring.h). It is 32 random bytes kept outside the data directory,
 * either in a file only its owner may read (mode 0600) or in the environment
 * variable COFFER_MASTER_KEY. Both hold the key as 64 hex digits or as the
 * base64 (standard or URL alphabet, padding optional) of its 32 bytes.
 */
#ifndef COFFER_KEYS_MASTERKEY_H
#define COFFER_KEYS_MASTERKEY_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define MASTERKEY_LEN 32
#define MASTERKEY_ENV "COFFER_MASTER_KEY"
#define MASTERKEY_FILE_ENV "COFFER_MASTER_KEY_FILE"

/*
 * Decodes a master key from text (len bytes; surrounding white space is
 * ignored): 64 hex digits or base64 of exactly 32 bytes. key is wiped on failure.
 * Errors: ERR_INVALID.
 */
enum err masterkey_parse(const char *text, size_t len, uint8_t key[MASTERKEY_LEN]);

/*
 * Reads the master key file at path. Refuses symbolic links, anything but a
 * regular file, and a file that group or others may access (ERR_FORBIDDEN,
 * with a log line saying to chmod 600 it). key is wiped on failure.
 * Errors: ERR_NOT_FOUND, ERR_FORBIDDEN, ERR_INVALID (content), ERR_IO.
 */
enum err masterkey_read_file(const char *path, uint8_t key[MASTERKEY_LEN]);

/*
 * Finds the master key: the file path when not NULL, otherwise the
 * environment variable COFFER_MASTER_KEY, otherwise the file named by
 * COFFER_MASTER_KEY_FILE. Copies a description of where it came from
 * (never the key) into source (source_cap bytes, may be NULL).
 * Errors: ERR_NOT_FOUND (none configured), those of masterkey_parse and
 * masterkey_read_file.
 */
enum err masterkey_load(const char *path, uint8_t key[MASTERKEY_LEN], char *source,
                        size_t source_cap);

/*
 * Creates a new master key file at path (O_CREAT|O_EXCL, mode 0600) holding
 * a fresh random key as 64 hex digits and a newline, fsynced, and returns
 * the key in key. Errors: ERR_CONFLICT (path exists), ERR_IO, ERR_INTERNAL.
 */
enum err masterkey_generate_file(const char *path, uint8_t key[MASTERKEY_LEN]);

/*
 * Checks that path (a master key file, existing or about to be created) is
 * not inside data_dir, resolving symbolic links of both. Logs why on refusal.
 * Errors: ERR_INVALID (inside), ERR_IO (a path cannot be resolved).
 */
enum err masterkey_check_outside(const char *path, const char *data_dir);

#endif
