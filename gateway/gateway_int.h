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
#include "metrics.h"
#include "router.h"
#include "sg_auth.h"
#include "sg_base.h"
#include "sg_bridge.h"
#include "sg_conf.h"
#include "sg_log.h"
#include "sg_reqid.h"
#include "sg_store.h"

typedef struct st_sg_server_t sg_server_t;
struct json_t; /* jansson's */

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
    atomic_long parked;                          /* requests parked on this loop, all kinds (park.c); read by shutdown */
    atomic_long parked_by_kind[SG_PARKED_KINDS]; /* the same by what they wait for (/metrics) */
    sg_metrics_loop_t *metrics;                  /* per-request counters (metrics.h) */
    /* Each feature's per-loop state (its receivers and parked requests), made by its init_loop on
     * this loop's thread; opaque outside the feature's own file. */
    struct st_sg_commands_loop_t *commands;
    struct st_sg_requests_loop_t *requests;
    struct st_sg_tables_loop_t *tables;
    struct st_sg_forward_loop_t *forward; /* table_forward.c */
    struct st_sg_registry_loop_t *registry;
    struct st_sg_conns_loop_t *conns; /* conn.c: its connections, accepting */
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
    uint64_t sweep_cause;                      /* sg_log_cause_of the last sweep's error, 0 if it worked (main thread) */
    struct st_sg_tables_t *tables;             /* materialized tables, or NULL (none configured) */
    struct st_sg_materializer_t *materializer; /* feeds them; readiness waits for it */
    struct st_sg_registry_t *registry;         /* schemas (built in or external client); NULL: none */
    sg_auth_t *auth;                           /* the verifier (main.c); NULL: no auth section */
    struct st_sg_access_t *access;             /* rate limiter, policies per endpoint, refusal counts (access.c) */
    struct st_sg_lookup_t *lookup;             /* settles possibly persisted produces; NULL: none */
    pthread_mutex_t lookups_lock;              /* guards lookups (idempotency.c) */
    struct st_sg_idem_lookup_t *lookups;       /* the Idempotency-Key lookups submitted, not yet answered */
    /* made by the features' init_server (main thread), read-only afterwards */
    sg_bridge_topic_t **route_topics; /* per conf->routes[i] (commands.c) */
    h2o_iovec_t *route_accept_prefix; /* per route: {"topic":<json string>,"partition": (commands.c) */
    char **reply_allowed_headers;     /* union of every route's reply.headers (bridge_thread.c) */
    size_t n_reply_allowed_headers;
    sg_router_t *registry_router;            /* /registry's own templates (registry.c) */
    h2o_access_log_filehandle_t *access_log; /* log.access, or NULL (access_log.c) */
    /* gauges and counters: any thread */
    atomic_int draining;
    atomic_long inflight;            /* commands produced and not yet completed, all loops */
    atomic_long pending;             /* requests waiting on Kafka, all kinds and loops (limits.pending) */
    atomic_llong inflight_bytes;     /* event bytes produced and not yet acknowledged (limits.inflight_bytes) */
    atomic_long streams;             /* event streams not yet disposed (sse.c) */
    atomic_long replies_dropped;     /* replies with a forged/unknown id or past retention */
    atomic_long replies_unawaited;   /* genuine replies recorded with nobody waiting on this instance */
    atomic_long replies_undecodable; /* Confluent-framed replies with an unknown id or bad data (502) */
    atomic_long watchers;            /* long-polls and status streams parked on any loop */
    atomic_long table_waiters;       /* table reads waiting for their conditions, and watches */
    atomic_long registry_waiters;    /* /registry writes not yet answered by the registry thread */
    /* client connections (conn.c) */
    long max_connections;             /* limits.connections, or what RLIMIT_NOFILE allows */
    atomic_long connections;          /* open, within the limit */
    atomic_long overflow_connections; /* open beyond it (health probes only) */
    atomic_long connections_refused;  /* requests answered 503 too-many-connections */
    atomic_long accept_pauses;        /* times a loop stopped accepting (at the limit, out of descriptors) */
    atomic_long slow_clients_closed;  /* connections closed for not reading (write timeout, queued bytes) */
    atomic_long clients_gone;         /* HTTP/1 clients that left while their request was parked */
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
    /* Extension members of the problems answered under `prefix` (the registry: Confluent's
     * error_code and message), added to the problem+json object `problem`. Any loop thread. */
    void (*problem_members)(int status, const char *type, const char *detail, struct json_t *problem);
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
extern const sg_feature_t sg_feature_connections;                                    /* conn.c */

