/*
 * Artifact handlers: push (streamed, encrypted on the fly), pull (streamed,
 * decrypted on the fly), show, versions, list, label and remove.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/gate.h"
#include "api/record.h"
#include "app/pii.h"
#include "blob/blob.h"
#include "crypt/envelope.h"
#include "crypt/stream.h"
#include "keys/rotate.h"
#include "meta/compliance_store.h"
#include "meta/meta.h"
#include "registry/path.h"
#include "util/log.h"
#include "util/secure.h"
#include "util/str.h"

#define API_MAX_TAGS 64
#define API_TAG_KEY_MAX 128
#define API_TAG_VALUE_MAX 256
#define API_MAX_PARENTS 32
#define API_MESSAGE_MAX 1024

static int effective_sensitivity(const struct meta_version *v)
{
    return v->version_sensitivity > v->artifact_sensitivity ? v->version_sensitivity
                                                            : v->artifact_sensitivity;
}

static void facts_from_version(const struct meta_version *v, const struct artifact_path *p,
                               struct gate_resource *res)
{
    res->kind = v->kind;
    res->sensitivity = effective_sensitivity(v);
    res->tags = v->tags;
    res->project = p->project;
    res->env = p->env;
    res->version = v->version;
}

/* Tag keys and values: printable ASCII without '=' in keys, bounded. */
static int tag_text_valid(const char *s, size_t max, int is_key)
{
    size_t n = strnlen(s, max + 1);
    if ((is_key && n == 0) || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || (is_key && (c == '=' || c == ' ' || c == '/')))
            return 0;
    }
    return 1;
}

/* Parses "key=value" into tags; sets *bad on invalid input. */
struct tag_collect {
    json_t *tags;
    int bad;
};

static void tag_collect(const char *kv, void *ctx)
{
    struct tag_collect *tc = ctx;
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv || (size_t)(eq - kv) > API_TAG_KEY_MAX ||
        json_object_size(tc->tags) >= API_MAX_TAGS) {
        tc->bad = 1;
        return;
    }
    char key[API_TAG_KEY_MAX + 1];
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    if (!tag_text_valid(key, API_TAG_KEY_MAX, 1) || !tag_text_valid(eq + 1, API_TAG_VALUE_MAX, 0)) {
        tc->bad = 1;
        return;
    }
    json_object_set_new(tc->tags, key, json_string(eq + 1));
}

struct parent_collect {
    struct request *r;
    json_t *parents;
    int bad;
    char why[160];
};

static void parent_collect(const char *text, void *ctx)
{
    struct parent_collect *pc = ctx;
    if (pc->bad)
        return;
    struct artifact_ref ref;
    if (json_array_size(pc->parents) >= API_MAX_PARENTS) {
        pc->bad = 1;
        snprintf(pc->why, sizeof(pc->why), "at most %d parents", API_MAX_PARENTS);
        return;
    }
    if (ref_parse(text, NULL, &ref, pc->why, sizeof(pc->why)) != ERR_OK) {
        pc->bad = 1;
        return;
    }
    struct meta_version v;
    if (meta_version_get(pc->r->app->meta, &ref, &v) != ERR_OK) {
        pc->bad = 1;
        snprintf(pc->why, sizeof(pc->why), "parent %.100s not found", text);
        return;
    }
    struct gate_resource res;
    facts_from_version(&v, &ref.path, &res);
    char canon[REF_MAX + 1];
    snprintf(canon, sizeof(canon), "%s@%llu", v.path, (unsigned long long)v.version);
    if (v.deleted || !gate_allows(pc->r, "artifact:Read", canon, &res)) {
        pc->bad = 1;
        snprintf(pc->why, sizeof(pc->why), "parent %.100s not found", text);
    } else {
        json_array_append_new(pc->parents, json_string(canon));
    }
    meta_version_clear(&v);
}

struct push_state {
    struct artifact_path path;
    char kind[16];
    int has_kind;
    int sensitivity;
    json_t *tags;
    json_t *parents;
    char message[API_MESSAGE_MAX + 1];
    int has_message;
    uint8_t dek[ENVELOPE_DEK_LEN];
    struct blob_upload up;
    int upload_open;
    struct stream_writer *writer;
    EVP_MD_CTX *sha;
    uint64_t size;
    int existed;             /* the artifact had a live version before this push */
    int may_read;            /* the caller could read it before this push */
    int pii_wanted;          /* the kind is one the PII scan covers */
    struct pii_scanner *pii; /* NULL when the upload is not scanned */
};

