/*
 * Request handling: built-in endpoints, CORS preflights and command routes.
 *
 * A command request is checked completely on its loop (headers, media type, size, JSON, key)
 * before anything is produced, so a bad request never reaches Kafka. It then becomes a
 * heap-owned sg_cmd_t that travels to the bridge thread as the produce call's opaque and comes
 * back to the same loop through the loop's receiver when the broker has acknowledged it. Only
 * then is the 202 sent. If the client goes away first, a pool-owned guard clears cmd->req so
 * the completion finds no request and just frees the record.
 *
 * Routes with a reply also put the record in the loop's correlation table before producing
 * (a reply can overtake the delivery report) and wait for whichever comes first: the reply
 * (answered from it), the deadline (202 + Location, but never before the broker ack), or the
 * client leaving. All of that happens on the loop thread; a record is freed only when the
 * bridge has handed it back and it has been completed, so each one completes exactly once.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "gateway_int.h"
#include "keys.h"
#include "sg_corr.h"
#include "sg_decode.h"
#include "sg_materializer.h"
#include "sg_registry.h"
#include "sg_reqid.h"
#include "sg_token.h"

#define SG_ROUTE_HEADER "streamgate-route"
#define SG_TRACEPARENT_LEN 55

typedef struct st_sg_cmd_t {
    h2o_multithread_message_t message; /* linked into the loop's receiver by the bridge thread */
    sg_loop_t *loop;
    h2o_req_t *req;             /* NULL once the client is gone or answered; loop thread only */
    struct st_sg_cmd_t **guard; /* pool-owned back pointer; loop thread only */
    const sg_route_conf_t *route;
    int64_t create_ms; /* the record's CreateTime, set by us */
    sg_reqid_t id;
    char id_text[SG_REQID_TEXT_LEN + 1];
    /* request-reply state; loop thread only */
    unsigned dr_pending : 1, in_table : 1, async : 1, timed_out : 1, completed : 1, acked : 1;
    h2o_timeout_entry_t timeout_entry;
    h2o_linklist_t waiting; /* in loop->waiting while a reply route waits */
    char *idem_key;         /* Idempotency-Key this request claimed (owned), or NULL */
    size_t idem_key_len;
    /* filled on the bridge thread before the hand-off */
    int err;
    const char *errstr;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
} sg_cmd_t;

/* A reply copied off the bridge thread for the loop that owns its request. */
#define SG_REPLY_MAX_HEADERS 32
typedef struct st_sg_reply_msg_t {
    h2o_multithread_message_t message;
    sg_reqid_t id;
    int status;            /* from :status; 0 when the reply's :status was not a valid status code */
    int oversized;         /* the reply value was over SG_STORE_MAX_BODY and was not copied */
    int decoded;           /* the body is the JSON of a Confluent-framed Avro value */
    char undecodable[256]; /* why a Confluent-framed value could not be decoded; "" when it could */
    char topic[256];
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    size_t n_headers;
    struct {
        char *name;
        char *value;
        size_t len;
    } headers[SG_REPLY_MAX_HEADERS];
    char *body; /* NULL for a tombstone */
    size_t body_len;
} sg_reply_msg_t;

/* --- small helpers ----------------------------------------------------------------------- */

static size_t request_path_len(h2o_req_t *req)
{
    return req->query_at != SIZE_MAX ? req->query_at : req->path.len;
}

static int is_json_media_type(h2o_iovec_t value)
{
    /* type/subtype, optionally followed by parameters: application/json or application/x+json */
    size_t len = 0;
    while (len < value.len && value.base[len] != ';' && value.base[len] != ' ' && value.base[len] != '\t')
        ++len;
    if (h2o_lcstris(value.base, len, H2O_STRLIT("application/json")))
        return 1;
    return len > 17 && h2o_lcstris(value.base, 12, H2O_STRLIT("application/")) &&
           h2o_lcstris(value.base + len - 5, 5, H2O_STRLIT("+json"));
}

static uint64_t next_random(sg_loop_t *loop)
{
    uint64_t x = loop->trace_rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return loop->trace_rng = x;
}

static int is_lower_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; ++i)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int is_all_zero(const char *s, size_t len)
{
    for (size_t i = 0; i < len; ++i)
        if (s[i] != '0')
            return 0;
    return 1;
}

static void put_hex64(char *out, uint64_t value)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; --i, value >>= 4)
        out[i] = hex[value & 15];
}

/* W3C trace context: keep the caller's trace id and flags, start a new span (we are a hop);
 * a missing or malformed traceparent starts a new trace. */
static void make_traceparent(sg_loop_t *loop, h2o_iovec_t incoming, char out[SG_TRACEPARENT_LEN + 1])
{
    memcpy(out, "00-", 3);
    if (incoming.len == SG_TRACEPARENT_LEN && memcmp(incoming.base, "00-", 3) == 0 && incoming.base[35] == '-' &&
        incoming.base[52] == '-' && is_lower_hex(incoming.base + 3, 32) && is_lower_hex(incoming.base + 53, 2) &&
        !is_all_zero(incoming.base + 3, 32)) {
        memcpy(out + 3, incoming.base + 3, 32);
        memcpy(out + 53, incoming.base + 53, 2);
    } else {
        put_hex64(out + 3, next_random(loop));
        put_hex64(out + 19, next_random(loop));
        memcpy(out + 53, "01", 2);
    }
    out[35] = '-';
    put_hex64(out + 36, next_random(loop));
    out[52] = '-';
    out[SG_TRACEPARENT_LEN] = '\0';
}

static size_t headers_size(h2o_req_t *req)
{
    size_t total = req->path.len + req->method.len;
    for (size_t i = 0; i < req->headers.size; ++i)
        total += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return total;
}

/* --- built-in endpoints ------------------------------------------------------------------- */

