/*
 * Table reads from the loop threads: GET /tables/{table}/{key} (point read), GET /tables/{table}
 * (scan), configured queries (another GET path onto a table), and watches (Accept:
 * text/event-stream on a point read).
 *
 * Every answer is read from one RocksDB snapshot together with the view's position, so its
 * Consistency-Token is exactly what the answer reflects. A read may name conditions on the view:
 * a token (header or ?token=), ?fresh=latest (the topic's high watermarks when the read arrived,
 * asked of the brokers off the loop) and ?min_stream_time= (each partition's stream time, or the
 * partition read up to its high watermark at arrival, so an idle partition never blocks). While the view
 * falls short the read waits on its loop, woken by the materializer's progress (no polling),
 * up to limits.token_wait (Prefer: wait=N up to limits.token_wait_max); still short at the
 * deadline: 503 not-caught-up with the view's token. It is never answered from an older state.
 *
 * A watch first waits like a read, then streams the row: an `update` or `delete` event now and
 * on every committed change, each with the view's token as its id. Last-Event-ID is such a
 * token: the resumed watch waits until the view covers it and skips a current row the client
 * has already seen. Watches end after SG_WATCH_MS (EventSource reconnects with Last-Event-ID).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway_int.h"
#include "server.h"
#include "sg_materializer.h"
#include "sg_path.h"
#include "sg_table.h"
#include "sg_token.h"

#define SG_SCAN_DEFAULT_LIMIT 100
#define SG_SCAN_MAX_BYTES (4u * 1024u * 1024u) /* a page ends after the row crossing this size */
#define SG_QUERY_MAX_TOKEN 8192                /* bytes of a ?token= or Last-Event-ID */
#define SG_WATCH_MS (60 * 1000)

typedef struct st_sg_tq_t {
    h2o_linklist_t link; /* in loop->table_waiters while waiting or watching */
    int linked;
    sg_loop_t *loop;
    h2o_req_t *req; /* NULL once the client is gone */
    struct st_sg_tq_t **guard;
    const sg_table_conf_t *table;
    size_t table_index;
    /* what is read: a row (key != NULL) or a scan; pointers into req's pool */
    const char *key;
    size_t keylen;
    sg_table_scan_t scan;
    /* conditions on the view */
    sg_token_t *wanted;      /* owned, NULL for none */
    int64_t min_stream_time; /* -1 for none */
    int fresh;               /* fresh=latest: the arrival watermarks join `wanted` */
    sg_token_t *arrival;     /* owned: high watermarks at arrival (fresh, min_stream_time) */
    int fresh_outstanding;   /* a watermark query is out: keep the tq until its answer */
    int64_t deadline_ms;     /* of the wait (not of a watch) */
    h2o_timeout_entry_t timeout_entry;
    /* watch */
    int sse;
    int streaming; /* the response has started */
    int sending;   /* an h2o_send waits for proceed */
    int dirty;     /* progress arrived while sending */
    int closing;   /* end the stream at the next chance */
    int resumed;   /* Last-Event-ID given: skip a current row the client has seen */
    int sent_any;
    int sent_present;
    uint64_t sent_etag;
    char *event; /* the event being sent (heap), freed once sent */
    h2o_generator_t generator;
} sg_tq_t;

typedef struct st_sg_progress_msg_t {
    h2o_multithread_message_t message;
    size_t table_index;
} sg_progress_msg_t;

typedef struct st_sg_latest_msg_t {
    h2o_multithread_message_t message;
    sg_tq_t *tq;
    sg_token_t *highs; /* NULL: the brokers did not answer */
} sg_latest_msg_t;

static const sg_table_conf_t *find_table(const sg_conf_t *conf, const char *name, size_t len)
{
    for (size_t i = 0; i < conf->n_tables; ++i)
        if (strlen(conf->tables[i].name) == len && memcmp(conf->tables[i].name, name, len) == 0)
            return &conf->tables[i];
    return NULL;
}

static int topic_is(const char *topic, void *arg)
{
    return strcmp(topic, (const char *)arg) == 0;
}

/* The token's text in the pool (any size a token can have). */
static h2o_iovec_t token_text(h2o_req_t *req, const sg_token_t *token)
{
    char *text = h2o_mem_alloc_pool(&req->pool, SG_TOKEN_MAX_TEXT + 1);
    size_t len = sg_token_encode(token, text, SG_TOKEN_MAX_TEXT + 1);
    return h2o_iovec_init(text, len <= SG_TOKEN_MAX_TEXT ? len : 0);
}

static void add_token(h2o_req_t *req, const sg_token_t *token)
{
    h2o_iovec_t text = token_text(req, token);
    if (text.len > 0)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("consistency-token"), 0, NULL, text.base, text.len);
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

