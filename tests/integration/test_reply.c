/*
 * Request-reply end to end: the real gateway on its embedded cluster, and the harness's worker
 * (a librdkafka consumer + producer on a thread of this process) answering by the header
 * contract, as each request body tells it.
 */
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "harness.h"
#include "sg_token.h"

static const char config[] =
    "listen: [\"127.0.0.1:0\"]\n"
    "threads: 2\n"
    "data_dir: @DIR@/data\n"
    "topics:\n"
    "  - {name: rr.requests, partitions: 2}\n"
    "  - {name: rr.replies, partitions: 2}\n"
    "  - {name: py.requests, partitions: 2}\n"
    "  - {name: py.replies, partitions: 1}\n"
    "  - {name: rr.pinned, partitions: 3}\n"
    "  - {name: nm.requests, partitions: 1}\n"
    "routes:\n"
    "  - name: order\n"
    "    method: POST\n"
    "    path: /orders\n"
    "    topic: rr.requests\n"
    "    key: none\n"
    "    reply: {topic: rr.replies, timeout: 1500ms, max_timeout: 4s, headers: [x-order-id]}\n"
    "  - name: pinned\n"
    "    method: POST\n"
    "    path: /pinned\n"
    "    topic: rr.requests\n"
    "    reply: {topic: rr.pinned, timeout: 5s, partitions: [2]}\n"
    "  - name: py\n"
    "    method: POST\n"
    "    path: /py\n"
    "    topic: py.requests\n"
    "    reply: {topic: py.replies, timeout: 10s}\n"
    /* other header names, and the same reply topic as /orders */
    "  - name: named\n"
    "    method: POST\n"
    "    path: /named\n"
    "    topic: nm.requests\n"
    "    reply: {topic: rr.replies, timeout: 5s, correlation_header: x-corr, reply_topic_header: x-reply-to}\n";

static sg_test_proc_t gw;

static sg_test_worker_t *worker;
static sg_test_worker_t *named_worker; /* answers nm.requests by x-corr and x-reply-to */

static int setup(void **state)
{
    if (sg_test_gateway_start(&gw, config) != 0)
        return -1;
    worker = sg_test_worker_start(gw.bootstrap, "rr.requests", 2);
    named_worker = sg_test_worker_start_named(gw.bootstrap, "nm.requests", 1, "x-corr", "x-reply-to");
    return worker != NULL && named_worker != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    sg_test_worker_stop(worker);
    sg_test_worker_stop(named_worker);
    return sg_test_stop_procs(&gw, NULL);
}

/* --- helpers ------------------------------------------------------------------------------ */

/* POST /orders; returns how long the answer took (ms). */
static int64_t post(const char *extra_headers, const char *body, sg_test_response_t *res)
{
    int64_t start = sg_test_now_ms();
    assert_int_equal(sg_test_post_json(&gw, "/orders", extra_headers, body, res), 0);
    return sg_test_now_ms() - start;
}

static void assert_pending_202(sg_test_response_t *res, char id[64])
{
    char location[128];
    if (res->status != 202)
        fprintf(stderr, "got %d: %s\n", res->status, res->body);
    assert_int_equal(res->status, 202);
    assert_non_null(sg_test_header(res, "location", location, sizeof(location)));
    assert_memory_equal(location, "/requests/", 10);
    assert_int_equal(strlen(location), 10 + 32);
    json_t *doc = json_loads(res->body, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "pending");
    assert_string_equal(json_string_value(json_object_get(doc, "id")), location + 10);
    snprintf(id, 64, "%s", location + 10);
    json_decref(doc);
    char token[512];
    assert_non_null(sg_test_header(res, "consistency-token", token, sizeof(token)));
}

/* --- tests -------------------------------------------------------------------------------- */

