#include "authn/session.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "meta/access.h"
#include "meta/meta.h"
#include "util/secure.h"
#include "util/str.h"

/* SHA-256 fetched once: SHA256() looks the algorithm up again on every
 * call, and this hash runs on every authenticated request. */
static EVP_MD *session_sha256;
static pthread_once_t session_sha256_once = PTHREAD_ONCE_INIT;

static void session_sha256_fetch(void)
{
    session_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void session_token_hash(const char *token, uint8_t out[32])
{
    pthread_once(&session_sha256_once, session_sha256_fetch);
    unsigned int n = 0;
    if (session_sha256 == NULL ||
        EVP_Digest(token, strlen(token), out, &n, session_sha256, NULL) != 1 || n != 32)
        SHA256((const unsigned char *)token, strlen(token), out);
}

enum err session_issue(struct app *app, int64_t user_id, int64_t lifetime, int mfa,
                       char token_out[SESSION_TOKEN_LEN + 1], int64_t *expires_at)
{
    uint8_t raw[32], hash[32];
    if (secure_random(raw, sizeof(raw)) != 0)
        return ERR_INTERNAL;
    memcpy(token_out, SESSION_TOKEN_PREFIX, 4);
    b64url_encode(raw, sizeof(raw), token_out + 4, SESSION_TOKEN_LEN + 1 - 4);
    secure_wipe(raw, sizeof(raw));
    session_token_hash(token_out, hash);
    *expires_at = (int64_t)time(NULL) + lifetime;
    return meta_session_create(app->meta, hash, user_id, *expires_at, mfa);
}

enum err session_authenticate(struct request *r, const char *token)
{
    if (strlen(token) != SESSION_TOKEN_LEN || memcmp(token, SESSION_TOKEN_PREFIX, 4) != 0)
        return ERR_UNAUTHENTICATED;
    uint8_t hash[32];
    session_token_hash(token, hash);
    struct meta_session s;
    struct meta_user u;
    json_t *groups = NULL;
    enum err e = meta_session_principal(r->app->meta, hash, (int64_t)time(NULL), &s, &u, &groups);
    if (e != ERR_OK)
        return e == ERR_IO ? ERR_UNAVAILABLE : ERR_UNAUTHENTICATED;
    if (u.disabled) {
        meta_user_clear(&u);
        json_decref(groups);
        return ERR_UNAUTHENTICATED;
    }
    struct principal *p = &r->who;
    p->user_id = u.id;
    str_copy(p->type, sizeof(p->type), "user");
    str_copy(p->name, sizeof(p->name), u.name);
    str_copy(p->auth_method, sizeof(p->auth_method), "password");
    p->clearance = u.clearance;
    p->is_admin = u.is_admin;
    p->mfa = s.mfa;
    p->mfa_at = s.mfa_at;
    p->attrs = json_incref(u.attrs);
    p->groups = groups;
    memcpy(p->token_hash, hash, sizeof(hash));
    meta_user_clear(&u);
    r->authenticated = 1;
    return ERR_OK;
}

enum err session_revoke_current(struct request *r)
{
    return meta_session_revoke(r->app->meta, r->who.token_hash);
}
