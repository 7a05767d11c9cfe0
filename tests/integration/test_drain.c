/*
 * SIGTERM answers every parked request (gateway/README.md, "Shutdown"): a request long-poll gets
 * the current state, a status event stream its final event, a table watch a properly ended
 * stream, a table read waiting for a Consistency-Token ahead of the view and a registry write
 * waiting for its record a 503 shutting-down with Retry-After. Each kind alone, then all at once;
 * every answer is complete (status line, whole body or terminated chunked stream, then a clean
 * close, no reset) and the gateway exits 0.
 *
 * The gateways run on a separate `streamgate cluster`, so the registry write can be made to wait
 * for good: the cluster is frozen (SIGSTOP) before the write and thawed only once every answer
 * has been read.
 *
 * The harness's client reads one request at a time to its end; these tests keep several open
 * across a SIGTERM, so they have their own small raw client (conn_*).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"
#include "sg_base.h"
#include "sg_token.h"

#define ANSWER_MS 10000 /* how long a parked request may take to be answered after SIGTERM */

static sg_test_proc_t cluster;

static const char gw_config[] = "listen: [\"127.0.0.1:0\"]\n"
                                "threads: 2\n"
                                "data_dir: @DIR@/data\n"
                                "kafka: {brokers: \"%s\"}\n"
                                "routes:\n"
                                "  - {name: ask, method: POST, path: /ask, topic: dr.requests, key: none,\n"
                                "     reply: {topic: dr.replies, timeout: 10s, max_timeout: 60s}}\n"
                                "  - {name: put-row, method: PUT, path: \"/rows/{id}\", topic: dr.rows, key: \"path:id\"}\n"
                                "tables: [{name: rows, topic: dr.rows}]\n";

/* --- a raw HTTP/1.1 client that keeps requests open ------------------------------------------ */

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
    int closed; /* the server closed cleanly (EOF) */
    int reset;  /* the connection was reset, or reading failed */
} conn_t;

/* Sends one request (Connection: close) on a new connection. Returns 0 or -1. */
static int conn_open(conn_t *c, const sg_test_proc_t *gw, const char *method, const char *path, const char *headers,
                     const char *body)
{
    memset(c, 0, sizeof(*c));
    c->cap = 65536;
    c->buf = calloc(1, c->cap);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gw->port)};
    inet_pton(AF_INET, gw->host, &sa.sin_addr);
    if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    char req[8192];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n%s", method, path, gw->host, gw->port,
                     headers != NULL ? headers : "");
    if (body != NULL)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    else
        n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    return send(c->fd, req, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

/* Reads what has arrived, waiting up to `wait_ms` for something. Returns 1 when bytes came, 0 on
 * timeout, -1 at the end (EOF or reset). */
static int conn_read_some(conn_t *c, int wait_ms)
{
    if (c->closed || c->reset)
        return -1;
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    if (poll(&pfd, 1, wait_ms) <= 0)
        return 0;
    if (c->len + 4096 >= c->cap)
        c->buf = realloc(c->buf, c->cap *= 2);
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
    if (n == 0) {
        c->closed = 1;
        return -1;
    }
    if (n < 0) {
        c->reset = 1; /* ECONNRESET and friends: the connection was cut */
        return -1;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    return 1;
}

/* Reads until `text` has arrived. Returns 0, or -1 at the end or after `wait_ms`. */
static int conn_wait_for(conn_t *c, const char *text, int wait_ms)
{
    for (int64_t deadline = sg_mono_ms() + wait_ms; strstr(c->buf, text) == NULL;) {
        int64_t left = deadline - sg_mono_ms();
        if (left <= 0 || conn_read_some(c, (int)left) < 0)
            return strstr(c->buf, text) != NULL ? 0 : -1;
    }
    return 0;
}

/* Reads until the server closes the connection or `wait_ms` passes. */
static void conn_read_to_close(conn_t *c, int wait_ms)
{
    for (int64_t deadline = sg_mono_ms() + wait_ms; !c->closed && !c->reset;) {
        int64_t left = deadline - sg_mono_ms();
        if (left <= 0)
            return;
        conn_read_some(c, (int)left);
    }
}

static void conn_close(conn_t *c)
{
    if (c->fd > 0)
        close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof(*c));
}

/* What arrived, judged: a complete answer has a status line, its whole body (Content-Length, or
 * a chunked body up to its terminating chunk) and a clean close. */
typedef struct {
    int status;
    int complete;
    char why[128]; /* when not complete */
    char *body;    /* de-chunked; owned */
    size_t body_len;
} answer_t;

/* The value of header `name` in the head (case-insensitive), in buf; NULL when absent. */
static const char *head_value(const char *head, size_t head_len, const char *name, char *buf, size_t buflen)
{
    size_t nlen = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL && line < head + head_len; line = strstr(line + 2, "\r\n")) {
        const char *start = line + 2;
        if (strncasecmp(start, name, nlen) == 0 && start[nlen] == ':') {
            const char *value = start + nlen + 1;
            while (*value == ' ')
                ++value;
            const char *eol = strstr(value, "\r\n");
            snprintf(buf, buflen, "%.*s", (int)(eol - value), value);
            return buf;
        }
    }
    return NULL;
}

