/*
 * See queries_int.h.
 */
#include "queries_int.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

int sg_queries_rocksdb_fail(char *err, size_t errlen, const char *module, const char *what, char *errptr)
{
    sg_errf(err, errlen, "%s: %s: %s", module, what, errptr != NULL ? errptr : "unknown RocksDB error");
    rocksdb_free(errptr);
    return -1;
}

/* rocksdb::InfoLogLevel::HEADER_LEVEL (the C API takes an int): only the header written at open.
 * RocksDB's info log (the LOG file) lives in the data directory; once a write to it has failed
 * (a full disk), the next message RocksDB logs there trips an assertion in Debian's build
 * (WritableFileWriter::AssertFalseAndGetStatusForPrevError, "sync_without_flush_called_") and
 * aborts the process: the background-error handler logs exactly when the disk is full. Nothing
 * is logged after open, so that writer never sees a failure; our own errors say what failed. */
#define SG_QUERIES_INFO_LOG_HEADER 5

rocksdb_options_t *sg_queries_db_options(size_t write_buffer, int max_write_buffers, uint64_t max_total_wal, int compression)
{
    rocksdb_options_t *options = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(options, 1);
    rocksdb_options_set_create_missing_column_families(options, 1);
    rocksdb_options_set_write_buffer_size(options, write_buffer);
    rocksdb_options_set_max_write_buffer_number(options, max_write_buffers);
    rocksdb_options_set_max_total_wal_size(options, max_total_wal);
    rocksdb_options_set_compression(options, compression);
    rocksdb_options_set_info_log_level(options, SG_QUERIES_INFO_LOG_HEADER);
    rocksdb_options_set_max_log_file_size(options, 1024 * 1024);
    rocksdb_options_set_keep_log_file_num(options, 4);
    /* Lookups of absent keys are common (idempotency claims, first polls, 404 rows): a Bloom
     * filter answers them without reading data blocks. */
    rocksdb_block_based_table_options_t *table = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_filter_policy(table, rocksdb_filterpolicy_create_bloom(10));
    rocksdb_options_set_block_based_table_factory(options, table);
    rocksdb_block_based_options_destroy(table);
    return sg_queries_no_fallocate(options);
}

/* No preallocation of RocksDB's files (allow_fallocate, which the C API only sets from a string;
 * the copy keeps every option set before). RocksDB reserves room for a new file before writing
 * it: write_buffer_size x 1.1 for each write-ahead log, 4 MiB for each manifest. The reservation
 * is real space (ext4, xfs, tmpfs), kept while the file is open and invisible in the file's size.
 * After a full disk each reopen makes a new log and a new manifest before it deletes the old
 * ones: the request store's reopen (8 MiB of write buffer) reserved 12.8 MiB and took all the
 * room a deleted file had given back, so the tables, whose reopen is what frees their log,
 * waited for room forever (tests/integration/test_disk.c, tests/queries/test_store.c). Without
 * it a file takes the room it is written with. */
rocksdb_options_t *sg_queries_no_fallocate(rocksdb_options_t *options)
{
    rocksdb_options_t *copy = rocksdb_options_create();
    char *errptr = NULL;
    rocksdb_get_options_from_string(options, "allow_fallocate=false", copy, &errptr);
    /* A fixed, valid string: it fails only if RocksDB dropped the option (then go without). */
    if (errptr != NULL) {
        rocksdb_free(errptr);
        rocksdb_options_destroy(copy);
        return options;
    }
    rocksdb_options_destroy(options);
    return copy;
}

/* -- health ----------------------------------------------------------------------------------- */

void sg_queries_health_init(sg_queries_health_t *health)
{
    atomic_init(&health->state, SG_STORAGE_OK);
    health->last_try_ms = 0;
    pthread_mutex_init(&health->lock, NULL);
    health->reason[0] = '\0';
    health->last_error[0] = '\0';
}

void sg_queries_db_lock_init(pthread_rwlock_t *lock)
{
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(lock, &attr);
    pthread_rwlockattr_destroy(&attr);
}

void sg_queries_health_dispose(sg_queries_health_t *health)
{
    pthread_mutex_destroy(&health->lock);
}

void sg_queries_health_fail(sg_queries_health_t *health, const char *why)
{
    pthread_mutex_lock(&health->lock);
    if (atomic_load(&health->state) == SG_STORAGE_OK)
        snprintf(health->reason, sizeof(health->reason), "%s", why);
    atomic_store(&health->state, SG_STORAGE_UNAVAILABLE);
    pthread_mutex_unlock(&health->lock);
}

void sg_queries_health_ok(sg_queries_health_t *health)
{
    pthread_mutex_lock(&health->lock);
    health->reason[0] = '\0';
    health->last_error[0] = '\0';
    atomic_store(&health->state, SG_STORAGE_OK);
    pthread_mutex_unlock(&health->lock);
}

