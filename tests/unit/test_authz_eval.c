/*
 * Table-driven decision tests for the policy engine: every operator and its
 * negation, IfExists, set prefixes, missing keys, variables, wildcards,
 * NotAction/NotResource, deny-wins, scopes, global policies, clearance,
 * per-version grants and case rules.
 *
 * Policies in the table use single quotes for readability; the runner turns
 * them into double quotes. Requests are written as a compact spec, e.g.
 * "mfa=1 ip=10.1.2.3 kind=model ptag:team=risk groups=ml,ops".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authz/authz.h"
#include "authz/authz_int.h"

#define NOW 1709721000 /* 2024-03-06T10:30:00Z, a Wednesday */

/* ---- Request spec ---------------------------------------------------------- */

#define MAXV 8

struct reqbuf {
    struct authz_request r;
    char text[2048];
    const char *groups[MAXV];
    struct authz_kv ptags[MAXV], rtags[MAXV];
};

static void spec_parse(const char *spec, struct reqbuf *b)
{
    memset(b, 0, sizeof(*b));
    struct authz_request *r = &b->r;
    r->principal_type = AUTHZ_PRINCIPAL_USER;
    r->principal_name = "alice";
    r->clearance = 1;
    r->mfa_age = -1;
    r->secure_transport = true;
    r->now = NOW;
    r->action = "artifact:Read";
    r->resource = "fraud/prod/model@3";
    r->resource_sensitivity = -1;
    snprintf(b->text, sizeof(b->text), "%s", spec ? spec : "");
    char *save = NULL;
    for (char *tok = strtok_r(b->text, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        assert_non_null(eq);
        *eq = '\0';
        char *v = eq + 1;
        if (strcmp(tok, "user") == 0) {
            r->principal_name = v;
        } else if (strcmp(tok, "type") == 0) {
            r->principal_type = strcmp(v, "service") == 0 ? AUTHZ_PRINCIPAL_SERVICE
                                : strcmp(v, "link") == 0  ? AUTHZ_PRINCIPAL_LINK
                                                          : AUTHZ_PRINCIPAL_USER;
        } else if (strcmp(tok, "groups") == 0) {
            char *s2 = NULL;
            r->groups = b->groups;
            for (char *g = strtok_r(v, ",", &s2); g; g = strtok_r(NULL, ",", &s2))
                b->groups[r->n_groups++] = g;
        } else if (strncmp(tok, "ptag:", 5) == 0) {
            b->ptags[r->n_principal_tags].key = tok + 5;
            b->ptags[r->n_principal_tags++].value = v;
            r->principal_tags = b->ptags;
        } else if (strncmp(tok, "rtag:", 5) == 0) {
            b->rtags[r->n_resource_tags].key = tok + 5;
            b->rtags[r->n_resource_tags++].value = v;
            r->resource_tags = b->rtags;
        } else if (strcmp(tok, "clr") == 0) {
            r->clearance = atoi(v);
        } else if (strcmp(tok, "sens") == 0) {
            r->resource_sensitivity = atoi(v);
        } else if (strcmp(tok, "kind") == 0) {
            r->resource_kind = v;
        } else if (strcmp(tok, "mfa") == 0) {
            r->mfa_present = atoi(v) != 0;
        } else if (strcmp(tok, "mfaage") == 0) {
            r->mfa_age = atoll(v);
        } else if (strcmp(tok, "ip") == 0) {
            assert_int_equal(az_parse_ip(v, strlen(v), &r->source_ip), 0);
        } else if (strcmp(tok, "tls") == 0) {
            r->secure_transport = atoi(v) != 0;
        } else if (strcmp(tok, "now") == 0) {
            int64_t t;
            assert_int_equal(az_parse_date(v, strlen(v), &t), 0);
            r->now = t;
        } else if (strcmp(tok, "tz") == 0) {
            r->tz_offset = atoi(v);
        } else if (strcmp(tok, "auth") == 0) {
            r->auth_method = v;
        } else if (strcmp(tok, "proj") == 0) {
            r->project = v;
        } else if (strcmp(tok, "env") == 0) {
            r->environment = v;
        } else if (strcmp(tok, "ver") == 0) {
            r->version = (uint64_t)atoll(v);
        } else if (strcmp(tok, "act") == 0) {
            r->action = v;
        } else if (strcmp(tok, "res") == 0) {
            r->resource = v;
        } else {
            fail_msg("unknown spec key %s", tok);
        }
    }
}

/* ---- Runner ------------------------------------------------------------------ */

struct tcase {
    int line;
    const char *role;   /* statements of the role policy (inside "Statement": [...]) */
    const char *global; /* statements of a global policy, or NULL */
    const char *bind;   /* "principal[|scope]"; NULL: "user:alice" */
    const char *spec;   /* request */
    char expect;        /* 'A' allow, 'D' explicit deny, 'I' implicit deny, 'C' clearance */
};

static char *quote_doc(const char *stmts, const char *version)
{
    size_t n = strlen(stmts) + 64;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "{'Version':'%s','Statement':[%s]}", version, stmts);
    for (char *p = s; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    return s;
}

static struct authz_snapshot *build(const char *role, const char *global, const char *bind)
{
    char err[AUTHZ_ERRBUF];
    struct authz_builder *b = authz_builder_new();
    assert_non_null(b);
    const char *version = "2012-10-17";
    if (role != NULL && strncmp(role, "V2008", 5) == 0) {
        version = "2008-10-17";
        role += 5;
    }
    if (role != NULL) {
        char *doc = quote_doc(role, version);
        enum err e = authz_builder_attach(b, "r", "p", doc, strlen(doc), err, sizeof(err));
        free(doc);
        if (e != ERR_OK)
            fail_msg("role policy rejected: %s", err);
    } else {
        assert_int_equal(authz_builder_add_role(b, "r", err, sizeof(err)), ERR_OK);
    }
    if (global != NULL) {
        char *doc = quote_doc(global, "2012-10-17");
        enum err e = authz_builder_add_global(b, "g", doc, strlen(doc), err, sizeof(err));
        free(doc);
        if (e != ERR_OK)
            fail_msg("global policy rejected: %s", err);
    }
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s", bind ? bind : "user:alice");
    char *save = NULL;
    for (char *one = strtok_r(tmp, ",", &save); one; one = strtok_r(NULL, ",", &save)) {
        char *bar = strchr(one, '|');
        if (bar != NULL)
            *bar++ = '\0';
        assert_int_equal(authz_builder_bind(b, one, "r", bar, err, sizeof(err)), ERR_OK);
    }
    struct authz_snapshot *s = NULL;
    if (authz_builder_build(b, &s, err, sizeof(err)) != ERR_OK)
        fail_msg("build failed: %s", err);
    return s;
}

static char outcome(const struct authz_decision *d)
{
    switch (d->reason) {
    case AUTHZ_REASON_ALLOW:
        return 'A';
    case AUTHZ_REASON_EXPLICIT_DENY:
        return 'D';
    case AUTHZ_REASON_CLEARANCE:
        return 'C';
    default:
        return 'I';
    }
}

static int run_table(const struct tcase *t, size_t n)
{
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        struct authz_snapshot *s = build(t[i].role, t[i].global, t[i].bind);
        struct reqbuf rb;
        struct authz_decision d;
        spec_parse(t[i].spec, &rb);
        authz_decide(s, &rb.r, &d);
        char got = outcome(&d);
        if (got != t[i].expect) {
            char line[512];
            authz_decision_format(&d, line, sizeof(line));
            print_error("line %d: expected %c, got %c (%s)\n", t[i].line, t[i].expect, got, line);
            failures++;
        }
        assert_int_equal(d.effect == AUTHZ_ALLOW, got == 'A');
        authz_snapshot_release(s);
    }
    return failures;
}

#define T(role, global, bind, spec, expect)                                                        \
    {                                                                                              \
        __LINE__, role, global, bind, spec, expect                                                 \
    }
