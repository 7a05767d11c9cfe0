/*
 * The request status resource, GET /requests/{id}.
 *
 * Every instance records every reply it reads (the reply consumer reads all partitions), and the
 * PENDING record of each request it produced, in its RocksDB store (bridge_thread.c): so any
 * instance of the deployment can answer for any id, and a restart keeps what was answered. The
 * id's MAC tells a forged id (404) from a real one without a lookup; a real id with no record is
 * pending until its retention has passed, then expired.
 *
 * Long-polls (Prefer: wait=N) and event streams (Accept: text/event-stream) park the request on
 * its loop (park.h). The bridge thread, after recording a reply, tells every loop while anything
 * is parked; each loop re-reads the store for its watches of that id. No polling loop anywhere.
 * Whatever ends the wait (the outcome, the deadline, the gateway stopping) answers the same way:
 * the current state, as a document or as the stream's final event.
 *
 * With auth, an id answers only the principal that made the request: its record names the owner
 * (access.h; written with the PENDING record, kept by the DONE one). A credential is optional
 * here, so that requests made on public routes can be polled without one.
 */
#include "requests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http_text.h"
#include "park.h"
#include "respond.h"
#include "sg_store.h"
#include "sse.h"

#define SG_WATCH_MAX_WAIT_MS (60 * 1000)

struct st_sg_requests_loop_t {
    h2o_linklist_t watches;              /* parked long-polls and status streams */
    h2o_multithread_receiver_t recorded; /* "an outcome was recorded", from the bridge thread */
};

typedef struct st_sg_watch_t {
    sg_park_t park;
    sg_reqid_t id;
    char id_text[SG_REQID_TEXT_LEN + 1];
    sg_sse_t *sse; /* Accept: text/event-stream; NULL for a long-poll */
} sg_watch_t;

typedef struct st_sg_recorded_msg_t {
    h2o_multithread_message_t message;
    sg_reqid_t id;
} sg_recorded_msg_t;

/* --- the state ------------------------------------------------------------------------------ */

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
        /* As a replay answers it (idempotency.c): a status that is not final is a 502, and 204
         * or 304 have no body (records may predate these rules). */
        int status = sg_http_status_is_final(rec->status) ? rec->status : 502;
        if (rec->content_type != NULL && sg_http_status_has_content(status))
            json_object_set_new(headers, "content-type", json_string(rec->content_type));
        json_object_set_new(doc, "response",
                            json_pack("{s:i, s:o, s:o}", "status", status, "headers", headers, "body",
                                      sg_http_status_has_content(status) ? body_json(rec) : json_null()));
    }
    size_t len = json_dumpb(doc, NULL, 0, JSON_COMPACT);
    char *body = h2o_mem_alloc_pool(&req->pool, len + 1);
    json_dumpb(doc, body, len, JSON_COMPACT);
    json_decref(doc);
    return h2o_iovec_init(body, len);
}

/* Reads the state of a valid id. Returns "done", "pending" or "expired"; rec is filled (and
 * must be disposed) when *have_rec. */
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
        sg_log_error("request store: %s", err);
    return (int64_t)id->time_ms + server->conf->requests.retention_ms <= now ? "expired" : "pending";
}

static int is_settled(const char *state)
{
    return strcmp(state, "pending") != 0;
}

/* Answers with the state: a 200 document, or (sse) one event on the stream. */
static void send_state(h2o_req_t *req, sg_sse_t *sse, const char *id_text, const char *state, const sg_request_record_t *rec)
{
    h2o_iovec_t doc = state_json(req, id_text, state, rec);
    if (sse != NULL) {
        sg_sse_event(sse, state, NULL, 0, doc.base, doc.len);
        return;
    }
    if (rec != NULL && rec->state == SG_REQUEST_DONE && rec->token != NULL)
        sg_http_add_token(req, rec->token, strlen(rec->token));
    sg_http_respond(req, 200, "application/json", doc.base, doc.len);
}

/* --- parked watches ------------------------------------------------------------------------- */

/* The wait is over (outcome, deadline, stopping): the current state, then the watch is freed. A
 * stream gets it as its final event. */
