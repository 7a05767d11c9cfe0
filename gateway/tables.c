/*
 * Table reads from the loop threads: GET /tables/{table}/{key} (point read), GET /tables/{table}
 * (scan), configured queries (another GET path onto a table), and the wait behind all of them
 * (watches stream from table_watch.c, parameters come from table_query.c).
 *
 * Every answer is read from one RocksDB snapshot together with the view's position, so its
 * Consistency-Token is exactly what the answer reflects. A read may name conditions on the view:
 * a token (header or ?token=), ?fresh=latest (the topic's high watermarks when the read arrived,
 * asked of the brokers off the loop) and ?min_stream_time= (each partition's stream time, or the
 * partition read up to its high watermark at arrival, so an idle partition never blocks). While
 * the view falls short the read is parked on its loop (park.h), woken by the materializer's
 * progress (no polling), up to limits.token_wait (Prefer: wait=N up to limits.token_wait_max);
 * still short at the deadline: 503 not-caught-up with the view's token, and 503 shutting-down if
 * the gateway stops first. It is never answered from an older state.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "respond.h"
#include "server.h"
#include "sg_materializer.h"
#include "sg_path.h"
#include "sg_placement.h"
#include "tables_int.h"

#define SG_SCAN_MAX_BYTES (4u * 1024u * 1024u) /* a page ends after the row crossing this size */
#define SG_FRESH_MIN_BUDGET_MS 2000            /* the brokers get this long for the watermarks in any case */

struct st_sg_tables_loop_t {
    h2o_linklist_t waiters;              /* parked reads and watches */
    h2o_multithread_receiver_t progress; /* "table N committed", from the materializer */
    h2o_multithread_receiver_t latest;   /* fresh=latest watermarks, from the materializer */
};

typedef struct st_sg_progress_msg_t {
    h2o_multithread_message_t message;
    size_t table_index;
} sg_progress_msg_t;

typedef struct st_sg_latest_msg_t {
    h2o_multithread_message_t message;
    sg_tq_t *tq;
    sg_token_t *highs; /* NULL: the brokers did not answer */
} sg_latest_msg_t;

typedef enum {
    SERVE_TRY,      /* answer if the view meets the conditions, else keep waiting */
    SERVE_DEADLINE, /* answer now: not met is 503 not-caught-up */
    SERVE_STOPPING, /* answer now: not met (or a watch) is 503 shutting-down */
} serve_mode_t;

static int topic_is(const char *topic, void *arg)
{
    return strcmp(topic, (const char *)arg) == 0;
}

static void add_token(h2o_req_t *req, const sg_token_t *token)
{
    char *text = h2o_mem_alloc_pool(&req->pool, SG_TOKEN_MAX_TEXT + 1);
    size_t len = sg_token_encode(token, text, SG_TOKEN_MAX_TEXT + 1);
    if (len > 0 && len <= SG_TOKEN_MAX_TEXT)
        sg_http_add_pooled_token(req, text, len);
}

/* The view's stream time for the table's topic: the largest of its partitions'. */
static int64_t stream_time_of(const sg_token_t *view, const char *topic)
{
    int64_t stream_time = 0;
    for (size_t i = 0; i < sg_token_count(view); ++i) {
        const char *entry_topic;
        int32_t partition;
        int64_t offset, entry_time;
        sg_token_entry(view, i, &entry_topic, &partition, &offset, &entry_time);
        if (strcmp(entry_topic, topic) == 0 && entry_time > stream_time)
            stream_time = entry_time;
    }
    return stream_time;
}

/* Stream-Time: a non-negative integer, formatted without printf (every read sends one). */
static void add_stream_time(h2o_req_t *req, int64_t stream_time)
{
    char digits[24];
    size_t at = sizeof(digits);
    uint64_t left = stream_time > 0 ? (uint64_t)stream_time : 0;
    do {
        digits[--at] = (char)('0' + left % 10);
        left /= 10;
    } while (left != 0);
    sg_http_add_stream_time(req, digits + at, sizeof(digits) - at);
}

