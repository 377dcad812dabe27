#include "keys/keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keys/masterkey.h"
#include "util/file.h"
#include "util/log.h"
#include "util/secure.h"

#define KEYRING_FORMAT "coffer-keyring"
#define KEYRING_FORMAT_VERSION 1
/* Version 2: every KEK sealed under the master key (keys/masterkey.h). */
#define KEYRING_FORMAT_SEALED 2
#define KEYRING_SEAL_ALG "aes-256-gcm"
#define KEYRING_SEAL_LABEL "coffer-keyring-kek-v1"
#define KEYRING_SEAL_LABEL_LEN (sizeof(KEYRING_SEAL_LABEL) - 1)
#define KEYRING_SEALED_LEN (KEYRING_NONCE_LEN + KEYRING_KEY_LEN + KEYRING_TAG_LEN)
#define KEYRING_NONCE_LEN 12
#define KEYRING_TAG_LEN 16
#define KEYRING_WRAP_LABEL "coffer-dek-v1"
#define KEYRING_WRAP_LABEL_LEN (sizeof(KEYRING_WRAP_LABEL) - 1)

struct keyring_kek {
    char id[KEYS_KEK_ID_CAP];
    int64_t created;
    int current;
    uint8_t key[KEYRING_KEY_LEN];
};

struct keyring {
    pthread_mutex_t lock; /* guards keks, count and current */
    char *path;
    struct keyring_kek *keks; /* cap slots, wiped before every free */
    size_t cap;
    size_t count;
    size_t current;
    int sealed;                    /* KEKs are stored sealed under master */
    uint8_t master[MASTERKEY_LEN]; /* wiped on destroy */
};

static const char keyring_name[] = "keyring";

static void keyring_destroy(struct key_provider *kp);
static enum err keyring_hook_kek_info(struct key_provider *kp, size_t i,
                                      struct keys_kek_info *info);
static int keyring_gcm(int encrypt, const uint8_t key[KEYRING_KEY_LEN],
                       const uint8_t nonce[KEYRING_NONCE_LEN], const char *label, size_t label_len,
                       const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t len,
                       uint8_t *out, uint8_t tag[KEYRING_TAG_LEN]);

/* ---- helpers ---- */

/* KEK ids: [a-z0-9][a-z0-9._-]{0,62}, so they are safe in file names, logs and SQL. */
static int keyring_id_ok(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len >= KEYS_KEK_ID_CAP)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return 1;
}

static struct keyring_kek *keyring_find(struct keyring *kr, const char *id)
{
    for (size_t i = 0; i < kr->count; i++) {
        if (strcmp(kr->keks[i].id, id) == 0)
            return &kr->keks[i];
    }
    return NULL;
}

static struct keyring *keyring_impl(struct key_provider *kp)
{
    if (kp == NULL || kp->name != keyring_name || kp->impl == NULL)
        return NULL;
    return kp->impl;
}

/* Makes room for one more KEK. Copies by hand so no stale key copy is left unwiped. */
static enum err keyring_reserve(struct keyring *kr)
{
    if (kr->count < kr->cap)
        return ERR_OK;
    if (kr->count >= KEYRING_MAX_KEKS)
        return ERR_TOO_LARGE;
    size_t cap = kr->cap == 0 ? 4 : kr->cap * 2;
    if (cap > KEYRING_MAX_KEKS)
        cap = KEYRING_MAX_KEKS;
    struct keyring_kek *keks = calloc(cap, sizeof(*keks));
    if (keks == NULL)
        return ERR_INTERNAL;
    if (kr->keks != NULL) {
        memcpy(keks, kr->keks, kr->count * sizeof(*keks));
        secure_wipe(kr->keks, kr->cap * sizeof(*kr->keks));
        free(kr->keks);
    }
    kr->keks = keks;
    kr->cap = cap;
    return ERR_OK;
}