static void test_sync_reply_200(void **state)
{
    sg_test_response_t res;
    int64_t elapsed = post(NULL, "{\"body\":{\"orderId\":7,\"state\":\"placed\"}}", &res);
    if (res.status != 200)
        fprintf(stderr, "answered %d after %lld ms: %s\n", res.status, (long long)elapsed, res.body);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"orderId\":7,\"state\":\"placed\"}");
    char value[512];
    assert_string_equal(sg_test_header(&res, "content-type", value, sizeof(value)), "application/json");
    /* the token is the reply's own position, on the reply topic */
    assert_non_null(sg_test_header(&res, "consistency-token", value, sizeof(value)));
    char err[128];
    sg_token_t *token = sg_token_decode(value, strlen(value), err, sizeof(err));
    assert_non_null(token);
    assert_int_equal(sg_token_count(token), 1);
    const char *topic;
    int32_t partition;
    int64_t offset, stream_time;
    sg_token_entry(token, 0, &topic, &partition, &offset, &stream_time);
    assert_string_equal(topic, "rr.replies");
    sg_token_destroy(token);
    sg_test_response_free(&res);
}

static void test_route_header_names(void **state)
{
    /* /named's requests carry x-corr and x-reply-to (its worker reads only those, so a reply
     * proves it), and its replies, on the reply topic /orders also uses with Spring's names, are
     * recognised by x-corr; the other route's replies still by kafka_correlationId. */
    for (int round = 0; round < 3; ++round) {
        sg_test_response_t res;
        assert_int_equal(sg_test_post_json(&gw, "/named", NULL, "{\"body\":{\"named\":true}}", &res), 0);
        if (res.status != 200)
            fprintf(stderr, "/named answered %d: %s\n", res.status, res.body);
        assert_int_equal(res.status, 200);
        assert_string_equal(res.body, "{\"named\":true}");
        char value[64];
        assert_null(sg_test_header(&res, "x-corr", value, sizeof(value))); /* the id header is not copied */
        sg_test_response_free(&res);
        post(NULL, "{\"body\":{\"orders\":true}}", &res);
        assert_int_equal(res.status, 200);
        assert_string_equal(res.body, "{\"orders\":true}");
        sg_test_response_free(&res);
    }
}

static void test_pinned_reply_partition(void **state)
{
    /* The instance reads only partition 2 of rr.pinned (of 3) and says so in
     * kafka_replyPartition; the worker replies there, and each reply's token shows where it came
     * from. Four requests: a worker left to choose would miss partition 2 most of the time. */
    for (int i = 0; i < 4; ++i) {
        sg_test_response_t res;
        const char body[] = "{\"body\":\"pinned\"}";
        assert_int_equal(sg_test_post_json(&gw, "/pinned", NULL, body, &res), 0);
        assert_int_equal(res.status, 200);
        assert_string_equal(res.body, "\"pinned\"");
        char value[512], err[128];
        assert_non_null(sg_test_header(&res, "consistency-token", value, sizeof(value)));
        sg_token_t *token = sg_token_decode(value, strlen(value), err, sizeof(err));
        assert_non_null(token);
        const char *topic;
        int32_t partition;
        int64_t offset, stream_time;
        sg_token_entry(token, 0, &topic, &partition, &offset, &stream_time);
        assert_string_equal(topic, "rr.pinned");
        assert_int_equal(partition, 2);
        sg_token_destroy(token);
        sg_test_response_free(&res);
    }
}

static void test_mapped_status_content_type_and_allowed_headers(void **state)
{
    sg_test_response_t res;
    post(NULL,
         "{\"status\":\"201\",\"content_type\":\"application/vnd.order+json\",\"header\":[\"x-order-id\",\"A-17\"],"
         "\"body\":{\"id\":\"A-17\"}}",
         &res);
    assert_int_equal(res.status, 201);
    assert_string_equal(res.body, "{\"id\":\"A-17\"}");
    char value[256];
    assert_string_equal(sg_test_header(&res, "content-type", value, sizeof(value)), "application/vnd.order+json");
    assert_string_equal(sg_test_header(&res, "x-order-id", value, sizeof(value)), "A-17");
    assert_null(sg_test_header(&res, "x-secret", value, sizeof(value))); /* not in reply.headers */
    sg_test_response_free(&res);
}

