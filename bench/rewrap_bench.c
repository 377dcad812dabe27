/*
 * Re-wrap benchmark: how fast a KEK rotation re-wraps data keys with the
 * local keyring, through the same code the server runs (rotate_rewrap_all:
 * read a batch, unwrap, wrap, one transaction per batch, synchronous=FULL).
 *
 * With a fourth argument, a PKCS#11 URI (keys/pkcs11.h), the KEKs live in
 * that token instead (e.g. SoftHSM2): every unwrap and wrap is a C_Decrypt /
 * C_Encrypt call into the module.
 *
 * usage: rewrap_bench DIR COUNT BATCH [pkcs11:URI]
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypt/envelope.h"
#include "keys/keyring.h"
#include "keys/pkcs11.h"
#include "keys/rotate.h"
#include "meta/meta.h"
#include "util/log.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fills the database with count versions whose DEKs are wrapped by kp. */
static int fill(const char *db_path, struct key_provider *kp, long count)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(db_path, &db) != SQLITE_OK)
        return -1;
    sqlite3_exec(db,
                 "BEGIN; INSERT INTO artifacts(path, project, env, name, kind, sensitivity, "
                 "created_at, created_by) VALUES('bench/dev/x','bench','dev','x','other',1,0,"
                 "'bench')",
                 NULL, NULL, NULL);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(
        db,
        "INSERT INTO versions(artifact_id, version, sha256, size, created_by, "
        "created_at, blob_id, wrapped_dek, kek_id) VALUES(1,?,'00',0,'bench',0,?,?,?)",
        -1, &st, NULL);
    uint8_t dek[ENVELOPE_DEK_LEN], wrapped[KEYS_WRAPPED_MAX];
    char blob[33], kek[KEYS_KEK_ID_CAP];
    for (long i = 1; i <= count; i++) {
        size_t wl = 0;
        snprintf(blob, sizeof(blob), "%032lx", (unsigned long)i);
        if (envelope_new_dek(dek) != ERR_OK ||
            envelope_wrap(kp, dek, (const uint8_t *)blob, 32, wrapped, sizeof(wrapped), &wl, kek,
                          sizeof(kek)) != ERR_OK)
            return -1;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, i);
        sqlite3_bind_text(st, 2, blob, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, wrapped, (int)wl, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, kek, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            return -1;
    }
    sqlite3_finalize(st);
    int rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    sqlite3_close(db);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: rewrap_bench DIR COUNT BATCH [pkcs11:URI]\n");
        return 2;
    }
    log_set_level(LOG_WARN);
    long count = strtol(argv[2], NULL, 10);
    int batch = (int)strtol(argv[3], NULL, 10);
    char db_path[4096], kr_path[4096];
    snprintf(db_path, sizeof(db_path), "%s/coffer.db", argv[1]);
    snprintf(kr_path, sizeof(kr_path), "%s/keyring.json", argv[1]);
    struct meta *m = NULL;
    struct key_provider *kp = NULL;
    struct pkcs11_config cfg;
    char why[200];
    if (argc == 5 && pkcs11_parse_uri(argv[4], &cfg, why, sizeof(why)) != ERR_OK) {
        fprintf(stderr, "bad PKCS#11 URI: %s\n", why);
        return 2;
    }
    if (meta_open(db_path, 1, &m) != ERR_OK ||
        (argc == 5 ? pkcs11_open(&cfg, PKCS11_OPEN_CREATE, &kp) : keyring_create(kr_path, &kp)) !=
            ERR_OK) {
        fprintf(stderr, "cannot create the store in %s\n", argv[1]);
        return 1;
    }
    double t0 = now_s();
    if (fill(db_path, kp, count) != 0) {
        fprintf(stderr, "cannot fill the database\n");
        return 1;
    }
    printf("filled %ld versions in %.2f s\n", count, now_s() - t0);
    char id[KEYS_KEK_ID_CAP];
    if (keys_rotate(kp, id, sizeof(id)) != ERR_OK)
        return 1;
    int64_t done = 0;
    t0 = now_s();
    enum err e = rotate_rewrap_all(m, kp, batch, 0, NULL, 0, &done);
    double dt = now_s() - t0;
    printf("%s: re-wrapped %" PRId64 " DEKs in %.3f s (batch %d): %.0f DEKs/s\n", kp->name, done,
           dt, batch, dt > 0 ? (double)done / dt : 0.0);
    int ok = e == ERR_OK && done == count;
    printf("target (100000 DEKs in <= 10 s, i.e. >= 10000 DEKs/s): %s\n",
           ok && (double)done / dt >= 10000.0 ? "met" : "MISSED");
    key_provider_free(kp);
    meta_close(m);
    return ok ? 0 : 1;
}
