/*
 * Kill -9 while a table is being written at a high rate, restart, compare with a rebuild
 * (DESIGN §4: the applied position is written in the same WriteBatch as the rows it covers).
 *
 * A producer thread in the test writes N_RECORDS records straight to a 4-partition topic of a
 * separate `streamgate cluster`: repeated keys (so order matters), keys written once, and
 * tombstones. Gateway A materializes the table while that goes on; once A is seen behind (a read
 * with a token of what was already delivered, Prefer: wait=0, is refused with 503) it is killed
 * with SIGKILL, at once. A copy of its database is then opened directly: it must be exactly the
 * last-write-wins state of the records below its stored positions (rows and positions came from
 * the same batches). A restarts on the same data_dir (resuming, not rebuilding) while the
 * producer finishes; gateway B starts on a fresh data_dir (a rebuild from scratch). Once both
 * have applied everything the producer's delivery reports name, both are stopped and their
 * databases compared row by row, with each other and with the state computed from what was
 * produced (last write per key wins, a tombstone deletes).
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "harness.h"
#include "sg_table.h"
#include "sg_token.h"

#define TOPIC "cr.kv"
#define TABLE "kv"
#define PARTITIONS 4
#define N_RECORDS 200000
#define HOT_KEYS 3000
#define PRODUCE_RATE 40000 /* records/s, at most */
#define KILLS 3
#define MIN_PROGRESS 5000 /* records A applies between two kills */
#define CATCH_UP_DEADLINE_MS 90000

static sg_test_proc_t cluster;

/* --- what is produced: record i's key and value are a function of i ----------------------- */

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static void record_key(int i, char *buf, size_t buflen)
{
    if (i % 7 == 0)
        snprintf(buf, buflen, "u%07d", i); /* written once */
    else
        snprintf(buf, buflen, "k%05u", mix((uint32_t)i) % HOT_KEYS); /* written ~60 times */
}

/* Where record timestamps start: an hour before the test (set once, before the first record).
 * Not a fixed date: a real broker's time-based retention (7 days by default, first checked 30 s
 * after it starts) deletes whole segments of records stamped long ago, i.e. the topic, while A
 * or B may still be restoring it; the mock cluster keeps everything. */
static int64_t timestamp_base;

static void timestamp_base_set(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    timestamp_base = (int64_t)now.tv_sec * 1000 - 3600 * 1000;
}

/* Record i's timestamp: rising with i, with jitter, so "the largest timestamp applied" (stream
 * time) differs from "the last one". */
static int64_t record_timestamp(int i)
{
    return timestamp_base + i + (int64_t)(mix((uint32_t)i ^ 0x51ed27U) % 2000);
}

/* Returns the value's length, or -1 for a tombstone (one record in 8 on the hot keys). */
static int record_value(int i, char *buf, size_t buflen)
{
    uint32_t h = mix((uint32_t)i ^ 0x9e3779b9U);
    if (i % 7 != 0 && h % 8 == 0)
        return -1;
    return snprintf(buf, buflen, "{\"i\":%d,\"pad\":\"%.*s\"}", i, (int)(h % 100),
                    "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrst");
}

typedef struct {
    int32_t partition; /* -1 until delivered */
    int64_t offset;
} delivery_t;

typedef struct {
    rd_kafka_t *rk;
    delivery_t *deliveries; /* per record i */
    atomic_int delivered, failed, done;
    atomic_int hold;                         /* set: from half way on, a trickle (bounded) until cleared, so the first kill
                                              * lands while records are still being written however slow the machine is */
    _Atomic int64_t next_offset[PARTITIONS]; /* per partition: highest delivered offset + 1 */
    pthread_t thread;
} producer_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    producer_t *producer = opaque;
    int i = (int)(intptr_t)msg->_private;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR || msg->partition < 0 || msg->partition >= PARTITIONS) {
        if (atomic_fetch_add(&producer->failed, 1) < 5)
            fprintf(stderr, "record %d not delivered: %s\n", i, rd_kafka_err2str(msg->err));
        return;
    }
    producer->deliveries[i].partition = msg->partition;
    producer->deliveries[i].offset = msg->offset;
    int64_t next = msg->offset + 1;
    int64_t seen = atomic_load(&producer->next_offset[msg->partition]);
    while (seen < next && !atomic_compare_exchange_weak(&producer->next_offset[msg->partition], &seen, next))
        ;
    atomic_fetch_add(&producer->delivered, 1);
}

