/*
 * coffer init: creates a data directory for the embedded default (SQLite,
 * local blobs, a keyring, TLS material and the bootstrap admin).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/environments.h"
#include "audit/audit.h"
#include "audit/event.h"
#include "authn/password.h"
#include "cli/cli.h"
#include "cli/util.h"
#include "keys/keyring.h"
#include "keys/masterkey.h"
#include "keys/pkcs11.h"
#include "app/access.h"
#include "meta/access.h"
#include "meta/meta.h"
#include "tls/certgen.h"
#include "util/log.h"
#include "util/secure.h"

static void init_usage(FILE *f)
{
    fprintf(f,
            "usage: coffer init --data DIR [--admin NAME] [--admin-password-stdin] "
            "[--tls-san NAME]...\n"
            "                   [--master-key-file PATH | --kek pkcs11:URI]\n\n"
            "Creates a new data directory: database, encrypted blob store, keyring (mode 0600),\n"
            "a CA and server certificate under DIR/tls, and the bootstrap admin. Prints the\n"
            "admin password once unless one is read from stdin. Refuses an existing,\n"
            "non-empty directory.\n"
            "--master-key-file seals the keyring under a master key kept in PATH, outside\n"
            "DIR (created, mode 0600, when absent); COFFER_MASTER_KEY does the same from the\n"
            "environment. --kek pkcs11:module=SO;token=LABEL;pin-file=PATH keeps the KEKs in\n"
            "a PKCS#11 token instead (PIN from pin-file or COFFER_PKCS11_PIN). docs/KEYS.md.\n");
}

static int dir_is_empty_or_absent(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return errno == ENOENT ? 1 : -1;
    struct dirent *de;
    int empty = 1;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            empty = 0;
    }
    closedir(d);
    return empty;
}

static int init_mkdir(const char *base, const char *sub)
{
    char path[2048];
    snprintf(path, sizeof(path), "%s%s%s", base, sub[0] ? "/" : "", sub);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "coffer init: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (chmod(path, 0700) != 0)
        return -1;
    return 0;
}

/*
 * Creates the KEK store of a new data directory: the PKCS#11 token's first
 * KEK and keys/provider.json when p11 is not NULL, otherwise the keyring,
 * sealed when a master key file or COFFER_MASTER_KEY is given. Describes
 * the result in note. Returns ERR_OK, or the error after printing why.
 */
static enum err init_keys(const char *data, const struct pkcs11_config *p11,
                          const char *master_file, struct key_provider **kp, char *note,
                          size_t note_cap)
{
    char path[2048], source[1100] = "";
    if (p11 != NULL) {
        enum err e = pkcs11_open(p11, PKCS11_OPEN_NEW, kp);
        if (e != ERR_OK) {
            fprintf(stderr,
                    "coffer init: cannot use the PKCS#11 token '%s': %s (see the message "
                    "above)\n",
                    p11->token, err_info(e)->message);
            return e;
        }
        if (pkcs11_config_save(data, p11) != ERR_OK) {
            fprintf(stderr, "coffer init: cannot write %s/" PKCS11_PROVIDER_FILE "\n", data);
            return ERR_IO;
        }
        snprintf(note, note_cap, "pkcs11 token '%s' (%s)", p11->token, p11->module);
        return ERR_OK;
    }
    uint8_t key[MASTERKEY_LEN];
    enum err e = ERR_NOT_FOUND;
    int generated = 0;
    if (master_file != NULL) {
        if (masterkey_check_outside(master_file, data) != ERR_OK) {
            fprintf(stderr, "coffer init: keep the master key file outside %s\n", data);
            return ERR_INVALID;
        }
        if (access(master_file, F_OK) != 0 && errno == ENOENT) {
            e = masterkey_generate_file(master_file, key);
            generated = e == ERR_OK;
        } else {
            e = masterkey_read_file(master_file, key);
        }
        snprintf(source, sizeof(source), "%s", master_file);
    } else {
        e = masterkey_load(NULL, key, source, sizeof(source));
    }
    if (e != ERR_OK && e != ERR_NOT_FOUND) {
        fprintf(stderr, "coffer init: cannot use the master key: %s (see the message above)\n",
                err_info(e)->message);
        secure_wipe(key, sizeof(key));
        return e;
    }
    snprintf(path, sizeof(path), "%s/keys/keyring.json", data);
    enum err ce = keyring_create_sealed(path, e == ERR_OK ? key : NULL, kp);
    secure_wipe(key, sizeof(key));
    if (ce != ERR_OK) {
        fprintf(stderr, "coffer init: cannot create the keyring\n");
        return ce;
    }
    if (e == ERR_OK)
        snprintf(note, note_cap, "keyring sealed under the master key %s%s", source,
                 generated ? " (created now; back it up apart from the data)" : "");
    else
        snprintf(note, note_cap, "keyring (not sealed: --master-key-file seals it)");
    return ERR_OK;
}

