/*
 * The HTTP header texts the gateway reads and writes, as pure functions: Prefer (RFC 7240),
 * media types, reply status codes and header values, reason phrases. No HTTP library types, so
 * each rule is unit-tested on its own; any thread.
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

/** Whether a header value can be copied into a response: no CR, LF or NUL (which would split or
 * cut the header). */
int sg_http_header_value_ok(const void *value, size_t len);

/** The reason phrase of a status code (RFC 9110 wording), or "" for one without a known phrase. */
const char *sg_http_reason(int status);

#endif
