/*
 * The request status resource (requests.c), seen from the bridge thread.
 */
#ifndef SG_REQUESTS_H
#define SG_REQUESTS_H

#include "gateway_int.h"

/** Bridge thread: an outcome of `id` was just recorded; wakes the loops' long-polls and status
 * streams of that id (a no-op while none waits anywhere). */
void sg_requests_notify_recorded(sg_server_t *server, const sg_reqid_t *id);

#endif
