/*
 * The gateway against a separately started `streamgate cluster` (the same code path as a real
 * broker list), and graceful shutdown: a command still waiting for its ack when SIGTERM arrives
 * gets its 202, then the gateway exits 0.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "harness.h"

static sg_test_proc_t cluster;

static int setup(void **state)
{
    const char *args[] = {
        "--brokers",     "2", "--topic", "ext.commands:3", "--topic", "mi.requests:2", "--topic", "mi.replies:2", "--topic",
        "tb.profiles:3", NULL};
    return sg_test_cluster_start(&cluster, args);
}

static int teardown(void **state)
{
    return sg_test_stop_procs(&cluster, NULL);
}

static void start_gateway(sg_test_proc_t *gw, const char *extra)
{
    char config[2048];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\n"
             "data_dir: @DIR@/data\n"
             "kafka: {brokers: \"%s\"%s}\n"
             "routes:\n"
             "  - {name: ext, method: POST, path: \"/ext/{id}\", topic: ext.commands, key: \"path:id\"}\n",
             cluster.bootstrap, extra);
    assert_int_equal(sg_test_gateway_start(gw, config), 0);
    snprintf(gw->bootstrap, sizeof(gw->bootstrap), "%s", cluster.bootstrap);
}

static void test_gateway_on_separate_cluster(void **state)
{
    sg_test_proc_t gw;
    start_gateway(&gw, "");
    /* no embedded cluster: no bootstrap file of its own */
    char path[512];
    snprintf(path, sizeof(path), "%s/data/kafka.bootstrap", gw.dir);
    assert_int_not_equal(access(path, F_OK), 0);

    const char body[] = "{\"v\":1}";
    sg_test_response_t res;
    assert_int_equal(sg_test_post_json(&gw, "/ext/k1", NULL, body, &res), 0);
    assert_int_equal(res.status, 202);
    json_t *doc = json_loads(res.body, 0, NULL);
    assert_non_null(doc);
    json_int_t partition = json_integer_value(json_object_get(doc, "partition"));
    json_int_t offset = json_integer_value(json_object_get(doc, "offset"));
    assert_string_equal(json_string_value(json_object_get(doc, "topic")), "ext.commands");
    json_decref(doc);
    sg_test_response_free(&res);

    sg_test_record_t rec;
    assert_int_equal(sg_test_consume(cluster.bootstrap, "ext.commands", (int32_t)partition, offset, &rec), 0);
    assert_string_equal(rec.key, "k1");
    assert_string_equal(rec.value, body);
    sg_test_record_free(&rec);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
}

typedef struct {
    sg_test_proc_t *gw;
    int status;
} inflight_t;

static void *post_in_background(void *arg)
{
    inflight_t *inflight = arg;
    sg_test_response_t res;
    if (sg_test_http(inflight->gw, "POST", "/ext/slow", "Content-Type: application/json\r\n", "{\"slow\":true}", 13, &res) == 0) {
        inflight->status = res.status;
        sg_test_response_free(&res);
    }
    return NULL;
}

static void test_sigterm_finishes_inflight_commands(void **state)
{
    sg_test_proc_t gw;
    start_gateway(&gw, "");
    int64_t before = sg_test_topic_count(cluster.bootstrap, "ext.commands");

    /* Freeze the brokers so the command is still waiting for its ack when SIGTERM arrives. */
    assert_int_equal(sg_test_cluster_freeze(&cluster), 0);
    inflight_t inflight = {.gw = &gw};
    pthread_t thread;
    pthread_create(&thread, NULL, post_in_background, &inflight);
    sg_test_sleep_ms(300);
    assert_int_equal(kill(gw.pid, SIGTERM), 0);
    sg_test_sleep_ms(300);
    assert_int_equal(sg_test_cluster_thaw(&cluster), 0);
    pthread_join(thread, NULL);
    assert_int_equal(inflight.status, 202);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
    assert_int_equal(sg_test_topic_count(cluster.bootstrap, "ext.commands"), before + 1);
}

