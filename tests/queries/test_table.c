/*
 * Tests for materialized tables (queries/table.c) against a real RocksDB in a temp directory per
 * test. The crash test plays materializer: it applies a stream of "increment" records (each one
 * reads the key's counter and writes counter + 1), so a record applied twice or skipped shows up
 * as a wrong counter, not just as a wrong position.
 */
#define _XOPEN_SOURCE 700 /* nftw() for removing the temp directories */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "sg_store.h"
#include "sg_table.h"
#include "tmpfs.h"

static const char *const two_tables[] = {"users", "orders"};

typedef struct {
    char dir[256];
    char dir2[256];
    sg_tables_t *tables;
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
    snprintf(dir, size, "%s/sg-table-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
}

static sg_tables_t *open_tables(const char *dir)
{
    char err[256] = "";
    sg_tables_t *tables = sg_tables_open(dir, two_tables, 2, err, sizeof(err));
    assert_non_null(tables);
    assert_string_equal(err, "");
    return tables;
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    make_dir(fx->dir, sizeof(fx->dir));
    make_dir(fx->dir2, sizeof(fx->dir2));
    fx->tables = open_tables(fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    sg_tables_close(fx->tables);
    nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    nftw(fx->dir2, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* -- helpers ---------------------------------------------------------------------------------- */

static int put(sg_table_batch_t *batch, const char *topic, int32_t partition, int64_t offset, int64_t ts, const char *key,
               const char *value)
{
    char err[256] = "";
    int ret = sg_table_batch_put(batch, topic, partition, offset, ts, key, strlen(key), value, value != NULL ? strlen(value) : 0,
                                 err, sizeof(err));
    assert_true(ret >= 0);
    return ret;
}

static void commit(sg_table_batch_t *batch)
{
    char err[256] = "";
    assert_int_equal(sg_table_batch_commit(batch, err, sizeof(err)), 0);
    assert_string_equal(err, "");
}

/* Reads key; returns an owned value or NULL when absent (asserting no error). */
static char *get(sg_tables_t *tables, const char *table, const char *key, sg_table_version_t *version)
{
    char err[256] = "";
    void *value = NULL;
    size_t len = 99;
    int ret = sg_tables_get(tables, table, key, strlen(key), &value, &len, version, NULL, err, sizeof(err));
    assert_true(ret == 0 || ret == 1);
    if (ret == 1) {
        assert_null(value);
        assert_int_equal(len, 0);
        return NULL;
    }
    assert_int_equal(strlen(value), len);
    return value;
}

static void assert_row(sg_tables_t *tables, const char *table, const char *key, const char *want)
{
    char *value = get(tables, table, key, NULL);
    if (want == NULL) {
        assert_null(value);
        return;
    }
    assert_non_null(value);
    assert_string_equal(value, want);
    free(value);
}

static void assert_position(sg_tables_t *tables, const char *table, const char *topic, int32_t partition, int want_ret,
                            int64_t want_next, int64_t want_stream)
{
    char err[256] = "";
    int64_t next = -7, stream = -7;
    assert_int_equal(sg_tables_position(tables, table, topic, partition, &next, &stream, err, sizeof(err)), want_ret);
    assert_int_equal(next, want_next);
    assert_int_equal(stream, want_stream);
}

/* -- rows ------------------------------------------------------------------------------------- */

static void test_upsert_then_get(void **state)
{
    fixture_t *fx = *state;
    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    assert_non_null(batch);
    assert_int_equal(put(batch, "users-topic", 3, 41, 1000, "alice", "{\"age\":30}"), 0);
    assert_int_equal(put(batch, "users-topic", 3, 42, 1001, "empty", ""), 0);
    assert_int_equal(sg_table_batch_count(batch), 2);
    /* Not visible before the commit. */
    assert_row(fx->tables, "users", "alice", NULL);
    commit(batch);
    assert_int_equal(sg_table_batch_count(batch), 0);

    sg_table_version_t version;
    char *value = get(fx->tables, "users", "alice", &version);
    assert_string_equal(value, "{\"age\":30}");
    free(value);
    assert_int_equal(version.partition, 3);
    assert_int_equal(version.offset, 41);
    assert_int_equal(version.timestamp_ms, 1000);
    assert_row(fx->tables, "users", "empty", "");
    assert_row(fx->tables, "users", "bob", NULL);
    /* Tables are separate: the same key in another table is absent. */
    assert_row(fx->tables, "orders", "alice", NULL);
    sg_table_batch_destroy(batch);
}

static void test_tombstone_deletes(void **state)
{
    fixture_t *fx = *state;
    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    put(batch, "t", 0, 0, 10, "alice", "a");
    put(batch, "t", 0, 1, 11, "bob", "b");
    commit(batch);
    assert_row(fx->tables, "users", "alice", "a");
    assert_int_equal(put(batch, "t", 0, 2, 12, "alice", NULL), 0);
    assert_int_equal(put(batch, "t", 0, 3, 13, "never-there", NULL), 0);
    commit(batch);
    assert_row(fx->tables, "users", "alice", NULL);
    assert_row(fx->tables, "users", "never-there", NULL);
    assert_row(fx->tables, "users", "bob", "b");
    /* A tombstone advances the position like any record. */
    assert_position(fx->tables, "users", "t", 0, 0, 4, 13);
    sg_table_batch_destroy(batch);
}

static void test_later_record_wins(void **state)
{
    fixture_t *fx = *state;
    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    put(batch, "t", 0, 0, 10, "k", "first");
    put(batch, "t", 0, 1, 11, "k", "second");
    commit(batch);
    sg_table_version_t v1, v2, v3;
    char *value = get(fx->tables, "users", "k", &v1);
    assert_string_equal(value, "second");
    free(value);
    assert_int_equal(v1.offset, 1);
    put(batch, "t", 0, 2, 12, "k", "third");
    put(batch, "t", 0, 3, 13, "k", NULL);
    put(batch, "t", 0, 4, 14, "k", "fourth");
    commit(batch);
    value = get(fx->tables, "users", "k", &v2);
    assert_string_equal(value, "fourth");
    free(value);
    assert_int_equal(v2.offset, 4);
    assert_int_equal(v2.timestamp_ms, 14);
    assert_true(v1.etag != v2.etag);
    /* The same value written again by a later record gets a new ETag; an unchanged row keeps it. */
    put(batch, "t", 0, 5, 15, "k", "fourth");
    commit(batch);
    value = get(fx->tables, "users", "k", &v3);
    free(value);
    assert_true(v3.etag != v2.etag);
    value = get(fx->tables, "users", "k", &v2);
    free(value);
    assert_true(v3.etag == v2.etag);
    /* Within one batch the last record of a key wins whatever the key order of the others,
     * across partitions too, and a tombstone last deletes. */
    put(batch, "t", 1, 0, 20, "m", "m-first");
    put(batch, "t", 0, 6, 21, "z", "z-only");
    put(batch, "t", 0, 7, 22, "m", "m-second");
    put(batch, "t", 1, 1, 23, "a", "a-first");
    put(batch, "t", 0, 8, 24, "k", NULL);
    put(batch, "t", 1, 2, 25, "a", "a-second");
    commit(batch);
    value = get(fx->tables, "users", "m", &v1);
    assert_string_equal(value, "m-second");
    free(value);
    assert_int_equal(v1.partition, 0);
    value = get(fx->tables, "users", "a", NULL);
    assert_string_equal(value, "a-second");
    free(value);
    value = get(fx->tables, "users", "z", NULL);
    assert_string_equal(value, "z-only");
    free(value);
    assert_null(get(fx->tables, "users", "k", NULL));
    sg_table_batch_destroy(batch);
}

/* -- positions -------------------------------------------------------------------------------- */

typedef struct {
    char topic[8][64];
    int32_t partition[8];
    int64_t next[8], stream[8];
    size_t n;
} pos_list_t;

static int collect_pos(void *arg, const char *topic, int32_t partition, int64_t next_offset, int64_t stream_time)
{
    pos_list_t *list = arg;
    if (list->n == 8)
        return 1;
    snprintf(list->topic[list->n], sizeof(list->topic[0]), "%s", topic);
    list->partition[list->n] = partition;
    list->next[list->n] = next_offset;
    list->stream[list->n] = stream_time;
    list->n++;
    return 0;
}

static void test_positions_stored_with_rows(void **state)
{
    fixture_t *fx = *state;
    assert_position(fx->tables, "users", "t", 0, 1, 0, 0);
    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    put(batch, "t", 1, 100, 5000, "a", "1");
    put(batch, "t", 1, 101, 4000, "b", "2"); /* older timestamp: stream time stays at the max */
    put(batch, "t", 0, 7, 3000, "c", "3");
    put(batch, "s", 0, 9, -1, "d", "4");     /* no timestamp: stream time stays 0 */
    put(batch, "t", 1, 105, 6000, "a", "5"); /* a gap: allowed (compacted topic) */
    commit(batch);
    sg_table_batch_destroy(batch);

    sg_tables_close(fx->tables);
    fx->tables = open_tables(fx->dir);
    assert_position(fx->tables, "users", "t", 1, 0, 106, 6000);
    assert_position(fx->tables, "users", "t", 0, 0, 8, 3000);
    assert_position(fx->tables, "users", "s", 0, 0, 10, 0);
    assert_position(fx->tables, "users", "t", 2, 1, 0, 0);
    assert_position(fx->tables, "orders", "t", 1, 1, 0, 0);
    assert_row(fx->tables, "users", "a", "5");
    assert_row(fx->tables, "users", "b", "2");
    assert_row(fx->tables, "users", "c", "3");
    assert_row(fx->tables, "users", "d", "4");

    pos_list_t list = {0};
    char err[256] = "";
    assert_int_equal(sg_tables_positions(fx->tables, "users", collect_pos, &list, err, sizeof(err)), 0);
    assert_int_equal(list.n, 3);
    assert_string_equal(list.topic[0], "s");
    assert_string_equal(list.topic[1], "t");
    assert_int_equal(list.partition[1], 0);
    assert_int_equal(list.next[1], 8);
    assert_string_equal(list.topic[2], "t");
    assert_int_equal(list.partition[2], 1);
    assert_int_equal(list.next[2], 106);
    assert_int_equal(list.stream[2], 6000);
    list.n = 0;
    assert_int_equal(sg_tables_positions(fx->tables, "orders", collect_pos, &list, err, sizeof(err)), 0);
    assert_int_equal(list.n, 0);

    /* Below the stored position: ignored, row unchanged; advance raises the position alone. */
    batch = sg_table_batch_new(fx->tables, "users");
    assert_int_equal(put(batch, "t", 1, 105, 9000, "a", "stale"), 1);
    assert_int_equal(put(batch, "t", 1, 50, 9000, "zz", "stale"), 1);
    assert_int_equal(sg_table_batch_count(batch), 0);
    assert_int_equal(sg_table_batch_advance(batch, "t", 1, 100, err, sizeof(err)), 1);
    assert_int_equal(sg_table_batch_advance(batch, "t", 1, 110, err, sizeof(err)), 0);
    assert_int_equal(put(batch, "t", 1, 109, 9000, "a", "stale"), 1);
    commit(batch);
    sg_table_batch_destroy(batch);
    assert_row(fx->tables, "users", "a", "5");
    assert_row(fx->tables, "users", "zz", NULL);
    assert_position(fx->tables, "users", "t", 1, 0, 110, 6000);
}

/* -- crash between batches -------------------------------------------------------------------- */

#define STREAM_LEN 120
#define STREAM_KEYS 7

typedef struct {
    int32_t partition;
    int64_t offset;
    char key[16];
} increment_t;

/* Two partitions, interleaved; keys repeat so that counters accumulate. */
static void make_stream(increment_t *stream)
{
    int64_t next[2] = {0, 0};
    for (int i = 0; i < STREAM_LEN; i++) {
        stream[i].partition = (i % 3 == 0) ? 1 : 0;
        stream[i].offset = next[stream[i].partition]++;
        snprintf(stream[i].key, sizeof(stream[i].key), "k%d", (i * 5) % STREAM_KEYS);
    }
}

/* The test's materializer: counters of this batch not yet committed, else the stored row. */
typedef struct {
    sg_tables_t *tables;
    sg_table_batch_t *batch;
    long pending[STREAM_KEYS];
    int has_pending[STREAM_KEYS];
    int applied, ignored;
} applier_t;

static void applier_begin(applier_t *ap, sg_tables_t *tables)
{
    memset(ap, 0, sizeof(*ap));
    ap->tables = tables;
    ap->batch = sg_table_batch_new(tables, "users");
    assert_non_null(ap->batch);
}

static void applier_apply(applier_t *ap, const increment_t *rec)
{
    int k = atoi(rec->key + 1);
    long current = 0;
    if (ap->has_pending[k]) {
        current = ap->pending[k];
    } else {
        char *value = get(ap->tables, "users", rec->key, NULL);
        if (value != NULL)
            current = atol(value);
        free(value);
    }
    char next[32];
    snprintf(next, sizeof(next), "%ld", current + 1);
    if (put(ap->batch, "events", rec->partition, rec->offset, 1000 + rec->offset, rec->key, next) == 0) {
        ap->pending[k] = current + 1;
        ap->has_pending[k] = 1;
        ap->applied++;
    } else {
        ap->ignored++;
    }
}

static void applier_commit(applier_t *ap)
{
    commit(ap->batch);
    memset(ap->has_pending, 0, sizeof(ap->has_pending));
}

static void test_crash_between_batches(void **state)
{
    fixture_t *fx = *state;
    increment_t stream[STREAM_LEN];
    make_stream(stream);

    /* Batch A committed, batch B built but lost in the "crash". */
    applier_t ap;
    applier_begin(&ap, fx->tables);
    for (int i = 0; i < 50; i++)
        applier_apply(&ap, &stream[i]);
    applier_commit(&ap);
    for (int i = 50; i < 90; i++)
        applier_apply(&ap, &stream[i]);
    assert_int_equal(ap.applied, 90);
    sg_table_batch_destroy(ap.batch);
    sg_tables_close(fx->tables);

    fx->tables = open_tables(fx->dir);
    int64_t next0, next1, stream_time;
    char err[256] = "";
    assert_int_equal(sg_tables_position(fx->tables, "users", "events", 0, &next0, &stream_time, err, sizeof(err)), 0);
    assert_int_equal(sg_tables_position(fx->tables, "users", "events", 1, &next1, NULL, err, sizeof(err)), 0);
    /* Batch A = stream[0..49]: partition 1 holds i % 3 == 0, i.e. 17 records, partition 0 33. */
    assert_int_equal(next1, 17);
    assert_int_equal(next0, 33);
    assert_int_equal(stream_time, 1000 + 32);

    /* Re-apply the whole stream from the beginning in batches of 25: exactly the records of batch
     * A are ignored, every other one is applied once. */
    applier_begin(&ap, fx->tables);
    for (int i = 0; i < STREAM_LEN; i++) {
        applier_apply(&ap, &stream[i]);
        if (i % 25 == 24)
            applier_commit(&ap);
    }
    applier_commit(&ap);
    assert_int_equal(ap.ignored, 50);
    assert_int_equal(ap.applied, STREAM_LEN - 50);
    sg_table_batch_destroy(ap.batch);

    /* A fresh full apply elsewhere: same rows, same positions. */
    sg_tables_t *fresh = open_tables(fx->dir2);
    applier_begin(&ap, fresh);
    for (int i = 0; i < STREAM_LEN; i++)
        applier_apply(&ap, &stream[i]);
    applier_commit(&ap);
    sg_table_batch_destroy(ap.batch);

    long expected[STREAM_KEYS] = {0};
    for (int i = 0; i < STREAM_LEN; i++)
        expected[atoi(stream[i].key + 1)]++;
    for (int k = 0; k < STREAM_KEYS; k++) {
        char key[16], want[32];
        snprintf(key, sizeof(key), "k%d", k);
        snprintf(want, sizeof(want), "%ld", expected[k]);
        assert_row(fx->tables, "users", key, want);
        assert_row(fresh, "users", key, want);
    }
    pos_list_t a = {0}, b = {0};
    assert_int_equal(sg_tables_positions(fx->tables, "users", collect_pos, &a, err, sizeof(err)), 0);
    assert_int_equal(sg_tables_positions(fresh, "users", collect_pos, &b, err, sizeof(err)), 0);
    assert_int_equal(a.n, 2);
    assert_int_equal(b.n, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(a.partition[i], b.partition[i]);
        assert_int_equal(a.next[i], b.next[i]);
        assert_int_equal(a.stream[i], b.stream[i]);
    }
    assert_int_equal(a.next[0], 80);
    assert_int_equal(a.next[1], 40);
    sg_tables_close(fresh);
}

/* -- reset / rebuild -------------------------------------------------------------------------- */

static void test_reset_clears_table(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    char *source = (char *)"untouched";
    assert_int_equal(sg_tables_get_source(fx->tables, "users", &source, err, sizeof(err)), 1);
    assert_null(source);
    assert_int_equal(sg_tables_reset(fx->tables, "users", "cluster-A", err, sizeof(err)), 0);
    assert_int_equal(sg_tables_get_source(fx->tables, "users", &source, err, sizeof(err)), 0);
    assert_string_equal(source, "cluster-A");
    free(source);

    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    sg_table_batch_t *other = sg_table_batch_new(fx->tables, "orders");
    char big_key[SG_TABLE_MAX_KEY + 1];
    memset(big_key, 0xff, SG_TABLE_MAX_KEY);
    big_key[SG_TABLE_MAX_KEY] = '\0';
    put(batch, "t", 0, 0, 10, "a", "1");
    put(batch, "t", 1, 0, 10, "b", "2");
    put(batch, "t", 1, 1, 10, big_key, "largest possible key");
    put(other, "t", 0, 0, 10, "a", "other table");
    commit(batch);
    commit(other);
    uint64_t before = sg_tables_commit_count(fx->tables, "users");
    assert_int_equal(before, 2); /* one reset, one batch */

    sg_table_batch_t *stale = sg_table_batch_new(fx->tables, "users");
    put(stale, "t", 0, 1, 10, "c", "3");
    assert_int_equal(sg_tables_reset(fx->tables, "users", "cluster-B", err, sizeof(err)), 0);
    assert_int_equal(sg_tables_commit_count(fx->tables, "users"), before + 1);
    assert_row(fx->tables, "users", "a", NULL);
    assert_row(fx->tables, "users", "b", NULL);
    assert_row(fx->tables, "users", big_key, NULL);
    assert_position(fx->tables, "users", "t", 0, 1, 0, 0);
    assert_position(fx->tables, "users", "t", 1, 1, 0, 0);
    assert_int_equal(sg_tables_get_source(fx->tables, "users", &source, err, sizeof(err)), 0);
    assert_string_equal(source, "cluster-B");
    free(source);
    /* The other table is untouched. */
    assert_row(fx->tables, "orders", "a", "other table");
    assert_position(fx->tables, "orders", "t", 0, 0, 1, 10);

    /* A batch built before the reset must not write its stale positions. */
    assert_int_equal(sg_table_batch_commit(stale, err, sizeof(err)), SG_TABLE_ECONFLICT);
    assert_row(fx->tables, "users", "c", NULL);
    assert_position(fx->tables, "users", "t", 0, 1, 0, 0);
    /* The rebuild starts from offset 0 again. */
    assert_int_equal(put(stale, "t", 0, 0, 20, "a", "rebuilt"), 0);
    commit(stale);
    assert_row(fx->tables, "users", "a", "rebuilt");
    assert_position(fx->tables, "users", "t", 0, 0, 1, 20);

    sg_tables_close(fx->tables);
    fx->tables = open_tables(fx->dir);
    assert_int_equal(sg_tables_get_source(fx->tables, "users", &source, err, sizeof(err)), 0);
    assert_string_equal(source, "cluster-B");
    free(source);
    assert_row(fx->tables, "users", "a", "rebuilt");
    assert_int_equal(sg_tables_commit_count(fx->tables, "users"), 0); /* per process */

    assert_int_equal(sg_tables_reset(fx->tables, "users", "", err, sizeof(err)), -1);
    assert_int_equal(sg_tables_reset(fx->tables, "nope", "x", err, sizeof(err)), -1);
    sg_table_batch_destroy(batch);
    sg_table_batch_destroy(other);
    sg_table_batch_destroy(stale);
}

static void test_concurrent_batches_conflict(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_table_batch_t *first = sg_table_batch_new(fx->tables, "users");
    sg_table_batch_t *second = sg_table_batch_new(fx->tables, "users");
    put(first, "t", 0, 0, 1, "a", "first");
    put(second, "t", 0, 0, 1, "a", "second");
    commit(first);
    assert_int_equal(sg_table_batch_commit(second, err, sizeof(err)), SG_TABLE_ECONFLICT);
    assert_non_null(strstr(err, "someone else"));
    assert_row(fx->tables, "users", "a", "first");
    /* Emptied and re-synchronised: re-applying from the stored position works. */
    assert_int_equal(sg_table_batch_count(second), 0);
    assert_int_equal(put(second, "t", 0, 0, 1, "a", "second"), 1);
    assert_int_equal(put(second, "t", 0, 1, 2, "a", "second"), 0);
    commit(second);
    assert_row(fx->tables, "users", "a", "second");
    /* An empty commit writes nothing and counts nothing. */
    uint64_t count = sg_tables_commit_count(fx->tables, "users");
    commit(first);
    assert_int_equal(sg_tables_commit_count(fx->tables, "users"), count);
    sg_table_batch_destroy(first);
    sg_table_batch_destroy(second);
}

/* -- scans ------------------------------------------------------------------------------------ */

typedef struct {
    char keys[64][16];
    char values[64][16];
    size_t n;
    size_t stop_after; /* 0: never */
} rows_t;

static int collect_row(void *arg, const void *key, size_t keylen, const void *value, size_t valuelen,
                       const sg_table_version_t *version)
{
    rows_t *rows = arg;
    if (rows->n == 64 || keylen >= 16 || valuelen >= 16 || version->offset < 0)
        return 1;
    memcpy(rows->keys[rows->n], key, keylen);
    rows->keys[rows->n][keylen] = '\0';
    memcpy(rows->values[rows->n], value, valuelen);
    rows->values[rows->n][valuelen] = '\0';
    rows->n++;
    return rows->stop_after != 0 && rows->n == rows->stop_after;
}

static void load_keys(sg_tables_t *tables, const char *table, const char *const *keys, size_t n)
{
    sg_table_batch_t *batch = sg_table_batch_new(tables, table);
    for (size_t i = 0; i < n; i++) {
        char value[16];
        snprintf(value, sizeof(value), "v-%s", keys[i]);
        put(batch, "t", 0, (int64_t)i, 100, keys[i], value);
    }
    commit(batch);
    sg_table_batch_destroy(batch);
}

static int scan(sg_tables_t *tables, const char *table, const sg_table_scan_t *query, rows_t *rows, char **next)
{
    char err[256] = "";
    int ret = sg_tables_scan(tables, table, query, collect_row, rows, next, NULL, err, sizeof(err));
    return ret;
}

static void test_scan_prefix_and_bounds(void **state)
{
    fixture_t *fx = *state;
    static const char *const keys[] = {"c", "b2", "a1", "b1", "a2", "b3", "ba"};
    load_keys(fx->tables, "users", keys, 7);
    char *next = NULL;

    rows_t rows = {0};
    sg_table_scan_t query = {.prefix = "b", .prefix_len = 1, .limit = 10};
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), 4);
    assert_null(next);
    assert_string_equal(rows.keys[0], "b1");
    assert_string_equal(rows.keys[1], "b2");
    assert_string_equal(rows.keys[2], "b3");
    assert_string_equal(rows.keys[3], "ba");
    assert_string_equal(rows.values[0], "v-b1");

    memset(&rows, 0, sizeof(rows));
    query = (sg_table_scan_t){.from = "a2", .from_len = 2, .to = "b3", .to_len = 2, .limit = 10};
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), 3);
    assert_null(next);
    assert_string_equal(rows.keys[0], "a2");
    assert_string_equal(rows.keys[1], "b1");
    assert_string_equal(rows.keys[2], "b2");

    /* Prefix and bounds together: the intersection. */
    memset(&rows, 0, sizeof(rows));
    query = (sg_table_scan_t){.prefix = "b", .prefix_len = 1, .from = "b2", .from_len = 2, .limit = 10};
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), 3);
    assert_string_equal(rows.keys[0], "b2");
    assert_string_equal(rows.keys[2], "ba");

    memset(&rows, 0, sizeof(rows));
    query = (sg_table_scan_t){.limit = 10};
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), 7);
    assert_string_equal(rows.keys[0], "a1");
    assert_string_equal(rows.keys[6], "c");

    memset(&rows, 0, sizeof(rows));
    query = (sg_table_scan_t){.prefix = "zz", .prefix_len = 2, .limit = 10};
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), 0);
    assert_null(next);
    assert_int_equal(scan(fx->tables, "orders", &(sg_table_scan_t){.limit = 1}, &rows, &next), 0);

    /* The callback stops the scan: a cursor resumes after the last row it took. */
    memset(&rows, 0, sizeof(rows));
    rows.stop_after = 2;
    query = (sg_table_scan_t){.limit = 10};
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), 2);
    assert_non_null(next);
    query.cursor = next;
    memset(&rows, 0, sizeof(rows));
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), 5);
    assert_string_equal(rows.keys[0], "b1");
    free((char *)query.cursor);
    assert_null(next);
}

