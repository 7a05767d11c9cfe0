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

/* --- the scan ---------------------------------------------------------------------------------
 *
 * A recursive-descent recogniser over the bytes, with an explicit stack. It must never accept
 * what Jansson refuses, and gives up (0) wherever proving that would take more code than the
 * case is worth: Jansson then decides. Jansson's rules it mirrors (load.c, 2.14): whitespace is
 * space, tab, CR, LF; a string holds no byte below 0x20; a number is -?(0|[1-9][0-9]*)(.[0-9]+)?
 * ([eE][+-]?[0-9]+)?, an integer must fit json_int_t and a real must not overflow; literals are
 * exactly true, false, null; nothing but whitespace after the document; with
 * JSON_REJECT_DUPLICATES two equal member names in one object are an error. */

#define SCAN_MAX_DEPTH 32     /* Jansson allows 2048; deeper documents are left to it */
#define SCAN_MAX_MEMBERS 64   /* member names remembered for the duplicate check, all open objects */
#define SCAN_MAX_INT_DIGITS 18 /* always within json_int_t (int64) */
#define SCAN_MAX_REAL_DIGITS 300 /* an integer part this short cannot overflow a double */

typedef struct {
    const char *p, *end;
} scan_t;

typedef struct {
    const char *start;
    size_t len;
} scan_span_t;

typedef struct {
    char kind;          /* '{' or '[' */
    int on_path;        /* the container is where the pointer's first `depth` tokens lead */
    size_t count;       /* members or elements so far */
    size_t first_name;  /* its member names start here in the names array */
} scan_level_t;

static void skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        ++s->p;
}

/* A string at s->p (its opening quote). Returns 0 and its raw contents, or -1 (also for what is
 * left to Jansson: \u escapes, bytes >= 0x80). *escaped says whether it held any escape. */
static int scan_string(scan_t *s, scan_span_t *contents, int *escaped)
{
    const char *p = s->p + 1;
    *escaped = 0;
    for (;;) {
        if (p >= s->end)
            return -1;
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c < 0x20 || c >= 0x80)
            return -1;
        if (c == '\\') {
            if (p + 1 >= s->end)
                return -1;
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': break;
            default: return -1; /* \u (surrogates, NUL) and invalid escapes: Jansson's call */
            }
            *escaped = 1;
            p += 2;
            continue;
        }
        ++p;
    }
    contents->start = s->p + 1;
    contents->len = (size_t)(p - contents->start);
    s->p = p + 1;
    return 0;
}

/* A number at s->p. Returns 0 (and *integer: no fraction, no exponent), or -1. */
static int scan_number(scan_t *s, int *integer)
{
    const char *p = s->p;
    if (p < s->end && *p == '-')
        ++p;
    const char *digits = p;
    if (p < s->end && *p == '0')
        ++p;
    else
        while (p < s->end && *p >= '0' && *p <= '9')
            ++p;
    size_t n_digits = (size_t)(p - digits);
    if (n_digits == 0)
        return -1;
    *integer = 1;
    if (p < s->end && *p == '.') {
        *integer = 0;
        const char *frac = ++p;
        while (p < s->end && *p >= '0' && *p <= '9')
            ++p;
        if (p == frac)
            return -1;
    }
    if (p < s->end && (*p == 'e' || *p == 'E'))
        return -1; /* whether it overflows a double is strtod's call, i.e. Jansson's */
    if (n_digits > (*integer ? SCAN_MAX_INT_DIGITS : SCAN_MAX_REAL_DIGITS))
        return -1;
    s->p = p;
    return 0;
}

static int scan_literal(scan_t *s, const char *word, size_t len)
{
    if ((size_t)(s->end - s->p) < len || memcmp(s->p, word, len) != 0)
        return -1;
    s->p += len;
    return 0;
}

/* Whether the member name (raw, without escapes) is the pointer token `token` (RFC 6901 escapes). */
static int token_is_name(const char *token, size_t token_len, const scan_span_t *name)
{
    size_t n = 0;
    for (size_t i = 0; i < token_len; ++i, ++n) {
        char c = token[i];
        if (c == '~')
            c = ++i < token_len && token[i] == '0' ? '~' : '/'; /* the pointer was checked: ~0 or ~1 */
        if (n >= name->len || name->start[n] != c)
            return 0;
    }
    return n == name->len;
}

static int token_is_index(const char *token, size_t token_len, size_t index)
{
    size_t value;
    return parse_index(token, token_len, &value) == 0 && value == index;
}

