/*
 * Route lookup: exact and parameterised matches, literal-over-parameter precedence, 404 vs 405
 * with the Allow list, and bad percent-encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "router.h"

static sg_route_conf_t routes[] = {
    {.name = "create", .method = "POST", .path = "/orders"},
    {.name = "get-one", .method = "PUT", .path = "/orders/{id}"},
    {.name = "delete-one", .method = "DELETE", .path = "/orders/{order}"},
    {.name = "new", .method = "POST", .path = "/orders/new"},
    {.name = "item", .method = "PATCH", .path = "/orders/{id}/items/{item}"},
    {.name = "root", .method = "POST", .path = "/"},
};
static sg_conf_t conf = {.routes = routes, .n_routes = sizeof(routes) / sizeof(routes[0])};

static sg_router_status_t lookup(const sg_router_t *router, const char *method, const char *path, sg_router_result_t *result)
{
    return sg_router_lookup(router, method, strlen(method), path, strlen(path), result);
}

/* Adds an entry that must parse. */
static void add_ok(sg_router_t *router, const char *method, const char *tmpl, size_t index, int is_query)
{
    char err[256];
    assert_int_equal(sg_router_add(router, method, tmpl, index, is_query, err, sizeof(err)), 0);
}

static void test_exact_and_params(void **state)
{
    char err[256];
    sg_router_t *router = sg_router_create(&conf, err, sizeof(err));
    assert_non_null(router);
    sg_router_result_t result;

    assert_int_equal(lookup(router, "POST", "/orders", &result), SG_ROUTER_FOUND);
    assert_int_equal(result.route, 0);
    assert_int_equal(result.match.n_params, 0);
    sg_path_match_dispose(&result.match);

    assert_int_equal(lookup(router, "PUT", "/orders/a%2Fb", &result), SG_ROUTER_FOUND);
    assert_int_equal(result.route, 1);
    assert_string_equal(sg_path_match_get(&result.match, "id")->value, "a/b");
    sg_path_match_dispose(&result.match);

    /* same shape, other method, other parameter name */
    assert_int_equal(lookup(router, "DELETE", "/orders/77", &result), SG_ROUTER_FOUND);
    assert_int_equal(result.route, 2);
    assert_string_equal(sg_path_match_get(&result.match, "order")->value, "77");
    assert_null(sg_path_match_get(&result.match, "id"));
    sg_path_match_dispose(&result.match);

    assert_int_equal(lookup(router, "PATCH", "/orders/9/items/3", &result), SG_ROUTER_FOUND);
    assert_int_equal(result.route, 4);
    assert_string_equal(sg_path_match_get(&result.match, "id")->value, "9");
    assert_string_equal(sg_path_match_get(&result.match, "item")->value, "3");
    sg_path_match_dispose(&result.match);

    assert_int_equal(lookup(router, "POST", "/", &result), SG_ROUTER_FOUND);
    assert_int_equal(result.route, 5);
    sg_path_match_dispose(&result.match);
    sg_router_destroy(router);
}

