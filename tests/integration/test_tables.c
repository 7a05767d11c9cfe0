/*
 * Reads of a table materialized from a topic: a PUT through the gateway, then GET
 * /tables/{table}/{key} with the PUT's token; ETag and 304; tokens refused strictly; a tombstone
 * written straight to the topic deletes the row; scans with prefix, range, limit and cursor;
 * configured queries; fresh=latest against records produced by other clients (kcat and
 * librdkafka); min_stream_time with an idle partition; watches with Last-Event-ID.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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
                             "tables: [{name: profiles, topic: profiles}]\n"
                             "queries:\n"
                             "  - {path: \"/profiles/{id}\", table: profiles, key: \"path:id\"}\n"
                             "  - {path: \"/people\", table: profiles, key: none}\n"
                             "  - {path: \"/me\", table: profiles, key: \"header:x-user\"}\n";

static sg_test_proc_t gw;

static int setup(void **state)
{
    return sg_test_gateway_start(&gw, config);
}

static int teardown(void **state)
{
    return sg_test_stop_procs(&gw, NULL);
}

/* One GET with a token: the gateway itself waits for the view to reach it (read-your-writes
 * without client retries), woken by the materializer's progress. */
static void get_with_token(const char *path, const char *token, sg_test_response_t *res)
{
    char headers[1024];
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\n", token);
    int64_t start = sg_test_now_ms();
    assert_int_equal(sg_test_http(&gw, "GET", path, headers, NULL, 0, res), 0);
    assert_true(sg_test_now_ms() - start < 4000); /* well inside limits.token_wait (5 s): woken, not timed out */
    if (res->status == 503)
        fprintf(stderr, "%s\n", res->body);
    assert_int_not_equal(res->status, 503);
}

static void put_profile(const char *id, const char *body, char *token, size_t token_len)
{
    char path[128];
    snprintf(path, sizeof(path), "/profiles/%s", id);
    sg_test_response_t res;
    assert_int_equal(sg_test_send_json(&gw, "PUT", path, NULL, body, &res), 0);
    assert_int_equal(res.status, 202);
    assert_non_null(sg_test_header(&res, "consistency-token", token, token_len));
    sg_test_response_free(&res);
}

/* A point read with nothing to wait for is answered at once, and gives back the limits.pending
 * slot it was given for a wait: with limits.pending 4, twenty reads leave room for a command
 * (before, each such read kept its slot, and commands were refused 503 too-many-pending). */
