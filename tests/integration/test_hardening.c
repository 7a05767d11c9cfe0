/*
 * What a hostile or broken peer must not get away with (issue 11): a worker's reply that would
 * break the client's framing (1xx, a 204 or 304 with a body, upper-case or malformed header
 * names), and a client's request head that two parties could frame differently (request
 * smuggling). Each answer is checked on the wire, byte for byte, over HTTP/1 and (with nghttp)
 * HTTP/2, live and replayed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"
#include "wire.h"

static const char config[] = "listen: [\"127.0.0.1:0\"]\n"
                             "threads: 2\n"
                             "data_dir: @DIR@/data\n"
                             "topics:\n"
                             "  - {name: hard.commands, partitions: 2}\n"
                             "  - {name: hard.replies, partitions: 1}\n"
                             "  - {name: hard.events, partitions: 1}\n"
                             "routes:\n"
                             "  - name: ask\n"
                             "    method: POST\n"
                             "    path: /ask\n"
                             "    topic: hard.commands\n"
                             "    key: \"body:/id\"\n"
                             "    reply: {topic: hard.replies, timeout: 10s, headers: [X-Foo, x-bar, Content-Length, Connection]}\n"
                             "  - {name: event, method: POST, path: /events, topic: hard.events, key: none}\n";

static sg_test_proc_t gw;
static sg_test_worker_t *worker;

static int setup(void **state)
{
    if (sg_test_gateway_start(&gw, config) != 0)
        return -1;
    worker = sg_test_worker_start(gw.bootstrap, "hard.commands", 2);
    return worker != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    sg_test_worker_stop(worker);
    return sg_test_proc_stop(&gw) == 0 ? 0 : -1;
}

/* Sends raw bytes on a new connection and reads until the gateway closes it or `timeout_ms`
 * passes. Returns the bytes read (NUL-terminated in out); *closed says whether it closed. */
static size_t raw_exchange(const char *request, size_t request_len, char *out, size_t cap, int timeout_ms, int *closed)
{
    int fd = wire_connect(&gw, 0);
    assert_true(fd >= 0);
    assert_int_equal(wire_send(fd, request, request_len), 0);
    size_t len = wire_read(fd, timeout_ms, out, cap, closed);
    close(fd);
    return len;
}

/* strcasestr without _GNU_SOURCE. */
static const char *find_ci(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *at = haystack; *at; ++at)
        if (strncasecmp(at, needle, n) == 0)
            return at;
    return NULL;
}

/* The count of "HTTP/1.1 " status lines in a raw stream: how many responses were sent. */
static int responses_in(const char *raw)
{
    int n = 0;
    for (const char *at = strstr(raw, "HTTP/1.1 "); at != NULL; at = strstr(at + 1, "HTTP/1.1 "))
        ++n;
    return n;
}

static json_t *body_of(const char *raw)
{
    const char *body = strstr(raw, "\r\n\r\n");
    assert_non_null(body);
    return json_loads(body + 4, JSON_DISABLE_EOF_CHECK, NULL);
}

/* POSTs to /ask on HTTP/1.1 with Connection: close; returns the raw response. */
static size_t ask_raw(const char *body, const char *extra_headers, char *out, size_t cap)
{
    char request[4096];
    int n = snprintf(request, sizeof(request),
                     "POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n%s",
                     strlen(body), extra_headers != NULL ? extra_headers : "", body);
    int closed;
    size_t len = raw_exchange(request, (size_t)n, out, cap, 15000, &closed);
    assert_true(closed);
    return len;
}

/* --- defect 4: 1xx, 204 and 304 from a worker ---------------------------------------------- */

static void assert_no_content(const char *raw, const char *status_line)
{
    if (strncmp(raw, status_line, strlen(status_line)) != 0)
        fprintf(stderr, "expected %s, got:\n%s\n", status_line, raw);
    assert_memory_equal(raw, status_line, strlen(status_line));
    const char *end = strstr(raw, "\r\n\r\n");
    assert_non_null(end);
    assert_string_equal(end + 4, ""); /* nothing after the head: no body */
    char head[4096];
    snprintf(head, sizeof(head), "%.*s", (int)(end - raw), raw);
    for (char *p = head; *p; ++p)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    assert_null(strstr(head, "\ncontent-length:"));
    assert_null(strstr(head, "\ntransfer-encoding:"));
}

