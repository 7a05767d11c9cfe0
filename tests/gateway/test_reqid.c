/*
 * Unit tests for request ids and SipHash-2-4 (gateway/core/reqid.c).
 *
 * SipHash is checked against the 64 reference vectors published with the algorithm (key
 * 00..0f, message 00 01 .. of lengths 0..63). The id wire format is pinned by an independent
 * encoder in this file (big-endian fields, MAC bytes, its own base64url by bit accumulator),
 * and the key derivation by digests computed with the openssl command-line tool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sg_reqid.h"

/* The 8 output bytes of SipHash-2-4 for key 00..0f and message 00 01 .. (len-1), len = index. */
static const uint8_t sip_vectors[64][8] = {
    {0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72}, {0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74},
    {0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d}, {0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85},
    {0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf}, {0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18},
    {0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb}, {0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab},
    {0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93}, {0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e},
    {0xf3, 0xb9, 0xdd, 0x94, 0xc5, 0xbb, 0x5d, 0x7a}, {0xa7, 0xad, 0x6b, 0x22, 0x46, 0x2f, 0xb3, 0xf4},
    {0xfb, 0xe5, 0x0e, 0x86, 0xbc, 0x8f, 0x1e, 0x75}, {0x90, 0x3d, 0x84, 0xc0, 0x27, 0x56, 0xea, 0x14},
    {0xee, 0xf2, 0x7a, 0x8e, 0x90, 0xca, 0x23, 0xf7}, {0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1},
    {0xdb, 0x9b, 0xc2, 0x57, 0x7f, 0xcc, 0x2a, 0x3f}, {0x94, 0x47, 0xbe, 0x2c, 0xf5, 0xe9, 0x9a, 0x69},
    {0x9c, 0xd3, 0x8d, 0x96, 0xf0, 0xb3, 0xc1, 0x4b}, {0xbd, 0x61, 0x79, 0xa7, 0x1d, 0xc9, 0x6d, 0xbb},
    {0x98, 0xee, 0xa2, 0x1a, 0xf2, 0x5c, 0xd6, 0xbe}, {0xc7, 0x67, 0x3b, 0x2e, 0xb0, 0xcb, 0xf2, 0xd0},
    {0x88, 0x3e, 0xa3, 0xe3, 0x95, 0x67, 0x53, 0x93}, {0xc8, 0xce, 0x5c, 0xcd, 0x8c, 0x03, 0x0c, 0xa8},
    {0x94, 0xaf, 0x49, 0xf6, 0xc6, 0x50, 0xad, 0xb8}, {0xea, 0xb8, 0x85, 0x8a, 0xde, 0x92, 0xe1, 0xbc},
    {0xf3, 0x15, 0xbb, 0x5b, 0xb8, 0x35, 0xd8, 0x17}, {0xad, 0xcf, 0x6b, 0x07, 0x63, 0x61, 0x2e, 0x2f},
    {0xa5, 0xc9, 0x1d, 0xa7, 0xac, 0xaa, 0x4d, 0xde}, {0x71, 0x65, 0x95, 0x87, 0x66, 0x50, 0xa2, 0xa6},
    {0x28, 0xef, 0x49, 0x5c, 0x53, 0xa3, 0x87, 0xad}, {0x42, 0xc3, 0x41, 0xd8, 0xfa, 0x92, 0xd8, 0x32},
    {0xce, 0x7c, 0xf2, 0x72, 0x2f, 0x51, 0x27, 0x71}, {0xe3, 0x78, 0x59, 0xf9, 0x46, 0x23, 0xf3, 0xa7},
    {0x38, 0x12, 0x05, 0xbb, 0x1a, 0xb0, 0xe0, 0x12}, {0xae, 0x97, 0xa1, 0x0f, 0xd4, 0x34, 0xe0, 0x15},
    {0xb4, 0xa3, 0x15, 0x08, 0xbe, 0xff, 0x4d, 0x31}, {0x81, 0x39, 0x62, 0x29, 0xf0, 0x90, 0x79, 0x02},
    {0x4d, 0x0c, 0xf4, 0x9e, 0xe5, 0xd4, 0xdc, 0xca}, {0x5c, 0x73, 0x33, 0x6a, 0x76, 0xd8, 0xbf, 0x9a},
    {0xd0, 0xa7, 0x04, 0x53, 0x6b, 0xa9, 0x3e, 0x0e}, {0x92, 0x59, 0x58, 0xfc, 0xd6, 0x42, 0x0c, 0xad},
    {0xa9, 0x15, 0xc2, 0x9b, 0xc8, 0x06, 0x73, 0x18}, {0x95, 0x2b, 0x79, 0xf3, 0xbc, 0x0a, 0xa6, 0xd4},
    {0xf2, 0x1d, 0xf2, 0xe4, 0x1d, 0x45, 0x35, 0xf9}, {0x87, 0x57, 0x75, 0x19, 0x04, 0x8f, 0x53, 0xa9},
    {0x10, 0xa5, 0x6c, 0xf5, 0xdf, 0xcd, 0x9a, 0xdb}, {0xeb, 0x75, 0x09, 0x5c, 0xcd, 0x98, 0x6c, 0xd0},
    {0x51, 0xa9, 0xcb, 0x9e, 0xcb, 0xa3, 0x12, 0xe6}, {0x96, 0xaf, 0xad, 0xfc, 0x2c, 0xe6, 0x66, 0xc7},
    {0x72, 0xfe, 0x52, 0x97, 0x5a, 0x43, 0x64, 0xee}, {0x5a, 0x16, 0x45, 0xb2, 0x76, 0xd5, 0x92, 0xa1},
    {0xb2, 0x74, 0xcb, 0x8e, 0xbf, 0x87, 0x87, 0x0a}, {0x6f, 0x9b, 0xb4, 0x20, 0x3d, 0xe7, 0xb3, 0x81},
    {0xea, 0xec, 0xb2, 0xa3, 0x0b, 0x22, 0xa8, 0x7f}, {0x99, 0x24, 0xa4, 0x3c, 0xc1, 0x31, 0x57, 0x24},
    {0xbd, 0x83, 0x8d, 0x3a, 0xaf, 0xbf, 0x8d, 0xb7}, {0x0b, 0x1a, 0x2a, 0x32, 0x65, 0xd5, 0x1a, 0xea},
    {0x13, 0x50, 0x79, 0xa3, 0x23, 0x1c, 0xe6, 0x60}, {0x93, 0x2b, 0x28, 0x46, 0xe4, 0xd7, 0x06, 0x66},
    {0xe1, 0x91, 0x5f, 0x5c, 0xb1, 0xec, 0xa4, 0x6c}, {0xf3, 0x25, 0x96, 0x5c, 0xa1, 0x6d, 0x62, 0x9f},
    {0x57, 0x5f, 0xf2, 0x8e, 0x60, 0x38, 0x1b, 0xe5}, {0x72, 0x45, 0x06, 0xeb, 0x4c, 0x32, 0x8a, 0x95},
};

