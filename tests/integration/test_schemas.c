/*
 * Data contracts end to end: a route with a schema validates its body (422 naming the field,
 * nothing produced); format avro produces Confluent-framed Avro that the Apache Avro Python
 * library (python3-avro, through py_avro.py) decodes; a table over that topic serves it as JSON;
 * a record Python framed is read back through the table; a reply in the Confluent wire format is
 * answered as JSON, and one with an unknown schema id is a 502.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "harness.h"

static const char schema_text[] =
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"items\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"Item\",\"fields\":["
    "{\"name\":\"sku\",\"type\":\"string\"},"
    "{\"name\":\"price\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":10,\"scale\":2}}]}}},"
    "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"placed\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}}]}";

static sg_test_proc_t gw;
static char *schema_file;
static sg_test_worker_t *worker;

static int setup(void **state)
{
    schema_file = sg_test_write_temp("order.avsc", schema_text);
    if (schema_file == NULL)
        return -1;
    char config[4096];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\n"
             "data_dir: @DIR@/data\n"
             "topics: [{name: orders, partitions: 2}, {name: orders.json, partitions: 1},\n"
             "         {name: calls, partitions: 1}, {name: calls.replies, partitions: 1}]\n"
             "schemas: [{name: Order, file: \"%s\"}]\n"
             "routes:\n"
             "  - {name: order-json, method: POST, path: /orders-json, topic: orders.json, key: \"body:/id\", "
             "schema: Order}\n"
             "  - {name: order-avro, method: POST, path: /orders, topic: orders, key: \"body:/id\", schema: Order, "
             "format: avro}\n"
             "  - {name: call, method: POST, path: /calls, topic: calls, key: none, reply: {topic: calls.replies, "
             "timeout: 5s}}\n"
             "tables: [{name: orders, topic: orders}]\n",
             schema_file);
    if (sg_test_gateway_start(&gw, config) != 0)
        return -1;
    worker = sg_test_worker_start(gw.bootstrap, "calls", 1);
    return worker != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    sg_test_worker_stop(worker);
    int rc = sg_test_stop_procs(&gw, NULL);
    sg_test_remove_temp(schema_file);
    return rc;
}

static const char *py_avro(void)
{
    static char path[1024];
    const char *root = getenv("SG_SOURCE_ROOT");
    snprintf(path, sizeof(path), "%s/tests/integration/py_avro.py", root ? root : ".");
    return path;
}

/* Runs py_avro.py with `input` on stdin; returns its stdout (owned) and its length. */
static char *run_py(const char *args, const void *input, size_t input_len, size_t *out_len)
{
    char *in_file = sg_test_write_temp("py-in", "");
    assert_non_null(in_file);
    FILE *in = fopen(in_file, "wb");
    assert_non_null(in);
    assert_int_equal(fwrite(input, 1, input_len, in), input_len);
    fclose(in);
    char command[4096];
    snprintf(command, sizeof(command), "/usr/bin/python3 %s %s < %s", py_avro(), args, in_file);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    char *out = malloc(65536);
    size_t len = fread(out, 1, 65535, pipe);
    out[len] = '\0';
    int status = pclose(pipe);
    sg_test_remove_temp(in_file);
    if (status != 0)
        fprintf(stderr, "%s: exit %d\n", command, status);
    assert_int_equal(status, 0);
    *out_len = len;
    return out;
}

static void post(const char *path, const char *body, sg_test_response_t *res)
{
    assert_int_equal(sg_test_post_json(&gw, path, NULL, body, res), 0);
}

