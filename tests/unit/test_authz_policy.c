/*
 * Validator tests (accepted documents and the exact error messages of
 * rejected ones), the strict value parsers, and the built-in policy files:
 * the C strings in src/authz/builtin.c must equal the files in policies/builtin/.
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

struct vcase {
    int line;
    bool global;
    const char *doc; /* single quotes become double quotes */
    const char *err; /* NULL: valid; else the exact message */
};

#define JSONERR "<json>" /* a JSON syntax error: "invalid JSON at line ..." */
#define OK(doc)                                                                                    \
    {                                                                                              \
        __LINE__, false, doc, NULL                                                                 \
    }
#define OKG(doc)                                                                                   \
    {                                                                                              \
        __LINE__, true, doc, NULL                                                                  \
    }
#define BAD(doc, msg)                                                                              \
    {                                                                                              \
        __LINE__, false, doc, msg                                                                  \
    }
#define BADG(doc, msg)                                                                             \
    {                                                                                              \
        __LINE__, true, doc, msg                                                                   \
    }
#define DOC(stmts) "{'Version':'2012-10-17','Statement':[" stmts "]}"
#define ST(extra) "{'Sid':'X','Effect':'Allow','Action':'artifact:Read','Resource':'*'" extra "}"
#define COND(c) ST(",'Condition':{" c "}")

