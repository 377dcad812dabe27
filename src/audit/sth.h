/*
 * sth: signed tree heads and the Ed25519 signing key of the audit log.
 *
 * A signed tree head (STH) commits to the first tree_size events of the log.
 * The signed message is a fixed binary encoding (61 bytes):
 *
 *   "coffer-sth-v1" || u64 BE tree_size || u64 BE timestamp_ms || root (32 bytes)
 *
 * In heads.log and in exported heads an STH is one JSON object:
 *   {"tree_size":N,"timestamp":MS,"root":"<64 hex>","signature":"<128 hex>"}
 */
#ifndef COFFER_AUDIT_STH_H
#define COFFER_AUDIT_STH_H

#include "audit/merkle.h"
#include "util/err.h"

#include <stddef.h>
#include <stdint.h>

#define AUDIT_STH_DOMAIN "coffer-sth-v1"
#define AUDIT_STH_MSG_LEN (13 + 8 + 8 + MERKLE_HASH_LEN)
#define AUDIT_SIG_LEN 64
#define AUDIT_PUBKEY_LEN 32
/* "sha256:" + 64 hex + NUL */
#define AUDIT_FINGERPRINT_LEN 72
/* Longest heads.log line we accept (a real one is about 230 bytes). */
#define AUDIT_STH_LINE_MAX 1024

struct evp_pkey_st;

struct audit_sth {
    uint64_t tree_size;
    uint64_t timestamp_ms;
    merkle_hash root;
    uint8_t sig[AUDIT_SIG_LEN];
};

/* Writes the 61-byte signed message of s into out. */
void audit_sth_message(const struct audit_sth *s, uint8_t out[AUDIT_STH_MSG_LEN]);

/* Signs tree_size, timestamp_ms and root of s with the Ed25519 private key; fills s->sig. */
enum err audit_sth_sign(struct evp_pkey_st *key, struct audit_sth *s);

/* 1 if s->sig is a valid Ed25519 signature of s under pub, else 0. */
int audit_sth_verify(struct evp_pkey_st *pub, const struct audit_sth *s)
    __attribute__((warn_unused_result));

/* Formats s as one compact JSON object without newline into out (cap bytes).
 * Returns the length, or -1 if cap is too small. */
int audit_sth_format(const struct audit_sth *s, char *out, size_t cap);

/* Parses one STH JSON object of at most 64 KiB (the four fields, typed, hex of the right
 * lengths). Extra fields are allowed (exported heads carry more).
 * Returns ERR_OK or ERR_INVALID. */
enum err audit_sth_parse(const char *json, size_t len, struct audit_sth *out);

/* Loads DIR/signing.key, or creates it (mode 0600) with DIR/signing.pub if
 * absent; recreates a missing signing.pub; fails with ERR_INTEGRITY if an
 * existing signing.pub does not match the key. *key_out is freed by the
 * caller with EVP_PKEY_free. */
enum err audit_key_load_or_create(const char *dir, struct evp_pkey_st **key_out);

/* Loads an Ed25519 public key from a PEM file (SubjectPublicKeyInfo, or a
 * private key PEM from which the public half is taken). Caller frees. */
enum err audit_pubkey_load(const char *path, struct evp_pkey_st **pub_out);

/* Makes an Ed25519 public key from its 32 raw bytes. Caller frees. NULL on error. */
struct evp_pkey_st *audit_pubkey_from_raw(const uint8_t raw[AUDIT_PUBKEY_LEN]);

/* The 32 raw bytes of an Ed25519 key (public half). Returns 0 or -1. */
int audit_pubkey_raw(struct evp_pkey_st *key, uint8_t raw[AUDIT_PUBKEY_LEN]);

/* "sha256:" + hex(SHA-256(raw public key)). Returns 0 or -1. */
int audit_pubkey_fingerprint(struct evp_pkey_st *key, char out[AUDIT_FINGERPRINT_LEN]);

#endif