static void test_json_route_validates_against_the_schema(void **state)
{
    static const char good[] = "{\"id\":\"j-1\",\"items\":[{\"sku\":\"a\",\"price\":\"12.50\"}],\"placed\":1700000000000}";
    sg_test_response_t res;
    post("/orders-json", good, &res);
    assert_int_equal(res.status, 202);
    sg_test_response_free(&res);
    /* produced as sent (JSON), byte for byte */
    sg_test_record_t rec;
    assert_int_equal(sg_test_consume(gw.bootstrap, "orders.json", 0, 0, &rec), 0);
    assert_int_equal(rec.value_len, strlen(good));
    assert_memory_equal(rec.value, good, strlen(good));
    sg_test_record_free(&rec);

    static const struct {
        const char *body;
        const char *field;
        const char *why;
    } bad[] = {
        {"{\"id\":\"j-2\",\"items\":[{\"sku\":\"a\",\"price\":1},{\"sku\":\"b\",\"price\":\"abc\"}],\"placed\":1}",
         "/items/1/price", "decimal"},
        {"{\"id\":\"j-3\",\"placed\":1}", "/items", "missing"},
        {"{\"id\":\"j-4\",\"items\":[],\"placed\":\"yesterday\"}", "/placed", "timestamp"},
        {"{\"id\":\"j-5\",\"items\":[],\"placed\":1,\"colour\":\"red\"}", "/colour", "unknown"},
        {"{\"id\":\"j-6\",\"items\":[{\"sku\":7,\"price\":1}],\"placed\":1}", "/items/0/sku", "string"},
        {"{\"id\":\"j-7\",\"items\":[],\"placed\":1,\"note\":5}", "/note", ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        post("/orders-json", bad[i].body, &res);
        char field[128];
        snprintf(field, sizeof(field), "\"field\":\"%s\"", bad[i].field);
        if (res.status != 422 || strstr(res.body, field) == NULL || strstr(res.body, bad[i].why) == NULL)
            fprintf(stderr, "%s -> %d %s\n", bad[i].body, res.status, res.body);
        sg_test_assert_problem(&res, 422, "schema-violation", bad[i].field);
        assert_non_null(strstr(res.body, field));
        assert_non_null(strstr(res.body, bad[i].why));
        sg_test_response_free(&res);
    }
    assert_int_equal(sg_test_topic_count(gw.bootstrap, "orders.json"), 1); /* nothing else produced */
}

/* The registered id of the route's subject, from the registry API. */
static long latest_id(const char *subject)
{
    char path[256];
    snprintf(path, sizeof(path), "/registry/subjects/%s/versions/latest", subject);
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gw, "GET", path, NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    json_t *doc = json_loads(res.body, 0, NULL);
    assert_non_null(doc);
    long id = (long)json_integer_value(json_object_get(doc, "id"));
    json_decref(doc);
    sg_test_response_free(&res);
    assert_true(id > 0);
    return id;
}

static void test_avro_route_produces_confluent_framing(void **state)
{
    static const char body[] =
        "{\"id\":\"a-1\",\"items\":[{\"sku\":\"a\",\"price\":\"12.5\"},{\"sku\":\"b\",\"price\":3}],\"note\":\"gift\","
        "\"placed\":1700000000123}";
    sg_test_response_t res;
    post("/orders", body, &res);
    assert_int_equal(res.status, 202);
    char token[512];
    assert_non_null(sg_test_header(&res, "consistency-token", token, sizeof(token)));
    json_t *ack = json_loads(res.body, 0, NULL);
    int partition = (int)json_integer_value(json_object_get(ack, "partition"));
    long offset = (long)json_integer_value(json_object_get(ack, "offset"));
    json_decref(ack);
    sg_test_response_free(&res);

    long id = latest_id("orders-value");
    sg_test_record_t rec;
    assert_int_equal(sg_test_consume(gw.bootstrap, "orders", partition, offset, &rec), 0);
    assert_true(rec.value_len > 5);
    const unsigned char *frame = (const unsigned char *)rec.value;
    assert_int_equal(frame[0], 0);
    assert_int_equal((long)((uint32_t)frame[1] << 24 | (uint32_t)frame[2] << 16 | (uint32_t)frame[3] << 8 | frame[4]), id);
    char ct[128];
    assert_string_equal(sg_test_record_header(&rec, "content-type", ct, sizeof(ct)), "application/vnd.apache.avro+binary");

    /* an independent implementation reads it */
    char args[1200];
    snprintf(args, sizeof(args), "decode %s", schema_file);
    size_t out_len;
    char *out = run_py(args, rec.value, rec.value_len, &out_len);
    sg_test_record_free(&rec);
    json_t *decoded = json_loads(out, 0, NULL);
    if (decoded == NULL)
        fprintf(stderr, "py_avro: %s\n", out);
    assert_non_null(decoded);
    assert_int_equal(json_integer_value(json_object_get(decoded, "id")), id);
    json_t *value = json_object_get(decoded, "value");
    assert_string_equal(json_string_value(json_object_get(value, "id")), "a-1");
    assert_string_equal(json_string_value(json_object_get(value, "note")), "gift");
    assert_int_equal(json_integer_value(json_object_get(value, "placed")), 1700000000123LL);
    json_t *items = json_object_get(value, "items");
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "price")), "12.50");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "price")), "3.00");
    json_decref(decoded);
    free(out);

    /* the table over the topic decodes it by id and serves JSON */
    char headers[1024];
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\n", token);
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/orders/a-1", headers, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"id\":\"a-1\",\"items\":[{\"sku\":\"a\",\"price\":\"12.50\"},{\"sku\":\"b\",\"price\":"
                                  "\"3.00\"}],\"note\":\"gift\",\"placed\":1700000000123}");
    sg_test_response_free(&res);
}

