/*
 * The schema registry's state, its Kafka log and its external-registry client (sg_registry.h).
 *
 * State: schemas by global id (built in: ids are dense, id N at index N-1, because a record may
 * only claim an existing id or max+1), subjects with their versions (version V at index V-1),
 * and compatibility levels. One rwlock guards it; only the registry thread (or the caller of
 * sg_registry_apply) writes. A schema object, once published, is never changed or freed before
 * sg_registry_destroy, so readers keep pointers without holding the lock.
 *
 * The log (`_schemas`): keys and values are JSON close to Confluent's. A SCHEMA key names the
 * subject, version, claimed id and a fingerprint of the canonical text, so that two different
 * claims never share a key and compaction can never drop a winning claim in favour of a losing
 * one (equal keys carry equal records). Applying is a pure function of the records in offset
 * order: a claim wins if its version is the subject's next, the schema is not yet under the
 * subject, and its id is either the schema's existing id or the next free one (and the schema has
 * no other id). Every instance therefore agrees on every id.
 *
 * One operation is in flight at a time on the registry thread (check, produce, wait until the
 * record is applied, answer or retry), which keeps a single instance from racing itself; races
 * between instances are settled by the log as above, and the loser retries against the new state.
 */
#include "bridge_int.h"
#include "sg_registry.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "registry_int.h"

#define SG_REG_OP_TIMEOUT_MS 15000      /* an operation waits this long for its record to be applied */
#define SG_REG_PRODUCE_TIMEOUT_MS 10000 /* message.timeout.ms: a delivery report always comes first */
#define SG_REG_ATTEMPTS 10              /* claims lost to other instances before giving up */
#define SG_REG_POLL_MS 10
#define SG_REG_METADATA_TIMEOUT_MS 2000
#define SG_REG_HTTP_TIMEOUT_MS 5000
#define SG_REG_MISS_TTL_MS 5000 /* an external id that failed is not asked again for this long */
#define SG_REG_CACHE_MAX 10000  /* external mode: schemas kept */

struct st_sg_registry_schema_t {
    uint32_t id;
    char *text; /* canonical */
    size_t len;
    uint64_t fingerprint;
    sg_avro_schema_t *avro;
};

typedef struct {
    char *name;
    uint32_t *ids; /* version V has ids[V-1] */
    size_t n_versions;
    int has_level;
    sg_compat_t level;
} sg_subject_t;

typedef enum { OP_REGISTER, OP_LEVEL } op_kind_t;

typedef struct st_sg_reg_op_t {
    struct st_sg_reg_op_t *next;
    op_kind_t kind;
    char *subject; /* NULL: global level */
    char *text;
    size_t len;
    sg_compat_t level;
    int clear;
    sg_registry_done_cb done_cb;
    void *opaque;
    int64_t deadline_ms;
    int attempts;
    int produced, delivered;
    int delivery_failed;
    char delivery_err[256];
    int64_t offset;
} sg_reg_op_t;

typedef struct {
    uint32_t id;
    int64_t until_ms;
} sg_reg_miss_t;

struct st_sg_registry_t {
    const sg_conf_t *conf;
    pthread_rwlock_t lock;
    sg_registry_schema_t **schemas; /* built in: by id-1; external: a cache in fetch order */
    size_t n_schemas, cap_schemas;
    size_t schema_bytes; /* canonical text of every schema: bounded by SG_REGISTRY_MAX_TOTAL_BYTES */
    sg_subject_t *subjects;
    size_t n_subjects, cap_subjects;
    sg_compat_t global_level;
    int ignored_logged;

    /* config schemas */
    sg_registry_schema_t **config_schemas;          /* per conf->schemas, parsed at create, id 0 */
    const sg_registry_schema_t **config_registered; /* per conf->schemas, once a route registered it */
    const sg_registry_schema_t **route_schemas;     /* per conf->routes */

    /* external */
    char *url;
    sg_reg_url_t parsed_url;
    pthread_mutex_t fetch_mutex; /* one fetch at a time; guards misses */
    sg_reg_miss_t *misses;
    size_t n_misses;

    /* built in */
    char *bootstraps;
    rd_kafka_t *producer;
    rd_kafka_topic_t *producer_topic;
    rd_kafka_t *consumer;
    rd_kafka_queue_t *queue;
    pthread_t thread;
    int thread_started;
    atomic_int stopping;
    atomic_int ready;
    int64_t next_offset; /* registry thread: next offset to apply */
    int64_t start_high;  /* high watermark at start: the readiness target */
    int set_up;
    pthread_mutex_t ops_mutex;
    sg_reg_op_t *ops_head, *ops_tail;
    sg_reg_op_t *inflight; /* registry thread only */
};

_Noreturn static void reg_oom(void)
{
    fprintf(stderr, "streamgate: out of memory\n");
    abort();
}

static void *xcalloc(size_t n, size_t size)
{
    void *mem = calloc(n ? n : 1, size ? size : 1);
    if (mem == NULL)
        reg_oom();
    return mem;
}

static char *xstrndup(const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        reg_oom();
    memcpy(copy, text, len);
    copy[len] = '\0';
    return copy;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* FNV-1a, 64 bits: a fingerprint for keys and a fast inequality test, never an identity. */
static uint64_t fingerprint(const char *text, size_t len)
{
    uint64_t hash = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        hash ^= (unsigned char)text[i];
        hash *= 0x100000001b3ull;
    }
    return hash;
}

/* ---- levels and names ---------------------------------------------------------------------- */

int sg_registry_subject_ok(const char *subject, size_t len)
{
    if (subject == NULL || len == 0 || len > SG_REGISTRY_MAX_SUBJECT_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)subject[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != ':' && c != '@' && c != '+' && c != '-')
            return 0;
    }
    return 1;
}

/* ---- schema objects ------------------------------------------------------------------------ */

uint32_t sg_registry_schema_id(const sg_registry_schema_t *schema)
{
    return schema->id;
}

const char *sg_registry_schema_text(const sg_registry_schema_t *schema, size_t *len)
{
    if (len != NULL)
        *len = schema->len;
    return schema->text;
}

const sg_avro_schema_t *sg_registry_schema_avro(const sg_registry_schema_t *schema)
{
    return schema->avro;
}

/* Parses a text into a schema object (canonical text, Avro-C schema). NULL with err. */
static sg_registry_schema_t *schema_new(uint32_t id, const char *text, size_t len, char *err, size_t errlen)
{
    if (len > SG_REGISTRY_MAX_SCHEMA_BYTES) {
        snprintf(err, errlen, "the schema is larger than %d bytes", SG_REGISTRY_MAX_SCHEMA_BYTES);
        return NULL;
    }
    char *canonical = sg_schema_canonical(text, len, err, errlen);
    if (canonical == NULL)
        return NULL;
    size_t canonical_len = strlen(canonical);
    sg_avro_schema_t *avro = sg_avro_schema_parse(canonical, canonical_len, err, errlen);
    if (avro == NULL) {
        free(canonical);
        return NULL;
    }
    sg_registry_schema_t *schema = xcalloc(1, sizeof(*schema));
    schema->id = id;
    schema->text = canonical;
    schema->len = canonical_len;
    schema->fingerprint = fingerprint(canonical, canonical_len);
    schema->avro = avro;
    return schema;
}

static void schema_free(sg_registry_schema_t *schema)
{
    if (schema == NULL)
        return;
    sg_avro_schema_destroy(schema->avro);
    free(schema->text);
    free(schema);
}

static int same_text(const sg_registry_schema_t *schema, uint64_t fp, const char *canonical, size_t len)
{
    return schema->fingerprint == fp && schema->len == len && memcmp(schema->text, canonical, len) == 0;
}

/* ---- state (callers hold the lock) --------------------------------------------------------- */

static sg_registry_schema_t *by_id_locked(const sg_registry_t *reg, uint32_t id)
{
    if (reg->url == NULL)
        return id >= 1 && id <= reg->n_schemas ? reg->schemas[id - 1] : NULL;
    for (size_t i = 0; i < reg->n_schemas; i++)
        if (reg->schemas[i]->id == id)
            return reg->schemas[i];
    return NULL;
}

