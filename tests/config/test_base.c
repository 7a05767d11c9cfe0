/*
 * Unit tests for the base library (config/base): base64url both ways against RFC 4648's test
 * vectors and strictness, the log's levels, sink and once-per-cause memory, SipHash-1-3 against
 * CPython's, and the helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sg_base.h"
#include "sg_log.h"

static void test_b64url_vectors(void **state)
{
    /* RFC 4648 §10, unpadded, with the URL-safe alphabet. */
    static const struct {
        const char *in, *out;
    } vectors[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
                   {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}};
    for (size_t i = 0; i < SG_ARRAY_SIZE(vectors); ++i) {
        size_t len = strlen(vectors[i].in);
        char text[32];
        assert_int_equal(sg_b64url_encoded_len(len), strlen(vectors[i].out));
        assert_int_equal(sg_b64url_encode(vectors[i].in, len, text), strlen(vectors[i].out));
        assert_string_equal(text, vectors[i].out);
        uint8_t bytes[32];
        char err[128] = "";
        long n = sg_b64url_decode(vectors[i].out, strlen(vectors[i].out), bytes, err, sizeof(err));
        assert_int_equal(n, (long)len);
        assert_memory_equal(bytes, vectors[i].in, len);
    }
}

static void test_b64url_round_trip_every_length(void **state)
{
    uint8_t in[64], out[64];
    char text[100];
    for (size_t i = 0; i < sizeof(in); ++i)
        in[i] = (uint8_t)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof(in); ++len) {
        size_t n = sg_b64url_encode(in, len, text);
        assert_int_equal(n, sg_b64url_encoded_len(len));
        assert_int_equal(sg_b64url_decode(text, n, out, NULL, 0), (long)len);
        assert_memory_equal(in, out, len);
    }
}

static void expect_refused(const char *text, const char *why)
{
    uint8_t out[64];
    char err[128] = "";
    assert_int_equal(sg_b64url_decode(text, strlen(text), out, err, sizeof(err)), -1);
    if (strstr(err, why) == NULL)
        fail_msg("decoding \"%s\": \"%s\" does not contain \"%s\"", text, err, why);
}

static void test_b64url_strict(void **state)
{
    expect_refused("Zg==", "padded");
    expect_refused("Zm9v+A", "invalid base64url character 0x2b");
    expect_refused("Zm/v", "invalid base64url character 0x2f");
    expect_refused("Zm9vY", "length 5");
    expect_refused("Zh", "non-canonical");  /* 'h' leaves a trailing bit set */
    expect_refused("Zm9", "non-canonical"); /* '9' vs '8' */
    uint8_t out[4];
    assert_int_equal(sg_b64url_decode("Zm9v", 4, out, NULL, 0), 3); /* NULL err is allowed */
}

static char captured[512];
static int captured_level = -1;

static void capture(void *ctx, sg_log_level_t level, const char *message, size_t len)
{
    (void)ctx;
    snprintf(captured, sizeof(captured), "%.*s", (int)len, message);
    captured_level = (int)level;
}

static void test_log_levels_and_sink(void **state)
{
    sg_log_set_sink(capture, NULL);
    sg_log_set_level(SG_LOG_WARN);
    captured[0] = '\0';
    sg_log_info("not shown %d", 1);
    assert_string_equal(captured, "");
    sg_log_warn("shown %d", 2);
    assert_string_equal(captured, "shown 2");
    assert_int_equal(captured_level, SG_LOG_WARN);
    sg_log_error("also %s", "shown");
    assert_string_equal(captured, "also shown");
    assert_true(sg_log_enabled(SG_LOG_ERROR));
    assert_false(sg_log_enabled(SG_LOG_DEBUG));
    sg_log_set_level(SG_LOG_DEBUG);
    sg_log_debug("debug");
    assert_string_equal(captured, "debug");

    /* A long line is cut, never overflows. */
    char *big = malloc(SG_LOG_LINE_MAX * 2);
    memset(big, 'x', SG_LOG_LINE_MAX * 2 - 1);
    big[SG_LOG_LINE_MAX * 2 - 1] = '\0';
    sg_log_error("%s", big);
    assert_int_equal(strlen(captured), sizeof(captured) - 1);
    free(big);
    sg_log_set_sink(NULL, NULL);
    sg_log_set_level(SG_LOG_INFO);
}

static void test_log_level_names(void **state)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (size_t i = 0; i < SG_ARRAY_SIZE(names); ++i) {
        sg_log_level_t level;
        assert_int_equal(sg_log_level_parse(names[i], &level), 0);
        assert_int_equal(level, (int)i);
        assert_string_equal(sg_log_level_name(level), names[i]);
    }
    sg_log_level_t level;
    assert_int_equal(sg_log_level_parse("verbose", &level), -1);
    assert_int_equal(sg_log_level_parse("INFO", &level), -1);
}

