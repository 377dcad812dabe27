#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "tls/certgen.h"

static const char *const file_names[] = {"ca.pem", "ca.key", "server.pem", "server.key"};

struct fixture {
    char dir[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/coffer-certgen-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char path[128];
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, file_names[i]);
        unlink(path);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void path_in(const struct fixture *f, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", f->dir, name);
}

static X509 *load_cert(const struct fixture *f, const char *name)
{
    char path[128];
    path_in(f, name, path, sizeof path);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    return x;
}

static EVP_PKEY *load_key(const struct fixture *f, const char *name)
{
    char path[128];
    path_in(f, name, path, sizeof path);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    EVP_PKEY *k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(k);
    return k;
}

/* Counts the files of the fixture directory, dot files included. */
static int count_entries(const struct fixture *f)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", f->dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int n = -1;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static int has_san(X509 *cert, int type, const char *dns, const unsigned char *ip, int ip_len)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    int found = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        int t = 0;
        ASN1_STRING *v = GENERAL_NAME_get0_value(g, &t);
        if (t != type)
            continue;
        if (type == GEN_DNS && ASN1_STRING_length(v) == (int)strlen(dns) &&
            memcmp(ASN1_STRING_get0_data(v), dns, strlen(dns)) == 0)
            found = 1;
        if (type == GEN_IPADD && ASN1_STRING_length(v) == ip_len &&
            memcmp(ASN1_STRING_get0_data(v), ip, (size_t)ip_len) == 0)
            found = 1;
    }
    GENERAL_NAMES_free(gens);
    return found;
}

static long days_valid(X509 *cert)
{
    int days = 0, secs = 0;
    assert_int_equal(
        ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert)), 1);
    return days;
}

static void test_generate_and_verify(void **state)
{
    struct fixture *f = *state;
    const char *extra[] = {"registry.example.com", "10.1.2.3", "fd00::7", "*.ml.example.org"};
    char fp[65];
    assert_int_equal(tls_generate(f->dir, extra, 4, fp), ERR_OK);
    assert_int_equal(strlen(fp), 64);
    assert_int_equal(count_entries(f), 4);

    X509 *ca = load_cert(f, "ca.pem");
    X509 *srv = load_cert(f, "server.pem");
    EVP_PKEY *ca_key = load_key(f, "ca.key");
    EVP_PKEY *srv_key = load_key(f, "server.key");

    /* The chain verifies against a store holding only the CA. */
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(store);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, srv, NULL), 1);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    assert_int_equal(X509_verify_cert(ctx), 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);

    /* Host name and address checks as a TLS client would do them. */
    assert_int_equal(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv, "registry.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv, "a.ml.example.org", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv, "evil.example.com", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "10.1.2.3", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "fd00::7", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "10.1.2.4", 0), 0);
    const unsigned char ip4[4] = {10, 1, 2, 3};
    assert_true(has_san(srv, GEN_IPADD, NULL, ip4, 4));
    assert_true(has_san(srv, GEN_DNS, "registry.example.com", NULL, 0));
    assert_false(has_san(srv, GEN_DNS, "10.1.2.3", NULL, 0));

    /* Keys match their certificates and are P-256. */
    assert_int_equal(X509_check_private_key(srv, srv_key), 1);
    assert_int_equal(X509_check_private_key(ca, ca_key), 1);
    assert_int_equal(X509_check_private_key(srv, ca_key), 0);
    char group[32];
    size_t glen = 0;
    assert_int_equal(EVP_PKEY_get_group_name(srv_key, group, sizeof group, &glen), 1);
    assert_string_equal(group, "prime256v1");
    assert_int_equal(X509_get_signature_nid(srv), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_get_signature_nid(ca), NID_ecdsa_with_SHA256);

    /* CA extensions. */
    assert_int_equal(X509_check_ca(ca), 1);
    BASIC_CONSTRAINTS *bc = NULL;
    int crit = -1;
    bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_true(bc->ca);
    assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(X509_get_extension_flags(ca) & EXFLAG_SS, EXFLAG_SS);
    assert_non_null(X509_get0_subject_key_id(ca));
    long ca_days = days_valid(ca);
    assert_true(ca_days >= 3649 && ca_days <= 3651);

    /* Server extensions. */
    assert_int_equal(X509_check_ca(srv), 0);
    assert_int_equal(X509_get_key_usage(srv), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(srv), XKU_SSL_SERVER);
    int ku = X509_get_ext_by_NID(srv, NID_key_usage, -1);
    assert_true(ku >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(srv, ku)), 1);
    const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(srv);
    assert_non_null(akid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(akid, X509_get0_subject_key_id(ca)), 0);
    long srv_days = days_valid(srv);
    assert_true(srv_days >= 824 && srv_days <= 826);
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(srv), NULL);
    assert_non_null(serial);
    assert_false(BN_is_negative(serial));
    assert_true(BN_num_bits(serial) > 64 && BN_num_bits(serial) <= 128);
    BN_free(serial);

    /* The fingerprint is the SHA-256 of the CA's DER. */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    assert_int_equal(X509_digest(ca, EVP_sha256(), md, &md_len), 1);
    assert_int_equal(md_len, 32);
    char expect[65];
    for (unsigned i = 0; i < md_len; i++)
        snprintf(expect + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(fp, expect);
    char fp2[65];
    char path[128];
    path_in(f, "ca.pem", path, sizeof path);
    assert_int_equal(tls_fingerprint_file(path, fp2), ERR_OK);
    assert_string_equal(fp2, expect);
    path_in(f, "server.pem", path, sizeof path);
    assert_int_equal(tls_fingerprint_file(path, fp2), ERR_OK);
    assert_string_not_equal(fp2, expect);

    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(ca_key);
    X509_free(srv);
    X509_free(ca);
}

