/*
 * OIDC bearer tokens: issuer selection, JWKS fetching and caching,
 * principal mapping.
 */
#include "authn/oidc.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "authn/jwt.h"
#include "authz/authz.h"
#include "meta/access.h"
#include "meta/authn_store.h"
#include "meta/meta.h"
#include "authn/session.h"
#include "util/log.h"
#include "util/secure.h"

#define OIDC_PRINCIPAL_MAX 64

struct oidc_keys {
    struct jwks *jwks;
    int refs;
};

struct oidc_cache_entry {
    char name[OIDC_NAME_MAX + 1];
    char *source; /* jwks_uri or jwks_file the keys came from */
    struct oidc_keys *keys;
    int64_t fetched_at;
    int64_t attempted_at;
};

static pthread_mutex_t oidc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct oidc_cache_entry oidc_cache[OIDC_MAX_ISSUERS];

/* ------------------------------------------------------------ config */

static int oidc_is_loopback_http(const char *uri)
{
    static const char *const ok[] = {"http://127.", "http://localhost/",
                                     "http://localhost:", "http://[::1]/", "http://[::1]:"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (strncmp(uri, ok[i], strlen(ok[i])) == 0)
            return 1;
    }
    return 0;
}

static int oidc_string_list(json_t *v, size_t max)
{
    if (!json_is_array(v) || json_array_size(v) > max)
        return 0;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x)
    {
        if (!json_is_string(x) || json_string_length(x) == 0 || json_string_length(x) > 256)
            return 0;
    }
    return 1;
}

static int oidc_set_default(json_t *cfg, const char *key, json_t *value)
{
    if (json_object_get(cfg, key) == NULL)
        return json_object_set_new(cfg, key, value);
    json_decref(value);
    return 0;
}

