/*
 * W3C traceparent for our hop: a valid caller's trace id and flags are kept with a new span id;
 * anything malformed starts a new trace; generated ids are lower-case hex and never all zeros.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "trace.h"

#define CALLER "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

static int lower_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; ++i)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void assert_well_formed(const char *tp)
{
    assert_int_equal(strlen(tp), SG_TRACEPARENT_LEN);
    assert_true(sg_traceparent_valid(tp, SG_TRACEPARENT_LEN));
    assert_true(lower_hex(tp + 36, 16));
}

static void test_valid(void **state)
{
    assert_true(sg_traceparent_valid(CALLER, strlen(CALLER)));
    assert_false(sg_traceparent_valid(NULL, 0));
    assert_false(sg_traceparent_valid(CALLER, strlen(CALLER) - 1));
    assert_false(sg_traceparent_valid("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 55)); /* version */
    assert_false(sg_traceparent_valid("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", 55)); /* upper case */
    assert_false(sg_traceparent_valid("00-00000000000000000000000000000000-b7ad6b7169203331-01", 55)); /* zero trace */
    assert_false(sg_traceparent_valid("00-0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331-01", 55)); /* separator */
    assert_false(sg_traceparent_valid("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g", 55)); /* flags */
}

static void test_keeps_the_callers_trace(void **state)
{
    uint64_t rng = 0x1234567u;
    char out[SG_TRACEPARENT_LEN + 1];
    sg_traceparent_make(&rng, CALLER, strlen(CALLER), out);
    assert_well_formed(out);
    assert_memory_equal(out, CALLER, 36);          /* version and trace id */
    assert_memory_equal(out + 52, CALLER + 52, 3); /* flags */
    assert_memory_not_equal(out + 36, CALLER + 36, 16);
    char again[SG_TRACEPARENT_LEN + 1];
    sg_traceparent_make(&rng, CALLER, strlen(CALLER), again);
    assert_memory_not_equal(out + 36, again + 36, 16); /* a new span per hop */
}

static void test_starts_a_trace(void **state)
{
    uint64_t rng = 42;
    char first[SG_TRACEPARENT_LEN + 1], second[SG_TRACEPARENT_LEN + 1];
    sg_traceparent_make(&rng, NULL, 0, first);
    assert_well_formed(first);
    assert_string_equal(first + 53, "01"); /* sampled */
    sg_traceparent_make(&rng, "garbage", 7, second);
    assert_well_formed(second);
    assert_memory_not_equal(first + 3, second + 3, 32);
}

static void test_random_never_repeats_soon(void **state)
{
    uint64_t rng = 1, seen[64];
    for (size_t i = 0; i < 64; ++i) {
        seen[i] = sg_trace_random(&rng);
        assert_int_not_equal(seen[i], 0);
        for (size_t k = 0; k < i; ++k)
            assert_int_not_equal(seen[i], seen[k]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_keeps_the_callers_trace),
        cmocka_unit_test(test_starts_a_trace),
        cmocka_unit_test(test_random_never_repeats_soon),
    };
    return cmocka_run_group_tests_name("gateway-trace", tests, NULL, NULL);
}
