/*
 * The deployment (DESIGN §8): the instances that run under one `deployment.name` on one Kafka
 * cluster, and what they share through two internal topics (README, "Deployments").
 *
 *   _streamgate.<name>              compacted, read from partition 0 only. Keys are text:
 *                                   "secret/<claim>": a proposed request-id secret; the first in
 *                                   offset order is the deployment's, for good (its key is unique,
 *                                   so compaction never drops it; a losing proposal is deleted
 *                                   by its maker with a tombstone). Part B's "member/<instance>"
 *                                   records (advertised URL, assignment, lease) go here too.
 *   _streamgate.<name>.idempotency  Idempotency-Key claims: records of one (route, key) on one
 *                                   partition, the first claim in offset order wins. Deleted after
 *                                   twice requests.retention, not compacted (see claims.c).
 *
 * One thread (the deployment thread) owns a producer and a consumer without a group for both:
 * it reads them from the beginning, settles the secret, and folds every claim record into the
 * request store (sg_store.h), which is where the loops look claims up. Nothing here knows HTTP.
 */
#ifndef SG_DEPLOYMENT_H
#define SG_DEPLOYMENT_H

#include <stddef.h>
#include <stdint.h>

#include "sg_conf.h"
#include "sg_store.h"

#define SG_DEPLOYMENT_SECRET_LEN 32
#define SG_DEPLOYMENT_CLAIM_PARTITIONS 6 /* when the gateway creates the claims topic */
#define SG_DEPLOYMENT_TOPIC_MAX 256

typedef struct st_sg_deployment_t sg_deployment_t;

/* A claim's outcome as the deployment thread reports it. */
enum {
    SG_CLAIMS_OK = 0,
    SG_CLAIMS_E_UNAVAILABLE = -1, /* the claims topic did not take the record, or it was not read back in time */
    SG_CLAIMS_E_STORE = -2,       /* the request store refused the fold (full disk): no claim is decided meanwhile */
    SG_CLAIMS_E_SHUTDOWN = -3,
};

/* Where a completed claim's event is: what a replay answers with. */
typedef struct st_sg_claim_position_t {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    int64_t created_ms; /* the request's creation (its id's time) */
    int64_t expires_ms; /* the claim's expiry */
    const char *owner;  /* who made the request (the gateway's text for it), or NULL */
} sg_claim_position_t;

/** The secret is settled: called once, on the deployment thread, before sg_deployment_is_ready. */
typedef void (*sg_deployment_secret_cb)(void *ctx, const uint8_t *secret, size_t len);

/** A COMPLETE record is being folded (any instance's, this one's too): record the outcome of
 * `request_id` (32 characters, not NUL-terminated) on `route` (the claim's route part, as
 * claimed) before its claim is marked done. Deployment thread. */
typedef void (*sg_claims_completed_cb)(void *ctx, const char *route, const char *request_id, const sg_claim_position_t *pos);

/** A claim's answer, once, on the deployment thread: rc SG_CLAIMS_OK with the fold's result
 * (CLAIMED: this request holds the key and may produce; else the holder's state, as
 * sg_store_idem_claim reports it), or SG_CLAIMS_E_* with why (static or valid during the call). */
typedef void (*sg_claims_done_cb)(void *opaque, int rc, const sg_idem_result_t *result, const char *why);

/** A completion's publication, once, on the deployment thread: SG_CLAIMS_OK (in the log) or not. */
typedef void (*sg_claims_published_cb)(void *opaque, int rc);

/** The internal topics of conf's deployment, into buffers of SG_DEPLOYMENT_TOPIC_MAX. Any thread. */
void sg_deployment_topics(const sg_conf_t *conf, char *deployment_topic, char *claims_topic);

/** The topic configs of the claims topic ("retention.ms" ... NULL-terminated pairs) into `out`
 * (8 slots), with numbers written into `numbers` (64 bytes). */
void sg_deployment_claims_topic_config(const sg_conf_t *conf, const char **out, char *numbers);

/** This instance's identity: conf's deployment.instance, or the name kept in
 * <data_dir>/instance.id (made once: "sg-" and 8 hex digits). Resolves and keeps it, creates the
 * Kafka clients. `store` (borrowed) receives the claims fold. Returns owned, or NULL with err. */
