#include "keys/pkcs11.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <p11-kit-1/p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/file.h"
#include "util/log.h"
#include "util/secure.h"

#define P11_IV_LEN 12
#define P11_TAG_LEN 16
#define P11_KEY_LEN 32
#define P11_WRAP_LABEL "coffer-dek-v1"
#define P11_WRAP_LABEL_LEN (sizeof(P11_WRAP_LABEL) - 1)
#define P11_AD_MAX 1024
#define P11_PIN_MAX 256
#define P11_POOL_MAX 8
#define P11_MAX_KEKS 4096
#define P11_PROVIDER_MAX (64 * 1024)

struct p11_kek {
    char id[KEYS_KEK_ID_CAP];
    unsigned long n; /* the N of coffer-kek-N */
    int64_t created;
    CK_OBJECT_HANDLE h;
};

struct p11 {
    pthread_mutex_t lock; /* guards keks, count, idle, nidle */
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    int initialized;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE login; /* keeps the user logged in */
    int have_login;
    CK_SESSION_HANDLE idle[P11_POOL_MAX];
    size_t nidle;
    struct p11_kek *keks; /* sorted by n, the last one is current */
    size_t count, cap;
    char token[33];
};

static const char p11_name[] = "pkcs11";

static void p11_destroy(struct key_provider *kp);

static struct p11 *p11_impl(struct key_provider *kp)
{
    if (kp == NULL || kp->name != p11_name || kp->impl == NULL)
        return NULL;
    return kp->impl;
}

/* ---- sessions ---- */

static CK_RV p11_session_take(struct p11 *p, CK_SESSION_HANDLE *s)
{
    pthread_mutex_lock(&p->lock);
    if (p->nidle > 0) {
        *s = p->idle[--p->nidle];
        pthread_mutex_unlock(&p->lock);
        return CKR_OK;
    }
    pthread_mutex_unlock(&p->lock);
    return p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);
}

static void p11_session_give(struct p11 *p, CK_SESSION_HANDLE s)
{
    pthread_mutex_lock(&p->lock);
    if (p->nidle < P11_POOL_MAX) {
        p->idle[p->nidle++] = s;
        s = CK_INVALID_HANDLE;
    }
    pthread_mutex_unlock(&p->lock);
    if (s != CK_INVALID_HANDLE)
        p->f->C_CloseSession(s);
}

/* ---- KEK list ---- */

/* Parses "coffer-kek-N" (N >= 1, decimal, no sign). 0 on success. */
static int p11_label_n(const char *label, unsigned long *n)
{
    size_t pl = sizeof(PKCS11_LABEL_PREFIX) - 1;
    if (strncmp(label, PKCS11_LABEL_PREFIX, pl) != 0)
        return -1;
    const char *d = label + pl;
    if (*d < '1' || *d > '9' || strlen(d) > 9)
        return -1;
    for (const char *c = d; *c != '\0'; c++) {
        if (*c < '0' || *c > '9')
            return -1;
    }
    *n = strtoul(d, NULL, 10);
    return 0;
}

static int p11_kek_cmp(const void *a, const void *b)
{
    const struct p11_kek *x = a, *y = b;
    return x->n < y->n ? -1 : x->n > y->n ? 1 : 0;
}

/* Adds one KEK to the list (lock held or not yet shared). */
static enum err p11_kek_add(struct p11 *p, const struct p11_kek *k)
{
    if (p->count == p->cap) {
        if (p->cap >= P11_MAX_KEKS)
            return ERR_TOO_LARGE;
        size_t cap = p->cap == 0 ? 8 : p->cap * 2;
        struct p11_kek *keks = realloc(p->keks, cap * sizeof(*keks));
        if (keks == NULL)
            return ERR_INTERNAL;
        p->keks = keks;
        p->cap = cap;
    }
    p->keks[p->count++] = *k;
    qsort(p->keks, p->count, sizeof(*p->keks), p11_kek_cmp);
    return ERR_OK;
}

