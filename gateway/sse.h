/*
 * The one Server-Sent Events writer: GET /requests/{id} status streams and table watches.
 *
 * H2O allows one h2o_send in flight per response; the writer queues what is written meanwhile
 * (in one heap buffer, so a long stream does not pile events up in the request's pool) and sends
 * it when H2O asks for more. The writer lives in the request's pool: it is valid as long as the
 * request, and frees its buffers with it. Loop thread of the request only.
 */
#ifndef SG_SSE_H
#define SG_SSE_H

#include <stddef.h>

#include <h2o.h>

typedef struct st_sg_sse_t sg_sse_t;

/* Called when a send has completed and nothing is queued (a good moment to look for news). */
typedef void (*sg_sse_idle_cb)(void *ctx);

/** Starts a 200 text/event-stream response on req (add other headers first). `on_idle` may be
 * NULL. Returns the writer (owned by req's pool). */
sg_sse_t *sg_sse_start(h2o_req_t *req, sg_sse_idle_cb on_idle, void *ctx);

/** Writes one event: "event: NAME", "id: ID" when id is not NULL, and data as one "data:" line
 * per line of data (CRs dropped). Ignored once the stream is closed. */
void sg_sse_event(sg_sse_t *sse, const char *name, const char *id, size_t id_len, const char *data, size_t data_len);

/** Writes a comment line (": text"), e.g. to make the headers leave before any event. */
void sg_sse_comment(sg_sse_t *sse, const char *text);

/** Ends the stream once what is queued has been sent; on_idle is not called any more. */
void sg_sse_close(sg_sse_t *sse);

/** Whether a send is in flight (what is written now waits for it). */
int sg_sse_busy(const sg_sse_t *sse);

#endif
