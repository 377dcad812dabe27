/*
 * metrics_http: a second, plain-HTTP listener that serves only GET /metrics
 * (the Prometheus text of monitor_metrics_text) without authentication, for
 * a Prometheus scraper on the same host. It listens on a loopback address
 * only (127.0.0.0/8 or ::1); any other address is refused. Every other path
 * is 404 and every other method 405. Scrapes are not audited.
 */
#ifndef COFFER_MONITOR_METRICS_HTTP_H
#define COFFER_MONITOR_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct app;
struct MHD_Daemon;

/*
 * Splits "HOST:PORT" or "[V6]:PORT" (numeric host) into host (host_cap
 * bytes) and *port. Returns ERR_OK, or ERR_INVALID when malformed or when
 * HOST is not a loopback address.
 */
enum err metrics_http_parse(const char *listen, char *host, size_t host_cap, uint16_t *port);

/*
 * Binds and listens on listen ("HOST:PORT", port 0 picks a free one), before
 * the server gives up root; *bound receives the port bound.
 * Errors: ERR_INVALID (address, see metrics_http_parse), ERR_IO (cannot bind).
 */
enum err metrics_http_listen(const char *listen, int *fd, unsigned *bound);

/* Serves app's metrics on the socket from metrics_http_listen (the daemon
 * owns it). On success *out is stopped with metrics_http_stop; app must
 * outlive it. ERR_IO if the daemon cannot start. */
enum err metrics_http_start(struct app *app, int fd, struct MHD_Daemon **out);

/* Stops the listener (waits for its connections). NULL is a no-op. */
void metrics_http_stop(struct MHD_Daemon *d);

#endif
