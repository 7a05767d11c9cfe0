/*
 * Tests for the request-status and idempotency store (queries/store.c) against a real RocksDB
 * in a temp directory per test. Corrupt values are planted by opening the same directory with
 * the plain RocksDB C API while the store is closed, the way a damaged disk would leave them.
 * Times are offsets from the wall clock, because the compaction filter judges expiry by it.
 */
#define _XOPEN_SOURCE 700 /* nftw() for removing the temp directories */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg_store.h"
#include "tmpfs.h"

typedef struct {
    char dir[256];
    sg_store_t *store;
    int64_t now; /* wall-clock ms at setup */
} fixture_t;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof(fx->dir), "%s/sg-store-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    assert_non_null(mkdtemp(fx->dir));
    char err[256] = "";
    fx->store = sg_store_open(fx->dir, err, sizeof(err));
    assert_non_null(fx->store);
    assert_string_equal(err, "");
    fx->now = wall_ms();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    sg_store_close(fx->store);
    assert_int_equal(nftw(fx->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(fx);
    return 0;
}

static void reopen(fixture_t *fx)
{
    char err[256] = "";
    sg_store_close(fx->store);
    fx->store = sg_store_open(fx->dir, err, sizeof(err));
    assert_non_null(fx->store);
}

static const uint8_t sha_a[32] = {0xaa, 1, 2, 3};
static const uint8_t sha_b[32] = {0xbb, 1, 2, 3};

/* A pending record as the gateway writes it when a request is accepted. */
static sg_request_record_t pending_record(const fixture_t *fx)
{
    return (sg_request_record_t){.state = SG_REQUEST_PENDING, .created_ms = fx->now, .expires_ms = fx->now + 60000};
}

static void put_ok(fixture_t *fx, const char *id, const sg_request_record_t *rec)
{
    char err[256] = "";
    assert_int_equal(sg_store_put_request(fx->store, id, strlen(id), rec, err, sizeof(err)), 0);
    assert_string_equal(err, "");
}

/* -- raw RocksDB access, for what the store itself must never do -------------------------------- */

static const char *const raw_cf_names[3] = {"default", "requests", "idempotency"};

typedef struct {
    rocksdb_t *db;
    rocksdb_options_t *options;
    rocksdb_column_family_handle_t *cf[3];
} raw_db_t;

static void raw_open(raw_db_t *raw, const char *dir)
{
    char *errptr = NULL;
    raw->options = rocksdb_options_create();
    const rocksdb_options_t *cf_options[3] = {raw->options, raw->options, raw->options};
    raw->db = rocksdb_open_column_families(raw->options, dir, 3, raw_cf_names, cf_options, raw->cf, &errptr);
    assert_null(errptr);
    assert_non_null(raw->db);
}

static void raw_close(raw_db_t *raw)
{
    for (int i = 0; i < 3; i++)
        rocksdb_column_family_handle_destroy(raw->cf[i]);
    rocksdb_close(raw->db);
    rocksdb_options_destroy(raw->options);
}

static void raw_put(raw_db_t *raw, int cf, const void *key, size_t keylen, const void *value, size_t len)
{
    char *errptr = NULL;
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put_cf(raw->db, wo, raw->cf[cf], key, keylen, value, len, &errptr);
    rocksdb_writeoptions_destroy(wo);
    assert_null(errptr);
}

/* Whether key is physically present in family cf, expired or not. */
static int raw_exists(raw_db_t *raw, int cf, const void *key, size_t keylen)
{
    char *errptr = NULL;
    size_t len = 0;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    char *value = rocksdb_get_cf(raw->db, ro, raw->cf[cf], key, keylen, &len, &errptr);
    rocksdb_readoptions_destroy(ro);
    assert_null(errptr);
    int exists = value != NULL;
    rocksdb_free(value);
    return exists;
}

static size_t raw_count(raw_db_t *raw, int cf)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(raw->db, ro, raw->cf[cf]);
    size_t n = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it))
        n++;
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return n;
}

/* -- request records ------------------------------------------------------------------------- */

static void test_round_trip_every_field(void **state)
{
    fixture_t *fx = *state;
    static const uint8_t body[] = {'{', '"', 'a', '"', 0, 0xff, 0x00, '}', 0};
    sg_request_record_t rec = {
        .state = SG_REQUEST_DONE,
        .status = 201,
        .content_type = "application/json; charset=utf-8",
        .headers_json = "{\"x-trace\":\"abc\"}",
        .body = (void *)body,
        .body_len = sizeof(body),
        .created_ms = fx->now - 5,
        .completed_ms = fx->now,
        .expires_ms = fx->now + 3600000,
        .token = "AQEFb3JkZXJzAQAqAAAA",
    };
    static const uint8_t id[] = {0, 1, 2, 0xfe, 'r', 'q'}; /* ids are opaque bytes */
    char err[256] = "";
    assert_int_equal(sg_store_put_request(fx->store, id, sizeof(id), &rec, err, sizeof(err)), 0);

    sg_request_record_t got;
    assert_int_equal(sg_store_get_request(fx->store, id, sizeof(id), fx->now, &got, err, sizeof(err)), 0);
    assert_int_equal(got.state, SG_REQUEST_DONE);
    assert_int_equal(got.status, 201);
    assert_string_equal(got.content_type, rec.content_type);
    assert_string_equal(got.headers_json, rec.headers_json);
    assert_int_equal(got.body_len, sizeof(body));
    assert_memory_equal(got.body, body, sizeof(body));
    assert_int_equal(((const char *)got.body)[got.body_len], '\0');
    assert_int_equal(got.created_ms, fx->now - 5);
    assert_int_equal(got.completed_ms, fx->now);
    assert_int_equal(got.expires_ms, fx->now + 3600000);
    assert_string_equal(got.token, rec.token);
    sg_request_record_dispose(&got);
    assert_null(got.body);
    sg_request_record_dispose(NULL);
}

