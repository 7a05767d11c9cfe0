/*
 * See registry_body.h.
 */
#include "registry_body.h"

#include <string.h>

json_t *sg_registry_body_object(const char *body, size_t len)
{
    if (body == NULL || len == 0)
        return NULL;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (doc != NULL && !json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

sg_reg_body_t sg_registry_body_schema(const json_t *doc, size_t max_len, const char **schema, size_t *len)
{
    const json_t *type = json_object_get(doc, "schemaType");
    if (type != NULL && !(json_is_string(type) && strcmp(json_string_value(type), "AVRO") == 0))
        return SG_REG_BODY_SCHEMA_TYPE;
    const json_t *refs = json_object_get(doc, "references");
    if (refs != NULL && !(json_is_array(refs) && json_array_size(refs) == 0))
        return SG_REG_BODY_REFERENCES;
    const json_t *text = json_object_get(doc, "schema");
    if (!json_is_string(text))
        return SG_REG_BODY_NO_SCHEMA;
    *len = json_string_length(text);
    if (*len > max_len)
        return SG_REG_BODY_TOO_LARGE;
    *schema = json_string_value(text);
    return SG_REG_BODY_OK;
}

const char *sg_registry_body_level(const json_t *doc)
{
    const char *name = json_string_value(json_object_get(doc, "compatibility"));
    return name != NULL ? name : json_string_value(json_object_get(doc, "compatibilityLevel"));
}
