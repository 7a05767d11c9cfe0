/*
 * libFuzzer target for the parsers the gateway runs on what a client sends (all pure functions
 * in gateway/core and config/path.c, compiled into this target so that they are instrumented).
 * The first input byte picks the parser, the rest is its input:
 *
 *   0 router lookup: METHOD \0 PATH against a fixed route table (literal, parameterised and
 *     registry-like templates)           6 reply :status, header names and values
 *   1 percent-decoding of a path         7 HTTP/1 request heads (request smuggling checks)
 *   2 JSON pointer and event key: POINTER \0 JSON (and the one-pass scan against Jansson)
 *   3 Prefer                             8 path templates: TEMPLATE \0 PATH
 *   4 Idempotency-Key                    9 request ids (GET /requests/{id})
 *   5 traceparent, and media types      10 query strings of table reads
 *
 * Beyond "no crash, no leak, no sanitizer report", each checks the parser's promise (a decoded
 * value has no NUL, an accepted key is printable ASCII inside the input, a traceparent we make
 * is valid, a lower-cased name is still a token...) and aborts when one is broken.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "framing.h"
#include "http_text.h"
#include "keys.h"
#include "query.h"
#include "router.h"
#include "sg_path.h"
#include "sg_reqid.h"
#include "trace.h"

static sg_router_t *router;
static sg_reqid_key_t reqid_key;

static void init_once(void)
{
    static const struct {
        const char *method, *tmpl;
    } routes[] = {
        {"POST", "/orders"},
        {"GET", "/orders/{id}"},
        {"PUT", "/orders/{id}"},
        {"GET", "/orders/new"},
        {"POST", "/a/{x}/b/{y}"},
        {"GET", "/subjects/{subject}/versions/{version}"},
        {"DELETE", "/subjects/{subject}/versions/{version}"},
        {"GET", "/"},
    };
    if (router != NULL)
        return;
    router = sg_router_create_empty(1);
    char err[256];
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); ++i)
        CHECK(sg_router_add(router, routes[i].method, routes[i].tmpl, i, 0, err, sizeof(err)) == 0);
    sg_reqid_key_derive(&reqid_key, "fuzz", 4);
}

/* Splits input at its first NUL: a and b are NUL-terminated copies (free both). */
static void split(const uint8_t *data, size_t size, char **a, size_t *a_len, char **b, size_t *b_len)
{
    const uint8_t *nul = memchr(data, 0, size);
    *a_len = nul != NULL ? (size_t)(nul - data) : size;
    *b_len = nul != NULL ? size - *a_len - 1 : 0;
    *a = malloc(*a_len + 1);
    *b = malloc(*b_len + 1);
    CHECK(*a != NULL && *b != NULL);
    memcpy(*a, data, *a_len);
    (*a)[*a_len] = '\0';
    if (*b_len > 0)
        memcpy(*b, nul + 1, *b_len);
    (*b)[*b_len] = '\0';
}

static void check_match(const sg_path_match_t *match)
{
    for (size_t i = 0; i < match->n_params; ++i)
        CHECK(strlen(match->params[i].value) == match->params[i].len); /* decoded values hold no NUL */
}

static void fuzz_router(const uint8_t *data, size_t size)
{
    char *method, *path;
    size_t method_len, path_len;
    split(data, size, &method, &method_len, &path, &path_len);
    sg_router_result_t found;
    sg_router_status_t status = sg_router_lookup(router, method, method_len, path, path_len, &found);
    if (status == SG_ROUTER_FOUND) {
        CHECK(found.route < 8);
        check_match(&found.match);
        sg_path_match_dispose(&found.match);
    }
    if (status == SG_ROUTER_FOUND || status == SG_ROUTER_METHOD_NOT_ALLOWED)
        CHECK(strlen(found.allow) > 0 && strlen(found.allow) < sizeof(found.allow));
    free(method);
    free(path);
}

static void fuzz_decode(const uint8_t *data, size_t size)
{
    size_t len = 0;
    char *decoded = sg_path_decode((const char *)data, size, &len);
    if (decoded != NULL) {
        CHECK(len <= size && strlen(decoded) == len);
        free(decoded);
    }
}

