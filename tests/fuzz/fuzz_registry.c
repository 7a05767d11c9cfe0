/*
 * libFuzzer target for the request bodies of /registry: the body is read as the gateway reads it
 * (gateway/core/registry_body.c), and a registration's schema text goes through what the
 * registry does with it (bridge/codec: the Avro parser, the canonical form that identifies a
 * schema, and the compatibility check against the schemas already registered, both ways). The
 * first input byte picks the body: 0 a registration (POST .../versions, POST /compatibility/...),
 * 1 a compatibility level (PUT /config); the rest is the body.
 *
 * Properties: a schema the parser accepts has a canonical form, the canonical form is a fixed
 * point (canonical of canonical is itself) and parses again; a schema can read its own data.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "registry_body.h"
#include "sg_avro.h"
#include "sg_compat.h"

#define MAX_SCHEMA_BYTES (256 * 1024) /* SG_REGISTRY_MAX_SCHEMA_BYTES */

/* What a subject may already hold: the body's schema is checked against each. */
static const char *const registered[] = {
    "{\"type\":\"record\",\"name\":\"Order\",\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"amount\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":9,\"scale\":2}},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"},\"default\":[]},"
    "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\",\"symbols\":[\"A\",\"B\"]}},"
    "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null}]}",
    "\"string\"",
    "[\"null\",\"long\",{\"type\":\"map\",\"values\":\"double\"}]",
};

static void fuzz_registration(const char *body, size_t len)
{
    json_t *doc = sg_registry_body_object(body, len);
    if (doc == NULL)
        return;
    const char *schema = NULL;
    size_t schema_len = 0;
    if (sg_registry_body_schema(doc, MAX_SCHEMA_BYTES, &schema, &schema_len) == SG_REG_BODY_OK) {
        CHECK(schema != NULL && schema_len <= MAX_SCHEMA_BYTES);
        char err[512];
        sg_avro_schema_t *parsed = sg_avro_schema_parse(schema, schema_len, err, sizeof(err));
        if (parsed != NULL) {
            char *canonical = sg_schema_canonical(schema, schema_len, err, sizeof(err));
            CHECK(canonical != NULL);
            char *again = sg_schema_canonical(canonical, strlen(canonical), err, sizeof(err));
            CHECK(again != NULL && strcmp(again, canonical) == 0);
            sg_avro_schema_t *reparsed = sg_avro_schema_parse(canonical, strlen(canonical), err, sizeof(err));
            CHECK(reparsed != NULL);
            sg_avro_schema_destroy(reparsed);
            CHECK(sg_schema_can_read(schema, schema_len, schema, schema_len, err, sizeof(err)) == 1);
            for (size_t i = 0; i < sizeof(registered) / sizeof(registered[0]); ++i) {
                int forward = sg_schema_can_read(registered[i], strlen(registered[i]), schema, schema_len, err, sizeof(err));
                int backward = sg_schema_can_read(schema, schema_len, registered[i], strlen(registered[i]), err, sizeof(err));
                CHECK(forward >= 0 && backward >= 0); /* both texts are valid schemas */
            }
            free(again);
            free(canonical);
            sg_avro_schema_destroy(parsed);
        }
    }
    json_decref(doc);
}

static void fuzz_level(const char *body, size_t len)
{
    json_t *doc = sg_registry_body_object(body, len);
    if (doc == NULL)
        return;
    const char *name = sg_registry_body_level(doc);
    sg_compat_t level;
    if (sg_compat_parse(name, &level) == 0) {
        sg_compat_t again;
        CHECK(sg_compat_parse(sg_compat_name(level), &again) == 0 && again == level);
    }
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0)
        fuzz_registration((const char *)data + 1, size - 1);
    else
        fuzz_level((const char *)data + 1, size - 1);
    return 0;
}