static void *producer_main(void *arg)
{
    producer_t *producer = arg;
    char key[32], value[256];
    int64_t start = sg_test_now_ms(), hold_deadline = start + 60000;
    for (int i = 0; i < N_RECORDS; ++i) {
        /* Paced, so the writes go on while A is killed and restarted (a slower machine only
         * slows the producer down further). */
        while ((sg_test_now_ms() - start) * PRODUCE_RATE / 1000 < i)
            rd_kafka_poll(producer->rk, 1);
        if (i >= N_RECORDS / 2 && atomic_load(&producer->hold) && sg_test_now_ms() < hold_deadline)
            rd_kafka_poll(producer->rk, 20); /* a trickle: still writing, A not left behind for good */
        record_key(i, key, sizeof(key));
        int len = record_value(i, value, sizeof(value));
        void *payload = len < 0 ? NULL : value; /* NULL: a tombstone */
        size_t payload_len = len < 0 ? 0 : (size_t)len;
        for (;;) {
            rd_kafka_resp_err_t err =
                rd_kafka_producev(producer->rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_KEY(key, strlen(key)),
                                  RD_KAFKA_V_VALUE(payload, payload_len), RD_KAFKA_V_TIMESTAMP(record_timestamp(i)),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "produce %d: %s\n", i, rd_kafka_err2str(err));
                atomic_fetch_add(&producer->failed, 1);
                break;
            }
            rd_kafka_poll(producer->rk, 5);
        }
        rd_kafka_poll(producer->rk, 0);
    }
    /* Everything out (bounded), delivery reports served on this thread. */
    for (int64_t deadline = sg_test_now_ms() + 60000; rd_kafka_outq_len(producer->rk) > 0 && sg_test_now_ms() < deadline;)
        rd_kafka_poll(producer->rk, 50);
    atomic_store(&producer->done, 1);
    return NULL;
}

static void producer_start(producer_t *producer)
{
    memset(producer, 0, sizeof(*producer));
    producer->deliveries = malloc(N_RECORDS * sizeof(*producer->deliveries));
    assert_non_null(producer->deliveries);
    for (int i = 0; i < N_RECORDS; ++i)
        producer->deliveries[i].partition = -1;
    atomic_store(&producer->hold, 1);
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", cluster.bootstrap, err, sizeof(err)), 0);
    /* idempotent: a retried batch cannot land twice or out of order, so offset order is send order */
    assert_int_equal(rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err)), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof(err)), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)), 0);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, producer);
    producer->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(producer->rk);
    assert_int_equal(pthread_create(&producer->thread, NULL, producer_main, producer), 0);
}

static void producer_finish(producer_t *producer)
{
    pthread_join(producer->thread, NULL);
    rd_kafka_destroy(producer->rk);
    producer->rk = NULL;
}

/* Token naming every delivered record so far. Returns its text (owned). */
static char *delivered_token(producer_t *producer)
{
    sg_token_t *token = sg_token_create();
    for (int p = 0; p < PARTITIONS; ++p) {
        int64_t next = atomic_load(&producer->next_offset[p]);
        if (next > 0)
            assert_int_equal(sg_token_advance(token, TOPIC, p, next - 1, 0), 0);
    }
    size_t len = sg_token_encode(token, NULL, 0);
    char *text = malloc(len + 1);
    sg_token_encode(token, text, len + 1);
    sg_token_destroy(token);
    return text;
}

/* The expected states are computed from every record produced: asserts the broker still holds
 * them all (its log start offsets are 0: retention deleted nothing, which a gateway would rightly
 * answer with a rebuild from what is left). */
static void assert_topic_whole(void)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", cluster.bootstrap, err, sizeof(err)), 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(rk);
    for (int p = 0; p < PARTITIONS; ++p) {
        int64_t low = -1, high = -1;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, TOPIC, p, &low, &high, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        if (low != 0)
            fprintf(stderr, "%s [%d]: records below offset %" PRId64 " were deleted by the broker\n", TOPIC, p, low);
        assert_int_equal(low, 0);
    }
    rd_kafka_destroy(rk);
}

/* --- table contents ---------------------------------------------------------------------------- */

typedef struct {
    char *key;
    char *value;
    size_t value_len;
    sg_table_version_t version;
} row_t;

typedef struct {
    row_t *rows;
    size_t n, cap;
} rows_t;

