/*
 * The registry's state (registry_int.h): schemas by global id (built in: ids are dense, id N at
 * index N-1, because a claim may only take an existing id or max+1), subjects with their
 * versions (version V at index V-1), and compatibility levels; the reads of it; and the fold
 * that decoded `_schemas` records feed into it.
 *
 * One rwlock guards the state and only one thread writes it (the registry thread, or the caller
 * of sg_registry_apply). A schema object, once published, is never changed or freed before
 * sg_registry_destroy, so readers keep pointers without holding the lock.
 *
 * The fold is a pure function of the records in offset order, so every instance agrees on every
 * id: a claim wins if its version is the subject's next, the schema is not yet under the subject,
 * and its id is either the schema's existing id or the next free one (and the schema has no other
 * id), within the limits. The first claim in offset order wins; later conflicting ones lose.
 */
#include "registry_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_base.h"

uint64_t sg_reg_fingerprint(const char *text, size_t len)
{
    uint64_t hash = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        hash ^= (unsigned char)text[i];
        hash *= 0x100000001b3ull;
    }
    return hash;
}

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

/* ---- parsed schemas: pinned, or in the LRU ------------------------------------------------- */

static pthread_mutex_t pin_lock = PTHREAD_MUTEX_INITIALIZER;

const sg_avro_schema_t *sg_registry_schema_avro(const sg_registry_schema_t *schema)
{
    sg_avro_schema_t *avro = atomic_load(&schema->pinned);
    if (avro != NULL)
        return avro;
    sg_registry_schema_t *mutable_schema = (sg_registry_schema_t *)schema;
    pthread_mutex_lock(&pin_lock);
    if ((avro = atomic_load(&schema->pinned)) == NULL) {
        char err[256];
        /* The text was parsed when the schema was made: it parses again. */
        if ((avro = sg_avro_schema_parse(schema->text, schema->len, err, sizeof(err))) == NULL)
            sg_oom();
        atomic_store(&mutable_schema->pinned, avro);
    }
    pthread_mutex_unlock(&pin_lock);
    return avro;
}

void sg_reg_avro_cache_init(sg_reg_avro_cache_t *cache)
{
    memset(cache, 0, sizeof(*cache));
    pthread_mutex_init(&cache->lock, NULL);
}

void sg_reg_avro_cache_dispose(sg_reg_avro_cache_t *cache)
{
    pthread_mutex_destroy(&cache->lock);
}

static void lru_unlink(sg_reg_avro_cache_t *cache, sg_registry_schema_t *schema)
{
    if (schema->lru_prev != NULL)
        schema->lru_prev->lru_next = schema->lru_next;
    else
        cache->head = schema->lru_next;
    if (schema->lru_next != NULL)
        schema->lru_next->lru_prev = schema->lru_prev;
    else
        cache->tail = schema->lru_prev;
    schema->lru_prev = schema->lru_next = NULL;
}

static void lru_push_front(sg_reg_avro_cache_t *cache, sg_registry_schema_t *schema)
{
    schema->lru_prev = NULL;
    schema->lru_next = cache->head;
    if (cache->head != NULL)
        cache->head->lru_prev = schema;
    cache->head = schema;
    if (cache->tail == NULL)
        cache->tail = schema;
}

/* Evicts unused entries, least recently used first, while over the bounds (cache->lock held). */
static void lru_trim(sg_reg_avro_cache_t *cache)
{
    sg_registry_schema_t *schema = cache->tail;
    while (schema != NULL && (cache->entries > SG_REG_AVRO_CACHE_ENTRIES || cache->text_bytes > SG_REG_AVRO_CACHE_TEXT_BYTES)) {
        sg_registry_schema_t *prev = schema->lru_prev;
        if (schema->users == 0) {
            lru_unlink(cache, schema);
            sg_avro_schema_destroy(schema->cached);
            schema->cached = NULL;
            cache->entries--;
            cache->text_bytes -= schema->len;
        }
        schema = prev;
    }
}

const sg_avro_schema_t *sg_registry_schema_avro_get(const sg_registry_schema_t *schema, char *err, size_t errlen)
{
    sg_avro_schema_t *avro = atomic_load(&schema->pinned);
    if (avro != NULL)
        return avro;
    sg_reg_avro_cache_t *cache = schema->cache;
    if (cache == NULL)
        return sg_registry_schema_avro(schema);
    sg_registry_schema_t *entry = (sg_registry_schema_t *)schema;
    pthread_mutex_lock(&cache->lock);
    if (entry->cached != NULL) {
        entry->users++;
        lru_unlink(cache, entry);
        lru_push_front(cache, entry);
        avro = entry->cached;
        pthread_mutex_unlock(&cache->lock);
        return avro;
    }
    pthread_mutex_unlock(&cache->lock);
    /* Parsed outside the lock: a 256 KiB schema takes milliseconds. */
    sg_avro_schema_t *parsed = sg_avro_schema_parse(schema->text, schema->len, err, errlen);
    if (parsed == NULL)
        return NULL;
    pthread_mutex_lock(&cache->lock);
    if (entry->cached != NULL) { /* another thread was quicker */
        sg_avro_schema_destroy(parsed);
        lru_unlink(cache, entry);
    } else {
        entry->cached = parsed;
        cache->entries++;
        cache->text_bytes += entry->len;
    }
    entry->users++;
    lru_push_front(cache, entry);
    avro = entry->cached;
    lru_trim(cache);
    pthread_mutex_unlock(&cache->lock);
    return avro;
}

