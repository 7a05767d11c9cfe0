/*
 * Scale-out (DESIGN §8; README, "Scale-out"): three instances of one deployment share a table
 * with `placement: partitioned` and `standbys: 1` on a 12-partition topic, on the mock cluster
 * run by `streamgate cluster` or on a 3-node real Kafka cluster under tests/kafka/with-cluster.
 *
 * - every instance answers a read of every key with the right row, with the write's token;
 *   about two thirds of them are forwarded to the owner (Streamgate-Served-By names who read it);
 *   a scan paged through with a different instance per page returns every row once, in order;
 * - each instance's RocksDB (opened read-only beside it) holds the rows of the partitions it owns
 *   plus its standbys, about two thirds of them, never all; together they hold every partition;
 * - SIGKILL an instance: no read is answered wrongly (a standby answers, or 503 while the group
 *   moves the partitions), and within the session timeout every key reads right on the others;
 *   restarted on its data it takes its share back and every instance reads every key again.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <rocksdb/c.h>

#include "harness.h"

#define TOPIC "sx.rows"
#define PARTITIONS 12
#define ROWS 600
#define N_GW 3
#define PLACED_DEADLINE_MS 60000

static sg_test_proc_t cluster, gateways[N_GW];
static char tokens[ROWS][1024]; /* each row's write token */

static void config_text(char *config, size_t size)
{
    snprintf(config, size,
             "listen: [\"127.0.0.1:0\"]\n"
             "data_dir: @DIR@/data\n"
             "kafka: {brokers: \"%s\"}\n"
             "deployment: {name: sx}\n"
             "limits: {token_wait: 10s}\n"
             "routes:\n"
             "  - {name: put-row, method: PUT, path: \"/rows/{id}\", topic: " TOPIC ", key: \"path:id\"}\n"
             "tables: [{name: rows, topic: " TOPIC ", placement: partitioned, standbys: 1}]\n",
             cluster.bootstrap);
}

/* streamgate_table_partitions{table="rows",role=ROLE} of a gateway, or -1. */
static int metric(const sg_test_proc_t *gw, const char *role)
{
    sg_test_response_t res;
    if (sg_test_http(gw, "GET", "/metrics", NULL, NULL, 0, &res) != 0)
        return -1;
    char needle[128];
    snprintf(needle, sizeof(needle), "streamgate_table_partitions{table=\"rows\",role=\"%s\"} ", role);
    const char *at = res.body != NULL ? strstr(res.body, needle) : NULL;
    int value = at != NULL ? atoi(at + strlen(needle)) : -1;
    sg_test_response_free(&res);
    return value;
}

/* Whether the gateways given own every partition once, each keeps standbys, and all are ready. */
static int placed(sg_test_proc_t *const *gws, int n)
{
    int owned = 0;
    for (int i = 0; i < n; ++i) {
        int owner = metric(gws[i], "owner"), standby = metric(gws[i], "standby"), ready = metric(gws[i], "ready");
        if (owner <= 0 || standby <= 0 || ready != owner + standby)
            return 0;
        owned += owner;
    }
    return owned == PARTITIONS;
}

static void wait_placed(sg_test_proc_t *const *gws, int n)
{
    int64_t deadline = sg_test_now_ms() + PLACED_DEADLINE_MS;
    while (!placed(gws, n)) {
        if (sg_test_now_ms() > deadline) {
            for (int i = 0; i < n; ++i)
                fprintf(stderr, "gateway %d: owner %d standby %d ready %d\n", i, metric(gws[i], "owner"),
                        metric(gws[i], "standby"), metric(gws[i], "ready"));
            fail_msg("the partitions were not placed within %d ms", PLACED_DEADLINE_MS);
        }
        sg_test_sleep_ms(200);
    }
}

static int setup(void **state)
{
    const char *args[] = {"--topic", TOPIC ":12", NULL};
    if (sg_test_cluster_start(&cluster, args) != 0)
        return -1;
    char config[2048];
    config_text(config, sizeof(config));
    for (int g = 0; g < N_GW; ++g)
        if (sg_test_gateway_start(&gateways[g], config) != 0)
            return -1;
    return 0;
}

static int teardown(void **state)
{
    return sg_test_stop_procs(&gateways[0], &gateways[1], &gateways[2], &cluster, NULL);
}

