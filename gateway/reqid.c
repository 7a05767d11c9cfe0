/*
 * Request ids: 16 bytes, base64url (22 chars): 6 bytes of milliseconds since the epoch, 4 bytes
 * of instance id (random at start), 2 bytes of loop index, 4 bytes of a per-loop counter.
 * Unique without coordination: the counter separates ids of one loop, the instance and loop
 * fields separate loops and processes. (Issue 3 adds a MAC so ids can be validated.)
 */
#include <stdint.h>
#include <sys/time.h>

#include "gateway_int.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void sg_reqid_new(sg_loop_t *loop, char out[23])
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
    uint32_t counter = ++loop->reqid_counter;
    uint8_t raw[18] = {0};
    for (int i = 0; i < 6; ++i)
        raw[i] = (uint8_t)(ms >> (40 - 8 * i));
    for (int i = 0; i < 4; ++i)
        raw[6 + i] = (uint8_t)(loop->server->instance_id >> (24 - 8 * i));
    raw[10] = (uint8_t)(loop->index >> 8);
    raw[11] = (uint8_t)loop->index;
    for (int i = 0; i < 4; ++i)
        raw[12 + i] = (uint8_t)(counter >> (24 - 8 * i));
    /* 16 bytes -> 22 chars: encode 18 bytes (two zero pad bytes) and keep 22 characters. */
    size_t o = 0;
    for (size_t i = 0; i < 18 && o < 22; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        if (o < 22)
            out[o++] = b64url[(v >> 12) & 63];
        if (o < 22)
            out[o++] = b64url[(v >> 6) & 63];
        if (o < 22)
            out[o++] = b64url[v & 63];
    }
    out[22] = '\0';
}
