/*
 * Request ids: formatting and MAC-verified parsing. The MAC is SipHash-2-4 (sg_base's
 * sg_siphash24: no allocation, a few dozen cycles, as ids are tagged on every request and
 * checked on every reply). Parsing decodes the fixed 24-byte payload group by group (no padding,
 * no error text) with sg_base's base64url alphabet.
 */
#include "sg_reqid.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "sg_base.h"

#define SG_REQID_BODY_LEN 16 /* raw bytes covered by the MAC */

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
        v = (v << 8) | p[i];
    return v;
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
    key->k0 = load_le64(digest);
    key->k1 = load_le64(digest + 8);
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
