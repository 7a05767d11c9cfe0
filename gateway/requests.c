/*
 * The request status resource, GET /requests/{id}, and the records behind it.
 *
 * Every instance records every reply it reads (the reply consumer reads all partitions), and
 * the PENDING record of each request it produced, in its RocksDB store: so any instance of the
 * deployment can answer for any id, and a restart keeps what was answered. The id's MAC tells a
 * forged id (404) from a real one without a lookup; a real id with no record is pending until
 * its retention has passed, then expired.
 *
 * Long-polls (Prefer: wait=N) park the request on its loop's watcher list. The bridge thread,
 * after recording a reply, tells every loop with watchers; each loop re-reads the store for its
 * matching watchers. No polling loop anywhere.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "gateway_int.h"
#include "sg_store.h"

#define SG_WATCH_MAX_WAIT_MS (60 * 1000)

typedef struct st_sg_watch_t {
    h2o_linklist_t link; /* in loop->watchers */
    sg_loop_t *loop;
    h2o_req_t *req;
    struct st_sg_watch_t **guard;
    sg_reqid_t id;
    char id_text[SG_REQID_TEXT_LEN + 1];
    h2o_timeout_entry_t timeout_entry;
    int linked; /* in loop->watchers (and counted in server->watchers) */
    /* Accept: text/event-stream: the response stays open; freed when the request is disposed */
    int sse;
    h2o_generator_t generator;
    int sending;        /* an h2o_send is waiting for proceed */
    h2o_iovec_t queued; /* the final event, when it had to wait */
} sg_watch_t;

typedef struct st_sg_stored_msg_t {
    h2o_multithread_message_t message;
    sg_reqid_t id;
} sg_stored_msg_t;

/* --- recording (bridge thread) ------------------------------------------------------------ */

void sg_requests_record_pending(sg_server_t *server, const char *id_text, int64_t created_ms)
{
    sg_request_record_t rec = {
        .state = SG_REQUEST_PENDING, .created_ms = created_ms, .expires_ms = created_ms + server->conf->requests.retention_ms};
    char err[256];
    if (sg_store_put_request(server->store, id_text, SG_REQID_TEXT_LEN, &rec, err, sizeof(err)) < 0)
        fprintf(stderr, "streamgate: request store: %s\n", err);
}

void sg_requests_record_done(sg_server_t *server, const sg_reqid_t *id, const char *id_text, const sg_request_record_t *outcome)
{
    sg_request_record_t rec = *outcome;
    rec.state = SG_REQUEST_DONE;
    rec.created_ms = (int64_t)id->time_ms;
    rec.expires_ms = (int64_t)id->time_ms + server->conf->requests.retention_ms;
    char err[256];
    if (sg_store_put_request(server->store, id_text, SG_REQID_TEXT_LEN, &rec, err, sizeof(err)) < 0) {
        fprintf(stderr, "streamgate: request store: %s\n", err);
        return;
    }
    if (atomic_load(&server->watchers) == 0)
        return;
    for (size_t i = 0; i < server->n_loops; ++i) {
        sg_stored_msg_t *msg = calloc(1, sizeof(*msg));
        if (msg == NULL)
            abort();
        msg->id = *id;
        h2o_multithread_send_message(&server->loops[i].stored, &msg->message);
    }
}

/* --- the resource (loop threads) ---------------------------------------------------------- */

static json_t *body_json(const sg_request_record_t *rec)
{
    if (rec->body == NULL || rec->body_len == 0)
        return json_null();
    /* JSON bodies are embedded as JSON; anything else as a string (or null if not UTF-8). */
    if (rec->content_type == NULL || strstr(rec->content_type, "json") != NULL) {
        json_t *parsed = json_loadb(rec->body, rec->body_len, JSON_DECODE_ANY, NULL);
        if (parsed != NULL)
            return parsed;
    }
    json_t *text = json_stringn(rec->body, rec->body_len);
    return text != NULL ? text : json_null();
}

/* The status document {"id","state","response"}, in req's pool. */
static h2o_iovec_t state_json(h2o_req_t *req, const char *id_text, const char *state, const sg_request_record_t *rec)
{
    json_t *doc = json_pack("{s:s, s:s}", "id", id_text, "state", state);
    if (rec != NULL && rec->state == SG_REQUEST_DONE) {
        json_t *headers = rec->headers_json ? json_loads(rec->headers_json, 0, NULL) : NULL;
        if (headers == NULL)
            headers = json_object();
        if (rec->content_type != NULL)
            json_object_set_new(headers, "content-type", json_string(rec->content_type));
        json_object_set_new(doc, "response",
                            json_pack("{s:i, s:o, s:o}", "status", rec->status, "headers", headers, "body", body_json(rec)));
    }
    size_t len = json_dumpb(doc, NULL, 0, JSON_COMPACT);
    char *body = h2o_mem_alloc_pool(&req->pool, len + 1);
    json_dumpb(doc, body, len, JSON_COMPACT);
    json_decref(doc);
    return h2o_iovec_init(body, len);
}

