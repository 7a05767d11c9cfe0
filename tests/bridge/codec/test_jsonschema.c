/*
 * The JSON Schema derived from Avro schemas (bridge/codec/jsonschema.c), as /openapi.json
 * embeds it: every Avro type against the exact schema it must become, named types written once
 * into defs and referenced by their full name (namespaces included), recursion, and the depth
 * bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "sg_jsonschema.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *value = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (value == NULL)
        fail_msg("bad test JSON: %s: %s", jerr.text, text);
    return value;
}

/* Derives the schema of `avro` and compares it (and defs, when `expected_defs` is not NULL) with
 * the expected JSON texts. */
static void expect(const char *avro_text, const char *expected_text, const char *expected_defs)
{
    json_t *avro = parse(avro_text);
    json_t *defs = json_object();
    json_t *got = sg_jsonschema_from_avro(avro, defs);
    json_t *expected = parse(expected_text);
    if (!json_equal(got, expected)) {
        char *text = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        fail_msg("%s: got %s, expected %s", avro_text, text, expected_text);
    }
    if (expected_defs != NULL) {
        json_t *want_defs = parse(expected_defs);
        if (!json_equal(defs, want_defs)) {
            char *text = json_dumps(defs, JSON_COMPACT | JSON_SORT_KEYS);
            fail_msg("%s: defs %s, expected %s", avro_text, text, expected_defs);
        }
        json_decref(want_defs);
    }
    json_decref(expected);
    json_decref(got);
    json_decref(defs);
    json_decref(avro);
}

static void test_primitives(void **state)
{
    expect("\"null\"", "{\"type\":\"null\"}", "{}");
    expect("\"boolean\"", "{\"type\":\"boolean\"}", "{}");
    expect("\"int\"", "{\"type\":\"integer\"}", "{}");
    expect("\"long\"", "{\"type\":\"integer\"}", "{}");
    expect("\"float\"", "{\"type\":\"number\"}", "{}");
    expect("\"double\"", "{\"type\":\"number\"}", "{}");
    expect("\"string\"", "{\"type\":\"string\"}", "{}");
    expect("\"bytes\"", "{\"type\":\"string\",\"description\":\"bytes: code points 0..255\"}", "{}");
    /* The object form of a primitive is the same type. */
    expect("{\"type\":\"long\"}", "{\"type\":\"integer\"}", "{}");
    expect("{\"type\":{\"type\":\"string\"}}", "{\"type\":\"string\"}", "{}");
}

static void test_logical_types(void **state)
{
    expect("{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":9,\"scale\":2}",
           "{\"type\":[\"number\",\"string\"],\"description\":\"decimal: a number or a numeric string\"}", "{}");
    expect("{\"type\":\"string\",\"logicalType\":\"uuid\"}", "{\"type\":\"string\",\"format\":\"uuid\"}", "{}");
    expect("{\"type\":\"int\",\"logicalType\":\"date\"}",
           "{\"type\":[\"string\",\"integer\"],\"description\":\"date: YYYY-MM-DD or days since 1970-01-01\"}", "{}");
    expect("{\"type\":\"int\",\"logicalType\":\"time-millis\"}", "{\"type\":\"integer\",\"minimum\":0,\"maximum\":86399999}", "{}");
    const char *timestamp = "{\"type\":[\"integer\",\"string\"],"
                            "\"description\":\"timestamp: an integer since the epoch, or an RFC 3339 date-time\"}";
    expect("{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}", timestamp, "{}");
    expect("{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}", timestamp, "{}");
    /* An unknown logical type is its underlying type. */
    expect("{\"type\":\"long\",\"logicalType\":\"local-timestamp-nanos\"}", "{\"type\":\"integer\"}", "{}");
}

