/*
 * Static files (config `static`): H2O's file handler behind the routes and built-ins. MIME types,
 * ETag/304 and Range come from H2O; what streamgate adds is the order (a route or a reserved
 * prefix wins over a file), problem+json for every error, no directory listing, and no way out
 * of the directory (dot segments, raw or percent-encoded).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"

static sg_test_proc_t gw;
static char site[256]; /* temp dir: secret.txt, and www/ (the served directory) */

static const char index_html[] = "<!doctype html><title>streamgate static test</title><p>hello</p>\n";
static const char app_js[] = "export const answer = 42;\n";

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int setup(void **state)
{
    snprintf(site, sizeof(site), "/tmp/sg-static.XXXXXX");
    if (mkdtemp(site) == NULL)
        return -1;
    char www[300], sub[320];
    snprintf(www, sizeof(www), "%s/www", site);
    snprintf(sub, sizeof(sub), "%s/www/sub", site);
    if (mkdir(www, 0755) != 0 || mkdir(sub, 0755) != 0)
        return -1;
    write_file(site, "secret.txt", "outside the served directory\n");
    write_file(www, "index.html", index_html);
    write_file(www, "app.js", app_js);
    write_file(www, "orders", "a file named like the route\n");
    write_file(www, "healthz", "a file named like a built-in\n");
    write_file(sub, "listed.txt", "a file in a directory without index.html\n");
    char config[2048];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\n"
             "threads: 1\n"
             "data_dir: @DIR@/data\n"
             "topics: [{name: st.orders, partitions: 1}]\n"
             "routes:\n"
             "  - {name: place-order, method: POST, path: /orders, topic: st.orders}\n"
             "static: [{path: /, dir: \"%s\"}]\n",
             www);
    return sg_test_gateway_start(&gw, config);
}

static int teardown(void **state)
{
    int rc = sg_test_stop_procs(&gw, NULL);
    char command[300];
    snprintf(command, sizeof(command), "rm -rf '%s'", site);
    if (system(command) != 0)
        rc = -1;
    return rc;
}

static void get(const char *path, const char *headers, sg_test_response_t *res)
{
    assert_int_equal(sg_test_http(&gw, "GET", path, headers, NULL, 0, res), 0);
}

/* A request line sent as is (the client helper might not keep odd paths intact). */
static void get_raw(const char *path, sg_test_response_t *res)
{
    char raw[512];
    int n = snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);
    assert_int_equal(sg_test_http_raw(&gw, raw, (size_t)n, res), 0);
}

