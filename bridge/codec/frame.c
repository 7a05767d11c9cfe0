/*
 * The Confluent wire format (sg_frame.h): five bytes of header, written and read by hand.
 */
#include "sg_frame.h"

#include <string.h>

#include "sg_base.h"

int sg_avro_is_framed(const void *data, size_t len)
{
    return data != NULL && len >= SG_AVRO_FRAME_HEADER && ((const uint8_t *)data)[0] == 0;
}

void sg_avro_frame_header(uint32_t schema_id, uint8_t out[SG_AVRO_FRAME_HEADER])
{
    out[0] = 0;
    out[1] = (uint8_t)(schema_id >> 24);
    out[2] = (uint8_t)(schema_id >> 16);
    out[3] = (uint8_t)(schema_id >> 8);
    out[4] = (uint8_t)schema_id;
}

size_t sg_avro_frame(uint32_t schema_id, const void *avro, size_t len, void **out)
{
    uint8_t *buf = sg_malloc(SG_AVRO_FRAME_HEADER + len);
    sg_avro_frame_header(schema_id, buf);
    if (len > 0)
        memcpy(buf + SG_AVRO_FRAME_HEADER, avro, len);
    *out = buf;
    return SG_AVRO_FRAME_HEADER + len;
}

int sg_avro_unframe(const void *data, size_t len, uint32_t *schema_id, const void **payload, size_t *payload_len)
{
    if (!sg_avro_is_framed(data, len))
        return -1;
    const uint8_t *bytes = data;
    *schema_id = (uint32_t)bytes[1] << 24 | (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 8 | (uint32_t)bytes[4];
    *payload = bytes + SG_AVRO_FRAME_HEADER;
    *payload_len = len - SG_AVRO_FRAME_HEADER;
    return 0;
}