/* Reads row i on gw with its token: 0 right (served-by copied), 1 refused (503 that is not an
 * answer from the past), -1 wrong. */
static int read_row(const sg_test_proc_t *gw, int i, char *served_by, size_t size)
{
    char path[64], headers[1200];
    snprintf(path, sizeof(path), "/tables/rows/r%03d", i);
    snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\n", tokens[i]);
    sg_test_response_t res;
    if (sg_test_http(gw, "GET", path, headers, NULL, 0, &res) != 0)
        return 1;
    int rc = -1;
    if (res.status == 503) {
        rc = 1;
    } else if (res.status == 200) {
        json_t *doc = json_loadb(res.body, res.body_len, 0, NULL);
        rc = json_integer_value(json_object_get(doc, "n")) == i ? 0 : -1;
        json_decref(doc);
        if (sg_test_header(&res, "streamgate-served-by", served_by, size) == NULL)
            rc = -1;
        char token[1200];
        if (sg_test_header(&res, "consistency-token", token, sizeof(token)) == NULL)
            rc = -1;
    }
    if (rc < 0)
        fprintf(stderr, "GET %s on port %u: %d %.*s\n", path, gw->port, res.status, (int)res.body_len, res.body);
    sg_test_response_free(&res);
    return rc;
}

static void scan_pages_through_every_row_once(int tolerate_refusals);

static void test_every_instance_reads_every_key(void **state)
{
    sg_test_proc_t *all[N_GW] = {&gateways[0], &gateways[1], &gateways[2]};
    wait_placed(all, N_GW);
    for (int i = 0; i < ROWS; ++i) {
        char path[64], body[64];
        snprintf(path, sizeof(path), "/rows/r%03d", i);
        snprintf(body, sizeof(body), "{\"n\":%d}", i);
        sg_test_response_t res;
        assert_int_equal(sg_test_send_json(&gateways[i % N_GW], "PUT", path, NULL, body, &res), 0);
        assert_int_equal(res.status, 202);
        assert_non_null(sg_test_header(&res, "consistency-token", tokens[i], sizeof(tokens[i])));
        sg_test_response_free(&res);
    }
    char names[N_GW][64]; /* each gateway's instance name, made once in its data_dir */
    for (int g = 0; g < N_GW; ++g) {
        char path[512];
        snprintf(path, sizeof(path), "%s/data/instance.id", gateways[g].dir);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        assert_non_null(fgets(names[g], sizeof(names[g]), f));
        fclose(f);
        names[g][strcspn(names[g], "\r\n")] = '\0';
    }
    int served[N_GW] = {0};
    for (int g = 0; g < N_GW; ++g) {
        int forwarded = 0;
        for (int i = 0; i < ROWS; ++i) {
            char by[64];
            assert_int_equal(read_row(&gateways[g], i, by, sizeof(by)), 0);
            forwarded += strcmp(by, names[g]) != 0;
            for (int k = 0; k < N_GW; ++k)
                served[k] += strcmp(by, names[k]) == 0;
        }
        fprintf(stderr, "gateway %d (%s): %d of %d reads forwarded to the key's owner\n", g, names[g], forwarded, ROWS);
        assert_true(forwarded > ROWS / 3 && forwarded < ROWS * 5 / 6); /* about two thirds */
    }
    fprintf(stderr, "rows read by %s %d, %s %d, %s %d (of %d reads)\n", names[0], served[0], names[1], served[1], names[2],
            served[2], N_GW * ROWS);
    for (int k = 0; k < N_GW; ++k) /* each owns about a third */
        assert_true(served[k] > N_GW * ROWS / 6 && served[k] < N_GW * ROWS / 2);

    /* a key nobody wrote: 404 wherever it is asked */
    for (int g = 0; g < N_GW; ++g) {
        sg_test_response_t res;
        assert_int_equal(sg_test_http(&gateways[g], "GET", "/tables/rows/nobody", NULL, NULL, 0, &res), 0);
        sg_test_assert_problem(&res, 404, "no-such-row", NULL);
        sg_test_response_free(&res);
    }
    scan_pages_through_every_row_once(0);
    /* partitions= is another instance's word, not a client's */
    sg_test_response_t res;
    assert_int_equal(sg_test_http(&gateways[0], "GET", "/tables/rows?partitions=1", NULL, NULL, 0, &res), 0);
    sg_test_assert_problem(&res, 400, "invalid-query", "partitions");
    sg_test_response_free(&res);
}

