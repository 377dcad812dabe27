/*
 * authz policy: parser and strict validator of IAM-grammar policy
 * documents. A document is parsed with jansson (duplicate keys rejected),
 * checked element by element and compiled into arena-allocated struct
 * az_policy. Every error names the statement (index from 0 and Sid) and the
 * element, so a user can find the mistake in one read.
 */
#include "authz/authz_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct pctx {
    struct az_arena *a;
    char *err;
    size_t cap;
    int stmt;        /* -1: document level */
    const char *sid; /* Sid of the current statement, or NULL */
    bool vars;       /* Version 2012-10-17 */
    bool global;
};

/* Formats "statement N (Sid "X"): ELEMENT: message" into c->err. Always returns -1. */
static int pfail(struct pctx *c, const char *elem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int pfail(struct pctx *c, const char *elem, const char *fmt, ...)
{
    if (c->err == NULL || c->cap == 0)
        return -1;
    int off = 0;
    if (c->stmt >= 0 && c->sid != NULL)
        off = snprintf(c->err, c->cap, "statement %d (Sid \"%s\"): ", c->stmt, c->sid);
    else if (c->stmt >= 0)
        off = snprintf(c->err, c->cap, "statement %d: ", c->stmt);
    if (off < 0 || (size_t)off >= c->cap)
        return -1;
    if (elem != NULL) {
        int k = snprintf(c->err + off, c->cap - (size_t)off, "%s: ", elem);
        if (k < 0 || (size_t)k >= c->cap - (size_t)off)
            return -1;
        off += k;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + off, c->cap - (size_t)off, fmt, ap);
    va_end(ap);
    return -1;
}

/* Copies s into a printable, bounded form for error messages. */
static const char *pshow(const char *s, size_t n, char *buf, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 4 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[j++] = (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') ? (char)ch : '?';
    }
    if (j + 4 >= cap && n > j) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = '\0';
    return buf;
}

#define SHOW(s, n) pshow((s), (n), showbuf, sizeof(showbuf))

/* ---- Names ------------------------------------------------------------- */

static bool name_char(char ch, const char *extra)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr(extra, ch) != NULL);
}

static bool name_ok(const char *s, size_t n, const char *extra)
{
    if (n == 0 || n > AUTHZ_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!name_char(s[i], extra))
            return false;
    }
    return true;
}

int authz_name_valid(const char *name)
{
    return name != NULL && name_ok(name, strlen(name), "._-");
}

int az_principal_parse(const char *s, size_t n, bool allow_role, enum az_ptype *type,
                       const char **name, size_t *name_len)
{
    static const struct {
        const char *prefix;
        enum az_ptype type;
    } kinds[] = {{"user:", AZ_P_USER},
                 {"service:", AZ_P_SERVICE},
                 {"link:", AZ_P_LINK},
                 {"group:", AZ_P_GROUP},
                 {"role:", AZ_P_ROLE}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t pl = strlen(kinds[i].prefix);
        if (n <= pl || memcmp(s, kinds[i].prefix, pl) != 0)
            continue;
        if (kinds[i].type == AZ_P_ROLE && !allow_role)
            return -1;
        if (!name_ok(s + pl, n - pl, "._@+-"))
            return -1;
        *type = kinds[i].type;
        *name = s + pl;
        *name_len = n - pl;
        return 0;
    }
    return -1;
}

/* ---- Variables ----------------------------------------------------------- */

/* Recognises a variable body (between "${" and "}"): 0 ok. */
static int var_body_ok(const char *v, size_t n)
{
    static const char *const prefixes[] = {"coffer:", "aws:"};
    for (size_t i = 0; i < 2; i++) {
        size_t pl = strlen(prefixes[i]);
        if (n <= pl || !az_ieq(v, pl, prefixes[i], pl))
            continue;
        const char *k = v + pl;
        size_t kn = n - pl;
        if (az_ieq(k, kn, "username", 8))
            return 0;
        if (kn > 13 && az_ieq(k, 13, "PrincipalTag/", 13) && name_ok(k + 13, kn - 13, "._:/+=@-"))
            return 0;
    }
    return -1;
}