static void handle_builtin(h2o_req_t *req, int ready_check)
{
    sg_server_t *server = sg_loop_of(req)->server;
    if (!sg_http_is_get_or_head(req)) {
        sg_problem_method_not_allowed(req, "GET, HEAD");
        return;
    }
    int tables_behind = server->materializer != NULL && !sg_materializer_caught_up(server->materializer);
    /* The registry counts when routes depend on it: a deployment that uses no schemas must not
     * wait for a _schemas topic it may have no right to create. */
    int uses_schemas = 0;
    for (size_t i = 0; i < server->conf->n_routes; ++i)
        uses_schemas |= server->conf->routes[i].schema != NULL;
    int registry_behind = uses_schemas && server->registry != NULL && !sg_registry_is_ready(server->registry);
    if (ready_check &&
        (!sg_bridge_is_ready(server->bridge) || tables_behind || registry_behind || atomic_load(&server->draining))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        sg_problem_send(req, 503, "Service Unavailable", "not-ready", "Not Ready", NULL, "%s",
                        atomic_load(&server->draining) ? "the gateway is shutting down"
                        : tables_behind                ? "tables are still catching up with their topics"
                        : registry_behind              ? "the schema registry is still reading _schemas"
                                                       : "Kafka metadata has not been fetched yet");
        return;
    }
    static const char body[] = "{\"status\":\"ok\"}";
    sg_http_respond(req, 200, "OK", "application/json", body, sizeof(body) - 1);
}

/* Prometheus text format. Only what the gateway can report exactly, from atomics (no locks, no
 * loop-private state read from another thread). */
static void handle_metrics(h2o_req_t *req)
{
    sg_server_t *server = sg_loop_of(req)->server;
    if (!sg_http_is_get_or_head(req)) {
        sg_problem_method_not_allowed(req, "GET, HEAD");
        return;
    }
    char *text = h2o_mem_alloc_pool(&req->pool, 4096);
    int len =
        snprintf(text, 4096,
                 "# HELP streamgate_inflight_requests Commands produced and not yet completed.\n"
                 "# TYPE streamgate_inflight_requests gauge\n"
                 "streamgate_inflight_requests %ld\n"
                 "# HELP streamgate_replies_dropped_total Replies dropped unrecorded: forged or unknown id, "
                 "or past requests.retention.\n"
                 "# TYPE streamgate_replies_dropped_total counter\n"
                 "streamgate_replies_dropped_total %ld\n"
                 "# HELP streamgate_replies_unawaited_total Genuine replies recorded while no HTTP request "
                 "waited for them.\n"
                 "# TYPE streamgate_replies_unawaited_total counter\n"
                 "streamgate_replies_unawaited_total %ld\n"
                 "# HELP streamgate_status_watchers Long-polls and event streams waiting on request status.\n"
                 "# TYPE streamgate_status_watchers gauge\n"
                 "streamgate_status_watchers %ld\n"
                 "# HELP streamgate_kafka_ready Whether metadata is fetched and reply partitions assigned.\n"
                 "# TYPE streamgate_kafka_ready gauge\n"
                 "streamgate_kafka_ready %d\n"
                 "# HELP streamgate_table_waiters Table reads waiting for their conditions, and watches.\n"
                 "# TYPE streamgate_table_waiters gauge\n"
                 "streamgate_table_waiters %ld\n"
                 "# HELP streamgate_table_records_skipped_total Table records not applied: a value that is "
                 "not JSON (or not decodable), a key or value over the limits.\n"
                 "# TYPE streamgate_table_records_skipped_total counter\n"
                 "streamgate_table_records_skipped_total %llu\n"
                 "# HELP streamgate_replies_undecodable_total Replies in the Confluent wire format whose schema "
                 "id is unknown or whose data does not decode (answered 502).\n"
                 "# TYPE streamgate_replies_undecodable_total counter\n"
                 "streamgate_replies_undecodable_total %ld\n",
                 atomic_load(&server->inflight), atomic_load(&server->replies_dropped), atomic_load(&server->replies_unawaited),
                 atomic_load(&server->watchers), sg_bridge_is_ready(server->bridge), atomic_load(&server->table_waiters),
                 server->materializer != NULL ? sg_materializer_skipped(server->materializer) : 0ULL,
                 atomic_load(&server->replies_undecodable));
    sg_http_respond(req, 200, "OK", "text/plain; version=0.0.4", text, (size_t)len);
}

static int is_reserved_path(const char *path, size_t len)
{
    static const char *const prefixes[] = {"/requests", "/tables", "/registry", "/metrics", "/openapi.json"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); ++i) {
        size_t plen = strlen(prefixes[i]);
        if (len >= plen && memcmp(path, prefixes[i], plen) == 0 && (len == plen || path[plen] == '/'))
            return 1;
    }
    return 0;
}

/* --- CORS preflight ----------------------------------------------------------------------- */

static void handle_options(h2o_req_t *req, const sg_router_result_t *found)
{
    const sg_conf_t *conf = sg_loop_of(req)->server->conf;
    h2o_iovec_t origin = sg_http_header(req, H2O_STRLIT("origin"));
    h2o_iovec_t want_method = sg_http_header(req, H2O_STRLIT("access-control-request-method"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, found->allow, strlen(found->allow));
    if (origin.base != NULL && want_method.base != NULL) {
        if (!sg_cors_origin_allowed(conf, origin.base, origin.len)) {
            sg_problem_send(req, 403, "Forbidden", "origin-not-allowed", "Origin Not Allowed", "Origin",
                            "origin %.*s is not in cors.origins", (int)(origin.len > 200 ? 200 : origin.len), origin.base);
            return;
        }
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-methods"), 0, NULL, found->allow,
                              strlen(found->allow));
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-headers"), 0, NULL,
                              H2O_STRLIT("Content-Type, Idempotency-Key, Prefer, Consistency-Token, Traceparent, "
                                         "Last-Event-ID, Authorization"));
        char max_age[24];
        int n = snprintf(max_age, sizeof(max_age), "%lld", (long long)conf->cors.max_age_s);
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-max-age"), 0, NULL,
                              h2o_strdup(&req->pool, max_age, (size_t)n).base, (size_t)n);
    }
    sg_http_respond(req, 204, "No Content", NULL, "", 0);
}

/* --- command routes ----------------------------------------------------------------------- */

static void complete(sg_cmd_t *cmd);
static void maybe_free(sg_cmd_t *cmd);

static void on_guard_dispose(void *p)
{
    sg_cmd_t **guard = p;
    sg_cmd_t *cmd = *guard;
    if (cmd == NULL)
        return;
    /* The client is gone: nobody waits for this request any more. */
    cmd->guard = NULL;
    complete(cmd);
    maybe_free(cmd);
}

