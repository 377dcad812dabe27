/*
 * environments: the release environments of one server (dev, staging and
 * prod by default) and the settings that make each one safe: whether writes
 * need MFA, which source networks may write, whether direct pushes are
 * allowed or only promotions, and how many approvers a promotion into the
 * environment needs. Also holds the lifetimes of promotion requests and
 * share links. Read from DATA/environments.json at server start
 * (format: docs/ENVIRONMENTS.md); a missing file means the defaults.
 */
#ifndef COFFER_APP_ENVIRONMENTS_H
#define COFFER_APP_ENVIRONMENTS_H

#include <stddef.h>
#include <stdint.h>

#include "registry/path.h"
#include "util/err.h"

#define ENV_MAX 8            /* environments per server */
#define ENV_MAX_NETWORKS 32  /* allowed_networks per environment, and CIDRs per share link */
#define ENV_MAX_APPROVALS 10 /* approvals_required upper bound */
#define ENV_CONFIG_FILE "environments.json"

/* An IPv4 or IPv6 network. */
struct env_cidr {
    int family; /* 4 or 6 */
    uint8_t addr[16];
    unsigned prefix;
};

struct env_settings {
    char name[PATH_ENV_MAX + 1];
    int mfa_for_writes;     /* pushes, promotion requests and approvals need MFA */
    int direct_push;        /* 0: versions arrive only by promotion */
    int approvals_required; /* distinct approvers a promotion into this env needs */
    struct env_cidr networks[ENV_MAX_NETWORKS];
    size_t n_networks; /* 0: any source address */
};

struct env_config {
    struct env_settings envs[ENV_MAX];
    size_t n;
    int64_t request_lifetime;       /* seconds a promotion request stays open */
    int64_t share_default_lifetime; /* seconds, when a link names no expiry */
    int64_t share_max_lifetime;     /* seconds, the longest a link may live */
};

/* Fills cfg with the defaults (dev, staging, prod; see docs/ENVIRONMENTS.md). */
void env_config_defaults(struct env_config *cfg);

/* Loads DATA/environments.json into cfg (defaults when the file is absent).
 * Errors: ERR_INVALID with a one-line reason in why (malformed file,
 * unknown key, unknown environment name), ERR_IO. */
enum err env_config_load(const char *data_dir, struct env_config *cfg, char *why, size_t why_cap);

/* Writes the default configuration to DATA/environments.json (mode 0600),
 * unless the file exists. Errors: ERR_IO. */
enum err env_config_write_default(const char *data_dir);

/* The settings of environment name, NULL if it is not configured. */
const struct env_settings *env_find(const struct env_config *cfg, const char *name);

/* Parses "10.0.0.0/8", "2001:db8::/32" or a bare address. 0 ok, -1 invalid. */
int env_cidr_parse(const char *text, struct env_cidr *out);

/* 1 when the textual address ip lies in c (an IPv4-mapped IPv6 address
 * matches IPv4 networks). 0 otherwise, also for an unparsable ip. */
int env_cidr_match(const struct env_cidr *c, const char *ip);

/* 1 when ip may write into s (no networks configured, or one matches). */
int env_network_allowed(const struct env_settings *s, const char *ip);

/* Parses a duration: a number with an optional unit s, m, h, d or w
 * ("30m", "24h", "7d"; a bare number is seconds). Returns the seconds, or
 * -1 when malformed, zero, or longer than ten years. */
int64_t env_parse_duration(const char *text);

#endif
