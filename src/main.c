/*
 * coffer: one binary that is both the server (`coffer server`) and the
 * client (every other command). main only dispatches.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
    umask(077);
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        cli_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (const struct cli_command *c = cli_commands; c->name != NULL; c++) {
        if (strcmp(c->name, argv[1]) == 0)
            return c->run(argc - 1, argv + 1);
    }
    fprintf(stderr, "coffer: unknown command '%s'; run 'coffer --help' for the list\n", argv[1]);
    return 2;
}
