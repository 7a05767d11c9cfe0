/*
 * Limits that hold while Kafka is slow or gone (issue 11: 7, 8), against a cluster of its own
 * (`streamgate cluster`) that the tests stop (SIGSTOP) and continue:
 * - limits.pending counts every request waiting on Kafka, commands without a reply included, and
 *   is exact across loops; HTTP/2 streams reset right after their request count too (rapid
 *   reset), so they are not all produced;
 * - limits.inflight_bytes bounds the event bytes waiting for the broker's acknowledgement;
 * - /readyz follows the brokers: 503 naming why while none answers, 200 again once they do.
 */
#include <setjmp.h>
#include <signal.h>
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
#include "wire.h"

#define PENDING 5
#define CONCURRENT 8

static sg_test_proc_t cluster, gw;
static int frozen;

static int setup(void **state)
{
    const char *args[] = {"--topic", "ov.commands:2", "--topic", "ov.replies:1", NULL};
    if (sg_test_cluster_start(&cluster, args) != 0)
        return -1;
    char config[2048];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\n"
             "threads: 2\n"
             "data_dir: @DIR@/data\n"
             "kafka: {brokers: \"%s\", produce_timeout: 60s}\n"
             "routes:\n"
             "  - {name: put, method: POST, path: /things, topic: ov.commands, key: none}\n"
             "  - {name: ask, method: POST, path: /ask, topic: ov.commands, key: none, reply: {topic: ov.replies, "
             "timeout: 30s}}\n"
             "limits: {pending: %d, body_bytes: 64KiB, inflight_bytes: 128KiB}\n",
             cluster.bootstrap, PENDING);
    return sg_test_gateway_start(&gw, config);
}

static void thaw(void)
{
    if (frozen) {
        kill(cluster.pid, SIGCONT);
        frozen = 0;
    }
}

static void freeze(void)
{
    assert_int_equal(sg_test_freeze(cluster.pid), 0);
    frozen = 1;
}

static int teardown(void **state)
{
    thaw();
    int rc = sg_test_proc_stop(&gw);
    sg_test_proc_stop(&cluster);
    return rc == 0 ? 0 : -1;
}

/* Sends a POST of `len` bytes of JSON on a new connection; returns the connection. */
static int send_post(const char *path, const char *extra_headers, size_t len)
{
    char *body = malloc(len + 1);
    assert_non_null(body);
    memset(body, ' ', len);
    memcpy(body, "{\"a\":1}", 7);
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     path, len, extra_headers != NULL ? extra_headers : "");
    int fd = wire_connect(&gw, 0);
    assert_true(fd >= 0);
    assert_int_equal(wire_send(fd, head, (size_t)n), 0);
    assert_int_equal(wire_send(fd, body, len), 0);
    free(body);
    return fd;
}

/* The status of the response on fd if it arrives within timeout_ms (the problem type, if any,
 * in type), else 0. */
static int status_within(int fd, int timeout_ms, char *type, size_t typelen)
{
    char buf[8192];
    int closed;
    wire_read(fd, timeout_ms, buf, sizeof(buf), &closed);
    wire_problem_type(buf, type, typelen);
    return wire_status(buf);
}

static long long metric(const char *name)
{
    long long value = wire_metric(&gw, name);
    assert_true(value >= 0);
    return value;
}

/* Sends CONCURRENT requests at once; returns how many were refused at once with `refused_type`,
 * and leaves the others' connections in waiting[] (-1 for the refused). */
static int send_concurrent(const char *path, const char *headers, const char *refused_type, int waiting[CONCURRENT])
{
    for (int i = 0; i < CONCURRENT; ++i)
        waiting[i] = send_post(path, headers, 16);
    int refused = 0;
    int64_t until = wire_mono_ms() + 1500; /* refusals come at once; the others wait much longer */
    for (int i = 0; i < CONCURRENT; ++i) {
        char type[64];
        int64_t left = until - wire_mono_ms();
        int status = status_within(waiting[i], left > 0 ? (int)left : 0, type, sizeof(type));
        if (status != 0) {
            if (status != 503 || strcmp(type, refused_type) != 0)
                fprintf(stderr, "request %d: %d %s\n", i, status, type);
            assert_int_equal(status, 503);
            assert_string_equal(type, refused_type);
            ++refused;
            close(waiting[i]);
            waiting[i] = -1;
        }
    }
    return refused;
}

