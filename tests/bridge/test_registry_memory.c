/*
 * The schema registry's memory (bridge/registry_state.c): a stored schema costs its canonical
 * text, once however many subjects hold it; parsed trees are kept for a bounded set of hot schemas
 * only. Its own executable: the 158 schemas of ~200 KiB take a while to canonicalize and parse.
 *
 * Under AddressSanitizer RSS says nothing about our allocations (shadow memory, the quarantine
 * of freed blocks): there the schemas are 16 KiB, still more than the LRU holds, so eviction
 * and reuse run under the sanitizer, and the RSS bound is not asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sg_registry.h"

#if defined(__SANITIZE_ADDRESS__)
#define SCHEMA_BYTES (16 * 1024)
#define CHECK_RSS 0
#else
#define SCHEMA_BYTES (200 * 1024)
#define CHECK_RSS 1
#endif

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    long pages = 0, resident = 0;
    assert_int_equal(fscanf(f, "%ld %ld", &pages, &resident), 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A schema of ~SCHEMA_BYTES: a record of optional string fields (~2900 in 200 KiB), names unique by n. */
static char *wide_schema(int n, size_t *len)
{
    size_t cap = 256 * 1024;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t at = (size_t)snprintf(text, cap, "{\"type\":\"record\",\"name\":\"Wide%d\",\"fields\":[", n);
    for (int f = 0; at < SCHEMA_BYTES; ++f)
        at += (size_t)snprintf(text + at, cap - at, "%s{\"name\":\"field_%d_%d\",\"type\":[\"null\",\"string\"],\"default\":null}",
                               f ? "," : "", n, f);
    at += (size_t)snprintf(text + at, cap - at, "]}");
    *len = at;
    return text;
}

/* The registry's memory per stored schema is its text: parsed trees (Avro-C's and Jansson's,
 * ~25x the text) are kept only for a bounded set of hot schemas. 158 schemas of ~200 KiB filled
 * the 32 MiB text cap and took RSS from 24 MB to 812 MB when every version kept its trees. */
static void test_memory_per_schema_is_bounded(void **state)
{
    (void)state;
    sg_registry_t *reg = sg_registry_create_local();
    assert_non_null(reg);
    long before = rss_kib();
    size_t total = 0;
    int applied = 0;
    for (int i = 0; i < 158; ++i) {
        size_t len;
        char *text = wide_schema(i, &len);
        char subject[32], err[256], *key = NULL, *value = NULL;
        snprintf(subject, sizeof(subject), "wide-%d", i);
        assert_int_equal(sg_registry_schema_record(subject, 1, (uint32_t)i + 1, text, len, &key, &value, err, sizeof(err)), 0);
        applied += sg_registry_apply(reg, key, strlen(key), value, strlen(value), i);
        /* The same schema under a second subject: stored once. */
        free(key);
        free(value);
        snprintf(subject, sizeof(subject), "copy-%d", i);
        assert_int_equal(sg_registry_schema_record(subject, 1, (uint32_t)i + 1, text, len, &key, &value, err, sizeof(err)), 0);
        assert_int_equal(sg_registry_apply(reg, key, strlen(key), value, strlen(value), 1000 + i), 1);
        total += len;
        free(key);
        free(value);
        free(text);
    }
    assert_int_equal(applied, 158);
    /* Decoding by id parses on demand: every schema once, then the hot one again and again. */
    for (uint32_t id = 1; id <= 158; ++id) {
        const sg_registry_schema_t *schema = sg_registry_lookup(reg, id);
        assert_non_null(schema);
        char err[256];
        const sg_avro_schema_t *avro = sg_registry_schema_avro_get(schema, err, sizeof(err));
        assert_non_null(avro);
        sg_registry_schema_avro_put(schema, avro);
        avro = sg_registry_schema_avro_get(sg_registry_lookup(reg, 1), err, sizeof(err));
        assert_non_null(avro);
        sg_registry_schema_avro_put(sg_registry_lookup(reg, 1), avro);
    }
    long after = rss_kib();
    print_message("158 schemas, %.1f MiB of text: RSS %ld -> %ld KiB (+%.1f MiB)\n", (double)total / 1048576.0, before, after,
                  (double)(after - before) / 1024.0);
    /* The text once, plus the bounded cache of parsed trees. */
    if (CHECK_RSS)
        assert_true(after - before < 128 * 1024);
    sg_registry_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_per_schema_is_bounded),
    };
    return cmocka_run_group_tests_name("bridge-registry-memory", tests, NULL, NULL);
}