static void test_produce_timeout_is_503(void **state)
{
    sg_test_proc_t gw;
    start_gateway(&gw, ", produce_timeout: 500ms");
    assert_int_equal(sg_test_cluster_freeze(&cluster), 0);
    sg_test_response_t res;
    int64_t sent = sg_test_now_ms();
    int rc = sg_test_post_json(&gw, "/ext/t", NULL, "{}", &res);
    int64_t took = sg_test_now_ms() - sent;
    assert_int_equal(sg_test_cluster_thaw(&cluster), 0);
    assert_int_equal(rc, 0);
    sg_test_assert_problem(&res, 503, "kafka-unavailable", NULL);
    /* within kafka.produce_timeout + 1 s, though librdkafka's timeout scan runs once a second */
    if (took > 500 + 1000)
        fail_msg("answered after %lld ms", (long long)took);
    char value[64];
    assert_non_null(sg_test_header(&res, "retry-after", value, sizeof(value)));
    sg_test_response_free(&res);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
}

static void test_unknown_outcome_keeps_the_idempotency_key(void **state)
{
    /* A keyed request sent to a frozen cluster must never end as two events. Idempotency-Key
     * claims are deployment-wide (README, "Several instances"): the claim goes through the
     * claims topic first, so on a cluster frozen before the request the claim cannot be settled
     * and nothing is produced (503 store-unavailable); on one that freezes after the claim, the
     * produce's outcome is unknown and the key stays held (503 outcome-unknown or 409) until a
     * lookup finds the event. Either way retries after the thaw end in one 202 and one event. */
    sg_test_proc_t gw;
    start_gateway(&gw, ", produce_timeout: 1s");
    sg_test_response_t res;
    /* one event first, so that the producer knows the partition leaders and is connected: the
     * next one is then sent, not left queued waiting for metadata (which is NOT_PERSISTED). The
     * previous test froze and thawed the cluster: three nodes under the sanitizers and load can
     * take longer than this gateway's 1 s produce timeout to take writes again (seen once: 503),
     * so 503s are retried for up to 30 s. The same key: any 503 whose event did land is on the
     * same partition, before the 202's, so it is in the count below. */
    int64_t warm = sg_test_now_ms() + 30000;
    for (;;) {
        assert_int_equal(sg_test_post_json(&gw, "/ext/unknown", NULL, "{\"u\":0}", &res), 0);
        if (res.status != 503 || sg_test_now_ms() > warm)
            break;
        sg_test_response_free(&res);
        sg_test_sleep_ms(250);
    }
    assert_int_equal(res.status, 202);
    sg_test_response_free(&res);
    int64_t before = sg_test_topic_count(cluster.bootstrap, "ext.commands");
    assert_int_equal(sg_test_cluster_freeze(&cluster), 0);
    int64_t sent = sg_test_now_ms();
    int rc = sg_test_post_json(&gw, "/ext/unknown", "Idempotency-Key: u-1\r\n", "{\"u\":1}", &res);
    int64_t took = sg_test_now_ms() - sent;
    if (rc != 0) {
        sg_test_cluster_thaw(&cluster);
        fail_msg("no answer");
    }
    if (res.status != 503 || (strstr(res.body, "outcome-unknown") == NULL && strstr(res.body, "store-unavailable") == NULL)) {
        sg_test_cluster_thaw(&cluster);
        fail_msg("expected 503 outcome-unknown or store-unavailable, got %d %s", res.status, res.body);
    }
    /* within the produce timeout plus the claim's read-back bound (5 s), and a second */
    assert_true(took <= 1000 + 5000 + 1000);
    sg_test_response_free(&res);
    assert_int_equal(sg_test_cluster_thaw(&cluster), 0);
    /* thawed: retried until the outcome is known, then a 202 (replayed, or the first produce) */
    char value[64];
    int64_t deadline = sg_test_now_ms() + 60000;
    for (;;) {
        assert_int_equal(sg_test_post_json(&gw, "/ext/unknown", "Idempotency-Key: u-1\r\n", "{\"u\":1}", &res), 0);
        if (res.status == 202 || sg_test_now_ms() > deadline)
            break;
        assert_true(res.status == 409 || res.status == 503);
        assert_non_null(sg_test_header(&res, "retry-after", value, sizeof(value)));
        sg_test_response_free(&res);
        sg_test_sleep_ms(250);
    }
    assert_int_equal(res.status, 202);
    json_t *doc = json_loads(res.body, 0, NULL);
    sg_test_record_t rec;
    assert_int_equal(sg_test_consume(cluster.bootstrap, "ext.commands",
                                     (int32_t)json_integer_value(json_object_get(doc, "partition")),
                                     json_integer_value(json_object_get(doc, "offset")), &rec),
                     0);
    assert_string_equal(rec.value, "{\"u\":1}");
    sg_test_record_free(&rec);
    json_decref(doc);
    sg_test_response_free(&res);
    /* a retry now replays it */
    assert_int_equal(sg_test_post_json(&gw, "/ext/unknown", "Idempotency-Key: u-1\r\n", "{\"u\":1}", &res), 0);
    assert_int_equal(res.status, 202);
    assert_non_null(sg_test_header(&res, "idempotent-replayed", value, sizeof(value)));
    sg_test_response_free(&res);
    assert_int_equal(sg_test_topic_count(cluster.bootstrap, "ext.commands"), before + 1); /* one event */
    assert_int_equal(sg_test_proc_stop(&gw), 0);
}

