/*
 * streamgate configuration model.
 *
 * The config file (YAML, or JSON, which libyaml reads as YAML flow style) is parsed once at
 * start into this immutable, validated model. Every other module reads it through `const
 * sg_conf_t *` and never changes it. Unlike the rest of the code base the model is a set of
 * plain structs rather than opaque types: it is a value, read on every thread, and getters
 * would only add noise. Everything in it is owned by the sg_conf_t and freed by
 * sg_conf_destroy().
 */
#ifndef SG_CONF_H
#define SG_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SG_CONF_MAX_THREADS 64
#define SG_CONF_MAX_PATH_PARAMS 16

typedef enum {
    SG_KEY_NONE = 0,
    SG_KEY_PATH,   /* name = path parameter name */
    SG_KEY_BODY,   /* name = RFC 6901 JSON pointer, e.g. "/customer/id" ("" = whole body) */
    SG_KEY_HEADER, /* name = header name, lower-cased */
    SG_KEY_CLAIM,  /* name = a string claim of the caller's credential (needs auth; never on a public endpoint) */
} sg_key_source_t;

typedef struct st_sg_key_spec_t {
    sg_key_source_t source;
    char *name; /* NULL for SG_KEY_NONE */
} sg_key_spec_t;

typedef enum { SG_FORMAT_JSON = 0, SG_FORMAT_AVRO } sg_format_t;

typedef enum { SG_LOG_FORMAT_TEXT = 0, SG_LOG_FORMAT_JSON } sg_log_format_t;

/* --- Authentication and rate limits (DESIGN §6) -------------------------------------------- */

/* What a rate limit counts separately: each principal, or each client address. */
typedef enum { SG_RATE_PER_PRINCIPAL = 0, SG_RATE_PER_IP } sg_rate_per_t;

/* An http:// or https:// URL, split once by the loader. */
typedef struct st_sg_url_t {
    char *text; /* as written; NULL when the key is absent */
    bool tls;   /* https */
    char *host; /* name or address (IPv6 without brackets) */
    uint16_t port;
    char *path; /* "/..." including any query; "/" when the URL has none */
} sg_url_t;

typedef struct st_sg_rate_t {
    uint32_t count;    /* tokens per period; 0 = off (only where "off" is allowed) */
    int64_t period_ms; /* 1000 (/s), 60000 (/m) or 3600000 (/h) */
} sg_rate_t;

/* Who may call an endpoint: on routes, queries and tables. Without `auth` both stay empty. */
typedef struct st_sg_access_conf_t {
    char **scopes; /* every one is required; none = any valid credential */
    size_t n_scopes;
    bool is_public; /* public: true - no credential needed (never with scopes) */
} sg_access_conf_t;

typedef struct st_sg_api_key_conf_t {
    char *name;         /* the principal */
    uint8_t sha256[32]; /* SHA-256 of the key; the key itself is never in the config */
    char **scopes;
    size_t n_scopes;
    unsigned line;
} sg_api_key_conf_t;

typedef struct st_sg_jwt_conf_t {
    char *issuer;                /* iss must equal it */
    char *audience;              /* aud (string or array) must contain it */
    char *jwks_file;             /* JWKS document on disk (resolved relative to the config file), or */
    sg_url_t jwks_url;           /* http:// or https:// URL, fetched by the auth module's own thread */
    char *jwks_ca_file;          /* extra CA bundle for an https jwks_url (the system store is always used) */
    int64_t jwks_refresh_ms;     /* periodic refresh of the key set, default 5m */
    int64_t jwks_min_refresh_ms; /* at most one refresh per this, e.g. on an unknown kid; default 5s */
    int64_t jwks_timeout_ms;     /* deadline of one fetch (connect + TLS + read), default 5s */
    char **algorithms;           /* allow-list, canonical upper case; default RS256, ES256 */
    size_t n_algorithms;
    int64_t leeway_ms;     /* clock skew allowed on exp, nbf and iat; default 30s */
    char *scopes_claim;    /* default "scope": space-separated string or array of strings */
    char *principal_claim; /* default "sub" */
    char *hmac_secret;     /* the only key HS256/384/512 tokens are checked with (>= 32 bytes) */
} sg_jwt_conf_t;

typedef struct st_sg_auth_conf_t {
    bool has_jwt;
    sg_jwt_conf_t jwt;
    sg_api_key_conf_t *api_keys; /* X-API-Key */
    size_t n_api_keys;
    char *principal_header; /* Kafka header carrying the principal, lower-cased; default streamgate-principal */
} sg_auth_conf_t;

typedef struct st_sg_rate_limit_conf_t {
    char *name;    /* policy name in RateLimit-Policy */
    char **routes; /* route names it applies to (together); none = every endpoint */
    size_t n_routes;
    sg_rate_per_t per;
    sg_rate_t rate;
    uint32_t burst; /* bucket size; default rate.count */
    unsigned line;
} sg_rate_limit_conf_t;