enum err oidc_config_validate(json_t *cfg, char *why, size_t why_len)
{
    static const char *const known[] = {"issuer",         "audience",
                                        "jwks_uri",       "jwks_file",
                                        "user_claim",     "groups_claim",
                                        "group_map",      "mfa_amr",
                                        "principal_type", "clearance",
                                        "leeway_seconds", "jwks_ttl_seconds",
                                        "ca_file",        NULL};
    if (!json_is_object(cfg)) {
        snprintf(why, why_len, "the issuer configuration must be a JSON object");
        return ERR_INVALID;
    }
    const char *k;
    json_t *v;
    json_object_foreach(cfg, k, v)
    {
        int found = 0;
        for (int i = 0; known[i] != NULL; i++)
            found |= strcmp(k, known[i]) == 0;
        if (!found) {
            snprintf(why, why_len, "unknown issuer field '%.40s'", k);
            return ERR_INVALID;
        }
    }
    const char *iss = json_string_value(json_object_get(cfg, "issuer"));
    const char *aud = json_string_value(json_object_get(cfg, "audience"));
    const char *uri = json_string_value(json_object_get(cfg, "jwks_uri"));
    const char *file = json_string_value(json_object_get(cfg, "jwks_file"));
    if (iss == NULL || iss[0] == '\0' || strlen(iss) > 512) {
        snprintf(why, why_len, "issuer is required (the exact \"iss\" of the tokens)");
        return ERR_INVALID;
    }
    if (aud == NULL || aud[0] == '\0' || strlen(aud) > 512) {
        snprintf(why, why_len, "audience is required (the \"aud\" Coffer's tokens carry)");
        return ERR_INVALID;
    }
    if ((uri == NULL) == (file == NULL)) {
        snprintf(why, why_len, "give exactly one of jwks_uri and jwks_file");
        return ERR_INVALID;
    }
    if (uri != NULL &&
        (strlen(uri) > 1024 || (strncmp(uri, "https://", 8) != 0 && !oidc_is_loopback_http(uri)))) {
        snprintf(why, why_len, "jwks_uri must be an https URL (plain http only on loopback)");
        return ERR_INVALID;
    }
    if (file != NULL && (file[0] != '/' || strlen(file) > 1024)) {
        snprintf(why, why_len, "jwks_file must be an absolute path on the server");
        return ERR_INVALID;
    }
    static const char *const strs[] = {"user_claim", "groups_claim", "ca_file", NULL};
    for (int i = 0; strs[i] != NULL; i++) {
        json_t *s = json_object_get(cfg, strs[i]);
        if (s != NULL &&
            (!json_is_string(s) || json_string_length(s) == 0 || json_string_length(s) > 256)) {
            snprintf(why, why_len, "%s must be a non-empty string", strs[i]);
            return ERR_INVALID;
        }
    }
    json_t *map = json_object_get(cfg, "group_map");
    if (map != NULL) {
        if (!json_is_object(map) || json_object_size(map) > 256) {
            snprintf(why, why_len, "group_map must be an object of at most 256 entries");
            return ERR_INVALID;
        }
        json_object_foreach(map, k, v)
        {
            if (!json_is_string(v) || !authz_name_valid(json_string_value(v))) {
                snprintf(why, why_len, "group_map values must be Coffer group names");
                return ERR_INVALID;
            }
        }
    }
    json_t *amr = json_object_get(cfg, "mfa_amr");
    if (amr != NULL && !oidc_string_list(amr, 16)) {
        snprintf(why, why_len, "mfa_amr must be a list of at most 16 strings");
        return ERR_INVALID;
    }
    const char *type = json_string_value(json_object_get(cfg, "principal_type"));
    if (json_object_get(cfg, "principal_type") != NULL &&
        (type == NULL || (strcmp(type, "user") != 0 && strcmp(type, "service") != 0))) {
        snprintf(why, why_len, "principal_type must be user or service");
        return ERR_INVALID;
    }
    const char *cl = json_string_value(json_object_get(cfg, "clearance"));
    if (json_object_get(cfg, "clearance") != NULL && meta_sensitivity_level(cl) < 0) {
        snprintf(why, why_len, "clearance must be public, internal, confidential or restricted");
        return ERR_INVALID;
    }
    json_t *lw = json_object_get(cfg, "leeway_seconds");
    if (lw != NULL && (!json_is_integer(lw) || json_integer_value(lw) < 0 ||
                       json_integer_value(lw) > JWT_MAX_LEEWAY)) {
        snprintf(why, why_len, "leeway_seconds must be 0..%d", JWT_MAX_LEEWAY);
        return ERR_INVALID;
    }
    json_t *ttl = json_object_get(cfg, "jwks_ttl_seconds");
    if (ttl != NULL && (!json_is_integer(ttl) || json_integer_value(ttl) < OIDC_REFRESH_MIN ||
                        json_integer_value(ttl) > 86400)) {
        snprintf(why, why_len, "jwks_ttl_seconds must be %d..86400", OIDC_REFRESH_MIN);
        return ERR_INVALID;
    }
    oidc_set_default(cfg, "user_claim", json_string("sub"));
    oidc_set_default(cfg, "groups_claim", json_string("groups"));
    oidc_set_default(cfg, "group_map", json_object());
    oidc_set_default(cfg, "mfa_amr", json_array());
    oidc_set_default(cfg, "principal_type", json_string("user"));
    oidc_set_default(cfg, "clearance", json_string("internal"));
    oidc_set_default(cfg, "leeway_seconds", json_integer(JWT_DEFAULT_LEEWAY));
    oidc_set_default(cfg, "jwks_ttl_seconds", json_integer(OIDC_TTL_DEFAULT));
    return ERR_OK;
}

/* ------------------------------------------------------------- keys */

struct oidc_buf {
    char *data;
    size_t len;
    int overflow;
};

static size_t oidc_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct oidc_buf *b = userdata;
    size_t n = size * nmemb;
    if (n > JWKS_MAX_BYTES || b->len > JWKS_MAX_BYTES - n) {
        b->overflow = 1;
        return 0;
    }
    char *nd = realloc(b->data, b->len + n + 1);
    if (nd == NULL)
        return 0;
    b->data = nd;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Fetches a JWKS document over HTTPS (or loopback HTTP). Caller frees. */
