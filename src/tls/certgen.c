#include "tls/certgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util/file.h"
#include "util/log.h"
#include "util/secure.h"

/* Certificates start five minutes in the past to tolerate client clock skew. */
#define CERTGEN_BACKDATE_SECONDS (-300L)
#define CERTGEN_SERIAL_BYTES 16
#define CERTGEN_FILE_COUNT 4

/* One output file: its name, its PEM contents and its creation mode. */
struct certgen_file {
    const char *name;
    BIO *pem;
    mode_t mode;
    int created;
};

static int certgen_is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* 1 if s is a sane DNS name for a certificate: labels of 1-63 letters,
 * digits and inner hyphens, a last label that is not all digits (so that a
 * mistyped address is not taken for a name), at most TLS_HOSTNAME_MAX
 * characters, and optionally a leading "*." before at least two labels. */
static int certgen_hostname_valid(const char *s)
{
    size_t len = strnlen(s, TLS_HOSTNAME_MAX + 1);
    if (len == 0 || len > TLS_HOSTNAME_MAX)
        return 0;
    int wildcard = 0;
    if (s[0] == '*') {
        if (s[1] != '.')
            return 0;
        wildcard = 1;
        s += 2;
        len -= 2;
    }
    size_t label = 0, dots = 0;
    int all_digits = 1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
            all_digits = 1;
            dots++;
            continue;
        }
        if (!certgen_is_alnum(c) && c != '-')
            return 0;
        if (c == '-' && label == 0)
            return 0;
        if (c < '0' || c > '9')
            all_digits = 0;
        if (++label > 63)
            return 0;
    }
    if (label == 0 || s[len - 1] == '-' || all_digits)
        return 0;
    if (wildcard && dots == 0)
        return 0;
    return 1;
}

/* Appends one subjectAltName entry: an IP name if entry parses as an IPv4 or
 * IPv6 address, else a DNS name if it is a valid hostname. */
static enum err certgen_push_san(GENERAL_NAMES *gens, const char *entry)
{
    unsigned char addr[16];
    int addr_len = 0;
    if (inet_pton(AF_INET, entry, addr) == 1)
        addr_len = 4;
    else if (inet_pton(AF_INET6, entry, addr) == 1)
        addr_len = 16;
    else if (!certgen_hostname_valid(entry))
        return ERR_INVALID;

    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_STRING *value = addr_len > 0 ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
    if (gen == NULL || value == NULL)
        goto fail;
    if (addr_len > 0) {
        if (ASN1_OCTET_STRING_set(value, addr, addr_len) != 1)
            goto fail;
        GENERAL_NAME_set0_value(gen, GEN_IPADD, value);
    } else {
        if (ASN1_STRING_set(value, entry, (int)strlen(entry)) != 1)
            goto fail;
        GENERAL_NAME_set0_value(gen, GEN_DNS, value);
    }
    value = NULL;
    if (sk_GENERAL_NAME_push(gens, gen) <= 0)
        goto fail;
    return ERR_OK;
fail:
    ASN1_STRING_free(value);
    GENERAL_NAME_free(gen);
    return ERR_INTERNAL;
}

/* Builds the server's subjectAltName list; the caller frees it with
 * GENERAL_NAMES_free. NULL with *err set on failure. */
static GENERAL_NAMES *certgen_build_sans(const char *const *extra, size_t n_extra, enum err *err)
{
    static const char *const defaults[] = {"localhost", "127.0.0.1", "::1"};
    *err = ERR_INVALID;
    if (n_extra > TLS_EXTRA_SANS_MAX || (n_extra > 0 && extra == NULL))
        return NULL;
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    if (gens == NULL) {
        *err = ERR_INTERNAL;
        return NULL;
    }
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        if ((*err = certgen_push_san(gens, defaults[i])) != ERR_OK)
            goto fail;
    }
    for (size_t i = 0; i < n_extra; i++) {
        *err = extra[i] == NULL ? ERR_INVALID : certgen_push_san(gens, extra[i]);
        if (*err != ERR_OK)
            goto fail;
    }
    return gens;
