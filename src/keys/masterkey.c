#include "keys/masterkey.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"
#include "util/log.h"
#include "util/secure.h"

/* A key file holds one short line; anything much larger is not a master key. */
#define MASTERKEY_FILE_MAX 256

static int masterkey_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

enum err masterkey_parse(const char *text, size_t len, uint8_t key[MASTERKEY_LEN])
{
    if (text == NULL || key == NULL)
        return ERR_INVALID;
    while (len > 0 && masterkey_space(text[0])) {
        text++;
        len--;
    }
    while (len > 0 && masterkey_space(text[len - 1]))
        len--;
    if (len == 2 * MASTERKEY_LEN && hex_decode(text, len, key, MASTERKEY_LEN) == 0)
        return ERR_OK;
    /* base64: map the standard alphabet onto the URL one the decoder knows. */
    char b64[2 * MASTERKEY_LEN];
    uint8_t out[MASTERKEY_LEN + 3];
    enum err rc = ERR_INVALID;
    if (len > 0 && len <= sizeof(b64)) {
        for (size_t i = 0; i < len; i++)
            b64[i] = text[i] == '+' ? '-' : text[i] == '/' ? '_' : text[i];
        if (b64url_decode(b64, len, out, sizeof(out)) == MASTERKEY_LEN) {
            memcpy(key, out, MASTERKEY_LEN);
            rc = ERR_OK;
        }
    }
    secure_wipe(b64, sizeof(b64));
    secure_wipe(out, sizeof(out));
    if (rc != ERR_OK)
        secure_wipe(key, MASTERKEY_LEN);
    return rc;
}

enum err masterkey_read_file(const char *path, uint8_t key[MASTERKEY_LEN])
{
    if (path == NULL || key == NULL)
        return ERR_INVALID;
    secure_wipe(key, MASTERKEY_LEN);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            log_error("master key file %s does not exist", path);
            return ERR_NOT_FOUND;
        }
        log_error("master key file %s: cannot open: %s", path, strerror(errno));
        return errno == ELOOP ? ERR_FORBIDDEN : ERR_IO;
    }
    char buf[MASTERKEY_FILE_MAX];
    size_t got = 0;
    enum err rc = ERR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0)
        goto done;
    if (!S_ISREG(st.st_mode)) {
        log_error("master key file %s is not a regular file", path);
        rc = ERR_INVALID;
        goto done;
    }
    if ((st.st_mode & 0077) != 0) {
        log_error("master key file %s has mode %04o that group or others can access; run chmod "
                  "600 on it",
                  path, (unsigned)(st.st_mode & 07777));
        rc = ERR_FORBIDDEN;
        goto done;
    }
    for (;;) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto done;
        if (n == 0)
            break;
        got += (size_t)n;
        if (got == sizeof(buf)) {
            log_error("master key file %s is too large to hold a key", path);
            rc = ERR_INVALID;
            goto done;
        }
    }
    rc = masterkey_parse(buf, got, key);
    if (rc != ERR_OK)
        log_error("master key file %s does not hold a key (64 hex digits or base64 of 32 bytes)",
                  path);
done:
    secure_wipe(buf, sizeof(buf));
    close(fd);
    return rc;
}

enum err masterkey_load(const char *path, uint8_t key[MASTERKEY_LEN], char *source,
                        size_t source_cap)
{
    if (key == NULL)
        return ERR_INVALID;
    const char *where = path;
    enum err rc;
    const char *env = getenv(MASTERKEY_ENV);
    if (path != NULL) {
        rc = masterkey_read_file(path, key);
    } else if (env != NULL && env[0] != '\0') {
        where = "environment variable " MASTERKEY_ENV;
        rc = masterkey_parse(env, strlen(env), key);
        if (rc != ERR_OK)
            log_error("%s does not hold a key (64 hex digits or base64 of 32 bytes)",
                      MASTERKEY_ENV);
    } else if ((where = getenv(MASTERKEY_FILE_ENV)) != NULL && where[0] != '\0') {
        rc = masterkey_read_file(where, key);
    } else {
        return ERR_NOT_FOUND;
    }
    if (rc == ERR_OK && source != NULL && source_cap > 0)
        snprintf(source, source_cap, "%s", where);
    return rc;
}

enum err masterkey_generate_file(const char *path, uint8_t key[MASTERKEY_LEN])
{
    if (path == NULL || key == NULL)
        return ERR_INVALID;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return ERR_CONFLICT;
        log_error("master key file %s: cannot create: %s", path, strerror(errno));
        return ERR_IO;
    }
    char hex[2 * MASTERKEY_LEN + 2];
    enum err rc = ERR_INTERNAL;
    if (secure_random(key, MASTERKEY_LEN) != 0)
        goto fail;
    hex_encode(key, MASTERKEY_LEN, hex);
    hex[2 * MASTERKEY_LEN] = '\n';
    rc = ERR_IO;
    if (file_write_all(fd, hex, 2 * MASTERKEY_LEN + 1) != 0 || fchmod(fd, 0600) != 0 ||
        fsync(fd) != 0)
        goto fail;
    secure_wipe(hex, sizeof(hex));
    if (close(fd) != 0) {
        unlink(path);
        secure_wipe(key, MASTERKEY_LEN);
        return ERR_IO;
    }
    return ERR_OK;
fail:
    log_error("master key file %s: cannot write: %s", path, strerror(errno));
    secure_wipe(hex, sizeof(hex));
    secure_wipe(key, MASTERKEY_LEN);
    close(fd);
    unlink(path);
    return rc;
}

/* Resolves path, or its directory when the file does not exist yet, into out (PATH_MAX). */
static int masterkey_resolve(const char *path, char *out)
{
    if (realpath(path, out) != NULL)
        return 0;
    if (errno != ENOENT)
        return -1;
    char copy[PATH_MAX], dir[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof(copy))
        return -1;
    memcpy(copy, path, len + 1);
    if (realpath(dirname(copy), dir) == NULL)
        return -1;
    memcpy(copy, path, len + 1);
    const char *base = basename(copy);
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, base);
    return n < 0 || n >= PATH_MAX ? -1 : 0;
}

enum err masterkey_check_outside(const char *path, const char *data_dir)
{
    char key_real[PATH_MAX], data_real[PATH_MAX];
    if (path == NULL || data_dir == NULL)
        return ERR_INVALID;
    if (masterkey_resolve(path, key_real) != 0) {
        log_error("master key file %s: cannot resolve its location: %s", path, strerror(errno));
        return ERR_IO;
    }
    if (masterkey_resolve(data_dir, data_real) != 0) {
        log_error("data directory %s: cannot resolve its location: %s", data_dir, strerror(errno));
        return ERR_IO;
    }
    size_t dl = strlen(data_real);
    if (strncmp(key_real, data_real, dl) == 0 && (key_real[dl] == '/' || key_real[dl] == '\0')) {
        log_error("master key file %s is inside the data directory %s; keep it elsewhere (another "
                  "disk, a secrets mount) so a copy of the data directory does not carry its key",
                  path, data_dir);
        return ERR_INVALID;
    }
    return ERR_OK;
}