void sg_registry_schema_avro_put(const sg_registry_schema_t *schema, const sg_avro_schema_t *avro)
{
    if (avro == NULL || avro == atomic_load(&schema->pinned) || schema->cache == NULL)
        return;
    sg_reg_avro_cache_t *cache = schema->cache;
    pthread_mutex_lock(&cache->lock);
    ((sg_registry_schema_t *)schema)->users--;
    lru_trim(cache);
    pthread_mutex_unlock(&cache->lock);
}

sg_registry_schema_t *sg_reg_schema_new(uint32_t id, const char *text, size_t len, int flags, char *err, size_t errlen)
{
    if (len > SG_REGISTRY_MAX_SCHEMA_BYTES) {
        sg_errf(err, errlen, "the schema is larger than %d bytes", SG_REGISTRY_MAX_SCHEMA_BYTES);
        return NULL;
    }
    char *canonical = (flags & SG_REG_NEW_CANONICAL) ? sg_memdup(text, len + 1) : sg_schema_canonical(text, len, err, errlen);
    if (canonical == NULL)
        return NULL;
    size_t canonical_len = strlen(canonical);
    sg_avro_schema_t *avro = sg_avro_schema_parse(canonical, canonical_len, err, errlen);
    if (avro == NULL) {
        free(canonical);
        return NULL;
    }
    if (!(flags & SG_REG_NEW_PIN)) {
        sg_avro_schema_destroy(avro);
        avro = NULL;
    }
    sg_registry_schema_t *schema = sg_calloc(1, sizeof(*schema));
    schema->id = id;
    schema->text = canonical;
    schema->len = canonical_len;
    schema->fingerprint = sg_reg_fingerprint(canonical, canonical_len);
    atomic_init(&schema->pinned, avro);
    return schema;
}

void sg_reg_schema_free(sg_registry_schema_t *schema)
{
    if (schema == NULL)
        return;
    sg_avro_schema_destroy(atomic_load(&schema->pinned));
    sg_avro_schema_destroy(schema->cached); /* at destroy: nobody uses it any more */
    free(schema->text);
    free(schema);
}

static int same_text(const sg_registry_schema_t *schema, uint64_t fp, const char *canonical, size_t len)
{
    return schema->fingerprint == fp && schema->len == len && memcmp(schema->text, canonical, len) == 0;
}

/* ---- state (callers hold the lock) --------------------------------------------------------- */

sg_registry_schema_t *sg_reg_by_id_locked(const sg_registry_t *reg, uint32_t id)
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
    uint64_t fp = sg_reg_fingerprint(canonical, len);
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
        reg->subjects = sg_reallocarray(reg->subjects, reg->cap_subjects, sizeof(*reg->subjects));
    }
    sg_subject_t *subject = &reg->subjects[reg->n_subjects++];
    memset(subject, 0, sizeof(*subject));
    subject->name = sg_strdup(name);
    return subject;
}

void sg_reg_schema_add_locked(sg_registry_t *reg, sg_registry_schema_t *schema)
{
    if (reg->n_schemas == reg->cap_schemas) {
        reg->cap_schemas = reg->cap_schemas ? reg->cap_schemas * 2 : 16;
        reg->schemas = sg_reallocarray(reg->schemas, reg->cap_schemas, sizeof(*reg->schemas));
    }
    reg->schemas[reg->n_schemas++] = schema;
    reg->schema_bytes += schema->len;
    schema->cache = &reg->avro_cache;
}

/* The version of a subject holding this canonical text, or 0. */
static int version_of_locked(const sg_registry_t *reg, const sg_subject_t *subject, const char *canonical, size_t len)
{
    uint64_t fp = sg_reg_fingerprint(canonical, len);
    for (size_t v = 0; subject != NULL && v < subject->n_versions; v++) {
        const sg_registry_schema_t *schema = sg_reg_by_id_locked(reg, subject->ids[v]);
        if (schema != NULL && same_text(schema, fp, canonical, len))
            return (int)v + 1;
    }
    return 0;
}

/* ---- reads --------------------------------------------------------------------------------- */

