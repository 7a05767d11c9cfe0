/*
 * The JWK Set fetch: one blocking HTTP/1.1 GET over a plain socket or OpenSSL, run only by the
 * key source's refresh thread, never on an event loop.
 *
 * One deadline covers connecting, the TLS handshake, sending and every read (the socket is
 * non-blocking and each wait is a poll() bounded by what is left); only name resolution, which
 * getaddrinfo() cannot bound, happens before the clock starts to matter. TLS checks the
 * certificate chain against the system store plus the configured CA file and the host name (or
 * IP address) of the URL. The response is read into one buffer bounded by the size limit plus a
 * head allowance: Content-Length, chunked and close-delimited bodies are accepted, redirects are
 * not followed (a key set URL that moves is a configuration change).
 */
#include "auth_int.h"

#include <arpa/inet.h>
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

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "sg_base.h"

#define HEAD_ALLOWANCE (16 << 10) /* status line and headers */

typedef struct st_conn_t {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl; /* NULL for http:// */
    int64_t deadline_ms;
} conn_t;

static void ssl_reason(char *buf, size_t size)
{
    unsigned long code = ERR_get_error();
    if (code == 0)
        snprintf(buf, size, "the connection was closed");
    else
        ERR_error_string_n(code, buf, size);
    ERR_clear_error();
}

/* Waits until fd is ready for `events` or the deadline passes. */
static int wait_ready(const conn_t *conn, short events, char *err, size_t errlen)
{
    for (;;) {
        int64_t left = conn->deadline_ms - sg_mono_ms();
        if (left <= 0)
            return sg_errf(err, errlen, "timed out");
        struct pollfd pfd = {.fd = conn->fd, .events = events};
        int rc = poll(&pfd, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return sg_errf(err, errlen, "poll: %s", strerror(errno));
    }
}

static int connect_any(conn_t *conn, const sg_url_t *url, char *err, size_t errlen)
{
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)url->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *list = NULL;
    int gai = getaddrinfo(url->host, port, &hints, &list);
    if (gai != 0)
        return sg_errf(err, errlen, "cannot resolve %s: %s", url->host, gai_strerror(gai));
    sg_errf(err, errlen, "no address for %s", url->host);
    for (struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            sg_errf(err, errlen, "socket: %s", strerror(errno));
            continue;
        }
        conn->fd = fd;
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS && wait_ready(conn, POLLOUT, err, errlen) == 0) {
            int so_error = 0;
            socklen_t so_len = sizeof(so_error);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len);
            rc = so_error == 0 ? 0 : -1;
            errno = so_error;
            if (rc != 0)
                sg_errf(err, errlen, "cannot connect to %s:%u: %s", url->host, (unsigned)url->port, strerror(errno));
        } else if (rc != 0 && errno != EINPROGRESS) {
            sg_errf(err, errlen, "cannot connect to %s:%u: %s", url->host, (unsigned)url->port, strerror(errno));
        }
        if (rc == 0) {
            freeaddrinfo(list);
            return 0;
        }
        close(fd);
        conn->fd = -1;
        if (sg_mono_ms() >= conn->deadline_ms)
            break;
    }
    freeaddrinfo(list);
    return -1;
}

/* Drives an OpenSSL call that may want to read or write until it completes or fails. */
static int ssl_wait(conn_t *conn, int rc, char *err, size_t errlen)
{
    switch (SSL_get_error(conn->ssl, rc)) {
    case SSL_ERROR_WANT_READ: return wait_ready(conn, POLLIN, err, errlen);
    case SSL_ERROR_WANT_WRITE: return wait_ready(conn, POLLOUT, err, errlen);
    default: {
        char reason[160];
        long verify = SSL_get_verify_result(conn->ssl);
        if (verify != X509_V_OK)
            return sg_errf(err, errlen, "TLS: certificate not trusted: %s", X509_verify_cert_error_string(verify));
        ssl_reason(reason, sizeof(reason));
        return sg_errf(err, errlen, "TLS: %s", reason);
    }
    }
}

