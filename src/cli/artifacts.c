/*
 * push, pull, ls, show, versions, label, rm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/util.h"
#include "cli/cli.h"
#include "registry/path.h"

/* Validates a reference before it goes on the wire (the server checks again). */
static int check_ref(const char *s, struct artifact_ref *ref)
{
    char why[200];
    if (ref_parse(s, NULL, ref, why, sizeof(why)) != ERR_OK) {
        fprintf(stderr, "coffer: invalid reference '%s': %s\n", s, why);
        return 2;
    }
    return 0;
}

/* Tells the uploader on stderr what the server's PII scan found (counts
 * per type; the server never returns the values). */
static void push_warn_pii(json_t *pii)
{
    if (!json_is_true(json_object_get(pii, "detected")))
        return;
    fprintf(stderr, "coffer: warning: personal data detected (");
    const char *type;
    json_t *n;
    int first = 1;
    json_object_foreach(json_object_get(pii, "types"), type, n)
    {
        fprintf(stderr, "%s%s %lld", first ? "" : ", ", type, (long long)json_integer_value(n));
        first = 0;
    }
    fprintf(stderr, "); the artifact is tagged pii=detected and this version is labelled at "
                    "least confidential\n");
}

int cli_push(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer push FILE PATH [--kind K] [--sensitivity S] [--tag k=v]... "
        "[--parent REF]... [-m TEXT]\n"
        "Uploads FILE as the next version of PATH (PROJECT/ENV/NAME).\n";
    struct args_opt opts[] = {{"--kind", 1, 0, {0}, 0}, {"--sensitivity", 1, 0, {0}, 0},
                              {"--tag", 1, 1, {0}, 0},  {"--parent", 1, 1, {0}, 0},
                              {"-m", 1, 0, {0}, 0},     {"--message", 1, 0, {0}, 0},
                              {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 2, 2);
    if (rc != 0 || a.help)
        return rc;
    struct artifact_path p;
    char why[200];
    if (path_parse(a.pos[1], NULL, &p, why, sizeof(why)) != ERR_OK) {
        fprintf(stderr, "coffer: invalid path '%s': %s\n", a.pos[1], why);
        return 2;
    }
    char q[16384] = "";
    int bad = 0;
    if (args_has(&a, "--kind"))
        bad |= cli_query_add(q, sizeof(q), "kind", args_get(&a, "--kind"));
    if (args_has(&a, "--sensitivity"))
        bad |= cli_query_add(q, sizeof(q), "sensitivity", args_get(&a, "--sensitivity"));
    const char *msg = args_has(&a, "-m") ? args_get(&a, "-m") : args_get(&a, "--message");
    if (msg != NULL)
        bad |= cli_query_add(q, sizeof(q), "message", msg);
    const struct args_opt *tags = args_opt(&a, "--tag");
    for (int i = 0; i < tags->count; i++)
        bad |= cli_query_add(q, sizeof(q), "tag", tags->values[i]);
    const struct args_opt *parents = args_opt(&a, "--parent");
    for (int i = 0; i < parents->count; i++) {
        struct artifact_ref pr;
        if ((rc = check_ref(parents->values[i], &pr)) != 0)
            return rc;
        bad |= cli_query_add(q, sizeof(q), "parent", parents->values[i]);
    }
    if (bad) {
        fprintf(stderr, "coffer: the options are too long\n");
        return 2;
    }
    char url[PATH_FULL_MAX + sizeof(q) + 32];
    snprintf(url, sizeof(url), "/v1/objects/%s%s", p.full, q);
    json_t *out = NULL;
    if ((rc = client_upload(&c, url, a.pos[0], &out)) != 0)
        return rc;
    push_warn_pii(json_object_get(out, "pii"));
    if (c.json_output)
        cli_print_json(out);
    else {
        char ver[48];
        json_t *v = json_object_get(out, "version");
        if (v != NULL)
            snprintf(ver, sizeof(ver), "%lld", (long long)json_integer_value(v));
        else
            snprintf(ver, sizeof(ver), "(version not visible to you)");
        printf("%s@%s sha256:%s %lld bytes\n", json_string_value(json_object_get(out, "path")), ver,
               json_string_value(json_object_get(out, "sha256")),
               (long long)json_integer_value(json_object_get(out, "size")));
    }
    json_decref(out);
    return 0;
}

int cli_pull(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer pull REF [-o FILE]\n"
        "Downloads a version (PATH, PATH@N, PATH@latest or PATH@sha256:HEX). The SHA-256 is\n"
        "verified before FILE is moved into place (exit 7 on mismatch). Default FILE: the\n"
        "last segment of the name, in the current directory; '-o -' writes to stdout.\n";
    struct args_opt opts[] = {
        {"-o", 1, 0, {0}, 0}, {"--output", 1, 0, {0}, 0}, {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 1, 1);
    if (rc != 0 || a.help)
        return rc;
    struct artifact_ref ref;
    if ((rc = check_ref(a.pos[0], &ref)) != 0)
        return rc;
    const char *out = args_has(&a, "-o") ? args_get(&a, "-o") : args_get(&a, "--output");
    if (out == NULL) {
        const char *slash = strrchr(ref.path.name, '/');
        out = slash != NULL ? slash + 1 : ref.path.name;
    }
    char url[REF_MAX + 32];
    snprintf(url, sizeof(url), "/v1/objects/%s", a.pos[0]);
    rc = client_download(&c, url, out);
    if (rc == 0 && strcmp(out, "-") != 0 && !c.json_output)
        fprintf(stderr, "Downloaded %s to %s (sha256 verified)\n", a.pos[0], out);
    return rc;
}

static void artifacts_row(json_t *it)
{
    printf("%-50s %-9s %-13s latest=%lld\n", json_string_value(json_object_get(it, "path")),
           json_string_value(json_object_get(it, "kind")),
           json_string_value(json_object_get(it, "sensitivity")),
           (long long)json_integer_value(json_object_get(it, "latest")));
}

int cli_ls(int argc, char **argv)
{
    static const char usage[] = "usage: coffer ls [PREFIX]\nLists the artifacts you may see.\n";
    struct args_opt opts[] = {{NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 0, 1);
    if (rc != 0 || a.help)
        return rc;
    char q[2048] = "";
    if (a.npos == 1) {
        char why[200];
        if (path_prefix_check(a.pos[0], why, sizeof(why)) != ERR_OK) {
            fprintf(stderr, "coffer: invalid prefix '%s': %s\n", a.pos[0], why);
            return 2;
        }
        if (cli_query_add(q, sizeof(q), "prefix", a.pos[0]) != 0)
            return 2;
    }
    char url[2100];
    snprintf(url, sizeof(url), "/v1/list%s", q);
    return cli_list(&c, url, "artifacts", artifacts_row);
}

static void print_version(json_t *v)
{
    printf("path:        %s@%lld\n", json_string_value(json_object_get(v, "path")),
           (long long)json_integer_value(json_object_get(v, "version")));
    printf("kind:        %s\n", json_string_value(json_object_get(v, "kind")));
    printf("sensitivity: %s\n", json_string_value(json_object_get(v, "effective_sensitivity")));
    printf("sha256:      %s\n", json_string_value(json_object_get(v, "sha256")));
    printf("size:        %lld\n", (long long)json_integer_value(json_object_get(v, "size")));
    printf("created:     %lld by %s\n",
           (long long)json_integer_value(json_object_get(v, "created_at")),
           json_string_value(json_object_get(v, "created_by")));
    if (json_object_get(v, "message") != NULL)
        printf("message:     %s\n", json_string_value(json_object_get(v, "message")));
    char *tags = json_dumps(json_object_get(v, "tags"), JSON_COMPACT | JSON_SORT_KEYS);
    printf("tags:        %s\n", tags != NULL ? tags : "{}");
    free(tags);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(v, "parents"), i, p)
        printf("parent:      %s\n", json_string_value(p));
    json_array_foreach(json_object_get(v, "children"), i, p)
        printf("child:       %s\n", json_string_value(p));
    if (json_is_true(json_object_get(v, "deleted")))
        printf("deleted:     yes\n");
}

/* A command with one argument, a version REF, and no option: sends method
 * to prefix + REF and prints the answer with print_text (or as JSON). */
static int artifacts_ref_command(int argc, char **argv, const char *usage, const char *method,
                                 const char *prefix, void (*print_text)(json_t *out))
{
    struct args_opt opts[] = {{NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 1, 1);
    if (rc != 0 || a.help)
        return rc;
    struct artifact_ref ref;
    if ((rc = check_ref(a.pos[0], &ref)) != 0)
        return rc;
    char url[REF_MAX + 32];
    snprintf(url, sizeof(url), "%s%s", prefix, a.pos[0]);
    return cli_call_print(&c, method, url, NULL, print_text);
}

int cli_show(int argc, char **argv)
{
    static const char usage[] = "usage: coffer show REF\nPrints the metadata of a version.\n";
    return artifacts_ref_command(argc, argv, usage, "GET", "/v1/artifacts/", print_version);
}

static void version_row(json_t *v)
{
    printf("%-6lld sha256:%.16s… %12lld bytes  %s%s\n",
           (long long)json_integer_value(json_object_get(v, "version")),
           json_string_value(json_object_get(v, "sha256")),
           (long long)json_integer_value(json_object_get(v, "size")),
           json_string_value(json_object_get(v, "created_by")),
           json_is_true(json_object_get(v, "deleted")) ? "  (deleted)" : "");
}

int cli_versions(int argc, char **argv)
{
    static const char usage[] = "usage: coffer versions PATH\n";
    struct args_opt opts[] = {{NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 1, 1);
    if (rc != 0 || a.help)
        return rc;
    struct artifact_path p;
    char why[200];
    if (path_parse(a.pos[0], NULL, &p, why, sizeof(why)) != ERR_OK) {
        fprintf(stderr, "coffer: invalid path '%s': %s\n", a.pos[0], why);
        return 2;
    }
    char url[PATH_FULL_MAX + 32];
    snprintf(url, sizeof(url), "/v1/versions/%s", p.full);
    return cli_list(&c, url, "versions", version_row);
}

int cli_label(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer label PATH[@N] [--sensitivity S] [--tag k=v]... [--untag KEY]...\n"
        "Changes tags or the sensitivity of an artifact (or of one version with @N).\n";
    struct args_opt opts[] = {{"--sensitivity", 1, 0, {0}, 0},
                              {"--tag", 1, 1, {0}, 0},
                              {"--untag", 1, 1, {0}, 0},
                              {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 1, 1);
    if (rc != 0 || a.help)
        return rc;
    struct artifact_ref ref;
    if ((rc = check_ref(a.pos[0], &ref)) != 0)
        return rc;
    json_t *body = json_object();
    if (args_has(&a, "--sensitivity"))
        json_object_set_new(body, "sensitivity", json_string(args_get(&a, "--sensitivity")));
    const struct args_opt *tags = args_opt(&a, "--tag");
    if (tags->count > 0) {
        json_t *t = json_object();
        for (int i = 0; i < tags->count; i++) {
            const char *eq = strchr(tags->values[i], '=');
            char key[160];
            if (eq == NULL || eq == tags->values[i] ||
                (size_t)(eq - tags->values[i]) >= sizeof(key)) {
                fprintf(stderr, "coffer: --tag takes key=value\n");
                json_decref(t);
                json_decref(body);
                return 2;
            }
            memcpy(key, tags->values[i], (size_t)(eq - tags->values[i]));
            key[eq - tags->values[i]] = '\0';
            json_object_set_new(t, key, json_string(eq + 1));
        }
        json_object_set_new(body, "tags", t);
    }
    const struct args_opt *untag = args_opt(&a, "--untag");
    if (untag->count > 0) {
        json_t *u = json_array();
        for (int i = 0; i < untag->count; i++)
            json_array_append_new(u, json_string(untag->values[i]));
        json_object_set_new(body, "untag", u);
    }
    char url[REF_MAX + 32];
    snprintf(url, sizeof(url), "/v1/artifacts/%s", a.pos[0]);
    rc = cli_call_print(&c, "PATCH", url, body, print_version);
    json_decref(body);
    return rc;
}

static void print_deleted(json_t *v)
{
    printf("Deleted %s@%lld\n", json_string_value(json_object_get(v, "path")),
           (long long)json_integer_value(json_object_get(v, "version")));
}

int cli_rm(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer rm REF\nTombstones a version: it disappears from listings and "
        "downloads; its record stays.\n";
    return artifacts_ref_command(argc, argv, usage, "DELETE", "/v1/objects/", print_deleted);
}
