/*
 * A TLS listener ({address, cert, key}): HTTP/2 negotiated by ALPN and HTTP/1.1, both carrying
 * a durable command. The certificate is made fresh by the openssl command line tool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static void test_https_h2_and_h1(void **state)
{
    char dir[] = "/tmp/sg-tls-XXXXXX", cert[256], key[256], out[4096];
    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    const char *gen[] = {"/usr/bin/openssl",
                         "req",
                         "-x509",
                         "-newkey",
                         "ec",
                         "-pkeyopt",
                         "ec_paramgen_curve:prime256v1",
                         "-nodes",
                         "-keyout",
                         key,
                         "-out",
                         cert,
                         "-days",
                         "1",
                         "-subj",
                         "/CN=127.0.0.1",
                         NULL};
    assert_int_equal(sg_test_run(gen, out, sizeof(out)), 0);

    char config[1024];
    snprintf(config, sizeof(config),
             "listen: [{address: \"127.0.0.1:0\", cert: \"%s\", key: \"%s\"}]\n"
             "data_dir: @DIR@/data\n"
             "topics: [{name: tls.commands, partitions: 1}]\n"
             "routes: [{name: t, method: POST, path: /t, topic: tls.commands}]\n",
             cert, key);
    sg_test_proc_t gw;
    assert_int_equal(sg_test_gateway_start_unready(&gw, config), 0);
    char url[128], ready_url[128];
    snprintf(url, sizeof(url), "https://%s:%u/t", gw.host, gw.port);
    snprintf(ready_url, sizeof(ready_url), "https://%s:%u/readyz", gw.host, gw.port);
    /* wait for readiness over TLS */
    for (int i = 0; i < 200; ++i) {
        const char *ready[] = {"/usr/bin/curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", ready_url, NULL};
        if (sg_test_run(ready, out, sizeof(out)) == 0 && strcmp(out, "200") == 0)
            break;
        sg_test_sleep_ms(50);
    }
    const char *h2[] = {"/usr/bin/curl",
                        "-sSk",
                        "--http2",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_version} %{http_code}",
                        "-H",
                        "Content-Type: application/json",
                        "--data",
                        "{\"a\":1}",
                        url,
                        NULL};
    assert_int_equal(sg_test_run(h2, out, sizeof(out)), 0);
    assert_string_equal(out, "2 202");
    const char *h1[] = {"/usr/bin/curl",
                        "-sSk",
                        "--http1.1",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_version} %{http_code}",
                        "-H",
                        "Content-Type: application/json",
                        "--data",
                        "{\"a\":2}",
                        url,
                        NULL};
    assert_int_equal(sg_test_run(h1, out, sizeof(out)), 0);
    assert_string_equal(out, "1.1 202");
    assert_int_equal(sg_test_topic_count(gw.bootstrap, "tls.commands"), 2);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

static void test_bad_certificate_fails_start(void **state)
{
    char out[4096];
    char *path = sg_test_write_temp("c.yaml", "listen: [{address: \"127.0.0.1:0\", cert: /nonexistent/cert.pem, "
                                              "key: /nonexistent/key.pem}]\ndata_dir: @DIR@/data\n");
    assert_non_null(path);
    const char *run[] = {sg_test_binary(), path, NULL};
    assert_int_equal(sg_test_run(run, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "/nonexistent/cert.pem"));
    sg_test_remove_temp(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_h2_and_h1),
        cmocka_unit_test(test_bad_certificate_fails_start),
    };
    return cmocka_run_group_tests_name("integration-tls", tests, NULL, NULL);
}