/* Pages through GET /tables/rows?limit=37, asking a different instance for each page: every row
 * comes exactly once, in key order. With `tolerate_refusals`, a 503 is retried (a part's owner
 * may be moving). */
static void scan_pages_through_every_row_once(int tolerate_refusals)
{
    static char seen[ROWS];
    memset(seen, 0, sizeof(seen));
    char cursor[1024] = "", last[64] = "";
    int pages = 0, total = 0, refused = 0;
    do {
        char path[1200];
        snprintf(path, sizeof(path), "/tables/rows?limit=37%s%s", cursor[0] != '\0' ? "&cursor=" : "", cursor);
        sg_test_response_t res;
        assert_int_equal(sg_test_http(&gateways[pages % N_GW], "GET", path, NULL, NULL, 0, &res), 0);
        if (res.status == 503 && tolerate_refusals && refused < 200) {
            ++refused;
            sg_test_response_free(&res);
            sg_test_sleep_ms(100);
            continue;
        }
        if (res.status != 200)
            fail_msg("GET %s: %d %.*s", path, res.status, (int)res.body_len, res.body);
        char token[2048];
        assert_non_null(sg_test_header(&res, "consistency-token", token, sizeof(token)));
        json_t *doc = json_loadb(res.body, res.body_len, 0, NULL);
        json_t *rows = json_object_get(doc, "rows"), *next = json_object_get(doc, "next");
        assert_true(json_is_array(rows));
        assert_true(json_array_size(rows) <= 37);
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            const char *key = json_string_value(json_object_get(row, "key"));
            assert_non_null(key);
            assert_true(strcmp(key, last) > 0); /* key order, within and across pages */
            snprintf(last, sizeof(last), "%s", key);
            int n = atoi(key + 1);
            assert_true(n >= 0 && n < ROWS);
            assert_int_equal(seen[n], 0); /* exactly once */
            seen[n] = 1;
            assert_int_equal(json_integer_value(json_object_get(json_object_get(row, "value"), "n")), n);
            ++total;
        }
        snprintf(cursor, sizeof(cursor), "%s", json_is_string(next) ? json_string_value(next) : "");
        json_decref(doc);
        sg_test_response_free(&res);
        ++pages;
    } while (cursor[0] != '\0' && pages < 1000);
    fprintf(stderr, "scan: %d rows in %d pages across the %d instances (%d refusals retried)\n", total, pages, N_GW, refused);
    assert_int_equal(total, ROWS);
}

/* Rows per partition in a gateway's table store, opened read-only while it runs. Returns the
 * number of rows, or -1. */
static long count_rows(const sg_test_proc_t *gw, long per_partition[PARTITIONS])
{
    char path[512];
    snprintf(path, sizeof(path), "%s/data/tables", gw->dir);
    rocksdb_options_t *options = rocksdb_options_create();
    char *err = NULL;
    size_t n_families = 0;
    char **families = rocksdb_list_column_families(options, path, &n_families, &err);
    if (err != NULL) {
        fprintf(stderr, "%s: %s\n", path, err);
        free(err);
        rocksdb_options_destroy(options);
        return -1;
    }
    const rocksdb_options_t **family_options = calloc(n_families, sizeof(*family_options));
    rocksdb_column_family_handle_t **handles = calloc(n_families, sizeof(*handles));
    size_t rows_family = n_families;
    for (size_t i = 0; i < n_families; ++i) {
        family_options[i] = options;
        if (strcmp(families[i], "t:rows") == 0)
            rows_family = i;
    }
    rocksdb_t *db = rocksdb_open_for_read_only_column_families(options, path, (int)n_families, (const char *const *)families,
                                                               family_options, handles, 0, &err);
    long rows = -1;
    if (err == NULL && rows_family < n_families) {
        rows = 0;
        rocksdb_readoptions_t *read = rocksdb_readoptions_create();
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, read, handles[rows_family]);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t len = 0, key_len = 0;
            rocksdb_iter_key(it, &key_len);
            if (key_len == 0)
                continue; /* the empty key holds the table's positions (queries/table.c), not a row */
            const unsigned char *value = (const unsigned char *)rocksdb_iter_value(it, &len);
            /* u8 version, u32 partition (big-endian), ... (queries/table.c) */
            uint32_t partition = len >= 5 ? (uint32_t)value[1] << 24 | (uint32_t)value[2] << 16 | (uint32_t)value[3] << 8 | value[4]
                                          : UINT32_MAX;
            if (partition < PARTITIONS)
                ++per_partition[partition];
            ++rows;
        }
        rocksdb_iter_destroy(it);
        rocksdb_readoptions_destroy(read);
    } else if (err != NULL) {
        fprintf(stderr, "%s: %s\n", path, err);
        free(err);
    }
    for (size_t i = 0; db != NULL && i < n_families; ++i)
        rocksdb_column_family_handle_destroy(handles[i]);
    if (db != NULL)
        rocksdb_close(db);
    rocksdb_list_column_families_destroy(families, n_families);
    free(family_options);
    free(handles);
    rocksdb_options_destroy(options);
    return rows;
}

