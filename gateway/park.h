/*
 * Parking: the one way a request waits on its loop for something that happens elsewhere (a
 * delivery report or a reply from the bridge thread, a recorded outcome, a table commit, the
 * registry's answer).
 *
 * A park lives inside the feature's own record (sg_cmd_t, a status watch, a table read, a
 * registry write). While parked it holds: the request; a guard in the request's pool
 * (h2o_mem_alloc_shared) that tells it when the client goes away; a link in the feature's
 * per-loop list, so that a stopping gateway can answer everything (sg_park_drain); and an
 * optional deadline (H2O 2.2.5 has no server-side timeout while a handler is pending).
 *
 * Exactly once, one of these ends it: sg_park_finish (the feature answers with the request it
 * returns) or the client leaving (kind->on_gone). After that the park holds nothing and the
 * record is the feature's to free. Loop thread of the request only.
 */
#ifndef SG_PARK_H
#define SG_PARK_H

#include <stdatomic.h>
#include <stdint.h>

#include <h2o.h>

typedef struct st_sg_loop_t sg_loop_t;
typedef struct st_sg_park_t sg_park_t;

/* What a kind of parked request does when its wait ends without the event it waits for. */
typedef struct st_sg_park_kind_t {
    int metric; /* an sg_parked_kind_t (metrics.h): how /metrics counts it */
    /* The deadline passed; still parked: answer (sg_park_finish) or go on waiting without one. */
    void (*on_deadline)(sg_park_t *park);
    /* The gateway is stopping: answer now, or leave it to an answer already on its way (a
     * command waiting for its delivery report, which comes within the produce timeout). */
    void (*on_drain)(sg_park_t *park);
    /* The client went away; the park is already finished. Release what the request held. */
    void (*on_gone)(sg_park_t *park);
} sg_park_kind_t;

struct st_sg_park_t {
    const sg_park_kind_t *kind;
    sg_loop_t *loop;
    h2o_req_t *req;              /* while parked */
    struct st_sg_park_t **guard; /* in req->pool, pointing back here while parked */
    h2o_linklist_t link;         /* in the feature's per-loop list while parked */
    h2o_timeout_entry_t deadline;
    atomic_long *gauge; /* counted while parked (a metric); may be NULL */
    int holds_pending;  /* set by the caller that took a limits.pending slot for the wait: released when it ends */
    int parked;
};

/** Parks req: guard, link into `list`, count in `gauge` (and the server's total). No deadline
 * until sg_park_set_deadline. `park` must stay valid until it is finished or gone. */
void sg_park_start(sg_park_t *park, const sg_park_kind_t *kind, h2o_req_t *req, h2o_linklist_t *list, atomic_long *gauge);

/** (Re)arms the deadline `ms` from now (rounded up to 100 ms). */
void sg_park_set_deadline(sg_park_t *park, int64_t ms);

/** Ends the wait: unlinks, disarms, detaches the guard. Returns the request to answer, or NULL
 * when the park was already finished or the client is gone (then there is nothing to answer). */
h2o_req_t *sg_park_finish(sg_park_t *park);

static inline int sg_park_is_parked(const sg_park_t *park)
{
    return park->parked;
}

/** The gateway is stopping: calls on_drain once for every park in `list` (each may finish its
 * own park; none may finish another). */
void sg_park_drain(h2o_linklist_t *list);

#endif