/* A statement that allows everything when the condition holds. */
#define ALLOW_IF(c) "{'Effect':'Allow','Action':'*','Resource':'*','Condition':{" c "}}"
#define DENY_IF(c) "{'Effect':'Deny','Action':'*','Resource':'*','Condition':{" c "}}"
#define ALLOW_ALL "{'Effect':'Allow','Action':'*','Resource':'*'}"
#define C(role, spec, expect) T(role, NULL, NULL, spec, expect)

/* ---- String operators -------------------------------------------------------- */

static const struct tcase string_cases[] = {
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceKind':'model'}"), "kind=model", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceKind':'model'}"), "kind=dataset", 'I'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceKind':'model'}"), "kind=Model", 'I'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceKind':'model'}"), "", 'I'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceKind':['dataset','model']}"), "kind=model", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceKind':['dataset','params']}"), "kind=model", 'I'),
    C(ALLOW_IF("'StringNotEquals':{'coffer:ResourceKind':'dataset'}"), "kind=model", 'A'),
    C(ALLOW_IF("'StringNotEquals':{'coffer:ResourceKind':'dataset'}"), "kind=dataset", 'I'),
    C(ALLOW_IF("'StringNotEquals':{'coffer:ResourceKind':'dataset'}"), "", 'A'),
    C(ALLOW_IF("'StringNotEquals':{'coffer:ResourceKind':['dataset','features']}"), "kind=features",
      'I'),
    C(ALLOW_IF("'StringNotEquals':{'coffer:ResourceKind':['dataset','features']}"), "kind=model",
      'A'),
    C(ALLOW_IF("'StringEqualsIgnoreCase':{'coffer:ResourceKind':'MODEL'}"), "kind=model", 'A'),
    C(ALLOW_IF("'StringEqualsIgnoreCase':{'coffer:ResourceKind':'MODEL'}"), "kind=models", 'I'),
    C(ALLOW_IF("'StringEqualsIgnoreCase':{'coffer:ResourceKind':'MODEL'}"), "", 'I'),
    C(ALLOW_IF("'StringNotEqualsIgnoreCase':{'coffer:ResourceKind':'MODEL'}"), "kind=Model", 'I'),
    C(ALLOW_IF("'StringNotEqualsIgnoreCase':{'coffer:ResourceKind':'MODEL'}"), "kind=code", 'A'),
    C(ALLOW_IF("'StringNotEqualsIgnoreCase':{'coffer:ResourceKind':'MODEL'}"), "", 'A'),
    C(ALLOW_IF("'StringLike':{'coffer:ResourceTag/owner':'risk-*'}"), "rtag:owner=risk-team", 'A'),
    C(ALLOW_IF("'StringLike':{'coffer:ResourceTag/owner':'risk-*'}"), "rtag:owner=fraud-team", 'I'),
    C(ALLOW_IF("'StringLike':{'coffer:ResourceTag/owner':'risk-?'}"), "rtag:owner=risk-a", 'A'),
    C(ALLOW_IF("'StringLike':{'coffer:ResourceTag/owner':'risk-?'}"), "rtag:owner=risk-ab", 'I'),
    C(ALLOW_IF("'StringLike':{'coffer:ResourceTag/owner':'*'}"), "", 'I'),
    C(ALLOW_IF("'StringLike':{'coffer:ResourceTag/owner':['a*','*z']}"), "rtag:owner=xyz", 'A'),
    C(ALLOW_IF("'StringNotLike':{'coffer:ResourceTag/owner':'risk-*'}"), "rtag:owner=risk-team",
      'I'),
    C(ALLOW_IF("'StringNotLike':{'coffer:ResourceTag/owner':'risk-*'}"), "rtag:owner=ops", 'A'),
    C(ALLOW_IF("'StringNotLike':{'coffer:ResourceTag/owner':'risk-*'}"), "", 'A'),
    /* Several keys AND, several operators AND. */
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceKind':'model','coffer:AuthMethod':'token'}"),
      "kind=model auth=token", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceKind':'model','coffer:AuthMethod':'token'}"),
      "kind=model auth=password", 'I'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceKind':'model'},'Bool':{'coffer:"
               "MultiFactorAuthPresent':'true'}"),
      "kind=model mfa=1", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceKind':'model'},'Bool':{'coffer:"
               "MultiFactorAuthPresent':'true'}"),
      "kind=model mfa=0", 'I'),
    /* Condition key names are case-insensitive; values are not. */
    C(ALLOW_IF("'StringEquals':{'COFFER:resourcekind':'model'}"), "kind=model", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceTag/PII':'true'}"), "rtag:pii=true", 'A'),
    /* Numbers and booleans in JSON are compared as their text. */
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceTag/n':5}"), "rtag:n=5", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceTag/b':true}"), "rtag:b=true", 'A'),
};

static void test_string_ops(void **state)
{
    (void)state;
    assert_int_equal(run_table(string_cases, sizeof(string_cases) / sizeof(string_cases[0])), 0);
}

/* ---- Numeric, date, bool, IP, Null ------------------------------------------- */

