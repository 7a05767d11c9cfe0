/*
 * The schema registry: Avro schemas by global id, subjects -> versions -> id, and compatibility
 * levels, compatible with Confluent's Schema Registry (its REST subset is served by
 * gateway/registry.c; this module knows no HTTP server).
 *
 * Built in (the default), the state is the fold of the compacted `_schemas` topic, which every
 * instance reads from the beginning on its own registry thread (no consumer group) and applies
 * in offset order. A registration checks the state, then produces a record that claims the next
 * version (and the schema's global id: the existing one when the schema is known under any
 * subject, else max+1), and answers once the registry thread has applied that offset. Applying
 * is deterministic: the first record in offset order that claims a version wins, later
 * conflicting claims are ignored by every instance alike (the loser retries), so ids are the
 * same on every instance and after every restart.
 *
 * External (`schema_registry.url`), the registry is a client of another Confluent-compatible
 * registry: config schemas are registered there over HTTP at start, and unknown ids are fetched
 * (blocking, bounded, cached; failures negatively cached for a few seconds).
 *
 * Threads: every read is safe from any thread and never blocks on I/O, except the "fetch"
 * variant (external mode), which must not be called on an event loop. A published schema is
 * immutable and lives until sg_registry_destroy(): callers may keep the pointer. Its parsed form
 * is not kept for every schema (memory): see sg_registry_schema_avro_get.
 */
#ifndef SG_REGISTRY_H
#define SG_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sg_avro.h"
#include "sg_compat.h"
#include "sg_conf.h"

/* The compacted topic holding the built-in registry's log (1 partition). */
#define SG_REGISTRY_TOPIC "_schemas"
/* Limits: schema text, subject name, versions per subject, subjects, schemas. */
#define SG_REGISTRY_MAX_SCHEMA_BYTES (256 * 1024)
#define SG_REGISTRY_MAX_SUBJECT_LEN 255
#define SG_REGISTRY_MAX_VERSIONS 1000
#define SG_REGISTRY_MAX_SUBJECTS 10000
#define SG_REGISTRY_MAX_SCHEMAS 100000
#define SG_REGISTRY_MAX_TOTAL_BYTES (32 * 1024 * 1024) /* canonical text of all schemas together */

typedef struct st_sg_registry_t sg_registry_t;
typedef struct st_sg_registry_schema_t sg_registry_schema_t;

enum {
    SG_REG_OK = 0,
    SG_REG_E_INVALID = -1,      /* not a valid Avro schema (or bad request document) */
    SG_REG_E_INCOMPATIBLE = -2, /* fails the compatibility level */
    SG_REG_E_NO_SUBJECT = -3,   /* unknown subject */
    SG_REG_E_NO_VERSION = -4,   /* unknown version of a known subject */
    SG_REG_E_NO_SCHEMA = -5,    /* unknown schema id */
    SG_REG_E_LIMIT = -6,        /* a registry limit (versions per subject, subjects, schemas) */
    SG_REG_E_UNAVAILABLE = -7,  /* Kafka or the external registry did not confirm in time */
    SG_REG_E_BAD_LEVEL = -8,    /* not a compatibility level */
    SG_REG_E_BAD_SUBJECT = -9,  /* subject name empty, too long or with characters not allowed */
    SG_REG_E_EXTERNAL = -10,    /* the operation needs the built-in registry */
    SG_REG_E_NO_LEVEL = -11,    /* the subject has no compatibility level of its own */
};

/* ---- a registered schema (immutable) ------------------------------------------------------- */

uint32_t sg_registry_schema_id(const sg_registry_schema_t *schema);
/** The canonical schema text (NUL-terminated, owned by the schema). */
const char *sg_registry_schema_text(const sg_registry_schema_t *schema, size_t *len);
/** The parsed schema for sg_avro_from_json / sg_avro_to_json, kept with the schema until the
 * registry is destroyed ("pinned"; parsed on the first call if it was not). For schemas used all
 * the time: config and route schemas are pinned at start, so this never parses on a loop for
 * them. Any thread. */
