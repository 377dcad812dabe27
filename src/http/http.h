/*
 * http: the HTTPS front of the server. It validates every request in a
 * fixed order (method, path, content type, length) before any body is read,
 * authenticates the caller, and hands the request to the route's handlers.
 */
#ifndef COFFER_HTTP_HTTP_H
#define COFFER_HTTP_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "app/app.h"
#include "audit/audit.h"
#include "util/err.h"

#define HTTP_PATH_MAX 2048
#define HTTP_ERRMSG_MAX 256
#define HTTP_QUERY_MAX_ARGS 64

enum http_body { BODY_NONE, BODY_JSON, BODY_STREAM };

/* The authenticated caller of a request. */
struct principal {
    int64_t user_id;
    char type[16];        /* "user", "service", "link" */
    char name[80];        /* "alice" */
    char auth_method[16]; /* "password", "token", "oidc", "mtls", "link" */
    int clearance;        /* 0..3 */
    int is_admin;
    int mfa;
    int64_t mfa_at;
    json_t *attrs;  /* owned: object of principal attributes */
    json_t *groups; /* owned: array of group names */
    uint8_t token_hash[32];
    /* API tokens (auth_method "token"): the token's permissions are
     * intersected with those of its owner, decided as user:owner. */
    int64_t token_id;     /* 0 unless authenticated by an API token; minus the binding id
                           * for a client certificate (authn/mtls.h) */
    char owner[80];       /* owner's user name, "" unless token_id != 0 */
    json_t *owner_groups; /* owned: the owner's groups */
};

struct request;

struct route {
    const char *method;
    const char *prefix; /* path prefix, e.g. "/v1/objects/" */
    int exact;          /* 1: the path must equal prefix */
    enum http_body body;
    int auth; /* 1: a valid credential is required */
    /* Called once the request line and headers are validated (and the caller
     * authenticated): streaming routes authorise and set up here. May be NULL. */
    enum err (*start)(struct request *r);
    /* Streaming routes: called for each chunk of the body. */
    enum err (*data)(struct request *r, const uint8_t *buf, size_t len);
    /* Produces the response (r->json / r->response). */
    enum err (*finish)(struct request *r);
    /* Frees route state; called exactly once, also when the client goes away. */
    void (*cleanup)(struct request *r);
    /* 1: the request changes nothing; its only effect is the response. The
     * audit events its handler records are then made durable while the
     * response waits (the connection is suspended, not a thread), and the
     * response is sent only once they are. 0: every event is durable before
     * the handler goes on. */
    int read_only;
};

struct request {
    struct app *app;
    struct MHD_Connection *conn;
    const struct route *route;
    char method[8];
    char path[HTTP_PATH_MAX + 1];
    const char *param; /* the part of path after route->prefix */
    char request_id[33];
    char source_ip[64];
    char user_agent[128];
    int secure_transport;
    int authenticated;
    struct principal who;
    uint64_t content_length; /* UINT64_MAX when unknown (chunked) */
    uint64_t body_bytes;
    /* JSON bodies */
    char *body;
    size_t body_len;
    json_t *body_json;
    /* result */
    int status;
    json_t *json;    /* response body, owned */
    char *json_body; /* or that body already serialised, owned */
    size_t json_body_len;
    struct MHD_Response *response; /* or a ready response (streaming) */
    enum err err;
    char errmsg[HTTP_ERRMSG_MAX];
    int responded;
    int finished;    /* the handler ran; the answer is not queued yet */
    int body_failed; /* an error arose while the body arrived */
    int tls_corked;  /* the answer waits in the TLS session until completion */
    char allow[48];  /* methods allowed on the path, for 405 */
    uint64_t bytes_out;
    void *state;          /* route-private */
    int64_t now_override; /* policy explain: decide as of this time (0: now) */
    int64_t retry_after;  /* seconds for Retry-After on a 429 (0: 60) */
    int64_t started_us;   /* CLOCK_MONOTONIC at arrival, microseconds (metrics) */
    /* Audit events queued but perhaps not yet durable (read-only routes):
     * the response is held until event audit_index is. */
    int audit_defer;   /* api_record may queue instead of waiting */
    int audit_hold;    /* events are queued; audit_index is the last */
    int audit_waiting; /* suspended until audit_index is durable */
    uint64_t audit_index;
    struct audit_waiter audit_waiter;
};

/* Binds and listens on app's address (as root when the port needs it);
 * sets app->cfg.listen_port to the port bound. */
enum err http_listen(struct app *app, int *fd);
/* Starts serving app on the socket from http_listen (which the daemon then
 * owns; closed on failure too). */
enum err http_start(struct app *app, int fd, struct MHD_Daemon **out);

/* The GnuTLS priority string the HTTPS daemon uses (static storage). */
const char *http_tls_priorities(void);
/* Releases every answer held for the audit log, then stops the daemon. */
void http_stop(struct app *app, struct MHD_Daemon *d);

/* Records an error for the response, with a printf-style message (one line). */
enum err http_fail(struct request *r, enum err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns the single value of query argument name, NULL if absent. Sets *dup
 * when the argument appears more than once. */
const char *http_query(struct request *r, const char *name, int *dup);

/* Calls fn for every value of a repeated query argument. */
void http_query_each(struct request *r, const char *name, void (*fn)(const char *value, void *ctx),
                     void *ctx);

/* The route table, terminated by a row with method NULL. */
extern const struct route api_routes[];

#endif
