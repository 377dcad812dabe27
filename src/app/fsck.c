/*
 * Offline consistency check and safe repair of a data directory (see
 * app/fsck.h).
 */
#include "app/fsck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "blob/blob.h"
#include "crypt/envelope.h"
#include "crypt/stream.h"
#include "keys/keyring.h"
#include "meta/fsck_store.h"
#include "util/secure.h"

#define FSCK_PATH_CAP 4400

struct fsck {
    char dir[2048];
    const struct fsck_options *opt;
    fsck_note_fn note;
    void *ctx;
    struct fsck_report *rep;
    struct meta *meta;
    struct key_provider *keys;
    struct blob_store *blobs;
    char **ids; /* blob ids of versions that are not erased, sorted */
    size_t n_ids, cap_ids;
    int oom;
};

static void fsck_say(struct fsck *f, const char *severity, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fsck_say(struct fsck *f, const char *severity, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (strcmp(severity, "problem") == 0)
        f->rep->problems++;
    else if (strcmp(severity, "repaired") == 0)
        f->rep->repaired++;
    if (f->note != NULL)
        f->note(f->ctx, severity, line);
}

static int fsck_id_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void fsck_id_add(struct fsck *f, const char *id)
{
    if (f->n_ids == f->cap_ids) {
        size_t ncap = f->cap_ids ? f->cap_ids * 2 : 256;
        char **n = realloc(f->ids, ncap * sizeof(*n));
        if (n == NULL) {
            f->oom = 1;
            return;
        }
        f->ids = n;
        f->cap_ids = ncap;
    }
    f->ids[f->n_ids] = strdup(id);
    if (f->ids[f->n_ids] == NULL)
        f->oom = 1;
    else
        f->n_ids++;
}

static int fsck_id_known(const struct fsck *f, const char *id)
{
    return f->n_ids > 0 && bsearch(&id, f->ids, f->n_ids, sizeof(*f->ids), fsck_id_cmp) != NULL;
}

static int fsck_hash_sink(void *ctx, const uint8_t *buf, size_t len)
{
    return EVP_DigestUpdate(ctx, buf, len) == 1 ? 0 : -1;
}

/* Decrypts the whole blob and compares the plaintext's SHA-256. */
static enum err fsck_deep(int fd, const uint8_t dek[32], const struct fsck_version_row *row)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return ERR_INTERNAL;
    }
    enum err e =
        stream_decrypt_fd(fd, dek, (const uint8_t *)row->blob_id, BLOB_ID_LEN, fsck_hash_sink, md);
    uint8_t digest[32];
    unsigned int dlen = 0;
    if (e == ERR_OK && EVP_DigestFinal_ex(md, digest, &dlen) != 1)
        e = ERR_INTERNAL;
    EVP_MD_CTX_free(md);
    if (e != ERR_OK)
        return e;
    char hex[65];
    hex_encode(digest, sizeof(digest), hex);
    return strcmp(hex, row->sha256) == 0 ? ERR_OK : ERR_INTEGRITY;
}

/* Authenticates the header and first segment (and everything with deep). */
static void fsck_content(struct fsck *f, const struct fsck_version_row *row, int fd,
                         uint64_t file_size, const uint8_t dek[32])
{
    uint8_t header[STREAM_HEADER_LEN];
    if (file_size < STREAM_HEADER_LEN ||
        pread(fd, header, sizeof(header), 0) != (ssize_t)sizeof(header)) {
        fsck_say(f, "problem", "%s: blob %s is too short to hold a stream header", row->ref,
                 row->blob_id);
        return;
    }
    struct stream_reader *rd = NULL;
    if (stream_reader_new(&rd, dek, (const uint8_t *)row->blob_id, BLOB_ID_LEN, header,
                          sizeof(header), file_size) != ERR_OK) {
        fsck_say(f, "problem",
                 "%s: blob %s has a malformed header or a size (%llu bytes) no "
                 "stream can have",
                 row->ref, row->blob_id, (unsigned long long)file_size);
        return;
    }
    uint64_t plain = stream_reader_plaintext_size(rd);
    size_t sealed = stream_reader_segment_sealed_len(rd, 0);
    uint64_t off = stream_reader_segment_offset(rd, 0);
    uint8_t *buf = plain == row->size ? malloc(sealed) : NULL;
    enum err e = ERR_INTEGRITY;
    if (plain != row->size) {
        fsck_say(f, "problem", "%s: blob %s holds %llu bytes of content, metadata says %llu",
                 row->ref, row->blob_id, (unsigned long long)plain, (unsigned long long)row->size);
    } else if (buf == NULL) {
        fsck_say(f, "problem", "%s: out of memory", row->ref);
    } else if (pread(fd, buf, sealed, (off_t)off) != (ssize_t)sealed) {
        fsck_say(f, "problem", "%s: cannot read blob %s: %s", row->ref, row->blob_id,
                 strerror(errno));
    } else {
        size_t n = 0;
        e = stream_reader_open_segment(rd, 0, buf, sealed, buf, sealed, &n);
        if (e != ERR_OK)
            fsck_say(f, "problem", "%s: blob %s does not authenticate under its data key", row->ref,
                     row->blob_id);
    }
    if (buf != NULL) {
        secure_wipe(buf, sealed);
        free(buf);
    }
    stream_reader_free(rd);
    if (e == ERR_OK && f->opt->deep) {
        e = fsck_deep(fd, dek, row);
        if (e != ERR_OK)
            fsck_say(f, "problem", "%s: content of blob %s %s", row->ref, row->blob_id,
                     e == ERR_INTEGRITY ? "does not decrypt to its recorded SHA-256"
                                        : "cannot be read in full");
    }
    if (e == ERR_OK)
        f->rep->verified++;
}

