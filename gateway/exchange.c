/*
 * HTTP/1.1 exchanges with other instances (exchange.h), on H2O 2.2.5's http1client: a pooled
 * connection per advertised URL and loop, the request written whole, the answer collected whole.
 * The per-loop state (client context, pools, the list of parked requests) is the feature
 * `sg_feature_forward`, drained with the others when the gateway stops.
 */
#include "exchange.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "park.h"
#include "respond.h"
#include "sg_deployment.h"
#include "sg_placement.h"

#define SG_EXCHANGE_MAX_BODY (16u << 20)
#define SG_EXCHANGE_POOL_IDLE_MS 10000
#define SG_EXCHANGE_POOL_CAPACITY 64
#define SG_EXCHANGE_IO_MARGIN_MS 2000

typedef struct st_sg_exchange_pool_t {
    char url[SG_PLACEMENT_URL_MAX];
    h2o_socketpool_t pool;
} sg_exchange_pool_t;

struct st_sg_forward_loop_t {
    h2o_linklist_t parked;
    h2o_http1client_ctx_t client_ctx;
    h2o_timeout_t io_timeout;
    sg_exchange_pool_t **pools;
    size_t n_pools;
};

void sg_exchange_init(sg_exchange_t *exchange, sg_exchange_done_cb done, void *data)
{
    memset(exchange, 0, sizeof(*exchange));
    h2o_mem_init_pool(&exchange->pool);
    exchange->done = done;
    exchange->data = data;
}

void sg_exchange_cancel(sg_exchange_t *exchange)
{
    if (exchange->client != NULL) {
        h2o_http1client_cancel(exchange->client);
        exchange->client = NULL;
    }
}

void sg_exchange_dispose(sg_exchange_t *exchange)
{
    sg_exchange_cancel(exchange);
    h2o_mem_clear_pool(&exchange->pool);
    free(exchange->body);
    exchange->body = NULL;
}

static int is_hop_header(const h2o_iovec_t *name)
{
    static const char *const hop[] = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server",
                                      "upgrade", "vary", "proxy-connection", NULL};
    for (size_t i = 0; hop[i] != NULL; ++i)
        if (h2o_memis(name->base, name->len, hop[i], strlen(hop[i])))
            return 1;
    return name->len > 15 && memcmp(name->base, "access-control-", 15) == 0; /* CORS is this instance's */
}

/* Ends the exchange: H2O closes (or pools) the connection after the callback returns. */
static void finish(sg_exchange_t *exchange, const char *error)
{
    exchange->client = NULL;
    exchange->done(exchange, error);
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    sg_exchange_t *exchange = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        finish(exchange, errstr);
        return -1;
    }
    h2o_buffer_t *input = client->sock->input;
    if (exchange->body_len + input->size > SG_EXCHANGE_MAX_BODY) {
        finish(exchange, "its answer is too large");
        return -1;
    }
    if (exchange->body_len + input->size + 1 > exchange->body_cap) {
        exchange->body_cap = (exchange->body_len + input->size + 1) * 2;
        exchange->body = sg_realloc(exchange->body, exchange->body_cap);
    }
    memcpy(exchange->body + exchange->body_len, input->bytes, input->size);
    exchange->body_len += input->size;
    exchange->body[exchange->body_len] = '\0';
    h2o_buffer_consume(&client->sock->input, input->size);
    if (errstr == h2o_http1client_error_is_eos)
        finish(exchange, NULL);
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr, int minor_version, int status,
                                       h2o_iovec_t msg, h2o_header_t *headers, size_t num_headers, int rlen)
{
    sg_exchange_t *exchange = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        finish(exchange, errstr);
        return NULL;
    }
    exchange->status = status;
    for (size_t i = 0; i < num_headers; ++i) {
        if (is_hop_header(headers[i].name))
            continue;
        h2o_iovec_t name = h2o_strdup(&exchange->pool, headers[i].name->base, headers[i].name->len);
        h2o_add_header_by_str(&exchange->pool, &exchange->headers, name.base, name.len, 0, NULL,
                              h2o_strdup(&exchange->pool, headers[i].value.base, headers[i].value.len).base,
                              headers[i].value.len);
    }
    if (errstr == h2o_http1client_error_is_eos) { /* no body (HEAD, 304) */
        finish(exchange, NULL);
        return NULL;
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr, h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head)
{
    sg_exchange_t *exchange = client->data;
    if (errstr != NULL) {
        finish(exchange, errstr);
        return NULL;
    }
    *reqbufs = &exchange->request;
    *reqbufcnt = 1;
    *method_is_head = exchange->is_head;
    return on_head;
}

