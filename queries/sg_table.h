/*
 * Materialized tables: the storage core (queries/README.md; README: "HTTP API: tables").
 *
 * One RocksDB database holds every table: a column family "t:<name>" per table for its rows and
 * one family "positions" for what has been applied. A table is fed (topic, partition, offset,
 * timestamp, key, value) records by a materializer through a batch; committing a batch writes the
 * row changes AND the advanced positions in one RocksDB WriteBatch, so after a crash a table
 * resumes exactly at its stored positions: nothing applied twice, nothing skipped. Records below
 * a stored (or already batched) next offset are ignored, so re-applying a stream from any earlier
 * point is harmless.
 *
 * Positions per (table, topic, partition): next_offset (offset of the next record to apply) and
 * stream_time_ms (largest record timestamp applied, never below 0). Each table also stores a
 * "source identity" (e.g. the Kafka cluster id); sg_tables_reset() clears a table and sets a new
 * one atomically, for a rebuild.
 *
 * Threads: reads (get, scan, position, positions, token, source, commit_count) may run on any
 * thread, concurrently with each other and with commits. A batch belongs to one thread at a time.
 * Commits of one table are serialised; a batch whose table was committed or reset by someone else
 * since the batch was created (or last committed) fails with SG_TABLE_ECONFLICT instead of
 * writing positions computed from a stale view. Nothing here is Kafka- or HTTP-specific.
 */
#ifndef SG_TABLE_H
#define SG_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "sg_storage.h"
#include "sg_token.h"

#define SG_TABLE_MAX_TABLES 256
#define SG_TABLE_MAX_NAME 128                    /* table name bytes, [a-zA-Z0-9._-] */
#define SG_TABLE_MAX_KEY 4096                    /* row key bytes (1..) */
#define SG_TABLE_MAX_VALUE (16u * 1024u * 1024u) /* row value bytes */
#define SG_TABLE_MAX_SOURCE 1024                 /* source identity bytes */
#define SG_TABLE_SCAN_MAX_LIMIT 1000
/* Longest cursor text sg_tables_scan produces or accepts (base64url of version, key, checksum). */
#define SG_TABLE_MAX_CURSOR (((1 + SG_TABLE_MAX_KEY + 4) * 4 + 2) / 3)

/* Returned by sg_table_batch_commit when another writer committed or reset the table. */
#define SG_TABLE_ECONFLICT (-2)

typedef struct st_sg_tables_t sg_tables_t;
typedef struct st_sg_table_batch_t sg_table_batch_t;
typedef struct st_sg_table_commit_t sg_table_commit_t;
/* What a table had applied after one commit (its positions, their token and text) together with
 * the rows as of that commit: every commit publishes one, and reads take it by reference instead
 * of reading the positions. Immutable; handed to callbacks, valid during the call only. */
typedef struct st_sg_table_view_t sg_table_view_t;

/* Where a row's current value came from. etag is a 64-bit hash of (partition, offset, timestamp,
 * value): it changes whenever the row is rewritten, even by an identical value after a rebuild. */
typedef struct {
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    uint64_t etag;
} sg_table_version_t;

/** Opens (creating if missing) the database at dir with the given tables (names unique, valid,
 * at most SG_TABLE_MAX_TABLES). Missing column families are created; families of tables no longer
 * configured are kept untouched. Returns an owned handle, or NULL with a message in err. */
sg_tables_t *sg_tables_open(const char *dir, const char *const *table_names, size_t n, char *err, size_t errlen);

/** Closes and frees; NULL is a no-op. No other call (nor live batch) may be using it. */
void sg_tables_close(sg_tables_t *tables);

/** Write health (sg_storage.h): SG_STORAGE_OK, or SG_STORAGE_UNAVAILABLE after a write failed
 * (a full or read-only disk) until sg_tables_recover() reopened the database; the reason (the
 * RocksDB error) is copied into reason (may be NULL). Meanwhile commits fail at once and reads
 * serve the last committed state. Lock-free when healthy; any thread. */
int sg_tables_health(sg_tables_t *tables, char *reason, size_t reasonlen);

