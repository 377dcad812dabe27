#include "registry/path.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *const path_default_envs[] = {"dev", "staging", "prod", NULL};

static enum err path_fail(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum err path_fail(char *why, size_t why_len, const char *fmt, ...)
{
    if (why != NULL && why_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return ERR_INVALID;
}

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static int is_punct_ok(char c)
{
    return c == '.' || c == '_' || c == '-';
}

/* PROJECT: [a-z0-9][a-z0-9._-]{0,62} */
static int project_valid(const char *s, size_t len)
{
    if (len == 0 || len > PATH_PROJECT_MAX || !is_lower_alnum(s[0]))
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (!is_lower_alnum(s[i]) && !is_punct_ok(s[i]))
            return 0;
    }
    return 1;
}

/* One NAME segment: [A-Za-z0-9][A-Za-z0-9._-]{0,127}. A segment starting
 * with an alphanumeric can never be "." or "..". */
static int segment_valid(const char *s, size_t len)
{
    if (len == 0 || len > PATH_SEGMENT_MAX || !is_alnum(s[0]))
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (!is_alnum(s[i]) && !is_punct_ok(s[i]))
            return 0;
    }
    return 1;
}

static int env_known(const char *s, size_t len, const char *const *envs)
{
    if (envs == NULL)
        envs = path_default_envs;
    for (size_t i = 0; envs[i] != NULL; i++) {
        if (strlen(envs[i]) == len && memcmp(envs[i], s, len) == 0)
            return 1;
    }
    return 0;
}

static enum err path_parse_n(const char *s, size_t len, const char *const *envs,
                             struct artifact_path *out, char *why, size_t why_len)
{
    if (len > PATH_FULL_MAX)
        return path_fail(why, why_len, "path is longer than %d bytes", PATH_FULL_MAX);
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return path_fail(why, why_len, "path contains a space, control or non-ASCII character");
    }
    const char *slash1 = memchr(s, '/', len);
    if (slash1 == NULL)
        return path_fail(why, why_len, "path must have the form PROJECT/ENV/NAME");
    size_t plen = (size_t)(slash1 - s);
    const char *env = slash1 + 1;
    const char *slash2 = memchr(env, '/', len - plen - 1);
    if (slash2 == NULL)
        return path_fail(why, why_len, "path must have the form PROJECT/ENV/NAME");
    size_t elen = (size_t)(slash2 - env);
    const char *name = slash2 + 1;
    size_t nlen = len - plen - elen - 2;

    if (!project_valid(s, plen))
        return path_fail(why, why_len,
                         "invalid project: use 1-63 of a-z 0-9 . _ -, starting with a-z or 0-9");
    if (elen > PATH_ENV_MAX || !env_known(env, elen, envs))
        return path_fail(why, why_len, "unknown environment '%.*s' (use dev, staging or prod)",
                         (int)(elen > PATH_ENV_MAX ? PATH_ENV_MAX : elen), env);
    if (nlen == 0)
        return path_fail(why, why_len, "missing artifact name after PROJECT/ENV/");
    if (nlen > PATH_NAME_MAX)
        return path_fail(why, why_len, "artifact name is longer than %d bytes", PATH_NAME_MAX);
    size_t start = 0;
    for (size_t i = 0; i <= nlen; i++) {
        if (i == nlen || name[i] == '/') {
            if (!segment_valid(name + start, i - start))
                return path_fail(why, why_len,
                                 "invalid name segment: each segment is 1-128 of A-Z a-z 0-9 . _ "
                                 "-, starting with a letter or digit (no empty, '.' or '..')");
            start = i + 1;
        }
    }
    memcpy(out->project, s, plen);
    out->project[plen] = '\0';
    memcpy(out->env, env, elen);
    out->env[elen] = '\0';
    memcpy(out->name, name, nlen);
    out->name[nlen] = '\0';
    memcpy(out->full, s, len);
    out->full[len] = '\0';
    return ERR_OK;
}

