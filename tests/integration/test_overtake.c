/*
 * A reply that overtakes the request's own delivery report still completes the request.
 *
 * The embedded cluster makes it happen for real: the request topic's leader (broker 1) answers
 * every request a second late, so the gateway's produce acknowledgement is late; the worker
 * fetches from the partition's follower (broker 2, KIP-392), sees the request at once, and
 * replies through broker 2. The reply reaches the gateway long before the acknowledgement.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"

#define LEADER_RTT_MS 1000

static sg_test_proc_t cluster, gw;
static sg_test_worker_t *worker;

static int setup(void **state)
{
    if (sg_test_real_kafka() != NULL)
        return 0; /* the test skips itself: it needs the mock's leader placement and latency knobs */
    const char *args[] = {"--brokers",  "2",
                          "--topic",    "ov.requests:1",
                          "--topic",    "ov.replies:1",
                          "--leader",   "ov.requests:0:1",
                          "--follower", "ov.requests:0:2",
                          "--leader",   "ov.replies:0:2",
                          "--rtt",      "1:" /* LEADER_RTT_MS */ "1000",
                          NULL};
    if (sg_test_cluster_start(&cluster, args) != 0)
        return -1;
    char config[1024];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\nkafka: {brokers: \"%s\"}\n"
             "routes:\n  - {name: ov, method: POST, path: /ov, topic: ov.requests, reply: {topic: ov.replies, "
             "timeout: 20s}}\n",
             cluster.bootstrap);
    if (sg_test_gateway_start(&gw, config) != 0)
        return -1;
    worker = sg_test_worker_start(cluster.bootstrap, "ov.requests", 1);
    return worker != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    sg_test_worker_stop(worker);
    return sg_test_stop_procs(&gw, &cluster, NULL);
}

static void test_reply_before_delivery_report_completes_the_request(void **state)
{
    SG_TEST_MOCK_ONLY("a slow partition leader with a fast follower needs the mock's --leader, --follower and --rtt");
    sg_test_response_t res;
    /* warm up: the worker learns to fetch from the follower */
    for (int i = 0; i < 3; ++i) {
        assert_int_equal(sg_test_post_json(&gw, "/ov", NULL, "{}", &res), 0);
        assert_int_equal(res.status, 200);
        sg_test_response_free(&res);
    }
    int fast = 0;
    for (int i = 0; i < 5; ++i) {
        char body[64];
        snprintf(body, sizeof(body), "{\"body\":{\"n\":%d}}", i);
        int64_t start = sg_test_now_ms();
        assert_int_equal(sg_test_post_json(&gw, "/ov", NULL, body, &res), 0);
        int64_t elapsed = sg_test_now_ms() - start;
        assert_int_equal(res.status, 200);
        char want[32];
        snprintf(want, sizeof(want), "{\"n\":%d}", i);
        assert_string_equal(res.body, want);
        sg_test_response_free(&res);
        fprintf(stderr, "request %d answered after %lld ms (acknowledgement after >= %d ms)\n", i, (long long)elapsed,
                LEADER_RTT_MS);
        fast += elapsed < LEADER_RTT_MS - 50;
    }
    /* answered by the reply before the broker's acknowledgement could have arrived */
    assert_true(fast >= 4);

    /* and the acknowledgement really is that late: an async 202 waits for it */
    int64_t start = sg_test_now_ms();
    assert_int_equal(sg_test_http(&gw, "POST", "/ov", "Content-Type: application/json\r\nPrefer: respond-async\r\n", "{}", 2, &res),
                     0);
    assert_int_equal(res.status, 202);
    assert_true(sg_test_now_ms() - start >= LEADER_RTT_MS - 20);
    sg_test_response_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_before_delivery_report_completes_the_request),
    };
    return cmocka_run_group_tests_name("integration-overtake", tests, setup, teardown);
}
