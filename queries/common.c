/*
 * See queries_int.h.
 */
#include "queries_int.h"

#include <rocksdb/c.h>

int sg_queries_rocksdb_fail(char *err, size_t errlen, const char *module, const char *what, char *errptr)
{
    sg_errf(err, errlen, "%s: %s: %s", module, what, errptr != NULL ? errptr : "unknown RocksDB error");
    rocksdb_free(errptr);
    return -1;
}

#define SG_QUERIES_INFO_LOG_WARN 2 /* rocksdb::InfoLogLevel::WARN_LEVEL; the C API takes an int */

rocksdb_options_t *sg_queries_db_options(size_t write_buffer, int max_write_buffers, uint64_t max_total_wal, int compression)
{
    rocksdb_options_t *options = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(options, 1);
    rocksdb_options_set_create_missing_column_families(options, 1);
    rocksdb_options_set_write_buffer_size(options, write_buffer);
    rocksdb_options_set_max_write_buffer_number(options, max_write_buffers);
    rocksdb_options_set_max_total_wal_size(options, max_total_wal);
    rocksdb_options_set_compression(options, compression);
    rocksdb_options_set_info_log_level(options, SG_QUERIES_INFO_LOG_WARN);
    rocksdb_options_set_max_log_file_size(options, 1024 * 1024);
    rocksdb_options_set_keep_log_file_num(options, 4);
    /* Lookups of absent keys are common (idempotency claims, first polls, 404 rows): a Bloom
     * filter answers them without reading data blocks. */
    rocksdb_block_based_table_options_t *table = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_filter_policy(table, rocksdb_filterpolicy_create_bloom(10));
    rocksdb_options_set_block_based_table_factory(options, table);
    rocksdb_block_based_options_destroy(table);
    return options;
}
