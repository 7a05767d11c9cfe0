/*
 * Unit tests for consistency tokens (queries/token.c).
 *
 * Malformed inputs are built as raw binary bodies by an independent encoder in this file (its own
 * varint, CRC-32C and base64url), which appends a correct checksum, so each case reaches the
 * check it is aimed at instead of stopping at the checksum. The same encoder pins the wire format:
 * tokens built through the API must produce exactly the bytes written out here by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sg_token.h"

/* ---- independent reference encoder ---- */

typedef struct {
    uint8_t bytes[64 * 1024];
    size_t len;
} raw_t;

static raw_t *raw_new(uint8_t version)
{
    raw_t *raw = calloc(1, sizeof(*raw));
    assert_non_null(raw);
    raw->bytes[raw->len++] = version;
    return raw;
}

static void raw_byte(raw_t *raw, uint8_t byte)
{
    assert_true(raw->len < sizeof(raw->bytes));
    raw->bytes[raw->len++] = byte;
}

static void raw_varint(raw_t *raw, uint64_t value)
{
    do {
        uint8_t byte = value & 0x7f;
        value >>= 7;
        raw_byte(raw, value != 0 ? (uint8_t)(byte | 0x80) : byte);
    } while (value != 0);
}

static void raw_mem(raw_t *raw, const void *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        raw_byte(raw, ((const uint8_t *)data)[i]);
}

static void raw_topic(raw_t *raw, const char *name, uint64_t partitions)
{
    raw_varint(raw, strlen(name));
    raw_mem(raw, name, strlen(name));
    raw_varint(raw, partitions);
}

static void raw_entry(raw_t *raw, uint64_t partition, uint64_t offset, uint64_t stream_time)
{
    raw_varint(raw, partition);
    raw_varint(raw, offset);
    raw_varint(raw, stream_time);
}

/* Table-driven on purpose: a different construction from the bitwise one under test. */
static uint32_t ref_crc32c(const uint8_t *data, size_t len)
{
    static uint32_t table[256];
    if (table[1] == 0) {
        for (uint32_t n = 0; n < 256; n++) {
            uint32_t crc = n;
            for (int k = 0; k < 8; k++)
                crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
            table[n] = crc;
        }
    }
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++)
        crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}

static char *ref_base64url(const uint8_t *data, size_t len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *text = malloc(len / 3 * 4 + 4);
    assert_non_null(text);
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t group = (uint32_t)data[i] << 16;
        size_t avail = len - i;
        if (avail > 1)
            group |= (uint32_t)data[i + 1] << 8;
        if (avail > 2)
            group |= data[i + 2];
        text[n++] = alphabet[(group >> 18) & 63];
        text[n++] = alphabet[(group >> 12) & 63];
        if (avail > 1)
            text[n++] = alphabet[(group >> 6) & 63];
        if (avail > 2)
            text[n++] = alphabet[group & 63];
    }
    text[n] = '\0';
    return text;
}

/* Text of `raw` followed by its correct checksum; frees raw. */
static char *raw_finish(raw_t *raw)
{
    uint32_t crc = ref_crc32c(raw->bytes, raw->len);
    for (int k = 0; k < 4; k++)
        raw->bytes[raw->len++] = (uint8_t)(crc >> (8 * k));
    char *text = ref_base64url(raw->bytes, raw->len);
    free(raw);
    return text;
}

/* Text of `raw` exactly as is, no checksum appended; frees raw. */
static char *raw_plain(raw_t *raw)
{
    char *text = ref_base64url(raw->bytes, raw->len);
    free(raw);
    return text;
}

/* ---- helpers ---- */

static char *encode(const sg_token_t *token)
{
    size_t len = sg_token_encode(token, NULL, 0);
    char *text = malloc(len + 1);
    assert_non_null(text);
    assert_int_equal(sg_token_encode(token, text, len + 1), len);
    assert_int_equal(strlen(text), len);
    return text;
}

static sg_token_t *decode_ok(const char *text)
{
    char err[256] = "";
    sg_token_t *token = sg_token_decode(text, strlen(text), err, sizeof(err));
    if (token == NULL)
        fail_msg("decode of '%.60s' failed: %s", text, err);
    return token;
}

