/*
 * doctor: checks of the running configuration (see doctor.h).
 */
#include "monitor/doctor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "audit/audit.h"
#include "http/http.h"
#include "keys/keyring.h"
#include "keys/keys.h"
#include "keys/masterkey.h"
#include "keys/rotate.h"
#include "meta/meta.h"
#include "monitor/monitor.h"

/* A signed head older than this is a finding (the server signs every 60 s). */
#define DOCTOR_HEAD_AGE_MAX 600
/* Events not covered by a signed head above this are a finding. */
#define DOCTOR_UNSIGNED_MAX 10000
#define DOCTOR_ROTATION_DEFAULT (365 * 86400)

void doctor_finding_add(struct doctor_findings *d, const char *sev, const char *check,
                        const char *fix, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (strcmp(sev, "high") == 0)
        d->high++;
    else if (strcmp(sev, "medium") == 0)
        d->medium++;
    else
        d->low++;
    json_array_append_new(d->list, json_pack("{s:s, s:s, s:s, s:s}", "severity", sev, "check",
                                             check, "problem", msg, "fix", fix));
}

static int doctor_has(const char *s, const char *needle)
{
    return strstr(s, needle) != NULL;
}

int doctor_tls_parse(const char *priority, json_t *protocols, json_t *ciphers)
{
    static const char *const weak_vers[] = {"SSL3.0", "TLS1.0", "TLS1.1"};
    static const char *const cipher_prefix[] = {"AES-",    "CHACHA20", "CAMELLIA", "3DES",
                                                "ARCFOUR", "GOST",     "NULL"};
    int weak = 0;
    char buf[1024];
    if (priority == NULL || strlen(priority) >= sizeof(buf))
        return 1;
    memcpy(buf, priority, strlen(priority) + 1);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ":", &save); tok != NULL; tok = strtok_r(NULL, ":", &save)) {
        if (tok[0] != '+')
            continue; /* NONE, %FLAGS and removals enable nothing */
        const char *name = tok + 1;
        if (strncmp(name, "VERS-", 5) == 0) {
            json_array_append_new(protocols, json_string(name + 5));
            for (size_t i = 0; i < sizeof(weak_vers) / sizeof(weak_vers[0]); i++)
                weak |= strcmp(name + 5, weak_vers[i]) == 0;
            weak |= strcmp(name + 5, "ALL") == 0;
            continue;
        }
        for (size_t i = 0; i < sizeof(cipher_prefix) / sizeof(cipher_prefix[0]); i++) {
            if (strncmp(name, cipher_prefix[i], strlen(cipher_prefix[i])) == 0 ||
                strcmp(name, "CIPHER-ALL") == 0) {
                json_array_append_new(ciphers, json_string(name));
                weak |= doctor_has(name, "CBC") || doctor_has(name, "ARCFOUR") ||
                        doctor_has(name, "3DES") || strcmp(name, "NULL") == 0 ||
                        strcmp(name, "CIPHER-ALL") == 0;
                break;
            }
        }
    }
    return weak;
}

static int doctor_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
}

static json_t *doctor_tls(struct app *app, struct doctor_findings *d)
{
    if (app->cfg.behind_proxy)
        return json_pack("{s:b, s:s}", "enabled", 0, "terminated_by", "proxy");
    json_t *protocols = json_array(), *ciphers = json_array();
    const char *prio = http_tls_priorities();
    if (doctor_tls_parse(prio, protocols, ciphers))
        doctor_finding_add(d, "high", "tls", "allow only TLS 1.2/1.3 with AEAD ciphers",
                           "the TLS priority string enables a weak protocol or cipher");
    return json_pack("{s:b, s:o, s:o, s:s}", "enabled", 1, "protocols", protocols, "ciphers",
                     ciphers, "priority", prio);
}

