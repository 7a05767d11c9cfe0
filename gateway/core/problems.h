/*
 * Every problem the gateway answers (RFC 9457), as one table: a kind names its type (the URN
 * suffix), its status, its title and whether the client should retry (Retry-After, seconds).
 * A kind has exactly one status and one title wherever it is raised; the detail and the field
 * are per response. No HTTP library types: the table is unit-tested on its own.
 */
#ifndef SG_PROBLEMS_H
#define SG_PROBLEMS_H

#define SG_PROBLEM_TYPE_PREFIX "urn:streamgate:problem:"

/* X(KIND, type, status, title, retry_after_s) */
#define SG_PROBLEM_TABLE(X)                                                                                                        \
    X(BAD_REQUEST, "bad-request", 400, "Bad Request", 0)                                                                           \
    X(INVALID_JSON, "invalid-json", 400, "Invalid JSON", 0)                                                                        \
    X(MISSING_KEY, "missing-key", 400, "Missing Key", 0)                                                                           \
    X(INVALID_KEY, "invalid-key", 400, "Invalid Key", 0)                                                                           \
    X(INVALID_PATH, "invalid-path", 400, "Invalid Path", 0)                                                                        \
    X(INVALID_IDEMPOTENCY_KEY, "invalid-idempotency-key", 400, "Invalid Idempotency-Key", 0)                                       \
    X(INVALID_QUERY, "invalid-query", 400, "Invalid Query", 0)                                                                     \
    X(INVALID_CONSISTENCY_TOKEN, "invalid-consistency-token", 400, "Invalid Consistency-Token", 0)                                 \
    X(INVALID_CURSOR, "invalid-cursor", 400, "Invalid Cursor", 0)                                                                  \
    X(MISSING_CREDENTIAL, "missing-credential", 401, "Missing Credential", 0)                                                      \
    X(INVALID_CREDENTIAL, "invalid-token", 401, "Invalid Token", 0)                                                                \
    X(INSUFFICIENT_SCOPE, "insufficient-scope", 403, "Insufficient Scope", 0)                                                      \
    X(INVALID_FRAMING, "invalid-framing", 400, "Invalid Message Framing", 0)                                                       \
    X(ORIGIN_NOT_ALLOWED, "origin-not-allowed", 403, "Origin Not Allowed", 0)                                                      \
    X(FORBIDDEN, "forbidden", 403, "Forbidden", 0)                                                                                 \
    X(NOT_FOUND, "not-found", 404, "Not Found", 0)                                                                                 \
    X(UNKNOWN_REQUEST, "unknown-request", 404, "Unknown Request", 0)                                                               \
    X(UNKNOWN_TABLE, "unknown-table", 404, "Unknown Table", 0)                                                                     \
    X(NO_SUCH_ROW, "no-such-row", 404, "No Such Row", 0)                                                                           \
    X(UNKNOWN_SUBJECT, "unknown-subject", 404, "Unknown Subject", 0)                                                               \
    X(UNKNOWN_VERSION, "unknown-version", 404, "Unknown Version", 0)                                                               \
    X(UNKNOWN_SCHEMA, "unknown-schema", 404, "Unknown Schema", 0)                                                                  \
    X(NO_SUBJECT_LEVEL, "no-subject-level", 404, "No Subject Level", 0)                                                            \
    X(REGISTRY_EXTERNAL, "registry-external", 404, "Registry Not Served Here", 0)                                                  \
    X(METHOD_NOT_ALLOWED, "method-not-allowed", 405, "Method Not Allowed", 0)                                                      \
    X(IDEMPOTENCY_KEY_IN_FLIGHT, "idempotency-key-in-flight", 409, "Request In Flight", 1)                                         \
    X(INCOMPATIBLE_SCHEMA, "incompatible-schema", 409, "Incompatible Schema", 0)                                                   \
    X(BODY_TOO_LARGE, "body-too-large", 413, "Content Too Large", 0)                                                               \
    X(SCHEMA_TOO_LARGE, "schema-too-large", 413, "Schema Too Large", 0)                                                            \
    X(UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", 415, "Unsupported Media Type", 0)                                          \
    X(RANGE_NOT_SATISFIABLE, "range-not-satisfiable", 416, "Range Not Satisfiable", 0)                                             \
    X(EXPECTATION_FAILED, "expectation-failed", 417, "Expectation Failed", 0)                                                      \
    X(SCHEMA_VIOLATION, "schema-violation", 422, "Schema Violation", 0)                                                            \
    X(IDEMPOTENCY_KEY_REUSED, "idempotency-key-reused", 422, "Idempotency-Key Reused", 0)                                          \
    X(INVALID_SCHEMA, "invalid-schema", 422, "Invalid Schema", 0)                                                                  \
    X(UNSUPPORTED_SCHEMA_TYPE, "unsupported-schema-type", 422, "Unsupported Schema Type", 0)                                       \
    X(UNSUPPORTED_REFERENCES, "unsupported-references", 422, "Unsupported References", 0)                                          \
    X(INVALID_SUBJECT, "invalid-subject", 422, "Invalid Subject", 0)                                                               \
    X(INVALID_VERSION, "invalid-version", 422, "Invalid Version", 0)                                                               \
    X(INVALID_COMPATIBILITY_LEVEL, "invalid-compatibility-level", 422, "Invalid Compatibility Level", 0)                           \
    X(REGISTRY_LIMIT, "registry-limit", 422, "Registry Limit", 0)                                                                  \
    X(RATE_LIMITED, "rate-limited", 429, "Too Many Requests", 0)                                                                   \
    X(HEADERS_TOO_LARGE, "headers-too-large", 431, "Request Header Fields Too Large", 0)                                           \
    X(REPLY_TOO_LARGE, "reply-too-large", 502, "Reply Too Large", 0)                                                               \
    X(UNDECODABLE_REPLY, "undecodable-reply", 502, "Undecodable Reply", 0)                                                         \
    X(INVALID_REPLY, "invalid-reply", 502, "Invalid Reply", 0)                                                                     \
    X(SHUTTING_DOWN, "shutting-down", 503, "Shutting Down", 1)                                                                     \
    X(NOT_READY, "not-ready", 503, "Not Ready", 1)                                                                                 \
    X(KAFKA_UNAVAILABLE, "kafka-unavailable", 503, "Kafka Unavailable", 1)                                                         \
    X(PRODUCER_QUEUE_FULL, "producer-queue-full", 503, "Producer Queue Full", 1)                                                   \
    X(OUTCOME_UNKNOWN, "outcome-unknown", 503, "Outcome Unknown", 2)                                                               \
    X(SCHEMA_UNAVAILABLE, "schema-unavailable", 503, "Schema Unavailable", 1)                                                      \
    X(TOO_MANY_PENDING, "too-many-pending", 503, "Too Many Pending Requests", 1)                                                   \
    X(TOO_MANY_PENDING_BYTES, "too-many-pending-bytes", 503, "Too Many Pending Bytes", 1)                                          \
    X(TOO_MANY_CONNECTIONS, "too-many-connections", 503, "Too Many Connections", 1)                                                \
    X(STORE_UNAVAILABLE, "store-unavailable", 503, "Store Unavailable", 1)                                                         \
    X(NOT_CAUGHT_UP, "not-caught-up", 503, "Not Caught Up", 1)                                                                     \
    X(OWNER_UNAVAILABLE, "owner-unavailable", 503, "Owner Unavailable", 1)                                                         \
    X(PARTITION_MOVED, "partition-moved", 503, "Partition Moved", 1)                                                               \
    X(REGISTRY_UNAVAILABLE, "registry-unavailable", 503, "Registry Unavailable", 1)                                                \
    X(REGISTRY_NOT_READY, "registry-not-ready", 503, "Registry Not Ready", 1)                                                      \
    X(KEYS_UNAVAILABLE, "keys-unavailable", 503, "Authentication Keys Unavailable", 5)

typedef enum {
#define SG_PROBLEM_ENUM(kind, type, status, title, retry_after) SG_PROBLEM_##kind,
    SG_PROBLEM_TABLE(SG_PROBLEM_ENUM)
#undef SG_PROBLEM_ENUM
        SG_PROBLEM_COUNT
} sg_problem_t;

typedef struct st_sg_problem_info_t {
    const char *type; /* appended to SG_PROBLEM_TYPE_PREFIX */
    int status;
    const char *title;
    int retry_after_s; /* > 0: answered with Retry-After */
} sg_problem_info_t;

/** The row of `kind` (static). */
const sg_problem_info_t *sg_problem_info(sg_problem_t kind);

#endif
