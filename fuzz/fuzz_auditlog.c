/*
 * Fuzz target for the audit log readers: the events.log framing and tree
 * recomputation, the heads.log parser, trusted heads and proof JSON.
 *
 * Input: byte 0 selects the entry point, bytes 1..4 (u32 BE) split the rest
 * into an "events.log" part and a second part (heads.log, trusted head or
 * proof). Heads are checked with a fixed Ed25519 key (private key bytes
 * 1..32), so seeds can carry valid signatures and reach the root checks.
 */
#include "audit/audit.h"
#include "audit/sth.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint8_t fixed_pub[AUDIT_PUBKEY_LEN];

static int init_key(void)
{
    uint8_t priv[32];
    for (int i = 0; i < 32; i++)
        priv[i] = (uint8_t)(i + 1);
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, sizeof(priv));
    if (k == NULL || audit_pubkey_raw(k, fixed_pub) != 0)
        abort();
    EVP_PKEY_free(k);
    return 1;
}

static char *dup_str(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready)
        ready = init_key();
    if (size < 5)
        return 0;
    uint8_t mode = data[0];
    uint32_t split =
        (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 | data[4];
    data += 5;
    size -= 5;
    size_t elen = split % (size + 1);
    const uint8_t *ev = data, *rest = data + elen;
    size_t rlen = size - elen;
    struct audit_verify_report rep;
    char reason[256];

    switch (mode % 4) {
    case 0:
        (void)audit_verify_buffers(ev, elen, rest, rlen, fixed_pub, NULL, &rep);
        break;
    case 1: {
        char *trusted = dup_str(rest, rlen);
        (void)audit_verify_buffers(ev, elen, NULL, 0, fixed_pub, trusted, &rep);
        free(trusted);
        break;
    }
    case 2: {
        char *proof = dup_str(rest, rlen);
        struct audit_proof_check chk = {
            .event_json = (const char *)ev, .event_len = elen, .trusted_head_json = NULL};
        (void)audit_verify_proof_json_raw(proof, fixed_pub, &chk, reason, sizeof(reason));
        free(proof);
        break;
    }
    default: {
        struct audit_sth s;
        (void)audit_sth_parse((const char *)rest, rlen, &s);
        (void)audit_verify_buffers(ev, elen, rest, rlen, fixed_pub, NULL, &rep);
        break;
    }
    }
    return 0;
}
