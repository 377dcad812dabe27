#include <stdio.h>

#include "cli/cli.h"

int cli_init(int argc, char **argv);
int cli_server(int argc, char **argv);
int cli_login(int argc, char **argv);
int cli_logout(int argc, char **argv);
int cli_whoami(int argc, char **argv);
int cli_user(int argc, char **argv);
int cli_push(int argc, char **argv);
int cli_pull(int argc, char **argv);
int cli_ls(int argc, char **argv);
int cli_show(int argc, char **argv);
int cli_versions(int argc, char **argv);
int cli_label(int argc, char **argv);
int cli_rm(int argc, char **argv);
int cli_policy(int argc, char **argv);
int cli_role(int argc, char **argv);
int cli_group(int argc, char **argv);
int cli_audit(int argc, char **argv);
int cli_mfa(int argc, char **argv);
int cli_token(int argc, char **argv);
int cli_service(int argc, char **argv);
int cli_oidc(int argc, char **argv);
int cli_alerts(int argc, char **argv);
int cli_review(int argc, char **argv);
int cli_doctor(int argc, char **argv);
int cli_share(int argc, char **argv);
int cli_promote(int argc, char **argv);
int cli_requests(int argc, char **argv);
int cli_approve(int argc, char **argv);
int cli_reject(int argc, char **argv);
int cli_keys(int argc, char **argv);
int cli_erase(int argc, char **argv);
int cli_hold(int argc, char **argv);
int cli_retention(int argc, char **argv);
int cli_fsck(int argc, char **argv);

static int cli_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("coffer 0.1.0\n");
    return 0;
}

const struct cli_command cli_commands[] = {
    {"init", cli_init, "create a data directory (database, keys, TLS, admin)"},
    {"server", cli_server, "run the HTTPS server"},
    {"login", cli_login, "log in and store a session token"},
    {"logout", cli_logout, "revoke and forget the stored session"},
    {"whoami", cli_whoami, "show who you are authenticated as"},
    {"push", cli_push, "upload a file as a new version"},
    {"pull", cli_pull, "download a version (SHA-256 verified)"},
    {"ls", cli_ls, "list artifacts under a prefix"},
    {"show", cli_show, "show a version's metadata and lineage"},
    {"versions", cli_versions, "list the versions of an artifact"},
    {"label", cli_label, "change tags or sensitivity"},
    {"rm", cli_rm, "tombstone a version"},
    {"user", cli_user, "manage users (add, ls, show, disable, passwd)"},
    {"group", cli_group, "manage groups and their members"},
    {"role", cli_role, "list, create, bind and unbind roles"},
    {"policy", cli_policy, "store, list, show, delete and explain policies"},
    {"audit", cli_audit, "read, export, prove and verify the audit log"},
    {"mfa", cli_mfa, "enrol, confirm or disable TOTP multi-factor authentication"},
    {"token", cli_token, "create, list and revoke API tokens (service accounts)"},
    {"service", cli_service, "bind TLS client certificates to service accounts"},
    {"oidc", cli_oidc, "manage trusted OpenID Connect issuers"},
    {"keys", cli_keys, "key status, rotation and automatic rotation"},
    {"erase", cli_erase, "crypto-shred versions (irreversible), leaving a tombstone"},
    {"hold", cli_hold, "set, clear and list legal holds"},
    {"retention", cli_retention, "retention rules and locks; apply them now"},
    {"fsck", cli_fsck, "check (and safely repair) a stopped server's data directory"},
    {"share", cli_share, "create, list and revoke share links"},
    {"promote", cli_promote, "request the promotion of a version to another environment"},
    {"requests", cli_requests, "list promotion requests"},
    {"approve", cli_approve, "approve someone else's promotion request"},
    {"reject", cli_reject, "reject a promotion request"},
    {"alerts", cli_alerts, "list and acknowledge anomaly findings; clear suspensions"},
    {"review", cli_review, "access review: effective access, unused grants; certify"},
    {"doctor", cli_doctor, "check a data directory's security configuration"},
    {"version", cli_version, "print the version"},
    {NULL, NULL, NULL},
};

void cli_usage(void *stream)
{
    FILE *f = stream;
    fprintf(f, "usage: coffer COMMAND [OPTIONS]\n\ncommands:\n");
    for (const struct cli_command *c = cli_commands; c->name != NULL; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\nGlobal options: --server URL (COFFER_SERVER), --ca FILE (COFFER_CA), --json.\n"
               "COFFER_TOKEN overrides stored credentials. Run 'coffer COMMAND --help' for the\n"
               "options of a command.\n");
}