static void test_round_trip_null_optionals(void **state)
{
    fixture_t *fx = *state;
    sg_request_record_t rec = pending_record(fx);
    rec.created_ms = -7; /* negative values survive the unsigned encoding */
    put_ok(fx, "r1", &rec);
    sg_request_record_t got;
    char err[256] = "";
    assert_int_equal(sg_store_get_request(fx->store, "r1", 2, fx->now, &got, err, sizeof(err)), 0);
    assert_int_equal(got.state, SG_REQUEST_PENDING);
    assert_int_equal(got.status, 0);
    assert_null(got.content_type);
    assert_null(got.headers_json);
    assert_null(got.token);
    assert_null(got.body);
    assert_int_equal(got.body_len, 0);
    assert_int_equal(got.created_ms, -7);
    assert_int_equal(got.completed_ms, 0);
    assert_int_equal(got.expires_ms, fx->now + 60000);
    sg_request_record_dispose(&got);

    /* Empty strings are present, not NULL. */
    rec.content_type = "";
    put_ok(fx, "r2", &rec);
    assert_int_equal(sg_store_get_request(fx->store, "r2", 2, fx->now, &got, err, sizeof(err)), 0);
    assert_non_null(got.content_type);
    assert_string_equal(got.content_type, "");
    sg_request_record_dispose(&got);
}

static void test_not_found(void **state)
{
    fixture_t *fx = *state;
    sg_request_record_t got;
    got.status = 77;
    char err[256] = "";
    assert_int_equal(sg_store_get_request(fx->store, "nope", 4, fx->now, &got, err, sizeof(err)), 1);
    assert_int_equal(got.status, 0);
    assert_null(got.body);
    assert_string_equal(err, "");
}

static void test_expiry(void **state)
{
    fixture_t *fx = *state;
    sg_request_record_t rec = pending_record(fx);
    rec.expires_ms = fx->now + 1000;
    put_ok(fx, "exp", &rec);
    sg_request_record_t got;
    char err[256] = "";
    assert_int_equal(sg_store_get_request(fx->store, "exp", 3, fx->now + 999, &got, err, sizeof(err)), 0);
    sg_request_record_dispose(&got);
    /* expires_ms <= now counts as absent. */
    assert_int_equal(sg_store_get_request(fx->store, "exp", 3, fx->now + 1000, &got, err, sizeof(err)), 1);
    assert_int_equal(sg_store_get_request(fx->store, "exp", 3, fx->now + 5000, &got, err, sizeof(err)), 1);
    assert_null(got.content_type);
}

static void test_done_not_overwritten(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_request_record_t done = {.state = SG_REQUEST_DONE,
                                .status = 200,
                                .body = "ok",
                                .body_len = 2,
                                .created_ms = fx->now,
                                .completed_ms = fx->now + 3,
                                .expires_ms = fx->now + 60000};
    put_ok(fx, "id", &done);

    /* The pending write of a request whose reply already landed arrives late. */
    sg_request_record_t pending = pending_record(fx);
    assert_int_equal(sg_store_put_request(fx->store, "id", 2, &pending, err, sizeof(err)), 1);
    /* A second reply for the same id does not change the outcome either. */
    sg_request_record_t again = done;
    again.status = 500;
    assert_int_equal(sg_store_put_request(fx->store, "id", 2, &again, err, sizeof(err)), 1);

    sg_request_record_t got;
    assert_int_equal(sg_store_get_request(fx->store, "id", 2, fx->now, &got, err, sizeof(err)), 0);
    assert_int_equal(got.state, SG_REQUEST_DONE);
    assert_int_equal(got.status, 200);
    assert_memory_equal(got.body, "ok", 2);
    sg_request_record_dispose(&got);
}

static void test_pending_then_done(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_request_record_t rec = pending_record(fx);
    put_ok(fx, "id", &rec);
    rec.expires_ms = fx->now + 120000; /* pending over pending is an ordinary upsert */
    put_ok(fx, "id", &rec);
    sg_request_record_t got;
    assert_int_equal(sg_store_get_request(fx->store, "id", 2, fx->now, &got, err, sizeof(err)), 0);
    assert_int_equal(got.expires_ms, fx->now + 120000);
    sg_request_record_dispose(&got);

    rec.state = SG_REQUEST_DONE;
    rec.status = 204;
    put_ok(fx, "id", &rec);
    assert_int_equal(sg_store_get_request(fx->store, "id", 2, fx->now, &got, err, sizeof(err)), 0);
    assert_int_equal(got.state, SG_REQUEST_DONE);
    assert_int_equal(got.status, 204);
    sg_request_record_dispose(&got);
}

/* The requester (owner) goes with the PENDING record; the DONE record, written by whoever reads
 * the reply, keeps it, and a PENDING overtaken by its DONE still hands it over. */
static void test_owner_kept(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_request_record_t got;
    sg_request_record_t rec = pending_record(fx);
    rec.owner = "owner-a";
    put_ok(fx, "p", &rec);
    sg_request_record_t done = {
        .state = SG_REQUEST_DONE, .status = 201, .body = "{}", .body_len = 2, .expires_ms = fx->now + 60000};
    put_ok(fx, "p", &done);
    assert_int_equal(sg_store_get_request(fx->store, "p", 1, fx->now, &got, err, sizeof(err)), 0);
    assert_int_equal(got.state, SG_REQUEST_DONE);
    assert_int_equal(got.status, 201);
    assert_string_equal(got.owner, "owner-a");
    sg_request_record_dispose(&got);

    /* The reply overtook the delivery report: DONE first, then PENDING with the owner. */
    put_ok(fx, "q", &done);
    assert_int_equal(sg_store_get_request(fx->store, "q", 1, fx->now, &got, err, sizeof(err)), 0);
    assert_null(got.owner);
    sg_request_record_dispose(&got);
    assert_int_equal(sg_store_put_request(fx->store, "q", 1, &rec, err, sizeof(err)), 1); /* the outcome stays */
    assert_int_equal(sg_store_get_request(fx->store, "q", 1, fx->now, &got, err, sizeof(err)), 0);
    assert_int_equal(got.state, SG_REQUEST_DONE);
    assert_int_equal(got.status, 201);
    assert_memory_equal(got.body, "{}", 2);
    assert_string_equal(got.owner, "owner-a");
    sg_request_record_dispose(&got);
    /* ... and once known it is never changed. */
    rec.owner = "owner-b";
    assert_int_equal(sg_store_put_request(fx->store, "q", 1, &rec, err, sizeof(err)), 1);
    assert_int_equal(sg_store_get_request(fx->store, "q", 1, fx->now, &got, err, sizeof(err)), 0);
    assert_string_equal(got.owner, "owner-a");
    sg_request_record_dispose(&got);

    /* Without an owner a record is written as version 1, as earlier builds wrote it. */
    sg_request_record_t plain = pending_record(fx);
    put_ok(fx, "r", &plain);
    sg_store_close(fx->store);
    fx->store = NULL;
    raw_db_t raw;
    raw_open(&raw, fx->dir);
    char *errptr = NULL;
    size_t len = 0;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    char *value = rocksdb_get_cf(raw.db, ro, raw.cf[1], "r", 1, &len, &errptr);
    assert_non_null(value);
    assert_int_equal(value[0], 1);
    rocksdb_free(value);
    value = rocksdb_get_cf(raw.db, ro, raw.cf[1], "p", 1, &len, &errptr);
    assert_non_null(value);
    assert_int_equal(value[0], 2);
    rocksdb_free(value);
    rocksdb_readoptions_destroy(ro);
    raw_close(&raw);
    reopen(fx);
    assert_int_equal(sg_store_get_request(fx->store, "p", 1, fx->now, &got, err, sizeof(err)), 0);
    assert_string_equal(got.owner, "owner-a");
    sg_request_record_dispose(&got);
}

