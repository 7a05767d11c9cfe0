/*
 * Scans of partitioned tables (DESIGN §8; README, "Scale-out"): every partition's rows are with
 * its owner, so a scan asks every instance that owns some (this one included, over the same HTTP
 * path, so its waits and conditions are a plain read's) for one page of its partitions only
 * (`partitions=` on a forwarded request), and merges the pages in key order.
 *
 * Each part answers up to `limit` rows after the cursor, and a `next` when it has more: its
 * frontier, the last key it looked at. The merged page holds the rows up to the smallest
 * frontier (every part has returned every row of its partitions up to it), the first `limit` of
 * them; its cursor is the last row returned, or the smallest frontier when that cut the page. A
 * cursor is a table key, the same on every instance, so the next page starts after it
 * everywhere: every row is returned once across pages, whichever instance is asked for each.
 * A part that answers anything but 200 is relayed as the scan's answer (a 503 not-caught-up with
 * its token, a 400 for a bad cursor); a part that cannot be reached makes it 503 owner-unavailable.
 * Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "exchange.h"
#include "respond.h"
#include "sg_deployment.h"
#include "sg_placement.h"
#include "tables_int.h"

#define SG_SCATTER_MARGIN_MS 2000

typedef struct st_sg_scatter_t sg_scatter_t;

typedef struct st_sg_scatter_part_t {
    sg_exchange_t exchange;
    sg_scatter_t *scatter;
    char url[SG_PLACEMENT_URL_MAX];
    char *partitions; /* "partitions=0,3,7" */
    const char *error;
} sg_scatter_part_t;

struct st_sg_scatter_t {
    sg_park_t park;
    sg_tq_t *tq; /* the scan's parameters; owned */
    sg_scatter_part_t *parts;
    size_t n_parts, n_done;
};

typedef struct {
    uint8_t key[SG_TABLE_MAX_KEY];
    size_t keylen;
    json_t *row; /* borrowed from its part's document */
} sg_merged_row_t;

static void scatter_free(sg_scatter_t *scatter)
{
    for (size_t i = 0; i < scatter->n_parts; ++i) {
        sg_exchange_dispose(&scatter->parts[i].exchange);
        free(scatter->parts[i].partitions);
    }
    free(scatter->parts);
    if (scatter->tq != NULL)
        sg_tq_free(scatter->tq);
    free(scatter);
}

static int keycmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int by_key(const void *a, const void *b)
{
    const sg_merged_row_t *x = a, *y = b;
    return keycmp(x->key, x->keylen, y->key, y->keylen);
}

/* A row's key bytes, as the part wrote it ("key" text or "key_base64url"). Returns 0 or -1. */
static int row_key(json_t *row, sg_merged_row_t *out)
{
    json_t *text = json_object_get(row, "key");
    if (json_is_string(text) && json_string_length(text) <= SG_TABLE_MAX_KEY) {
        out->keylen = json_string_length(text);
        memcpy(out->key, json_string_value(text), out->keylen);
        return 0;
    }
    json_t *encoded = json_object_get(row, "key_base64url");
    if (!json_is_string(encoded) || json_string_length(encoded) > sg_b64url_encoded_len(SG_TABLE_MAX_KEY))
        return -1;
    long len = sg_b64url_decode(json_string_value(encoded), json_string_length(encoded), out->key, NULL, 0);
    if (len < 0)
        return -1;
    out->keylen = (size_t)len;
    return 0;
}

