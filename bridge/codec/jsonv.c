/*
 * The allocation-free JSON validator (see sg_jsonv.h): one loop over the text with the open
 * containers as a bit stack (no recursion, no call per value), whitespace and value starts
 * looked up in byte-class tables, strings and digits checked eight bytes at a time. A restore validates
 * every record's value (~100 bytes of short fields in the bench): the per-token work, not the
 * bytes, is what it pays for (bench/README.md, "after s-restore2").
 */
#include "sg_jsonv.h"

#include <stdint.h>
#include <string.h>

typedef struct {
    const unsigned char *at, *end;
} cursor_t;

/* Bytes that are JSON whitespace. */
static const unsigned char is_ws[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1};

static void skip_ws(const unsigned char **at, const unsigned char *end)
{
    const unsigned char *p = *at;
    while (p < end && is_ws[*p])
        ++p;
    *at = p;
}

/* The digits 0-9 from *at on; returns whether there was one. */
static int digits(const unsigned char **at, const unsigned char *end)
{
    const unsigned char *p = *at, *start = p;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Eight at a time: a byte is not a digit when it is below '0' (subtracting 0x30 borrows from
     * its top bit), above '9' (adding 0x46 reaches it) or >= 0x80. Carries and borrows only come
     * from non-digits and only go up: the lowest flag is exact. */
    const uint64_t ones = 0x0101010101010101u;
    while (end - p >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        uint64_t other = ((word - ones * '0') | (word + ones * 0x46) | word) & (ones * 0x80);
        if (other != 0) {
            p += (unsigned)__builtin_ctzll(other) / 8;
            *at = p;
            return p > start;
        }
        p += 8;
    }
#endif
    while (p < end && (unsigned)(*p - '0') < 10)
        ++p;
    *at = p;
    return p > start;
}

/* A number at *at (any byte: what is not one fails where it stops being one). */
static int number(const unsigned char **at, const unsigned char *end)
{
    const unsigned char *p = *at;
    int ok = 0;
    if (p < end && *p == '-')
        ++p;
    if (p < end && *p == '0')
        ++p;
    else if (!(p < end && (unsigned)(*p - '1') < 9) || !digits(&p, end))
        goto out;
    if (p < end && *p == '.') {
        ++p;
        if (!digits(&p, end))
            goto out;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        ++p;
        if (p < end && (*p == '+' || *p == '-'))
            ++p;
        if (!digits(&p, end))
            goto out;
    }
    ok = 1;
out:
    *at = p;
    return ok;
}

/* The literal `word` (len bytes) at *at; on a mismatch *at stays. */
static int literal(const unsigned char **at, const unsigned char *end, const char *word, size_t len)
{
    if ((size_t)(end - *at) < len || memcmp(*at, word, len) != 0)
        return 0;
    *at += len;
    return 1;
}

static int hex4(cursor_t *c, uint32_t *out)
{
    if (c->end - c->at < 4)
        return 0;
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
        unsigned char h = c->at[i];
        value <<= 4;
        if (h >= '0' && h <= '9')
            value |= (uint32_t)(h - '0');
        else if (h >= 'a' && h <= 'f')
            value |= (uint32_t)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
            value |= (uint32_t)(h - 'A' + 10);
        else
            return 0;
    }
    c->at += 4;
    *out = value;
    return 1;
}