static void test_immediate_reads_give_back_their_pending_slot(void **state)
{
    sg_test_proc_t small;
    char text[1024];
    snprintf(text, sizeof(text), "%slimits: {pending: 4}\n", config);
    assert_int_equal(sg_test_gateway_start(&small, text), 0);
    sg_test_response_t res;
    for (int i = 0; i < 20; ++i) {
        assert_int_equal(sg_test_http(&small, "GET", "/tables/profiles/nobody", NULL, NULL, 0, &res), 0);
        assert_int_equal(res.status, 404);
        sg_test_response_free(&res);
    }
    assert_int_equal(sg_test_send_json(&small, "PUT", "/profiles/slot", NULL, "{\"n\":1}", &res), 0);
    assert_int_equal(res.status, 202);
    sg_test_response_free(&res);
    assert_int_equal(sg_test_proc_stop(&small), 0);
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

    /* a later write wins, with a new ETag; ?token= works like the header */
    put_profile("ada", "{\"name\":\"Ada\",\"v\":2}", token, sizeof(token));
    char path[1024];
    snprintf(path, sizeof(path), "/tables/profiles/ada?token=%s", token);
    assert_int_equal(sg_test_http(&gw, "GET", path, NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"name\":\"Ada\",\"v\":2}");
    sg_test_response_free(&res);
    get_with_token("/tables/profiles/ada", token, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"name\":\"Ada\",\"v\":2}");
    assert_string_not_equal(sg_test_header(&res, "etag", value, sizeof(value)), etag);
    sg_test_response_free(&res);
}

/* The value of header `name` (lower case, as HTTP/2 sends it) in curl -i's output, or "". */
static const char *raw_header(const char *raw, const char *name, char *value, size_t len)
{
    char wanted[64];
    snprintf(wanted, sizeof(wanted), "\n%s: ", name);
    const char *at = strstr(raw, wanted);
    size_t n = at != NULL ? strcspn(at + strlen(wanted), "\r\n") : 0;
    if (n >= len)
        n = len - 1;
    memcpy(value, at != NULL ? at + strlen(wanted) : "", n);
    value[n] = '\0';
    return value;
}

/* A plain point read (answered from the view at once) carries the same Consistency-Token,
 * Stream-Time, ETag and body over HTTP/2 as over HTTP/1.1, on /tables and on a query: the
 * header names are ours (no H2O token) and must reach HPACK as plain names. */
static void test_point_read_headers_over_http2(void **state)
{
    char token[512], h1_token[512], h1_time[64], h1_etag[64], value[512];
    put_profile("hpack", "{\"name\":\"Hopper\"}", token, sizeof(token));
    sg_test_response_t res;
    get_with_token("/tables/profiles/hpack", token, &res);
    assert_int_equal(res.status, 200);
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles/hpack", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    assert_non_null(sg_test_header(&res, "consistency-token", h1_token, sizeof(h1_token)));
    assert_non_null(sg_test_header(&res, "stream-time", h1_time, sizeof(h1_time)));
    assert_non_null(sg_test_header(&res, "etag", h1_etag, sizeof(h1_etag)));
    assert_true(strlen(h1_token) > 0 && atoll(h1_time) > 1600000000000LL);
    sg_test_response_free(&res);
    static const char *const paths[] = {"/tables/profiles/hpack", "/profiles/hpack"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); ++i) {
        char url[256], out[8192];
        snprintf(url, sizeof(url), "http://%s:%u%s", gw.host, gw.port, paths[i]);
        const char *h2[] = {"/usr/bin/curl", "-sS", "-i", "--http2-prior-knowledge", url, NULL};
        assert_int_equal(sg_test_run(h2, out, sizeof(out)), 0);
        assert_true(strncmp(out, "HTTP/2 200", 10) == 0);
        assert_string_equal(raw_header(out, "consistency-token", value, sizeof(value)), h1_token);
        assert_string_equal(raw_header(out, "stream-time", value, sizeof(value)), h1_time);
        assert_string_equal(raw_header(out, "etag", value, sizeof(value)), h1_etag);
        assert_non_null(strstr(out, "\r\n\r\n{\"name\":\"Hopper\"}"));
    }
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
    int64_t start = sg_test_now_ms();
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles/bob", headers, NULL, 0, &res), 0);
    int64_t elapsed = sg_test_now_ms() - start;
    sg_test_assert_problem(&res, 503, "not-caught-up", "Consistency-Token");
    assert_true(elapsed >= 900 && elapsed < 3000); /* waited its second, then gave up */
    assert_non_null(sg_test_header(&res, "consistency-token", value, sizeof(value)));
    {
        /* the view's own token: it covers the write, not the token from the future */
        sg_token_t *view = sg_token_decode(value, strlen(value), err, sizeof(err));
        sg_token_t *wanted = sg_token_decode(ahead, strlen(ahead), err, sizeof(err));
        sg_token_t *written = sg_token_decode(token, strlen(token), err, sizeof(err));
        assert_non_null(view);
        assert_true(sg_token_covers(view, written, NULL, NULL));
        assert_false(sg_token_covers(view, wanted, NULL, NULL));
        sg_token_destroy(view);
        sg_token_destroy(wanted);
        sg_token_destroy(written);
    }
    assert_non_null(sg_test_header(&res, "retry-after", value, sizeof(value)));
    sg_test_response_free(&res);
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\nPrefer: wait=0\r\n", ahead);
    start = sg_test_now_ms();
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles/bob", headers, NULL, 0, &res), 0);
    assert_int_equal(res.status, 503);
    assert_true(sg_test_now_ms() - start < 900); /* at once: not even the one-second wait above */
    sg_test_response_free(&res);
    /* the same token as ?token= holds the read back just the same */
    char ahead_path[1024];
    snprintf(ahead_path, sizeof(ahead_path), "/tables/profiles/bob?token=%s", ahead);
    assert_int_equal(sg_test_http(&gw, "GET", ahead_path, "Prefer: wait=0\r\n", NULL, 0, &res), 0);
    sg_test_assert_problem(&res, 503, "not-caught-up", "Consistency-Token");
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
    sg_test_assert_problem(&res, 400, "invalid-consistency-token", "Consistency-Token");
    sg_test_response_free(&res);

    assert_int_equal(sg_test_http(&gw, "GET", "/tables/nope/k", NULL, NULL, 0, &res), 0);
    sg_test_assert_problem(&res, 404, "unknown-table", "table");
    sg_test_response_free(&res);
    get_with_token("/tables/profiles/nobody", token, &res);
    sg_test_assert_problem(&res, 404, "no-such-row", "key");
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
    assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("profiles"), RD_KAFKA_V_KEY("cy", 2), RD_KAFKA_V_VALUE(NULL, 0),
                                       RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(producer, 5000), 0);
    rd_kafka_destroy(producer);
    for (int i = 0; i < 250; ++i) {
        assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles/cy", NULL, NULL, 0, &res), 0);
        if (res.status == 404)
            break;
        sg_test_response_free(&res);
        sg_test_sleep_ms(20);
    }
    assert_int_equal(res.status, 404);
    sg_test_response_free(&res);
}

