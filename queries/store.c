/*
 * Request-status and idempotency store on RocksDB (queries/README.md; README: "HTTP API:
 * request-reply").
 *
 * The rules that need a read before the write ("a DONE outcome is never replaced", "claim the
 * key unless someone holds it") are done as read-check-write under a mutex chosen by hashing the
 * key into SG_STORE_LOCK_STRIPES stripes, not with a merge operator: the check has to report what
 * it found (claimed / in flight / done / mismatch) to the caller synchronously, which a merge
 * operator cannot do, and one mechanism for both families is easier to reason about. Striping
 * keeps unrelated keys from contending; plain reads take no lock at all.
 *
 * Values are our own versioned binary format, all integers fixed-width big-endian:
 *   common header   u8 version (1, or 2 for a request with an owner), u8 type ('R' request,
 *                   'I' idempotency), i64 expires_ms
 *   request  ('R')  u8 state, u16 status, i64 created_ms, i64 completed_ms,
 *                   3 x optional string (content_type, headers_json, token):
 *                       u8 present (0|1) [, u32 length, bytes without NUL],
 *                   version 2 only: optional string owner,
 *                   u32 body length, body bytes
 *   claim    ('I')  u8 state (0 in flight, 1 done, 2 outcome unknown), 32 bytes body SHA-256,
 *                   u8 request id length (1..64), request id bytes,
 *                   and only in state 2: u32 partition, i64 produced_ms (where to look it up)
 * expires_ms sits at a fixed offset so the compaction filter and the sweep can judge a record
 * from its first 10 bytes. A request without an owner is written as version 1, byte for byte what
 * earlier builds wrote and read; version 2 only adds the owner (authenticated deployments). Decoding is strict: anything the
 * encoder would not produce (unknown version, wrong type, a length past the end or over a limit, trailing bytes) is an error.
 *
 * Keys: "requests" is keyed by the request id bytes; "idempotency" by u8 route length, route
 * bytes, Idempotency-Key bytes (the length prefix keeps (route, key) pairs unambiguous).
 *
 * Storage failures (a full disk): a failed write marks the store unavailable (sg_storage.h);
 * writes then fail at once, reads go on from the database, and sg_store_sweep reopens it once the
 * directory has room again. Every call holds db_lock for reading so that a reopen can swap the
 * handles.
 */
#include "sg_store.h"

#include "queries_int.h"

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SG_STORE_VERSION 1
#define SG_STORE_VERSION_OWNER 2 /* request records with an owner */
#define SG_STORE_TYPE_REQUEST 'R'
#define SG_STORE_TYPE_IDEM 'I'
#define SG_STORE_HEADER_LEN 10 /* version, type, expires_ms */
#define SG_STORE_IDEM_DONE 1
#define SG_STORE_IDEM_IN_FLIGHT 0
#define SG_STORE_IDEM_UNKNOWN 2
#define SG_STORE_LOCK_STRIPES 64
#define SG_STORE_MAX_STATUS 999
#define SG_STORE_IDEM_KEY_MAX (1 + SG_STORE_MAX_ROUTE + SG_STORE_MAX_IDEM_KEY)

/* A state DB: a few MB of hot records, so small memtables, and a bounded WAL so that the family
 * that is written less often does not pin old log files. */
#define SG_STORE_WRITE_BUFFER (8u * 1024u * 1024u)
#define SG_STORE_MAX_TOTAL_WAL (32u * 1024u * 1024u)

enum { SG_STORE_CF_DEFAULT, SG_STORE_CF_REQUESTS, SG_STORE_CF_IDEM, SG_STORE_CF_COUNT };

static const char *const sg_store_cf_names[SG_STORE_CF_COUNT] = {"default", "requests", "idempotency"};

struct st_sg_store_t {
    char *dir;
    pthread_rwlock_t db_lock; /* read: every call using db; write: a reopen */
    sg_queries_health_t health;
    rocksdb_t *db; /* NULL only after a failed reopen (calls then fail) */
    rocksdb_options_t *db_options;
    rocksdb_options_t *cf_options[SG_STORE_CF_COUNT];
    rocksdb_column_family_handle_t *cf[SG_STORE_CF_COUNT];
    /* Referenced, not owned, by the options: must outlive the DB. */
    rocksdb_compactionfilter_t *expiry_filter;
    rocksdb_readoptions_t *read_options;
    rocksdb_readoptions_t *sweep_read_options; /* no block cache fill: a sweep reads everything once */
    rocksdb_writeoptions_t *write_options;
    pthread_mutex_t stripes[SG_STORE_LOCK_STRIPES];
    /* The sweep cursor: the family being swept and the last key examined in it. */
    pthread_mutex_t sweep_lock;
    int sweep_cf;
    char *sweep_key; /* NULL: start of sweep_cf */
    size_t sweep_key_len;
};

/* -- errors and memory ------------------------------------------------------------------------ */

/* Errors name this module; memory and error helpers are the module's (queries_int.h). */
#define sg_store_rocksdb_fail(err, errlen, what, errptr) sg_queries_rocksdb_fail(err, errlen, "store", what, errptr)
#define sg_store_write_fail(store, err, errlen, what, errptr)                                                                      \
    sg_queries_write_fail(&(store)->health, err, errlen, "store", what, errptr)

/* -- encoding --------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *buf;
    size_t len;
} sg_store_writer_t;

static void sg_store_put_u8(sg_store_writer_t *w, unsigned value)
{
    w->buf[w->len++] = (uint8_t)value;
}

static void sg_store_put_uint(sg_store_writer_t *w, uint64_t value, size_t width)
{
    for (size_t i = width; i > 0; i--)
        w->buf[w->len++] = (uint8_t)(value >> (8 * (i - 1)));
}

static void sg_store_put_bytes(sg_store_writer_t *w, const void *bytes, size_t len)
{
    if (len != 0)
        memcpy(w->buf + w->len, bytes, len);
    w->len += len;
}

static void sg_store_put_opt_string(sg_store_writer_t *w, const char *s, size_t len)
{
    sg_store_put_u8(w, s != NULL);
    if (s != NULL) {
        sg_store_put_uint(w, len, 4);
        sg_store_put_bytes(w, s, len);
    }
}

static void sg_store_put_header(sg_store_writer_t *w, int version, int type, int64_t expires_ms)
{
    sg_store_put_u8(w, (unsigned)version);
    sg_store_put_u8(w, (unsigned)type);
    sg_store_put_uint(w, (uint64_t)expires_ms, 8);
}

typedef struct {
    const uint8_t *p;
    size_t left;
    const char *problem; /* first decoding problem, NULL while all is well */
} sg_store_reader_t;

