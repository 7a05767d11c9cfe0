/*
 * Unit tests for the config loader (config/conf.c): every value and default of good YAML and
 * JSON configs, then one test per class of error a user can reach, each asserting the exact
 * "FILE:LINE: KEY: message" text, plus the duration and size parsers and the reference dump.
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

#include "sg_conf.h"

#ifndef SG_TEST_SOURCE_ROOT
#define SG_TEST_SOURCE_ROOT "."
#endif

static sg_conf_t *load_ok_at(const char *text, int line)
{
    char err[512] = "";
    sg_conf_t *conf = sg_conf_load_string("t.yaml", text, strlen(text), err, sizeof(err));
    if (conf == NULL)
        fail_msg("line %d: config refused: %s", line, err);
    return conf;
}
#define load_ok(text) load_ok_at((text), __LINE__)

/* Asserts that `text` is refused with exactly `expected` as the message. */
static void expect_error_at(const char *text, const char *expected, int line)
{
    char err[512] = "";
    sg_conf_t *conf = sg_conf_load_string("t.yaml", text, strlen(text), err, sizeof(err));
    if (conf != NULL) {
        sg_conf_destroy(conf);
        fail_msg("line %d: config accepted, expected: %s", line, expected);
    }
    if (strcmp(err, expected) != 0)
        fail_msg("line %d: wrong message\n  got:      %s\n  expected: %s", line, err, expected);
}
#define expect_error(text, expected) expect_error_at((text), (expected), __LINE__)

/* Asserts that `text` is refused with a message starting with `prefix` ("t.yaml:LINE: KEY: "). */
static void expect_error_prefix_at(const char *text, const char *prefix, int line)
{
    char err[512] = "";
    sg_conf_t *conf = sg_conf_load_string("t.yaml", text, strlen(text), err, sizeof(err));
    if (conf != NULL) {
        sg_conf_destroy(conf);
        fail_msg("line %d: config accepted, expected: %s...", line, prefix);
    }
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("line %d: wrong message\n  got:      %s\n  expected: %s...", line, err, prefix);
}
#define expect_error_prefix(text, prefix) expect_error_prefix_at((text), (prefix), __LINE__)

/* One flow-style route per line, for the error tests that need several routes. */
#define TOPIC_ROUTE(name, method, path) "  - {name: " name ", method: " method ", path: \"" path "\", topic: t}\n"

/* ------------------------------------------------------------------------------------------ */

static const char full_yaml[] =
    "listen:\n"                                                                                             /* 1 */
    "  - \"0.0.0.0:8080\"\n"                                                                                /* 2 */
    "  - \"[::1]:0\"\n"                                                                                     /* 3 */
    "  - {address: \"localhost:8443\", cert: tls/cert.pem, key: /etc/key.pem}\n"                            /* 4 */
    "threads: 8\n"                                                                                          /* 5 */
    "data_dir: /var/lib/sg\n"                                                                               /* 6 */
    "kafka:\n"                                                                                              /* 7 */
    "  brokers: \"k1:9092, k2:9092\"\n"                                                                     /* 8 */
    "  embedded: {brokers: 3}\n"                                                                            /* 9 */
    "  create_topics: true\n"                                                                               /* 10 */
    "  produce_timeout: 250ms\n"                                                                            /* 11 */
    "  properties:\n"                                                                                       /* 12 */
    "    security.protocol: SASL_SSL\n"                                                                     /* 13 */
    "    linger.ms: 5\n"                                                                                    /* 14 */
    "    enable.idempotence: True\n"                                                                        /* 15 */
    "    client.id: \"042\"\n"                                                                              /* 16 */
    "topics:\n"                                                                                             /* 17 */
    "  - {name: orders.commands, partitions: 4, replication: 3}\n"                                          /* 18 */
    "  - {name: orders.replies, config: {cleanup.policy: compact, retention.ms: 3600000}}\n"                /* 19 */
    "schemas:\n"                                                                                            /* 20 */
    "  - {name: PlaceOrder, file: schemas/place_order.avsc}\n"                                              /* 21 */
    "routes:\n"                                                                                             /* 22 */
    "  - name: place-order\n"                                                                               /* 23 */
    "    method: post\n"                                                                                    /* 24 */
    "    path: /orders\n"                                                                                   /* 25 */
    "    topic: orders.commands\n"                                                                          /* 26 */
    "    key: body:/customerId\n"                                                                           /* 27 */
    "    schema: PlaceOrder\n"                                                                              /* 28 */
    "    format: avro\n"                                                                                    /* 29 */
    "    reply:\n"                                                                                          /* 30 */
    "      topic: orders.replies\n"                                                                         /* 31 */
    "      timeout: 2s\n"                                                                                   /* 32 */
    "      max_timeout: 1m\n"                                                                               /* 33 */
    "      headers: [X-Trace, etag]\n"                                                                      /* 34 */
    "  - {name: put-profile, method: PUT, path: \"/profiles/{id}\", topic: profiles, key: \"path:id\"}\n"   /* 35 */
    "  - {name: get-thing, method: GET, path: \"/things/{id}\", topic: things, key: \"header:X-Tenant\"}\n" /* 36 */
    "tables:\n"                                                                                             /* 37 */
    "  - {name: profiles, topic: profiles}\n"                                                               /* 38 */
    "queries:\n"                                                                                            /* 39 */
    "  - {path: \"/profiles/{id}\", table: profiles, key: \"path:id\"}\n"                                   /* 40 */
    "limits: {body_bytes: 2MiB, header_bytes: 16KB, pending: 500}\n"                                        /* 41 */
    "cors: {origins: [\"http://localhost:5173\", \"https://app.example.com\"], max_age: 1h}\n"              /* 42 */
    "shutdown_timeout: 30s\n";                                                                              /* 43 */

static void test_full_yaml(void **state)
{
    sg_conf_t *conf = load_ok(full_yaml);
    assert_string_equal(conf->file, "t.yaml");

    assert_int_equal(conf->n_listen, 3);
    assert_string_equal(conf->listen[0].host, "0.0.0.0");
    assert_int_equal(conf->listen[0].port, 8080);
    assert_null(conf->listen[0].cert);
    assert_null(conf->listen[0].key);
    assert_string_equal(conf->listen[1].host, "::1");
    assert_int_equal(conf->listen[1].port, 0);
    assert_string_equal(conf->listen[2].host, "localhost");
    assert_int_equal(conf->listen[2].port, 8443);
    assert_string_equal(conf->listen[2].cert, "tls/cert.pem"); /* load_string: relative to cwd */
    assert_string_equal(conf->listen[2].key, "/etc/key.pem");

    assert_int_equal(conf->threads, 8);
    assert_string_equal(conf->data_dir, "/var/lib/sg");

    assert_false(conf->kafka.embedded);
    assert_string_equal(conf->kafka.brokers, "k1:9092,k2:9092");
    assert_int_equal(conf->kafka.embedded_brokers, 3);
    assert_true(conf->kafka.create_topics);
    assert_int_equal(conf->kafka.produce_timeout_ms, 250);
    assert_int_equal(conf->kafka.n_properties, 4);
    assert_string_equal(conf->kafka.properties[0].key, "security.protocol");
    assert_string_equal(conf->kafka.properties[0].value, "SASL_SSL");
    assert_string_equal(conf->kafka.properties[1].key, "linger.ms");
    assert_string_equal(conf->kafka.properties[1].value, "5");
    assert_string_equal(conf->kafka.properties[2].key, "enable.idempotence");
    assert_string_equal(conf->kafka.properties[2].value, "true");
    assert_string_equal(conf->kafka.properties[3].key, "client.id");
    assert_string_equal(conf->kafka.properties[3].value, "042");

    assert_int_equal(conf->n_topics, 2);
    assert_string_equal(conf->topics[0].name, "orders.commands");
    assert_int_equal(conf->topics[0].partitions, 4);
    assert_int_equal(conf->topics[0].replication, 3);
    assert_string_equal(conf->topics[1].name, "orders.replies");
    assert_int_equal(conf->topics[1].partitions, 1);
    assert_int_equal(conf->topics[1].replication, 0); /* unset: the cluster's default */
    assert_int_equal(conf->topics[0].n_config, 0);
    assert_int_equal(conf->topics[1].n_config, 2); /* in file order, numbers as text */
    assert_string_equal(conf->topics[1].config[0].key, "cleanup.policy");
    assert_string_equal(conf->topics[1].config[0].value, "compact");
    assert_string_equal(conf->topics[1].config[1].key, "retention.ms");
    assert_string_equal(conf->topics[1].config[1].value, "3600000");

    assert_int_equal(conf->n_schemas, 1);
    assert_string_equal(conf->schemas[0].name, "PlaceOrder");
    assert_string_equal(conf->schemas[0].file, "schemas/place_order.avsc");

    assert_int_equal(conf->n_routes, 3);
    const sg_route_conf_t *r = &conf->routes[0];
    assert_string_equal(r->name, "place-order");
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->path, "/orders");
    assert_string_equal(r->topic, "orders.commands");
    assert_int_equal(r->key.source, SG_KEY_BODY);
    assert_string_equal(r->key.name, "/customerId");
    assert_string_equal(r->schema, "PlaceOrder");
    assert_int_equal(r->format, SG_FORMAT_AVRO);
    assert_true(r->has_reply);
    assert_string_equal(r->reply.topic, "orders.replies");
    assert_int_equal(r->reply.timeout_ms, 2000);
    assert_int_equal(r->reply.max_timeout_ms, 60000);
    assert_int_equal(r->reply.n_headers, 2);
    assert_string_equal(r->reply.headers[0], "x-trace");
    assert_string_equal(r->reply.headers[1], "etag");
    assert_int_equal(r->line, 23);

    r = &conf->routes[1];
    assert_string_equal(r->name, "put-profile");
    assert_string_equal(r->method, "PUT");
    assert_string_equal(r->path, "/profiles/{id}");
    assert_string_equal(r->topic, "profiles");
    assert_int_equal(r->key.source, SG_KEY_PATH);
    assert_string_equal(r->key.name, "id");
    assert_null(r->schema);
    assert_int_equal(r->format, SG_FORMAT_JSON);
    assert_false(r->has_reply);
    assert_null(r->reply.topic);
    assert_int_equal(r->line, 35);

    r = &conf->routes[2];
    assert_string_equal(r->method, "GET");
    assert_int_equal(r->key.source, SG_KEY_HEADER);
    assert_string_equal(r->key.name, "x-tenant");

    assert_int_equal(conf->n_tables, 1);
    assert_string_equal(conf->tables[0].name, "profiles");
    assert_string_equal(conf->tables[0].topic, "profiles");
    assert_int_equal(conf->tables[0].line, 38);

    assert_int_equal(conf->n_queries, 1);
    assert_string_equal(conf->queries[0].path, "/profiles/{id}");
    assert_string_equal(conf->queries[0].table, "profiles");
    assert_int_equal(conf->queries[0].key.source, SG_KEY_PATH);
    assert_string_equal(conf->queries[0].key.name, "id");
    assert_int_equal(conf->queries[0].line, 40);

    assert_int_equal(conf->limits.body_bytes, 2u << 20);
    assert_int_equal(conf->limits.header_bytes, 16000);
    assert_int_equal(conf->limits.pending, 500);

    assert_int_equal(conf->cors.n_origins, 2);
    assert_string_equal(conf->cors.origins[0], "http://localhost:5173");
    assert_string_equal(conf->cors.origins[1], "https://app.example.com");
    assert_int_equal(conf->cors.max_age_s, 3600);

    assert_int_equal(conf->shutdown_timeout_ms, 30000);
    sg_conf_destroy(conf);
}