/*
 * Fills the next free slot with a fresh random KEK named kek-N, N above every
 * kek-N in the keyring and the slot count. Does not change which KEK is current.
 */
static enum err keyring_add_kek(struct keyring *kr)
{
    enum err rc = keyring_reserve(kr);
    if (rc != ERR_OK)
        return rc;
    struct keyring_kek *k = &kr->keks[kr->count];
    /* Above every kek-N in use, so the id of a destroyed KEK is never reused. */
    size_t next = kr->count + 1;
    for (size_t i = 0; i < kr->count; i++) {
        unsigned long long n = 0;
        char tail;
        if (sscanf(kr->keks[i].id, "kek-%llu%c", &n, &tail) == 1 && n < SIZE_MAX / 2 &&
            n + 1 > next)
            next = (size_t)n + 1;
    }
    for (size_t n = next;; n++) {
        snprintf(k->id, sizeof(k->id), "kek-%zu", n);
        if (keyring_find(kr, k->id) == NULL)
            break;
    }
    if (secure_random(k->key, sizeof(k->key)) != 0) {
        secure_wipe(k, sizeof(*k));
        return ERR_INTERNAL;
    }
    k->created = (int64_t)time(NULL);
    k->current = 0;
    kr->count++;
    return ERR_OK;
}

static struct key_provider *keyring_provider_new(const char *path)
{
    struct key_provider *kp = calloc(1, sizeof(*kp));
    struct keyring *kr = calloc(1, sizeof(*kr));
    if (kp == NULL || kr == NULL) {
        free(kp);
        free(kr);
        return NULL;
    }
    kp->name = keyring_name;
    kp->destroy = keyring_destroy;
    kp->impl = kr;
    kr->path = strdup(path);
    if (pthread_mutex_init(&kr->lock, NULL) != 0) {
        free(kr->path);
        free(kr);
        free(kp);
        return NULL;
    }
    if (kr->path == NULL) {
        keyring_destroy(kp);
        return NULL;
    }
    return kp;
}

/* ---- serialization ---- */

/* Overwrites, in place, the hex key strings inside a keyring JSON tree. */
static void keyring_json_wipe(json_t *root)
{
    json_t *keks = json_object_get(root, "keks");
    size_t i;
    json_t *kek;
    json_array_foreach(keks, i, kek)
    {
        json_t *key = json_object_get(kek, "key");
        if (json_is_string(key))
            secure_wipe((char *)json_string_value(key), json_string_length(key));
    }
}

/* Renders the keyring as JSON text. Caller wipes (length: strlen) and frees it. */
static char *keyring_serialize(const struct keyring *kr)
{
    json_t *root = json_object(), *keks = json_array();
    char *text = NULL;
    if (root == NULL || keks == NULL ||
        json_object_set_new(root, "format", json_string(KEYRING_FORMAT)) != 0 ||
        json_object_set_new(
            root, "version",
            json_integer(kr->sealed ? KEYRING_FORMAT_SEALED : KEYRING_FORMAT_VERSION)) != 0 ||
        (kr->sealed && json_object_set_new(root, "sealed", json_string(KEYRING_SEAL_ALG)) != 0) ||
        json_object_set(root, "keks", keks) != 0)
        goto done;
    for (size_t i = 0; i < kr->count; i++) {
        const struct keyring_kek *k = &kr->keks[i];
        char hex[2 * KEYRING_SEALED_LEN + 1];
        if (kr->sealed) {
            /* nonce || sealed KEK || tag, bound to the KEK id. */
            uint8_t sealed[KEYRING_SEALED_LEN];
            if (secure_random(sealed, KEYRING_NONCE_LEN) != 0 ||
                keyring_gcm(1, kr->master, sealed, KEYRING_SEAL_LABEL, KEYRING_SEAL_LABEL_LEN,
                            (const uint8_t *)k->id, strlen(k->id), k->key, KEYRING_KEY_LEN,
                            sealed + KEYRING_NONCE_LEN,
                            sealed + KEYRING_NONCE_LEN + KEYRING_KEY_LEN) != 0) {
                secure_wipe(sealed, sizeof(sealed));
                goto done;
            }
            hex_encode(sealed, sizeof(sealed), hex);
            secure_wipe(sealed, sizeof(sealed));
        } else {
            hex_encode(k->key, sizeof(k->key), hex);
        }
        json_t *obj = json_pack("{s:s, s:I, s:s, s:s}", "id", k->id, "created",
                                (json_int_t)k->created, kr->sealed ? "sealed_key" : "key", hex,
                                "state", k->current ? "current" : "retired");
        secure_wipe(hex, sizeof(hex));
        if (obj == NULL || json_array_append_new(keks, obj) != 0)
            goto done;
    }
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
done:
    keyring_json_wipe(root);
    json_decref(keks);
    json_decref(root);
    return text;
}