static bool sg_store_get_uint(sg_store_reader_t *r, size_t width, uint64_t *value)
{
    if (r->problem != NULL)
        return false;
    if (r->left < width) {
        r->problem = "truncated";
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++)
        v = (v << 8) | r->p[i];
    r->p += width;
    r->left -= width;
    *value = v;
    return true;
}

static const uint8_t *sg_store_get_bytes(sg_store_reader_t *r, size_t len)
{
    if (r->problem != NULL)
        return NULL;
    if (r->left < len) {
        r->problem = "truncated";
        return NULL;
    }
    const uint8_t *bytes = r->p;
    r->p += len;
    r->left -= len;
    return bytes;
}

/* Reads an optional string into an owned C string (*out stays NULL when absent). */
static bool sg_store_get_opt_string(sg_store_reader_t *r, char **out)
{
    uint64_t present, len;
    *out = NULL;
    if (!sg_store_get_uint(r, 1, &present))
        return false;
    if (present > 1) {
        r->problem = "bad presence flag";
        return false;
    }
    if (present == 0)
        return true;
    if (!sg_store_get_uint(r, 4, &len))
        return false;
    if (len > SG_STORE_MAX_STRING) {
        r->problem = "string over the limit";
        return false;
    }
    const uint8_t *bytes = sg_store_get_bytes(r, (size_t)len);
    if (bytes == NULL)
        return false;
    /* A NUL inside would silently shorten the C string we hand out. */
    if (memchr(bytes, '\0', (size_t)len) != NULL) {
        r->problem = "NUL byte in a string";
        return false;
    }
    *out = sg_malloc((size_t)len + 1);
    memcpy(*out, bytes, (size_t)len);
    (*out)[len] = '\0';
    return true;
}

/* Checks the common header of a value of the given type and returns its expiry (and, unless
 * NULL, its version). */
static bool sg_store_get_header_version(sg_store_reader_t *r, int type, int64_t *expires_ms, int *version_out)
{
    uint64_t version, found_type, expires;
    if (!sg_store_get_uint(r, 1, &version) || !sg_store_get_uint(r, 1, &found_type) || !sg_store_get_uint(r, 8, &expires))
        return false;
    if (version != SG_STORE_VERSION && !(version == SG_STORE_VERSION_OWNER && type == SG_STORE_TYPE_REQUEST)) {
        r->problem = "unsupported format version";
        return false;
    }
    if (found_type != (uint64_t)type) {
        r->problem = "wrong record type";
        return false;
    }
    *expires_ms = (int64_t)expires;
    if (version_out != NULL)
        *version_out = (int)version;
    return true;
}

static bool sg_store_get_header(sg_store_reader_t *r, int type, int64_t *expires_ms)
{
    return sg_store_get_header_version(r, type, expires_ms, NULL);
}

static bool sg_store_get_end(sg_store_reader_t *r)
{
    if (r->problem == NULL && r->left != 0)
        r->problem = "trailing bytes";
    return r->problem == NULL;
}

static sg_store_reader_t sg_store_reader(const char *value, size_t len)
{
    return (sg_store_reader_t){.p = (const uint8_t *)value, .left = len, .problem = NULL};
}

/* Encodes a validated request record (its strings within the limits); returns an owned buffer
 * of *len bytes. */
static uint8_t *sg_store_encode_request(const sg_request_record_t *rec, size_t *len)
{
    size_t ct_len = rec->content_type != NULL ? strlen(rec->content_type) : 0;
    size_t headers_len = rec->headers_json != NULL ? strlen(rec->headers_json) : 0;
    size_t token_len = rec->token != NULL ? strlen(rec->token) : 0;
    size_t owner_len = rec->owner != NULL ? strlen(rec->owner) : 0;
    size_t size = SG_STORE_HEADER_LEN + 1 + 2 + 8 + 8 + 4 + 4 + rec->body_len;
    size += rec->content_type != NULL ? 4 + ct_len : 0;
    size += rec->headers_json != NULL ? 4 + headers_len : 0;
    size += rec->token != NULL ? 4 + token_len : 0;
    size += rec->owner != NULL ? 4 + owner_len : 0;
    sg_store_writer_t w = {.buf = sg_malloc(size), .len = 0};
    sg_store_put_header(&w, rec->owner != NULL ? SG_STORE_VERSION_OWNER : SG_STORE_VERSION, SG_STORE_TYPE_REQUEST, rec->expires_ms);
    sg_store_put_u8(&w, (unsigned)rec->state);
    sg_store_put_uint(&w, (uint64_t)rec->status, 2);
    sg_store_put_uint(&w, (uint64_t)rec->created_ms, 8);
    sg_store_put_uint(&w, (uint64_t)rec->completed_ms, 8);
    sg_store_put_opt_string(&w, rec->content_type, ct_len);
    sg_store_put_opt_string(&w, rec->headers_json, headers_len);
    sg_store_put_opt_string(&w, rec->token, token_len);
    if (rec->owner != NULL)
        sg_store_put_opt_string(&w, rec->owner, owner_len);
    sg_store_put_uint(&w, rec->body_len, 4);
    sg_store_put_bytes(&w, rec->body, rec->body_len);
    *len = w.len;
    return w.buf;
}

/* Decodes a request value into rec (owned fields). On failure rec is disposed and the problem
 * returned; NULL means success. */
static const char *sg_store_decode_request(const char *value, size_t len, sg_request_record_t *rec)
{
    sg_store_reader_t r = sg_store_reader(value, len);
    uint64_t state, status, created, completed, body_len;
    int version = 0;
    memset(rec, 0, sizeof(*rec));
    if (!sg_store_get_header_version(&r, SG_STORE_TYPE_REQUEST, &rec->expires_ms, &version) || !sg_store_get_uint(&r, 1, &state))
        goto fail;
    if (state != SG_REQUEST_PENDING && state != SG_REQUEST_DONE) {
        r.problem = "bad state";
        goto fail;
    }
    if (!sg_store_get_uint(&r, 2, &status))
        goto fail;
    if (status > SG_STORE_MAX_STATUS) {
        r.problem = "bad status";
        goto fail;
    }
    if (!sg_store_get_uint(&r, 8, &created) || !sg_store_get_uint(&r, 8, &completed))
        goto fail;
    rec->state = (int)state;
    rec->status = (int)status;
    rec->created_ms = (int64_t)created;
    rec->completed_ms = (int64_t)completed;
    if (!sg_store_get_opt_string(&r, &rec->content_type) || !sg_store_get_opt_string(&r, &rec->headers_json) ||
        !sg_store_get_opt_string(&r, &rec->token))
        goto fail;
    if (version == SG_STORE_VERSION_OWNER && !sg_store_get_opt_string(&r, &rec->owner))
        goto fail;
    if (!sg_store_get_uint(&r, 4, &body_len))
        goto fail;
    if (body_len > SG_STORE_MAX_BODY) {
        r.problem = "body over the limit";
        goto fail;
    }
    const uint8_t *body = sg_store_get_bytes(&r, (size_t)body_len);
    if (body == NULL || !sg_store_get_end(&r))
        goto fail;
    if (body_len != 0) {
        /* The extra NUL lets a text body be used as a C string; it is not part of body_len. */
        rec->body = sg_malloc((size_t)body_len + 1);
        memcpy(rec->body, body, (size_t)body_len);
        ((char *)rec->body)[body_len] = '\0';
        rec->body_len = (size_t)body_len;
    }
    return NULL;
fail:
    sg_request_record_dispose(rec);
    return r.problem;
}

