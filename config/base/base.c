/*
 * See sg_base.h. The out-of-memory policy, clocks, error formatting, random bytes and
 * base64url, each written once for every module.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "sg_base.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Noreturn void sg_oom(void)
{
    static const char message[] = "streamgate: error: out of memory\n";
    /* No stdio: it may itself need memory. */
    ssize_t ignored = write(STDERR_FILENO, message, sizeof(message) - 1);
    (void)ignored;
    abort();
}

void *sg_malloc(size_t size)
{
    void *p = malloc(size != 0 ? size : 1);
    if (p == NULL)
        sg_oom();
    return p;
}

void *sg_calloc(size_t count, size_t size)
{
    void *p = calloc(count != 0 ? count : 1, size != 0 ? size : 1);
    if (p == NULL)
        sg_oom();
    return p;
}

void *sg_realloc(void *ptr, size_t size)
{
    void *grown = realloc(ptr, size != 0 ? size : 1);
    if (grown == NULL)
        sg_oom();
    return grown;
}

void *sg_reallocarray(void *ptr, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        sg_oom();
    return sg_realloc(ptr, count * size);
}

char *sg_strdup(const char *s)
{
    return sg_memdup(s, strlen(s));
}

char *sg_memdup(const void *data, size_t len)
{
    char *copy = sg_malloc(len + 1);
    if (len > 0)
        memcpy(copy, data, len);
    copy[len] = '\0';
    return copy;
}

int sg_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(err, errlen, fmt, args);
        va_end(args);
    }
    return -1;
}

int64_t sg_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int64_t sg_mono_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int64_t sg_mono_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

void sg_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec left = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

void sg_thread_name(const char *name)
{
    char cut[16];
    snprintf(cut, sizeof(cut), "%s", name);
    pthread_setname_np(pthread_self(), cut); /* a name is a convenience: failure changes nothing */
}

int sg_random_bytes(void *buf, size_t len)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int saved = n < 0 ? errno : EIO;
            close(fd);
            errno = saved;
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    return 0;
}

/* --- base64url (RFC 4648 §5, unpadded) ---------------------------------------------------- */

const char sg_b64url_alphabet[65] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int sg_b64url_value(unsigned char c)
{
    /* Ranges instead of a 256-entry table: the branches are predictable on real input. */
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t sg_b64url_encode(const void *in, size_t len, char *out)
{
    const uint8_t *bytes = in;
    size_t n = 0, i = 0;
    /* Whole groups without the tail's tests: every 202 encodes a request id and a token. */
    for (; i + 3 <= len; i += 3) {
        uint32_t group = (uint32_t)bytes[i] << 16 | (uint32_t)bytes[i + 1] << 8 | bytes[i + 2];
        out[n] = sg_b64url_alphabet[group >> 18];
        out[n + 1] = sg_b64url_alphabet[(group >> 12) & 63];
        out[n + 2] = sg_b64url_alphabet[(group >> 6) & 63];
        out[n + 3] = sg_b64url_alphabet[group & 63];
        n += 4;
    }
    for (; i < len; i += 3) {
        uint32_t group = (uint32_t)bytes[i] << 16;
        if (i + 1 < len)
            group |= (uint32_t)bytes[i + 1] << 8;
        if (i + 2 < len)
            group |= bytes[i + 2];
        size_t chars = len - i >= 3 ? 4 : len - i + 1;
        for (size_t k = 0; k < chars; ++k)
            out[n++] = sg_b64url_alphabet[(group >> (18 - 6 * k)) & 63];
    }
    out[n] = '\0';
    return n;
}

long sg_b64url_decode(const char *in, size_t len, void *out, char *err, size_t errlen)
{
    uint8_t *bytes = out;
    size_t n = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)in[i];
        int value = sg_b64url_value(c);
        if (value < 0) {
            if (c == '=')
                return sg_errf(err, errlen, "must not be padded ('=' at position %zu)", i);
            return sg_errf(err, errlen, "invalid base64url character 0x%02x at position %zu", c, i);
        }
        acc = (acc << 6) | (uint32_t)value;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (len % 4 == 1)
        return sg_errf(err, errlen, "invalid base64url length %zu", len);
    /* Leftover bits must be zero, otherwise two texts would decode to the same bytes. */
    if (acc != 0)
        return sg_errf(err, errlen, "non-canonical base64url (trailing bits set)");
    return (long)n;
}
