/*
 * Avro schemas for the codec (avro_int.h): Avro-C parses and validates the text, and every named
 * definition of the schema's JSON is recorded under its full name, with logical-type attributes
 * checked, so that the encoder and decoder can pair each Avro-C node with its JSON.
 */
#include "avro_int.h"

#include <ctype.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_base.h"

/* ---- schema ------------------------------------------------------------------------------ */

avro_schema_t sg_avro_deref(avro_schema_t schema)
{
    while (is_avro_link(schema))
        schema = avro_schema_link_target(schema);
    return schema;
}

static void full_name(avro_schema_t schema, char *buf, size_t buflen)
{
    const char *ns = avro_schema_namespace(schema);
    if (ns != NULL && *ns != '\0')
        snprintf(buf, buflen, "%s.%s", ns, avro_schema_name(schema));
    else
        snprintf(buf, buflen, "%s", avro_schema_name(schema));
}

static int is_definition_keyword(const char *type)
{
    return strcmp(type, "record") == 0 || strcmp(type, "error") == 0 || strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0;
}

static int check_decimal_attrs(const json_t *def, char *err, size_t errlen)
{
    const json_t *precision = json_object_get(def, "precision");
    const json_t *scale = json_object_get(def, "scale");
    if (!json_is_integer(precision) || json_integer_value(precision) < 1 || json_integer_value(precision) > DECIMAL_MAX_PRECISION) {
        sg_errf(err, errlen, "decimal precision must be an integer in 1..%d", DECIMAL_MAX_PRECISION);
        return -1;
    }
    if (scale != NULL &&
        (!json_is_integer(scale) || json_integer_value(scale) < 0 || json_integer_value(scale) > json_integer_value(precision))) {
        sg_errf(err, errlen, "decimal scale must be an integer in 0..precision");
        return -1;
    }
    return 0;
}

/* Records every named definition under its full name and checks logical-type attributes. */
static int collect(json_t *named, json_t *def, const char *ns, int depth, char *err, size_t errlen)
{
    if (depth > SG_AVRO_MAX_DEPTH) {
        sg_errf(err, errlen, "schema nesting deeper than %d", SG_AVRO_MAX_DEPTH);
        return -1;
    }
    if (json_is_array(def)) {
        size_t i;
        json_t *branch;
        json_array_foreach(def, i, branch)
        {
            if (collect(named, branch, ns, depth + 1, err, errlen) != 0)
                return -1;
        }
        return 0;
    }
    if (!json_is_object(def))
        return 0;
    json_t *type = json_object_get(def, "type");
    const char *logical = json_string_value(json_object_get(def, "logicalType"));
    if (logical != NULL && strcmp(logical, "decimal") == 0 && check_decimal_attrs(def, err, errlen) != 0)
        return -1;
    if (!json_is_string(type))
        return collect(named, type, ns, depth + 1, err, errlen);
    const char *type_name = json_string_value(type);
    if (is_definition_keyword(type_name)) {
        const char *name = json_string_value(json_object_get(def, "name"));
        if (name == NULL) {
            sg_errf(err, errlen, "%s without a name", type_name);
            return -1;
        }
        char fullname[512], inner_ns[512];
        const char *dot = strrchr(name, '.');
        if (dot != NULL) {
            snprintf(fullname, sizeof(fullname), "%s", name);
            snprintf(inner_ns, sizeof(inner_ns), "%.*s", (int)(dot - name), name);
        } else {
            const char *own_ns = json_string_value(json_object_get(def, "namespace"));
            snprintf(inner_ns, sizeof(inner_ns), "%s", own_ns != NULL ? own_ns : ns);
            if (inner_ns[0] != '\0')
                snprintf(fullname, sizeof(fullname), "%s.%s", inner_ns, name);
            else
                snprintf(fullname, sizeof(fullname), "%s", name);
        }
        /* A name is defined once (Avro specification); Avro-C leaks the first definition when it
         * meets a second one, so such schemas never reach it (found by fuzz_registry). */
        if (json_object_get(named, fullname) != NULL) {
            sg_errf(err, errlen, "%s is defined more than once", fullname);
            return -1;
        }
        json_object_set(named, fullname, def);
        /* Avro-C writes a zero-size fixed but cannot read one back ("Cannot allocate"). */
        if (strcmp(type_name, "fixed") == 0 && json_integer_value(json_object_get(def, "size")) < 1) {
            sg_errf(err, errlen, "fixed %s: size must be at least 1", fullname);
            return -1;
        }
        if (strcmp(type_name, "enum") == 0 || strcmp(type_name, "fixed") == 0)
            return 0;
        /* Field names are unique in a record (Avro specification); Avro-C does not check, and a
         * schema with two fields of one name cannot even read its own data (found by
         * fuzz_registry). */
        json_t *field_names = json_object();
        if (field_names == NULL)
            sg_oom();
        size_t i;
        json_t *field;
        int rc = 0;
        json_array_foreach(json_object_get(def, "fields"), i, field)
        {
            const char *field_name = json_string_value(json_object_get(field, "name"));
            if (field_name != NULL && json_object_get(field_names, field_name) != NULL) {
                sg_errf(err, errlen, "record %s: field %s is defined more than once", fullname, field_name);
                rc = -1;
                break;
            }
            if (field_name != NULL)
                json_object_set_new(field_names, field_name, json_true());
            if ((rc = collect(named, json_object_get(field, "type"), inner_ns, depth + 1, err, errlen)) != 0)
                break;
        }
        json_decref(field_names);
        return rc;
    }
    if (strcmp(type_name, "array") == 0)
        return collect(named, json_object_get(def, "items"), ns, depth + 1, err, errlen);
    if (strcmp(type_name, "map") == 0)
        return collect(named, json_object_get(def, "values"), ns, depth + 1, err, errlen);
    return 0;
}

