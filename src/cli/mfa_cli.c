/*
 * coffer mfa: enrol, confirm, disable and inspect the caller's TOTP second
 * factor; administrators reset a user's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authn/totp.h"
#include "cli/args.h"
#include "cli/util.h"
#include "cli/cli.h"
#include "util/secure.h"

/* Wipes the secret strings of an answer before it is freed. */
static void mfa_cli_wipe(json_t *out)
{
    static const char *const keys[] = {"secret", "uri", NULL};
    for (int i = 0; keys[i] != NULL; i++) {
        json_t *v = json_object_get(out, keys[i]);
        if (json_is_string(v))
            secure_wipe((char *)json_string_value(v), json_string_length(v));
    }
    json_t *codes = json_object_get(out, "recovery_codes");
    size_t i;
    json_t *c;
    json_array_foreach(codes, i, c)
    {
        secure_wipe((char *)json_string_value(c), json_string_length(c));
    }
}

static int mfa_cli_enroll(struct client *c)
{
    json_t *out = NULL;
    int rc = client_json(c, "POST", "/v1/mfa/enroll", NULL, &out);
    if (rc != 0)
        return rc;
    const char *uri = json_string_value(json_object_get(out, "uri"));
    const char *secret = json_string_value(json_object_get(out, "secret"));
    if (uri == NULL || secret == NULL) {
        json_decref(out);
        fprintf(stderr, "coffer: the server sent no enrolment\n");
        return 1;
    }
    if (c->json_output) {
        cli_print_json(out);
    } else {
        char *qr = totp_qr_terminal(uri);
        printf("Scan this QR code with an authenticator app (or enter the secret by hand):\n\n");
        if (qr != NULL) {
            printf("%s\n", qr);
            secure_free_str(qr);
        }
        printf("URI:    %s\nSecret: %s\n\n", uri, secret);
        printf("Then activate it with: coffer mfa confirm CODE\n");
    }
    mfa_cli_wipe(out);
    json_decref(out);
    return 0;
}

static int mfa_cli_code_call(struct client *c, const char *path, const char *code, json_t **out)
{
    json_t *body = json_pack("{s:s}", "code", code);
    int rc = client_json(c, "POST", path, body, out);
    json_decref(body);
    return rc;
}

static void mfa_cli_status(json_t *out)
{
    printf("MFA %s; %lld recovery codes left; this session %s MFA\n",
           json_is_true(json_object_get(out, "enrolled"))  ? "active"
           : json_is_true(json_object_get(out, "pending")) ? "pending confirmation"
                                                           : "not enrolled",
           (long long)json_integer_value(json_object_get(out, "recovery_codes_left")),
           json_is_true(json_object_get(out, "session_mfa")) ? "has" : "has no");
}

int cli_mfa(int argc, char **argv)
{
    static const char usage[] =
        "usage: coffer mfa enroll              start TOTP enrolment (prints a QR code)\n"
        "       coffer mfa confirm CODE        activate it; prints ten recovery codes once\n"
        "       coffer mfa disable CODE        remove it (a current code or a recovery code)\n"
        "       coffer mfa status\n"
        "       coffer mfa reset USER          administrators: remove a user's MFA\n";
    struct args_opt opts[] = {{NULL, 0, 0, {0}, 0}};
    struct client c = {0};
    struct args a = {opts, {0}, 0, 0};
    int rc = cli_begin(&a, &c, argc, argv, usage, 1, ARGS_MAX_POS);
    if (rc != 0 || a.help)
        return rc;
    const char *sub = a.pos[0];
    json_t *out = NULL;
    if (strcmp(sub, "enroll") == 0 && a.npos == 1)
        return mfa_cli_enroll(&c);
    if (strcmp(sub, "confirm") == 0 && a.npos == 2) {
        if ((rc = mfa_cli_code_call(&c, "/v1/mfa/confirm", a.pos[1], &out)) != 0)
            return rc;
        if (c.json_output) {
            cli_print_json(out);
        } else {
            printf("Multi-factor authentication is active. Recovery codes (each works once; "
                   "store them safely, they are not shown again):\n");
            size_t i;
            json_t *code;
            json_array_foreach(json_object_get(out, "recovery_codes"), i, code)
            {
                printf("  %s\n", json_string_value(code));
            }
        }
        mfa_cli_wipe(out);
    } else if (strcmp(sub, "disable") == 0 && a.npos == 2) {
        if ((rc = mfa_cli_code_call(&c, "/v1/mfa/disable", a.pos[1], &out)) != 0)
            return rc;
        if (!c.json_output)
            printf("Multi-factor authentication removed\n");
    } else if (strcmp(sub, "status") == 0 && a.npos == 1) {
        return cli_call_print(&c, "GET", "/v1/mfa", NULL, mfa_cli_status);
    } else if (strcmp(sub, "reset") == 0 && a.npos == 2) {
        json_t *body = json_pack("{s:s}", "user", a.pos[1]);
        rc = client_json(&c, "POST", "/v1/mfa/reset", body, &out);
        json_decref(body);
        if (rc != 0)
            return rc;
        if (!c.json_output)
            printf("Removed multi-factor authentication of %s and revoked its sessions\n",
                   a.pos[1]);
    } else {
        return cli_usage_error(usage);
    }
    json_decref(out);
    return 0;
}
