/*
 * coffer share: create, list and revoke share links.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/environments.h"
#include "cli/args.h"
#include "cli/util.h"
#include "cli/cli.h"
#include "util/secure.h"

static int share_cli_create(struct client *c, const struct args *a)
{
    json_t *body = json_pack("{s:s}", "ref", a->pos[1]);
    const char *exp = args_get(a, "--expires");
    if (exp != NULL) {
        int64_t secs = env_parse_duration(exp);
        if (secs < 0) {
            json_decref(body);
            fprintf(stderr, "coffer: --expires takes a duration such as 30m, 24h or 7d\n");
            return 2;
        }
        json_object_set_new(body, "expires_in", json_integer((json_int_t)secs));
    }
    const char *max = args_get(a, "--max-downloads");
    if (max != NULL) {
        char *end = NULL;
        long long n = strtoll(max, &end, 10);
        if (end == max || *end != '\0' || n < 1) {
            json_decref(body);
            fprintf(stderr, "coffer: --max-downloads takes a positive number\n");
            return 2;
        }
        json_object_set_new(body, "max_downloads", json_integer((json_int_t)n));
    }
    const struct args_opt *ips = args_opt(a, "--ip");
    if (ips != NULL && ips->count > 0) {
        json_t *nets = json_array();
        for (int i = 0; i < ips->count; i++)
            json_array_append_new(nets, json_string(ips->values[i]));
        json_object_set_new(body, "networks", nets);
    }
    json_t *out = NULL;
    int rc = client_json(c, "POST", "/v1/shares", body, &out);
    json_decref(body);
    if (rc != 0)
        return rc;
    json_t *tok = json_object_get(out, "token");
    json_t *url = json_object_get(out, "url");
    /* The URL the caller itself reaches the server with. */
    char link[1024];
    snprintf(link, sizeof(link), "%s%s", c->server,
             json_string_value(json_object_get(out, "path")));
    if (json_is_string(url))
        secure_wipe((char *)json_string_value(url), json_string_length(url));
    if (c->json_output) {
        json_object_set_new(out, "url", json_string(link));
        cli_print_json(out);
    } else {
        char when[32];
        cli_time_json(json_object_get(out, "expires_at"), when, sizeof(when));
        json_t *maxd = json_object_get(out, "max_downloads");
        char maxs[48] = "";
        if (json_is_integer(maxd))
            snprintf(maxs, sizeof(maxs), ", downloads allowed: %lld",
                     (long long)json_integer_value(maxd));
        printf("%s\n", link);
        fprintf(stderr,
                "Share link %lld for %s, expires %s%s.\n"
                "Anyone holding the URL can download this version: send it privately.\n"
                "Revoke it with 'coffer share revoke %lld'.\n",
                (long long)json_integer_value(json_object_get(out, "id")),
                json_string_value(json_object_get(out, "ref")), when, maxs,
                (long long)json_integer_value(json_object_get(out, "id")));
    }
    if (json_is_string(tok))
        secure_wipe((char *)json_string_value(tok), json_string_length(tok));
    secure_wipe(link, sizeof(link));
    json_decref(out);
    return 0;
}

static int share_cli_list(struct client *c, int all)
{
    json_t *out;
    int rc = cli_call(c, "GET", all ? "/v1/shares?all=1" : "/v1/shares", NULL, &out);
    if (rc != 0 || out == NULL)
        return rc;
    printf("%-5s %-8s %-9s %-21s %-21s %-15s %s\n", "ID", "STATE", "USES", "EXPIRES", "LAST USE",
           "LAST IP", "REF");
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(out, "links"), i, l)
    {
        char exp[32], used[32], uses[32];
        cli_time_json(json_object_get(l, "expires_at"), exp, sizeof(exp));
        cli_time_json(json_object_get(l, "last_used_at"), used, sizeof(used));
        json_t *max = json_object_get(l, "max_downloads");
        if (json_is_integer(max))
            snprintf(uses, sizeof(uses), "%lld/%lld",
                     (long long)json_integer_value(json_object_get(l, "uses")),
                     (long long)json_integer_value(max));
        else
            snprintf(uses, sizeof(uses), "%lld",
                     (long long)json_integer_value(json_object_get(l, "uses")));
        const char *ip = json_string_value(json_object_get(l, "last_used_ip"));
        printf("%-5lld %-8s %-9s %-21s %-21s %-15s %s@%lld\n",
               (long long)json_integer_value(json_object_get(l, "id")),
               json_string_value(json_object_get(l, "state")), uses, exp, used,
               ip != NULL ? ip : "-", json_string_value(json_object_get(l, "path")),
               (long long)json_integer_value(json_object_get(l, "version")));
    }
    json_decref(out);
    return 0;
}

int cli_share(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer share create REF --expires DURATION [--max-downloads N] [--ip CIDR]...\n"
        "       coffer share ls [--all]\n"
        "       coffer share revoke ID\n"
        "A share link downloads exactly one version with no other credential until it\n"
        "expires (DURATION: 30m, 24h, 7d; the server caps it), is revoked or runs out of\n"
        "downloads. --ip limits the addresses that may use it.\n";
    struct args_opt opts[] = {{"--expires", 1, 0, {0}, 0},
                              {"--max-downloads", 1, 0, {0}, 0},
                              {"--ip", 1, 1, {0}, 0},
                              {"--all", 0, 0, {0}, 0},
                              {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_parse(&a, &c, argc, argv, usage, 1, 2);
    if (rc != 0 || a.help)
        return rc;
    const char *sub = a.pos[0];
    int known = (strcmp(sub, "create") == 0 && a.npos == 2) ||
                (strcmp(sub, "ls") == 0 && a.npos == 1) ||
                (strcmp(sub, "revoke") == 0 && a.npos == 2);
    if (!known)
        return cli_usage_error(usage);
    if ((rc = client_setup(&c, 1)) != 0)
        return rc;
    if (strcmp(sub, "create") == 0)
        return share_cli_create(&c, &a);
    if (strcmp(sub, "ls") == 0)
        return share_cli_list(&c, args_has(&a, "--all"));
    char path[128];
    cli_path(path, sizeof(path), "/v1/shares/", a.pos[1], "");
    if ((rc = client_json(&c, "DELETE", path, NULL, NULL)) != 0)
        return rc;
    if (!c.json_output)
        printf("Revoked share link %s\n", a.pos[1]);
    return 0;
}