static void judge(const conn_t *c, answer_t *a, char *head, size_t headlen)
{
    memset(a, 0, sizeof(*a));
    a->body = calloc(1, c->len + 1);
    const char *end = strstr(c->buf, "\r\n\r\n");
    if (c->len < 12 || memcmp(c->buf, "HTTP/1.1 ", 9) != 0 || end == NULL) {
        snprintf(a->why, sizeof(a->why), "no response head (%zu bytes, %s)", c->len, c->reset ? "reset" : "closed");
        return;
    }
    a->status = atoi(c->buf + 9);
    size_t head_len = (size_t)(end - c->buf) + 2;
    snprintf(head, headlen, "%.*s", (int)head_len, c->buf);
    const char *body = end + 4;
    size_t body_len = c->len - (size_t)(body - c->buf);
    char value[64];
    if (head_value(head, head_len, "content-length", value, sizeof(value)) != NULL) {
        size_t want = strtoul(value, NULL, 10);
        memcpy(a->body, body, body_len);
        a->body_len = body_len;
        if (body_len != want) {
            snprintf(a->why, sizeof(a->why), "body of %zu bytes, Content-Length %zu", body_len, want);
            return;
        }
    } else if (head_value(head, head_len, "transfer-encoding", value, sizeof(value)) != NULL) {
        const char *p = body, *stop = body + body_len;
        for (;;) {
            char *after;
            size_t n = strtoul(p, &after, 16);
            const char *crlf = strstr(p, "\r\n");
            if (after == p || crlf == NULL || crlf + 2 + n + 2 > stop) {
                snprintf(a->why, sizeof(a->why), "chunked body cut after %zu bytes", a->body_len);
                return;
            }
            if (n == 0)
                break; /* the terminating chunk */
            memcpy(a->body + a->body_len, crlf + 2, n);
            a->body_len += n;
            p = crlf + 2 + n + 2;
        }
    } else {
        memcpy(a->body, body, body_len);
        a->body_len = body_len;
    }
    if (c->reset || !c->closed) {
        snprintf(a->why, sizeof(a->why), "%s", c->reset ? "connection reset" : "connection not closed");
        return;
    }
    a->complete = 1;
}

/* --- the gateway and its parked requests -------------------------------------------------- */

static int setup(void **state)
{
    const char *args[] = {"--topic", "dr.requests:1", "--topic", "dr.replies:1", "--topic", "dr.rows:1",
                          "--topic", "_schemas:1",    NULL};
    return sg_test_cluster_start(&cluster, args);
}