static void test_full_producer_queue_is_503(void **state)
{
    /* kafka.properties reach librdkafka as-is: a one-message queue fills with one request. */
    sg_test_proc_t gw;
    start_gateway(&gw, ", properties: {queue.buffering.max.messages: 1}");
    assert_int_equal(sg_test_cluster_freeze(&cluster), 0);
    inflight_t first = {.gw = &gw};
    pthread_t thread;
    pthread_create(&thread, NULL, post_in_background, &first);
    sg_test_sleep_ms(300);
    sg_test_response_t res;
    int rc = sg_test_post_json(&gw, "/ext/second", NULL, "{}", &res);
    assert_int_equal(sg_test_cluster_thaw(&cluster), 0);
    pthread_join(thread, NULL);
    assert_int_equal(rc, 0);
    sg_test_assert_problem(&res, 503, "producer-queue-full", NULL);
    char value[64];
    assert_string_equal(sg_test_header(&res, "retry-after", value, sizeof(value)), "1");
    sg_test_response_free(&res);
    assert_int_equal(first.status, 202); /* the queued one still made it */
    assert_int_equal(sg_test_proc_stop(&gw), 0);
}

static void test_not_ready_without_kafka(void **state)
{
    /* Nothing listens on port 1: metadata never arrives, so the gateway is alive but not ready,
     * and it still shuts down promptly and cleanly. */
    sg_test_proc_t gw;
    assert_int_equal(sg_test_gateway_start_unready(&gw, "listen: [\"127.0.0.1:0\"]\n"
                                                        "data_dir: @DIR@/data\n"
                                                        "kafka: {brokers: \"127.0.0.1:1\"}\n"
                                                        "shutdown_timeout: 2s\n"
                                                        "routes: [{name: r, method: POST, path: /r, topic: t,\n"
                                                        "          reply: {topic: t.replies}}]\n"),
                     0);
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gw, "GET", "/healthz", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "GET", "/readyz", NULL, NULL, 0, &res), 0);
    sg_test_assert_problem(&res, 503, "not-ready", NULL);
    char value[64];
    assert_non_null(sg_test_header(&res, "retry-after", value, sizeof(value)));
    sg_test_response_free(&res);
    /* a reply route refuses requests until its reply partitions are assigned */
    assert_int_equal(sg_test_post_json(&gw, "/r", NULL, "{}", &res), 0);
    sg_test_assert_problem(&res, 503, "not-ready", NULL);
    sg_test_response_free(&res);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
}

