/*
 * Idempotency-Key (README, "HTTP API: request-reply"): the same key and body within the retention
 * replays the first outcome; a different body is a 422; while the first has no outcome yet, 409;
 * while nobody knows whether the first is in Kafka, 503 outcome-unknown.
 *
 * The claim is a RocksDB point operation on the loop thread (microseconds, no scan): it maps
 * (route, key) to the body's SHA-256 and the id of the request that claimed it. The outcome is
 * the request record of that id, written from the bridge thread (a 202 here, a reply by
 * bridge_thread.c), so a replay reads what any instance recorded.
 *
 * With auth the claim is per (route, owner, key): the store's route part is "ROUTE@OWNER" (a
 * route name never holds '@'), so two principals using the same key never meet.
 *
 * A produce that failed after it was sent (librdkafka: POSSIBLY_PERSISTED) may still be in the
 * log, at most once (idempotent producer). Releasing its key would let a retry produce a second
 * event, so the claim is kept, marked "outcome unknown", and a lookup (sg_lookup.h, its own
 * thread) reads the partition for the request's correlation id: found, the outcome is recorded at
 * that offset (a retry replays it); not found, the key is released (a retry produces); no answer
 * (brokers still away), it stays unknown and the next retry looks again.
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
    char key[]; /* the Idempotency-Key */
} sg_idem_lookup_t;

static int submit_lookup(sg_server_t *server, const sg_route_conf_t *route, const char *owner, const char *key, size_t key_len,
                         const char *id_text, int32_t partition, int64_t produced_ms);

