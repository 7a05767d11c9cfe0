/*
 * The producer side of the bridge.
 *
 * Design: a single idempotent producer (acks=all) shared by every event loop. Loops call
 * rd_kafka_producev() directly (it is thread-safe and, without RD_KAFKA_MSG_F_BLOCK, never
 * blocks); the bridge thread is the only caller of rd_kafka_poll(), so delivery reports reach
 * the gateway on one known thread. librdkafka batches what queues up behind in-flight
 * requests, and the hand-off to the loops batches too (one wake-up per loop per burst of
 * reports).
 */
#include "bridge_int.h"
#include "sg_bridge.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <librdkafka/rdkafka.h>

#include "sg_base.h"
#include "sg_log.h"

#define SG_BRIDGE_POLL_MS 100
#define SG_BRIDGE_METADATA_TIMEOUT_MS 2000
/* Broker reachability (sg_bridge_reachable): round trips every second, on a thread of its own
 * (never the bridge thread, which must not wait for a broker), with hysteresis. A round trip may
 * take up to its timeout: a broker answering in 1 s is slow, not gone. */
#define SG_BRIDGE_PROBE_INTERVAL_MS 1000
#define SG_BRIDGE_PROBE_TIMEOUT_MS 2000

struct st_sg_bridge_topic_t {
    char *name;
    rd_kafka_topic_t *rkt;
};

#define SG_BRIDGE_MAX_REPLIES_PER_ROUND 4096

struct st_sg_bridge_t {
    const sg_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_t *consumer; /* reply consumer; NULL when no route has a reply */
    rd_kafka_queue_t *producer_queue, *consumer_queue;
    /* Either queue becoming non-empty (librdkafka's event callback, from its own threads) or a
     * shutdown sets `woken` and signals; the bridge thread sleeps on this, not on a queue. */
    sg_wake_t wake;
    struct {
        const char *name;
        int all;              /* some route reads every partition */
        const int32_t **pins; /* per route using the topic: its pinned partitions */
        const size_t *n_pins;
        const char **correlation_headers; /* the distinct names its routes use, in route order */
        size_t n_correlation_headers;
    } * reply_topics;
    size_t n_reply_topics;
    sg_bridge_delivery_cb delivery_cb;
    sg_bridge_reply_cb reply_cb;
    void *reply_ctx;
    sg_bridge_topic_t *topics;
    size_t n_topics;
    pthread_t thread;
    int thread_started;
    /* reachability probe */
    pthread_t probe_thread;
    int probe_started;
    pthread_mutex_t probe_mutex;
    pthread_cond_t probe_cond;
    atomic_int reachable;         /* with hysteresis; 1 until the first SG_BRIDGE_UNREACHABLE_AFTER_MS pass */
    atomic_llong last_contact_ms; /* sg_mono_ms of the last successful round trip */
    atomic_int last_error;        /* rd_kafka_resp_err_t of the last failed round trip */
    atomic_int leaders_failed;    /* the last failure was the leaders' round trip, not the metadata */
    atomic_int ready;
    atomic_int stopping;
    atomic_llong flush_timeout_ms;
    int undelivered;
    rd_kafka_topic_partition_list_t *reply_assignment; /* set once before `ready`, then read-only */
};

