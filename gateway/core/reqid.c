/*
 * Request ids: formatting, MAC-verified parsing, and the SipHash-2-4 they are tagged with.
 *
 * SipHash is written here from its published description (Aumasson and Bernstein, 2012)
 * rather than taken from OpenSSL, because OpenSSL only exposes it through the EVP_MAC
 * machinery, which allocates per call; ids are tagged on every request and checked on every
 * reply, so the MAC must be a few dozen cycles on the stack. Parsing decodes the fixed 24-byte
 * payload group by group (no padding, no error text) with sg_base's base64url alphabet.
 */
#include "sg_reqid.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "sg_base.h"

#define SG_REQID_BODY_LEN 16 /* raw bytes covered by the MAC */

static inline uint64_t sg_reqid_rotl(uint64_t x, unsigned bits)
{
    return (x << bits) | (x >> (64 - bits));
}

static inline uint64_t sg_reqid_load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = (v << 8) | p[i];
    return v;
}

#define SG_SIPROUND(v0, v1, v2, v3)                                                                                                \
    do {                                                                                                                           \
        v0 += v1;                                                                                                                  \
        v1 = sg_reqid_rotl(v1, 13);                                                                                                \
        v1 ^= v0;                                                                                                                  \
        v0 = sg_reqid_rotl(v0, 32);                                                                                                \
        v2 += v3;                                                                                                                  \
        v3 = sg_reqid_rotl(v3, 16);                                                                                                \
        v3 ^= v2;                                                                                                                  \
        v0 += v3;                                                                                                                  \
        v3 = sg_reqid_rotl(v3, 21);                                                                                                \
        v3 ^= v0;                                                                                                                  \
        v2 += v1;                                                                                                                  \
        v1 = sg_reqid_rotl(v1, 17);                                                                                                \
        v1 ^= v2;                                                                                                                  \
        v2 = sg_reqid_rotl(v2, 32);                                                                                                \
    } while (0)

uint64_t sg_siphash24(const sg_reqid_key_t *key, const void *data, size_t len)
{
    const uint8_t *in = data;
    /* Initialisation constants: "somepseudorandomlygeneratedbytes" in ASCII. */
    uint64_t v0 = key->k0 ^ UINT64_C(0x736f6d6570736575);
    uint64_t v1 = key->k1 ^ UINT64_C(0x646f72616e646f6d);
    uint64_t v2 = key->k0 ^ UINT64_C(0x6c7967656e657261);
    uint64_t v3 = key->k1 ^ UINT64_C(0x7465646279746573);

    size_t full = len - len % 8;
    for (size_t off = 0; off < full; off += 8) {
        uint64_t m = sg_reqid_load_le64(in + off);
        v3 ^= m;
        SG_SIPROUND(v0, v1, v2, v3);
        SG_SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }

    /* The last word holds the 0..7 remaining bytes and, in its top byte, len mod 256. */
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    for (size_t i = 0; i < len % 8; ++i)
        last |= (uint64_t)in[full + i] << (8 * i);
    v3 ^= last;
    SG_SIPROUND(v0, v1, v2, v3);
    SG_SIPROUND(v0, v1, v2, v3);
    v0 ^= last;

    v2 ^= 0xff;
    for (int i = 0; i < 4; ++i)
        SG_SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

void sg_reqid_key_derive(sg_reqid_key_t *key, const void *secret, size_t len)
{
    static const char label[] = "streamgate reqid v1"; /* hashed with its NUL */
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;

    /* Streaming EVP calls rather than one-shot SHA256(): that would need label and secret
     * copied into one buffer sized by the secret. This runs once at start-up, so the context
     * allocation does not matter; the SHA256_Init family is deprecated in OpenSSL 3. */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(ctx, label, sizeof(label)) != 1 ||
        (len != 0 && EVP_DigestUpdate(ctx, secret, len) != 1) || EVP_DigestFinal_ex(ctx, digest, &digest_len) != 1 ||
        digest_len != 32) {
        /* With the default provider these fail only when an allocation does. */
        sg_oom();
    }
    EVP_MD_CTX_free(ctx);
    key->k0 = sg_reqid_load_le64(digest);
    key->k1 = sg_reqid_load_le64(digest + 8);
    OPENSSL_cleanse(digest, sizeof(digest));
}

static void sg_reqid_encode_body(const sg_reqid_t *id, uint8_t raw[SG_REQID_RAW_LEN])
{
    uint64_t time_ms = id->time_ms & SG_REQID_TIME_MAX;
    for (int i = 0; i < 6; ++i)
        raw[i] = (uint8_t)(time_ms >> (8 * (5 - i)));
    for (int i = 0; i < 4; ++i)
        raw[6 + i] = (uint8_t)(id->instance >> (8 * (3 - i)));
    raw[10] = (uint8_t)(id->loop >> 8);
    raw[11] = (uint8_t)id->loop;
    for (int i = 0; i < 4; ++i)
        raw[12 + i] = (uint8_t)(id->counter >> (8 * (3 - i)));
}

static void sg_reqid_mac(const sg_reqid_key_t *key, const uint8_t body[SG_REQID_BODY_LEN], uint8_t mac[8])
{
    uint64_t tag = sg_siphash24(key, body, SG_REQID_BODY_LEN);
    for (int i = 0; i < 8; ++i)
        mac[i] = (uint8_t)(tag >> (8 * i));
}

void sg_reqid_format(const sg_reqid_key_t *key, const sg_reqid_t *id, char out[SG_REQID_TEXT_LEN + 1])
{
    uint8_t raw[SG_REQID_RAW_LEN];
    sg_reqid_encode_body(id, raw);
    sg_reqid_mac(key, raw, raw + SG_REQID_BODY_LEN);

    /* 24 bytes are exactly 8 groups of 3, so there is no partial group and no padding. */
    sg_b64url_encode(raw, SG_REQID_RAW_LEN, out);
}

int sg_reqid_parse(const sg_reqid_key_t *key, const char *text, size_t len, sg_reqid_t *out)
{
    if (text == NULL || len != SG_REQID_TEXT_LEN)
        return -1;

    uint8_t raw[SG_REQID_RAW_LEN];
    for (size_t group = 0; group < SG_REQID_RAW_LEN / 3; ++group) {
        uint32_t bits = 0;
        for (int i = 0; i < 4; ++i) {
            int value = sg_b64url_value((unsigned char)text[4 * group + i]);
            if (value < 0)
                return -1;
            bits = bits << 6 | (uint32_t)value;
        }
        raw[3 * group] = (uint8_t)(bits >> 16);
        raw[3 * group + 1] = (uint8_t)(bits >> 8);
        raw[3 * group + 2] = (uint8_t)bits;
    }

    /* Constant time: an early exit would tell a guesser how many leading MAC bytes are right. */
    uint8_t expected[8];
    sg_reqid_mac(key, raw, expected);
    uint8_t diff = 0;
    for (int i = 0; i < 8; ++i)
        diff |= (uint8_t)(expected[i] ^ raw[SG_REQID_BODY_LEN + i]);
    if (diff != 0)
        return -1;

    uint64_t time_ms = 0;
    for (int i = 0; i < 6; ++i)
        time_ms = time_ms << 8 | raw[i];
    uint32_t instance = 0, counter = 0;
    for (int i = 0; i < 4; ++i) {
        instance = instance << 8 | raw[6 + i];
        counter = counter << 8 | raw[12 + i];
    }
    out->time_ms = time_ms;
    out->instance = instance;
    out->loop = (uint16_t)(raw[10] << 8 | raw[11]);
    out->counter = counter;
    return 0;
}
