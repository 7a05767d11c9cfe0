/*
 * Unit tests for the correlation table (gateway/core/corr.c).
 *
 * Values are entries of a test-owned array, each holding its id as the table requires, so a
 * wrong value is detected, not just a missing one. The randomized test replays 200k operations against a plain array and
 * checks the table's answers after every operation; its capacity puts the full-size table at
 * the 0.7 load limit so probe runs are long and backward shifts really happen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sg_corr.h"

typedef struct {
    int tag;
    sg_reqid_t id;
} entry_t;

#define KEY_OFFSET offsetof(entry_t, id)

static entry_t values[64];

static sg_reqid_t make_id(uint32_t counter)
{
    return (sg_reqid_t){UINT64_C(1700000000000), 3, 1, counter};
}

/* values[i] holding id, as the value inserted under it. */
static void *with_id(size_t i, sg_reqid_t id)
{
    values[i].id = id;
    return &values[i];
}

static void test_create_limits(void **state)
{
    (void)state;
    assert_null(sg_corr_create(0, KEY_OFFSET));
    assert_null(sg_corr_create(SG_CORR_MAX_CAPACITY + 1, KEY_OFFSET));
    sg_corr_destroy(NULL);

    /* The largest table allocates no slots until used. */
    sg_corr_t *corr = sg_corr_create(SG_CORR_MAX_CAPACITY, KEY_OFFSET);
    assert_non_null(corr);
    assert_int_equal(sg_corr_capacity(corr), SG_CORR_MAX_CAPACITY);
    assert_int_equal(sg_corr_count(corr), 0);
    size_t empty = sg_corr_memory(corr);
    assert_true(empty < 256);
    sg_reqid_t id = make_id(1);
    assert_null(sg_corr_find(corr, &id));
    assert_null(sg_corr_remove(corr, &id));
    assert_int_equal(sg_corr_insert(corr, with_id(0, id)), SG_CORR_OK);
    /* One entry: a handful of slots, not 2^24 of them. */
    assert_true(sg_corr_memory(corr) < 4096);
    sg_corr_destroy(corr);
}

static void test_insert_find_remove(void **state)
{
    (void)state;
    sg_corr_t *corr = sg_corr_create(100, KEY_OFFSET);
    for (uint32_t i = 0; i < 10; ++i) {
        sg_reqid_t id = make_id(i);
        assert_int_equal(sg_corr_insert(corr, with_id(i, id)), SG_CORR_OK);
        assert_int_equal(sg_corr_count(corr), i + 1);
    }
    for (uint32_t i = 0; i < 10; ++i) {
        sg_reqid_t id = make_id(i);
        assert_ptr_equal(sg_corr_find(corr, &id), &values[i]);
    }
    sg_reqid_t absent = make_id(10);
    assert_null(sg_corr_find(corr, &absent));
    assert_null(sg_corr_remove(corr, &absent));
    assert_int_equal(sg_corr_count(corr), 10);

    sg_reqid_t id = make_id(4);
    assert_ptr_equal(sg_corr_remove(corr, &id), &values[4]);
    assert_int_equal(sg_corr_count(corr), 9);
    assert_null(sg_corr_find(corr, &id));
    assert_null(sg_corr_remove(corr, &id)); /* removed once only: completion happens once */
    for (uint32_t i = 0; i < 10; ++i) {
        sg_reqid_t other = make_id(i);
        assert_ptr_equal(sg_corr_find(corr, &other), i == 4 ? NULL : (void *)&values[i]);
    }
    sg_corr_destroy(corr);
}