/** When unavailable and the directory has room again (at least SG_STORAGE_RECOVER_MIN_FREE bytes,
 * tried at most once per SG_STORAGE_RECOVER_INTERVAL_MS), closes and reopens the database: the
 * WAL is replayed, so rows and positions are those of the last successful commit, and open batches
 * must re-apply from the stored positions. Reads wait for the reopen (milliseconds). If the reopen
 * fails the database is opened read-only, so reads go on. Returns 0 healthy (already or now), 1
 * still unavailable (why in err). The writer's thread (the materializer), no batch being committed. */
int sg_tables_recover(sg_tables_t *tables, char *err, size_t errlen);

/** Tests only: while `fail` is set, reopening the database for writing (sg_tables_recover) fails,
 * so the reopen falls back to a read-only one, as on a file system that became read-only. */
void sg_tables_test_fail_writable_open(sg_tables_t *tables, int fail);

#define SG_TABLE_CACHE_DEFAULT_BYTES (512u * 1024u * 1024u)

/** Sets the memory reads may keep (RocksDB's block cache and row cache, half each, shared by every
 * table; they fill only with what is read, and after a restore with the tables' blocks while they
 * fit); default SG_TABLE_CACHE_DEFAULT_BYTES. Any thread, any time. */
void sg_tables_set_cache(sg_tables_t *tables, size_t bytes);

/** While restoring (restoring != 0), the tables let level-0 files pile up (up to 64) before
 * compacting them: a restore's bulk batches are a file each, and merging them as they come
 * costs the restore a third of its CPU; sg_tables_settle merges them once at the end. Any thread. */
void sg_tables_set_restoring(sg_tables_t *tables, int restoring);

/** After a restore: writes every table's memtables to table files, merges the files bulk
 * batches left (when there were any), then loads the tables' blocks into the block cache while
 * they fit, so that reads find rows through one file's filter and hash-indexed blocks in memory
 * rather than by walking the memtables' skip lists, probing a file per round or reading blocks
 * from disk. Takes seconds for a large table; commits may go on meanwhile. Returns 0 or -1 (a
 * write failure, as for a commit). Any thread but a loop's. */
int sg_tables_settle(sg_tables_t *tables, char *err, size_t errlen);

/** A RocksDB integer property of table's column family (e.g. "rocksdb.num-files-at-level0",
 * "rocksdb.num-entries-active-mem-table") into *value: for tests, benches and diagnostics.
 * Returns 0, or -1 for an unknown table or property. Any thread. */
int sg_tables_property(sg_tables_t *tables, const char *table, const char *property, uint64_t *value);

/** Number of batches committed (and resets done) on table since open; 0 for an unknown table.
 * Lock-free (acquire): once it has changed, reads see at least that commit. For waiters. */
uint64_t sg_tables_commit_count(sg_tables_t *tables, const char *table);

/* -- positions -------------------------------------------------------------------------------- */

/** Loads the stored position of (table, topic, partition). Returns 0 found, 1 none stored
 * (outputs set to 0), -1 error (unknown table, RocksDB, corrupt record). Outputs may be NULL. */
int sg_tables_position(sg_tables_t *tables, const char *table, const char *topic, int32_t partition, int64_t *next_offset,
                       int64_t *stream_time_ms, char *err, size_t errlen);

/* Called per stored position in (topic bytes, partition) order; topic is valid during the call
 * only. Non-zero stops the listing. */
typedef int (*sg_table_position_cb)(void *arg, const char *topic, int32_t partition, int64_t next_offset, int64_t stream_time_ms);

/** Lists every stored position of table from one consistent snapshot. Returns 0 (including when
 * the callback stopped it), -1 error. */
int sg_tables_positions(sg_tables_t *tables, const char *table, sg_table_position_cb cb, void *arg, char *err, size_t errlen);

/** Merges the table's view position into `into`: per stored partition with next_offset > 0,
 * (topic, partition, next_offset - 1, stream time). Returns 0, or -1 (into unchanged) on error,
 * including a token limit. */
int sg_tables_token(sg_tables_t *tables, const char *table, sg_token_t *into, char *err, size_t errlen);

/** Loads the table's source identity. Returns 0 with *source_out owned (NUL-terminated), 1 none
 * stored (*source_out NULL), -1 error. */
int sg_tables_get_source(sg_tables_t *tables, const char *table, char **source_out, char *err, size_t errlen);

