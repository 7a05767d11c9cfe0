/*
 * Idempotency-Key (README, "HTTP API: request-reply" and "Several instances"): the same key and
 * body within the retention replays the first outcome; a different body is a 422; while the first
 * has no outcome yet, 409; while nobody knows whether the first is in Kafka, 503 outcome-unknown;
 * on whichever instance of the deployment the retry lands.
 *
 * The claim lives in the deployment's claims topic, which every instance folds into its request
 * store (bridge/claims.c): a request produces its claim and goes on only once its own fold says
 * it won. What this instance's fold already shows as final (a recorded outcome to replay, or a
 * different body) is answered at once, without a claim; anything else (no claim, or one in
 * flight that may have completed elsewhere since) goes through the topic, so an answer never
 * rests on a stale view. The claim key is the SHA-256 of the Idempotency-Key: the topic never
 * holds the key itself.
 *
 * The outcome is the request record of the holder's id: for a reply route, the reply, which
 * every instance reading the reply topic records; for a route without reply, the 202, recorded
 * here on the bridge thread and published with the claim's completion, whose fold records it on
 * every instance (sg_gateway_on_claim_completed). The 202 waits for that publication, so a retry
 * sent anywhere after it replays.
 *
 * With auth the claim is per (route, owner, key): its route part is "ROUTE@OWNER" (a route name
 * never holds '@'), so two principals using the same key never meet.
 *
 * A produce that failed after it was sent (librdkafka: POSSIBLY_PERSISTED) may still be in the
 * log, at most once (idempotent producer). Releasing its key would let a retry produce a second
 * event, so the claim is kept, marked "outcome unknown" (published to the claims topic too, so
 * every instance's fold marks it), and a lookup (sg_lookup.h, its own thread) reads the partition
 * for the request's correlation id: found, the outcome is recorded at that offset and the claim's
 * completion published (a retry anywhere replays it); not found (twice), the release is published
 * (a retry produces); no answer (brokers still away), it stays unknown and the next retry, on
 * whichever instance, looks again.
 */
#include "idempotency.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "http_text.h"
#include "respond.h"
#include "server.h"
#include "sg_deployment.h"
#include "sg_lookup.h"
#include "sg_token.h"

/* A produce request still on the wire when librdkafka gave up is appended or refused within the
 * broker's request handling; 5 s covers that with room. */
#define SG_IDEM_LOOKUP_SETTLE_MS 5000
#define SG_IDEM_LOOKUP_TIMEOUT_MS 30000

/* A lookup of a possibly persisted produce, for the key that waits on it. Listed in
 * server->lookups from submit to answer, so that retries meanwhile do not queue it again. */
typedef struct st_sg_idem_lookup_t {
    struct st_sg_idem_lookup_t *next;
    sg_server_t *server;
    const sg_route_conf_t *route;
    char owner[SG_ACCESS_OWNER_LEN + 1]; /* the claim's owner (access.h); "" without auth */
    char id_text[SG_REQID_TEXT_LEN + 1];
    int64_t created_ms;
    int32_t partition;
    int not_found_once; /* a first read found nothing: it is read once more before the key is freed */
    size_t key_len;
    char key[]; /* the claim key (the SHA-256 of the Idempotency-Key) */
} sg_idem_lookup_t;

static int submit_lookup(sg_server_t *server, const sg_route_conf_t *route, const char *owner, const void *key, size_t key_len,
                         const char *id_text, int32_t partition, int64_t produced_ms);

/* The route part of a claim: the route, and the owner when there is auth. */
static const char *claim_scope(const sg_route_conf_t *route, const char *owner, char *buf, size_t size)
{
    if (owner[0] == '\0')
        return route->name;
    snprintf(buf, size, "%s@%s", route->name, owner);
    return buf;
}

static void sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned int out_len = 0;
    if (EVP_Digest(data, len, out, &out_len, EVP_sha256(), NULL) != 1)
        sg_oom(); /* with the default provider SHA-256 fails only when an allocation does */
}