int az_vars_check(const char *s, size_t n, bool *has_vars, char *msg, size_t cap)
{
    *has_vars = false;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '$' || s[i + 1] != '{')
            continue;
        const char *end = memchr(s + i + 2, '}', n - i - 2);
        if (end == NULL) {
            snprintf(msg, cap, "unterminated policy variable");
            return -1;
        }
        size_t bn = (size_t)(end - (s + i + 2));
        if (var_body_ok(s + i + 2, bn) != 0) {
            char showbuf[80];
            snprintf(msg, cap, "unknown policy variable \"${%s}\"", SHOW(s + i + 2, bn));
            return -1;
        }
        *has_vars = true;
        i = (size_t)(end - s);
    }
    return 0;
}

/* ---- Condition keys and operators --------------------------------------- */

#define FAM(f) (1u << (f))
#define F_ALL                                                                                      \
    (FAM(AZ_F_STRING) | FAM(AZ_F_NUMERIC) | FAM(AZ_F_DATE) | FAM(AZ_F_BOOL) | FAM(AZ_F_IP))

static const struct keydef {
    const char *name; /* without the "coffer:" prefix; ends in '/' for tags */
    enum az_key key;
    unsigned families;
    bool aws; /* also spelled "aws:NAME" */
} keydefs[] = {
    {"SourceIp", AZ_K_SOURCE_IP, FAM(AZ_F_IP) | FAM(AZ_F_STRING), true},
    {"CurrentTime", AZ_K_CURRENT_TIME, FAM(AZ_F_DATE) | FAM(AZ_F_STRING), true},
    {"EpochTime", AZ_K_EPOCH_TIME, FAM(AZ_F_DATE) | FAM(AZ_F_NUMERIC) | FAM(AZ_F_STRING), true},
    {"CurrentHour", AZ_K_CURRENT_HOUR, FAM(AZ_F_NUMERIC) | FAM(AZ_F_STRING), false},
    {"CurrentDayOfWeek", AZ_K_DAY_OF_WEEK, FAM(AZ_F_STRING), false},
    {"SecureTransport", AZ_K_SECURE_TRANSPORT, FAM(AZ_F_BOOL) | FAM(AZ_F_STRING), true},
    {"MultiFactorAuthPresent", AZ_K_MFA_PRESENT, FAM(AZ_F_BOOL) | FAM(AZ_F_STRING), true},
    {"MultiFactorAuthAge", AZ_K_MFA_AGE, FAM(AZ_F_NUMERIC) | FAM(AZ_F_STRING), true},
    {"username", AZ_K_USERNAME, FAM(AZ_F_STRING), true},
    {"PrincipalType", AZ_K_PRINCIPAL_TYPE, FAM(AZ_F_STRING), true},
    {"PrincipalTag/", AZ_K_PRINCIPAL_TAG, F_ALL, true},
    {"PrincipalClearance", AZ_K_PRINCIPAL_CLEARANCE, FAM(AZ_F_STRING) | FAM(AZ_F_NUMERIC), false},
    {"Groups", AZ_K_GROUPS, FAM(AZ_F_STRING), false},
    {"AuthMethod", AZ_K_AUTH_METHOD, FAM(AZ_F_STRING), false},
    {"ResourceSensitivity", AZ_K_RES_SENSITIVITY, FAM(AZ_F_STRING), false},
    {"ResourceSensitivityLevel", AZ_K_RES_SENS_LEVEL, FAM(AZ_F_NUMERIC) | FAM(AZ_F_STRING), false},
    {"ResourceKind", AZ_K_RES_KIND, FAM(AZ_F_STRING), false},
    {"ResourceTag/", AZ_K_RES_TAG, F_ALL, true},
    {"Project", AZ_K_PROJECT, FAM(AZ_F_STRING), false},
    {"Environment", AZ_K_ENVIRONMENT, FAM(AZ_F_STRING), false},
    {"Version", AZ_K_VERSION, FAM(AZ_F_NUMERIC) | FAM(AZ_F_STRING), false},
};

