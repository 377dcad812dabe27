/*
 * Tests of the local keyring key provider and the envelope helpers: file
 * creation and permissions, wrap / unwrap, tamper detection, rotation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypt/envelope.h"
#include "keys/keyring.h"
#include "util/log.h"

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/coffer-test-keyring-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/keyring.json", f->dir);
    *state = f;
    log_set_level(LOG_ERROR + 1);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static size_t count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
}

static const uint8_t dek[32] = {0xde, 0xad, 0xbe, 0xef, 1,  2,  3,  4,  5,  6,  7,
                                8,    9,    10,   11,   12, 13, 14, 15, 16, 17, 18,
                                19,   20,   21,   22,   23, 24, 25, 26, 27, 28};
static const uint8_t ad[] = "blob-42";

static void test_create_open_round_trip(void **state)
{
    struct fixture *f = *state;
    mode_t old = umask(0); /* even a permissive umask must not widen the mode */
    struct key_provider *kp = NULL;
    assert_int_equal(keyring_create(f->path, &kp), ERR_OK);
    umask(old);
    assert_non_null(kp);
    assert_string_equal(kp->name, "keyring");

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(count_dir_entries(f->dir), 1); /* no temporary file left behind */

    uint8_t wrapped[KEYS_WRAPPED_MAX], wrapped2[KEYS_WRAPPED_MAX];
    size_t wlen = 0, wlen2 = 0;
    char kek_id[KEYS_KEK_ID_CAP];
    assert_int_equal(kp->wrap(kp, dek, sizeof(dek), ad, sizeof(ad), wrapped, sizeof(wrapped), &wlen,
                              kek_id, sizeof(kek_id)),
                     ERR_OK);
    assert_int_equal(wlen, 12 + 32 + 16);
    assert_string_equal(kek_id, "kek-1");
    /* A fresh nonce every time: wrapping twice gives different bytes. */
    assert_int_equal(kp->wrap(kp, dek, sizeof(dek), ad, sizeof(ad), wrapped2, sizeof(wrapped2),
                              &wlen2, kek_id, sizeof(kek_id)),
                     ERR_OK);
    assert_int_equal(wlen2, wlen);
    assert_memory_not_equal(wrapped, wrapped2, wlen);
    /* The DEK does not appear in clear. */
    assert_memory_not_equal(wrapped + 12, dek, sizeof(dek));
    key_provider_free(kp);

    /* The key file holds no DEK; a fresh provider from the file unwraps it. */
    assert_int_equal(keyring_open(f->path, &kp), ERR_OK);
    assert_int_equal(keyring_kek_count(kp), 1);
    struct keyring_kek_info info;
    assert_int_equal(keyring_kek_info(kp, 0, &info), ERR_OK);
    assert_string_equal(info.id, "kek-1");
    assert_int_equal(info.current, 1);
    assert_true(info.created > 1600000000);
    assert_int_equal(keyring_kek_info(kp, 1, &info), ERR_NOT_FOUND);

    uint8_t out[64];
    size_t out_len = 0;
    assert_int_equal(
        kp->unwrap(kp, "kek-1", wrapped, wlen, ad, sizeof(ad), out, sizeof(out), &out_len), ERR_OK);
    assert_int_equal(out_len, 32);
    assert_memory_equal(out, dek, 32);
    assert_int_equal(
        kp->unwrap(kp, "kek-1", wrapped2, wlen2, ad, sizeof(ad), out, sizeof(out), &out_len),
        ERR_OK);
    assert_memory_equal(out, dek, 32);
    key_provider_free(kp);
    key_provider_free(NULL);
}

