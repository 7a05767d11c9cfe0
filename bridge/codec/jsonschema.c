/*
 * Avro schema (as parsed JSON) to JSON Schema (sg_jsonschema.h). The walk follows Avro's naming
 * rules (a full name sets the namespace of what it contains) so that references resolve to the
 * definitions written into defs; a record is entered in defs before its fields are walked, so a
 * recursive record refers to itself instead of recursing.
 */
#include "sg_jsonschema.h"

#include <stdio.h>
#include <string.h>

static json_t *avro_to_json_schema(const json_t *avro, const char *ns, json_t *defs, int depth);

static json_t *named_ref(const char *fullname)
{
    char ref[512];
    snprintf(ref, sizeof(ref), "#/components/schemas/%s", fullname);
    return json_pack("{s:s}", "$ref", ref);
}

static void full_name(const json_t *avro, const char *ns, char *out, size_t outlen)
{
    const char *name = json_string_value(json_object_get(avro, "name"));
    const char *own_ns = json_string_value(json_object_get(avro, "namespace"));
    if (name == NULL)
        name = "anonymous";
    if (strchr(name, '.') != NULL || ((own_ns == NULL || *own_ns == '\0') && (ns == NULL || *ns == '\0')))
        snprintf(out, outlen, "%s", name);
    else
        snprintf(out, outlen, "%s.%s", own_ns != NULL && *own_ns ? own_ns : ns, name);
}

static json_t *primitive(const char *type)
{
    if (strcmp(type, "null") == 0)
        return json_pack("{s:s}", "type", "null");
    if (strcmp(type, "boolean") == 0)
        return json_pack("{s:s}", "type", "boolean");
    if (strcmp(type, "int") == 0 || strcmp(type, "long") == 0)
        return json_pack("{s:s}", "type", "integer");
    if (strcmp(type, "float") == 0 || strcmp(type, "double") == 0)
        return json_pack("{s:s}", "type", "number");
    if (strcmp(type, "string") == 0)
        return json_pack("{s:s}", "type", "string");
    if (strcmp(type, "bytes") == 0)
        return json_pack("{s:s, s:s}", "type", "string", "description", "bytes: code points 0..255");
    return NULL;
}

static json_t *logical(const json_t *avro)
{
    const char *logical_type = json_string_value(json_object_get(avro, "logicalType"));
    if (logical_type == NULL)
        return NULL;
    if (strcmp(logical_type, "decimal") == 0)
        return json_pack("{s:[s,s], s:s}", "type", "number", "string", "description", "decimal: a number or a numeric string");
    if (strcmp(logical_type, "uuid") == 0)
        return json_pack("{s:s, s:s}", "type", "string", "format", "uuid");
    if (strcmp(logical_type, "date") == 0)
        return json_pack("{s:[s,s], s:s}", "type", "string", "integer", "description", "date: YYYY-MM-DD or days since 1970-01-01");
    if (strcmp(logical_type, "time-millis") == 0)
        return json_pack("{s:s, s:i, s:i}", "type", "integer", "minimum", 0, "maximum", 86399999);
    if (strcmp(logical_type, "timestamp-millis") == 0 || strcmp(logical_type, "timestamp-micros") == 0)
        return json_pack("{s:[s,s], s:s}", "type", "integer", "string", "description",
                         "timestamp: an integer since the epoch, or an RFC 3339 date-time");
    return NULL;
}