/* Resolves a condition key name (case-insensitive). NULL if unknown. */
static const struct keydef *key_lookup(const char *s, size_t n, const char **tag, size_t *tag_len)
{
    bool aws = false;
    size_t pl;
    if (n > 7 && az_ieq(s, 7, "coffer:", 7)) {
        pl = 7;
    } else if (n > 4 && az_ieq(s, 4, "aws:", 4)) {
        pl = 4;
        aws = true;
    } else {
        return NULL;
    }
    const char *k = s + pl;
    size_t kn = n - pl;
    for (size_t i = 0; i < sizeof(keydefs) / sizeof(keydefs[0]); i++) {
        const struct keydef *d = &keydefs[i];
        size_t dn = strlen(d->name);
        if (aws && !d->aws)
            continue;
        if (d->name[dn - 1] == '/') {
            if (kn > dn && az_ieq(k, dn, d->name, dn) && name_ok(k + dn, kn - dn, "._:/+=@-")) {
                *tag = k + dn;
                *tag_len = kn - dn;
                return d;
            }
        } else if (az_ieq(k, kn, d->name, dn)) {
            *tag = NULL;
            *tag_len = 0;
            return d;
        }
    }
    return NULL;
}

static const struct opdef {
    const char *name;
    enum az_op op;
    bool negated;
    enum az_family family;
} opdefs[] = {
    {"StringEquals", AZ_OP_STR_EQ, false, AZ_F_STRING},
    {"StringNotEquals", AZ_OP_STR_EQ, true, AZ_F_STRING},
    {"StringEqualsIgnoreCase", AZ_OP_STR_EQ_IC, false, AZ_F_STRING},
    {"StringNotEqualsIgnoreCase", AZ_OP_STR_EQ_IC, true, AZ_F_STRING},
    {"StringLike", AZ_OP_STR_LIKE, false, AZ_F_STRING},
    {"StringNotLike", AZ_OP_STR_LIKE, true, AZ_F_STRING},
    {"NumericEquals", AZ_OP_NUM_EQ, false, AZ_F_NUMERIC},
    {"NumericNotEquals", AZ_OP_NUM_EQ, true, AZ_F_NUMERIC},
    {"NumericLessThan", AZ_OP_NUM_LT, false, AZ_F_NUMERIC},
    {"NumericLessThanEquals", AZ_OP_NUM_LE, false, AZ_F_NUMERIC},
    {"NumericGreaterThan", AZ_OP_NUM_GT, false, AZ_F_NUMERIC},
    {"NumericGreaterThanEquals", AZ_OP_NUM_GE, false, AZ_F_NUMERIC},
    {"DateEquals", AZ_OP_DATE_EQ, false, AZ_F_DATE},
    {"DateNotEquals", AZ_OP_DATE_EQ, true, AZ_F_DATE},
    {"DateLessThan", AZ_OP_DATE_LT, false, AZ_F_DATE},
    {"DateLessThanEquals", AZ_OP_DATE_LE, false, AZ_F_DATE},
    {"DateGreaterThan", AZ_OP_DATE_GT, false, AZ_F_DATE},
    {"DateGreaterThanEquals", AZ_OP_DATE_GE, false, AZ_F_DATE},
    {"Bool", AZ_OP_BOOL, false, AZ_F_BOOL},
    {"IpAddress", AZ_OP_IP, false, AZ_F_IP},
    {"NotIpAddress", AZ_OP_IP, true, AZ_F_IP},
    {"Null", AZ_OP_NULL, false, AZ_F_NULL},
};

/* Parses "[ForAnyValue:|ForAllValues:]Name[IfExists]" (case-sensitive, as IAM). */
static const struct opdef *op_lookup(const char *s, enum az_set *set, bool *if_exists)
{
    size_t n = strlen(s);
    *set = AZ_SET_NONE;
    *if_exists = false;
    if (n > 12 && memcmp(s, "ForAnyValue:", 12) == 0) {
        *set = AZ_SET_ANY;
        s += 12;
        n -= 12;
    } else if (n > 13 && memcmp(s, "ForAllValues:", 13) == 0) {
        *set = AZ_SET_ALL;
        s += 13;
        n -= 13;
    }
    if (n > 8 && memcmp(s + n - 8, "IfExists", 8) == 0) {
        *if_exists = true;
        n -= 8;
    }
    for (size_t i = 0; i < sizeof(opdefs) / sizeof(opdefs[0]); i++) {
        if (strlen(opdefs[i].name) == n && memcmp(opdefs[i].name, s, n) == 0)
            return &opdefs[i];
    }
    return NULL;
}