const sg_avro_schema_t *sg_registry_schema_avro(const sg_registry_schema_t *schema);

/** The parsed schema for a use now (decoding a value by its schema id): the pinned one, or one
 * from a small LRU of parsed schemas (SG_REG_AVRO_CACHE_*), parsed on a miss (milliseconds for
 * the largest). Every non-NULL result must be given back with sg_registry_schema_avro_put; NULL
 * with err only if the text does not parse (cannot happen for a registered schema). The registry
 * keeps only the canonical text of each schema: the trees take 25-45x that. Any thread. */
const sg_avro_schema_t *sg_registry_schema_avro_get(const sg_registry_schema_t *schema, char *err, size_t errlen);

/** Gives back a parsed schema from sg_registry_schema_avro_get. */
void sg_registry_schema_avro_put(const sg_registry_schema_t *schema, const sg_avro_schema_t *avro);

/* ---- lifecycle ----------------------------------------------------------------------------- */

/** Creates the registry for `conf` (borrowed; must outlive it) and parses every config schema
 * file (a bad one fails here, naming the file and the reason). Built in: Kafka clients on
 * `bootstraps` (nothing is read until sg_registry_start); external (conf->schema_registry.url):
 * an HTTP client. Returns owned registry, or NULL with err. Main thread. */
sg_registry_t *sg_registry_create(const sg_conf_t *conf, const char *bootstraps, char *err, size_t errlen);

/** A built-in registry without Kafka, fed only by sg_registry_apply (unit tests, tools). */
sg_registry_t *sg_registry_create_local(void);

/** Built in: creates `_schemas` (compacted, 1 partition) through the Admin API if missing, then
 * starts the registry thread. External: nothing to start. Returns 0 or -1 with err. Main thread. */
int sg_registry_start(sg_registry_t *reg, char *err, size_t errlen);

/** Waits (at most timeout_ms) until `_schemas` is applied up to the high watermark seen at start.
 * Returns 0, or -1 with err. Main thread. */
int sg_registry_wait_ready(sg_registry_t *reg, int64_t timeout_ms, char *err, size_t errlen);

/** 1 once caught up (external: always), else 0. Any thread. */
int sg_registry_is_ready(const sg_registry_t *reg);

/** The external registry's URL, or NULL for the built-in registry. Any thread. */
const char *sg_registry_external_url(const sg_registry_t *reg);

/** Stops the registry thread (pending operations complete with SG_REG_E_UNAVAILABLE) and frees
 * everything, schemas included. NULL is a no-op. Main thread, after the loops stopped. */
void sg_registry_destroy(sg_registry_t *reg);

/* ---- config schemas ------------------------------------------------------------------------ */

/** Parses every config schema file (conf->schemas) as sg_registry_create does, without any
 * client: for --check. Returns 0, or -1 with err naming the file and the reason. */
int sg_registry_check_files(const sg_conf_t *conf, char *err, size_t errlen);

/** Registers the schema of every route with `schema:` under "<route.topic>-value", in config
 * order, waiting at most timeout_ms in all (blocking: main thread, after wait_ready). An
 * incompatible change fails with both versions and the reason in err. Returns 0 or -1. */
int sg_registry_register_config(sg_registry_t *reg, int64_t timeout_ms, char *err, size_t errlen);

/** The registered schema of conf->routes[route_index] (with its id), or NULL when the route has
 * no schema or sg_registry_register_config has not succeeded. Any thread. */
const sg_registry_schema_t *sg_registry_route_schema(const sg_registry_t *reg, size_t route_index);

/** The parsed config schema called `name` (conf->schemas), registered or not; NULL if unknown.
 * Its id is 0 unless a route registered it. Any thread. */
const sg_registry_schema_t *sg_registry_config_schema(const sg_registry_t *reg, const char *name);