void sg_tables_add_read_headers(h2o_req_t *req, const sg_token_t *token, const char *topic)
{
    add_token(req, token);
    add_stream_time(req, stream_time_of(token, topic));
}

/* --- conditions ------------------------------------------------------------------------------ */

/* Whether every partition of the table's topic has a stream time of at least min_stream_time or
 * has been applied up to its high watermark at the read's arrival (`arrival`: offset = high
 * watermark - 1 per non-empty partition). */
static int stream_time_reached(const sg_tq_t *tq, const sg_token_t *view)
{
    if (tq->arrival == NULL)
        return 0;
    for (size_t i = 0; i < sg_token_count(tq->arrival); ++i) {
        const char *topic;
        int32_t partition;
        int64_t last, ignored, offset = -1, stream_time = 0;
        sg_token_entry(tq->arrival, i, &topic, &partition, &last, &ignored);
        sg_token_get(view, topic, partition, &offset, &stream_time);
        if (stream_time < tq->min_stream_time && offset < last)
            return 0;
    }
    return 1;
}

/* One partition of a partitioned table: ready here, and the view has reached what the read asks
 * of it (the token's other partitions may be kept elsewhere). */
static int partition_met(const sg_tq_t *tq, const sg_token_t *view, int32_t partition)
{
    if (!sg_materializer_partition_ready(tq->park.loop->server->materializer, tq->table_index, partition))
        return 0;
    int64_t want = -1, have = -1, ignored;
    if (tq->wanted != NULL && sg_token_get(tq->wanted, tq->table->topic, partition, &want, &ignored) == 0 &&
        (sg_token_get(view, tq->table->topic, partition, &have, &ignored) != 0 || have < want))
        return 0;
    if (tq->min_stream_time < 0)
        return 1;
    int64_t last = -1, stream_time = 0;
    if (tq->arrival == NULL)
        return 0;
    if (sg_token_get(tq->arrival, tq->table->topic, partition, &last, &ignored) != 0)
        return 1; /* empty at arrival */
    sg_token_get(view, tq->table->topic, partition, &have, &stream_time);
    return stream_time >= tq->min_stream_time || have >= last;
}

/* The partitions a part of a scattered scan reads. */
static int partitions_met(const sg_tq_t *tq, const sg_token_t *view)
{
    for (int32_t p = 0; p < SG_PLACEMENT_MAX_PARTITIONS; ++p)
        if (tq->parts[p] && !partition_met(tq, view, p))
            return 0;
    return 1;
}

/* sg_table_scan_t.keep of a part of a scattered scan: rows of its partitions only. */
static int keep_part(void *parts, const void *key, size_t keylen, uint32_t partition)
{
    return partition < SG_PLACEMENT_MAX_PARTITIONS && ((const uint8_t *)parts)[partition];
}

/* Whether the view satisfies the read's token and stream-time conditions. */
static int conditions_met(const sg_tq_t *tq, const sg_token_t *view)
{
    if (tq->partition >= 0)
        return partition_met(tq, view, tq->partition);
    if (tq->parts != NULL)
        return partitions_met(tq, view);
    if (tq->wanted != NULL && !sg_token_covers(view, tq->wanted, topic_is, tq->table->topic))
        return 0;
    return tq->min_stream_time < 0 || stream_time_reached(tq, view);
}

/* --- answers --------------------------------------------------------------------------------- */

static void store_unavailable(h2o_req_t *req, const sg_table_conf_t *table, const char *err)
{
    sg_log_error("table %s: %s", table->name, err);
    sg_problem(req, SG_PROBLEM_STORE_UNAVAILABLE, NULL, "the table could not be read");
}

/* The row's answer (value in req's pool); its Consistency-Token and Stream-Time are already added. */
static void send_point(h2o_req_t *req, const sg_table_conf_t *table, int found, h2o_iovec_t value, const sg_table_version_t *version)
{
    if (!found) {
        sg_problem(req, SG_PROBLEM_NO_SUCH_ROW, "key", "table %s has no row for this key", table->name);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    char *etag = h2o_mem_alloc_pool(&req->pool, 18);
    etag[0] = etag[17] = '"';
    for (int i = 0; i < 16; ++i)
        etag[1 + i] = hex[(version->etag >> (60 - 4 * i)) & 0xf];
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, etag, 18);
    ssize_t inm = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (inm >= 0 && h2o_strstr(req->headers.entries[inm].value.base, req->headers.entries[inm].value.len, etag, 18) != SIZE_MAX) {
        sg_http_respond(req, 304, NULL, "", 0);
        return;
    }
    sg_http_respond_pooled(req, 200, "application/json", value);
}

