/*
 * JSON <-> Avro binary, directed by a schema (sg_avro.h).
 *
 * Avro-C 1.11 owns the binary encoding (generic values, avro_value_write/avro_value_read), so
 * the bytes are the standard ones. Its schema API does not represent logical types, so we keep
 * the schema's JSON next to the Avro-C schema and walk both in parallel: every Avro-C node is
 * paired with the JSON object that defined it (named references are resolved through a table of
 * full names built at parse time), and logical-type attributes are read from that JSON.
 *
 * Decoding first scans the binary ourselves with bounds checks: Avro-C trusts length prefixes
 * and block counts (a hostile length becomes a huge malloc, a hostile count of null items a
 * near-endless loop), and it cannot tell us whether trailing bytes were left over.
 */
#include "sg_avro.h"

#include "sg_base.h"

#include <avro.h>
#include <ctype.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct st_sg_avro_schema_t {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    json_t *json;  /* the schema text, parsed */
    json_t *named; /* full name -> defining JSON object (references into json) */
};

enum sg_logical {
    LT_NONE,
    LT_DECIMAL,
    LT_UUID,
    LT_DATE,
    LT_TIME_MILLIS,
    LT_TS_MILLIS,
    LT_TS_MICROS,
};

/* Precision of SG_AVRO_DECIMAL_MAX_BYTES bytes: 10^153 < 2^511. */
#define DECIMAL_MAX_PRECISION 153
#define PATH_MAX_LEN 1024
#define ERR_MAX_LEN 256

/* ---- schema ------------------------------------------------------------------------------ */

static avro_schema_t deref(avro_schema_t schema)
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
        json_object_set(named, fullname, def);
        /* Avro-C writes a zero-size fixed but cannot read one back ("Cannot allocate"). */
        if (strcmp(type_name, "fixed") == 0 && json_integer_value(json_object_get(def, "size")) < 1) {
            sg_errf(err, errlen, "fixed %s: size must be at least 1", fullname);
            return -1;
        }
        if (strcmp(type_name, "enum") == 0 || strcmp(type_name, "fixed") == 0)
            return 0;
        size_t i;
        json_t *field;
        json_array_foreach(json_object_get(def, "fields"), i, field)
        {
            if (collect(named, json_object_get(field, "type"), inner_ns, depth + 1, err, errlen) != 0)
                return -1;
        }
        return 0;
    }
    if (strcmp(type_name, "array") == 0)
        return collect(named, json_object_get(def, "items"), ns, depth + 1, err, errlen);
    if (strcmp(type_name, "map") == 0)
        return collect(named, json_object_get(def, "values"), ns, depth + 1, err, errlen);
    return 0;
}

sg_avro_schema_t *sg_avro_schema_parse(const char *json, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (doc == NULL) {
        sg_errf(err, errlen, "schema is not JSON: %s (line %d)", jerr.text, jerr.line);
        return NULL;
    }
    avro_schema_t schema;
    if (avro_schema_from_json_length(json, len, &schema) != 0) {
        sg_errf(err, errlen, "invalid Avro schema: %s", avro_strerror());
        json_decref(doc);
        return NULL;
    }
    json_t *named = json_object();
    if (named == NULL)
        sg_oom();
    if (collect(named, doc, "", 0, err, errlen) != 0) {
        json_decref(named);
        json_decref(doc);
        avro_schema_decref(schema);
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
    return result;
}

void sg_avro_schema_destroy(sg_avro_schema_t *schema)
{
    if (schema == NULL)
        return;
    avro_value_iface_decref(schema->iface);
    avro_schema_decref(schema->schema);
    json_decref(schema->named);
    json_decref(schema->json);
    free(schema);
}

/* Follows links and named references so that *node is concrete and the returned JSON is the
 * object (or type-name string, or union array) that describes it. */
static const json_t *resolve(const sg_avro_schema_t *sc, avro_schema_t *node, const json_t *def)
{
    *node = deref(*node);
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

static enum sg_logical logical_of(avro_schema_t node, const json_t *def)
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

static int decimal_scale(const json_t *def)
{
    return (int)json_integer_value(json_object_get(def, "scale"));
}

/* The name a union branch goes by in Avro's JSON form. */
static void branch_name(avro_schema_t branch, char *buf, size_t buflen)
{
    branch = deref(branch);
    if (is_avro_named_type(branch))
        full_name(branch, buf, buflen);
    else
        snprintf(buf, buflen, "%s", avro_schema_type_name(branch));
}

/* ---- calendar ---------------------------------------------------------------------------- */

/* Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t yoe = year - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

static int parse_digits(const char *s, int count, int *out)
{
    int value = 0;
    for (int i = 0; i < count; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        value = value * 10 + (s[i] - '0');
    }
    *out = value;
    return 0;
}

/* Parses "YYYY-MM-DD" at s (exactly 10 characters) into days since the epoch. */
static int parse_date(const char *s, int64_t *days)
{
    int year, month, day;
    if (parse_digits(s, 4, &year) != 0 || s[4] != '-' || parse_digits(s + 5, 2, &month) != 0 || s[7] != '-' ||
        parse_digits(s + 8, 2, &day) != 0)
        return -1;
    static const int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12 || day < 1 || day > month_days[month - 1])
        return -1;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month == 2 && day == 29 && !leap)
        return -1;
    *days = days_from_civil(year, month, day);
    return 0;
}

