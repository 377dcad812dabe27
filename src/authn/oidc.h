/*
 * oidc: bearer JWTs from trusted OpenID Connect / OAuth 2 issuers.
 *
 * Issuers are stored in the metadata store (meta_oidc_*), each a JSON object:
 *   issuer        required; "iss" must equal it exactly
 *   audience      required; "aud" must contain it
 *   jwks_uri      https URL of the key set (http only to 127.0.0.0/8,
 *                 localhost or [::1]) -- or --
 *   jwks_file     path of a JWKS file on the server
 *   user_claim    claim naming the principal (default "sub")
 *   groups_claim  claim listing groups (default "groups")
 *   group_map     {"IdP group": "coffer group"}; unmapped groups are ignored
 *   mfa_amr       amr values that count as MFA (default none)
 *   principal_type "user" (default) or "service"
 *   clearance     clearance of principals without a local user (default "internal")
 *   leeway_seconds clock skew allowed (default 60, at most 600)
 *   jwks_ttl_seconds how long fetched keys are used (default 300)
 *   ca_file       CA bundle for an https jwks_uri with a private CA (optional)
 *
 * Keys are cached per issuer for jwks_ttl_seconds; a token naming an
 * unknown kid triggers one refresh at most every OIDC_REFRESH_MIN seconds.
 */
#ifndef COFFER_AUTHN_OIDC_H
#define COFFER_AUTHN_OIDC_H

#include <jansson.h>
#include <stddef.h>

#include "http/http.h"

#define OIDC_NAME_MAX 64
#define OIDC_REFRESH_MIN 30
#define OIDC_FETCH_TIMEOUT 5
#define OIDC_TTL_DEFAULT 300
#define OIDC_MAX_ISSUERS 32

/*
 * Checks an issuer configuration (fields above; unknown fields refused) and
 * fills in defaults. Returns ERR_OK or ERR_INVALID with a reason in why.
 */
enum err oidc_config_validate(json_t *cfg, char *why, size_t why_len);

/*
 * Authenticates a bearer JWT: selects the configured issuer by "iss",
 * verifies the token (authn/jwt.h) against the issuer's keys and fills
 * r->who (auth_method "oidc"; MFA when an amr value is in mfa_amr, at the
 * token's auth_time or iat). A principal that is also a local user takes
 * the user's clearance and attributes and is refused when disabled.
 * ERR_UNAUTHENTICATED for any rejected token, ERR_UNAVAILABLE when the
 * store fails.
 */
enum err oidc_authenticate(struct request *r, const char *token);

/* Forgets cached keys (after an issuer is changed or removed). */
void oidc_cache_clear(void);

#endif
