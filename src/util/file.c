#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The loop of both writers: write() at the file offset when at_offset is
 * 0, pwrite() at offset otherwise. */
static int write_loop(int fd, const void *data, size_t len, int at_offset, uint64_t offset)
{
    const uint8_t *p = data;
    while (len > 0) {
        if (at_offset && offset > (uint64_t)INT64_MAX - len) {
            errno = EFBIG;
            return -1;
        }
        ssize_t w = at_offset ? pwrite(fd, p, len, (off_t)offset) : write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        len -= (size_t)w;
        offset += (uint64_t)w;
    }
    return 0;
}

int file_write_all(int fd, const void *data, size_t len)
{
    return write_loop(fd, data, len, 0, 0);
}

int file_pwrite_all(int fd, const void *data, size_t len, uint64_t offset)
{
    return write_loop(fd, data, len, 1, offset);
}

int file_sync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        memcpy(dir, ".", 2);
    } else if (slash == path) {
        memcpy(dir, "/", 2);
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof(dir)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int file_replace_private(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkostemp(tmp, O_CLOEXEC); /* O_CREAT|O_EXCL, mode 0600 */
    if (fd < 0)
        return -1;
    if (fchmod(fd, 0600) != 0 || file_write_all(fd, data, len) != 0 ||
        file_write_all(fd, "\n", 1) != 0 || fsync(fd) != 0) {
        int saved = errno;
        close(fd);
        unlink(tmp);
        errno = saved;
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return file_sync_parent(path);
}