static void test_reply_204_and_304_have_no_body(void **state)
{
    char raw[8192];
    ask_raw("{\"id\":\"nc-1\",\"status\":\"204\",\"body\":{\"dropped\":true}}", NULL, raw, sizeof(raw));
    assert_no_content(raw, "HTTP/1.1 204 ");
    ask_raw("{\"id\":\"nc-2\",\"status\":\"304\",\"body\":{\"dropped\":true}}", NULL, raw, sizeof(raw));
    assert_no_content(raw, "HTTP/1.1 304 ");

    /* Keep-alive: the response after a 204 must be the next thing on the connection. */
    const char body[] = "{\"id\":\"nc-3\",\"status\":\"204\",\"body\":{\"dropped\":true}}";
    const char next[] = "{\"id\":\"nc-4\"}";
    char request[2048];
    int n = snprintf(request, sizeof(request),
                     "POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s"
                     "POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     strlen(body), body, strlen(next), next);
    int closed;
    raw_exchange(request, (size_t)n, raw, sizeof(raw), 15000, &closed);
    assert_true(closed);
    assert_int_equal(responses_in(raw), 2);
    const char *second = strstr(raw + 1, "HTTP/1.1 ");
    assert_memory_equal(second, "HTTP/1.1 200 ", 13);
    assert_memory_equal(raw + (second - raw) - 4, "\r\n\r\n", 4); /* the 204's head ended right before */
}

static void test_reply_interim_status_is_502(void **state)
{
    const char *statuses[] = {"100", "101", "103", "199"};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); ++i) {
        char body[128], raw[8192];
        snprintf(body, sizeof(body), "{\"id\":\"st-%zu\",\"status\":\"%s\"}", i, statuses[i]);
        ask_raw(body, NULL, raw, sizeof(raw));
        if (strncmp(raw, "HTTP/1.1 502 ", 13) != 0)
            fprintf(stderr, "status %s answered:\n%s\n", statuses[i], raw);
        assert_memory_equal(raw, "HTTP/1.1 502 ", 13);
        assert_int_equal(responses_in(raw), 1);
        json_t *doc = body_of(raw);
        assert_non_null(doc);
        assert_string_equal(json_string_value(json_object_get(doc, "type")), "urn:streamgate:problem:invalid-reply");
        json_decref(doc);
    }
}

/* The outcome of a request, polled from GET /requests/{id} until done. */
static json_t *outcome_of(const char *location)
{
    for (int i = 0; i < 200; ++i) {
        sg_test_response_t res;
        assert_int_equal(sg_test_http(&gw, "GET", location, NULL, NULL, 0, &res), 0);
        assert_int_equal(res.status, 200);
        json_t *doc = json_loads(res.body, 0, NULL);
        sg_test_response_free(&res);
        assert_non_null(doc);
        if (strcmp(json_string_value(json_object_get(doc, "state")), "done") == 0)
            return doc;
        json_decref(doc);
        struct timespec pause = {0, 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    fail_msg("%s never got done", location);
    return NULL;
}

static void test_stored_no_content_outcome_is_consistent(void **state)
{
    /* Replayed with Idempotency-Key: again no body, and marked as a replay. */
    const char body[] = "{\"id\":\"idem-204\",\"status\":\"204\",\"body\":{\"dropped\":true}}";
    char raw[8192];
    ask_raw(body, "Idempotency-Key: k-204\r\n", raw, sizeof(raw));
    assert_no_content(raw, "HTTP/1.1 204 ");
    ask_raw(body, "Idempotency-Key: k-204\r\n", raw, sizeof(raw));
    assert_no_content(raw, "HTTP/1.1 204 ");
    assert_non_null(find_ci(raw, "\r\nidempotent-replayed: true\r\n"));

    /* The status resource says 204 with no body (null), not the worker's body. */
    sg_test_response_t res;
    const char async_body[] = "{\"id\":\"async-204\",\"status\":\"204\",\"body\":{\"dropped\":true}}";
    assert_int_equal(sg_test_http(&gw, "POST", "/ask", "Content-Type: application/json\r\nPrefer: respond-async\r\n", async_body,
                                  strlen(async_body), &res),
                     0);
    assert_int_equal(res.status, 202);
    char location[256];
    assert_non_null(sg_test_header(&res, "location", location, sizeof(location)));
    sg_test_response_free(&res);
    json_t *doc = outcome_of(location);
    json_t *response = json_object_get(doc, "response");
    assert_int_equal(json_integer_value(json_object_get(response, "status")), 204);
    assert_true(json_is_null(json_object_get(response, "body")));
    json_decref(doc);

    /* And an interim status is recorded as the 502 the client got. */
    const char interim[] = "{\"id\":\"async-101\",\"status\":\"101\"}";
    assert_int_equal(sg_test_http(&gw, "POST", "/ask", "Content-Type: application/json\r\nPrefer: respond-async\r\n", interim,
                                  strlen(interim), &res),
                     0);
    assert_int_equal(res.status, 202);
    assert_non_null(sg_test_header(&res, "location", location, sizeof(location)));
    sg_test_response_free(&res);
    doc = outcome_of(location);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "response"), "status")), 502);
    json_decref(doc);
}