fail:
    GENERAL_NAMES_free(gens);
    return NULL;
}

/* Sets a random positive serial of CERTGEN_SERIAL_BYTES bytes. */
static int certgen_set_serial(X509 *cert)
{
    unsigned char buf[CERTGEN_SERIAL_BYTES];
    if (secure_random(buf, sizeof buf) != 0)
        return -1;
    buf[0] &= 0x7f; /* DER integers are signed; keep the serial positive. */
    BIGNUM *bn = BN_bin2bn(buf, sizeof buf, NULL);
    int ok = bn != NULL && !BN_is_zero(bn) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

/* Adds one extension written in OpenSSL's configuration syntax. The value
 * is always a constant from this file, never outside input. */
static int certgen_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int certgen_set_name(X509_NAME *name, const char *cn)
{
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Coffer", -1, -1,
                                   0) != 1)
        return -1;
    return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                      0) == 1
               ? 0
               : -1;
}

/* Fills the fields shared by both certificates: version 3, serial, subject,
 * issuer, validity and public key. issuer is NULL for the self-signed CA. */
static int certgen_fill_common(X509 *cert, X509 *issuer, EVP_PKEY *key, const char *cn, long days)
{
    if (X509_set_version(cert, 2) != 1 || certgen_set_serial(cert) != 0)
        return -1;
    if (certgen_set_name(X509_get_subject_name(cert), cn) != 0)
        return -1;
    X509_NAME *issuer_name =
        issuer != NULL ? X509_get_subject_name(issuer) : X509_get_subject_name(cert);
    if (X509_set_issuer_name(cert, issuer_name) != 1)
        return -1;
    if (X509_gmtime_adj(X509_getm_notBefore(cert), CERTGEN_BACKDATE_SECONDS) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(cert), (int)days, 0, NULL) == NULL)
        return -1;
    return X509_set_pubkey(cert, key) == 1 ? 0 : -1;
}

/* Creates the self-signed CA certificate for ca_key. */
static X509 *certgen_make_ca(EVP_PKEY *ca_key)
{
    unsigned char tag[4];
    char tag_hex[2 * sizeof tag + 1], cn[64];
    /* A random tag keeps CA names distinct across installations. */
    if (secure_random(tag, sizeof tag) != 0)
        return NULL;
    hex_encode(tag, sizeof tag, tag_hex);
    snprintf(cn, sizeof cn, "Coffer CA %s", tag_hex);

    X509 *ca = X509_new();
    if (ca == NULL || certgen_fill_common(ca, NULL, ca_key, cn, TLS_CA_DAYS) != 0 ||
        certgen_add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") != 0 ||
        certgen_add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        certgen_add_ext(ca, ca, NID_subject_key_identifier, "hash") != 0 ||
        X509_sign(ca, ca_key, EVP_sha256()) <= 0) {
        X509_free(ca);
        return NULL;
    }
    return ca;
}

/* Creates the server certificate for server_key, signed by the CA. */
static X509 *certgen_make_server(EVP_PKEY *server_key, X509 *ca, EVP_PKEY *ca_key,
                                 GENERAL_NAMES *sans)
{
    X509 *cert = X509_new();
    if (cert == NULL ||
        certgen_fill_common(cert, ca, server_key, "Coffer server", TLS_SERVER_DAYS) != 0 ||
        certgen_add_ext(cert, ca, NID_basic_constraints, "CA:FALSE") != 0 ||
        certgen_add_ext(cert, ca, NID_key_usage, "critical,digitalSignature") != 0 ||
        certgen_add_ext(cert, ca, NID_ext_key_usage, "serverAuth") != 0 ||
        certgen_add_ext(cert, ca, NID_subject_key_identifier, "hash") != 0 ||
        certgen_add_ext(cert, ca, NID_authority_key_identifier, "keyid:always") != 0 ||
        X509_add1_ext_i2d(cert, NID_subject_alt_name, sans, 0, 0) != 1 ||
        X509_sign(cert, ca_key, EVP_sha256()) <= 0) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* PEM of a certificate in a memory BIO; NULL on failure. */
static BIO *certgen_cert_pem(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio != NULL && PEM_write_bio_X509(bio, cert) != 1) {
        BIO_free(bio);
        bio = NULL;
    }
    return bio;
}

