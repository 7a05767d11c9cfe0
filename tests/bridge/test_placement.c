/*
 * bridge/placement.c's partitioner: a key's partition as a partitioned table computes it is the
 * partition the gateway's producer (sg_kafka_conf_durable_producer) puts it in, checked against
 * the delivery reports of a real produce to the mock cluster; Kafka's own murmur2 values; and a
 * placement stopped between its group's JoinGroup and first SyncGroup answers (librdkafka#4312).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "bridge_int.h"
#include "sg_cluster.h"
#include "sg_placement.h"
#include "sg_base.h"
#include "sg_log.h"

#define KEYS 500
#define PARTITIONS 7

static int32_t delivered[KEYS];

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    int index = (int)(intptr_t)msg->_private;
    delivered[index] = msg->err == RD_KAFKA_RESP_ERR_NO_ERROR ? msg->partition : -2;
}

static void test_producer_partitions_as_reads_look(void **state)
{
    char err[512];
    sg_cluster_t *cluster = sg_cluster_create(1, err, sizeof(err));
    assert_non_null(cluster);
    assert_int_equal(sg_cluster_create_topic(cluster, "pl.keys", PARTITIONS, 1, err, sizeof(err)), 0);
    rd_kafka_conf_t *rkconf = sg_kafka_conf_new(sg_cluster_bootstraps(cluster), "test-placement", err, sizeof(err));
    assert_non_null(rkconf);
    assert_int_equal(sg_kafka_conf_durable_producer(rkconf, 10000, err, sizeof(err)), 0);
    rd_kafka_conf_set_dr_msg_cb(rkconf, on_delivery);
    rd_kafka_t *producer = sg_kafka_new(RD_KAFKA_PRODUCER, rkconf, "producer", err, sizeof(err));
    assert_non_null(producer);
    for (int i = 0; i < KEYS; ++i) {
        char key[32];
        snprintf(key, sizeof(key), "customer-%d", i);
        delivered[i] = -1;
        assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("pl.keys"), RD_KAFKA_V_KEY(key, strlen(key)),
                                           RD_KAFKA_V_VALUE("{}", 2), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    int used[PARTITIONS] = {0};
    for (int i = 0; i < KEYS; ++i) {
        char key[32];
        snprintf(key, sizeof(key), "customer-%d", i);
        assert_int_equal(delivered[i], sg_placement_partition_of(key, strlen(key), PARTITIONS));
        used[delivered[i]]++;
    }
    for (int p = 0; p < PARTITIONS; ++p)
        assert_true(used[p] > 0); /* spread, not all on one */
    rd_kafka_destroy(producer);
    sg_cluster_destroy(cluster);
}

/* Kafka's Utils.murmur2 test vectors (clients/src/test/.../UtilsTest.java, testMurmur2), through
 * the Java DefaultPartitioner's toPositive (& 0x7fffffff): with INT32_MAX partitions the partition
 * is that positive hash itself. */
static void test_kafka_murmur2_values(void **state)
{
    static const struct {
        const char *key;
        int32_t murmur2;
    } cases[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i)
        assert_int_equal(sg_placement_partition_of(cases[i].key, strlen(cases[i].key), INT32_MAX),
                         (int32_t)((uint32_t)cases[i].murmur2 & 0x7fffffffu));
}

/* The log lines of a test (any thread), under a mutex. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[16384];

static void capture_sink(void *ctx, sg_log_level_t level, const char *message, size_t len)
{
    (void)ctx;
    (void)level;
    pthread_mutex_lock(&log_lock);
    size_t used = strlen(log_text);
    if (used + len + 2 < sizeof(log_text))
        snprintf(log_text + used, sizeof(log_text) - used, "%.*s\n", (int)len, message);
    pthread_mutex_unlock(&log_lock);
}

/* Whether a captured line contains `text`. */
static int logged(const char *text)
{
    pthread_mutex_lock(&log_lock);
    int found = strstr(log_text, text) != NULL;
    pthread_mutex_unlock(&log_lock);
    return found;
}

