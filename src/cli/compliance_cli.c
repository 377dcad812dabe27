/*
 * coffer erase, coffer hold, coffer retention: crypto-shredding, legal
 * holds, retention locks and retention rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/util.h"
#include "cli/cli.h"
#include "registry/path.h"

/* Builds "/v1/PREFIX/ESCAPED" into url. 0 or 2 (too long). */
static int comp_url(char *url, size_t cap, const char *prefix, const char *arg)
{
    char *e = client_escape(arg);
    if (e == NULL)
        return 2;
    int n = snprintf(url, cap, "%s%s", prefix, e);
    free(e);
    return n < 0 || (size_t)n >= cap ? 2 : 0;
}

/* ---------------------------------------------------------------- erase */

static const char erase_usage[] =
    "usage: coffer erase PATH@N --reason TEXT [--dry-run]\n"
    "       coffer erase PATH --all-versions --reason TEXT [--dry-run]\n"
    "       coffer erase --tag KEY=VALUE [--prefix PATTERN] --reason TEXT [--dry-run]\n\n"
    "Crypto-shreds versions: destroys each one's data key and deletes its encrypted content\n"
    "(irreversible; copies of the content in backups become unreadable). A tombstone stays:\n"
    "path, version, SHA-256, size, who, when and why. Downloads then answer 410 Gone.\n"
    "Versions under legal hold or retention lock block the whole request. --dry-run lists\n"
    "what would be erased. Needs artifact:Erase on every version.\n";

static void erase_print(json_t *out)
{
    int dry = json_is_true(json_object_get(out, "dry_run"));
    json_t *list = json_object_get(out, dry ? "would_erase" : "erased");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
        printf("%s %s sha256:%.16s… %lld bytes\n", dry ? "would erase" : "erased",
               json_string_value(json_object_get(v, "ref")),
               json_string_value(json_object_get(v, "sha256")),
               (long long)json_integer_value(json_object_get(v, "size")));
    json_array_foreach(json_object_get(out, "already_erased"), i, v)
        printf("already erased %s\n", json_string_value(v));
    json_array_foreach(json_object_get(out, "blocked"), i, v)
        printf("blocked %s: %s\n", json_string_value(json_object_get(v, "ref")),
               json_string_value(json_object_get(v, "why")));
    printf("%zu version(s) %s\n", json_array_size(list), dry ? "would be erased" : "erased");
}