static enum err push_parse_query(struct request *r, struct push_state *ps)
{
    int dup = 0;
    const char *kind = http_query(r, "kind", &dup);
    if (dup)
        return http_fail(r, ERR_INVALID, "kind given more than once");
    if (kind != NULL) {
        if (!meta_kind_valid(kind))
            return http_fail(r, ERR_INVALID,
                             "unknown kind; use model, dataset, features, params, metrics, code "
                             "or other");
        snprintf(ps->kind, sizeof(ps->kind), "%s", kind);
        ps->has_kind = 1;
    }
    const char *sens = http_query(r, "sensitivity", &dup);
    if (dup)
        return http_fail(r, ERR_INVALID, "sensitivity given more than once");
    ps->sensitivity = -1;
    if (sens != NULL && (ps->sensitivity = meta_sensitivity_level(sens)) < 0)
        return http_fail(r, ERR_INVALID,
                         "unknown sensitivity; use public, internal, confidential or restricted");
    const char *msg = http_query(r, "message", &dup);
    if (dup)
        return http_fail(r, ERR_INVALID, "message given more than once");
    if (msg != NULL) {
        if (!tag_text_valid(msg, API_MESSAGE_MAX, 0))
            return http_fail(r, ERR_INVALID, "message must be printable text of at most %d bytes",
                             API_MESSAGE_MAX);
        snprintf(ps->message, sizeof(ps->message), "%s", msg);
        ps->has_message = 1;
    }
    struct tag_collect tc = {ps->tags, 0};
    http_query_each(r, "tag", tag_collect, &tc);
    if (tc.bad)
        return http_fail(r, ERR_INVALID,
                         "invalid tag: use key=value (key without '=', '/' or spaces, at most "
                         "%d tags)",
                         API_MAX_TAGS);
    struct parent_collect pc = {r, ps->parents, 0, {0}};
    http_query_each(r, "parent", parent_collect, &pc);
    if (pc.bad)
        return http_fail(
            r, pc.why[0] != '\0' && strstr(pc.why, "not found") ? ERR_NOT_FOUND : ERR_INVALID,
            "invalid parent: %s", pc.why);
    return ERR_OK;
}

enum err api_push_start(struct request *r)
{
    struct push_state *ps = calloc(1, sizeof(*ps));
    if (ps == NULL)
        return http_fail(r, ERR_INTERNAL, "out of memory");
    r->state = ps;
    ps->tags = json_object();
    ps->parents = json_array();
    char why[200];
    if (path_parse(r->param, NULL, &ps->path, why, sizeof(why)) != ERR_OK)
        return http_fail(r, ERR_INVALID, "invalid path: %s", why);
    enum err e = push_parse_query(r, ps);
    if (e != ERR_OK)
        return e;

    /* What the artifact already is decides what the write touches. */
    struct artifact_ref latest = {.path = ps->path, .kind = REF_LATEST};
    struct meta_version cur;
    struct gate_resource res = {ps->has_kind ? ps->kind : NULL,
                                ps->sensitivity,
                                ps->tags,
                                ps->path.project,
                                ps->path.env,
                                0};
    int exists = meta_version_get(r->app->meta, &latest, &cur) == ERR_OK;
    if (exists) {
        res.kind = cur.kind;
        res.tags = cur.tags;
        if (res.sensitivity < cur.artifact_sensitivity)
            res.sensitivity = cur.artifact_sensitivity;
    }
    /* Authorize first: only a caller allowed to write learns that the
     * artifact exists with another kind. */
    e = gate_check(r, "artifact:Write", ps->path.full, &res);
    if (e == ERR_OK && exists && ps->has_kind && strcmp(cur.kind, ps->kind) != 0)
        e = http_fail(r, ERR_CONFLICT, "%s is a %s; a new version cannot change its kind",
                      ps->path.full, cur.kind);
    /* Writing up is allowed (a writer need not read what is there), but
     * whoever may not read the artifact learns nothing of it from the answer. */
    ps->existed = exists;
    ps->may_read = !exists || gate_allows(r, "artifact:Read", ps->path.full, &res);
    if (e == ERR_OK) {
        const char *kind = exists ? cur.kind : ps->has_kind ? ps->kind : "other";
        ps->pii_wanted = pii_scan_wanted(r->app->meta, kind);
    }
    if (exists)
        meta_version_clear(&cur);
    if (e != ERR_OK)
        return e;
    /* The target environment's own rules: direct pushes, MFA, networks. */
    if ((e = api_env_check_write(r, ps->path.env, ps->path.full, "artifact:Write")) != ERR_OK)
        return e;

