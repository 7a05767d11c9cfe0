/*
 * Client connections (issue 11: 5, 6), each group on a gateway of its own:
 * - slow-clients: a client that stops reading (a tiny receive buffer, nothing read) is cut off
 *   after limits.write_timeout, for a plain answer and for a watch, and so is an HTTP/2 client
 *   that grants its stream no flow-control window; HTTP/1 clients that close
 *   while their long-poll or status stream waits are noticed at once, not at the wait's end, and
 *   a pipelined request behind a parked one is still answered;
 * - queue-cap: the same client is cut off by limits.queued_bytes long before the write timeout;
 * - connection-limit: at limits.connections more clients wait in the backlog (accepting pauses,
 *   it does not spin), a few more get /healthz answered and 503 too-many-connections for the
 *   rest, and a closed connection lets the next one in;
 * - http10-watch: an HTTP/1.0 watch (a stream that ends with its connection) ends cleanly.
 */
#include <errno.h>
#include <poll.h>
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
#include "wire.h"

#define BIG_ROW_BYTES (5 * 1024 * 1024)

static sg_test_proc_t gw;

static const char base_config[] = "listen: [\"127.0.0.1:0\"]\n"
                                  "threads: %d\n"
                                  "data_dir: @DIR@/data\n"
                                  "topics:\n"
                                  "  - {name: conn.rows, partitions: 1}\n"
                                  "  - {name: conn.commands, partitions: 1}\n"
                                  "  - {name: conn.replies, partitions: 1}\n"
                                  "routes:\n"
                                  "  - {name: put-row, method: PUT, path: \"/rows/{id}\", topic: conn.rows, key: \"path:id\"}\n"
                                  "  - {name: ask, method: POST, path: /ask, topic: conn.commands, key: none, reply: {topic: "
                                  "conn.replies, timeout: 30s}}\n"
                                  "tables: [{name: rows, topic: conn.rows}]\n"
                                  "limits: {body_bytes: 8MiB, %s}\n";

static int start(int threads, const char *limits)
{
    char config[2048];
    snprintf(config, sizeof(config), base_config, threads, limits);
    return sg_test_gateway_start(&gw, config);
}

static int teardown(void **state)
{
    return sg_test_proc_stop(&gw) == 0 ? 0 : -1;
}

static int connect_gateway(int rcvbuf)
{
    int fd = wire_connect(&gw, rcvbuf);
    assert_true(fd >= 0);
    return fd;
}

static void send_text(int fd, const char *text)
{
    assert_int_equal(wire_send(fd, text, strlen(text)), 0);
}

/* A metric; retried for a while, since right after a test at the connection limit /metrics may
 * still land on a connection beyond it (answered 503 too-many-connections). */
static long long metric(const char *name)
{
    long long value = wire_metric(&gw, name);
    for (int i = 0; i < 50 && value < 0; ++i) {
        wire_pause_ms(100);
        value = wire_metric(&gw, name);
    }
    assert_true(value >= 0);
    return value;
}

/* Waits until metric `name` reaches `value` (up to timeout_ms); returns how long it took. */
static int64_t metric_reaches(const char *name, long long value, int timeout_ms)
{
    int64_t start_ms = wire_mono_ms();
    long long now = metric(name);
    while (now < value && wire_mono_ms() - start_ms < timeout_ms) {
        wire_pause_ms(100);
        now = metric(name);
    }
    if (now < value)
        fail_msg("%s stayed %lld (wanted %lld) for %d ms", name, now, value, timeout_ms);
    return wire_mono_ms() - start_ms;
}

static void metric_falls_to(const char *name, long long value, int timeout_ms)
{
    int64_t start_ms = wire_mono_ms();
    long long now = metric(name);
    while (now > value && wire_mono_ms() - start_ms < timeout_ms) {
        wire_pause_ms(100);
        now = metric(name);
    }
    if (now > value)
        fail_msg("%s stayed %lld (wanted %lld) for %d ms", name, now, value, timeout_ms);
}

/* Reads whatever the gateway sent until the connection ends (or 10 s); returns the byte count. */
static size_t drain(int fd)
{
    static char buf[65536];
    size_t total = 0;
    int64_t until = wire_mono_ms() + 10000;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = until - wire_mono_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            fail_msg("the connection was still open after reading %zu bytes", total);
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return total;
        total += (size_t)n;
    }
}

/* --- slow clients ------------------------------------------------------------------------------- */