typedef struct {
    fixture_t *fx;
    int state;
    pthread_barrier_t *barrier;
} race_arg_t;

static void *race_put(void *arg)
{
    race_arg_t *race = arg;
    char err[256];
    sg_request_record_t rec = pending_record(race->fx);
    rec.state = race->state;
    rec.status = race->state == SG_REQUEST_DONE ? 201 : 0;
    pthread_barrier_wait(race->barrier);
    for (int i = 0; i < 200; i++)
        if (sg_store_put_request(race->fx->store, "race", 4, &rec, err, sizeof(err)) < 0)
            return (void *)1;
    return NULL;
}

static void test_done_wins_race_with_pending(void **state)
{
    fixture_t *fx = *state;
    enum { THREADS = 8 };
    pthread_t threads[THREADS];
    race_arg_t args[THREADS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        args[i] = (race_arg_t){.fx = fx, .state = i == 3 ? SG_REQUEST_DONE : SG_REQUEST_PENDING, .barrier = &barrier};
        assert_int_equal(pthread_create(&threads[i], NULL, race_put, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *failed;
        pthread_join(threads[i], &failed);
        assert_null(failed);
    }
    pthread_barrier_destroy(&barrier);
    sg_request_record_t got;
    char err[256] = "";
    assert_int_equal(sg_store_get_request(fx->store, "race", 4, fx->now, &got, err, sizeof(err)), 0);
    assert_int_equal(got.state, SG_REQUEST_DONE);
    assert_int_equal(got.status, 201);
    sg_request_record_dispose(&got);
}

static void test_reopen_keeps_records(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_request_record_t done = {.state = SG_REQUEST_DONE,
                                .status = 201,
                                .content_type = "application/json",
                                .body = "{\"id\":7}",
                                .body_len = 8,
                                .created_ms = fx->now,
                                .completed_ms = fx->now + 1,
                                .expires_ms = fx->now + 86400000};
    put_ok(fx, "survivor", &done);
    sg_idem_result_t result;
    assert_int_equal(sg_store_idem_claim(fx->store, "orders", "k1", 2, sha_a, "survivor", 8, fx->now, fx->now + 86400000, &result,
                                         err, sizeof(err)),
                     0);
    assert_int_equal(sg_store_idem_complete(fx->store, "orders", "k1", 2, "survivor", 8, err, sizeof(err)), 0);

    reopen(fx);

    sg_request_record_t got;
    assert_int_equal(sg_store_get_request(fx->store, "survivor", 8, fx->now, &got, err, sizeof(err)), 0);
    assert_int_equal(got.state, SG_REQUEST_DONE);
    assert_int_equal(got.status, 201);
    assert_string_equal(got.content_type, "application/json");
    assert_int_equal(got.body_len, 8);
    assert_memory_equal(got.body, "{\"id\":7}", 8);
    sg_request_record_dispose(&got);
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k1", 2, sha_a, "retry", 5, fx->now, fx->now + 1000, &result, err, sizeof(err)),
        0);
    assert_int_equal(result.kind, SG_IDEM_DONE);
    assert_int_equal(result.request_id_len, 8);
    assert_memory_equal(result.request_id, "survivor", 8);
}

static void test_invalid_arguments(void **state)
{
    fixture_t *fx = *state;
    char err[256];
    sg_request_record_t rec = pending_record(fx);
    char long_id[SG_STORE_MAX_ID + 1];
    memset(long_id, 'i', sizeof(long_id));

    err[0] = '\0';
    assert_int_equal(sg_store_put_request(fx->store, long_id, sizeof(long_id), &rec, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "request id"));
    /* The longest id is fine. */
    assert_int_equal(sg_store_put_request(fx->store, long_id, SG_STORE_MAX_ID, &rec, err, sizeof(err)), 0);
    err[0] = '\0';
    assert_int_equal(sg_store_put_request(fx->store, "x", 0, &rec, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "request id"));

    rec.state = 2;
    err[0] = '\0';
    assert_int_equal(sg_store_put_request(fx->store, "x", 1, &rec, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "state"));
    rec.state = SG_REQUEST_DONE;
    rec.status = 1000;
    err[0] = '\0';
    assert_int_equal(sg_store_put_request(fx->store, "x", 1, &rec, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "status"));
    rec.status = 200;

    char *big = malloc(SG_STORE_MAX_BODY + 1);
    assert_non_null(big);
    memset(big, 'b', SG_STORE_MAX_BODY);
    big[SG_STORE_MAX_BODY] = '\0';
    rec.body = big;
    rec.body_len = SG_STORE_MAX_BODY + 1;
    err[0] = '\0';
    assert_int_equal(sg_store_put_request(fx->store, "x", 1, &rec, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "body"));
    rec.body_len = 0;
    rec.body = NULL;
    big[SG_STORE_MAX_STRING + 1] = '\0';
    rec.headers_json = big;
    err[0] = '\0';
    assert_int_equal(sg_store_put_request(fx->store, "x", 1, &rec, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "reply headers"));
    big[SG_STORE_MAX_STRING] = '\0'; /* exactly at the limit is accepted */
    assert_int_equal(sg_store_put_request(fx->store, "x", 1, &rec, err, sizeof(err)), 0);
    rec.headers_json = NULL;
    rec.body_len = 3; /* a length without a body */
    err[0] = '\0';
    assert_int_equal(sg_store_put_request(fx->store, "y", 1, &rec, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "body"));

    /* The largest body round-trips. */
    rec.body = big;
    rec.body_len = SG_STORE_MAX_BODY;
    memset(big, 'b', SG_STORE_MAX_BODY);
    assert_int_equal(sg_store_put_request(fx->store, "big", 3, &rec, err, sizeof(err)), 0);
    sg_request_record_t got;
    assert_int_equal(sg_store_get_request(fx->store, "big", 3, fx->now, &got, err, sizeof(err)), 0);
    assert_int_equal(got.body_len, SG_STORE_MAX_BODY);
    assert_memory_equal(got.body, big, SG_STORE_MAX_BODY);
    sg_request_record_dispose(&got);
    free(big);

    sg_idem_result_t result;
    char long_route[SG_STORE_MAX_ROUTE + 2];
    memset(long_route, 'r', sizeof(long_route) - 1);
    long_route[sizeof(long_route) - 1] = '\0';
    err[0] = '\0';
    assert_int_equal(
        sg_store_idem_claim(fx->store, long_route, "k", 1, sha_a, "id", 2, fx->now, fx->now + 10, &result, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "route"));
    err[0] = '\0';
    assert_int_equal(sg_store_idem_claim(fx->store, "", "k", 1, sha_a, "id", 2, fx->now, fx->now + 10, &result, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "route"));
    char long_key[SG_STORE_MAX_IDEM_KEY + 1];
    memset(long_key, 'k', sizeof(long_key));
    err[0] = '\0';
    assert_int_equal(sg_store_idem_claim(fx->store, "orders", long_key, sizeof(long_key), sha_a, "id", 2, fx->now, fx->now + 10,
                                         &result, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "Idempotency-Key"));
    err[0] = '\0';
    assert_int_equal(sg_store_idem_claim(fx->store, "orders", "k", 1, sha_a, long_id, sizeof(long_id), fx->now, fx->now + 10,
                                         &result, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "request id"));
    err[0] = '\0';
    assert_int_equal(sg_store_sweep(fx->store, fx->now, 0, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "max_records"));
}

static void test_open_failure(void **state)
{
    fixture_t *fx = *state;
    char path[300], err[512] = "";
    snprintf(path, sizeof(path), "%s/not-a-dir", fx->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_null(sg_store_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open"));
    err[0] = '\0';
    assert_null(sg_store_open("", err, sizeof(err)));
    assert_non_null(strstr(err, "directory"));
    /* The directory is locked by the fixture's open store. */
    err[0] = '\0';
    assert_null(sg_store_open(fx->dir, err, sizeof(err)));
    assert_non_null(strstr(err, "lock"));
    sg_store_close(NULL);
}

/* -- idempotency ------------------------------------------------------------------------------ */

static void test_idem_lifecycle(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_idem_result_t result;
    int64_t expires = fx->now + 86400000;
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "key-1", 5, sha_a, "req-1", 5, fx->now, expires, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_CLAIMED);
    assert_int_equal(result.request_id_len, 5);
    assert_memory_equal(result.request_id, "req-1", 5);
    assert_int_equal(result.expires_ms, expires);

    assert_int_equal(sg_store_idem_claim(fx->store, "orders", "key-1", 5, sha_a, "req-2", 5, fx->now + 1, fx->now + 999, &result,
                                         err, sizeof(err)),
                     0);
    assert_int_equal(result.kind, SG_IDEM_IN_FLIGHT);
    assert_memory_equal(result.request_id, "req-1", 5);
    assert_int_equal(result.expires_ms, expires);

    /* Same key on another route is another claim. */
    assert_int_equal(
        sg_store_idem_claim(fx->store, "payments", "key-1", 5, sha_a, "req-3", 5, fx->now, expires, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_CLAIMED);

    assert_int_equal(sg_store_idem_complete(fx->store, "orders", "key-1", 5, "req-1", 5, err, sizeof(err)), 0);
    assert_int_equal(sg_store_idem_complete(fx->store, "orders", "key-1", 5, "req-1", 5, err, sizeof(err)), 0);
    assert_int_equal(sg_store_idem_claim(fx->store, "orders", "key-1", 5, sha_a, "req-4", 5, fx->now + 2, fx->now + 999, &result,
                                         err, sizeof(err)),
                     0);
    assert_int_equal(result.kind, SG_IDEM_DONE);
    assert_int_equal(result.request_id_len, 5);
    assert_memory_equal(result.request_id, "req-1", 5);
    /* Completing keeps the original expiry. */
    assert_int_equal(result.expires_ms, expires);

    /* A completed claim cannot be released: a retry would produce twice. */
    assert_int_equal(sg_store_idem_release(fx->store, "orders", "key-1", 5, "req-1", 5, err, sizeof(err)), 1);
    assert_int_equal(sg_store_idem_complete(fx->store, "orders", "absent", 6, "req-1", 5, err, sizeof(err)), 1);
}

/* A read-only look at a claim reports what a claim would, changes nothing, and sees expiry. */
static void test_idem_get(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_idem_result_t result;
    int64_t expires = fx->now + 60000;
    assert_int_equal(sg_store_idem_get(fx->store, "orders", "k", 1, sha_a, fx->now, &result, err, sizeof(err)), 1);
    /* absent stays absent: a look claims nothing */
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k", 1, sha_a, "req-1", 5, fx->now, expires, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_CLAIMED);

    assert_int_equal(sg_store_idem_get(fx->store, "orders", "k", 1, sha_a, fx->now, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_IN_FLIGHT);
    assert_memory_equal(result.request_id, "req-1", 5);
    assert_int_equal(result.expires_ms, expires);
    assert_int_equal(result.partition, -1);
    assert_int_equal(sg_store_idem_get(fx->store, "orders", "k", 1, sha_b, fx->now, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_MISMATCH);

    assert_int_equal(sg_store_idem_mark_unknown(fx->store, "orders", "k", 1, "req-1", 5, 2, 777, err, sizeof(err)), 0);
    assert_int_equal(sg_store_idem_get(fx->store, "orders", "k", 1, sha_a, fx->now, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_UNKNOWN);
    assert_int_equal(result.partition, 2);
    assert_int_equal(result.produced_ms, 777);

    assert_int_equal(sg_store_idem_complete(fx->store, "orders", "k", 1, "req-1", 5, err, sizeof(err)), 0);
    assert_int_equal(sg_store_idem_get(fx->store, "orders", "k", 1, sha_a, fx->now, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_DONE);
    /* expired by the clock the caller gives */
    assert_int_equal(sg_store_idem_get(fx->store, "orders", "k", 1, sha_a, expires, &result, err, sizeof(err)), 1);
    /* bad arguments are errors, as for a claim */
    assert_int_equal(sg_store_idem_get(fx->store, "", "k", 1, sha_a, fx->now, &result, err, sizeof(err)), -1);
}

static void test_idem_mismatch(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_idem_result_t result;
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k", 1, sha_a, "req-1", 5, fx->now, fx->now + 60000, &result, err, sizeof(err)),
        0);
    assert_int_equal(result.kind, SG_IDEM_CLAIMED);
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k", 1, sha_b, "req-2", 5, fx->now, fx->now + 60000, &result, err, sizeof(err)),
        0);
    assert_int_equal(result.kind, SG_IDEM_MISMATCH);
    assert_memory_equal(result.request_id, "req-1", 5);
    /* Mismatch also once done. */
    assert_int_equal(sg_store_idem_complete(fx->store, "orders", "k", 1, "req-1", 5, err, sizeof(err)), 0);
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k", 1, sha_b, "req-2", 5, fx->now, fx->now + 60000, &result, err, sizeof(err)),
        0);
    assert_int_equal(result.kind, SG_IDEM_MISMATCH);
}

static void test_idem_release_then_claim(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_idem_result_t result;
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k", 1, sha_a, "req-1", 5, fx->now, fx->now + 60000, &result, err, sizeof(err)),
        0);
    /* Only the holder may release. */
    assert_int_equal(sg_store_idem_release(fx->store, "orders", "k", 1, "req-9", 5, err, sizeof(err)), 1);
    assert_int_equal(sg_store_idem_complete(fx->store, "orders", "k", 1, "req-9", 5, err, sizeof(err)), 1);
    assert_int_equal(sg_store_idem_release(fx->store, "orders", "k", 1, "req-1", 5, err, sizeof(err)), 0);
    assert_int_equal(sg_store_idem_release(fx->store, "orders", "k", 1, "req-1", 5, err, sizeof(err)), 1);
    /* The retry may even carry another body: the first one was never produced. */
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k", 1, sha_b, "req-2", 5, fx->now, fx->now + 60000, &result, err, sizeof(err)),
        0);
    assert_int_equal(result.kind, SG_IDEM_CLAIMED);
    assert_memory_equal(result.request_id, "req-2", 5);
}

static void test_idem_expired_claim_replaced(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_idem_result_t result;
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k", 1, sha_a, "req-1", 5, fx->now, fx->now + 1000, &result, err, sizeof(err)), 0);
    assert_int_equal(sg_store_idem_complete(fx->store, "orders", "k", 1, "req-1", 5, err, sizeof(err)), 0);
    /* At expires_ms exactly the claim is gone, whatever body comes. */
    assert_int_equal(sg_store_idem_claim(fx->store, "orders", "k", 1, sha_b, "req-2", 5, fx->now + 1000, fx->now + 5000, &result,
                                         err, sizeof(err)),
                     0);
    assert_int_equal(result.kind, SG_IDEM_CLAIMED);
    assert_memory_equal(result.request_id, "req-2", 5);
    assert_int_equal(result.expires_ms, fx->now + 5000);
    /* The old holder's late completion does not touch the new claim. */
    assert_int_equal(sg_store_idem_complete(fx->store, "orders", "k", 1, "req-1", 5, err, sizeof(err)), 1);
    assert_int_equal(sg_store_idem_claim(fx->store, "orders", "k", 1, sha_b, "req-3", 5, fx->now + 1001, fx->now + 5000, &result,
                                         err, sizeof(err)),
                     0);
    assert_int_equal(result.kind, SG_IDEM_IN_FLIGHT);
    assert_memory_equal(result.request_id, "req-2", 5);
}

typedef struct {
    fixture_t *fx;
    char id[16];
    pthread_barrier_t *barrier;
    int rc;
    sg_idem_result_t result;
} claim_arg_t;

static void *claim_thread(void *arg)
{
    claim_arg_t *claim = arg;
    char err[256];
    pthread_barrier_wait(claim->barrier);
    claim->rc = sg_store_idem_claim(claim->fx->store, "orders", "same-key", 8, sha_a, claim->id, strlen(claim->id), claim->fx->now,
                                    claim->fx->now + 60000, &claim->result, err, sizeof(err));
    return NULL;
}

static void test_idem_concurrent_claims(void **state)
{
    fixture_t *fx = *state;
    enum { THREADS = 8, ROUNDS = 20 };
    for (int round = 0; round < ROUNDS; round++) {
        pthread_t threads[THREADS];
        claim_arg_t args[THREADS];
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, THREADS);
        for (int i = 0; i < THREADS; i++) {
            args[i] = (claim_arg_t){.fx = fx, .barrier = &barrier, .rc = -2};
            snprintf(args[i].id, sizeof(args[i].id), "r%d-%d", round, i);
            assert_int_equal(pthread_create(&threads[i], NULL, claim_thread, &args[i]), 0);
        }
        int claimed = 0, in_flight = 0, winner = -1;
        for (int i = 0; i < THREADS; i++)
            pthread_join(threads[i], NULL);
        pthread_barrier_destroy(&barrier);
        for (int i = 0; i < THREADS; i++) {
            assert_int_equal(args[i].rc, 0);
            if (args[i].result.kind == SG_IDEM_CLAIMED) {
                claimed++;
                winner = i;
            } else if (args[i].result.kind == SG_IDEM_IN_FLIGHT) {
                in_flight++;
            }
        }
        assert_int_equal(claimed, 1);
        assert_int_equal(in_flight, THREADS - 1);
        /* Every loser was told who won. */
        for (int i = 0; i < THREADS; i++) {
            assert_int_equal(args[i].result.request_id_len, strlen(args[winner].id));
            assert_memory_equal(args[i].result.request_id, args[winner].id, strlen(args[winner].id));
        }
        char err[256] = "";
        assert_int_equal(
            sg_store_idem_release(fx->store, "orders", "same-key", 8, args[winner].id, strlen(args[winner].id), err, sizeof(err)),
            0);
    }
}

/* -- retention -------------------------------------------------------------------------------- */

static void test_sweep(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "", id[16];
    /* 30 request records, every third expired at fx->now + 100; 10 claims, every other expired. */
    for (int i = 0; i < 30; i++) {
        sg_request_record_t rec = pending_record(fx);
        rec.expires_ms = i % 3 == 0 ? fx->now + 100 : fx->now + 60000;
        snprintf(id, sizeof(id), "req-%02d", i);
        put_ok(fx, id, &rec);
    }
    for (int i = 0; i < 10; i++) {
        sg_idem_result_t result;
        snprintf(id, sizeof(id), "key-%02d", i);
        assert_int_equal(sg_store_idem_claim(fx->store, "orders", id, strlen(id), sha_a, id, strlen(id), fx->now,
                                             i % 2 == 0 ? fx->now + 100 : fx->now + 60000, &result, err, sizeof(err)),
                         0);
    }
    /* Nothing has expired yet: a full pass deletes nothing. */
    size_t deleted = 99;
    assert_int_equal(sg_store_sweep(fx->store, fx->now, 1000, &deleted, err, sizeof(err)), 1);
    assert_int_equal(deleted, 0);

    /* Bounded passes: 40 records, 7 examined per call: 5 calls return 0, the 6th ends the pass. */
    size_t total = 0;
    int calls = 0, rc;
    do {
        rc = sg_store_sweep(fx->store, fx->now + 100, 7, &deleted, err, sizeof(err));
        assert_true(rc >= 0);
        assert_true(deleted <= 7);
        total += deleted;
        calls++;
    } while (rc == 0 && calls < 100);
    assert_int_equal(rc, 1);
    assert_int_equal(calls, 6);
    assert_int_equal(total, 10 + 5);

    sg_request_record_t got;
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof(id), "req-%02d", i);
        /* Read as of before the expiry, so only a physical delete reads as absent. */
        int found = sg_store_get_request(fx->store, id, strlen(id), fx->now, &got, err, sizeof(err));
        assert_int_equal(found, i % 3 == 0 ? 1 : 0);
        sg_request_record_dispose(&got);
    }
    for (int i = 0; i < 10; i++) {
        sg_idem_result_t result;
        snprintf(id, sizeof(id), "key-%02d", i);
        assert_int_equal(sg_store_idem_claim(fx->store, "orders", id, strlen(id), sha_b, "other", 5, fx->now, fx->now + 60000,
                                             &result, err, sizeof(err)),
                         0);
        /* A swept claim is gone (claimed anew); a live one reports its body mismatch. */
        assert_int_equal(result.kind, i % 2 == 0 ? SG_IDEM_CLAIMED : SG_IDEM_MISMATCH);
    }
    /* Another pass finds nothing more to delete. */
    assert_int_equal(sg_store_sweep(fx->store, fx->now + 100, 1000, &deleted, err, sizeof(err)), 1);
    assert_int_equal(deleted, 0);
}