static void send_unavailable(h2o_req_t *req, const char *type, const char *detail)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
    sg_problem_send(req, 503, "Service Unavailable", type, "Service Unavailable", NULL, "%s", detail);
}

/* Resolves the route's key. Returns the key length (0 for key: none) or -1 after answering. */
static int extract_key(h2o_req_t *req, const sg_route_conf_t *route, const sg_path_match_t *match, json_t *body, char *key,
                       size_t keylen)
{
    char why[256];
    switch (route->key.source) {
    case SG_KEY_NONE: return 0;
    case SG_KEY_PATH: {
        const sg_path_param_t *param = sg_path_match_get(match, route->key.name);
        if (param == NULL || param->len == 0 || param->len >= keylen) {
            sg_problem_send(req, 400, "Bad Request", "invalid-key", "Invalid Key", route->key.name,
                            "path parameter %s must be 1..%d bytes", route->key.name, SG_KEY_MAX_BYTES);
            return -1;
        }
        memcpy(key, param->value, param->len + 1);
        return (int)param->len;
    }
    case SG_KEY_HEADER: {
        h2o_iovec_t value = sg_http_header(req, route->key.name, strlen(route->key.name));
        if (value.base == NULL || value.len == 0) {
            sg_problem_send(req, 400, "Bad Request", "missing-key", "Missing Key", route->key.name,
                            "header %s is required: it is this route's event key", route->key.name);
            return -1;
        }
        if (value.len > SG_KEY_MAX_BYTES || value.len >= keylen) {
            sg_problem_send(req, 400, "Bad Request", "invalid-key", "Invalid Key", route->key.name,
                            "header %s is longer than %d bytes", route->key.name, SG_KEY_MAX_BYTES);
            return -1;
        }
        memcpy(key, value.base, value.len);
        key[value.len] = '\0';
        return (int)value.len;
    }
    case SG_KEY_BODY: {
        json_t *field = sg_json_pointer_get(body, route->key.name, why, sizeof(why));
        if (field == NULL) {
            sg_problem_send(req, 400, "Bad Request", "missing-key", "Missing Key", route->key.name,
                            "body field %s is required: it is this route's event key (%s)", route->key.name, why);
            return -1;
        }
        int len = sg_key_from_json(field, key, keylen, why, sizeof(why));
        if (len < 0) {
            sg_problem_send(req, 400, "Bad Request", "invalid-key", "Invalid Key", route->key.name, "body field %s %s",
                            route->key.name, why);
            return -1;
        }
        return len;
    }
    }
    return -1;
}

static void on_wait_timeout(h2o_timeout_entry_t *entry);

/* --- Idempotency-Key ---------------------------------------------------------------------- */

#define SG_IDEM_MAX_KEY 255

static const char *reason_phrase(int status);

/* Replays a recorded outcome: what the first request got, marked as a replay. */
static void replay_outcome(h2o_req_t *req, const sg_request_record_t *rec)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("idempotent-replayed"), 0, NULL, H2O_STRLIT("true"));
    if (rec->token != NULL)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("consistency-token"), 0, NULL,
                              h2o_strdup(&req->pool, rec->token, SIZE_MAX).base, strlen(rec->token));
    json_t *headers = rec->headers_json != NULL ? json_loads(rec->headers_json, 0, NULL) : NULL;
    const char *name;
    json_t *value;
    json_object_foreach(headers, name, value)
    {
        if (json_is_string(value))
            h2o_add_header_by_str(&req->pool, &req->res.headers, h2o_strdup(&req->pool, name, SIZE_MAX).base, strlen(name), 0, NULL,
                                  h2o_strdup(&req->pool, json_string_value(value), SIZE_MAX).base, json_string_length(value));
    }
    json_decref(headers);
    sg_http_respond(req, rec->status, reason_phrase(rec->status), rec->content_type ? rec->content_type : "application/json",
                    rec->body != NULL ? rec->body : "", rec->body_len);
}

/* Handles the Idempotency-Key header. Returns 1 when the request was answered here (replay,
 * 409, 422, 400), 0 when it should go on; then *claimed says whether this request now holds the
 * key (cmd_id_text is the id it was claimed for). */
static int check_idempotency(h2o_req_t *req, const sg_route_conf_t *route, const char *cmd_id_text, char **key_out,
                             size_t *key_len_out)
{
    sg_server_t *server = sg_loop_of(req)->server;
    h2o_iovec_t key = sg_http_header(req, H2O_STRLIT("idempotency-key"));
    *key_out = NULL;
    if (key.base == NULL)
        return 0;
    if (key.len >= 2 && key.base[0] == '"' && key.base[key.len - 1] == '"') { /* quoted (structured field) */
        key.base += 1;
        key.len -= 2;
    }
    int printable = key.len > 0 && key.len <= SG_IDEM_MAX_KEY;
    for (size_t i = 0; printable && i < key.len; ++i)
        printable = key.base[i] >= 0x21 && key.base[i] <= 0x7e;
    if (!printable) {
        sg_problem_send(req, 400, "Bad Request", "invalid-idempotency-key", "Invalid Idempotency-Key", "Idempotency-Key",
                        "Idempotency-Key must be 1..%d printable ASCII characters", SG_IDEM_MAX_KEY);
        return 1;
    }
    uint8_t digest[32];
    unsigned int digest_len = 0;
    if (EVP_Digest(req->entity.base, req->entity.len, digest, &digest_len, EVP_sha256(), NULL) != 1)
        abort();
    int64_t now = sg_now_ms();
    sg_idem_result_t result;
    char err[256];
    if (sg_store_idem_claim(server->store, route->name, key.base, key.len, digest, cmd_id_text, SG_REQID_TEXT_LEN, now,
                            now + server->conf->requests.retention_ms, &result, err, sizeof(err)) != 0) {
        fprintf(stderr, "streamgate: idempotency store: %s\n", err);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        sg_problem_send(req, 503, "Service Unavailable", "store-unavailable", "Store Unavailable", NULL,
                        "the idempotency record could not be read");
        return 1;
    }
    if (result.kind == SG_IDEM_CLAIMED) {
        *key_out = malloc(key.len);
        if (*key_out == NULL)
            abort();
        memcpy(*key_out, key.base, key.len);
        *key_len_out = key.len;
        return 0;
    }
    if (result.kind == SG_IDEM_MISMATCH) {
        sg_problem_send(req, 422, "Unprocessable Content", "idempotency-key-reused", "Idempotency-Key Reused", "Idempotency-Key",
                        "this Idempotency-Key was first used with a different request body");
        return 1;
    }
    /* Same body: replay the first outcome if it is recorded (a reply route's claim is done once
     * its reply is recorded, on whichever instance), else the first is still in flight. */
    sg_request_record_t rec;
    int rc = sg_store_get_request(server->store, result.request_id, result.request_id_len, now, &rec, err, sizeof(err));
    if (rc == 0 && rec.state == SG_REQUEST_DONE) {
        replay_outcome(req, &rec);
        sg_request_record_dispose(&rec);
        return 1;
    }
    if (rc == 0)
        sg_request_record_dispose(&rec);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
    sg_problem_send(req, 409, "Conflict", "idempotency-key-in-flight", "Request In Flight", "Idempotency-Key",
                    "a request with this Idempotency-Key is still in flight");
    return 1;
}

