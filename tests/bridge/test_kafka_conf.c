/*
 * The shared librdkafka configuration (bridge/kafka_conf.c): the defaults each kind of client
 * gets, the config's kafka.properties overriding them, errors naming the property, and the
 * mapping of librdkafka's syslog levels to ours.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bridge_int.h"

static void assert_property(rd_kafka_conf_t *rkconf, const char *name, const char *expected)
{
    char value[256];
    size_t len = sizeof(value);
    assert_int_equal(rd_kafka_conf_get(rkconf, name, value, &len), RD_KAFKA_CONF_OK);
    if (strcmp(value, expected) != 0)
        fail_msg("%s = %s, expected %s", name, value, expected);
}

static void test_log_levels(void **state)
{
    for (int level = 0; level <= 3; ++level)
        assert_int_equal(sg_kafka_log_level(level), SG_LOG_ERROR);
    assert_int_equal(sg_kafka_log_level(4), SG_LOG_WARN);
    assert_int_equal(sg_kafka_log_level(5), SG_LOG_INFO);
    assert_int_equal(sg_kafka_log_level(6), SG_LOG_INFO);
    assert_int_equal(sg_kafka_log_level(7), SG_LOG_DEBUG);
}

static void test_client_defaults(void **state)
{
    char err[256];
    rd_kafka_conf_t *rkconf = sg_kafka_conf_new("127.0.0.1:1", "streamgate-test", err, sizeof(err));
    assert_non_null(rkconf);
    assert_property(rkconf, "bootstrap.servers", "127.0.0.1:1");
    assert_property(rkconf, "client.id", "streamgate-test");
    assert_int_equal(sg_kafka_conf_durable_producer(rkconf, 7000, err, sizeof(err)), 0);
    assert_property(rkconf, "enable.idempotence", "true");
    assert_property(rkconf, "acks", "-1"); /* librdkafka reads "all" back as -1 */
    assert_property(rkconf, "linger.ms", "0");
    assert_property(rkconf, "message.timeout.ms", "7000");
    rd_kafka_conf_destroy(rkconf);

    rkconf = sg_kafka_conf_new("127.0.0.1:1", "streamgate-test", err, sizeof(err));
    assert_int_equal(sg_kafka_conf_assigning_consumer(rkconf, "streamgate-x", 1, err, sizeof(err)), 0);
    assert_property(rkconf, "group.id", "streamgate-x");
    assert_property(rkconf, "enable.auto.commit", "false");
    assert_property(rkconf, "enable.auto.offset.store", "false");
    assert_property(rkconf, "enable.partition.eof", "true");
    assert_property(rkconf, "fetch.wait.max.ms", "10");
    assert_int_equal(sg_kafka_conf_assigning_consumer(rkconf, "streamgate-x", 0, err, sizeof(err)), 0);
    assert_property(rkconf, "enable.partition.eof", "false");
    rd_kafka_conf_destroy(rkconf);
}

static void test_properties_override_and_errors(void **state)
{
    sg_kv_t properties[] = {{"fetch.wait.max.ms", "1"}, {"client.id", "mine"}};
    sg_conf_t conf = {0};
    conf.kafka.properties = properties;
    conf.kafka.n_properties = 2;
    char err[256];
    rd_kafka_conf_t *rkconf = sg_kafka_conf_new("127.0.0.1:1", "streamgate", err, sizeof(err));
    assert_int_equal(sg_kafka_conf_assigning_consumer(rkconf, "streamgate-x", 0, err, sizeof(err)), 0);
    assert_int_equal(sg_kafka_conf_apply(rkconf, &conf, err, sizeof(err)), 0);
    assert_property(rkconf, "fetch.wait.max.ms", "1");
    assert_property(rkconf, "client.id", "mine");

    properties[1] = (sg_kv_t){"no.such.property", "1"};
    assert_int_equal(sg_kafka_conf_apply(rkconf, &conf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "kafka.properties: no.such.property: "));
    assert_int_equal(sg_kafka_conf_set(rkconf, "acks", "sometimes", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "kafka.properties: acks: "));
    rd_kafka_conf_destroy(rkconf);
}

static void test_new_fails_with_what(void **state)
{
    char err[256];
    rd_kafka_conf_t *rkconf = sg_kafka_conf_new("127.0.0.1:1", "streamgate", err, sizeof(err));
    /* A transactional producer without idempotence is refused when the client is made. */
    assert_int_equal(sg_kafka_conf_set(rkconf, "transactional.id", "t", err, sizeof(err)), 0);
    assert_int_equal(sg_kafka_conf_set(rkconf, "enable.idempotence", "false", err, sizeof(err)), 0);
    assert_null(sg_kafka_new(RD_KAFKA_PRODUCER, rkconf, "kafka producer", err, sizeof(err))); /* takes rkconf */
    assert_non_null(strstr(err, "kafka producer: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_client_defaults),
        cmocka_unit_test(test_properties_override_and_errors),
        cmocka_unit_test(test_new_fails_with_what),
    };
    return cmocka_run_group_tests_name("bridge-kafka-conf", tests, NULL, NULL);
}
