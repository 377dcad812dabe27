/*
 * Fuzz target for the policy parser and validator: the input is an
 * untrusted policy document (as sent to `coffer policy put`). A valid
 * document is also compiled into a snapshot, as a role policy or as a
 * global policy (chosen by the document's length parity, so the seeds
 * exercise both), bound with a scope, and used for a few decisions whose
 * request carries variables, tags, groups and an address, so the evaluator
 * runs over whatever the parser accepted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authz/authz.h"

static void fuzz_decide(const struct authz_snapshot *s)
{
    static const char *const groups[] = {"ml", "team-a"};
    static const struct authz_kv ptags[] = {{"team", "fraud"}, {"max", "2"}};
    static const struct authz_kv rtags[] = {{"owner", "alice"}, {"pii", "true"}};
    static const char *const actions[] = {"artifact:Download", "artifact:Write", "admin:Users",
                                          "artifact:List"};
    static const char *const resources[] = {"fraud/prod/model@3", "home/alice/x", "*", "fraud"};
    struct authz_request r;
    memset(&r, 0, sizeof(r));
    r.principal_name = "alice";
    r.groups = groups;
    r.n_groups = 2;
    r.principal_tags = ptags;
    r.n_principal_tags = 2;
    r.resource_tags = rtags;
    r.n_resource_tags = 2;
    r.clearance = 2;
    r.mfa_present = true;
    r.mfa_age = 30;
    r.source_ip.family = 4;
    r.source_ip.addr[0] = 10;
    r.now = 1709721000;
    r.tz_offset = 3600;
    r.resource_kind = "model";
    r.resource_sensitivity = 1;
    for (size_t i = 0; i < 4; i++) {
        struct authz_decision d;
        char line[512];
        r.action = actions[i];
        r.resource = resources[i];
        authz_decide(s, &r, &d);
        authz_decision_format(&d, line, sizeof(line));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[AUTHZ_ERRBUF];
    bool global = size % 2 == 1;
    const char *json = (const char *)data;
    if (authz_policy_validate(json, size, global, err, sizeof(err)) != ERR_OK)
        return 0;
    struct authz_builder *b = authz_builder_new();
    if (b == NULL)
        return 0;
    enum err e = global ? authz_builder_add_global(b, "fuzz", json, size, err, sizeof(err))
                        : authz_builder_attach(b, "r", "fuzz", json, size, err, sizeof(err));
    if (e != ERR_OK)
        abort(); /* validation and compilation must agree */
    if (authz_builder_bind(b, "user:alice", "viewer", "fraud/*", err, sizeof(err)) != ERR_OK ||
        authz_builder_bind(b, "group:ml", global ? "viewer" : "r", NULL, err, sizeof(err)) !=
            ERR_OK ||
        authz_builder_add_builtins(b, err, sizeof(err)) != ERR_OK)
        abort();
    struct authz_snapshot *s;
    if (authz_builder_build(b, &s, err, sizeof(err)) != ERR_OK)
        abort();
    fuzz_decide(s);
    authz_snapshot_release(s);
    return 0;
}