/* Reads just the header and state of a request value (enough for the no-overwrite rule). */
static bool sg_store_peek_request(const char *value, size_t len, int *state)
{
    sg_store_reader_t r = sg_store_reader(value, len);
    int64_t expires_ms;
    uint64_t found_state;
    if (!sg_store_get_header(&r, SG_STORE_TYPE_REQUEST, &expires_ms) || !sg_store_get_uint(&r, 1, &found_state))
        return false;
    *state = (int)found_state;
    return true;
}

typedef struct {
    int64_t expires_ms;
    int state;
    uint8_t body_sha256[32];
    uint8_t request_id[SG_STORE_MAX_ID];
    size_t request_id_len;
    int32_t partition; /* SG_STORE_IDEM_UNKNOWN only */
    int64_t produced_ms;
} sg_store_claim_t;

static size_t sg_store_encode_claim(const sg_store_claim_t *claim, uint8_t *buf)
{
    sg_store_writer_t w = {.buf = buf, .len = 0};
    sg_store_put_header(&w, SG_STORE_VERSION, SG_STORE_TYPE_IDEM, claim->expires_ms);
    sg_store_put_u8(&w, (unsigned)claim->state);
    sg_store_put_bytes(&w, claim->body_sha256, 32);
    sg_store_put_u8(&w, (unsigned)claim->request_id_len);
    sg_store_put_bytes(&w, claim->request_id, claim->request_id_len);
    if (claim->state == SG_STORE_IDEM_UNKNOWN) {
        sg_store_put_uint(&w, (uint64_t)claim->partition, 4);
        sg_store_put_uint(&w, (uint64_t)claim->produced_ms, 8);
    }
    return w.len;
}

#define SG_STORE_CLAIM_MAX_LEN (SG_STORE_HEADER_LEN + 1 + 32 + 1 + SG_STORE_MAX_ID + 4 + 8)

static const char *sg_store_decode_claim(const char *value, size_t len, sg_store_claim_t *claim)
{
    sg_store_reader_t r = sg_store_reader(value, len);
    uint64_t state, id_len;
    const uint8_t *sha, *id;
    if (!sg_store_get_header(&r, SG_STORE_TYPE_IDEM, &claim->expires_ms) || !sg_store_get_uint(&r, 1, &state) ||
        (sha = sg_store_get_bytes(&r, 32)) == NULL || !sg_store_get_uint(&r, 1, &id_len))
        return r.problem;
    if (state != SG_STORE_IDEM_IN_FLIGHT && state != SG_STORE_IDEM_DONE && state != SG_STORE_IDEM_UNKNOWN)
        return "bad state";
    if (id_len == 0 || id_len > SG_STORE_MAX_ID)
        return "bad request id length";
    if ((id = sg_store_get_bytes(&r, (size_t)id_len)) == NULL)
        return r.problem;
    uint64_t partition = 0, produced_ms = 0;
    if (state == SG_STORE_IDEM_UNKNOWN && (!sg_store_get_uint(&r, 4, &partition) || !sg_store_get_uint(&r, 8, &produced_ms)))
        return r.problem;
    if (!sg_store_get_end(&r))
        return r.problem;
    if (partition > INT32_MAX)
        return "bad partition";
    claim->partition = (int32_t)partition;
    claim->produced_ms = (int64_t)produced_ms;
    claim->state = (int)state;
    memcpy(claim->body_sha256, sha, 32);
    memcpy(claim->request_id, id, (size_t)id_len);
    claim->request_id_len = (size_t)id_len;
    return NULL;
}

/* The expiry of a value of either type, if its header is readable. */
static bool sg_store_peek_expiry(const char *value, size_t len, int64_t *expires_ms)
{
    sg_store_reader_t r = sg_store_reader(value, len);
    if (len >= 2 && (uint8_t)value[1] == SG_STORE_TYPE_IDEM)
        return sg_store_get_header(&r, SG_STORE_TYPE_IDEM, expires_ms);
    return sg_store_get_header(&r, SG_STORE_TYPE_REQUEST, expires_ms);
}

/* -- locking ---------------------------------------------------------------------------------- */

static pthread_mutex_t *sg_store_stripe(sg_store_t *store, int cf, const void *key, size_t keylen)
{
    /* FNV-1a: cheap and spreads short ids well enough for lock striping. */
    uint32_t hash = 2166136261u ^ (uint32_t)cf;
    const uint8_t *bytes = key;
    for (size_t i = 0; i < keylen; i++)
        hash = (hash ^ bytes[i]) * 16777619u;
    return &store->stripes[hash % SG_STORE_LOCK_STRIPES];
}

/* -- compaction filter ------------------------------------------------------------------------ */

/* Called on RocksDB's background threads, concurrently: stateless on purpose. Drops a record
 * whose expiry has passed by the wall clock; keeps anything it cannot read, so that a corrupt
 * value stays for someone to look at instead of vanishing. */
static unsigned char sg_store_expiry_filter(void *state, int level, const char *key, size_t keylen, const char *value,
                                            size_t value_len, char **new_value, size_t *new_value_len, unsigned char *value_changed)
{
    int64_t expires_ms;
    *value_changed = 0;
    if (!sg_store_peek_expiry(value, value_len, &expires_ms))
        return 0;
    return expires_ms <= sg_now_ms();
}

static const char *sg_store_expiry_filter_name(void *state)
{
    return "streamgate.store.expiry";
}

static void sg_store_expiry_filter_destroy(void *state)
{
}