static void rows_add(rows_t *rows, const void *key, size_t keylen, const void *value, size_t valuelen,
                     const sg_table_version_t *version)
{
    if (rows->n == rows->cap) {
        rows->cap = rows->cap ? rows->cap * 2 : 1024;
        rows->rows = realloc(rows->rows, rows->cap * sizeof(*rows->rows));
        assert_non_null(rows->rows);
    }
    row_t *row = &rows->rows[rows->n++];
    row->key = strndup(key, keylen);
    row->value = malloc(valuelen + 1);
    memcpy(row->value, value, valuelen);
    row->value[valuelen] = '\0';
    row->value_len = valuelen;
    if (version != NULL)
        row->version = *version;
    else
        memset(&row->version, 0, sizeof(row->version));
}

static void rows_free(rows_t *rows)
{
    for (size_t i = 0; i < rows->n; ++i) {
        free(rows->rows[i].key);
        free(rows->rows[i].value);
    }
    free(rows->rows);
    memset(rows, 0, sizeof(*rows));
}

static int collect_row(void *arg, const void *key, size_t keylen, const void *value, size_t valuelen,
                       const sg_table_version_t *version)
{
    rows_add(arg, key, keylen, value, valuelen, version);
    return 0;
}

typedef struct {
    int64_t next_offset[PARTITIONS];
    int64_t stream_time[PARTITIONS];
} positions_t;

static int collect_position(void *arg, const char *topic, int32_t partition, int64_t next_offset, int64_t stream_time_ms)
{
    positions_t *positions = arg;
    if (strcmp(topic, TOPIC) == 0 && partition >= 0 && partition < PARTITIONS) {
        positions->next_offset[partition] = next_offset;
        positions->stream_time[partition] = stream_time_ms;
    }
    return 0;
}

/* Opens a table database (no gateway may be running on it), reads its stored positions and
 * every row with paged scans (cursors), in key order. */
static void read_table_at(const char *dir, positions_t *positions, rows_t *rows)
{
    char err[512];
    const char *names[] = {TABLE};
    sg_tables_t *tables = sg_tables_open(dir, names, 1, err, sizeof(err));
    if (tables == NULL)
        fprintf(stderr, "%s: %s\n", dir, err);
    assert_non_null(tables);
    memset(positions, 0, sizeof(*positions));
    assert_int_equal(sg_tables_positions(tables, TABLE, collect_position, positions, err, sizeof(err)), 0);
    memset(rows, 0, sizeof(*rows));
    char *cursor = NULL;
    size_t pages = 0;
    do {
        sg_table_scan_t query = {.limit = SG_TABLE_SCAN_MAX_LIMIT, .cursor = cursor};
        char *next = NULL;
        int n = sg_tables_scan(tables, TABLE, &query, collect_row, rows, &next, NULL, err, sizeof(err));
        if (n < 0)
            fprintf(stderr, "scan: %s\n", err);
        assert_true(n >= 0);
        free(cursor);
        cursor = next;
        ++pages;
        assert_true(pages < N_RECORDS);
    } while (cursor != NULL);
    sg_tables_close(tables);
    for (size_t i = 1; i < rows->n; ++i)
        assert_true(strcmp(rows->rows[i - 1].key, rows->rows[i].key) < 0);
}

/* The same, for a stopped gateway's own database. */
static void read_table(const sg_test_proc_t *gw, positions_t *positions, rows_t *rows)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/data/tables", gw->dir);
    read_table_at(dir, positions, rows);
}

/* The same, on a copy of a killed gateway's database: opening the original would recover its
 * write-ahead log for it, and the restart is meant to face the crash exactly as it was left. */
static void read_killed_table(const sg_test_proc_t *gw, positions_t *positions, rows_t *rows)
{
    char copy[] = "/tmp/sg-killed-XXXXXX", cmd[1400];
    assert_non_null(mkdtemp(copy));
    snprintf(cmd, sizeof(cmd), "cp -a '%s/data/tables' '%s/tables'", gw->dir, copy);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s/tables", copy);
    read_table_at(cmd, positions, rows);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", copy);
    assert_int_equal(system(cmd), 0);
}

typedef struct {
    const char *key; /* in keys[] */
    int32_t partition;
    int64_t offset;
    int i;
} produced_t;

static int by_key_then_offset(const void *a, const void *b)
{
    const produced_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c != 0)
        return c;
    if (x->partition != y->partition) /* a key's records share a partition; order anyway */
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The state a table must hold after applying, per partition p, the records at offsets below
 * upto[p]: the last write per key wins, a tombstone deletes. Rows in key order; stream_time[p]:
 * the largest timestamp among those records. */
