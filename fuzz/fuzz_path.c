/*
 * Fuzz target for artifact paths, references and listing prefixes: the
 * input is an untrusted string as it arrives in a request path, a query
 * argument (prefix, parent) or on the command line. The first byte picks
 * the environments: even, the defaults; odd, a custom list. Whatever the
 * parsers accept must respect the product's rules, and a reference that
 * parses must format back to text that parses to the same reference.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/path.h"

static const char *const fuzz_envs[] = {"dev", "qa", "prod-eu", NULL};

static int fuzz_segment_ok(const char *seg, size_t len)
{
    if (len == 0 || len > PATH_SEGMENT_MAX)
        return 0;
    if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
        return 0;
    return 1;
}

/* Checks the invariants of an accepted path. */
static void fuzz_check_path(const struct artifact_path *p)
{
    size_t np = strlen(p->project), ne = strlen(p->env), nn = strlen(p->name);
    if (np == 0 || np > PATH_PROJECT_MAX || ne == 0 || nn == 0 || nn > PATH_NAME_MAX)
        abort();
    if (strlen(p->full) != np + ne + nn + 2 || strncmp(p->full, p->project, np) != 0 ||
        p->full[np] != '/' || strncmp(p->full + np + 1, p->env, ne) != 0 ||
        p->full[np + 1 + ne] != '/' || strcmp(p->full + np + ne + 2, p->name) != 0)
        abort();
    const char *s = p->name;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash != NULL ? (size_t)(slash - s) : strlen(s);
        if (!fuzz_segment_ok(s, len))
            abort();
        if (slash == NULL)
            break;
        s = slash + 1;
    }
    for (const char *c = p->full; *c != '\0'; c++) {
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '@' || *c == '%')
            abort();
    }
}

static void fuzz_check_ref(const char *text, const char *const *envs)
{
    struct artifact_ref ref, again;
    char why[256];
    if (ref_parse(text, envs, &ref, why, sizeof(why)) != ERR_OK) {
        if (why[0] == '\0')
            abort(); /* every refusal says why */
        return;
    }
    fuzz_check_path(&ref.path);
    if (ref.kind == REF_NUMBER && (ref.version == 0 || ref.version > (1ULL << 53)))
        abort();
    char out[REF_MAX + 32];
    if (ref_format(&ref, out, sizeof(out)) != 0)
        abort();
    if (ref_parse(out, envs, &again, why, sizeof(why)) != ERR_OK)
        abort();
    if (strcmp(again.path.full, ref.path.full) != 0 || again.kind != ref.kind ||
        again.version != ref.version || strcmp(again.sha256, ref.sha256) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 4096)
        return 0;
    const char *const *envs = (data[0] & 1) ? fuzz_envs : NULL;
    char *text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';

    struct artifact_path p;
    char why[256];
    if (path_parse(text, envs, &p, why, sizeof(why)) == ERR_OK) {
        fuzz_check_path(&p);
        /* A path is also a prefix of itself. */
        if (path_prefix_check(text, why, sizeof(why)) != ERR_OK)
            abort();
    }
    fuzz_check_ref(text, envs);
    (void)path_prefix_check(text, why, sizeof(why));
    free(text);
    return 0;
}
