/*
 * JSON pointer resolution and key encoding; see keys.h.
 */
#include "keys.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decodes one reference token (between '/'), undoing ~1 -> '/' and ~0 -> '~'. Returns its
 * length, or -1 for a '~' not followed by 0 or 1. */
static int decode_token(const char *src, size_t len, char *dst, size_t dstlen)
{
    size_t out = 0;
    for (size_t i = 0; i < len; ++i) {
        char c = src[i];
        if (c == '~') {
            if (i + 1 >= len || (src[i + 1] != '0' && src[i + 1] != '1'))
                return -1;
            c = src[++i] == '0' ? '~' : '/';
        }
        if (out + 1 >= dstlen)
            return -1;
        dst[out++] = c;
    }
    dst[out] = '\0';
    return (int)out;
}

static int parse_index(const char *token, size_t len, size_t *index)
{
    if (len == 0 || len > 9 || (len > 1 && token[0] == '0'))
        return -1;
    size_t value = 0;
    for (size_t i = 0; i < len; ++i) {
        if (token[i] < '0' || token[i] > '9')
            return -1;
        value = value * 10 + (size_t)(token[i] - '0');
    }
    *index = value;
    return 0;
}

json_t *sg_json_pointer_get(json_t *root, const char *pointer, char *err, size_t errlen)
{
    if (*pointer == '\0')
        return root;
    if (*pointer != '/') {
        snprintf(err, errlen, "JSON pointer %s must start with '/'", pointer);
        return NULL;
    }
    json_t *cur = root;
    const char *p = pointer;
    while (*p == '/') {
        const char *start = p + 1;
        const char *end = strchr(start, '/');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        char token[512];
        int toklen = decode_token(start, len, token, sizeof(token));
        if (toklen < 0) {
            snprintf(err, errlen, "JSON pointer %s is malformed", pointer);
            return NULL;
        }
        size_t index;
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, token, (size_t)toklen);
        } else if (json_is_array(cur) && parse_index(token, (size_t)toklen, &index) == 0) {
            cur = json_array_get(cur, index);
        } else {
            cur = NULL;
        }
        if (cur == NULL) {
            snprintf(err, errlen, "%.*s is missing", (int)(start + len - pointer), pointer);
            return NULL;
        }
        p = start + len;
    }
    return cur;
}

int sg_key_from_json(const json_t *value, char *buf, size_t buflen, char *err, size_t errlen)
{
    if (json_is_string(value)) {
        size_t len = json_string_length(value);
        if (len == 0) {
            snprintf(err, errlen, "is an empty string");
            return -1;
        }
        if (len > SG_KEY_MAX_BYTES || len + 1 > buflen) {
            snprintf(err, errlen, "is longer than %d bytes", SG_KEY_MAX_BYTES);
            return -1;
        }
        memcpy(buf, json_string_value(value), len);
        buf[len] = '\0';
        return (int)len;
    }
    if (json_is_integer(value)) {
        int len = snprintf(buf, buflen, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        if (len < 0 || (size_t)len >= buflen) {
            snprintf(err, errlen, "does not fit the key buffer");
            return -1;
        }
        return len;
    }
    static const char *names[] = {"an object", "an array", "a string", "an integer", "a real number", "true", "false", "null"};
    snprintf(err, errlen, "must be a string or an integer, not %s", names[json_typeof(value)]);
    return -1;
}
