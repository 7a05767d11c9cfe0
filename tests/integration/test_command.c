/*
 * Command routes end to end: the real gateway on the embedded cluster, a real HTTP client, and
 * a separate librdkafka consumer that reads back what the 202 promised.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"
#include "sg_token.h"

static const char config[] = "listen: [\"127.0.0.1:0\"]\n"
                             "threads: 2\n"
                             "data_dir: @DIR@/data\n"
                             "topics:\n"
                             "  - {name: orders.commands, partitions: 4}\n"
                             "  - {name: profiles, partitions: 2}\n"
                             "routes:\n"
                             "  - {name: place-order, method: POST, path: /orders, topic: orders.commands, key: "
                             "\"body:/customerId\"}\n"
                             "  - {name: put-profile, method: PUT, path: \"/profiles/{id}\", topic: profiles, key: "
                             "\"path:id\"}\n"
                             "  - {name: tagged, method: POST, path: /tagged, topic: profiles, key: \"header:X-Tenant\"}\n"
                             "  - {name: keyless, method: POST, path: /keyless, topic: profiles, key: none}\n"
                             "cors: {origins: [\"http://app.example\"]}\n";

static sg_test_proc_t gw;

static int setup(void **state)
{
    return sg_test_gateway_start(&gw, config);
}

static int teardown(void **state)
{
    /* A clean SIGTERM shutdown exits 0: part of what this suite checks. */
    return sg_test_stop_procs(&gw, NULL);
}

typedef struct {
    int32_t partition;
    int64_t offset;
    char topic[64];
    char token[512];
    int64_t stream_time;
} accepted_t;

/* POSTs/PUTs a JSON body and checks the 202 contract; fills `out`. */
static void send_command(const char *method, const char *path, const char *headers, const char *body, accepted_t *out)
{
    sg_test_response_t res;
    assert_int_equal(sg_test_send_json(&gw, method, path, headers, body, &res), 0);
    if (res.status != 202)
        fprintf(stderr, "unexpected %d: %s\n", res.status, res.body);
    assert_int_equal(res.status, 202);
    char ct[128];
    assert_non_null(sg_test_header(&res, "content-type", ct, sizeof(ct)));
    assert_string_equal(ct, "application/json");
    json_error_t jerr;
    json_t *doc = json_loads(res.body, 0, &jerr);
    assert_non_null(doc);
    const char *topic = NULL;
    json_int_t partition = -1, offset = -1;
    assert_int_equal(json_unpack(doc, "{s:s, s:I, s:I}", "topic", &topic, "partition", &partition, "offset", &offset), 0);
    snprintf(out->topic, sizeof(out->topic), "%s", topic);
    out->partition = (int32_t)partition;
    out->offset = offset;
    json_decref(doc);
    assert_non_null(sg_test_header(&res, "consistency-token", out->token, sizeof(out->token)));
    sg_test_response_free(&res);

    /* The token encodes exactly the acknowledged position. */
    char err[256];
    sg_token_t *token = sg_token_decode(out->token, strlen(out->token), err, sizeof(err));
    assert_non_null(token);
    assert_int_equal(sg_token_count(token), 1);
    int64_t token_offset = -1, stream_time = -1;
    assert_int_equal(sg_token_get(token, out->topic, out->partition, &token_offset, &stream_time), 0);
    assert_int_equal(token_offset, out->offset);
    assert_true(stream_time > 1600000000000LL);
    out->stream_time = stream_time;
    sg_token_destroy(token);
}

static void test_post_is_in_kafka_before_202(void **state)
{
    const char body[] = "{\"customerId\":\"c-42\",\"amount\":12.5,\"items\":[1,2]}";
    const char *traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    char headers[256];
    snprintf(headers, sizeof(headers), "traceparent: %s\r\n", traceparent);
    accepted_t acc;
    send_command("POST", "/orders", headers, body, &acc);
    assert_string_equal(acc.topic, "orders.commands");
    assert_true(acc.partition >= 0 && acc.partition < 4);

    sg_test_record_t rec;
    assert_int_equal(sg_test_consume(gw.bootstrap, acc.topic, acc.partition, acc.offset, &rec), 0);
    assert_string_equal(rec.key, "c-42");
    assert_int_equal(rec.timestamp_ms, acc.stream_time); /* the token's stream time is the record's */
    assert_int_equal(rec.value_len, strlen(body));
    assert_memory_equal(rec.value, body, strlen(body)); /* the body, byte for byte */
    char value[128];
    assert_non_null(sg_test_record_header(&rec, "kafka_correlationId", value, sizeof(value)));
    assert_int_equal(strlen(value), 32); /* request id: 24 bytes (fields + MAC), base64url */
    assert_int_equal(strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 32);
    assert_null(sg_test_record_header(&rec, "kafka_replyTopic", value, sizeof(value))); /* no reply route */
    assert_non_null(sg_test_record_header(&rec, "content-type", value, sizeof(value)));
    assert_string_equal(value, "application/json");
    assert_non_null(sg_test_record_header(&rec, "streamgate-route", value, sizeof(value)));
    assert_string_equal(value, "place-order");
    /* traceparent: same trace, flags kept, a new span for our hop */
    assert_non_null(sg_test_record_header(&rec, "traceparent", value, sizeof(value)));
    assert_int_equal(strlen(value), 55);
    assert_memory_equal(value, traceparent, 36);
    assert_memory_not_equal(value + 36, traceparent + 36, 16);
    assert_string_equal(value + 52, "-01");
    sg_test_record_free(&rec);
}

