/*
 * Release environments and their settings, from DATA/environments.json.
 */
#include "app/environments.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/duration.h"
#include "util/file.h"

#define ENV_MAX_DURATION DURATION_TEN_YEARS

static const char env_default_json[] =
    "{\n"
    "  \"environments\": [\n"
    "    {\"name\": \"dev\", \"mfa_for_writes\": false, \"allowed_networks\": [],\n"
    "     \"direct_push\": true, \"approvals_required\": 0},\n"
    "    {\"name\": \"staging\", \"mfa_for_writes\": false, \"allowed_networks\": [],\n"
    "     \"direct_push\": true, \"approvals_required\": 1},\n"
    "    {\"name\": \"prod\", \"mfa_for_writes\": true, \"allowed_networks\": [],\n"
    "     \"direct_push\": true, \"approvals_required\": 2}\n"
    "  ],\n"
    "  \"promotion\": {\"request_lifetime\": \"72h\"},\n"
    "  \"sharing\": {\"default_lifetime\": \"24h\", \"max_lifetime\": \"7d\"}\n"
    "}\n";

int64_t env_parse_duration(const char *text)
{
    int64_t secs;
    return duration_parse(text, ENV_MAX_DURATION, &secs) == 0 ? secs : -1;
}

int env_cidr_parse(const char *text, struct env_cidr *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    size_t n = text != NULL ? strnlen(text, sizeof(buf)) : sizeof(buf);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, text, n + 1);
    memset(out, 0, sizeof(*out));
    char *slash = strchr(buf, '/');
    long prefix = -1;
    if (slash != NULL) {
        *slash = '\0';
        char *end = NULL;
        if (slash[1] < '0' || slash[1] > '9')
            return -1;
        prefix = strtol(slash + 1, &end, 10);
        if (*end != '\0' || end - (slash + 1) > 3)
            return -1;
    }
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = 4;
        if (prefix > 32)
            return -1;
        out->prefix = prefix < 0 ? 32u : (unsigned)prefix;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = 6;
        if (prefix > 128)
            return -1;
        out->prefix = prefix < 0 ? 128u : (unsigned)prefix;
    } else {
        return -1;
    }
    return 0;
}

static int env_prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

int env_cidr_match(const struct env_cidr *c, const char *ip)
{
    uint8_t addr[16];
    if (ip == NULL)
        return 0;
    if (inet_pton(AF_INET, ip, addr) == 1)
        return c->family == 4 && env_prefix_equal(addr, c->addr, c->prefix);
    if (inet_pton(AF_INET6, ip, addr) != 1)
        return 0;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (c->family == 4)
        return memcmp(addr, mapped, sizeof(mapped)) == 0 &&
               env_prefix_equal(addr + 12, c->addr, c->prefix);
    return env_prefix_equal(addr, c->addr, c->prefix);
}

int env_network_allowed(const struct env_settings *s, const char *ip)
{
    if (s->n_networks == 0)
        return 1;
    for (size_t i = 0; i < s->n_networks; i++) {
        if (env_cidr_match(&s->networks[i], ip))
            return 1;
    }
    return 0;
}

const struct env_settings *env_find(const struct env_config *cfg, const char *name)
{
    for (size_t i = 0; cfg != NULL && name != NULL && i < cfg->n; i++) {
        if (strcmp(cfg->envs[i].name, name) == 0)
            return &cfg->envs[i];
    }
    return NULL;
}

/* A duration given as a string ("7d") or an integer number of seconds. */
static int64_t env_json_duration(json_t *v)
{
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        return n > 0 && n <= ENV_MAX_DURATION ? (int64_t)n : -1;
    }
    return json_is_string(v) ? env_parse_duration(json_string_value(v)) : -1;
}

static enum err env_fail(char *why, size_t cap, const char *msg, const char *what)
{
    if (why != NULL && cap > 0)
        snprintf(why, cap, "%s: %.80s", msg, what);
    return ERR_INVALID;
}

static int env_name_known(const char *name)
{
    for (size_t i = 0; path_default_envs[i] != NULL; i++) {
        if (strcmp(path_default_envs[i], name) == 0)
            return 1;
    }
    return 0;
}

static enum err env_parse_one(json_t *o, struct env_settings *s, char *why, size_t cap)
{
    const char *k;
    json_t *v;
    memset(s, 0, sizeof(*s));
    s->direct_push = 1;
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "name") == 0) {
            if (!json_is_string(v) || !env_name_known(json_string_value(v)))
                return env_fail(why, cap, "environment name must be dev, staging or prod",
                                json_is_string(v) ? json_string_value(v) : "?");
            snprintf(s->name, sizeof(s->name), "%s", json_string_value(v));
        } else if (strcmp(k, "mfa_for_writes") == 0 || strcmp(k, "direct_push") == 0) {
            if (!json_is_boolean(v))
                return env_fail(why, cap, "must be true or false", k);
            *(k[0] == 'm' ? &s->mfa_for_writes : &s->direct_push) = json_is_true(v);
        } else if (strcmp(k, "approvals_required") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > ENV_MAX_APPROVALS)
                return env_fail(why, cap, "must be an integer from 0 to 10", k);
            s->approvals_required = (int)json_integer_value(v);
        } else if (strcmp(k, "allowed_networks") == 0) {
            if (!json_is_array(v) || json_array_size(v) > ENV_MAX_NETWORKS)
                return env_fail(why, cap, "must be a list of at most 32 CIDRs", k);
            size_t i;
            json_t *c;
            json_array_foreach(v, i, c)
            {
                if (env_cidr_parse(json_string_value(c), &s->networks[s->n_networks]) != 0)
                    return env_fail(why, cap, "not an IP address or CIDR",
                                    json_is_string(c) ? json_string_value(c) : "?");
                s->n_networks++;
            }
        } else {
            return env_fail(why, cap, "unknown environment setting", k);
        }
    }
    if (s->name[0] == '\0')
        return env_fail(why, cap, "an environment needs a name", "environments");
    return ERR_OK;
}

