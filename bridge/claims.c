/*
 * Idempotency-Key claims shared by a deployment (sg_deployment.h): the records of
 * `_streamgate.<name>.idempotency`, their fold into the request store, and the operations waiting
 * for their record to be folded.
 *
 * Records (JSON values; key "<route>/<hex SHA-256 of the Idempotency-Key>", partition = that
 * hash mod the partition count, so every record of one (route, key) is on one partition, in the
 * order it was produced):
 *   claim     {route, key, id, body, at, expires}  request `id` claims the key for a body whose
 *                                                  SHA-256 is `body`, at `at` (ms)
 *   complete  {..., topic, partition, offset, timestamp, created}  its event is in Kafka there
 *   release   {..., id}                            its event is not in Kafka: the key is free
 *   unknown   {..., partition, produced}           nobody knows yet whether it is
 * Every record carries the claim's `expires` and the instance that wrote it (`by`).
 *
 * The fold applies them in offset order with the store's own claim rules (sg_store.h), the
 * clock of a claim being its `at`, not the reader's: a claim wins when no unexpired claim is
 * held, so every instance computes the same holder. A claimant learns whether it won from its
 * own fold once it has folded its record (the registry's pattern): the record's offset is known
 * from the delivery report, and once the fold has read everything before it in its partition
 * (at once when the partition was idle: its end was that offset) the claimant folds its own
 * record itself rather than wait for the fetch that brings it back, which applies it again,
 * harmlessly. A claim that lost, or that nobody will act on (the request went away, the answer
 * came too late), is withdrawn with a release, so that no later reading of the log can take it
 * for the holder.
 *
 * Why not compacted: compaction keeps the last record per key, which would move a claim's
 * completion ahead of later claims and change which came first. The records matter only while a
 * claim can live (requests.retention), so the topic deletes them after twice that; a reader
 * folding from the start skips records whose claim expired more than a clock skew ago.
 */
#include "deployment_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sg_base.h"
#include "sg_log.h"

#define SG_CLAIMS_READBACK_MS 5000          /* after its delivery report, a claim waits this long to be folded */
#define SG_CLAIMS_SKEW_MS (5LL * 60 * 1000) /* a claim expired longer ago than this decides nothing any more */
#define SG_CLAIMS_RETRY_MS 500              /* a refused record is produced again after this, */
#define SG_CLAIMS_RETRY_MAX_MS 30000        /* doubling up to this */

typedef enum { OP_CLAIM, OP_COMPLETE, OP_RELEASE, OP_UNKNOWN } record_op_t;
static const char *const op_names[] = {"claim", "complete", "release", "unknown"};

typedef struct {
    record_op_t op;
    char route[SG_STORE_MAX_ROUTE + 1];
    uint8_t key[32];
    char id[SG_STORE_MAX_ID + 1];
    size_t idlen;
    uint8_t body[32]; /* claim */
    int64_t at;       /* claim */
    int64_t expires;
    char topic[256]; /* complete */
    char owner[128]; /* complete: "" when not known */
    int32_t partition;
    int64_t offset, timestamp, created; /* complete */
    int64_t produced;                   /* unknown */
} claim_record_t;

/* A record on its way: a claim waiting to be folded, or a completion, release or unknown
 * outcome waiting for its delivery report (produced again until the broker takes it, for as long
 * as its claim lives: other instances keep a claim as they last saw it). */
struct st_sg_claim_op_t {
    sg_claim_op_t *next;
    claim_record_t rec;
    int32_t partition;
    int64_t offset;
    int delivered; /* 0 waiting, 1 in the log at offset, -1 refused (deployment thread) */
    char why[160];
    int64_t deadline_ms; /* a claim's answer (monotonic) */
    int64_t retry_at_ms; /* another attempt then (monotonic; 0: none planned) */
    int64_t backoff_ms;
    sg_claims_done_cb done_cb;           /* a claim */
    sg_claims_published_cb published_cb; /* a completion, until its first report; may be NULL */
    void *opaque;
};