static void test_same_key_same_partition_increasing_offsets(void **state)
{
    accepted_t first, second;
    send_command("POST", "/orders", NULL, "{\"customerId\":\"same\",\"n\":1}", &first);
    send_command("POST", "/orders", NULL, "{\"customerId\":\"same\",\"n\":2}", &second);
    assert_int_equal(first.partition, second.partition);
    assert_true(second.offset > first.offset);
}

static void test_integer_body_key(void **state)
{
    accepted_t acc;
    send_command("POST", "/orders", NULL, "{\"customerId\":12345}", &acc);
    sg_test_record_t rec;
    assert_int_equal(sg_test_consume(gw.bootstrap, acc.topic, acc.partition, acc.offset, &rec), 0);
    assert_string_equal(rec.key, "12345");
    sg_test_record_free(&rec);
}

static void test_path_key_is_percent_decoded(void **state)
{
    accepted_t acc;
    send_command("PUT", "/profiles/user%201", NULL, "{\"name\":\"Ada\"}", &acc);
    assert_string_equal(acc.topic, "profiles");
    sg_test_record_t rec;
    assert_int_equal(sg_test_consume(gw.bootstrap, acc.topic, acc.partition, acc.offset, &rec), 0);
    assert_string_equal(rec.key, "user 1");
    assert_string_equal(rec.value, "{\"name\":\"Ada\"}");
    char value[128];
    assert_non_null(sg_test_record_header(&rec, "traceparent", value, sizeof(value)));
    assert_int_equal(strlen(value), 55); /* generated when the client sent none */
    assert_memory_equal(value, "00-", 3);
    sg_test_record_free(&rec);
}

static void test_header_key_and_no_key(void **state)
{
    accepted_t acc;
    send_command("POST", "/tagged", "X-Tenant: acme\r\n", "[1,2,3]", &acc);
    sg_test_record_t rec;
    assert_int_equal(sg_test_consume(gw.bootstrap, acc.topic, acc.partition, acc.offset, &rec), 0);
    assert_string_equal(rec.key, "acme");
    assert_string_equal(rec.value, "[1,2,3]");
    sg_test_record_free(&rec);

    send_command("POST", "/keyless", NULL, "\"just a string\"", &acc);
    assert_int_equal(sg_test_consume(gw.bootstrap, acc.topic, acc.partition, acc.offset, &rec), 0);
    assert_int_equal(rec.key_len, 0);
    assert_string_equal(rec.value, "\"just a string\"");
    sg_test_record_free(&rec);
}

static void test_health_and_ready(void **state)
{
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gw, "GET", "/healthz", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"status\":\"ok\"}");
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "GET", "/readyz", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "POST", "/readyz", NULL, "", 0, &res), 0);
    assert_int_equal(res.status, 405);
    sg_test_response_free(&res);
}

static void test_cors(void **state)
{
    char value[256];
    sg_test_response_t res;
    /* preflight from an allowed origin */
    assert_int_equal(sg_test_http(&gw, "OPTIONS", "/orders",
                                  "Origin: http://app.example\r\nAccess-Control-Request-Method: POST\r\n"
                                  "Access-Control-Request-Headers: content-type\r\n",
                                  NULL, 0, &res),
                     0);
    assert_int_equal(res.status, 204);
    assert_string_equal(sg_test_header(&res, "access-control-allow-origin", value, sizeof(value)), "http://app.example");
    assert_string_equal(sg_test_header(&res, "access-control-allow-methods", value, sizeof(value)), "POST, OPTIONS");
    assert_non_null(strstr(sg_test_header(&res, "access-control-allow-headers", value, sizeof(value)), "Content-Type"));
    sg_test_response_free(&res);

    /* preflight from another origin is refused */
    assert_int_equal(sg_test_http(&gw, "OPTIONS", "/orders",
                                  "Origin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\n", NULL, 0, &res),
                     0);
    assert_int_equal(res.status, 403);
    assert_null(sg_test_header(&res, "access-control-allow-origin", value, sizeof(value)));
    sg_test_response_free(&res);

    /* the actual request carries the CORS headers, and exposes the token */
    const char body[] = "{\"customerId\":\"cors\"}";
    assert_int_equal(sg_test_http(&gw, "POST", "/orders", "Origin: http://app.example\r\nContent-Type: application/json\r\n", body,
                                  strlen(body), &res),
                     0);
    assert_int_equal(res.status, 202);
    assert_string_equal(sg_test_header(&res, "access-control-allow-origin", value, sizeof(value)), "http://app.example");
    assert_non_null(strstr(sg_test_header(&res, "access-control-expose-headers", value, sizeof(value)), "Consistency-Token"));
    sg_test_response_free(&res);
}

