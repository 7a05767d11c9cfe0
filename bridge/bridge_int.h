/*
 * Private to bridge/: what its Kafka clients (producer, reply consumer, materializer, registry)
 * share. kafka_conf.c: how a client is configured and where librdkafka's log goes. assign.c: how
 * a consumer without a group finds its partitions and assigns them at chosen offsets.
 */
#ifndef SG_BRIDGE_INT_H
#define SG_BRIDGE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "sg_base.h"
#include "sg_conf.h"
#include "sg_log.h"

/* ---- client configuration (kafka_conf.c) --------------------------------------------------- */

/** A new configuration for one of our clients: bootstrap.servers, client.id and the log callback
 * (sg_kafka_conf_set_log). Returns owned conf, or NULL with err. */
rd_kafka_conf_t *sg_kafka_conf_new(const char *bootstraps, const char *client_id, char *err, size_t errlen);

/** Routes the client's log through sg_log, librdkafka's syslog levels mapped to ours. */
void sg_kafka_conf_set_log(rd_kafka_conf_t *rkconf);

/** The sg_log level of a librdkafka (syslog) level: 0..3 error, 4 warn, 5..6 info, 7 debug. */
sg_log_level_t sg_kafka_log_level(int syslog_level);

/** Sets one librdkafka property; on failure writes "kafka.properties: NAME: why" to err.
 * Returns 0 or -1. */
int sg_kafka_conf_set(rd_kafka_conf_t *rkconf, const char *name, const char *value, char *err, size_t errlen);

/** Applies the config's kafka.properties in file order, after a client's own defaults so they
 * can override any of them. Returns 0 or -1 with err. */
int sg_kafka_conf_apply(rd_kafka_conf_t *rkconf, const sg_conf_t *conf, char *err, size_t errlen);

/** The defaults of a producer whose acknowledgements mean durable: idempotent, acks=all,
 * linger.ms=0, and a delivery report (success or failure) within timeout_ms. Returns 0 or -1. */
int sg_kafka_conf_durable_producer(rd_kafka_conf_t *rkconf, int64_t timeout_ms, char *err, size_t errlen);

/** The defaults of a consumer that assigns its partitions itself (assign.c): no group is joined
 * and nothing is committed to Kafka, so group.id (`name`) only names it; fetch.wait.max.ms=10
 * bounds how long a new record sits in the broker unseen; `partition_eof` makes the end of a
 * partition an event. Returns 0 or -1 with err. */
int sg_kafka_conf_assigning_consumer(rd_kafka_conf_t *rkconf, const char *name, int partition_eof, char *err, size_t errlen);

/** Creates a client from rkconf (taken, also on failure). Returns the client, or NULL with
 * "<what>: reason" in err. */
rd_kafka_t *sg_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *rkconf, const char *what, char *err, size_t errlen);

/* ---- internal topics (admin.c) ------------------------------------------------------------- */

/** Creates topic `name` with `partitions` partitions, replication min(3, brokers) and `configs`
 * (NULL or NULL-terminated name, value pairs) through the Admin API, unless it exists. Returns 0
 * (it exists, or creating it failed: logged as "<who>: cannot create <name>: ..."), or -1 when
 * the cluster did not answer (2 s): nothing was tried. Blocks up to ~10 s. */
int sg_kafka_ensure_topic(rd_kafka_t *rk, const char *who, const char *name, int partitions, const char *const *configs);

/* ---- assigning partitions without a group (assign.c) --------------------------------------- */

/* sg_assign_part_t.start: leave the partition out of the assignment. */
#define SG_ASSIGN_SKIP INT64_MIN

typedef struct st_sg_assign_part_t {
    int32_t partition;
    int64_t low, high; /* watermarks when described (-1 for a partition not wanted) */
    int64_t start;     /* where reading starts: an offset or RD_KAFKA_OFFSET_BEGINNING/END. Set to
                        * `high` by sg_assign_describe (SG_ASSIGN_SKIP if not wanted); the caller
                        * may change it before sg_assign_apply. */
} sg_assign_part_t;

typedef struct st_sg_assign_topic_t {
    const char *name;        /* borrowed */
    sg_assign_part_t *parts; /* every partition the brokers report, in their order */
    size_t n_parts;
} sg_assign_topic_t;

/** Whether a partition is wanted: only wanted partitions have their watermarks asked for. */
typedef int (*sg_assign_want_cb)(void *ctx, const char *topic, int32_t partition);

/** Describes `topic` for an assignment: its partitions (metadata) and the watermarks of those
 * `want` accepts (NULL: all). Each broker request waits at most timeout_ms and is tried up to
 * SG_ASSIGN_ATTEMPTS times; `stopping` (may be NULL) ends the attempts early. Returns 0 with *out
 * filled (sg_assign_dispose), or -1 with err ("topic T: ...", "topic T [P]: ...": a missing
 * topic, one without partitions, or brokers that did not answer). */
int sg_assign_describe(rd_kafka_t *rk, const char *topic, sg_assign_want_cb want, void *ctx, int timeout_ms,
                       const atomic_int *stopping, sg_assign_topic_t *out, char *err, size_t errlen);

/** Assigns every partition of topics[0..n) whose start is not SG_ASSIGN_SKIP at its start,
 * replacing the consumer's assignment. Returns 0, or -1 with err. */
int sg_assign_apply(rd_kafka_t *rk, const sg_assign_topic_t *topics, size_t n_topics, char *err, size_t errlen);

/** Frees what sg_assign_describe filled into topics[0..n) (not the array); zeroed topics are fine. */
void sg_assign_dispose(sg_assign_topic_t *topics, size_t n_topics);

/** Sleeps up to ms in 10 ms steps, returning early once *stopping (may be NULL) is set: the pause
 * between a client's attempts, short enough to stop promptly. */
void sg_bridge_sleep(const atomic_int *stopping, int64_t ms);

/* ---- sleeping until a queue has something (wake.c) ----------------------------------------- */

/* A thread serving librdkafka queues sleeps on this: queue events (sg_wake_on_queue_event, given
 * to rd_kafka_queue_cb_event_enable with the sg_wake_t), a shutdown or the thread itself (more to
 * do) wake it. Events fire on the edge of a queue becoming non-empty, so after each wake-up the
 * thread drains every queue it serves. */
typedef struct st_sg_wake_t {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int woken;
} sg_wake_t;

void sg_wake_init(sg_wake_t *wake);
void sg_wake_dispose(sg_wake_t *wake);
/** Wakes the sleeper (or makes its next sleep return at once). Any thread. */
void sg_wake(sg_wake_t *wake);
/** The queue-event callback: `wake` is the sg_wake_t. librdkafka's threads. */
void sg_wake_on_queue_event(rd_kafka_t *rk, void *wake);
/** Sleeps until woken, *stopping is set, or timeout_ms pass. The serving thread. */
void sg_wake_wait(sg_wake_t *wake, const atomic_int *stopping, int timeout_ms);

/** The wall-clock time timeout_ms from now, as pthread_cond_timedwait takes a deadline. */
static inline struct timespec sg_bridge_deadline(int64_t timeout_ms)
{
    int64_t at_ms = sg_now_ms() + timeout_ms;
    return (struct timespec){.tv_sec = (time_t)(at_ms / 1000), .tv_nsec = (long)(at_ms % 1000) * 1000000L};
}

#define SG_ASSIGN_ATTEMPTS 3  /* tries of one metadata or watermark request */
#define SG_ASSIGN_RETRY_MS 50 /* between them */

#endif