typedef struct {
    char *data;
    size_t len, cap;
    size_t rows;
} sg_buf_t;

static void buf_add(sg_buf_t *buf, const void *data, size_t len)
{
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 4096;
        while (cap < buf->len + len + 1)
            cap *= 2;
        buf->data = sg_realloc(buf->data, cap);
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
}

/* Appends a key as a JSON string: {"key":"..."} for UTF-8 keys, {"key_base64url":"..."} else. */
static void buf_add_key(sg_buf_t *buf, const void *key, size_t keylen)
{
    json_t *text = json_stringn(key, keylen);
    if (text != NULL) {
        size_t n = json_dumpb(text, NULL, 0, JSON_ENCODE_ANY);
        char *quoted = sg_malloc(n);
        json_dumpb(text, quoted, n, JSON_ENCODE_ANY);
        buf_add(buf, "\"key\":", 6);
        buf_add(buf, quoted, n);
        free(quoted);
        json_decref(text);
        return;
    }
    char *encoded = sg_malloc(sg_b64url_encoded_len(keylen) + 1);
    size_t n = sg_b64url_encode(key, keylen, encoded);
    buf_add(buf, "\"key_base64url\":\"", 17);
    buf_add(buf, encoded, n);
    buf_add(buf, "\"", 1);
    free(encoded);
}

static int on_scan_row(void *arg, const void *key, size_t keylen, const void *value, size_t valuelen,
                       const sg_table_version_t *version)
{
    sg_buf_t *buf = arg;
    buf_add(buf, buf->rows > 0 ? ",{" : "{", buf->rows > 0 ? 2 : 1);
    ++buf->rows;
    buf_add_key(buf, key, keylen);
    buf_add(buf, ",\"value\":", 9);
    buf_add(buf, value, valuelen);
    buf_add(buf, "}", 1);
    return buf->len >= SG_SCAN_MAX_BYTES; /* a bounded page: the cursor goes on from here */
}

/* --- the read -------------------------------------------------------------------------------- */

void sg_tq_free(sg_tq_t *tq)
{
    free(tq->parts);
    sg_token_destroy(tq->wanted);
    sg_token_destroy(tq->arrival);
    free(tq);
}

void sg_tq_discard(h2o_req_t *req, sg_tq_t *tq)
{
    if (tq->park.holds_pending)
        sg_pending_release(sg_loop_of(req)->server);
    sg_tq_free(tq);
}

/* Ends the wait and frees the tq. Returns the request to answer. */
static h2o_req_t *tq_done(sg_tq_t *tq)
{
    h2o_req_t *req = sg_park_finish(&tq->park);
    sg_tq_free(tq);
    return req;
}

typedef struct {
    h2o_req_t *req;
    const sg_table_conf_t *table;
    const sg_token_t *wanted;
    int found;
    h2o_iovec_t value;
    sg_table_version_t version;
} sg_point_t;

/* Under the table's read lock: copies the row into req's pool and adds the view's headers (nothing
 * else). The header values are copied too: H2O's access log may read them once the view is gone. */
static void on_point_read(void *arg, const sg_table_read_t *read)
{
    sg_point_t *point = arg;
    h2o_req_t *req = point->req;
    point->found = read->found;
    if (read->found) {
        point->value = h2o_strdup(&req->pool, read->value, read->value_len);
        point->version = read->version;
    }
    if (point->wanted == NULL) {
        /* The common read: the view's own token and stream time, as text made once per commit. */
        size_t len;
        const char *text = sg_table_view_token_text(read->view, &len);
        sg_http_add_token(req, text, len);
        if ((text = sg_table_view_stream_time_text(read->view, point->table->topic, &len)) != NULL)
            sg_http_add_stream_time(req, text, len);
        else
            add_stream_time(req, sg_table_view_stream_time(read->view, point->table->topic));
    } else {
        sg_token_t *merged = sg_token_dup(sg_table_view_token(read->view));
        sg_token_merge(merged, point->wanted); /* one session token across instances and tables */
        sg_tables_add_read_headers(req, merged, point->table->topic);
        sg_token_destroy(merged);
    }
}