static char *oidc_fetch_uri(const char *uri, const char *ca_file, size_t *len)
{
    if (strncmp(uri, "https://", 8) != 0 && !oidc_is_loopback_http(uri))
        return NULL;
    CURL *h = curl_easy_init();
    if (h == NULL)
        return NULL;
    struct oidc_buf b = {NULL, 0, 0};
    curl_easy_setopt(h, CURLOPT_URL, uri);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, strncmp(uri, "https://", 8) == 0 ? "https" : "http");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)OIDC_FETCH_TIMEOUT);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)OIDC_FETCH_TIMEOUT);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE, (long)JWKS_MAX_BYTES);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "coffer-server/0.1");
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, oidc_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK || status != 200 || b.overflow || b.data == NULL) {
        log_info("oidc: cannot fetch the key set %s: %s (HTTP %ld)", uri,
                 cc != CURLE_OK ? curl_easy_strerror(cc) : "bad answer", status);
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

static char *oidc_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat sb;
    char *buf = NULL;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
        (uint64_t)sb.st_size <= JWKS_MAX_BYTES) {
        buf = malloc((size_t)sb.st_size + 1);
        if (buf != NULL && read(fd, buf, (size_t)sb.st_size) != sb.st_size) {
            free(buf);
            buf = NULL;
        }
        if (buf != NULL) {
            buf[sb.st_size] = '\0';
            *len = (size_t)sb.st_size;
        }
    }
    close(fd);
    if (buf == NULL)
        log_info("oidc: cannot read the key set file %s", path);
    return buf;
}

static void oidc_keys_release_locked(struct oidc_keys *k)
{
    if (k != NULL && --k->refs == 0) {
        jwks_free(k->jwks);
        free(k);
    }
}

static void oidc_keys_release(struct oidc_keys *k)
{
    pthread_mutex_lock(&oidc_lock);
    oidc_keys_release_locked(k);
    pthread_mutex_unlock(&oidc_lock);
}

void oidc_cache_clear(void)
{
    pthread_mutex_lock(&oidc_lock);
    for (size_t i = 0; i < OIDC_MAX_ISSUERS; i++) {
        oidc_keys_release_locked(oidc_cache[i].keys);
        free(oidc_cache[i].source);
        memset(&oidc_cache[i], 0, sizeof(oidc_cache[i]));
    }
    pthread_mutex_unlock(&oidc_lock);
}

/* Loads the key set of an issuer; NULL on failure. */
static struct oidc_keys *oidc_keys_load(json_t *cfg)
{
    const char *uri = json_string_value(json_object_get(cfg, "jwks_uri"));
    const char *file = json_string_value(json_object_get(cfg, "jwks_file"));
    size_t len = 0;
    char *doc = uri != NULL
                    ? oidc_fetch_uri(uri, json_string_value(json_object_get(cfg, "ca_file")), &len)
                    : oidc_read_file(file, &len);
    if (doc == NULL)
        return NULL;
    struct jwks *set = NULL;
    enum err e = jwks_parse(doc, len, &set);
    free(doc);
    if (e != ERR_OK) {
        log_info("oidc: the key set of %s has no usable key", uri != NULL ? uri : file);
        return NULL;
    }
    struct oidc_keys *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        jwks_free(set);
        return NULL;
    }
    k->jwks = set;
    k->refs = 1;
    return k;
}

/*
 * Returns the issuer's keys with a reference (release with
 * oidc_keys_release), fetching them when absent or stale, or when
 * need_kid is set and not among them (at most once per OIDC_REFRESH_MIN).
 * The fetch runs under the cache lock, which bounds the fetch rate.
 */