static void test_scan_paging_visits_every_row_once(void **state)
{
    fixture_t *fx = *state;
    char names[50][8];
    const char *keys[50];
    for (int i = 0; i < 50; i++) {
        snprintf(names[i], sizeof(names[i]), "p%02d", (i * 17) % 50); /* inserted out of order */
        keys[i] = names[i];
    }
    load_keys(fx->tables, "users", keys, 50);
    static const char *const others[] = {"o1", "q1"};
    load_keys(fx->tables, "orders", others, 2);

    /* 50 rows in pages of 7, then in pages of 10 (an exact multiple: no empty last page). */
    static const size_t limits[] = {7, 10};
    for (size_t l = 0; l < 2; l++) {
        int seen[50] = {0};
        char *cursor = NULL;
        size_t pages = 0, total = 0;
        char last[16] = "";
        do {
            rows_t rows = {0};
            sg_table_scan_t query = {.prefix = "p", .prefix_len = 1, .limit = limits[l], .cursor = cursor};
            char *next = NULL;
            int n = scan(fx->tables, "users", &query, &rows, &next);
            assert_true(n > 0);
            assert_true((size_t)n <= limits[l]);
            for (int i = 0; i < n; i++) {
                assert_true(strcmp(rows.keys[i], last) > 0);
                snprintf(last, sizeof(last), "%s", rows.keys[i]);
                seen[atoi(rows.keys[i] + 1)]++;
            }
            total += (size_t)n;
            pages++;
            free(cursor);
            cursor = next;
        } while (cursor != NULL);
        assert_int_equal(total, 50);
        assert_int_equal(pages, (50 + limits[l] - 1) / limits[l]);
        for (int i = 0; i < 50; i++)
            assert_int_equal(seen[i], 1);
    }
}

