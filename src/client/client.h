/*
 * client: the HTTP client used by the CLI, over libcurl. It finds the server,
 * CA and credential (flags, then COFFER_SERVER / COFFER_CA / COFFER_TOKEN,
 * then the stored login), streams uploads and downloads, and turns error
 * responses into one-line messages and exit codes.
 */
#ifndef COFFER_CLIENT_CLIENT_H
#define COFFER_CLIENT_CLIENT_H

#include <jansson.h>
#include <stddef.h>

struct client {
    char server[512];
    char ca[1024];
    char token[4096];
    char user[80];
    int json_output;
};

/* Global options every client command accepts. Returns 1 if argv[*i] was one
 * (advancing *i past its value), 0 if not, -1 on a missing value. */
int client_global_option(struct client *c, int argc, char **argv, int *i);

/* Fills in what flags did not give from the environment and the stored
 * credentials. need_token: fail with exit 3 if no credential is found.
 * Returns 0 or an exit code. */
int client_setup(struct client *c, int need_token);

/* Sends a request with an optional JSON body and parses a JSON answer into
 * *out (may be NULL for 204). Returns 0 or the exit code, having printed the
 * error. */
int client_json(struct client *c, const char *method, const char *path, json_t *body, json_t **out);

/* Uploads a file as the body of PUT path. */
int client_upload(struct client *c, const char *path, const char *file, json_t **out);

/* Downloads GET path into out_file (or stdout for "-"), verifying the SHA-256
 * announced by the server before the file is moved into place. */
int client_download(struct client *c, const char *path, const char *out_file);

/* Credential store under $XDG_CONFIG_HOME/coffer (mode 0700/0600). */
int client_store_save(const struct client *c);
int client_store_clear(void);

/* Escapes s for a query string; caller frees with free(). */
char *client_escape(const char *s);

/* Prints a one-line error "coffer: MSG" to stderr. */
void client_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
