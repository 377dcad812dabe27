/*
 * keyring: the local key provider. KEKs live in a JSON file that only its
 * owner may read (mode 0600), for example DIR/keyring.json:
 *
 *   {"format": "coffer-keyring", "version": 1, "keks": [
 *     {"id": "kek-1", "created": 1700000000, "key": "<64 hex>", "state": "retired"},
 *     {"id": "kek-2", "created": 1710000000, "key": "<64 hex>", "state": "current"}]}
 *
 * With a master key (keys/masterkey.h) the file is version 2, "sealed":
 * "aes-256-gcm", and each entry holds "sealed_key" (hex of nonce || KEK
 * encrypted under the master key || tag, associated data
 * "coffer-keyring-kek-v1" || id) instead of "key".
 *
 * Exactly one KEK is current. Wrapped DEKs use AES-256-GCM (layout in
 * docs/FORMAT.md). The file is replaced atomically (temporary file, fsync,
 * rename, directory fsync), so a crash leaves either the old or the new keyring.
 */
#ifndef COFFER_KEYS_KEYRING_H
#define COFFER_KEYS_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "keys/keys.h"
#include "util/err.h"

#define KEYRING_KEY_LEN 32
#define KEYRING_MAX_KEKS 4096
#define KEYRING_MAX_FILE (1024 * 1024)

/* Public facts about one KEK (never its key). */
struct keyring_kek_info {
    char id[KEYS_KEK_ID_CAP];
    int64_t created; /* unix time */
    int current;     /* 1 for the current KEK, 0 for a retired one */
};

/*
 * Creates a keyring file at path holding one fresh random KEK ("kek-1",
 * current). The name is claimed with O_CREAT|O_EXCL (mode 0600) and the
 * content written through a temporary file, fsync, rename and a directory
 * fsync. On success *out is owned by the caller (key_provider_free).
 * Errors: ERR_CONFLICT (path exists), ERR_IO, ERR_INTERNAL.
 */
enum err keyring_create(const char *path, struct key_provider **out);

/* As keyring_create, sealing the KEKs under master (MASTERKEY_LEN bytes) when not NULL. */
enum err keyring_create_sealed(const char *path, const uint8_t *master, struct key_provider **out);

/*
 * Loads the keyring at path. Refuses, with ERR_FORBIDDEN and an error log
 * line, a file that group or others may read, write or execute; refuses
 * symbolic links. On success *out is owned by the caller (key_provider_free).
 * Errors: ERR_NOT_FOUND (no such file), ERR_FORBIDDEN, ERR_INVALID
 * (malformed keyring), ERR_IO, ERR_INTERNAL.
 */
enum err keyring_open(const char *path, struct key_provider **out);

/*
 * As keyring_open with the master key master (MASTERKEY_LEN bytes, or NULL).
 * A sealed keyring opened without a master key uses the one the environment
 * names (masterkey_load with no path), if any. A master key given for a
 * keyring that is not sealed is ignored with a warning. The provider keeps
 * a copy of the master key (wiped on destroy) to seal the file again on rotation.
 * Errors: those of keyring_open, ERR_UNAUTHENTICATED (sealed and no master
 * key), ERR_INTEGRITY (the master key does not open it).
 */
enum err keyring_open_sealed(const char *path, const uint8_t *master, struct key_provider **out);

/*
 * Seals (or re-seals under a new master key) the keyring: rewrites the file
 * atomically in the sealed format. Errors: ERR_INVALID, ERR_IO, ERR_INTERNAL.
 */
enum err keyring_seal(struct key_provider *kp, const uint8_t *master);

/* 1 when kp is a keyring stored sealed under a master key. */
int keyring_is_sealed(struct key_provider *kp);

/*
 * Adds a fresh random KEK, makes it current, retires the previous current
 * KEK (still used to unwrap), and saves the file atomically. Copies the new
 * id into new_id (new_id_cap bytes, may be NULL). Leaves the keyring
 * unchanged on failure.
 * Errors: ERR_INVALID (kp is not a keyring, id buffer too small),
 * ERR_TOO_LARGE (KEYRING_MAX_KEKS reached), ERR_IO, ERR_INTERNAL.
 */
enum err keyring_rotate(struct key_provider *kp, char *new_id, size_t new_id_cap);

/*
 * Destroys the retired KEK id: removes it from the keyring, saves the file
 * atomically and wipes the key from memory. Every DEK still wrapped under it
 * becomes unreadable for good, so the caller first makes sure nothing refers
 * to it. Leaves the keyring unchanged on failure.
 * Errors: ERR_INVALID (kp is not a keyring), ERR_NOT_FOUND (no such KEK),
 * ERR_CONFLICT (id is the current KEK), ERR_IO, ERR_INTERNAL.
 */
enum err keyring_destroy_kek(struct key_provider *kp, const char *id);

/* 1 when kp is a local keyring provider. */
int keyring_is(struct key_provider *kp);

/* Number of KEKs in the keyring, 0 if kp is not a keyring. */
size_t keyring_kek_count(struct key_provider *kp);

/* Fills *info for KEK i (0 = oldest). Errors: ERR_INVALID (not a keyring), ERR_NOT_FOUND (i). */
enum err keyring_kek_info(struct key_provider *kp, size_t i, struct keyring_kek_info *info);

#endif