/* Reads label and creation time of one object into k. 0 if it is a coffer KEK. */
static int p11_kek_read(struct p11 *p, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, struct p11_kek *k)
{
    char label[KEYS_KEK_ID_CAP], idtext[32];
    CK_ATTRIBUTE attrs[] = {{CKA_LABEL, label, sizeof(label) - 1},
                            {CKA_ID, idtext, sizeof(idtext) - 1}};
    if (p->f->C_GetAttributeValue(s, h, attrs, 2) != CKR_OK ||
        attrs[0].ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return -1;
    label[attrs[0].ulValueLen] = '\0';
    memset(k, 0, sizeof(*k));
    if (p11_label_n(label, &k->n) != 0)
        return -1;
    memcpy(k->id, label, attrs[0].ulValueLen + 1);
    if (attrs[1].ulValueLen != CK_UNAVAILABLE_INFORMATION) {
        idtext[attrs[1].ulValueLen] = '\0';
        k->created = strtoll(idtext, NULL, 10);
    }
    k->h = h;
    return 0;
}

/* Lists the token's coffer KEKs into p->keks. */
static enum err p11_kek_scan(struct p11 *p, CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
                           {CKA_KEY_TYPE, &kt, sizeof(kt)},
                           {CKA_TOKEN, &yes, sizeof(yes)}};
    if (p->f->C_FindObjectsInit(s, tmpl, 3) != CKR_OK)
        return ERR_INTERNAL;
    enum err rc = ERR_OK;
    for (;;) {
        CK_OBJECT_HANDLE h[32];
        CK_ULONG n = 0;
        if (p->f->C_FindObjects(s, h, 32, &n) != CKR_OK) {
            rc = ERR_INTERNAL;
            break;
        }
        if (n == 0)
            break;
        for (CK_ULONG i = 0; i < n && rc == ERR_OK; i++) {
            struct p11_kek k;
            if (p11_kek_read(p, s, h[i], &k) == 0)
                rc = p11_kek_add(p, &k);
        }
        if (rc != ERR_OK)
            break;
    }
    p->f->C_FindObjectsFinal(s);
    return rc;
}

/* Generates coffer-kek-(highest N + 1) in the token and adds it (lock held). */
static enum err p11_kek_generate(struct p11 *p, CK_SESSION_HANDLE s, struct p11_kek *out)
{
    struct p11_kek k;
    memset(&k, 0, sizeof(k));
    k.n = p->count > 0 ? p->keks[p->count - 1].n + 1 : 1;
    k.created = (int64_t)time(NULL);
    snprintf(k.id, sizeof(k.id), PKCS11_LABEL_PREFIX "%lu", k.n);
    char idtext[32];
    int idlen = snprintf(idtext, sizeof(idtext), "%lld", (long long)k.created);
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG len = P11_KEY_LEN;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},     {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},   {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)}, {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},   {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},      {CKA_MODIFIABLE, &no, sizeof(no)},
        {CKA_LABEL, k.id, strlen(k.id)},    {CKA_ID, idtext, (CK_ULONG)idlen},
    };
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CK_RV rv = p->f->C_GenerateKey(s, &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &k.h);
    if (rv != CKR_OK) {
        log_error("pkcs11 token %s: cannot generate a KEK (CKR 0x%lx)", p->token,
                  (unsigned long)rv);
        return ERR_INTERNAL;
    }
    enum err rc = p11_kek_add(p, &k);
    if (rc != ERR_OK) {
        p->f->C_DestroyObject(s, k.h);
        return rc;
    }
    if (out != NULL)
        *out = k;
    return ERR_OK;
}