static void produce(const char *topic, const char *key, const void *value, size_t len)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", gw.bootstrap, errstr, sizeof(errstr));
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(producer);
    assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                       RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(producer, 5000), 0);
    rd_kafka_destroy(producer);
}

static void test_python_framed_record_read_through_the_table(void **state)
{
    long id = latest_id("orders-value");
    char args[1200];
    snprintf(args, sizeof(args), "encode %s %ld", schema_file, id);
    static const char value[] = "{\"id\":\"p-1\",\"items\":[{\"sku\":\"py\",\"price\":\"0.99\"}],\"note\":null,"
                                "\"placed\":1600000000000}";
    size_t len;
    char *framed = run_py(args, value, strlen(value), &len);
    assert_true(len > 5);
    assert_int_equal(framed[0], 0);
    produce("orders", "p-1", framed, len);
    free(framed);
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/orders/p-1?fresh=latest", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"id\":\"p-1\",\"items\":[{\"sku\":\"py\",\"price\":\"0.99\"}],\"note\":null,"
                                  "\"placed\":1600000000000}");
    sg_test_response_free(&res);

    /* an unknown schema id is skipped and counted, not served and not fatal */
    unsigned char unknown[] = {0, 0x7f, 0, 0, 1, 2, 'x'};
    produce("orders", "p-unknown", unknown, sizeof(unknown));
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/orders/p-unknown?fresh=latest", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 404);
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "GET", "/metrics", NULL, NULL, 0, &res), 0);
    const char *line = strstr(res.body, "\nstreamgate_table_records_skipped_total ");
    assert_non_null(line);
    assert_true(atoi(line + strlen("\nstreamgate_table_records_skipped_total ")) >= 1);
    sg_test_response_free(&res);
}

static void to_hex(const void *data, size_t len, char *out)
{
    const unsigned char *bytes = data;
    for (size_t i = 0; i < len; ++i)
        sprintf(out + 2 * i, "%02x", bytes[i]);
    out[2 * len] = '\0';
}

