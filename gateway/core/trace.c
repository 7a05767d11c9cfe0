/*
 * See trace.h. Ids come from a per-loop xorshift generator rather than the kernel: a trace id
 * needs to be unique, not unpredictable, and this runs for every command.
 */
#include "trace.h"

#include <string.h>

static int is_lower_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; ++i)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int is_all_zero(const char *s, size_t len)
{
    for (size_t i = 0; i < len; ++i)
        if (s[i] != '0')
            return 0;
    return 1;
}

static void put_hex64(char *out, uint64_t value)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; --i, value >>= 4)
        out[i] = hex[value & 15];
}

int sg_traceparent_valid(const char *text, size_t len)
{
    return text != NULL && len == SG_TRACEPARENT_LEN && memcmp(text, "00-", 3) == 0 && text[35] == '-' && text[52] == '-' &&
           is_lower_hex(text + 3, 32) && is_lower_hex(text + 53, 2) && !is_all_zero(text + 3, 32);
}

uint64_t sg_trace_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

void sg_traceparent_make(uint64_t *rng, const char *incoming, size_t len, char out[SG_TRACEPARENT_LEN + 1])
{
    memcpy(out, "00-", 3);
    if (sg_traceparent_valid(incoming, len)) {
        memcpy(out + 3, incoming + 3, 32);
        memcpy(out + 53, incoming + 53, 2);
    } else {
        put_hex64(out + 3, sg_trace_random(rng));
        put_hex64(out + 19, sg_trace_random(rng));
        memcpy(out + 53, "01", 2);
    }
    out[35] = '-';
    put_hex64(out + 36, sg_trace_random(rng));
    out[52] = '-';
    out[SG_TRACEPARENT_LEN] = '\0';
}
