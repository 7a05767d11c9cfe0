/*
 * What a table read asks for, from its query string and headers: a scan's range and page
 * (prefix, from/to, limit, cursor), and the conditions on the view (Consistency-Token, ?token=,
 * Last-Event-ID, ?fresh=latest, ?min_stream_time=, Prefer: wait=N). Unknown or repeated
 * parameters are a 400 naming them, so a typo is never silently a full scan.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "respond.h"
#include "sg_path.h"
#include "sg_placement.h"
#include "tables_int.h"

#define SG_SCAN_DEFAULT_LIMIT 100
#define SG_QUERY_MAX_TOKEN 8192 /* bytes of a ?token= or Last-Event-ID */

/* `partitions` is set only by another instance of the deployment, on a part of a scattered scan. */
enum { QP_PREFIX, QP_FROM, QP_TO, QP_LIMIT, QP_CURSOR, QP_TOKEN, QP_FRESH, QP_MIN_STREAM_TIME, QP_PARTITIONS, QP_COUNT };
static const char *const qparam_names[QP_COUNT] = {"prefix", "from",  "to",
                                                   "limit",  "cursor", "token",
                                                   "fresh",  "min_stream_time", "partitions"};

/* Parses the query string into params (percent-decoded, in the pool; base NULL when absent).
 * Returns 0, or -1 after answering 400. */
static int parse_query(h2o_req_t *req, h2o_iovec_t params[QP_COUNT])
{
    memset(params, 0, QP_COUNT * sizeof(*params));
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *query = req->path.base + req->query_at + 1;
    sg_query_value_t values[QP_COUNT];
    size_t bad = 0, bad_len = 0;
    switch (sg_query_parse(query, req->path.len - req->query_at - 1, qparam_names, QP_COUNT, values, &bad, &bad_len)) {
    case SG_QUERY_OK: break;
    case SG_QUERY_UNKNOWN:
        sg_problem(req, SG_PROBLEM_INVALID_QUERY, "query",
                   "unknown query parameter %.*s (known: prefix, from, to, limit, cursor, token, fresh, min_stream_time)",
                   (int)(bad_len > 64 ? 64 : bad_len), query + bad);
        return -1;
    case SG_QUERY_TWICE:
        sg_problem(req, SG_PROBLEM_INVALID_QUERY, qparam_names[bad], "query parameter %s is given twice", qparam_names[bad]);
        return -1;
    case SG_QUERY_BAD_ENCODING:
        sg_problem(req, SG_PROBLEM_INVALID_QUERY, qparam_names[bad],
                   "query parameter %s is not valid percent-encoding (or holds %%00)", qparam_names[bad]);
        return -1;
    }
    for (int i = 0; i < QP_COUNT; ++i)
        if (values[i].value != NULL)
            params[i] = h2o_strdup(&req->pool, values[i].value, values[i].len);
    sg_query_values_free(values, QP_COUNT);
    return 0;
}

static int parse_int(h2o_iovec_t text, int64_t min, int64_t max, int64_t *out)
{
    if (text.len == 0 || text.len > 19)
        return -1;
    int64_t value = 0;
    for (size_t i = 0; i < text.len; ++i) {
        if (text.base[i] < '0' || text.base[i] > '9')
            return -1;
        int digit = text.base[i] - '0';
        if (value > (INT64_MAX - digit) / 10)
            return -1;
        value = value * 10 + digit;
    }
    if (value < min || value > max)
        return -1;
    *out = value;
    return 0;
}

/* Adds a token text (header, ?token= or Last-Event-ID) to the read's conditions. Returns 0, or
 * -1 after answering 400 naming `field`. */
static int add_wanted(h2o_req_t *req, sg_token_t **wanted, h2o_iovec_t text, const char *field)
{
    char err[256];
    sg_token_t *token = text.len <= SG_QUERY_MAX_TOKEN ? sg_token_decode(text.base, text.len, err, sizeof(err)) : NULL;
    if (token == NULL) {
        if (text.len > SG_QUERY_MAX_TOKEN)
            snprintf(err, sizeof(err), "longer than %d bytes", SG_QUERY_MAX_TOKEN);
        sg_problem(req, SG_PROBLEM_INVALID_CONSISTENCY_TOKEN, field, "%s", err);
        return -1;
    }
    if (*wanted == NULL) {
        *wanted = token;
        return 0;
    }
    int rc = sg_token_merge(*wanted, token);
    sg_token_destroy(token);
    if (rc != 0) {
        sg_problem(req, SG_PROBLEM_INVALID_CONSISTENCY_TOKEN, field, "the tokens together name too many partitions");
        return -1;
    }
    return 0;
}