/* A record produced straight to the topic by another client (librdkafka); acknowledged. */
static void produce_raw(const char *key, const char *value, int64_t timestamp_ms)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", gw.bootstrap, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof(errstr));
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(producer);
    assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("profiles"), RD_KAFKA_V_KEY(key, strlen(key)),
                                       RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
                                       RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(producer, 5000), 0);
    rd_kafka_destroy(producer);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void get(const char *path, const char *headers, sg_test_response_t *res)
{
    assert_int_equal(sg_test_http(&gw, "GET", path, headers, NULL, 0, res), 0);
}

static void expect_problem(const char *path, int status, const char *type, const char *field)
{
    sg_test_response_t res;
    get(path, NULL, &res);
    sg_test_assert_problem(&res, status, type, field);
    sg_test_response_free(&res);
}

static void test_scan_prefix_range_limit_cursor(void **state)
{
    char token[512], session[512] = "";
    const char *keys[] = {"s-a1", "s-a2", "s-a3", "s-b1", "s-b2", "s-c1"};
    for (size_t i = 0; i < 6; ++i) {
        char body[64];
        snprintf(body, sizeof(body), "{\"n\":%zu}", i);
        put_profile(keys[i], body, token, sizeof(token));
        sg_test_response_t res;
        get_with_token("/tables/profiles/s-a1", token, &res); /* the view has this write */
        sg_test_response_free(&res);
    }
    put_profile("s-b2", "{\"n\":\"gone\"}", token, sizeof(token));
    produce_raw("s-b2", NULL, wall_ms()); /* tombstone: not in scans */
    sg_test_response_t res;
    char headers[1024];
    for (int i = 0; i < 250; ++i) {
        get("/tables/profiles/s-b2", NULL, &res);
        int gone = res.status == 404;
        sg_test_response_free(&res);
        if (gone)
            break;
        sg_test_sleep_ms(20);
    }
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\n", token);

    /* prefix, two pages of 2 */
    get("/tables/profiles?prefix=s-a&limit=2", headers, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(sg_test_header(&res, "content-type", session, sizeof(session)), "application/json");
    assert_non_null(sg_test_header(&res, "stream-time", session, sizeof(session)));
    assert_non_null(sg_test_header(&res, "consistency-token", session, sizeof(session)));
    const char *next_at = strstr(res.body, "\"next\":\"");
    assert_non_null(next_at);
    assert_true(strncmp(res.body, "{\"rows\":[{\"key\":\"s-a1\",\"value\":{\"n\":0}},{\"key\":\"s-a2\",\"value\":{\"n\":1}}],",
                        strlen("{\"rows\":[{\"key\":\"s-a1\",\"value\":{\"n\":0}},{\"key\":\"s-a2\",\"value\":{\"n\":1}}],")) == 0);
    char cursor[512];
    snprintf(cursor, sizeof(cursor), "%.*s", (int)strcspn(next_at + 8, "\""), next_at + 8);
    sg_test_response_free(&res);
    char path[1024];
    snprintf(path, sizeof(path), "/tables/profiles?prefix=s-a&limit=2&cursor=%s", cursor);
    get(path, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"rows\":[{\"key\":\"s-a3\",\"value\":{\"n\":2}}],\"next\":null}");
    sg_test_response_free(&res);

    /* from/to: [s-a3, s-c1), the tombstoned s-b2 absent */
    get("/tables/profiles?from=s-a3&to=s-c1", NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body,
                        "{\"rows\":[{\"key\":\"s-a3\",\"value\":{\"n\":2}},{\"key\":\"s-b1\",\"value\":{\"n\":3}}],\"next\":null}");
    sg_test_response_free(&res);
    /* percent-encoded bounds */
    get("/tables/profiles?prefix=s%2Dc", NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"rows\":[{\"key\":\"s-c1\",\"value\":{\"n\":5}}],\"next\":null}");
    sg_test_response_free(&res);
    /* the configured scan query (key: none) is the same read under another path */
    get("/people?prefix=s-c", NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"rows\":[{\"key\":\"s-c1\",\"value\":{\"n\":5}}],\"next\":null}");
    sg_test_response_free(&res);

    /* bad input: a named field each */
    expect_problem("/tables/profiles?limit=0", 400, "invalid-query", "limit");
    expect_problem("/tables/profiles?limit=1001", 400, "invalid-query", "limit");
    expect_problem("/tables/profiles?limit=ten", 400, "invalid-query", "limit");
    expect_problem("/tables/profiles?colour=red", 400, "invalid-query", "query");
    expect_problem("/tables/profiles?prefix=a&prefix=b", 400, "invalid-query", "prefix");
    expect_problem("/tables/profiles?prefix=a&from=b", 400, "invalid-query", "prefix");
    expect_problem("/tables/profiles?cursor=AAAA", 400, "invalid-cursor", "cursor");
    expect_problem("/tables/profiles?prefix=%zz", 400, "invalid-query", "prefix");
    expect_problem("/tables/profiles/s-a1?limit=2", 400, "invalid-query", "limit");
    expect_problem("/tables/profiles?fresh=yesterday", 400, "invalid-query", "fresh");
    expect_problem("/tables/profiles?min_stream_time=-5", 400, "invalid-query", "min_stream_time");
    expect_problem("/tables/profiles?token=bm90LWEtdG9rZW4", 400, "invalid-consistency-token", "token");
    /* a cursor of another query is refused, not followed */
    snprintf(path, sizeof(path), "/tables/profiles?prefix=s-b&cursor=%s", cursor);
    expect_problem(path, 400, "invalid-cursor", "cursor");
}

static void test_scan_skips_values_that_are_not_json(void **state)
{
    char token[512];
    produce_raw("nj-1", "this is not json", wall_ms());
    put_profile("nj-2", "{\"ok\":true}", token, sizeof(token));
    sg_test_response_t res;
    get_with_token("/tables/profiles/nj-2", token, &res);
    assert_int_equal(res.status, 200);
    sg_test_response_free(&res);
    get("/tables/profiles?prefix=nj-", NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"rows\":[{\"key\":\"nj-2\",\"value\":{\"ok\":true}}],\"next\":null}");
    sg_test_response_free(&res);
    get("/metrics", NULL, &res);
    assert_int_equal(res.status, 200);
    const char *line = strstr(res.body, "\nstreamgate_table_records_skipped_total ");
    assert_non_null(line);
    assert_true(atoi(line + strlen("\nstreamgate_table_records_skipped_total ")) >= 1);
    sg_test_response_free(&res);
}

static void test_configured_queries(void **state)
{
    char token[512], headers[1024], value[128];
    put_profile("q-1", "{\"q\":1}", token, sizeof(token));
    sg_test_response_t res;
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\n", token);
    get("/profiles/q-1", headers, &res); /* GET beside the PUT route on the same path */
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"q\":1}");
    assert_non_null(sg_test_header(&res, "etag", value, sizeof(value)));
    sg_test_response_free(&res);
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\nX-User: q-1\r\n", token);
    get("/me", headers, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"q\":1}");
    sg_test_response_free(&res);
    expect_problem("/me", 400, "missing-key", "x-user");
    get("/profiles/q-none", NULL, &res);
    assert_int_equal(res.status, 404);
    assert_non_null(strstr(res.body, "no-such-row"));
    sg_test_response_free(&res);
    /* the path answers GET and PUT */
    assert_int_equal(sg_test_http(&gw, "DELETE", "/profiles/q-1", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 405);
    assert_non_null(sg_test_header(&res, "allow", value, sizeof(value)));
    assert_non_null(strstr(value, "GET"));
    assert_non_null(strstr(value, "PUT"));
    sg_test_response_free(&res);
}

static void test_fresh_latest_sees_other_producers(void **state)
{
    /* kcat writes straight to the topic; the next fresh=latest read must see it */
    char line[128];
    snprintf(line, sizeof(line), "fk-kcat:{\"by\":\"kcat\"}\n");
    char *file = sg_test_write_temp("kcat-input", line);
    assert_non_null(file);
    const char *kcat[] = {"/usr/bin/kcat", "-P", "-b", gw.bootstrap, "-t", "profiles", "-K:", "-l", file, NULL};
    char out[4096];
    assert_int_equal(sg_test_run(kcat, out, sizeof(out)), 0);
    sg_test_remove_temp(file);
    sg_test_response_t res;
    get("/tables/profiles/fk-kcat?fresh=latest", NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"by\":\"kcat\"}");
    sg_test_response_free(&res);
    /* and many times over: each record acknowledged, then read at once */
    for (int i = 0; i < 40; ++i) {
        char key[32], value[64], path[96];
        snprintf(key, sizeof(key), "fk-%d", i);
        snprintf(value, sizeof(value), "{\"i\":%d}", i);
        produce_raw(key, value, wall_ms());
        snprintf(path, sizeof(path), "/tables/profiles/%s?fresh=latest", key);
        get(path, NULL, &res);
        assert_int_equal(res.status, 200);
        assert_string_equal(res.body, value);
        sg_test_response_free(&res);
    }
    get("/tables/profiles?prefix=fk-&fresh=latest&limit=1000", NULL, &res);
    assert_int_equal(res.status, 200);
    int rows = 0;
    for (const char *at = res.body; (at = strstr(at, "\"key\":")) != NULL; ++at)
        ++rows;
    assert_int_equal(rows, 41);
    sg_test_response_free(&res);
}

static void test_min_stream_time_idle_partition(void **state)
{
    /* one partition gets a record stamped t; the other stays idle and must not block */
    int64_t t = wall_ms();
    produce_raw("mst-1", "{\"m\":1}", t);
    char path[128], value[64];
    snprintf(path, sizeof(path), "/tables/profiles/mst-1?min_stream_time=%lld", (long long)t);
    sg_test_response_t res;
    int64_t start = sg_test_now_ms();
    get(path, NULL, &res);
    assert_true(sg_test_now_ms() - start < 3000);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"m\":1}");
    assert_true(atoll(sg_test_header(&res, "stream-time", value, sizeof(value))) >= t);
    sg_test_response_free(&res);
    /* a time no record has reached yet: every partition is read to its end, so it answers */
    snprintf(path, sizeof(path), "/tables/profiles/mst-1?min_stream_time=%lld", (long long)(t + 3600 * 1000));
    get(path, NULL, &res);
    assert_int_equal(res.status, 200);
    sg_test_response_free(&res);
}

