/*
 * Unit tests for path templates (config/path.c): parse errors, matching with percent-decoding,
 * and shape comparison as used by the conflict check and the router.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sg_path.h"

static sg_path_template_t *parse_ok(const char *text)
{
    char err[256] = "";
    sg_path_template_t *t = sg_path_template_parse(text, err, sizeof(err));
    if (t == NULL)
        fail_msg("parse of %s failed: %s", text, err);
    return t;
}

/* Asserts that `text` is refused and that the reason contains `why`. */
static void parse_bad(const char *text, const char *why)
{
    char err[256] = "";
    sg_path_template_t *t = sg_path_template_parse(text, err, sizeof(err));
    if (t != NULL) {
        sg_path_template_destroy(t);
        fail_msg("template %s was accepted", text);
    }
    if (strstr(err, why) == NULL)
        fail_msg("template %s: error \"%s\" does not contain \"%s\"", text, err, why);
}

static int match(const sg_path_template_t *t, const char *path, sg_path_match_t *m)
{
    return sg_path_template_match(t, path, strlen(path), m);
}

static void test_parse_counts(void **state)
{
    sg_path_template_t *t = parse_ok("/orders/{id}/items/{item_2}");
    assert_int_equal(sg_path_template_n_params(t), 2);
    assert_int_equal(sg_path_template_n_literals(t), 2);
    assert_true(sg_path_template_has_param(t, "id"));
    assert_true(sg_path_template_has_param(t, "item_2"));
    assert_false(sg_path_template_has_param(t, "orders"));
    assert_false(sg_path_template_has_param(t, "ite"));
    sg_path_template_destroy(t);

    t = parse_ok("/");
    assert_int_equal(sg_path_template_n_params(t), 0);
    assert_int_equal(sg_path_template_n_literals(t), 1);
    sg_path_template_destroy(t);

    t = parse_ok("/a/");
    assert_int_equal(sg_path_template_n_literals(t), 2);
    sg_path_template_destroy(t);

    t = parse_ok("/caf%C3%A9/{_x}");
    assert_int_equal(sg_path_template_n_params(t), 1);
    sg_path_template_destroy(t);

    sg_path_template_destroy(NULL);
}

static void test_parse_errors(void **state)
{
    parse_bad("", "must start with '/'");
    parse_bad("orders", "must start with '/'");
    parse_bad("//", "empty segment");
    parse_bad("/a//b", "empty segment");
    parse_bad("/a/{id", "unterminated '{'");
    parse_bad("/a/{", "unterminated '{'");
    parse_bad("/a/x{id}", "'{' inside a literal");
    parse_bad("/a/{id}x", "whole segment");
    parse_bad("/a/{i{d}", "whole segment");
    parse_bad("/a/id}", "unmatched '}'");
    parse_bad("/a/{}", "parameter names");
    parse_bad("/a/{1x}", "parameter names");
    parse_bad("/a/{x-y}", "parameter names");
    parse_bad("/a/{x}/{x}", "duplicate parameter");
    parse_bad("/a?b=1", "'?' and '#'");
    parse_bad("/a#frag", "'?' and '#'");
    parse_bad("/a b", "spaces");
    parse_bad("/a%4", "two hex digits");
    parse_bad("/a%zz", "two hex digits");

    char many[512] = "";
    for (int i = 0; i < SG_PATH_MAX_SEGMENTS + 1; i++)
        strcat(many, "/s");
    parse_bad(many, "more than 32 segments");
    many[0] = '\0';
    for (int i = 0; i < SG_PATH_MAX_SEGMENTS; i++)
        strcat(many, "/s");
    sg_path_template_destroy(parse_ok(many));

    char params[512] = "";
    for (int i = 0; i < SG_PATH_MAX_PARAMS + 1; i++)
        snprintf(params + strlen(params), sizeof(params) - strlen(params), "/{p%d}", i);
    parse_bad(params, "more than 16 parameters");

    char longer[3000];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[0] = '/';
    longer[sizeof(longer) - 1] = '\0';
    parse_bad(longer, "longer than 2048");

    /* A NULL err buffer is allowed. */
    assert_null(sg_path_template_parse("bad", NULL, 0));
}

static void test_match_literals(void **state)
{
    sg_path_match_t m;
    sg_path_template_t *t = parse_ok("/orders");
    assert_int_equal(match(t, "/orders", &m), 1);
    assert_int_equal(m.n_params, 0);
    sg_path_match_dispose(&m);
    assert_int_equal(match(t, "/orders/", &m), 0);
    assert_int_equal(match(t, "/order", &m), 0);
    assert_int_equal(match(t, "/ordersx", &m), 0);
    assert_int_equal(match(t, "/orders/1", &m), 0);
    assert_int_equal(match(t, "orders", &m), 0);
    assert_int_equal(match(t, "", &m), 0);
    /* Literals compare against the raw path: an encoded letter is not the letter. */
    assert_int_equal(match(t, "/%6Frders", &m), 0);
    sg_path_template_destroy(t);

    t = parse_ok("/");
    assert_int_equal(match(t, "/", &m), 1);
    assert_int_equal(match(t, "//", &m), 0);
    assert_int_equal(match(t, "/a", &m), 0);
    sg_path_template_destroy(t);

    t = parse_ok("/a/");
    assert_int_equal(match(t, "/a/", &m), 1);
    assert_int_equal(match(t, "/a", &m), 0);
    sg_path_template_destroy(t);

    /* The length argument bounds the path: the query string is not part of it. */
    t = parse_ok("/a/b");
    const char *with_query = "/a/b?x=1";
    assert_int_equal(sg_path_template_match(t, with_query, 4, &m), 1);
    assert_int_equal(sg_path_template_match(t, with_query, 3, &m), 0);
    sg_path_template_destroy(t);
}