/* Starts a gateway on `topics` (a YAML list) with kafka.create_topics on the cluster, and asserts
 * that the start fails (exit 1) with `expected` in its output. */
static void expect_start_refused(const char *topics, const char *expected)
{
    char text[1024], out[4096];
    snprintf(text, sizeof(text),
             "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\n"
             "kafka: {brokers: \"%s\", create_topics: true}\n"
             "topics: %s\n",
             cluster.bootstrap, topics);
    char *path = sg_test_write_temp("c.yaml", text);
    assert_non_null(path);
    const char *run[] = {sg_test_binary(), path, NULL};
    assert_int_equal(sg_test_run(run, out, sizeof(out)), 1);
    if (strstr(out, expected) == NULL)
        fail_msg("unexpected output: %s", out);
    sg_test_remove_temp(path);
}

static void test_create_topics_failure_stops_the_start(void **state)
{
    /* librdkafka's mock cluster does not implement CreateTopics: the start must fail, saying
     * which setting caused it, rather than serve routes whose topics may not exist. */
    SG_TEST_MOCK_ONLY("real Kafka implements CreateTopics (test_create_topics_as_declared covers it there)");
    expect_start_refused("[{name: created.by.admin, partitions: 2}]", "kafka.create_topics: ");
}
typedef struct {
    int partitions;
    int min_replicas, max_replicas; /* per partition */
    int distinct;                   /* every partition's replicas are distinct brokers */
} described_t;

/* Describes a topic from the cluster's metadata (librdkafka 2.0 has no DescribeTopics). Returns
 * the broker count, or -1 when the topic is unknown. */
static int describe_topic(const char *topic, described_t *out)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", cluster.bootstrap, err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(rk);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int brokers = -1;
    memset(out, 0, sizeof(*out));
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0 && md->topic_cnt == 1 && md->topics[0].err == 0) {
        brokers = md->broker_cnt;
        const rd_kafka_metadata_topic_t *t = &md->topics[0];
        out->partitions = t->partition_cnt;
        out->min_replicas = INT32_MAX;
        out->distinct = 1;
        for (int p = 0; p < t->partition_cnt; ++p) {
            const rd_kafka_metadata_partition_t *part = &t->partitions[p];
            out->min_replicas = part->replica_cnt < out->min_replicas ? part->replica_cnt : out->min_replicas;
            out->max_replicas = part->replica_cnt > out->max_replicas ? part->replica_cnt : out->max_replicas;
            for (int i = 0; i < part->replica_cnt; ++i)
                for (int j = i + 1; j < part->replica_cnt; ++j)
                    out->distinct &= part->replicas[i] != part->replicas[j];
        }
    }
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return brokers;
}

