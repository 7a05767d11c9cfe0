/*
 * GET /tables/{table}/{key}: point reads of materialized tables, from the loop thread.
 *
 * The answer is read from one RocksDB snapshot together with the view's position, so its
 * Consistency-Token is exactly what the answer reflects. A request's own token is honoured
 * strictly: while the view has not applied what the token names (for the table's topic), the
 * request waits on its loop (limits.token_wait, or Prefer: wait=N up to limits.token_wait_max),
 * woken by the materializer's progress (no polling); still behind at the deadline: 503
 * not-caught-up with the view's token. It is never answered from an older state.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"
#include "server.h"
#include "sg_path.h"
#include "sg_table.h"
#include "sg_token.h"

static const sg_table_conf_t *find_table(const sg_conf_t *conf, const char *name, size_t len)
{
    for (size_t i = 0; i < conf->n_tables; ++i)
        if (strlen(conf->tables[i].name) == len && memcmp(conf->tables[i].name, name, len) == 0)
            return &conf->tables[i];
    return NULL;
}

/* Percent-decodes a key into the pool. Returns its length, or -1 (bad escape, %00, empty). */
static ssize_t decode_key(h2o_req_t *req, const char *text, size_t len, char **out)
{
    size_t n;
    char *decoded = sg_path_decode(text, len, &n);
    if (decoded == NULL || n == 0) {
        free(decoded);
        return -1;
    }
    *out = h2o_strdup(&req->pool, decoded, n).base;
    free(decoded);
    return (ssize_t)n;
}

static int topic_is(const char *topic, void *arg)
{
    return strcmp(topic, (const char *)arg) == 0;
}

static void add_token(h2o_req_t *req, const sg_token_t *token)
{
    char text[4096];
    size_t len = sg_token_encode(token, text, sizeof(text));
    if (len > 0 && len < sizeof(text))
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("consistency-token"), 0, NULL,
                              h2o_strdup(&req->pool, text, len).base, len);
}

typedef struct st_sg_table_wait_t {
    h2o_linklist_t link; /* in loop->table_waiters */
    sg_loop_t *loop;
    h2o_req_t *req;
    struct st_sg_table_wait_t **guard;
    const sg_table_conf_t *table;
    size_t table_index;
    char *key; /* in req's pool */
    size_t keylen;
    sg_token_t *wanted;
    h2o_timeout_entry_t timeout_entry;
} sg_table_wait_t;

typedef struct st_sg_progress_msg_t {
    h2o_multithread_message_t message;
    size_t table_index;
} sg_progress_msg_t;

/* Answers the read if the view has reached `wanted` (or if `final`, with 503). Returns 1 when
 * the request was answered, 0 when it should wait. */