static void test_match_params(void **state)
{
    sg_path_match_t m;
    sg_path_template_t *t = parse_ok("/orders/{id}/items/{item}");
    assert_int_equal(match(t, "/orders/42/items/abc", &m), 1);
    assert_int_equal(m.n_params, 2);
    assert_string_equal(m.params[0].name, "id");
    assert_string_equal(m.params[0].value, "42");
    assert_int_equal(m.params[0].len, 2);
    const sg_path_param_t *item = sg_path_match_get(&m, "item");
    assert_non_null(item);
    assert_string_equal(item->value, "abc");
    assert_null(sg_path_match_get(&m, "orders"));
    sg_path_match_dispose(&m);
    assert_int_equal(m.n_params, 0);

    /* Parameters are percent-decoded; an encoded slash stays inside the one parameter. */
    assert_int_equal(match(t, "/orders/a%2Fb%20c/items/%C3%A9", &m), 1);
    assert_string_equal(sg_path_match_get(&m, "id")->value, "a/b c");
    assert_int_equal(sg_path_match_get(&m, "id")->len, 5);
    assert_string_equal(sg_path_match_get(&m, "item")->value, "\xc3\xa9");
    sg_path_match_dispose(&m);

    /* '+' is not a space in a path. */
    assert_int_equal(match(t, "/orders/a+b/items/x", &m), 1);
    assert_string_equal(m.params[0].value, "a+b");
    sg_path_match_dispose(&m);

    assert_int_equal(match(t, "/orders//items/x", &m), 0);
    assert_int_equal(m.n_params, 0);
    assert_int_equal(match(t, "/orders/1/items/", &m), 0);
    assert_int_equal(match(t, "/orders/1/item/2", &m), 0);
    assert_int_equal(match(t, "/orders/1/items/2/", &m), 0);
    assert_int_equal(match(t, "/orders/1", &m), 0);

    assert_int_equal(match(t, "/orders/%zz/items/x", &m), -1);
    assert_int_equal(m.n_params, 0);
    assert_int_equal(match(t, "/orders/1/items/%4", &m), -1);
    assert_int_equal(m.n_params, 0);
    assert_int_equal(match(t, "/orders/1/items/%", &m), -1);
    assert_int_equal(match(t, "/orders/1/items/a%00b", &m), -1);
    assert_int_equal(m.n_params, 0);
    /* A raw NUL (an HTTP/2 :path can carry one) is refused like %00 (found by fuzz_http). */
    assert_int_equal(sg_path_template_match(t, "/orders/1/items/a\0b", 18, &m), -1);
    assert_int_equal(m.n_params, 0);
    size_t decoded_len = 0;
    assert_null(sg_path_decode("\0\0\xf9", 3, &decoded_len));
    char *decoded = sg_path_decode("a%20b", 5, &decoded_len);
    assert_string_equal(decoded, "a b");
    assert_int_equal(decoded_len, 3);
    free(decoded);
    sg_path_template_destroy(t);

    /* More request segments than the template can hold is simply no match. */
    t = parse_ok("/{a}");
    char deep[256] = "";
    for (int i = 0; i < SG_PATH_MAX_SEGMENTS + 4; i++)
        strcat(deep, "/x");
    assert_int_equal(match(t, deep, &m), 0);
    sg_path_template_destroy(t);
}

static void test_same_shape(void **state)
{
    struct {
        const char *a, *b;
        int same;
    } cases[] = {
        {"/a/{x}", "/a/{y}", 1}, {"/a/{x}", "/a/{x}", 1}, {"/a/{x}/b", "/a/{y}/b", 1},
        {"/a/{x}", "/a/b", 0},   {"/a/{x}", "/b/{x}", 0}, {"/a/{x}", "/a/{x}/", 0},
        {"/a", "/a/", 0},        {"/", "/", 1},           {"/a/b", "/a/b", 1},
        {"/a/b", "/a/c", 0},     {"/a/bc", "/a/b", 0},    {"/{x}/b", "/a/{y}", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sg_path_template_t *a = parse_ok(cases[i].a), *b = parse_ok(cases[i].b);
        if (sg_path_template_same_shape(a, b) != cases[i].same || sg_path_template_same_shape(b, a) != cases[i].same)
            fail_msg("same_shape(%s, %s) should be %d", cases[i].a, cases[i].b, cases[i].same);
        sg_path_template_destroy(a);
        sg_path_template_destroy(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_counts), cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_match_literals),
        cmocka_unit_test(test_match_params), cmocka_unit_test(test_same_shape),
    };
    return cmocka_run_group_tests_name("config-path", tests, NULL, NULL);
}
