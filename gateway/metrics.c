/*
 * See metrics.h. The request logger is the one place every request passes when it is done,
 * whatever answered it (a feature, a route, the file handler, H2O itself), so counting there
 * needs no hook in any handler; the only thing a handler adds is its label, on the mark that
 * dispatch put in the request's pool.
 */
#include "metrics.h"

#include <string.h>
#include <sys/time.h>

#include "gateway_int.h"
#include "sg_base.h"

static const int64_t bounds_us[SG_HISTOGRAM_BUCKETS] = SG_HISTOGRAM_BOUNDS_US;

void sg_histogram_observe(sg_histogram_t *histogram, int64_t us)
{
    if (us < 0)
        us = 0;
    size_t bucket = 0;
    while (bucket < SG_HISTOGRAM_BUCKETS && us > bounds_us[bucket])
        ++bucket;
    sg_metrics_add(&histogram->buckets[bucket], 1);
    sg_metrics_add(&histogram->sum_us, (uint64_t)us);
}

/* --- labels ------------------------------------------------------------------------------------ */

static size_t n_prefixes(void)
{
    size_t n = 0;
    while (sg_conf_reserved_prefixes[n] != NULL)
        ++n;
    return n;
}

size_t sg_metrics_label_route(const sg_server_t *server, size_t route_index)
{
    return route_index;
}

size_t sg_metrics_label_query(const sg_server_t *server, size_t query_index)
{
    return server->conf->n_routes + query_index;
}

size_t sg_metrics_label_prefix(const sg_server_t *server, const char *prefix)
{
    size_t i = 0;
    while (sg_conf_reserved_prefixes[i] != NULL && strcmp(sg_conf_reserved_prefixes[i], prefix) != 0)
        ++i;
    return sg_conf_reserved_prefixes[i] != NULL ? server->conf->n_routes + server->conf->n_queries + i
                                                : sg_metrics_label_unmatched(server);
}

size_t sg_metrics_label_static(const sg_server_t *server)
{
    return server->conf->n_routes + server->conf->n_queries + n_prefixes();
}

size_t sg_metrics_label_unmatched(const sg_server_t *server)
{
    return sg_metrics_label_static(server) + 1;
}

size_t sg_metrics_n_labels(const sg_server_t *server)
{
    return sg_metrics_label_unmatched(server) + 1;
}

const char *sg_metrics_label_text(const sg_server_t *server, size_t i)
{
    const sg_conf_t *conf = server->conf;
    if (i < conf->n_routes)
        return conf->routes[i].name;
    i -= conf->n_routes;
    if (i < conf->n_queries)
        return conf->queries[i].path;
    i -= conf->n_queries;
    if (i < n_prefixes())
        return sg_conf_reserved_prefixes[i];
    return i == n_prefixes() ? "static" : "unmatched";
}

/* --- recording --------------------------------------------------------------------------------- */

void sg_metrics_init_loop(sg_loop_t *loop)
{
    sg_metrics_loop_t *metrics = sg_calloc(1, sizeof(*metrics));
    metrics->n_labels = sg_metrics_n_labels(loop->server);
    metrics->request_duration = sg_calloc(metrics->n_labels, sizeof(*metrics->request_duration));
    metrics->requests = sg_calloc(metrics->n_labels, sizeof(*metrics->requests));
    loop->metrics = metrics;
}

typedef struct st_sg_mark_t {
    h2o_req_prefilter_t super;
    size_t label;
    int64_t start_us; /* sg_mono_us() at dispatch */
} sg_mark_t;

static void mark_setup_ostream(h2o_req_prefilter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    h2o_setup_next_prefilter(self, req, slot); /* a mark only carries data */
}

static sg_mark_t *find_mark(h2o_req_t *req)
{
    for (h2o_req_prefilter_t *prefilter = req->prefilters; prefilter != NULL; prefilter = prefilter->next)
        if (prefilter->on_setup_ostream == mark_setup_ostream)
            return (sg_mark_t *)prefilter;
    return NULL;
}

void sg_metrics_mark(h2o_req_t *req, size_t label)
{
    sg_mark_t *mark = find_mark(req);
    if (mark == NULL) { /* a request passed on to the next handler keeps its first mark */
        mark = (sg_mark_t *)h2o_add_prefilter(req, sizeof(*mark));
        mark->super.on_setup_ostream = mark_setup_ostream;
        mark->start_us = sg_mono_us();
    }
    mark->label = label;
}

void sg_metrics_set_label(h2o_req_t *req, size_t label)
{
    sg_mark_t *mark = find_mark(req);
    if (mark != NULL)
        mark->label = label;
}

static int is_event_stream(h2o_req_t *req)
{
    ssize_t at = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    return at >= 0 && h2o_memis(req->res.headers.entries[at].value.base, req->res.headers.entries[at].value.len,
                                H2O_STRLIT("text/event-stream"));
}

static void log_access(h2o_logger_t *self, h2o_req_t *req)
{
    sg_loop_t *loop = sg_loop_of(req);
    sg_metrics_loop_t *metrics = loop->metrics;
    if (metrics == NULL)
        return;
    sg_mark_t *mark = find_mark(req);
    size_t label = mark != NULL ? mark->label : sg_metrics_label_unmatched(loop->server);
    if (label >= metrics->n_labels)
        label = metrics->n_labels - 1;
    int status = req->res.status;
    size_t status_class = status >= 100 && status <= 599 ? (size_t)(status / 100 - 1) : SG_STATUS_CLASSES - 1;
    sg_metrics_add(&metrics->requests[label][status_class], 1);
    /* An event stream lasts as long as it streams: not a request duration. */
    if (is_event_stream(req))
        return;
    int64_t us;
    if (mark != NULL) {
        us = sg_mono_us() - mark->start_us;
    } else {
        struct timeval now;
        gettimeofday(&now, NULL);
        us = (int64_t)(now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000 +
             (now.tv_usec - req->timestamps.request_begin_at.tv_usec);
    }
    sg_histogram_observe(&metrics->request_duration[label], us);
}

void sg_metrics_register_logger(h2o_pathconf_t *pathconf)
{
    h2o_logger_t *logger = h2o_create_logger(pathconf, sizeof(*logger));
    logger->log_access = log_access;
}

void sg_metrics_produce_error(sg_loop_t *loop, int rc)
{
    int cause = -rc - 1;
    if (cause >= 0 && cause < SG_PRODUCE_ERROR_CAUSES)
        sg_metrics_add(&loop->metrics->produce_errors[cause], 1);
}
