/*
 * authz eval: the decision. Pure, lock-free and allocation-free: condition
 * key values are produced on the stack, policy variables are substituted
 * into fixed buffers of AUTHZ_SUBST_MAX bytes, and only the statements
 * indexed under the request's action (and resource project) are examined.
 *
 * Matching is three-valued: yes, no, or indeterminate (a policy variable
 * that is missing, too long, or that would inject a wildcard). An
 * indeterminate statement does not match for Allow and does match for Deny,
 * so every failure closes.
 */
#include "authz/authz_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

/* Request facts derived once per decision. */
struct ectx {
    const struct authz_request *req;
    int action;
    const char *res; /* resource */
    size_t res_n;
    size_t path_n;   /* resource without "@VERSION" */
    const char *key; /* first segment of the resource: index key */
    size_t key_n;
    const char *proj, *env;
    size_t proj_n, env_n;
    uint64_t version; /* 0: missing */
    size_t visited;
};

/* A request value for one condition key, in all the forms it has. */
struct rval {
    const char *s;
    size_t n;
    bool has_num, has_time, has_bool;
    double num;
    int64_t time;
    bool b;
    const struct authz_ip *ip;
};

struct hit {
    const struct az_stmt *st;
    const struct az_binding *bind;
};

struct hits {
    struct hit h[AUTHZ_MAX_DECIDING];
    size_t n;     /* recorded */
    size_t total; /* matched */
};

static enum az_tri tri_not(enum az_tri t)
{
    return t == AZ_INDET ? AZ_INDET : (t == AZ_YES ? AZ_NO : AZ_YES);
}

/* ---- Request facts --------------------------------------------------------- */

static const char *sens_names[4] = {"public", "internal", "confidential", "restricted"};

const char *authz_sensitivity_name(int level)
{
    return (level >= 0 && level <= 3) ? sens_names[level] : NULL;
}

int authz_sensitivity_level(const char *name)
{
    for (int i = 0; name != NULL && i < 4; i++) {
        if (az_ieq(name, strlen(name), sens_names[i], strlen(sens_names[i])))
            return i;
    }
    return -1;
}

/* Splits the resource "PROJECT/ENV/NAME@V" into the derived facts. */
static void ectx_init(struct ectx *x, const struct authz_request *req, int action)
{
    memset(x, 0, sizeof(*x));
    x->req = req;
    x->action = action;
    x->res = req->resource;
    x->res_n = strlen(req->resource);
    const char *at = memchr(x->res, '@', x->res_n);
    x->path_n = at != NULL ? (size_t)(at - x->res) : x->res_n;
    size_t k = 0;
    while (k < x->path_n && x->res[k] != '/')
        k++;
    x->key = x->res;
    x->key_n = k;
    if (req->project != NULL) {
        x->proj = req->project;
        x->proj_n = strlen(req->project);
    } else if (k < x->path_n && k > 0) {
        x->proj = x->res;
        x->proj_n = k;
    }
    if (req->environment != NULL) {
        x->env = req->environment;
        x->env_n = strlen(req->environment);
    } else if (k < x->path_n) {
        size_t e = k + 1;
        while (e < x->path_n && x->res[e] != '/')
            e++;
        if (e > k + 1) {
            x->env = x->res + k + 1;
            x->env_n = e - k - 1;
        }
    }
    x->version = req->version;
    if (x->version == 0 && at != NULL) {
        uint64_t v = 0;
        size_t i = (size_t)(at - x->res) + 1;
        bool ok = i < x->res_n && x->res_n - i <= 19;
        for (; ok && i < x->res_n; i++) {
            ok = x->res[i] >= '0' && x->res[i] <= '9';
            v = v * 10 + (uint64_t)(x->res[i] - '0');
        }
        x->version = ok ? v : 0;
    }
}

