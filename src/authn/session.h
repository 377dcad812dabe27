/*
 * session: opaque bearer tokens issued at login. A token is "cfs_" and 43
 * base64url characters (256 random bits); only its SHA-256 is stored, so a
 * copy of the database does not yield usable credentials.
 */
#ifndef COFFER_AUTHN_SESSION_H
#define COFFER_AUTHN_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

#define SESSION_TOKEN_PREFIX "cfs_"
#define SESSION_TOKEN_LEN 47 /* prefix + 43 */

/* Issues a session for user_id valid for lifetime seconds; writes the token
 * (NUL-terminated, SESSION_TOKEN_LEN chars) into token_out. */
enum err session_issue(struct app *app, int64_t user_id, int64_t lifetime, int mfa,
                       char token_out[SESSION_TOKEN_LEN + 1], int64_t *expires_at);

/* Authenticates the bearer token of a request and fills r->who. */
enum err session_authenticate(struct request *r, const char *token);

/* Revokes the session the request was made with. */
enum err session_revoke_current(struct request *r);

/* SHA-256 of a token. */
void session_token_hash(const char *token, uint8_t out[32]);

#endif
