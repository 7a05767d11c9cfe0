/*
 * Tests for the outcome of a produce that librdkafka could not tell (bridge/lookup.c, and the
 * status in bridge.c's delivery reports): on the embedded cluster, a produce whose answer comes
 * after message.timeout.ms (the broker's round trip is slowed with the mock's RTT knob) is
 * reported failed but POSSIBLY persisted; it is in the log all the same, and the lookup by its
 * correlation id finds it at its offset. Ids that were never produced are not found.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "sg_bridge.h"
#include "sg_cluster.h"
#include "sg_lookup.h"

#define TOPIC "orders"

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int result;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
} answer_t;

static void on_answer(void *opaque, int result, int32_t partition, int64_t offset, int64_t timestamp_ms)
{
    answer_t *answer = opaque;
    pthread_mutex_lock(&answer->lock);
    answer->result = result;
    answer->partition = partition;
    answer->offset = offset;
    answer->timestamp_ms = timestamp_ms;
    answer->done = 1;
    pthread_cond_signal(&answer->cond);
    pthread_mutex_unlock(&answer->lock);
}

static void wait_answer(answer_t *answer)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&answer->lock);
    while (!answer->done)
        assert_int_equal(pthread_cond_timedwait(&answer->cond, &answer->lock, &until), 0);
    pthread_mutex_unlock(&answer->lock);
}

static int lookup_once(sg_lookup_t *lookup, const char *id, int64_t produced_ms, int64_t *offset)
{
    answer_t answer = {.result = 99};
    pthread_mutex_init(&answer.lock, NULL);
    pthread_cond_init(&answer.cond, NULL);
    assert_int_equal(
        sg_lookup_submit(lookup, TOPIC, 0, produced_ms, "kafka_correlationId", id, strlen(id), 0, 10000, on_answer, &answer), 0);
    wait_answer(&answer);
    pthread_mutex_destroy(&answer.lock);
    pthread_cond_destroy(&answer.cond);
    if (offset != NULL)
        *offset = answer.offset;
    assert_int_equal(answer.partition, 0);
    return answer.result;
}

typedef struct {
    rd_kafka_resp_err_t err;
    rd_kafka_msg_status_t status;
    int64_t offset;
    int reports;
} report_t;

static void on_report(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)opaque;
    report_t *report = msg->_private;
    report->err = msg->err;
    report->status = rd_kafka_message_status(msg);
    report->offset = msg->offset;
    report->reports++;
}

/* Produces one record with the correlation id header to partition 0; returns its report. */
static report_t produce_one(rd_kafka_t *producer, const char *id, int64_t timestamp_ms)
{
    report_t report = {0};
    assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE("{}", 2),
                                       RD_KAFKA_V_TIMESTAMP(timestamp_ms),
                                       RD_KAFKA_V_HEADER("kafka_correlationId", id, (ssize_t)strlen(id)),
                                       RD_KAFKA_V_OPAQUE(&report), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < 200 && report.reports == 0; i++)
        rd_kafka_poll(producer, 100);
    assert_int_equal(report.reports, 1);
    return report;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_possibly_persisted_is_found(void **state)
{
    (void)state;
    char err[256] = "";
    sg_cluster_t *cluster = sg_cluster_create(1, err, sizeof(err));
    assert_non_null(cluster);
    assert_int_equal(sg_cluster_create_topic(cluster, TOPIC, 2, 1, err, sizeof(err)), 0);
    rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(rkconf, "bootstrap.servers", sg_cluster_bootstraps(cluster), err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(rkconf, "enable.idempotence", "true", err, sizeof(err)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(rkconf, "message.timeout.ms", "1500", err, sizeof(err)), RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(rkconf, on_report);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, rkconf, err, sizeof(err));
    assert_non_null(producer);

    int64_t t0 = wall_ms();
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "id-%d", i);
        report_t report = produce_one(producer, id, t0 + i);
        assert_int_equal(report.err, RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(report.status, RD_KAFKA_MSG_STATUS_PERSISTED);
        assert_int_equal(report.offset, i);
    }
    /* The broker answers after the message timed out: sent, appended, not acknowledged. */
    assert_int_equal(sg_cluster_set_rtt(cluster, 1, 3000, err, sizeof(err)), 0);
    report_t lost = produce_one(producer, "id-unsure", t0 + 10);
    assert_int_not_equal(lost.err, RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(lost.status, RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED);
    assert_int_equal(sg_cluster_set_rtt(cluster, 1, 0, err, sizeof(err)), 0);

    sg_conf_t conf = {0};
    sg_lookup_t *lookup = sg_lookup_create(&conf, sg_cluster_bootstraps(cluster), err, sizeof(err));
    assert_non_null(lookup);
    int64_t offset = -1;
    assert_int_equal(lookup_once(lookup, "id-unsure", t0 + 10, &offset), SG_LOOKUP_FOUND);
    assert_int_equal(offset, 3);
    assert_int_equal(lookup_once(lookup, "id-1", t0, &offset), SG_LOOKUP_FOUND);
    assert_int_equal(offset, 1);
    /* Never produced, and an id that is the prefix of one that was. (The mock answers no
     * ListOffsets by time, so here every lookup reads from the log start.) */
    assert_int_equal(lookup_once(lookup, "id-9", t0, NULL), SG_LOOKUP_NOT_FOUND);
    assert_int_equal(lookup_once(lookup, "id-", t0, NULL), SG_LOOKUP_NOT_FOUND);
    /* Bad arguments are refused without a callback. */
    assert_int_equal(sg_lookup_submit(lookup, TOPIC, -1, t0, "kafka_correlationId", "x", 1, 0, 1000, on_answer, NULL), -1);
    assert_int_equal(sg_lookup_submit(lookup, TOPIC, 0, t0, "kafka_correlationId", "x", 0, 0, 1000, on_answer, NULL), -1);
    sg_lookup_destroy(lookup);
    rd_kafka_destroy(producer);
    sg_cluster_destroy(cluster);
}

/* Lookups still queued when the helper stops are answered (as errors), exactly once. */
static void test_destroy_answers_queued(void **state)
{
    (void)state;
    char err[256] = "";
    sg_cluster_t *cluster = sg_cluster_create(1, err, sizeof(err));
    assert_non_null(cluster);
    assert_int_equal(sg_cluster_create_topic(cluster, TOPIC, 1, 1, err, sizeof(err)), 0);
    sg_conf_t conf = {0};
    sg_lookup_t *lookup = sg_lookup_create(&conf, sg_cluster_bootstraps(cluster), err, sizeof(err));
    assert_non_null(lookup);
    answer_t answers[3] = {0};
    for (int i = 0; i < 3; i++) {
        pthread_mutex_init(&answers[i].lock, NULL);
        pthread_cond_init(&answers[i].cond, NULL);
        /* A long settle: still waiting when destroyed. */
        assert_int_equal(sg_lookup_submit(lookup, TOPIC, 0, 0, "kafka_correlationId", "x", 1, 60000, 1000, on_answer, &answers[i]),
                         0);
    }
    sg_lookup_destroy(lookup);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(answers[i].done, 1);
        assert_int_equal(answers[i].result, SG_LOOKUP_ERROR);
        pthread_mutex_destroy(&answers[i].lock);
        pthread_cond_destroy(&answers[i].cond);
    }
    sg_cluster_destroy(cluster);
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int reports;
    int err;
    int status;
    int32_t partition;
    int64_t offset;
} bridge_report_t;

