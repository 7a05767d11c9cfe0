/*
 * A blocking HTTP/1.1 client for the external registry: one request per connection
 * (Connection: close), a single deadline over connect, send and every read (poll()), and a bound
 * on what it reads. Responses may be Content-Length, chunked or close-delimited. It never runs on
 * an event loop: start-up and the bridge/materializer threads only.
 */
#include "registry_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sg_base.h"

#define HEAD_MAX (64 * 1024)

int sg_reg_url_parse(const char *url, sg_reg_url_t *out)
{
    memset(out, 0, sizeof(*out));
    if (url == NULL || strncmp(url, "http://", 7) != 0)
        return -1;
    const char *host = url + 7;
    size_t host_len = strcspn(host, ":/");
    if (host_len == 0 || host_len >= sizeof(out->host))
        return -1;
    memcpy(out->host, host, host_len);
    const char *rest = host + host_len;
    out->port = 80;
    if (*rest == ':') {
        char *end;
        long port = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || port < 1 || port > 65535)
            return -1;
        out->port = (uint16_t)port;
        rest = end;
    }
    if (*rest != '\0' && *rest != '/')
        return -1;
    size_t len = strlen(rest);
    while (len > 0 && rest[len - 1] == '/')
        len--;
    if (len >= sizeof(out->prefix))
        return -1;
    memcpy(out->prefix, rest, len);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)out->port);
    if (getaddrinfo(out->host, service, &hints, &res) == 0) {
        for (struct addrinfo *ai = res; ai != NULL && out->n_addrs < SG_REG_URL_MAX_ADDRS; ai = ai->ai_next) {
            if (ai->ai_addrlen > sizeof(out->addrs[0]))
                continue;
            memcpy(&out->addrs[out->n_addrs], ai->ai_addr, ai->ai_addrlen);
            out->addr_lens[out->n_addrs] = ai->ai_addrlen;
            out->families[out->n_addrs] = ai->ai_family;
            out->n_addrs++;
        }
        freeaddrinfo(res);
    }
    return 0;
}