int sg_avro_schema_check_names(const json_t *doc, char *err, size_t errlen)
{
    json_t *named = json_object();
    if (named == NULL)
        sg_oom();
    int rc = collect(named, (json_t *)doc, "", 0, err, errlen);
    json_decref(named);
    return rc;
}

sg_avro_schema_t *sg_avro_schema_parse(const char *json, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (doc == NULL) {
        sg_errf(err, errlen, "schema is not JSON: %s (line %d)", jerr.text, jerr.line);
        return NULL;
    }
    /* Our checks first: some schemas Avro-C refuses leak memory in it. */
    json_t *named = json_object();
    if (named == NULL)
        sg_oom();
    if (collect(named, doc, "", 0, err, errlen) != 0) {
        json_decref(named);
        json_decref(doc);
        return NULL;
    }
    avro_schema_t schema;
    if (avro_schema_from_json_length(json, len, &schema) != 0) {
        sg_errf(err, errlen, "invalid Avro schema: %s", avro_strerror());
        json_decref(named);
        json_decref(doc);
        return NULL;
    }
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    if (iface == NULL) {
        sg_errf(err, errlen, "unsupported Avro schema: %s", avro_strerror());
        json_decref(named);
        json_decref(doc);
        avro_schema_decref(schema);
        return NULL;
    }
    sg_avro_schema_t *result = sg_malloc(sizeof(*result));
    result->schema = schema;
    result->iface = iface;
    result->json = doc;
    result->named = named;
    result->plan = NULL;
    result->plan_nodes = NULL;
    result->n_plan_nodes = 0;
    sg_avro_plan_compile(result); /* once per parsed schema: every encode with it walks this */
    return result;
}

void sg_avro_schema_destroy(sg_avro_schema_t *schema)
{
    if (schema == NULL)
        return;
    sg_avro_plan_free(schema);
    avro_value_iface_decref(schema->iface);
    avro_schema_decref(schema->schema);
    json_decref(schema->named);
    json_decref(schema->json);
    free(schema);
}

/* Follows links and named references so that *node is concrete and the returned JSON is the
 * object (or type-name string, or union array) that describes it. */
const json_t *sg_avro_resolve(const sg_avro_schema_t *sc, avro_schema_t *node, const json_t *def)
{
    *node = sg_avro_deref(*node);
    for (int hops = 0; hops < 8 && def != NULL; hops++) {
        if (json_is_string(def)) {
            if (!is_avro_named_type(*node))
                return def;
            char fullname[512];
            full_name(*node, fullname, sizeof(fullname));
            return json_object_get(sc->named, fullname);
        }
        if (!json_is_object(def))
            return def;
        const json_t *type = json_object_get(def, "type");
        if (json_is_string(type) && (!is_avro_named_type(*node) || is_definition_keyword(json_string_value(type))))
            return def;
        def = type;
    }
    return def;
}

enum sg_logical sg_avro_logical_of(avro_schema_t node, const json_t *def)
{
    const char *name = json_string_value(json_object_get(def, "logicalType"));
    if (name == NULL)
        return LT_NONE;
    switch (avro_typeof(node)) {
    case AVRO_BYTES:
    case AVRO_FIXED: return strcmp(name, "decimal") == 0 ? LT_DECIMAL : LT_NONE;
    case AVRO_STRING: return strcmp(name, "uuid") == 0 ? LT_UUID : LT_NONE;
    case AVRO_INT32:
        if (strcmp(name, "date") == 0)
            return LT_DATE;
        return strcmp(name, "time-millis") == 0 ? LT_TIME_MILLIS : LT_NONE;
    case AVRO_INT64:
        if (strcmp(name, "timestamp-millis") == 0)
            return LT_TS_MILLIS;
        return strcmp(name, "timestamp-micros") == 0 ? LT_TS_MICROS : LT_NONE;
    default: return LT_NONE;
    }
}

int sg_avro_decimal_scale(const json_t *def)
{
    return (int)json_integer_value(json_object_get(def, "scale"));
}

/* The name a union branch goes by in Avro's JSON form. */
void sg_avro_branch_name(avro_schema_t branch, char *buf, size_t buflen)
{
    branch = sg_avro_deref(branch);
    if (is_avro_named_type(branch))
        full_name(branch, buf, buflen);
    else
        snprintf(buf, buflen, "%s", avro_schema_type_name(branch));
}