static json_t *avro_to_json_schema(const json_t *avro, const char *ns, json_t *defs, int depth)
{
    if (depth > SG_JSONSCHEMA_MAX_DEPTH)
        return json_object();
    if (json_is_string(avro)) {
        const char *type = json_string_value(avro);
        json_t *prim = primitive(type);
        if (prim != NULL)
            return prim;
        char name[512];
        if (strchr(type, '.') == NULL && ns != NULL && *ns != '\0')
            snprintf(name, sizeof(name), "%s.%s", ns, type);
        else
            snprintf(name, sizeof(name), "%s", type);
        return named_ref(name);
    }
    if (json_is_array(avro)) {
        size_t n = json_array_size(avro);
        int has_null = 0;
        json_t *branches = json_array();
        for (size_t i = 0; i < n; ++i) {
            const json_t *branch = json_array_get(avro, i);
            if (json_is_string(branch) && strcmp(json_string_value(branch), "null") == 0)
                has_null = 1;
            json_array_append_new(branches, avro_to_json_schema(branch, ns, defs, depth + 1));
        }
        if (has_null && n == 2) /* a null-union takes a plain value */
            return json_pack("{s:o}", "anyOf", branches);
        json_decref(branches);
        return json_pack("{s:s, s:s}", "type", "object", "description", "a union in Avro's JSON form: {\"<branch type>\": value}");
    }
    if (!json_is_object(avro))
        return json_object();
    json_t *lt = logical(avro);
    if (lt != NULL)
        return lt;
    const char *type = json_string_value(json_object_get(avro, "type"));
    if (type == NULL)
        return avro_to_json_schema(json_object_get(avro, "type"), ns, defs, depth + 1);
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0 || strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0) {
        char name[512];
        full_name(avro, ns, name, sizeof(name));
        if (json_object_get(defs, name) != NULL)
            return named_ref(name);
        const char *own_ns = json_string_value(json_object_get(avro, "namespace"));
        char inner_ns[512];
        snprintf(inner_ns, sizeof(inner_ns), "%s", own_ns != NULL ? own_ns : ns != NULL ? ns : "");
        if (strchr(name, '.') != NULL) { /* a full name sets the namespace for what it contains */
            snprintf(inner_ns, sizeof(inner_ns), "%s", name);
            *strrchr(inner_ns, '.') = '\0';
        }
        json_t *def;
        if (strcmp(type, "enum") == 0) {
            def = json_pack("{s:s, s:O}", "type", "string", "enum", json_object_get(avro, "symbols"));
        } else if (strcmp(type, "fixed") == 0) {
            json_int_t size = json_integer_value(json_object_get(avro, "size"));
            def = json_pack("{s:s, s:I, s:I, s:s}", "type", "string", "minLength", size, "maxLength", size, "description",
                            "fixed: code points 0..255");
        } else {
            json_object_set_new(defs, name, json_object()); /* placeholder: recursive references */
            json_t *properties = json_object();
            json_t *required = json_array();
            size_t i;
            json_t *field;
            json_array_foreach(json_object_get(avro, "fields"), i, field)
            {
                const char *field_name = json_string_value(json_object_get(field, "name"));
                if (field_name == NULL)
                    continue;
                json_t *field_schema = avro_to_json_schema(json_object_get(field, "type"), inner_ns, defs, depth + 1);
                const char *doc = json_string_value(json_object_get(field, "doc"));
                if (doc != NULL)
                    json_object_set_new(field_schema, "description", json_string(doc));
                json_object_set_new(properties, field_name, field_schema);
                if (json_object_get(field, "default") == NULL)
                    json_array_append_new(required, json_string(field_name));
            }
            def = json_pack("{s:s, s:o, s:o, s:b}", "type", "object", "properties", properties, "required", required,
                            "additionalProperties", 0);
        }
        const char *doc = json_string_value(json_object_get(avro, "doc"));
        if (doc != NULL)
            json_object_set_new(def, "description", json_string(doc));
        json_object_set_new(defs, name, def);
        return named_ref(name);
    }
    if (strcmp(type, "array") == 0)
        return json_pack("{s:s, s:o}", "type", "array", "items",
                         avro_to_json_schema(json_object_get(avro, "items"), ns, defs, depth + 1));
    if (strcmp(type, "map") == 0)
        return json_pack("{s:s, s:o}", "type", "object", "additionalProperties",
                         avro_to_json_schema(json_object_get(avro, "values"), ns, defs, depth + 1));
    json_t *prim = primitive(type);
    return prim != NULL ? prim : json_object();
}

json_t *sg_jsonschema_from_avro(const json_t *avro, json_t *defs)
{
    return avro_to_json_schema(avro, NULL, defs, 0);
}