    ps->sha = EVP_MD_CTX_new();
    if (ps->sha == NULL || EVP_DigestInit_ex(ps->sha, EVP_sha256(), NULL) != 1)
        return http_fail(r, ERR_INTERNAL, "hash initialisation failed");
    if (ps->pii_wanted && pii_scanner_new(&ps->pii) != ERR_OK)
        return http_fail(r, ERR_INTERNAL, "out of memory");
    if (envelope_new_dek(ps->dek) != ERR_OK)
        return http_fail(r, ERR_INTERNAL, "no randomness for a data key");
    if (blob_upload_begin(r->app->blobs, &ps->up) != ERR_OK)
        return http_fail(r, ERR_IO, "cannot start the upload; check the data directory");
    ps->upload_open = 1;
    ps->up.limit = stream_ciphertext_size(r->app->cfg.max_upload_bytes, r->app->cfg.segment_size);
    e = stream_writer_new(&ps->writer, ps->dek, (const uint8_t *)ps->up.blob_id, BLOB_ID_LEN,
                          r->app->cfg.segment_size, blob_upload_write, &ps->up);
    if (e != ERR_OK)
        return http_fail(r, ERR_IO, "cannot start the encrypted stream");
    return ERR_OK;
}

enum err api_push_data(struct request *r, const uint8_t *buf, size_t len)
{
    struct push_state *ps = r->state;
    if (len > r->app->cfg.max_upload_bytes - ps->size)
        return http_fail(r, ERR_TOO_LARGE, "content larger than the limit of %llu bytes",
                         (unsigned long long)r->app->cfg.max_upload_bytes);
    ps->size += len;
    if (EVP_DigestUpdate(ps->sha, buf, len) != 1)
        return http_fail(r, ERR_INTERNAL, "hashing failed");
    if (ps->pii != NULL)
        pii_scanner_feed(ps->pii, buf, len);
    if (stream_writer_update(ps->writer, buf, len) != ERR_OK)
        return http_fail(r, ERR_IO, "writing the content failed; check disk space");
    return ERR_OK;
}

enum err api_push_finish(struct request *r)
{
    struct push_state *ps = r->state;
    uint8_t digest[32];
    char hex[65];
    unsigned int dlen = 0;
    if (EVP_DigestFinal_ex(ps->sha, digest, &dlen) != 1)
        return http_fail(r, ERR_INTERNAL, "hashing failed");
    hex_encode(digest, sizeof(digest), hex);
    if (stream_writer_finish(ps->writer) != ERR_OK)
        return http_fail(r, ERR_IO, "writing the content failed; check disk space");
    /* Personal data found: tag the artifact and label the version at least
     * confidential, whatever was asked (docs/COMPLIANCE.md). */
    json_t *pii = NULL;
    if (ps->pii != NULL) {
        pii_scanner_finish(ps->pii);
        pii = pii_scanner_report(ps->pii);
        if (pii == NULL)
            return http_fail(r, ERR_INTERNAL, "out of memory");
        json_object_set_new(pii, "scanned", json_boolean(pii_scanner_is_text(ps->pii)));
        if (pii_scanner_total(ps->pii) > 0) {
            json_object_set_new(ps->tags, "pii", json_string("detected"));
            int confidential = meta_sensitivity_level("confidential");
            if (ps->sensitivity < confidential)
                ps->sensitivity = confidential;
        }
    }
    uint8_t wrapped[KEYS_WRAPPED_MAX];
    size_t wrapped_len = 0;
    char kek_id[KEYS_KEK_ID_CAP];
    /* From the wrap until the version is recorded, its KEK must not be destroyed. */
    rotate_wrap_enter(r->app);
    enum err e = envelope_wrap(r->app->keys, ps->dek, (const uint8_t *)ps->up.blob_id, BLOB_ID_LEN,
                               wrapped, sizeof(wrapped), &wrapped_len, kek_id, sizeof(kek_id));
    secure_wipe(ps->dek, sizeof(ps->dek));
    if (e != ERR_OK) {
        rotate_wrap_leave(r->app);
        json_decref(pii);
        return http_fail(r, ERR_UNAVAILABLE, "the key provider could not wrap the data key");
    }
    if (blob_upload_commit(r->app->blobs, &ps->up) != ERR_OK) {
        rotate_wrap_leave(r->app);
        json_decref(pii);
        return http_fail(r, ERR_IO, "storing the content failed; check disk space");
    }
    ps->upload_open = 0;