static int map_produce_error(rd_kafka_resp_err_t rkerr)
{
    switch (rkerr) {
    case RD_KAFKA_RESP_ERR_NO_ERROR: return SG_BRIDGE_OK;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL: return SG_BRIDGE_E_QUEUE_FULL;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE: return SG_BRIDGE_E_TOO_LARGE;
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__FENCED: return SG_BRIDGE_E_FATAL;
    case RD_KAFKA_RESP_ERR__DESTROY: return SG_BRIDGE_E_SHUTDOWN;
    default: return SG_BRIDGE_E_DELIVERY;
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    sg_bridge_t *bridge = opaque;
    rd_kafka_timestamp_type_t tstype;
    sg_delivery_t delivery = {
        .err = map_produce_error(msg->err),
        .errstr = msg->err ? rd_kafka_err2str(msg->err) : NULL,
        .topic = rd_kafka_topic_name(msg->rkt),
        .partition = msg->partition,
        .offset = msg->offset,
        .timestamp_ms = rd_kafka_message_timestamp(msg, &tstype),
    };
    switch (rd_kafka_message_status(msg)) {
    case RD_KAFKA_MSG_STATUS_PERSISTED: delivery.status = SG_DELIVERY_PERSISTED; break;
    case RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED: delivery.status = SG_DELIVERY_POSSIBLY_PERSISTED; break;
    default: delivery.status = SG_DELIVERY_NOT_PERSISTED; break;
    }
    if (delivery.err == SG_BRIDGE_OK && delivery.offset < 0) {
        /* acks=all always returns the offset; a missing one would break the 202's promise. It
         * was acknowledged, though: persisted, at an offset we do not know. */
        delivery.err = SG_BRIDGE_E_DELIVERY;
        delivery.errstr = "broker acknowledged without an offset";
        delivery.status = SG_DELIVERY_POSSIBLY_PERSISTED;
    }
    bridge->delivery_cb(msg->_private, &delivery);
}

static void fetch_metadata(sg_bridge_t *bridge)
{
    while (!atomic_load(&bridge->stopping)) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t rkerr = rd_kafka_metadata(bridge->rk, 1, NULL, &md, SG_BRIDGE_METADATA_TIMEOUT_MS);
        if (rkerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (size_t i = 0; i < bridge->n_topics; ++i) {
                int found = 0;
                for (int t = 0; t < md->topic_cnt && !found; ++t)
                    found = strcmp(md->topics[t].topic, bridge->topics[i].name) == 0 && md->topics[t].err == 0;
                if (!found)
                    sg_log_warn("topic %s does not exist (yet) in the cluster", bridge->topics[i].name);
            }
            rd_kafka_metadata_destroy(md);
            return;
        }
        sg_log_warn("kafka metadata: %s (retrying)", rd_kafka_err2str(rkerr));
        rd_kafka_poll(bridge->rk, SG_BRIDGE_POLL_MS);
    }
}

/* The partitions of reply topic t this instance reads: all of them, unless every route replying
 * on the topic pins its own (then the union of the pins). */
typedef struct {
    const sg_bridge_t *bridge;
    size_t t;
} sg_reply_topic_ref_t;

static int reads_partition(void *ctx, const char *topic, int32_t partition)
{
    const sg_reply_topic_ref_t *ref = ctx;
    const sg_bridge_t *bridge = ref->bridge;
    if (bridge->reply_topics[ref->t].all)
        return 1;
    for (size_t r = 0; r < bridge->conf->n_routes; ++r)
        for (size_t p = 0; p < bridge->reply_topics[ref->t].n_pins[r]; ++p)
            if (bridge->reply_topics[ref->t].pins[r][p] == partition)
                return 1;
    return 0;
}

/* A pinned partition the topic does not have is a configuration error worth saying out loud. */
static int pins_exist(const sg_bridge_t *bridge, size_t t, const sg_assign_topic_t *topic)
{
    for (size_t r = 0; r < bridge->conf->n_routes; ++r) {
        for (size_t p = 0; p < bridge->reply_topics[t].n_pins[r]; ++p) {
            int found = 0;
            for (size_t k = 0; k < topic->n_parts && !found; ++k)
                found = topic->parts[k].partition == bridge->reply_topics[t].pins[r][p];
            if (!found) {
                sg_log_warn("routes[%zu].reply.partitions: topic %s has no partition %d (retrying)", r, topic->name,
                            (int)bridge->reply_topics[t].pins[r][p]);
                return 0;
            }
        }
    }
    return 1;
}

/* Assigns the reply partitions this instance reads at their high watermarks, read now: a reply
 * to a request produced after this point cannot be missed, and no consumer group means no
 * rebalance can ever pause the stream. Returns 0, or -1 to be retried. */
static int assign_replies(sg_bridge_t *bridge)
{
    sg_assign_topic_t *topics = sg_calloc(bridge->n_reply_topics, sizeof(*topics));
    char err[512];
    int rc = 0;
    for (size_t t = 0; t < bridge->n_reply_topics && rc == 0; ++t) {
        sg_reply_topic_ref_t ref = {bridge, t};
        if (sg_assign_describe(bridge->consumer, bridge->reply_topics[t].name, reads_partition, &ref, SG_BRIDGE_METADATA_TIMEOUT_MS,
                               &bridge->stopping, &topics[t], err, sizeof(err)) != 0) {
            sg_log_warn("reply %s (retrying)", err);
            rc = -1;
        } else if (!pins_exist(bridge, t, &topics[t])) {
            rc = -1;
        }
    }
    /* describe starts every wanted partition at its high watermark: what the replies need */
    if (rc == 0 && sg_assign_apply(bridge->consumer, topics, bridge->n_reply_topics, err, sizeof(err)) != 0) {
        sg_log_warn("reply consumer: %s (retrying)", err);
        rc = -1;
    }
    /* kept for the lag metric: the partitions and the offsets they start from */
    if (rc == 0 && rd_kafka_assignment(bridge->consumer, &bridge->reply_assignment) != RD_KAFKA_RESP_ERR_NO_ERROR)
        bridge->reply_assignment = NULL;
    sg_assign_dispose(topics, bridge->n_reply_topics);
    free(topics);
    return rc;
}