enum err path_parse(const char *s, const char *const *envs, struct artifact_path *out, char *why,
                    size_t why_len)
{
    if (s == NULL)
        return path_fail(why, why_len, "missing path");
    size_t len = strnlen(s, PATH_FULL_MAX + 1);
    return path_parse_n(s, len, envs, out, why, why_len);
}

static int parse_version_number(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 16 || s[0] == '0')
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (1ULL << 53))
        return -1;
    *out = v;
    return 0;
}

enum err ref_parse(const char *s, const char *const *envs, struct artifact_ref *out, char *why,
                   size_t why_len)
{
    if (s == NULL)
        return path_fail(why, why_len, "missing reference");
    size_t len = strnlen(s, REF_MAX + 1);
    if (len > REF_MAX)
        return path_fail(why, why_len, "reference is longer than %d bytes", REF_MAX);
    memset(out, 0, sizeof(*out));
    const char *at = memchr(s, '@', len);
    size_t plen = at != NULL ? (size_t)(at - s) : len;
    enum err e = path_parse_n(s, plen, envs, &out->path, why, why_len);
    if (e != ERR_OK)
        return e;
    if (at == NULL) {
        out->kind = REF_LATEST;
        return ERR_OK;
    }
    out->explicit_version = 1;
    const char *v = at + 1;
    size_t vlen = len - plen - 1;
    if (vlen == 6 && memcmp(v, "latest", 6) == 0) {
        out->kind = REF_LATEST;
        return ERR_OK;
    }
    if (vlen > 7 && memcmp(v, "sha256:", 7) == 0) {
        if (vlen != 7 + 64)
            return path_fail(why, why_len, "a content address is sha256: and 64 hex digits");
        for (size_t i = 7; i < vlen; i++) {
            char c = v[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                return path_fail(why, why_len, "a content address is sha256: and 64 hex digits");
            out->sha256[i - 7] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
        }
        out->sha256[64] = '\0';
        out->kind = REF_SHA256;
        return ERR_OK;
    }
    if (parse_version_number(v, vlen, &out->version) != 0)
        return path_fail(why, why_len,
                         "invalid version: use PATH@N (N >= 1), PATH@latest or PATH@sha256:HEX");
    out->kind = REF_NUMBER;
    return ERR_OK;
}

enum err path_prefix_check(const char *s, char *why, size_t why_len)
{
    if (s == NULL)
        return path_fail(why, why_len, "missing prefix");
    size_t len = strnlen(s, PATH_FULL_MAX + 1);
    if (len > PATH_FULL_MAX)
        return path_fail(why, why_len, "prefix is longer than %d bytes", PATH_FULL_MAX);
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '/') {
            if (!is_alnum(s[i]) && !is_punct_ok(s[i]))
                return path_fail(why, why_len,
                                 "invalid character in prefix: use A-Z a-z 0-9 . _ - and /");
            continue;
        }
        size_t seg = i - start;
        /* Only the final segment may be empty (a trailing '/' or an empty prefix). */
        if (seg == 0 && i < len)
            return path_fail(why, why_len, "empty segment in prefix");
        if (seg > 0 && !is_alnum(s[start]))
            return path_fail(why, why_len, "each prefix segment must start with a letter or digit");
        start = i + 1;
    }
    return ERR_OK;
}

int ref_format(const struct artifact_ref *ref, char *out, size_t cap)
{
    int n;
    switch (ref->kind) {
    case REF_NUMBER:
        n = snprintf(out, cap, "%s@%llu", ref->path.full, (unsigned long long)ref->version);
        break;
    case REF_SHA256:
        n = snprintf(out, cap, "%s@sha256:%s", ref->path.full, ref->sha256);
        break;
    default:
        n = snprintf(out, cap, "%s@latest", ref->path.full);
        break;
    }
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}