void sg_deployment_claims_topic_config(const sg_conf_t *conf, const char **out, char *numbers)
{
    int n = snprintf(numbers, 32, "%lld", (long long)conf->requests.retention_ms * 2);
    snprintf(numbers + n + 1, 32, "%lld", (long long)conf->requests.retention_ms);
    out[0] = "cleanup.policy";
    out[1] = "delete";
    out[2] = "retention.ms";
    out[3] = numbers;
    out[4] = "segment.ms"; /* segments close (and can be deleted) within a retention */
    out[5] = numbers + n + 1;
    out[6] = NULL;
}

/* ---- records ------------------------------------------------------------------------------- */

static void hex_of(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; ++i) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hex_value(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static int from_hex(const char *text, uint8_t *out, size_t len)
{
    if (text == NULL || strlen(text) != 2 * len)
        return -1;
    for (size_t i = 0; i < len; ++i) {
        int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static char *encode(const claim_record_t *rec, const char *instance)
{
    char key[65], body[65];
    hex_of(rec->key, 32, key);
    json_t *doc = json_pack("{s:i, s:s, s:s, s:s, s:s%, s:I, s:s}", "v", 1, "op", op_names[rec->op], "route", rec->route, "key",
                            key, "id", rec->id, rec->idlen, "expires", (json_int_t)rec->expires, "by", instance);
    if (doc == NULL)
        sg_oom();
    if (rec->op == OP_CLAIM) {
        hex_of(rec->body, 32, body);
        json_object_set_new(doc, "body", json_string(body));
        json_object_set_new(doc, "at", json_integer(rec->at));
    } else if (rec->op == OP_COMPLETE) {
        json_object_set_new(doc, "topic", json_string(rec->topic));
        json_object_set_new(doc, "partition", json_integer(rec->partition));
        json_object_set_new(doc, "offset", json_integer(rec->offset));
        json_object_set_new(doc, "timestamp", json_integer(rec->timestamp));
        json_object_set_new(doc, "created", json_integer(rec->created));
        if (rec->owner[0] != '\0')
            json_object_set_new(doc, "owner", json_string(rec->owner));
    } else if (rec->op == OP_UNKNOWN) {
        json_object_set_new(doc, "partition", json_integer(rec->partition));
        json_object_set_new(doc, "produced", json_integer(rec->produced));
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL)
        sg_oom();
    return text;
}

static int get_int(const json_t *doc, const char *name, int64_t min, int64_t *out)
{
    const json_t *value = json_object_get(doc, name);
    if (!json_is_integer(value) || json_integer_value(value) < min)
        return -1;
    *out = json_integer_value(value);
    return 0;
}

static int copy_string(const json_t *doc, const char *name, char *out, size_t size, size_t *len)
{
    const json_t *value = json_object_get(doc, name);
    size_t n = json_string_length(value);
    if (!json_is_string(value) || n == 0 || n >= size || memchr(json_string_value(value), 0, n) != NULL)
        return -1;
    memcpy(out, json_string_value(value), n + 1);
    if (len != NULL)
        *len = n;
    return 0;
}

/* Returns 0 with rec filled, or -1 with why: a record another version (or anyone) wrote that
 * this one does not understand is skipped, never guessed at. */
static int decode(const void *value, size_t len, claim_record_t *rec, const char **why)
{
    json_t *doc = json_loadb(value, len, 0, NULL);
    const char *op = json_string_value(json_object_get(doc, "op"));
    int64_t partition = 0, version = 0;
    int rc = -1;
    memset(rec, 0, sizeof(*rec));
    *why = "not a claim record";
    if (doc == NULL || op == NULL || get_int(doc, "v", 1, &version) != 0 || version != 1)
        goto out;
    for (rec->op = OP_CLAIM; rec->op <= OP_UNKNOWN && strcmp(op, op_names[rec->op]) != 0; ++rec->op)
        ;
    *why = "a malformed claim record";
    if (rec->op > OP_UNKNOWN || copy_string(doc, "route", rec->route, sizeof(rec->route), NULL) != 0 ||
        copy_string(doc, "id", rec->id, sizeof(rec->id), &rec->idlen) != 0 ||
        from_hex(json_string_value(json_object_get(doc, "key")), rec->key, 32) != 0 ||
        get_int(doc, "expires", 0, &rec->expires) != 0)
        goto out;
    if (rec->op == OP_CLAIM &&
        (from_hex(json_string_value(json_object_get(doc, "body")), rec->body, 32) != 0 || get_int(doc, "at", 0, &rec->at) != 0))
        goto out;
    if ((rec->op == OP_COMPLETE || rec->op == OP_UNKNOWN) &&
        (get_int(doc, "partition", 0, &partition) != 0 || partition > INT32_MAX))
        goto out;
    rec->partition = (int32_t)partition;
    if (rec->op == OP_COMPLETE &&
        (copy_string(doc, "topic", rec->topic, sizeof(rec->topic), NULL) != 0 || get_int(doc, "offset", 0, &rec->offset) != 0 ||
         get_int(doc, "timestamp", 0, &rec->timestamp) != 0 || get_int(doc, "created", 0, &rec->created) != 0))
        goto out;
    if (rec->op == OP_COMPLETE &&
        strspn(rec->topic, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(rec->topic))
        goto out; /* a topic name, as Kafka allows them: it is written into replayed bodies as is */
    if (rec->op == OP_COMPLETE && json_object_get(doc, "owner") != NULL &&
        copy_string(doc, "owner", rec->owner, sizeof(rec->owner), NULL) != 0)
        goto out;
    if (rec->op == OP_UNKNOWN && get_int(doc, "produced", 0, &rec->produced) != 0)
        goto out;
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

/* ---- the fold ------------------------------------------------------------------------------ */

/* Applies one record to the store. Returns 0, or -1 when the store refused it (logged). */
static int apply(sg_deployment_t *deployment, const claim_record_t *rec, int64_t offset)
{
    char err[256];
    sg_idem_result_t result;
    int rc = 0;
    sg_store_t *store = deployment->store;
    switch (rec->op) {
    case OP_CLAIM:
        rc = sg_store_idem_claim(store, rec->route, rec->key, 32, rec->body, rec->id, rec->idlen, rec->at, rec->expires, &result,
                                 err, sizeof(err));
        break;
    case OP_COMPLETE: {
        sg_claim_position_t pos = {.topic = rec->topic,
                                   .partition = rec->partition,
                                   .offset = rec->offset,
                                   .timestamp_ms = rec->timestamp,
                                   .created_ms = rec->created,
                                   .expires_ms = rec->expires,
                                   .owner = rec->owner[0] != '\0' ? rec->owner : NULL};
        if (deployment->completed_cb != NULL && rec->idlen == 32)
            deployment->completed_cb(deployment->ctx, rec->route, rec->id, &pos);
        rc = sg_store_idem_complete(store, rec->route, rec->key, 32, rec->id, rec->idlen, err, sizeof(err));
        break;
    }
    case OP_RELEASE: rc = sg_store_idem_release(store, rec->route, rec->key, 32, rec->id, rec->idlen, err, sizeof(err)); break;
    case OP_UNKNOWN:
        rc = sg_store_idem_mark_unknown(store, rec->route, rec->key, 32, rec->id, rec->idlen, rec->partition, rec->produced, err,
                                        sizeof(err));
        break;
    }
    if (rc < 0) {
        sg_log_error("deployment: %s offset %lld (%s of %s) not folded: %s; no claim is decided until the store takes writes again",
                     deployment->claims_topic, (long long)offset, op_names[rec->op], rec->id, err);
        return -1;
    }
    return 0;
}

int sg_claims_fold(sg_deployment_t *deployment, const void *value, size_t len, int64_t offset)
{
    claim_record_t rec;
    const char *why;
    if (value == NULL)
        return 0; /* a tombstone: nothing in this topic is written as one */
    if (decode(value, len, &rec, &why) != 0) {
        if (sg_log_once(&deployment->ignored_once, 2))
            sg_log_warn("deployment: %s offset %lld ignored: %s (logged once)", deployment->claims_topic, (long long)offset, why);
        return 0;
    }
    if (rec.expires + SG_CLAIMS_SKEW_MS <= sg_now_ms())
        return 0;
    return apply(deployment, &rec, offset);
}

/* ---- operations ---------------------------------------------------------------------------- */

static int32_t partition_of(const uint8_t key[32], int parts)
{
    uint32_t hash = (uint32_t)key[0] << 24 | (uint32_t)key[1] << 16 | (uint32_t)key[2] << 8 | key[3];
    return (int32_t)(hash % (uint32_t)parts);
}

/* Produces op's record to its partition. Returns 0 or -1 with err. */
static int produce_op(sg_deployment_t *deployment, sg_claim_op_t *op, char *err, size_t errlen)
{
    char key[SG_STORE_MAX_ROUTE + 66];
    int n = snprintf(key, sizeof(key), "%s/", op->rec.route);
    hex_of(op->rec.key, 32, key + n);
    char *value = encode(&op->rec, deployment->instance);
    op->delivered = 0;
    int rc = sg_deployment_produce(deployment, deployment->producer_claims_topic, op->partition, key, value, strlen(value), op, err,
                                   errlen);
    free(value);
    return rc;
}

/* Links op (taken) and produces its record. Returns 0, or -1 with err (op freed; a claim is then
 * not answered through its done_cb). */
static int publish(sg_deployment_t *deployment, sg_claim_op_t *op, char *err, size_t errlen)
{
    int parts = atomic_load(&deployment->n_parts);
    if (parts <= 0) {
        free(op);
        return sg_errf(err, errlen, "%s is not read yet", deployment->claims_topic);
    }
    op->partition = partition_of(op->rec.key, parts);
    op->backoff_ms = SG_CLAIMS_RETRY_MS;
    /* Linked first: its delivery report may come before producev returns. */
    pthread_mutex_lock(&deployment->ops_mutex);
    op->next = deployment->ops;
    deployment->ops = op;
    pthread_mutex_unlock(&deployment->ops_mutex);
    if (produce_op(deployment, op, err, errlen) == 0)
        return 0;
    pthread_mutex_lock(&deployment->ops_mutex);
    if (op->rec.op == OP_CLAIM && op->done_cb == NULL) {
        /* The deployment thread answered the claim meanwhile (the store refused writes) and may
         * still be using it: the answer stands, and its next pass frees it (no report comes). */
        op->delivered = -1;
        pthread_mutex_unlock(&deployment->ops_mutex);
        return 0;
    }
    for (sg_claim_op_t **link = &deployment->ops; *link != NULL; link = &(*link)->next)
        if (*link == op) {
            *link = op->next;
            break;
        }
    pthread_mutex_unlock(&deployment->ops_mutex);
    free(op);
    return -1;
}

/* A new operation on (route, key, request_id), checked. Returns it, or NULL with err. */
static sg_claim_op_t *op_new(record_op_t kind, const char *route, const uint8_t key[32], const char *request_id, size_t idlen,
                             char *err, size_t errlen)
{
    size_t route_len = route != NULL ? strlen(route) : 0;
    if (route_len == 0 || route_len > SG_STORE_MAX_ROUTE || idlen == 0 || idlen > SG_STORE_MAX_ID ||
        memchr(request_id, 0, idlen) != NULL) {
        sg_errf(err, errlen, "a claim needs a route of 1..%d bytes and a request id of 1..%d", SG_STORE_MAX_ROUTE, SG_STORE_MAX_ID);
        return NULL;
    }
    sg_claim_op_t *op = sg_calloc(1, sizeof(*op));
    op->rec.op = kind;
    memcpy(op->rec.route, route, route_len + 1);
    memcpy(op->rec.key, key, 32);
    memcpy(op->rec.id, request_id, idlen);
    op->rec.idlen = idlen;
    return op;
}

int sg_claims_claim(sg_deployment_t *deployment, const char *route, const uint8_t key[32], const uint8_t body_sha256[32],
                    const char *request_id, size_t idlen, int64_t claimed_ms, int64_t expires_ms, sg_claims_done_cb done_cb,
                    void *opaque, char *err, size_t errlen)
{
    sg_claim_op_t *op = op_new(OP_CLAIM, route, key, request_id, idlen, err, errlen);
    if (op == NULL)
        return -1;
    memcpy(op->rec.body, body_sha256, 32);
    op->rec.at = claimed_ms;
    op->rec.expires = expires_ms;
    op->deadline_ms = sg_mono_ms() + deployment->conf->kafka.produce_timeout_ms + SG_CLAIMS_READBACK_MS;
    op->done_cb = done_cb;
    op->opaque = opaque;
    return publish(deployment, op, err, errlen);
}

/* Publishes a record of kind for request_id's claim. Returns 0 or -1 (logged: other instances
 * keep the claim as they last saw it, until it expires). */
static int publish_state(sg_deployment_t *deployment, sg_claim_op_t *op, record_op_t kind, const char *request_id, size_t idlen,
                         char *err, size_t errlen)
{
    if (op == NULL || publish(deployment, op, err, errlen) != 0) {
        sg_log_error("deployment: the %s of %.*s's Idempotency-Key claim is not published (other instances keep the claim as "
                     "they last saw it, until it expires): %s",
                     op_names[kind], (int)idlen, request_id, err);
        return -1;
    }
    return 0;
}

int sg_claims_complete(sg_deployment_t *deployment, const char *route, const uint8_t key[32], const char *request_id, size_t idlen,
                       const sg_claim_position_t *pos, sg_claims_published_cb published_cb, void *opaque)
{
    char err[256];
    sg_claim_op_t *op = op_new(OP_COMPLETE, route, key, request_id, idlen, err, sizeof(err));
    if (op != NULL) {
        snprintf(op->rec.topic, sizeof(op->rec.topic), "%s", pos->topic);
        op->rec.partition = pos->partition;
        op->rec.offset = pos->offset;
        op->rec.timestamp = pos->timestamp_ms;
        op->rec.created = pos->created_ms;
        op->rec.expires = pos->expires_ms;
        snprintf(op->rec.owner, sizeof(op->rec.owner), "%s", pos->owner != NULL ? pos->owner : "");
        op->published_cb = published_cb;
        op->opaque = opaque;
    }
    return publish_state(deployment, op, OP_COMPLETE, request_id, idlen, err, sizeof(err));
}

/* A release or an unknown outcome. The claim's expiry is not at hand here; one retention from
 * now outlives it, which is all a reader folding from the start needs (records past it are
 * skipped), and bounds how long a refused record is produced again. */
static int publish_simple(sg_deployment_t *deployment, record_op_t kind, const char *route, const uint8_t key[32],
                          const char *request_id, size_t idlen, int32_t partition, int64_t produced_ms)
{
    char err[256];
    sg_claim_op_t *op = op_new(kind, route, key, request_id, idlen, err, sizeof(err));
    if (op != NULL) {
        op->rec.partition = partition;
        op->rec.produced = produced_ms;
        op->rec.expires = sg_now_ms() + deployment->conf->requests.retention_ms;
    }
    return publish_state(deployment, op, kind, request_id, idlen, err, sizeof(err));
}

int sg_claims_release(sg_deployment_t *deployment, const char *route, const uint8_t key[32], const char *request_id, size_t idlen)
{
    return publish_simple(deployment, OP_RELEASE, route, key, request_id, idlen, 0, 0);
}

int sg_claims_mark_unknown(sg_deployment_t *deployment, const char *route, const uint8_t key[32], const char *request_id,
                           size_t idlen, int32_t partition, int64_t produced_ms)
{
    return publish_simple(deployment, OP_UNKNOWN, route, key, request_id, idlen, partition, produced_ms);
}

void sg_claims_delivered(sg_deployment_t *deployment, sg_claim_op_t *op, const rd_kafka_message_t *msg)
{
    op->offset = msg->offset;
    op->delivered = msg->err == RD_KAFKA_RESP_ERR_NO_ERROR && msg->offset >= 0 ? 1 : -1;
    if (op->delivered < 0)
        snprintf(op->why, sizeof(op->why), "%s did not take the record: %s", deployment->claims_topic,
                 msg->err ? rd_kafka_err2str(msg->err) : "acknowledged without an offset");
}

/* The claim's record is folded (or is next: then it is folded here first). Returns the answer's
 * rc, with result filled for SG_CLAIMS_OK. */
static int decide(sg_deployment_t *deployment, sg_claim_op_t *op, sg_idem_result_t *result)
{
    const claim_record_t *rec = &op->rec;
    char err[256];
    if (deployment->claim_next[op->partition] == op->offset && apply(deployment, rec, op->offset) != 0) {
        deployment->broken = 1;
        return SG_CLAIMS_E_STORE;
    }
    int rc = sg_store_idem_get(deployment->store, rec->route, rec->key, 32, rec->body, rec->at, result, err, sizeof(err));
    if (rc < 0) {
        snprintf(op->why, sizeof(op->why), "%s", err);
        return SG_CLAIMS_E_STORE;
    }
    if (rc == 1) {
        /* It lost, and whoever won has since released the key: in flight for this request. */
        memset(result, 0, sizeof(*result));
        result->kind = SG_IDEM_IN_FLIGHT;
    } else if (result->request_id_len == rec->idlen && memcmp(result->request_id, rec->id, rec->idlen) == 0) {
        result->kind = SG_IDEM_CLAIMED;
    }
    return SG_CLAIMS_OK;
}

/* Answers a claim through done_cb (taken from op, whose done_cb is then NULL), and releases it when
 * it did not win, so that no later reading of the log takes it for the holder (`withdraw`; not at
 * shutdown). Does not free op. */
static void answer_claim(sg_deployment_t *deployment, sg_claim_op_t *op, sg_claims_done_cb done_cb, int rc,
                         const sg_idem_result_t *result, int withdraw)
{
    int won = rc == SG_CLAIMS_OK && result->kind == SG_IDEM_CLAIMED;
    const char *why = op->why[0] != '\0'        ? op->why
                      : rc == SG_CLAIMS_E_STORE ? "the request store refuses writes"
                                                : "the claim was not read back in time";
    done_cb(op->opaque, rc, result, rc == SG_CLAIMS_OK ? NULL : why);
    if (!won && withdraw)
        sg_claims_release(deployment, op->rec.route, op->rec.key, op->rec.id, op->rec.idlen);
}

/* Where a record nobody answers stands: 1 done (in the log, or its claim is past caring), 0 not
 * yet. A refused one is produced again, backing off, while its claim lives. Under ops_mutex. */
static int republish(sg_deployment_t *deployment, sg_claim_op_t *op, int64_t now)
{
    static sg_log_once_t logged;
    char err[256];
    if (op->delivered > 0 || (op->delivered < 0 && op->rec.expires <= sg_now_ms()))
        return 1;
    if (op->delivered < 0) {
        if (sg_log_once(&logged, op->rec.op))
            sg_log_warn("deployment: %s (a %s record): producing it again until it is taken (logged once per kind)", op->why,
                        op_names[op->rec.op]);
        op->delivered = 0;
        op->retry_at_ms = now + op->backoff_ms;
        op->backoff_ms = op->backoff_ms * 2 > SG_CLAIMS_RETRY_MAX_MS ? SG_CLAIMS_RETRY_MAX_MS : op->backoff_ms * 2;
    } else if (op->retry_at_ms != 0 && now >= op->retry_at_ms) {
        op->retry_at_ms = 0;
        if (produce_op(deployment, op, err, sizeof(err)) != 0) {
            snprintf(op->why, sizeof(op->why), "%s", err);
            op->delivered = -1;
        }
    }
    return 0;
}

void sg_claims_progress(sg_deployment_t *deployment)
{
    typedef struct {
        sg_claim_op_t *op;
        sg_claims_done_cb done_cb; /* a claim to answer (NULL: only to free) */
        int rc;
        int keep; /* its delivery report is still to come (it writes into op): op stays linked */
        sg_idem_result_t result;
    } answer_t;
    answer_t answers[64];
    size_t n = 0;
    int64_t now = sg_mono_ms();
    int parts = atomic_load(&deployment->n_parts);
    pthread_mutex_lock(&deployment->ops_mutex);
    for (sg_claim_op_t **link = &deployment->ops; *link != NULL && n < sizeof(answers) / sizeof(answers[0]);) {
        sg_claim_op_t *op = *link;
        answer_t *answer = &answers[n];
        int finished = 1;
        memset(&answer->result, 0, sizeof(answer->result));
        answer->done_cb = NULL;
        answer->keep = 0;
        if (op->rec.op == OP_CLAIM && op->done_cb == NULL) {
            /* answered before its delivery report: freed once the report has come */
            finished = op->delivered != 0;
        } else if (op->rec.op != OP_CLAIM) {
            if (op->published_cb != NULL && op->delivered != 0) {
                /* the first report answers whoever waits; a refused record is still tried again */
                op->published_cb(op->opaque, op->delivered > 0 ? SG_CLAIMS_OK : SG_CLAIMS_E_UNAVAILABLE);
                op->published_cb = NULL;
            }
            finished = republish(deployment, op, now);
        } else if (op->delivered < 0) {
            answer->rc = SG_CLAIMS_E_UNAVAILABLE;
        } else if (deployment->broken) {
            answer->rc = SG_CLAIMS_E_STORE;
        } else if (op->delivered > 0 && deployment->set_up && op->partition < parts &&
                   deployment->claim_next[op->partition] >= op->offset) {
            answer->rc = decide(deployment, op, &answer->result);
        } else if (now > op->deadline_ms) {
            answer->rc = SG_CLAIMS_E_UNAVAILABLE;
        } else {
            finished = 0;
        }
        if (finished && op->rec.op == OP_CLAIM && op->done_cb != NULL) {
            /* A claim answered while its record is still on its way (the store broke, or the
             * deadline passed) stays linked: librdkafka's report of it comes later and writes
             * into it. */
            answer->done_cb = op->done_cb;
            op->done_cb = NULL;
            answer->keep = op->delivered == 0;
        }
        answer->op = op;
        if (finished)
            ++n;
        if (finished && !answer->keep)
            *link = op->next;
        else
            link = &op->next;
    }
    int more = n == sizeof(answers) / sizeof(answers[0]);
    pthread_mutex_unlock(&deployment->ops_mutex);
    for (size_t i = 0; i < n; ++i) {
        if (answers[i].done_cb != NULL)
            answer_claim(deployment, answers[i].op, answers[i].done_cb, answers[i].rc, &answers[i].result, 1);
        if (!answers[i].keep)
            free(answers[i].op);
    }
    if (more)
        sg_claims_progress(deployment);
}

void sg_claims_fail_all(sg_deployment_t *deployment, int rc, const char *why)
{
    pthread_mutex_lock(&deployment->ops_mutex);
    sg_claim_op_t *ops = deployment->ops;
    deployment->ops = NULL;
    pthread_mutex_unlock(&deployment->ops_mutex);
    sg_idem_result_t none;
    memset(&none, 0, sizeof(none));
    while (ops != NULL) {
        sg_claim_op_t *op = ops;
        ops = op->next;
        snprintf(op->why, sizeof(op->why), "%s", why);
        if (op->rec.op == OP_CLAIM) {
            if (op->done_cb != NULL) /* else answered already */
                answer_claim(deployment, op, op->done_cb, rc, &none, 0);
            free(op);
        } else {
            if (op->published_cb != NULL)
                op->published_cb(op->opaque, op->delivered > 0 ? SG_CLAIMS_OK : rc);
            free(op);
        }
    }
}