static void test_scan_rejects_bad_input(void **state)
{
    fixture_t *fx = *state;
    static const char *const keys[] = {"a1", "a2", "a3", "b1"};
    load_keys(fx->tables, "users", keys, 4);
    load_keys(fx->tables, "orders", keys, 4);
    char err[256] = "";
    char *next = NULL;
    rows_t rows = {0};
    sg_table_scan_t query = {.prefix = "a", .prefix_len = 1, .limit = 1};
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), 1);
    assert_non_null(next);
    char *good = next;

    /* The good cursor works, for this table and this query only. */
    query.cursor = good;
    memset(&rows, 0, sizeof(rows));
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), 1);
    assert_string_equal(rows.keys[0], "a2");
    free(next);
    assert_int_equal(sg_tables_scan(fx->tables, "orders", &query, collect_row, &rows, &next, NULL, err, sizeof(err)), -1);
    assert_null(next);
    assert_non_null(strstr(err, "invalid scan cursor"));
    sg_table_scan_t other_range = {.prefix = "b", .prefix_len = 1, .limit = 1, .cursor = good};
    assert_int_equal(sg_tables_scan(fx->tables, "users", &other_range, collect_row, &rows, &next, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "does not belong"));
    other_range = (sg_table_scan_t){.to = "a1", .to_len = 2, .limit = 1, .cursor = good};
    assert_int_equal(sg_tables_scan(fx->tables, "users", &other_range, collect_row, &rows, &next, NULL, err, sizeof(err)), -1);

    /* Mangled forms: every one-character change, truncation, padding, junk. */
    size_t len = strlen(good);
    char *bad = malloc(len + 3);
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, good, len + 1);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        query.cursor = bad;
        assert_int_equal(sg_tables_scan(fx->tables, "users", &query, collect_row, &rows, &next, NULL, err, sizeof(err)), -1);
        assert_null(next);
    }
    const char *junk[] = {"", "!", "A", "AA", "AAAA", "====", "YQ", "not a cursor", NULL};
    for (size_t i = 0; junk[i] != NULL; i++) {
        query.cursor = junk[i];
        assert_int_equal(sg_tables_scan(fx->tables, "users", &query, collect_row, &rows, &next, NULL, err, sizeof(err)), -1);
    }
    memcpy(bad, good, len + 1);
    bad[len - 1] = '\0';
    query.cursor = bad;
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), -1);
    snprintf(bad, len + 3, "%s==", good);
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), -1);
    char *huge = malloc(SG_TABLE_MAX_CURSOR + 2);
    memset(huge, 'A', SG_TABLE_MAX_CURSOR + 1);
    huge[SG_TABLE_MAX_CURSOR + 1] = '\0';
    query.cursor = huge;
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), -1);
    free(huge);
    free(bad);
    free(good);

    /* Limits. */
    query = (sg_table_scan_t){.limit = 0};
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), -1);
    query.limit = SG_TABLE_SCAN_MAX_LIMIT + 1;
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), -1);
    query.limit = SG_TABLE_SCAN_MAX_LIMIT;
    memset(&rows, 0, sizeof(rows));
    assert_int_equal(scan(fx->tables, "users", &query, &rows, &next), 4);
    assert_int_equal(scan(fx->tables, "nope", &query, &rows, &next), -1);
}