static int teardown(void **state)
{
    kill(cluster.pid, SIGCONT);
    return sg_test_proc_stop(&cluster) == 0 ? 0 : -1;
}

/* A metric's value, or -1. */
static long metric(const sg_test_proc_t *gw, const char *name)
{
    sg_test_response_t res;
    if (sg_test_http(gw, "GET", "/metrics", NULL, NULL, 0, &res) != 0)
        return -1;
    long value = -1;
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "\n%s ", name);
    const char *at = strstr(res.body, prefix);
    if (at != NULL)
        value = strtol(at + strlen(prefix), NULL, 10);
    sg_test_response_free(&res);
    return value;
}

/* Waits until metric `name` is at least `want`. Returns 0, or -1 after 10 s. */
static int metric_reaches(const sg_test_proc_t *gw, const char *name, long want)
{
    for (int64_t deadline = sg_mono_ms() + 10000; sg_mono_ms() < deadline; sg_sleep_ms(10))
        if (metric(gw, name) >= want)
            return 0;
    return -1;
}

static void start_gateway(sg_test_proc_t *gw)
{
    char config[4096];
    snprintf(config, sizeof(config), gw_config, cluster.bootstrap);
    assert_int_equal(sg_test_gateway_start(gw, config), 0);
    /* Without route schemas /readyz does not cover the registry: wait until it serves. */
    for (int i = 0;; ++i) {
        sg_test_response_t res;
        assert_int_equal(sg_test_http(gw, "GET", "/registry/subjects", NULL, NULL, 0, &res), 0);
        int status = res.status;
        sg_test_response_free(&res);
        if (status == 200)
            break;
        assert_true(i < 1000);
        sg_sleep_ms(10);
    }
}

/* A request the gateway considers pending for good (no worker answers dr.requests): its id. */
static void pending_request(const sg_test_proc_t *gw, char *location, size_t len)
{
    sg_test_response_t res;
    assert_int_equal(sg_test_http(gw, "POST", "/ask", "Content-Type: application/json\r\nPrefer: respond-async\r\n", "{}", 2, &res),
                     0);
    assert_int_equal(res.status, 202);
    assert_non_null(sg_test_header(&res, "location", location, len));
    sg_test_response_free(&res);
}

static void park_long_poll(const sg_test_proc_t *gw, conn_t *c, const char *location)
{
    long before = metric(gw, "streamgate_status_watchers");
    assert_int_equal(conn_open(c, gw, "GET", location, "Prefer: wait=30\r\n", NULL), 0);
    assert_int_equal(metric_reaches(gw, "streamgate_status_watchers", before + 1), 0);
    assert_int_equal(c->len, 0); /* parked: nothing answered yet */
}

static void park_status_stream(const sg_test_proc_t *gw, conn_t *c, const char *location)
{
    assert_int_equal(conn_open(c, gw, "GET", location, "Accept: text/event-stream\r\n", NULL), 0);
    assert_int_equal(conn_wait_for(c, "event: pending\ndata: ", 10000), 0);
    assert_int_equal(conn_wait_for(c, "}\n\n", 10000), 0);
}

static void park_table_watch(const sg_test_proc_t *gw, conn_t *c)
{
    assert_int_equal(conn_open(c, gw, "GET", "/tables/rows/watched", "Accept: text/event-stream\r\n", NULL), 0);
    assert_int_equal(conn_wait_for(c, "event: delete\n", 10000), 0); /* the row as it is: absent */
    assert_int_equal(conn_wait_for(c, "data: null\n\n", 10000), 0);
}

static void park_token_wait(const sg_test_proc_t *gw, conn_t *c)
{
    /* A token a million records ahead of the view: the read waits for it (Prefer: wait=30). */
    char token[512], headers[1024];
    assert_true(sg_token_encode_one("dr.rows", 0, 1000000, 0, token, sizeof(token)) > 0);
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\nPrefer: wait=30\r\n", token);
    long before = metric(gw, "streamgate_table_waiters");
    assert_int_equal(conn_open(c, gw, "GET", "/tables/rows/ahead", headers, NULL), 0);
    assert_int_equal(metric_reaches(gw, "streamgate_table_waiters", before + 1), 0);
    assert_int_equal(c->len, 0);
}