static void add_read_headers(h2o_req_t *req, const sg_token_t *token, const char *topic)
{
    add_token(req, token);
    char text[24];
    int n = snprintf(text, sizeof(text), "%" PRId64, stream_time_of(token, topic));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("stream-time"), 0, NULL,
                          h2o_strdup(&req->pool, text, (size_t)n).base, (size_t)n);
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

/* Whether the view satisfies the read's token and stream-time conditions. */
static int conditions_met(const sg_tq_t *tq, const sg_token_t *view)
{
    if (tq->wanted != NULL && !sg_token_covers(view, tq->wanted, topic_is, tq->table->topic))
        return 0;
    return tq->min_stream_time < 0 || stream_time_reached(tq, view);
}

/* --- answers --------------------------------------------------------------------------------- */

static void store_unavailable(h2o_req_t *req, const sg_table_conf_t *table, const char *err)
{
    fprintf(stderr, "streamgate: table %s: %s\n", table->name, err);
    sg_problem_send(req, 503, "Service Unavailable", "store-unavailable", "Store Unavailable", NULL, "the table could not be read");
}

static void send_point(h2o_req_t *req, const sg_table_conf_t *table, int rc, const void *value, size_t value_len,
                       const sg_table_version_t *version, const sg_token_t *token)
{
    add_read_headers(req, token, table->topic);
    if (rc == 1) {
        sg_problem_send(req, 404, "Not Found", "no-such-row", "No Such Row", "key", "table %s has no row for this key",
                        table->name);
        return;
    }
    char etag[24];
    int n = snprintf(etag, sizeof(etag), "\"%016" PRIx64 "\"", version->etag);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, h2o_strdup(&req->pool, etag, (size_t)n).base, (size_t)n);
    ssize_t inm = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (inm >= 0 &&
        h2o_strstr(req->headers.entries[inm].value.base, req->headers.entries[inm].value.len, etag, (size_t)n) != SIZE_MAX) {
        sg_http_respond(req, 304, "Not Modified", NULL, "", 0);
        return;
    }
    sg_http_respond(req, 200, "OK", "application/json", value, value_len);
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
        if ((buf->data = realloc(buf->data, cap)) == NULL)
            abort();
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
        char small[512];
        size_t n = json_dumpb(text, small, sizeof(small), JSON_ENCODE_ANY);
        buf_add(buf, "\"key\":", 6);
        if (n <= sizeof(small)) {
            buf_add(buf, small, n);
        } else {
            char *big = malloc(n);
            if (big == NULL)
                abort();
            json_dumpb(text, big, n, JSON_ENCODE_ANY);
            buf_add(buf, big, n);
            free(big);
        }
        json_decref(text);
        return;
    }
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *in = key;
    buf_add(buf, "\"key_base64url\":\"", 17);
    for (size_t i = 0; i < keylen; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < keylen ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < keylen ? in[i + 2] : 0);
        char out[4] = {alphabet[v >> 18 & 63], alphabet[v >> 12 & 63], alphabet[v >> 6 & 63], alphabet[v & 63]};
        buf_add(buf, out, i + 2 < keylen ? 4 : i + 1 < keylen ? 3 : 2);
    }
    buf_add(buf, "\"", 1);
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

/* --- watches --------------------------------------------------------------------------------- */

/* One SSE event, in a heap buffer the watch owns until H2O has sent it (events of a long watch
 * must not pile up in the request's pool). The value's lines each become a data: line. */
static h2o_iovec_t sse_event(sg_tq_t *tq, const char *kind, const sg_token_t *token, const char *value, size_t value_len)
{
    char *id_text = malloc(SG_TOKEN_MAX_TEXT + 1);
    if (id_text == NULL)
        abort();
    size_t id_len = sg_token_encode(token, id_text, SG_TOKEN_MAX_TEXT + 1);
    h2o_iovec_t id = h2o_iovec_init(id_text, id_len <= SG_TOKEN_MAX_TEXT ? id_len : 0);
    size_t newlines = 0;
    for (size_t i = 0; i < value_len; ++i)
        newlines += value[i] == '\n';
    size_t cap = 32 + strlen(kind) + id.len + value_len + newlines * 6 + 2;
    free(tq->event);
    char *text = tq->event = malloc(cap);
    if (text == NULL)
        abort();
    size_t len = (size_t)snprintf(text, cap, "event: %s\nid: %.*s\ndata: ", kind, (int)id.len, id.base);
    free(id_text);
    for (size_t i = 0; i < value_len; ++i) {
        if (value[i] == '\n') {
            memcpy(text + len, "\ndata: ", 7);
            len += 7;
        } else if (value[i] != '\r') {
            text[len++] = value[i];
        }
    }
    memcpy(text + len, "\n\n", 2);
    len += 2;
    return h2o_iovec_init(text, len);
}

