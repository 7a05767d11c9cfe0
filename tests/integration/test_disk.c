/*
 * A full disk under data_dir, with the real gateway: its data_dir is a 40 MiB tmpfs, most of it
 * taken by a filler file; PUTs of 1 MiB rows into a table fill the rest. The process must
 * survive (RocksDB 7.8 used to abort on its own info log), readiness must fail, reads serve the
 * last committed state, commands that need no local state still answer 202, an Idempotency-Key
 * claim that cannot be stored is refused with 503 instead of being produced unguarded. Once the
 * filler is deleted everything resumes by itself, and the table equals a rebuild from the topic
 * (same rows, same ETags, same position): nothing lost, nothing applied twice.
 *
 * The producer compresses (lz4): the embedded cluster keeps ~5 MB per partition, and these rows
 * are mostly padding, so the topic keeps every record while RocksDB's log takes a MiB per row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../queries/tmpfs.h"
#include "harness.h"

#define ROW_BYTES (1024 * 1024)
#define MAX_ROWS 60

static const char config[] = "listen: [\"127.0.0.1:0\"]\n"
                             "data_dir: @DIR@/data\n"
                             "kafka: {properties: {compression.type: lz4}}\n"
                             "limits: {body_bytes: 2MiB}\n"
                             "topics: [{name: profiles, partitions: 2}]\n"
                             "routes:\n"
                             "  - {name: put-profile, method: PUT, path: \"/profiles/{id}\", topic: profiles, key: \"path:id\"}\n"
                             "tables: [{name: profiles, topic: profiles}]\n";

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

/* Row i's JSON body, ROW_BYTES long. Owned. */
static char *row(int i)
{
    char *body = malloc(ROW_BYTES + 1);
    assert_non_null(body);
    int head = snprintf(body, ROW_BYTES, "{\"n\":%d,\"pad\":\"", i);
    for (int at = head; at < ROW_BYTES - 2; at++)
        body[at] = (char)('a' + (at + i) % 26);
    memcpy(body + ROW_BYTES - 2, "\"}", 3);
    return body;
}

static int status_of(const sg_test_proc_t *gw, const char *method, const char *path, const char *headers, const char *body,
                     size_t len)
{
    sg_test_response_t res;
    assert_int_equal(sg_test_http(gw, method, path, headers, body, len, &res), 0);
    int status = res.status;
    sg_test_response_free(&res);
    return status;
}

/* PUTs row i as key k<i>; returns the status and copies the Consistency-Token. */
static int put_row(const sg_test_proc_t *gw, int i, const char *extra_headers, char *token, size_t token_len)
{
    char path[64], headers[256];
    snprintf(path, sizeof(path), "/profiles/k%d", i);
    snprintf(headers, sizeof(headers), "Content-Type: application/json\r\n%s", extra_headers != NULL ? extra_headers : "");
    char *body = row(i);
    sg_test_response_t res;
    assert_int_equal(sg_test_http(gw, "PUT", path, headers, body, ROW_BYTES, &res), 0);
    free(body);
    int status = res.status;
    if (token != NULL && status == 202)
        assert_non_null(sg_test_header(&res, "consistency-token", token, token_len));
    sg_test_response_free(&res);
    return status;
}

/* Waits (bounded) until /readyz answers `want`; says why not when it does not. */
static void wait_ready_status(const sg_test_proc_t *gw, int want, int64_t ms)
{
    int64_t deadline = now_ms() + ms;
    sg_test_response_t res;
    for (;;) {
        assert_int_equal(sg_test_http(gw, "GET", "/readyz", NULL, NULL, 0, &res), 0);
        if (res.status == want || now_ms() >= deadline)
            break;
        sg_test_response_free(&res);
        sleep_ms(100);
    }
    if (res.status != want)
        fprintf(stderr, "/readyz: %d %s\n", res.status, res.body);
    int status = res.status;
    sg_test_response_free(&res);
    assert_int_equal(status, want);
}

/* Waits (bounded) until the table has applied row i (a read of k<i> with its token answers 200)
 * or /readyz is 503 (the table stopped applying). */
static void wait_applied_or_unready(const sg_test_proc_t *gw, int i, const char *token)
{
    char path[64], headers[1024];
    snprintf(path, sizeof(path), "/tables/profiles/k%d", i);
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\nPrefer: wait=1\r\n", token);
    int64_t deadline = now_ms() + 30000;
    while (status_of(gw, "GET", path, headers, NULL, 0) != 200 && status_of(gw, "GET", "/readyz", NULL, NULL, 0) != 503)
        assert_true(now_ms() < deadline);
}

