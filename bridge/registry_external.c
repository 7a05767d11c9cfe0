/*
 * An external Confluent-compatible registry (registry_int.h): config schemas are registered
 * there over HTTP at start, and ids nobody here knows are fetched from it by the threads that
 * decode (blocking, bounded by SG_REG_HTTP_TIMEOUT_MS), then kept in the state's schema list as a
 * cache. A failed id is not asked for again for SG_REG_MISS_TTL_MS, so a burst of records with an
 * unknown id costs one request, not one each.
 */
#include "registry_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_base.h"

#define SG_REG_HTTP_TIMEOUT_MS 5000
#define SG_REG_MISS_TTL_MS 5000 /* an external id that failed is not asked again for this long */
#define SG_REG_MISSES_MAX 1024

struct st_sg_reg_miss_t {
    uint32_t id;
    int64_t until_ms;
};

static int miss_active(sg_registry_t *reg, uint32_t id)
{
    int64_t now = sg_mono_ms();
    for (size_t i = 0; i < reg->n_misses; i++)
        if (reg->misses[i].id == id && reg->misses[i].until_ms > now)
            return 1;
    return 0;
}

static void miss_add(sg_registry_t *reg, uint32_t id)
{
    int64_t now = sg_mono_ms();
    size_t kept = 0;
    for (size_t i = 0; i < reg->n_misses; i++)
        if (reg->misses[i].until_ms > now && reg->misses[i].id != id)
            reg->misses[kept++] = reg->misses[i];
    reg->n_misses = kept;
    if (reg->n_misses >= SG_REG_MISSES_MAX)
        return; /* bounded: at worst an id is asked for again */
    reg->misses = sg_reallocarray(reg->misses, reg->n_misses + 1, sizeof(*reg->misses));
    reg->misses[reg->n_misses++] = (sg_reg_miss_t){id, now + SG_REG_MISS_TTL_MS};
}

/* Adds a schema (taken) to the external cache. Returns the cached schema with its id (an
 * earlier copy wins), or NULL when the cache is full (the schema is freed). */
static const sg_registry_schema_t *cache_put(sg_registry_t *reg, sg_registry_schema_t *schema)
{
    pthread_rwlock_wrlock(&reg->lock);
    sg_registry_schema_t *existing = sg_reg_by_id_locked(reg, schema->id);
    int full = existing == NULL && reg->n_schemas >= SG_REG_CACHE_MAX;
    if (existing == NULL && !full)
        sg_reg_schema_add_locked(reg, schema);
    pthread_rwlock_unlock(&reg->lock);
    if (existing != NULL || full) {
        sg_reg_schema_free(schema);
        return existing;
    }
    return schema;
}

const sg_registry_schema_t *sg_registry_fetch(sg_registry_t *reg, uint32_t id, char *err, size_t errlen)
{
    const sg_registry_schema_t *schema = sg_registry_lookup(reg, id);
    if (schema != NULL || reg->url == NULL) {
        if (schema == NULL)
            sg_errf(err, errlen, "no schema has id %" PRIu32, id);
        return schema;
    }
    pthread_mutex_lock(&reg->fetch_mutex);
    if ((schema = sg_registry_lookup(reg, id)) != NULL) {
        pthread_mutex_unlock(&reg->fetch_mutex);
        return schema;
    }
    if (miss_active(reg, id)) {
        sg_errf(err, errlen, "schema id %" PRIu32 " was not available from %s moments ago", id, reg->url);
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
        sg_errf(err, errlen, "%s%s: %s", reg->url, path, why);
    } else if (status != 200) {
        sg_errf(err, errlen, "%s%s: HTTP %d", reg->url, path, status);
    } else {
        json_t *doc = json_loadb(body, body_len, 0, NULL);
        const char *text = json_string_value(json_object_get(doc, "schema"));
        sg_registry_schema_t *fresh =
            text != NULL ? sg_reg_schema_new(id, text, json_string_length(json_object_get(doc, "schema")), 0, why, sizeof(why))
                         : NULL;
        if (fresh == NULL)
            sg_errf(err, errlen, "%s%s: %s", reg->url, path, text == NULL ? "no schema in the answer" : why);
        else if ((schema = cache_put(reg, fresh)) == NULL)
            sg_errf(err, errlen, "the schema cache is full (%d schemas)", SG_REG_CACHE_MAX);
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

int sg_reg_external_register(sg_registry_t *reg, const char *subject, const char *text, size_t len, int64_t timeout_ms,
                             uint32_t *id, char *err, size_t errlen)
{
    char why[512];
    sg_registry_schema_t *parsed = sg_reg_schema_new(0, text, len, 0, why, sizeof(why));
    if (parsed == NULL) {
        sg_errf(err, errlen, "%s", why);
        return SG_REG_E_INVALID;
    }
    json_t *req = json_pack("{s:s, s:s}", "schema", parsed->text, "schemaType", "AVRO");
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (body == NULL)
        sg_oom();
    char encoded[3 * SG_REGISTRY_MAX_SUBJECT_LEN + 1], path[1024];
    encode_subject(subject, encoded, sizeof(encoded));
    snprintf(path, sizeof(path), "/subjects/%s/versions", encoded);
    int status = 0;
    char *resp = NULL;
    size_t resp_len = 0;
    int rc = SG_REG_E_UNAVAILABLE;
    if (sg_reg_http_request(&reg->parsed_url, "POST", path, body, strlen(body), timeout_ms, &status, &resp, &resp_len, why,
                            sizeof(why)) != 0) {
        sg_errf(err, errlen, "%s%s: %s", reg->url, path, why);
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
            sg_errf(err, errlen, "%s%s: HTTP %d: %s", reg->url, path, status, message != NULL ? message : "(no message)");
        }
        json_decref(doc);
    }
    sg_reg_schema_free(parsed);
    free(resp);
    free(body);
    return rc;
}

int sg_reg_external_create(sg_registry_t *reg, const char *url, char *err, size_t errlen)
{
    reg->url = sg_strdup(url);
    if (sg_reg_url_parse(reg->url, &reg->parsed_url) != 0)
        return sg_errf(err, errlen, "schema_registry.url: cannot use %s", reg->url);
    return 0;
}

void sg_reg_external_dispose(sg_registry_t *reg)
{
    free(reg->misses);
    reg->misses = NULL;
    reg->n_misses = 0;
    free(reg->url);
    reg->url = NULL;
}
