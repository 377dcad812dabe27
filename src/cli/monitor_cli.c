/*
 * coffer alerts, coffer review, coffer doctor.
 *
 * alerts and review talk to the server; doctor runs offline on a data
 * directory (a running server's or a copy) and/or asks the running server
 * (GET /v1/doctor), and exits 1 when it finds a high-severity problem, so it
 * can run from cron or CI.
 */
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "audit/audit.h"
#include "authn/apitoken.h"
#include "authz/authz.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/util.h"
#include "keys/keyring.h"
#include "keys/keys.h"
#include "keys/masterkey.h"
#include "keys/migrate.h"
#include "keys/pkcs11.h"
#include "meta/access.h"
#include "meta/authn_store.h"
#include "meta/meta.h"
#include "meta/share_store.h"
#include "monitor/anomaly.h"
#include "monitor/doctor.h"
#include "util/err.h"

/* Prints j as indented JSON in the order of its keys ("{}" if it cannot). */
static void monitor_print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    printf("%s\n", s != NULL ? s : "{}");
    free(s);
}

/* ---- alerts ------------------------------------------------------------------ */

static int alerts_list(struct client *c, const struct args *a)
{
    char path[96];
    const char *lim = args_get(a, "--limit");
    snprintf(path, sizeof(path), "/v1/alerts?limit=%ld%s",
             lim != NULL ? strtol(lim, NULL, 10) : 100, args_has(a, "--all") ? "&all=1" : "");
    json_t *out = NULL;
    int rc = client_json(c, "GET", path, NULL, &out);
    if (rc != 0)
        return rc;
    if (c->json_output) {
        monitor_print_json(out);
        json_decref(out);
        return 0;
    }
    size_t i;
    json_t *f;
    json_t *list = json_object_get(out, "findings");
    if (json_array_size(list) == 0)
        printf("no %sfindings\n", args_has(a, "--all") ? "" : "open ");
    json_array_foreach(list, i, f)
    {
        char t[32];
        cli_time_json(json_object_get(f, "event_time"), t, sizeof(t));
        char *ev = json_dumps(json_object_get(f, "events"), JSON_COMPACT);
        printf("#%lld %-6s %-14s %-20s %s %s\n    events %s%s\n",
               (long long)json_integer_value(json_object_get(f, "id")),
               json_string_value(json_object_get(f, "severity")),
               json_string_value(json_object_get(f, "rule")),
               json_string_value(json_object_get(f, "principal")), t,
               json_string_value(json_object_get(f, "summary")), ev != NULL ? ev : "[]",
               json_is_null(json_object_get(f, "acked_at")) ? "" : "  (acknowledged)");
        free(ev);
    }
    json_array_foreach(json_object_get(out, "holds"), i, f)
    {
        printf("hold: %s %s since %lld (%s)\n", json_string_value(json_object_get(f, "principal")),
               json_string_value(json_object_get(f, "kind")),
               (long long)json_integer_value(json_object_get(f, "since")),
               json_string_value(json_object_get(f, "reason")));
    }
    json_decref(out);
    return 0;
}

static int alerts_clear(struct client *c, const char *principal, const char *kind)
{
    char *p = client_escape(principal);
    char path[512];
    snprintf(path, sizeof(path), "/v1/holds/%s%s%s", p != NULL ? p : "", kind ? "?kind=" : "",
             kind ? kind : "");
    free(p);
    int rc = client_json(c, "DELETE", path, NULL, NULL);
    if (rc == 0)
        printf("cleared %s hold on %s\n", kind != NULL ? kind : "every", principal);
    return rc;
}

