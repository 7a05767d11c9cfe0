/*
 * Idempotency-Key on command routes, deployment-wide: a request with a key claims it in the
 * deployment's claims topic (bridge/sg_deployment.h) and goes on only if it won; the first
 * outcome is recorded for replays (bridge thread) and, for a route without reply, published with
 * the claim's completion so that every instance replays it; a produce that failed releases the
 * claim; when the produce's outcome is unknown, the claim is kept (marked unknown for every
 * instance) until a lookup settles it (lookup thread). Final answers (a replay, a different body)
 * come from this instance's fold at once.
 */
#ifndef SG_IDEMPOTENCY_H
#define SG_IDEMPOTENCY_H

#include <stddef.h>

#include <h2o.h>

#include "command.h"

typedef enum {
    SG_IDEM_PROCEED = 0, /* no Idempotency-Key: produce */
    SG_IDEM_ANSWERED,    /* answered here: a replay, 409, 422, 400 or 503 */
    SG_IDEM_CLAIMING,    /* the claim is on its way: its answer comes to the loop (sg_commands_post_claimed) */
} sg_idem_begin_t;

/** Handles cmd's Idempotency-Key, if the request has one (cmd has its id and route). Returns an
 * sg_idem_begin_t; with SG_IDEM_CLAIMING cmd->idem holds the claim key and
 * cmd->claim_pending is set. Loop thread. */
int sg_idem_begin(h2o_req_t *req, sg_cmd_t *cmd);

/** The claim's answer is in cmd: answers the request (a replay, 409, 422, 503) and returns 1, or
 * returns 0 when cmd now holds the key and may produce. Loop thread. */
int sg_idem_claimed(h2o_req_t *req, sg_cmd_t *cmd);

/** The command's 202 is its first outcome: recorded here, so a retry on this instance replays it,
 * and published with the claim's completion, for every instance. Returns 1 when the publication
 * hands cmd back to its loop once the broker has it (or refused it), 0 when the caller does.
 * Bridge thread, after a successful delivery of a route without reply. */
int sg_idem_record_accepted(sg_server_t *server, sg_cmd_t *cmd);

/** The event did not reach Kafka: the claim is released, deployment-wide, so a retry may claim
 * the key again. Any thread. */
void sg_idem_release(sg_server_t *server, const sg_cmd_t *cmd);

/** The produce failed but the event may be in the log (POSSIBLY_PERSISTED): keeps the key claimed
 * as "outcome unknown" (here and, published, on every instance) and submits a lookup that
 * records the outcome and publishes the completion (found) or publishes the release (not found).
 * Returns 0 marked, -1 when it could not be (the key is then released, as before). Bridge thread. */
int sg_idem_mark_unknown(sg_server_t *server, const sg_cmd_t *cmd);

#endif
