#include "cli/args.h"

#include <stdio.h>
#include <string.h>

static struct args_opt *args_find(const struct args *a, const char *name)
{
    for (struct args_opt *o = a->opts; o != NULL && o->name != NULL; o++) {
        if (strcmp(o->name, name) == 0)
            return o;
    }
    return NULL;
}

int args_parse(struct args *a, struct client *c, int argc, char **argv, const char *usage)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            printf("%s", usage);
            a->help = 1;
            return 0;
        }
        int g = client_global_option(c, argc, argv, &i);
        if (g < 0) {
            fprintf(stderr, "coffer: %s needs a value\n%s", s, usage);
            return 2;
        }
        if (g > 0)
            continue;
        if (s[0] == '-' && s[1] != '\0') {
            struct args_opt *o = args_find(a, s);
            if (o == NULL) {
                fprintf(stderr, "coffer: unknown option %s\n%s", s, usage);
                return 2;
            }
            if (o->count > 0 && !o->multi) {
                fprintf(stderr, "coffer: %s given more than once\n", s);
                return 2;
            }
            if (o->count >= ARGS_MAX_MULTI) {
                fprintf(stderr, "coffer: %s given too many times\n", s);
                return 2;
            }
            const char *v = "";
            if (o->takes_value) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "coffer: %s needs a value\n%s", s, usage);
                    return 2;
                }
                v = argv[++i];
            }
            o->values[o->count++] = v;
            continue;
        }
        if (a->npos >= ARGS_MAX_POS) {
            fprintf(stderr, "coffer: too many arguments\n%s", usage);
            return 2;
        }
        a->pos[a->npos++] = s;
    }
    return 0;
}

const struct args_opt *args_opt(const struct args *a, const char *name)
{
    return args_find(a, name);
}

const char *args_get(const struct args *a, const char *name)
{
    const struct args_opt *o = args_find(a, name);
    return o != NULL && o->count > 0 ? o->values[o->count - 1] : NULL;
}

int args_has(const struct args *a, const char *name)
{
    const struct args_opt *o = args_find(a, name);
    return o != NULL && o->count > 0;
}