/* ---- reads --------------------------------------------------------------------------------- */

/** The schema with global id `id`, or NULL if not known (yet). Never blocks: for loop threads.
 * External mode: only ids already fetched or registered at start. */
const sg_registry_schema_t *sg_registry_lookup(sg_registry_t *reg, uint32_t id);

/** As sg_registry_lookup, but in external mode fetches an unknown id from the external registry
 * (blocking, at most a few seconds; failures are remembered for a few seconds). Returns NULL with
 * err when unknown or unreachable. Bridge/materializer threads only, never an event loop. */
const sg_registry_schema_t *sg_registry_fetch(sg_registry_t *reg, uint32_t id, char *err, size_t errlen);

/** How many subjects (with a version), schemas (distinct ids; external: the cached ones) and
 * versions (over every subject) the registry holds. Any thread. */
void sg_registry_counts(sg_registry_t *reg, size_t *subjects, size_t *schemas, size_t *versions);

/** Subject names, sorted: an owned JSON array. Any thread. */
json_t *sg_registry_subjects_json(sg_registry_t *reg);

/** Versions of a subject: an owned JSON array, or NULL if the subject is unknown. Any thread. */
json_t *sg_registry_versions_json(sg_registry_t *reg, const char *subject);

/** Version `version` (-1: latest) of a subject. Returns SG_REG_OK with *schema and *version_out,
 * or SG_REG_E_NO_SUBJECT / SG_REG_E_NO_VERSION. Any thread. */
int sg_registry_get_version(sg_registry_t *reg, const char *subject, int version, const sg_registry_schema_t **schema,
                            int *version_out);

/** Looks `text` up under a subject (canonical comparison). Returns SG_REG_OK with *schema and
 * *version_out, SG_REG_E_NO_SUBJECT, SG_REG_E_NO_SCHEMA (not under it) or SG_REG_E_INVALID (err). */
int sg_registry_find(sg_registry_t *reg, const char *subject, const char *text, size_t len, const sg_registry_schema_t **schema,
                     int *version_out, char *err, size_t errlen);

/** The compatibility level of a subject (NULL: the global one). Returns SG_REG_OK, or
 * SG_REG_E_NO_LEVEL when the subject has none of its own. Any thread. */
int sg_registry_get_level(sg_registry_t *reg, const char *subject, sg_compat_t *level);

/** Checks `text` against version `version` (-1: latest) of a subject in the direction of the
 * subject's level (transitivity does not apply to a single version; NONE: compatible). Returns
 * SG_REG_OK (compatible), SG_REG_E_INCOMPATIBLE with the reason in err, SG_REG_E_INVALID,
 * SG_REG_E_NO_SUBJECT or SG_REG_E_NO_VERSION. Any thread (parses: bounded by the text limit). */
int sg_registry_check(sg_registry_t *reg, const char *subject, int version, const char *text, size_t len, char *err, size_t errlen);

/** Whether a subject name is acceptable: 1..SG_REGISTRY_MAX_SUBJECT_LEN bytes of
 * [A-Za-z0-9._:@+-]. Returns 1 or 0. */
int sg_registry_subject_ok(const char *subject, size_t len);

/* ---- writes -------------------------------------------------------------------------------- */

typedef struct st_sg_registry_result_t {
    int err;         /* SG_REG_OK or SG_REG_E_* */
    const char *msg; /* reason when err != 0; valid during the callback */
    uint32_t id;     /* registration: the schema's global id */
    int version;     /* registration: the version under the subject */
} sg_registry_result_t;

/** Called exactly once per accepted operation, on the registry thread. Must not block. */
typedef void (*sg_registry_done_cb)(void *opaque, const sg_registry_result_t *result);

/** Registers `text` (copied) under `subject`: answers the existing id and version when the
 * schema is already there, else checks compatibility and appends a version. Returns 0 (done_cb
 * will run with `opaque`), or SG_REG_E_EXTERNAL / SG_REG_E_UNAVAILABLE (it will not). Any thread;
 * never blocks. */