static void test_sweep_spares_rewritten_record(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_request_record_t rec = pending_record(fx);
    rec.expires_ms = fx->now + 10;
    put_ok(fx, "a", &rec);
    put_ok(fx, "b", &rec);
    size_t deleted;
    /* The cursor stops after "a"; "b" is refreshed before the next call reaches it, and the sweep
     * judges it by what is stored now. */
    assert_int_equal(sg_store_sweep(fx->store, fx->now + 10, 1, &deleted, err, sizeof(err)), 0);
    assert_int_equal(deleted, 1);
    rec.expires_ms = fx->now + 60000;
    put_ok(fx, "b", &rec);
    assert_int_equal(sg_store_sweep(fx->store, fx->now + 10, 100, &deleted, err, sizeof(err)), 1);
    assert_int_equal(deleted, 0);
    sg_request_record_t got;
    assert_int_equal(sg_store_get_request(fx->store, "b", 1, fx->now + 10, &got, err, sizeof(err)), 0);
    sg_request_record_dispose(&got);
}

static void test_compaction_filter_drops_expired(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_request_record_t rec = pending_record(fx);
    rec.expires_ms = fx->now - 1000; /* already past by the wall clock */
    put_ok(fx, "old", &rec);
    rec.expires_ms = fx->now + 3600000;
    put_ok(fx, "new", &rec);
    sg_idem_result_t result;
    assert_int_equal(sg_store_idem_claim(fx->store, "orders", "old", 3, sha_a, "old", 3, fx->now - 5000, fx->now - 1000, &result,
                                         err, sizeof(err)),
                     0);
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "new", 3, sha_a, "new", 3, fx->now, fx->now + 3600000, &result, err, sizeof(err)),
        0);
    sg_store_compact(fx->store);
    sg_store_close(fx->store);
    fx->store = NULL;

    raw_db_t raw;
    raw_open(&raw, fx->dir);
    assert_int_equal(raw_exists(&raw, 1, "old", 3), 0);
    assert_int_equal(raw_exists(&raw, 1, "new", 3), 1);
    assert_int_equal(raw_count(&raw, 1), 1);
    assert_int_equal(raw_count(&raw, 2), 1);
    raw_close(&raw);
}