static void expect_reject_len(const char *text, size_t len, const char *needle)
{
    char err[256] = "";
    sg_token_t *token = sg_token_decode(text, len, err, sizeof(err));
    if (token != NULL) {
        sg_token_destroy(token);
        fail_msg("accepted a token that should fail with '%s'", needle);
    }
    if (strstr(err, needle) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void expect_reject(char *text, const char *needle)
{
    expect_reject_len(text, strlen(text), needle);
    free(text);
}

static void assert_same_text(const sg_token_t *a, const sg_token_t *b)
{
    char *ta = encode(a), *tb = encode(b);
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
}

static void assert_entry(const sg_token_t *token, const char *topic, int32_t partition, int64_t offset, int64_t stream_time)
{
    int64_t got_offset = -7, got_time = -7;
    assert_int_equal(sg_token_get(token, topic, partition, &got_offset, &got_time), 0);
    assert_true(got_offset == offset);
    assert_true(got_time == stream_time);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ---- format and round trips ---- */

static void test_empty_round_trip(void **state)
{
    (void)state;
    sg_token_t *token = sg_token_create();
    char *text = encode(token);
    raw_t *raw = raw_new(1);
    raw_varint(raw, 0);
    char *expected = raw_finish(raw);
    assert_string_equal(text, expected);
    assert_int_equal(strlen(text), 8); /* 6 bytes */

    sg_token_t *back = decode_ok(text);
    assert_int_equal(sg_token_count(back), 0);
    free(text);
    free(expected);
    sg_token_destroy(back);
    sg_token_destroy(token);
}

static void test_single_round_trip(void **state)
{
    (void)state;
    sg_token_t *token = sg_token_create();
    assert_int_equal(sg_token_advance(token, "orders", 3, 42, 1700000000000), 0);
    char *text = encode(token);

    raw_t *raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "orders", 1);
    raw_entry(raw, 3, 42, 1700000000000);
    char *expected = raw_finish(raw);
    assert_string_equal(text, expected);

    sg_token_t *back = decode_ok(text);
    assert_int_equal(sg_token_count(back), 1);
    assert_entry(back, "orders", 3, 42, 1700000000000);
    assert_int_equal(sg_token_get(back, "orders", 2, NULL, NULL), -1);
    assert_int_equal(sg_token_get(back, "order", 3, NULL, NULL), -1);
    free(text);
    free(expected);
    sg_token_destroy(back);
    sg_token_destroy(token);
}

static void test_multi_round_trip(void **state)
{
    (void)state;
    sg_token_t *token = sg_token_create();
    assert_int_equal(sg_token_advance(token, "payments", 0, 10, 100), 0);
    assert_int_equal(sg_token_advance(token, "orders", 2, 300, 5), 0);
    assert_int_equal(sg_token_advance(token, "orders", 0, 1, 2), 0);
    assert_int_equal(sg_token_advance(token, "payments", 200, 0, 0), 0);
    assert_int_equal(sg_token_advance(token, "Orders", 1, 7, 8), 0);
    assert_int_equal(sg_token_count(token), 5);

    char *text = encode(token);
    raw_t *raw = raw_new(1);
    raw_varint(raw, 3);
    raw_topic(raw, "Orders", 1); /* 'O' (0x4f) sorts before 'o' (0x6f): byte order */
    raw_entry(raw, 1, 7, 8);
    raw_topic(raw, "orders", 2);
    raw_entry(raw, 0, 1, 2);
    raw_entry(raw, 2, 300, 5);
    raw_topic(raw, "payments", 2);
    raw_entry(raw, 0, 10, 100);
    raw_entry(raw, 200, 0, 0);
    char *expected = raw_finish(raw);
    assert_string_equal(text, expected);

    sg_token_t *back = decode_ok(text);
    assert_int_equal(sg_token_count(back), 5);
    static const struct {
        const char *topic;
        int32_t partition;
        int64_t offset, stream_time;
    } want[] = {{"Orders", 1, 7, 8}, {"orders", 0, 1, 2}, {"orders", 2, 300, 5}, {"payments", 0, 10, 100}, {"payments", 200, 0, 0}};
    for (size_t i = 0; i < 5; i++) {
        const char *topic;
        int32_t partition;
        int64_t offset, stream_time;
        sg_token_entry(back, i, &topic, &partition, &offset, &stream_time);
        assert_string_equal(topic, want[i].topic);
        assert_int_equal(partition, want[i].partition);
        assert_true(offset == want[i].offset);
        assert_true(stream_time == want[i].stream_time);
    }
    assert_same_text(token, back);
    free(text);
    free(expected);
    sg_token_destroy(back);
    sg_token_destroy(token);
}

static void test_large_values_round_trip(void **state)
{
    (void)state;
    char long_topic[SG_TOKEN_MAX_TOPIC_LEN + 1];
    memset(long_topic, 'z', SG_TOKEN_MAX_TOPIC_LEN);
    long_topic[SG_TOKEN_MAX_TOPIC_LEN] = '\0';

    sg_token_t *token = sg_token_create();
    assert_int_equal(sg_token_advance(token, "big", INT32_MAX, INT64_MAX, INT64_MAX), 0);
    assert_int_equal(sg_token_advance(token, "big", 0, INT64_MAX - 1, 0), 0);
    assert_int_equal(sg_token_advance(token, long_topic, 127, 128, 16383), 0);
    assert_int_equal(sg_token_advance(token, "a.b_c-D9", 128, 16384, (int64_t)1 << 62), 0);
    char *text = encode(token);
    sg_token_t *back = decode_ok(text);
    assert_int_equal(sg_token_count(back), 4);
    assert_entry(back, "big", INT32_MAX, INT64_MAX, INT64_MAX);
    assert_entry(back, "big", 0, INT64_MAX - 1, 0);
    assert_entry(back, long_topic, 127, 128, 16383);
    assert_entry(back, "a.b_c-D9", 128, 16384, (int64_t)1 << 62);
    assert_same_text(token, back);
    free(text);
    sg_token_destroy(back);
    sg_token_destroy(token);
}

static void test_canonical_insertion_order(void **state)
{
    (void)state;
    enum { N = 60 };
    struct {
        char topic[16];
        int32_t partition;
    } items[N];
    for (int i = 0; i < N; i++) {
        snprintf(items[i].topic, sizeof(items[i].topic), "t%d", i % 7);
        items[i].partition = (i * 37) % 50 + (i / 50) * 1000;
    }
    sg_token_t *forward = sg_token_create(), *backward = sg_token_create(), *shuffled = sg_token_create();
    for (int i = 0; i < N; i++)
        assert_int_equal(sg_token_advance(forward, items[i].topic, items[i].partition, i, 2 * i), 0);
    for (int i = N - 1; i >= 0; i--)
        assert_int_equal(sg_token_advance(backward, items[i].topic, items[i].partition, i, 2 * i), 0);
    for (int i = 0; i < N; i++) {
        int k = (i * 23) % N; /* 23 is coprime with 60: a permutation */
        assert_int_equal(sg_token_advance(shuffled, items[k].topic, items[k].partition, k, 2 * k), 0);
    }
    assert_int_equal(sg_token_count(forward), N);
    assert_same_text(forward, backward);
    assert_same_text(forward, shuffled);

    /* Entries come out in (topic bytes, partition) order. */
    for (size_t i = 1; i < sg_token_count(forward); i++) {
        const char *prev_topic, *topic;
        int32_t prev_partition, partition;
        sg_token_entry(forward, i - 1, &prev_topic, &prev_partition, NULL, NULL);
        sg_token_entry(forward, i, &topic, &partition, NULL, NULL);
        int c = strcmp(prev_topic, topic);
        assert_true(c < 0 || (c == 0 && prev_partition < partition));
    }
    sg_token_destroy(forward);
    sg_token_destroy(backward);
    sg_token_destroy(shuffled);
}

static void test_encode_truncates(void **state)
{
    (void)state;
    sg_token_t *token = sg_token_create();
    assert_int_equal(sg_token_advance(token, "orders", 1, 99, 99), 0);
    char *full = encode(token);
    size_t len = strlen(full);
    char small[6];
    memset(small, '#', sizeof(small));
    assert_int_equal(sg_token_encode(token, small, sizeof(small)), len);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, full, sizeof(small) - 1);
    char exact[64];
    assert_true(len < sizeof(exact));
    assert_int_equal(sg_token_encode(token, exact, len), len); /* no room for NUL: truncated by one */
    assert_int_equal(strlen(exact), len - 1);
    assert_int_equal(sg_token_encode(token, NULL, 0), len);
    free(full);
    sg_token_destroy(token);
}

static void test_advance_max_per_field(void **state)
{
    (void)state;
    sg_token_t *token = sg_token_create();
    assert_int_equal(sg_token_advance(token, "t", 0, 100, 5), 0);
    assert_int_equal(sg_token_advance(token, "t", 0, 50, 9), 0); /* lower offset, higher time */
    assert_entry(token, "t", 0, 100, 9);
    assert_int_equal(sg_token_advance(token, "t", 0, 200, 1), 0);
    assert_entry(token, "t", 0, 200, 9);
    assert_int_equal(sg_token_count(token), 1);
    sg_token_destroy(token);
}

static void test_advance_rejects_bad_arguments(void **state)
{
    (void)state;
    char too_long[SG_TOKEN_MAX_TOPIC_LEN + 2];
    memset(too_long, 'x', SG_TOKEN_MAX_TOPIC_LEN + 1);
    too_long[SG_TOKEN_MAX_TOPIC_LEN + 1] = '\0';

    sg_token_t *token = sg_token_create();
    assert_int_equal(sg_token_advance(token, "ok", 0, 1, 1), 0);
    char *before = encode(token);
    assert_int_equal(sg_token_advance(token, NULL, 0, 1, 1), -1);
    assert_int_equal(sg_token_advance(token, "", 0, 1, 1), -1);
    assert_int_equal(sg_token_advance(token, too_long, 0, 1, 1), -1);
    assert_int_equal(sg_token_advance(token, "a/b", 0, 1, 1), -1);
    assert_int_equal(sg_token_advance(token, "a b", 0, 1, 1), -1);
    assert_int_equal(sg_token_advance(token, "ok", -1, 1, 1), -1);
    assert_int_equal(sg_token_advance(token, "ok", 0, -1, 1), -1);
    assert_int_equal(sg_token_advance(token, "ok", 0, 1, -1), -1);
    assert_int_equal(sg_token_advance(token, "ok", 0, INT64_MIN, INT64_MIN), -1);
    char *after = encode(token);
    assert_string_equal(before, after);
    assert_int_equal(sg_token_count(token), 1);
    free(before);
    free(after);
    sg_token_destroy(token);
}

static void test_dup_is_deep(void **state)
{
    (void)state;
    sg_token_t *token = sg_token_create();
    assert_int_equal(sg_token_advance(token, "a", 0, 1, 2), 0);
    assert_int_equal(sg_token_advance(token, "a", 1, 3, 4), 0);
    assert_int_equal(sg_token_advance(token, "b", 0, 5, 6), 0);
    sg_token_t *copy = sg_token_dup(token);
    assert_same_text(token, copy);
    const char *orig_topic, *copy_topic;
    sg_token_entry(token, 0, &orig_topic, NULL, NULL, NULL);
    sg_token_entry(copy, 0, &copy_topic, NULL, NULL, NULL);
    assert_ptr_not_equal(orig_topic, copy_topic);
    assert_int_equal(sg_token_advance(copy, "a", 0, 100, 100), 0);
    assert_entry(token, "a", 0, 1, 2);
    sg_token_destroy(token);
    assert_entry(copy, "a", 0, 100, 100);
    assert_entry(copy, "b", 0, 5, 6);
    sg_token_destroy(copy);
    sg_token_destroy(NULL);
}

/* A table that has applied nothing yet has an empty token, and reads duplicate it to merge the
 * request's token in (the sanitizer build stopped the gateway here: memcpy from NULL). */
static void test_dup_of_empty(void **state)
{
    (void)state;
    sg_token_t *token = sg_token_create();
    sg_token_t *copy = sg_token_dup(token);
    assert_int_equal(sg_token_count(copy), 0);
    assert_same_text(token, copy);
    assert_int_equal(sg_token_advance(copy, "a", 0, 1, 2), 0);
    assert_entry(copy, "a", 0, 1, 2);
    assert_int_equal(sg_token_count(token), 0);
    sg_token_destroy(token);
    sg_token_destroy(copy);
}

/* ---- merge ---- */

static void test_merge_max_per_field(void **state)
{
    (void)state;
    sg_token_t *a = sg_token_create(), *b = sg_token_create();
    assert_int_equal(sg_token_advance(a, "t", 0, 100, 1), 0);
    assert_int_equal(sg_token_advance(b, "t", 0, 10, 50), 0);
    assert_int_equal(sg_token_merge(a, b), 0);
    assert_entry(a, "t", 0, 100, 50); /* each field independently */
    assert_int_equal(sg_token_count(a), 1);
    sg_token_destroy(a);
    sg_token_destroy(b);
}

static sg_token_t *make_left(void)
{
    sg_token_t *token = sg_token_create();
    assert_int_equal(sg_token_advance(token, "b", 1, 10, 10), 0);
    assert_int_equal(sg_token_advance(token, "b", 5, 50, 50), 0);
    assert_int_equal(sg_token_advance(token, "d", 0, 1, 1), 0);
    return token;
}

static sg_token_t *make_right(void)
{
    sg_token_t *token = sg_token_create();
    assert_int_equal(sg_token_advance(token, "a", 0, 7, 7), 0);
    assert_int_equal(sg_token_advance(token, "b", 0, 3, 3), 0);  /* before b's run */
    assert_int_equal(sg_token_advance(token, "b", 1, 20, 5), 0); /* overlapping */
    assert_int_equal(sg_token_advance(token, "b", 9, 9, 9), 0);  /* after b's run */
    assert_int_equal(sg_token_advance(token, "c", 2, 2, 2), 0);
    assert_int_equal(sg_token_advance(token, "e", 0, 4, 4), 0);
    return token;
}

static void test_merge_overlapping(void **state)
{
    (void)state;
    sg_token_t *left = make_left(), *right = make_right();
    assert_int_equal(sg_token_merge(left, right), 0);
    assert_int_equal(sg_token_count(left), 8);
    assert_entry(left, "a", 0, 7, 7);
    assert_entry(left, "b", 0, 3, 3);
    assert_entry(left, "b", 1, 20, 10);
    assert_entry(left, "b", 5, 50, 50);
    assert_entry(left, "b", 9, 9, 9);
    assert_entry(left, "c", 2, 2, 2);
    assert_entry(left, "d", 0, 1, 1);
    assert_entry(left, "e", 0, 4, 4);

    /* The merged token must be indistinguishable from one built entry by entry. */
    sg_token_t *built = sg_token_create();
    for (size_t i = sg_token_count(left); i-- > 0;) {
        const char *topic;
        int32_t partition;
        int64_t offset, stream_time;
        sg_token_entry(left, i, &topic, &partition, &offset, &stream_time);
        assert_int_equal(sg_token_advance(built, topic, partition, offset, stream_time), 0);
    }
    assert_same_text(left, built);
    char *text = encode(left);
    sg_token_t *back = decode_ok(text);
    assert_same_text(left, back);
    /* Interning survived the merge: further advances keep working on shared topic runs. */
    assert_int_equal(sg_token_advance(left, "b", 3, 1, 1), 0);
    assert_int_equal(sg_token_advance(left, "c", 0, 1, 1), 0);
    assert_int_equal(sg_token_count(left), 10);
    free(text);
    sg_token_destroy(back);
    sg_token_destroy(built);
    sg_token_destroy(left);
    sg_token_destroy(right);
}

static void test_merge_disjoint(void **state)
{
    (void)state;
    sg_token_t *a = sg_token_create(), *b = sg_token_create();
    assert_int_equal(sg_token_advance(a, "x", 0, 1, 1), 0);
    assert_int_equal(sg_token_advance(b, "y", 0, 2, 2), 0);
    assert_int_equal(sg_token_merge(a, b), 0);
    sg_token_destroy(b); /* a must not borrow b's strings */
    assert_int_equal(sg_token_count(a), 2);
    assert_entry(a, "x", 0, 1, 1);
    assert_entry(a, "y", 0, 2, 2);

    sg_token_t *empty = sg_token_create();
    char *before = encode(a);
    assert_int_equal(sg_token_merge(a, empty), 0);
    char *after = encode(a);
    assert_string_equal(before, after);
    assert_int_equal(sg_token_merge(empty, a), 0);
    assert_same_text(empty, a);
    free(before);
    free(after);
    sg_token_destroy(a);
    sg_token_destroy(empty);
}

static void test_merge_commutative_idempotent(void **state)
{
    (void)state;
    sg_token_t *ab = make_left(), *ba = make_right();
    sg_token_t *right = make_right(), *left = make_left();
    assert_int_equal(sg_token_merge(ab, right), 0);
    assert_int_equal(sg_token_merge(ba, left), 0);
    assert_same_text(ab, ba);

    char *before = encode(ab);
    assert_int_equal(sg_token_merge(ab, ba), 0);
    assert_int_equal(sg_token_merge(ab, ab), 0); /* self-merge */
    char *after = encode(ab);
    assert_string_equal(before, after);
    free(before);
    free(after);
    sg_token_destroy(ab);
    sg_token_destroy(ba);
    sg_token_destroy(left);
    sg_token_destroy(right);
}

static void test_merge_limit_leaves_dst_unchanged(void **state)
{
    (void)state;
    sg_token_t *dst = sg_token_create(), *src = sg_token_create();
    for (int32_t p = 0; p < SG_TOKEN_MAX_ENTRIES - 10; p++)
        assert_int_equal(sg_token_advance(dst, "t", p, 1, 1), 0);
    for (int32_t p = 0; p < 11; p++)
        assert_int_equal(sg_token_advance(src, "u", p, 1, 1), 0);
    char *before = encode(dst);
    assert_int_equal(sg_token_merge(dst, src), -1);
    char *after = encode(dst);
    assert_string_equal(before, after);
    assert_int_equal(sg_token_count(dst), SG_TOKEN_MAX_ENTRIES - 10);

    /* Exactly at the limit is fine. */
    sg_token_t *ten = sg_token_create();
    for (int32_t p = 0; p < 10; p++)
        assert_int_equal(sg_token_advance(ten, "u", p, 1, 1), 0);
    assert_int_equal(sg_token_merge(dst, ten), 0);
    assert_int_equal(sg_token_count(dst), SG_TOKEN_MAX_ENTRIES);
    free(before);
    free(after);
    sg_token_destroy(ten);
    sg_token_destroy(dst);
    sg_token_destroy(src);
}

/* ---- covers ---- */

typedef struct {
    const char *allowed;
    int calls;
} filter_arg_t;

static int only_topic(const char *topic, void *arg)
{
    filter_arg_t *filter = arg;
    filter->calls++;
    return strcmp(topic, filter->allowed) == 0;
}

static void test_covers(void **state)
{
    (void)state;
    sg_token_t *view = sg_token_create(), *want = sg_token_create();
    assert_int_equal(sg_token_covers(view, want, NULL, NULL), 1); /* nothing wanted */

    assert_int_equal(sg_token_advance(view, "orders", 0, 10, 0), 0);
    assert_int_equal(sg_token_advance(view, "orders", 1, 20, 0), 0);
    assert_int_equal(sg_token_advance(want, "orders", 0, 10, 999), 0); /* equal offset; time ignored */
    assert_int_equal(sg_token_covers(view, want, NULL, NULL), 1);

    assert_int_equal(sg_token_advance(want, "orders", 1, 21, 0), 0); /* one behind */
    assert_int_equal(sg_token_covers(view, want, NULL, NULL), 0);
    assert_int_equal(sg_token_advance(view, "orders", 1, 21, 0), 0);
    assert_int_equal(sg_token_covers(view, want, NULL, NULL), 1);

    assert_int_equal(sg_token_advance(want, "orders", 2, 0, 0), 0); /* absent in view */
    assert_int_equal(sg_token_covers(view, want, NULL, NULL), 0);
    assert_int_equal(sg_token_advance(view, "orders", 2, 0, 0), 0);
    assert_int_equal(sg_token_covers(view, want, NULL, NULL), 1);

    /* Another topic the view knows nothing of: only a filter can make it irrelevant. */
    assert_int_equal(sg_token_advance(want, "payments", 0, 5, 0), 0);
    assert_int_equal(sg_token_advance(want, "payments", 1, 5, 0), 0);
    assert_int_equal(sg_token_covers(view, want, NULL, NULL), 0);
    filter_arg_t orders_only = {"orders", 0};
    assert_int_equal(sg_token_covers(view, want, only_topic, &orders_only), 1);
    assert_int_equal(orders_only.calls, 2); /* once per topic */
    filter_arg_t payments_only = {"payments", 0};
    assert_int_equal(sg_token_covers(view, want, only_topic, &payments_only), 0);

    /* The filter does not hide a lagging partition of an accepted topic. */
    assert_int_equal(sg_token_advance(want, "orders", 0, 11, 0), 0);
    assert_int_equal(sg_token_covers(view, want, only_topic, &orders_only), 0);
    filter_arg_t none = {"nothing", 0};
    assert_int_equal(sg_token_covers(view, want, only_topic, &none), 1);

    /* A view ahead with extra entries covers. */
    assert_int_equal(sg_token_covers(want, view, NULL, NULL), 1);
    sg_token_destroy(view);
    sg_token_destroy(want);
}

/* ---- malformed input ---- */

static void test_reject_text_level(void **state)
{
    (void)state;
    char err[128];
    strcpy(err, "untouched");
    assert_null(sg_token_decode(NULL, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "empty token"));
    expect_reject_len("AQAAAAAA", 0, "empty token");

    sg_token_t *token = sg_token_create();
    assert_int_equal(sg_token_advance(token, "t", 128, 1, 1), 0); /* 13 bytes: 18 characters */
    char *valid = encode(token);
    size_t len = strlen(valid);
    assert_int_equal(len % 4, 2);
    sg_token_destroy(token);

    static const char bad_chars[] = {'+', '/', ' ', '\n', '.', '\0', '*', (char)0x80, (char)0xff};
    for (size_t i = 0; i < sizeof(bad_chars); i++) {
        char *text = strdup(valid);
        text[2] = bad_chars[i];
        expect_reject_len(text, len, "invalid base64url character");
        free(text);
    }

    char padded[64];
    snprintf(padded, sizeof(padded), "%s=", valid);
    expect_reject_len(padded, strlen(padded), "padded");
    expect_reject_len("AQAAAA==", 8, "padded");

    /* A valid text plus one more character: no byte count encodes to that length. */
    expect_reject_len("AQAAAAAAA", 9, "base64url length");

    /* The last character carries 4 unused bits (so it is one of A, Q, g, w); setting one would
     * decode to the same bytes as the valid token if the decoder ignored them. */
    char *noncanon = strdup(valid);
    char *last = &noncanon[len - 1];
    assert_non_null(strchr("AQgw", *last));
    (*last)++;
    expect_reject_len(noncanon, len, "non-canonical");
    free(noncanon);
    free(valid);

    /* Length limit, and that the limit itself is inclusive (rejected later, for the version). */
    char *huge = malloc(SG_TOKEN_MAX_TEXT + 2);
    memset(huge, 'A', SG_TOKEN_MAX_TEXT + 1);
    huge[SG_TOKEN_MAX_TEXT + 1] = '\0';
    expect_reject_len(huge, SG_TOKEN_MAX_TEXT + 1, "longer than");
    expect_reject_len(huge, SG_TOKEN_MAX_TEXT, "version 0");
    free(huge);

    /* err may be omitted. */
    assert_null(sg_token_decode("!", 1, NULL, 0));
    assert_null(sg_token_decode("!", 1, err, 1));
    assert_string_equal(err, "");
}

static void test_reject_envelope(void **state)
{
    (void)state;
    raw_t *raw;
    raw = raw_new(0);
    raw_varint(raw, 0);
    expect_reject(raw_finish(raw), "unsupported token version 0");
    raw = raw_new(2);
    raw_varint(raw, 0);
    expect_reject(raw_finish(raw), "unsupported token version 2");
    raw = raw_new(255);
    expect_reject(raw_finish(raw), "unsupported token version 255");

    raw = raw_new(1);
    expect_reject(raw_plain(raw), "truncated token (1 bytes)");
    raw = raw_new(1);
    raw_mem(raw, "\0\1\2\3", 4);
    expect_reject(raw_plain(raw), "truncated token (5 bytes)");

    /* Checksum over the right bytes, wrong value. */
    raw = raw_new(1);
    raw_varint(raw, 0);
    raw_mem(raw, "\x01\x02\x03\x04", 4);
    expect_reject(raw_plain(raw), "checksum mismatch");
    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", 1);
    raw_entry(raw, 0, 0, 0);
    char *text = raw_finish(raw);
    text[3] = text[3] == 'A' ? 'B' : 'A';
    expect_reject(text, "checksum mismatch");

    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", 1);
    raw_entry(raw, 0, 0, 0);
    raw_byte(raw, 0);
    expect_reject(raw_finish(raw), "1 trailing bytes");
    raw = raw_new(1);
    raw_varint(raw, 0);
    raw_mem(raw, "xyz", 3);
    expect_reject(raw_finish(raw), "3 trailing bytes");
}

static void test_reject_varints(void **state)
{
    (void)state;
    raw_t *raw;
    raw = raw_new(1);
    raw_byte(raw, 0x80); /* continuation bit, then nothing */
    expect_reject(raw_finish(raw), "truncated token: topic count ends early");

    raw = raw_new(1);
    for (int i = 0; i < 10; i++)
        raw_byte(raw, 0x80);
    raw_byte(raw, 0x00);
    expect_reject(raw_finish(raw), "longer than 10 bytes");

    raw = raw_new(1);
    for (int i = 0; i < 9; i++)
        raw_byte(raw, 0xff);
    raw_byte(raw, 0x02);
    expect_reject(raw_finish(raw), "overflows 64 bits");

    raw = raw_new(1);
    raw_byte(raw, 0x80);
    raw_byte(raw, 0x00); /* zero in two bytes */
    expect_reject(raw_finish(raw), "topic count: non-minimal varint");

    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", 1);
    raw_byte(raw, 0x81); /* partition 1 in two bytes */
    raw_byte(raw, 0x00);
    raw_varint(raw, 0);
    raw_varint(raw, 0);
    expect_reject(raw_finish(raw), "partition: non-minimal varint");

    /* UINT64_MAX is a well-formed 10-byte varint; it is rejected by range, not by encoding. */
    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", 1);
    raw_entry(raw, 0, UINT64_MAX, 0);
    expect_reject(raw_finish(raw), "offset of t/0 out of range");

    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", 1);
    raw_varint(raw, 0);
    raw_varint(raw, 5);
    raw_byte(raw, 0xff); /* stream time cut short */
    expect_reject(raw_finish(raw), "truncated token: stream time ends early");

    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", 2);
    raw_entry(raw, 0, 0, 0);
    expect_reject(raw_finish(raw), "truncated token: partition ends early");

    raw = raw_new(1);
    raw_varint(raw, 2);
    raw_topic(raw, "t", 1);
    raw_entry(raw, 0, 0, 0);
    expect_reject(raw_finish(raw), "truncated token: topic name length ends early");

    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_varint(raw, 5);
    raw_mem(raw, "abc", 3);
    expect_reject(raw_finish(raw), "topic name ends early");
}

static void test_reject_ranges(void **state)
{
    (void)state;
    raw_t *raw;
    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", 1);
    raw_entry(raw, (uint64_t)INT32_MAX + 1, 0, 0);
    expect_reject(raw_finish(raw), "partition 2147483648 out of range");

    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", 1);
    raw_entry(raw, 4, (uint64_t)INT64_MAX + 1, 0);
    expect_reject(raw_finish(raw), "offset of t/4 out of range");

    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", 1);
    raw_entry(raw, 4, 0, (uint64_t)INT64_MAX + 1);
    expect_reject(raw_finish(raw), "stream time of t/4 out of range");

    /* The boundaries themselves are accepted. */
    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", 1);
    raw_entry(raw, INT32_MAX, INT64_MAX, INT64_MAX);
    char *text = raw_finish(raw);
    sg_token_t *token = decode_ok(text);
    assert_entry(token, "t", INT32_MAX, INT64_MAX, INT64_MAX);
    sg_token_destroy(token);
    free(text);
}

static void test_reject_topic_names(void **state)
{
    (void)state;
    raw_t *raw;
    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "", 1);
    raw_entry(raw, 0, 0, 0);
    expect_reject(raw_finish(raw), "empty topic name");

    char name[SG_TOKEN_MAX_TOPIC_LEN + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, name, 1);
    raw_entry(raw, 0, 0, 0);
    expect_reject(raw_finish(raw), "topic name longer than 249 bytes");

    static const char *const bad_names[] = {"a/b", "a b", "caf\xc3\xa9", "x:y", "a+b", "tab\t"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        raw = raw_new(1);
        raw_varint(raw, 1);
        raw_topic(raw, bad_names[i], 1);
        raw_entry(raw, 0, 0, 0);
        expect_reject(raw_finish(raw), "invalid character");
    }
    /* An embedded NUL would otherwise truncate the name silently. */
    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_varint(raw, 3);
    raw_mem(raw, "a\0b", 3);
    raw_varint(raw, 1);
    raw_entry(raw, 0, 0, 0);
    expect_reject(raw_finish(raw), "invalid character 0x00");
}

