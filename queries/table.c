/*
 * Materialized tables on RocksDB (queries/README.md; README: "HTTP API: tables").
 *
 * The design choice that shapes this file: the applied position lives with the rows, in the same
 * column family, and is written in the same WriteBatch (or the same ingested table file), so
 * "what has been applied" can never disagree with "what the rows say", whatever the crash point.
 * A batch keeps an in-memory copy of each partition's position it touched (loaded on first use)
 * to drop records below the next offset; that copy is only trusted while nobody else has written
 * the table, which a per-table commit counter checks at commit under the table's commit lock
 * (optimistic, no lock while building). A batch's contents can be detached into a commit job and
 * written on another thread while the batch takes the next records (the materializer's commit
 * thread); a restore's large batches are written as sorted table files that RocksDB ingests
 * whole, skipping the write-ahead log and the memtable.
 *
 * Every commit publishes a view (positions, token, token text, a snapshot taken right after the
 * write): reads take it by reference and read their row at its snapshot, so an answer and its
 * token always agree and no read touches the positions.
 *
 * Layout (all integers fixed-width big-endian):
 *   family "t:<table>"  key: the row key as given (1..SG_TABLE_MAX_KEY bytes)
 *                       value: u8 version (1), u32 partition, u64 offset, u64 timestamp_ms,
 *                              then the value bytes (the caller never sees this header)
 *                       key "" (empty, never a row): the positions record,
 *                              u8 version (2), u32 count, then per partition, sorted by (topic
 *                              bytes, partition): u8 topic length, topic, u32 partition,
 *                              u64 next_offset, u64 stream_time
 *   family "positions"  key: u8 name length, table name, then
 *                              'S'  -> source identity bytes
 *                              'P'  -> the positions record as above (second layout), or
 *                              'P' topic NUL u32 partition -> one position (first layout)
 * Both older layouts are read when the table's family has no record and emptied by the next
 * commit (in its WriteBatch). All of a table's positions are one record, rewritten whole by every
 * commit. One table's keys are a contiguous range, so a reset is two range deletions.
 *
 * Scan cursors are base64url (no padding) of u8 version (1), the last key returned, and a u32
 * FNV-1a checksum over (table name, version, key): a cursor from another table or a mangled one
 * is refused rather than silently resuming somewhere else.
 */
#include "sg_table.h"

#include "keysort.h"
#include "queries_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#define SG_TABLE_ROW_VERSION 1
#define SG_TABLE_ROW_HEADER 21 /* version, partition, offset, timestamp */
#define SG_TABLE_POS_VERSION 2
#define SG_TABLE_POS_ENTRY_FIXED 21 /* u8 topic length, u32 partition, u64 next, u64 stream time */
#define SG_TABLE_CURSOR_VERSION 1
#define SG_TABLE_CF_PREFIX "t:"
#define SG_TABLE_POSITIONS_CF "positions"
#define SG_TABLE_TAG_SOURCE 'S'
#define SG_TABLE_TAG_POSITION 'P'
/* u8 length, name, tag */
#define SG_TABLE_POS_KEY_MAX (1 + SG_TABLE_MAX_NAME + 1)

/* Rows are bulk-loaded on a rebuild: larger memtables than the state store's. */
#define SG_TABLE_WRITE_BUFFER (32u * 1024u * 1024u)
#define SG_TABLE_MAX_TOTAL_WAL (128u * 1024u * 1024u)
/* Memory for reads unless sg_tables_set_cache says otherwise: half for uncompressed data blocks,
 * half for rows (LRUs shared by every table; they grow only as rows are read). */
#define SG_TABLE_CACHE_DEFAULT SG_TABLE_CACHE_DEFAULT_BYTES
/* A batch of at least this many rows is written as a table file when the batch is bulk. */
#define SG_TABLE_BULK_MIN_ROWS 4096
#define SG_ROCKSDB_PERF_DISABLE 1 /* rocksdb::PerfLevel::kDisable (the C API takes an int) */

/* One position of a view; topic points into the view's own copy of the names. */
typedef struct {
    const char *topic;
    int32_t partition;
    int64_t next_offset;
    int64_t stream_time_ms;
} sg_table_view_pos_t;

/* What a table had applied after one commit, and a RocksDB snapshot taken right after it: the
 * rows as of that commit. Immutable once published; reference-counted (the table holds one
 * reference to its current view, a read one while it uses it). */
struct st_sg_table_view_t {
    atomic_uint refs;
    rocksdb_t *db;                       /* the snapshot's database */
    const rocksdb_snapshot_t *snapshot;  /* NULL when the database could not give one (read-only) */
    rocksdb_readoptions_t *read_options; /* on the snapshot, shared by every read of the view */
    sg_table_view_pos_t *positions;      /* sorted by (topic bytes, partition) */
    size_t n_positions;
    char *topics;      /* the positions' topic names, NUL-separated */
    sg_token_t *token; /* positions with next_offset > 0 as a token (offset = next - 1); NULL: over the token limits */
    char *token_text;  /* its text form */
    size_t token_text_len;
    const char *one_topic;   /* the topic of every position, when they all have one (else NULL) */
    int64_t one_stream_time; /* then the largest stream time of its applied partitions */
    char one_stream_time_text[24]; /* and that in decimal (a Stream-Time header per read) */
    size_t one_stream_time_text_len;
    const char *error;       /* why the positions could not be read (corrupt record), or NULL */
};

typedef struct {
    size_t key_at, keylen;     /* in the batch's arena */
    size_t value_at, valuelen; /* header + value in the arena; valuelen 0: a tombstone */
} sg_table_row_t; /* in order of arrival: the last of a key wins */

/* A batch's row buffers, owned by whoever holds them. */
typedef struct {
    sg_table_row_t *rows;
    size_t rows_cap;
    char *arena;
    size_t arena_cap;
} sg_table_buffers_t;

typedef struct {
    char *name;
    size_t name_len;
    rocksdb_column_family_handle_t *cf; /* borrowed from tables->cf_handles */
    uint8_t pos_prefix[1 + SG_TABLE_MAX_NAME];
    size_t pos_prefix_len;
    pthread_mutex_t commit_lock;
    _Atomic uint64_t commits;
    /* The current view: swapped under view_lock by every commit and reset, after its write (and
     * under commit_lock, so views are published in commit order); readers take a reference under
     * view_lock and use it without any lock. */
    pthread_mutex_t view_lock;
    sg_table_view_t *view;
    /* The buffers of the last bulk commit written, handed back by the thread that wrote it for
     * the next bulk round (sg_table_batch_detach): a restore's rounds take turns with two sets
     * of buffers instead of faulting fresh pages in for every round. Under spare_lock. */
    pthread_mutex_t spare_lock;
    sg_table_buffers_t spare;
} sg_table_t;

struct st_sg_tables_t {
    char *dir;
    /* Held for reading by every call that uses db or a family handle, for writing by a reopen
     * (sg_tables_recover): handles change when the database is reopened. */
    pthread_rwlock_t db_lock;
    sg_queries_health_t health;
    rocksdb_t *db; /* NULL only after a failed reopen (calls then fail) */
    rocksdb_options_t *options;
    size_t cf_count;
    rocksdb_column_family_handle_t **cf_handles; /* every family opened, including stale ones */
    rocksdb_column_family_handle_t *positions_cf;
    rocksdb_readoptions_t *read_options;
    rocksdb_writeoptions_t *write_options;
    rocksdb_cache_t *block_cache;
    rocksdb_cache_t *row_cache;
    char *ingest_dir;                    /* where bulk batches' table files are written: <dir>/ingest */
    rocksdb_options_t *ingest_options;   /* for writing them */
    _Atomic bool ingested;               /* a bulk batch was ingested since the last sg_tables_settle */
    int compression;                     /* the files' compression: LZ4 when this RocksDB build has it */
    _Atomic size_t block_cache_bytes;
    bool test_fail_writable_open; /* sg_tables_test_fail_writable_open */
    sg_table_t *tables;
    size_t table_count;
};

typedef struct {
    char topic[SG_TOKEN_MAX_TOPIC_LEN + 1];
    int32_t partition;
    int64_t next_offset;
    int64_t stream_time_ms;
    bool dirty;
} sg_table_batch_pos_t;

struct st_sg_table_batch_t {
    sg_tables_t *tables;
    sg_table_t *table;
    uint64_t base_commits;           /* the table's commit count our cached positions are valid for */
    sg_table_batch_pos_t *positions; /* every stored position once loaded, plus new ones */
    size_t pos_count, pos_cap, pos_last;
    size_t pos_last_checked; /* the length of positions[pos_last]'s topic once a put or advance has
                              * checked it as a name (a put of the same topic skips the check), or 0 */
    bool pos_loaded;
    bool pos_legacy; /* loaded from the positions family (older layouts), which the next commit empties */
    bool bulk;       /* sg_table_batch_set_bulk */
    size_t records;
    /* Rows wait here until the commit, which writes them sorted by key, the last write of each
     * key only: RocksDB's memtable takes sorted inserts several times faster. */
    sg_table_row_t *rows;
    size_t rows_count, rows_cap;
    char *arena; /* keys and row values (header + value) of the rows */
    size_t arena_len, arena_cap;
};

static void sg_tables_load_views(sg_tables_t *tables);
static void sg_table_view_publish(sg_table_t *table, sg_table_view_t *view);

/* -- errors and memory ------------------------------------------------------------------------ */

#define sg_table_rocksdb_fail(err, errlen, what, errptr) sg_queries_rocksdb_fail(err, errlen, "tables", what, errptr)

/* -- small encodings -------------------------------------------------------------------------- */

static void sg_table_put_uint(uint8_t *buf, uint64_t value, size_t width)
{
    for (size_t i = 0; i < width; i++)
        buf[i] = (uint8_t)(value >> (8 * (width - 1 - i)));
}

static uint64_t sg_table_get_uint(const uint8_t *buf, size_t width)
{
    uint64_t value = 0;
    for (size_t i = 0; i < width; i++)
        value = (value << 8) | buf[i];
    return value;
}

/* A 64-bit hash of bytes, a word at a time (little-endian loads, so the same on every machine):
 * ETags are computed on every read, and FNV-1a's byte steps were 5% of a point read. */
static uint64_t sg_table_hash64(const void *bytes, size_t len)
{
    const uint8_t *p = bytes;
    uint64_t hash = 0x243f6a8885a308d3u ^ ((uint64_t)len * 0x9e3779b97f4a7c15u);
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t word = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 |
                        (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
        hash = (hash ^ word) * 0x9e3779b97f4a7c15u;
        hash ^= hash >> 29;
    }
    uint64_t tail = 0;
    for (size_t i = 0; i < len; i++)
        tail |= (uint64_t)p[i] << (8 * i);
    hash = (hash ^ tail) * 0xbf58476d1ce4e5b9u;
    hash ^= hash >> 31;
    hash *= 0x94d049bb133111ebu;
    return hash ^ (hash >> 32);
}

static uint32_t sg_table_fnv32(uint32_t hash, const void *bytes, size_t len)
{
    const uint8_t *p = bytes;
    for (size_t i = 0; i < len; i++)
        hash = (hash ^ p[i]) * 16777619u;
    return hash;
}

/* The key order of RocksDB's default bytewise comparator. */
static int sg_table_keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t common = alen < blen ? alen : blen;
    int c = common != 0 ? memcmp(a, b, common) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static bool sg_table_has_prefix(const void *key, size_t keylen, const void *prefix, size_t prefix_len)
{
    return keylen >= prefix_len && (prefix_len == 0 || memcmp(key, prefix, prefix_len) == 0);
}

static bool sg_table_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* Length of a valid name of 1..max bytes of [a-zA-Z0-9._-], or 0. */
static size_t sg_table_valid_name(const char *name, size_t max)
{
    if (name == NULL)
        return 0;
    size_t len = strnlen(name, max + 1);
    if (len == 0 || len > max)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!sg_table_name_char((unsigned char)name[i]))
            return 0;
    return len;
}