static void unlink_tq(sg_tq_t *tq)
{
    if (tq->linked) {
        h2o_linklist_unlink(&tq->link);
        atomic_fetch_sub(&tq->loop->server->table_waiters, 1);
        tq->linked = 0;
    }
    if (h2o_timeout_is_linked(&tq->timeout_entry))
        h2o_timeout_unlink(&tq->timeout_entry);
}

static void link_tq(sg_tq_t *tq)
{
    if (!tq->linked) {
        h2o_linklist_insert(&tq->loop->table_waiters, &tq->link);
        atomic_fetch_add(&tq->loop->server->table_waiters, 1);
        tq->linked = 1;
    }
}

/* Ends the stream (FINAL). The tq is freed when the request is disposed. */
static void watch_close(sg_tq_t *tq)
{
    unlink_tq(tq);
    if (tq->sending) {
        tq->closing = 1;
        return;
    }
    tq->sending = 1;
    h2o_send(tq->req, NULL, 0, H2O_SEND_STATE_FINAL);
}

/* Reads the watched row and sends an event if it differs from what the client has. */
static void watch_check(sg_tq_t *tq)
{
    if (tq->sending) {
        tq->dirty = 1;
        return;
    }
    sg_server_t *server = tq->loop->server;
    char err[256];
    void *value = NULL;
    size_t value_len = 0;
    sg_table_version_t version;
    sg_token_t *view = sg_token_create();
    int rc =
        sg_tables_get(server->tables, tq->table->name, tq->key, tq->keylen, &value, &value_len, &version, view, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "streamgate: table %s: %s (closing a watch)\n", tq->table->name, err);
        sg_token_destroy(view);
        watch_close(tq);
        return;
    }
    int present = rc == 0;
    int changed = !tq->sent_any || present != tq->sent_present || (present && version.etag != tq->sent_etag);
    if (changed && tq->resumed && !tq->sent_any) {
        /* Resumed: a row whose record the client's last event already covered is not news. */
        int64_t seen = -1;
        if (present && sg_token_get(tq->wanted, tq->table->topic, version.partition, &seen, NULL) == 0 && version.offset <= seen)
            changed = 0;
        tq->sent_any = 1;
        tq->sent_present = present;
        tq->sent_etag = present ? version.etag : 0;
    }
    if (changed) {
        if (tq->wanted != NULL)
            sg_token_merge(view, tq->wanted);
        h2o_iovec_t event = present ? sse_event(tq, "update", view, value, value_len) : sse_event(tq, "delete", view, "null", 4);
        tq->sent_any = 1;
        tq->sent_present = present;
        tq->sent_etag = present ? version.etag : 0;
        tq->sending = 1;
        h2o_send(tq->req, &event, 1, H2O_SEND_STATE_IN_PROGRESS);
    }
    free(value);
    sg_token_destroy(view);
}

static void on_watch_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    sg_tq_t *tq = H2O_STRUCT_FROM_MEMBER(sg_tq_t, generator, generator);
    tq->sending = 0;
    free(tq->event);
    tq->event = NULL;
    if (tq->closing) {
        tq->sending = 1;
        h2o_send(tq->req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    if (tq->dirty) {
        tq->dirty = 0;
        watch_check(tq);
    }
}

static void on_watch_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    /* the client went away; the pool guard frees the tq when the request is disposed */
}

static void on_watch_end(h2o_timeout_entry_t *entry)
{
    watch_close(H2O_STRUCT_FROM_MEMBER(sg_tq_t, timeout_entry, entry));
}

/* The conditions hold: start the stream with the current row. */
static void watch_start(sg_tq_t *tq, const sg_token_t *view)
{
    h2o_req_t *req = tq->req;
    sg_server_t *server = tq->loop->server;
    req->res.status = 200;
    req->res.reason = "OK";
    add_read_headers(req, view, tq->table->topic);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    sg_cors_apply(server->conf, req);
    tq->generator = (h2o_generator_t){on_watch_proceed, on_watch_stop};
    tq->streaming = 1;
    h2o_start_response(req, &tq->generator);
    link_tq(tq);
    if (h2o_timeout_is_linked(&tq->timeout_entry))
        h2o_timeout_unlink(&tq->timeout_entry);
    tq->timeout_entry.cb = on_watch_end;
    h2o_timeout_link(tq->loop->ctx.loop, sg_loop_wait_timeout(tq->loop, SG_WATCH_MS), &tq->timeout_entry);
    watch_check(tq);
    if (!tq->sending) {
        /* Nothing new for a resumed client: a comment, so the stream's headers leave now. */
        static h2o_iovec_t hello = {": resumed\n\n", 11};
        tq->sending = 1;
        h2o_send(req, &hello, 1, H2O_SEND_STATE_IN_PROGRESS);
    }
}

