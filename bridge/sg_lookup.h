/*
 * Looking a produced message up in its partition by its correlation id: how the outcome of a
 * produce becomes known when librdkafka reported it failed but POSSIBLY persisted
 * (sg_delivery_t.status == SG_DELIVERY_POSSIBLY_PERSISTED: the request reached a broker and no
 * answer came back). The idempotent producer writes a message at most once, so reading the
 * partition settles it: the record carrying the request's kafka_correlationId is there (at one
 * offset) or it is not.
 *
 * One helper thread with its own consumer (no group) runs the lookups one after another, off the
 * event loops and off the bridge thread. Each waits `settle_ms` first (a produce request still on
 * the wire when the report came is appended or refused by then), then reads the partition from
 * the first offset whose timestamp is at least the message's CreateTime (ListOffsets by time; from
 * the log start where the cluster cannot answer that, e.g. librdkafka's mock) up to the high
 * watermark seen after the wait. Bounded: SG_LOOKUP_MAX_RECORDS records and `timeout_ms`.
 */
#ifndef SG_LOOKUP_H
#define SG_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include "sg_conf.h"

#define SG_LOOKUP_MAX_RECORDS 1000000
#define SG_LOOKUP_MAX_ID 255
#define SG_LOOKUP_MAX_PENDING 10000

typedef struct st_sg_lookup_t sg_lookup_t;

enum {
    SG_LOOKUP_FOUND = 0,     /* in the log: offset and timestamp_ms are its position */
    SG_LOOKUP_NOT_FOUND = 1, /* read up to the end: not in the log, and it will not appear */
    SG_LOOKUP_ERROR = -1,    /* could not tell (no answer from the brokers, over the bounds,
                              * stopping): still unknown, ask again later */
};

/* Called once per submitted lookup, on the lookup thread. */
typedef void (*sg_lookup_cb)(void *opaque, int result, int32_t partition, int64_t offset, int64_t timestamp_ms);

/** Creates the helper (its consumer uses `bootstraps` and the config's kafka properties; conf is
 * borrowed and must outlive it); the thread starts on the first submit. Returns owned, or NULL
 * with err. Main thread. */
sg_lookup_t *sg_lookup_create(const sg_conf_t *conf, const char *bootstraps, char *err, size_t errlen);

/** Queues a lookup of the record carrying header `header_name` (e.g. "kafka_correlationId") equal
 * to id (1..SG_LOOKUP_MAX_ID bytes, copied) in topic/partition, produced with CreateTime
 * produced_ms. cb runs exactly once if this returns 0; -1 (cb never runs): invalid arguments, more
 * than SG_LOOKUP_MAX_PENDING queued, or stopping. Any thread, never blocks. */
int sg_lookup_submit(sg_lookup_t *lookup, const char *topic, int32_t partition, int64_t produced_ms, const char *header_name,
                     const void *id, size_t idlen, int64_t settle_ms, int64_t timeout_ms, sg_lookup_cb cb, void *opaque);

/** Stops the thread (lookups still queued or running are answered SG_LOOKUP_ERROR) and frees;
 * NULL is a no-op. Main thread. */
void sg_lookup_destroy(sg_lookup_t *lookup);

#endif
