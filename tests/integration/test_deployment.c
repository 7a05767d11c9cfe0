/*
 * Several instances of one deployment (README, "Deployments"; DESIGN §8) on one cluster: the
 * mock cluster run by `streamgate cluster`, or real Kafka under tests/kafka/with-cluster.
 *
 * Instances started with the default config (no requests.secret) agree on the request-id secret
 * through the deployment topic, so each answers GET /requests/{id} for the other's requests; an
 * Idempotency-Key sent to two instances at once produces one event and both answers agree; an
 * outcome is replayed by the instance that did not make it; a claims topic that cannot be reached
 * is a 503 with nothing produced; bad deployment settings stop the start, named.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"

static sg_test_proc_t cluster;

static int setup(void **state)
{
    const char *args[] = {"--topic", "dp.commands:3", "--topic", "dp.requests:2", "--topic", "dp.replies:2", NULL};
    return sg_test_cluster_start(&cluster, args);
}

static int teardown(void **state)
{
    return sg_test_stop_procs(&cluster, NULL);
}

/* An instance with the default deployment settings: no requests.secret, no deployment section. */
static void start_instance(sg_test_proc_t *gw, const char *kafka_extra)
{
    char config[2048];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\n"
             "data_dir: @DIR@/data\n"
             "kafka: {brokers: \"%s\"%s}\n"
             "routes:\n"
             "  - {name: cmd, method: POST, path: /cmd, topic: dp.commands, key: \"body:/k\"}\n"
             "  - {name: rr, method: POST, path: /rr, topic: dp.requests, reply: {topic: dp.replies, timeout: 500ms}}\n",
             cluster.bootstrap, kafka_extra != NULL ? kafka_extra : "");
    assert_int_equal(sg_test_gateway_start(gw, config), 0);
}

static int read_data_file(const sg_test_proc_t *gw, const char *name, char *buf, size_t size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/data/%s", gw->dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (int)n;
}

/* A request made on `from` (the worker answers after 1.2 s; the route waits 500 ms), then polled
 * on `to`: pending at first, then done with the worker's answer. */