/* Reads the row from the table's current view and answers req with it. */
static void read_point(h2o_req_t *req, sg_server_t *server, const sg_table_conf_t *table, const char *key, size_t keylen,
                       const sg_token_t *wanted)
{
    char err[256];
    sg_point_t point = {.req = req, .table = table, .wanted = wanted};
    if (sg_tables_read(server->tables, table->name, key, keylen, on_point_read, &point, err, sizeof(err)) < 0)
        store_unavailable(req, table, err);
    else
        send_point(req, table, point.found, point.value, &point.version);
}

void sg_tables_read_point(h2o_req_t *req, const sg_table_conf_t *table, const char *key, size_t keylen)
{
    read_point(req, sg_loop_of(req)->server, table, key, keylen, NULL);
}

static void answer_point(sg_tq_t *tq)
{
    sg_server_t *server = tq->park.loop->server;
    const sg_table_conf_t *table = tq->table;
    const char *key = tq->key;
    size_t keylen = tq->keylen;
    sg_token_t *wanted = tq->wanted;
    tq->wanted = NULL;
    h2o_req_t *req = tq_done(tq);
    read_point(req, server, table, key, keylen, wanted);
    sg_token_destroy(wanted);
}

static void answer_scan(sg_tq_t *tq, sg_token_t *view)
{
    sg_server_t *server = tq->park.loop->server;
    const sg_table_conf_t *table = tq->table;
    char err[256];
    sg_buf_t buf = {0};
    buf_add(&buf, "{\"rows\":[", 9);
    char *next = NULL;
    if (tq->parts != NULL) {
        tq->scan.keep = keep_part;
        tq->scan.keep_arg = tq->parts;
    }
    int rows = sg_tables_scan(server->tables, table->name, &tq->scan, on_scan_row, &buf, &next, view, err, sizeof(err));
    if (tq->wanted != NULL)
        sg_token_merge(view, tq->wanted);
    h2o_req_t *req = tq_done(tq);
    if (rows < 0) {
        if (strstr(err, "cursor") != NULL)
            sg_problem(req, SG_PROBLEM_INVALID_CURSOR, "cursor", "%s", err);
        else
            store_unavailable(req, table, err);
    } else {
        buf_add(&buf, "],\"next\":", 9);
        if (next != NULL) {
            buf_add(&buf, "\"", 1);
            buf_add(&buf, next, strlen(next)); /* base64url: nothing to escape */
            buf_add(&buf, "\"}", 2);
        } else {
            buf_add(&buf, "null}", 5);
        }
        sg_tables_add_read_headers(req, view, table->topic);
        sg_http_respond(req, 200, "application/json", buf.data, buf.len);
    }
    free(next);
    free(buf.data);
}

/* Answers the read if the view meets its conditions (else, unless `mode` is SERVE_TRY, 503).
 * Returns 1 when the request was answered (or became a stream), 0 when it should wait. */
