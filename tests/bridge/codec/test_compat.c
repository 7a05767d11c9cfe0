/*
 * Tests for the cost of schema compatibility checks (bridge/codec/compat.c): schemas whose named
 * types are referenced many times are checked in time linear in their pairs of named types
 * (memoised), not in the number of paths through them; a schema is always compatible with
 * itself. The resolution rules themselves are tested in tests/bridge/test_registry.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg_compat.h"

/* This thread's CPU time: the bounds below catch a search gone exponential (seconds of CPU), and
 * a loaded machine, which stretches the wall clock, does not move them. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void append(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *out, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(out);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + len, cap - len, fmt, ap);
    va_end(ap);
}

/* `levels` records of `width` fields; every field of level i has the type of level i + 1 (defined
 * in the first field, named in the others); the last level's fields are `leaf`. `extra` is added
 * as the last level's last field (for an evolution), when not NULL. */
static void nested(char *out, size_t cap, int levels, int width, const char *leaf, const char *extra)
{
    out[0] = '\0';
    for (int level = 0; level < levels; ++level) {
        append(out, cap, "{\"type\":\"record\",\"name\":\"L%d\",\"fields\":[", level);
        if (level == levels - 1) {
            for (int f = 0; f < width; ++f)
                append(out, cap, "%s{\"name\":\"f%d\",\"type\":\"%s\"}", f ? "," : "", f, leaf);
            if (extra != NULL)
                append(out, cap, ",%s", extra);
        } else {
            append(out, cap, "{\"name\":\"f0\",\"type\":");
        }
    }
    append(out, cap, "]}"); /* the last level */
    for (int level = levels - 2; level >= 0; --level) {
        append(out, cap, "}");
        for (int f = 1; f < width; ++f)
            append(out, cap, ",{\"name\":\"f%d\",\"type\":\"L%d\"}", f, level + 1);
        append(out, cap, "]}");
    }
}

static int check(const char *writer, const char *reader, char *err, size_t errlen, double *seconds)
{
    double start = now_s();
    int rc = sg_schema_can_read(writer, strlen(writer), reader, strlen(reader), err, errlen);
    *seconds = now_s() - start;
    return rc;
}

/* The case from the field: 7 levels x 10 fields, 2.6 KB. Walked path by path it is 10^7 record
 * comparisons: it used the whole 200,000-comparison budget (0.17 s) and was then reported
 * incompatible with itself. */
static void test_seven_by_ten(void **state)
{
    (void)state;
    static char v1[16384], v2[16384], v3[16384];
    nested(v1, sizeof(v1), 7, 10, "int", NULL);
    assert_true(strlen(v1) > 2000 && strlen(v1) < 3000);
    char err[512] = "";
    double seconds;
    assert_int_equal(check(v1, v1, err, sizeof(err), &seconds), 1);
    print_message("7x10, itself: %.6f s\n", seconds);
    assert_true(seconds < 0.05);

    /* Not identical, so every pair is walked: a field added with a default (BACKWARD) ... */
    nested(v2, sizeof(v2), 7, 10, "int", "{\"name\":\"added\",\"type\":\"string\",\"default\":\"\"}");
    assert_int_equal(check(v1, v2, err, sizeof(err), &seconds), 1);
    print_message("7x10, v1 read by v2: %.6f s\n", seconds);
    assert_true(seconds < 0.05);
    /* ... a promotion int -> long, and its reverse, which fails on the first path down. */
    nested(v3, sizeof(v3), 7, 10, "long", NULL);
    assert_int_equal(check(v1, v3, err, sizeof(err), &seconds), 1);
    assert_true(seconds < 0.05);
    err[0] = '\0';
    assert_int_equal(check(v3, v1, err, sizeof(err), &seconds), 0);
    print_message("7x10, v3 read by v1 (incompatible): %.6f s: %s\n", seconds, err);
    assert_string_equal(err, "/f0/f0/f0/f0/f0/f0/f0: the writer's long cannot be read as int");
    assert_true(seconds < 0.05);
    /* The added field without a default is refused, naming the deepest path. */
    nested(v2, sizeof(v2), 7, 10, "int", "{\"name\":\"added\",\"type\":\"string\"}");
    assert_int_equal(check(v1, v2, err, sizeof(err), &seconds), 0);
    assert_string_equal(err, "/f0/f0/f0/f0/f0/f0/added: the reader's field added is not in the writer's L6 and has no default");
}

