#include "api/gate.h"

#include <string.h>
#include <strings.h>

#include "api/record.h"
#include "util/log.h"

/* Actions that only read metadata or content: the mandatory clearance rule
 * applies to them whatever the policies say. */
static int gate_is_read(const char *action)
{
    return strcasecmp(action, "artifact:Read") == 0 ||
           strcasecmp(action, "artifact:Download") == 0 ||
           strcasecmp(action, "artifact:List") == 0;
}

/* Self-service actions every authenticated principal may take on itself. */
static int gate_is_self_service(const char *action)
{
    return strcasecmp(action, "self:Whoami") == 0 || strcasecmp(action, "self:Logout") == 0 ||
           strcasecmp(action, "self:Password") == 0;
}

static int gate_decide(struct request *r, const char *action, const struct gate_resource *res,
                       const char **reason)
{
    if (!r->authenticated) {
        *reason = "not authenticated";
        return 0;
    }
    if (res != NULL && res->sensitivity >= 0 && gate_is_read(action) &&
        res->sensitivity > r->who.clearance) {
        *reason = "clearance";
        return 0;
    }
    if (gate_is_self_service(action)) {
        *reason = "self-service";
        return 1;
    }
    if (r->who.is_admin) {
        *reason = "admin";
        return 1;
    }
    *reason = "implicit deny";
    return 0;
}

int gate_allows(struct request *r, const char *action, const char *resource,
                const struct gate_resource *res)
{
    const char *reason;
    (void)resource;
    return gate_decide(r, action, res, &reason);
}

enum err gate_check(struct request *r, const char *action, const char *resource,
                    const struct gate_resource *res)
{
    const char *reason = "";
    int allowed = gate_decide(r, action, res, &reason);
    log_debug("authz %s %s %s on %s: %s (%s)", r->request_id, r->who.name, action, resource,
              allowed ? "allow" : "deny", reason);
    struct record rec = {.action = action,
                         .resource = resource,
                         .allow = allowed,
                         .reason = reason,
                         .status = allowed ? 0 : 403};
    enum err e = api_record(r, &rec);
    if (e != ERR_OK)
        return e;
    if (allowed)
        return ERR_OK;
    return http_fail(r, ERR_FORBIDDEN, "%s on %s denied (%s)", action, resource, reason);
}
