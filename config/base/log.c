/*
 * See sg_log.h. The level is an atomic read on every call, so a disabled debug line costs one
 * load; the sink is set once by main() before other threads start.
 */
#include "sg_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int log_level = SG_LOG_INFO;
static sg_log_sink_cb log_sink;
static void *log_sink_ctx;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void sg_log_set_level(sg_log_level_t level)
{
    atomic_store(&log_level, (int)level);
}

void sg_log_set_sink(sg_log_sink_cb sink, void *ctx)
{
    log_sink = sink;
    log_sink_ctx = ctx;
}

int sg_log_enabled(sg_log_level_t level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

int sg_log_level_parse(const char *name, sg_log_level_t *level)
{
    for (size_t i = 0; i < SG_ARRAY_SIZE(level_names); ++i) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (sg_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

const char *sg_log_level_name(sg_log_level_t level)
{
    return (size_t)level < SG_ARRAY_SIZE(level_names) ? level_names[level] : "?";
}

void sg_log(sg_log_level_t level, const char *fmt, ...)
{
    if (!sg_log_enabled(level))
        return;
    char line[SG_LOG_LINE_MAX];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, args);
    va_end(args);
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof(line) ? sizeof(line) - 1 : (size_t)n;
    if (log_sink != NULL) {
        log_sink(log_sink_ctx, level, line, len);
        return;
    }
    /* One write per line, so concurrent lines never interleave. */
    char out[SG_LOG_LINE_MAX + 32];
    int m = snprintf(out, sizeof(out), "streamgate: %s: %.*s\n", sg_log_level_name(level), (int)len, line);
    if (m > 0) {
        ssize_t ignored = write(STDERR_FILENO, out, (size_t)m < sizeof(out) ? (size_t)m : sizeof(out) - 1);
        (void)ignored;
    }
}

int sg_log_once(sg_log_once_t *once, uint64_t cause)
{
    uint_fast64_t stored = (uint_fast64_t)cause + 1; /* 0 marks a free slot */
    for (size_t i = 0; i < SG_LOG_ONCE_MAX; ++i) {
        uint_fast64_t seen = atomic_load(&once->causes[i]);
        if (seen == stored)
            return 0;
        if (seen == 0) {
            uint_fast64_t expected = 0;
            if (atomic_compare_exchange_strong(&once->causes[i], &expected, stored))
                return 1;
            if (expected == stored) /* another thread claimed this slot for the same cause */
                return 0;
        }
    }
    return 0; /* full: stay quiet rather than flood the log */
}

uint64_t sg_log_cause_of(const char *message)
{
    uint64_t hash = 14695981039346656037u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)message; *p != '\0'; ++p) {
        if (*p >= '0' && *p <= '9')
            continue;
        hash = (hash ^ *p) * 1099511628211u;
    }
    return hash != 0 ? hash : 1;
}