/* dispatch.c: the feature table. */
int sg_features_init_server(sg_server_t *server, char *err, size_t errlen);
void sg_features_dispose_server(sg_server_t *server);
void sg_features_init_loop(sg_loop_t *loop);
void sg_features_drain(sg_loop_t *loop);
/* Registers a pathconf per reserved prefix and "/" for configured routes and queries. Returns 0
 * or -1 with err (a reserved prefix no feature serves). */
int sg_dispatch_register(sg_server_t *server, h2o_hostconf_t *hostconf, char *err, size_t errlen);

/* dispatch.c: the feature serving the reserved prefix a raw path (without its query) is under,
 * or NULL. */
const sg_feature_t *sg_feature_of_path(const char *path, size_t len);

/* access_log.c (main thread, while the server is made): opens log.access, if set, with its
 * format. Returns 0 or -1 with err. Then registers it on a pathconf (every one gets it). */
int sg_access_log_open(sg_server_t *server, char *err, size_t errlen);
void sg_access_log_register(sg_server_t *server, h2o_pathconf_t *pathconf);

/* Entry points one feature offers another (loop thread); `principal` as for handle. */
void sg_commands_handle(h2o_req_t *req, size_t route_index, const sg_path_match_t *match,
                        sg_principal_t *principal); /* commands.c */
void sg_tables_handle_query(h2o_req_t *req, size_t query_index, const sg_path_match_t *match,
                            sg_principal_t *principal); /* tables.c */

/* conn.c: the listeners' read callback (accepts within limits.connections). */
void sg_conns_on_accept(h2o_socket_t *listener, const char *err);
/* conn.c: on a connection beyond limits.connections, answers 503 too-many-connections (returns 1)
 * to anything but /healthz and /readyz; either way the connection closes after its answer. */
int sg_conns_refuse_overflow(h2o_req_t *req, const char *path, size_t path_len);
/* conn.c (through park.c): watch an HTTP/1 parked request's socket for the client leaving; stop. */
struct st_sg_park_t;
void sg_conns_watch_parked(struct st_sg_park_t *park);
void sg_conns_unwatch_parked(struct st_sg_park_t *park);
/* conn.c: closes the connection of a request whose client stopped reading (counted), as the
 * connection sweep does; `why` is logged at debug level. */
void sg_conns_close_stalled(h2o_req_t *req, const char *why);

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

/* limits.pending is one counter for the whole server, taken with a compare-and-swap, so the limit
 * is exact whatever loop a request lands on. Returns 1 when a slot was taken (release it once the
 * request no longer waits on Kafka), 0 at the limit. Any thread. */
static inline int sg_pending_acquire(sg_server_t *server)
{
    long count = atomic_load(&server->pending);
    do {
        if (count >= (long)server->conf->limits.pending)
            return 0;
    } while (!atomic_compare_exchange_weak(&server->pending, &count, count + 1));
    return 1;
}

static inline void sg_pending_release(sg_server_t *server)
{
    atomic_fetch_sub(&server->pending, 1);
}

/* limits.inflight_bytes, likewise: `bytes` of an event about to be produced. Returns 1 when they
 * fit (release them when the broker has answered), 0 when they would exceed the limit. */
static inline int sg_inflight_bytes_acquire(sg_server_t *server, size_t bytes)
{
    long long total = atomic_load(&server->inflight_bytes);
    do {
        if ((unsigned long long)total + bytes > server->conf->limits.inflight_bytes)
            return 0;
    } while (!atomic_compare_exchange_weak(&server->inflight_bytes, &total, total + (long long)bytes));
    return 1;
}

static inline void sg_inflight_bytes_release(sg_server_t *server, size_t bytes)
{
    atomic_fetch_sub(&server->inflight_bytes, (long long)bytes);
}

#endif
