/*
 * apitoken: API tokens of service accounts. A token is "cfr_" and 43
 * base64url characters (256 random bits); the fixed prefix lets secret
 * scanners recognise a leaked one. Only its SHA-256 is stored. A token acts
 * as the principal service:NAME, bound to the roles named at creation, and
 * every decision is also taken as its owner: the token can do only what
 * both may (api/gate.c). Expiry is mandatory; revocation takes effect on
 * the next request.
 */
#ifndef COFFER_AUTHN_APITOKEN_H
#define COFFER_AUTHN_APITOKEN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

#define APITOKEN_PREFIX "cfr_"
#define APITOKEN_LEN 47 /* prefix + 43 */
#define APITOKEN_MAX_LIFETIME_DEFAULT (90 * 86400)
#define APITOKEN_MAX_ROLES 16

/* Creates a random token, stores its hash for owner_id, writes it (NUL-
 * terminated) to token_out and its id to *id. The caller wipes token_out. */
enum err apitoken_issue(struct app *app, const char *name, int64_t owner_id, json_t *roles,
                        const char *scope, int64_t expires_at, char token_out[APITOKEN_LEN + 1],
                        int64_t *id);

/* Authenticates a bearer API token and fills r->who as service:NAME with
 * its owner's clearance and attributes, and the owner's name and groups for
 * the second decision. ERR_UNAUTHENTICATED for an unknown, expired or
 * revoked token or a disabled owner; ERR_UNAVAILABLE when the store fails. */
enum err apitoken_authenticate(struct request *r, const char *token);

/* Fills r->who as the service account service:NAME acting for its owner,
 * the user owner_id, for the credential token_id authenticated by method
 * ("token", "mtls"): the owner's clearance and attributes, the owner's name,
 * the groups of both, and token_hash (32 bytes) unless it is NULL.
 * ERR_UNAUTHENTICATED when the owner is gone or disabled, ERR_UNAVAILABLE
 * when the store fails. Does not mark the request authenticated. */
enum err apitoken_principal(struct request *r, int64_t owner_id, const char *name,
                            const char *method, int64_t token_id, const uint8_t *token_hash);

/* The longest lifetime a new token may have, in seconds: "tokens":
 * {"max_lifetime_days": N} in DATA/authn.json, else 90 days. */
int64_t apitoken_max_lifetime(const struct app *app);

/* Token names: [a-z0-9][a-z0-9._-]{0,63}. 1 if valid. */
int apitoken_name_valid(const char *name);

#endif
