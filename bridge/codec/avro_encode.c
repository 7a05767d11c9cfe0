/*
 * JSON -> Avro binary, directed by a schema's compiled plan (sg_avro.h, avro_plan.c): validation
 * names the offending value by its JSON pointer; records take their defaults, reject unknown
 * fields; a null-union takes a plain value.
 *
 * One walk of the plan and the Jansson value validates and writes the standard Avro binary
 * encoding (zig-zag varints, length-prefixed bytes, arrays and maps as one counted block) straight
 * into the caller's buffer: no Avro-C value tree, no sizing pass, no schema JSON looked at. The
 * JSON pointer of a refusal is not kept up during the walk: each level adds its token on the way
 * out of a failure, and the pointer is put together once, at the end, with the truncation rules
 * the path always had. The bytes, pointers and messages are the ones the generic-value encoder
 * gave (tests/bridge/codec/avro_encode_ref.c, compared by test_avro_plan and fuzz_avro_json).
 */
#include "avro_int.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_base.h"

/* ---- the output buffer ----------------------------------------------------------------------- */

void sg_avro_buf_init(sg_avro_buf_t *buf, void *storage, size_t cap, size_t reserve)
{
    buf->storage = storage;
    buf->bytes = storage;
    buf->cap = storage != NULL ? cap : 0;
    buf->len = 0;
    if (reserve > buf->cap) {
        buf->bytes = sg_malloc(reserve);
        buf->cap = reserve;
    }
    buf->len = reserve;
}

void sg_avro_buf_dispose(sg_avro_buf_t *buf)
{
    if (buf->bytes != buf->storage)
        free(buf->bytes);
    buf->bytes = NULL;
    buf->len = buf->cap = 0;
}

/* Makes room for n more bytes. */
static void buf_grow(sg_avro_buf_t *buf, size_t n)
{
    size_t cap = buf->cap > 0 ? buf->cap : 256;
    while (cap - buf->len < n) {
        if (cap > SIZE_MAX / 2)
            sg_oom();
        cap *= 2;
    }
    if (buf->bytes == buf->storage) {
        uint8_t *bytes = sg_malloc(cap);
        if (buf->len > 0)
            memcpy(bytes, buf->bytes, buf->len);
        buf->bytes = bytes;
    } else {
        buf->bytes = sg_realloc(buf->bytes, cap);
    }
    buf->cap = cap;
}

/* ---- the walk ------------------------------------------------------------------------------ */

/* One token of a refusal's JSON pointer, innermost first: a name, or (name NULL) an array index. */
typedef struct {
    const char *name;
    size_t index;
} trail_t;

