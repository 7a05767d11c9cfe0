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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pointers),
        cmocka_unit_test(test_missing_steps_name_the_step),
        cmocka_unit_test(test_value_rules),
        cmocka_unit_test(test_key_length_limit),
    };
    return cmocka_run_group_tests_name("gateway-keys", tests, NULL, NULL);
}