typedef struct st_sg_listen_conf_t {
    char *host;    /* numeric IPv4/IPv6 address or host name */
    uint16_t port; /* 0 = ephemeral (tests) */
    char *cert;    /* TLS certificate file, NULL for plain TCP */
    char *key;     /* TLS key file, NULL for plain TCP */
} sg_listen_conf_t;

typedef struct st_sg_kv_t {
    char *key;
    char *value;
} sg_kv_t;

typedef struct st_sg_topic_conf_t {
    char *name;
    int32_t partitions;  /* >= 1, default 1 */
    int16_t replication; /* >= 1, default 1 (capped to the broker count in embedded mode) */
    sg_kv_t *config;     /* topic configs for CreateTopics (cleanup.policy, ...), in file order */
    size_t n_config;
} sg_topic_conf_t;

typedef struct st_sg_schema_conf_t {
    char *name;
    char *file; /* resolved relative to the config file's directory */
} sg_schema_conf_t;

typedef struct st_sg_reply_conf_t {
    char *topic;
    int64_t timeout_ms;     /* default 10s */
    int64_t max_timeout_ms; /* default 60s, >= timeout_ms */
    char **headers;         /* reply headers copied to the HTTP response (lower-cased) */
    size_t n_headers;
    int32_t *partitions; /* pinned reply partitions; none = every partition */
    size_t n_partitions;
    /* Event header names (defaults: Spring Kafka's, SG_HEADER_*) */
    char *correlation_header;     /* the request id, on requests and replies */
    char *reply_topic_header;     /* where to reply */
    char *reply_partition_header; /* which partition to reply to (pinned partitions only) */
} sg_reply_conf_t;

#define SG_HEADER_CORRELATION "kafka_correlationId"
#define SG_HEADER_REPLY_TOPIC "kafka_replyTopic"
#define SG_HEADER_REPLY_PARTITION "kafka_replyPartition"

typedef struct st_sg_route_conf_t {
    char *name;
    char *method; /* upper-case: GET POST PUT PATCH DELETE */
    char *path;   /* template, e.g. "/orders/{id}" */
    char *topic;
    sg_key_spec_t key;
    char *schema; /* NULL or a name from schemas */
    sg_format_t format;
    bool has_reply;
    sg_reply_conf_t reply;
    sg_access_conf_t access; /* scopes, public */
    unsigned line;           /* line of the route in the config file, for messages */
} sg_route_conf_t;

/* Where a table's partitions live across a deployment's instances (DESIGN §8). */
typedef enum { SG_PLACEMENT_GLOBAL = 0, SG_PLACEMENT_PARTITIONED } sg_table_placement_t;
/* The header carrying a route's request id: its reply's correlation_header, else the default. */
static inline const char *sg_route_correlation_header(const sg_route_conf_t *route)
{
    return route->has_reply && route->reply.correlation_header != NULL ? route->reply.correlation_header : SG_HEADER_CORRELATION;
}

typedef struct st_sg_table_conf_t {
    char *name;
    char *topic;
    sg_table_placement_t placement; /* global: every instance has every partition */
    int standbys;             /* partitioned: partitions of this many other instances kept as copies */
    sg_access_conf_t access; /* scopes (instead of tables:read), public */
    unsigned line;
} sg_table_conf_t;

typedef struct st_sg_query_conf_t {
    char *path; /* template */
    char *table;
    sg_key_spec_t key;
    sg_access_conf_t access; /* scopes, public */
    unsigned line;
} sg_query_conf_t;

/* A directory served as static files under a URL path (after routes and built-ins). */
typedef struct st_sg_static_conf_t {
    char *path; /* "/" or "/a/b" (no trailing '/', no parameters, not under a reserved prefix) */
    char *dir;  /* an existing directory, resolved relative to the config file's directory */
    unsigned line;
} sg_static_conf_t;

