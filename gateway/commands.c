/*
 * The command path: a configured route's request becomes an event, answered only once the broker
 * has acknowledged it (README, "HTTP API: commands" and "request-reply").
 *
 * A command is checked completely on its loop (media type, size, JSON, schema, key) before
 * anything is produced, so a bad request never reaches Kafka. It then becomes a heap-owned
 * sg_cmd_t that travels to the bridge thread as the produce call's opaque and comes back to the
 * same loop through the loop's `deliveries` receiver when the broker has acknowledged it. Only
 * then is the 202 sent. Meanwhile the request is parked (park.h): if the client goes away first,
 * the park says so and the completion finds no request to answer.
 *
 * Routes with a reply also put the record in the loop's correlation table before producing (a
 * reply can overtake the delivery report) and wait for whichever comes first: the reply (answered
 * from it), the deadline (202 + Location, but never before the broker ack), or the client
 * leaving. A record is freed only when the bridge has handed it back and its park has ended, so
 * each one completes exactly once. This is the hot path: no formatting or allocation beyond the
 * record itself (the 202 body is built by hand).
 *
 * An authenticated request's event carries its principal under auth.principal_header. Events are
 * built from our own headers only (no client header is ever copied into one), so a client that
 * sends a header of that name cannot put it there.
 */
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "command.h"
#include "http_text.h"
#include "idempotency.h"
#include "keys.h"
#include "respond.h"
#include "sg_corr.h"
#include "sg_deployment.h"
#include "sg_frame.h"
#include "sg_registry.h"
#include "sg_token.h"
#include "trace.h"

#define SG_ROUTE_HEADER "streamgate-route"
/* A claim is answered within the produce timeout plus the deployment's read-back bound (5 s);
 * the park's own deadline, past both, only guards against a thread that never answers. */
#define SG_CLAIM_BACKSTOP_MS 6000

struct st_sg_commands_loop_t {
    sg_loop_t *loop;
    sg_corr_t *pending;                    /* reply routes' requests by id */
    h2o_linklist_t parked;                 /* every command whose request waits */
    h2o_multithread_receiver_t deliveries; /* sg_cmd_t completions from the bridge thread */
    h2o_multithread_receiver_t replies;    /* replies for this loop's requests, from the bridge thread */
    h2o_multithread_receiver_t claims;     /* commands whose Idempotency-Key claim was answered (deployment thread) */
    uint32_t reqid_counter;
    uint64_t trace_rng; /* xorshift state for generated trace and span ids */
};

/* --- answers ------------------------------------------------------------------------------- */

/* Consistency-Token for one record's position (the record that must be visible). */
static void add_token_header(h2o_req_t *req, const char *topic, int32_t partition, int64_t offset, int64_t timestamp_ms)
{
    char token[320];
    size_t len = sg_token_encode_one(topic, partition, offset, timestamp_ms, token, sizeof(token));
    if (len > 0 && len < sizeof(token))
        sg_http_add_token(req, token, len);
}

static size_t put_int(char *out, int64_t value)
{
    char digits[24];
    size_t n = 0;
    uint64_t v = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    size_t len = 0;
    if (value < 0)
        out[len++] = '-';
    while (n > 0)
        out[len++] = digits[--n];
    return len;
}

/* The 202 body is built by hand from a per-route prefix made at start: this runs for every
 * command, and formatting it through printf or Jansson was a visible share of a request. */
static void respond_accepted(h2o_req_t *req, const sg_cmd_t *cmd)
{
    sg_server_t *server = cmd->loop->server;
    add_token_header(req, cmd->route->topic, cmd->partition, cmd->offset, cmd->timestamp_ms);
    const h2o_iovec_t *prefix = &server->route_accept_prefix[cmd->route - server->conf->routes];
    char *body = h2o_mem_alloc_pool(&req->pool, prefix->len + 64);
    memcpy(body, prefix->base, prefix->len);
    size_t len = prefix->len;
    len += put_int(body + len, cmd->partition);
    memcpy(body + len, ",\"offset\":", 10);
    len += 10;
    len += put_int(body + len, cmd->offset);
    body[len++] = '}';
    sg_http_respond(req, 202, "application/json", body, len);
}

/* The 202 of a reply route whose reply has not come (yet): where to poll, and the command's
 * own position. */
static void respond_pending(h2o_req_t *req, const sg_cmd_t *cmd)
{
    add_token_header(req, cmd->route->topic, cmd->partition, cmd->offset, cmd->timestamp_ms);
    char location[sizeof("/requests/") + SG_REQID_TEXT_LEN];
    int n = snprintf(location, sizeof(location), "/requests/%s", cmd->id_text);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, h2o_strdup(&req->pool, location, (size_t)n).base,
                   (size_t)n);
    if (cmd->async)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("preference-applied"), 0, NULL,
                              H2O_STRLIT("respond-async"));
    char body[96];
    int len = snprintf(body, sizeof(body), "{\"id\":\"%s\",\"state\":\"pending\"}", cmd->id_text);
    sg_http_respond(req, 202, "application/json", body, (size_t)len);
}

