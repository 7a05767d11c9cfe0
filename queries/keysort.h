/*
 * Sorting rows by key in the order of RocksDB's bytewise comparator (private to queries/): a
 * least-significant-digit radix sort on each key's first 8 bytes, then a comparison sort only
 * within runs of keys that share those 8 bytes. A restore's commit sorts up to 100k rows per
 * round; qsort with a prefix compare was ~400 instructions per row (bench/README.md).
 */
#ifndef SG_KEYSORT_H
#define SG_KEYSORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t prefix;    /* sg_keysort_prefix(key, keylen) */
    const uint8_t *key; /* borrowed */
    size_t keylen;
    size_t index; /* the caller's: equal keys keep ascending index order */
} sg_keysort_item_t;

/** The first 8 bytes of a key as a big-endian integer, zero-padded: ordered as the keys are,
 * except that keys equal in their first 8 bytes (or differing only by trailing NULs within them)
 * tie. */
uint64_t sg_keysort_prefix(const void *key, size_t keylen);

/** Sorts items[0..n) by key (bytewise, a shorter key before its extensions), equal keys by
 * ascending index. scratch: room for n items, clobbered. Thread-safe (no shared state). */
void sg_keysort(sg_keysort_item_t *items, sg_keysort_item_t *scratch, size_t n);

#endif