#define SYNC_GROUP_API_KEY 14 /* Kafka's SyncGroup request */

/* A placement stopped after its table's group answered the JoinGroup and before the first
 * SyncGroup answer: librdkafka 2.0 aborts freeing the group consumer then (librdkafka#4312),
 * which killed a gateway stopped during its start (SIGABRT instead of exit 0). The mock holds the
 * first SyncGroup answer for `sync_delay_ms`; the placement is stopped as soon as the mock has
 * received that request (its scripted delay is taken off its stack), so always in that window.
 * Leaves the lines the placement logged in log_text. */
static void stop_between_join_and_first_assignment(int sync_delay_ms)
{
    char err[512];
    sg_cluster_t *cluster = sg_cluster_create(1, err, sizeof(err));
    assert_non_null(cluster);
    assert_int_equal(sg_cluster_create_topic(cluster, "pl.rows", 4, 1, err, sizeof(err)), 0);
    char text[512];
    snprintf(text, sizeof(text),
             "data_dir: /tmp\nkafka: {brokers: \"%s\"}\ndeployment: {name: pl}\n"
             "tables: [{name: rows, topic: pl.rows, placement: partitioned}]\n",
             sg_cluster_bootstraps(cluster));
    sg_conf_t *conf = sg_conf_load_string("t.yaml", text, strlen(text), err, sizeof(err));
    if (conf == NULL)
        fail_msg("%s", err);
    rd_kafka_mock_cluster_t *mock = sg_cluster_mock(cluster);
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(mock, 1, SYNC_GROUP_API_KEY, 1, RD_KAFKA_RESP_ERR_NO_ERROR,
                                                                  sync_delay_ms),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    log_text[0] = '\0';
    sg_log_set_sink(capture_sink, NULL);
    sg_placement_t *placement = sg_placement_create(conf, sg_cluster_bootstraps(cluster), "pl-a", err, sizeof(err));
    if (placement == NULL)
        fail_msg("%s", err);
    assert_int_equal(sg_placement_start(placement, "http://127.0.0.1:1", err, sizeof(err)), 0);
    size_t pending = 1;
    int64_t until = sg_mono_ms() + 30000;
    while (pending > 0 && sg_mono_ms() < until) {
        sg_sleep_ms(5);
        assert_int_equal(rd_kafka_mock_broker_error_stack_cnt(mock, 1, SYNC_GROUP_API_KEY, &pending), RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(pending, 0); /* the SyncGroup request is at the mock, its answer held */
    assert_non_null(sg_placement_not_ready_because(placement));
    sg_placement_shutdown(placement, 0);
    sg_placement_destroy(placement);
    sg_log_set_sink(NULL, NULL);
    sg_conf_destroy(conf);
    sg_cluster_destroy(cluster);
    assert_true(logged("placement: table rows: the group has not assigned this instance its partitions yet; waiting up to"));
}

/* The answer comes within the placement's wait: the group assigns, then the consumer is freed. */
static void test_stopped_between_join_and_first_assignment(void **state)
{
    stop_between_join_and_first_assignment(2500);
    assert_true(logged("placement: table rows: 4 partition(s) assigned to this instance"));
    assert_false(logged("no first assignment"));
}

/* The answer is held past the wait (the session timeout, 6 s): the consumer is closed and left
 * undestroyed, said in a warning, instead of an abort. (LeakSanitizer does not count what it
 * holds: its threads still run and reach it.) */
static void test_first_assignment_held_past_the_wait(void **state)
{
    stop_between_join_and_first_assignment(8000);
    assert_false(logged("partition(s) assigned to this instance"));
    assert_true(logged("placement: table rows: no first assignment in 6000 ms; its group consumer is closed and left undestroyed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_partitions_as_reads_look),
        cmocka_unit_test(test_kafka_murmur2_values),
        cmocka_unit_test(test_stopped_between_join_and_first_assignment),
        cmocka_unit_test(test_first_assignment_held_past_the_wait),
    };
    return cmocka_run_group_tests_name("bridge-placement", tests, NULL, NULL);
}