/* Replays a recorded outcome: what the first request got, marked as a replay. The rules of a
 * live reply apply again (a record may predate them): a status that is not final is a 502,
 * header names must be tokens (sent lower-cased), values single lines, and 204 or 304 have no
 * body. */
static void replay_outcome(h2o_req_t *req, const sg_request_record_t *rec)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("idempotent-replayed"), 0, NULL, H2O_STRLIT("true"));
    if (!sg_http_status_is_final(rec->status)) {
        sg_problem(req, SG_PROBLEM_INVALID_REPLY, ":status", "the recorded reply's status %d is not a final HTTP status code",
                   rec->status);
        return;
    }
    if (rec->token != NULL)
        sg_http_add_token(req, rec->token, strlen(rec->token));
    json_t *headers = rec->headers_json != NULL ? json_loads(rec->headers_json, 0, NULL) : NULL;
    const char *name;
    json_t *value;
    json_object_foreach(headers, name, value)
    {
        if (json_is_string(value) && sg_http_header_name_ok(name, strlen(name)) &&
            sg_http_header_value_ok(json_string_value(value), json_string_length(value)))
            sg_http_add_header(req, name, strlen(name), json_string_value(value), json_string_length(value));
    }
    json_decref(headers);
    sg_http_respond(req, rec->status, rec->content_type ? rec->content_type : "application/json",
                    rec->body != NULL ? rec->body : "", rec->body_len);
}

/* Answers from the claim someone else holds: 422 for another body, the recorded outcome if there
 * is one, else (unless only final answers are wanted) 503 outcome-unknown (its lookup asked for
 * again) or 409. Returns 1 answered, 0 not. */
static int answer_held(h2o_req_t *req, sg_server_t *server, const sg_cmd_t *cmd, const uint8_t claim_key[32],
                       const sg_idem_result_t *held, int final_only)
{
    if (held->kind == SG_IDEM_MISMATCH) {
        sg_problem(req, SG_PROBLEM_IDEMPOTENCY_KEY_REUSED, "Idempotency-Key",
                   "this Idempotency-Key was first used with a different request body");
        return 1;
    }
    /* Same body: replay the first outcome if it is recorded (a reply route's once its reply is
     * recorded, on whichever instance), else the first is still in flight, or its outcome is
     * unknown (looked up again: the lookup that was running may have found no broker). */
    sg_request_record_t rec;
    char err[256];
    int rc = held->request_id_len > 0
                 ? sg_store_get_request(server->store, held->request_id, held->request_id_len, sg_now_ms(), &rec, err, sizeof(err))
                 : 1;
    if (rc == 0 && rec.state == SG_REQUEST_DONE) {
        replay_outcome(req, &rec);
        sg_request_record_dispose(&rec);
        return 1;
    }
    if (rc == 0)
        sg_request_record_dispose(&rec);
    if (final_only)
        return 0;
    if (held->kind == SG_IDEM_UNKNOWN) {
        if (held->request_id_len == SG_REQID_TEXT_LEN)
            submit_lookup(server, cmd->route, cmd->owner, claim_key, 32, (const char *)held->request_id, held->partition,
                          held->produced_ms);
        sg_problem(req, SG_PROBLEM_OUTCOME_UNKNOWN, "Idempotency-Key",
                   "Kafka did not acknowledge the first request with this Idempotency-Key, and it may still be in the log; "
                   "it is being looked up: retry shortly");
        return 1;
    }
    sg_problem(req, SG_PROBLEM_IDEMPOTENCY_KEY_IN_FLIGHT, "Idempotency-Key",
               "a request with this Idempotency-Key is still in flight");
    return 1;
}

/* The claim's answer, from the deployment thread: back to the request's loop. */
static void on_claim_done(void *opaque, int rc, const sg_idem_result_t *result, const char *why)
{
    static sg_log_once_t logged;
    sg_cmd_t *cmd = opaque;
    cmd->idem->claim_rc = rc;
    if (rc == SG_CLAIMS_OK)
        cmd->idem->claim = *result;
    else if (rc != SG_CLAIMS_E_SHUTDOWN && sg_log_once(&logged, (uint64_t)-rc))
        sg_log_warn("route %s: an Idempotency-Key claim failed, answered 503 store-unavailable: %s (logged once per cause)",
                    cmd->route->name, why);
    sg_commands_post_claimed(cmd);
}