/* Splits an advertised URL "http://HOST[:PORT][/BASE]". Returns 0, or -1 (https or malformed). */
static int split_url(const char *url, h2o_iovec_t *host, uint16_t *port, h2o_iovec_t *base)
{
    static const char scheme[] = "http://";
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return -1;
    const char *at = url + sizeof(scheme) - 1;
    const char *end = at + strcspn(at, "/");
    const char *colon = NULL;
    if (*at == '[') { /* [v6]:port */
        const char *close = memchr(at, ']', (size_t)(end - at));
        if (close == NULL)
            return -1;
        *host = h2o_iovec_init(at + 1, (size_t)(close - at - 1));
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(at, ':', (size_t)(end - at));
        *host = h2o_iovec_init(at, (size_t)((colon != NULL ? colon : end) - at));
    }
    *port = 80;
    if (colon != NULL) {
        long value = strtol(colon + 1, NULL, 10);
        if (value <= 0 || value > 65535)
            return -1;
        *port = (uint16_t)value;
    }
    *base = h2o_iovec_init(end, strlen(end));
    while (base->len > 0 && base->base[base->len - 1] == '/')
        --base->len;
    return host->len > 0 ? 0 : -1;
}

static h2o_socketpool_t *pool_for(struct st_sg_forward_loop_t *state, h2o_loop_t *loop, const char *url, h2o_iovec_t host,
                                  uint16_t port)
{
    for (size_t i = 0; i < state->n_pools; ++i)
        if (strcmp(state->pools[i]->url, url) == 0)
            return &state->pools[i]->pool;
    sg_exchange_pool_t *entry = sg_calloc(1, sizeof(*entry));
    snprintf(entry->url, sizeof(entry->url), "%s", url);
    h2o_socketpool_init_by_hostport(&entry->pool, host, port, 0, SG_EXCHANGE_POOL_CAPACITY);
    h2o_socketpool_set_timeout(&entry->pool, loop, SG_EXCHANGE_POOL_IDLE_MS);
    state->pools = sg_reallocarray(state->pools, state->n_pools + 1, sizeof(*state->pools));
    state->pools[state->n_pools++] = entry;
    return &entry->pool;
}

/* The request text: the same method and path (with the query, and `extra` added to it), the
 * headers a read depends on, and the one-hop marker. */
