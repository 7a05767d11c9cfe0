/*
 * Every HTTP response leaves through here: RFC 9457 problem+json for errors, CORS headers for
 * allowed origins, and an explicit content length (h2o_send_inline does not set one).
 *
 * H2O answers a few errors itself before any handler runs (a body over the size limit, broken
 * chunked encoding, an unknown Expect). Those responses go through the host's fallback path,
 * so a filter there rewrites them into problem+json too: clients see one error format.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "gateway_int.h"

#define SG_PROBLEM_TYPE_PREFIX "urn:streamgate:problem:"

int sg_cors_origin_allowed(const sg_conf_t *conf, const char *origin, size_t len)
{
    for (size_t i = 0; i < conf->cors.n_origins; ++i) {
        const char *allowed = conf->cors.origins[i];
        if (strcmp(allowed, "*") == 0 || (strlen(allowed) == len && memcmp(allowed, origin, len) == 0))
            return 1;
    }
    return 0;
}

void sg_cors_apply(const sg_conf_t *conf, h2o_req_t *req)
{
    if (conf->cors.n_origins == 0)
        return;
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (at < 0)
        return;
    h2o_iovec_t origin = req->headers.entries[at].value;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("Origin"));
    if (!sg_cors_origin_allowed(conf, origin.base, origin.len))
        return;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL, origin.base, origin.len);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-expose-headers"), 0, NULL,
                          H2O_STRLIT("Consistency-Token, Location, Retry-After, Preference-Applied, "
                                     "Idempotent-Replayed, Stream-Time, ETag"));
}

h2o_iovec_t sg_http_header(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t at = h2o_find_header_by_str(&req->headers, name, len, -1);
    return at >= 0 ? req->headers.entries[at].value : h2o_iovec_init(NULL, 0);
}

int sg_http_is_get_or_head(h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
           h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
}

int sg_http_wants_event_stream(h2o_req_t *req)
{
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT, -1);
    return at >= 0 && h2o_strstr(req->headers.entries[at].value.base, req->headers.entries[at].value.len,
                                 H2O_STRLIT("text/event-stream")) != SIZE_MAX;
}

void sg_http_respond(h2o_req_t *req, int status, const char *reason, const char *content_type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = len;
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    sg_cors_apply(sg_loop_of(req)->server->conf, req);
    h2o_send_inline(req, body, len);
}

static h2o_iovec_t problem_body(h2o_mem_pool_t *pool, int status, const char *type, const char *title, const char *field,
                                const char *detail)
{
    char type_uri[128];
    snprintf(type_uri, sizeof(type_uri), SG_PROBLEM_TYPE_PREFIX "%s", type);
    json_t *problem = json_object();
    json_object_set_new(problem, "type", json_string(type_uri));
    json_object_set_new(problem, "title", json_string(title));
    json_object_set_new(problem, "status", json_integer(status));
    /* detail may quote client input: json_string refuses invalid UTF-8, so fall back to a
     * lossless-enough escape rather than dropping the member. */
    json_t *detail_json = json_string(detail);
    if (detail_json == NULL)
        detail_json = json_string("(detail contained invalid UTF-8)");
    json_object_set_new(problem, "detail", detail_json);
    if (field != NULL) {
        json_t *field_json = json_string(field);
        if (field_json != NULL)
            json_object_set_new(problem, "field", field_json);
    }
    size_t len = json_dumpb(problem, NULL, 0, JSON_COMPACT);
    h2o_iovec_t out = h2o_iovec_init(h2o_mem_alloc_pool(pool, len + 1), len);
    json_dumpb(problem, out.base, len, JSON_COMPACT);
    json_decref(problem);
    return out;
}

void sg_problem_send(h2o_req_t *req, int status, const char *reason, const char *type, const char *title, const char *field,
                     const char *detail_fmt, ...)
{
    char detail[1024];
    va_list args;
    va_start(args, detail_fmt);
    vsnprintf(detail, sizeof(detail), detail_fmt, args);
    va_end(args);
    h2o_iovec_t body = problem_body(&req->pool, status, type, title, field, detail);
    sg_http_respond(req, status, reason, "application/problem+json", body.base, body.len);
}

