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

#include "avro_encode_ref.h"
#include "sg_avro.h"
#include "sg_frame.h"

/* JSON text longer than this is not parsed: the run script's -max_len is below it anyway. */
#define FUZZ_MAX_JSON 65536

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const schema_texts[] = {
    /* 0: every primitive, with defaults for some. */
    "{\"type\":\"record\",\"name\":\"Prim\",\"fields\":["
    "{\"name\":\"n\",\"type\":\"null\"},{\"name\":\"b\",\"type\":\"boolean\"},"
    "{\"name\":\"i\",\"type\":\"int\"},{\"name\":\"l\",\"type\":\"long\"},"
    "{\"name\":\"f\",\"type\":\"float\"},{\"name\":\"d\",\"type\":\"double\"},"
    "{\"name\":\"s\",\"type\":\"string\"},{\"name\":\"by\",\"type\":\"bytes\"},"
    "{\"name\":\"di\",\"type\":\"int\",\"default\":-7},{\"name\":\"ds\",\"type\":\"string\",\"default\":\"\\u00e9\"},"
    "{\"name\":\"dby\",\"type\":\"bytes\",\"default\":\"\\u0001\\u00ff\"},"
    "{\"name\":\"dd\",\"type\":\"double\",\"default\":0.5}]}",
    /* 1: nested records, named references, namespaces, defaults of every shape. */
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":["
    " {\"name\":\"customer\",\"type\":{\"type\":\"record\",\"name\":\"Party\",\"fields\":["
    "   {\"name\":\"name\",\"type\":\"string\"},"
    "   {\"name\":\"address\",\"type\":{\"type\":\"record\",\"name\":\"Addr\",\"namespace\":\"geo\",\"fields\":["
    "     {\"name\":\"city\",\"type\":\"string\"},{\"name\":\"zip\",\"type\":[\"null\",\"string\"],\"default\":null}]},"
    "    \"default\":{\"city\":\"Oslo\"}}]}},"
    " {\"name\":\"seller\",\"type\":\"Party\",\"default\":{\"name\":\"S\",\"address\":{\"city\":\"Rome\",\"zip\":null}}},"
    " {\"name\":\"ship_to\",\"type\":[\"null\",\"geo.Addr\"],\"default\":null},"
    " {\"name\":\"items\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"Item\",\"fields\":["
    "   {\"name\":\"sku\",\"type\":\"string\"},{\"name\":\"qty\",\"type\":\"int\",\"default\":1},"
    "   {\"name\":\"price\",\"type\":\"double\"}]}},\"default\":[]},"
    " {\"name\":\"tags\",\"type\":{\"type\":\"map\",\"values\":\"string\"},\"default\":{\"a\":\"b\"}},"
    " {\"name\":\"state\",\"type\":{\"type\":\"enum\",\"name\":\"State\",\"symbols\":[\"NEW\",\"PAID\",\"SHIPPED\"]},\"default\":"
    "\"NEW\"},"
    " {\"name\":\"pick\",\"type\":[\"int\",\"string\"],\"default\":5},"
    " {\"name\":\"note\",\"type\":[\"string\",\"null\"],\"default\":\"none\"}]}",
    /* 2: arrays and maps, nested both ways. */
    "{\"type\":\"record\",\"name\":\"Coll\",\"fields\":["
    " {\"name\":\"aa\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":\"long\"}}},"
    " {\"name\":\"am\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"map\",\"values\":\"boolean\"}}},"
    " {\"name\":\"ma\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":\"string\"}}},"
    " {\"name\":\"mm\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"map\",\"values\":\"float\"}}},"
    " {\"name\":\"an\",\"type\":{\"type\":\"array\",\"items\":\"null\"},\"default\":[null]},"
    " {\"name\":\"mb\",\"type\":{\"type\":\"map\",\"values\":\"bytes\"},\"default\":{}}]}",
    /* 3: enums and fixed, also as named references. */
    "{\"type\":\"record\",\"name\":\"EF\",\"namespace\":\"x.y\",\"fields\":["
    " {\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Color\",\"symbols\":[\"RED\",\"GREEN\",\"BLUE\"]}},"
    " {\"name\":\"e2\",\"type\":\"Color\",\"default\":\"BLUE\"},"
    " {\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"Four\",\"size\":4}},"
    " {\"name\":\"fx2\",\"type\":\"x.y.Four\",\"default\":\"\\u0002\\u0001\\u00fe\\u00ff\"},"
    " {\"name\":\"f1\",\"type\":{\"type\":\"fixed\",\"name\":\"One\",\"namespace\":\"z\",\"size\":1}},"
    " {\"name\":\"es\",\"type\":{\"type\":\"array\",\"items\":\"Color\"}}]}",
    /* 4: unions: null-unions in both orders, and general unions with named branches. */
    "{\"type\":\"record\",\"name\":\"U\",\"namespace\":\"ns\",\"fields\":["
    " {\"name\":\"opt\",\"type\":[\"null\",\"string\"]},"
    " {\"name\":\"rev\",\"type\":[\"long\",\"null\"]},"
    " {\"name\":\"optrec\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}]}"
    ","
    " {\"name\":\"u\",\"type\":[\"null\",\"boolean\",\"int\",\"long\",\"float\",\"double\",\"string\",\"bytes\","
    "   \"R\",{\"type\":\"array\",\"items\":\"int\"},{\"type\":\"map\",\"values\":\"string\"},"
    "   {\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]},{\"type\":\"fixed\",\"name\":\"F\",\"size\":2},"
    "   {\"type\":\"record\",\"name\":\"R2\",\"namespace\":\"other\",\"fields\":[{\"name\":\"b\",\"type\":[\"null\",\"ns.R\"]}]}]},"
    " {\"name\":\"two\",\"type\":[\"int\",\"string\"]},"
    " {\"name\":\"arr\",\"type\":{\"type\":\"array\",\"items\":[\"null\",\"double\"]},\"default\":[]}]}",
    /* 5: logical types, including inside unions and as defaults. */
    "{\"type\":\"record\",\"name\":\"L\",\"fields\":["
    " {\"name\":\"amount\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":5,\"scale\":2}},"
    " {\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"F8\",\"size\":8,\"logicalType\":\"decimal\",\"precision\":18,"
    "\"scale\":4}},"
    " {\"name\":\"big\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":153,\"scale\":20},\"default\":"
    "\"\\u0001\"},"
    " {\"name\":\"whole\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":3},\"default\":\"\\u00ff\"},"
    " {\"name\":\"f1\",\"type\":{\"type\":\"fixed\",\"name\":\"F1\",\"size\":1,\"logicalType\":\"decimal\",\"precision\":2,"
    "\"scale\":1},\"default\":\"\\u00f6\"},"
    " {\"name\":\"id\",\"type\":{\"type\":\"string\",\"logicalType\":\"uuid\"}},"
    " {\"name\":\"day\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"}},"
    " {\"name\":\"tod\",\"type\":{\"type\":\"int\",\"logicalType\":\"time-millis\"}},"
    " {\"name\":\"ts\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
    " {\"name\":\"tsu\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}},"
    " {\"name\":\"maybe\",\"type\":[\"null\",{\"type\":\"int\",\"logicalType\":\"date\"}],\"default\":null},"
    " {\"name\":\"lu\",\"type\":[\"null\",{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"},"
    "   {\"type\":\"string\",\"logicalType\":\"uuid\"},\"F8\"],\"default\":null},"
    " {\"name\":\"days\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"int\",\"logicalType\":\"date\"}},\"default\":{\"z\":0}}]"
    "}",
    /* 6: a recursive list, for the depth limit. */
    "{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{\"name\":\"v\",\"type\":\"int\",\"default\":0},"
    " {\"name\":\"next\",\"type\":[\"null\",\"Node\"],\"default\":null},"
    " {\"name\":\"kids\",\"type\":{\"type\":\"array\",\"items\":\"Node\"},\"default\":[]}]}",
    /* 7..9: bare (non-record) top-level schemas. */
    /* parenthesised: one literal split over two lines, not two elements */
    ("[\"null\",\"int\",\"string\",{\"type\":\"array\",\"items\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":9,"
     "\"scale\":3}}]"),
    "{\"type\":\"map\",\"values\":[\"null\",{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}]}",
    "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"logicalType\":\"uuid\"}}",
};

#define NSCHEMAS (sizeof(schema_texts) / sizeof(schema_texts[0]))

static sg_avro_schema_t *schemas[NSCHEMAS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < NSCHEMAS; i++) {
        char err[256] = "";
        schemas[i] = sg_avro_schema_parse(schema_texts[i], strlen(schema_texts[i]), err, sizeof(err));
        if (schemas[i] == NULL) {
            fprintf(stderr, "fuzz schema %zu rejected: %s\n", i, err);
            abort();
        }
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
    const sg_avro_schema_t *schema = schemas[data[0] % NSCHEMAS];
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
        check_binary(schemas[schema_id % NSCHEMAS], payload, payload_len);
    }
    return 0;
}