/* ---- Value lists ----------------------------------------------------------- */

/* Calls fn for each element of a string-or-array value. Strings only. */
typedef int (*str_fn)(struct pctx *c, const char *elem, const char *s, size_t n, void *arg);

static int each_string(struct pctx *c, const char *elem, json_t *v, str_fn fn, void *arg)
{
    if (json_is_string(v))
        return fn(c, elem, json_string_value(v), json_string_length(v), arg);
    if (!json_is_array(v))
        return pfail(c, elem, "must be a string or an array of strings");
    size_t n = json_array_size(v);
    if (n == 0)
        return pfail(c, elem, "must not be empty");
    if (n > AUTHZ_MAX_VALUES)
        return pfail(c, elem, "more than %d values", AUTHZ_MAX_VALUES);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return pfail(c, elem, "value %zu must be a string", i);
        if (fn(c, elem, json_string_value(e), json_string_length(e), arg) != 0)
            return -1;
    }
    return 0;
}

static int check_text(struct pctx *c, const char *elem, const char *s, size_t n)
{
    if (n == 0)
        return pfail(c, elem, "empty string");
    if (n > AUTHZ_MAX_STRING)
        return pfail(c, elem, "value longer than %d bytes", AUTHZ_MAX_STRING);
    if (memchr(s, '\0', n) != NULL)
        return pfail(c, elem, "value contains a NUL byte");
    return 0;
}

/* ---- Action ----------------------------------------------------------------- */

static int action_one(struct pctx *c, const char *elem, const char *s, size_t n, void *arg)
{
    uint32_t *mask = arg;
    uint32_t m = 0;
    char showbuf[80];
    if (check_text(c, elem, s, n) != 0)
        return -1;
    if (!(n == 1 && s[0] == '*') && memchr(s, ':', n) == NULL)
        return pfail(c, elem, "\"%s\" is not of the form service:action", SHOW(s, n));
    for (int i = 0; i < AZ_N_ACTIONS; i++) {
        if (az_glob(s, n, az_action_names[i], strlen(az_action_names[i]), true))
            m |= 1u << i;
    }
    if (m == 0)
        return pfail(c, elem, "unknown action \"%s\"", SHOW(s, n));
    *mask |= m;
    return 0;
}

/* ---- Resource ----------------------------------------------------------- */

struct res_acc {
    struct az_pattern *pats;
    size_t n;
};

static int resource_one(struct pctx *c, const char *elem, const char *s, size_t n, void *arg)
{
    struct res_acc *acc = arg;
    char showbuf[80];
    char msg[160];
    if (check_text(c, elem, s, n) != 0)
        return -1;
    size_t ats = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f)
            return pfail(c, elem, "\"%s\" contains a space or control character", SHOW(s, n));
        if (ch == '@')
            ats++;
    }
    if (ats > 1)
        return pfail(c, elem, "\"%s\" has more than one '@'", SHOW(s, n));
    bool has_vars = false;
    if (c->vars && az_vars_check(s, n, &has_vars, msg, sizeof(msg)) != 0)
        return pfail(c, elem, "%s", msg);
    struct az_pattern *p = &acc->pats[acc->n++];
    p->text = az_strndup(c->a, s, n);
    if (p->text == NULL)
        return pfail(c, elem, "out of memory");
    p->len = n;
    p->has_vars = has_vars;
    return 0;
}

/* ---- Condition ---------------------------------------------------------- */

/* Renders a scalar JSON condition value as text into buf. NULL if not scalar. */
static const char *scalar_text(json_t *v, char *buf, size_t cap, size_t *len)
{
    int k;
    switch (json_typeof(v)) {
    case JSON_STRING:
        *len = json_string_length(v);
        return json_string_value(v);
    case JSON_INTEGER:
        k = snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        k = snprintf(buf, cap, "%.17g", json_real_value(v));
        break;
    case JSON_TRUE:
        k = snprintf(buf, cap, "true");
        break;
    case JSON_FALSE:
        k = snprintf(buf, cap, "false");
        break;
    default:
        return NULL;
    }
    if (k < 0 || (size_t)k >= cap)
        return NULL;
    *len = (size_t)k;
    return buf;
}

