/*
 * Reads of partitioned tables (DESIGN §8; README, "Scale-out"): a point read is answered where
 * its key's partition is kept, and otherwise forwarded to the partition's owner over HTTP/1.1
 * (H2O's http1client, pooled connections per owner and loop), its answer relayed with status,
 * headers and body, so the client sees one answer whatever instance it asked.
 *
 * The decision (sg_tables_route), with this instance's role for the key's partition:
 *   owner                      answer here (the read waits for the partition to be ready and for
 *                              its token, like any read)
 *   standby or none, not yet   forward to the owner, with the request's token and a
 *   forwarded                  Streamgate-Forwarded header; the owner cannot be reached or does
 *                              not answer within the read's wait plus SG_FORWARD_MARGIN_MS: a
 *                              standby answers here (from a state that meets the token, else
 *                              503 not-caught-up like any read), anything else 503
 *                              owner-unavailable with Retry-After
 *   forwarded to us            never forwarded again (one hop; a loop is impossible): a standby
 *                              answers here, anything else 503 partition-moved (ownership is
 *                              moving; the client retries)
 * An event stream (a watch) is not relayed: it is served by an instance that keeps the partition,
 * and an instance that does not answers 307 to the owner's URL (EventSource follows it).
 *
 * A forwarded exchange is parked like any wait (park.h); the client leaving, the deadline and a
 * drain cancel the HTTP client, so nothing of the exchange outlives the park. Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "respond.h"
#include "sg_deployment.h"
#include "sg_materializer.h"
#include "sg_placement.h"
#include "tables_int.h"

#define SG_FORWARD_MARGIN_MS 2000   /* over the read's own wait, for the hop */
#define SG_FORWARD_MAX_BODY (16u << 20)
#define SG_FORWARD_POOL_IDLE_MS 10000
#define SG_FORWARD_POOL_CAPACITY 64
#define SG_FORWARDED_HEADER "streamgate-forwarded"
#define SG_SERVED_BY_HEADER "streamgate-served-by"

typedef struct st_sg_fwd_pool_t {
    char url[SG_PLACEMENT_URL_MAX];
    h2o_socketpool_t pool;
} sg_fwd_pool_t;

struct st_sg_forward_loop_t {
    h2o_linklist_t parked; /* forwarded reads in flight */
    h2o_http1client_ctx_t client_ctx;
    h2o_timeout_t io_timeout;
    sg_fwd_pool_t **pools;
    size_t n_pools;
};

typedef struct st_sg_fwd_t {
    sg_park_t park;
    sg_tq_t *tq;             /* the read, answered here if the owner cannot be (standby); owned */
    int standby;             /* this instance keeps the partition */
    int64_t wait_ms;         /* the read's own wait */
    int64_t started_ms;
    h2o_http1client_t *client; /* while the exchange runs */
    h2o_mem_pool_t pool;       /* the request text, the answer's headers */
    h2o_iovec_t request;
    int status;
    h2o_headers_t headers;
    char *body;
    size_t body_len, body_cap;
    char owner[136]; /* who is asked now */
    /* When the owner cannot answer: a standby of the partition, asked next (still one hop: the
     * standby answers a forwarded read itself). "" once asked, or when none is known. */
    char standby_url[SG_PLACEMENT_URL_MAX];
    char standby_name[136];
} sg_fwd_t;

static void fwd_free(sg_fwd_t *fwd)
{
    if (fwd->tq != NULL)
        sg_tq_free(fwd->tq);
    h2o_mem_clear_pool(&fwd->pool);
    free(fwd->body);
    free(fwd);
}

/* --- answers --------------------------------------------------------------------------------- */

static int is_hop_header(const h2o_iovec_t *name)
{
    static const char *const hop[] = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server",
                                      "upgrade", "vary", "proxy-connection", NULL};
    for (size_t i = 0; hop[i] != NULL; ++i)
        if (h2o_memis(name->base, name->len, hop[i], strlen(hop[i])))
            return 1;
    return name->len > 12 && memcmp(name->base, "access-control-", 12) == 0; /* CORS is this instance's */
}

/* The owner's answer, relayed. Ends the exchange. */
static void relay(sg_fwd_t *fwd)
{
    h2o_req_t *req = sg_park_finish(&fwd->park);
    if (req != NULL) {
        for (size_t i = 0; i < fwd->headers.size; ++i) {
            const h2o_header_t *header = &fwd->headers.entries[i];
            sg_http_add_header(req, header->name->base, header->name->len, header->value.base, header->value.len);
        }
        sg_http_respond(req, fwd->status, NULL, fwd->body != NULL ? fwd->body : "", fwd->body_len);
    }
    fwd_free(fwd);
}

