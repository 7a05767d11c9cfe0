/*
 * The compiled-plan encoder (bridge/codec/avro_plan.c, avro_encode.c) against the encoder it
 * replaced (avro_encode_ref.c: Avro-C generic values written by Avro-C).
 *
 * Every value of a corpus is encoded under every schema of a corpus, by both: both must accept or
 * refuse alike; a refusal must name the same JSON pointer with the same message (the 422s quote
 * them); an acceptance must give the same bytes, which Avro-C must decode (sg_avro_to_json) to a
 * value that encodes to those bytes again. The cross product makes most pairs refusals of every
 * kind; the per-schema values are the ones each schema accepts. Two tests pin bytes by hand: the
 * bench's order (bench/order.avsc) and the decimal fast path's edges.
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

#include "avro_corpus.h"
#include "avro_encode_ref.h"
#include "sg_avro.h"
#include "sg_frame.h"

/* Values every schema is tried with (most are refusals for most schemas). */
static const char *const common_values[] = {
    "null",
    "true",
    "false",
    "0",
    "-1",
    "2147483648",
    "-9223372036854775808",
    "1.5",
    "-0.0",
    "1e308",
    "\"\"",
    "\"abc\"",
    "\"\\u0000\"",
    "\"\\u0100\"",
    "\"12.50\"",
    "\"2024-01-02\"",
    "\"2024-01-02T03:04:05.678Z\"",
    "[]",
    "[1,2,3]",
    "[null]",
    "{}",
    "{\"a\":1}",
    "{\"zzz\":null}",
    "{\"x\":{\"y\":[1,{\"z\":2}]}}",
    "[[[[[]]]]]",
    "{\"int\":1}",
    "{\"string\":\"s\"}",
    "{\"null\":null}",
    "{\"R\":{\"a\":1}}",
    "{\"ns.R\":{\"a\":2}}",
    "{\"a/b~c\":1}",
    "[\"RED\",\"PURPLE\"]",
    "\"01234567-89ab-cdef-0123-456789abcdef\"",
    "\"1.234\"",
    "\"-0.001\"",
    "123456789",
};

typedef struct {
    size_t schema;
    const char *value;
} case_t;

