/*
 * Every bad-input class gets its status and problem type, as problem+json naming the field,
 * and nothing reaches Kafka: the suite ends by counting the topic's records (zero).
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

#include "harness.h"

static const char config[] = "listen: [\"127.0.0.1:0\"]\n"
                             "threads: 1\n"
                             "data_dir: @DIR@/data\n"
                             "topics: [{name: err.commands, partitions: 2}]\n"
                             "routes:\n"
                             "  - {name: create, method: POST, path: /things, topic: err.commands, key: "
                             "\"body:/id\"}\n"
                             "  - {name: replace, method: PUT, path: \"/things/{id}\", topic: err.commands, key: "
                             "\"path:id\"}\n"
                             "  - {name: tenant, method: POST, path: /tenant, topic: err.commands, key: "
                             "\"header:X-Tenant\"}\n"
                             "limits: {body_bytes: 1KiB, header_bytes: 4KiB}\n";

static sg_test_proc_t gw;

static int setup(void **state)
{
    return sg_test_gateway_start(&gw, config);
}

static int teardown(void **state)
{
    return sg_test_stop_procs(&gw, NULL);
}

/* A POST with the headers as given (some tests leave out or change the Content-Type). */
static void post(const char *path, const char *headers, const char *body, size_t len, sg_test_response_t *res)
{
    assert_int_equal(sg_test_http(&gw, "POST", path, headers, body, len, res), 0);
}

static void test_malformed_json_400(void **state)
{
    sg_test_response_t res;
    const char *bad[] = {"{\"id\":", "{id: 1}", "{\"id\":\"a\",\"id\":\"b\"}", "[1,2", "nul", "{\"id\":\"\xff\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        post("/things", "Content-Type: application/json\r\n", bad[i], strlen(bad[i]), &res);
        sg_test_assert_problem(&res, 400, "invalid-json", "body");
        sg_test_response_free(&res);
    }
    post("/things", "Content-Type: application/json\r\n", "", 0, &res);
    sg_test_assert_problem(&res, 400, "invalid-json", "body");
    assert_non_null(strstr(res.body, "empty"));
    sg_test_response_free(&res);
}

static void test_missing_or_bad_key_400(void **state)
{
    sg_test_response_t res;
    const char missing[] = "{\"name\":\"no id here\"}";
    post("/things", "Content-Type: application/json\r\n", missing, strlen(missing), &res);
    sg_test_assert_problem(&res, 400, "missing-key", "/id");
    sg_test_response_free(&res);

    const char *wrong[] = {"{\"id\":true}", "{\"id\":{\"a\":1}}", "{\"id\":\"\"}", "{\"id\":1.5}", "{\"id\":null}"};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); ++i) {
        post("/things", "Content-Type: application/json\r\n", wrong[i], strlen(wrong[i]), &res);
        sg_test_assert_problem(&res, 400, "invalid-key", "/id");
        sg_test_response_free(&res);
    }

    const char body[] = "{}";
    post("/tenant", "Content-Type: application/json\r\n", body, 2, &res);
    sg_test_assert_problem(&res, 400, "missing-key", "x-tenant");
    sg_test_response_free(&res);
}

static void test_not_json_415(void **state)
{
    sg_test_response_t res;
    const char body[] = "{\"id\":\"x\"}";
    post("/things", "Content-Type: text/plain\r\n", body, strlen(body), &res);
    sg_test_assert_problem(&res, 415, "unsupported-media-type", "Content-Type");
    sg_test_response_free(&res);
    post("/things", NULL, body, strlen(body), &res);
    sg_test_assert_problem(&res, 415, "unsupported-media-type", "Content-Type");
    sg_test_response_free(&res);
    post("/things", "Content-Type: application/jsonx\r\n", body, strlen(body), &res);
    sg_test_assert_problem(&res, 415, "unsupported-media-type", "Content-Type");
    sg_test_response_free(&res);
    /* parameters and +json suffixes are JSON */
    post("/things", "Content-Type: application/json; charset=utf-8\r\n", "{\"id\":", 6, &res);
    sg_test_assert_problem(&res, 400, "invalid-json", "body");
    sg_test_response_free(&res);
    post("/things", "Content-Type: application/vnd.thing+json\r\n", "{\"id\":", 6, &res);
    sg_test_assert_problem(&res, 400, "invalid-json", "body");
    sg_test_response_free(&res);
}