/* PEM (PKCS#8, unencrypted) of a private key in a memory BIO whose buffer is
 * cleansed when it grows and when it is freed. NULL on failure. */
static BIO *certgen_key_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    if (bio != NULL && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
        BIO_free(bio);
        bio = NULL;
    }
    return bio;
}

/* Moves tmp to name within dirfd without ever replacing an existing name. */
static enum err certgen_publish(int dirfd, const char *tmp, const char *name)
{
    if (renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) == 0)
        return ERR_OK;
    if (errno == EEXIST)
        return ERR_CONFLICT;
    if (errno != EINVAL && errno != ENOSYS)
        return ERR_IO;
    /* The file system cannot rename without replacing: a hard link fails
     * with EEXIST just the same. */
    if (linkat(dirfd, tmp, dirfd, name, 0) != 0)
        return errno == EEXIST ? ERR_CONFLICT : ERR_IO;
    if (unlinkat(dirfd, tmp, 0) != 0)
        log_warn("tls: cannot remove temporary file %s: %s", tmp, strerror(errno));
    return ERR_OK;
}

/* Writes f->pem to f->name in dirfd through a fsynced temporary file that is
 * created with f->mode, then renamed into place. */
static enum err certgen_write_file(int dirfd, struct certgen_file *f)
{
    unsigned char rnd[8];
    char rnd_hex[2 * sizeof rnd + 1], tmp[128];
    if (secure_random(rnd, sizeof rnd) != 0)
        return ERR_INTERNAL;
    hex_encode(rnd, sizeof rnd, rnd_hex);
    int n = snprintf(tmp, sizeof tmp, ".%s.tmp-%s", f->name, rnd_hex);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return ERR_INTERNAL;

    char *data = NULL;
    long len = BIO_get_mem_data(f->pem, &data);
    if (len <= 0 || data == NULL)
        return ERR_INTERNAL;

    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, f->mode);
    if (fd < 0) {
        log_error("tls: cannot create %s: %s", tmp, strerror(errno));
        return ERR_IO;
    }
    int ok = file_write_all(fd, data, (size_t)len) == 0 && fsync(fd) == 0;
    int saved_errno = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved_errno = errno;
    }
    enum err e = ERR_IO;
    if (ok) {
        e = certgen_publish(dirfd, tmp, f->name);
        saved_errno = errno;
    }
    if (e != ERR_OK) {
        log_error("tls: cannot write %s: %s", f->name,
                  e == ERR_CONFLICT ? "it already exists" : strerror(saved_errno));
        unlinkat(dirfd, tmp, 0);
        return e;
    }
    f->created = 1;
    return ERR_OK;
}