/* GET /tables/profiles/k<i> with a token; fills the ETag; asserts the value is row i. */
static void assert_row(const sg_test_proc_t *gw, int i, const char *token, char *etag, size_t etag_len)
{
    char path[64], headers[1024];
    snprintf(path, sizeof(path), "/tables/profiles/k%d", i);
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\nPrefer: wait=20\r\n", token);
    sg_test_response_t res;
    assert_int_equal(sg_test_http(gw, "GET", path, headers, NULL, 0, &res), 0);
    if (res.status != 200)
        fprintf(stderr, "k%d: %d %s\n", i, res.status, res.body);
    assert_int_equal(res.status, 200);
    char *want = row(i);
    assert_int_equal(res.body_len, ROW_BYTES);
    assert_memory_equal(res.body, want, ROW_BYTES);
    free(want);
    assert_non_null(sg_test_header(&res, "etag", etag, etag_len));
    sg_test_response_free(&res);
}

static void test_full_data_dir(void **state)
{
    (void)state;
    sg_test_tmpfs_t fs;
    char why[512];
    if (sg_test_tmpfs_mount(&fs, 40, why, sizeof(why)) != 0) {
        print_message("skipped: %s\n", why);
        skip();
    }
    assert_int_equal(sg_test_tmpfs_fill(&fs, 12), 0);
    char data[300];
    snprintf(data, sizeof(data), "%s/data", fs.dir);
    assert_int_equal(mkdir(data, 0700), 0);
    sg_test_proc_t gw;
    assert_int_equal(sg_test_gateway_start_with_data(&gw, config, data), 0);

    /* Fill the disk: rows until readiness fails (the table stopped applying). The next row only
     * once the table applied this one or stopped: the PUTs need no table, and under load the
     * table lagged them by more rows than MAX_ROWS leaves beyond what the disk holds. */
    char token[1024] = "";
    int rows = 0;
    while (rows < MAX_ROWS) {
        assert_int_equal(put_row(&gw, rows, NULL, token, sizeof(token)), 202);
        wait_applied_or_unready(&gw, rows, token);
        rows++;
        if (status_of(&gw, "GET", "/readyz", NULL, NULL, 0) == 503) {
            sleep_ms(500); /* the commit of the last rows may still be under way */
            if (status_of(&gw, "GET", "/readyz", NULL, NULL, 0) == 503)
                break;
        }
    }
    assert_true(rows < MAX_ROWS);
    /* Alive, not ready; commands that need no local state still go to Kafka. */
    assert_int_equal(kill(gw.pid, 0), 0);
    assert_int_equal(status_of(&gw, "GET", "/healthz", NULL, NULL, 0), 200);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(put_row(&gw, rows, NULL, token, sizeof(token)), 202);
        rows++;
    }
    /* /readyz and /metrics say it is the disk. */
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gw, "GET", "/readyz", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 503);
    assert_non_null(strstr(res.body, "the tables' storage takes no writes"));
    sg_test_response_free(&res);
    assert_int_equal(sg_test_http(&gw, "GET", "/metrics", NULL, NULL, 0, &res), 0);
    assert_non_null(strstr(res.body, "\nstreamgate_storage_available{store=\"tables\"} 0\n"));
    sg_test_response_free(&res);
    /* Reads serve the last committed state: the first row is there. */
    char etag[128];
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles/k0", NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    sg_test_response_free(&res);
    /* An Idempotency-Key claim that cannot be stored is refused, not produced unguarded. */
    int64_t before = sg_test_topic_count(gw.bootstrap, "profiles");
    assert_int_equal(put_row(&gw, rows, "Idempotency-Key: full-disk\r\n", NULL, 0), 503);
    assert_int_equal(sg_test_topic_count(gw.bootstrap, "profiles"), before);

    /* Room again: everything resumes by itself. */
    sg_test_tmpfs_free(&fs);
    wait_ready_status(&gw, 200, 30000);
    /* /readyz is 200 only once the request store, which the refused claim found unavailable,
     * is back too (the gateway's once-a-second sweep reopens it): the claim now goes through. */
    assert_int_equal(sg_test_http(&gw, "GET", "/metrics", NULL, NULL, 0, &res), 0);
    assert_non_null(strstr(res.body, "\nstreamgate_storage_available{store=\"requests\"} 1\n"));
    assert_non_null(strstr(res.body, "\nstreamgate_storage_available{store=\"tables\"} 1\n"));
    sg_test_response_free(&res);
    assert_int_equal(put_row(&gw, rows, "Idempotency-Key: full-disk\r\n", token, sizeof(token)), 202);
    rows++;
    assert_int_equal(sg_test_topic_count(gw.bootstrap, "profiles"), before + 1);

    /* Every row, with its value, and the same ETags and position as a table rebuilt from the
     * topic by another gateway on the same cluster. */
    char rebuild_config[2048];
    snprintf(rebuild_config, sizeof(rebuild_config),
             "listen: [\"127.0.0.1:0\"]\n"
             "data_dir: @DIR@/data\n"
             "kafka: {brokers: \"%s\"}\n"
             "topics: [{name: profiles, partitions: 2}]\n"
             "tables: [{name: profiles, topic: profiles}]\n",
             gw.bootstrap);
    sg_test_proc_t rebuilt;
    assert_int_equal(sg_test_gateway_start(&rebuilt, rebuild_config), 0);
    for (int i = 0; i < rows; i++) {
        char etag_rebuilt[128];
        assert_row(&gw, i, token, etag, sizeof(etag));
        assert_row(&rebuilt, i, token, etag_rebuilt, sizeof(etag_rebuilt));
        assert_string_equal(etag, etag_rebuilt);
    }
    char scan_token[1024], scan_token_rebuilt[1024];
    sg_test_response_t scan, scan_rebuilt;
    assert_int_equal(sg_test_http(&gw, "GET", "/tables/profiles?limit=1", NULL, NULL, 0, &scan), 0);
    assert_int_equal(sg_test_http(&rebuilt, "GET", "/tables/profiles?limit=1", NULL, NULL, 0, &scan_rebuilt), 0);
    assert_non_null(sg_test_header(&scan, "consistency-token", scan_token, sizeof(scan_token)));
    assert_non_null(sg_test_header(&scan_rebuilt, "consistency-token", scan_token_rebuilt, sizeof(scan_token_rebuilt)));
    assert_string_equal(scan_token, scan_token_rebuilt);
    sg_test_response_free(&scan);
    sg_test_response_free(&scan_rebuilt);

    assert_int_equal(sg_test_proc_stop(&rebuilt), 0);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
    sg_test_tmpfs_unmount(&fs);
}