/* Waits for `events` on fd until the deadline. Returns 0, or -1 with err. */
static int wait_fd(int fd, short events, int64_t deadline, char *err, size_t errlen)
{
    for (;;) {
        int64_t left = deadline - sg_mono_ms();
        if (left <= 0) {
            sg_errf(err, errlen, "no answer in time");
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR) {
            sg_errf(err, errlen, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

static int connect_to(const sg_reg_url_t *url, int64_t deadline, char *err, size_t errlen)
{
    sg_reg_url_t resolved;
    if (url->n_addrs == 0) { /* it did not resolve at start: try again (no deadline, sadly) */
        char text[1024];
        snprintf(text, sizeof(text), "http://%s:%u", url->host, (unsigned)url->port);
        if (sg_reg_url_parse(text, &resolved) != 0 || resolved.n_addrs == 0) {
            sg_errf(err, errlen, "%s: the host does not resolve", url->host);
            return -1;
        }
        url = &resolved;
    }
    int fd = -1;
    sg_errf(err, errlen, "connect %s:%u: no usable address", url->host, (unsigned)url->port);
    for (size_t i = 0; i < url->n_addrs && fd < 0; ++i) {
        fd = socket(url->families[i], SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        if (connect(fd, (const struct sockaddr *)&url->addrs[i], url->addr_lens[i]) != 0) {
            int so_error = errno;
            if (so_error == EINPROGRESS && wait_fd(fd, POLLOUT, deadline, err, errlen) == 0) {
                socklen_t len = sizeof(so_error);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
            } else if (so_error == EINPROGRESS) {
                so_error = ETIMEDOUT;
            }
            if (so_error != 0) {
                sg_errf(err, errlen, "connect %s:%u: %s", url->host, (unsigned)url->port, strerror(so_error));
                close(fd);
                fd = -1;
            }
        }
    }
    return fd;
}

static int send_all(int fd, const char *data, size_t len, int64_t deadline, char *err, size_t errlen)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline, err, errlen) != 0)
                return -1;
        } else {
            sg_errf(err, errlen, "send: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Reads until close into a growing buffer of at most `max` bytes. */
static int read_all(int fd, char **buf, size_t *len, size_t max, int64_t deadline, char *err, size_t errlen)
{
    size_t cap = 4096;
    *buf = sg_malloc(cap + 1);
    *len = 0;
    for (;;) {
        if (*len == cap) {
            if (cap >= max) {
                sg_errf(err, errlen, "response larger than %zu bytes", max);
                return -1;
            }
            cap = cap * 2 > max ? max : cap * 2;
            *buf = sg_realloc(*buf, cap + 1);
        }
        ssize_t n = recv(fd, *buf + *len, cap - *len, 0);
        if (n > 0) {
            *len += (size_t)n;
        } else if (n == 0) {
            (*buf)[*len] = '\0';
            return 0;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            if (wait_fd(fd, POLLIN, deadline, err, errlen) != 0)
                return -1;
        } else {
            sg_errf(err, errlen, "recv: %s", strerror(errno));
            return -1;
        }
    }
}

/* Decodes a chunked body in place. Returns the decoded length, or -1. */
static ssize_t dechunk(char *body, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        if (in >= len)
            return -1;
        unsigned long size = strtoul(body + in, &end, 16);
        char *crlf = memchr(body + in, '\n', len - in);
        if (end == body + in || crlf == NULL)
            return -1;
        in = (size_t)(crlf - body) + 1;
        if (size == 0)
            return (ssize_t)out;
        if (size > len - in)
            return -1;
        memmove(body + out, body + in, size);
        out += size;
        in += size;
        if (in + 2 > len || body[in] != '\r' || body[in + 1] != '\n')
            return -1;
        in += 2;
    }
}

int sg_reg_http_request(const sg_reg_url_t *url, const char *method, const char *path, const char *body, size_t body_len,
                        int64_t timeout_ms, int *status, char **resp, size_t *resp_len, char *err, size_t errlen)
{
    int64_t deadline = sg_mono_ms() + timeout_ms;
    *resp = NULL;
    *resp_len = 0;
    int fd = connect_to(url, deadline, err, errlen);
    if (fd < 0)
        return -1;
    char head[2048];
    int head_len = snprintf(head, sizeof(head),
                            "%s %s%s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n"
                            "Accept: application/vnd.schemaregistry.v1+json, application/json\r\n"
                            "%sContent-Length: %zu\r\n\r\n",
                            method, url->prefix, path, url->host, (unsigned)url->port,
                            body != NULL ? "Content-Type: application/vnd.schemaregistry.v1+json\r\n" : "",
                            body != NULL ? body_len : (size_t)0);
    char *raw = NULL;
    size_t raw_len = 0;
    int rc = -1;
    if (head_len < 0 || (size_t)head_len >= sizeof(head)) {
        sg_errf(err, errlen, "request path too long");
        goto done;
    }
    if (send_all(fd, head, (size_t)head_len, deadline, err, errlen) != 0 ||
        (body != NULL && send_all(fd, body, body_len, deadline, err, errlen) != 0))
        goto done;
    if (read_all(fd, &raw, &raw_len, SG_REG_HTTP_MAX_RESPONSE + HEAD_MAX, deadline, err, errlen) != 0)
        goto done;
    char *header_end = strstr(raw, "\r\n\r\n");
    int code;
    if (header_end == NULL || sscanf(raw, "HTTP/1.%*d %d", &code) != 1 || code < 100 || code > 999) {
        sg_errf(err, errlen, "malformed HTTP response");
        goto done;
    }
    *header_end = '\0';
    char *content = header_end + 4;
    size_t content_len = raw_len - (size_t)(content - raw);
    int chunked = 0;
    long declared = -1;
    for (char *line = strstr(raw, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, "content-length:", 15) == 0)
            declared = strtol(line + 15, NULL, 10);
        else if (strncasecmp(line, "transfer-encoding:", 18) == 0 && strstr(line, "chunked") != NULL)
            chunked = 1;
    }
    if (chunked) {
        ssize_t n = dechunk(content, content_len);
        if (n < 0) {
            sg_errf(err, errlen, "malformed chunked response");
            goto done;
        }
        content_len = (size_t)n;
    } else if (declared >= 0) {
        if ((size_t)declared > content_len) {
            sg_errf(err, errlen, "response shorter than its Content-Length");
            goto done;
        }
        content_len = (size_t)declared;
    }
    if (content_len > SG_REG_HTTP_MAX_RESPONSE) {
        sg_errf(err, errlen, "response larger than %d bytes", SG_REG_HTTP_MAX_RESPONSE);
        goto done;
    }
    *resp = sg_memdup(content, content_len);
    *resp_len = content_len;
    *status = code;
    rc = 0;
done:
    free(raw);
    close(fd);
    return rc;
}