int cli_alerts(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer alerts [ls] [--all] [--limit N]\n"
        "       coffer alerts ack ID...\n"
        "       coffer alerts clear-suspension PRINCIPAL\n"
        "       coffer alerts clear-stepup PRINCIPAL\n"
        "Lists anomaly findings (open ones unless --all) and the holds on principals\n"
        "(suspension, forced step-up MFA). ack marks findings as handled; clear-* lift a\n"
        "hold so the principal can work again. Reading needs audit:Read, changes admin:Users.\n";
    struct args_opt opts[] = {
        {"--all", 0, 0, {0}, 0}, {"--limit", 1, 0, {0}, 0}, {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 0, ARGS_MAX_POS);
    if (rc != 0 || a.help)
        return rc;
    const char *sub = a.npos > 0 ? a.pos[0] : "ls";
    if (strcmp(sub, "ls") == 0 && a.npos <= 1)
        return alerts_list(&c, &a);
    if (strcmp(sub, "ack") == 0 && a.npos >= 2) {
        for (int i = 1; i < a.npos; i++) {
            char path[64];
            snprintf(path, sizeof(path), "/v1/alerts/%ld", strtol(a.pos[i], NULL, 10));
            if ((rc = client_json(&c, "POST", path, NULL, NULL)) != 0)
                return rc;
            printf("acknowledged #%s\n", a.pos[i]);
        }
        return 0;
    }
    if (strcmp(sub, "clear-suspension") == 0 && a.npos == 2)
        return alerts_clear(&c, a.pos[1], "suspend");
    if (strcmp(sub, "clear-stepup") == 0 && a.npos == 2)
        return alerts_clear(&c, a.pos[1], "stepup");
    return cli_usage_error(usage);
}

/* ---- review ------------------------------------------------------------------ */

static void review_join(json_t *arr, char *out, size_t cap)
{
    size_t i, used = 0;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        int n = snprintf(out + used, cap - used, "%s%s", i ? ";" : "", json_string_value(v));
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
}

static void review_print_csv(json_t *rep)
{
    printf("principal,type,role,scope,via,privileged,last_used,unused,actions,flags,decision\n");
    size_t i, j;
    json_t *p, *g;
    json_array_foreach(json_object_get(rep, "principals"), i, p)
    {
        char flags[512], acts[2048], t[32];
        review_join(json_object_get(p, "flags"), flags, sizeof(flags));
        json_t *grants = json_object_get(p, "grants");
        if (json_array_size(grants) == 0)
            printf("%s,%s,,,,,,,,%s,\n", json_string_value(json_object_get(p, "principal")),
                   json_string_value(json_object_get(p, "type")), flags);
        json_array_foreach(grants, j, g)
        {
            review_join(json_object_get(g, "actions"), acts, sizeof(acts));
            cli_time_json(json_object_get(g, "last_used"), t, sizeof(t));
            printf("%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,\n",
                   json_string_value(json_object_get(p, "principal")),
                   json_string_value(json_object_get(p, "type")),
                   json_string_value(json_object_get(g, "role")),
                   json_string_value(json_object_get(g, "scope")),
                   json_string_value(json_object_get(g, "via")),
                   json_is_true(json_object_get(g, "privileged")) ? "yes" : "no",
                   json_is_null(json_object_get(g, "last_used")) ? "never" : t,
                   json_is_true(json_object_get(g, "unused")) ? "yes" : "no", acts, flags);
        }
    }
}

static void review_print_text(json_t *rep)
{
    size_t i, j;
    json_t *p, *g;
    printf("access review (grants unused for %lld days are flagged)\n\n",
           (long long)json_integer_value(json_object_get(rep, "unused_days")));
    json_array_foreach(json_object_get(rep, "principals"), i, p)
    {
        char flags[512], acts[2048], t[32];
        review_join(json_object_get(p, "flags"), flags, sizeof(flags));
        cli_time_json(json_object_get(p, "last_seen"), t, sizeof(t));
        printf("%s%s  last seen %s%s%s\n", json_string_value(json_object_get(p, "principal")),
               json_is_true(json_object_get(p, "disabled")) ? " (disabled)" : "",
               json_is_null(json_object_get(p, "last_seen")) ? "never" : t,
               flags[0] ? "  FLAGS: " : "", flags);
        json_array_foreach(json_object_get(p, "grants"), j, g)
        {
            review_join(json_object_get(g, "actions"), acts, sizeof(acts));
            cli_time_json(json_object_get(g, "last_used"), t, sizeof(t));
            const char *scope = json_string_value(json_object_get(g, "scope"));
            printf("  %-16s scope %-14s via %-14s last used %-20s %s%s\n",
                   json_string_value(json_object_get(g, "role")),
                   scope != NULL && scope[0] ? scope : "*",
                   json_string_value(json_object_get(g, "via")),
                   json_is_null(json_object_get(g, "last_used")) ? "never" : t, acts,
                   json_is_true(json_object_get(g, "unused")) ? "  UNUSED" : "");
        }
    }
    json_array_foreach(json_object_get(rep, "tokens"), i, p)
    {
        char flags[256];
        review_join(json_object_get(p, "flags"), flags, sizeof(flags));
        if (flags[0] != '\0')
            printf("token #%lld %s (owner %s): %s\n",
                   (long long)json_integer_value(json_object_get(p, "id")),
                   json_string_value(json_object_get(p, "name")),
                   json_string_value(json_object_get(p, "owner")), flags);
    }
}

/* Reads the decisions of a CSV made by 'review --format csv' whose last
 * column was filled with keep or revoke. */
static json_t *review_read_csv(const char *file)
{
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return NULL;
    json_t *ds = json_array();
    char line[8192];
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char *cols[11] = {0};
        int n = 0;
        char *p = line; /* split by hand: empty fields matter */
        while (n < 11) {
            cols[n++] = p;
            char *comma = strchr(p, ',');
            if (comma == NULL)
                break;
            *comma = '\0';
            p = comma + 1;
        }
        if (n < 11 || strcmp(cols[0], "principal") == 0)
            continue;
        if (strcmp(cols[10], "keep") != 0 && strcmp(cols[10], "revoke") != 0)
            continue;
        /* A grant through a group is a binding of the group. */
        const char *bound = strcmp(cols[4], "direct") == 0 ? cols[0] : cols[4];
        json_array_append_new(ds, json_pack("{s:s, s:s, s:s, s:s}", "principal", bound, "role",
                                            cols[2], "scope", cols[3], "decision", cols[10]));
    }
    fclose(f);
    return ds;
}

