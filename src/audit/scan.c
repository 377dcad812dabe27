#include "audit/scan.h"

#include "audit/audit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Holds at least one maximal record plus its prefix, and reads in big chunks. */
#define SCAN_BUF_SIZE (4u * 1024 * 1024)

struct scanner {
    struct audit_src *src;
    uint8_t *buf;
    size_t cap, start, end;
    int eof;
};

/* Makes at least `need` bytes available from s->start, unless the source
 * ends first. Returns 0, or -1 on a read error. */
static int scanner_fill(struct scanner *s, size_t need)
{
    if (s->end - s->start >= need || s->eof)
        return 0;
    if (s->start > 0) {
        memmove(s->buf, s->buf + s->start, s->end - s->start);
        s->end -= s->start;
        s->start = 0;
    }
    while (s->end < need && !s->eof) {
        size_t want = s->cap - s->end;
        uint64_t left = s->src->limit - s->src->pos;
        if (left < want)
            want = (size_t)left;
        if (want == 0) {
            s->eof = 1;
            break;
        }
        ssize_t r = pread(s->src->fd, s->buf + s->end, want, (off_t)s->src->pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            s->eof = 1;
        s->end += (size_t)r;
        s->src->pos += (uint64_t)r;
    }
    return 0;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int audit_record_framed(const uint8_t *data, size_t len)
{
    return len >= 2 && data[0] == '{' && data[len - 1] == '}' && memchr(data, '\n', len) == NULL &&
           memchr(data, '\r', len) == NULL && memchr(data, '\0', len) == NULL;
}

/* Reads the rest of the source. Returns 1 if it is all zero bytes, 0 if
 * not, -1 on a read error. */
static int rest_is_zero(struct scanner *s)
{
    for (;;) {
        for (size_t i = s->start; i < s->end; i++)
            if (s->buf[i] != 0)
                return 0;
        s->start = s->end;
        if (scanner_fill(s, 1) != 0)
            return -1;
        if (s->start == s->end)
            return 1;
    }
}

enum err audit_scan(struct audit_src *src, uint64_t first_index, audit_record_fn fn, void *ctx,
                    struct audit_scan_result *res)
{
    struct scanner s = {.src = src};
    memset(res, 0, sizeof(*res));
    if (src->mem != NULL) {
        s.buf = (uint8_t *)src->mem; /* read only: the scanner never writes when eof is set */
        s.cap = s.end = src->mem_len;
        s.eof = 1;
    } else {
        s.buf = malloc(SCAN_BUF_SIZE);
        s.cap = SCAN_BUF_SIZE;
        if (s.buf == NULL)
            return ERR_INTERNAL;
    }
    uint64_t offset = 0, index = first_index;
    enum err rc = ERR_OK;
    for (;;) {
        if (scanner_fill(&s, 4) != 0) {
            rc = ERR_IO;
            break;
        }
        size_t avail = s.end - s.start;
        if (avail == 0)
            break;
        uint32_t len = avail < 4 ? 0 : get_be32(s.buf + s.start);
        if (len == 0) {
            /* The end of the records: only zero bytes may follow. */
            int z = rest_is_zero(&s);
            if (z < 0)
                rc = ERR_IO;
            else if (z == 0 && avail < 4)
                res->torn = 1;
            else if (z == 0)
                res->junk = 1;
            break;
        }
        if (len > AUDIT_EVENT_MAX) {
            res->bad_length = 1;
            break;
        }
        if (scanner_fill(&s, 4 + (size_t)len) != 0) {
            rc = ERR_IO;
            break;
        }
        if (s.end - s.start < 4 + (size_t)len) {
            res->torn = 1;
            break;
        }
        int stop = fn(ctx, index, offset, s.buf + s.start + 4, len);
        s.start += 4 + (size_t)len;
        offset += 4 + (uint64_t)len;
        index++;
        res->records++;
        res->good_end = offset;
        if (stop) {
            res->stopped = 1;
            break;
        }
    }
    if (src->mem == NULL)
        free(s.buf);
    return rc;
}
