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

/* Strings long enough for the eight-bytes-at-a-time path, with each byte that path must not
 * skip (and the plain ones at its bounds: 0x20, 0x7f) at every place of a word; Jansson says
 * what is valid. */
static void test_long_strings(void **state)
{
    static const char *inserts[] = {"\x01", "\x1f", " ", "\x7f", "\"", "\\", "\\n", "\\u00e9", "\\x", "\xc3\xa9", "\xe2\x82\xac",
                                    "\xf0\x9f\x98\x80", "\xc3", "\x80", "\xff", "\xed\xa0\x80"};
    size_t checked = 0;
    for (size_t i = 0; i < sizeof(inserts) / sizeof(inserts[0]); ++i) {
        for (size_t at = 0; at <= 24; ++at) {
            char doc[64];
            size_t len = 0, insert_len = strlen(inserts[i]);
            doc[len++] = '"';
            memset(doc + len, 'a', at);
            len += at;
            memcpy(doc + len, inserts[i], insert_len);
            len += insert_len;
            memset(doc + len, 'b', 24 - at);
            len += 24 - at;
            doc[len++] = '"';
            json_error_t error;
            json_t *parsed = json_loadb(doc, len, JSON_DECODE_ANY, &error);
            int theirs = parsed != NULL;
            json_decref(parsed);
            if (sg_jsonv_check(doc, len, NULL) != theirs) {
                fprintf(stderr, "disagree (jansson %d) on insert %zu at %zu: %.*s\n", theirs, i, at, (int)len, doc);
                fail();
            }
            ++checked;
        }
    }
    assert_int_equal(checked, 25 * sizeof(inserts) / sizeof(inserts[0]));
    /* the same string without an insert, and cut before its closing quote */
    const char plain[] = "\"abcdefghijklmnopqrstuvwxyz0123456789\"";
    assert_true(sg_jsonv_check(plain, sizeof(plain) - 1, NULL));
    size_t stop = 0;
    assert_false(sg_jsonv_check(plain, sizeof(plain) - 2, &stop));
    assert_int_equal(stop, sizeof(plain) - 2);
}

/* Where a refused text stops (error_at): the offsets the validator has always reported, pinned
 * for each kind of token, whitespace between tokens and the end of the text. */
static void test_error_offsets(void **state)
{
    static const struct {
        const char *text;
        size_t at;
    } cases[] = {
        {"[1,]", 3},
        {"{\"a\":1,}", 7},
        {"{a:1}", 1},
        {"{\"a\"1}", 4},
        {"{\"a\" 1}", 5},
        {"[1 2]", 3},
        {"[1}", 2},
        {"{\"a\":1]", 6},
        {"[tru]", 1},
        {"[-]", 2},
        {"[1.]", 3},
        {"[1e+]", 4},
        {"[01]", 2},
        {"[\"a\\x\"]", 5},
        {"[\"\\u12\"]", 4},
        {"\"\\ud800x\"", 7},
        {"\"\\ud800\\u0041\"", 13},
        {"\"ab\x01\"", 3},
        {"\"ab\xc3\"", 3},
        {"\"abc", 4},
        {"1 2", 2},
        {" [ 1 , 2 ] x", 11},
        {"{ \"a\" : [ ] , }", 14},
        {"[\t\n\r 1 ,\n", 9},
        {"", 0},
        {"  ", 2},
        {"[1234567890123x]", 14},
        {"[\"0123456789abcdef\x01\"]", 18},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        size_t at = 9999;
        int ok = sg_jsonv_check(cases[i].text, strlen(cases[i].text), &at);
        if (ok || at != cases[i].at)
            fprintf(stderr, "case %zu (%s): ok %d at %zu, want refused at %zu\n", i, cases[i].text, ok, at, cases[i].at);
        assert_false(ok);
        assert_int_equal(at, cases[i].at);
    }
    /* Whitespace anywhere between tokens, none at all, and the objects and arrays of the nesting
     * bound in turns (the kinds of the open containers cross the bit stack's 64-bit words). */
    assert_true(check(" { \"a\" : [ 1 , { } , [ ] , \"s\" , true , false , null , -0.5e3 ] , \"b\" : { \"c\" : 2 } } "));
    assert_true(check("\t{\n\"a\"\r:\t[\n1\r,{},[],\"s\",true,false,null,-0.5e3],\"b\":{\"c\":2}}\n"));
    assert_true(check("{\"a\":[1,{},[],\"s\",true,false,null,-0.5e3],\"b\":{\"c\":2}}"));
    static char deep[8 * SG_JSONV_MAX_DEPTH];
    for (int extra = 0; extra <= 1; ++extra) {
        size_t len = 0, last_open = 0;
        int levels = SG_JSONV_MAX_DEPTH + extra;
        for (int i = 0; i < levels; ++i) {
            last_open = len;
            if (i % 3 == 1) {
                memcpy(deep + len, "{\"k\":", 5);
                len += 5;
            } else {
                deep[len++] = '[';
            }
        }
        deep[len++] = '0';
        for (int i = levels - 1; i >= 0; --i)
            deep[len++] = i % 3 == 1 ? '}' : ']';
        size_t at = 0;
        assert_int_equal(sg_jsonv_check(deep, len, &at), !extra);
        if (extra)
            assert_int_equal(at, last_open); /* the container one too deep */
    }
}

/* Numbers long enough for the eight-digits-at-a-time path: every byte that ends a run of digits
 * (or is not allowed there) at every place of a word and near the end of the text; Jansson says
 * what is valid. */
static void test_long_numbers(void **state)
{
    static const char *stops[] = {"",  ".", ".5", "e", "e7",   "E+1",  "/",    ":", "0", "9",
                                  " ", ",", "]",  "x", "\x80", "\xff", "\x01", "-", "+"};
    size_t checked = 0;
    for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); ++i) {
        for (size_t digits = 1; digits <= 20; ++digits) {
            for (int wrapped = 0; wrapped <= 1; ++wrapped) {
                char doc[64];
                size_t len = 0, stop_len = strlen(stops[i]);
                if (wrapped)
                    doc[len++] = '[';
                for (size_t d = 0; d < digits; ++d)
                    doc[len++] = (char)('1' + (d * 7) % 9);
                memcpy(doc + len, stops[i], stop_len);
                len += stop_len;
                if (wrapped)
                    doc[len++] = ']';
                json_error_t error;
                json_t *parsed = json_loadb(doc, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
                int theirs = parsed != NULL;
                json_decref(parsed);
                int ours = sg_jsonv_check(doc, len, NULL);
                if (ours != theirs && !(ours && strstr(error.text, "too big integer") != NULL)) { /* Jansson's int64 limit */
                    fprintf(stderr, "disagree (jansson %d) on stop %zu after %zu digits: %.*s\n", theirs, i, digits, (int)len, doc);
                    fail();
                }
                ++checked;
            }
        }
    }
    assert_int_equal(checked, 2 * 20 * sizeof(stops) / sizeof(stops[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_cases),   cmocka_unit_test(test_agrees_with_jansson), cmocka_unit_test(test_long_strings),
        cmocka_unit_test(test_error_offsets), cmocka_unit_test(test_long_numbers),
    };
    return cmocka_run_group_tests_name("codec-jsonv", tests, NULL, NULL);
}