/* Each request send_concurrent left waiting is answered 202 once Kafka lets it. */
static void all_accepted(int waiting[CONCURRENT])
{
    for (int i = 0; i < CONCURRENT; ++i) {
        if (waiting[i] < 0)
            continue;
        char type[64];
        assert_int_equal(status_within(waiting[i], 30000, type, sizeof(type)), 202);
        close(waiting[i]);
    }
}

static void test_pending_counts_commands_without_reply(void **state)
{
    int64_t before = sg_test_topic_count(cluster.bootstrap, "ov.commands");
    freeze();
    int waiting[CONCURRENT];
    int refused = send_concurrent("/things", NULL, "too-many-pending", waiting);
    assert_int_equal(refused, CONCURRENT - PENDING);
    assert_int_equal(metric("streamgate_pending_requests"), PENDING);
    thaw();
    all_accepted(waiting);
    assert_int_equal(sg_test_topic_count(cluster.bootstrap, "ov.commands"), before + PENDING);
    for (int i = 0; i < 100 && metric("streamgate_pending_requests") != 0; ++i)
        wire_pause_ms(50);
    assert_int_equal(metric("streamgate_pending_requests"), 0);
}

static void test_pending_is_exact_for_reply_waits(void **state)
{
    /* No worker answers: each admitted request waits for its reply (Prefer: wait=5), on whichever
     * loop the kernel gave its connection; one limit for both loops. */
    int waiting[CONCURRENT];
    int refused = send_concurrent("/ask", "Prefer: wait=5\r\n", "too-many-pending", waiting);
    assert_int_equal(refused, CONCURRENT - PENDING);
    all_accepted(waiting);
}

static void test_inflight_bytes_bound(void **state)
{
    freeze();
    int first = send_post("/things", NULL, 60 * 1024), second = send_post("/things", NULL, 60 * 1024);
    char type[64];
    assert_int_equal(status_within(first, 1000, type, sizeof(type)), 0); /* both wait for the broker */
    assert_int_equal(status_within(second, 200, type, sizeof(type)), 0);
    int third = send_post("/things", NULL, 60 * 1024);
    assert_int_equal(status_within(third, 5000, type, sizeof(type)), 503);
    assert_string_equal(type, "too-many-pending-bytes");
    close(third);
    assert_true(metric("streamgate_pending_bytes") >= 2 * 60 * 1024);
    thaw();
    assert_int_equal(status_within(first, 30000, type, sizeof(type)), 202);
    assert_int_equal(status_within(second, 30000, type, sizeof(type)), 202);
    close(first);
    close(second);
}

/* A request waiting for its reply holds nothing of its event once the broker has it (issue 13,
 * memory): its bytes leave limits.inflight_bytes with the delivery report, so two waits of 60 KiB
 * each leave room for a third under the 128 KiB bound while both still wait. */
static void test_reply_wait_releases_its_event(void **state)
{
    int waiting[3];
    for (int i = 0; i < 2; ++i)
        waiting[i] = send_post("/ask", "Prefer: wait=20\r\n", 60 * 1024);
    for (int i = 0; i < 200 && (metric("streamgate_inflight_requests") != 2 || metric("streamgate_pending_bytes") != 0); ++i)
        wire_pause_ms(50);
    assert_int_equal(metric("streamgate_inflight_requests"), 2);
    assert_int_equal(metric("streamgate_pending_bytes"), 0);
    waiting[2] = send_post("/ask", "Prefer: wait=20\r\n", 60 * 1024);
    char type[64];
    assert_int_equal(status_within(waiting[2], 1000, type, sizeof(type)), 0); /* waits, not 503 too-many-pending-bytes */
    for (int i = 0; i < 3; ++i) {
        assert_int_equal(status_within(waiting[i], 0, type, sizeof(type)), 0);
        close(waiting[i]);
    }
    /* The clients left: their waits end and free their slots for the next tests. */
    for (int i = 0; i < 200 && metric("streamgate_pending_requests") != 0; ++i)
        wire_pause_ms(50);
    assert_int_equal(metric("streamgate_pending_requests"), 0);
}

/* --- HTTP/2 rapid reset ------------------------------------------------------------------------- */