/* --- the read -------------------------------------------------------------------------------- */

static void tq_free(sg_tq_t *tq)
{
    unlink_tq(tq);
    sg_token_destroy(tq->wanted);
    sg_token_destroy(tq->arrival);
    free(tq->event);
    free(tq);
}

/* Detaches the tq from its request (answered, or about to be), and frees it. */
static void tq_done(sg_tq_t *tq)
{
    if (tq->guard != NULL)
        *tq->guard = NULL;
    tq_free(tq);
}

/* Answers the read if the view meets its conditions (or, if `final`, 503). Returns 1 when the
 * request was answered (or became a stream), 0 when it should wait. */
static int serve(sg_tq_t *tq, int final)
{
    h2o_req_t *req = tq->req;
    const sg_table_conf_t *table = tq->table;
    sg_server_t *server = tq->loop->server;
    char err[256];
    sg_token_t *view = sg_token_create();
    int answered = 1;
    int conditional = tq->wanted != NULL || tq->min_stream_time >= 0;
    if (conditional && sg_tables_token(server->tables, tq->table->name, view, err, sizeof(err)) != 0) {
        tq_done(tq);
        store_unavailable(req, table, err);
        goto done;
    }
    if (conditional && !conditions_met(tq, view)) {
        if (!final) {
            answered = 0;
            goto done;
        }
        tq_done(tq);
        add_token(req, view); /* the view's own position: how far it has got */
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        sg_problem_send(req, 503, "Service Unavailable", "not-caught-up", "Not Caught Up", "Consistency-Token",
                        "table %s has not yet applied what the read asks for (token, fresh or min_stream_time)", table->name);
        goto done;
    }
    /* Met: answer from a snapshot at least as new as the view just checked. */
    sg_token_destroy(view);
    view = sg_token_create();
    if (tq->sse) {
        if (sg_tables_token(server->tables, tq->table->name, view, err, sizeof(err)) != 0) {
            tq_done(tq);
            store_unavailable(req, table, err);
            goto done;
        }
        if (tq->wanted != NULL)
            sg_token_merge(view, tq->wanted);
        watch_start(tq, view);
        goto done;
    }
    if (tq->key != NULL) {
        void *value = NULL;
        size_t value_len = 0;
        sg_table_version_t version;
        int rc = sg_tables_get(server->tables, tq->table->name, tq->key, tq->keylen, &value, &value_len, &version, view, err,
                               sizeof(err));
        if (rc >= 0 && tq->wanted != NULL)
            sg_token_merge(view, tq->wanted); /* one session token across instances and tables */
        tq_done(tq);
        if (rc < 0)
            store_unavailable(req, table, err);
        else
            send_point(req, table, rc, value, value_len, &version, view);
        free(value);
        goto done;
    }
    sg_buf_t buf = {0};
    buf_add(&buf, "{\"rows\":[", 9);
    char *next = NULL;
    int rows = sg_tables_scan(server->tables, tq->table->name, &tq->scan, on_scan_row, &buf, &next, view, err, sizeof(err));
    if (rows < 0) {
        tq_done(tq);
        free(buf.data);
        if (strstr(err, "cursor") != NULL)
            sg_problem_send(req, 400, "Bad Request", "invalid-cursor", "Invalid Cursor", "cursor", "%s", err);
        else
            store_unavailable(req, table, err);
        goto done;
    }
    buf_add(&buf, "],\"next\":", 9);
    if (next != NULL) {
        buf_add(&buf, "\"", 1);
        buf_add(&buf, next, strlen(next)); /* base64url: nothing to escape */
        buf_add(&buf, "\"}", 2);
    } else {
        buf_add(&buf, "null}", 5);
    }
    free(next);
    if (tq->wanted != NULL)
        sg_token_merge(view, tq->wanted);
    tq_done(tq);
    add_read_headers(req, view, table->topic);
    sg_http_respond(req, 200, "OK", "application/json", buf.data, buf.len);
    free(buf.data);
done:
    sg_token_destroy(view);
    return answered;
}

static void on_wait_timeout(h2o_timeout_entry_t *entry)
{
    sg_tq_t *tq = H2O_STRUCT_FROM_MEMBER(sg_tq_t, timeout_entry, entry);
    if (tq->fresh_outstanding) {
        /* The brokers have not told us the watermarks in time: the read cannot be judged. */
        h2o_req_t *req = tq->req;
        tq->req = NULL; /* the tq waits for the answer, then is freed */
        *tq->guard = NULL;
        tq->guard = NULL;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        sg_problem_send(req, 503, "Service Unavailable", "kafka-unavailable", "Kafka Unavailable", "fresh",
                        "the topic's high watermarks were not known in time");
        return;
    }
    serve(tq, 1);
}