static const char *find_tag(const struct authz_kv *kv, size_t n, const char *key, size_t key_n)
{
    for (size_t i = 0; kv != NULL && i < n; i++) {
        if (kv[i].key != NULL && kv[i].value != NULL &&
            az_ieq(kv[i].key, strlen(kv[i].key), key, key_n))
            return kv[i].value;
    }
    return NULL;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Civil date from days since 1970-01-01 (H. Hinnant's algorithm). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const uint64_t doe = (uint64_t)(z - era * 146097);
    const uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const uint64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void rval_str(struct rval *v, const char *s)
{
    v->s = s;
    v->n = strlen(s);
}

static void rval_num(struct rval *v, int64_t num, char *buf, size_t cap)
{
    int k = snprintf(buf, cap, "%" PRId64, num);
    v->s = buf;
    v->n = (k > 0 && (size_t)k < cap) ? (size_t)k : 0;
    v->has_num = true;
    v->num = (double)num;
}

/* Number of values of the condition's key in the request (0: missing). */
static size_t key_count(const struct ectx *x, const struct az_cond *c)
{
    const struct authz_request *r = x->req;
    switch (c->key) {
    case AZ_K_SOURCE_IP:
        return r->source_ip.family == 4 || r->source_ip.family == 6;
    case AZ_K_MFA_AGE:
        return r->mfa_present && r->mfa_age >= 0;
    case AZ_K_USERNAME:
        return r->principal_name != NULL;
    case AZ_K_PRINCIPAL_TAG:
        return find_tag(r->principal_tags, r->n_principal_tags, c->tag, c->tag_len) != NULL;
    case AZ_K_PRINCIPAL_CLEARANCE:
        return r->clearance >= 0 && r->clearance <= 3;
    case AZ_K_GROUPS:
        return r->groups != NULL ? r->n_groups : 0;
    case AZ_K_AUTH_METHOD:
        return r->auth_method != NULL;
    case AZ_K_RES_SENSITIVITY:
    case AZ_K_RES_SENS_LEVEL:
        return r->resource_sensitivity >= 0 && r->resource_sensitivity <= 3;
    case AZ_K_RES_KIND:
        return r->resource_kind != NULL;
    case AZ_K_RES_TAG:
        return find_tag(r->resource_tags, r->n_resource_tags, c->tag, c->tag_len) != NULL;
    case AZ_K_PROJECT:
        return x->proj != NULL;
    case AZ_K_ENVIRONMENT:
        return x->env != NULL;
    case AZ_K_VERSION:
        return x->version != 0;
    default:
        return 1; /* time, transport, MFA presence, principal type: always known */
    }
}

/* Fills value i of the key (i < key_count). buf (64 bytes) holds rendered text. */
static void key_value(const struct ectx *x, const struct az_cond *c, size_t i, struct rval *v,
                      char *buf, size_t cap)
{
    static const char *const days[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    static const char *const ptypes[3] = {"user", "service", "link"};
    const struct authz_request *r = x->req;
    int64_t local = r->now + r->tz_offset;
    memset(v, 0, sizeof(*v));
    v->s = "";
    switch (c->key) {
    case AZ_K_SOURCE_IP:
        v->ip = &r->source_ip;
        if (inet_ntop(r->source_ip.family == 4 ? AF_INET : AF_INET6, r->source_ip.addr, buf,
                      (socklen_t)cap) != NULL)
            rval_str(v, buf);
        break;
    case AZ_K_CURRENT_TIME: {
        int64_t y;
        unsigned m, d;
        int64_t days_n = floor_div(r->now, 86400), sec = r->now - days_n * 86400;
        civil_from_days(days_n, &y, &m, &d);
        int k = snprintf(buf, cap, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02dZ", y, m, d,
                         (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60));
        v->s = buf;
        v->n = (k > 0 && (size_t)k < cap) ? (size_t)k : 0;
        v->has_time = true;
        v->time = r->now;
        break;
    }
    case AZ_K_EPOCH_TIME:
        rval_num(v, r->now, buf, cap);
        v->has_time = true;
        v->time = r->now;
        break;
    case AZ_K_CURRENT_HOUR:
        rval_num(v, (local - floor_div(local, 86400) * 86400) / 3600, buf, cap);
        break;
    case AZ_K_DAY_OF_WEEK: /* 1970-01-01 was a Thursday (index 3) */
        rval_str(v, days[(floor_div(local, 86400) % 7 + 7 + 3) % 7]);
        break;
    case AZ_K_SECURE_TRANSPORT:
    case AZ_K_MFA_PRESENT:
        v->has_bool = true;
        v->b = c->key == AZ_K_MFA_PRESENT ? r->mfa_present : r->secure_transport;
        rval_str(v, v->b ? "true" : "false");
        break;
    case AZ_K_MFA_AGE:
        rval_num(v, r->mfa_age, buf, cap);
        break;
    case AZ_K_USERNAME:
        rval_str(v, r->principal_name);
        break;
    case AZ_K_PRINCIPAL_TYPE:
        rval_str(v, ptypes[(unsigned)r->principal_type < 3 ? r->principal_type : 0]);
        break;
    case AZ_K_PRINCIPAL_TAG:
        rval_str(v, find_tag(r->principal_tags, r->n_principal_tags, c->tag, c->tag_len));
        break;
    case AZ_K_PRINCIPAL_CLEARANCE:
        rval_str(v, sens_names[r->clearance]);
        v->has_num = true;
        v->num = r->clearance;
        break;
    case AZ_K_GROUPS:
        rval_str(v, r->groups[i] != NULL ? r->groups[i] : "");
        break;
    case AZ_K_AUTH_METHOD:
        rval_str(v, r->auth_method);
        break;
    case AZ_K_RES_SENSITIVITY:
        rval_str(v, sens_names[r->resource_sensitivity]);
        break;
    case AZ_K_RES_SENS_LEVEL:
        rval_num(v, r->resource_sensitivity, buf, cap);
        break;
    case AZ_K_RES_KIND:
        rval_str(v, r->resource_kind);
        break;
    case AZ_K_RES_TAG:
        rval_str(v, find_tag(r->resource_tags, r->n_resource_tags, c->tag, c->tag_len));
        break;
    case AZ_K_PROJECT:
        v->s = x->proj;
        v->n = x->proj_n;
        break;
    case AZ_K_ENVIRONMENT:
        v->s = x->env;
        v->n = x->env_n;
        break;
    case AZ_K_VERSION:
        rval_num(v, (int64_t)(x->version > INT64_MAX ? INT64_MAX : x->version), buf, cap);
        break;
    }
}

/* ---- Policy variables -------------------------------------------------------- */

/* Value of a ${...} variable body, or NULL when missing. */
static const char *var_value(const struct ectx *x, const char *b, size_t n)
{
    size_t pl = (n > 7 && az_ieq(b, 7, "coffer:", 7)) ? 7 : 4; /* validated at parse time */
    b += pl;
    n -= pl;
    if (az_ieq(b, n, "username", 8))
        return x->req->principal_name;
    return find_tag(x->req->principal_tags, x->req->n_principal_tags, b + 13, n - 13);
}

/*
 * Substitutes ${...} variables of s into out (AUTHZ_SUBST_MAX bytes).
 * pattern: the result is a wildcard pattern, so a value that contains '*',
 * '?' or '@' would widen it and is refused. -1: missing variable, refused
 * value or overflow (the caller treats the element as indeterminate).
 */
static int subst(const struct ectx *x, const char *s, size_t n, bool pattern, char *out,
                 size_t *out_n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '$' && i + 1 < n && s[i + 1] == '{') {
            const char *end = memchr(s + i + 2, '}', n - i - 2);
            if (end == NULL)
                return -1;
            const char *val = var_value(x, s + i + 2, (size_t)(end - (s + i + 2)));
            if (val == NULL)
                return -1;
            size_t vn = strlen(val);
            if (pattern && strpbrk(val, "*?@") != NULL)
                return -1;
            if (vn > AUTHZ_SUBST_MAX - o)
                return -1;
            memcpy(out + o, val, vn);
            o += vn;
            i = (size_t)(end - s);
            continue;
        }
        if (o >= AUTHZ_SUBST_MAX)
            return -1;
        out[o++] = s[i];
    }
    *out_n = o;
    return 0;
}

/* ---- Conditions ------------------------------------------------------------ */

static enum az_family op_family(enum az_op op)
{
    if (op <= AZ_OP_STR_LIKE)
        return AZ_F_STRING;
    if (op <= AZ_OP_NUM_GE)
        return AZ_F_NUMERIC;
    if (op <= AZ_OP_DATE_GE)
        return AZ_F_DATE;
    if (op == AZ_OP_BOOL)
        return AZ_F_BOOL;
    return op == AZ_OP_IP ? AZ_F_IP : AZ_F_NULL;
}

static bool cmp_order(enum az_op op, double a, double b)
{
    switch (op) {
    case AZ_OP_NUM_EQ:
    case AZ_OP_DATE_EQ:
        return a == b;
    case AZ_OP_NUM_LT:
    case AZ_OP_DATE_LT:
        return a < b;
    case AZ_OP_NUM_LE:
    case AZ_OP_DATE_LE:
        return a <= b;
    case AZ_OP_NUM_GT:
    case AZ_OP_DATE_GT:
        return a > b;
    case AZ_OP_NUM_GE:
    case AZ_OP_DATE_GE:
        return a >= b;
    default:
        return false;
    }
}

static bool cmp_time(enum az_op op, int64_t a, int64_t b)
{
    switch (op) {
    case AZ_OP_DATE_EQ:
        return a == b;
    case AZ_OP_DATE_LT:
        return a < b;
    case AZ_OP_DATE_LE:
        return a <= b;
    case AZ_OP_DATE_GT:
        return a > b;
    default:
        return a >= b;
    }
}

/* A request value converted to the operator's family. -1: type mismatch. */
struct typed {
    const char *s;
    size_t n;
    double num;
    int64_t time;
    bool b;
    struct authz_ip ip;
};

static int convert(const struct rval *v, enum az_family f, struct typed *t)
{
    t->s = v->s;
    t->n = v->n;
    switch (f) {
    case AZ_F_NUMERIC:
        if (v->has_num)
            t->num = v->num;
        else if (az_parse_number(v->s, v->n, &t->num) != 0)
            return -1;
        return 0;
    case AZ_F_DATE:
        if (v->has_time)
            t->time = v->time;
        else if (az_parse_date(v->s, v->n, &t->time) != 0)
            return -1;
        return 0;
    case AZ_F_BOOL:
        if (v->has_bool)
            t->b = v->b;
        else if (az_parse_bool(v->s, v->n, &t->b) != 0)
            return -1;
        return 0;
    case AZ_F_IP:
        if (v->ip != NULL)
            t->ip = *v->ip;
        else if (az_parse_ip(v->s, v->n, &t->ip) != 0)
            return -1;
        return 0;
    default:
        return 0;
    }
}

/* Parses a substituted policy value into pv for the family. -1 on failure. */
static int parse_policy_value(enum az_family f, const char *s, size_t n, struct az_value *pv)
{
    pv->text = s;
    pv->len = n;
    switch (f) {
    case AZ_F_NUMERIC:
        return az_parse_number(s, n, &pv->num);
    case AZ_F_DATE:
        return az_parse_date(s, n, &pv->time);
    case AZ_F_BOOL:
        return az_parse_bool(s, n, &pv->b);
    case AZ_F_IP:
        return az_parse_cidr(s, n, &pv->cidr);
    default:
        return 0;
    }
}

static bool base_match(const struct az_cond *c, const struct typed *t, const struct az_value *pv)
{
    switch (c->op) {
    case AZ_OP_STR_EQ:
        return t->n == pv->len && memcmp(t->s, pv->text, t->n) == 0;
    case AZ_OP_STR_EQ_IC:
        return az_ieq(t->s, t->n, pv->text, pv->len);
    case AZ_OP_STR_LIKE:
        return az_glob(pv->text, pv->len, t->s, t->n, false);
    case AZ_OP_BOOL:
        return t->b == pv->b;
    case AZ_OP_IP:
        return az_cidr_contains(&pv->cidr, &t->ip);
    case AZ_OP_DATE_EQ:
    case AZ_OP_DATE_LT:
    case AZ_OP_DATE_LE:
    case AZ_OP_DATE_GT:
    case AZ_OP_DATE_GE:
        return cmp_time(c->op, t->time, pv->time);
    default:
        return cmp_order(c->op, t->num, pv->num);
    }
}

/* OR over the policy values of the positive operator, for one request value. */
static enum az_tri match_values(const struct ectx *x, const struct az_stmt *st,
                                const struct az_cond *c, const struct typed *t)
{
    enum az_family f = op_family(c->op);
    enum az_tri r = AZ_NO;
    for (size_t i = 0; i < c->n_vals; i++) {
        const struct az_value *pv = &c->vals[i];
        struct az_value tmp;
        char buf[AUTHZ_SUBST_MAX];
        if (pv->has_vars && st->vars) {
            size_t n;
            memset(&tmp, 0, sizeof(tmp));
            if (subst(x, pv->text, pv->len, c->op == AZ_OP_STR_LIKE, buf, &n) != 0 ||
                parse_policy_value(f, buf, n, &tmp) != 0) {
                r = AZ_INDET;
                continue;
            }
            pv = &tmp;
        }
        if (base_match(c, t, pv))
            return AZ_YES;
    }
    return r;
}

static enum az_tri eval_null(const struct az_cond *c, size_t count)
{
    for (size_t i = 0; i < c->n_vals; i++) {
        if (c->vals[i].b == (count == 0))
            return AZ_YES;
    }
    return AZ_NO;
}

static enum az_tri eval_cond(const struct ectx *x, const struct az_stmt *st,
                             const struct az_cond *c)
{
    size_t count = key_count(x, c);
    if (c->op == AZ_OP_NULL)
        return eval_null(c, count);
    if (count == 0) {
        if (c->if_exists || c->set == AZ_SET_ALL)
            return AZ_YES;
        if (c->set == AZ_SET_ANY)
            return AZ_NO;
        return c->negated ? AZ_YES : AZ_NO;
    }
    enum az_family f = op_family(c->op);
    /* any: OR of per-value results; all: AND of them. */
    enum az_tri any = AZ_NO, all = AZ_YES;
    for (size_t i = 0; i < count; i++) {
        struct rval v;
        struct typed t;
        char buf[64];
        key_value(x, c, i, &v, buf, sizeof(buf));
        if (convert(&v, f, &t) != 0)
            return AZ_NO; /* a value of the wrong type never matches */
        enum az_tri r = match_values(x, st, c, &t);
        if (c->set != AZ_SET_NONE && c->negated)
            r = tri_not(r);
        if (r == AZ_YES || (r == AZ_INDET && any == AZ_NO))
            any = r;
        if (r == AZ_NO || (r == AZ_INDET && all == AZ_YES))
            all = r;
    }
    if (c->set == AZ_SET_ALL)
        return all;
    if (c->set == AZ_SET_ANY)
        return any;
    return c->negated ? tri_not(any) : any; /* negation: no value matches */
}

/* ---- Statements ------------------------------------------------------------ */

static enum az_tri match_pattern(const struct ectx *x, const struct az_stmt *st, const char *p,
                                 size_t n, bool has_vars)
{
    char buf[AUTHZ_SUBST_MAX];
    if (has_vars && st->vars) {
        if (subst(x, p, n, true, buf, &n) != 0)
            return AZ_INDET;
        p = buf;
    }
    size_t target = memchr(p, '@', n) != NULL ? x->res_n : x->path_n;
    return az_glob(p, n, x->res, target, false) ? AZ_YES : AZ_NO;
}

static enum az_tri and_tri(enum az_tri a, enum az_tri b)
{
    if (a == AZ_NO || b == AZ_NO)
        return AZ_NO;
    return (a == AZ_INDET || b == AZ_INDET) ? AZ_INDET : AZ_YES;
}

static enum az_tri eval_stmt(const struct ectx *x, const struct az_stmt *st,
                             const struct az_binding *bind)
{
    if (bind != NULL && bind->scope != NULL &&
        match_pattern(x, st, bind->scope, bind->scope_len, false) != AZ_YES)
        return AZ_NO;
    enum az_tri r = AZ_NO;
    for (size_t i = 0; i < st->n_res && r != AZ_YES; i++) {
        enum az_tri m = match_pattern(x, st, st->res[i].text, st->res[i].len, st->res[i].has_vars);
        if (m == AZ_YES || m == AZ_INDET)
            r = m;
    }
    if (st->not_resource)
        r = tri_not(r);
    for (size_t i = 0; i < st->n_conds && r != AZ_NO; i++)
        r = and_tri(r, eval_cond(x, st, &st->conds[i]));
    return r;
}

/* ---- Principals ------------------------------------------------------------ */

static int binding_cmp(enum az_ptype ta, const char *na, size_t la, const struct az_binding *b)
{
    if (ta != b->type)
        return ta < b->type ? -1 : 1;
    size_t lb = b->name_len;
    int c = memcmp(na, b->name, la < lb ? la : lb);
    if (c != 0)
        return c;
    return la < lb ? -1 : (la > lb ? 1 : 0);
}

/* Range [*lo, *hi) of bindings for (type, name) in the sorted binding array. */
static void binding_range(const struct authz_snapshot *s, enum az_ptype type, const char *name,
                          size_t *lo, size_t *hi)
{
    size_t len = strlen(name), a = 0, b = s->n_bindings;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (binding_cmp(type, name, len, &s->bindings[m]) > 0)
            a = m + 1;
        else
            b = m;
    }
    *lo = a;
    while (a < s->n_bindings && binding_cmp(type, name, len, &s->bindings[a]) == 0)
        a++;
    *hi = a;
}