static void test_create_topics_as_declared(void **state)
{
    /* kafka.create_topics creates the declared topics through the Admin API, with their
     * partitions and replication factor, before the gateway serves; an impossible declaration
     * stops the start, naming the topic. */
    SG_TEST_REAL_ONLY("the mock cluster does not implement CreateTopics");
    described_t before;
    int brokers = describe_topic("ext.commands", &before);
    assert_true(brokers >= 1);
    int replication = brokers >= 3 ? 3 : brokers;
    char config[2048];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\n"
             "kafka: {brokers: \"%s\", create_topics: true}\n"
             "topics: [{name: made.replicated, partitions: 3, replication: %d},\n"
             "         {name: made.default, partitions: 5, config: {cleanup.policy: compact, retention.ms: 7200000}},\n"
             "         {name: ext.commands, partitions: 7}]\n"
             "routes:\n"
             "  - {name: made, method: POST, path: \"/made/{id}\", topic: made.replicated, key: \"path:id\"}\n"
             "tables: [{name: by_made, topic: made.replicated}, {name: by_default, topic: made.default}]\n",
             cluster.bootstrap, replication);
    sg_test_proc_t gw;
    assert_int_equal(sg_test_gateway_start(&gw, config), 0);
    described_t made;
    assert_int_equal(describe_topic("made.replicated", &made), brokers);
    assert_int_equal(made.partitions, 3);
    assert_int_equal(made.min_replicas, replication);
    assert_int_equal(made.max_replicas, replication);
    assert_true(made.distinct);
    /* no replication declared: the cluster's default.replication.factor (3 on three nodes; before,
     * the config's default of 1 made unreplicated topics there) */
    assert_int_equal(describe_topic("made.default", &made), brokers);
    assert_int_equal(made.partitions, 5);
    assert_int_equal(made.min_replicas, replication);
    assert_int_equal(made.max_replicas, replication);
    /* topics[].config is set at creation; a topic without it has the broker's defaults */
    char value[64];
    assert_int_equal(sg_test_topic_config(cluster.bootstrap, "made.default", "cleanup.policy", value, sizeof(value)), 0);
    assert_string_equal(value, "compact");
    assert_int_equal(sg_test_topic_config(cluster.bootstrap, "made.default", "retention.ms", value, sizeof(value)), 0);
    assert_string_equal(value, "7200000");
    assert_int_equal(sg_test_topic_config(cluster.bootstrap, "made.replicated", "cleanup.policy", value, sizeof(value)), 0);
    assert_string_equal(value, "delete");
    /* and the tables' check reads them: the table on the uncompacted topic is warned about, the
     * other not (both topics' answers come in the one DescribeConfigs result) */
    assert_int_equal(sg_test_log_has(&gw, "tables: topic made.replicated has cleanup.policy=delete, not compact", 15000), 1);
    assert_int_equal(sg_test_log_has(&gw, "tables: topic made.default has cleanup.policy", 0), 0);
    /* a declared topic that exists with another partition count is used as it is, and said so */
    assert_int_equal(describe_topic("ext.commands", &made), brokers);
    assert_int_equal(made.partitions, before.partitions);
    assert_int_equal(sg_test_log_has(&gw, "topic ext.commands exists with 3 partition(s), not the 7 declared", 0), 1);
    /* and a command on the replicated topic is acknowledged by all in-sync replicas */
    sg_test_response_t res;
    assert_int_equal(sg_test_post_json(&gw, "/made/k", NULL, "{\"made\":1}", &res), 0);
    assert_int_equal(res.status, 202);
    sg_test_response_free(&res);
    assert_int_equal(sg_test_topic_count(cluster.bootstrap, "made.replicated"), 1);
    assert_int_equal(sg_test_proc_stop(&gw), 0);

    /* more replicas than brokers: the broker refuses, and the start fails saying so */
    char topics[128];
    snprintf(topics, sizeof(topics), "[{name: made.impossible, partitions: 1, replication: %d}]", brokers + 1);
    expect_start_refused(topics, "kafka.create_topics: topic made.impossible: ");
    assert_int_equal(describe_topic("made.impossible", &made), -1);

    /* a topic config the broker refuses stops the start too, naming the topic */
    expect_start_refused("[{name: made.misconfigured, config: {cleanup.policy: sometimes}}]",
                         "kafka.create_topics: topic made.misconfigured: ");
    assert_int_equal(describe_topic("made.misconfigured", &made), -1);
}

static void start_instance(sg_test_proc_t *gw)
{
    char config[2048];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\n"
             "data_dir: @DIR@/data\n"
             "kafka: {brokers: \"%s\"}\n"
             "requests: {secret: \"one deployment, one secret\"}\n"
             "routes:\n"
             "  - {name: mi, method: POST, path: /mi, topic: mi.requests, reply: {topic: mi.replies, timeout: 500ms}}\n",
             cluster.bootstrap);
    assert_int_equal(sg_test_gateway_start(gw, config), 0);
}