static void assert_defaults(const sg_conf_t *conf)
{
    assert_int_equal(conf->n_listen, 1);
    assert_string_equal(conf->listen[0].host, "127.0.0.1");
    assert_int_equal(conf->listen[0].port, 8080);
    assert_null(conf->listen[0].cert);
    assert_int_equal(conf->threads, 2);
    assert_string_equal(conf->data_dir, "./data");
    assert_true(conf->kafka.embedded);
    assert_null(conf->kafka.brokers);
    assert_int_equal(conf->kafka.embedded_brokers, 1);
    assert_false(conf->kafka.create_topics);
    assert_int_equal(conf->kafka.produce_timeout_ms, 10000);
    assert_int_equal(conf->kafka.n_properties, 0);
    assert_null(conf->kafka.properties);
    assert_int_equal(conf->n_topics, 0);
    assert_int_equal(conf->n_schemas, 0);
    assert_int_equal(conf->n_routes, 0);
    assert_int_equal(conf->n_tables, 0);
    assert_int_equal(conf->n_queries, 0);
    assert_int_equal(conf->limits.body_bytes, 1u << 20);
    assert_int_equal(conf->limits.header_bytes, 64u << 10);
    assert_int_equal(conf->limits.pending, 100000);
    assert_int_equal(conf->cors.n_origins, 0);
    assert_int_equal(conf->cors.max_age_s, 600);
    assert_int_equal(conf->shutdown_timeout_ms, 10000);
}

static void test_defaults(void **state)
{
    sg_conf_t *conf = load_ok("{}");
    assert_defaults(conf);
    sg_conf_destroy(conf);

    /* Empty sections and null values of lists/sections take the defaults too. */
    conf = load_ok("kafka: {}\nlimits:\ncors: {}\ntopics:\n");
    assert_defaults(conf);
    sg_conf_destroy(conf);

    /* Route defaults: key none, format json, no reply; reply defaults: 10s / 60s. */
    conf = load_ok("routes:\n"
                   "  - {name: a, method: POST, path: /a, topic: t}\n"
                   "  - {name: b, method: POST, path: /b, topic: t, reply: {topic: r}}\n");
    assert_int_equal(conf->routes[0].key.source, SG_KEY_NONE);
    assert_null(conf->routes[0].key.name);
    assert_int_equal(conf->routes[0].format, SG_FORMAT_JSON);
    assert_false(conf->routes[0].has_reply);
    assert_true(conf->routes[1].has_reply);
    assert_int_equal(conf->routes[1].reply.timeout_ms, 10000);
    assert_int_equal(conf->routes[1].reply.max_timeout_ms, 60000);
    assert_int_equal(conf->routes[1].reply.n_headers, 0);
    sg_conf_destroy(conf);
}

/* deployment (DESIGN §8): its defaults, its values, and what is refused, each error naming the key. */
static void test_deployment(void **state)
{
    sg_conf_t *conf = load_ok("{}");
    assert_string_equal(conf->deployment.name, "default");
    assert_null(conf->deployment.instance); /* made once in data_dir */
    assert_null(conf->deployment.advertise.text);
    assert_null(conf->requests.secret); /* the deployment's own, through its internal topic */
    sg_conf_destroy(conf);

    conf = load_ok("deployment: {name: shop, instance: gw-1, advertise: \"http://10.0.0.7:8081\"}\n");
    assert_string_equal(conf->deployment.name, "shop");
    assert_string_equal(conf->deployment.instance, "gw-1");
    assert_string_equal(conf->deployment.advertise.text, "http://10.0.0.7:8081");
    assert_string_equal(conf->deployment.advertise.host, "10.0.0.7");
    assert_int_equal(conf->deployment.advertise.port, 8081);
    assert_false(conf->deployment.advertise.tls);
    sg_conf_destroy(conf);

    expect_error("deployment:\n  name: shop.eu\n",
                 "t.yaml:2: deployment.name: invalid deployment name \"shop.eu\": use letters, digits, '_' or '-' (it is "
                 "part of internal topic names, where a '.' would be ambiguous)");
    expect_error("deployment: {name: \"a b\"}\n",
                 "t.yaml:1: deployment.name: invalid name \"a b\": use 1 to 128 letters, digits, '.', '_' or '-'");
    expect_error("deployment:\n  instance: \"gw/1\"\n",
                 "t.yaml:2: deployment.instance: invalid name \"gw/1\": use 1 to 128 letters, digits, '.', '_' or '-'");
    expect_error("deployment:\n  advertise: \"10.0.0.7:8081\"\n",
                 "t.yaml:2: deployment.advertise: expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH, got "
                 "\"10.0.0.7:8081\"");
    expect_error("deployment:\n  advertise: \"http://h:1/?x=1\"\n",
                 "t.yaml:2: deployment.advertise: an advertised URL is a base URL: no query string");
    expect_error("deployment: {nme: shop}\n", "t.yaml:1: deployment.nme: unknown key \"nme\" (did you mean \"name\"?)");
}

/* placement and standbys (DESIGN §8): defaults, values, and what is refused, naming the key. */
static void test_placement(void **state)
{
    sg_conf_t *conf = load_ok("tables: [{name: p, topic: p}]\n");
    assert_int_equal(conf->tables[0].placement, SG_PLACEMENT_GLOBAL);
    assert_int_equal(conf->tables[0].standbys, 0);
    sg_conf_destroy(conf);

    conf = load_ok("tables: [{name: p, topic: p, placement: partitioned, standbys: 1}]\n");
    assert_int_equal(conf->tables[0].placement, SG_PLACEMENT_PARTITIONED);
    assert_int_equal(conf->tables[0].standbys, 1);
    sg_conf_destroy(conf);

    expect_error("tables:\n  - {name: p, topic: p, placement: sharded}\n",
                 "t.yaml:2: tables[0].placement: unknown placement \"sharded\" (expected one of global, partitioned)");
    expect_error("tables:\n  - {name: p, topic: p, standbys: 1}\n",
                 "t.yaml:2: tables[0].standbys: standbys needs placement: partitioned (a global table has every partition on "
                 "every instance)");
    expect_error("tables:\n  - {name: p, topic: p, placement: partitioned, standbys: 9}\n",
                 "t.yaml:2: tables[0].standbys: \"9\" is out of range (0..8)");
    expect_error("tables:\n  - {name: p, topic: t, placement: partitioned}\n  - {name: q, topic: t}\n",
                 "t.yaml:2: tables[0].placement: a partitioned table must be the only table on its topic (t is also table "
                 "\"q\")");
}

static void test_json(void **state)
{
    static const char json[] =
        "{\n"
        "  \"listen\": [\"[::1]:9000\", {\"address\": \"127.0.0.1:9443\", \"cert\": \"c.pem\", \"key\": \"k.pem\"}],\n"
        "  \"threads\": 4,\n"
        "  \"kafka\": {\"brokers\": \"embedded\", \"embedded\": {\"brokers\": 2},\n"
        "            \"properties\": {\"linger.ms\": 10, \"enable.idempotence\": true, \"acks\": \"all\"}},\n"
        "  \"topics\": [{\"name\": \"orders\", \"partitions\": 3}],\n"
        "  \"routes\": "
        "[{\"name\":\"place\",\"method\":\"POST\",\"path\":\"/orders/{id}\",\"topic\":\"orders\",\"key\":\"path:id\",\n"
        "              \"reply\": {\"topic\": \"orders.replies\", \"timeout\": 1500, \"headers\": []}}],\n"
        "  \"limits\": {\"body_bytes\": 4096},\n"
        "  \"cors\": {\"origins\": [\"*\"], \"max_age\": \"0s\"}\n"
        "}\n";
    sg_conf_t *conf = load_ok(json);
    assert_int_equal(conf->n_listen, 2);
    assert_string_equal(conf->listen[0].host, "::1");
    assert_int_equal(conf->listen[0].port, 9000);
    assert_string_equal(conf->listen[1].host, "127.0.0.1");
    assert_int_equal(conf->listen[1].port, 9443);
    assert_string_equal(conf->listen[1].cert, "c.pem");
    assert_string_equal(conf->listen[1].key, "k.pem");
    assert_int_equal(conf->threads, 4);
    assert_true(conf->kafka.embedded);
    assert_int_equal(conf->kafka.embedded_brokers, 2);
    assert_int_equal(conf->kafka.n_properties, 3);
    assert_string_equal(conf->kafka.properties[0].value, "10");
    assert_string_equal(conf->kafka.properties[1].value, "true");
    assert_string_equal(conf->kafka.properties[2].key, "acks");
    assert_string_equal(conf->kafka.properties[2].value, "all");
    assert_int_equal(conf->n_topics, 1);
    assert_int_equal(conf->topics[0].partitions, 3);
    assert_int_equal(conf->n_routes, 1);
    assert_string_equal(conf->routes[0].path, "/orders/{id}");
    assert_int_equal(conf->routes[0].key.source, SG_KEY_PATH);
    assert_true(conf->routes[0].has_reply);
    assert_int_equal(conf->routes[0].reply.timeout_ms, 1500);
    assert_int_equal(conf->routes[0].reply.n_headers, 0);
    assert_int_equal(conf->routes[0].line, 7);
    assert_int_equal(conf->limits.body_bytes, 4096);
    assert_int_equal(conf->cors.n_origins, 1);
    assert_string_equal(conf->cors.origins[0], "*");
    assert_int_equal(conf->cors.max_age_s, 0);
    assert_int_equal(conf->threads, 4);
    sg_conf_destroy(conf);

    /* Tabs are fine as JSON whitespace. */
    conf = load_ok("{\n\t\"threads\":\t3,\n\t\"data_dir\": \"d\"\n}");
    assert_int_equal(conf->threads, 3);
    assert_string_equal(conf->data_dir, "d");
    sg_conf_destroy(conf);

    /* JSON errors carry lines and key paths like YAML ones. */
    expect_error("{\n  \"threads\": 2,\n  \"limits\": {\"pending\": 0}\n}\n",
                 "t.yaml:3: limits.pending: \"0\" is out of range (1..10000000)");
    expect_error("{\n  \"threads\": 2\n  \"data_dir\": \"x\"\n}\n",
                 "t.yaml:3: (root): YAML syntax error: did not find expected ',' or '}' "
                 "(while parsing a flow mapping at line 1)");
    expect_error("{\n  \"threads\": 2,\n  \"kafka\": {\"brokers\": [1,2}\n}\n",
                 "t.yaml:3: kafka.brokers: YAML syntax error: did not find expected ',' or ']' "
                 "(while parsing a flow sequence at line 3)");
}