static int ask(sg_fwd_t *fwd, h2o_req_t *req, const char *url);

/* The owner could not be asked or did not answer: a standby answers here, or another instance
 * that keeps the partition is asked, else 503. */
static void owner_failed(sg_fwd_t *fwd, const char *why)
{
    if (!fwd->standby && fwd->standby_url[0] != '\0' && sg_park_is_parked(&fwd->park) &&
        fwd->wait_ms - (sg_now_ms() - fwd->started_ms) > 0) {
        char url[SG_PLACEMENT_URL_MAX];
        snprintf(url, sizeof(url), "%s", fwd->standby_url);
        snprintf(fwd->owner, sizeof(fwd->owner), "%s", fwd->standby_name);
        fwd->standby_url[0] = '\0';
        if (ask(fwd, fwd->park.req, url) == 0)
            return;
    }
    h2o_req_t *req = sg_park_finish(&fwd->park);
    if (req == NULL) {
        fwd_free(fwd);
        return;
    }
    if (fwd->standby) {
        sg_tq_t *tq = fwd->tq;
        fwd->tq = NULL;
        int64_t left = fwd->wait_ms - (sg_now_ms() - fwd->started_ms);
        fwd_free(fwd);
        const char *instance = sg_deployment_instance(sg_loop_of(req)->server->deployment);
        sg_http_add_header(req, H2O_STRLIT(SG_SERVED_BY_HEADER), instance, strlen(instance));
        sg_tq_begin(req, tq, left > 0 ? left : 0);
        return;
    }
    sg_problem(req, SG_PROBLEM_OWNER_UNAVAILABLE, NULL, "the instance that owns the key's partition (%s) could not answer: %s",
               fwd->owner[0] != '\0' ? fwd->owner : "none known yet", why);
    fwd_free(fwd);
}

/* --- the exchange (http1client callbacks) ----------------------------------------------------- */

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    sg_fwd_t *fwd = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        fwd->client = NULL; /* closed by H2O after this returns */
        owner_failed(fwd, errstr);
        return -1;
    }
    h2o_buffer_t *input = client->sock->input;
    if (fwd->body_len + input->size > SG_FORWARD_MAX_BODY) {
        fwd->client = NULL;
        owner_failed(fwd, "its answer is too large");
        return -1;
    }
    if (fwd->body_len + input->size + 1 > fwd->body_cap) {
        fwd->body_cap = (fwd->body_len + input->size + 1) * 2;
        fwd->body = sg_realloc(fwd->body, fwd->body_cap);
    }
    memcpy(fwd->body + fwd->body_len, input->bytes, input->size);
    fwd->body_len += input->size;
    h2o_buffer_consume(&client->sock->input, input->size);
    if (errstr == h2o_http1client_error_is_eos) {
        fwd->client = NULL;
        relay(fwd);
    }
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr, int minor_version, int status,
                                       h2o_iovec_t msg, h2o_header_t *headers, size_t num_headers, int rlen)
{
    sg_fwd_t *fwd = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        fwd->client = NULL;
        owner_failed(fwd, errstr);
        return NULL;
    }
    fwd->status = status;
    for (size_t i = 0; i < num_headers; ++i) {
        if (is_hop_header(headers[i].name))
            continue;
        h2o_iovec_t name = h2o_strdup(&fwd->pool, headers[i].name->base, headers[i].name->len);
        h2o_add_header_by_str(&fwd->pool, &fwd->headers, name.base, name.len, 0, NULL,
                              h2o_strdup(&fwd->pool, headers[i].value.base, headers[i].value.len).base, headers[i].value.len);
    }
    if (errstr == h2o_http1client_error_is_eos) { /* no body (HEAD, 304) */
        fwd->client = NULL;
        relay(fwd);
        return NULL;
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr, h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head)
{
    sg_fwd_t *fwd = client->data;
    if (errstr != NULL) {
        fwd->client = NULL;
        owner_failed(fwd, errstr);
        return NULL;
    }
    *reqbufs = &fwd->request;
    *reqbufcnt = 1;
    *method_is_head = sg_http_method_is(fwd->park.req, "HEAD");
    return on_head;
}

