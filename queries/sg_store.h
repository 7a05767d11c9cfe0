/*
 * Request-status and idempotency store (queries/README.md; README: "HTTP API: request-reply").
 *
 * One RocksDB database with two column families: "requests" holds the outcome of each
 * request-reply call keyed by its request id, so `GET /requests/{id}` can be answered after a
 * restart and by any instance that reads the reply topic; "idempotency" holds one claim per
 * (route, Idempotency-Key). Every record carries an expiry; expired records read as absent, are
 * deleted by sg_store_sweep() (bounded work per call) and dropped by a compaction filter.
 *
 * Times are Unix epoch milliseconds (CLOCK_REALTIME): the compaction filter compares expires_ms
 * with the wall clock, so callers must use the same clock for now_ms and expires_ms.
 *
 * Writes use RocksDB's default WriteOptions: the WAL is on but not fsynced per write, so a
 * process crash loses nothing and a machine crash may lose the last few writes. That is the
 * right trade for status records: the Kafka reply topic, not this store, is the system of record.
 *
 * Every function may be called from any thread, concurrently. Read-modify-write operations
 * (put_request, idem_*) serialise per key on striped mutexes; plain reads take no lock.
 */
#ifndef SG_STORE_H
#define SG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "sg_storage.h"

#define SG_STORE_MAX_ID 64                      /* request id bytes */
#define SG_STORE_MAX_ROUTE 255                  /* route name bytes */
#define SG_STORE_MAX_IDEM_KEY 255               /* Idempotency-Key bytes */
#define SG_STORE_MAX_STRING (64u * 1024u)       /* content_type, headers_json, token */
#define SG_STORE_MAX_BODY (16u * 1024u * 1024u) /* reply body bytes */

typedef struct st_sg_store_t sg_store_t;

enum { SG_REQUEST_PENDING = 0, SG_REQUEST_DONE = 1 };

typedef struct {
    int state;          /* SG_REQUEST_PENDING or SG_REQUEST_DONE */
    int status;         /* HTTP status of the reply, 0..999 (0 while pending) */
    char *content_type; /* may be NULL */
    char *headers_json; /* JSON object text of the copied reply headers; may be NULL */
    void *body;         /* may be NULL when body_len is 0; on get, followed by a NUL not counted */
    size_t body_len;
    int64_t created_ms;
    int64_t completed_ms;
    int64_t expires_ms; /* the record reads as absent once expires_ms <= now_ms */
    char *token;        /* consistency token text of the reply; may be NULL */
    char *owner;        /* who made the request (the gateway's text for a principal); NULL: not known here */
} sg_request_record_t;

typedef enum {
    SG_IDEM_CLAIMED = 0,   /* the key is now claimed for the calling request */
    SG_IDEM_IN_FLIGHT = 1, /* same body, the first request has not completed yet */
    SG_IDEM_DONE = 2,      /* same body, completed: load request_id's outcome and replay it */
    SG_IDEM_MISMATCH = 3,  /* the key was used with a different body */
    SG_IDEM_UNKNOWN = 4,   /* same body; the first request's produce may or may not be in the log
                            * (sg_store_idem_mark_unknown): refuse with Retry-After until it is
                            * looked up, then completed (replay) or released (claim again) */
} sg_idem_kind_t;

typedef struct {
    sg_idem_kind_t kind;
    uint8_t request_id[SG_STORE_MAX_ID]; /* the claim's owner (the caller's own id if CLAIMED) */
    size_t request_id_len;
    int64_t expires_ms;  /* the claim's expiry */
    int32_t partition;   /* SG_IDEM_UNKNOWN: where the produce may be, and ... */
    int64_t produced_ms; /* ... its CreateTime (where a lookup starts); -1 and 0 otherwise */
} sg_idem_result_t;

/** Opens (creating if missing) the store at directory dir. Returns an owned store, or NULL with
 * a message in err. Uses LZ4 compression when the RocksDB build has it, none otherwise. */
sg_store_t *sg_store_open(const char *dir, char *err, size_t errlen);

/** Closes the store and frees it; NULL is a no-op. No other call may be running on it. */
void sg_store_close(sg_store_t *store);

/** Stores rec under request id (1..SG_STORE_MAX_ID bytes). An unexpired DONE record is never
 * replaced, neither by PENDING (a late pending write must not lose the outcome) nor by a second
 * DONE (the first reply wins, so every poll and replay sees the same outcome). The owner, once
 * recorded, is kept: a record written without one takes the stored one's, and an owner given
 * with a record that is not stored (a PENDING overtaken by its DONE) is added to the stored DONE
 * record if it has none. Returns 0 stored, 1 not stored because a DONE record exists, -1 on error
 * (invalid argument, limits, RocksDB). An unreadable existing record is replaced. rec is borrowed. */
int sg_store_put_request(sg_store_t *store, const void *id, size_t idlen, const sg_request_record_t *rec, char *err, size_t errlen);

/** Loads the record for id. Returns 0 found (out filled with owned fields: release them with
 * sg_request_record_dispose), 1 absent or expired (out zeroed), -1 on error, including a
 * corrupt stored value (out zeroed). */
