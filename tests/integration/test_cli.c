/*
 * The command line as a user meets it: --help, --version, --check with good and bad configs,
 * and usage errors, each with its exit code and message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static char out[65536];

static void write_config(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_help_and_version(void **state)
{
    const char *help[] = {sg_test_binary(), "--help", NULL};
    assert_int_equal(sg_test_run(help, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "usage: streamgate CONFIG"));
    assert_non_null(strstr(out, "streamgate cluster"));
    const char *version[] = {sg_test_binary(), "--version", NULL};
    assert_int_equal(sg_test_run(version, out, sizeof(out)), 0);
    assert_memory_equal(out, "streamgate ", 11);
    assert_true(out[11] >= '0' && out[11] <= '9');
    const char *reference[] = {sg_test_binary(), "--config-reference", NULL};
    assert_int_equal(sg_test_run(reference, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "limits.body_bytes"));
}

static void test_usage_errors(void **state)
{
    const char *none[] = {sg_test_binary(), NULL};
    assert_int_equal(sg_test_run(none, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "usage:"));
    const char *unknown[] = {sg_test_binary(), "--frobnicate", NULL};
    assert_int_equal(sg_test_run(unknown, out, sizeof(out)), 2);
    const char *brokers[] = {sg_test_binary(), "cluster", "--brokers", "0", NULL};
    assert_int_equal(sg_test_run(brokers, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "--brokers must be 1..16"));
    const char *placement[] = {sg_test_binary(), "cluster", "--leader", "t:0", NULL};
    assert_int_equal(sg_test_run(placement, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "--leader expects TOPIC:PARTITION:BROKER"));
    const char *rtt[] = {sg_test_binary(), "cluster", "--rtt", "1:-5", NULL};
    assert_int_equal(sg_test_run(rtt, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "--rtt expects BROKER:MS"));
    const char *topic[] = {sg_test_binary(), "cluster", "--topic", "t:zero", NULL};
    assert_int_equal(sg_test_run(topic, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "NAME:PARTITIONS"));
    const char *missing[] = {sg_test_binary(), "--check", "/nonexistent/streamgate.yaml", NULL};
    assert_int_equal(sg_test_run(missing, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "/nonexistent/streamgate.yaml"));
}

static void test_check_good_and_bad_config(void **state)
{
    char dir[] = "/tmp/sg-cli-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char good[512], bad[512];
    snprintf(good, sizeof(good), "%s/good.yaml", dir);
    snprintf(bad, sizeof(bad), "%s/bad.yaml", dir);
    write_config(good, "routes:\n  - {name: a, method: POST, path: /a, topic: t}\n");
    write_config(bad, "routes:\n"
                      "  - name: a\n"
                      "    method: POST\n"
                      "    path: /a\n"
                      "    topic: t\n"
                      "    colour: blue\n");
    const char *check_good[] = {sg_test_binary(), "--check", good, NULL};
    assert_int_equal(sg_test_run(check_good, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "ok"));
    const char *check_bad[] = {sg_test_binary(), "--check", bad, NULL};
    assert_int_equal(sg_test_run(check_bad, out, sizeof(out)), 2);
    char want[600];
    snprintf(want, sizeof(want), "%s:6: routes[0].colour", bad);
    if (strstr(out, want) == NULL)
        fprintf(stderr, "got: %s\n", out);
    assert_non_null(strstr(out, want));
    /* running the gateway on a bad config fails the same way, before starting anything */
    const char *run_bad[] = {sg_test_binary(), bad, NULL};
    assert_int_equal(sg_test_run(run_bad, out, sizeof(out)), 2);
    assert_non_null(strstr(out, want));
    unlink(good);
    unlink(bad);
    rmdir(dir);
}

static void test_bad_kafka_property_fails_start(void **state)
{
    char *path = sg_test_write_temp("kafka.yaml", "data_dir: @DIR@/data\nkafka: {properties: {no.such.property: 1}}\n");
    assert_non_null(path);
    const char *run[] = {sg_test_binary(), path, NULL};
    assert_int_equal(sg_test_run(run, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "kafka.properties: no.such.property"));
    sg_test_remove_temp(path);
}

static void test_demo_config_is_valid(void **state)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/config/demo.yaml", getenv("SG_SOURCE_ROOT") ? getenv("SG_SOURCE_ROOT") : ".");
    const char *check[] = {sg_test_binary(), "--check", path, NULL};
    assert_int_equal(sg_test_run(check, out, sizeof(out)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version),          cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_check_good_and_bad_config), cmocka_unit_test(test_bad_kafka_property_fails_start),
        cmocka_unit_test(test_demo_config_is_valid),
    };
    return cmocka_run_group_tests_name("integration-cli", tests, NULL, NULL);
}