/* Fails with ERR_CONFLICT if any of the files already exists. */
static enum err certgen_check_absent(int dirfd, const struct certgen_file *files)
{
    for (size_t i = 0; i < CERTGEN_FILE_COUNT; i++) {
        struct stat st;
        if (fstatat(dirfd, files[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            log_error("tls: %s already exists; refusing to overwrite it", files[i].name);
            return ERR_CONFLICT;
        }
        if (errno != ENOENT)
            return ERR_IO;
    }
    return ERR_OK;
}

static enum err certgen_fingerprint(X509 *cert, char out[65])
{
    unsigned char *der = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int der_len = i2d_X509(cert, &der);
    if (der_len <= 0)
        return ERR_INTERNAL;
    int ok = EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL) == 1 && md_len == 32;
    OPENSSL_free(der);
    if (!ok)
        return ERR_INTERNAL;
    hex_encode(md, md_len, out);
    return ERR_OK;
}

/* Generates both key pairs and certificates, and stores the PEM encodings in
 * files[] (order: ca.pem, ca.key, server.pem, server.key). */
static enum err certgen_make_material(GENERAL_NAMES *sans, struct certgen_file *files,
                                      char fingerprint_out[65])
{
    enum err e = ERR_INTERNAL;
    X509 *ca = NULL, *server = NULL;
    EVP_PKEY *ca_key = EVP_EC_gen("P-256");
    EVP_PKEY *server_key = EVP_EC_gen("P-256");
    if (ca_key == NULL || server_key == NULL)
        goto done;
    if ((ca = certgen_make_ca(ca_key)) == NULL ||
        (server = certgen_make_server(server_key, ca, ca_key, sans)) == NULL)
        goto done;
    files[0].pem = certgen_cert_pem(ca);
    files[1].pem = certgen_key_pem(ca_key);
    files[2].pem = certgen_cert_pem(server);
    files[3].pem = certgen_key_pem(server_key);
    for (size_t i = 0; i < CERTGEN_FILE_COUNT; i++) {
        if (files[i].pem == NULL)
            goto done;
    }
    e = certgen_fingerprint(ca, fingerprint_out);
done:
    X509_free(server);
    X509_free(ca);
    EVP_PKEY_free(server_key); /* EVP_PKEY_free cleanses the private key. */
    EVP_PKEY_free(ca_key);
    return e;
}

enum err tls_generate(const char *tls_dir, const char *const *extra_sans, size_t n_extra,
                      char fingerprint_out[65])
{
    struct certgen_file files[CERTGEN_FILE_COUNT] = {
        {TLS_CA_CERT_FILE, NULL, 0644, 0},
        {TLS_CA_KEY_FILE, NULL, 0600, 0},
        {TLS_SERVER_CERT_FILE, NULL, 0644, 0},
        {TLS_SERVER_KEY_FILE, NULL, 0600, 0},
    };
    char fp[65] = {0};
    enum err e = ERR_INTERNAL;
    if (tls_dir == NULL || fingerprint_out == NULL)
        return ERR_INVALID;

    GENERAL_NAMES *sans = certgen_build_sans(extra_sans, n_extra, &e);
    if (sans == NULL)
        return e;
    int dirfd = open(tls_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        log_error("tls: cannot open %s: %s", tls_dir, strerror(errno));
        GENERAL_NAMES_free(sans);
        return ERR_IO;
    }
    if ((e = certgen_check_absent(dirfd, files)) != ERR_OK)
        goto done;
    if ((e = certgen_make_material(sans, files, fp)) != ERR_OK)
        goto done;
    for (size_t i = 0; i < CERTGEN_FILE_COUNT && e == ERR_OK; i++)
        e = certgen_write_file(dirfd, &files[i]);
    if (e == ERR_OK && fsync(dirfd) != 0)
        e = ERR_IO;
done:
    for (size_t i = 0; i < CERTGEN_FILE_COUNT; i++) {
        if (e != ERR_OK && files[i].created)
            unlinkat(dirfd, files[i].name, 0);
        BIO_free(files[i].pem);
    }
    close(dirfd);
    GENERAL_NAMES_free(sans);
    ERR_clear_error();
    if (e == ERR_OK)
        memcpy(fingerprint_out, fp, sizeof fp);
    return e;
}

enum err tls_fingerprint_file(const char *cert_pem_path, char out[65])
{
    if (cert_pem_path == NULL || out == NULL)
        return ERR_INVALID;
    BIO *bio = BIO_new_file(cert_pem_path, "r");
    if (bio == NULL) {
        ERR_clear_error();
        return ERR_IO;
    }
    X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    enum err e = cert != NULL ? certgen_fingerprint(cert, out) : ERR_INVALID;
    X509_free(cert);
    ERR_clear_error();
    return e;
}