/* Every part answered 200: the merged page. Returns 0, or -1 when a part's answer is malformed. */
static int merge(sg_scatter_t *scatter, h2o_req_t *req)
{
    sg_server_t *server = scatter->park.loop->server;
    const sg_table_conf_t *table = scatter->tq->table;
    json_t **docs = sg_calloc(scatter->n_parts, sizeof(*docs));
    sg_merged_row_t *rows = NULL;
    size_t n_rows = 0;
    uint8_t *frontier = sg_malloc(SG_TABLE_MAX_KEY), *key = sg_malloc(SG_TABLE_MAX_KEY);
    long frontier_len = -1; /* none: every part is done */
    sg_token_t *token = sg_token_create();
    int rc = 0;
    for (size_t i = 0; i < scatter->n_parts && rc == 0; ++i) {
        const sg_exchange_t *exchange = &scatter->parts[i].exchange;
        docs[i] = json_loadb(exchange->body != NULL ? exchange->body : "", exchange->body_len, 0, NULL);
        json_t *part_rows = json_object_get(docs[i], "rows"), *next = json_object_get(docs[i], "next");
        if (!json_is_array(part_rows) || (next != NULL && !json_is_null(next) && !json_is_string(next))) {
            rc = -1;
            break;
        }
        rows = sg_reallocarray(rows, n_rows + json_array_size(part_rows) + 1, sizeof(*rows));
        size_t k;
        json_t *row;
        json_array_foreach(part_rows, k, row)
        {
            rows[n_rows].row = row;
            if (row_key(row, &rows[n_rows]) != 0)
                rc = -1;
            ++n_rows;
        }
        if (json_is_string(next)) {
            long len = sg_tables_cursor_key(server->tables, table->name, json_string_value(next), key);
            if (len < 0)
                rc = -1;
            else if (frontier_len < 0 || keycmp(key, (size_t)len, frontier, (size_t)frontier_len) < 0) {
                memcpy(frontier, key, (size_t)len);
                frontier_len = len;
            }
        }
        h2o_iovec_t text = sg_exchange_header(exchange, "consistency-token");
        char err[128];
        sg_token_t *part_token = text.base != NULL ? sg_token_decode(text.base, text.len, err, sizeof(err)) : NULL;
        if (part_token != NULL)
            sg_token_merge(token, part_token);
        sg_token_destroy(part_token);
    }
    if (rc == 0) {
        qsort(rows, n_rows, sizeof(*rows), by_key);
        size_t candidates = n_rows;
        while (frontier_len >= 0 && candidates > 0 &&
               keycmp(rows[candidates - 1].key, rows[candidates - 1].keylen, frontier, (size_t)frontier_len) > 0)
            --candidates;
        size_t page = candidates < scatter->tq->scan.limit ? candidates : scatter->tq->scan.limit;
        json_t *out_rows = json_array();
        for (size_t i = 0; i < page; ++i)
            json_array_append(out_rows, rows[i].row);
        char *cursor = NULL;
        if (candidates > page)
            cursor = sg_tables_cursor(server->tables, table->name, rows[page - 1].key, rows[page - 1].keylen);
        else if (frontier_len >= 0) /* a part has more past its frontier: go on from there */
            cursor = sg_tables_cursor(server->tables, table->name, frontier, (size_t)frontier_len);
        json_t *doc = json_pack("{s:o, s:o}", "rows", out_rows, "next", cursor != NULL ? json_string(cursor) : json_null());
        char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        free(cursor);
        if (scatter->tq->wanted != NULL)
            sg_token_merge(token, scatter->tq->wanted);
        sg_tables_add_read_headers(req, token, table->topic);
        sg_http_respond(req, 200, "application/json", text, strlen(text));
        free(text);
    }
    for (size_t i = 0; i < scatter->n_parts; ++i)
        json_decref(docs[i]);
    free(docs);
    free(rows);
    free(frontier);
    free(key);
    sg_token_destroy(token);
    return rc;
}

/* Every part has answered (or failed): the scan's answer. */
static void complete(sg_scatter_t *scatter)
{
    h2o_req_t *req = sg_park_finish(&scatter->park);
    if (req == NULL) {
        scatter_free(scatter);
        return;
    }
    for (size_t i = 0; i < scatter->n_parts; ++i)
        if (scatter->parts[i].error != NULL) {
            sg_problem(req, SG_PROBLEM_OWNER_UNAVAILABLE, NULL, "the instance at %s, which keeps %s of table %s, could not answer: %s",
                       scatter->parts[i].url, scatter->parts[i].partitions, scatter->tq->table->name, scatter->parts[i].error);
            scatter_free(scatter);
            return;
        }
    for (size_t i = 0; i < scatter->n_parts; ++i)
        if (scatter->parts[i].exchange.status != 200) {
            sg_exchange_relay(&scatter->parts[i].exchange, req);
            scatter_free(scatter);
            return;
        }
    if (merge(scatter, req) != 0)
        sg_problem(req, SG_PROBLEM_OWNER_UNAVAILABLE, NULL, "an instance answered a part of the scan of table %s with a malformed page",
                   scatter->tq->table->name);
    scatter_free(scatter);
}

static void on_part(sg_exchange_t *exchange, const char *error)
{
    sg_scatter_part_t *part = exchange->data;
    part->error = error;
    if (++part->scatter->n_done == part->scatter->n_parts)
        complete(part->scatter);
}

static void cancel_all(sg_scatter_t *scatter)
{
    for (size_t i = 0; i < scatter->n_parts; ++i)
        sg_exchange_cancel(&scatter->parts[i].exchange);
}

static void on_scatter_deadline(sg_park_t *park)
{
    sg_scatter_t *scatter = H2O_STRUCT_FROM_MEMBER(sg_scatter_t, park, park);
    cancel_all(scatter);
    sg_problem(sg_park_finish(park), SG_PROBLEM_OWNER_UNAVAILABLE, NULL,
               "the instances that keep the partitions of table %s did not all answer in time", scatter->tq->table->name);
    scatter_free(scatter);
}

