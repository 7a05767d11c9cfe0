/*
 * The reference JSON -> Avro encoder (avro_encode_ref.c), for tests only: what the codec's
 * encoder gave before its compiled plan, through Avro-C's generic values.
 */
#ifndef SG_AVRO_ENCODE_REF_H
#define SG_AVRO_ENCODE_REF_H

#include "avro_int.h"

/** As sg_avro_from_json (out NULL: validation only), through an Avro-C generic value tree. */
int sg_avro_ref_from_json(const sg_avro_schema_t *schema, const json_t *value, void **out, size_t *outlen, char *path,
                          size_t pathlen, char *err, size_t errlen);

#endif
