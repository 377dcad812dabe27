#include "audit/sth.h"

#include "util/file.h"
#include "util/log.h"
#include "util/secure.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX 16384

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

void audit_sth_message(const struct audit_sth *s, uint8_t out[AUDIT_STH_MSG_LEN])
{
    memcpy(out, AUDIT_STH_DOMAIN, 13);
    put_be64(out + 13, s->tree_size);
    put_be64(out + 21, s->timestamp_ms);
    memcpy(out + 29, s->root, MERKLE_HASH_LEN);
}

enum err audit_sth_sign(EVP_PKEY *key, struct audit_sth *s)
{
    uint8_t msg[AUDIT_STH_MSG_LEN];
    size_t siglen = AUDIT_SIG_LEN;
    audit_sth_message(s, msg);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return ERR_INTERNAL;
    int ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(ctx, s->sig, &siglen, msg, sizeof(msg)) == 1 && siglen == AUDIT_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? ERR_OK : ERR_INTERNAL;
}

int audit_sth_verify(EVP_PKEY *pub, const struct audit_sth *s)
{
    uint8_t msg[AUDIT_STH_MSG_LEN];
    audit_sth_message(s, msg);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return 0;
    int ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
             EVP_DigestVerify(ctx, s->sig, AUDIT_SIG_LEN, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

int audit_sth_format(const struct audit_sth *s, char *out, size_t cap)
{
    char root[2 * MERKLE_HASH_LEN + 1], sig[2 * AUDIT_SIG_LEN + 1];
    hex_encode(s->root, MERKLE_HASH_LEN, root);
    hex_encode(s->sig, AUDIT_SIG_LEN, sig);
    int n = snprintf(
        out, cap, "{\"tree_size\":%llu,\"timestamp\":%llu,\"root\":\"%s\",\"signature\":\"%s\"}",
        (unsigned long long)s->tree_size, (unsigned long long)s->timestamp_ms, root, sig);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return n;
}

static int get_u64(json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_hex(json_t *o, const char *key, uint8_t *out, size_t n)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return -1;
    return hex_decode(json_string_value(v), json_string_length(v), out, n);
}

enum err audit_sth_parse(const char *json, size_t len, struct audit_sth *out)
{
    if (len == 0 || len > 65536)
        return ERR_INVALID;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    enum err rc = ERR_INVALID;
    if (json_is_object(o) && get_u64(o, "tree_size", &out->tree_size) == 0 &&
        get_u64(o, "timestamp", &out->timestamp_ms) == 0 &&
        get_hex(o, "root", out->root, MERKLE_HASH_LEN) == 0 &&
        get_hex(o, "signature", out->sig, AUDIT_SIG_LEN) == 0)
        rc = ERR_OK;
    json_decref(o);
    return rc;
}

/* ---- keys --------------------------------------------------------------- */

/* Reads a whole small file into a NUL-terminated buffer the caller wipes and frees. */
static enum err read_small_file(const char *path, char **buf_out, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? ERR_NOT_FOUND : ERR_IO;
    char *buf = malloc(KEY_FILE_MAX + 1);
    size_t len = 0;
    enum err rc = ERR_OK;
    if (buf == NULL) {
        close(fd);
        return ERR_INTERNAL;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, KEY_FILE_MAX - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = ERR_IO;
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == KEY_FILE_MAX) {
            rc = ERR_INVALID;
            break;
        }
    }
    close(fd);
    if (rc != ERR_OK) {
        secure_wipe(buf, len);
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *buf_out = buf;
    *len_out = len;
    return ERR_OK;
}

/* Writes data to a new file (O_EXCL) with the given mode and makes it durable. */
static enum err write_new_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return ERR_IO;
    if (file_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        close(fd);
        unlink(path);
        return ERR_IO;
    }
    close(fd);
    return ERR_OK;
}

static int is_ed25519(EVP_PKEY *k)
{
    return k != NULL && EVP_PKEY_get_id(k) == EVP_PKEY_ED25519;
}

static enum err pem_of(EVP_PKEY *key, int private_part, char **pem, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return ERR_INTERNAL;
    int ok = private_part ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
                          : PEM_write_bio_PUBKEY(b, key);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    enum err rc = ERR_INTERNAL;
    if (ok == 1 && n > 0 && (*pem = malloc((size_t)n)) != NULL) {
        memcpy(*pem, data, (size_t)n);
        *len = (size_t)n;
        rc = ERR_OK;
    }
    if (n > 0)
        secure_wipe(data, (size_t)n);
    BIO_free(b);
    return rc;
}

static enum err write_pubkey(const char *path, EVP_PKEY *key)
{
    char *pem = NULL;
    size_t len = 0;
    enum err rc = pem_of(key, 0, &pem, &len);
    if (rc == ERR_OK)
        rc = write_new_file(path, pem, len, 0644);
    free(pem);
    return rc;
}

static enum err create_key(const char *keypath, const char *pubpath, EVP_PKEY **out)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (key == NULL)
        return ERR_INTERNAL;
    char *pem = NULL;
    size_t len = 0;
    enum err rc = pem_of(key, 1, &pem, &len);
    if (rc == ERR_OK)
        rc = write_new_file(keypath, pem, len, 0600);
    if (pem != NULL) {
        secure_wipe(pem, len);
        free(pem);
    }
    if (rc == ERR_OK) {
        unlink(pubpath); /* a stale public key of an earlier key would never verify */
        rc = write_pubkey(pubpath, key);
    }
    if (rc != ERR_OK) {
        EVP_PKEY_free(key);
        return rc;
    }
    *out = key;
    return ERR_OK;
}

