/*
 * Recording the metrics that are counted per request (builtin.c's /metrics table reads them).
 *
 * Each loop has its own counters and histogram buckets, written only by that loop with relaxed
 * loads and stores (no read-modify-write, no cache line shared with another loop); a scrape sums
 * every loop's values. Histograms have fixed bucket boundaries (SG_HISTOGRAM_BOUNDS_US).
 *
 * Requests are counted by route label (a configured route's name, a query's path, a built-in's
 * prefix, "static" or "unmatched") and status class, and timed, by a logger H2O calls on every
 * pathconf when a request is done. Dispatch marks each request with its label and start time (a
 * prefilter in the request's pool: no allocation beyond the pool's); requests H2O answers before
 * any handler have no mark and count as "unmatched" from the time H2O read their head.
 */
#ifndef SG_METRICS_H
#define SG_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

typedef struct st_sg_loop_t sg_loop_t;
typedef struct st_sg_server_t sg_server_t;

#define SG_HISTOGRAM_BUCKETS 16
/* Upper bounds of the buckets, microseconds (and as Prometheus "le" labels, seconds). */
#define SG_HISTOGRAM_BOUNDS_US                                                                                                     \
    {                                                                                                                              \
        500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000,         \
            60000000                                                                                                               \
    }
#define SG_HISTOGRAM_BOUNDS_TEXT                                                                                                   \
    {                                                                                                                              \
        "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60"     \
    }

typedef struct st_sg_histogram_t {
    atomic_ullong buckets[SG_HISTOGRAM_BUCKETS + 1]; /* not cumulative; the last: above every bound */
    atomic_ullong sum_us;
} sg_histogram_t;

/* Status classes of requests_total: 1xx..5xx, and "closed" (the client left before an answer). */
#define SG_STATUS_CLASSES 6

/* Causes of produce errors, in order of -SG_BRIDGE_E_* - 1 (sg_bridge.h). */
#define SG_PRODUCE_ERROR_CAUSES 5

/* What a parked request waits for (park.h kinds), for streamgate_parked_requests{kind}. */
typedef enum { SG_PARKED_COMMAND = 0, SG_PARKED_STATUS, SG_PARKED_TABLE, SG_PARKED_REGISTRY, SG_PARKED_KINDS } sg_parked_kind_t;

typedef struct st_sg_metrics_loop_t {
    size_t n_labels;
    sg_histogram_t *request_duration;             /* per label */
    atomic_ullong (*requests)[SG_STATUS_CLASSES]; /* per label, per status class */
    sg_histogram_t produce_ack;                   /* produce call -> broker acknowledgement */
    sg_histogram_t reply_wait;                    /* broker acknowledgement -> reply, for waiting requests */
    atomic_ullong produce_errors[SG_PRODUCE_ERROR_CAUSES];
} sg_metrics_loop_t;

/** Adds `n` to a counter only its loop writes (a relaxed load and store). */
static inline void sg_metrics_add(atomic_ullong *counter, uint64_t n)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n, memory_order_relaxed);
}

/** Records one observation of `us` microseconds (loop thread of the histogram's loop). */
void sg_histogram_observe(sg_histogram_t *histogram, int64_t us);

/* --- route labels ---------------------------------------------------------------------------- */

/** Number of route labels: routes, queries, reserved prefixes, "static", "unmatched". */
size_t sg_metrics_n_labels(const sg_server_t *server);
/** The text of label `i` (static or owned by the config). */
const char *sg_metrics_label_text(const sg_server_t *server, size_t i);
size_t sg_metrics_label_route(const sg_server_t *server, size_t route_index);
size_t sg_metrics_label_query(const sg_server_t *server, size_t query_index);
size_t sg_metrics_label_prefix(const sg_server_t *server, const char *prefix);
size_t sg_metrics_label_static(const sg_server_t *server);
size_t sg_metrics_label_unmatched(const sg_server_t *server);

/* --- recording (loop thread) ------------------------------------------------------------------ */

/** The loop's counters (its thread, before it serves). */
void sg_metrics_init_loop(sg_loop_t *loop);
/** Marks a request dispatched now, as `label` (changed later with sg_metrics_set_label). */
void sg_metrics_mark(h2o_req_t *req, size_t label);
/** Changes the label of a marked request (no-op for an unmarked one). */
void sg_metrics_set_label(h2o_req_t *req, size_t label);
/** Registers the logger that counts and times requests on `pathconf` (main thread). */
void sg_metrics_register_logger(h2o_pathconf_t *pathconf);
/** Counts a produce error: `rc` is an SG_BRIDGE_E_* code. */
void sg_metrics_produce_error(sg_loop_t *loop, int rc);

#endif