void sg_problem_method_not_allowed(h2o_req_t *req, const char *allow)
{
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, h2o_strdup(&req->pool, allow, SIZE_MAX).base,
                   strlen(allow));
    sg_problem_send(req, 405, "Method Not Allowed", "method-not-allowed", "Method Not Allowed", NULL,
                    "%.*s is not allowed on %.*s; allowed: %s", (int)(req->method.len > 20 ? 20 : req->method.len),
                    req->method.base, (int)(path_len > 200 ? 200 : path_len), req->path.base, allow);
}

/* RFC 7240 Prefer: "respond-async" and "wait=SECONDS", from any number of Prefer headers with
 * comma-separated preferences (parameters after ';' are ignored). */
void sg_http_parse_prefer(h2o_req_t *req, int *async, int64_t *wait_ms)
{
    for (ssize_t at = -1; (at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("prefer"), at)) >= 0;) {
        h2o_iovec_t value = req->headers.entries[at].value;
        size_t i = 0;
        while (i < value.len) {
            while (i < value.len && (value.base[i] == ' ' || value.base[i] == '\t' || value.base[i] == ','))
                ++i;
            size_t start = i;
            while (i < value.len && value.base[i] != ',')
                ++i;
            size_t end = start;
            while (end < i && value.base[end] != ';' && value.base[end] != ' ' && value.base[end] != '\t')
                ++end;
            const char *item = value.base + start;
            size_t len = end - start;
            if (h2o_lcstris(item, len, H2O_STRLIT("respond-async"))) {
                *async = 1;
            } else if (len > 5 && h2o_lcstris(item, 5, H2O_STRLIT("wait="))) {
                int64_t seconds = 0;
                size_t k = 5;
                for (; k < len && item[k] >= '0' && item[k] <= '9' && seconds < 1000000; ++k)
                    seconds = seconds * 10 + (item[k] - '0');
                if (k == len)
                    *wait_ms = seconds * 1000;
            }
        }
    }
}

/* --- H2O's own error responses -> problem+json ------------------------------------------ */

typedef struct st_sg_rewrite_ostream_t {
    h2o_ostream_t super;
    h2o_iovec_t body;
} sg_rewrite_ostream_t;

static void rewrite_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *inbufs, size_t inbufcnt, h2o_send_state_t state)
{
    sg_rewrite_ostream_t *rewrite = (void *)self;
    /* Drop H2O's text/plain body; emit ours once, with the final state. */
    if (state == H2O_SEND_STATE_IN_PROGRESS) {
        h2o_ostream_send_next(&rewrite->super, req, NULL, 0, state);
        return;
    }
    h2o_ostream_send_next(&rewrite->super, req, &rewrite->body, 1, state);
}

static const char *problem_type_for(int status)
{
    switch (status) {
    case 400: return "bad-request";
    case 413: return "body-too-large";
    case 417: return "expectation-failed";
    default: return "http-error";
    }
}

static void rewrite_on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    ssize_t at = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (req->res.status >= 400 && at >= 0 &&
        h2o_memis(req->res.headers.entries[at].value.base, req->res.headers.entries[at].value.len,
                  H2O_STRLIT("text/plain; charset=utf-8"))) {
        const sg_conf_t *conf = sg_loop_of(req)->server->conf;
        char detail[160];
        if (req->res.status == 413)
            snprintf(detail, sizeof(detail), "the request body exceeds limits.body_bytes (%llu bytes)",
                     (unsigned long long)conf->limits.body_bytes);
        else
            snprintf(detail, sizeof(detail), "%s", req->res.reason);
        sg_rewrite_ostream_t *rewrite = (void *)h2o_add_ostream(req, sizeof(*rewrite), slot);
        rewrite->super.do_send = rewrite_do_send;
        rewrite->body = problem_body(&req->pool, req->res.status, problem_type_for(req->res.status), req->res.reason,
                                     req->res.status == 413 ? "body" : NULL, detail);
        req->res.headers.entries[at].value = h2o_iovec_init(H2O_STRLIT("application/problem+json"));
        req->res.content_length = rewrite->body.len;
        sg_cors_apply(conf, req);
        slot = &rewrite->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

void sg_problem_register_fallback(h2o_pathconf_t *fallback)
{
    h2o_filter_t *filter = h2o_create_filter(fallback, sizeof(*filter));
    filter->on_setup_ostream = rewrite_on_setup_ostream;
}
