/*
 * Key sorting for table commits (see keysort.h). Eight counting passes, one per prefix byte from
 * the lowest, each stable, so the items come out in prefix order; a pass whose byte is the same
 * in every item (a common head such as "k0" in "k0000042") moves nothing and is skipped. Keys
 * that tie on the prefix (longer keys sharing it, or the same key written twice in a round) are
 * then sorted within their run by a full comparison.
 */
#include "keysort.h"

#include <stdlib.h>
#include <string.h>

#define SG_KEYSORT_INSERTION_MAX 16 /* runs up to this long: insertion sort, no call per compare */

uint64_t sg_keysort_prefix(const void *key, size_t keylen)
{
    const uint8_t *bytes = key;
    uint64_t prefix = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (keylen >= 8) {
        memcpy(&prefix, bytes, 8);
        return __builtin_bswap64(prefix);
    }
#endif
    for (size_t i = 0; i < 8; i++)
        prefix = prefix << 8 | (i < keylen ? bytes[i] : 0);
    return prefix;
}

/* Bytewise key order (RocksDB's default comparator), then index. */
static int item_cmp(const sg_keysort_item_t *x, const sg_keysort_item_t *y)
{
    size_t common = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c = common != 0 ? memcmp(x->key, y->key, common) : 0;
    if (c == 0)
        c = (x->keylen > y->keylen) - (x->keylen < y->keylen);
    return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

static int item_qsort_cmp(const void *a, const void *b)
{
    return item_cmp(a, b);
}

static void sort_run(sg_keysort_item_t *run, size_t len)
{
    if (len > SG_KEYSORT_INSERTION_MAX) {
        qsort(run, len, sizeof(*run), item_qsort_cmp);
        return;
    }
    for (size_t i = 1; i < len; i++) {
        sg_keysort_item_t item = run[i];
        size_t j = i;
        for (; j > 0 && item_cmp(&run[j - 1], &item) > 0; j--)
            run[j] = run[j - 1];
        run[j] = item;
    }
}

void sg_keysort(sg_keysort_item_t *items, sg_keysort_item_t *scratch, size_t n)
{
    if (n < 2)
        return;
    size_t counts[8][256];
    memset(counts, 0, sizeof(counts));
    for (size_t i = 0; i < n; i++) {
        uint64_t prefix = items[i].prefix;
        for (int digit = 0; digit < 8; digit++)
            counts[digit][(prefix >> (8 * digit)) & 0xff]++;
    }
    sg_keysort_item_t *from = items, *to = scratch;
    for (int digit = 0; digit < 8; digit++) {
        size_t *count = counts[digit];
        unsigned shift = 8 * (unsigned)digit;
        if (count[(from[0].prefix >> shift) & 0xff] == n)
            continue; /* every item has this byte: the pass would keep the order */
        size_t at = 0;
        for (int byte = 0; byte < 256; byte++) {
            size_t here = count[byte];
            count[byte] = at;
            at += here;
        }
        for (size_t i = 0; i < n; i++)
            to[count[(from[i].prefix >> shift) & 0xff]++] = from[i];
        sg_keysort_item_t *swap = from;
        from = to;
        to = swap;
    }
    if (from != items)
        memcpy(items, from, n * sizeof(*items));
    for (size_t i = 0, end; i < n; i = end) {
        for (end = i + 1; end < n && items[end].prefix == items[i].prefix;)
            end++;
        if (end - i > 1)
            sort_run(items + i, end - i);
    }
}