    struct meta_new_version nv = {
        .path = &ps->path,
        .kind = ps->has_kind ? ps->kind : NULL,
        .sensitivity = ps->sensitivity,
        .tags = ps->tags,
        .parents = ps->parents,
        .message = ps->has_message ? ps->message : NULL,
        .creator = r->who.name,
        .sha256 = hex,
        .size = ps->size,
        .blob_id = ps->up.blob_id,
        .wrapped_dek = wrapped,
        .wrapped_len = wrapped_len,
        .kek_id = kek_id,
    };
    uint64_t version = 0;
    e = meta_version_commit(r->app->meta, &nv, &version);
    rotate_wrap_leave(r->app);
    if (e != ERR_OK) {
        json_decref(pii);
        blob_remove(r->app->blobs, ps->up.blob_id);
        if (e == ERR_CONFLICT)
            return http_fail(r, e, "%s exists with another kind", ps->path.full);
        return http_fail(r, ERR_IO, "recording the version failed");
    }
    char ref[REF_MAX + 1];
    snprintf(ref, sizeof(ref), "%s@%llu", ps->path.full, (unsigned long long)version);
    struct record rec = {.action = "artifact:Write",
                         .resource = ref,
                         .allow = 1,
                         .reason = "version committed",
                         .status = 201,
                         .bytes = (int64_t)ps->size,
                         .sha256 = hex};
    /* Counts and redacted samples only: the audit log never holds the values. */
    json_t *detail = pii != NULL ? json_pack("{s:O}", "pii", pii) : NULL;
    rec.detail = detail;
    e = api_record(r, &rec);
    json_decref(detail);
    if (e != ERR_OK) {
        json_decref(pii);
        return ERR_UNAVAILABLE;
    }
    r->status = 201;
    r->json = json_pack("{s:s, s:s, s:I}", "path", ps->path.full, "sha256", hex, "size",
                        (json_int_t)ps->size);
    if (ps->may_read)
        json_object_set_new(r->json, "version", json_integer((json_int_t)version));
    if (pii != NULL)
        json_object_set_new(r->json, "pii", pii);
    log_info("push %s %s@%llu %llu bytes by %s", r->request_id, ps->path.full,
             (unsigned long long)version, (unsigned long long)ps->size, r->who.name);
    return ERR_OK;
}

void api_push_cleanup(struct request *r)
{
    struct push_state *ps = r->state;
    if (ps == NULL)
        return;
    stream_writer_free(ps->writer);
    if (ps->upload_open)
        blob_upload_abort(&ps->up);
    EVP_MD_CTX_free(ps->sha);
    pii_scanner_free(ps->pii);
    json_decref(ps->tags);
    json_decref(ps->parents);
    secure_wipe(ps->dek, sizeof(ps->dek));
    free(ps);
    r->state = NULL;
}

/* Resolves r->param as a reference the caller may act on with action.
 * Missing and forbidden get the same answer, so existence is not revealed. */
static enum err api_resolve_ex(struct request *r, const char *action, int include_deleted,
                               struct artifact_ref *ref, struct meta_version *v);

static enum err api_resolve(struct request *r, const char *action, struct artifact_ref *ref,
                            struct meta_version *v)
{
    return api_resolve_ex(r, action, 0, ref, v);
}

