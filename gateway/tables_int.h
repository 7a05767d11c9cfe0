/*
 * Private to the table reads: the record of one read or watch (sg_tq_t) and what tables.c (reads,
 * conditions, the wait), table_query.c (a request's parameters) and table_watch.c (event streams)
 * offer each other. Loop thread of the request only.
 */
#ifndef SG_TABLES_INT_H
#define SG_TABLES_INT_H

#include "gateway_int.h"
#include "park.h"
#include "sg_table.h"
#include "sg_token.h"
#include "sse.h"

typedef struct st_sg_tq_t {
    sg_park_t park; /* the request while the read waits or the watch streams */
    const sg_table_conf_t *table;
    size_t table_index;
    /* what is read: a row (key != NULL) or a scan; pointers into req's pool */
    const char *key;
    size_t keylen;
    int32_t partition; /* a partitioned table's row: its partition, the only one its conditions name; else -1 */
    uint8_t *parts;    /* a part of a scattered scan: the partitions it reads (SG_PLACEMENT_MAX_PARTITIONS flags,
                        * owned), the only ones its conditions name; else NULL */
    sg_table_scan_t scan;
    /* conditions on the view */
    sg_token_t *wanted;      /* owned, NULL for none */
    int64_t min_stream_time; /* -1 for none */
    int fresh;               /* fresh=latest: the arrival watermarks join `wanted` */
    sg_token_t *arrival;     /* owned: high watermarks at arrival (fresh, min_stream_time) */
    int fresh_outstanding;   /* a watermark query is out: keep the tq until its answer */
    int64_t deadline_ms;     /* of the wait (not of a watch) */
    /* watch */
    int sse;              /* Accept: text/event-stream on a row */
    sg_sse_t *sse_writer; /* once the stream has started */
    int resumed;          /* Last-Event-ID given: skip a current row the client has seen */
    int dirty;            /* progress arrived while an event was being sent */
    int sent_any;
    int sent_present;
    uint64_t sent_etag;
} sg_tq_t;

/* tables.c */
/** Frees a tq that is no longer parked. */
void sg_tq_free(sg_tq_t *tq);
/** Frees a tq that was never parked, giving back the limits.pending slot it was given. */
void sg_tq_discard(h2o_req_t *req, sg_tq_t *tq);
/** Consistency-Token and Stream-Time of `token` for the table's topic. */
void sg_tables_add_read_headers(h2o_req_t *req, const sg_token_t *token, const char *topic);
/** Answers a read of the row `key` (in req's pool) from the table's current view, at once. */
void sg_tables_read_point(h2o_req_t *req, const sg_table_conf_t *table, const char *key, size_t keylen);
/** A filled tq (conditions and what to read) starts: it waits, or is answered at once. Takes tq;
 * `wait_ms` bounds the wait. */
void sg_tq_begin(h2o_req_t *req, sg_tq_t *tq, int64_t wait_ms);

/* table_query.c */
/** Reads the query string and headers of a table read of `key` (NULL: a scan) and begins it, or
 * answers 400/503. */
void sg_tables_start_read(h2o_req_t *req, const sg_table_conf_t *table, const char *key, size_t keylen);

/* table_forward.c */
/** A filled point read of a partitioned table: answered here where the key's partition is kept,
 * forwarded to its owner, or refused (503). Takes tq. */
void sg_tables_route(h2o_req_t *req, sg_tq_t *tq, int64_t wait_ms);

/* table_scatter.c */
/** A filled scan of a partitioned table: one page of each instance's partitions, merged in key
 * order. Takes tq. */
void sg_tables_scatter(h2o_req_t *req, sg_tq_t *tq, int64_t wait_ms);

/* table_watch.c */
/** The conditions hold: starts the stream with the current row (`view` includes the read's
 * token). The tq stays parked while it streams. */
void sg_watch_start(sg_tq_t *tq, const sg_token_t *view);
/** A commit may have changed the row: sends an event if it did. Returns 0 when the row could not
 * be read and the watch was closed (tq freed), else 1. */
int sg_watch_check(sg_tq_t *tq);
/** Ends the stream and frees the tq. */
void sg_watch_close(sg_tq_t *tq);

#endif
