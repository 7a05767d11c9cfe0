/*
 * Every HTTP response leaves through here: RFC 9457 problem+json for errors (one table of kinds,
 * core/problems.h), CORS headers for allowed origins, the reason phrase of the status, and an
 * explicit content length (h2o_send_inline does not set one).
 *
 * H2O answers a few errors itself before any handler runs (a body over the size limit, broken
 * chunked encoding, an unknown Expect). Those responses go through the host's fallback path,
 * so a filter there rewrites them into problem+json too: clients see one error format. The same
 * filter sits on the static mounts' pathconfs, for the file handler's own errors (405 for a
 * POST to a file, 416 for a range past the end, 403 for a file it may not read).
 */
#include "respond.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "gateway_int.h"
#include "http_text.h"

h2o_iovec_t sg_http_header(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t at = h2o_find_header_by_str(&req->headers, name, len, -1);
    return at >= 0 ? req->headers.entries[at].value : h2o_iovec_init(NULL, 0);
}

size_t sg_http_path_len(h2o_req_t *req)
{
    return req->query_at != SIZE_MAX ? req->query_at : req->path.len;
}

int sg_http_method_is(h2o_req_t *req, const char *method)
{
    return h2o_memis(req->method.base, req->method.len, method, strlen(method));
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

void sg_http_parse_prefer(h2o_req_t *req, int *async, int64_t *wait_ms)
{
    for (ssize_t at = -1; (at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("prefer"), at)) >= 0;)
        sg_prefer_parse(req->headers.entries[at].value.base, req->headers.entries[at].value.len, async, wait_ms);
}

void sg_http_add_header(h2o_req_t *req, const char *name, size_t name_len, const char *value, size_t value_len)
{
    /* Lower-cased: an upper-case name is a protocol error on HTTP/2 (the client gets nothing). */
    char *lower = h2o_mem_alloc_pool(&req->pool, name_len + 1);
    sg_http_lowercase(name, name_len, lower);
    h2o_add_header_by_str(&req->pool, &req->res.headers, lower, name_len, 0, NULL, h2o_strdup(&req->pool, value, value_len).base,
                          value_len);
}

/* Names H2O has no token for, as tokens of our own that h2o_add_header takes as they are
 * (h2o_add_header_by_str allocates an iovec for the name in the pool on every call). H2O tells its
 * tokens by their address in its own table, so to it these are plain names, as before; not const,
 * like H2O's own table (header names are h2o_iovec_t *). */
static h2o_token_t consistency_token_name = {{H2O_STRLIT("consistency-token")}};
static h2o_token_t stream_time_name = {{H2O_STRLIT("stream-time")}};

void sg_http_add_token(h2o_req_t *req, const char *text, size_t len)
{
    sg_http_add_pooled_token(req, h2o_strdup(&req->pool, text, len).base, len);
}

void sg_http_add_pooled_token(h2o_req_t *req, char *text, size_t len)
{
    h2o_add_header(&req->pool, &req->res.headers, &consistency_token_name, NULL, text, len);
}

void sg_http_add_stream_time(h2o_req_t *req, const char *text, size_t len)
{
    h2o_add_header(&req->pool, &req->res.headers, &stream_time_name, NULL, h2o_strdup(&req->pool, text, len).base, len);
}

void sg_http_retry_after(h2o_req_t *req, int seconds)
{
    char text[16];
    int n = snprintf(text, sizeof(text), "%d", seconds);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, h2o_strdup(&req->pool, text, (size_t)n).base,
                   (size_t)n);
}

/* Status, reason, Content-Type and CORS headers. Returns 0 when the status has no content (204
 * and 304: no Content-Length either; a body would be read as the start of the next response on
 * HTTP/1, and resets the stream on HTTP/2), else 1 with the content length set. */
