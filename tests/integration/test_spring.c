/*
 * Spring Kafka's own request-reply against streamgate on real Kafka (DESIGN §3: "a Spring
 * @SendTo responder works unchanged"), both ways, with the Maven project tests/kafka/spring
 * (plain Spring, spring-kafka from Maven Central; tests/install-deps builds it into the cache):
 *
 * - a @KafkaListener + @SendTo responder answers a streamgate reply route: Spring copies the
 *   correlation id, and the reply is matched by it (the responder echoes the id it saw: it must be
 *   streamgate's 32-character ASCII id, unchanged);
 * - a ReplyingKafkaTemplate client calls a worker written for streamgate (the test harness's C
 *   responder) through the same request and reply topics: the worker copies Spring's binary
 *   correlation id unchanged and replies to kafka_replyTopic.
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

#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"

static sg_test_proc_t cluster;
static char classpath[2048];

static int setup(void **state)
{
    if (sg_test_real_kafka() == NULL)
        return 0; /* every test skips itself */
    const char *dir = getenv("SG_SPRING_DIR");
    char fallback[1024];
    if (dir == NULL) {
        const char *cache = getenv("XDG_CACHE_HOME");
        if (cache != NULL)
            snprintf(fallback, sizeof(fallback), "%s/streamgate/spring/target", cache);
        else
            snprintf(fallback, sizeof(fallback), "%s/.cache/streamgate/spring/target", getenv("HOME"));
        dir = fallback;
    }
    snprintf(classpath, sizeof(classpath), "%s/streamgate-spring-1.jar:%s/lib/*", dir, dir);
    char jar[1100];
    snprintf(jar, sizeof(jar), "%s/streamgate-spring-1.jar", dir);
    if (access(jar, R_OK) != 0) {
        fprintf(stderr, "no %s: tests/install-deps builds tests/kafka/spring there\n", jar);
        return -1;
    }
    const char *args[] = {"--topic", "sp.requests:2", "--topic", "sp.replies:2", "--topic", "sc.requests:2",
                          "--topic", "sc.replies:1",  NULL};
    return sg_test_cluster_start(&cluster, args);
}

static int teardown(void **state)
{
    return sg_test_real_kafka() == NULL ? 0 : sg_test_stop_procs(&cluster, NULL);
}

