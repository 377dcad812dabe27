/*
 * authz: the policy engine. Parses and validates IAM-grammar policy
 * documents, compiles roles, bindings and global policies into an immutable
 * indexed snapshot, and decides requests against it.
 *
 * The engine is pure: it never touches storage. Everything a decision needs
 * arrives in a struct authz_request filled by the caller. A decision takes no
 * lock and performs no heap allocation; snapshots are reference counted and
 * swapped atomically (see authz_slot_*). The language and its limits are
 * documented in docs/POLICY.md.
 */
#ifndef COFFER_AUTHZ_AUTHZ_H
#define COFFER_AUTHZ_AUTHZ_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* ---- Limits (documented in docs/POLICY.md) ------------------------------ */

#define AUTHZ_MAX_DOC_BYTES 65536 /* a policy document, in bytes */
#define AUTHZ_MAX_STATEMENTS 100  /* statements per document */
#define AUTHZ_MAX_VALUES 100      /* entries in any one list */
#define AUTHZ_MAX_CONDITIONS 50   /* condition keys per statement (all operators) */
#define AUTHZ_MAX_STRING 1024     /* bytes in a resource pattern or condition value */
#define AUTHZ_NAME_MAX 128        /* bytes in a policy, role or principal name, Sid, tag key */
#define AUTHZ_SUBST_MAX 1024      /* bytes of a string after variable substitution */
#define AUTHZ_MAX_DECIDING 8      /* deciding statements recorded in a decision */
#define AUTHZ_ERRBUF 256          /* suggested size of error buffers */

/* ---- Request context ---------------------------------------------------- */

enum authz_principal_type {
    AUTHZ_PRINCIPAL_USER = 0,
    AUTHZ_PRINCIPAL_SERVICE,
    AUTHZ_PRINCIPAL_LINK,
};

/* An IP address: family 0 means "not known" (coffer:SourceIp is missing). */
struct authz_ip {
    int family;       /* 0, 4 or 6 */
    uint8_t addr[16]; /* network order; 4 bytes used for IPv4 */
};

/* A key=value pair (principal attribute or resource tag). */
struct authz_kv {
    const char *key;
    const char *value;
};

/*
 * Everything a decision may look at. The caller owns every pointer; nothing
 * is copied and nothing needs to outlive the authz_decide() call. Fields
 * documented as optional may be NULL / 0 / -1, which makes the matching
 * condition key "missing" (see docs/POLICY.md for each key).
 */
struct authz_request {
    /* Who. */
    enum authz_principal_type principal_type;
    const char *principal_name; /* "alice" (no "user:" prefix); required */
    const char *const *groups;  /* group names, no "group:" prefix */
    size_t n_groups;
    const struct authz_kv *principal_tags; /* principal attributes */
    size_t n_principal_tags;
    int clearance; /* 0..3 (public..restricted) */

    /* How. */
    const char *auth_method; /* "password|token|oidc|mtls|sigv4|link" or NULL */
    bool mfa_present;
    int64_t mfa_age;           /* seconds since MFA, -1 if unknown */
    struct authz_ip source_ip; /* family 0: unknown */
    bool secure_transport;

    /* When. coffer:CurrentHour and coffer:CurrentDayOfWeek are computed from
     * now + tz_offset (seconds east of UTC); the server computes the offset
     * of its configured time zone for "now" (e.g. tm_gmtoff of localtime_r). */
    int64_t now; /* Unix epoch seconds */
    int32_t tz_offset;

    /* What. */
    const char *action;        /* "artifact:Download" (any case); required */
    const char *resource;      /* "PROJECT/ENV/NAME[@N]" or "*"; required */
    const char *resource_kind; /* "model", ... or NULL */
    int resource_sensitivity;  /* effective level 0..3, or -1 if not applicable */
    const struct authz_kv *resource_tags;
    size_t n_resource_tags;
    const char *project;     /* NULL: derived from resource */
    const char *environment; /* NULL: derived from resource */
    uint64_t version;        /* 0: derived from resource "@N", else missing */
};