static void expected_state(const producer_t *producer, const int64_t upto[PARTITIONS], rows_t *rows,
                           int64_t stream_time[PARTITIONS])
{
    for (int p = 0; p < PARTITIONS; ++p)
        stream_time[p] = 0;
    static char keys[N_RECORDS][12];
    produced_t *all = malloc(N_RECORDS * sizeof(*all));
    assert_non_null(all);
    size_t n = 0;
    for (int i = 0; i < N_RECORDS; ++i) {
        const delivery_t *d = &producer->deliveries[i];
        assert_true(d->partition >= 0); /* every record was delivered */
        if (d->offset >= upto[d->partition])
            continue;
        record_key(i, keys[i], sizeof(keys[i]));
        if (record_timestamp(i) > stream_time[d->partition])
            stream_time[d->partition] = record_timestamp(i);
        all[n++] = (produced_t){.key = keys[i], .partition = d->partition, .offset = d->offset, .i = i};
    }
    qsort(all, n, sizeof(*all), by_key_then_offset);
    memset(rows, 0, sizeof(*rows));
    for (size_t at = 0; at < n; ++at) {
        if (at + 1 < n && strcmp(all[at].key, all[at + 1].key) == 0) {
            assert_int_equal(all[at].partition, all[at + 1].partition); /* keyed: one partition */
            assert_true(all[at].offset < all[at + 1].offset);
            continue;
        }
        char value[256];
        int len = record_value(all[at].i, value, sizeof(value));
        if (len < 0)
            continue; /* deleted */
        sg_table_version_t version = {
            .partition = all[at].partition, .offset = all[at].offset, .timestamp_ms = record_timestamp(all[at].i)};
        rows_add(rows, all[at].key, strlen(all[at].key), value, (size_t)len, &version);
    }
    free(all);
}

/* Row-by-row equality of keys, values, and where each value came from (partition, offset,
 * timestamp); with_etags also the ETags (two tables built from the same log). */
static void assert_same_rows(const char *what, const rows_t *got, const rows_t *want, int with_etags)
{
    size_t shown = 0;
    for (size_t i = 0; i < got->n && i < want->n && shown < 5; ++i) {
        const row_t *a = &got->rows[i], *b = &want->rows[i];
        int same = strcmp(a->key, b->key) == 0 && a->value_len == b->value_len && memcmp(a->value, b->value, a->value_len) == 0 &&
                   a->version.partition == b->version.partition && a->version.offset == b->version.offset &&
                   a->version.timestamp_ms == b->version.timestamp_ms && (!with_etags || a->version.etag == b->version.etag);
        if (!same) {
            fprintf(stderr, "%s: row %zu: %s = %s (p%d@%" PRId64 ") vs %s = %s (p%d@%" PRId64 ")\n", what, i, a->key, a->value,
                    (int)a->version.partition, a->version.offset, b->key, b->value, (int)b->version.partition, b->version.offset);
            ++shown;
        }
    }
    if (got->n != want->n)
        fprintf(stderr, "%s: %zu rows vs %zu\n", what, got->n, want->n);
    assert_int_equal(shown, 0);
    assert_int_equal(got->n, want->n);
}

/* --- the test ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    const char *args[] = {"--topic", TOPIC ":4", NULL};
    return sg_test_cluster_start(&cluster, args);
}

static int teardown(void **state)
{
    return sg_test_stop_procs(&cluster, NULL);
}

static void config_text(char *buf, size_t buflen)
{
    snprintf(buf, buflen,
             "listen: [\"127.0.0.1:0\"]\n"
             "data_dir: @DIR@/data\n"
             "kafka: {brokers: \"%s\"}\n"
             "limits: {token_wait: 5s, token_wait_max: 30s}\n"
             "tables: [{name: " TABLE ", topic: " TOPIC "}]\n",
             cluster.bootstrap);
}

/* GET a row with a token (NULL: none). Returns the status (0: no answer); the answer's token into view. */
static int get_with_token(const sg_test_proc_t *gw, const char *token, int wait_s, char *view, size_t viewlen)
{
    char headers[4096];
    int n = 0;
    if (token != NULL)
        n = snprintf(headers, sizeof(headers), "Consistency-Token: %s\r\n", token);
    snprintf(headers + n, sizeof(headers) - (size_t)n, "Prefer: wait=%d\r\n", wait_s);
    sg_test_response_t res;
    if (sg_test_http(gw, "GET", "/tables/" TABLE "/k00001", headers, NULL, 0, &res) != 0)
        return 0;
    int status = res.status;
    if (view != NULL && sg_test_header(&res, "consistency-token", view, viewlen) == NULL)
        view[0] = '\0';
    if (status != 200 && status != 404 && status != 503)
        fprintf(stderr, "GET: %d %s\n", status, res.body);
    sg_test_response_free(&res);
    return status;
}

