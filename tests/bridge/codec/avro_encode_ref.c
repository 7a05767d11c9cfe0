/*
 * The reference JSON -> Avro encoder for tests: the codec's encoder until its compiled plan
 * (bridge/codec/avro_plan.c, avro_encode.c) replaced it, kept verbatim but for its names. It
 * builds an Avro-C generic value tree, walking the schema's JSON beside it, and lets Avro-C write
 * the bytes: slow, but Avro-C's own encoding. test_avro_plan and fuzz_avro_json check that the
 * plan gives the same bytes, and the same JSON pointer and message for every refusal.
 */
#include "avro_encode_ref.h"

#include <ctype.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_base.h"

/* ---- JSON -> Avro ------------------------------------------------------------------------ */

typedef struct {
    const sg_avro_schema_t *sc;
    char path[PATH_MAX_LEN];
    size_t pathlen;
    char err[ERR_MAX_LEN];
    int depth;
} enc_ctx_t;

static int enc_fail(enc_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int enc_fail(enc_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
    return -1;
}

static int avro_fail(enc_ctx_t *ctx)
{
    return enc_fail(ctx, "avro: %s", avro_strerror());
}

/* Appends a JSON pointer token (RFC 6901 escaping); returns the length to restore. A path that
 * does not fit is cut short rather than failing the conversion. */
static size_t path_push(enc_ctx_t *ctx, const char *token)
{
    size_t saved = ctx->pathlen;
    size_t pos = ctx->pathlen;
    char *path = ctx->path;
    if (pos + 1 < sizeof(ctx->path))
        path[pos++] = '/';
    for (const char *c = token; *c != '\0' && pos + 2 < sizeof(ctx->path); c++) {
        if (*c == '~' || *c == '/') {
            path[pos++] = '~';
            path[pos++] = *c == '~' ? '0' : '1';
        } else {
            path[pos++] = *c;
        }
    }
    path[pos] = '\0';
    ctx->pathlen = pos;
    return saved;
}

static void path_pop(enc_ctx_t *ctx, size_t saved)
{
    ctx->pathlen = saved;
    ctx->path[saved] = '\0';
}

static int encode(enc_ctx_t *ctx, avro_value_t *dst, avro_schema_t node, const json_t *def, const json_t *value, int is_default);

static int encode_decimal(enc_ctx_t *ctx, avro_value_t *dst, avro_schema_t node, const json_t *def, const json_t *value)
{
    char text[64];
    const char *src;
    if (json_is_string(value)) {
        src = json_string_value(value);
    } else if (json_is_integer(value)) {
        snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        src = text;
    } else if (json_is_real(value) && isfinite(json_real_value(value))) {
        sg_avro_shortest_double(json_real_value(value), text, sizeof(text));
        src = text;
    } else {
        return enc_fail(ctx, "expected number");
    }
    int precision = (int)json_integer_value(json_object_get(def, "precision"));
    uint8_t full[SG_AVRO_DECIMAL_MAX_BYTES];
    if (sg_avro_decimal_encode(src, precision, sg_avro_decimal_scale(def), full, ctx->err, sizeof(ctx->err)) != 0)
        return -1;
    int start = sg_avro_decimal_min_start(full);
    size_t len = (size_t)(SG_AVRO_DECIMAL_MAX_BYTES - start);
    if (is_avro_bytes(node))
        return avro_value_set_bytes(dst, full + start, len) != 0 ? avro_fail(ctx) : 0;
    size_t size = (size_t)avro_schema_fixed_size(node);
    if (len > size)
        return enc_fail(ctx, "precision overflow (fixed of %zu bytes)", size);
    uint8_t *buf = sg_malloc(size);
    memset(buf, (full[start] & 0x80) ? 0xff : 0x00, size - len);
    memcpy(buf + size - len, full + start, len);
    int rc = avro_value_set_fixed(dst, buf, size);
    free(buf);
    return rc != 0 ? avro_fail(ctx) : 0;
}

static int encode_int(enc_ctx_t *ctx, avro_value_t *dst, enum sg_logical logical, const json_t *value)
{
    int64_t number;
    if (logical == LT_DATE && json_is_string(value)) {
        if (json_string_length(value) != 10 || sg_avro_parse_date(json_string_value(value), &number) != 0)
            return enc_fail(ctx, "invalid date (expected YYYY-MM-DD)");
    } else if (json_is_integer(value)) {
        number = json_integer_value(value);
    } else {
        return enc_fail(ctx, logical == LT_DATE ? "expected integer or date string" : "expected integer");
    }
    if (number < INT32_MIN || number > INT32_MAX)
        return enc_fail(ctx, "integer out of range for int");
    if (logical == LT_TIME_MILLIS && (number < 0 || number >= 86400000))
        return enc_fail(ctx, "time-millis out of range (0..86399999)");
    return avro_value_set_int(dst, (int32_t)number) != 0 ? avro_fail(ctx) : 0;
}

static int encode_long(enc_ctx_t *ctx, avro_value_t *dst, enum sg_logical logical, const json_t *value)
{
    int64_t number;
    int is_ts = logical == LT_TS_MILLIS || logical == LT_TS_MICROS;
    if (is_ts && json_is_string(value)) {
        if (sg_avro_parse_timestamp(json_string_value(value), logical == LT_TS_MILLIS ? 1000 : 1000000, &number) != 0)
            return enc_fail(ctx, "invalid timestamp (expected RFC 3339)");
    } else if (json_is_integer(value)) {
        number = json_integer_value(value);
    } else {
        return enc_fail(ctx, is_ts ? "expected integer or RFC 3339 string" : "expected integer");
    }
    return avro_value_set_long(dst, number) != 0 ? avro_fail(ctx) : 0;
}

static int encode_record(enc_ctx_t *ctx, avro_value_t *dst, avro_schema_t node, const json_t *def, const json_t *value,
                         int is_default)
{
    if (!json_is_object(value))
        return enc_fail(ctx, "expected object");
    const json_t *fields = json_object_get(def, "fields");
    size_t nfields = avro_schema_record_size(node);
    for (size_t i = 0; i < nfields; i++) {
        const char *name = avro_schema_record_field_name(node, (int)i);
        const json_t *field_def = json_array_get(fields, i);
        const json_t *field_value = json_object_get(value, name);
        int from_default = is_default;
        size_t saved = path_push(ctx, name);
        if (field_value == NULL) {
            field_value = json_object_get(field_def, "default");
            if (field_value == NULL)
                return enc_fail(ctx, "missing required field \"%s\"", name);
            from_default = 1;
        }
        avro_value_t child;
        if (avro_value_get_by_index(dst, i, &child, NULL) != 0)
            return avro_fail(ctx);
        if (encode(ctx, &child, avro_schema_record_field_get_by_index(node, (int)i), json_object_get(field_def, "type"),
                   field_value, from_default) != 0)
            return -1;
        path_pop(ctx, saved);
    }
    const char *key;
    const json_t *member;
    json_object_foreach((json_t *)value, key, member)
    {
        if (avro_schema_record_field_get_index(node, key) < 0) {
            path_push(ctx, key);
            return enc_fail(ctx, "unknown field");
        }
    }
    return 0;
}

static int encode_union(enc_ctx_t *ctx, avro_value_t *dst, avro_schema_t node, const json_t *def, const json_t *value,
                        int is_default)
{
    size_t nbranches = avro_schema_union_size(node);
    int null_index = -1;
    for (size_t i = 0; i < nbranches; i++) {
        if (is_avro_null(sg_avro_deref(avro_schema_union_branch(node, (int)i))))
            null_index = (int)i;
    }
    int index = -1;
    const json_t *branch_value = value;
    size_t saved = ctx->pathlen;
    if (is_default) {
        index = 0; /* a union's default is a plain value of its first branch */
    } else if (json_is_null(value) && null_index >= 0) {
        index = null_index;
    } else if (nbranches == 2 && null_index >= 0) {
        index = 1 - null_index;
    } else if (json_is_object(value) && json_object_size(value) == 1) {
        const char *key = json_object_iter_key(json_object_iter((json_t *)value));
        for (size_t i = 0; i < nbranches && index < 0; i++) {
            avro_schema_t branch = sg_avro_deref(avro_schema_union_branch(node, (int)i));
            char name[512];
            sg_avro_branch_name(branch, name, sizeof(name));
            if (strcmp(name, key) == 0 || (is_avro_named_type(branch) && strcmp(avro_schema_name(branch), key) == 0))
                index = (int)i;
        }
        if (index >= 0) {
            branch_value = json_object_get(value, key);
            path_push(ctx, key);
        }
    }
    if (index < 0)
        return enc_fail(ctx, "no union branch matches");
    avro_value_t branch;
    if (avro_value_set_branch(dst, index, &branch) != 0)
        return avro_fail(ctx);
    if (encode(ctx, &branch, avro_schema_union_branch(node, index), json_array_get(def, (size_t)index), branch_value, is_default) !=
        0)
        return -1;
    path_pop(ctx, saved);
    return 0;
}

static int encode(enc_ctx_t *ctx, avro_value_t *dst, avro_schema_t node, const json_t *def, const json_t *value, int is_default)
{
    def = sg_avro_resolve(ctx->sc, &node, def);
    enum sg_logical logical = sg_avro_logical_of(node, def);
    int rc = 0;
    switch (avro_typeof(node)) {
    case AVRO_NULL:
        if (!json_is_null(value))
            return enc_fail(ctx, "expected null");
        rc = avro_value_set_null(dst);
        break;
    case AVRO_BOOLEAN:
        if (!json_is_boolean(value))
            return enc_fail(ctx, "expected boolean");
        rc = avro_value_set_boolean(dst, json_is_true(value));
        break;
    case AVRO_INT32: return encode_int(ctx, dst, logical, value);
    case AVRO_INT64: return encode_long(ctx, dst, logical, value);
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        if (!json_is_number(value))
            return enc_fail(ctx, "expected number");
        double number = json_number_value(value);
        if (!isfinite(number))
            return enc_fail(ctx, "number is not finite");
        if (is_avro_double(node)) {
            rc = avro_value_set_double(dst, number);
        } else {
            if (fabs(number) > FLT_MAX)
                return enc_fail(ctx, "number out of range for float");
            rc = avro_value_set_float(dst, (float)number);
        }
        break;
    }
    case AVRO_STRING:
        if (!json_is_string(value))
            return enc_fail(ctx, "expected string");
        if (logical == LT_UUID && !sg_avro_is_uuid(json_string_value(value), json_string_length(value)))
            return enc_fail(ctx, "invalid uuid");
        rc = avro_value_set_string_len(dst, json_string_value(value), json_string_length(value) + 1);
        break;
    case AVRO_BYTES:
    case AVRO_FIXED: {
        /* A schema default is in Avro's JSON encoding, where a decimal is its raw bytes. */
        if (logical == LT_DECIMAL && !is_default)
            return encode_decimal(ctx, dst, node, def, value);
        if (!json_is_string(value))
            return enc_fail(ctx, "expected string");
        uint8_t *bytes = sg_malloc(json_string_length(value));
        size_t len;
        if (sg_avro_string_to_bytes(value, bytes, &len) != 0) {
            free(bytes);
            return enc_fail(ctx, "expected a byte string (code points 0-255)");
        }
        if (is_avro_bytes(node)) {
            rc = avro_value_set_bytes(dst, bytes, len);
        } else if ((int64_t)len != avro_schema_fixed_size(node)) {
            free(bytes);
            return enc_fail(ctx, "expected string of %" PRId64 " bytes", avro_schema_fixed_size(node));
        } else {
            rc = avro_value_set_fixed(dst, bytes, len);
        }
        free(bytes);
        break;
    }
    case AVRO_ENUM: {
        if (!json_is_string(value))
            return enc_fail(ctx, "expected string");
        /* Avro-C looks symbols up as C strings: "A\u0000x" must not pass for "A". */
        int symbol = strlen(json_string_value(value)) != json_string_length(value)
                         ? -1
                         : avro_schema_enum_get_by_name(node, json_string_value(value));
        if (symbol < 0)
            return enc_fail(ctx, "unknown enum symbol \"%s\"", json_string_value(value));
        rc = avro_value_set_enum(dst, symbol);
        break;
    }
    case AVRO_RECORD:
    case AVRO_ARRAY:
    case AVRO_MAP:
    case AVRO_UNION:
        if (ctx->depth >= SG_AVRO_MAX_DEPTH)
            return enc_fail(ctx, "nesting deeper than %d", SG_AVRO_MAX_DEPTH);
        ctx->depth++;
        if (is_avro_record(node)) {
            rc = encode_record(ctx, dst, node, def, value, is_default);
        } else if (is_avro_union(node)) {
            rc = encode_union(ctx, dst, node, def, value, is_default);
        } else if (is_avro_array(node)) {
            if (!json_is_array(value))
                return enc_fail(ctx, "expected array");
            size_t i;
            const json_t *item;
            json_array_foreach(value, i, item)
            {
                char index[24];
                snprintf(index, sizeof(index), "%zu", i);
                size_t saved = path_push(ctx, index);
                avro_value_t child;
                if (avro_value_append(dst, &child, NULL) != 0)
                    return avro_fail(ctx);
                if (encode(ctx, &child, avro_schema_array_items(node), json_object_get(def, "items"), item, is_default) != 0)
                    return -1;
                path_pop(ctx, saved);
            }
        } else {
            if (!json_is_object(value))
                return enc_fail(ctx, "expected object");
            const char *key;
            const json_t *item;
            json_object_foreach((json_t *)value, key, item)
            {
                size_t saved = path_push(ctx, key);
                avro_value_t child;
                if (avro_value_add(dst, key, &child, NULL, NULL) != 0)
                    return avro_fail(ctx);
                if (encode(ctx, &child, avro_schema_map_values(node), json_object_get(def, "values"), item, is_default) != 0)
                    return -1;
                path_pop(ctx, saved);
            }
        }
        ctx->depth--;
        return rc;
    default: return enc_fail(ctx, "unsupported schema type");
    }
    return rc != 0 ? avro_fail(ctx) : 0;
}