static void on_guard_dispose(void *p)
{
    sg_tq_t **guard = p;
    sg_tq_t *tq = *guard;
    if (tq == NULL)
        return;
    tq->req = NULL;
    tq->guard = NULL;
    if (tq->fresh_outstanding)
        unlink_tq(tq); /* freed when the watermarks arrive */
    else
        tq_free(tq);
}

/* Waits (linked, with a deadline) unless the view already meets the conditions. */
static void proceed(sg_tq_t *tq)
{
    int can_wait = tq->deadline_ms > sg_now_ms();
    /* Counted as waiting before the view is read: a commit landing in between then wakes it
     * (the materializer skips the wake-up while nobody is counted). */
    if (can_wait)
        link_tq(tq);
    if (serve(tq, !can_wait))
        return;
    link_tq(tq);
    if (!h2o_timeout_is_linked(&tq->timeout_entry)) {
        tq->timeout_entry.cb = on_wait_timeout;
        h2o_timeout_link(tq->loop->ctx.loop, sg_loop_wait_timeout(tq->loop, tq->deadline_ms - sg_now_ms()), &tq->timeout_entry);
    }
}

void sg_tables_on_progress(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    sg_loop_t *loop = H2O_STRUCT_FROM_MEMBER(sg_loop_t, table_progress, receiver);
    /* Several commits may have queued up while the loop was busy: each table is looked at once
     * for all of them (a watch or a waiting read only needs the latest state). */
    size_t n_tables = loop->server->conf->n_tables;
    uint8_t *touched = calloc(n_tables + 1, 1);
    if (touched == NULL)
        abort();
    while (!h2o_linklist_is_empty(messages)) {
        sg_progress_msg_t *msg = H2O_STRUCT_FROM_MEMBER(sg_progress_msg_t, message.link, messages->next);
        h2o_linklist_unlink(&msg->message.link);
        if (msg->table_index < n_tables)
            touched[msg->table_index] = 1;
        free(msg);
    }
    /* Collected first: answering may unlink (and free) entries of the list. */
    size_t n = 0;
    for (h2o_linklist_t *at = loop->table_waiters.next; at != &loop->table_waiters; at = at->next)
        ++n;
    sg_tq_t **due = n ? malloc(n * sizeof(*due)) : NULL;
    if (n && due == NULL)
        abort();
    size_t k = 0;
    for (h2o_linklist_t *at = loop->table_waiters.next; at != &loop->table_waiters; at = at->next) {
        sg_tq_t *tq = H2O_STRUCT_FROM_MEMBER(sg_tq_t, link, at);
        if (touched[tq->table_index])
            due[k++] = tq;
    }
    for (size_t i = 0; i < k; ++i) {
        sg_tq_t *tq = due[i];
        if (tq->streaming)
            watch_check(tq);
        else
            serve(tq, 0);
    }
    free(due);
    free(touched);
}

/* Materializer thread: a table committed a batch; wake the loops only if someone waits. */
void sg_tables_progress_cb(void *ctx, size_t table_index)
{
    sg_server_t *server = ctx;
    if (atomic_load(&server->table_waiters) == 0)
        return;
    for (size_t i = 0; i < server->n_loops; ++i) {
        sg_progress_msg_t *msg = calloc(1, sizeof(*msg));
        if (msg == NULL)
            abort();
        msg->table_index = table_index;
        h2o_multithread_send_message(&server->loops[i].table_progress, &msg->message);
    }
}

/* Materializer query thread: the watermarks for a fresh=latest read; to the read's loop. */
static void on_latest(void *ctx, int rc, const int32_t *partitions, const int64_t *highs, size_t n)
{
    sg_tq_t *tq = ctx;
    sg_latest_msg_t *msg = calloc(1, sizeof(*msg));
    if (msg == NULL)
        abort();
    msg->tq = tq;
    if (rc == 0) {
        msg->highs = sg_token_create();
        for (size_t i = 0; i < n; ++i)
            if (highs[i] > 0)
                sg_token_advance(msg->highs, tq->table->topic, partitions[i], highs[i] - 1, 0);
    }
    h2o_multithread_send_message(&tq->loop->table_latest, &msg->message);
}