static void test_modes(void **state)
{
    struct fixture *f = *state;
    char fp[65];
    mode_t old = umask(0);
    enum err e = tls_generate(f->dir, NULL, 0, fp);
    umask(old);
    assert_int_equal(e, ERR_OK);
    char path[128];
    struct stat st;
    path_in(f, "ca.key", path, sizeof path);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    path_in(f, "server.key", path, sizeof path);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    path_in(f, "ca.pem", path, sizeof path);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
}

static void test_refuses_overwrite(void **state)
{
    struct fixture *f = *state;
    char fp[65], fp_again[65] = "unchanged";
    assert_int_equal(tls_generate(f->dir, NULL, 0, fp), ERR_OK);
    assert_int_equal(tls_generate(f->dir, NULL, 0, fp_again), ERR_CONFLICT);
    assert_string_equal(fp_again, "unchanged");
    char path[128], now[65];
    path_in(f, "ca.pem", path, sizeof path);
    assert_int_equal(tls_fingerprint_file(path, now), ERR_OK);
    assert_string_equal(now, fp);
    assert_int_equal(count_entries(f), 4);

    /* A single leftover file is enough to refuse, and nothing is added. */
    for (size_t i = 0; i < 4; i++) {
        path_in(f, file_names[i], path, sizeof path);
        if (i != 3)
            assert_int_equal(unlink(path), 0);
    }
    assert_int_equal(tls_generate(f->dir, NULL, 0, fp_again), ERR_CONFLICT);
    assert_int_equal(count_entries(f), 1);
}

static void test_invalid_sans(void **state)
{
    struct fixture *f = *state;
    char fp[65];
    const char *bad[] = {
        "",
        "host name",
        "host_name",
        "-leading.example",
        "trailing-.example",
        "double..dot",
        "trailing.dot.",
        ".leading.dot",
        "a.*.example",
        "*",
        "*.com",
        "**.example.com",
        "1.2.3",
        "256.1.1.1",
        "fe80::1%eth0",
        "exa\nmple.com",
        "example.com/evil",
        "DNS:x,IP:1.2.3.4",
        "\xc3\xa9xample.com",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *one[] = {bad[i]};
        assert_int_equal(tls_generate(f->dir, one, 1, fp), ERR_INVALID);
    }
    char longlabel[80];
    memset(longlabel, 'a', 64);
    memcpy(longlabel + 64, ".example", 9);
    const char *one[] = {longlabel};
    assert_int_equal(tls_generate(f->dir, one, 1, fp), ERR_INVALID);

    char longname[260];
    for (size_t i = 0; i < 254; i++)
        longname[i] = (i % 2) ? '.' : 'a';
    longname[254] = '\0';
    longname[253] = 'b';
    one[0] = longname; /* 254 characters */
    assert_int_equal(tls_generate(f->dir, one, 1, fp), ERR_INVALID);

    const char *with_null[] = {"ok.example", NULL};
    assert_int_equal(tls_generate(f->dir, with_null, 2, fp), ERR_INVALID);
    assert_int_equal(count_entries(f), 0);

    /* Boundary: a 253-character name and a 63-character label are fine. */
    longname[252] = 'b';
    longname[253] = '\0';
    longlabel[63] = '.';
    memcpy(longlabel + 64, "example", 8);
    const char *good[] = {longname, longlabel, "UPPER.Example.COM", "xn--bcher-kva.example"};
    assert_int_equal(tls_generate(f->dir, good, 4, fp), ERR_OK);
    X509 *srv = load_cert(f, "server.pem");
    assert_true(has_san(srv, GEN_DNS, longname, NULL, 0));
    X509_free(srv);
}

static void test_fingerprint_file_errors(void **state)
{
    struct fixture *f = *state;
    char out[65], path[128];
    path_in(f, "missing.pem", path, sizeof path);
    assert_int_equal(tls_fingerprint_file(path, out), ERR_IO);
    path_in(f, "ca.pem", path, sizeof path);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", fp);
    fclose(fp);
    assert_int_equal(tls_fingerprint_file(path, out), ERR_INVALID);
}

static void test_missing_dir(void **state)
{
    (void)state;
    char fp[65];
    assert_int_equal(tls_generate("/nonexistent/coffer/tls", NULL, 0, fp), ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generate_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_sans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint_file_errors, setup, teardown),
        cmocka_unit_test(test_missing_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