int sg_idem_begin(h2o_req_t *req, sg_cmd_t *cmd)
{
    sg_server_t *server = cmd->loop->server;
    const sg_route_conf_t *route = cmd->route;
    h2o_iovec_t key = sg_http_header(req, H2O_STRLIT("idempotency-key"));
    if (key.base == NULL)
        return SG_IDEM_PROCEED;
    size_t key_start, key_len;
    if (sg_idempotency_key_parse(key.base, key.len, &key_start, &key_len) != 0) {
        sg_problem(req, SG_PROBLEM_INVALID_IDEMPOTENCY_KEY, "Idempotency-Key",
                   "Idempotency-Key must be 1..%d printable ASCII characters", SG_IDEMPOTENCY_KEY_MAX);
        return SG_IDEM_ANSWERED;
    }
    key = h2o_iovec_init(key.base + key_start, key_len);
    uint8_t claim_key[32], body[32];
    sha256(key.base, key.len, claim_key);
    sha256(req->entity.base, req->entity.len, body);
    char err[256], scope_buf[SG_STORE_MAX_ROUTE + 1];
    const char *scope = claim_scope(route, cmd->owner, scope_buf, sizeof(scope_buf));
    if (server->deployment != NULL && sg_deployment_is_ready(server->deployment)) {
        sg_idem_result_t held;
        int rc = sg_store_idem_get(server->store, scope, claim_key, sizeof(claim_key), body, sg_now_ms(), &held, err, sizeof(err));
        if (rc < 0) {
            sg_log_error("idempotency store: %s", err);
            sg_problem(req, SG_PROBLEM_STORE_UNAVAILABLE, NULL, "the idempotency record could not be read");
            return SG_IDEM_ANSWERED;
        }
        if (rc == 0 && answer_held(req, server, cmd, claim_key, &held, 1))
            return SG_IDEM_ANSWERED;
    }
    int64_t expires_ms = cmd->create_ms + server->conf->requests.retention_ms;
    /* Before the claim is submitted: its answer (deployment thread) is written into it. */
    cmd->idem = sg_calloc(1, sizeof(*cmd->idem));
    memcpy(cmd->idem->key, claim_key, sizeof(claim_key));
    if (server->deployment == NULL || sg_claims_claim(server->deployment, scope, claim_key, body, cmd->id_text, SG_REQID_TEXT_LEN,
                                                      cmd->create_ms, expires_ms, on_claim_done, cmd, err, sizeof(err)) != 0) {
        free(cmd->idem);
        cmd->idem = NULL;
        sg_problem(req, SG_PROBLEM_STORE_UNAVAILABLE, NULL, "the Idempotency-Key cannot be claimed now: %s",
                   server->deployment == NULL ? "no deployment" : err);
        return SG_IDEM_ANSWERED;
    }
    cmd->claim_pending = 1;
    return SG_IDEM_CLAIMING;
}

int sg_idem_claimed(h2o_req_t *req, sg_cmd_t *cmd)
{
    sg_server_t *server = cmd->loop->server;
    switch (cmd->idem->claim_rc) {
    case SG_CLAIMS_OK: break;
    case SG_CLAIMS_E_SHUTDOWN:
        sg_problem(req, SG_PROBLEM_SHUTTING_DOWN, NULL, "the gateway is shutting down; retry on another instance");
        return 1;
    case SG_CLAIMS_E_STORE:
        sg_problem(req, SG_PROBLEM_STORE_UNAVAILABLE, NULL,
                   "the Idempotency-Key claim could not be stored (the request store refuses writes); nothing was produced");
        return 1;
    default:
        sg_problem(req, SG_PROBLEM_STORE_UNAVAILABLE, NULL,
                   "the Idempotency-Key claim was not settled in time (the deployment's claims topic is unavailable); nothing "
                   "was produced");
        return 1;
    }
    if (cmd->idem->claim.kind == SG_IDEM_CLAIMED)
        return 0;
    return answer_held(req, server, cmd, cmd->idem->key, &cmd->idem->claim, 0);
}