/* Unions of records at every level: the reader's union is probed branch by branch, which
 * multiplied the work by the union width at each level. Wider and deeper than the field case. */
static void test_unions_of_records(void **state)
{
    (void)state;
    static char writer[65536], reader[65536];
    const int levels = 6, width = 8;
    for (int pass = 0; pass < 2; ++pass) {
        char *out = pass == 0 ? writer : reader;
        out[0] = '\0';
        for (int level = 0; level < levels; ++level) {
            append(out, sizeof(writer), "{\"type\":\"record\",\"name\":\"U%d\",\"fields\":[", level);
            if (level == levels - 1) {
                append(out, sizeof(writer), "{\"name\":\"x\",\"type\":\"%s\"}", pass == 0 ? "int" : "double");
            } else {
                /* a union of the next level and `width - 1` small records, each field repeated */
                append(out, sizeof(writer), "{\"name\":\"a\",\"type\":[\"null\",");
                for (int b = 1; b < width; ++b)
                    append(out, sizeof(writer),
                           "{\"type\":\"record\",\"name\":\"S%d_%d\",\"fields\":[{\"name\":\"s\",\"type\":\"int\"}]},", level, b);
            }
        }
        append(out, sizeof(writer), "]}"); /* the last level */
        for (int level = levels - 2; level >= 0; --level) {
            append(out, sizeof(writer), "]}"); /* its union, its field "a" */
            for (int f = 1; f < width; ++f) {
                append(out, sizeof(writer), ",{\"name\":\"a%d\",\"type\":[\"null\"", f);
                for (int b = 1; b < width; ++b)
                    append(out, sizeof(writer), ",\"S%d_%d\"", level, b);
                append(out, sizeof(writer), ",\"U%d\"]}", level + 1);
            }
            append(out, sizeof(writer), "]}");
        }
    }
    char err[512] = "";
    double seconds;
    assert_int_equal(check(writer, reader, err, sizeof(err), &seconds), 1);
    print_message("unions %dx%d: %.6f s\n", levels, width, seconds);
    assert_true(seconds < 0.2);
    assert_int_equal(check(reader, writer, err, sizeof(err), &seconds), 0);
    assert_non_null(strstr(err, "the reader's union has no branch"));
    assert_true(seconds < 0.2);
}

/* A recursive type: the pair in progress is assumed compatible, and a success resting on that
 * assumption must not outlive a failure of the pair. */
static void test_recursive_failure_is_not_memoised_as_success(void **state)
{
    (void)state;
    /* The writer's Node holds a union of [null, Node, Leaf]; the reader's Node cannot read the
     * writer's Node (its "v" is an int, the writer's a string) but can read Leaf. */
    const char *writer = "{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
                         "{\"name\":\"next\",\"type\":[\"null\",\"Node\",{\"type\":\"record\",\"name\":\"Leaf\",\"fields\":["
                         "{\"name\":\"n\",\"type\":\"Node\"}]}]},{\"name\":\"v\",\"type\":\"string\"}]}";
    const char *reader = "{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
                         "{\"name\":\"next\",\"type\":[\"null\",\"Node\",{\"type\":\"record\",\"name\":\"Leaf\",\"fields\":["
                         "{\"name\":\"n\",\"type\":\"Node\"}]}]},{\"name\":\"v\",\"type\":\"int\"}]}";
    char err[512] = "";
    double seconds;
    assert_int_equal(check(writer, reader, err, sizeof(err), &seconds), 0);
    assert_non_null(strstr(err, "string cannot be read as int"));
    assert_int_equal(check(writer, writer, err, sizeof(err), &seconds), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seven_by_ten),
        cmocka_unit_test(test_unions_of_records),
        cmocka_unit_test(test_recursive_failure_is_not_memoised_as_success),
    };
    return cmocka_run_group_tests_name("codec-compat", tests, NULL, NULL);
}
