/*
 * The operational endpoints: /healthz (the process is up), /readyz (Kafka, tables and the
 * registry are caught up, and we are not stopping) and /metrics (Prometheus text).
 *
 * The metrics are one table, a row per metric (name, type, help, where its values come from: one
 * sample, a labelled family, a histogram): adding a metric is adding a row. Values are read from
 * atomics and thread-safe getters only; per-loop counters (metrics.h) are written by their own
 * loop and summed here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"
#include "respond.h"
#include "sg_deployment.h"
#include "sg_materializer.h"
#include "sg_registry.h"
#include "sg_table.h"
#include "sg_token.h"

static void not_found(h2o_req_t *req, const char *path, size_t path_len)
{
    sg_problem(req, SG_PROBLEM_NOT_FOUND, NULL, "no resource at %.*s", (int)(path_len > 200 ? 200 : path_len), path);
}

/* Only the exact path, GET or HEAD. Returns 0 after answering otherwise. */
static int accept_request(h2o_req_t *req, const char *prefix, const char *path, size_t path_len)
{
    if (!h2o_memis(path, path_len, prefix, strlen(prefix))) {
        not_found(req, path, path_len);
        return 0;
    }
    if (!sg_http_is_get_or_head(req)) {
        sg_problem_method_not_allowed(req, "GET, HEAD");
        return 0;
    }
    return 1;
}

static void respond_ok(h2o_req_t *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    sg_http_respond(req, 200, "application/json", body, sizeof(body) - 1);
}

/* /healthz and /readyz answer anyone, unlimited (orchestrators probe them); /metrics needs
 * metrics:read when there is auth. */
static sg_access_rule_t exempt(sg_server_t *server, h2o_req_t *req, const char *path, size_t path_len)
{
    return (sg_access_rule_t){.need = SG_ACCESS_EXEMPT, .route = SIZE_MAX};
}

static sg_access_rule_t metrics_reader(sg_server_t *server, h2o_req_t *req, const char *path, size_t path_len)
{
    return sg_access_builtin_rule("metrics:read", false);
}

static void handle_healthz(h2o_req_t *req, const char *path, size_t path_len, sg_principal_t *principal)
{
    if (accept_request(req, "/healthz", path, path_len))
        respond_ok(req);
}

/* Why the gateway is not ready, or NULL when it is (why, or a static text). Judged afresh on every
 * call: readiness follows the brokers and the tables for as long as the gateway runs, not only at
 * start. */
static const char *not_ready_because(sg_server_t *server, char *why, size_t whylen)
{
    /* The registry counts when routes depend on it: a deployment that uses no schemas must not
     * wait for a _schemas topic it may have no right to create. */
    int uses_schemas = 0;
    for (size_t i = 0; i < server->conf->n_routes; ++i)
        uses_schemas |= server->conf->routes[i].schema != NULL;
    if (sg_server_is_draining(server))
        return "the gateway is shutting down";
    /* A full (or failing) disk: the tables stop applying and request outcomes cannot be recorded.
     * Said first, so the reason is the disk and not "catching up". */
    char reason[1024];
    if (server->tables != NULL && sg_tables_health(server->tables, reason, sizeof(reason)) != SG_STORAGE_OK) {
        snprintf(why, whylen, "the tables' storage takes no writes: %s", reason);
        return why;
    }
    if (server->store != NULL && sg_store_health(server->store, reason, sizeof(reason)) != SG_STORAGE_OK) {
        snprintf(why, whylen, "the request store takes no writes: %s", reason);
        return why;
    }
    if (server->materializer != NULL && !sg_materializer_caught_up(server->materializer))
        return "tables are still catching up with their topics";
    if (uses_schemas && server->registry != NULL && !sg_registry_is_ready(server->registry))
        return "the schema registry is still reading _schemas";
    if (!sg_bridge_is_ready(server->bridge))
        return "Kafka metadata has not been fetched yet";
    if (!sg_bridge_reachable(server->bridge, why, whylen))
        return why;
    /* Every table answers a read of its position (a RocksDB read that fails when the store does). */
    for (size_t i = 0; server->tables != NULL && i < server->conf->n_tables; ++i) {
        char err[256];
        sg_token_t *view = sg_token_create();
        int rc = sg_tables_token(server->tables, server->conf->tables[i].name, view, err, sizeof(err));
        sg_token_destroy(view);
        if (rc != 0) {
            snprintf(why, whylen, "table %s cannot be read: %s", server->conf->tables[i].name, err);
            return why;
        }
    }
    if (server->deployment != NULL && !sg_deployment_is_ready(server->deployment))
        return sg_deployment_not_ready_because(server->deployment);
    if (!sg_server_has_request_key(server))
        return "the deployment's request-id secret is not settled yet";
    if (server->placement != NULL && sg_placement_not_ready_because(server->placement) != NULL)
        return sg_placement_not_ready_because(server->placement);
    return sg_access_not_ready(server);
}

