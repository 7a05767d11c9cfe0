/*
 * Dispatch and the feature table: which code answers which request, and the one list through
 * which the server starts, drains and disposes every feature.
 *
 * Each reserved prefix (config's sg_conf_reserved_prefixes: the same list the config check
 * refuses routes under) gets its own H2O pathconf whose handler is the feature serving it; "/"
 * gets the configured routes and queries, looked up in the router. H2O picks a pathconf by the
 * normalized path (percent-decoded, dot-segments resolved) but every handler reads the raw path,
 * so when the two disagree ("/%74ables/x", "/tables/../x") the raw path decides, as it does for
 * the router: the pathconfs are the fast path, never a second meaning.
 *
 * Every request is admitted here (access.h) before its handler runs: the endpoint's rule comes
 * from its feature or from the route or query it matched, so no handler can forget it, and a
 * refused request never reaches one.
 */
#include <string.h>

#include "gateway_int.h"
#include "respond.h"

/* Every feature, in no particular order; those with a prefix serve it. */
static const sg_feature_t *const features[] = {
    &sg_feature_healthz, &sg_feature_readyz,   &sg_feature_metrics,  &sg_feature_openapi,  &sg_feature_requests,
    &sg_feature_tables,  &sg_feature_registry, &sg_feature_commands, &sg_feature_outcomes, &sg_feature_access, &sg_feature_forward,
};

typedef struct st_sg_dispatch_handler_t {
    h2o_handler_t super;
    sg_server_t *server;
    const sg_feature_t *feature; /* NULL: configured routes and queries */
} sg_dispatch_handler_t;

int sg_features_init_server(sg_server_t *server, char *err, size_t errlen)
{
    for (size_t i = 0; i < SG_ARRAY_SIZE(features); ++i)
        if (features[i]->init_server != NULL && features[i]->init_server(server, err, errlen) != 0)
            return -1;
    return 0;
}

void sg_features_dispose_server(sg_server_t *server)
{
    for (size_t i = 0; i < SG_ARRAY_SIZE(features); ++i)
        if (features[i]->dispose_server != NULL)
            features[i]->dispose_server(server);
}

void sg_features_init_loop(sg_loop_t *loop)
{
    for (size_t i = 0; i < SG_ARRAY_SIZE(features); ++i)
        if (features[i]->init_loop != NULL)
            features[i]->init_loop(loop);
}

void sg_features_drain(sg_loop_t *loop)
{
    for (size_t i = 0; i < SG_ARRAY_SIZE(features); ++i)
        if (features[i]->drain != NULL)
            features[i]->drain(loop);
}

/* Whether path is `prefix` or continues it with '/'. */
static int is_under(const char *path, size_t len, const char *prefix)
{
    size_t plen = strlen(prefix);
    return len >= plen && memcmp(path, prefix, plen) == 0 && (len == plen || path[plen] == '/');
}

/* The feature serving the reserved prefix the raw path is under, or NULL. */
static const sg_feature_t *feature_of(const char *path, size_t len)
{
    for (size_t i = 0; i < SG_ARRAY_SIZE(features); ++i)
        if (features[i]->prefix != NULL && is_under(path, len, features[i]->prefix))
            return features[i];
    return NULL;
}

static size_t headers_size(h2o_req_t *req)
{
    size_t total = req->path.len + req->method.len;
    for (size_t i = 0; i < req->headers.size; ++i)
        total += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return total;
}

/* Configured routes and queries; CORS preflights; 404 and 405 (which only per-address limits
 * that name no route apply to: a preflight never carries a credential). */
