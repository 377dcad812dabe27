#include "client/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"
#include "util/file.h"
#include "util/secure.h"

#define CLIENT_MAX_JSON (16u << 20)

void client_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("coffer: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int client_global_option(struct client *c, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    char *dst = NULL;
    size_t cap = 0;
    if (strcmp(a, "--json") == 0) {
        c->json_output = 1;
        return 1;
    }
    if (strcmp(a, "--server") == 0) {
        dst = c->server;
        cap = sizeof(c->server);
    } else if (strcmp(a, "--ca") == 0) {
        dst = c->ca;
        cap = sizeof(c->ca);
    } else {
        return 0;
    }
    if (*i + 1 >= argc)
        return -1;
    (*i)++;
    if (strlen(argv[*i]) >= cap)
        return -1;
    snprintf(dst, cap, "%s", argv[*i]);
    return 1;
}

static int client_config_dir(char *out, size_t cap)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(out, cap, "%s/coffer", xdg);
    else if (home != NULL)
        n = snprintf(out, cap, "%s/.config/coffer", home);
    else
        return -1;
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static json_t *client_store_load(void)
{
    char dir[1024], path[1100];
    if (client_config_dir(dir, sizeof(dir)) != 0)
        return NULL;
    snprintf(path, sizeof(path), "%s/credentials.json", dir);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return NULL;
    if ((sb.st_mode & 0077) != 0) {
        client_error("%s is readable by other users; run 'chmod 600 %s'", path, path);
        return NULL;
    }
    return json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
}

int client_store_save(const struct client *c)
{
    char dir[1024], path[1100];
    if (client_config_dir(dir, sizeof(dir)) != 0)
        return -1;
    char parent[1024];
    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash != NULL) {
        *slash = '\0';
        mkdir(parent, 0700);
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    snprintf(path, sizeof(path), "%s/credentials.json", dir);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "server", c->server, "ca", c->ca, "token",
                          c->token, "user", c->user);
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    if (text == NULL)
        return -1;
    int rc = file_replace_private(path, text, strlen(text));
    secure_free_str(text);
    return rc;
}