/* ---- Decision ----------------------------------------------------------- */

enum authz_effect { AUTHZ_ALLOW = 0, AUTHZ_DENY };

enum authz_reason {
    AUTHZ_REASON_EXPLICIT_DENY = 0, /* a Deny statement matched */
    AUTHZ_REASON_ALLOW,             /* an Allow statement matched and no Deny did */
    AUTHZ_REASON_IMPLICIT_DENY,     /* nothing matched (or the action is unknown) */
    AUTHZ_REASON_CLEARANCE,         /* mandatory clearance rule */
};

/* One statement that decided. Strings are copied, so a decision stays valid
 * after the snapshot is released (for the audit log). */
struct authz_stmt_ref {
    char policy[AUTHZ_NAME_MAX + 1]; /* policy name */
    char role[AUTHZ_NAME_MAX + 1];   /* role name; "" for a global policy */
    char via[AUTHZ_NAME_MAX + 16];   /* binding principal, e.g. "group:ml"; "" for global */
    char sid[AUTHZ_NAME_MAX + 1];    /* "" when the statement has no Sid */
    unsigned index;                  /* statement index in its document, from 0 */
    bool deny;
};

struct authz_decision {
    enum authz_effect effect;
    enum authz_reason reason;
    size_t n_deciding; /* entries used in deciding[] */
    size_t n_matched;  /* statements of the deciding effect that matched (may exceed 8) */
    struct authz_stmt_ref deciding[AUTHZ_MAX_DECIDING];
    bool unknown_action;       /* the action is not one of PRODUCT.md section 2 */
    int clearance;             /* copied from the request, for CLEARANCE explanations */
    int sensitivity;           /* copied from the request */
    size_t statements_visited; /* statements examined (cost; index effectiveness) */
};

/* ---- Policies ----------------------------------------------------------- */

/*
 * Validates a policy document (len bytes, need not be NUL-terminated).
 * global: the document is a global policy (Principal required) rather than
 * a role policy (Principal forbidden). On failure returns ERR_INVALID (or
 * ERR_TOO_LARGE for a document over AUTHZ_MAX_DOC_BYTES) and writes a
 * one-line message naming the statement and element into err (cap bytes).
 * Allocates only temporarily.
 */
enum err authz_policy_validate(const char *json, size_t len, bool global, char *err, size_t cap);

/* 1 if name is a valid policy or role name ([A-Za-z0-9._-]{1,128}), else 0. */
int authz_name_valid(const char *name);

/* 1 if action names a known action (case-insensitive, no wildcards), else 0. */
int authz_action_known(const char *action);

/* ---- Snapshot builder --------------------------------------------------- */

struct authz_builder;
struct authz_snapshot;

/* New empty builder; NULL on allocation failure. Free with authz_builder_free
 * unless it was passed to authz_builder_build. */
struct authz_builder *authz_builder_new(void);

/* Frees a builder that was not built. NULL is a no-op. */
void authz_builder_free(struct authz_builder *b);

/* Declares a role (a role may have no policies). Idempotent. */
enum err authz_builder_add_role(struct authz_builder *b, const char *role, char *err, size_t cap);

/* Parses a role policy and attaches it to role (declared if needed). The
 * text is copied. Errors as authz_policy_validate, prefixed by the policy name. */
enum err authz_builder_attach(struct authz_builder *b, const char *role, const char *policy_name,
                              const char *json, size_t len, char *err, size_t cap);

/* Parses a global policy (with Principal) and adds it. */
enum err authz_builder_add_global(struct authz_builder *b, const char *policy_name,
                                  const char *json, size_t len, char *err, size_t cap);

/*
 * Binds role to principal ("user:NAME", "group:NAME", "service:NAME" or
 * "link:ID"), optionally narrowed by scope, a resource pattern: then every
 * statement of the role also requires the resource to match the scope. The
 * role must exist when the snapshot is built.
 */
