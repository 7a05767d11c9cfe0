/*
 * librdkafka configuration shared by the bridge's clients (see bridge_int.h).
 */
#include "bridge_int.h"

#include <stdio.h>

int sg_kafka_conf_set(rd_kafka_conf_t *rkconf, const char *name, const char *value, char *err, size_t errlen)
{
    char rkerr[512];
    if (rd_kafka_conf_set(rkconf, name, value, rkerr, sizeof(rkerr)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka.properties: %s: %s", name, rkerr);
        return -1;
    }
    return 0;
}

int sg_kafka_conf_apply(rd_kafka_conf_t *rkconf, const sg_conf_t *conf, char *err, size_t errlen)
{
    for (size_t i = 0; i < conf->kafka.n_properties; ++i)
        if (sg_kafka_conf_set(rkconf, conf->kafka.properties[i].key, conf->kafka.properties[i].value, err, errlen) != 0)
            return -1;
    return 0;
}