/* Opens a KEK sealed under the master key. 0 on success, 1 on a wrong key or tampering, -1 if
 * malformed. */
static int keyring_unseal(const struct keyring *kr, const char *id, json_t *sealed_hex,
                          uint8_t key[KEYRING_KEY_LEN])
{
    uint8_t sealed[KEYRING_SEALED_LEN];
    if (hex_decode(json_string_value(sealed_hex), json_string_length(sealed_hex), sealed,
                   sizeof(sealed)) != 0)
        return -1;
    int r = keyring_gcm(0, kr->master, sealed, KEYRING_SEAL_LABEL, KEYRING_SEAL_LABEL_LEN,
                        (const uint8_t *)id, strlen(id), sealed + KEYRING_NONCE_LEN,
                        KEYRING_KEY_LEN, key, sealed + KEYRING_NONCE_LEN + KEYRING_KEY_LEN);
    secure_wipe(sealed, sizeof(sealed));
    if (r != 0)
        secure_wipe(key, KEYRING_KEY_LEN);
    return r;
}

/* Parses one KEK object into k. 0 on success, 1 on a wrong master key, -1 on malformed input. */
static int keyring_parse_kek(const struct keyring *kr, json_t *obj, struct keyring_kek *k)
{
    json_t *id = json_object_get(obj, "id"), *created = json_object_get(obj, "created");
    json_t *key = json_object_get(obj, kr->sealed ? "sealed_key" : "key");
    json_t *state = json_object_get(obj, "state");
    if (!json_is_string(id) || !json_is_integer(created) || !json_is_string(key) ||
        !json_is_string(state))
        return -1;
    const char *id_s = json_string_value(id), *state_s = json_string_value(state);
    if (!keyring_id_ok(id_s) || json_integer_value(created) < 0)
        return -1;
    if (strcmp(state_s, "current") == 0)
        k->current = 1;
    else if (strcmp(state_s, "retired") == 0)
        k->current = 0;
    else
        return -1;
    if (kr->sealed) {
        int r = keyring_unseal(kr, id_s, key, k->key);
        if (r != 0)
            return r;
    } else if (hex_decode(json_string_value(key), json_string_length(key), k->key,
                          sizeof(k->key)) != 0) {
        return -1;
    }
    memcpy(k->id, id_s, strlen(id_s) + 1);
    k->created = (int64_t)json_integer_value(created);
    return 0;
}