int cli_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"admin", required_argument, NULL, 'a'},
        {"admin-password-stdin", no_argument, NULL, 'p'},
        {"tls-san", required_argument, NULL, 's'},
        {"master-key-file", required_argument, NULL, 'M'},
        {"kek", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = NULL, *admin = "admin", *master_file = NULL, *kek = NULL;
    const char *sans[TLS_EXTRA_SANS_MAX];
    size_t nsans = 0;
    int pw_stdin = 0, c;
    log_set_level(LOG_WARN);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'a':
            admin = optarg;
            break;
        case 'p':
            pw_stdin = 1;
            break;
        case 's':
            if (nsans >= TLS_EXTRA_SANS_MAX) {
                fprintf(stderr, "coffer init: at most %d --tls-san names\n", TLS_EXTRA_SANS_MAX);
                return 2;
            }
            sans[nsans++] = optarg;
            break;
        case 'M':
            master_file = optarg;
            break;
        case 'K':
            kek = optarg;
            break;
        case 'h':
            init_usage(stdout);
            return 0;
        default:
            init_usage(stderr);
            return 2;
        }
    }
    if (data == NULL || optind != argc) {
        init_usage(stderr);
        return 2;
    }
    if (strlen(data) > 900) {
        fprintf(stderr, "coffer init: data directory path too long\n");
        return 2;
    }
    struct pkcs11_config p11;
    int use_p11 = kek != NULL && strcmp(kek, "keyring") != 0;
    if (use_p11) {
        char why[200];
        if (pkcs11_parse_uri(kek, &p11, why, sizeof(why)) != ERR_OK) {
            fprintf(stderr, "coffer init: --kek: %s (or --kek keyring)\n", why);
            return 2;
        }
        if (master_file != NULL) {
            fprintf(stderr, "coffer init: --master-key-file seals a keyring; a PKCS#11 token "
                            "needs none\n");
            return 2;
        }
    }
    int empty = dir_is_empty_or_absent(data);
    if (empty != 1) {
        fprintf(stderr,
                "coffer init: %s already exists and is not empty; choose a new directory "
                "(existing data is never overwritten)\n",
                data);
        return empty < 0 ? 1 : 6;
    }
    char password[1100];
    if (pw_stdin) {
        if (cli_read_secret_stdin(password, sizeof(password)) != 0) {
            fprintf(stderr, "coffer init: could not read the admin password from stdin\n");
            return 2;
        }
    } else if (password_generate(password, sizeof(password)) != ERR_OK) {
        fprintf(stderr, "coffer init: no randomness available\n");
        return 1;
    }
    char why[160];
    if (password_check_policy(password, why, sizeof(why)) != ERR_OK) {
        secure_wipe(password, sizeof(password));
        fprintf(stderr, "coffer init: unacceptable admin password: %s\n", why);
        return 2;
    }
    int rc = 1;
    char path[2048], fingerprint[65], key_note[1200];
    struct meta *m = NULL;
    struct key_provider *kp = NULL;
    char *hash = NULL;
    if (init_mkdir(data, "") != 0 || init_mkdir(data, "tls") != 0 ||
        init_mkdir(data, "keys") != 0 || init_mkdir(data, "blobs") != 0 ||
        init_mkdir(data, "blobs/tmp") != 0 || init_mkdir(data, "audit") != 0)
        goto out;
    enum err ke =
        init_keys(data, use_p11 ? &p11 : NULL, master_file, &kp, key_note, sizeof(key_note));
    if (ke != ERR_OK) {
        rc = err_info(ke)->exit_code;
        goto out;
    }
    snprintf(path, sizeof(path), "%s/tls", data);
    enum err e = tls_generate(path, sans, nsans, fingerprint);
    if (e != ERR_OK) {
        fprintf(stderr, "coffer init: cannot create TLS material: %s\n",
                e == ERR_INVALID ? "invalid --tls-san name" : err_info(e)->message);
        rc = err_info(e)->exit_code;
        goto out;
    }
    if (env_config_write_default(data) != ERR_OK) {
        fprintf(stderr, "coffer init: cannot write %s/" ENV_CONFIG_FILE "\n", data);
        goto out;
    }
    snprintf(path, sizeof(path), "%s/coffer.db", data);
    if (meta_open(path, 1, &m) != ERR_OK) {
        fprintf(stderr, "coffer init: cannot create the database\n");
        goto out;
    }
    char admin_principal[128];
    snprintf(admin_principal, sizeof(admin_principal), "user:%s", admin);
    if (access_seed_builtins(m) != ERR_OK) {
        fprintf(stderr, "coffer init: cannot store the built-in roles\n");
        goto out;
    }
    if (password_hash(password, &hash) != ERR_OK ||
        meta_user_create(m, admin, hash, 3, NULL, 1) != ERR_OK ||
        meta_binding_add(m, "admin", admin_principal, NULL, "system:init") != ERR_OK) {
        fprintf(stderr, "coffer init: cannot create the admin user\n");
        goto out;
    }
    snprintf(path, sizeof(path), "%s/audit", data);
    struct audit_log *log = NULL;
    char *ev_json = NULL;
    size_t ev_len = 0;
    char who[128];
    snprintf(who, sizeof(who), "user:%s", admin);
    struct audit_event ev = {.principal = "system:init",
                             .auth_method = "none",
                             .action = "system:Init",
                             .resource = who,
                             .allow = 1,
                             .reason = "data directory created with its bootstrap admin"};
    if (audit_log_open(path, NULL, &log) != ERR_OK ||
        audit_event_encode(&ev, &ev_json, &ev_len) != ERR_OK ||
        audit_log_append(log, ev_json, ev_len, NULL) != ERR_OK) {
        free(ev_json);
        audit_log_close(log);
        fprintf(stderr, "coffer init: cannot create the audit log\n");
        goto out;
    }
    free(ev_json);
    audit_log_close(log);
    printf("Initialised Coffer data directory %s\n", data);
    printf("  admin user:       %s\n", admin);
    if (!pw_stdin)
        printf("  admin password:   %s   (shown once; store it now)\n", password);
    printf("  CA certificate:   %s/tls/ca.pem\n", data);
    printf("  CA fingerprint:   SHA256:%s\n", fingerprint);
    printf("  key provider:     %s\n", key_note);
    printf("Start the server:   coffer server --data %s\n", data);
    rc = 0;
out:
    secure_wipe(password, sizeof(password));
    secure_free_str(hash);
    meta_close(m);
    key_provider_free(kp);
    return rc;
}