static void on_bridge_delivery(void *opaque, const sg_delivery_t *delivery)
{
    bridge_report_t *report = opaque;
    pthread_mutex_lock(&report->lock);
    report->err = delivery->err;
    report->status = delivery->status;
    report->partition = delivery->partition;
    report->offset = delivery->offset;
    report->reports++;
    pthread_cond_signal(&report->cond);
    pthread_mutex_unlock(&report->lock);
}

static void on_bridge_reply(void *ctx, const sg_reply_t *reply)
{
    (void)ctx;
    (void)reply;
}

static void bridge_produce(sg_bridge_t *bridge, const char *id, int64_t timestamp_ms, bridge_report_t *report)
{
    memset(report, 0, sizeof(*report));
    pthread_mutex_init(&report->lock, NULL);
    pthread_cond_init(&report->cond, NULL);
    sg_bridge_header_t header = {"kafka_correlationId", id, strlen(id)};
    assert_int_equal(
        sg_bridge_produce(bridge, sg_bridge_topic(bridge, TOPIC), 0, timestamp_ms, NULL, 0, "{}", 2, &header, 1, report),
        SG_BRIDGE_OK);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&report->lock);
    while (report->reports == 0)
        assert_int_equal(pthread_cond_timedwait(&report->cond, &report->lock, &until), 0);
    pthread_mutex_unlock(&report->lock);
    pthread_mutex_destroy(&report->lock);
    pthread_cond_destroy(&report->cond);
}