int cli_erase(int argc, char **argv)
{
    struct args_opt opts[] = {{"--reason", 1, 0, {0}, 0},       {"--dry-run", 0, 0, {0}, 0},
                              {"--all-versions", 0, 0, {0}, 0}, {"--tag", 1, 0, {0}, 0},
                              {"--prefix", 1, 0, {0}, 0},       {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = args_parse(&a, &c, argc, argv, erase_usage);
    if (rc != 0 || a.help)
        return rc;
    const char *tag = args_get(&a, "--tag");
    if ((tag == NULL) == (a.npos != 1) || a.npos > 1 || !args_has(&a, "--reason"))
        return cli_usage_error(erase_usage);
    json_t *body = json_pack("{s:s, s:b}", "reason", args_get(&a, "--reason"), "dry_run",
                             args_has(&a, "--dry-run"));
    if (tag != NULL) {
        json_object_set_new(body, "tag", json_string(tag));
        if (args_has(&a, "--prefix"))
            json_object_set_new(body, "prefix", json_string(args_get(&a, "--prefix")));
    } else if (args_has(&a, "--all-versions")) {
        json_object_set_new(body, "path", json_string(a.pos[0]));
        json_object_set_new(body, "all_versions", json_true());
    } else {
        struct artifact_ref ref;
        char why[200];
        if (ref_parse(a.pos[0], NULL, &ref, why, sizeof(why)) != ERR_OK) {
            fprintf(stderr, "coffer: invalid reference '%s': %s\n", a.pos[0], why);
            json_decref(body);
            return 2;
        }
        if (!ref.explicit_version) {
            fprintf(stderr,
                    "coffer: erase needs PATH@N; use --all-versions to erase every "
                    "version of %s\n",
                    a.pos[0]);
            json_decref(body);
            return 2;
        }
        json_object_set_new(body, "ref", json_string(a.pos[0]));
    }
    if ((rc = client_setup(&c, 1)) != 0) {
        json_decref(body);
        return rc;
    }
    rc = cli_call_print(&c, "POST", "/v1/erase", body, erase_print);
    json_decref(body);
    return rc;
}

/* ---------------------------------------------------------------- hold */

static const char hold_usage[] =
    "usage: coffer hold set PATH [--reason TEXT]\n"
    "       coffer hold clear PATH\n"
    "       coffer hold ls\n\n"
    "A legal hold on PATH (an artifact path, or a prefix ending in '*') blocks deletion,\n"
    "erasure and retention of every version under it until it is cleared. ls also lists\n"
    "retention locks. Needs artifact:Hold.\n";

int cli_hold(int argc, char **argv)
{
    struct args_opt opts[] = {{"--reason", 1, 0, {0}, 0}, {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = args_parse(&a, &c, argc, argv, hold_usage);
    if (rc != 0 || a.help)
        return rc;
    const char *sub = a.npos > 0 ? a.pos[0] : "";
    int is_ls = strcmp(sub, "ls") == 0;
    if ((is_ls && a.npos != 1) ||
        (!is_ls && (a.npos != 2 || (strcmp(sub, "set") != 0 && strcmp(sub, "clear") != 0))))
        return cli_usage_error(hold_usage);
    if ((rc = client_setup(&c, 1)) != 0)
        return rc;
    json_t *out = NULL;
    if (is_ls) {
        rc = cli_call(&c, "GET", "/v1/legal-holds", NULL, &out);
    } else if (strcmp(sub, "set") == 0) {
        json_t *body = json_pack("{s:s}", "path", a.pos[1]);
        if (args_has(&a, "--reason"))
            json_object_set_new(body, "reason", json_string(args_get(&a, "--reason")));
        rc = cli_call(&c, "POST", "/v1/legal-holds", body, &out);
        json_decref(body);
    } else {
        char url[2048];
        if ((rc = comp_url(url, sizeof(url), "/v1/legal-holds/", a.pos[1])) != 0)
            return rc;
        rc = cli_call(&c, "DELETE", url, NULL, &out);
    }
    if (rc != 0 || out == NULL)
        return rc;
    if (is_ls) {
        size_t i;
        json_t *h;
        json_array_foreach(json_object_get(out, "holds"), i, h)
            printf("hold  %-40s by %s: %s\n", json_string_value(json_object_get(h, "path")),
                   json_string_value(json_object_get(h, "set_by")),
                   json_string_value(json_object_get(h, "reason")));
        json_array_foreach(json_object_get(out, "locks"), i, h)
            printf("lock  %-40s %s until %lld\n", json_string_value(json_object_get(h, "path")),
                   json_string_value(json_object_get(h, "mode")),
                   (long long)json_integer_value(json_object_get(h, "until")));
    } else {
        printf("%s %s\n", strcmp(sub, "set") == 0 ? "Legal hold set on" : "Legal hold cleared on",
               a.pos[1]);
    }
    json_decref(out);
    return 0;
}

/* ------------------------------------------------------------ retention */

static const char retention_usage[] =
    "usage: coffer retention set SCOPE DURATION [--kind K] [--tag KEY=VALUE] "
    "[--action erase|delete]\n"
    "       coffer retention ls\n"
    "       coffer retention rm ID\n"
    "       coffer retention run [--dry-run]\n"
    "       coffer retention lock PATH (--for DURATION | --until YYYY-MM-DD) "
    "[--mode governance|compliance]\n"
    "       coffer retention unlock PATH\n\n"
    "set    adds a rule: versions under SCOPE (a path or prefix ending in '*'), optionally\n"
    "       only of kind K or of artifacts tagged KEY=VALUE, are erased (default) or\n"
    "       deleted DURATION (e.g. 365d) after upload. A background job applies the rules\n"
    "       and logs every action; 'run' applies them now.\n"
    "lock   keeps versions under PATH from deletion and erasure until a date. A compliance-\n"
    "       mode lock can only be extended, by anyone, admins included; governance-mode\n"
    "       locks can be changed or removed by those with artifact:Hold.\n"
    "Needs artifact:Hold.\n";

/* Parses YYYY-MM-DD (UTC midnight) into *out. 0 or -1. */
static int comp_date(const char *s, long long *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%Y-%m-%d", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    *out = (long long)timegm(&tm);
    return 0;
}

static int retention_print(const char *sub, json_t *out)
{
    size_t i;
    json_t *v;
    if (strcmp(sub, "ls") == 0) {
        json_array_foreach(json_object_get(out, "rules"), i, v)
        {
            printf("%-4lld %-30s %-6s after %llds",
                   (long long)json_integer_value(json_object_get(v, "id")),
                   json_string_value(json_object_get(v, "scope")),
                   json_string_value(json_object_get(v, "action")),
                   (long long)json_integer_value(json_object_get(v, "after_seconds")));
            if (json_object_get(v, "kind") != NULL)
                printf(" kind=%s", json_string_value(json_object_get(v, "kind")));
            if (json_object_get(v, "tag_key") != NULL)
                printf(" tag %s=%s", json_string_value(json_object_get(v, "tag_key")),
                       json_string_value(json_object_get(v, "tag_value")));
            printf("\n");
        }
    } else if (strcmp(sub, "run") == 0) {
        int dry = json_is_true(json_object_get(out, "dry_run"));
        json_array_foreach(json_object_get(out, "applied"), i, v) printf(
            "%s%s %s\n", dry ? "would " : "", json_string_value(json_object_get(v, "action")),
            json_string_value(json_object_get(v, "ref")));
        json_array_foreach(json_object_get(out, "kept"), i, v)
            printf("kept %s: %s\n", json_string_value(json_object_get(v, "ref")),
                   json_string_value(json_object_get(v, "why")));
    } else if (strcmp(sub, "set") == 0) {
        printf("Retention rule %lld added\n",
               (long long)json_integer_value(json_object_get(out, "id")));
    } else if (strcmp(sub, "lock") == 0) {
        printf("%s locked (%s) until %lld\n", json_string_value(json_object_get(out, "path")),
               json_string_value(json_object_get(out, "mode")),
               (long long)json_integer_value(json_object_get(out, "until")));
    } else {
        printf("Done\n");
    }
    return 0;
}

int cli_retention(int argc, char **argv)
{
    struct args_opt opts[] = {{"--kind", 1, 0, {0}, 0},   {"--tag", 1, 0, {0}, 0},
                              {"--action", 1, 0, {0}, 0}, {"--dry-run", 0, 0, {0}, 0},
                              {"--for", 1, 0, {0}, 0},    {"--until", 1, 0, {0}, 0},
                              {"--mode", 1, 0, {0}, 0},   {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = args_parse(&a, &c, argc, argv, retention_usage);
    if (rc != 0 || a.help)
        return rc;
    const char *sub = a.npos > 0 ? a.pos[0] : "";
    static const struct {
        const char *name;
        int npos;
    } subs[] = {{"set", 3}, {"ls", 1}, {"rm", 2}, {"run", 1}, {"lock", 2}, {"unlock", 2}};
    int ok = 0;
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
        ok |= strcmp(sub, subs[i].name) == 0 && a.npos == subs[i].npos;
    if (!ok)
        return cli_usage_error(retention_usage);
    json_t *body = NULL;
    const char *method = "GET";
    char url[2048] = "/v1/retention/rules";
    if (strcmp(sub, "set") == 0) {
        method = "POST";
        body = json_pack("{s:s, s:s}", "scope", a.pos[1], "after", a.pos[2]);
        if (args_has(&a, "--kind"))
            json_object_set_new(body, "kind", json_string(args_get(&a, "--kind")));
        if (args_has(&a, "--tag"))
            json_object_set_new(body, "tag", json_string(args_get(&a, "--tag")));
        if (args_has(&a, "--action"))
            json_object_set_new(body, "action", json_string(args_get(&a, "--action")));
    } else if (strcmp(sub, "rm") == 0) {
        method = "DELETE";
        if ((rc = comp_url(url, sizeof(url), "/v1/retention/rules/", a.pos[1])) != 0)
            return rc;
    } else if (strcmp(sub, "run") == 0) {
        method = "POST";
        snprintf(url, sizeof(url), "/v1/retention/run");
        body = json_pack("{s:b}", "dry_run", args_has(&a, "--dry-run"));
    } else if (strcmp(sub, "lock") == 0) {
        method = "PUT";
        snprintf(url, sizeof(url), "/v1/retention/locks");
        const char *mode = args_has(&a, "--mode") ? args_get(&a, "--mode") : "governance";
        body = json_pack("{s:s, s:s}", "path", a.pos[1], "mode", mode);
        if (args_has(&a, "--for") == args_has(&a, "--until")) {
            fprintf(stderr, "coffer: retention lock needs --for DURATION or --until YYYY-MM-DD\n");
            json_decref(body);
            return 2;
        }
        if (args_has(&a, "--for")) {
            json_object_set_new(body, "for", json_string(args_get(&a, "--for")));
        } else {
            long long until = 0;
            if (comp_date(args_get(&a, "--until"), &until) != 0) {
                fprintf(stderr, "coffer: --until takes a date YYYY-MM-DD\n");
                json_decref(body);
                return 2;
            }
            json_object_set_new(body, "until", json_integer(until));
        }
    } else if (strcmp(sub, "unlock") == 0) {
        method = "DELETE";
        if ((rc = comp_url(url, sizeof(url), "/v1/retention/locks/", a.pos[1])) != 0)
            return rc;
    }
    if ((rc = client_setup(&c, 1)) != 0) {
        json_decref(body);
        return rc;
    }
    json_t *out;
    rc = cli_call(&c, method, url, body, &out);
    json_decref(body);
    if (rc != 0 || out == NULL)
        return rc;
    retention_print(sub, out);
    json_decref(out);
    return 0;
}