static void respond_state(h2o_req_t *req, const char *id_text, const char *state, const sg_request_record_t *rec)
{
    if (rec != NULL && rec->state == SG_REQUEST_DONE && rec->token != NULL)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("consistency-token"), 0, NULL,
                              h2o_strdup(&req->pool, rec->token, SIZE_MAX).base, strlen(rec->token));
    h2o_iovec_t doc = state_json(req, id_text, state, rec);
    sg_http_respond(req, 200, "OK", "application/json", doc.base, doc.len);
}

/* One SSE event: "event: <state>" and the status document as data. */
static h2o_iovec_t sse_event(h2o_req_t *req, const char *id_text, const char *state, const sg_request_record_t *rec)
{
    h2o_iovec_t doc = state_json(req, id_text, state, rec);
    size_t cap = doc.len + strlen(state) + 32;
    char *text = h2o_mem_alloc_pool(&req->pool, cap);
    int len = snprintf(text, cap, "event: %s\ndata: %.*s\n\n", state, (int)doc.len, doc.base);
    return h2o_iovec_init(text, (size_t)len);
}

static void sse_send(sg_watch_t *watch, h2o_iovec_t event, h2o_send_state_t state)
{
    if (watch->sending) { /* h2o allows one send in flight: the final event waits for proceed */
        watch->queued = event;
        return;
    }
    watch->sending = 1;
    h2o_send(watch->req, &event, 1, state);
}

static void on_sse_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    sg_watch_t *watch = H2O_STRUCT_FROM_MEMBER(sg_watch_t, generator, generator);
    watch->sending = 0;
    if (watch->queued.base != NULL) {
        h2o_iovec_t event = watch->queued;
        watch->queued = h2o_iovec_init(NULL, 0);
        sse_send(watch, event, H2O_SEND_STATE_FINAL);
    }
}

static void on_sse_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    /* the client went away; the pool guard frees the watch when the request is disposed */
}

/* Reads the state of a valid id. Returns "done", "pending" or "expired"; rec is filled (and
 * must be disposed) when the return is "done" or a stored "pending". */
static const char *lookup(sg_server_t *server, const sg_reqid_t *id, const char *id_text, sg_request_record_t *rec, int *have_rec)
{
    char err[256];
    int64_t now = sg_now_ms();
    *have_rec = 0;
    int rc = sg_store_get_request(server->store, id_text, SG_REQID_TEXT_LEN, now, rec, err, sizeof(err));
    if (rc == 0) {
        *have_rec = 1;
        return rec->state == SG_REQUEST_DONE ? "done" : "pending";
    }
    if (rc < 0)
        fprintf(stderr, "streamgate: request store: %s\n", err);
    return (int64_t)id->time_ms + server->conf->requests.retention_ms <= now ? "expired" : "pending";
}

static void watch_unlink(sg_watch_t *watch)
{
    if (watch->linked) {
        h2o_linklist_unlink(&watch->link);
        atomic_fetch_sub(&watch->loop->server->watchers, 1);
        watch->linked = 0;
    }
    if (h2o_timeout_is_linked(&watch->timeout_entry))
        h2o_timeout_unlink(&watch->timeout_entry);
}

/* The state may have changed (or the wait ended): answer with the current state. A long-poll
 * is answered and freed; an event stream gets its final event and is freed on dispose. */
static void watch_finish(sg_watch_t *watch)
{
    sg_server_t *server = watch->loop->server;
    watch_unlink(watch);
    sg_request_record_t rec;
    int have_rec;
    const char *state = lookup(server, &watch->id, watch->id_text, &rec, &have_rec);
    if (watch->sse) {
        sse_send(watch, sse_event(watch->req, watch->id_text, state, have_rec ? &rec : NULL), H2O_SEND_STATE_FINAL);
    } else {
        *watch->guard = NULL;
        respond_state(watch->req, watch->id_text, state, have_rec ? &rec : NULL);
        free(watch);
    }
    if (have_rec)
        sg_request_record_dispose(&rec);
}

static void on_watch_timeout(h2o_timeout_entry_t *entry)
{
    watch_finish(H2O_STRUCT_FROM_MEMBER(sg_watch_t, timeout_entry, entry));
}

static void on_watch_guard_dispose(void *p)
{
    sg_watch_t **guard = p;
    if (*guard != NULL) {
        watch_unlink(*guard);
        free(*guard);
    }
}