static void request_polled_elsewhere(sg_test_proc_t *from, sg_test_proc_t *to, const char *name)
{
    char body[128], location[128];
    snprintf(body, sizeof(body), "{\"delay_ms\":1200,\"status\":\"201\",\"body\":{\"made_on\":\"%s\"}}", name);
    sg_test_response_t res;
    assert_int_equal(sg_test_post_json(from, "/rr", NULL, body, &res), 0);
    assert_int_equal(res.status, 202);
    assert_non_null(sg_test_header(&res, "location", location, sizeof(location)));
    sg_test_response_free(&res);

    assert_int_equal(sg_test_http(to, "GET", location, NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "\"state\":\"pending\""));
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(to, "GET", location, "Prefer: wait=10\r\n", NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    json_t *doc = json_loads(res.body, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "done");
    json_t *response = json_object_get(doc, "response");
    assert_int_equal(json_integer_value(json_object_get(response, "status")), 201);
    assert_string_equal(json_string_value(json_object_get(json_object_get(response, "body"), "made_on")), name);
    json_decref(doc);
    sg_test_response_free(&res);
}

static void test_default_instances_share_the_secret(void **state)
{
    sg_test_proc_t a, b;
    start_instance(&a, NULL);
    start_instance(&b, NULL);
    sg_test_worker_t *worker = sg_test_worker_start(cluster.bootstrap, "dp.requests", 2);
    assert_non_null(worker);

    request_polled_elsewhere(&a, &b, "a");
    request_polled_elsewhere(&b, &a, "b");

    /* one secret, cached by each; two instances, each with a name of its own */
    char secret_a[64], secret_b[64], id_a[160], id_b[160];
    assert_int_equal(read_data_file(&a, "request.secret", secret_a, sizeof(secret_a)), 32);
    assert_int_equal(read_data_file(&b, "request.secret", secret_b, sizeof(secret_b)), 32);
    assert_memory_equal(secret_a, secret_b, 32);
    assert_true(read_data_file(&a, "instance.id", id_a, sizeof(id_a)) > 3);
    assert_true(read_data_file(&b, "instance.id", id_b, sizeof(id_b)) > 3);
    assert_string_not_equal(id_a, id_b);

    /* a forged id is still unknown everywhere */
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&b, "GET", "/requests/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, NULL, 0, &res), 0);
    sg_test_assert_problem(&res, 404, "unknown-request", "id");
    sg_test_response_free(&res);

    /* a restarted instance keeps the deployment's secret: its old ids still answer elsewhere */
    assert_int_equal(sg_test_gateway_restart(&a), 0);
    request_polled_elsewhere(&a, &b, "a again");

    sg_test_worker_stop(worker);
    assert_int_equal(sg_test_proc_stop(&a), 0);
    assert_int_equal(sg_test_proc_stop(&b), 0);
}

typedef struct {
    sg_test_proc_t *gw;
    const char *path;
    char key[64];
    char body[160];
    const char *extra; /* more request headers, or NULL */
    int status;
    char replayed[16];
    char token[512];
    char body_out[512];
} call_t;

static void *send_call(void *arg)
{
    call_t *call = arg;
    char headers[512];
    snprintf(headers, sizeof(headers), "Idempotency-Key: %s\r\n%s", call->key, call->extra != NULL ? call->extra : "");
    sg_test_response_t res;
    call->status = -1;
    if (sg_test_post_json(call->gw, call->path, headers, call->body, &res) == 0) {
        call->status = res.status;
        if (sg_test_header(&res, "idempotent-replayed", call->replayed, sizeof(call->replayed)) == NULL)
            call->replayed[0] = '\0';
        if (sg_test_header(&res, "consistency-token", call->token, sizeof(call->token)) == NULL)
            call->token[0] = '\0';
        snprintf(call->body_out, sizeof(call->body_out), "%s", res.body != NULL ? res.body : "");
        sg_test_response_free(&res);
    }
    return NULL;
}

static void test_same_key_on_two_instances_at_once(void **state)
{
    enum { KEYS = 50, AT_ONCE = 10 };
    sg_test_proc_t a, b;
    start_instance(&a, NULL);
    start_instance(&b, NULL);
    int64_t before = sg_test_topic_count(cluster.bootstrap, "dp.commands");
    static call_t on_a[KEYS], on_b[KEYS];
    int replays = 0, in_flight = 0;
    for (int round = 0; round < KEYS / AT_ONCE; ++round) {
        pthread_t threads[2 * AT_ONCE];
        for (int i = 0; i < AT_ONCE; ++i) {
            int k = round * AT_ONCE + i;
            call_t *pair[2] = {&on_a[k], &on_b[k]};
            for (int j = 0; j < 2; ++j) {
                memset(pair[j], 0, sizeof(call_t));
                pair[j]->gw = j == 0 ? &a : &b;
                pair[j]->path = "/cmd";
                snprintf(pair[j]->key, sizeof(pair[j]->key), "twice-%d", k);
                snprintf(pair[j]->body, sizeof(pair[j]->body), "{\"k\":\"twice-%d\",\"n\":%d}", k, k);
            }
            pthread_create(&threads[2 * i], NULL, send_call, &on_a[k]);
            pthread_create(&threads[2 * i + 1], NULL, send_call, &on_b[k]);
        }
        for (int i = 0; i < 2 * AT_ONCE; ++i)
            pthread_join(threads[i], NULL);
    }
    for (int k = 0; k < KEYS; ++k) {
        call_t *first = on_a[k].status == 202 && on_a[k].replayed[0] == '\0' ? &on_a[k] : &on_b[k];
        call_t *second = first == &on_a[k] ? &on_b[k] : &on_a[k];
        /* exactly one produced; the other replays it, or was told it is in flight */
        if (first->status != 202 || first->replayed[0] != '\0')
            fail_msg("key %d: no first outcome: a %d %s, b %d %s", k, on_a[k].status, on_a[k].body_out, on_b[k].status,
                     on_b[k].body_out);
        if (second->status == 202) {
            assert_string_equal(second->replayed, "true");
            assert_string_equal(second->body_out, first->body_out);
            assert_string_equal(second->token, first->token);
            ++replays;
        } else {
            if (second->status != 409 || strstr(second->body_out, "idempotency-key-in-flight") == NULL)
                fail_msg("key %d: %d %s", k, second->status, second->body_out);
            ++in_flight;
        }
    }
    fprintf(stderr, "%d keys sent to two instances at once: %d replays, %d in flight\n", KEYS, replays, in_flight);
    assert_int_equal(sg_test_topic_count(cluster.bootstrap, "dp.commands"), before + KEYS);

    /* afterwards both instances replay the one outcome, and each event is the key's */
    for (int k = 0; k < KEYS; ++k) {
        call_t *first = on_a[k].status == 202 && on_a[k].replayed[0] == '\0' ? &on_a[k] : &on_b[k];
        for (int j = 0; j < 2; ++j) {
            call_t again = on_a[k];
            again.gw = j == 0 ? &a : &b;
            send_call(&again);
            assert_int_equal(again.status, 202);
            assert_string_equal(again.replayed, "true");
            assert_string_equal(again.body_out, first->body_out);
        }
        if (k % 10 == 0) {
            json_t *doc = json_loads(first->body_out, 0, NULL);
            assert_non_null(doc);
            sg_test_record_t rec;
            assert_int_equal(sg_test_consume(cluster.bootstrap, "dp.commands",
                                             (int32_t)json_integer_value(json_object_get(doc, "partition")),
                                             json_integer_value(json_object_get(doc, "offset")), &rec),
                             0);
            char key[64];
            snprintf(key, sizeof(key), "twice-%d", k);
            assert_string_equal(rec.key, key);
            sg_test_record_free(&rec);
            json_decref(doc);
        }
    }
    assert_int_equal(sg_test_topic_count(cluster.bootstrap, "dp.commands"), before + KEYS);
    assert_int_equal(sg_test_proc_stop(&a), 0);
    assert_int_equal(sg_test_proc_stop(&b), 0);
}

static void test_outcome_replayed_by_the_other_instance(void **state)
{
    sg_test_proc_t a, b;
    start_instance(&a, NULL);
    start_instance(&b, NULL);
    int64_t commands = sg_test_topic_count(cluster.bootstrap, "dp.commands");

    /* a command route: the 202 made on a is b's answer to the same key, at once */
    call_t first = {.gw = &a, .path = "/cmd", .key = "made-on-a", .body = "{\"k\":\"made-on-a\"}"};
    send_call(&first);
    assert_int_equal(first.status, 202);
    assert_string_equal(first.replayed, "");
    call_t again = first;
    again.gw = &b;
    send_call(&again);
    assert_int_equal(again.status, 202);
    assert_string_equal(again.replayed, "true");
    assert_string_equal(again.body_out, first.body_out);
    assert_string_equal(again.token, first.token);
    /* the same key with another body is refused there too */
    call_t other = first;
    other.gw = &b;
    snprintf(other.body, sizeof(other.body), "{\"k\":\"made-on-a\",\"changed\":true}");
    send_call(&other);
    assert_int_equal(other.status, 422);
    assert_non_null(strstr(other.body_out, "idempotency-key-reused"));
    assert_int_equal(sg_test_topic_count(cluster.bootstrap, "dp.commands"), commands + 1);

    /* a reply route: once b has recorded the reply to a's request, b replays it */
    sg_test_worker_t *worker = sg_test_worker_start(cluster.bootstrap, "dp.requests", 2);
    assert_non_null(worker);
    int64_t requests = sg_test_topic_count(cluster.bootstrap, "dp.requests");
    call_t async = {
        .gw = &b, .path = "/rr", .key = "reply-made-on-a", .body = "{\"delay_ms\":300,\"status\":\"201\",\"body\":{\"paid\":12}}"};
    sg_test_response_t res;
    char headers[256], location[128];
    snprintf(headers, sizeof(headers), "Idempotency-Key: %s\r\nPrefer: respond-async\r\n", async.key);
    assert_int_equal(sg_test_post_json(&a, "/rr", headers, async.body, &res), 0);
    assert_int_equal(res.status, 202);
    assert_non_null(sg_test_header(&res, "location", location, sizeof(location)));
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&b, "GET", location, "Prefer: wait=10\r\n", NULL, 0, &res), 0);
    assert_non_null(strstr(res.body, "\"state\":\"done\""));
    sg_test_response_free(&res);
    send_call(&async);
    assert_int_equal(async.status, 201);
    assert_string_equal(async.replayed, "true");
    assert_string_equal(async.body_out, "{\"paid\":12}");
    assert_int_equal(sg_test_topic_count(cluster.bootstrap, "dp.requests"), requests + 1);

    sg_test_worker_stop(worker);
    assert_int_equal(sg_test_proc_stop(&a), 0);
    assert_int_equal(sg_test_proc_stop(&b), 0);
}