static sg_registry_schema_t *by_text_locked(const sg_registry_t *reg, const char *canonical, size_t len)
{
    uint64_t fp = fingerprint(canonical, len);
    for (size_t i = 0; i < reg->n_schemas; i++)
        if (same_text(reg->schemas[i], fp, canonical, len))
            return reg->schemas[i];
    return NULL;
}

static sg_subject_t *subject_locked(const sg_registry_t *reg, const char *name)
{
    for (size_t i = 0; i < reg->n_subjects; i++)
        if (strcmp(reg->subjects[i].name, name) == 0)
            return &reg->subjects[i];
    return NULL;
}

static sg_subject_t *subject_add_locked(sg_registry_t *reg, const char *name)
{
    if (reg->n_subjects == reg->cap_subjects) {
        reg->cap_subjects = reg->cap_subjects ? reg->cap_subjects * 2 : 16;
        reg->subjects = realloc(reg->subjects, reg->cap_subjects * sizeof(*reg->subjects));
        if (reg->subjects == NULL)
            reg_oom();
    }
    sg_subject_t *subject = &reg->subjects[reg->n_subjects++];
    memset(subject, 0, sizeof(*subject));
    subject->name = xstrndup(name, strlen(name));
    return subject;
}

static void schema_add_locked(sg_registry_t *reg, sg_registry_schema_t *schema)
{
    if (reg->n_schemas == reg->cap_schemas) {
        reg->cap_schemas = reg->cap_schemas ? reg->cap_schemas * 2 : 16;
        reg->schemas = realloc(reg->schemas, reg->cap_schemas * sizeof(*reg->schemas));
        if (reg->schemas == NULL)
            reg_oom();
    }
    reg->schemas[reg->n_schemas++] = schema;
    reg->schema_bytes += schema->len;
}

/* The version of a subject holding this canonical text, or 0. */
static int version_of_locked(const sg_registry_t *reg, const sg_subject_t *subject, const char *canonical, size_t len)
{
    uint64_t fp = fingerprint(canonical, len);
    for (size_t v = 0; subject != NULL && v < subject->n_versions; v++) {
        const sg_registry_schema_t *schema = by_id_locked(reg, subject->ids[v]);
        if (schema != NULL && same_text(schema, fp, canonical, len))
            return (int)v + 1;
    }
    return 0;
}

/* ---- reads --------------------------------------------------------------------------------- */

const sg_registry_schema_t *sg_registry_lookup(sg_registry_t *reg, uint32_t id)
{
    pthread_rwlock_rdlock(&reg->lock);
    const sg_registry_schema_t *schema = by_id_locked(reg, id);
    pthread_rwlock_unlock(&reg->lock);
    return schema;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *sg_registry_subjects_json(sg_registry_t *reg)
{
    pthread_rwlock_rdlock(&reg->lock);
    const char **names = xcalloc(reg->n_subjects, sizeof(*names));
    size_t n = 0;
    for (size_t i = 0; i < reg->n_subjects; i++)
        if (reg->subjects[i].n_versions > 0)    /* a level alone does not make a subject */
            names[n++] = reg->subjects[i].name; /* names are never freed before destroy */
    pthread_rwlock_unlock(&reg->lock);
    qsort(names, n, sizeof(*names), cmp_names);
    json_t *list = json_array();
    if (list == NULL)
        reg_oom();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_string(names[i]));
    free(names);
    return list;
}

json_t *sg_registry_versions_json(sg_registry_t *reg, const char *subject_name)
{
    pthread_rwlock_rdlock(&reg->lock);
    const sg_subject_t *subject = subject_locked(reg, subject_name);
    json_t *list = NULL;
    if (subject != NULL && subject->n_versions > 0) {
        if ((list = json_array()) == NULL)
            reg_oom();
        for (size_t v = 1; v <= subject->n_versions; v++)
            json_array_append_new(list, json_integer((json_int_t)v));
    }
    pthread_rwlock_unlock(&reg->lock);
    return list;
}

int sg_registry_get_version(sg_registry_t *reg, const char *subject_name, int version, const sg_registry_schema_t **schema,
                            int *version_out)
{
    pthread_rwlock_rdlock(&reg->lock);
    const sg_subject_t *subject = subject_locked(reg, subject_name);
    int rc = SG_REG_OK;
    if (subject == NULL || subject->n_versions == 0) {
        rc = SG_REG_E_NO_SUBJECT;
    } else {
        size_t v = version < 0 ? subject->n_versions : (size_t)version;
        if (v < 1 || v > subject->n_versions) {
            rc = SG_REG_E_NO_VERSION;
        } else {
            *schema = by_id_locked(reg, subject->ids[v - 1]);
            *version_out = (int)v;
        }
    }
    pthread_rwlock_unlock(&reg->lock);
    return rc;
}

int sg_registry_find(sg_registry_t *reg, const char *subject_name, const char *text, size_t len,
                     const sg_registry_schema_t **schema, int *version_out, char *err, size_t errlen)
{
    if (len > SG_REGISTRY_MAX_SCHEMA_BYTES) {
        snprintf(err, errlen, "the schema is larger than %d bytes", SG_REGISTRY_MAX_SCHEMA_BYTES);
        return SG_REG_E_INVALID;
    }
    char *canonical = sg_schema_canonical(text, len, err, errlen);
    if (canonical == NULL)
        return SG_REG_E_INVALID;
    size_t canonical_len = strlen(canonical);
    pthread_rwlock_rdlock(&reg->lock);
    const sg_subject_t *subject = subject_locked(reg, subject_name);
    int rc = SG_REG_E_NO_SUBJECT;
    if (subject != NULL && subject->n_versions > 0) {
        int version = version_of_locked(reg, subject, canonical, canonical_len);
        rc = version > 0 ? SG_REG_OK : SG_REG_E_NO_SCHEMA;
        if (version > 0) {
            *schema = by_id_locked(reg, subject->ids[version - 1]);
            *version_out = version;
        }
    }
    pthread_rwlock_unlock(&reg->lock);
    free(canonical);
    return rc;
}

int sg_registry_get_level(sg_registry_t *reg, const char *subject_name, sg_compat_t *level)
{
    pthread_rwlock_rdlock(&reg->lock);
    int rc = SG_REG_OK;
    if (subject_name == NULL) {
        *level = reg->global_level;
    } else {
        const sg_subject_t *subject = subject_locked(reg, subject_name);
        if (subject != NULL && subject->has_level)
            *level = subject->level;
        else
            rc = SG_REG_E_NO_LEVEL;
    }
    pthread_rwlock_unlock(&reg->lock);
    return rc;
}

static sg_compat_t effective_level(sg_registry_t *reg, const char *subject_name)
{
    sg_compat_t level;
    if (sg_registry_get_level(reg, subject_name, &level) != SG_REG_OK)
        sg_registry_get_level(reg, NULL, &level);
    return level;
}

/* Checks `text` against one registered schema in the level's direction. */
static int check_one(sg_compat_t level, const sg_registry_schema_t *old, int old_version, const char *text, size_t len, char *err,
                     size_t errlen)
{
    int backward = level == SG_COMPAT_BACKWARD || level == SG_COMPAT_BACKWARD_TRANSITIVE || level == SG_COMPAT_FULL ||
                   level == SG_COMPAT_FULL_TRANSITIVE;
    int forward = level == SG_COMPAT_FORWARD || level == SG_COMPAT_FORWARD_TRANSITIVE || level == SG_COMPAT_FULL ||
                  level == SG_COMPAT_FULL_TRANSITIVE;
    char why[512];
    if (backward) {
        int ok = sg_schema_can_read(old->text, old->len, text, len, why, sizeof(why));
        if (ok < 0) {
            snprintf(err, errlen, "%s", why);
            return SG_REG_E_INVALID;
        }
        if (!ok) {
            snprintf(err, errlen, "%s: the new schema cannot read data written with version %d: %s", sg_compat_name(level),
                     old_version, why);
            return SG_REG_E_INCOMPATIBLE;
        }
    }
    if (forward) {
        int ok = sg_schema_can_read(text, len, old->text, old->len, why, sizeof(why));
        if (ok < 0) {
            snprintf(err, errlen, "%s", why);
            return SG_REG_E_INVALID;
        }
        if (!ok) {
            snprintf(err, errlen, "%s: version %d cannot read data written with the new schema: %s", sg_compat_name(level),
                     old_version, why);
            return SG_REG_E_INCOMPATIBLE;
        }
    }
    return SG_REG_OK;
}

