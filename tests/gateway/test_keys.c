/*
 * Key extraction: RFC 6901 pointers (escapes, arrays, missing steps) and the value-to-key rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keys.h"

static const char doc_text[] = "{\"customerId\":\"c-1\",\"n\":42,\"neg\":-7,\"f\":1.5,\"t\":true,\"z\":null,"
                               "\"o\":{\"a/b\":\"slash\",\"m~n\":\"tilde\",\"\":\"empty-name\"},"
                               "\"arr\":[\"zero\",{\"id\":\"deep\"}],\"s\":\"\",\"u\":\"\\u00e9\"}";

/* The bench's POST body (bench/post.lua, the icount suite's) */
#define BENCH_BODY "{\"customerId\":\"c-00000001\",\"amount\":12.5}"

static json_t *load(void)
{
    json_error_t jerr;
    json_t *doc = json_loads(doc_text, 0, &jerr);
    assert_non_null(doc);
    return doc;
}

static const char *key_of(json_t *doc, const char *pointer, char *buf, size_t buflen, int *len)
{
    char err[256];
    json_t *value = sg_json_pointer_get(doc, pointer, err, sizeof(err));
    if (value == NULL)
        return NULL;
    *len = sg_key_from_json(value, buf, buflen, err, sizeof(err));
    return *len < 0 ? NULL : buf;
}

static void test_pointers(void **state)
{
    json_t *doc = load();
    char buf[128];
    int len;
    assert_string_equal(key_of(doc, "/customerId", buf, sizeof(buf), &len), "c-1");
    assert_int_equal(len, 3);
    assert_string_equal(key_of(doc, "/o/a~1b", buf, sizeof(buf), &len), "slash");
    assert_string_equal(key_of(doc, "/o/m~0n", buf, sizeof(buf), &len), "tilde");
    assert_string_equal(key_of(doc, "/o/", buf, sizeof(buf), &len), "empty-name");
    assert_string_equal(key_of(doc, "/arr/0", buf, sizeof(buf), &len), "zero");
    assert_string_equal(key_of(doc, "/arr/1/id", buf, sizeof(buf), &len), "deep");
    assert_string_equal(key_of(doc, "/u", buf, sizeof(buf), &len), "\xc3\xa9");
    assert_int_equal(len, 2);
    /* the root */
    char err[256];
    assert_ptr_equal(sg_json_pointer_get(doc, "", err, sizeof(err)), doc);
    json_decref(doc);
}

static void test_missing_steps_name_the_step(void **state)
{
    json_t *doc = load();
    char err[256];
    assert_null(sg_json_pointer_get(doc, "/nope", err, sizeof(err)));
    assert_string_equal(err, "/nope is missing");
    assert_null(sg_json_pointer_get(doc, "/o/x/y", err, sizeof(err)));
    assert_string_equal(err, "/o/x is missing");
    assert_null(sg_json_pointer_get(doc, "/arr/2", err, sizeof(err)));
    assert_null(sg_json_pointer_get(doc, "/arr/01", err, sizeof(err))); /* no leading zeros */
    assert_null(sg_json_pointer_get(doc, "/arr/-", err, sizeof(err)));
    assert_null(sg_json_pointer_get(doc, "/customerId/0", err, sizeof(err))); /* into a string */
    assert_null(sg_json_pointer_get(doc, "/o/bad~2", err, sizeof(err)));
    assert_non_null(strstr(err, "malformed"));
    assert_null(sg_json_pointer_get(doc, "customerId", err, sizeof(err)));
    assert_non_null(strstr(err, "must start with '/'"));
    json_decref(doc);
}

static void test_value_rules(void **state)
{
    json_t *doc = load();
    char buf[128], err[256];
    int len;
    assert_string_equal(key_of(doc, "/n", buf, sizeof(buf), &len), "42");
    assert_string_equal(key_of(doc, "/neg", buf, sizeof(buf), &len), "-7");
    const char *refused[][2] = {{"/f", "a real number"}, {"/t", "true"}, {"/z", "null"}, {"/o", "an object"}, {"/arr", "an array"}};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); ++i) {
        json_t *value = sg_json_pointer_get(doc, refused[i][0], err, sizeof(err));
        assert_non_null(value);
        assert_int_equal(sg_key_from_json(value, buf, sizeof(buf), err, sizeof(err)), -1);
        assert_non_null(strstr(err, refused[i][1]));
    }
    json_t *empty = sg_json_pointer_get(doc, "/s", err, sizeof(err));
    assert_int_equal(sg_key_from_json(empty, buf, sizeof(buf), err, sizeof(err)), -1);
    assert_string_equal(err, "is an empty string");
    json_decref(doc);
}

