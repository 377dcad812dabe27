/*
 * app: the state one running server shares between its request threads:
 * configuration, stores, key provider and audit log. Built once at start,
 * read-only afterwards except through each component's own thread-safe API.
 */
#ifndef COFFER_APP_APP_H
#define COFFER_APP_APP_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct meta;
struct blob_store;
struct key_provider;
struct audit_log;
struct audit_syslog;
struct keys_rotator;
struct retention_job;
struct env_config;
struct monitor;

struct app_config {
    char data_dir[1024];
    char listen_host[256];
    uint16_t listen_port;
    int behind_proxy; /* plain HTTP on loopback, client IP from X-Forwarded-For */
    unsigned threads; /* worker threads */
    unsigned max_connections;
    unsigned max_per_ip;
    unsigned timeout_seconds;   /* idle connection timeout */
    uint64_t max_upload_bytes;  /* largest accepted artifact */
    size_t max_json_bytes;      /* largest accepted JSON body */
    int64_t session_lifetime;   /* seconds */
    uint32_t segment_size;      /* encryption segment size for new versions */
    int audit_new_segment;      /* start a new audit segment if the log fails verification */
    char master_key_file[1024]; /* sealed keyring's master key; "" = environment or none */
    char client_ca[1024];       /* PEM CAs of TLS client certificates (authn/mtls.h); "" = off */
    int seccomp;                /* 1 when the seccomp filter confines the server */
    char metrics_listen[300];   /* plain-HTTP /metrics address HOST:PORT, "" = none */
};

struct app {
    struct app_config cfg;
    struct meta *meta;
    struct blob_store *blobs;
    struct key_provider *keys;
    struct audit_log *audit;
    struct audit_syslog *audit_syslog; /* forwarding of audit events, NULL if off */
    struct keys_rotator *rotator;      /* KEK rotation worker (keys/rotate.h), NULL if off */
    struct retention_job *retention;   /* retention worker (app/retention.h), NULL if off */
    struct env_config *envs;           /* release environments (app/environments.h) */
    struct monitor *monitor; /* anomaly detection and holds (monitor/monitor.h), NULL if off */
};

/* Fills cfg with defaults for data_dir. */
void app_config_defaults(struct app_config *cfg, const char *data_dir);

/* Opens every component of the data directory, refusing unsafe permissions,
 * and removes leftovers of interrupted uploads. */
enum err app_open(struct app *app);
void app_close(struct app *app);

/* Builds DATA/NAME into out. Returns 0 or -1 if it does not fit. */
int app_path(const struct app_config *cfg, const char *name, char *out, size_t cap);

#endif
