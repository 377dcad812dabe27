/*
 * policy, role and group commands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/util.h"
#include "cli/cli.h"

#define CLI_POLICY_MAX (64 * 1024)

/* Reads a policy document: bounded, and it must be a JSON object. */
static json_t *load_policy_file(const char *file)
{
    json_error_t jerr;
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    if (f == NULL) {
        fprintf(stderr, "coffer: cannot open %s\n", file);
        return NULL;
    }
    char *buf = malloc(CLI_POLICY_MAX + 1);
    size_t n = buf != NULL ? fread(buf, 1, CLI_POLICY_MAX + 1, f) : 0;
    if (f != stdin)
        fclose(f);
    if (buf == NULL)
        return NULL;
    if (n > CLI_POLICY_MAX) {
        free(buf);
        fprintf(stderr, "coffer: %s is larger than %d bytes\n", file, CLI_POLICY_MAX);
        return NULL;
    }
    json_t *j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (j == NULL || !json_is_object(j)) {
        fprintf(stderr, "coffer: %s is not a JSON object (line %d: %s)\n", file, jerr.line,
                j == NULL ? jerr.text : "not an object");
        json_decref(j);
        return NULL;
    }
    return j;
}

static int simple_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

static void access_policy_row(json_t *p)
{
    char *roles = json_dumps(json_object_get(p, "roles"), JSON_COMPACT);
    printf("%-40s %-7s %-8s roles=%s\n", json_string_value(json_object_get(p, "name")),
           json_is_true(json_object_get(p, "global")) ? "global" : "role",
           json_is_true(json_object_get(p, "builtin")) ? "builtin" : "",
           roles != NULL ? roles : "[]");
    free(roles);
}

/* Validates a policy or role name before it goes into a URL. 0, or 2 after
 * saying so. */
static int access_check_name(const char *kind, const char *name)
{
    if (simple_name(name))
        return 0;
    fprintf(stderr, "coffer: invalid %s name '%s'\n", kind, name);
    return 2;
}

