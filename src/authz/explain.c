/*
 * authz explain: renders a decision for people (`coffer policy explain`,
 * server logs) as one line, and for machines (the audit log, --json) as a
 * JSON object.
 */
#include "authz/authz_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *authz_effect_name(enum authz_effect e)
{
    return e == AUTHZ_ALLOW ? "allow" : "deny";
}

const char *authz_reason_name(enum authz_reason r)
{
    switch (r) {
    case AUTHZ_REASON_EXPLICIT_DENY:
        return "explicit_deny";
    case AUTHZ_REASON_ALLOW:
        return "allow";
    case AUTHZ_REASON_CLEARANCE:
        return "clearance";
    default:
        return "implicit_deny";
    }
}

/* Appends formatted text at *off, tracking the length needed even past cap. */
static void put(char *buf, size_t cap, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put(char *buf, size_t cap, size_t *off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(*off < cap ? buf + *off : NULL, *off < cap ? cap - *off : 0, fmt, ap);
    va_end(ap);
    if (k > 0)
        *off += (size_t)k;
}

static void put_ref(char *buf, size_t cap, size_t *off, const struct authz_stmt_ref *r)
{
    if (r->role[0] != '\0')
        put(buf, cap, off, "role \"%s\" (via %s) policy \"%s\"", r->role, r->via, r->policy);
    else
        put(buf, cap, off, "global policy \"%s\"", r->policy);
    put(buf, cap, off, " statement %u", r->index);
    if (r->sid[0] != '\0')
        put(buf, cap, off, " (Sid \"%s\")", r->sid);
}

size_t authz_decision_format(const struct authz_decision *d, char *buf, size_t cap)
{
    size_t off = 0;
    if (buf != NULL && cap > 0)
        buf[0] = '\0';
    else
        cap = 0;
    put(buf, cap, &off, "%s (%s)", authz_effect_name(d->effect), authz_reason_name(d->reason));
    switch (d->reason) {
    case AUTHZ_REASON_CLEARANCE:
        put(buf, cap, &off, ": resource sensitivity %s is above the principal's clearance %s",
            authz_sensitivity_name(d->sensitivity) ? authz_sensitivity_name(d->sensitivity) : "?",
            authz_sensitivity_name(d->clearance) ? authz_sensitivity_name(d->clearance) : "?");
        break;
    case AUTHZ_REASON_IMPLICIT_DENY:
        put(buf, cap, &off,
            d->unknown_action ? ": unknown action" : ": no statement allows this request");
        break;
    default:
        for (size_t i = 0; i < d->n_deciding; i++) {
            put(buf, cap, &off, i == 0 ? ": " : "; ");
            put_ref(buf, cap, &off, &d->deciding[i]);
        }
        if (d->n_matched > d->n_deciding)
            put(buf, cap, &off, "; and %zu more", d->n_matched - d->n_deciding);
        break;
    }
    return off;
}

json_t *authz_decision_to_json(const struct authz_decision *d)
{
    json_t *stmts = json_array();
    if (stmts == NULL)
        return NULL;
    for (size_t i = 0; i < d->n_deciding; i++) {
        const struct authz_stmt_ref *r = &d->deciding[i];
        json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "policy", r->policy, "sid", r->sid, "index",
                              (json_int_t)r->index, "effect", r->deny ? "Deny" : "Allow");
        if (o == NULL || json_array_append_new(stmts, o) != 0 ||
            (r->role[0] != '\0' && (json_object_set_new(o, "role", json_string(r->role)) != 0 ||
                                    json_object_set_new(o, "via", json_string(r->via)) != 0))) {
            json_decref(stmts);
            return NULL;
        }
    }
    json_t *j = json_pack("{s:s, s:s, s:o, s:I, s:b}", "effect", authz_effect_name(d->effect),
                          "reason", authz_reason_name(d->reason), "statements", stmts, "matched",
                          (json_int_t)d->n_matched, "unknown_action", d->unknown_action);
    if (j == NULL)
        return NULL;
    if (d->reason == AUTHZ_REASON_CLEARANCE) {
        const char *sn = authz_sensitivity_name(d->sensitivity);
        const char *cn = authz_sensitivity_name(d->clearance);
        if (json_object_set_new(j, "sensitivity", json_string(sn ? sn : "?")) != 0 ||
            json_object_set_new(j, "clearance", json_string(cn ? cn : "?")) != 0) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}
