/*
 * The allocation-free JSON validator (see sg_jsonv.h): a recursive descent over a cursor.
 */
#include "sg_jsonv.h"

#include <stdint.h>
#include <string.h>

typedef struct {
    const unsigned char *at, *end;
} cursor_t;

static void skip_ws(cursor_t *c)
{
    while (c->at < c->end && (*c->at == ' ' || *c->at == '\t' || *c->at == '\n' || *c->at == '\r'))
        ++c->at;
}

static int literal(cursor_t *c, const char *word, size_t len)
{
    if ((size_t)(c->end - c->at) < len)
        return 0;
    for (size_t i = 0; i < len; ++i)
        if (c->at[i] != (unsigned char)word[i])
            return 0;
    c->at += len;
    return 1;
}

static int digits(cursor_t *c)
{
    const unsigned char *start = c->at;
    while (c->at < c->end && *c->at >= '0' && *c->at <= '9')
        ++c->at;
    return c->at > start;
}

static int number(cursor_t *c)
{
    if (c->at < c->end && *c->at == '-')
        ++c->at;
    if (c->at < c->end && *c->at == '0')
        ++c->at;
    else if (!(c->at < c->end && *c->at >= '1' && *c->at <= '9') || !digits(c))
        return 0;
    if (c->at < c->end && *c->at == '.') {
        ++c->at;
        if (!digits(c))
            return 0;
    }
    if (c->at < c->end && (*c->at == 'e' || *c->at == 'E')) {
        ++c->at;
        if (c->at < c->end && (*c->at == '+' || *c->at == '-'))
            ++c->at;
        if (!digits(c))
            return 0;
    }
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
 * character, a byte >= 0x80), as the top bit of each: 0 when there is none. Bit tricks (a byte
 * is zero when subtracting one borrows from its top bit); a borrow can also flag a byte after a
 * flagged one, never before the first, so the lowest flag is exact. */
static uint64_t special_bytes(uint64_t word)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t quote = word ^ (ones * '"'), backslash = word ^ (ones * '\\');
    uint64_t zero_quote = (quote - ones) & ~quote, zero_backslash = (backslash - ones) & ~backslash;
    uint64_t control = (word - ones * 0x20) & ~word;
    return (zero_quote | zero_backslash | control | word) & highs;
}

static int string(cursor_t *c)
{
    ++c->at; /* the opening quote */
    while (c->at < c->end) {
        /* Plain text eight bytes at a time: a table value's strings are most of its bytes, and a
         * byte at a time they were a third of a restore's reading thread (bench/README.md). */
        while (c->end - c->at >= 8) {
            uint64_t word;
            memcpy(&word, c->at, 8);
            uint64_t special = special_bytes(word);
            if (special == 0) {
                c->at += 8;
                continue;
            }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            c->at += (unsigned)__builtin_ctzll(special) / 8; /* the first byte in memory is the lowest */
#endif
            break;
        }
        /* Then a byte at a time up to the special one (the last bytes, or a big-endian machine). */
        while (c->at < c->end && *c->at >= 0x20 && *c->at < 0x80 && *c->at != '"' && *c->at != '\\')
            ++c->at;
        if (c->at >= c->end)
            break;
        unsigned char ch = *c->at;
        if (ch == '"') {
            ++c->at;
            return 1;
        }
        if (ch < 0x20)
            return 0;
        if (ch == '\\') {
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
            } else if (esc != '"' && esc != '\\' && esc != '/' && esc != 'b' && esc != 'f' && esc != 'n' && esc != 'r' &&
                       esc != 't') {
                return 0;
            }
        } else if (!utf8(c)) { /* >= 0x80 */
            return 0;
        }
    }
    return 0;
}

static int value(cursor_t *c, int depth);

static int container(cursor_t *c, int depth, unsigned char close, int object)
{
    if (depth >= SG_JSONV_MAX_DEPTH)
        return 0;
    ++c->at;
    skip_ws(c);
    if (c->at < c->end && *c->at == close) {
        ++c->at;
        return 1;
    }
    for (;;) {
        if (object) {
            if (c->at >= c->end || *c->at != '"' || !string(c))
                return 0;
            skip_ws(c);
            if (c->at >= c->end || *c->at != ':')
                return 0;
            ++c->at;
        }
        if (!value(c, depth + 1))
            return 0;
        if (c->at >= c->end)
            return 0;
        if (*c->at == close) {
            ++c->at;
            return 1;
        }
        if (*c->at != ',')
            return 0;
        ++c->at;
        skip_ws(c);
    }
}

/* A value with the whitespace around it. */
static int value(cursor_t *c, int depth)
{
    skip_ws(c);
    if (c->at >= c->end)
        return 0;
    int ok;
    switch (*c->at) {
    case '{': ok = container(c, depth, '}', 1); break;
    case '[': ok = container(c, depth, ']', 0); break;
    case '"': ok = string(c); break;
    case 't': ok = literal(c, "true", 4); break;
    case 'f': ok = literal(c, "false", 5); break;
    case 'n': ok = literal(c, "null", 4); break;
    default: ok = number(c); break;
    }
    if (ok)
        skip_ws(c);
    return ok;
}

int sg_jsonv_check(const void *data, size_t len, size_t *error_at)
{
    cursor_t c = {data, (const unsigned char *)data + len};
    int ok = data != NULL && value(&c, 0) && c.at == c.end;
    if (!ok && error_at != NULL)
        *error_at = (size_t)(c.at - (const unsigned char *)data);
    return ok;
}
