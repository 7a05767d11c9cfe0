/*
 * Private to gateway/: the server, its event loops, and the feature table through which server.c
 * and dispatch.c reach every feature without knowing any of them (README.md has the threads,
 * the invariants and where each concern lives).
 *
 * Threads: `threads` event loops (one h2o_context_t each) plus the bridge thread, the
 * materializer and the registry thread, which hand results to a loop through that loop's
 * multithread receivers. A request is touched only on the loop that accepted it.
 */
#ifndef SG_GATEWAY_INT_H
#define SG_GATEWAY_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <pthread.h>

#include <h2o.h>
#include <openssl/ssl.h>

#include "access.h"
#include "router.h"
#include "sg_auth.h"
#include "sg_base.h"
#include "sg_bridge.h"
#include "sg_conf.h"
#include "sg_log.h"
#include "sg_reqid.h"
#include "sg_store.h"

typedef struct st_sg_server_t sg_server_t;

typedef struct st_sg_loop_t {
    h2o_context_t ctx; /* first: handlers find their loop from req->conn->ctx */
    sg_server_t *server;
    size_t index;
    pthread_t thread;
    int thread_started;
    int initialized;                    /* guarded by server.c's loop mutex */
    int halted;                         /* likewise: the thread has left its event loop */
    h2o_multithread_receiver_t control; /* stop accepting / exit, from the main thread */
    h2o_timeout_t **wait_timeouts;      /* lazily made, one per 100 ms of wait */
    size_t n_wait_timeouts;
    h2o_socket_t **listeners; /* one per configured listen address */
    int *listen_fds;
    h2o_accept_ctx_t *accept_ctxs;
    size_t n_listeners;
    atomic_int exit_requested;
    atomic_long parked; /* requests parked on this loop, all kinds (park.c); read by shutdown */
    /* Each feature's per-loop state (its receivers and parked requests), made by its init_loop on
     * this loop's thread; opaque outside the feature's own file. */
    struct st_sg_commands_loop_t *commands;
    struct st_sg_requests_loop_t *requests;
    struct st_sg_tables_loop_t *tables;
    struct st_sg_forward_loop_t *forward; /* table_forward.c */
    struct st_sg_registry_loop_t *registry;
} sg_loop_t;

struct st_sg_server_t {
    const sg_conf_t *conf;
    sg_bridge_t *bridge;
    sg_router_t *router; /* configured routes and queries */
    h2o_globalconf_t globalconf;
    SSL_CTX **ssl_ctxs; /* per listen address, NULL for plain TCP */
    sg_loop_t *loops;
    size_t n_loops;
    uint32_t instance_id;
    sg_reqid_key_t reqid_key;                  /* valid once request_key_ready (written once, before it is set) */
    atomic_int request_key_ready;              /* requests.secret, or the deployment's secret once settled */
    struct st_sg_deployment_t *deployment;     /* Idempotency-Key claims, the secret; NULL until set */
    struct st_sg_placement_t *placement;       /* partitioned tables: owners, routing; NULL without them */
    sg_store_t *store;                         /* request outcomes (RocksDB at <data_dir>/state) */
    struct st_sg_tables_t *tables;             /* materialized tables, or NULL (none configured) */
    struct st_sg_materializer_t *materializer; /* feeds them; readiness waits for it */
    struct st_sg_registry_t *registry;         /* schemas (built in or external client); NULL: none */
    sg_auth_t *auth;                           /* the verifier (main.c); NULL: no auth section */
    struct st_sg_access_t *access;             /* rate limiter, policies per endpoint, refusal counts (access.c) */
    /* made by the features' init_server (main thread), read-only afterwards */
    sg_bridge_topic_t **route_topics; /* per conf->routes[i] (commands.c) */
    h2o_iovec_t *route_accept_prefix; /* per route: {"topic":<json string>,"partition": (commands.c) */
    char **reply_allowed_headers;     /* union of every route's reply.headers (bridge_thread.c) */
    size_t n_reply_allowed_headers;
    sg_router_t *registry_router; /* /registry's own templates (registry.c) */
    /* gauges and counters: any thread */
    atomic_int draining;
    atomic_long inflight;            /* commands produced and not yet completed, all loops */
    atomic_long streams;             /* event streams not yet disposed (sse.c) */
    atomic_long replies_dropped;     /* replies with a forged/unknown id or past retention */
    atomic_long replies_unawaited;   /* genuine replies recorded with nobody waiting on this instance */
    atomic_long replies_undecodable; /* Confluent-framed replies with an unknown id or bad data (502) */
    atomic_long watchers;            /* long-polls and status streams parked on any loop */
    atomic_long table_waiters;       /* table reads waiting for their conditions, and watches */
    atomic_long registry_waiters;    /* /registry writes not yet answered by the registry thread */
};

