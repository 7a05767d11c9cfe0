/*
 * The built-in registry's log, `_schemas` (registry_int.h): the record format, the claim
 * protocol, the operation queue, and the registry thread with its producer and consumer.
 *
 * Keys and values are JSON close to Confluent's. A SCHEMA key names the subject, version, claimed
 * id and a fingerprint of the canonical text, so that two different claims never share a key and
 * compaction can never drop a winning claim in favour of a losing one (equal keys carry equal
 * records). The records are decoded here and folded into the state by registry_state.c.
 *
 * One operation is in flight at a time on the registry thread (check, produce, wait until the
 * record is applied, answer or retry), which keeps a single instance from racing itself; races
 * between instances are settled by the log (the first claim in offset order wins), and the loser
 * retries against the new state.
 */
#include "registry_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_int.h"
#include "sg_base.h"
#include "sg_log.h"

#define SG_REG_OP_TIMEOUT_MS 15000      /* an operation waits this long for its record to be applied */
#define SG_REG_PRODUCE_TIMEOUT_MS 10000 /* message.timeout.ms: a delivery report always comes first */
#define SG_REG_ATTEMPTS 10              /* claims lost to other instances before giving up */
#define SG_REG_POLL_MS 10
#define SG_REG_METADATA_TIMEOUT_MS 2000
#define SG_REG_SETUP_RETRY_MS 500

/* OP_CHECK and OP_FIND write nothing: they run on this thread only to keep schema parsing and
 * compatibility walks (milliseconds for large schemas) off the event loops. */
typedef enum { OP_REGISTER, OP_LEVEL, OP_CHECK, OP_FIND } op_kind_t;

struct st_sg_reg_op_t {
    struct st_sg_reg_op_t *next;
    op_kind_t kind;
    char *subject; /* NULL: global level */
    char *text;
    size_t len;
    sg_compat_t level;
    int clear;
    int version; /* OP_CHECK: the version checked against (-1: latest) */
    sg_registry_done_cb done_cb;
    void *opaque;
    int64_t deadline_ms;
    int attempts;
    int produced, delivered;
    int delivery_failed;
    char delivery_err[256];
    int64_t offset;
};

/* ---- records ------------------------------------------------------------------------------- */

int sg_registry_schema_record(const char *subject, int version, uint32_t id, const char *text, size_t len, char **key, char **value,
                              char *err, size_t errlen)
{
    char *canonical = sg_schema_canonical(text, len, err, errlen);
    if (canonical == NULL)
        return -1;
    char fp[17];
    snprintf(fp, sizeof(fp), "%016" PRIx64, sg_reg_fingerprint(canonical, strlen(canonical)));
    json_t *key_doc = json_pack("{s:s, s:s, s:i, s:I, s:s, s:i}", "keytype", "SCHEMA", "subject", subject, "version", version, "id",
                                (json_int_t)id, "fingerprint", fp, "magic", 1);
    json_t *value_doc = json_pack("{s:s, s:i, s:I, s:s, s:b}", "subject", subject, "version", version, "id", (json_int_t)id,
                                  "schema", canonical, "deleted", 0);
    free(canonical);
    if (key_doc == NULL || value_doc == NULL)
        sg_oom();
    *key = json_dumps(key_doc, JSON_COMPACT);
    *value = json_dumps(value_doc, JSON_COMPACT);
    json_decref(key_doc);
    json_decref(value_doc);
    if (*key == NULL || *value == NULL)
        sg_oom();
    return 0;
}

int sg_registry_config_record(const char *subject, sg_compat_t level, int clear, char **key, char **value)
{
    json_t *key_doc = json_pack("{s:s, s:o, s:i}", "keytype", "CONFIG", "subject",
                                subject != NULL ? json_string(subject) : json_null(), "magic", 0);
    if (key_doc == NULL)
        sg_oom();
    *key = json_dumps(key_doc, JSON_COMPACT);
    json_decref(key_doc);
    *value = NULL;
    if (!clear) {
        json_t *value_doc = json_pack("{s:s}", "compatibilityLevel", sg_compat_name(level));
        if (value_doc == NULL)
            sg_oom();
        *value = json_dumps(value_doc, JSON_COMPACT);
        json_decref(value_doc);
    }
    if (*key == NULL || (!clear && *value == NULL))
        sg_oom();
    return 0;
}