static void test_reject_order(void **state)
{
    (void)state;
    raw_t *raw;
    raw = raw_new(1);
    raw_varint(raw, 2);
    raw_topic(raw, "b", 1);
    raw_entry(raw, 0, 0, 0);
    raw_topic(raw, "a", 1);
    raw_entry(raw, 0, 0, 0);
    expect_reject(raw_finish(raw), "topic a out of order");

    raw = raw_new(1);
    raw_varint(raw, 2);
    raw_topic(raw, "ab", 1);
    raw_entry(raw, 0, 0, 0);
    raw_topic(raw, "a", 1); /* a prefix sorts first */
    raw_entry(raw, 0, 0, 0);
    expect_reject(raw_finish(raw), "topic a out of order");

    raw = raw_new(1);
    raw_varint(raw, 2);
    raw_topic(raw, "a", 1);
    raw_entry(raw, 0, 0, 0);
    raw_topic(raw, "a", 1);
    raw_entry(raw, 1, 0, 0);
    expect_reject(raw_finish(raw), "duplicate topic a");

    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", 2);
    raw_entry(raw, 2, 0, 0);
    raw_entry(raw, 1, 0, 0);
    expect_reject(raw_finish(raw), "partition t/1 out of order");

    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", 2);
    raw_entry(raw, 1, 0, 0);
    raw_entry(raw, 1, 5, 5);
    expect_reject(raw_finish(raw), "duplicate partition t/1");

    raw = raw_new(1);
    raw_varint(raw, 2);
    raw_topic(raw, "a", 1);
    raw_entry(raw, 0, 0, 0);
    raw_topic(raw, "b", 0);
    expect_reject(raw_finish(raw), "topic b has no partitions");

    /* The correctly ordered versions of the same bytes decode. */
    raw = raw_new(1);
    raw_varint(raw, 2);
    raw_topic(raw, "a", 1);
    raw_entry(raw, 0, 0, 0);
    raw_topic(raw, "ab", 2);
    raw_entry(raw, 1, 0, 0);
    raw_entry(raw, 2, 0, 0);
    char *text = raw_finish(raw);
    sg_token_t *token = decode_ok(text);
    assert_int_equal(sg_token_count(token), 3);
    sg_token_destroy(token);
    free(text);
}