static void watch_finish(sg_watch_t *watch)
{
    sg_server_t *server = watch->park.loop->server;
    h2o_req_t *req = sg_park_finish(&watch->park);
    if (req != NULL) {
        sg_request_record_t rec;
        int have_rec;
        const char *state = lookup(server, &watch->id, watch->id_text, &rec, &have_rec);
        send_state(req, watch->sse, watch->id_text, state, have_rec ? &rec : NULL);
        if (watch->sse != NULL)
            sg_sse_close(watch->sse);
        if (have_rec)
            sg_request_record_dispose(&rec);
    }
    free(watch);
}

static void on_watch_end(sg_park_t *park)
{
    watch_finish(H2O_STRUCT_FROM_MEMBER(sg_watch_t, park, park));
}

static void on_watch_gone(sg_park_t *park)
{
    free(H2O_STRUCT_FROM_MEMBER(sg_watch_t, park, park));
}

static const sg_park_kind_t watch_park = {
    .metric = SG_PARKED_STATUS, .on_deadline = on_watch_end, .on_drain = on_watch_end, .on_gone = on_watch_gone};

/* Field by field: the struct has padding, so memcmp would compare garbage. */
static int same_id(const sg_reqid_t *a, const sg_reqid_t *b)
{
    return a->time_ms == b->time_ms && a->instance == b->instance && a->loop == b->loop && a->counter == b->counter;
}

static void on_recorded(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct st_sg_requests_loop_t *state = H2O_STRUCT_FROM_MEMBER(struct st_sg_requests_loop_t, recorded, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        sg_recorded_msg_t *msg = H2O_STRUCT_FROM_MEMBER(sg_recorded_msg_t, message.link, messages->next);
        h2o_linklist_unlink(&msg->message.link);
        for (h2o_linklist_t *at = state->watches.next; at != &state->watches;) {
            sg_watch_t *watch = H2O_STRUCT_FROM_MEMBER(sg_watch_t, park.link, at);
            at = at->next;
            if (same_id(&watch->id, &msg->id))
                watch_finish(watch);
        }
        free(msg);
    }
}

void sg_requests_notify_recorded(sg_server_t *server, const sg_reqid_t *id)
{
    if (atomic_load(&server->watchers) == 0)
        return;
    for (size_t i = 0; i < server->n_loops; ++i) {
        sg_recorded_msg_t *msg = sg_calloc(1, sizeof(*msg));
        msg->id = *id;
        h2o_multithread_send_message(&server->loops[i].requests->recorded, &msg->message);
    }
}

/* --- the resource --------------------------------------------------------------------------- */

/* Parks the request until the outcome is recorded or wait_ms passes. The caller has taken a
 * limits.pending slot, which the park releases. */
static void watch(h2o_req_t *req, const sg_reqid_t *id, const char *id_text, sg_sse_t *sse, int64_t wait_ms)
{
    sg_loop_t *loop = sg_loop_of(req);
    sg_server_t *server = loop->server;
    sg_watch_t *watch = sg_calloc(1, sizeof(*watch));
    watch->id = *id;
    memcpy(watch->id_text, id_text, sizeof(watch->id_text));
    watch->sse = sse;
    watch->park.holds_pending = 1;
    sg_park_start(&watch->park, &watch_park, req, &loop->requests->watches, &server->watchers);
    sg_park_set_deadline(&watch->park, wait_ms);
    /* The reply may have been recorded between the lookup and the park: look once more. */
    sg_request_record_t again;
    int have_again;
    const char *now_state = lookup(server, id, id_text, &again, &have_again);
    if (have_again)
        sg_request_record_dispose(&again);
    if (is_settled(now_state))
        watch_finish(watch);
}

/* Whether the caller may see the record (NULL: none yet). With auth: the owner, or anyone for a
 * request made without a credential; a record that does not say who made it (written by an
 * instance that only read the reply) or no record at all answers nobody. */
static int owner_allows(sg_server_t *server, const sg_principal_t *principal, const sg_request_record_t *rec)
{
    if (server->auth == NULL)
        return 1;
    if (rec == NULL || rec->owner == NULL)
        return 0;
    if (strcmp(rec->owner, SG_ACCESS_ANONYMOUS) == 0)
        return 1;
    char caller[SG_ACCESS_OWNER_LEN + 1];
    sg_access_owner(server, principal, caller);
    return strcmp(rec->owner, caller) == 0;
}