static void test_demo_and_file(void **state)
{
    char err[512] = "", demo[1024];
    const char *root = getenv("SG_SOURCE_ROOT");
    snprintf(demo, sizeof(demo), "%s/config/demo.yaml", root != NULL ? root : SG_TEST_SOURCE_ROOT);
    sg_conf_t *conf = sg_conf_load(demo, err, sizeof(err));
    if (conf == NULL)
        fail_msg("demo.yaml refused: %s", err);
    assert_string_equal(conf->listen[0].host, "127.0.0.1");
    assert_int_equal(conf->listen[0].port, 8080);
    assert_true(conf->kafka.embedded);
    assert_string_equal(conf->data_dir, "./data");
    assert_int_equal(conf->n_topics, 7);
    assert_string_equal(conf->topics[0].name, "orders.commands");
    assert_int_equal(conf->topics[0].partitions, 4);
    assert_string_equal(conf->topics[1].name, "orders.replies");
    assert_string_equal(conf->topics[2].name, "profiles");
    assert_int_equal(conf->topics[2].partitions, 2);
    assert_int_equal(conf->n_routes, 5);
    assert_string_equal(conf->routes[0].name, "place-order");
    assert_string_equal(conf->routes[0].method, "POST");
    assert_string_equal(conf->routes[0].path, "/orders");
    assert_int_equal(conf->routes[0].key.source, SG_KEY_BODY);
    assert_string_equal(conf->routes[0].key.name, "/customerId");
    assert_true(conf->routes[0].has_reply); /* answered by config/demo's worker */
    assert_string_equal(conf->routes[0].reply.topic, "orders.replies");
    assert_int_equal(conf->routes[0].reply.timeout_ms, 3000);
    assert_string_equal(conf->routes[1].name, "put-profile");
    assert_string_equal(conf->routes[1].method, "PUT");
    assert_int_equal(conf->routes[1].key.source, SG_KEY_PATH);
    assert_string_equal(conf->routes[2].name, "get-quote");
    assert_true(conf->routes[2].has_reply);
    assert_string_equal(conf->routes[2].reply.topic, "quotes.replies");
    assert_int_equal(conf->routes[2].reply.timeout_ms, 5000);
    assert_int_equal(conf->routes[2].reply.max_timeout_ms, 30000);
    assert_string_equal(conf->routes[3].name, "pay");
    assert_string_equal(conf->routes[3].schema, "Payment");
    assert_int_equal(conf->routes[3].format, SG_FORMAT_AVRO);
    /* Flows 1-4 of the demo page need no sign-in; flow 5's route needs orders:cancel. */
    for (size_t i = 0; i < 4; ++i) {
        assert_true(conf->routes[i].access.is_public);
        assert_int_equal(conf->routes[i].access.n_scopes, 0);
    }
    assert_string_equal(conf->routes[4].name, "cancel-order");
    assert_string_equal(conf->routes[4].path, "/orders/{id}/cancel");
    assert_string_equal(conf->routes[4].topic, "orders.cancellations");
    assert_false(conf->routes[4].access.is_public);
    assert_int_equal(conf->routes[4].access.n_scopes, 1);
    assert_string_equal(conf->routes[4].access.scopes[0], "orders:cancel");
    assert_true(conf->has_auth);
    assert_true(conf->auth.has_jwt);
    assert_non_null(strstr(conf->auth.jwt.jwks_file, "config/demo/jwks.json"));
    assert_int_equal(conf->n_schemas, 1);
    assert_non_null(strstr(conf->schemas[0].file, "config/schemas/payment.avsc"));
    assert_int_equal(conf->n_tables, 2);
    assert_string_equal(conf->tables[0].name, "profiles");
    assert_string_equal(conf->tables[0].topic, "profiles");
    assert_string_equal(conf->tables[1].topic, "payments");
    assert_true(conf->tables[0].access.is_public && conf->tables[1].access.is_public);
    assert_int_equal(conf->n_queries, 2);
    assert_string_equal(conf->queries[0].path, "/profiles/{id}");
    assert_true(conf->queries[0].access.is_public && conf->queries[1].access.is_public);
    assert_int_equal(conf->cors.n_origins, 2);
    assert_string_equal(conf->cors.origins[0], "http://localhost:5173");
    assert_string_equal(conf->cors.origins[1], "http://127.0.0.1:5173");
    sg_conf_destroy(conf);

    /* A config file resolves schema and TLS files against its own directory. */
    char dir[] = "/tmp/sg-conf-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/gw.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("listen: [{address: \"127.0.0.1:0\", cert: tls/c.pem, key: /abs/k.pem}]\n"
          "schemas: [{name: S, file: schemas/s.avsc}]\n"
          "threads: 0\n",
          f);
    fclose(f);
    conf = sg_conf_load(path, err, sizeof(err));
    assert_null(conf);
    char expected[512];
    snprintf(expected, sizeof(expected), "%s:3: threads: \"0\" is out of range (1..64)", path);
    assert_string_equal(err, expected);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("listen: [{address: \"127.0.0.1:0\", cert: tls/c.pem, key: /abs/k.pem}]\n"
          "schemas: [{name: S, file: schemas/s.avsc}]\n",
          f);
    fclose(f);
    conf = sg_conf_load(path, err, sizeof(err));
    if (conf == NULL)
        fail_msg("refused: %s", err);
    assert_string_equal(conf->file, path);
    snprintf(expected, sizeof(expected), "%s/schemas/s.avsc", dir);
    assert_string_equal(conf->schemas[0].file, expected);
    snprintf(expected, sizeof(expected), "%s/tls/c.pem", dir);
    assert_string_equal(conf->listen[0].cert, expected);
    assert_string_equal(conf->listen[0].key, "/abs/k.pem");
    sg_conf_destroy(conf);
    unlink(path);
    rmdir(dir);

    /* A missing file names itself and the reason. */
    conf = sg_conf_load("/nonexistent/sg.yaml", err, sizeof(err));
    assert_null(conf);
    assert_string_equal(err, "/nonexistent/sg.yaml: cannot open: No such file or directory");
    sg_conf_destroy(NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */

static void test_err_empty(void **state)
{
    expect_error("", "t.yaml:1: (root): the config is empty");
    expect_error("# only a comment\n\n", "t.yaml:1: (root): the config is empty");
    expect_error("---\n", "t.yaml:1: (root): the config is empty");
    expect_error("- a\n- b\n", "t.yaml:1: (root): expected a mapping at the top level, got a list");
    expect_error("hello\n", "t.yaml:1: (root): expected a mapping at the top level, got \"hello\"");
}

static void test_err_syntax(void **state)
{
    expect_error("threads: 2\nkafka:\n  brokers: embedded\n create_topics: true\n",
                 "t.yaml:4: (root): YAML syntax error: did not find expected key "
                 "(while parsing a block mapping at line 1)");
    expect_error("threads: 2\nroutes:\n  - name: a\n    method: \"POST\n",
                 "t.yaml:5: routes[0].method: YAML syntax error: found unexpected end of stream "
                 "(while scanning a quoted scalar at line 4)");
    expect_error("threads: 2\nkafka: {brokers: x\n", "t.yaml:3: kafka: YAML syntax error: did not find expected ',' or '}' "
                                                     "(while parsing a flow mapping at line 2)");
    expect_error("threads: 1\n---\nthreads: 2\n", "t.yaml:2: (root): only one YAML document is allowed in a config file");
    expect_error("a: &x 1\nb: *x\n", "t.yaml:2: b: YAML aliases (*name) are not supported");
    expect_error("? [a]\n: 1\n", "t.yaml:1: (root): mapping keys must be plain strings");
    expect_error("data_dir: \"a\\0b\"\n", "t.yaml:1: data_dir: a value contains a NUL character");

    char deep[256] = "a: ";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    expect_error_prefix(deep, "t.yaml:1: a");
}

static void test_static(void **state)
{
    /* load_string resolves relative dirs against the working directory: /tmp exists, always */
    char err[512] = "";
    const char text[] = "static:\n  - {path: /, dir: /tmp}\n  - {path: /assets, dir: /}\n";
    sg_conf_t *conf = sg_conf_load_string("t.yaml", text, strlen(text), err, sizeof(err));
    assert_non_null(conf);
    assert_int_equal(conf->n_statics, 2);
    assert_string_equal(conf->statics[0].path, "/");
    assert_string_equal(conf->statics[0].dir, "/tmp");
    assert_string_equal(conf->statics[1].path, "/assets");
    assert_int_equal(conf->statics[1].line, 3);
    sg_conf_destroy(conf);

    expect_error("static:\n  - {path: /, dir: /no/such/dir}\n",
                 "t.yaml:2: static[0].dir: \"/no/such/dir\": No such file or directory");
    expect_error("static:\n  - {path: /, dir: /dev/null}\n", "t.yaml:2: static[0].dir: \"/dev/null\" is not a directory");
    expect_error("static:\n  - {path: /}\n", "t.yaml:2: static[0].dir: required key \"dir\" is missing");
    expect_error("static:\n  - {path: /a/, dir: /tmp}\n", "t.yaml:2: static[0].path: remove the trailing '/' from \"/a/\"");
    expect_error("static:\n  - {path: \"/a/{x}\", dir: /tmp}\n",
                 "t.yaml:2: static[0].path: a static path has no parameters: \"/a/{x}\"");
    expect_error_prefix("static:\n  - {path: /tables/www, dir: /tmp}\n",
                        "t.yaml:2: static[0].path: path \"/tables/www\" is under /tables");
    expect_error_prefix("static:\n  - {path: /, dir: /tmp}\n  - {path: /, dir: /}\n", "t.yaml:3: static[1].path: ");
}

static void test_err_unknown_key(void **state)
{
    expect_error("threads: 2\nthread: 3\n", "t.yaml:2: thread: unknown key \"thread\" (did you mean \"threads\"?)");
    expect_error("kafka:\n  brokerz: x\n", "t.yaml:2: kafka.brokerz: unknown key \"brokerz\" (did you mean \"brokers\"?)");
    expect_error("kafka:\n  embedded: {brokers: 1, size: 2}\n",
                 "t.yaml:2: kafka.embedded.size: unknown key \"size\" (valid keys: brokers)");
    expect_error("routes:\n  - {name: a, method: POST, path: /a, topic: t}\n  - {name: b, methd: POST}\n",
                 "t.yaml:3: routes[1].methd: unknown key \"methd\" (did you mean \"method\"?)");
    expect_error("routes:\n  - name: a\n    method: POST\n    path: /a\n    topic: t\n    reply: {topic: r, timeot: 1s}\n",
                 "t.yaml:6: routes[0].reply.timeot: unknown key \"timeot\" (did you mean \"timeout\"?)");
    expect_error("listen:\n  - {adress: \"1.2.3.4:80\"}\n",
                 "t.yaml:2: listen[0].adress: unknown key \"adress\" (did you mean \"address\"?)");
    expect_error("zzz: 1\n", "t.yaml:1: zzz: unknown key \"zzz\" (valid keys: listen, threads, data_dir, kafka, "
                             "topics, schemas, routes, tables, queries, static, limits, cors, shutdown_timeout, requests, "
                             "deployment, log, schema_registry, auth, rate_limits)");
    expect_error("limits: {body: 1}\n", "t.yaml:1: limits.body: unknown key \"body\" "
                                        "(valid keys: body_bytes, header_bytes, pending, inflight_bytes, connections, "
                                        "write_timeout, queued_bytes, token_wait, token_wait_max, table_cache, "
                                        "registry_write_rate, registry_write_burst)");
}

static void test_err_types(void **state)
{
    expect_error("threads: abc\n", "t.yaml:1: threads: expected an integer, got \"abc\"");
    expect_error("threads: 2.5\n", "t.yaml:1: threads: expected an integer, got \"2.5\"");
    expect_error("threads: [1]\n", "t.yaml:1: threads: expected an integer, got a list");
    expect_error("threads:\n", "t.yaml:1: threads: expected an integer, got nothing (null)");
    expect_error("data_dir: {a: 1}\n", "t.yaml:1: data_dir: expected a string, got a mapping");
    expect_error("data_dir: \"\"\n", "t.yaml:1: data_dir: must not be empty");
    expect_error("kafka: [a]\n", "t.yaml:1: kafka: expected a mapping, got a list");
    expect_error("kafka:\n  create_topics: yes\n", "t.yaml:2: kafka.create_topics: expected true or false, got \"yes\"");
    expect_error("topics: {name: a}\n", "t.yaml:1: topics: expected a list of topics, got a mapping");
    expect_error("topics:\n  - orders\n", "t.yaml:2: topics[0]: expected a mapping, got \"orders\"");
    expect_error("kafka:\n  properties: [a]\n",
                 "t.yaml:2: kafka.properties: expected a mapping of property names to values, got a list");
    expect_error("kafka:\n  properties:\n    acks: {x: 1}\n",
                 "t.yaml:3: kafka.properties.acks: expected a string, number or boolean, got a mapping");
    expect_error("cors:\n  origins: \"http://a\"\n", "t.yaml:2: cors.origins: expected a list, got \"http://a\"");
    expect_error("routes:\n  - {name: a, method: POST, path: /a, topic: t, format: xml}\n",
                 "t.yaml:2: routes[0].format: unknown format \"xml\" (expected one of json, avro)");
    expect_error("routes:\n  - {name: [a], method: POST, path: /a, topic: t}\n",
                 "t.yaml:2: routes[0].name: expected a string, got a list");
    expect_error("routes:\n  - {name: \"a b\", method: POST, path: /a, topic: t}\n",
                 "t.yaml:2: routes[0].name: invalid name \"a b\": use 1 to 128 letters, digits, '.', '_' or '-'");
}

static void test_err_range(void **state)
{
    expect_error("threads: 65\n", "t.yaml:1: threads: \"65\" is out of range (1..64)");
    expect_error("threads: 0\n", "t.yaml:1: threads: \"0\" is out of range (1..64)");
    expect_error("threads: -3\n", "t.yaml:1: threads: \"-3\" is out of range (1..64)");
    expect_error("threads: 99999999999999999999\n", "t.yaml:1: threads: \"99999999999999999999\" is out of range (1..64)");
    expect_error("kafka:\n  embedded:\n    brokers: 17\n", "t.yaml:3: kafka.embedded.brokers: \"17\" is out of range (1..16)");
    expect_error("topics:\n  - {name: a, partitions: 10001}\n",
                 "t.yaml:2: topics[0].partitions: \"10001\" is out of range (1..10000)");
    expect_error("topics:\n  - {name: a, replication: 33}\n", "t.yaml:2: topics[0].replication: \"33\" is out of range (1..32)");
    expect_error("limits:\n  pending: 10000001\n", "t.yaml:2: limits.pending: \"10000001\" is out of range (1..10000000)");
    expect_error("limits:\n  body_bytes: 65MiB\n", "t.yaml:2: limits.body_bytes: \"65MiB\" is out of range (1B..64MiB)");
    expect_error("limits:\n  body_bytes: 0\n", "t.yaml:2: limits.body_bytes: \"0\" is out of range (1B..64MiB)");
    expect_error("limits:\n  header_bytes: 2MiB\n", "t.yaml:2: limits.header_bytes: \"2MiB\" is out of range (1KiB..1MiB)");
    expect_error("limits:\n  body_bytes: 2MiB\n  inflight_bytes: 1MiB\n",
                 "t.yaml:3: limits.inflight_bytes: is smaller than limits.body_bytes: no body could ever be produced");
    expect_error("kafka:\n  produce_timeout: 301s\n", "t.yaml:2: kafka.produce_timeout: \"301s\" is out of range (1ms..5m)");
    expect_error("kafka:\n  produce_timeout: 0\n", "t.yaml:2: kafka.produce_timeout: \"0\" is out of range (1ms..5m)");
    expect_error("cors:\n  max_age: 2d\n", "t.yaml:2: cors.max_age: expected a duration such as 250ms, 10s, 2m or 1h, got \"2d\"");
    expect_error("cors:\n  max_age: 25h\n", "t.yaml:2: cors.max_age: \"25h\" is out of range (0s..24h)");
    expect_error("cors:\n  max_age: 600\n", "t.yaml:2: cors.max_age: \"600\" is not a whole number of seconds (write e.g. 600s)");
    expect_error("listen: []\n", "t.yaml:1: listen: needs at least 1 listener");
    expect_error("listen: [\":1\", \":2\", \":3\", \":4\", \":5\", \":6\", \":7\", \":8\", \":9\", \":10\", \":11\", "
                 "\":12\", \":13\", \":14\", \":15\", \":16\", \":17\"]\n",
                 "t.yaml:1: listen: more than 16 listeners");

    /* The file as a whole is bounded too. */
    size_t big = (4u << 20) + 1;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, '#', big);
    huge[big] = '\0';
    expect_error(huge, "t.yaml:1: (root): the config is larger than 4194304 bytes");
    free(huge);

    /* The bounds themselves are accepted. */
    sg_conf_t *conf = load_ok("threads: 64\nlimits: {body_bytes: 64MiB, header_bytes: 1KiB, pending: 10000000}\n"
                              "kafka: {produce_timeout: 300s}\ncors: {max_age: 24h}\nshutdown_timeout: 0\n");
    assert_int_equal(conf->threads, 64);
    assert_int_equal(conf->limits.body_bytes, 64u << 20);
    assert_int_equal(conf->limits.header_bytes, 1024);
    assert_int_equal(conf->limits.pending, 10000000);
    assert_int_equal(conf->kafka.produce_timeout_ms, 300000);
    assert_int_equal(conf->cors.max_age_s, 86400);
    assert_int_equal(conf->shutdown_timeout_ms, 0);
    sg_conf_destroy(conf);
}

static void test_err_duration_size(void **state)
{
    expect_error("shutdown_timeout: 10 parsecs\n",
                 "t.yaml:1: shutdown_timeout: expected a duration such as 250ms, 10s, 2m or 1h, got \"10 parsecs\"");
    expect_error("shutdown_timeout: -1s\n",
                 "t.yaml:1: shutdown_timeout: expected a duration such as 250ms, 10s, 2m or 1h, got \"-1s\"");
    expect_error("shutdown_timeout: 9999999999999999999h\n",
                 "t.yaml:1: shutdown_timeout: expected a duration such as 250ms, 10s, 2m or 1h, "
                 "got \"9999999999999999999h\"");
    expect_error("shutdown_timeout: 2h\n", "t.yaml:1: shutdown_timeout: \"2h\" is out of range (0s..1h)");
    expect_error("limits:\n  body_bytes: 1XB\n",
                 "t.yaml:2: limits.body_bytes: expected a size such as 512, 64KiB, 1MiB or 10KB, got \"1XB\"");
    expect_error("limits:\n  body_bytes: 1.5MiB\n",
                 "t.yaml:2: limits.body_bytes: expected a size such as 512, 64KiB, 1MiB or 10KB, got \"1.5MiB\"");
    expect_error("limits:\n  body_bytes: -1\n",
                 "t.yaml:2: limits.body_bytes: expected a size such as 512, 64KiB, 1MiB or 10KB, got \"-1\"");
    expect_error("limits:\n  body_bytes: 99999999999GiB\n",
                 "t.yaml:2: limits.body_bytes: expected a size such as 512, 64KiB, 1MiB or 10KB, "
                 "got \"99999999999GiB\"");
}

static void test_err_duplicate_keys(void **state)
{
    expect_error("threads: 2\ndata_dir: a\nthreads: 3\n", "t.yaml:3: threads: duplicate key \"threads\" (first at line 1)");
    expect_error("kafka:\n  brokers: embedded\n  brokers: embedded\n",
                 "t.yaml:3: kafka.brokers: duplicate key \"brokers\" (first at line 2)");
    expect_error("routes:\n  - {name: a, name: b}\n", "t.yaml:2: routes[0].name: duplicate key \"name\" (first at line 2)");
    expect_error("kafka:\n  properties:\n    acks: all\n    linger.ms: 1\n    acks: 1\n",
                 "t.yaml:5: kafka.properties.acks: duplicate key \"acks\" (first at line 3)");
}

static void test_err_duplicate_names(void **state)
{
    expect_error("routes:\n" TOPIC_ROUTE("a", "POST", "/a") TOPIC_ROUTE("b", "POST", "/b") TOPIC_ROUTE("a", "PUT", "/c"),
                 "t.yaml:4: routes[2].name: duplicate route name \"a\" (first at line 2)");
    expect_error("tables:\n  - {name: p, topic: t1}\n  - name: p\n    topic: t2\n",
                 "t.yaml:3: tables[1].name: duplicate table name \"p\" (first at line 2)");
    expect_error("topics:\n  - name: orders\n  - name: orders\n    partitions: 2\n",
                 "t.yaml:3: topics[1].name: duplicate topic name \"orders\" (first at line 2)");
    expect_error("schemas:\n  - {name: S, file: a}\n  - {name: S, file: b}\n",
                 "t.yaml:3: schemas[1].name: duplicate schema name \"S\" (first at line 2)");
}

static void test_err_conflicts(void **state)
{
    expect_error("threads: 2\nroutes:\n" TOPIC_ROUTE("a", "POST", "/a/{x}") TOPIC_ROUTE("b", "POST", "/a/{y}"),
                 "t.yaml:4: routes[1].path: POST /a/{y} conflicts with route \"a\" (POST /a/{x}, line 3)");
    expect_error("routes:\n" TOPIC_ROUTE("a", "GET", "/p/{id}") "tables: [{name: p, topic: t}]\n"
                                                                "queries:\n  - {path: \"/p/{key}\", table: p, key: \"path:key\"}\n",
                 "t.yaml:5: queries[0].path: GET /p/{key} conflicts with route \"a\" (GET /p/{id}, line 2)");
    expect_error("tables: [{name: p, topic: t}]\nqueries:\n  - {path: \"/p/{a}\", table: p, key: \"path:a\"}\n"
                 "  - {path: \"/p/{b}\", table: p, key: \"path:b\"}\n",
                 "t.yaml:4: queries[1].path: GET /p/{b} conflicts with query GET /p/{a} (line 3)");

    /* Different methods, literals or shapes do not conflict. */
    sg_conf_t *conf =
        load_ok("routes:\n" TOPIC_ROUTE("a", "POST", "/a/{x}") TOPIC_ROUTE("b", "PUT", "/a/{y}") TOPIC_ROUTE("c", "POST", "/a/b")
                    TOPIC_ROUTE("d", "POST", "/a/{x}/") TOPIC_ROUTE("e", "POST", "/metricsfoo")
                        TOPIC_ROUTE("f", "GET", "/") "tables: [{name: p, topic: t}]\n"
                                                     "queries:\n  - {path: \"/a/{x}\", table: p, key: \"path:x\"}\n");
    assert_int_equal(conf->n_routes, 6);
    assert_int_equal(conf->n_queries, 1);
    sg_conf_destroy(conf);
}

static void test_err_reserved(void **state)
{
    static const char *const paths[] = {"/metrics", "/metrics/x", "/tables/x",     "/requests/{id}", "/registry",
                                        "/healthz", "/readyz",    "/openapi.json", "/tables"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char text[256], expected[256], segment[32];
        snprintf(text, sizeof(text), "routes:\n" TOPIC_ROUTE("a", "GET", "%s"), paths[i]);
        snprintf(segment, sizeof(segment), "%.*s", (int)strcspn(paths[i] + 1, "/"), paths[i] + 1);
        snprintf(expected, sizeof(expected),
                 "t.yaml:2: routes[0].path: path \"%s\" is under /%s, which is reserved for the built-in endpoints", paths[i],
                 segment);
        expect_error(text, expected);
    }
    expect_error("tables: [{name: p, topic: t}]\nqueries:\n  - {path: \"/tables/p/{k}\", table: p, key: \"path:k\"}\n",
                 "t.yaml:3: queries[0].path: path \"/tables/p/{k}\" is under /tables, which is reserved for the "
                 "built-in endpoints");
    sg_conf_t *conf = load_ok("routes:\n" TOPIC_ROUTE("a", "GET", "/metricsfoo") TOPIC_ROUTE("b", "GET", "/x/metrics")
                                  TOPIC_ROUTE("c", "GET", "/healthz2/{a}"));
    assert_string_equal(conf->routes[0].path, "/metricsfoo");
    sg_conf_destroy(conf);
}

static void test_err_path_template(void **state)
{
    expect_error("routes:\n" TOPIC_ROUTE("a", "POST", "/a//b"),
                 "t.yaml:2: routes[0].path: invalid path template \"/a//b\": empty segment (\"//\") in path template");
    expect_error("routes:\n" TOPIC_ROUTE("a", "POST", "/a/{id"),
                 "t.yaml:2: routes[0].path: invalid path template \"/a/{id\": unterminated '{' in path template");
    expect_error("routes:\n" TOPIC_ROUTE("a", "POST", "/a?x"),
                 "t.yaml:2: routes[0].path: invalid path template \"/a?x\": '?' and '#' are not allowed in a path template");
    expect_error("routes:\n" TOPIC_ROUTE("a", "POST", "orders"), "t.yaml:2: routes[0].path: path \"orders\" must start with '/'");
    expect_error("tables: [{name: p, topic: t}]\nqueries:\n  - {path: \"p/{k}\", table: p, key: \"path:k\"}\n",
                 "t.yaml:3: queries[0].path: path \"p/{k}\" must start with '/'");
}

static void test_err_route_key(void **state)
{
    expect_error("routes:\n  - {name: a, method: POST, path: /a, topic: t}\n"
                 "  - name: b\n    method: POST\n    path: /b/{x}\n    topic: t\n    key: foo\n",
                 "t.yaml:7: routes[1].key: expected path:NAME, body:/json/pointer, header:NAME, claim:NAME or none, got \"foo\"");
    expect_error("routes:\n  - name: b\n    method: POST\n    path: /b/{x}\n    topic: t\n    key: \"path:y\"\n",
                 "t.yaml:6: routes[0].key: path:y names no parameter of path \"/b/{x}\"");
    expect_error("routes:\n  - {name: b, method: POST, path: /b, topic: t, key: \"path:\"}\n",
                 "t.yaml:2: routes[0].key: path:NAME needs a parameter name ([A-Za-z_][A-Za-z0-9_]*), e.g. path:id, "
                 "got \"path:\"");
    expect_error("routes:\n  - {name: b, method: POST, path: /b, topic: t, key: \"body:customerId\"}\n",
                 "t.yaml:2: routes[0].key: body: needs a JSON pointer that is empty or starts with '/', e.g. "
                 "body:/customerId, got \"body:customerId\"");
    expect_error("routes:\n  - {name: b, method: POST, path: /b, topic: t, key: \"body:/a~2\"}\n",
                 "t.yaml:2: routes[0].key: in a JSON pointer '~' must be followed by 0 or 1 (~0 is '~', ~1 is '/'), "
                 "got \"body:/a~2\"");
    expect_error("routes:\n  - {name: b, method: POST, path: /b, topic: t, key: \"header:X Customer\"}\n",
                 "t.yaml:2: routes[0].key: header:NAME needs a valid HTTP header name, e.g. header:x-customer-id, "
                 "got \"header:X Customer\"");
    expect_error("routes:\n  - {name: b, method: POST, path: /b, topic: t, key: \"header:\"}\n",
                 "t.yaml:2: routes[0].key: header:NAME needs a valid HTTP header name, e.g. header:x-customer-id, "
                 "got \"header:\"");

    sg_conf_t *conf = load_ok("routes:\n  - {name: a, method: POST, path: /a, topic: t, key: \"body:\"}\n"
                              "  - {name: b, method: POST, path: /b, topic: t, key: \"header:X-Customer_ID\"}\n"
                              "  - {name: c, method: POST, path: /c, topic: t, key: none}\n"
                              "  - {name: d, method: POST, path: /d, topic: t, key: \"body:/a~1b/0\"}\n");
    assert_int_equal(conf->routes[0].key.source, SG_KEY_BODY);
    assert_string_equal(conf->routes[0].key.name, "");
    assert_int_equal(conf->routes[1].key.source, SG_KEY_HEADER);
    assert_string_equal(conf->routes[1].key.name, "x-customer_id");
    assert_int_equal(conf->routes[2].key.source, SG_KEY_NONE);
    assert_null(conf->routes[2].key.name);
    assert_string_equal(conf->routes[3].key.name, "/a~1b/0");
    sg_conf_destroy(conf);
}

static void test_err_route_other(void **state)
{
    expect_error("routes:\n  - {name: a, method: FETCH, path: /a, topic: t}\n",
                 "t.yaml:2: routes[0].method: unknown method \"FETCH\" (expected one of GET, POST, PUT, PATCH, DELETE)");
    expect_error("schemas: [{name: S, file: s.avsc}]\nroutes:\n  - {name: a, method: POST, path: /a, topic: t, schema: T}\n",
                 "t.yaml:3: routes[0].schema: unknown schema \"T\" (declare it under schemas)");
    expect_error("routes:\n  - name: a\n    method: POST\n    path: /a\n    topic: t\n    format: avro\n",
                 "t.yaml:6: routes[0].format: format avro needs a schema (add schema: NAME)");
    expect_error("routes:\n  - name: a\n    method: POST\n    path: /a\n    topic: t\n"
                 "    reply: {topic: r, timeout: 30s, max_timeout: 20s}\n",
                 "t.yaml:6: routes[0].reply.max_timeout: max_timeout (20s) is shorter than timeout (30s)");
    expect_error("routes:\n  - name: a\n    method: POST\n    path: /a\n    topic: t\n    reply:\n      topic: r\n"
                 "      timeout: 2m\n",
                 "t.yaml:8: routes[0].reply.timeout: max_timeout (1m) is shorter than timeout (2m)");
    expect_error("routes:\n  - name: a\n    method: POST\n    path: /a\n    topic: t\n    reply:\n      timeout: 1s\n",
                 "t.yaml:7: routes[0].reply.topic: required key \"topic\" is missing");
    expect_error("routes:\n  - {name: a, method: POST, path: /a, topic: t, reply: {topic: r, headers: [ok, \"bad header\"]}}\n",
                 "t.yaml:2: routes[0].reply.headers[1]: \"bad header\" is not a valid HTTP header name");
    expect_error("routes:\n  - {name: a, method: POST, path: /a, topic: \"bad topic\"}\n",
                 "t.yaml:2: routes[0].topic: invalid topic name \"bad topic\": a Kafka topic name may only contain "
                 "letters, digits, '.', '_' and '-'");

    expect_error("routes:\n  - {name: a, method: POST, path: /a, topic: t, reply: {topic: r, partitions: [0, 2, 0]}}\n",
                 "t.yaml:2: routes[0].reply.partitions[2]: partition 0 is listed twice");
    expect_error("routes:\n  - {name: a, method: POST, path: /a, topic: t, reply: {topic: r, partitions: [-1]}}\n",
                 "t.yaml:2: routes[0].reply.partitions[0]: expected a partition number 0..100000, got \"-1\"");
    expect_error("routes:\n  - {name: a, method: POST, path: /a, topic: t, reply: {topic: r, partitions: 3}}\n",
                 "t.yaml:2: routes[0].reply.partitions: expected a list of partition numbers, got \"3\"");

    /* Pinned reply partitions, in file order. */
    sg_conf_t *pinned = load_ok("routes:\n  - {name: a, method: POST, path: /a, topic: t, reply: {topic: r, "
                                "partitions: [3, 1]}}\n");
    assert_int_equal(pinned->routes[0].reply.n_partitions, 2);
    assert_int_equal(pinned->routes[0].reply.partitions[0], 3);
    assert_int_equal(pinned->routes[0].reply.partitions[1], 1);
    sg_conf_destroy(pinned);

    /* Method is case-insensitive in the file and stored upper-case. */
    sg_conf_t *conf = load_ok("routes:\n  - {name: a, method: patch, path: /a, topic: t}\n"
                              "  - {name: b, method: Delete, path: /a, topic: t}\n");
    assert_string_equal(conf->routes[0].method, "PATCH");
    assert_string_equal(conf->routes[1].method, "DELETE");
    sg_conf_destroy(conf);
}

static void test_err_query(void **state)
{
    expect_error("tables: [{name: p, topic: t}]\nqueries:\n  - {path: \"/p/{k}\", table: q, key: \"path:k\"}\n",
                 "t.yaml:3: queries[0].table: unknown table \"q\" (declare it under tables)");
    expect_error("tables: [{name: p, topic: t}]\nqueries:\n  - path: \"/p/{k}\"\n    table: p\n    key: \"path:id\"\n",
                 "t.yaml:5: queries[0].key: path:id names no parameter of path \"/p/{k}\"");
    expect_error("tables: [{name: p, topic: t}]\nqueries:\n  - {path: \"/p\", table: p, key: \"body:/id\"}\n",
                 "t.yaml:3: queries[0].key: a query is a GET without a body: take the key from path:NAME, "
                 "header:NAME or claim:NAME (none: a scan)");
}

static void test_err_missing_required(void **state)
{
    expect_error("routes:\n  - {method: POST, path: /a, topic: t}\n", "t.yaml:2: routes[0].name: required key \"name\" is missing");
    expect_error("routes:\n  - name: a\n    path: /a\n    topic: t\n",
                 "t.yaml:2: routes[0].method: required key \"method\" is missing");
    expect_error("routes:\n  - {name: x, method: GET, path: /x, topic: t}\n  - name: a\n    method: POST\n    topic: t\n",
                 "t.yaml:3: routes[1].path: required key \"path\" is missing");
    expect_error("routes:\n  - name: a\n    method: POST\n    path: /a\n",
                 "t.yaml:2: routes[0].topic: required key \"topic\" is missing");
    expect_error("tables:\n  - topic: t\n", "t.yaml:2: tables[0].name: required key \"name\" is missing");
    expect_error("tables:\n  - {name: p}\n", "t.yaml:2: tables[0].topic: required key \"topic\" is missing");
    expect_error("tables: [{name: p, topic: t}]\nqueries:\n  - {table: p, key: \"path:k\"}\n",
                 "t.yaml:3: queries[0].path: required key \"path\" is missing");
    expect_error("tables: [{name: p, topic: t}]\nqueries:\n  - {path: \"/p/{k}\", key: \"path:k\"}\n",
                 "t.yaml:3: queries[0].table: required key \"table\" is missing");
    expect_error("tables: [{name: p, topic: t}]\nqueries:\n  - {path: \"/p/{k}\", table: p}\n",
                 "t.yaml:3: queries[0].key: required key \"key\" is missing");
    expect_error("topics:\n  - {partitions: 2}\n", "t.yaml:2: topics[0].name: required key \"name\" is missing");
    expect_error("schemas:\n  - {name: S}\n", "t.yaml:2: schemas[0].file: required key \"file\" is missing");
    expect_error("routes:\n  - \n", "t.yaml:2: routes[0].name: required key \"name\" is missing");
}

static void test_err_topic_names(void **state)
{
    expect_error("topics:\n  - {name: \".\"}\n",
                 "t.yaml:2: topics[0].name: invalid topic name \".\": \".\" and \"..\" are not valid Kafka topic names");
    expect_error("topics:\n  - {name: \"..\"}\n",
                 "t.yaml:2: topics[0].name: invalid topic name \"..\": \".\" and \"..\" are not valid Kafka topic names");
    expect_error("topics:\n  - {name: \"a/b\"}\n",
                 "t.yaml:2: topics[0].name: invalid topic name \"a/b\": a Kafka topic name may only contain letters, "
                 "digits, '.', '_' and '-'");
    char text[400] = "topics:\n  - name: ";
    size_t len = strlen(text);
    memset(text + len, 'x', 250);
    text[len + 250] = '\0';
    expect_error_prefix(text, "t.yaml:2: topics[0].name: invalid topic name \"xxx");
    text[len + 249] = '\0'; /* 249 characters: the longest valid name */
    sg_conf_t *conf = load_ok(text);
    assert_int_equal(strlen(conf->topics[0].name), 249);
    sg_conf_destroy(conf);
}

static void test_err_listen_kafka_cors(void **state)
{
    expect_error("listen: [\"::1:80\"]\n",
                 "t.yaml:1: listen[0]: write an IPv6 address in brackets, e.g. [::1]:8080, got \"::1:80\"");
    expect_error("listen: [\"127.0.0.1\"]\n",
                 "t.yaml:1: listen[0]: expected host:port, e.g. 127.0.0.1:8080 or [::1]:8080, got \"127.0.0.1\"");
    expect_error("listen: [\"127.0.0.1:70000\"]\n", "t.yaml:1: listen[0]: invalid port in \"127.0.0.1:70000\" (0..65535)");
    expect_error("listen: [\"127.0.0.1:\"]\n", "t.yaml:1: listen[0]: invalid port in \"127.0.0.1:\" (0..65535)");
    expect_error("listen: [\"[zz]:80\"]\n", "t.yaml:1: listen[0]: invalid IPv6 address in \"[zz]:80\"");
    expect_error("listen:\n  - {address: \"a:1\", cert: c.pem}\n",
                 "t.yaml:2: listen[0].key: a TLS listener needs both cert and key");
    expect_error("listen:\n  - {cert: c.pem, key: k.pem}\n", "t.yaml:2: listen[0].address: required key \"address\" is missing");
    expect_error("kafka:\n  brokers: \"h1:9092,,h2\"\n",
                 "t.yaml:2: kafka.brokers: expected \"embedded\" or a bootstrap list like \"h1:9092,h2:9092\", "
                 "got \"h1:9092,,h2\"");
    expect_error("cors:\n  origins: [\"*\", \"http://a\"]\n",
                 "t.yaml:2: cors.origins: \"*\" allows every origin and must be the only entry");
    expect_error("cors:\n  origins: [\"http://localhost:5173/\"]\n",
                 "t.yaml:2: cors.origins[0]: \"http://localhost:5173/\" is not an origin: expected scheme://host[:port] "
                 "with no path or trailing slash");
    expect_error("cors:\n  origins: [\"localhost\"]\n",
                 "t.yaml:2: cors.origins[0]: \"localhost\" is not an origin: expected \"*\" or scheme://host[:port], "
                 "e.g. http://localhost:5173");
}

/* ------------------------------------------------------------------------------------------ */

static void test_parse_duration(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        {"0", 0},       {"250", 250},
        {"250ms", 250}, {"10s", 10000},
        {"2m", 120000}, {"1h", 3600000},
        {"0s", 0},      {"9223372036854775807", INT64_MAX},
        {"007s", 7000}, {"2562047788015h", 2562047788015LL * 3600 * 1000},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ms = -42;
        if (sg_conf_parse_duration_ms(good[i].text, &ms) != 0 || ms != good[i].ms)
            fail_msg("duration %s: got %lld", good[i].text, (long long)ms);
    }
    static const char *const bad[] = {"",
                                      "s",
                                      "-1s",
                                      "+1s",
                                      "1.5s",
                                      "10 s",
                                      "10parsecs",
                                      "10S",
                                      "1d",
                                      "1ms ",
                                      " 1s",
                                      "1sm",
                                      "9223372036854775808",
                                      "2562047788016h",
                                      "9223372036854776s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = -42;
        if (sg_conf_parse_duration_ms(bad[i], &ms) != -1 || ms != -42)
            fail_msg("duration \"%s\" should be refused", bad[i]);
    }
    int64_t ms;
    assert_int_equal(sg_conf_parse_duration_ms(NULL, &ms), -1);
}

static void test_parse_size(void **state)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } good[] = {
        {"0", 0},
        {"512", 512},
        {"512B", 512},
        {"10KB", 10000},
        {"1MB", 1000000},
        {"2GB", 2000000000},
        {"64KiB", 65536},
        {"1MiB", 1048576},
        {"1GiB", 1073741824},
        {"18446744073709551615", UINT64_MAX},
        {"17179869183GiB", 17179869183ULL << 30},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t bytes = 42;
        if (sg_conf_parse_size(good[i].text, &bytes) != 0 || bytes != good[i].bytes)
            fail_msg("size %s: got %llu", good[i].text, (unsigned long long)bytes);
    }
    static const char *const bad[] = {
        "", "B", "-1", "+1", "1.5MiB", "1 MiB", "1kb", "1KIB", "1TiB", "1MiBx", " 1", "18446744073709551616", "17179869184GiB"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t bytes = 42;
        if (sg_conf_parse_size(bad[i], &bytes) != -1 || bytes != 42)
            fail_msg("size \"%s\" should be refused", bad[i]);
    }
}