/* Handle of KEK id (current when id is NULL); copies its id when id_out is not NULL. */
static int p11_kek_handle(struct p11 *p, const char *id, CK_OBJECT_HANDLE *h, char *id_out,
                          size_t id_cap)
{
    int found = 0;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->count; i++) {
        const struct p11_kek *k = &p->keks[i];
        if ((id == NULL && i == p->count - 1) || (id != NULL && strcmp(k->id, id) == 0)) {
            *h = k->h;
            found = 1;
            if (id_out != NULL) {
                if (strlen(k->id) >= id_cap)
                    found = -1;
                else
                    memcpy(id_out, k->id, strlen(k->id) + 1);
            }
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return found;
}

/* ---- wrap / unwrap ---- */

/* AAD = label || ad in a new buffer the caller frees. */
static uint8_t *p11_aad(const uint8_t *ad, size_t ad_len, size_t *len)
{
    uint8_t *aad = malloc(P11_WRAP_LABEL_LEN + ad_len + 1);
    if (aad == NULL)
        return NULL;
    memcpy(aad, P11_WRAP_LABEL, P11_WRAP_LABEL_LEN);
    if (ad_len > 0)
        memcpy(aad + P11_WRAP_LABEL_LEN, ad, ad_len);
    *len = P11_WRAP_LABEL_LEN + ad_len;
    return aad;
}

static enum err p11_wrap(struct key_provider *kp, const uint8_t *dek, size_t dek_len,
                         const uint8_t *ad, size_t ad_len, uint8_t *out, size_t out_cap,
                         size_t *out_len, char *kek_id, size_t kek_id_cap)
{
    struct p11 *p = p11_impl(kp);
    if (p == NULL || dek == NULL || dek_len == 0 || dek_len > KEYS_DEK_MAX ||
        (ad == NULL && ad_len > 0) || ad_len > P11_AD_MAX || out == NULL || out_len == NULL ||
        kek_id == NULL || out_cap < P11_IV_LEN + dek_len + P11_TAG_LEN)
        return ERR_INVALID;
    *out_len = 0;
    CK_OBJECT_HANDLE h;
    int found = p11_kek_handle(p, NULL, &h, kek_id, kek_id_cap);
    if (found <= 0)
        return found < 0 ? ERR_INVALID : ERR_UNAVAILABLE;
    if (secure_random(out, P11_IV_LEN) != 0)
        return ERR_INTERNAL;
    size_t aad_len = 0;
    uint8_t *aad = p11_aad(ad, ad_len, &aad_len);
    if (aad == NULL)
        return ERR_INTERNAL;
    CK_GCM_PARAMS gp = {out, P11_IV_LEN, P11_IV_LEN * 8, aad, aad_len, P11_TAG_LEN * 8};
    CK_MECHANISM mech = {CKM_AES_GCM, &gp, sizeof(gp)};
    CK_SESSION_HANDLE s;
    CK_RV rv = p11_session_take(p, &s);
    enum err rc = ERR_INTERNAL;
    if (rv == CKR_OK) {
        CK_ULONG clen = (CK_ULONG)(out_cap - P11_IV_LEN);
        rv = p->f->C_EncryptInit(s, &mech, h);
        if (rv == CKR_OK)
            rv = p->f->C_Encrypt(s, (CK_BYTE_PTR)dek, (CK_ULONG)dek_len, out + P11_IV_LEN, &clen);
        if (rv == CKR_OK && clen == dek_len + P11_TAG_LEN) {
            *out_len = P11_IV_LEN + clen;
            rc = ERR_OK;
        }
        p11_session_give(p, s);
    }
    if (rc != ERR_OK) {
        log_error("pkcs11 token %s: wrapping failed (CKR 0x%lx)", p->token, (unsigned long)rv);
        secure_wipe(out, out_cap);
    }
    free(aad);
    return rc;
}

static enum err p11_unwrap(struct key_provider *kp, const char *kek_id, const uint8_t *wrapped,
                           size_t wrapped_len, const uint8_t *ad, size_t ad_len, uint8_t *dek_out,
                           size_t dek_cap, size_t *dek_len)
{
    struct p11 *p = p11_impl(kp);
    if (p == NULL || kek_id == NULL || wrapped == NULL || (ad == NULL && ad_len > 0) ||
        ad_len > P11_AD_MAX || dek_out == NULL || dek_len == NULL)
        return ERR_INVALID;
    *dek_len = 0;
    if (wrapped_len <= P11_IV_LEN + P11_TAG_LEN ||
        wrapped_len > P11_IV_LEN + KEYS_DEK_MAX + P11_TAG_LEN)
        return ERR_INTEGRITY;
    const size_t len = wrapped_len - P11_IV_LEN - P11_TAG_LEN;
    if (dek_cap < len)
        return ERR_INVALID;
    CK_OBJECT_HANDLE h;
    if (p11_kek_handle(p, kek_id, &h, NULL, 0) <= 0)
        return ERR_NOT_FOUND;
    size_t aad_len = 0;
    uint8_t *aad = p11_aad(ad, ad_len, &aad_len);
    if (aad == NULL)
        return ERR_INTERNAL;
    uint8_t iv[P11_IV_LEN], plain[KEYS_DEK_MAX + P11_TAG_LEN];
    memcpy(iv, wrapped, sizeof(iv));
    CK_GCM_PARAMS gp = {iv, P11_IV_LEN, P11_IV_LEN * 8, aad, aad_len, P11_TAG_LEN * 8};
    CK_MECHANISM mech = {CKM_AES_GCM, &gp, sizeof(gp)};
    CK_SESSION_HANDLE s;
    CK_RV rv = p11_session_take(p, &s);
    enum err rc = ERR_INTERNAL;
    if (rv == CKR_OK) {
        CK_ULONG plen = sizeof(plain);
        rv = p->f->C_DecryptInit(s, &mech, h);
        if (rv == CKR_OK) {
            rv = p->f->C_Decrypt(s, (CK_BYTE_PTR)wrapped + P11_IV_LEN,
                                 (CK_ULONG)(wrapped_len - P11_IV_LEN), plain, &plen);
            if (rv == CKR_OK && plen == len) {
                memcpy(dek_out, plain, len);
                *dek_len = len;
                rc = ERR_OK;
            } else if (rv == CKR_OK || rv == CKR_ENCRYPTED_DATA_INVALID ||
                       rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_GENERAL_ERROR ||
                       rv == CKR_FUNCTION_FAILED) {
                /* SoftHSM2 reports a failed tag check as a general error. */
                rc = ERR_INTEGRITY;
            }
        }
        if (rv == CKR_KEY_HANDLE_INVALID)
            rc = ERR_NOT_FOUND;
        p11_session_give(p, s);
    }
    if (rc == ERR_INTERNAL)
        log_error("pkcs11 token %s: unwrapping failed (CKR 0x%lx)", p->token, (unsigned long)rv);
    secure_wipe(plain, sizeof(plain));
    if (rc != ERR_OK)
        secure_wipe(dek_out, len);
    free(aad);
    return rc;
}

/* ---- KEK management hooks ---- */

static enum err p11_rotate(struct key_provider *kp, char *new_id, size_t new_id_cap)
{
    struct p11 *p = p11_impl(kp);
    if (p == NULL)
        return ERR_INVALID;
    CK_SESSION_HANDLE s;
    if (p11_session_take(p, &s) != CKR_OK)
        return ERR_INTERNAL;
    struct p11_kek k;
    pthread_mutex_lock(&p->lock);
    enum err rc = p11_kek_generate(p, s, &k);
    pthread_mutex_unlock(&p->lock);
    p11_session_give(p, s);
    if (rc != ERR_OK)
        return rc;
    if (new_id != NULL)
        snprintf(new_id, new_id_cap, "%s", k.id);
    log_info("pkcs11 token %s: rotated, current key is now %s", p->token, k.id);
    return ERR_OK;
}

static enum err p11_destroy_kek(struct key_provider *kp, const char *id)
{
    struct p11 *p = p11_impl(kp);
    if (p == NULL || id == NULL)
        return ERR_INVALID;
    CK_SESSION_HANDLE s;
    if (p11_session_take(p, &s) != CKR_OK)
        return ERR_INTERNAL;
    enum err rc = ERR_NOT_FOUND;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->count; i++) {
        if (strcmp(p->keks[i].id, id) != 0)
            continue;
        if (i == p->count - 1) {
            rc = ERR_CONFLICT;
            break;
        }
        CK_RV rv = p->f->C_DestroyObject(s, p->keks[i].h);
        if (rv != CKR_OK) {
            log_error("pkcs11 token %s: cannot destroy %s (CKR 0x%lx)", p->token, id,
                      (unsigned long)rv);
            rc = ERR_INTERNAL;
            break;
        }
        memmove(&p->keks[i], &p->keks[i + 1], (p->count - i - 1) * sizeof(*p->keks));
        p->count--;
        rc = ERR_OK;
        log_info("pkcs11 token %s: destroyed retired key %s", p->token, id);
        break;
    }
    pthread_mutex_unlock(&p->lock);
    p11_session_give(p, s);
    return rc;
}