/* The first outcome of a command route (no reply) is its 202: recorded so a retry with the same
 * Idempotency-Key gets the same topic, partition and offset. Bridge thread. */
static void record_accepted(sg_server_t *server, const sg_cmd_t *cmd)
{
    char body[384], token[320];
    int len = snprintf(body, sizeof(body), "{\"topic\":\"%s\",\"partition\":%" PRId32 ",\"offset\":%" PRId64 "}", cmd->route->topic,
                       cmd->partition, cmd->offset);
    size_t tlen = sg_token_encode_one(cmd->route->topic, cmd->partition, cmd->offset, cmd->timestamp_ms, token, sizeof(token));
    sg_request_record_t rec = {.state = SG_REQUEST_DONE,
                               .status = 202,
                               .content_type = "application/json",
                               .body = body,
                               .body_len = (size_t)len,
                               .created_ms = cmd->create_ms,
                               .completed_ms = cmd->timestamp_ms,
                               .expires_ms = cmd->create_ms + server->conf->requests.retention_ms,
                               .token = tlen > 0 && tlen < sizeof(token) ? token : NULL};
    char err[256];
    if (sg_store_put_request(server->store, cmd->id_text, SG_REQID_TEXT_LEN, &rec, err, sizeof(err)) < 0 ||
        sg_store_idem_complete(server->store, cmd->route->name, cmd->idem_key, cmd->idem_key_len, cmd->id_text, SG_REQID_TEXT_LEN,
                               err, sizeof(err)) < 0)
        fprintf(stderr, "streamgate: idempotency store: %s\n", err);
}

static void release_claim(sg_server_t *server, const sg_cmd_t *cmd)
{
    char err[256];
    if (sg_store_idem_release(server->store, cmd->route->name, cmd->idem_key, cmd->idem_key_len, cmd->id_text, SG_REQID_TEXT_LEN,
                              err, sizeof(err)) < 0)
        fprintf(stderr, "streamgate: idempotency store: %s\n", err);
}