static long metric(sg_test_proc_t *target, const char *name)
{
    sg_test_response_t res;
    assert_int_equal(sg_test_http(target, "GET", "/metrics", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    char needle[128];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *line = strstr(res.body, needle);
    assert_non_null(line);
    long value = strtol(line + strlen(needle), NULL, 10);
    sg_test_response_free(&res);
    return value;
}

static void test_reply_after_timeout_is_202_with_location(void **state)
{
    sg_test_response_t res;
    char id[64];
    int64_t elapsed = post(NULL, "{\"delay_ms\":2500}", &res);
    long unawaited_before = metric(&gw, "streamgate_replies_unawaited_total");
    assert_pending_202(&res, id);
    assert_true(elapsed >= 1400 && elapsed < 2400); /* the route's 1.5 s timeout */
    assert_null(sg_test_header(&res, "preference-applied", id, sizeof(id)));
    sg_test_response_free(&res);
    /* the late reply (at 2.5 s) must not disturb anything */
    sg_test_sleep_ms(1300);
    post(NULL, "{\"body\":1}", &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "1");
    sg_test_response_free(&res);
    /* the late reply found nobody waiting (it is recorded for polling) and was counted */
    assert_int_equal(metric(&gw, "streamgate_replies_unawaited_total"), unawaited_before + 1);
}

static void test_prefer_wait_shortens_and_is_capped(void **state)
{
    sg_test_response_t res;
    char id[64];
    int64_t elapsed = post("Prefer: wait=0\r\n", "{\"delay_ms\":1000}", &res);
    assert_pending_202(&res, id);
    assert_true(elapsed < 1400); /* at once: not held for the route's 1.5 s timeout (the reply, at 1 s, was not awaited) */
    sg_test_response_free(&res);
    /* wait=1 is shorter than the route's 1.5 s */
    elapsed = post("Prefer: handling=lenient, wait=1\r\n", "{\"delay_ms\":2000}", &res);
    assert_pending_202(&res, id);
    assert_true(elapsed >= 900 && elapsed < 1400);
    sg_test_response_free(&res);
    /* wait=3 is longer than the timeout and within max_timeout: the 2 s reply makes it */
    elapsed = post("Prefer: wait=3\r\n", "{\"delay_ms\":2000,\"body\":\"late but awaited\"}", &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "\"late but awaited\"");
    assert_true(elapsed >= 1900);
    sg_test_response_free(&res);
}

static void test_respond_async(void **state)
{
    sg_test_response_t res;
    char id[64], value[64];
    int64_t elapsed = post("Prefer: respond-async\r\n", "{\"delay_ms\":2000}", &res);
    assert_pending_202(&res, id);
    assert_true(elapsed < 1400); /* at once: not held for the route's 1.5 s timeout, nor for the 2 s reply */
    assert_string_equal(sg_test_header(&res, "preference-applied", value, sizeof(value)), "respond-async");
    sg_test_response_free(&res);
}

static void test_invalid_reply_status_is_502(void **state)
{
    sg_test_response_t res;
    post(NULL, "{\"status\":\"2xx\"}", &res);
    sg_test_assert_problem(&res, 502, "invalid-reply", ":status");
    sg_test_response_free(&res);
}

static void test_forged_reply_is_ignored(void **state)
{
    /* The worker mangles the correlation id: the MAC fails, the reply is dropped, and the
     * request times out into a 202 instead of being answered by someone else's reply. */
    sg_test_response_t res;
    char id[64];
    long dropped_before = metric(&gw, "streamgate_replies_dropped_total");
    post(NULL, "{\"forge\":\"AAAA\"}", &res);
    assert_pending_202(&res, id);
    sg_test_response_free(&res);
    assert_int_equal(metric(&gw, "streamgate_replies_dropped_total"), dropped_before + 1);
}

static void test_many_concurrent_sync_requests(void **state)
{
    const char *h1[] = {"--h1", "-c", "16", "-t", "2", NULL};
    sg_test_h2load(&gw, "/orders", "{\"body\":{\"ok\":1}}", 2000, h1);
}

typedef struct {
    sg_test_proc_t *target;
    int status;
    char location[128];
    int64_t elapsed;
} waiter_t;

static void *wait_in_background(void *arg)
{
    waiter_t *waiter = arg;
    sg_test_response_t res;
    int64_t start = sg_test_now_ms();
    if (sg_test_post_json(waiter->target, "/s", NULL, "{}", &res) == 0) {
        waiter->status = res.status;
        if (sg_test_header(&res, "location", waiter->location, sizeof(waiter->location)) == NULL)
            waiter->location[0] = '\0';
        sg_test_response_free(&res);
    }
    waiter->elapsed = sg_test_now_ms() - start;
    return NULL;
}

static void test_sigterm_answers_waiting_requests(void **state)
{
    sg_test_proc_t small;
    assert_int_equal(sg_test_gateway_start(&small, "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\n"
                                                   "topics: [{name: s.requests}, {name: s.replies}]\n"
                                                   "routes:\n  - {name: s, method: POST, path: /s, topic: s.requests,\n"
                                                   "     reply: {topic: s.replies, timeout: 30s}}\n"),
                     0);
    waiter_t waiter = {.target = &small};
    pthread_t thread;
    pthread_create(&thread, NULL, wait_in_background, &waiter);
    sg_test_sleep_ms(400);
    /* nobody will answer; stopping the gateway hands the waiting client its Location */
    assert_int_equal(sg_test_proc_stop(&small), 0);
    pthread_join(thread, NULL);
    assert_int_equal(waiter.status, 202);
    assert_memory_equal(waiter.location, "/requests/", 10);
    assert_true(waiter.elapsed < 5000);
}

static void test_pending_limit_is_503(void **state)
{
    sg_test_proc_t small;
    assert_int_equal(sg_test_gateway_start(&small, "listen: [\"127.0.0.1:0\"]\nthreads: 1\ndata_dir: @DIR@/data\n"
                                                   "limits: {pending: 1}\n"
                                                   "topics: [{name: q.requests}, {name: q.replies}]\n"
                                                   "routes:\n  - {name: q, method: POST, path: /q, topic: q.requests,\n"
                                                   "     reply: {topic: q.replies, timeout: 3s}}\n"),
                     0);
    /* nobody answers q.requests: the first request waits 3 s and holds the only slot */
    sg_test_response_t res;
    pid_t child = fork();
    if (child == 0) {
        sg_test_response_t first;
        _exit(sg_test_post_json(&small, "/q", NULL, "{}", &first) == 0 && first.status == 202 ? 0 : 1);
    }
    sg_test_sleep_ms(500);
    assert_int_equal(sg_test_post_json(&small, "/q", NULL, "{}", &res), 0);
    sg_test_assert_problem(&res, 503, "too-many-pending", NULL);
    char value[32];
    assert_non_null(sg_test_header(&res, "retry-after", value, sizeof(value)));
    sg_test_response_free(&res);
    int status = -1;
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* the first one timed out into a 202 */

    /* long-polls count against the same limit: one parked, the next one is refused */
    assert_int_equal(sg_test_post_json(&small, "/q", "Prefer: respond-async\r\n", "{}", &res), 0);
    char location[128];
    assert_non_null(sg_test_header(&res, "location", location, sizeof(location)));
    sg_test_response_free(&res);
    pid_t poller = fork();
    if (poller == 0) {
        sg_test_response_t parked;
        _exit(sg_test_http(&small, "GET", location, "Prefer: wait=2\r\n", NULL, 0, &parked) == 0 && parked.status == 200 ? 0 : 1);
    }
    sg_test_sleep_ms(500);
    assert_int_equal(sg_test_http(&small, "GET", location, "Prefer: wait=2\r\n", NULL, 0, &res), 0);
    sg_test_assert_problem(&res, 503, "too-many-pending", NULL);
    sg_test_response_free(&res);
    waitpid(poller, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* the parked one got its answer */
    /* the refused ones never reached Kafka: only the waiting request and the async one did */
    assert_int_equal(sg_test_topic_count(small.bootstrap, "q.requests"), 2);
    assert_int_equal(sg_test_proc_stop(&small), 0);
}

static json_t *get_status(sg_test_proc_t *target, const char *id, const char *headers, int *status, int64_t *elapsed)
{
    char path[128];
    snprintf(path, sizeof(path), "/requests/%s", id);
    sg_test_response_t res;
    int64_t start = sg_test_now_ms();
    assert_int_equal(sg_test_http(target, "GET", path, headers, NULL, 0, &res), 0);
    if (elapsed != NULL)
        *elapsed = sg_test_now_ms() - start;
    *status = res.status;
    json_t *doc = json_loads(res.body, 0, NULL);
    sg_test_response_free(&res);
    return doc;
}

static void test_status_pending_then_long_poll_done(void **state)
{
    sg_test_response_t res;
    char id[64];
    post("Prefer: respond-async\r\n",
         "{\"delay_ms\":700,\"status\":\"201\",\"header\":[\"x-order-id\",\"B-9\"],\"body\":{\"n\":9}}", &res);
    assert_pending_202(&res, id);
    sg_test_response_free(&res);

    int status;
    json_t *doc = get_status(&gw, id, NULL, &status, NULL);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "pending");
    assert_string_equal(json_string_value(json_object_get(doc, "id")), id);
    assert_null(json_object_get(doc, "response"));
    json_decref(doc);

    /* long-poll: returns as soon as the reply is recorded, well before the 5 s wait */
    int64_t elapsed;
    doc = get_status(&gw, id, "Prefer: wait=5\r\n", &status, &elapsed);
    int64_t since_reply = sg_test_now_ms() - sg_test_worker_last_reply_ms(worker);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "done");
    assert_true(elapsed < 4000);
    /* woken by the reply, not found by a poll: within 400 ms of the worker's reply (the bound
     * leaves room for a loaded machine; a store polled every half second or slower fails it) */
    assert_true(since_reply < 400);
    json_t *response = json_object_get(doc, "response");
    assert_int_equal(json_integer_value(json_object_get(response, "status")), 201);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(response, "body"), "n")), 9);
    json_t *headers = json_object_get(response, "headers");
    assert_string_equal(json_string_value(json_object_get(headers, "x-order-id")), "B-9");
    assert_string_equal(json_string_value(json_object_get(headers, "content-type")), "application/json");
    assert_null(json_object_get(headers, "x-secret"));
    json_decref(doc);

    /* a plain GET now sees it done too */
    doc = get_status(&gw, id, NULL, &status, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "done");
    json_decref(doc);
}

