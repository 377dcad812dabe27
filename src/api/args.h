/*
 * args: checks of a request's arguments that many handlers share: the
 * fields a JSON body may have, a numeric id or a name in the route
 * parameter, a yes/no query argument, and whether the caller is a user
 * logged in with a session. Each check that fails answers the request
 * (http_fail) and returns the error; none of them authorises anything.
 */
#ifndef COFFER_API_ARGS_H
#define COFFER_API_ARGS_H

#include <stddef.h>

#include "http/http.h"

/* Rejects a body (r->body_json) that has a field not in allowed, a
 * NULL-terminated list: ERR_INVALID "unknown field 'KEY'". ERR_OK otherwise,
 * also when there is no body. */
enum err api_args_fields(struct request *r, const char *const *allowed);

/* Parses the route parameter as a positive decimal id with nothing after
 * it into *id. ERR_INVALID with the message hint (which says where the id
 * comes from) otherwise. */
enum err api_args_id(struct request *r, const char *hint, long long *id);

/* Splits "NAME" + suffix off the route parameter into name (cap bytes with
 * the NUL). ERR_NOT_FOUND "no such endpoint" when the parameter does not end
 * in suffix after at least one byte of name, ERR_INVALID when the name does
 * not fit. The caller validates the name. */
enum err api_args_name(struct request *r, const char *suffix, char *name, size_t cap);

/* 1 when query argument name is present with a value other than "0". */
int api_args_flag(struct request *r, const char *name);

/* 1 when the caller is a user authenticated by a session (not a service
 * account, an API token or a share link), with a known user id. */
int api_args_session_user(const struct request *r);

#endif
