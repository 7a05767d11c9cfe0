/*
 * The config's schema files (registry_int.h): every file of conf->schemas is read and parsed when
 * the registry is created (so a bad one fails the start, and --check, naming the file), and the
 * schema of every route with `schema:` is registered under "<route.topic>-value" at start, in
 * config order, so that on a fresh embedded cluster the ids are deterministic (1, 2, ...).
 */
#include "registry_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_base.h"
#include "sg_log.h"

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        sg_errf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    char *buf = sg_malloc(SG_REGISTRY_MAX_SCHEMA_BYTES + 1);
    size_t n = fread(buf, 1, SG_REGISTRY_MAX_SCHEMA_BYTES + 1, fp);
    int failed = ferror(fp);
    fclose(fp);
    if (failed || n > SG_REGISTRY_MAX_SCHEMA_BYTES) {
        sg_errf(err, errlen, failed ? "cannot read it" : "larger than %d bytes", SG_REGISTRY_MAX_SCHEMA_BYTES);
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int sg_reg_config_load(sg_registry_t *reg, char *err, size_t errlen)
{
    const sg_conf_t *conf = reg->conf;
    reg->config_schemas = sg_calloc(conf->n_schemas, sizeof(*reg->config_schemas));
    reg->config_registered = sg_calloc(conf->n_schemas, sizeof(*reg->config_registered));
    reg->route_schemas = sg_calloc(conf->n_routes, sizeof(*reg->route_schemas));
    for (size_t i = 0; i < conf->n_schemas; i++) {
        char *text, why[512];
        size_t len;
        if (read_file(conf->schemas[i].file, &text, &len, why, sizeof(why)) != 0) {
            sg_errf(err, errlen, "schemas[%zu] (%s): %s: %s", i, conf->schemas[i].name, conf->schemas[i].file, why);
            return -1;
        }
        reg->config_schemas[i] = sg_reg_schema_new(0, text, len, SG_REG_NEW_PIN, why, sizeof(why));
        free(text);
        if (reg->config_schemas[i] == NULL) {
            sg_errf(err, errlen, "schemas[%zu] (%s): %s: %s", i, conf->schemas[i].name, conf->schemas[i].file, why);
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

int sg_registry_check_files(const sg_conf_t *conf, char *err, size_t errlen)
{
    sg_registry_t *reg = sg_reg_alloc();
    reg->conf = conf;
    int rc = sg_reg_config_load(reg, err, errlen);
    sg_registry_destroy(reg);
    return rc;
}

int sg_registry_register_config(sg_registry_t *reg, int64_t timeout_ms, char *err, size_t errlen)
{
    const sg_conf_t *conf = reg->conf;
    int64_t deadline = sg_mono_ms() + timeout_ms;
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
        int64_t left = deadline - sg_mono_ms();
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
            sg_errf(err, errlen, "routes[%zu] (%s): registering schema %s under %s: %s", r, route->name, route->schema, subject,
                    why);
            return -1;
        }
        const sg_registry_schema_t *registered = sg_registry_lookup(reg, id);
        if (registered == NULL) {
            sg_errf(err, errlen, "routes[%zu] (%s): schema id %" PRIu32 " is not in the registry", r, route->name, id);
            return -1;
        }
        sg_registry_schema_avro(registered); /* pinned now: routes validate with it on every request */
        reg->route_schemas[r] = registered;
        reg->config_registered[s] = registered;
        sg_log_info("schema %s registered under %s: id %" PRIu32 "%s%.0d", route->schema, subject, id,
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

void sg_reg_config_dispose(sg_registry_t *reg)
{
    for (size_t i = 0; reg->config_schemas != NULL && i < reg->conf->n_schemas; i++)
        sg_reg_schema_free(reg->config_schemas[i]);
    free(reg->config_schemas);
    free(reg->config_registered);
    free(reg->route_schemas);
    reg->config_schemas = NULL;
    reg->config_registered = NULL;
    reg->route_schemas = NULL;
}