/* The 202 record of request id_text on a route without reply: what a replay answers. */
static void record_accepted(sg_server_t *server, const char *id_text, const sg_claim_position_t *pos)
{
    char body[384], token[320];
    int len = snprintf(body, sizeof(body), "{\"topic\":\"%s\",\"partition\":%" PRId32 ",\"offset\":%" PRId64 "}", pos->topic,
                       pos->partition, pos->offset);
    size_t tlen = sg_token_encode_one(pos->topic, pos->partition, pos->offset, pos->timestamp_ms, token, sizeof(token));
    sg_request_record_t rec = {.state = SG_REQUEST_DONE,
                               .status = 202,
                               .content_type = "application/json",
                               .body = body,
                               .body_len = (size_t)len,
                               .created_ms = pos->created_ms,
                               .completed_ms = pos->timestamp_ms,
                               .expires_ms = pos->created_ms + server->conf->requests.retention_ms,
                               .token = tlen > 0 && tlen < sizeof(token) ? token : NULL,
                               .owner = (char *)pos->owner};
    char err[256];
    if (sg_store_put_request(server->store, id_text, SG_REQID_TEXT_LEN, &rec, err, sizeof(err)) < 0)
        sg_log_error("idempotency store: %s", err);
}

/* The completion is in the log (or refused): the command's 202 can go. */
static void on_published(void *opaque, int rc)
{
    sg_commands_post_delivery(opaque);
}

int sg_idem_record_accepted(sg_server_t *server, sg_cmd_t *cmd)
{
    sg_claim_position_t pos = {.topic = cmd->route->topic,
                               .partition = cmd->partition,
                               .offset = cmd->offset,
                               .timestamp_ms = cmd->timestamp_ms,
                               .created_ms = cmd->create_ms,
                               .expires_ms = cmd->create_ms + server->conf->requests.retention_ms,
                               .owner = cmd->owner[0] != '\0' ? cmd->owner : NULL};
    record_accepted(server, cmd->id_text, &pos);
    char err[256], scope_buf[SG_STORE_MAX_ROUTE + 1];
    const char *scope = claim_scope(cmd->route, cmd->owner, scope_buf, sizeof(scope_buf));
    if (sg_store_idem_complete(server->store, scope, cmd->idem->key, sizeof(cmd->idem->key), cmd->id_text, SG_REQID_TEXT_LEN, err,
                               sizeof(err)) < 0)
        sg_log_error("idempotency store: %s", err);
    return server->deployment != NULL && sg_claims_complete(server->deployment, scope, cmd->idem->key, cmd->id_text,
                                                            SG_REQID_TEXT_LEN, &pos, on_published, cmd) == 0;
}

void sg_gateway_on_claim_completed(void *ctx, const char *scope, const char *request_id, const sg_claim_position_t *pos)
{
    sg_server_t *server = ctx;
    const sg_conf_t *conf = server->conf;
    size_t name_len = strcspn(scope, "@");
    for (size_t i = 0; i < conf->n_routes; ++i) {
        const sg_route_conf_t *route = &conf->routes[i];
        if (strlen(route->name) != name_len || memcmp(route->name, scope, name_len) != 0)
            continue;
        /* A reply route's outcome is its reply, recorded from the reply topic. */
        if (!route->has_reply)
            record_accepted(server, request_id, pos);
        return;
    }
}

void sg_idem_release(sg_server_t *server, const sg_cmd_t *cmd)
{
    char scope[SG_STORE_MAX_ROUTE + 1];
    if (server->deployment != NULL)
        sg_claims_release(server->deployment, claim_scope(cmd->route, cmd->owner, scope, sizeof(scope)),
                          cmd->idem->key, cmd->id_text, SG_REQID_TEXT_LEN);
}

