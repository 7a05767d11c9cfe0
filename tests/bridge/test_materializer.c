/*
 * Tests for the materializer (bridge/materializer.c): the embedded cluster in this process, a
 * librdkafka producer writing with explicit partitions (so offsets are known), and real tables
 * in temp directories. Two tables share the topic, as the config allows.
 *
 * The restart test tampers with a row of one table behind the materializer's back: had the
 * restart re-applied the old records, the tampered row would be overwritten, so "nothing applied
 * twice" is checked on a value, not only on positions.
 */
#define _XOPEN_SOURCE 700 /* nftw() for removing the temp directories */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

#include <librdkafka/rdkafka.h>

#include "sg_cluster.h"
#include "sg_materializer.h"
#include "sg_registry.h"
#include "sg_avro.h"
#include "sg_frame.h"
#include "sg_table.h"

#define TOPIC "users"
#define WAIT_MS 10000

static const char *const table_names[] = {"users", "users2"};

typedef struct {
    char dir[256];
    char dir2[256];
    sg_cluster_t *cluster;
    sg_tables_t *tables;
    sg_table_conf_t table_conf[2];
    sg_conf_t conf;
    pthread_mutex_t mutex;
    size_t progress[2];
} fixture_t;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void make_dir(char *dir, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, size, "%s/sg-mat-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
}

static sg_tables_t *open_tables(const char *dir)
{
    char err[256] = "";
    sg_tables_t *tables = sg_tables_open(dir, table_names, 2, err, sizeof(err));
    assert_non_null(tables);
    return tables;
}

