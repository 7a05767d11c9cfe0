/*
 * The correlation table: pending requests of one event loop, keyed by request id.
 *
 * One table per loop and only that loop touches it, so there is no locking. Its capacity is
 * fixed at creation (limits.pending: each loop's table could hold them all; the gateway-wide count
 * is taken before a request is parked) and a full table is an error the caller turns into 503, so
 * memory is bounded by configuration, not by how slow workers are.
 * Slots are allocated as the table fills, not up front, so a large limit costs nothing until
 * it is used.
 *
 * Values are records that hold their own id (an sg_reqid_t at a fixed offset in every value): the
 * table keeps a pointer and a hash per entry, not a copy of the key.
 */
#ifndef SG_CORR_H
#define SG_CORR_H

#include <stddef.h>

#include "sg_reqid.h"

#define SG_CORR_MAX_CAPACITY 10000000

typedef struct st_sg_corr_t sg_corr_t;

enum {
    SG_CORR_OK = 0,
    SG_CORR_E_FULL = -1,      /* count == capacity */
    SG_CORR_E_DUPLICATE = -2, /* the id is already present */
};

/** Returns an empty table holding at most capacity entries (returns owned), or NULL when capacity is
 *  0 or above SG_CORR_MAX_CAPACITY. Every value holds its id at key_offset bytes from its start
 *  (offsetof), unchanged while the value is in the table. Aborts when out of memory. */
sg_corr_t *sg_corr_create(size_t capacity, size_t key_offset);

/** Frees the table, not the values it holds. NULL is a no-op. */
void sg_corr_destroy(sg_corr_t *corr);

/** Adds value (borrowed; must not be NULL) under the id it holds. Returns SG_CORR_OK,
 *  SG_CORR_E_DUPLICATE when that id is present (the table is unchanged), or SG_CORR_E_FULL. Keys
 *  compare all four id fields. */
int sg_corr_insert(sg_corr_t *corr, void *value);

/** Returns the value stored for id, or NULL when absent. */
void *sg_corr_find(const sg_corr_t *corr, const sg_reqid_t *id);

/** Removes id and returns its value, or returns NULL when absent. Whoever gets the value back
 *  owns the completion of that request. */
void *sg_corr_remove(sg_corr_t *corr, const sg_reqid_t *id);

/** Returns the number of entries. */
size_t sg_corr_count(const sg_corr_t *corr);

/** Returns the capacity given at creation. */
size_t sg_corr_capacity(const sg_corr_t *corr);

/** Returns the bytes the table currently holds in slots plus its header (for metrics and tests). */
size_t sg_corr_memory(const sg_corr_t *corr);

#endif