static int setup_slow(void **state)
{
    if (start(2, "write_timeout: 2s, queued_bytes: 1GiB") != 0)
        return -1;
    /* One row too large for the kernel buffers between the gateway and a client that does not
     * read: its answer stalls. */
    char *body = malloc(BIG_ROW_BYTES + 16);
    memset(body, 'x', BIG_ROW_BYTES + 16);
    memcpy(body, "{\"v\":\"", 6);
    memcpy(body + BIG_ROW_BYTES - 2, "\"}", 2);
    sg_test_response_t res;
    int rc = sg_test_http(&gw, "PUT", "/rows/big", "Content-Type: application/json\r\n", body, BIG_ROW_BYTES, &res);
    free(body);
    if (rc != 0 || res.status != 202)
        return -1;
    char token[512];
    if (sg_test_header(&res, "consistency-token", token, sizeof(token)) == NULL)
        return -1;
    sg_test_response_free(&res);
    char headers[600];
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\n", token);
    rc = sg_test_http(&gw, "GET", "/tables/rows/big", headers, NULL, 0, &res);
    int ok = rc == 0 && res.status == 200 && res.body_len == BIG_ROW_BYTES;
    sg_test_response_free(&res);
    return ok ? 0 : -1;
}

static void assert_cut_off(const char *request, int min_ms, int max_ms)
{
    long long before = metric("streamgate_slow_clients_closed_total");
    int fd = connect_gateway(4096);
    send_text(fd, request);
    int64_t took = metric_reaches("streamgate_slow_clients_closed_total", before + 1, max_ms);
    if (took < min_ms)
        fail_msg("cut off after %lld ms, before %d ms", (long long)took, min_ms);
    /* The client, reading now, gets a part of the answer and then the end of the connection. */
    size_t got = drain(fd);
    assert_true(got < BIG_ROW_BYTES);
    close(fd);
}

static void test_unread_answer_cut_off_after_write_timeout(void **state)
{
    assert_cut_off("GET /tables/rows/big HTTP/1.1\r\nHost: x\r\n\r\n", 1500, 10000);
}

static void test_unread_watch_cut_off_after_write_timeout(void **state)
{
    assert_cut_off("GET /tables/rows/big HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n", 1500, 10000);
    metric_falls_to("streamgate_table_waiters", 0, 5000); /* the watch is gone with its connection */
}

static void test_stalled_http2_stream_cut_off(void **state)
{
    /* A client that grants no flow-control window: the watch's first event cannot leave, while the
     * connection itself has nothing to write (its sweep sees no stalled write). */
    long long before = metric("streamgate_slow_clients_closed_total");
    uint8_t out[1024], block[256];
    size_t n = 0, block_len = 0;
    memcpy(out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    n += 24;
    static const uint8_t no_window[6] = {0, 0x4, 0, 0, 0, 0}; /* SETTINGS_INITIAL_WINDOW_SIZE = 0 */
    n += wire_h2_frame(out + n, 0x4, 0, 0, no_window, sizeof(no_window));
    block_len += wire_hpack_literal(block + block_len, ":method", "GET");
    block_len += wire_hpack_literal(block + block_len, ":scheme", "http");
    block_len += wire_hpack_literal(block + block_len, ":path", "/tables/rows/big");
    block_len += wire_hpack_literal(block + block_len, ":authority", "x");
    block_len += wire_hpack_literal(block + block_len, "accept", "text/event-stream");
    n += wire_h2_frame(out + n, 0x1, 0x5, 1, block, block_len); /* HEADERS, END_HEADERS | END_STREAM */
    int fd = connect_gateway(0);
    assert_int_equal(wire_send(fd, out, n), 0);
    int64_t took = metric_reaches("streamgate_slow_clients_closed_total", before + 1, 10000);
    assert_true(took >= 1000);
    static char in[65536];
    int closed;
    wire_read(fd, 5000, in, sizeof(in), &closed);
    assert_true(closed);
    close(fd);
    metric_falls_to("streamgate_table_waiters", 0, 5000);
}

/* The path of a request that stays pending (no worker answers /ask). */
static void pending_request(char *location, size_t len)
{
    sg_test_response_t res;
    assert_int_equal(
        sg_test_http(&gw, "POST", "/ask", "Content-Type: application/json\r\nPrefer: respond-async\r\n", "{}", 2, &res), 0);
    assert_int_equal(res.status, 202);
    assert_non_null(sg_test_header(&res, "location", location, len));
    sg_test_response_free(&res);
}

static void test_clients_leaving_waits_are_noticed(void **state)
{
    char location[256], request[512];
    pending_request(location, sizeof(location));
    long long gone = metric("streamgate_clients_gone_total");
    /* Status streams: the first event comes, then the client closes. */
    for (int i = 0; i < 10; ++i) {
        int fd = connect_gateway(0);
        snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n", location);
        send_text(fd, request);
        char buf[1024];
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 5000), 1);
        assert_true(recv(fd, buf, sizeof(buf), 0) > 0);
        close(fd);
    }
    /* Long-polls: parked, then the client closes. */
    for (int i = 0; i < 10; ++i) {
        int fd = connect_gateway(0);
        snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: x\r\nPrefer: wait=50\r\n\r\n", location);
        send_text(fd, request);
        wire_pause_ms(50);
        close(fd);
    }
    /* Noticed within moments, not when the waits (a minute, 50 s) end. */
    metric_falls_to("streamgate_status_watchers", 0, 5000);
    metric_falls_to("streamgate_pending_requests", 1, 5000); /* the /ask itself still waits for its reply */
    assert_true(metric("streamgate_clients_gone_total") >= gone + 20);
}