int sg_registry_check(sg_registry_t *reg, const char *subject_name, int version, const char *text, size_t len, char *err,
                      size_t errlen)
{
    const sg_registry_schema_t *old;
    int old_version;
    int rc = sg_registry_get_version(reg, subject_name, version, &old, &old_version);
    if (rc != SG_REG_OK)
        return rc;
    char *canonical = sg_schema_canonical(text, len, err, errlen);
    if (canonical == NULL)
        return SG_REG_E_INVALID;
    rc = check_one(effective_level(reg, subject_name), old, old_version, canonical, strlen(canonical), err, errlen);
    free(canonical);
    return rc;
}

int sg_registry_check_register(sg_registry_t *reg, const char *subject_name, const char *text, size_t len, char *err, size_t errlen)
{
    sg_compat_t level = effective_level(reg, subject_name);
    if (level == SG_COMPAT_NONE)
        return SG_REG_OK;
    int transitive =
        level == SG_COMPAT_BACKWARD_TRANSITIVE || level == SG_COMPAT_FORWARD_TRANSITIVE || level == SG_COMPAT_FULL_TRANSITIVE;
    pthread_rwlock_rdlock(&reg->lock);
    const sg_subject_t *subject = subject_locked(reg, subject_name);
    size_t n = subject != NULL ? subject->n_versions : 0;
    const sg_registry_schema_t **olds = xcalloc(n, sizeof(*olds));
    for (size_t v = 0; v < n; v++)
        olds[v] = by_id_locked(reg, subject->ids[v]);
    pthread_rwlock_unlock(&reg->lock);
    int rc = SG_REG_OK;
    /* Newest first: the most relevant failure is reported. */
    for (size_t v = n; v > 0 && rc == SG_REG_OK; v--) {
        if (!transitive && v != n)
            break;
        rc = check_one(level, olds[v - 1], (int)v, text, len, err, errlen);
    }
    free(olds);
    return rc;
}

int sg_registry_next_claim(sg_registry_t *reg, const char *subject_name, const char *text, size_t len, uint32_t *id, int *version,
                           char *err, size_t errlen)
{
    char *canonical = sg_schema_canonical(text, len, err, errlen);
    if (canonical == NULL)
        return -1;
    pthread_rwlock_rdlock(&reg->lock);
    const sg_registry_schema_t *known = by_text_locked(reg, canonical, strlen(canonical));
    const sg_subject_t *subject = subject_locked(reg, subject_name);
    *id = known != NULL ? known->id : (uint32_t)reg->n_schemas + 1;
    *version = (subject != NULL ? (int)subject->n_versions : 0) + 1;
    pthread_rwlock_unlock(&reg->lock);
    free(canonical);
    return 0;
}

/* ---- the log ------------------------------------------------------------------------------- */

int sg_registry_schema_record(const char *subject, int version, uint32_t id, const char *text, size_t len, char **key, char **value,
                              char *err, size_t errlen)
{
    char *canonical = sg_schema_canonical(text, len, err, errlen);
    if (canonical == NULL)
        return -1;
    char fp[17];
    snprintf(fp, sizeof(fp), "%016" PRIx64, fingerprint(canonical, strlen(canonical)));
    json_t *key_doc = json_pack("{s:s, s:s, s:i, s:I, s:s, s:i}", "keytype", "SCHEMA", "subject", subject, "version", version, "id",
                                (json_int_t)id, "fingerprint", fp, "magic", 1);
    json_t *value_doc = json_pack("{s:s, s:i, s:I, s:s, s:b}", "subject", subject, "version", version, "id", (json_int_t)id,
                                  "schema", canonical, "deleted", 0);
    free(canonical);
    if (key_doc == NULL || value_doc == NULL)
        reg_oom();
    *key = json_dumps(key_doc, JSON_COMPACT);
    *value = json_dumps(value_doc, JSON_COMPACT);
    json_decref(key_doc);
    json_decref(value_doc);
    if (*key == NULL || *value == NULL)
        reg_oom();
    return 0;
}

int sg_registry_config_record(const char *subject, sg_compat_t level, int clear, char **key, char **value)
{
    json_t *key_doc = json_pack("{s:s, s:o, s:i}", "keytype", "CONFIG", "subject",
                                subject != NULL ? json_string(subject) : json_null(), "magic", 0);
    if (key_doc == NULL)
        reg_oom();
    *key = json_dumps(key_doc, JSON_COMPACT);
    json_decref(key_doc);
    *value = NULL;
    if (!clear) {
        json_t *value_doc = json_pack("{s:s}", "compatibilityLevel", sg_compat_name(level));
        if (value_doc == NULL)
            reg_oom();
        *value = json_dumps(value_doc, JSON_COMPACT);
        json_decref(value_doc);
    }
    if (*key == NULL || (!clear && *value == NULL))
        reg_oom();
    return 0;
}

static void log_ignored(sg_registry_t *reg, int64_t offset, const char *why)
{
    /* Lost races are normal; only malformed records are worth a line, and only the first. */
    if (reg->ignored_logged++ == 0)
        fprintf(stderr, "streamgate: registry: %s offset %lld ignored: %s (logged once)\n", SG_REGISTRY_TOPIC, (long long)offset,
                why);
}

static int apply_config(sg_registry_t *reg, const json_t *key_doc, const void *value, size_t valuelen, int64_t offset)
{
    const json_t *subject_json = json_object_get(key_doc, "subject");
    const char *subject_name = json_string_value(subject_json);
    if (subject_json != NULL && !json_is_null(subject_json) &&
        (subject_name == NULL || !sg_registry_subject_ok(subject_name, strlen(subject_name)))) {
        log_ignored(reg, offset, "bad subject in a CONFIG key");
        return 0;
    }
    sg_compat_t level = SG_COMPAT_BACKWARD;
    int clear = value == NULL;
    if (!clear) {
        json_t *doc = json_loadb(value, valuelen, 0, NULL);
        int ok = doc != NULL && sg_compat_parse(json_string_value(json_object_get(doc, "compatibilityLevel")), &level) == 0;
        json_decref(doc);
        if (!ok) {
            log_ignored(reg, offset, "a CONFIG value without a valid compatibilityLevel");
            return 0;
        }
    }
    pthread_rwlock_wrlock(&reg->lock);
    if (subject_name == NULL) {
        reg->global_level = clear ? SG_COMPAT_BACKWARD : level;
    } else {
        sg_subject_t *subject = subject_locked(reg, subject_name);
        if (subject == NULL && !clear && reg->n_subjects < SG_REGISTRY_MAX_SUBJECTS)
            subject = subject_add_locked(reg, subject_name);
        if (subject != NULL) {
            subject->has_level = !clear;
            subject->level = level;
        }
    }
    pthread_rwlock_unlock(&reg->lock);
    return 1;
}

