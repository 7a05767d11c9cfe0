/*
 * Private to the deployment (sg_deployment.h), split along its seam:
 *   deployment.c  identity, the clients, the deployment thread and its setup, and the secret
 *                 (the deployment topic's fold)
 *   claims.c      the claims topic: its records, their fold into the request store, and the
 *                 operations waiting for their record to be folded
 * Each field says which part owns it.
 */
#ifndef SG_DEPLOYMENT_INT_H
#define SG_DEPLOYMENT_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <librdkafka/rdkafka.h>

#include "bridge_int.h"
#include "sg_deployment.h"

typedef struct st_sg_claim_op_t sg_claim_op_t;

struct st_sg_deployment_t {
    const sg_conf_t *conf;
    sg_store_t *store;
    char *instance;
    char advertise[512];
    char topic[SG_DEPLOYMENT_TOPIC_MAX], claims_topic[SG_DEPLOYMENT_TOPIC_MAX];

    /* deployment.c: clients and thread */
    rd_kafka_t *producer, *consumer;
    rd_kafka_topic_t *producer_topic, *producer_claims_topic;
    rd_kafka_queue_t *producer_queue, *consumer_queue;
    sg_wake_t wake;
    pthread_t thread;
    int thread_started;
    atomic_int stopping;
    atomic_int ready;
    _Atomic(const char *) not_ready; /* why not ready (static text); written by the thread, read by /readyz */
    int want_secret, claims;
    sg_deployment_secret_cb secret_cb;
    sg_claims_completed_cb completed_cb;
    void *ctx;
    int set_up;                 /* assigned; the fold runs */
    int64_t next_offset;        /* deployment topic [0]: next offset to fold */
    int64_t start_high;         /* its high watermark when set up */
    sg_log_once_t ignored_once; /* a malformed record was logged */

    /* deployment.c: the secret */
    int secret_state; /* SECRET_READING, SECRET_PROPOSED, SECRET_SETTLED */
    int have_winner;
    uint8_t winner[SG_DEPLOYMENT_SECRET_LEN];
    uint8_t proposal[SG_DEPLOYMENT_SECRET_LEN];
    char proposal_key[64];
    atomic_int proposal_delivered; /* 0 waiting, 1 in the log, -1 refused */
    int64_t proposal_offset;
    int64_t proposal_retry_ms;

    /* claims.c */
    atomic_int n_parts;        /* claims topic partitions (0 until set up) */
    int64_t *claim_next;       /* per partition: next offset to fold (deployment thread) */
    int64_t *claim_start_high; /* per partition: high watermark when set up */
    int broken;                /* a fold write failed: nothing is decided until the fold starts over */
    pthread_mutex_t ops_mutex;
    sg_claim_op_t *ops; /* claims and completions waiting for their record */
};

/* deployment.c */

/** Produces key/value (copied) to partition of topic, with `op` as the delivery opaque (NULL: no
 * one waits). Returns 0 or -1 with err. Any thread. */
int sg_deployment_produce(sg_deployment_t *deployment, rd_kafka_topic_t *topic, int32_t partition, const char *key,
                          const void *value, size_t len, void *op, char *err, size_t errlen);

/* claims.c */

/** Folds one record of the claims topic. Returns 0 (applied or skipped) or -1 (the store refused:
 * the fold is broken). Deployment thread. */
int sg_claims_fold(sg_deployment_t *deployment, const void *value, size_t len, int64_t offset);

/** Answers the operations whose record is folded, failed or overdue. Deployment thread. */
void sg_claims_progress(sg_deployment_t *deployment);

/** Answers every operation with rc (the fold broke, or shutdown). Deployment thread, or main after it stopped. */
void sg_claims_fail_all(sg_deployment_t *deployment, int rc, const char *why);

/** The claims producer's delivery report for an operation. Deployment thread. */
void sg_claims_delivered(sg_deployment_t *deployment, sg_claim_op_t *op, const rd_kafka_message_t *msg);

#endif
