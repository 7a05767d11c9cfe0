/*
 * Avro binary -> JSON, directed by a schema (sg_avro.h).
 *
 * Decoding first scans the binary ourselves with bounds checks: Avro-C trusts length prefixes
 * and block counts (a hostile length becomes a huge malloc, a hostile count of null items a
 * near-endless loop), and it cannot tell us whether trailing bytes were left over.
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

/* ---- Avro -> JSON ------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *p, *end;
    size_t items_left; /* budget for array/map items, against zero-size-item bombs */
    char *err;
    size_t errlen;
} scan_t;

static int scan_fail(scan_t *sc, const char *what)
{
    sg_errf(sc->err, sc->errlen, "invalid Avro data: %s", what);
    return -1;
}

static int scan_varint(scan_t *sc, int max_bytes, int64_t *out)
{
    uint64_t raw = 0;
    for (int shift = 0, n = 0;; shift += 7, n++) {
        if (n >= max_bytes)
            return scan_fail(sc, "varint too long");
        if (sc->p >= sc->end)
            return scan_fail(sc, "truncated");
        uint8_t byte = *sc->p++;
        raw |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            break;
    }
    *out = (int64_t)(raw >> 1) ^ -(int64_t)(raw & 1);
    return 0;
}

static int scan_skip(scan_t *sc, int64_t len)
{
    if (len < 0 || len > sc->end - sc->p)
        return scan_fail(sc, "truncated");
    sc->p += len;
    return 0;
}

static int scan(scan_t *sc, avro_schema_t node, int depth)
{
    node = sg_avro_deref(node);
    int64_t number;
    if (depth > SG_AVRO_MAX_DEPTH)
        return scan_fail(sc, "nesting too deep");
    switch (avro_typeof(node)) {
    case AVRO_NULL: return 0;
    case AVRO_BOOLEAN: return scan_skip(sc, 1);
    case AVRO_INT32:
        if (scan_varint(sc, 5, &number) != 0)
            return -1;
        return number < INT32_MIN || number > INT32_MAX ? scan_fail(sc, "int out of range") : 0;
    case AVRO_INT64: return scan_varint(sc, 10, &number);
    case AVRO_FLOAT: return scan_skip(sc, 4);
    case AVRO_DOUBLE: return scan_skip(sc, 8);
    case AVRO_STRING:
    case AVRO_BYTES:
        if (scan_varint(sc, 10, &number) != 0)
            return -1;
        return scan_skip(sc, number);
    case AVRO_FIXED: return scan_skip(sc, avro_schema_fixed_size(node));
    case AVRO_ENUM:
        if (scan_varint(sc, 5, &number) != 0)
            return -1;
        if (number < 0 || number >= avro_schema_enum_number_of_symbols(node))
            return scan_fail(sc, "enum index out of range");
        return 0;
    case AVRO_UNION:
        if (scan_varint(sc, 5, &number) != 0)
            return -1;
        if (number < 0 || (size_t)number >= avro_schema_union_size(node))
            return scan_fail(sc, "union index out of range");
        return scan(sc, avro_schema_union_branch(node, (int)number), depth + 1);
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(node); i++) {
            if (scan(sc, avro_schema_record_field_get_by_index(node, (int)i), depth + 1) != 0)
                return -1;
        }
        return 0;
    case AVRO_ARRAY:
    case AVRO_MAP:
        for (;;) {
            int64_t count, block_size;
            if (scan_varint(sc, 10, &count) != 0)
                return -1;
            if (count == 0)
                return 0;
            if (count < 0) {
                if (count == INT64_MIN || scan_varint(sc, 10, &block_size) != 0)
                    return scan_fail(sc, "bad block");
                count = -count;
            }
            if ((uint64_t)count > sc->items_left)
                return scan_fail(sc, "too many items");
            sc->items_left -= (size_t)count;
            for (int64_t i = 0; i < count; i++) {
                if (is_avro_map(node)) {
                    if (scan_varint(sc, 10, &number) != 0 || scan_skip(sc, number) != 0)
                        return -1;
                }
                if (scan(sc, is_avro_map(node) ? avro_schema_map_values(node) : avro_schema_array_items(node), depth + 1) != 0)
                    return -1;
            }
        }
    default: return scan_fail(sc, "unsupported schema type");
    }
}

typedef struct {
    const sg_avro_schema_t *sc;
    char *err;
    size_t errlen;
} dec_ctx_t;

static json_t *dec_fail(dec_ctx_t *ctx, const char *what)
{
    sg_errf(ctx->err, ctx->errlen, "%s", what);
    return NULL;
}

static json_t *decode(dec_ctx_t *ctx, avro_value_t *src, avro_schema_t node, const json_t *def);

static json_t *decode_container(dec_ctx_t *ctx, avro_value_t *src, avro_schema_t node, const json_t *def)
{
    size_t count;
    if (avro_value_get_size(src, &count) != 0)
        return dec_fail(ctx, avro_strerror());
    json_t *result = is_avro_array(node) ? json_array() : json_object();
    if (result == NULL)
        sg_oom();
    const json_t *fields = json_object_get(def, "fields");
    for (size_t i = 0; i < count; i++) {
        avro_value_t child;
        const char *name = NULL;
        if (avro_value_get_by_index(src, i, &child, &name) != 0) {
            json_decref(result);
            return dec_fail(ctx, avro_strerror());
        }
        json_t *item;
        if (is_avro_record(node))
            item = decode(ctx, &child, avro_schema_record_field_get_by_index(node, (int)i),
                          json_object_get(json_array_get(fields, i), "type"));
        else if (is_avro_map(node))
            item = decode(ctx, &child, avro_schema_map_values(node), json_object_get(def, "values"));
        else
            item = decode(ctx, &child, avro_schema_array_items(node), json_object_get(def, "items"));
        if (item == NULL) {
            json_decref(result);
            return NULL;
        }
        if (is_avro_array(node)) {
            json_array_append_new(result, item);
        } else if (json_object_set_new(result, name, item) != 0) {
            /* Jansson refuses a key that is not UTF-8; dropping the entry would lose data. */
            json_decref(result);
            return dec_fail(ctx, "map key is not valid UTF-8");
        }
    }
    return result;
}

