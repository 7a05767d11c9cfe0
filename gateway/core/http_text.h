/*
 * The HTTP header texts the gateway reads and writes, as pure functions: Prefer (RFC 7240),
 * media types, Idempotency-Key, reply status codes, header names and values, reason phrases. No
 * HTTP library types, so each rule is unit-tested (and fuzzed, tests/fuzz) on its own; any thread.
 */
#ifndef SG_HTTP_TEXT_H
#define SG_HTTP_TEXT_H

#include <stddef.h>
#include <stdint.h>

/** Reads one Prefer header value: sets *async for "respond-async" and *wait_ms for "wait=N"
 * (seconds, digits only); leaves them alone otherwise. Preferences are comma-separated, their
 * parameters (after ';') are ignored, names are case-insensitive. */
void sg_prefer_parse(const char *value, size_t len, int *async, int64_t *wait_ms);

/** Whether the media type in value[0..len) (its type/subtype, parameters ignored) is `type`
 * (lower-case), case-insensitively. */
int sg_media_type_is(const char *value, size_t len, const char *type);

/** Whether value[0..len) is application/json or application/<something>+json. */
int sg_media_type_is_json(const char *value, size_t len);

/** A reply's ":status" header: exactly three ASCII digits naming 100..599. Returns the status,
 * or 0 when the text is anything else. */
int sg_http_status_parse(const void *text, size_t len);

/** Whether a worker's status can be the final answer to a request: 200..599 (1xx are interim
 * responses, which a reply cannot be). */
int sg_http_status_is_final(int status);

/** Whether a response with this status has content: not 1xx, 204 (No Content) or 304 (Not
 * Modified), which are sent without a body and without Content-Length (RFC 9110 8.6, 15.3.5). */
int sg_http_status_has_content(int status);

/** Whether a header value can be copied into a response: no CR, LF or NUL (which would split or
 * cut the header). */
int sg_http_header_value_ok(const void *value, size_t len);

#define SG_HTTP_MAX_HEADER_NAME 256

/** Whether name[0..len) can name a response header: 1..SG_HTTP_MAX_HEADER_NAME RFC 9110 tchar
 * (a token), and not one that frames the message or the connection (Content-Length,
 * Transfer-Encoding, Connection, Keep-Alive, Upgrade, TE, Trailer, Proxy-Connection, Host), which
 * only the server may set. */
int sg_http_header_name_ok(const void *name, size_t len);

/** Lower-cases name[0..len) into out (len + 1 bytes, NUL-terminated): HTTP/2 and HTTP/3 allow
 * only lower-case field names, and HTTP/1 names are case-insensitive. */
void sg_http_lowercase(const void *name, size_t len, char *out);

#define SG_IDEMPOTENCY_KEY_MAX 255

/** An Idempotency-Key value: quoted (a structured-field string) or bare, 1..SG_IDEMPOTENCY_KEY_MAX
 * printable ASCII characters (0x21..0x7e). Returns 0 with the key as value[*start, *start +
 * *key_len), or -1. */
int sg_idempotency_key_parse(const char *value, size_t len, size_t *start, size_t *key_len);

/** The reason phrase of a status code (RFC 9110 wording), or "" for one without a known phrase. */
const char *sg_http_reason(int status);

#endif