static enum az_ptype req_ptype(const struct authz_request *r)
{
    return r->principal_type == AUTHZ_PRINCIPAL_SERVICE
               ? AZ_P_SERVICE
               : (r->principal_type == AUTHZ_PRINCIPAL_LINK ? AZ_P_LINK : AZ_P_USER);
}

static bool has_role_in(const struct authz_snapshot *s, enum az_ptype t, const char *name,
                        const char *role)
{
    size_t lo, hi;
    binding_range(s, t, name, &lo, &hi);
    for (size_t i = lo; i < hi; i++) {
        if (strcmp(s->bindings[i].role->name, role) == 0)
            return true;
    }
    return false;
}

static bool in_groups(const struct authz_request *r, const char *g)
{
    for (size_t i = 0; r->groups != NULL && i < r->n_groups; i++) {
        if (r->groups[i] != NULL && strcmp(r->groups[i], g) == 0)
            return true;
    }
    return false;
}

/* Does a global statement's Principal cover the requester? */
static bool principal_matches(const struct authz_snapshot *s, const struct authz_request *r,
                              const struct az_stmt *p)
{
    if (p->any_principal)
        return true;
    enum az_ptype me = req_ptype(r);
    for (size_t i = 0; i < p->n_principals; i++) {
        const struct az_principal *pr = &p->principals[i];
        if (pr->type == AZ_P_GROUP && in_groups(r, pr->name))
            return true;
        if (pr->type == me && strcmp(pr->name, r->principal_name) == 0)
            return true;
        if (pr->type != AZ_P_ROLE)
            continue;
        if (has_role_in(s, me, r->principal_name, pr->name))
            return true;
        for (size_t g = 0; r->groups != NULL && g < r->n_groups; g++) {
            if (r->groups[g] != NULL && has_role_in(s, AZ_P_GROUP, r->groups[g], pr->name))
                return true;
        }
    }
    return false;
}

