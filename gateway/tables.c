/*
 * GET /tables/{table}/{key}: point reads of materialized tables, from the loop thread.
 *
 * The answer is read from one RocksDB snapshot together with the view's position, so its
 * Consistency-Token is exactly what the answer reflects. A request's own token is honoured
 * strictly: if the view has not applied what the token names (for the table's topic), the
 * request is refused with 503 not-caught-up and the view's token rather than answered from an
 * older state. (Waiting for the view to catch up is the next step; refusing at once is the
 * zero-length version of that bounded wait, and never breaks read-your-writes.)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"
#include "sg_table.h"
#include "sg_token.h"

static const sg_table_conf_t *find_table(const sg_conf_t *conf, const char *name, size_t len)
{
    for (size_t i = 0; i < conf->n_tables; ++i)
        if (strlen(conf->tables[i].name) == len && memcmp(conf->tables[i].name, name, len) == 0)
            return &conf->tables[i];
    return NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes a key into the pool. Returns its length, or -1 (bad escape, %00, empty). */
static ssize_t decode_key(h2o_req_t *req, const char *text, size_t len, char **out)
{
    char *key = h2o_mem_alloc_pool(&req->pool, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; ++i) {
        if (text[i] != '%') {
            key[n++] = text[i];
            continue;
        }
        if (i + 2 >= len)
            return -1;
        int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return -1;
        key[n++] = (char)(hi * 16 + lo);
        i += 2;
    }
    key[n] = '\0';
    *out = key;
    return n > 0 ? (ssize_t)n : -1;
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

void sg_tables_handle(h2o_req_t *req, const char *path, size_t path_len)
{
    sg_server_t *server = sg_loop_of(req)->server;
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
    sg_token_t *view = sg_token_create();
    void *value = NULL;
    size_t value_len = 0;
    sg_table_version_t version;
    int rc = sg_tables_get(server->tables, table->name, key, (size_t)keylen, &value, &value_len, &version, view, err,
                           sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "streamgate: table %s: %s\n", table->name, err);
        sg_problem_send(req, 503, "Service Unavailable", "store-unavailable", "Store Unavailable", NULL,
                        "the table could not be read");
        goto done;
    }
    if (wanted != NULL && !sg_token_covers(view, wanted, topic_is, table->topic)) {
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
    sg_token_destroy(wanted);
}
