/*
 * The Confluent wire format around an Avro payload: magic byte 0, the schema's registry id (4
 * bytes, big-endian), then the Avro binary. No JSON text starts with a zero byte, so a value is
 * told apart from JSON by its first byte, without configuration. Pure; any thread.
 */
#ifndef SG_FRAME_H
#define SG_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Length of the Confluent header: magic byte 0 and a 4-byte big-endian schema id. */
#define SG_AVRO_FRAME_HEADER 5

/** Whether data is Confluent-framed: at least the 5-byte header, and magic byte 0. */
int sg_avro_is_framed(const void *data, size_t len);

/** Writes the 5-byte header for schema_id into out (for a payload encoded right behind it). */
void sg_avro_frame_header(uint32_t schema_id, uint8_t out[SG_AVRO_FRAME_HEADER]);

/** Frames an Avro payload. Returns the framed length, with *out an owned buffer (free()). */
size_t sg_avro_frame(uint32_t schema_id, const void *avro, size_t len, void **out);

/** Splits Confluent-framed data. Returns 0 with the schema id and a payload pointing into `data`
 * (borrowed), or -1 if the data is not framed (too short or wrong magic byte). */
int sg_avro_unframe(const void *data, size_t len, uint32_t *schema_id, const void **payload, size_t *payload_len);

#endif
