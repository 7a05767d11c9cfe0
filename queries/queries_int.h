/*
 * Helpers shared by the queries/ sources (private to the module): the one out-of-memory policy,
 * error formatting into (char *err, size_t errlen), RocksDB error translation, and base64url.
 */
#ifndef SG_QUERIES_INT_H
#define SG_QUERIES_INT_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define SG_QUERIES_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SG_QUERIES_PRINTF(fmt, args)
#endif

/** Out of memory: logs and aborts (the module's one place for it). */
_Noreturn void sg_queries_oom(void);

/** malloc/calloc/realloc that never return NULL (zero sizes allocate one byte). */
void *sg_queries_malloc(size_t size);
void *sg_queries_calloc(size_t count, size_t size);
void *sg_queries_realloc(void *ptr, size_t size);

/** Formats into err (NULL or errlen 0: nothing). */
void sg_queries_errf(char *err, size_t errlen, const char *fmt, ...) SG_QUERIES_PRINTF(3, 4);

/** "<module>: <what>: <rocksdb message>" into err, frees errptr; returns -1. */
int sg_queries_rocksdb_fail(char *err, size_t errlen, const char *module, const char *what, char *errptr);

/** RocksDB options shared by the module's databases: create if missing, the given memtable and
 * WAL budget and compression, warnings-only info log, a Bloom filter. Returns owned options. */
struct rocksdb_options_t;
struct rocksdb_options_t *sg_queries_db_options(size_t write_buffer, int max_write_buffers, uint64_t max_total_wal,
                                                int compression);

/** The base64url alphabet (RFC 4648 §5), and a character's 6-bit value or -1. */
extern const char sg_b64url_alphabet[65];
int sg_b64url_value(unsigned char c);

#endif
