/*
 * Argument checks shared by the request handlers (api/args.h).
 */
#include "api/args.h"

#include <stdlib.h>
#include <string.h>

enum err api_args_fields(struct request *r, const char *const *allowed)
{
    const char *key;
    json_t *val;
    json_object_foreach(r->body_json, key, val)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] != NULL; i++)
            ok |= strcmp(key, allowed[i]) == 0;
        if (!ok)
            return http_fail(r, ERR_INVALID, "unknown field '%.40s'", key);
    }
    return ERR_OK;
}

enum err api_args_id(struct request *r, const char *hint, long long *id)
{
    char *end = NULL;
    *id = strtoll(r->param, &end, 10);
    if (end == r->param || *end != '\0' || *id <= 0)
        return http_fail(r, ERR_INVALID, "%s", hint);
    return ERR_OK;
}

enum err api_args_name(struct request *r, const char *suffix, char *name, size_t cap)
{
    size_t plen = strlen(r->param), slen = strlen(suffix);
    if (plen <= slen || strcmp(r->param + plen - slen, suffix) != 0)
        return http_fail(r, ERR_NOT_FOUND, "no such endpoint");
    if (plen - slen >= cap)
        return http_fail(r, ERR_INVALID, "name longer than %zu bytes", cap - 1);
    memcpy(name, r->param, plen - slen);
    name[plen - slen] = '\0';
    return ERR_OK;
}

int api_args_flag(struct request *r, const char *name)
{
    int dup = 0;
    const char *v = http_query(r, name, &dup);
    return v != NULL && strcmp(v, "0") != 0;
}

int api_args_session_user(const struct request *r)
{
    return strcmp(r->who.type, "user") == 0 && r->who.token_id == 0 && r->who.user_id > 0;
}