int sg_queries_health_get(sg_queries_health_t *health, char *reason, size_t reasonlen)
{
    if (atomic_load(&health->state) == SG_STORAGE_OK) {
        if (reason != NULL && reasonlen > 0)
            reason[0] = '\0';
        return SG_STORAGE_OK;
    }
    pthread_mutex_lock(&health->lock);
    int state = atomic_load(&health->state);
    if (reason != NULL && reasonlen > 0)
        snprintf(reason, reasonlen, "%s%s%s", health->reason, health->last_error[0] != '\0' ? "; not reopened yet: " : "",
                 health->last_error);
    pthread_mutex_unlock(&health->lock);
    return state;
}

int sg_queries_health_should_try(sg_queries_health_t *health, const char *module, const char *dir, char *err, size_t errlen)
{
    int64_t now = sg_mono_ms();
    if (health->last_try_ms != 0 && now - health->last_try_ms < SG_STORAGE_RECOVER_INTERVAL_MS) {
        sg_errf(err, errlen, "%s", health->last_error[0] != '\0' ? health->last_error : "reopen attempted moments ago");
        return 0;
    }
    health->last_try_ms = now;
    struct statvfs fs;
    if (statvfs(dir, &fs) != 0) {
        sg_errf(err, errlen, "%s: waiting for room in %s: statvfs: %s", module, dir, strerror(errno));
    } else if (fs.f_flag & ST_RDONLY) {
        sg_errf(err, errlen, "%s: waiting for %s to be writable (a read-only file system)", module, dir);
    } else {
        uint64_t free_bytes = (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize;
        if (free_bytes >= SG_STORAGE_RECOVER_MIN_FREE)
            return 1;
        char note[256];
        sg_queries_room_note(dir, note, sizeof(note));
        sg_errf(err, errlen, "%s: waiting for room in %s (at least %u KiB before a reopen is tried): %s", module, dir,
                SG_STORAGE_RECOVER_MIN_FREE / 1024, note);
    }
    sg_queries_health_tried(health, err);
    return 0;
}

void sg_queries_health_tried(sg_queries_health_t *health, const char *err)
{
    pthread_mutex_lock(&health->lock);
    snprintf(health->last_error, sizeof(health->last_error), "%s", err);
    pthread_mutex_unlock(&health->lock);
}

/* The bytes of dir's write-ahead logs. */
static uint64_t sg_queries_wal_bytes(const char *dir)
{
    uint64_t bytes = 0;
    DIR *entries = opendir(dir);
    for (struct dirent *entry; entries != NULL && (entry = readdir(entries)) != NULL;) {
        size_t len = strlen(entry->d_name);
        char path[4096];
        struct stat st;
        if (len > 4 && strcmp(entry->d_name + len - 4, ".log") == 0 &&
            snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name) < (int)sizeof(path) && stat(path, &st) == 0)
            bytes += (uint64_t)st.st_size;
    }
    if (entries != NULL)
        closedir(entries);
    return bytes;
}

void sg_queries_room_note(const char *dir, char *note, size_t notelen)
{
    struct statvfs fs;
    uint64_t free_bytes = statvfs(dir, &fs) == 0 ? (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize : 0;
    snprintf(note, notelen,
             "%" PRIu64 " KiB free; a reopen writes the write-ahead log's %" PRIu64 " KiB out as table files (compressed) "
             "before it deletes the log, and needs up to that much room",
             free_bytes / 1024, sg_queries_wal_bytes(dir) / 1024);
}

void sg_queries_reopen_failed(sg_queries_health_t *health, const char *module, const char *dir, const char *rw_err,
                              const char *ro_err, char *err, size_t errlen)
{
    char note[256] = "";
    if (strstr(rw_err, "No space left") != NULL) {
        note[0] = ';';
        note[1] = ' ';
        sg_queries_room_note(dir, note + 2, sizeof(note) - 2);
    }
    if (ro_err != NULL)
        sg_errf(err, errlen, "%s: reopening for writing failed (%s%s); the read-only fallback failed too (%s): reads fail until the "
                "next attempt", module, rw_err, note, ro_err);
    else
        sg_errf(err, errlen, "%s: reopening for writing failed (%s%s); opened read-only meanwhile (reads go on)", module, rw_err, note);
    sg_queries_health_tried(health, err);
}

int sg_queries_write_fail(sg_queries_health_t *health, char *err, size_t errlen, const char *module, const char *what, char *errptr)
{
    char why[512];
    snprintf(why, sizeof(why), "%s: %s", what, errptr != NULL ? errptr : "unknown RocksDB error");
    sg_queries_health_fail(health, why);
    return sg_queries_rocksdb_fail(err, errlen, module, what, errptr);
}