static int fsck_version(const struct fsck_version_row *row, void *ctx)
{
    struct fsck *f = ctx;
    f->rep->versions++;
    if (row->erased) {
        f->rep->erased++;
        return 0;
    }
    if (!blob_id_valid(row->blob_id)) {
        fsck_say(f, "problem", "%s: the recorded blob id is malformed", row->ref);
        return 0;
    }
    fsck_id_add(f, row->blob_id);
    int fd = -1;
    uint64_t size = 0;
    enum err e = blob_open_read(f->blobs, row->blob_id, &fd, &size);
    if (e != ERR_OK) {
        fsck_say(f, "problem", "%s: blob %s is %s", row->ref, row->blob_id,
                 e == ERR_NOT_FOUND ? "missing" : "unreadable");
        return 0;
    }
    uint8_t dek[ENVELOPE_DEK_LEN];
    if (f->keys == NULL) {
        /* Already reported: without the keyring nothing can be authenticated. */
    } else if (envelope_unwrap(f->keys, row->kek_id, row->wrapped, row->wrapped_len,
                               (const uint8_t *)row->blob_id, BLOB_ID_LEN, dek) != ERR_OK) {
        fsck_say(f, "problem", "%s: its data key does not unwrap with KEK %s", row->ref,
                 row->kek_id);
    } else {
        fsck_content(f, row, fd, size, dek);
    }
    secure_wipe(dek, sizeof(dek));
    close(fd);
    return 0;
}

/* Deletes path under repair, or reports it. */
static void fsck_leftover(struct fsck *f, const char *path, const char *what)
{
    f->rep->leftovers++;
    if (!f->opt->repair) {
        fsck_say(f, "problem", "%s %s (run with --repair to delete it)", what, path);
        return;
    }
    if (unlink(path) == 0)
        fsck_say(f, "repaired", "deleted %s %s", what, path);
    else
        fsck_say(f, "problem", "cannot delete %s %s: %s", what, path, strerror(errno));
}

static void fsck_scan_tmp(struct fsck *f, const char *blobs)
{
    char path[FSCK_PATH_CAP];
    snprintf(path, sizeof(path), "%s/tmp", blobs);
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char file[FSCK_PATH_CAP];
        snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
        fsck_leftover(f, file, "leftover temporary upload");
    }
    closedir(d);
}

static void fsck_scan_sub(struct fsck *f, const char *blobs, const char *sub)
{
    char path[FSCK_PATH_CAP];
    snprintf(path, sizeof(path), "%s/%s", blobs, sub);
    DIR *d = opendir(path);
    if (d == NULL) {
        fsck_say(f, "problem", "unexpected entry %s in the blob store", path);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char file[FSCK_PATH_CAP];
        snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
        struct stat sb;
        int regular = lstat(file, &sb) == 0 && S_ISREG(sb.st_mode);
        if (!regular || !blob_id_valid(de->d_name) || strncmp(de->d_name, sub, 2) != 0) {
            fsck_say(f, "problem", "unexpected file %s in the blob store (not removed)", file);
            continue;
        }
        f->rep->blobs++;
        if (!fsck_id_known(f, de->d_name))
            fsck_leftover(f, file, "orphan blob (no version refers to it)");
    }
    closedir(d);
}

