/*
 * Watches: Accept: text/event-stream on a point read. Once the read's conditions hold, the stream
 * sends the row (`update` with the value, or `delete`) and then an event for every committed
 * change of it, each with the view's token as its id, so Last-Event-ID resumes: the resumed watch
 * waits until the view covers that token and skips a current row the client has already seen.
 *
 * Changes are seen at commit granularity, and coalesced while an event is being sent (the row is
 * read again once the send completes), so a slow client gets the latest state, not a backlog.
 * Watches end after SG_WATCH_MS (EventSource reconnects with Last-Event-ID) or when the gateway
 * stops.
 */
#include <stdlib.h>

#include "tables_int.h"

#define SG_WATCH_MS (60 * 1000)

void sg_watch_close(sg_tq_t *tq)
{
    /* The park ends first: closing the stream can end the request at once (an HTTP/1.0 stream
     * ends with its connection, synchronously), and the park's guard would then free tq. */
    sg_sse_t *sse = tq->sse_writer;
    sg_park_finish(&tq->park);
    sg_tq_free(tq);
    sg_sse_close(sse);
}

static void send_event(sg_tq_t *tq, const char *kind, const sg_token_t *token, const char *value, size_t value_len)
{
    char *id = sg_malloc(SG_TOKEN_MAX_TEXT + 1);
    size_t id_len = sg_token_encode(token, id, SG_TOKEN_MAX_TEXT + 1);
    sg_sse_event(tq->sse_writer, kind, id, id_len <= SG_TOKEN_MAX_TEXT ? id_len : 0, value, value_len);
    free(id);
}

int sg_watch_check(sg_tq_t *tq)
{
    if (sg_sse_busy(tq->sse_writer)) {
        tq->dirty = 1; /* looked at again when the send completes */
        return 1;
    }
    sg_server_t *server = tq->park.loop->server;
    char err[256];
    void *value = NULL;
    size_t value_len = 0;
    sg_table_version_t version;
    sg_token_t *view = sg_token_create();
    int rc =
        sg_tables_get(server->tables, tq->table->name, tq->key, tq->keylen, &value, &value_len, &version, view, err, sizeof(err));
    if (rc < 0) {
        sg_log_error("table %s: %s (closing a watch)", tq->table->name, err);
        sg_token_destroy(view);
        sg_watch_close(tq);
        return 0;
    }
    int present = rc == 0;
    int changed = !tq->sent_any || present != tq->sent_present || (present && version.etag != tq->sent_etag);
    if (changed && tq->resumed && !tq->sent_any) {
        /* Resumed: a row whose record the client's last event already covered is not news. */
        int64_t seen = -1;
        if (present && sg_token_get(tq->wanted, tq->table->topic, version.partition, &seen, NULL) == 0 && version.offset <= seen)
            changed = 0;
        tq->sent_any = 1;
        tq->sent_present = present;
        tq->sent_etag = present ? version.etag : 0;
    }
    if (changed) {
        if (tq->wanted != NULL)
            sg_token_merge(view, tq->wanted);
        if (present)
            send_event(tq, "update", view, value, value_len);
        else
            send_event(tq, "delete", view, "null", 4);
        tq->sent_any = 1;
        tq->sent_present = present;
        tq->sent_etag = present ? version.etag : 0;
    }
    free(value);
    sg_token_destroy(view);
    return 1;
}

static void on_idle(void *ctx)
{
    sg_tq_t *tq = ctx;
    if (tq->dirty) {
        tq->dirty = 0;
        sg_watch_check(tq);
    }
}

void sg_watch_start(sg_tq_t *tq, const sg_token_t *view)
{
    h2o_req_t *req = tq->park.req;
    sg_tables_add_read_headers(req, view, tq->table->topic);
    tq->sse_writer = sg_sse_start(req, on_idle, tq);
    sg_park_set_deadline(&tq->park, SG_WATCH_MS);
    if (sg_watch_check(tq) && !sg_sse_busy(tq->sse_writer)) {
        /* Nothing new for a resumed client: a comment, so the stream's headers leave now. */
        sg_sse_comment(tq->sse_writer, "resumed");
    }
}