/** Deletes every row and position of table and stores new_source (1..SG_TABLE_MAX_SOURCE bytes),
 * atomically, for a rebuild. Open batches of the table will fail to commit (SG_TABLE_ECONFLICT).
 * Returns 0 or -1. */
int sg_tables_reset(sg_tables_t *tables, const char *table, const char *new_source, char *err, size_t errlen);

/* -- applying --------------------------------------------------------------------------------- */

/** Returns a new, empty batch (owned) for table, or NULL if the table is unknown. */
sg_table_batch_t *sg_table_batch_new(sg_tables_t *tables, const char *table);

/** Adds a record: value NULL is a tombstone (deletes key), otherwise upserts key -> value.
 * topic follows the token's rules (1..249 bytes of [a-zA-Z0-9._-]), partition >= 0, offset >= 0,
 * key 1..SG_TABLE_MAX_KEY bytes, valuelen <= SG_TABLE_MAX_VALUE. Returns 0 added, 1 ignored
 * because offset is below the partition's next offset (stored or already in this batch), -1
 * invalid argument or error reading the stored position (the batch is unchanged). */
int sg_table_batch_put(sg_table_batch_t *batch, const char *topic, int32_t partition, int64_t offset, int64_t timestamp_ms,
                       const void *key, size_t keylen, const void *value, size_t valuelen, char *err, size_t errlen);

/** Raises the partition's next offset to next_offset without a row (offsets with no record to
 * apply: transaction markers, compacted gaps). Returns 0 raised, 1 already there, -1 error. */
int sg_table_batch_advance(sg_table_batch_t *batch, const char *topic, int32_t partition, int64_t next_offset, char *err,
                           size_t errlen);

/** Records added to the batch since it was created or last committed. */
size_t sg_table_batch_count(const sg_table_batch_t *batch);

/** Writes the batch's rows and advanced positions in one WriteBatch (or one ingested table file,
 * see sg_table_batch_set_bulk). Returns 0, -1 error, or SG_TABLE_ECONFLICT. Either way the batch
 * is emptied and may be reused; after a failure its records are lost and the caller re-applies
 * from the stored positions. Same as detach + run + destroy. */
int sg_table_batch_commit(sg_table_batch_t *batch, char *err, size_t errlen);

/** Bulk batches (a restore) of at least a few thousand rows are written as a sorted table file
 * that RocksDB ingests whole, positions included (atomically, as a WriteBatch would), skipping
 * the write-ahead log and the memtable. Small or non-bulk batches use a WriteBatch. */
void sg_table_batch_set_bulk(sg_table_batch_t *batch, int bulk);

/** Takes what the batch holds (rows and the positions they reach) into a commit job (owned)
 * that sg_table_commit_run writes, e.g. on another thread while the batch takes the next
 * records: the batch goes on from those positions, expecting the job to be committed. NULL when
 * there is nothing to commit. Jobs of one table must be run in the order they were detached; once
 * one fails, the later ones fail with SG_TABLE_ECONFLICT and the batch's positions are not to be
 * trusted: set up again from the stored positions. */
sg_table_commit_t *sg_table_batch_detach(sg_table_batch_t *batch);

/** Writes a job (sorting its rows first). Returns 0, -1 error, or SG_TABLE_ECONFLICT. Any
 * thread; the job stays the caller's. */
int sg_table_commit_run(sg_table_commit_t *job, char *err, size_t errlen);

/** Rows in the job (the last write per key once it has run). */
size_t sg_table_commit_rows(const sg_table_commit_t *job);

/** Frees a job; NULL is a no-op. */
void sg_table_commit_destroy(sg_table_commit_t *job);

/** Discards and frees a batch (uncommitted records are dropped); NULL is a no-op. */
void sg_table_batch_destroy(sg_table_batch_t *batch);

/* -- reads ------------------------------------------------------------------------------------ */

/** Reads a row. Returns 0 found (*value_out owned, followed by a NUL not counted in *len_out;
 * version filled if not NULL), 1 absent (*value_out NULL), -1 error (unknown table, key out of
 * range, RocksDB, corrupt row). When token_into is not NULL the table's view position is merged
 * into it from the same snapshot as the row (see sg_tables_token). */