/* The store's route part of a claim: the route, and the owner when there is auth. */
static const char *claim_scope(const sg_route_conf_t *route, const char *owner, char *buf, size_t size)
{
    if (owner[0] == '\0')
        return route->name;
    snprintf(buf, size, "%s@%s", route->name, owner);
    return buf;
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

int sg_idem_check(h2o_req_t *req, const sg_route_conf_t *route, const char *owner, const char *id_text, char **key_out,
                  size_t *key_len_out)
{
    sg_server_t *server = sg_loop_of(req)->server;
    h2o_iovec_t key = sg_http_header(req, H2O_STRLIT("idempotency-key"));
    *key_out = NULL;
    if (key.base == NULL)
        return 0;
    size_t key_start, key_len;
    if (sg_idempotency_key_parse(key.base, key.len, &key_start, &key_len) != 0) {
        sg_problem(req, SG_PROBLEM_INVALID_IDEMPOTENCY_KEY, "Idempotency-Key",
                   "Idempotency-Key must be 1..%d printable ASCII characters", SG_IDEMPOTENCY_KEY_MAX);
        return 1;
    }
    key = h2o_iovec_init(key.base + key_start, key_len);
    uint8_t digest[32];
    unsigned int digest_len = 0;
    if (EVP_Digest(req->entity.base, req->entity.len, digest, &digest_len, EVP_sha256(), NULL) != 1)
        sg_oom(); /* with the default provider SHA-256 fails only when an allocation does */
    int64_t now = sg_now_ms();
    sg_idem_result_t result;
    char err[256];
    char scope[SG_STORE_MAX_ROUTE + 1];
    if (sg_store_idem_claim(server->store, claim_scope(route, owner, scope, sizeof(scope)), key.base, key.len, digest, id_text,
                            SG_REQID_TEXT_LEN, now, now + server->conf->requests.retention_ms, &result, err, sizeof(err)) != 0) {
        sg_log_error("idempotency store: %s", err);
        sg_problem(req, SG_PROBLEM_STORE_UNAVAILABLE, NULL, "the idempotency record could not be read");
        return 1;
    }
    if (result.kind == SG_IDEM_CLAIMED) {
        *key_out = sg_memdup(key.base, key.len);
        *key_len_out = key.len;
        return 0;
    }
    if (result.kind == SG_IDEM_MISMATCH) {
        sg_problem(req, SG_PROBLEM_IDEMPOTENCY_KEY_REUSED, "Idempotency-Key",
                   "this Idempotency-Key was first used with a different request body");
        return 1;
    }
    /* Same body: replay the first outcome if it is recorded (a reply route's claim is done once
     * its reply is recorded, on whichever instance), else the first is still in flight, or its
     * outcome is unknown (looked up again: the lookup that was running may have found no broker). */
    sg_request_record_t rec;
    int rc = sg_store_get_request(server->store, result.request_id, result.request_id_len, now, &rec, err, sizeof(err));
    if (rc == 0 && rec.state == SG_REQUEST_DONE) {
        replay_outcome(req, &rec);
        sg_request_record_dispose(&rec);
        return 1;
    }
    if (rc == 0)
        sg_request_record_dispose(&rec);
    if (result.kind == SG_IDEM_UNKNOWN) {
        if (result.request_id_len == SG_REQID_TEXT_LEN)
            submit_lookup(server, route, owner, key.base, key.len, (const char *)result.request_id, result.partition,
                          result.produced_ms);
        sg_problem(req, SG_PROBLEM_OUTCOME_UNKNOWN, "Idempotency-Key",
                   "Kafka did not acknowledge the first request with this Idempotency-Key, and it may still be in the log; "
                   "it is being looked up: retry shortly");
        return 1;
    }
    sg_problem(req, SG_PROBLEM_IDEMPOTENCY_KEY_IN_FLIGHT, "Idempotency-Key",
               "a request with this Idempotency-Key is still in flight");
    return 1;
}

/* Records a route without reply's outcome, the 202 for its event's position, and completes the
 * claim (bridge thread, or the lookup thread for a produce found by its correlation id). */
static void record_accepted(sg_server_t *server, const sg_route_conf_t *route, const char *owner, const char *key, size_t key_len,
                            const char *id_text, int64_t created_ms, int32_t partition, int64_t offset, int64_t timestamp_ms)
{
    char body[384], token[320];
    int len = snprintf(body, sizeof(body), "{\"topic\":\"%s\",\"partition\":%" PRId32 ",\"offset\":%" PRId64 "}", route->topic,
                       partition, offset);
    size_t tlen = sg_token_encode_one(route->topic, partition, offset, timestamp_ms, token, sizeof(token));
    sg_request_record_t rec = {.state = SG_REQUEST_DONE,
                               .status = 202,
                               .content_type = "application/json",
                               .body = body,
                               .body_len = (size_t)len,
                               .created_ms = created_ms,
                               .completed_ms = timestamp_ms,
                               .expires_ms = created_ms + server->conf->requests.retention_ms,
                               .token = tlen > 0 && tlen < sizeof(token) ? token : NULL,
                               .owner = owner[0] != '\0' ? (char *)owner : NULL};
    char err[256], scope[SG_STORE_MAX_ROUTE + 1];
    if (sg_store_put_request(server->store, id_text, SG_REQID_TEXT_LEN, &rec, err, sizeof(err)) < 0 ||
        sg_store_idem_complete(server->store, claim_scope(route, owner, scope, sizeof(scope)), key, key_len, id_text,
                               SG_REQID_TEXT_LEN, err, sizeof(err)) < 0)
        sg_log_error("idempotency store: %s", err);
}

void sg_idem_record_accepted(sg_server_t *server, const sg_cmd_t *cmd)
{
    record_accepted(server, cmd->route, cmd->owner, cmd->idem_key, cmd->idem_key_len, cmd->id_text, cmd->create_ms, cmd->partition,
                    cmd->offset, cmd->timestamp_ms);
}

void sg_idem_release(sg_server_t *server, const sg_cmd_t *cmd)
{
    char err[256], scope[SG_STORE_MAX_ROUTE + 1];
    if (sg_store_idem_release(server->store, claim_scope(cmd->route, cmd->owner, scope, sizeof(scope)), cmd->idem_key,
                              cmd->idem_key_len, cmd->id_text, SG_REQID_TEXT_LEN, err, sizeof(err)) < 0)
        sg_log_error("idempotency store: %s", err);
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
        if (!route->has_reply) {
            record_accepted(server, route, job->owner, job->key, job->key_len, job->id_text, job->created_ms, partition, offset,
                            ts);
        } else {
            sg_request_record_t rec = {.state = SG_REQUEST_PENDING,
                                       .created_ms = job->created_ms,
                                       .expires_ms = job->created_ms + server->conf->requests.retention_ms,
                                       .owner = job->owner[0] != '\0' ? job->owner : NULL};
            if (sg_store_put_request(server->store, job->id_text, SG_REQID_TEXT_LEN, &rec, err, sizeof(err)) < 0 ||
                sg_store_idem_complete(server->store, claim, job->key, job->key_len, job->id_text, SG_REQID_TEXT_LEN, err,
                                       sizeof(err)) < 0)
                sg_log_error("idempotency store: %s", err);
        }
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
static int submit_lookup(sg_server_t *server, const sg_route_conf_t *route, const char *owner, const char *key, size_t key_len,
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
    int rc = cmd->partition < 0
                 ? 1
                 : sg_store_idem_mark_unknown(server->store, claim_scope(cmd->route, cmd->owner, scope, sizeof(scope)),
                                              cmd->idem_key, cmd->idem_key_len, cmd->id_text, SG_REQID_TEXT_LEN, cmd->partition,
                                              cmd->create_ms, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            sg_log_error("idempotency store: %s", err);
        sg_idem_release(server, cmd);
        return -1;
    }
    submit_lookup(server, cmd->route, cmd->owner, cmd->idem_key, cmd->idem_key_len, cmd->id_text, cmd->partition, cmd->create_ms);
    return 0;
}

void sg_server_set_lookup(sg_server_t *server, struct st_sg_lookup_t *lookup)
{
    pthread_mutex_init(&server->lookups_lock, NULL);
    server->lookup = lookup;
}
