/*
 * The embedded cluster wraps rd_kafka_mock_cluster_new(). The mock needs an rd_kafka_t for its
 * book keeping; we give it a private producer handle that is never used to produce, so the
 * cluster's lifetime is independent of the gateway's own clients (which connect to it over
 * loopback like any external client would).
 */
#include "sg_cluster.h"

#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "bridge_int.h"
#include "sg_base.h"

struct st_sg_cluster_t {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mock;
    int brokers;
};

sg_cluster_t *sg_cluster_create(int brokers, char *err, size_t errlen)
{
    if (brokers < 1 || brokers > 16) {
        sg_errf(err, errlen, "embedded cluster: brokers must be 1..16, not %d", brokers);
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char rkerr[256];
    /* The handle only hosts the mock; keep it quiet and away from any real network. */
    if (rd_kafka_conf_set(conf, "bootstrap.servers", "", rkerr, sizeof(rkerr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "3", rkerr, sizeof(rkerr)) != RD_KAFKA_CONF_OK) {
        sg_errf(err, errlen, "embedded cluster: %s", rkerr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    sg_kafka_conf_set_log(conf);
    rd_kafka_t *rk = sg_kafka_new(RD_KAFKA_PRODUCER, conf, "embedded cluster", err, errlen);
    if (rk == NULL)
        return NULL;
    rd_kafka_mock_cluster_t *mock = rd_kafka_mock_cluster_new(rk, brokers);
    if (mock == NULL) {
        sg_errf(err, errlen, "embedded cluster: could not start the mock brokers");
        rd_kafka_destroy(rk);
        return NULL;
    }
    sg_cluster_t *cluster = sg_calloc(1, sizeof(*cluster));
    cluster->rk = rk;
    cluster->mock = mock;
    cluster->brokers = brokers;
    return cluster;
}

int sg_cluster_create_topic(sg_cluster_t *cluster, const char *name, int32_t partitions, int replication, char *err, size_t errlen)
{
    if (replication > cluster->brokers)
        replication = cluster->brokers;
    if (replication < 1)
        replication = 1;
    rd_kafka_resp_err_t rkerr = rd_kafka_mock_topic_create(cluster->mock, name, partitions, replication);
    if (rkerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sg_errf(err, errlen, "embedded cluster: topic %s: %s", name, rd_kafka_err2str(rkerr));
        return -1;
    }
    return 0;
}

static int check(rd_kafka_resp_err_t rkerr, const char *what, char *err, size_t errlen)
{
    if (rkerr == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    sg_errf(err, errlen, "embedded cluster: %s: %s", what, rd_kafka_err2str(rkerr));
    return -1;
}

int sg_cluster_set_leader(sg_cluster_t *cluster, const char *topic, int32_t partition, int32_t broker, char *err, size_t errlen)
{
    return check(rd_kafka_mock_partition_set_leader(cluster->mock, topic, partition, broker), "leader", err, errlen);
}

int sg_cluster_set_follower(sg_cluster_t *cluster, const char *topic, int32_t partition, int32_t broker, char *err, size_t errlen)
{
    return check(rd_kafka_mock_partition_set_follower(cluster->mock, topic, partition, broker), "follower", err, errlen);
}

struct rd_kafka_mock_cluster_s *sg_cluster_mock(sg_cluster_t *cluster)
{
    return cluster->mock;
}

int sg_cluster_set_rtt(sg_cluster_t *cluster, int32_t broker, int rtt_ms, char *err, size_t errlen)
{
    return check(rd_kafka_mock_broker_set_rtt(cluster->mock, broker, rtt_ms), "rtt", err, errlen);
}

const char *sg_cluster_bootstraps(const sg_cluster_t *cluster)
{
    return rd_kafka_mock_cluster_bootstraps(cluster->mock);
}

void sg_cluster_destroy(sg_cluster_t *cluster)
{
    if (cluster == NULL)
        return;
    rd_kafka_mock_cluster_destroy(cluster->mock);
    rd_kafka_destroy(cluster->rk);
    free(cluster);
}