static int apply_schema(sg_registry_t *reg, const void *value, size_t valuelen, int64_t offset)
{
    if (value == NULL)
        return 0; /* versions are never deleted here; a tombstone changes nothing */
    json_t *doc = json_loadb(value, valuelen, 0, NULL);
    const char *subject_name = json_string_value(json_object_get(doc, "subject"));
    const char *text = json_string_value(json_object_get(doc, "schema"));
    json_int_t version = json_integer_value(json_object_get(doc, "version"));
    json_int_t id = json_integer_value(json_object_get(doc, "id"));
    if (doc == NULL || subject_name == NULL || text == NULL || version < 1 || id < 1 || id > UINT32_MAX ||
        !sg_registry_subject_ok(subject_name, strlen(subject_name)) || json_is_true(json_object_get(doc, "deleted"))) {
        if (doc == NULL || !json_is_true(json_object_get(doc, "deleted")))
            log_ignored(reg, offset, "a SCHEMA value without subject, version, id or schema");
        json_decref(doc);
        return 0;
    }
    char err[256];
    char *canonical = sg_schema_canonical(text, json_string_length(json_object_get(doc, "schema")), err, sizeof(err));
    if (canonical == NULL) {
        log_ignored(reg, offset, err);
        json_decref(doc);
        return 0;
    }
    size_t canonical_len = strlen(canonical);
    /* Decide under the read lock (we are the only writer); parse outside any lock. */
    pthread_rwlock_rdlock(&reg->lock);
    const sg_subject_t *subject = subject_locked(reg, subject_name);
    size_t n_versions = subject != NULL ? subject->n_versions : 0;
    const sg_registry_schema_t *known = by_text_locked(reg, canonical, canonical_len);
    const sg_registry_schema_t *at_id = by_id_locked(reg, (uint32_t)id);
    int accept = (size_t)version == n_versions + 1 && n_versions < SG_REGISTRY_MAX_VERSIONS &&
                 version_of_locked(reg, subject, canonical, canonical_len) == 0 &&
                 (subject != NULL || reg->n_subjects < SG_REGISTRY_MAX_SUBJECTS);
    if (known != NULL)
        accept = accept && known->id == (uint32_t)id;
    else
        accept = accept && at_id == NULL && (uint32_t)id == reg->n_schemas + 1 && reg->n_schemas < SG_REGISTRY_MAX_SCHEMAS &&
                 reg->schema_bytes + canonical_len <= SG_REGISTRY_MAX_TOTAL_BYTES;
    pthread_rwlock_unlock(&reg->lock);
    sg_registry_schema_t *fresh = NULL;
    if (accept && known == NULL && (fresh = schema_new((uint32_t)id, canonical, canonical_len, err, sizeof(err))) == NULL) {
        log_ignored(reg, offset, err);
        accept = 0;
    }
    free(canonical);
    if (!accept) {
        json_decref(doc);
        return 0;
    }
    pthread_rwlock_wrlock(&reg->lock);
    if (fresh != NULL)
        schema_add_locked(reg, fresh);
    sg_subject_t *target = subject_locked(reg, subject_name);
    if (target == NULL)
        target = subject_add_locked(reg, subject_name);
    uint32_t *ids = realloc(target->ids, (target->n_versions + 1) * sizeof(*ids));
    if (ids == NULL)
        reg_oom();
    ids[target->n_versions] = (uint32_t)id;
    /* Readers copy versions out under the lock, so moving the array here is safe. */
    target->ids = ids;
    target->n_versions++;
    pthread_rwlock_unlock(&reg->lock);
    json_decref(doc); /* subject_name points into it */
    return 1;
}

int sg_registry_apply(sg_registry_t *reg, const void *key, size_t keylen, const void *value, size_t valuelen, int64_t offset)
{
    json_t *key_doc = key != NULL ? json_loadb(key, keylen, 0, NULL) : NULL;
    const char *keytype = json_string_value(json_object_get(key_doc, "keytype"));
    int changed = 0;
    if (keytype == NULL)
        log_ignored(reg, offset, "the key is not a JSON object with a keytype");
    else if (strcmp(keytype, "SCHEMA") == 0)
        changed = apply_schema(reg, value, valuelen, offset);
    else if (strcmp(keytype, "CONFIG") == 0)
        changed = apply_config(reg, key_doc, value, valuelen, offset);
    /* other key types (NOOP, DELETE_SUBJECT, ...) are Confluent's; nothing here uses them */
    json_decref(key_doc);
    return changed;
}

/* ---- operations (registry thread) ---------------------------------------------------------- */

static void op_finish(sg_reg_op_t *op, int err, const char *msg, uint32_t id, int version)
{
    sg_registry_result_t result = {.err = err, .msg = msg != NULL ? msg : "", .id = id, .version = version};
    op->done_cb(op->opaque, &result);
    free(op->subject);
    free(op->text);
    free(op);
}

static int enqueue(sg_registry_t *reg, sg_reg_op_t *op)
{
    op->deadline_ms = mono_ms() + SG_REG_OP_TIMEOUT_MS;
    pthread_mutex_lock(&reg->ops_mutex);
    int ok = reg->thread_started && !atomic_load(&reg->stopping);
    if (ok) {
        if (reg->ops_tail != NULL)
            reg->ops_tail->next = op;
        else
            reg->ops_head = op;
        reg->ops_tail = op;
    }
    pthread_mutex_unlock(&reg->ops_mutex);
    if (!ok) {
        free(op->subject);
        free(op->text);
        free(op);
        return SG_REG_E_UNAVAILABLE;
    }
    return 0;
}

int sg_registry_register_async(sg_registry_t *reg, const char *subject, const char *text, size_t len, sg_registry_done_cb done_cb,
                               void *opaque)
{
    if (reg->url != NULL)
        return SG_REG_E_EXTERNAL;
    sg_reg_op_t *op = xcalloc(1, sizeof(*op));
    op->kind = OP_REGISTER;
    op->subject = xstrndup(subject, strlen(subject));
    op->text = xstrndup(text, len);
    op->len = len;
    op->done_cb = done_cb;
    op->opaque = opaque;
    return enqueue(reg, op);
}

int sg_registry_set_level_async(sg_registry_t *reg, const char *subject, sg_compat_t level, int clear, sg_registry_done_cb done_cb,
                                void *opaque)
{
    if (reg->url != NULL)
        return SG_REG_E_EXTERNAL;
    sg_reg_op_t *op = xcalloc(1, sizeof(*op));
    op->kind = OP_LEVEL;
    op->subject = subject != NULL ? xstrndup(subject, strlen(subject)) : NULL;
    op->level = level;
    op->clear = clear;
    op->done_cb = done_cb;
    op->opaque = opaque;
    return enqueue(reg, op);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    sg_reg_op_t *op = msg->_private;
    if (op == NULL)
        return;
    op->delivered = 1;
    op->offset = msg->offset;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        op->delivery_failed = 1;
        snprintf(op->delivery_err, sizeof(op->delivery_err), "%s", rd_kafka_err2str(msg->err));
    }
}

static int produce(sg_registry_t *reg, sg_reg_op_t *op, char *key, char *value, char *err, size_t errlen)
{
    size_t keylen = strlen(key), valuelen = value != NULL ? strlen(value) : 0;
    rd_kafka_resp_err_t rkerr = rd_kafka_producev(reg->producer, RD_KAFKA_V_RKT(reg->producer_topic), RD_KAFKA_V_PARTITION(0),
                                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, keylen),
                                                  RD_KAFKA_V_VALUE(value, valuelen), RD_KAFKA_V_OPAQUE(op), RD_KAFKA_V_END);
    free(key);
    free(value);
    if (rkerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "cannot produce to %s: %s", SG_REGISTRY_TOPIC, rd_kafka_err2str(rkerr));
        return -1;
    }
    op->produced = 1;
    op->delivered = 0;
    return 0;
}

