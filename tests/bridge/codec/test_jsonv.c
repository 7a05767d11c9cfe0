/*
 * The allocation-free JSON validator against fixed cases and, differentially, against Jansson
 * (the parser the rest of the gateway uses) on a few hundred thousand mutated documents: both
 * must accept and refuse the same texts (Jansson alone refuses numbers that overflow a double).
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

#include "sg_jsonv.h"

static int check(const char *text)
{
    return sg_jsonv_check(text, strlen(text), NULL);
}

static void test_fixed_cases(void **state)
{
    const char *valid[] = {"0",
                           "-0",
                           "1.5e+10",
                           "-12.25E-3",
                           "\"\"",
                           "\"a\\u00e9\\ud83d\\ude00\"",
                           " true ",
                           "false",
                           "null",
                           "[]",
                           "{}",
                           "[1,[2,[3,{}]]]",
                           "{\"a\":{\"b\":[null,\"\\n\"]}}",
                           "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
                           "\"\\u0000\"",
                           "\t\r\n{ \"k\" : 1 }\n"};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); ++i) {
        if (!check(valid[i]))
            fprintf(stderr, "refused: %s\n", valid[i]);
        assert_true(check(valid[i]));
    }
    const char *invalid[] = {"",
                             " ",
                             "01",
                             "1.",
                             ".5",
                             "+1",
                             "1e",
                             "-",
                             "tru",
                             "nul",
                             "[1,]",
                             "{\"a\":1,}",
                             "{a:1}",
                             "{\"a\"1}",
                             "[1 2]",
                             "\"abc",
                             "\"\\x\"",
                             "\"\\u12\"",
                             "\"\\ud800\"",
                             "\"\\udc00\"",
                             "\"\\ud800\\u0041\"",
                             "\"\t\"",
                             "1 2",
                             "{} {}",
                             "\"\xc0\xaf\"",
                             "\"\xed\xa0\x80\"",
                             "\"\xf4\x90\x80\x80\"",
                             "\"\xe2\x82\"",
                             "\"\x80\"",
                             "[",
                             "]",
                             "{\"a\"}",
                             "NaN",
                             "Infinity",
                             "\"\xff\""};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); ++i) {
        if (check(invalid[i]))
            fprintf(stderr, "accepted: %s\n", invalid[i]);
        assert_false(check(invalid[i]));
    }
    /* a raw NUL is not JSON; the reported offset is where it stopped */
    size_t at = 0;
    assert_false(sg_jsonv_check("[1,\0]", 5, &at));
    assert_int_equal(at, 3);
    /* nesting is bounded */
    char deep[2 * SG_JSONV_MAX_DEPTH + 3];
    memset(deep, '[', SG_JSONV_MAX_DEPTH + 1);
    memset(deep + SG_JSONV_MAX_DEPTH + 1, ']', SG_JSONV_MAX_DEPTH + 1);
    assert_false(sg_jsonv_check(deep, 2 * SG_JSONV_MAX_DEPTH + 2, NULL));
    assert_true(sg_jsonv_check(deep + 1, 2 * SG_JSONV_MAX_DEPTH, NULL));
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_agrees_with_jansson(void **state)
{
    static const char *seeds[] = {"{\"name\":\"Ada\",\"age\":36,\"tags\":[\"x\",\"y\"],\"ok\":true,\"none\":null,\"pi\":3.14e0}",
                                  "[0,-1,2.5,\"\\u00e9\\ud83d\\ude00\",{\"a\":[{}]},false]",
                                  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
                                  "{\"nested\":{\"deeper\":{\"deepest\":[1,2,{\"k\":\"v\\\"q\\\\\"}]}}}", "-0.0e-0"};
    static const char alphabet[] = "{}[]\",:0123456789-+.eE \\utrfnlsa\x80\xc3\xa9\xed\xf0\xff\x01";
    size_t agreements = 0;
    for (int round = 0; round < 200000; ++round) {
        const char *seed = seeds[next_random() % (sizeof(seeds) / sizeof(seeds[0]))];
        char doc[256];
        size_t len = strlen(seed);
        memcpy(doc, seed, len);
        int edits = 1 + (int)(next_random() % 3);
        for (int e = 0; e < edits; ++e) {
            size_t where = next_random() % (len + 1);
            switch (next_random() % 3) {
            case 0: /* replace */
                if (where < len)
                    doc[where] = alphabet[next_random() % (sizeof(alphabet) - 1)];
                break;
            case 1: /* delete */
                if (where < len) {
                    memmove(doc + where, doc + where + 1, len - where - 1);
                    --len;
                }
                break;
            default: /* insert */
                if (len + 1 < sizeof(doc)) {
                    memmove(doc + where + 1, doc + where, len - where);
                    doc[where] = alphabet[next_random() % (sizeof(alphabet) - 1)];
                    ++len;
                }
                break;
            }
        }
        json_error_t error;
        json_t *parsed = json_loadb(doc, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
        int ours = sg_jsonv_check(doc, len, NULL);
        int theirs = parsed != NULL;
        json_decref(parsed);
        if (ours != theirs && !(ours && strstr(error.text, "overflow") != NULL)) {
            fprintf(stderr, "disagree (ours %d, jansson %d: %s): %.*s\n", ours, theirs, theirs ? "" : error.text, (int)len, doc);
            fail();
        }
        ++agreements;
    }
    assert_int_equal(agreements, 200000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_cases),
        cmocka_unit_test(test_agrees_with_jansson),
    };
    return cmocka_run_group_tests_name("codec-jsonv", tests, NULL, NULL);
}
