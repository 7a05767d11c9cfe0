/*
 * Query strings of the built-in endpoints ("prefix=a&limit=10"): parameters from a fixed list,
 * each given at most once, values percent-decoded ('+' is not a space, %00 is refused). Strict on
 * purpose: an unknown or repeated parameter is an error, so a typo is never silently ignored. A
 * pure function: unit-tested through the table reads and fuzzed (tests/fuzz/fuzz_http.c); any
 * thread.
 */
#ifndef SG_QUERY_H
#define SG_QUERY_H

#include <stddef.h>

typedef enum {
    SG_QUERY_OK = 0,
    SG_QUERY_UNKNOWN,      /* a name not in the list: query[*bad, *bad + *bad_len) */
    SG_QUERY_TWICE,        /* names[*bad] is given twice */
    SG_QUERY_BAD_ENCODING, /* names[*bad]'s value is not valid percent-encoding, or holds a NUL */
} sg_query_status_t;

typedef struct st_sg_query_value_t {
    char *value; /* owned, NUL-terminated; NULL when the parameter is absent ("" for "name" or "name=") */
    size_t len;
} sg_query_value_t;

/** Parses query[0..len) (without the '?') against names[0..n): values[i] is names[i]'s value.
 * Returns SG_QUERY_OK, or what is wrong (see sg_query_status_t) with the values freed. */
sg_query_status_t sg_query_parse(const char *query, size_t len, const char *const *names, size_t n, sg_query_value_t *values,
                                 size_t *bad, size_t *bad_len);

/** Frees values[0..n) (the array itself is the caller's). */
void sg_query_values_free(sg_query_value_t *values, size_t n);

#endif
