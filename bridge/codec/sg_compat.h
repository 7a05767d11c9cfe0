/*
 * Avro schema compatibility, as a schema registry checks it: the compatibility levels, whether
 * one schema can read data written with another (the specification's resolution rules), and a
 * canonical text so that schemas differing only in layout or key order compare equal. Pure; any
 * thread.
 */
#ifndef SG_COMPAT_H
#define SG_COMPAT_H

#include <stddef.h>

typedef enum {
    SG_COMPAT_NONE = 0,
    SG_COMPAT_BACKWARD,
    SG_COMPAT_BACKWARD_TRANSITIVE,
    SG_COMPAT_FORWARD,
    SG_COMPAT_FORWARD_TRANSITIVE,
    SG_COMPAT_FULL,
    SG_COMPAT_FULL_TRANSITIVE,
} sg_compat_t;

/** Name of a level ("BACKWARD_TRANSITIVE"). */
const char *sg_compat_name(sg_compat_t level);
/** Parses a level name (case-insensitive). Returns 0, or -1. */
int sg_compat_parse(const char *text, sg_compat_t *level);

/** Whether data written with `writer` can be read with `reader`, by the Avro specification's
 * schema resolution rules (promotions, reader defaults for missing fields, enum symbols, unions,
 * names). Returns 1, 0 with the reason in err ("/fields/price: ..."), or -1 if a text is not a
 * valid schema. */
int sg_schema_can_read(const char *writer, size_t writer_len, const char *reader, size_t reader_len, char *err, size_t errlen);

/** The canonical text of a schema: its JSON with object keys sorted and no insignificant
 * whitespace. Returns an owned string (free()), or NULL with err. */
char *sg_schema_canonical(const char *text, size_t len, char *err, size_t errlen);

#endif
