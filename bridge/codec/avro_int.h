/*
 * Private to the Avro codec (sg_avro.h), which is four files: avro_schema.c parses a schema and
 * pairs every Avro-C node with the JSON that defined it; avro_forms.c holds the JSON forms of
 * values Avro-C has no JSON for (dates, timestamps, decimals, bytes, uuid); avro_encode.c turns
 * JSON into Avro binary, avro_decode.c Avro binary into JSON.
 *
 * Avro-C 1.11 owns the binary encoding (generic values, avro_value_write/avro_value_read), so
 * the bytes are the standard ones. Its schema API does not represent logical types, so we keep
 * the schema's JSON next to the Avro-C schema and walk both in parallel: every Avro-C node is
 * paired with the JSON object that defined it (named references are resolved through a table of
 * full names built at parse time), and logical-type attributes are read from that JSON.
 */
#ifndef SG_AVRO_INT_H
#define SG_AVRO_INT_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>
#include <jansson.h>

#include "sg_avro.h"

struct st_sg_avro_schema_t {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    json_t *json;  /* the schema text, parsed */
    json_t *named; /* full name -> defining JSON object (references into json) */
};

enum sg_logical {
    LT_NONE,
    LT_DECIMAL,
    LT_UUID,
    LT_DATE,
    LT_TIME_MILLIS,
    LT_TS_MILLIS,
    LT_TS_MICROS,
};

/* Precision of SG_AVRO_DECIMAL_MAX_BYTES bytes: 10^153 < 2^511. */
#define DECIMAL_MAX_PRECISION 153
#define PATH_MAX_LEN 1024
#define ERR_MAX_LEN 256

/* ---- avro_schema.c ------------------------------------------------------------------------- */

/** Follows links to the concrete node. */
avro_schema_t sg_avro_deref(avro_schema_t schema);
/** Follows links and named references so that *node is concrete; returns the JSON (object,
 * type-name string or union array) that describes it. */
const json_t *sg_avro_resolve(const sg_avro_schema_t *sc, avro_schema_t *node, const json_t *def);
/** The logical type of a resolved node, LT_NONE for none or one that does not apply to it. */
enum sg_logical sg_avro_logical_of(avro_schema_t node, const json_t *def);
/** A decimal's scale (0 when absent). */
int sg_avro_decimal_scale(const json_t *def);
/** The name a union branch goes by in Avro's JSON form. */
void sg_avro_branch_name(avro_schema_t branch, char *buf, size_t buflen);

/* ---- avro_forms.c -------------------------------------------------------------------------- */

/** Days since 1970-01-01 to a proleptic Gregorian date. */
void sg_avro_civil_from_days(int64_t days, int64_t *year, int *month, int *day);
/** "YYYY-MM-DD" to days since 1970-01-01. Returns 0 or -1. */
int sg_avro_parse_date(const char *s, int64_t *days);
/** An RFC 3339 date-time to units (1000: ms, 1000000: µs) since the epoch. Returns 0 or -1. */
int sg_avro_parse_timestamp(const char *s, int64_t units_per_sec, int64_t *out);
/** The shortest text that reads back as `value`. */
void sg_avro_shortest_double(double value, char *buf, size_t buflen);
/** A decimal's text to its unscaled two's-complement value, big-endian in all of out. Returns 0,
 * or -1 with err (not a number, too many fraction digits, precision overflow). */
int sg_avro_decimal_encode(const char *text, int precision, int scale, uint8_t out[SG_AVRO_DECIMAL_MAX_BYTES], char *err,
                           size_t errlen);
/** The first byte of the shortest two's-complement form of value. */
int sg_avro_decimal_min_start(const uint8_t value[SG_AVRO_DECIMAL_MAX_BYTES]);
/** A decimal's bytes to its JSON string with exactly `scale` fraction digits; NULL if too long. */
json_t *sg_avro_decimal_to_json(const uint8_t *bytes, size_t len, int scale);
/** Avro's JSON form of bytes (code points 0..255) to bytes in out (room for the string's
 * length). Returns 0, or -1 for a code point above 255. */
int sg_avro_string_to_bytes(const json_t *value, uint8_t *out, size_t *outlen);
/** Bytes to Avro's JSON form: a new string reference. */
json_t *sg_avro_bytes_to_string(const uint8_t *bytes, size_t len);
/** Whether s is a uuid's 8-4-4-4-12 hex text. */
int sg_avro_is_uuid(const char *s, size_t len);

#endif