static void test_files_with_mime_types(void **state)
{
    sg_test_response_t res;
    char buf[256];
    get("/", NULL, &res); /* the directory's index.html */
    assert_int_equal(res.status, 200);
    assert_string_equal(sg_test_header(&res, "content-type", buf, sizeof(buf)), "text/html");
    assert_int_equal(res.body_len, strlen(index_html));
    assert_memory_equal(res.body, index_html, res.body_len);
    sg_test_response_free(&res);

    get("/app.js", NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(sg_test_header(&res, "content-type", buf, sizeof(buf)), "application/javascript");
    assert_int_equal(res.body_len, strlen(app_js));
    assert_non_null(sg_test_header(&res, "etag", buf, sizeof(buf)));
    assert_non_null(sg_test_header(&res, "last-modified", buf, sizeof(buf)));
    sg_test_response_free(&res);
}

static void test_etag_304(void **state)
{
    sg_test_response_t res;
    char etag[128], headers[256];
    get("/index.html", NULL, &res);
    assert_int_equal(res.status, 200);
    assert_non_null(sg_test_header(&res, "etag", etag, sizeof(etag)));
    sg_test_response_free(&res);

    snprintf(headers, sizeof(headers), "If-None-Match: %s\r\n", etag);
    get("/index.html", headers, &res);
    assert_int_equal(res.status, 304);
    assert_int_equal(res.body_len, 0);
    sg_test_response_free(&res);

    get("/index.html", "If-None-Match: \"not-the-etag\"\r\n", &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body_len, strlen(index_html));
    sg_test_response_free(&res);
}

static void test_range(void **state)
{
    sg_test_response_t res;
    char buf[128], expected[64];
    get("/index.html", "Range: bytes=2-10\r\n", &res);
    assert_int_equal(res.status, 206);
    assert_int_equal(res.body_len, 9);
    assert_memory_equal(res.body, index_html + 2, 9);
    snprintf(expected, sizeof(expected), "bytes 2-10/%zu", strlen(index_html));
    assert_string_equal(sg_test_header(&res, "content-range", buf, sizeof(buf)), expected);
    sg_test_response_free(&res);

    get("/index.html", "Range: bytes=100000-\r\n", &res); /* past the end */
    sg_test_assert_problem(&res, 416, "range-not-satisfiable", NULL);
    snprintf(expected, sizeof(expected), "bytes */%zu", strlen(index_html));
    assert_string_equal(sg_test_header(&res, "content-range", buf, sizeof(buf)), expected);
    sg_test_response_free(&res);
}

static void test_no_escape_from_the_directory(void **state)
{
    /* secret.txt is one level above the served directory: no spelling of ".." reaches it */
    const char *paths[] = {"/../secret.txt",       "/sub/../../secret.txt",         "/%2e%2e/secret.txt",
                           "/%2E%2E/secret.txt",   "/sub/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt",
                           "/%2e%2e%2fsecret.txt", "/sub/..%2f..%2fsecret.txt"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); ++i) {
        sg_test_response_t res;
        get_raw(paths[i], &res);
        if (res.status != 404 && res.status != 400)
            fail_msg("%s: status %d, body %.*s", paths[i], res.status, (int)res.body_len, res.body);
        assert_null(strstr(res.body != NULL ? res.body : "", "outside the served directory"));
        sg_test_assert_problem(&res, res.status, res.status == 404 ? "not-found" : "invalid-path", NULL);
        sg_test_response_free(&res);
    }
    /* and a dot segment that stays inside is just the file it names */
    sg_test_response_t res;
    get_raw("/sub/../app.js", &res);
    assert_int_equal(res.status, 200);
    assert_memory_equal(res.body, app_js, strlen(app_js));
    sg_test_response_free(&res);
}

static void test_no_directory_listing(void **state)
{
    sg_test_response_t res;
    get("/sub/", NULL, &res);
    sg_test_assert_problem(&res, 404, "not-found", NULL);
    assert_null(strstr(res.body, "listed.txt"));
    sg_test_response_free(&res);

    get("/sub/listed.txt", NULL, &res); /* the file itself is served */
    assert_int_equal(res.status, 200);
    sg_test_response_free(&res);
}

static void test_missing_file_and_wrong_method(void **state)
{
    sg_test_response_t res;
    char buf[64];
    get("/no-such-file.css", NULL, &res);
    sg_test_assert_problem(&res, 404, "not-found", NULL);
    sg_test_response_free(&res);

    /* no route has the path, a file does: H2O's 405 for a POST, as problem+json */
    assert_int_equal(sg_test_post_json(&gw, "/app.js", NULL, "{}", &res), 0);
    sg_test_assert_problem(&res, 405, "method-not-allowed", NULL);
    assert_string_equal(sg_test_header(&res, "allow", buf, sizeof(buf)), "GET, HEAD");
    sg_test_response_free(&res);
}

static void test_routes_and_builtins_win(void **state)
{
    sg_test_response_t res;
    char buf[64];
    /* www/orders exists, but POST /orders is a route: GET there is its 405, not the file */
    get("/orders", NULL, &res);
    sg_test_assert_problem(&res, 405, "method-not-allowed", NULL);
    assert_string_equal(sg_test_header(&res, "allow", buf, sizeof(buf)), "POST, OPTIONS");
    sg_test_response_free(&res);

    assert_int_equal(sg_test_post_json(&gw, "/orders", NULL, "{\"n\":1}", &res), 0);
    assert_int_equal(res.status, 202);
    sg_test_response_free(&res);

    /* www/healthz exists, but /healthz is reserved */
    get("/healthz", NULL, &res);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "\"status\":\"ok\""));
    sg_test_response_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_with_mime_types),
        cmocka_unit_test(test_etag_304),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_no_escape_from_the_directory),
        cmocka_unit_test(test_no_directory_listing),
        cmocka_unit_test(test_missing_file_and_wrong_method),
        cmocka_unit_test(test_routes_and_builtins_win),
    };
    return cmocka_run_group_tests_name("integration-static", tests, setup, teardown);
}