static size_t p11_kek_count(struct key_provider *kp)
{
    struct p11 *p = p11_impl(kp);
    if (p == NULL)
        return 0;
    pthread_mutex_lock(&p->lock);
    size_t n = p->count;
    pthread_mutex_unlock(&p->lock);
    return n;
}

static enum err p11_kek_info(struct key_provider *kp, size_t i, struct keys_kek_info *info)
{
    struct p11 *p = p11_impl(kp);
    if (p == NULL || info == NULL)
        return ERR_INVALID;
    enum err rc = ERR_NOT_FOUND;
    pthread_mutex_lock(&p->lock);
    if (i < p->count) {
        memcpy(info->id, p->keks[i].id, sizeof(info->id));
        info->created = p->keks[i].created;
        info->current = i == p->count - 1;
        rc = ERR_OK;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* ---- opening ---- */

/* Reads the PIN from cfg->pin_file or COFFER_PKCS11_PIN into pin (NUL-terminated). */
static enum err p11_pin(const struct pkcs11_config *cfg, char pin[P11_PIN_MAX + 1])
{
    if (cfg->pin_file[0] == '\0') {
        const char *env = getenv(PKCS11_PIN_ENV);
        if (env == NULL || env[0] == '\0' || strlen(env) > P11_PIN_MAX) {
            log_error("no PIN for the PKCS#11 token %s: give pin-file=PATH in the URI or set "
                      "%s",
                      cfg->token, PKCS11_PIN_ENV);
            return ERR_UNAUTHENTICATED;
        }
        memcpy(pin, env, strlen(env) + 1);
        return ERR_OK;
    }
    int fd = open(cfg->pin_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        log_error("PIN file %s: cannot open: %s", cfg->pin_file, strerror(errno));
        return errno == ENOENT ? ERR_NOT_FOUND : ERR_IO;
    }
    struct stat st;
    enum err rc = ERR_IO;
    if (fstat(fd, &st) != 0)
        goto done;
    if (!S_ISREG(st.st_mode) || (st.st_mode & 0077) != 0) {
        log_error("PIN file %s must be a regular file only its owner can access; run chmod 600 "
                  "on it",
                  cfg->pin_file);
        rc = ERR_FORBIDDEN;
        goto done;
    }
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, pin + got, P11_PIN_MAX - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto done;
        if (n == 0)
            break;
        got += (size_t)n;
        if (got == P11_PIN_MAX)
            break;
    }
    pin[got] = '\0';
    while (got > 0 && (pin[got - 1] == '\n' || pin[got - 1] == '\r'))
        pin[--got] = '\0';
    rc = got > 0 ? ERR_OK : ERR_UNAUTHENTICATED;
    if (rc != ERR_OK)
        log_error("PIN file %s is empty", cfg->pin_file);
done:
    close(fd);
    return rc;
}

/* Finds the slot whose token carries label. */
static enum err p11_find_slot(struct p11 *p, const char *label)
{
    CK_ULONG n = 0;
    if (p->f->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK)
        return ERR_INTERNAL;
    if (n == 0 || n > 4096)
        return ERR_NOT_FOUND;
    CK_SLOT_ID *slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return ERR_INTERNAL;
    enum err rc = ERR_NOT_FOUND;
    if (p->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        rc = ERR_INTERNAL;
    for (CK_ULONG i = 0; rc == ERR_NOT_FOUND && i < n; i++) {
        CK_TOKEN_INFO ti;
        if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        size_t l = sizeof(ti.label);
        while (l > 0 && ti.label[l - 1] == ' ')
            l--;
        if (l == strlen(label) && memcmp(ti.label, label, l) == 0) {
            p->slot = slots[i];
            rc = ERR_OK;
        }
    }
    free(slots);
    return rc;
}

static enum err p11_load(struct p11 *p, const struct pkcs11_config *cfg)
{
    p->dl = dlopen(cfg->module, RTLD_NOW | RTLD_LOCAL);
    if (p->dl == NULL) {
        log_error("cannot load the PKCS#11 module %s: %s", cfg->module, dlerror());
        return ERR_NOT_FOUND;
    }
    CK_C_GetFunctionList get = NULL;
    *(void **)&get = dlsym(p->dl, "C_GetFunctionList");
    if (get == NULL || get(&p->f) != CKR_OK || p->f == NULL) {
        log_error("%s is not a PKCS#11 module (no C_GetFunctionList)", cfg->module);
        return ERR_NOT_FOUND;
    }
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = p->f->C_Initialize(&args);
    if (rv != CKR_OK) {
        log_error("the PKCS#11 module %s failed to initialise (CKR 0x%lx)", cfg->module,
                  (unsigned long)rv);
        return ERR_INTERNAL;
    }
    p->initialized = 1;
    return ERR_OK;
}

static enum err p11_login(struct p11 *p, const struct pkcs11_config *cfg)
{
    char pin[P11_PIN_MAX + 1];
    enum err rc = p11_pin(cfg, pin);
    if (rc != ERR_OK)
        return rc;
    CK_RV rv =
        p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p->login);
    if (rv == CKR_OK) {
        p->have_login = 1;
        rv = p->f->C_Login(p->login, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin));
    }
    secure_wipe(pin, sizeof(pin));
    if (rv == CKR_USER_ALREADY_LOGGED_IN)
        rv = CKR_OK;
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_LEN_RANGE) {
        log_error("the PKCS#11 token %s refused the PIN (CKR 0x%lx)", cfg->token,
                  (unsigned long)rv);
        return ERR_UNAUTHENTICATED;
    }
    if (rv != CKR_OK) {
        log_error("cannot log in to the PKCS#11 token %s (CKR 0x%lx)", cfg->token,
                  (unsigned long)rv);
        return ERR_INTERNAL;
    }
    return ERR_OK;
}