/* -- open / close ----------------------------------------------------------------------------- */

static void sg_store_destroy_options(sg_store_t *store)
{
    for (int i = 0; i < SG_STORE_CF_COUNT; i++) {
        if (store->cf_options[i] != NULL)
            rocksdb_options_destroy(store->cf_options[i]);
        store->cf_options[i] = NULL;
    }
    if (store->db_options != NULL)
        rocksdb_options_destroy(store->db_options);
    store->db_options = NULL;
}

static void sg_store_build_options(sg_store_t *store, int compression)
{
    rocksdb_options_t *options = sg_queries_db_options(SG_STORE_WRITE_BUFFER, 2, SG_STORE_MAX_TOTAL_WAL, compression);
    store->db_options = options;
    for (int i = 0; i < SG_STORE_CF_COUNT; i++) {
        store->cf_options[i] = rocksdb_options_create_copy(options);
        if (i != SG_STORE_CF_DEFAULT)
            rocksdb_options_set_compaction_filter(store->cf_options[i], store->expiry_filter);
    }
}

/* Opens the database at store->dir (read-only when asked: the last state, for reads, after a
 * reopen for writing failed). The caller holds db_lock for writing or is the only user. Returns 0,
 * or -1 with err (store->db NULL). */
static int sg_store_open_db(sg_store_t *store, bool read_only, char *err, size_t errlen)
{
    /* LZ4 if this RocksDB build links it (Debian's does); a build without it refuses to open with
     * an error naming the compression, and we retry uncompressed: the data is small anyway. */
    const int compressions[] = {rocksdb_lz4_compression, rocksdb_no_compression};
    for (size_t i = 0; i < sizeof(compressions) / sizeof(compressions[0]); i++) {
        char *errptr = NULL;
        sg_store_build_options(store, compressions[i]);
        if (read_only)
            store->db = rocksdb_open_for_read_only_column_families(
                store->db_options, store->dir, SG_STORE_CF_COUNT, sg_store_cf_names,
                (const rocksdb_options_t *const *)store->cf_options, store->cf, 0, &errptr);
        else
            store->db = rocksdb_open_column_families(store->db_options, store->dir, SG_STORE_CF_COUNT, sg_store_cf_names,
                                                     (const rocksdb_options_t *const *)store->cf_options, store->cf, &errptr);
        if (errptr == NULL && store->db != NULL)
            return 0;
        store->db = NULL;
        sg_store_destroy_options(store);
        bool last = i + 1 == sizeof(compressions) / sizeof(compressions[0]);
        if (last || errptr == NULL || strstr(errptr, "ompression") == NULL) {
            char what[300];
            snprintf(what, sizeof(what), "cannot open %s", store->dir);
            return sg_store_rocksdb_fail(err, errlen, what, errptr);
        }
        rocksdb_free(errptr);
    }
    return -1;
}

static void sg_store_close_db(sg_store_t *store)
{
    if (store->db != NULL) {
        for (int i = 0; i < SG_STORE_CF_COUNT; i++)
            rocksdb_column_family_handle_destroy(store->cf[i]);
        rocksdb_close(store->db);
        store->db = NULL;
    }
    sg_store_destroy_options(store);
}

sg_store_t *sg_store_open(const char *dir, char *err, size_t errlen)
{
    if (dir == NULL || dir[0] == '\0') {
        sg_errf(err, errlen, "store: no directory given");
        return NULL;
    }
    sg_store_t *store = sg_malloc(sizeof(*store));
    memset(store, 0, sizeof(*store));
    for (int i = 0; i < SG_STORE_LOCK_STRIPES; i++)
        pthread_mutex_init(&store->stripes[i], NULL);
    pthread_mutex_init(&store->sweep_lock, NULL);
    store->sweep_cf = SG_STORE_CF_REQUESTS;
    store->expiry_filter =
        rocksdb_compactionfilter_create(NULL, sg_store_expiry_filter_destroy, sg_store_expiry_filter, sg_store_expiry_filter_name);

    store->dir = sg_strdup(dir);
    sg_queries_db_lock_init(&store->db_lock);
    sg_queries_health_init(&store->health);
    if (sg_store_open_db(store, false, err, errlen) != 0) {
        sg_store_close(store);
        return NULL;
    }
    store->read_options = rocksdb_readoptions_create();
    store->sweep_read_options = rocksdb_readoptions_create();
    rocksdb_readoptions_set_fill_cache(store->sweep_read_options, 0);
    store->write_options = rocksdb_writeoptions_create();
    return store;
}

void sg_store_close(sg_store_t *store)
{
    if (store == NULL)
        return;
    sg_store_close_db(store);
    /* Only now: the DB and its options referenced the filter until here. */
    rocksdb_compactionfilter_destroy(store->expiry_filter);
    if (store->read_options != NULL)
        rocksdb_readoptions_destroy(store->read_options);
    if (store->sweep_read_options != NULL)
        rocksdb_readoptions_destroy(store->sweep_read_options);
    if (store->write_options != NULL)
        rocksdb_writeoptions_destroy(store->write_options);
    for (int i = 0; i < SG_STORE_LOCK_STRIPES; i++)
        pthread_mutex_destroy(&store->stripes[i]);
    pthread_mutex_destroy(&store->sweep_lock);
    if (store->dir != NULL) {
        pthread_rwlock_destroy(&store->db_lock);
        sg_queries_health_dispose(&store->health);
    }
    free(store->dir);
    free(store->sweep_key);
    free(store);
}

/* -- health ----------------------------------------------------------------------------------- */

/* Takes db_lock for reading, for a call that writes when `writing`: that fails at once while the
 * store is unavailable (RocksDB would refuse it anyway). Fails (unlocked) without a database. */
static int sg_store_lock(sg_store_t *store, bool writing, char *err, size_t errlen)
{
    char reason[512];
    if (writing && sg_queries_health_get(&store->health, reason, sizeof(reason)) != SG_STORAGE_OK) {
        sg_errf(err, errlen, "store: storage unavailable: %s", reason);
        return -1;
    }
    pthread_rwlock_rdlock(&store->db_lock);
    if (store->db != NULL)
        return 0;
    pthread_rwlock_unlock(&store->db_lock);
    sg_queries_health_get(&store->health, reason, sizeof(reason));
    sg_errf(err, errlen, "store: storage unavailable: %s", reason);
    return -1;
}

static void sg_store_unlock(sg_store_t *store)
{
    pthread_rwlock_unlock(&store->db_lock);
}