static int serve(sg_tq_t *tq, serve_mode_t mode)
{
    sg_server_t *server = tq->park.loop->server;
    const sg_table_conf_t *table = tq->table;
    char err[256];
    sg_token_t *view = sg_token_create();
    int answered = 1;
    int conditional = tq->wanted != NULL || tq->min_stream_time >= 0 || tq->partition >= 0 || tq->parts != NULL;
    if (conditional && sg_tables_token(server->tables, table->name, view, err, sizeof(err)) != 0) {
        store_unavailable(tq_done(tq), table, err);
    } else if (conditional && !conditions_met(tq, view)) {
        if (mode == SERVE_TRY) {
            answered = 0;
        } else {
            h2o_req_t *req = tq_done(tq);
            add_token(req, view); /* the view's own position: how far it has got */
            if (mode == SERVE_STOPPING)
                sg_problem(req, SG_PROBLEM_SHUTTING_DOWN, "Consistency-Token",
                           "the gateway is shutting down before table %s applied what the read asks for", table->name);
            else
                sg_problem(req, SG_PROBLEM_NOT_CAUGHT_UP, "Consistency-Token",
                           "table %s has not yet applied what the read asks for (token, fresh or min_stream_time)", table->name);
        }
    } else {
        /* Met: answer from a snapshot at least as new as the view just checked. */
        sg_token_destroy(view);
        view = sg_token_create();
        if (!tq->sse) {
            if (tq->key != NULL)
                answer_point(tq);
            else
                answer_scan(tq, view);
        } else if (mode == SERVE_STOPPING) {
            sg_problem(tq_done(tq), SG_PROBLEM_SHUTTING_DOWN, NULL, "the gateway is shutting down; retry on another instance");
        } else if (sg_tables_token(server->tables, table->name, view, err, sizeof(err)) != 0) {
            store_unavailable(tq_done(tq), table, err);
        } else {
            if (tq->wanted != NULL)
                sg_token_merge(view, tq->wanted);
            sg_watch_start(tq, view);
        }
    }
    sg_token_destroy(view);
    return answered;
}

/* Waits (with a deadline) unless the view already meets the conditions. */
static void proceed(sg_tq_t *tq)
{
    int stopping = sg_server_is_draining(tq->park.loop->server);
    int64_t left = tq->deadline_ms - sg_now_ms();
    if (serve(tq, stopping ? SERVE_STOPPING : left > 0 ? SERVE_TRY : SERVE_DEADLINE))
        return;
    if (!h2o_timeout_is_linked(&tq->park.deadline))
        sg_park_set_deadline(&tq->park, left);
}

static void on_tq_deadline(sg_park_t *park)
{
    sg_tq_t *tq = H2O_STRUCT_FROM_MEMBER(sg_tq_t, park, park);
    if (tq->sse_writer != NULL) {
        sg_watch_close(tq);
    } else if (tq->fresh_outstanding) {
        /* The brokers have not told us the watermarks in time: the read cannot be judged. The
         * tq stays until their answer arrives. */
        sg_problem(sg_park_finish(park), SG_PROBLEM_KAFKA_UNAVAILABLE, "fresh",
                   "the topic's high watermarks were not known in time");
    } else {
        serve(tq, SERVE_DEADLINE);
    }
}

/* Stopping: a waiting read is answered from the view if it now meets its conditions, else 503
 * shutting-down; a watch ends its stream, and one not yet streaming is not started. */
static void on_tq_drain(sg_park_t *park)
{
    sg_tq_t *tq = H2O_STRUCT_FROM_MEMBER(sg_tq_t, park, park);
    if (tq->sse_writer != NULL)
        sg_watch_close(tq);
    else if (tq->fresh_outstanding) /* the tq stays until the watermarks arrive */
        sg_problem(sg_park_finish(park), SG_PROBLEM_SHUTTING_DOWN, NULL, "the gateway is shutting down; retry on another instance");
    else
        serve(tq, SERVE_STOPPING);
}

static void on_tq_gone(sg_park_t *park)
{
    sg_tq_t *tq = H2O_STRUCT_FROM_MEMBER(sg_tq_t, park, park);
    if (!tq->fresh_outstanding) /* else freed when the watermarks arrive */
        sg_tq_free(tq);
}

static const sg_park_kind_t tq_park = {
    .metric = SG_PARKED_TABLE, .on_deadline = on_tq_deadline, .on_drain = on_tq_drain, .on_gone = on_tq_gone};

/* Materializer query thread: the watermarks for a fresh=latest read; to the read's loop. */
static void on_latest(void *ctx, int rc, const int32_t *partitions, const int64_t *highs, size_t n)
{
    sg_tq_t *tq = ctx;
    sg_latest_msg_t *msg = sg_calloc(1, sizeof(*msg));
    msg->tq = tq;
    if (rc == 0) {
        msg->highs = sg_token_create();
        for (size_t i = 0; i < n; ++i)
            if (highs[i] > 0)
                sg_token_advance(msg->highs, tq->table->topic, partitions[i], highs[i] - 1, 0);
    }
    h2o_multithread_send_message(&tq->park.loop->tables->latest, &msg->message);
}