/* --- watches: a raw socket reading the event stream as it comes ------------------------------- */

static int open_stream(const char *path, const char *extra_headers)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gw.port)};
    inet_pton(AF_INET, gw.host, &addr.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    char req[2048];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n%s\r\n", path,
                     extra_headers ? extra_headers : "");
    assert_int_equal(write(fd, req, (size_t)n), n);
    return fd;
}

/* Reads until `count` events ("\n\n"-terminated blocks that start with "event:") are in buf, or
 * the deadline. Returns the number of events seen. */
static int read_events(int fd, char *buf, size_t cap, size_t *len, int count, int timeout_ms)
{
    int64_t deadline = sg_test_now_ms() + timeout_ms;
    for (;;) {
        buf[*len] = '\0';
        int seen = 0;
        for (const char *at = buf; (at = strstr(at, "event: ")) != NULL; ++at)
            if (strstr(at, "\n\n") != NULL)
                ++seen;
        int64_t left = deadline - sg_test_now_ms();
        if (seen >= count || left <= 0)
            return seen;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t got = read(fd, buf + *len, cap - 1 - *len);
        if (got <= 0)
            return seen;
        *len += (size_t)got;
    }
}

/* The id: line of the n-th event (0-based) in the buffer. */
static void event_id(const char *buf, int n, char *out, size_t outlen)
{
    const char *at = buf;
    for (int i = 0; i <= n; ++i) {
        at = strstr(at, "event: ");
        assert_non_null(at);
        if (i < n)
            ++at;
    }
    const char *id = strstr(at, "\nid: ");
    assert_non_null(id);
    id += 5;
    snprintf(out, outlen, "%.*s", (int)strcspn(id, "\n"), id);
}