int sg_store_health(sg_store_t *store, char *reason, size_t reasonlen)
{
    return sg_queries_health_get(&store->health, reason, reasonlen);
}

int sg_store_recover(sg_store_t *store, char *err, size_t errlen)
{
    if (atomic_load(&store->health.state) == SG_STORAGE_OK)
        return 0;
    pthread_mutex_lock(&store->sweep_lock); /* one recovering caller at a time */
    int rc = 1;
    if (atomic_load(&store->health.state) == SG_STORAGE_OK) {
        rc = 0;
    } else if (sg_queries_health_should_try(&store->health, "store", store->dir, err, errlen)) {
        /* As a restart: the WAL is replayed, so the records are those of the last successful
         * write, and RocksDB's stopped state (no write after a failed one) is gone. */
        pthread_rwlock_wrlock(&store->db_lock);
        sg_store_close_db(store);
        char rw_err[512];
        rc = sg_store_open_db(store, false, rw_err, sizeof(rw_err)) == 0 ? 0 : 1;
        if (rc != 0) {
            char ro_err[512];
            bool ro_failed = sg_store_open_db(store, true, ro_err, sizeof(ro_err)) != 0; /* reads go on, or db stays NULL */
            sg_queries_reopen_failed(&store->health, "store", store->dir, rw_err, ro_failed ? ro_err : NULL, err, errlen);
        }
        pthread_rwlock_unlock(&store->db_lock);
        if (rc == 0)
            sg_queries_health_ok(&store->health);
    }
    pthread_mutex_unlock(&store->sweep_lock);
    return rc;
}

/* -- request records -------------------------------------------------------------------------- */

static int sg_store_check_id(const void *id, size_t idlen, char *err, size_t errlen)
{
    if (id == NULL || idlen == 0 || idlen > SG_STORE_MAX_ID) {
        sg_errf(err, errlen, "store: request id must be 1..%d bytes (got %zu)", SG_STORE_MAX_ID, id == NULL ? (size_t)0 : idlen);
        return -1;
    }
    return 0;
}

/* Length of an optional string, or -1 (with a message) when it exceeds the limit. strnlen so a
 * huge string is not scanned to its end just to be refused. */
static int sg_store_check_string(const char *s, const char *name, size_t *len, char *err, size_t errlen)
{
    *len = 0;
    if (s == NULL)
        return 0;
    *len = strnlen(s, SG_STORE_MAX_STRING + 1);
    if (*len > SG_STORE_MAX_STRING) {
        sg_errf(err, errlen, "store: %s is longer than %u bytes", name, SG_STORE_MAX_STRING);
        return -1;
    }
    return 0;
}

static int sg_store_put_request_locked(sg_store_t *store, const void *id, size_t idlen, const sg_request_record_t *rec, char *err,
                                       size_t errlen)
{
    size_t ct_len, headers_len, token_len, owner_len;
    if (sg_store_check_id(id, idlen, err, errlen) != 0)
        return -1;
    if (rec->state != SG_REQUEST_PENDING && rec->state != SG_REQUEST_DONE) {
        sg_errf(err, errlen, "store: invalid request state %d", rec->state);
        return -1;
    }
    if (rec->status < 0 || rec->status > SG_STORE_MAX_STATUS) {
        sg_errf(err, errlen, "store: invalid HTTP status %d", rec->status);
        return -1;
    }
    if (rec->body_len > SG_STORE_MAX_BODY || (rec->body == NULL && rec->body_len != 0)) {
        sg_errf(err, errlen, "store: reply body of %zu bytes is over the limit of %u or missing", rec->body_len, SG_STORE_MAX_BODY);
        return -1;
    }
    if (sg_store_check_string(rec->content_type, "content type", &ct_len, err, errlen) != 0 ||
        sg_store_check_string(rec->headers_json, "reply headers", &headers_len, err, errlen) != 0 ||
        sg_store_check_string(rec->token, "consistency token", &token_len, err, errlen) != 0 ||
        sg_store_check_string(rec->owner, "owner", &owner_len, err, errlen) != 0)
        return -1;

    rocksdb_column_family_handle_t *cf = store->cf[SG_STORE_CF_REQUESTS];
    pthread_mutex_t *lock = sg_store_stripe(store, SG_STORE_CF_REQUESTS, id, idlen);
    char *errptr = NULL;
    int ret = 0;
    sg_request_record_t stored = {0}, merged = *rec;
    size_t value_len;
    uint8_t *value = NULL;

    pthread_mutex_lock(lock);
    rocksdb_pinnableslice_t *existing = rocksdb_get_pinned_cf(store->db, store->read_options, cf, id, idlen, &errptr);
    if (errptr != NULL) {
        ret = sg_store_rocksdb_fail(err, errlen, "reading request record", errptr);
        goto out;
    }
    if (existing != NULL) {
        size_t existing_len;
        const char *existing_value = rocksdb_pinnableslice_value(existing, &existing_len);
        int existing_state;
        /* An unreadable record is replaced: it can never be served, and refusing would wedge the id. */
        bool done = sg_store_peek_request(existing_value, existing_len, &existing_state) && existing_state == SG_REQUEST_DONE;
        /* Decoded in full only when the owner has to move from one record to the other. */
        bool decoded = (done ? rec->owner != NULL : rec->owner == NULL) &&
                       sg_store_decode_request(existing_value, existing_len, &stored) == NULL;
        rocksdb_pinnableslice_destroy(existing);
        if (done) {
            ret = 1;
            if (!decoded || stored.owner != NULL)
                goto out;
            stored.owner = sg_strdup(rec->owner); /* the outcome stays; it learns who asked */
            merged = stored;
        } else if (decoded && stored.owner != NULL) {
            merged.owner = stored.owner; /* the owner recorded first is kept */
        }
    }
    value = sg_store_encode_request(&merged, &value_len);
    rocksdb_put_cf(store->db, store->write_options, cf, id, idlen, (const char *)value, value_len, &errptr);
    if (errptr != NULL)
        ret = sg_store_write_fail(store, err, errlen, "writing request record", errptr);
out:
    pthread_mutex_unlock(lock);
    sg_request_record_dispose(&stored);
    free(value);
    return ret;
}