static void handle_readyz(h2o_req_t *req, const char *path, size_t path_len, sg_principal_t *principal)
{
    if (!accept_request(req, "/readyz", path, path_len))
        return;
    char text[1024]; /* as much as a problem detail takes */
    const char *why = not_ready_because(sg_loop_of(req)->server, text, sizeof(text));
    if (why != NULL)
        sg_problem(req, SG_PROBLEM_NOT_READY, NULL, "%s", why);
    else
        respond_ok(req);
}

/* --- metrics -------------------------------------------------------------------------------- */

/* The exposition text (Prometheus 0.0.4), grown as it is written. */
typedef struct st_sg_metrics_text_t {
    char *buf;
    size_t len, cap;
} sg_metrics_text_t;

SG_PRINTF(2, 3) static void put(sg_metrics_text_t *out, const char *fmt, ...)
{
    for (;;) {
        va_list args;
        va_start(args, fmt);
        int n = vsnprintf(out->buf + out->len, out->cap - out->len, fmt, args);
        va_end(args);
        if (n >= 0 && (size_t)n < out->cap - out->len) {
            out->len += (size_t)n;
            return;
        }
        out->cap = out->cap * 2 + (n > 0 ? (size_t)n : 0);
        out->buf = sg_realloc(out->buf, out->cap);
    }
}

/* A label value, escaped as the text format wants (\\, \" and \n). */
static void put_label_value(sg_metrics_text_t *out, const char *value)
{
    for (const char *p = value; *p != '\0'; ++p)
        put(out, *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : "%c", *p);
}

/* `name` with `label`="`value`" (both may be NULL) and `extra` (a preformatted label, may be
 * NULL) in braces when there is any. */
static void put_series(sg_metrics_text_t *out, const char *name, const char *suffix, const char *label, const char *value,
                       const char *extra)
{
    put(out, "%s%s", name, suffix);
    if (label == NULL && extra == NULL)
        return;
    put(out, "{");
    if (label != NULL) {
        put(out, "%s=\"", label);
        put_label_value(out, value);
        put(out, "\"%s", extra != NULL ? "," : "");
    }
    put(out, "%s}", extra != NULL ? extra : "");
}

static void put_sample(sg_metrics_text_t *out, const char *name, const char *label, const char *value, double sample)
{
    put_series(out, name, "", label, value, NULL);
    put(out, " %.15g\n", sample);
}

/* A histogram summed over every loop: cumulative buckets, the sum in seconds, the count. */
static void put_histogram(sg_metrics_text_t *out, const char *name, const char *label, const char *value,
                          const sg_histogram_t *const *per_loop, size_t n_loops)
{
    static const char *const bounds[SG_HISTOGRAM_BUCKETS] = SG_HISTOGRAM_BOUNDS_TEXT;
    uint64_t count = 0, sum_us = 0;
    for (size_t b = 0; b <= SG_HISTOGRAM_BUCKETS; ++b) {
        for (size_t l = 0; l < n_loops; ++l)
            count += atomic_load_explicit(&per_loop[l]->buckets[b], memory_order_relaxed);
        char le[48];
        snprintf(le, sizeof(le), "le=\"%s\"", b < SG_HISTOGRAM_BUCKETS ? bounds[b] : "+Inf");
        put_series(out, name, "_bucket", label, value, le);
        put(out, " %llu\n", (unsigned long long)count);
    }
    for (size_t l = 0; l < n_loops; ++l)
        sum_us += atomic_load_explicit(&per_loop[l]->sum_us, memory_order_relaxed);
    put_series(out, name, "_sum", label, value, NULL);
    put(out, " %.6f\n", (double)sum_us / 1e6);
    put_series(out, name, "_count", label, value, NULL);
    put(out, " %llu\n", (unsigned long long)count);
}

