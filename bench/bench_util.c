/*
 * Helpers shared by the librdkafka bench tools (see bench_util.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *tool_name = "sg-bench";
static char bootstrap_buf[4096];

void sg_bench_set_name(const char *name)
{
    tool_name = name;
}

void sg_bench_log(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
}

void sg_bench_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    sg_bench_log("librdkafka %s: %s", fac, buf);
}

int64_t sg_bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int sg_bench_set_prop(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char err[512];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        sg_bench_log("%s=%s: %s", name, value, err);
        return -1;
    }
    return 0;
}

const char *sg_bench_read_bootstrap_file(const char *path)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        sg_bench_log("%s: %s", path, strerror(errno));
        return NULL;
    }
    char *line = fgets(bootstrap_buf, sizeof(bootstrap_buf), file);
    fclose(file);
    if (line == NULL) {
        sg_bench_log("%s: empty", path);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '\0') {
        sg_bench_log("%s: empty first line", path);
        return NULL;
    }
    return line;
}

bool sg_bench_parse_long(const char *text, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        return false;
    *out = value;
    return true;
}