static int sg_store_get_request_locked(sg_store_t *store, const void *id, size_t idlen, int64_t now_ms, sg_request_record_t *out,
                                       char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (sg_store_check_id(id, idlen, err, errlen) != 0)
        return -1;
    char *errptr = NULL;
    rocksdb_pinnableslice_t *found =
        rocksdb_get_pinned_cf(store->db, store->read_options, store->cf[SG_STORE_CF_REQUESTS], id, idlen, &errptr);
    if (errptr != NULL)
        return sg_store_rocksdb_fail(err, errlen, "reading request record", errptr);
    if (found == NULL)
        return 1;
    size_t len;
    const char *value = rocksdb_pinnableslice_value(found, &len);
    sg_store_reader_t header = sg_store_reader(value, len);
    int64_t expires_ms;
    int ret = 0;
    const char *problem = NULL;
    /* Judge expiry from the header first: no point copying a 16 MiB body to throw it away. */
    if (!sg_store_get_header(&header, SG_STORE_TYPE_REQUEST, &expires_ms) || expires_ms > now_ms)
        problem = sg_store_decode_request(value, len, out);
    else
        ret = 1;
    if (problem != NULL) {
        sg_errf(err, errlen, "store: corrupt request record (%zu bytes): %s", len, problem);
        ret = -1;
    }
    rocksdb_pinnableslice_destroy(found);
    return ret;
}

void sg_request_record_dispose(sg_request_record_t *rec)
{
    if (rec == NULL)
        return;
    free(rec->content_type);
    free(rec->headers_json);
    free(rec->body);
    free(rec->token);
    free(rec->owner);
    memset(rec, 0, sizeof(*rec));
}

/* -- idempotency claims ----------------------------------------------------------------------- */

/* Builds the (route, key) store key into buf (SG_STORE_IDEM_KEY_MAX bytes). */
static int sg_store_idem_key(const char *route, const void *key, size_t keylen, uint8_t *buf, size_t *buflen, char *err,
                             size_t errlen)
{
    size_t route_len = route != NULL ? strnlen(route, SG_STORE_MAX_ROUTE + 1) : 0;
    if (route_len == 0 || route_len > SG_STORE_MAX_ROUTE) {
        sg_errf(err, errlen, "store: route name must be 1..%d bytes", SG_STORE_MAX_ROUTE);
        return -1;
    }
    if (key == NULL || keylen == 0 || keylen > SG_STORE_MAX_IDEM_KEY) {
        sg_errf(err, errlen, "store: Idempotency-Key must be 1..%d bytes (got %zu)", SG_STORE_MAX_IDEM_KEY,
                key == NULL ? (size_t)0 : keylen);
        return -1;
    }
    buf[0] = (uint8_t)route_len;
    memcpy(buf + 1, route, route_len);
    memcpy(buf + 1 + route_len, key, keylen);
    *buflen = 1 + route_len + keylen;
    return 0;
}

/* Reads the claim at k. Returns 0 found (claim filled), 1 absent, -1 error or corrupt. */
static int sg_store_read_claim(sg_store_t *store, const uint8_t *k, size_t klen, sg_store_claim_t *claim, char *err, size_t errlen)
{
    char *errptr = NULL;
    rocksdb_pinnableslice_t *found =
        rocksdb_get_pinned_cf(store->db, store->read_options, store->cf[SG_STORE_CF_IDEM], (const char *)k, klen, &errptr);
    if (errptr != NULL)
        return sg_store_rocksdb_fail(err, errlen, "reading idempotency claim", errptr);
    if (found == NULL)
        return 1;
    size_t len;
    const char *value = rocksdb_pinnableslice_value(found, &len);
    const char *problem = sg_store_decode_claim(value, len, claim);
    rocksdb_pinnableslice_destroy(found);
    if (problem != NULL) {
        /* Not replaced like a corrupt request record: guessing here could produce a command twice. */
        sg_errf(err, errlen, "store: corrupt idempotency claim (%zu bytes): %s", len, problem);
        return -1;
    }
    return 0;
}

static int sg_store_write_claim(sg_store_t *store, const uint8_t *k, size_t klen, const sg_store_claim_t *claim, char *err,
                                size_t errlen)
{
    char reason[512];
    if (sg_queries_health_get(&store->health, reason, sizeof(reason)) != SG_STORAGE_OK) {
        /* No claim that cannot be stored: the caller refuses the request instead of producing
         * without a guard. */
        sg_errf(err, errlen, "store: storage unavailable: %s", reason);
        return -1;
    }
    uint8_t value[SG_STORE_CLAIM_MAX_LEN];
    size_t value_len = sg_store_encode_claim(claim, value);
    char *errptr = NULL;
    rocksdb_put_cf(store->db, store->write_options, store->cf[SG_STORE_CF_IDEM], (const char *)k, klen, (const char *)value,
                   value_len, &errptr);
    if (errptr != NULL)
        return sg_store_write_fail(store, err, errlen, "writing idempotency claim", errptr);
    return 0;
}

/* What an existing claim means to a request with this body: MISMATCH, DONE, UNKNOWN or IN_FLIGHT,
 * with the claim's owner, expiry and (UNKNOWN) where its produce may be. */
static void sg_store_report_claim(const sg_store_claim_t *claim, const uint8_t body_sha256[32], sg_idem_result_t *result)
{
    if (memcmp(claim->body_sha256, body_sha256, 32) != 0)
        result->kind = SG_IDEM_MISMATCH;
    else
        result->kind = claim->state == SG_STORE_IDEM_DONE      ? SG_IDEM_DONE
                       : claim->state == SG_STORE_IDEM_UNKNOWN ? SG_IDEM_UNKNOWN
                                                               : SG_IDEM_IN_FLIGHT;
    memcpy(result->request_id, claim->request_id, claim->request_id_len);
    result->request_id_len = claim->request_id_len;
    result->expires_ms = claim->expires_ms;
    result->partition = claim->state == SG_STORE_IDEM_UNKNOWN ? claim->partition : -1;
    result->produced_ms = claim->state == SG_STORE_IDEM_UNKNOWN ? claim->produced_ms : 0;
}

static int sg_store_idem_claim_locked(sg_store_t *store, const char *route, const void *key, size_t keylen,
                                      const uint8_t body_sha256[32], const void *request_id, size_t idlen, int64_t now_ms,
                                      int64_t expires_ms, sg_idem_result_t *result, char *err, size_t errlen)
{
    uint8_t k[SG_STORE_IDEM_KEY_MAX];
    size_t klen;
    memset(result, 0, sizeof(*result));
    if (sg_store_idem_key(route, key, keylen, k, &klen, err, errlen) != 0 || sg_store_check_id(request_id, idlen, err, errlen) != 0)
        return -1;

    sg_store_claim_t existing, mine = {.expires_ms = expires_ms, .state = SG_STORE_IDEM_IN_FLIGHT, .request_id_len = idlen};
    memcpy(mine.body_sha256, body_sha256, 32);
    memcpy(mine.request_id, request_id, idlen);
    const sg_store_claim_t *reported = &mine;
    pthread_mutex_t *lock = sg_store_stripe(store, SG_STORE_CF_IDEM, k, klen);

    pthread_mutex_lock(lock);
    int ret = sg_store_read_claim(store, k, klen, &existing, err, errlen);
    if (ret == 0 && existing.expires_ms > now_ms) {
        reported = &existing;
    } else if (ret >= 0) {
        ret = sg_store_write_claim(store, k, klen, &mine, err, errlen);
    }
    pthread_mutex_unlock(lock);

    if (ret < 0)
        return -1;
    sg_store_report_claim(reported, body_sha256, result);
    if (reported == &mine)
        result->kind = SG_IDEM_CLAIMED;
    return 0;
}

