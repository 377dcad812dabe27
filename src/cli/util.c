#include "cli/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