/* One UTF-8 sequence starting at a byte >= 0x80. */
static int utf8(cursor_t *c)
{
    unsigned char lead = *c->at;
    size_t n;
    uint32_t cp;
    if (lead >= 0xc2 && lead <= 0xdf) {
        n = 1;
        cp = lead & 0x1f;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        n = 2;
        cp = lead & 0x0f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        n = 3;
        cp = lead & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(c->end - c->at) <= n)
        return 0;
    for (size_t i = 1; i <= n; ++i) {
        if ((c->at[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (c->at[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    c->at += n + 1;
    return 1;
}

/* The bytes of `word` a string cannot take as they are (a quote, a backslash, a control
 * character, a byte >= 0x80), as the top bit of each: 0 when there is none. A byte equal to c
 * is a zero of word ^ c, and subtracting one from a zero byte sets its top bit (as subtracting
 * 0x20 does for a control character); that also flags bytes >= 0x80, which the last term flags
 * anyway. A borrow can flag a byte after a flagged one, never before the first: the lowest flag
 * is exact. */
static uint64_t special_bytes(uint64_t word)
{
    const uint64_t ones = 0x0101010101010101u;
    uint64_t quote = (word ^ (ones * '"')) - ones, backslash = (word ^ (ones * '\\')) - ones;
    return (quote | backslash | (word - ones * 0x20) | word) & (ones * 0x80);
}

/* An escape at *at (its backslash); on failure *at is where it stopped. */
static int escape(cursor_t *c)
{
    if (c->end - c->at < 2)
        return 0;
    unsigned char esc = c->at[1];
    c->at += 2;
    if (esc == 'u') {
        uint32_t unit;
        if (!hex4(c, &unit))
            return 0;
        if (unit >= 0xdc00 && unit <= 0xdfff)
            return 0; /* a low surrogate alone */
        if (unit >= 0xd800 && unit <= 0xdbff) {
            uint32_t low;
            if (c->end - c->at < 2 || c->at[0] != '\\' || c->at[1] != 'u')
                return 0;
            c->at += 2;
            if (!hex4(c, &low) || low < 0xdc00 || low > 0xdfff)
                return 0;
        }
        return 1;
    }
    return esc == '"' || esc == '\\' || esc == '/' || esc == 'b' || esc == 'f' || esc == 'n' || esc == 'r' || esc == 't';
}

/* How a byte can start a value: the dispatch of the main loop. */
enum { START_NONE, START_WS, START_OBJECT, START_ARRAY, START_STRING, START_TRUE, START_FALSE, START_NULL, START_NUMBER };
static const unsigned char value_start[256] = {
    [' '] = START_WS,     ['\t'] = START_WS,    ['\n'] = START_WS,    ['\r'] = START_WS,    ['{'] = START_OBJECT,
    ['['] = START_ARRAY,  ['"'] = START_STRING, ['t'] = START_TRUE,   ['f'] = START_FALSE,  ['n'] = START_NULL,
    ['-'] = START_NUMBER, ['0'] = START_NUMBER, ['1'] = START_NUMBER, ['2'] = START_NUMBER, ['3'] = START_NUMBER,
    ['4'] = START_NUMBER, ['5'] = START_NUMBER, ['6'] = START_NUMBER, ['7'] = START_NUMBER, ['8'] = START_NUMBER,
    ['9'] = START_NUMBER,
};

int sg_jsonv_check(const void *data, size_t len, size_t *error_at)
{
    if (data == NULL) {
        if (error_at != NULL)
            *error_at = 0;
        return 0;
    }
    const unsigned char *p = data, *end = p + len;
    /* The open containers: `depth` of them, the innermost an object when in_object; the outer
     * ones' kinds in the bit stack (bit i: container i + 1 is an object; written on the way in). */
    uint64_t objects[SG_JSONV_MAX_DEPTH / 64];
    int depth = 0, in_object = 0, key = 0, ok = 0;
value:
    if (p >= end)
        goto out;
    switch (value_start[*p]) {
    case START_WS: skip_ws(&p, end); goto value;
    case START_OBJECT:
    case START_ARRAY:
        if (depth >= SG_JSONV_MAX_DEPTH)
            goto out;
        if (depth > 0) {
            uint64_t bit = (uint64_t)1 << ((depth - 1) % 64);
            objects[(depth - 1) / 64] = in_object ? objects[(depth - 1) / 64] | bit : objects[(depth - 1) / 64] & ~bit;
        }
        ++depth;
        in_object = *p == '{';
        ++p;
        skip_ws(&p, end);
        if (p < end && *p == (in_object ? '}' : ']')) {
            ++p;
            goto close;
        }
        if (in_object)
            goto member;
        goto value;
    case START_STRING: key = 0; goto string;
    case START_TRUE:
        if (!literal(&p, end, "true", 4))
            goto out;
        goto after_value;
    case START_FALSE:
        if (!literal(&p, end, "false", 5))
            goto out;
        goto after_value;
    case START_NULL:
        if (!literal(&p, end, "null", 4))
            goto out;
        goto after_value;
    default: /* a number, or what fails as one */
        if (!number(&p, end))
            goto out;
        goto after_value;
    }
close: /* the innermost container has ended */
    if (--depth > 0)
        in_object = (int)(objects[(depth - 1) / 64] >> ((depth - 1) % 64) & 1);
after_value: /* whitespace is rare between tokens: looked for only where the next byte is not the token */
    if (depth == 0) {
        skip_ws(&p, end);
        ok = p == end;
        goto out;
    }
    if (p >= end)
        goto out;
    if (*p == ',') {
        ++p;
        if (!in_object)
            goto value;
        goto member;
    }
    if (*p == (in_object ? '}' : ']')) {
        ++p;
        goto close;
    }
    if (!is_ws[*p])
        goto out;
    skip_ws(&p, end);
    goto after_value;
member:
    if (p >= end || *p != '"') {
        skip_ws(&p, end);
        if (p >= end || *p != '"')
            goto out;
    }
    key = 1;
string: /* at the opening quote: one place for member names and string values */
    ++p;
    for (;;) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* Plain text eight bytes at a time, up to the first special byte (the lowest flag: the
         * first byte in memory). */
        if (end - p >= 8) {
            uint64_t word;
            memcpy(&word, p, 8);
            uint64_t special = special_bytes(word);
            if (special == 0) {
                p += 8;
                continue;
            }
            p += (unsigned)__builtin_ctzll(special) / 8;
        } else
#endif
        {
            /* The last bytes (or a big-endian machine): the bytes special_bytes flags. */
            while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
                ++p;
            if (p >= end)
                goto out;
        }
        unsigned char ch = *p;
        if (ch == '"')
            break;
        if (ch < 0x20)
            goto out;
        cursor_t c = {p, end};
        int good = ch == '\\' ? escape(&c) : utf8(&c);
        p = c.at;
        if (!good)
            goto out;
    }
    ++p; /* the closing quote */
    if (!key)
        goto after_value;
    if (p >= end || *p != ':') {
        skip_ws(&p, end);
        if (p >= end || *p != ':')
            goto out;
    }
    ++p;
    goto value;
out:
    if (!ok && error_at != NULL)
        *error_at = (size_t)(p - (const unsigned char *)data);
    return ok;
}
