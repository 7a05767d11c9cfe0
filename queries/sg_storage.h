/*
 * Storage health, shared by the tables database (sg_table.h) and the request/idempotency store
 * (sg_store.h).
 *
 * A RocksDB write that fails (a full disk, a read-only or failing filesystem) stops the database
 * for writes: RocksDB 7.8 turns the error into a "hard" background error and refuses every write
 * until it is cleared. The database itself keeps answering reads. Each module records that
 * state as its health (with the error as the reason) and clears it by reopening the database
 * once the directory has room again (the same path as a restart: the WAL is replayed, so the
 * state is exactly what was committed). Callers read the health for readiness and metrics.
 */
#ifndef SG_STORAGE_H
#define SG_STORAGE_H

typedef enum {
    SG_STORAGE_OK = 0,          /* writes go through */
    SG_STORAGE_UNAVAILABLE = 1, /* the last write failed; reads serve the last committed state */
} sg_storage_health_t;

/* Free bytes a directory must have before a stopped database is reopened for writing. */
#define SG_STORAGE_RECOVER_MIN_FREE (4u * 1024u * 1024u)
/* Least time between two reopen attempts of a stopped database. */
#define SG_STORAGE_RECOVER_INTERVAL_MS 1000

#endif