static int cond_value(struct pctx *c, const char *elem, const struct opdef *od,
                      struct az_value *out, json_t *v)
{
    char numbuf[64];
    char showbuf[80];
    char msg[160];
    size_t n = 0;
    const char *s = scalar_text(v, numbuf, sizeof(numbuf), &n);
    if (s == NULL)
        return pfail(c, elem, "values must be strings, numbers or booleans");
    if (check_text(c, elem, s, n) != 0)
        return -1;
    bool has_vars = false;
    if (c->vars && od->family != AZ_F_NULL && az_vars_check(s, n, &has_vars, msg, sizeof(msg)) != 0)
        return pfail(c, elem, "%s", msg);
    out->text = az_strndup(c->a, s, n);
    if (out->text == NULL)
        return pfail(c, elem, "out of memory");
    out->len = n;
    out->has_vars = has_vars;
    if (has_vars)
        return 0; /* parsed after substitution, at decision time */
    switch (od->family) {
    case AZ_F_NUMERIC:
        if (az_parse_number(s, n, &out->num) != 0)
            return pfail(c, elem, "\"%s\" is not a number", SHOW(s, n));
        break;
    case AZ_F_DATE:
        if (az_parse_date(s, n, &out->time) != 0)
            return pfail(c, elem, "\"%s\" is not an ISO 8601 date or epoch time", SHOW(s, n));
        break;
    case AZ_F_BOOL:
    case AZ_F_NULL:
        if (az_parse_bool(s, n, &out->b) != 0)
            return pfail(c, elem, "\"%s\" is not true or false", SHOW(s, n));
        break;
    case AZ_F_IP:
        if (az_parse_cidr(s, n, &out->cidr) != 0)
            return pfail(c, elem, "\"%s\" is not an IP address or CIDR", SHOW(s, n));
        break;
    case AZ_F_STRING:
        break;
    }
    return 0;
}

static int cond_key(struct pctx *c, const char *opname, const struct opdef *od, enum az_set set,
                    bool if_exists, const char *kname, json_t *vals, struct az_cond *out)
{
    char showbuf[80];
    const char *tag;
    size_t tag_len;
    size_t kn = strlen(kname);
    const struct keydef *kd = key_lookup(kname, kn, &tag, &tag_len);
    if (kd == NULL)
        return pfail(c, "Condition", "unknown condition key \"%s\"", SHOW(kname, kn));
    if (od->family != AZ_F_NULL && !(kd->families & FAM(od->family)))
        return pfail(c, "Condition", "operator \"%s\" cannot be used with key \"%s\"", opname,
                     SHOW(kname, kn));
    out->op = od->op;
    out->negated = od->negated;
    out->if_exists = if_exists;
    out->set = set;
    out->key = kd->key;
    if (tag != NULL) {
        out->tag = az_strndup(c->a, tag, tag_len);
        if (out->tag == NULL)
            return pfail(c, "Condition", "out of memory");
        out->tag_len = tag_len;
    }
    size_t n = json_is_array(vals) ? json_array_size(vals) : 1;
    if (json_is_array(vals) && n == 0)
        return pfail(c, "Condition", "%s: key \"%s\" has an empty value list", opname,
                     SHOW(kname, kn));
    if (n > AUTHZ_MAX_VALUES)
        return pfail(c, "Condition", "%s: key \"%s\" has more than %d values", opname,
                     SHOW(kname, kn), AUTHZ_MAX_VALUES);
    out->vals = az_calloc(c->a, n, sizeof(*out->vals));
    if (out->vals == NULL)
        return pfail(c, "Condition", "out of memory");
    out->n_vals = n;
    char elem[AUTHZ_NAME_MAX * 2 + 16];
    snprintf(elem, sizeof(elem), "Condition: %s: %s", opname, SHOW(kname, kn));
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_is_array(vals) ? json_array_get(vals, i) : vals;
        if (cond_value(c, elem, od, &out->vals[i], v) != 0)
            return -1;
    }
    return 0;
}

