/*
 * Header texts: Prefer (respond-async, wait=N, lists and parameters), media types (JSON and
 * +json suffixes, parameters, case), a reply's :status, header values that could split a
 * response, reason phrases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http_text.h"

static void prefer(const char *value, int *async, int64_t *wait_ms)
{
    *async = 0;
    *wait_ms = -1;
    sg_prefer_parse(value, strlen(value), async, wait_ms);
}

static void test_prefer(void **state)
{
    int async;
    int64_t wait_ms;
    prefer("respond-async", &async, &wait_ms);
    assert_int_equal(async, 1);
    assert_int_equal(wait_ms, -1);
    prefer("wait=5", &async, &wait_ms);
    assert_int_equal(async, 0);
    assert_int_equal(wait_ms, 5000);
    prefer("Respond-Async, WAIT=0", &async, &wait_ms);
    assert_int_equal(async, 1);
    assert_int_equal(wait_ms, 0);
    prefer(" handling=lenient,\trespond-async; foo=bar , wait=12;x", &async, &wait_ms);
    assert_int_equal(async, 1);
    assert_int_equal(wait_ms, 12000);
    /* not a number, negative, empty: ignored */
    prefer("wait=abc, wait=-1, wait=, wait=3s", &async, &wait_ms);
    assert_int_equal(wait_ms, -1);
    /* huge values stop growing instead of overflowing */
    prefer("wait=99999999999999999999", &async, &wait_ms);
    assert_int_equal(wait_ms, -1);
    prefer("respond-asynchronously", &async, &wait_ms);
    assert_int_equal(async, 0);
    prefer("", &async, &wait_ms);
    assert_int_equal(async, 0);
    assert_int_equal(wait_ms, -1);
}

static int json(const char *type)
{
    return sg_media_type_is_json(type, strlen(type));
}

static void test_media_types(void **state)
{
    assert_true(json("application/json"));
    assert_true(json("Application/JSON; charset=utf-8"));
    assert_true(json("application/json ;charset=utf-8"));
    assert_true(json("application/problem+json"));
    assert_true(json("application/vnd.acme.order+JSON"));
    assert_false(json("application/+json")); /* no subtype before the suffix */
    assert_false(json("text/json"));
    assert_false(json("application/jsonx"));
    assert_false(json("application/json5"));
    assert_false(json(""));
    assert_false(sg_media_type_is_json(NULL, 0));
    assert_true(sg_media_type_is("application/octet-stream; x=1", 29, "application/octet-stream"));
    assert_true(sg_media_type_is("Application/Vnd.SchemaRegistry.v1+JSON", 38, "application/vnd.schemaregistry.v1+json"));
    assert_false(sg_media_type_is("application/json", 16, "application/jso"));
    assert_false(sg_media_type_is(NULL, 0, "application/json"));
}

static void test_status(void **state)
{
    assert_int_equal(sg_http_status_parse("201", 3), 201);
    assert_int_equal(sg_http_status_parse("100", 3), 100);
    assert_int_equal(sg_http_status_parse("599", 3), 599);
    assert_int_equal(sg_http_status_parse("099", 3), 0);
    assert_int_equal(sg_http_status_parse("600", 3), 0);
    assert_int_equal(sg_http_status_parse("20", 2), 0);
    assert_int_equal(sg_http_status_parse("2000", 4), 0);
    assert_int_equal(sg_http_status_parse("2a1", 3), 0);
    assert_int_equal(sg_http_status_parse(" 20", 3), 0);
    assert_int_equal(sg_http_status_parse(NULL, 3), 0);
}

static void test_header_values(void **state)
{
    assert_true(sg_http_header_value_ok("text/plain; a=b", 15));
    assert_true(sg_http_header_value_ok("", 0));
    assert_true(sg_http_header_value_ok("caf\xc3\xa9\t", 6));
    assert_false(sg_http_header_value_ok("a\r\nSet-Cookie: x", 16));
    assert_false(sg_http_header_value_ok("a\nb", 3));
    assert_false(sg_http_header_value_ok("a\0b", 3));
}

static void test_reasons(void **state)
{
    assert_string_equal(sg_http_reason(200), "OK");
    assert_string_equal(sg_http_reason(202), "Accepted");
    assert_string_equal(sg_http_reason(413), "Content Too Large");
    assert_string_equal(sg_http_reason(422), "Unprocessable Content");
    assert_string_equal(sg_http_reason(503), "Service Unavailable");
    assert_string_equal(sg_http_reason(299), "");
    assert_string_equal(sg_http_reason(-1), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefer),        cmocka_unit_test(test_media_types), cmocka_unit_test(test_status),
        cmocka_unit_test(test_header_values), cmocka_unit_test(test_reasons),
    };
    return cmocka_run_group_tests_name("gateway-http-text", tests, NULL, NULL);
}
