/*
 * Private to gateway/: the server, its event loops and the pieces the handlers share.
 *
 * Threads: `threads` event loops (one h2o_context_t each) plus the bridge thread. A request is
 * touched only on the loop that accepted it; everything the bridge thread touches is a
 * heap-owned sg_cmd_t, handed back to the loop through that loop's multithread receiver.
 */
#ifndef SG_GATEWAY_INT_H
#define SG_GATEWAY_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <pthread.h>

#include <h2o.h>
#include <openssl/ssl.h>

#include "router.h"
#include "sg_bridge.h"
#include "sg_reqid.h"
#include "sg_store.h"
#include "sg_conf.h"
#include "sg_base.h"
#include "sg_log.h"

typedef struct st_sg_server_t sg_server_t;

typedef struct st_sg_loop_t {
    h2o_context_t ctx; /* first: handlers find their loop from req->conn->ctx */
    sg_server_t *server;
    size_t index;
    pthread_t thread;
    int thread_started;
    int initialized;                           /* guarded by the server's park mutex */
    int parked;                                /* likewise */
    h2o_multithread_receiver_t deliveries;     /* sg_cmd_t completions from the bridge thread */
    h2o_multithread_receiver_t control;        /* stop accepting / exit, from the main thread */
    h2o_multithread_receiver_t replies;        /* replies for this loop's requests, from the bridge thread */
    h2o_multithread_receiver_t stored;         /* "an outcome was recorded", for long-polls */
    h2o_linklist_t watchers;                   /* long-polling GET /requests/{id} */
    h2o_multithread_receiver_t table_progress; /* "table N committed", from the materializer */
    h2o_linklist_t table_waiters;              /* table reads waiting for their token, and watches */
    h2o_multithread_receiver_t table_latest;   /* fresh=latest watermarks, from the materializer */
    h2o_multithread_receiver_t registry_done;  /* answers to parked /registry writes, from the registry thread */
    struct st_sg_corr_t *pending;              /* reply routes' requests by id; loop thread only */
    h2o_linklist_t waiting;                    /* synchronous requests waiting for a reply */
    h2o_timeout_t **wait_timeouts;             /* lazily made, one per 100 ms of wait */
    size_t n_wait_timeouts;
    h2o_socket_t **listeners; /* one per configured listen address */
    int *listen_fds;
    h2o_accept_ctx_t *accept_ctxs;
    size_t n_listeners;
    atomic_int exit_requested;
    uint32_t reqid_counter;
    uint64_t trace_rng; /* xorshift state for generated trace and span ids */
} sg_loop_t;

struct st_sg_server_t {
    const sg_conf_t *conf;
    sg_bridge_t *bridge;
    sg_router_t *router;
    sg_bridge_topic_t **route_topics; /* per conf->routes[i] */
    h2o_iovec_t *route_accept_prefix; /* per route: {"topic":<json string>,"partition": */
    h2o_globalconf_t globalconf;
    SSL_CTX **ssl_ctxs; /* per listen address, NULL for plain TCP */
    sg_loop_t *loops;
    size_t n_loops;
    uint32_t instance_id;
    sg_reqid_key_t reqid_key;
    char **reply_allowed_headers; /* union of every route's reply.headers, for recorded outcomes */
    size_t n_reply_allowed_headers;
    atomic_int draining;
    atomic_long inflight;                      /* commands produced and not yet completed, all loops */
    atomic_long replies_dropped;               /* replies with a forged/unknown id or past retention */
    atomic_long replies_unawaited;             /* genuine replies recorded with nobody waiting on this instance */
    atomic_long replies_undecodable;           /* Confluent-framed replies with an unknown id or bad data (502) */
    atomic_long watchers;                      /* long-polls parked on any loop */
    atomic_long table_waiters;                 /* table reads waiting for their token, any loop */
    sg_store_t *store;                         /* request outcomes (RocksDB at <data_dir>/state) */
    struct st_sg_tables_t *tables;             /* materialized tables, or NULL (none configured) */
    struct st_sg_materializer_t *materializer; /* feeds them; readiness waits for it */
    struct st_sg_registry_t *registry;         /* schemas (built in or external client); NULL: none */
    atomic_long registry_waiters;              /* /registry writes parked on any loop */
};

/* handlers.c */
void sg_handlers_register(sg_server_t *server, h2o_hostconf_t *hostconf);
void sg_handlers_on_delivery(void *opaque, const sg_delivery_t *delivery); /* bridge thread */
void sg_handlers_on_deliveries(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
void sg_handlers_on_reply(void *server, const sg_reply_t *reply); /* bridge thread */
void sg_handlers_on_replies(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
void sg_handlers_drain(sg_loop_t *loop); /* loop thread: answer waiting requests, we are stopping */

/* requests.c: the status resource and its records */
void sg_requests_record_done(sg_server_t *server, const sg_reqid_t *id, const char *id_text,
                             const sg_request_record_t *outcome); /* bridge thread */
void sg_requests_handle(h2o_req_t *req, const char *path, size_t path_len);
void sg_requests_on_stored(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
void sg_requests_record_pending(sg_server_t *server, const char *id_text, int64_t created_ms); /* bridge thread */

/* tables.c: GET /tables/{table}[/{key}] and configured queries; table_progress and
 * table_latest receivers; drain answers waiting reads and closes watches (loop stopping). */
void sg_tables_handle(h2o_req_t *req, const char *path, size_t path_len);
void sg_tables_handle_query(h2o_req_t *req, size_t query_index, const sg_path_match_t *match);
void sg_tables_on_progress(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
void sg_tables_on_latest(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
void sg_tables_drain(sg_loop_t *loop);

/* registry.c: /registry, the Confluent-compatible schema registry API */
void sg_registry_handle(h2o_req_t *req, const char *path, size_t path_len);
void sg_registry_on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

/* openapi.c: GET /openapi.json, generated from the config once */
void sg_openapi_handle(h2o_req_t *req);

/* server.c: the h2o_timeout_t for a wait of `ms` (rounded up to 100 ms), made on first use. */
h2o_timeout_t *sg_loop_wait_timeout(sg_loop_t *loop, int64_t ms);

/* problem.c: RFC 9457 responses; `field` may be NULL. Every response goes through
 * sg_http_respond so CORS headers and the content length are never forgotten. */
void sg_http_respond(h2o_req_t *req, int status, const char *reason, const char *content_type, const char *body, size_t len);
void sg_problem_send(h2o_req_t *req, int status, const char *reason, const char *type, const char *title, const char *field,
                     const char *detail_fmt, ...) __attribute__((format(printf, 7, 8)));
void sg_cors_apply(const sg_conf_t *conf, h2o_req_t *req);
void sg_problem_method_not_allowed(h2o_req_t *req, const char *allow); /* 405 with Allow */
/* The first header called `name` (lower-case), or {NULL, 0}. */
h2o_iovec_t sg_http_header(h2o_req_t *req, const char *name, size_t len);
int sg_http_is_get_or_head(h2o_req_t *req);
int sg_http_wants_event_stream(h2o_req_t *req); /* Accept names text/event-stream */
/* Prefer: sets *async for respond-async, *wait_ms for wait=N (left alone when absent). */
void sg_http_parse_prefer(h2o_req_t *req, int *async, int64_t *wait_ms);
int sg_cors_origin_allowed(const sg_conf_t *conf, const char *origin, size_t len);
void sg_problem_register_fallback(h2o_pathconf_t *fallback);

static inline sg_loop_t *sg_loop_of(h2o_req_t *req)
{
    return (sg_loop_t *)req->conn->ctx;
}

#endif
