#include <stdio.h>

#include "cli/cli.h"

static int cli_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("coffer 0.1.0\n");
    return 0;
}

const struct cli_command cli_commands[] = {
    {"version", cli_version, "print the version"},
    {NULL, NULL, NULL},
};

void cli_usage(void *stream)
{
    FILE *f = stream;
    fprintf(f, "usage: coffer COMMAND [OPTIONS]\n\ncommands:\n");
    for (const struct cli_command *c = cli_commands; c->name != NULL; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\nRun 'coffer COMMAND --help' for the options of a command.\n");
}