const sg_registry_schema_t *sg_registry_lookup(sg_registry_t *reg, uint32_t id)
{
    pthread_rwlock_rdlock(&reg->lock);
    const sg_registry_schema_t *schema = sg_reg_by_id_locked(reg, id);
    pthread_rwlock_unlock(&reg->lock);
    return schema;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void sg_registry_counts(sg_registry_t *reg, size_t *subjects, size_t *schemas, size_t *versions)
{
    *subjects = *versions = 0;
    pthread_rwlock_rdlock(&reg->lock);
    for (size_t i = 0; i < reg->n_subjects; i++) {
        *subjects += reg->subjects[i].n_versions > 0; /* a level alone does not make a subject */
        *versions += reg->subjects[i].n_versions;
    }
    *schemas = reg->n_schemas;
    pthread_rwlock_unlock(&reg->lock);
}

json_t *sg_registry_subjects_json(sg_registry_t *reg)
{
    pthread_rwlock_rdlock(&reg->lock);
    const char **names = sg_calloc(reg->n_subjects, sizeof(*names));
    size_t n = 0;
    for (size_t i = 0; i < reg->n_subjects; i++)
        if (reg->subjects[i].n_versions > 0)    /* a level alone does not make a subject */
            names[n++] = reg->subjects[i].name; /* names are never freed before destroy */
    pthread_rwlock_unlock(&reg->lock);
    qsort(names, n, sizeof(*names), cmp_names);
    json_t *list = json_array();
    if (list == NULL)
        sg_oom();
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
            sg_oom();
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
            *schema = sg_reg_by_id_locked(reg, subject->ids[v - 1]);
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
        sg_errf(err, errlen, "the schema is larger than %d bytes", SG_REGISTRY_MAX_SCHEMA_BYTES);
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
            *schema = sg_reg_by_id_locked(reg, subject->ids[version - 1]);
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
            sg_errf(err, errlen, "%s", why);
            return SG_REG_E_INVALID;
        }
        if (!ok) {
            sg_errf(err, errlen, "%s: the new schema cannot read data written with version %d: %s", sg_compat_name(level),
                    old_version, why);
            return SG_REG_E_INCOMPATIBLE;
        }
    }
    if (forward) {
        int ok = sg_schema_can_read(text, len, old->text, old->len, why, sizeof(why));
        if (ok < 0) {
            sg_errf(err, errlen, "%s", why);
            return SG_REG_E_INVALID;
        }
        if (!ok) {
            sg_errf(err, errlen, "%s: version %d cannot read data written with the new schema: %s", sg_compat_name(level),
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
    const sg_registry_schema_t **olds = sg_calloc(n, sizeof(*olds));
    for (size_t v = 0; v < n; v++)
        olds[v] = sg_reg_by_id_locked(reg, subject->ids[v]);
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

/* ---- the fold (registry thread) ------------------------------------------------------------ */

void sg_reg_state_set_level(sg_registry_t *reg, const char *subject_name, sg_compat_t level, int clear)
{
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
}

int sg_reg_state_claim(sg_registry_t *reg, const char *subject_name, int64_t version, int64_t id, const char *text, size_t len,
                       char *err, size_t errlen)
{
    char *canonical = sg_schema_canonical(text, len, err, errlen);
    if (canonical == NULL)
        return -1;
    size_t canonical_len = strlen(canonical);
    /* Decide under the read lock (we are the only writer); parse outside any lock. */
    pthread_rwlock_rdlock(&reg->lock);
    const sg_subject_t *subject = subject_locked(reg, subject_name);
    size_t n_versions = subject != NULL ? subject->n_versions : 0;
    const sg_registry_schema_t *known = by_text_locked(reg, canonical, canonical_len);
    const sg_registry_schema_t *at_id = sg_reg_by_id_locked(reg, (uint32_t)id);
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
    int rc = accept ? 1 : 0;
    if (accept && known == NULL &&
        (fresh = sg_reg_schema_new((uint32_t)id, canonical, canonical_len, SG_REG_NEW_CANONICAL, err, errlen)) == NULL)
        rc = -1;
    free(canonical);
    if (rc != 1)
        return rc;
    pthread_rwlock_wrlock(&reg->lock);
    if (fresh != NULL)
        sg_reg_schema_add_locked(reg, fresh);
    sg_subject_t *target = subject_locked(reg, subject_name);
    if (target == NULL)
        target = subject_add_locked(reg, subject_name);
    /* Readers copy versions out under the lock, so moving the array here is safe. */
    target->ids = sg_reallocarray(target->ids, target->n_versions + 1, sizeof(*target->ids));
    target->ids[target->n_versions++] = (uint32_t)id;
    pthread_rwlock_unlock(&reg->lock);
    return 1;
}

int sg_reg_subjects_full(sg_registry_t *reg, const char *subject)
{
    pthread_rwlock_rdlock(&reg->lock);
    int full = subject_locked(reg, subject) == NULL && reg->n_subjects >= SG_REGISTRY_MAX_SUBJECTS;
    pthread_rwlock_unlock(&reg->lock);
    return full;
}

void sg_reg_state_dispose(sg_registry_t *reg)
{
    for (size_t i = 0; i < reg->n_schemas; i++)
        sg_reg_schema_free(reg->schemas[i]);
    free(reg->schemas);
    reg->schemas = NULL;
    reg->n_schemas = 0;
    for (size_t i = 0; i < reg->n_subjects; i++) {
        free(reg->subjects[i].name);
        free(reg->subjects[i].ids);
    }
    free(reg->subjects);
    reg->subjects = NULL;
    reg->n_subjects = 0;
}