static void test_keys_compare_every_field(void **state)
{
    (void)state;
    sg_corr_t *corr = sg_corr_create(10, KEY_OFFSET);
    const sg_reqid_t base = {1000, 1, 1, 1};
    const sg_reqid_t variants[] = {
        {1001, 1, 1, 1},
        {1000, 2, 1, 1},
        {1000, 1, 2, 1},
        {1000, 1, 1, 2},
        {1000 | UINT64_C(1) << 60, 1, 1, 1}, /* the table compares all 64 bits of time */
    };
    assert_int_equal(sg_corr_insert(corr, with_id(0, base)), SG_CORR_OK);
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); ++i)
        assert_null(sg_corr_find(corr, &variants[i]));
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); ++i)
        assert_int_equal(sg_corr_insert(corr, with_id(i + 1, variants[i])), SG_CORR_OK);
    assert_ptr_equal(sg_corr_find(corr, &base), &values[0]);
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); ++i)
        assert_ptr_equal(sg_corr_find(corr, &variants[i]), &values[i + 1]);
    sg_corr_destroy(corr);
}

static void test_duplicate(void **state)
{
    (void)state;
    sg_corr_t *corr = sg_corr_create(2, KEY_OFFSET);
    sg_reqid_t id = make_id(7);
    assert_int_equal(sg_corr_insert(corr, with_id(0, id)), SG_CORR_OK);
    assert_int_equal(sg_corr_insert(corr, with_id(1, id)), SG_CORR_E_DUPLICATE);
    assert_int_equal(sg_corr_count(corr), 1);
    assert_ptr_equal(sg_corr_find(corr, &id), &values[0]); /* the first value stays */

    /* A duplicate is reported as such even when the table is full. */
    sg_reqid_t other = make_id(8);
    assert_int_equal(sg_corr_insert(corr, with_id(2, other)), SG_CORR_OK);
    assert_int_equal(sg_corr_insert(corr, with_id(1, id)), SG_CORR_E_DUPLICATE);
    sg_corr_destroy(corr);
}

static void test_full_then_insert_after_remove(void **state)
{
    (void)state;
    for (size_t capacity = 1; capacity <= 40; ++capacity) {
        sg_corr_t *corr = sg_corr_create(capacity, KEY_OFFSET);
        for (uint32_t i = 0; i < capacity; ++i) {
            sg_reqid_t id = make_id(i);
            assert_int_equal(sg_corr_insert(corr, with_id(i, id)), SG_CORR_OK);
        }
        sg_reqid_t extra = make_id(1000);
        assert_int_equal(sg_corr_insert(corr, with_id(50, extra)), SG_CORR_E_FULL);
        assert_int_equal(sg_corr_count(corr), capacity);
        assert_null(sg_corr_find(corr, &extra));

        sg_reqid_t victim = make_id((uint32_t)capacity / 2);
        assert_ptr_equal(sg_corr_remove(corr, &victim), &values[capacity / 2]);
        assert_int_equal(sg_corr_insert(corr, with_id(50, extra)), SG_CORR_OK);
        assert_ptr_equal(sg_corr_find(corr, &extra), &values[50]);
        assert_int_equal(sg_corr_insert(corr, with_id(51, victim)), SG_CORR_E_FULL);
        for (uint32_t i = 0; i < capacity; ++i) {
            sg_reqid_t id = make_id(i);
            assert_ptr_equal(sg_corr_find(corr, &id), i == capacity / 2 ? NULL : (void *)&values[i]);
        }
        sg_corr_destroy(corr);
    }
}

static void test_growth_preserves_entries(void **state)
{
    (void)state;
    enum { N = 50000 };
    entry_t *slots = calloc(N, sizeof(*slots));
    assert_non_null(slots);
    sg_corr_t *corr = sg_corr_create(N, KEY_OFFSET);
    size_t memory = sg_corr_memory(corr);
    int grew = 0;
    for (uint32_t i = 0; i < N; ++i) {
        sg_reqid_t id = {UINT64_C(1700000000000) + i / 1000, i % 3, (uint16_t)(i % 2), i};
        slots[i].id = id;
        assert_int_equal(sg_corr_insert(corr, &slots[i]), SG_CORR_OK);
        if (sg_corr_memory(corr) > memory) {
            memory = sg_corr_memory(corr);
            ++grew;
            /* Every entry inserted so far survived the rehash. */
            for (uint32_t j = 0; j <= i; ++j) {
                sg_reqid_t old = {UINT64_C(1700000000000) + j / 1000, j % 3, (uint16_t)(j % 2), j};
                assert_ptr_equal(sg_corr_find(corr, &old), &slots[j]);
            }
        }
    }
    /* From the first allocation (16 slots) to 2^17 = the bound for 50000 entries at 0.7. */
    assert_int_equal(grew, 1 + 13);
    /* 16 bytes a slot: a pointer and a hash, the key read from the value. */
    assert_true(memory >= (size_t)131072 * 16);
    assert_true(memory < (size_t)131072 * 24);
    assert_int_equal(sg_corr_count(corr), N);
    sg_corr_destroy(corr);
    free(slots);
}