/* The bridge's delivery report carries the status the gateway decides on: PERSISTED with the
 * offset, or, for a produce that timed out after it was sent, an error that is POSSIBLY
 * persisted, which the lookup then finds at its offset. */
static void test_bridge_reports_possibly_persisted(void **state)
{
    (void)state;
    char err[512] = "";
    sg_cluster_t *cluster = sg_cluster_create(1, err, sizeof(err));
    assert_non_null(cluster);
    assert_int_equal(sg_cluster_create_topic(cluster, TOPIC, 1, 1, err, sizeof(err)), 0);
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "kafka: {brokers: \"%s\", produce_timeout: 1500ms}\n"
             "routes: [{name: r, method: POST, path: /r, topic: " TOPIC ", key: none}]\n",
             sg_cluster_bootstraps(cluster));
    sg_conf_t *conf = sg_conf_load_string("t.yaml", yaml, strlen(yaml), err, sizeof(err));
    assert_non_null(conf);
    sg_bridge_t *bridge =
        sg_bridge_create(conf, sg_cluster_bootstraps(cluster), on_bridge_delivery, on_bridge_reply, err, sizeof(err));
    assert_non_null(bridge);
    assert_int_equal(sg_bridge_start(bridge, NULL, err, sizeof(err)), 0);

    int64_t t0 = wall_ms();
    bridge_report_t report;
    bridge_produce(bridge, "first", t0, &report);
    assert_int_equal(report.err, SG_BRIDGE_OK);
    assert_int_equal(report.status, SG_DELIVERY_PERSISTED);
    assert_int_equal(report.offset, 0);

    assert_int_equal(sg_cluster_set_rtt(cluster, 1, 3000, err, sizeof(err)), 0);
    bridge_produce(bridge, "unsure", t0 + 1, &report);
    assert_int_equal(report.err, SG_BRIDGE_E_DELIVERY);
    assert_int_equal(report.status, SG_DELIVERY_POSSIBLY_PERSISTED);
    assert_int_equal(report.partition, 0);
    assert_int_equal(sg_cluster_set_rtt(cluster, 1, 0, err, sizeof(err)), 0);

    sg_lookup_t *lookup = sg_lookup_create(conf, sg_cluster_bootstraps(cluster), err, sizeof(err));
    assert_non_null(lookup);
    int64_t offset = -1;
    assert_int_equal(lookup_once(lookup, "unsure", t0 + 1, &offset), SG_LOOKUP_FOUND);
    assert_int_equal(offset, 1);
    sg_lookup_destroy(lookup);
    sg_bridge_destroy(bridge);
    sg_conf_destroy(conf);
    sg_cluster_destroy(cluster);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_possibly_persisted_is_found),
        cmocka_unit_test(test_destroy_answers_queued),
        cmocka_unit_test(test_bridge_reports_possibly_persisted),
    };
    return cmocka_run_group_tests_name("bridge-lookup", tests, NULL, NULL);
}