static void test_http2_and_keepalive(void **state)
{
    char url[128], out[8192];
    snprintf(url, sizeof(url), "http://%s:%u/orders", gw.host, gw.port);
    /* h2c with prior knowledge: 40 POSTs, 4 at a time, on one connection */
    const char *one_connection[] = {"-c", "1", "-m", "4", NULL};
    sg_test_h2load(&gw, "/orders", "{\"customerId\":\"h2\"}", 40, one_connection);
    /* Bodies beyond the 1 KB buffers an HTTP/2 stream starts with (gateway/server.c), over several
     * DATA frames: each arrives whole (a cut body would be malformed JSON: 400, not 202). */
    static char big[40 * 1024];
    int len = snprintf(big, sizeof(big), "{\"customerId\":\"big\",\"pad\":\"");
    memset(big + len, 'x', sizeof(big) - (size_t)len - 3);
    memcpy(big + sizeof(big) - 3, "\"}", 3);
    sg_test_h2load(&gw, "/orders", big, 8, one_connection);

    /* HTTP/1.1 Upgrade: h2c */
    const char *upgrade[] = {"/usr/bin/curl",
                             "-sS",
                             "--http2",
                             "-o",
                             "/dev/null",
                             "-w",
                             "%{http_version} %{http_code}",
                             "-H",
                             "Content-Type: application/json",
                             "--data",
                             "{\"customerId\":\"up\"}",
                             url,
                             NULL};
    assert_int_equal(sg_test_run(upgrade, out, sizeof(out)), 0);
    assert_string_equal(out, "2 202");

    /* HTTP/1.1 keep-alive: the second request reuses the connection (0 new connects) */
    const char *keepalive[] = {"/usr/bin/curl",
                               "-sS",
                               "--http1.1",
                               "-o",
                               "/dev/null",
                               "-w",
                               "%{http_version} %{http_code} %{num_connects}\\n",
                               "-H",
                               "Content-Type: application/json",
                               "--data",
                               "{\"customerId\":\"h1\"}",
                               url,
                               "--next",
                               "--http1.1",
                               "-o",
                               "/dev/null",
                               "-w",
                               "%{http_version} %{http_code} %{num_connects}\\n",
                               "-H",
                               "Content-Type: application/json",
                               "--data",
                               "{\"customerId\":\"h1b\"}",
                               url,
                               NULL};
    assert_int_equal(sg_test_run(keepalive, out, sizeof(out)), 0);
    assert_string_equal(out, "1.1 202 1\n1.1 202 0\n");
}

static void test_concurrent_load_on_every_loop(void **state)
{
    /* Both loops busy at once, HTTP/1.1 and HTTP/2: every request must be a 202. (A loop context
     * built on the wrong thread corrupted the heap within a second of this.) */
    const char *h1[] = {"--h1", "-c", "32", "-t", "2", NULL};
    sg_test_h2load(&gw, "/orders", "{\"customerId\":\"load\"}", 20000, h1);
    const char *h2[] = {"-c", "16", "-m", "8", "-t", "2", NULL};
    sg_test_h2load(&gw, "/orders", "{\"customerId\":\"load\"}", 20000, h2);
}