/* Runs nghttp (HTTP/2 with prior knowledge) for a POST of `body` to /ask; returns its exit status
 * and its verbose output (frames and headers) in out. */
static int nghttp_post(const char *body, char *out, size_t outlen)
{
    char *path = sg_test_write_temp("body.json", body);
    assert_non_null(path);
    char url[128];
    snprintf(url, sizeof(url), "http://%s:%u/ask", gw.host, gw.port);
    const char *args[] = {"/usr/bin/nghttp", "-v", "-t", "10", "-d", path, "-H", "content-type: application/json", url, NULL};
    int rc = sg_test_run(args, out, outlen);
    sg_test_remove_temp(path);
    return rc;
}

static void test_reply_204_over_http2(void **state)
{
    char out[65536];
    int rc = nghttp_post("{\"id\":\"h2-204\",\"status\":\"204\",\"body\":{\"dropped\":true}}", out, sizeof(out));
    if (rc != 0 || strstr(out, ":status: 204") == NULL || strstr(out, "RST_STREAM") != NULL)
        fprintf(stderr, "nghttp exited %d:\n%s\n", rc, out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, ":status: 204"));
    assert_null(strstr(out, "RST_STREAM"));
    assert_null(strstr(out, "dropped")); /* no DATA carried the worker's body */
}

/* --- defect 9: reply header names ----------------------------------------------------------- */

static void test_reply_header_names_lower_cased(void **state)
{
    char raw[8192];
    ask_raw("{\"id\":\"hn-1\",\"header\":[\"X-Foo\",\"one\"]}", NULL, raw, sizeof(raw));
    assert_memory_equal(raw, "HTTP/1.1 200 ", 13);
    assert_non_null(strstr(raw, "\r\nx-foo: one\r\n"));
    assert_null(strstr(raw, "X-Foo"));

    /* Not a token, or one that frames the message: dropped, whatever the route allows. */
    ask_raw("{\"id\":\"hn-2\",\"header\":[\"Bad Name\",\"two\"]}", NULL, raw, sizeof(raw));
    assert_memory_equal(raw, "HTTP/1.1 200 ", 13);
    assert_null(find_ci(raw, "bad name"));
    assert_null(strstr(raw, ": two\r\n"));
    ask_raw("{\"id\":\"hn-4\",\"header\":[\"Content-Length\",\"999\"]}", NULL, raw, sizeof(raw));
    assert_memory_equal(raw, "HTTP/1.1 200 ", 13);
    assert_null(strstr(raw, ": 999\r\n"));
    ask_raw("{\"id\":\"hn-5\",\"header\":[\"Connection\",\"upgrade\"]}", NULL, raw, sizeof(raw));
    assert_memory_equal(raw, "HTTP/1.1 200 ", 13);
    assert_null(strstr(raw, ": upgrade\r\n"));

    /* Replayed: lower-case as well. */
    const char body[] = "{\"id\":\"hn-3\",\"header\":[\"X-BAR\",\"three\"]}";
    ask_raw(body, "Idempotency-Key: k-hn-3\r\n", raw, sizeof(raw));
    assert_non_null(strstr(raw, "\r\nx-bar: three\r\n"));
    ask_raw(body, "Idempotency-Key: k-hn-3\r\n", raw, sizeof(raw));
    assert_non_null(strstr(raw, "\r\nidempotent-replayed: true\r\n"));
    assert_non_null(strstr(raw, "\r\nx-bar: three\r\n"));
    assert_null(strstr(raw, "X-BAR"));
}