static void test_unions(void **state)
{
    /* A null-union takes a plain value or null, in either order. */
    expect("[\"null\",\"string\"]", "{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"string\"}]}", "{}");
    expect("[\"long\",\"null\"]", "{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"null\"}]}", "{}");
    /* Other unions take Avro's JSON form, described but not constrained. */
    const char *tagged = "{\"type\":\"object\",\"description\":\"a union in Avro's JSON form: {\\\"<branch type>\\\": value}\"}";
    expect("[\"int\",\"string\"]", tagged, "{}");
    expect("[\"null\",\"int\",\"string\"]", tagged, "{}");
}

static void test_record(void **state)
{
    expect("{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"doc\":\"an order\",\"fields\":["
           "{\"name\":\"id\",\"type\":\"string\",\"doc\":\"the order id\"},"
           "{\"name\":\"qty\",\"type\":\"int\",\"default\":1},"
           "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null},"
           "{\"type\":\"int\"}]}",
           "{\"$ref\":\"#/components/schemas/shop.Order\"}",
           "{\"shop.Order\":{\"type\":\"object\",\"description\":\"an order\",\"additionalProperties\":false,"
           "\"required\":[\"id\"],\"properties\":{"
           "\"id\":{\"type\":\"string\",\"description\":\"the order id\"},"
           "\"qty\":{\"type\":\"integer\"},"
           "\"note\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"string\"}]}}}}");
    /* No namespace: the bare name. */
    expect("{\"type\":\"record\",\"name\":\"Empty\",\"fields\":[]}", "{\"$ref\":\"#/components/schemas/Empty\"}",
           "{\"Empty\":{\"type\":\"object\",\"properties\":{},\"required\":[],\"additionalProperties\":false}}");
}

static void test_enum_fixed_array_map(void **state)
{
    expect("{\"type\":\"enum\",\"name\":\"Suit\",\"doc\":\"cards\",\"symbols\":[\"HEARTS\",\"SPADES\"]}",
           "{\"$ref\":\"#/components/schemas/Suit\"}",
           "{\"Suit\":{\"type\":\"string\",\"enum\":[\"HEARTS\",\"SPADES\"],\"description\":\"cards\"}}");
    expect("{\"type\":\"fixed\",\"name\":\"MD5\",\"namespace\":\"h\",\"size\":16}", "{\"$ref\":\"#/components/schemas/h.MD5\"}",
           "{\"h.MD5\":{\"type\":\"string\",\"minLength\":16,\"maxLength\":16,\"description\":\"fixed: code points 0..255\"}}");
    expect("{\"type\":\"array\",\"items\":\"long\"}", "{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}", "{}");
    expect("{\"type\":\"map\",\"values\":{\"type\":\"array\",\"items\":\"string\"}}",
           "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}", "{}");
}

