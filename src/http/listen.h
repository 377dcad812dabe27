#ifndef COFFER_HTTP_LISTEN_H
#define COFFER_HTTP_LISTEN_H

#include <stdint.h>

/*
 * A TCP socket bound to the numeric IPv4 or IPv6 address host and port
 * (0: any free port), listening, close-on-exec; *bound receives the port.
 * Returns the descriptor, or -1 with errno set (EINVAL: host is not a
 * numeric address). The caller closes it or hands it to a daemon.
 */
int http_listen_socket(const char *host, uint16_t port, uint16_t *bound);

#endif