enum err pkcs11_open(const struct pkcs11_config *cfg, int create, struct key_provider **out)
{
    if (cfg == NULL || out == NULL || cfg->module[0] == '\0' || cfg->token[0] == '\0')
        return ERR_INVALID;
    *out = NULL;
    struct key_provider *kp = calloc(1, sizeof(*kp));
    struct p11 *p = calloc(1, sizeof(*p));
    if (kp == NULL || p == NULL || pthread_mutex_init(&p->lock, NULL) != 0) {
        free(kp);
        free(p);
        return ERR_INTERNAL;
    }
    kp->name = p11_name;
    kp->destroy = p11_destroy;
    kp->impl = p;
    snprintf(p->token, sizeof(p->token), "%s", cfg->token);
    enum err rc = p11_load(p, cfg);
    if (rc == ERR_OK) {
        rc = p11_find_slot(p, cfg->token);
        if (rc == ERR_NOT_FOUND)
            log_error("no PKCS#11 token labelled '%s' in %s; initialise it first (e.g. "
                      "softhsm2-util --init-token)",
                      cfg->token, cfg->module);
    }
    if (rc == ERR_OK)
        rc = p11_login(p, cfg);
    if (rc == ERR_OK)
        rc = p11_kek_scan(p, p->login);
    if (rc == ERR_OK && p->count > 0 && create == PKCS11_OPEN_NEW) {
        log_error("the PKCS#11 token %s already holds coffer KEKs (%s*), probably of another "
                  "store; give each store its own token",
                  cfg->token, PKCS11_LABEL_PREFIX);
        rc = ERR_CONFLICT;
    }
    if (rc == ERR_OK && p->count == 0) {
        if (create != PKCS11_OPEN_EXISTING) {
            rc = p11_kek_generate(p, p->login, NULL);
        } else {
            log_error("the PKCS#11 token %s holds no coffer KEK (%s*); was the token "
                      "re-initialised?",
                      cfg->token, PKCS11_LABEL_PREFIX);
            rc = ERR_NOT_FOUND;
        }
    }
    if (rc != ERR_OK) {
        p11_destroy(kp);
        return rc;
    }
    kp->wrap = p11_wrap;
    kp->unwrap = p11_unwrap;
    kp->rotate = p11_rotate;
    kp->destroy_kek = p11_destroy_kek;
    kp->kek_count = p11_kek_count;
    kp->kek_info = p11_kek_info;
    *out = kp;
    return ERR_OK;
}