/* xorshift64*: deterministic, so a failure replays. */
static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);
static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

typedef struct {
    sg_reqid_t id;
    int present;
} ref_entry_t;

static void check_entry(const sg_corr_t *corr, const ref_entry_t *entry)
{
    assert_ptr_equal(sg_corr_find(corr, &entry->id), entry->present ? (const void *)entry : NULL);
}

static void test_randomized_against_reference(void **state)
{
    (void)state;
    /* 5734 / 0.7 = 8191.4: the full-size table is 8192 slots at load 0.70. */
    enum { CAPACITY = 5734, POOL = 8000, OPS = 200000 };
    ref_entry_t *pool = calloc(POOL, sizeof(*pool));
    assert_non_null(pool);
    for (uint32_t i = 0; i < POOL; ++i)
        pool[i].id =
            (sg_reqid_t){UINT64_C(1700000000000) + rng_next() % 4, (uint32_t)(rng_next() % 3), (uint16_t)(rng_next() % 2), i};
    size_t present = 0;
    size_t full_seen = 0, dup_seen = 0, removed = 0, absent_removes = 0;
    sg_corr_t *corr = sg_corr_create(CAPACITY, offsetof(ref_entry_t, id));

    for (int op = 0; op < OPS; ++op) {
        ref_entry_t *entry = &pool[rng_next() % POOL];
        /* Insert-heavy so the table spends most of its time near full. */
        if (rng_next() % 100 < 75) {
            int rc = sg_corr_insert(corr, entry);
            if (entry->present) {
                assert_int_equal(rc, SG_CORR_E_DUPLICATE);
                ++dup_seen;
            } else if (present == CAPACITY) {
                assert_int_equal(rc, SG_CORR_E_FULL);
                ++full_seen;
            } else {
                assert_int_equal(rc, SG_CORR_OK);
                entry->present = 1;
                ++present;
            }
        } else {
            void *value = sg_corr_remove(corr, &entry->id);
            if (entry->present) {
                assert_ptr_equal(value, entry);
                entry->present = 0;
                --present;
                ++removed;
            } else {
                assert_null(value);
                ++absent_removes;
            }
        }
        assert_int_equal(sg_corr_count(corr), present);
        check_entry(corr, entry);
        for (int k = 0; k < 8; ++k)
            check_entry(corr, &pool[rng_next() % POOL]);
        if (op % 5000 == 0)
            for (uint32_t i = 0; i < POOL; ++i)
                check_entry(corr, &pool[i]);
    }
    for (uint32_t i = 0; i < POOL; ++i)
        check_entry(corr, &pool[i]);
    /* The run really reached every path. */
    assert_true(full_seen > 1000);
    assert_true(dup_seen > 1000);
    assert_true(removed > 10000);
    assert_true(absent_removes > 1000);

    /* Drain: everything comes out exactly once. */
    for (uint32_t i = 0; i < POOL; ++i) {
        void *value = sg_corr_remove(corr, &pool[i].id);
        assert_ptr_equal(value, pool[i].present ? (void *)&pool[i] : NULL);
    }
    assert_int_equal(sg_corr_count(corr), 0);
    sg_corr_destroy(corr);
    free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_limits),
        cmocka_unit_test(test_insert_find_remove),
        cmocka_unit_test(test_keys_compare_every_field),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_full_then_insert_after_remove),
        cmocka_unit_test(test_growth_preserves_entries),
        cmocka_unit_test(test_randomized_against_reference),
    };
    return cmocka_run_group_tests_name("corr", tests, NULL, NULL);
}