/*
 * One row per metric. A row is one of:
 *  - a single sample: `value`;
 *  - a labelled family: `label` names the label, `label_value(server, i)` its values (NULL ends
 *    them) and `labelled(server, i)` each one's sample; a row with a fixed set of values lists
 *    them in `label_values` instead;
 *  - a histogram: `histogram(server, i, loop)` (with `label` / `label_value` as above, or `label`
 *    NULL for one series), summed over the loops;
 *  - anything else (more than one label): `write`.
 */
typedef struct st_sg_metric_t {
    const char *name;
    const char *type; /* counter | gauge | histogram */
    const char *help;
    double (*value)(sg_server_t *server);
    const char *label;
    const char *const *label_values;
    const char *(*label_value)(sg_server_t *server, size_t i);
    double (*labelled)(sg_server_t *server, size_t i);
    const sg_histogram_t *(*histogram)(sg_server_t *server, size_t i, const sg_loop_t *loop);
    void (*write)(sg_server_t *server, const struct st_sg_metric_t *row, sg_metrics_text_t *out);
} sg_metric_t;

/* Sum over the loops of the counter at `offset` bytes into each loop's sg_metrics_loop_t. */
static uint64_t sum_loops(const sg_server_t *server, size_t offset)
{
    uint64_t sum = 0;
    for (size_t l = 0; l < server->n_loops; ++l)
        if (server->loops[l].metrics != NULL)
            sum += atomic_load_explicit((atomic_ullong *)((char *)server->loops[l].metrics + offset), memory_order_relaxed);
    return sum;
}
static double inflight(sg_server_t *server)
{
    return (double)atomic_load(&server->inflight);
}
static double pending(sg_server_t *server)
{
    return (double)atomic_load(&server->pending);
}
static double pending_bytes(sg_server_t *server)
{
    return (double)atomic_load(&server->inflight_bytes);
}
static double connections_refused(sg_server_t *server)
{
    return (double)atomic_load(&server->connections_refused);
}
static double accept_pauses(sg_server_t *server)
{
    return (double)atomic_load(&server->accept_pauses);
}
static double slow_clients_closed(sg_server_t *server)
{
    return (double)atomic_load(&server->slow_clients_closed);
}
static double clients_gone(sg_server_t *server)
{
    return (double)atomic_load(&server->clients_gone);
}
static double replies_dropped(sg_server_t *server)
{
    return (double)atomic_load(&server->replies_dropped);
}
static double replies_unawaited(sg_server_t *server)
{
    return (double)atomic_load(&server->replies_unawaited);
}
static double status_watchers(sg_server_t *server)
{
    return (double)atomic_load(&server->watchers);
}
static double kafka_ready(sg_server_t *server)
{
    return sg_bridge_is_ready(server->bridge);
}
static double kafka_reachable(sg_server_t *server)
{
    char why[8];
    return sg_bridge_reachable(server->bridge, why, sizeof(why));
}
static double table_waiters(sg_server_t *server)
{
    return (double)atomic_load(&server->table_waiters);
}
static double records_skipped(sg_server_t *server)
{
    return server->materializer != NULL ? (double)sg_materializer_skipped(server->materializer) : 0;
}
static double table_rebuilds(sg_server_t *server)
{
    return server->materializer != NULL ? (double)sg_materializer_rebuilds(server->materializer) : 0;
}
static double storage_available(sg_server_t *server, size_t which)
{
    if (which == 0)
        return server->store == NULL || sg_store_health(server->store, NULL, 0) == SG_STORAGE_OK;
    return server->tables == NULL || sg_tables_health(server->tables, NULL, 0) == SG_STORAGE_OK;
}
static const char *const storage_kinds[] = {"requests", "tables", NULL};

static double replies_undecodable(sg_server_t *server)
{
    return (double)atomic_load(&server->replies_undecodable);
}
static double event_streams(sg_server_t *server)
{
    return (double)atomic_load(&server->streams);
}
static double open_connections(sg_server_t *server)
{
    return (double)(atomic_load(&server->connections) + atomic_load(&server->overflow_connections)); /* conn.c */
}
static double producer_queue(sg_server_t *server)
{
    return sg_bridge_outstanding(server->bridge);
}
static double reply_lag(sg_server_t *server)
{
    return (double)sg_bridge_reply_lag(server->bridge);
}

/* streamgate_parked_requests{kind}: in sg_parked_kind_t order */
static const char *const parked_kinds[] = {"command", "status", "table", "registry", NULL};
static double parked(sg_server_t *server, size_t kind)
{
    int64_t count = 0;
    for (size_t l = 0; l < server->n_loops; ++l)
        count += atomic_load(&server->loops[l].parked_by_kind[kind]);
    return (double)(count > 0 ? count : 0);
}