static json_t *doctor_process(struct app *app, struct doctor_findings *d, json_t *rep)
{
    uid_t uid = geteuid();
    if (uid == 0)
        doctor_finding_add(d, "high", "process",
                           "start it with 'coffer server --user NAME' so it drops root once bound",
                           "the server runs as root");
    if (!app->cfg.seccomp)
        doctor_finding_add(d, "medium", "process", "restart the server without --no-seccomp",
                           "the server runs without its seccomp system call filter");
    json_object_set_new(rep, "seccomp", json_boolean(app->cfg.seccomp));
    json_object_set_new(rep, "behind_proxy", json_boolean(app->cfg.behind_proxy));
    int v6 = strchr(app->cfg.listen_host, ':') != NULL;
    char listen[300];
    snprintf(listen, sizeof(listen), "%s%s%s:%u", v6 ? "[" : "", app->cfg.listen_host,
             v6 ? "]" : "", (unsigned)app->cfg.listen_port);
    json_object_set_new(rep, "listen", json_string(listen));
    int loop = doctor_loopback(app->cfg.listen_host);
    json_object_set_new(rep, "listen_loopback", json_boolean(loop));
    if (!loop && !app->cfg.behind_proxy)
        doctor_finding_add(
            d, "low", "network",
            "put a TLS-terminating reverse proxy in front and run 'coffer server "
            "--behind-proxy --listen 127.0.0.1:PORT'",
            "the server listens on %s, reachable from the network without a proxy in "
            "front",
            listen);
    json_object_set_new(rep, "metrics_listen", json_string(app->cfg.metrics_listen));
    return json_pack("{s:I, s:b}", "uid", (json_int_t)uid, "root", uid == 0);
}

static json_t *doctor_audit(struct app *app, struct doctor_findings *d)
{
    json_t *o = json_object();
    if (app->audit == NULL)
        return o;
    struct audit_stats st;
    audit_log_stats(app->audit, &st);
    uint64_t unsigned_events = st.events - st.last_head_size;
    json_object_set_new(o, "failed_closed", json_boolean(st.failed));
    json_object_set_new(o, "events", json_integer((json_int_t)st.events));
    json_object_set_new(o, "unsigned_events", json_integer((json_int_t)unsigned_events));
    if (st.failed)
        doctor_finding_add(
            d, "high", "audit",
            "check the storage of DATA/audit (space, errors), then restart the server",
            "the audit log has failed closed: every recorded request is refused");
    if (unsigned_events > DOCTOR_UNSIGNED_MAX)
        doctor_finding_add(d, "low", "audit", "check the server log for head signing errors",
                           "%llu events are not yet covered by a signed head",
                           (unsigned long long)unsigned_events);
    int64_t ms = monitor_last_head_ms(app);
    if (ms >= 0) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        int64_t age = ((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000 - ms) / 1000;
        json_object_set_new(o, "last_head_age_seconds", json_integer((json_int_t)age));
        if (age > DOCTOR_HEAD_AGE_MAX && unsigned_events > 0)
            doctor_finding_add(d, "medium", "audit", "check the server log for head signing errors",
                               "the last signed tree head is %lld seconds old", (long long)age);
    } else {
        json_object_set_new(o, "last_head_age_seconds", json_null());
    }
    return o;
}

static json_t *doctor_rotation(struct app *app, struct doctor_findings *d, int64_t *period)
{
    struct rotate_status st;
    rotate_status_get(app, &st);
    *period = st.period > 0 ? st.period : DOCTOR_ROTATION_DEFAULT;
    if (app->rotator == NULL)
        return json_pack("{s:b}", "worker", 0);
    if (st.error[0] != '\0')
        doctor_finding_add(d, "medium", "rotation",
                           "see 'coffer keys status' and the server log, then 'coffer keys rotate'",
                           "the KEK rotation worker reported: %s", st.error);
    return json_pack("{s:b, s:b, s:s, s:I, s:I, s:s}", "worker", 1, "running", st.running,
                     "new_kek", st.new_kek, "rewrapped", (json_int_t)st.rewrapped, "period",
                     (json_int_t)st.period, "error", st.error);
}