static int serve(h2o_req_t *req, const sg_table_conf_t *table, const char *key, size_t keylen, const sg_token_t *wanted,
                 int final)
{
    sg_server_t *server = sg_loop_of(req)->server;
    char err[256];
    sg_token_t *view = sg_token_create();
    void *value = NULL;
    size_t value_len = 0;
    sg_table_version_t version;
    int answered = 1;
    int rc = sg_tables_get(server->tables, table->name, key, keylen, &value, &value_len, &version, view, err,
                           sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "streamgate: table %s: %s\n", table->name, err);
        sg_problem_send(req, 503, "Service Unavailable", "store-unavailable", "Store Unavailable", NULL,
                        "the table could not be read");
        goto done;
    }
    if (wanted != NULL && !sg_token_covers(view, wanted, topic_is, table->topic)) {
        if (!final) {
            answered = 0;
            goto done;
        }
        add_token(req, view);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        sg_problem_send(req, 503, "Service Unavailable", "not-caught-up", "Not Caught Up", "Consistency-Token",
                        "table %s has not yet applied everything the token names", table->name);
        goto done;
    }
    if (wanted != NULL)
        sg_token_merge(view, wanted); /* one session token across instances and tables */
    add_token(req, view);
    int64_t stream_time = 0;
    for (size_t i = 0; i < sg_token_count(view); ++i) {
        const char *topic;
        int32_t partition;
        int64_t offset, entry_time;
        sg_token_entry(view, i, &topic, &partition, &offset, &entry_time);
        if (strcmp(topic, table->topic) == 0 && entry_time > stream_time)
            stream_time = entry_time;
    }
    char stream_time_text[24];
    int n = snprintf(stream_time_text, sizeof(stream_time_text), "%" PRId64, stream_time);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("stream-time"), 0, NULL,
                          h2o_strdup(&req->pool, stream_time_text, (size_t)n).base, (size_t)n);
    if (rc == 1) {
        sg_problem_send(req, 404, "Not Found", "no-such-row", "No Such Row", "key", "table %s has no row for this key",
                        table->name);
        goto done;
    }
    char etag[24];
    n = snprintf(etag, sizeof(etag), "\"%016" PRIx64 "\"", version.etag);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, h2o_strdup(&req->pool, etag, (size_t)n).base,
                   (size_t)n);
    ssize_t inm = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (inm >= 0 && h2o_strstr(req->headers.entries[inm].value.base, req->headers.entries[inm].value.len, etag,
                               (size_t)n) != SIZE_MAX) {
        sg_http_respond(req, 304, "Not Modified", NULL, "", 0);
        goto done;
    }
    sg_http_respond(req, 200, "OK", "application/json", value, value_len);
done:
    free(value);
    sg_token_destroy(view);
    return answered;
}

/* Leaves the wait; answers it (final: 503 if still behind) unless the client is gone. */
static void wait_finish(sg_table_wait_t *wait, int final)
{
    h2o_req_t *req = wait->req;
    if (req != NULL) {
        /* Detached while we may answer, so whatever H2O does during the response cannot free
         * the wait under us; re-attached if the view is still behind. */
        *wait->guard = NULL;
        if (!serve(req, wait->table, wait->key, wait->keylen, wait->wanted, final)) {
            *wait->guard = wait;
            return;
        }
    }
    h2o_linklist_unlink(&wait->link);
    if (h2o_timeout_is_linked(&wait->timeout_entry))
        h2o_timeout_unlink(&wait->timeout_entry);
    atomic_fetch_sub(&wait->loop->server->table_waiters, 1);
    sg_token_destroy(wait->wanted);
    free(wait);
}

static void on_wait_timeout(h2o_timeout_entry_t *entry)
{
    wait_finish(H2O_STRUCT_FROM_MEMBER(sg_table_wait_t, timeout_entry, entry), 1);
}

static void on_wait_guard_dispose(void *p)
{
    sg_table_wait_t **guard = p;
    if (*guard != NULL) {
        (*guard)->req = NULL; /* the client is gone: just leave */
        wait_finish(*guard, 1);
    }
}

void sg_tables_on_progress(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    sg_loop_t *loop = H2O_STRUCT_FROM_MEMBER(sg_loop_t, table_progress, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        sg_progress_msg_t *msg = H2O_STRUCT_FROM_MEMBER(sg_progress_msg_t, message.link, messages->next);
        h2o_linklist_unlink(&msg->message.link);
        for (h2o_linklist_t *at = loop->table_waiters.next; at != &loop->table_waiters;) {
            sg_table_wait_t *wait = H2O_STRUCT_FROM_MEMBER(sg_table_wait_t, link, at);
            at = at->next;
            if (wait->table_index == msg->table_index)
                wait_finish(wait, 0);
        }
        free(msg);
    }
}

