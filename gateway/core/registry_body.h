/*
 * The request bodies of /registry (Confluent's REST API), read as pure functions: a registration
 * {"schema": "<avro json>", "schemaType": "AVRO", "references": []} and a compatibility level
 * {"compatibility": "BACKWARD"} (or Confluent's "compatibilityLevel"). What the schema text means
 * is the codec's business (bridge/codec); registry.c turns each outcome into its problem. Any
 * thread; unit-tested through the integration suite and fuzzed (tests/fuzz/fuzz_registry.c).
 */
#ifndef SG_REGISTRY_BODY_H
#define SG_REGISTRY_BODY_H

#include <stddef.h>

#include <jansson.h>

typedef enum {
    SG_REG_BODY_OK = 0,
    SG_REG_BODY_SCHEMA_TYPE, /* schemaType other than AVRO */
    SG_REG_BODY_REFERENCES,  /* references that are not an empty array */
    SG_REG_BODY_NO_SCHEMA,   /* no "schema" string */
    SG_REG_BODY_TOO_LARGE,   /* a schema text longer than allowed */
} sg_reg_body_t;

/** Parses a body that must be one JSON object (duplicate keys refused). Returns the owned object,
 * or NULL when the body is empty, not JSON, or not an object. */
json_t *sg_registry_body_object(const char *body, size_t len);

/** The schema text of a registration body `doc`: SG_REG_BODY_OK with *schema (borrowed from doc)
 * and *len, or why not. Schemas longer than max_len are SG_REG_BODY_TOO_LARGE (*len says how
 * long). */
sg_reg_body_t sg_registry_body_schema(const json_t *doc, size_t max_len, const char **schema, size_t *len);

/** The level named by a compatibility body ("compatibility", else "compatibilityLevel"), borrowed
 * from doc, or NULL when neither is a string. */
const char *sg_registry_body_level(const json_t *doc);

#endif