static void handle_command(h2o_req_t *req, size_t route_index, const sg_path_match_t *match)
{
    sg_loop_t *loop = sg_loop_of(req);
    sg_server_t *server = loop->server;
    const sg_conf_t *conf = server->conf;
    const sg_route_conf_t *route = &conf->routes[route_index];

    if (atomic_load(&server->draining)) {
        send_unavailable(req, "shutting-down", "the gateway is shutting down; retry on another instance");
        return;
    }
    if (route->has_reply && !sg_bridge_is_ready(server->bridge)) {
        /* No request of a reply route is produced before the reply partitions are assigned:
         * its reply could otherwise land before the position the consumer starts from. */
        send_unavailable(req, "not-ready", "the reply consumer is not assigned yet; retry shortly");
        return;
    }
    h2o_iovec_t content_type = sg_http_header(req, H2O_STRLIT("content-type"));
    if (content_type.base == NULL || !is_json_media_type(content_type)) {
        sg_problem_send(req, 415, "Unsupported Media Type", "unsupported-media-type", "Unsupported Media Type", "Content-Type",
                        "Content-Type must be application/json, not %.*s",
                        content_type.base ? (int)(content_type.len > 100 ? 100 : content_type.len) : 6,
                        content_type.base ? content_type.base : "absent");
        return;
    }
    if (req->entity.len > conf->limits.body_bytes) {
        sg_problem_send(req, 413, "Payload Too Large", "body-too-large", "Payload Too Large", "body",
                        "the request body is %zu bytes; limits.body_bytes is %llu", req->entity.len,
                        (unsigned long long)conf->limits.body_bytes);
        return;
    }
    if (req->entity.base == NULL || req->entity.len == 0) {
        sg_problem_send(req, 400, "Bad Request", "invalid-json", "Invalid JSON", "body",
                        "the request body is empty; a JSON document is required");
        return;
    }
    const sg_registry_schema_t *schema = NULL;
    if (route->schema != NULL &&
        (server->registry == NULL || (schema = sg_registry_route_schema(server->registry, route_index)) == NULL)) {
        send_unavailable(req, "schema-unavailable", "the route's schema is not registered");
        return;
    }
    json_error_t jerr;
    /* With a schema, "\u0000" is a legal byte of an Avro bytes/fixed value. */
    size_t flags = JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | (schema != NULL ? JSON_ALLOW_NUL : 0);
    json_t *body = json_loadb(req->entity.base, req->entity.len, flags, &jerr);
    if (body == NULL) {
        sg_problem_send(req, 400, "Bad Request", "invalid-json", "Invalid JSON", "body", "malformed JSON at line %d, column %d: %s",
                        jerr.line, jerr.column, jerr.text);
        return;
    }
    char key[SG_KEY_MAX_BYTES + 1];
    int keylen = extract_key(req, route, match, body, key, sizeof(key));
    if (keylen < 0) {
        json_decref(body);
        return;
    }
    /* The event value: the body as sent, or (format avro) its Confluent-framed Avro encoding.
     * Either way a body the schema refuses is a 422 naming the field, and never produced. */
    h2o_iovec_t value = req->entity;
    const char *value_type = "application/json";
    if (schema != NULL) {
        void *avro = NULL;
        size_t avro_len = 0;
        char field[256], why[256];
        int rc =
            route->format == SG_FORMAT_AVRO
                ? sg_avro_from_json(sg_registry_schema_avro(schema), body, &avro, &avro_len, field, sizeof(field), why, sizeof(why))
                : sg_avro_validate_json(sg_registry_schema_avro(schema), body, field, sizeof(field), why, sizeof(why));
        json_decref(body);
        if (rc != 0) {
            sg_problem_send(req, 422, "Unprocessable Content", "schema-violation", "Schema Violation",
                            field[0] != '\0' ? field : "/", "%s: %s (schema %s, id %u)", field[0] ? field : "/", why, route->schema,
                            (unsigned)sg_registry_schema_id(schema));
            return;
        }
        if (route->format == SG_FORMAT_AVRO) {
            void *framed = NULL;
            size_t framed_len = sg_avro_frame(sg_registry_schema_id(schema), avro, avro_len, &framed);
            value = h2o_strdup(&req->pool, framed, framed_len);
            value_type = "application/vnd.apache.avro+binary";
            free(framed);
        }
        free(avro);
    } else {
        json_decref(body);
    }

    int async = 0;
    int64_t wait_ms = route->has_reply ? route->reply.timeout_ms : 0;
    if (route->has_reply) {
        sg_http_parse_prefer(req, &async, &wait_ms);
        if (wait_ms > route->reply.max_timeout_ms) /* a longer wait than allowed is cut to it */
            wait_ms = route->reply.max_timeout_ms;
    }

    sg_cmd_t *cmd = calloc(1, sizeof(*cmd));
    if (cmd == NULL)
        abort();
    cmd->loop = loop;
    cmd->req = req;
    cmd->route = route;
    cmd->async = async;
    cmd->create_ms = sg_now_ms();
    cmd->id = (sg_reqid_t){.time_ms = (uint64_t)cmd->create_ms,
                           .instance = server->instance_id,
                           .loop = (uint16_t)loop->index,
                           .counter = ++loop->reqid_counter};
    sg_reqid_format(&server->reqid_key, &cmd->id, cmd->id_text);
    if (check_idempotency(req, route, cmd->id_text, &cmd->idem_key, &cmd->idem_key_len)) {
        free(cmd);
        return;
    }
    if (route->has_reply && !async) {
        /* In the table before producing: the reply may overtake the delivery report. (An async
         * request waits for nothing but the ack; its reply is only recorded, for polling.) */
        if (sg_corr_insert(loop->pending, &cmd->id, cmd) != SG_CORR_OK) {
            if (cmd->idem_key != NULL)
                release_claim(server, cmd);
            free(cmd->idem_key);
            free(cmd);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
            sg_problem_send(req, 503, "Service Unavailable", "too-many-pending", "Too Many Pending Requests", NULL,
                            "limits.pending (%u) requests are already waiting for replies", conf->limits.pending);
            return;
        }
        cmd->in_table = 1;
    }

    char traceparent[SG_TRACEPARENT_LEN + 1];
    make_traceparent(loop, sg_http_header(req, H2O_STRLIT("traceparent")), traceparent);
    sg_bridge_header_t headers[] = {
        {"kafka_correlationId", cmd->id_text, SG_REQID_TEXT_LEN},
        {"content-type", value_type, strlen(value_type)},
        {"traceparent", traceparent, SG_TRACEPARENT_LEN},
        {SG_ROUTE_HEADER, route->name, strlen(route->name)},
        {"kafka_replyTopic", route->has_reply ? route->reply.topic : NULL, route->has_reply ? strlen(route->reply.topic) : 0},
        {"kafka_replyPartition", NULL, 4},
    };
    size_t n_headers = route->has_reply ? 5 : 4;
    uint8_t pinned[4];
    if (route->has_reply && route->reply.n_partitions > 0) {
        /* This instance reads only these partitions: ask the worker to reply to one of them. */
        uint32_t partition = (uint32_t)route->reply.partitions[cmd->id.counter % route->reply.n_partitions];
        pinned[0] = (uint8_t)(partition >> 24);
        pinned[1] = (uint8_t)(partition >> 16);
        pinned[2] = (uint8_t)(partition >> 8);
        pinned[3] = (uint8_t)partition;
        headers[5].value = pinned;
        n_headers = 6;
    }
    int rc = sg_bridge_produce(server->bridge, server->route_topics[route_index], -1, cmd->create_ms, keylen ? key : NULL,
                               (size_t)keylen, value.base, value.len, headers, n_headers, cmd);
    if (rc != SG_BRIDGE_OK) {
        if (cmd->in_table)
            sg_corr_remove(loop->pending, &cmd->id);
        if (cmd->idem_key != NULL)
            release_claim(server, cmd);
        free(cmd->idem_key);
        free(cmd);
        if (rc == SG_BRIDGE_E_TOO_LARGE)
            sg_problem_send(req, 413, "Payload Too Large", "body-too-large", "Payload Too Large", "body",
                            "the event is larger than the producer's message.max.bytes");
        else
            send_unavailable(req, rc == SG_BRIDGE_E_QUEUE_FULL ? "producer-queue-full" : "kafka-unavailable",
                             rc == SG_BRIDGE_E_QUEUE_FULL ? "the Kafka producer queue is full; retry shortly"
                                                          : "the Kafka producer cannot accept events now");
        return;
    }
    /* From here the bridge holds cmd until it hands it back; the guard lets the request vanish. */
    cmd->dr_pending = 1;
    cmd->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*cmd->guard), on_guard_dispose);
    *cmd->guard = cmd;
    atomic_fetch_add(&server->inflight, 1);
    if (route->has_reply && !async) {
        h2o_linklist_insert(&loop->waiting, &cmd->waiting);
        cmd->timeout_entry.cb = on_wait_timeout;
        h2o_timeout_link(loop->ctx.loop, sg_loop_wait_timeout(loop, wait_ms), &cmd->timeout_entry);
    }
}