/* Parses an RFC 3339 date-time into units (1000 = millis, 1000000 = micros) since the epoch. */
static int parse_timestamp(const char *s, int64_t units_per_sec, int64_t *out)
{
    int64_t days;
    int hour, minute, second;
    if (strlen(s) < 20 || parse_date(s, &days) != 0 || (s[10] != 'T' && s[10] != 't') || parse_digits(s + 11, 2, &hour) != 0 ||
        s[13] != ':' || parse_digits(s + 14, 2, &minute) != 0 || s[16] != ':' || parse_digits(s + 17, 2, &second) != 0 ||
        hour > 23 || minute > 59 || second > 59)
        return -1;
    const char *p = s + 19;
    int64_t fraction = 0, scale = units_per_sec;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        for (; isdigit((unsigned char)*p); p++) {
            if (scale > 1) {
                scale /= 10;
                fraction += (*p - '0') * scale;
            } else if (*p != '0') {
                return -1; /* finer than the type can hold */
            }
        }
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int off_hour, off_minute;
        if (parse_digits(p + 1, 2, &off_hour) != 0 || p[3] != ':' || parse_digits(p + 4, 2, &off_minute) != 0 || off_hour > 23 ||
            off_minute > 59)
            return -1;
        offset = (off_hour * 3600 + off_minute * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset;
    *out = seconds * units_per_sec + fraction;
    return 0;
}

/* ---- decimal ----------------------------------------------------------------------------- */

/* Shortest text that reads back as the same double, so 0.1 stays "0.1". */
static void shortest_double(double value, char *buf, size_t buflen)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, buflen, "%.*g", digits, value);
        if (strtod(buf, NULL) == value)
            return;
    }
}

/* Converts decimal text into the unscaled big-endian two's-complement value, in a
 * SG_AVRO_DECIMAL_MAX_BYTES buffer. Returns 0, or -1 with a message in err. */