int sg_bridge_reply_header(const sg_reply_t *reply, size_t i, const char **name, const void **value, size_t *len)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(reply->message, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    return rd_kafka_header_get_all(hdrs, i, name, value, len) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

int sg_bridge_reply_find_header(const sg_reply_t *reply, const char *name, const void **value, size_t *len)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(reply->message, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    return rd_kafka_header_get_last(hdrs, name, value, len) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

/* The reply's correlation id, under the first of its topic's correlation header names that it
 * carries (routes sharing a reply topic may name it differently; ids are MAC-checked, so trying
 * each name cannot match another route's reply by mistake). */
static void find_correlation(const sg_bridge_t *bridge, const char *topic, rd_kafka_headers_t *hdrs, sg_reply_t *reply)
{
    for (size_t t = 0; t < bridge->n_reply_topics; ++t) {
        if (strcmp(bridge->reply_topics[t].name, topic) != 0)
            continue;
        for (size_t h = 0; h < bridge->reply_topics[t].n_correlation_headers; ++h)
            if (rd_kafka_header_get_last(hdrs, bridge->reply_topics[t].correlation_headers[h], &reply->correlation_id,
                                         &reply->correlation_len) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                reply->correlation_header = bridge->reply_topics[t].correlation_headers[h];
                return;
            }
        return;
    }
}

static void serve_replies(sg_bridge_t *bridge)
{
    for (int i = 0;; ++i) {
        if (i == SG_BRIDGE_MAX_REPLIES_PER_ROUND) {
            /* Leave the rest for the next round, so delivery reports are not starved; the queue
             * is still non-empty, so no event will come: wake ourselves. */
            sg_wake(&bridge->wake);
            return;
        }
        rd_kafka_message_t *msg = rd_kafka_consume_queue(bridge->consumer_queue, 0);
        if (msg == NULL)
            return;
        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_timestamp_type_t tstype;
            sg_reply_t reply = {
                .topic = rd_kafka_topic_name(msg->rkt),
                .partition = msg->partition,
                .offset = msg->offset,
                .timestamp_ms = rd_kafka_message_timestamp(msg, &tstype),
                .value = msg->payload,
                .value_len = msg->len,
                .message = msg,
            };
            rd_kafka_headers_t *hdrs = NULL;
            if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
                find_correlation(bridge, reply.topic, hdrs, &reply);
            bridge->reply_cb(bridge->reply_ctx, &reply);
        } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            sg_log_warn("reply consumer: %s", rd_kafka_message_errstr(msg));
        }
        rd_kafka_message_destroy(msg);
    }
}

