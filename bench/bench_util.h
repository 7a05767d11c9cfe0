/*
 * What the librdkafka bench tools (sg-bench-responder, -roundtrip, -load, -consume) share:
 * messages prefixed with the tool's name, a monotonic clock, librdkafka properties, the
 * bootstrap file of a `streamgate cluster`, and integer options.
 */
#ifndef SG_BENCH_UTIL_H
#define SG_BENCH_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/** Names the tool in every message (a string literal). Call first. */
void sg_bench_set_name(const char *name);

/** "NAME: message" and a newline on stderr. */
void sg_bench_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** A librdkafka log callback writing through sg_bench_log. */
void sg_bench_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/** CLOCK_MONOTONIC in nanoseconds. */
int64_t sg_bench_now_ns(void);

/** Sets a librdkafka property, logging why not. Returns 0 or -1. */
int sg_bench_set_prop(rd_kafka_conf_t *conf, const char *name, const char *value);

/** The first line of a bootstrap file (static storage), or NULL after logging why. */
const char *sg_bench_read_bootstrap_file(const char *path);

/** A whole decimal integer within [min, max]. */
bool sg_bench_parse_long(const char *text, long long min, long long max, long long *out);

#endif