static void on_scatter_drain(sg_park_t *park)
{
    sg_scatter_t *scatter = H2O_STRUCT_FROM_MEMBER(sg_scatter_t, park, park);
    cancel_all(scatter);
    sg_problem(sg_park_finish(park), SG_PROBLEM_SHUTTING_DOWN, NULL, "the gateway is shutting down; retry on another instance");
    scatter_free(scatter);
}

static void on_scatter_gone(sg_park_t *park)
{
    sg_scatter_t *scatter = H2O_STRUCT_FROM_MEMBER(sg_scatter_t, park, park);
    cancel_all(scatter);
    scatter_free(scatter);
}

static const sg_park_kind_t scatter_park = {
    .metric = SG_PARKED_TABLE, .on_deadline = on_scatter_deadline, .on_drain = on_scatter_drain, .on_gone = on_scatter_gone};

/* Adds partition p to the part asking `url`. */
static void add_partition(sg_scatter_t *scatter, const char *url, int32_t partition)
{
    sg_scatter_part_t *part = NULL;
    for (size_t i = 0; i < scatter->n_parts && part == NULL; ++i)
        if (strcmp(scatter->parts[i].url, url) == 0)
            part = &scatter->parts[i];
    char number[16];
    snprintf(number, sizeof(number), "%d", (int)partition);
    if (part == NULL) {
        scatter->parts = sg_reallocarray(scatter->parts, scatter->n_parts + 1, sizeof(*scatter->parts));
        part = &scatter->parts[scatter->n_parts++];
        memset(part, 0, sizeof(*part));
        part->scatter = scatter;
        snprintf(part->url, sizeof(part->url), "%s", url);
        part->partitions = sg_malloc(16 + 12);
        snprintf(part->partitions, 28, "partitions=%s", number);
        return;
    }
    size_t len = strlen(part->partitions);
    part->partitions = sg_realloc(part->partitions, len + strlen(number) + 2);
    snprintf(part->partitions + len, strlen(number) + 2, ",%s", number);
}

void sg_tables_scatter(h2o_req_t *req, sg_tq_t *tq, int64_t wait_ms)
{
    sg_loop_t *loop = sg_loop_of(req);
    sg_server_t *server = loop->server;
    const char *table = tq->table->name;
    int32_t n = sg_placement_partitions(server->placement, tq->table_index);
    if (n <= 0) {
        sg_tq_discard(req, tq);
        sg_problem(req, SG_PROBLEM_NOT_READY, NULL, "table %s: the partitions of its topic are not known yet", table);
        return;
    }
    const char *self = sg_deployment_advertise(server->deployment);
    sg_scatter_t *scatter = sg_calloc(1, sizeof(*scatter));
    scatter->tq = tq;
    for (int32_t p = 0; p < n; ++p) {
        sg_placement_route_t route;
        sg_placement_partition(server->placement, tq->table_index, p, &route);
        const char *url = route.role == SG_ROLE_OWNER                                ? self
                          : route.owner_url[0] != '\0'                               ? route.owner_url
                          : route.role == SG_ROLE_STANDBY                            ? self
                          : route.standby_url[0] != '\0'                             ? route.standby_url
                                                                                     : NULL;
        if (url == NULL) {
            scatter->tq = NULL;
            scatter_free(scatter);
            sg_tq_discard(req, tq);
            sg_problem(req, SG_PROBLEM_OWNER_UNAVAILABLE, NULL, "table %s: partition %d has no live owner known to this instance yet",
                       table, (int)p);
            return;
        }
        add_partition(scatter, url, p);
    }
    sg_park_start(&scatter->park, &scatter_park, req, sg_exchange_parked(loop), &server->table_waiters);
    scatter->park.holds_pending = tq->park.holds_pending; /* the scan's limits.pending slot, released when it ends */
    tq->park.holds_pending = 0;
    sg_park_set_deadline(&scatter->park, wait_ms + SG_SCATTER_MARGIN_MS);
    for (size_t i = 0; i < scatter->n_parts; ++i)
        sg_exchange_init(&scatter->parts[i].exchange, on_part, &scatter->parts[i]);
    size_t n_parts = scatter->n_parts;
    for (size_t i = 0; i < n_parts; ++i) /* a part may fail at once: the last one completes the scan */
        if (sg_exchange_start(&scatter->parts[i].exchange, req, scatter->parts[i].url, scatter->parts[i].partitions) != 0)
            on_part(&scatter->parts[i].exchange, "it advertises a URL this instance cannot reach (http:// only)");
}