static enum err load_private(const char *keypath, EVP_PKEY **out)
{
    char *buf = NULL;
    size_t len = 0;
    enum err rc = read_small_file(keypath, &buf, &len);
    if (rc != ERR_OK)
        return rc;
    BIO *b = BIO_new_mem_buf(buf, (int)len);
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    secure_wipe(buf, len);
    free(buf);
    if (!is_ed25519(key)) {
        EVP_PKEY_free(key);
        return ERR_INVALID;
    }
    *out = key;
    return ERR_OK;
}

enum err audit_key_load_or_create(const char *dir, EVP_PKEY **key_out)
{
    char keypath[4096], pubpath[4096];
    if ((size_t)snprintf(keypath, sizeof(keypath), "%s/signing.key", dir) >= sizeof(keypath) ||
        (size_t)snprintf(pubpath, sizeof(pubpath), "%s/signing.pub", dir) >= sizeof(pubpath))
        return ERR_INVALID;

    EVP_PKEY *key = NULL;
    enum err rc = load_private(keypath, &key);
    if (rc == ERR_NOT_FOUND)
        return create_key(keypath, pubpath, key_out);
    if (rc != ERR_OK)
        return rc;

    struct stat st;
    if (stat(keypath, &st) == 0 && (st.st_mode & 077) != 0)
        log_warn("audit: %s is readable by group or others; it should be mode 0600", keypath);

    EVP_PKEY *pub = NULL;
    rc = audit_pubkey_load(pubpath, &pub);
    if (rc == ERR_NOT_FOUND) {
        rc = write_pubkey(pubpath, key);
    } else if (rc == ERR_OK) {
        uint8_t a[AUDIT_PUBKEY_LEN], b[AUDIT_PUBKEY_LEN];
        if (audit_pubkey_raw(key, a) != 0 || audit_pubkey_raw(pub, b) != 0 ||
            !secure_equal(a, b, sizeof(a)))
            rc = ERR_INTEGRITY;
    }
    EVP_PKEY_free(pub);
    if (rc != ERR_OK) {
        EVP_PKEY_free(key);
        return rc;
    }
    *key_out = key;
    return ERR_OK;
}

enum err audit_pubkey_load(const char *path, EVP_PKEY **pub_out)
{
    char *buf = NULL;
    size_t len = 0;
    enum err rc = read_small_file(path, &buf, &len);
    if (rc != ERR_OK)
        return rc;
    EVP_PKEY *key = NULL;
    BIO *b = BIO_new_mem_buf(buf, (int)len);
    if (b != NULL) {
        key = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        if (key == NULL) {
            /* Accept the private key file too: its public half is what we need. */
            (void)BIO_reset(b);
            EVP_PKEY *priv = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
            uint8_t raw[AUDIT_PUBKEY_LEN];
            if (is_ed25519(priv) && audit_pubkey_raw(priv, raw) == 0)
                key = audit_pubkey_from_raw(raw);
            EVP_PKEY_free(priv);
        }
        BIO_free(b);
    }
    secure_wipe(buf, len);
    free(buf);
    if (!is_ed25519(key)) {
        EVP_PKEY_free(key);
        return ERR_INVALID;
    }
    *pub_out = key;
    return ERR_OK;
}

EVP_PKEY *audit_pubkey_from_raw(const uint8_t raw[AUDIT_PUBKEY_LEN])
{
    return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, AUDIT_PUBKEY_LEN);
}

int audit_pubkey_raw(EVP_PKEY *key, uint8_t raw[AUDIT_PUBKEY_LEN])
{
    size_t len = AUDIT_PUBKEY_LEN;
    if (!is_ed25519(key) || EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 ||
        len != AUDIT_PUBKEY_LEN)
        return -1;
    return 0;
}

int audit_pubkey_fingerprint(EVP_PKEY *key, char out[AUDIT_FINGERPRINT_LEN])
{
    uint8_t raw[AUDIT_PUBKEY_LEN], d[32];
    unsigned int dlen = 0;
    if (audit_pubkey_raw(key, raw) != 0 ||
        EVP_Digest(raw, sizeof(raw), d, &dlen, EVP_sha256(), NULL) != 1 || dlen != 32)
        return -1;
    memcpy(out, "sha256:", 7);
    hex_encode(d, 32, out + 7);
    return 0;
}