/* -- corrupt values --------------------------------------------------------------------------- */

static void test_corrupt_request_values(void **state)
{
    fixture_t *fx = *state;
    static const struct {
        const char *value;
        size_t len;
        const char *problem;
    } cases[] = {
        {"", 0, "truncated"},
        {"\x01R\x7f", 3, "truncated"},
        {"\x03R\x7f\xff\xff\xff\xff\xff\xff\xff", 10, "version"},
        {"\x01I\x7f\xff\xff\xff\xff\xff\xff\xff", 10, "type"},
        /* state 7 */
        {"\x01R\x7f\xff\xff\xff\xff\xff\xff\xff\x07", 11, "state"},
        /* status 1000 */
        {"\x01R\x7f\xff\xff\xff\xff\xff\xff\xff\x01\x03\xe8", 13, "status"},
        /* valid up to the strings, then a presence flag of 2 */
        {"\x01R\x7f\xff\xff\xff\xff\xff\xff\xff\x01\x00\xc8"
         "\0\0\0\0\0\0\0\0"
         "\0\0\0\0\0\0\0\0"
         "\x02",
         30, "presence"},
        /* a string length pointing past the end */
        {"\x01R\x7f\xff\xff\xff\xff\xff\xff\xff\x01\x00\xc8"
         "\0\0\0\0\0\0\0\0"
         "\0\0\0\0\0\0\0\0"
         "\x01\x00\x00\x00\x09"
         "ab",
         36, "truncated"},
        /* a NUL inside a string */
        {"\x01R\x7f\xff\xff\xff\xff\xff\xff\xff\x01\x00\xc8"
         "\0\0\0\0\0\0\0\0"
         "\0\0\0\0\0\0\0\0"
         "\x01\x00\x00\x00\x02"
         "a\0"
         "\0\0\0\0\0\0\0",
         43, "NUL"},
        /* a body length over the limit */
        {"\x01R\x7f\xff\xff\xff\xff\xff\xff\xff\x01\x00\xc8"
         "\0\0\0\0\0\0\0\0"
         "\0\0\0\0\0\0\0\0"
         "\0\0\0"
         "\x01\x00\x00\x01",
         36, "body"},
        /* a complete record followed by a stray byte */
        {"\x01R\x7f\xff\xff\xff\xff\xff\xff\xff\x01\x00\xc8"
         "\0\0\0\0\0\0\0\0"
         "\0\0\0\0\0\0\0\0"
         "\0\0\0"
         "\0\0\0\0"
         "!",
         37, "trailing"},
    };
    enum { CASES = sizeof(cases) / sizeof(cases[0]) };
    char id[16];
    sg_store_close(fx->store);
    raw_db_t raw;
    raw_open(&raw, fx->dir);
    for (size_t i = 0; i < CASES; i++) {
        snprintf(id, sizeof(id), "bad-%02zu", i);
        raw_put(&raw, 1, id, strlen(id), cases[i].value, cases[i].len);
    }
    /* The well-formed twin of the last case, so the cases above are one defect each. */
    raw_put(&raw, 1, "good", 4, cases[CASES - 1].value, cases[CASES - 1].len - 1);
    raw_close(&raw);
    char err[256];
    fx->store = sg_store_open(fx->dir, err, sizeof(err));
    assert_non_null(fx->store);

    sg_request_record_t got;
    for (size_t i = 0; i < CASES; i++) {
        snprintf(id, sizeof(id), "bad-%02zu", i);
        err[0] = '\0';
        assert_int_equal(sg_store_get_request(fx->store, id, strlen(id), fx->now, &got, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "corrupt request record"));
        if (strstr(err, cases[i].problem) == NULL)
            fail_msg("case %zu: \"%s\" does not name \"%s\"", i, err, cases[i].problem);
        assert_null(got.body);
        assert_null(got.content_type);
    }
    assert_int_equal(sg_store_get_request(fx->store, "good", 4, fx->now, &got, err, sizeof(err)), 0);
    assert_int_equal(got.state, SG_REQUEST_DONE);
    assert_int_equal(got.status, 200);
    assert_int_equal(got.expires_ms, INT64_MAX);
    sg_request_record_dispose(&got);

    /* A sweep passes over what it cannot read instead of failing on it forever. */
    size_t deleted = 99;
    assert_int_equal(sg_store_sweep(fx->store, fx->now, 1000, &deleted, err, sizeof(err)), 1);
    assert_int_equal(deleted, 0);
    /* A corrupt record is replaced by a new outcome: it could never be served anyway. */
    sg_request_record_t rec = pending_record(fx);
    put_ok(fx, "bad-00", &rec);
    assert_int_equal(sg_store_get_request(fx->store, "bad-00", 6, fx->now, &got, err, sizeof(err)), 0);
    assert_int_equal(got.state, SG_REQUEST_PENDING);
    sg_request_record_dispose(&got);
}

