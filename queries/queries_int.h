/*
 * Helpers shared by the queries/ sources (private to the module): RocksDB error translation and
 * the options the module's databases share.
 */
#ifndef SG_QUERIES_INT_H
#define SG_QUERIES_INT_H

#include <stddef.h>
#include <stdint.h>

#include <pthread.h>
#include <stdatomic.h>

#include "sg_base.h"
#include "sg_storage.h"

/** "<module>: <what>: <rocksdb message>" into err, frees errptr; returns -1. */
int sg_queries_rocksdb_fail(char *err, size_t errlen, const char *module, const char *what, char *errptr);

/** RocksDB options shared by the module's databases: create if missing, the given memtable and
 * WAL budget and compression, warnings-only info log, a Bloom filter. Returns owned options. */
struct rocksdb_options_t;
struct rocksdb_options_t *sg_queries_db_options(size_t write_buffer, int max_write_buffers, uint64_t max_total_wal,
                                                int compression);

/** Turns off RocksDB's preallocation of its files (see common.c): takes options, returns the
 * options to use instead (owned). */
struct rocksdb_options_t *sg_queries_no_fallocate(struct rocksdb_options_t *options);

/* A database's write health (sg_storage.h): an atomic state for the lock-free check on hot paths,
 * and the reason under a mutex. */
typedef struct {
    atomic_int state;     /* sg_storage_health_t */
    int64_t last_try_ms;  /* monotonic time of the last reopen attempt (the recovering thread only) */
    char last_error[512]; /* why that attempt (or the room check) failed: written by the recovering thread under lock */
    pthread_mutex_t lock; /* guards reason */
    char reason[512];
} sg_queries_health_t;

void sg_queries_health_init(sg_queries_health_t *health);

/** Initialises the reader/writer lock around a database's handles, preferring the writer (a
 * reopen): glibc's default lets a steady stream of overlapping readers (the event loops' reads)
 * hold a writer off indefinitely. Readers must not take it recursively. */
void sg_queries_db_lock_init(pthread_rwlock_t *lock);
void sg_queries_health_dispose(sg_queries_health_t *health);

/** Marks the database unavailable with "<what>: <why>" as the reason (the first failure's reason
 * is kept until it recovers). */
void sg_queries_health_fail(sg_queries_health_t *health, const char *why);

/** Marks it available again. */
void sg_queries_health_ok(sg_queries_health_t *health);

/** The state; copies the reason into reason (may be NULL; "" when ok): the first failure, and why
 * the last reopen attempt failed, if one did. */
int sg_queries_health_get(sg_queries_health_t *health, char *reason, size_t reasonlen);

/** Whether a reopen should be tried now: the interval since the last try has passed and dir has
 * at least SG_STORAGE_RECOVER_MIN_FREE bytes free (statvfs). Records the try. When not, says why
 * in err: the room missing ("<module>: waiting for room in <dir>: ..."), or within the interval
 * the last attempt's error, so a caller that logs changes of cause sees the same cause. */
int sg_queries_health_should_try(sg_queries_health_t *health, const char *module, const char *dir, char *err, size_t errlen);

/** Records why the reopen that sg_queries_health_should_try allowed failed (what the calls within
 * the interval repeat, and what sg_queries_health_get adds to the reason). */
void sg_queries_health_tried(sg_queries_health_t *health, const char *err);

/** What a reopen of the database in dir needs, for an error saying why it waits or failed: the
 * free room, and the bytes of its write-ahead logs (RocksDB's *.log files), which a reopen replays
 * and writes out as table files before it deletes them. */
void sg_queries_room_note(const char *dir, char *note, size_t notelen);

/** Says in err why a reopen failed, for the recovering thread: the writable open's error rw_err
 * (with the room a reopen needs when that is what it lacked) and whether the read-only fallback
 * worked (ro_err NULL) or why not. Records it as the last attempt's error. */
void sg_queries_reopen_failed(sg_queries_health_t *health, const char *module, const char *dir, const char *rw_err,
                              const char *ro_err, char *err, size_t errlen);

/** Like sg_queries_rocksdb_fail, and marks health unavailable with the RocksDB message. */
int sg_queries_write_fail(sg_queries_health_t *health, char *err, size_t errlen, const char *module, const char *what,
                          char *errptr);

#endif