int cli_review(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer review [--unused-days N] [--format text|json|csv]\n"
        "       coffer review certify FILE.csv\n"
        "Reports the effective access of every principal: each role binding (direct or\n"
        "through a group), what it allows, when it was last used; flags grants unused for N\n"
        "days (90), clearances above anything accessed, privileged users without MFA, dormant\n"
        "accounts and tokens near or past the maximum lifetime. certify takes the CSV output\n"
        "with the last column (decision) set to keep or revoke for the grants reviewed,\n"
        "records each decision and removes the revoked bindings.\n";
    struct args_opt opts[] = {
        {"--unused-days", 1, 0, {0}, 0}, {"--format", 1, 0, {0}, 0}, {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = args_parse(&a, &c, argc, argv, usage);
    if (rc != 0 || a.help)
        return rc;
    const char *fmt = args_get(&a, "--format");
    if (fmt == NULL)
        fmt = c.json_output ? "json" : "text";
    if (strcmp(fmt, "text") != 0 && strcmp(fmt, "json") != 0 && strcmp(fmt, "csv") != 0) {
        fprintf(stderr, "coffer: --format must be text, json or csv\n");
        return 2;
    }
    if ((rc = client_setup(&c, 1)) != 0)
        return rc;
    if (a.npos == 2 && strcmp(a.pos[0], "certify") == 0) {
        json_t *ds = review_read_csv(a.pos[1]);
        if (ds == NULL || json_array_size(ds) == 0) {
            fprintf(stderr, "coffer: %s has no row whose decision column is keep or revoke\n",
                    a.pos[1]);
            json_decref(ds);
            return 2;
        }
        json_t *body = json_pack("{s:o}", "decisions", ds), *out = NULL;
        rc = client_json(&c, "POST", "/v1/review/certify", body, &out);
        json_decref(body);
        if (rc == 0)
            printf("%lld decision(s) recorded, %lld binding(s) revoked\n",
                   (long long)json_integer_value(json_object_get(out, "decisions")),
                   (long long)json_integer_value(json_object_get(out, "revoked")));
        json_decref(out);
        return rc;
    }
    if (a.npos != 0)
        return cli_usage_error(usage);
    const char *days = args_get(&a, "--unused-days");
    char path[64];
    snprintf(path, sizeof(path), "/v1/review?unused_days=%ld",
             days != NULL ? strtol(days, NULL, 10) : 90);
    json_t *rep = NULL;
    if ((rc = client_json(&c, "GET", path, NULL, &rep)) != 0)
        return rc;
    if (strcmp(fmt, "json") == 0) {
        monitor_print_json(rep);
    } else if (strcmp(fmt, "csv") == 0) {
        review_print_csv(rep);
    } else {
        review_print_text(rep);
    }
    json_decref(rep);
    return 0;
}

/* ---- doctor ------------------------------------------------------------------ */

static void doctor_mode(struct doctor_findings *d, const char *data, const char *rel,
                        const char *check, const char *sev, int required)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", data, rel);
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (required)
            doctor_finding_add(d, "high", check, "restore it from a backup or re-run 'coffer init'",
                               "%s is missing", path);
        return;
    }
    if (S_ISLNK(sb.st_mode)) {
        doctor_finding_add(d, sev, check, "replace the link by the file itself",
                           "%s is a symbolic link", path);
        return;
    }
    if ((sb.st_mode & 0077) != 0) {
        char fix[1300];
        snprintf(fix, sizeof(fix), "chmod %s %s", S_ISDIR(sb.st_mode) ? "700" : "600", path);
        doctor_finding_add(d, sev, check, fix, "%s is accessible by other users (mode %03o)", path,
                           (unsigned)(sb.st_mode & 0777));
    }
    if (sb.st_uid != geteuid())
        doctor_finding_add(d, "medium", check, "chown it to the user that runs the server",
                           "%s is owned by uid %u, not by the current user", path,
                           (unsigned)sb.st_uid);
}

