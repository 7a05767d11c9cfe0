/*
 * Point reads of a table materialized from a topic: a PUT through the gateway, then GET
 * /tables/{table}/{key} with the PUT's token; ETag and 304; tokens refused strictly; a tombstone
 * written straight to the topic deletes the row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "harness.h"
#include "sg_token.h"

static const char config[] = "listen: [\"127.0.0.1:0\"]\n"
                             "data_dir: @DIR@/data\n"
                             "topics: [{name: profiles, partitions: 2}]\n"
                             "routes:\n"
                             "  - {name: put-profile, method: PUT, path: \"/profiles/{id}\", topic: profiles, key: "
                             "\"path:id\"}\n"
                             "tables: [{name: profiles, topic: profiles}]\n";

static sg_test_proc_t gw;

static int setup(void **state)
{
    return sg_test_gateway_start(&gw, config);
}

static int teardown(void **state)
{
    return sg_test_proc_stop(&gw) == 0 ? 0 : -1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One GET with a token: the gateway itself waits for the view to reach it (read-your-writes
 * without client retries), woken by the materializer's progress. */
static void get_with_token(const char *path, const char *token, sg_test_response_t *res)
{
    char headers[1024];
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\n", token);
    int64_t start = now_ms();
    assert_int_equal(sg_test_http(&gw, "GET", path, headers, NULL, 0, res), 0);
    assert_true(now_ms() - start < 4000); /* well inside limits.token_wait (5 s): woken, not timed out */
    if (res->status == 503)
        fprintf(stderr, "%s\n", res->body);
    assert_int_not_equal(res->status, 503);
}

static void put_profile(const char *id, const char *body, char *token, size_t token_len)
{
    char path[128];
    snprintf(path, sizeof(path), "/profiles/%s", id);
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gw, "PUT", path, "Content-Type: application/json\r\n", body, strlen(body), &res), 0);
    assert_int_equal(res.status, 202);
    assert_non_null(sg_test_header(&res, "consistency-token", token, token_len));
    sg_test_response_free(&res);
}

static void test_read_your_write_etag_and_304(void **state)
{
    char token[512], value[512];
    put_profile("ada", "{\"name\":\"Ada\",\"v\":1}", token, sizeof(token));
    sg_test_response_t res;
    get_with_token("/tables/profiles/ada", token, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"name\":\"Ada\",\"v\":1}");
    assert_string_equal(sg_test_header(&res, "content-type", value, sizeof(value)), "application/json");
    char etag[64];
    assert_non_null(sg_test_header(&res, "etag", etag, sizeof(etag)));
    assert_non_null(sg_test_header(&res, "stream-time", value, sizeof(value)));
    assert_true(atoll(value) > 1600000000000LL);
    /* the answer's token covers the write's token */
    assert_non_null(sg_test_header(&res, "consistency-token", value, sizeof(value)));
    char err[128];
    sg_token_t *answer = sg_token_decode(value, strlen(value), err, sizeof(err));
    sg_token_t *mine = sg_token_decode(token, strlen(token), err, sizeof(err));
    assert_non_null(answer);
    assert_non_null(mine);
    assert_true(sg_token_covers(answer, mine, NULL, NULL));
    sg_token_destroy(answer);
    sg_token_destroy(mine);
    sg_test_response_free(&res);

    char headers[128];
    snprintf(headers, sizeof(headers), "If-None-Match: %s\r\n", etag);
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles/ada", headers, NULL, 0, &res), 0);
    assert_int_equal(res.status, 304);
    sg_test_response_free(&res);

    /* a later write wins, with a new ETag */
    put_profile("ada", "{\"name\":\"Ada\",\"v\":2}", token, sizeof(token));
    get_with_token("/tables/profiles/ada", token, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"name\":\"Ada\",\"v\":2}");
    assert_string_not_equal(sg_test_header(&res, "etag", value, sizeof(value)), etag);
    sg_test_response_free(&res);
}