static void test_literal_beats_parameter(void **state)
{
    char err[256];
    sg_router_t *router = sg_router_create(&conf, err, sizeof(err));
    sg_router_result_t result;
    assert_int_equal(lookup(router, "POST", "/orders/new", &result), SG_ROUTER_FOUND);
    assert_int_equal(result.route, 3);
    sg_path_match_dispose(&result.match);
    /* /orders/new is only POST: PUT there is a 405, not a match of /orders/{id} */
    assert_int_equal(lookup(router, "PUT", "/orders/new", &result), SG_ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(result.allow, "POST, OPTIONS");
    sg_router_destroy(router);
}

static void test_not_found_and_not_allowed(void **state)
{
    char err[256];
    sg_router_t *router = sg_router_create(&conf, err, sizeof(err));
    sg_router_result_t result;
    assert_int_equal(lookup(router, "POST", "/order", &result), SG_ROUTER_NOT_FOUND);
    assert_int_equal(lookup(router, "POST", "/orders/", &result), SG_ROUTER_NOT_FOUND);
    assert_int_equal(lookup(router, "POST", "/orders/1/items", &result), SG_ROUTER_NOT_FOUND);
    assert_int_equal(lookup(router, "POST", "/orders/1/items/2/x", &result), SG_ROUTER_NOT_FOUND);
    assert_int_equal(lookup(router, "GET", "/orders", &result), SG_ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(result.allow, "POST, OPTIONS");
    assert_int_equal(lookup(router, "GET", "/orders/5", &result), SG_ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(result.allow, "PUT, DELETE, OPTIONS");
    assert_int_equal(lookup(router, "OPTIONS", "/orders/5", &result), SG_ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(result.allow, "PUT, DELETE, OPTIONS");
    /* method comparison is exact (HTTP methods are case-sensitive) */
    assert_int_equal(lookup(router, "post", "/orders", &result), SG_ROUTER_METHOD_NOT_ALLOWED);
    sg_router_destroy(router);
}

static void test_bad_encoding(void **state)
{
    char err[256];
    sg_router_t *router = sg_router_create(&conf, err, sizeof(err));
    sg_router_result_t result;
    assert_int_equal(lookup(router, "PUT", "/orders/%G1", &result), SG_ROUTER_BAD_PATH);
    assert_int_equal(lookup(router, "PUT", "/orders/%", &result), SG_ROUTER_BAD_PATH);
    assert_int_equal(lookup(router, "PUT", "/orders/a%00", &result), SG_ROUTER_BAD_PATH);
    sg_router_destroy(router);
}

/* A second router made entry by entry (as /registry's): indexes as given, no OPTIONS in Allow. */
static void test_entries_without_options(void **state)
{
    char err[256];
    sg_router_t *router = sg_router_create_empty(0);
    add_ok(router, "GET", "/r/subjects", 7, 0);
    add_ok(router, "HEAD", "/r/subjects", 7, 0);
    add_ok(router, "POST", "/r/subjects/{subject}/versions", 8, 0);
    add_ok(router, "GET", "/r/subjects/{subject}/versions", 9, 0);
    assert_int_equal(sg_router_add(router, "GET", "/r/{", 1, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'{'"));
    sg_router_result_t result;
    assert_int_equal(lookup(router, "HEAD", "/r/subjects", &result), SG_ROUTER_FOUND);
    assert_int_equal(result.route, 7);
    assert_int_equal(result.is_query, 0);
    assert_string_equal(result.allow, "GET, HEAD");
    sg_path_match_dispose(&result.match);
    assert_int_equal(lookup(router, "POST", "/r/subjects/a%2Eb/versions", &result), SG_ROUTER_FOUND);
    assert_int_equal(result.route, 8);
    assert_string_equal(sg_path_match_get(&result.match, "subject")->value, "a.b");
    sg_path_match_dispose(&result.match);
    assert_int_equal(lookup(router, "GET", "/r/subjects/s/versions", &result), SG_ROUTER_FOUND);
    assert_int_equal(result.route, 9);
    sg_path_match_dispose(&result.match);
    assert_int_equal(lookup(router, "DELETE", "/r/subjects/s/versions", &result), SG_ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(result.allow, "POST, GET");
    assert_int_equal(lookup(router, "GET", "/r/subjects/s", &result), SG_ROUTER_NOT_FOUND);
    sg_router_destroy(router);
}

/* Allow lists are made as routes are added: shapes interleaved, a method twice in one shape
 * (listed once), a method that ends another's name (listed too), and a list longer than
 * SG_ROUTER_ALLOW_BYTES cut as before (at a byte, not at a method). */
static void test_allow_lists_per_shape(void **state)
{
    static const char *const methods[] = {"PROPFIND", "PROPPATCH",       "MKCOL",  "COPY",     "MOVE",    "LOCK",
                                          "UNLOCK",   "VERSION-CONTROL", "REPORT", "CHECKOUT", "CHECKIN", "UNCHECKOUT"};
    sg_router_t *router = sg_router_create_empty(1);
    add_ok(router, "GET", "/a/{x}", 0, 1);
    add_ok(router, "POST", "/b", 1, 0);
    add_ok(router, "PUT", "/a/{y}", 2, 0);
    add_ok(router, "GET", "/a/{z}", 3, 0);
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); ++i)
        add_ok(router, methods[i], "/long/{id}", 10 + i, 0);
    sg_router_result_t result;
    assert_int_equal(lookup(router, "GET", "/a/1", &result), SG_ROUTER_FOUND);
    assert_int_equal(result.route, 3); /* the last of the shape with the method */
    assert_int_equal(result.is_query, 0);
    assert_string_equal(result.allow, "GET, PUT, OPTIONS");
    sg_path_match_dispose(&result.match);
    assert_int_equal(lookup(router, "DELETE", "/a/1", &result), SG_ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(result.allow, "GET, PUT, OPTIONS");
    assert_int_equal(lookup(router, "GET", "/b", &result), SG_ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(result.allow, "POST, OPTIONS");
    assert_int_equal(lookup(router, "GET", "/long/1", &result), SG_ROUTER_METHOD_NOT_ALLOWED);
    assert_int_equal(strlen(result.allow), SG_ROUTER_ALLOW_BYTES - 1);
    assert_string_equal(result.allow,
                        "PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK, VERSION-CONTROL, REPORT, CHECKOUT, CHECKI");
    assert_int_equal(lookup(router, "UNCHECKOUT", "/long/1", &result), SG_ROUTER_FOUND);
    assert_int_equal(result.route, 21);
    sg_path_match_dispose(&result.match);
    /* a method whose name ends another's is listed too: whole words are compared */
    add_ok(router, "UNCHECKOUT", "/w", 30, 0);
    add_ok(router, "CHECKOUT", "/w", 31, 0);
    assert_int_equal(lookup(router, "GET", "/w", &result), SG_ROUTER_METHOD_NOT_ALLOWED);
    assert_string_equal(result.allow, "UNCHECKOUT, CHECKOUT, OPTIONS");
    /* a list cut right after a comma (8 methods of 10 bytes: 94, then "," of the ninth's ", "):
     * the next method's look-up stops at the cut (it read past the buffer before) */
    static const char *const tens[] = {"METHOD-AA1", "METHOD-AA2", "METHOD-AA3", "METHOD-AA4",
                                       "METHOD-AA5", "METHOD-AA6", "METHOD-AA7", "METHOD-AA8"};
    for (size_t i = 0; i < sizeof(tens) / sizeof(tens[0]); ++i)
        add_ok(router, tens[i], "/cut", 40 + i, 0);
    add_ok(router, "GET", "/cut", 50, 0);
    add_ok(router, "PUT", "/cut", 51, 0);
    assert_int_equal(lookup(router, "DELETE", "/cut", &result), SG_ROUTER_METHOD_NOT_ALLOWED);
    assert_int_equal(strlen(result.allow), SG_ROUTER_ALLOW_BYTES - 1);
    assert_string_equal(result.allow + SG_ROUTER_ALLOW_BYTES - 3, "8,");
    sg_router_destroy(router);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_and_params),          cmocka_unit_test(test_literal_beats_parameter),
        cmocka_unit_test(test_not_found_and_not_allowed), cmocka_unit_test(test_bad_encoding),
        cmocka_unit_test(test_entries_without_options),   cmocka_unit_test(test_allow_lists_per_shape),
    };
    return cmocka_run_group_tests_name("gateway-router", tests, NULL, NULL);
}
