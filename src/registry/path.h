/*
 * path: parsing and validation of artifact paths (PROJECT/ENV/NAME) and
 * references (PATH, PATH@N, PATH@latest, PATH@sha256:HEX), as defined in
 * the product contract. Used by both the server and the client, so that
 * hostile input is refused before it reaches storage or the network.
 */
#ifndef COFFER_REGISTRY_PATH_H
#define COFFER_REGISTRY_PATH_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define PATH_PROJECT_MAX 63
#define PATH_ENV_MAX 32
#define PATH_NAME_MAX 512
#define PATH_SEGMENT_MAX 128
#define PATH_FULL_MAX (PATH_PROJECT_MAX + PATH_ENV_MAX + PATH_NAME_MAX + 2)
#define REF_MAX (PATH_FULL_MAX + 80)

struct artifact_path {
    char project[PATH_PROJECT_MAX + 1];
    char env[PATH_ENV_MAX + 1];
    char name[PATH_NAME_MAX + 1];
    char full[PATH_FULL_MAX + 1];
};

enum ref_kind { REF_LATEST, REF_NUMBER, REF_SHA256, REF_COUNT_ /* internal */ };

struct artifact_ref {
    struct artifact_path path;
    enum ref_kind kind;
    uint64_t version;     /* REF_NUMBER only */
    char sha256[65];      /* REF_SHA256 only: lower-case hex */
    int explicit_version; /* 1 when the text carried an '@' */
};

/* The default environments; envs arguments below are NULL-terminated lists,
 * and NULL means this default. */
extern const char *const path_default_envs[];

/* Parses s as PROJECT/ENV/NAME. On failure returns ERR_INVALID and writes a
 * one-line reason into why (if why_len > 0). */
enum err path_parse(const char *s, const char *const *envs, struct artifact_path *out, char *why,
                    size_t why_len);

/* Parses s as a reference. Versions are 1..2^53. */
enum err ref_parse(const char *s, const char *const *envs, struct artifact_ref *out, char *why,
                   size_t why_len);

/* Validates a listing prefix: empty, or a leading part of a path that may end
 * in '/' or in a partial segment. Same character rules as paths. */
enum err path_prefix_check(const char *s, char *why, size_t why_len);

/* Formats ref as text into out (cap bytes). Returns 0, or -1 if it does not fit. */
int ref_format(const struct artifact_ref *ref, char *out, size_t cap);

#endif