/* Decodes a row value's header. Returns false when it is not a row this module wrote. */
static bool sg_table_decode_row(const char *value, size_t len, sg_table_version_t *version)
{
    const uint8_t *p = (const uint8_t *)value;
    if (len < SG_TABLE_ROW_HEADER || p[0] != SG_TABLE_ROW_VERSION)
        return false;
    uint64_t partition = sg_table_get_uint(p + 1, 4);
    if (partition > INT32_MAX)
        return false;
    version->partition = (int32_t)partition;
    version->offset = (int64_t)sg_table_get_uint(p + 5, 8);
    version->timestamp_ms = (int64_t)sg_table_get_uint(p + 13, 8);
    /* The header is the (partition, offset, timestamp) of the write; hashing it with the value makes
     * the tag change on every rewrite, including after a rebuild from another cluster. */
    version->etag = sg_table_hash64(value, len);
    return version->offset >= 0;
}

/* -- lookup ----------------------------------------------------------------------------------- */

static sg_table_t *sg_tables_find(sg_tables_t *tables, const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < tables->table_count; i++)
        if (strcmp(tables->tables[i].name, name) == 0)
            return &tables->tables[i];
    return NULL;
}

static sg_table_t *sg_tables_find_err(sg_tables_t *tables, const char *name, char *err, size_t errlen)
{
    sg_table_t *table = sg_tables_find(tables, name);
    if (table == NULL)
        sg_errf(err, errlen, "tables: unknown table '%.*s'", SG_TABLE_MAX_NAME, name != NULL ? name : "");
    return table;
}

/* -- open / close ----------------------------------------------------------------------------- */

static int sg_tables_check_names(const char *const *table_names, size_t n, char *err, size_t errlen)
{
    if (n > SG_TABLE_MAX_TABLES || (n != 0 && table_names == NULL)) {
        sg_errf(err, errlen, "tables: at most %d tables", SG_TABLE_MAX_TABLES);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (sg_table_valid_name(table_names[i], SG_TABLE_MAX_NAME) == 0) {
            sg_errf(err, errlen, "tables: table name must be 1..%d bytes of [a-zA-Z0-9._-]", SG_TABLE_MAX_NAME);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(table_names[i], table_names[j]) == 0) {
                sg_errf(err, errlen, "tables: table '%s' given twice", table_names[i]);
                return -1;
            }
        }
    }
    return 0;
}

/* Builds the list of families to open: default, positions, one per table, then any family already
 * in the database that is none of these (a table dropped from the config: RocksDB refuses to open
 * a database without all its families, and deleting data on a config change is not ours to do).
 * Table i's family is entry 2 + i. Returns an owned array of owned names. */
static char **sg_tables_cf_names(const char *dir, const char *const *table_names, size_t n, size_t *count)
{
    char *errptr = NULL;
    size_t existing_count = 0;
    rocksdb_options_t *probe = rocksdb_options_create();
    char **existing = rocksdb_list_column_families(probe, dir, &existing_count, &errptr);
    rocksdb_options_destroy(probe);
    /* An error here means there is no database yet: it is created with only our families. */
    rocksdb_free(errptr);
    if (existing == NULL)
        existing_count = 0;

    char **names = sg_calloc(2 + n + existing_count, sizeof(*names));
    size_t used = 0;
    names[used++] = sg_strdup("default");
    names[used++] = sg_strdup(SG_TABLE_POSITIONS_CF);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(SG_TABLE_CF_PREFIX) + strlen(table_names[i]) + 1;
        names[used] = sg_malloc(len);
        snprintf(names[used++], len, "%s%s", SG_TABLE_CF_PREFIX, table_names[i]);
    }
    for (size_t i = 0; i < existing_count; i++) {
        bool known = false;
        for (size_t j = 0; j < used && !known; j++)
            known = strcmp(names[j], existing[i]) == 0;
        if (!known)
            names[used++] = sg_strdup(existing[i]);
    }
    if (existing != NULL)
        rocksdb_list_column_families_destroy(existing, existing_count);
    *count = used;
    return names;
}

/* Point reads are the tables' hot path (bench/README.md, "Issue 13"): options for them on top of
 * the module's defaults. */
static void sg_tables_tune(sg_tables_t *tables, rocksdb_options_t *options, bool row_cache)
{
    rocksdb_block_based_table_options_t *table = rocksdb_block_based_options_create();
    /* As the module's defaults: a whole-key Bloom filter, so a 404 and every level a key is not
     * in cost no data block. Index and filter blocks stay out of the cache, i.e. held by each
     * open table file for as long as it is open (pinned, no cache lookup per read). */
    rocksdb_block_based_options_set_filter_policy(table, rocksdb_filterpolicy_create_bloom(10));
    rocksdb_block_based_options_set_whole_key_filtering(table, 1);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(table, 0);
    /* A hash index in each data block: the row is found without a binary search of the block. */
    rocksdb_block_based_options_set_data_block_index_type(table,
                                                          rocksdb_block_based_table_data_block_index_type_binary_search_and_hash);
    rocksdb_block_based_options_set_data_block_hash_ratio(table, 0.75);
    rocksdb_block_based_options_set_block_cache(table, tables->block_cache);
    rocksdb_options_set_block_based_table_factory(options, table);
    rocksdb_block_based_options_destroy(table);
    /* Rows read recently, by key: a read of one of them skips the index and data blocks of its
     * table file (a third of a read's instructions). Keyed by table file, so it serves reads at
     * any snapshot newer than the file, i.e. every view's. Not on a database opened read-only:
     * there RocksDB 7.8 answers "absent" to the second read of a row of a file (the row cache hit). */
    if (row_cache)
        rocksdb_options_set_row_cache(options, tables->row_cache);
    /* A Bloom filter over the memtables' keys: a read of a row that is not in them skips their
     * skip lists (the memtables hold the latest writes, reads are mostly of older rows). */
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(options, 0.05);
    rocksdb_options_set_memtable_whole_key_filtering(options, 1);
    /* The files keep the module's compression: the block cache holds blocks uncompressed, so a
     * read pays for it only on a miss, and uncompressed level-0 files made a flush after a full
     * disk need several times the room (tests/integration/test_disk.c). */
}

/* Bulk batches are written as table files in <dir>/ingest (the database's file system, so an
 * ingestion moves them in; RocksDB ignores a directory it did not make); what a crash left there
 * is removed. The files get the tables' options but no compression: LZ4 (with a 16 KiB memset
 * per 4 KiB block) was ~46 % of the commit thread's instructions in a restore, and the files
 * are rewritten compressed once, when sg_tables_settle merges them (bench/README.md,
 * "restore"). Until then they take the room of the rows uncompressed. */
static void sg_tables_ingest_setup(sg_tables_t *tables)
{
    size_t len = strlen(tables->dir) + sizeof("/ingest");
    tables->ingest_dir = sg_malloc(len);
    snprintf(tables->ingest_dir, len, "%s/ingest", tables->dir);
    mkdir(tables->ingest_dir, 0700);
    DIR *dir = opendir(tables->ingest_dir);
    for (struct dirent *entry; dir != NULL && (entry = readdir(dir)) != NULL;) {
        size_t name_len = strlen(entry->d_name);
        if (name_len > 4 && strcmp(entry->d_name + name_len - 4, ".sst") == 0) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", tables->ingest_dir, entry->d_name);
            unlink(path);
        }
    }
    if (dir != NULL)
        closedir(dir);
    tables->ingest_options = sg_queries_db_options(SG_TABLE_WRITE_BUFFER, 3, SG_TABLE_MAX_TOTAL_WAL, rocksdb_no_compression);
    sg_tables_tune(tables, tables->ingest_options, true);
}

/* Opens the database at tables->dir (read-only when asked: a stopped database's last state, for
 * reads, when a reopen for writing failed) and points every table at its family. The caller holds
 * db_lock for writing, or is the only user. Returns 0, or -1 with err (tables->db NULL). */
static int sg_tables_open_db(sg_tables_t *tables, bool read_only, char *err, size_t errlen)
{
    if (!read_only && tables->test_fail_writable_open)
        return sg_errf(err, errlen, "tables: cannot open %s for writing (test)", tables->dir);
    size_t n = tables->table_count;
    const char **table_names = sg_calloc(n + 1, sizeof(*table_names));
    for (size_t i = 0; i < n; i++)
        table_names[i] = tables->tables[i].name;
    char **names = sg_tables_cf_names(tables->dir, table_names, n, &tables->cf_count);
    free(table_names);
    tables->cf_handles = sg_calloc(tables->cf_count, sizeof(*tables->cf_handles));
    const rocksdb_options_t **cf_options = sg_calloc(tables->cf_count, sizeof(*cf_options));

    /* LZ4 when this RocksDB build has it, otherwise uncompressed (as the state store does). */
    const int compressions[] = {rocksdb_lz4_compression, rocksdb_no_compression};
    for (size_t i = 0; i < sizeof(compressions) / sizeof(compressions[0]); i++) {
        char *errptr = NULL;
        tables->options = sg_queries_db_options(SG_TABLE_WRITE_BUFFER, 3, SG_TABLE_MAX_TOTAL_WAL, compressions[i]);
        sg_tables_tune(tables, tables->options, !read_only);
        for (size_t j = 0; j < tables->cf_count; j++)
            cf_options[j] = tables->options;
        if (read_only)
            tables->db =
                rocksdb_open_for_read_only_column_families(tables->options, tables->dir, (int)tables->cf_count,
                                                           (const char *const *)names, cf_options, tables->cf_handles, 0, &errptr);
        else
            tables->db = rocksdb_open_column_families(tables->options, tables->dir, (int)tables->cf_count,
                                                      (const char *const *)names, cf_options, tables->cf_handles, &errptr);
        if (errptr == NULL && tables->db != NULL) {
            tables->compression = compressions[i];
            break;
        }
        tables->db = NULL;
        rocksdb_options_destroy(tables->options);
        tables->options = NULL;
        bool last = i + 1 == sizeof(compressions) / sizeof(compressions[0]);
        if (last || errptr == NULL || strstr(errptr, "ompression") == NULL) {
            char what[300];
            snprintf(what, sizeof(what), "cannot open %s", tables->dir);
            sg_table_rocksdb_fail(err, errlen, what, errptr);
            break;
        }
        rocksdb_free(errptr);
    }
    for (size_t i = 0; i < tables->cf_count; i++)
        free(names[i]);
    free(names);
    free(cf_options);
    if (tables->db == NULL) {
        free(tables->cf_handles);
        tables->cf_handles = NULL;
        tables->cf_count = 0;
        tables->positions_cf = NULL;
        for (size_t i = 0; i < n; i++)
            tables->tables[i].cf = NULL;
        return -1;
    }
    tables->positions_cf = tables->cf_handles[1];
    for (size_t i = 0; i < n; i++)
        tables->tables[i].cf = tables->cf_handles[2 + i];
    sg_tables_load_views(tables);
    return 0;
}

/* Closes the database (if open) and frees its handles and options. */
static void sg_tables_close_db(sg_tables_t *tables)
{
    /* Views hold snapshots of this database: gone before it is. */
    for (size_t i = 0; i < tables->table_count; i++)
        sg_table_view_publish(&tables->tables[i], NULL);
    if (tables->db != NULL) {
        for (size_t i = 0; i < tables->cf_count; i++)
            if (tables->cf_handles[i] != NULL)
                rocksdb_column_family_handle_destroy(tables->cf_handles[i]);
        rocksdb_close(tables->db);
        tables->db = NULL;
    }
    free(tables->cf_handles);
    tables->cf_handles = NULL;
    tables->cf_count = 0;
    tables->positions_cf = NULL;
    for (size_t i = 0; i < tables->table_count; i++)
        tables->tables[i].cf = NULL;
    if (tables->options != NULL)
        rocksdb_options_destroy(tables->options);
    tables->options = NULL;
}