static void test_reply_header_names_over_http2(void **state)
{
    char out[65536];
    int rc = nghttp_post("{\"id\":\"h2-hn\",\"header\":[\"X-Foo\",\"h2\"]}", out, sizeof(out));
    if (rc != 0 || strstr(out, "x-foo: h2") == NULL)
        fprintf(stderr, "nghttp exited %d:\n%s\n", rc, out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, ":status: 200"));
    assert_non_null(strstr(out, "x-foo: h2"));
}

/* --- defect 10: request smuggling ----------------------------------------------------------- */

/* Sends a request whose framing is ambiguous, followed by a second request that a proxy would
 * have seen as part of the body (or the other way round): exactly one 400 invalid-framing, the
 * connection closed, and nothing produced. */
static void assert_smuggling_refused(const char *raw_request)
{
    int64_t before = sg_test_topic_count(gw.bootstrap, "hard.events");
    char raw[8192];
    int closed;
    raw_exchange(raw_request, strlen(raw_request), raw, sizeof(raw), 5000, &closed);
    if (strncmp(raw, "HTTP/1.1 400 ", 13) != 0 || !closed || responses_in(raw) != 1)
        fprintf(stderr, "for:\n%s\ngot (closed %d):\n%s\n", raw_request, closed, raw);
    assert_memory_equal(raw, "HTTP/1.1 400 ", 13);
    assert_true(closed);
    assert_int_equal(responses_in(raw), 1);
    assert_non_null(find_ci(raw, "\r\nconnection: close\r\n"));
    json_t *doc = body_of(raw);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "type")), "urn:streamgate:problem:invalid-framing");
    json_decref(doc);
    assert_int_equal(sg_test_topic_count(gw.bootstrap, "hard.events"), before);
}

static void test_two_content_lengths_refused(void **state)
{
    /* H2O 2.2.5 takes the first: the body is {"a":1}, then "POST /events..." is a second request. */
    assert_smuggling_refused("POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Content-Length: 7\r\nContent-Length: 74\r\n\r\n{\"a\":1}"
                             "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Content-Length: 7\r\n\r\n{\"b\":2}");
    /* the other order */
    assert_smuggling_refused("POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "content-length: 7\r\nCONTENT-LENGTH: 8\r\n\r\n{\"a\":1} ");
}

static void test_content_length_with_chunked_refused(void **state)
{
    /* H2O 2.2.5 reads the chunked body and keeps the connection: a proxy that used Content-Length
     * would forward the rest as the next request. */
    assert_smuggling_refused("POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "7\r\n{\"a\":1}\r\n0\r\n\r\n"
                             "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Content-Length: 7\r\n\r\n{\"b\":2}");
    assert_smuggling_refused("POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Transfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n"
                             "7\r\n{\"a\":1}\r\n0\r\n\r\n");
    assert_smuggling_refused("POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "7\r\n{\"a\":1}\r\n0\r\n\r\n");
}

static void test_unambiguous_framing_still_accepted(void **state)
{
    /* The same length twice is one length (RFC 9112 6.3), and chunked alone is fine. */
    int64_t before = sg_test_topic_count(gw.bootstrap, "hard.events");
    const char *requests[] = {"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              "Content-Length: 7\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{\"a\":1}",
                              "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n"};
    for (size_t i = 0; i < 2; ++i) {
        char raw[8192];
        int closed;
        raw_exchange(requests[i], strlen(requests[i]), raw, sizeof(raw), 10000, &closed);
        if (strncmp(raw, "HTTP/1.1 202 ", 13) != 0)
            fprintf(stderr, "got:\n%s\n", raw);
        assert_memory_equal(raw, "HTTP/1.1 202 ", 13);
    }
    assert_int_equal(sg_test_topic_count(gw.bootstrap, "hard.events"), before + 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_204_and_304_have_no_body),
        cmocka_unit_test(test_reply_interim_status_is_502),
        cmocka_unit_test(test_stored_no_content_outcome_is_consistent),
        cmocka_unit_test(test_reply_204_over_http2),
        cmocka_unit_test(test_reply_header_names_lower_cased),
        cmocka_unit_test(test_reply_header_names_over_http2),
        cmocka_unit_test(test_two_content_lengths_refused),
        cmocka_unit_test(test_content_length_with_chunked_refused),
        cmocka_unit_test(test_unambiguous_framing_still_accepted),
    };
    return cmocka_run_group_tests_name("hardening", tests, setup, teardown);
}
