/*
 * The HTTP side of the gateway, seen from main(): create (binds the listeners), start the loop
 * threads, and the steps of a graceful shutdown.
 */
#ifndef SG_SERVER_H
#define SG_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "sg_bridge.h"
#include "sg_conf.h"
#include "sg_store.h"

typedef struct st_sg_server_t sg_server_t;

/** Builds the router and binds every listen address for every loop. Returns the server or NULL
 * with err. The bridge must have been created with sg_gateway_on_delivery and
 * sg_gateway_on_reply. Main thread. */
sg_server_t *sg_server_create(const sg_conf_t *conf, sg_bridge_t *bridge, char *err, size_t errlen);

/** The delivery callback to give sg_bridge_create (bridge thread; bridge_thread.c). */
void sg_gateway_on_delivery(void *opaque, const sg_delivery_t *delivery);

/** The reply callback to give sg_bridge_create; its context is the sg_server_t (bridge thread;
 * bridge_thread.c). */
void sg_gateway_on_reply(void *server, const sg_reply_t *reply);

/** Serves `tables` under /tables/ and waits for `materializer` in /readyz (both borrowed; set
 * before sg_server_start). */
struct st_sg_tables_t;
struct st_sg_materializer_t;
void sg_server_set_tables(sg_server_t *server, struct st_sg_tables_t *tables, struct st_sg_materializer_t *materializer);

/** Serves /registry from `registry` (borrowed; built in) or answers that an external one is in
 * use. Set before sg_server_start. */
struct st_sg_registry_t;
void sg_server_set_registry(sg_server_t *server, struct st_sg_registry_t *registry);

/** Uses `deployment` (borrowed; set before sg_server_start) for Idempotency-Key claims and in
 * /readyz. */
struct st_sg_deployment_t;
void sg_server_set_deployment(sg_server_t *server, struct st_sg_deployment_t *deployment);

/** Routes reads of partitioned tables with `placement` (borrowed; may be NULL) and waits for it
 * in /readyz. Set before sg_server_start. */
struct st_sg_placement_t;
void sg_server_set_placement(sg_server_t *server, struct st_sg_placement_t *placement);

/** The request store (owned by the server), for the deployment's claims fold. */
sg_store_t *sg_server_store(sg_server_t *server);

/** The request-id secret (requests.secret, or the deployment's once settled): request ids are
 * made and checked from now on. Once; any thread (the deployment thread; its context is the
 * sg_server_t). */
void sg_gateway_on_secret(void *server, const uint8_t *secret, size_t len);

/** The deployment's COMPLETE records (sg_claims_completed_cb; its context is the sg_server_t):
 * records the 202 outcome a replay answers with (deployment thread; idempotency.c). */
struct st_sg_claim_position_t;
void sg_gateway_on_claim_completed(void *server, const char *route, const char *request_id,
                                   const struct st_sg_claim_position_t *pos);
/** Enforces authentication with `auth` (borrowed; NULL: no auth section). Set before
 * sg_server_start; destroy it only after sg_server_destroy. */
struct st_sg_auth_t;
void sg_server_set_auth(sg_server_t *server, struct st_sg_auth_t *auth);
/** Settles Idempotency-Keys whose first produce's outcome is unknown with `lookup` (borrowed;
 * set before sg_server_start, destroyed after the loops stop and before the store closes;
 * idempotency.c). Without one such a key stays refused (503 outcome-unknown) until it expires. */
struct st_sg_lookup_t;
void sg_server_set_lookup(sg_server_t *server, struct st_sg_lookup_t *lookup);

/** The materializer's progress callback (its context is the sg_server_t): wakes table reads
 * waiting for their conditions, and watches (materializer thread; tables.c). */
void sg_gateway_on_table_progress(void *server, size_t table_index);

/** Writes "http://HOST:PORT\n" per listen address into buf. Returns the length. */
size_t sg_server_addresses(const sg_server_t *server, char *buf, size_t buflen);

/** Starts the event-loop threads. Returns 0 or -1 with err. */
int sg_server_start(sg_server_t *server, char *err, size_t errlen);

/** Closes the listeners, makes new requests that would wait answer 503 shutting-down, and has
 * every loop answer what it has parked (README.md of gateway/ says how each kind is answered);
 * commands waiting for their broker ack continue. */
void sg_server_stop_accepting(sg_server_t *server);

/** Waits up to timeout_ms until no command is in flight, no request is parked and every event
 * stream has ended. Returns how many remain. */
long sg_server_wait_idle(sg_server_t *server, int64_t timeout_ms);

/** Stops and joins the loop threads. */
void sg_server_stop(sg_server_t *server);

/** Periodic upkeep off the event loops (the main thread, once a second): deletes expired
 * request outcomes, a bounded number per call. */
void sg_server_maintain(sg_server_t *server);

/** Closes the request store; call once the bridge thread (which writes to it) is stopped. */
void sg_server_close_store(sg_server_t *server);

/** Stops (if needed) and releases what can be released; NULL is a no-op. */
void sg_server_destroy(sg_server_t *server);

#endif