static json_t *decode(dec_ctx_t *ctx, avro_value_t *src, avro_schema_t node, const json_t *def)
{
    def = sg_avro_resolve(ctx->sc, &node, def);
    enum sg_logical logical = sg_avro_logical_of(node, def);
    int rc = 0;
    json_t *result = NULL;
    switch (avro_typeof(node)) {
    case AVRO_NULL: return json_null();
    case AVRO_BOOLEAN: {
        int flag = 0;
        rc = avro_value_get_boolean(src, &flag);
        result = json_boolean(flag);
        break;
    }
    case AVRO_INT32: {
        int32_t number = 0;
        rc = avro_value_get_int(src, &number);
        int64_t year;
        int month, day;
        if (logical == LT_DATE)
            sg_avro_civil_from_days(number, &year, &month, &day);
        if (rc == 0 && logical == LT_DATE && year >= 0 && year <= 9999) {
            char text[16];
            snprintf(text, sizeof(text), "%04d-%02d-%02d", (int)year, month, day);
            result = json_string(text);
        } else {
            result = json_integer(number);
        }
        break;
    }
    case AVRO_INT64: {
        int64_t number = 0;
        rc = avro_value_get_long(src, &number);
        result = json_integer(number);
        break;
    }
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        double number;
        if (is_avro_float(node)) {
            float single = 0;
            rc = avro_value_get_float(src, &single);
            number = single;
        } else {
            rc = avro_value_get_double(src, &number);
        }
        if (rc == 0 && !isfinite(number))
            return dec_fail(ctx, "non-finite number has no JSON form");
        result = json_real(number);
        break;
    }
    case AVRO_STRING: {
        const char *str;
        size_t size;
        rc = avro_value_get_string(src, &str, &size);
        if (rc == 0 && (result = json_stringn(str, size > 0 ? size - 1 : 0)) == NULL)
            return dec_fail(ctx, "string is not valid UTF-8");
        break;
    }
    case AVRO_BYTES:
    case AVRO_FIXED: {
        const void *bytes;
        size_t size;
        rc = is_avro_bytes(node) ? avro_value_get_bytes(src, &bytes, &size) : avro_value_get_fixed(src, &bytes, &size);
        if (rc != 0)
            break;
        if (logical == LT_DECIMAL) {
            if ((result = sg_avro_decimal_to_json(bytes, size, sg_avro_decimal_scale(def))) == NULL)
                return dec_fail(ctx, "decimal too large");
        } else {
            result = sg_avro_bytes_to_string(bytes, size);
        }
        break;
    }
    case AVRO_ENUM: {
        int symbol;
        rc = avro_value_get_enum(src, &symbol);
        if (rc == 0)
            result = json_string(avro_schema_enum_get(node, symbol));
        break;
    }
    case AVRO_RECORD:
    case AVRO_ARRAY:
    case AVRO_MAP: return decode_container(ctx, src, node, def);
    case AVRO_UNION: {
        int index;
        avro_value_t branch;
        if (avro_value_get_discriminant(src, &index) != 0 || avro_value_get_current_branch(src, &branch) != 0)
            return dec_fail(ctx, avro_strerror());
        avro_schema_t branch_node = sg_avro_deref(avro_schema_union_branch(node, index));
        json_t *inner = decode(ctx, &branch, branch_node, json_array_get(def, (size_t)index));
        if (inner == NULL || is_avro_null(branch_node))
            return inner;
        size_t nbranches = avro_schema_union_size(node);
        int has_null = 0;
        for (size_t i = 0; i < nbranches; i++)
            has_null |= is_avro_null(sg_avro_deref(avro_schema_union_branch(node, (int)i)));
        if (nbranches == 2 && has_null)
            return inner;
        char name[512];
        sg_avro_branch_name(branch_node, name, sizeof(name));
        result = json_object();
        if (result == NULL)
            sg_oom();
        json_object_set_new(result, name, inner);
        return result;
    }
    default: return dec_fail(ctx, "unsupported schema type");
    }
    if (rc != 0)
        return dec_fail(ctx, avro_strerror());
    if (result == NULL)
        sg_oom();
    return result;
}

int sg_avro_to_json(const sg_avro_schema_t *schema, const void *data, size_t len, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (data == NULL)
        data = "";
    scan_t sc = {data, (const uint8_t *)data + len, len + 65536, err, errlen};
    if (scan(&sc, schema->schema, 0) != 0)
        return -1;
    if (sc.p != sc.end) {
        sg_errf(err, errlen, "invalid Avro data: %zu trailing bytes", (size_t)(sc.end - sc.p));
        return -1;
    }
    avro_value_t value;
    if (avro_generic_value_new(schema->iface, &value) != 0)
        sg_oom();
    avro_reader_t reader = avro_reader_memory(data, (int64_t)len);
    if (reader == NULL)
        sg_oom();
    int rc = -1;
    if (avro_value_read(reader, &value) != 0) {
        sg_errf(err, errlen, "invalid Avro data: %s", avro_strerror());
    } else {
        dec_ctx_t ctx = {schema, err, errlen};
        *out = decode(&ctx, &value, schema->schema, schema->json);
        rc = *out != NULL ? 0 : -1;
    }
    avro_reader_free(reader);
    avro_value_decref(&value);
    return rc;
}
