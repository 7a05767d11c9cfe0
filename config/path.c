/*
 * Path templates: parsing, matching and shape comparison.
 *
 * A template is split once, at parse time, into at most SG_PATH_MAX_SEGMENTS segments, each a
 * literal or a whole-segment "{name}" parameter; matching then is a walk over two segment lists
 * with no backtracking and no allocation unless the path matches. The text after the leading
 * '/' is split on every '/', so "/" is one empty literal segment and a trailing slash is an
 * extra empty segment: "/a" and "/a/" are different templates, as they are different URLs.
 * An empty segment anywhere else ("//") is refused because no client means it on purpose.
 */
#include "sg_path.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "sg_base.h"

/* A template longer than this is a typo or an attack, not a route. */
#define SG_PATH_MAX_TEMPLATE_LEN 2048

typedef struct st_sg_path_segment_t {
    char *text; /* literal bytes, or the parameter name without braces */
    size_t len;
    bool is_param;
} sg_path_segment_t;

struct st_sg_path_template_t {
    sg_path_segment_t segments[SG_PATH_MAX_SEGMENTS];
    size_t n_segments;
    size_t n_params;
};

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

static bool is_param_name(const char *s, size_t len)
{
    if (len == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* Checks one literal segment; returns the reason it is invalid, or NULL. */
static const char *check_literal(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '{')
            return "'{' inside a literal segment (a parameter must be a whole segment, e.g. /a/{id})";
        if (c == '}')
            return "unmatched '}'";
        if (c == '?' || c == '#')
            return "'?' and '#' are not allowed in a path template";
        if (c <= 0x20 || c == 0x7f)
            return "control characters and spaces are not allowed in a path template";
        if (c == '%' && !(i + 2 < len && is_hex(s[i + 1]) && is_hex(s[i + 2])))
            return "'%' must be followed by two hex digits";
    }
    return NULL;
}

sg_path_template_t *sg_path_template_parse(const char *tmpl, char *err, size_t errlen)
{
    if (tmpl == NULL || tmpl[0] != '/') {
        sg_errf(err, errlen, "%s", "a path template must start with '/'");
        return NULL;
    }
    size_t total = strlen(tmpl);
    if (total > SG_PATH_MAX_TEMPLATE_LEN) {
        sg_errf(err, errlen, "%s", "path template is longer than 2048 bytes");
        return NULL;
    }

    sg_path_template_t *t = sg_calloc(1, sizeof(*t));
    char msg[128];
    const char *p = tmpl + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (len == 0 && slash != NULL) {
            sg_errf(err, errlen, "%s", "empty segment (\"//\") in path template");
            goto fail;
        }
        if (t->n_segments == SG_PATH_MAX_SEGMENTS) {
            snprintf(msg, sizeof(msg), "path template has more than %d segments", SG_PATH_MAX_SEGMENTS);
            sg_errf(err, errlen, "%s", msg);
            goto fail;
        }
        sg_path_segment_t *seg = &t->segments[t->n_segments];
        if (len > 0 && p[0] == '{') {
            if (memchr(p, '}', len) == NULL) {
                sg_errf(err, errlen, "%s", "unterminated '{' in path template");
                goto fail;
            }
            if (p[len - 1] != '}' || memchr(p + 1, '{', len - 1) != NULL || memchr(p, '}', len - 1) != NULL) {
                sg_errf(err, errlen, "%s", "a parameter must be a whole segment, e.g. /a/{id}");
                goto fail;
            }
            if (!is_param_name(p + 1, len - 2)) {
                sg_errf(err, errlen, "%s", "parameter names are [A-Za-z_][A-Za-z0-9_]*");
                goto fail;
            }
            for (size_t i = 0; i < t->n_segments; i++) {
                if (t->segments[i].is_param && t->segments[i].len == len - 2 && memcmp(t->segments[i].text, p + 1, len - 2) == 0) {
                    sg_errf(err, errlen, "%s", "duplicate parameter name in path template");
                    goto fail;
                }
            }
            if (t->n_params == SG_PATH_MAX_PARAMS) {
                snprintf(msg, sizeof(msg), "path template has more than %d parameters", SG_PATH_MAX_PARAMS);
                sg_errf(err, errlen, "%s", msg);
                goto fail;
            }
            seg->text = sg_memdup(p + 1, len - 2);
            seg->len = len - 2;
            seg->is_param = true;
            t->n_params++;
        } else {
            const char *why = check_literal(p, len);
            if (why != NULL) {
                sg_errf(err, errlen, "%s", why);
                goto fail;
            }
            seg->text = sg_memdup(p, len);
            seg->len = len;
        }
        t->n_segments++;
        if (slash == NULL)
            break;
        p = slash + 1;
    }
    return t;

