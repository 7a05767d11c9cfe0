/*
 * Placement of partitioned tables (DESIGN §8; README, "Scale-out"): which instance of the
 * deployment owns which partition of a `placement: partitioned` table, which partitions this
 * instance keeps (owned plus standbys), and where a key's owner is reached.
 *
 * Ownership is Kafka's consumer group protocol: one group per table ("_streamgate.<name>.<table>",
 * cooperative-sticky), whose assignment is this instance's owned set. The group consumer reads
 * nothing (its partitions are paused); the materializer reads owned and standby partitions with
 * its own assigning consumer, so a partition that changes role here keeps being read.
 *
 * Who owns what, and where to reach it, travels through the compacted topic
 * `_streamgate.<name>.owners` (partition 0): every instance publishes {instance, advertised URL,
 * owned partitions, lease expiry} under the key "<table>/<instance>" after every rebalance and
 * every lease/3, and deletes it (a tombstone) when it stops. Every instance folds the topic into
 * an owner map; a record whose lease expired (a crashed instance) counts for nothing; two records
 * claiming one partition (a rebalance in progress): the later in offset order wins.
 *
 * Standbys: the live instances of a table, in name order, form a ring; an instance keeps copies
 * of the partitions owned by the `standbys` instances after it.
 *
 * One thread (the placement thread) owns the group consumers, a producer and a consumer of the
 * owners topic. The loops ask sg_placement_route under a mutex (a copy out, nothing held).
 */
#ifndef SG_PLACEMENT_H
#define SG_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "sg_conf.h"

#define SG_PLACEMENT_MAX_PARTITIONS 1024 /* of a partitioned table's topic */
#define SG_PLACEMENT_URL_MAX 512
#define SG_PLACEMENT_LEASE_MS 15000 /* an ownership record counts this long after it was published */

typedef struct st_sg_placement_t sg_placement_t;

typedef enum { SG_ROLE_NONE = 0, SG_ROLE_STANDBY, SG_ROLE_OWNER } sg_role_t;

/* Where a key of a partitioned table is. */
typedef struct st_sg_placement_route_t {
    int32_t partition;
    sg_role_t role;                      /* this instance's role for that partition */
    char owner_url[SG_PLACEMENT_URL_MAX]; /* the live owner's advertised URL, "" when none is known
                                          * (or the owner is this instance) */
    char owner[136];                     /* its instance name, "" when none */
    char standby_url[SG_PLACEMENT_URL_MAX]; /* a live instance (not this one) that keeps the
                                             * partition as a standby, "" when none is known */
    char standby[136];
} sg_placement_route_t;

/** Kafka's default partitioner for a key (murmur2, as the producer is configured:
 * partitioner=murmur2_random): (murmur2(key) & 0x7fffffff) % n_partitions. Any thread. */
int32_t sg_placement_partition_of(const void *key, size_t keylen, int32_t n_partitions);

/** The owners topic of conf's deployment, into a buffer of 256. */
void sg_placement_topic(const sg_conf_t *conf, char *topic);

/** A placement for conf's partitioned tables as `instance` (borrowed, must outlive it). Returns
 * owned, or NULL with err. Without partitioned tables returns NULL and err "" (nothing to place). */
sg_placement_t *sg_placement_create(const sg_conf_t *conf, const char *bootstraps, const char *instance, char *err,
                                    size_t errlen);

/** Starts the placement thread: creates the owners topic on a real cluster, joins the groups,
 * publishes `advertise` (copied) as this instance's URL. Returns 0 or -1 with err. Main, once. */
int sg_placement_start(sg_placement_t *placement, const char *advertise, char *err, size_t errlen);

/** Whether conf->tables[table_index] is placed (partitioned). NULL placement: 0. Any thread. */
int sg_placement_is_partitioned(const sg_placement_t *placement, size_t table_index);

/** Bumped whenever the set of partitions to keep changes. Any thread. */
uint64_t sg_placement_generation(const sg_placement_t *placement);

/** Whether this instance keeps `partition` of the table (owned or standby). Any thread. */
int sg_placement_keeps(sg_placement_t *placement, size_t table_index, int32_t partition);

/** Where `key` of the table lives. Returns 0 with *out filled, or -1 while the table's partition
 * count is not known yet. Any thread (a mutex, held for a copy). */
int sg_placement_route(sg_placement_t *placement, size_t table_index, const void *key, size_t keylen,
                       sg_placement_route_t *out);

/** The table's partition count (0 until known). Any thread. */
int32_t sg_placement_partitions(sg_placement_t *placement, size_t table_index);

/** Role of this instance and (copied) the owner's URL, for one partition (as sg_placement_route).
 * Returns 0, or -1 for a partition out of range. Any thread. */
int sg_placement_partition(sg_placement_t *placement, size_t table_index, int32_t partition, sg_placement_route_t *out);

/** NULL when every group has assigned this instance its partitions at least once and the owners
 * topic is folded up to where it was at start; else why not (static text). Any thread. */
const char *sg_placement_not_ready_because(const sg_placement_t *placement);

/** Leaves the groups, deletes this instance's ownership records (within timeout_ms), stops the
 * thread. Idempotent. Main thread. */
void sg_placement_shutdown(sg_placement_t *placement, int timeout_ms);

/** Shuts down (if not yet) and frees; NULL is a no-op. */
void sg_placement_destroy(sg_placement_t *placement);

#endif