static void test_reject_entry_limits(void **state)
{
    (void)state;
    raw_t *raw;
    raw = raw_new(1);
    raw_varint(raw, SG_TOKEN_MAX_ENTRIES + 1);
    expect_reject(raw_finish(raw), "too many topics");

    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", SG_TOKEN_MAX_ENTRIES + 1);
    for (uint64_t p = 0; p <= SG_TOKEN_MAX_ENTRIES; p++)
        raw_entry(raw, p, 0, 0);
    char *text = raw_finish(raw);
    assert_true(strlen(text) <= SG_TOKEN_MAX_TEXT); /* rejected for the count, not the length */
    expect_reject(text, "too many entries (limit 4096)");

    /* Spread over two topics the sum still counts. */
    raw = raw_new(1);
    raw_varint(raw, 2);
    raw_topic(raw, "a", SG_TOKEN_MAX_ENTRIES - 5);
    for (uint64_t p = 0; p < SG_TOKEN_MAX_ENTRIES - 5; p++)
        raw_entry(raw, p, 0, 0);
    raw_topic(raw, "b", 6);
    for (uint64_t p = 0; p < 6; p++)
        raw_entry(raw, p, 0, 0);
    expect_reject(raw_finish(raw), "too many entries");

    /* Exactly the limit decodes. */
    raw = raw_new(1);
    raw_varint(raw, 1);
    raw_topic(raw, "t", SG_TOKEN_MAX_ENTRIES);
    for (uint64_t p = 0; p < SG_TOKEN_MAX_ENTRIES; p++)
        raw_entry(raw, p, p, p);
    text = raw_finish(raw);
    sg_token_t *token = decode_ok(text);
    assert_int_equal(sg_token_count(token), SG_TOKEN_MAX_ENTRIES);
    assert_entry(token, "t", 4095, 4095, 4095);
    char *again = encode(token);
    assert_string_equal(again, text);
    free(again);
    free(text);
    sg_token_destroy(token);
}

