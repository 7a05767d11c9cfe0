/*
 * The problem table: every kind has one row with a distinct type, an error status that has a
 * reason phrase, and a title; every 503 tells the client when to retry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http_text.h"
#include "problems.h"

static int is_slug(const char *s)
{
    if (*s == '\0' || *s == '-')
        return 0;
    for (; *s != '\0'; ++s)
        if (!((*s >= 'a' && *s <= 'z') || *s == '-'))
            return 0;
    return 1;
}

static void test_rows(void **state)
{
    for (int kind = 0; kind < SG_PROBLEM_COUNT; ++kind) {
        const sg_problem_info_t *info = sg_problem_info((sg_problem_t)kind);
        assert_non_null(info->type);
        assert_true(is_slug(info->type));
        assert_true(info->status >= 400 && info->status <= 599);
        assert_string_not_equal(sg_http_reason(info->status), "");
        assert_non_null(info->title);
        assert_true(strlen(info->title) > 0);
        if (info->status == 503)
            assert_true(info->retry_after_s > 0);
        for (int other = 0; other < kind; ++other)
            assert_string_not_equal(sg_problem_info((sg_problem_t)other)->type, info->type);
    }
}

static void test_known_rows(void **state)
{
    const sg_problem_info_t *info = sg_problem_info(SG_PROBLEM_BODY_TOO_LARGE);
    assert_string_equal(info->type, "body-too-large");
    assert_int_equal(info->status, 413);
    assert_string_equal(info->title, "Content Too Large");
    info = sg_problem_info(SG_PROBLEM_IDEMPOTENCY_KEY_IN_FLIGHT);
    assert_int_equal(info->status, 409);
    assert_int_equal(info->retry_after_s, 1);
    info = sg_problem_info(SG_PROBLEM_SHUTTING_DOWN);
    assert_string_equal(info->type, "shutting-down");
    assert_int_equal(info->status, 503);
    /* out of range: a row all the same, never a crash */
    assert_non_null(sg_problem_info(SG_PROBLEM_COUNT)->type);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_known_rows),
    };
    return cmocka_run_group_tests_name("gateway-problems", tests, NULL, NULL);
}