void sg_tq_begin(h2o_req_t *req, sg_tq_t *tq, int64_t wait_ms)
{
    sg_loop_t *loop = sg_loop_of(req);
    sg_server_t *server = loop->server;
    /* Parked (and counted) before the view is read: a commit landing in between then wakes it
     * (the materializer skips the wake-up while nobody is counted). */
    if (tq->key != NULL && !tq->sse && tq->wanted == NULL && !tq->fresh && tq->min_stream_time < 0 &&
        (tq->partition < 0 || sg_materializer_partition_ready(server->materializer, tq->table_index, tq->partition))) {
        /* Nothing to wait for (a partitioned table's row: its partition is ready here): answered
         * from the current view, never parked; the limits.pending slot taken for a wait is given
         * back. */
        const sg_table_conf_t *table = tq->table;
        const char *key = tq->key;
        size_t keylen = tq->keylen;
        sg_tq_discard(req, tq);
        read_point(req, server, table, key, keylen, NULL);
        return;
    }
    sg_park_start(&tq->park, &tq_park, req, &loop->tables->waiters, &server->table_waiters);
    tq->deadline_ms = sg_now_ms() + wait_ms;
    if (!tq->fresh && tq->min_stream_time < 0) {
        proceed(tq);
        return;
    }
    /* The high watermarks as of now, from the brokers, off this loop; the read goes on when they
     * arrive (on_latest_msgs), within its deadline. */
    if (sg_materializer_query_latest(server->materializer, tq->table_index, on_latest, tq) != 0) {
        sg_problem(tq_done(tq), SG_PROBLEM_KAFKA_UNAVAILABLE, "fresh", "the table's topic is not known yet");
        return;
    }
    tq->fresh_outstanding = 1;
    int64_t budget = wait_ms > SG_FRESH_MIN_BUDGET_MS ? wait_ms : SG_FRESH_MIN_BUDGET_MS;
    tq->deadline_ms = sg_now_ms() + budget;
    sg_park_set_deadline(&tq->park, budget);
}

static void on_latest_msgs(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        sg_latest_msg_t *msg = H2O_STRUCT_FROM_MEMBER(sg_latest_msg_t, message.link, messages->next);
        h2o_linklist_unlink(&msg->message.link);
        sg_tq_t *tq = msg->tq;
        tq->fresh_outstanding = 0;
        if (!sg_park_is_parked(&tq->park)) {
            sg_tq_free(tq); /* the client left, or the read was answered at its deadline */
        } else if (msg->highs == NULL) {
            sg_problem(tq_done(tq), SG_PROBLEM_KAFKA_UNAVAILABLE, "fresh", "the topic's high watermarks could not be read");
        } else {
            if (tq->fresh) {
                if (tq->wanted == NULL)
                    tq->wanted = sg_token_create();
                sg_token_merge(tq->wanted, msg->highs);
            }
            tq->arrival = msg->highs;
            msg->highs = NULL;
            proceed(tq);
        }
        sg_token_destroy(msg->highs);
        free(msg);
    }
}