static enum err api_resolve_ex(struct request *r, const char *action, int include_deleted,
                               struct artifact_ref *ref, struct meta_version *v)
{
    char why[200];
    if (ref_parse(r->param, NULL, ref, why, sizeof(why)) != ERR_OK)
        return http_fail(r, ERR_INVALID, "invalid reference: %s", why);
    enum err e = meta_version_get_ex(r->app->meta, ref, include_deleted, v);
    if (e == ERR_NOT_FOUND) {
        /* Probes for paths that do not exist are recorded too. */
        struct record rec = {.action = action,
                             .resource = r->param,
                             .allow = 0,
                             .reason = "not found",
                             .status = 404};
        if (api_record(r, &rec) != ERR_OK)
            return ERR_UNAVAILABLE;
        return http_fail(r, ERR_NOT_FOUND, "%s not found (or not visible to you)", r->param);
    }
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    struct gate_resource res;
    facts_from_version(v, &ref->path, &res);
    char canon[REF_MAX + 1];
    str_ref(canon, sizeof(canon), v->path, v->version);
    if (gate_check(r, "artifact:Read", canon, &res) != ERR_OK ||
        (strcmp(action, "artifact:Read") != 0 && gate_check(r, action, canon, &res) != ERR_OK)) {
        /* Hide existence from those who may not read it; others learn it is forbidden. */
        int may_read = gate_allows(r, "artifact:Read", canon, &res);
        meta_version_clear(v);
        if (!may_read)
            return http_fail(r, ERR_NOT_FOUND, "%s not found (or not visible to you)", r->param);
        return ERR_FORBIDDEN;
    }
    if (v->deleted && strcmp(action, "artifact:Read") != 0) {
        /* A crypto-shredded version has no data key left: its content is gone for good. */
        int erased = v->wrapped_len == 0;
        meta_version_clear(v);
        if (erased)
            return http_fail(r, ERR_GONE,
                             "%s was erased (crypto-shredded); its content no "
                             "longer exists, see 'coffer show' for the tombstone",
                             r->param);
        return http_fail(r, ERR_NOT_FOUND, "%s was deleted", r->param);
    }
    return ERR_OK;
}

struct pull_state {
    int fd;
    struct stream_reader *reader;
    uint64_t seg_idx; /* index of the segment in plain, UINT64_MAX if none */
    size_t plain_len;
    uint8_t *sealed;
    uint8_t *plain;
    size_t cap;
    char request_id[33];
};

static void pull_free(void *cls)
{
    struct pull_state *ps = cls;
    if (ps == NULL)
        return;
    if (ps->fd >= 0)
        close(ps->fd);
    stream_reader_free(ps->reader);
    if (ps->plain != NULL) {
        secure_wipe(ps->plain, ps->cap);
        free(ps->plain);
    }
    free(ps->sealed);
    free(ps);
}

