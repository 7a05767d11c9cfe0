/*
 * The route table: method + path template -> configured route.
 *
 * A small array scanned linearly (configs have tens of routes, not thousands); a more literal
 * template wins over a parameterised one ("/orders/new" before "/orders/{id}"). When the path
 * matches but the method does not, the lookup reports the methods that would have matched, for
 * 405's Allow and for CORS preflights. No HTTP library types: unit-testable on its own.
 */
#ifndef SG_ROUTER_H
#define SG_ROUTER_H

#include <stddef.h>

#include "sg_conf.h"
#include "sg_path.h"

typedef struct st_sg_router_t sg_router_t;

typedef enum {
    SG_ROUTER_FOUND = 0,
    SG_ROUTER_NOT_FOUND,
    SG_ROUTER_METHOD_NOT_ALLOWED,
    SG_ROUTER_BAD_PATH, /* a parameter is not valid percent-encoding */
} sg_router_status_t;

typedef struct st_sg_router_result_t {
    sg_router_status_t status;
    size_t route;          /* index into conf->routes (or conf->queries if is_query) when FOUND */
    int is_query;          /* a configured query: GET reading a table */
    sg_path_match_t match; /* parameters when FOUND; dispose with sg_path_match_dispose */
    char allow[96];        /* "GET, POST, OPTIONS" when FOUND or METHOD_NOT_ALLOWED */
} sg_router_result_t;

/** Builds the table from conf->routes and conf->queries (GET; templates already validated by config). Returns owned
 * router, or NULL with err. */
sg_router_t *sg_router_create(const sg_conf_t *conf, char *err, size_t errlen);

/** Frees; NULL is a no-op. */
void sg_router_destroy(sg_router_t *router);

/** Looks up a request. `path` excludes the query string. Any thread (the table is read-only). */
sg_router_status_t sg_router_lookup(const sg_router_t *router, const char *method, size_t method_len, const char *path,
                                    size_t path_len, sg_router_result_t *result);

#endif