sg_tables_t *sg_tables_open(const char *dir, const char *const *table_names, size_t n, char *err, size_t errlen)
{
    if (dir == NULL || dir[0] == '\0') {
        sg_errf(err, errlen, "tables: no directory given");
        return NULL;
    }
    if (sg_tables_check_names(table_names, n, err, errlen) != 0)
        return NULL;

    sg_tables_t *tables = sg_calloc(1, sizeof(*tables));
    tables->dir = sg_strdup(dir);
    sg_queries_db_lock_init(&tables->db_lock);
    sg_queries_health_init(&tables->health);
    tables->tables = sg_calloc(n, sizeof(*tables->tables));
    tables->table_count = n;
    for (size_t i = 0; i < n; i++) {
        sg_table_t *table = &tables->tables[i];
        table->name = sg_strdup(table_names[i]);
        table->name_len = strlen(table->name);
        table->pos_prefix[0] = (uint8_t)table->name_len;
        memcpy(table->pos_prefix + 1, table->name, table->name_len);
        table->pos_prefix_len = 1 + table->name_len;
        pthread_mutex_init(&table->commit_lock, NULL);
        pthread_mutex_init(&table->view_lock, NULL);
        pthread_mutex_init(&table->spare_lock, NULL);
        atomic_init(&table->commits, 0);
    }
    tables->read_options = rocksdb_readoptions_create();
    tables->write_options = rocksdb_writeoptions_create();
    tables->block_cache = rocksdb_cache_create_lru(SG_TABLE_CACHE_DEFAULT / 2);
    tables->row_cache = rocksdb_cache_create_lru(SG_TABLE_CACHE_DEFAULT / 2);
    atomic_init(&tables->block_cache_bytes, SG_TABLE_CACHE_DEFAULT / 2);
    if (sg_tables_open_db(tables, false, err, errlen) != 0) {
        sg_tables_close(tables);
        return NULL;
    }
    sg_tables_ingest_setup(tables);
    return tables;
}

void sg_tables_close(sg_tables_t *tables)
{
    if (tables == NULL)
        return;
    sg_tables_close_db(tables);
    if (tables->read_options != NULL)
        rocksdb_readoptions_destroy(tables->read_options);
    if (tables->write_options != NULL)
        rocksdb_writeoptions_destroy(tables->write_options);
    if (tables->block_cache != NULL)
        rocksdb_cache_destroy(tables->block_cache);
    if (tables->row_cache != NULL)
        rocksdb_cache_destroy(tables->row_cache);
    if (tables->ingest_options != NULL)
        rocksdb_options_destroy(tables->ingest_options);
    free(tables->ingest_dir);
    for (size_t i = 0; i < tables->table_count; i++) {
        free(tables->tables[i].name);
        pthread_mutex_destroy(&tables->tables[i].commit_lock);
        pthread_mutex_destroy(&tables->tables[i].view_lock);
        pthread_mutex_destroy(&tables->tables[i].spare_lock);
        free(tables->tables[i].spare.rows);
        free(tables->tables[i].spare.arena);
    }
    free(tables->tables);
    pthread_rwlock_destroy(&tables->db_lock);
    sg_queries_health_dispose(&tables->health);
    free(tables->dir);
    free(tables);
}

/* -- health ----------------------------------------------------------------------------------- */

/* Takes db_lock for reading; fails (unlocked) when no database is open (a failed reopen). */
static int sg_tables_lock(sg_tables_t *tables, char *err, size_t errlen)
{
    pthread_rwlock_rdlock(&tables->db_lock);
    if (tables->db != NULL)
        return 0;
    pthread_rwlock_unlock(&tables->db_lock);
    char reason[512];
    sg_queries_health_get(&tables->health, reason, sizeof(reason));
    sg_errf(err, errlen, "tables: storage unavailable: %s", reason);
    return -1;
}

static void sg_tables_unlock(sg_tables_t *tables)
{
    pthread_rwlock_unlock(&tables->db_lock);
}

int sg_tables_health(sg_tables_t *tables, char *reason, size_t reasonlen)
{
    return sg_queries_health_get(&tables->health, reason, reasonlen);
}

void sg_tables_test_fail_writable_open(sg_tables_t *tables, int fail)
{
    tables->test_fail_writable_open = fail != 0;
}

int sg_tables_recover(sg_tables_t *tables, char *err, size_t errlen)
{
    if (atomic_load(&tables->health.state) == SG_STORAGE_OK)
        return 0;
    if (!sg_queries_health_should_try(&tables->health, "tables", tables->dir, err, errlen))
        return 1;
    /* Reopening is what a restart does: the WAL is replayed, so the rows and positions are those
     * of the last successful commit, and the stopped state (RocksDB refuses every write after a
     * failed one until it is cleared) is gone. Readers wait for the lock meanwhile. */
    pthread_rwlock_wrlock(&tables->db_lock);
    sg_tables_close_db(tables);
    char rw_err[512];
    int rc = sg_tables_open_db(tables, false, rw_err, sizeof(rw_err));
    if (rc != 0) {
        char ro_err[512];
        bool ro_failed = sg_tables_open_db(tables, true, ro_err, sizeof(ro_err)) != 0;
        if (ro_failed)
            tables->db = NULL; /* every call fails until the next attempt */
        sg_queries_reopen_failed(&tables->health, "tables", tables->dir, rw_err, ro_failed ? ro_err : NULL, err, errlen);
    }
    pthread_rwlock_unlock(&tables->db_lock);
    if (rc != 0)
        return 1;
    sg_queries_health_ok(&tables->health);
    return 0;
}

uint64_t sg_tables_commit_count(sg_tables_t *tables, const char *table_name)
{
    sg_table_t *table = sg_tables_find(tables, table_name);
    return table != NULL ? atomic_load_explicit(&table->commits, memory_order_acquire) : 0;
}

/* -- positions -------------------------------------------------------------------------------- */

static size_t sg_table_pos_key(const sg_table_t *table, uint8_t *buf)
{
    size_t len = table->pos_prefix_len;
    memcpy(buf, table->pos_prefix, len);
    buf[len++] = SG_TABLE_TAG_POSITION;
    return len;
}

static size_t sg_table_check_topic(const char *topic, int32_t partition, char *err, size_t errlen)
{
    size_t topic_len = sg_table_valid_name(topic, SG_TOKEN_MAX_TOPIC_LEN);
    if (topic_len == 0)
        sg_errf(err, errlen, "tables: topic must be 1..%d bytes of [a-zA-Z0-9._-]", SG_TOKEN_MAX_TOPIC_LEN);
    else if (partition < 0) {
        sg_errf(err, errlen, "tables: negative partition %d", (int)partition);
        topic_len = 0;
    }
    return topic_len;
}