/* -- tokens ----------------------------------------------------------------------------------- */

static void test_token_from_positions(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    put(batch, "users-topic", 0, 0, 500, "a", "1");
    put(batch, "users-topic", 0, 9, 700, "b", "2");
    put(batch, "users-topic", 2, 4, 900, "c", "3");
    commit(batch);
    sg_table_batch_destroy(batch);

    sg_token_t *token = sg_token_create();
    assert_int_equal(sg_token_advance(token, "elsewhere", 5, 77, 1), 0); /* merged, not replaced */
    assert_int_equal(sg_tables_token(fx->tables, "users", token, err, sizeof(err)), 0);
    size_t len = sg_token_encode(token, NULL, 0);
    char *text = malloc(len + 1);
    assert_int_equal(sg_token_encode(token, text, len + 1), len);
    sg_token_t *decoded = sg_token_decode(text, len, err, sizeof(err));
    assert_non_null(decoded);
    assert_int_equal(sg_token_count(decoded), 3);
    int64_t offset, stream;
    assert_int_equal(sg_token_get(decoded, "users-topic", 0, &offset, &stream), 0);
    assert_int_equal(offset, 9); /* next_offset - 1 */
    assert_int_equal(stream, 700);
    assert_int_equal(sg_token_get(decoded, "users-topic", 2, &offset, &stream), 0);
    assert_int_equal(offset, 4);
    assert_int_equal(stream, 900);
    assert_int_equal(sg_token_get(decoded, "elsewhere", 5, &offset, &stream), 0);
    assert_int_equal(offset, 77);
    assert_int_equal(sg_token_get(decoded, "users-topic", 1, &offset, &stream), -1);
    sg_token_destroy(decoded);
    free(text);
    sg_token_destroy(token);

    /* An empty table adds nothing; reads can carry the token of the snapshot they read. */
    token = sg_token_create();
    assert_int_equal(sg_tables_token(fx->tables, "orders", token, err, sizeof(err)), 0);
    assert_int_equal(sg_token_count(token), 0);
    void *value = NULL;
    size_t value_len = 0;
    assert_int_equal(sg_tables_get(fx->tables, "users", "zz", 2, &value, &value_len, NULL, token, err, sizeof(err)), 1);
    assert_int_equal(sg_token_count(token), 2);
    assert_int_equal(sg_token_get(token, "users-topic", 0, &offset, &stream), 0);
    assert_int_equal(offset, 9);
    sg_token_destroy(token);

    token = sg_token_create();
    rows_t rows = {0};
    char *next = NULL;
    sg_table_scan_t query = {.limit = 10};
    assert_int_equal(sg_tables_scan(fx->tables, "users", &query, collect_row, &rows, &next, token, err, sizeof(err)), 3);
    assert_int_equal(sg_token_get(token, "users-topic", 2, &offset, &stream), 0);
    assert_int_equal(offset, 4);
    sg_token_destroy(token);
    assert_int_equal(sg_tables_token(fx->tables, "nope", NULL, err, sizeof(err)), -1);
}

/* -- views: the hot point read ---------------------------------------------------------------- */

typedef struct {
    int calls;
    int found;
    char value[64];
    sg_table_version_t version;
    char token[512];
    int64_t stream_time;
    int64_t stream_time_other;
} read_seen_t;

static void on_read(void *arg, const sg_table_read_t *read)
{
    read_seen_t *seen = arg;
    seen->calls++;
    seen->found = read->found;
    if (read->found) {
        assert_true(read->value_len < sizeof(seen->value));
        memcpy(seen->value, read->value, read->value_len);
        seen->value[read->value_len] = '\0';
        seen->version = read->version;
    }
    size_t len = 0;
    const char *text = sg_table_view_token_text(read->view, &len);
    assert_true(len < sizeof(seen->token));
    assert_int_equal(strlen(text), len);
    memcpy(seen->token, text, len + 1);
    /* The text is the encoding of the view's token. */
    char again[512];
    assert_int_equal(sg_token_encode(sg_table_view_token(read->view), again, sizeof(again)), len);
    assert_string_equal(again, text);
    seen->stream_time = sg_table_view_stream_time(read->view, "users-topic");
    seen->stream_time_other = sg_table_view_stream_time(read->view, "elsewhere");
}

