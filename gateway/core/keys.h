/*
 * Event keys from requests: RFC 6901 JSON pointers into the body, and the rules for turning a
 * JSON value into key bytes (a string is its UTF-8 bytes, an integer its decimal text; other
 * types are refused, so the same entity always gets the same key and so the same partition).
 */
#ifndef SG_KEYS_H
#define SG_KEYS_H

#include <stddef.h>

#include <jansson.h>

#define SG_KEY_MAX_BYTES 4096

/** Resolves `pointer` ("" = the root, "/a/0/b~1c") in `root`. Returns the borrowed value, or
 * NULL when a step is missing (err says which step) or the pointer is malformed. */
json_t *sg_json_pointer_get(json_t *root, const char *pointer, char *err, size_t errlen);

/** Turns a key field into bytes in buf (NUL-terminated). Returns the length, or -1 with err
 * when the value is not a non-empty string or an integer, or is longer than SG_KEY_MAX_BYTES. */
int sg_key_from_json(const json_t *value, char *buf, size_t buflen, char *err, size_t errlen);

/** The command path's fast lane: one pass over `text` without building a tree. Returns 1 when
 * `text` is a JSON document that json_loadb(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES) accepts
 * and, if `pointer` is not NULL, the value there is one that sg_key_from_json turns into the same
 * bytes: a non-empty string of at most SG_KEY_MAX_BYTES without escapes, or an integer; then
 * *key / *key_len point into `text` (unless `pointer` is NULL). Returns 0 for everything else:
 * invalid JSON, but also what it leaves to Jansson (bytes >= 0x80, \u escapes, numbers near
 * Jansson's limits, deep or wide nesting, a key that is missing or of another type), so that the
 * caller parses with Jansson, whose verdict and messages stay the contract. Any thread. */
int sg_key_scan_json(const char *text, size_t len, const char *pointer, const char **key, size_t *key_len);

#endif
