/*
 * CORS (cors.origins): the response headers for allowed origins, and preflights answered from
 * the route table (the methods a path has are the ones the router reports for it). Loop threads.
 *
 * With auth, an origin listed exactly (not through "*") may also send credentials: an EventSource
 * made withCredentials sends the sg_token cookie, and the browser hands it the stream only with
 * Access-Control-Allow-Credentials: true and its exact origin (never with "*"). An origin allowed
 * only by "*" gets no credentials: any site could otherwise read a user's event streams.
 */
#include <stdio.h>
#include <string.h>

#include "gateway_int.h"
#include "respond.h"

/* What a browser may send and read; the names streamgate itself reads and writes. */
#define SG_CORS_ALLOW_HEADERS                                                                                                      \
    "Content-Type, Idempotency-Key, Prefer, Consistency-Token, Traceparent, Last-Event-ID, Authorization, X-API-Key"
#define SG_CORS_EXPOSE_HEADERS                                                                                                     \
    "Consistency-Token, Location, Retry-After, Preference-Applied, Idempotent-Replayed, Stream-Time, ETag, WWW-Authenticate, "     \
    "RateLimit, RateLimit-Policy"

int sg_cors_origin_allowed(const sg_conf_t *conf, const char *origin, size_t len)
{
    for (size_t i = 0; i < conf->cors.n_origins; ++i) {
        const char *allowed = conf->cors.origins[i];
        if (strcmp(allowed, "*") == 0 || (strlen(allowed) == len && memcmp(allowed, origin, len) == 0))
            return 1;
    }
    return 0;
}

/* Whether `origin` is listed by itself (not only through "*"): such an origin may send credentials. */
static int origin_listed(const sg_conf_t *conf, const char *origin, size_t len)
{
    for (size_t i = 0; i < conf->cors.n_origins; ++i)
        if (strlen(conf->cors.origins[i]) == len && memcmp(conf->cors.origins[i], origin, len) == 0)
            return 1;
    return 0;
}

static void allow_credentials(const sg_conf_t *conf, h2o_req_t *req, h2o_iovec_t origin)
{
    if (conf->has_auth && origin_listed(conf, origin.base, origin.len))
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-credentials"), 0, NULL,
                              H2O_STRLIT("true"));
}

void sg_cors_apply(const sg_conf_t *conf, h2o_req_t *req)
{
    if (conf->cors.n_origins == 0)
        return;
    h2o_iovec_t origin = sg_http_header(req, H2O_STRLIT("origin"));
    if (origin.base == NULL)
        return;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("Origin"));
    if (!sg_cors_origin_allowed(conf, origin.base, origin.len))
        return;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL, origin.base, origin.len);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-expose-headers"), 0, NULL,
                          H2O_STRLIT(SG_CORS_EXPOSE_HEADERS));
    allow_credentials(conf, req, origin);
}

void sg_cors_preflight(h2o_req_t *req, const char *allow)
{
    const sg_conf_t *conf = sg_loop_of(req)->server->conf;
    h2o_iovec_t origin = sg_http_header(req, H2O_STRLIT("origin"));
    h2o_iovec_t want_method = sg_http_header(req, H2O_STRLIT("access-control-request-method"));
    allow = h2o_strdup(&req->pool, allow, SIZE_MAX).base; /* the caller's buffer may not outlive the call */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    if (origin.base != NULL && want_method.base != NULL) {
        if (!sg_cors_origin_allowed(conf, origin.base, origin.len)) {
            sg_problem(req, SG_PROBLEM_ORIGIN_NOT_ALLOWED, "Origin", "origin %.*s is not in cors.origins",
                       (int)(origin.len > 200 ? 200 : origin.len), origin.base);
            return;
        }
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-methods"), 0, NULL, allow,
                              strlen(allow));
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-headers"), 0, NULL,
                              H2O_STRLIT(SG_CORS_ALLOW_HEADERS));
        char max_age[24];
        int n = snprintf(max_age, sizeof(max_age), "%lld", (long long)conf->cors.max_age_s);
        sg_http_add_header(req, H2O_STRLIT("access-control-max-age"), max_age, (size_t)n);
    }
    sg_http_respond(req, 204, NULL, "", 0);
}