static void test_dump_reference(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    sg_conf_dump_reference(f);
    fclose(f);
    assert_non_null(strstr(text, "| Key | Type | Default | Description |\n"));
    assert_non_null(strstr(text, "| `threads` | integer 1..64 | `2` | Event loop threads. |\n"));
    assert_non_null(strstr(text, "| `kafka.produce_timeout` | duration 1ms..5m | `10s` |"));
    assert_non_null(strstr(text, "| `limits.body_bytes` | size 1B..64MiB | `1MiB` |"));
    assert_non_null(strstr(text, "| `routes[].name` | name | required |"));
    assert_non_null(strstr(text, "| `routes[].reply.max_timeout` | duration 1ms..1h | `60s` |"));
    assert_non_null(strstr(text, "| `routes[].format` | json \\| avro | `json` |"));
    assert_non_null(strstr(text, "| `cors.max_age` | duration (whole seconds) 0s..24h | `600s` |"));
    assert_non_null(strstr(text, "| `requests.retention` | duration 1s..720h | `1h` |"));
    /* Every table row of the model is documented: count the key rows. */
    size_t rows = 0;
    for (const char *p = text; (p = strstr(p, "\n| `")) != NULL; p++)
        rows++;
    assert_int_equal(rows, 113); /* 48 + requests (3 rows) + reply.partitions + limits.token_wait(_max) + schema_registry
                                  * (2 rows) + log.level and the log section (2 rows) = 58; DESIGN §6 adds 34: scopes and
                                  * public on routes, tables and queries (6), limits.registry_write_rate/_burst (2),
                                  * auth (1) with jwt (1 + 13), api_keys (1 + 3) and principal_header (1), and
                                  * rate_limits (1 + 5); static (3 rows), log.format, log.access, log.access_format: 6;
                                  * hardening (issue 11) adds limits.inflight_bytes, connections, write_timeout and
                                  * queued_bytes: 4; the reply header names (3); DESIGN §8 adds deployment (1 + 3) and
                                  * tables[].placement and .standbys (2); issue 13 adds limits.table_cache (1);
                                  * topics[].config (1) */
    assert_non_null(strstr(text, "| `topics[].config` | mapping of string to scalar |  | Topic configs set when"));
    assert_non_null(strstr(text, "| `limits.table_cache` | size 8MiB..1024GiB | `512MiB` |"));
    assert_non_null(strstr(text, "| `auth.jwt.algorithms` | list of JWS algorithms | `[RS256, ES256]` |"));
    assert_non_null(strstr(text, "| `rate_limits[].rate` | rate (N/s, N/m, N/h) | required |"));
    assert_non_null(strstr(text, "| `auth.api_keys[].sha256` | SHA-256 (64 hex digits) | required |"));
    assert_non_null(strstr(text, "| `log.level` | error \\| warn \\| info \\| debug | `info` |"));
    assert_non_null(strstr(text, "| `deployment.name` | name | `default` |"));
    assert_non_null(strstr(text, "| `deployment.advertise` | http(s) URL |  |"));
    free(text);
}

