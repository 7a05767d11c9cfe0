/*
 * The schemas the Avro codec's tests and its fuzz target share (test_avro_plan.c, fuzz_avro_json.c):
 * every type, named references, namespaces, unions of every shape, logical types, defaults,
 * recursion; and the bare (non-record) forms. The fuzz corpus (tests/fuzz/corpus/avro_json/sN-*)
 * names a schema by its index here: append, never reorder.
 */
#ifndef AVRO_CORPUS_H
#define AVRO_CORPUS_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "sg_avro.h"

static const char *const avro_corpus_schemas[] = {
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
    " {\"name\":\"state\",\"type\":{\"type\":\"enum\",\"name\":\"State\",\"symbols\":[\"NEW\",\"PAID\",\"SHIPPED\"]},"
    "\"default\":\"NEW\"},"
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
    /* 7..12: bare (non-record) top-level schemas. */
    "[\"null\",\"int\",\"string\",{\"type\":\"array\",\"items\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":9,"
    "\"scale\":3}}]",
    "{\"type\":\"map\",\"values\":[\"null\",{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}]}",
    "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"logicalType\":\"uuid\"}}",
    "\"null\"",
    "{\"type\":\"long\",\"logicalType\":\"timestamp-micros\"}",
    "{\"type\":\"fixed\",\"name\":\"D16\",\"size\":16,\"logicalType\":\"decimal\",\"precision\":38,\"scale\":9}",
    /* 13: the bench's order (bench/order.avsc without its docs). */
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"bench\",\"fields\":["
    " {\"name\":\"id\",\"type\":\"string\"},{\"name\":\"customerId\",\"type\":\"string\"},"
    " {\"name\":\"placedAt\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"
    " {\"name\":\"currency\",\"type\":\"string\"},"
    " {\"name\":\"total\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":12,\"scale\":2}},"
    " {\"name\":\"channel\",\"type\":\"string\"},"
    " {\"name\":\"items\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"OrderItem\",\"fields\":["
    "   {\"name\":\"sku\",\"type\":\"string\"},{\"name\":\"quantity\",\"type\":\"int\"},"
    "   {\"name\":\"unitPrice\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":12,\"scale\":2}}]}}}]}",
    /* 14: names that need escaping in a pointer come only from map keys; odd decimal and enum
     * forms; a logical type in a union with a default, and a logical type that does not apply. */
    "{\"type\":\"record\",\"name\":\"Odd\",\"fields\":["
    " {\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"record\",\"name\":\"In\",\"fields\":["
    "   {\"name\":\"x\",\"type\":\"int\"}]}},\"default\":{}},"
    " {\"name\":\"w\",\"type\":[{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"},\"null\"],\"default\":0},"
    " {\"name\":\"nl\",\"type\":{\"type\":\"string\",\"logicalType\":\"date\"},\"default\":\"x\"},"
    " {\"name\":\"dz\",\"type\":{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":20,\"scale\":0},\"default\":"
    "\"\\u0001\"},"
    " {\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Sym\",\"symbols\":[\"A\",\"B_2\",\"c\"]},\"default\":\"c\"},"
    " {\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"Tiny\",\"size\":2,\"logicalType\":\"decimal\",\"precision\":4,"
    "\"scale\":1},\"default\":\"\\u0001\\u0002\"}]}",
};
#define AVRO_CORPUS_SCHEMAS (sizeof(avro_corpus_schemas) / sizeof(avro_corpus_schemas[0]))

/* Parses every schema of the corpus into out. Returns 0, or -1 with err naming the schema that
 * was rejected (those parsed before it are left in out). */
static int avro_corpus_parse(sg_avro_schema_t *out[], char *err, size_t errlen)
{
    for (size_t i = 0; i < AVRO_CORPUS_SCHEMAS; i++) {
        char why[256] = "";
        out[i] = sg_avro_schema_parse(avro_corpus_schemas[i], strlen(avro_corpus_schemas[i]), why, sizeof(why));
        if (out[i] == NULL) {
            snprintf(err, errlen, "schema %zu rejected: %s", i, why);
            return -1;
        }
    }
    return 0;
}

#endif