static int decimal_encode(const char *text, int precision, int scale, uint8_t out[SG_AVRO_DECIMAL_MAX_BYTES], char *err,
                          size_t errlen)
{
    char digits[DECIMAL_MAX_PRECISION * 3 + 8];
    int ndigits = 0, frac_digits = 0, seen_point = 0, negative = 0, any_digit = 0;
    const char *p = text;
    if (*p == '-' || *p == '+')
        negative = *p++ == '-';
    for (; *p != '\0'; p++) {
        if (isdigit((unsigned char)*p)) {
            any_digit = 1;
            if (ndigits == 0 && *p == '0' && !seen_point)
                continue; /* leading zero */
            if (ndigits >= (int)sizeof(digits) - 1) {
                sg_errf(err, errlen, "precision overflow (precision %d)", precision);
                return -1;
            }
            digits[ndigits++] = *p;
            frac_digits += seen_point;
        } else if (*p == '.' && !seen_point) {
            seen_point = 1;
        } else {
            break;
        }
    }
    long exponent = 0;
    if (any_digit && (*p == 'e' || *p == 'E')) {
        char *end;
        exponent = strtol(p + 1, &end, 10);
        if (end == p + 1 || exponent > 1000 || exponent < -1000)
            any_digit = 0;
        p = end;
    }
    if (!any_digit || *p != '\0') {
        sg_errf(err, errlen, "expected a decimal number");
        return -1;
    }
    long power = exponent - frac_digits; /* value = digits * 10^power */
    while (power < -scale && ndigits > 0 && digits[ndigits - 1] == '0') {
        ndigits--;
        power++;
    }
    if (power < -scale && ndigits > 0) {
        sg_errf(err, errlen, "too many fraction digits (scale %d)", scale);
        return -1;
    }
    /* Rescale so that the digits are the unscaled value. */
    for (long extra = power + scale; ndigits > 0 && extra > 0; extra--) {
        if (ndigits >= (int)sizeof(digits) - 1) {
            sg_errf(err, errlen, "precision overflow (precision %d)", precision);
            return -1;
        }
        digits[ndigits++] = '0';
    }
    int start = 0;
    while (start < ndigits && digits[start] == '0')
        start++;
    if (ndigits - start > precision) {
        sg_errf(err, errlen, "precision overflow (precision %d)", precision);
        return -1;
    }
    memset(out, 0, SG_AVRO_DECIMAL_MAX_BYTES);
    for (int i = start; i < ndigits; i++) {
        unsigned carry = (unsigned)(digits[i] - '0');
        for (int b = SG_AVRO_DECIMAL_MAX_BYTES - 1; b >= 0; b--) {
            unsigned x = out[b] * 10u + carry;
            out[b] = (uint8_t)(x & 0xff);
            carry = x >> 8;
        }
    }
    if (negative) {
        unsigned carry = 1;
        for (int b = SG_AVRO_DECIMAL_MAX_BYTES - 1; b >= 0; b--) {
            unsigned x = (uint8_t)~out[b] + carry;
            out[b] = (uint8_t)(x & 0xff);
            carry = x >> 8;
        }
    }
    return 0;
}

/* Index of the first byte of the shortest two's-complement form of a full-width value. */
static int decimal_min_start(const uint8_t value[SG_AVRO_DECIMAL_MAX_BYTES])
{
    int start = 0;
    while (start < SG_AVRO_DECIMAL_MAX_BYTES - 1 &&
           ((value[start] == 0x00 && !(value[start + 1] & 0x80)) || (value[start] == 0xff && (value[start + 1] & 0x80))))
        start++;
    return start;
}

/* Formats an unscaled two's-complement value with `scale` fraction digits. Returns NULL if it
 * is longer than SG_AVRO_DECIMAL_MAX_BYTES (after dropping sign extension). */
static json_t *decimal_to_json(const uint8_t *bytes, size_t len, int scale)
{
    uint8_t value[SG_AVRO_DECIMAL_MAX_BYTES];
    int negative = len > 0 && (bytes[0] & 0x80);
    size_t skip = 0;
    while (len - skip > SG_AVRO_DECIMAL_MAX_BYTES) {
        if (bytes[skip] != (negative ? 0xff : 0x00))
            return NULL;
        skip++;
    }
    memset(value, negative ? 0xff : 0x00, sizeof(value));
    memcpy(value + sizeof(value) - (len - skip), bytes + skip, len - skip);
    if (negative) {
        unsigned carry = 1;
        for (int b = SG_AVRO_DECIMAL_MAX_BYTES - 1; b >= 0; b--) {
            unsigned x = (uint8_t)~value[b] + carry;
            value[b] = (uint8_t)(x & 0xff);
            carry = x >> 8;
        }
    }
    char reversed[DECIMAL_MAX_PRECISION + 8];
    int ndigits = 0;
    for (;;) {
        unsigned rem = 0;
        int nonzero = 0;
        for (int b = 0; b < SG_AVRO_DECIMAL_MAX_BYTES; b++) {
            unsigned x = rem * 256u + value[b];
            value[b] = (uint8_t)(x / 10);
            rem = x % 10;
            nonzero |= value[b] != 0;
        }
        reversed[ndigits++] = (char)('0' + rem);
        if (!nonzero)
            break;
    }
    while (ndigits <= scale)
        reversed[ndigits++] = '0';
    char text[DECIMAL_MAX_PRECISION + 16];
    size_t pos = 0;
    int is_zero = ndigits == 1 + scale && reversed[ndigits - 1] == '0';
    for (int i = 0; i < ndigits && is_zero; i++)
        is_zero = reversed[i] == '0';
    if (negative && !is_zero)
        text[pos++] = '-';
    for (int i = ndigits - 1; i >= 0; i--) {
        text[pos++] = reversed[i];
        if (i == scale && scale > 0)
            text[pos++] = '.';
    }
    text[pos] = '\0';
    return json_string(text);
}

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

