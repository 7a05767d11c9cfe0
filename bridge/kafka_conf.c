/*
 * librdkafka configuration shared by the bridge's clients (bridge_int.h): every client starts
 * from sg_kafka_conf_new, takes its role's defaults from one helper, and ends with the config's
 * kafka.properties, so an operator can override any default in one place.
 */
#include "bridge_int.h"

#include <stdio.h>

#include "sg_base.h"

sg_log_level_t sg_kafka_log_level(int syslog_level)
{
    if (syslog_level <= 3) /* emerg, alert, crit, err */
        return SG_LOG_ERROR;
    if (syslog_level == 4) /* warning */
        return SG_LOG_WARN;
    if (syslog_level <= 6) /* notice, info */
        return SG_LOG_INFO;
    return SG_LOG_DEBUG;
}

/* Called on librdkafka's threads; sg_log writes each line whole. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    sg_log(sg_kafka_log_level(level), "kafka %s: %s: %s", rk != NULL ? rd_kafka_name(rk) : "-", fac, buf);
}

void sg_kafka_conf_set_log(rd_kafka_conf_t *rkconf)
{
    rd_kafka_conf_set_log_cb(rkconf, on_log);
}

int sg_kafka_conf_set(rd_kafka_conf_t *rkconf, const char *name, const char *value, char *err, size_t errlen)
{
    char rkerr[512];
    if (rd_kafka_conf_set(rkconf, name, value, rkerr, sizeof(rkerr)) != RD_KAFKA_CONF_OK)
        return sg_errf(err, errlen, "kafka.properties: %s: %s", name, rkerr);
    return 0;
}

rd_kafka_conf_t *sg_kafka_conf_new(const char *bootstraps, const char *client_id, char *err, size_t errlen)
{
    rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
    if (sg_kafka_conf_set(rkconf, "bootstrap.servers", bootstraps, err, errlen) != 0 ||
        sg_kafka_conf_set(rkconf, "client.id", client_id, err, errlen) != 0) {
        rd_kafka_conf_destroy(rkconf);
        return NULL;
    }
    sg_kafka_conf_set_log(rkconf);
    return rkconf;
}

int sg_kafka_conf_apply(rd_kafka_conf_t *rkconf, const sg_conf_t *conf, char *err, size_t errlen)
{
    for (size_t i = 0; i < conf->kafka.n_properties; ++i)
        if (sg_kafka_conf_set(rkconf, conf->kafka.properties[i].key, conf->kafka.properties[i].value, err, errlen) != 0)
            return -1;
    return 0;
}

int sg_kafka_conf_durable_producer(rd_kafka_conf_t *rkconf, int64_t timeout_ms, char *err, size_t errlen)
{
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%lld", (long long)timeout_ms);
    return sg_kafka_conf_set(rkconf, "enable.idempotence", "true", err, errlen) ||
                   sg_kafka_conf_set(rkconf, "acks", "all", err, errlen) ||
                   sg_kafka_conf_set(rkconf, "linger.ms", "0", err, errlen) ||
                   /* Kafka's default partitioner (the Java client's), not librdkafka's CRC32: a key
                    * lands where any other producer puts it and where a partitioned table looks
                    * for it (sg_placement_partition_of). */
                   sg_kafka_conf_set(rkconf, "partitioner", "murmur2_random", err, errlen) ||
                   sg_kafka_conf_set(rkconf, "message.timeout.ms", timeout, err, errlen)
               ? -1
               : 0;
}

int sg_kafka_conf_assigning_consumer(rd_kafka_conf_t *rkconf, const char *name, int partition_eof, char *err, size_t errlen)
{
    return sg_kafka_conf_set(rkconf, "group.id", name, err, errlen) ||
                   sg_kafka_conf_set(rkconf, "enable.auto.commit", "false", err, errlen) ||
                   sg_kafka_conf_set(rkconf, "enable.auto.offset.store", "false", err, errlen) ||
                   sg_kafka_conf_set(rkconf, "enable.partition.eof", partition_eof ? "true" : "false", err, errlen) ||
                   sg_kafka_conf_set(rkconf, "fetch.wait.max.ms", "10", err, errlen)
               ? -1
               : 0;
}

rd_kafka_t *sg_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *rkconf, const char *what, char *err, size_t errlen)
{
    char rkerr[512];
    rd_kafka_t *rk = rd_kafka_new(type, rkconf, rkerr, sizeof(rkerr));
    if (rk == NULL) {
        /* rd_kafka_new takes the conf only when it succeeds */
        rd_kafka_conf_destroy(rkconf);
        sg_errf(err, errlen, "%s: %s", what, rkerr);
    }
    return rk;
}
