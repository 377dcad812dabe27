/*
 * login, logout, whoami and user administration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/util.h"
#include "util/secure.h"

/* Stores the credential of a new login, then wipes the token from c. The
 * CA path is stored absolute so that later commands work from any
 * directory. 0, or non-zero when it could not be saved. */
static int account_save(struct client *c)
{
    if (c->ca[0] != '\0' && c->ca[0] != '/') {
        char *abs = realpath(c->ca, NULL);
        if (abs != NULL && strlen(abs) < sizeof(c->ca))
            snprintf(c->ca, sizeof(c->ca), "%s", abs);
        free(abs);
    }
    int rc = client_store_save(c);
    secure_wipe(c->token, sizeof(c->token));
    return rc;
}

/* coffer login --otp CODE without --user: steps the stored session up to MFA. */
static int cli_login_step_up(struct client *c, const char *otp)
{
    int rc = client_setup(c, 1);
    if (rc != 0)
        return rc;
    json_t *body = json_pack("{s:s}", "otp", otp);
    json_t *out;
    rc = cli_call(c, "POST", "/v1/auth/mfa", body, &out);
    json_decref(body);
    if (out != NULL)
        printf("Session stepped up with multi-factor authentication\n");
    json_decref(out);
    return rc;
}

/* coffer login --oidc-token-stdin: checks a JWT from a trusted issuer with
 * whoami and stores it as the credential. */
static int cli_login_oidc(struct client *c)
{
    int rc = client_setup(c, 0);
    if (rc != 0)
        return rc;
    if (cli_read_secret_stdin(c->token, sizeof(c->token)) != 0) {
        fprintf(stderr, "coffer: could not read a token from stdin\n");
        return 2;
    }
    json_t *out = NULL;
    rc = client_json(c, "GET", "/v1/auth/whoami", NULL, &out);
    if (rc != 0) {
        secure_wipe(c->token, sizeof(c->token));
        return rc;
    }
    const char *who = json_string_value(json_object_get(out, "principal"));
    snprintf(c->user, sizeof(c->user), "%s", who != NULL ? who : "");
    rc = account_save(c);
    if (rc != 0) {
        json_decref(out);
        fprintf(stderr, "coffer: the token is valid, but it could not be saved\n");
        return 1;
    }
    if (c->json_output)
        cli_print_json(out);
    else
        printf("Logged in to %s as %s:%s with an OIDC token\n", c->server,
               json_string_value(json_object_get(out, "type")), c->user);
    json_decref(out);
    return 0;
}

