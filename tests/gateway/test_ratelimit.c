/*
 * Rate limits (gateway/auth/ratelimit.c): bursts and refusals with the exact wait, refill, the
 * rate held by two threads taking at once, bounded eviction, and the header values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "sg_base.h"
#include "sg_ratelimit.h"

static sg_ratelimit_t *make(uint32_t count, int64_t period_ms, uint32_t burst, size_t slots)
{
    char err[256];
    sg_rate_policy_t policies[] = {{.name = "p", .count = count, .period_ms = period_ms, .burst = burst},
                                   {.name = "q", .count = count, .period_ms = period_ms, .burst = burst}};
    sg_ratelimit_t *limiter = sg_ratelimit_create(policies, 2, slots, err, sizeof(err));
    if (limiter == NULL)
        fail_msg("create: %s", err);
    return limiter;
}

static sg_rate_result_t take(sg_ratelimit_t *limiter, size_t policy, const char *key, int64_t now_us)
{
    sg_rate_result_t result;
    sg_ratelimit_take(limiter, policy, key, strlen(key), now_us, &result);
    return result;
}

static void test_burst_then_refusal(void **state)
{
    sg_ratelimit_t *limiter = make(10, 1000, 5, 1024); /* a token every 100 ms, 5 at once */
    int64_t t0 = sg_mono_us();
    for (uint32_t i = 0; i < 5; i++) {
        sg_rate_result_t result = take(limiter, 0, "alice", t0);
        assert_true(result.allowed);
        assert_int_equal(result.remaining, 4 - i);
        assert_int_equal(result.wait_ms, 0);
        assert_int_equal(result.reset_s, 1); /* the next token comes within the second */
        assert_string_equal(result.policy, "p");
        assert_int_equal(result.quota, 10);
        assert_int_equal(result.window_s, 1);
    }
    sg_rate_result_t refused = take(limiter, 0, "alice", t0);
    assert_false(refused.allowed);
    assert_int_equal(refused.remaining, 0);
    assert_int_equal(refused.wait_ms, 100);
    assert_int_equal(refused.reset_s, 1);
    /* 40 ms later the wait is 60 ms; at 100 ms one token is back, and only one. */
    refused = take(limiter, 0, "alice", t0 + 40000);
    assert_false(refused.allowed);
    assert_int_equal(refused.wait_ms, 60);
    sg_rate_result_t again = take(limiter, 0, "alice", t0 + 100000);
    assert_true(again.allowed);
    assert_int_equal(again.remaining, 0);
    assert_false(take(limiter, 0, "alice", t0 + 100000).allowed);
    /* Other keys and other policies have their own buckets. */
    assert_true(take(limiter, 0, "bob", t0).allowed);
    assert_true(take(limiter, 1, "alice", t0).allowed);
    /* After a long pause the bucket holds the burst, not more. */
    int64_t later = t0 + 10 * 1000000;
    for (int i = 0; i < 5; i++)
        assert_true(take(limiter, 0, "alice", later).allowed);
    assert_false(take(limiter, 0, "alice", later).allowed);

    sg_ratelimit_stats_t stats;
    sg_ratelimit_stats(limiter, &stats);
    assert_int_equal(stats.refused, 4);
    assert_int_equal(stats.allowed, 13);
    sg_ratelimit_destroy(limiter);
}

static void test_slow_rates(void **state)
{
    /* 3 per minute, burst 1: one request, then a 20 s wait (Retry-After 20). */
    sg_ratelimit_t *limiter = make(3, 60000, 1, 64);
    int64_t t0 = sg_mono_us();
    assert_true(take(limiter, 0, "k", t0).allowed);
    sg_rate_result_t refused = take(limiter, 0, "k", t0 + 1000);
    assert_false(refused.allowed);
    assert_int_equal(refused.wait_ms, 19999);
    assert_int_equal(refused.reset_s, 20);
    assert_int_equal(sg_ratelimit_retry_after_s(&refused, 1), 20);
    assert_int_equal(refused.window_s, 60);
    assert_true(take(limiter, 0, "k", t0 + 20000000).allowed);
    sg_ratelimit_destroy(limiter);
}

typedef struct st_taker_t {
    sg_ratelimit_t *limiter;
    int64_t until_us;
    uint64_t allowed, tries;
} taker_t;