static void test_corrupt_claim(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_store_close(fx->store);
    raw_db_t raw;
    raw_open(&raw, fx->dir);
    static const char key[] = "\x06ordersk1";
    raw_put(&raw, 2, key, sizeof(key) - 1, "\x01I\x7f garbage", 11);
    raw_close(&raw);
    fx->store = sg_store_open(fx->dir, err, sizeof(err));
    assert_non_null(fx->store);

    sg_idem_result_t result;
    err[0] = '\0';
    /* Never guessed over: that could produce a command twice. */
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k1", 2, sha_a, "req", 3, fx->now, fx->now + 1000, &result, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "corrupt idempotency claim"));
    err[0] = '\0';
    assert_int_equal(sg_store_idem_complete(fx->store, "orders", "k1", 2, "req", 3, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "corrupt idempotency claim"));
}

/* -- outcome unknown -------------------------------------------------------------------------- */

/* A produce that may or may not be in the log keeps its claim: a retry is told to wait (with
 * where to look), never allowed to produce again; the lookup then completes or releases it. */
static void test_idem_unknown_outcome(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sg_idem_result_t result;
    int64_t expires = fx->now + 60000;
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k", 1, sha_a, "req-1", 5, fx->now, expires, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_CLAIMED);
    assert_int_equal(result.partition, -1);
    /* Only the holder marks it. */
    assert_int_equal(sg_store_idem_mark_unknown(fx->store, "orders", "k", 1, "other", 5, 3, 1234, err, sizeof(err)), 1);
    assert_int_equal(sg_store_idem_mark_unknown(fx->store, "orders", "k", 1, "req-1", 5, -1, 1234, err, sizeof(err)), -1);
    assert_int_equal(sg_store_idem_mark_unknown(fx->store, "orders", "k", 1, "req-1", 5, 3, 1234, err, sizeof(err)), 0);

    reopen(fx); /* the state is stored, not kept in memory */
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k", 1, sha_a, "req-2", 5, fx->now + 1, expires, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_UNKNOWN);
    assert_memory_equal(result.request_id, "req-1", 5);
    assert_int_equal(result.request_id_len, 5);
    assert_int_equal(result.partition, 3);
    assert_int_equal(result.produced_ms, 1234);
    assert_int_equal(result.expires_ms, expires);
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k", 1, sha_b, "req-2", 5, fx->now + 1, expires, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_MISMATCH);

    /* Found in the log: the outcome is recorded, then the claim completed; retries replay it. */
    assert_int_equal(sg_store_idem_complete(fx->store, "orders", "k", 1, "req-1", 5, err, sizeof(err)), 0);
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k", 1, sha_a, "req-3", 5, fx->now + 2, expires, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_DONE);
    assert_int_equal(result.partition, -1);
    /* A done claim is never made unknown again, nor released. */
    assert_int_equal(sg_store_idem_mark_unknown(fx->store, "orders", "k", 1, "req-1", 5, 3, 1234, err, sizeof(err)), 1);
    assert_int_equal(sg_store_idem_release(fx->store, "orders", "k", 1, "req-1", 5, err, sizeof(err)), 1);

    /* Not in the log: released, and the next request claims the key. */
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k2", 2, sha_a, "req-4", 5, fx->now, expires, &result, err, sizeof(err)), 0);
    assert_int_equal(sg_store_idem_mark_unknown(fx->store, "orders", "k2", 2, "req-4", 5, 0, 99, err, sizeof(err)), 0);
    assert_int_equal(sg_store_idem_release(fx->store, "orders", "k2", 2, "req-4", 5, err, sizeof(err)), 0);
    assert_int_equal(
        sg_store_idem_claim(fx->store, "orders", "k2", 2, sha_a, "req-5", 5, fx->now, expires, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_CLAIMED);
}

/* -- a full disk ------------------------------------------------------------------------------ */

/* The disk fills: writes fail (no crash), the store says so, a new Idempotency-Key claim is
 * refused rather than granted unguarded, existing records and claims still read; once room is
 * back the periodic sweep reopens the store and every record written before is there. */
static void test_full_disk_refuses_then_resumes(void **state)
{
    fixture_t *fx = *state;
    sg_test_tmpfs_t fs;
    char why[512];
    if (sg_test_tmpfs_mount(&fs, 16, why, sizeof(why)) != 0) {
        print_message("skipped: %s\n", why);
        skip();
    }
    assert_int_equal(sg_test_tmpfs_fill(&fs, 6), 0);
    char dir[300], err[512] = "";
    snprintf(dir, sizeof(dir), "%s/state", fs.dir);
    sg_store_t *store = sg_store_open(dir, err, sizeof(err));
    assert_non_null(store);
    sg_idem_result_t result;
    assert_int_equal(
        sg_store_idem_claim(store, "orders", "held", 4, sha_a, "req-0", 5, fx->now, fx->now + 60000, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_CLAIMED);

    size_t body_len = 1024 * 1024;
    char *body = malloc(body_len);
    assert_non_null(body);
    for (size_t i = 0; i < body_len; i++)
        body[i] = (char)('a' + i % 26);
    sg_request_record_t rec = {.state = SG_REQUEST_DONE,
                               .status = 200,
                               .body = body,
                               .body_len = body_len,
                               .created_ms = fx->now,
                               .expires_ms = fx->now + 60000};
    int written = 0, rc = 0;
    char id[32];
    for (; written < 60; written++) {
        snprintf(id, sizeof(id), "req-%d", written);
        if ((rc = sg_store_put_request(store, id, strlen(id), &rec, err, sizeof(err))) != 0)
            break;
    }
    assert_int_equal(rc, -1);
    assert_true(written > 0 && written < 60);
    assert_non_null(strstr(err, "No space left"));
    char reason[512];
    assert_int_equal(sg_store_health(store, reason, sizeof(reason)), SG_STORAGE_UNAVAILABLE);
    assert_non_null(strstr(reason, "No space left"));

    /* A new claim cannot be stored: refused, not granted. */
    assert_int_equal(
        sg_store_idem_claim(store, "orders", "new", 3, sha_a, "req-x", 5, fx->now, fx->now + 60000, &result, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "storage unavailable"));
    /* An existing claim still answers (reads go on). */
    assert_int_equal(
        sg_store_idem_claim(store, "orders", "held", 4, sha_a, "req-y", 5, fx->now, fx->now + 60000, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_IN_FLIGHT);
    sg_request_record_t got;
    assert_int_equal(sg_store_get_request(store, "req-0", 5, fx->now, &got, err, sizeof(err)), 0);
    assert_int_equal(got.body_len, body_len);
    sg_request_record_dispose(&got);
    /* No room: the sweep cannot bring it back. */
    size_t deleted;
    assert_int_equal(sg_store_sweep(store, fx->now, 100, &deleted, err, sizeof(err)), -1);
    assert_int_equal(sg_store_health(store, NULL, 0), SG_STORAGE_UNAVAILABLE);

    sg_test_tmpfs_free(&fs);
    int tries = 0;
    while (sg_store_sweep(store, fx->now, 100, &deleted, err, sizeof(err)) < 0) {
        assert_true(++tries < 100); /* 10 s */
        usleep(100 * 1000);
    }
    assert_int_equal(sg_store_health(store, reason, sizeof(reason)), SG_STORAGE_OK);
    for (int i = 0; i < written; i++) {
        snprintf(id, sizeof(id), "req-%d", i);
        assert_int_equal(sg_store_get_request(store, id, strlen(id), fx->now, &got, err, sizeof(err)), 0);
        assert_int_equal(got.body_len, body_len);
        assert_memory_equal(got.body, body, body_len);
        sg_request_record_dispose(&got);
    }
    assert_int_equal(
        sg_store_idem_claim(store, "orders", "new", 3, sha_a, "req-x", 5, fx->now, fx->now + 60000, &result, err, sizeof(err)), 0);
    assert_int_equal(result.kind, SG_IDEM_CLAIMED);
    free(body);
    sg_store_close(store);
    sg_test_tmpfs_unmount(&fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_null_optionals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_not_overwritten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_then_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_wins_race_with_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_release_then_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_expired_claim_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_concurrent_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_spares_rewritten_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_filter_drops_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_request_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_unknown_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idem_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_refuses_then_resumes, setup, teardown),
    };
    return cmocka_run_group_tests_name("queries-store", tests, NULL, NULL);
}