static sg_cluster_t *new_cluster(void)
{
    char err[256] = "";
    sg_cluster_t *cluster = sg_cluster_create(1, err, sizeof(err));
    assert_non_null(cluster);
    assert_int_equal(sg_cluster_create_topic(cluster, TOPIC, 2, 1, err, sizeof(err)), 0);
    return cluster;
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    make_dir(fx->dir, sizeof(fx->dir));
    make_dir(fx->dir2, sizeof(fx->dir2));
    fx->tables = open_tables(fx->dir);
    fx->cluster = new_cluster();
    for (size_t i = 0; i < 2; ++i) {
        fx->table_conf[i].name = (char *)table_names[i];
        fx->table_conf[i].topic = (char *)TOPIC;
    }
    fx->conf.tables = fx->table_conf;
    fx->conf.n_tables = 2;
    pthread_mutex_init(&fx->mutex, NULL);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    sg_tables_close(fx->tables);
    sg_cluster_destroy(fx->cluster);
    nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    nftw(fx->dir2, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    pthread_mutex_destroy(&fx->mutex);
    free(fx);
    return 0;
}

/* -- helpers ---------------------------------------------------------------------------------- */

typedef struct {
    const char *key;   /* NULL: a record without a key */
    const char *value; /* NULL: tombstone; produced as a JSON string ("v1" -> "\"v1\"") unless raw */
    int32_t partition;
    int raw; /* produce value as it is (e.g. not JSON) */
} record_t;

static void produce(sg_cluster_t *cluster, const record_t *records, size_t n)
{
    char err[256];
    rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(rkconf, "bootstrap.servers", sg_cluster_bootstraps(cluster), err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    /* One in-flight request keeps each partition's offsets in the order of this array. */
    assert_int_equal(rd_kafka_conf_set(rkconf, "enable.idempotence", "true", err, sizeof(err)), RD_KAFKA_CONF_OK);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, rkconf, err, sizeof(err));
    assert_non_null(producer);
    for (size_t i = 0; i < n; ++i) {
        const record_t *r = &records[i];
        size_t keylen = r->key != NULL ? strlen(r->key) : 0;
        /* Table values are JSON documents: plain test values travel as JSON strings. */
        char json[256];
        const char *value = r->value;
        if (value != NULL && !r->raw) {
            snprintf(json, sizeof(json), "\"%s\"", r->value);
            value = json;
        }
        size_t valuelen = value != NULL ? strlen(value) : 0;
        rd_kafka_resp_err_t rkerr = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(r->partition),
                                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(r->key, keylen),
                                                      RD_KAFKA_V_VALUE((void *)value, valuelen), RD_KAFKA_V_END);
        assert_int_equal(rkerr, RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(producer);
}

static void on_progress(void *ctx, size_t table_index)
{
    fixture_t *fx = ctx;
    assert_true(table_index < 2);
    pthread_mutex_lock(&fx->mutex);
    fx->progress[table_index]++;
    pthread_mutex_unlock(&fx->mutex);
}

static sg_materializer_t *start(fixture_t *fx, sg_cluster_t *cluster, sg_tables_t *tables)
{
    char err[256] = "";
    sg_materializer_t *m = sg_materializer_create(&fx->conf, sg_cluster_bootstraps(cluster), tables, err, sizeof(err));
    assert_non_null(m);
    assert_int_equal(sg_materializer_start(m, on_progress, fx, err, sizeof(err)), 0);
    return m;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void wait_caught_up(sg_materializer_t *m)
{
    int waited = 0;
    while (!sg_materializer_caught_up(m) && waited < WAIT_MS) {
        sleep_ms(10);
        waited += 10;
    }
    assert_int_equal(sg_materializer_caught_up(m), 1);
}

static int64_t position(sg_tables_t *tables, const char *table, int32_t partition)
{
    char err[256];
    int64_t next_offset = -1;
    assert_true(sg_tables_position(tables, table, TOPIC, partition, &next_offset, NULL, err, sizeof(err)) >= 0);
    return next_offset;
}

static void wait_position(sg_tables_t *tables, const char *table, int32_t partition, int64_t expected)
{
    for (int waited = 0; position(tables, table, partition) < expected && waited < WAIT_MS; waited += 10)
        sleep_ms(10);
    assert_int_equal(position(tables, table, partition), expected);
}

/* The value of key, or NULL when absent; owned. */
static char *get(sg_tables_t *tables, const char *table, const char *key)
{
    char err[256];
    void *value = NULL;
    size_t len = 0;
    int rc = sg_tables_get(tables, table, key, strlen(key), &value, &len, NULL, NULL, err, sizeof(err));
    assert_true(rc == 0 || rc == 1);
    if (value != NULL) { /* back from its JSON string */
        char *text = value;
        assert_true(len >= 2 && text[0] == '"' && text[len - 1] == '"');
        memmove(text, text + 1, len - 2);
        text[len - 2] = '\0';
    }
    return value;
}

static void assert_row(sg_tables_t *tables, const char *table, const char *key, const char *expected)
{
    char *value = get(tables, table, key);
    if (expected == NULL) {
        assert_null(value);
    } else {
        assert_non_null(value);
        assert_string_equal(value, expected);
    }
    free(value);
}

static int append_row(void *arg, const void *key, size_t keylen, const void *value, size_t valuelen,
                      const sg_table_version_t *version)
{
    (void)version;
    char *out = arg;
    size_t used = strlen(out);
    assert_true(valuelen >= 2);
    snprintf(out + used, 4096 - used, "%.*s=%.*s;", (int)keylen, (const char *)key, (int)valuelen - 2, (const char *)value + 1);
    return 0;
}

static int count_row(void *arg, const void *key, size_t keylen, const void *value, size_t valuelen,
                     const sg_table_version_t *version)
{
    (void)key, (void)keylen, (void)value, (void)valuelen, (void)version;
    ++*(size_t *)arg;
    return 0;
}

/* Every row of the table as "k=v;..." in key order, into a 4096-byte buffer. */
static void dump(sg_tables_t *tables, const char *table, char *out)
{
    char err[256];
    char *cursor = NULL;
    out[0] = '\0';
    sg_table_scan_t query = {.limit = SG_TABLE_SCAN_MAX_LIMIT};
    assert_true(sg_tables_scan(tables, table, &query, append_row, out, &cursor, NULL, err, sizeof(err)) >= 0);
    assert_null(cursor);
}

static const record_t first_records[] = {
    {"a", "1", 0}, {"b", "1", 0}, {"a", "2", 0},                  /* p0: offsets 0..2, later record wins */
    {"c", "1", 1}, {"d", "1", 1}, {"c", NULL, 1}, {NULL, "x", 1}, /* p1: 0..3, tombstone, no key */
};

/* -- tests ------------------------------------------------------------------------------------ */

static void test_create_errors(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_materializer_destroy(NULL);

    sg_table_conf_t unknown = {.name = (char *)"nope", .topic = (char *)TOPIC};
    sg_conf_t conf = {.tables = &unknown, .n_tables = 1};
    assert_null(sg_materializer_create(&conf, sg_cluster_bootstraps(fx->cluster), fx->tables, err, sizeof(err)));
    assert_non_null(strstr(err, "nope"));

    sg_kv_t bad = {.key = (char *)"no.such.property", .value = (char *)"1"};
    fx->conf.kafka.properties = &bad;
    fx->conf.kafka.n_properties = 1;
    err[0] = '\0';
    assert_null(sg_materializer_create(&fx->conf, sg_cluster_bootstraps(fx->cluster), fx->tables, err, sizeof(err)));
    assert_non_null(strstr(err, "no.such.property"));

    /* A valid user property is accepted (and overrides the default). */
    sg_kv_t good = {.key = (char *)"fetch.wait.max.ms", .value = (char *)"20"};
    fx->conf.kafka.properties = &good;
    sg_materializer_t *m = sg_materializer_create(&fx->conf, sg_cluster_bootstraps(fx->cluster), fx->tables, err, sizeof(err));
    assert_non_null(m);
    assert_int_equal(sg_materializer_caught_up(m), 0);
    sg_materializer_destroy(m);
    fx->conf.kafka.properties = NULL;
    fx->conf.kafka.n_properties = 0;
}

static void test_apply(void **state)
{
    fixture_t *fx = *state;
    produce(fx->cluster, first_records, sizeof(first_records) / sizeof(first_records[0]));
    sg_materializer_t *m = start(fx, fx->cluster, fx->tables);
    wait_caught_up(m);
    for (size_t t = 0; t < 2; ++t) {
        assert_row(fx->tables, table_names[t], "a", "2");
        assert_row(fx->tables, table_names[t], "b", "1");
        assert_row(fx->tables, table_names[t], "c", NULL);
        assert_row(fx->tables, table_names[t], "d", "1");
        assert_int_equal(position(fx->tables, table_names[t], 0), 3);
        assert_int_equal(position(fx->tables, table_names[t], 1), 4); /* past the keyless record */
        char *source = NULL;
        char err[256];
        assert_int_equal(sg_tables_get_source(fx->tables, table_names[t], &source, err, sizeof(err)), 0);
        assert_true(strlen(source) > 0);
        free(source);
    }
    pthread_mutex_lock(&fx->mutex);
    assert_true(fx->progress[0] >= 1 && fx->progress[1] >= 1);
    pthread_mutex_unlock(&fx->mutex);

    /* Live: a record produced after catching up is applied too, and deletes work on it. */
    const record_t live[] = {{"e", "1", 0}, {"d", NULL, 1}};
    produce(fx->cluster, live, 2);
    wait_position(fx->tables, "users", 0, 4);
    wait_position(fx->tables, "users2", 1, 5);
    assert_row(fx->tables, "users", "e", "1");
    assert_row(fx->tables, "users2", "d", NULL);
    assert_int_equal(sg_materializer_caught_up(m), 1);
    sg_materializer_destroy(m);
}

static void test_restart_resumes(void **state)
{
    fixture_t *fx = *state;
    produce(fx->cluster, first_records, sizeof(first_records) / sizeof(first_records[0]));
    sg_materializer_t *m = start(fx, fx->cluster, fx->tables);
    wait_caught_up(m);
    sg_materializer_destroy(m);
    uint64_t commits = sg_tables_commit_count(fx->tables, "users");
    assert_true(commits >= 1);

    /* Tamper with users2's row b through a position of another topic: re-applying p0 from the
     * start would set it back to "1". */
    char err[256];
    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users2");
    assert_int_equal(sg_table_batch_put(batch, "elsewhere", 0, 0, 1, "b", 1, "\"tampered\"", 10, err, sizeof(err)), 0);
    assert_int_equal(sg_table_batch_commit(batch, err, sizeof(err)), 0);
    sg_table_batch_destroy(batch);

    const record_t more[] = {{"a", "3", 0}, {"f", "1", 0}, {"d", "2", 1}, {"a", NULL, 0}};
    produce(fx->cluster, more, 4);
    m = start(fx, fx->cluster, fx->tables);
    wait_caught_up(m);
    sg_materializer_destroy(m);
    /* 4 new records in a few rounds at most, and the tampered row survived: nothing replayed... */
    uint64_t new_commits = sg_tables_commit_count(fx->tables, "users") - commits;
    assert_true(new_commits >= 1 && new_commits <= 4);
    assert_row(fx->tables, "users2", "b", "tampered");
    assert_row(fx->tables, "users", "b", "1");
    assert_row(fx->tables, "users", "a", NULL);
    assert_row(fx->tables, "users", "f", "1");
    assert_row(fx->tables, "users", "d", "2");
    for (size_t t = 0; t < 2; ++t) {
        assert_int_equal(position(fx->tables, table_names[t], 0), 6);
        assert_int_equal(position(fx->tables, table_names[t], 1), 5);
    }

    /* ... and the result equals a rebuild from scratch of the same topic. */
    sg_tables_t *fresh = open_tables(fx->dir2);
    m = start(fx, fx->cluster, fresh);
    wait_caught_up(m);
    sg_materializer_destroy(m);
    char resumed[4096], rebuilt[4096];
    dump(fx->tables, "users", resumed);
    dump(fresh, "users", rebuilt);
    assert_string_equal(resumed, "b=1;d=2;f=1;");
    assert_string_equal(resumed, rebuilt);
    assert_int_equal(position(fresh, "users", 0), 6);
    assert_int_equal(position(fresh, "users", 1), 5);
    sg_tables_close(fresh);
}

static void test_cluster_change_rebuilds(void **state)
{
    fixture_t *fx = *state;
    produce(fx->cluster, first_records, sizeof(first_records) / sizeof(first_records[0]));
    sg_materializer_t *m = start(fx, fx->cluster, fx->tables);
    wait_caught_up(m);
    sg_materializer_destroy(m);
    char err[256];
    char *old_source = NULL;
    assert_int_equal(sg_tables_get_source(fx->tables, "users", &old_source, err, sizeof(err)), 0);

    /* A new embedded cluster (the old one still up, so its id cannot be reused) with other data:
     * at least as many records per partition as the table's positions, so only the cluster id
     * tells them apart. */
    sg_cluster_t *other = new_cluster();
    const record_t records[] = {{"x", "1", 0}, {"y", "1", 0}, {"x", "2", 0},  {"z", "1", 0},
                                {"w", "1", 1}, {"v", "1", 1}, {"w", NULL, 1}, {"u", "1", 1}};
    produce(other, records, 8);
    m = start(fx, other, fx->tables);
    wait_caught_up(m);
    sg_materializer_destroy(m);
    for (size_t t = 0; t < 2; ++t) {
        char rows[4096];
        dump(fx->tables, table_names[t], rows);
        assert_string_equal(rows, "u=1;v=1;x=2;y=1;z=1;");
        assert_int_equal(position(fx->tables, table_names[t], 0), 4);
        assert_int_equal(position(fx->tables, table_names[t], 1), 4);
        char *source = NULL;
        assert_int_equal(sg_tables_get_source(fx->tables, table_names[t], &source, err, sizeof(err)), 0);
        assert_string_not_equal(source, old_source);
        free(source);
    }
    free(old_source);
    sg_cluster_destroy(other);
}

static void test_position_beyond_end_rebuilds(void **state)
{
    fixture_t *fx = *state;
    produce(fx->cluster, first_records, sizeof(first_records) / sizeof(first_records[0]));
    sg_materializer_t *m = start(fx, fx->cluster, fx->tables);
    wait_caught_up(m);
    sg_materializer_destroy(m);

    /* users claims to have applied p0 up to offset 100 of a topic that ends at 3, and holds a row
     * the topic never had: both must go. */
    char err[256];
    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    assert_int_equal(sg_table_batch_put(batch, TOPIC, 0, 99, 1, "ghost", 5, "1", 1, err, sizeof(err)), 0);
    assert_int_equal(sg_table_batch_commit(batch, err, sizeof(err)), 0);
    sg_table_batch_destroy(batch);
    assert_int_equal(position(fx->tables, "users", 0), 100);

    m = start(fx, fx->cluster, fx->tables);
    wait_caught_up(m);
    sg_materializer_destroy(m);
    char rows[4096], rows2[4096];
    dump(fx->tables, "users", rows);
    dump(fx->tables, "users2", rows2);
    assert_string_equal(rows, "a=2;b=1;d=1;");
    assert_string_equal(rows, rows2);
    assert_int_equal(position(fx->tables, "users", 0), 3);
    assert_int_equal(position(fx->tables, "users", 1), 4);
}

/* Large records on p0 of another key each, until the embedded cluster's log cap (librdkafka's
 * mock keeps about 5 MB per partition) has deleted the first offsets. Returns the log start. */
static int64_t push_log_start_past(sg_cluster_t *cluster, int64_t offset)
{
    char err[256];
    rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(rkconf, "bootstrap.servers", sg_cluster_bootstraps(cluster), err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(rkconf, "message.max.bytes", "2000000", err, sizeof(err)), RD_KAFKA_CONF_OK);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, rkconf, err, sizeof(err));
    assert_non_null(producer);
    size_t len = 700 * 1024;
    char *value = malloc(len);
    assert_non_null(value);
    memset(value, 'z', len);
    value[0] = '"';
    value[len - 1] = '"';
    int64_t low = 0, high = 0;
    for (int i = 0; i < 40 && low <= offset; ++i) {
        char key[16];
        snprintf(key, sizeof(key), "big%d", i);
        assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, strlen(key)),
                                           RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(rd_kafka_flush(producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(rd_kafka_query_watermark_offsets(producer, TOPIC, 0, &low, &high, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    free(value);
    rd_kafka_destroy(producer);
    assert_true(low > offset);
    return low;
}

/* The topic deleted records the tables had not applied yet (retention; here the mock cluster's
 * size cap): resuming at the log start would keep rows those records replaced or deleted. The
 * tables are rebuilt, counted, and equal a build from scratch. */
static void test_position_below_log_start_rebuilds(void **state)
{
    fixture_t *fx = *state;
    const record_t first[] = {{"a", "1", 0}, {"b", "1", 0}, {"c", "1", 1}};
    produce(fx->cluster, first, 3);
    sg_materializer_t *m = start(fx, fx->cluster, fx->tables);
    wait_caught_up(m);
    assert_int_equal(sg_materializer_rebuilds(m), 0);
    sg_materializer_destroy(m);
    assert_int_equal(position(fx->tables, "users", 0), 2);

    /* While the gateway is down: "a" is deleted, then the log start moves past offset 2. */
    const record_t gone[] = {{"a", NULL, 0}};
    produce(fx->cluster, gone, 1);
    int64_t low = push_log_start_past(fx->cluster, 2);

    m = start(fx, fx->cluster, fx->tables);
    wait_caught_up(m);
    assert_int_equal(sg_materializer_rebuilds(m), 2); /* both tables of the topic */
    sg_materializer_destroy(m);
    char err[256];
    void *value = NULL;
    size_t len = 0;
    /* Rows from before the log start are gone with the rebuild, like in a build from scratch. */
    assert_int_equal(sg_tables_get(fx->tables, "users", "a", 1, &value, &len, NULL, NULL, err, sizeof(err)), 1);
    assert_int_equal(sg_tables_get(fx->tables, "users", "b", 1, &value, &len, NULL, NULL, err, sizeof(err)), 1);
    assert_row(fx->tables, "users", "c", "1");
    assert_true(position(fx->tables, "users", 0) > low);

    sg_tables_t *fresh = open_tables(fx->dir2);
    m = start(fx, fx->cluster, fresh);
    wait_caught_up(m);
    assert_int_equal(sg_materializer_rebuilds(m), 0); /* new tables are built, not rebuilt */
    sg_materializer_destroy(m);
    for (size_t t = 0; t < 2; ++t) {
        assert_int_equal(position(fx->tables, table_names[t], 0), position(fresh, table_names[t], 0));
        assert_int_equal(position(fx->tables, table_names[t], 1), position(fresh, table_names[t], 1));
        sg_table_scan_t query = {.limit = SG_TABLE_SCAN_MAX_LIMIT};
        size_t rows = 0, fresh_rows = 0;
        char *cursor = NULL;
        assert_true(sg_tables_scan(fx->tables, table_names[t], &query, count_row, &rows, &cursor, NULL, err, sizeof(err)) >= 0);
        assert_true(sg_tables_scan(fresh, table_names[t], &query, count_row, &fresh_rows, &cursor, NULL, err, sizeof(err)) >= 0);
        assert_int_equal(rows, fresh_rows);
    }
    sg_tables_close(fresh);
}

static void test_empty_topic_is_caught_up(void **state)
{
    fixture_t *fx = *state;
    sg_materializer_t *m = start(fx, fx->cluster, fx->tables);
    wait_caught_up(m);
    assert_int_equal(position(fx->tables, "users", 0), 0);
    const record_t records[] = {{"k", "v", 1}};
    produce(fx->cluster, records, 1);
    wait_position(fx->tables, "users", 1, 1);
    assert_row(fx->tables, "users", "k", "v");
    sg_materializer_destroy(m);
}

static void test_values_that_are_not_json_are_skipped(void **state)
{
    fixture_t *fx = *state;
    sg_materializer_t *m = start(fx, fx->cluster, fx->tables);
    wait_caught_up(m);
    /* "x" keeps its JSON value; the broken records after it are skipped, yet the positions move
     * past them (a poison record never stops a table) and the count says how many. */
    const record_t records[] = {{"x", "good", 0},
                                {"x", "{not json", 0, 1},
                                {"y", "plain words", 0, 1},
                                {"z", "{\"ok\":1} trailing", 0, 1},
                                {"w", "42", 0, 1}};
    produce(fx->cluster, records, 5);
    wait_position(fx->tables, "users", 0, 5);
    wait_position(fx->tables, "users2", 0, 5);
    assert_row(fx->tables, "users", "x", "good");
    assert_row(fx->tables, "users", "y", NULL);
    assert_row(fx->tables, "users", "z", NULL);
    char err[256];
    void *value = NULL;
    size_t len = 0;
    /* a bare JSON number is a JSON document */
    assert_int_equal(sg_tables_get(fx->tables, "users", "w", 1, &value, &len, NULL, NULL, err, sizeof(err)), 0);
    assert_string_equal(value, "42");
    free(value);
    assert_int_equal(sg_materializer_skipped(m), 3);
    sg_materializer_destroy(m);
}

/* Avro values in the Confluent wire format are stored as the JSON they decode to, found by their
 * schema id in the registry; an unknown id or bytes that do not decode are skipped and counted. */
static void test_confluent_framed_values_are_decoded(void **state)
{
    fixture_t *fx = *state;
    static const char schema_text[] = "{\"type\":\"record\",\"name\":\"User\",\"fields\":[{\"name\":\"name\",\"type\":\"string\"},"
                                      "{\"name\":\"age\",\"type\":\"int\"}]}";
    sg_registry_t *reg = sg_registry_create_local();
    assert_non_null(reg);
    char *key = NULL, *value = NULL, err[256];
    uint32_t id = 0;
    int version = 0;
    assert_int_equal(sg_registry_next_claim(reg, "users-value", schema_text, strlen(schema_text), &id, &version, err, sizeof(err)),
                     0);
    assert_int_equal(
        sg_registry_schema_record("users-value", version, id, schema_text, strlen(schema_text), &key, &value, err, sizeof(err)), 0);
    assert_int_equal(sg_registry_apply(reg, key, strlen(key), value, strlen(value), 0), 1);
    free(key);
    free(value);
    const sg_registry_schema_t *schema = sg_registry_lookup(reg, id);
    assert_non_null(schema);

    json_error_t jerr;
    json_t *doc = json_loads("{\"name\":\"Ada\",\"age\":36}", 0, &jerr);
    void *avro = NULL, *framed = NULL, *unknown = NULL;
    size_t avro_len = 0;
    char path[128];
    assert_int_equal(
        sg_avro_from_json(sg_registry_schema_avro(schema), doc, &avro, &avro_len, path, sizeof(path), err, sizeof(err)), 0);
    json_decref(doc);
    size_t framed_len = sg_avro_frame(id, avro, avro_len, &framed);
    size_t unknown_len = sg_avro_frame(id + 99, avro, avro_len, &unknown);
    unsigned char broken[] = {0, 0, 0, 0, (unsigned char)id, 0xff}; /* the User id, but not a User */

    sg_materializer_t *m = sg_materializer_create(&fx->conf, sg_cluster_bootstraps(fx->cluster), fx->tables, err, sizeof(err));
    assert_non_null(m);
    sg_materializer_set_registry(m, reg);
    assert_int_equal(sg_materializer_start(m, on_progress, fx, err, sizeof(err)), 0);
    wait_caught_up(m);
    char errstr[256];
    rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
    rd_kafka_conf_set(rkconf, "bootstrap.servers", sg_cluster_bootstraps(fx->cluster), errstr, sizeof(errstr));
    rd_kafka_conf_set(rkconf, "enable.idempotence", "true", errstr, sizeof(errstr));
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, rkconf, errstr, sizeof(errstr));
    assert_non_null(producer);
    const struct {
        const char *key;
        const void *value;
        size_t len;
    } records[] = {{"ada", framed, framed_len}, {"nobody", unknown, unknown_len}, {"bad", broken, sizeof(broken)}};
    for (size_t i = 0; i < 3; ++i)
        assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_KEY(records[i].key, strlen(records[i].key)),
                                           RD_KAFKA_V_VALUE((void *)records[i].value, records[i].len), RD_KAFKA_V_END),
                         0);
    assert_int_equal(rd_kafka_flush(producer, 10000), 0);
    rd_kafka_destroy(producer);
    wait_position(fx->tables, "users", 0, 3);
    void *row = NULL;
    size_t row_len = 0;
    assert_int_equal(sg_tables_get(fx->tables, "users", "ada", 3, &row, &row_len, NULL, NULL, err, sizeof(err)), 0);
    assert_string_equal(row, "{\"name\":\"Ada\",\"age\":36}");
    free(row);
    assert_int_equal(sg_tables_get(fx->tables, "users", "nobody", 6, &row, &row_len, NULL, NULL, err, sizeof(err)), 1);
    assert_int_equal(sg_tables_get(fx->tables, "users", "bad", 3, &row, &row_len, NULL, NULL, err, sizeof(err)), 1);
    assert_int_equal(sg_materializer_skipped(m), 2);
    sg_materializer_destroy(m);
    sg_registry_destroy(reg);
    free(avro);
    free(framed);
    free(unknown);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_values_that_are_not_json_are_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confluent_framed_values_are_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_change_rebuilds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_position_beyond_end_rebuilds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_position_below_log_start_rebuilds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_topic_is_caught_up, setup, teardown),
    };
    return cmocka_run_group_tests_name("materializer", tests, NULL, NULL);
}