static void test_tamper_and_wrong_ad(void **state)
{
    struct fixture *f = *state;
    struct key_provider *kp = NULL;
    assert_int_equal(keyring_create(f->path, &kp), ERR_OK);
    uint8_t wrapped[KEYS_WRAPPED_MAX], out[64];
    size_t wlen = 0, out_len = 0;
    char kek_id[KEYS_KEK_ID_CAP];
    assert_int_equal(kp->wrap(kp, dek, sizeof(dek), ad, sizeof(ad), wrapped, sizeof(wrapped), &wlen,
                              kek_id, sizeof(kek_id)),
                     ERR_OK);
    /* Every byte: nonce, ciphertext and tag. */
    for (size_t i = 0; i < wlen; i++) {
        wrapped[i] ^= 0x01;
        memset(out, 0xAA, sizeof(out));
        assert_int_equal(
            kp->unwrap(kp, kek_id, wrapped, wlen, ad, sizeof(ad), out, sizeof(out), &out_len),
            ERR_INTEGRITY);
        assert_int_equal(out_len, 0);
        for (size_t k = 0; k < 32; k++)
            assert_int_equal(out[k], 0);
        wrapped[i] ^= 0x01;
    }
    /* Truncated or extended. */
    assert_int_equal(
        kp->unwrap(kp, kek_id, wrapped, wlen - 1, ad, sizeof(ad), out, sizeof(out), &out_len),
        ERR_INTEGRITY);
    assert_int_equal(
        kp->unwrap(kp, kek_id, wrapped, 28, ad, sizeof(ad), out, sizeof(out), &out_len),
        ERR_INTEGRITY);
    assert_int_equal(kp->unwrap(kp, kek_id, wrapped, 0, ad, sizeof(ad), out, sizeof(out), &out_len),
                     ERR_INTEGRITY);
    wrapped[wlen] = 0;
    assert_int_equal(
        kp->unwrap(kp, kek_id, wrapped, wlen + 1, ad, sizeof(ad), out, sizeof(out), &out_len),
        ERR_INTEGRITY);
    /* Wrong associated data: another identity, a prefix of it, none at all. */
    const uint8_t other[] = "blob-43";
    assert_int_equal(
        kp->unwrap(kp, kek_id, wrapped, wlen, other, sizeof(other), out, sizeof(out), &out_len),
        ERR_INTEGRITY);
    assert_int_equal(
        kp->unwrap(kp, kek_id, wrapped, wlen, ad, sizeof(ad) - 1, out, sizeof(out), &out_len),
        ERR_INTEGRITY);
    assert_int_equal(kp->unwrap(kp, kek_id, wrapped, wlen, NULL, 0, out, sizeof(out), &out_len),
                     ERR_INTEGRITY);
    /* Unknown KEK. */
    assert_int_equal(
        kp->unwrap(kp, "kek-9", wrapped, wlen, ad, sizeof(ad), out, sizeof(out), &out_len),
        ERR_NOT_FOUND);
    /* Output too small. */
    assert_int_equal(kp->unwrap(kp, kek_id, wrapped, wlen, ad, sizeof(ad), out, 31, &out_len),
                     ERR_INVALID);
    /* Still intact after all that. */
    assert_int_equal(
        kp->unwrap(kp, kek_id, wrapped, wlen, ad, sizeof(ad), out, sizeof(out), &out_len), ERR_OK);
    assert_memory_equal(out, dek, 32);
    key_provider_free(kp);
}

static void test_wrap_arguments(void **state)
{
    struct fixture *f = *state;
    struct key_provider *kp = NULL;
    assert_int_equal(keyring_create(f->path, &kp), ERR_OK);
    uint8_t wrapped[KEYS_WRAPPED_MAX];
    size_t wlen = 0;
    char kek_id[KEYS_KEK_ID_CAP];
    assert_int_equal(kp->wrap(kp, dek, 32, NULL, 0, wrapped, 59, &wlen, kek_id, sizeof(kek_id)),
                     ERR_INVALID);
    assert_int_equal(kp->wrap(kp, dek, 32, NULL, 0, wrapped, 60, &wlen, kek_id, 5), ERR_INVALID);
    assert_int_equal(kp->wrap(kp, dek, 0, NULL, 0, wrapped, 60, &wlen, kek_id, sizeof(kek_id)),
                     ERR_INVALID);
    assert_int_equal(kp->wrap(kp, dek, 32, NULL, 0, wrapped, 60, &wlen, kek_id, 6), ERR_OK);
    assert_string_equal(kek_id, "kek-1");
    key_provider_free(kp);
}