/* Fills kr from JSON text: every KEK valid, ids unique, exactly one current. */
static enum err keyring_parse(struct keyring *kr, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    enum err rc = ERR_INVALID;
    if (root == NULL) {
        log_error("keyring %s: not valid JSON (line %d)", kr->path, jerr.line);
        return ERR_INVALID;
    }
    json_t *keks = json_object_get(root, "keks");
    json_t *format = json_object_get(root, "format"), *version = json_object_get(root, "version");
    json_int_t ver = json_integer_value(version);
    if (ver == KEYRING_FORMAT_SEALED) {
        json_t *alg = json_object_get(root, "sealed");
        if (!json_is_string(alg) || strcmp(json_string_value(alg), KEYRING_SEAL_ALG) != 0) {
            log_error("keyring %s: unsupported sealing", kr->path);
            goto done;
        }
        if (!kr->sealed) {
            log_error("keyring %s is sealed with a master key; give it with --master-key-file "
                      "PATH or the environment variable " MASTERKEY_ENV,
                      kr->path);
            rc = ERR_UNAUTHENTICATED;
            goto done;
        }
    } else if (kr->sealed) {
        /* A master key given for a keyring that is not sealed: the file stays
         * plain until it is sealed on purpose (keyring_seal). */
        kr->sealed = 0;
        secure_wipe(kr->master, sizeof(kr->master));
        log_warn("keyring %s is not sealed; the master key is not used (run 'coffer keys seal' "
                 "to seal it)",
                 kr->path);
    }
    if (!json_is_string(format) || strcmp(json_string_value(format), KEYRING_FORMAT) != 0 ||
        !json_is_integer(version) ||
        (ver != KEYRING_FORMAT_VERSION && ver != KEYRING_FORMAT_SEALED) || !json_is_array(keks) ||
        json_array_size(keks) == 0 || json_array_size(keks) > KEYRING_MAX_KEKS) {
        log_error("keyring %s: unsupported format or no keys", kr->path);
        goto done;
    }
    size_t currents = 0, i;
    json_t *obj;
    json_array_foreach(keks, i, obj)
    {
        if (keyring_reserve(kr) != ERR_OK) {
            rc = ERR_INTERNAL;
            goto done;
        }
        struct keyring_kek *k = &kr->keks[i];
        int pr = keyring_parse_kek(kr, obj, k);
        if (pr > 0) {
            log_error("keyring %s: the master key does not open it (wrong key, or the file was "
                      "altered)",
                      kr->path);
            rc = ERR_INTEGRITY;
            goto done;
        }
        if (pr != 0 || keyring_find(kr, k->id) != NULL) {
            log_error("keyring %s: key entry %zu is malformed or duplicated", kr->path, i);
            goto done;
        }
        kr->count = i + 1;
        if (k->current) {
            kr->current = i;
            currents++;
        }
    }
    if (currents != 1) {
        log_error("keyring %s: %zu current keys, expected exactly one", kr->path, currents);
        goto done;
    }
    rc = ERR_OK;
done:
    keyring_json_wipe(root);
    json_decref(root);
    return rc;
}

/* ---- file handling ---- */

/* Atomically replaces path with the serialized keyring (temp file, fsync, rename, dir fsync). */
static enum err keyring_save(const struct keyring *kr)
{
    char *text = keyring_serialize(kr);
    if (text == NULL)
        return ERR_INTERNAL;
    size_t len = strlen(text);
    enum err rc = ERR_OK;
    if (file_replace_private(kr->path, text, len) != 0) {
        log_error("keyring %s: cannot write: %s", kr->path, strerror(errno));
        rc = errno == ENAMETOOLONG ? ERR_INVALID : ERR_IO;
    }
    secure_wipe(text, len);
    free(text);
    return rc;
}