int sg_avro_ref_from_json(const sg_avro_schema_t *schema, const json_t *value, void **out, size_t *outlen, char *path, size_t pathlen,
                      char *err, size_t errlen)
{
    enc_ctx_t *ctx = sg_malloc(sizeof(*ctx));
    ctx->sc = schema;
    ctx->path[0] = '\0';
    ctx->pathlen = 0;
    ctx->err[0] = '\0';
    ctx->depth = 0;
    if (out != NULL) {
        *out = NULL;
        *outlen = 0;
    }
    avro_value_t record;
    if (avro_generic_value_new(schema->iface, &record) != 0)
        sg_oom();
    int rc = encode(ctx, &record, schema->schema, schema->json, value, 0);
    if (rc == 0 && out != NULL) { /* out NULL: validation only, nothing to write */
        size_t size;
        if (avro_value_sizeof(&record, &size) != 0) {
            rc = avro_fail(ctx);
        } else {
            char *buf = sg_malloc(size);
            avro_writer_t writer = avro_writer_memory(buf, (int64_t)size);
            if (writer == NULL)
                sg_oom();
            if (avro_value_write(writer, &record) != 0) {
                rc = avro_fail(ctx);
                free(buf);
            } else {
                *out = buf;
                *outlen = size;
            }
            avro_writer_free(writer);
        }
    }
    if (rc != 0) {
        if (path != NULL && pathlen > 0)
            snprintf(path, pathlen, "%s", ctx->path);
        sg_errf(err, errlen, "%s", ctx->err);
    }
    avro_value_decref(&record);
    free(ctx);
    return rc;
}