static void test_read_carries_its_view(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    read_seen_t seen = {0};
    /* Nothing applied yet: absent, with the empty token. */
    assert_int_equal(sg_tables_read(fx->tables, "users", "a", 1, on_read, &seen, err, sizeof(err)), 1);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.found, 0);
    sg_token_t *empty = sg_token_create();
    char empty_text[64];
    sg_token_encode(empty, empty_text, sizeof(empty_text));
    sg_token_destroy(empty);
    assert_string_equal(seen.token, empty_text);
    assert_int_equal(seen.stream_time, 0);

    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    put(batch, "users-topic", 0, 0, 500, "a", "1");
    put(batch, "users-topic", 0, 9, 700, "b", "2");
    put(batch, "users-topic", 2, 4, 900, "c", "3");
    commit(batch);

    memset(&seen, 0, sizeof(seen));
    assert_int_equal(sg_tables_read(fx->tables, "users", "b", 1, on_read, &seen, err, sizeof(err)), 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.found, 1);
    assert_string_equal(seen.value, "2");
    assert_int_equal(seen.version.partition, 0);
    assert_int_equal(seen.version.offset, 9);
    assert_int_equal(seen.version.timestamp_ms, 700);
    sg_table_version_t got;
    char *value = get(fx->tables, "users", "b", &got);
    assert_int_equal(got.etag, seen.version.etag);
    free(value);
    assert_int_equal(seen.stream_time, 900);
    assert_int_equal(seen.stream_time_other, 0);
    /* The token is the table's position, as sg_tables_token merges it. */
    sg_token_t *want = sg_token_create();
    assert_int_equal(sg_tables_token(fx->tables, "users", want, err, sizeof(err)), 0);
    char want_text[512];
    sg_token_encode(want, want_text, sizeof(want_text));
    assert_string_equal(seen.token, want_text);
    sg_token_destroy(want);

    /* A later commit is the next read's view; the row and its token move together. */
    put(batch, "users-topic", 2, 5, 950, "b", "4");
    put(batch, "other-topic", 0, 0, 2000, "d", "5");
    commit(batch);
    sg_table_batch_destroy(batch);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(sg_tables_read(fx->tables, "users", "b", 1, on_read, &seen, err, sizeof(err)), 0);
    assert_string_equal(seen.value, "4");
    assert_int_equal(seen.version.partition, 2);
    assert_int_equal(seen.version.offset, 5);
    assert_string_not_equal(seen.token, want_text);
    assert_int_equal(seen.stream_time, 950); /* two topics now: each its own */
    sg_token_t *decoded = sg_token_decode(seen.token, strlen(seen.token), err, sizeof(err));
    assert_non_null(decoded);
    int64_t offset, stream;
    assert_int_equal(sg_token_get(decoded, "users-topic", 2, &offset, &stream), 0);
    assert_int_equal(offset, 5);
    assert_int_equal(sg_token_get(decoded, "other-topic", 0, &offset, &stream), 0);
    assert_int_equal(stream, 2000);
    sg_token_destroy(decoded);

    /* Errors: the callback is not called. */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(sg_tables_read(fx->tables, "nope", "b", 1, on_read, &seen, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown table"));
    assert_int_equal(sg_tables_read(fx->tables, "users", "", 0, on_read, &seen, err, sizeof(err)), -1);
    assert_int_equal(seen.calls, 0);

    /* A reset is a view too: empty. */
    assert_int_equal(sg_tables_reset(fx->tables, "users", "cluster-B", err, sizeof(err)), 0);
    assert_int_equal(sg_tables_read(fx->tables, "users", "b", 1, on_read, &seen, err, sizeof(err)), 1);
    assert_string_equal(seen.token, empty_text);

    /* After a reopen the view is read back from the stored positions. */
    batch = sg_table_batch_new(fx->tables, "users");
    put(batch, "users-topic", 1, 41, 1234, "e", "6");
    commit(batch);
    sg_table_batch_destroy(batch);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(sg_tables_read(fx->tables, "users", "e", 1, on_read, &seen, err, sizeof(err)), 0);
    char before[512];
    memcpy(before, seen.token, sizeof(before));
    sg_tables_close(fx->tables);
    fx->tables = open_tables(fx->dir);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(sg_tables_read(fx->tables, "users", "e", 1, on_read, &seen, err, sizeof(err)), 0);
    assert_string_equal(seen.value, "6");
    assert_string_equal(seen.token, before);
    assert_int_equal(seen.stream_time, 1234);
}

static void test_settle_keeps_rows_and_positions(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_tables_set_cache(fx->tables, 4u * 1024u * 1024u);
    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    char key[16], value[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%05d", i);
        snprintf(value, sizeof(value), "{\"n\":%d}", i);
        put(batch, "t", i % 4, i / 4, 100 + i, key, value);
    }
    commit(batch);
    sg_table_batch_destroy(batch);
    assert_int_equal(sg_tables_settle(fx->tables, err, sizeof(err)), 0);
    for (int i = 0; i < 2000; i += 97) {
        snprintf(key, sizeof(key), "k%05d", i);
        snprintf(value, sizeof(value), "{\"n\":%d}", i);
        assert_row(fx->tables, "users", key, value);
        read_seen_t seen = {0};
        assert_int_equal(sg_tables_read(fx->tables, "users", key, strlen(key), on_read, &seen, err, sizeof(err)), 0);
        assert_string_equal(seen.value, value);
        assert_int_equal(seen.version.offset, i / 4);
    }
    assert_position(fx->tables, "users", "t", 3, 0, 500, 2099);
    assert_row(fx->tables, "users", "k99999", NULL);
}

/* -- commit jobs and bulk batches ------------------------------------------------------------ */

static void test_detached_jobs_commit_in_order(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    assert_null(sg_table_batch_detach(batch)); /* nothing to commit */
    put(batch, "t", 0, 0, 10, "a", "1");
    put(batch, "t", 0, 1, 11, "b", "2");
    sg_table_commit_t *first = sg_table_batch_detach(batch);
    assert_non_null(first);
    assert_int_equal(sg_table_batch_count(batch), 0);
    /* The batch goes on from the first job's positions, before it is written. */
    assert_int_equal(put(batch, "t", 0, 1, 12, "b", "stale"), 1);
    put(batch, "t", 0, 2, 13, "a", "3");
    sg_table_commit_t *second = sg_table_batch_detach(batch);
    assert_non_null(second);
    assert_row(fx->tables, "users", "a", NULL); /* nothing written yet */
    /* Out of order: the second expects the first's commit. */
    assert_int_equal(sg_table_commit_run(second, err, sizeof(err)), SG_TABLE_ECONFLICT);
    assert_int_equal(sg_table_commit_run(first, err, sizeof(err)), 0);
    assert_row(fx->tables, "users", "a", "1");
    assert_position(fx->tables, "users", "t", 0, 0, 2, 11);
    assert_int_equal(sg_table_commit_run(second, err, sizeof(err)), 0);
    assert_row(fx->tables, "users", "a", "3");
    assert_row(fx->tables, "users", "b", "2");
    assert_position(fx->tables, "users", "t", 0, 0, 3, 13);
    sg_table_commit_destroy(first);
    sg_table_commit_destroy(second);
    sg_table_commit_destroy(NULL);
    /* The batch itself commits on as before. */
    put(batch, "t", 0, 3, 14, "c", "4");
    commit(batch);
    assert_row(fx->tables, "users", "c", "4");
    sg_table_batch_destroy(batch);
    assert_int_equal(sg_tables_commit_count(fx->tables, "users"), 3);
}

/* Keys written more than once in one batch: the last write wins, a tombstone included, whether
 * the batch is written through a WriteBatch or ingested as a sorted file (which refuses a key
 * twice). Keys that share their first 8 bytes, and short keys that differ only by a trailing NUL,
 * are distinct rows. */
static void test_last_write_of_a_key_wins(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    for (int bulk = 0; bulk <= 1; ++bulk) {
        const char *table = bulk ? "users" : "orders";
        sg_table_batch_t *batch = sg_table_batch_new(fx->tables, table);
        sg_tables_set_restoring(fx->tables, bulk);
        sg_table_batch_set_bulk(batch, bulk);
        int64_t offset = 0;
        int fillers = bulk ? 5000 : 10; /* past SG_TABLE_BULK_MIN_ROWS (4096) when bulk */
        for (int round = 0; round < 3; ++round) {
            char key[32], value[32];
            for (int i = 0; i < fillers; ++i) {
                snprintf(key, sizeof(key), "shared-prefix-%05d", (i * 7919) % fillers);
                snprintf(value, sizeof(value), "%d", round);
                put(batch, "t", 0, offset++, 1, key, value);
            }
            snprintf(value, sizeof(value), "\"r%d\"", round);
            put(batch, "t", 0, offset++, 1, "again", value);
            put(batch, "t", 0, offset++, 1, "gone", round < 2 ? value : NULL);  /* deleted last */
            put(batch, "t", 0, offset++, 1, "back", round == 1 ? NULL : value); /* deleted, then written */
            assert_int_equal(sg_table_batch_put(batch, "t", 0, offset++, 1, "a\0", 2, value, strlen(value), err, sizeof(err)), 0);
            if (round == 0)
                put(batch, "t", 0, offset++, 1, "a", "\"short\"");
        }
        commit(batch);
        sg_table_batch_destroy(batch);
        uint64_t in_memtable = UINT64_MAX;
        assert_int_equal(sg_tables_property(fx->tables, table, "rocksdb.num-entries-active-mem-table", &in_memtable), 0);
        assert_true(bulk ? in_memtable == 0 : in_memtable > 0); /* ingested as a file / written through the memtable */
        assert_row(fx->tables, table, "again", "\"r2\"");
        assert_row(fx->tables, table, "gone", NULL);
        assert_row(fx->tables, table, "back", "\"r2\"");
        assert_row(fx->tables, table, "a", "\"short\"");
        void *value = NULL;
        size_t len = 0;
        assert_int_equal(sg_tables_get(fx->tables, table, "a\0", 2, &value, &len, NULL, NULL, err, sizeof(err)), 0);
        assert_int_equal(len, 4);
        assert_memory_equal(value, "\"r2\"", 4);
        free(value);
        assert_row(fx->tables, table, "shared-prefix-00000", "2");
        char key[32];
        snprintf(key, sizeof(key), "shared-prefix-%05d", fillers - 1);
        assert_row(fx->tables, table, key, "2");
        assert_position(fx->tables, table, "t", 0, 0, offset, 1);
        sg_tables_set_restoring(fx->tables, 0);
    }
}

#define BULK_ROWS 12000

static void test_bulk_batches_are_ingested_with_their_positions(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    /* A WriteBatch first, so the bulk file overlaps rows already there. */
    put(batch, "t", 1, 0, 5, "k00007", "old");
    put(batch, "t", 1, 1, 5, "k00009", "gone");
    put(batch, "t", 1, 2, 5, "zz", "kept");
    commit(batch);
    sg_tables_set_restoring(fx->tables, 1);
    sg_table_batch_set_bulk(batch, 1);
    char key[16], value[32];
    for (int i = 0; i < BULK_ROWS; i++) {
        snprintf(key, sizeof(key), "k%05d", (i * 7919) % BULK_ROWS); /* out of order */
        snprintf(value, sizeof(value), "{\"i\":%d}", i);
        put(batch, "t", i % 2 == 0 ? 0 : 1, i / 2 + (i % 2 == 0 ? 0 : 3), 100 + i, key, value);
    }
    put(batch, "t", 0, BULK_ROWS / 2, 99999, "k00009", NULL);   /* a tombstone in the file */
    put(batch, "t", 0, BULK_ROWS / 2 + 1, 99999, "k00011", "x"); /* a key written twice: the last wins */
    sg_table_commit_t *job = sg_table_batch_detach(batch);
    assert_non_null(job);
    assert_int_equal(sg_table_commit_run(job, err, sizeof(err)), 0);
    assert_int_equal(sg_table_commit_rows(job), BULK_ROWS); /* deduplicated */
    sg_table_commit_destroy(job);
    sg_table_batch_destroy(batch);
    /* Ingested as a file, not written through the memtable: the memtable that held the
     * WriteBatch's rows was flushed for the overlapping file, and none of the bulk rows are in it. */
    uint64_t in_memtable = UINT64_MAX, level0 = 0;
    assert_int_equal(sg_tables_property(fx->tables, "users", "rocksdb.num-entries-active-mem-table", &in_memtable), 0);
    assert_int_equal(in_memtable, 0);
    assert_int_equal(sg_tables_property(fx->tables, "users", "rocksdb.num-files-at-level0", &level0), 0);
    assert_true(level0 >= 2); /* the flushed WriteBatch and the ingested file */
    assert_int_equal(sg_tables_property(fx->tables, "nope", "rocksdb.num-files-at-level0", &level0), -1);
    assert_int_equal(sg_tables_property(fx->tables, "users", "rocksdb.no-such-property", &level0), -1);

    assert_row(fx->tables, "users", "k00009", NULL);
    assert_row(fx->tables, "users", "k00011", "x");
    assert_row(fx->tables, "users", "zz", "kept");
    snprintf(value, sizeof(value), "{\"i\":%d}", 1); /* k07919 was i = 1 */
    assert_row(fx->tables, "users", "k07919", value);
    int64_t i7 = -1;
    for (int i = 0; i < BULK_ROWS && i7 < 0; i++)
        if ((i * 7919) % BULK_ROWS == 7)
            i7 = i;
    snprintf(value, sizeof(value), "{\"i\":%lld}", (long long)i7);
    assert_row(fx->tables, "users", "k00007", value); /* the file's write is newer than the WriteBatch's */
    assert_position(fx->tables, "users", "t", 0, 0, BULK_ROWS / 2 + 2, 99999);
    assert_position(fx->tables, "users", "t", 1, 0, BULK_ROWS / 2 + 3, 100 + BULK_ROWS - 1);
    /* A scan sees rows only (not the positions record) and every row once. */
    rows_t rows = {0};
    char *next = NULL;
    sg_table_scan_t query = {.limit = 5};
    assert_int_equal(sg_tables_scan(fx->tables, "users", &query, collect_row, &rows, &next, NULL, err, sizeof(err)), 5);
    assert_string_equal(rows.keys[0], "k00000");
    free(next);
    /* Merged with what was there, it reads the same. */
    sg_tables_set_restoring(fx->tables, 0);
    assert_int_equal(sg_tables_settle(fx->tables, err, sizeof(err)), 0);
    assert_int_equal(sg_tables_property(fx->tables, "users", "rocksdb.num-files-at-level0", &level0), 0);
    assert_int_equal(level0, 0); /* merged into one sorted run below level 0 */
    assert_row(fx->tables, "users", "k00009", NULL);
    assert_row(fx->tables, "users", "k00007", value);
    assert_row(fx->tables, "users", "zz", "kept");
    /* And it all survives a reopen: rows and positions came in one file. */
    sg_tables_close(fx->tables);
    fx->tables = open_tables(fx->dir);
    assert_row(fx->tables, "users", "k00011", "x");
    assert_row(fx->tables, "users", "k00009", NULL);
    assert_position(fx->tables, "users", "t", 0, 0, BULK_ROWS / 2 + 2, 99999);
    /* A small bulk batch goes through a WriteBatch, the same as any. */
    batch = sg_table_batch_new(fx->tables, "users");
    sg_table_batch_set_bulk(batch, 1);
    put(batch, "t", 0, BULK_ROWS / 2 + 2, 100000, "k00011", "y");
    commit(batch);
    sg_table_batch_destroy(batch);
    assert_int_equal(sg_tables_property(fx->tables, "users", "rocksdb.num-entries-active-mem-table", &in_memtable), 0);
    assert_int_equal(in_memtable, 2); /* the row and the positions record */
    assert_row(fx->tables, "users", "k00011", "y");
}

/* -- concurrency ------------------------------------------------------------------------------ */

#define WRITER_BATCHES 300

typedef struct {
    sg_tables_t *tables;
    atomic_int done;
    atomic_int failures;
    atomic_long reads;
} race_t;

/* Under the read lock: the counter row's offset must be its view's offset of partition 0 (else
 * calls is set to 2, a failure). */
static void on_race_read(void *arg, const sg_table_read_t *read)
{
    read_seen_t *seen = arg;
    int64_t offset = -1, stream;
    seen->calls = 1;
    if (read->found &&
        (sg_token_get(sg_table_view_token(read->view), "t", 0, &offset, &stream) != 0 || offset != read->version.offset))
        seen->calls = 2;
}

/* Readers check what a materializer's readers rely on: no errors, every value well formed, and
 * never older than a value already seen (one key is rewritten with an increasing counter). */
static void *reader(void *arg)
{
    race_t *race = arg;
    long last_seen = -1;
    uint64_t last_count = 0;
    while (!atomic_load(&race->done)) {
        char err[256] = "";
        uint64_t count = sg_tables_commit_count(race->tables, "users");
        if (count < last_count)
            atomic_fetch_add(&race->failures, 1);
        last_count = count;
        void *value = NULL;
        size_t len = 0;
        int ret = sg_tables_get(race->tables, "users", "counter", 7, &value, &len, NULL, NULL, err, sizeof(err));
        if (ret == 0) {
            long seen = atol(value);
            if (seen < last_seen)
                atomic_fetch_add(&race->failures, 1);
            last_seen = seen;
            free(value);
        } else if (ret != 1) {
            atomic_fetch_add(&race->failures, 1);
        }
        /* The hot read: the counter is the last record of partition 0 in every batch, so the
         * row's offset is exactly its view's offset for that partition. */
        read_seen_t seen = {0};
        ret = sg_tables_read(race->tables, "users", "counter", 7, on_race_read, &seen, err, sizeof(err));
        if (ret == 0 && seen.calls != 1)
            atomic_fetch_add(&race->failures, 1);
        else if (ret != 0 && ret != 1)
            atomic_fetch_add(&race->failures, 1);
        rows_t rows = {0};
        char *next = NULL;
        sg_token_t *token = sg_token_create();
        sg_table_scan_t query = {.prefix = "row", .prefix_len = 3, .limit = 20};
        int n = sg_tables_scan(race->tables, "users", &query, collect_row, &rows, &next, token, err, sizeof(err));
        if (n < 0 || (size_t)n != rows.n)
            atomic_fetch_add(&race->failures, 1);
        for (size_t i = 0; i < rows.n; i++)
            if (strncmp(rows.values[i], "v", 1) != 0)
                atomic_fetch_add(&race->failures, 1);
        free(next);
        sg_token_destroy(token);
        atomic_fetch_add(&race->reads, 1);
    }
    return NULL;
}

static void test_concurrent_reads_while_committing(void **state)
{
    fixture_t *fx = *state;
    race_t race = {.tables = fx->tables};
    atomic_init(&race.done, 0);
    atomic_init(&race.failures, 0);
    atomic_init(&race.reads, 0);
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, reader, &race), 0);

    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    int64_t offset = 0;
    for (int b = 0; b < WRITER_BATCHES; b++) {
        char value[32], key[16];
        for (int i = 0; i < 5; i++) {
            snprintf(key, sizeof(key), "row%02d", (b * 5 + i) % 40);
            snprintf(value, sizeof(value), "v%d", b);
            put(batch, "t", b % 3, offset++, b, key, (b + i) % 7 == 0 ? NULL : value);
        }
        snprintf(value, sizeof(value), "%d", b);
        put(batch, "t", 0, offset++, b, "counter", value);
        commit(batch);
    }
    /* Keep the readers going until each has had a chance to overlap some commits. */
    while (atomic_load(&race.reads) < 20)
        sched_yield();
    atomic_store(&race.done, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    sg_table_batch_destroy(batch);
    assert_int_equal(atomic_load(&race.failures), 0);
    assert_int_equal(sg_tables_commit_count(fx->tables, "users"), WRITER_BATCHES);
    assert_row(fx->tables, "users", "counter", "299");
}

