/*
 * Idempotency-Key (README, "HTTP API: request-reply" and "Deployments"): the same key and body
 * within the retention replays the first outcome; a different body is a 422; while the first has
 * no outcome yet, 409; on whichever instance of the deployment the retry lands.
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
 */
#include "idempotency.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "respond.h"
#include "server.h"
#include "sg_deployment.h"
#include "sg_token.h"

#define SG_IDEM_MAX_KEY 255

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

/* Replays a recorded outcome: what the first request got, marked as a replay. */
static void replay_outcome(h2o_req_t *req, const sg_request_record_t *rec)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("idempotent-replayed"), 0, NULL, H2O_STRLIT("true"));
    if (rec->token != NULL)
        sg_http_add_token(req, rec->token, strlen(rec->token));
    json_t *headers = rec->headers_json != NULL ? json_loads(rec->headers_json, 0, NULL) : NULL;
    const char *name;
    json_t *value;
    json_object_foreach(headers, name, value)
    {
        if (json_is_string(value))
            sg_http_add_header(req, name, strlen(name), json_string_value(value), json_string_length(value));
    }
    json_decref(headers);
    sg_http_respond(req, rec->status, rec->content_type ? rec->content_type : "application/json",
                    rec->body != NULL ? rec->body : "", rec->body_len);
}

/* The key as sent: quoted (a structured-field string) or bare. Returns 0, or -1 when it is not
 * 1..SG_IDEM_MAX_KEY printable ASCII characters. */
static int key_of(h2o_iovec_t *key)
{
    if (key->len >= 2 && key->base[0] == '"' && key->base[key->len - 1] == '"') {
        key->base += 1;
        key->len -= 2;
    }
    if (key->len == 0 || key->len > SG_IDEM_MAX_KEY)
        return -1;
    for (size_t i = 0; i < key->len; ++i)
        if (key->base[i] < 0x21 || key->base[i] > 0x7e)
            return -1;
    return 0;
}

/* Answers from the claim someone else holds: 422 for another body, the recorded outcome if there
 * is one, else (unless only final answers are wanted) 409. Returns 1 answered, 0 not. */
static int answer_held(h2o_req_t *req, sg_server_t *server, const sg_idem_result_t *held, int final_only)
{
    if (held->kind == SG_IDEM_MISMATCH) {
        sg_problem(req, SG_PROBLEM_IDEMPOTENCY_KEY_REUSED, "Idempotency-Key",
                   "this Idempotency-Key was first used with a different request body");
        return 1;
    }
    /* Same body: replay the first outcome if it is recorded (a reply route's once its reply is
     * recorded, on whichever instance), else the first is still in flight. */
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
    sg_problem(req, SG_PROBLEM_IDEMPOTENCY_KEY_IN_FLIGHT, "Idempotency-Key",
               "a request with this Idempotency-Key is still in flight");
    return 1;
}

/* The claim's answer, from the deployment thread: back to the request's loop. */
static void on_claim_done(void *opaque, int rc, const sg_idem_result_t *result, const char *why)
{
    static sg_log_once_t logged;
    sg_cmd_t *cmd = opaque;
    cmd->claim_rc = rc;
    if (rc == SG_CLAIMS_OK)
        cmd->claim = *result;
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
    if (key_of(&key) != 0) {
        sg_problem(req, SG_PROBLEM_INVALID_IDEMPOTENCY_KEY, "Idempotency-Key",
                   "Idempotency-Key must be 1..%d printable ASCII characters", SG_IDEM_MAX_KEY);
        return SG_IDEM_ANSWERED;
    }
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
        if (rc == 0 && answer_held(req, server, &held, 1))
            return SG_IDEM_ANSWERED;
    }
    int64_t expires_ms = cmd->create_ms + server->conf->requests.retention_ms;
    if (server->deployment == NULL || sg_claims_claim(server->deployment, scope, claim_key, body, cmd->id_text, SG_REQID_TEXT_LEN,
                                                      cmd->create_ms, expires_ms, on_claim_done, cmd, err, sizeof(err)) != 0) {
        sg_problem(req, SG_PROBLEM_STORE_UNAVAILABLE, NULL, "the Idempotency-Key cannot be claimed now: %s",
                   server->deployment == NULL ? "no deployment" : err);
        return SG_IDEM_ANSWERED;
    }
    cmd->idem_key = sg_memdup(claim_key, sizeof(claim_key));
    cmd->idem_key_len = sizeof(claim_key);
    cmd->claim_pending = 1;
    return SG_IDEM_CLAIMING;
}

int sg_idem_claimed(h2o_req_t *req, sg_cmd_t *cmd)
{
    sg_server_t *server = cmd->loop->server;
    switch (cmd->claim_rc) {
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
    if (cmd->claim.kind == SG_IDEM_CLAIMED)
        return 0;
    return answer_held(req, server, &cmd->claim, 0);
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
    if (sg_store_idem_complete(server->store, scope, cmd->idem_key, cmd->idem_key_len, cmd->id_text, SG_REQID_TEXT_LEN, err,
                               sizeof(err)) < 0)
        sg_log_error("idempotency store: %s", err);
    return server->deployment != NULL && sg_claims_complete(server->deployment, scope, (const uint8_t *)cmd->idem_key, cmd->id_text,
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
                          (const uint8_t *)cmd->idem_key, cmd->id_text, SG_REQID_TEXT_LEN);
}
