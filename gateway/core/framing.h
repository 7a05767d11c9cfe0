/*
 * HTTP/1 message framing that a gateway behind a proxy must not guess at (RFC 9112 6.3): a
 * request head whose body length two parties could read differently is refused, since that is
 * how requests are smuggled past a proxy. H2O 2.2.5 takes the first of two Content-Length values
 * and lets Transfer-Encoding win over Content-Length; this check runs before any handler acts on
 * such a request. A pure function over the raw head: unit-tested and fuzzed; any thread.
 */
#ifndef SG_FRAMING_H
#define SG_FRAMING_H

#include <stddef.h>

typedef enum {
    SG_HEAD_OK = 0,
    SG_HEAD_AMBIGUOUS_FRAMING = -1, /* Content-Length values that are not all digits or that differ,
                                     * Content-Length with Transfer-Encoding, Transfer-Encoding twice */
    SG_HEAD_INVALID = -2,           /* obsolete line folding, white space between a field name and its
                                     * colon, a line without a colon, Host missing (HTTP/1.1) or
                                     * given twice (RFC 9112 3.2) */
} sg_head_check_t;

/** Checks the head of an HTTP/1 request: head[0..len) starts at the request line (leading empty
 * lines are skipped, as parsers do) and ends at or after the empty line that closes the head.
 * Returns SG_HEAD_OK, or why not (the reason in why). A head cut short (no empty line within len)
 * is judged on its complete lines, without the Host rule. */
sg_head_check_t sg_http1_head_check(const char *head, size_t len, char *why, size_t whylen);

#endif
