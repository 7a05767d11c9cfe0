/*
 * The one way code logs. Library code (config, queries, bridge) logs through sg_log() with a
 * level; main() owns where lines go (sg_log_set_sink) and which levels pass (log.level).
 *
 * Lines are formatted into a bounded buffer and handed to the sink whole, so lines from
 * different threads never interleave. Any thread.
 */
#ifndef SG_LOG_H
#define SG_LOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sg_base.h"

typedef enum {
    SG_LOG_ERROR = 0,
    SG_LOG_WARN,
    SG_LOG_INFO,
    SG_LOG_DEBUG,
} sg_log_level_t;

#define SG_LOG_LINE_MAX 2048 /* longer messages are cut */

/** Where a formatted message goes: `message` has no trailing newline. Called on the logging
 * thread, never concurrently with itself for one line's parts (a line is one call). */
typedef void (*sg_log_sink_cb)(void *ctx, sg_log_level_t level, const char *message, size_t len);

/** Sets the most verbose level that is written (default SG_LOG_INFO). */
void sg_log_set_level(sg_log_level_t level);
/** Sets the sink; NULL restores the default ("streamgate: LEVEL: message\n" on stderr). Call
 * before other threads log. */
void sg_log_set_sink(sg_log_sink_cb sink, void *ctx);
/** Whether a message at `level` would be written. */
int sg_log_enabled(sg_log_level_t level);
/** Parses "error", "warn", "info" or "debug". Returns 0 or -1. */
int sg_log_level_parse(const char *name, sg_log_level_t *level);
const char *sg_log_level_name(sg_log_level_t level);

void sg_log(sg_log_level_t level, const char *fmt, ...) SG_PRINTF(2, 3);
#define sg_log_error(...) sg_log(SG_LOG_ERROR, __VA_ARGS__)
#define sg_log_warn(...) sg_log(SG_LOG_WARN, __VA_ARGS__)
#define sg_log_info(...) sg_log(SG_LOG_INFO, __VA_ARGS__)
#define sg_log_debug(...) sg_log(SG_LOG_DEBUG, __VA_ARGS__)

/* Once per cause: remembers up to SG_LOG_ONCE_MAX 64-bit causes (a schema id, a table index);
 * past that every new cause is reported as seen, so a flood of causes cannot flood the log.
 * Zero-initialise; safe from any number of threads. */
#define SG_LOG_ONCE_MAX 64
typedef struct st_sg_log_once_t {
    atomic_uint_fast64_t causes[SG_LOG_ONCE_MAX]; /* cause + 1; 0 = free slot */
} sg_log_once_t;

/** Returns 1 the first time `cause` is seen by `once` (log it then), 0 afterwards. */
int sg_log_once(sg_log_once_t *once, uint64_t cause);

/** A cause for an error message: a hash of its text without its digits, so the same failure
 * repeated (naming another file number, offset or byte count each time) is one cause. Never 0. */
uint64_t sg_log_cause_of(const char *message);

#endif