static void test_log_level(void **state)
{
    sg_conf_t *conf = load_ok("{}");
    assert_int_equal(conf->log.level, 2); /* info */
    sg_conf_destroy(conf);
    conf = load_ok("log: {level: debug}\n");
    assert_int_equal(conf->log.level, 3);
    sg_conf_destroy(conf);
    conf = load_ok("log: {level: error}\n");
    assert_int_equal(conf->log.level, 0);
    sg_conf_destroy(conf);
    expect_error_prefix("log:\n  level: verbose\n", "t.yaml:2: log.level: ");
}

static void test_schema_registry(void **state)
{
    sg_conf_t *conf = load_ok("{}");
    assert_null(conf->schema_registry.url);
    sg_conf_destroy(conf);
    conf = load_ok("schema_registry: {url: \"http://registry.internal:8081/prefix/path\"}\n");
    assert_string_equal(conf->schema_registry.url, "http://registry.internal:8081/prefix/path");
    sg_conf_destroy(conf);
    conf = load_ok("schema_registry:\n  url: http://127.0.0.1\n");
    assert_string_equal(conf->schema_registry.url, "http://127.0.0.1");
    sg_conf_destroy(conf);
    expect_error("schema_registry: {url: \"https://r:8081\"}\n",
                 "t.yaml:1: schema_registry.url: expected http://HOST[:PORT][/PREFIX] (https is not supported)");
    expect_error("schema_registry: {url: \"r:8081\"}\n", "t.yaml:1: schema_registry.url: expected http://HOST[:PORT][/PREFIX]");
    expect_error("schema_registry: {url: \"http://:8081\"}\n", "t.yaml:1: schema_registry.url: the URL has no host");
    expect_error("schema_registry: {url: \"http://r:0\"}\n", "t.yaml:1: schema_registry.url: the port must be 1..65535");
    expect_error("schema_registry: {url: \"http://r:80x\"}\n", "t.yaml:1: schema_registry.url: the port must be 1..65535");
    expect_error("schema_registry: {url: \"http://r:8081/\"}\n", "t.yaml:1: schema_registry.url: remove the trailing '/'");
    expect_error("schema_registry: {url: \"http://r/a?b=c\"}\n",
                 "t.yaml:1: schema_registry.url: the URL must not contain spaces, control characters, '?' or '#'");
    expect_error("schema_registry: {uri: x}\n", "t.yaml:1: schema_registry.uri: unknown key \"uri\" (did you mean \"url\"?)");
}