static int sg_table_pos_cmp(const void *a, const void *b)
{
    const sg_table_batch_pos_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c != 0 ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* Decodes a positions record, calling cb per position in stored order (cb's topic is valid
 * during the call). Returns the number of positions, or -1 when the record is corrupt. */
static long sg_table_decode_pos(const uint8_t *p, size_t len, sg_table_position_cb cb, void *arg)
{
    if (len < 5 || p[0] != SG_TABLE_POS_VERSION)
        return -1;
    uint64_t n = sg_table_get_uint(p + 1, 4);
    if (n > SG_TOKEN_MAX_ENTRIES)
        return -1;
    size_t at = 5;
    bool stopped = false;
    for (uint64_t i = 0; i < n; i++) {
        if (at >= len || p[at] == 0 || p[at] > SG_TOKEN_MAX_TOPIC_LEN || len - at < (size_t)SG_TABLE_POS_ENTRY_FIXED + p[at])
            return -1;
        size_t topic_len = p[at++];
        char topic[SG_TOKEN_MAX_TOPIC_LEN + 1];
        memcpy(topic, p + at, topic_len);
        topic[topic_len] = '\0';
        at += topic_len;
        uint64_t partition = sg_table_get_uint(p + at, 4);
        int64_t next_offset = (int64_t)sg_table_get_uint(p + at + 4, 8);
        int64_t stream_time_ms = (int64_t)sg_table_get_uint(p + at + 12, 8);
        at += 20;
        if (partition > INT32_MAX || next_offset < 0 || stream_time_ms < 0 ||
            sg_table_valid_name(topic, SG_TOKEN_MAX_TOPIC_LEN) != topic_len)
            return -1;
        if (!stopped && cb(arg, topic, (int32_t)partition, next_offset, stream_time_ms) != 0)
            stopped = true; /* the rest is still checked: a corrupt record is never half-used */
    }
    return at == len ? (long)n : -1;
}

/* Positions as the first layout stored them, a record per partition (key: prefix 'P' topic NUL
 * u32 partition; value: u8 version 1, u64 next_offset, u64 stream_time): read when a table has
 * no positions record yet, so a data_dir from before resumes instead of replaying its topic. The
 * next commit writes the record and deletes these. Returns the count, or -1. */
static long sg_table_each_pos_v1(sg_tables_t *tables, const sg_table_t *table, const rocksdb_readoptions_t *read_options,
                                 sg_table_position_cb cb, void *arg, char *err, size_t errlen)
{
    uint8_t prefix[SG_TABLE_POS_KEY_MAX];
    size_t prefix_len = sg_table_pos_key(table, prefix);
    long count = 0;
    bool stopped = false;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(tables->db, read_options, tables->positions_cf);
    for (rocksdb_iter_seek(it, (const char *)prefix, prefix_len); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t keylen, len;
        const char *key = rocksdb_iter_key(it, &keylen);
        if (!sg_table_has_prefix(key, keylen, prefix, prefix_len))
            break;
        if (keylen == prefix_len)
            continue;
        const uint8_t *value = (const uint8_t *)rocksdb_iter_value(it, &len);
        const char *topic = key + prefix_len;
        size_t rest = keylen - prefix_len;
        const char *nul = memchr(topic, '\0', rest);
        if (nul == NULL || nul == topic || (size_t)(nul - topic) > SG_TOKEN_MAX_TOPIC_LEN ||
            rest != (size_t)(nul - topic) + 1 + 4 || sg_table_get_uint((const uint8_t *)nul + 1, 4) > INT32_MAX || len != 17 ||
            value[0] != 1) {
            count = -1;
            break;
        }
        char topic_text[SG_TOKEN_MAX_TOPIC_LEN + 1];
        memcpy(topic_text, topic, (size_t)(nul - topic));
        topic_text[nul - topic] = '\0';
        int64_t next_offset = (int64_t)sg_table_get_uint(value + 1, 8);
        int64_t stream_time_ms = (int64_t)sg_table_get_uint(value + 9, 8);
        if (next_offset < 0 || stream_time_ms < 0) {
            count = -1;
            break;
        }
        ++count;
        if (!stopped &&
            cb(arg, topic_text, (int32_t)sg_table_get_uint((const uint8_t *)nul + 1, 4), next_offset, stream_time_ms) != 0)
            stopped = true;
    }
    char *errptr = NULL;
    rocksdb_iter_get_error(it, &errptr);
    rocksdb_iter_destroy(it);
    if (errptr != NULL)
        return sg_table_rocksdb_fail(err, errlen, "reading positions", errptr);
    if (count < 0)
        sg_errf(err, errlen, "tables: corrupt position record in table %s", table->name);
    return count;
}

/* Calls cb per stored position of table as read through read_options, in (topic, partition)
 * order. *legacy (may be NULL) tells whether they came from the positions family (an older
 * layout, which the next commit replaces). Returns the number of positions (0: none stored), or
 * -1 on error. */
static long sg_table_each_pos(sg_tables_t *tables, const sg_table_t *table, const rocksdb_readoptions_t *read_options,
                              sg_table_position_cb cb, void *arg, bool *legacy, char *err, size_t errlen)
{
    bool from_family = false;
    char *errptr = NULL;
    rocksdb_pinnableslice_t *found = rocksdb_get_pinned_cf(tables->db, read_options, table->cf, "", 0, &errptr);
    if (errptr == NULL && found == NULL) {
        uint8_t key[SG_TABLE_POS_KEY_MAX];
        size_t keylen = sg_table_pos_key(table, key);
        found = rocksdb_get_pinned_cf(tables->db, read_options, tables->positions_cf, (const char *)key, keylen, &errptr);
        from_family = true;
    }
    if (errptr != NULL)
        return sg_table_rocksdb_fail(err, errlen, "reading positions", errptr);
    if (legacy != NULL)
        *legacy = from_family;
    if (found == NULL)
        return sg_table_each_pos_v1(tables, table, read_options, cb, arg, err, errlen);
    size_t len;
    const uint8_t *value = (const uint8_t *)rocksdb_pinnableslice_value(found, &len);
    long count = sg_table_decode_pos(value, len, cb, arg);
    rocksdb_pinnableslice_destroy(found);
    if (count < 0)
        sg_errf(err, errlen, "tables: corrupt positions record of table %s (%zu bytes)", table->name, len);
    return count;
}

typedef struct {
    sg_table_batch_pos_t *positions;
    size_t count, cap;
} sg_table_pos_list_t;

static int sg_table_pos_collect(void *arg, const char *topic, int32_t partition, int64_t next_offset, int64_t stream_time_ms)
{
    sg_table_pos_list_t *list = arg;
    if (list->count == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 16;
        list->positions = sg_reallocarray(list->positions, list->cap, sizeof(*list->positions));
    }
    sg_table_batch_pos_t *pos = &list->positions[list->count++];
    snprintf(pos->topic, sizeof(pos->topic), "%s", topic);
    pos->partition = partition;
    pos->next_offset = next_offset;
    pos->stream_time_ms = stream_time_ms;
    pos->dirty = false;
    return 0;
}

/* Loads every stored position into an owned array (NULL when none); *legacy as for
 * sg_table_each_pos. Returns the count or -1. */
static long sg_table_load_pos(sg_tables_t *tables, const sg_table_t *table, const rocksdb_readoptions_t *read_options,
                              sg_table_batch_pos_t **out, bool *legacy, char *err, size_t errlen)
{
    sg_table_pos_list_t list = {NULL, 0, 0};
    long count = sg_table_each_pos(tables, table, read_options, sg_table_pos_collect, &list, legacy, err, errlen);
    if (count <= 0) {
        free(list.positions);
        list.positions = NULL;
    }
    *out = list.positions;
    return count;
}

/* -- views ------------------------------------------------------------------------------------ */

static void sg_table_view_unref(sg_table_view_t *view)
{
    if (view == NULL || atomic_fetch_sub_explicit(&view->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (view->read_options != NULL)
        rocksdb_readoptions_destroy(view->read_options);
    if (view->snapshot != NULL)
        rocksdb_release_snapshot(view->db, view->snapshot);
    sg_token_destroy(view->token);
    free(view->token_text);
    free(view->positions);
    free(view->topics);
    free(view);
}

static int sg_table_view_pos_cmp(const void *a, const void *b)
{
    const sg_table_view_pos_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c != 0 ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* A view of the table's state right now: positions (n of them, any order; copied) are what its
 * last commit stored, error (static text) says why they could not be read. The caller has just
 * written them under the table's commit_lock (or opens the database), so the snapshot taken here
 * holds exactly those rows. */
static sg_table_view_t *sg_table_view_new(sg_tables_t *tables, const sg_table_batch_pos_t *positions, size_t n, const char *error)
{
    sg_table_view_t *view = sg_calloc(1, sizeof(*view));
    atomic_init(&view->refs, 1);
    view->db = tables->db;
    view->snapshot = rocksdb_create_snapshot(tables->db);
    view->read_options = rocksdb_readoptions_create();
    if (view->snapshot != NULL)
        rocksdb_readoptions_set_snapshot(view->read_options, view->snapshot);
    view->error = error;
    /* Sorted first (pointing at the caller's names), then the names copied once per topic: the
     * positions of one topic share one pointer. */
    view->positions = sg_calloc(n + 1, sizeof(*view->positions));
    view->n_positions = n;
    size_t names_len = 0;
    for (size_t i = 0; i < n; i++) {
        view->positions[i] = (sg_table_view_pos_t){positions[i].topic, positions[i].partition, positions[i].next_offset,
                                                   positions[i].stream_time_ms};
        names_len += strlen(positions[i].topic) + 1;
    }
    qsort(view->positions, n, sizeof(*view->positions), sg_table_view_pos_cmp);
    view->topics = sg_malloc(names_len + 1);
    size_t at = 0;
    const char *run_name = NULL, *run_copy = NULL;
    for (size_t i = 0; i < n; i++) {
        sg_table_view_pos_t *pos = &view->positions[i];
        if (run_name == NULL || strcmp(pos->topic, run_name) != 0) {
            size_t len = strlen(pos->topic);
            memcpy(view->topics + at, pos->topic, len + 1);
            run_name = pos->topic;
            run_copy = view->topics + at;
            at += len + 1;
        }
        pos->topic = run_copy;
    }
    view->one_topic = n > 0 && view->positions[0].topic == view->positions[n - 1].topic ? view->positions[0].topic : NULL;
    for (size_t i = 0; view->one_topic != NULL && i < n; i++)
        if (view->positions[i].next_offset > 0 && view->positions[i].stream_time_ms > view->one_stream_time)
            view->one_stream_time = view->positions[i].stream_time_ms;
    int text_len = snprintf(view->one_stream_time_text, sizeof(view->one_stream_time_text), "%" PRId64, view->one_stream_time);
    view->one_stream_time_text_len = text_len > 0 ? (size_t)text_len : 0;
    view->token = sg_token_create();
    for (size_t i = 0; i < n && view->token != NULL; i++) {
        const sg_table_view_pos_t *pos = &view->positions[i];
        if (pos->next_offset > 0 &&
            sg_token_advance(view->token, pos->topic, pos->partition, pos->next_offset - 1, pos->stream_time_ms) != 0) {
            sg_token_destroy(view->token);
            view->token = NULL; /* a read that needs it says why */
        }
    }
    if (view->token != NULL) {
        view->token_text_len = sg_token_encode(view->token, NULL, 0);
        view->token_text = sg_malloc(view->token_text_len + 1);
        sg_token_encode(view->token, view->token_text, view->token_text_len + 1);
    }
    return view;
}

/* Makes view the table's current one (NULL: none, before a close) and drops the old one. */
static void sg_table_view_publish(sg_table_t *table, sg_table_view_t *view)
{
    pthread_mutex_lock(&table->view_lock);
    sg_table_view_t *old = table->view;
    table->view = view;
    pthread_mutex_unlock(&table->view_lock);
    sg_table_view_unref(old);
}

/* A reference to the table's current view (release with sg_table_view_unref), or NULL when the
 * database is closed. Under db_lock for reading. */
static sg_table_view_t *sg_table_view_ref(sg_table_t *table)
{
    pthread_mutex_lock(&table->view_lock);
    sg_table_view_t *view = table->view;
    if (view != NULL)
        atomic_fetch_add_explicit(&view->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&table->view_lock);
    return view;
}

/* Fails (-1 with err) when the view's positions cannot make a token. */
static int sg_table_view_usable(const sg_table_t *table, const sg_table_view_t *view, char *err, size_t errlen)
{
    if (view == NULL) {
        sg_errf(err, errlen, "tables: table %s is not open", table->name);
        return -1;
    }
    if (view->error != NULL) {
        sg_errf(err, errlen, "tables: %s of table %s", view->error, table->name);
        return -1;
    }
    if (view->token == NULL) {
        sg_errf(err, errlen, "tables: the position of table %s exceeds the token limits", table->name);
        return -1;
    }
    return 0;
}

/* Merges the view's position into `into` (unchanged on failure). */
static int sg_table_view_merge(const sg_table_t *table, const sg_table_view_t *view, sg_token_t *into, char *err, size_t errlen)
{
    if (sg_table_view_usable(table, view, err, errlen) != 0)
        return -1;
    if (sg_token_merge(into, view->token) != 0) {
        sg_errf(err, errlen, "tables: the position of table %s exceeds the token limits", table->name);
        return -1;
    }
    return 0;
}

/* Publishes each table's view as stored (at open and after a reopen). */
static void sg_tables_load_views(sg_tables_t *tables)
{
    for (size_t i = 0; i < tables->table_count; i++) {
        sg_table_t *table = &tables->tables[i];
        char err[512];
        sg_table_batch_pos_t *positions = NULL;
        long count = sg_table_load_pos(tables, table, tables->read_options, &positions, NULL, err, sizeof(err));
        sg_table_view_publish(table, sg_table_view_new(tables, positions, count > 0 ? (size_t)count : 0,
                                                       count < 0 ? "corrupt or unreadable positions record" : NULL));
        free(positions);
    }
}

const sg_token_t *sg_table_view_token(const sg_table_view_t *view)
{
    return view->token;
}

const char *sg_table_view_token_text(const sg_table_view_t *view, size_t *len)
{
    *len = view->token_text_len;
    return view->token_text;
}

int64_t sg_table_view_stream_time(const sg_table_view_t *view, const char *topic)
{
    if (view->one_topic != NULL) /* a table reads one topic: the common case, computed per commit */
        return strcmp(view->one_topic, topic) == 0 ? view->one_stream_time : 0;
    int64_t stream_time = 0;
    bool match = false;
    for (size_t i = 0; i < view->n_positions; i++) {
        const sg_table_view_pos_t *pos = &view->positions[i];
        if (i == 0 || pos->topic != view->positions[i - 1].topic) /* a topic's positions share its name */
            match = strcmp(pos->topic, topic) == 0;
        if (match && pos->next_offset > 0 && pos->stream_time_ms > stream_time)
            stream_time = pos->stream_time_ms;
    }
    return stream_time;
}

const char *sg_table_view_stream_time_text(const sg_table_view_t *view, const char *topic, size_t *len)
{
    if (view->one_topic == NULL || strcmp(view->one_topic, topic) != 0)
        return NULL;
    *len = view->one_stream_time_text_len;
    return view->one_stream_time_text;
}

static int sg_tables_position_locked(sg_tables_t *tables, const char *table_name, const char *topic, int32_t partition,
                                     int64_t *next_offset, int64_t *stream_time_ms, char *err, size_t errlen)
{
    int64_t next = 0, stream = 0;
    int ret = -1;
    sg_table_t *table = sg_tables_find_err(tables, table_name, err, errlen);
    size_t topic_len = table != NULL ? sg_table_check_topic(topic, partition, err, errlen) : 0;
    sg_table_view_t *view = topic_len != 0 ? sg_table_view_ref(table) : NULL;
    if (view == NULL && topic_len != 0) {
        sg_errf(err, errlen, "tables: table %s is not open", table->name);
    } else if (view != NULL && view->error != NULL) {
        sg_errf(err, errlen, "tables: %s of table %s", view->error, table->name);
    } else if (view != NULL) {
        ret = 1;
        for (size_t i = 0; i < view->n_positions && ret == 1; i++) {
            const sg_table_view_pos_t *pos = &view->positions[i];
            if (pos->partition == partition && strcmp(pos->topic, topic) == 0) {
                next = pos->next_offset;
                stream = pos->stream_time_ms;
                ret = 0;
            }
        }
    }
    sg_table_view_unref(view);
    if (next_offset != NULL)
        *next_offset = next;
    if (stream_time_ms != NULL)
        *stream_time_ms = stream;
    return ret;
}

static int sg_tables_positions_locked(sg_tables_t *tables, const char *table_name, sg_table_position_cb cb, void *arg, char *err,
                                      size_t errlen)
{
    sg_table_t *table = sg_tables_find_err(tables, table_name, err, errlen);
    if (table == NULL)
        return -1;
    sg_table_view_t *view = sg_table_view_ref(table);
    int ret = 0;
    if (view == NULL || view->error != NULL) {
        sg_errf(err, errlen, "tables: %s of table %s", view != NULL ? view->error : "no view", table->name);
        ret = -1;
    }
    for (size_t i = 0; ret == 0 && i < view->n_positions; i++) {
        const sg_table_view_pos_t *pos = &view->positions[i];
        if (cb(arg, pos->topic, pos->partition, pos->next_offset, pos->stream_time_ms) != 0)
            break;
    }
    sg_table_view_unref(view);
    return ret;
}

static int sg_tables_token_locked(sg_tables_t *tables, const char *table_name, sg_token_t *into, char *err, size_t errlen)
{
    sg_table_t *table = sg_tables_find_err(tables, table_name, err, errlen);
    if (table == NULL)
        return -1;
    sg_table_view_t *view = sg_table_view_ref(table);
    int ret = sg_table_view_merge(table, view, into, err, errlen);
    sg_table_view_unref(view);
    return ret;
}
static int sg_tables_get_source_locked(sg_tables_t *tables, const char *table_name, char **source_out, char *err, size_t errlen)
{
    *source_out = NULL;
    sg_table_t *table = sg_tables_find_err(tables, table_name, err, errlen);
    if (table == NULL)
        return -1;
    uint8_t key[1 + SG_TABLE_MAX_NAME + 1];
    memcpy(key, table->pos_prefix, table->pos_prefix_len);
    key[table->pos_prefix_len] = SG_TABLE_TAG_SOURCE;
    char *errptr = NULL;
    rocksdb_pinnableslice_t *found = rocksdb_get_pinned_cf(tables->db, tables->read_options, tables->positions_cf,
                                                           (const char *)key, table->pos_prefix_len + 1, &errptr);
    if (errptr != NULL)
        return sg_table_rocksdb_fail(err, errlen, "reading source identity", errptr);
    if (found == NULL)
        return 1;
    size_t len;
    const char *value = rocksdb_pinnableslice_value(found, &len);
    int ret = 0;
    if (len == 0 || len > SG_TABLE_MAX_SOURCE || memchr(value, '\0', len) != NULL) {
        sg_errf(err, errlen, "tables: corrupt source identity of table %s (%zu bytes)", table->name, len);
        ret = -1;
    } else {
        *source_out = sg_malloc(len + 1);
        memcpy(*source_out, value, len);
        (*source_out)[len] = '\0';
    }
    rocksdb_pinnableslice_destroy(found);
    return ret;
}

static int sg_tables_reset_locked(sg_tables_t *tables, const char *table_name, const char *new_source, char *err, size_t errlen)
{
    sg_table_t *table = sg_tables_find_err(tables, table_name, err, errlen);
    if (table == NULL)
        return -1;
    size_t source_len = new_source != NULL ? strnlen(new_source, SG_TABLE_MAX_SOURCE + 1) : 0;
    if (source_len == 0 || source_len > SG_TABLE_MAX_SOURCE) {
        sg_errf(err, errlen, "tables: source identity must be 1..%d bytes", SG_TABLE_MAX_SOURCE);
        return -1;
    }
    /* Every row key is at most SG_TABLE_MAX_KEY bytes, so each sorts below MAX_KEY + 1 bytes of
     * 0xff: one range deletion covers the whole family, whatever the keys. */
    static const size_t row_end_len = SG_TABLE_MAX_KEY + 1;
    char *row_end = sg_malloc(row_end_len);
    memset(row_end, 0xff, row_end_len);
    uint8_t pos_begin[1 + SG_TABLE_MAX_NAME + 1], pos_end[1 + SG_TABLE_MAX_NAME + 1];
    uint8_t source_key[1 + SG_TABLE_MAX_NAME + 1];
    size_t plen = table->pos_prefix_len;
    memcpy(pos_begin, table->pos_prefix, plen);
    memcpy(pos_end, table->pos_prefix, plen);
    memcpy(source_key, table->pos_prefix, plen);
    pos_begin[plen] = SG_TABLE_TAG_POSITION;
    pos_end[plen] = SG_TABLE_TAG_POSITION + 1;
    source_key[plen] = SG_TABLE_TAG_SOURCE;

    rocksdb_writebatch_t *writes = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_range_cf(writes, table->cf, "", 0, row_end, row_end_len);
    rocksdb_writebatch_delete_range_cf(writes, tables->positions_cf, (const char *)pos_begin, plen + 1, (const char *)pos_end,
                                       plen + 1);
    rocksdb_writebatch_put_cf(writes, tables->positions_cf, (const char *)source_key, plen + 1, new_source, source_len);
    char *errptr = NULL;
    int ret = 0;
    pthread_mutex_lock(&table->commit_lock);
    rocksdb_write(tables->db, tables->write_options, writes, &errptr);
    if (errptr != NULL) {
        ret = sg_queries_write_fail(&tables->health, err, errlen, "tables", "resetting table", errptr);
    } else {
        sg_table_view_publish(table, sg_table_view_new(tables, NULL, 0, NULL));
        atomic_fetch_add_explicit(&table->commits, 1, memory_order_acq_rel);
    }
    pthread_mutex_unlock(&table->commit_lock);
    rocksdb_writebatch_destroy(writes);
    free(row_end);
    return ret;
}

/* -- batches ---------------------------------------------------------------------------------- */

sg_table_batch_t *sg_table_batch_new(sg_tables_t *tables, const char *table_name)
{
    sg_table_t *table = sg_tables_find(tables, table_name);
    if (table == NULL)
        return NULL;
    sg_table_batch_t *batch = sg_calloc(1, sizeof(*batch));
    batch->tables = tables;
    batch->table = table;
    batch->base_commits = atomic_load_explicit(&table->commits, memory_order_acquire);
    return batch;
}

void sg_table_batch_destroy(sg_table_batch_t *batch)
{
    if (batch == NULL)
        return;
    free(batch->positions);
    free(batch->rows);
    free(batch->arena);
    free(batch);
}

size_t sg_table_batch_count(const sg_table_batch_t *batch)
{
    return batch->records;
}

/* The batch's view of (topic, partition): every stored position is loaded on first use; a
 * partition never applied starts at 0. */
static sg_table_batch_pos_t *sg_table_batch_pos(sg_table_batch_t *batch, const char *topic, size_t topic_len, int32_t partition,
                                                char *err, size_t errlen)
{
    /* A materializer's batch usually holds runs of one partition: try the last one first. */
    if (batch->pos_last < batch->pos_count) {
        sg_table_batch_pos_t *pos = &batch->positions[batch->pos_last];
        if (pos->partition == partition && strcmp(pos->topic, topic) == 0) {
            batch->pos_last_checked = topic_len;
            return pos;
        }
    }
    if (!batch->pos_loaded) {
        if (sg_tables_lock(batch->tables, err, errlen) != 0)
            return NULL;
        sg_table_batch_pos_t *stored;
        bool legacy = false;
        long count = sg_table_load_pos(batch->tables, batch->table, batch->tables->read_options, &stored, &legacy, err, errlen);
        sg_tables_unlock(batch->tables);
        if (count < 0)
            return NULL;
        free(batch->positions);
        batch->positions = stored;
        batch->pos_count = batch->pos_cap = (size_t)count;
        batch->pos_last = 0;
        batch->pos_last_checked = 0;
        batch->pos_loaded = true;
        batch->pos_legacy = count > 0 && legacy;
    }
    for (size_t i = 0; i < batch->pos_count; i++) {
        sg_table_batch_pos_t *pos = &batch->positions[i];
        if (pos->partition == partition && strcmp(pos->topic, topic) == 0) {
            batch->pos_last = i;
            batch->pos_last_checked = topic_len;
            return pos;
        }
    }
    if (batch->pos_count >= SG_TOKEN_MAX_ENTRIES) {
        sg_errf(err, errlen, "tables: table %s has positions for %d partitions, the most a token can name", batch->table->name,
                SG_TOKEN_MAX_ENTRIES);
        return NULL;
    }
    if (batch->pos_count == batch->pos_cap) {
        batch->pos_cap = batch->pos_cap != 0 ? batch->pos_cap * 2 : 8;
        batch->positions = sg_reallocarray(batch->positions, batch->pos_cap, sizeof(*batch->positions));
    }
    sg_table_batch_pos_t *pos = &batch->positions[batch->pos_count];
    memcpy(pos->topic, topic, topic_len);
    pos->topic[topic_len] = '\0';
    pos->partition = partition;
    pos->next_offset = 0;
    pos->stream_time_ms = 0;
    pos->dirty = false;
    batch->pos_last = batch->pos_count++;
    batch->pos_last_checked = topic_len;
    return pos;
}

int sg_table_batch_put(sg_table_batch_t *batch, const char *topic, int32_t partition, int64_t offset, int64_t timestamp_ms,
                       const void *key, size_t keylen, const void *value, size_t valuelen, char *err, size_t errlen)
{
    /* A materializer's batch holds runs of one partition: the same topic and partition as the
     * last put's are valid, being equal to what was checked then (a name check per record was a
     * fifth of this function in a restore). */
    sg_table_batch_pos_t *pos = NULL;
    size_t topic_len = 0;
    if (batch->pos_last_checked != 0 && topic != NULL) {
        sg_table_batch_pos_t *last = &batch->positions[batch->pos_last];
        if (last->partition == partition && strcmp(last->topic, topic) == 0) {
            pos = last;
            topic_len = batch->pos_last_checked;
        }
    }
    if (pos == NULL && (topic_len = sg_table_check_topic(topic, partition, err, errlen)) == 0)
        return -1;
    if (offset < 0 || offset == INT64_MAX) {
        sg_errf(err, errlen, "tables: offset %lld out of range", (long long)offset);
        return -1;
    }
    if (key == NULL || keylen == 0 || keylen > SG_TABLE_MAX_KEY) {
        sg_errf(err, errlen, "tables: key must be 1..%d bytes (got %zu)", SG_TABLE_MAX_KEY, key == NULL ? (size_t)0 : keylen);
        return -1;
    }
    if (value != NULL && valuelen > SG_TABLE_MAX_VALUE) {
        sg_errf(err, errlen, "tables: value of %zu bytes is over the limit of %u", valuelen, SG_TABLE_MAX_VALUE);
        return -1;
    }
    if (pos == NULL && (pos = sg_table_batch_pos(batch, topic, topic_len, partition, err, errlen)) == NULL)
        return -1;
    if (offset < pos->next_offset)
        return 1;

    size_t row_len = value != NULL ? SG_TABLE_ROW_HEADER + valuelen : 0;
    if (batch->rows_count == batch->rows_cap) {
        batch->rows_cap = batch->rows_cap != 0 ? batch->rows_cap * 2 : 1024;
        batch->rows = sg_reallocarray(batch->rows, batch->rows_cap, sizeof(*batch->rows));
    }
    if (batch->arena_len + keylen + row_len > batch->arena_cap) {
        size_t cap = batch->arena_cap != 0 ? batch->arena_cap : 64 * 1024;
        while (cap < batch->arena_len + keylen + row_len)
            cap *= 2;
        batch->arena = sg_realloc(batch->arena, cap);
        batch->arena_cap = cap;
    }
    sg_table_row_t *row = &batch->rows[batch->rows_count];
    batch->rows_count++;
    row->key_at = batch->arena_len;
    row->keylen = keylen;
    memcpy(batch->arena + batch->arena_len, key, keylen);
    batch->arena_len += keylen;
    row->value_at = batch->arena_len;
    row->valuelen = row_len;
    if (value != NULL) {
        uint8_t *header = (uint8_t *)batch->arena + batch->arena_len;
        header[0] = SG_TABLE_ROW_VERSION;
        sg_table_put_uint(header + 1, (uint64_t)partition, 4);
        sg_table_put_uint(header + 5, (uint64_t)offset, 8);
        sg_table_put_uint(header + 13, (uint64_t)timestamp_ms, 8);
        if (valuelen > 0)
            memcpy(header + SG_TABLE_ROW_HEADER, value, valuelen);
        batch->arena_len += row_len;
    }
    pos->next_offset = offset + 1;
    /* Kafka uses -1 for "no timestamp": such a record does not move stream time. */
    if (timestamp_ms > pos->stream_time_ms)
        pos->stream_time_ms = timestamp_ms;
    pos->dirty = true;
    batch->records++;
    return 0;
}

int sg_table_batch_advance(sg_table_batch_t *batch, const char *topic, int32_t partition, int64_t next_offset, char *err,
                           size_t errlen)
{
    size_t topic_len = sg_table_check_topic(topic, partition, err, errlen);
    if (topic_len == 0)
        return -1;
    if (next_offset < 0) {
        sg_errf(err, errlen, "tables: offset %lld out of range", (long long)next_offset);
        return -1;
    }
    sg_table_batch_pos_t *pos = sg_table_batch_pos(batch, topic, topic_len, partition, err, errlen);
    if (pos == NULL)
        return -1;
    if (next_offset <= pos->next_offset)
        return 1;
    pos->next_offset = next_offset;
    pos->dirty = true;
    return 0;
}

/* Empties the batch; when `forget`, also drops the cached positions (they may be wrong). */
static void sg_table_batch_clear(sg_table_batch_t *batch, bool forget, uint64_t base_commits)
{
    batch->records = 0;
    batch->rows_count = 0;
    batch->arena_len = 0;
    if (forget) {
        batch->pos_count = 0;
        batch->pos_last_checked = 0;
        batch->pos_loaded = false;
    }
    for (size_t i = 0; i < batch->pos_count; i++)
        batch->positions[i].dirty = false;
    batch->base_commits = base_commits;
}

void sg_table_batch_set_bulk(sg_table_batch_t *batch, int bulk)
{
    batch->bulk = bulk != 0;
}

/* A batch's contents taken for writing: the rows, the positions they reach (all of the table's),
 * and what the table's commit count must be when they are written. */
struct st_sg_table_commit_t {
    sg_tables_t *tables;
    sg_table_t *table;
    uint64_t expect_commits;
    sg_table_row_t *rows;
    size_t rows_count;
    char *arena;
    size_t rows_cap, arena_cap;
    sg_table_batch_pos_t *positions; /* sorted by (topic bytes, partition) */
    size_t pos_count;
    bool legacy; /* the positions family still holds this table's positions: emptied by the write */
    bool bulk;
    sg_keysort_item_t *order; /* once sorted: the rows to write, in key order, one per key (owned) */
    size_t order_count;
};

/* Takes the table's spare buffers (the slot is left empty). */
static sg_table_buffers_t sg_table_spare_take(sg_table_t *table)
{
    pthread_mutex_lock(&table->spare_lock);
    sg_table_buffers_t spare = table->spare;
    table->spare = (sg_table_buffers_t){0};
    pthread_mutex_unlock(&table->spare_lock);
    return spare;
}

/* Takes *buffers as the table's spares when the slot is empty; frees them otherwise. */
static void sg_table_spare_put(sg_table_t *table, sg_table_buffers_t *buffers)
{
    pthread_mutex_lock(&table->spare_lock);
    bool parked = table->spare.rows == NULL && table->spare.arena == NULL;
    if (parked)
        table->spare = *buffers;
    pthread_mutex_unlock(&table->spare_lock);
    if (!parked) {
        free(buffers->rows);
        free(buffers->arena);
    }
    *buffers = (sg_table_buffers_t){0};
}

sg_table_commit_t *sg_table_batch_detach(sg_table_batch_t *batch)
{
    bool any = batch->records != 0;
    for (size_t i = 0; i < batch->pos_count && !any; i++)
        any = batch->positions[i].dirty;
    if (!any)
        return NULL;
    sg_table_commit_t *job = sg_calloc(1, sizeof(*job));
    job->tables = batch->tables;
    job->table = batch->table;
    job->expect_commits = batch->base_commits;
    job->rows = batch->rows;
    job->rows_count = batch->rows_count;
    job->rows_cap = batch->rows_cap;
    job->arena = batch->arena;
    job->arena_cap = batch->arena_cap;
    job->legacy = batch->pos_legacy;
    job->bulk = batch->bulk;
    /* The whole positions record, sorted: a reader decodes it in token order. */
    qsort(batch->positions, batch->pos_count, sizeof(*batch->positions), sg_table_pos_cmp);
    batch->pos_last = 0;
    batch->pos_last_checked = 0; /* another entry now (sorted) */
    job->positions = sg_calloc(batch->pos_count + 1, sizeof(*job->positions));
    if (batch->pos_count > 0)
        memcpy(job->positions, batch->positions, batch->pos_count * sizeof(*job->positions));
    job->pos_count = batch->pos_count;
    /* The batch goes on from the positions the job reaches, expecting the job's commit, in
     * buffers at least as large as this round's (growing them again would copy every row): a
     * bulk round's are the spares an earlier bulk commit left, when they are as large. */
    sg_table_buffers_t spare = sg_table_spare_take(batch->table);
    if (!batch->bulk || spare.rows_cap < batch->rows_cap) {
        free(spare.rows);
        spare.rows = NULL;
        spare.rows_cap = batch->rows_cap;
    }
    if (!batch->bulk || spare.arena_cap < batch->arena_cap) {
        free(spare.arena);
        spare.arena = NULL;
        spare.arena_cap = batch->arena_cap;
    }
    if (spare.rows == NULL && spare.rows_cap != 0)
        spare.rows = sg_reallocarray(NULL, spare.rows_cap, sizeof(*spare.rows));
    if (spare.arena == NULL && spare.arena_cap != 0)
        spare.arena = sg_malloc(spare.arena_cap);
    batch->rows = spare.rows;
    batch->rows_cap = spare.rows_cap;
    batch->arena = spare.arena;
    batch->arena_cap = spare.arena_cap;
    batch->pos_legacy = false;
    sg_table_batch_clear(batch, false, batch->base_commits + 1);
    return job;
}

void sg_table_commit_destroy(sg_table_commit_t *job)
{
    if (job == NULL)
        return;
    sg_table_buffers_t buffers = {job->rows, job->rows_cap, job->arena, job->arena_cap};
    if (job->bulk) {
        sg_table_spare_put(job->table, &buffers);
    } else {
        free(buffers.rows);
        free(buffers.arena);
    }
    free(job->positions);
    free(job->order);
    free(job);
}

size_t sg_table_commit_rows(const sg_table_commit_t *job)
{
    return job->order != NULL ? job->order_count : job->rows_count;
}

/* The positions record of the job (owned, *len bytes). */
static uint8_t *sg_table_commit_pos_record(const sg_table_commit_t *job, size_t *len)
{
    size_t cap = 5;
    for (size_t i = 0; i < job->pos_count; i++)
        cap += SG_TABLE_POS_ENTRY_FIXED + strlen(job->positions[i].topic);
    uint8_t *value = sg_malloc(cap);
    value[0] = SG_TABLE_POS_VERSION;
    sg_table_put_uint(value + 1, job->pos_count, 4);
    size_t at = 5;
    for (size_t i = 0; i < job->pos_count; i++) {
        const sg_table_batch_pos_t *pos = &job->positions[i];
        size_t topic_len = strlen(pos->topic);
        value[at++] = (uint8_t)topic_len;
        memcpy(value + at, pos->topic, topic_len);
        at += topic_len;
        sg_table_put_uint(value + at, (uint64_t)pos->partition, 4);
        sg_table_put_uint(value + at + 4, (uint64_t)pos->next_offset, 8);
        sg_table_put_uint(value + at + 12, (uint64_t)pos->stream_time_ms, 8);
        at += 20;
    }
    *len = at;
    return value;
}

/* Puts the job's rows in key order (arrival order within a key) in job->order, keeping only the
 * last write of each key. Once per job: a job run again after a failure keeps its order. */
static void sg_table_commit_sort(sg_table_commit_t *job)
{
    if (job->rows_count == 0 || job->order != NULL)
        return; /* positions only (rows may be NULL), or sorted already */
    size_t n = job->rows_count;
    sg_keysort_item_t *items = sg_reallocarray(NULL, 2 * n, sizeof(*items)); /* the second half: the sort's scratch */
    for (size_t i = 0; i < n; i++) {
        const sg_table_row_t *row = &job->rows[i];
        const uint8_t *key = (const uint8_t *)job->arena + row->key_at;
        items[i] = (sg_keysort_item_t){sg_keysort_prefix(key, row->keylen), key, row->keylen, i};
    }
    sg_keysort(items, items + n, n);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const sg_keysort_item_t *item = &items[i], *next = i + 1 < n ? &items[i + 1] : NULL;
        if (next != NULL && next->prefix == item->prefix && sg_table_keycmp(item->key, item->keylen, next->key, next->keylen) == 0)
            continue; /* a later write of the same key in this batch wins */
        items[kept++] = *item;
    }
    job->order = items;
    job->order_count = kept;
}

/* Writes the job as one WriteBatch: rows, the positions record (at the empty key of the table's
 * family) and, for an older layout, the removal of the positions family's records. */
static int sg_table_commit_write(sg_table_commit_t *job, char *err, size_t errlen)
{
    sg_tables_t *tables = job->tables;
    sg_table_t *table = job->table;
    rocksdb_writebatch_t *writes = rocksdb_writebatch_create();
    for (size_t i = 0; i < job->order_count; i++) {
        const sg_keysort_item_t *item = &job->order[i];
        const sg_table_row_t *row = &job->rows[item->index];
        if (row->valuelen == 0)
            rocksdb_writebatch_delete_cf(writes, table->cf, (const char *)item->key, item->keylen);
        else
            rocksdb_writebatch_put_cf(writes, table->cf, (const char *)item->key, item->keylen, job->arena + row->value_at,
                                      row->valuelen);
    }
    size_t record_len;
    uint8_t *record = sg_table_commit_pos_record(job, &record_len);
    rocksdb_writebatch_put_cf(writes, table->cf, "", 0, (const char *)record, record_len);
    free(record);
    if (job->legacy) {
        /* The second layout's record and the first layout's records (prefix 'P' topic ...) are
         * the keys from the record's key up to the next tag. */
        uint8_t key[SG_TABLE_POS_KEY_MAX], end[SG_TABLE_POS_KEY_MAX];
        size_t keylen = sg_table_pos_key(table, key);
        memcpy(end, key, keylen);
        end[keylen - 1] = SG_TABLE_TAG_POSITION + 1;
        rocksdb_writebatch_delete_range_cf(writes, tables->positions_cf, (const char *)key, keylen, (const char *)end, keylen);
    }
    char *errptr = NULL;
    rocksdb_write(tables->db, tables->write_options, writes, &errptr);
    rocksdb_writebatch_destroy(writes);
    return errptr != NULL ? sg_queries_write_fail(&tables->health, err, errlen, "tables", "committing batch", errptr) : 0;
}

/* Writes the job as a table file that RocksDB takes in whole (bulk loading): the positions
 * record first (the empty key sorts before every row), then the rows in key order. The file is
 * ingested atomically, so rows and positions still arrive together, without the write-ahead log
 * and the memtable's skip list (most of a restore's cost). Returns 0, -1. */
static int sg_table_commit_ingest(sg_table_commit_t *job, char *err, size_t errlen)
{
    sg_tables_t *tables = job->tables;
    sg_table_t *table = job->table;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%zu-%llu.sst", tables->ingest_dir, (size_t)(table - tables->tables),
             (unsigned long long)job->expect_commits);
    char *errptr = NULL;
    rocksdb_envoptions_t *env = rocksdb_envoptions_create();
    rocksdb_sstfilewriter_t *writer = rocksdb_sstfilewriter_create(env, tables->ingest_options);
    rocksdb_sstfilewriter_open(writer, path, &errptr);
    size_t record_len;
    uint8_t *record = sg_table_commit_pos_record(job, &record_len);
    if (errptr == NULL)
        rocksdb_sstfilewriter_put(writer, "", 0, (const char *)record, record_len, &errptr);
    free(record);
    for (size_t i = 0; i < job->order_count && errptr == NULL; i++) {
        const sg_keysort_item_t *item = &job->order[i];
        const sg_table_row_t *row = &job->rows[item->index];
        if (row->valuelen == 0)
            rocksdb_sstfilewriter_delete(writer, (const char *)item->key, item->keylen, &errptr);
        else
            rocksdb_sstfilewriter_put(writer, (const char *)item->key, item->keylen, job->arena + row->value_at, row->valuelen,
                                      &errptr);
    }
    if (errptr == NULL)
        rocksdb_sstfilewriter_finish(writer, &errptr);
    rocksdb_sstfilewriter_destroy(writer);
    rocksdb_envoptions_destroy(env);
    if (errptr == NULL) {
        rocksdb_ingestexternalfileoptions_t *options = rocksdb_ingestexternalfileoptions_create();
        rocksdb_ingestexternalfileoptions_set_move_files(options, 1);
        const char *files[] = {path};
        rocksdb_ingest_external_file_cf(tables->db, table->cf, files, 1, options, &errptr);
        rocksdb_ingestexternalfileoptions_destroy(options);
    }
    unlink(path); /* moved into the database, or never to be */
    if (errptr == NULL)
        atomic_store(&tables->ingested, true);
    return errptr != NULL ? sg_queries_write_fail(&tables->health, err, errlen, "tables", "ingesting a bulk batch", errptr) : 0;
}

int sg_table_commit_run(sg_table_commit_t *job, char *err, size_t errlen)
{
    sg_tables_t *tables = job->tables;
    sg_table_t *table = job->table;
    char reason[512];
    if (sg_tables_health(tables, reason, sizeof(reason)) != SG_STORAGE_OK) {
        /* A stopped database refuses every write until sg_tables_recover reopens it. */
        sg_errf(err, errlen, "tables: storage unavailable: %s", reason);
        return -1;
    }
    if (sg_tables_lock(tables, err, errlen) != 0)
        return -1;
    sg_table_commit_sort(job);
    int ret = 0;
    pthread_mutex_lock(&table->commit_lock);
    if (atomic_load_explicit(&table->commits, memory_order_acquire) != job->expect_commits) {
        sg_errf(err, errlen, "tables: table %s was written by someone else while this batch was built", table->name);
        ret = SG_TABLE_ECONFLICT;
    } else {
        /* Bulk loading pays for itself on large batches only (a file, its sync, an ingestion). */
        bool ingest = job->bulk && !job->legacy && job->order_count >= SG_TABLE_BULK_MIN_ROWS;
        ret = ingest ? sg_table_commit_ingest(job, err, errlen) : sg_table_commit_write(job, err, errlen);
        if (ret == 0) {
            /* Published before the count moves: a waiter woken by the count finds the view. */
            sg_table_view_publish(table, sg_table_view_new(tables, job->positions, job->pos_count, NULL));
            atomic_fetch_add_explicit(&table->commits, 1, memory_order_acq_rel);
        }
    }
    pthread_mutex_unlock(&table->commit_lock);
    sg_tables_unlock(tables);
    return ret;
}

int sg_table_batch_commit(sg_table_batch_t *batch, char *err, size_t errlen)
{
    sg_table_commit_t *job = sg_table_batch_detach(batch);
    if (job == NULL)
        return 0;
    int ret = sg_table_commit_run(job, err, errlen);
    sg_table_commit_destroy(job);
    if (ret != 0)
        sg_table_batch_clear(batch, true, atomic_load_explicit(&batch->table->commits, memory_order_acquire));
    return ret;
}

/* -- reads ------------------------------------------------------------------------------------ */

/* Checks a point read's arguments. Returns the table, or NULL with err. */
static sg_table_t *sg_tables_get_args(sg_tables_t *tables, const char *table_name, const void *key, size_t keylen, char *err,
                                      size_t errlen)
{
    sg_table_t *table = sg_tables_find_err(tables, table_name, err, errlen);
    if (table == NULL)
        return NULL;
    if (key == NULL || keylen == 0 || keylen > SG_TABLE_MAX_KEY) {
        sg_errf(err, errlen, "tables: key must be 1..%d bytes (got %zu)", SG_TABLE_MAX_KEY, key == NULL ? (size_t)0 : keylen);
        return NULL;
    }
    return table;
}

/* Looks key up through read_options: 0 found (*found pinned: destroy it), 1 absent, -1 error. */
static int sg_table_lookup(sg_tables_t *tables, const sg_table_t *table, const rocksdb_readoptions_t *read_options, const void *key,
                           size_t keylen, rocksdb_pinnableslice_t **found, sg_table_version_t *row, char *err, size_t errlen)
{
    char *errptr = NULL;
    *found = rocksdb_get_pinned_cf(tables->db, read_options, table->cf, key, keylen, &errptr);
    if (errptr != NULL)
        return sg_table_rocksdb_fail(err, errlen, "reading row", errptr);
    if (*found == NULL)
        return 1;
    size_t len;
    const char *value = rocksdb_pinnableslice_value(*found, &len);
    if (!sg_table_decode_row(value, len, row)) {
        sg_errf(err, errlen, "tables: corrupt row in table %s (%zu bytes)", table->name, len);
        rocksdb_pinnableslice_destroy(*found);
        *found = NULL;
        return -1;
    }
    return 0;
}

static int sg_tables_get_locked(sg_tables_t *tables, const char *table_name, const void *key, size_t keylen, void **value_out,
                                size_t *len_out, sg_table_version_t *version, sg_token_t *token_into, char *err, size_t errlen)
{
    *value_out = NULL;
    *len_out = 0;
    if (version != NULL)
        memset(version, 0, sizeof(*version));
    sg_table_t *table = sg_tables_get_args(tables, table_name, key, keylen, err, errlen);
    if (table == NULL)
        return -1;
    /* With a token, the row is read at the view's snapshot: the token says exactly what it reflects. */
    sg_table_view_t *view = token_into != NULL ? sg_table_view_ref(table) : NULL;
    if (token_into != NULL && sg_table_view_usable(table, view, err, errlen) != 0) {
        sg_table_view_unref(view);
        return -1;
    }
    rocksdb_pinnableslice_t *found = NULL;
    sg_table_version_t row;
    int ret = sg_table_lookup(tables, table, view != NULL ? view->read_options : tables->read_options, key, keylen, &found, &row,
                              err, errlen);
    if (ret == 0) {
        size_t len;
        const char *value = rocksdb_pinnableslice_value(found, &len);
        size_t value_len = len - SG_TABLE_ROW_HEADER;
        char *copy = sg_malloc(value_len + 1);
        memcpy(copy, value + SG_TABLE_ROW_HEADER, value_len);
        copy[value_len] = '\0';
        *value_out = copy;
        *len_out = value_len;
        if (version != NULL)
            *version = row;
        rocksdb_pinnableslice_destroy(found);
    }
    if (ret >= 0 && token_into != NULL && sg_table_view_merge(table, view, token_into, err, errlen) != 0) {
        free(*value_out);
        *value_out = NULL;
        *len_out = 0;
        ret = -1;
    }
    sg_table_view_unref(view);
    return ret;
}

/* RocksDB counts into a thread-local perf context on every read unless told not to, per thread:
 * a tenth of a point read's instructions (the thread-local lookups alone). */
static _Thread_local bool sg_tables_perf_off;

static int sg_tables_read_locked(sg_tables_t *tables, const char *table_name, const void *key, size_t keylen, sg_table_read_cb cb,
                                 void *arg, char *err, size_t errlen)
{
    if (!sg_tables_perf_off) {
        rocksdb_set_perf_level(SG_ROCKSDB_PERF_DISABLE);
        sg_tables_perf_off = true;
    }
    sg_table_t *table = sg_tables_get_args(tables, table_name, key, keylen, err, errlen);
    if (table == NULL)
        return -1;
    sg_table_view_t *view = sg_table_view_ref(table);
    if (sg_table_view_usable(table, view, err, errlen) != 0) {
        sg_table_view_unref(view);
        return -1;
    }
    rocksdb_pinnableslice_t *found = NULL;
    sg_table_read_t read = {.view = view};
    int ret = sg_table_lookup(tables, table, view->read_options, key, keylen, &found, &read.version, err, errlen);
    if (ret == 0) {
        size_t len;
        const char *value = rocksdb_pinnableslice_value(found, &len);
        read.found = 1;
        read.value = value + SG_TABLE_ROW_HEADER;
        read.value_len = len - SG_TABLE_ROW_HEADER;
    }
    if (ret >= 0)
        cb(arg, &read);
    rocksdb_pinnableslice_destroy(found);
    sg_table_view_unref(view);
    return ret;
}

/* -- cursors ---------------------------------------------------------------------------------- */

static uint32_t sg_table_cursor_check(const sg_table_t *table, const uint8_t *key, size_t keylen)
{
    uint8_t version = SG_TABLE_CURSOR_VERSION;
    uint32_t hash = sg_table_fnv32(2166136261u, table->name, table->name_len + 1);
    hash = sg_table_fnv32(hash, &version, 1);
    return sg_table_fnv32(hash, key, keylen);
}

static char *sg_table_cursor_encode(const sg_table_t *table, const void *key, size_t keylen)
{
    uint8_t *raw = sg_malloc(1 + keylen + 4);
    raw[0] = SG_TABLE_CURSOR_VERSION;
    memcpy(raw + 1, key, keylen);
    sg_table_put_uint(raw + 1 + keylen, sg_table_cursor_check(table, raw + 1, keylen), 4);
    char *text = sg_malloc(sg_b64url_encoded_len(1 + keylen + 4) + 1);
    sg_b64url_encode(raw, 1 + keylen + 4, text);
    free(raw);
    return text;
}

/* Decodes a cursor into buf (SG_TABLE_MAX_CURSOR bytes). Returns the key length or -1. */
static long sg_table_cursor_decode(const sg_table_t *table, const char *text, uint8_t *buf, const uint8_t **key)
{
    size_t len = strnlen(text, SG_TABLE_MAX_CURSOR + 1);
    if (len > SG_TABLE_MAX_CURSOR)
        return -1;
    long raw_len = sg_b64url_decode(text, len, buf, NULL, 0);
    if (raw_len < 1 + 1 + 4 || buf[0] != SG_TABLE_CURSOR_VERSION)
        return -1;
    size_t keylen = (size_t)raw_len - 1 - 4;
    if (keylen > SG_TABLE_MAX_KEY)
        return -1;
    if (sg_table_get_uint(buf + 1 + keylen, 4) != sg_table_cursor_check(table, buf + 1, keylen))
        return -1;
    *key = buf + 1;
    return (long)keylen;
}

char *sg_tables_cursor(sg_tables_t *tables, const char *table_name, const void *key, size_t keylen)
{
    char err[64];
    sg_table_t *table = sg_tables_find_err(tables, table_name, err, sizeof(err));
    return table != NULL && keylen <= SG_TABLE_MAX_KEY ? sg_table_cursor_encode(table, key, keylen) : NULL;
}

long sg_tables_cursor_key(sg_tables_t *tables, const char *table_name, const char *cursor, void *key_out)
{
    char err[64];
    sg_table_t *table = sg_tables_find_err(tables, table_name, err, sizeof(err));
    if (table == NULL)
        return -1;
    uint8_t *buf = sg_malloc(SG_TABLE_MAX_CURSOR);
    const uint8_t *key = NULL;
    long len = sg_table_cursor_decode(table, cursor, buf, &key);
    if (len >= 0)
        memcpy(key_out, key, (size_t)len);
    free(buf);
    return len;
}

/* -- scans ------------------------------------------------------------------------------------ */

static int sg_tables_scan_locked(sg_tables_t *tables, const char *table_name, const sg_table_scan_t *query, sg_table_row_cb cb,
                                 void *arg, char **next_cursor, sg_token_t *token_into, char *err, size_t errlen)
{
    *next_cursor = NULL;
    sg_table_t *table = sg_tables_find_err(tables, table_name, err, errlen);
    if (table == NULL)
        return -1;
    if (query->limit == 0 || query->limit > SG_TABLE_SCAN_MAX_LIMIT) {
        sg_errf(err, errlen, "tables: scan limit must be 1..%d", SG_TABLE_SCAN_MAX_LIMIT);
        return -1;
    }
    const void *prefix = query->prefix;
    size_t prefix_len = prefix != NULL ? query->prefix_len : 0;
    if (prefix_len > SG_TABLE_MAX_KEY || (query->from != NULL && query->from_len > SG_TABLE_MAX_KEY) ||
        (query->to != NULL && query->to_len > SG_TABLE_MAX_KEY)) {
        sg_errf(err, errlen, "tables: scan bounds are limited to %d bytes", SG_TABLE_MAX_KEY);
        return -1;
    }

    /* Start at the largest of the lower bounds: prefix, from, cursor. */
    const void *start = prefix;
    size_t start_len = prefix_len;
    if (query->from != NULL && sg_table_keycmp(query->from, query->from_len, start, start_len) > 0) {
        start = query->from;
        start_len = query->from_len;
    }
    uint8_t *cursor_buf = NULL;
    const uint8_t *cursor_key = NULL;
    size_t cursor_len = 0;
    if (query->cursor != NULL) {
        cursor_buf = sg_malloc(SG_TABLE_MAX_CURSOR);
        long decoded = sg_table_cursor_decode(table, query->cursor, cursor_buf, &cursor_key);
        if (decoded < 0) {
            free(cursor_buf);
            sg_errf(err, errlen, "tables: invalid scan cursor");
            return -1;
        }
        cursor_len = (size_t)decoded;
        /* The cursor names the last row of a page of this query: it must lie in its range. */
        if (!sg_table_has_prefix(cursor_key, cursor_len, prefix, prefix_len) ||
            (query->from != NULL && sg_table_keycmp(cursor_key, cursor_len, query->from, query->from_len) < 0) ||
            (query->to != NULL && sg_table_keycmp(cursor_key, cursor_len, query->to, query->to_len) >= 0)) {
            free(cursor_buf);
            sg_errf(err, errlen, "tables: scan cursor does not belong to this query");
            return -1;
        }
        start = cursor_key;
        start_len = cursor_len;
    }

    /* Every scan reads one snapshot: the view's, whose token it carries. */
    sg_table_view_t *view = sg_table_view_ref(table);
    if (token_into != NULL && sg_table_view_usable(table, view, err, errlen) != 0) {
        sg_table_view_unref(view);
        free(cursor_buf);
        return -1;
    }
    if (view == NULL) {
        sg_errf(err, errlen, "tables: table %s is not open", table->name);
        free(cursor_buf);
        return -1;
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(tables->db, view->read_options, table->cf);
    int delivered = 0;
    int ret = 0;
    /* A copy: the iterator's key memory is gone once it moves past the last row. */
    uint8_t *last_key = sg_malloc(SG_TABLE_MAX_KEY);
    size_t last_len = 0;
    bool more = false;
    rocksdb_iter_seek(it, start != NULL ? start : "", start_len);
    if (cursor_key != NULL && rocksdb_iter_valid(it)) {
        size_t keylen;
        const char *key = rocksdb_iter_key(it, &keylen);
        if (sg_table_keycmp(key, keylen, cursor_key, cursor_len) == 0)
            rocksdb_iter_next(it);
    }
    size_t passed = 0;
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t keylen, len;
        const char *key = rocksdb_iter_key(it, &keylen);
        if (keylen == 0)
            continue; /* the positions record, not a row */
        /* Keys with the prefix are contiguous and the start is at or past it: the first key
         * without it is past them all. */
        if (!sg_table_has_prefix(key, keylen, prefix, prefix_len))
            break;
        if (query->to != NULL && sg_table_keycmp(key, keylen, query->to, query->to_len) >= 0)
            break;
        if ((size_t)delivered == query->limit) {
            more = true;
            break;
        }
        const char *value = rocksdb_iter_value(it, &len);
        sg_table_version_t version;
        if (!sg_table_decode_row(value, len, &version)) {
            sg_errf(err, errlen, "tables: corrupt row in table %s (%zu bytes)", table->name, len);
            ret = -1;
            break;
        }
        if (query->keep != NULL && !query->keep(query->keep_arg, key, keylen, (uint32_t)sg_table_get_uint((const uint8_t *)value + 1, 4))) {
            memcpy(last_key, key, keylen); /* a cursor goes on after it */
            last_len = keylen;
            if (++passed >= SG_TABLE_SCAN_MAX_PASSED) {
                more = true;
                break;
            }
            continue;
        }
        delivered++;
        memcpy(last_key, key, keylen);
        last_len = keylen;
        if (cb(arg, key, keylen, value + SG_TABLE_ROW_HEADER, len - SG_TABLE_ROW_HEADER, &version) != 0) {
            more = true;
            break;
        }
    }
    if (ret == 0) {
        char *errptr = NULL;
        rocksdb_iter_get_error(it, &errptr);
        if (errptr != NULL)
            ret = sg_table_rocksdb_fail(err, errlen, "scanning", errptr);
    }
    if (ret == 0 && more)
        *next_cursor = sg_table_cursor_encode(table, last_key, last_len);
    free(last_key);
    rocksdb_iter_destroy(it);
    if (ret == 0 && token_into != NULL)
        ret = sg_table_view_merge(table, view, token_into, err, errlen);
    sg_table_view_unref(view);
    free(cursor_buf);
    if (ret != 0) {
        free(*next_cursor);
        *next_cursor = NULL;
        return -1;
    }
    return delivered;
}

/* -- the public calls, under db_lock ---------------------------------------------------------- */

int sg_tables_position(sg_tables_t *tables, const char *table_name, const char *topic, int32_t partition, int64_t *next_offset,
                       int64_t *stream_time_ms, char *err, size_t errlen)
{
    if (sg_tables_lock(tables, err, errlen) != 0)
        return -1;
    int ret = sg_tables_position_locked(tables, table_name, topic, partition, next_offset, stream_time_ms, err, errlen);
    sg_tables_unlock(tables);
    return ret;
}

int sg_tables_positions(sg_tables_t *tables, const char *table_name, sg_table_position_cb cb, void *arg, char *err, size_t errlen)
{
    if (sg_tables_lock(tables, err, errlen) != 0)
        return -1;
    int ret = sg_tables_positions_locked(tables, table_name, cb, arg, err, errlen);
    sg_tables_unlock(tables);
    return ret;
}

int sg_tables_token(sg_tables_t *tables, const char *table_name, sg_token_t *into, char *err, size_t errlen)
{
    if (sg_tables_lock(tables, err, errlen) != 0)
        return -1;
    int ret = sg_tables_token_locked(tables, table_name, into, err, errlen);
    sg_tables_unlock(tables);
    return ret;
}

int sg_tables_get_source(sg_tables_t *tables, const char *table_name, char **source_out, char *err, size_t errlen)
{
    *source_out = NULL;
    if (sg_tables_lock(tables, err, errlen) != 0)
        return -1;
    int ret = sg_tables_get_source_locked(tables, table_name, source_out, err, errlen);
    sg_tables_unlock(tables);
    return ret;
}

int sg_tables_reset(sg_tables_t *tables, const char *table_name, const char *new_source, char *err, size_t errlen)
{
    if (sg_tables_lock(tables, err, errlen) != 0)
        return -1;
    int ret = sg_tables_reset_locked(tables, table_name, new_source, err, errlen);
    sg_tables_unlock(tables);
    return ret;
}

int sg_tables_get(sg_tables_t *tables, const char *table_name, const void *key, size_t keylen, void **value_out, size_t *len_out,
                  sg_table_version_t *version, sg_token_t *token_into, char *err, size_t errlen)
{
    *value_out = NULL;
    *len_out = 0;
    if (sg_tables_lock(tables, err, errlen) != 0)
        return -1;
    int ret = sg_tables_get_locked(tables, table_name, key, keylen, value_out, len_out, version, token_into, err, errlen);
    sg_tables_unlock(tables);
    return ret;
}

void sg_tables_set_cache(sg_tables_t *tables, size_t bytes)
{
    atomic_store(&tables->block_cache_bytes, bytes / 2);
    rocksdb_cache_set_capacity(tables->block_cache, bytes / 2);
    rocksdb_cache_set_capacity(tables->row_cache, bytes - bytes / 2);
}

int sg_tables_property(sg_tables_t *tables, const char *table_name, const char *property, uint64_t *value)
{
    char err[256];
    if (sg_tables_lock(tables, err, sizeof(err)) != 0)
        return -1;
    const sg_table_t *table = sg_tables_find(tables, table_name);
    int ret = -1;
    if (table != NULL && rocksdb_property_int_cf(tables->db, table->cf, property, value) == 0) {
        ret = 0;
    } else if (table != NULL) {
        /* Some counts (num-files-at-level<N>) are only offered as text. */
        char *text = rocksdb_property_value_cf(tables->db, table->cf, property);
        char *end = NULL;
        unsigned long long parsed = text != NULL ? strtoull(text, &end, 10) : 0;
        if (text != NULL && end != text && *end == '\0') {
            *value = parsed;
            ret = 0;
        }
        rocksdb_free(text);
    }
    sg_tables_unlock(tables);
    return ret;
}

/* Level-0 files before a compaction starts, then before writes slow down and stop: RocksDB's
 * defaults, and while restoring the room for one file per round of a large topic. */
static const char *const sg_table_l0_keys[] = {"level0_file_num_compaction_trigger", "level0_slowdown_writes_trigger",
                                               "level0_stop_writes_trigger"};
static const char *const sg_table_l0_normal[] = {"4", "20", "36"};
static const char *const sg_table_l0_restoring[] = {"64", "96", "128"};

void sg_tables_set_restoring(sg_tables_t *tables, int restoring)
{
    char err[256];
    if (sg_tables_lock(tables, err, sizeof(err)) != 0)
        return;
    for (size_t i = 0; i < tables->table_count; i++) {
        char *errptr = NULL;
        rocksdb_set_options_cf(tables->db, tables->tables[i].cf, 3, sg_table_l0_keys,
                               restoring ? sg_table_l0_restoring : sg_table_l0_normal, &errptr);
        rocksdb_free(errptr); /* a read-only database takes no options: nothing to tune there */
    }
    sg_tables_unlock(tables);
}

int sg_tables_settle(sg_tables_t *tables, char *err, size_t errlen)
{
    if (sg_tables_lock(tables, err, errlen) != 0)
        return -1;
    rocksdb_flushoptions_t *options = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(options, 1);
    char *errptr = NULL;
    for (size_t i = 0; i < tables->table_count && errptr == NULL; i++)
        rocksdb_flush_cf(tables->db, options, tables->tables[i].cf, &errptr);
    if (errptr == NULL)
        rocksdb_flush_cf(tables->db, options, tables->positions_cf, &errptr);
    rocksdb_flushoptions_destroy(options);
    /* Bulk batches left a level-0 file each, overlapping (keys arrive in any order): merged into
     * one sorted run, so a read looks into one file, not one per round. */
    if (errptr == NULL && atomic_exchange(&tables->ingested, false))
        for (size_t i = 0; i < tables->table_count && errptr == NULL; i++)
            rocksdb_compact_range_cf(tables->db, tables->tables[i].cf, NULL, 0, NULL, 0);
    if (errptr != NULL) {
        sg_tables_unlock(tables);
        return sg_queries_write_fail(&tables->health, err, errlen, "tables", "flushing", errptr);
    }
    /* Then the block cache is filled with the tables' data blocks, while they all fit with room
     * to spare: the first reads of each block would otherwise read and checksum it from the file
     * (~12k instructions). One sequential pass, milliseconds per 100k rows. */
    uint64_t cached = 0;
    for (size_t i = 0; i < tables->table_count; i++) {
        uint64_t size = 0;
        if (rocksdb_property_int_cf(tables->db, tables->tables[i].cf, "rocksdb.total-sst-files-size", &size) != 0 ||
            cached + size > atomic_load(&tables->block_cache_bytes) / 4 * 3)
            continue;
        cached += size;
        rocksdb_readoptions_t *warm = rocksdb_readoptions_create();
        rocksdb_readoptions_set_readahead_size(warm, 2u * 1024u * 1024u);
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(tables->db, warm, tables->tables[i].cf);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it))
            ;
        rocksdb_iter_destroy(it);
        rocksdb_readoptions_destroy(warm);
    }
    sg_tables_unlock(tables);
    return 0;
}

int sg_tables_read(sg_tables_t *tables, const char *table_name, const void *key, size_t keylen, sg_table_read_cb cb, void *arg,
                   char *err, size_t errlen)
{
    if (sg_tables_lock(tables, err, errlen) != 0)
        return -1;
    int ret = sg_tables_read_locked(tables, table_name, key, keylen, cb, arg, err, errlen);
    sg_tables_unlock(tables);
    return ret;
}

int sg_tables_scan(sg_tables_t *tables, const char *table_name, const sg_table_scan_t *query, sg_table_row_cb cb, void *arg,
                   char **next_cursor, sg_token_t *token_into, char *err, size_t errlen)
{
    *next_cursor = NULL;
    if (sg_tables_lock(tables, err, errlen) != 0)
        return -1;
    int ret = sg_tables_scan_locked(tables, table_name, query, cb, arg, next_cursor, token_into, err, errlen);
    sg_tables_unlock(tables);
    return ret;
}