typedef struct st_sg_conf_t {
    char *file; /* path of the config file as given */

    sg_listen_conf_t *listen;
    size_t n_listen;
    int threads; /* 1..SG_CONF_MAX_THREADS, default 2 */
    char *data_dir;

    struct {
        bool embedded;              /* brokers: embedded (the default) */
        char *brokers;              /* bootstrap list when !embedded, else NULL */
        int embedded_brokers;       /* embedded.brokers, 1..16, default 1 */
        bool create_topics;         /* create declared topics through the Admin API (real cluster) */
        int64_t produce_timeout_ms; /* message.timeout.ms of the producer, default 10s */
        sg_kv_t *properties;        /* passed to librdkafka as-is, in file order */
        size_t n_properties;
    } kafka;

    sg_topic_conf_t *topics;
    size_t n_topics;
    sg_schema_conf_t *schemas;
    size_t n_schemas;
    sg_route_conf_t *routes;
    size_t n_routes;
    sg_table_conf_t *tables;
    size_t n_tables;
    sg_query_conf_t *queries;
    size_t n_queries;
    sg_static_conf_t *statics; /* static: served by H2O's file handler when no route matches */
    size_t n_statics;

    struct {
        uint64_t body_bytes;           /* default 1 MiB */
        uint64_t header_bytes;         /* default 64 KiB */
        uint32_t pending;              /* requests waiting on Kafka at once, all kinds; default 100000 */
        uint64_t inflight_bytes;       /* event bytes produced and not yet acknowledged; default 256 MiB */
        uint32_t connections;          /* client connections at once; 0 (default): from RLIMIT_NOFILE */
        int64_t write_timeout_ms;      /* a connection's write may stall this long (30s) */
        uint64_t queued_bytes;         /* bytes written to a connection and not yet read by its client (16 MiB) */
        int64_t token_wait_ms;         /* a table read waits this long for its token by default (5s) */
        int64_t token_wait_max_ms;     /* and at most this long with Prefer: wait (30s) */
        uint64_t table_cache_bytes;    /* RocksDB block and row caches of the tables, together (512 MiB) */
        sg_rate_t registry_write_rate; /* per client address, with or without auth; default 10/s */
        uint32_t registry_write_burst; /* default 20 */
    } limits;

    struct {
        char **origins; /* exact origins, or a single "*" */
        size_t n_origins;
        int64_t max_age_s; /* Access-Control-Max-Age, default 600 */
    } cors;

    int64_t shutdown_timeout_ms; /* grace for in-flight requests on SIGTERM, default 10s */

    struct {
        char *secret;         /* request-id MAC key shared by a deployment; NULL: the deployment's own,
                               * agreed through its internal topic (bridge/sg_deployment.h) */
        int64_t retention_ms; /* how long request outcomes and idempotency keys are kept, default 1h */
    } requests;

    /* The instances that share internal topics (DESIGN §8; bridge/sg_deployment.h). */
    struct {
        char *name;         /* default "default": topics _streamgate.<name> and _streamgate.<name>.idempotency */
        char *instance;     /* this instance's name; NULL: the one made once in <data_dir>/instance.id */
        sg_url_t advertise; /* how other instances reach this one; .text NULL: from the first listen address */
    } deployment;

    struct {
        int level;           /* an sg_log_level_t: 0 error, 1 warn, 2 info (default), 3 debug */
        int format;          /* an sg_log_format_t: the gateway's own lines as text (default) or JSON */
        char *access;        /* access log: a file (relative to the working directory), "-" for
                              * standard output; NULL: none */
        char *access_format; /* H2O's access-log format directives */
    } log;

    struct {
        char *url; /* external Confluent-compatible registry "http://HOST[:PORT][/PREFIX]" (no trailing
                    * '/'); NULL: the built-in registry serves /registry from the _schemas topic */
    } schema_registry;

    bool has_auth; /* auth: present - every endpoint but /healthz, /readyz and public ones needs a credential */
    sg_auth_conf_t auth;
    sg_rate_limit_conf_t *rate_limits;
    size_t n_rate_limits;
} sg_conf_t;

/** The path prefixes the built-in endpoints own ("/requests", "/tables", ...; NULL-terminated):
 * no route or query may be under one (config check), and the gateway serves each (its dispatch).
 * A path is under a prefix when it is the prefix or continues with '/'. */
extern const char *const sg_conf_reserved_prefixes[];

/** Loads and validates a config file. Returns owned model, or NULL with a message of the form
 * "FILE:LINE: KEY: what is wrong" written to err. Any thread. */
sg_conf_t *sg_conf_load(const char *path, char *err, size_t errlen);

/** As sg_conf_load, from a string; `name` is used as the file name in messages and relative
 * schema paths resolve against the current directory. */
sg_conf_t *sg_conf_load_string(const char *name, const char *text, size_t len, char *err, size_t errlen);

/** Frees a model; NULL is a no-op. */
void sg_conf_destroy(sg_conf_t *conf);

/** Parses "250ms", "10s", "2m", "1h" or a bare integer of milliseconds. Returns 0 or -1. */
int sg_conf_parse_duration_ms(const char *text, int64_t *out);

/** Parses "512", "64KiB", "1MiB", "1GiB", "10KB", "1MB" (KB = 1000). Returns 0 or -1. */
int sg_conf_parse_size(const char *text, uint64_t *out);

/** Writes the property reference (key, type, default, doc) as Markdown to `out` (FILE *). */
void sg_conf_dump_reference(void *out);

#endif