static void *bridge_main(void *arg)
{
    sg_bridge_t *bridge = arg;
    sg_thread_name("sg-kafka");
    fetch_metadata(bridge);
    while (bridge->consumer != NULL && !atomic_load(&bridge->stopping) && assign_replies(bridge) != 0) {
        sg_wake_wait(&bridge->wake, &bridge->stopping, SG_BRIDGE_POLL_MS);
        rd_kafka_poll(bridge->rk, 0);
    }
    if (!atomic_load(&bridge->stopping))
        atomic_store(&bridge->ready, 1);

    /* One thread serves both clients: either queue's event wakes it, and every wake-up drains
     * both queues. */
    while (!atomic_load(&bridge->stopping)) {
        sg_wake_wait(&bridge->wake, &bridge->stopping, SG_BRIDGE_POLL_MS);
        rd_kafka_poll(bridge->rk, 0);
        if (bridge->consumer != NULL)
            serve_replies(bridge);
    }

    /* Shutdown: give in-flight messages their chance, then fail whatever is left so every
     * produce call still gets exactly one delivery callback. */
    rd_kafka_flush(bridge->rk, (int)atomic_load(&bridge->flush_timeout_ms));
    bridge->undelivered = rd_kafka_outq_len(bridge->rk);
    if (bridge->undelivered > 0) {
        rd_kafka_purge(bridge->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(bridge->rk, 0);
        for (int i = 0; i < 50 && rd_kafka_outq_len(bridge->rk) > 0; ++i)
            rd_kafka_poll(bridge->rk, 10);
    }
    return NULL;
}

/* Reply topics and the partitions this instance reads: every partition, unless every route
 * replying on the topic pins its own set (then the union of those sets). */
static void collect_reply_topics(sg_bridge_t *bridge)
{
    const sg_conf_t *conf = bridge->conf;
    bridge->reply_topics = sg_calloc(conf->n_routes + 1, sizeof(*bridge->reply_topics));
    for (size_t i = 0; i < conf->n_routes; ++i) {
        const sg_route_conf_t *route = &conf->routes[i];
        if (!route->has_reply)
            continue;
        size_t t = 0;
        while (t < bridge->n_reply_topics && strcmp(bridge->reply_topics[t].name, route->reply.topic) != 0)
            ++t;
        if (t == bridge->n_reply_topics) {
            bridge->reply_topics[t].name = route->reply.topic;
            bridge->reply_topics[t].pins = sg_calloc(conf->n_routes, sizeof(*bridge->reply_topics[t].pins));
            bridge->reply_topics[t].n_pins = sg_calloc(conf->n_routes, sizeof(*bridge->reply_topics[t].n_pins));
            bridge->reply_topics[t].correlation_headers =
                sg_calloc(conf->n_routes, sizeof(*bridge->reply_topics[t].correlation_headers));
            ++bridge->n_reply_topics;
        }
        const char *header = sg_route_correlation_header(route);
        size_t h = 0;
        while (h < bridge->reply_topics[t].n_correlation_headers &&
               strcmp(bridge->reply_topics[t].correlation_headers[h], header) != 0)
            ++h;
        if (h == bridge->reply_topics[t].n_correlation_headers)
            bridge->reply_topics[t].correlation_headers[bridge->reply_topics[t].n_correlation_headers++] = header;
        if (route->reply.n_partitions == 0)
            bridge->reply_topics[t].all = 1;
        ((const int32_t **)bridge->reply_topics[t].pins)[i] = route->reply.partitions;
        ((size_t *)bridge->reply_topics[t].n_pins)[i] = route->reply.n_partitions;
    }
}

static int create_consumer(sg_bridge_t *bridge, const char *bootstraps, char *err, size_t errlen)
{
    rd_kafka_conf_t *rkconf = sg_kafka_conf_new(bootstraps, "streamgate", err, errlen);
    if (rkconf == NULL)
        return -1;
    /* The small fetch wait bounds how long a reply can sit in the broker before we see it. */
    if (sg_kafka_conf_assigning_consumer(rkconf, "streamgate-replies", 0, err, errlen) ||
        sg_kafka_conf_apply(rkconf, bridge->conf, err, errlen)) {
        rd_kafka_conf_destroy(rkconf);
        return -1;
    }
    if ((bridge->consumer = sg_kafka_new(RD_KAFKA_CONSUMER, rkconf, "kafka reply consumer", err, errlen)) == NULL)
        return -1;
    rd_kafka_poll_set_consumer(bridge->consumer);
    bridge->consumer_queue = rd_kafka_queue_get_consumer(bridge->consumer);
    rd_kafka_queue_cb_event_enable(bridge->consumer_queue, sg_wake_on_queue_event, &bridge->wake);
    return 0;
}

sg_bridge_t *sg_bridge_create(const sg_conf_t *conf, const char *bootstraps, sg_bridge_delivery_cb delivery_cb,
                              sg_bridge_reply_cb reply_cb, char *err, size_t errlen)
{
    sg_bridge_t *bridge = sg_calloc(1, sizeof(*bridge));
    bridge->conf = conf;
    bridge->delivery_cb = delivery_cb;
    bridge->reply_cb = reply_cb;
    sg_wake_init(&bridge->wake);
    pthread_mutex_init(&bridge->probe_mutex, NULL);
    pthread_cond_init(&bridge->probe_cond, NULL);
    atomic_store(&bridge->reachable, 1);
    collect_reply_topics(bridge);

    rd_kafka_conf_t *rkconf = sg_kafka_conf_new(bootstraps, "streamgate", err, errlen);
    if (rkconf == NULL) {
        sg_bridge_destroy(bridge);
        return NULL;
    }
    /* Defaults first, so that kafka.properties can override any of them. linger.ms=0: any
     * non-zero linger costs a request ~1.3 ms even when idle (the broker thread's poll timeout
     * has millisecond granularity), while under load the messages that queue up behind the
     * in-flight ProduceRequests are batched anyway. Measured with wrk on the embedded cluster:
     * p50 at 1 connection 0.16 ms (linger 0) vs 1.36 ms (linger 0.1..1); req/s at 64 connections
     * the same within noise. */
    uint64_t max_bytes = conf->limits.body_bytes + conf->limits.header_bytes + 65536;
    if (max_bytes < 1000000)
        max_bytes = 1000000;
    char maxnum[32];
    snprintf(maxnum, sizeof(maxnum), "%llu", (unsigned long long)max_bytes);
    if (sg_kafka_conf_durable_producer(rkconf, conf->kafka.produce_timeout_ms, err, errlen) ||
        sg_kafka_conf_set(rkconf, "message.max.bytes", maxnum, err, errlen) ||
        sg_kafka_conf_set(rkconf, "queue.buffering.max.messages", "1000000", err, errlen) ||
        sg_kafka_conf_apply(rkconf, conf, err, errlen))
        goto fail_conf;
    rd_kafka_conf_set_dr_msg_cb(rkconf, on_delivery);
    rd_kafka_conf_set_opaque(rkconf, bridge);

    if ((bridge->rk = sg_kafka_new(RD_KAFKA_PRODUCER, rkconf, "kafka producer", err, errlen)) == NULL) {
        sg_bridge_destroy(bridge);
        return NULL;
    }
    bridge->producer_queue = rd_kafka_queue_get_main(bridge->rk);
    rd_kafka_queue_cb_event_enable(bridge->producer_queue, sg_wake_on_queue_event, &bridge->wake);
    if (bridge->n_reply_topics > 0 && create_consumer(bridge, bootstraps, err, errlen) != 0) {
        sg_bridge_destroy(bridge);
        return NULL;
    }
    /* Every topic the config names gets its handle now: the hot path never looks topics up. */
    for (size_t i = 0; i < conf->n_routes; ++i)
        sg_bridge_topic(bridge, conf->routes[i].topic);
    atomic_store(&bridge->flush_timeout_ms, conf->shutdown_timeout_ms);
    return bridge;

fail_conf:
    rd_kafka_conf_destroy(rkconf);
    sg_bridge_destroy(bridge);
    return NULL;
}

/* --- broker reachability ------------------------------------------------------------------ */

/* Waits ms unless the bridge stops first. Returns whether it is stopping. */
static int probe_sleep(sg_bridge_t *bridge, int ms)
{
    struct timespec deadline = sg_bridge_deadline(ms);
    pthread_mutex_lock(&bridge->probe_mutex);
    while (!atomic_load(&bridge->stopping))
        if (pthread_cond_timedwait(&bridge->probe_cond, &bridge->probe_mutex, &deadline) != 0)
            break;
    pthread_mutex_unlock(&bridge->probe_mutex);
    return atomic_load(&bridge->stopping);
}

/* A ListOffsets round trip to the leader of every partition of the topics in md that exist (the
 * routes' topics: the producer knows no others), all at once (one request per leader). */
static rd_kafka_resp_err_t probe_leaders(sg_bridge_t *bridge, const struct rd_kafka_metadata *md)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
    for (int t = 0; t < md->topic_cnt; ++t)
        for (int p = 0; md->topics[t].err == RD_KAFKA_RESP_ERR_NO_ERROR && p < md->topics[t].partition_cnt; ++p)
            rd_kafka_topic_partition_list_add(parts, md->topics[t].topic, md->topics[t].partitions[p].id)->offset =
                RD_KAFKA_OFFSET_END; /* as a timestamp: the latest offset */
    rd_kafka_resp_err_t rkerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (parts->cnt > 0)
        rkerr = rd_kafka_offsets_for_times(bridge->rk, parts, SG_BRIDGE_PROBE_TIMEOUT_MS);
    rd_kafka_topic_partition_list_destroy(parts);
    return rkerr;
}