static struct oidc_keys *oidc_keys_get(const char *name, json_t *cfg, const char *need_kid,
                                       int64_t now)
{
    const char *uri = json_string_value(json_object_get(cfg, "jwks_uri"));
    const char *source = uri != NULL ? uri : json_string_value(json_object_get(cfg, "jwks_file"));
    int64_t ttl = json_integer_value(json_object_get(cfg, "jwks_ttl_seconds"));
    if (ttl <= 0)
        ttl = OIDC_TTL_DEFAULT;
    if (source == NULL)
        return NULL;
    pthread_mutex_lock(&oidc_lock);
    struct oidc_cache_entry *c = NULL, *free_slot = NULL;
    for (size_t i = 0; i < OIDC_MAX_ISSUERS; i++) {
        if (oidc_cache[i].name[0] == '\0') {
            if (free_slot == NULL)
                free_slot = &oidc_cache[i];
        } else if (strcmp(oidc_cache[i].name, name) == 0) {
            c = &oidc_cache[i];
        }
    }
    if (c != NULL && strcmp(c->source, source) != 0) {
        oidc_keys_release_locked(c->keys);
        free(c->source);
        memset(c, 0, sizeof(*c));
        free_slot = c;
        c = NULL;
    }
    if (c == NULL && free_slot != NULL) {
        c = free_slot;
        snprintf(c->name, sizeof(c->name), "%s", name);
        c->source = strdup(source);
        if (c->source == NULL) {
            memset(c, 0, sizeof(*c));
            pthread_mutex_unlock(&oidc_lock);
            return NULL;
        }
    }
    if (c == NULL) {
        pthread_mutex_unlock(&oidc_lock);
        return NULL;
    }
    int stale = c->keys == NULL || now - c->fetched_at >= ttl;
    int kid_missing = c->keys != NULL && need_kid != NULL && !jwks_has_kid(c->keys->jwks, need_kid);
    /* A failed refresh keeps the previous keys in use and is retried only
     * after OIDC_REFRESH_MIN, so an unreachable issuer cannot stall every request. */
    int may_fetch = c->attempted_at == 0 || now - c->attempted_at >= OIDC_REFRESH_MIN;
    if ((stale || kid_missing) && may_fetch) {
        c->attempted_at = now;
        struct oidc_keys *fresh = oidc_keys_load(cfg);
        if (fresh != NULL) {
            oidc_keys_release_locked(c->keys);
            c->keys = fresh;
            c->fetched_at = now;
        }
    }
    struct oidc_keys *k = c->keys;
    if (k != NULL)
        k->refs++;
    pthread_mutex_unlock(&oidc_lock);
    return k;
}

/* ------------------------------------------------------ authentication */

/* Reads "iss" from the unverified payload, only to choose the issuer whose
 * keys then verify the token. Writes it to out or returns -1. */
static int oidc_peek_issuer(const char *token, char *out, size_t cap)
{
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 != NULL ? strchr(d1 + 1, '.') : NULL;
    if (d2 == NULL || d2 - d1 - 1 <= 0)
        return -1;
    size_t n = (size_t)(d2 - d1 - 1);
    uint8_t *buf = malloc(n);
    if (buf == NULL)
        return -1;
    int len = b64url_decode(d1 + 1, n, buf, n);
    json_t *payload = len > 0 ? json_loadb((const char *)buf, (size_t)len, 0, NULL) : NULL;
    free(buf);
    const char *iss = json_string_value(json_object_get(payload, "iss"));
    int rc = -1;
    if (iss != NULL && strlen(iss) < cap) {
        snprintf(out, cap, "%s", iss);
        rc = 0;
    }
    json_decref(payload);
    return rc;
}

/* Principal names from tokens: [A-Za-z0-9][A-Za-z0-9._@-]{0,63}. */
static int oidc_principal_valid(const char *s)
{
    size_t n = strnlen(s, OIDC_PRINCIPAL_MAX + 1);
    if (n == 0 || n > OIDC_PRINCIPAL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (i > 0 && (c == '.' || c == '_' || c == '@' || c == '-'));
        if (!ok)
            return 0;
    }
    return 1;
}

/* Adds name to the array unless present. */
static void oidc_add_group(json_t *groups, const char *name)
{
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        if (strcmp(json_string_value(g), name) == 0)
            return;
    }
    json_array_append_new(groups, json_string(name));
}

