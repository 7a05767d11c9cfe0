/*
 * One HTTP/1.1 exchange with another instance of the deployment (a forwarded table read, or one
 * part of a scattered scan): the request is the client's own method, path and the headers a read
 * depends on, plus Streamgate-Forwarded (one hop: the receiver never forwards it again); the
 * answer is collected whole (status, headers without hop-by-hop ones, body up to 16 MiB).
 * Connections are pooled per advertised URL and loop (H2O's socketpool; idle ones close after
 * 10 s). Whoever owns the exchange parks the client's request and bounds the wait (park.h); the
 * exchange has no deadline of its own beyond the I/O inactivity one. Loop thread only.
 */
#ifndef SG_EXCHANGE_H
#define SG_EXCHANGE_H

#include <h2o.h>

#include "gateway_int.h"

#define SG_FORWARDED_HEADER "streamgate-forwarded"
#define SG_SERVED_BY_HEADER "streamgate-served-by"

typedef struct st_sg_exchange_t sg_exchange_t;

/* The exchange ended: `error` NULL with status, headers and body filled, or why it failed (the
 * exchange is idle again either way; the callback may dispose of it and its owner). */
typedef void (*sg_exchange_done_cb)(sg_exchange_t *exchange, const char *error);

struct st_sg_exchange_t {
    h2o_http1client_t *client; /* while it runs */
    h2o_mem_pool_t pool;       /* the request text, the answer's headers */
    h2o_iovec_t request;
    int is_head;
    int status;
    h2o_headers_t headers;
    char *body;
    size_t body_len, body_cap;
    sg_exchange_done_cb done;
    void *data;
};

/** Prepares an idle exchange (caller memory). */
void sg_exchange_init(sg_exchange_t *exchange, sg_exchange_done_cb done, void *data);

/** Sends req's method, path (plus `extra_query`, "name=value", when not NULL) and read headers to
 * the instance at `url` (an advertised URL, http:// only). Returns 0 (done will be called
 * exactly once unless cancelled), or -1 for a URL it cannot reach. */
int sg_exchange_start(sg_exchange_t *exchange, h2o_req_t *req, const char *url, const char *extra_query);

/** Stops a running exchange (done is not called); idle: nothing. */
void sg_exchange_cancel(sg_exchange_t *exchange);

/** Cancels and frees what the exchange holds. */
void sg_exchange_dispose(sg_exchange_t *exchange);

/** Answers req with the exchange's answer: status, headers, body. */
void sg_exchange_relay(const sg_exchange_t *exchange, h2o_req_t *req);

/** The answer's first header called `name` (lower-case), or {NULL, 0}. */
h2o_iovec_t sg_exchange_header(const sg_exchange_t *exchange, const char *name);

/** The loop's list for requests parked on exchanges (drained when the gateway stops). */
h2o_linklist_t *sg_exchange_parked(sg_loop_t *loop);

#endif
