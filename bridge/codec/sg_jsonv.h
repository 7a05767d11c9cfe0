/*
 * A JSON validator that allocates nothing: RFC 8259 grammar, UTF-8 checked (no overlong forms,
 * no encoded surrogates, nothing above U+10FFFF), \u escapes checked (surrogates must pair).
 * For hot paths that only need to know a value is one JSON text (the materializer checks
 * every table record): parsing it into a tree only to free it was a fifth of a restore.
 */
#ifndef SG_JSONV_H
#define SG_JSONV_H

#include <stddef.h>

/* Nesting deeper than this is refused (the validator recurses). */
#define SG_JSONV_MAX_DEPTH 512

/** Whether data[0..len) is exactly one JSON text (any value, surrounding whitespace allowed).
 * Returns 1, or 0 with *error_at the byte offset where it stopped being JSON (may be NULL). */
int sg_jsonv_check(const void *data, size_t len, size_t *error_at);

#endif