static void test_status_event_stream(void **state)
{
    sg_test_response_t res;
    char id[64];
    post("Prefer: respond-async\r\n", "{\"delay_ms\":600,\"body\":{\"streamed\":true}}", &res);
    assert_pending_202(&res, id);
    sg_test_response_free(&res);
    char url[160], out[8192];
    snprintf(url, sizeof(url), "http://%s:%u/requests/%s", gw.host, gw.port, id);
    const char *curl[] = {"/usr/bin/curl", "-sSN", "--max-time", "10", "-H", "Accept: text/event-stream", url, NULL};
    int64_t start = sg_test_now_ms();
    assert_int_equal(sg_test_run(curl, out, sizeof(out)), 0); /* the stream ends by itself */
    assert_true(sg_test_now_ms() - start < 5000);
    const char *pending = strstr(out, "event: pending\ndata: {");
    const char *done = strstr(out, "event: done\ndata: {");
    if (pending == NULL || done == NULL)
        fprintf(stderr, "stream: %s\n", out);
    assert_non_null(pending);
    assert_non_null(done);
    assert_true(pending < done);
    assert_non_null(strstr(done, "\"streamed\":true"));
    assert_non_null(strstr(done, "\n\n"));

    /* a settled request: one event, and the stream closes */
    start = sg_test_now_ms();
    assert_int_equal(sg_test_run(curl, out, sizeof(out)), 0);
    assert_true(sg_test_now_ms() - start < 2000);
    assert_null(strstr(out, "event: pending"));
    assert_non_null(strstr(out, "event: done\ndata: {"));
}