/* ------------------------------------------------------------------------------------------ */
/* Authentication and rate limits (DESIGN §6)                                                 */

#define KEY_HASH "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" /* sha256("test") */

static const char auth_yaml[] =
    "routes:\n"                                                                                       /* 1 */
    "  - {name: place-order, method: POST, path: /orders, topic: o, scopes: [\"orders:write\", x]}\n" /* 2 */
    "  - {name: open, method: POST, path: /open, topic: o, public: true}\n"                           /* 3 */
    "tables:\n"                                                                                       /* 4 */
    "  - {name: profiles, topic: p, scopes: [\"profiles:read\"]}\n"                                   /* 5 */
    "queries:\n"                                                                                      /* 6 */
    "  - {path: \"/p/{id}\", table: profiles, key: \"path:id\", public: true}\n"                      /* 7 */
    "auth:\n"                                                                                         /* 8 */
    "  jwt:\n"                                                                                        /* 9 */
    "    issuer: \"https://id.example\"\n"                                                            /* 10 */
    "    audience: streamgate\n"                                                                      /* 11 */
    "    jwks_url: \"https://id.example:8443/keys?v=1\"\n"                                            /* 12 */
    "    jwks_ca_file: /etc/ca.pem\n"                                                                 /* 13 */
    "    jwks_refresh: 10m\n"                                                                         /* 14 */
    "    jwks_min_refresh: 1s\n"                                                                      /* 15 */
    "    jwks_timeout: 2s\n"                                                                          /* 16 */
    "    algorithms: [rs256, ES384, HS512]\n"                                                         /* 17 */
    "    leeway: 5s\n"                                                                                /* 18 */
    "    scopes_claim: scp\n"                                                                         /* 19 */
    "    principal_claim: client_id\n"                                                                /* 20 */
    "    hmac_secret: \"0123456789abcdef0123456789abcdef\"\n"                                         /* 21 */
    "  api_keys:\n"                                                                                   /* 22 */
    "    - {name: importer, sha256: \"" KEY_HASH "\", scopes: [\"orders:write\"]}\n"                  /* 23 */
    "    - {name: reader, sha256: \"" KEY_HASH "\"}\n"                                                /* 24 */
    "  principal_header: X-Principal\n"                                                               /* 25 */
    "rate_limits:\n"                                                                                  /* 26 */
    "  - {name: per-user, routes: [place-order], per: principal, rate: 50/s, burst: 100}\n"           /* 27 */
    "  - {name: per-ip, per: ip, rate: 3000/m}\n"                                                     /* 28 */
    "limits: {registry_write_rate: 100/h, registry_write_burst: 5}\n";                                /* 29 */

