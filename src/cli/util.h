/*
 * CLI helpers shared by the client commands: the start of a command (parse,
 * check the number of arguments, set up the client), one request with its
 * --json or text answer, request paths and queries, times.
 */
#ifndef COFFER_CLI_UTIL_H
#define COFFER_CLI_UTIL_H

#include <jansson.h>
#include <stddef.h>

#include "cli/args.h"

/* Reads one line (the secret) from stdin without echo concerns; strips the
 * trailing newline. 0 on success, -1 if empty, too long or unreadable. */
int cli_read_secret_stdin(char *out, size_t cap);

/* Prints j as indented JSON with sorted keys on stdout (--json output). */
void cli_print_json(json_t *j);

/* Prints usage to stderr and returns 2, the exit code of a usage error. */
int cli_usage_error(const char *usage);

/*
 * Parses argv (args_parse) and checks that the command got between min_pos
 * and max_pos positional arguments. Returns 0 to go on, unless a->help is
 * set (the usage was printed: exit 0); otherwise the exit code (2 after
 * printing the usage).
 */
int cli_parse(struct args *a, struct client *c, int argc, char **argv, const char *usage,
              int min_pos, int max_pos);

/*
 * cli_parse, then client_setup with a required credential. Returns 0 to go
 * on (when a->help is set, the command is done and exits 0) or the exit
 * code to return.
 */
int cli_begin(struct args *a, struct client *c, int argc, char **argv, const char *usage,
              int min_pos, int max_pos);

/*
 * Sends a request with an optional JSON body (which stays the caller's).
 * With --json the answer is printed, freed, and *out is left NULL: the
 * command has nothing more to print. Otherwise *out is the answer, which
 * the caller prints as text and frees with json_decref. Returns 0 or the
 * exit code of the failed request (its error already printed).
 */
int cli_call(struct client *c, const char *method, const char *path, json_t *body, json_t **out);

/*
 * cli_call, then prints the answer as text with print_text when --json is
 * not given, and frees it. Returns 0 or the exit code of the request.
 */
int cli_call_print(struct client *c, const char *method, const char *path, json_t *body,
                   void (*print_text)(json_t *out));

/*
 * GETs path and prints the answer: as JSON with --json, otherwise
 * print_row for each element of the array under key. Returns 0 or the exit
 * code of the request.
 */
int cli_list(struct client *c, const char *path, const char *key, void (*print_row)(json_t *row));

/* Writes prefix, name escaped for a URL (client_escape) and suffix into
 * out, cut to cap bytes like snprintf. */
void cli_path(char *out, size_t cap, const char *prefix, const char *name, const char *suffix);

/* Appends "&name=escaped(value)" (or "?..." when q is empty) to the query
 * in q. 0, or -1 if it does not fit in cap bytes (q is then unchanged or
 * cut) or the value cannot be escaped. */
int cli_query_add(char *q, size_t cap, const char *name, const char *value);

/* Writes the UNIX time t as "2024-05-01T12:00:00Z" (UTC) into out. */
void cli_time_utc(long long t, char *out, size_t cap);

/* cli_time_utc of a JSON integer; "-" when t is not an integer. */
void cli_time_json(json_t *t, char *out, size_t cap);

/* cli_time_utc of t; "never" when t is 0 or less. */
void cli_time_or_never(long long t, char *out, size_t cap);

#endif
