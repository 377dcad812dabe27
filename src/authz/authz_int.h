/*
 * authz internals shared by the parser (policy.c), the compiler
 * (snapshot.c), the evaluator (eval.c) and helpers (match.c). Not for use
 * outside src/authz/.
 */
#ifndef COFFER_AUTHZ_AUTHZ_INT_H
#define COFFER_AUTHZ_AUTHZ_INT_H

#include "authz/authz.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Arena: every compiled object of a snapshot lives in one arena ------- */

struct az_chunk;
struct az_arena {
    struct az_chunk *head;
};

/* Zeroed, max-aligned memory from the arena; NULL on OOM or size overflow. */
void *az_alloc(struct az_arena *a, size_t n);
/* Array of count elements of size each, zeroed; NULL on OOM or overflow. */
void *az_calloc(struct az_arena *a, size_t count, size_t size);
/* NUL-terminated copy of n bytes of s; NULL on OOM. */
char *az_strndup(struct az_arena *a, const char *s, size_t n);
void az_arena_free(struct az_arena *a);

/* ---- Actions ------------------------------------------------------------ */

#define AZ_N_ACTIONS 16
extern const char *const az_action_names[AZ_N_ACTIONS];
/* Index of a known action (case-insensitive, exact), or -1. */
int az_action_id(const char *s, size_t n);
/* Actions that are reads covered by the mandatory clearance rule. */
bool az_action_is_clearance_read(int id);

/* ---- Condition model ----------------------------------------------------- */

enum az_key {
    AZ_K_SOURCE_IP = 0,
    AZ_K_CURRENT_TIME,
    AZ_K_EPOCH_TIME,
    AZ_K_CURRENT_HOUR,
    AZ_K_DAY_OF_WEEK,
    AZ_K_SECURE_TRANSPORT,
    AZ_K_MFA_PRESENT,
    AZ_K_MFA_AGE,
    AZ_K_USERNAME,
    AZ_K_PRINCIPAL_TYPE,
    AZ_K_PRINCIPAL_TAG,
    AZ_K_PRINCIPAL_CLEARANCE,
    AZ_K_GROUPS,
    AZ_K_AUTH_METHOD,
    AZ_K_RES_SENSITIVITY,
    AZ_K_RES_SENS_LEVEL,
    AZ_K_RES_KIND,
    AZ_K_RES_TAG,
    AZ_K_PROJECT,
    AZ_K_ENVIRONMENT,
    AZ_K_VERSION,
};

/* Operator families; a key accepts a set of families (bit 1 << family). */
enum az_family { AZ_F_STRING = 0, AZ_F_NUMERIC, AZ_F_DATE, AZ_F_BOOL, AZ_F_IP, AZ_F_NULL };

enum az_op {
    AZ_OP_STR_EQ = 0,
    AZ_OP_STR_EQ_IC,
    AZ_OP_STR_LIKE,
    AZ_OP_NUM_EQ,
    AZ_OP_NUM_LT,
    AZ_OP_NUM_LE,
    AZ_OP_NUM_GT,
    AZ_OP_NUM_GE,
    AZ_OP_DATE_EQ,
    AZ_OP_DATE_LT,
    AZ_OP_DATE_LE,
    AZ_OP_DATE_GT,
    AZ_OP_DATE_GE,
    AZ_OP_BOOL,
    AZ_OP_IP,
    AZ_OP_NULL,
};

enum az_set { AZ_SET_NONE = 0, AZ_SET_ANY, AZ_SET_ALL };

struct az_cidr {
    int family; /* 4 or 6 */
    uint8_t addr[16];
    unsigned prefix;
};

/* One policy value of a condition. When has_vars, text is a template that
 * is substituted and parsed at decision time; otherwise the typed field of
 * the operator's family is pre-parsed. */
struct az_value {
    const char *text;
    size_t len;
    bool has_vars;
    double num;
    int64_t time;
    bool b;
    struct az_cidr cidr;
};

struct az_cond {
    enum az_op op;
    bool negated;
    bool if_exists;
    enum az_set set;
    enum az_key key;
    const char *tag; /* tag key for PrincipalTag/ResourceTag */
    size_t tag_len;
    struct az_value *vals;
    size_t n_vals;
};