/* --- parking ---------------------------------------------------------------------------------- */

static void cancel(sg_fwd_t *fwd)
{
    if (fwd->client != NULL) {
        h2o_http1client_cancel(fwd->client);
        fwd->client = NULL;
    }
}

static void on_fwd_deadline(sg_park_t *park)
{
    sg_fwd_t *fwd = H2O_STRUCT_FROM_MEMBER(sg_fwd_t, park, park);
    cancel(fwd);
    owner_failed(fwd, "no answer in time");
}

static void on_fwd_drain(sg_park_t *park)
{
    sg_fwd_t *fwd = H2O_STRUCT_FROM_MEMBER(sg_fwd_t, park, park);
    cancel(fwd);
    sg_problem(sg_park_finish(park), SG_PROBLEM_SHUTTING_DOWN, NULL, "the gateway is shutting down; retry on another instance");
    fwd_free(fwd);
}

static void on_fwd_gone(sg_park_t *park)
{
    sg_fwd_t *fwd = H2O_STRUCT_FROM_MEMBER(sg_fwd_t, park, park);
    cancel(fwd);
    fwd_free(fwd);
}

static const sg_park_kind_t fwd_park = {.on_deadline = on_fwd_deadline, .on_drain = on_fwd_drain, .on_gone = on_fwd_gone};

/* --- the decision ----------------------------------------------------------------------------- */

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

static struct st_sg_forward_loop_t *loop_forward(h2o_req_t *req)
{
    return sg_loop_of(req)->forward;
}

static h2o_socketpool_t *pool_for(struct st_sg_forward_loop_t *state, h2o_loop_t *loop, const char *url, h2o_iovec_t host,
                                  uint16_t port)
{
    for (size_t i = 0; i < state->n_pools; ++i)
        if (strcmp(state->pools[i]->url, url) == 0)
            return &state->pools[i]->pool;
    sg_fwd_pool_t *entry = sg_calloc(1, sizeof(*entry));
    snprintf(entry->url, sizeof(entry->url), "%s", url);
    h2o_socketpool_init_by_hostport(&entry->pool, host, port, 0, SG_FORWARD_POOL_CAPACITY);
    h2o_socketpool_set_timeout(&entry->pool, loop, SG_FORWARD_POOL_IDLE_MS);
    state->pools = sg_reallocarray(state->pools, state->n_pools + 1, sizeof(*state->pools));
    state->pools[state->n_pools++] = entry;
    return &entry->pool;
}

/* The request text for the owner: the same method and path (with the query), the headers a read
 * depends on, and the one-hop marker. */
