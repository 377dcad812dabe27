/*
 * coffer token: create, list and revoke API tokens of service accounts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/util.h"
#include "cli/cli.h"
#include "util/secure.h"

/* Parses a duration such as 90s, 30m, 12h, 30d, 2w (a bare number is
 * seconds). Returns -1 when malformed or longer than ten years. */
static long long token_cli_duration(const char *s)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || v <= 0 || v > 10LL * 366 * 86400)
        return -1;
    long long mul = 1;
    if (*end != '\0') {
        if (end[1] != '\0')
            return -1;
        switch (*end) {
        case 's':
            mul = 1;
            break;
        case 'm':
            mul = 60;
            break;
        case 'h':
            mul = 3600;
            break;
        case 'd':
            mul = 86400;
            break;
        case 'w':
            mul = 7 * 86400;
            break;
        default:
            return -1;
        }
    }
    if (v > 10LL * 366 * 86400 / mul)
        return -1;
    return v * mul;
}

static void token_cli_time(long long t, char *out, size_t cap)
{
    if (t <= 0) {
        snprintf(out, cap, "never");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int token_cli_create(struct client *c, const struct args *a)
{
    const char *name = args_get(a, "--name");
    const char *exp = args_get(a, "--expires");
    const struct args_opt *roles = args_opt(a, "--role");
    if (name == NULL || exp == NULL || roles == NULL || roles->count == 0) {
        fprintf(stderr, "coffer: token create needs --name, --expires and at least one --role\n");
        return 2;
    }
    long long secs = token_cli_duration(exp);
    if (secs < 0) {
        fprintf(stderr, "coffer: --expires takes a duration such as 12h, 30d or 2w\n");
        return 2;
    }
    json_t *list = json_array();
    for (int i = 0; i < roles->count; i++)
        json_array_append_new(list, json_string(roles->values[i]));
    json_t *body =
        json_pack("{s:s, s:I, s:o}", "name", name, "expires_in", (json_int_t)secs, "roles", list);
    if (args_has(a, "--scope"))
        json_object_set_new(body, "scope", json_string(args_get(a, "--scope")));
    json_t *out = NULL;
    int rc = client_json(c, "POST", "/v1/tokens", body, &out);
    json_decref(body);
    if (rc != 0)
        return rc;
    json_t *tok = json_object_get(out, "token");
    if (c->json_output) {
        cli_print_json(out);
    } else {
        char when[32];
        token_cli_time(json_integer_value(json_object_get(out, "expires_at")), when, sizeof(when));
        printf("%s\n", json_string_value(tok));
        fprintf(stderr,
                "Created token %lld for %s (owner %s), expires %s.\n"
                "It is shown only now: store it in your secret manager and use it as\n"
                "COFFER_TOKEN or 'Authorization: Bearer TOKEN'.\n",
                (long long)json_integer_value(json_object_get(out, "id")),
                json_string_value(json_object_get(out, "principal")),
                json_string_value(json_object_get(out, "owner")), when);
    }
    if (json_is_string(tok))
        secure_wipe((char *)json_string_value(tok), json_string_length(tok));
    json_decref(out);
    return 0;
}

static int token_cli_list(struct client *c, int all)
{
    json_t *out = NULL;
    int rc = client_json(c, "GET", all ? "/v1/tokens?all=1" : "/v1/tokens", NULL, &out);
    if (rc != 0)
        return rc;
    if (c->json_output) {
        cli_print_json(out);
        json_decref(out);
        return 0;
    }
    printf("%-5s %-20s %-12s %-8s %-21s %-21s %s\n", "ID", "NAME", "OWNER", "STATE", "EXPIRES",
           "LAST USED", "ROLES");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(out, "tokens"), i, t)
    {
        char exp[32], used[32];
        token_cli_time(json_integer_value(json_object_get(t, "expires_at")), exp, sizeof(exp));
        token_cli_time(json_integer_value(json_object_get(t, "last_used_at")), used, sizeof(used));
        char *roles = json_dumps(json_object_get(t, "roles"), JSON_COMPACT);
        printf("%-5lld %-20s %-12s %-8s %-21s %-21s %s\n",
               (long long)json_integer_value(json_object_get(t, "id")),
               json_string_value(json_object_get(t, "name")),
               json_string_value(json_object_get(t, "owner")),
               json_string_value(json_object_get(t, "state")), exp, used,
               roles != NULL ? roles : "[]");
        free(roles);
    }
    json_decref(out);
    return 0;
}

int cli_token(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer token create --name NAME --expires DURATION --role ROLE... [--scope "
        "PATTERN]\n"
        "       coffer token ls [--all]\n"
        "       coffer token revoke ID\n"
        "A token (cfr_...) acts as service:NAME with the roles given, and never with more\n"
        "than its owner may do. DURATION: 90m, 12h, 30d, 2w (the server caps it).\n";
    struct args_opt opts[] = {{"--name", 1, 0, {0}, 0}, {"--expires", 1, 0, {0}, 0},
                              {"--role", 1, 1, {0}, 0}, {"--scope", 1, 0, {0}, 0},
                              {"--all", 0, 0, {0}, 0},  {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = args_parse(&a, &c, argc, argv, usage);
    if (rc != 0 || a.help)
        return rc;
    if (a.npos < 1) {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    if ((rc = client_setup(&c, 1)) != 0)
        return rc;
    const char *sub = a.pos[0];
    if (strcmp(sub, "create") == 0 && a.npos == 1)
        return token_cli_create(&c, &a);
    if (strcmp(sub, "ls") == 0 && a.npos == 1)
        return token_cli_list(&c, args_has(&a, "--all"));
    if (strcmp(sub, "revoke") == 0 && a.npos == 2) {
        char path[128];
        char *id = client_escape(a.pos[1]);
        snprintf(path, sizeof(path), "/v1/tokens/%s", id != NULL ? id : "");
        free(id);
        if ((rc = client_json(&c, "DELETE", path, NULL, NULL)) != 0)
            return rc;
        if (!c.json_output)
            printf("Revoked token %s\n", a.pos[1]);
        return 0;
    }
    fprintf(stderr, "%s", usage);
    return 2;
}