static const sg_reqid_key_t ref_key = {UINT64_C(0x0706050403020100), UINT64_C(0x0f0e0d0c0b0a0908)};

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static uint64_t le64(const uint8_t bytes[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v |= (uint64_t)bytes[i] << (8 * i);
    return v;
}

static void test_siphash_reference_vectors(void **state)
{
    (void)state;
    uint8_t msg[64];
    for (int i = 0; i < 64; ++i)
        msg[i] = (uint8_t)i;
    for (size_t len = 0; len < 64; ++len)
        assert_int_equal(sg_siphash24(&ref_key, msg, len), le64(sip_vectors[len]));
    /* The value printed in the SipHash paper's appendix (15-byte message). */
    assert_int_equal(sg_siphash24(&ref_key, msg, 15), UINT64_C(0xa129ca6149be45e5));
}

static void test_siphash_unaligned_and_keyed(void **state)
{
    (void)state;
    uint8_t buf[80];
    for (int i = 0; i < 64; ++i)
        buf[i + 3] = (uint8_t)i;
    for (size_t len = 0; len < 64; ++len)
        assert_int_equal(sg_siphash24(&ref_key, buf + 3, len), le64(sip_vectors[len]));
    assert_int_equal(sg_siphash24(&ref_key, NULL, 0), le64(sip_vectors[0]));

    sg_reqid_key_t other = ref_key;
    other.k1 ^= 1;
    assert_int_not_equal(sg_siphash24(&other, buf + 3, 16), sg_siphash24(&ref_key, buf + 3, 16));
}

static void test_key_derive(void **state)
{
    (void)state;
    sg_reqid_key_t key;
    /* printf 'streamgate reqid v1\0s3cret' | openssl dgst -sha256 -> 4b30459982589181 d7c8d3238c0f5c1b ... */
    sg_reqid_key_derive(&key, "s3cret", 6);
    assert_int_equal(key.k0, UINT64_C(0x819158829945304b));
    assert_int_equal(key.k1, UINT64_C(0x1b5c0f8c23d3c8d7));
    /* printf 'streamgate reqid v1\0' | openssl dgst -sha256 -> e6559057d8c4eccb 5794f3080a36faa8 ... */
    sg_reqid_key_derive(&key, NULL, 0);
    assert_int_equal(key.k0, UINT64_C(0xcbecc4d8579055e6));
    assert_int_equal(key.k1, UINT64_C(0xa8fa360a08f39457));
    /* A secret with a NUL inside is hashed whole. */
    sg_reqid_key_t with_nul;
    sg_reqid_key_derive(&with_nul, "s3cret\0x", 8);
    sg_reqid_key_derive(&key, "s3cret", 6);
    assert_int_not_equal(with_nul.k0, key.k0);
}

/* Independent encoder: fields big-endian, MAC little-endian, base64url through a bit buffer. */
static void reference_format(const sg_reqid_key_t *key, const sg_reqid_t *id, char out[SG_REQID_TEXT_LEN + 1])
{
    uint8_t raw[24];
    size_t n = 0;
    for (int shift = 40; shift >= 0; shift -= 8)
        raw[n++] = (uint8_t)(id->time_ms >> shift);
    for (int shift = 24; shift >= 0; shift -= 8)
        raw[n++] = (uint8_t)(id->instance >> shift);
    raw[n++] = (uint8_t)(id->loop >> 8);
    raw[n++] = (uint8_t)(id->loop & 0xff);
    for (int shift = 24; shift >= 0; shift -= 8)
        raw[n++] = (uint8_t)(id->counter >> shift);
    uint64_t mac = sg_siphash24(key, raw, 16);
    for (int i = 0; i < 8; ++i)
        raw[n++] = (uint8_t)(mac >> (8 * i));

    uint32_t acc = 0;
    int bits = 0;
    size_t pos = 0;
    for (size_t i = 0; i < n; ++i) {
        acc = acc << 8 | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[pos++] = b64url[(acc >> bits) & 63];
        }
    }
    assert_int_equal(bits, 0);
    assert_int_equal(pos, SG_REQID_TEXT_LEN);
    out[pos] = '\0';
}

