/*
 * CLI helpers shared by the client commands.
 */
#ifndef COFFER_CLI_UTIL_H
#define COFFER_CLI_UTIL_H

#include <jansson.h>
#include <stddef.h>

/* Reads one line (the secret) from stdin without echo concerns; strips the
 * trailing newline. 0 on success, -1 if empty, too long or unreadable. */
int cli_read_secret_stdin(char *out, size_t cap);

/* Prints j as indented JSON with sorted keys on stdout (--json output). */
void cli_print_json(json_t *j);

#endif