struct az_pattern {
    const char *text;
    size_t len;
    bool has_vars;
};

enum az_ptype { AZ_P_USER = 0, AZ_P_SERVICE, AZ_P_LINK, AZ_P_GROUP, AZ_P_ROLE };

struct az_principal {
    enum az_ptype type;
    const char *name;
};

struct az_policy;

struct az_stmt {
    const struct az_policy *policy;
    const char *sid; /* NULL if none */
    unsigned index;
    bool deny;
    bool vars;        /* Version 2012-10-17: policy variables are substituted */
    uint32_t actions; /* bit per action id, NotAction already complemented */
    bool not_resource;
    struct az_pattern *res;
    size_t n_res;
    struct az_cond *conds;
    size_t n_conds;
    bool any_principal; /* global policies: Principal "*" */
    struct az_principal *principals;
    size_t n_principals;
};

struct az_policy {
    const char *name;
    bool global;
    struct az_stmt *stmts;
    size_t n_stmts;
};

/* Parses and validates a document into a, naming errors "statement N ...".
 * On failure returns ERR_INVALID/ERR_TOO_LARGE with a message in err. */
enum err az_policy_parse(struct az_arena *a, const char *name, const char *json, size_t len,
                         bool global, struct az_policy **out, char *err, size_t cap);

/* Parses a principal "user:x" etc.; roles allowed only if allow_role. 0 ok. */
int az_principal_parse(const char *s, size_t n, bool allow_role, enum az_ptype *type,
                       const char **name, size_t *name_len);

/* ---- Compiled snapshot --------------------------------------------------- */

struct az_entry {
    const char *key; /* literal first path segment */
    size_t key_len;
    const struct az_stmt *st;
};

/* Candidate statements for one action: statements whose resources all start
 * with a literal first segment are in by_key (sorted by key), the rest in
 * generic. */
struct az_bucket {
    const struct az_stmt **generic;
    size_t n_generic;
    struct az_entry *by_key;
    size_t n_by_key;
};

struct az_role {
    const char *name;
    struct az_bucket buckets[AZ_N_ACTIONS];
};

struct az_binding {
    enum az_ptype type;
    const char *name;
    size_t name_len;
    const struct az_role *role;
    const char *scope; /* NULL: unscoped */
    size_t scope_len;
};

struct authz_snapshot {
    atomic_uint refs;
    struct az_arena arena;
    struct az_role *roles;
    size_t n_roles;
    struct az_binding *bindings; /* sorted by (type, name) */
    size_t n_bindings;
    struct az_bucket globals[AZ_N_ACTIONS];
    size_t n_statements;
};

/* ---- Matching helpers (match.c) ------------------------------------------ */

/* Glob match: '*' any run (incl. '/'), '?' one byte. Case-sensitive unless icase. */
bool az_glob(const char *p, size_t pn, const char *s, size_t sn, bool icase);
/* ASCII case-insensitive equality of two counted strings. */
bool az_ieq(const char *a, size_t an, const char *b, size_t bn);
/* Strict number: optional '-', digits, optional fraction/exponent. 0 ok. */
int az_parse_number(const char *s, size_t n, double *out);
/* ISO 8601 date/date-time (Z or +hh:mm offset, optional fraction) or epoch
 * seconds, to epoch seconds. 0 ok. */
int az_parse_date(const char *s, size_t n, int64_t *out);
/* "true"/"false", case-insensitive. 0 ok. */
int az_parse_bool(const char *s, size_t n, bool *out);
/* An address or CIDR of either family (an address is a full-length prefix). */
int az_parse_cidr(const char *s, size_t n, struct az_cidr *out);
/* An address of either family. */
int az_parse_ip(const char *s, size_t n, struct authz_ip *out);
bool az_cidr_contains(const struct az_cidr *c, const struct authz_ip *ip);

/* ---- Variable substitution (eval.c) ------------------------------------ */

enum az_tri { AZ_NO = 0, AZ_YES = 1, AZ_INDET = 2 };

/* Checks a template's ${...} references at parse time. 0 ok; -1 with msg. */
int az_vars_check(const char *s, size_t n, bool *has_vars, char *msg, size_t cap);

#endif
