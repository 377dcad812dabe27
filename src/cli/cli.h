/*
 * cli: the client and administrative commands of the coffer binary.
 * Each command family lives in its own file and has the signature
 * int cli_NAME(int argc, char **argv), returning the process exit code
 * (see util/err.h for the mapping).
 */
#ifndef COFFER_CLI_CLI_H
#define COFFER_CLI_CLI_H

struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

/* The table of top-level commands, terminated by a {NULL} row. */
extern const struct cli_command cli_commands[];

/* Prints the top-level usage to stream. */
void cli_usage(void *stream);

#endif