static void doctor_tls(struct doctor_findings *d, const char *data)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/tls/server.pem", data);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return; /* behind a proxy, or reported by doctor_mode */
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL) {
        doctor_finding_add(d, "high", "tls", "re-run 'coffer init' or install a valid certificate",
                           "%s is not a PEM certificate", path);
        return;
    }
    time_t soon = time(NULL) + 30 * 86400;
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)
        doctor_finding_add(d, "high", "tls", "install a new server certificate in tls/server.pem",
                           "the server certificate has expired");
    else if (X509_cmp_time(X509_get0_notAfter(x), &soon) <= 0)
        doctor_finding_add(d, "medium", "tls", "install a new server certificate in tls/server.pem",
                           "the server certificate expires within 30 days");
    EVP_PKEY *k = X509_get0_pubkey(x);
    if (k != NULL && EVP_PKEY_base_id(k) == EVP_PKEY_RSA && EVP_PKEY_bits(k) < 2048)
        doctor_finding_add(d, "high", "tls", "use an ECDSA P-256 or RSA >= 2048-bit key",
                           "the server key is RSA with %d bits", EVP_PKEY_bits(k));
    X509_free(x);
}

/* The current KEK past the rotation period is a finding. */
static void doctor_kek_age(struct doctor_findings *d, const char *id, int64_t created, int current,
                           int64_t period, int64_t now)
{
    if (current && now - created > period)
        doctor_finding_add(
            d, "medium", "keys", "run 'coffer keys rotate'",
            "the current KEK %s is %lld days old, past the rotation period of %lld days", id,
            (long long)((now - created) / 86400), (long long)(period / 86400));
}

