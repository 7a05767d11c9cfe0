/*
 * The materializer: feeds the configured tables (queries/sg_table.h) from their Kafka topics.
 *
 * One consumer without a consumer group assigns every partition of every table topic at the
 * table's stored position and applies what it reads in bounded batches, on its own thread (the
 * only thread that writes tables). A table whose stored source (the Kafka cluster id) differs
 * from the cluster's, or whose stored position lies beyond a partition's end or below its log
 * start offset, is reset and rebuilt from the beginning (counted: sg_materializer_rebuilds). When
 * the tables' storage stops taking writes (a full disk) the materializer stops applying and
 * reopens it once there is room, resuming from the stored positions. A value must be JSON, or Avro in the Confluent wire format
 * (decoded to JSON by schema id); anything else is counted and skipped.
 */
#ifndef SG_MATERIALIZER_H
#define SG_MATERIALIZER_H

#include <stddef.h>
#include <stdint.h>

#include "sg_conf.h"
#include "sg_placement.h"
#include "sg_registry.h"
#include "sg_table.h"

typedef struct st_sg_materializer_t sg_materializer_t;

/* Called on the materializer's commit thread after a batch of table conf->tables[table_index]
 * was committed, and on its reading thread when a partition of a partitioned table becomes
 * ready. Any thread, then: must be thread-safe and not block for long. */
typedef void (*sg_materializer_progress_cb)(void *ctx, size_t table_index);

/** Creates the consumer for every conf->tables[i] (conf and tables are borrowed and must outlive
 * the materializer; tables must contain every configured table). Returns owned materializer, or
 * NULL with a message in err. Nothing is read until sg_materializer_start(). */
sg_materializer_t *sg_materializer_create(const sg_conf_t *conf, const char *bootstraps, sg_tables_t *tables, char *err,
                                          size_t errlen);

/** Starts the materializer's threads (reading, committing); progress_cb (may be NULL) is called
 * on the commit thread. Call once.
 * Returns 0, or -1 with err. */
int sg_materializer_start(sg_materializer_t *m, sg_materializer_progress_cb progress_cb, void *ctx, char *err, size_t errlen);

/** 1 once every table has applied its partitions up to the high watermarks seen at start (and
 * from then on), else 0; also 0 while the tables' storage takes no writes (sg_tables_health: a
 * full disk), so readiness fails then. Any thread. */
int sg_materializer_caught_up(const sg_materializer_t *m);

/** Values in the Confluent wire format are decoded to JSON through `registry` (borrowed; must
 * outlive the materializer); without one they are skipped as undecodable. Call before start. */
void sg_materializer_set_registry(sg_materializer_t *m, sg_registry_t *registry);

/** Partitioned tables read only the partitions `placement` (borrowed; must outlive the
 * materializer) says this instance keeps, set up again when that set changes. Call before start. */
void sg_materializer_set_placement(sg_materializer_t *m, sg_placement_t *placement);

/** Whether a kept partition of a partitioned table is committed up to the high watermark seen
 * when it was added to the kept set (and kept since): a read may be answered from it. 0 for a
 * partition not kept. Any thread. */
int sg_materializer_partition_ready(const sg_materializer_t *m, size_t table_index, int32_t partition);
typedef struct st_sg_table_stats_t {
    int64_t lag;            /* records in its partitions past what it applied (last fetch's watermarks) */
    int64_t stream_time_ms; /* the largest record timestamp applied, over its partitions; 0: none */
    double restore_ratio;   /* of the records it had to read at start, the part applied: 0..1 */
} sg_table_stats_t;

/** conf->tables[table_index]'s stats, as of the materializer's last round (about every 100 ms).
 * Any thread. */
void sg_materializer_table_stats(const sg_materializer_t *m, size_t table_index, sg_table_stats_t *out);

/** Records read but not applied (a value that is not JSON, a key or value over the limits),
 * since start. Any thread. */
unsigned long long sg_materializer_skipped(const sg_materializer_t *m);

/** Tables reset and rebuilt from the beginning of their topic since start, for a reason other
 * than being new: another cluster id, a stored position beyond the topic's end, or below its log
 * start offset (records deleted by retention before the table applied them). Any thread. */
unsigned long long sg_materializer_rebuilds(const sg_materializer_t *m);

/* Called on the materializer's query thread with the high watermarks (rc 0; arrays valid during
 * the call only), or rc -1 when the brokers did not answer in time or the materializer stops. */
typedef void (*sg_materializer_latest_cb)(void *ctx, int rc, const int32_t *partitions, const int64_t *highs, size_t n);

/** Asks the brokers (ListOffsets, off the caller's thread) for the high watermarks of the table's
 * topic as of now: cb is called once, later, on the query thread; concurrent askers share one
 * round whose requests are sent after they asked. Returns 0 queued, or -1 (cb will not be called)
 * for an unknown table or a materializer not running. Any thread. */
int sg_materializer_query_latest(sg_materializer_t *m, size_t table_index, sg_materializer_latest_cb cb, void *ctx);

/** Stops the thread (within about the metadata timeout, 2 s) and closes the consumer; committed
 * batches stay. NULL is a no-op. */
void sg_materializer_destroy(sg_materializer_t *m);

#endif