/* -- errors and open ---------------------------------------------------------------------------- */

static void test_invalid_arguments(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    assert_null(sg_table_batch_new(fx->tables, "nope"));
    assert_null(sg_table_batch_new(fx->tables, NULL));
    assert_int_equal(sg_tables_commit_count(fx->tables, "nope"), 0);
    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    assert_int_equal(sg_table_batch_put(batch, "", 0, 0, 0, "k", 1, "v", 1, err, sizeof(err)), -1);
    assert_int_equal(sg_table_batch_put(batch, "bad topic", 0, 0, 0, "k", 1, "v", 1, err, sizeof(err)), -1);
    assert_int_equal(sg_table_batch_put(batch, "t", -1, 0, 0, "k", 1, "v", 1, err, sizeof(err)), -1);
    assert_int_equal(sg_table_batch_put(batch, "t", 0, -1, 0, "k", 1, "v", 1, err, sizeof(err)), -1);
    assert_int_equal(sg_table_batch_put(batch, "t", 0, 0, 0, "k", 0, "v", 1, err, sizeof(err)), -1);
    char *big = calloc(1, SG_TABLE_MAX_KEY + 1);
    assert_int_equal(sg_table_batch_put(batch, "t", 0, 0, 0, big, SG_TABLE_MAX_KEY + 1, "v", 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "key must be"));
    assert_int_equal(sg_table_batch_put(batch, "t", 0, 0, 0, "k", 1, big, (size_t)SG_TABLE_MAX_VALUE + 1, err, sizeof(err)), -1);
    assert_int_equal(sg_table_batch_count(batch), 0);
    /* After a put of topic t, partition 0 (a put of the same skips the name check), other names
     * and partitions are still checked, and so is the rest of a put of the same. */
    assert_int_equal(sg_table_batch_put(batch, "t", 0, 0, 0, "k", 1, "v", 1, err, sizeof(err)), 0);
    assert_int_equal(sg_table_batch_put(batch, "t ", 0, 1, 0, "k", 1, "v", 1, err, sizeof(err)), -1);
    assert_int_equal(sg_table_batch_put(batch, "", 0, 1, 0, "k", 1, "v", 1, err, sizeof(err)), -1);
    assert_int_equal(sg_table_batch_put(batch, NULL, 0, 1, 0, "k", 1, "v", 1, err, sizeof(err)), -1);
    assert_int_equal(sg_table_batch_put(batch, "t", -1, 1, 0, "k", 1, "v", 1, err, sizeof(err)), -1);
    assert_int_equal(sg_table_batch_put(batch, "t", 0, 1, 0, "k", 0, "v", 1, err, sizeof(err)), -1);
    assert_int_equal(sg_table_batch_put(batch, "t", 0, -1, 0, "k", 1, "v", 1, err, sizeof(err)), -1);
    assert_int_equal(sg_table_batch_put(batch, "t", 0, 0, 0, "k", 1, "v", 1, err, sizeof(err)), 1); /* applied already */
    assert_int_equal(sg_table_batch_put(batch, "t", 0, 1, 0, "k", 1, "w", 1, err, sizeof(err)), 0);
    assert_int_equal(sg_table_batch_count(batch), 2);
    assert_int_equal(sg_table_batch_advance(batch, "t", 0, -5, err, sizeof(err)), -1);
    void *value = NULL;
    size_t len = 0;
    assert_int_equal(sg_tables_get(fx->tables, "users", big, SG_TABLE_MAX_KEY + 1, &value, &len, NULL, NULL, err, sizeof(err)), -1);
    assert_int_equal(sg_tables_get(fx->tables, "nope", "k", 1, &value, &len, NULL, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown table"));
    assert_int_equal(sg_tables_position(fx->tables, "users", "bad/topic", 0, NULL, NULL, err, sizeof(err)), -1);
    char *source = NULL;
    assert_int_equal(sg_tables_get_source(fx->tables, "nope", &source, err, sizeof(err)), -1);
    free(big);
    sg_table_batch_destroy(batch);
    sg_table_batch_destroy(NULL);
    sg_tables_close(NULL);

    static const char *const dup[] = {"a", "a"};
    static const char *const bad_name[] = {"a/b"};
    assert_null(sg_tables_open(fx->dir2, dup, 2, err, sizeof(err)));
    assert_non_null(strstr(err, "twice"));
    assert_null(sg_tables_open(fx->dir2, bad_name, 1, err, sizeof(err)));
    assert_null(sg_tables_open("", two_tables, 2, err, sizeof(err)));
    /* Already open (RocksDB's lock). */
    assert_null(sg_tables_open(fx->dir, two_tables, 2, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open"));
}

static void test_reopen_with_other_tables(void **state)
{
    fixture_t *fx = *state;
    static const char *const keys[] = {"x"};
    load_keys(fx->tables, "orders", keys, 1);
    sg_tables_close(fx->tables);

    /* "orders" left the config: its family stays, untouched, and a new table appears. */
    static const char *const fewer[] = {"users", "events"};
    char err[256] = "";
    fx->tables = sg_tables_open(fx->dir, fewer, 2, err, sizeof(err));
    assert_non_null(fx->tables);
    assert_null(sg_table_batch_new(fx->tables, "orders"));
    load_keys(fx->tables, "events", keys, 1);
    sg_tables_close(fx->tables);

    fx->tables = open_tables(fx->dir);
    assert_row(fx->tables, "orders", "x", "v-x");
    assert_position(fx->tables, "orders", "t", 0, 0, 1, 100);
}

/* A data_dir from the first layout (a positions record per partition) resumes where it was: its
 * positions are read, and the first commit replaces them by the one record. Written raw here
 * with the RocksDB C API, byte for byte as that layout stored them. */
static void put_v1_position(rocksdb_t *db, rocksdb_column_family_handle_t *cf, const char *table, const char *topic,
                            uint32_t partition, uint64_t next, uint64_t stream)
{
    uint8_t key[300], value[17];
    size_t n = 0;
    key[n++] = (uint8_t)strlen(table);
    memcpy(key + n, table, strlen(table));
    n += strlen(table);
    key[n++] = 'P';
    memcpy(key + n, topic, strlen(topic));
    n += strlen(topic);
    key[n++] = 0;
    for (int i = 3; i >= 0; --i)
        key[n++] = (uint8_t)(partition >> (8 * i));
    value[0] = 1;
    for (int i = 0; i < 8; ++i) {
        value[1 + i] = (uint8_t)(next >> (8 * (7 - i)));
        value[9 + i] = (uint8_t)(stream >> (8 * (7 - i)));
    }
    char *errptr = NULL;
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put_cf(db, wo, cf, (const char *)key, n, (const char *)value, sizeof(value), &errptr);
    rocksdb_writeoptions_destroy(wo);
    assert_null(errptr);
}

static void test_first_layout_positions_are_read_and_replaced(void **state)
{
    fixture_t *fx = *state;
    sg_tables_close(fx->tables);
    fx->tables = NULL;
    /* the families as sg_tables_open made them */
    const char *names[] = {"default", "positions", "t:users", "t:orders"};
    rocksdb_options_t *options = rocksdb_options_create();
    const rocksdb_options_t *cf_options[4] = {options, options, options, options};
    rocksdb_column_family_handle_t *handles[4];
    char *errptr = NULL;
    size_t n_cf = 0;
    char **existing = rocksdb_list_column_families(options, fx->dir, &n_cf, &errptr);
    assert_null(errptr);
    assert_int_equal(n_cf, 4);
    rocksdb_list_column_families_destroy(existing, n_cf);
    rocksdb_t *db = rocksdb_open_column_families(options, fx->dir, 4, names, cf_options, handles, &errptr);
    assert_null(errptr);
    put_v1_position(db, handles[1], "users", "t", 0, 7, 1700);
    put_v1_position(db, handles[1], "users", "t", 1, 3, 1600);
    for (int i = 0; i < 4; ++i)
        rocksdb_column_family_handle_destroy(handles[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(options);

    fx->tables = open_tables(fx->dir);
    int64_t next = 0, stream = 0;
    char err[256];
    assert_int_equal(sg_tables_position(fx->tables, "users", "t", 0, &next, &stream, err, sizeof(err)), 0);
    assert_int_equal(next, 7);
    assert_int_equal(stream, 1700);
    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    /* offset 6 is below the stored position: ignored, not applied twice */
    assert_int_equal(sg_table_batch_put(batch, "t", 0, 6, 1750, "old", 3, "\"x\"", 3, err, sizeof(err)), 1);
    put(batch, "t", 0, 7, 1800, "k", "v");
    commit(batch);
    sg_table_batch_destroy(batch);
    assert_int_equal(sg_tables_position(fx->tables, "users", "t", 0, &next, &stream, err, sizeof(err)), 0);
    assert_int_equal(next, 8);
    assert_int_equal(stream, 1800);
    assert_int_equal(sg_tables_position(fx->tables, "users", "t", 1, &next, &stream, err, sizeof(err)), 0);
    assert_int_equal(next, 3); /* carried over into the record */
    pos_list_t list = {0};
    assert_int_equal(sg_tables_positions(fx->tables, "users", collect_pos, &list, err, sizeof(err)), 0);
    assert_int_equal(list.n, 2); /* from the new record: each partition once */
    assert_null(get(fx->tables, "users", "old", NULL));
}

/* The second layout kept the positions record in the positions family (key: u8 name length, name,
 * 'P'). It is read, and the first commit moves it into the table's family in its WriteBatch. */
static void test_second_layout_positions_move_into_the_table(void **state)
{
    fixture_t *fx = *state;
    sg_tables_close(fx->tables);
    fx->tables = NULL;
    const char *names[] = {"default", "positions", "t:users", "t:orders"};
    rocksdb_options_t *options = rocksdb_options_create();
    const rocksdb_options_t *cf_options[4] = {options, options, options, options};
    rocksdb_column_family_handle_t *handles[4];
    char *errptr = NULL;
    rocksdb_t *db = rocksdb_open_column_families(options, fx->dir, 4, names, cf_options, handles, &errptr);
    assert_null(errptr);
    /* users: t/0 next 7 stream 1700, t/1 next 3 stream 1600, byte for byte as that layout wrote it */
    uint8_t record[5 + 2 * (1 + 1 + 20)], key[7] = {5, 'u', 's', 'e', 'r', 's', 'P'};
    size_t n = 0;
    record[n++] = 2;
    record[n++] = 0, record[n++] = 0, record[n++] = 0, record[n++] = 2;
    for (int p = 0; p < 2; p++) {
        uint64_t next = p == 0 ? 7 : 3, stream = p == 0 ? 1700 : 1600;
        record[n++] = 1;
        record[n++] = 't';
        for (int i = 3; i >= 0; --i)
            record[n++] = (uint8_t)((uint32_t)p >> (8 * i));
        for (int i = 7; i >= 0; --i)
            record[n++] = (uint8_t)(next >> (8 * i));
        for (int i = 7; i >= 0; --i)
            record[n++] = (uint8_t)(stream >> (8 * i));
    }
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put_cf(db, wo, handles[1], (const char *)key, sizeof(key), (const char *)record, n, &errptr);
    assert_null(errptr);
    for (int i = 0; i < 4; ++i)
        rocksdb_column_family_handle_destroy(handles[i]);
    rocksdb_close(db);

    fx->tables = open_tables(fx->dir);
    assert_position(fx->tables, "users", "t", 0, 0, 7, 1700);
    assert_position(fx->tables, "users", "t", 1, 0, 3, 1600);
    sg_table_batch_t *batch = sg_table_batch_new(fx->tables, "users");
    char err[256];
    assert_int_equal(sg_table_batch_put(batch, "t", 1, 2, 1650, "old", 3, "\"x\"", 3, err, sizeof(err)), 1);
    put(batch, "t", 1, 3, 1800, "k", "v");
    commit(batch);
    sg_table_batch_destroy(batch);
    assert_position(fx->tables, "users", "t", 0, 0, 7, 1700);
    assert_position(fx->tables, "users", "t", 1, 0, 4, 1800);
    sg_tables_close(fx->tables);
    fx->tables = NULL;

    /* Raw: the positions family no longer holds users' record; the table's family does. */
    db = rocksdb_open_column_families(options, fx->dir, 4, names, cf_options, handles, &errptr);
    assert_null(errptr);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    size_t len = 0;
    char *value = rocksdb_get_cf(db, ro, handles[1], (const char *)key, sizeof(key), &len, &errptr);
    assert_null(errptr);
    assert_null(value);
    value = rocksdb_get_cf(db, ro, handles[2], "", 0, &len, &errptr);
    assert_null(errptr);
    assert_non_null(value);
    assert_int_equal((unsigned char)value[0], 2);
    rocksdb_free(value);
    rocksdb_readoptions_destroy(ro);
    rocksdb_writeoptions_destroy(wo);
    for (int i = 0; i < 4; ++i)
        rocksdb_column_family_handle_destroy(handles[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(options);
    fx->tables = open_tables(fx->dir);
    assert_position(fx->tables, "users", "t", 1, 0, 4, 1800);
    assert_row(fx->tables, "users", "k", "v");
}

/* -- a full disk ------------------------------------------------------------------------------ */

#define BIG_VALUE (1024 * 1024)

/* A 1 MiB JSON value for offset i: its padding repeats, so the files a reopen flushes are small,
 * while each record still puts a whole MiB in the write-ahead log. Owned. */
static char *big_value(int64_t i)
{
    char *value = malloc(BIG_VALUE + 1);
    assert_non_null(value);
    int head = snprintf(value, BIG_VALUE, "{\"i\":%lld,\"pad\":\"", (long long)i);
    for (int at = head; at < BIG_VALUE - 2; at++)
        value[at] = (char)('a' + (at + i) % 26);
    memcpy(value + BIG_VALUE - 2, "\"}", 3);
    return value;
}

/* Applies offset i of the big stream (key "k<i % 6>", timestamp 10 * i) in a batch of its own.
 * Returns the commit's result. */
static int apply_big(sg_tables_t *tables, int64_t i, char *err, size_t errlen)
{
    char key[16];
    snprintf(key, sizeof(key), "k%lld", (long long)(i % 6));
    char *value = big_value(i);
    sg_table_batch_t *batch = sg_table_batch_new(tables, "users");
    assert_non_null(batch);
    int rc = sg_table_batch_put(batch, "t", 0, i, 10 * i, key, strlen(key), value, BIG_VALUE, err, errlen);
    assert_int_equal(rc, 0);
    rc = sg_table_batch_commit(batch, err, errlen);
    sg_table_batch_destroy(batch);
    free(value);
    return rc;
}

/* Every row (value and version) and the position of `users` are the same in both databases. */
static void assert_same_tables(sg_tables_t *got, sg_tables_t *want)
{
    for (int k = 0; k < 6; k++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", k);
        sg_table_version_t got_version, want_version;
        char *got_value = get(got, "users", key, &got_version);
        char *want_value = get(want, "users", key, &want_version);
        assert_non_null(want_value);
        assert_non_null(got_value);
        assert_string_equal(got_value, want_value);
        assert_int_equal(got_version.offset, want_version.offset);
        assert_int_equal(got_version.timestamp_ms, want_version.timestamp_ms);
        assert_true(got_version.etag == want_version.etag);
        free(got_value);
        free(want_value);
    }
    char err[256];
    int64_t got_next, got_stream, want_next, want_stream;
    assert_int_equal(sg_tables_position(got, "users", "t", 0, &got_next, &got_stream, err, sizeof(err)), 0);
    assert_int_equal(sg_tables_position(want, "users", "t", 0, &want_next, &want_stream, err, sizeof(err)), 0);
    assert_int_equal(got_next, want_next);
    assert_int_equal(got_stream, want_stream);
}

/* Tables on a 24 MiB tmpfs of which 10 MiB are taken (the test is skipped where no tmpfs can be
 * mounted): a disk that fills after a few big batches. */
static sg_tables_t *open_tables_on_small_disk(sg_test_tmpfs_t *fs)
{
    char why[512];
    if (sg_test_tmpfs_mount(fs, 24, why, sizeof(why)) != 0) {
        print_message("skipped: %s\n", why);
        skip();
    }
    assert_int_equal(sg_test_tmpfs_fill(fs, 10), 0);
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/tables", fs->dir);
    return open_tables(dir);
}

/* The disk fills while a table is applied: commits fail (no crash: RocksDB 7.8's info log used to
 * abort the process here), the table reports it, reads serve the last commit; once room is back
 * a reopen resumes writes, and re-applying from the stored position gives exactly the state a
 * rebuild on a roomy disk gives. */
static void test_full_disk_stops_and_resumes(void **state)
{
    fixture_t *fx = *state;
    sg_test_tmpfs_t fs;
    sg_tables_t *tables = open_tables_on_small_disk(&fs);
    char err[512] = "";

    int64_t next = 0;
    while (next < 40 && apply_big(tables, next, err, sizeof(err)) == 0)
        next++;
    assert_true(next > 0 && next < 40); /* 14 MiB of room: the disk filled */
    assert_non_null(strstr(err, "No space left"));
    char reason[512];
    assert_int_equal(sg_tables_health(tables, reason, sizeof(reason)), SG_STORAGE_UNAVAILABLE);
    assert_non_null(strstr(reason, "No space left"));
    /* Further commits are refused at once, and nothing crashes. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(apply_big(tables, next, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "storage unavailable"));
    }
    /* No room yet: no reopen, and the error and the health say what a reopen needs. */
    assert_int_equal(sg_tables_recover(tables, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "tables: waiting for room in "));
    assert_non_null(strstr(err, "a reopen writes the write-ahead log's "));
    assert_int_equal(sg_tables_health(tables, reason, sizeof(reason)), SG_STORAGE_UNAVAILABLE);
    assert_non_null(strstr(reason, "No space left"));
    assert_non_null(strstr(reason, "; not reopened yet: tables: waiting for room in "));
    /* Reads serve the last committed state. */
    assert_position(tables, "users", "t", 0, 0, next, 10 * (next - 1));
    char *last = big_value(next - 1);
    char key[16];
    snprintf(key, sizeof(key), "k%lld", (long long)((next - 1) % 6));
    assert_row(tables, "users", key, last);
    free(last);

    sg_test_tmpfs_free(&fs);
    int tries = 0;
    while (sg_tables_recover(tables, err, sizeof(err)) != 0) {
        assert_true(++tries < 100); /* 10 s */
        usleep(100 * 1000);
    }
    assert_int_equal(sg_tables_health(tables, reason, sizeof(reason)), SG_STORAGE_OK);
    assert_string_equal(reason, "");
    /* Exactly the last successful commit, then on from the stored position. */
    assert_position(tables, "users", "t", 0, 0, next, 10 * (next - 1));
    int64_t total = next + 4;
    for (int64_t i = next; i < total; i++)
        assert_int_equal(apply_big(tables, i, err, sizeof(err)), 0);

    for (int64_t i = 0; i < total; i++)
        assert_int_equal(apply_big(fx->tables, i, err, sizeof(err)), 0);
    assert_same_tables(tables, fx->tables);
    sg_tables_close(tables);
    sg_test_tmpfs_unmount(&fs);
}

/* The reopen after a full disk cannot open the database for writing (a file system that became
 * read-only): it opens it read-only, and reads go on answering the last committed rows, every
 * time they are read (RocksDB 7.8's row cache answered "absent" to the second read of a row in a
 * database opened read-only). */
static void test_read_only_reopen_keeps_reading(void **state)
{
    sg_test_tmpfs_t fs;
    sg_tables_t *tables = open_tables_on_small_disk(&fs);
    char err[512] = "";
    /* Rows in a table file (a read-only database serves the rows of its files through the row
     * cache; those of the write-ahead log from memory), then the big stream fills the disk. */
    sg_table_batch_t *batch = sg_table_batch_new(tables, "users");
    assert_non_null(batch);
    for (int i = 0; i < 10; i++) {
        char key[16], value[32];
        snprintf(key, sizeof(key), "f%d", i);
        snprintf(value, sizeof(value), "{\"f\":%d}", i);
        assert_int_equal(sg_table_batch_put(batch, "f", 0, i, i, key, strlen(key), value, strlen(value), err, sizeof(err)), 0);
    }
    assert_int_equal(sg_table_batch_commit(batch, err, sizeof(err)), 0);
    sg_table_batch_destroy(batch);
    assert_int_equal(sg_tables_settle(tables, err, sizeof(err)), 0);
    int64_t next = 0;
    while (next < 40 && apply_big(tables, next, err, sizeof(err)) == 0)
        next++;
    assert_true(next < 40);
    assert_int_equal(sg_tables_health(tables, NULL, 0), SG_STORAGE_UNAVAILABLE);

    sg_test_tmpfs_free(&fs);
    sg_tables_test_fail_writable_open(tables, 1);
    int tries = 0;
    while (sg_tables_recover(tables, err, sizeof(err)) == 1 && strstr(err, "for writing") == NULL) {
        assert_true(++tries < 100); /* 10 s */
        usleep(100 * 1000);
    }
    assert_non_null(strstr(err, "for writing"));
    assert_int_equal(sg_tables_health(tables, NULL, 0), SG_STORAGE_UNAVAILABLE);
    /* The last row of every key, read three times each (the first read fills the row cache). */
    for (int64_t i = next - 6; i < next; i++) {
        char *want = big_value(i);
        char key[16];
        snprintf(key, sizeof(key), "k%lld", (long long)(i % 6));
        for (int n = 0; n < 3; n++)
            assert_row(tables, "users", key, want);
        free(want);
    }
    for (int i = 0; i < 10; i++) {
        char key[16], want[32];
        snprintf(key, sizeof(key), "f%d", i);
        snprintf(want, sizeof(want), "{\"f\":%d}", i);
        for (int n = 0; n < 3; n++)
            assert_row(tables, "users", key, want);
    }
    assert_row(tables, "users", "no-such-key", NULL);
    sg_tables_close(tables);
    sg_test_tmpfs_unmount(&fs);
}

/* The gateway's request store shares the tables' disk (both under data_dir). After a full disk
 * the store, reopened first (its sweep tries every second), must leave the room the deleted file
 * gave back to the tables, whose own reopen is what turns their write-ahead log back into free
 * room. RocksDB used to preallocate the store's new log and manifest (12.8 MiB, more than the
 * 10 MiB freed): the tables then waited for room forever (tests/integration/test_disk.c). */
static void test_store_reopen_leaves_room_for_the_tables(void **state)
{
    (void)state;
    sg_test_tmpfs_t fs;
    sg_tables_t *tables = open_tables_on_small_disk(&fs);
    char dir[300], err[1024] = "";
    snprintf(dir, sizeof(dir), "%s/state", fs.dir);
    sg_store_t *store = sg_store_open(dir, err, sizeof(err));
    assert_non_null(store);
    int64_t next = 0;
    while (next < 40 && apply_big(tables, next, err, sizeof(err)) == 0)
        next++;
    assert_true(next > 0 && next < 40);
    sg_request_record_t rec = {.state = SG_REQUEST_PENDING, .created_ms = 1, .expires_ms = INT64_MAX};
    assert_int_equal(sg_store_put_request(store, "r1", 2, &rec, err, sizeof(err)), -1);
    assert_int_equal(sg_store_health(store, NULL, 0), SG_STORAGE_UNAVAILABLE);

    sg_test_tmpfs_free(&fs);
    int tries = 0;
    while (sg_store_recover(store, err, sizeof(err)) != 0) {
        assert_true(++tries < 100); /* 10 s */
        usleep(100 * 1000);
    }
    /* A write: RocksDB makes the new log's reservation with its first record. */
    assert_int_equal(sg_store_put_request(store, "r2", 2, &rec, err, sizeof(err)), 0);
    tries = 0;
    while (sg_tables_recover(tables, err, sizeof(err)) != 0) {
        if (++tries == 30) /* 3 s: a reopen is tried every second */
            fail_msg("the tables did not reopen: %s", err);
        usleep(100 * 1000);
    }
    assert_int_equal(sg_tables_health(tables, NULL, 0), SG_STORAGE_OK);
    assert_position(tables, "users", "t", 0, 0, next, 10 * (next - 1));
    assert_int_equal(apply_big(tables, next, err, sizeof(err)), 0);
    sg_store_close(store);
    sg_tables_close(tables);
    sg_test_tmpfs_unmount(&fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upsert_then_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tombstone_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_later_record_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_positions_stored_with_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_between_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_clears_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_batches_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_prefix_and_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_paging_visits_every_row_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_rejects_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_from_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_carries_its_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detached_jobs_commit_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_batches_are_ingested_with_their_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_write_of_a_key_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle_keeps_rows_and_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_reads_while_committing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_with_other_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_layout_positions_are_read_and_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_layout_positions_move_into_the_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_stops_and_resumes, setup, teardown),
        cmocka_unit_test(test_read_only_reopen_keeps_reading),
        cmocka_unit_test(test_store_reopen_leaves_room_for_the_tables),
    };
    return cmocka_run_group_tests_name("queries-table", tests, NULL, NULL);
}