/* ---- Buckets and the decision ------------------------------------------------ */

static void record(struct hits *h, const struct az_stmt *st, const struct az_binding *b)
{
    if (h->n < AUTHZ_MAX_DECIDING) {
        h->h[h->n].st = st;
        h->h[h->n].bind = b;
        h->n++;
    }
    h->total++;
}

static void visit(struct ectx *x, const struct authz_snapshot *s, const struct az_stmt *st,
                  const struct az_binding *b, struct hits *deny, struct hits *allow)
{
    x->visited++;
    if (st->policy->global && !principal_matches(s, x->req, st))
        return;
    enum az_tri r = eval_stmt(x, st, b);
    if (st->deny && r != AZ_NO)
        record(deny, st, b); /* indeterminate Deny matches: fail closed */
    else if (!st->deny && r == AZ_YES)
        record(allow, st, b);
}

static void visit_bucket(struct ectx *x, const struct authz_snapshot *s, const struct az_bucket *bk,
                         const struct az_binding *b, struct hits *deny, struct hits *allow)
{
    for (size_t i = 0; i < bk->n_generic; i++)
        visit(x, s, bk->generic[i], b, deny, allow);
    size_t lo = 0, hi = bk->n_by_key;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        const struct az_entry *e = &bk->by_key[m];
        size_t n = e->key_len < x->key_n ? e->key_len : x->key_n;
        int c = memcmp(e->key, x->key, n);
        if (c < 0 || (c == 0 && e->key_len < x->key_n))
            lo = m + 1;
        else
            hi = m;
    }
    for (; lo < bk->n_by_key; lo++) {
        const struct az_entry *e = &bk->by_key[lo];
        if (e->key_len != x->key_n || memcmp(e->key, x->key, x->key_n) != 0)
            break;
        visit(x, s, e->st, b, deny, allow);
    }
}