static const struct vcase vcases[] = {
    OK(DOC(ST(""))),
    OK("{'Version':'2012-10-17','Id':'x','Statement':{'Effect':'Deny','Action':'*','Resource':"
       "'*'}}"),
    OK("{'Version':'2008-10-17','Statement':{'Effect':'Deny','Action':'*','Resource':'a/${x}'}}"),
    OK(DOC(COND("'ForAnyValue:StringLikeIfExists':{'coffer:Groups':['a*','b']}"))),
    OK(DOC(COND("'IpAddress':{'aws:SourceIp':['10.0.0.0/8','2001:db8::/32','::1','1.2.3.4']}"))),
    OK(DOC(COND("'DateLessThan':{'aws:CurrentTime':['2024-01-01','2024-01-01T10:00Z',"
                "'2024-01-01T10:00:00.5+05:30','1700000000']}"))),
    OK(DOC(COND("'NumericLessThan':{'coffer:CurrentHour':[18, '7.5', -1, 1e3]}"))),
    OK(DOC(COND("'Bool':{'coffer:SecureTransport':[true,'FALSE']}"))),
    OK(DOC(COND("'Null':{'coffer:ResourceTag/pii':'true'}"))),
    OK(DOC(COND("'StringEquals':{'coffer:ResourceTag/owner':'${aws:username}'}"))),
    OKG(DOC("{'Effect':'Deny','Principal':{'Coffer':['user:a','group:b','role:c','service:d',"
            "'link:e']},'Action':'*','Resource':'*'}")),
    OKG(DOC("{'Effect':'Deny','Principal':'*','Action':'*','Resource':'*'}")),
    BAD("[]", "a policy document must be a JSON object"),
    BAD("{'Version':'2012-10-17'", JSONERR),
    BAD("{'Statement':[]}", "Version: missing; use \"2012-10-17\""),
    BAD("{'Version':'2012-10-18','Statement':[]}",
        "Version: \"2012-10-18\" is not \"2012-10-17\" or \"2008-10-17\""),
    BAD("{'Version':'2012-10-17','Statement':[],'Foo':1}", "unknown element \"Foo\""),
    BAD("{'Version':'2012-10-17','Statement':[]}", "Statement: must not be empty"),
    BAD("{'Version':'2012-10-17','Statement':'x'}",
        "Statement: must be an object or an array of objects"),
    BAD("{'Version':'2012-10-17','Version':'2012-10-17','Statement':[]}", JSONERR),
    BAD(DOC("{'Effect':'Allow','Action':'*','Resource':'*','Sid':'A B'}"),
        "statement 0: Sid: \"A B\" must be 1-128 letters, digits, '.', '_' or '-'"),
    BAD(DOC(ST("") "," ST("")), "statement 1 (Sid \"X\"): Sid: duplicate Sid (also used by "
                                "statement 0)"),
    BAD(DOC("{'Sid':'X','Action':'*','Resource':'*'}"),
        "statement 0 (Sid \"X\"): Effect: missing; must be \"Allow\" or \"Deny\""),
    BAD(DOC("{'Sid':'X','Effect':'allow','Action':'*','Resource':'*'}"),
        "statement 0 (Sid \"X\"): Effect: \"allow\" is not \"Allow\" or \"Deny\""),
    BAD(DOC("{'Sid':'X','Effect':'Allow','Resource':'*'}"),
        "statement 0 (Sid \"X\"): Action: exactly one of Action or NotAction is required"),
    BAD(DOC(ST(",'NotAction':'*'")),
        "statement 0 (Sid \"X\"): Action: exactly one of Action or NotAction is required"),
    BAD(DOC("{'Sid':'X','Effect':'Allow','Action':'artifact:Fly','Resource':'*'}"),
        "statement 0 (Sid \"X\"): Action: unknown action \"artifact:Fly\""),
    BAD(DOC("{'Sid':'X','Effect':'Allow','Action':'s3:*','Resource':'*'}"),
        "statement 0 (Sid \"X\"): Action: unknown action \"s3:*\""),
    BAD(DOC("{'Sid':'X','Effect':'Allow','Action':'Read','Resource':'*'}"),
        "statement 0 (Sid \"X\"): Action: \"Read\" is not of the form service:action"),
    BAD(DOC("{'Sid':'X','Effect':'Allow','Action':[],'Resource':'*'}"),
        "statement 0 (Sid \"X\"): Action: must not be empty"),
    BAD(DOC("{'Sid':'X','Effect':'Allow','Action':['artifact:Read',3],'Resource':'*'}"),
        "statement 0 (Sid \"X\"): Action: value 1 must be a string"),
    BAD(DOC("{'Sid':'X','Effect':'Allow','Action':{'a':1},'Resource':'*'}"),
        "statement 0 (Sid \"X\"): Action: must be a string or an array of strings"),
    BAD(DOC("{'Sid':'X','Effect':'Allow','Action':'*'}"),
        "statement 0 (Sid \"X\"): Resource: exactly one of Resource or NotResource is required"),
    BAD(DOC("{'Sid':'X','Effect':'Allow','Action':'*','Resource':'a b'}"),
        "statement 0 (Sid \"X\"): Resource: \"a b\" contains a space or control character"),
    BAD(DOC("{'Sid':'X','Effect':'Allow','Action':'*','Resource':'a@1@2'}"),
        "statement 0 (Sid \"X\"): Resource: \"a@1@2\" has more than one '@'"),
    BAD(DOC("{'Sid':'X','Effect':'Allow','Action':'*','Resource':''}"),
        "statement 0 (Sid \"X\"): Resource: empty string"),
    BAD(DOC("{'Sid':'X','Effect':'Allow','Action':'*','NotResource':'home/${coffer:user}/*'}"),
        "statement 0 (Sid \"X\"): NotResource: unknown policy variable \"${coffer:user}\""),
    BAD(DOC("{'Sid':'X','Effect':'Allow','Action':'*','Resource':'home/${coffer:username'}"),
        "statement 0 (Sid \"X\"): Resource: unterminated policy variable"),
    BAD(DOC(ST(",'Foo':1")), "statement 0 (Sid \"X\"): unknown element \"Foo\""),
    BAD(DOC(ST(",'NotPrincipal':'*'")),
        "statement 0 (Sid \"X\"): NotPrincipal is not supported; use Principal with a Deny"),
    BAD(DOC(ST(",'Principal':'*'")),
        "statement 0 (Sid \"X\"): Principal: only allowed in global policies (role policies "
        "apply to the principals the role is bound to)"),
    BADG(DOC(ST("")),
         "statement 0 (Sid \"X\"): Principal: required in a global policy (use \"*\" for "
         "everyone)"),
    BADG(DOC(ST(",'Principal':'user:x'")),
         "statement 0 (Sid \"X\"): Principal: must be \"*\" or {\"Coffer\": [...]}"),
    BADG(DOC(ST(",'Principal':{'AWS':'*'}")),
         "statement 0 (Sid \"X\"): Principal: must be \"*\" or {\"Coffer\": [...]}"),
    BADG(DOC(ST(",'Principal':{'Coffer':['admin:x']}")),
         "statement 0 (Sid \"X\"): Principal: \"admin:x\" is not \"*\" or user:NAME, "
         "group:NAME, role:NAME, service:NAME, link:ID"),
    BAD(DOC(COND("'StringEq':{'coffer:ResourceKind':'model'}")),
        "statement 0 (Sid \"X\"): Condition: unknown operator \"StringEq\""),
    BAD(DOC(COND("'stringequals':{'coffer:ResourceKind':'model'}")),
        "statement 0 (Sid \"X\"): Condition: unknown operator \"stringequals\""),
    BAD(DOC(COND("'ForSomeValues:StringEquals':{'coffer:Groups':'a'}")),
        "statement 0 (Sid \"X\"): Condition: unknown operator \"ForSomeValues:StringEquals\""),
    BAD(DOC(COND("'NullIfExists':{'coffer:Groups':'true'}")),
        "statement 0 (Sid \"X\"): Condition: \"NullIfExists\": Null takes no IfExists or set "
        "prefix"),
    BAD(DOC(COND("'StringEquals':{'coffer:Colour':'red'}")),
        "statement 0 (Sid \"X\"): Condition: unknown condition key \"coffer:Colour\""),
    BAD(DOC(COND("'StringEquals':{'aws:Project':'x'}")),
        "statement 0 (Sid \"X\"): Condition: unknown condition key \"aws:Project\""),
    BAD(DOC(COND("'StringEquals':{'ResourceKind':'x'}")),
        "statement 0 (Sid \"X\"): Condition: unknown condition key \"ResourceKind\""),
    BAD(DOC(COND("'StringEquals':{'coffer:ResourceTag/':'x'}")),
        "statement 0 (Sid \"X\"): Condition: unknown condition key \"coffer:ResourceTag/\""),
    BAD(DOC(COND("'NumericLessThan':{'coffer:username':'3'}")),
        "statement 0 (Sid \"X\"): Condition: operator \"NumericLessThan\" cannot be used with "
        "key \"coffer:username\""),
    BAD(DOC(COND("'IpAddress':{'coffer:CurrentTime':'10.0.0.0/8'}")),
        "statement 0 (Sid \"X\"): Condition: operator \"IpAddress\" cannot be used with key "
        "\"coffer:CurrentTime\""),
    BAD(DOC(COND("'NumericLessThan':{'coffer:CurrentHour':'six'}")),
        "statement 0 (Sid \"X\"): Condition: NumericLessThan: coffer:CurrentHour: \"six\" is "
        "not a number"),
    BAD(DOC(COND("'NumericLessThan':{'coffer:CurrentHour':'1.'}")),
        "statement 0 (Sid \"X\"): Condition: NumericLessThan: coffer:CurrentHour: \"1.\" is "
        "not a number"),
    BAD(DOC(COND("'NumericLessThan':{'coffer:CurrentHour':'0x10'}")),
        "statement 0 (Sid \"X\"): Condition: NumericLessThan: coffer:CurrentHour: \"0x10\" is "
        "not a number"),
    BAD(DOC(COND("'DateLessThan':{'coffer:CurrentTime':'2024-02-30'}")),
        "statement 0 (Sid \"X\"): Condition: DateLessThan: coffer:CurrentTime: \"2024-02-30\" "
        "is not an ISO 8601 date or epoch time"),
    BAD(DOC(COND("'DateLessThan':{'coffer:CurrentTime':'2024-01-01T25:00:00Z'}")),
        "statement 0 (Sid \"X\"): Condition: DateLessThan: coffer:CurrentTime: "
        "\"2024-01-01T25:00:00Z\" is not an ISO 8601 date or epoch time"),
    BAD(DOC(COND("'DateLessThan':{'coffer:CurrentTime':'tomorrow'}")),
        "statement 0 (Sid \"X\"): Condition: DateLessThan: coffer:CurrentTime: \"tomorrow\" is "
        "not an ISO 8601 date or epoch time"),
    BAD(DOC(COND("'Bool':{'coffer:SecureTransport':'yes'}")),
        "statement 0 (Sid \"X\"): Condition: Bool: coffer:SecureTransport: \"yes\" is not true "
        "or false"),
    BAD(DOC(COND("'IpAddress':{'coffer:SourceIp':'10.0.0.0/33'}")),
        "statement 0 (Sid \"X\"): Condition: IpAddress: coffer:SourceIp: \"10.0.0.0/33\" is not "
        "an IP address or CIDR"),
    BAD(DOC(COND("'IpAddress':{'coffer:SourceIp':'10.0.0/8'}")),
        "statement 0 (Sid \"X\"): Condition: IpAddress: coffer:SourceIp: \"10.0.0/8\" is not an "
        "IP address or CIDR"),
    BAD(DOC(COND("'IpAddress':{'coffer:SourceIp':'2001:db8::/129'}")),
        "statement 0 (Sid \"X\"): Condition: IpAddress: coffer:SourceIp: \"2001:db8::/129\" is "
        "not an IP address or CIDR"),
    BAD(DOC(COND("'IpAddress':{'coffer:SourceIp':'2001:db8:::1/64'}")),
        "statement 0 (Sid \"X\"): Condition: IpAddress: coffer:SourceIp: \"2001:db8:::1/64\" is "
        "not an IP address or CIDR"),
    BAD(DOC(COND("'IpAddress':{'coffer:SourceIp':'10.0.0.0/'}")),
        "statement 0 (Sid \"X\"): Condition: IpAddress: coffer:SourceIp: \"10.0.0.0/\" is not "
        "an IP address or CIDR"),
    BAD(DOC(COND("'Null':{'coffer:SourceIp':'maybe'}")),
        "statement 0 (Sid \"X\"): Condition: Null: coffer:SourceIp: \"maybe\" is not true or "
        "false"),
    BAD(DOC(COND("'StringEquals':{'coffer:ResourceKind':{'a':1}}")),
        "statement 0 (Sid \"X\"): Condition: StringEquals: coffer:ResourceKind: values must be "
        "strings, numbers or booleans"),
    BAD(DOC(COND("'StringEquals':{'coffer:ResourceKind':null}")),
        "statement 0 (Sid \"X\"): Condition: StringEquals: coffer:ResourceKind: values must be "
        "strings, numbers or booleans"),
    BAD(DOC(COND("'StringEquals':{'coffer:ResourceKind':[]}")),
        "statement 0 (Sid \"X\"): Condition: StringEquals: key \"coffer:ResourceKind\" has an "
        "empty value list"),
    BAD(DOC(COND("'StringEquals':'model'")),
        "statement 0 (Sid \"X\"): Condition: \"StringEquals\" must map condition keys to values"),
    BAD(DOC(COND("'StringEquals':{}")), "statement 0 (Sid \"X\"): Condition: must not be empty"),
    BAD(DOC(ST(",'Condition':[]")), "statement 0 (Sid \"X\"): Condition: must be an object"),
    BAD(DOC(COND("'StringEquals':{'coffer:ResourceTag/o':'${coffer:nope}'}")),
        "statement 0 (Sid \"X\"): Condition: StringEquals: coffer:ResourceTag/o: unknown policy "
        "variable \"${coffer:nope}\""),
    BAD(DOC(ST("") ",{'Sid':'Y','Effect':'Allow','Action':'artifact:Read','Resource':'*',"
                   "'Condition':{'StringEq':{'a':'b'}}}"),
        "statement 1 (Sid \"Y\"): Condition: unknown operator \"StringEq\""),
    BAD(DOC(ST("") ",{'Effect':'Allow','Action':'artifact:Read','Resource':'*',"
                   "'Condition':{'StringEq':{'a':'b'}}}"),
        "statement 1: Condition: unknown operator \"StringEq\""),
};