static int reply_header_allowed(const sg_route_conf_t *route, const char *name)
{
    for (size_t i = 0; i < route->reply.n_headers; ++i)
        if (strcasecmp(route->reply.headers[i], name) == 0)
            return 1;
    return 0;
}

static void respond_with_reply(h2o_req_t *req, const sg_cmd_t *cmd, const sg_reply_msg_t *reply)
{
    if (reply->oversized) {
        sg_problem(req, SG_PROBLEM_REPLY_TOO_LARGE, "body", "the worker's reply is larger than %u bytes", SG_STORE_MAX_BODY);
        return;
    }
    if (reply->undecodable[0] != '\0') {
        sg_problem(req, SG_PROBLEM_UNDECODABLE_REPLY, "body",
                   "the worker's reply is in the Confluent wire format but does not decode: %s", reply->undecodable);
        return;
    }
    if (reply->status == 0) {
        sg_problem(req, SG_PROBLEM_INVALID_REPLY, ":status",
                   "the worker's reply has a :status header that is not a final HTTP status code (200..599)");
        return;
    }
    add_token_header(req, reply->topic, reply->partition, reply->offset, reply->timestamp_ms);
    const char *content_type = "application/json";
    for (size_t i = 0; i < reply->n_headers; ++i) {
        const char *name = reply->headers[i].name;
        if (strcasecmp(name, "content-type") == 0) {
            if (reply->headers[i].len > 0 && !reply->decoded) /* decoded Avro is served as JSON */
                content_type = reply->headers[i].value;
        } else if (reply_header_allowed(cmd->route, name))
            sg_http_add_header(req, name, strlen(name), reply->headers[i].value, reply->headers[i].len);
    }
    sg_http_respond(req, reply->status, content_type, reply->body != NULL ? reply->body : "",
                    reply->body != NULL ? reply->body_len : 0);
}

/* --- the record's lifecycle (loop thread) ------------------------------------------------- */

/* Ends the wait: leaves the correlation table and the park. Returns the request to answer, or
 * NULL when the client is gone or it was answered already. */
static h2o_req_t *take_request(sg_cmd_t *cmd)
{
    if (cmd->in_table) {
        sg_corr_remove(cmd->loop->commands->pending, &cmd->id);
        cmd->in_table = 0;
    }
    return sg_park_finish(&cmd->park);
}

/* Frees once the bridge has handed the record back, its claim is answered and its wait has
 * ended; until then the command holds its limits.pending slot (and, until the broker answered,
 * its event's bytes), whether or not its client is still there. */
static void maybe_free(sg_cmd_t *cmd)
{
    if (cmd->dr_pending || cmd->claim_pending || sg_park_is_parked(&cmd->park))
        return;
    assert(!cmd->in_table); /* the correlation table reads the id from the record */
    if (cmd->counted)
        atomic_fetch_sub(&cmd->loop->server->inflight, 1);
    if (cmd->value_bytes > 0) /* never produced (a replay, a refused claim) */
        sg_inflight_bytes_release(cmd->loop->server, cmd->value_bytes);
    sg_pending_release(cmd->loop->server);
    free(cmd->idem);
    free(cmd);
}

/* A request whose Idempotency-Key claim is not answered yet gets `kind` now; nothing was
 * produced, and the claim, when its answer comes, is released if it won. */
static void refuse_claiming(sg_cmd_t *cmd, sg_problem_t kind, const char *detail)
{
    h2o_req_t *req = take_request(cmd);
    if (req != NULL)
        sg_problem(req, kind, NULL, "%s", detail);
}

/* librdkafka times messages out on a one-second scan, so its report can come up to a second
 * after message.timeout.ms, later still on a loaded machine: the gateway keeps its own promise of
 * an answer within kafka.produce_timeout (+ this slack) of the produce (after its Idempotency-Key
 * claim, when it has one). */
#define SG_ACK_SLACK_MS 250

static int64_t ack_deadline(const sg_cmd_t *cmd)
{
    return cmd->produce_ms + cmd->loop->server->conf->kafka.produce_timeout_ms + SG_ACK_SLACK_MS;
}

/* The park's deadline: the earlier of the reply wait's end (sync reply routes) and, while the
 * broker has not acknowledged, the ack deadline. */
static void arm_deadline(sg_cmd_t *cmd)
{
    int64_t at = cmd->acked ? INT64_MAX : ack_deadline(cmd);
    if (cmd->route->has_reply && !cmd->async && !cmd->timed_out && cmd->wait_until_ms < at)
        at = cmd->wait_until_ms;
    if (at == INT64_MAX)
        return;
    int64_t now = sg_now_ms();
    sg_park_set_deadline(&cmd->park, at > now ? at - now : 0);
}

