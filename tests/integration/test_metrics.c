/*
 * /metrics: requests over every path (commands, request-reply, a status poll, a table read, a
 * watch, the registry, a 404, a static file), then `promtool check metrics` on the exposition and
 * the counters and histograms moved by exactly what was sent. Two event loops: every per-loop
 * counter is summed at scrape time.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"

static sg_test_proc_t gw;
static sg_test_worker_t *worker;

static const char config[] = "listen: [\"127.0.0.1:0\"]\n"
                             "threads: 2\n"
                             "data_dir: @DIR@/data\n"
                             "topics:\n"
                             "  - {name: m.things, partitions: 2}\n"
                             "  - {name: m.asks, partitions: 1}\n"
                             "  - {name: m.answers, partitions: 1}\n"
                             "routes:\n"
                             "  - {name: create-thing, method: POST, path: /things, topic: m.things, key: \"body:/id\"}\n"
                             "  - {name: ask, method: POST, path: /ask, topic: m.asks, reply: {topic: m.answers, timeout: 10s}}\n"
                             "tables: [{name: things, topic: m.things}]\n"
                             "queries: [{path: \"/things/{id}\", table: things, key: \"path:id\"}]\n"
                             "static: [{path: /, dir: @DIR@}]\n";

static int setup(void **state)
{
    if (sg_test_gateway_start(&gw, config) != 0)
        return -1;
    worker = sg_test_worker_start(gw.bootstrap, "m.asks", 1);
    return worker != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    sg_test_worker_stop(worker);
    return sg_test_stop_procs(&gw, NULL);
}

/* The exposition as {"name{labels}": value}; the raw text in *text (owned) when asked. */
static json_t *scrape(char **text)
{
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gw, "GET", "/metrics", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    char type[128];
    assert_string_equal(sg_test_header(&res, "content-type", type, sizeof(type)), "text/plain; version=0.0.4");
    json_t *samples = json_object();
    char *copy = strdup(res.body);
    for (char *line = strtok(copy, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        char *space = strrchr(line, ' ');
        assert_non_null(space);
        *space = '\0';
        json_object_set_new(samples, line, json_real(strtod(space + 1, NULL)));
    }
    free(copy);
    if (text != NULL)
        *text = strdup(res.body);
    sg_test_response_free(&res);
    return samples;
}

static double sample(json_t *samples, const char *series)
{
    json_t *value = json_object_get(samples, series);
    if (value == NULL)
        fail_msg("no sample %s", series);
    return json_real_value(value);
}

static double delta(json_t *before, json_t *after, const char *series)
{
    return sample(after, series) - sample(before, series);
}

/* Buckets of a histogram series (`name`, label text before le, e.g. `route="ask",`): cumulative,
 * and the +Inf one equal to _count. */
static void assert_histogram(json_t *samples, const char *name, const char *labels)
{
    static const char *const bounds[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                         "0.5",    "1",     "2.5",    "5",     "10",   "30",    "60",   "+Inf"};
    char series[256];
    double previous = 0;
    for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); ++i) {
        snprintf(series, sizeof(series), "%s_bucket{%sle=\"%s\"}", name, labels, bounds[i]);
        double count = sample(samples, series);
        assert_true(count >= previous);
        previous = count;
    }
    size_t len = strlen(labels);
    snprintf(series, sizeof(series), len > 0 ? "%s_count{%.*s}" : "%s_count", name, (int)(len > 0 ? len - 1 : 0), labels);
    assert_true(sample(samples, series) == previous);
}

static void post(const char *path, const char *headers, const char *body, int status, sg_test_response_t *res)
{
    assert_int_equal(sg_test_post_json(&gw, path, headers, body, res), 0);
    if (res->status != status)
        fail_msg("POST %s: %d, expected %d: %.*s", path, res->status, status, (int)res->body_len, res->body);
}

static void get(const char *path, const char *headers, int status)
{
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gw, "GET", path, headers, NULL, 0, &res), 0);
    if (res.status != status)
        fail_msg("GET %s: %d, expected %d: %.*s", path, res.status, status, (int)res.body_len, res.body);
    sg_test_response_free(&res);
}

/* A watch: opens the event stream and returns its socket once the first event came. */
static int open_watch(const char *path)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gw.port)};
    inet_pton(AF_INET, gw.host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval timeout = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    char request[256];
    int n = snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n", path);
    assert_int_equal(write(fd, request, (size_t)n), n);
    char got[4096];
    size_t len = 0;
    while (len < sizeof(got) - 1) {
        ssize_t r = read(fd, got + len, sizeof(got) - 1 - len);
        assert_true(r > 0);
        len += (size_t)r;
        got[len] = '\0';
        if (strstr(got, "event: update") != NULL)
            return fd;
    }
    fail_msg("no event on %s: %s", path, got);
    return -1;
}

