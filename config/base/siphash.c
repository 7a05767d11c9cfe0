/*
 * SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012), written from its
 * published description, in two strengths: c compression rounds per 8-byte word, d finalization
 * rounds. OpenSSL only offers it through EVP_MAC, which allocates per call.
 *
 * SipHash-2-4 is the MAC of request ids (gateway/core/reqid.c): tagged on every request, checked
 * on every reply, a few dozen cycles on the stack.
 *
 * SipHash-1-3 (one compression round, three finalization rounds) is a keyed hash for tables
 * whose keys a client chooses. Under a random key nobody who does not know it can predict a value or aim inputs at
 * one bucket; it is not a MAC and not collision-resistant against someone who knows the key, so a
 * table that uses it still compares the keys themselves. 1-3 rather than 2-4 because the inputs
 * can be kilobytes (bearer tokens) and nothing here rests on it being a PRF against an attacker
 * who sees its outputs (they never leave the process): the same trade Rust's HashMap and
 * CPython's str hash make.
 */
#include "sg_base.h"

#include <string.h>

static inline uint64_t rotl(uint64_t x, unsigned bits)
{
    return (x << bits) | (x >> (64 - bits));
}

/* The input is read as little-endian words whatever the host's byte order. */
static inline uint64_t load_le64(const uint8_t *in)
{
    uint64_t word;
    memcpy(&word, in, sizeof(word));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64(word);
#endif
    return word;
}

#define SIPROUND                                                                                                                   \
    do {                                                                                                                           \
        v0 += v1;                                                                                                                  \
        v1 = rotl(v1, 13);                                                                                                         \
        v1 ^= v0;                                                                                                                  \
        v0 = rotl(v0, 32);                                                                                                         \
        v2 += v3;                                                                                                                  \
        v3 = rotl(v3, 16);                                                                                                         \
        v3 ^= v2;                                                                                                                  \
        v0 += v3;                                                                                                                  \
        v3 = rotl(v3, 21);                                                                                                         \
        v3 ^= v0;                                                                                                                  \
        v2 += v1;                                                                                                                  \
        v1 = rotl(v1, 17);                                                                                                         \
        v1 ^= v2;                                                                                                                  \
        v2 = rotl(v2, 32);                                                                                                         \
    } while (0)

/* c and d are constants at both call sites, so each entry point compiles to straight-line rounds. */
static inline uint64_t siphash(const sg_sipkey_t *key, const void *data, size_t len, int c, int d)
{
    const uint8_t *in = data;
    /* Initialisation constants: "somepseudorandomlygeneratedbytes" in ASCII. */
    uint64_t v0 = key->k0 ^ UINT64_C(0x736f6d6570736575);
    uint64_t v1 = key->k1 ^ UINT64_C(0x646f72616e646f6d);
    uint64_t v2 = key->k0 ^ UINT64_C(0x6c7967656e657261);
    uint64_t v3 = key->k1 ^ UINT64_C(0x7465646279746573);

    const uint8_t *end = in + (len - len % 8);
    for (; in != end; in += 8) {
        uint64_t m = load_le64(in);
        v3 ^= m;
        for (int i = 0; i < c; i++)
            SIPROUND;
        v0 ^= m;
    }
    /* The last word: the 0..7 remaining bytes, and len mod 256 in its top byte. */
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    for (size_t i = 0; i < len % 8; i++)
        last |= (uint64_t)in[i] << (8 * i);
    v3 ^= last;
    for (int i = 0; i < c; i++)
        SIPROUND;
    v0 ^= last;

    v2 ^= 0xff;
    for (int i = 0; i < d; i++)
        SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t sg_siphash13(const sg_sipkey_t *key, const void *data, size_t len)
{
    return siphash(key, data, len, 1, 3);
}

uint64_t sg_siphash24(const sg_sipkey_t *key, const void *data, size_t len)
{
    return siphash(key, data, len, 2, 4);
}