int sg_tables_get(sg_tables_t *tables, const char *table, const void *key, size_t keylen, void **value_out, size_t *len_out,
                  sg_table_version_t *version, sg_token_t *token_into, char *err, size_t errlen);

/* A point read's answer, valid during the callback only. */
typedef struct {
    int found;         /* 0: no row for the key */
    const void *value; /* the row's value (not NUL-terminated) when found */
    size_t value_len;
    sg_table_version_t version;  /* when found */
    const sg_table_view_t *view; /* the state the answer reflects */
} sg_table_read_t;

typedef void (*sg_table_read_cb)(void *arg, const sg_table_read_t *read);

/** The hot point read: one lookup at the snapshot of the table's current view, no copy, no
 * token built. Calls cb once with the row (if any) and the view; cb must not call into this
 * module (a reader lock is held). Returns 0 found, 1 absent (cb called either way), -1 error (cb
 * not called: unknown table, key out of range, RocksDB, corrupt row, positions over the token
 * limits). Any thread. */
int sg_tables_read(sg_tables_t *tables, const char *table, const void *key, size_t keylen, sg_table_read_cb cb, void *arg,
                   char *err, size_t errlen);

/** The view's position as a token (borrowed), and its text (borrowed, *len bytes, NUL-terminated). */
const sg_token_t *sg_table_view_token(const sg_table_view_t *view);
const char *sg_table_view_token_text(const sg_table_view_t *view, size_t *len);

/** The largest stream time of topic's partitions in the view (0 when none). */
int64_t sg_table_view_stream_time(const sg_table_view_t *view, const char *topic);
/** The same as decimal text (borrowed, *len bytes, NUL-terminated), made once per commit, when
 * every position of the view is of `topic` (a table reads one topic); else NULL. */
const char *sg_table_view_stream_time_text(const sg_table_view_t *view, const char *topic, size_t *len);

/* Called per row in key order; value is without the header; all pointers valid only during the
 * call. Non-zero stops the scan after this row. */
typedef int (*sg_table_row_cb)(void *arg, const void *key, size_t keylen, const void *value, size_t valuelen,
                               const sg_table_version_t *version);

typedef struct {
    const void *prefix; /* only keys starting with prefix (NULL or 0 length: any) */
    size_t prefix_len;
    const void *from; /* only keys >= from (NULL: no lower bound) */
    size_t from_len;
    const void *to; /* only keys < to (NULL: no upper bound) */
    size_t to_len;
    size_t limit;       /* 1..SG_TABLE_SCAN_MAX_LIMIT rows per call */
    const char *cursor; /* NUL-terminated next_cursor of the previous page of the same query, or NULL */
    /* Only rows `keep` accepts (NULL: all); rows it refuses are passed over and not counted. At
     * most SG_TABLE_SCAN_MAX_PASSED are passed over in one call: then the scan stops with a cursor
     * after the last row looked at (delivered or not). */
    int (*keep)(void *keep_arg, const void *key, size_t keylen, uint32_t partition);
    void *keep_arg;
} sg_table_scan_t;

#define SG_TABLE_SCAN_MAX_PASSED 100000

/** Calls cb for up to query->limit rows in range, after the cursor, from one snapshot. Sets
 * *next_cursor to an owned cursor text when more rows may follow (the limit was reached and
 * another row exists, or cb stopped the scan), NULL when done. A cursor that is not valid base64url
 * of this module's format, belongs to another table, or lies outside the query's range is
 * rejected. When token_into is not NULL the view position is merged into it from the same
 * snapshot. Returns the number of rows delivered (>= 0), or -1 on error (*next_cursor NULL). */
/** The cursor a page ending at `key` would have (owned text), or NULL for an unknown table. */
char *sg_tables_cursor(sg_tables_t *tables, const char *table, const void *key, size_t keylen);

/** The key a cursor of this table ends at, copied into key_out (SG_TABLE_MAX_KEY bytes). Returns
 * its length, or -1 for a cursor that is not this table's. */
long sg_tables_cursor_key(sg_tables_t *tables, const char *table, const char *cursor, void *key_out);

int sg_tables_scan(sg_tables_t *tables, const char *table, const sg_table_scan_t *query, sg_table_row_cb cb, void *arg,
                   char **next_cursor, sg_token_t *token_into, char *err, size_t errlen);

#endif