static int64_t token_total(const char *text)
{
    char err[256];
    sg_token_t *token = sg_token_decode(text, strlen(text), err, sizeof(err));
    if (token == NULL)
        return -1;
    int64_t total = 0;
    for (size_t i = 0; i < sg_token_count(token); ++i) {
        const char *topic;
        int32_t partition;
        int64_t offset, stream_time;
        sg_token_entry(token, i, &topic, &partition, &offset, &stream_time);
        if (strcmp(topic, TOPIC) == 0)
            total += offset + 1;
    }
    sg_token_destroy(token);
    return total;
}

/* Waits (bounded) until gw has applied everything delivered; asserts it did. */
static void wait_applied(const sg_test_proc_t *gw, const char *token, const char *name)
{
    int64_t deadline = sg_test_now_ms() + CATCH_UP_DEADLINE_MS;
    int status = 0;
    while (sg_test_now_ms() < deadline && (status = get_with_token(gw, token, 20, NULL, 0)) != 200 && status != 404)
        sg_test_sleep_ms(100);
    if (status != 200 && status != 404)
        fprintf(stderr, "gateway %s did not catch up (last status %d)\n", name, status);
    assert_true(status == 200 || status == 404);
}

typedef struct {
    positions_t positions; /* stored in the killed gateway's database */
    int64_t total;
    rows_t rows;
    int during_production; /* the producer was still writing when the kill came */
} kill_t;

/* Waits (bounded) until A has applied more than min_applied records yet is seen behind what the
 * producer has delivered (a read with that token and Prefer: wait=0 is refused), then kills it
 * with SIGKILL at once and reads what it left on disk. Returns 1 killed, 0 when A could no
 * longer be caught behind (the producer had finished and A had applied everything). */
static int kill_while_behind(sg_test_proc_t *a, producer_t *producer, int64_t min_applied, kill_t *kill)
{
    memset(kill, 0, sizeof(*kill));
    for (int64_t deadline = sg_test_now_ms() + 60000; sg_test_now_ms() < deadline;) {
        if (atomic_load(&producer->delivered) < N_RECORDS / 8) {
            sg_test_sleep_ms(5);
            continue;
        }
        int producing = !atomic_load(&producer->done);
        char view[4096];
        int status = get_with_token(a, NULL, 0, view, sizeof(view)); /* A's view, whatever it is */
        int64_t applied = status == 200 || status == 404 ? token_total(view) : -1;
        if (applied > min_applied) {
            char *token = delivered_token(producer);
            status = get_with_token(a, token, 0, NULL, 0);
            free(token);
            if (status == 503) {
                assert_int_equal(sg_test_proc_kill9(a), 0);
                kill->during_production = producing;
                read_killed_table(a, &kill->positions, &kill->rows);
                for (int p = 0; p < PARTITIONS; ++p)
                    kill->total += kill->positions.next_offset[p];
                fprintf(stderr,
                        "killed A: %d records delivered, %" PRId64 " seen applied just before, %" PRId64
                        " stored, %zu rows; producer %s\n",
                        atomic_load(&producer->delivered), applied, kill->total, kill->rows.n, producing ? "writing" : "done");
                /* what a read saw was committed; what it had not applied was not all there */
                assert_true(kill->total >= applied);
                assert_true(kill->total < N_RECORDS);
                return 1;
            }
            if (!producing && status == 200)
                return 0;
        }
        sg_test_sleep_ms(2);
    }
    fail_msg("A could not be caught behind within 60 s");
    return 0;
}