static void test_watch_updates_deletes_and_resume(void **state)
{
    char token[512];
    put_profile("w-1", "{\"w\":1}", token, sizeof(token));
    char headers[1024];
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\n", token);
    int fd = open_stream("/tables/profiles/w-1", headers);
    static char buf[65536];
    size_t len = 0;
    assert_int_equal(read_events(fd, buf, sizeof(buf), &len, 1, 5000), 1);
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_non_null(strstr(buf, "content-type: text/event-stream"));
    assert_non_null(strstr(buf, "event: update\nid: "));
    assert_non_null(strstr(buf, "\ndata: {\"w\":1}\n\n"));

    put_profile("w-1", "{\"w\":2}", token, sizeof(token));
    assert_int_equal(read_events(fd, buf, sizeof(buf), &len, 2, 5000), 2);
    assert_non_null(strstr(buf, "\ndata: {\"w\":2}\n\n"));
    char second_id[512];
    event_id(buf, 1, second_id, sizeof(second_id));
    /* the event id is a token covering the write that caused it */
    char err[128];
    sg_token_t *id_token = sg_token_decode(second_id, strlen(second_id), err, sizeof(err));
    sg_token_t *write_token = sg_token_decode(token, strlen(token), err, sizeof(err));
    assert_non_null(id_token);
    assert_non_null(write_token);
    assert_true(sg_token_covers(id_token, write_token, NULL, NULL));
    sg_token_destroy(id_token);
    sg_token_destroy(write_token);

    produce_raw("w-1", NULL, wall_ms()); /* tombstone */
    assert_int_equal(read_events(fd, buf, sizeof(buf), &len, 3, 5000), 3);
    assert_non_null(strstr(buf, "event: delete\nid: "));
    assert_non_null(strstr(buf, "\ndata: null\n\n"));
    /* other keys' changes are not this watch's events */
    put_profile("w-other", "{\"w\":0}", token, sizeof(token));
    assert_int_equal(read_events(fd, buf, sizeof(buf), &len, 4, 700), 3);
    close(fd);

    /* resume after the second event: the delete (missed) comes, then new changes */
    snprintf(headers, sizeof(headers), "Last-Event-ID: %s\r\n", second_id);
    fd = open_stream("/tables/profiles/w-1", headers);
    len = 0;
    assert_int_equal(read_events(fd, buf, sizeof(buf), &len, 1, 5000), 1);
    assert_non_null(strstr(buf, "event: delete\n"));
    put_profile("w-1", "{\"w\":3}", token, sizeof(token));
    assert_int_equal(read_events(fd, buf, sizeof(buf), &len, 2, 5000), 2);
    assert_non_null(strstr(buf, "\ndata: {\"w\":3}\n\n"));
    char third_id[512];
    event_id(buf, 1, third_id, sizeof(third_id));
    close(fd);
    /* resume at the latest event: nothing is replayed until the next change */
    snprintf(headers, sizeof(headers), "Last-Event-ID: %s\r\n", third_id);
    fd = open_stream("/tables/profiles/w-1", headers);
    len = 0;
    assert_int_equal(read_events(fd, buf, sizeof(buf), &len, 1, 700), 0);
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    put_profile("w-1", "{\"w\":4}", token, sizeof(token));
    assert_int_equal(read_events(fd, buf, sizeof(buf), &len, 1, 5000), 1);
    assert_non_null(strstr(buf, "\ndata: {\"w\":4}\n\n"));
    assert_null(strstr(buf, "{\"w\":3}"));
    close(fd);
    /* a bad Last-Event-ID is a 400 naming it */
    sg_test_response_t res;
    get("/tables/profiles/w-1", "Accept: text/event-stream\r\nLast-Event-ID: nope\r\n", &res);
    assert_int_equal(res.status, 400);
    assert_non_null(strstr(res.body, "\"field\":\"Last-Event-ID\""));
    sg_test_response_free(&res);
}