int client_store_clear(void)
{
    char dir[1024], path[1100];
    if (client_config_dir(dir, sizeof(dir)) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/credentials.json", dir);
    if (unlink(path) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

int client_setup(struct client *c, int need_token)
{
    const char *env;
    json_t *stored = client_store_load();
    if (c->server[0] == '\0' && (env = getenv("COFFER_SERVER")) != NULL)
        snprintf(c->server, sizeof(c->server), "%s", env);
    if (c->ca[0] == '\0' && (env = getenv("COFFER_CA")) != NULL)
        snprintf(c->ca, sizeof(c->ca), "%s", env);
    if ((env = getenv("COFFER_TOKEN")) != NULL && env[0] != '\0') {
        if (strlen(env) >= sizeof(c->token)) {
            json_decref(stored);
            client_error("COFFER_TOKEN is too long");
            return 2;
        }
        snprintf(c->token, sizeof(c->token), "%s", env);
    }
    if (stored != NULL) {
        const char *s = json_string_value(json_object_get(stored, "server"));
        const char *ca = json_string_value(json_object_get(stored, "ca"));
        const char *t = json_string_value(json_object_get(stored, "token"));
        const char *u = json_string_value(json_object_get(stored, "user"));
        int same_server = c->server[0] == '\0' || (s != NULL && strcmp(s, c->server) == 0);
        if (c->server[0] == '\0' && s != NULL)
            snprintf(c->server, sizeof(c->server), "%s", s);
        if (same_server && c->ca[0] == '\0' && ca != NULL)
            snprintf(c->ca, sizeof(c->ca), "%s", ca);
        if (same_server && c->token[0] == '\0' && t != NULL)
            snprintf(c->token, sizeof(c->token), "%s", t);
        if (u != NULL)
            snprintf(c->user, sizeof(c->user), "%s", u);
        json_decref(stored);
    }
    if (c->server[0] == '\0') {
        client_error("no server given; use --server URL, set COFFER_SERVER, or run 'coffer login'");
        return 2;
    }
    if (strncmp(c->server, "https://", 8) != 0 && strncmp(c->server, "http://127.", 11) != 0 &&
        strncmp(c->server, "http://localhost", 16) != 0) {
        client_error("the server URL must start with https://");
        return 2;
    }
    size_t sl = strlen(c->server);
    while (sl > 0 && c->server[sl - 1] == '/')
        c->server[--sl] = '\0';
    if (need_token && c->token[0] == '\0') {
        client_error("not logged in; run 'coffer login' or set COFFER_TOKEN");
        return 3;
    }
    return 0;
}

char *client_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *copy = e != NULL ? strdup(e) : NULL;
    curl_free(e);
    return copy;
}

struct membuf {
    char *data;
    size_t len;
    int overflow;
};

static size_t client_mem_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct membuf *mb = userdata;
    size_t n = size * nmemb;
    if (n > CLIENT_MAX_JSON || mb->len > CLIENT_MAX_JSON - n) {
        mb->overflow = 1;
        return 0;
    }
    char *nd = realloc(mb->data, mb->len + n + 1);
    if (nd == NULL)
        return 0;
    mb->data = nd;
    memcpy(mb->data + mb->len, ptr, n);
    mb->len += n;
    mb->data[mb->len] = '\0';
    return n;
}

static CURL *client_curl(struct client *c, const char *method, const char *path,
                         struct curl_slist **headers)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return NULL;
    size_t ulen = strlen(c->server) + strlen(path) + 1;
    char *url = malloc(ulen);
    if (url == NULL) {
        curl_easy_cleanup(h);
        return NULL;
    }
    snprintf(url, ulen, "%s%s", c->server, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    free(url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "coffer-cli/0.1");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    if (c->ca[0] != '\0')
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
    if (c->token[0] != '\0') {
        char auth[4200];
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
        *headers = curl_slist_append(*headers, auth);
        secure_wipe(auth, sizeof(auth));
    }
    return h;
}

/* Turns a failed exchange into a message and an exit code. */
static int client_report(CURLcode cc, long status, const struct membuf *mb, const char *errbuf)
{
    if (cc != CURLE_OK) {
        if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE)
            client_error("cannot verify the server's certificate (%s); pass the CA with --ca "
                         "DATA/tls/ca.pem",
                         errbuf[0] ? errbuf : curl_easy_strerror(cc));
        else
            client_error("request failed: %s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return 1;
    }
    json_t *j = mb->data != NULL ? json_loadb(mb->data, mb->len, 0, NULL) : NULL;
    json_t *err = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    enum err e = code != NULL ? err_from_code(code) : err_from_http((int)status);
    if (e == ERR_OK)
        e = ERR_INTERNAL;
    client_error("%s", msg != NULL ? msg : err_info(e)->message);
    json_decref(j);
    return err_info(e)->exit_code;
}

int client_json(struct client *c, const char *method, const char *path, json_t *body, json_t **out)
{
    struct curl_slist *headers = NULL;
    CURL *h = client_curl(c, method, path, &headers);
    if (h == NULL)
        return 1;
    char *text = NULL;
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
    }
    headers = curl_slist_append(headers, "Accept: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    struct membuf mb = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, client_mem_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &mb);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    secure_free_str(text);
    int rc = 0;
    if (cc != CURLE_OK || status < 200 || status >= 300) {
        rc = client_report(cc, status, &mb, errbuf);
    } else if (out != NULL) {
        *out = mb.len > 0 ? json_loadb(mb.data, mb.len, 0, NULL) : json_object();
        if (*out == NULL) {
            client_error("the server sent a malformed answer");
            rc = 1;
        }
    }
    if (mb.data != NULL)
        secure_wipe(mb.data, mb.len);
    free(mb.data);
    return rc;
}

int client_upload(struct client *c, const char *path, const char *file, json_t **out)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        client_error("cannot open %s: %s", file, strerror(errno));
        return 2;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        client_error("%s is not a regular file", file);
        return 2;
    }
    FILE *f = fdopen(fd, "rb");
    struct curl_slist *headers = NULL;
    CURL *h = client_curl(c, "PUT", path, &headers);
    if (f == NULL || h == NULL) {
        if (f != NULL)
            fclose(f);
        else
            close(fd);
        curl_easy_cleanup(h);
        return 1;
    }
    headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
    headers = curl_slist_append(headers, "Expect: 100-continue");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READDATA, f);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)sb.st_size);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
    struct membuf mb = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, client_mem_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &mb);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    fclose(f);
    int rc = 0;
    if (status >= 400 || cc != CURLE_OK || status < 200 || status >= 300) {
        /* A server that refuses early closes the upload; its answer explains why. */
        rc = client_report(status >= 400 ? CURLE_OK : cc, status, &mb, errbuf);
    } else if (out != NULL) {
        *out = json_loadb(mb.data != NULL ? mb.data : "", mb.len, 0, NULL);
        if (*out == NULL) {
            client_error("the server sent a malformed answer");
            rc = 1;
        }
    }
    free(mb.data);
    return rc;
}

