/*
 * Rate limits: token buckets kept as GCRA words in one fixed table shared by every loop.
 *
 * A bucket is one 64-bit word: its "theoretical arrival time" (TAT, µs since the limiter was
 * made) in the upper 48 bits and a 16-bit tag of its key in the lower 16. With T the emission
 * interval (period / count) and L = burst * T, a request at `now` is allowed when
 * max(TAT, now) + T - now <= L, and then TAT moves to max(TAT, now) + T by compare-and-swap; a
 * refusal writes nothing. That is exactly a bucket of `burst` tokens refilled at `count` per
 * period, with no lock and no background refill.
 *
 * Keys (policy, principal or address) are hashed with SipHash-1-3 under a random key, so nobody
 * can aim keys at one slot or at another key's bucket, and placed by linear probing over a short window of the table. A new key
 * takes an empty slot, else an idle one (TAT <= now: the bucket is full again, so dropping it
 * changes nothing), else the least loaded one in the window (its owner gets a fresh bucket: the
 * table was too small, counted in busy_evictions). The tag lets a take notice that its slot was
 * given to another key between reading the slot's key and updating the bucket; two threads
 * placing the same new key at once may briefly give it two buckets. Those races cost at most a
 * token or two, never memory.
 */
#include "sg_ratelimit.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_int.h"
#include "sg_base.h"

#define PROBE 8                  /* slots a key may live in */
#define MAX_DEPTH_US (1LL << 46) /* burst x interval: 2.2 years keeps TAT within 48 bits */
#define MAX_HASHED_KEY 480       /* longer keys are hashed twice (a principal key is at most 258 bytes) */
#define SPINS 1000               /* waits for a slot being re-keyed by another thread */

typedef struct st_slot_t {
    _Atomic uint64_t key;   /* hash of (policy, key); 0: empty */
    _Atomic uint64_t state; /* TAT << 16 | tag */
} slot_t;

typedef struct st_policy_t {
    char *name;
    uint32_t count, burst, window_s;
    int64_t interval_us; /* T */
    int64_t depth_us;    /* L = burst x T */
} policy_t;

struct st_sg_ratelimit_t {
    policy_t *policies;
    size_t n_policies;
    int registry_policy;
    slot_t *slots;
    size_t mask;
    int64_t epoch_us;
    sg_sipkey_t salt;
    atomic_uint_fast64_t allowed, refused, evictions, busy_evictions, contended;
};

static int add_policy(sg_ratelimit_t *limiter, const sg_rate_policy_t *policy, char *err, size_t errlen)
{
    if (policy->name == NULL || policy->count == 0 || policy->burst == 0 || policy->period_ms < 1000 ||
        policy->period_ms % 1000 != 0)
        return sg_errf(err, errlen, "rate limit %s: count, burst and a whole number of seconds are needed",
                       policy->name != NULL ? policy->name : "(unnamed)");
    int64_t interval_us = policy->period_ms * 1000 / policy->count;
    if (interval_us < 1 || (int64_t)policy->burst > MAX_DEPTH_US / interval_us)
        return sg_errf(err, errlen, "rate limit %s: the rate or the burst is out of range", policy->name);
    policy_t *out = &limiter->policies[limiter->n_policies++];
    out->name = sg_strdup(policy->name);
    out->count = policy->count;
    out->burst = policy->burst;
    out->window_s = (uint32_t)(policy->period_ms / 1000);
    out->interval_us = interval_us;
    out->depth_us = interval_us * policy->burst;
    return 0;
}

static sg_ratelimit_t *limiter_new(size_t max_policies, size_t slots)
{
    sg_ratelimit_t *limiter = sg_calloc(1, sizeof(*limiter));
    limiter->policies = sg_calloc(max_policies ? max_policies : 1, sizeof(*limiter->policies));
    limiter->registry_policy = -1;
    size_t size = 64;
    while (size < slots && size < ((size_t)1 << 30))
        size <<= 1;
    limiter->slots = sg_calloc(size, sizeof(*limiter->slots));
    limiter->mask = size - 1;
    limiter->epoch_us = sg_mono_us();
    if (sg_random_bytes(&limiter->salt, sizeof(limiter->salt)) != 0)
        abort(); /* the kernel's random source does not fail on Linux once booted */
    return limiter;
}

sg_ratelimit_t *sg_ratelimit_create(const sg_rate_policy_t *policies, size_t n, size_t slots, char *err, size_t errlen)
{
    sg_ratelimit_t *limiter = limiter_new(n, slots);
    for (size_t i = 0; i < n; i++) {
        if (add_policy(limiter, &policies[i], err, errlen) != 0) {
            sg_ratelimit_destroy(limiter);
            return NULL;
        }
    }
    return limiter;
}