static int tls_start(conn_t *conn, const sg_url_t *url, const char *ca_file, char *err, size_t errlen)
{
    conn->ctx = SSL_CTX_new(TLS_client_method());
    if (conn->ctx == NULL)
        sg_oom();
    SSL_CTX_set_min_proto_version(conn->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(conn->ctx, SSL_VERIFY_PEER, NULL);
    /* A truncated close-delimited body fails as JSON anyway; without this OpenSSL 3 refuses a
     * server that closes without close_notify, which plenty of them do. */
    SSL_CTX_set_options(conn->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_CTX_set_default_verify_paths(conn->ctx) != 1)
        ERR_clear_error(); /* no system store: only ca_file can make a chain trusted */
    if (ca_file != NULL && SSL_CTX_load_verify_locations(conn->ctx, ca_file, NULL) != 1) {
        ERR_clear_error();
        return sg_errf(err, errlen, "cannot load CA certificates from %s", ca_file);
    }
    conn->ssl = SSL_new(conn->ctx);
    if (conn->ssl == NULL || SSL_set_fd(conn->ssl, conn->fd) != 1)
        sg_oom();
    unsigned char addr[16];
    bool literal = inet_pton(AF_INET, url->host, addr) == 1 || inet_pton(AF_INET6, url->host, addr) == 1;
    X509_VERIFY_PARAM *param = SSL_get0_param(conn->ssl);
    if (literal) {
        X509_VERIFY_PARAM_set1_ip_asc(param, url->host);
    } else {
        SSL_set_tlsext_host_name(conn->ssl, url->host);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, url->host, 0);
    }
    for (;;) {
        int rc = SSL_connect(conn->ssl);
        if (rc == 1)
            return 0;
        if (ssl_wait(conn, rc, err, errlen) != 0)
            return -1;
    }
}

