/*
 * Helpers shared by the queries/ sources (private to the module): RocksDB error translation and
 * the options the module's databases share.
 */
#ifndef SG_QUERIES_INT_H
#define SG_QUERIES_INT_H

#include <stddef.h>
#include <stdint.h>

#include "sg_base.h"

/** "<module>: <what>: <rocksdb message>" into err, frees errptr; returns -1. */
int sg_queries_rocksdb_fail(char *err, size_t errlen, const char *module, const char *what, char *errptr);

/** RocksDB options shared by the module's databases: create if missing, the given memtable and
 * WAL budget and compression, warnings-only info log, a Bloom filter. Returns owned options. */
struct rocksdb_options_t;
struct rocksdb_options_t *sg_queries_db_options(size_t write_buffer, int max_write_buffers, uint64_t max_total_wal,
                                                int compression);

#endif