static char *unquote(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    for (char *p = d; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    return d;
}

static void test_validator_messages(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
        const struct vcase *v = &vcases[i];
        char *doc = unquote(v->doc);
        char err[AUTHZ_ERRBUF] = "unset";
        enum err e = authz_policy_validate(doc, strlen(doc), v->global, err, sizeof(err));
        if (v->err == NULL) {
            if (e != ERR_OK) {
                print_error("line %d: expected valid, got \"%s\"\n", v->line, err);
                failures++;
            }
        } else if (strcmp(v->err, JSONERR) == 0) {
            if (e != ERR_INVALID || strncmp(err, "invalid JSON at line 1", 22) != 0) {
                print_error("line %d: expected a JSON error, got \"%s\"\n", v->line, err);
                failures++;
            }
        } else if (e != ERR_INVALID || strcmp(err, v->err) != 0) {
            print_error("line %d: expected \"%s\", got %d \"%s\"\n", v->line, v->err, e, err);
            failures++;
        }
        free(doc);
    }
    assert_int_equal(failures, 0);
}

/* Limits: document size, statements, values, conditions. */
static void test_validator_limits(void **state)
{
    (void)state;
    char err[AUTHZ_ERRBUF];
    size_t cap = AUTHZ_MAX_DOC_BYTES + 4096;
    char *doc = malloc(cap);
    assert_non_null(doc);

    /* 100 statements are fine, 101 are not. */
    for (int n = 100; n <= 101; n++) {
        size_t off = (size_t)snprintf(doc, cap, "{\"Version\":\"2012-10-17\",\"Statement\":[");
        for (int i = 0; i < n; i++)
            off += (size_t)snprintf(doc + off, cap - off,
                                    "%s{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}",
                                    i ? "," : "");
        snprintf(doc + off, cap - off, "]}");
        enum err e = authz_policy_validate(doc, strlen(doc), false, err, sizeof(err));
        assert_int_equal(e, n == 100 ? ERR_OK : ERR_INVALID);
        if (n == 101)
            assert_string_equal(err, "Statement: more than 100 statements");
    }

    /* 101 resource values. */
    size_t off = (size_t)snprintf(
        doc, cap,
        "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":"
        "\"*\",\"Resource\":[");
    for (int i = 0; i < 101; i++)
        off += (size_t)snprintf(doc + off, cap - off, "%s\"p%d/*\"", i ? "," : "", i);
    snprintf(doc + off, cap - off, "]}}");
    assert_int_equal(authz_policy_validate(doc, strlen(doc), false, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "statement 0: Resource: more than 100 values");

    /* 51 conditions. */
    off = (size_t)snprintf(doc, cap,
                           "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\","
                           "\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{");
    for (int i = 0; i < 51; i++)
        off += (size_t)snprintf(doc + off, cap - off, "%s\"coffer:ResourceTag/k%d\":\"v\"",
                                i ? "," : "", i);
    snprintf(doc + off, cap - off, "}}}}");
    assert_int_equal(authz_policy_validate(doc, strlen(doc), false, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "statement 0: Condition: more than 50 conditions");

    /* A value longer than AUTHZ_MAX_STRING. */
    off = (size_t)snprintf(doc, cap,
                           "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\","
                           "\"Action\":\"*\",\"Resource\":\"");
    memset(doc + off, 'a', AUTHZ_MAX_STRING + 1);
    off += AUTHZ_MAX_STRING + 1;
    snprintf(doc + off, cap - off, "\"}}");
    assert_int_equal(authz_policy_validate(doc, strlen(doc), false, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "statement 0: Resource: value longer than 1024 bytes");

    /* Over 64 KiB: rejected before parsing. */
    memset(doc, ' ', AUTHZ_MAX_DOC_BYTES + 1);
    assert_int_equal(authz_policy_validate(doc, AUTHZ_MAX_DOC_BYTES + 1, false, err, sizeof(err)),
                     ERR_TOO_LARGE);
    assert_string_equal(err, "policy document larger than 65536 bytes");

    free(doc);

    /* Embedded NUL in a string: refused by the JSON parser already. */
    const char nul[] = "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\","
                       "\"Action\":\"*\",\"Resource\":\"a\\u0000b\"}}";
    assert_int_equal(authz_policy_validate(nul, strlen(nul), false, err, sizeof(err)), ERR_INVALID);
    assert_int_equal(strncmp(err, "invalid JSON", 12), 0);

    /* A tiny error buffer is truncated, never overflowed. */
    char tiny[8];
    const char *bad = "{\"Version\":\"1\",\"Statement\":[]}";
    assert_int_equal(authz_policy_validate(bad, strlen(bad), false, tiny, sizeof(tiny)),
                     ERR_INVALID);
    assert_int_equal(strlen(tiny), 7);
}

/* Builder errors name the policy and reject bad names, principals and unknown roles. */
static void test_builder_errors(void **state)
{
    (void)state;
    char err[AUTHZ_ERRBUF];
    const char *ok = "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\","
                     "\"Action\":\"*\",\"Resource\":\"*\"}}";
    const char *bad = "{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\","
                      "\"Action\":\"x:y\",\"Resource\":\"*\"}}";
    struct authz_builder *b = authz_builder_new();
    assert_non_null(b);
    assert_int_equal(authz_builder_attach(b, "r", "pol", bad, strlen(bad), err, sizeof(err)),
                     ERR_INVALID);
    assert_string_equal(err, "policy \"pol\": statement 0: Action: unknown action \"x:y\"");
    assert_int_equal(authz_builder_attach(b, "bad role", "p", ok, strlen(ok), err, sizeof(err)),
                     ERR_INVALID);
    assert_int_equal(authz_builder_attach(b, "r", "p/q", ok, strlen(ok), err, sizeof(err)),
                     ERR_INVALID);
    assert_int_equal(authz_builder_add_global(b, "g", ok, strlen(ok), err, sizeof(err)),
                     ERR_INVALID);
    assert_int_equal(authz_builder_bind(b, "alice", "r", NULL, err, sizeof(err)), ERR_INVALID);
    assert_int_equal(authz_builder_bind(b, "role:x", "r", NULL, err, sizeof(err)), ERR_INVALID);
    assert_int_equal(authz_builder_bind(b, "user:", "r", NULL, err, sizeof(err)), ERR_INVALID);
    assert_int_equal(authz_builder_bind(b, "user:a", "r", "a b", err, sizeof(err)), ERR_INVALID);
    assert_int_equal(authz_builder_bind(b, "user:a", "nope", NULL, err, sizeof(err)), ERR_OK);
    struct authz_snapshot *s = (struct authz_snapshot *)1;
    assert_int_equal(authz_builder_build(b, &s, err, sizeof(err)), ERR_INVALID);
    assert_null(s);
    assert_string_equal(err, "binding of a: unknown role \"nope\"");

    assert_true(authz_name_valid("ml-engineer"));
    assert_false(authz_name_valid(""));
    assert_false(authz_name_valid("a b"));
    assert_true(authz_action_known("ARTIFACT:download"));
    assert_false(authz_action_known("artifact:*"));
    assert_int_equal(authz_sensitivity_level("Restricted"), 3);
    assert_int_equal(authz_sensitivity_level("secret"), -1);
    assert_string_equal(authz_sensitivity_name(0), "public");
    assert_null(authz_sensitivity_name(4));
    authz_builder_free(NULL);
    authz_builder_free(authz_builder_new());
}

/* ---- Value parsers ------------------------------------------------------------- */

static void test_parsers(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(az_parse_date("1970-01-01T00:00:00Z", 20, &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(az_parse_date("2000-02-29", 10, &t), 0);
    assert_int_equal(t, 951782400);
    assert_int_equal(az_parse_date("1900-02-29", 10, &t), -1);
    assert_int_equal(az_parse_date("2024-03-06T10:30:00+01:00", 25, &t), 0);
    assert_int_equal(t, 1709721000 - 3600);
    assert_int_equal(az_parse_date("2024-03-06T10:30:00-0130", 24, &t), 0);
    assert_int_equal(t, 1709721000 + 5400);
    assert_int_equal(az_parse_date("1969-12-31T23:59:59Z", 20, &t), 0);
    assert_int_equal(t, -1);
    assert_int_equal(az_parse_date("-86400", 6, &t), 0);
    assert_int_equal(t, -86400);
    assert_int_equal(az_parse_date("2024-13-01", 10, &t), -1);
    assert_int_equal(az_parse_date("2024-03-06X", 11, &t), -1);
    assert_int_equal(az_parse_date("2024-03-06T10:30:00Zjunk", 24, &t), -1);
    assert_int_equal(az_parse_date("2024-03-06T10", 13, &t), -1);
    assert_int_equal(az_parse_date("", 0, &t), -1);
    assert_int_equal(az_parse_date("12a", 3, &t), -1);

    double d;
    assert_int_equal(az_parse_number("-1.5e2", 6, &d), 0);
    assert_true(d == -150.0);
    assert_int_equal(az_parse_number("1e999", 5, &d), -1);
    assert_int_equal(az_parse_number(" 1", 2, &d), -1);
    assert_int_equal(az_parse_number("", 0, &d), -1);
    assert_int_equal(az_parse_number("nan", 3, &d), -1);

    struct az_cidr c;
    struct authz_ip ip;
    assert_int_equal(az_parse_cidr("10.0.0.0/8", 10, &c), 0);
    assert_int_equal(c.family, 4);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(az_parse_cidr("::/0", 4, &c), 0);
    assert_int_equal(az_parse_ip("2001:db8::1", 11, &ip), 0);
    assert_true(az_cidr_contains(&c, &ip));
    assert_int_equal(az_parse_cidr("10.0.0.0/8/8", 12, &c), -1);
    assert_int_equal(az_parse_cidr("10.0.0.0/-1", 11, &c), -1);
    assert_int_equal(az_parse_cidr("10.0.0.256", 10, &c), -1);
    assert_int_equal(az_parse_cidr("fe80::1%eth0", 12, &c), -1);
    assert_int_equal(az_parse_cidr("192.0.2.1/31", 12, &c), 0);
    assert_int_equal(az_parse_ip("192.0.2.0", 9, &ip), 0);
    assert_true(az_cidr_contains(&c, &ip));
    assert_int_equal(az_parse_ip("192.0.2.2", 9, &ip), 0);
    assert_false(az_cidr_contains(&c, &ip));

    assert_true(az_glob("a*b?c", 5, "a/x/bzc", 7, false));
    assert_false(az_glob("a*b?c", 5, "a/x/bc", 6, false));
    assert_true(az_glob("*", 1, "", 0, false));
    assert_true(az_glob("**a**", 5, "bab", 3, false));
    assert_true(az_glob("ARTIFACT:*", 10, "artifact:Read", 13, true));
    assert_false(az_glob("ARTIFACT:*", 10, "artifact:Read", 13, false));
}

/* ---- Built-in files ------------------------------------------------------------ */

/* The repository root, from this file's path (the compiler sees an absolute path). */
static void repo_path(char *out, size_t cap, const char *rel)
{
    const char *me = __FILE__;
    const char *cut = strstr(me, "/tests/unit/");
    if (cut == NULL && strncmp(me, "tests/unit/", 11) == 0) {
        snprintf(out, cap, "./%s", rel); /* compiled with a relative path from the root */
        return;
    }
    assert_non_null(cut);
    snprintf(out, cap, "%.*s/%s", (int)(cut - me), me, rel);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 17, n;
    char *buf = malloc(cap);
    assert_non_null(buf);
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_builtin_files_match(void **state)
{
    (void)state;
    size_t n;
    const struct authz_builtin *bi = authz_builtins(&n);
    assert_int_equal(n, 11);
    const char *roles[] = {"viewer",  "data-scientist", "ml-engineer", "deployer",
                           "auditor", "security-admin", "admin"};
    for (size_t r = 0; r < sizeof(roles) / sizeof(roles[0]); r++) {
        bool found = false;
        for (size_t i = 0; i < n; i++)
            found = found || (!bi[i].global && strcmp(bi[i].name, roles[r]) == 0);
        assert_true(found);
    }
    size_t globals = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096], rel[256];
        snprintf(rel, sizeof(rel), "policies/builtin/%s", bi[i].file);
        repo_path(path, sizeof(path), rel);
        char *text = read_all(path);
        if (text == NULL)
            fail_msg("cannot read %s", path);
        if (strcmp(text, bi[i].json) != 0)
            fail_msg("%s differs from the string in src/authz/builtin.c", path);
        free(text);
        char err[AUTHZ_ERRBUF];
        assert_int_equal(
            authz_policy_validate(bi[i].json, strlen(bi[i].json), bi[i].global, err, sizeof(err)),
            ERR_OK);
        /* Every grant carries a Sid, so explanations name it. */
        json_t *doc = json_loads(bi[i].json, 0, NULL);
        assert_non_null(doc);
        json_t *st;
        size_t k;
        json_array_foreach(json_object_get(doc, "Statement"), k, st)
        {
            assert_true(json_is_string(json_object_get(st, "Sid")));
        }
        json_decref(doc);
        globals += bi[i].global;
    }
    assert_int_equal(globals, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validator_messages),  cmocka_unit_test(test_validator_limits),
        cmocka_unit_test(test_builder_errors),      cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_builtin_files_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