/* Sealed keyring: its master key file must live outside the data directory. */
static void doctor_master_key(struct doctor_findings *d, const char *data, const char *mkf)
{
    if (mkf == NULL)
        mkf = getenv(MASTERKEY_FILE_ENV);
    if (mkf == NULL || mkf[0] == '\0')
        return;
    if (masterkey_check_outside(mkf, data) == ERR_INVALID)
        doctor_finding_add(d, "high", "keys",
                           "move the master key file outside the data directory (another disk or a "
                           "secrets mount) and pass --master-key-file",
                           "the master key file %s lies inside the data directory it protects",
                           mkf);
}

/* KEK ages through the provider: a PKCS#11 store (keys/provider.json) is
 * opened through its token; a keyring (sealed or not) is read for its
 * public KEK facts only, so no master key is needed. */
static void doctor_keys(struct doctor_findings *d, const char *data, struct meta *m,
                        const char *mkf, int verbose)
{
    int64_t period = 365 * 86400;
    char val[64];
    if (m != NULL && meta_setting_get(m, "keys.rotation_period", val, sizeof(val)) == ERR_OK &&
        strtoll(val, NULL, 10) > 0)
        period = strtoll(val, NULL, 10);
    int64_t now = (int64_t)time(NULL);
    char path[1200];
    snprintf(path, sizeof(path), "%s/" PKCS11_PROVIDER_FILE, data);
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        struct key_provider *kp = NULL;
        if (keys_open_configured(data, NULL, &kp) != ERR_OK) {
            doctor_finding_add(d, "low", "keys",
                               "run doctor where the PKCS#11 module and PIN are set up",
                               "the PKCS#11 token could not be opened; KEK ages were not checked");
            return;
        }
        size_t n = keys_kek_count(kp);
        for (size_t i = 0; i < n; i++) {
            struct keys_kek_info ki;
            if (keys_kek_info(kp, i, &ki) == ERR_OK)
                doctor_kek_age(d, ki.id, ki.created, ki.current, period, now);
        }
        key_provider_free(kp);
        return;
    }
    snprintf(path, sizeof(path), "%s/keys/keyring.json", data);
    json_t *kr = json_load_file(path, 0, NULL);
    if (kr == NULL)
        return; /* permissions or absence reported by doctor_mode */
    int sealed = json_is_string(json_object_get(kr, "sealed"));
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(kr, "keks"), i, k)
    {
        const char *id = json_string_value(json_object_get(k, "id"));
        const char *state = json_string_value(json_object_get(k, "state"));
        if (id != NULL && state != NULL)
            doctor_kek_age(d, id, (int64_t)json_integer_value(json_object_get(k, "created")),
                           strcmp(state, "current") == 0, period, now);
    }
    json_decref(kr);
    if (sealed)
        doctor_master_key(d, data, mkf);
    else if (verbose)
        doctor_finding_add(
            d, "info", "keys",
            "seal the keyring under a master key kept elsewhere ('coffer keys seal') or "
            "use a PKCS#11 token",
            "the keyring's KEKs are stored unsealed beside the data they protect (%s/keys)", data);
}

struct doctor_seen {
    json_t *last; /* {PRINCIPAL: time} */
};

static int doctor_event(void *ctx, uint64_t index, const char *json, size_t len)
{
    (void)index;
    struct doctor_seen *s = ctx;
    struct anomaly_event ev;
    json_t *h = NULL;
    if (anomaly_event_from_json(json, len, 0, &ev, &h) == ERR_OK && ev.principal != NULL &&
        ev.allow)
        json_object_set_new(s->last, ev.principal, json_integer(ev.time));
    json_decref(h);
    return 0;
}

