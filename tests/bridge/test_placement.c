/*
 * bridge/placement.c's partitioner: a key's partition as a partitioned table computes it is the
 * partition the gateway's producer (sg_kafka_conf_durable_producer) puts it in, checked against
 * the delivery reports of a real produce to the mock cluster; and Kafka's own murmur2 values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bridge_int.h"
#include "sg_cluster.h"
#include "sg_placement.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_partitions_as_reads_look),
        cmocka_unit_test(test_kafka_murmur2_values),
    };
    return cmocka_run_group_tests_name("bridge-placement", tests, NULL, NULL);
}
