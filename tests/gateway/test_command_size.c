/*
 * What every waiting command holds of ours (issue 13, memory): its record (sg_cmd_t, one malloc
 * chunk) and its correlation slot. These sizes are the savings the memory rows of bench/README.md
 * measure; a field added without looking at them would silently cost every waiting request a
 * bigger malloc chunk, so they are pinned here (glibc's chunk sizes: 16-byte steps, 8 bytes of
 * header, so up to 280 requested bytes take a 288-byte chunk).
 */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "command.h"
#include "sg_corr.h"

/* The record without an owner (no auth), as admit() allocates it. */
#define SG_CMD_BYTES (offsetof(sg_cmd_t, owner) + 1)

static void test_command_record_is_one_small_chunk(void **state)
{
    (void)state;
    assert_true(SG_CMD_BYTES <= 280); /* was 504 (a 512-byte chunk) before the claim and owner moved out */
    void *record = malloc(SG_CMD_BYTES);
    assert_non_null(record);
    assert_true(malloc_usable_size(record) <= 280);
    free(record);
    /* The park is shared by every kind of wait; it is most of the record. */
    assert_true(sizeof(sg_park_t) <= 96);
}

static void test_idempotency_claim_is_not_in_the_record(void **state)
{
    (void)state;
    /* Only requests with an Idempotency-Key pay for the claim (sg_cmd_idem_t, allocated apart). */
    assert_true(sizeof(sg_cmd_idem_t) > 100);
    assert_true(sizeof(sg_cmd_t) < 2 * sizeof(sg_cmd_idem_t));
}

static void test_correlation_slot_per_request(void **state)
{
    (void)state;
    /* A loop's share of limits.pending at the table's largest size: the bytes per waiting request
     * stay under 3 slots of 16 bytes: 2^17 slots for 50000 (42 bytes each; 84 with the 32-byte
     * slots that held a copy of the key). */
    enum { N = 50000 };
    static sg_reqid_t values[N]; /* each value is its own id here (offset 0) */
    sg_corr_t *corr = sg_corr_create(N, 0);
    for (uint32_t i = 0; i < N; ++i) {
        values[i] = (sg_reqid_t){UINT64_C(1700000000000), 7, 1, i};
        assert_int_equal(sg_corr_insert(corr, &values[i]), SG_CORR_OK);
    }
    size_t per_entry = sg_corr_memory(corr) / N;
    assert_true(per_entry <= 3 * 16);
    sg_corr_destroy(corr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_record_is_one_small_chunk),
        cmocka_unit_test(test_idempotency_claim_is_not_in_the_record),
        cmocka_unit_test(test_correlation_slot_per_request),
    };
    return cmocka_run_group_tests_name("gateway-command-size", tests, NULL, NULL);
}
