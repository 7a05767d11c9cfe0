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
 * Static mounts (config `static`) come last: each gets a pathconf whose handlers are the router
 * (a configured route wins over a file), H2O's file handler, and a problem+json 404. The router
 * passes a request on (returns -1, H2O's way to the next handler of the pathconf) only when no
 * route has its path; the file handler passes on when no file has it. A mount at "/" shares the
 * routes' pathconf.
 *
 * Every request is admitted here (access.h) before its handler runs: the endpoint's rule comes
 * from its feature or from the route or query it matched, so no handler can forget it, and a
 * refused request never reaches one. Static files are public (a browser loads a page before it
 * has a credential); per-address limits still apply to them.
 */
#include <stdlib.h>
#include <string.h>

#include "framing.h"
#include "gateway_int.h"
#include "respond.h"

/* Every feature, in no particular order; those with a prefix serve it. */
static const sg_feature_t *const features[] = {
    &sg_feature_healthz,  &sg_feature_readyz, &sg_feature_metrics,     &sg_feature_openapi,
    &sg_feature_requests, &sg_feature_tables, &sg_feature_registry,    &sg_feature_commands,
    &sg_feature_outcomes, &sg_feature_access, &sg_feature_connections, &sg_feature_forward,
};

typedef struct st_sg_dispatch_handler_t {
    h2o_handler_t super;
    sg_server_t *server;
    const sg_feature_t *feature; /* NULL: configured routes and queries */
    int then_files;              /* a file handler follows: a path without a route is passed on */
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

/* Whether path is `prefix` or continues it with '/'. Every prefix is '/' and at least one more
 * byte, so the second byte decides for most: a strlen and a memcmp per feature were ~440
 * instructions of every request to a route or query. */
static int is_under(const char *path, size_t len, const char *prefix)
{
    if (len < 2 || path[1] != prefix[1])
        return 0;
    size_t plen = strlen(prefix);
    return len >= plen && memcmp(path, prefix, plen) == 0 && (len == plen || path[plen] == '/');
}

const sg_feature_t *sg_feature_of_path(const char *path, size_t len)
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
 * that name no route apply to: a preflight never carries a credential). Returns 0, or -1 to pass
 * a path no route has on to the files (then_files). */
static int dispatch_routes(sg_server_t *server, h2o_req_t *req, const char *path, size_t path_len, int then_files)
{
    sg_router_result_t found;
    sg_principal_t *principal;
    sg_router_status_t status = sg_router_lookup(server->router, req->method.base, req->method.len, path, path_len, &found);
    if (status == SG_ROUTER_FOUND) {
        sg_metrics_set_label(req, found.is_query ? sg_metrics_label_query(server, found.route)
                                                 : sg_metrics_label_route(server, found.route));
        sg_access_rule_t rule =
            found.is_query ? sg_access_query_rule(server, found.route) : sg_access_route_rule(server, found.route);
        if (sg_access_admit(req, &rule, &principal) == 0) {
            if (found.is_query)
                sg_tables_handle_query(req, found.route, &found.match, principal);
            else
                sg_commands_handle(req, found.route, &found.match, principal);
        }
        sg_path_match_dispose(&found.match);
        return 0;
    }
    sg_access_rule_t rule = {.need = SG_ACCESS_PUBLIC, .route = SIZE_MAX};
    if (sg_access_admit(req, &rule, &principal) != 0)
        return 0;
    switch (status) {
    case SG_ROUTER_FOUND: return 0;
    case SG_ROUTER_METHOD_NOT_ALLOWED:
        if (sg_http_method_is(req, "OPTIONS"))
            sg_cors_preflight(req, found.allow);
        else
            sg_problem_method_not_allowed(req, found.allow);
        return 0;
    case SG_ROUTER_BAD_PATH:
        sg_problem(req, SG_PROBLEM_INVALID_PATH, "path", "a path parameter is not valid percent-encoding");
        return 0;
    case SG_ROUTER_NOT_FOUND: break;
    }
    if (then_files) {
        sg_metrics_set_label(req, sg_metrics_label_static(server));
        return -1;
    }
    sg_problem(req, SG_PROBLEM_NOT_FOUND, NULL, "no route for %.*s", (int)(path_len > 200 ? 200 : path_len), path);
    return 0;
}

/* HTTP/1 only: whether the request's head frames its body ambiguously or breaks RFC 9112 where
 * H2O 2.2.5 is lenient (framing.h); then it was answered 400 and the connection closes after the
 * answer, so nothing behind it is read. The head is still at the start of the socket's input
 * buffer: H2O consumes it only once the response is sent. */
static int refuse_bad_head(h2o_req_t *req)
{
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return 0;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    char why[128];
    sg_head_check_t check = sock != NULL && sock->input != NULL
                                ? sg_http1_head_check(sock->input->bytes, sock->input->size, why, sizeof(why))
                                : SG_HEAD_OK;
    if (check == SG_HEAD_OK)
        return 0;
    req->http1_is_persistent = 0;
    sg_problem(req, check == SG_HEAD_AMBIGUOUS_FRAMING ? SG_PROBLEM_INVALID_FRAMING : SG_PROBLEM_BAD_REQUEST, "headers",
               "%s: the request is refused and the connection closed", why);
    return 1;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    sg_dispatch_handler_t *handler = (sg_dispatch_handler_t *)self;
    const sg_conf_t *conf = handler->server->conf;
    const char *path = req->path.base;
    size_t path_len = sg_http_path_len(req);
    if (refuse_bad_head(req) || sg_conns_refuse_overflow(req, path, path_len))
        return 0;
    if (headers_size(req) > conf->limits.header_bytes) {
        sg_problem(req, SG_PROBLEM_HEADERS_TOO_LARGE, "headers", "the request headers exceed limits.header_bytes (%llu)",
                   (unsigned long long)conf->limits.header_bytes);
        return 0;
    }
    const sg_feature_t *feature = handler->feature;
    if (feature == NULL || !is_under(path, path_len, feature->prefix))
        feature = sg_feature_of_path(path, path_len); /* H2O chose by the normalized path; the raw one decides */
    sg_metrics_mark(req, feature != NULL ? sg_metrics_label_prefix(handler->server, feature->prefix)
                                         : sg_metrics_label_unmatched(handler->server));
    if (feature != NULL && feature->methods != NULL && sg_http_method_is(req, "OPTIONS") &&
        sg_http_header(req, H2O_STRLIT("access-control-request-method")).base != NULL) {
        /* A browser asks before it sends Authorization or X-API-Key (and never with a credential). */
        sg_access_rule_t rule = {.need = SG_ACCESS_PUBLIC, .route = SIZE_MAX};
        sg_principal_t *principal;
        if (sg_access_admit(req, &rule, &principal) == 0)
            sg_cors_preflight(req, feature->methods);
        return 0;
    }
    if (feature != NULL) {
        sg_access_rule_t rule = feature->access(handler->server, req, path, path_len);
        sg_principal_t *principal;
        if (sg_access_admit(req, &rule, &principal) == 0)
            feature->handle(req, path, path_len, principal);
        return 0;
    }
    return dispatch_routes(handler->server, req, path, path_len, handler->then_files);
}

/* The last handler of a static mount: neither a route nor a file has the path. */
static int on_no_file(h2o_handler_t *self, h2o_req_t *req)
{
    size_t path_len = sg_http_path_len(req);
    sg_metrics_set_label(req, sg_metrics_label_unmatched(sg_loop_of(req)->server));
    sg_problem(req, SG_PROBLEM_NOT_FOUND, NULL, "no route or file for %.*s", (int)(path_len > 200 ? 200 : path_len),
               req->path.base);
    return 0;
}

static void add_handler(sg_server_t *server, h2o_pathconf_t *pathconf, const sg_feature_t *feature, int then_files)
{
    sg_dispatch_handler_t *handler = (void *)h2o_create_handler(pathconf, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->server = server;
    handler->feature = feature;
    handler->then_files = then_files;
}

/* The router, H2O's file handler for `mount` (no directory listing: H2O 2.2.5 lists only with
 * H2O_FILE_FLAG_DIR_LISTING), and the 404, on one pathconf. */
static void add_static_handlers(sg_server_t *server, h2o_pathconf_t *pathconf, const sg_static_conf_t *mount)
{
    static const char *index_files[] = {"index.html", NULL};
    add_handler(server, pathconf, NULL, 1);
    h2o_file_register(pathconf, mount->dir, index_files, NULL, 0);
    h2o_create_handler(pathconf, sizeof(h2o_handler_t))->on_req = on_no_file;
    sg_respond_register_rewrite(pathconf); /* the file handler's own errors (405, 416, 403) */
}

/* Static mounts other than "/", longest path first: H2O takes the first pathconf that matches. */
static int cmp_mount_length(const void *a, const void *b)
{
    size_t la = strlen((*(const sg_static_conf_t *const *)a)->path), lb = strlen((*(const sg_static_conf_t *const *)b)->path);
    return la < lb ? 1 : la > lb ? -1 : 0;
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
        add_handler(server, h2o_config_register_path(hostconf, prefix, 0), feature, 0);
    }
    for (size_t f = 0; f < SG_ARRAY_SIZE(features); ++f) { /* and config refuses routes under every one we serve */
        size_t i = 0;
        while (features[f]->prefix != NULL && sg_conf_reserved_prefixes[i] != NULL &&
               strcmp(sg_conf_reserved_prefixes[i], features[f]->prefix) != 0)
            ++i;
        if (features[f]->prefix != NULL && sg_conf_reserved_prefixes[i] == NULL)
            return sg_errf(err, errlen, "%s is served but not reserved", features[f]->prefix);
    }
    const sg_conf_t *conf = server->conf;
    const sg_static_conf_t *root = NULL;
    const sg_static_conf_t **mounts = sg_calloc(conf->n_statics + 1, sizeof(*mounts));
    size_t n_mounts = 0;
    for (size_t i = 0; i < conf->n_statics; ++i) {
        if (strcmp(conf->statics[i].path, "/") == 0)
            root = &conf->statics[i];
        else
            mounts[n_mounts++] = &conf->statics[i];
    }
    qsort(mounts, n_mounts, sizeof(*mounts), cmp_mount_length);
    /* (h2o_config_register_path may move earlier pathconfs: each is finished before the next.) */
    for (size_t i = 0; i < n_mounts; ++i)
        add_static_handlers(server, h2o_config_register_path(hostconf, mounts[i]->path, 0), mounts[i]);
    free(mounts);
    h2o_pathconf_t *routes = h2o_config_register_path(hostconf, "/", 0);
    if (root != NULL)
        add_static_handlers(server, routes, root);
    else
        add_handler(server, routes, NULL, 0);
    sg_respond_register_rewrite(&hostconf->fallback_path);
    /* Loggers see every request, wherever H2O bound it (the fallback: the errors it answers itself). */
    for (size_t i = 0; i < hostconf->paths.size; ++i) {
        sg_metrics_register_logger(&hostconf->paths.entries[i]);
        sg_access_log_register(server, &hostconf->paths.entries[i]);
    }
    sg_metrics_register_logger(&hostconf->fallback_path);
    sg_access_log_register(server, &hostconf->fallback_path);
    return 0;
}