static void test_format_matches_reference(void **state)
{
    (void)state;
    sg_reqid_key_t key;
    sg_reqid_key_derive(&key, "s3cret", 6);
    const sg_reqid_t ids[] = {
        {0, 0, 0, 0},
        {UINT64_C(1700000000123), 7, 3, 42},
        {SG_REQID_TIME_MAX, UINT32_MAX, UINT16_MAX, UINT32_MAX},
        {UINT64_C(0x0123456789ab), 0x89abcdef, 0x1234, 0xfedcba98},
    };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); ++i) {
        char got[SG_REQID_TEXT_LEN + 1], want[SG_REQID_TEXT_LEN + 1];
        memset(got, 'X', sizeof(got));
        sg_reqid_format(&key, &ids[i], got);
        reference_format(&key, &ids[i], want);
        assert_string_equal(got, want);
        assert_int_equal(strlen(got), SG_REQID_TEXT_LEN);
    }
    /* Worked by hand: bytes 0..8 (time, instance's top 3) are zero -> 12 'A'; bytes 9..11
     * = 07 00 01 (instance's low byte, loop 1) -> 000001 110000 000000 000001 -> "BwAB". */
    char text[SG_REQID_TEXT_LEN + 1];
    sg_reqid_format(&key, &(sg_reqid_t){0, 7, 1, 0}, text);
    assert_memory_equal(text, "AAAAAAAAAAAABwAB", 16);
}