static void test_status_after_sync_timeout(void **state)
{
    sg_test_response_t res;
    char id[64];
    post(NULL, "{\"delay_ms\":1800,\"body\":\"slow\"}", &res);
    assert_pending_202(&res, id);
    sg_test_response_free(&res);
    int status;
    json_t *doc = get_status(&gw, id, "Prefer: wait=3\r\n", &status, NULL);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "done");
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "response"), "body")), "slow");
    json_decref(doc);
}

static void test_status_of_forged_or_mangled_ids_is_404(void **state)
{
    sg_test_response_t res;
    char id[64];
    post("Prefer: respond-async\r\n", "{}", &res);
    assert_pending_202(&res, id);
    sg_test_response_free(&res);
    const char *bad[] = {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "short", "%00%01", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        int status;
        json_t *doc = get_status(&gw, bad[i], NULL, &status, NULL);
        assert_int_equal(status, 404);
        assert_string_equal(json_string_value(json_object_get(doc, "type")), "urn:streamgate:problem:unknown-request");
        json_decref(doc);
    }
    id[5] = id[5] == 'A' ? 'B' : 'A'; /* one character changed: the MAC fails */
    int status;
    json_t *doc = get_status(&gw, id, NULL, &status, NULL);
    assert_int_equal(status, 404);
    json_decref(doc);
}

