#include "keys/migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/event.h"
#include "keys/keyring.h"
#include "keys/masterkey.h"
#include "keys/rotate.h"
#include "meta/keys_store.h"
#include "meta/meta.h"
#include "util/file.h"
#include "util/log.h"
#include "util/secure.h"

enum err keys_open_configured(const char *data_dir, const char *master_key_file,
                              struct key_provider **out)
{
    char path[PATH_MAX];
    struct pkcs11_config cfg;
    int found = 0;
    if (data_dir == NULL || out == NULL)
        return ERR_INVALID;
    *out = NULL;
    enum err e = pkcs11_config_load(data_dir, &cfg, &found);
    if (e != ERR_OK)
        return e;
    if (found) {
        if (master_key_file != NULL)
            log_warn("the data directory uses the PKCS#11 token %s; the master key file is not "
                     "used",
                     cfg.token);
        e = pkcs11_open(&cfg, PKCS11_OPEN_EXISTING, out);
        if (e != ERR_OK)
            log_error("cannot open the PKCS#11 token '%s' configured in %s/" PKCS11_PROVIDER_FILE,
                      cfg.token, data_dir);
        return e;
    }
    int n = snprintf(path, sizeof(path), "%s/keys/keyring.json", data_dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return ERR_INVALID;
    uint8_t key[MASTERKEY_LEN];
    const uint8_t *master = NULL;
    if (master_key_file != NULL) {
        if ((e = masterkey_check_outside(master_key_file, data_dir)) != ERR_OK ||
            (e = masterkey_read_file(master_key_file, key)) != ERR_OK)
            return e;
        master = key;
    }
    e = keyring_open_sealed(path, master, out);
    secure_wipe(key, sizeof(key));
    if (e != ERR_OK)
        log_error("cannot open the keyring %s", path);
    return e;
}

/* ---- migration ---- */

/* Wraps with the token; unwraps with the token or, for the keyring's KEKs, the keyring. */
struct migrate_pair {
    struct key_provider *to, *from;
};

static enum err migrate_wrap(struct key_provider *kp, const uint8_t *dek, size_t dek_len,
                             const uint8_t *ad, size_t ad_len, uint8_t *out, size_t out_cap,
                             size_t *out_len, char *kek_id, size_t kek_id_cap)
{
    struct migrate_pair *p = kp->impl;
    return p->to->wrap(p->to, dek, dek_len, ad, ad_len, out, out_cap, out_len, kek_id, kek_id_cap);
}

static enum err migrate_unwrap(struct key_provider *kp, const char *kek_id, const uint8_t *wrapped,
                               size_t wrapped_len, const uint8_t *ad, size_t ad_len,
                               uint8_t *dek_out, size_t dek_cap, size_t *dek_len)
{
    struct migrate_pair *p = kp->impl;
    enum err e =
        p->to->unwrap(p->to, kek_id, wrapped, wrapped_len, ad, ad_len, dek_out, dek_cap, dek_len);
    if (e == ERR_NOT_FOUND)
        e = p->from->unwrap(p->from, kek_id, wrapped, wrapped_len, ad, ad_len, dek_out, dek_cap,
                            dek_len);
    return e;
}

static size_t migrate_kek_count(struct key_provider *kp)
{
    struct migrate_pair *p = kp->impl;
    return keys_kek_count(p->to);
}

static enum err migrate_kek_info(struct key_provider *kp, size_t i, struct keys_kek_info *info)
{
    struct migrate_pair *p = kp->impl;
    return keys_kek_info(p->to, i, info);
}

/* Overwrites the keyring file with zeros, syncs it and removes it. */
static enum err migrate_remove_keyring(const char *path)
{
    int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? ERR_OK : ERR_IO;
    struct stat st;
    enum err rc = ERR_IO;
    if (fstat(fd, &st) == 0 && st.st_size >= 0) {
        char zeros[4096];
        memset(zeros, 0, sizeof(zeros));
        off_t left = st.st_size;
        rc = ERR_OK;
        while (left > 0 && rc == ERR_OK) {
            size_t chunk = left > (off_t)sizeof(zeros) ? sizeof(zeros) : (size_t)left;
            if (file_write_all(fd, zeros, chunk) != 0)
                rc = ERR_IO;
            else
                left -= (off_t)chunk;
        }
        if (rc == ERR_OK && fsync(fd) != 0)
            rc = ERR_IO;
    }
    close(fd);
    if (rc == ERR_OK && unlink(path) != 0)
        rc = ERR_IO;
    return rc;
}

static void migrate_audit(struct audit_log *log, const char *token, int64_t count,
                          json_t *destroyed)
{
    json_t *detail = json_pack("{s:s, s:s, s:I, s:O}", "provider", "pkcs11", "token", token,
                               "rewrapped", (json_int_t)count, "destroyed", destroyed);
    struct audit_event ev = {.principal = "system:coffer",
                             .auth_method = "none",
                             .action = "admin:Keys",
                             .resource = "*",
                             .allow = 1,
                             .reason = "keys migrated from the keyring to a PKCS#11 token",
                             .detail = detail};
    char *text = NULL;
    size_t len = 0;
    if (audit_event_encode(&ev, &text, &len) != ERR_OK ||
        audit_log_append(log, text, len, NULL) != ERR_OK)
        log_error("cannot record the key migration in the audit log");
    free(text);
    json_decref(detail);
}

/* Counts the keys still under a KEK the token does not hold. */
static enum err migrate_leftovers(struct meta *m, struct key_provider *to, int64_t *left)
{
    json_t *counts = NULL;
    enum err e = keys_store_kek_counts(m, &counts);
    if (e != ERR_OK)
        return e;
    *left = 0;
    const char *kek;
    json_t *c;
    json_object_foreach(counts, kek, c)
    {
        int known = 0;
        for (size_t i = 0; i < keys_kek_count(to); i++) {
            struct keys_kek_info info;
            if (keys_kek_info(to, i, &info) == ERR_OK && strcmp(info.id, kek) == 0)
                known = 1;
        }
        if (!known)
            *left += json_integer_value(json_object_get(c, "deks")) +
                     json_integer_value(json_object_get(c, "totp"));
    }
    json_decref(counts);
    return ERR_OK;
}

enum err keys_migrate_to_pkcs11(const char *data_dir, const char *master_key_file,
                                const struct pkcs11_config *cfg, int batch, int64_t *count,
                                char *why, size_t why_cap)
{
    char path[PATH_MAX];
    struct pkcs11_config cur;
    int found = 0;
    struct audit_log *log = NULL;
    struct meta *m = NULL;
    struct key_provider *from = NULL, *to = NULL;
    json_t *destroyed = json_array();
    enum err e;
    if (data_dir == NULL || cfg == NULL || count == NULL || batch < 1 || batch > ROTATE_BATCH_MAX)
        return ERR_INVALID;
    *count = 0;
    if ((e = pkcs11_config_load(data_dir, &cur, &found)) != ERR_OK || found) {
        snprintf(why, why_cap, "%s",
                 found ? "the store already uses a PKCS#11 token"
                       : "keys/provider.json is unreadable");
        e = found ? ERR_CONFLICT : e;
        goto done;
    }
    /* The audit log is locked by a running server: holding it keeps one out. */
    snprintf(path, sizeof(path), "%s/audit", data_dir);
    if ((e = audit_log_open(path, NULL, &log)) != ERR_OK) {
        snprintf(why, why_cap, "%s",
                 e == ERR_CONFLICT ? "a coffer server is using this data directory; stop it first"
                                   : "cannot open the audit log");
        goto done;
    }
    snprintf(path, sizeof(path), "%s/coffer.db", data_dir);
    if ((e = meta_open(path, 0, &m)) != ERR_OK) {
        snprintf(why, why_cap, "cannot open the database %s", path);
        goto done;
    }
    if ((e = keys_open_configured(data_dir, master_key_file, &from)) != ERR_OK) {
        snprintf(why, why_cap, "cannot open the keyring (sealed? give --master-key-file)");
        goto done;
    }
    if ((e = pkcs11_open(cfg, PKCS11_OPEN_CREATE, &to)) != ERR_OK) {
        snprintf(why, why_cap, "cannot open the PKCS#11 token '%s'", cfg->token);
        goto done;
    }
    struct migrate_pair pair = {to, from};
    struct key_provider both = {.name = "migration",
                                .wrap = migrate_wrap,
                                .unwrap = migrate_unwrap,
                                .kek_count = migrate_kek_count,
                                .kek_info = migrate_kek_info,
                                .impl = &pair};
    if ((e = rotate_rewrap_all(m, &both, batch, 0, NULL, 0, count)) != ERR_OK) {
        snprintf(why, why_cap, "re-wrapping stopped: %s; run the migration again to resume",
                 err_info(e)->message);
        goto done;
    }
    int64_t left = 0;
    if ((e = migrate_leftovers(m, to, &left)) != ERR_OK || left > 0) {
        snprintf(why, why_cap,
                 "%lld key(s) could not be re-wrapped (see the log); the keyring is kept",
                 (long long)left);
        e = e != ERR_OK ? e : ERR_INTEGRITY;
        goto done;
    }
    if ((e = pkcs11_config_save(data_dir, cfg)) != ERR_OK) {
        snprintf(why, why_cap, "cannot write %s/" PKCS11_PROVIDER_FILE, data_dir);
        goto done;
    }
    for (size_t i = 0; i < keys_kek_count(from); i++) {
        struct keys_kek_info info;
        if (keys_kek_info(from, i, &info) == ERR_OK)
            json_array_append_new(destroyed, json_string(info.id));
    }
    snprintf(path, sizeof(path), "%s/keys/keyring.json", data_dir);
    if (migrate_remove_keyring(path) != ERR_OK)
        log_warn("could not remove %s; delete it by hand, the store no longer uses it", path);
    migrate_audit(log, cfg->token, *count, destroyed);
    log_info("migrated %lld key(s) to the PKCS#11 token %s", (long long)*count, cfg->token);
done:
    json_decref(destroyed);
    key_provider_free(to);
    key_provider_free(from);
    meta_close(m);
    audit_log_close(log);
    return e;
}

enum err keys_seal_keyring(const char *data_dir, const char *master_key_file, int *created,
                           char *why, size_t why_cap)
{
    char path[PATH_MAX];
    struct pkcs11_config cur;
    int found = 0;
    struct audit_log *log = NULL;
    struct key_provider *kp = NULL;
    uint8_t key[MASTERKEY_LEN];
    enum err e;
    *created = 0;
    memset(key, 0, sizeof(key));
    if ((e = pkcs11_config_load(data_dir, &cur, &found)) != ERR_OK || found) {
        snprintf(why, why_cap, "the store uses a PKCS#11 token, not a keyring");
        return found ? ERR_INVALID : e;
    }
    if ((e = masterkey_check_outside(master_key_file, data_dir)) != ERR_OK) {
        snprintf(why, why_cap, "keep the master key file outside the data directory");
        return e;
    }
    snprintf(path, sizeof(path), "%s/audit", data_dir);
    if ((e = audit_log_open(path, NULL, &log)) != ERR_OK) {
        snprintf(why, why_cap, "%s",
                 e == ERR_CONFLICT ? "a coffer server is using this data directory; stop it first"
                                   : "cannot open the audit log");
        return e;
    }
    snprintf(path, sizeof(path), "%s/keys/keyring.json", data_dir);
    /* A sealed keyring opens with the old master key from the environment. */
    if ((e = keyring_open_sealed(path, NULL, &kp)) != ERR_OK) {
        snprintf(why, why_cap, "cannot open the keyring %s", path);
        goto done;
    }
    if (access(master_key_file, F_OK) != 0 && errno == ENOENT) {
        e = masterkey_generate_file(master_key_file, key);
        *created = e == ERR_OK;
    } else {
        e = masterkey_read_file(master_key_file, key);
    }
    if (e != ERR_OK) {
        snprintf(why, why_cap, "cannot read or create the master key file %s", master_key_file);
        goto done;
    }
    if ((e = keyring_seal(kp, key)) != ERR_OK)
        snprintf(why, why_cap, "cannot rewrite the keyring %s", path);
done:
    secure_wipe(key, sizeof(key));
    key_provider_free(kp);
    audit_log_close(log);
    return e;
}