static void test_rapid_reset_streams_are_limited(void **state)
{
    int64_t before = sg_test_topic_count(cluster.bootstrap, "ov.commands");
    freeze();
    int fd = wire_connect(&gw, 0);
    assert_true(fd >= 0);
    static uint8_t out[1 << 16];
    size_t n = 0;
    memcpy(out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    n += 24;
    n += wire_h2_frame(out + n, 0x4, 0, 0, NULL, 0); /* SETTINGS */
    uint8_t block[256];
    size_t block_len = 0;
    block_len += wire_hpack_literal(block + block_len, ":method", "POST");
    block_len += wire_hpack_literal(block + block_len, ":scheme", "http");
    block_len += wire_hpack_literal(block + block_len, ":path", "/things");
    block_len += wire_hpack_literal(block + block_len, ":authority", "x");
    block_len += wire_hpack_literal(block + block_len, "content-type", "application/json");
    static const uint8_t cancel[4] = {0, 0, 0, 0x8};
    for (uint32_t i = 0; i < 50; ++i) {
        uint32_t stream = 1 + 2 * i;
        n += wire_h2_frame(out + n, 0x1, 0x4, stream, block, block_len);       /* HEADERS, END_HEADERS */
        n += wire_h2_frame(out + n, 0x0, 0x1, stream, "{\"a\":1}", 7);         /* DATA, END_STREAM */
        n += wire_h2_frame(out + n, 0x3, 0x0, stream, cancel, sizeof(cancel)); /* RST_STREAM CANCEL */
    }
    assert_int_equal(wire_send(fd, out, n), 0);
    wire_pause_ms(1500);
    assert_int_equal(metric("streamgate_pending_requests"), PENDING);
    close(fd);
    thaw();
    for (int i = 0; i < 200 && metric("streamgate_pending_requests") != 0; ++i)
        wire_pause_ms(50);
    /* Only the streams that got a pending slot were produced; the others were refused. */
    int64_t produced = sg_test_topic_count(cluster.bootstrap, "ov.commands") - before;
    if (produced != PENDING)
        fprintf(stderr, "%lld of 50 reset streams were produced\n", (long long)produced);
    assert_int_equal(produced, PENDING);
}

/* --- readiness ---------------------------------------------------------------------------------- */

/* Polls /readyz until it answers `status` (up to timeout_ms); returns the last answer's body. */
static char *readyz_until(int status, int timeout_ms)
{
    int64_t until = wire_mono_ms() + timeout_ms;
    for (;;) {
        sg_test_response_t res;
        assert_int_equal(sg_test_http(&gw, "GET", "/readyz", NULL, NULL, 0, &res), 0);
        if (res.status == status || wire_mono_ms() >= until) {
            if (res.status != status)
                fprintf(stderr, "/readyz stayed %d: %s\n", res.status, res.body);
            assert_int_equal(res.status, status);
            char *body = strdup(res.body);
            sg_test_response_free(&res);
            return body;
        }
        sg_test_response_free(&res);
        wire_pause_ms(200);
    }
}

static void test_readyz_follows_the_brokers(void **state)
{
    free(readyz_until(200, 1000));
    assert_int_equal(metric("streamgate_kafka_reachable"), 1);
    int64_t frozen_at = wire_mono_ms();
    freeze();
    /* Not before the hysteresis has passed (5 s since the last answer, which came at most a probe
     * interval and a probe timeout, 2 s, before the freeze), and then with the reason. */
    char *body = readyz_until(503, 20000);
    assert_true(wire_mono_ms() - frozen_at >= 2500);
    json_t *doc = json_loads(body, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "type")), "urn:streamgate:problem:not-ready");
    assert_non_null(strstr(json_string_value(json_object_get(doc, "detail")), "no Kafka broker has answered"));
    json_decref(doc);
    free(body);
    assert_int_equal(metric("streamgate_kafka_reachable"), 0);
    thaw();
    free(readyz_until(200, 20000));
    assert_int_equal(metric("streamgate_kafka_reachable"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_counts_commands_without_reply),
        cmocka_unit_test(test_pending_is_exact_for_reply_waits),
        cmocka_unit_test(test_inflight_bytes_bound),
        cmocka_unit_test(test_reply_wait_releases_its_event),
        cmocka_unit_test(test_rapid_reset_streams_are_limited),
        cmocka_unit_test(test_readyz_follows_the_brokers),
    };
    return cmocka_run_group_tests_name("overload", tests, setup, teardown);
}
