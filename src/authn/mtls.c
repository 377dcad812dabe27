/*
 * Client-certificate authentication of service accounts.
 */
#include "authn/mtls.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "authn/apitoken.h"
#include "meta/access.h"
#include "meta/meta.h"
#include "meta/svccert_store.h"
#include "util/log.h"
#include "util/secure.h"

/* Uses are written at most this often per binding. */
#define MTLS_TOUCH_INTERVAL 60

int mtls_fingerprint_parse(const char *text, uint8_t out[32])
{
    if (text == NULL)
        return -1;
    char hex[65];
    size_t n = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == ':')
            continue;
        if (n >= 64)
            return -1;
        hex[n++] = *p;
    }
    hex[n] = '\0';
    if (n != 64)
        return -1;
    return hex_decode(hex, 64, out, 32) == 0 ? 0 : -1;
}

static gnutls_session_t mtls_session(const struct request *r)
{
    if (r->app->cfg.behind_proxy || r->conn == NULL)
        return NULL;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    return ci != NULL ? (gnutls_session_t)ci->tls_session : NULL;
}

int mtls_has_certificate(const struct request *r)
{
    gnutls_session_t s = mtls_session(r);
    unsigned int n = 0;
    return s != NULL && gnutls_certificate_get_peers(s, &n) != NULL && n > 0;
}

/* Verifies the peer's chain against the client CAs and computes the SHA-256
 * of the leaf's DER. 0 on success. */
static int mtls_verified_fingerprint(const struct request *r, uint8_t fp[32])
{
    gnutls_session_t s = mtls_session(r);
    if (s == NULL || gnutls_certificate_type_get(s) != GNUTLS_CRT_X509)
        return -1;
    unsigned int n = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(s, &n);
    if (chain == NULL || n == 0)
        return -1;
    unsigned int status = 0;
    int rc = gnutls_certificate_verify_peers2(s, &status);
    if (rc != GNUTLS_E_SUCCESS || status != 0) {
        log_info("mtls: client certificate from %s rejected (status 0x%x, %s)", r->source_ip,
                 status, rc != GNUTLS_E_SUCCESS ? gnutls_strerror(rc) : "verification failed");
        return -1;
    }
    /* The chain verified, which covers the validity period; check the
     * leaf's notAfter explicitly as well, since it is the expiry. */
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) != GNUTLS_E_SUCCESS)
        return -1;
    int ok = gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS;
    time_t now = time(NULL);
    if (ok) {
        time_t not_after = gnutls_x509_crt_get_expiration_time(crt);
        time_t not_before = gnutls_x509_crt_get_activation_time(crt);
        ok = not_after != (time_t)-1 && not_before != (time_t)-1 && now < not_after &&
             now >= not_before;
    }
    gnutls_x509_crt_deinit(crt);
    if (!ok)
        return -1;
    size_t len = 32;
    if (gnutls_fingerprint(GNUTLS_DIG_SHA256, &chain[0], fp, &len) != GNUTLS_E_SUCCESS || len != 32)
        return -1;
    return 0;
}

enum err mtls_authenticate(struct request *r)
{
    uint8_t fp[32];
    if (mtls_verified_fingerprint(r, fp) != 0)
        return ERR_UNAUTHENTICATED;
    struct meta_svccert c;
    enum err e = meta_svccert_by_fingerprint(r->app->meta, fp, &c);
    if (e != ERR_OK) {
        if (e == ERR_NOT_FOUND) {
            char hex[65];
            hex_encode(fp, sizeof(fp), hex);
            log_info("mtls: client certificate %s from %s is not bound to a service account", hex,
                     r->source_ip);
        }
        return e == ERR_NOT_FOUND ? ERR_UNAUTHENTICATED : ERR_UNAVAILABLE;
    }
    e = apitoken_principal(r, c.owner_id, c.name, "mtls", -c.id, NULL);
    int64_t now = (int64_t)time(NULL);
    if (e == ERR_OK && now - c.last_used_at >= MTLS_TOUCH_INTERVAL &&
        meta_svccert_touch(r->app->meta, c.id, now, r->source_ip) != ERR_OK)
        e = ERR_UNAVAILABLE;
    meta_svccert_clear(&c);
    if (e != ERR_OK)
        return e;
    r->authenticated = 1;
    return ERR_OK;
}