/* ---- mangling ---- */

static sg_token_t *make_sample(int which)
{
    sg_token_t *token = sg_token_create();
    if (which >= 1)
        assert_int_equal(sg_token_advance(token, "orders", 0, 12345, 1700000000123), 0);
    if (which >= 2) {
        for (int32_t p = 1; p < 12; p++)
            assert_int_equal(sg_token_advance(token, "orders", p * 3, p * 1000, 1700000000000 + p), 0);
        assert_int_equal(sg_token_advance(token, "pay.ments-v2", 7, 1, 2), 0);
        assert_int_equal(sg_token_advance(token, "A_topic", 0, INT64_MAX, 0), 0);
    }
    return token;
}

/* Single bit flips in the text: a changed character alters at most 6 contiguous bits of the
 * binary, a burst CRC-32C always detects, so every one must be rejected. */
static void test_text_bit_flips_rejected(void **state)
{
    (void)state;
    for (int which = 0; which < 3; which++) {
        sg_token_t *token = make_sample(which);
        char *valid = encode(token);
        size_t len = strlen(valid);
        for (int round = 0; round < 2000; round++) {
            char *text = strdup(valid);
            uint64_t r = rng_next();
            text[r % len] ^= (char)(1u << ((r >> 32) % 8));
            char err[256] = "";
            sg_token_t *back = sg_token_decode(text, len, err, sizeof(err));
            if (back != NULL)
                fail_msg("bit flip accepted: %s", text);
            assert_true(err[0] != '\0');
            free(text);
        }
        free(valid);
        sg_token_destroy(token);
    }
}