/* Reads the whole keyring file (at most KEYRING_MAX_FILE bytes) after checking its mode. */
static enum err keyring_read_file(const char *path, char **out, size_t *out_len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return ERR_NOT_FOUND;
        log_error("keyring %s: cannot open: %s", path, strerror(errno));
        return errno == ELOOP ? ERR_FORBIDDEN : ERR_IO;
    }
    struct stat st;
    enum err rc = ERR_IO;
    char *buf = NULL;
    size_t len = 0, got = 0;
    if (fstat(fd, &st) != 0)
        goto fail;
    if (!S_ISREG(st.st_mode)) {
        log_error("keyring %s: not a regular file", path);
        rc = ERR_INVALID;
        goto fail;
    }
    if ((st.st_mode & 0077) != 0) {
        log_error("keyring %s: refusing a key file with mode %04o that group or others can "
                  "access; run chmod 600 on it",
                  path, (unsigned)(st.st_mode & 07777));
        rc = ERR_FORBIDDEN;
        goto fail;
    }
    if (st.st_size <= 0 || st.st_size > KEYRING_MAX_FILE) {
        log_error("keyring %s: size %lld out of range", path, (long long)st.st_size);
        rc = ERR_INVALID;
        goto fail;
    }
    len = (size_t)st.st_size;
    buf = malloc(len);
    if (buf == NULL) {
        rc = ERR_INTERNAL;
        goto fail;
    }
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        got += (size_t)n;
    }
    close(fd);
    *out = buf;
    *out_len = len;
    return ERR_OK;
fail:
    if (buf != NULL) {
        secure_wipe(buf, len);
        free(buf);
    }
    close(fd);
    return rc;
}

/* ---- AES-256-GCM wrap ---- */

/*
 * One-shot AES-256-GCM over in (len bytes) with AAD = label || ad. When
 * encrypting, tag receives the tag; when decrypting, tag is checked.
 * Returns 0 on success, 1 on authentication failure, -1 on internal error.
 */
static int keyring_gcm(int encrypt, const uint8_t key[KEYRING_KEY_LEN],
                       const uint8_t nonce[KEYRING_NONCE_LEN], const char *label, size_t label_len,
                       const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t len,
                       uint8_t *out, uint8_t tag[KEYRING_TAG_LEN])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0, finl = 0, rc = -1;
    if (ctx == NULL)
        return -1;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, KEYRING_NONCE_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, encrypt) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &outl, (const uint8_t *)label, (int)label_len) != 1)
        goto done;
    if (ad_len > 0 && EVP_CipherUpdate(ctx, NULL, &outl, ad, (int)ad_len) != 1)
        goto done;
    if (EVP_CipherUpdate(ctx, out, &outl, in, (int)len) != 1)
        goto done;
    if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KEYRING_TAG_LEN, tag) != 1)
        goto done;
    if (EVP_CipherFinal_ex(ctx, out + outl, &finl) != 1) {
        rc = encrypt ? -1 : 1;
        goto done;
    }
    if (encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KEYRING_TAG_LEN, tag) != 1)
        goto done;
    rc = 0;
done:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

static enum err keyring_wrap(struct key_provider *kp, const uint8_t *dek, size_t dek_len,
                             const uint8_t *ad, size_t ad_len, uint8_t *out, size_t out_cap,
                             size_t *out_len, char *kek_id, size_t kek_id_cap)
{
    struct keyring *kr = keyring_impl(kp);
    if (kr == NULL || dek == NULL || dek_len == 0 || dek_len > KEYS_DEK_MAX ||
        (ad == NULL && ad_len > 0) || ad_len > INT_MAX || out == NULL || out_len == NULL ||
        kek_id == NULL || out_cap < KEYRING_NONCE_LEN + dek_len + KEYRING_TAG_LEN)
        return ERR_INVALID;
    *out_len = 0;
    if (secure_random(out, KEYRING_NONCE_LEN) != 0)
        return ERR_INTERNAL;
    enum err rc = ERR_INTERNAL;
    pthread_mutex_lock(&kr->lock);
    const struct keyring_kek *k = &kr->keks[kr->current];
    size_t id_len = strlen(k->id);
    if (id_len >= kek_id_cap) {
        rc = ERR_INVALID;
        goto done;
    }
    if (keyring_gcm(1, k->key, out, KEYRING_WRAP_LABEL, KEYRING_WRAP_LABEL_LEN, ad, ad_len, dek,
                    dek_len, out + KEYRING_NONCE_LEN, out + KEYRING_NONCE_LEN + dek_len) != 0) {
        secure_wipe(out, out_cap);
        goto done;
    }
    memcpy(kek_id, k->id, id_len + 1);
    *out_len = KEYRING_NONCE_LEN + dek_len + KEYRING_TAG_LEN;
    rc = ERR_OK;
done:
    pthread_mutex_unlock(&kr->lock);
    return rc;
}