typedef struct {
    sg_avro_buf_t *out; /* NULL: validation only */
    int depth;
    size_t ntrail;
    /* A token per container level at most, and containers nest SG_AVRO_MAX_DEPTH deep at most. */
    trail_t trail[SG_AVRO_MAX_DEPTH + 2];
    char err[ERR_MAX_LEN];
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

/* On the way out of a failure: the token of the level being left. Returns -1. */
static int fail_at(enc_ctx_t *ctx, const char *name, size_t index)
{
    if (ctx->ntrail < sizeof(ctx->trail) / sizeof(ctx->trail[0]))
        ctx->trail[ctx->ntrail++] = (trail_t){name, index};
    return -1;
}

/* Appends a JSON pointer token (RFC 6901 escaping) to path[0..*pos). A path that does not fit
 * is cut short rather than failing the conversion. */
static void path_push(char *path, size_t size, size_t *pos_inout, const char *token)
{
    size_t pos = *pos_inout;
    if (pos + 1 < size)
        path[pos++] = '/';
    for (const char *c = token; *c != '\0' && pos + 2 < size; c++) {
        if (*c == '~' || *c == '/') {
            path[pos++] = '~';
            path[pos++] = *c == '~' ? '0' : '1';
        } else {
            path[pos++] = *c;
        }
    }
    path[pos] = '\0';
    *pos_inout = pos;
}

static inline uint8_t *room(sg_avro_buf_t *buf, size_t n)
{
    if (buf->cap - buf->len < n)
        buf_grow(buf, n);
    return buf->bytes + buf->len;
}

/* Avro's long and int: zig-zag, then base-128 varint, low group first. */
static inline void put_long(enc_ctx_t *ctx, int64_t value)
{
    if (ctx->out == NULL)
        return;
    uint8_t *at = room(ctx->out, 10);
    uint64_t zz = ((uint64_t)value << 1) ^ -((uint64_t)value >> 63);
    size_t n = 0;
    while (zz > 0x7f) {
        at[n++] = (uint8_t)(zz | 0x80);
        zz >>= 7;
    }
    at[n++] = (uint8_t)zz;
    ctx->out->len += n;
}

static inline void put_raw(enc_ctx_t *ctx, const void *data, size_t len)
{
    if (ctx->out == NULL || len == 0)
        return;
    memcpy(room(ctx->out, len), data, len);
    ctx->out->len += len;
}

/* Avro's bytes and string: the length as a long, then the bytes. */
static inline void put_bytes(enc_ctx_t *ctx, const void *data, size_t len)
{
    put_long(ctx, (int64_t)len);
    put_raw(ctx, data, len);
}

/* Little-endian IEEE 754, as Avro writes float and double. */
static void put_le(enc_ctx_t *ctx, uint64_t bits, size_t len)
{
    uint8_t bytes[8];
    for (size_t i = 0; i < len; i++)
        bytes[i] = (uint8_t)(bits >> (8 * i));
    put_raw(ctx, bytes, len);
}

static int encode(enc_ctx_t *ctx, const sg_avro_plan_t *plan, const json_t *value, int is_default);

/* A decimal's unscaled value given as its shortest two's complement: as it is for bytes,
 * sign-extended for fixed. */
static int put_decimal(enc_ctx_t *ctx, const sg_avro_plan_t *plan, const uint8_t *value, size_t len)
{
    if (plan->type == AVRO_BYTES) {
        put_bytes(ctx, value, len);
        return 0;
    }
    size_t size = (size_t)plan->fixed_size;
    if (len > size)
        return enc_fail(ctx, "precision overflow (fixed of %zu bytes)", size);
    if (ctx->out != NULL) {
        uint8_t *at = room(ctx->out, size);
        memset(at, (value[0] & 0x80) ? 0xff : 0x00, size - len);
        memcpy(at + size - len, value, len);
        ctx->out->len += size;
    }
    return 0;
}

static int encode_decimal(enc_ctx_t *ctx, const sg_avro_plan_t *plan, const json_t *value)
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
    int64_t small;
    if (sg_avro_decimal_small(src, plan->precision, plan->scale, &small) == 0) {
        /* the shortest two's complement of an int64 is within its own 8 bytes */
        uint8_t bytes[8];
        for (int i = 0; i < 8; i++)
            bytes[7 - i] = (uint8_t)((uint64_t)small >> (8 * i));
        int start = 0;
        while (start < 7 &&
               ((bytes[start] == 0x00 && !(bytes[start + 1] & 0x80)) || (bytes[start] == 0xff && (bytes[start + 1] & 0x80))))
            start++;
        return put_decimal(ctx, plan, bytes + start, (size_t)(8 - start));
    }
    uint8_t full[SG_AVRO_DECIMAL_MAX_BYTES];
    if (sg_avro_decimal_encode(src, plan->precision, plan->scale, full, ctx->err, sizeof(ctx->err)) != 0)
        return -1;
    int start = sg_avro_decimal_min_start(full);
    return put_decimal(ctx, plan, full + start, (size_t)(SG_AVRO_DECIMAL_MAX_BYTES - start));
}

static int encode_int(enc_ctx_t *ctx, enum sg_logical logical, const json_t *value)
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
    put_long(ctx, number);
    return 0;
}

static int encode_long(enc_ctx_t *ctx, enum sg_logical logical, const json_t *value)
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
    put_long(ctx, number);
    return 0;
}

/* Bytes and fixed in Avro's JSON form (a decimal's default is one too). */
static int encode_byte_string(enc_ctx_t *ctx, const sg_avro_plan_t *plan, const json_t *value)
{
    if (!json_is_string(value))
        return enc_fail(ctx, "expected string");
    uint8_t stack[256];
    size_t room_len = json_string_length(value);
    uint8_t *bytes = room_len <= sizeof(stack) ? stack : sg_malloc(room_len);
    size_t len;
    int rc = 0;
    if (sg_avro_string_to_bytes(value, bytes, &len) != 0)
        rc = enc_fail(ctx, "expected a byte string (code points 0-255)");
    else if (plan->type == AVRO_BYTES)
        put_bytes(ctx, bytes, len);
    else if ((int64_t)len != plan->fixed_size)
        rc = enc_fail(ctx, "expected string of %" PRId64 " bytes", plan->fixed_size);
    else
        put_raw(ctx, bytes, len);
    if (bytes != stack)
        free(bytes);
    return rc;
}

