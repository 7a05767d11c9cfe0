/*
 * Idempotency-Key on command routes: claim on arrival (loop), record the first outcome or release
 * the claim (bridge thread, or the loop when the event never reached the producer), or, when the
 * produce's outcome is unknown, keep the claim until a lookup settles it (lookup thread). The
 * records live in the request store (RocksDB point operations, safe from any thread).
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

/** The produce failed but the event may be in the log (POSSIBLY_PERSISTED): keeps the key claimed
 * as "outcome unknown" and submits a lookup that records the outcome (found) or releases the key
 * (not found). Returns 0 marked, -1 when it could not be (the key is then released, as before).
 * Bridge thread. */
int sg_idem_mark_unknown(sg_server_t *server, const sg_cmd_t *cmd);

#endif