static void test_completed_request_survives_restart(void **state)
{
    sg_test_response_t res;
    post("Prefer: respond-async\r\n", "{\"body\":{\"kept\":true}}", &res);
    char id[64];
    assert_pending_202(&res, id);
    sg_test_response_free(&res);
    int status;
    json_t *doc = get_status(&gw, id, "Prefer: wait=5\r\n", &status, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "done");
    json_decref(doc);

    /* the worker is tied to the old embedded cluster: stop it, restart the gateway */
    sg_test_worker_stop(worker);
    assert_int_equal(sg_test_gateway_restart(&gw), 0);
    worker = sg_test_worker_start(gw.bootstrap, "rr.requests", 2);
    assert_non_null(worker);

    doc = get_status(&gw, id, NULL, &status, NULL);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "done");
    assert_true(json_is_true(json_object_get(json_object_get(json_object_get(doc, "response"), "body"), "kept")));
    json_decref(doc);
}

static void test_status_expires_after_retention(void **state)
{
    sg_test_proc_t small;
    assert_int_equal(sg_test_gateway_start(&small, "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\n"
                                                   "requests: {retention: 1s}\n"
                                                   "topics: [{name: e.requests}, {name: e.replies}]\n"
                                                   "routes:\n  - {name: e, method: POST, path: /e, topic: e.requests,\n"
                                                   "     reply: {topic: e.replies, timeout: 1s}}\n"),
                     0);
    /* the worker answers after 1.5 s, when the request is past its 1 s retention */
    sg_test_worker_t *late = sg_test_worker_start(small.bootstrap, "e.requests", 1);
    assert_non_null(late);
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&small, "POST", "/e", "Content-Type: application/json\r\nPrefer: respond-async\r\n",
                                  "{\"delay_ms\":1500}", 17, &res),
                     0);
    char id[64];
    assert_pending_202(&res, id);
    sg_test_response_free(&res);
    int status;
    json_t *doc = get_status(&small, id, NULL, &status, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "pending");
    json_decref(doc);
    sg_test_sleep_ms(1200);
    doc = get_status(&small, id, NULL, &status, NULL);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "expired");
    json_decref(doc);
    /* the late reply is dropped (not recorded: the request stays expired) and counted */
    for (int i = 0; i < 100 && metric(&small, "streamgate_replies_dropped_total") == 0; ++i)
        sg_test_sleep_ms(20);
    assert_int_equal(metric(&small, "streamgate_replies_dropped_total"), 1);
    doc = get_status(&small, id, NULL, &status, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "expired");
    json_decref(doc);
    sg_test_worker_stop(late);
    assert_int_equal(sg_test_proc_stop(&small), 0);
}

static void test_python_worker(void **state)
{
    /* kafka-python, an independent client, answers by the header contract */
    char script[1024];
    snprintf(script, sizeof(script), "%s/tests/integration/py_worker.py",
             getenv("SG_SOURCE_ROOT") ? getenv("SG_SOURCE_ROOT") : ".");
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl("/usr/bin/python3", "python3", script, gw.bootstrap, "py.requests", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[64] = "";
    FILE *fp = fdopen(out[0], "r");
    assert_non_null(fgets(line, sizeof(line), fp)); /* blocks until the worker is reading */
    assert_string_equal(line, "ready\n");

    sg_test_response_t res;
    const char body[] = "{\"from\":\"c\"}";
    assert_int_equal(sg_test_post_json(&gw, "/py", NULL, body, &res), 0);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    fclose(fp);
    assert_int_equal(res.status, 201);
    json_t *doc = json_loads(res.body, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "worker")), "kafka-python");
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "echo"), "from")), "c");
    json_decref(doc);
    sg_test_response_free(&res);
}