void sg_tables_on_latest(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        sg_latest_msg_t *msg = H2O_STRUCT_FROM_MEMBER(sg_latest_msg_t, message.link, messages->next);
        h2o_linklist_unlink(&msg->message.link);
        sg_tq_t *tq = msg->tq;
        tq->fresh_outstanding = 0;
        atomic_fetch_sub(&tq->loop->server->table_waiters, 1);
        if (tq->req == NULL) {
            tq_free(tq); /* the client left, or the read was answered at its deadline */
        } else if (msg->highs == NULL) {
            h2o_req_t *req = tq->req;
            tq_done(tq);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
            sg_problem_send(req, 503, "Service Unavailable", "kafka-unavailable", "Kafka Unavailable", "fresh",
                            "the topic's high watermarks could not be read");
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

void sg_tables_drain(sg_loop_t *loop)
{
    /* Stopping: waiting reads get their answer now (503 if still behind), watches end. */
    while (!h2o_linklist_is_empty(&loop->table_waiters)) {
        sg_tq_t *tq = H2O_STRUCT_FROM_MEMBER(sg_tq_t, link, loop->table_waiters.next);
        if (tq->streaming)
            watch_close(tq);
        else
            serve(tq, 1);
    }
}

/* --- parsing --------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    h2o_iovec_t value; /* percent-decoded, in the pool; base NULL when absent */
} sg_qparam_t;

enum { QP_PREFIX, QP_FROM, QP_TO, QP_LIMIT, QP_CURSOR, QP_TOKEN, QP_FRESH, QP_MIN_STREAM_TIME, QP_COUNT };
static const char *const qparam_names[QP_COUNT] = {"prefix", "from", "to", "limit", "cursor", "token", "fresh", "min_stream_time"};

/* Parses the query string into params. Returns 0, or -1 after answering 400. */
static int parse_query(h2o_req_t *req, h2o_iovec_t params[QP_COUNT])
{
    memset(params, 0, QP_COUNT * sizeof(*params));
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *at = req->path.base + req->query_at + 1;
    const char *end = req->path.base + req->path.len;
    while (at < end) {
        const char *amp = memchr(at, '&', (size_t)(end - at));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(at, '=', (size_t)(stop - at));
        const char *name_end = eq ? eq : stop;
        size_t name_len = (size_t)(name_end - at);
        if (name_len > 0) {
            int which = -1;
            for (int i = 0; i < QP_COUNT; ++i)
                if (strlen(qparam_names[i]) == name_len && memcmp(qparam_names[i], at, name_len) == 0)
                    which = i;
            if (which < 0) {
                sg_problem_send(req, 400, "Bad Request", "invalid-query", "Invalid Query", "query",
                                "unknown query parameter %.*s (known: prefix, from, to, limit, cursor, token, fresh, "
                                "min_stream_time)",
                                (int)(name_len > 64 ? 64 : name_len), at);
                return -1;
            }
            if (params[which].base != NULL) {
                sg_problem_send(req, 400, "Bad Request", "invalid-query", "Invalid Query", qparam_names[which],
                                "query parameter %s is given twice", qparam_names[which]);
                return -1;
            }
            const char *value = eq ? eq + 1 : stop;
            size_t decoded_len = 0;
            char *decoded = sg_path_decode(value, (size_t)(stop - value), &decoded_len);
            if (decoded == NULL) {
                sg_problem_send(req, 400, "Bad Request", "invalid-query", "Invalid Query", qparam_names[which],
                                "query parameter %s is not valid percent-encoding (or holds %%00)", qparam_names[which]);
                return -1;
            }
            params[which] = h2o_strdup(&req->pool, decoded, decoded_len);
            free(decoded);
        }
        at = stop + 1;
    }
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
        sg_problem_send(req, 400, "Bad Request", "invalid-token", "Invalid Consistency-Token", field, "%s", err);
        return -1;
    }
    if (*wanted == NULL) {
        *wanted = token;
        return 0;
    }
    int rc = sg_token_merge(*wanted, token);
    sg_token_destroy(token);
    if (rc != 0) {
        sg_problem_send(req, 400, "Bad Request", "invalid-token", "Invalid Consistency-Token", field,
                        "the tokens together name too many partitions");
        return -1;
    }
    return 0;
}

