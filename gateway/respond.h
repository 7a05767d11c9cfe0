/*
 * How the gateway reads a request's headers and writes its answer. Every response leaves through
 * sg_http_respond (or an event stream, sse.h), so CORS headers, the reason phrase and the content
 * length are never forgotten; every error is sg_problem with a kind from core/problems.h.
 * Loop thread of the request only.
 */
#ifndef SG_RESPOND_H
#define SG_RESPOND_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

#include "problems.h"
#include "sg_base.h"
#include "sg_conf.h"

/** Answers status with body[0..len) (copied by H2O before it returns) and, unless NULL, a
 * Content-Type. The reason phrase comes from the status. A status without content (204, 304)
 * is sent without body, Content-Type and Content-Length, whatever body is given. */
void sg_http_respond(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len);
/** The same for a body already in req's pool (or living as long as req): sent without a copy. */
void sg_http_respond_pooled(h2o_req_t *req, int status, const char *content_type, h2o_iovec_t body);

/** Answers an RFC 9457 problem of `kind` (its status, title and Retry-After from the table), with
 * `field` (may be NULL) and a detail formatted from fmt. */
void sg_problem(h2o_req_t *req, sg_problem_t kind, const char *field, const char *fmt, ...) SG_PRINTF(4, 5);

/** As sg_problem, with one more string member `name`: `value` in the problem object (e.g. the
 * "cause" of an authentication refusal). */
void sg_problem_member(h2o_req_t *req, sg_problem_t kind, const char *field, const char *name, const char *value, const char *fmt,
                       ...) SG_PRINTF(6, 7);

/** 405 with an Allow header listing `allow`. */
void sg_problem_method_not_allowed(h2o_req_t *req, const char *allow);

/** Adds Retry-After: seconds. */
void sg_http_retry_after(h2o_req_t *req, int seconds);

/** Adds a header whose name (lower-cased) and value are copied into the request's pool. */
void sg_http_add_header(h2o_req_t *req, const char *name, size_t name_len, const char *value, size_t value_len);

/** Adds Consistency-Token: text[0..len) (copied). */
void sg_http_add_token(h2o_req_t *req, const char *text, size_t len);
/** The same for text already in req's pool (not copied). */
void sg_http_add_pooled_token(h2o_req_t *req, char *text, size_t len);

/** Adds Stream-Time: text[0..len) (copied). */
void sg_http_add_stream_time(h2o_req_t *req, const char *text, size_t len);

/** The first request header called `name` (lower-case), or {NULL, 0}. */
h2o_iovec_t sg_http_header(h2o_req_t *req, const char *name, size_t len);

/** The request path's length without the query string. */
size_t sg_http_path_len(h2o_req_t *req);

int sg_http_is_get_or_head(h2o_req_t *req);
int sg_http_method_is(h2o_req_t *req, const char *method);

/** Whether Accept names text/event-stream. */
int sg_http_wants_event_stream(h2o_req_t *req);

/** Every Prefer header: sets *async for respond-async, *wait_ms for wait=N (left alone when absent). */
void sg_http_parse_prefer(h2o_req_t *req, int *async, int64_t *wait_ms);

/** Rewrites the errors H2O answers itself (before any handler, or from its file handler) into
 * problems, on `pathconf`. */
void sg_respond_register_rewrite(h2o_pathconf_t *pathconf);

/* cors.c */
/** Whether `origin` is in cors.origins (or "*" is). */
int sg_cors_origin_allowed(const sg_conf_t *conf, const char *origin, size_t len);
/** Adds the CORS response headers when the request's Origin is allowed (Vary: Origin always, when
 * CORS is configured and an Origin came). */
void sg_cors_apply(const sg_conf_t *conf, h2o_req_t *req);
/** Answers an OPTIONS request on a configured path whose methods are `allow`: a preflight
 * (204 or 403 origin-not-allowed) or a plain OPTIONS (204 with Allow). */
void sg_cors_preflight(h2o_req_t *req, const char *allow);

#endif
