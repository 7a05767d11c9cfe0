/*
 * Everything the gateway runs on the bridge thread: librdkafka's delivery reports and reply
 * records, and recording request outcomes in the store. Nothing here touches an h2o_req_t: a
 * delivery goes back to its loop as the sg_cmd_t it came with, a reply as a heap copy
 * (sg_reply_msg_t), and loops with long-polls are told that an outcome was recorded.
 *
 * Outcomes are recorded here, not on the loops (README, "Choices made where the design is
 * silent"): the PENDING record when the broker acknowledges a reply route's request, the DONE
 * record when its reply is read, by whichever instance reads it, so any instance answers
 * GET /requests/{id}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "command.h"
#include "http_text.h"
#include "idempotency.h"
#include "requests.h"
#include "server.h"
#include "sg_decode.h"
#include "sg_token.h"

#define SG_REPLY_MAX_HEADER_VALUE 8192

static sg_log_once_t undecodable_logged; /* per schema id */

static void record_pending(sg_server_t *server, const sg_cmd_t *cmd)
{
    sg_request_record_t rec = {.state = SG_REQUEST_PENDING,
                               .created_ms = cmd->create_ms,
                               .expires_ms = cmd->create_ms + server->conf->requests.retention_ms,
                               .owner = cmd->owner[0] != '\0' ? (char *)cmd->owner : NULL};
    char err[256];
    if (sg_store_put_request(server->store, cmd->id_text, SG_REQID_TEXT_LEN, &rec, err, sizeof(err)) < 0)
        sg_log_error("request store: %s", err);
}

void sg_gateway_on_delivery(void *opaque, const sg_delivery_t *delivery)
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
        record_pending(cmd->loop->server, cmd);
    if (cmd->idem != NULL) {
        if (cmd->err != SG_BRIDGE_OK && (delivery->status == SG_DELIVERY_POSSIBLY_PERSISTED || cmd->err == SG_BRIDGE_E_DELIVERY))
            /* It may be in the log: the key stays claimed until a lookup knows. Not only for
             * POSSIBLY_PERSISTED: when only that kept the key, a run with every node of the real
             * cluster SIGSTOPped wrote 4 of 24 keys twice, so a timeout's NOT_PERSISTED is not relied
             * on (a lookup is one bounded read; a message with no partition is released at once). */
            cmd->outcome_unknown = sg_idem_mark_unknown(cmd->loop->server, cmd) == 0;
        else if (cmd->err != SG_BRIDGE_OK)
            sg_idem_release(cmd->loop->server, cmd); /* not in Kafka: a retry may claim the key again */
        else if (!cmd->route->has_reply && sg_idem_record_accepted(cmd->loop->server, cmd))
            return; /* handed to the loop once the claim's completion is published */
    }
    sg_commands_post_delivery(cmd);
}

static int allowed_for_record(const sg_server_t *server, const char *name)
{
    for (size_t i = 0; i < server->n_reply_allowed_headers; ++i)
        if (strcasecmp(server->reply_allowed_headers[i], name) == 0)
            return 1;
    return 0;
}

/* Records the outcome so that GET /requests/{id} on this instance can serve it, and tells the
 * loops that have long-polls. */
static void record_outcome(sg_server_t *server, const sg_reqid_t *id, const sg_reply_t *reply, const sg_reply_msg_t *msg)
{
    char id_text[SG_REQID_TEXT_LEN + 1];
    memcpy(id_text, reply->correlation_id, SG_REQID_TEXT_LEN);
    id_text[SG_REQID_TEXT_LEN] = '\0';
    char token[320];
    size_t tlen = sg_token_encode_one(msg->topic, msg->partition, msg->offset, msg->timestamp_ms, token, sizeof(token));
    json_t *headers = json_object();
    const char *content_type = msg->status == 0 || sg_http_status_has_content(msg->status) ? "application/json" : NULL;
    for (size_t i = 0; i < msg->n_headers; ++i) {
        if (strcasecmp(msg->headers[i].name, "content-type") == 0) {
            if (!msg->decoded && content_type != NULL)
                content_type = msg->headers[i].value;
        } else if (allowed_for_record(server, msg->headers[i].name))
            json_object_set_new(headers, msg->headers[i].name, json_stringn(msg->headers[i].value, msg->headers[i].len));
    }
    char *headers_text = json_dumps(headers, JSON_COMPACT);
    json_decref(headers);
    sg_request_record_t rec = {
        .state = SG_REQUEST_DONE,
        .status = msg->status != 0 && msg->undecodable[0] == '\0' ? msg->status : 502,
        .content_type = (char *)content_type,
        .headers_json = headers_text,
        .body = msg->body,
        .body_len = msg->body_len,
        .created_ms = (int64_t)id->time_ms,
        .completed_ms = msg->timestamp_ms,
        .expires_ms = (int64_t)id->time_ms + server->conf->requests.retention_ms,
        .token = tlen > 0 && tlen < sizeof(token) ? token : NULL,
    };
    char err[256];
    if (sg_store_put_request(server->store, id_text, SG_REQID_TEXT_LEN, &rec, err, sizeof(err)) < 0)
        sg_log_error("request store: %s", err);
    else
        sg_requests_notify_recorded(server, id);
    free(headers_text);
}