static void on_progress(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct st_sg_tables_loop_t *state = H2O_STRUCT_FROM_MEMBER(struct st_sg_tables_loop_t, progress, receiver);
    /* Several commits may have queued up while the loop was busy: each table is looked at once
     * for all of them (a watch or a waiting read only needs the latest state). */
    uint8_t touched[SG_TABLE_MAX_TABLES] = {0};
    while (!h2o_linklist_is_empty(messages)) {
        sg_progress_msg_t *msg = H2O_STRUCT_FROM_MEMBER(sg_progress_msg_t, message.link, messages->next);
        h2o_linklist_unlink(&msg->message.link);
        if (msg->table_index < SG_TABLE_MAX_TABLES)
            touched[msg->table_index] = 1;
        free(msg);
    }
    /* Collected first: answering unlinks (and frees) entries of the list. A read still waiting
     * for its watermarks is not judged yet. */
    size_t n = 0;
    for (h2o_linklist_t *at = state->waiters.next; at != &state->waiters; at = at->next)
        ++n;
    sg_tq_t **due = sg_malloc((n + 1) * sizeof(*due));
    size_t k = 0;
    for (h2o_linklist_t *at = state->waiters.next; at != &state->waiters; at = at->next) {
        sg_tq_t *tq = H2O_STRUCT_FROM_MEMBER(sg_tq_t, park.link, at);
        if (touched[tq->table_index] && !tq->fresh_outstanding)
            due[k++] = tq;
    }
    for (size_t i = 0; i < k; ++i) {
        if (due[i]->sse_writer != NULL)
            sg_watch_check(due[i]);
        else
            serve(due[i], SERVE_TRY);
    }
    free(due);
}

/* Materializer thread: a table committed a batch; wake the loops only if someone waits. */
void sg_gateway_on_table_progress(void *ctx, size_t table_index)
{
    sg_server_t *server = ctx;
    if (atomic_load(&server->table_waiters) == 0)
        return;
    for (size_t i = 0; i < server->n_loops; ++i) {
        sg_progress_msg_t *msg = sg_calloc(1, sizeof(*msg));
        msg->table_index = table_index;
        h2o_multithread_send_message(&server->loops[i].tables->progress, &msg->message);
    }
}

/* --- requests -------------------------------------------------------------------------------- */

static const sg_table_conf_t *find_table(const sg_conf_t *conf, const char *name, size_t len)
{
    for (size_t i = 0; i < conf->n_tables; ++i)
        if (strlen(conf->tables[i].name) == len && memcmp(conf->tables[i].name, name, len) == 0)
            return &conf->tables[i];
    return NULL;
}

static void invalid_key(h2o_req_t *req, const char *field)
{
    sg_problem(req, SG_PROBLEM_INVALID_KEY, field, "the key must be 1..%d bytes of valid percent-encoding without %%00",
               SG_TABLE_MAX_KEY);
}

/* /tables/{table}...: the table's own scopes (or public: true), else tables:read. */
static sg_access_rule_t access_rule(sg_server_t *server, h2o_req_t *req, const char *path, size_t path_len)
{
    static const char prefix[] = "/tables/";
    const sg_table_conf_t *table = NULL;
    if (path_len > sizeof(prefix) - 1) {
        const char *rest = path + sizeof(prefix) - 1;
        size_t rest_len = path_len - (sizeof(prefix) - 1);
        const char *slash = memchr(rest, '/', rest_len);
        table = find_table(server->conf, rest, slash ? (size_t)(slash - rest) : rest_len);
    }
    return sg_access_table_rule(server, table);
}

static void handle(h2o_req_t *req, const char *path, size_t path_len, sg_principal_t *principal)
{
    sg_server_t *server = sg_loop_of(req)->server;
    static const char prefix[] = "/tables/";
    if (path_len <= sizeof(prefix) - 1) {
        sg_problem(req, SG_PROBLEM_NOT_FOUND, NULL, "no resource at %.*s", (int)path_len, path);
        return;
    }
    const char *rest = path + sizeof(prefix) - 1;
    size_t rest_len = path_len - (sizeof(prefix) - 1);
    const char *slash = memchr(rest, '/', rest_len);
    size_t name_len = slash ? (size_t)(slash - rest) : rest_len;
    if (!sg_http_is_get_or_head(req)) {
        sg_problem_method_not_allowed(req, "GET, HEAD");
        return;
    }
    const sg_table_conf_t *table = find_table(server->conf, rest, name_len);
    if (table == NULL || server->tables == NULL) {
        sg_problem(req, SG_PROBLEM_UNKNOWN_TABLE, "table", "no table %.*s is configured", (int)(name_len > 100 ? 100 : name_len),
                   rest);
        return;
    }
    if (slash == NULL) {
        sg_tables_start_read(req, table, NULL, 0);
        return;
    }
    /* Decoded into the request's pool (the key lives as long as the request); a key is never
     * longer than its encoding. */
    size_t encoded_len = rest_len - (size_t)(slash + 1 - rest);
    char *key = encoded_len <= 3 * SG_TABLE_MAX_KEY ? h2o_mem_alloc_pool(&req->pool, encoded_len + 1) : NULL;
    long keylen = key != NULL ? sg_path_decode_into(slash + 1, encoded_len, key) : -1;
    if (keylen <= 0 || keylen > SG_TABLE_MAX_KEY) {
        invalid_key(req, "key");
        return;
    }
    sg_tables_start_read(req, table, key, (size_t)keylen);
}

