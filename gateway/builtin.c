/*
 * The operational endpoints: /healthz (the process is up), /readyz (Kafka, tables and the
 * registry are caught up, and we are not stopping) and /metrics (Prometheus text).
 *
 * The metrics are one table, a row per metric (name, type, help, where its value comes from):
 * adding a metric is adding a row. Values are read from atomics and thread-safe getters only (no
 * lock, no loop-private state read from another loop).
 */
#include <stdio.h>
#include <string.h>

#include "gateway_int.h"
#include "respond.h"
#include "sg_deployment.h"
#include "sg_materializer.h"
#include "sg_registry.h"

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

/* Why the gateway is not ready, or NULL when it is. */
static const char *not_ready_because(sg_server_t *server)
{
    /* The registry counts when routes depend on it: a deployment that uses no schemas must not
     * wait for a _schemas topic it may have no right to create. */
    int uses_schemas = 0;
    for (size_t i = 0; i < server->conf->n_routes; ++i)
        uses_schemas |= server->conf->routes[i].schema != NULL;
    if (sg_server_is_draining(server))
        return "the gateway is shutting down";
    if (server->materializer != NULL && !sg_materializer_caught_up(server->materializer))
        return "tables are still catching up with their topics";
    if (uses_schemas && server->registry != NULL && !sg_registry_is_ready(server->registry))
        return "the schema registry is still reading _schemas";
    if (!sg_bridge_is_ready(server->bridge))
        return "Kafka metadata has not been fetched yet";
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
    const char *why = not_ready_because(sg_loop_of(req)->server);
    if (why != NULL)
        sg_problem(req, SG_PROBLEM_NOT_READY, NULL, "%s", why);
    else
        respond_ok(req);
}

/* --- metrics -------------------------------------------------------------------------------- */

typedef struct st_sg_metric_t {
    const char *name;
    const char *type; /* counter | gauge */
    const char *help;
    long long (*value)(sg_server_t *server);
} sg_metric_t;

static long long inflight(sg_server_t *server)
{
    return atomic_load(&server->inflight);
}
static long long replies_dropped(sg_server_t *server)
{
    return atomic_load(&server->replies_dropped);
}
static long long replies_unawaited(sg_server_t *server)
{
    return atomic_load(&server->replies_unawaited);
}
static long long status_watchers(sg_server_t *server)
{
    return atomic_load(&server->watchers);
}
static long long kafka_ready(sg_server_t *server)
{
    return sg_bridge_is_ready(server->bridge);
}
static long long table_waiters(sg_server_t *server)
{
    return atomic_load(&server->table_waiters);
}
static long long records_skipped(sg_server_t *server)
{
    return server->materializer != NULL ? (long long)sg_materializer_skipped(server->materializer) : 0;
}
static long long replies_undecodable(sg_server_t *server)
{
    return atomic_load(&server->replies_undecodable);
}

static const sg_metric_t metrics[] = {
    {"streamgate_inflight_requests", "gauge", "Commands produced and not yet completed.", inflight},
    {"streamgate_replies_dropped_total", "counter", "Replies dropped unrecorded: forged or unknown id, or past requests.retention.",
     replies_dropped},
    {"streamgate_replies_unawaited_total", "counter", "Genuine replies recorded while no HTTP request waited for them.",
     replies_unawaited},
    {"streamgate_status_watchers", "gauge", "Long-polls and event streams waiting on request status.", status_watchers},
    {"streamgate_kafka_ready", "gauge", "Whether metadata is fetched and reply partitions assigned.", kafka_ready},
    {"streamgate_table_waiters", "gauge", "Table reads waiting for their conditions, and watches.", table_waiters},
    {"streamgate_table_records_skipped_total", "counter",
     "Table records not applied: a value that is not JSON (or not decodable), a key or value over the limits.", records_skipped},
    {"streamgate_replies_undecodable_total", "counter",
     "Replies in the Confluent wire format whose schema id is unknown or whose data does not decode (answered 502).",
     replies_undecodable},
};

/* Partitioned tables: how many partitions this instance owns and keeps as standbys, and how many
 * of them are ready (README, "Scale-out"). */
static size_t placement_metrics(sg_server_t *server, char *text, size_t cap)
{
    if (server->placement == NULL || cap < 512)
        return 0;
    size_t len = (size_t)snprintf(text, cap, "# HELP streamgate_table_partitions Partitions of a partitioned table this instance "
                                             "keeps, by role, and how many of them are ready.\n"
                                             "# TYPE streamgate_table_partitions gauge\n");
    for (size_t i = 0; i < server->conf->n_tables && len + 256 < cap; ++i) {
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
        len += (size_t)snprintf(text + len, cap - len,
                                "streamgate_table_partitions{table=\"%s\",role=\"owner\"} %d\n"
                                "streamgate_table_partitions{table=\"%s\",role=\"standby\"} %d\n"
                                "streamgate_table_partitions{table=\"%s\",role=\"ready\"} %d\n",
                                name, owner, name, standby, name, ready);
    }
    return len < cap ? len : cap - 1;
}

static void handle_metrics(h2o_req_t *req, const char *path, size_t path_len, sg_principal_t *principal)
{
    if (!accept_request(req, "/metrics", path, path_len))
        return;
    sg_server_t *server = sg_loop_of(req)->server;
    size_t access_len = sg_access_metrics(server, NULL, 0);
    size_t cap = 4096 + access_len + 1 + 512 * (server->conf->n_tables + 1), len = 0;
    char *text = h2o_mem_alloc_pool(&req->pool, cap);
    for (size_t i = 0; i < SG_ARRAY_SIZE(metrics) && len < cap; ++i) {
        const sg_metric_t *metric = &metrics[i];
        int n = snprintf(text + len, cap - len, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", metric->name, metric->help, metric->name,
                         metric->type, metric->name, metric->value(server));
        len += n > 0 ? (size_t)n : 0;
    }
    if (len + access_len < cap)
        len += sg_access_metrics(server, text + len, cap - len);
    len += placement_metrics(server, text + len, cap - len);
    sg_http_respond(req, 200, "text/plain; version=0.0.4", text, len < cap ? len : cap - 1);
}

const sg_feature_t sg_feature_healthz = {.prefix = "/healthz", .methods = "GET, HEAD", .access = exempt, .handle = handle_healthz};
const sg_feature_t sg_feature_readyz = {.prefix = "/readyz", .methods = "GET, HEAD", .access = exempt, .handle = handle_readyz};
const sg_feature_t sg_feature_metrics = {
    .prefix = "/metrics", .methods = "GET, HEAD", .access = metrics_reader, .handle = handle_metrics};