/* Heavier damage: either rejected with a reason, or a valid token whose own encoding is exactly
 * the damaged text (so nothing was silently normalised) and differs from the original. */
static void check_mangled(const char *original, const char *text, size_t len)
{
    char err[256] = "";
    sg_token_t *back = sg_token_decode(text, len, err, sizeof(err));
    if (back == NULL) {
        assert_true(err[0] != '\0');
        return;
    }
    char *again = encode(back);
    assert_int_equal(strlen(again), len);
    assert_memory_equal(again, text, len);
    assert_true(strcmp(again, original) != 0);
    free(again);
    sg_token_destroy(back);
}

static void test_multi_bit_flips(void **state)
{
    (void)state;
    for (int which = 0; which < 3; which++) {
        sg_token_t *token = make_sample(which);
        char *valid = encode(token);
        size_t len = strlen(valid);
        for (int round = 0; round < 3000; round++) {
            char *text = strdup(valid);
            int flips = 2 + (int)(rng_next() % 7);
            for (int f = 0; f < flips; f++) {
                uint64_t r = rng_next();
                text[r % len] ^= (char)(1u << ((r >> 32) % 8));
            }
            if (strcmp(text, valid) != 0) /* flips may cancel out */
                check_mangled(valid, text, len);
            free(text);
        }
        free(valid);
        sg_token_destroy(token);
    }
}