static int encode_record(enc_ctx_t *ctx, const sg_avro_plan_t *plan, const json_t *value, int is_default)
{
    if (!json_is_object(value))
        return enc_fail(ctx, "expected object");
    /* Bodies mostly list the fields in the schema's order: follow the object's own order and
     * look a name up (hashing it) only when the next member is not that field. */
    void *iter = json_object_iter((json_t *)value);
    size_t found = 0;
    for (size_t i = 0; i < plan->count; i++) {
        const sg_avro_plan_field_t *field = &plan->fields[i];
        const json_t *field_value;
        if (iter != NULL && json_object_iter_key_len(iter) == field->name_len &&
            memcmp(json_object_iter_key(iter), field->name, field->name_len) == 0) {
            field_value = json_object_iter_value(iter);
            iter = json_object_iter_next((json_t *)value, iter);
        } else {
            field_value = json_object_getn(value, field->name, field->name_len);
        }
        int from_default = is_default;
        if (field_value != NULL) {
            found++;
        } else {
            if ((field_value = field->default_value) == NULL) {
                enc_fail(ctx, "missing required field \"%s\"", field->name);
                return fail_at(ctx, field->name, 0);
            }
            from_default = 1;
        }
        if (encode(ctx, field->type, field_value, from_default) != 0)
            return fail_at(ctx, field->name, 0);
    }
    /* Every member was one of the fields: no need to look for one that is not. */
    if (found == json_object_size(value))
        return 0;
    const char *key;
    const json_t *member;
    json_object_foreach((json_t *)value, key, member)
    {
        if (avro_schema_record_field_get_index(plan->node, key) < 0) {
            enc_fail(ctx, "unknown field");
            return fail_at(ctx, key, 0);
        }
    }
    return 0;
}

static int encode_union(enc_ctx_t *ctx, const sg_avro_plan_t *plan, const json_t *value, int is_default)
{
    int index = -1;
    const json_t *branch_value = value;
    const char *key = NULL;
    if (is_default) {
        index = 0; /* a union's default is a plain value of its first branch */
    } else if (json_is_null(value) && plan->null_index >= 0) {
        index = plan->null_index;
    } else if (plan->count == 2 && plan->null_index >= 0) {
        index = 1 - plan->null_index;
    } else if (json_is_object(value) && json_object_size(value) == 1) {
        void *iter = json_object_iter((json_t *)value);
        const char *name = json_object_iter_key(iter);
        for (size_t i = 0; i < plan->count && index < 0; i++) {
            if (strcmp(plan->branch_names[i], name) == 0 ||
                (plan->branch_short[i] != NULL && strcmp(plan->branch_short[i], name) == 0))
                index = (int)i;
        }
        if (index >= 0) {
            branch_value = json_object_iter_value(iter);
            key = name;
        }
    }
    if (index < 0)
        return enc_fail(ctx, "no union branch matches");
    put_long(ctx, index);
    if (encode(ctx, plan->branches[index], branch_value, is_default) != 0)
        return key != NULL ? fail_at(ctx, key, 0) : -1;
    return 0;
}