/* Freezes the cluster, then registers a new schema: the registry cannot get its record
 * acknowledged, so the write stays parked. The caller thaws the cluster. */
static void park_registry_write(const sg_test_proc_t *gw, conn_t *c, const char *subject)
{
    assert_int_equal(sg_test_freeze(cluster.pid), 0);
    char path[256];
    snprintf(path, sizeof(path), "/registry/subjects/%s/versions", subject);
    static const char body[] = "{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"Drained\\\",\\\"fields\\\":"
                               "[{\\\"name\\\":\\\"a\\\",\\\"type\\\":\\\"int\\\"}]}\"}";
    assert_int_equal(conn_open(c, gw, "POST", path, "Content-Type: application/vnd.schemaregistry.v1+json\r\n", body), 0);
    conn_read_some(c, 500); /* time to reach the registry thread; nothing may come back */
    assert_int_equal(c->len, 0);
}

/* SIGTERM, then every connection read to its end (the cluster still frozen if it was). */
static void terminate_and_read(sg_test_proc_t *gw, conn_t *conns[], size_t n)
{
    assert_int_equal(kill(gw->pid, SIGTERM), 0);
    int64_t deadline = sg_mono_ms() + ANSWER_MS;
    for (size_t i = 0; i < n; ++i) {
        int64_t left = deadline - sg_mono_ms();
        conn_read_to_close(conns[i], left > 0 ? (int)left : 0);
    }
}

static const char *problem_type(const answer_t *a, char *buf, size_t len)
{
    json_t *doc = json_loadb(a->body, a->body_len, 0, NULL);
    snprintf(buf, len, "%s",
             doc != NULL && json_string_value(json_object_get(doc, "type")) != NULL
                 ? json_string_value(json_object_get(doc, "type"))
                 : "(none)");
    json_decref(doc);
    return buf;
}

static size_t count(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *at = strstr(text, what); at != NULL; at = strstr(at + 1, what))
        ++n;
    return n;
}

/* --- checks, one per kind ------------------------------------------------------------------ */

/* Judges c's answer, which must be complete and have `status`; the caller frees a->body. */
static void expect_answer(const char *kind, const conn_t *c, int status, answer_t *a, char *head, size_t headlen)
{
    judge(c, a, head, headlen);
    if (!a->complete)
        fail_msg("%s: not a complete answer: %s", kind, a->why);
    assert_int_equal(a->status, status);
}

static void check_long_poll(const conn_t *c, const char *location)
{
    answer_t a;
    char head[4096];
    expect_answer("long-poll", c, 200, &a, head, sizeof(head));
    json_t *doc = json_loadb(a.body, a.body_len, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "pending");
    assert_string_equal(json_string_value(json_object_get(doc, "id")), location + strlen("/requests/"));
    json_decref(doc);
    free(a.body);
}

static void check_status_stream(const conn_t *c)
{
    answer_t a;
    char head[4096];
    expect_answer("status stream", c, 200, &a, head, sizeof(head));
    /* the state when it opened, and the state when the gateway stopped, as its last event */
    assert_int_equal(count(a.body, "event: pending\ndata: {"), 2);
    assert_true(a.body_len > 3 && memcmp(a.body + a.body_len - 3, "}\n\n", 3) == 0);
    free(a.body);
}

static void check_table_watch(const conn_t *c)
{
    answer_t a;
    char head[4096];
    expect_answer("table watch", c, 200, &a, head, sizeof(head));
    assert_int_equal(count(a.body, "event: delete\n"), 1);
    free(a.body);
}