static void test_names_and_namespaces(void **state)
{
    /* A nested definition inherits the enclosing namespace; a dotted name sets its own; a
     * reference by short name resolves in the enclosing namespace, a full name as it is. */
    expect("{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":["
           "{\"name\":\"a\",\"type\":{\"type\":\"record\",\"name\":\"Addr\",\"fields\":[]}},"
           "{\"name\":\"b\",\"type\":\"Addr\"},"
           "{\"name\":\"c\",\"type\":{\"type\":\"record\",\"name\":\"geo.Point\",\"fields\":["
           "  {\"name\":\"z\",\"type\":{\"type\":\"enum\",\"name\":\"Zone\",\"symbols\":[\"N\"]}}]}},"
           "{\"name\":\"d\",\"type\":\"geo.Zone\"}]}",
           "{\"$ref\":\"#/components/schemas/shop.Order\"}", NULL);
    json_t *avro = parse("{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":["
                         "{\"name\":\"a\",\"type\":{\"type\":\"record\",\"name\":\"Addr\",\"fields\":[]}},"
                         "{\"name\":\"b\",\"type\":\"Addr\"},"
                         "{\"name\":\"c\",\"type\":{\"type\":\"record\",\"name\":\"geo.Point\",\"fields\":["
                         "  {\"name\":\"z\",\"type\":{\"type\":\"enum\",\"name\":\"Zone\",\"symbols\":[\"N\"]}}]}},"
                         "{\"name\":\"d\",\"type\":\"geo.Zone\"}]}");
    json_t *defs = json_object();
    json_decref(sg_jsonschema_from_avro(avro, defs));
    assert_int_equal(json_object_size(defs), 4);
    assert_non_null(json_object_get(defs, "shop.Order"));
    assert_non_null(json_object_get(defs, "shop.Addr"));
    assert_non_null(json_object_get(defs, "geo.Point"));
    assert_non_null(json_object_get(defs, "geo.Zone"));
    json_t *properties = json_object_get(json_object_get(defs, "shop.Order"), "properties");
    assert_string_equal(json_string_value(json_object_get(json_object_get(properties, "a"), "$ref")),
                        "#/components/schemas/shop.Addr");
    assert_string_equal(json_string_value(json_object_get(json_object_get(properties, "b"), "$ref")),
                        "#/components/schemas/shop.Addr");
    assert_string_equal(json_string_value(json_object_get(json_object_get(properties, "c"), "$ref")),
                        "#/components/schemas/geo.Point");
    assert_string_equal(json_string_value(json_object_get(json_object_get(properties, "d"), "$ref")),
                        "#/components/schemas/geo.Zone");
    json_decref(defs);
    json_decref(avro);
}

static void test_recursion_and_reuse(void **state)
{
    /* A recursive record refers to itself; a second use of a named type does not redefine it. */
    expect("{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
           "{\"name\":\"next\",\"type\":[\"null\",\"Node\"],\"default\":null},"
           "{\"name\":\"kids\",\"type\":{\"type\":\"array\",\"items\":\"Node\"}}]}",
           "{\"$ref\":\"#/components/schemas/Node\"}",
           "{\"Node\":{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"kids\"],\"properties\":{"
           "\"next\":{\"anyOf\":[{\"type\":\"null\"},{\"$ref\":\"#/components/schemas/Node\"}]},"
           "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Node\"}}}}}");
    /* defs shared by two derivations (two routes): the second finds the definition. */
    json_t *defs = json_object();
    json_t *avro = parse("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}");
    json_t *first = sg_jsonschema_from_avro(avro, defs);
    json_t *def = json_incref(json_object_get(defs, "E"));
    json_t *second = sg_jsonschema_from_avro(avro, defs);
    assert_true(json_equal(first, second));
    assert_ptr_equal(json_object_get(defs, "E"), def);
    json_decref(def);
    json_decref(first);
    json_decref(second);
    json_decref(avro);
    json_decref(defs);
}

static void test_depth_bound(void **state)
{
    /* Arrays nested past the bound end in {} (any value) instead of recursing further. */
    char text[4096] = "";
    size_t levels = SG_JSONSCHEMA_MAX_DEPTH + 8;
    for (size_t i = 0; i < levels; ++i)
        strcat(text, "{\"type\":\"array\",\"items\":");
    strcat(text, "\"int\"");
    for (size_t i = 0; i < levels; ++i)
        strcat(text, "}");
    json_t *avro = parse(text);
    json_t *defs = json_object();
    json_t *got = sg_jsonschema_from_avro(avro, defs);
    size_t depth = 0;
    const json_t *node = got;
    while (json_is_object(node) && json_object_get(node, "items") != NULL) {
        ++depth;
        node = json_object_get(node, "items");
    }
    assert_true(depth > 0 && depth < levels);
    assert_int_equal(json_object_size(node), 0);
    json_decref(got);
    json_decref(defs);
    json_decref(avro);
    /* Not a schema at all: any value. */
    expect("42", "{}", "{}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primitives),
        cmocka_unit_test(test_logical_types),
        cmocka_unit_test(test_unions),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_enum_fixed_array_map),
        cmocka_unit_test(test_names_and_namespaces),
        cmocka_unit_test(test_recursion_and_reuse),
        cmocka_unit_test(test_depth_bound),
    };
    return cmocka_run_group_tests_name("codec-jsonschema", tests, NULL, NULL);
}