/* The reply's value as the body the client gets: copied, or decoded from the Confluent wire
 * format by schema id; too large or undecodable is said in msg (answered 502). */
static void copy_body(sg_server_t *server, const sg_reply_t *reply, sg_reply_msg_t *msg)
{
    if (reply->value_len > SG_STORE_MAX_BODY) {
        /* A reply this large is not copied: the waiter gets a 502 saying why, and the outcome is
         * recorded as a 502 without a body. */
        msg->status = 0;
        msg->oversized = 1;
    } else if (sg_decode_is_framed(reply->value, reply->value_len)) {
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
            if (sg_log_once(&undecodable_logged, schema_id))
                sg_log_warn("reply %s [%d] offset %lld answered 502: %s (logged once per schema id; counted in "
                            "streamgate_replies_undecodable_total)",
                            reply->topic, (int)reply->partition, (long long)reply->offset, msg->undecodable);
        }
    } else if (reply->value != NULL) {
        msg->body = sg_memdup(reply->value, reply->value_len);
        msg->body_len = reply->value_len;
    }
}

/* A record from a reply topic. Its correlation id says, without any lookup, whether it is genuine
 * (MAC) and which instance and loop wait for it. Every genuine reply is recorded, whichever
 * instance made the request; the owning loop, if here, is handed a copy. */
void sg_gateway_on_reply(void *ctx, const sg_reply_t *reply)
{
    sg_server_t *server = ctx;
    sg_reqid_t id;
    if (!sg_server_has_request_key(server) || reply->correlation_id == NULL ||
        sg_reqid_parse(&server->reqid_key, reply->correlation_id, reply->correlation_len, &id) != 0 ||
        (int64_t)id.time_ms + server->conf->requests.retention_ms <= sg_now_ms()) {
        /* not ours (forged, mangled, another deployment), past its retention, or come before this
         * instance knew the deployment's secret: dropped */
        atomic_fetch_add(&server->replies_dropped, 1);
        return;
    }
    sg_reply_msg_t *msg = sg_calloc(1, sizeof(*msg));
    msg->id = id;
    msg->status = 200;
    snprintf(msg->topic, sizeof(msg->topic), "%s", reply->topic);
    msg->partition = reply->partition;
    msg->offset = reply->offset;
    msg->timestamp_ms = reply->timestamp_ms;
    copy_body(server, reply, msg);
    const char *name;
    const void *value;
    size_t len;
    for (size_t i = 0; sg_bridge_reply_header(reply, i, &name, &value, &len) == 0; ++i) {
        size_t name_len = strlen(name);
        if (strcmp(name, ":status") == 0) {
            if (!msg->oversized)
                msg->status = sg_http_status_parse(value, len);
        } else if (strcmp(name, reply->correlation_header) != 0 && msg->n_headers < SG_REPLY_MAX_HEADERS && value != NULL &&
                   len <= SG_REPLY_MAX_HEADER_VALUE && sg_http_header_value_ok(value, len) &&
                   sg_http_header_name_ok(name, name_len)) {
            /* Lower-cased here, so the live answer, the recorded outcome and its replays agree. */
            msg->headers[msg->n_headers].name = sg_malloc(name_len + 1);
            sg_http_lowercase(name, name_len, msg->headers[msg->n_headers].name);
            msg->headers[msg->n_headers].value = sg_memdup(value, len);
            msg->headers[msg->n_headers].len = len;
            ++msg->n_headers;
        }
    }
    if (!sg_http_status_is_final(msg->status))
        msg->status = 0; /* 1xx is an interim response, never an answer: 502 invalid-reply */
    if (msg->status != 0 && !sg_http_status_has_content(msg->status)) {
        free(msg->body); /* 204 and 304 are answered (and recorded) without a body */
        msg->body = NULL;
        msg->body_len = 0;
    }
    record_outcome(server, &id, reply, msg);
    if (id.instance != server->instance_id || id.loop >= server->n_loops) {
        sg_reply_msg_free(msg); /* another instance's request: recorded, nobody waits here */
        return;
    }
    sg_commands_post_reply(server, id.loop, msg);
}

/* The reply headers any route allows, for recorded outcomes (an instance records every reply it
 * reads, whichever route asked). */
static int init_server(sg_server_t *server, char *err, size_t errlen)
{
    const sg_conf_t *conf = server->conf;
    size_t total = 0;
    for (size_t i = 0; i < conf->n_routes; ++i)
        total += conf->routes[i].has_reply ? conf->routes[i].reply.n_headers : 0;
    server->reply_allowed_headers = sg_calloc(total + 1, sizeof(char *));
    for (size_t i = 0; i < conf->n_routes; ++i)
        for (size_t h = 0; conf->routes[i].has_reply && h < conf->routes[i].reply.n_headers; ++h)
            server->reply_allowed_headers[server->n_reply_allowed_headers++] = conf->routes[i].reply.headers[h];
    return 0;
}

static void dispose_server(sg_server_t *server)
{
    free(server->reply_allowed_headers);
    server->reply_allowed_headers = NULL;
    server->n_reply_allowed_headers = 0;
}

const sg_feature_t sg_feature_outcomes = {.init_server = init_server, .dispose_server = dispose_server};