int cli_policy(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer policy put NAME FILE [--global] | policy ls | policy show NAME | policy rm "
        "NAME\n"
        "       coffer policy explain --as PRINCIPAL --action ACTION --resource REF [--ip IP] "
        "[--mfa] [--time ISO8601]\n";
    struct args_opt opts[] = {{"--global", 0, 0, {0}, 0}, {"--as", 1, 0, {0}, 0},
                              {"--action", 1, 0, {0}, 0}, {"--resource", 1, 0, {0}, 0},
                              {"--ip", 1, 0, {0}, 0},     {"--mfa", 0, 0, {0}, 0},
                              {"--time", 1, 0, {0}, 0},   {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 1, ARGS_MAX_POS);
    if (rc != 0 || a.help)
        return rc;
    const char *sub = a.pos[0];
    json_t *out = NULL;
    char url[512];
    if (strcmp(sub, "ls") == 0 && a.npos == 1) {
        return cli_list(&c, "/v1/policies", "policies", access_policy_row);
    } else if ((strcmp(sub, "show") == 0 || strcmp(sub, "rm") == 0) && a.npos == 2) {
        if ((rc = access_check_name("policy", a.pos[1])) != 0)
            return rc;
        snprintf(url, sizeof(url), "/v1/policies/%s", a.pos[1]);
        int show = strcmp(sub, "show") == 0;
        rc = cli_call(&c, show ? "GET" : "DELETE", url, NULL, &out);
        if (out != NULL && show)
            cli_print_json(json_object_get(out, "document"));
        else if (out != NULL)
            printf("Deleted policy %s\n", a.pos[1]);
    } else if (strcmp(sub, "put") == 0 && a.npos == 3) {
        if ((rc = access_check_name("policy", a.pos[1])) != 0)
            return rc;
        json_t *doc = load_policy_file(a.pos[2]);
        if (doc == NULL)
            return 2;
        snprintf(url, sizeof(url), "/v1/policies/%s%s", a.pos[1],
                 args_has(&a, "--global") ? "?global=true" : "");
        rc = cli_call(&c, "PUT", url, doc, &out);
        json_decref(doc);
        if (out != NULL)
            printf("Stored policy %s\n", a.pos[1]);
    } else if (strcmp(sub, "explain") == 0 && a.npos == 1) {
        const char *as = args_get(&a, "--as"), *action = args_get(&a, "--action"),
                   *resource = args_get(&a, "--resource");
        if (as == NULL || action == NULL || resource == NULL)
            return cli_usage_error(usage);
        json_t *body = json_pack("{s:s, s:s, s:s, s:b}", "as", as, "action", action, "resource",
                                 resource, "mfa", args_has(&a, "--mfa"));
        if (args_has(&a, "--ip"))
            json_object_set_new(body, "ip", json_string(args_get(&a, "--ip")));
        if (args_has(&a, "--time"))
            json_object_set_new(body, "time", json_string(args_get(&a, "--time")));
        rc = cli_call(&c, "POST", "/v1/explain", body, &out);
        json_decref(body);
        if (out != NULL)
            printf("%s\n", json_string_value(json_object_get(out, "summary")));
    } else {
        return cli_usage_error(usage);
    }
    json_decref(out);
    return rc;
}

static void access_role_row(json_t *r)
{
    char *pols = json_dumps(json_object_get(r, "policies"), JSON_COMPACT);
    printf(
        "%-24s %-8s bindings=%-4lld policies=%s\n", json_string_value(json_object_get(r, "name")),
        json_is_true(json_object_get(r, "builtin")) ? "builtin" : "",
        (long long)json_integer_value(json_object_get(r, "bindings")), pols != NULL ? pols : "[]");
    free(pols);
}

int cli_role(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer role ls | role show NAME | role create NAME --policy FILE [--attach "
        "POLICY]...\n"
        "       coffer role bind ROLE PRINCIPAL [--scope PATTERN] | role unbind ROLE PRINCIPAL "
        "[--scope PATTERN]\n"
        "PRINCIPAL is user:NAME, group:NAME or service:NAME; a scope narrows every statement\n"
        "of the role to resources matching PATTERN (e.g. 'fraud/*'). unbind without --scope\n"
        "removes every binding of ROLE to PRINCIPAL.\n";
    struct args_opt opts[] = {{"--policy", 1, 0, {0}, 0},
                              {"--attach", 1, 1, {0}, 0},
                              {"--scope", 1, 0, {0}, 0},
                              {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 1, ARGS_MAX_POS);
    if (rc != 0 || a.help)
        return rc;
    const char *sub = a.pos[0];
    json_t *out = NULL;
    char url[512];
    if (strcmp(sub, "ls") == 0 && a.npos == 1) {
        return cli_list(&c, "/v1/roles", "roles", access_role_row);
    } else if (strcmp(sub, "show") == 0 && a.npos == 2) {
        if ((rc = access_check_name("role", a.pos[1])) != 0)
            return rc;
        snprintf(url, sizeof(url), "/v1/roles/%s", a.pos[1]);
        if ((rc = client_json(&c, "GET", url, NULL, &out)) != 0)
            return rc;
        cli_print_json(out);
    } else if (strcmp(sub, "create") == 0 && a.npos == 2) {
        json_t *body = json_pack("{s:s}", "name", a.pos[1]);
        if (args_has(&a, "--policy")) {
            json_t *doc = load_policy_file(args_get(&a, "--policy"));
            if (doc == NULL) {
                json_decref(body);
                return 2;
            }
            json_object_set_new(body, "policy", doc);
        }
        const struct args_opt *att = args_opt(&a, "--attach");
        if (att->count > 0) {
            json_t *arr = json_array();
            for (int i = 0; i < att->count; i++)
                json_array_append_new(arr, json_string(att->values[i]));
            json_object_set_new(body, "attach", arr);
        }
        rc = cli_call(&c, "POST", "/v1/roles", body, &out);
        json_decref(body);
        if (out != NULL)
            printf("Created role %s\n", a.pos[1]);
    } else if ((strcmp(sub, "bind") == 0 || strcmp(sub, "unbind") == 0) && a.npos == 3) {
        int bind = strcmp(sub, "bind") == 0;
        if ((rc = access_check_name("role", a.pos[1])) != 0)
            return rc;
        if (bind) {
            snprintf(url, sizeof(url), "/v1/roles/%s/bindings", a.pos[1]);
            json_t *body = json_pack("{s:s}", "principal", a.pos[2]);
            if (args_has(&a, "--scope"))
                json_object_set_new(body, "scope", json_string(args_get(&a, "--scope")));
            rc = cli_call(&c, "POST", url, body, &out);
            json_decref(body);
        } else {
            char *p = client_escape(a.pos[2]);
            char *s = args_has(&a, "--scope") ? client_escape(args_get(&a, "--scope")) : NULL;
            snprintf(url, sizeof(url), "/v1/roles/%s/bindings?principal=%s%s%s", a.pos[1],
                     p != NULL ? p : "", s != NULL ? "&scope=" : "", s != NULL ? s : "");
            free(p);
            free(s);
            rc = cli_call(&c, "DELETE", url, NULL, &out);
        }
        if (out != NULL)
            printf("%s %s %s %s%s%s\n", bind ? "Bound" : "Unbound", a.pos[1], bind ? "to" : "from",
                   a.pos[2], args_has(&a, "--scope") ? " scope " : "",
                   args_has(&a, "--scope") ? args_get(&a, "--scope") : "");
    } else {
        return cli_usage_error(usage);
    }
    json_decref(out);
    return rc;
}

static void access_group_row(json_t *g)
{
    char *m = json_dumps(json_object_get(g, "members"), JSON_COMPACT);
    printf("%-24s %s\n", json_string_value(json_object_get(g, "name")), m != NULL ? m : "[]");
    free(m);
}

int cli_group(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer group add NAME | group ls | group member add GROUP PRINCIPAL | group "
        "member rm GROUP PRINCIPAL\n";
    struct args_opt opts[] = {{NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 1, ARGS_MAX_POS);
    if (rc != 0 || a.help)
        return rc;
    const char *sub = a.pos[0];
    json_t *out = NULL;
    char url[512];
    if (strcmp(sub, "ls") == 0 && a.npos == 1) {
        return cli_list(&c, "/v1/groups", "groups", access_group_row);
    } else if (strcmp(sub, "add") == 0 && a.npos == 2) {
        json_t *body = json_pack("{s:s}", "name", a.pos[1]);
        rc = cli_call(&c, "POST", "/v1/groups", body, &out);
        json_decref(body);
        if (out != NULL)
            printf("Created group %s\n", a.pos[1]);
    } else if (strcmp(sub, "member") == 0 && a.npos == 4 &&
               (strcmp(a.pos[1], "add") == 0 || strcmp(a.pos[1], "rm") == 0)) {
        int add = strcmp(a.pos[1], "add") == 0;
        if (add) {
            cli_path(url, sizeof(url), "/v1/groups/", a.pos[2], "/members");
            json_t *body = json_pack("{s:s}", "principal", a.pos[3]);
            rc = cli_call(&c, "POST", url, body, &out);
            json_decref(body);
        } else {
            char *g = client_escape(a.pos[2]);
            char *p = client_escape(a.pos[3]);
            snprintf(url, sizeof(url), "/v1/groups/%s/members?principal=%s", g != NULL ? g : "",
                     p != NULL ? p : "");
            free(g);
            free(p);
            rc = cli_call(&c, "DELETE", url, NULL, &out);
        }
        if (out != NULL)
            printf("%s %s %s group %s\n", add ? "Added" : "Removed", a.pos[3], add ? "to" : "from",
                   a.pos[2]);
    } else {
        return cli_usage_error(usage);
    }
    json_decref(out);
    return rc;
}