/* Every second, a metadata request to any broker (librdkafka picks one it is connected to), then a
 * round trip to every leader of the routes' partitions: real round trips, so a broker that is up
 * but not answering (stopped, overloaded, partitioned) counts as unreachable too, which a
 * connection state would not show. The leaders' round trip is what sees a cluster that lost the
 * majority of its nodes: the one left still answers metadata, stale (its controller quorum is
 * gone, so nobody records the others as dead), while the partitions led by the dead nodes take
 * no writes. */
static void *probe_main(void *arg)
{
    sg_bridge_t *bridge = arg;
    sg_thread_name("sg-kafka-probe");
    int64_t answering_since = 0; /* start of the current run of successful round trips, 0: none */
    atomic_store(&bridge->last_contact_ms, sg_mono_ms());
    while (!probe_sleep(bridge, SG_BRIDGE_PROBE_INTERVAL_MS)) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t rkerr = rd_kafka_metadata(bridge->rk, 0, NULL, &md, SG_BRIDGE_PROBE_TIMEOUT_MS);
        int leaders = 0;
        if (rkerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rkerr = probe_leaders(bridge, md);
            leaders = rkerr != RD_KAFKA_RESP_ERR_NO_ERROR;
            rd_kafka_metadata_destroy(md);
        }
        int64_t now = sg_mono_ms();
        if (rkerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
            atomic_store(&bridge->last_contact_ms, now);
            if (answering_since == 0)
                answering_since = now;
            if (!atomic_load(&bridge->reachable) && now - answering_since >= SG_BRIDGE_REACHABLE_AFTER_MS) {
                atomic_store(&bridge->reachable, 1);
                sg_log_info("kafka: brokers answer again");
            }
        } else {
            answering_since = 0;
            atomic_store(&bridge->last_error, (int)rkerr);
            atomic_store(&bridge->leaders_failed, leaders);
            if (atomic_load(&bridge->reachable) && now - atomic_load(&bridge->last_contact_ms) >= SG_BRIDGE_UNREACHABLE_AFTER_MS) {
                atomic_store(&bridge->reachable, 0);
                sg_log_warn("kafka: %s for %lld ms: %s", leaders ? "the partition leaders have not all answered" : "no broker has answered",
                            (long long)(now - atomic_load(&bridge->last_contact_ms)), rd_kafka_err2str(rkerr));
            }
        }
    }
    return NULL;
}

