/*
 * coffer oidc: manage the trusted OpenID Connect issuers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/util.h"

static int oidc_cli_add(struct client *c, const struct args *a, const char *name)
{
    static const struct {
        const char *opt, *field;
    } strs[] = {{"--issuer", "issuer"},         {"--audience", "audience"},
                {"--jwks-uri", "jwks_uri"},     {"--jwks-file", "jwks_file"},
                {"--user-claim", "user_claim"}, {"--groups-claim", "groups_claim"},
                {"--type", "principal_type"},   {"--clearance", "clearance"},
                {"--ca-file", "ca_file"}};
    json_t *cfg = json_object();
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        const char *v = args_get(a, strs[i].opt);
        if (v != NULL)
            json_object_set_new(cfg, strs[i].field, json_string(v));
    }
    const char *leeway = args_get(a, "--leeway");
    if (leeway != NULL)
        json_object_set_new(cfg, "leeway_seconds", json_integer(strtol(leeway, NULL, 10)));
    const struct args_opt *map = args_opt(a, "--map-group");
    json_t *gm = json_object();
    for (int i = 0; map != NULL && i < map->count; i++) {
        const char *eq = strrchr(map->values[i], '=');
        if (eq == NULL || eq == map->values[i] || eq[1] == '\0') {
            json_decref(gm);
            json_decref(cfg);
            fprintf(stderr, "coffer: --map-group takes IDP_GROUP=COFFER_GROUP\n");
            return 2;
        }
        char ext[300];
        size_t n = (size_t)(eq - map->values[i]);
        if (n >= sizeof(ext)) {
            json_decref(gm);
            json_decref(cfg);
            fprintf(stderr, "coffer: --map-group name too long\n");
            return 2;
        }
        memcpy(ext, map->values[i], n);
        ext[n] = '\0';
        json_object_set_new(gm, ext, json_string(eq + 1));
    }
    json_object_set_new(cfg, "group_map", gm);
    const struct args_opt *amr = args_opt(a, "--mfa-amr");
    json_t *al = json_array();
    for (int i = 0; amr != NULL && i < amr->count; i++)
        json_array_append_new(al, json_string(amr->values[i]));
    json_object_set_new(cfg, "mfa_amr", al);
    char path[256];
    cli_path(path, sizeof(path), "/v1/oidc/issuers/", name, "");
    json_t *out;
    int rc = cli_call(c, "PUT", path, cfg, &out);
    json_decref(cfg);
    if (rc != 0 || out == NULL)
        return rc;
    printf("Trusting issuer %s as '%s'\n",
           json_string_value(json_object_get(json_object_get(out, "config"), "issuer")), name);
    json_decref(out);
    return 0;
}

int cli_oidc(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer oidc add NAME --issuer URL --audience AUD (--jwks-uri URL | --jwks-file "
        "PATH)\n"
        "                  [--user-claim CLAIM] [--groups-claim CLAIM] [--map-group IDP=GROUP]...\n"
        "                  [--mfa-amr VALUE]... [--type user|service] [--clearance S]\n"
        "                  [--leeway SECONDS] [--ca-file PATH]\n"
        "       coffer oidc ls | coffer oidc rm NAME\n"
        "Adds (or replaces) a trusted OpenID Connect issuer; see docs/AUTHENTICATION.md.\n";
    struct args_opt opts[] = {{"--issuer", 1, 0, {0}, 0},
                              {"--audience", 1, 0, {0}, 0},
                              {"--jwks-uri", 1, 0, {0}, 0},
                              {"--jwks-file", 1, 0, {0}, 0},
                              {"--user-claim", 1, 0, {0}, 0},
                              {"--groups-claim", 1, 0, {0}, 0},
                              {"--map-group", 1, 1, {0}, 0},
                              {"--mfa-amr", 1, 1, {0}, 0},
                              {"--type", 1, 0, {0}, 0},
                              {"--clearance", 1, 0, {0}, 0},
                              {"--leeway", 1, 0, {0}, 0},
                              {"--ca-file", 1, 0, {0}, 0},
                              {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 1, ARGS_MAX_POS);
    if (rc != 0 || a.help)
        return rc;
    const char *sub = a.pos[0];
    if (strcmp(sub, "add") == 0 && a.npos == 2)
        return oidc_cli_add(&c, &a, a.pos[1]);
    if (strcmp(sub, "ls") == 0 && a.npos == 1) {
        json_t *out = NULL;
        if ((rc = client_json(&c, "GET", "/v1/oidc/issuers", NULL, &out)) != 0)
            return rc;
        json_t *all = json_object_get(out, "issuers");
        if (c.json_output) {
            char *s = json_dumps(all, JSON_INDENT(2) | JSON_SORT_KEYS);
            printf("%s\n", s != NULL ? s : "{}");
            free(s);
        } else {
            const char *k;
            json_t *v;
            json_object_foreach(all, k, v)
            {
                const char *uri = json_string_value(json_object_get(v, "jwks_uri"));
                printf("%-16s %s aud=%s keys=%s user=%s type=%s\n", k,
                       json_string_value(json_object_get(v, "issuer")),
                       json_string_value(json_object_get(v, "audience")),
                       uri != NULL ? uri : json_string_value(json_object_get(v, "jwks_file")),
                       json_string_value(json_object_get(v, "user_claim")),
                       json_string_value(json_object_get(v, "principal_type")));
            }
        }
        json_decref(out);
        return 0;
    }
    if (strcmp(sub, "rm") == 0 && a.npos == 2) {
        char path[256];
        cli_path(path, sizeof(path), "/v1/oidc/issuers/", a.pos[1], "");
        if ((rc = client_json(&c, "DELETE", path, NULL, NULL)) != 0)
            return rc;
        if (!c.json_output)
            printf("Removed issuer %s\n", a.pos[1]);
        return 0;
    }
    return cli_usage_error(usage);
}