static enum err keyring_unwrap(struct key_provider *kp, const char *kek_id, const uint8_t *wrapped,
                               size_t wrapped_len, const uint8_t *ad, size_t ad_len,
                               uint8_t *dek_out, size_t dek_cap, size_t *dek_len)
{
    struct keyring *kr = keyring_impl(kp);
    if (kr == NULL || kek_id == NULL || wrapped == NULL || (ad == NULL && ad_len > 0) ||
        ad_len > INT_MAX || dek_out == NULL || dek_len == NULL)
        return ERR_INVALID;
    *dek_len = 0;
    if (wrapped_len <= KEYRING_NONCE_LEN + KEYRING_TAG_LEN ||
        wrapped_len > KEYRING_NONCE_LEN + KEYS_DEK_MAX + KEYRING_TAG_LEN)
        return ERR_INTEGRITY;
    const size_t len = wrapped_len - KEYRING_NONCE_LEN - KEYRING_TAG_LEN;
    if (dek_cap < len)
        return ERR_INVALID;
    uint8_t tag[KEYRING_TAG_LEN];
    memcpy(tag, wrapped + wrapped_len - KEYRING_TAG_LEN, sizeof(tag));
    enum err rc = ERR_NOT_FOUND;
    pthread_mutex_lock(&kr->lock);
    const struct keyring_kek *k = keyring_find(kr, kek_id);
    if (k != NULL) {
        int r = keyring_gcm(0, k->key, wrapped, KEYRING_WRAP_LABEL, KEYRING_WRAP_LABEL_LEN, ad,
                            ad_len, wrapped + KEYRING_NONCE_LEN, len, dek_out, tag);
        rc = r == 0 ? ERR_OK : r > 0 ? ERR_INTEGRITY : ERR_INTERNAL;
    }
    pthread_mutex_unlock(&kr->lock);
    if (rc != ERR_OK) {
        secure_wipe(dek_out, len);
        return rc;
    }
    *dek_len = len;
    return ERR_OK;
}

static void keyring_destroy(struct key_provider *kp)
{
    if (kp == NULL)
        return;
    struct keyring *kr = kp->impl;
    if (kr != NULL) {
        if (kr->keks != NULL) {
            secure_wipe(kr->keks, kr->cap * sizeof(*kr->keks));
            free(kr->keks);
        }
        free(kr->path);
        secure_wipe(kr->master, sizeof(kr->master));
        pthread_mutex_destroy(&kr->lock);
        free(kr);
    }
    free(kp);
}

/* ---- public API ---- */

/* Hooks every opened or created keyring provides. */
static void keyring_set_ops(struct key_provider *kp)
{
    kp->wrap = keyring_wrap;
    kp->unwrap = keyring_unwrap;
    kp->rotate = keyring_rotate;
    kp->destroy_kek = keyring_destroy_kek;
    kp->kek_count = keyring_kek_count;
    kp->kek_info = keyring_hook_kek_info;
}

enum err keyring_create(const char *path, struct key_provider **out)
{
    return keyring_create_sealed(path, NULL, out);
}