static void on_wait_deadline(sg_park_t *park)
{
    sg_cmd_t *cmd = H2O_STRUCT_FROM_MEMBER(sg_cmd_t, park, park);
    if (cmd->claim_pending) {
        /* a backstop: the deployment thread answers every claim within its own, shorter, bound */
        refuse_claiming(cmd, SG_PROBLEM_STORE_UNAVAILABLE,
                        "the Idempotency-Key claim was not settled in time; nothing was produced");
        return;
    }
    int64_t now = sg_now_ms();
    if (!cmd->acked) {
        if (now >= ack_deadline(cmd)) {
            /* No 2xx without the ack, and no wait beyond the produce timeout: 503. The delivery
             * report still comes and settles an Idempotency-Key (a retry meanwhile gets 409). */
            if (cmd->idem != NULL)
                sg_problem(take_request(cmd), SG_PROBLEM_OUTCOME_UNKNOWN, "Idempotency-Key",
                           "Kafka did not acknowledge the event within kafka.produce_timeout (%lld ms); it may still be "
                           "written. Retry with the same Idempotency-Key: it is answered once the outcome is known",
                           (long long)cmd->loop->server->conf->kafka.produce_timeout_ms);
            else
                sg_problem(take_request(cmd), SG_PROBLEM_KAFKA_UNAVAILABLE, NULL,
                           "the event was not acknowledged by Kafka within kafka.produce_timeout (%lld ms); it may still be "
                           "written",
                           (long long)cmd->loop->server->conf->kafka.produce_timeout_ms);
            maybe_free(cmd);
            return;
        }
        if (cmd->route->has_reply && !cmd->async && now >= cmd->wait_until_ms)
            cmd->timed_out = 1; /* the delivery report answers 202 + Location */
        arm_deadline(cmd);
        return;
    }
    if (cmd->route->has_reply && !cmd->async && !cmd->timed_out && now < cmd->wait_until_ms) {
        arm_deadline(cmd); /* the ack deadline fired just as the ack came: the reply wait goes on */
        return;
    }
    cmd->timed_out = 1;
    h2o_req_t *req = take_request(cmd);
    if (req != NULL)
        respond_pending(req, cmd);
    maybe_free(cmd);
}

/* Stopping: a synchronous reply wait gets its 202 + Location now (the request goes on and can be
 * polled elsewhere), or from its delivery report if not acknowledged yet. Every other command is
 * answered by its delivery report, which comes within the produce timeout. */
static void on_drain(sg_park_t *park)
{
    sg_cmd_t *cmd = H2O_STRUCT_FROM_MEMBER(sg_cmd_t, park, park);
    if (cmd->claim_pending) {
        refuse_claiming(cmd, SG_PROBLEM_SHUTTING_DOWN,
                        "the gateway is shutting down; nothing was produced: retry on another instance");
    } else if (cmd->route->has_reply && !cmd->async) {
        cmd->timed_out = 1; /* the wait ends now */
        on_wait_deadline(park);
    }
}

static void on_gone(sg_park_t *park)
{
    sg_cmd_t *cmd = H2O_STRUCT_FROM_MEMBER(sg_cmd_t, park, park);
    take_request(cmd); /* out of the correlation table: nobody waits for this reply any more */
    maybe_free(cmd);
}

static const sg_park_kind_t command_park = {
    .metric = SG_PARKED_COMMAND, .on_deadline = on_wait_deadline, .on_drain = on_drain, .on_gone = on_gone};

static void on_deliveries(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *message = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&message->link);
        sg_cmd_t *cmd = H2O_STRUCT_FROM_MEMBER(sg_cmd_t, message, message);
        cmd->dr_pending = 0;
        cmd->acked = cmd->err == SG_BRIDGE_OK;
        if (cmd->acked)
            sg_histogram_observe(&cmd->loop->metrics->produce_ack, sg_mono_us() - cmd->produced_us);
        else
            sg_metrics_produce_error(cmd->loop, cmd->err);
        sg_inflight_bytes_release(cmd->loop->server, cmd->value_bytes); /* librdkafka no longer holds the event */
        cmd->value_bytes = 0;
        if (sg_park_is_parked(&cmd->park)) {
            if (cmd->outcome_unknown) {
                sg_problem(take_request(cmd), SG_PROBLEM_OUTCOME_UNKNOWN, "Idempotency-Key",
                           "Kafka did not answer (%s); the event may be in the log. Retry with the same Idempotency-Key: "
                           "it is answered once the outcome is known",
                           cmd->errstr ? cmd->errstr : "unknown error");
            } else if (cmd->err != SG_BRIDGE_OK) {
                sg_problem(take_request(cmd), SG_PROBLEM_KAFKA_UNAVAILABLE, NULL, "the event was not acknowledged by Kafka: %s",
                           cmd->errstr ? cmd->errstr : "unknown error");
            } else if (!cmd->route->has_reply) {
                respond_accepted(take_request(cmd), cmd);
            } else if (cmd->async || cmd->timed_out || sg_server_is_draining(cmd->loop->server)) {
                respond_pending(take_request(cmd), cmd);
            }
            /* else: a synchronous request keeps waiting for its reply or its deadline */
        }
        maybe_free(cmd);
    }
}

