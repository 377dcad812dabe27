/*
 * syslog: forwards audit events to a SIEM as RFC 5424 syslog messages.
 *
 * Each event becomes one message
 *
 *   <PRI>1 TIME HOST coffer PID ACTION [coffer@32473 index="N" decision="D"] EVENT-JSON
 *
 * with facility 13 (log audit), severity 6 (informational) for allowed and
 * 5 (notice) for denied decisions, TIME the event's own time and MSG the
 * event exactly as recorded. Transports: UDP (RFC 5426, one datagram per
 * message), TCP (RFC 6587 octet counting, reconnecting) and a local
 * datagram socket such as /dev/log.
 *
 * Forwarding is a copy for monitoring, never the record: the durable,
 * verifiable log comes first, and a slow or absent collector never delays or
 * fails a request. Messages wait in a bounded queue served by one background
 * thread; when the queue is full new messages are dropped and counted.
 *
 * Thread safety: audit_syslog_send and audit_syslog_stats may be called from
 * any thread; audit_syslog_close only once, when no sender is left.
 */
#ifndef COFFER_AUDIT_SYSLOG_H
#define COFFER_AUDIT_SYSLOG_H

#include "util/err.h"

#include <stddef.h>
#include <stdint.h>

/* Largest message sent over UDP; longer ones are dropped (and counted). */
#define AUDIT_SYSLOG_UDP_MAX 65000
/* Queue bounds: messages and bytes waiting for the collector. */
#define AUDIT_SYSLOG_QUEUE_MAX 10000
#define AUDIT_SYSLOG_QUEUE_BYTES (32u * 1024 * 1024)

struct audit_syslog;

/*
 * Parses target and starts the forwarder:
 *   udp://HOST:PORT   tcp://HOST:PORT   ([V6]:PORT for IPv6 literals)
 *   unix:PATH         a local datagram socket, e.g. unix:/dev/log
 * HOST is resolved once, here. A TCP collector that is down is retried in
 * the background; it does not make this call fail.
 * *out is released with audit_syslog_close.
 * Errors: ERR_INVALID (malformed target, unknown host), ERR_INTERNAL.
 */
enum err audit_syslog_open(const char *target, struct audit_syslog **out);

/*
 * Queues event `index` (the exact JSON line of the log, len bytes) for
 * forwarding and returns at once. s NULL is a no-op.
 */
void audit_syslog_send(struct audit_syslog *s, uint64_t index, const char *event_json, size_t len);

/* audit_syslog_send for audit_log_set_forward: ctx is the struct
 * audit_syslog. Events reach the collector only once they are durable. */
void audit_syslog_forward(void *ctx, uint64_t index, const char *event_json, size_t len);

/*
 * Formats the RFC 5424 message of an event into a new NUL-terminated buffer
 * (*out, caller frees with free). hostname and procid are the HEADER fields.
 * Returns the length, or -1 if event_json is not an audit event object.
 */
long audit_syslog_format(uint64_t index, const char *event_json, size_t len, const char *hostname,
                         long procid, char **out);

struct audit_syslog_stats {
    uint64_t sent;    /* messages handed to the transport */
    uint64_t dropped; /* queue full, too long for UDP, or unformattable */
    uint64_t queued;  /* waiting now */
};

/* Fills st with the counters. */
void audit_syslog_stats(struct audit_syslog *s, struct audit_syslog_stats *st);

/* Sends what is queued (waiting at most about 2 seconds for the collector),
 * stops the thread and frees everything. NULL is a no-op. */
void audit_syslog_close(struct audit_syslog *s);

#endif