/* The common read: key (NULL for a scan) already validated; the query string gives the rest. */
static void start_read(h2o_req_t *req, const sg_table_conf_t *table, const char *key, size_t keylen)
{
    sg_loop_t *loop = sg_loop_of(req);
    sg_server_t *server = loop->server;
    const sg_conf_t *conf = server->conf;
    h2o_iovec_t params[QP_COUNT];
    if (parse_query(req, params) != 0)
        return;
    if (key != NULL) {
        for (int i = QP_PREFIX; i <= QP_CURSOR; ++i)
            if (params[i].base != NULL) {
                sg_problem_send(req, 400, "Bad Request", "invalid-query", "Invalid Query", qparam_names[i],
                                "%s applies to a table scan (GET /tables/%s), not to a row", qparam_names[i], table->name);
                return;
            }
    }
    sg_table_scan_t scan = {.limit = SG_SCAN_DEFAULT_LIMIT};
    if (key == NULL) {
        if (params[QP_PREFIX].base != NULL && (params[QP_FROM].base != NULL || params[QP_TO].base != NULL)) {
            sg_problem_send(req, 400, "Bad Request", "invalid-query", "Invalid Query", "prefix",
                            "a scan takes prefix or from/to, not both");
            return;
        }
        for (int i = QP_PREFIX; i <= QP_TO; ++i)
            if (params[i].base != NULL && params[i].len > SG_TABLE_MAX_KEY) {
                sg_problem_send(req, 400, "Bad Request", "invalid-query", "Invalid Query", qparam_names[i],
                                "%s is longer than a key (%d bytes)", qparam_names[i], SG_TABLE_MAX_KEY);
                return;
            }
        scan.prefix = params[QP_PREFIX].base;
        scan.prefix_len = params[QP_PREFIX].len;
        scan.from = params[QP_FROM].base;
        scan.from_len = params[QP_FROM].len;
        scan.to = params[QP_TO].base;
        scan.to_len = params[QP_TO].len;
        int64_t limit = SG_SCAN_DEFAULT_LIMIT;
        if (params[QP_LIMIT].base != NULL && parse_int(params[QP_LIMIT], 1, SG_TABLE_SCAN_MAX_LIMIT, &limit) != 0) {
            sg_problem_send(req, 400, "Bad Request", "invalid-query", "Invalid Query", "limit", "limit must be an integer 1..%d",
                            SG_TABLE_SCAN_MAX_LIMIT);
            return;
        }
        scan.limit = (size_t)limit;
        if (params[QP_CURSOR].base != NULL) {
            if (params[QP_CURSOR].len == 0 || params[QP_CURSOR].len > SG_TABLE_MAX_CURSOR) {
                sg_problem_send(req, 400, "Bad Request", "invalid-cursor", "Invalid Cursor", "cursor",
                                "cursor must be the next value of a previous page");
                return;
            }
            scan.cursor = params[QP_CURSOR].base; /* h2o_strdup NUL-terminates */
        }
    }
    int64_t min_stream_time = -1;
    if (params[QP_MIN_STREAM_TIME].base != NULL && parse_int(params[QP_MIN_STREAM_TIME], 0, INT64_MAX / 2, &min_stream_time) != 0) {
        sg_problem_send(req, 400, "Bad Request", "invalid-query", "Invalid Query", "min_stream_time",
                        "min_stream_time must be milliseconds since the epoch (a non-negative integer)");
        return;
    }
    if (params[QP_FRESH].base != NULL && !h2o_memis(params[QP_FRESH].base, params[QP_FRESH].len, H2O_STRLIT("latest"))) {
        sg_problem_send(req, 400, "Bad Request", "invalid-query", "Invalid Query", "fresh", "fresh takes one value: latest");
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
    int64_t wait_ms = conf->limits.token_wait_ms;
    int async_ignored = 0;
    sg_http_parse_prefer(req, &async_ignored, &wait_ms);
    if (wait_ms > conf->limits.token_wait_max_ms)
        wait_ms = conf->limits.token_wait_max_ms;
    /* Waiting reads and watches count against limits.pending, like waiting commands. */
    long busy = atomic_load(&server->table_waiters);
    if ((sse || wait_ms > 0) && busy >= (long)conf->limits.pending) {
        if (sse) {
            sg_token_destroy(wanted);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
            sg_problem_send(req, 503, "Service Unavailable", "too-many-pending", "Too Many Pending Requests", NULL,
                            "limits.pending (%u) table reads and watches are already waiting", conf->limits.pending);
            return;
        }
        if (params[QP_FRESH].base != NULL || min_stream_time >= 0) {
            /* these always wait for the brokers' answer: refused at the limit */
            sg_token_destroy(wanted);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
            sg_problem_send(req, 503, "Service Unavailable", "too-many-pending", "Too Many Pending Requests", NULL,
                            "limits.pending (%u) table reads and watches are already waiting", conf->limits.pending);
            return;
        }
        wait_ms = 0; /* answered now: from the view if it meets the conditions, else 503 */
    }
    sg_tq_t *tq = calloc(1, sizeof(*tq));
    if (tq == NULL)
        abort();
    tq->loop = loop;
    tq->req = req;
    tq->table = table;
    tq->table_index = (size_t)(table - conf->tables);
    tq->key = key;
    tq->keylen = keylen;
    tq->scan = scan;
    tq->wanted = wanted;
    tq->min_stream_time = min_stream_time;
    tq->sse = sse;
    tq->resumed = last_event.base != NULL;
    tq->deadline_ms = sg_now_ms() + wait_ms;
    tq->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*tq->guard), on_guard_dispose);
    *tq->guard = tq;
    tq->fresh = params[QP_FRESH].base != NULL;
    if (tq->fresh || min_stream_time >= 0) {
        /* The high watermarks as of now, from the brokers, off this loop; the read goes on
         * when they arrive (sg_tables_on_latest), within its deadline. */
        if (sg_materializer_query_latest(server->materializer, tq->table_index, on_latest, tq) != 0) {
            tq_done(tq);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
            sg_problem_send(req, 503, "Service Unavailable", "kafka-unavailable", "Kafka Unavailable", "fresh",
                            "the table's topic is not known yet");
            return;
        }
        tq->fresh_outstanding = 1;
        atomic_fetch_add(&server->table_waiters, 1);      /* counted until the watermarks arrive */
        int64_t budget = wait_ms > 2000 ? wait_ms : 2000; /* the brokers get their time in any case */
        tq->deadline_ms = sg_now_ms() + budget;
        tq->timeout_entry.cb = on_wait_timeout;
        h2o_timeout_link(loop->ctx.loop, sg_loop_wait_timeout(loop, budget), &tq->timeout_entry);
        return;
    }
    proceed(tq);
}