int cli_login(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer login --server URL [--ca FILE] --user NAME [--password-stdin] [--otp CODE]\n"
        "       coffer login --otp CODE                 (step the current session up to MFA)\n"
        "       coffer login --server URL [--ca FILE] --oidc-token-stdin\n"
        "Exchanges a password (and, once MFA is enrolled, a one-time or recovery code)\n"
        "for a session token, stored mode 0600 under $XDG_CONFIG_HOME/coffer (default\n"
        "~/.config/coffer). --oidc-token-stdin stores a JWT from a trusted issuer instead.\n";
    struct args_opt opts[] = {{"--user", 1, 0, {0}, 0},
                              {"--password-stdin", 0, 0, {0}, 0},
                              {"--otp", 1, 0, {0}, 0},
                              {"--oidc-token-stdin", 0, 0, {0}, 0},
                              {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = args_parse(&a, &c, argc, argv, usage);
    if (rc != 0 || a.help)
        return rc;
    const char *user = args_get(&a, "--user");
    const char *otp = args_get(&a, "--otp");
    if (a.npos == 0 && args_has(&a, "--oidc-token-stdin") && user == NULL && otp == NULL &&
        !args_has(&a, "--password-stdin"))
        return cli_login_oidc(&c);
    if (a.npos == 0 && user == NULL && otp != NULL && !args_has(&a, "--password-stdin"))
        return cli_login_step_up(&c, otp);
    if (user == NULL || a.npos != 0 || args_has(&a, "--oidc-token-stdin"))
        return cli_usage_error(usage);
    char password[1100];
    if (args_has(&a, "--password-stdin")) {
        if (cli_read_secret_stdin(password, sizeof(password)) != 0) {
            fprintf(stderr, "coffer: could not read a password from stdin\n");
            return 2;
        }
    } else {
        char *p = getpass("Password: ");
        if (p == NULL || strlen(p) >= sizeof(password)) {
            fprintf(stderr, "coffer: could not read a password\n");
            return 2;
        }
        snprintf(password, sizeof(password), "%s", p);
        secure_wipe(p, strlen(p));
    }
    /* A new login never reuses an old token. */
    rc = client_setup(&c, 0);
    c.token[0] = '\0';
    if (rc != 0) {
        secure_wipe(password, sizeof(password));
        return rc;
    }
    json_t *body = json_pack("{s:s, s:s}", "user", user, "password", password);
    secure_wipe(password, sizeof(password));
    if (otp != NULL)
        json_object_set_new(body, "otp", json_string(otp));
    json_t *out = NULL;
    rc = client_json(&c, "POST", "/v1/auth/login", body, &out);
    json_t *pw = json_object_get(body, "password");
    if (pw != NULL)
        secure_wipe((char *)json_string_value(pw), json_string_length(pw));
    json_decref(body);
    if (rc != 0)
        return rc;
    const char *token = json_string_value(json_object_get(out, "token"));
    if (token == NULL || strlen(token) >= sizeof(c.token)) {
        json_decref(out);
        fprintf(stderr, "coffer: the server sent no token\n");
        return 1;
    }
    snprintf(c.token, sizeof(c.token), "%s", token);
    snprintf(c.user, sizeof(c.user), "%s", user);
    rc = account_save(&c);
    if (rc != 0) {
        json_decref(out);
        fprintf(stderr, "coffer: logged in, but the credentials could not be saved\n");
        return 1;
    }
    if (c.json_output)
        printf("{\"user\": \"%s\", \"expires_at\": %lld}\n", user,
               (long long)json_integer_value(json_object_get(out, "expires_at")));
    else
        printf("Logged in to %s as %s%s\n", c.server, user,
               json_is_true(json_object_get(out, "mfa")) ? " with MFA" : "");
    json_decref(out);
    return 0;
}

int cli_logout(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer logout\nRevokes the stored session and forgets it.\n";
    struct args_opt opts[] = {{NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 0, ARGS_MAX_POS);
    if (rc != 0 || a.help)
        return rc;
    rc = client_json(&c, "POST", "/v1/auth/logout", NULL, NULL);
    /* Forget the local credential even if the server already dropped it; keep
     * the server and CA so that the next 'coffer login' needs only the user. */
    secure_wipe(c.token, sizeof(c.token));
    if (client_store_save(&c) != 0 && client_store_clear() != 0)
        fprintf(stderr, "coffer: could not remove the stored credentials\n");
    if (rc == 0 && !c.json_output)
        printf("Logged out\n");
    return rc == 3 ? 0 : rc;
}

static void whoami_print(json_t *out)
{
    char *groups = json_dumps(json_object_get(out, "groups"), JSON_COMPACT);
    printf("%s:%s (clearance %s, via %s%s) groups %s\n",
           json_string_value(json_object_get(out, "type")),
           json_string_value(json_object_get(out, "principal")),
           json_string_value(json_object_get(out, "clearance")),
           json_string_value(json_object_get(out, "auth_method")),
           json_is_true(json_object_get(out, "mfa")) ? ", MFA" : "",
           groups != NULL ? groups : "[]");
    free(groups);
}

int cli_whoami(int argc, char **argv)
{
    static const char usage[] = "usage: coffer whoami\n";
    struct args_opt opts[] = {{NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 0, ARGS_MAX_POS);
    if (rc != 0 || a.help)
        return rc;
    return cli_call_print(&c, "GET", "/v1/auth/whoami", NULL, whoami_print);
}

static int parse_attrs(const struct args_opt *o, json_t *attrs)
{
    for (int i = 0; o != NULL && i < o->count; i++) {
        const char *eq = strchr(o->values[i], '=');
        if (eq == NULL || eq == o->values[i]) {
            fprintf(stderr, "coffer: --attr takes key=value\n");
            return 2;
        }
        char key[80];
        size_t kl = (size_t)(eq - o->values[i]);
        if (kl >= sizeof(key)) {
            fprintf(stderr, "coffer: attribute key too long\n");
            return 2;
        }
        memcpy(key, o->values[i], kl);
        key[kl] = '\0';
        json_object_set_new(attrs, key, json_string(eq + 1));
    }
    return 0;
}

static void print_user(json_t *u)
{
    char *attrs = json_dumps(json_object_get(u, "attrs"), JSON_COMPACT | JSON_SORT_KEYS);
    printf("%-20s clearance=%-12s %s%s attrs=%s\n", json_string_value(json_object_get(u, "name")),
           json_string_value(json_object_get(u, "clearance")),
           json_is_true(json_object_get(u, "admin")) ? "admin " : "",
           json_is_true(json_object_get(u, "disabled")) ? "DISABLED" : "active",
           attrs != NULL ? attrs : "{}");
    free(attrs);
}

int cli_user(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer user add NAME [--clearance S] [--attr k=v]... [--admin] [--password-stdin]\n"
        "       coffer user ls | user show NAME | user disable NAME\n"
        "       coffer user passwd NAME [--password-stdin]   (own password: also asks the "
        "current one)\n";
    struct args_opt opts[] = {{"--clearance", 1, 0, {0}, 0},
                              {"--attr", 1, 1, {0}, 0},
                              {"--admin", 0, 0, {0}, 0},
                              {"--password-stdin", 0, 0, {0}, 0},
                              {NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 1, ARGS_MAX_POS);
    if (rc != 0 || a.help)
        return rc;
    const char *sub = a.pos[0];
    json_t *out = NULL;
    char path[512];
    if (strcmp(sub, "ls") == 0 && a.npos == 1) {
        return cli_list(&c, "/v1/users", "users", print_user);
    } else if (strcmp(sub, "add") == 0 && a.npos == 2) {
        json_t *body = json_pack("{s:s}", "name", a.pos[1]);
        if (args_has(&a, "--clearance"))
            json_object_set_new(body, "clearance", json_string(args_get(&a, "--clearance")));
        json_t *attrs = json_object();
        if ((rc = parse_attrs(args_opt(&a, "--attr"), attrs)) != 0) {
            json_decref(attrs);
            json_decref(body);
            return rc;
        }
        json_object_set_new(body, "attrs", attrs);
        if (args_has(&a, "--admin"))
            json_object_set_new(body, "admin", json_true());
        if (args_has(&a, "--password-stdin")) {
            char pw[1100];
            if (cli_read_secret_stdin(pw, sizeof(pw)) != 0) {
                json_decref(body);
                fprintf(stderr, "coffer: could not read a password from stdin\n");
                return 2;
            }
            json_object_set_new(body, "password", json_string(pw));
            secure_wipe(pw, sizeof(pw));
        }
        rc = cli_call_print(&c, "POST", "/v1/users", body, print_user);
        json_decref(body);
        return rc;
    } else if ((strcmp(sub, "show") == 0 || strcmp(sub, "disable") == 0) && a.npos == 2) {
        int show = strcmp(sub, "show") == 0;
        cli_path(path, sizeof(path), "/v1/users/", a.pos[1], show ? "" : "/disable");
        if ((rc = cli_call(&c, show ? "GET" : "POST", path, NULL, &out)) != 0)
            return rc;
        if (out != NULL && show)
            print_user(out);
        else if (out != NULL)
            printf("Disabled %s and revoked its sessions\n", a.pos[1]);
    } else if (strcmp(sub, "passwd") == 0 && a.npos == 2) {
        char pw[1100], cur[1100] = "";
        int self = c.user[0] != '\0' && strcmp(c.user, a.pos[1]) == 0;
        if (args_has(&a, "--password-stdin")) {
            if (self && cli_read_secret_stdin(cur, sizeof(cur)) != 0) {
                fprintf(stderr, "coffer: give the current password then the new one on stdin\n");
                return 2;
            }
            if (cli_read_secret_stdin(pw, sizeof(pw)) != 0) {
                fprintf(stderr, "coffer: could not read a password from stdin\n");
                return 2;
            }
        } else {
            fprintf(stderr, "coffer: use --password-stdin\n");
            return 2;
        }
        json_t *body = json_pack("{s:s}", "password", pw);
        if (self)
            json_object_set_new(body, "current_password", json_string(cur));
        secure_wipe(pw, sizeof(pw));
        secure_wipe(cur, sizeof(cur));
        cli_path(path, sizeof(path), "/v1/users/", a.pos[1], "/password");
        rc = cli_call(&c, "PUT", path, body, &out);
        json_decref(body);
        if (rc != 0)
            return rc;
        if (out != NULL)
            printf("Password changed for %s\n", a.pos[1]);
    } else {
        return cli_usage_error(usage);
    }
    json_decref(out);
    return 0;
}