static void test_every_path_counted(void **state)
{
    /* a static file to serve: the config written into the gateway's own directory */
    json_t *before = scrape(NULL);
    sg_test_response_t res;
    for (int i = 0; i < 3; ++i) {
        char body[64];
        snprintf(body, sizeof(body), "{\"id\":\"k%d\",\"n\":%d}", i, i);
        post("/things", NULL, body, 202, &res);
        sg_test_response_free(&res);
    }
    for (int i = 0; i < 2; ++i) { /* request-reply, answered by the worker */
        post("/ask", NULL, "{\"status\":\"201\",\"body\":{\"ok\":true}}", 201, &res);
        sg_test_response_free(&res);
    }
    /* async, then a status poll until done */
    char location[256];
    post("/ask", "Prefer: respond-async\r\n", "{\"status\":\"200\",\"body\":{\"late\":true}}", 202, &res);
    assert_non_null(sg_test_header(&res, "location", location, sizeof(location)));
    sg_test_response_free(&res);
    get(location, "Prefer: wait=10\r\n", 200);
    get("/tables/things/k1?fresh=latest", NULL, 200);
    get("/things/k2?fresh=latest", NULL, 200); /* the query route */
    get("/registry/subjects", NULL, 200);
    post("/registry/subjects/metrics-value/versions", NULL, "{\"schema\":\"\\\"string\\\"\"}", 200, &res);
    sg_test_response_free(&res);
    get("/no/such/path", NULL, 404);
    get("/config.yaml", NULL, 200); /* a static file */

    /* while a watch is open it is an event stream and a parked table request */
    int watch = open_watch("/tables/things/k0");
    json_t *during = scrape(NULL);
    assert_true(sample(during, "streamgate_event_streams") >= 1);
    assert_true(sample(during, "streamgate_open_connections") >= 2); /* the watch and the scrape */
    close(watch);
    json_decref(during);

    /* The logger counts a request when H2O is done with it, on whichever loop served it: wait
     * (bounded) until the last of them is in. */
    json_t *after = NULL;
    char *text = NULL;
    for (int i = 0; i < 100; ++i) {
        json_decref(after);
        free(text);
        after = scrape(&text);
        if (delta(before, after, "streamgate_requests_total{route=\"static\",code=\"2xx\"}") >= 1 &&
            delta(before, after, "streamgate_requests_total{route=\"unmatched\",code=\"4xx\"}") >= 1)
            break;
        sg_test_sleep_ms(50);
    }

    /* promtool accepts the exposition */
    char *file = sg_test_write_temp("metrics.txt", text);
    char command[600];
    snprintf(command, sizeof(command), "promtool check metrics < %s 2>&1", file);
    FILE *pipe = popen(command, "r");
    char out[4096] = "";
    size_t len = fread(out, 1, sizeof(out) - 1, pipe);
    out[len] = '\0';
    int status = pclose(pipe);
    if (status != 0)
        fail_msg("promtool check metrics: exit %d: %s", status, out);
    sg_test_remove_temp(file);
    free(text);

    assert_true(delta(before, after, "streamgate_requests_total{route=\"create-thing\",code=\"2xx\"}") == 3);
    assert_true(delta(before, after, "streamgate_request_duration_seconds_count{route=\"create-thing\"}") == 3);
    assert_true(delta(before, after, "streamgate_request_duration_seconds_bucket{route=\"create-thing\",le=\"+Inf\"}") == 3);
    assert_true(delta(before, after, "streamgate_request_duration_seconds_sum{route=\"create-thing\"}") > 0);
    assert_true(delta(before, after, "streamgate_requests_total{route=\"ask\",code=\"2xx\"}") == 3); /* 201, 201, 202 */
    assert_true(delta(before, after, "streamgate_requests_total{route=\"/requests\",code=\"2xx\"}") == 1);
    assert_true(delta(before, after, "streamgate_requests_total{route=\"/things/{id}\",code=\"2xx\"}") == 1);
    assert_true(delta(before, after, "streamgate_requests_total{route=\"/registry\",code=\"2xx\"}") == 2);
    assert_true(delta(before, after, "streamgate_requests_total{route=\"unmatched\",code=\"4xx\"}") == 1);
    assert_true(delta(before, after, "streamgate_requests_total{route=\"static\",code=\"2xx\"}") == 1);
    assert_true(delta(before, after, "streamgate_requests_total{route=\"/tables\",code=\"2xx\"}") >=
                1); /* + the watch, once done */
    /* every command's event acknowledged (3 + 2 + 1), the waiting replies timed (2) */
    assert_true(delta(before, after, "streamgate_produce_ack_seconds_count") == 6);
    assert_true(delta(before, after, "streamgate_produce_ack_seconds_bucket{le=\"+Inf\"}") == 6);
    assert_true(delta(before, after, "streamgate_reply_wait_seconds_count") == 2);
    assert_true(delta(before, after, "streamgate_reply_wait_seconds_sum") > 0);
    assert_true(delta(before, after, "streamgate_produce_errors_total{cause=\"queue_full\"}") == 0);
    assert_histogram(after, "streamgate_request_duration_seconds", "route=\"create-thing\",");
    assert_histogram(after, "streamgate_request_duration_seconds", "route=\"ask\",");
    assert_histogram(after, "streamgate_produce_ack_seconds", "");
    assert_histogram(after, "streamgate_reply_wait_seconds", "");
    /* the table: caught up with the three things, their stream time, nothing behind */
    assert_true(sample(after, "streamgate_table_restore_progress_ratio{table=\"things\"}") == 1);
    assert_true(sample(after, "streamgate_table_lag_records{table=\"things\"}") == 0);
    assert_true(sample(after, "streamgate_table_stream_time_seconds{table=\"things\"}") > 1.7e9);
    assert_true(delta(before, after, "streamgate_registry_objects{kind=\"subjects\"}") == 1);
    assert_true(delta(before, after, "streamgate_registry_objects{kind=\"versions\"}") == 1);
    assert_true(sample(after, "streamgate_parked_requests{kind=\"command\"}") == 0);
    assert_true(sample(after, "streamgate_reply_consumer_lag_records") == 0);
    assert_true(sample(after, "streamgate_producer_queue_messages") == 0);
    json_decref(before);
    json_decref(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_path_counted),
    };
    return cmocka_run_group_tests_name("integration-metrics", tests, setup, teardown);
}