static void test_request_on_one_instance_polled_on_another(void **state)
{
    sg_test_proc_t a, b;
    start_instance(&a);
    start_instance(&b);
    sg_test_worker_t *worker = sg_test_worker_start(cluster.bootstrap, "mi.requests", 2);
    assert_non_null(worker);

    sg_test_response_t res;
    const char body[] = "{\"delay_ms\":1200,\"status\":\"201\",\"body\":{\"made_on\":\"a\"}}";
    assert_int_equal(sg_test_post_json(&a, "/mi", NULL, body, &res), 0);
    assert_int_equal(res.status, 202); /* the worker takes longer than the route's 500 ms */
    char location[128];
    assert_non_null(sg_test_header(&res, "location", location, sizeof(location)));
    sg_test_response_free(&res);

    /* B has never seen this request, yet knows the id is genuine and pending... */
    assert_int_equal(sg_test_http(&b, "GET", location, NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "\"state\":\"pending\""));
    sg_test_response_free(&res);
    /* ...and, reading every reply partition itself, answers the long-poll when the reply lands */
    assert_int_equal(sg_test_http(&b, "GET", location, "Prefer: wait=10\r\n", NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    json_t *doc = json_loads(res.body, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "done");
    json_t *response = json_object_get(doc, "response");
    assert_int_equal(json_integer_value(json_object_get(response, "status")), 201);
    assert_string_equal(json_string_value(json_object_get(json_object_get(response, "body"), "made_on")), "a");
    json_decref(doc);
    sg_test_response_free(&res);

    sg_test_worker_stop(worker);
    assert_int_equal(sg_test_proc_stop(&a), 0);
    assert_int_equal(sg_test_proc_stop(&b), 0);
}

static void start_table_instance(sg_test_proc_t *gw)
{
    char config[2048];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\n"
             "data_dir: @DIR@/data\n"
             "kafka: {brokers: \"%s\"}\n"
             "routes:\n"
             "  - {name: put, method: PUT, path: \"/profiles/{id}\", topic: tb.profiles, key: \"path:id\"}\n"
             "tables: [{name: profiles, topic: tb.profiles}]\n",
             cluster.bootstrap);
    assert_int_equal(sg_test_gateway_start(gw, config), 0);
}

static void test_write_on_one_instance_read_on_another(void **state)
{
    /* Read-your-writes across instances: the PUT's token, carried to the other gateway, makes
     * it answer only once its own view has applied the write. */
    sg_test_proc_t a, b;
    start_table_instance(&a);
    start_table_instance(&b);
    for (int i = 0; i < 20; ++i) {
        char path[64], body[64], token[512], headers[600];
        snprintf(path, sizeof(path), "/profiles/u%d", i % 3);
        snprintf(body, sizeof(body), "{\"v\":%d}", i);
        sg_test_response_t res;
        assert_int_equal(sg_test_send_json(&a, "PUT", path, NULL, body, &res), 0);
        assert_int_equal(res.status, 202);
        assert_non_null(sg_test_header(&res, "consistency-token", token, sizeof(token)));
        sg_test_response_free(&res);
        snprintf(path, sizeof(path), "/tables/profiles/u%d", i % 3);
        snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\n", token);
        assert_int_equal(sg_test_http(&b, "GET", path, headers, NULL, 0, &res), 0);
        assert_int_equal(res.status, 200);
        assert_string_equal(res.body, body); /* the write itself, never an older value */
        sg_test_response_free(&res);
    }
    assert_int_equal(sg_test_proc_stop(&a), 0);
    assert_int_equal(sg_test_proc_stop(&b), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gateway_on_separate_cluster),
        cmocka_unit_test(test_request_on_one_instance_polled_on_another),
        cmocka_unit_test(test_write_on_one_instance_read_on_another),
        cmocka_unit_test(test_sigterm_finishes_inflight_commands),
        cmocka_unit_test(test_produce_timeout_is_503),
        cmocka_unit_test(test_unknown_outcome_keeps_the_idempotency_key),
        cmocka_unit_test(test_full_producer_queue_is_503),
        cmocka_unit_test(test_not_ready_without_kafka),
        cmocka_unit_test(test_create_topics_failure_stops_the_start),
        cmocka_unit_test(test_create_topics_as_declared),
    };
    return cmocka_run_group_tests_name("integration-cluster", tests, setup, teardown);
}