static const struct tcase typed_cases[] = {
    C(ALLOW_IF("'NumericEquals':{'coffer:ResourceSensitivityLevel':'2'}"), "sens=2 clr=3", 'A'),
    C(ALLOW_IF("'NumericEquals':{'coffer:ResourceSensitivityLevel':'2.0'}"), "sens=2 clr=3", 'A'),
    C(ALLOW_IF("'NumericEquals':{'coffer:ResourceSensitivityLevel':2}"), "sens=1 clr=3", 'I'),
    C(ALLOW_IF("'NumericEquals':{'coffer:ResourceSensitivityLevel':2}"), "", 'I'),
    C(ALLOW_IF("'NumericNotEquals':{'coffer:ResourceSensitivityLevel':2}"), "sens=1 clr=3", 'A'),
    C(ALLOW_IF("'NumericNotEquals':{'coffer:ResourceSensitivityLevel':2}"), "sens=2 clr=3", 'I'),
    C(ALLOW_IF("'NumericNotEquals':{'coffer:ResourceSensitivityLevel':2}"), "", 'A'),
    C(ALLOW_IF("'NumericLessThan':{'coffer:CurrentHour':'18'}"), "", 'A'),
    C(ALLOW_IF("'NumericLessThan':{'coffer:CurrentHour':'10'}"), "", 'I'),
    C(ALLOW_IF("'NumericLessThan':{'coffer:CurrentHour':'11'}"), "", 'A'),
    C(ALLOW_IF("'NumericLessThanEquals':{'coffer:CurrentHour':'10'}"), "", 'A'),
    C(ALLOW_IF("'NumericLessThanEquals':{'coffer:CurrentHour':'9'}"), "", 'I'),
    C(ALLOW_IF("'NumericGreaterThan':{'coffer:CurrentHour':'10'}"), "", 'I'),
    C(ALLOW_IF("'NumericGreaterThan':{'coffer:CurrentHour':'9'}"), "", 'A'),
    C(ALLOW_IF("'NumericGreaterThanEquals':{'coffer:CurrentHour':'10'}"), "", 'A'),
    C(ALLOW_IF("'NumericGreaterThanEquals':{'coffer:CurrentHour':'11'}"), "", 'I'),
    /* Hour and day of week follow the configured offset. */
    C(ALLOW_IF("'NumericEquals':{'coffer:CurrentHour':'15'}"), "tz=18000", 'A'),
    C(ALLOW_IF("'NumericEquals':{'coffer:CurrentHour':'23'}"), "tz=-39600", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:CurrentDayOfWeek':'wed'}"), "", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:CurrentDayOfWeek':'tue'}"), "tz=-39600", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:CurrentDayOfWeek':['sat','sun']}"), "", 'I'),
    C(ALLOW_IF("'StringEquals':{'coffer:CurrentDayOfWeek':'sun'}"), "now=2024-03-10T12:00:00Z",
      'A'),
    C(ALLOW_IF("'NumericLessThan':{'coffer:MultiFactorAuthAge':'3600'}"), "mfa=1 mfaage=60", 'A'),
    C(ALLOW_IF("'NumericLessThan':{'coffer:MultiFactorAuthAge':'3600'}"), "mfa=1 mfaage=7200", 'I'),
    C(ALLOW_IF("'NumericLessThan':{'aws:MultiFactorAuthAge':'3600'}"), "mfa=0", 'I'),
    C(ALLOW_IF("'NumericLessThanIfExists':{'coffer:MultiFactorAuthAge':'3600'}"), "mfa=0", 'A'),
    C(ALLOW_IF("'NumericLessThanIfExists':{'coffer:MultiFactorAuthAge':'3600'}"),
      "mfa=1 mfaage=7200", 'I'),
    C(ALLOW_IF("'NumericGreaterThanEquals':{'coffer:PrincipalClearance':2}"), "clr=2", 'A'),
    C(ALLOW_IF("'NumericGreaterThanEquals':{'coffer:PrincipalClearance':2}"), "clr=1", 'I'),
    C(ALLOW_IF("'StringEquals':{'coffer:PrincipalClearance':'confidential'}"), "clr=2", 'A'),
    C(ALLOW_IF("'NumericEquals':{'coffer:Version':3}"), "", 'A'),
    C(ALLOW_IF("'NumericEquals':{'coffer:Version':3}"), "res=fraud/prod/model@30", 'I'),
    C(ALLOW_IF("'NumericEquals':{'coffer:Version':3}"), "res=fraud/prod/model", 'I'),
    C(ALLOW_IF("'NumericGreaterThan':{'coffer:Version':5}"), "res=fraud/prod/model ver=7", 'A'),
    C(ALLOW_IF("'NumericLessThan':{'coffer:PrincipalTag/level':'2.5'}"), "ptag:level=2", 'A'),
    C(ALLOW_IF("'NumericLessThan':{'coffer:PrincipalTag/level':'2.5'}"), "ptag:level=abc", 'I'),
    C(ALLOW_IF("'NumericNotEquals':{'coffer:PrincipalTag/level':'2'}"), "ptag:level=abc", 'I'),
    C(ALLOW_IF("'NumericLessThan':{'coffer:EpochTime':1709721001}"), "", 'A'),
    C(ALLOW_IF("'NumericLessThan':{'coffer:EpochTime':1709721000}"), "", 'I'),
    /* Dates: ISO 8601 with zone, dates alone, epoch seconds; compared as instants. */
    C(ALLOW_IF("'DateLessThan':{'coffer:CurrentTime':'2024-03-06T11:00:00Z'}"), "", 'A'),
    C(ALLOW_IF("'DateLessThan':{'coffer:CurrentTime':'2024-03-06T10:30:00Z'}"), "", 'I'),
    C(ALLOW_IF("'DateLessThanEquals':{'coffer:CurrentTime':'2024-03-06T10:30:00Z'}"), "", 'A'),
    C(ALLOW_IF("'DateLessThanEquals':{'coffer:CurrentTime':'2024-03-06T10:29:59Z'}"), "", 'I'),
    C(ALLOW_IF("'DateGreaterThan':{'coffer:CurrentTime':'2024-03-06'}"), "", 'A'),
    C(ALLOW_IF("'DateGreaterThan':{'coffer:CurrentTime':'2024-03-07'}"), "", 'I'),
    C(ALLOW_IF("'DateGreaterThanEquals':{'coffer:CurrentTime':'2024-03-06T10:30:00Z'}"), "", 'A'),
    C(ALLOW_IF("'DateGreaterThanEquals':{'coffer:CurrentTime':'2024-03-06T10:30:01Z'}"), "", 'I'),
    C(ALLOW_IF("'DateEquals':{'coffer:CurrentTime':'2024-03-06T11:30:00+01:00'}"), "", 'A'),
    C(ALLOW_IF("'DateEquals':{'coffer:CurrentTime':'2024-03-06T10:30:00.250Z'}"), "", 'A'),
    C(ALLOW_IF("'DateEquals':{'coffer:CurrentTime':'1709721000'}"), "", 'A'),
    C(ALLOW_IF("'DateEquals':{'aws:CurrentTime':'2024-03-06T10:31:00Z'}"), "", 'I'),
    C(ALLOW_IF("'DateNotEquals':{'coffer:CurrentTime':'2024-03-06T10:31:00Z'}"), "", 'A'),
    C(ALLOW_IF("'DateNotEquals':{'coffer:CurrentTime':'2024-03-06T05:30:00-05:00'}"), "", 'I'),
    C(ALLOW_IF("'DateLessThan':{'coffer:EpochTime':'2025-01-01T00:00:00Z'}"), "", 'A'),
    C(ALLOW_IF("'DateLessThan':{'coffer:ResourceTag/expires':'2024-12-31'}"),
      "rtag:expires=2024-06-01", 'A'),
    C(ALLOW_IF("'DateGreaterThan':{'coffer:ResourceTag/expires':'2024-03-06T00:00:00Z'}"),
      "rtag:expires=2024-01-01", 'I'),
    C(ALLOW_IF("'DateGreaterThan':{'coffer:ResourceTag/expires':'2024-03-06T00:00:00Z'}"),
      "rtag:expires=soon", 'I'),
    C(ALLOW_IF("'DateGreaterThan':{'coffer:ResourceTag/expires':'2024-03-06T00:00:00Z'}"), "", 'I'),
    C(ALLOW_IF("'DateGreaterThanIfExists':{'coffer:ResourceTag/expires':'2024-03-06'}"), "", 'A'),
    /* Bool. */
    C(ALLOW_IF("'Bool':{'coffer:MultiFactorAuthPresent':'true'}"), "mfa=1", 'A'),
    C(ALLOW_IF("'Bool':{'coffer:MultiFactorAuthPresent':'true'}"), "mfa=0", 'I'),
    C(ALLOW_IF("'Bool':{'coffer:MultiFactorAuthPresent':true}"), "mfa=1", 'A'),
    C(ALLOW_IF("'Bool':{'aws:MultiFactorAuthPresent':'TRUE'}"), "mfa=1", 'A'),
    C(ALLOW_IF("'Bool':{'coffer:MultiFactorAuthPresent':'false'}"), "mfa=0", 'A'),
    C(ALLOW_IF("'Bool':{'coffer:SecureTransport':'true'}"), "tls=1", 'A'),
    C(ALLOW_IF("'Bool':{'aws:SecureTransport':'true'}"), "tls=0", 'I'),
    C(ALLOW_IF("'Bool':{'coffer:ResourceTag/pii':'true'}"), "rtag:pii=True", 'A'),
    C(ALLOW_IF("'Bool':{'coffer:ResourceTag/pii':'true'}"), "rtag:pii=yes", 'I'),
    C(ALLOW_IF("'Bool':{'coffer:ResourceTag/pii':'true'}"), "", 'I'),
    C(ALLOW_IF("'BoolIfExists':{'coffer:ResourceTag/pii':'false'}"), "", 'A'),
    C(ALLOW_IF("'BoolIfExists':{'coffer:ResourceTag/pii':'false'}"), "rtag:pii=true", 'I'),
    /* IP addresses, both families. */
    C(ALLOW_IF("'IpAddress':{'coffer:SourceIp':'10.0.0.0/8'}"), "ip=10.1.2.3", 'A'),
    C(ALLOW_IF("'IpAddress':{'coffer:SourceIp':'10.0.0.0/8'}"), "ip=11.1.2.3", 'I'),
    C(ALLOW_IF("'IpAddress':{'coffer:SourceIp':'10.0.0.0/8'}"), "", 'I'),
    C(ALLOW_IF("'IpAddress':{'coffer:SourceIp':['10.0.0.0/8','192.0.2.0/24']}"), "ip=192.0.2.77",
      'A'),
    C(ALLOW_IF("'IpAddress':{'coffer:SourceIp':'192.0.2.5'}"), "ip=192.0.2.5", 'A'),
    C(ALLOW_IF("'IpAddress':{'coffer:SourceIp':'192.0.2.5'}"), "ip=192.0.2.6", 'I'),
    C(ALLOW_IF("'IpAddress':{'coffer:SourceIp':'192.0.2.0/25'}"), "ip=192.0.2.127", 'A'),
    C(ALLOW_IF("'IpAddress':{'coffer:SourceIp':'192.0.2.0/25'}"), "ip=192.0.2.128", 'I'),
    C(ALLOW_IF("'IpAddress':{'coffer:SourceIp':'0.0.0.0/0'}"), "ip=203.0.113.9", 'A'),
    C(ALLOW_IF("'IpAddress':{'coffer:SourceIp':'0.0.0.0/0'}"), "ip=2001:db8::1", 'I'),
    C(ALLOW_IF("'IpAddress':{'aws:SourceIp':'2001:db8::/32'}"), "ip=2001:db8:1::5", 'A'),
    C(ALLOW_IF("'IpAddress':{'aws:SourceIp':'2001:db8::/32'}"), "ip=2001:db9::5", 'I'),
    C(ALLOW_IF("'IpAddress':{'coffer:SourceIp':'2001:db8::/33'}"), "ip=2001:db8:8000::1", 'I'),
    C(ALLOW_IF("'IpAddress':{'coffer:SourceIp':'2001:db8::/32'}"), "ip=10.0.0.1", 'I'),
    C(ALLOW_IF("'IpAddress':{'coffer:SourceIp':'10.0.0.0/8'}"), "ip=::ffff:10.9.9.9", 'A'),
    C(ALLOW_IF("'NotIpAddress':{'coffer:SourceIp':'10.0.0.0/8'}"), "ip=11.1.2.3", 'A'),
    C(ALLOW_IF("'NotIpAddress':{'coffer:SourceIp':'10.0.0.0/8'}"), "ip=10.1.2.3", 'I'),
    C(ALLOW_IF("'NotIpAddress':{'coffer:SourceIp':'10.0.0.0/8'}"), "", 'A'),
    C(ALLOW_IF("'NotIpAddress':{'coffer:SourceIp':['10.0.0.0/8','::1']}"), "ip=::1", 'I'),
    C(ALLOW_IF("'IpAddressIfExists':{'coffer:SourceIp':'10.0.0.0/8'}"), "", 'A'),
    C(ALLOW_IF("'IpAddressIfExists':{'coffer:SourceIp':'10.0.0.0/8'}"), "ip=8.8.8.8", 'I'),
    C(ALLOW_IF("'StringEquals':{'coffer:SourceIp':'10.1.2.3'}"), "ip=10.1.2.3", 'A'),
    C(ALLOW_IF("'IpAddress':{'coffer:ResourceTag/net':'10.0.0.0/8'}"), "rtag:net=10.4.4.4", 'A'),
    /* Null. */
    C(ALLOW_IF("'Null':{'coffer:ResourceTag/pii':'true'}"), "", 'A'),
    C(ALLOW_IF("'Null':{'coffer:ResourceTag/pii':'true'}"), "rtag:pii=true", 'I'),
    C(ALLOW_IF("'Null':{'coffer:ResourceTag/pii':'false'}"), "rtag:pii=true", 'A'),
    C(ALLOW_IF("'Null':{'coffer:ResourceTag/pii':'false'}"), "", 'I'),
    C(ALLOW_IF("'Null':{'coffer:SourceIp':true}"), "", 'A'),
    C(ALLOW_IF("'Null':{'coffer:Groups':'false'}"), "groups=ml", 'A'),
    C(ALLOW_IF("'Null':{'coffer:Groups':'false'}"), "", 'I'),
};

