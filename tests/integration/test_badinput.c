/*
 * The bad-input matrix (issue 11): one gateway, and request after request that a hostile or broken
 * client could send: malformed HTTP/1, ambiguous framing, bad encodings and media types, sizes over
 * every limit, bad tokens, cursors and query strings, hostile headers and methods, and HTTP/2
 * frames that break the protocol. Each must get its specific 4xx (problem+json with its type where
 * the gateway answers; H2O's own 400 for a head it cannot parse) or, for broken framing, a closed
 * connection; never a 5xx, never a hang; /healthz answers after each; and nothing reaches Kafka
 * (the topics' record counts are unchanged at the end).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "harness.h"
#include "wire.h"

static const char config[] = "listen: [\"127.0.0.1:0\"]\n"
                             "threads: 2\n"
                             "data_dir: @DIR@/data\n"
                             "topics:\n"
                             "  - {name: bad.commands, partitions: 2}\n"
                             "  - {name: bad.rows, partitions: 1}\n"
                             "routes:\n"
                             "  - {name: create, method: POST, path: /things, topic: bad.commands, key: \"body:/id\"}\n"
                             "  - {name: replace, method: PUT, path: \"/things/{id}\", topic: bad.commands, key: \"path:id\"}\n"
                             "  - {name: tenant, method: POST, path: /tenant, topic: bad.commands, key: \"header:X-Tenant\"}\n"
                             "  - {name: row, method: PUT, path: \"/rows/{id}\", topic: bad.rows, key: \"path:id\"}\n"
                             "tables: [{name: rows, topic: bad.rows}]\n"
                             "queries: [{path: \"/profiles/{id}\", table: rows, key: \"path:id\"}]\n"
                             "limits: {body_bytes: 8KiB, header_bytes: 16KiB}\n";

static sg_test_proc_t gw;

static int setup(void **state)
{
    return sg_test_gateway_start(&gw, config);
}

static int teardown(void **state)
{
    return sg_test_proc_stop(&gw) == 0 ? 0 : -1;
}

#define CLOSED 0 /* expected: the connection closes (a 400 before it is fine) */
#define J "Content-Type: application/json\r\n"

typedef struct {
    const char *what;
    const char *request; /* exact bytes; "@" is replaced by "Host: x\r\nConnection: close\r\n" */
    int status;
    const char *type; /* problem type expected; NULL: not problem+json (H2O's own 400) or none */
} bad_case_t;