/* streamgate_produce_errors_total{cause}: in -SG_BRIDGE_E_* - 1 order */
static const char *const produce_causes[] = {"queue_full", "too_large", "not_acknowledged", "fatal", "shutdown", NULL};
static double produce_errors(sg_server_t *server, size_t cause)
{
    return (double)sum_loops(server, offsetof(sg_metrics_loop_t, produce_errors) + cause * sizeof(atomic_ullong));
}

/* Route labels (metrics.h); tables by name. */
static const char *route_label(sg_server_t *server, size_t i)
{
    return i < sg_metrics_n_labels(server) ? sg_metrics_label_text(server, i) : NULL;
}
static const char *table_label(sg_server_t *server, size_t i)
{
    return i < server->conf->n_tables ? server->conf->tables[i].name : NULL;
}

static sg_table_stats_t table_stats(sg_server_t *server, size_t i)
{
    sg_table_stats_t stats = {0};
    if (server->materializer != NULL)
        sg_materializer_table_stats(server->materializer, i, &stats);
    return stats;
}
static double table_lag(sg_server_t *server, size_t i)
{
    return (double)table_stats(server, i).lag;
}
static double table_stream_time(sg_server_t *server, size_t i)
{
    return (double)table_stats(server, i).stream_time_ms / 1000.0;
}
static double table_restore(sg_server_t *server, size_t i)
{
    return table_stats(server, i).restore_ratio;
}

/* streamgate_registry_objects{kind} */
static const char *const registry_kinds[] = {"subjects", "schemas", "versions", NULL};
static double registry_objects(sg_server_t *server, size_t kind)
{
    size_t counts[3] = {0, 0, 0};
    if (server->registry != NULL && sg_registry_external_url(server->registry) == NULL)
        sg_registry_counts(server->registry, &counts[0], &counts[1], &counts[2]);
    return (double)counts[kind];
}

static const sg_histogram_t *request_duration(sg_server_t *server, size_t i, const sg_loop_t *loop)
{
    return &loop->metrics->request_duration[i];
}
static const sg_histogram_t *produce_ack(sg_server_t *server, size_t i, const sg_loop_t *loop)
{
    return &loop->metrics->produce_ack;
}
static const sg_histogram_t *reply_wait(sg_server_t *server, size_t i, const sg_loop_t *loop)
{
    return &loop->metrics->reply_wait;
}

