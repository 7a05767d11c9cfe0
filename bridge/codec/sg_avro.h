/*
 * Schema-directed conversion between Jansson JSON values and Avro binary (Avro-C); the
 * Confluent framing around it is sg_frame.h. A pure module: no Kafka, no HTTP. Every function may
 * be called from any thread; a parsed schema is immutable and may be shared between threads.
 *
 * JSON form (in): Avro's JSON encoding, except that a null-union ["null", T] (either order) takes
 * a plain value, and logical types take friendlier forms:
 *   decimal           JSON number or numeric string ("12.5"), at most `scale` fraction digits
 *                     (trailing zeros are ignored) and at most `precision` significant digits
 *   uuid              string, 8-4-4-4-12 hex
 *   date              JSON integer (days since 1970-01-01) or "YYYY-MM-DD"
 *   time-millis       JSON integer, 0 <= v < 86400000
 *   timestamp-millis  JSON integer or RFC 3339 string "2024-01-02T03:04:05.678Z" (offsets allowed,
 *   timestamp-micros  at most 3 resp. 6 fraction digits)
 * JSON form (out): decimal as a string with exactly `scale` fraction digits ("12.50"), uuid as
 * its string, date as "YYYY-MM-DD" (years outside 0000..9999 stay integers), time-millis and
 * timestamps as integers (unambiguous, lossless and what Avro's JSON encoding does).
 * Bytes and fixed are strings whose code points 0..255 are the bytes, as in Avro's JSON encoding.
 * (Parse request bodies with JSON_ALLOW_NUL so a zero byte can be sent.) Schema defaults are in
 * Avro's JSON encoding: a union's default belongs to its first branch, a decimal's is raw bytes.
 * Records reject unknown fields. Avro-C 1.11 refuses "\u0000" anywhere in a schema's text, and
 * a fixed of size 0 is refused at parse time (Avro-C writes one it cannot read back).
 */
#ifndef SG_AVRO_H
#define SG_AVRO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Nesting limit for values (records, arrays, maps, unions) and schemas. */
#define SG_AVRO_MAX_DEPTH 64
/* Largest decimal, in bytes of its unscaled two's-complement value (precision <= 153). */
#define SG_AVRO_DECIMAL_MAX_BYTES 64

typedef struct st_sg_avro_schema_t sg_avro_schema_t;

/* Parses an Avro schema (JSON text of `len` bytes). Returns an owned schema, or NULL with a
 * message in err. */
sg_avro_schema_t *sg_avro_schema_parse(const char *json, size_t len, char *err, size_t errlen);
/* Frees a schema; NULL is a no-op. */
void sg_avro_schema_destroy(sg_avro_schema_t *schema);

/* The checks sg_avro_schema_parse makes before handing a schema to Avro-C (every named type
 * defined once, named definitions with names, nesting, decimal attributes, fixed sizes): run them
 * before any other use of Avro-C's parser. Returns 0, or -1 with err. */
int sg_avro_schema_check_names(const json_t *doc, char *err, size_t errlen);

/* A growable output buffer for sg_avro_encode (init/dispose on caller memory): it starts in
 * storage the caller lends (a stack array, or NULL for none) and moves to the heap when that is
 * full. bytes[0..len) is the content; the caller may write into it. */
typedef struct st_sg_avro_buf_t {
    uint8_t *bytes;
    size_t len, cap;
    void *storage; /* the lent storage: bytes point there until the buffer grows */
} sg_avro_buf_t;

/* Starts a buffer in `storage` (cap bytes; NULL for none) with its first `reserve` bytes set
 * aside for the caller (a frame header): len starts at reserve. */
void sg_avro_buf_init(sg_avro_buf_t *buf, void *storage, size_t cap, size_t reserve);
/* Frees what the buffer allocated (never the lent storage). */
void sg_avro_buf_dispose(sg_avro_buf_t *buf);

/* Validates `value` against the schema and appends its Avro encoding to buf, in one walk of the
 * schema's compiled plan. Returns 0, or -1 (buf's length as it was) with `path` the JSON pointer
 * of the offending value ("" for the root, "/items/2/price") and err the reason ("expected
 * number"). The schema is only read: any number of threads may encode with it at once. */
int sg_avro_encode(const sg_avro_schema_t *schema, const json_t *value, sg_avro_buf_t *buf, char *path, size_t pathlen, char *err,
                   size_t errlen);

/* As sg_avro_encode, into a new buffer: returns 0 with *out an owned malloc'd buffer (free()) of
 * *outlen bytes, or -1 with path and err as there (*out NULL, *outlen 0). */
int sg_avro_from_json(const sg_avro_schema_t *schema, const json_t *value, void **out, size_t *outlen, char *path, size_t pathlen,
                      char *err, size_t errlen);

/* As sg_avro_encode without producing the encoding (the same walk, writing nothing): for values
 * that are checked against a schema but sent as JSON. Returns 0 or -1. */
int sg_avro_validate_json(const sg_avro_schema_t *schema, const json_t *value, char *path, size_t pathlen, char *err,
                          size_t errlen);

/* Decodes exactly `len` bytes of Avro binary (truncated data or trailing bytes are errors).
 * Returns 0 with *out a new reference, or -1 with a message in err. */
int sg_avro_to_json(const sg_avro_schema_t *schema, const void *data, size_t len, json_t **out, char *err, size_t errlen);

#endif