/* Starts (or restarts, after a lost claim) an operation: answer now, or produce its record. */
static void op_begin(sg_registry_t *reg, sg_reg_op_t *op)
{
    char err[1024];
    char *key, *value;
    if (mono_ms() > op->deadline_ms) {
        /* queued past its deadline: its caller has been answered 503 already; never write it */
        reg->inflight = NULL;
        op_finish(op, SG_REG_E_UNAVAILABLE, "the operation waited past its deadline", 0, 0);
        return;
    }
    if (op->kind == OP_LEVEL) {
        sg_registry_config_record(op->subject, op->level, op->clear, &key, &value);
        if (produce(reg, op, key, value, err, sizeof(err)) != 0) {
            reg->inflight = NULL;
            op_finish(op, SG_REG_E_UNAVAILABLE, err, 0, 0);
        }
        return;
    }
    const sg_registry_schema_t *schema;
    int version;
    int rc = sg_registry_find(reg, op->subject, op->text, op->len, &schema, &version, err, sizeof(err));
    if (rc == SG_REG_OK || rc == SG_REG_E_INVALID) {
        reg->inflight = NULL;
        op_finish(op, rc, err, rc == SG_REG_OK ? schema->id : 0, rc == SG_REG_OK ? version : 0);
        return;
    }
    uint32_t id;
    if ((rc = sg_registry_check_register(reg, op->subject, op->text, op->len, err, sizeof(err))) != SG_REG_OK ||
        (rc = sg_registry_next_claim(reg, op->subject, op->text, op->len, &id, &version, err, sizeof(err))) != 0) {
        reg->inflight = NULL;
        op_finish(op, rc != 0 ? rc : SG_REG_E_INVALID, err, 0, 0);
        return;
    }
    if (version > SG_REGISTRY_MAX_VERSIONS ||
        (id > reg->n_schemas &&
         (reg->n_schemas >= SG_REGISTRY_MAX_SCHEMAS || reg->schema_bytes + op->len > SG_REGISTRY_MAX_TOTAL_BYTES))) {
        snprintf(err, sizeof(err), "the registry holds at most %d versions per subject, %d schemas and %d MiB of schemas",
                 SG_REGISTRY_MAX_VERSIONS, SG_REGISTRY_MAX_SCHEMAS, SG_REGISTRY_MAX_TOTAL_BYTES >> 20);
        reg->inflight = NULL;
        op_finish(op, SG_REG_E_LIMIT, err, 0, 0);
        return;
    }
    if (version == 1) {
        pthread_rwlock_rdlock(&reg->lock);
        int full = subject_locked(reg, op->subject) == NULL && reg->n_subjects >= SG_REGISTRY_MAX_SUBJECTS;
        pthread_rwlock_unlock(&reg->lock);
        if (full) {
            snprintf(err, sizeof(err), "the registry holds at most %d subjects", SG_REGISTRY_MAX_SUBJECTS);
            reg->inflight = NULL;
            op_finish(op, SG_REG_E_LIMIT, err, 0, 0);
            return;
        }
    }
    sg_registry_schema_record(op->subject, version, id, op->text, op->len, &key, &value, err, sizeof(err));
    if (produce(reg, op, key, value, err, sizeof(err)) != 0) {
        reg->inflight = NULL;
        op_finish(op, SG_REG_E_UNAVAILABLE, err, 0, 0);
    }
}

/* Moves the in-flight operation on: produce, wait for the delivery and for the record to be
 * applied, then answer or retry. */
static void op_progress(sg_registry_t *reg)
{
    if (reg->inflight == NULL && atomic_load(&reg->ready)) {
        pthread_mutex_lock(&reg->ops_mutex);
        reg->inflight = reg->ops_head;
        if (reg->inflight != NULL) {
            reg->ops_head = reg->inflight->next;
            if (reg->ops_head == NULL)
                reg->ops_tail = NULL;
            reg->inflight->next = NULL;
        }
        pthread_mutex_unlock(&reg->ops_mutex);
        if (reg->inflight != NULL)
            op_begin(reg, reg->inflight);
        return;
    }
    sg_reg_op_t *op = reg->inflight;
    if (op == NULL)
        return;
    if (!op->delivered)
        return; /* librdkafka reports every message within message.timeout.ms */
    if (op->delivery_failed) {
        char err[512];
        snprintf(err, sizeof(err), "%s: %s", SG_REGISTRY_TOPIC, op->delivery_err);
        reg->inflight = NULL;
        op_finish(op, SG_REG_E_UNAVAILABLE, err, 0, 0);
        return;
    }
    if (reg->next_offset <= op->offset) {
        if (mono_ms() > op->deadline_ms) {
            reg->inflight = NULL;
            op_finish(op, SG_REG_E_UNAVAILABLE, "the registry log was not read back in time", 0, 0);
        }
        return;
    }
    if (op->kind == OP_LEVEL) {
        reg->inflight = NULL;
        op_finish(op, SG_REG_OK, NULL, 0, 0);
        return;
    }
    char err[1024];
    const sg_registry_schema_t *schema;
    int version;
    if (sg_registry_find(reg, op->subject, op->text, op->len, &schema, &version, err, sizeof(err)) == SG_REG_OK) {
        reg->inflight = NULL;
        op_finish(op, SG_REG_OK, NULL, schema->id, version);
        return;
    }
    /* Another claim on the same version or id came first: check again against the new state. */
    fprintf(stderr, "streamgate: registry: another instance registered %s first (offset %lld); retrying\n", op->subject,
            (long long)op->offset);
    if (++op->attempts >= SG_REG_ATTEMPTS || mono_ms() > op->deadline_ms) {
        reg->inflight = NULL;
        op_finish(op, SG_REG_E_UNAVAILABLE, "concurrent registrations kept winning; try again", 0, 0);
        return;
    }
    op->produced = op->delivered = 0;
    op_begin(reg, op);
}

/* Reads the partition's watermarks and assigns it from the beginning. Returns 0 or -1 (retry). */
static int setup(sg_registry_t *reg)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(reg->consumer, SG_REGISTRY_TOPIC, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rkerr = rd_kafka_metadata(reg->consumer, 0, rkt, &md, SG_REG_METADATA_TIMEOUT_MS);
    if (rkerr == RD_KAFKA_RESP_ERR_NO_ERROR && (md->topic_cnt != 1 || md->topics[0].err != 0 || md->topics[0].partition_cnt == 0))
        rkerr = md->topic_cnt == 1 && md->topics[0].err ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    int64_t low = 0, high = 0;
    if (rkerr == RD_KAFKA_RESP_ERR_NO_ERROR)
        rkerr = rd_kafka_query_watermark_offsets(reg->consumer, SG_REGISTRY_TOPIC, 0, &low, &high, SG_REG_METADATA_TIMEOUT_MS);
    if (rkerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "streamgate: registry: topic %s: %s (retrying)\n", SG_REGISTRY_TOPIC, rd_kafka_err2str(rkerr));
        return -1;
    }
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(assignment, SG_REGISTRY_TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rkerr = rd_kafka_assign(reg->consumer, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
    if (rkerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "streamgate: registry: assign: %s (retrying)\n", rd_kafka_err2str(rkerr));
        return -1;
    }
    reg->next_offset = low;
    reg->start_high = high;
    return 0;
}

static void consume(sg_registry_t *reg, int timeout_ms)
{
    for (int i = 0; i < 1000; i++) {
        rd_kafka_message_t *msg = rd_kafka_consume_queue(reg->queue, i == 0 ? timeout_ms : 0);
        if (msg == NULL)
            return;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (msg->offset > reg->next_offset)
                reg->next_offset = msg->offset;
        } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "streamgate: registry: %s: %s\n", SG_REGISTRY_TOPIC, rd_kafka_message_errstr(msg));
        } else if (msg->offset >= reg->next_offset) {
            sg_registry_apply(reg, msg->key, msg->key_len, msg->payload, msg->len, msg->offset);
            reg->next_offset = msg->offset + 1;
        }
        rd_kafka_message_destroy(msg);
    }
}

static void *registry_main(void *arg)
{
    sg_registry_t *reg = arg;
    while (!atomic_load(&reg->stopping) && !reg->set_up) {
        if (setup(reg) == 0)
            reg->set_up = 1;
        else
            for (int i = 0; i < 50 && !atomic_load(&reg->stopping); i++)
                sleep_ms(10);
    }
    while (!atomic_load(&reg->stopping)) {
        rd_kafka_poll(reg->producer, 0);
        consume(reg, SG_REG_POLL_MS);
        if (!atomic_load(&reg->ready) && reg->next_offset >= reg->start_high)
            atomic_store(&reg->ready, 1);
        op_progress(reg);
    }
    return NULL;
}

/* ---- external registry --------------------------------------------------------------------- */

static int miss_active(sg_registry_t *reg, uint32_t id)
{
    int64_t now = mono_ms();
    for (size_t i = 0; i < reg->n_misses; i++)
        if (reg->misses[i].id == id && reg->misses[i].until_ms > now)
            return 1;
    return 0;
}

static void miss_add(sg_registry_t *reg, uint32_t id)
{
    int64_t now = mono_ms();
    size_t kept = 0;
    for (size_t i = 0; i < reg->n_misses; i++)
        if (reg->misses[i].until_ms > now && reg->misses[i].id != id)
            reg->misses[kept++] = reg->misses[i];
    reg->n_misses = kept;
    if (reg->n_misses >= 1024)
        return; /* bounded: at worst an id is asked for again */
    reg->misses = realloc(reg->misses, (reg->n_misses + 1) * sizeof(*reg->misses));
    if (reg->misses == NULL)
        reg_oom();
    reg->misses[reg->n_misses++] = (sg_reg_miss_t){id, now + SG_REG_MISS_TTL_MS};
}