static void visit_principal(struct ectx *x, const struct authz_snapshot *s, enum az_ptype t,
                            const char *name, struct hits *deny, struct hits *allow)
{
    size_t lo, hi;
    binding_range(s, t, name, &lo, &hi);
    for (size_t i = lo; i < hi; i++) {
        const struct az_binding *b = &s->bindings[i];
        visit_bucket(x, s, &b->role->buckets[x->action], b, deny, allow);
    }
}

static void copy_name(char *dst, size_t cap, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static void fill_refs(struct authz_decision *out, const struct hits *h)
{
    static const char *const pnames[] = {"user", "service", "link", "group", "role"};
    out->n_deciding = h->n;
    out->n_matched = h->total;
    for (size_t i = 0; i < h->n; i++) {
        struct authz_stmt_ref *ref = &out->deciding[i];
        ref->role[0] = ref->via[0] = '\0';
        const struct az_stmt *st = h->h[i].st;
        const struct az_binding *b = h->h[i].bind;
        copy_name(ref->policy, sizeof(ref->policy), st->policy->name);
        copy_name(ref->sid, sizeof(ref->sid), st->sid);
        ref->index = st->index;
        ref->deny = st->deny;
        if (b != NULL) {
            copy_name(ref->role, sizeof(ref->role), b->role->name);
            size_t tl = strlen(pnames[b->type]);
            memcpy(ref->via, pnames[b->type], tl);
            ref->via[tl] = ':';
            copy_name(ref->via + tl + 1, sizeof(ref->via) - tl - 1, b->name);
        }
    }
}

void authz_decide(const struct authz_snapshot *s, const struct authz_request *req,
                  struct authz_decision *out)
{
    /* Only the header: fill_refs writes every deciding[] entry it reports. */
    memset(out, 0, offsetof(struct authz_decision, deciding));
    out->unknown_action = false;
    out->clearance = out->sensitivity = 0;
    out->statements_visited = 0;
    out->effect = AUTHZ_DENY;
    out->reason = AUTHZ_REASON_IMPLICIT_DENY;
    if (req == NULL || req->action == NULL || req->resource == NULL || req->principal_name == NULL)
        return;
    out->clearance = req->clearance;
    out->sensitivity = req->resource_sensitivity;
    int action = az_action_id(req->action, strlen(req->action));
    if (action < 0) {
        out->unknown_action = true;
        return;
    }
    /* Mandatory clearance rule: before any policy, whatever they say. An
     * out-of-range clearance counts as the lowest. */
    int clearance = (req->clearance >= 0 && req->clearance <= 3) ? req->clearance : 0;
    if (az_action_is_clearance_read(action) && req->resource_sensitivity > clearance) {
        out->reason = AUTHZ_REASON_CLEARANCE;
        return;
    }
    if (s == NULL)
        return;
    struct ectx x;
    struct hits deny, allow;
    deny.n = deny.total = allow.n = allow.total = 0;
    ectx_init(&x, req, action);
    visit_principal(&x, s, req_ptype(req), req->principal_name, &deny, &allow);
    for (size_t g = 0; req->groups != NULL && g < req->n_groups; g++) {
        if (req->groups[g] != NULL)
            visit_principal(&x, s, AZ_P_GROUP, req->groups[g], &deny, &allow);
    }
    visit_bucket(&x, s, &s->globals[action], NULL, &deny, &allow);
    out->statements_visited = x.visited;
    if (deny.total > 0) {
        out->reason = AUTHZ_REASON_EXPLICIT_DENY;
        fill_refs(out, &deny);
    } else if (allow.total > 0) {
        out->effect = AUTHZ_ALLOW;
        out->reason = AUTHZ_REASON_ALLOW;
        fill_refs(out, &allow);
    }
}
