/*
 * The correlation table: open addressing with linear probing and backward-shift deletion.
 *
 * Linear probing keeps a lookup to one or two cache lines; backward-shift deletion (moving
 * later members of the probe run into the hole) instead of tombstones means a table that sees
 * millions of insert/remove pairs never degrades and never needs a cleanup rehash. The slot
 * array starts small and doubles while the load would pass 0.7, up to the smallest power of
 * two that holds `capacity` entries at that load, so the memory bound is known at creation and
 * is only reached when the pending requests are really there. The table never shrinks: a loop
 * that once held many requests is likely to again.
 *
 * A slot is a value pointer and the key's hash, 16 bytes: the key itself is read from the value
 * (each value holds its own id at the offset given at creation), which costs a look into the
 * value only when the hashes match, and halves what every waiting request holds here.
 *
 * The hash is an unkeyed mixer (the SplitMix64 / Stafford "mix13" finaliser over the packed
 * fields), not the keyed SipHash: every key that reaches the table was minted by this
 * deployment or MAC-verified, so an attacker cannot choose keys that collide, and sequential
 * counters only need good avalanche into the low bits, which two multiply-xorshift rounds give
 * in a few cycles, well under SipHash's cost on the hot path of every reply.
 */
#include "sg_corr.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sg_base.h"

#define SG_CORR_MIN_SLOTS 16
/* Load limit 7/10: linear probing's expected probe length rises steeply beyond ~0.7. */
#define SG_CORR_LOAD_NUM 7
#define SG_CORR_LOAD_DEN 10

typedef struct st_sg_corr_slot_t {
    void *value;   /* NULL marks an empty slot, which is why values may not be NULL */
    uint32_t hash; /* cached: probes compare it first; resizing and backward shifts need each entry's home slot */
} sg_corr_slot_t;

struct st_sg_corr_t {
    sg_corr_slot_t *slots; /* NULL until the first insert */
    size_t mask;           /* slot count - 1 once allocated */
    size_t max_slots;
    size_t count;
    size_t capacity;
    size_t key_offset; /* where each value holds its id */
};

static const sg_reqid_t *sg_corr_key(const sg_corr_t *corr, const void *value)
{
    return (const sg_reqid_t *)((const char *)value + corr->key_offset);
}

static uint64_t sg_corr_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

static uint32_t sg_corr_hash(const sg_reqid_t *id)
{
    /* The counter varies fastest, so it goes through both rounds of mixing. */
    uint64_t inner = sg_corr_mix(((uint64_t)id->instance << 32 | id->counter) + UINT64_C(0x9e3779b97f4a7c15));
    return (uint32_t)sg_corr_mix(inner ^ id->time_ms ^ (uint64_t)id->loop << 48);
}

static int sg_corr_slot_is(const sg_corr_t *corr, const sg_corr_slot_t *slot, const sg_reqid_t *id, uint32_t hash)
{
    if (slot->hash != hash)
        return 0;
    const sg_reqid_t *key = sg_corr_key(corr, slot->value);
    return key->counter == id->counter && key->time_ms == id->time_ms && key->instance == id->instance && key->loop == id->loop;
}

sg_corr_t *sg_corr_create(size_t capacity, size_t key_offset)
{
    if (capacity == 0 || capacity > SG_CORR_MAX_CAPACITY)
        return NULL;
    sg_corr_t *corr = sg_calloc(1, sizeof(*corr));
    corr->capacity = capacity;
    corr->key_offset = key_offset;
    corr->max_slots = 1;
    while (corr->max_slots * SG_CORR_LOAD_NUM < capacity * SG_CORR_LOAD_DEN)
        corr->max_slots *= 2;
    return corr;
}

void sg_corr_destroy(sg_corr_t *corr)
{
    if (corr == NULL)
        return;
    free(corr->slots);
    free(corr);
}

/* The slot holding id, or the empty slot that ends its probe run; slots must be allocated. */
static size_t sg_corr_probe(const sg_corr_t *corr, const sg_reqid_t *id, uint32_t hash)
{
    size_t index = hash & corr->mask;
    while (corr->slots[index].value != NULL && !sg_corr_slot_is(corr, &corr->slots[index], id, hash))
        index = (index + 1) & corr->mask;
    return index;
}

static void sg_corr_resize(sg_corr_t *corr, size_t n_slots)
{
    sg_corr_slot_t *old = corr->slots;
    size_t old_n = old != NULL ? corr->mask + 1 : 0;
    corr->slots = sg_calloc(n_slots, sizeof(*corr->slots));
    corr->mask = n_slots - 1;
    for (size_t i = 0; i < old_n; ++i) {
        if (old[i].value == NULL)
            continue;
        size_t index = old[i].hash & corr->mask;
        while (corr->slots[index].value != NULL)
            index = (index + 1) & corr->mask;
        corr->slots[index] = old[i];
    }
    free(old);
}

int sg_corr_insert(sg_corr_t *corr, void *value)
{
    assert(value != NULL);
    const sg_reqid_t *id = sg_corr_key(corr, value);
    uint32_t hash = sg_corr_hash(id);
    if (corr->slots != NULL && corr->slots[sg_corr_probe(corr, id, hash)].value != NULL)
        return SG_CORR_E_DUPLICATE;
    if (corr->count == corr->capacity)
        return SG_CORR_E_FULL;

    if (corr->slots == NULL) {
        sg_corr_resize(corr, corr->max_slots < SG_CORR_MIN_SLOTS ? corr->max_slots : SG_CORR_MIN_SLOTS);
    } else {
        /* max_slots was sized so that capacity entries fit under the load limit: the growth
         * condition is false there, and the table never grows past it. */
        size_t n_slots = corr->mask + 1;
        if ((corr->count + 1) * SG_CORR_LOAD_DEN > n_slots * SG_CORR_LOAD_NUM && n_slots < corr->max_slots)
            sg_corr_resize(corr, n_slots * 2);
    }

    sg_corr_slot_t *slot = &corr->slots[sg_corr_probe(corr, id, hash)];
    slot->hash = hash;
    slot->value = value;
    ++corr->count;
    return SG_CORR_OK;
}

void *sg_corr_find(const sg_corr_t *corr, const sg_reqid_t *id)
{
    if (corr->slots == NULL)
        return NULL;
    return corr->slots[sg_corr_probe(corr, id, sg_corr_hash(id))].value;
}

void *sg_corr_remove(sg_corr_t *corr, const sg_reqid_t *id)
{
    if (corr->slots == NULL)
        return NULL;
    size_t hole = sg_corr_probe(corr, id, sg_corr_hash(id));
    void *value = corr->slots[hole].value;
    if (value == NULL)
        return NULL;

    /* Backward shift: walk the rest of the run; an entry may fill the hole when the hole lies
     * on its probe path, i.e. it is at least as far from its home slot as from the hole. */
    for (size_t next = (hole + 1) & corr->mask; corr->slots[next].value != NULL; next = (next + 1) & corr->mask) {
        size_t home = corr->slots[next].hash & corr->mask;
        if (((next - home) & corr->mask) >= ((next - hole) & corr->mask)) {
            corr->slots[hole] = corr->slots[next];
            hole = next;
        }
    }
    corr->slots[hole].value = NULL;
    --corr->count;
    return value;
}

size_t sg_corr_count(const sg_corr_t *corr)
{
    return corr->count;
}

size_t sg_corr_capacity(const sg_corr_t *corr)
{
    return corr->capacity;
}

size_t sg_corr_memory(const sg_corr_t *corr)
{
    return sizeof(*corr) + (corr->slots != NULL ? (corr->mask + 1) * sizeof(*corr->slots) : 0);
}
