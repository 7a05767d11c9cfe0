/*
 * Private to the registry (sg_registry.h), which is split along its seams:
 *   registry.c          lifecycle (create, start, readiness, destroy) and blocking registration
 *   registry_state.c    schema objects, the state (subjects, versions, ids, levels, limits), the
 *                       reads, and the deterministic fold that decoded `_schemas` records feed
 *   registry_log.c      the `_schemas` record format, the claim protocol, the operation queue,
 *                       the registry thread and its Kafka clients
 *   registry_external.c an external registry: its id cache and registration over HTTP
 *   registry_http.c     the small blocking HTTP/1.1 client registry_external.c uses
 *   registry_config.c   the config's schema files: parsed at create, registered at start
 * The struct below is shared by all of them; each field says which part owns it.
 */
#ifndef SG_REGISTRY_INT_H
#define SG_REGISTRY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <librdkafka/rdkafka.h>

#include "sg_log.h"
#include "sg_registry.h"

#define SG_REG_CACHE_MAX 10000 /* external mode: schemas kept */
/* Parsed trees (Avro-C's and Jansson's, 25-45x the text) kept for schemas that are not pinned:
 * at most this many, and this much of their canonical text. */
#define SG_REG_AVRO_CACHE_ENTRIES 64
#define SG_REG_AVRO_CACHE_TEXT_BYTES (1024 * 1024)

typedef struct st_sg_reg_avro_cache_t sg_reg_avro_cache_t;

struct st_sg_registry_schema_t {
    uint32_t id;
    char *text; /* canonical */
    size_t len;
    uint64_t fingerprint;
    /* The parsed schema kept for good (config and route schemas, and whoever asked through
     * sg_registry_schema_avro): written once, under the cache's lock, then read lock-free. */
    _Atomic(sg_avro_schema_t *) pinned;
    sg_reg_avro_cache_t *cache; /* the registry's LRU of parsed schemas; NULL: not in a registry */
    /* under cache->lock: the LRU's parse of this schema, its users, its place in the list */
    sg_avro_schema_t *cached;
    size_t users;
    struct st_sg_registry_schema_t *lru_prev, *lru_next;
};

/* A least-recently-used set of parsed schemas, bounded by SG_REG_AVRO_CACHE_*; one in use
 * (users > 0) is never evicted. */
struct st_sg_reg_avro_cache_t {
    pthread_mutex_t lock;
    sg_registry_schema_t *head, *tail; /* most recently used first */
    size_t entries, text_bytes;
};

typedef struct {
    char *name;
    uint32_t *ids; /* version V has ids[V-1] */
    size_t n_versions;
    int has_level;
    sg_compat_t level;
} sg_subject_t;

typedef struct st_sg_reg_op_t sg_reg_op_t;
typedef struct st_sg_reg_miss_t sg_reg_miss_t;

/* ---- the external registry's HTTP client (registry_http.c) --------------------------------- */

/* Largest response body accepted from an external registry. */
#define SG_REG_HTTP_MAX_RESPONSE (1024 * 1024)

#define SG_REG_URL_MAX_ADDRS 4

typedef struct st_sg_reg_url_t {
    char host[256];
    uint16_t port;
    char prefix[512]; /* "" or "/path" without a trailing '/' */
    /* The host's addresses, resolved once by sg_reg_url_parse: getaddrinfo has no deadline, so
     * the threads that fetch schemas never call it (0 addresses: resolved at each connect). */
    struct sockaddr_storage addrs[SG_REG_URL_MAX_ADDRS];
    socklen_t addr_lens[SG_REG_URL_MAX_ADDRS];
    int families[SG_REG_URL_MAX_ADDRS];
    size_t n_addrs;
} sg_reg_url_t;

/** Splits "http://HOST[:PORT][/PREFIX]" and resolves HOST (blocking: call at start-up). Returns 0
 * or -1 (malformed); a host that does not resolve yet is resolved again at each connection. */
int sg_reg_url_parse(const char *url, sg_reg_url_t *out);

/** One request (Connection: close) to url->prefix + path, at most timeout_ms in all. `body` may be
 * NULL. Returns 0 with *status and *resp (owned, NUL-terminated, free()) of *resp_len bytes, or -1
 * with err (connection, deadline, oversized or malformed response). Never on an event loop. */
int sg_reg_http_request(const sg_reg_url_t *url, const char *method, const char *path, const char *body, size_t body_len,
                        int64_t timeout_ms, int *status, char **resp, size_t *resp_len, char *err, size_t errlen);

/* ---- the registry -------------------------------------------------------------------------- */

struct st_sg_registry_t {
    const sg_conf_t *conf;

    /* registry_state.c. One rwlock guards the state; only the registry thread (or the caller of
     * sg_registry_apply) and the external cache write it. */
    pthread_rwlock_t lock;
    sg_registry_schema_t **schemas; /* built in: by id-1; external: a cache in fetch order */
    size_t n_schemas, cap_schemas;
    size_t schema_bytes; /* canonical text of every schema: bounded by SG_REGISTRY_MAX_TOTAL_BYTES */
    sg_subject_t *subjects;
    size_t n_subjects, cap_subjects;
    sg_compat_t global_level;
    sg_reg_avro_cache_t avro_cache;

