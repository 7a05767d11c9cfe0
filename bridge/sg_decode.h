/*
 * Record values in the Confluent wire format (sg_frame.h) decoded to JSON text by their schema
 * id, looked up in the registry, for the places that serve records as JSON: replies and table
 * rows.
 */
#ifndef SG_DECODE_H
#define SG_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "sg_frame.h"
#include "sg_registry.h"

/** Whether data is Confluent-framed (sg_avro_is_framed). */
static inline int sg_decode_is_framed(const void *data, size_t len)
{
    return sg_avro_is_framed(data, len);
}

/** Decodes a framed value to compact JSON text, looking its schema up by id (sg_registry_fetch:
 * in external mode this may block for a few seconds: bridge/materializer threads only). Returns
 * 0 with *json (owned, NUL-terminated) and *json_len, or -1 with *schema_id (0 when not framed)
 * and a reason in err: unknown id, or data the schema does not decode. reg NULL: every id is
 * unknown. */
int sg_decode_framed(sg_registry_t *reg, const void *data, size_t len, char **json, size_t *json_len, uint32_t *schema_id,
                     char *err, size_t errlen);

#endif