static h2o_iovec_t request_text(sg_exchange_t *exchange, h2o_req_t *req, h2o_iovec_t host, uint16_t port, h2o_iovec_t base,
                                const char *extra)
{
    static const char *const passed[] = {"consistency-token", "prefer", "if-none-match", "accept", "authorization",
                                         "x-api-key", "cookie", "traceparent", NULL};
    sg_server_t *server = sg_loop_of(req)->server;
    size_t extra_len = extra != NULL ? strlen(extra) : 0;
    size_t cap = 512 + base.len + req->path.len + req->method.len + host.len + extra_len;
    for (size_t i = 0; i < req->headers.size; ++i)
        cap += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    char *text = h2o_mem_alloc_pool(&exchange->pool, cap);
    const char *joiner = extra == NULL ? "" : req->query_at == SIZE_MAX ? "?" : "&";
    int n = snprintf(text, cap, "%.*s %.*s%.*s%s%s HTTP/1.1\r\nhost: %.*s:%u\r\n" SG_FORWARDED_HEADER ": %s\r\n",
                     (int)req->method.len, req->method.base, (int)base.len, base.base, (int)req->path.len, req->path.base, joiner,
                     extra != NULL ? extra : "", (int)host.len, host.base, (unsigned)port,
                     sg_deployment_instance(server->deployment));
    size_t len = (size_t)n;
    for (size_t i = 0; i < req->headers.size; ++i) {
        const h2o_header_t *header = &req->headers.entries[i];
        for (size_t k = 0; passed[k] != NULL; ++k)
            if (h2o_memis(header->name->base, header->name->len, passed[k], strlen(passed[k]))) {
                len += (size_t)snprintf(text + len, cap - len, "%.*s: %.*s\r\n", (int)header->name->len, header->name->base,
                                        (int)header->value.len, header->value.base);
                break;
            }
    }
    len += (size_t)snprintf(text + len, cap - len, "\r\n");
    return h2o_iovec_init(text, len);
}

int sg_exchange_start(sg_exchange_t *exchange, h2o_req_t *req, const char *url, const char *extra_query)
{
    sg_loop_t *loop = sg_loop_of(req);
    h2o_iovec_t host, base;
    uint16_t port;
    if (split_url(url, &host, &port, &base) != 0)
        return -1;
    exchange->status = 0;
    exchange->headers = (h2o_headers_t){NULL, 0, 0};
    exchange->body_len = 0;
    exchange->is_head = sg_http_method_is(req, "HEAD");
    exchange->request = request_text(exchange, req, host, port, base, extra_query);
    h2o_socketpool_t *pool = pool_for(loop->forward, loop->ctx.loop, url, host, port);
    h2o_http1client_connect_with_pool(&exchange->client, exchange, &loop->forward->client_ctx, pool, on_connect);
    return 0;
}

void sg_exchange_relay(const sg_exchange_t *exchange, h2o_req_t *req)
{
    for (size_t i = 0; i < exchange->headers.size; ++i) {
        const h2o_header_t *header = &exchange->headers.entries[i];
        sg_http_add_header(req, header->name->base, header->name->len, header->value.base, header->value.len);
    }
    sg_http_respond(req, exchange->status, NULL, exchange->body != NULL ? exchange->body : "", exchange->body_len);
}

h2o_iovec_t sg_exchange_header(const sg_exchange_t *exchange, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < exchange->headers.size; ++i) {
        const h2o_header_t *header = &exchange->headers.entries[i];
        if (h2o_memis(header->name->base, header->name->len, name, len))
            return header->value;
    }
    return h2o_iovec_init(NULL, 0);
}

h2o_linklist_t *sg_exchange_parked(sg_loop_t *loop)
{
    return &loop->forward->parked;
}

/* --- the feature ------------------------------------------------------------------------------ */

static void init_loop(sg_loop_t *loop)
{
    struct st_sg_forward_loop_t *state = sg_calloc(1, sizeof(*state));
    h2o_linklist_init_anchor(&state->parked);
    /* An inactivity bound for one exchange; the owner's deadline bounds the whole of it. */
    h2o_timeout_init(loop->ctx.loop, &state->io_timeout,
                     (uint64_t)(loop->server->conf->limits.token_wait_max_ms + SG_EXCHANGE_IO_MARGIN_MS));
    state->client_ctx.loop = loop->ctx.loop;
    state->client_ctx.getaddr_receiver = &loop->ctx.receivers.hostinfo_getaddr;
    state->client_ctx.io_timeout = &state->io_timeout;
    loop->forward = state;
}

static void drain(sg_loop_t *loop)
{
    sg_park_drain(&loop->forward->parked);
}

const sg_feature_t sg_feature_forward = {.init_loop = init_loop, .drain = drain};