static void test_auth_values(void **state)
{
    /* Line 24 repeats line 23's hash; that is an error (checked below), so it differs here. */
    char text[sizeof(auth_yaml)];
    memcpy(text, auth_yaml, sizeof(auth_yaml));
    char *second = strstr(strstr(text, "name: reader"), KEY_HASH);
    second[63] = '9';
    sg_conf_t *conf = load_ok(text);

    assert_true(conf->has_auth);
    const sg_auth_conf_t *auth = &conf->auth;
    assert_true(auth->has_jwt);
    assert_string_equal(auth->jwt.issuer, "https://id.example");
    assert_string_equal(auth->jwt.audience, "streamgate");
    assert_null(auth->jwt.jwks_file);
    assert_string_equal(auth->jwt.jwks_url.text, "https://id.example:8443/keys?v=1");
    assert_true(auth->jwt.jwks_url.tls);
    assert_string_equal(auth->jwt.jwks_url.host, "id.example");
    assert_int_equal(auth->jwt.jwks_url.port, 8443);
    assert_string_equal(auth->jwt.jwks_url.path, "/keys?v=1");
    assert_string_equal(auth->jwt.jwks_ca_file, "/etc/ca.pem");
    assert_int_equal(auth->jwt.jwks_refresh_ms, 600000);
    assert_int_equal(auth->jwt.jwks_min_refresh_ms, 1000);
    assert_int_equal(auth->jwt.jwks_timeout_ms, 2000);
    assert_int_equal(auth->jwt.n_algorithms, 3);
    assert_string_equal(auth->jwt.algorithms[0], "RS256"); /* canonical upper case */
    assert_string_equal(auth->jwt.algorithms[1], "ES384");
    assert_string_equal(auth->jwt.algorithms[2], "HS512");
    assert_int_equal(auth->jwt.leeway_ms, 5000);
    assert_string_equal(auth->jwt.scopes_claim, "scp");
    assert_string_equal(auth->jwt.principal_claim, "client_id");
    assert_string_equal(auth->jwt.hmac_secret, "0123456789abcdef0123456789abcdef");
    assert_int_equal(auth->n_api_keys, 2);
    assert_string_equal(auth->api_keys[0].name, "importer");
    static const uint8_t test_hash[32] = {0x9f, 0x86, 0xd0, 0x81, 0x88, 0x4c, 0x7d, 0x65, 0x9a, 0x2f, 0xea,
                                          0xa0, 0xc5, 0x5a, 0xd0, 0x15, 0xa3, 0xbf, 0x4f, 0x1b, 0x2b, 0x0b,
                                          0x82, 0x2c, 0xd1, 0x5d, 0x6c, 0x15, 0xb0, 0xf0, 0x0a, 0x08};
    assert_memory_equal(auth->api_keys[0].sha256, test_hash, 32);
    assert_int_equal(auth->api_keys[0].n_scopes, 1);
    assert_string_equal(auth->api_keys[0].scopes[0], "orders:write");
    assert_int_equal(auth->api_keys[0].line, 23);
    assert_int_equal(auth->api_keys[1].n_scopes, 0);
    assert_int_equal(auth->api_keys[1].sha256[31], 0x09);
    assert_string_equal(auth->principal_header, "x-principal"); /* lower-cased */

    assert_int_equal(conf->routes[0].access.n_scopes, 2);
    assert_string_equal(conf->routes[0].access.scopes[0], "orders:write");
    assert_string_equal(conf->routes[0].access.scopes[1], "x");
    assert_false(conf->routes[0].access.is_public);
    assert_true(conf->routes[1].access.is_public);
    assert_int_equal(conf->routes[1].access.n_scopes, 0);
    assert_int_equal(conf->tables[0].access.n_scopes, 1);
    assert_string_equal(conf->tables[0].access.scopes[0], "profiles:read");
    assert_true(conf->queries[0].access.is_public);

    assert_int_equal(conf->n_rate_limits, 2);
    const sg_rate_limit_conf_t *limit = &conf->rate_limits[0];
    assert_string_equal(limit->name, "per-user");
    assert_int_equal(limit->n_routes, 1);
    assert_string_equal(limit->routes[0], "place-order");
    assert_int_equal(limit->per, SG_RATE_PER_PRINCIPAL);
    assert_int_equal(limit->rate.count, 50);
    assert_int_equal(limit->rate.period_ms, 1000);
    assert_int_equal(limit->burst, 100);
    assert_int_equal(limit->line, 27);
    limit = &conf->rate_limits[1];
    assert_int_equal(limit->n_routes, 0); /* every endpoint */
    assert_int_equal(limit->per, SG_RATE_PER_IP);
    assert_int_equal(limit->rate.count, 3000);
    assert_int_equal(limit->rate.period_ms, 60000);
    assert_int_equal(limit->burst, 3000); /* default: the rate's count */
    assert_int_equal(conf->limits.registry_write_rate.count, 100);
    assert_int_equal(conf->limits.registry_write_rate.period_ms, 3600000);
    assert_int_equal(conf->limits.registry_write_burst, 5);
    sg_conf_destroy(conf);
}

static void test_auth_defaults(void **state)
{
    /* No auth section: nothing is required, the registry write limit still applies. */
    sg_conf_t *conf = load_ok("{}");
    assert_false(conf->has_auth);
    assert_null(conf->auth.principal_header);
    assert_int_equal(conf->n_rate_limits, 0);
    assert_int_equal(conf->limits.registry_write_rate.count, 10);
    assert_int_equal(conf->limits.registry_write_rate.period_ms, 1000);
    assert_int_equal(conf->limits.registry_write_burst, 20);
    sg_conf_destroy(conf);

    conf = load_ok("auth:\n  jwt: {issuer: i, audience: a, jwks_file: keys/jwks.json}\n");
    assert_true(conf->has_auth);
    assert_true(conf->auth.has_jwt);
    assert_string_equal(conf->auth.jwt.jwks_file, "keys/jwks.json");
    assert_null(conf->auth.jwt.jwks_url.text);
    assert_null(conf->auth.jwt.jwks_ca_file);
    assert_int_equal(conf->auth.jwt.n_algorithms, 2);
    assert_string_equal(conf->auth.jwt.algorithms[0], "RS256");
    assert_string_equal(conf->auth.jwt.algorithms[1], "ES256");
    assert_int_equal(conf->auth.jwt.leeway_ms, 30000);
    assert_string_equal(conf->auth.jwt.scopes_claim, "scope");
    assert_string_equal(conf->auth.jwt.principal_claim, "sub");
    assert_null(conf->auth.jwt.hmac_secret);
    assert_int_equal(conf->auth.jwt.jwks_refresh_ms, 300000);
    assert_int_equal(conf->auth.jwt.jwks_min_refresh_ms, 5000);
    assert_int_equal(conf->auth.jwt.jwks_timeout_ms, 5000);
    assert_int_equal(conf->auth.n_api_keys, 0);
    assert_string_equal(conf->auth.principal_header, "streamgate-principal");
    sg_conf_destroy(conf);

    /* API keys alone; HMAC alone needs no key set; plain http URLs default to port 80 and path "/". */
    conf = load_ok("auth: {api_keys: [{name: k, sha256: \"" KEY_HASH "\"}]}\n");
    assert_false(conf->auth.has_jwt);
    assert_int_equal(conf->auth.n_api_keys, 1);
    sg_conf_destroy(conf);
    conf = load_ok("auth:\n  jwt: {issuer: i, audience: a, algorithms: [HS256], hmac_secret: "
                   "\"0123456789abcdef0123456789abcdef\"}\n");
    assert_null(conf->auth.jwt.jwks_file);
    sg_conf_destroy(conf);
    conf = load_ok("auth:\n  jwt: {issuer: i, audience: a, jwks_url: \"http://[::1]:8080\"}\n");
    assert_false(conf->auth.jwt.jwks_url.tls);
    assert_string_equal(conf->auth.jwt.jwks_url.host, "::1");
    assert_int_equal(conf->auth.jwt.jwks_url.port, 8080);
    assert_string_equal(conf->auth.jwt.jwks_url.path, "/");
    sg_conf_destroy(conf);
    conf = load_ok("auth:\n  jwt: {issuer: i, audience: a, jwks_url: \"https://idp/jwks\"}\nlimits: {registry_write_rate: off}\n");
    assert_int_equal(conf->auth.jwt.jwks_url.port, 443);
    assert_int_equal(conf->limits.registry_write_rate.count, 0);
    sg_conf_destroy(conf);
}

#define JWT_HEAD "auth:\n  jwt:\n    issuer: i\n    audience: a\n" /* lines 1-4 */

static void test_err_auth_jwt(void **state)
{
    expect_error(JWT_HEAD "    jwks_file: k.json\n    algorithms: [RS256, none]\n",
                 "t.yaml:6: auth.jwt.algorithms[1]: \"none\" is never accepted: every token must be signed");
    expect_error(JWT_HEAD "    jwks_file: k.json\n    algorithms: [RS1]\n",
                 "t.yaml:6: auth.jwt.algorithms[0]: \"RS1\" is not a supported algorithm (RS256, RS384, RS512, PS256, "
                 "PS384, PS512, ES256, ES384, ES512, HS256, HS384, HS512)");
    expect_error(JWT_HEAD "    jwks_file: k.json\n    algorithms: []\n",
                 "t.yaml:6: auth.jwt.algorithms: needs at least 1 algorithm");
    expect_error(JWT_HEAD "    jwks_file: k.json\n    algorithms:\n      - RS256\n      - HS256\n",
                 "t.yaml:8: auth.jwt.algorithms[1]: HS256 needs hmac_secret: HMAC tokens are checked with that secret "
                 "only, never with a key from the key set");
    expect_error(JWT_HEAD "    jwks_file: k.json\n    hmac_secret: \"0123456789abcdef0123456789abcdef\"\n",
                 "t.yaml:6: auth.jwt.hmac_secret: hmac_secret is set but algorithms allows no HS256, HS384 or HS512");
    expect_error(JWT_HEAD "    algorithms: [HS256]\n    hmac_secret: short\n",
                 "t.yaml:6: auth.jwt.hmac_secret: an HMAC secret needs at least 32 bytes (RFC 7518 3.2)");
    expect_error(JWT_HEAD "    jwks_file: k.json\n    jwks_url: http://idp/keys\n",
                 "t.yaml:6: auth.jwt.jwks_url: give jwks_file or jwks_url, not both");
    expect_error(JWT_HEAD, "t.yaml:3: auth.jwt.jwks_file: algorithms other than HS256/384/512 need a key set: add "
                           "jwks_file or jwks_url");
    expect_error(JWT_HEAD "    jwks_url: ftp://idp/keys\n",
                 "t.yaml:5: auth.jwt.jwks_url: expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH, got "
                 "\"ftp://idp/keys\"");
    expect_error(JWT_HEAD "    jwks_url: \"https://:443/keys\"\n",
                 "t.yaml:5: auth.jwt.jwks_url: the URL has no host, got \"https://:443/keys\"");
    expect_error(JWT_HEAD "    jwks_url: \"https://idp:0/keys\"\n",
                 "t.yaml:5: auth.jwt.jwks_url: the port must be 1..65535, got \"https://idp:0/keys\"");
    expect_error(JWT_HEAD "    jwks_url: \"https://user@idp/keys\"\n",
                 "t.yaml:5: auth.jwt.jwks_url: the URL must not contain spaces, control characters, '#' or user "
                 "information ('@'), got \"https://user@idp/keys\"");
    expect_error(JWT_HEAD "    jwks_url: http://idp/keys\n    jwks_ca_file: ca.pem\n",
                 "t.yaml:6: auth.jwt.jwks_ca_file: jwks_ca_file is only used with an https:// jwks_url");
    expect_error(JWT_HEAD "    jwks_url: http://idp/keys\n    jwks_refresh: 2s\n    jwks_min_refresh: 3s\n",
                 "t.yaml:7: auth.jwt.jwks_min_refresh: jwks_min_refresh is longer than jwks_refresh");
    expect_error(JWT_HEAD "    jwks_url: http://idp/keys\n    jwks_min_refresh: 10ms\n",
                 "t.yaml:6: auth.jwt.jwks_min_refresh: \"10ms\" is out of range (100ms..1h)");
    expect_error(JWT_HEAD "    jwks_url: http://idp/keys\n    leeway: 11m\n",
                 "t.yaml:6: auth.jwt.leeway: \"11m\" is out of range (0s..10m)");
    expect_error("auth:\n  jwt: {audience: a, jwks_file: k.json}\n",
                 "t.yaml:2: auth.jwt.issuer: required key \"issuer\" is missing");
    expect_error("auth:\n  jwt: {issuer: i, jwks_file: k.json}\n",
                 "t.yaml:2: auth.jwt.audience: required key \"audience\" is missing");
    expect_error(JWT_HEAD "    jwks_file: k.json\n    algorithm: [RS256]\n",
                 "t.yaml:6: auth.jwt.algorithm: unknown key \"algorithm\" (did you mean \"algorithms\"?)");
}