struct download {
    FILE *f;
    EVP_MD_CTX *sha;
    char expected[65];
    long status;
    struct membuf err;
    int write_failed;
};

static size_t client_dl_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct download *d = userdata;
    size_t n = size * nitems;
    static const char name[] = "x-coffer-sha256:";
    if (n > sizeof(name) && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
        const char *v = buf + sizeof(name) - 1;
        while (*v == ' ')
            v++;
        if ((size_t)(buf + n - v) >= 64) {
            memcpy(d->expected, v, 64);
            d->expected[64] = '\0';
        }
    }
    return n;
}

static size_t client_dl_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct download *d = userdata;
    size_t n = size * nmemb;
    if (d->status == 0)
        d->status = 1;
    if (d->expected[0] == '\0') /* an error body */
        return client_mem_write(ptr, size, nmemb, &d->err);
    if (EVP_DigestUpdate(d->sha, ptr, n) != 1 || fwrite(ptr, 1, n, d->f) != n) {
        d->write_failed = 1;
        return 0;
    }
    return n;
}

int client_download(struct client *c, const char *path, const char *out_file)
{
    int to_stdout = strcmp(out_file, "-") == 0;
    char tmp[4200] = "";
    struct download d = {0};
    if (to_stdout) {
        d.f = stdout;
    } else {
        char copy[4096];
        snprintf(copy, sizeof(copy), "%s", out_file);
        snprintf(tmp, sizeof(tmp), "%s/.coffer-pull-XXXXXX", dirname(copy));
        int fd = mkstemp(tmp);
        if (fd < 0) {
            client_error("cannot create a file next to %s: %s", out_file, strerror(errno));
            return 1;
        }
        d.f = fdopen(fd, "wb");
        if (d.f == NULL) {
            close(fd);
            unlink(tmp);
            return 1;
        }
    }
    d.sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(d.sha, EVP_sha256(), NULL);
    struct curl_slist *headers = NULL;
    CURL *h = client_curl(c, "GET", path, &headers);
    int rc = 1;
    if (h != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        char errbuf[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, client_dl_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &d);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, client_dl_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &d);
        curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (cc == CURLE_OK && status == 200 && d.expected[0] != '\0' && !d.write_failed) {
            uint8_t digest[32];
            char hex[65];
            unsigned dl = 0;
            EVP_DigestFinal_ex(d.sha, digest, &dl);
            hex_encode(digest, sizeof(digest), hex);
            if (fflush(d.f) != 0 || (!to_stdout && fsync(fileno(d.f)) != 0)) {
                client_error("writing %s failed: %s", out_file, strerror(errno));
            } else if (!secure_streq(hex, d.expected)) {
                client_error("content hash mismatch: expected sha256:%s, got sha256:%s; the file "
                             "was not written",
                             d.expected, hex);
                rc = 7;
            } else {
                rc = 0;
            }
        } else if (d.write_failed) {
            client_error("writing %s failed: %s", out_file, strerror(errno));
        } else if (cc != CURLE_OK && status == 200) {
            client_error("the download broke off (%s); the stored content may be damaged: nothing "
                         "was written",
                         errbuf[0] ? errbuf : curl_easy_strerror(cc));
            rc = 7;
        } else {
            rc = client_report(cc, status, &d.err, errbuf);
        }
        curl_easy_cleanup(h);
    }
    curl_slist_free_all(headers);
    EVP_MD_CTX_free(d.sha);
    free(d.err.data);
    if (!to_stdout) {
        fclose(d.f);
        if (rc == 0 && rename(tmp, out_file) != 0) {
            client_error("cannot move the download to %s: %s", out_file, strerror(errno));
            rc = 1;
        }
        if (rc != 0)
            unlink(tmp);
    }
    return rc;
}
