/*
 * coffer keys: status of the key-encryption keys, rotation (online re-wrap
 * of every data key) and the automatic rotation period.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/util.h"
#include "keys/migrate.h"
#include "util/log.h"

static const char keys_usage[] =
    "usage: coffer keys status\n"
    "       coffer keys rotate [--batch N] [--pause-ms MS] [--no-wait]\n"
    "       coffer keys rotate --reencrypt PATH@N\n"
    "       coffer keys auto-rotate DURATION|off\n"
    "       coffer keys migrate --data DIR --to pkcs11:URI [--master-key-file PATH] [--batch N]\n"
    "       coffer keys seal --data DIR --master-key-file PATH\n\n"
    "status      lists the KEKs with their age and how many data keys each wraps, and the\n"
    "            state of the rotation worker.\n"
    "rotate      makes a fresh KEK current and re-wraps every data key under it online,\n"
    "            N keys per transaction (default 1000) with MS milliseconds between batches\n"
    "            (default 0). Content is not re-encrypted. Retired KEKs are destroyed once\n"
    "            nothing refers to them. Waits until done unless --no-wait.\n"
    "            With --reencrypt, instead re-encrypts the content of one version under a\n"
    "            fresh data key and a new content file (for a data key that may have\n"
    "            leaked); the old file is deleted. The content itself does not change.\n"
    "auto-rotate rotates automatically when the current KEK is older than DURATION\n"
    "            (e.g. 90d); 'off' disables it.\n"
    "migrate     (server stopped) moves a store from its keyring to a PKCS#11 token:\n"
    "            re-wraps every data key under a KEK generated in the token, then removes\n"
    "            the keyring. Run it again to resume after an interruption.\n"
    "seal        (server stopped) seals the keyring under the master key in PATH (created\n"
    "            when absent), or re-seals it under a new one (old key from COFFER_MASTER_KEY).\n"
    "status, rotate and auto-rotate talk to the server and need admin:Keys.\n";

static void keys_age(long long secs, char *out, size_t cap)
{
    if (secs >= 2 * 86400)
        snprintf(out, cap, "%lldd", secs / 86400);
    else if (secs >= 2 * 3600)
        snprintf(out, cap, "%lldh", secs / 3600);
    else if (secs >= 120)
        snprintf(out, cap, "%lldm", secs / 60);
    else
        snprintf(out, cap, "%llds", secs);
}

static void keys_print_status(json_t *out)
{
    printf("provider: %s\n", json_string_value(json_object_get(out, "provider")));
    printf("%-12s %-8s %-8s %10s %6s\n", "KEK", "STATE", "AGE", "DEKS", "TOTP");
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(out, "keks"), i, k)
    {
        char age[32];
        keys_age((long long)json_integer_value(json_object_get(k, "age_seconds")), age,
                 sizeof(age));
        printf("%-12s %-8s %-8s %10lld %6lld\n", json_string_value(json_object_get(k, "id")),
               json_string_value(json_object_get(k, "state")), age,
               (long long)json_integer_value(json_object_get(k, "deks")),
               (long long)json_integer_value(json_object_get(k, "totp_secrets")));
    }
    const char *kek;
    json_t *c;
    json_object_foreach(json_object_get(out, "unknown_keks"), kek, c)
        printf("%-12s %-8s %-8s %10lld %6lld\n", kek, "MISSING", "-",
               (long long)json_integer_value(json_object_get(c, "deks")),
               (long long)json_integer_value(json_object_get(c, "totp")));
    json_t *rot = json_object_get(out, "rotation");
    long long period = (long long)json_integer_value(json_object_get(rot, "period_seconds"));
    char p[32] = "off";
    if (period > 0)
        keys_age(period, p, sizeof(p));
    printf("rotation: %s", json_is_true(json_object_get(rot, "running")) ? "running" : "idle");
    if (json_is_true(json_object_get(rot, "running")))
        printf(" (to %s, %lld re-wrapped)", json_string_value(json_object_get(rot, "new_kek")),
               (long long)json_integer_value(json_object_get(rot, "rewrapped")));
    printf("; automatic: %s\n", p);
    if (json_object_get(rot, "error") != NULL)
        printf("rotation error: %s\n", json_string_value(json_object_get(rot, "error")));
}

static int keys_status(struct client *c)
{
    return cli_call_print(c, "GET", "/v1/keys", NULL, keys_print_status);
}

static int keys_cmd_rotate(struct client *c, struct args *a)
{
    json_t *body = json_object();
    const char *names[] = {"--batch", "--pause-ms"}, *fields[] = {"batch", "pause_ms"};
    for (int i = 0; i < 2; i++) {
        const char *v = args_get(a, names[i]);
        if (v == NULL)
            continue;
        char *end = NULL;
        long long n = strtoll(v, &end, 10);
        if (end == v || *end != '\0' || n < 0) {
            fprintf(stderr, "coffer: %s takes a non-negative number\n", names[i]);
            json_decref(body);
            return 2;
        }
        json_object_set_new(body, fields[i], json_integer(n));
    }
    json_t *out = NULL;
    int rc = client_json(c, "POST", "/v1/keys/rotate", body, &out);
    json_decref(body);
    if (rc != 0)
        return rc;
    char kek[64];
    snprintf(kek, sizeof(kek), "%s", json_string_value(json_object_get(out, "new_kek")));
    json_decref(out);
    if (!c->json_output)
        fprintf(stderr, "Rotation started: %s is the current KEK; re-wrapping data keys...\n", kek);
    if (args_has(a, "--no-wait")) {
        if (c->json_output)
            printf("{\"new_kek\": \"%s\", \"running\": true}\n", kek);
        return 0;
    }
    for (;;) {
        if ((rc = client_json(c, "GET", "/v1/keys", NULL, &out)) != 0)
            return rc;
        json_t *rot = json_object_get(out, "rotation");
        if (!json_is_true(json_object_get(rot, "running"))) {
            int failed = json_object_get(rot, "error") != NULL;
            if (c->json_output)
                cli_print_json(out);
            else
                keys_print_status(out);
            json_decref(out);
            if (failed) {
                fprintf(stderr, "coffer: the rotation stopped with an error; it resumes when the "
                                "server restarts, see the server log\n");
                return 1;
            }
            return 0;
        }
        json_decref(out);
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void keys_print_reencrypted(json_t *out)
{
    printf("Re-encrypted %s under a fresh data key (KEK %s); content file %s replaced by %s\n",
           json_string_value(json_object_get(out, "ref")),
           json_string_value(json_object_get(out, "new_kek")),
           json_string_value(json_object_get(out, "old_blob")),
           json_string_value(json_object_get(out, "new_blob")));
}

/* coffer keys rotate --reencrypt REF */
static int keys_reencrypt(struct client *c, const char *ref)
{
    json_t *body = json_pack("{s:s}", "ref", ref);
    int rc = cli_call_print(c, "POST", "/v1/keys/reencrypt", body, keys_print_reencrypted);
    json_decref(body);
    return rc;
}