static void test_key_length_limit(void **state)
{
    static char big[SG_KEY_MAX_BYTES + 2], buf[SG_KEY_MAX_BYTES + 8];
    char err[256];
    memset(big, 'k', SG_KEY_MAX_BYTES);
    json_t *at_limit = json_stringn(big, SG_KEY_MAX_BYTES);
    assert_int_equal(sg_key_from_json(at_limit, buf, sizeof(buf), err, sizeof(err)), SG_KEY_MAX_BYTES);
    json_decref(at_limit);
    json_t *over = json_stringn(big, SG_KEY_MAX_BYTES + 1);
    big[SG_KEY_MAX_BYTES] = 'k';
    json_decref(over);
    over = json_stringn(big, SG_KEY_MAX_BYTES + 1);
    assert_int_equal(sg_key_from_json(over, buf, sizeof(buf), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "longer than 4096 bytes"));
    json_decref(over);
}

/* What the command path does without the scan: Jansson's verdict and, with a pointer, the key.
 * Returns 1 and the key when both succeed. */
static int jansson_key(const char *text, size_t len, const char *pointer, char *buf, size_t buflen, int *keylen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        return 0;
    int ok = 1;
    if (pointer != NULL) {
        char err[256];
        json_t *value = sg_json_pointer_get(doc, pointer, err, sizeof(err));
        ok = value != NULL && (*keylen = sg_key_from_json(value, buf, buflen, err, sizeof(err))) >= 0;
    }
    json_decref(doc);
    return ok;
}

/* The scan may leave any document to Jansson, but what it accepts Jansson must accept, with the
 * same key. Returns the scan's answer. */
static int scan_agrees(const char *text, size_t len, const char *pointer)
{
    const char *key = NULL;
    size_t key_len = 0;
    int scanned = sg_key_scan_json(text, len, pointer, &key, &key_len);
    if (scanned) {
        char buf[SG_KEY_MAX_BYTES + 1];
        int keylen = -1;
        if (!jansson_key(text, len, pointer, buf, sizeof(buf), &keylen))
            fail_msg("the scan accepted what Jansson refuses: %.*s (pointer %s)", (int)len, text, pointer ? pointer : "none");
        if (pointer != NULL && (keylen < 0 || (size_t)keylen != key_len || memcmp(buf, key, key_len) != 0))
            fail_msg("the scan's key differs from Jansson's for %.*s (pointer %s)", (int)len, text, pointer);
    }
    return scanned;
}

static int scans(const char *text, const char *pointer)
{
    return scan_agrees(text, strlen(text), pointer);
}

