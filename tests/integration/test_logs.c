/*
 * Logs: log.format json (every line of the gateway's own log is a JSON object with ts, level and
 * msg), the access log (log.access: a line per request, with its status, in H2O's format), and
 * the start refusing a bad access-log format or file, naming the key; and the gateway's threads
 * named for top -H, gdb and perf.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"

static const char routes[] = "topics: [{name: logs.things, partitions: 1}]\n"
                             "routes: [{name: put-thing, method: PUT, path: \"/things/{id}\", topic: logs.things, key: "
                             "\"path:id\"}]\n"
                             "limits: {body_bytes: 1KiB}\n";

/* The whole file (owned, NUL-terminated). */
static char *slurp(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        fail_msg("cannot open %s", path);
    static const size_t cap = 1 << 20;
    char *text = malloc(cap);
    size_t len = fread(text, 1, cap - 1, fp);
    text[len] = '\0';
    fclose(fp);
    return text;
}

static void request(const sg_test_proc_t *gw, const char *method, const char *path, const char *body, int status)
{
    sg_test_response_t res;
    if (body != NULL)
        assert_int_equal(sg_test_send_json(gw, method, path, NULL, body, &res), 0);
    else
        assert_int_equal(sg_test_http(gw, method, path, NULL, NULL, 0, &res), 0);
    assert_int_equal(res.status, status);
    sg_test_response_free(&res);
}

/* Starts a gateway with the routes above and `log`, the config's log section. */
static void start(sg_test_proc_t *gw, const char *log)
{
    char config[1024];
    snprintf(config, sizeof(config), "listen: [\"127.0.0.1:0\"]\nthreads: 1\ndata_dir: @DIR@/data\n%slog: %s\n", routes, log);
    assert_int_equal(sg_test_gateway_start(gw, config), 0);
}

static void test_json_log_and_access_file(void **state)
{
    sg_test_proc_t gw;
    start(&gw, "{format: json, access: @DIR@/access.log}");
    request(&gw, "PUT", "/things/a", "{\"n\":1}", 202);
    request(&gw, "GET", "/things/a", NULL, 405);
    request(&gw, "GET", "/nowhere", NULL, 404);
    char big[2048];
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '[', big[sizeof(big) - 2] = ']', big[sizeof(big) - 1] = '\0';
    request(&gw, "PUT", "/things/b", big, 413); /* refused by H2O itself, before any handler */
    assert_int_equal(sg_test_proc_terminate(&gw), 0);

    /* Every line of the gateway's own log is one JSON object: ts (RFC 3339, UTC), level, msg. */
    char *log = slurp(gw.dir, "log");
    size_t lines = 0;
    int listening = 0;
    for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        json_error_t jerr;
        json_t *doc = json_loads(line, 0, &jerr);
        if (doc == NULL)
            fail_msg("not a JSON line (%s): %s", jerr.text, line);
        const char *ts = json_string_value(json_object_get(doc, "ts"));
        const char *level = json_string_value(json_object_get(doc, "level"));
        const char *msg = json_string_value(json_object_get(doc, "msg"));
        assert_non_null(ts);
        assert_int_equal(strlen(ts), strlen("2026-01-02T03:04:05.678Z"));
        assert_int_equal(ts[10], 'T');
        assert_int_equal(ts[23], 'Z');
        assert_non_null(level);
        assert_true(strcmp(level, "info") == 0 || strcmp(level, "warn") == 0 || strcmp(level, "error") == 0);
        assert_non_null(msg);
        listening |= strncmp(msg, "listening on http://127.0.0.1:", 30) == 0;
        assert_int_equal(json_object_size(doc), 3);
        json_decref(doc);
        ++lines;
    }
    assert_true(lines >= 3);
    assert_true(listening);
    free(log);

    /* The access log: a line per request, in the default format (combined + duration). The
     * readiness probes of the harness are in it too. */
    char *access = slurp(gw.dir, "access.log");
    const char *expected[] = {"\"PUT /things/a HTTP/1.1\" 202 ", "\"GET /things/a HTTP/1.1\" 405 ",
                              "\"GET /nowhere HTTP/1.1\" 404 ", "\"PUT /things/b HTTP/1.1\" 413 ", "\"GET /readyz HTTP/1.1\" 200 "};
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); ++i)
        if (strstr(access, expected[i]) == NULL)
            fail_msg("no access-log line with %s in:\n%s", expected[i], access);
    size_t requests = 0;
    for (char *line = strtok(access, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        assert_int_equal(strncmp(line, "127.0.0.1 - - [", 15), 0);
        double duration = -1;
        const char *last = strrchr(line, ' ');
        assert_int_equal(sscanf(last, " %lf", &duration), 1);
        assert_true(duration >= 0 && duration < 10);
        ++requests;
    }
    assert_true(requests >= 5);
    free(access);
    sg_test_proc_stop(&gw); /* removes the temp dir (the process has exited already) */
}