static int parse_condition(struct pctx *c, json_t *cond, struct az_stmt *st)
{
    const char *opname;
    json_t *block;
    size_t total = 0;
    if (!json_is_object(cond))
        return pfail(c, "Condition", "must be an object");
    json_object_foreach(cond, opname, block)
    {
        if (!json_is_object(block))
            return pfail(c, "Condition", "\"%s\" must map condition keys to values", opname);
        total += json_object_size(block);
    }
    if (total == 0)
        return pfail(c, "Condition", "must not be empty");
    if (total > AUTHZ_MAX_CONDITIONS)
        return pfail(c, "Condition", "more than %d conditions", AUTHZ_MAX_CONDITIONS);
    st->conds = az_calloc(c->a, total, sizeof(*st->conds));
    if (st->conds == NULL)
        return pfail(c, "Condition", "out of memory");
    json_object_foreach(cond, opname, block)
    {
        char showbuf[80];
        enum az_set set;
        bool if_exists;
        const struct opdef *od = op_lookup(opname, &set, &if_exists);
        if (od == NULL)
            return pfail(c, "Condition", "unknown operator \"%s\"", SHOW(opname, strlen(opname)));
        if (od->op == AZ_OP_NULL && (set != AZ_SET_NONE || if_exists))
            return pfail(c, "Condition", "\"%s\": Null takes no IfExists or set prefix",
                         SHOW(opname, strlen(opname)));
        if (json_object_size(block) == 0)
            return pfail(c, "Condition", "\"%s\" has no keys", opname);
        const char *kname;
        json_t *vals;
        json_object_foreach(block, kname, vals)
        {
            if (cond_key(c, opname, od, set, if_exists, kname, vals, &st->conds[st->n_conds]) != 0)
                return -1;
            st->n_conds++;
        }
    }
    return 0;
}

/* ---- Principal ------------------------------------------------------------ */

static int principal_one(struct pctx *c, const char *elem, const char *s, size_t n, void *arg)
{
    struct az_stmt *p = arg;
    char showbuf[80];
    enum az_ptype type;
    const char *name;
    size_t nl;
    if (n == 1 && s[0] == '*') {
        p->any_principal = true;
        return 0;
    }
    if (az_principal_parse(s, n, true, &type, &name, &nl) != 0)
        return pfail(c, elem,
                     "\"%s\" is not \"*\" or user:NAME, group:NAME, role:NAME, service:NAME, "
                     "link:ID",
                     SHOW(s, n));
    struct az_principal *pr = &p->principals[p->n_principals++];
    pr->type = type;
    pr->name = az_strndup(c->a, name, nl);
    return pr->name == NULL ? pfail(c, elem, "out of memory") : 0;
}

/* Parses a statement's Principal. */
static int parse_principal(struct pctx *c, json_t *pv, struct az_stmt *p)
{
    if (json_is_string(pv)) {
        if (strcmp(json_string_value(pv), "*") != 0)
            return pfail(c, "Principal", "must be \"*\" or {\"Coffer\": [...]}");
        p->any_principal = true;
        return 0;
    }
    json_t *list = json_object_get(pv, "Coffer");
    if (!json_is_object(pv) || list == NULL || json_object_size(pv) != 1)
        return pfail(c, "Principal", "must be \"*\" or {\"Coffer\": [...]}");
    size_t n = json_is_array(list) ? json_array_size(list) : 1;
    if (n > AUTHZ_MAX_VALUES)
        return pfail(c, "Principal", "more than %d values", AUTHZ_MAX_VALUES);
    p->principals = az_calloc(c->a, n, sizeof(*p->principals));
    if (p->principals == NULL)
        return pfail(c, "Principal", "out of memory");
    return each_string(c, "Principal", list, principal_one, p);
}

/* ---- Statement ---------------------------------------------------------- */

static const char *const stmt_elements[] = {"Sid",      "Effect",      "Action",    "NotAction",
                                            "Resource", "NotResource", "Condition", "Principal"};