    /* registry_config.c */
    sg_registry_schema_t **config_schemas;          /* per conf->schemas, parsed at create, id 0 */
    const sg_registry_schema_t **config_registered; /* per conf->schemas, once a route registered it */
    const sg_registry_schema_t **route_schemas;     /* per conf->routes */

    /* registry_external.c (url != NULL: external mode) */
    char *url;
    sg_reg_url_t parsed_url;
    pthread_mutex_t fetch_mutex; /* one fetch at a time; guards misses */
    sg_reg_miss_t *misses;
    size_t n_misses;

    /* registry_log.c (built in) */
    rd_kafka_t *producer;
    rd_kafka_topic_t *producer_topic;
    rd_kafka_t *consumer;
    rd_kafka_queue_t *queue;
    pthread_t thread;
    int thread_started;
    atomic_int stopping;
    atomic_int ready;
    int64_t next_offset;        /* registry thread: next offset to apply */
    int64_t start_high;         /* high watermark at start: the readiness target */
    sg_log_once_t ignored_once; /* a malformed record was logged */
    pthread_mutex_t ops_mutex;
    sg_reg_op_t *ops_head, *ops_tail;
    sg_reg_op_t *inflight; /* registry thread only */
};

/* registry.c */

/** A registry with an empty state and nothing started (the base of every kind). */
sg_registry_t *sg_reg_alloc(void);

/* registry_state.c */

/** FNV-1a, 64 bits: a fingerprint for record keys and a fast inequality test, never an identity. */
uint64_t sg_reg_fingerprint(const char *text, size_t len);
#define SG_REG_NEW_PIN 1       /* keep the parsed schema (else parsed again on demand) */
#define SG_REG_NEW_CANONICAL 2 /* text is already canonical (NUL-terminated at len) */
/** Parses a text into a schema object (canonical text; the Avro schema is checked, and kept only
 * with SG_REG_NEW_PIN). Returns owned, or NULL with err (over the size limit, not JSON, not Avro). */
sg_registry_schema_t *sg_reg_schema_new(uint32_t id, const char *text, size_t len, int flags, char *err, size_t errlen);
void sg_reg_avro_cache_init(sg_reg_avro_cache_t *cache);
void sg_reg_avro_cache_dispose(sg_reg_avro_cache_t *cache);
/** Frees a schema object; NULL is a no-op. */
void sg_reg_schema_free(sg_registry_schema_t *schema);
/** The schema with this id (caller holds the lock). */
sg_registry_schema_t *sg_reg_by_id_locked(const sg_registry_t *reg, uint32_t id);
/** Appends a schema (taken) to the state (caller holds the write lock). */
void sg_reg_schema_add_locked(sg_registry_t *reg, sg_registry_schema_t *schema);
/** Whether a new subject would be over SG_REGISTRY_MAX_SUBJECTS. Any thread. */
int sg_reg_subjects_full(sg_registry_t *reg, const char *subject);
/** Folds a decoded SCHEMA claim (version `version` of `subject` is `text` with global id `id`)
 * into the state. Returns 1 when the claim wins, 0 when it loses (a normal race), -1 with err
 * when its schema does not parse. Registry thread (or a local registry's only thread). */
int sg_reg_state_claim(sg_registry_t *reg, const char *subject, int64_t version, int64_t id, const char *text, size_t len,
                       char *err, size_t errlen);
/** Folds a decoded CONFIG record: sets (or with `clear` removes) the level of `subject` (NULL:
 * the global one). Registry thread. */
void sg_reg_state_set_level(sg_registry_t *reg, const char *subject, sg_compat_t level, int clear);
/** Frees the state (schemas and subjects). */
void sg_reg_state_dispose(sg_registry_t *reg);

/* registry_log.c */

/** Creates the built-in registry's producer and consumer. Returns 0, or -1 with err. */
int sg_reg_log_create(sg_registry_t *reg, const char *bootstraps, char *err, size_t errlen);
/** Creates `_schemas` if missing, then starts the registry thread. Returns 0, or -1 with err. */
int sg_reg_log_start(sg_registry_t *reg, char *err, size_t errlen);
/** Stops the thread, abandons outstanding records, answers every pending operation with
 * SG_REG_E_UNAVAILABLE and destroys the clients. Idempotent. */
void sg_reg_log_stop(sg_registry_t *reg);

/* registry_external.c */

/** Sets up external mode for conf->schema_registry.url. Returns 0, or -1 with err. */
int sg_reg_external_create(sg_registry_t *reg, const char *url, char *err, size_t errlen);
/** Registers `text` under `subject` with the external registry. Returns SG_REG_OK with *id, or
 * SG_REG_E_* with err. Not on an event loop. */
int sg_reg_external_register(sg_registry_t *reg, const char *subject, const char *text, size_t len, int64_t timeout_ms,
                             uint32_t *id, char *err, size_t errlen);
/** Frees what external mode holds. */
void sg_reg_external_dispose(sg_registry_t *reg);

/* registry_config.c */

/** Reads and parses every config schema file. Returns 0, or -1 with err naming the file. */
int sg_reg_config_load(sg_registry_t *reg, char *err, size_t errlen);
/** Frees the parsed config schemas. */
void sg_reg_config_dispose(sg_registry_t *reg);

#endif