void sg_handlers_on_delivery(void *opaque, const sg_delivery_t *delivery)
{
    sg_cmd_t *cmd = opaque;
    cmd->err = delivery->err;
    cmd->errstr = delivery->errstr; /* librdkafka's static strings */
    cmd->partition = delivery->partition;
    cmd->offset = delivery->offset;
    /* The record's timestamp is our CreateTime unless the topic uses LogAppendTime, which is
     * never earlier. (librdkafka's mock cluster reports a fixed LogAppendTime of 1234 while
     * storing our CreateTime; taking the max keeps the token's stream time what consumers see.) */
    cmd->timestamp_ms = delivery->timestamp_ms > cmd->create_ms ? delivery->timestamp_ms : cmd->create_ms;
    /* Recorded here, off the loops: from now on any instance can say this request is pending. */
    if (cmd->route->has_reply && cmd->err == SG_BRIDGE_OK)
        sg_requests_record_pending(cmd->loop->server, cmd->id_text, cmd->create_ms);
    if (cmd->idem_key != NULL) {
        if (cmd->err != SG_BRIDGE_OK)
            release_claim(cmd->loop->server, cmd); /* not in Kafka: a retry may claim the key again */
        else if (!cmd->route->has_reply)
            record_accepted(cmd->loop->server, cmd);
    }
    h2o_multithread_send_message(&cmd->loop->deliveries, &cmd->message);
}

/* Consistency-Token for one record's position (the record that must be visible). */
static void add_token_header(h2o_req_t *req, const char *topic, int32_t partition, int64_t offset, int64_t timestamp_ms)
{
    char token[320];
    size_t len = sg_token_encode_one(topic, partition, offset, timestamp_ms, token, sizeof(token));
    if (len > 0 && len < sizeof(token))
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("consistency-token"), 0, NULL,
                              h2o_strdup(&req->pool, token, len).base, len);
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
    sg_http_respond(req, 202, "Accepted", "application/json", body, len);
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
    sg_http_respond(req, 202, "Accepted", "application/json", body, (size_t)len);
}

/* Nobody waits for this request any more (answered, or the client left): leave the table, the
 * waiting list and the timer. Idempotent; loop thread. */
static void complete(sg_cmd_t *cmd)
{
    if (cmd->completed)
        return;
    cmd->completed = 1;
    if (cmd->guard != NULL)
        *cmd->guard = NULL;
    cmd->guard = NULL;
    cmd->req = NULL;
    if (cmd->in_table) {
        sg_corr_remove(cmd->loop->pending, &cmd->id);
        cmd->in_table = 0;
    }
    if (h2o_linklist_is_linked(&cmd->waiting))
        h2o_linklist_unlink(&cmd->waiting);
    if (h2o_timeout_is_linked(&cmd->timeout_entry))
        h2o_timeout_unlink(&cmd->timeout_entry);
}

/* Completes cmd and returns the request to answer (NULL if the client is gone). Completing
 * first means that whatever H2O does while we respond (even disposing the request) finds the
 * guard already cleared. */
static h2o_req_t *take_request(sg_cmd_t *cmd)
{
    h2o_req_t *req = cmd->req;
    complete(cmd);
    return req;
}

/* Frees once both the bridge has handed the record back and it is complete. */
static void maybe_free(sg_cmd_t *cmd)
{
    if (cmd->dr_pending || !cmd->completed)
        return;
    atomic_fetch_sub(&cmd->loop->server->inflight, 1);
    free(cmd->idem_key);
    free(cmd);
}

static void on_wait_timeout(h2o_timeout_entry_t *entry)
{
    sg_cmd_t *cmd = H2O_STRUCT_FROM_MEMBER(sg_cmd_t, timeout_entry, entry);
    cmd->timed_out = 1;
    if (!cmd->acked)
        return; /* no 2xx before the broker ack: the delivery report answers */
    h2o_req_t *req = take_request(cmd);
    if (req != NULL)
        respond_pending(req, cmd);
    maybe_free(cmd);
}

void sg_handlers_drain(sg_loop_t *loop)
{
    sg_tables_drain(loop);
    /* Stopping: synchronous waiters get their 202 + Location now (the request goes on and can
     * be polled elsewhere); those not yet acknowledged get it from their delivery report. */
    while (!h2o_linklist_is_empty(&loop->waiting)) {
        sg_cmd_t *cmd = H2O_STRUCT_FROM_MEMBER(sg_cmd_t, waiting, loop->waiting.next);
        h2o_linklist_unlink(&cmd->waiting);
        if (h2o_timeout_is_linked(&cmd->timeout_entry))
            h2o_timeout_unlink(&cmd->timeout_entry);
        on_wait_timeout(&cmd->timeout_entry);
    }
}

void sg_handlers_on_deliveries(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *message = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&message->link);
        sg_cmd_t *cmd = H2O_STRUCT_FROM_MEMBER(sg_cmd_t, message, message);
        cmd->dr_pending = 0;
        cmd->acked = cmd->err == SG_BRIDGE_OK;
        if (!cmd->completed) {
            if (cmd->err != SG_BRIDGE_OK) {
                char detail[256];
                snprintf(detail, sizeof(detail), "the event was not acknowledged by Kafka: %s",
                         cmd->errstr ? cmd->errstr : "unknown error");
                send_unavailable(take_request(cmd), "kafka-unavailable", detail);
            } else if (!cmd->route->has_reply) {
                respond_accepted(take_request(cmd), cmd);
            } else if (cmd->async || cmd->timed_out || atomic_load(&cmd->loop->server->draining)) {
                respond_pending(take_request(cmd), cmd);
            }
            /* else: a synchronous request keeps waiting for its reply or its deadline */
        }
        maybe_free(cmd);
    }
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 409: return "Conflict";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "";
    }
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
        sg_problem_send(req, 502, "Bad Gateway", "reply-too-large", "Reply Too Large", "body",
                        "the worker's reply is larger than %u bytes", SG_STORE_MAX_BODY);
        return;
    }
    if (reply->undecodable[0] != '\0') {
        sg_problem_send(req, 502, "Bad Gateway", "undecodable-reply", "Undecodable Reply", "body",
                        "the worker's reply is in the Confluent wire format but does not decode: %s", reply->undecodable);
        return;
    }
    if (reply->status == 0) {
        sg_problem_send(req, 502, "Bad Gateway", "invalid-reply", "Invalid Reply", ":status",
                        "the worker's reply has a :status header that is not an HTTP status code (100..599)");
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
            h2o_add_header_by_str(&req->pool, &req->res.headers, h2o_strdup(&req->pool, name, SIZE_MAX).base, strlen(name), 0, NULL,
                                  h2o_strdup(&req->pool, reply->headers[i].value, reply->headers[i].len).base,
                                  reply->headers[i].len);
    }
    sg_http_respond(req, reply->status, reason_phrase(reply->status), content_type, reply->body != NULL ? reply->body : "",
                    reply->body != NULL ? reply->body_len : 0);
}

