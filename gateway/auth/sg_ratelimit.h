/*
 * Rate limits (DESIGN §6): token buckets shared by every event loop, and the RateLimit /
 * RateLimit-Policy header values of the IETF httpapi ratelimit-headers draft (-10).
 *
 * Each bucket is one 64-bit word updated by compare-and-swap (GCRA: the word holds the bucket's
 * "theoretical arrival time"), so the hot path takes no lock. Buckets live in one fixed table
 * created up front: memory is bounded whatever the number of principals or addresses, and a new
 * key takes the slot of an idle bucket (one that has refilled completely, so forgetting it loses
 * nothing) or, when none is idle nearby, of the least loaded one.
 *
 * Threads: create/destroy on one thread; sg_ratelimit_take from any number of threads at once.
 */
#ifndef SG_RATELIMIT_H
#define SG_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sg_conf.h"

#define SG_RATELIMIT_DEFAULT_SLOTS 65536 /* buckets in the table (16 bytes each) */

typedef struct st_sg_ratelimit_t sg_ratelimit_t;

typedef struct st_sg_rate_policy_t {
    const char *name;  /* RateLimit-Policy name; copied */
    uint32_t count;    /* tokens per period, >= 1 */
    int64_t period_ms; /* 1000, 60000 or 3600000 (whole seconds in any case) */
    uint32_t burst;    /* bucket size, >= 1 */
} sg_rate_policy_t;

/* What one take decided, and everything the response headers need. */
typedef struct st_sg_rate_result_t {
    bool allowed;
    const char *policy; /* the policy's name, owned by the limiter */
    uint32_t quota;     /* the policy's count: RateLimit-Policy q */
    uint32_t window_s;  /* the policy's period in seconds: RateLimit-Policy w */
    uint32_t remaining; /* whole tokens left after this request: RateLimit r */
    uint32_t reset_s;   /* seconds until the next token is added: RateLimit t */
    int64_t wait_ms;    /* refused: time until a token is available (Retry-After); allowed: 0 */
} sg_rate_result_t;

typedef struct st_sg_ratelimit_stats_t {
    uint64_t allowed, refused;
    uint64_t evictions;      /* idle buckets given to a new key */
    uint64_t busy_evictions; /* non-idle buckets given to a new key (the table is too small) */
    uint64_t contended;      /* takes that gave up on a bucket being re-keyed and allowed */
} sg_ratelimit_stats_t;

/** Creates a limiter with `n` policies (copied) sharing a table of `slots` buckets (rounded up
 * to a power of two, at least 64). Returns owned, or NULL with err for an invalid policy. */
sg_ratelimit_t *sg_ratelimit_create(const sg_rate_policy_t *policies, size_t n, size_t slots, char *err, size_t errlen);

/** A limiter for `conf`: policy i is rate_limits[i]; when limits.registry_write_rate is not off,
 * one more policy "registry-writes" (per client address) follows them. Returns owned or NULL. */
sg_ratelimit_t *sg_ratelimit_create_from_conf(const sg_conf_t *conf, size_t slots, char *err, size_t errlen);

/** The index of the "registry-writes" policy made by sg_ratelimit_create_from_conf, or -1. */
int sg_ratelimit_registry_policy(const sg_ratelimit_t *limiter);

/** Frees the limiter; NULL is a no-op. */
void sg_ratelimit_destroy(sg_ratelimit_t *limiter);

/** Takes one token from the bucket of (`policy`, key) - key: the principal's name or the client
 * address, any bytes - at monotonic time now_us (sg_mono_us()). Fills *result. Any thread. */
void sg_ratelimit_take(sg_ratelimit_t *limiter, size_t policy, const void *key, size_t key_len, int64_t now_us,
                       sg_rate_result_t *result);

/** Copies the counters. Any thread. */
void sg_ratelimit_stats(sg_ratelimit_t *limiter, sg_ratelimit_stats_t *stats);

/** Writes the RateLimit-Policy value for the policies of `results` ("name";q=50;w=1, ...).
 * Returns the length it needs (as snprintf). Pure. */
size_t sg_ratelimit_format_policy(const sg_rate_result_t *results, size_t n, char *buf, size_t size);

/** Writes the RateLimit value ("name";r=49;t=1, ...). Returns the length it needs. Pure. */
size_t sg_ratelimit_format_state(const sg_rate_result_t *results, size_t n, char *buf, size_t size);

/** Retry-After in whole seconds (at least 1) for the refused results among `results`, or 0 if
 * none was refused. Pure. */
int64_t sg_ratelimit_retry_after_s(const sg_rate_result_t *results, size_t n);

#endif
