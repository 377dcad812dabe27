/*
 * File-system blob store.
 */
#include "blob/blob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"
#include "util/log.h"
#include "util/secure.h"

#define BLOB_WRITEBACK_CHUNK (8u << 20)

struct blob_store {
    char dir[2048];
};

int blob_id_valid(const char *id)
{
    if (id == NULL || strlen(id) != BLOB_ID_LEN)
        return 0;
    for (size_t i = 0; i < BLOB_ID_LEN; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    }
    return 1;
}

static enum err blob_mkdir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        log_error("cannot create %s: %s", path, strerror(errno));
        return ERR_IO;
    }
    return ERR_OK;
}

static enum err blob_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ERR_IO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? ERR_OK : ERR_IO;
}

enum err blob_fs_open(const char *dir, struct blob_store **out)
{
    struct blob_store *bs = calloc(1, sizeof(*bs));
    if (bs == NULL)
        return ERR_INTERNAL;
    int n = snprintf(bs->dir, sizeof(bs->dir), "%s", dir);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
    if (n < 0 || (size_t)n >= sizeof(bs->dir) - 64 || blob_mkdir(dir) != ERR_OK ||
        blob_mkdir(tmp) != ERR_OK) {
        free(bs);
        return ERR_IO;
    }
    *out = bs;
    return ERR_OK;
}

void blob_fs_close(struct blob_store *bs)
{
    free(bs);
}

static void blob_final_path(const struct blob_store *bs, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%.2s/%s", bs->dir, id, id);
}

enum err blob_upload_begin(struct blob_store *bs, struct blob_upload *up)
{
    uint8_t raw[BLOB_ID_LEN / 2];
    memset(up, 0, sizeof(*up));
    up->fd = -1;
    if (secure_random(raw, sizeof(raw)) != 0)
        return ERR_INTERNAL;
    hex_encode(raw, sizeof(raw), up->blob_id);
    snprintf(up->tmp_path, sizeof(up->tmp_path), "%s/tmp/%s.part", bs->dir, up->blob_id);
    up->fd = open(up->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (up->fd < 0) {
        log_error("cannot create upload file: %s", strerror(errno));
        return ERR_IO;
    }
    return ERR_OK;
}

int blob_upload_write(void *ctx, const uint8_t *buf, size_t len)
{
    struct blob_upload *up = ctx;
    if (up->failed || up->fd < 0)
        return -1;
    if (up->limit > 0 && (len > up->limit || up->written > up->limit - len)) {
        up->failed = 1;
        return -1;
    }
    if (file_write_all(up->fd, buf, len) != 0) {
        log_error("upload write failed: %s", strerror(errno));
        up->failed = 1;
        return -1;
    }
    up->written += (uint64_t)len;
    /* Start write-back as the upload streams, so that the fsync at commit
     * has little left to do and a large upload is answered promptly. */
    if (up->written - up->flushed >= BLOB_WRITEBACK_CHUNK) {
        sync_file_range(up->fd, (off64_t)up->flushed, (off64_t)(up->written - up->flushed),
                        SYNC_FILE_RANGE_WRITE);
        up->flushed = up->written;
    }
    return 0;
}

enum err blob_upload_commit(struct blob_store *bs, struct blob_upload *up)
{
    if (up->failed || up->fd < 0)
        return ERR_IO;
    if (fsync(up->fd) != 0) {
        log_error("upload fsync failed: %s", strerror(errno));
        return ERR_IO;
    }
    close(up->fd);
    up->fd = -1;
    char sub[4200], final[4300];
    snprintf(sub, sizeof(sub), "%s/%.2s", bs->dir, up->blob_id);
    if (blob_mkdir(sub) != ERR_OK)
        return ERR_IO;
    blob_final_path(bs, up->blob_id, final, sizeof(final));
    if (rename(up->tmp_path, final) != 0) {
        log_error("cannot move upload into place: %s", strerror(errno));
        return ERR_IO;
    }
    up->tmp_path[0] = '\0';
    if (blob_fsync_dir(sub) != ERR_OK || blob_fsync_dir(bs->dir) != ERR_OK)
        return ERR_IO;
    return ERR_OK;
}

void blob_upload_abort(struct blob_upload *up)
{
    if (up->fd >= 0) {
        close(up->fd);
        up->fd = -1;
    }
    if (up->tmp_path[0] != '\0') {
        unlink(up->tmp_path);
        up->tmp_path[0] = '\0';
    }
}

enum err blob_remove(struct blob_store *bs, const char *blob_id)
{
    if (!blob_id_valid(blob_id))
        return ERR_INVALID;
    char final[4300];
    blob_final_path(bs, blob_id, final, sizeof(final));
    if (unlink(final) != 0 && errno != ENOENT)
        return ERR_IO;
    return ERR_OK;
}

enum err blob_open_read(struct blob_store *bs, const char *blob_id, int *fd, uint64_t *size)
{
    if (!blob_id_valid(blob_id))
        return ERR_INVALID;
    char final[4300];
    blob_final_path(bs, blob_id, final, sizeof(final));
    int f = open(final, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (f < 0)
        return errno == ENOENT ? ERR_NOT_FOUND : ERR_IO;
    struct stat sb;
    if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(f);
        return ERR_IO;
    }
    *fd = f;
    *size = (uint64_t)sb.st_size;
    return ERR_OK;
}

static unsigned blob_clean_dir(const char *path, int tmp,
                               int (*is_referenced)(const char *, void *), void *ctx)
{
    unsigned removed = 0;
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char file[4400];
        snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
        if (tmp || (blob_id_valid(de->d_name) && !is_referenced(de->d_name, ctx))) {
            if (unlink(file) == 0)
                removed++;
        }
    }
    closedir(d);
    return removed;
}

enum err blob_cleanup(struct blob_store *bs, int (*is_referenced)(const char *blob_id, void *ctx),
                      void *ctx, unsigned *removed)
{
    char path[4200];
    unsigned n = 0;
    snprintf(path, sizeof(path), "%s/tmp", bs->dir);
    n += blob_clean_dir(path, 1, is_referenced, ctx);
    DIR *d = opendir(bs->dir);
    if (d == NULL)
        return ERR_IO;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != 2 || strcmp(de->d_name, "..") == 0 || de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", bs->dir, de->d_name);
        n += blob_clean_dir(path, 0, is_referenced, ctx);
    }
    closedir(d);
    *removed = n;
    return ERR_OK;
}