static void doctor_store(struct doctor_findings *d, const char *data, struct meta *m,
                         int dormant_days)
{
    json_t *users = NULL;
    if (meta_user_list(m, &users) != ERR_OK)
        return;
    struct doctor_seen seen = {json_object()};
    char path[1200];
    snprintf(path, sizeof(path), "%s/audit", data);
    audit_iter_dir(path, 0, doctor_event, &seen);
    int64_t now = (int64_t)time(NULL), cutoff = now - (int64_t)dormant_days * 86400;
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u)
    {
        const char *name = json_string_value(json_object_get(u, "name"));
        if (!json_is_true(json_object_get(u, "admin")) ||
            json_is_true(json_object_get(u, "disabled")))
            continue;
        struct meta_user mu;
        int mfa = 0;
        if (meta_user_get(m, name, &mu) == ERR_OK) {
            struct meta_totp t;
            mfa = meta_totp_get(m, mu.id, &t) == ERR_OK && t.confirmed;
            memset(&t, 0, sizeof(t));
            meta_user_clear(&mu);
        }
        if (!mfa)
            doctor_finding_add(d, "high", "mfa", "log in as that user and run 'coffer mfa enroll'",
                               "administrator %s has no multi-factor authentication", name);
        char principal[META_NAME_MAX + 8];
        snprintf(principal, sizeof(principal), "user:%s", name);
        int64_t last = (int64_t)json_integer_value(json_object_get(seen.last, principal));
        if (last < cutoff && json_integer_value(json_object_get(u, "created_at")) < cutoff)
            doctor_finding_add(d, "medium", "dormant", "disable it with 'coffer user disable NAME'",
                               "administrator %s has not been active for %d days", name,
                               dormant_days);
    }
    json_decref(users);
    json_decref(seen.last);
    /* Guardrails. */
    json_t *pols = NULL;
    if (meta_policy_list(m, &pols) == ERR_OK) {
        size_t n;
        const struct authz_builtin *b = authz_builtins(&n);
        for (size_t k = 0; k < n; k++) {
            if (!b[k].global)
                continue;
            int found = 0;
            json_t *p;
            json_array_foreach(pols, i, p)
            {
                const char *pn = json_string_value(json_object_get(p, "name"));
                if (pn != NULL && strcmp(pn, b[k].name) == 0 &&
                    json_is_true(json_object_get(p, "global")))
                    found = 1;
            }
            if (!found)
                doctor_finding_add(
                    d, "high", "guardrails",
                    "restore it: coffer policy put NAME --global FILE (policies/builtin/)",
                    "the global guardrail %s is missing or no longer global", b[k].name);
        }
        json_decref(pols);
    }
    /* Long-lived tokens and share links. */
    json_t *toks = NULL;
    struct app_config cfg;
    app_config_defaults(&cfg, data);
    struct app tmp = {.cfg = cfg};
    int64_t max = apitoken_max_lifetime(&tmp);
    if (meta_apitoken_list(m, 0, &toks) == ERR_OK) {
        json_t *t;
        json_array_foreach(toks, i, t)
        {
            int64_t exp = (int64_t)json_integer_value(json_object_get(t, "expires_at"));
            int64_t cr = (int64_t)json_integer_value(json_object_get(t, "created_at"));
            if (json_integer_value(json_object_get(t, "revoked_at")) > 0 || exp <= now)
                continue;
            if (exp - cr > max)
                doctor_finding_add(
                    d, "medium", "tokens", "revoke it and create one with a shorter expiry",
                    "API token #%lld (%s) lives %lld days, above the maximum of %lld",
                    (long long)json_integer_value(json_object_get(t, "id")),
                    json_string_value(json_object_get(t, "name")), (long long)((exp - cr) / 86400),
                    (long long)(max / 86400));
        }
        json_decref(toks);
    }
    json_t *shares = NULL;
    if (meta_share_list(m, 0, &shares) == ERR_OK) {
        json_t *s;
        json_array_foreach(shares, i, s)
        {
            int64_t exp = (int64_t)json_integer_value(json_object_get(s, "expires_at"));
            int64_t cr = (int64_t)json_integer_value(json_object_get(s, "created_at"));
            if (json_integer_value(json_object_get(s, "revoked_at")) > 0 || exp <= now)
                continue;
            if (exp - cr > 30 * 86400)
                doctor_finding_add(d, "medium", "shares", "revoke it: coffer share revoke ID",
                                   "share link #%lld lives %lld days (more than 30)",
                                   (long long)json_integer_value(json_object_get(s, "id")),
                                   (long long)((exp - cr) / 86400));
        }
        json_decref(shares);
    }
}

