/*
 * A JSON Schema (2020-12, as OpenAPI 3.1 embeds it) derived from an Avro schema, describing the
 * JSON form the Avro codec accepts (sg_avro.h): a null-union is a plain value or null, other
 * unions Avro's JSON form, decimals numbers or numeric strings, dates and timestamps integers or
 * strings, bytes and fixed strings of code points 0..255. Pure; any thread.
 */
#ifndef SG_JSONSCHEMA_H
#define SG_JSONSCHEMA_H

#include <jansson.h>

/* Nesting deeper than this is described as any value ({}). */
#define SG_JSONSCHEMA_MAX_DEPTH 32

/** The JSON Schema of values of `avro` (a parsed Avro schema: string, array or object). Named
 * types (records, enums, fixed) are described once, under their full name in `defs` (an object,
 * e.g. OpenAPI's components.schemas), and referenced as "#/components/schemas/<full name>".
 * Returns a new reference. */
json_t *sg_jsonschema_from_avro(const json_t *avro, json_t *defs);

#endif