/* The common bodies take the fast lane, with the key Jansson's path would give. */
static void test_scan_finds_keys(void **state)
{
    const char *key;
    size_t len;
    assert_int_equal(sg_key_scan_json(BENCH_BODY, strlen(BENCH_BODY), "/customerId", &key, &len), 1);
    assert_int_equal(len, 10);
    assert_memory_equal(key, "c-00000001", 10);
    assert_true(scans(BENCH_BODY, "/customerId"));
    assert_true(scans(BENCH_BODY, NULL));
    assert_true(scans(doc_text, NULL) == 0); /* it holds a \u escape: Jansson's */
    assert_true(scans(" {\"a\" : {\"b\":[1, {\"id\": -42}]}, \"x\":\"tab\\tnew\\nline\"} \n", "/a/b/1/id"));
    const char *nested = "{\"a\":{\"b\":[1,{\"id\":-42}]}}";
    assert_true(sg_key_scan_json(nested, strlen(nested), "/a/b/1/id", &key, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(key, "-42", 3);
    assert_true(scans("{\"o\":{\"a/b\":\"slash\",\"m~n\":\"tilde\",\"\":\"empty-name\"}}", "/o/a~1b"));
    assert_true(scans("{\"o\":{\"a/b\":\"slash\",\"m~n\":\"tilde\",\"\":\"empty-name\"}}", "/o/m~0n"));
    assert_true(scans("{\"o\":{\"a/b\":\"slash\",\"m~n\":\"tilde\",\"\":\"empty-name\"}}", "/o/"));
    assert_true(scans("\"root\"", ""));
    assert_true(scans("[]", NULL));
    assert_true(scans("{}", NULL));
    assert_true(scans("{\"k\":0,\"r\":[-0.5,1.25,0,true,false,null,{},[]]}", "/k"));
    assert_true(scans("{\"a\":{\"k\":1},\"b\":{\"k\":2},\"k\":\"top\"}", "/k")); /* equal names in other objects */
}

/* What the scan leaves to Jansson, whatever Jansson then says. */
static void test_scan_leaves_to_jansson(void **state)
{
    const char *left[][2] = {
        {"{\"customerId\":\"c-1\",\"customerId\":\"c-2\"}", "/customerId"}, /* a duplicate */
        {"{\"a\":1,\"b\":{\"c\":1,\"c\":2}}", NULL},                       /* a nested duplicate */
        {"{\"k\":\"caf\xc3\xa9\"}", "/k"},                                  /* UTF-8: Jansson checks it */
        {"{\"k\":\"\\u0041\"}", "/k"},                                      /* \u escapes */
        {"{\"k\":\"a\\nb\"}", "/k"},                                        /* an escaped key: Jansson decodes it */
        {"{\"k\":\"\"}", "/k"},                                               /* an empty key */
        {"{\"k\":1.5}", "/k"}, {"{\"k\":true}", "/k"}, {"{\"k\":null}", "/k"}, {"{\"k\":{}}", "/k"},
        {"{\"k\":-0}", "/k"},                                                  /* Jansson's key is \"0\" */
        {"{\"k\":1234567890123456789}", "/k"},                                 /* might not fit json_int_t */
        {"{\"k\":\"x\",\"n\":1e400}", "/k"},                                   /* an exponent: strtod decides */
        {"{\"j\":\"x\"}", "/k"},                                               /* missing */
        {"{\"k\":\"x\"}", "k"}, {"{\"k\":\"x\"}", "/k~2"},                    /* malformed pointers */
        {"{\"k\":\"x\"", "/k"}, {"{\"k\":\"x\"}}", "/k"}, {"{\"k\" \"x\"}", "/k"}, {"{\"k\":\"x\",}", "/k"},
        {"[1,]", NULL}, {"[01]", NULL}, {"[1.]", NULL}, {"[-]", NULL}, {"[.5]", NULL}, {"[+1]", NULL}, {"[tru]", NULL},
        {"[truex]", NULL}, {"[\"a\tb\"]", NULL}, {"", NULL}, {"  ", NULL}, {"{\"k\":\"x\"} x", "/k"},
        {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", NULL}, /* deeper than the scan goes */
    };
    for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); ++i)
        if (scans(left[i][0], left[i][1]))
            fail_msg("the scan decided %s (pointer %s)", left[i][0], left[i][1] ? left[i][1] : "none");
    /* a NUL byte in the body */
    assert_int_equal(scan_agrees("{\"k\":\"x\"}\0", 10, "/k"), 0);
    assert_int_equal(scan_agrees("{\"k\":\"x\0\"}", 10, "/k"), 0);
}

/* Random edits of valid bodies (a fixed seed: the same documents every run): whatever the scan
 * accepts, Jansson accepts with the same key. */
static void test_scan_never_accepts_more_than_jansson(void **state)
{
    static const char *seeds[] = {
        BENCH_BODY,
        "{\"id\":\"o-1\",\"n\":-12,\"r\":0.25,\"a\":[1,2,{\"x\":\"y\"}],\"t\":true,\"f\":false,\"z\":null,\"s\":\"a\\\"b\"}",
        "{\"a\":{\"b\":[0,{\"id\":7}]},\"id\":\"top\",\"e\":{}, \"l\" : [ ] }",
        "[\"x\", 1, {\"id\": \"y\"}]",
    };
    static const char *pointers[] = {"/customerId", "/id", "/a/b/1/id", "/2/id", "", NULL};
    static const char alphabet[] = "{}[]:,\"\\ \t\n-+.eE0123456789aeflnrstu/~\x01\x7f\xc3\xa9";
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    char text[256];
    size_t accepted = 0;
    for (int round = 0; round < 200000; ++round) {
        const char *seed = seeds[round % 4];
        size_t len = strlen(seed);
        memcpy(text, seed, len);
        int edits = 1 + (int)(rng % 3);
        for (int e = 0; e < edits; ++e) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            size_t at = (size_t)(rng >> 8) % (len + 1);
            char c = alphabet[(rng >> 40) % (sizeof(alphabet) - 1)];
            switch (rng % 3) {
            case 0: if (at < len) text[at] = c; break;                                       /* replace */
            case 1: if (len + 1 < sizeof(text)) { memmove(text + at + 1, text + at, len - at); text[at] = c; ++len; } break;
            default: if (at < len) { memmove(text + at, text + at + 1, len - at - 1); --len; } /* delete */
            }
        }
        accepted += (size_t)scan_agrees(text, len, pointers[(round / 4) % 6]);
    }
    print_message("%zu of 200000 edited documents taken by the scan, each as Jansson takes it\n", accepted);
    assert_true(accepted > 1000); /* the edits leave plenty of valid documents to compare */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pointers),
        cmocka_unit_test(test_missing_steps_name_the_step),
        cmocka_unit_test(test_value_rules),
        cmocka_unit_test(test_key_length_limit),
        cmocka_unit_test(test_scan_finds_keys),
        cmocka_unit_test(test_scan_leaves_to_jansson),
        cmocka_unit_test(test_scan_never_accepts_more_than_jansson),
    };
    return cmocka_run_group_tests_name("gateway-keys", tests, NULL, NULL);
}