int sg_bridge_reachable(const sg_bridge_t *bridge, char *why, size_t whylen)
{
    if (atomic_load(&bridge->reachable))
        return 1;
    long long silent_ms = sg_mono_ms() - atomic_load(&bridge->last_contact_ms);
    sg_errf(why, whylen, "%s for %lld s (last error: %s)",
            atomic_load(&bridge->leaders_failed) ? "the leaders of the routes' partitions have not all answered"
                                                 : "no Kafka broker has answered",
            silent_ms / 1000, rd_kafka_err2str((rd_kafka_resp_err_t)atomic_load(&bridge->last_error)));
    return 0;
}

int sg_bridge_start(sg_bridge_t *bridge, void *reply_ctx, char *err, size_t errlen)
{
    bridge->reply_ctx = reply_ctx;
    if (pthread_create(&bridge->thread, NULL, bridge_main, bridge) != 0) {
        sg_errf(err, errlen, "cannot start the bridge thread");
        return -1;
    }
    bridge->thread_started = 1;
    if (pthread_create(&bridge->probe_thread, NULL, probe_main, bridge) != 0) {
        sg_errf(err, errlen, "cannot start the broker probe thread");
        return -1;
    }
    bridge->probe_started = 1;
    return 0;
}

sg_bridge_topic_t *sg_bridge_topic(sg_bridge_t *bridge, const char *name)
{
    for (size_t i = 0; i < bridge->n_topics; ++i)
        if (strcmp(bridge->topics[i].name, name) == 0)
            return &bridge->topics[i];
    /* Handles are created before the loops start, so growing the array here is safe. */
    bridge->topics = sg_reallocarray(bridge->topics, bridge->n_topics + 1, sizeof(*bridge->topics));
    sg_bridge_topic_t *topic = &bridge->topics[bridge->n_topics++];
    topic->name = sg_strdup(name);
    /* NULL only for an invalid name or out of memory; names come from the validated config */
    if ((topic->rkt = rd_kafka_topic_new(bridge->rk, name, NULL)) == NULL)
        sg_oom();
    return topic;
}

/* A topic that existed already keeps its partition count: say so when it is not the declared one
 * (keys then land on other partitions than a topic created from the config would use). */