static void *take_loop(void *arg)
{
    taker_t *taker = arg;
    for (int64_t now = sg_mono_us(); now < taker->until_us; now = sg_mono_us()) {
        sg_rate_result_t result;
        sg_ratelimit_take(taker->limiter, 0, "shared", 6, now, &result);
        taker->allowed += result.allowed;
        taker->tries++;
    }
    return NULL;
}

static void test_rate_with_two_threads(void **state)
{
    /* 1000/s shared by two threads for ~2 s. Whatever the scheduler does, tokens are conserved:
     * allowed + what is left in the bucket at the end = burst + rate x elapsed. */
    enum { RATE = 1000, BURST = 200 };
    sg_ratelimit_t *limiter = make(RATE, 1000, BURST, 1024);
    int64_t start = sg_mono_us();
    taker_t takers[2] = {{.limiter = limiter, .until_us = start + 2000000}, {.limiter = limiter, .until_us = start + 2000000}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, take_loop, &takers[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    int64_t end = sg_mono_us();
    sg_rate_result_t last;
    sg_ratelimit_take(limiter, 0, "shared", 6, end, &last);
    uint64_t allowed = takers[0].allowed + takers[1].allowed + (last.allowed ? 1 + last.remaining : 0);
    double elapsed_s = (double)(end - start) / 1e6;
    double rate = ((double)allowed - BURST) / elapsed_s;
    print_message("rate limiter: %llu tries, %llu allowed in %.3f s: %.1f/s for a configured %d/s\n",
                  (unsigned long long)(takers[0].tries + takers[1].tries), (unsigned long long)allowed, elapsed_s, rate, RATE);
    assert_true(takers[0].tries + takers[1].tries > 4 * RATE); /* the bucket was contended */
    assert_true(rate > RATE * 0.9 && rate < RATE * 1.1);
    sg_ratelimit_stats_t stats;
    sg_ratelimit_stats(limiter, &stats);
    assert_int_equal(stats.contended, 0);
    sg_ratelimit_destroy(limiter);
}

static void test_eviction_bounded(void **state)
{
    /* 64 slots (the least a table has), 10,000 keys: each still gets a bucket, in a table that
     * never grows. All buckets are busy (just used), so past the empty slots every new key takes
     * the place of a busy bucket. */
    sg_ratelimit_t *limiter = make(1, 1000, 1, 1);
    int64_t t0 = sg_mono_us();
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
        assert_true(take(limiter, 0, key, t0).allowed);  /* a fresh bucket */
        assert_false(take(limiter, 0, key, t0).allowed); /* which is its own right after */
    }
    sg_ratelimit_stats_t stats;
    sg_ratelimit_stats(limiter, &stats);
    assert_int_equal(stats.evictions, 0);
    assert_true(stats.busy_evictions >= 10000 - 64);
    assert_true(stats.busy_evictions < 10000);
    uint64_t busy = stats.busy_evictions;

    /* Two seconds later every bucket has refilled (idle): new keys take idle slots first. */
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "later-%d", i);
        assert_true(take(limiter, 0, key, t0 + 2000000 + i).allowed);
    }
    sg_ratelimit_stats(limiter, &stats);
    assert_int_equal(stats.evictions + stats.busy_evictions - busy, 1000); /* no empty slot was left */
    assert_true(stats.evictions >= 16);
    sg_ratelimit_destroy(limiter);
}