typedef struct {
    const char *key;
    const char *body;
    int status;
    char replayed[16];
    char body_out[256];
} idem_call_t;

static void *idem_post(void *arg)
{
    idem_call_t *call = arg;
    char headers[256];
    snprintf(headers, sizeof(headers), "Idempotency-Key: %s\r\n", call->key);
    sg_test_response_t res;
    if (sg_test_post_json(&gw, "/orders", headers, call->body, &res) == 0) {
        call->status = res.status;
        if (sg_test_header(&res, "idempotent-replayed", call->replayed, sizeof(call->replayed)) == NULL)
            call->replayed[0] = '\0';
        snprintf(call->body_out, sizeof(call->body_out), "%s", res.body);
        sg_test_response_free(&res);
    }
    return NULL;
}

static void test_idempotency_key_with_replies(void **state)
{
    int64_t before = sg_test_topic_count(gw.bootstrap, "rr.requests");
    const char body[] = "{\"delay_ms\":700,\"status\":\"201\",\"body\":{\"charged\":1}}";
    /* two at once: exactly one goes to Kafka, the other is told it is in flight */
    idem_call_t a = {.key = "pay-1", .body = body}, b = {.key = "pay-1", .body = body};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, idem_post, &a);
    pthread_create(&tb, NULL, idem_post, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    idem_call_t *winner = a.status == 201 ? &a : &b, *loser = a.status == 201 ? &b : &a;
    assert_int_equal(winner->status, 201);
    assert_string_equal(winner->body_out, "{\"charged\":1}");
    assert_int_equal(loser->status, 409);
    assert_non_null(strstr(loser->body_out, "urn:streamgate:problem:idempotency-key-in-flight"));
    /* after the first completed: the same outcome, replayed, without producing again */
    idem_call_t c = {.key = "pay-1", .body = body};
    idem_post(&c);
    assert_int_equal(c.status, 201);
    assert_string_equal(c.body_out, "{\"charged\":1}");
    assert_string_equal(c.replayed, "true");
    idem_call_t d = {.key = "pay-1", .body = "{\"delay_ms\":1}"};
    idem_post(&d);
    assert_int_equal(d.status, 422);
    assert_int_equal(sg_test_topic_count(gw.bootstrap, "rr.requests"), before + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_reply_200),
        cmocka_unit_test(test_python_worker),
        cmocka_unit_test(test_route_header_names),
        cmocka_unit_test(test_pinned_reply_partition),
        cmocka_unit_test(test_mapped_status_content_type_and_allowed_headers),
        cmocka_unit_test(test_reply_after_timeout_is_202_with_location),
        cmocka_unit_test(test_prefer_wait_shortens_and_is_capped),
        cmocka_unit_test(test_respond_async),
        cmocka_unit_test(test_invalid_reply_status_is_502),
        cmocka_unit_test(test_forged_reply_is_ignored),
        cmocka_unit_test(test_many_concurrent_sync_requests),
        cmocka_unit_test(test_pending_limit_is_503),
        cmocka_unit_test(test_sigterm_answers_waiting_requests),
        cmocka_unit_test(test_idempotency_key_with_replies),
        cmocka_unit_test(test_status_pending_then_long_poll_done),
        cmocka_unit_test(test_status_after_sync_timeout),
        cmocka_unit_test(test_status_event_stream),
        cmocka_unit_test(test_status_of_forged_or_mangled_ids_is_404),
        cmocka_unit_test(test_status_expires_after_retention),
        cmocka_unit_test(test_completed_request_survives_restart),
    };
    return cmocka_run_group_tests_name("integration-reply", tests, setup, teardown);
}