static void keys_print_period(json_t *out)
{
    long long s = (long long)json_integer_value(json_object_get(out, "period_seconds"));
    if (s == 0)
        printf("Automatic key rotation is off\n");
    else
        printf("Keys rotate automatically every %lld seconds\n", s);
}

static int keys_auto(struct client *c, const char *period)
{
    json_t *body = json_pack("{s:s}", "period", period);
    int rc = cli_call_print(c, "PUT", "/v1/keys/rotation-period", body, keys_print_period);
    json_decref(body);
    return rc;
}

/* coffer keys migrate|seal: offline operations on a stopped server's data directory. */
static int keys_offline(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"to", required_argument, NULL, 't'},
        {"master-key-file", required_argument, NULL, 'M'},
        {"batch", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *sub = argv[1], *data = NULL, *to = NULL, *master = NULL;
    long batch = 1000;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'M':
            master = optarg;
            break;
        case 'b':
            batch = strtol(optarg, NULL, 10);
            break;
        case 'h':
            printf("%s", keys_usage);
            return 0;
        default:
            fprintf(stderr, "%s", keys_usage);
            return 2;
        }
    }
    int migrate = strcmp(sub, "migrate") == 0;
    if (data == NULL || optind != argc || (migrate && to == NULL) || (!migrate && master == NULL) ||
        batch < 1 || batch > 10000)
        return cli_usage_error(keys_usage);
    log_set_level(LOG_WARN);
    char why[300] = "";
    enum err e;
    if (migrate) {
        struct pkcs11_config cfg;
        if (pkcs11_parse_uri(to, &cfg, why, sizeof(why)) != ERR_OK) {
            fprintf(stderr, "coffer keys migrate: --to: %s\n", why);
            return 2;
        }
        int64_t count = 0;
        e = keys_migrate_to_pkcs11(data, master, &cfg, (int)batch, &count, why, sizeof(why));
        if (e == ERR_OK) {
            printf("Migrated %lld key(s) to the PKCS#11 token '%s'; the keyring was removed.\n",
                   (long long)count, cfg.token);
            return 0;
        }
        fprintf(stderr, "coffer keys migrate: %s\n", why);
        return err_info(e)->exit_code;
    }
    int created = 0;
    e = keys_seal_keyring(data, master, &created, why, sizeof(why));
    if (e == ERR_OK) {
        printf("The keyring is sealed under the master key in %s%s.\n", master,
               created ? " (created now; back it up apart from the data)" : "");
        return 0;
    }
    fprintf(stderr, "coffer keys seal: %s\n", why);
    return err_info(e)->exit_code;
}

int cli_keys(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "migrate") == 0 || strcmp(argv[1], "seal") == 0))
        return keys_offline(argc, argv);
    struct args_opt opts[] = {{"--batch", 1, 0, {0}, 0},
                              {"--pause-ms", 1, 0, {0}, 0},
                              {"--no-wait", 0, 0, {0}, 0},
                              {"--reencrypt", 1, 0, {0}, 0},
                              {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = args_parse(&a, &c, argc, argv, keys_usage);
    if (rc != 0 || a.help)
        return rc;
    const char *sub = a.npos > 0 ? a.pos[0] : "";
    int want = strcmp(sub, "auto-rotate") == 0 ? 2 : 1;
    if ((strcmp(sub, "status") != 0 && strcmp(sub, "rotate") != 0 && want == 1) || a.npos != want)
        return cli_usage_error(keys_usage);
    if ((rc = client_setup(&c, 1)) != 0)
        return rc;
    if (strcmp(sub, "status") == 0)
        return keys_status(&c);
    if (strcmp(sub, "rotate") == 0 && args_get(&a, "--reencrypt") != NULL) {
        if (args_get(&a, "--batch") != NULL || args_get(&a, "--pause-ms") != NULL ||
            args_has(&a, "--no-wait")) {
            fprintf(stderr, "coffer: --reencrypt takes no --batch, --pause-ms or --no-wait\n");
            return 2;
        }
        return keys_reencrypt(&c, args_get(&a, "--reencrypt"));
    }
    if (strcmp(sub, "rotate") == 0)
        return keys_cmd_rotate(&c, &a);
    return keys_auto(&c, a.pos[1]);
}