static void unknown_request(h2o_req_t *req)
{
    sg_problem(req, SG_PROBLEM_UNKNOWN_REQUEST, "id",
               "no request has this id (it is malformed, forged, or from another deployment)");
}

static sg_access_rule_t access_rule(sg_server_t *server, h2o_req_t *req, const char *path, size_t path_len)
{
    return (sg_access_rule_t){.need = SG_ACCESS_OPTIONAL, .route = SIZE_MAX};
}

static void handle(h2o_req_t *req, const char *path, size_t path_len, sg_principal_t *principal)
{
    sg_server_t *server = sg_loop_of(req)->server;
    static const char prefix[] = "/requests/";
    if (path_len <= sizeof(prefix) - 1) {
        sg_problem(req, SG_PROBLEM_NOT_FOUND, NULL, "no resource at %.*s", (int)path_len, path);
        return;
    }
    const char *id_text = path + sizeof(prefix) - 1;
    size_t id_len = path_len - (sizeof(prefix) - 1);
    sg_reqid_t id;
    if (!sg_http_method_is(req, "GET")) {
        sg_problem_method_not_allowed(req, "GET");
        return;
    }
    if (!sg_server_has_request_key(server)) {
        sg_problem(req, SG_PROBLEM_NOT_READY, NULL, "the deployment's request-id secret is not settled yet; retry shortly");
        return;
    }
    if (sg_reqid_parse(&server->reqid_key, id_text, id_len, &id) != 0) {
        unknown_request(req);
        return;
    }
    char text[SG_REQID_TEXT_LEN + 1];
    memcpy(text, id_text, SG_REQID_TEXT_LEN);
    text[SG_REQID_TEXT_LEN] = '\0';

    sg_request_record_t rec;
    int have_rec;
    const char *state = lookup(server, &id, text, &rec, &have_rec);
    if (!owner_allows(server, principal, have_rec ? &rec : NULL)) {
        if (have_rec)
            sg_request_record_dispose(&rec);
        unknown_request(req); /* exactly as for a forged id: whether it exists is not the caller's business */
        return;
    }
    int sse = sg_http_wants_event_stream(req);
    int async_ignored = 0;
    int64_t wait_ms = 0;
    sg_http_parse_prefer(req, &async_ignored, &wait_ms);
    if (sse || wait_ms > SG_WATCH_MAX_WAIT_MS)
        wait_ms = SG_WATCH_MAX_WAIT_MS;
    if (sg_server_is_draining(server))
        wait_ms = 0; /* nothing parks any more: the current state now */
    int waits = !is_settled(state) && wait_ms > 0;
    if (!sse && !waits) {
        send_state(req, NULL, text, state, have_rec ? &rec : NULL);
    } else if (waits && !sg_pending_acquire(server)) {
        /* a wait counts against limits.pending like every request waiting on Kafka */
        sg_problem(req, SG_PROBLEM_TOO_MANY_PENDING, NULL, "limits.pending (%u) requests are already waiting on Kafka",
                   server->conf->limits.pending);
    } else if (!sse) {
        watch(req, &id, text, NULL, wait_ms);
    } else {
        /* The current state now; the stream stays open for the change (a minute at most, then
         * EventSource reconnects). A request already settled gets one event. */
        sg_sse_t *stream = sg_sse_start(req, NULL, NULL);
        send_state(req, stream, text, state, have_rec ? &rec : NULL);
        if (!waits)
            sg_sse_close(stream);
        else
            watch(req, &id, text, stream, wait_ms);
    }
    if (have_rec)
        sg_request_record_dispose(&rec);
}

static void init_loop(sg_loop_t *loop)
{
    struct st_sg_requests_loop_t *state = sg_calloc(1, sizeof(*state));
    h2o_linklist_init_anchor(&state->watches);
    h2o_multithread_register_receiver(loop->ctx.queue, &state->recorded, on_recorded);
    loop->requests = state;
}

static void drain(sg_loop_t *loop)
{
    sg_park_drain(&loop->requests->watches);
}

const sg_feature_t sg_feature_requests = {
    .prefix = "/requests", .methods = "GET", .access = access_rule, .handle = handle, .init_loop = init_loop, .drain = drain};