/* streamgate_requests_total{route, code}: two labels, so a writer of its own. */
static void write_requests(sg_server_t *server, const sg_metric_t *row, sg_metrics_text_t *out)
{
    static const char *const classes[SG_STATUS_CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx", "closed"};
    for (size_t i = 0; i < sg_metrics_n_labels(server); ++i) {
        for (size_t c = 0; c < SG_STATUS_CLASSES; ++c) {
            char code[32];
            snprintf(code, sizeof(code), "code=\"%s\"", classes[c]);
            put_series(out, row->name, "", "route", sg_metrics_label_text(server, i), code);
            uint64_t count = 0;
            for (size_t l = 0; l < server->n_loops; ++l)
                if (server->loops[l].metrics != NULL)
                    count += atomic_load_explicit(&server->loops[l].metrics->requests[i][c], memory_order_relaxed);
            put(out, " %llu\n", (unsigned long long)count);
        }
    }
}

static const sg_metric_t metrics[] = {
    {"streamgate_requests_total", "counter",
     "HTTP requests answered, by route (a route's name, a query's path, a built-in's prefix, static or unmatched) and status "
     "class (closed: the client left first).",
     .write = write_requests},
    {"streamgate_request_duration_seconds", "histogram",
     "From dispatch (head and body read) to the end of the response, by route; event streams are not timed.", .label = "route",
     .label_value = route_label, .histogram = request_duration},
    {"streamgate_produce_ack_seconds", "histogram",
     "From handing a command's event to the producer to the broker's acknowledgement.", .histogram = produce_ack},
    {"streamgate_reply_wait_seconds", "histogram",
     "From producing a request-reply command to its reply, for requests still waiting when it came.", .histogram = reply_wait},
    {"streamgate_produce_errors_total", "counter", "Events not produced or not acknowledged, by cause.", .label = "cause",
     .label_values = produce_causes, .labelled = produce_errors},
    {"streamgate_producer_queue_messages", "gauge", "Messages in the producer's queue: produced and not yet acknowledged.",
     .value = producer_queue},
    {"streamgate_reply_consumer_lag_records", "gauge",
     "Records in the reply partitions this instance reads that it has not read yet.", .value = reply_lag},
    {"streamgate_inflight_requests", "gauge", "Commands produced and not yet completed.", .value = inflight},
    {"streamgate_parked_requests", "gauge",
     "Requests waiting on a loop, by what for: command (ack or reply), status (long-poll or stream), table (read conditions or "
     "watch), registry (a write).",
     .label = "kind", .label_values = parked_kinds, .labelled = parked},
    {"streamgate_open_connections", "gauge",
     "Client connections open (HTTP/1.1, HTTP/2, TLS): limits.connections, and the few beyond it for health probes.",
     .value = open_connections},
    {"streamgate_event_streams", "gauge", "Server-sent event streams open (request status and table watches).",
     .value = event_streams},
    {"streamgate_pending_requests", "gauge",
     "Requests waiting on Kafka, all kinds (commands, long-polls, status streams, waiting table reads, watches): "
     "limits.pending.",
     .value = pending},
    {"streamgate_pending_bytes", "gauge", "Event bytes produced and not yet acknowledged by the broker: limits.inflight_bytes.",
     .value = pending_bytes},
    {"streamgate_connections_refused_total", "counter",
     "Requests answered 503 too-many-connections on a connection beyond limits.connections.", .value = connections_refused},
    {"streamgate_accept_pauses_total", "counter",
     "Times a loop stopped accepting: at limits.connections, or out of file descriptors or memory.", .value = accept_pauses},
    {"streamgate_slow_clients_closed_total", "counter",
     "Connections (and the event streams on them) closed because the client stopped reading: limits.write_timeout, "
     "limits.queued_bytes.",
     .value = slow_clients_closed},
    {"streamgate_clients_gone_total", "counter", "HTTP/1 clients that closed their connection while their request waited.",
     .value = clients_gone},
    {"streamgate_replies_dropped_total", "counter", "Replies dropped unrecorded: forged or unknown id, or past requests.retention.",
     .value = replies_dropped},
    {"streamgate_replies_unawaited_total", "counter", "Genuine replies recorded while no HTTP request waited for them.",
     .value = replies_unawaited},
    {"streamgate_replies_undecodable_total", "counter",
     "Replies in the Confluent wire format whose schema id is unknown or whose data does not decode (answered 502).",
     .value = replies_undecodable},
    {"streamgate_status_watchers", "gauge", "Long-polls and event streams waiting on request status.", .value = status_watchers},
    {"streamgate_kafka_ready", "gauge", "Whether metadata is fetched and reply partitions assigned.", .value = kafka_ready},
    {"streamgate_kafka_reachable", "gauge",
     "Whether the brokers answer a round trip (0 after 5 s without one, 1 again after 2 s of answers).", .value = kafka_reachable},
    {"streamgate_table_waiters", "gauge", "Table reads waiting for their conditions, and watches.", .value = table_waiters},
    {"streamgate_table_records_skipped_total", "counter",
     "Table records not applied: a value that is not JSON (or not decodable), a key or value over the limits.",
     .value = records_skipped},
    {"streamgate_table_rebuilds_total", "counter",
     "Tables reset and rebuilt from the beginning because records they had not applied were deleted (retention).",
     .value = table_rebuilds},
    {"streamgate_storage_available", "gauge",
     "Whether the RocksDB store takes writes (0 after a write failed, e.g. a full disk, until it is reopened).", .label = "store",
     .label_values = storage_kinds, .labelled = storage_available},
    {"streamgate_table_lag_records", "gauge",
     "Records in a table's partitions beyond what it applied (the last fetch's high watermarks).", .label = "table",
     .label_value = table_label, .labelled = table_lag},
    {"streamgate_table_stream_time_seconds", "gauge", "The largest record timestamp a table has applied (Unix time; 0: none).",
     .label = "table", .label_value = table_label, .labelled = table_stream_time},
    {"streamgate_table_restore_progress_ratio", "gauge",
     "Of the records a table had to read at start to catch up, the part applied (1 once caught up).", .label = "table",
     .label_value = table_label, .labelled = table_restore},
    {"streamgate_registry_objects", "gauge",
     "What the built-in schema registry holds: subjects (with a version), schemas (distinct ids), versions.", .label = "kind",
     .label_values = registry_kinds, .labelled = registry_objects},
};

static const char *label_of(sg_server_t *server, const sg_metric_t *row, size_t i)
{
    return row->label_values != NULL ? row->label_values[i] : row->label_value(server, i);
}

static void write_row(sg_server_t *server, const sg_metric_t *row, sg_metrics_text_t *out)
{
    put(out, "# HELP %s %s\n# TYPE %s %s\n", row->name, row->help, row->name, row->type);
    if (row->write != NULL) {
        row->write(server, row, out);
    } else if (row->histogram != NULL) {
        const sg_histogram_t **per_loop = sg_calloc(server->n_loops + 1, sizeof(*per_loop));
        for (size_t i = 0; row->label == NULL ? i == 0 : label_of(server, row, i) != NULL; ++i) {
            size_t n = 0;
            for (size_t l = 0; l < server->n_loops; ++l)
                if (server->loops[l].metrics != NULL)
                    per_loop[n++] = row->histogram(server, i, &server->loops[l]);
            put_histogram(out, row->name, row->label, row->label != NULL ? label_of(server, row, i) : NULL, per_loop, n);
        }
        free(per_loop);
    } else if (row->label != NULL) {
        for (size_t i = 0; label_of(server, row, i) != NULL; ++i)
            put_sample(out, row->name, row->label, label_of(server, row, i), row->labelled(server, i));
    } else {
        put_sample(out, row->name, NULL, NULL, row->value(server));
    }
}

/* Partitioned tables: how many partitions this instance owns and keeps as standbys, and how many
 * of them are ready (README, "Several instances"). */
static void placement_metrics(sg_server_t *server, sg_metrics_text_t *out)
{
    if (server->placement == NULL)
        return;
    put(out, "# HELP streamgate_table_partitions Partitions of a partitioned table this instance keeps, by role, and how many "
             "of them are ready.\n# TYPE streamgate_table_partitions gauge\n");
    for (size_t i = 0; i < server->conf->n_tables; ++i) {
        if (!sg_placement_is_partitioned(server->placement, i))
            continue;
        int owner = 0, standby = 0, ready = 0;
        for (int32_t p = 0; p < sg_placement_partitions(server->placement, i); ++p) {
            sg_placement_route_t route;
            if (sg_placement_partition(server->placement, i, p, &route) != 0 || route.role == SG_ROLE_NONE)
                continue;
            owner += route.role == SG_ROLE_OWNER;
            standby += route.role == SG_ROLE_STANDBY;
            ready += sg_materializer_partition_ready(server->materializer, i, p);
        }
        const char *name = server->conf->tables[i].name;
        put(out,
            "streamgate_table_partitions{table=\"%s\",role=\"owner\"} %d\n"
            "streamgate_table_partitions{table=\"%s\",role=\"standby\"} %d\n"
            "streamgate_table_partitions{table=\"%s\",role=\"ready\"} %d\n",
            name, owner, name, standby, name, ready);
    }
}

static void handle_metrics(h2o_req_t *req, const char *path, size_t path_len, sg_principal_t *principal)
{
    if (!accept_request(req, "/metrics", path, path_len))
        return;
    sg_server_t *server = sg_loop_of(req)->server;
    sg_metrics_text_t out = {.buf = sg_malloc(16384), .cap = 16384};
    for (size_t i = 0; i < SG_ARRAY_SIZE(metrics); ++i)
        write_row(server, &metrics[i], &out);
    size_t access_len = sg_access_metrics(server, NULL, 0);
    if (out.cap - out.len <= access_len) {
        out.cap = out.len + access_len + 1;
        out.buf = sg_realloc(out.buf, out.cap);
    }
    out.len += sg_access_metrics(server, out.buf + out.len, out.cap - out.len);
    placement_metrics(server, &out);
    sg_http_respond(req, 200, "text/plain; version=0.0.4", out.buf, out.len); /* copied by H2O */
    free(out.buf);
}

const sg_feature_t sg_feature_healthz = {.prefix = "/healthz", .methods = "GET, HEAD", .access = exempt, .handle = handle_healthz};
const sg_feature_t sg_feature_readyz = {.prefix = "/readyz", .methods = "GET, HEAD", .access = exempt, .handle = handle_readyz};
const sg_feature_t sg_feature_metrics = {.prefix = "/metrics",
                                         .methods = "GET, HEAD",
                                         .access = metrics_reader,
                                         .handle = handle_metrics,
                                         .init_loop = sg_metrics_init_loop};