static int conn_write(conn_t *conn, const char *data, size_t len, char *err, size_t errlen)
{
    while (len > 0) {
        ssize_t n;
        if (conn->ssl != NULL) {
            int rc = SSL_write(conn->ssl, data, (int)len);
            if (rc <= 0) {
                if (ssl_wait(conn, rc, err, errlen) != 0)
                    return -1;
                continue;
            }
            n = rc;
        } else {
            n = send(conn->fd, data, len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    return sg_errf(err, errlen, "send: %s", strerror(errno));
                if (wait_ready(conn, POLLOUT, err, errlen) != 0)
                    return -1;
                continue;
            }
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads what is there (waiting up to the deadline). Returns bytes read, 0 at end of stream, -1. */
static ssize_t conn_read(conn_t *conn, char *buf, size_t size, char *err, size_t errlen)
{
    for (;;) {
        if (conn->ssl != NULL) {
            int rc = SSL_read(conn->ssl, buf, (int)size);
            if (rc > 0)
                return rc;
            int code = SSL_get_error(conn->ssl, rc);
            if (code == SSL_ERROR_ZERO_RETURN || (code == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
                return 0;
            if (ssl_wait(conn, rc, err, errlen) != 0)
                return -1;
            continue;
        }
        ssize_t n = recv(conn->fd, buf, size, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return sg_errf(err, errlen, "recv: %s", strerror(errno));
        if (wait_ready(conn, POLLIN, err, errlen) != 0)
            return -1;
    }
}

/* The value of header `name` in the head (which ends with CRLF CRLF), or NULL. */
static const char *head_value(const char *head, size_t head_len, const char *name, size_t *value_len)
{
    size_t name_len = strlen(name);
    const char *line = memchr(head, '\n', head_len), *end = head + head_len;
    while (line != NULL && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            break;
        if ((size_t)(eol - line) > name_len && strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *value = line + name_len + 1, *stop = eol;
            while (value < stop && (*value == ' ' || *value == '\t'))
                value++;
            while (stop > value && (stop[-1] == '\r' || stop[-1] == ' ' || stop[-1] == '\t'))
                stop--;
            *value_len = (size_t)(stop - value);
            return value;
        }
        line = eol;
    }
    return NULL;
}

/* Decodes a complete chunked body in place. Returns its length, -1 when it is not complete yet,
 * -2 when it is not valid chunked encoding. */
static long dechunk_in_place(char *body, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        const char *eol = memchr(body + in, '\n', len - in);
        if (eol == NULL)
            return -1;
        char *digits_end;
        unsigned long size = strtoul(body + in, &digits_end, 16);
        if (digits_end == body + in || size > SG_AUTH_MAX_JWKS)
            return -2;
        in = (size_t)(eol - body) + 1;
        if (size == 0)
            return (long)out; /* trailers, if any, are ignored */
        if (len - in < size + 2)
            return -1;
        if (body[in + size] != '\r' || body[in + size + 1] != '\n')
            return -2;
        memmove(body + out, body + in, size);
        out += size;
        in += size + 2;
    }
}

/* Whether buf holds a whole response; sets the body when it does. */
static int response_complete(char *buf, size_t len, bool at_eof, int *status, char **body, size_t *body_len, char *err,
                             size_t errlen)
{
    char *head_end = NULL;
    for (size_t i = 3; i < len && head_end == NULL; i++)
        if (memcmp(buf + i - 3, "\r\n\r\n", 4) == 0)
            head_end = buf + i + 1;
    if (head_end == NULL)
        return at_eof ? sg_errf(err, errlen, "the response ended inside its head") : 1;
    size_t head_len = (size_t)(head_end - buf);
    if (sscanf(buf, "HTTP/1.%*1[01] %3d", status) != 1)
        return sg_errf(err, errlen, "not an HTTP/1.x response");
    size_t value_len;
    const char *value = head_value(buf, head_len, "transfer-encoding", &value_len);
    char *raw = head_end;
    size_t raw_len = len - head_len;
    if (value != NULL && value_len == 7 && strncasecmp(value, "chunked", 7) == 0) {
        char *copy = sg_memdup(raw, raw_len);
        long decoded = dechunk_in_place(copy, raw_len);
        if (decoded >= 0) {
            memcpy(raw, copy, (size_t)decoded);
            *body = raw;
            *body_len = (size_t)decoded;
        }
        free(copy);
        if (decoded == -2)
            return sg_errf(err, errlen, "invalid chunked body");
        if (decoded == -1)
            return at_eof ? sg_errf(err, errlen, "the chunked body ended early") : 1;
        return 0;
    }
    value = head_value(buf, head_len, "content-length", &value_len);
    if (value != NULL) {
        size_t expected = strtoul(value, NULL, 10);
        if (raw_len < expected)
            return at_eof ? sg_errf(err, errlen, "the body ended after %zu of %zu bytes", raw_len, expected) : 1;
        *body = raw;
        *body_len = expected;
        return 0;
    }
    if (!at_eof)
        return 1;
    *body = raw;
    *body_len = raw_len;
    return 0;
}

static int exchange(conn_t *conn, const sg_url_t *url, size_t max_bytes, char **out, size_t *out_len, char *err, size_t errlen)
{
    bool ipv6 = strchr(url->host, ':') != NULL;
    char port[8] = "";
    if (url->port != (url->tls ? 443 : 80))
        snprintf(port, sizeof(port), ":%u", (unsigned)url->port);
    size_t size = strlen(url->path) + strlen(url->host) + 256;
    char *request = sg_malloc(size);
    int n = snprintf(request, size,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s%s\r\nAccept: application/jwk-set+json, application/json\r\n"
                     "User-Agent: streamgate/" SG_VERSION "\r\nConnection: close\r\n\r\n",
                     url->path, ipv6 ? "[" : "", url->host, ipv6 ? "]" : "", port);
    int rc = conn_write(conn, request, (size_t)n, err, errlen);
    free(request);
    if (rc != 0)
        return -1;
    size_t cap = max_bytes + HEAD_ALLOWANCE, len = 0;
    char *buf = sg_malloc(cap + 1), *body = NULL;
    size_t body_len = 0;
    for (rc = 1; rc == 1;) {
        if (len == cap) {
            rc = sg_errf(err, errlen, "the document is larger than %zu bytes", max_bytes);
            break;
        }
        ssize_t got = conn_read(conn, buf + len, cap - len, err, errlen);
        if (got < 0) {
            rc = -1;
            break;
        }
        len += (size_t)got;
        buf[len] = '\0';
        int status = 0;
        rc = response_complete(buf, len, got == 0, &status, &body, &body_len, err, errlen);
        if (rc == 0 && status != 200)
            rc = sg_errf(err, errlen, "HTTP status %d", status);
        else if (rc == 0 && body_len > max_bytes)
            rc = sg_errf(err, errlen, "the document is larger than %zu bytes", max_bytes);
    }
    if (rc != 0) {
        free(buf);
        return -1;
    }
    memmove(buf, body, body_len);
    buf[body_len] = '\0';
    *out = buf;
    *out_len = body_len;
    return 0;
}

int sg_auth_http_get(const sg_url_t *url, const char *ca_file, int64_t timeout_ms, size_t max_bytes, char **body, size_t *body_len,
                     char *err, size_t errlen)
{
    conn_t conn = {.fd = -1, .deadline_ms = sg_mono_ms() + timeout_ms};
    char why[256] = "";
    int rc = connect_any(&conn, url, why, sizeof(why));
    if (rc == 0 && url->tls)
        rc = tls_start(&conn, url, ca_file, why, sizeof(why));
    if (rc == 0)
        rc = exchange(&conn, url, max_bytes, body, body_len, why, sizeof(why));
    if (conn.ssl != NULL)
        SSL_free(conn.ssl);
    if (conn.ctx != NULL)
        SSL_CTX_free(conn.ctx);
    if (conn.fd >= 0)
        close(conn.fd);
    ERR_clear_error();
    return rc == 0 ? 0 : sg_errf(err, errlen, "GET %s: %s", url->text, why);
}