/* clang-format off */
static const bad_case_t cases[] = {
    /* malformed HTTP/1 */
    {"garbage instead of a request line", "GARBAGE\r\n\r\n", 400, NULL},
    {"request line without a version", "GET /healthz\r\n\r\n", 400, NULL},
    {"an unknown protocol version", "GET /healthz HTTP/3.7\r\n@\r\n", 400, NULL},
    {"HTTP/2 text as HTTP/1", "GET /healthz HTTP/2.0\r\n@\r\n", 400, NULL},
    {"header line without a colon", "GET /healthz HTTP/1.1\r\n@Bad header line\r\n\r\n", 400, NULL},
    {"space inside a header name", "GET /healthz HTTP/1.1\r\n@X Bad: 1\r\n\r\n", 400, NULL},
    {"space before a header's colon", "GET /healthz HTTP/1.1\r\n@X-Bad : 1\r\n\r\n", 400, NULL},
    {"NUL in the request line", "GET /hea\0lthz HTTP/1.1\r\n@\r\n", 400, NULL},
    {"control byte in a header value", "GET /healthz HTTP/1.1\r\n@X-Bad: a\001b\r\n\r\n", 400, NULL},
    {"obsolete line folding", "GET /healthz HTTP/1.1\r\n@X-Folded: a\r\n b\r\n\r\n", 400, "bad-request"},
    {"HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "bad-request"},
    {"two Host headers", "GET /healthz HTTP/1.1\r\n@Host: y\r\n\r\n", 400, "bad-request"},
    /* framing */
    {"two different Content-Length", "POST /things HTTP/1.1\r\n@" J "Content-Length: 12\r\nContent-Length: 13\r\n\r\n{\"id\":\"a\"}xx ", 400, "invalid-framing"},
    {"Content-Length with chunked", "POST /things HTTP/1.1\r\n@" J "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nc\r\n{\"id\":\"abc\"}\r\n0\r\n\r\n", 400, "invalid-framing"},
    {"chunked twice", "POST /things HTTP/1.1\r\n@" J "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\nc\r\n{\"id\":\"abc\"}\r\n0\r\n\r\n", 400, "invalid-framing"},
    {"Transfer-Encoding gzip", "POST /things HTTP/1.1\r\n@" J "Transfer-Encoding: gzip\r\n\r\nxx", 400, "bad-request"},
    {"Transfer-Encoding gzip, chunked", "POST /things HTTP/1.1\r\n@" J "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, "bad-request"},
    {"broken chunk size", "POST /things HTTP/1.1\r\n@" J "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400, "bad-request"},
    {"negative Content-Length", "POST /things HTTP/1.1\r\n@" J "Content-Length: -1\r\n\r\n", 400, "bad-request"},
    {"Content-Length not a number", "POST /things HTTP/1.1\r\n@" J "Content-Length: 1e3\r\n\r\n", 400, "bad-request"},
    {"Content-Length list", "POST /things HTTP/1.1\r\n@" J "Content-Length: 12, 12\r\n\r\n{\"id\":\"abc\"}", 400, "bad-request"},
    {"Content-Length far over the limit", "POST /things HTTP/1.1\r\n@" J "Content-Length: 99999999999\r\n\r\n{", 413, "body-too-large"},
    {"unknown Expect", "POST /things HTTP/1.1\r\n@" J "Expect: 200-ok\r\nContent-Length: 12\r\n\r\n{\"id\":\"abc\"}", 417, "expectation-failed"},
    /* methods */
    {"method not allowed on a route", "DELETE /things HTTP/1.1\r\n@\r\n", 405, "method-not-allowed"},
    {"made-up method", "FROB /things HTTP/1.1\r\n@\r\n", 405, "method-not-allowed"},
    {"TRACE", "TRACE /things/1 HTTP/1.1\r\n@\r\n", 405, "method-not-allowed"},
    {"POST to /healthz", "POST /healthz HTTP/1.1\r\n@Content-Length: 0\r\n\r\n", 405, "method-not-allowed"},
    {"PUT to a table", "PUT /tables/rows/k HTTP/1.1\r\n@" J "Content-Length: 2\r\n\r\n{}", 405, "method-not-allowed"},
    {"GET on /requests with a body", "DELETE /requests/x HTTP/1.1\r\n@\r\n", 405, "method-not-allowed"},
    {"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\n@\r\n", 404, "not-found"},
    {"asterisk form", "OPTIONS * HTTP/1.1\r\n@\r\n", 404, "not-found"},
    {"absolute form to another host", "GET http://evil.example/things HTTP/1.1\r\n@\r\n", 404, "not-found"},
    /* paths */
    {"no such route", "GET /nope HTTP/1.1\r\n@\r\n", 404, "not-found"},
    {"bad percent-encoding in a parameter", "PUT /things/%zz HTTP/1.1\r\n@" J "Content-Length: 2\r\n\r\n{}", 400, "invalid-path"},
    {"%00 in a parameter", "PUT /things/a%00b HTTP/1.1\r\n@" J "Content-Length: 2\r\n\r\n{}", 400, "invalid-path"},
    {"dot segments into a reserved prefix", "GET /tables/../things HTTP/1.1\r\n@\r\n", 404, "unknown-table"},
    {"encoded reserved prefix", "GET /%74ables/rows/k HTTP/1.1\r\n@\r\n", 404, "not-found"},
    {"raw high bytes in the path", "GET /th\xff\xfeings HTTP/1.1\r\n@\r\n", 404, "not-found"},
    {"unknown table", "GET /tables/nope/k HTTP/1.1\r\n@\r\n", 404, "unknown-table"},
    {"bad percent-encoding in a row key", "GET /tables/rows/%zz HTTP/1.1\r\n@\r\n", 400, "invalid-key"},
    {"%00 in a row key", "GET /tables/rows/%00 HTTP/1.1\r\n@\r\n", 400, "invalid-key"},
    {"forged request id", "GET /requests/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\n@\r\n", 404, "unknown-request"},
    {"request id of the wrong length", "GET /requests/abc HTTP/1.1\r\n@\r\n", 404, "unknown-request"},
    {"bad registry subject", "GET /registry/subjects/bad%20subject/versions HTTP/1.1\r\n@\r\n", 422, "invalid-subject"},
    {"bad registry version", "GET /registry/subjects/s/versions/-7 HTTP/1.1\r\n@\r\n", 422, "invalid-version"},
    {"bad registry schema id", "GET /registry/schemas/ids/x1 HTTP/1.1\r\n@\r\n", 404, NULL},
    /* media types, encodings, bodies */
    {"text/plain body", "POST /things HTTP/1.1\r\n@Content-Type: text/plain\r\nContent-Length: 12\r\n\r\n{\"id\":\"abc\"}", 415, "unsupported-media-type"},
    {"no Content-Type", "POST /things HTTP/1.1\r\n@Content-Length: 12\r\n\r\n{\"id\":\"abc\"}", 415, "unsupported-media-type"},
    {"almost JSON media type", "POST /things HTTP/1.1\r\n@Content-Type: application/jsonx\r\nContent-Length: 12\r\n\r\n{\"id\":\"abc\"}", 415, "unsupported-media-type"},
    {"gzip Content-Encoding", "POST /things HTTP/1.1\r\n@" J "Content-Encoding: gzip\r\nContent-Length: 12\r\n\r\n{\"id\":\"abc\"}", 415, "unsupported-media-type"},
    {"malformed JSON", "POST /things HTTP/1.1\r\n@" J "Content-Length: 9\r\n\r\n{\"id\":\"ab", 400, "invalid-json"},
    {"empty body", "POST /things HTTP/1.1\r\n@" J "Content-Length: 0\r\n\r\n", 400, "invalid-json"},
    {"duplicate JSON keys", "POST /things HTTP/1.1\r\n@" J "Content-Length: 21\r\n\r\n{\"id\":\"a\",\"id\":\"b\"}  ", 400, "invalid-json"},
    {"invalid UTF-8 in JSON", "POST /things HTTP/1.1\r\n@" J "Content-Length: 11\r\n\r\n{\"id\":\"\xc3\x28\"}", 400, "invalid-json"},
    {"overlong UTF-8 in JSON", "POST /things HTTP/1.1\r\n@" J "Content-Length: 11\r\n\r\n{\"id\":\"\xc0\xaf\"}", 400, "invalid-json"},
    {"NUL escape in a key", "POST /things HTTP/1.1\r\n@" J "Content-Length: 15\r\n\r\n{\"id\":\"a\\u0000\"}", 400, "invalid-json"},
    {"lone surrogate escape", "POST /things HTTP/1.1\r\n@" J "Content-Length: 15\r\n\r\n{\"id\":\"\\ud800\"}", 400, "invalid-json"},
    {"missing key field", "POST /things HTTP/1.1\r\n@" J "Content-Length: 10\r\n\r\n{\"nid\":1} ", 400, "missing-key"},
    {"key field of the wrong type", "POST /things HTTP/1.1\r\n@" J "Content-Length: 11\r\n\r\n{\"id\":true}", 400, "invalid-key"},
    {"fractional key", "POST /things HTTP/1.1\r\n@" J "Content-Length: 10\r\n\r\n{\"id\":1.5}", 400, "invalid-key"},
    {"key header missing", "POST /tenant HTTP/1.1\r\n@" J "Content-Length: 2\r\n\r\n{}", 400, "missing-key"},
    {"key header empty", "POST /tenant HTTP/1.1\r\n@" J "X-Tenant: \r\nContent-Length: 2\r\n\r\n{}", 400, "missing-key"},
    {"body one byte over the limit", NULL, 413, "body-too-large"},
    {"chunked body over the limit", NULL, 413, "body-too-large"},
    {"JSON nested 5000 deep", NULL, 400, "invalid-json"},
    {"key field over 4096 bytes", NULL, 400, "invalid-key"},
    {"header section over the limit", NULL, 431, "headers-too-large"},
    {"more than 100 headers", NULL, 400, NULL},
    /* headers with values to refuse */
    {"empty Idempotency-Key", "POST /things HTTP/1.1\r\n@" J "Idempotency-Key: \"\"\r\nContent-Length: 12\r\n\r\n{\"id\":\"abc\"}", 400, "invalid-idempotency-key"},
    {"Idempotency-Key with a space", "POST /things HTTP/1.1\r\n@" J "Idempotency-Key: a b\r\nContent-Length: 12\r\n\r\n{\"id\":\"abc\"}", 400, "invalid-idempotency-key"},
    {"Idempotency-Key over 255 bytes", NULL, 400, "invalid-idempotency-key"},
    /* tokens, cursors, query strings */
    {"garbage Consistency-Token", "GET /tables/rows/k HTTP/1.1\r\n@Consistency-Token: !!!\r\n\r\n", 400, "invalid-consistency-token"},
    {"base64 but no token", "GET /tables/rows/k HTTP/1.1\r\n@Consistency-Token: AQAAAAAA\r\n\r\n", 400, "invalid-consistency-token"},
    {"garbage ?token=", "GET /tables/rows/k?token=zzz HTTP/1.1\r\n@\r\n", 400, "invalid-consistency-token"},
    {"token over 8 KiB", NULL, 400, "invalid-consistency-token"},
    {"garbage Last-Event-ID", "GET /tables/rows/k HTTP/1.1\r\n@Accept: text/event-stream\r\nLast-Event-ID: nope\r\n\r\n", 400, "invalid-consistency-token"},
    {"garbage cursor", "GET /tables/rows?cursor=AAAAAAAAAAAA HTTP/1.1\r\n@\r\n", 400, "invalid-cursor"},
    {"empty cursor", "GET /tables/rows?cursor= HTTP/1.1\r\n@\r\n", 400, "invalid-cursor"},
    {"cursor over the longest", NULL, 400, "invalid-cursor"},
    {"limit 0", "GET /tables/rows?limit=0 HTTP/1.1\r\n@\r\n", 400, "invalid-query"},
    {"limit not a number", "GET /tables/rows?limit=1e3 HTTP/1.1\r\n@\r\n", 400, "invalid-query"},
    {"limit over the maximum", "GET /tables/rows?limit=1000000 HTTP/1.1\r\n@\r\n", 400, "invalid-query"},
    {"unknown query parameter", "GET /tables/rows?prefx=a HTTP/1.1\r\n@\r\n", 400, "invalid-query"},
    {"repeated query parameter", "GET /tables/rows?prefix=a&prefix=b HTTP/1.1\r\n@\r\n", 400, "invalid-query"},
    {"prefix with from", "GET /tables/rows?prefix=a&from=b HTTP/1.1\r\n@\r\n", 400, "invalid-query"},
    {"fresh other than latest", "GET /tables/rows/k?fresh=soon HTTP/1.1\r\n@\r\n", 400, "invalid-query"},
    {"negative min_stream_time", "GET /tables/rows/k?min_stream_time=-5 HTTP/1.1\r\n@\r\n", 400, "invalid-query"},
    {"bad percent-encoding in a query value", "GET /tables/rows?prefix=%zz HTTP/1.1\r\n@\r\n", 400, "invalid-query"},
    {"%00 in a query value", "GET /tables/rows?from=a%00 HTTP/1.1\r\n@\r\n", 400, "invalid-query"},
    {"scan parameter on a row", "GET /tables/rows/k?limit=5 HTTP/1.1\r\n@\r\n", 400, "invalid-query"},
    {"scan parameter on a key query", "GET /profiles/k?cursor=x HTTP/1.1\r\n@\r\n", 400, "invalid-query"},
    /* CORS */
    {"preflight from an origin not allowed", "OPTIONS /things HTTP/1.1\r\n@Origin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\n\r\n", 403, "origin-not-allowed"},
};
/* clang-format on */

/* The requests too large to write out. */
static size_t build_large(const char *what, char *out, size_t cap)
{
    char *body = NULL;
    size_t body_len = 0;
    const char *head_extra = "";
    char *extra = NULL;
    int chunked = 0;
    if (strcmp(what, "body one byte over the limit") == 0) {
        body_len = 8 * 1024 + 1;
        body = malloc(body_len);
        memset(body, ' ', body_len);
        memcpy(body, "{\"id\":\"abc\"}", 12);
    } else if (strcmp(what, "chunked body over the limit") == 0) {
        body_len = 20000;
        body = malloc(body_len);
        memset(body, ' ', body_len);
        memcpy(body, "{\"id\":\"abc\"}", 12);
        chunked = 1;
    } else if (strcmp(what, "JSON nested 5000 deep") == 0) {
        body_len = 5000;
        body = malloc(body_len);
        memset(body, '[', body_len);
    } else if (strcmp(what, "key field over 4096 bytes") == 0) {
        body_len = 4200;
        body = malloc(body_len);
        memset(body, 'k', body_len);
        memcpy(body, "{\"id\":\"", 7);
        memcpy(body + body_len - 2, "\"}", 2);
    } else if (strcmp(what, "Idempotency-Key over 255 bytes") == 0) {
        extra = malloc(400);
        memset(extra, 'i', 400);
        memcpy(extra, "Idempotency-Key: ", 17);
        memcpy(extra + 300, "\r\n", 3);
        head_extra = extra;
        body = strdup("{\"id\":\"abc\"}");
        body_len = 12;
    } else if (strcmp(what, "header section over the limit") == 0) {
        extra = malloc(20000);
        memset(extra, 'h', 20000);
        memcpy(extra, "X-Big: ", 7);
        memcpy(extra + 17000, "\r\n", 3);
        head_extra = extra;
    } else if (strcmp(what, "more than 100 headers") == 0) {
        extra = malloc(120 * 16 + 1);
        size_t n = 0;
        for (int i = 0; i < 120; ++i)
            n += (size_t)sprintf(extra + n, "X-H%03d: v\r\n", i);
        head_extra = extra;
    } else if (strcmp(what, "token over 8 KiB") == 0 || strcmp(what, "cursor over the longest") == 0) {
        int cursor = what[0] == 'c';
        size_t len = cursor ? 6000 : 9000;
        extra = malloc(len + 64);
        strcpy(extra, cursor ? "" : "Consistency-Token: ");
        size_t at = strlen(extra);
        memset(extra + at, 'A', len);
        strcpy(extra + at + len, cursor ? "" : "\r\n");
        int n = cursor ? snprintf(out, cap, "GET /tables/rows?cursor=%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", extra)
                       : snprintf(out, cap, "GET /tables/rows/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n", extra);
        free(extra);
        return (size_t)n;
    } else {
        fail_msg("no request is built for: %s", what);
    }
    const char *method = body != NULL ? "POST /things" : "GET /healthz";
    size_t n = (size_t)snprintf(out, cap, "%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s", method, head_extra,
                                body != NULL ? J : "");
    if (body != NULL && chunked) {
        n += (size_t)snprintf(out + n, cap - n, "Transfer-Encoding: chunked\r\n\r\n%zx\r\n", body_len);
        memcpy(out + n, body, body_len);
        n += body_len;
        n += (size_t)snprintf(out + n, cap - n, "\r\n0\r\n\r\n");
    } else if (body != NULL) {
        n += (size_t)snprintf(out + n, cap - n, "Content-Length: %zu\r\n\r\n", body_len);
        memcpy(out + n, body, body_len);
        n += body_len;
    } else {
        n += (size_t)snprintf(out + n, cap - n, "\r\n");
    }
    free(body);
    free(extra);
    return n;
}

/* Copies request with "@" replaced by the Host and Connection lines; returns the length. */
static size_t expand(const char *request, size_t len, char *out, size_t cap)
{
    static const char host[] = "Host: x\r\nConnection: close\r\n";
    size_t n = 0;
    for (size_t i = 0; i < len && n + sizeof(host) < cap; ++i) {
        if (request[i] == '@') {
            memcpy(out + n, host, sizeof(host) - 1);
            n += sizeof(host) - 1;
        } else {
            out[n++] = request[i];
        }
    }
    return n;
}

/* The length of a case's request text: up to its final "\r\n\r\n" plus what follows that the
 * Content-Length or chunks announce; the literal strings hold NULs only in one case. */
static size_t literal_len(const bad_case_t *c)
{
    if (strcmp(c->what, "NUL in the request line") == 0)
        return sizeof("GET /hea\0lthz HTTP/1.1\r\n@\r\n") - 1;
    return strlen(c->request);
}

static int failures;

static void assert_healthy(const char *after)
{
    sg_test_response_t res;
    if (sg_test_http(&gw, "GET", "/healthz", NULL, NULL, 0, &res) != 0 || res.status != 200)
        fail_msg("/healthz does not answer 200 after: %s", after);
    sg_test_response_free(&res);
}

/* Every mismatch is reported, then the test fails. */
static void run_case(const bad_case_t *c, int *checked)
{
    static char request[65536], answer[65536];
    size_t len = c->request != NULL ? expand(c->request, literal_len(c), request, sizeof(request))
                                    : build_large(c->what, request, sizeof(request));
    int fd = wire_connect(&gw, 0);
    assert_true(fd >= 0);
    wire_send(fd, request, len); /* the gateway may close before it has read everything */
    int closed;
    wire_read(fd, 10000, answer, sizeof(answer), &closed);
    close(fd);
    int status = wire_status(answer);
    char type[64];
    wire_problem_type(answer, type, sizeof(type));
    int ok = c->status == CLOSED ? closed && (status == 0 || status == 400)
                                 : status == c->status && (c->type == NULL || strcmp(type, c->type) == 0);
    if (!ok || status >= 500 || !closed) {
        fprintf(stderr, "MISMATCH %s: expected %d %s, got %d %s (closed: %d)\n%.300s\n", c->what, c->status, c->type ? c->type : "",
                status, type, closed, answer);
        ++failures;
    }
    assert_healthy(c->what);
    ++*checked;
}

/* --- HTTP/2 ------------------------------------------------------------------------------------ */

/* What came back on an HTTP/2 connection. */
typedef struct {
    int goaway, rst, closed;
    int status_class; /* first digit of stream 1's :status, 0 when none came */
} h2_outcome_t;

/* The first digit of a :status in a HPACK block as H2O writes it: an indexed static entry (8..14)
 * or a literal with the :status name (index 8), plain or Huffman-coded. */
static int status_class_of(const uint8_t *block, size_t len)
{
    if (len == 0)
        return 0;
    static const int indexed[] = {0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 5}; /* 8:200 ... 12:400 13:404 14:500 */
    if ((block[0] & 0x80) && (block[0] & 0x7f) < 15)
        return indexed[block[0] & 0x7f];
    size_t at = 1;
    if ((block[0] & 0xc0) == 0x40 || (block[0] & 0xf0) == 0x00 || (block[0] & 0xf0) == 0x10) {
        if (at >= len)
            return 0;
        int huffman = block[at] & 0x80;
        ++at;
        if (at >= len)
            return 0;
        if (!huffman)
            return block[at] - '0';
        /* HPACK Huffman: '0'..'2' are 00000..00010 (5 bits), '3'..'9' 011001..011111 (6 bits) */
        int five = block[at] >> 3;
        return five <= 2 ? five : (block[at] >> 2) - 0x19 + 3;
    }
    return 0;
}

static h2_outcome_t h2_exchange(const uint8_t *bytes, size_t len)
{
    int fd = wire_connect(&gw, 0);
    assert_true(fd >= 0);
    wire_send(fd, bytes, len);
    static uint8_t in[65536];
    int closed;
    size_t got = wire_read(fd, 3000, (char *)in, sizeof(in), &closed);
    close(fd);
    h2_outcome_t outcome = {.closed = closed};
    for (size_t at = 0; at + 9 <= got;) {
        size_t flen = (size_t)in[at] << 16 | (size_t)in[at + 1] << 8 | in[at + 2];
        uint8_t type = in[at + 3];
        uint32_t stream = (uint32_t)(in[at + 5] & 0x7f) << 24 | (uint32_t)in[at + 6] << 16 | (uint32_t)in[at + 7] << 8 | in[at + 8];
        if (at + 9 + flen > got)
            break;
        if (type == 0x7)
            outcome.goaway = 1;
        else if (type == 0x3)
            outcome.rst = 1;
        else if (type == 0x1 && stream == 1 && outcome.status_class == 0)
            outcome.status_class = status_class_of(in + at + 9, flen);
        at += 9 + flen;
    }
    return outcome;
}

/* An HTTP/2 connection: preface, empty SETTINGS, then `rest` of the frames. */
static size_t h2_start(uint8_t *out)
{
    memcpy(out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    return 24 + wire_h2_frame(out + 24, 0x4, 0, 0, NULL, 0);
}

static size_t h2_request(uint8_t *out, const char *method, const char *path, const char *extra_name, const char *extra_value,
                         const char *body)
{
    uint8_t block[1024];
    size_t block_len = 0;
    block_len += wire_hpack_literal(block + block_len, ":method", method);
    block_len += wire_hpack_literal(block + block_len, ":scheme", "http");
    if (path != NULL)
        block_len += wire_hpack_literal(block + block_len, ":path", path);
    block_len += wire_hpack_literal(block + block_len, ":authority", "x");
    if (extra_name != NULL)
        block_len += wire_hpack_literal(block + block_len, extra_name, extra_value);
    size_t n = wire_h2_frame(out, 0x1, body != NULL ? 0x4 : 0x5, 1, block, block_len);
    if (body != NULL)
        n += wire_h2_frame(out + n, 0x0, 0x1, 1, body, strlen(body));
    return n;
}

static void run_h2_cases(int *checked)
{
    uint8_t out[4096];
    size_t n;
    h2_outcome_t o;

    /* broken connection-level framing: GOAWAY and close */
    o = h2_exchange((const uint8_t *)"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", 24);
    assert_true(o.closed);
    assert_healthy("a broken HTTP/2 preface");
    n = h2_start(out);
    n += wire_h2_frame(out + n, 0x0, 0x1, 0, "x", 1); /* DATA on stream 0 */
    o = h2_exchange(out, n);
    assert_true(o.goaway && o.closed);
    assert_healthy("DATA on stream 0");
    n = h2_start(out);
    n += wire_h2_frame(out + n, 0x4, 0, 0, "abc", 3); /* SETTINGS of a length not a multiple of 6 */
    o = h2_exchange(out, n);
    assert_true(o.goaway && o.closed);
    assert_healthy("SETTINGS of a bad length");
    n = h2_start(out);
    n += wire_h2_frame(out + n, 0x9, 0x4, 1, "\x82", 1); /* CONTINUATION without HEADERS */
    o = h2_exchange(out, n);
    assert_true(o.goaway && o.closed);
    assert_healthy("CONTINUATION without HEADERS");
    n = h2_start(out);
    n += wire_h2_frame(out + n, 0x1, 0x5, 1, "\xff\xff\xff\xff", 4); /* HEADERS with an undecodable block */
    o = h2_exchange(out, n);
    assert_true(o.goaway && o.closed);
    assert_healthy("an undecodable HPACK block");
    n = h2_start(out);
    n += wire_h2_frame(out + n, 0x8, 0, 0, "\0\0\0\0", 4); /* WINDOW_UPDATE of 0 on the connection */
    o = h2_exchange(out, n);
    assert_true(o.goaway && o.closed);
    assert_healthy("WINDOW_UPDATE of 0");
    *checked += 6;

    /* broken requests: their stream is refused (400 or RST_STREAM), never a 5xx */
    struct {
        const char *what, *method, *path, *name, *value, *body;
        int status_class;
    } streams[] = {
        {"upper-case header name", "GET", "/healthz", "X-Upper", "1", NULL, 4},
        {"connection-specific header", "GET", "/healthz", "connection", "close", NULL, 4},
        {"no :path", "GET", NULL, NULL, NULL, NULL, 4},
        {"text/plain command", "POST", "/things", "content-type", "text/plain", "{\"id\":\"a\"}", 4},
        {"malformed JSON command", "POST", "/things", "content-type", "application/json", "{\"id\":", 4},
        {"forged request id", "GET", "/requests/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, NULL, NULL, 4},
        {"garbage token", "GET", "/tables/rows/k", "consistency-token", "!!!", NULL, 4},
        {"control byte in :path", "GET", "/tables/rows/a\x01", NULL, NULL, NULL, 4},
        {"Content-Length not matching the DATA", "POST", "/things", "content-length", "99", "{\"id\":\"a\"}", 4},
    };
    for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]); ++i) {
        n = h2_start(out);
        n += h2_request(out + n, streams[i].method, streams[i].path, streams[i].name, streams[i].value, streams[i].body);
        o = h2_exchange(out, n);
        fprintf(stderr, "HTTP/2 %s: status class %d, RST_STREAM %d, GOAWAY %d\n", streams[i].what, o.status_class, o.rst, o.goaway);
        if (!(o.status_class == streams[i].status_class || (o.status_class == 0 && (o.rst || o.goaway)))) {
            fprintf(stderr, "MISMATCH HTTP/2 %s: status class %d, RST_STREAM %d, GOAWAY %d\n", streams[i].what, o.status_class,
                    o.rst, o.goaway);
            ++failures;
        }
        assert_healthy(streams[i].what);
        ++*checked;
    }
}

static void test_bad_input_matrix(void **state)
{
    int64_t commands = sg_test_topic_count(gw.bootstrap, "bad.commands"), rows = sg_test_topic_count(gw.bootstrap, "bad.rows");
    int checked = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i)
        run_case(&cases[i], &checked);
    run_h2_cases(&checked);
    fprintf(stderr, "%d hostile requests, %d not refused as expected\n", checked, failures);
    assert_int_equal(failures, 0);
    assert_true(checked >= 60);
    /* Nothing reached Kafka. */
    assert_int_equal(sg_test_topic_count(gw.bootstrap, "bad.commands"), commands);
    assert_int_equal(sg_test_topic_count(gw.bootstrap, "bad.rows"), rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input_matrix),
    };
    return cmocka_run_group_tests_name("bad-input", tests, setup, teardown);
}
