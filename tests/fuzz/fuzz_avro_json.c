/*
 * libFuzzer target for the JSON -> Avro converter and the Avro decoder (bridge/codec/avro_*.c).
 *
 * The first input byte picks one of a fixed set of schemas that together cover every type the
 * converter supports; the rest of the input is tried two ways:
 *   1. as JSON text: the plan encoder (sg_avro_from_json) must agree with the generic-value
 *      encoder it replaced (tests/bridge/codec/avro_encode_ref.c): the same bytes, or the same
 *      JSON pointer and message, and sg_avro_validate_json the same verdict; when it accepts,
 *      the bytes must decode (sg_avro_to_json), the decoded JSON must encode again, and that
 *      second encoding must be byte-for-byte the first one (the decoder's output form is a
 *      fixed point of the encoder);
 *   2. as data from the wire: as Confluent-framed bytes (schema chosen by the frame's id) and as
 *      bare Avro binary for the chosen schema. Anything may be refused, nothing may crash, and
 *      what decodes and re-encodes must decode to the same JSON again.
 * A broken property calls abort(), which libFuzzer reports like a crash. The converter source
 * is compiled into this target (see meson.build) so that it carries the coverage instrumentation.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "avro_corpus.h"
#include "avro_encode_ref.h"
#include "sg_avro.h"
#include "sg_frame.h"

/* JSON text longer than this is not parsed: the run script's -max_len is below it anyway. */
#define FUZZ_MAX_JSON 65536

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sg_avro_schema_t *schemas[AVRO_CORPUS_SCHEMAS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[512];
    if (avro_corpus_parse(schemas, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz %s\n", err);
        abort();
    }
    return 0;
}

static void dump(const char *what, const json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    fprintf(stderr, "%s: %s\n", what, text != NULL ? text : "(unprintable)");
    free(text);
}

/* The plan and the reference encoder answer alike. */
static void check_same_as_reference(const sg_avro_schema_t *schema, const json_t *value, int rc, const void *avro, size_t avro_len,
                                    const char *path, const char *err)
{
    void *ref = NULL;
    size_t ref_len = 0;
    char ref_path[256] = "", ref_err[256] = "", val_path[256] = "", val_err[256] = "";
    int ref_rc = sg_avro_ref_from_json(schema, value, &ref, &ref_len, ref_path, sizeof(ref_path), ref_err, sizeof(ref_err));
    int val_rc = sg_avro_validate_json(schema, value, val_path, sizeof(val_path), val_err, sizeof(val_err));
    int same = ref_rc == rc && val_rc == rc;
    if (same && rc != 0)
        same = strcmp(ref_path, path) == 0 && strcmp(ref_err, err) == 0 && strcmp(val_path, path) == 0 && strcmp(val_err, err) == 0;
    else if (same)
        same = ref_len == avro_len && memcmp(ref, avro, avro_len) == 0;
    if (!same) {
        dump("input", value);
        fprintf(stderr, "plan: %d %zu bytes '%s' %s; reference: %d %zu bytes '%s' %s; validate: %d '%s' %s\n", rc, avro_len,
                rc ? path : "", rc ? err : "", ref_rc, ref_len, ref_rc ? ref_path : "", ref_rc ? ref_err : "", val_rc,
                val_rc ? val_path : "", val_rc ? val_err : "");
        abort();
    }
    free(ref);
}

/* JSON in: the plan encodes as the reference does; what it accepts must decode, and its decoded
 * form must re-encode to the very same bytes. */
static void check_json(const sg_avro_schema_t *schema, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *value = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (value == NULL)
        return;
    void *avro = NULL;
    size_t avro_len = 0;
    char path[256], err[256];
    int rc = sg_avro_from_json(schema, value, &avro, &avro_len, path, sizeof(path), err, sizeof(err));
    check_same_as_reference(schema, value, rc, avro, avro_len, path, err);
    if (rc != 0) {
        if (avro != NULL || avro_len != 0) {
            fprintf(stderr, "failed encode left output behind\n");
            abort();
        }
        json_decref(value);
        return;
    }
    json_t *back = NULL;
    if (sg_avro_to_json(schema, avro, avro_len, &back, err, sizeof(err)) != 0) {
        dump("input", value);
        fprintf(stderr, "our own encoding does not decode: %s\n", err);
        abort();
    }
    void *again = NULL;
    size_t again_len = 0;
    if (sg_avro_from_json(schema, back, &again, &again_len, path, sizeof(path), err, sizeof(err)) != 0) {
        dump("input", value);
        dump("decoded", back);
        fprintf(stderr, "decoded form does not re-encode: %s: %s\n", path, err);
        abort();
    }
    if (again_len != avro_len || memcmp(again, avro, avro_len) != 0) {
        dump("input", value);
        dump("decoded", back);
        fprintf(stderr, "re-encoding differs: %zu bytes, then %zu bytes\n", avro_len, again_len);
        abort();
    }
    free(again);
    json_decref(back);
    free(avro);
    json_decref(value);
}

/* Bytes in: anything may be refused, nothing may crash; what decodes and re-encodes must
 * decode to the same JSON again. */
static void check_binary(const sg_avro_schema_t *schema, const void *data, size_t len)
{
    json_t *value = NULL;
    char path[256], err[256];
    if (sg_avro_to_json(schema, data, len, &value, err, sizeof(err)) != 0) {
        if (value != NULL) {
            fprintf(stderr, "failed decode left output behind\n");
            abort();
        }
        return;
    }
    void *avro = NULL;
    size_t avro_len = 0;
    /* The writer may have used forms that the encoder refuses (a decimal beyond its precision,
     * a time-millis out of range); that is not a finding. */
    if (sg_avro_from_json(schema, value, &avro, &avro_len, path, sizeof(path), err, sizeof(err)) == 0) {
        json_t *back = NULL;
        if (sg_avro_to_json(schema, avro, avro_len, &back, err, sizeof(err)) != 0 || !json_equal(back, value)) {
            dump("decoded", value);
            dump("decoded again", back);
            fprintf(stderr, "decode/encode/decode is not stable: %s\n", err);
            abort();
        }
        json_decref(back);
        free(avro);
    }
    json_decref(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const sg_avro_schema_t *schema = schemas[data[0] % AVRO_CORPUS_SCHEMAS];
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    if (len <= FUZZ_MAX_JSON)
        check_json(schema, (const char *)body, len);
    check_binary(schema, body, len);
    uint32_t schema_id;
    const void *payload;
    size_t payload_len;
    if (sg_avro_unframe(data, size, &schema_id, &payload, &payload_len) == 0) {
        if (payload != data + SG_AVRO_FRAME_HEADER || payload_len != size - SG_AVRO_FRAME_HEADER)
            abort();
        check_binary(schemas[schema_id % AVRO_CORPUS_SCHEMAS], payload, payload_len);
    }
    return 0;
}