static void test_body_over_limit_413(void **state)
{
    sg_test_response_t res;
    /* one byte over: reaches the handler */
    char *body = malloc(200000);
    memset(body, ' ', 200000);
    memcpy(body, "{\"id\":\"big\"}", 12);
    post("/things", "Content-Type: application/json\r\n", body, 1025, &res);
    sg_test_assert_problem(&res, 413, "body-too-large", "body");
    sg_test_response_free(&res);
    /* far over: refused by H2O before reading, still problem+json */
    post("/things", "Content-Type: application/json\r\n", body, 200000, &res);
    sg_test_assert_problem(&res, 413, "body-too-large", "body");
    sg_test_response_free(&res);
    /* exactly at the limit is fine (and is produced: counted in the final check) */
    post("/things", "Content-Type: application/json\r\n", body, 1024, &res);
    assert_int_equal(res.status, 202);
    sg_test_response_free(&res);
    free(body);

    /* chunked over the limit */
    char raw[4096];
    int n = snprintf(raw, sizeof(raw),
                     "POST /things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n800\r\n");
    memset(raw + n, ' ', 0x800);
    n += 0x800;
    n += snprintf(raw + n, sizeof(raw) - (size_t)n, "\r\n0\r\n\r\n");
    assert_int_equal(sg_test_http_raw(&gw, raw, (size_t)n, &res), 0);
    sg_test_assert_problem(&res, 413, "body-too-large", "body");
    sg_test_response_free(&res);
}

static void test_unknown_path_404_and_reserved(void **state)
{
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gw, "GET", "/nothing/here", NULL, NULL, 0, &res), 0);
    sg_test_assert_problem(&res, 404, "not-found", NULL);
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "GET", "/things/a/b", NULL, NULL, 0, &res), 0);
    sg_test_assert_problem(&res, 404, "not-found", NULL);
    sg_test_response_free(&res);
    /* reserved prefixes: built-ins, never routes */
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/t/k", NULL, NULL, 0, &res), 0);
    sg_test_assert_problem(&res, 404, "unknown-table", "table");
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "GET", "/metrics/x", NULL, NULL, 0, &res), 0);
    sg_test_assert_problem(&res, 404, "not-found", NULL);
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "GET", "/requests/abc", NULL, NULL, 0, &res), 0);
    sg_test_assert_problem(&res, 404, "unknown-request", "id");
    sg_test_response_free(&res);
}

static void test_wrong_method_405_with_allow(void **state)
{
    sg_test_response_t res;
    char allow[128];
    assert_int_equal(sg_test_http(&gw, "GET", "/things", NULL, NULL, 0, &res), 0);
    sg_test_assert_problem(&res, 405, "method-not-allowed", NULL);
    assert_string_equal(sg_test_header(&res, "allow", allow, sizeof(allow)), "POST, OPTIONS");
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "DELETE", "/things/7", NULL, NULL, 0, &res), 0);
    sg_test_assert_problem(&res, 405, "method-not-allowed", NULL);
    assert_string_equal(sg_test_header(&res, "allow", allow, sizeof(allow)), "PUT, OPTIONS");
    sg_test_response_free(&res);
}

static void test_bad_percent_encoding_400(void **state)
{
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gw, "PUT", "/things/a%zz", "Content-Type: application/json\r\n", "{}", 2, &res), 0);
    sg_test_assert_problem(&res, 400, "invalid-path", "path");
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "PUT", "/things/a%00b", "Content-Type: application/json\r\n", "{}", 2, &res), 0);
    sg_test_assert_problem(&res, 400, "invalid-path", "path");
    sg_test_response_free(&res);
}

static void test_headers_over_limit_431(void **state)
{
    char *headers = malloc(6000);
    int n = snprintf(headers, 6000, "Content-Type: application/json\r\nX-Padding: ");
    memset(headers + n, 'a', 5000);
    memcpy(headers + n + 5000, "\r\n", 3);
    sg_test_response_t res;
    post("/things", headers, "{\"id\":\"h\"}", 10, &res);
    sg_test_assert_problem(&res, 431, "headers-too-large", "headers");
    sg_test_response_free(&res);
    free(headers);
}

static void test_nothing_was_produced(void **state)
{
    /* Only the one body exactly at the limit was accepted. */
    assert_int_equal(sg_test_topic_count(gw.bootstrap, "err.commands"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_json_400),
        cmocka_unit_test(test_missing_or_bad_key_400),
        cmocka_unit_test(test_not_json_415),
        cmocka_unit_test(test_body_over_limit_413),
        cmocka_unit_test(test_unknown_path_404_and_reserved),
        cmocka_unit_test(test_wrong_method_405_with_allow),
        cmocka_unit_test(test_bad_percent_encoding_400),
        cmocka_unit_test(test_headers_over_limit_431),
        cmocka_unit_test(test_nothing_was_produced),
    };
    return cmocka_run_group_tests_name("integration-errors", tests, setup, teardown);
}
