/*
 * coffer token: create, list and revoke API tokens of service accounts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/util.h"
#include "cli/cli.h"
#include "util/duration.h"
#include "util/secure.h"

/* The longest lifetime a token may ask for; the server caps it further. */
#define TOKEN_CLI_MAX_EXPIRY DURATION_TEN_YEARS

static int token_cli_create(struct client *c, const struct args *a)
{
    const char *name = args_get(a, "--name");
    const char *exp = args_get(a, "--expires");
    const struct args_opt *roles = args_opt(a, "--role");
    if (name == NULL || exp == NULL || roles == NULL || roles->count == 0) {
        fprintf(stderr, "coffer: token create needs --name, --expires and at least one --role\n");
        return 2;
    }
    int64_t secs;
    if (duration_parse(exp, TOKEN_CLI_MAX_EXPIRY, &secs) != 0) {
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
        cli_time_or_never(json_integer_value(json_object_get(out, "expires_at")), when,
                          sizeof(when));
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
    json_t *out;
    int rc = cli_call(c, "GET", all ? "/v1/tokens?all=1" : "/v1/tokens", NULL, &out);
    if (rc != 0 || out == NULL)
        return rc;
    printf("%-5s %-20s %-12s %-8s %-21s %-21s %s\n", "ID", "NAME", "OWNER", "STATE", "EXPIRES",
           "LAST USED", "ROLES");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(out, "tokens"), i, t)
    {
        char exp[32], used[32];
        cli_time_or_never(json_integer_value(json_object_get(t, "expires_at")), exp, sizeof(exp));
        cli_time_or_never(json_integer_value(json_object_get(t, "last_used_at")), used,
                          sizeof(used));
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
    int rc = cli_begin(&a, &c, argc, argv, usage, 1, ARGS_MAX_POS);
    if (rc != 0 || a.help)
        return rc;
    const char *sub = a.pos[0];
    if (strcmp(sub, "create") == 0 && a.npos == 1)
        return token_cli_create(&c, &a);
    if (strcmp(sub, "ls") == 0 && a.npos == 1)
        return token_cli_list(&c, args_has(&a, "--all"));
    if (strcmp(sub, "revoke") == 0 && a.npos == 2) {
        char path[128];
        cli_path(path, sizeof(path), "/v1/tokens/", a.pos[1], "");
        if ((rc = client_json(&c, "DELETE", path, NULL, NULL)) != 0)
            return rc;
        if (!c.json_output)
            printf("Revoked token %s\n", a.pos[1]);
        return 0;
    }
    return cli_usage_error(usage);
}