static void fsck_scan_blobs(struct fsck *f)
{
    char blobs[FSCK_PATH_CAP];
    snprintf(blobs, sizeof(blobs), "%s/blobs", f->dir);
    fsck_scan_tmp(f, blobs);
    DIR *d = opendir(blobs);
    if (d == NULL) {
        fsck_say(f, "problem", "cannot read the blob store %s: %s", blobs, strerror(errno));
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, "tmp") == 0)
            continue;
        int hex2 = strlen(n) == 2 && strchr("0123456789abcdef", n[0]) != NULL &&
                   strchr("0123456789abcdef", n[1]) != NULL;
        if (!hex2) {
            fsck_say(f, "problem", "unexpected entry %s/%s in the blob store", blobs, n);
            continue;
        }
        fsck_scan_sub(f, blobs, n);
    }
    closedir(d);
}

static void fsck_audit(struct fsck *f)
{
    char dir[FSCK_PATH_CAP];
    snprintf(dir, sizeof(dir), "%s/audit", f->dir);
    struct audit_verify_report ar;
    memset(&ar, 0, sizeof(ar));
    enum err e = audit_verify_dir(dir, NULL, &ar);
    f->rep->audit_events = ar.events;
    f->rep->audit_ok = e == ERR_OK && ar.ok;
    if (!f->rep->audit_ok)
        fsck_say(f, "problem", "the audit log does not verify: %s",
                 ar.reason[0] != '\0' ? ar.reason : err_info(e)->message);
}

/* Takes the audit log's lock, which a running server holds. Returns the
 * locked descriptor, -1 if there is no log, or -2 if a server holds it. */
static int fsck_lock(const char *dir)
{
    char path[FSCK_PATH_CAP];
    snprintf(path, sizeof(path), "%s/audit/events.log", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -2;
    }
    return fd;
}

static enum err fsck_open(struct fsck *f)
{
    char path[FSCK_PATH_CAP];
    snprintf(path, sizeof(path), "%s/coffer.db", f->dir);
    enum err e = meta_open(path, 0, &f->meta);
    if (e != ERR_OK) {
        fsck_say(f, "problem", "cannot open the metadata database %s", path);
        return e;
    }
    snprintf(path, sizeof(path), "%s/keys/keyring.json", f->dir);
    if (keyring_open(path, &f->keys) != ERR_OK) {
        f->keys = NULL;
        fsck_say(f, "problem", "cannot open the keyring %s: content cannot be authenticated", path);
    }
    snprintf(path, sizeof(path), "%s/blobs", f->dir);
    e = blob_fs_open(path, &f->blobs);
    if (e != ERR_OK)
        fsck_say(f, "problem", "cannot open the blob store %s", path);
    return e;
}

static void fsck_close(struct fsck *f)
{
    for (size_t i = 0; i < f->n_ids; i++)
        free(f->ids[i]);
    free(f->ids);
    blob_fs_close(f->blobs);
    key_provider_free(f->keys);
    meta_close(f->meta);
}

enum err fsck_run(const char *data_dir, const struct fsck_options *opt, fsck_note_fn note,
                  void *ctx, struct fsck_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    struct fsck f;
    memset(&f, 0, sizeof(f));
    f.opt = opt;
    f.note = note;
    f.ctx = ctx;
    f.rep = rep;
    int n = snprintf(f.dir, sizeof(f.dir), "%s", data_dir);
    struct stat sb;
    if (n < 0 || (size_t)n >= sizeof(f.dir) || stat(data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ERR_NOT_FOUND;
    int lock = fsck_lock(data_dir);
    if (lock == -2)
        return ERR_CONFLICT;
    enum err e = fsck_open(&f);
    if (e == ERR_OK) {
        char why[256];
        if (meta_fsck_integrity(f.meta, why, sizeof(why)) != ERR_OK)
            fsck_say(&f, "problem", "the metadata database fails its integrity check: %s", why);
        e = meta_fsck_versions(f.meta, fsck_version, &f);
        if (e != ERR_OK)
            fsck_say(&f, "problem", "cannot read the versions from the metadata database");
        if (f.n_ids > 0)
            qsort(f.ids, f.n_ids, sizeof(*f.ids), fsck_id_cmp);
        /* Without the full list of referenced blobs, nothing may be deleted. */
        if (e == ERR_OK && !f.oom)
            fsck_scan_blobs(&f);
        else if (f.oom)
            fsck_say(&f, "problem", "out of memory while listing blobs");
    }
    fsck_audit(&f);
    fsck_close(&f);
    if (lock >= 0)
        close(lock);
    if (e == ERR_FORBIDDEN)
        return e;
    return rep->problems > 0 ? ERR_INTEGRITY : ERR_OK;
}