static void test_round_trip(void **state)
{
    (void)state;
    sg_reqid_key_t key;
    sg_reqid_key_derive(&key, "round trip", 10);
    const sg_reqid_t ids[] = {
        {0, 0, 0, 0},
        {1, 1, 1, 1},
        {UINT64_C(1700000000123), 7, 3, 42},
        {SG_REQID_TIME_MAX, UINT32_MAX, UINT16_MAX, UINT32_MAX},
        {UINT64_C(0x800000000000), 0x80000000, 0x8000, 0x80000000},
    };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); ++i) {
        char text[SG_REQID_TEXT_LEN + 1];
        sg_reqid_format(&key, &ids[i], text);
        sg_reqid_t back = {99, 99, 99, 99};
        assert_int_equal(sg_reqid_parse(&key, text, SG_REQID_TEXT_LEN, &back), 0);
        assert_int_equal(back.time_ms, ids[i].time_ms);
        assert_int_equal(back.instance, ids[i].instance);
        assert_int_equal(back.loop, ids[i].loop);
        assert_int_equal(back.counter, ids[i].counter);
    }

    /* Bits above 48 of time_ms are not encoded. */
    char text[SG_REQID_TEXT_LEN + 1], masked[SG_REQID_TEXT_LEN + 1];
    sg_reqid_format(&key, &(sg_reqid_t){UINT64_MAX, 1, 2, 3}, text);
    sg_reqid_format(&key, &(sg_reqid_t){SG_REQID_TIME_MAX, 1, 2, 3}, masked);
    assert_string_equal(text, masked);
    sg_reqid_t back;
    assert_int_equal(sg_reqid_parse(&key, text, SG_REQID_TEXT_LEN, &back), 0);
    assert_int_equal(back.time_ms, SG_REQID_TIME_MAX);
}

static void assert_rejected(const sg_reqid_key_t *key, const char *text, size_t len)
{
    sg_reqid_t out = {11, 22, 33, 44};
    assert_int_equal(sg_reqid_parse(key, text, len, &out), -1);
    /* A failed parse leaves out untouched. */
    assert_int_equal(out.time_ms, 11);
    assert_int_equal(out.instance, 22);
    assert_int_equal(out.loop, 33);
    assert_int_equal(out.counter, 44);
}

static void test_every_single_char_change_rejected(void **state)
{
    (void)state;
    sg_reqid_key_t key;
    sg_reqid_key_derive(&key, "tamper", 6);
    char text[SG_REQID_TEXT_LEN + 1];
    sg_reqid_format(&key, &(sg_reqid_t){UINT64_C(1700000000123), 12, 1, 77}, text);

    size_t tried = 0;
    for (size_t pos = 0; pos < SG_REQID_TEXT_LEN; ++pos) {
        for (int c = 0; c < 256; ++c) {
            if (c == (unsigned char)text[pos])
                continue;
            char mangled[SG_REQID_TEXT_LEN];
            memcpy(mangled, text, SG_REQID_TEXT_LEN);
            mangled[pos] = (char)c;
            assert_rejected(&key, mangled, SG_REQID_TEXT_LEN);
            ++tried;
        }
    }
    assert_int_equal(tried, SG_REQID_TEXT_LEN * 255);
    sg_reqid_t out;
    assert_int_equal(sg_reqid_parse(&key, text, SG_REQID_TEXT_LEN, &out), 0);
}

static void test_wrong_key_rejected(void **state)
{
    (void)state;
    sg_reqid_key_t key, other;
    sg_reqid_key_derive(&key, "secret-a", 8);
    sg_reqid_key_derive(&other, "secret-b", 8);
    char text[SG_REQID_TEXT_LEN + 1];
    for (uint32_t counter = 0; counter < 1000; ++counter) {
        sg_reqid_format(&key, &(sg_reqid_t){UINT64_C(1700000000123), 1, 0, counter}, text);
        assert_rejected(&other, text, SG_REQID_TEXT_LEN);
    }
    /* Differing in one key bit is enough. */
    sg_reqid_key_t near = key;
    near.k0 ^= UINT64_C(1) << 63;
    assert_rejected(&near, text, SG_REQID_TEXT_LEN);
}