/* --- features ---------------------------------------------------------------------------- */

/* What server.c and dispatch.c know of a feature. Every hook may be NULL. */
typedef struct st_sg_feature_t {
    const char *prefix; /* the reserved prefix it serves (one of sg_conf_reserved_prefixes), or NULL */
    /* The methods served under `prefix`, for CORS preflights (which need no credential). */
    const char *methods;
    /* What a request under `prefix` needs (access.h): required with a prefix. Loop thread. */
    sg_access_rule_t (*access)(sg_server_t *server, h2o_req_t *req, const char *path, size_t path_len);
    /* Answers a request under `prefix` once access.c admitted it; `path` is the raw path without
     * the query; `principal` is the caller's (borrowed, held by the request) or NULL. Loop thread. */
    void (*handle)(h2o_req_t *req, const char *path, size_t path_len, sg_principal_t *principal);
    /* Main thread, while the server is made: server-wide state. Returns 0 or -1 with err. */
    int (*init_server)(sg_server_t *server, char *err, size_t errlen);
    /* Main thread, when the server is destroyed (the loops have stopped). */
    void (*dispose_server)(sg_server_t *server);
    /* The loop's thread, before it serves: per-loop state and receivers. */
    void (*init_loop)(sg_loop_t *loop);
    /* The loop's thread, once, when the gateway stops accepting: answer every parked request. */
    void (*drain)(sg_loop_t *loop);
} sg_feature_t;

extern const sg_feature_t sg_feature_healthz, sg_feature_readyz, sg_feature_metrics; /* builtin.c */
extern const sg_feature_t sg_feature_openapi;                                        /* openapi.c */
extern const sg_feature_t sg_feature_requests;                                       /* requests.c */
extern const sg_feature_t sg_feature_tables;                                         /* tables.c */
extern const sg_feature_t sg_feature_forward;                                        /* table_forward.c */
extern const sg_feature_t sg_feature_registry;                                       /* registry.c */
extern const sg_feature_t sg_feature_commands;                                       /* commands.c */
extern const sg_feature_t sg_feature_outcomes;                                       /* bridge_thread.c */
extern const sg_feature_t sg_feature_access;                                         /* access.c */

/* dispatch.c: the feature table. */
int sg_features_init_server(sg_server_t *server, char *err, size_t errlen);
void sg_features_dispose_server(sg_server_t *server);
void sg_features_init_loop(sg_loop_t *loop);
void sg_features_drain(sg_loop_t *loop);
/* Registers a pathconf per reserved prefix and "/" for configured routes and queries. Returns 0
 * or -1 with err (a reserved prefix no feature serves). */
int sg_dispatch_register(sg_server_t *server, h2o_hostconf_t *hostconf, char *err, size_t errlen);

/* Entry points one feature offers another (loop thread); `principal` as for handle. */
void sg_commands_handle(h2o_req_t *req, size_t route_index, const sg_path_match_t *match,
                        sg_principal_t *principal); /* commands.c */
void sg_tables_handle_query(h2o_req_t *req, size_t query_index, const sg_path_match_t *match,
                            sg_principal_t *principal); /* tables.c */

/* server.c: the h2o_timeout_t for a wait of `ms` (rounded up to 100 ms), made on first use. */
h2o_timeout_t *sg_loop_wait_timeout(sg_loop_t *loop, int64_t ms);

static inline sg_loop_t *sg_loop_of(h2o_req_t *req)
{
    return (sg_loop_t *)req->conn->ctx;
}

static inline int sg_server_is_draining(sg_server_t *server)
{
    return atomic_load(&server->draining);
}

/* Whether request ids can be made and checked: until the deployment's secret is settled, the
 * gateway answers what needs one 503 not-ready (sg_server_refuse_without_key). */
static inline int sg_server_has_request_key(sg_server_t *server)
{
    return atomic_load_explicit(&server->request_key_ready, memory_order_acquire);
}

#endif
