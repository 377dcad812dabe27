/*
 * args: a small option parser for client commands, so every command accepts
 * the global options (--server, --ca, --json) anywhere on its line.
 */
#ifndef COFFER_CLI_ARGS_H
#define COFFER_CLI_ARGS_H

#include "client/client.h"

#define ARGS_MAX_POS 8
#define ARGS_MAX_MULTI 64

struct args_opt {
    const char *name; /* "--kind" */
    int takes_value;
    int multi; /* may repeat */
    const char *values[ARGS_MAX_MULTI];
    int count;
};

struct args {
    struct args_opt *opts; /* terminated by name NULL */
    const char *pos[ARGS_MAX_POS];
    int npos;
    int help;
};

/* Parses argv[1..]. Returns 0, or 2 after printing a usage error. */
int args_parse(struct args *a, struct client *c, int argc, char **argv, const char *usage);

/* The value of an option (last one), or NULL. */
const char *args_get(const struct args *a, const char *name);
int args_has(const struct args *a, const char *name);
const struct args_opt *args_opt(const struct args *a, const char *name);

#endif
