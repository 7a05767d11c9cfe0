/*
 * Path templates: "/orders/{id}/items/{item}".
 *
 * A template is a sequence of '/'-separated segments, each either a literal or a whole-segment
 * parameter "{name}". Matching is exact per segment (no prefix match, no wildcards); literal
 * segments are compared byte for byte against the raw (still percent-encoded) request path and
 * parameter values are percent-decoded. Both the config validator (conflicting paths) and the
 * gateway router use this module, so it depends on nothing but libc.
 */
#ifndef SG_PATH_H
#define SG_PATH_H

#include <stddef.h>

#define SG_PATH_MAX_SEGMENTS 32
#define SG_PATH_MAX_PARAMS 16

typedef struct st_sg_path_template_t sg_path_template_t;

typedef struct st_sg_path_param_t {
    const char *name; /* borrowed from the template */
    char *value;      /* percent-decoded, NUL-terminated; owned by the match */
    size_t len;
} sg_path_param_t;

typedef struct st_sg_path_match_t {
    sg_path_param_t params[SG_PATH_MAX_PARAMS];
    size_t n_params;
} sg_path_match_t;

/** Parses a template. Returns owned template, or NULL with the reason in err. */
sg_path_template_t *sg_path_template_parse(const char *tmpl, char *err, size_t errlen);

/** Frees a template; NULL is a no-op. */
void sg_path_template_destroy(sg_path_template_t *t);

/** Number of parameters in the template. */
size_t sg_path_template_n_params(const sg_path_template_t *t);

/** Whether the template declares parameter `name`. */
int sg_path_template_has_param(const sg_path_template_t *t, const char *name);

/** Whether two templates match exactly the same set of paths ("/a/{x}" and "/a/{y}" do). */
int sg_path_template_same_shape(const sg_path_template_t *a, const sg_path_template_t *b);

/** Number of literal segments: the router prefers the template with more literals. */
size_t sg_path_template_n_literals(const sg_path_template_t *t);

/** Matches a raw request path (without the query string). Returns 1 on match and fills `m`
 * (call sg_path_match_dispose after), 0 on no match, -1 when a parameter value is not valid
 * percent-encoding or decodes to a NUL byte. */
int sg_path_template_match(const sg_path_template_t *t, const char *path, size_t len, sg_path_match_t *m);

/** Percent-decodes src[0..len). Returns an owned NUL-terminated string (free()) and its length,
 * or NULL when an escape is malformed or the result would hold a NUL byte (%00 or a raw one). */
char *sg_path_decode(const char *src, size_t len, size_t *out_len);

/** The same into caller memory: `out` has room for len + 1 bytes. Returns the decoded length, or
 * -1 (out's contents then undefined). */
long sg_path_decode_into(const char *src, size_t len, char *out);

/** Frees the values held by a match (the struct itself is caller memory). */
void sg_path_match_dispose(sg_path_match_t *m);

/** Looks up a matched parameter value by name; NULL when absent. */
const sg_path_param_t *sg_path_match_get(const sg_path_match_t *m, const char *name);

#endif