static int respond_head(h2o_req_t *req, int status, const char *content_type, size_t len)
{
    req->res.status = status;
    req->res.reason = sg_http_reason(status);
    int has_content = sg_http_status_has_content(status);
    req->res.content_length = has_content ? len : SIZE_MAX;
    if (has_content && content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    sg_cors_apply(sg_loop_of(req)->server->conf, req);
    return has_content;
}

void sg_http_respond(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    if (!respond_head(req, status, content_type, len))
        len = 0;
    h2o_send_inline(req, body, len);
}

void sg_http_respond_pooled(h2o_req_t *req, int status, const char *content_type, h2o_iovec_t body)
{
    static h2o_generator_t generator = {NULL, NULL}; /* one final send: nothing to proceed or stop */
    if (!respond_head(req, status, content_type, body.len))
        body.len = 0;
    h2o_start_response(req, &generator);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

static h2o_iovec_t problem_body(h2o_req_t *req, const char *type, int status, const char *title, const char *field,
                                const char *detail, const char *member, const char *member_value)
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
    json_t *member_json = member != NULL ? json_string(member_value) : NULL;
    if (member_json != NULL)
        json_object_set_new(problem, member, member_json);
    const sg_feature_t *feature = sg_feature_of_path(req->path.base, sg_http_path_len(req));
    if (feature != NULL && feature->problem_members != NULL)
        feature->problem_members(status, type, json_string_value(detail_json), problem);
    size_t len = json_dumpb(problem, NULL, 0, JSON_COMPACT);
    h2o_iovec_t out = h2o_iovec_init(h2o_mem_alloc_pool(&req->pool, len + 1), len);
    json_dumpb(problem, out.base, len, JSON_COMPACT);
    json_decref(problem);
    return out;
}

static void problem_v(h2o_req_t *req, sg_problem_t kind, const char *field, const char *member, const char *member_value,
                      const char *fmt, va_list args)
{
    const sg_problem_info_t *info = sg_problem_info(kind);
    char detail[1024];
    vsnprintf(detail, sizeof(detail), fmt, args);
    if (info->retry_after_s > 0)
        sg_http_retry_after(req, info->retry_after_s);
    h2o_iovec_t body = problem_body(req, info->type, info->status, info->title, field, detail, member, member_value);
    sg_http_respond(req, info->status, "application/problem+json", body.base, body.len);
}

void sg_problem(h2o_req_t *req, sg_problem_t kind, const char *field, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    problem_v(req, kind, field, NULL, NULL, fmt, args);
    va_end(args);
}

void sg_problem_member(h2o_req_t *req, sg_problem_t kind, const char *field, const char *name, const char *value, const char *fmt,
                       ...)
{
    va_list args;
    va_start(args, fmt);
    problem_v(req, kind, field, name, value, fmt, args);
    va_end(args);
}

void sg_problem_method_not_allowed(h2o_req_t *req, const char *allow)
{
    size_t path_len = sg_http_path_len(req);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, h2o_strdup(&req->pool, allow, SIZE_MAX).base,
                   strlen(allow));
    sg_problem(req, SG_PROBLEM_METHOD_NOT_ALLOWED, NULL, "%.*s is not allowed on %.*s; allowed: %s",
               (int)(req->method.len > 20 ? 20 : req->method.len), req->method.base, (int)(path_len > 200 ? 200 : path_len),
               req->path.base, allow);
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

static void rewrite_on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    ssize_t at = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (req->res.status >= 400 && at >= 0 &&
        h2o_memis(req->res.headers.entries[at].value.base, req->res.headers.entries[at].value.len,
                  H2O_STRLIT("text/plain; charset=utf-8"))) {
        const sg_conf_t *conf = sg_loop_of(req)->server->conf;
        char detail[160];
        h2o_iovec_t body;
        if (req->res.status == 413) {
            snprintf(detail, sizeof(detail), "the request body exceeds limits.body_bytes (%llu bytes)",
                     (unsigned long long)conf->limits.body_bytes);
            const sg_problem_info_t *info = sg_problem_info(SG_PROBLEM_BODY_TOO_LARGE);
            body = problem_body(req, info->type, info->status, info->title, "body", detail, NULL, NULL);
        } else {
            /* Only these reach H2O's own answers (the file handler's among them); any other
             * status keeps H2O's reason as title. */
            const sg_problem_info_t *info = NULL;
            switch (req->res.status) {
            case 400: info = sg_problem_info(SG_PROBLEM_BAD_REQUEST); break;
            case 403: info = sg_problem_info(SG_PROBLEM_FORBIDDEN); break;
            case 404: info = sg_problem_info(SG_PROBLEM_NOT_FOUND); break;
            case 405: info = sg_problem_info(SG_PROBLEM_METHOD_NOT_ALLOWED); break;
            case 416: info = sg_problem_info(SG_PROBLEM_RANGE_NOT_SATISFIABLE); break;
            case 417: info = sg_problem_info(SG_PROBLEM_EXPECTATION_FAILED); break;
            }
            snprintf(detail, sizeof(detail), "%s", req->res.reason);
            body = problem_body(req, info != NULL ? info->type : "http-error", req->res.status,
                                info != NULL ? info->title : req->res.reason, NULL, detail, NULL, NULL);
        }
        sg_rewrite_ostream_t *rewrite = (void *)h2o_add_ostream(req, sizeof(*rewrite), slot);
        rewrite->super.do_send = rewrite_do_send;
        rewrite->body = body;
        req->res.headers.entries[at].value = h2o_iovec_init(H2O_STRLIT("application/problem+json"));
        req->res.content_length = rewrite->body.len;
        sg_cors_apply(conf, req);
        slot = &rewrite->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

void sg_respond_register_rewrite(h2o_pathconf_t *pathconf)
{
    h2o_filter_t *filter = h2o_create_filter(pathconf, sizeof(*filter));
    filter->on_setup_ostream = rewrite_on_setup_ostream;
}
