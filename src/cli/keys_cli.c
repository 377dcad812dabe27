/*
 * coffer keys: status of the key-encryption keys, rotation (online re-wrap
 * of every data key) and the automatic rotation period.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/cli.h"

static const char keys_usage[] =
    "usage: coffer keys status\n"
    "       coffer keys rotate [--batch N] [--pause-ms MS] [--no-wait]\n"
    "       coffer keys auto-rotate DURATION|off\n\n"
    "status      lists the KEKs with their age and how many data keys each wraps, and the\n"
    "            state of the rotation worker.\n"
    "rotate      makes a fresh KEK current and re-wraps every data key under it online,\n"
    "            N keys per transaction (default 1000) with MS milliseconds between batches\n"
    "            (default 0). Content is not re-encrypted. Retired KEKs are destroyed once\n"
    "            nothing refers to them. Waits until done unless --no-wait.\n"
    "auto-rotate rotates automatically when the current KEK is older than DURATION\n"
    "            (e.g. 90d); 'off' disables it.\n"
    "Needs admin:Keys.\n";

static void keys_print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s != NULL) {
        printf("%s\n", s);
        free(s);
    }
}

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
    json_t *out = NULL;
    int rc = client_json(c, "GET", "/v1/keys", NULL, &out);
    if (rc != 0)
        return rc;
    if (c->json_output)
        keys_print_json(out);
    else
        keys_print_status(out);
    json_decref(out);
    return 0;
}

static int keys_rotate(struct client *c, struct args *a)
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
                keys_print_json(out);
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

static int keys_auto(struct client *c, const char *period)
{
    json_t *body = json_pack("{s:s}", "period", period);
    json_t *out = NULL;
    int rc = client_json(c, "PUT", "/v1/keys/rotation-period", body, &out);
    json_decref(body);
    if (rc != 0)
        return rc;
    if (c->json_output) {
        keys_print_json(out);
    } else {
        long long s = (long long)json_integer_value(json_object_get(out, "period_seconds"));
        if (s == 0)
            printf("Automatic key rotation is off\n");
        else
            printf("Keys rotate automatically every %lld seconds\n", s);
    }
    json_decref(out);
    return 0;
}

int cli_keys(int argc, char **argv)
{
    struct args_opt opts[] = {{"--batch", 1, 0, {0}, 0},
                              {"--pause-ms", 1, 0, {0}, 0},
                              {"--no-wait", 0, 0, {0}, 0},
                              {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = args_parse(&a, &c, argc, argv, keys_usage);
    if (rc != 0)
        return rc;
    if (a.help)
        return 0;
    const char *sub = a.npos > 0 ? a.pos[0] : "";
    int want = strcmp(sub, "auto-rotate") == 0 ? 2 : 1;
    if ((strcmp(sub, "status") != 0 && strcmp(sub, "rotate") != 0 && want == 1) || a.npos != want) {
        fprintf(stderr, "%s", keys_usage);
        return 2;
    }
    if ((rc = client_setup(&c, 1)) != 0)
        return rc;
    if (strcmp(sub, "status") == 0)
        return keys_status(&c);
    if (strcmp(sub, "rotate") == 0)
        return keys_rotate(&c, &a);
    return keys_auto(&c, a.pos[1]);
}