static void test_create_refuses_existing(void **state)
{
    struct fixture *f = *state;
    write_file(f->path, "precious", 0600);
    struct key_provider *kp = (struct key_provider *)f;
    assert_int_equal(keyring_create(f->path, &kp), ERR_CONFLICT);
    assert_null(kp);
    char buf[32] = {0};
    FILE *fp = fopen(f->path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, sizeof(buf), fp));
    fclose(fp);
    assert_string_equal(buf, "precious");

    /* An existing keyring is not replaced either. */
    unlink(f->path);
    assert_int_equal(keyring_create(f->path, &kp), ERR_OK);
    struct key_provider *again = NULL;
    assert_int_equal(keyring_create(f->path, &again), ERR_CONFLICT);
    key_provider_free(kp);
    /* Nor is a dangling symbolic link followed. */
    char link_path[160];
    snprintf(link_path, sizeof(link_path), "%s/link.json", f->dir);
    assert_int_equal(symlink("/nonexistent/coffer-target", link_path), 0);
    assert_int_equal(keyring_create(link_path, &again), ERR_CONFLICT);
    assert_null(again);
}

static void test_open_refuses_loose_mode(void **state)
{
    struct fixture *f = *state;
    struct key_provider *kp = NULL;
    assert_int_equal(keyring_create(f->path, &kp), ERR_OK);
    key_provider_free(kp);
    const mode_t bad[] = {0644, 0640, 0604, 0660, 0602, 0620, 0610, 0601};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chmod(f->path, bad[i]), 0);
        kp = (struct key_provider *)f;
        assert_int_equal(keyring_open(f->path, &kp), ERR_FORBIDDEN);
        assert_null(kp);
    }
    assert_int_equal(chmod(f->path, 0400), 0);
    assert_int_equal(keyring_open(f->path, &kp), ERR_OK);
    key_provider_free(kp);
    assert_int_equal(chmod(f->path, 0600), 0);

    /* Symbolic links are refused, missing files reported as such. */
    char link_path[160];
    snprintf(link_path, sizeof(link_path), "%s/link.json", f->dir);
    assert_int_equal(symlink(f->path, link_path), 0);
    assert_int_equal(keyring_open(link_path, &kp), ERR_FORBIDDEN);
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/missing.json", f->dir);
    assert_int_equal(keyring_open(missing, &kp), ERR_NOT_FOUND);
    assert_int_equal(keyring_open(f->dir, &kp), ERR_INVALID);
}

static void test_open_rejects_malformed(void **state)
{
    struct fixture *f = *state;
    const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char good[512];
    snprintf(good, sizeof(good),
             "{\"format\":\"coffer-keyring\",\"version\":1,\"keks\":["
             "{\"id\":\"kek-1\",\"created\":1700000000,\"key\":\"%s\",\"state\":\"current\"}]}",
             hex);
    write_file(f->path, good, 0600);
    struct key_provider *kp = NULL;
    assert_int_equal(keyring_open(f->path, &kp), ERR_OK);
    key_provider_free(kp);

    /* Each document below differs from the good one in one way. */
#define KEK(id, created, key, state)                                                               \
    "{\"id\":\"" id "\",\"created\":" #created ",\"key\":\"" key "\",\"state\":\"" state "\"}"
#define DOC(keks) "{\"format\":\"coffer-keyring\",\"version\":1,\"keks\":[" keks "]}"
#define HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    const char *bad[] = {
        DOC(KEK("a", 1, HEX, "current") "," KEK("b", 1, HEX, "current")), /* two current */
        DOC(KEK("a", 1, HEX, "retired")),                                 /* none current */
        DOC(KEK("a", 1, HEX, "current") "," KEK("a", 1, HEX, "retired")), /* duplicate id */
        DOC(KEK("a", 1, HEX, "active")),                                  /* unknown state */
        DOC(KEK("../x", 1, HEX, "current")),                              /* unsafe id */
        DOC(KEK("a", -1, HEX, "current")),                                /* negative time */
        DOC(KEK("a", 1, "0011", "current")),                              /* short key */
        DOC(KEK("a", 1, HEX "zz", "current")),                            /* bad hex */
        DOC(""),                                                          /* no keys */
        "{\"format\":\"other\",\"version\":1,\"keks\":[" KEK("a", 1, HEX, "current") "]}",
        "{\"format\":\"coffer-keyring\",\"version\":2,\"keks\":[" KEK("a", 1, HEX, "current") "]}",
        "{\"format\":", /* not JSON */
    };
    const size_t n = sizeof(bad) / sizeof(bad[0]);