sg_ratelimit_t *sg_ratelimit_create_from_conf(const sg_conf_t *conf, size_t slots, char *err, size_t errlen)
{
    sg_ratelimit_t *limiter = limiter_new(conf->n_rate_limits + 1, slots);
    for (size_t i = 0; i < conf->n_rate_limits; i++) {
        const sg_rate_limit_conf_t *limit = &conf->rate_limits[i];
        sg_rate_policy_t policy = {
            .name = limit->name, .count = limit->rate.count, .period_ms = limit->rate.period_ms, .burst = limit->burst};
        if (add_policy(limiter, &policy, err, errlen) != 0) {
            sg_ratelimit_destroy(limiter);
            return NULL;
        }
    }
    if (conf->limits.registry_write_rate.count > 0) {
        sg_rate_policy_t policy = {.name = "registry-writes",
                                   .count = conf->limits.registry_write_rate.count,
                                   .period_ms = conf->limits.registry_write_rate.period_ms,
                                   .burst = conf->limits.registry_write_burst};
        limiter->registry_policy = (int)limiter->n_policies;
        if (add_policy(limiter, &policy, err, errlen) != 0) {
            sg_ratelimit_destroy(limiter);
            return NULL;
        }
    }
    return limiter;
}

int sg_ratelimit_registry_policy(const sg_ratelimit_t *limiter)
{
    return limiter->registry_policy;
}

void sg_ratelimit_destroy(sg_ratelimit_t *limiter)
{
    if (limiter == NULL)
        return;
    for (size_t i = 0; i < limiter->n_policies; i++)
        free(limiter->policies[i].name);
    free(limiter->policies);
    free(limiter->slots);
    free(limiter);
}

/* The bucket's identity: a keyed hash of (policy, key). Two keys with the same 64-bit hash would
 * share a bucket; under a key nobody outside the process knows, finding two takes ~2^32 tries of
 * one's own keys (which then share one's own bucket) and hitting someone else's ~2^64. */
static uint64_t key_hash(const sg_ratelimit_t *limiter, size_t policy, const void *key, size_t key_len)
{
    uint8_t input[4 + MAX_HASHED_KEY];
    uint64_t long_key;
    uint32_t index = (uint32_t)policy;
    if (key_len > MAX_HASHED_KEY) {
        long_key = sg_siphash13(&limiter->salt, key, key_len);
        key = &long_key;
        key_len = sizeof(long_key);
        index |= UINT32_C(1) << 31; /* apart from an 8-byte key equal to the hash */
    }
    memcpy(input, &index, 4);
    memcpy(input + 4, key, key_len);
    uint64_t hash = sg_siphash13(&limiter->salt, input, 4 + key_len);
    return hash != 0 ? hash : 1; /* 0 marks an empty slot */
}

/* The slot of `hash`, placing it if it has none; NULL when another thread won the place. */
static slot_t *find_slot(sg_ratelimit_t *limiter, uint64_t hash, uint16_t tag, int64_t now)
{
    slot_t *empty = NULL, *idle = NULL, *least = NULL;
    uint64_t idle_key = 0, least_key = 0, least_tat = UINT64_MAX;
    for (size_t i = 0; i < PROBE; i++) {
        slot_t *slot = &limiter->slots[(hash + i) & limiter->mask];
        uint64_t key = atomic_load(&slot->key);
        if (key == hash)
            return slot;
        if (key == 0) {
            empty = empty != NULL ? empty : slot;
            continue;
        }
        uint64_t tat = atomic_load(&slot->state) >> 16;
        if ((int64_t)tat <= now && idle == NULL) {
            idle = slot;
            idle_key = key;
        } else if ((int64_t)tat > now && tat < least_tat) {
            least = slot;
            least_key = key;
            least_tat = tat;
        }
    }
    /* An empty slot, else an idle bucket (full again: forgetting it changes nothing), else the
     * least loaded one. */
    slot_t *victim = empty != NULL ? empty : idle != NULL ? idle : least;
    uint64_t expected = empty != NULL ? 0 : idle != NULL ? idle_key : least_key;
    if (!atomic_compare_exchange_strong(&victim->key, &expected, hash))
        return NULL;
    atomic_store(&victim->state, (uint64_t)tag); /* TAT 0: a full bucket */
    if (empty == NULL)
        atomic_fetch_add(idle != NULL ? &limiter->evictions : &limiter->busy_evictions, 1);
    return victim;
}

static uint32_t ceil_div(int64_t value, int64_t unit)
{
    return (uint32_t)((value + unit - 1) / unit);
}