static void on_replies(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct st_sg_commands_loop_t *state = H2O_STRUCT_FROM_MEMBER(struct st_sg_commands_loop_t, replies, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *message = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&message->link);
        sg_reply_msg_t *reply = H2O_STRUCT_FROM_MEMBER(sg_reply_msg_t, message, message);
        sg_cmd_t *cmd = sg_corr_find(state->pending, &reply->id);
        if (cmd == NULL) {
            /* recorded for GET /requests/{id}, but nobody waits here any more: answered at its
             * deadline, asynchronous, client gone, or from before a restart */
            atomic_fetch_add(&state->loop->server->replies_unawaited, 1);
        } else {
            h2o_req_t *req = take_request(cmd);
            if (req != NULL) {
                sg_histogram_observe(&state->loop->metrics->reply_wait, sg_mono_us() - cmd->produced_us);
                respond_with_reply(req, cmd, reply);
            }
            maybe_free(cmd);
        }
        sg_reply_msg_free(reply);
    }
}

static void send_command(h2o_req_t *req, sg_cmd_t *cmd, const sg_cmd_event_t *event);

/* The Idempotency-Key claim is answered: produce if it won and the request is still here. */
static void on_claims(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *message = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&message->link);
        sg_cmd_t *cmd = H2O_STRUCT_FROM_MEMBER(sg_cmd_t, message, message);
        cmd->claim_pending = 0;
        h2o_req_t *req = take_request(cmd);
        if (req == NULL) {
            if (cmd->idem->claim_rc == SG_CLAIMS_OK && cmd->idem->claim.kind == SG_IDEM_CLAIMED)
                sg_idem_release(cmd->loop->server, cmd); /* won, but nobody will produce it */
        } else if (sg_idem_claimed(req, cmd) == 0) {
            send_command(req, cmd, &cmd->idem->event);
            continue;
        }
        maybe_free(cmd);
    }
}

/* --- hand-offs from the bridge and deployment threads ------------------------------------------ */

void sg_commands_post_claimed(sg_cmd_t *cmd)
{
    h2o_multithread_send_message(&cmd->loop->commands->claims, &cmd->message);
}

void sg_commands_post_delivery(sg_cmd_t *cmd)
{
    h2o_multithread_send_message(&cmd->loop->commands->deliveries, &cmd->message);
}

void sg_commands_post_reply(sg_server_t *server, size_t loop_index, sg_reply_msg_t *reply)
{
    h2o_multithread_send_message(&server->loops[loop_index].commands->replies, &reply->message);
}

void sg_reply_msg_free(sg_reply_msg_t *reply)
{
    for (size_t i = 0; i < reply->n_headers; ++i) {
        free(reply->headers[i].name);
        free(reply->headers[i].value);
    }
    free(reply->body);
    free(reply);
}

/* --- the request ---------------------------------------------------------------------------- */

static void send_unavailable(h2o_req_t *req, sg_problem_t kind, const char *detail)
{
    sg_problem(req, kind, NULL, "%s", detail);
}

/* Resolves the route's key. Returns the key length (0 for key: none) or -1 after answering. */
static int extract_key(h2o_req_t *req, const sg_route_conf_t *route, const sg_path_match_t *match, json_t *body,
                       const sg_principal_t *principal, char *key, size_t keylen)
{
    char why[256];
    switch (route->key.source) {
    case SG_KEY_NONE: return 0;
    case SG_KEY_CLAIM: {
        /* config allows claim: only on routes that need a credential, so there is a principal */
        const char *claim = principal != NULL ? sg_principal_claim(principal, route->key.name) : NULL;
        size_t len = claim != NULL ? strlen(claim) : 0;
        if (claim == NULL || len == 0 || len >= keylen) {
            sg_problem(req, claim == NULL ? SG_PROBLEM_MISSING_KEY : SG_PROBLEM_INVALID_KEY, route->key.name,
                       "the credential's claim %s (a string of 1..%d bytes) is this route's event key", route->key.name,
                       SG_KEY_MAX_BYTES);
            return -1;
        }
        memcpy(key, claim, len + 1);
        return (int)len;
    }
    case SG_KEY_PATH: {
        const sg_path_param_t *param = sg_path_match_get(match, route->key.name);
        if (param == NULL || param->len == 0 || param->len >= keylen) {
            sg_problem(req, SG_PROBLEM_INVALID_KEY, route->key.name, "path parameter %s must be 1..%d bytes", route->key.name,
                       SG_KEY_MAX_BYTES);
            return -1;
        }
        memcpy(key, param->value, param->len + 1);
        return (int)param->len;
    }
    case SG_KEY_HEADER: {
        h2o_iovec_t value = sg_http_header(req, route->key.name, strlen(route->key.name));
        if (value.base == NULL || value.len == 0) {
            sg_problem(req, SG_PROBLEM_MISSING_KEY, route->key.name, "header %s is required: it is this route's event key",
                       route->key.name);
            return -1;
        }
        if (value.len > SG_KEY_MAX_BYTES || value.len >= keylen) {
            sg_problem(req, SG_PROBLEM_INVALID_KEY, route->key.name, "header %s is longer than %d bytes", route->key.name,
                       SG_KEY_MAX_BYTES);
            return -1;
        }
        memcpy(key, value.base, value.len);
        key[value.len] = '\0';
        return (int)value.len;
    }
    case SG_KEY_BODY: {
        json_t *field = sg_json_pointer_get(body, route->key.name, why, sizeof(why));
        if (field == NULL) {
            sg_problem(req, SG_PROBLEM_MISSING_KEY, route->key.name, "body field %s is required: it is this route's event key (%s)",
                       route->key.name, why);
            return -1;
        }
        int len = sg_key_from_json(field, key, keylen, why, sizeof(why));
        if (len < 0) {
            sg_problem(req, SG_PROBLEM_INVALID_KEY, route->key.name, "body field %s %s", route->key.name, why);
            return -1;
        }
        return len;
    }
    }
    return -1;
}