static void test_idempotency_key_replays_the_first_202(void **state)
{
    int64_t before = sg_test_topic_count(gw.bootstrap, "orders.commands");
    const char body[] = "{\"customerId\":\"idem\",\"n\":1}";
    sg_test_response_t first, again, quoted, other;
    const char *headers = "Content-Type: application/json\r\nIdempotency-Key: order-123\r\n";
    assert_int_equal(sg_test_http(&gw, "POST", "/orders", headers, body, strlen(body), &first), 0);
    assert_int_equal(first.status, 202);
    char value[512], token[512];
    assert_null(sg_test_header(&first, "idempotent-replayed", value, sizeof(value)));
    assert_non_null(sg_test_header(&first, "consistency-token", token, sizeof(token)));

    assert_int_equal(sg_test_http(&gw, "POST", "/orders", headers, body, strlen(body), &again), 0);
    assert_int_equal(again.status, 202);
    assert_string_equal(again.body, first.body); /* same topic, partition and offset */
    assert_string_equal(sg_test_header(&again, "idempotent-replayed", value, sizeof(value)), "true");
    assert_string_equal(sg_test_header(&again, "consistency-token", value, sizeof(value)), token);

    /* the quoted form is the same key */
    assert_int_equal(sg_test_http(&gw, "POST", "/orders", "Content-Type: application/json\r\nIdempotency-Key: \"order-123\"\r\n",
                                  body, strlen(body), &quoted),
                     0);
    assert_int_equal(quoted.status, 202);
    assert_string_equal(quoted.body, first.body);

    /* same key, different body */
    const char changed[] = "{\"customerId\":\"idem\",\"n\":2}";
    assert_int_equal(sg_test_http(&gw, "POST", "/orders", headers, changed, strlen(changed), &other), 0);
    sg_test_assert_problem(&other, 422, "idempotency-key-reused", "Idempotency-Key");
    sg_test_response_free(&first);
    sg_test_response_free(&again);
    sg_test_response_free(&quoted);
    sg_test_response_free(&other);

    /* malformed keys */
    const char *bad[] = {"Idempotency-Key: has space\r\n", "Idempotency-Key: \"\"\r\n"};
    for (size_t i = 0; i < 2; ++i) {
        assert_int_equal(sg_test_post_json(&gw, "/orders", bad[i], body, &other), 0);
        sg_test_assert_problem(&other, 400, "invalid-idempotency-key", "Idempotency-Key");
        sg_test_response_free(&other);
    }
    /* one event in Kafka for all of that */
    assert_int_equal(sg_test_topic_count(gw.bootstrap, "orders.commands"), before + 1);
}

static void test_log_append_time_topic(void **state)
{
    /* A topic whose broker stamps records (message.timestamp.type=LogAppendTime): the 202's token
     * carries the broker's timestamp, the one readers see, not the gateway's CreateTime. */
    SG_TEST_REAL_ONLY("the mock cluster has no topic configs (no LogAppendTime)");
    const char *configs[] = {"message.timestamp.type", "LogAppendTime", NULL};
    assert_int_equal(sg_test_create_topic(gw.bootstrap, "orders.appended", 2, -1, configs), 0);
    sg_test_proc_t appended;
    assert_int_equal(sg_test_gateway_start(&appended, "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\n"
                                                      "routes: [{name: a, method: PUT, path: \"/a/{id}\", topic: "
                                                      "orders.appended, key: \"path:id\"}]\n"),
                     0);
    sg_test_response_t res;
    assert_int_equal(sg_test_send_json(&appended, "PUT", "/a/k", NULL, "{\"a\":1}", &res), 0);
    assert_int_equal(res.status, 202);
    json_t *doc = json_loads(res.body, 0, NULL);
    assert_non_null(doc);
    int32_t partition = (int32_t)json_integer_value(json_object_get(doc, "partition"));
    int64_t offset = json_integer_value(json_object_get(doc, "offset"));
    json_decref(doc);
    char text[512], err[256];
    assert_non_null(sg_test_header(&res, "consistency-token", text, sizeof(text)));
    sg_test_response_free(&res);
    sg_token_t *token = sg_token_decode(text, strlen(text), err, sizeof(err));
    assert_non_null(token);
    int64_t token_offset = -1, stream_time = -1;
    assert_int_equal(sg_token_get(token, "orders.appended", partition, &token_offset, &stream_time), 0);
    sg_token_destroy(token);
    assert_int_equal(token_offset, offset);
    sg_test_record_t rec;
    assert_int_equal(sg_test_consume(gw.bootstrap, "orders.appended", partition, offset, &rec), 0);
    assert_true(rec.log_append_time);
    assert_int_equal(rec.timestamp_ms, stream_time);
    sg_test_record_free(&rec);
    assert_int_equal(sg_test_proc_stop(&appended), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_is_in_kafka_before_202),
        cmocka_unit_test(test_same_key_same_partition_increasing_offsets),
        cmocka_unit_test(test_integer_body_key),
        cmocka_unit_test(test_path_key_is_percent_decoded),
        cmocka_unit_test(test_header_key_and_no_key),
        cmocka_unit_test(test_health_and_ready),
        cmocka_unit_test(test_cors),
        cmocka_unit_test(test_idempotency_key_replays_the_first_202),
        cmocka_unit_test(test_log_append_time_topic),
        cmocka_unit_test(test_http2_and_keepalive),
        cmocka_unit_test(test_concurrent_load_on_every_loop),
    };
    return cmocka_run_group_tests_name("integration-command", tests, setup, teardown);
}