/* --- outcome unknown: the lookup ------------------------------------------------------------ */

/* The lookup thread's answer. Found: the event is in the log once, at that offset; the outcome is
 * recorded as if its delivery report had said so (a reply route's request is then pending, and
 * its reply completes it as usual). Not found: it never will be; the key is free again. */
static void on_lookup(void *opaque, int result, int32_t partition, int64_t offset, int64_t timestamp_ms)
{
    sg_idem_lookup_t *job = opaque;
    sg_server_t *server = job->server;
    const sg_route_conf_t *route = job->route;
    char err[256], scope[SG_STORE_MAX_ROUTE + 1];
    const char *claim = claim_scope(route, job->owner, scope, sizeof(scope));
    if (result == SG_LOOKUP_FOUND) {
        int64_t ts = timestamp_ms > job->created_ms ? timestamp_ms : job->created_ms;
        sg_claim_position_t pos = {.topic = route->topic,
                                   .partition = partition,
                                   .offset = offset,
                                   .timestamp_ms = ts,
                                   .created_ms = job->created_ms,
                                   .expires_ms = job->created_ms + server->conf->requests.retention_ms,
                                   .owner = job->owner[0] != '\0' ? job->owner : NULL};
        if (!route->has_reply) {
            record_accepted(server, job->id_text, &pos);
        } else {
            sg_request_record_t rec = {.state = SG_REQUEST_PENDING,
                                       .created_ms = job->created_ms,
                                       .expires_ms = job->created_ms + server->conf->requests.retention_ms,
                                       .owner = job->owner[0] != '\0' ? job->owner : NULL};
            if (sg_store_put_request(server->store, job->id_text, SG_REQID_TEXT_LEN, &rec, err, sizeof(err)) < 0)
                sg_log_error("idempotency store: %s", err);
        }
        if (sg_store_idem_complete(server->store, claim, job->key, job->key_len, job->id_text, SG_REQID_TEXT_LEN, err,
                                   sizeof(err)) < 0)
            sg_log_error("idempotency store: %s", err);
        /* Every instance's fold completes the claim (and records a 202) from the published completion. */
        if (server->deployment != NULL && job->key_len == 32)
            sg_claims_complete(server->deployment, claim, (const uint8_t *)job->key, job->id_text, SG_REQID_TEXT_LEN, &pos, NULL,
                               NULL);
        sg_log_info("route %s: request %s, not acknowledged, is in %s [%d] at offset %lld: its Idempotency-Key replays that",
                    route->name, job->id_text, route->topic, (int)partition, (long long)offset);
    } else if (result == SG_LOOKUP_NOT_FOUND && !job->not_found_once) {
        /* Read once more, a settle time later, before freeing the key: a consumer sees a record only
         * once the in-sync replicas have it, and followers just back from a stall may still be
         * fetching it. The job stays listed meanwhile. */
        job->not_found_once = 1;
        if (sg_lookup_submit(server->lookup, route->topic, job->partition, job->created_ms, sg_route_correlation_header(route),
                             job->id_text, SG_REQID_TEXT_LEN, SG_IDEM_LOOKUP_SETTLE_MS, SG_IDEM_LOOKUP_TIMEOUT_MS, on_lookup,
                             job) == 0)
            return;
        sg_log_warn("route %s: request %s: not in %s at a first read, and the second read could not be queued; the next "
                    "retry of its Idempotency-Key looks again",
                    route->name, job->id_text, route->topic);
    } else if (result == SG_LOOKUP_NOT_FOUND) {
        if (sg_store_idem_release(server->store, claim, job->key, job->key_len, job->id_text, SG_REQID_TEXT_LEN, err, sizeof(err)) <
            0)
            sg_log_error("idempotency store: %s", err);
        if (server->deployment != NULL && job->key_len == 32)
            sg_claims_release(server->deployment, claim, (const uint8_t *)job->key, job->id_text, SG_REQID_TEXT_LEN);
        sg_log_info("route %s: request %s, not acknowledged, is not in %s: its Idempotency-Key is free again", route->name,
                    job->id_text, route->topic);
    } else {
        sg_log_warn("route %s: request %s: whether it is in %s is still unknown (no answer from the brokers); the next retry of "
                    "its Idempotency-Key looks again",
                    route->name, job->id_text, route->topic);
    }
    pthread_mutex_lock(&server->lookups_lock);
    for (sg_idem_lookup_t **link = &server->lookups; *link != NULL; link = &(*link)->next)
        if (*link == job) {
            *link = job->next;
            break;
        }
    pthread_mutex_unlock(&server->lookups_lock);
    free(job);
}