static void test_claims_topic_unavailable(void **state)
{
    /* Without brokers a keyed request is refused within the produce timeout, never produced
     * unguarded; once they are back, a retry goes through (after at most a few 409s, while the
     * withdrawn claim's release reaches the log), and produces once. */
    sg_test_proc_t gw;
    start_instance(&gw, ", produce_timeout: 1s");
    int64_t before = sg_test_topic_count(cluster.bootstrap, "dp.commands");
    assert_int_equal(sg_test_cluster_freeze(&cluster), 0);
    call_t call = {.gw = &gw, .path = "/cmd", .key = "while-frozen", .body = "{\"k\":\"while-frozen\"}"};
    int64_t start = sg_test_now_ms();
    send_call(&call);
    int64_t took = sg_test_now_ms() - start;
    assert_int_equal(call.status, 503);
    assert_non_null(strstr(call.body_out, "urn:streamgate:problem:store-unavailable"));
    assert_true(took < 8000);
    assert_int_equal(sg_test_cluster_thaw(&cluster), 0);
    assert_int_equal(sg_test_topic_count(cluster.bootstrap, "dp.commands"), before);

    int64_t until = sg_test_now_ms() + 30000;
    do {
        send_call(&call);
        if (call.status == 202)
            break;
        if (call.status != 409 && call.status != 503)
            fail_msg("%d %s", call.status, call.body_out);
        sg_test_sleep_ms(200);
    } while (sg_test_now_ms() < until);
    assert_int_equal(call.status, 202);
    assert_string_equal(call.replayed, "");
    assert_int_equal(sg_test_topic_count(cluster.bootstrap, "dp.commands"), before + 1);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
}