/* A body the route's schema refuses: the 422 naming the field. Returns -1. */
static int schema_violation(h2o_req_t *req, const sg_route_conf_t *route, const sg_registry_schema_t *schema, const char *field,
                            const char *why)
{
    sg_problem(req, SG_PROBLEM_SCHEMA_VIOLATION, field[0] != '\0' ? field : "/", "%s: %s (schema %s, id %u)",
               field[0] ? field : "/", why, route->schema, (unsigned)sg_registry_schema_id(schema));
    return -1;
}

/* The event value: the body as sent, or (format avro) its Confluent-framed Avro encoding, in the
 * request's pool. Either way a body the schema refuses is a 422 naming the field, and never
 * produced. Returns 0, or -1 after answering. Takes `body` (NULL without a schema: never parsed). */
static int event_value(h2o_req_t *req, const sg_route_conf_t *route, const sg_registry_schema_t *schema, json_t *body,
                       h2o_iovec_t *value, const char **value_type)
{
    *value = req->entity;
    *value_type = "application/json";
    if (schema == NULL) {
        json_decref(body);
        return 0;
    }
    const sg_avro_schema_t *avro = sg_registry_schema_avro(schema);
    char field[256], why[256];
    if (route->format != SG_FORMAT_AVRO) {
        int rc = sg_avro_validate_json(avro, body, field, sizeof(field), why, sizeof(why));
        json_decref(body);
        return rc == 0 ? 0 : schema_violation(req, route, schema, field, why);
    }
    /* Encoded right behind the Confluent header, on the stack while it fits (a 250-byte order
     * is ~70 bytes of Avro), then copied once into the request's pool. */
    uint8_t stack[2048];
    sg_avro_buf_t buf;
    sg_avro_buf_init(&buf, stack, sizeof(stack), SG_AVRO_FRAME_HEADER);
    int rc = sg_avro_encode(avro, body, &buf, field, sizeof(field), why, sizeof(why));
    json_decref(body);
    if (rc != 0) {
        sg_avro_buf_dispose(&buf);
        return schema_violation(req, route, schema, field, why);
    }
    sg_avro_frame_header(sg_registry_schema_id(schema), buf.bytes);
    value->base = h2o_mem_alloc_pool(&req->pool, buf.len);
    memcpy(value->base, buf.bytes, buf.len);
    value->len = buf.len;
    *value_type = "application/vnd.apache.avro+binary";
    sg_avro_buf_dispose(&buf);
    return 0;
}

/* The request is valid: its record, with its id and (where it is needed) its owner. */
static sg_cmd_t *admit(h2o_req_t *req, size_t route_index, int async, const sg_principal_t *principal)
{
    sg_loop_t *loop = sg_loop_of(req);
    sg_server_t *server = loop->server;
    const sg_route_conf_t *route = &server->conf->routes[route_index];
    /* Who asked goes with the outcome (GET /requests/{id}) and scopes the Idempotency-Key: worked
     * out, and given room in the record, only where one of them needs it (a digest per request
     * otherwise). */
    int needs_owner =
        server->auth != NULL && (route->has_reply || sg_http_header(req, H2O_STRLIT("idempotency-key")).base != NULL);
    sg_cmd_t *cmd = sg_calloc(1, offsetof(sg_cmd_t, owner) + (needs_owner ? SG_ACCESS_OWNER_LEN + 1 : 1));
    cmd->loop = loop;
    cmd->route = route;
    cmd->async = async;
    cmd->create_ms = sg_now_ms();
    cmd->id = (sg_reqid_t){.time_ms = (uint64_t)cmd->create_ms,
                           .instance = server->instance_id,
                           .loop = (uint16_t)loop->index,
                           .counter = ++loop->commands->reqid_counter};
    sg_reqid_format(&server->reqid_key, &cmd->id, cmd->id_text);
    cmd->principal = principal;
    if (needs_owner)
        sg_access_owner(server, principal, cmd->owner);
    return cmd;
}

