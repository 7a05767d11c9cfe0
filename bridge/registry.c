/*
 * The schema registry (sg_registry.h): its lifecycle and blocking registration. The state, the
 * `_schemas` log, the external client and the config's schema files each have their own file
 * (see registry_int.h); this one puts them together: built in, a registry is the state fed by the
 * log's thread; external, the state is a cache in front of another registry's HTTP API.
 */
#include "registry_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_int.h"
#include "sg_base.h"

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
        sg_errf(err, errlen, "subject %s: must be 1..%d characters of [A-Za-z0-9._:@+-]", subject, SG_REGISTRY_MAX_SUBJECT_LEN);
        return SG_REG_E_BAD_SUBJECT;
    }
    if (reg->url != NULL) {
        *version = 0;
        return sg_reg_external_register(reg, subject, text, len, timeout_ms, id, err, errlen);
    }
    sg_reg_waiter_t *waiter = sg_calloc(1, sizeof(*waiter));
    pthread_mutex_init(&waiter->mutex, NULL);
    pthread_cond_init(&waiter->cond, NULL);
    waiter->refs = 2;
    int rc = sg_registry_register_async(reg, subject, text, len, waiter_done, waiter);
    if (rc != 0) {
        sg_errf(err, errlen, "the registry is not running");
        waiter->refs = 1;
        waiter_release(waiter);
        return rc;
    }
    struct timespec until = sg_bridge_deadline(timeout_ms);
    pthread_mutex_lock(&waiter->mutex);
    while (!waiter->done && pthread_cond_timedwait(&waiter->cond, &waiter->mutex, &until) != ETIMEDOUT)
        ;
    if (waiter->done) {
        rc = waiter->err;
        *id = waiter->id;
        *version = waiter->version;
        if (rc != SG_REG_OK)
            sg_errf(err, errlen, "%s", waiter->msg);
    } else {
        rc = SG_REG_E_UNAVAILABLE;
        sg_errf(err, errlen, "the registry did not confirm within %lld ms", (long long)timeout_ms);
    }
    pthread_mutex_unlock(&waiter->mutex);
    waiter_release(waiter);
    return rc;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

sg_registry_t *sg_reg_alloc(void)
{
    sg_registry_t *reg = sg_calloc(1, sizeof(*reg));
    pthread_rwlock_init(&reg->lock, NULL);
    pthread_mutex_init(&reg->ops_mutex, NULL);
    pthread_mutex_init(&reg->fetch_mutex, NULL);
    reg->global_level = SG_COMPAT_BACKWARD;
    sg_reg_avro_cache_init(&reg->avro_cache);
    return reg;
}

sg_registry_t *sg_registry_create_local(void)
{
    sg_registry_t *reg = sg_reg_alloc();
    atomic_store(&reg->ready, 1);
    return reg;
}

sg_registry_t *sg_registry_create(const sg_conf_t *conf, const char *bootstraps, char *err, size_t errlen)
{
    sg_registry_t *reg = sg_reg_alloc();
    reg->conf = conf;
    if (sg_reg_config_load(reg, err, errlen) != 0)
        goto fail;
    if (conf->schema_registry.url != NULL) {
        if (sg_reg_external_create(reg, conf->schema_registry.url, err, errlen) != 0)
            goto fail;
        atomic_store(&reg->ready, 1);
        return reg;
    }
    if (sg_reg_log_create(reg, bootstraps, err, errlen) != 0)
        goto fail;
    return reg;
fail:
    sg_registry_destroy(reg);
    return NULL;
}

int sg_registry_start(sg_registry_t *reg, char *err, size_t errlen)
{
    if (reg->url != NULL || reg->producer == NULL)
        return 0;
    return sg_reg_log_start(reg, err, errlen);
}

int sg_registry_wait_ready(sg_registry_t *reg, int64_t timeout_ms, char *err, size_t errlen)
{
    int64_t deadline = sg_mono_ms() + timeout_ms;
    while (!atomic_load(&reg->ready)) {
        if (sg_mono_ms() >= deadline)
            return sg_errf(err, errlen, "the schema registry did not read topic %s within %lld ms (does it exist?)",
                           SG_REGISTRY_TOPIC, (long long)timeout_ms);
        sg_sleep_ms(10);
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
    sg_reg_log_stop(reg);
    sg_reg_state_dispose(reg);
    sg_reg_config_dispose(reg);
    sg_reg_external_dispose(reg);
    sg_reg_avro_cache_dispose(&reg->avro_cache);
    pthread_rwlock_destroy(&reg->lock);
    pthread_mutex_destroy(&reg->ops_mutex);
    pthread_mutex_destroy(&reg->fetch_mutex);
    free(reg);
}
