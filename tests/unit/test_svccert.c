#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "authn/mtls.h"
#include "meta/meta.h"
#include "meta/svccert_store.h"

static const char fp_hex[] = "ec7639727fec5a0cba0312b115ce027edb04f0d6aab56294a75dee789a80d89a";
static const char fp_colons[] = "EC:76:39:72:7F:EC:5A:0C:BA:03:12:B1:15:CE:02:7E:DB:04:F0:D6:AA:"
                                "B5:62:94:A7:5D:EE:78:9A:80:D8:9A";

static void test_fingerprint_parse(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    assert_int_equal(mtls_fingerprint_parse(fp_hex, a), 0);
    assert_int_equal(mtls_fingerprint_parse(fp_colons, b), 0);
    assert_memory_equal(a, b, 32);
    assert_int_equal(a[0], 0xec);
    assert_int_equal(a[31], 0x9a);
    assert_int_equal(mtls_fingerprint_parse(NULL, a), -1);
    assert_int_equal(mtls_fingerprint_parse("", a), -1);
    assert_int_equal(mtls_fingerprint_parse("abcd", a), -1);
    /* One digit too many or too few, a non-hex digit. */
    char longer[80];
    snprintf(longer, sizeof(longer), "%s0", fp_hex);
    assert_int_equal(mtls_fingerprint_parse(longer, a), -1);
    assert_int_equal(mtls_fingerprint_parse(fp_hex + 1, a), -1);
    char bad[65];
    memcpy(bad, fp_hex, sizeof(bad));
    bad[10] = 'g';
    assert_int_equal(mtls_fingerprint_parse(bad, a), -1);
}

static void test_store(void **state)
{
    (void)state;
    char dir[] = "/tmp/coffer-svccert-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/coffer.db", dir);
    struct meta *m = NULL;
    assert_int_equal(meta_open(path, 1, &m), ERR_OK);
    int64_t uid = 0;
    json_t *attrs = json_object();
    assert_int_equal(meta_user_create(m, "alice", NULL, 1, attrs, 0), ERR_OK);
    json_decref(attrs);
    struct meta_user u;
    assert_int_equal(meta_user_get(m, "alice", &u), ERR_OK);
    uid = u.id;
    meta_user_clear(&u);

    uint8_t fp[32], other[32];
    assert_int_equal(mtls_fingerprint_parse(fp_hex, fp), 0);
    memset(other, 0x11, sizeof(other));
    json_t *roles = json_pack("[s]", "viewer");
    int64_t id = 0, id2 = 0;
    assert_int_equal(meta_svccert_create(m, "ci", uid, fp, roles, "", &id), ERR_OK);
    assert_true(id > 0);
    assert_int_equal(meta_svccert_create(m, "ci2", uid, fp, roles, "", &id2), ERR_CONFLICT);

    struct meta_svccert c;
    assert_int_equal(meta_svccert_by_fingerprint(m, fp, &c), ERR_OK);
    assert_int_equal(c.id, id);
    assert_string_equal(c.name, "ci");
    assert_int_equal(c.owner_id, uid);
    assert_memory_equal(c.fingerprint, fp, 32);
    assert_string_equal(json_string_value(json_array_get(c.roles, 0)), "viewer");
    assert_int_equal(c.revoked_at, 0);
    meta_svccert_clear(&c);
    assert_int_equal(meta_svccert_by_fingerprint(m, other, &c), ERR_NOT_FOUND);
    assert_int_equal(meta_svccert_by_name(m, "ci", &c), ERR_OK);
    meta_svccert_clear(&c);

    assert_int_equal(meta_svccert_touch(m, id, 1234, "127.0.0.1"), ERR_OK);
    json_t *list = NULL;
    assert_int_equal(meta_svccert_list(m, 0, &list), ERR_OK);
    assert_int_equal(json_array_size(list), 1);
    json_t *row = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(row, "fingerprint")), fp_hex);
    assert_string_equal(json_string_value(json_object_get(row, "owner")), "alice");
    assert_int_equal(json_integer_value(json_object_get(row, "last_used_at")), 1234);
    json_decref(list);

    /* Revocation: the fingerprint no longer resolves and can be bound again. */
    assert_int_equal(meta_svccert_revoke(m, id, "user:admin"), ERR_OK);
    assert_int_equal(meta_svccert_revoke(m, id, "user:admin"), ERR_NOT_FOUND);
    assert_int_equal(meta_svccert_by_fingerprint(m, fp, &c), ERR_NOT_FOUND);
    assert_int_equal(meta_svccert_by_name(m, "ci", &c), ERR_NOT_FOUND);
    assert_int_equal(meta_svccert_by_id(m, id, &c), ERR_OK);
    assert_true(c.revoked_at > 0);
    meta_svccert_clear(&c);
    assert_int_equal(meta_svccert_create(m, "ci", uid, fp, roles, "", &id2), ERR_OK);
    assert_true(id2 != id);
    json_decref(roles);

    meta_close(m);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fingerprint_parse),
        cmocka_unit_test(test_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
