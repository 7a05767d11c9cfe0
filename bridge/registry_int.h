/*
 * Private to the registry: the small blocking HTTP/1.1 client it uses to talk to an external
 * registry (plain sockets, one request per connection, deadlines on connect and on every read,
 * a bound on the response size). Used at start-up and from non-loop threads only.
 */
#ifndef SG_REGISTRY_INT_H
#define SG_REGISTRY_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Largest response body accepted from an external registry. */
#define SG_REG_HTTP_MAX_RESPONSE (1024 * 1024)

#define SG_REG_URL_MAX_ADDRS 4

typedef struct st_sg_reg_url_t {
    char host[256];
    uint16_t port;
    char prefix[512]; /* "" or "/path" without a trailing '/' */
    /* The host's addresses, resolved once by sg_reg_url_parse: getaddrinfo has no deadline, so
     * the threads that fetch schemas never call it (0 addresses: resolved at each connect). */
    struct sockaddr_storage addrs[SG_REG_URL_MAX_ADDRS];
    socklen_t addr_lens[SG_REG_URL_MAX_ADDRS];
    int families[SG_REG_URL_MAX_ADDRS];
    size_t n_addrs;
} sg_reg_url_t;

/** Splits "http://HOST[:PORT][/PREFIX]" and resolves HOST (blocking: call at start-up). Returns 0
 * or -1 (malformed); a host that does not resolve yet is resolved again at each connection. */
int sg_reg_url_parse(const char *url, sg_reg_url_t *out);

/** One request (Connection: close) to url->prefix + path, at most timeout_ms in all. `body` may be
 * NULL. Returns 0 with *status and *resp (owned, NUL-terminated, free()) of *resp_len bytes, or -1
 * with err (connection, deadline, oversized or malformed response). */
int sg_reg_http_request(const sg_reg_url_t *url, const char *method, const char *path, const char *body, size_t body_len,
                        int64_t timeout_ms, int *status, char **resp, size_t *resp_len, char *err, size_t errlen);

#endif