/* Field by field: the struct has padding, so memcmp would compare garbage. */
static int same_id(const sg_reqid_t *a, const sg_reqid_t *b)
{
    return a->time_ms == b->time_ms && a->instance == b->instance && a->loop == b->loop && a->counter == b->counter;
}

void sg_requests_on_stored(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    sg_loop_t *loop = H2O_STRUCT_FROM_MEMBER(sg_loop_t, stored, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        sg_stored_msg_t *msg = H2O_STRUCT_FROM_MEMBER(sg_stored_msg_t, message.link, messages->next);
        h2o_linklist_unlink(&msg->message.link);
        for (h2o_linklist_t *at = loop->watchers.next; at != &loop->watchers;) {
            sg_watch_t *watch = H2O_STRUCT_FROM_MEMBER(sg_watch_t, link, at);
            at = at->next;
            if (same_id(&watch->id, &msg->id))
                watch_finish(watch);
        }
        free(msg);
    }
}

void sg_requests_handle(h2o_req_t *req, const char *path, size_t path_len)
{
    sg_loop_t *loop = sg_loop_of(req);
    sg_server_t *server = loop->server;
    static const char prefix[] = "/requests/";
    const char *id_text = path + sizeof(prefix) - 1;
    size_t id_len = path_len - (sizeof(prefix) - 1);
    sg_reqid_t id;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        sg_problem_method_not_allowed(req, "GET");
        return;
    }
    if (sg_reqid_parse(&server->reqid_key, id_text, id_len, &id) != 0) {
        sg_problem_send(req, 404, "Not Found", "unknown-request", "Unknown Request", "id",
                        "no request has this id (it is malformed, forged, or from another deployment)");
        return;
    }
    char text[SG_REQID_TEXT_LEN + 1];
    memcpy(text, id_text, SG_REQID_TEXT_LEN);
    text[SG_REQID_TEXT_LEN] = '\0';

    sg_request_record_t rec;
    int have_rec;
    const char *state = lookup(server, &id, text, &rec, &have_rec);
    int sse = sg_http_wants_event_stream(req);
    int async_ignored = 0;
    int64_t wait_ms = 0;
    sg_http_parse_prefer(req, &async_ignored, &wait_ms);
    if (sse || wait_ms > SG_WATCH_MAX_WAIT_MS)
        wait_ms = SG_WATCH_MAX_WAIT_MS;
    if (strcmp(state, "pending") != 0 && !sse) {
        respond_state(req, text, state, have_rec ? &rec : NULL);
    } else if (wait_ms == 0) {
        respond_state(req, text, state, have_rec ? &rec : NULL);
    } else {
        /* Park until the bridge records the reply, or the wait ends; parked requests count
         * against limits.pending like waiting commands do. */
        if (atomic_load(&server->watchers) >= (long)server->conf->limits.pending) {
            if (have_rec)
                sg_request_record_dispose(&rec);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
            sg_problem_send(req, 503, "Service Unavailable", "too-many-pending", "Too Many Pending Requests", NULL,
                            "limits.pending (%u) status requests are already waiting", server->conf->limits.pending);
            return;
        }
        sg_watch_t *watch = calloc(1, sizeof(*watch));
        if (watch == NULL)
            abort();
        watch->loop = loop;
        watch->req = req;
        watch->id = id;
        watch->sse = sse;
        memcpy(watch->id_text, text, sizeof(text));
        watch->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*watch->guard), on_watch_guard_dispose);
        *watch->guard = watch;
        if (sse) {
            /* The current state now; the stream stays open for the change (a minute at most,
             * then EventSource reconnects). A request already settled gets one event. */
            req->res.status = 200;
            req->res.reason = "OK";
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream"));
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
            sg_cors_apply(server->conf, req);
            watch->generator = (h2o_generator_t){on_sse_proceed, on_sse_stop};
            h2o_start_response(req, &watch->generator);
            int settled = strcmp(state, "pending") != 0;
            sse_send(watch, sse_event(req, text, state, have_rec ? &rec : NULL),
                     settled ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
            if (settled) {
                if (have_rec)
                    sg_request_record_dispose(&rec);
                return;
            }
        }
        h2o_linklist_insert(&loop->watchers, &watch->link);
        watch->linked = 1;
        atomic_fetch_add(&server->watchers, 1);
        watch->timeout_entry.cb = on_watch_timeout;
        h2o_timeout_link(loop->ctx.loop, sg_loop_wait_timeout(loop, wait_ms), &watch->timeout_entry);
        /* The reply may have been recorded between the lookup and the watch: look once more. */
        sg_request_record_t again;
        int have_again;
        const char *now_state = lookup(server, &id, text, &again, &have_again);
        if (have_again)
            sg_request_record_dispose(&again);
        if (strcmp(now_state, "pending") != 0)
            watch_finish(watch);
    }
    if (have_rec)
        sg_request_record_dispose(&rec);
}