/* Avro's JSON form of bytes: each code point 0..255 is one byte. */
static int string_to_bytes(const json_t *value, uint8_t *out, size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)json_string_value(value);
    size_t len = json_string_length(value), n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x80) {
            out[n++] = s[i];
        } else if ((s[i] == 0xc2 || s[i] == 0xc3) && i + 1 < len) {
            out[n++] = (uint8_t)(((s[i] & 0x1f) << 6) | (s[i + 1] & 0x3f));
            i++;
        } else {
            return -1;
        }
    }
    *outlen = n;
    return 0;
}

static json_t *bytes_to_string(const uint8_t *bytes, size_t len)
{
    char *buf = sg_malloc(len * 2);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (bytes[i] < 0x80) {
            buf[n++] = (char)bytes[i];
        } else {
            buf[n++] = (char)(0xc0 | (bytes[i] >> 6));
            buf[n++] = (char)(0x80 | (bytes[i] & 0x3f));
        }
    }
    json_t *result = json_stringn(buf, n);
    free(buf);
    return result;
}

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
        shortest_double(json_real_value(value), text, sizeof(text));
        src = text;
    } else {
        return enc_fail(ctx, "expected number");
    }
    int precision = (int)json_integer_value(json_object_get(def, "precision"));
    uint8_t full[SG_AVRO_DECIMAL_MAX_BYTES];
    if (decimal_encode(src, precision, decimal_scale(def), full, ctx->err, sizeof(ctx->err)) != 0)
        return -1;
    int start = decimal_min_start(full);
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

static int is_uuid(const char *s, size_t len)
{
    if (len != 36)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int encode_int(enc_ctx_t *ctx, avro_value_t *dst, enum sg_logical logical, const json_t *value)
{
    int64_t number;
    if (logical == LT_DATE && json_is_string(value)) {
        if (json_string_length(value) != 10 || parse_date(json_string_value(value), &number) != 0)
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
        if (parse_timestamp(json_string_value(value), logical == LT_TS_MILLIS ? 1000 : 1000000, &number) != 0)
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
        if (is_avro_null(deref(avro_schema_union_branch(node, (int)i))))
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
            avro_schema_t branch = deref(avro_schema_union_branch(node, (int)i));
            char name[512];
            branch_name(branch, name, sizeof(name));
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
    def = resolve(ctx->sc, &node, def);
    enum sg_logical logical = logical_of(node, def);
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
        if (logical == LT_UUID && !is_uuid(json_string_value(value), json_string_length(value)))
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
        if (string_to_bytes(value, bytes, &len) != 0) {
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

int sg_avro_validate_json(const sg_avro_schema_t *schema, const json_t *value, char *path, size_t pathlen, char *err, size_t errlen)
{
    return sg_avro_from_json(schema, value, NULL, NULL, path, pathlen, err, errlen);
}

int sg_avro_from_json(const sg_avro_schema_t *schema, const json_t *value, void **out, size_t *outlen, char *path, size_t pathlen,
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
    node = deref(node);
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
    def = resolve(ctx->sc, &node, def);
    enum sg_logical logical = logical_of(node, def);
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
            civil_from_days(number, &year, &month, &day);
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
            if ((result = decimal_to_json(bytes, size, decimal_scale(def))) == NULL)
                return dec_fail(ctx, "decimal too large");
        } else {
            result = bytes_to_string(bytes, size);
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
        avro_schema_t branch_node = deref(avro_schema_union_branch(node, index));
        json_t *inner = decode(ctx, &branch, branch_node, json_array_get(def, (size_t)index));
        if (inner == NULL || is_avro_null(branch_node))
            return inner;
        size_t nbranches = avro_schema_union_size(node);
        int has_null = 0;
        for (size_t i = 0; i < nbranches; i++)
            has_null |= is_avro_null(deref(avro_schema_union_branch(node, (int)i)));
        if (nbranches == 2 && has_null)
            return inner;
        char name[512];
        branch_name(branch_node, name, sizeof(name));
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
