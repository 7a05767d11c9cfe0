/*
 * The embedded Kafka cluster: librdkafka's mock cluster, in this process.
 *
 * It speaks the real Kafka protocol on loopback, keeps its log in memory, and is what
 * `kafka.brokers: embedded` and `streamgate cluster` run. Nothing here is a Kafka imitation of
 * our own: the brokers, the protocol and the storage are librdkafka's.
 */
#ifndef SG_CLUSTER_H
#define SG_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_sg_cluster_t sg_cluster_t;

/** Starts a cluster of `brokers` (1..16) brokers. Returns owned cluster or NULL with err. */
sg_cluster_t *sg_cluster_create(int brokers, char *err, size_t errlen);

/** Creates a topic; replication is capped to the broker count. Returns 0 or -1 with err. */
int sg_cluster_create_topic(sg_cluster_t *cluster, const char *name, int32_t partitions, int replication, char *err, size_t errlen);

/** Development and test knobs of the mock cluster: the leader of a partition, the follower
 * consumers are told to fetch from (KIP-392), and a broker's added round-trip time. Each
 * returns 0 or -1 with err. */
int sg_cluster_set_leader(sg_cluster_t *cluster, const char *topic, int32_t partition, int32_t broker, char *err, size_t errlen);
int sg_cluster_set_follower(sg_cluster_t *cluster, const char *topic, int32_t partition, int32_t broker, char *err, size_t errlen);
int sg_cluster_set_rtt(sg_cluster_t *cluster, int32_t broker, int rtt_ms, char *err, size_t errlen);

/** The mock cluster itself, for tests that script its answers with librdkafka's rd_kafka_mock_*
 * calls (rdkafka_mock.h); owned by the cluster. */
struct rd_kafka_mock_cluster_s *sg_cluster_mock(sg_cluster_t *cluster);

/** The bootstrap list ("127.0.0.1:PORT,..."), owned by the cluster. */
const char *sg_cluster_bootstraps(const sg_cluster_t *cluster);

/** Stops the cluster; NULL is a no-op. */
void sg_cluster_destroy(sg_cluster_t *cluster);

#endif
