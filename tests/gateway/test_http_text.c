/*
 * Header texts: Prefer (respond-async, wait=N, lists and parameters), media types (JSON and
 * +json suffixes, parameters, case), a reply's :status (final or not, with content or not),
 * header names (tokens, framing names refused) and values that could split a response,
 * Idempotency-Key, reason phrases.
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

static void test_final_and_content(void **state)
{
    assert_false(sg_http_status_is_final(100));
    assert_false(sg_http_status_is_final(101));
    assert_false(sg_http_status_is_final(199));
    assert_true(sg_http_status_is_final(200));
    assert_true(sg_http_status_is_final(599));
    assert_false(sg_http_status_is_final(600));
    assert_false(sg_http_status_is_final(0));
    assert_true(sg_http_status_has_content(200));
    assert_true(sg_http_status_has_content(205));
    assert_false(sg_http_status_has_content(204));
    assert_false(sg_http_status_has_content(304));
    assert_false(sg_http_status_has_content(103));
}

static int name_ok(const char *name)
{
    return sg_http_header_name_ok(name, strlen(name));
}

static void test_header_names(void **state)
{
    assert_true(name_ok("x-foo"));
    assert_true(name_ok("X-Foo"));
    assert_true(name_ok("!#$%&'*+-.^_`|~09azAZ"));
    assert_false(name_ok(""));
    assert_false(name_ok("Bad Name"));
    assert_false(name_ok("x:y"));
    assert_false(name_ok(":status"));
    assert_false(name_ok("x\"y"));
    assert_false(name_ok("caf\xc3\xa9"));
    assert_false(sg_http_header_name_ok("a\0b", 3));
    assert_false(sg_http_header_name_ok(NULL, 0));
    /* the message's and the connection's framing belong to the server */
    assert_false(name_ok("Content-Length"));
    assert_false(name_ok("transfer-encoding"));
    assert_false(name_ok("Connection"));
    assert_false(name_ok("keep-alive"));
    assert_false(name_ok("Upgrade"));
    assert_false(name_ok("TE"));
    assert_false(name_ok("trailer"));
    assert_false(name_ok("proxy-connection"));
    assert_false(name_ok("host"));
    assert_true(name_ok("content-lengths"));
    char longest[SG_HTTP_MAX_HEADER_NAME + 2];
    memset(longest, 'a', sizeof(longest));
    assert_true(sg_http_header_name_ok(longest, SG_HTTP_MAX_HEADER_NAME));
    assert_false(sg_http_header_name_ok(longest, SG_HTTP_MAX_HEADER_NAME + 1));
    char lower[16];
    sg_http_lowercase("X-Foo_Bar", 9, lower);
    assert_string_equal(lower, "x-foo_bar");
    sg_http_lowercase("\xc3\x89"
                      "A",
                      3, lower);
    assert_string_equal(lower, "\xc3\x89"
                               "a"); /* bytes over 0x7f are left alone */
}

static int idem(const char *value, char *key)
{
    size_t start, len;
    if (sg_idempotency_key_parse(value, strlen(value), &start, &len) != 0)
        return -1;
    memcpy(key, value + start, len);
    key[len] = '\0';
    return 0;
}

static void test_idempotency_keys(void **state)
{
    char key[300];
    assert_int_equal(idem("abc-123", key), 0);
    assert_string_equal(key, "abc-123");
    assert_int_equal(idem("\"quoted\"", key), 0);
    assert_string_equal(key, "quoted");
    assert_int_equal(idem("\"", key), 0); /* a lone quote is a (strange) bare key */
    assert_string_equal(key, "\"");
    assert_int_equal(idem("", key), -1);
    assert_int_equal(idem("\"\"", key), -1);
    assert_int_equal(idem("a b", key), -1);
    assert_int_equal(idem("a\x7f", key), -1);
    assert_int_equal(idem("caf\xc3\xa9", key), -1);
    char longest[SG_IDEMPOTENCY_KEY_MAX + 2];
    memset(longest, 'k', sizeof(longest));
    longest[SG_IDEMPOTENCY_KEY_MAX] = '\0';
    assert_int_equal(idem(longest, key), 0);
    longest[SG_IDEMPOTENCY_KEY_MAX] = 'k';
    longest[SG_IDEMPOTENCY_KEY_MAX + 1] = '\0';
    assert_int_equal(idem(longest, key), -1);
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
        cmocka_unit_test(test_prefer),        cmocka_unit_test(test_media_types),      cmocka_unit_test(test_status),
        cmocka_unit_test(test_header_values), cmocka_unit_test(test_reasons),          cmocka_unit_test(test_final_and_content),
        cmocka_unit_test(test_header_names),  cmocka_unit_test(test_idempotency_keys),
    };
    return cmocka_run_group_tests_name("gateway-http-text", tests, NULL, NULL);
}