static void p11_destroy(struct key_provider *kp)
{
    if (kp == NULL)
        return;
    struct p11 *p = kp->impl;
    if (p != NULL) {
        if (p->initialized) {
            for (size_t i = 0; i < p->nidle; i++)
                p->f->C_CloseSession(p->idle[i]);
            if (p->have_login) {
                p->f->C_Logout(p->login);
                p->f->C_CloseSession(p->login);
            }
            p->f->C_Finalize(NULL);
        }
        if (p->dl != NULL)
            dlclose(p->dl);
        free(p->keks);
        pthread_mutex_destroy(&p->lock);
        free(p);
    }
    free(kp);
}

int pkcs11_is(struct key_provider *kp)
{
    return p11_impl(kp) != NULL;
}

enum err pkcs11_kek_attributes(struct key_provider *kp, const char *id, int *extractable,
                               int *never_extractable, int *sensitive)
{
    struct p11 *p = p11_impl(kp);
    if (p == NULL || id == NULL || extractable == NULL || never_extractable == NULL ||
        sensitive == NULL)
        return ERR_INVALID;
    CK_OBJECT_HANDLE h;
    if (p11_kek_handle(p, id, &h, NULL, 0) <= 0)
        return ERR_NOT_FOUND;
    CK_BBOOL ex = CK_TRUE, nex = CK_FALSE, sens = CK_FALSE;
    CK_ATTRIBUTE attrs[] = {{CKA_EXTRACTABLE, &ex, sizeof(ex)},
                            {CKA_NEVER_EXTRACTABLE, &nex, sizeof(nex)},
                            {CKA_SENSITIVE, &sens, sizeof(sens)}};
    CK_SESSION_HANDLE s;
    if (p11_session_take(p, &s) != CKR_OK)
        return ERR_INTERNAL;
    CK_RV rv = p->f->C_GetAttributeValue(s, h, attrs, 3);
    p11_session_give(p, s);
    if (rv != CKR_OK)
        return ERR_INTERNAL;
    *extractable = ex == CK_TRUE;
    *never_extractable = nex == CK_TRUE;
    *sensitive = sens == CK_TRUE;
    return ERR_OK;
}