fail:
    sg_path_template_destroy(t);
    return NULL;
}

void sg_path_template_destroy(sg_path_template_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_segments; i++)
        free(t->segments[i].text);
    free(t);
}

size_t sg_path_template_n_params(const sg_path_template_t *t)
{
    return t->n_params;
}

size_t sg_path_template_n_literals(const sg_path_template_t *t)
{
    return t->n_segments - t->n_params;
}

int sg_path_template_has_param(const sg_path_template_t *t, const char *name)
{
    for (size_t i = 0; i < t->n_segments; i++)
        if (t->segments[i].is_param && strcmp(t->segments[i].text, name) == 0)
            return 1;
    return 0;
}

int sg_path_template_same_shape(const sg_path_template_t *a, const sg_path_template_t *b)
{
    if (a->n_segments != b->n_segments)
        return 0;
    for (size_t i = 0; i < a->n_segments; i++) {
        const sg_path_segment_t *sa = &a->segments[i], *sb = &b->segments[i];
        if (sa->is_param != sb->is_param)
            return 0;
        /* Two parameters match the same values whatever they are called. */
        if (!sa->is_param && (sa->len != sb->len || memcmp(sa->text, sb->text, sa->len) != 0))
            return 0;
    }
    return 1;
}

/* A NUL is refused: it would silently truncate the value for every C consumer downstream. */
long sg_path_decode_into(const char *src, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\0')
            return -1; /* a raw NUL (HTTP/2 paths can carry one) is refused like %00 */
        if (src[i] != '%') {
            out[o++] = src[i];
            continue;
        }
        if (i + 2 >= len || !is_hex(src[i + 1]) || !is_hex(src[i + 2]))
            return -1;
        int byte = hex_value(src[i + 1]) * 16 + hex_value(src[i + 2]);
        if (byte == 0)
            return -1;
        out[o++] = (char)byte;
        i += 2;
    }
    out[o] = '\0';
    return (long)o;
}

char *sg_path_decode(const char *src, size_t len, size_t *out_len)
{
    char *out = sg_malloc(len + 1);
    long decoded = sg_path_decode_into(src, len, out);
    if (decoded < 0) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)decoded;
    return out;
}

int sg_path_template_match(const sg_path_template_t *t, const char *path, size_t len, sg_path_match_t *m)
{
    m->n_params = 0;
    if (len == 0 || path[0] != '/')
        return 0;

    /* Split first and compare literals before decoding anything, so a miss allocates nothing. */
    const char *starts[SG_PATH_MAX_SEGMENTS];
    size_t lens[SG_PATH_MAX_SEGMENTS];
    size_t n = 0, pos = 1;
    for (;;) {
        const char *slash = memchr(path + pos, '/', len - pos);
        size_t end = slash != NULL ? (size_t)(slash - path) : len;
        if (n == t->n_segments)
            return 0;
        starts[n] = path + pos;
        lens[n] = end - pos;
        n++;
        if (slash == NULL)
            break;
        pos = end + 1;
    }
    if (n != t->n_segments)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const sg_path_segment_t *seg = &t->segments[i];
        if (seg->is_param) {
            if (lens[i] == 0)
                return 0;
        } else if (seg->len != lens[i] || memcmp(seg->text, starts[i], lens[i]) != 0) {
            return 0;
        }
    }

    for (size_t i = 0; i < n; i++) {
        const sg_path_segment_t *seg = &t->segments[i];
        if (!seg->is_param)
            continue;
        sg_path_param_t *param = &m->params[m->n_params];
        param->value = sg_path_decode(starts[i], lens[i], &param->len);
        if (param->value == NULL) {
            sg_path_match_dispose(m);
            return -1;
        }
        param->name = seg->text;
        m->n_params++;
    }
    return 1;
}

void sg_path_match_dispose(sg_path_match_t *m)
{
    for (size_t i = 0; i < m->n_params; i++) {
        free(m->params[i].value);
        m->params[i].value = NULL;
    }
    m->n_params = 0;
}

const sg_path_param_t *sg_path_match_get(const sg_path_match_t *m, const char *name)
{
    for (size_t i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0)
            return &m->params[i];
    return NULL;
}
