#include "cli/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/secure.h"

int cli_read_secret_stdin(char *out, size_t cap)
{
    if (cap < 2 || fgets(out, (int)cap, stdin) == NULL)
        return -1;
    size_t n = strlen(out);
    if (n == cap - 1 && out[n - 1] != '\n') {
        secure_wipe(out, cap);
        return -1; /* longer than the buffer */
    }
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    if (n == 0)
        return -1;
    return 0;
}

void cli_print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s != NULL) {
        printf("%s\n", s);
        free(s);
    }
}

int cli_usage_error(const char *usage)
{
    fprintf(stderr, "%s", usage);
    return 2;
}

int cli_parse(struct args *a, struct client *c, int argc, char **argv, const char *usage,
              int min_pos, int max_pos)
{
    int rc = args_parse(a, c, argc, argv, usage);
    if (rc != 0 || a->help)
        return rc;
    if (a->npos < min_pos || a->npos > max_pos)
        return cli_usage_error(usage);
    return 0;
}

int cli_begin(struct args *a, struct client *c, int argc, char **argv, const char *usage,
              int min_pos, int max_pos)
{
    int rc = cli_parse(a, c, argc, argv, usage, min_pos, max_pos);
    if (rc != 0 || a->help)
        return rc;
    return client_setup(c, 1);
}

int cli_call(struct client *c, const char *method, const char *path, json_t *body, json_t **out)
{
    *out = NULL;
    int rc = client_json(c, method, path, body, out);
    if (rc != 0)
        return rc;
    if (c->json_output) {
        cli_print_json(*out);
        json_decref(*out);
        *out = NULL;
    }
    return 0;
}

int cli_call_print(struct client *c, const char *method, const char *path, json_t *body,
                   void (*print_text)(json_t *out))
{
    json_t *out;
    int rc = cli_call(c, method, path, body, &out);
    if (rc != 0 || out == NULL)
        return rc;
    print_text(out);
    json_decref(out);
    return 0;
}

int cli_list(struct client *c, const char *path, const char *key, void (*print_row)(json_t *row))
{
    json_t *out;
    int rc = cli_call(c, "GET", path, NULL, &out);
    if (rc != 0 || out == NULL)
        return rc;
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(out, key), i, row)
    {
        print_row(row);
    }
    json_decref(out);
    return 0;
}

void cli_path(char *out, size_t cap, const char *prefix, const char *name, const char *suffix)
{
    char *esc = client_escape(name);
    snprintf(out, cap, "%s%s%s", prefix, esc != NULL ? esc : "", suffix);
    free(esc);
}

int cli_query_add(char *q, size_t cap, const char *name, const char *value)
{
    char *e = client_escape(value);
    if (e == NULL)
        return -1;
    size_t used = strlen(q);
    int n = snprintf(q + used, cap - used, "%s%s=%s", used == 0 ? "?" : "&", name, e);
    free(e);
    return n < 0 || (size_t)n >= cap - used ? -1 : 0;
}

void cli_time_utc(long long t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void cli_time_json(json_t *t, char *out, size_t cap)
{
    if (json_is_integer(t))
        cli_time_utc((long long)json_integer_value(t), out, cap);
    else
        snprintf(out, cap, "-");
}

void cli_time_or_never(long long t, char *out, size_t cap)
{
    if (t > 0)
        cli_time_utc(t, out, cap);
    else
        snprintf(out, cap, "never");
}