int sg_registry_register_async(sg_registry_t *reg, const char *subject, const char *text, size_t len, sg_registry_done_cb done_cb,
                               void *opaque);

/** sg_registry_check on the registry thread, so that neither the parse of a large schema nor the
 * compatibility walk runs on an event loop: done_cb gets SG_REG_OK (compatible),
 * SG_REG_E_INCOMPATIBLE (msg: the reason), SG_REG_E_INVALID (msg), SG_REG_E_NO_SUBJECT or
 * SG_REG_E_NO_VERSION. Queued behind a registration in flight (bounded by its deadline). Same
 * contract as sg_registry_register_async (SG_REG_E_EXTERNAL in external mode). */
int sg_registry_check_async(sg_registry_t *reg, const char *subject, int version, const char *text, size_t len,
                            sg_registry_done_cb done_cb, void *opaque);

/** sg_registry_find on the registry thread: done_cb gets SG_REG_OK with id and version,
 * SG_REG_E_NO_SUBJECT, SG_REG_E_NO_SCHEMA or SG_REG_E_INVALID (msg). Same contract. */
int sg_registry_find_async(sg_registry_t *reg, const char *subject, const char *text, size_t len, sg_registry_done_cb done_cb,
                           void *opaque);

/** Sets (or, with `clear`, removes) the compatibility level of a subject (NULL: the global one)
 * through the log. Same contract as sg_registry_register_async. */
int sg_registry_set_level_async(sg_registry_t *reg, const char *subject, sg_compat_t level, int clear, sg_registry_done_cb done_cb,
                                void *opaque);

/** Blocking registration (start-up, tools): built in through the log, external over HTTP.
 * Waits at most timeout_ms. Returns SG_REG_OK with *id and *version (external: version 0, the
 * external registry answers only the id), or SG_REG_E_* with err. Not on an event loop. */
int sg_registry_register(sg_registry_t *reg, const char *subject, const char *text, size_t len, int64_t timeout_ms, uint32_t *id,
                         int *version, char *err, size_t errlen);

/* ---- the log (built in) -------------------------------------------------------------------- */

/** Applies one `_schemas` record (key/value as produced; value NULL for a tombstone) at
 * `offset`, exactly as the registry thread does. Records that do not parse, or that lose to an
 * earlier record, are ignored. Returns 1 if the state changed, 0 if ignored. Registry thread
 * (or the only thread of a local registry). */
int sg_registry_apply(sg_registry_t *reg, const void *key, size_t keylen, const void *value, size_t valuelen, int64_t offset);

/** The record that claims `version` of `subject` with global id `id` for `text` (canonicalized),
 * as owned key and value strings (free()). Returns 0, or -1 with err (invalid schema). */
int sg_registry_schema_record(const char *subject, int version, uint32_t id, const char *text, size_t len, char **key, char **value,
                              char *err, size_t errlen);

/** The record that sets (value non-NULL) or clears (*value NULL) a level. Returns 0. */
int sg_registry_config_record(const char *subject, sg_compat_t level, int clear, char **key, char **value);

/** The id a new registration of `text` would claim (its existing id, else max+1) and the next
 * version of `subject`. Returns 0, or -1 with err (invalid schema). Any thread. */
int sg_registry_next_claim(sg_registry_t *reg, const char *subject, const char *text, size_t len, uint32_t *id, int *version,
                           char *err, size_t errlen);

/** Checks whether `text` may be registered under `subject` at its level (transitive levels check
 * every version, the others the latest). Returns SG_REG_OK, or SG_REG_E_INCOMPATIBLE /
 * SG_REG_E_INVALID with err. Any thread. */
int sg_registry_check_register(sg_registry_t *reg, const char *subject, const char *text, size_t len, char *err, size_t errlen);

#endif