int sg_store_get_request(sg_store_t *store, const void *id, size_t idlen, int64_t now_ms, sg_request_record_t *out, char *err,
                         size_t errlen);

/** Frees the fields of a record filled by sg_store_get_request and zeroes it; NULL is a no-op. */
void sg_request_record_dispose(sg_request_record_t *rec);

/** Atomically claims (route, key) for request_id, or reports the existing unexpired claim in
 * result (see sg_idem_kind_t). An expired claim counts as absent and is replaced. route is a
 * NUL-terminated name (1..SG_STORE_MAX_ROUTE bytes), key 1..SG_STORE_MAX_IDEM_KEY bytes,
 * body_sha256 the SHA-256 of the request body. Returns 0 (result filled) or -1 on error. */
int sg_store_idem_claim(sg_store_t *store, const char *route, const void *key, size_t keylen, const uint8_t body_sha256[32],
                        const void *request_id, size_t idlen, int64_t now_ms, int64_t expires_ms, sg_idem_result_t *result,
                        char *err, size_t errlen);

/** Reads the unexpired claim on (route, key) without changing anything: 0 with result filled as
 * sg_store_idem_claim would report it to a request with this body (MISMATCH, DONE, UNKNOWN or
 * IN_FLIGHT, never CLAIMED), 1 when there is none, -1 on error. Any thread. */
int sg_store_idem_get(sg_store_t *store, const char *route, const void *key, size_t keylen, const uint8_t body_sha256[32],
                      int64_t now_ms, sg_idem_result_t *result, char *err, size_t errlen);

/** Marks the claim on (route, key) done, if it is still held by request_id (a claim that expired
 * and was taken by another request is left alone). Keeps its expiry. Returns 0 marked, 1 no such
 * claim held by request_id, -1 on error. */
int sg_store_idem_complete(sg_store_t *store, const char *route, const void *key, size_t keylen, const void *request_id,
                           size_t idlen, char *err, size_t errlen);

/** Deletes the claim on (route, key) if it is held by request_id and not done (in flight or
 * unknown), so a retry can claim again (used when the produce failed, or a lookup showed that a
 * possibly persisted produce is not in the log). Returns 0 deleted, 1 no such claim held by
 * request_id (or it is done), -1 on error. */
int sg_store_idem_release(sg_store_t *store, const char *route, const void *key, size_t keylen, const void *request_id,
                          size_t idlen, char *err, size_t errlen);

/** Marks the claim on (route, key) held by request_id "outcome unknown": its produce failed but
 * may be in the log (librdkafka's RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED). The claim is kept, not
 * released, so a retry cannot produce a second event: sg_store_idem_claim reports SG_IDEM_UNKNOWN
 * with partition and produced_ms (the message's CreateTime), which say where to look it up. Once
 * the lookup knows, sg_store_idem_complete (found: record the outcome with sg_store_put_request
 * first, so a retry replays it) or sg_store_idem_release (not in the log). Returns 0 marked, 1 no
 * such claim held by request_id or it is done, -1 on error. Any thread. */
int sg_store_idem_mark_unknown(sg_store_t *store, const char *route, const void *key, size_t keylen, const void *request_id,
                               size_t idlen, int32_t partition, int64_t produced_ms, char *err, size_t errlen);

/** Write health (sg_storage.h): SG_STORAGE_OK, or SG_STORAGE_UNAVAILABLE after a write failed
 * (a full or read-only disk), until the store is reopened; the reason is copied into reason (may
 * be NULL). Meanwhile writes (put_request, a new claim, complete, release) fail at once with
 * "storage unavailable" and reads (get_request, a claim that finds an existing one) go on.
 * Lock-free when healthy; any thread. */
int sg_store_health(sg_store_t *store, char *reason, size_t reasonlen);

/** When unavailable and the directory has room again (SG_STORAGE_RECOVER_MIN_FREE bytes, at most
 * once per SG_STORAGE_RECOVER_INTERVAL_MS), reopens the database (WAL replay: the records of the
 * last successful write); read-only if that fails, so reads go on. sg_store_sweep calls it, so
 * the periodic sweep is what brings the store back. Returns 0 healthy, 1 still unavailable (err). */
int sg_store_recover(sg_store_t *store, char *err, size_t errlen);

/** Deletes expired records of both families, examining at most max_records records (> 0) and
 * resuming next call where this one stopped. Sets *deleted (may be NULL) to the number deleted.
 * Unreadable records are skipped, not deleted. Returns 1 when the call reached the end of a full
 * pass (the next call starts over), 0 when there is more to examine, -1 on error. Meant to be
 * called periodically from a thread off the event loops; concurrent calls are serialised.
 * While the store is unavailable it first tries sg_store_recover, and fails (-1) if it is still
 * unavailable. */
int sg_store_sweep(sg_store_t *store, int64_t now_ms, size_t max_records, size_t *deleted, char *err, size_t errlen);

/** Flushes and fully compacts both families, letting the compaction filter drop records that
 * have expired by the wall clock (it also runs on RocksDB's own compactions). For maintenance
 * and tests; blocks until done. RocksDB's C API reports no error for this. */
void sg_store_compact(sg_store_t *store);

#endif