/* Regressions: a value full of newlines (each becomes a "data:" line, 7 bytes for 1) streams
 * intact; a token too long for a fixed buffer still comes back on the answer. */
static void test_watch_multiline_value_and_long_tokens(void **state)
{
    static char body[8192];
    size_t n = 0;
    body[n++] = '{';
    for (int i = 0; i < 3000; ++i)
        body[n++] = '\n';
    n += (size_t)snprintf(body + n, sizeof(body) - n, "\"a\":1}");
    char token[512];
    put_profile("w-nl", body, token, sizeof(token));
    char headers[1024];
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\n", token);
    int fd = open_stream("/tables/profiles/w-nl", headers);
    static char buf[65536];
    size_t len = 0;
    assert_int_equal(read_events(fd, buf, sizeof(buf), &len, 1, 5000), 1);
    close(fd);
    int data_lines = 0;
    for (const char *at = buf; (at = strstr(at, "\ndata: ")) != NULL; ++at)
        ++data_lines;
    assert_int_equal(data_lines, 3001);
    assert_non_null(strstr(buf, "\ndata: \"a\":1}\n\n"));

    /* 300 partitions of another topic: a token of ~4.3 KB, merged into the answer's token */
    sg_token_t *big = sg_token_create();
    for (int p = 0; p < 300; ++p)
        assert_int_equal(sg_token_advance(big, "another.topic.with.a.long.name", p, 1000000 + p, 1700000000000LL), 0);
    static char big_text[32768];
    size_t big_len = sg_token_encode(big, big_text, sizeof(big_text));
    sg_token_destroy(big);
    assert_true(big_len > 4096 && big_len < 8192);
    static char big_headers[9000];
    snprintf(big_headers, sizeof(big_headers), "Consistency-Token: %s\r\n", big_text);
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles/w-nl", big_headers, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    static char answer[32768];
    assert_non_null(sg_test_header(&res, "consistency-token", answer, sizeof(answer)));
    assert_true(strlen(answer) > big_len);
    sg_test_response_free(&res);
    /* and a number too large for 64 bits is a 400, not an overflow */
    expect_problem("/tables/profiles/w-nl?min_stream_time=99999999999999999999", 400, "invalid-query", "min_stream_time");
    expect_problem("/tables/profiles/w-nl?min_stream_time=9999999999999999999", 400, "invalid-query", "min_stream_time");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_your_write_etag_and_304),
        cmocka_unit_test(test_point_read_headers_over_http2),
        cmocka_unit_test(test_immediate_reads_give_back_their_pending_slot),
        cmocka_unit_test(test_tokens_ahead_bad_and_unknown),
        cmocka_unit_test(test_tombstone_deletes),
        cmocka_unit_test(test_scan_prefix_range_limit_cursor),
        cmocka_unit_test(test_scan_skips_values_that_are_not_json),
        cmocka_unit_test(test_configured_queries),
        cmocka_unit_test(test_fresh_latest_sees_other_producers),
        cmocka_unit_test(test_min_stream_time_idle_partition),
        cmocka_unit_test(test_watch_updates_deletes_and_resume),
        cmocka_unit_test(test_watch_multiline_value_and_long_tokens),
    };
    return cmocka_run_group_tests_name("integration-tables", tests, setup, teardown);
}