/* Starts `java -cp classpath MAIN ARGS...` with its output into log_path. Returns the pid. */
static pid_t start_java(const char *log_path, const char *const *args)
{
    const char *argv[16] = {"java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", classpath};
    size_t n = 6;
    for (size_t i = 0; args[i] != NULL && n < 15; ++i)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        FILE *log = freopen(log_path, "w", stdout);
        if (log == NULL || dup2(fileno(stdout), 2) < 0)
            _exit(127);
        execvp("java", (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static void print_file(const char *path)
{
    char *text = NULL;
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return;
    char line[1024];
    fprintf(stderr, "---- %s ----\n", path);
    while (fgets(line, sizeof(line), fp) != NULL)
        fputs(line, stderr);
    fclose(fp);
    free(text);
}

/* The done status document of location (owned), or NULL. */
static json_t *poll_done(const sg_test_proc_t *gw, const char *location, int64_t deadline)
{
    int64_t left = deadline - sg_test_now_ms();
    char *text = left > 0 ? sg_test_poll_done(gw, location, (int)left) : NULL;
    json_t *doc = text != NULL ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return doc;
}

static void test_spring_responder_answers_a_reply_route(void **state)
{
    SG_TEST_REAL_ONLY("runs Spring Kafka against the real cluster");
    char config[1024];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\n"
             "topics: [{name: sp.requests, partitions: 2}, {name: sp.replies, partitions: 2}]\n"
             "routes:\n"
             "  - {name: spring, method: POST, path: /spring, topic: sp.requests, key: \"body:/id\",\n"
             "     reply: {topic: sp.replies, timeout: 60s}}\n");
    sg_test_proc_t gw;
    assert_int_equal(sg_test_gateway_start(&gw, config), 0);
    char log_path[512];
    snprintf(log_path, sizeof(log_path), "%s/spring-responder.log", gw.dir);
    const char *args[] = {"streamgate.spring.Responder", cluster.bootstrap, "sp.requests", NULL};
    int64_t started = sg_test_now_ms();
    pid_t java = start_java(log_path, args);
    assert_true(java > 0);

    /* The first waits for Spring to start (its listener reads from the beginning): answered
     * within the route's wait, or polled after its 202. */
    sg_test_response_t res;
    json_t *doc = NULL;
    assert_int_equal(sg_test_post_json(&gw, "/spring", "Prefer: wait=5\r\n", "{\"id\":\"a-1\",\"n\":1}", &res), 0);
    if (res.status == 202) {
        char location[128];
        assert_non_null(sg_test_header(&res, "location", location, sizeof(location)));
        json_t *status = poll_done(&gw, location, sg_test_now_ms() + 120000);
        if (status == NULL) {
            print_file(log_path);
            fail_msg("the first request to the Spring responder is not done within 120 s");
        }
        json_t *body = json_object_get(json_object_get(status, "response"), "body");
        doc = json_is_string(body) ? json_loads(json_string_value(body), 0, NULL) : json_incref(body);
        json_decref(status);
    } else if (res.status == 200) {
        doc = json_loads(res.body, 0, NULL);
    } else {
        print_file(log_path);
        fail_msg("POST /spring answered %d: %s", res.status, res.body);
    }
    int64_t first_ms = sg_test_now_ms() - started, sync_start = sg_test_now_ms();
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "repliedBy")), "spring");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "request"), "n")), 1);
    assert_int_equal(strlen(json_string_value(json_object_get(doc, "correlationId"))), 32);
    json_decref(doc);
    sg_test_response_free(&res);

    /* Sync, now that it runs: the reply is the answer. */
    for (int i = 0; i < 3; ++i) {
        assert_int_equal(sg_test_post_json(&gw, "/spring", NULL, "{\"id\":\"s-1\",\"n\":100}", &res), 0);
        assert_int_equal(res.status, 200);
        doc = json_loads(res.body, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(doc, "repliedBy")), "spring");
        assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "request"), "n")), 100);
        json_decref(doc);
        sg_test_response_free(&res);
    }

    /* Async: the id in Location is the one Spring saw and copied back. */
    for (int i = 2; i < 7; ++i) {
        char body[64];
        int len = snprintf(body, sizeof(body), "{\"id\":\"a-%d\",\"n\":%d}", i, i);
        assert_int_equal(sg_test_http(&gw, "POST", "/spring", "Content-Type: application/json\r\nPrefer: respond-async\r\n", body,
                                      (size_t)len, &res),
                         0);
        assert_int_equal(res.status, 202);
        char location[128];
        assert_non_null(sg_test_header(&res, "location", location, sizeof(location)));
        sg_test_response_free(&res);
        json_t *status = poll_done(&gw, location, sg_test_now_ms() + 30000);
        assert_non_null(status);
        json_t *response = json_object_get(status, "response");
        assert_int_equal(json_integer_value(json_object_get(response, "status")), 200);
        json_t *reply = json_object_get(response, "body");
        json_t *reply_doc = json_is_string(reply) ? json_loads(json_string_value(reply), 0, NULL) : json_incref(reply);
        assert_string_equal(json_string_value(json_object_get(reply_doc, "correlationId")), location + strlen("/requests/"));
        assert_int_equal(json_integer_value(json_object_get(json_object_get(reply_doc, "request"), "n")), i);
        json_decref(reply_doc);
        json_decref(status);
    }
    fprintf(stderr,
            "spring responder: first reply %lld ms after starting the JVM; then 3 sync and 5 async round trips in %lld ms, each "
            "with streamgate's id copied back unchanged\n",
            (long long)first_ms, (long long)(sg_test_now_ms() - sync_start));
    kill(java, SIGTERM);
    int wstatus;
    waitpid(java, &wstatus, 0);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
}

static void test_spring_client_calls_a_streamgate_worker(void **state)
{
    SG_TEST_REAL_ONLY("runs Spring Kafka against the real cluster");
    sg_test_worker_t *worker = sg_test_worker_start(cluster.bootstrap, "sc.requests", 2);
    assert_non_null(worker);
    char *log_path = sg_test_write_temp("spring-client.log", "");
    assert_non_null(log_path);
    const char *args[] = {"streamgate.spring.Client", cluster.bootstrap, "sc.requests", "sc.replies", "10", NULL};
    int64_t started = sg_test_now_ms();
    pid_t java = start_java(log_path, args);
    assert_true(java > 0);
    int wstatus = 0;
    int64_t deadline = sg_test_now_ms() + 180000;
    pid_t done = 0;
    while ((done = waitpid(java, &wstatus, WNOHANG)) == 0 && sg_test_now_ms() < deadline)
        sg_test_sleep_ms(100);
    if (done == 0) {
        kill(java, SIGKILL);
        waitpid(java, &wstatus, 0);
    }
    sg_test_worker_stop(worker);
    int ok = done == java && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
    if (!ok)
        print_file(log_path);
    else
        fprintf(stderr,
                "spring client: 10 ReplyingKafkaTemplate round trips through the C worker in %lld ms (JVM start "
                "included)\n",
                (long long)(sg_test_now_ms() - started));
    sg_test_remove_temp(log_path);
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spring_responder_answers_a_reply_route),
        cmocka_unit_test(test_spring_client_calls_a_streamgate_worker),
    };
    return cmocka_run_group_tests_name("spring", tests, setup, teardown);
}
