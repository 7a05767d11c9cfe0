/*
 * queries/keysort.c: the radix sort of table rows must give exactly the order of RocksDB's
 * bytewise comparator (ingestion refuses anything else), equal keys in ascending index order (the
 * commit keeps the last write of a key). Checked against qsort with an independent comparison
 * over random key sets: short keys, trailing NUL bytes, long shared prefixes, duplicates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keysort.h"

#define MAX_ITEMS 5000
#define MAX_KEY 24

typedef struct {
    uint8_t bytes[MAX_ITEMS][MAX_KEY];
    sg_keysort_item_t items[MAX_ITEMS], scratch[MAX_ITEMS], want[MAX_ITEMS];
} keyset_t;

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Bytewise: the first differing byte decides, else the shorter key first; then the index. */
static int reference_cmp(const void *a, const void *b)
{
    const sg_keysort_item_t *x = a, *y = b;
    for (size_t i = 0; i < x->keylen && i < y->keylen; i++)
        if (x->key[i] != y->key[i])
            return x->key[i] < y->key[i] ? -1 : 1;
    if (x->keylen != y->keylen)
        return x->keylen < y->keylen ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static void add(keyset_t *set, size_t i, const void *key, size_t keylen)
{
    assert_true(keylen <= MAX_KEY);
    memcpy(set->bytes[i], key, keylen);
    set->items[i] = (sg_keysort_item_t){sg_keysort_prefix(set->bytes[i], keylen), set->bytes[i], keylen, i};
}

/* Sorts the first n items both ways and compares item by item (the index too). */
static void check(keyset_t *set, size_t n)
{
    memcpy(set->want, set->items, n * sizeof(*set->items));
    qsort(set->want, n, sizeof(*set->want), reference_cmp);
    sg_keysort(set->items, set->scratch, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(set->items[i].index, set->want[i].index);
        assert_ptr_equal(set->items[i].key, set->want[i].key);
    }
    for (size_t i = 1; i < n; i++) /* and, on its own terms, in order */
        assert_true(reference_cmp(&set->items[i - 1], &set->items[i]) < 0);
}

/* n random keys of min_len..max_len bytes from an alphabet of `letters` bytes starting at `base`
 * (a small alphabet makes shared prefixes and duplicates), after a common head of head_len bytes. */
static void random_keys(keyset_t *set, size_t n, size_t head_len, size_t min_len, size_t max_len, unsigned base, unsigned letters)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t key[MAX_KEY];
        size_t len = min_len + rng() % (max_len - min_len + 1);
        for (size_t k = 0; k < len; k++)
            key[k] = k < head_len ? (uint8_t)'h' : (uint8_t)(base + rng() % letters);
        add(set, i, key, len);
    }
}

static void test_prefix_orders_as_the_key(void **state)
{
    (void)state;
    assert_true(sg_keysort_prefix("k0000042", 8) == 0x6b30303030303432u);
    assert_true(sg_keysort_prefix("k0000042-and-more", 17) == 0x6b30303030303432u);
    assert_true(sg_keysort_prefix("ab", 2) == 0x6162000000000000u);
    assert_true(sg_keysort_prefix("ab\0", 3) == sg_keysort_prefix("ab", 2)); /* a tie, for the full compare */
    assert_true(sg_keysort_prefix("\xff", 1) > sg_keysort_prefix("\x7f\xff\xff\xff\xff\xff\xff\xff\xff", 9));
}

static void test_sorts_random_keys(void **state)
{
    (void)state;
    keyset_t *set = malloc(sizeof(*set));
    assert_non_null(set);
    for (int round = 0; round < 20; round++) {
        size_t n = 1 + rng() % MAX_ITEMS;
        random_keys(set, n, 0, 1, MAX_KEY, 0, 256); /* any bytes, NUL and 0xff too */
        check(set, n);
    }
    sg_keysort(set->items, set->scratch, 0); /* nothing to do */
    add(set, 0, "x", 1);
    sg_keysort(set->items, set->scratch, 1);
    assert_int_equal(set->items[0].index, 0);
    free(set);
}

static void test_keys_shorter_than_the_prefix(void **state)
{
    (void)state;
    keyset_t *set = malloc(sizeof(*set));
    assert_non_null(set);
    /* Keys of 1..7 bytes over {NUL, 1, 2}: many differ only by trailing NULs ("a" < "a\0"). */
    for (int round = 0; round < 20; round++) {
        size_t n = 1 + rng() % MAX_ITEMS;
        random_keys(set, n, 0, 1, 7, 0, 3);
        check(set, n);
    }
    size_t n = 0;
    const char *fixed[] = {"a\0\0", "a", "a\0", "", "b", "a\x01", "\0"};
    size_t lens[] = {3, 1, 2, 0, 1, 2, 1};
    for (size_t i = 0; i < sizeof(lens) / sizeof(*lens); i++)
        add(set, n++, fixed[i], lens[i]);
    check(set, n);
    size_t want[] = {3, 6, 1, 2, 0, 5, 4}; /* "", "\0", "a", "a\0", "a\0\0", "a\1", "b" */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(set->items[i].index, want[i]);
    free(set);
}

static void test_shared_prefixes_and_duplicates(void **state)
{
    (void)state;
    keyset_t *set = malloc(sizeof(*set));
    assert_non_null(set);
    for (int round = 0; round < 20; round++) {
        size_t n = 1 + rng() % MAX_ITEMS;
        /* Every key starts with 8, 10 or 12 equal bytes: one long run for the full compare. */
        random_keys(set, n, 8 + 2 * (size_t)(round % 3), 12, 14, 'a', 2 + (unsigned)round % 3);
        check(set, n);
    }
    /* The same few keys written over and over: equal keys stay in index (arrival) order, in runs
     * short (insertion sort) and long (qsort). */
    for (unsigned distinct = 1; distinct <= 64; distinct *= 4) {
        size_t n = 3000;
        for (size_t i = 0; i < n; i++) {
            char key[16];
            size_t len = (size_t)snprintf(key, sizeof(key), "k%05u", (unsigned)(rng() % distinct));
            add(set, i, key, len);
        }
        check(set, n);
    }
    /* Runs of exactly 2 and 17 equal keys among distinct ones. */
    size_t n = 0;
    for (int copy = 0; copy < 17; copy++)
        add(set, n++, "dup-seventeen", 13);
    for (int i = 0; i < 100; i++) {
        char key[16];
        add(set, n++, key, (size_t)snprintf(key, sizeof(key), "%03d", (i * 37) % 100));
    }
    add(set, n++, "pair", 4);
    add(set, n++, "pair", 4);
    check(set, n);
    free(set);
}

/* Keys in the bench's shape ("k" and 7 digits, 8 bytes: the prefix decides alone), shuffled. */
static void test_bench_keys(void **state)
{
    (void)state;
    keyset_t *set = malloc(sizeof(*set));
    assert_non_null(set);
    for (size_t i = 0; i < MAX_ITEMS; i++) {
        char key[16];
        add(set, i, key, (size_t)snprintf(key, sizeof(key), "k%07zu", (i * 7919) % MAX_ITEMS));
    }
    check(set, MAX_ITEMS);
    free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_orders_as_the_key),
        cmocka_unit_test(test_sorts_random_keys),
        cmocka_unit_test(test_keys_shorter_than_the_prefix),
        cmocka_unit_test(test_shared_prefixes_and_duplicates),
        cmocka_unit_test(test_bench_keys),
    };
    return cmocka_run_group_tests_name("queries-keysort", tests, NULL, NULL);
}