static void test_err_auth_keys(void **state)
{
    expect_error("auth: {}\n", "t.yaml:1: auth: configure jwt, api_keys or both");
    expect_error("auth:\n  principal_header: x\n", "t.yaml:2: auth: configure jwt, api_keys or both");
    expect_error("auth:\n  api_keys:\n    - {name: k, sha256: abc}\n",
                 "t.yaml:3: auth.api_keys[0].sha256: expected the key's SHA-256 as 64 hex digits (printf %s \"$KEY\" | "
                 "sha256sum), got 3 characters");
    expect_error(
        "auth:\n  api_keys:\n    - {name: k, sha256: \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g\"}\n",
        "t.yaml:3: auth.api_keys[0].sha256: expected the key's SHA-256 as 64 hex digits, character 64 is not one");
    expect_error("auth:\n  api_keys:\n    - {name: k}\n", "t.yaml:3: auth.api_keys[0].sha256: required key \"sha256\" is missing");
    expect_error("auth:\n  api_keys:\n    - {name: k, sha256: \"" KEY_HASH "\"}\n    - {name: k, sha256: \"" KEY_HASH "\"}\n",
                 "t.yaml:4: auth.api_keys[1].name: duplicate API key name \"k\" (first at line 3)");
    expect_error("auth:\n  api_keys:\n    - {name: k, sha256: \"" KEY_HASH "\"}\n    - {name: l, sha256: \"" KEY_HASH "\"}\n",
                 "t.yaml:4: auth.api_keys[1].sha256: the same key as api_keys[0] (\"k\")");
    expect_error("auth:\n  api_keys:\n    - {name: k, sha256: \"" KEY_HASH "\", scopes: [\"a b\"]}\n",
                 "t.yaml:3: auth.api_keys[0].scopes[0]: \"a b\" is not a scope token: use printable ASCII without spaces, "
                 "'\"' or '\\'");
    expect_error("auth:\n  api_keys: [{name: k, sha256: \"" KEY_HASH "\"}]\n  principal_header: \"a b\"\n",
                 "t.yaml:3: auth.principal_header: is not a valid header name");
    expect_error("auth:\n  api_keys: [{name: k, sha256: \"" KEY_HASH "\"}]\n  principal_header: Kafka_CorrelationId\n",
                 "t.yaml:3: auth.principal_header: kafka_correlationid is a header streamgate sets on events itself");
}

#define AUTH_KEYS "auth: {api_keys: [{name: k, sha256: \"" KEY_HASH "\"}]}\n" /* line 1 */

static void test_err_access_and_limits(void **state)
{
    expect_error("routes:\n  - {name: a, method: POST, path: /a, topic: t, scopes: [w]}\n",
                 "t.yaml:2: routes[0].scopes: scopes need an auth section (without one no credential is checked)");
    expect_error("tables:\n  - {name: p, topic: t, scopes: [r]}\n",
                 "t.yaml:2: tables[0].scopes: scopes need an auth section (without one no credential is checked)");
    expect_error(AUTH_KEYS
                 "tables: [{name: p, topic: t}]\nqueries:\n  - {path: /p, table: p, key: none, scopes: [r], public: true}\n",
                 "t.yaml:4: queries[0].public: a public endpoint cannot require scopes");
    expect_error(AUTH_KEYS "routes:\n  - {name: a, method: POST, path: /a, topic: t, public: maybe}\n",
                 "t.yaml:3: routes[0].public: expected true or false, got \"maybe\"");

    expect_error(AUTH_KEYS "routes: [{name: a, method: POST, path: /a, topic: t}]\n"
                           "rate_limits:\n  - {name: l, routes: [a, b], per: ip, rate: 5/s}\n",
                 "t.yaml:4: rate_limits[0].routes[1]: unknown route \"b\" (declare it under routes)");
    expect_error("routes: [{name: a, method: POST, path: /a, topic: t}]\n"
                 "rate_limits:\n  - {name: l, routes: [a], per: principal, rate: 5/s}\n",
                 "t.yaml:3: rate_limits[0].per: per: principal needs an auth section (or use per: ip)");
    expect_error(AUTH_KEYS "routes: [{name: a, method: POST, path: /a, topic: t, public: true}]\n"
                           "rate_limits:\n  - {name: l, routes: [a], per: principal, rate: 5/s}\n",
                 "t.yaml:4: rate_limits[0].routes[0]: route \"a\" is public, so it has no principal to count: use per: ip");
    expect_error("rate_limits:\n  - {name: l, per: ip, rate: 5/d}\n",
                 "t.yaml:2: rate_limits[0].rate: expected a rate such as 50/s, 3000/m or 100000/h, got \"5/d\"");
    expect_error("rate_limits:\n  - {name: l, per: ip, rate: off}\n",
                 "t.yaml:2: rate_limits[0].rate: expected a rate such as 50/s, 3000/m or 100000/h, got \"off\"");
    expect_error("rate_limits:\n  - {name: l, per: ip, rate: 0/s}\n",
                 "t.yaml:2: rate_limits[0].rate: \"0/s\" is out of range (1..1000000 per second, minute or hour)");
    expect_error("rate_limits:\n  - {name: l, per: ip, rate: 1000001/s}\n",
                 "t.yaml:2: rate_limits[0].rate: \"1000001/s\" is out of range (1..1000000 per second, minute or hour)");
    expect_error("rate_limits:\n  - {name: l, per: ip, rate: 5/s, burst: 0}\n",
                 "t.yaml:2: rate_limits[0].burst: \"0\" is out of range (1..10000000)");
    expect_error("rate_limits:\n  - {name: l, rate: 5/s}\n", "t.yaml:2: rate_limits[0].per: required key \"per\" is missing");
    expect_error("rate_limits:\n  - {name: l, per: user, rate: 5/s}\n",
                 "t.yaml:2: rate_limits[0].per: unknown per \"user\" (expected one of principal, ip)");
    expect_error("rate_limits:\n  - {name: l, per: ip, rate: 5/s}\n  - {name: l, per: ip, rate: 6/s}\n",
                 "t.yaml:3: rate_limits[1].name: duplicate rate limit name \"l\" (first at line 2)");
    expect_error("rate_limits:\n  - {name: registry-writes, per: ip, rate: 5/s}\n",
                 "t.yaml:2: rate_limits[0].name: registry-writes is the name of the built-in limit "
                 "(limits.registry_write_rate)");
    /* claim:NAME keys come from the caller's credential: only with auth, never on public endpoints. */
    expect_error("routes:\n  - {name: a, method: POST, path: /a, topic: t, key: \"claim:sub\"}\n",
                 "t.yaml:2: routes[0].key: claim:NAME needs an auth section (the claim comes from the caller's credential)");
    expect_error("tables: [{name: p, topic: t}]\nqueries:\n  - {path: /me, table: p, key: \"claim:sub\"}\n",
                 "t.yaml:3: queries[0].key: claim:NAME needs an auth section (the claim comes from the caller's credential)");
    expect_error(AUTH_KEYS "tables: [{name: p, topic: t}]\nqueries:\n  - {path: /me, table: p, key: \"claim:sub\", public: true}\n",
                 "t.yaml:4: queries[0].key: a public endpoint has no credential to take claim:NAME from");
    expect_error(AUTH_KEYS "routes:\n  - {name: a, method: POST, path: /a, topic: t, key: \"claim:\"}\n",
                 "t.yaml:3: routes[0].key: claim:NAME needs a claim name (letters, digits and !#$%&'*+-.^_`|~), e.g. "
                 "claim:sub, got \"claim:\"");
    /* With auth, a key never comes from a header that carries a credential or the principal. */
    expect_error(AUTH_KEYS "routes:\n  - {name: a, method: POST, path: /a, topic: t, key: \"header:Authorization\"}\n",
                 "t.yaml:3: routes[0].key: this header carries a credential: it must not become a key");
    expect_error(AUTH_KEYS "tables: [{name: p, topic: t}]\nqueries:\n  - {path: /p, table: p, key: \"header:x-api-key\"}\n",
                 "t.yaml:4: queries[0].key: this header carries a credential: it must not become a key");
    expect_error(AUTH_KEYS "routes:\n  - {name: a, method: POST, path: /a, topic: t, key: \"header:Streamgate-Principal\"}\n",
                 "t.yaml:3: routes[0].key: this is auth.principal_header, which clients cannot set: use claim:NAME");
    sg_conf_t *conf =
        load_ok(AUTH_KEYS "routes:\n  - {name: a, method: POST, path: /a, topic: t, key: \"claim:sub\"}\n"
                          "tables: [{name: p, topic: t}]\nqueries:\n  - {path: /me, table: p, key: \"claim:tenant_id\"}\n");
    assert_int_equal(conf->routes[0].key.source, SG_KEY_CLAIM);
    assert_string_equal(conf->routes[0].key.name, "sub");
    assert_int_equal(conf->queries[0].key.source, SG_KEY_CLAIM);
    assert_string_equal(conf->queries[0].key.name, "tenant_id");
    sg_conf_destroy(conf);
    conf = load_ok("routes:\n  - {name: a, method: POST, path: /a, topic: t, key: \"header:authorization\"}\n");
    assert_int_equal(conf->routes[0].key.source, SG_KEY_HEADER); /* without auth it is an ordinary header */
    sg_conf_destroy(conf);

    expect_error("limits: {registry_write_rate: fast}\n",
                 "t.yaml:1: limits.registry_write_rate: expected a rate such as 50/s, 3000/m or 100000/h (or off), got "
                 "\"fast\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_registry),
        cmocka_unit_test(test_log_level),
        cmocka_unit_test(test_full_yaml),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_deployment), /* DESIGN §8 */
        cmocka_unit_test(test_placement),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_demo_and_file),
        cmocka_unit_test(test_err_empty),
        cmocka_unit_test(test_err_syntax),
        cmocka_unit_test(test_static),
        cmocka_unit_test(test_err_unknown_key),
        cmocka_unit_test(test_err_types),
        cmocka_unit_test(test_err_range),
        cmocka_unit_test(test_err_duration_size),
        cmocka_unit_test(test_err_duplicate_keys),
        cmocka_unit_test(test_err_duplicate_names),
        cmocka_unit_test(test_err_conflicts),
        cmocka_unit_test(test_err_reserved),
        cmocka_unit_test(test_err_path_template),
        cmocka_unit_test(test_err_route_key),
        cmocka_unit_test(test_err_route_other),
        cmocka_unit_test(test_err_query),
        cmocka_unit_test(test_err_missing_required),
        cmocka_unit_test(test_err_topic_names),
        cmocka_unit_test(test_err_listen_kafka_cors),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_dump_reference),
        cmocka_unit_test(test_auth_values),
        cmocka_unit_test(test_auth_defaults),
        cmocka_unit_test(test_err_auth_jwt),
        cmocka_unit_test(test_err_auth_keys),
        cmocka_unit_test(test_err_access_and_limits),
    };
    return cmocka_run_group_tests_name("config-conf", tests, NULL, NULL);
}