static void fuzz_key(const uint8_t *data, size_t size)
{
    char *pointer, *text;
    size_t pointer_len, text_len;
    split(data, size, &pointer, &pointer_len, &text, &text_len);
    /* The command path's one-pass scan must never take what Jansson refuses, and must find the
     * key Jansson's path finds (with the pointer, and without one: validity alone). */
    const char *scanned_key = NULL, *unused = NULL;
    size_t scanned_len = 0, unused_len = 0;
    int scanned = sg_key_scan_json(text, text_len, pointer, &scanned_key, &scanned_len);
    int scanned_valid = sg_key_scan_json(text, text_len, NULL, &unused, &unused_len);
    json_t *root = json_loadb(text, text_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    CHECK(root != NULL || (!scanned && !scanned_valid));
    if (root != NULL) {
        char why[256], key[SG_KEY_MAX_BYTES + 1];
        why[0] = '\0';
        json_t *field = sg_json_pointer_get(root, pointer, why, sizeof(why));
        int len = -1;
        if (field == NULL) {
            CHECK(why[0] != '\0');
        } else {
            len = sg_key_from_json(field, key, sizeof(key), why, sizeof(why));
            CHECK(len < 0 || (len > 0 && len <= SG_KEY_MAX_BYTES && key[len] == '\0'));
        }
        CHECK(!scanned || (len > 0 && (size_t)len == scanned_len && memcmp(key, scanned_key, scanned_len) == 0));
        json_decref(root);
    }
    free(pointer);
    free(text);
}

static void fuzz_prefer(const uint8_t *data, size_t size)
{
    int async = 0;
    int64_t wait_ms = -1;
    sg_prefer_parse((const char *)data, size, &async, &wait_ms);
    CHECK(async == 0 || async == 1);
    CHECK(wait_ms == -1 || (wait_ms >= 0 && wait_ms % 1000 == 0 && wait_ms < INT64_C(10000000) * 1000));
}

static void fuzz_idempotency_key(const uint8_t *data, size_t size)
{
    size_t start, len;
    if (sg_idempotency_key_parse((const char *)data, size, &start, &len) != 0)
        return;
    CHECK(len >= 1 && len <= SG_IDEMPOTENCY_KEY_MAX && start + len <= size);
    for (size_t i = 0; i < len; ++i)
        CHECK(data[start + i] >= 0x21 && data[start + i] <= 0x7e);
}

static void fuzz_trace_and_media(const uint8_t *data, size_t size)
{
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ size;
    char out[SG_TRACEPARENT_LEN + 1];
    sg_traceparent_make(&rng, (const char *)data, size, out);
    CHECK(strlen(out) == SG_TRACEPARENT_LEN && sg_traceparent_valid(out, SG_TRACEPARENT_LEN));
    if (sg_traceparent_valid((const char *)data, size))
        CHECK(memcmp(out + 3, data + 3, 32) == 0); /* the caller's trace id is kept */
    int json = sg_media_type_is_json((const char *)data, size);
    if (sg_media_type_is((const char *)data, size, "application/json"))
        CHECK(json);
}

static void fuzz_status_and_headers(const uint8_t *data, size_t size)
{
    int status = sg_http_status_parse(data, size);
    CHECK(status == 0 || (status >= 100 && status <= 599 && size == 3));
    if (sg_http_status_is_final(status))
        CHECK(status >= 200);
    int ok = sg_http_header_name_ok(data, size);
    char *lower = malloc(size + 1);
    CHECK(lower != NULL);
    sg_http_lowercase(data, size, lower);
    CHECK(sg_http_header_name_ok(lower, size) == ok); /* case never changes what a name is */
    for (size_t i = 0; i < size; ++i)
        CHECK(!(lower[i] >= 'A' && lower[i] <= 'Z'));
    free(lower);
    if (sg_http_header_value_ok(data, size))
        CHECK(memchr(data, '\n', size) == NULL && memchr(data, '\r', size) == NULL && memchr(data, 0, size) == NULL);
}

static void fuzz_head(const uint8_t *data, size_t size)
{
    char why[128];
    why[0] = '\0';
    if (sg_http1_head_check((const char *)data, size, why, sizeof(why)) != 0)
        CHECK(why[0] != '\0');
}

static void fuzz_template(const uint8_t *data, size_t size)
{
    char *tmpl, *path;
    size_t tmpl_len, path_len;
    split(data, size, &tmpl, &tmpl_len, &path, &path_len);
    char err[256];
    sg_path_template_t *parsed = sg_path_template_parse(tmpl, err, sizeof(err));
    if (parsed != NULL) {
        CHECK(sg_path_template_same_shape(parsed, parsed));
        CHECK(sg_path_template_n_params(parsed) <= SG_PATH_MAX_PARAMS);
        sg_path_match_t match;
        if (sg_path_template_match(parsed, path, path_len, &match) == 1) {
            CHECK(match.n_params == sg_path_template_n_params(parsed));
            check_match(&match);
            sg_path_match_dispose(&match);
        }
        sg_path_template_destroy(parsed);
    }
    free(tmpl);
    free(path);
}

static void fuzz_reqid(const uint8_t *data, size_t size)
{
    sg_reqid_t id;
    if (sg_reqid_parse(&reqid_key, (const char *)data, size, &id) != 0)
        return;
    char text[SG_REQID_TEXT_LEN + 1];
    sg_reqid_format(&reqid_key, &id, text);
    CHECK(size >= SG_REQID_TEXT_LEN && memcmp(text, data, SG_REQID_TEXT_LEN) == 0);
}

static void fuzz_query(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"prefix", "from", "to", "limit", "cursor", "token", "fresh", "min_stream_time"};
    enum { N = sizeof(names) / sizeof(names[0]) };
    sg_query_value_t values[N];
    size_t bad = SIZE_MAX, bad_len = SIZE_MAX;
    switch (sg_query_parse((const char *)data, size, names, N, values, &bad, &bad_len)) {
    case SG_QUERY_OK:
        for (size_t i = 0; i < N; ++i)
            CHECK(values[i].value == NULL || (strlen(values[i].value) == values[i].len && values[i].len <= size));
        sg_query_values_free(values, N);
        break;
    case SG_QUERY_UNKNOWN: CHECK(bad_len > 0 && bad + bad_len <= size && memchr(data + bad, '&', bad_len) == NULL); break;
    case SG_QUERY_TWICE:
    case SG_QUERY_BAD_ENCODING: CHECK(bad < N); break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size == 0)
        return 0;
    const uint8_t *rest = data + 1;
    size_t rest_len = size - 1;
    switch (data[0] % 11) {
    case 0: fuzz_router(rest, rest_len); break;
    case 1: fuzz_decode(rest, rest_len); break;
    case 2: fuzz_key(rest, rest_len); break;
    case 3: fuzz_prefer(rest, rest_len); break;
    case 4: fuzz_idempotency_key(rest, rest_len); break;
    case 5: fuzz_trace_and_media(rest, rest_len); break;
    case 6: fuzz_status_and_headers(rest, rest_len); break;
    case 7: fuzz_head(rest, rest_len); break;
    case 8: fuzz_template(rest, rest_len); break;
    case 9: fuzz_reqid(rest, rest_len); break;
    case 10: fuzz_query(rest, rest_len); break;
    }
    return 0;
}