static void test_typed_ops(void **state)
{
    (void)state;
    assert_int_equal(run_table(typed_cases, sizeof(typed_cases) / sizeof(typed_cases[0])), 0);
}

/* ---- IfExists, sets, keys -------------------------------------------------- */

static const struct tcase set_cases[] = {
    C(ALLOW_IF("'StringEqualsIfExists':{'coffer:ResourceKind':'model'}"), "", 'A'),
    C(ALLOW_IF("'StringEqualsIfExists':{'coffer:ResourceKind':'model'}"), "kind=model", 'A'),
    C(ALLOW_IF("'StringEqualsIfExists':{'coffer:ResourceKind':'model'}"), "kind=dataset", 'I'),
    C(ALLOW_IF("'StringNotEqualsIfExists':{'coffer:ResourceKind':'model'}"), "kind=model", 'I'),
    C(ALLOW_IF("'StringNotEqualsIfExists':{'coffer:ResourceKind':'model'}"), "", 'A'),
    C(ALLOW_IF("'StringLikeIfExists':{'coffer:PrincipalTag/team':'risk*'}"), "", 'A'),
    C(ALLOW_IF("'StringLikeIfExists':{'coffer:PrincipalTag/team':'risk*'}"), "ptag:team=ops", 'I'),
    /* Groups is multi-valued. Without a prefix: any value matches; negated: none matches. */
    C(ALLOW_IF("'StringEquals':{'coffer:Groups':'ml'}"), "groups=data,ml", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:Groups':'ml'}"), "groups=data,ops", 'I'),
    C(ALLOW_IF("'StringEquals':{'coffer:Groups':'ml'}"), "", 'I'),
    C(ALLOW_IF("'StringNotEquals':{'coffer:Groups':'contractors'}"), "groups=ml,ops", 'A'),
    C(ALLOW_IF("'StringNotEquals':{'coffer:Groups':'contractors'}"), "groups=ml,contractors", 'I'),
    C(ALLOW_IF("'StringNotEquals':{'coffer:Groups':'contractors'}"), "", 'A'),
    C(ALLOW_IF("'ForAnyValue:StringEquals':{'coffer:Groups':['ml','data']}"), "groups=ops,data",
      'A'),
    C(ALLOW_IF("'ForAnyValue:StringEquals':{'coffer:Groups':['ml','data']}"), "groups=ops", 'I'),
    C(ALLOW_IF("'ForAnyValue:StringEquals':{'coffer:Groups':['ml','data']}"), "", 'I'),
    C(ALLOW_IF("'ForAnyValue:StringNotEquals':{'coffer:Groups':'ml'}"), "groups=ml,ops", 'A'),
    C(ALLOW_IF("'ForAnyValue:StringNotEquals':{'coffer:Groups':'ml'}"), "groups=ml", 'I'),
    C(ALLOW_IF("'ForAnyValue:StringNotEquals':{'coffer:Groups':'ml'}"), "", 'I'),
    C(ALLOW_IF("'ForAnyValue:StringLike':{'coffer:Groups':'team-*'}"), "groups=x,team-a", 'A'),
    C(ALLOW_IF("'ForAnyValue:StringEqualsIfExists':{'coffer:Groups':'ml'}"), "", 'A'),
    C(ALLOW_IF("'ForAllValues:StringEquals':{'coffer:Groups':['ml','data']}"), "groups=ml,data",
      'A'),
    C(ALLOW_IF("'ForAllValues:StringEquals':{'coffer:Groups':['ml','data']}"), "groups=ml", 'A'),
    C(ALLOW_IF("'ForAllValues:StringEquals':{'coffer:Groups':['ml','data']}"), "groups=ml,ops",
      'I'),
    C(ALLOW_IF("'ForAllValues:StringEquals':{'coffer:Groups':['ml','data']}"), "", 'A'),
    C(ALLOW_IF("'ForAllValues:StringNotEquals':{'coffer:Groups':'contractors'}"), "groups=ml,ops",
      'A'),
    C(ALLOW_IF("'ForAllValues:StringNotEquals':{'coffer:Groups':'contractors'}"),
      "groups=ml,contractors", 'I'),
    C(ALLOW_IF("'ForAllValues:StringLike':{'coffer:Groups':'team-*'}"), "groups=team-a,team-b",
      'A'),
    C(ALLOW_IF("'ForAllValues:StringLike':{'coffer:Groups':'team-*'}"), "groups=team-a,ops", 'I'),
    C(ALLOW_IF("'ForAnyValue:StringEquals':{'coffer:ResourceKind':'model'}"), "kind=model", 'A'),
    C(ALLOW_IF("'ForAllValues:StringEquals':{'coffer:ResourceKind':'model'}"), "kind=code", 'I'),
    /* Principal keys. */
    C(ALLOW_IF("'StringEquals':{'coffer:username':'alice'}"), "", 'A'),
    C(ALLOW_IF("'StringEquals':{'aws:username':'alice'}"), "", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:username':'alice'}"), "user=bob", 'I'),
    T(ALLOW_IF("'StringEquals':{'coffer:PrincipalType':'service'}"), NULL, "service:alice",
      "type=service", 'A'),
    C(ALLOW_IF("'StringEquals':{'aws:PrincipalType':'user'}"), "type=link", 'I'),
    T(ALLOW_IF("'StringEquals':{'coffer:PrincipalType':'link'}"), NULL, "link:alice", "type=link",
      'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:PrincipalTag/department':'risk'}"), "ptag:department=risk",
      'A'),
    C(ALLOW_IF("'StringEquals':{'aws:PrincipalTag/department':'risk'}"), "ptag:Department=risk",
      'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:PrincipalTag/department':'risk'}"), "ptag:department=fraud",
      'I'),
    C(ALLOW_IF("'StringEquals':{'coffer:AuthMethod':['token','oidc']}"), "auth=oidc", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:AuthMethod':['token','oidc']}"), "", 'I'),
    /* Resource keys. */
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceSensitivity':'confidential'}"), "sens=2 clr=2",
      'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceSensitivity':'confidential'}"), "", 'I'),
    C(ALLOW_IF("'NumericLessThanEquals':{'coffer:ResourceSensitivityLevel':1}"), "sens=0", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:Project':'fraud'}"), "", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:Project':'fraud'}"), "res=churn/dev/x", 'I'),
    C(ALLOW_IF("'StringEquals':{'coffer:Project':'fraud'}"), "res=* proj=fraud", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:Project':'fraud'}"), "res=*", 'I'),
    C(ALLOW_IF("'StringEquals':{'coffer:Environment':'prod'}"), "", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:Environment':'prod'}"), "res=fraud/dev/m@1", 'I'),
    C(ALLOW_IF("'StringEquals':{'coffer:Environment':'staging'}"), "env=staging", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceTag/owner':'risk'}"), "rtag:Owner=risk", 'A'),
};

static void test_sets_and_keys(void **state)
{
    (void)state;
    assert_int_equal(run_table(set_cases, sizeof(set_cases) / sizeof(set_cases[0])), 0);
}

/* ---- Actions, resources, variables ------------------------------------------ */

static const struct tcase match_cases[] = {
    /* Actions: wildcards, case-insensitivity, NotAction. */
    C("{'Effect':'Allow','Action':'artifact:*','Resource':'*'}", "act=artifact:Download", 'A'),
    C("{'Effect':'Allow','Action':'artifact:*','Resource':'*'}", "act=audit:Read", 'I'),
    C("{'Effect':'Allow','Action':'artifact:Down*','Resource':'*'}", "act=artifact:Download", 'A'),
    C("{'Effect':'Allow','Action':'artifact:Down*','Resource':'*'}", "act=artifact:Delete", 'I'),
    C("{'Effect':'Allow','Action':'artifact:?ead','Resource':'*'}", "act=artifact:Read", 'A'),
    C("{'Effect':'Allow','Action':'*:Read','Resource':'*'}", "act=audit:Read", 'A'),
    C("{'Effect':'Allow','Action':'*','Resource':'*'}", "act=admin:Keys", 'A'),
    C("{'Effect':'Allow','Action':'ARTIFACT:read','Resource':'*'}", "", 'A'),
    C("{'Effect':'Allow','Action':'artifact:Read','Resource':'*'}", "act=Artifact:READ", 'A'),
    C("{'Effect':'Allow','Action':'artifact:Read','Resource':'*'}", "act=artifact:Reads", 'I'),
    C("{'Effect':'Allow','Action':['artifact:Write','artifact:Read'],'Resource':'*'}", "", 'A'),
    C("{'Effect':'Allow','NotAction':'artifact:Erase','Resource':'*'}", "act=artifact:Write", 'A'),
    C("{'Effect':'Allow','NotAction':'artifact:Erase','Resource':'*'}", "act=artifact:Erase", 'I'),
    C("{'Effect':'Allow','NotAction':['admin:*','audit:*'],'Resource':'*'}", "act=admin:Users",
      'I'),
    C(ALLOW_ALL ",{'Effect':'Deny','NotAction':['artifact:List','artifact:Read'],'Resource':'*'}",
      "act=artifact:Download", 'D'),
    C(ALLOW_ALL ",{'Effect':'Deny','NotAction':['artifact:List','artifact:Read'],'Resource':'*'}",
      "", 'A'),
    C(ALLOW_ALL, "act=artifact:Fly", 'I'),
    /* Resources: '*' spans '/', '?' one character, versions. */
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/*'}", "", 'A'),
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/*'}", "res=fraudx/prod/m@1", 'I'),
    C("{'Effect':'Allow','Action':'*','Resource':'*/prod/*'}", "", 'A'),
    C("{'Effect':'Allow','Action':'*','Resource':'*/prod/*'}", "res=fraud/dev/prod", 'I'),
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/prod/model'}", "", 'A'),
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/prod/model'}", "res=fraud/prod/model", 'A'),
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/prod/model'}", "res=fraud/prod/models",
      'I'),
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/prod/mode?'}", "", 'A'),
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/prod/model@3'}", "", 'A'),
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/prod/model@3'}", "res=fraud/prod/model@30",
      'I'),
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/prod/model@3'}", "res=fraud/prod/model@4",
      'I'),
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/prod/model@3'}", "res=fraud/prod/model",
      'I'),
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/prod/model@*'}", "res=fraud/prod/model@12",
      'A'),
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/prod/*@3'}", "", 'A'),
    C("{'Effect':'Allow','Action':'*','Resource':['churn/*','fraud/prod/*']}", "", 'A'),
    C("{'Effect':'Allow','Action':'*','Resource':'Fraud/*'}", "", 'I'),
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/prod/Model'}", "", 'I'),
    C("{'Effect':'Allow','Action':'*','Resource':'*'}", "res=*", 'A'),
    C("{'Effect':'Allow','Action':'*','Resource':'fraud/*'}", "res=*", 'I'),
    C("{'Effect':'Allow','Action':'*','NotResource':'fraud/prod/*'}", "", 'I'),
    C("{'Effect':'Allow','Action':'*','NotResource':'fraud/prod/*'}", "res=fraud/dev/m@1", 'A'),
    C(ALLOW_ALL ",{'Effect':'Deny','Action':'*','NotResource':['fraud/dev/*','fraud/staging/*']}",
      "", 'D'),
    C(ALLOW_ALL ",{'Effect':'Deny','Action':'*','NotResource':['fraud/dev/*','fraud/staging/*']}",
      "res=fraud/dev/m@1", 'A'),
    /* Per-version grants and denies. */
    C(ALLOW_ALL ",{'Effect':'Deny','Action':'artifact:Download','Resource':'fraud/prod/"
                "model@3'}",
      "act=artifact:Download", 'D'),
    C(ALLOW_ALL ",{'Effect':'Deny','Action':'artifact:Download','Resource':'fraud/prod/"
                "model@3'}",
      "act=artifact:Download res=fraud/prod/model@2", 'A'),
    /* Variables in resources. */
    C("{'Effect':'Allow','Action':'*','Resource':'home/${coffer:username}/*'}",
      "res=home/alice/notes@1", 'A'),
    C("{'Effect':'Allow','Action':'*','Resource':'home/${aws:username}/*'}",
      "res=home/alice/notes@1", 'A'),
    C("{'Effect':'Allow','Action':'*','Resource':'home/${coffer:username}/*'}",
      "res=home/bob/notes@1", 'I'),
    C("{'Effect':'Allow','Action':'*','Resource':'${coffer:PrincipalTag/team}/*'}",
      "ptag:team=fraud", 'A'),
    C("{'Effect':'Allow','Action':'*','Resource':'${coffer:PrincipalTag/team}/*'}",
      "ptag:team=churn", 'I'),
    C("{'Effect':'Allow','Action':'*','Resource':'${coffer:PrincipalTag/team}/*'}", "", 'I'),
    C("{'Effect':'Allow','Action':'*','Resource':'${coffer:PrincipalTag/team}/*'}", "ptag:team=*",
      'I'),
    C("{'Effect':'Allow','Action':'*','Resource':'${coffer:PrincipalTag/team}/*'}",
      "ptag:team=fra?d", 'I'),
    /* A Deny whose variable cannot be resolved still applies (fail closed). */
    C(ALLOW_ALL ",{'Effect':'Deny','Action':'*','NotResource':'${coffer:PrincipalTag/team}/*'}",
      "ptag:team=fraud", 'A'),
    C(ALLOW_ALL ",{'Effect':'Deny','Action':'*','NotResource':'${coffer:PrincipalTag/team}/*'}",
      "ptag:team=churn", 'D'),
    C(ALLOW_ALL ",{'Effect':'Deny','Action':'*','NotResource':'${coffer:PrincipalTag/team}/*'}", "",
      'D'),
    C(ALLOW_ALL ",{'Effect':'Deny','Action':'*','Resource':'${coffer:PrincipalTag/x}/*'}", "", 'D'),
    /* Version 2008-10-17 has no variables: the text is literal. */
    C("V2008{'Effect':'Allow','Action':'*','Resource':'home/${coffer:username}/*'}",
      "res=home/alice/x", 'I'),
    C("V2008{'Effect':'Allow','Action':'*','Resource':'home/${coffer:username}/*'}",
      "res=home/${coffer:username}/x", 'A'),
    /* Variables in condition values. */
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceTag/owner':'${coffer:username}'}"),
      "rtag:owner=alice", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceTag/owner':'${coffer:username}'}"),
      "rtag:owner=bob", 'I'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceTag/team':'${coffer:PrincipalTag/team}'}"),
      "rtag:team=risk ptag:team=risk", 'A'),
    C(ALLOW_IF("'StringEquals':{'coffer:ResourceTag/team':'${coffer:PrincipalTag/team}'}"),
      "rtag:team=risk", 'I'),
    C(ALLOW_IF("'StringLike':{'coffer:ResourceTag/team':'${coffer:PrincipalTag/team}-*'}"),
      "rtag:team=risk-eu ptag:team=risk", 'A'),
    C(ALLOW_IF("'NumericLessThanEquals':{'coffer:ResourceSensitivityLevel':'${coffer:"
               "PrincipalTag/max}'}"),
      "sens=1 ptag:max=2", 'A'),
    C(ALLOW_IF("'NumericLessThanEquals':{'coffer:ResourceSensitivityLevel':'${coffer:"
               "PrincipalTag/max}'}"),
      "sens=1 ptag:max=zero", 'I'),
    C(DENY_IF("'StringNotEquals':{'coffer:ResourceTag/team':'${coffer:PrincipalTag/"
              "team}'}") "," ALLOW_ALL,
      "rtag:team=risk", 'D'),
};

static void test_actions_resources_variables(void **state)
{
    (void)state;
    assert_int_equal(run_table(match_cases, sizeof(match_cases) / sizeof(match_cases[0])), 0);
}

/* ---- Deny wins, bindings, scopes, globals, clearance ---------------------------- */

#define GLOBAL(principal, stmt_tail)                                                               \
    "{'Effect':'Deny','Principal':" principal ",'Action':'*','Resource':'*'" stmt_tail "}"

static const struct tcase model_cases[] = {
    C(ALLOW_ALL ",{'Effect':'Deny','Action':'artifact:Read','Resource':'*'}", "", 'D'),
    C("{'Effect':'Deny','Action':'artifact:Read','Resource':'*'}," ALLOW_ALL, "", 'D'),
    C("{'Effect':'Deny','Action':'artifact:Write','Resource':'*'}," ALLOW_ALL, "", 'A'),
    C("{'Effect':'Deny','Action':'artifact:Read','Resource':'*'}", "", 'D'),
    C(NULL, "", 'I'),
    C("{'Effect':'Allow','Action':'artifact:Write','Resource':'*'}", "", 'I'),
    /* Bindings: user, group, service; another user gets nothing. */
    T(ALLOW_ALL, NULL, "group:ml", "groups=ml", 'A'),
    T(ALLOW_ALL, NULL, "group:ml", "groups=ops", 'I'),
    T(ALLOW_ALL, NULL, "group:ml", "", 'I'),
    T(ALLOW_ALL, NULL, "service:trainer", "type=service user=trainer", 'A'),
    T(ALLOW_ALL, NULL, "service:trainer", "user=trainer", 'I'),
    T(ALLOW_ALL, NULL, "user:alice", "user=bob", 'I'),
    T(ALLOW_ALL, NULL, "link:ab12", "type=link user=ab12", 'A'),
    /* Scopes narrow every statement of the role, Allow and Deny. */
    T(ALLOW_ALL, NULL, "user:alice|fraud/*", "", 'A'),
    T(ALLOW_ALL, NULL, "user:alice|fraud/*", "res=churn/prod/m@1", 'I'),
    T(ALLOW_ALL, NULL, "user:alice|fraud/*", "res=* act=admin:Users", 'I'),
    T(ALLOW_ALL, NULL, "user:alice|*/dev/*", "res=fraud/dev/m@2", 'A'),
    T(ALLOW_ALL, NULL, "user:alice|fraud/prod/model@2", "", 'I'),
    T(ALLOW_ALL, NULL, "user:alice|fraud/prod/model@3", "", 'A'),
    T(ALLOW_ALL, NULL, "user:alice|fraud/*,group:ml", "res=churn/prod/m@1 groups=ml", 'A'),
    T("{'Effect':'Deny','Action':'*','Resource':'*'}", NULL, "user:alice|fraud/*",
      "res=churn/prod/m@1", 'I'),
    T("{'Effect':'Deny','Action':'*','Resource':'*'}", NULL, "user:alice|fraud/*", "", 'D'),
    /* Global policies apply to the principals they name. */
    T(ALLOW_ALL, GLOBAL("'*'", ""), NULL, "", 'D'),
    T(ALLOW_ALL, GLOBAL("{'Coffer':'user:alice'}", ""), NULL, "", 'D'),
    T(ALLOW_ALL, GLOBAL("{'Coffer':['user:bob']}", ""), NULL, "", 'A'),
    T(ALLOW_ALL, GLOBAL("{'Coffer':['group:contractors']}", ""), NULL, "groups=contractors", 'D'),
    T(ALLOW_ALL, GLOBAL("{'Coffer':['group:contractors']}", ""), NULL, "groups=ml", 'A'),
    T(ALLOW_ALL, GLOBAL("{'Coffer':['role:r']}", ""), NULL, "", 'D'),
    T(ALLOW_ALL, GLOBAL("{'Coffer':['role:other']}", ""), NULL, "", 'A'),
    T(ALLOW_ALL, GLOBAL("{'Coffer':['role:r']}", ""), "group:ml", "groups=ml", 'D'),
    T(ALLOW_ALL, GLOBAL("{'Coffer':['service:alice']}", ""), NULL, "", 'A'),
    T(ALLOW_ALL, GLOBAL("{'Coffer':['service:ci']}", ""), "service:ci", "type=service user=ci",
      'D'),
    T(ALLOW_ALL, GLOBAL("'*'", ",'Condition':{'NotIpAddress':{'coffer:SourceIp':'10.0.0.0/8'}}"),
      NULL, "ip=10.0.0.1", 'A'),
    T(ALLOW_ALL, GLOBAL("'*'", ",'Condition':{'NotIpAddress':{'coffer:SourceIp':'10.0.0.0/8'}}"),
      NULL, "ip=8.8.8.8", 'D'),
    T(NULL, "{'Effect':'Allow','Principal':'*','Action':'artifact:List','Resource':'*'}", NULL,
      "act=artifact:List", 'A'),
    /* Principal belongs to each statement of a global policy, not to the document. */
    T(ALLOW_ALL,
      "{'Effect':'Deny','Principal':{'Coffer':'user:bob'},'Action':'artifact:Read','Resource':"
      "'*'},{'Effect':'Deny','Principal':{'Coffer':'group:x'},'Action':'artifact:Write',"
      "'Resource':'*'}",
      NULL, "groups=x", 'A'),
    T(ALLOW_ALL,
      "{'Effect':'Deny','Principal':{'Coffer':'user:bob'},'Action':'artifact:Read','Resource':"
      "'*'},{'Effect':'Deny','Principal':{'Coffer':'group:x'},'Action':'artifact:Write',"
      "'Resource':'*'}",
      NULL, "groups=x act=artifact:Write", 'D'),
    /* Mandatory clearance rule: reads above clearance are denied whatever the policies say. */
    C(ALLOW_ALL, "sens=3 clr=1", 'C'),
    C(ALLOW_ALL, "sens=2 clr=1 act=artifact:Download", 'C'),
    C(ALLOW_ALL, "sens=2 clr=1 act=artifact:List", 'C'),
    C(ALLOW_ALL, "sens=2 clr=2 act=artifact:Download", 'A'),
    C(ALLOW_ALL, "sens=0 clr=0", 'A'),
    C(ALLOW_ALL, "sens=3 clr=1 act=artifact:Write", 'A'),
    C(ALLOW_ALL, "sens=3 clr=1 act=artifact:Label", 'A'),
    C(ALLOW_ALL, "sens=-1 clr=0", 'A'),
    C(ALLOW_ALL, "sens=1 clr=-4", 'C'),
    C(NULL, "sens=3 clr=1", 'C'),
};

static void test_model(void **state)
{
    (void)state;
    assert_int_equal(run_table(model_cases, sizeof(model_cases) / sizeof(model_cases[0])), 0);
}

/* ---- Built-in roles and guardrails ---------------------------------------------- */

struct bcase {
    int line;
    const char *role;
    const char *spec;
    char expect;
};

static const struct bcase builtin_cases[] = {
    {__LINE__, "viewer", "act=artifact:List res=fraud", 'A'},
    {__LINE__, "viewer", "", 'A'},
    {__LINE__, "viewer", "act=artifact:Download", 'I'},
    {__LINE__, "viewer", "act=artifact:Write res=fraud/dev/m", 'I'},
    {__LINE__, "data-scientist", "act=artifact:Download kind=dataset", 'A'},
    {__LINE__, "data-scientist", "act=artifact:Write res=fraud/dev/m", 'A'},
    {__LINE__, "data-scientist", "act=artifact:Write res=fraud/staging/m", 'I'},
    {__LINE__, "data-scientist", "act=artifact:Share res=fraud/dev/m@2", 'A'},
    {__LINE__, "data-scientist", "act=artifact:Share res=fraud/prod/m@2", 'I'},
    {__LINE__, "data-scientist", "act=artifact:Delete res=fraud/dev/m@2", 'I'},
    {__LINE__, "ml-engineer", "act=artifact:Download kind=model", 'A'},
    {__LINE__, "ml-engineer", "act=artifact:Download kind=dataset", 'I'},
    {__LINE__, "ml-engineer", "act=artifact:Download", 'I'},
    {__LINE__, "ml-engineer", "act=artifact:Write res=fraud/staging/m kind=model", 'A'},
    {__LINE__, "ml-engineer", "act=artifact:Write res=fraud/staging/m kind=dataset", 'I'},
    {__LINE__, "ml-engineer", "act=artifact:Write res=fraud/prod/m kind=model mfa=1", 'I'},
    {__LINE__, "ml-engineer", "act=artifact:Promote res=fraud/prod/m mfa=1", 'A'},
    {__LINE__, "ml-engineer", "act=artifact:Approve res=fraud/prod/m mfa=1", 'I'},
    {__LINE__, "deployer", "act=artifact:Download kind=model", 'A'},
    {__LINE__, "deployer", "act=artifact:Download kind=dataset", 'I'},
    {__LINE__, "deployer", "act=artifact:Download kind=model res=fraud/dev/m@1", 'I'},
    {__LINE__, "deployer", "act=artifact:Approve res=fraud/prod/m mfa=1", 'A'},
    {__LINE__, "deployer", "act=artifact:Promote res=fraud/staging/m mfa=1", 'I'},
    {__LINE__, "auditor", "act=audit:Read res=*", 'A'},
    {__LINE__, "auditor", "act=artifact:Read", 'A'},
    {__LINE__, "auditor", "act=artifact:Download", 'I'},
    {__LINE__, "security-admin", "act=admin:Policies res=*", 'A'},
    {__LINE__, "security-admin", "act=admin:Keys res=*", 'A'},
    {__LINE__, "security-admin", "act=artifact:Download", 'I'},
    {__LINE__, "admin", "act=artifact:Erase mfa=1", 'A'},
    {__LINE__, "admin", "act=admin:Users res=*", 'A'},
    /* Guardrails: prod changes need MFA; restricted downloads need MFA. */
    {__LINE__, "admin", "act=artifact:Write res=fraud/prod/m", 'D'},
    {__LINE__, "admin", "act=artifact:Write res=fraud/prod/m mfa=1", 'A'},
    {__LINE__, "admin", "act=artifact:Promote res=fraud/prod/m", 'D'},
    {__LINE__, "deployer", "act=artifact:Approve res=fraud/prod/m", 'D'},
    {__LINE__, "admin", "act=artifact:Write res=fraud/staging/m", 'A'},
    {__LINE__, "admin", "act=artifact:Download sens=3 clr=3", 'D'},
    {__LINE__, "admin", "act=artifact:Download sens=3 clr=3 mfa=1", 'A'},
    {__LINE__, "admin", "act=artifact:Download sens=2 clr=3", 'A'},
    {__LINE__, "admin", "act=artifact:Read sens=3 clr=3", 'A'},
    {__LINE__, "admin", "act=artifact:Download sens=3 clr=2 mfa=1", 'C'},
    {__LINE__, "data-scientist", "act=artifact:Download sens=3 clr=3", 'D'},
    /* Guardrail: erasure needs MFA, whatever the role. */
    {__LINE__, "admin", "act=artifact:Erase", 'D'},
    {__LINE__, "admin", "act=artifact:Erase res=fraud/dev/m@2 mfa=0", 'D'},
    {__LINE__, "admin", "act=artifact:Erase res=fraud/dev/m@2 mfa=1", 'A'},
};

static void test_builtins(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(builtin_cases) / sizeof(builtin_cases[0]); i++) {
        char err[AUTHZ_ERRBUF];
        struct authz_builder *b = authz_builder_new();
        assert_non_null(b);
        assert_int_equal(authz_builder_add_builtins(b, err, sizeof(err)), ERR_OK);
        assert_int_equal(
            authz_builder_bind(b, "user:alice", builtin_cases[i].role, NULL, err, sizeof(err)),
            ERR_OK);
        struct authz_snapshot *s;
        assert_int_equal(authz_builder_build(b, &s, err, sizeof(err)), ERR_OK);
        struct reqbuf rb;
        struct authz_decision d;
        spec_parse(builtin_cases[i].spec, &rb);
        authz_decide(s, &rb.r, &d);
        if (outcome(&d) != builtin_cases[i].expect) {
            char line[512];
            authz_decision_format(&d, line, sizeof(line));
            print_error("line %d: expected %c: %s\n", builtin_cases[i].line,
                        builtin_cases[i].expect, line);
            failures++;
        }
        authz_snapshot_release(s);
    }
    assert_int_equal(failures, 0);
}

/* ---- Explain ------------------------------------------------------------------ */

static void test_deciding_statements(void **state)
{
    (void)state;
    struct authz_snapshot *s =
        build("{'Sid':'A1','Effect':'Allow','Action':'*','Resource':'*'},"
              "{'Sid':'D1','Effect':'Deny','Action':'artifact:Download','Resource':'*'},"
              "{'Effect':'Deny','Action':'artifact:Download','Resource':'fraud/*'}",
              "{'Sid':'G','Effect':'Deny','Principal':'*','Action':'artifact:Download',"
              "'Resource':'*'}",
              "group:ml");
    struct reqbuf rb;
    struct authz_decision d;
    spec_parse("groups=ml act=artifact:Download", &rb);
    authz_decide(s, &rb.r, &d);
    assert_int_equal(d.effect, AUTHZ_DENY);
    assert_int_equal(d.reason, AUTHZ_REASON_EXPLICIT_DENY);
    assert_int_equal(d.n_deciding, 3);
    assert_int_equal(d.n_matched, 3);
    assert_string_equal(d.deciding[0].sid, "D1");
    assert_string_equal(d.deciding[0].role, "r");
    assert_string_equal(d.deciding[0].policy, "p");
    assert_string_equal(d.deciding[0].via, "group:ml");
    assert_int_equal(d.deciding[0].index, 1);
    assert_string_equal(d.deciding[1].sid, "");
    assert_int_equal(d.deciding[1].index, 2);
    assert_string_equal(d.deciding[2].policy, "g");
    assert_string_equal(d.deciding[2].role, "");
    assert_string_equal(d.deciding[2].sid, "G");

    char line[1024];
    size_t n = authz_decision_format(&d, line, sizeof(line));
    assert_int_equal(n, strlen(line));
    assert_string_equal(line, "deny (explicit_deny): role \"r\" (via group:ml) policy \"p\" "
                              "statement 1 (Sid \"D1\"); role \"r\" (via group:ml) policy \"p\" "
                              "statement 2; global policy \"g\" statement 0 (Sid \"G\")");
    char small[16];
    assert_int_equal(authz_decision_format(&d, small, sizeof(small)), n);
    assert_int_equal(strlen(small), sizeof(small) - 1);

    json_t *j = authz_decision_to_json(&d);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "effect")), "deny");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "explicit_deny");
    json_t *st = json_object_get(j, "statements");
    assert_int_equal(json_array_size(st), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(st, 0), "sid")), "D1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(st, 0), "via")),
                        "group:ml");
    assert_null(json_object_get(json_array_get(st, 2), "role"));
    json_decref(j);

    spec_parse("groups=ml", &rb);
    authz_decide(s, &rb.r, &d);
    assert_int_equal(d.reason, AUTHZ_REASON_ALLOW);
    assert_int_equal(d.n_deciding, 1);
    assert_string_equal(d.deciding[0].sid, "A1");
    authz_decision_format(&d, line, sizeof(line));
    assert_string_equal(line, "allow (allow): role \"r\" (via group:ml) policy \"p\" statement 0 "
                              "(Sid \"A1\")");

    spec_parse("groups=ml sens=3 clr=1", &rb);
    authz_decide(s, &rb.r, &d);
    authz_decision_format(&d, line, sizeof(line));
    assert_string_equal(line, "deny (clearance): resource sensitivity restricted is above the "
                              "principal's clearance internal");
    j = authz_decision_to_json(&d);
    assert_string_equal(json_string_value(json_object_get(j, "clearance")), "internal");
    json_decref(j);

    spec_parse("act=artifact:Teleport", &rb);
    authz_decide(s, &rb.r, &d);
    assert_true(d.unknown_action);
    authz_decision_format(&d, line, sizeof(line));
    assert_string_equal(line, "deny (implicit_deny): unknown action");
    authz_snapshot_release(s);

    /* More than AUTHZ_MAX_DECIDING matches: the first eight are kept, all are counted. */
    char stmts[4096] = "";
    for (int i = 0; i < 12; i++) {
        char one[128];
        snprintf(one, sizeof(one), "%s{'Sid':'S%d','Effect':'Allow','Action':'*','Resource':'*'}",
                 i ? "," : "", i);
        memcpy(stmts + strlen(stmts), one, strlen(one) + 1);
    }
    s = build(stmts, NULL, NULL);
    spec_parse("", &rb);
    authz_decide(s, &rb.r, &d);
    assert_int_equal(d.n_deciding, AUTHZ_MAX_DECIDING);
    assert_int_equal(d.n_matched, 12);
    assert_string_equal(d.deciding[7].sid, "S7");
    authz_decision_format(&d, line, sizeof(line));
    assert_non_null(strstr(line, "; and 4 more"));
    authz_snapshot_release(s);
}