/* Values meant for one schema: accepted ones, and refusals deep inside. */
static const case_t cases[] = {
    {0, "{\"n\":null,\"b\":true,\"i\":-2147483648,\"l\":9007199254740993,\"f\":1.5,\"d\":-2.25,\"s\":\"h\\u00e9llo\","
        "\"by\":\"\\u0000\\u00ff a\\u0080\"}"},
    {0, "{\"n\":null,\"b\":false,\"i\":2147483647,\"l\":-9223372036854775807,\"f\":3,\"d\":4,\"s\":\"\",\"by\":\"\","
        "\"di\":5,\"ds\":\"x\",\"dby\":\"\",\"dd\":-1e-300}"},
    {0, "{\"by\":\"\",\"s\":\"s\\u0000t\",\"d\":0.1,\"f\":3.4028234663852886e38,\"l\":1,\"i\":1,\"b\":true,\"n\":null}"},
    {0, "{\"n\":null,\"b\":true,\"i\":1,\"l\":1,\"f\":1e39,\"d\":1,\"s\":\"\",\"by\":\"\"}"},
    {0, "{\"n\":null,\"b\":true,\"i\":1,\"l\":1,\"f\":1,\"d\":1,\"s\":\"\",\"by\":\"\\u0100\"}"},
    {0, "{\"n\":null,\"b\":true,\"i\":2147483648,\"l\":1,\"f\":1,\"d\":1,\"s\":\"\",\"by\":\"\"}"},
    {0, "{\"n\":null,\"b\":true,\"i\":1,\"l\":1.0,\"f\":1,\"d\":1,\"s\":\"\",\"by\":\"\"}"},
    {0, "{\"n\":null,\"b\":true,\"i\":1,\"l\":1,\"f\":1,\"d\":1,\"s\":\"\",\"by\":\"\",\"extra\":1}"},
    {0, "{\"n\":null,\"b\":true,\"i\":1,\"l\":1,\"f\":1,\"d\":1,\"s\":\"\"}"},
    {1, "{\"customer\":{\"name\":\"Ann\",\"address\":{\"city\":\"Paris\",\"zip\":\"75001\"}}}"},
    {1, "{\"customer\":{\"name\":\"Ann\"},\"seller\":{\"name\":\"Bob\",\"address\":{\"city\":\"Lyon\"}},"
        "\"ship_to\":{\"geo.Addr\":{\"city\":\"Nice\",\"zip\":null}},\"items\":[{\"sku\":\"a\",\"price\":1.5},"
        "{\"sku\":\"b\",\"qty\":3,\"price\":-0.25}],\"tags\":{\"k\":\"v\",\"\":\"\",\"k/~\":\"w\"},\"state\":\"PAID\","
        "\"pick\":{\"string\":\"x\"},\"note\":null}"},
    {1, "{\"customer\":{\"name\":\"Ann\"},\"ship_to\":{\"city\":\"Nice\"}}"},
    {1, "{\"customer\":{\"name\":\"Ann\"},\"pick\":\"x\"}"},
    {1, "{\"customer\":{\"name\":\"Ann\"},\"pick\":{\"int\":7}}"},
    {1, "{\"customer\":{\"name\":\"Ann\"},\"items\":[{\"sku\":\"a\",\"price\":1},{\"sku\":\"b\"}]}"},
    {1, "{\"customer\":{\"name\":\"Ann\"},\"items\":[{\"sku\":\"a\",\"price\":1,\"qty\":\"2\"}]}"},
    {1, "{\"customer\":{\"name\":\"Ann\"},\"tags\":{\"a/b~c\":1}}"},
    {1, "{\"customer\":{\"name\":\"Ann\"},\"state\":\"LOST\"}"},
    {1, "{\"customer\":{\"name\":\"Ann\"},\"state\":\"NEW\\u0000x\"}"},
    {1, "{\"customer\":{\"name\":\"Ann\",\"address\":{\"city\":\"P\",\"zip\":{\"string\":\"1\"}}}}"},
    {1, "{\"customer\":{\"name\":\"Ann\",\"address\":{\"city\":\"P\",\"zip\":{\"null\":null}}}}"},
    {1, "{\"customer\":{\"name\":\"Ann\",\"address\":{\"city\":\"P\",\"zip\":5}}}"},
    {1, "{\"customer\":{\"name\":\"Ann\",\"address\":{\"city\":\"P\",\"extra\":1}}}"},
    {2, "{\"aa\":[[1,-2],[],[9223372036854775807]],\"am\":[{\"x\":true},{}],\"ma\":{\"k\":[\"a\",\"b\"],\"e\":[]},"
        "\"mm\":{\"o\":{\"i\":1.25}}}"},
    {2, "{\"aa\":[],\"am\":[],\"ma\":{},\"mm\":{},\"an\":[null,null],\"mb\":{\"q\":\"\\u00ff\"}}"},
    {2, "{\"aa\":[[1],[2,\"x\"]],\"am\":[],\"ma\":{},\"mm\":{}}"},
    {2, "{\"aa\":[],\"am\":[{\"y\":1}],\"ma\":{},\"mm\":{}}"},
    {2, "{\"aa\":[],\"am\":[],\"ma\":{\"k/1\":[1]},\"mm\":{}}"},
    {2, "{\"aa\":[],\"am\":[],\"ma\":{},\"mm\":{\"a\":{\"b\":1e300}}}"},
    {3, "{\"e\":\"GREEN\",\"fx\":\"abcd\",\"f1\":\"\\u00ff\",\"es\":[\"RED\",\"BLUE\"]}"},
    {3, "{\"e\":\"RED\",\"e2\":\"RED\",\"fx\":\"\\u0000\\u0001\\u0002\\u0003\",\"fx2\":\"wxyz\",\"f1\":\"a\",\"es\":[]}"},
    {3, "{\"e\":\"RED\",\"fx\":\"abc\",\"f1\":\"a\",\"es\":[]}"},
    {3, "{\"e\":\"RED\",\"fx\":\"abcd\",\"f1\":\"a\",\"es\":[\"RED\",\"red\"]}"},
    {4, "{\"opt\":\"s\",\"rev\":5,\"optrec\":{\"a\":1},\"u\":{\"boolean\":true},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":null,\"two\":{\"string\":\"x\"},\"arr\":[1.5,null]}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":{\"ns.R\":{\"a\":3}},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":{\"R\":{\"a\":3}},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":{\"other.R2\":{\"b\":{\"a\":1}}},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":{\"R2\":{\"b\":null}},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":{\"ns.E\":\"B\"},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":{\"F\":\"ab\"},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":{\"array\":[1,2]},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":{\"map\":{\"a\":\"b\"}},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":{\"bytes\":\"\\u00fe\"},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":{\"float\":1.5},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":{\"long\":-3},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":{\"R\":{\"a\":\"x\"}},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":{\"nope\":1},\"two\":{\"int\":1}}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":null,\"u\":null,\"two\":3}"},
    {4, "{\"opt\":null,\"rev\":null,\"optrec\":{\"a\":1,\"b\":2},\"u\":null,\"two\":{\"int\":1}}"},
    {5, "{\"amount\":\"123.45\",\"fx\":\"-99999999999999.9999\",\"id\":\"01234567-89ab-cdef-0123-456789ABCDEF\","
        "\"day\":\"2024-02-29\",\"tod\":86399999,\"ts\":\"1970-01-01T00:00:00.001Z\",\"tsu\":\"2024-01-02T03:04:05.123456+02:00\","
        "\"maybe\":19000,\"lu\":{\"x.F8\":\"12345678\"},\"days\":{\"a\":\"0001-01-01\",\"b\":-1}}"},
    {5, "{\"amount\":-0.5,\"fx\":7,\"big\":\"1e-20\",\"whole\":\"999\",\"f1\":\"-1.2\",\"id\":\"00000000-0000-0000-0000-"
        "000000000000\","
        "\"day\":0,\"tod\":0,\"ts\":-1,\"tsu\":0,\"lu\":{\"long\":5}}"},
    {5, "{\"amount\":\"1.005\",\"fx\":0,\"id\":\"00000000-0000-0000-0000-000000000000\",\"day\":0,\"tod\":0,\"ts\":0,\"tsu\":0}"},
    {5, "{\"amount\":\"1000\",\"fx\":0,\"id\":\"00000000-0000-0000-0000-000000000000\",\"day\":0,\"tod\":0,\"ts\":0,\"tsu\":0}"},
    {5,
     "{\"amount\":\"1.2e2\",\"fx\":\"1e-4\",\"big\":\"-123456789012345678901234567890.12345678901234567890\",\"whole\":\"1.000\","
     "\"id\":\"00000000-0000-0000-0000-000000000000\",\"day\":0,\"tod\":0,\"ts\":0,\"tsu\":0}"},
    {5, "{\"amount\":\"1\",\"fx\":0,\"f1\":\"9.9\",\"id\":\"00000000-0000-0000-0000-000000000000\",\"day\":0,\"tod\":0,\"ts\":0,"
        "\"tsu\":0}"},
    {5, "{\"amount\":\"1\",\"fx\":0,\"f1\":\"1.3\",\"id\":\"00000000-0000-0000-0000-000000000000\",\"day\":0,\"tod\":0,\"ts\":0,"
        "\"tsu\":0}"},
    {5, "{\"amount\":\"1\",\"fx\":0,\"id\":\"0000000-0000-0000-0000-0000000000000\",\"day\":0,\"tod\":0,\"ts\":0,\"tsu\":0}"},
    {5, "{\"amount\":\"1\",\"fx\":0,\"id\":\"00000000-0000-0000-0000-000000000000\",\"day\":\"2023-02-29\",\"tod\":0,\"ts\":0,"
        "\"tsu\":0}"},
    {5,
     "{\"amount\":\"1\",\"fx\":0,\"id\":\"00000000-0000-0000-0000-000000000000\",\"day\":0,\"tod\":86400000,\"ts\":0,\"tsu\":0}"},
    {5,
     "{\"amount\":\"1\",\"fx\":0,\"id\":\"00000000-0000-0000-0000-000000000000\",\"day\":0,\"tod\":0,\"ts\":\"2024-01-02T03:04:05."
     "1234Z\",\"tsu\":0}"},
    {5, "{\"amount\":\"1\",\"fx\":0,\"id\":\"00000000-0000-0000-0000-000000000000\",\"day\":0,\"tod\":0,\"ts\":0,\"tsu\":1.5}"},
    {5, "{\"amount\":\"1\",\"fx\":0,\"id\":\"00000000-0000-0000-0000-000000000000\",\"day\":0,\"tod\":0,\"ts\":0,\"tsu\":0,"
        "\"days\":{\"k\":\"2024-13-01\"}}"},
    {5, "{\"amount\":true,\"fx\":0,\"id\":\"00000000-0000-0000-0000-000000000000\",\"day\":0,\"tod\":0,\"ts\":0,\"tsu\":0}"},
    {6, "{\"v\":1,\"next\":{\"v\":2,\"next\":{\"v\":3}},\"kids\":[{\"v\":4},{\"kids\":[{}]}]}"},
    {6, "{\"next\":{\"Node\":{\"v\":2}}}"},
    {6, "{\"kids\":[{\"kids\":[{\"next\":{\"v\":\"x\"}}]}]}"},
    {7, "{\"array\":[\"1.5\",\"-0.001\",2]}"},
    {7, "{\"array\":[\"1.0001\"]}"},
    {7, "{\"int\":5}"},
    {7, "\"plain\""},
    {8, "{\"a\":null,\"b\":\"2024-01-02T03:04:05Z\",\"c\":-5}"},
    {8, "{\"a\":\"yesterday\"}"},
    {9, "[\"01234567-89ab-cdef-0123-456789abcdef\",\"nope\"]"},
    {10, "null"},
    {11, "\"2024-01-02T03:04:05.123456Z\""},
    {12, "\"-12345678901234567890.123456789\""},
    {12, "\"99999999999999999999999999999.999999999\""},
    {12, "\"0.0000000001\""},
    {12, "\"18446744073709551616\""},
    {12, "-9.5"},
    {13, "{\"id\":\"o-1-00000001\",\"customerId\":\"c-42\",\"placedAt\":\"2024-05-06T07:08:09.123Z\",\"currency\":\"EUR\","
         "\"total\":\"123.45\",\"channel\":\"web\",\"items\":[{\"sku\":\"SKU-1\",\"quantity\":2,\"unitPrice\":\"50.00\"},"
         "{\"sku\":\"SKU-2\",\"quantity\":1,\"unitPrice\":\"23.45\"}]}"},
    {13, "{\"items\":[],\"channel\":\"\",\"total\":\"-0.01\",\"currency\":\"\",\"placedAt\":0,\"customerId\":\"\",\"id\":\"\"}"},
    {13, "{\"id\":\"o\",\"customerId\":\"c\",\"placedAt\":0,\"currency\":\"EUR\",\"total\":\"12345678901.23\",\"channel\":\"w\","
         "\"items\":[]}"},
    {13, "{\"id\":\"o\",\"customerId\":\"c\",\"placedAt\":0,\"currency\":\"EUR\",\"total\":\"1\",\"channel\":\"w\","
         "\"items\":[{\"sku\":\"s\",\"quantity\":1,\"unitPrice\":\"1.001\"}]}"},
    {13, "{\"id\":\"o\",\"customerId\":\"c\",\"placedAt\":0,\"currency\":\"EUR\",\"total\":\"1\",\"channel\":\"w\","
         "\"items\":[{\"sku\":\"s\",\"quantity\":1,\"unitPrice\":\"1\",\"colour\":\"red\"}]}"},
    {14, "{\"m\":{\"a/b\":{\"x\":1},\"c~d\":{\"x\":2}}}"},
    {14, "{\"m\":{\"a/b\":{\"x\":1},\"c~d\":{\"x\":\"2\"}}}"},
    {14, "{\"m\":{\"ok\":{\"y\":1}}}"},
    {14, "{\"w\":\"2024-01-02T03:04:05Z\",\"nl\":\"2024-01-01\",\"dz\":\"+0012\",\"e\":\"B_2\",\"f\":\"-0.1\"}"},
    {14, "{\"dz\":\"12345678901234567890\"}"},
    {14, "{\"dz\":\"123456789012345678901\"}"},
    {14, "{\"dz\":\"999999999999999999\"}"},
    {14, "{\"dz\":\"1000000000000000000\"}"},
    {14, "{\"dz\":\"-9223372036854775808\"}"},
    {14, "{\"dz\":\"00000000000000000000000000001\"}"},
    {14, "{\"f\":\"999.9\"}"},
    {14, "{\"f\":\"12.3\"}"},
    {14, "{\"f\":\"1.\"}"},
    {14, "{\"f\":\".5\"}"},
    {14, "{\"f\":\".\"}"},
    {14, "{\"f\":\"-\"}"},
    {14, "{\"f\":\"1.2.3\"}"},
    {14, "{\"f\":\"0.000\"}"},
    {14, "{\"f\":\"-0\"}"},
    {14, "{\"f\":\"1\\u0000junk\"}"},
    {14, "{\"f\":\" 1\"}"},
    {14, "{\"f\":1.25}"},
    {14, "{\"f\":0.1}"},
    {14, "{\"e\":\"C\"}"},
};

static sg_avro_schema_t *schemas[AVRO_CORPUS_SCHEMAS];

static int setup(void **state)
{
    (void)state;
    char err[512];
    if (avro_corpus_parse(schemas, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < AVRO_CORPUS_SCHEMAS; i++)
        sg_avro_schema_destroy(schemas[i]);
    return 0;
}

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *value = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
    if (value == NULL)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    return value;
}

static size_t accepted; /* how many pairs encoded: the corpus must not be all refusals */

/* Both encoders on one value; returns whether it was accepted. */
static int compare(const sg_avro_schema_t *schema, size_t schema_index, const json_t *value, const char *text)
{
    void *ref = (void *)1, *got = (void *)1;
    size_t ref_len = 1, got_len = 1;
    char ref_path[PATH_MAX_LEN + 8] = "?", ref_err[256] = "?", got_path[PATH_MAX_LEN + 8] = "!", got_err[256] = "!";
    int ref_rc = sg_avro_ref_from_json(schema, value, &ref, &ref_len, ref_path, sizeof(ref_path), ref_err, sizeof(ref_err));
    int got_rc = sg_avro_from_json(schema, value, &got, &got_len, got_path, sizeof(got_path), got_err, sizeof(got_err));
    if (ref_rc != got_rc)
        fail_msg("schema %zu, %s: reference %s (%s: %s), plan %s (%s: %s)", schema_index, text, ref_rc ? "refuses" : "accepts",
                 ref_path, ref_err, got_rc ? "refuses" : "accepts", got_path, got_err);
    /* validation alone answers the same */
    char val_path[PATH_MAX_LEN + 8] = "#", val_err[256] = "#";
    int val_rc = sg_avro_validate_json(schema, value, val_path, sizeof(val_path), val_err, sizeof(val_err));
    assert_int_equal(val_rc, got_rc);
    if (ref_rc != 0) {
        if (strcmp(ref_path, got_path) != 0 || strcmp(ref_err, got_err) != 0)
            fail_msg("schema %zu, %s: reference refuses at '%s': %s; plan at '%s': %s", schema_index, text, ref_path, ref_err,
                     got_path, got_err);
        assert_string_equal(val_path, got_path);
        assert_string_equal(val_err, got_err);
        assert_null(got);
        assert_int_equal(got_len, 0);
        return 0;
    }
    if (ref_len != got_len || memcmp(ref, got, ref_len) != 0) {
        char hex[2][512];
        for (int side = 0; side < 2; side++) {
            const uint8_t *bytes = side ? got : ref;
            size_t len = side ? got_len : ref_len, at = 0;
            for (size_t i = 0; i < len && at + 4 < sizeof(hex[side]); i++)
                at += (size_t)snprintf(hex[side] + at, sizeof(hex[side]) - at, "%02x ", bytes[i]);
            hex[side][at] = '\0';
        }
        fail_msg("schema %zu, %s: reference %zu bytes [%s], plan %zu bytes [%s]", schema_index, text, ref_len, hex[0], got_len,
                 hex[1]);
    }
    /* Avro-C reads it, and what it reads encodes to the same bytes */
    json_t *back = NULL;
    char err[256] = "";
    if (sg_avro_to_json(schema, got, got_len, &back, err, sizeof(err)) != 0)
        fail_msg("schema %zu, %s: Avro-C cannot read the encoding: %s", schema_index, text, err);
    void *again = NULL;
    size_t again_len = 0;
    char path[256] = "";
    if (sg_avro_from_json(schema, back, &again, &again_len, path, sizeof(path), err, sizeof(err)) != 0)
        fail_msg("schema %zu, %s: its decoded form does not encode: %s: %s", schema_index, text, path, err);
    if (again_len != got_len || memcmp(again, got, got_len) != 0)
        fail_msg("schema %zu, %s: its decoded form encodes to other bytes (%zu, then %zu)", schema_index, text, got_len, again_len);
    free(again);
    json_decref(back);
    free(ref);
    free(got);
    accepted++;
    return 1;
}

static void test_same_as_reference(void **state)
{
    (void)state;
    size_t pairs = 0, before = accepted;
    for (size_t s = 0; s < AVRO_CORPUS_SCHEMAS; s++) {
        for (size_t v = 0; v < sizeof(common_values) / sizeof(common_values[0]); v++) {
            json_t *value = load(common_values[v]);
            compare(schemas[s], s, value, common_values[v]);
            json_decref(value);
            pairs++;
        }
        for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
            json_t *value = load(cases[c].value);
            compare(schemas[s], s, value, cases[c].value);
            json_decref(value);
            pairs++;
        }
    }
    /* and a good share of the per-schema values is accepted */
    assert_true(accepted - before > 60);
    assert_true(pairs > 1500);
}

/* Refusals nested up to and past the depth limit, and a pointer longer than the path buffer:
 * the limits, and the cut-short pointer, are the same. */
static void test_depth_and_long_paths(void **state)
{
    (void)state;
    const sg_avro_schema_t *node = schemas[6];
    for (int depth = 20; depth <= 40; depth += 1) {
        /* {"next":{"next":...{"v":"x"}}}: each level is a record and a union */
        json_t *value = json_pack("{s:s}", "v", "x");
        for (int i = 0; i < depth; i++)
            value = json_pack("{s:o}", "next", value);
        compare(node, 6, value, "(deep next)");
        json_decref(value);
        json_t *good = json_object();
        for (int i = 0; i < depth; i++)
            good = json_pack("{s:[o]}", "kids", good);
        compare(node, 6, good, "(deep kids)");
        json_decref(good);
    }
    /* a map of maps of ... keyed by long names that need escaping: the path exceeds the buffer */
    const char *text = "{\"type\":\"map\",\"values\":[\"int\",{\"type\":\"map\",\"values\":[\"int\",{\"type\":\"map\","
                       "\"values\":[\"int\",{\"type\":\"map\",\"values\":\"int\"}]}]}]}";
    char err[256];
    sg_avro_schema_t *maps = sg_avro_schema_parse(text, strlen(text), err, sizeof(err));
    assert_non_null(maps);
    char key[400];
    for (size_t cut = 0; cut < 8; cut++) {
        memset(key, 'k', sizeof(key) - 1);
        key[sizeof(key) - 1] = '\0';
        for (size_t i = cut; i < sizeof(key) - 1; i += 7)
            key[i] = i % 2 ? '/' : '~';
        json_t *value = json_pack("{s:{s:{s:{s:{s:{s:{s:s}}}}}}}", key, "map", key, "map", key, "map", key, "x");
        compare(maps, 99, value, "(long keys)");
        json_decref(value);
    }
    sg_avro_schema_destroy(maps);
}

/* The bench's order, byte by byte: the encoding is Avro's, not merely self-consistent. */
static void test_order_bytes(void **state)
{
    (void)state;
    json_t *value = load("{\"id\":\"o-1\",\"customerId\":\"c\",\"placedAt\":\"1970-01-01T00:00:01.5Z\",\"currency\":\"EUR\","
                         "\"total\":\"12.50\",\"channel\":\"w\",\"items\":[{\"sku\":\"s\",\"quantity\":-2,\"unitPrice\":"
                         "\"-1.28\"}]}");
    static const uint8_t expected[] = {
        0x06, 'o',  '-',  '1', /* id: zig-zag length 3, the bytes */
        0x02, 'c',             /* customerId */
        0xb8, 0x17,            /* placedAt 1500 ms: zig-zag 3000 as a varint */
        0x06, 'E',  'U',  'R', /* currency */
        0x04, 0x04, 0xe2,      /* total: 1250 = 0x04e2, two bytes */
        0x02, 'w',             /* channel */
        0x02,                  /* items: one block of one */
        0x02, 's',  0x03,      /* sku; quantity -2: zig-zag 3 */
        0x02, 0x80,            /* unitPrice: -128 is the one byte 0x80 */
        0x00,                  /* the end of items */
    };
    const size_t n = sizeof(expected);
    void *avro = NULL;
    size_t len = 0;
    char path[64], err[256];
    assert_int_equal(sg_avro_from_json(schemas[13], value, &avro, &len, path, sizeof(path), err, sizeof(err)), 0);
    assert_int_equal(len, n);
    assert_memory_equal(avro, expected, n);
    free(avro);

    /* into a caller's buffer with a frame header set aside, starting on the stack and growing */
    uint8_t stack[8];
    sg_avro_buf_t buf;
    sg_avro_buf_init(&buf, stack, sizeof(stack), SG_AVRO_FRAME_HEADER);
    assert_int_equal(buf.len, SG_AVRO_FRAME_HEADER);
    assert_int_equal(sg_avro_encode(schemas[13], value, &buf, path, sizeof(path), err, sizeof(err)), 0);
    assert_int_equal(buf.len, SG_AVRO_FRAME_HEADER + n);
    assert_ptr_not_equal(buf.bytes, stack);
    assert_memory_equal(buf.bytes + SG_AVRO_FRAME_HEADER, expected, n);
    /* a refusal leaves the buffer as it was */
    json_t *bad = load("{\"id\":1}");
    assert_int_equal(sg_avro_encode(schemas[13], bad, &buf, path, sizeof(path), err, sizeof(err)), -1);
    assert_string_equal(path, "/id");
    assert_string_equal(err, "expected string");
    assert_int_equal(buf.len, SG_AVRO_FRAME_HEADER + n);
    json_decref(bad);
    sg_avro_buf_dispose(&buf);
    json_decref(value);
}

/* The decimal fast path agrees with the general routine on its edges. */
static void test_decimal_small(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "0",
        "-0",
        "+0",
        "1",
        "-1",
        "12.5",
        "12.50",
        "12.500",
        "0.05",
        ".5",
        "5.",
        "00012",
        "-000.10",
        "999999999999999999",
        "-999999999999999999",
        "1000000000000000000",
        "9223372036854775807",
        "0.000000000000000001",
        "1.00000000000000000",
        "123456789012345678.0",
        "1e2",
        "1E-2",
        "",
        ".",
        "-",
        "+",
        "1.2.3",
        "1a",
        " 1",
        "1 ",
        "--1",
    };
    for (int precision = 1; precision <= 40; precision += 3) {
        for (int scale = 0; scale <= precision && scale <= 20; scale += 2) {
            for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                uint8_t full[SG_AVRO_DECIMAL_MAX_BYTES];
                char err[128];
                int64_t small;
                int general = sg_avro_decimal_encode(texts[i], precision, scale, full, err, sizeof(err));
                if (sg_avro_decimal_small(texts[i], precision, scale, &small) != 0)
                    continue; /* not taken: the general routine decides, nothing to compare */
                if (general != 0)
                    fail_msg("'%s' (%d,%d): fast path accepts, general refuses: %s", texts[i], precision, scale, err);
                uint8_t mine[SG_AVRO_DECIMAL_MAX_BYTES];
                memset(mine, small < 0 ? 0xff : 0, sizeof(mine));
                for (int b = 0; b < 8; b++)
                    mine[SG_AVRO_DECIMAL_MAX_BYTES - 1 - b] = (uint8_t)((uint64_t)small >> (8 * b));
                assert_memory_equal(mine, full, sizeof(full));
            }
        }
    }
    int64_t out;
    assert_int_equal(sg_avro_decimal_small("12.50", 12, 2, &out), 0);
    assert_int_equal(out, 1250);
    assert_int_equal(sg_avro_decimal_small("-0.05", 3, 2, &out), 0);
    assert_int_equal(out, -5);
    assert_int_equal(sg_avro_decimal_small("1.005", 12, 2, &out), -1); /* too many fraction digits */
    assert_int_equal(sg_avro_decimal_small("1234", 3, 0, &out), -1);   /* beyond the precision */
    assert_int_equal(sg_avro_decimal_small("1e2", 5, 0, &out), -1);    /* exponents: general routine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_reference),
        cmocka_unit_test(test_depth_and_long_paths),
        cmocka_unit_test(test_order_bytes),
        cmocka_unit_test(test_decimal_small),
    };
    return cmocka_run_group_tests_name("avro_plan", tests, setup, teardown);
}