static void reply_msg_free(sg_reply_msg_t *reply)
{
    for (size_t i = 0; i < reply->n_headers; ++i) {
        free(reply->headers[i].name);
        free(reply->headers[i].value);
    }
    free(reply->body);
    free(reply);
}

void sg_handlers_on_replies(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    sg_loop_t *loop = H2O_STRUCT_FROM_MEMBER(sg_loop_t, replies, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *message = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&message->link);
        sg_reply_msg_t *reply = H2O_STRUCT_FROM_MEMBER(sg_reply_msg_t, message, message);
        sg_cmd_t *cmd = sg_corr_find(loop->pending, &reply->id);
        if (cmd == NULL) {
            /* recorded for GET /requests/{id}, but nobody waits here any more: answered at its
             * deadline, asynchronous, client gone, or from before a restart */
            atomic_fetch_add(&loop->server->replies_unawaited, 1);
        } else {
            h2o_req_t *req = take_request(cmd);
            if (req != NULL)
                respond_with_reply(req, cmd, reply);
            maybe_free(cmd);
        }
        reply_msg_free(reply);
    }
}

static int parse_status(const void *value, size_t len)
{
    const char *text = value;
    if (len != 3)
        return 0;
    int status = 0;
    for (size_t i = 0; i < 3; ++i) {
        if (text[i] < '0' || text[i] > '9')
            return 0;
        status = status * 10 + (text[i] - '0');
    }
    return status >= 100 && status <= 599 ? status : 0;
}

static char *dup_bytes(const void *data, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        abort();
    if (len > 0)
        memcpy(copy, data, len);
    copy[len] = '\0';
    return copy;
}

/* Reply headers are copied into HTTP responses: refuse anything that could split a header. */
static int header_value_ok(const void *value, size_t len)
{
    const unsigned char *bytes = value;
    for (size_t i = 0; i < len; ++i)
        if (bytes[i] == '\r' || bytes[i] == '\n' || bytes[i] == '\0')
            return 0;
    return 1;
}

/* Bridge thread: a record from a reply topic. Its correlation id says, without any lookup,
 * whether it is genuine (MAC) and which instance and loop wait for it. */
static int allowed_for_record(const sg_server_t *server, const char *name)
{
    for (size_t i = 0; i < server->n_reply_allowed_headers; ++i)
        if (strcasecmp(server->reply_allowed_headers[i], name) == 0)
            return 1;
    return 0;
}

/* Whether an undecodable reply of schema id should be logged: once per id (the first 64 ids).
 * Bridge thread only. */
static int warn_reply_id_once(uint32_t id)
{
    static uint32_t warned[64];
    static size_t n_warned;
    for (size_t i = 0; i < n_warned; ++i)
        if (warned[i] == id)
            return 0;
    if (n_warned < sizeof(warned) / sizeof(warned[0]))
        warned[n_warned++] = id;
    return 1;
}

/* Records the outcome so that GET /requests/{id} on this instance can serve it. */
static void record_outcome(sg_server_t *server, const sg_reqid_t *id, const sg_reply_t *reply, const sg_reply_msg_t *msg)
{
    char id_text[SG_REQID_TEXT_LEN + 1];
    memcpy(id_text, reply->correlation_id, SG_REQID_TEXT_LEN);
    id_text[SG_REQID_TEXT_LEN] = '\0';
    char token[320];
    size_t tlen = sg_token_encode_one(msg->topic, msg->partition, msg->offset, msg->timestamp_ms, token, sizeof(token));
    json_t *headers = json_object();
    const char *content_type = "application/json";
    for (size_t i = 0; i < msg->n_headers; ++i) {
        if (strcasecmp(msg->headers[i].name, "content-type") == 0) {
            if (!msg->decoded)
                content_type = msg->headers[i].value;
        } else if (allowed_for_record(server, msg->headers[i].name))
            json_object_set_new(headers, msg->headers[i].name, json_stringn(msg->headers[i].value, msg->headers[i].len));
    }
    char *headers_text = json_dumps(headers, JSON_COMPACT);
    json_decref(headers);
    sg_request_record_t outcome = {
        .status = msg->status != 0 && msg->undecodable[0] == '\0' ? msg->status : 502,
        .content_type = (char *)content_type,
        .headers_json = headers_text,
        .body = msg->body,
        .body_len = msg->body_len,
        .completed_ms = msg->timestamp_ms,
        .token = tlen > 0 && tlen < sizeof(token) ? token : NULL,
    };
    sg_requests_record_done(server, id, id_text, &outcome);
    free(headers_text);
}

/* Bridge thread: a record from a reply topic. Its correlation id says, without any lookup,
 * whether it is genuine (MAC) and which instance and loop wait for it. Every genuine reply is
 * recorded, whichever instance made the request; the owning loop, if here, is told. */