static enum err env_parse_lifetimes(json_t *root, struct env_config *cfg, char *why, size_t cap)
{
    const char *k;
    json_t *v;
    json_t *promo = json_object_get(root, "promotion");
    json_t *share = json_object_get(root, "sharing");
    if ((promo != NULL && !json_is_object(promo)) || (share != NULL && !json_is_object(share)))
        return env_fail(why, cap, "must be an object", promo != NULL ? "promotion" : "sharing");
    json_object_foreach(promo, k, v)
    {
        if (strcmp(k, "request_lifetime") != 0 ||
            (cfg->request_lifetime = env_json_duration(v)) < 0)
            return env_fail(why, cap, "promotion takes request_lifetime (a duration such as 72h)",
                            k);
    }
    json_object_foreach(share, k, v)
    {
        int64_t d = env_json_duration(v);
        if (d < 0)
            return env_fail(why, cap, "not a duration such as 24h or 7d", k);
        if (strcmp(k, "default_lifetime") == 0)
            cfg->share_default_lifetime = d;
        else if (strcmp(k, "max_lifetime") == 0)
            cfg->share_max_lifetime = d;
        else
            return env_fail(why, cap, "unknown sharing setting", k);
    }
    if (cfg->share_default_lifetime > cfg->share_max_lifetime)
        cfg->share_default_lifetime = cfg->share_max_lifetime;
    return ERR_OK;
}

static enum err env_config_parse(json_t *root, struct env_config *cfg, char *why, size_t cap)
{
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        if (strcmp(k, "environments") != 0 && strcmp(k, "promotion") != 0 &&
            strcmp(k, "sharing") != 0)
            return env_fail(why, cap, "unknown key", k);
    }
    json_t *list = json_object_get(root, "environments");
    if (list != NULL) {
        if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > ENV_MAX)
            return env_fail(why, cap, "must be a non-empty list of environments", "environments");
        cfg->n = 0;
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o)
        {
            if (!json_is_object(o))
                return env_fail(why, cap, "each environment must be an object", "environments");
            enum err e = env_parse_one(o, &cfg->envs[cfg->n], why, cap);
            if (e != ERR_OK)
                return e;
            if (env_find(cfg, cfg->envs[cfg->n].name) != NULL)
                return env_fail(why, cap, "environment listed twice", cfg->envs[cfg->n].name);
            cfg->n++;
        }
    }
    return env_parse_lifetimes(root, cfg, why, cap);
}

void env_config_defaults(struct env_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    json_t *root = json_loads(env_default_json, JSON_REJECT_DUPLICATES, NULL);
    cfg->request_lifetime = 72 * 3600;
    cfg->share_default_lifetime = 24 * 3600;
    cfg->share_max_lifetime = 7 * 86400;
    if (root == NULL || env_config_parse(root, cfg, NULL, 0) != ERR_OK)
        abort(); /* the embedded default is a constant and is tested */
    json_decref(root);
}

enum err env_config_load(const char *data_dir, struct env_config *cfg, char *why, size_t why_cap)
{
    env_config_defaults(cfg);
    char path[1200];
    int n = snprintf(path, sizeof(path), "%s/%s", data_dir, ENV_CONFIG_FILE);
    if (n < 0 || (size_t)n >= sizeof(path))
        return env_fail(why, why_cap, "data directory path too long", data_dir);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT)
            return ERR_OK;
        snprintf(why, why_cap, "cannot read %s", path);
        return ERR_IO;
    }
    if (sb.st_size > 64 * 1024)
        return env_fail(why, why_cap, "file larger than 64 KiB", path);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        snprintf(why, why_cap, "%s: line %d: %.100s", ENV_CONFIG_FILE, jerr.line, jerr.text);
        return ERR_INVALID;
    }
    struct env_config parsed = *cfg;
    enum err e = env_config_parse(root, &parsed, why, why_cap);
    json_decref(root);
    if (e == ERR_OK)
        *cfg = parsed;
    return e;
}

enum err env_config_write_default(const char *data_dir)
{
    char path[1200];
    int n = snprintf(path, sizeof(path), "%s/%s", data_dir, ENV_CONFIG_FILE);
    if (n < 0 || (size_t)n >= sizeof(path))
        return ERR_IO;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? ERR_OK : ERR_IO;
    size_t len = sizeof(env_default_json) - 1;
    int ok = file_write_all(fd, env_default_json, len) == 0 && fsync(fd) == 0;
    close(fd);
    return ok ? ERR_OK : ERR_IO;
}