sg_deployment_t *sg_deployment_create(const sg_conf_t *conf, const char *bootstraps, sg_store_t *store, char *err, size_t errlen);

/** The deployment's name, this instance's name, and its advertised URL ("" until set). */
const char *sg_deployment_name(const sg_deployment_t *deployment);
const char *sg_deployment_instance(const sg_deployment_t *deployment);
const char *sg_deployment_advertise(const sg_deployment_t *deployment);

/** Sets the advertised URL: deployment.advertise, else `listen_url` (the first bound listener,
 * "http://HOST:PORT") with a wildcard host (0.0.0.0, [::]) replaced by `hostname`. Main thread,
 * before sg_deployment_start. */
void sg_deployment_set_advertise(sg_deployment_t *deployment, const char *listen_url, const char *hostname);

/** Creates the internal topics on a real cluster (Admin API; failures logged) and starts the
 * deployment thread. With want_secret the thread settles the request-id secret and calls
 * secret_cb; with claims it folds the claims topic, calling completed_cb for COMPLETE records.
 * Returns 0 or -1 with err. Main thread, once. */
int sg_deployment_start(sg_deployment_t *deployment, int want_secret, int claims, sg_deployment_secret_cb secret_cb,
                        sg_claims_completed_cb completed_cb, void *ctx, char *err, size_t errlen);

/** Whether the secret is settled (when wanted) and the claims topic folded up to where it was
 * when read from the start. Any thread. */
int sg_deployment_is_ready(const sg_deployment_t *deployment);

/** Why it is not ready, for /readyz (static text), or NULL when it is. Any thread. */
const char *sg_deployment_not_ready_because(const sg_deployment_t *deployment);

/** Claims (route, key) for request_id (SG_STORE_MAX_ID bytes at most; the gateway's are 32) with
 * a body of this SHA-256, produced to the claims topic; the answer comes once the record has been
 * folded here (every earlier record of its partition first), or within the produce timeout plus a
 * read-back bound as an error. `key` is the 32-byte SHA-256 of the Idempotency-Key. Returns 0
 * (done_cb will run exactly once with opaque) or -1 with err (it will not: not started, stopping,
 * queue full). Any thread. */
int sg_claims_claim(sg_deployment_t *deployment, const char *route, const uint8_t key[32], const uint8_t body_sha256[32],
                    const char *request_id, size_t idlen, int64_t claimed_ms, int64_t expires_ms, sg_claims_done_cb done_cb,
                    void *opaque, char *err, size_t errlen);

/** Publishes that request_id's claim is done, with its event's position. published_cb (may be
 * NULL) runs once when the broker has acknowledged it or refused it. Returns 0, or -1 when the
 * record could not be queued (published_cb will not run). Any thread. */
int sg_claims_complete(sg_deployment_t *deployment, const char *route, const uint8_t key[32], const char *request_id, size_t idlen,
                       const sg_claim_position_t *pos, sg_claims_published_cb published_cb, void *opaque);

/** Publishes that request_id's claim is released (its event is not in Kafka: the key is free).
 * Returns 0 or -1 (not queued; logged). Any thread. */
int sg_claims_release(sg_deployment_t *deployment, const char *route, const uint8_t key[32], const char *request_id, size_t idlen);

/** Publishes that request_id's produce may or may not be in the log (at partition, CreateTime
 * produced_ms): the key stays claimed, "outcome unknown", until completed or released. Returns 0
 * or -1 (not queued; logged). Any thread. */
int sg_claims_mark_unknown(sg_deployment_t *deployment, const char *route, const uint8_t key[32], const char *request_id,
                           size_t idlen, int32_t partition, int64_t produced_ms);

/** Flushes what the producer holds (at most timeout_ms: completions and releases), answers every
 * pending claim SG_CLAIMS_E_SHUTDOWN, stops the thread. Idempotent. Main thread. */
void sg_deployment_shutdown(sg_deployment_t *deployment, int64_t timeout_ms);

/** Shuts down (if not yet) and frees; NULL is a no-op. Main thread. */
void sg_deployment_destroy(sg_deployment_t *deployment);

#endif