static void test_wrong_length_and_alphabet_rejected(void **state)
{
    (void)state;
    sg_reqid_key_t key;
    sg_reqid_key_derive(&key, "len", 3);
    char text[SG_REQID_TEXT_LEN + 1];
    sg_reqid_format(&key, &(sg_reqid_t){5, 6, 7, 8}, text);

    /* Every length but 32, from a heap buffer of exactly that size (ASan catches over-reads);
     * the longer ones start with the valid id. */
    for (size_t len = 0; len <= 3 * SG_REQID_TEXT_LEN; ++len) {
        if (len == SG_REQID_TEXT_LEN)
            continue;
        char *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        for (size_t i = 0; i < len; ++i)
            buf[i] = i < SG_REQID_TEXT_LEN ? text[i] : 'A';
        assert_rejected(&key, buf, len);
        free(buf);
    }
    assert_rejected(&key, NULL, 0);
    assert_rejected(&key, NULL, SG_REQID_TEXT_LEN);

    /* The exact 32 bytes, unterminated, parse. */
    char *exact = malloc(SG_REQID_TEXT_LEN);
    assert_non_null(exact);
    memcpy(exact, text, SG_REQID_TEXT_LEN);
    sg_reqid_t out;
    assert_int_equal(sg_reqid_parse(&key, exact, SG_REQID_TEXT_LEN, &out), 0);
    assert_int_equal(out.counter, 8);
    free(exact);

    /* Padding and the standard-base64 characters are not base64url. */
    char padded[SG_REQID_TEXT_LEN + 2];
    memcpy(padded, text, SG_REQID_TEXT_LEN);
    padded[SG_REQID_TEXT_LEN] = '=';
    assert_rejected(&key, padded, SG_REQID_TEXT_LEN + 1);
    char std64[SG_REQID_TEXT_LEN];
    memcpy(std64, text, SG_REQID_TEXT_LEN);
    for (size_t i = 0; i < SG_REQID_TEXT_LEN; ++i) {
        if (std64[i] == '-')
            std64[i] = '+';
        else if (std64[i] == '_')
            std64[i] = '/';
    }
    if (memcmp(std64, text, SG_REQID_TEXT_LEN) != 0)
        assert_rejected(&key, std64, SG_REQID_TEXT_LEN);
    std64[0] = '+';
    assert_rejected(&key, std64, SG_REQID_TEXT_LEN);
    std64[0] = '/';
    assert_rejected(&key, std64, SG_REQID_TEXT_LEN);
    assert_rejected(&key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", SG_REQID_TEXT_LEN);
}

static int compare_text(const void *a, const void *b)
{
    return memcmp(a, b, SG_REQID_TEXT_LEN + 1);
}

static void test_ids_differ_and_are_unique(void **state)
{
    (void)state;
    sg_reqid_key_t key;
    sg_reqid_key_derive(&key, "unique", 6);
    enum { N = 100000 };
    char(*texts)[SG_REQID_TEXT_LEN + 1] = malloc(N * sizeof(*texts));
    assert_non_null(texts);

    char first[SG_REQID_TEXT_LEN + 1], second[SG_REQID_TEXT_LEN + 1];
    sg_reqid_format(&key, &(sg_reqid_t){100, 1, 0, 1}, first);
    sg_reqid_format(&key, &(sg_reqid_t){100, 1, 0, 2}, second);
    assert_string_not_equal(first, second);
    /* The same id formats the same way every time. */
    sg_reqid_format(&key, &(sg_reqid_t){100, 1, 0, 2}, first);
    assert_string_equal(first, second);

    /* Mixed sources: counters run per (instance, loop) and restart with a new time. */
    for (uint32_t i = 0; i < N; ++i) {
        sg_reqid_t id = {UINT64_C(1700000000000) + i / 25000, i % 5, (uint16_t)(i / 5 % 5), i};
        sg_reqid_format(&key, &id, texts[i]);
    }
    qsort(texts, N, sizeof(*texts), compare_text);
    for (size_t i = 1; i < N; ++i)
        assert_int_not_equal(memcmp(texts[i - 1], texts[i], SG_REQID_TEXT_LEN), 0);
    free(texts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash_reference_vectors),
        cmocka_unit_test(test_siphash_unaligned_and_keyed),
        cmocka_unit_test(test_key_derive),
        cmocka_unit_test(test_format_matches_reference),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_single_char_change_rejected),
        cmocka_unit_test(test_wrong_key_rejected),
        cmocka_unit_test(test_wrong_length_and_alphabet_rejected),
        cmocka_unit_test(test_ids_differ_and_are_unique),
    };
    return cmocka_run_group_tests_name("reqid", tests, NULL, NULL);
}