static void test_kill9_restart_equals_rebuild(void **state)
{
    char config[2048];
    config_text(config, sizeof(config));
    sg_test_proc_t a, b;
    assert_int_equal(sg_test_gateway_start(&a, config), 0);
    producer_t producer;
    int64_t start = sg_test_now_ms();
    timestamp_base_set();
    producer_start(&producer);

    /* Kill A while it applies, restart it on the same data_dir, again, while the records pour
     * in (or, for the later rounds, while it restores the backlog). */
    kill_t kills[KILLS];
    int n_kills = 0;
    int64_t last_total = 0;
    while (n_kills < KILLS && kill_while_behind(&a, &producer, n_kills == 0 ? 1000 : last_total + MIN_PROGRESS, &kills[n_kills])) {
        kill_t *kill = &kills[n_kills++];
        atomic_store(&producer.hold, 0);
        last_total = kill->total;
        assert_int_equal(sg_test_gateway_rerun(&a, 0), 0);
        /* It resumes from its stored positions, not from the beginning. */
        int64_t resumed_at = -1;
        for (int64_t deadline = sg_test_now_ms() + 20000; resumed_at < 0 && sg_test_now_ms() < deadline; sg_test_sleep_ms(20)) {
            char view[4096];
            int status = get_with_token(&a, NULL, 0, view, sizeof(view));
            if (status == 200 || status == 404)
                resumed_at = token_total(view);
        }
        assert_true(resumed_at >= kill->total);
    }
    assert_true(n_kills >= 1);
    assert_true(kills[0].during_production); /* the first kill came during the high-rate writes */

    producer_finish(&producer);
    assert_int_equal(atomic_load(&producer.failed), 0);
    assert_int_equal(atomic_load(&producer.delivered), N_RECORDS);
    assert_int_equal(sg_test_topic_count(cluster.bootstrap, TOPIC), N_RECORDS);
    fprintf(stderr, "produced %d records in %.1f s; A killed %d times\n", N_RECORDS, (double)(sg_test_now_ms() - start) / 1000.0,
            n_kills);

    /* What A left on disk at each kill was one consistent state: the rows of exactly the records
     * below its stored positions (rows and positions are committed in the same WriteBatch). */
    rows_t want;
    int64_t stream_time[PARTITIONS];
    for (int k = 0; k < n_kills; ++k) {
        expected_state(&producer, kills[k].positions.next_offset, &want, stream_time);
        assert_same_rows("A as killed vs the records below its positions", &kills[k].rows, &want, 0);
        for (int p = 0; p < PARTITIONS; ++p)
            assert_int_equal(kills[k].positions.stream_time[p], stream_time[p]);
        rows_free(&want);
        rows_free(&kills[k].rows);
    }

    /* B: a rebuild from scratch on the same topic. */
    assert_int_equal(sg_test_gateway_start_unready(&b, config), 0);
    char *all = delivered_token(&producer);
    int64_t wait_start = sg_test_now_ms();
    wait_applied(&a, all, "A");
    wait_applied(&b, all, "B");
    free(all);
    assert_topic_whole();
    fprintf(stderr, "A and B caught up %.1f s after the producer finished\n", (double)(sg_test_now_ms() - wait_start) / 1000.0);

    assert_int_equal(sg_test_proc_terminate(&a), 0);
    assert_int_equal(sg_test_proc_terminate(&b), 0);
    positions_t positions_a, positions_b;
    int64_t ends[PARTITIONS];
    rows_t rows_a, rows_b;
    read_table(&a, &positions_a, &rows_a);
    read_table(&b, &positions_b, &rows_b);
    for (int p = 0; p < PARTITIONS; ++p) {
        ends[p] = atomic_load(&producer.next_offset[p]);
        assert_true(ends[p] > 0);
        assert_int_equal(positions_a.next_offset[p], ends[p]);
        assert_int_equal(positions_b.next_offset[p], ends[p]);
    }
    expected_state(&producer, ends, &want, stream_time);
    for (int p = 0; p < PARTITIONS; ++p) {
        assert_int_equal(positions_a.stream_time[p], stream_time[p]);
        assert_int_equal(positions_b.stream_time[p], stream_time[p]);
    }
    fprintf(stderr, "final state: %zu rows (A %zu, B %zu)\n", want.n, rows_a.n, rows_b.n);
    assert_true(want.n > HOT_KEYS / 2 && want.n < N_RECORDS);
    assert_same_rows("A (killed, restarted) vs B (rebuilt)", &rows_a, &rows_b, 1);
    assert_same_rows("A vs the produced records", &rows_a, &want, 0);
    assert_same_rows("B vs the produced records", &rows_b, &want, 0);
    rows_free(&want);
    rows_free(&rows_a);
    rows_free(&rows_b);

    /* A resumed each time: it never rebuilt its table */
    assert_int_equal(sg_test_log_has(&a, "rebuilding table", 0), 0);

    free(producer.deliveries);
    sg_test_proc_stop(&a); /* removes the temp dirs; the processes are gone already */
    sg_test_proc_stop(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_restart_equals_rebuild),
    };
    return cmocka_run_group_tests_name("integration-crash", tests, setup, teardown);
}