enum err keyring_create_sealed(const char *path, const uint8_t *master, struct key_provider **out)
{
    if (path == NULL || out == NULL || path[0] == '\0')
        return ERR_INVALID;
    *out = NULL;
    /* Claim the name first so an existing keyring is never replaced. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return ERR_CONFLICT;
        log_error("keyring %s: cannot create: %s", path, strerror(errno));
        return ERR_IO;
    }
    close(fd);
    enum err rc = ERR_INTERNAL;
    struct key_provider *kp = keyring_provider_new(path);
    if (kp == NULL)
        goto fail;
    struct keyring *kr = kp->impl;
    if (master != NULL) {
        kr->sealed = 1;
        memcpy(kr->master, master, MASTERKEY_LEN);
    }
    rc = keyring_add_kek(kr);
    if (rc != ERR_OK)
        goto fail;
    kr->keks[0].current = 1;
    kr->current = 0;
    keyring_set_ops(kp);
    rc = keyring_save(kr);
    if (rc != ERR_OK)
        goto fail;
    *out = kp;
    return ERR_OK;
fail:
    unlink(path);
    keyring_destroy(kp);
    return rc;
}

/* 1 when the keyring text declares itself sealed (cheap check before the full parse). */
static int keyring_text_sealed(const char *text, size_t len)
{
    json_t *root = json_loadb(text, len, 0, NULL);
    int sealed = json_integer_value(json_object_get(root, "version")) == KEYRING_FORMAT_SEALED;
    keyring_json_wipe(root);
    json_decref(root);
    return sealed;
}

enum err keyring_open(const char *path, struct key_provider **out)
{
    return keyring_open_sealed(path, NULL, out);
}

enum err keyring_open_sealed(const char *path, const uint8_t *master, struct key_provider **out)
{
    if (path == NULL || out == NULL)
        return ERR_INVALID;
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    uint8_t env_key[MASTERKEY_LEN];
    enum err rc = keyring_read_file(path, &text, &len);
    if (rc != ERR_OK)
        return rc;
    struct key_provider *kp = keyring_provider_new(path);
    if (kp == NULL) {
        rc = ERR_INTERNAL;
        goto done;
    }
    struct keyring *kr = kp->impl;
    if (master == NULL && keyring_text_sealed(text, len)) {
        /* Tools that know nothing of master keys still work when the
         * environment names one. */
        rc = masterkey_load(NULL, env_key, NULL, 0);
        if (rc == ERR_OK)
            master = env_key;
        else if (rc != ERR_NOT_FOUND)
            goto fail;
    }
    if (master != NULL) {
        kr->sealed = 1;
        memcpy(kr->master, master, MASTERKEY_LEN);
    }
    rc = keyring_parse(kr, text, len);
    if (rc != ERR_OK)
        goto fail;
    keyring_set_ops(kp);
    *out = kp;
    goto done;
fail:
    keyring_destroy(kp);
done:
    secure_wipe(env_key, sizeof(env_key));
    secure_wipe(text, len);
    free(text);
    return rc;
}

enum err keyring_seal(struct key_provider *kp, const uint8_t *master)
{
    struct keyring *kr = keyring_impl(kp);
    if (kr == NULL || master == NULL)
        return ERR_INVALID;
    pthread_mutex_lock(&kr->lock);
    int was_sealed = kr->sealed;
    uint8_t old[MASTERKEY_LEN];
    memcpy(old, kr->master, sizeof(old));
    kr->sealed = 1;
    memcpy(kr->master, master, MASTERKEY_LEN);
    enum err rc = keyring_save(kr);
    if (rc != ERR_OK) {
        kr->sealed = was_sealed;
        memcpy(kr->master, old, sizeof(old));
    }
    secure_wipe(old, sizeof(old));
    pthread_mutex_unlock(&kr->lock);
    return rc;
}

int keyring_is_sealed(struct key_provider *kp)
{
    struct keyring *kr = keyring_impl(kp);
    if (kr == NULL)
        return 0;
    pthread_mutex_lock(&kr->lock);
    int sealed = kr->sealed;
    pthread_mutex_unlock(&kr->lock);
    return sealed;
}

enum err keyring_rotate(struct key_provider *kp, char *new_id, size_t new_id_cap)
{
    struct keyring *kr = keyring_impl(kp);
    if (kr == NULL)
        return ERR_INVALID;
    pthread_mutex_lock(&kr->lock);
    const size_t old = kr->current;
    enum err rc = keyring_add_kek(kr);
    if (rc != ERR_OK)
        goto done;
    struct keyring_kek *k = &kr->keks[kr->count - 1];
    if (new_id != NULL && strlen(k->id) >= new_id_cap) {
        rc = ERR_INVALID;
    } else {
        kr->keks[old].current = 0;
        k->current = 1;
        kr->current = kr->count - 1;
        rc = keyring_save(kr);
    }
    if (rc != ERR_OK) {
        /* Roll back so memory and file keep agreeing. */
        kr->keks[old].current = 1;
        kr->current = old;
        kr->count--;
        secure_wipe(k, sizeof(*k));
        goto done;
    }
    if (new_id != NULL)
        memcpy(new_id, k->id, strlen(k->id) + 1);
    log_info("keyring %s: rotated, current key is now %s", kr->path, k->id);
done:
    pthread_mutex_unlock(&kr->lock);
    return rc;
}

size_t keyring_kek_count(struct key_provider *kp)
{
    struct keyring *kr = keyring_impl(kp);
    if (kr == NULL)
        return 0;
    pthread_mutex_lock(&kr->lock);
    size_t n = kr->count;
    pthread_mutex_unlock(&kr->lock);
    return n;
}

enum err keyring_kek_info(struct key_provider *kp, size_t i, struct keyring_kek_info *info)
{
    struct keyring *kr = keyring_impl(kp);
    if (kr == NULL || info == NULL)
        return ERR_INVALID;
    enum err rc = ERR_NOT_FOUND;
    pthread_mutex_lock(&kr->lock);
    if (i < kr->count) {
        memcpy(info->id, kr->keks[i].id, sizeof(info->id));
        info->created = kr->keks[i].created;
        info->current = kr->keks[i].current;
        rc = ERR_OK;
    }
    pthread_mutex_unlock(&kr->lock);
    return rc;
}

static enum err keyring_hook_kek_info(struct key_provider *kp, size_t i, struct keys_kek_info *info)
{
    struct keyring_kek_info ki;
    enum err rc = keyring_kek_info(kp, i, &ki);
    if (rc == ERR_OK && info != NULL) {
        memcpy(info->id, ki.id, sizeof(info->id));
        info->created = ki.created;
        info->current = ki.current;
    }
    return rc;
}

int keyring_is(struct key_provider *kp)
{
    return keyring_impl(kp) != NULL;
}

enum err keyring_destroy_kek(struct key_provider *kp, const char *id)
{
    struct keyring *kr = keyring_impl(kp);
    if (kr == NULL || id == NULL)
        return ERR_INVALID;
    pthread_mutex_lock(&kr->lock);
    enum err rc = ERR_NOT_FOUND;
    size_t at = kr->count;
    for (size_t i = 0; i < kr->count; i++) {
        if (strcmp(kr->keks[i].id, id) == 0)
            at = i;
    }
    if (at == kr->count)
        goto done;
    if (at == kr->current) {
        rc = ERR_CONFLICT;
        goto done;
    }
    /* Save a copy without the KEK first, so memory and file keep agreeing on failure. */
    struct keyring_kek removed = kr->keks[at];
    size_t old_current = kr->current;
    memmove(&kr->keks[at], &kr->keks[at + 1], (kr->count - at - 1) * sizeof(*kr->keks));
    kr->count--;
    if (kr->current > at)
        kr->current--;
    secure_wipe(&kr->keks[kr->count], sizeof(*kr->keks));
    rc = keyring_save(kr);
    if (rc != ERR_OK) {
        memmove(&kr->keks[at + 1], &kr->keks[at], (kr->count - at) * sizeof(*kr->keks));
        kr->keks[at] = removed;
        kr->count++;
        kr->current = old_current;
    } else {
        log_info("keyring %s: destroyed retired key %s", kr->path, id);
    }
    secure_wipe(&removed, sizeof(removed));
done:
    pthread_mutex_unlock(&kr->lock);
    return rc;
}