int sg_store_idem_get(sg_store_t *store, const char *route, const void *key, size_t keylen, const uint8_t body_sha256[32],
                      int64_t now_ms, sg_idem_result_t *result, char *err, size_t errlen)
{
    uint8_t k[SG_STORE_IDEM_KEY_MAX];
    size_t klen;
    sg_store_claim_t claim;
    memset(result, 0, sizeof(*result));
    if (sg_store_idem_key(route, key, keylen, k, &klen, err, errlen) != 0 || sg_store_lock(store, false, err, errlen) != 0)
        return -1;
    int ret = sg_store_read_claim(store, k, klen, &claim, err, errlen);
    sg_store_unlock(store);
    if (ret != 0)
        return ret;
    if (claim.expires_ms <= now_ms)
        return 1;
    sg_store_report_claim(&claim, body_sha256, result);
    return 0;
}

typedef enum { SG_STORE_FINISH_DONE, SG_STORE_FINISH_RELEASE, SG_STORE_FINISH_UNKNOWN } sg_store_finish_t;

/* Completes, releases or marks unknown (at partition, produced_ms) the claim held by request_id. */
static int sg_store_idem_finish_locked(sg_store_t *store, const char *route, const void *key, size_t keylen, const void *request_id,
                                       size_t idlen, sg_store_finish_t op, int32_t partition, int64_t produced_ms, char *err,
                                       size_t errlen)
{
    uint8_t k[SG_STORE_IDEM_KEY_MAX];
    size_t klen;
    if (sg_store_idem_key(route, key, keylen, k, &klen, err, errlen) != 0 || sg_store_check_id(request_id, idlen, err, errlen) != 0)
        return -1;
    sg_store_claim_t claim;
    pthread_mutex_t *lock = sg_store_stripe(store, SG_STORE_CF_IDEM, k, klen);

    pthread_mutex_lock(lock);
    int ret = sg_store_read_claim(store, k, klen, &claim, err, errlen);
    if (ret != 0)
        goto out;
    /* Someone else's claim (ours expired and was replaced) is not ours to finish. */
    if (claim.request_id_len != idlen || memcmp(claim.request_id, request_id, idlen) != 0) {
        ret = 1;
        goto out;
    }
    if (op == SG_STORE_FINISH_DONE) {
        if (claim.state != SG_STORE_IDEM_DONE) {
            claim.state = SG_STORE_IDEM_DONE;
            ret = sg_store_write_claim(store, k, klen, &claim, err, errlen);
        }
    } else if (claim.state == SG_STORE_IDEM_DONE) {
        /* Releasing a completed claim would let a retry produce the command a second time; its
         * outcome is known, so it is not unknown either. */
        ret = 1;
    } else if (op == SG_STORE_FINISH_UNKNOWN) {
        claim.state = SG_STORE_IDEM_UNKNOWN;
        claim.partition = partition;
        claim.produced_ms = produced_ms;
        ret = sg_store_write_claim(store, k, klen, &claim, err, errlen);
    } else {
        char *errptr = NULL;
        rocksdb_delete_cf(store->db, store->write_options, store->cf[SG_STORE_CF_IDEM], (const char *)k, klen, &errptr);
        if (errptr != NULL)
            ret = sg_store_write_fail(store, err, errlen, "deleting idempotency claim", errptr);
    }
out:
    pthread_mutex_unlock(lock);
    return ret;
}

static int sg_store_idem_finish(sg_store_t *store, const char *route, const void *key, size_t keylen, const void *request_id,
                                size_t idlen, sg_store_finish_t op, int32_t partition, int64_t produced_ms, char *err,
                                size_t errlen)
{
    if (sg_store_lock(store, true, err, errlen) != 0)
        return -1;
    int ret = sg_store_idem_finish_locked(store, route, key, keylen, request_id, idlen, op, partition, produced_ms, err, errlen);
    sg_store_unlock(store);
    return ret;
}

int sg_store_idem_complete(sg_store_t *store, const char *route, const void *key, size_t keylen, const void *request_id,
                           size_t idlen, char *err, size_t errlen)
{
    return sg_store_idem_finish(store, route, key, keylen, request_id, idlen, SG_STORE_FINISH_DONE, -1, 0, err, errlen);
}

int sg_store_idem_release(sg_store_t *store, const char *route, const void *key, size_t keylen, const void *request_id,
                          size_t idlen, char *err, size_t errlen)
{
    return sg_store_idem_finish(store, route, key, keylen, request_id, idlen, SG_STORE_FINISH_RELEASE, -1, 0, err, errlen);
}

int sg_store_idem_mark_unknown(sg_store_t *store, const char *route, const void *key, size_t keylen, const void *request_id,
                               size_t idlen, int32_t partition, int64_t produced_ms, char *err, size_t errlen)
{
    if (partition < 0 || produced_ms < 0) {
        sg_errf(err, errlen, "store: an unknown outcome needs a partition and a produce time");
        return -1;
    }
    return sg_store_idem_finish(store, route, key, keylen, request_id, idlen, SG_STORE_FINISH_UNKNOWN, partition, produced_ms, err,
                                errlen);
}

/* -- retention -------------------------------------------------------------------------------- */

static int sg_store_sweep_locked(sg_store_t *store, int64_t now_ms, size_t max_records, size_t *deleted, char *err, size_t errlen);

/* Deletes key from family cf if it is still expired: re-read under the key's stripe lock, because
 * between the sweep's iterator snapshot and now a writer may have stored a fresh record there.
 * Returns 1 deleted, 0 kept, -1 error. */
