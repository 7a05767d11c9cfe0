/*
 * Idempotency-Key (README, "HTTP API: request-reply"): the same key and body within the retention
 * replays the first outcome; a different body is a 422; while the first has no outcome yet, 409.
 *
 * The claim is a RocksDB point operation on the loop thread (microseconds, no scan): it maps
 * (route, key) to the body's SHA-256 and the id of the request that claimed it. The outcome is
 * the request record of that id, written from the bridge thread (a 202 here, a reply by
 * bridge_thread.c), so a replay reads what any instance recorded.
 *
 * With auth the claim is per (route, owner, key): the store's route part is "ROUTE@OWNER" (a
 * route name never holds '@'), so two principals using the same key never meet.
 */
#include "idempotency.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "http_text.h"
#include "respond.h"
#include "sg_token.h"

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
    sg_problem(req, SG_PROBLEM_IDEMPOTENCY_KEY_IN_FLIGHT, "Idempotency-Key",
               "a request with this Idempotency-Key is still in flight");
    return 1;
}

void sg_idem_record_accepted(sg_server_t *server, const sg_cmd_t *cmd)
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
                               .token = tlen > 0 && tlen < sizeof(token) ? token : NULL,
                               .owner = cmd->owner[0] != '\0' ? (char *)cmd->owner : NULL};
    char err[256], scope[SG_STORE_MAX_ROUTE + 1];
    if (sg_store_put_request(server->store, cmd->id_text, SG_REQID_TEXT_LEN, &rec, err, sizeof(err)) < 0 ||
        sg_store_idem_complete(server->store, claim_scope(cmd->route, cmd->owner, scope, sizeof(scope)), cmd->idem_key,
                               cmd->idem_key_len, cmd->id_text, SG_REQID_TEXT_LEN, err, sizeof(err)) < 0)
        sg_log_error("idempotency store: %s", err);
}

void sg_idem_release(sg_server_t *server, const sg_cmd_t *cmd)
{
    char err[256], scope[SG_STORE_MAX_ROUTE + 1];
    if (sg_store_idem_release(server->store, claim_scope(cmd->route, cmd->owner, scope, sizeof(scope)), cmd->idem_key,
                              cmd->idem_key_len, cmd->id_text, SG_REQID_TEXT_LEN, err, sizeof(err)) < 0)
        sg_log_error("idempotency store: %s", err);
}
