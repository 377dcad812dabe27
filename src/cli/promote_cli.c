/*
 * coffer promote, requests, approve, reject: promotion of versions between
 * environments under the two-person rule.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/util.h"
#include "cli/cli.h"

/* One human line about a request's state after an operation. */
static void promote_cli_summary(json_t *o)
{
    long long id = (long long)json_integer_value(json_object_get(o, "id"));
    const char *state = json_string_value(json_object_get(o, "state"));
    const char *target = json_string_value(json_object_get(o, "target"));
    if (state != NULL && strcmp(state, "completed") == 0) {
        printf("Promoted %s@%lld to %s@%lld (request %lld, sha256 %s)\n",
               json_string_value(json_object_get(o, "source")),
               (long long)json_integer_value(json_object_get(o, "source_version")), target,
               (long long)json_integer_value(json_object_get(o, "target_version")), id,
               json_string_value(json_object_get(o, "sha256")));
    } else if (state != NULL && strcmp(state, "pending") == 0) {
        printf("Request %lld to promote %s@%lld to %s is pending: %zu of %lld approval(s)\n", id,
               json_string_value(json_object_get(o, "source")),
               (long long)json_integer_value(json_object_get(o, "source_version")),
               json_string_value(json_object_get(o, "to")),
               json_array_size(json_object_get(o, "approvals")),
               (long long)json_integer_value(json_object_get(o, "approvals_required")));
    } else {
        printf("Request %lld is %s\n", id, state != NULL ? state : "?");
    }
}

int cli_promote(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer promote REF --to ENV [-m TEXT]\n"
        "Requests the promotion of a version into environment ENV (same project and\n"
        "name). Where ENV needs approvals, the request waits for 'coffer approve ID' by\n"
        "other principals; otherwise the version is promoted at once.\n";
    struct args_opt opts[] = {{"--to", 1, 0, {0}, 0}, {"-m", 1, 0, {0}, 0}, {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 1, 1);
    if (rc != 0 || a.help)
        return rc;
    const char *to = args_get(&a, "--to");
    if (to == NULL) {
        fprintf(stderr, "coffer: promote needs --to ENV\n");
        return 2;
    }
    json_t *body = json_pack("{s:s, s:s}", "ref", a.pos[0], "to", to);
    if (args_has(&a, "-m"))
        json_object_set_new(body, "message", json_string(args_get(&a, "-m")));
    rc = cli_call_print(&c, "POST", "/v1/promotions", body, promote_cli_summary);
    json_decref(body);
    return rc;
}

int cli_requests(int argc, char **argv)
{
    static const char usage[] = "usage: coffer requests [--all]\n"
                                "Lists pending promotion requests (--all: every request).\n";
    struct args_opt opts[] = {{"--all", 0, 0, {0}, 0}, {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 0, 0);
    if (rc != 0 || a.help)
        return rc;
    json_t *out;
    rc = cli_call(&c, "GET", args_has(&a, "--all") ? "/v1/promotions?all=1" : "/v1/promotions",
                  NULL, &out);
    if (rc != 0 || out == NULL)
        return rc;
    printf("%-5s %-10s %-9s %-20s %-21s %s -> %s\n", "ID", "STATE", "APPROVALS", "REQUESTER",
           "EXPIRES", "SOURCE", "TARGET");
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(out, "requests"), i, o)
    {
        char exp[32], appr[24];
        cli_time_json(json_object_get(o, "expires_at"), exp, sizeof(exp));
        snprintf(appr, sizeof(appr), "%zu/%lld", json_array_size(json_object_get(o, "approvals")),
                 (long long)json_integer_value(json_object_get(o, "approvals_required")));
        printf("%-5lld %-10s %-9s %-20s %-21s %s@%lld -> %s\n",
               (long long)json_integer_value(json_object_get(o, "id")),
               json_string_value(json_object_get(o, "state")), appr,
               json_string_value(json_object_get(o, "requester")), exp,
               json_string_value(json_object_get(o, "source")),
               (long long)json_integer_value(json_object_get(o, "source_version")),
               json_string_value(json_object_get(o, "target")));
    }
    json_decref(out);
    return 0;
}

static int promote_cli_decide(int argc, char **argv, int approve)
{
    static const char usage_approve[] =
        "usage: coffer approve ID\n"
        "Approves promotion request ID (needs artifact:Approve on the target; never\n"
        "your own request).\n";
    static const char usage_reject[] = "usage: coffer reject ID [--reason TEXT]\n"
                                       "Rejects promotion request ID.\n";
    struct args_opt opts[] = {{"--reason", 1, 0, {0}, 0}, {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, approve ? usage_approve : usage_reject, 1, 1);
    if (rc != 0 || a.help)
        return rc;
    char *end = NULL;
    long long id = strtoll(a.pos[0], &end, 10);
    if (end == a.pos[0] || *end != '\0' || id <= 0) {
        fprintf(stderr, "coffer: give the request id shown by 'coffer requests'\n");
        return 2;
    }
    if (approve && args_has(&a, "--reason")) {
        fprintf(stderr, "coffer: --reason is for reject\n");
        return 2;
    }
    char path[96];
    snprintf(path, sizeof(path), "/v1/promotions/%lld/%s", id, approve ? "approve" : "reject");
    json_t *body = json_object();
    if (args_has(&a, "--reason"))
        json_object_set_new(body, "reason", json_string(args_get(&a, "--reason")));
    rc = cli_call_print(&c, "POST", path, body, promote_cli_summary);
    json_decref(body);
    return rc;
}

int cli_approve(int argc, char **argv)
{
    return promote_cli_decide(argc, argv, 1);
}

int cli_reject(int argc, char **argv)
{
    return promote_cli_decide(argc, argv, 0);
}
