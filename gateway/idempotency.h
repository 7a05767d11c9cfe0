/*
 * Idempotency-Key on command routes: claim on arrival (loop), record the first outcome or release
 * the claim (bridge thread, or the loop when the event never reached the producer). The records
 * live in the request store (RocksDB point operations, safe from any thread).
 */
#ifndef SG_IDEMPOTENCY_H
#define SG_IDEMPOTENCY_H

#include <stddef.h>

#include <h2o.h>

#include "command.h"

/** Handles the request's Idempotency-Key (if any) for a command of `owner` (access.h; keys are
 * per owner, so one principal never replays another's outcome) about to get id `id_text`.
 * Returns 1 when the request was answered here (a replay, 409, 422, 400 or 503), 0 when it should
 * go on; then *key_out is the claimed key (owned by the caller) or NULL when none was given.
 * Loop thread. */
int sg_idem_check(h2o_req_t *req, const sg_route_conf_t *route, const char *owner, const char *id_text, char **key_out,
                  size_t *key_len_out);

/** The command's 202 is its first outcome: recorded so a retry gets the same position. Bridge
 * thread, after a successful delivery of a route without reply. */
void sg_idem_record_accepted(sg_server_t *server, const sg_cmd_t *cmd);

/** The event did not reach Kafka: a retry may claim the key again. Any thread. */
void sg_idem_release(sg_server_t *server, const sg_cmd_t *cmd);

#endif