/* A scan's range and page. Returns 0, or -1 after answering 400. */
static int parse_scan(h2o_req_t *req, const h2o_iovec_t params[QP_COUNT], sg_table_scan_t *scan)
{
    if (params[QP_PREFIX].base != NULL && (params[QP_FROM].base != NULL || params[QP_TO].base != NULL)) {
        sg_problem(req, SG_PROBLEM_INVALID_QUERY, "prefix", "a scan takes prefix or from/to, not both");
        return -1;
    }
    for (int i = QP_PREFIX; i <= QP_TO; ++i)
        if (params[i].base != NULL && params[i].len > SG_TABLE_MAX_KEY) {
            sg_problem(req, SG_PROBLEM_INVALID_QUERY, qparam_names[i], "%s is longer than a key (%d bytes)", qparam_names[i],
                       SG_TABLE_MAX_KEY);
            return -1;
        }
    scan->prefix = params[QP_PREFIX].base;
    scan->prefix_len = params[QP_PREFIX].len;
    scan->from = params[QP_FROM].base;
    scan->from_len = params[QP_FROM].len;
    scan->to = params[QP_TO].base;
    scan->to_len = params[QP_TO].len;
    int64_t limit = SG_SCAN_DEFAULT_LIMIT;
    if (params[QP_LIMIT].base != NULL && parse_int(params[QP_LIMIT], 1, SG_TABLE_SCAN_MAX_LIMIT, &limit) != 0) {
        sg_problem(req, SG_PROBLEM_INVALID_QUERY, "limit", "limit must be an integer 1..%d", SG_TABLE_SCAN_MAX_LIMIT);
        return -1;
    }
    scan->limit = (size_t)limit;
    if (params[QP_CURSOR].base != NULL) {
        if (params[QP_CURSOR].len == 0 || params[QP_CURSOR].len > SG_TABLE_MAX_CURSOR) {
            sg_problem(req, SG_PROBLEM_INVALID_CURSOR, "cursor", "cursor must be the next value of a previous page");
            return -1;
        }
        scan->cursor = params[QP_CURSOR].base; /* h2o_strdup NUL-terminates */
    }
    return 0;
}

/* A part of a scattered scan: the partitions "0,3,7" it reads, all kept here. Returns the flags
 * (owned), or NULL after answering 400 or 503. */
static uint8_t *parse_partitions(h2o_req_t *req, const sg_table_conf_t *table, size_t table_index, h2o_iovec_t text)
{
    sg_server_t *server = sg_loop_of(req)->server;
    int32_t n = sg_placement_partitions(server->placement, table_index);
    uint8_t *parts = sg_calloc(SG_PLACEMENT_MAX_PARTITIONS, 1);
    const char *at = text.base, *end = text.base + text.len;
    while (at < end) {
        const char *comma = memchr(at, ',', (size_t)(end - at));
        const char *stop = comma != NULL ? comma : end;
        int64_t partition = -1;
        if (parse_int(h2o_iovec_init(at, (size_t)(stop - at)), 0, n > 0 ? n - 1 : 0, &partition) != 0 || n <= 0) {
            free(parts);
            sg_problem(req, SG_PROBLEM_INVALID_QUERY, "partitions", "partitions lists partitions of the table's topic");
            return NULL;
        }
        sg_placement_route_t route;
        if (sg_placement_partition(server->placement, table_index, (int32_t)partition, &route) != 0 || route.role == SG_ROLE_NONE) {
            free(parts);
            sg_problem(req, SG_PROBLEM_PARTITION_MOVED, NULL, "table %s: partition %d is not kept by this instance any more",
                       table->name, (int)partition);
            return NULL;
        }
        parts[partition] = 1;
        at = stop + 1;
    }
    return parts;
}