static void dispatch_routes(sg_server_t *server, h2o_req_t *req, const char *path, size_t path_len)
{
    sg_router_result_t found;
    sg_principal_t *principal;
    sg_router_status_t status = sg_router_lookup(server->router, req->method.base, req->method.len, path, path_len, &found);
    if (status == SG_ROUTER_FOUND) {
        sg_access_rule_t rule =
            found.is_query ? sg_access_query_rule(server, found.route) : sg_access_route_rule(server, found.route);
        if (sg_access_admit(req, &rule, &principal) == 0) {
            if (found.is_query)
                sg_tables_handle_query(req, found.route, &found.match, principal);
            else
                sg_commands_handle(req, found.route, &found.match, principal);
        }
        sg_path_match_dispose(&found.match);
        return;
    }
    sg_access_rule_t rule = {.need = SG_ACCESS_PUBLIC, .route = SIZE_MAX};
    if (sg_access_admit(req, &rule, &principal) != 0)
        return;
    switch (status) {
    case SG_ROUTER_FOUND: return;
    case SG_ROUTER_METHOD_NOT_ALLOWED:
        if (sg_http_method_is(req, "OPTIONS"))
            sg_cors_preflight(req, found.allow);
        else
            sg_problem_method_not_allowed(req, found.allow);
        return;
    case SG_ROUTER_BAD_PATH:
        sg_problem(req, SG_PROBLEM_INVALID_PATH, "path", "a path parameter is not valid percent-encoding");
        return;
    case SG_ROUTER_NOT_FOUND: break;
    }
    sg_problem(req, SG_PROBLEM_NOT_FOUND, NULL, "no route for %.*s", (int)(path_len > 200 ? 200 : path_len), path);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    sg_dispatch_handler_t *handler = (sg_dispatch_handler_t *)self;
    const sg_conf_t *conf = handler->server->conf;
    const char *path = req->path.base;
    size_t path_len = sg_http_path_len(req);
    if (headers_size(req) > conf->limits.header_bytes) {
        sg_problem(req, SG_PROBLEM_HEADERS_TOO_LARGE, "headers", "the request headers exceed limits.header_bytes (%llu)",
                   (unsigned long long)conf->limits.header_bytes);
        return 0;
    }
    const sg_feature_t *feature = handler->feature;
    if (feature == NULL || !is_under(path, path_len, feature->prefix))
        feature = feature_of(path, path_len); /* H2O chose by the normalized path; the raw one decides */
    if (feature != NULL && feature->methods != NULL && sg_http_method_is(req, "OPTIONS") &&
        sg_http_header(req, H2O_STRLIT("access-control-request-method")).base != NULL) {
        /* A browser asks before it sends Authorization or X-API-Key (and never with a credential). */
        sg_access_rule_t rule = {.need = SG_ACCESS_PUBLIC, .route = SIZE_MAX};
        sg_principal_t *principal;
        if (sg_access_admit(req, &rule, &principal) == 0)
            sg_cors_preflight(req, feature->methods);
    } else if (feature != NULL) {
        sg_access_rule_t rule = feature->access(handler->server, req, path, path_len);
        sg_principal_t *principal;
        if (sg_access_admit(req, &rule, &principal) == 0)
            feature->handle(req, path, path_len, principal);
    } else
        dispatch_routes(handler->server, req, path, path_len);
    return 0;
}

static void add_handler(sg_server_t *server, h2o_hostconf_t *hostconf, const char *path, const sg_feature_t *feature)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, path, 0);
    sg_dispatch_handler_t *handler = (void *)h2o_create_handler(pathconf, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->server = server;
    handler->feature = feature;
}

int sg_dispatch_register(sg_server_t *server, h2o_hostconf_t *hostconf, char *err, size_t errlen)
{
    /* H2O takes the first pathconf that matches: the prefixes, then "/" for everything else. */
    for (size_t i = 0; sg_conf_reserved_prefixes[i] != NULL; ++i) {
        const char *prefix = sg_conf_reserved_prefixes[i];
        const sg_feature_t *feature = NULL;
        for (size_t f = 0; f < SG_ARRAY_SIZE(features) && feature == NULL; ++f)
            if (features[f]->prefix != NULL && strcmp(features[f]->prefix, prefix) == 0)
                feature = features[f];
        if (feature == NULL || feature->handle == NULL)
            return sg_errf(err, errlen, "no feature serves the reserved prefix %s", prefix);
        if (feature->access == NULL)
            return sg_errf(err, errlen, "the feature serving %s says nothing of who may call it", prefix);
        add_handler(server, hostconf, prefix, feature);
    }
    for (size_t f = 0; f < SG_ARRAY_SIZE(features); ++f) { /* and config refuses routes under every one we serve */
        size_t i = 0;
        while (features[f]->prefix != NULL && sg_conf_reserved_prefixes[i] != NULL &&
               strcmp(sg_conf_reserved_prefixes[i], features[f]->prefix) != 0)
            ++i;
        if (features[f]->prefix != NULL && sg_conf_reserved_prefixes[i] == NULL)
            return sg_errf(err, errlen, "%s is served but not reserved", features[f]->prefix);
    }
    add_handler(server, hostconf, "/", NULL);
    sg_respond_register_fallback(&hostconf->fallback_path);
    return 0;
}