static void warn_partition_count(sg_bridge_t *bridge, const char *name, int64_t timeout_ms)
{
    int declared = 0;
    for (size_t i = 0; i < bridge->conf->n_topics; ++i)
        if (strcmp(bridge->conf->topics[i].name, name) == 0)
            declared = bridge->conf->topics[i].partitions;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(bridge->rk, name, NULL);
    const struct rd_kafka_metadata *md = NULL;
    if (rkt != NULL && rd_kafka_metadata(bridge->rk, 0, rkt, &md, (int)timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && declared > 0 &&
        md->topics[0].partition_cnt != declared)
        sg_log_warn("topic %s exists with %d partition(s), not the %d declared in topics[]; it is used as it is", name,
                    md->topics[0].partition_cnt, declared);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
}

int sg_bridge_create_topics(sg_bridge_t *bridge, int64_t timeout_ms, char *err, size_t errlen)
{
    const sg_conf_t *conf = bridge->conf;
    if (conf->n_topics == 0)
        return 0;
    rd_kafka_NewTopic_t **newtopics = sg_calloc(conf->n_topics, sizeof(*newtopics));
    int rc = -1;
    char rkerr[512];
    for (size_t i = 0; i < conf->n_topics; ++i) {
        /* An unset replication (0) asks for the broker's default.replication.factor (-1), so a
         * topic on three nodes is replicated as the cluster intends. */
        newtopics[i] =
            rd_kafka_NewTopic_new(conf->topics[i].name, conf->topics[i].partitions,
                                  conf->topics[i].replication > 0 ? conf->topics[i].replication : -1, rkerr, sizeof(rkerr));
        if (newtopics[i] == NULL) {
            sg_errf(err, errlen, "topics[%zu]: %s", i, rkerr);
            goto done;
        }
        for (size_t c = 0; c < conf->topics[i].n_config; ++c) {
            const sg_kv_t *kv = &conf->topics[i].config[c];
            if (rd_kafka_NewTopic_set_config(newtopics[i], kv->key, kv->value) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                sg_errf(err, errlen, "topics[%zu].config.%s: not accepted", i, kv->key);
                goto done;
            }
        }
    }
    rd_kafka_queue_t *queue = rd_kafka_queue_new(bridge->rk);
    rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(bridge->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(options, (int)timeout_ms, rkerr, sizeof(rkerr));
    rd_kafka_CreateTopics(bridge->rk, newtopics, conf->n_topics, options, queue);
    rd_kafka_event_t *event = rd_kafka_queue_poll(queue, (int)timeout_ms + 1000);
    if (event == NULL) {
        sg_errf(err, errlen, "kafka.create_topics: no answer within %lld ms", (long long)timeout_ms);
    } else if (rd_kafka_event_error(event)) {
        sg_errf(err, errlen, "kafka.create_topics: %s", rd_kafka_event_error_string(event));
    } else {
        const rd_kafka_CreateTopics_result_t *result = rd_kafka_event_CreateTopics_result(event);
        size_t n = 0;
        const rd_kafka_topic_result_t **results = rd_kafka_CreateTopics_result_topics(result, &n);
        rc = 0;
        for (size_t i = 0; i < n && rc == 0; ++i) {
            rd_kafka_resp_err_t terr = rd_kafka_topic_result_error(results[i]);
            if (terr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                warn_partition_count(bridge, rd_kafka_topic_result_name(results[i]), timeout_ms);
            if (terr != RD_KAFKA_RESP_ERR_NO_ERROR && terr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                sg_errf(err, errlen, "kafka.create_topics: topic %s: %s", rd_kafka_topic_result_name(results[i]),
                        rd_kafka_topic_result_error_string(results[i]) ? rd_kafka_topic_result_error_string(results[i])
                                                                       : rd_kafka_err2str(terr));
                rc = -1;
            }
        }
    }
    if (event != NULL)
        rd_kafka_event_destroy(event);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(queue);
done:
    for (size_t i = 0; i < conf->n_topics; ++i)
        if (newtopics[i] != NULL)
            rd_kafka_NewTopic_destroy(newtopics[i]);
    free(newtopics);
    return rc;
}

int sg_bridge_produce(sg_bridge_t *bridge, sg_bridge_topic_t *topic, int32_t partition, int64_t timestamp_ms, const void *key,
                      size_t keylen, const void *value, size_t valuelen, const sg_bridge_header_t *headers, size_t n_headers,
                      void *opaque)
{
    if (atomic_load(&bridge->stopping))
        return SG_BRIDGE_E_SHUTDOWN;
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(n_headers);
    for (size_t i = 0; i < n_headers; ++i)
        rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value, (ssize_t)headers[i].len);
    rd_kafka_resp_err_t rkerr = rd_kafka_producev(bridge->rk, RD_KAFKA_V_RKT(topic->rkt), RD_KAFKA_V_TIMESTAMP(timestamp_ms),
                                                  RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
                                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, keylen),
                                                  RD_KAFKA_V_VALUE((void *)value, valuelen), RD_KAFKA_V_HEADERS(hdrs),
                                                  RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (rkerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(hdrs); /* ownership passes to librdkafka only on success */
        return map_produce_error(rkerr);
    }
    return SG_BRIDGE_OK;
}

int sg_bridge_is_ready(const sg_bridge_t *bridge)
{
    return atomic_load(&bridge->ready);
}

int sg_bridge_outstanding(const sg_bridge_t *bridge)
{
    return rd_kafka_outq_len(bridge->rk);
}

int64_t sg_bridge_reply_lag(const sg_bridge_t *bridge)
{
    if (!atomic_load(&bridge->ready) || bridge->reply_assignment == NULL)
        return 0;
    /* rd_kafka_position writes the positions into the list it is given: a copy per call */
    rd_kafka_topic_partition_list_t *positions = rd_kafka_topic_partition_list_copy(bridge->reply_assignment);
    rd_kafka_position(bridge->consumer, positions);
    int64_t lag = 0;
    for (int i = 0; i < positions->cnt; ++i) {
        const rd_kafka_topic_partition_t *part = &positions->elems[i];
        int64_t low, high, position = part->offset >= 0 ? part->offset : bridge->reply_assignment->elems[i].offset;
        if (rd_kafka_get_watermark_offsets(bridge->consumer, part->topic, part->partition, &low, &high) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            high >= 0 && position >= 0 && high > position)
            lag += high - position;
    }
    rd_kafka_topic_partition_list_destroy(positions);
    return lag;
}

int sg_bridge_shutdown(sg_bridge_t *bridge, int64_t timeout_ms)
{
    if (bridge->thread_started) {
        atomic_store(&bridge->flush_timeout_ms, timeout_ms);
        atomic_store(&bridge->stopping, 1);
        sg_wake(&bridge->wake);
        pthread_join(bridge->thread, NULL);
        bridge->thread_started = 0;
    }
    if (bridge->probe_started) {
        atomic_store(&bridge->stopping, 1);
        pthread_mutex_lock(&bridge->probe_mutex);
        pthread_cond_signal(&bridge->probe_cond);
        pthread_mutex_unlock(&bridge->probe_mutex);
        pthread_join(bridge->probe_thread, NULL);
        bridge->probe_started = 0;
    }
    return bridge->undelivered;
}

void sg_bridge_destroy(sg_bridge_t *bridge)
{
    if (bridge == NULL)
        return;
    sg_bridge_shutdown(bridge, 0);
    for (size_t i = 0; i < bridge->n_topics; ++i) {
        rd_kafka_topic_destroy(bridge->topics[i].rkt);
        free(bridge->topics[i].name);
    }
    free(bridge->topics);
    for (size_t t = 0; t < bridge->n_reply_topics; ++t) {
        free((void *)bridge->reply_topics[t].pins);
        free((void *)bridge->reply_topics[t].n_pins);
        free(bridge->reply_topics[t].correlation_headers);
    }
    free(bridge->reply_topics);
    if (bridge->reply_assignment != NULL)
        rd_kafka_topic_partition_list_destroy(bridge->reply_assignment);
    if (bridge->consumer_queue != NULL)
        rd_kafka_queue_destroy(bridge->consumer_queue);
    if (bridge->consumer != NULL) {
        rd_kafka_consumer_close(bridge->consumer);
        rd_kafka_destroy(bridge->consumer);
    }
    if (bridge->producer_queue != NULL)
        rd_kafka_queue_destroy(bridge->producer_queue);
    if (bridge->rk != NULL)
        rd_kafka_destroy(bridge->rk);
    sg_wake_dispose(&bridge->wake);
    pthread_cond_destroy(&bridge->probe_cond);
    pthread_mutex_destroy(&bridge->probe_mutex);
    free(bridge);
}
