/*
 * The JSON forms of Avro values that Avro-C has none for (avro_int.h): dates and timestamps
 * (proleptic Gregorian, RFC 3339), decimals (exact text <-> unscaled two's complement), bytes as
 * code points 0..255, uuid text. Plain functions on values, no schema.
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

void sg_avro_civil_from_days(int64_t days, int64_t *year, int *month, int *day)
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
int sg_avro_parse_date(const char *s, int64_t *days)
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
int sg_avro_parse_timestamp(const char *s, int64_t units_per_sec, int64_t *out)
{
    int64_t days;
    int hour, minute, second;
    if (strlen(s) < 20 || sg_avro_parse_date(s, &days) != 0 || (s[10] != 'T' && s[10] != 't') ||
        parse_digits(s + 11, 2, &hour) != 0 || s[13] != ':' || parse_digits(s + 14, 2, &minute) != 0 || s[16] != ':' ||
        parse_digits(s + 17, 2, &second) != 0 || hour > 23 || minute > 59 || second > 59)
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
void sg_avro_shortest_double(double value, char *buf, size_t buflen)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, buflen, "%.*g", digits, value);
        if (strtod(buf, NULL) == value)
            return;
    }
}

/* Converts decimal text into the unscaled big-endian two's-complement value, in a
 * SG_AVRO_DECIMAL_MAX_BYTES buffer. Returns 0, or -1 with a message in err. */
int sg_avro_decimal_encode(const char *text, int precision, int scale, uint8_t out[SG_AVRO_DECIMAL_MAX_BYTES], char *err,
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

/* The same arithmetic as sg_avro_decimal_encode where it is cheap: the digits accumulate in a
 * uint64 instead of a 64-byte big number (the general routine costs ~2,500 instructions for
 * "12.50", this one ~100). Anything it is not sure of goes to the general routine, which gives
 * the value or the error: so the results agree by construction. */
int sg_avro_decimal_small(const char *text, int precision, int scale, int64_t *out)
{
    const char *p = text;
    int negative = 0;
    if (*p == '-' || *p == '+')
        negative = *p++ == '-';
    uint64_t mantissa = 0;
    int ndigits = 0, frac_digits = 0, seen_point = 0, any_digit = 0;
    for (; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9') {
            any_digit = 1;
            if (ndigits == 0 && *p == '0' && !seen_point)
                continue; /* leading zero */
            if (++ndigits > 18)
                return -1;
            mantissa = mantissa * 10 + (uint64_t)(*p - '0');
            frac_digits += seen_point;
        } else if (*p == '.' && !seen_point) {
            seen_point = 1;
        } else {
            return -1; /* an exponent, or not a number: the general routine's business */
        }
    }
    if (!any_digit)
        return -1;
    while (frac_digits > scale && mantissa % 10 == 0) { /* trailing fraction zeros */
        mantissa /= 10;
        frac_digits--;
    }
    if (frac_digits > scale)
        return -1; /* too many fraction digits */
    int significant = 0;
    for (uint64_t rest = mantissa; rest > 0; rest /= 10)
        significant++;
    if (mantissa != 0)
        significant += scale - frac_digits;
    if (significant > 18 || significant > precision)
        return -1;
    for (int extra = scale - frac_digits; mantissa != 0 && extra > 0; extra--)
        mantissa *= 10;
    *out = negative ? -(int64_t)mantissa : (int64_t)mantissa;
    return 0;
}

/* Index of the first byte of the shortest two's-complement form of a full-width value. */
int sg_avro_decimal_min_start(const uint8_t value[SG_AVRO_DECIMAL_MAX_BYTES])
{
    int start = 0;
    while (start < SG_AVRO_DECIMAL_MAX_BYTES - 1 &&
           ((value[start] == 0x00 && !(value[start + 1] & 0x80)) || (value[start] == 0xff && (value[start + 1] & 0x80))))
        start++;
    return start;
}

/* Formats an unscaled two's-complement value with `scale` fraction digits. Returns NULL if it
 * is longer than SG_AVRO_DECIMAL_MAX_BYTES (after dropping sign extension). */
json_t *sg_avro_decimal_to_json(const uint8_t *bytes, size_t len, int scale)
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

/* ---- bytes and uuid ------------------------------------------------------------------------ */

/* Avro's JSON form of bytes: each code point 0..255 is one byte. */
int sg_avro_string_to_bytes(const json_t *value, uint8_t *out, size_t *outlen)
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

json_t *sg_avro_bytes_to_string(const uint8_t *bytes, size_t len)
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

int sg_avro_is_uuid(const char *s, size_t len)
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