/* Checks of the running server (GET /v1/doctor): its findings join the
 * offline ones; *server receives the report (caller decrefs). */
static int doctor_online(struct doctor_findings *d, struct client *c, json_t **server)
{
    int rc = client_setup(c, 1);
    if (rc != 0)
        return rc;
    json_t *rep = NULL;
    if ((rc = client_json(c, "GET", "/v1/doctor", NULL, &rep)) != 0)
        return rc;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(rep, "findings"), i, f)
    {
        const char *sev = json_string_value(json_object_get(f, "severity"));
        const char *check = json_string_value(json_object_get(f, "check"));
        const char *problem = json_string_value(json_object_get(f, "problem"));
        const char *fix = json_string_value(json_object_get(f, "fix"));
        if (sev == NULL || check == NULL || problem == NULL || fix == NULL)
            continue;
        doctor_finding_add(d, sev, check, fix, "%s", problem);
    }
    *server = rep;
    return 0;
}

/* One line on what the running server has in force. */
static void doctor_print_server(const char *url, json_t *rep)
{
    json_t *tls = json_object_get(rep, "tls");
    char protos[128] = "";
    size_t i, off = 0;
    json_t *v;
    json_array_foreach(json_object_get(tls, "protocols"), i, v)
    {
        int n = snprintf(protos + off, sizeof(protos) - off, "%s%s", i > 0 ? "," : "",
                         json_string_value(v));
        if (n < 0 || (size_t)n >= sizeof(protos) - off)
            break;
        off += (size_t)n;
    }
    json_t *audit = json_object_get(rep, "audit");
    json_t *keys = json_object_get(rep, "keys");
    printf("server %s: listen %s, %s%s, seccomp %s, uid %lld, audit %s, key provider %s%s\n", url,
           json_string_value(json_object_get(rep, "listen")),
           json_is_true(json_object_get(tls, "enabled")) ? "TLS " : "TLS at the proxy", protos,
           json_is_true(json_object_get(rep, "seccomp")) ? "on" : "off",
           (long long)json_integer_value(json_object_get(json_object_get(rep, "user"), "uid")),
           json_is_true(json_object_get(audit, "failed_closed")) ? "FAILED CLOSED" : "ok",
           json_string_value(json_object_get(keys, "provider")),
           json_is_true(json_object_get(keys, "sealed")) ? " (sealed)" : "");
}