/* Produces the event. Returns the bridge's result (SG_BRIDGE_OK: the bridge holds cmd). */
static int produce(h2o_req_t *req, sg_cmd_t *cmd, const sg_cmd_event_t *event)
{
    sg_loop_t *loop = cmd->loop;
    sg_server_t *server = loop->server;
    const sg_route_conf_t *route = cmd->route;
    char traceparent[SG_TRACEPARENT_LEN + 1];
    h2o_iovec_t incoming = sg_http_header(req, H2O_STRLIT("traceparent"));
    sg_traceparent_make(&loop->commands->trace_rng, incoming.base, incoming.len, traceparent);
    sg_bridge_header_t headers[] = {
        {sg_route_correlation_header(route), cmd->id_text, SG_REQID_TEXT_LEN},
        {"content-type", event->value_type, strlen(event->value_type)},
        {"traceparent", traceparent, SG_TRACEPARENT_LEN},
        {SG_ROUTE_HEADER, route->name, strlen(route->name)},
        {NULL, NULL, 0}, /* and, as they apply: the reply topic and partition (the route's header names), the principal */
        {NULL, NULL, 0},
        {NULL, NULL, 0},
    };
    size_t n_headers = 4;
    uint8_t pinned[4];
    if (route->has_reply)
        headers[n_headers++] =
            (sg_bridge_header_t){route->reply.reply_topic_header, route->reply.topic, strlen(route->reply.topic)};
    if (route->has_reply && route->reply.n_partitions > 0) {
        /* This instance reads only these partitions: ask the worker to reply to one of them. */
        uint32_t partition = (uint32_t)route->reply.partitions[cmd->id.counter % route->reply.n_partitions];
        pinned[0] = (uint8_t)(partition >> 24);
        pinned[1] = (uint8_t)(partition >> 16);
        pinned[2] = (uint8_t)(partition >> 8);
        pinned[3] = (uint8_t)partition;
        headers[n_headers++] = (sg_bridge_header_t){route->reply.reply_partition_header, pinned, 4};
    }
    if (cmd->principal != NULL) {
        const char *name = sg_principal_name(cmd->principal);
        headers[n_headers++] = (sg_bridge_header_t){server->conf->auth.principal_header, name, strlen(name)};
    }
    return sg_bridge_produce(server->bridge, server->route_topics[route - server->conf->routes], -1, cmd->create_ms,
                             event->key.base, event->key.len, event->value.base, event->value.len, headers,
                             n_headers, cmd);
}

/* Produces the command (its Idempotency-Key, if any, is claimed) and parks it until the broker's
 * answer; a reply route's request goes into the correlation table first. Answers the request
 * when that fails. */
static void send_command(h2o_req_t *req, sg_cmd_t *cmd, const sg_cmd_event_t *event)
{
    sg_server_t *server = cmd->loop->server;
    const sg_route_conf_t *route = cmd->route;
    if (route->has_reply && !cmd->async) {
        /* In the table before producing: the reply may overtake the delivery report. (An async
         * request waits for nothing but the ack; its reply is only recorded, for polling.) */
        if (sg_corr_insert(cmd->loop->commands->pending, cmd) != SG_CORR_OK) {
            if (cmd->idem != NULL)
                sg_idem_release(server, cmd);
            sg_problem(req, SG_PROBLEM_TOO_MANY_PENDING, NULL, "limits.pending (%u) requests are already waiting for replies",
                       server->conf->limits.pending);
            maybe_free(cmd);
            return;
        }
        cmd->in_table = 1;
    }
    cmd->produced_us = sg_mono_us();
    cmd->produce_ms = sg_now_ms();
    int rc = produce(req, cmd, event);
    if (rc != SG_BRIDGE_OK) {
        sg_metrics_produce_error(cmd->loop, rc);
        if (cmd->in_table)
            sg_corr_remove(cmd->loop->commands->pending, &cmd->id);
        cmd->in_table = 0;
        if (cmd->idem != NULL)
            sg_idem_release(server, cmd);
        if (rc == SG_BRIDGE_E_TOO_LARGE)
            sg_problem(req, SG_PROBLEM_BODY_TOO_LARGE, "body", "the event is larger than the producer's message.max.bytes");
        else if (rc == SG_BRIDGE_E_QUEUE_FULL)
            send_unavailable(req, SG_PROBLEM_PRODUCER_QUEUE_FULL, "the Kafka producer queue is full; retry shortly");
        else
            send_unavailable(req, SG_PROBLEM_KAFKA_UNAVAILABLE, "the Kafka producer cannot accept events now");
        maybe_free(cmd);
        return;
    }
    /* From here the bridge holds cmd until it hands it back; the park lets the request vanish. */
    cmd->dr_pending = 1;
    if (!cmd->counted) {
        cmd->counted = 1;
        atomic_fetch_add(&server->inflight, 1);
    }
    sg_park_start(&cmd->park, &command_park, req, &cmd->loop->commands->parked, NULL);
    arm_deadline(cmd);
}

