/*
 * Helpers of the hardening tests (test_hardening.c, test_overload.c, test_connections.c,
 * test_badinput.c) for talking to a gateway byte by byte on raw sockets, where harness.h's client
 * would hide what is being checked (header case, framing, a closed connection, a client that does
 * not read), and for reading its metrics. Static: each test executable has its own copy.
 */
#ifndef SG_TEST_WIRE_H
#define SG_TEST_WIRE_H

#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static inline int64_t wire_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void wire_pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* A new connection to the gateway, or -1. rcvbuf > 0 shrinks its receive buffer first (a client
 * that will not read much). */
static inline int wire_connect(const sg_test_proc_t *gw, int rcvbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gw->port)};
    inet_pton(AF_INET, gw->host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if ((rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0) ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends all of data[0..len). Returns 0, or -1 (the gateway closed the connection, say). */
static inline int wire_send(int fd, const void *data, size_t len)
{
    const char *at = data;
    while (len > 0) {
        ssize_t n = send(fd, at, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        at += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads into out (NUL-terminated) until the gateway closes the connection (*closed = 1), cap is
 * reached, or timeout_ms passes; what has arrived is read even when the time is up. Returns the
 * length. */
static inline size_t wire_read(int fd, int timeout_ms, char *out, size_t cap, int *closed)
{
    size_t len = 0;
    int64_t until = wire_mono_ms() + timeout_ms;
    *closed = 0;
    while (len + 1 < cap) {
        int64_t left = until - wire_mono_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, left > 0 ? (int)left : 0) <= 0)
            break;
        ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
        if (n <= 0) {
            *closed = 1;
            break;
        }
        len += (size_t)n;
    }
    out[len] = '\0';
    return len;
}

/* The status of the HTTP/1.1 response at the start of raw, or 0. */
static inline int wire_status(const char *raw)
{
    return strncmp(raw, "HTTP/1.1 ", 9) == 0 && strlen(raw) >= 12 ? atoi(raw + 9) : 0;
}

/* The problem type (after urn:streamgate:problem:) in raw, copied to type; "" when none. */
static inline const char *wire_problem_type(const char *raw, char *type, size_t typelen)
{
    const char *urn = strstr(raw, "urn:streamgate:problem:");
    snprintf(type, typelen, "%.*s", urn != NULL ? (int)strcspn(urn + 23, "\"") : 0, urn != NULL ? urn + 23 : "");
    return type;
}

/* A value from /metrics, or -1 when the gateway does not answer or has no such metric. */
static inline long long wire_metric(const sg_test_proc_t *gw, const char *name)
{
    sg_test_response_t res;
    if (sg_test_http(gw, "GET", "/metrics", NULL, NULL, 0, &res) != 0)
        return -1;
    char needle[128];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *at = res.status == 200 && res.body != NULL ? strstr(res.body, needle) : NULL;
    long long value = at != NULL ? atoll(at + strlen(needle)) : -1;
    sg_test_response_free(&res);
    return value;
}

/* An HTTP/2 frame (RFC 9113 4.1) in out: returns its length (9 + len). */
static inline size_t wire_h2_frame(uint8_t *out, uint8_t type, uint8_t flags, uint32_t stream, const void *payload, size_t len)
{
    out[0] = (uint8_t)(len >> 16);
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)len;
    out[3] = type;
    out[4] = flags;
    out[5] = (uint8_t)(stream >> 24 & 0x7f);
    out[6] = (uint8_t)(stream >> 16);
    out[7] = (uint8_t)(stream >> 8);
    out[8] = (uint8_t)stream;
    if (len > 0)
        memcpy(out + 9, payload, len);
    return 9 + len;
}

/* HPACK: a literal header field without indexing, new name, no Huffman coding (name and value
 * under 127 bytes). Returns its length. */
static inline size_t wire_hpack_literal(uint8_t *out, const char *name, const char *value)
{
    size_t n = 0, name_len = strlen(name), value_len = strlen(value);
    out[n++] = 0x00;
    out[n++] = (uint8_t)name_len;
    memcpy(out + n, name, name_len);
    n += name_len;
    out[n++] = (uint8_t)value_len;
    memcpy(out + n, value, value_len);
    return n + value_len;
}

#endif