/* Where the master key of a sealed keyring comes from; a file inside the
 * data directory defeats the sealing. */
static void doctor_master_key(struct app *app, struct doctor_findings *d, json_t *keys)
{
    const char *file = app->cfg.master_key_file[0] ? app->cfg.master_key_file : NULL;
    if (file == NULL && getenv(MASTERKEY_ENV) != NULL) {
        json_object_set_new(keys, "master_key", json_string("environment"));
        return;
    }
    if (file == NULL)
        file = getenv(MASTERKEY_FILE_ENV);
    if (file == NULL) {
        json_object_set_new(keys, "master_key", json_string("unknown"));
        return;
    }
    json_object_set_new(keys, "master_key", json_string("file"));
    json_object_set_new(keys, "master_key_file", json_string(file));
    enum err e = masterkey_check_outside(file, app->cfg.data_dir);
    json_object_set_new(keys, "master_key_outside", json_boolean(e == ERR_OK));
    if (e == ERR_INVALID)
        doctor_finding_add(d, "high", "keys",
                           "move the master key file outside the data directory (another disk or a "
                           "secrets mount) and restart with --master-key-file",
                           "the master key file %s lies inside the data directory it protects",
                           file);
}

static json_t *doctor_keys(struct app *app, struct doctor_findings *d, int64_t period)
{
    json_t *keys = json_object();
    struct key_provider *kp = app->keys;
    json_object_set_new(keys, "provider", json_string(kp != NULL ? kp->name : "none"));
    if (kp == NULL)
        return keys;
    int64_t now = (int64_t)time(NULL);
    json_t *keks = json_array();
    size_t n = keys_kek_count(kp);
    for (size_t i = 0; i < n; i++) {
        struct keys_kek_info ki;
        if (keys_kek_info(kp, i, &ki) != ERR_OK)
            continue;
        int64_t age = now - ki.created;
        json_array_append_new(keks, json_pack("{s:s, s:s, s:I}", "id", ki.id, "state",
                                              ki.current ? "current" : "retired", "age_seconds",
                                              (json_int_t)age));
        if (ki.current && age > period)
            doctor_finding_add(d, "medium", "keys", "run 'coffer keys rotate'",
                               "the current KEK %s is %lld days old, past the rotation period of "
                               "%lld days",
                               ki.id, (long long)(age / 86400), (long long)(period / 86400));
    }
    json_object_set_new(keys, "keks", keks);
    if (keyring_is(kp)) {
        int sealed = keyring_is_sealed(kp);
        json_object_set_new(keys, "sealed", json_boolean(sealed));
        if (sealed)
            doctor_master_key(app, d, keys);
        else
            doctor_finding_add(
                d, "low", "keys",
                "seal the keyring under a master key kept elsewhere ('coffer keys "
                "seal', docs/KEYS.md) or use a PKCS#11 token",
                "the keyring's KEKs are stored unsealed beside the data they protect");
    }
    return keys;
}

enum err doctor_report(struct app *app, json_t **out)
{
    *out = NULL;
    struct doctor_findings d = {json_array(), 0, 0, 0};
    json_t *rep = json_object();
    if (d.list == NULL || rep == NULL) {
        json_decref(d.list);
        json_decref(rep);
        return ERR_INTERNAL;
    }
    json_object_set_new(rep, "tls", doctor_tls(app, &d));
    json_object_set_new(rep, "user", doctor_process(app, &d, rep));
    json_object_set_new(rep, "audit", doctor_audit(app, &d));
    int64_t period = DOCTOR_ROTATION_DEFAULT;
    json_object_set_new(rep, "rotation", doctor_rotation(app, &d, &period));
    json_object_set_new(rep, "keys", doctor_keys(app, &d, period));
    json_object_set_new(rep, "findings", d.list);
    json_object_set_new(rep, "high", json_integer(d.high));
    json_object_set_new(rep, "medium", json_integer(d.medium));
    json_object_set_new(rep, "low", json_integer(d.low));
    *out = rep;
    return ERR_OK;
}
