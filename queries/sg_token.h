/*
 * Consistency tokens (queries/README.md; README: "HTTP API: tables").
 *
 * A token is a set of (topic, partition) -> (offset, stream time) entries: the offset of the
 * last record that must be visible, and the largest record timestamp (ms) applied there.
 * Tokens merge by taking the max of each field per partition. The wire form is opaque to
 * clients: base64url (no padding) of a versioned, canonical binary encoding (entries sorted,
 * no duplicates, varints, checksum), so every token has exactly one text form and a mangled
 * token is rejected rather than misread. Pure data: no Kafka, no HTTP, any thread.
 */
#ifndef SG_TOKEN_H
#define SG_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define SG_TOKEN_VERSION 1
#define SG_TOKEN_MAX_ENTRIES 4096  /* partitions over all topics */
#define SG_TOKEN_MAX_TOPIC_LEN 249 /* Kafka's own limit */
#define SG_TOKEN_MAX_TEXT 32768    /* longest accepted text form */

typedef struct st_sg_token_t sg_token_t;

/** Returns a new, empty token (owned). */
sg_token_t *sg_token_create(void);

/** Frees a token; NULL is a no-op. */
void sg_token_destroy(sg_token_t *token);

/** Returns an owned deep copy. */
sg_token_t *sg_token_dup(const sg_token_t *token);

/** Raises the entry for (topic, partition) to at least (offset, stream_time_ms), adding it if
 * absent. Returns 0, or -1 when the arguments are out of range (negative, topic empty or too
 * long or not [a-zA-Z0-9._-]) or the token would exceed SG_TOKEN_MAX_ENTRIES (or its text
 * SG_TOKEN_MAX_TEXT, so every token encodes to a text decode accepts); on -1 it is unchanged. */
int sg_token_advance(sg_token_t *token, const char *topic, int32_t partition, int64_t offset, int64_t stream_time_ms);

/** Merges src into dst (max per partition). Returns 0 or -1 (entry or text limit; dst unchanged). */
int sg_token_merge(sg_token_t *dst, const sg_token_t *src);

/** Looks up an entry. Returns 0 and fills the outputs, or -1 when absent. */
int sg_token_get(const sg_token_t *token, const char *topic, int32_t partition, int64_t *offset, int64_t *stream_time_ms);

/** Number of entries, and entry i in canonical order (topic bytes, then partition). */
size_t sg_token_count(const sg_token_t *token);
void sg_token_entry(const sg_token_t *token, size_t i, const char **topic, int32_t *partition, int64_t *offset,
                    int64_t *stream_time_ms);

/** Whether `view` has reached `want` for every entry of `want` whose topic satisfies
 * `topic_filter(topic, arg)` (NULL filter = every entry): view offset >= want offset. */
int sg_token_covers(const sg_token_t *view, const sg_token_t *want, int (*topic_filter)(const char *topic, void *arg), void *arg);

/** Encodes to text. Returns the length of the text (excluding NUL); writes at most buflen bytes
 * including the NUL; when the return value >= buflen the text was truncated (call again).
 * buf may be NULL when buflen is 0, to learn the length. */
size_t sg_token_encode(const sg_token_t *token, char *buf, size_t buflen);

/** Encodes the one-entry token {topic: {partition: (offset, stream_time_ms)}} without building
 * a token or allocating: the hot path of every command response. Same contract as
 * sg_token_encode; returns 0 when the arguments are out of range (as sg_token_advance). */
size_t sg_token_encode_one(const char *topic, int32_t partition, int64_t offset, int64_t stream_time_ms, char *buf, size_t buflen);

/** Decodes a text token strictly. Returns an owned token, or NULL with the reason in err
 * (bad base64url, unknown version, truncated, non-canonical order, checksum, limits). */
sg_token_t *sg_token_decode(const char *text, size_t len, char *err, size_t errlen);

#endif
