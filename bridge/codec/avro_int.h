/*
 * Private to the Avro codec (sg_avro.h), which is five files: avro_schema.c parses a schema and
 * pairs every Avro-C node with the JSON that defined it; avro_plan.c compiles those pairs once
 * into an encoding plan; avro_forms.c holds the JSON forms of values Avro-C has no JSON for
 * (dates, timestamps, decimals, bytes, uuid); avro_encode.c turns JSON into Avro binary by
 * walking the plan, avro_decode.c Avro binary into JSON.
 *
 * Avro-C 1.11 parses schemas and reads the binary encoding (generic values, avro_value_read).
 * Its schema API does not represent logical types, so we keep the schema's JSON next to the
 * Avro-C schema and walk both in parallel: every Avro-C node is paired with the JSON object that
 * defined it (named references are resolved through a table of full names built at parse time),
 * and logical-type attributes are read from that JSON. The decoder does that walk per value; the
 * encoder, on the request path, does it once per schema (the plan) and then writes the standard
 * bytes itself, without Avro-C's value tree.
 */
#ifndef SG_AVRO_INT_H
#define SG_AVRO_INT_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>
#include <jansson.h>

#include "sg_avro.h"

typedef struct st_sg_avro_plan_t sg_avro_plan_t;

struct st_sg_avro_schema_t {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    json_t *json;                /* the schema text, parsed */
    json_t *named;               /* full name -> defining JSON object (references into json) */
    sg_avro_plan_t *plan;        /* the encoding plan of the whole schema (avro_plan.c) */
    sg_avro_plan_t **plan_nodes; /* every node of it, for sg_avro_plan_free */
    size_t n_plan_nodes;
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

/* ---- avro_plan.c --------------------------------------------------------------------------- */

/* One record field of a plan. Names and defaults are borrowed from the schema (Avro-C's node,
 * the schema's JSON), which the plan never outlives. */
typedef struct {
    const char *name;
    size_t name_len;
    const json_t *default_value; /* NULL: the field is required */
    const sg_avro_plan_t *type;
} sg_avro_plan_field_t;

/* What the encoder needs of one resolved (Avro-C node, JSON definition) pair, worked out once:
 * the JSON lookups the encoder used to make per value (type, logicalType, precision, scale,
 * fields, items, branch names) are in here. Named types are compiled once and shared, so a
 * recursive schema gives a cyclic plan. Immutable once compiled: any thread may read it. */
struct st_sg_avro_plan_t {
    avro_type_t type;
    enum sg_logical logical;
    avro_schema_t node;   /* the concrete Avro-C node, for the error paths' lookups */
    int precision, scale; /* decimal */
    int64_t fixed_size;   /* fixed */
    size_t count;         /* record fields, union branches */
    sg_avro_plan_field_t *fields;
    const sg_avro_plan_t **branches;
    char **branch_names;         /* the name a branch goes by in Avro's JSON form (sg_avro_branch_name) */
    const char **branch_short;   /* a named branch's own (short) name, else NULL */
    int null_index;              /* the last null branch, or -1 */
    const sg_avro_plan_t *items; /* array items, map values */
};

/** Compiles sc's plan (sc->plan, sc->plan_nodes). Never fails: every schema Avro-C parsed has one. */
void sg_avro_plan_compile(sg_avro_schema_t *sc);
/** Frees sc's plan; none is a no-op. */
void sg_avro_plan_free(sg_avro_schema_t *sc);

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
/** sg_avro_decimal_encode's value for the common short case (plain digits, at most one point, no
 * exponent, at most 18 significant digits, within precision and scale), as an int64. Returns 0,
 * or -1 for any other text: then sg_avro_decimal_encode decides (value or error). */
int sg_avro_decimal_small(const char *text, int precision, int scale, int64_t *out);
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