/* One GCRA step on the bucket; -1 when the slot no longer belongs to the key. */
static int gcra(slot_t *slot, uint64_t hash, uint16_t tag, int64_t now, const policy_t *policy, sg_rate_result_t *result)
{
    uint64_t state = atomic_load(&slot->state);
    for (int spins = 0;;) {
        if ((uint16_t)state != tag) {
            /* Re-keyed away, or being placed by a thread that has not written the bucket yet. */
            if (atomic_load(&slot->key) != hash || ++spins > SPINS)
                return -1;
            state = atomic_load(&slot->state);
            continue;
        }
        int64_t tat = (int64_t)(state >> 16);
        int64_t next = (tat > now ? tat : now) + policy->interval_us;
        int64_t ahead = next - now; /* how far the bucket's debt reaches past now */
        if (ahead > policy->depth_us) {
            int64_t wait_us = ahead - policy->depth_us;
            result->allowed = false;
            result->remaining = 0;
            result->wait_ms = ceil_div(wait_us, 1000);
            result->reset_s = ceil_div(wait_us, 1000000);
            return 0;
        }
        if (atomic_compare_exchange_weak(&slot->state, &state, (uint64_t)next << 16 | tag)) {
            int64_t to_next_token = ahead % policy->interval_us;
            result->allowed = true;
            result->remaining = (uint32_t)((policy->depth_us - ahead) / policy->interval_us);
            result->wait_ms = 0;
            result->reset_s = ceil_div(to_next_token != 0 ? to_next_token : policy->interval_us, 1000000);
            return 0;
        }
    }
}

void sg_ratelimit_take(sg_ratelimit_t *limiter, size_t policy, const void *key, size_t key_len, int64_t now_us,
                       sg_rate_result_t *result)
{
    const policy_t *rule = &limiter->policies[policy];
    memset(result, 0, sizeof(*result));
    result->policy = rule->name;
    result->quota = rule->count;
    result->window_s = rule->window_s;
    uint64_t hash = key_hash(limiter, policy, key, key_len);
    uint16_t tag = (uint16_t)(hash >> 48) | 1; /* never 0, the tag of a slot being placed */
    int64_t now = now_us > limiter->epoch_us ? now_us - limiter->epoch_us : 0;
    for (int attempt = 0; attempt < 8; attempt++) {
        slot_t *slot = find_slot(limiter, hash, tag, now);
        if (slot != NULL && gcra(slot, hash, tag, now, rule, result) == 0) {
            atomic_fetch_add(result->allowed ? &limiter->allowed : &limiter->refused, 1);
            return;
        }
    }
    /* Eight lost races in a row on one window: let the request through rather than stall a loop. */
    atomic_fetch_add(&limiter->contended, 1);
    result->allowed = true;
}

void sg_ratelimit_stats(sg_ratelimit_t *limiter, sg_ratelimit_stats_t *stats)
{
    stats->allowed = atomic_load(&limiter->allowed);
    stats->refused = atomic_load(&limiter->refused);
    stats->evictions = atomic_load(&limiter->evictions);
    stats->busy_evictions = atomic_load(&limiter->busy_evictions);
    stats->contended = atomic_load(&limiter->contended);
}

/* ------------------------------------------------------------------------------------------ */
/* Header values (draft-ietf-httpapi-ratelimit-headers-10: Structured Field lists)            */

typedef enum { FORMAT_POLICY, FORMAT_STATE } format_t;

static size_t format_list(const sg_rate_result_t *results, size_t n, format_t format, char *buf, size_t size)
{
    size_t len = 0;
    if (size > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char item[320], name[260];
        size_t o = 0;
        /* The name is an sf-string: '"' and '\' escaped, nothing outside printable ASCII. */
        for (const char *p = results[i].policy; *p != '\0' && o + 2 < sizeof(name); p++) {
            if (*p < 0x20 || *p > 0x7e)
                continue;
            if (*p == '"' || *p == '\\')
                name[o++] = '\\';
            name[o++] = *p;
        }
        name[o] = '\0';
        int written = format == FORMAT_POLICY ? snprintf(item, sizeof(item), "%s\"%s\";q=%u;w=%u", i > 0 ? ", " : "", name,
                                                         (unsigned)results[i].quota, (unsigned)results[i].window_s)
                                              : snprintf(item, sizeof(item), "%s\"%s\";r=%u;t=%u", i > 0 ? ", " : "", name,
                                                         (unsigned)results[i].remaining, (unsigned)results[i].reset_s);
        if (len < size)
            snprintf(buf + len, size - len, "%s", item);
        len += (size_t)written;
    }
    return len;
}

size_t sg_ratelimit_format_policy(const sg_rate_result_t *results, size_t n, char *buf, size_t size)
{
    return format_list(results, n, FORMAT_POLICY, buf, size);
}

size_t sg_ratelimit_format_state(const sg_rate_result_t *results, size_t n, char *buf, size_t size)
{
    return format_list(results, n, FORMAT_STATE, buf, size);
}

int64_t sg_ratelimit_retry_after_s(const sg_rate_result_t *results, size_t n)
{
    int64_t retry_after = 0;
    for (size_t i = 0; i < n; i++) {
        if (results[i].allowed)
            continue;
        int64_t seconds = (results[i].wait_ms + 999) / 1000;
        if (seconds < 1)
            seconds = 1;
        if (seconds > retry_after)
            retry_after = seconds;
    }
    return retry_after;
}
