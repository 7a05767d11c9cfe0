/*
 * Confluent-framed Avro values to JSON text (sg_decode.h): the codec does the bytes, the registry
 * knows the schema ids.
 */
#include "sg_decode.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sg_avro.h"
#include "sg_base.h"

int sg_decode_framed(sg_registry_t *reg, const void *data, size_t len, char **json, size_t *json_len, uint32_t *schema_id,
                     char *err, size_t errlen)
{
    const void *payload;
    size_t payload_len;
    *schema_id = 0;
    if (sg_avro_unframe(data, len, schema_id, &payload, &payload_len) != 0)
        return sg_errf(err, errlen, "not in the Confluent wire format");
    char why[256] = "unknown schema id";
    const sg_registry_schema_t *schema = reg != NULL ? sg_registry_fetch(reg, *schema_id, why, sizeof(why)) : NULL;
    if (schema == NULL)
        return sg_errf(err, errlen, "schema id %u: %s", (unsigned)*schema_id, why);
    json_t *value = NULL;
    const sg_avro_schema_t *avro = sg_registry_schema_avro_get(schema, why, sizeof(why));
    if (avro == NULL)
        return sg_errf(err, errlen, "schema id %u: %s", (unsigned)*schema_id, why);
    int rc = sg_avro_to_json(avro, payload, payload_len, &value, why, sizeof(why));
    sg_registry_schema_avro_put(schema, avro);
    if (rc != 0)
        return sg_errf(err, errlen, "schema id %u: the Avro data does not decode: %s", (unsigned)*schema_id, why);
    /* Bytes may hold zero bytes: the JSON text escapes them (\u0000), so it stays one string. */
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(value);
    if (text == NULL)
        sg_oom();
    *json = text;
    *json_len = strlen(text);
    return 0;
}