static ssize_t pull_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct pull_state *ps = cls;
    uint32_t seg = stream_reader_segment_size(ps->reader);
    uint64_t idx = pos / seg;
    if (idx >= stream_reader_segment_count(ps->reader))
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (ps->seg_idx != idx) {
        size_t sealed_len = stream_reader_segment_sealed_len(ps->reader, idx);
        off_t off = (off_t)stream_reader_segment_offset(ps->reader, idx);
        size_t got = 0;
        while (got < sealed_len) {
            ssize_t n = pread(ps->fd, ps->sealed + got, sealed_len - got, off + (off_t)got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                log_error("download %s: reading the content failed", ps->request_id);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            got += (size_t)n;
        }
        if (stream_reader_open_segment(ps->reader, idx, ps->sealed, sealed_len, ps->plain, ps->cap,
                                       &ps->plain_len) != ERR_OK) {
            log_error("download %s: segment %llu failed authentication; the stored content is "
                      "damaged or was tampered with",
                      ps->request_id, (unsigned long long)idx);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        ps->seg_idx = idx;
    }
    size_t within = (size_t)(pos - idx * seg);
    if (within >= ps->plain_len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = ps->plain_len - within;
    if (n > max)
        n = max;
    memcpy(buf, ps->plain + within, n);
    return (ssize_t)n;
}

enum err api_pull(struct request *r)
{
    struct artifact_ref ref;
    struct meta_version v;
    enum err e = api_resolve(r, "artifact:Download", &ref, &v);
    if (e != ERR_OK)
        return e;
    e = api_serve_version(r, &v, NULL);
    meta_version_clear(&v);
    return e;
}

enum err api_serve_version(struct request *r, const struct meta_version *v, json_t *detail)
{
    enum err e;
    uint8_t dek[ENVELOPE_DEK_LEN];
    e = envelope_unwrap(r->app->keys, v->kek_id, v->wrapped_dek, v->wrapped_len,
                        (const uint8_t *)v->blob_id, BLOB_ID_LEN, dek);
    if (e != ERR_OK) {
        log_error("download %s: data key of %s@%llu could not be unwrapped", r->request_id, v->path,
                  (unsigned long long)v->version);
        return http_fail(r, e == ERR_INTEGRITY ? ERR_INTEGRITY : ERR_UNAVAILABLE,
                         "the data key could not be unwrapped");
    }
    struct pull_state *ps = calloc(1, sizeof(*ps));
    uint64_t fsize = 0;
    if (ps == NULL) {
        secure_wipe(dek, sizeof(dek));
        return http_fail(r, ERR_INTERNAL, "out of memory");
    }
    ps->fd = -1;
    ps->seg_idx = UINT64_MAX;
    snprintf(ps->request_id, sizeof(ps->request_id), "%s", r->request_id);
    e = blob_open_read(r->app->blobs, v->blob_id, &ps->fd, &fsize);
    uint8_t header[STREAM_HEADER_LEN];
    if (e == ERR_OK && pread(ps->fd, header, sizeof(header), 0) != (ssize_t)sizeof(header))
        e = ERR_INTEGRITY;
    if (e == ERR_OK)
        e = stream_reader_new(&ps->reader, dek, (const uint8_t *)v->blob_id, BLOB_ID_LEN, header,
                              sizeof(header), fsize);
    secure_wipe(dek, sizeof(dek));
    if (e == ERR_OK && stream_reader_plaintext_size(ps->reader) != v->size)
        e = ERR_INTEGRITY;
    if (e != ERR_OK) {
        log_error("download %s: stored content of %s@%llu is missing or damaged", r->request_id,
                  v->path, (unsigned long long)v->version);
        pull_free(ps);
        return http_fail(r, e == ERR_NOT_FOUND ? ERR_IO : e,
                         "the stored content is missing or damaged");
    }
    ps->cap = stream_reader_segment_size(ps->reader);
    ps->plain = malloc(ps->cap);
    ps->sealed = malloc(ps->cap + STREAM_TAG_LEN);
    if (ps->plain == NULL || ps->sealed == NULL) {
        pull_free(ps);
        return http_fail(r, ERR_INTERNAL, "out of memory");
    }
    r->response = MHD_create_response_from_callback(v->size, 64 * 1024, pull_read, ps, pull_free);
    if (r->response == NULL) {
        pull_free(ps);
        return http_fail(r, ERR_INTERNAL, "cannot create the response");
    }
    char num[32];
    MHD_add_response_header(r->response, "Content-Type", "application/octet-stream");
    MHD_add_response_header(r->response, "X-Coffer-Sha256", v->sha256);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)v->version);
    MHD_add_response_header(r->response, "X-Coffer-Version", num);
    MHD_add_response_header(r->response, "X-Coffer-Path", v->path);
    char served[REF_MAX + 1];
    snprintf(served, sizeof(served), "%s@%llu", v->path, (unsigned long long)v->version);
    struct record rec = {.action = "artifact:Download",
                         .resource = served,
                         .allow = 1,
                         .reason = "content served",
                         .status = 200,
                         .bytes = (int64_t)v->size,
                         .sha256 = v->sha256,
                         .detail = detail};
    r->status = 200;
    r->bytes_out = v->size;
    return api_record(r, &rec);
}