static void test_deployment_config_errors(void **state)
{
    /* the name becomes part of topic names: a '.' is refused by --check and at start */
    char out[4096];
    char *path = sg_test_write_temp("c.yaml", "deployment: {name: shop.eu}\n");
    assert_non_null(path);
    const char *check[] = {sg_test_binary(), "--check", path, NULL};
    assert_int_equal(sg_test_run(check, out, sizeof(out)), 2);
    if (strstr(out, "c.yaml:1: deployment.name: invalid deployment name \"shop.eu\"") == NULL)
        fail_msg("unexpected output: %s", out);
    sg_test_remove_temp(path);

    /* an instance.id that does not hold a name stops the start, naming the file */
    char text[1024];
    snprintf(text, sizeof(text), "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\nkafka: {brokers: \"%s\"}\n", cluster.bootstrap);
    path = sg_test_write_temp("c.yaml", text);
    assert_non_null(path);
    char data[512];
    snprintf(data, sizeof(data), "%.*s/data", (int)(strrchr(path, '/') - path), path);
    assert_int_equal(mkdir(data, 0755), 0);
    char id_path[600];
    snprintf(id_path, sizeof(id_path), "%s/instance.id", data);
    FILE *f = fopen(id_path, "w");
    assert_non_null(f);
    fputs("two words\n", f);
    fclose(f);
    const char *run[] = {sg_test_binary(), path, NULL};
    assert_int_equal(sg_test_run(run, out, sizeof(out)), 1);
    if (strstr(out, "instance.id: not an instance name") == NULL)
        fail_msg("unexpected output: %s", out);
    sg_test_remove_temp(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_instances_share_the_secret),
        cmocka_unit_test(test_same_key_on_two_instances_at_once),
        cmocka_unit_test(test_outcome_replayed_by_the_other_instance),
        cmocka_unit_test(test_claims_topic_unavailable),
        cmocka_unit_test(test_deployment_config_errors),
    };
    return cmocka_run_group_tests_name("integration-deployment", tests, setup, teardown);
}