/* Materializer thread: a table committed a batch; wake the loops only if someone waits. */
void sg_tables_progress_cb(void *ctx, size_t table_index)
{
    sg_server_t *server = ctx;
    if (atomic_load(&server->table_waiters) == 0)
        return;
    for (size_t i = 0; i < server->n_loops; ++i) {
        sg_progress_msg_t *msg = calloc(1, sizeof(*msg));
        if (msg == NULL)
            abort();
        msg->table_index = table_index;
        h2o_multithread_send_message(&server->loops[i].table_progress, &msg->message);
    }
}

void sg_tables_handle(h2o_req_t *req, const char *path, size_t path_len)
{
    sg_loop_t *loop = sg_loop_of(req);
    sg_server_t *server = loop->server;
    const char *rest = path + sizeof("/tables/") - 1;
    size_t rest_len = path_len - (sizeof("/tables/") - 1);
    const char *slash = memchr(rest, '/', rest_len);
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        sg_problem_method_not_allowed(req, "GET, HEAD");
        return;
    }
    const sg_table_conf_t *table = find_table(server->conf, rest, slash ? (size_t)(slash - rest) : rest_len);
    if (table == NULL || server->tables == NULL) {
        sg_problem_send(req, 404, "Not Found", "unknown-table", "Unknown Table", "table", "no table %.*s is configured",
                        (int)(slash ? (size_t)(slash - rest) : rest_len > 100 ? 100 : rest_len), rest);
        return;
    }
    if (slash == NULL) {
        sg_problem_send(req, 404, "Not Found", "not-found", "Not Found", NULL,
                        "table scans are not served yet; read a row with /tables/%s/{key}", table->name);
        return;
    }
    char *key;
    ssize_t keylen = decode_key(req, slash + 1, rest_len - (size_t)(slash + 1 - rest), &key);
    if (keylen < 0 || keylen > 4096) {
        sg_problem_send(req, 400, "Bad Request", "invalid-key", "Invalid Key", "key",
                        "the key must be 1..4096 bytes of valid percent-encoding without %%00");
        return;
    }

    /* The client's token: strict; only its components for this table's topic matter. */
    char err[256];
    sg_token_t *wanted = NULL;
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("consistency-token"), -1);
    if (at >= 0) {
        h2o_iovec_t text = req->headers.entries[at].value;
        if ((wanted = sg_token_decode(text.base, text.len, err, sizeof(err))) == NULL) {
            sg_problem_send(req, 400, "Bad Request", "invalid-token", "Invalid Consistency-Token", "Consistency-Token",
                            "%s", err);
            return;
        }
    }
    const sg_conf_t *conf = server->conf;
    int async_ignored = 0;
    int64_t wait_ms = conf->limits.token_wait_ms;
    sg_http_parse_prefer(req, &async_ignored, &wait_ms);
    if (wait_ms > conf->limits.token_wait_max_ms)
        wait_ms = conf->limits.token_wait_max_ms;
    int can_wait = wait_ms > 0 && atomic_load(&server->table_waiters) < (long)conf->limits.pending;
    if (serve(req, table, key, (size_t)keylen, wanted, !can_wait)) {
        sg_token_destroy(wanted);
        return;
    }
    /* Behind the token: wait on this loop until the materializer's progress or the deadline. */
    sg_table_wait_t *wait = calloc(1, sizeof(*wait));
    if (wait == NULL)
        abort();
    wait->loop = loop;
    wait->req = req;
    wait->table = table;
    wait->table_index = (size_t)(table - conf->tables);
    wait->key = key;
    wait->keylen = (size_t)keylen;
    wait->wanted = wanted;
    h2o_linklist_insert(&loop->table_waiters, &wait->link);
    atomic_fetch_add(&server->table_waiters, 1);
    wait->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*wait->guard), on_wait_guard_dispose);
    *wait->guard = wait;
    wait->timeout_entry.cb = on_wait_timeout;
    h2o_timeout_link(loop->ctx.loop, sg_loop_wait_timeout(loop, wait_ms), &wait->timeout_entry);
    /* Progress may have landed between the read and the wait: look once more. */
    wait_finish(wait, 0);
}