/* ---- configuration ---- */

static int p11_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes len bytes of in into out (cap bytes, NUL-terminated). 0 or -1. */
static int p11_unescape(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = p11_hex(in[i + 1]), lo = p11_hex(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0' || o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

enum err pkcs11_parse_uri(const char *uri, struct pkcs11_config *cfg, char *why, size_t why_cap)
{
    if (uri == NULL || cfg == NULL)
        return ERR_INVALID;
    memset(cfg, 0, sizeof(*cfg));
    if (strncmp(uri, "pkcs11:", 7) != 0) {
        snprintf(why, why_cap, "a PKCS#11 URI starts with 'pkcs11:'");
        return ERR_INVALID;
    }
    const char *s = uri + 7;
    while (*s != '\0') {
        size_t len = strcspn(s, ";?&");
        const char *eq = memchr(s, '=', len);
        if (len > 0) {
            if (eq == NULL) {
                snprintf(why, why_cap, "attribute '%.*s' has no value", (int)(len > 40 ? 40 : len),
                         s);
                return ERR_INVALID;
            }
            size_t klen = (size_t)(eq - s);
            const char *v = eq + 1;
            size_t vlen = len - klen - 1;
            char *dst = NULL;
            size_t cap = 0;
            if ((klen == 6 && memcmp(s, "module", 6) == 0) ||
                (klen == 11 && memcmp(s, "module-path", 11) == 0)) {
                dst = cfg->module;
                cap = sizeof(cfg->module);
            } else if (klen == 5 && memcmp(s, "token", 5) == 0) {
                dst = cfg->token;
                cap = sizeof(cfg->token);
            } else if ((klen == 8 && memcmp(s, "pin-file", 8) == 0) ||
                       (klen == 10 && memcmp(s, "pin-source", 10) == 0)) {
                if (vlen >= 7 && memcmp(v, "file://", 7) == 0) {
                    v += 7;
                    vlen -= 7;
                } else if (vlen >= 5 && memcmp(v, "file:", 5) == 0) {
                    v += 5;
                    vlen -= 5;
                }
                dst = cfg->pin_file;
                cap = sizeof(cfg->pin_file);
            } else if (klen == 9 && memcmp(s, "pin-value", 9) == 0) {
                snprintf(why, why_cap,
                         "pin-value is not accepted; use pin-file=PATH or " PKCS11_PIN_ENV);
                return ERR_INVALID;
            } else {
                snprintf(why, why_cap, "unknown attribute '%.*s'; use module, token, pin-file",
                         (int)(klen > 40 ? 40 : klen), s);
                return ERR_INVALID;
            }
            if (p11_unescape(v, vlen, dst, cap) != 0 || dst[0] == '\0') {
                snprintf(why, why_cap, "bad or too long value for '%.*s'",
                         (int)(klen > 40 ? 40 : klen), s);
                return ERR_INVALID;
            }
        }
        s += len;
        if (*s != '\0')
            s++;
    }
    if (cfg->module[0] != '/' || cfg->token[0] == '\0') {
        snprintf(why, why_cap, "give module=/absolute/path/to/module.so and token=LABEL");
        return ERR_INVALID;
    }
    return ERR_OK;
}

enum err pkcs11_config_load(const char *data_dir, struct pkcs11_config *cfg, int *found)
{
    char path[PATH_MAX];
    if (data_dir == NULL || cfg == NULL || found == NULL)
        return ERR_INVALID;
    memset(cfg, 0, sizeof(*cfg));
    *found = 0;
    int n = snprintf(path, sizeof(path), "%s/" PKCS11_PROVIDER_FILE, data_dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return ERR_INVALID;
    if (access(path, F_OK) != 0)
        return errno == ENOENT ? ERR_OK : ERR_IO;
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        log_error("%s: not valid JSON (line %d)", path, jerr.line);
        return ERR_INVALID;
    }
    enum err rc = ERR_INVALID;
    const char *prov = json_string_value(json_object_get(root, "provider"));
    const char *mod = json_string_value(json_object_get(root, "module"));
    const char *tok = json_string_value(json_object_get(root, "token"));
    json_t *pf = json_object_get(root, "pin_file");
    if (prov == NULL || strcmp(prov, "pkcs11") != 0 || mod == NULL || tok == NULL ||
        (pf != NULL && !json_is_string(pf)) || strlen(mod) >= sizeof(cfg->module) ||
        strlen(tok) >= sizeof(cfg->token) ||
        (pf != NULL && json_string_length(pf) >= sizeof(cfg->pin_file))) {
        log_error("%s: expected {\"provider\": \"pkcs11\", \"module\", \"token\", \"pin_file\"}",
                  path);
        goto done;
    }
    snprintf(cfg->module, sizeof(cfg->module), "%s", mod);
    snprintf(cfg->token, sizeof(cfg->token), "%s", tok);
    if (pf != NULL)
        snprintf(cfg->pin_file, sizeof(cfg->pin_file), "%s", json_string_value(pf));
    *found = 1;
    rc = ERR_OK;
done:
    json_decref(root);
    return rc;
}

enum err pkcs11_config_save(const char *data_dir, const struct pkcs11_config *cfg)
{
    char path[PATH_MAX];
    if (data_dir == NULL || cfg == NULL)
        return ERR_INVALID;
    int n = snprintf(path, sizeof(path), "%s/" PKCS11_PROVIDER_FILE, data_dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return ERR_INVALID;
    json_t *root = json_pack("{s:s, s:s, s:s}", "provider", "pkcs11", "module", cfg->module,
                             "token", cfg->token);
    if (root != NULL && cfg->pin_file[0] != '\0')
        json_object_set_new(root, "pin_file", json_string(cfg->pin_file));
    char *text = root != NULL ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (text == NULL)
        return ERR_INTERNAL;
    enum err rc = ERR_OK;
    if (file_replace_private(path, text, strlen(text)) != 0) {
        log_error("cannot write %s: %s", path, strerror(errno));
        rc = errno == ENAMETOOLONG ? ERR_INVALID : ERR_IO;
    }
    free(text);
    return rc;
}