static void test_reply_in_confluent_framing_is_answered_as_json(void **state)
{
    long id = latest_id("orders-value");
    char args[1200];
    snprintf(args, sizeof(args), "encode %s %ld", schema_file, id);
    static const char value[] = "{\"id\":\"r-1\",\"items\":[],\"note\":\"ok\",\"placed\":5}";
    size_t len;
    char *framed = run_py(args, value, strlen(value), &len);
    char hex[4096], body[4200];
    to_hex(framed, len, hex);
    free(framed);
    snprintf(body, sizeof(body), "{\"status\":\"201\",\"body_hex\":\"%s\",\"content_type\":\"application/vnd.apache.avro+binary\"}",
             hex);
    sg_test_response_t res;
    post("/calls", body, &res);
    if (res.status != 201)
        fprintf(stderr, "%d %s\n", res.status, res.body);
    assert_int_equal(res.status, 201);
    char ct[128];
    assert_string_equal(sg_test_header(&res, "content-type", ct, sizeof(ct)), "application/json");
    assert_string_equal(res.body, "{\"id\":\"r-1\",\"items\":[],\"note\":\"ok\",\"placed\":5}");
    sg_test_response_free(&res);

    /* a framed reply with an id nobody registered: 502, counted */
    snprintf(body, sizeof(body), "{\"body_hex\":\"00000f423f0102\"}");
    post("/calls", body, &res);
    sg_test_assert_problem(&res, 502, "undecodable-reply", "body");
    assert_non_null(strstr(res.body, "999999"));
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "GET", "/metrics", NULL, NULL, 0, &res), 0);
    assert_non_null(strstr(res.body, "\nstreamgate_replies_undecodable_total 1\n"));
    sg_test_response_free(&res);
}

static void test_openapi_describes_routes_and_schemas(void **state)
{
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gw, "GET", "/openapi.json", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    json_error_t jerr;
    json_t *doc = json_loads(res.body, 0, &jerr);
    sg_test_response_free(&res);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *paths = json_object_get(doc, "paths");
    json_t *post = json_object_get(json_object_get(paths, "/orders"), "post");
    assert_string_equal(json_string_value(json_object_get(post, "operationId")), "order-avro");
    json_t *body_schema = json_object_get(
        json_object_get(json_object_get(json_object_get(post, "requestBody"), "content"), "application/json"), "schema");
    assert_string_equal(json_string_value(json_object_get(body_schema, "$ref")), "#/components/schemas/shop.Order");
    assert_non_null(json_object_get(json_object_get(post, "responses"), "422"));
    assert_non_null(json_object_get(json_object_get(post, "responses"), "202"));
    json_t *order = json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), "shop.Order");
    assert_non_null(order);
    json_t *required = json_object_get(order, "required");
    assert_int_equal(json_array_size(required), 3); /* id, items, placed: note has a default */
    assert_string_equal(json_string_value(json_array_get(required, 0)), "id");
    json_t *items = json_object_get(json_object_get(order, "properties"), "items");
    assert_string_equal(json_string_value(json_object_get(items, "type")), "array");
    assert_string_equal(json_string_value(json_object_get(json_object_get(items, "items"), "$ref")),
                        "#/components/schemas/shop.Item");
    json_t *call = json_object_get(json_object_get(paths, "/calls"), "post");
    assert_non_null(json_object_get(json_object_get(call, "responses"), "200"));
    assert_null(json_object_get(json_object_get(call, "responses"), "422")); /* no schema on that route */
    assert_non_null(json_object_get(json_object_get(paths, "/tables/{table}"), "get"));
    assert_non_null(json_object_get(json_object_get(paths, "/requests/{id}"), "get"));
    json_decref(doc);
    assert_int_equal(sg_test_post_json(&gw, "/openapi.json", NULL, "{}", &res), 0);
    assert_int_equal(res.status, 405);
    sg_test_response_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_route_validates_against_the_schema),
        cmocka_unit_test(test_avro_route_produces_confluent_framing),
        cmocka_unit_test(test_python_framed_record_read_through_the_table),
        cmocka_unit_test(test_reply_in_confluent_framing_is_answered_as_json),
        cmocka_unit_test(test_openapi_describes_routes_and_schemas),
    };
    return cmocka_run_group_tests_name("integration-schemas", tests, setup, teardown);
}