/* Adds a schema (taken) to the external cache. Returns the cached schema with its id (an
 * earlier copy wins), or NULL when the cache is full (the schema is freed). */
static const sg_registry_schema_t *cache_put(sg_registry_t *reg, sg_registry_schema_t *schema)
{
    pthread_rwlock_wrlock(&reg->lock);
    sg_registry_schema_t *existing = by_id_locked(reg, schema->id);
    int full = existing == NULL && reg->n_schemas >= SG_REG_CACHE_MAX;
    if (existing == NULL && !full)
        schema_add_locked(reg, schema);
    pthread_rwlock_unlock(&reg->lock);
    if (existing != NULL || full) {
        schema_free(schema);
        return existing;
    }
    return schema;
}

const sg_registry_schema_t *sg_registry_fetch(sg_registry_t *reg, uint32_t id, char *err, size_t errlen)
{
    const sg_registry_schema_t *schema = sg_registry_lookup(reg, id);
    if (schema != NULL || reg->url == NULL) {
        if (schema == NULL)
            snprintf(err, errlen, "no schema has id %" PRIu32, id);
        return schema;
    }
    pthread_mutex_lock(&reg->fetch_mutex);
    if ((schema = sg_registry_lookup(reg, id)) != NULL) {
        pthread_mutex_unlock(&reg->fetch_mutex);
        return schema;
    }
    if (miss_active(reg, id)) {
        snprintf(err, errlen, "schema id %" PRIu32 " was not available from %s moments ago", id, reg->url);
        pthread_mutex_unlock(&reg->fetch_mutex);
        return NULL;
    }
    char path[64], why[512];
    snprintf(path, sizeof(path), "/schemas/ids/%" PRIu32, id);
    int status = 0;
    char *body = NULL;
    size_t body_len = 0;
    if (sg_reg_http_request(&reg->parsed_url, "GET", path, NULL, 0, SG_REG_HTTP_TIMEOUT_MS, &status, &body, &body_len, why,
                            sizeof(why)) != 0) {
        snprintf(err, errlen, "%s%s: %s", reg->url, path, why);
    } else if (status != 200) {
        snprintf(err, errlen, "%s%s: HTTP %d", reg->url, path, status);
    } else {
        json_t *doc = json_loadb(body, body_len, 0, NULL);
        const char *text = json_string_value(json_object_get(doc, "schema"));
        sg_registry_schema_t *fresh =
            text != NULL ? schema_new(id, text, json_string_length(json_object_get(doc, "schema")), why, sizeof(why)) : NULL;
        if (fresh == NULL)
            snprintf(err, errlen, "%s%s: %s", reg->url, path, text == NULL ? "no schema in the answer" : why);
        else if ((schema = cache_put(reg, fresh)) == NULL)
            snprintf(err, errlen, "the schema cache is full (%d schemas)", SG_REG_CACHE_MAX);
        json_decref(doc);
    }
    free(body);
    if (schema == NULL)
        miss_add(reg, id);
    pthread_mutex_unlock(&reg->fetch_mutex);
    return schema;
}

/* Percent-encodes a subject for a URL path (subjects are [A-Za-z0-9._:@+-]; ':' '@' '+' are
 * encoded to be safe). */
static void encode_subject(const char *subject, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = subject; *p != '\0' && o + 4 < outlen; p++) {
        unsigned char c = (unsigned char)*p;
        if (isalnum(c) || c == '.' || c == '_' || c == '-')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outlen - o, "%%%02X", c);
    }
    out[o] = '\0';
}

static int external_register(sg_registry_t *reg, const char *subject, const char *text, size_t len, int64_t timeout_ms,
                             uint32_t *id, char *err, size_t errlen)
{
    char why[512];
    sg_registry_schema_t *parsed = schema_new(0, text, len, why, sizeof(why));
    if (parsed == NULL) {
        snprintf(err, errlen, "%s", why);
        return SG_REG_E_INVALID;
    }
    json_t *req = json_pack("{s:s, s:s}", "schema", parsed->text, "schemaType", "AVRO");
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (body == NULL)
        reg_oom();
    char encoded[3 * SG_REGISTRY_MAX_SUBJECT_LEN + 1], path[1024];
    encode_subject(subject, encoded, sizeof(encoded));
    snprintf(path, sizeof(path), "/subjects/%s/versions", encoded);
    int status = 0;
    char *resp = NULL;
    size_t resp_len = 0;
    int rc = SG_REG_E_UNAVAILABLE;
    if (sg_reg_http_request(&reg->parsed_url, "POST", path, body, strlen(body), timeout_ms, &status, &resp, &resp_len, why,
                            sizeof(why)) != 0) {
        snprintf(err, errlen, "%s%s: %s", reg->url, path, why);
    } else {
        json_t *doc = json_loadb(resp, resp_len, 0, NULL);
        json_int_t got = json_integer_value(json_object_get(doc, "id"));
        const char *message = json_string_value(json_object_get(doc, "message"));
        if (message == NULL)
            message = json_string_value(json_object_get(doc, "detail"));
        if (status == 200 && got >= 1 && got <= UINT32_MAX) {
            *id = (uint32_t)got;
            parsed->id = *id;
            cache_put(reg, parsed); /* the external registry's id; a cached copy of it wins */
            parsed = NULL;
            rc = SG_REG_OK;
        } else {
            rc = status == 409 ? SG_REG_E_INCOMPATIBLE : status == 422 ? SG_REG_E_INVALID : SG_REG_E_UNAVAILABLE;
            snprintf(err, errlen, "%s%s: HTTP %d: %s", reg->url, path, status, message != NULL ? message : "(no message)");
        }
        json_decref(doc);
    }
    schema_free(parsed);
    free(resp);
    free(body);
    return rc;
}

/* ---- blocking registration ----------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int refs; /* the waiter and the callback */
    int done;
    int err;
    char msg[1024];
    uint32_t id;
    int version;
} sg_reg_waiter_t;

static void waiter_release(sg_reg_waiter_t *waiter)
{
    pthread_mutex_lock(&waiter->mutex);
    int last = --waiter->refs == 0;
    pthread_mutex_unlock(&waiter->mutex);
    if (last) {
        pthread_mutex_destroy(&waiter->mutex);
        pthread_cond_destroy(&waiter->cond);
        free(waiter);
    }
}

static void waiter_done(void *opaque, const sg_registry_result_t *result)
{
    sg_reg_waiter_t *waiter = opaque;
    pthread_mutex_lock(&waiter->mutex);
    waiter->done = 1;
    waiter->err = result->err;
    snprintf(waiter->msg, sizeof(waiter->msg), "%s", result->msg);
    waiter->id = result->id;
    waiter->version = result->version;
    pthread_cond_broadcast(&waiter->cond);
    pthread_mutex_unlock(&waiter->mutex);
    waiter_release(waiter);
}

int sg_registry_register(sg_registry_t *reg, const char *subject, const char *text, size_t len, int64_t timeout_ms, uint32_t *id,
                         int *version, char *err, size_t errlen)
{
    if (!sg_registry_subject_ok(subject, strlen(subject))) {
        snprintf(err, errlen, "subject %s: must be 1..%d characters of [A-Za-z0-9._:@+-]", subject, SG_REGISTRY_MAX_SUBJECT_LEN);
        return SG_REG_E_BAD_SUBJECT;
    }
    if (reg->url != NULL) {
        *version = 0;
        return external_register(reg, subject, text, len, timeout_ms, id, err, errlen);
    }
    sg_reg_waiter_t *waiter = xcalloc(1, sizeof(*waiter));
    pthread_mutex_init(&waiter->mutex, NULL);
    pthread_cond_init(&waiter->cond, NULL);
    waiter->refs = 2;
    int rc = sg_registry_register_async(reg, subject, text, len, waiter_done, waiter);
    if (rc != 0) {
        snprintf(err, errlen, "the registry is not running");
        waiter->refs = 1;
        waiter_release(waiter);
        return rc;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(timeout_ms / 1000);
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&waiter->mutex);
    while (!waiter->done && pthread_cond_timedwait(&waiter->cond, &waiter->mutex, &until) != ETIMEDOUT)
        ;
    if (waiter->done) {
        rc = waiter->err;
        *id = waiter->id;
        *version = waiter->version;
        if (rc != SG_REG_OK)
            snprintf(err, errlen, "%s", waiter->msg);
    } else {
        rc = SG_REG_E_UNAVAILABLE;
        snprintf(err, errlen, "the registry did not confirm within %lld ms", (long long)timeout_ms);
    }
    pthread_mutex_unlock(&waiter->mutex);
    waiter_release(waiter);
    return rc;
}