static void test_each_store_holds_its_share(void **state)
{
    long union_rows[PARTITIONS] = {0};
    for (int g = 0; g < N_GW; ++g) {
        long per_partition[PARTITIONS] = {0};
        long rows = count_rows(&gateways[g], per_partition);
        int partitions = 0;
        for (int p = 0; p < PARTITIONS; ++p) {
            partitions += per_partition[p] > 0;
            if (per_partition[p] > union_rows[p])
                union_rows[p] = per_partition[p];
        }
        int owner = metric(&gateways[g], "owner"), standby = metric(&gateways[g], "standby");
        fprintf(stderr, "gateway %d: %ld of %d rows in its RocksDB, from %d partitions (owns %d, standby for %d):", g, rows, ROWS,
                partitions, owner, standby);
        for (int p = 0; p < PARTITIONS; ++p)
            fprintf(stderr, " %ld", per_partition[p]);
        fprintf(stderr, "\n");
        assert_true(rows > ROWS * 2 / 5 && rows < ROWS * 9 / 10); /* owned third + standby third, never all */
        assert_true(partitions <= owner + standby);
    }
    long total = 0;
    for (int p = 0; p < PARTITIONS; ++p) {
        assert_true(union_rows[p] > 0); /* every partition is kept somewhere */
        total += union_rows[p];
    }
    assert_int_equal(total, ROWS);
}

static void test_owner_killed_then_back(void **state)
{
    assert_int_equal(sg_test_proc_kill9(&gateways[2]), 0);
    int64_t killed_at = sg_test_now_ms();
    int refused = 0, right = 0;
    for (int i = 0; i < ROWS; ++i)
        for (int g = 0; g < 2; ++g) {
            char by[64];
            int rc = read_row(&gateways[g], i, by, sizeof(by));
            assert_true(rc >= 0); /* never a wrong answer */
            refused += rc == 1;
            right += rc == 0;
        }
    fprintf(stderr, "owner killed: %d reads right, %d refused (503) in the first %.1f s\n", right, refused,
            (double)(sg_test_now_ms() - killed_at) / 1000.0);
    assert_true(right > 0);
    /* The group moves its partitions within the session timeout: then every key reads right. */
    sg_test_proc_t *two[2] = {&gateways[0], &gateways[1]};
    wait_placed(two, 2);
    for (int i = 0; i < ROWS; ++i)
        for (int g = 0; g < 2; ++g) {
            char by[64];
            assert_int_equal(read_row(&gateways[g], i, by, sizeof(by)), 0);
        }
    fprintf(stderr, "owner killed: every key reads right on the two others %.1f s after the kill\n",
            (double)(sg_test_now_ms() - killed_at) / 1000.0);

    assert_int_equal(sg_test_gateway_rerun(&gateways[2], 1), 0);
    sg_test_proc_t *all[N_GW] = {&gateways[0], &gateways[1], &gateways[2]};
    wait_placed(all, N_GW);
    scan_pages_through_every_row_once(1);
    for (int i = 0; i < ROWS; ++i)
        for (int g = 0; g < N_GW; ++g) {
            char by[64];
            assert_int_equal(read_row(&gateways[g], i, by, sizeof(by)), 0);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_instance_reads_every_key),
        cmocka_unit_test(test_each_store_holds_its_share),
        cmocka_unit_test(test_owner_killed_then_back),
    };
    return cmocka_run_group_tests_name("integration-scale", tests, setup, teardown);
}