void sg_handlers_on_reply(void *ctx, const sg_reply_t *reply)
{
    sg_server_t *server = ctx;
    sg_reqid_t id;
    if (reply->correlation_id == NULL ||
        sg_reqid_parse(&server->reqid_key, reply->correlation_id, reply->correlation_len, &id) != 0 ||
        (int64_t)id.time_ms + server->conf->requests.retention_ms <= sg_now_ms()) {
        /* not ours (forged, mangled, another deployment) or past its retention: dropped */
        atomic_fetch_add(&server->replies_dropped, 1);
        return;
    }
    sg_reply_msg_t *msg = calloc(1, sizeof(*msg));
    if (msg == NULL)
        abort();
    msg->id = id;
    msg->status = 200;
    snprintf(msg->topic, sizeof(msg->topic), "%s", reply->topic);
    msg->partition = reply->partition;
    msg->offset = reply->offset;
    msg->timestamp_ms = reply->timestamp_ms;
    if (reply->value_len > SG_STORE_MAX_BODY) {
        /* A reply this large is not copied: the waiter gets a 502 saying why, and the outcome is
         * recorded as a 502 without a body. */
        msg->status = 0;
        msg->oversized = 1;
    } else if (sg_decode_is_framed(reply->value, reply->value_len)) {
        /* Avro in the Confluent wire format: answered as the JSON it decodes to, by schema id. */
        uint32_t schema_id;
        if (sg_decode_framed(server->registry, reply->value, reply->value_len, &msg->body, &msg->body_len, &schema_id,
                             msg->undecodable, sizeof(msg->undecodable)) == 0) {
            msg->decoded = 1;
            if (msg->body_len > SG_STORE_MAX_BODY) { /* JSON can be ~6x the Avro (bytes as \u00XX) */
                free(msg->body);
                msg->body = NULL;
                msg->body_len = 0;
                msg->status = 0;
                msg->oversized = 1;
            }
        } else {
            if (msg->undecodable[0] == '\0')
                snprintf(msg->undecodable, sizeof(msg->undecodable), "schema id %u", (unsigned)schema_id);
            atomic_fetch_add(&server->replies_undecodable, 1);
            if (warn_reply_id_once(schema_id))
                fprintf(stderr,
                        "streamgate: reply %s [%d] offset %lld answered 502: %s (logged once per schema id; "
                        "counted in streamgate_replies_undecodable_total)\n",
                        reply->topic, (int)reply->partition, (long long)reply->offset, msg->undecodable);
        }
    } else if (reply->value != NULL) {
        msg->body = dup_bytes(reply->value, reply->value_len);
        msg->body_len = reply->value_len;
    }
    const char *name;
    const void *value;
    size_t len;
    for (size_t i = 0; sg_bridge_reply_header(reply, i, &name, &value, &len) == 0; ++i) {
        if (strcmp(name, ":status") == 0) {
            if (!msg->oversized)
                msg->status = parse_status(value, len);
        } else if (strcmp(name, "kafka_correlationId") != 0 && msg->n_headers < SG_REPLY_MAX_HEADERS && value != NULL &&
                   len <= 8192 && header_value_ok(value, len)) {
            msg->headers[msg->n_headers].name = dup_bytes(name, strlen(name));
            msg->headers[msg->n_headers].value = dup_bytes(value, len);
            msg->headers[msg->n_headers].len = len;
            ++msg->n_headers;
        }
    }
    record_outcome(server, &id, reply, msg);
    if (id.instance != server->instance_id || id.loop >= server->n_loops) {
        reply_msg_free(msg); /* another instance's request: recorded, nobody waits here */
        return;
    }
    h2o_multithread_send_message(&server->loops[id.loop].replies, &msg->message);
}

/* --- dispatch ----------------------------------------------------------------------------- */

typedef struct st_sg_handler_t {
    h2o_handler_t super;
    sg_server_t *server;
} sg_handler_t;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    sg_server_t *server = ((sg_handler_t *)self)->server;
    const sg_conf_t *conf = server->conf;
    const char *path = req->path.base;
    size_t path_len = request_path_len(req);

    if (headers_size(req) > conf->limits.header_bytes) {
        sg_problem_send(req, 431, "Request Header Fields Too Large", "headers-too-large", "Request Header Fields Too Large",
                        "headers", "the request headers exceed limits.header_bytes (%llu)",
                        (unsigned long long)conf->limits.header_bytes);
        return 0;
    }
    if (h2o_memis(path, path_len, H2O_STRLIT("/healthz"))) {
        handle_builtin(req, 0);
        return 0;
    }
    if (h2o_memis(path, path_len, H2O_STRLIT("/readyz"))) {
        handle_builtin(req, 1);
        return 0;
    }
    if (h2o_memis(path, path_len, H2O_STRLIT("/metrics"))) {
        handle_metrics(req);
        return 0;
    }
    if (h2o_memis(path, path_len, H2O_STRLIT("/openapi.json"))) {
        sg_openapi_handle(req);
        return 0;
    }
    if (path_len > sizeof("/requests/") - 1 && memcmp(path, "/requests/", sizeof("/requests/") - 1) == 0) {
        sg_requests_handle(req, path, path_len);
        return 0;
    }
    if (path_len > sizeof("/tables/") - 1 && memcmp(path, "/tables/", sizeof("/tables/") - 1) == 0) {
        sg_tables_handle(req, path, path_len);
        return 0;
    }
    if (path_len >= sizeof("/registry") - 1 && memcmp(path, "/registry", sizeof("/registry") - 1) == 0 &&
        (path_len == sizeof("/registry") - 1 || path[sizeof("/registry") - 1] == '/')) {
        sg_registry_handle(req, path, path_len);
        return 0;
    }
    if (is_reserved_path(path, path_len)) {
        sg_problem_send(req, 404, "Not Found", "not-found", "Not Found", NULL, "no resource at %.*s",
                        (int)(path_len > 200 ? 200 : path_len), path);
        return 0;
    }

    sg_router_result_t found;
    switch (sg_router_lookup(server->router, req->method.base, req->method.len, path, path_len, &found)) {
    case SG_ROUTER_FOUND:
        if (found.is_query)
            sg_tables_handle_query(req, found.route, &found.match);
        else
            handle_command(req, found.route, &found.match);
        sg_path_match_dispose(&found.match);
        return 0;
    case SG_ROUTER_METHOD_NOT_ALLOWED:
        if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS"))) {
            handle_options(req, &found);
            return 0;
        }
        sg_problem_method_not_allowed(req, found.allow);
        return 0;
    case SG_ROUTER_BAD_PATH:
        sg_problem_send(req, 400, "Bad Request", "invalid-path", "Invalid Path", "path",
                        "a path parameter is not valid percent-encoding");
        return 0;
    case SG_ROUTER_NOT_FOUND: break;
    }
    sg_problem_send(req, 404, "Not Found", "not-found", "Not Found", NULL, "no route for %.*s",
                    (int)(path_len > 200 ? 200 : path_len), path);
    return 0;
}

void sg_handlers_register(sg_server_t *server, h2o_hostconf_t *hostconf)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    sg_handler_t *handler = (void *)h2o_create_handler(pathconf, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->server = server;
    sg_problem_register_fallback(&hostconf->fallback_path);
}
