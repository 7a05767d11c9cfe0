/*
 * See sse.h. Two buffers: the one H2O is sending (it may point into it until proceed) and the one
 * collecting what is written meanwhile. The server counts open streams so that shutdown can wait
 * until the final chunk of each has left. A send that H2O has not completed after
 * limits.write_timeout means the client fell behind (on HTTP/2 a stream can stall on its own, its
 * flow-control window closed, while the connection still moves): its connection is closed.
 */
#include "sse.h"

#include <string.h>

#include "gateway_int.h"
#include "respond.h"

struct st_sg_sse_t {
    h2o_req_t *req;
    h2o_generator_t generator;
    sg_server_t *server;
    sg_sse_idle_cb on_idle;
    void *ctx;
    h2o_iovec_t sending; /* heap; in flight while busy (and after the final send) */
    char *queued;        /* heap; written while busy */
    size_t queued_len, queued_cap;
    int busy;
    int closing;               /* send FINAL with the next send */
    int done;                  /* FINAL sent */
    h2o_timeout_entry_t stall; /* armed while a send is in flight */
};

static void flush(sg_sse_t *sse)
{
    if (sse->busy || sse->done || (sse->queued_len == 0 && !sse->closing))
        return;
    free(sse->sending.base);
    sse->sending = h2o_iovec_init(sse->queued, sse->queued_len);
    sse->queued = NULL;
    sse->queued_len = sse->queued_cap = 0;
    sse->busy = 1;
    sse->done = sse->closing;
    /* Unlinked when H2O asks for more (on_proceed) or, after the final send, when the request goes. */
    sg_loop_t *loop = sg_loop_of(sse->req);
    h2o_timeout_link(loop->ctx.loop, sg_loop_wait_timeout(loop, sse->server->conf->limits.write_timeout_ms), &sse->stall);
    h2o_send(sse->req, &sse->sending, sse->sending.len > 0 ? 1 : 0,
             sse->closing ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_stall(h2o_timeout_entry_t *entry)
{
    sg_sse_t *sse = H2O_STRUCT_FROM_MEMBER(sg_sse_t, stall, entry);
    sg_conns_close_stalled(sse->req, "an event stream's send made no progress within limits.write_timeout");
}

static void on_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    sg_sse_t *sse = H2O_STRUCT_FROM_MEMBER(sg_sse_t, generator, generator);
    sse->busy = 0;
    if (h2o_timeout_is_linked(&sse->stall))
        h2o_timeout_unlink(&sse->stall);
    if (sse->done)
        return;
    if (sse->queued_len > 0 || sse->closing)
        flush(sse);
    else if (sse->on_idle != NULL)
        sse->on_idle(sse->ctx);
}

static void on_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    /* the client went away; the pool frees the writer, and parks learn it from their guards */
}

static void on_dispose(void *p)
{
    sg_sse_t *sse = p;
    if (h2o_timeout_is_linked(&sse->stall))
        h2o_timeout_unlink(&sse->stall);
    free(sse->sending.base);
    free(sse->queued);
    atomic_fetch_sub(&sse->server->streams, 1);
}

sg_sse_t *sg_sse_start(h2o_req_t *req, sg_sse_idle_cb on_idle, void *ctx)
{
    sg_server_t *server = sg_loop_of(req)->server;
    sg_sse_t *sse = h2o_mem_alloc_shared(&req->pool, sizeof(*sse), on_dispose);
    *sse = (sg_sse_t){.req = req,
                      .generator = {on_proceed, on_stop},
                      .server = server,
                      .on_idle = on_idle,
                      .ctx = ctx,
                      .stall = {.cb = on_stall}};
    atomic_fetch_add(&server->streams, 1);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    sg_cors_apply(server->conf, req);
    h2o_start_response(req, &sse->generator);
    return sse;
}

static void append(sg_sse_t *sse, const char *data, size_t len)
{
    if (sse->queued_len + len > sse->queued_cap) {
        size_t cap = sse->queued_cap > 0 ? sse->queued_cap : 256;
        while (cap < sse->queued_len + len)
            cap *= 2;
        sse->queued = sg_realloc(sse->queued, cap);
        sse->queued_cap = cap;
    }
    memcpy(sse->queued + sse->queued_len, data, len);
    sse->queued_len += len;
}

void sg_sse_event(sg_sse_t *sse, const char *name, const char *id, size_t id_len, const char *data, size_t data_len)
{
    if (sse->closing)
        return;
    append(sse, H2O_STRLIT("event: "));
    append(sse, name, strlen(name));
    if (id != NULL) {
        append(sse, H2O_STRLIT("\nid: "));
        append(sse, id, id_len);
    }
    append(sse, H2O_STRLIT("\ndata: "));
    size_t start = 0;
    for (size_t i = 0; i < data_len; ++i) {
        if (data[i] != '\n' && data[i] != '\r')
            continue;
        append(sse, data + start, i - start);
        if (data[i] == '\n')
            append(sse, H2O_STRLIT("\ndata: "));
        start = i + 1;
    }
    append(sse, data + start, data_len - start);
    append(sse, H2O_STRLIT("\n\n"));
    flush(sse);
}

void sg_sse_comment(sg_sse_t *sse, const char *text)
{
    if (sse->closing)
        return;
    append(sse, H2O_STRLIT(": "));
    append(sse, text, strlen(text));
    append(sse, H2O_STRLIT("\n\n"));
    flush(sse);
}

void sg_sse_close(sg_sse_t *sse)
{
    sse->closing = 1;
    sse->on_idle = NULL;
    flush(sse);
}

int sg_sse_busy(const sg_sse_t *sse)
{
    return sse->busy;
}
