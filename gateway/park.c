/*
 * See park.h. The guard is the H2O idiom for a request that may vanish while its answer is
 * pending (lib/handler/status.c does the same): a pointer-sized shared allocation in the request's
 * pool whose dispose callback runs when the pool goes, and which the park clears when it finishes
 * first. Each loop counts its parked requests (its own cache line, no sharing on the command
 * path); shutdown waits until every loop's count is zero.
 */
#include "park.h"

#include "gateway_int.h"

static void unpark(sg_park_t *park)
{
    sg_conns_unwatch_parked(park);
    park->parked = 0;
    park->req = NULL;
    if (h2o_linklist_is_linked(&park->link))
        h2o_linklist_unlink(&park->link);
    if (h2o_timeout_is_linked(&park->deadline))
        h2o_timeout_unlink(&park->deadline);
    if (park->gauge != NULL)
        atomic_fetch_sub(park->gauge, 1);
    if (park->holds_pending) {
        park->holds_pending = 0;
        sg_pending_release(park->loop->server);
    }
    atomic_fetch_sub(&park->loop->parked, 1);
    atomic_fetch_sub(&park->loop->parked_by_kind[park->kind->metric], 1);
}

static void on_guard_dispose(void *p)
{
    sg_park_t *park = *(sg_park_t **)p;
    if (park == NULL)
        return;
    park->guard = NULL; /* the pool that holds it is going */
    unpark(park);
    park->kind->on_gone(park);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    sg_park_t *park = H2O_STRUCT_FROM_MEMBER(sg_park_t, deadline, entry);
    park->kind->on_deadline(park);
}

void sg_park_start(sg_park_t *park, const sg_park_kind_t *kind, h2o_req_t *req, h2o_linklist_t *list, atomic_long *gauge)
{
    park->kind = kind;
    park->loop = sg_loop_of(req);
    park->req = req;
    park->gauge = gauge;
    park->parked = 1;
    park->deadline = (h2o_timeout_entry_t){.cb = on_deadline};
    park->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*park->guard), on_guard_dispose);
    *park->guard = park;
    h2o_linklist_insert(list, &park->link);
    if (gauge != NULL)
        atomic_fetch_add(gauge, 1);
    atomic_fetch_add(&park->loop->parked, 1);
    atomic_fetch_add(&park->loop->parked_by_kind[park->kind->metric], 1);
    sg_conns_watch_parked(park); /* HTTP/1: notice the client leaving (HTTP/2 has the guard) */
}

void sg_park_set_deadline(sg_park_t *park, int64_t ms)
{
    if (h2o_timeout_is_linked(&park->deadline))
        h2o_timeout_unlink(&park->deadline);
    h2o_timeout_link(park->loop->ctx.loop, sg_loop_wait_timeout(park->loop, ms), &park->deadline);
}

h2o_req_t *sg_park_finish(sg_park_t *park)
{
    if (!park->parked)
        return NULL;
    h2o_req_t *req = park->req;
    *park->guard = NULL;
    park->guard = NULL;
    unpark(park);
    return req;
}

void sg_park_drain(h2o_linklist_t *list)
{
    /* Moved aside first so each park is visited once, whether or not on_drain finishes it. */
    h2o_linklist_t visiting;
    h2o_linklist_init_anchor(&visiting);
    h2o_linklist_insert_list(&visiting, list);
    while (!h2o_linklist_is_empty(&visiting)) {
        sg_park_t *park = H2O_STRUCT_FROM_MEMBER(sg_park_t, link, visiting.next);
        h2o_linklist_unlink(&park->link);
        h2o_linklist_insert(list, &park->link);
        park->kind->on_drain(park);
    }
}