static void test_headers(void **state)
{
    char err[256];
    const char *text = "auth: {api_keys: [{name: k, sha256: "
                       "\"abb651124a4cbc8955fadf4ceab8365a9aa27a2eb193b76790a5644046f90cdf\"}]}\n"
                       "routes: [{name: place-order, method: POST, path: /orders, topic: o}]\n"
                       "rate_limits:\n"
                       "  - {name: per-user, routes: [place-order], per: principal, rate: 50/s, burst: 100}\n"
                       "  - {name: per-ip, per: ip, rate: 600/m}\n";
    sg_conf_t *conf = sg_conf_load_string("t.yaml", text, strlen(text), err, sizeof(err));
    if (conf == NULL)
        fail_msg("%s", err);
    sg_ratelimit_t *limiter = sg_ratelimit_create_from_conf(conf, 4096, err, sizeof(err));
    assert_non_null(limiter);
    assert_int_equal(sg_ratelimit_registry_policy(limiter), 2);
    int64_t t0 = sg_mono_us();
    sg_rate_result_t results[3];
    sg_ratelimit_take(limiter, 0, "alice", 5, t0, &results[0]);
    sg_ratelimit_take(limiter, 1, "127.0.0.1", 9, t0, &results[1]);
    sg_ratelimit_take(limiter, 2, "127.0.0.1", 9, t0, &results[2]);
    char policy[256], current[256];
    sg_ratelimit_format_policy(results, 3, policy, sizeof(policy));
    sg_ratelimit_format_state(results, 3, current, sizeof(current));
    assert_string_equal(policy, "\"per-user\";q=50;w=1, \"per-ip\";q=600;w=60, \"registry-writes\";q=10;w=1");
    assert_string_equal(current, "\"per-user\";r=99;t=1, \"per-ip\";r=599;t=1, \"registry-writes\";r=19;t=1");
    assert_int_equal(sg_ratelimit_retry_after_s(results, 3), 0);

    /* Refused: r=0 and t = the wait, which is also Retry-After (whole seconds, at least 1). */
    for (int i = 0; i < 19; i++)
        sg_ratelimit_take(limiter, 2, "127.0.0.1", 9, t0, &results[2]);
    assert_true(results[2].allowed);
    sg_ratelimit_take(limiter, 2, "127.0.0.1", 9, t0 + 30000, &results[2]);
    assert_false(results[2].allowed);
    assert_int_equal(results[2].wait_ms, 70);
    sg_ratelimit_format_state(&results[2], 1, current, sizeof(current));
    assert_string_equal(current, "\"registry-writes\";r=0;t=1");
    assert_int_equal(sg_ratelimit_retry_after_s(results, 3), 1);

    /* Truncation: the length it needs and a NUL-terminated prefix. */
    char small[8];
    assert_int_equal(sg_ratelimit_format_policy(results, 1, small, sizeof(small)), strlen("\"per-user\";q=50;w=1"));
    assert_string_equal(small, "\"per-us");
    sg_ratelimit_destroy(limiter);
    sg_conf_destroy(conf);

    /* Names are sf-strings: quotes and backslashes escaped. */
    sg_rate_policy_t odd = {.name = "a\"b\\c", .count = 1, .period_ms = 3600000, .burst = 2};
    limiter = sg_ratelimit_create(&odd, 1, 64, err, sizeof(err));
    sg_ratelimit_take(limiter, 0, "x", 1, sg_mono_us(), &results[0]);
    sg_ratelimit_format_policy(results, 1, policy, sizeof(policy));
    assert_string_equal(policy, "\"a\\\"b\\\\c\";q=1;w=3600");
    sg_ratelimit_format_state(results, 1, current, sizeof(current));
    assert_string_equal(current, "\"a\\\"b\\\\c\";r=1;t=3600");
    sg_ratelimit_destroy(limiter);

    /* With the registry limit off there is no registry policy. */
    text = "limits: {registry_write_rate: off}\n";
    conf = sg_conf_load_string("t.yaml", text, strlen(text), err, sizeof(err));
    limiter = sg_ratelimit_create_from_conf(conf, 64, err, sizeof(err));
    assert_int_equal(sg_ratelimit_registry_policy(limiter), -1);
    sg_ratelimit_destroy(limiter);
    sg_conf_destroy(conf);
}

static void test_invalid_policies(void **state)
{
    char err[256];
    sg_rate_policy_t bad[] = {
        {.name = "zero", .count = 0, .period_ms = 1000, .burst = 1},
        {.name = "no-burst", .count = 1, .period_ms = 1000, .burst = 0},
        {.name = "half-second", .count = 1, .period_ms = 500, .burst = 1},
        {.name = "too-deep", .count = 1, .period_ms = 3600000, .burst = 100000000},
    };
    for (size_t i = 0; i < SG_ARRAY_SIZE(bad); i++) {
        assert_null(sg_ratelimit_create(&bad[i], 1, 64, err, sizeof(err)));
        assert_non_null(strstr(err, bad[i].name));
    }
    sg_ratelimit_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refusal), cmocka_unit_test(test_slow_rates), cmocka_unit_test(test_rate_with_two_threads),
        cmocka_unit_test(test_eviction_bounded),   cmocka_unit_test(test_headers),    cmocka_unit_test(test_invalid_policies),
    };
    return cmocka_run_group_tests_name("gateway-ratelimit", tests, NULL, NULL);
}
