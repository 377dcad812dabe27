/*
 * gate: the single authorization gate. Every handler calls gate_check with
 * the action and resource before it acts or reveals anything; the gate
 * decides allow or deny (deny by default, fail closed) and records the
 * decision.
 */
#ifndef COFFER_API_GATE_H
#define COFFER_API_GATE_H

#include <jansson.h>
#include <stdint.h>

#include "http/http.h"

/* Facts about the resource a request touches, looked up by the handler so
 * that the decision itself never reads storage. */
struct gate_resource {
    const char *kind; /* NULL when unknown (e.g. a new artifact) */
    int sensitivity;  /* effective level 0..3, -1 when unknown */
    json_t *tags;     /* artifact tags, may be NULL */
    const char *project;
    const char *env;
    uint64_t version; /* 0 when not about one version */
};

/* Returns ERR_OK when allowed, ERR_FORBIDDEN (with r->errmsg set) when not. */
enum err gate_check(struct request *r, const char *action, const char *resource,
                    const struct gate_resource *res);

/* Like gate_check but records nothing on the response: used to filter
 * listings. Returns 1 when allowed. */
int gate_allows(struct request *r, const char *action, const char *resource,
                const struct gate_resource *res);

struct authz_decision;

/* Decides without recording (used by gate_check, listings and explain). */
void gate_decide(struct request *r, const char *action, const char *resource,
                 const struct gate_resource *res, struct authz_decision *d);

#endif
