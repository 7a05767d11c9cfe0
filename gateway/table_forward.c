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

#include "exchange.h"
#include "respond.h"
#include "sg_deployment.h"
#include "sg_placement.h"
#include "tables_int.h"

#define SG_FORWARD_MARGIN_MS 2000 /* over the read's own wait, for the hop */

typedef struct st_sg_fwd_t {
    sg_park_t park;
    sg_tq_t *tq;     /* the read, answered here if the owner cannot be (standby); owned */
    int standby;     /* this instance keeps the partition */
    int64_t wait_ms; /* the read's own wait */
    int64_t started_ms;
    sg_exchange_t exchange;
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
    sg_exchange_dispose(&fwd->exchange);
    free(fwd);
}

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
        if (sg_exchange_start(&fwd->exchange, fwd->park.req, url, NULL) == 0)
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
        sg_server_t *server = sg_loop_of(req)->server;
        const char *instance = sg_deployment_instance(server->deployment);
        sg_http_add_header(req, H2O_STRLIT(SG_SERVED_BY_HEADER), instance, strlen(instance));
        tq->park.holds_pending = left > 0 && sg_pending_acquire(server);
        sg_tq_begin(req, tq, tq->park.holds_pending ? left : 0);
        return;
    }
    sg_problem(req, SG_PROBLEM_OWNER_UNAVAILABLE, NULL, "the instance that owns the key's partition (%s) could not answer: %s",
               fwd->owner[0] != '\0' ? fwd->owner : "none known yet", why);
    fwd_free(fwd);
}

static void on_answer(sg_exchange_t *exchange, const char *error)
{
    sg_fwd_t *fwd = exchange->data;
    if (error != NULL) {
        owner_failed(fwd, error);
        return;
    }
    h2o_req_t *req = sg_park_finish(&fwd->park);
    if (req != NULL)
        sg_exchange_relay(exchange, req);
    fwd_free(fwd);
}

static void on_fwd_deadline(sg_park_t *park)
{
    sg_fwd_t *fwd = H2O_STRUCT_FROM_MEMBER(sg_fwd_t, park, park);
    sg_exchange_cancel(&fwd->exchange);
    owner_failed(fwd, "no answer in time");
}

static void on_fwd_drain(sg_park_t *park)
{
    sg_fwd_t *fwd = H2O_STRUCT_FROM_MEMBER(sg_fwd_t, park, park);
    sg_exchange_cancel(&fwd->exchange);
    sg_problem(sg_park_finish(park), SG_PROBLEM_SHUTTING_DOWN, NULL, "the gateway is shutting down; retry on another instance");
    fwd_free(fwd);
}

static void on_fwd_gone(sg_park_t *park)
{
    fwd_free(H2O_STRUCT_FROM_MEMBER(sg_fwd_t, park, park));
}

static const sg_park_kind_t fwd_park = {
    .metric = SG_PARKED_TABLE, .on_deadline = on_fwd_deadline, .on_drain = on_fwd_drain, .on_gone = on_fwd_gone};

/* Forwards the read to route->owner_url (or, with no owner known, to a standby). Takes tq. */
static void forward(h2o_req_t *req, sg_tq_t *tq, const sg_placement_route_t *route, int64_t wait_ms)
{
    sg_loop_t *loop = sg_loop_of(req);
    sg_fwd_t *fwd = sg_calloc(1, sizeof(*fwd));
    sg_exchange_init(&fwd->exchange, on_answer, fwd);
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
    sg_park_start(&fwd->park, &fwd_park, req, sg_exchange_parked(loop), &loop->server->table_waiters);
    fwd->park.holds_pending = tq->park.holds_pending; /* the read's limits.pending slot, released when the hop ends */
    tq->park.holds_pending = 0;
    sg_park_set_deadline(&fwd->park, wait_ms + SG_FORWARD_MARGIN_MS);
    if (sg_exchange_start(&fwd->exchange, req, url, NULL) != 0)
        owner_failed(fwd, "it advertises a URL this instance cannot forward to (http:// only)");
}

void sg_tables_route(h2o_req_t *req, sg_tq_t *tq, int64_t wait_ms)
{
    sg_server_t *server = sg_loop_of(req)->server;
    const char *table = tq->table->name; /* config memory: outlives tq */
    sg_placement_route_t route;
    if (sg_placement_route(server->placement, tq->table_index, tq->key, tq->keylen, &route) != 0) {
        sg_tq_discard(req, tq);
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
        sg_tq_discard(req, tq);
        sg_problem(req, SG_PROBLEM_PARTITION_MOVED, NULL,
                   "table %s: partition %d is not kept by this instance (%s) any more; its ownership is moving", table,
                   (int)route.partition, instance);
        return;
    }
    if (route.owner_url[0] == '\0' && (route.standby_url[0] == '\0' || tq->sse)) {
        sg_tq_discard(req, tq);
        sg_problem(req, SG_PROBLEM_OWNER_UNAVAILABLE, NULL, "table %s: partition %d has no live owner known to this instance yet",
                   table, (int)route.partition);
        return;
    }
    if (tq->sse) { /* a stream is served where the partition is kept */
        h2o_iovec_t location = h2o_concat(&req->pool, h2o_iovec_init(route.owner_url, strlen(route.owner_url)), req->path);
        sg_tq_discard(req, tq);
        sg_http_add_header(req, H2O_STRLIT("location"), location.base, location.len);
        sg_http_respond(req, 307, NULL, "", 0);
        return;
    }
    forward(req, tq, &route, wait_ms);
}

