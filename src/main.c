/*
 * coffer: one binary that is both the server (`coffer server`) and the
 * client (every other command). main only dispatches.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

/* Moves global options given before the command (coffer --json ls) behind
 * it, where every command parses them. argv is rearranged in place. */
static void main_hoist_globals(int argc, char **argv)
{
    int i = 1;
    while (i < argc && argv[i][0] == '-' && strcmp(argv[i], "-h") != 0 &&
           strcmp(argv[i], "--help") != 0) {
        int takes = strcmp(argv[i], "--server") == 0 || strcmp(argv[i], "--ca") == 0;
        if (strcmp(argv[i], "--json") != 0 && !takes)
            return;
        i += takes ? 2 : 1;
    }
    if (i <= 1 || i >= argc)
        return;
    /* argv[1..i-1] are globals, argv[i] is the command: rotate it to the front. */
    char *cmd = argv[i];
    memmove(&argv[2], &argv[1], (size_t)(i - 1) * sizeof(*argv));
    argv[1] = cmd;
}

int main(int argc, char **argv)
{
    umask(077);
    main_hoist_globals(argc, argv);
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