enum err authz_builder_bind(struct authz_builder *b, const char *principal, const char *role,
                            const char *scope, char *err, size_t cap);

/* Adds the built-in roles and global guardrails (authz_builtins()). */
enum err authz_builder_add_builtins(struct authz_builder *b, char *err, size_t cap);

/*
 * Compiles and indexes everything into an immutable snapshot with one
 * reference owned by the caller (release with authz_snapshot_release).
 * The builder is consumed and freed whatever the result.
 */
enum err authz_builder_build(struct authz_builder *b, struct authz_snapshot **out, char *err,
                             size_t cap);

/* Takes one more reference. Returns s. Thread-safe. */
struct authz_snapshot *authz_snapshot_acquire(struct authz_snapshot *s);

/* Drops one reference; frees the snapshot with the last one. NULL is a no-op. */
void authz_snapshot_release(struct authz_snapshot *s);

/* Number of compiled statements (roles and globals) in s. */
size_t authz_snapshot_statement_count(const struct authz_snapshot *s);

/* ---- Current snapshot (atomic swap) ------------------------------------- */

/*
 * A slot holding the current snapshot. Readers call authz_slot_acquire (no
 * lock: two atomic increments), decide, then release. A writer installs a
 * new snapshot with authz_slot_set, which waits until no reader is between
 * loading the old pointer and taking its reference, then drops the slot's
 * reference; readers that still hold the old snapshot keep it alive.
 */
struct authz_slot {
    _Atomic(struct authz_snapshot *) current;
    atomic_uint acquiring;
    pthread_mutex_t set_lock; /* serialises writers only */
};

#define AUTHZ_SLOT_INIT                                                                            \
    {                                                                                              \
        NULL, 0, PTHREAD_MUTEX_INITIALIZER                                                         \
    }

/* The process-wide slot used by the server. */
extern struct authz_slot authz_global_slot;

/* Returns the current snapshot with a reference (release it), or NULL. */
struct authz_snapshot *authz_slot_acquire(struct authz_slot *slot);

/* Installs s (the slot takes over the caller's reference; s may be NULL) and
 * releases the previous snapshot. */
void authz_slot_set(struct authz_slot *slot, struct authz_snapshot *s);

/* ---- Decisions ---------------------------------------------------------- */

/*
 * Decides req against s and fills out (always, even for invalid input:
 * a NULL snapshot, unknown action or missing required field is an implicit
 * deny). Order: mandatory clearance rule, then explicit Deny, then Allow,
 * then implicit deny. No lock, no heap allocation; s must be held.
 */
void authz_decide(const struct authz_snapshot *s, const struct authz_request *req,
                  struct authz_decision *out);

/* Short names: "allow"/"deny" and "explicit_deny"/"allow"/"implicit_deny"/"clearance". */
const char *authz_effect_name(enum authz_effect e);
const char *authz_reason_name(enum authz_reason r);

/* Sensitivity level name ("public".."restricted") or NULL if out of range;
 * and the reverse (-1 if unknown; case-insensitive). */
const char *authz_sensitivity_name(int level);
int authz_sensitivity_level(const char *name);

/*
 * One line, e.g.
 *   deny (explicit_deny): global policy "prod-writes-need-mfa" statement 0 (Sid "X")
 * Writes at most cap bytes including the NUL; returns the length it needed
 * (like snprintf), so a result >= cap means truncation.
 */
size_t authz_decision_format(const struct authz_decision *d, char *buf, size_t cap);

/* The decision as a JSON object (new reference; caller json_decref). NULL on OOM. */
json_t *authz_decision_to_json(const struct authz_decision *d);

/* ---- Built-in policies -------------------------------------------------- */

struct authz_builtin {
    const char *name; /* role name, or global policy name */
    bool global;      /* global guardrail rather than role policy */
    const char *file; /* file name in policies/builtin/ */
    const char *json; /* document text, identical to that file */
};

/* The built-in documents (static storage); *n receives the count. */
const struct authz_builtin *authz_builtins(size_t *n);

#endif
