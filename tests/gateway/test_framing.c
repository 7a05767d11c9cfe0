/*
 * HTTP/1 request heads whose body length two parties could read differently (framing.h): two
 * Content-Length values, Content-Length with Transfer-Encoding, and their disguises; heads that
 * break RFC 9112 where H2O is lenient (line folding, Host missing or twice); and heads that are
 * fine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "framing.h"

static sg_head_check_t check(const char *head, char *why)
{
    return sg_http1_head_check(head, strlen(head), why, 128);
}

static void test_accepted(void **state)
{
    char why[128];
    assert_int_equal(check("GET / HTTP/1.1\r\nHost: x\r\n\r\n", why), 0);
    assert_int_equal(check("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", why), 0);
    assert_int_equal(check("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\ncontent-length:5 \r\n\r\nhello", why), 0);
    assert_int_equal(check("POST /a HTTP/1.1\r\nHOST: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", why), 0);
    assert_int_equal(check("\r\n\r\nGET / HTTP/1.1\nHost: x\n\n", why), 0); /* leading CRLFs, bare LF */
    /* only the head counts: what looks like headers in the body is body */
    assert_int_equal(
        check("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\nContent-Length: 1\r\nTransfer-Encoding: x\r\n", why), 0);
    /* a head cut short is judged on its complete lines */
    assert_int_equal(check("GET / HTTP/1.1\r\nHost: x\r\nContent-Len", why), 0);
    assert_int_equal(check("GET / HTTP/1.1\r\nX: y\r\n", why), 0); /* cut short: Host may still come */
    assert_int_equal(check("", why), 0);
    assert_int_equal(check("GET / HTTP/1.1", why), 0);
    assert_int_equal(check("GET / HTTP/1.0\r\n\r\n", why), 0); /* HTTP/1.0 needs no Host */
}

static void assert_refused(const char *head, sg_head_check_t kind, const char *reason)
{
    char why[128] = "";
    assert_int_equal(check(head, why), kind);
    assert_string_equal(why, reason);
}

static void test_refused(void **state)
{
    const sg_head_check_t framing = SG_HEAD_AMBIGUOUS_FRAMING, invalid = SG_HEAD_INVALID;
    assert_refused("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", framing,
                   "two different Content-Length values");
    assert_refused("POST /a HTTP/1.1\r\nCONTENT-LENGTH: 5\r\nx: y\r\ncontent-length: 05x\r\n\r\n", framing,
                   "Content-Length is not a number");
    assert_refused("POST /a HTTP/1.1\r\nContent-Length: \r\n\r\n", framing, "Content-Length is not a number");
    assert_refused("POST /a HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", framing, "Content-Length is not a number");
    assert_refused("POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n", framing, "Content-Length is not a number");
    assert_refused("POST /a HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n", framing, "Content-Length is not a number");
    assert_refused("POST /a HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", framing,
                   "both Content-Length and Transfer-Encoding");
    assert_refused("POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n", framing,
                   "both Content-Length and Transfer-Encoding");
    assert_refused("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", framing,
                   "Transfer-Encoding is given more than once");
    /* bare LF lines are lines too */
    assert_refused("POST /a HTTP/1.1\nContent-Length: 5\nTransfer-Encoding: chunked\n\n", framing,
                   "both Content-Length and Transfer-Encoding");
    assert_refused("POST /a HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", invalid, "obsolete line folding in the request head");
    assert_refused("POST /a HTTP/1.1\r\nContent-Length : 5\r\n\r\n", invalid, "white space between a header name and its colon");
    assert_refused("POST /a HTTP/1.1\r\nno colon here\r\n\r\n", invalid, "a header line without a colon");
    assert_refused("POST /a HTTP/1.1\r\n: empty name\r\n\r\n", invalid, "white space between a header name and its colon");
    assert_refused("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", invalid, "Host is given more than once");
    assert_refused("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", invalid, "Host is given more than once");
    assert_refused("GET / HTTP/1.1\r\nX: y\r\n\r\n", invalid, "an HTTP/1.1 request without Host");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests_name("gateway-framing", tests, NULL, NULL);
}