static void invalid_key(h2o_req_t *req, const char *field)
{
    sg_problem_send(req, 400, "Bad Request", "invalid-key", "Invalid Key", field,
                    "the key must be 1..%d bytes of valid percent-encoding without %%00", SG_TABLE_MAX_KEY);
}

void sg_tables_handle(h2o_req_t *req, const char *path, size_t path_len)
{
    sg_server_t *server = sg_loop_of(req)->server;
    const char *rest = path + sizeof("/tables/") - 1;
    size_t rest_len = path_len - (sizeof("/tables/") - 1);
    const char *slash = memchr(rest, '/', rest_len);
    size_t name_len = slash ? (size_t)(slash - rest) : rest_len;
    if (!sg_http_is_get_or_head(req)) {
        sg_problem_method_not_allowed(req, "GET, HEAD");
        return;
    }
    const sg_table_conf_t *table = find_table(server->conf, rest, name_len);
    if (table == NULL || server->tables == NULL) {
        sg_problem_send(req, 404, "Not Found", "unknown-table", "Unknown Table", "table", "no table %.*s is configured",
                        (int)(name_len > 100 ? 100 : name_len), rest);
        return;
    }
    if (slash == NULL) {
        start_read(req, table, NULL, 0);
        return;
    }
    size_t keylen = 0;
    char *decoded = sg_path_decode(slash + 1, rest_len - (size_t)(slash + 1 - rest), &keylen);
    if (decoded == NULL || keylen == 0 || keylen > SG_TABLE_MAX_KEY) {
        free(decoded);
        invalid_key(req, "key");
        return;
    }
    char *key = h2o_strdup(&req->pool, decoded, keylen).base;
    free(decoded);
    start_read(req, table, key, keylen);
}

void sg_tables_handle_query(h2o_req_t *req, size_t query_index, const sg_path_match_t *match)
{
    sg_server_t *server = sg_loop_of(req)->server;
    const sg_query_conf_t *query = &server->conf->queries[query_index];
    const sg_table_conf_t *table = find_table(server->conf, query->table, strlen(query->table));
    if (table == NULL || server->tables == NULL) { /* config checks the name: defensive only */
        sg_problem_send(req, 404, "Not Found", "unknown-table", "Unknown Table", "table", "no table %s is configured",
                        query->table);
        return;
    }
    switch (query->key.source) {
    case SG_KEY_NONE:
        start_read(req, table, NULL, 0); /* the path names the table: a scan */
        return;
    case SG_KEY_PATH: {
        const sg_path_param_t *param = sg_path_match_get(match, query->key.name);
        if (param == NULL || param->len == 0 || param->len > SG_TABLE_MAX_KEY) {
            invalid_key(req, query->key.name);
            return;
        }
        start_read(req, table, h2o_strdup(&req->pool, param->value, param->len).base, param->len);
        return;
    }
    case SG_KEY_HEADER: {
        h2o_iovec_t value = sg_http_header(req, query->key.name, strlen(query->key.name));
        if (value.base == NULL || value.len == 0 || value.len > SG_TABLE_MAX_KEY) {
            sg_problem_send(req, 400, "Bad Request", value.base == NULL ? "missing-key" : "invalid-key",
                            value.base == NULL ? "Missing Key" : "Invalid Key", query->key.name,
                            "header %s (1..%d bytes) names the row", query->key.name, SG_TABLE_MAX_KEY);
            return;
        }
        start_read(req, table, value.base, value.len);
        return;
    }
    case SG_KEY_BODY: break;
    }
    sg_problem_send(req, 400, "Bad Request", "invalid-key", "Invalid Key", "key", "a query has no body to take a key from");
}