static void check_shutting_down(const char *kind, const conn_t *c, int with_token)
{
    answer_t a;
    char head[4096], value[4096], type[128];
    expect_answer(kind, c, 503, &a, head, sizeof(head));
    assert_string_equal(problem_type(&a, type, sizeof(type)), "urn:streamgate:problem:shutting-down");
    assert_non_null(head_value(head, strlen(head), "retry-after", value, sizeof(value)));
    if (with_token) /* the view's own position: how far it had got */
        assert_non_null(head_value(head, strlen(head), "consistency-token", value, sizeof(value)));
    free(a.body);
}

/* --- the tests ------------------------------------------------------------------------------- */

typedef enum { LONG_POLL, STATUS_STREAM, TABLE_WATCH, TOKEN_WAIT, REGISTRY_WRITE, N_KINDS } kind_t;

/* Parks one request of `kind` on c (the registry write last: it freezes the cluster). */
static void park(kind_t kind, const sg_test_proc_t *gw, conn_t *c, const char *location, const char *subject)
{
    switch (kind) {
    case LONG_POLL: park_long_poll(gw, c, location); break;
    case STATUS_STREAM: park_status_stream(gw, c, location); break;
    case TABLE_WATCH: park_table_watch(gw, c); break;
    case TOKEN_WAIT: park_token_wait(gw, c); break;
    case REGISTRY_WRITE: park_registry_write(gw, c, subject); break;
    case N_KINDS: break;
    }
}

static void check(kind_t kind, const conn_t *c, const char *location)
{
    switch (kind) {
    case LONG_POLL: check_long_poll(c, location); break;
    case STATUS_STREAM: check_status_stream(c); break;
    case TABLE_WATCH: check_table_watch(c); break;
    case TOKEN_WAIT: check_shutting_down("token wait", c, 1); break;
    case REGISTRY_WRITE: check_shutting_down("registry write", c, 0); break;
    case N_KINDS: break;
    }
}

/* Parks one request of each kind in [first, last], SIGTERMs the gateway, reads every answer,
 * thaws the cluster, then checks the answers and the gateway's exit. */
static void drain(kind_t first, kind_t last, const char *subject)
{
    sg_test_proc_t gw;
    start_gateway(&gw);
    char location[128] = "";
    if (first <= STATUS_STREAM)
        pending_request(&gw, location, sizeof(location));
    conn_t conns[N_KINDS];
    conn_t *open[N_KINDS];
    size_t n = 0;
    for (kind_t kind = first; kind <= last; ++kind) {
        open[n] = &conns[n];
        park(kind, &gw, open[n++], location, subject);
    }
    terminate_and_read(&gw, open, n);
    kill(cluster.pid, SIGCONT); /* before any assertion: the other tests need the cluster */
    for (kind_t kind = first; kind <= last; ++kind)
        check(kind, &conns[kind - first], location);
    for (size_t i = 0; i < n; ++i)
        conn_close(open[i]);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
}

static void test_long_poll(void **state)
{
    drain(LONG_POLL, LONG_POLL, NULL);
}

static void test_status_stream(void **state)
{
    drain(STATUS_STREAM, STATUS_STREAM, NULL);
}

static void test_table_watch(void **state)
{
    drain(TABLE_WATCH, TABLE_WATCH, NULL);
}

static void test_token_wait(void **state)
{
    drain(TOKEN_WAIT, TOKEN_WAIT, NULL);
}

static void test_registry_write(void **state)
{
    drain(REGISTRY_WRITE, REGISTRY_WRITE, "drain-one-value");
}

static void test_all_at_once(void **state)
{
    drain(LONG_POLL, REGISTRY_WRITE, "drain-all-value");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_poll),  cmocka_unit_test(test_status_stream),  cmocka_unit_test(test_table_watch),
        cmocka_unit_test(test_token_wait), cmocka_unit_test(test_registry_write), cmocka_unit_test(test_all_at_once),
    };
    return cmocka_run_group_tests_name("integration-drain", tests, setup, teardown);
}