#undef KEK
#undef DOC
#undef HEX
    for (size_t i = 0; i < n; i++) {
        write_file(f->path, bad[i], 0600);
        kp = (struct key_provider *)f;
        assert_int_equal(keyring_open(f->path, &kp), ERR_INVALID);
        assert_null(kp);
    }
    write_file(f->path, "", 0600);
    assert_int_equal(keyring_open(f->path, &kp), ERR_INVALID);
}

static void test_rotate(void **state)
{
    struct fixture *f = *state;
    struct key_provider *kp = NULL;
    assert_int_equal(keyring_create(f->path, &kp), ERR_OK);
    uint8_t w1[KEYS_WRAPPED_MAX], w2[KEYS_WRAPPED_MAX], out[64];
    size_t l1 = 0, l2 = 0, out_len = 0;
    char id1[KEYS_KEK_ID_CAP], id2[KEYS_KEK_ID_CAP], new_id[KEYS_KEK_ID_CAP];
    assert_int_equal(kp->wrap(kp, dek, 32, ad, sizeof(ad), w1, sizeof(w1), &l1, id1, sizeof(id1)),
                     ERR_OK);
    assert_int_equal(keyring_rotate(kp, new_id, 3), ERR_INVALID); /* rolled back */
    assert_int_equal(keyring_kek_count(kp), 1);
    assert_int_equal(keyring_rotate(kp, new_id, sizeof(new_id)), ERR_OK);
    assert_string_equal(new_id, "kek-2");
    assert_int_equal(kp->wrap(kp, dek, 32, ad, sizeof(ad), w2, sizeof(w2), &l2, id2, sizeof(id2)),
                     ERR_OK);
    assert_string_equal(id1, "kek-1");
    assert_string_equal(id2, "kek-2");
    /* Each wrapped key opens only under its own KEK. */
    assert_int_equal(kp->unwrap(kp, id1, w1, l1, ad, sizeof(ad), out, sizeof(out), &out_len),
                     ERR_OK);
    assert_int_equal(kp->unwrap(kp, id2, w1, l1, ad, sizeof(ad), out, sizeof(out), &out_len),
                     ERR_INTEGRITY);
    key_provider_free(kp);

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(count_dir_entries(f->dir), 1);

    assert_int_equal(keyring_open(f->path, &kp), ERR_OK);
    assert_int_equal(keyring_kek_count(kp), 2);
    struct keyring_kek_info info;
    assert_int_equal(keyring_kek_info(kp, 0, &info), ERR_OK);
    assert_string_equal(info.id, "kek-1");
    assert_int_equal(info.current, 0);
    assert_int_equal(keyring_kek_info(kp, 1, &info), ERR_OK);
    assert_string_equal(info.id, "kek-2");
    assert_int_equal(info.current, 1);
    assert_int_equal(kp->unwrap(kp, id1, w1, l1, ad, sizeof(ad), out, sizeof(out), &out_len),
                     ERR_OK);
    assert_memory_equal(out, dek, 32);
    assert_int_equal(kp->unwrap(kp, id2, w2, l2, ad, sizeof(ad), out, sizeof(out), &out_len),
                     ERR_OK);
    assert_memory_equal(out, dek, 32);

    /* Many rotations keep ids unique and only one current. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(keyring_rotate(kp, NULL, 0), ERR_OK);
    assert_int_equal(keyring_kek_count(kp), 12);
    assert_int_equal(keyring_kek_info(kp, 11, &info), ERR_OK);
    assert_string_equal(info.id, "kek-12");
    assert_int_equal(info.current, 1);
    assert_int_equal(kp->unwrap(kp, id1, w1, l1, ad, sizeof(ad), out, sizeof(out), &out_len),
                     ERR_OK);
    key_provider_free(kp);
    assert_int_equal(keyring_open(f->path, &kp), ERR_OK);
    assert_int_equal(keyring_kek_count(kp), 12);
    key_provider_free(kp);
}

static void test_envelope(void **state)
{
    struct fixture *f = *state;
    struct key_provider *kp = NULL;
    assert_int_equal(keyring_create(f->path, &kp), ERR_OK);
    uint8_t d1[ENVELOPE_DEK_LEN], d2[ENVELOPE_DEK_LEN], zero[ENVELOPE_DEK_LEN] = {0};
    assert_int_equal(envelope_new_dek(d1), ERR_OK);
    assert_int_equal(envelope_new_dek(d2), ERR_OK);
    assert_memory_not_equal(d1, d2, sizeof(d1));
    assert_memory_not_equal(d1, zero, sizeof(d1));

    const uint8_t id[] = "blob-7", other[] = "blob-8";
    uint8_t wrapped[KEYS_WRAPPED_MAX], rewrapped[KEYS_WRAPPED_MAX], out[ENVELOPE_DEK_LEN];
    size_t wlen = 0, rlen = 0;
    char kek[KEYS_KEK_ID_CAP], kek2[KEYS_KEK_ID_CAP];
    assert_int_equal(
        envelope_wrap(kp, d1, id, sizeof(id), wrapped, sizeof(wrapped), &wlen, kek, sizeof(kek)),
        ERR_OK);
    assert_int_equal(wlen, ENVELOPE_WRAPPED_LEN);
    assert_int_equal(envelope_unwrap(kp, kek, wrapped, wlen, id, sizeof(id), out), ERR_OK);
    assert_memory_equal(out, d1, sizeof(d1));
    memset(out, 0xAA, sizeof(out));
    assert_int_equal(envelope_unwrap(kp, kek, wrapped, wlen, other, sizeof(other), out),
                     ERR_INTEGRITY);
    assert_memory_equal(out, zero, sizeof(out));

    /* A wrapped key of the wrong length is refused even though it authenticates. */
    uint8_t short_wrapped[KEYS_WRAPPED_MAX];
    size_t slen = 0;
    assert_int_equal(kp->wrap(kp, d1, 16, id, sizeof(id), short_wrapped, sizeof(short_wrapped),
                              &slen, kek2, sizeof(kek2)),
                     ERR_OK);
    assert_int_equal(envelope_unwrap(kp, kek2, short_wrapped, slen, id, sizeof(id), out),
                     ERR_INTEGRITY);

    assert_int_equal(keyring_rotate(kp, NULL, 0), ERR_OK);
    assert_int_equal(envelope_rewrap(kp, kek, wrapped, wlen, id, sizeof(id), rewrapped,
                                     sizeof(rewrapped), &rlen, kek2, sizeof(kek2)),
                     ERR_OK);
    assert_string_equal(kek2, "kek-2");
    assert_int_equal(envelope_unwrap(kp, kek2, rewrapped, rlen, id, sizeof(id), out), ERR_OK);
    assert_memory_equal(out, d1, sizeof(d1));
    assert_int_equal(envelope_rewrap(kp, kek, wrapped, wlen, other, sizeof(other), rewrapped,
                                     sizeof(rewrapped), &rlen, kek2, sizeof(kek2)),
                     ERR_INTEGRITY);
    key_provider_free(kp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_open_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_and_wrong_ad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrap_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refuses_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_loose_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_rejects_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_envelope, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