static void test_tokens_ahead_bad_and_unknown(void **state)
{
    char token[512], ahead[512], err[128];
    put_profile("bob", "{\"name\":\"Bob\"}", token, sizeof(token));
    /* a token from the future is refused, with the view's token, never answered from the past */
    sg_token_t *t = sg_token_decode(token, strlen(token), err, sizeof(err));
    assert_non_null(t);
    const char *topic;
    int32_t partition;
    int64_t offset, stream_time;
    sg_token_entry(t, 0, &topic, &partition, &offset, &stream_time);
    sg_token_advance(t, topic, partition, offset + 1000, stream_time);
    sg_token_encode(t, ahead, sizeof(ahead));
    sg_token_destroy(t);
    char headers[1024];
    sg_test_response_t res;
    char value[512];
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\nPrefer: wait=1\r\n", ahead);
    int64_t start = now_ms();
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles/bob", headers, NULL, 0, &res), 0);
    int64_t elapsed = now_ms() - start;
    assert_int_equal(res.status, 503);
    assert_true(elapsed >= 900 && elapsed < 3000); /* waited its second, then gave up */
    assert_non_null(strstr(res.body, "urn:streamgate:problem:not-caught-up"));
    assert_non_null(sg_test_header(&res, "consistency-token", value, sizeof(value)));
    assert_non_null(sg_test_header(&res, "retry-after", value, sizeof(value)));
    sg_test_response_free(&res);
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\nPrefer: wait=0\r\n", ahead);
    start = now_ms();
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles/bob", headers, NULL, 0, &res), 0);
    assert_int_equal(res.status, 503);
    assert_true(now_ms() - start < 500);
    sg_test_response_free(&res);
    /* a token for another topic does not hold the read back: its components are ignored */
    sg_token_t *other = sg_token_create();
    sg_token_advance(other, "other.topic", 0, 1000000, 1);
    char other_text[256];
    sg_token_encode(other, other_text, sizeof(other_text));
    sg_token_destroy(other);
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\n", other_text);
    get_with_token("/tables/profiles/bob", token, &res); /* bob is visible by now */
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles/bob", headers, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    sg_test_response_free(&res);
    /* a mangled token is a 400, never a guess */
    ahead[5] = ahead[5] == 'A' ? 'B' : 'A';
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\n", ahead);
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles/bob", headers, NULL, 0, &res), 0);
    assert_int_equal(res.status, 400);
    assert_non_null(strstr(res.body, "urn:streamgate:problem:invalid-token"));
    sg_test_response_free(&res);

    assert_int_equal(sg_test_http(&gw, "GET", "/tables/nope/k", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 404);
    assert_non_null(strstr(res.body, "urn:streamgate:problem:unknown-table"));
    sg_test_response_free(&res);
    get_with_token("/tables/profiles/nobody", token, &res);
    assert_int_equal(res.status, 404);
    assert_non_null(strstr(res.body, "urn:streamgate:problem:no-such-row"));
    assert_non_null(sg_test_header(&res, "consistency-token", value, sizeof(value))); /* 404s carry it too */
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles/a%zz", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 400);
    sg_test_response_free(&res);
}

static void test_tombstone_deletes(void **state)
{
    char token[512];
    put_profile("cy", "{\"name\":\"Cy\"}", token, sizeof(token));
    sg_test_response_t res;
    get_with_token("/tables/profiles/cy", token, &res);
    assert_int_equal(res.status, 200);
    sg_test_response_free(&res);

    /* a tombstone produced straight to the topic, by another client */
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", gw.bootstrap, errstr, sizeof(errstr));
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(producer);
    assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("profiles"), RD_KAFKA_V_KEY("cy", 2),
                                       RD_KAFKA_V_VALUE(NULL, 0), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(producer, 5000), 0);
    rd_kafka_destroy(producer);
    for (int i = 0; i < 250; ++i) {
        assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles/cy", NULL, NULL, 0, &res), 0);
        if (res.status == 404)
            break;
        sg_test_response_free(&res);
        sleep_ms(20);
    }
    assert_int_equal(res.status, 404);
    sg_test_response_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_your_write_etag_and_304),
        cmocka_unit_test(test_tokens_ahead_bad_and_unknown),
        cmocka_unit_test(test_tombstone_deletes),
    };
    return cmocka_run_group_tests_name("integration-tables", tests, setup, teardown);
}