void sg_commands_handle(h2o_req_t *req, size_t route_index, const sg_path_match_t *match, sg_principal_t *principal)
{
    sg_server_t *server = sg_loop_of(req)->server;
    const sg_conf_t *conf = server->conf;
    const sg_route_conf_t *route = &conf->routes[route_index];

    if (sg_server_is_draining(server)) {
        send_unavailable(req, SG_PROBLEM_SHUTTING_DOWN, "the gateway is shutting down; retry on another instance");
        return;
    }
    if (!sg_server_has_request_key(server)) {
        send_unavailable(req, SG_PROBLEM_NOT_READY, "the deployment's request-id secret is not settled yet; retry shortly");
        return;
    }
    if (route->has_reply && !sg_bridge_is_ready(server->bridge)) {
        /* No request of a reply route is produced before the reply partitions are assigned:
         * its reply could otherwise land before the position the consumer starts from. */
        send_unavailable(req, SG_PROBLEM_NOT_READY, "the reply consumer is not assigned yet; retry shortly");
        return;
    }
    h2o_iovec_t content_type = sg_http_header(req, H2O_STRLIT("content-type"));
    if (!sg_media_type_is_json(content_type.base, content_type.len)) {
        sg_problem(req, SG_PROBLEM_UNSUPPORTED_MEDIA_TYPE, "Content-Type", "Content-Type must be application/json, not %.*s",
                   content_type.base ? (int)(content_type.len > 100 ? 100 : content_type.len) : 6,
                   content_type.base ? content_type.base : "absent");
        return;
    }
    /* A coded body (gzip...) would be produced as its coded bytes, or read as JSON differently by a
     * proxy that decodes it: only identity is accepted (RFC 9110 8.4: 415). */
    h2o_iovec_t coding = sg_http_header(req, H2O_STRLIT("content-encoding"));
    if (coding.base != NULL && !h2o_lcstris(coding.base, coding.len, H2O_STRLIT("identity"))) {
        sg_problem(req, SG_PROBLEM_UNSUPPORTED_MEDIA_TYPE, "Content-Encoding",
                   "Content-Encoding %.*s is not supported: send the JSON as it is", (int)(coding.len > 60 ? 60 : coding.len),
                   coding.base);
        return;
    }
    if (req->entity.len > conf->limits.body_bytes) {
        sg_problem(req, SG_PROBLEM_BODY_TOO_LARGE, "body", "the request body is %zu bytes; limits.body_bytes is %llu",
                   req->entity.len, (unsigned long long)conf->limits.body_bytes);
        return;
    }
    if (req->entity.base == NULL || req->entity.len == 0) {
        sg_problem(req, SG_PROBLEM_INVALID_JSON, "body", "the request body is empty; a JSON document is required");
        return;
    }
    const sg_registry_schema_t *schema = NULL;
    if (route->schema != NULL &&
        (server->registry == NULL || (schema = sg_registry_route_schema(server->registry, route_index)) == NULL)) {
        send_unavailable(req, SG_PROBLEM_SCHEMA_UNAVAILABLE, "the route's schema is not registered");
        return;
    }
    /* A route without a schema produces the body as sent: it needs only "Jansson would accept
     * this" and the key, which one pass finds without building a tree (a third of a small POST's
     * work on the loop). Whatever that pass leaves open, and every schema route, goes through
     * Jansson, whose verdict and messages are the contract. */
    char key[SG_KEY_MAX_BYTES + 1];
    int keylen;
    json_t *body = NULL;
    const char *scanned_key = NULL;
    size_t scanned_len = 0;
    if (schema == NULL && sg_key_scan_json(req->entity.base, req->entity.len,
                                           route->key.source == SG_KEY_BODY ? route->key.name : NULL, &scanned_key,
                                           &scanned_len)) {
        if (route->key.source == SG_KEY_BODY) {
            memcpy(key, scanned_key, scanned_len);
            key[scanned_len] = '\0';
            keylen = (int)scanned_len;
        } else if ((keylen = extract_key(req, route, match, NULL, principal, key, sizeof(key))) < 0) {
            return;
        }
    } else {
        json_error_t jerr;
        /* With a schema, "\u0000" is a legal byte of an Avro bytes/fixed value. */
        size_t flags = JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | (schema != NULL ? JSON_ALLOW_NUL : 0);
        body = json_loadb(req->entity.base, req->entity.len, flags, &jerr);
        if (body == NULL) {
            sg_problem(req, SG_PROBLEM_INVALID_JSON, "body", "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column,
                       jerr.text);
            return;
        }
        if ((keylen = extract_key(req, route, match, body, principal, key, sizeof(key))) < 0) {
            json_decref(body);
            return;
        }
    }
    h2o_iovec_t value;
    const char *value_type;
    if (event_value(req, route, schema, body, &value, &value_type) != 0)
        return;

    int async = 0;
    int64_t wait_ms = route->has_reply ? route->reply.timeout_ms : 0;
    if (route->has_reply) {
        sg_http_parse_prefer(req, &async, &wait_ms);
        if (wait_ms > route->reply.max_timeout_ms) /* a longer wait than allowed is cut to it */
            wait_ms = route->reply.max_timeout_ms;
    }
    /* Every command waits on Kafka from here until its record is freed: it takes a limits.pending
     * slot (exact across loops) and its event's bytes count against limits.inflight_bytes until
     * the broker has answered. */
    if (!sg_pending_acquire(server)) {
        sg_problem(req, SG_PROBLEM_TOO_MANY_PENDING, NULL, "limits.pending (%u) requests are already waiting on Kafka",
                   conf->limits.pending);
        return;
    }
    if (!sg_inflight_bytes_acquire(server, value.len)) {
        sg_pending_release(server);
        sg_problem(req, SG_PROBLEM_TOO_MANY_PENDING_BYTES, "body",
                   "limits.inflight_bytes (%llu) of events are already waiting for the broker's acknowledgement",
                   (unsigned long long)conf->limits.inflight_bytes);
        return;
    }
    sg_cmd_t *cmd = admit(req, route_index, async, principal);
    cmd->value_bytes = (uint32_t)value.len; /* at most limits.body_bytes (64 MiB), or its Avro encoding */
    cmd->wait_until_ms = cmd->create_ms + wait_ms;
    sg_cmd_event_t event = {h2o_iovec_init(keylen > 0 ? key : NULL, (size_t)keylen), value, value_type};
    switch (sg_idem_begin(req, cmd)) {
    case SG_IDEM_ANSWERED: maybe_free(cmd); return;
    case SG_IDEM_CLAIMING:
        /* The event waits for the claim: its key must outlive this stack frame. */
        cmd->idem->event = event;
        if (keylen > 0)
            cmd->idem->event.key = h2o_strdup(&req->pool, key, (size_t)keylen);
        cmd->counted = 1;
        atomic_fetch_add(&server->inflight, 1);
        sg_park_start(&cmd->park, &command_park, req, &cmd->loop->commands->parked, NULL);
        sg_park_set_deadline(&cmd->park, conf->kafka.produce_timeout_ms + SG_CLAIM_BACKSTOP_MS);
        return;
    default: send_command(req, cmd, &event); return;
    }
}