static int check_elements(struct pctx *c, json_t *s)
{
    const char *k;
    json_t *v;
    char showbuf[80];
    json_object_foreach(s, k, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof(stmt_elements) / sizeof(stmt_elements[0]); i++)
            known = known || strcmp(k, stmt_elements[i]) == 0;
        if (strcmp(k, "NotPrincipal") == 0)
            return pfail(c, NULL, "NotPrincipal is not supported; use Principal with a Deny");
        if (!known)
            return pfail(c, NULL, "unknown element \"%s\"", SHOW(k, strlen(k)));
    }
    return 0;
}

static int parse_statement(struct pctx *c, json_t *s, struct az_policy *p, struct az_stmt *st)
{
    char showbuf[80];
    if (!json_is_object(s))
        return pfail(c, NULL, "must be an object");
    json_t *sid = json_object_get(s, "Sid");
    if (sid != NULL) {
        if (!json_is_string(sid))
            return pfail(c, "Sid", "must be a string");
        const char *sv = json_string_value(sid);
        size_t sn = json_string_length(sid);
        if (!name_ok(sv, sn, "._-"))
            return pfail(c, "Sid", "\"%s\" must be 1-%d letters, digits, '.', '_' or '-'",
                         SHOW(sv, sn), AUTHZ_NAME_MAX);
        c->sid = sv;
        st->sid = az_strndup(c->a, sv, sn);
        if (st->sid == NULL)
            return pfail(c, "Sid", "out of memory");
    }
    if (check_elements(c, s) != 0)
        return -1;
    st->policy = p;
    st->vars = c->vars;

    json_t *eff = json_object_get(s, "Effect");
    if (!json_is_string(eff))
        return pfail(c, "Effect", "missing; must be \"Allow\" or \"Deny\"");
    if (strcmp(json_string_value(eff), "Allow") == 0)
        st->deny = false;
    else if (strcmp(json_string_value(eff), "Deny") == 0)
        st->deny = true;
    else
        return pfail(c, "Effect", "\"%s\" is not \"Allow\" or \"Deny\"",
                     SHOW(json_string_value(eff), json_string_length(eff)));

    json_t *act = json_object_get(s, "Action"), *nact = json_object_get(s, "NotAction");
    if ((act == NULL) == (nact == NULL))
        return pfail(c, "Action", "exactly one of Action or NotAction is required");
    uint32_t mask = 0;
    if (each_string(c, act ? "Action" : "NotAction", act ? act : nact, action_one, &mask) != 0)
        return -1;
    st->actions = act ? mask : (~mask & ((1u << AZ_N_ACTIONS) - 1));

    json_t *res = json_object_get(s, "Resource"), *nres = json_object_get(s, "NotResource");
    if ((res == NULL) == (nres == NULL))
        return pfail(c, "Resource", "exactly one of Resource or NotResource is required");
    json_t *rv = res ? res : nres;
    size_t rn = json_is_array(rv) ? json_array_size(rv) : 1;
    struct res_acc acc = {az_calloc(c->a, rn ? rn : 1, sizeof(struct az_pattern)), 0};
    if (acc.pats == NULL)
        return pfail(c, "Resource", "out of memory");
    if (each_string(c, res ? "Resource" : "NotResource", rv, resource_one, &acc) != 0)
        return -1;
    st->res = acc.pats;
    st->n_res = acc.n;
    st->not_resource = res == NULL;

    json_t *cond = json_object_get(s, "Condition");
    if (cond != NULL && parse_condition(c, cond, st) != 0)
        return -1;

    json_t *pv = json_object_get(s, "Principal");
    if (pv != NULL && !c->global)
        return pfail(c, "Principal",
                     "only allowed in global policies (role policies apply to "
                     "the principals the role is bound to)");
    if (pv == NULL && c->global)
        return pfail(c, "Principal", "required in a global policy (use \"*\" for everyone)");
    if (pv != NULL && parse_principal(c, pv, st) != 0)
        return -1;
    return 0;
}

/* ---- Document ------------------------------------------------------------ */