void sg_tables_start_read(h2o_req_t *req, const sg_table_conf_t *table, const char *key, size_t keylen)
{
    sg_server_t *server = sg_loop_of(req)->server;
    const sg_conf_t *conf = server->conf;
    h2o_iovec_t params[QP_COUNT];
    if (parse_query(req, params) != 0)
        return;
    if (params[QP_PARTITIONS].base != NULL &&
        (key != NULL || sg_http_header(req, H2O_STRLIT("streamgate-forwarded")).base == NULL)) {
        sg_problem(req, SG_PROBLEM_INVALID_QUERY, "partitions",
                   "partitions is set only by another instance of the deployment, on a scan of a partitioned table");
        return;
    }
    if (key != NULL) {
        for (int i = QP_PREFIX; i <= QP_CURSOR; ++i)
            if (params[i].base != NULL) {
                sg_problem(req, SG_PROBLEM_INVALID_QUERY, qparam_names[i],
                           "%s applies to a table scan (GET /tables/%s), not to a row", qparam_names[i], table->name);
                return;
            }
    }
    sg_table_scan_t scan = {.limit = SG_SCAN_DEFAULT_LIMIT};
    if (key == NULL && parse_scan(req, params, &scan) != 0)
        return;
    int64_t min_stream_time = -1;
    if (params[QP_MIN_STREAM_TIME].base != NULL && parse_int(params[QP_MIN_STREAM_TIME], 0, INT64_MAX / 2, &min_stream_time) != 0) {
        sg_problem(req, SG_PROBLEM_INVALID_QUERY, "min_stream_time",
                   "min_stream_time must be milliseconds since the epoch (a non-negative integer)");
        return;
    }
    int fresh = params[QP_FRESH].base != NULL;
    if (fresh && !h2o_memis(params[QP_FRESH].base, params[QP_FRESH].len, H2O_STRLIT("latest"))) {
        sg_problem(req, SG_PROBLEM_INVALID_QUERY, "fresh", "fresh takes one value: latest");
        return;
    }
    int sse = key != NULL && sg_http_wants_event_stream(req);
    sg_token_t *wanted = NULL;
    h2o_iovec_t header = sg_http_header(req, H2O_STRLIT("consistency-token"));
    h2o_iovec_t last_event = sse ? sg_http_header(req, H2O_STRLIT("last-event-id")) : h2o_iovec_init(NULL, 0);
    if ((header.base != NULL && add_wanted(req, &wanted, header, "Consistency-Token") != 0) ||
        (params[QP_TOKEN].base != NULL && add_wanted(req, &wanted, params[QP_TOKEN], "token") != 0) ||
        (last_event.base != NULL && add_wanted(req, &wanted, last_event, "Last-Event-ID") != 0)) {
        sg_token_destroy(wanted);
        return;
    }
    size_t table_index = (size_t)(table - conf->tables);
    if (key != NULL && !sse && wanted == NULL && !fresh && min_stream_time < 0 &&
        !sg_placement_is_partitioned(server->placement, table_index)) {
        /* Nothing to wait for: answered from the current view at once (sg_tq_begin's answer
         * without a wait, minus the record of one). */
        sg_tables_read_point(req, table, key, keylen);
        return;
    }
    int64_t wait_ms = conf->limits.token_wait_ms;
    int async_ignored = 0;
    sg_http_parse_prefer(req, &async_ignored, &wait_ms);
    if (wait_ms > conf->limits.token_wait_max_ms)
        wait_ms = conf->limits.token_wait_max_ms;
    /* A watch and a fresh or min_stream_time read always wait (for the view, for the brokers'
     * answer): refused when the gateway is stopping, and at the limit. */
    int must_wait = sse || fresh || min_stream_time >= 0;
    if (must_wait && sg_server_is_draining(server)) {
        sg_token_destroy(wanted);
        sg_problem(req, SG_PROBLEM_SHUTTING_DOWN, NULL, "the gateway is shutting down; retry on another instance");
        return;
    }
    /* Waiting reads and watches count against limits.pending, like every request waiting on Kafka. */
    int holds_pending = (sse || wait_ms > 0) && sg_pending_acquire(server);
    if ((sse || wait_ms > 0) && !holds_pending) {
        if (must_wait) {
            sg_token_destroy(wanted);
            sg_problem(req, SG_PROBLEM_TOO_MANY_PENDING, NULL, "limits.pending (%u) requests are already waiting on Kafka",
                       conf->limits.pending);
            return;
        }
        wait_ms = 0; /* answered now: from the view if it meets the conditions, else 503 */
    }
    sg_tq_t *tq = sg_calloc(1, sizeof(*tq));
    tq->table = table;
    tq->table_index = table_index;
    tq->key = key;
    tq->keylen = keylen;
    tq->scan = scan;
    tq->wanted = wanted;
    tq->min_stream_time = min_stream_time;
    tq->fresh = fresh;
    tq->sse = sse;
    tq->resumed = last_event.base != NULL;
    tq->park.holds_pending = holds_pending; /* released when the wait ends */
    tq->partition = -1;
    if (sg_placement_is_partitioned(server->placement, tq->table_index)) {
        if (key != NULL) {
            sg_tables_route(req, tq, wait_ms);
            return;
        }
        if (params[QP_PARTITIONS].base == NULL) {
            sg_tables_scatter(req, tq, wait_ms);
            return;
        }
        if ((tq->parts = parse_partitions(req, table, tq->table_index, params[QP_PARTITIONS])) == NULL) {
            sg_tq_discard(req, tq);
            return;
        }
    }
    sg_tq_begin(req, tq, wait_ms);
}