static int sg_store_delete_if_expired(sg_store_t *store, int cf, const char *key, size_t keylen, int64_t now_ms, char *err,
                                      size_t errlen)
{
    pthread_mutex_t *lock = sg_store_stripe(store, cf, key, keylen);
    char *errptr = NULL;
    int ret = 0;
    pthread_mutex_lock(lock);
    rocksdb_pinnableslice_t *found = rocksdb_get_pinned_cf(store->db, store->read_options, store->cf[cf], key, keylen, &errptr);
    if (errptr != NULL) {
        ret = sg_store_rocksdb_fail(err, errlen, "sweep: reading record", errptr);
    } else if (found != NULL) {
        size_t len;
        const char *value = rocksdb_pinnableslice_value(found, &len);
        int64_t expires_ms;
        if (sg_store_peek_expiry(value, len, &expires_ms) && expires_ms <= now_ms) {
            rocksdb_delete_cf(store->db, store->write_options, store->cf[cf], key, keylen, &errptr);
            ret = errptr != NULL ? sg_store_write_fail(store, err, errlen, "sweep: deleting record", errptr) : 1;
        }
        rocksdb_pinnableslice_destroy(found);
    }
    pthread_mutex_unlock(lock);
    return ret;
}

static void sg_store_sweep_remember(sg_store_t *store, const char *key, size_t keylen)
{
    free(store->sweep_key);
    store->sweep_key = sg_malloc(keylen);
    memcpy(store->sweep_key, key, keylen);
    store->sweep_key_len = keylen;
}

/* Positions a new iterator on the first key after the cursor in the cursor's family. */
static rocksdb_iterator_t *sg_store_sweep_iterator(sg_store_t *store)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(store->db, store->sweep_read_options, store->cf[store->sweep_cf]);
    if (store->sweep_key == NULL) {
        rocksdb_iter_seek_to_first(it);
        return it;
    }
    rocksdb_iter_seek(it, store->sweep_key, store->sweep_key_len);
    if (rocksdb_iter_valid(it)) {
        size_t keylen;
        const char *key = rocksdb_iter_key(it, &keylen);
        if (keylen == store->sweep_key_len && memcmp(key, store->sweep_key, keylen) == 0)
            rocksdb_iter_next(it);
    }
    return it;
}

int sg_store_sweep(sg_store_t *store, int64_t now_ms, size_t max_records, size_t *deleted, char *err, size_t errlen)
{
    if (deleted != NULL)
        *deleted = 0;
    if (max_records == 0) {
        sg_errf(err, errlen, "store: sweep needs max_records > 0");
        return -1;
    }
    /* The periodic caller is also what brings a stopped store back once there is room. */
    if (sg_store_recover(store, err, errlen) != 0 || sg_store_lock(store, false, err, errlen) != 0)
        return -1;
    int ret = sg_store_sweep_locked(store, now_ms, max_records, deleted, err, errlen);
    sg_store_unlock(store);
    return ret;
}

static int sg_store_sweep_locked(sg_store_t *store, int64_t now_ms, size_t max_records, size_t *deleted, char *err, size_t errlen)
{
    size_t examined = 0, removed = 0;
    int ret = 0;
    pthread_mutex_lock(&store->sweep_lock);
    rocksdb_iterator_t *it = sg_store_sweep_iterator(store);
    while (examined < max_records) {
        if (!rocksdb_iter_valid(it)) {
            char *errptr = NULL;
            rocksdb_iter_get_error(it, &errptr);
            if (errptr != NULL) {
                ret = sg_store_rocksdb_fail(err, errlen, "sweep: iterating", errptr);
                break;
            }
            rocksdb_iter_destroy(it);
            it = NULL;
            free(store->sweep_key);
            store->sweep_key = NULL;
            if (store->sweep_cf == SG_STORE_CF_IDEM) {
                store->sweep_cf = SG_STORE_CF_REQUESTS;
                ret = 1;
                break;
            }
            store->sweep_cf = SG_STORE_CF_IDEM;
            it = sg_store_sweep_iterator(store);
            continue;
        }
        size_t keylen, len;
        const char *key = rocksdb_iter_key(it, &keylen);
        const char *value = rocksdb_iter_value(it, &len);
        int64_t expires_ms;
        examined++;
        if (sg_store_peek_expiry(value, len, &expires_ms) && expires_ms <= now_ms) {
            int outcome = sg_store_delete_if_expired(store, store->sweep_cf, key, keylen, now_ms, err, errlen);
            if (outcome < 0) {
                ret = -1;
                break;
            }
            removed += (size_t)outcome;
        }
        sg_store_sweep_remember(store, key, keylen);
        rocksdb_iter_next(it);
    }
    if (it != NULL)
        rocksdb_iter_destroy(it);
    pthread_mutex_unlock(&store->sweep_lock);
    if (deleted != NULL)
        *deleted = removed;
    return ret;
}

void sg_store_compact(sg_store_t *store)
{
    char err[64];
    if (sg_store_lock(store, false, err, sizeof(err)) != 0)
        return;
    rocksdb_compact_range_cf(store->db, store->cf[SG_STORE_CF_REQUESTS], NULL, 0, NULL, 0);
    rocksdb_compact_range_cf(store->db, store->cf[SG_STORE_CF_IDEM], NULL, 0, NULL, 0);
    sg_store_unlock(store);
}

/* -- the public calls, under db_lock ---------------------------------------------------------- */

int sg_store_put_request(sg_store_t *store, const void *id, size_t idlen, const sg_request_record_t *rec, char *err, size_t errlen)
{
    if (sg_store_lock(store, true, err, errlen) != 0)
        return -1;
    int ret = sg_store_put_request_locked(store, id, idlen, rec, err, errlen);
    sg_store_unlock(store);
    return ret;
}

int sg_store_get_request(sg_store_t *store, const void *id, size_t idlen, int64_t now_ms, sg_request_record_t *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (sg_store_lock(store, false, err, errlen) != 0)
        return -1;
    int ret = sg_store_get_request_locked(store, id, idlen, now_ms, out, err, errlen);
    sg_store_unlock(store);
    return ret;
}

int sg_store_idem_claim(sg_store_t *store, const char *route, const void *key, size_t keylen, const uint8_t body_sha256[32],
                        const void *request_id, size_t idlen, int64_t now_ms, int64_t expires_ms, sg_idem_result_t *result,
                        char *err, size_t errlen)
{
    memset(result, 0, sizeof(*result));
    if (sg_store_lock(store, false, err, errlen) != 0)
        return -1;
    int ret = sg_store_idem_claim_locked(store, route, key, keylen, body_sha256, request_id, idlen, now_ms, expires_ms, result, err,
                                         errlen);
    sg_store_unlock(store);
    return ret;
}