/* The binary body of `token` (no checksum), written by the reference encoder. */
static raw_t *raw_from_token(const sg_token_t *token)
{
    size_t count = sg_token_count(token);
    const char **topics = calloc(count + 1, sizeof(*topics));
    assert_non_null(topics);
    size_t topic_count = 0;
    for (size_t i = 0; i < count; i++) {
        const char *topic;
        sg_token_entry(token, i, &topic, NULL, NULL, NULL);
        if (topic_count == 0 || strcmp(topics[topic_count - 1], topic) != 0)
            topics[topic_count++] = topic;
    }
    raw_t *raw = raw_new(1);
    raw_varint(raw, topic_count);
    size_t i = 0;
    for (size_t t = 0; t < topic_count; t++) {
        size_t run = 0;
        for (size_t k = i; k < count; k++) {
            const char *topic;
            sg_token_entry(token, k, &topic, NULL, NULL, NULL);
            if (strcmp(topic, topics[t]) != 0)
                break;
            run++;
        }
        raw_topic(raw, topics[t], run);
        for (; run > 0; run--, i++) {
            int32_t partition;
            int64_t offset, stream_time;
            sg_token_entry(token, i, NULL, &partition, &offset, &stream_time);
            raw_entry(raw, (uint64_t)partition, (uint64_t)offset, (uint64_t)stream_time);
        }
    }
    assert_int_equal(i, count);
    free(topics);
    return raw;
}

/* Flips in the binary with the checksum recomputed, so the parser itself is exercised. */
static void test_binary_bit_flips_with_checksum(void **state)
{
    (void)state;
    int accepted = 0, rejected = 0;
    for (int which = 1; which < 3; which++) {
        sg_token_t *token = make_sample(which);
        char *valid = encode(token);
        raw_t *base = raw_from_token(token);
        raw_t *copy = malloc(sizeof(*copy));
        memcpy(copy, base, sizeof(*copy));
        char *rebuilt = raw_finish(copy);
        assert_string_equal(rebuilt, valid);
        free(rebuilt);

        for (int round = 0; round < 3000; round++) {
            raw_t *mangled = malloc(sizeof(*mangled));
            memcpy(mangled, base, sizeof(*mangled));
            uint64_t r = rng_next();
            size_t at = 1 + r % (mangled->len - 1); /* keep the version byte */
            mangled->bytes[at] ^= (uint8_t)(1u << ((r >> 32) % 8));
            char *text = raw_finish(mangled);
            char err[256] = "";
            sg_token_t *back = sg_token_decode(text, strlen(text), err, sizeof(err));
            if (back == NULL) {
                assert_true(err[0] != '\0');
                assert_null(strstr(err, "checksum"));
                rejected++;
            } else {
                check_mangled(valid, text, strlen(text));
                sg_token_destroy(back);
                accepted++;
            }
            free(text);
        }
        free(base);
        free(valid);
        sg_token_destroy(token);
    }
    /* Both outcomes occur: flipped values decode, flipped structure does not. */
    assert_true(accepted > 0);
    assert_true(rejected > 0);
}

/* ---- limits ---- */