static void test_log_once(void **state)
{
    static sg_log_once_t once;
    assert_int_equal(sg_log_once(&once, 7), 1);
    assert_int_equal(sg_log_once(&once, 7), 0);
    assert_int_equal(sg_log_once(&once, 0), 1);
    assert_int_equal(sg_log_once(&once, 0), 0);
    /* Fill the memory: later causes are reported as seen, so a flood stays quiet. */
    int fresh = 0;
    for (uint64_t cause = 100; cause < 100 + 2 * SG_LOG_ONCE_MAX; ++cause)
        fresh += sg_log_once(&once, cause);
    assert_int_equal(fresh, SG_LOG_ONCE_MAX - 2);
    assert_int_equal(sg_log_once(&once, 7), 0);
}

/* The same failure naming other file numbers or sizes is one cause; other words are another. */
static void test_log_cause_of(void **state)
{
    (void)state;
    uint64_t first = sg_log_cause_of("tables: cannot open /d/tables: IO error: While appending to file: /d/tables/000012.log");
    assert_int_equal(sg_log_cause_of("tables: cannot open /d/tables: IO error: While appending to file: /d/tables/000019.log"),
                     first);
    assert_int_not_equal(sg_log_cause_of("tables: cannot open /d/tables: IO error: While appending to file: /d/tables/MANIFEST"),
                         first);
    assert_int_equal(sg_log_cause_of("waiting for room: 0 KiB free"), sg_log_cause_of("waiting for room: 3240 KiB free"));
    assert_int_not_equal(sg_log_cause_of(""), 0);
}

static void test_helpers(void **state)
{
    char err[16];
    assert_int_equal(sg_errf(err, sizeof(err), "value %d is too long to fit", 12345), -1);
    assert_string_equal(err, "value 12345 is "); /* cut to 15 bytes, terminated */
    assert_int_equal(sg_errf(NULL, 0, "ignored"), -1);
    char *copy = sg_memdup("ab\0cd", 5);
    assert_memory_equal(copy, "ab\0cd", 5);
    assert_int_equal(copy[5], '\0');
    free(copy);
    int64_t before = sg_mono_ms();
    sg_sleep_ms(20);
    assert_true(sg_mono_ms() - before >= 20);
    assert_true(sg_now_ms() > 1700000000000LL);
    uint8_t a[16] = {0}, b[16] = {0};
    assert_int_equal(sg_random_bytes(a, sizeof(a)), 0);
    assert_int_equal(sg_random_bytes(b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
}

/* CPython's hash() of bytes is SipHash-1-3 (sys.hash_info.algorithm 'siphash13' on 3.11) under
 * a key made from PYTHONHASHSEED: all zero for 0, and for N > 0 the bytes of its LCG
 * (x = x * 214013 + 2531011, byte = x >> 16 & 0xff). The values below came from
 *   PYTHONHASHSEED=S python3 -c 'print(hex(hash(bytes(i & 0xff for i in range(N))) & (2**64 - 1)))'
 * an implementation independent of ours (Python maps -1 to -2 and the empty input to 0: none of
 * these). */
static void test_siphash13_vectors(void **state)
{
    static const struct {
        int seed;
        size_t len;
        uint64_t hash;
    } cases[] = {
        {0, 1, UINT64_C(0x68a914128e01e473)},   {0, 7, UINT64_C(0x2f098ab0c751325a)},  {0, 8, UINT64_C(0xead411e67ebe2eea)},
        {0, 9, UINT64_C(0x75927f9d95124362)},   {0, 15, UINT64_C(0xf30eb725bb91c9ea)}, {0, 16, UINT64_C(0x8972188433a5c5b7)},
        {0, 63, UINT64_C(0x385d3e39e5f37359)},  {0, 64, UINT64_C(0x75e05fd5bbc870c6)}, {0, 700, UINT64_C(0x0869d346f3ccea86)},
        {1, 3, UINT64_C(0x8d5b20ab227ba858)},   {1, 8, UINT64_C(0xc0b5739e7e28dd01)},  {1, 21, UINT64_C(0x6194f8d23abbab99)},
        {1, 700, UINT64_C(0xae6a7fc3f189084c)},
    };
    /* PYTHONHASHSEED=1: 29 23 be 84 e1 6c d6 ae 52 90 49 f1 f1 bb e9 eb. */
    const sg_sipkey_t keys[2] = {{0, 0}, {UINT64_C(0xaed66ce184be2329), UINT64_C(0xebe9bbf1f1499052)}};
    uint8_t buf[704 + 3];
    for (size_t i = 0; i < SG_ARRAY_SIZE(cases); i++) {
        for (size_t at = 0; at < 4; at++) { /* any alignment */
            for (size_t j = 0; j < cases[i].len; j++)
                buf[at + j] = (uint8_t)j;
            if (sg_siphash13(&keys[cases[i].seed], buf + at, cases[i].len) != cases[i].hash)
                fail_msg("seed %d, %zu bytes at offset %zu", cases[i].seed, cases[i].len, at);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_vectors),  cmocka_unit_test(test_b64url_round_trip_every_length),
        cmocka_unit_test(test_b64url_strict),   cmocka_unit_test(test_log_levels_and_sink),
        cmocka_unit_test(test_log_level_names), cmocka_unit_test(test_log_once),
        cmocka_unit_test(test_helpers),         cmocka_unit_test(test_siphash13_vectors),
        cmocka_unit_test(test_log_cause_of),
    };
    return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
