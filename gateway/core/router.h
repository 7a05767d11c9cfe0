/*
 * The route table: method + path template -> configured route.
 *
 * A small array scanned linearly (configs have tens of routes, not thousands); a more literal
 * template wins over a parameterised one ("/orders/new" before "/orders/{id}"). When the path
 * matches but the method does not, the lookup reports the methods that would have matched, for
 * 405's Allow and for CORS preflights. The configured routes and queries are one router; the
 * built-in /registry API is another, made entry by entry. No HTTP library types: unit-testable on
 * its own.
 */
#ifndef SG_ROUTER_H
#define SG_ROUTER_H

#include <stddef.h>

#include "sg_conf.h"
#include "sg_path.h"

typedef struct st_sg_router_t sg_router_t;

#define SG_ROUTER_ALLOW_BYTES 96 /* an Allow list longer than this is cut (configs have a few methods per path) */

typedef enum {
    SG_ROUTER_FOUND = 0,
    SG_ROUTER_NOT_FOUND,
    SG_ROUTER_METHOD_NOT_ALLOWED,
    SG_ROUTER_BAD_PATH, /* a parameter is not valid percent-encoding */
} sg_router_status_t;

typedef struct st_sg_router_result_t {
    sg_router_status_t status;
    size_t route;          /* the entry's index when FOUND: conf->routes (conf->queries if is_query), or sg_router_add's */
    int is_query;          /* a configured query: GET reading a table */
    sg_path_match_t match; /* parameters when FOUND; dispose with sg_path_match_dispose */
    char allow[SG_ROUTER_ALLOW_BYTES]; /* "GET, POST, OPTIONS" when FOUND or METHOD_NOT_ALLOWED */
} sg_router_result_t;

/** Builds the table from conf->routes and conf->queries (GET; templates already validated by config), with OPTIONS in
 * every Allow list (CORS preflights). Returns owned router, or NULL with err. */
sg_router_t *sg_router_create(const sg_conf_t *conf, char *err, size_t errlen);

/** An empty table (returns owned); `with_options`: OPTIONS joins every Allow list. */
sg_router_t *sg_router_create_empty(int with_options);

/** Adds `method` (borrowed; must outlive the router) on template `tmpl`, found as `index` and `is_query`. Returns 0,
 * or -1 with err when the template does not parse. Before any lookup; not thread-safe. */
int sg_router_add(sg_router_t *router, const char *method, const char *tmpl, size_t index, int is_query, char *err, size_t errlen);

/** Frees; NULL is a no-op. */
void sg_router_destroy(sg_router_t *router);

/** Looks up a request. `path` excludes the query string. Any thread (the table is read-only). */
sg_router_status_t sg_router_lookup(const sg_router_t *router, const char *method, size_t method_len, const char *path,
                                    size_t path_len, sg_router_result_t *result);

#endif