static h2o_iovec_t request_text(sg_fwd_t *fwd, h2o_req_t *req, h2o_iovec_t host, uint16_t port, h2o_iovec_t base)
{
    static const char *const passed[] = {"consistency-token", "prefer", "if-none-match", "accept", "authorization",
                                         "x-api-key", "cookie", "traceparent", NULL};
    sg_server_t *server = sg_loop_of(req)->server;
    size_t cap = 512 + base.len + req->path.len + req->method.len + host.len;
    for (size_t i = 0; i < req->headers.size; ++i)
        cap += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    char *text = h2o_mem_alloc_pool(&fwd->pool, cap);
    int n = snprintf(text, cap, "%.*s %.*s%.*s HTTP/1.1\r\nhost: %.*s:%u\r\n" SG_FORWARDED_HEADER ": %s\r\n", (int)req->method.len,
                     req->method.base, (int)base.len, base.base, (int)req->path.len, req->path.base, (int)host.len, host.base,
                     (unsigned)port, sg_deployment_instance(server->deployment));
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

/* Sends the read to `url` (the exchange's state reset). Returns 0, or -1 when the URL cannot be
 * forwarded to (http:// only). */
static int ask(sg_fwd_t *fwd, h2o_req_t *req, const char *url)
{
    sg_loop_t *loop = sg_loop_of(req);
    struct st_sg_forward_loop_t *state = loop->forward;
    h2o_iovec_t host, base;
    uint16_t port;
    if (split_url(url, &host, &port, &base) != 0)
        return -1;
    fwd->status = 0;
    fwd->headers = (h2o_headers_t){NULL, 0, 0};
    fwd->body_len = 0;
    fwd->request = request_text(fwd, req, host, port, base);
    h2o_socketpool_t *pool = pool_for(state, loop->ctx.loop, url, host, port);
    h2o_http1client_connect_with_pool(&fwd->client, fwd, &state->client_ctx, pool, on_connect);
    return 0;
}

/* Forwards the read to route->owner_url (or, with no owner known, to a standby). Takes tq. */
static void forward(h2o_req_t *req, sg_tq_t *tq, const sg_placement_route_t *route, int64_t wait_ms)
{
    sg_server_t *server = sg_loop_of(req)->server;
    sg_fwd_t *fwd = sg_calloc(1, sizeof(*fwd));
    h2o_mem_init_pool(&fwd->pool);
    fwd->tq = tq;
    fwd->standby = route->role == SG_ROLE_STANDBY;
    fwd->wait_ms = wait_ms;
    fwd->started_ms = sg_now_ms();
    const char *url = route->owner_url;
    snprintf(fwd->owner, sizeof(fwd->owner), "%s", route->owner);
    if (url[0] == '\0') {
        url = route->standby_url;
        snprintf(fwd->owner, sizeof(fwd->owner), "%s", route->standby);
    } else {
        snprintf(fwd->standby_url, sizeof(fwd->standby_url), "%s", route->standby_url);
        snprintf(fwd->standby_name, sizeof(fwd->standby_name), "%s", route->standby);
    }
    sg_park_start(&fwd->park, &fwd_park, req, &loop_forward(req)->parked, &server->table_waiters);
    sg_park_set_deadline(&fwd->park, wait_ms + SG_FORWARD_MARGIN_MS);
    if (ask(fwd, req, url) != 0)
        owner_failed(fwd, "it advertises a URL this instance cannot forward to (http:// only)");
}

void sg_tables_route(h2o_req_t *req, sg_tq_t *tq, int64_t wait_ms)
{
    sg_server_t *server = sg_loop_of(req)->server;
    const char *table = tq->table->name; /* config memory: outlives tq */
    sg_placement_route_t route;
    if (sg_placement_route(server->placement, tq->table_index, tq->key, tq->keylen, &route) != 0) {
        sg_tq_free(tq);
        sg_problem(req, SG_PROBLEM_NOT_READY, NULL, "table %s: the partitions of its topic are not known yet", table);
        return;
    }
    tq->partition = route.partition;
    int forwarded = sg_http_header(req, H2O_STRLIT(SG_FORWARDED_HEADER)).base != NULL;
    const char *instance = sg_deployment_instance(server->deployment);
    if (route.role == SG_ROLE_OWNER || (route.role == SG_ROLE_STANDBY && (forwarded || route.owner_url[0] == '\0'))) {
        sg_http_add_header(req, H2O_STRLIT(SG_SERVED_BY_HEADER), instance, strlen(instance));
        sg_tq_begin(req, tq, wait_ms);
        return;
    }
    if (forwarded) { /* one hop only */
        sg_tq_free(tq);
        sg_problem(req, SG_PROBLEM_PARTITION_MOVED, NULL,
                   "table %s: partition %d is not kept by this instance (%s) any more; its ownership is moving", table,
                   (int)route.partition, instance);
        return;
    }
    if (route.owner_url[0] == '\0' && (route.standby_url[0] == '\0' || tq->sse)) {
        sg_tq_free(tq);
        sg_problem(req, SG_PROBLEM_OWNER_UNAVAILABLE, NULL, "table %s: partition %d has no live owner known to this instance yet",
                   table, (int)route.partition);
        return;
    }
    if (tq->sse) { /* a stream is served where the partition is kept */
        h2o_iovec_t location = h2o_concat(&req->pool, h2o_iovec_init(route.owner_url, strlen(route.owner_url)), req->path);
        sg_tq_free(tq);
        sg_http_add_header(req, H2O_STRLIT("location"), location.base, location.len);
        sg_http_respond(req, 307, NULL, "", 0);
        return;
    }
    forward(req, tq, &route, wait_ms);
}

/* --- the feature ------------------------------------------------------------------------------ */

static void init_loop(sg_loop_t *loop)
{
    struct st_sg_forward_loop_t *state = sg_calloc(1, sizeof(*state));
    h2o_linklist_init_anchor(&state->parked);
    /* An inactivity bound for one exchange; the read's own deadline bounds the whole of it. */
    h2o_timeout_init(loop->ctx.loop, &state->io_timeout, (uint64_t)(loop->server->conf->limits.token_wait_max_ms + SG_FORWARD_MARGIN_MS));
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