static void test_pipelined_request_behind_a_parked_one(void **state)
{
    char location[256], request[1024];
    pending_request(location, sizeof(location));
    int fd = connect_gateway(0);
    snprintf(request, sizeof(request),
             "GET %s HTTP/1.1\r\nHost: x\r\nPrefer: wait=1\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             location);
    send_text(fd, request);
    static char buf[65536];
    int closed;
    wire_read(fd, 10000, buf, sizeof(buf), &closed);
    close(fd);
    const char *second = strstr(buf + 1, "HTTP/1.1 ");
    if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0 || second == NULL)
        fprintf(stderr, "got:\n%s\n", buf);
    assert_memory_equal(buf, "HTTP/1.1 200 ", 13);
    assert_non_null(strstr(buf, "\"state\":\"pending\""));
    assert_non_null(second);
    assert_memory_equal(second, "HTTP/1.1 200 ", 13);
    assert_non_null(strstr(second, "{\"status\":\"ok\"}"));
}

/* --- the queue cap ------------------------------------------------------------------------------ */

static int setup_queue(void **state)
{
    if (start(1, "write_timeout: 60s, queued_bytes: 1MiB") != 0)
        return -1;
    return 0;
}

static void test_unread_answer_cut_off_by_queued_bytes(void **state)
{
    char *body = malloc(BIG_ROW_BYTES);
    memset(body, 'y', BIG_ROW_BYTES);
    memcpy(body, "{\"v\":\"", 6);
    memcpy(body + BIG_ROW_BYTES - 2, "\"}", 2);
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gw, "PUT", "/rows/big", "Content-Type: application/json\r\n", body, BIG_ROW_BYTES, &res), 0);
    free(body);
    assert_int_equal(res.status, 202);
    char token[512], request[1024];
    assert_non_null(sg_test_header(&res, "consistency-token", token, sizeof(token)));
    sg_test_response_free(&res);
    snprintf(request, sizeof(request), "GET /tables/rows/big HTTP/1.1\r\nHost: x\r\nConsistency-Token: %s\r\n\r\n", token);
    /* Well before the 60 s write timeout. */
    assert_cut_off(request, 0, 10000);
}

/* --- the connection limit ----------------------------------------------------------------------- */

#define LIMIT 8
#define OVERFLOW 16

static int setup_limit(void **state)
{
    char limits[64];
    snprintf(limits, sizeof(limits), "connections: %d", LIMIT);
    return start(1, limits);
}

static long long cpu_ticks(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    const char *at = strrchr(text, ')');
    assert_non_null(at);
    long long utime = 0, stime = 0;
    /* after ") ": state(3) ... utime is field 14, stime 15 */
    assert_int_equal(sscanf(at + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &utime, &stime), 2);
    return utime + stime;
}

/* The status of the answer on fd (0: none in timeout_ms); its text in body, if not NULL. */
static int answer_status(int fd, int timeout_ms, char *body, size_t bodylen)
{
    char buf[4096];
    int closed;
    wire_read(fd, timeout_ms, buf, sizeof(buf), &closed);
    if (body != NULL)
        snprintf(body, bodylen, "%s", buf);
    return wire_status(buf);
}