/* ---- config schemas ------------------------------------------------------------------------ */

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    char *buf = malloc(SG_REGISTRY_MAX_SCHEMA_BYTES + 1);
    if (buf == NULL)
        reg_oom();
    size_t n = fread(buf, 1, SG_REGISTRY_MAX_SCHEMA_BYTES + 1, fp);
    int failed = ferror(fp);
    fclose(fp);
    if (failed || n > SG_REGISTRY_MAX_SCHEMA_BYTES) {
        snprintf(err, errlen, failed ? "cannot read it" : "larger than %d bytes", SG_REGISTRY_MAX_SCHEMA_BYTES);
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int load_config_schemas(sg_registry_t *reg, char *err, size_t errlen)
{
    const sg_conf_t *conf = reg->conf;
    reg->config_schemas = xcalloc(conf->n_schemas, sizeof(*reg->config_schemas));
    reg->config_registered = xcalloc(conf->n_schemas, sizeof(*reg->config_registered));
    reg->route_schemas = xcalloc(conf->n_routes, sizeof(*reg->route_schemas));
    for (size_t i = 0; i < conf->n_schemas; i++) {
        char *text, why[512];
        size_t len;
        if (read_file(conf->schemas[i].file, &text, &len, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "schemas[%zu] (%s): %s: %s", i, conf->schemas[i].name, conf->schemas[i].file, why);
            return -1;
        }
        reg->config_schemas[i] = schema_new(0, text, len, why, sizeof(why));
        free(text);
        if (reg->config_schemas[i] == NULL) {
            snprintf(err, errlen, "schemas[%zu] (%s): %s: %s", i, conf->schemas[i].name, conf->schemas[i].file, why);
            return -1;
        }
    }
    return 0;
}

static size_t config_index(const sg_conf_t *conf, const char *name)
{
    for (size_t i = 0; i < conf->n_schemas; i++)
        if (strcmp(conf->schemas[i].name, name) == 0)
            return i;
    return SIZE_MAX;
}

static sg_registry_t *alloc_registry(void);

int sg_registry_check_files(const sg_conf_t *conf, char *err, size_t errlen)
{
    sg_registry_t *reg = alloc_registry();
    reg->conf = conf;
    int rc = load_config_schemas(reg, err, errlen);
    sg_registry_destroy(reg);
    return rc;
}

int sg_registry_register_config(sg_registry_t *reg, int64_t timeout_ms, char *err, size_t errlen)
{
    const sg_conf_t *conf = reg->conf;
    int64_t deadline = mono_ms() + timeout_ms;
    for (size_t r = 0; r < conf->n_routes; r++) {
        const sg_route_conf_t *route = &conf->routes[r];
        size_t s = route->schema != NULL ? config_index(conf, route->schema) : SIZE_MAX;
        if (s == SIZE_MAX)
            continue;
        const sg_registry_schema_t *parsed = reg->config_schemas[s];
        char subject[SG_REGISTRY_MAX_SUBJECT_LEN + 1], why[2048];
        snprintf(subject, sizeof(subject), "%s-value", route->topic);
        uint32_t id = 0;
        int version = 0;
        int64_t left = deadline - mono_ms();
        int rc =
            sg_registry_register(reg, subject, parsed->text, parsed->len, left > 0 ? left : 1, &id, &version, why, sizeof(why));
        if (rc == SG_REG_E_INCOMPATIBLE) {
            const sg_registry_schema_t *latest = NULL;
            int latest_version = 0;
            if (reg->url == NULL)
                sg_registry_get_version(reg, subject, -1, &latest, &latest_version);
            snprintf(err, errlen,
                     "routes[%zu] (%s): schema %s (%s) is incompatible with subject %s: %s\n"
                     "  registered version %d: %.600s\n  new: %.600s",
                     r, route->name, route->schema, conf->schemas[s].file, subject, why, latest_version,
                     latest != NULL ? latest->text : "(see the external registry)", parsed->text);
            return -1;
        }
        if (rc != SG_REG_OK) {
            snprintf(err, errlen, "routes[%zu] (%s): registering schema %s under %s: %s", r, route->name, route->schema, subject,
                     why);
            return -1;
        }
        const sg_registry_schema_t *registered = sg_registry_lookup(reg, id);
        if (registered == NULL) {
            snprintf(err, errlen, "routes[%zu] (%s): schema id %" PRIu32 " is not in the registry", r, route->name, id);
            return -1;
        }
        reg->route_schemas[r] = registered;
        reg->config_registered[s] = registered;
        fprintf(stderr, "streamgate: schema %s registered under %s: id %" PRIu32 "%s%.0d\n", route->schema, subject, id,
                version > 0 ? ", version " : "", version);
    }
    return 0;
}

const sg_registry_schema_t *sg_registry_route_schema(const sg_registry_t *reg, size_t route_index)
{
    if (reg->route_schemas == NULL || route_index >= reg->conf->n_routes)
        return NULL;
    return reg->route_schemas[route_index];
}

const sg_registry_schema_t *sg_registry_config_schema(const sg_registry_t *reg, const char *name)
{
    if (reg->conf == NULL)
        return NULL;
    size_t i = config_index(reg->conf, name);
    if (i == SIZE_MAX)
        return NULL;
    return reg->config_registered[i] != NULL ? reg->config_registered[i] : reg->config_schemas[i];
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static sg_registry_t *alloc_registry(void)
{
    sg_registry_t *reg = xcalloc(1, sizeof(*reg));
    pthread_rwlock_init(&reg->lock, NULL);
    pthread_mutex_init(&reg->ops_mutex, NULL);
    pthread_mutex_init(&reg->fetch_mutex, NULL);
    reg->global_level = SG_COMPAT_BACKWARD;
    return reg;
}

sg_registry_t *sg_registry_create_local(void)
{
    sg_registry_t *reg = alloc_registry();
    atomic_store(&reg->ready, 1);
    return reg;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    fprintf(stderr, "streamgate: kafka (registry): %s: %s\n", fac, buf);
}

static rd_kafka_t *make_client(const sg_registry_t *reg, rd_kafka_type_t type, char *err, size_t errlen)
{
    rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%d", SG_REG_PRODUCE_TIMEOUT_MS);
    int rc = sg_kafka_conf_set(rkconf, "bootstrap.servers", reg->bootstraps, err, errlen) ||
             sg_kafka_conf_set(rkconf, "client.id", "streamgate-registry", err, errlen);
    if (type == RD_KAFKA_PRODUCER)
        rc = rc || sg_kafka_conf_set(rkconf, "acks", "all", err, errlen) ||
             sg_kafka_conf_set(rkconf, "enable.idempotence", "true", err, errlen) ||
             sg_kafka_conf_set(rkconf, "linger.ms", "0", err, errlen) ||
             sg_kafka_conf_set(rkconf, "message.timeout.ms", timeout, err, errlen);
    else
        /* group.id only names the client: no group is joined, nothing is committed */
        rc = rc || sg_kafka_conf_set(rkconf, "group.id", "streamgate-registry", err, errlen) ||
             sg_kafka_conf_set(rkconf, "enable.auto.commit", "false", err, errlen) ||
             sg_kafka_conf_set(rkconf, "enable.auto.offset.store", "false", err, errlen) ||
             sg_kafka_conf_set(rkconf, "enable.partition.eof", "true", err, errlen) ||
             sg_kafka_conf_set(rkconf, "auto.offset.reset", "earliest", err, errlen) ||
             sg_kafka_conf_set(rkconf, "fetch.wait.max.ms", "10", err, errlen);
    rc = rc || sg_kafka_conf_apply(rkconf, reg->conf, err, errlen);
    if (rc != 0) {
        rd_kafka_conf_destroy(rkconf);
        return NULL;
    }
    if (type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set_dr_msg_cb(rkconf, on_delivery);
    rd_kafka_conf_set_log_cb(rkconf, on_log);
    char rkerr[512];
    rd_kafka_t *rk = rd_kafka_new(type, rkconf, rkerr, sizeof(rkerr));
    if (rk == NULL) {
        snprintf(err, errlen, "kafka registry client: %s", rkerr);
        rd_kafka_conf_destroy(rkconf);
    }
    return rk;
}

sg_registry_t *sg_registry_create(const sg_conf_t *conf, const char *bootstraps, char *err, size_t errlen)
{
    sg_registry_t *reg = alloc_registry();
    reg->conf = conf;
    if (load_config_schemas(reg, err, errlen) != 0)
        goto fail;
    if (conf->schema_registry.url != NULL) {
        reg->url = xstrndup(conf->schema_registry.url, strlen(conf->schema_registry.url));
        if (sg_reg_url_parse(reg->url, &reg->parsed_url) != 0) {
            snprintf(err, errlen, "schema_registry.url: cannot use %s", reg->url);
            goto fail;
        }
        atomic_store(&reg->ready, 1);
        return reg;
    }
    reg->bootstraps = xstrndup(bootstraps, strlen(bootstraps));
    if ((reg->producer = make_client(reg, RD_KAFKA_PRODUCER, err, errlen)) == NULL ||
        (reg->consumer = make_client(reg, RD_KAFKA_CONSUMER, err, errlen)) == NULL)
        goto fail;
    reg->producer_topic = rd_kafka_topic_new(reg->producer, SG_REGISTRY_TOPIC, NULL);
    rd_kafka_poll_set_consumer(reg->consumer);
    reg->queue = rd_kafka_queue_get_consumer(reg->consumer);
    return reg;
fail:
    sg_registry_destroy(reg);
    return NULL;
}

/* Creates `_schemas` (compacted) unless it exists. Errors are logged, not fatal: the topic may be
 * managed by an operator, and the thread waits for it either way. */
static void create_topic(sg_registry_t *reg)
{
    const struct rd_kafka_metadata *md = NULL;
    int replication = 1;
    if (rd_kafka_metadata(reg->producer, 0, NULL, &md, SG_REG_METADATA_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int t = 0; t < md->topic_cnt; t++)
            if (strcmp(md->topics[t].topic, SG_REGISTRY_TOPIC) == 0 && md->topics[t].err == 0) {
                rd_kafka_metadata_destroy(md);
                return;
            }
        replication = md->broker_cnt >= 3 ? 3 : md->broker_cnt > 0 ? md->broker_cnt : 1;
        rd_kafka_metadata_destroy(md);
    }
    char rkerr[512];
    rd_kafka_NewTopic_t *topic = rd_kafka_NewTopic_new(SG_REGISTRY_TOPIC, 1, replication, rkerr, sizeof(rkerr));
    if (topic == NULL)
        return;
    rd_kafka_NewTopic_set_config(topic, "cleanup.policy", "compact");
    rd_kafka_queue_t *queue = rd_kafka_queue_new(reg->producer);
    rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(reg->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(options, 5000, rkerr, sizeof(rkerr));
    rd_kafka_CreateTopics(reg->producer, &topic, 1, options, queue);
    rd_kafka_event_t *event = rd_kafka_queue_poll(queue, 6000);
    if (event != NULL) {
        const rd_kafka_CreateTopics_result_t *result = rd_kafka_event_CreateTopics_result(event);
        size_t n = 0;
        const rd_kafka_topic_result_t **results = result != NULL ? rd_kafka_CreateTopics_result_topics(result, &n) : NULL;
        for (size_t i = 0; i < n; i++) {
            rd_kafka_resp_err_t terr = rd_kafka_topic_result_error(results[i]);
            if (terr != RD_KAFKA_RESP_ERR_NO_ERROR && terr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                fprintf(stderr, "streamgate: registry: cannot create %s: %s\n", SG_REGISTRY_TOPIC, rd_kafka_err2str(terr));
        }
        if (rd_kafka_event_error(event))
            fprintf(stderr, "streamgate: registry: cannot create %s: %s\n", SG_REGISTRY_TOPIC, rd_kafka_event_error_string(event));
        rd_kafka_event_destroy(event);
    } else {
        fprintf(stderr, "streamgate: registry: no answer to creating %s; waiting for it to exist\n", SG_REGISTRY_TOPIC);
    }
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(queue);
    rd_kafka_NewTopic_destroy(topic);
}

int sg_registry_start(sg_registry_t *reg, char *err, size_t errlen)
{
    if (reg->url != NULL || reg->producer == NULL)
        return 0;
    if (reg->thread_started) {
        snprintf(err, errlen, "the registry is already started");
        return -1;
    }
    create_topic(reg);
    pthread_mutex_lock(&reg->ops_mutex);
    int rc = pthread_create(&reg->thread, NULL, registry_main, reg);
    if (rc == 0)
        reg->thread_started = 1;
    pthread_mutex_unlock(&reg->ops_mutex);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the registry thread: %s", strerror(rc));
        return -1;
    }
    return 0;
}

int sg_registry_wait_ready(sg_registry_t *reg, int64_t timeout_ms, char *err, size_t errlen)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (!atomic_load(&reg->ready)) {
        if (mono_ms() >= deadline) {
            snprintf(err, errlen, "the schema registry did not read topic %s within %lld ms (does it exist?)", SG_REGISTRY_TOPIC,
                     (long long)timeout_ms);
            return -1;
        }
        sleep_ms(10);
    }
    return 0;
}

int sg_registry_is_ready(const sg_registry_t *reg)
{
    return atomic_load(&reg->ready);
}

const char *sg_registry_external_url(const sg_registry_t *reg)
{
    return reg->url;
}

void sg_registry_destroy(sg_registry_t *reg)
{
    if (reg == NULL)
        return;
    pthread_mutex_lock(&reg->ops_mutex);
    atomic_store(&reg->stopping, 1);
    pthread_mutex_unlock(&reg->ops_mutex);
    if (reg->thread_started)
        pthread_join(reg->thread, NULL);
    if (reg->producer != NULL) {
        /* Outstanding records are abandoned. The producer goes before the operations are answered:
         * a late delivery report must not find a freed operation. */
        rd_kafka_purge(reg->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(reg->producer, 0);
        if (reg->producer_topic != NULL)
            rd_kafka_topic_destroy(reg->producer_topic);
        rd_kafka_destroy(reg->producer);
        reg->producer_topic = NULL;
        reg->producer = NULL;
    }
    if (reg->inflight != NULL)
        op_finish(reg->inflight, SG_REG_E_UNAVAILABLE, "the gateway is shutting down", 0, 0);
    reg->inflight = NULL;
    while (reg->ops_head != NULL) {
        sg_reg_op_t *op = reg->ops_head;
        reg->ops_head = op->next;
        op_finish(op, SG_REG_E_UNAVAILABLE, "the gateway is shutting down", 0, 0);
    }
    if (reg->producer_topic != NULL)
        rd_kafka_topic_destroy(reg->producer_topic);
    if (reg->producer != NULL)
        rd_kafka_destroy(reg->producer);
    if (reg->queue != NULL)
        rd_kafka_queue_destroy(reg->queue);
    if (reg->consumer != NULL) {
        rd_kafka_consumer_close(reg->consumer);
        rd_kafka_destroy(reg->consumer);
    }
    for (size_t i = 0; i < reg->n_schemas; i++)
        schema_free(reg->schemas[i]);
    free(reg->schemas);
    for (size_t i = 0; i < reg->n_subjects; i++) {
        free(reg->subjects[i].name);
        free(reg->subjects[i].ids);
    }
    free(reg->subjects);
    for (size_t i = 0; reg->config_schemas != NULL && i < reg->conf->n_schemas; i++)
        schema_free(reg->config_schemas[i]);
    free(reg->config_schemas);
    free(reg->config_registered);
    free(reg->route_schemas);
    free(reg->misses);
    free(reg->url);
    free(reg->bootstraps);
    pthread_rwlock_destroy(&reg->lock);
    pthread_mutex_destroy(&reg->ops_mutex);
    pthread_mutex_destroy(&reg->fetch_mutex);
    free(reg);
}