static int encode(enc_ctx_t *ctx, const sg_avro_plan_t *plan, const json_t *value, int is_default)
{
    switch (plan->type) {
    case AVRO_NULL:
        if (!json_is_null(value))
            return enc_fail(ctx, "expected null");
        return 0;
    case AVRO_BOOLEAN: {
        if (!json_is_boolean(value))
            return enc_fail(ctx, "expected boolean");
        uint8_t byte = json_is_true(value) ? 1 : 0;
        put_raw(ctx, &byte, 1);
        return 0;
    }
    case AVRO_INT32: return encode_int(ctx, plan->logical, value);
    case AVRO_INT64: return encode_long(ctx, plan->logical, value);
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        if (!json_is_number(value))
            return enc_fail(ctx, "expected number");
        double number = json_number_value(value);
        if (!isfinite(number))
            return enc_fail(ctx, "number is not finite");
        if (plan->type == AVRO_DOUBLE) {
            uint64_t bits;
            memcpy(&bits, &number, sizeof(bits));
            put_le(ctx, bits, 8);
        } else {
            if (fabs(number) > FLT_MAX)
                return enc_fail(ctx, "number out of range for float");
            float single = (float)number;
            uint32_t bits;
            memcpy(&bits, &single, sizeof(bits));
            put_le(ctx, bits, 4);
        }
        return 0;
    }
    case AVRO_STRING:
        if (!json_is_string(value))
            return enc_fail(ctx, "expected string");
        if (plan->logical == LT_UUID && !sg_avro_is_uuid(json_string_value(value), json_string_length(value)))
            return enc_fail(ctx, "invalid uuid");
        put_bytes(ctx, json_string_value(value), json_string_length(value));
        return 0;
    case AVRO_BYTES:
    case AVRO_FIXED:
        /* A schema default is in Avro's JSON encoding, where a decimal is its raw bytes. */
        if (plan->logical == LT_DECIMAL && !is_default)
            return encode_decimal(ctx, plan, value);
        return encode_byte_string(ctx, plan, value);
    case AVRO_ENUM: {
        if (!json_is_string(value))
            return enc_fail(ctx, "expected string");
        /* Symbols are C strings: "A\u0000x" must not pass for "A". Avro-C's symbol table is part
         * of the schema (a hash lookup), not of a value tree. */
        int symbol = strlen(json_string_value(value)) != json_string_length(value)
                         ? -1
                         : avro_schema_enum_get_by_name(plan->node, json_string_value(value));
        if (symbol < 0)
            return enc_fail(ctx, "unknown enum symbol \"%s\"", json_string_value(value));
        put_long(ctx, symbol);
        return 0;
    }
    case AVRO_RECORD:
    case AVRO_ARRAY:
    case AVRO_MAP:
    case AVRO_UNION: {
        if (ctx->depth >= SG_AVRO_MAX_DEPTH)
            return enc_fail(ctx, "nesting deeper than %d", SG_AVRO_MAX_DEPTH);
        ctx->depth++;
        int rc = 0;
        if (plan->type == AVRO_RECORD) {
            rc = encode_record(ctx, plan, value, is_default);
        } else if (plan->type == AVRO_UNION) {
            rc = encode_union(ctx, plan, value, is_default);
        } else if (plan->type == AVRO_ARRAY) {
            if (!json_is_array(value))
                return enc_fail(ctx, "expected array");
            size_t n = json_array_size(value);
            if (n > 0) /* one block of n items, then the empty block */
                put_long(ctx, (int64_t)n);
            for (size_t i = 0; i < n; i++) {
                if (encode(ctx, plan->items, json_array_get(value, i), is_default) != 0)
                    return fail_at(ctx, NULL, i);
            }
            put_long(ctx, 0);
        } else {
            if (!json_is_object(value))
                return enc_fail(ctx, "expected object");
            size_t n = json_object_size(value);
            if (n > 0)
                put_long(ctx, (int64_t)n);
            const char *key;
            const json_t *item;
            json_object_foreach((json_t *)value, key, item)
            {
                put_bytes(ctx, key, strlen(key)); /* a key is a C string to Avro */
                if (encode(ctx, plan->items, item, is_default) != 0)
                    return fail_at(ctx, key, 0);
            }
            put_long(ctx, 0);
        }
        if (rc != 0)
            return -1;
        ctx->depth--;
        return 0;
    }
    default: return enc_fail(ctx, "unsupported schema type");
    }
}

/* Runs the walk; on a refusal puts the pointer and message into the caller's buffers. */
static int walk(const sg_avro_schema_t *schema, const json_t *value, sg_avro_buf_t *out, char *path, size_t pathlen, char *err,
                size_t errlen)
{
    enc_ctx_t ctx;
    ctx.out = out;
    ctx.depth = 0;
    ctx.ntrail = 0;
    ctx.err[0] = '\0';
    if (encode(&ctx, schema->plan, value, 0) == 0)
        return 0;
    if (path != NULL && pathlen > 0) {
        char full[PATH_MAX_LEN];
        size_t pos = 0;
        full[0] = '\0';
        for (size_t i = ctx.ntrail; i-- > 0;) {
            char index[24];
            const char *token = ctx.trail[i].name;
            if (token == NULL) {
                snprintf(index, sizeof(index), "%zu", ctx.trail[i].index);
                token = index;
            }
            path_push(full, sizeof(full), &pos, token);
        }
        snprintf(path, pathlen, "%s", full);
    }
    sg_errf(err, errlen, "%s", ctx.err);
    return -1;
}

int sg_avro_encode(const sg_avro_schema_t *schema, const json_t *value, sg_avro_buf_t *buf, char *path, size_t pathlen, char *err,
                   size_t errlen)
{
    size_t start = buf->len;
    if (walk(schema, value, buf, path, pathlen, err, errlen) == 0)
        return 0;
    buf->len = start;
    return -1;
}

int sg_avro_validate_json(const sg_avro_schema_t *schema, const json_t *value, char *path, size_t pathlen, char *err, size_t errlen)
{
    return walk(schema, value, NULL, path, pathlen, err, errlen);
}

int sg_avro_from_json(const sg_avro_schema_t *schema, const json_t *value, void **out, size_t *outlen, char *path, size_t pathlen,
                      char *err, size_t errlen)
{
    if (out == NULL) /* no output wanted: validation only */
        return walk(schema, value, NULL, path, pathlen, err, errlen);
    *out = NULL;
    *outlen = 0;
    sg_avro_buf_t buf;
    sg_avro_buf_init(&buf, NULL, 0, 0);
    if (walk(schema, value, &buf, path, pathlen, err, errlen) != 0) {
        sg_avro_buf_dispose(&buf);
        return -1;
    }
    *out = buf.bytes != NULL ? buf.bytes : sg_malloc(1); /* an empty encoding (schema "null") is still a buffer */
    *outlen = buf.len;
    return 0;
}
