/*
 * Private to bridge/: what its Kafka clients (producer, reply consumer, materializer, registry)
 * configure alike.
 */
#ifndef SG_BRIDGE_INT_H
#define SG_BRIDGE_INT_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "sg_conf.h"

/** Sets one librdkafka property; on failure writes "kafka.properties: NAME: why" to err.
 * Returns 0 or -1. */
int sg_kafka_conf_set(rd_kafka_conf_t *rkconf, const char *name, const char *value, char *err, size_t errlen);

/** Applies the config's kafka.properties in file order, after a client's own defaults so they
 * can override any of them. Returns 0 or -1 with err. */
int sg_kafka_conf_apply(rd_kafka_conf_t *rkconf, const sg_conf_t *conf, char *err, size_t errlen);

#endif