int cli_doctor(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer doctor [--data DIR] [--server URL] [--dormant-days N]\n"
        "                     [--master-key-file PATH] [--json]\n"
        "Checks a data directory (of a running or stopped server): permissions of the\n"
        "directory and key files, the TLS certificate, KEK age against the rotation period\n"
        "(keyring or PKCS#11 token), where a sealed keyring's master key lives,\n"
        "administrators without MFA or dormant, missing global guardrails, long-lived tokens\n"
        "and share links, and audit log verification. With --server, or without --data\n"
        "(then the stored login is used), it also asks the running server (GET /v1/doctor,\n"
        "admin:Keys or audit:Read) for what is in force: TLS protocols and ciphers, seccomp,\n"
        "the running user, proxy mode and listen address, audit log state, KEK ages and the\n"
        "rotation worker. Prints each finding with its severity and fix; exits 1 when a\n"
        "high-severity finding exists.\n";
    struct args_opt opts[] = {{"--data", 1, 0, {0}, 0},
                              {"--dormant-days", 1, 0, {0}, 0},
                              {"--master-key-file", 1, 0, {0}, 0},
                              {"--verbose", 0, 0, {0}, 0},
                              {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = args_parse(&a, &c, argc, argv, usage);
    if (rc != 0 || a.help)
        return rc;
    const char *data = args_get(&a, "--data");
    int online = c.server[0] != '\0' || data == NULL;
    if (a.npos != 0 || (data != NULL && strlen(data) > 900))
        return cli_usage_error(usage);
    const char *dd = args_get(&a, "--dormant-days");
    int dormant = dd != NULL ? (int)strtol(dd, NULL, 10) : 90;
    if (dormant < 1)
        dormant = 90;
    struct doctor_findings d = {json_array(), 0, 0, 0};
    json_t *server = NULL;
    if (online && (rc = doctor_online(&d, &c, &server)) != 0) {
        if (data == NULL && rc == 3)
            fprintf(stderr, "%s", usage);
        json_decref(d.list);
        return rc;
    }
    struct stat sb;
    if (data != NULL && (stat(data, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
        fprintf(stderr, "coffer: %s is not a data directory\n", data);
        json_decref(server);
        json_decref(d.list);
        return 5;
    }
    if (data != NULL) {
        char path[1200];
        snprintf(path, sizeof(path), "%s/" PKCS11_PROVIDER_FILE, data);
        int token = lstat(path, &sb) == 0;
        doctor_mode(&d, data, ".", "permissions", "high", 1);
        doctor_mode(&d, data, "keys", "permissions", "high", 0);
        if (token)
            doctor_mode(&d, data, PKCS11_PROVIDER_FILE, "keys", "medium", 1);
        else
            doctor_mode(&d, data, "keys/keyring.json", "keys", "high", 1);
        doctor_mode(&d, data, "tls/server.key", "tls", "high", 0);
        doctor_mode(&d, data, "audit/signing.key", "audit", "high", 1);
        doctor_mode(&d, data, "coffer.db", "permissions", "high", 1);
        doctor_mode(&d, data, "monitor.json", "secrets", "medium", 0);
        doctor_mode(&d, data, "authn.json", "secrets", "medium", 0);
        doctor_tls(&d, data);
        snprintf(path, sizeof(path), "%s/coffer.db", data);
        struct meta *m = NULL;
        if (meta_open(path, 0, &m) == ERR_OK) {
            doctor_keys(&d, data, m, args_get(&a, "--master-key-file"), args_has(&a, "--verbose"));
            doctor_store(&d, data, m, dormant);
            meta_close(m);
        } else {
            doctor_finding_add(&d, "high", "store", "check the file and restore it from a backup",
                               "cannot open %s", path);
        }
        snprintf(path, sizeof(path), "%s/audit", data);
        struct audit_verify_report rep;
        enum err e = audit_verify_dir(path, NULL, &rep);
        if (e != ERR_OK)
            doctor_finding_add(&d, "high", "audit",
                               "run 'coffer audit verify --data DIR', keep a copy and investigate",
                               "the audit log fails verification: %s", rep.reason);
        else if (rep.events > rep.last_head_size + 10000)
            doctor_finding_add(&d, "low", "audit",
                               "check that the server signs heads (it does every 60 s)",
                               "%llu events are not yet covered by a signed head",
                               (unsigned long long)(rep.events - rep.last_head_size));
    }
    if (c.json_output) {
        json_t *out = json_pack("{s:O, s:i, s:i, s:i}", "findings", d.list, "high", d.high,
                                "medium", d.medium, "low", d.low);
        if (server != NULL)
            json_object_set(out, "server", server);
        monitor_print_json(out);
        json_decref(out);
    } else {
        if (server != NULL)
            doctor_print_server(c.server, server);
        size_t i;
        json_t *f;
        json_array_foreach(d.list, i, f)
        {
            printf("[%s] %s: %s\n    fix: %s\n", json_string_value(json_object_get(f, "severity")),
                   json_string_value(json_object_get(f, "check")),
                   json_string_value(json_object_get(f, "problem")),
                   json_string_value(json_object_get(f, "fix")));
        }
        printf("%d high, %d medium, %d low\n", d.high, d.medium, d.low);
    }
    json_decref(server);
    json_decref(d.list);
    return d.high > 0 ? 1 : 0;
}