/* Missing required fields and a NULL snapshot are implicit denies, never crashes. */
static void test_degenerate_requests(void **state)
{
    (void)state;
    struct authz_snapshot *s = build(ALLOW_ALL, NULL, NULL);
    struct reqbuf rb;
    struct authz_decision d;
    spec_parse("", &rb);
    authz_decide(NULL, &rb.r, &d);
    assert_int_equal(d.reason, AUTHZ_REASON_IMPLICIT_DENY);
    authz_decide(s, NULL, &d);
    assert_int_equal(d.effect, AUTHZ_DENY);
    rb.r.action = NULL;
    authz_decide(s, &rb.r, &d);
    assert_int_equal(d.effect, AUTHZ_DENY);
    spec_parse("", &rb);
    rb.r.principal_name = NULL;
    authz_decide(s, &rb.r, &d);
    assert_int_equal(d.effect, AUTHZ_DENY);
    spec_parse("", &rb);
    authz_decide(s, &rb.r, &d);
    assert_int_equal(d.effect, AUTHZ_ALLOW);
    authz_snapshot_release(s);
}

/* A substituted value longer than AUTHZ_SUBST_MAX: Allow does not match, Deny does. */
static void test_substitution_overflow(void **state)
{
    (void)state;
    static char big[AUTHZ_SUBST_MAX + 8];
    memset(big, 'a', sizeof(big) - 1);
    struct authz_kv tag = {"team", big};
    struct reqbuf rb;
    struct authz_decision d;

    struct authz_snapshot *s = build(
        "{'Effect':'Allow','Action':'*','Resource':'${coffer:PrincipalTag/team}*'}", NULL, NULL);
    spec_parse("", &rb);
    rb.r.principal_tags = &tag;
    rb.r.n_principal_tags = 1;
    authz_decide(s, &rb.r, &d);
    assert_int_equal(d.reason, AUTHZ_REASON_IMPLICIT_DENY);
    authz_snapshot_release(s);

    s = build(ALLOW_ALL ",{'Effect':'Deny','Action':'*','Resource':'${coffer:PrincipalTag/team}*'}",
              NULL, NULL);
    authz_decide(s, &rb.r, &d);
    assert_int_equal(d.reason, AUTHZ_REASON_EXPLICIT_DENY);
    big[10] = '\0'; /* short enough now: the Deny no longer matches */
    authz_decide(s, &rb.r, &d);
    assert_int_equal(d.reason, AUTHZ_REASON_ALLOW);
    authz_snapshot_release(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_ops),
        cmocka_unit_test(test_typed_ops),
        cmocka_unit_test(test_sets_and_keys),
        cmocka_unit_test(test_actions_resources_variables),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_deciding_statements),
        cmocka_unit_test(test_degenerate_requests),
        cmocka_unit_test(test_substitution_overflow),
    };
    size_t total = sizeof(string_cases) / sizeof(string_cases[0]) +
                   sizeof(typed_cases) / sizeof(typed_cases[0]) +
                   sizeof(set_cases) / sizeof(set_cases[0]) +
                   sizeof(match_cases) / sizeof(match_cases[0]) +
                   sizeof(model_cases) / sizeof(model_cases[0]) +
                   sizeof(builtin_cases) / sizeof(builtin_cases[0]);
    printf("authz decision table: %zu cases\n", total);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