static void test_connection_limit(void **state)
{
    int held[LIMIT + OVERFLOW + 8];
    size_t n_held = 0;
    /* The limit's worth of connections, each with a request head not yet complete. */
    for (int i = 0; i < LIMIT; ++i) {
        held[n_held] = connect_gateway(0);
        send_text(held[n_held++], "GET /healthz HTTP/1.1\r\n");
    }
    wire_pause_ms(300);
    /* Beyond it: a health probe is answered, anything else is 503, and the connection closes. */
    char text[4096];
    int fd = connect_gateway(0);
    send_text(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(answer_status(fd, 5000, text, sizeof(text)), 200);
    assert_non_null(strstr(text, "onnection: close"));
    close(fd);
    fd = connect_gateway(0);
    send_text(fd, "PUT /rows/a HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    assert_int_equal(answer_status(fd, 5000, text, sizeof(text)), 503);
    assert_non_null(strstr(text, "urn:streamgate:problem:too-many-connections"));
    assert_non_null(strstr(text, "\r\nretry-after: 1\r\n"));
    close(fd);
    /* Fill the few beyond the limit too; the rest wait in the backlog, and the loop, no longer
     * accepting, does not spin. */
    for (int i = 0; i < OVERFLOW + 8; ++i) {
        held[n_held] = connect_gateway(0);
        send_text(held[n_held++], "GET /healthz HTTP/1.1\r\n");
    }
    int waiting = connect_gateway(0);
    send_text(waiting, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(answer_status(waiting, 1000, NULL, 0), 0);
    long long ticks = cpu_ticks(gw.pid);
    wire_pause_ms(2000);
    long long used = cpu_ticks(gw.pid) - ticks;
    if (used > sysconf(_SC_CLK_TCK) / 2)
        fail_msg("the gateway used %lld ticks of CPU in 2 s while not accepting", used);
    /* A connection closing lets the waiting one in. */
    for (size_t i = 0; i < n_held; ++i)
        close(held[i]);
    assert_int_equal(answer_status(waiting, 5000, NULL, 0), 200);
    close(waiting);
    assert_true(metric("streamgate_accept_pauses_total") >= 1);
    assert_true(metric("streamgate_connections_refused_total") >= 1);
}

static void test_connection_limit_checked_at_start(void **state)
{
    /* More connections than RLIMIT_NOFILE can ever allow: the start fails, saying why. */
    char *path = sg_test_write_temp("config.yaml", "listen: [\"127.0.0.1:0\"]\n"
                                                   "data_dir: @DIR@/data\n"
                                                   "limits: {connections: 10000000}\n");
    assert_non_null(path);
    const char *args[] = {sg_test_binary(), path, NULL};
    char out[8192];
    int rc = sg_test_run(args, out, sizeof(out));
    sg_test_remove_temp(path);
    if (rc == 0 || strstr(out, "RLIMIT_NOFILE") == NULL)
        fprintf(stderr, "exit %d:\n%s\n", rc, out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "limits.connections (10000000) needs"));
    assert_non_null(strstr(out, "RLIMIT_NOFILE allows"));
}

/* --- an HTTP/1.0 watch ------------------------------------------------------------------------- */

static int setup_plain(void **state)
{
    return start(1, "write_timeout: 30s");
}

static void test_http10_watch_ends_cleanly(void **state)
{
    /* An HTTP/1.0 stream has no chunked framing: it ends with its connection, and ending it ended
     * the request at once, under the watch that was closing it (a double free at its 60 s end or
     * at shutdown, from any client). */
    int fd = connect_gateway(0);
    send_text(fd, "GET /tables/rows/k HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n");
    char text[4096];
    int closed;
    wire_read(fd, 2000, text, sizeof(text), &closed);
    assert_false(closed);
    assert_non_null(strstr(text, "event: delete"));
    assert_int_equal(sg_test_proc_stop(&gw), 0); /* drains the watch */
    wire_read(fd, 5000, text, sizeof(text), &closed);
    assert_true(closed);
    close(fd);
}

/* The test stops the gateway itself; this cleans up if it failed first. */
static int teardown_stopped(void **state)
{
    if (gw.pid > 0)
        sg_test_proc_stop(&gw);
    return 0;
}

int main(void)
{
    const struct CMUnitTest slow[] = {
        cmocka_unit_test(test_unread_answer_cut_off_after_write_timeout),
        cmocka_unit_test(test_unread_watch_cut_off_after_write_timeout),
        cmocka_unit_test(test_stalled_http2_stream_cut_off),
        cmocka_unit_test(test_clients_leaving_waits_are_noticed),
        cmocka_unit_test(test_pipelined_request_behind_a_parked_one),
    };
    const struct CMUnitTest queue[] = {
        cmocka_unit_test(test_unread_answer_cut_off_by_queued_bytes),
    };
    const struct CMUnitTest limit[] = {
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_connection_limit_checked_at_start),
    };
    const struct CMUnitTest http10[] = {
        cmocka_unit_test(test_http10_watch_ends_cleanly),
    };
    int failed = cmocka_run_group_tests_name("slow-clients", slow, setup_slow, teardown);
    failed += cmocka_run_group_tests_name("queue-cap", queue, setup_queue, teardown);
    failed += cmocka_run_group_tests_name("connection-limit", limit, setup_limit, teardown);
    failed += cmocka_run_group_tests_name("http10-watch", http10, setup_plain, teardown_stopped);
    return failed;
}
