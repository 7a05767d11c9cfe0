/*
 * The bridge: streamgate's Kafka clients.
 *
 * One bridge thread owns every librdkafka callback: it polls the producer, so delivery
 * reports are handed to the caller's callback on that thread, and the caller (the gateway)
 * moves them to the event loop that owns the request. Producing is thread-safe and never
 * blocks: a full queue is an error the caller turns into 503. Nothing here knows HTTP.
 */
#ifndef SG_BRIDGE_H
#define SG_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "sg_conf.h"

typedef struct st_sg_bridge_t sg_bridge_t;
typedef struct st_sg_bridge_topic_t sg_bridge_topic_t;

enum {
    SG_BRIDGE_OK = 0,
    SG_BRIDGE_E_QUEUE_FULL = -1, /* producer queue full: retry later */
    SG_BRIDGE_E_TOO_LARGE = -2,  /* message larger than the producer accepts */
    SG_BRIDGE_E_DELIVERY = -3,   /* broker did not acknowledge in time, or refused */
    SG_BRIDGE_E_FATAL = -4,      /* the producer is unusable (fenced, fatal idempotence error) */
    SG_BRIDGE_E_SHUTDOWN = -5,   /* the bridge is shutting down */
};

/* Whether a produced message is in the log, as librdkafka knows it (rd_kafka_message_status). */
typedef enum {
    SG_DELIVERY_NOT_PERSISTED = 0,      /* certainly not in the log: a retry may produce it again */
    SG_DELIVERY_POSSIBLY_PERSISTED = 1, /* sent, no answer (timeout, connection lost): it may be in
                                         * the log, at most once (idempotent producer). Keep an
                                         * Idempotency-Key claim (sg_store_idem_mark_unknown) and
                                         * look it up (sg_lookup.h) before letting a retry produce */
    SG_DELIVERY_PERSISTED = 2,          /* in the log (with err OK: acknowledged, offset set) */
} sg_delivery_status_t;

typedef struct st_sg_delivery_t {
    int err;            /* SG_BRIDGE_OK or SG_BRIDGE_E_* */
    int status;         /* sg_delivery_status_t; PERSISTED whenever err is SG_BRIDGE_OK */
    const char *errstr; /* valid during the callback */
    const char *topic;  /* valid during the callback */
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* the timestamp the broker reported (LogAppendTime), or the
                           * CreateTime given to sg_bridge_produce */
} sg_delivery_t;

/** Called on the bridge thread once per produced message, with the produce call's opaque. */
typedef void (*sg_bridge_delivery_cb)(void *opaque, const sg_delivery_t *delivery);

/* A record read from a reply topic. Every pointer is valid only during the callback. */
typedef struct st_sg_reply_t {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    const void *correlation_id; /* the correlation header (a reply route's reply.correlation_header), NULL when absent */
    size_t correlation_len;
    const char *correlation_header; /* the name it came under, NULL when absent */
    const void *value;              /* NULL for a tombstone */
    size_t value_len;
    const void *message; /* for sg_bridge_reply_header */
} sg_reply_t;

/** Called on the bridge thread for every record of every reply topic, in partition order. */
typedef void (*sg_bridge_reply_cb)(void *ctx, const sg_reply_t *reply);

/** The i-th header of a reply: 0 and the outputs (valid during the callback), or -1 past the end. */
int sg_bridge_reply_header(const sg_reply_t *reply, size_t i, const char **name, const void **value, size_t *len);

/** The last header called `name`: 0 and the outputs, or -1 when absent. */
int sg_bridge_reply_find_header(const sg_reply_t *reply, const char *name, const void **value, size_t *len);

typedef struct st_sg_bridge_header_t {
    const char *name;
    const void *value;
    size_t len;
} sg_bridge_header_t;

/** Creates the producer (and, when routes have replies, the reply consumer) for `bootstraps`
 * with the config's kafka properties. Returns owned bridge or NULL with err. Main thread. */
sg_bridge_t *sg_bridge_create(const sg_conf_t *conf, const char *bootstraps, sg_bridge_delivery_cb delivery_cb,
                              sg_bridge_reply_cb reply_cb, char *err, size_t errlen);

/** Starts the bridge thread. It fetches metadata, assigns every partition of every reply topic
 * at its current end (no consumer group, so no rebalances), and only then reports ready; from
 * then on it serves delivery reports and replies (reply_cb gets `reply_ctx`). Returns 0 or -1
 * with err. Main thread, once. */
int sg_bridge_start(sg_bridge_t *bridge, void *reply_ctx, char *err, size_t errlen);

/** Handle for a topic (created on first use, owned by the bridge). Main thread, before serving. */
sg_bridge_topic_t *sg_bridge_topic(sg_bridge_t *bridge, const char *name);

/** Creates the config's declared topics through the Admin API, waiting at most timeout_ms.
 * Topics that already exist are fine. Returns 0 or -1 with err. Main thread. */
int sg_bridge_create_topics(sg_bridge_t *bridge, int64_t timeout_ms, char *err, size_t errlen);

/** Queues a message (key/value/headers are copied) with CreateTime `timestamp_ms`. `partition`
 * -1 lets the partitioner choose by key. Returns SG_BRIDGE_OK (the delivery callback will run exactly once with `opaque`) or
 * SG_BRIDGE_E_* (it will not run). Any thread. */
int sg_bridge_produce(sg_bridge_t *bridge, sg_bridge_topic_t *topic, int32_t partition, int64_t timestamp_ms, const void *key,
                      size_t keylen, const void *value, size_t valuelen, const sg_bridge_header_t *headers, size_t n_headers,
                      void *opaque);

/** Whether cluster metadata has been fetched and every reply partition is assigned. Any thread. */
int sg_bridge_is_ready(const sg_bridge_t *bridge);

/* Hysteresis of sg_bridge_reachable. */
#define SG_BRIDGE_UNREACHABLE_AFTER_MS 5000 /* no broker round trip succeeded for this long: unreachable */
#define SG_BRIDGE_REACHABLE_AFTER_MS 2000   /* round trips succeeded for this long: reachable again */

/** Whether the brokers answer: a metadata round trip and one to every leader of the routes'
 * partitions are made every second (from sg_bridge_start, on a thread of the bridge's own); none
 * succeeding for SG_BRIDGE_UNREACHABLE_AFTER_MS makes it 0, with the reason in why, and
 * SG_BRIDGE_REACHABLE_AFTER_MS of successes make it 1 again. 1 before the first
 * SG_BRIDGE_UNREACHABLE_AFTER_MS have passed. Any thread. */
int sg_bridge_reachable(const sg_bridge_t *bridge, char *why, size_t whylen);

/** Number of messages produced and not yet reported. Any thread. */
int sg_bridge_outstanding(const sg_bridge_t *bridge);

/** Records in the reply partitions this instance reads that the reply consumer has not read yet
 * (high watermark minus position, summed; the watermarks are those of the last fetch, so this
 * never waits for a broker). 0 before the partitions are assigned or without reply routes. Any
 * thread. */
int64_t sg_bridge_reply_lag(const sg_bridge_t *bridge);

/** Flushes outstanding messages (at most timeout_ms, delivery callbacks keep running on the
 * bridge thread), then stops the bridge thread. Returns the number of messages that were
 * still unacknowledged. Main thread; idempotent. */
int sg_bridge_shutdown(sg_bridge_t *bridge, int64_t timeout_ms);

/** Shuts down (if not yet) and frees; NULL is a no-op. Main thread. */
void sg_bridge_destroy(sg_bridge_t *bridge);

#endif