/* Submits the lookup of request id_text's event, unless one is already under way. Returns 0 or -1
 * (no lookup helper, or its queue is full: the key stays unknown until a later retry). */
static int submit_lookup(sg_server_t *server, const sg_route_conf_t *route, const char *owner, const void *key, size_t key_len,
                         const char *id_text, int32_t partition, int64_t produced_ms)
{
    if (server->lookup == NULL)
        return -1;
    pthread_mutex_lock(&server->lookups_lock);
    for (sg_idem_lookup_t *job = server->lookups; job != NULL; job = job->next)
        if (memcmp(job->id_text, id_text, SG_REQID_TEXT_LEN) == 0) {
            pthread_mutex_unlock(&server->lookups_lock);
            return 0;
        }
    sg_idem_lookup_t *job = sg_calloc(1, sizeof(*job) + key_len);
    job->server = server;
    job->route = route;
    snprintf(job->owner, sizeof(job->owner), "%s", owner);
    memcpy(job->id_text, id_text, SG_REQID_TEXT_LEN);
    job->created_ms = produced_ms;
    job->partition = partition;
    memcpy(job->key, key, key_len);
    job->key_len = key_len;
    job->next = server->lookups;
    server->lookups = job;
    /* Under the lock: the answer (after the settle time) unlinks it, never before it is linked. */
    int rc = sg_lookup_submit(server->lookup, route->topic, partition, produced_ms, sg_route_correlation_header(route), id_text,
                              SG_REQID_TEXT_LEN, SG_IDEM_LOOKUP_SETTLE_MS, SG_IDEM_LOOKUP_TIMEOUT_MS, on_lookup, job);
    if (rc != 0) {
        server->lookups = job->next;
        free(job);
    }
    pthread_mutex_unlock(&server->lookups_lock);
    if (rc != 0)
        sg_log_warn("route %s: request %s: its lookup could not be queued; a later retry asks again", route->name, id_text);
    return rc;
}

int sg_idem_mark_unknown(sg_server_t *server, const sg_cmd_t *cmd)
{
    char err[256], scope[SG_STORE_MAX_ROUTE + 1];
    const char *claim = claim_scope(cmd->route, cmd->owner, scope, sizeof(scope));
    int rc = cmd->partition < 0 ? 1
                                : sg_store_idem_mark_unknown(server->store, claim, cmd->idem->key, sizeof(cmd->idem->key), cmd->id_text,
                                                             SG_REQID_TEXT_LEN, cmd->partition, cmd->create_ms, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            sg_log_error("idempotency store: %s", err);
        sg_idem_release(server, cmd);
        return -1;
    }
    /* Every instance's fold marks it too: a retry elsewhere answers 503 outcome-unknown, not 409. */
    if (server->deployment != NULL)
        sg_claims_mark_unknown(server->deployment, claim, cmd->idem->key, cmd->id_text, SG_REQID_TEXT_LEN,
                               cmd->partition, cmd->create_ms);
    submit_lookup(server, cmd->route, cmd->owner, cmd->idem->key, sizeof(cmd->idem->key), cmd->id_text, cmd->partition, cmd->create_ms);
    return 0;
}

void sg_server_set_lookup(sg_server_t *server, struct st_sg_lookup_t *lookup)
{
    pthread_mutex_init(&server->lookups_lock, NULL);
    server->lookup = lookup;
}