void sg_tables_handle_query(h2o_req_t *req, size_t query_index, const sg_path_match_t *match, sg_principal_t *principal)
{
    sg_server_t *server = sg_loop_of(req)->server;
    const sg_query_conf_t *query = &server->conf->queries[query_index];
    const sg_table_conf_t *table = find_table(server->conf, query->table, strlen(query->table));
    if (table == NULL || server->tables == NULL) { /* config checks the name: defensive only */
        sg_problem(req, SG_PROBLEM_UNKNOWN_TABLE, "table", "no table %s is configured", query->table);
        return;
    }
    switch (query->key.source) {
    case SG_KEY_NONE:
        sg_tables_start_read(req, table, NULL, 0); /* the path names the table: a scan */
        return;
    case SG_KEY_PATH: {
        const sg_path_param_t *param = sg_path_match_get(match, query->key.name);
        if (param == NULL || param->len == 0 || param->len > SG_TABLE_MAX_KEY) {
            invalid_key(req, query->key.name);
            return;
        }
        sg_tables_start_read(req, table, h2o_strdup(&req->pool, param->value, param->len).base, param->len);
        return;
    }
    case SG_KEY_HEADER: {
        h2o_iovec_t value = sg_http_header(req, query->key.name, strlen(query->key.name));
        if (value.base == NULL || value.len == 0 || value.len > SG_TABLE_MAX_KEY) {
            sg_problem(req, value.base == NULL ? SG_PROBLEM_MISSING_KEY : SG_PROBLEM_INVALID_KEY, query->key.name,
                       "header %s (1..%d bytes) names the row", query->key.name, SG_TABLE_MAX_KEY);
            return;
        }
        sg_tables_start_read(req, table, value.base, value.len);
        return;
    }
    case SG_KEY_CLAIM: {
        /* The caller's own row (GET /me): config allows claim: only on endpoints that need a
         * credential, so there is a principal. */
        const char *claim = principal != NULL ? sg_principal_claim(principal, query->key.name) : NULL;
        size_t len = claim != NULL ? strlen(claim) : 0;
        if (claim == NULL || len == 0 || len > SG_TABLE_MAX_KEY) {
            sg_problem(req, claim == NULL ? SG_PROBLEM_MISSING_KEY : SG_PROBLEM_INVALID_KEY, query->key.name,
                       "the credential's claim %s (a string of 1..%d bytes) names the row", query->key.name, SG_TABLE_MAX_KEY);
            return;
        }
        sg_tables_start_read(req, table, h2o_strdup(&req->pool, claim, len).base, len);
        return;
    }
    case SG_KEY_BODY: break;
    }
    sg_problem(req, SG_PROBLEM_INVALID_KEY, "key", "a query has no body to take a key from");
}

static void init_loop(sg_loop_t *loop)
{
    struct st_sg_tables_loop_t *state = sg_calloc(1, sizeof(*state));
    h2o_linklist_init_anchor(&state->waiters);
    h2o_multithread_register_receiver(loop->ctx.queue, &state->progress, on_progress);
    h2o_multithread_register_receiver(loop->ctx.queue, &state->latest, on_latest_msgs);
    loop->tables = state;
}

static void drain(sg_loop_t *loop)
{
    sg_park_drain(&loop->tables->waiters);
}

const sg_feature_t sg_feature_tables = {
    .prefix = "/tables", .methods = "GET, HEAD", .access = access_rule, .handle = handle, .init_loop = init_loop, .drain = drain};
