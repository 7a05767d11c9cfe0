/*
 * Private to the command path: the record of a command in flight and of a reply on its way to
 * the loop that waits for it. commands.c owns the loop side, bridge_thread.c fills both on the
 * bridge thread and hands them back through the functions below; idempotency.c reads the record.
 */
#ifndef SG_COMMAND_H
#define SG_COMMAND_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway_int.h"
#include "park.h"
#include "sg_reqid.h"

/* What a command produces: key and value in the request's pool (or the request's own body). */
typedef struct st_sg_cmd_event_t {
    h2o_iovec_t key, value;
    const char *value_type;
} sg_cmd_event_t;

/* A command with an Idempotency-Key: its claim, allocated only for such requests (most have none,
 * and every byte of sg_cmd_t is held by each waiting request). */
typedef struct st_sg_cmd_idem_t {
    uint8_t key[32]; /* the claim key: SHA-256 of its Idempotency-Key */
    /* the claim's answer, filled on the deployment thread before the hand-off */
    int claim_rc;
    sg_idem_result_t claim;
    sg_cmd_event_t event; /* kept (in the request's pool) until the claim is answered */
} sg_cmd_idem_t;

/* The record of a command from its admission until the bridge, the claim and the wait are all
 * done. Held by every waiting request: keep it small (tests/gateway/test_command_size.c). */
typedef struct st_sg_cmd_t {
    h2o_multithread_message_t message; /* linked into the loop's receiver by the bridge thread */
    sg_park_t park;                    /* the HTTP request while it waits; loop thread only */
    sg_loop_t *loop;
    const sg_route_conf_t *route;
    int64_t create_ms;     /* the record's CreateTime, set by us */
    int64_t produced_us;   /* sg_mono_us() when it was handed to the producer (metrics) */
    int64_t produce_ms;    /* sg_now_ms() when it was handed to the producer: the ack deadline's start */
    int64_t wait_until_ms; /* sync reply routes: when the wait for the reply ends (sg_now_ms) */
    sg_reqid_t id;
    char id_text[SG_REQID_TEXT_LEN + 1];
    /* The fields below are ordered to leave no padding: a record of at most 280 bytes with its
     * one-byte owner is one 288-byte malloc chunk. */
    bool outcome_unknown; /* bridge thread: failed, possibly in the log: its Idempotency-Key stays claimed (lookup) */
    /* loop thread only */
    unsigned dr_pending : 1, in_table : 1, async : 1, timed_out : 1, acked : 1, claim_pending : 1, counted : 1;
    /* filled on the bridge thread before the hand-off */
    int err;
    int32_t partition;
    const char *errstr;
    int64_t offset;
    int64_t timestamp_ms;
    sg_cmd_idem_t *idem;             /* owned; NULL without an Idempotency-Key claim */
    const sg_principal_t *principal; /* its credential's principal (stamped on the event), while the request lives */
    uint32_t value_bytes; /* the event's value (limits.body_bytes <= 64 MiB), counted in limits.inflight_bytes until the delivery report */
    /* who asked (access.h), stored with its outcome: SG_ACCESS_OWNER_LEN + 1 bytes where it is
     * worked out (with auth, on reply routes and with an Idempotency-Key), else one byte, "" */
    char owner[];
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

/** Bridge thread: hands a delivered (or failed) command back to its loop. */
void sg_commands_post_delivery(sg_cmd_t *cmd);

/** Deployment thread: hands a command whose Idempotency-Key claim was answered back to its loop. */
void sg_commands_post_claimed(sg_cmd_t *cmd);

/** Bridge thread: hands a reply (owned by the receiver from now on) to loop `loop_index`. */
void sg_commands_post_reply(sg_server_t *server, size_t loop_index, sg_reply_msg_t *reply);

/** Frees a reply message and what it holds. Any thread. */
void sg_reply_msg_free(sg_reply_msg_t *reply);

#endif