/* The pointer's tokens as spans of the pointer text; -1 when malformed or too deep. */
static int split_pointer(const char *pointer, scan_span_t *tokens, size_t max, size_t *n)
{
    *n = 0;
    if (*pointer == '\0')
        return 0;
    if (*pointer != '/')
        return -1;
    const char *p = pointer;
    while (*p == '/') {
        const char *start = ++p;
        while (*p != '\0' && *p != '/') {
            if (*p == '~' && p[1] != '0' && p[1] != '1')
                return -1;
            p += *p == '~' ? 2 : 1;
        }
        if (*n == max || p - start >= 511) /* sg_json_pointer_get's token buffer: longer is malformed there */
            return -1;
        tokens[(*n)++] = (scan_span_t){start, (size_t)(p - start)};
    }
    return 0;
}

int sg_key_scan_json(const char *text, size_t len, const char *pointer, const char **key, size_t *key_len)
{
    scan_span_t tokens[SCAN_MAX_DEPTH], names[SCAN_MAX_MEMBERS];
    scan_level_t stack[SCAN_MAX_DEPTH];
    size_t n_tokens = 0, depth = 0, n_names = 0;
    if (pointer != NULL && split_pointer(pointer, tokens, SCAN_MAX_DEPTH, &n_tokens) != 0)
        return 0;
    int found = 0;
    scan_t s = {text, text + len};
    int value_on_path = pointer != NULL; /* the root is where an empty pointer leads */
    skip_ws(&s);
    for (;;) {
        /* a value */
        if (s.p >= s.end)
            return 0;
        int is_target = value_on_path && depth == n_tokens;
        const char *start = s.p;
        switch (*s.p) {
        case '{':
        case '[':
            if (depth == SCAN_MAX_DEPTH || is_target)
                return 0; /* a key must be a string or an integer: Jansson's path says why not */
            stack[depth++] = (scan_level_t){.kind = *s.p, .on_path = value_on_path, .first_name = n_names};
            ++s.p;
            skip_ws(&s);
            if (s.p < s.end && *s.p == (stack[depth - 1].kind == '{' ? '}' : ']')) {
                ++s.p;
                n_names = stack[--depth].first_name;
                break;
            }
            goto next_member;
        case '"': {
            scan_span_t contents;
            int escaped;
            if (scan_string(&s, &contents, &escaped) != 0)
                return 0;
            if (is_target) {
                if (escaped || contents.len == 0 || contents.len > SG_KEY_MAX_BYTES)
                    return 0;
                *key = contents.start;
                *key_len = contents.len;
                found = 1;
            }
            break;
        }
        case 't':
        case 'f':
        case 'n':
            if (is_target || scan_literal(&s, *s.p == 't' ? "true" : *s.p == 'f' ? "false" : "null",
                                          *s.p == 't' ? 4 : *s.p == 'f' ? 5 : 4) != 0)
                return 0;
            break;
        default: {
            int integer;
            if (scan_number(&s, &integer) != 0)
                return 0;
            if (is_target) {
                /* Jansson's integer printed back is the same text, except for "-0" */
                if (!integer || (s.p - start == 2 && start[0] == '-' && start[1] == '0'))
                    return 0;
                *key = start;
                *key_len = (size_t)(s.p - start);
                found = 1;
            }
        }
        }
        /* after a value: the end, or the next member or element, or the end of containers */
        for (;;) {
            skip_ws(&s);
            if (depth == 0) {
                if (s.p != s.end)
                    return 0;
                return pointer == NULL || found;
            }
            scan_level_t *level = &stack[depth - 1];
            if (s.p >= s.end)
                return 0;
            if (*s.p == ',') {
                ++s.p;
                skip_ws(&s);
                goto next_member;
            }
            if (*s.p != (level->kind == '{' ? '}' : ']'))
                return 0;
            ++s.p;
            n_names = level->first_name;
            --depth;
        }
    next_member: {
        scan_level_t *level = &stack[depth - 1];
        int on_path = level->on_path && depth <= n_tokens;
        const scan_span_t *token = on_path ? &tokens[depth - 1] : NULL;
        if (level->kind == '{') {
            scan_span_t name;
            int escaped;
            if (s.p >= s.end || *s.p != '"' || scan_string(&s, &name, &escaped) != 0 || escaped)
                return 0; /* escaped names: duplicates and the pointer compare decoded names */
            for (size_t i = level->first_name; i < n_names; ++i)
                if (names[i].len == name.len && memcmp(names[i].start, name.start, name.len) == 0)
                    return 0; /* a duplicate: Jansson refuses it and says where */
            if (n_names == SCAN_MAX_MEMBERS)
                return 0;
            names[n_names++] = name;
            skip_ws(&s);
            if (s.p >= s.end || *s.p != ':')
                return 0;
            ++s.p;
            skip_ws(&s);
            value_on_path = on_path && token_is_name(token->start, token->len, &name);
        } else {
            value_on_path = on_path && token_is_index(token->start, token->len, level->count);
        }
        ++level->count;
    }
    }
}
