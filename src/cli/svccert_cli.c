/*
 * coffer service cert: bind TLS client certificates to service accounts,
 * list and remove the bindings (administrators).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/util.h"

int cli_service(int argc, char **argv);

static void svccert_cli_bound(json_t *out)
{
    printf("Bound certificate %s as %s (owner %s), binding id %lld\n",
           json_string_value(json_object_get(out, "fingerprint")),
           json_string_value(json_object_get(out, "principal")),
           json_string_value(json_object_get(out, "owner")),
           (long long)json_integer_value(json_object_get(out, "id")));
}

static int svccert_cli_add(struct client *c, const struct args *a, const char *name)
{
    const char *fp = args_get(a, "--fingerprint");
    const struct args_opt *roles = args_opt(a, "--role");
    if (fp == NULL || roles == NULL || roles->count == 0) {
        fprintf(stderr, "coffer: service cert add needs --fingerprint and at least one --role\n");
        return 2;
    }
    json_t *list = json_array();
    for (int i = 0; i < roles->count; i++)
        json_array_append_new(list, json_string(roles->values[i]));
    json_t *body = json_pack("{s:s, s:s, s:o}", "name", name, "fingerprint", fp, "roles", list);
    if (args_has(a, "--scope"))
        json_object_set_new(body, "scope", json_string(args_get(a, "--scope")));
    if (args_has(a, "--owner"))
        json_object_set_new(body, "owner", json_string(args_get(a, "--owner")));
    int rc = cli_call_print(c, "POST", "/v1/service-certs", body, svccert_cli_bound);
    json_decref(body);
    return rc;
}

static int svccert_cli_list(struct client *c)
{
    json_t *out;
    int rc = cli_call(c, "GET", "/v1/service-certs", NULL, &out);
    if (rc != 0 || out == NULL)
        return rc;
    printf("%-5s %-20s %-12s %-8s %-21s %-64s %s\n", "ID", "NAME", "OWNER", "STATE", "LAST USED",
           "FINGERPRINT (SHA-256)", "ROLES");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(out, "certs"), i, t)
    {
        char used[32];
        cli_time_or_never(json_integer_value(json_object_get(t, "last_used_at")), used,
                          sizeof(used));
        char *roles = json_dumps(json_object_get(t, "roles"), JSON_COMPACT);
        printf("%-5lld %-20s %-12s %-8s %-21s %-64s %s\n",
               (long long)json_integer_value(json_object_get(t, "id")),
               json_string_value(json_object_get(t, "name")),
               json_string_value(json_object_get(t, "owner")),
               json_string_value(json_object_get(t, "state")), used,
               json_string_value(json_object_get(t, "fingerprint")), roles != NULL ? roles : "[]");
        free(roles);
    }
    json_decref(out);
    return 0;
}

int cli_service(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer service cert add NAME --fingerprint SHA256 --role ROLE... [--owner USER]\n"
        "                               [--scope PATTERN]\n"
        "       coffer service cert ls\n"
        "       coffer service cert rm ID\n"
        "Binds a TLS client certificate (issued by a CA given to 'coffer server --client-ca')\n"
        "to service:NAME by its SHA-256 fingerprint ('openssl x509 -noout -fingerprint -sha256').\n"
        "Requests with that certificate and no bearer token act as service:NAME with the\n"
        "roles given, and never with more than the owner (default: you) may do.\n"
        "Administrators only.\n";
    struct args_opt opts[] = {{"--fingerprint", 1, 0, {0}, 0},
                              {"--role", 1, 1, {0}, 0},
                              {"--owner", 1, 0, {0}, 0},
                              {"--scope", 1, 0, {0}, 0},
                              {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_parse(&a, &c, argc, argv, usage, 2, 3);
    if (rc != 0 || a.help)
        return rc;
    const char *sub = a.pos[1];
    int ok = (strcmp(sub, "add") == 0 && a.npos == 3) || (strcmp(sub, "ls") == 0 && a.npos == 2) ||
             (strcmp(sub, "rm") == 0 && a.npos == 3);
    if (strcmp(a.pos[0], "cert") != 0 || !ok)
        return cli_usage_error(usage);
    if ((rc = client_setup(&c, 1)) != 0)
        return rc;
    if (strcmp(sub, "add") == 0)
        return svccert_cli_add(&c, &a, a.pos[2]);
    if (strcmp(sub, "ls") == 0)
        return svccert_cli_list(&c);
    char path[128];
    cli_path(path, sizeof(path), "/v1/service-certs/", a.pos[2], "");
    if ((rc = client_json(&c, "DELETE", path, NULL, NULL)) != 0)
        return rc;
    if (!c.json_output)
        printf("Removed certificate binding %s\n", a.pos[2]);
    return 0;
}
