/*
 * W3C Trace Context for the events we produce: a request's `traceparent` (version 00) keeps the
 * caller's trace id and flags with a new span id for our hop; a missing or malformed one starts
 * a new trace. Pure functions on caller memory (the random state is the caller's): any thread.
 */
#ifndef SG_TRACE_H
#define SG_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define SG_TRACEPARENT_LEN 55 /* "00-" trace id (32 hex) "-" span id (16 hex) "-" flags (2 hex) */

/** Whether text[0..len) is a version-00 traceparent whose trace id and flags we keep: the
 * separators in place, a lower-case hex trace id that is not all zeros, lower-case hex flags. */
int sg_traceparent_valid(const char *text, size_t len);

/** The next value of a xorshift64 generator; *state must not be 0. Not for secrets. */
uint64_t sg_trace_random(uint64_t *state);

/** Writes the traceparent for our hop into out, NUL-terminated: the incoming trace id and flags
 * (when sg_traceparent_valid) or a new trace id with flags 01, and always a new span id, all from
 * *rng. `incoming` may be NULL. */
void sg_traceparent_make(uint64_t *rng, const char *incoming, size_t len, char out[SG_TRACEPARENT_LEN + 1]);

#endif
