/*
 * coffer fsck: offline consistency check (and safe repair) of a stopped
 * server's data directory.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/fsck.h"
#include "cli/cli.h"

int cli_fsck(int argc, char **argv);

static void fsck_usage(FILE *f)
{
    fprintf(f, "usage: coffer fsck --data DIR [--repair] [--deep] [--json]\n\n"
               "Checks a stopped server's data directory: every version's blob exists, has\n"
               "exactly the size its content implies and authenticates under its data key\n"
               "(--deep: decrypts everything and compares each SHA-256); metadata and blobs\n"
               "agree (no orphan blobs, no leftover temporary uploads); the database passes\n"
               "SQLite's integrity check; the audit log verifies. --repair deletes leftover\n"
               "temporary uploads and orphan blobs; nothing else is ever changed.\n"
               "Exit status: 0 clean, 7 integrity problems remain, 6 a server is running on\n"
               "DIR, 5 DIR is not a data directory.\n");
}

struct fsck_cli {
    int json;
    json_t *findings;
};

static void fsck_cli_note(void *ctx, const char *severity, const char *text)
{
    struct fsck_cli *c = ctx;
    if (c->json)
        json_array_append_new(c->findings,
                              json_pack("{s:s, s:s}", "severity", severity, "text", text));
    else
        printf("%s: %s\n", severity, text);
}

static void fsck_cli_print(const struct fsck_cli *c, const struct fsck_report *rep, enum err e)
{
    if (!c->json) {
        printf("fsck: %llu version(s), %llu verified, %llu erased; %llu blob(s); %llu audit "
               "event(s) %s; %llu problem(s), %llu repaired\n",
               (unsigned long long)rep->versions, (unsigned long long)rep->verified,
               (unsigned long long)rep->erased, (unsigned long long)rep->blobs,
               (unsigned long long)rep->audit_events, rep->audit_ok ? "verified" : "NOT verified",
               (unsigned long long)rep->problems, (unsigned long long)rep->repaired);
        return;
    }
    json_t *o = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:O}", "ok", e == ERR_OK,
                          "versions", (json_int_t)rep->versions, "verified",
                          (json_int_t)rep->verified, "erased", (json_int_t)rep->erased, "blobs",
                          (json_int_t)rep->blobs, "problems", (json_int_t)rep->problems, "repaired",
                          (json_int_t)rep->repaired, "audit_events", (json_int_t)rep->audit_events,
                          "audit_ok", rep->audit_ok, "findings", c->findings);
    char *s = o != NULL ? json_dumps(o, JSON_INDENT(2)) : NULL;
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

int cli_fsck(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'}, {"repair", no_argument, NULL, 'r'},
        {"deep", no_argument, NULL, 'D'},       {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    const char *data = NULL;
    struct fsck_options o = {0, 0};
    struct fsck_cli c = {0, NULL};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            data = optarg;
            break;
        case 'r':
            o.repair = 1;
            break;
        case 'D':
            o.deep = 1;
            break;
        case 'j':
            c.json = 1;
            break;
        case 'h':
            fsck_usage(stdout);
            return 0;
        default:
            fsck_usage(stderr);
            return 2;
        }
    }
    if (data == NULL || optind != argc || strlen(data) > 1900) {
        fsck_usage(stderr);
        return 2;
    }
    c.findings = json_array();
    if (c.findings == NULL)
        return 1;
    struct fsck_report rep;
    enum err e = fsck_run(data, &o, fsck_cli_note, &c, &rep);
    if (e == ERR_CONFLICT) {
        fprintf(stderr, "coffer fsck: a coffer server is using %s; stop it first\n", data);
    } else if (e == ERR_NOT_FOUND) {
        fprintf(stderr,
                "coffer fsck: %s is not a data directory; give the --data of "
                "'coffer init'\n",
                data);
    } else {
        fsck_cli_print(&c, &rep, e);
        if (e != ERR_OK && !c.json)
            fprintf(stderr, "coffer fsck: %s has integrity problems (listed above)%s\n", data,
                    rep.leftovers > 0 && !o.repair ? "; --repair deletes leftover files" : "");
    }
    json_decref(c.findings);
    return err_info(e)->exit_code;
}