static void log_ignored(sg_registry_t *reg, int64_t offset, const char *why)
{
    /* Lost races are normal; only malformed records are worth a line, and only the first. */
    if (sg_log_once(&reg->ignored_once, 0))
        sg_log_warn("registry: %s offset %lld ignored: %s (logged once)", SG_REGISTRY_TOPIC, (long long)offset, why);
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
    sg_reg_state_set_level(reg, subject_name, level, clear);
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
    int rc = sg_reg_state_claim(reg, subject_name, version, id, text, json_string_length(json_object_get(doc, "schema")), err,
                                sizeof(err));
    if (rc < 0)
        log_ignored(reg, offset, err);
    json_decref(doc); /* subject_name and text point into it */
    return rc > 0;
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
    op->deadline_ms = sg_mono_ms() + SG_REG_OP_TIMEOUT_MS;
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

/* Queues an operation on a schema text under a subject (register, check, find). */
static int enqueue_text(sg_registry_t *reg, op_kind_t kind, const char *subject, int version, const char *text, size_t len,
                        sg_registry_done_cb done_cb, void *opaque)
{
    if (reg->url != NULL)
        return SG_REG_E_EXTERNAL;
    sg_reg_op_t *op = sg_calloc(1, sizeof(*op));
    op->kind = kind;
    op->subject = sg_strdup(subject);
    op->text = sg_memdup(text, len);
    op->len = len;
    op->version = version;
    op->done_cb = done_cb;
    op->opaque = opaque;
    return enqueue(reg, op);
}

int sg_registry_register_async(sg_registry_t *reg, const char *subject, const char *text, size_t len, sg_registry_done_cb done_cb,
                               void *opaque)
{
    return enqueue_text(reg, OP_REGISTER, subject, -1, text, len, done_cb, opaque);
}

int sg_registry_check_async(sg_registry_t *reg, const char *subject, int version, const char *text, size_t len,
                            sg_registry_done_cb done_cb, void *opaque)
{
    return enqueue_text(reg, OP_CHECK, subject, version, text, len, done_cb, opaque);
}

int sg_registry_find_async(sg_registry_t *reg, const char *subject, const char *text, size_t len, sg_registry_done_cb done_cb,
                           void *opaque)
{
    return enqueue_text(reg, OP_FIND, subject, -1, text, len, done_cb, opaque);
}

int sg_registry_set_level_async(sg_registry_t *reg, const char *subject, sg_compat_t level, int clear, sg_registry_done_cb done_cb,
                                void *opaque)
{
    if (reg->url != NULL)
        return SG_REG_E_EXTERNAL;
    sg_reg_op_t *op = sg_calloc(1, sizeof(*op));
    op->kind = OP_LEVEL;
    op->subject = subject != NULL ? sg_strdup(subject) : NULL;
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
        return sg_errf(err, errlen, "cannot produce to %s: %s", SG_REGISTRY_TOPIC, rd_kafka_err2str(rkerr));
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
    if (sg_mono_ms() > op->deadline_ms) {
        /* queued past its deadline: its caller has been answered 503 already; never write it */
        reg->inflight = NULL;
        op_finish(op, SG_REG_E_UNAVAILABLE, "the operation waited past its deadline", 0, 0);
        return;
    }
    if (op->kind == OP_CHECK || op->kind == OP_FIND) {
        reg->inflight = NULL;
        if (op->kind == OP_CHECK) {
            int rc = sg_registry_check(reg, op->subject, op->version, op->text, op->len, err, sizeof(err));
            op_finish(op, rc, rc == SG_REG_OK ? NULL : err, 0, 0);
        } else {
            const sg_registry_schema_t *found = NULL;
            int found_version = 0;
            int rc = sg_registry_find(reg, op->subject, op->text, op->len, &found, &found_version, err, sizeof(err));
            op_finish(op, rc, rc == SG_REG_OK ? NULL : err, rc == SG_REG_OK ? found->id : 0, rc == SG_REG_OK ? found_version : 0);
        }
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
        if (sg_reg_subjects_full(reg, op->subject)) {
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
        if (sg_mono_ms() > op->deadline_ms) {
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
    sg_log_info("registry: another instance registered %s first (offset %lld); retrying", op->subject, (long long)op->offset);
    if (++op->attempts >= SG_REG_ATTEMPTS || sg_mono_ms() > op->deadline_ms) {
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
    sg_assign_topic_t topic;
    char err[512];
    if (sg_assign_describe(reg->consumer, SG_REGISTRY_TOPIC, NULL, NULL, SG_REG_METADATA_TIMEOUT_MS, &reg->stopping, &topic, err,
                           sizeof(err)) != 0) {
        sg_log_warn("registry: %s (retrying)", err);
        return -1;
    }
    /* _schemas has one partition; the state is the fold of all of it */
    sg_assign_part_t *part = &topic.parts[0];
    reg->next_offset = part->low;
    reg->start_high = part->high;
    part->start = RD_KAFKA_OFFSET_BEGINNING;
    for (size_t p = 1; p < topic.n_parts; ++p)
        topic.parts[p].start = SG_ASSIGN_SKIP;
    int rc = sg_assign_apply(reg->consumer, &topic, 1, err, sizeof(err));
    if (rc != 0)
        sg_log_warn("registry: %s (retrying)", err);
    sg_assign_dispose(&topic, 1);
    return rc;
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
            sg_log_warn("registry: %s: %s", SG_REGISTRY_TOPIC, rd_kafka_message_errstr(msg));
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
    sg_thread_name("sg-registry");
    while (!atomic_load(&reg->stopping) && setup(reg) != 0)
        sg_bridge_sleep(&reg->stopping, SG_REG_SETUP_RETRY_MS);
    while (!atomic_load(&reg->stopping)) {
        rd_kafka_poll(reg->producer, 0);
        consume(reg, SG_REG_POLL_MS);
        if (!atomic_load(&reg->ready) && reg->next_offset >= reg->start_high)
            atomic_store(&reg->ready, 1);
        op_progress(reg);
    }
    return NULL;
}

/* ---- clients and lifecycle ----------------------------------------------------------------- */

static rd_kafka_t *make_client(const sg_registry_t *reg, const char *bootstraps, rd_kafka_type_t type, char *err, size_t errlen)
{
    rd_kafka_conf_t *rkconf = sg_kafka_conf_new(bootstraps, "streamgate-registry", err, errlen);
    if (rkconf == NULL)
        return NULL;
    int rc;
    if (type == RD_KAFKA_PRODUCER)
        rc = sg_kafka_conf_durable_producer(rkconf, SG_REG_PRODUCE_TIMEOUT_MS, err, errlen);
    else
        rc = sg_kafka_conf_assigning_consumer(rkconf, "streamgate-registry", 1, err, errlen) ||
             sg_kafka_conf_set(rkconf, "auto.offset.reset", "earliest", err, errlen);
    if (rc != 0 || sg_kafka_conf_apply(rkconf, reg->conf, err, errlen) != 0) {
        rd_kafka_conf_destroy(rkconf);
        return NULL;
    }
    if (type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set_dr_msg_cb(rkconf, on_delivery);
    return sg_kafka_new(type, rkconf, "kafka registry client", err, errlen);
}

int sg_reg_log_create(sg_registry_t *reg, const char *bootstraps, char *err, size_t errlen)
{
    if ((reg->producer = make_client(reg, bootstraps, RD_KAFKA_PRODUCER, err, errlen)) == NULL ||
        (reg->consumer = make_client(reg, bootstraps, RD_KAFKA_CONSUMER, err, errlen)) == NULL)
        return -1;
    reg->producer_topic = rd_kafka_topic_new(reg->producer, SG_REGISTRY_TOPIC, NULL);
    rd_kafka_poll_set_consumer(reg->consumer);
    reg->queue = rd_kafka_queue_get_consumer(reg->consumer);
    return 0;
}

int sg_reg_log_start(sg_registry_t *reg, char *err, size_t errlen)
{
    if (reg->thread_started)
        return sg_errf(err, errlen, "the registry is already started");
    static const char *const configs[] = {"cleanup.policy", "compact", NULL};
    sg_kafka_ensure_topic(reg->producer, "registry", SG_REGISTRY_TOPIC, 1, configs);
    pthread_mutex_lock(&reg->ops_mutex);
    int rc = pthread_create(&reg->thread, NULL, registry_main, reg);
    if (rc == 0)
        reg->thread_started = 1;
    pthread_mutex_unlock(&reg->ops_mutex);
    if (rc != 0)
        return sg_errf(err, errlen, "cannot start the registry thread: %s", strerror(rc));
    return 0;
}

void sg_reg_log_stop(sg_registry_t *reg)
{
    pthread_mutex_lock(&reg->ops_mutex);
    atomic_store(&reg->stopping, 1);
    pthread_mutex_unlock(&reg->ops_mutex);
    if (reg->thread_started)
        pthread_join(reg->thread, NULL);
    reg->thread_started = 0;
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
    reg->ops_tail = NULL;
    if (reg->queue != NULL)
        rd_kafka_queue_destroy(reg->queue);
    reg->queue = NULL;
    if (reg->consumer != NULL) {
        rd_kafka_consumer_close(reg->consumer);
        rd_kafka_destroy(reg->consumer);
    }
    reg->consumer = NULL;
}