/* Fills r->who from a verified token. */
static enum err oidc_fill_principal(struct request *r, json_t *cfg, const struct jwt_result *res)
{
    struct principal *p = &r->who;
    const char *type = json_string_value(json_object_get(cfg, "principal_type"));
    if (!oidc_principal_valid(res->subject)) {
        log_info("oidc %s: the user claim is not a usable principal name", r->request_id);
        return ERR_UNAUTHENTICATED;
    }
    snprintf(p->type, sizeof(p->type), "%s", type != NULL ? type : "user");
    snprintf(p->name, sizeof(p->name), "%s", res->subject);
    snprintf(p->auth_method, sizeof(p->auth_method), "oidc");
    p->clearance = meta_sensitivity_level(json_string_value(json_object_get(cfg, "clearance")));
    if (p->clearance < 0)
        p->clearance = 1;
    if (strcmp(p->type, "user") == 0) {
        struct meta_user u;
        enum err e = meta_user_get(r->app->meta, res->subject, &u);
        if (e == ERR_OK) {
            int disabled = u.disabled;
            p->user_id = u.id;
            p->clearance = u.clearance;
            p->is_admin = u.is_admin;
            p->attrs = json_incref(u.attrs);
            meta_user_clear(&u);
            if (disabled)
                return ERR_UNAUTHENTICATED;
        } else if (e != ERR_NOT_FOUND) {
            return ERR_UNAVAILABLE;
        }
    }
    if (p->attrs == NULL)
        p->attrs = json_object();
    json_t *amr_ok = json_object_get(cfg, "mfa_amr");
    for (size_t i = 0; i < res->n_amr && !p->mfa; i++) {
        size_t j;
        json_t *v;
        json_array_foreach(amr_ok, j, v)
        {
            if (strcmp(json_string_value(v), res->amr[i]) == 0)
                p->mfa = 1;
        }
    }
    if (p->mfa) {
        json_t *at = json_object_get(res->claims, "auth_time");
        p->mfa_at = json_is_integer(at) ? (int64_t)json_integer_value(at)
                    : res->has_iat      ? res->iat
                                        : (int64_t)time(NULL);
    }
    char principal[sizeof(p->name) + 16];
    snprintf(principal, sizeof(principal), "%s:%s", p->type, p->name);
    if (meta_principal_groups(r->app->meta, principal, &p->groups) != ERR_OK)
        return ERR_UNAVAILABLE;
    json_t *map = json_object_get(cfg, "group_map");
    for (size_t i = 0; i < res->n_groups; i++) {
        const char *mapped = json_string_value(json_object_get(map, res->groups[i]));
        if (mapped != NULL)
            oidc_add_group(p->groups, mapped);
    }
    return ERR_OK;
}

enum err oidc_authenticate(struct request *r, const char *token)
{
    size_t len = strlen(token);
    char iss[520];
    if (len > JWT_MAX_TOKEN_BYTES || oidc_peek_issuer(token, iss, sizeof(iss)) != 0)
        return ERR_UNAUTHENTICATED;
    json_t *all = NULL;
    if (meta_oidc_all(r->app->meta, &all) != ERR_OK)
        return ERR_UNAVAILABLE;
    const char *name = NULL;
    json_t *cfg = NULL, *c;
    const char *k;
    json_object_foreach(all, k, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "issuer")), iss) == 0) {
            name = k;
            cfg = c;
            break;
        }
    }
    if (cfg == NULL) {
        json_decref(all);
        log_info("oidc %s: token from an issuer that is not trusted", r->request_id);
        return ERR_UNAUTHENTICATED;
    }
    char kid[JWT_KID_MAX + 1];
    int has_kid = jwt_peek_kid(token, len, kid, sizeof(kid)) == ERR_OK;
    int64_t now = (int64_t)time(NULL);
    struct oidc_keys *keys = oidc_keys_get(name, cfg, has_kid ? kid : NULL, now);
    if (keys == NULL) {
        json_decref(all);
        log_info("oidc %s: no keys for issuer %s", r->request_id, name);
        return ERR_UNAUTHENTICATED;
    }
    struct jwt_config jc = {
        .issuer = json_string_value(json_object_get(cfg, "issuer")),
        .audience = json_string_value(json_object_get(cfg, "audience")),
        .user_claim = json_string_value(json_object_get(cfg, "user_claim")),
        .groups_claim = json_string_value(json_object_get(cfg, "groups_claim")),
        .leeway = json_integer_value(json_object_get(cfg, "leeway_seconds")),
    };
    struct jwt_result res;
    char why[160] = "";
    enum err e = jwt_verify(token, len, keys->jwks, &jc, now, &res, why, sizeof(why));
    oidc_keys_release(keys);
    if (e != ERR_OK) {
        log_info("oidc %s: token from %s rejected: %s", r->request_id, name, why);
        json_decref(all);
        return ERR_UNAUTHENTICATED;
    }
    e = oidc_fill_principal(r, cfg, &res);
    jwt_result_clear(&res);
    json_decref(all);
    if (e != ERR_OK)
        return e;
    session_token_hash(token, r->who.token_hash);
    r->authenticated = 1;
    return ERR_OK;
}