enum err api_show(struct request *r)
{
    struct artifact_ref ref;
    struct meta_version v;
    enum err e = api_resolve(r, "artifact:Read", &ref, &v);
    if (e != ERR_OK)
        return e;
    e = meta_version_answer(r->app->meta, &v, &r->json_body, &r->json_body_len);
    meta_version_clear(&v);
    if (e != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    return ERR_OK;
}

enum err api_versions(struct request *r)
{
    struct artifact_ref ref;
    struct meta_version v;
    /* Seeing the version list needs Read on the artifact (its newest version,
     * tombstoned or not: a deleted version's record stays listed). */
    enum err e = api_resolve_ex(r, "artifact:Read", 1, &ref, &v);
    if (e != ERR_OK)
        return e;
    if (ref.explicit_version) {
        meta_version_clear(&v);
        return http_fail(r, ERR_INVALID, "versions takes a path without @VERSION");
    }
    json_t *all = NULL;
    e = meta_version_list(r->app->meta, &ref.path, &all);
    if (e != ERR_OK) {
        meta_version_clear(&v);
        return http_fail(r, e == ERR_NOT_FOUND ? e : ERR_UNAVAILABLE, "%s not found", r->param);
    }
    json_t *visible = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(all, i, item)
    {
        const char *vs = json_string_value(json_object_get(item, "sensitivity"));
        int level = vs != NULL ? meta_sensitivity_level(vs) : -1;
        struct gate_resource res;
        facts_from_version(&v, &ref.path, &res);
        res.version = (uint64_t)json_integer_value(json_object_get(item, "version"));
        res.sensitivity = level > v.artifact_sensitivity ? level : v.artifact_sensitivity;
        char canon[REF_MAX + 1];
        snprintf(canon, sizeof(canon), "%s@%llu", v.path, (unsigned long long)res.version);
        if (gate_allows(r, "artifact:Read", canon, &res))
            json_array_append(visible, item);
    }
    json_decref(all);
    r->json = json_pack("{s:s, s:s, s:o}", "path", v.path, "kind", v.kind, "versions", visible);
    meta_version_clear(&v);
    return ERR_OK;
}

enum err api_list(struct request *r)
{
    int dup = 0;
    const char *prefix = http_query(r, "prefix", &dup);
    if (dup)
        return http_fail(r, ERR_INVALID, "prefix given more than once");
    if (prefix == NULL)
        prefix = "";
    char why[200];
    if (path_prefix_check(prefix, why, sizeof(why)) != ERR_OK)
        return http_fail(r, ERR_INVALID, "invalid prefix: %s", why);
    json_t *all = NULL;
    if (meta_artifact_list(r->app->meta, prefix, &all) != ERR_OK)
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    json_t *visible = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(all, i, item)
    {
        const char *path = json_string_value(json_object_get(item, "path"));
        struct artifact_path p;
        if (path_parse(path, NULL, &p, NULL, 0) != ERR_OK)
            continue;
        struct gate_resource res = {
            json_string_value(json_object_get(item, "kind")),
            (int)json_integer_value(json_object_get(item, "sensitivity_level")),
            json_object_get(item, "tags"),
            p.project,
            p.env,
            0};
        if (gate_allows(r, "artifact:List", path, &res))
            json_array_append(visible, item);
    }
    json_decref(all);
    json_t *detail = json_pack("{s:I}", "shown", (json_int_t)json_array_size(visible));
    struct record rec = {.action = "artifact:List",
                         .resource = prefix[0] != '\0' ? prefix : "*",
                         .allow = 1,
                         .reason = "listing filtered by policy and clearance",
                         .status = 200,
                         .detail = detail};
    enum err e = api_record(r, &rec);
    json_decref(detail);
    if (e != ERR_OK) {
        json_decref(visible);
        return e;
    }
    r->json = json_pack("{s:s, s:o}", "prefix", prefix, "artifacts", visible);
    return ERR_OK;
}

enum err api_label(struct request *r)
{
    struct artifact_ref ref;
    struct meta_version v;
    enum err e = api_resolve(r, "artifact:Read", &ref, &v);
    if (e != ERR_OK)
        return e;
    json_t *body = r->body_json;
    const char *sens = json_string_value(json_object_get(body, "sensitivity"));
    json_t *tags = json_object_get(body, "tags");
    json_t *untag = json_object_get(body, "untag");
    const char *key;
    json_t *val;
    size_t i;
    int level = -1;
    e = ERR_OK;
    json_object_foreach(body, key, val)
    {
        if (strcmp(key, "sensitivity") != 0 && strcmp(key, "tags") != 0 &&
            strcmp(key, "untag") != 0)
            e = http_fail(r, ERR_INVALID, "unknown field '%.40s'", key);
    }
    if (e == ERR_OK && json_object_get(body, "sensitivity") != NULL &&
        (sens == NULL || (level = meta_sensitivity_level(sens)) < 0))
        e = http_fail(r, ERR_INVALID,
                      "unknown sensitivity; use public, internal, confidential or restricted");
    if (e == ERR_OK && tags != NULL) {
        if (!json_is_object(tags) || json_object_size(tags) > API_MAX_TAGS)
            e = http_fail(r, ERR_INVALID, "tags must be an object of at most %d strings",
                          API_MAX_TAGS);
        json_object_foreach(tags, key, val)
        {
            if (!tag_text_valid(key, API_TAG_KEY_MAX, 1) || !json_is_string(val) ||
                !tag_text_valid(json_string_value(val), API_TAG_VALUE_MAX, 0))
                e = http_fail(r, ERR_INVALID, "invalid tag '%.40s'", key);
        }
    }
    if (e == ERR_OK && untag != NULL) {
        if (!json_is_array(untag) || json_array_size(untag) > API_MAX_TAGS)
            e = http_fail(r, ERR_INVALID, "untag must be an array of tag keys");
        json_array_foreach(untag, i, val)
        {
            if (!json_is_string(val) || !tag_text_valid(json_string_value(val), API_TAG_KEY_MAX, 1))
                e = http_fail(r, ERR_INVALID, "untag must be an array of tag keys");
        }
    }
    if (e == ERR_OK && level < 0 && tags == NULL && untag == NULL)
        e = http_fail(r, ERR_INVALID, "nothing to change: give a sensitivity, tags or untag");
    if (e != ERR_OK) {
        meta_version_clear(&v);
        return e;
    }
    /* Lowering the label needs Declassify; everything else needs Label. */
    int current = ref.explicit_version ? effective_sensitivity(&v) : v.artifact_sensitivity;
    struct gate_resource res;
    facts_from_version(&v, &ref.path, &res);
    char target[REF_MAX + 1];
    if (ref.explicit_version)
        snprintf(target, sizeof(target), "%s@%llu", v.path, (unsigned long long)v.version);
    else
        snprintf(target, sizeof(target), "%s", v.path);
    if (level >= 0 && level < current)
        e = gate_check(r, "artifact:Declassify", target, &res);
    if (e == ERR_OK && (tags != NULL || untag != NULL || level >= current))
        e = gate_check(r, "artifact:Label", target, &res);
    if (e == ERR_OK) {
        e = meta_label(r->app->meta, &ref.path, ref.explicit_version ? v.version : 0, level, tags,
                       untag);
        if (e != ERR_OK)
            http_fail(r, e == ERR_NOT_FOUND ? e : ERR_UNAVAILABLE, "label change failed");
    }
    if (e == ERR_OK) {
        json_t *detail = json_pack("{s:O?, s:O?}", "tags", tags, "untag", untag);
        if (level >= 0)
            json_object_set_new(detail, "sensitivity", json_string(sens));
        struct record rec = {.action = level >= 0 && level < current ? "artifact:Declassify"
                                                                     : "artifact:Label",
                             .resource = target,
                             .allow = 1,
                             .reason = "label changed",
                             .status = 200,
                             .detail = detail};
        e = api_record(r, &rec);
        json_decref(detail);
    }
    if (e == ERR_OK) {
        struct meta_version after;
        if (meta_version_get(r->app->meta, &ref, &after) == ERR_OK) {
            meta_version_describe(r->app->meta, &after, &r->json);
            meta_version_clear(&after);
        }
    }
    meta_version_clear(&v);
    return e;
}

enum err api_remove(struct request *r)
{
    struct artifact_ref ref;
    struct meta_version v;
    enum err e = api_resolve(r, "artifact:Delete", &ref, &v);
    if (e != ERR_OK)
        return e;
    char held[300];
    e = compliance_blocked(r->app->meta, v.path, (int64_t)time(NULL), held, sizeof(held));
    if (e != ERR_OK) {
        meta_version_clear(&v);
        if (e == ERR_CONFLICT)
            return http_fail(r, e, "%s; it cannot be deleted", held);
        return http_fail(r, ERR_UNAVAILABLE, "metadata store unavailable");
    }
    e = meta_version_tombstone(r->app->meta, v.version_id, r->who.name);
    char target[REF_MAX + 1];
    snprintf(target, sizeof(target), "%s@%llu", v.path, (unsigned long long)v.version);
    struct record rec = {.action = "artifact:Delete",
                         .resource = target,
                         .allow = 1,
                         .reason = "version tombstoned",
                         .status = 200,
                         .sha256 = v.sha256};
    if (e == ERR_OK && api_record(r, &rec) != ERR_OK) {
        meta_version_clear(&v);
        return ERR_UNAVAILABLE;
    }
    if (e == ERR_OK)
        r->json = json_pack("{s:s, s:I, s:b}", "path", v.path, "version", (json_int_t)v.version,
                            "deleted", 1);
    else
        http_fail(r, e == ERR_NOT_FOUND ? ERR_NOT_FOUND : ERR_UNAVAILABLE, "%s was deleted",
                  r->param);
    meta_version_clear(&v);
    return e;
}