/* --- the feature ---------------------------------------------------------------------------- */

static int init_server(sg_server_t *server, char *err, size_t errlen)
{
    const sg_conf_t *conf = server->conf;
    server->route_topics = sg_calloc(conf->n_routes + 1, sizeof(*server->route_topics));
    server->route_accept_prefix = sg_calloc(conf->n_routes + 1, sizeof(*server->route_accept_prefix));
    for (size_t i = 0; i < conf->n_routes; ++i) {
        server->route_topics[i] = sg_bridge_topic(server->bridge, conf->routes[i].topic);
        /* Topic names are [a-zA-Z0-9._-] (validated by config), so they need no JSON escaping. */
        size_t len = strlen(conf->routes[i].topic) + sizeof("{\"topic\":\"\",\"partition\":");
        char *prefix = sg_malloc(len);
        snprintf(prefix, len, "{\"topic\":\"%s\",\"partition\":", conf->routes[i].topic);
        server->route_accept_prefix[i] = h2o_iovec_init(prefix, strlen(prefix));
    }
    return 0;
}

static void dispose_server(sg_server_t *server)
{
    for (size_t i = 0; server->route_accept_prefix != NULL && i < server->conf->n_routes; ++i)
        free(server->route_accept_prefix[i].base);
    free(server->route_accept_prefix);
    free(server->route_topics);
    server->route_accept_prefix = NULL;
    server->route_topics = NULL;
}

static void init_loop(sg_loop_t *loop)
{
    sg_server_t *server = loop->server;
    struct st_sg_commands_loop_t *state = sg_calloc(1, sizeof(*state));
    state->loop = loop;
    /* Any loop may hold every pending slot (the table grows as needed, so this costs no memory). */
    state->pending = sg_corr_create(server->conf->limits.pending, offsetof(sg_cmd_t, id));
    assert(state->pending != NULL); /* config caps limits.pending at the table's capacity */
    h2o_linklist_init_anchor(&state->parked);
    state->trace_rng = ((uint64_t)server->instance_id << 32 | (uint64_t)loop->index) ^ 0x9e3779b97f4a7c15ull;
    h2o_multithread_register_receiver(loop->ctx.queue, &state->deliveries, on_deliveries);
    h2o_multithread_register_receiver(loop->ctx.queue, &state->replies, on_replies);
    h2o_multithread_register_receiver(loop->ctx.queue, &state->claims, on_claims);
    loop->commands = state;
}

static void drain(sg_loop_t *loop)
{
    sg_park_drain(&loop->commands->parked);
}

const sg_feature_t sg_feature_commands = {
    .init_server = init_server, .dispose_server = dispose_server, .init_loop = init_loop, .drain = drain};