/* A data_dir the gateway cannot write (a read-only filesystem, which even root cannot write):
 * the start fails with the path named and a non-zero exit. */
static void test_read_only_data_dir(void **state)
{
    (void)state;
    sg_test_tmpfs_t fs;
    char why[512];
    if (sg_test_tmpfs_mount(&fs, 4, why, sizeof(why)) != 0) {
        print_message("skipped: %s\n", why);
        skip();
    }
    char data[300];
    snprintf(data, sizeof(data), "%s/data", fs.dir);
    assert_int_equal(mkdir(data, 0700), 0);
    assert_int_equal(mount(NULL, fs.dir, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0);
    char *path = sg_test_write_temp("config.yaml", "listen: [\"127.0.0.1:0\"]\n"
                                                   "data_dir: @DATA@\n"
                                                   "topics: [{name: profiles, partitions: 1}]\n"
                                                   "tables: [{name: profiles, topic: profiles}]\n");
    assert_non_null(path);
    /* @DATA@ is not a harness placeholder: write the config again with the path in it. */
    char text[1024];
    snprintf(text, sizeof(text),
             "listen: [\"127.0.0.1:0\"]\ndata_dir: %s\ntopics: [{name: profiles, partitions: 1}]\n"
             "tables: [{name: profiles, topic: profiles}]\n",
             data);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    const char *args[] = {sg_test_binary(), path, NULL};
    char out[8192];
    int status = sg_test_run(args, out, sizeof(out));
    assert_int_not_equal(status, 0);
    if (strstr(out, data) == NULL)
        fprintf(stderr, "%s\n", out);
    assert_non_null(strstr(out, data));
    assert_non_null(strstr(out, "Read-only file system"));
    sg_test_remove_temp(path);
    sg_test_tmpfs_unmount(&fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_only_data_dir),
        cmocka_unit_test(test_full_data_dir),
    };
    return cmocka_run_group_tests_name("integration-disk", tests, NULL, NULL);
}