static void test_advance_entry_limit(void **state)
{
    (void)state;
    sg_token_t *token = sg_token_create();
    for (int32_t p = 0; p < SG_TOKEN_MAX_ENTRIES; p++)
        assert_int_equal(sg_token_advance(token, p % 2 ? "odd" : "even", p, p, p), 0);
    assert_int_equal(sg_token_count(token), SG_TOKEN_MAX_ENTRIES);
    assert_int_equal(sg_token_advance(token, "even", SG_TOKEN_MAX_ENTRIES, 1, 1), -1);
    assert_int_equal(sg_token_advance(token, "new", 0, 1, 1), -1);
    assert_int_equal(sg_token_count(token), SG_TOKEN_MAX_ENTRIES);
    assert_int_equal(sg_token_get(token, "new", 0, NULL, NULL), -1);
    /* Existing entries still advance. */
    assert_int_equal(sg_token_advance(token, "even", 0, 77, 77), 0);
    assert_entry(token, "even", 0, 77, 77);

    char *text = encode(token);
    assert_true(strlen(text) <= SG_TOKEN_MAX_TEXT);
    sg_token_t *back = decode_ok(text);
    assert_int_equal(sg_token_count(back), SG_TOKEN_MAX_ENTRIES);
    assert_same_text(token, back);
    free(text);
    sg_token_destroy(back);
    sg_token_destroy(token);
}

/* Long topic names hit the text limit long before the entry limit; the token must refuse to grow
 * rather than produce a text its own decoder would reject. */
static void test_advance_text_limit(void **state)
{
    (void)state;
    sg_token_t *token = sg_token_create();
    char name[SG_TOKEN_MAX_TOPIC_LEN + 1];
    memset(name, 'q', SG_TOKEN_MAX_TOPIC_LEN);
    name[SG_TOKEN_MAX_TOPIC_LEN] = '\0';
    int added = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "%06d", i);
        name[6] = 'q'; /* keep the full length */
        if (sg_token_advance(token, name, INT32_MAX, INT64_MAX, INT64_MAX) != 0)
            break;
        added++;
    }
    assert_true(added > 10);
    assert_true(added < 1000);
    assert_int_equal(sg_token_count(token), added);
    char *text = encode(token);
    assert_true(strlen(text) <= SG_TOKEN_MAX_TEXT);
    assert_true(strlen(text) > SG_TOKEN_MAX_TEXT - 400); /* close to the limit: no slack lost */
    sg_token_t *back = decode_ok(text);
    assert_same_text(token, back);

    /* Merging two full tokens is refused the same way. */
    sg_token_t *other = sg_token_create();
    assert_int_equal(sg_token_advance(other, "fresh", 0, 1, 1), 0);
    size_t tail = SG_TOKEN_MAX_TEXT - strlen(text);
    for (size_t i = 0; i < tail; i++) /* every entry adds at least one character */
        if (sg_token_advance(other, "fresh", (int32_t)(i + 1), INT64_MAX, INT64_MAX) != 0)
            break;
    assert_int_equal(sg_token_merge(back, other), -1);
    assert_same_text(token, back);
    free(text);
    sg_token_destroy(other);
    sg_token_destroy(back);
    sg_token_destroy(token);
}

/* The allocation-free single-entry encoder must produce exactly the general encoder's text. */
static void test_encode_one_matches_encode(void **state)
{
    (void)state;
    const struct {
        const char *topic;
        int32_t partition;
        int64_t offset, stream_time;
    } cases[] = {{"t", 0, 0, 0}, {"orders.commands", 3, 17, 1764129000123LL}, {"a-b_c.D9", INT32_MAX, INT64_MAX, INT64_MAX}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        sg_token_t *token = sg_token_create();
        assert_int_equal(sg_token_advance(token, cases[i].topic, cases[i].partition, cases[i].offset, cases[i].stream_time), 0);
        char want[256], got[256];
        size_t want_len = sg_token_encode(token, want, sizeof(want));
        size_t got_len =
            sg_token_encode_one(cases[i].topic, cases[i].partition, cases[i].offset, cases[i].stream_time, got, sizeof(got));
        assert_int_equal(got_len, want_len);
        assert_string_equal(got, want);
        sg_token_destroy(token);
    }
    char buf[64];
    assert_int_equal(sg_token_encode_one("t", -1, 0, 0, buf, sizeof(buf)), 0);
    assert_int_equal(sg_token_encode_one("t", 0, -1, 0, buf, sizeof(buf)), 0);
    assert_int_equal(sg_token_encode_one("t", 0, 0, -1, buf, sizeof(buf)), 0);
    assert_int_equal(sg_token_encode_one("bad topic", 0, 0, 0, buf, sizeof(buf)), 0);
    assert_int_equal(sg_token_encode_one("", 0, 0, 0, buf, sizeof(buf)), 0);
    /* truncation reports the full length, like sg_token_encode */
    size_t full = sg_token_encode_one("orders", 1, 2, 3, buf, sizeof(buf));
    assert_true(full > 8);
    assert_int_equal(sg_token_encode_one("orders", 1, 2, 3, buf, 8), full);
    assert_int_equal(strlen(buf), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_round_trip),
        cmocka_unit_test(test_encode_one_matches_encode),
        cmocka_unit_test(test_single_round_trip),
        cmocka_unit_test(test_multi_round_trip),
        cmocka_unit_test(test_large_values_round_trip),
        cmocka_unit_test(test_canonical_insertion_order),
        cmocka_unit_test(test_encode_truncates),
        cmocka_unit_test(test_advance_max_per_field),
        cmocka_unit_test(test_advance_rejects_bad_arguments),
        cmocka_unit_test(test_dup_is_deep),
        cmocka_unit_test(test_dup_of_empty),
        cmocka_unit_test(test_merge_max_per_field),
        cmocka_unit_test(test_merge_overlapping),
        cmocka_unit_test(test_merge_disjoint),
        cmocka_unit_test(test_merge_commutative_idempotent),
        cmocka_unit_test(test_merge_limit_leaves_dst_unchanged),
        cmocka_unit_test(test_covers),
        cmocka_unit_test(test_reject_text_level),
        cmocka_unit_test(test_reject_envelope),
        cmocka_unit_test(test_reject_varints),
        cmocka_unit_test(test_reject_ranges),
        cmocka_unit_test(test_reject_topic_names),
        cmocka_unit_test(test_reject_order),
        cmocka_unit_test(test_reject_entry_limits),
        cmocka_unit_test(test_text_bit_flips_rejected),
        cmocka_unit_test(test_multi_bit_flips),
        cmocka_unit_test(test_binary_bit_flips_with_checksum),
        cmocka_unit_test(test_advance_entry_limit),
        cmocka_unit_test(test_advance_text_limit),
    };
    return cmocka_run_group_tests_name("queries-token", tests, NULL, NULL);
}