static void test_access_log_to_stdout_with_a_format(void **state)
{
    sg_test_proc_t gw;
    start(&gw, "{access: \"-\", access_format: \"access %s %m %U\"}");
    request(&gw, "GET", "/nowhere", NULL, 404);
    request(&gw, "PUT", "/things/c", "{}", 202);
    assert_int_equal(sg_test_proc_terminate(&gw), 0);
    char *log = slurp(gw.dir, "log"); /* the harness sends stdout and stderr there */
    assert_non_null(strstr(log, "\naccess 404 GET /nowhere\n"));
    assert_non_null(strstr(log, "\naccess 202 PUT /things/c\n"));
    assert_non_null(strstr(log, "streamgate: info: listening on")); /* the text format */
    free(log);
    sg_test_proc_stop(&gw); /* removes the temp dir (the process has exited already) */
}

static void test_bad_access_log_fails_the_start(void **state)
{
    char out[4096];
    char *bad_format = sg_test_write_temp("c.yaml", "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\n"
                                                    "log: {access: \"-\", access_format: \"%{nope\"}\n");
    const char *args[] = {sg_test_binary(), bad_format, NULL};
    assert_int_equal(sg_test_run(args, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "log.access_format: "));
    sg_test_remove_temp(bad_format);

    char *bad_file = sg_test_write_temp("c.yaml", "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\n"
                                                  "log: {access: /no/such/dir/access.log}\n");
    args[1] = bad_file;
    assert_int_equal(sg_test_run(args, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "log.access: cannot open /no/such/dir/access.log: No such file or directory"));
    sg_test_remove_temp(bad_file);
}

static void test_thread_names(void **state)
{
    /* Every thread of ours has a name (sg-...): the event loops, the Kafka poll and probe threads,
     * the tables' threads, the deployment thread. */
    sg_test_proc_t gw;
    char config[1024];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\nthreads: 2\ndata_dir: @DIR@/data\n%s"
             "tables: [{name: things, topic: logs.things}]\n",
             routes);
    assert_int_equal(sg_test_gateway_start(&gw, config), 0);
    char dir_path[64], names[4096] = "\n";
    snprintf(dir_path, sizeof(dir_path), "/proc/%d/task", (int)gw.pid);
    DIR *dir = opendir(dir_path);
    assert_non_null(dir);
    for (struct dirent *task; (task = readdir(dir)) != NULL;) {
        if (task->d_name[0] == '.')
            continue;
        char comm_path[128];
        snprintf(comm_path, sizeof(comm_path), "%s/%s/comm", dir_path, task->d_name);
        FILE *comm = fopen(comm_path, "r");
        size_t used = strlen(names);
        if (comm != NULL && fgets(names + used, (int)(sizeof(names) - used), comm) == NULL)
            names[used] = '\0';
        if (comm != NULL)
            fclose(comm);
    }
    closedir(dir);
    static const char *const expected[] = {"sg-loop-0", "sg-loop-1",     "sg-kafka",      "sg-kafka-probe",
                                           "sg-tables", "sg-tbl-commit", "sg-tbl-latest", "sg-deployment"};
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        char line[32];
        snprintf(line, sizeof(line), "\n%s\n", expected[i]);
        if (strstr(names, line) == NULL)
            fail_msg("no thread named %s among:%s", expected[i], names);
    }
    assert_int_equal(sg_test_proc_stop(&gw), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_log_and_access_file),
        cmocka_unit_test(test_access_log_to_stdout_with_a_format),
        cmocka_unit_test(test_bad_access_log_fails_the_start),
        cmocka_unit_test(test_thread_names),
    };
    return cmocka_run_group_tests_name("integration-logs", tests, NULL, NULL);
}