static int check_unique_sids(struct pctx *c, const struct az_policy *p)
{
    for (size_t i = 0; i < p->n_stmts; i++) {
        for (size_t j = 0; j < i && p->stmts[i].sid != NULL; j++) {
            if (p->stmts[j].sid != NULL && strcmp(p->stmts[i].sid, p->stmts[j].sid) == 0) {
                c->stmt = (int)i;
                c->sid = p->stmts[i].sid;
                return pfail(c, "Sid", "duplicate Sid (also used by statement %zu)", j);
            }
        }
    }
    return 0;
}

static int parse_document(struct pctx *c, json_t *doc, struct az_policy *p)
{
    const char *k;
    json_t *v;
    char showbuf[80];
    if (!json_is_object(doc))
        return pfail(c, NULL, "a policy document must be a JSON object");
    json_object_foreach(doc, k, v)
    {
        if (strcmp(k, "Version") != 0 && strcmp(k, "Statement") != 0 && strcmp(k, "Id") != 0)
            return pfail(c, NULL, "unknown element \"%s\"", SHOW(k, strlen(k)));
    }
    json_t *ver = json_object_get(doc, "Version");
    if (!json_is_string(ver))
        return pfail(c, "Version", "missing; use \"2012-10-17\"");
    if (strcmp(json_string_value(ver), "2012-10-17") == 0)
        c->vars = true;
    else if (strcmp(json_string_value(ver), "2008-10-17") == 0)
        c->vars = false;
    else
        return pfail(c, "Version", "\"%s\" is not \"2012-10-17\" or \"2008-10-17\"",
                     SHOW(json_string_value(ver), json_string_length(ver)));
    json_t *id = json_object_get(doc, "Id");
    if (id != NULL && !json_is_string(id))
        return pfail(c, "Id", "must be a string");
    json_t *stmts = json_object_get(doc, "Statement");
    if (stmts == NULL)
        return pfail(c, "Statement", "missing");
    size_t n = json_is_array(stmts) ? json_array_size(stmts) : 1;
    if (!json_is_array(stmts) && !json_is_object(stmts))
        return pfail(c, "Statement", "must be an object or an array of objects");
    if (n == 0)
        return pfail(c, "Statement", "must not be empty");
    if (n > AUTHZ_MAX_STATEMENTS)
        return pfail(c, "Statement", "more than %d statements", AUTHZ_MAX_STATEMENTS);
    p->stmts = az_calloc(c->a, n, sizeof(*p->stmts));
    if (p->stmts == NULL)
        return pfail(c, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        c->stmt = (int)i;
        c->sid = NULL;
        p->stmts[i].index = (unsigned)i;
        json_t *s = json_is_array(stmts) ? json_array_get(stmts, i) : stmts;
        if (parse_statement(c, s, p, &p->stmts[i]) != 0)
            return -1;
        p->n_stmts++;
    }
    return check_unique_sids(c, p);
}

enum err az_policy_parse(struct az_arena *a, const char *name, const char *json, size_t len,
                         bool global, struct az_policy **out, char *err, size_t cap)
{
    struct pctx c = {a, err, cap, -1, NULL, true, global};
    json_error_t jerr;
    *out = NULL;
    if (err != NULL && cap > 0)
        err[0] = '\0';
    if (json == NULL || len > AUTHZ_MAX_DOC_BYTES) {
        pfail(&c, NULL, "policy document larger than %d bytes", AUTHZ_MAX_DOC_BYTES);
        return ERR_TOO_LARGE;
    }
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        pfail(&c, NULL, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return ERR_INVALID;
    }
    struct az_policy *p = az_alloc(a, sizeof(*p));
    const char *pname = az_strndup(a, name, strlen(name));
    if (p == NULL || pname == NULL) {
        json_decref(doc);
        pfail(&c, NULL, "out of memory");
        return ERR_INTERNAL;
    }
    p->name = pname;
    p->global = global;
    int rc = parse_document(&c, doc, p);
    json_decref(doc);
    if (rc != 0)
        return ERR_INVALID;
    *out = p;
    return ERR_OK;
}

enum err authz_policy_validate(const char *json, size_t len, bool global, char *err, size_t cap)
{
    struct az_arena a = {NULL};
    struct az_policy *p;
    enum err e = az_policy_parse(&a, "policy", json, len, global, &p, err, cap);
    az_arena_free(&a);
    return e;
}
