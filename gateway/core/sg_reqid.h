/*
 * Request ids: self-validating, so any instance of a deployment can tell a forged or mangled
 * id (404) from a genuine one it has no record of (pending elsewhere, or expired) without a
 * lookup.
 *
 * An id is 24 raw bytes, sent as 32 base64url characters without padding:
 *
 *     time_ms (6, big-endian) | instance (4, BE) | loop (2, BE) | counter (4, BE) | MAC (8)
 *
 * MAC = SipHash-2-4 over the first 16 bytes under a key derived from the deployment's secret,
 * written as SipHash's 8 output bytes (little-endian, as the SipHash reference emits them).
 * The fields make ids unique without randomness: (instance, loop) names the issuer and the
 * counter is per loop, so uniqueness needs no entropy, and time_ms makes ids from a restarted
 * instance differ from its previous run. Big-endian fields make ids of one issuer sort by
 * time in their raw form. The MAC is a 64-bit tag: a guessed id is accepted with probability 2^-64.
 *
 * Everything here is pure computation on caller memory: no allocation, any thread.
 */
#ifndef SG_REQID_H
#define SG_REQID_H

#include <stddef.h>
#include <stdint.h>

#include "sg_base.h"

#define SG_REQID_RAW_LEN 24
#define SG_REQID_TEXT_LEN 32 /* 24 raw bytes -> 32 base64url chars, no padding */
#define SG_REQID_TIME_MAX ((UINT64_C(1) << 48) - 1)

typedef struct st_sg_reqid_t {
    uint64_t time_ms; /* milliseconds since the epoch; only the low 48 bits are encoded */
    uint32_t instance;
    uint16_t loop;
    uint32_t counter;
} sg_reqid_t;

/* The MAC key: SipHash-2-4's (sg_siphash24 in sg_base). */
typedef sg_sipkey_t sg_reqid_key_t;

/**
 * Derives the 128-bit MAC key from an arbitrary secret of len bytes (secret may be NULL when
 * len is 0): the first 16 bytes of SHA-256("streamgate reqid v1" NUL || secret), read as two
 * little-endian words. The label keeps this key distinct from any other key someone derives
 * from the same configured secret. Any thread.
 */
void sg_reqid_key_derive(sg_reqid_key_t *key, const void *secret, size_t len);

/**
 * Writes the 32-character text of id under key into out, NUL-terminated. The top 16 bits of
 * time_ms are dropped (2^48 ms is past the year 10000). Any thread.
 */
void sg_reqid_format(const sg_reqid_key_t *key, const sg_reqid_t *id, char out[SG_REQID_TEXT_LEN + 1]);

/**
 * Parses text[0..len) (no NUL needed; never reads past len). Returns 0 and fills out when text
 * is exactly 32 base64url characters whose MAC verifies under key (compared in constant time);
 * returns -1 otherwise and leaves out untouched. Any thread.
 */
int sg_reqid_parse(const sg_reqid_key_t *key, const char *text, size_t len, sg_reqid_t *out);

#endif
