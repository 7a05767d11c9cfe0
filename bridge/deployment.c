/*
 * The deployment (sg_deployment.h): this instance's identity, the deployment thread with its
 * producer and consumer, and the request-id secret.
 *
 * The secret is the fold of the deployment topic's "secret/..." records: the first in offset
 * order wins, for every instance alike, so two instances starting at once agree. An instance
 * reads the partition from the beginning to where it ended at setup; finding no secret there, it
 * proposes one (the one cached in <data_dir>/request.secret, so a lone instance's ids survive a
 * new embedded cluster; else a random one), waits until it has read its proposal back, and takes
 * whichever came first. A proposal that lost is deleted with a tombstone. The settled secret is
 * cached in the file; if the file held another one, the ids made with it are no longer valid,
 * which is logged.
 *
 * One thread serves both topics: every librdkafka callback of the two clients runs on it, and it
 * sleeps until a queue has something (the bridge thread's pattern) or 100 ms pass.
 */
#include "deployment_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "sg_base.h"
#include "sg_log.h"

#define SG_DEPLOY_POLL_MS 100
#define SG_DEPLOY_METADATA_TIMEOUT_MS 2000
#define SG_DEPLOY_SETUP_RETRY_MS 500
#define SG_DEPLOY_PROPOSAL_RETRY_MS 1000
#define SG_DEPLOY_MAX_PER_ROUND 10000
#define SG_DEPLOY_INSTANCE_FILE "instance.id"
#define SG_DEPLOY_SECRET_FILE "request.secret"

enum { SECRET_READING = 0, SECRET_PROPOSED, SECRET_SETTLED };

void sg_deployment_topics(const sg_conf_t *conf, char *deployment_topic, char *claims_topic)
{
    snprintf(deployment_topic, SG_DEPLOYMENT_TOPIC_MAX, "_streamgate.%s", conf->deployment.name);
    snprintf(claims_topic, SG_DEPLOYMENT_TOPIC_MAX, "_streamgate.%s.idempotency", conf->deployment.name);
}

/* ---- identity ------------------------------------------------------------------------------ */

static int is_name(const char *text, size_t len)
{
    if (len == 0 || len > 128)
        return 0;
    for (size_t i = 0; i < len; ++i) {
        char ch = text[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
              ch == '-'))
            return 0;
    }
    return 1;
}

/* The instance name kept in <data_dir>/instance.id, made once ("sg-" and 8 hex digits). Two
 * processes starting on one data_dir at once: O_EXCL lets one write it, the other reads it. */
static char *instance_from_file(const char *data_dir, char *err, size_t errlen)
{
    char path[4096], text[160];
    snprintf(path, sizeof(path), "%s/%s", data_dir, SG_DEPLOY_INSTANCE_FILE);
    for (int attempt = 0; attempt < 50; ++attempt) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = read(fd, text, sizeof(text) - 1);
            close(fd);
            size_t len = n > 0 ? (size_t)n : 0;
            while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
                --len;
            if (len == 0 && attempt < 49) { /* being written by another process right now */
                sg_sleep_ms(10);
                continue;
            }
            if (!is_name(text, len)) {
                sg_errf(err, errlen, "%s: not an instance name (1..128 letters, digits, '.', '_', '-'); fix or delete it", path);
                return NULL;
            }
            text[len] = '\0';
            return sg_strdup(text);
        }
        uint8_t random_bytes[4];
        if (sg_random_bytes(random_bytes, sizeof(random_bytes)) != 0) {
            sg_errf(err, errlen, "cannot read random bytes for the instance name: %s", strerror(errno));
            return NULL;
        }
        int len = snprintf(text, sizeof(text), "sg-%02x%02x%02x%02x\n", random_bytes[0], random_bytes[1], random_bytes[2],
                           random_bytes[3]);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0 || write(fd, text, (size_t)len) != len || close(fd) != 0) {
            sg_errf(err, errlen, "%s: %s", path, strerror(errno));
            if (fd >= 0)
                unlink(path);
            return NULL;
        }
        text[len - 1] = '\0';
        return sg_strdup(text);
    }
    sg_errf(err, errlen, "%s: stays empty", path);
    return NULL;
}

void sg_deployment_set_advertise(sg_deployment_t *deployment, const char *listen_url, const char *hostname)
{
    if (deployment->conf->deployment.advertise.text != NULL) {
        snprintf(deployment->advertise, sizeof(deployment->advertise), "%s", deployment->conf->deployment.advertise.text);
        return;
    }
    /* "http://HOST:PORT" or "http://[V6]:PORT": a wildcard host reaches nobody from elsewhere */
    const char *host = strstr(listen_url, "://");
    host = host != NULL ? host + 3 : listen_url;
    size_t host_len = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":");
    int wildcard = (host_len == 7 && strncmp(host, "0.0.0.0", 7) == 0) || (host_len == 4 && strncmp(host, "[::]", 4) == 0);
    size_t end = strcspn(listen_url, "\r\n");
    if (wildcard && hostname != NULL && hostname[0] != '\0')
        snprintf(deployment->advertise, sizeof(deployment->advertise), "%.*s%s%.*s", (int)(host - listen_url), listen_url, hostname,
                 (int)(end - (size_t)(host + host_len - listen_url)), host + host_len);
    else
        snprintf(deployment->advertise, sizeof(deployment->advertise), "%.*s", (int)end, listen_url);
}

const char *sg_deployment_name(const sg_deployment_t *deployment)
{
    return deployment->conf->deployment.name;
}

const char *sg_deployment_instance(const sg_deployment_t *deployment)
{
    return deployment->instance;
}

const char *sg_deployment_advertise(const sg_deployment_t *deployment)
{
    return deployment->advertise;
}

/* ---- the secret ---------------------------------------------------------------------------- */

/* The cached secret: 1 read, 0 absent, -1 unusable (logged; it is replaced once settled). */
static int read_cached_secret(const sg_deployment_t *deployment, uint8_t *secret)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", deployment->conf->data_dir, SG_DEPLOY_SECRET_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    uint8_t buf[SG_DEPLOYMENT_SECRET_LEN + 1];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n != SG_DEPLOYMENT_SECRET_LEN) {
        sg_log_warn("deployment: %s is not a %d-byte secret; it will hold the deployment's", path, SG_DEPLOYMENT_SECRET_LEN);
        return -1;
    }
    memcpy(secret, buf, SG_DEPLOYMENT_SECRET_LEN);
    return 1;
}

static void write_cached_secret(const sg_deployment_t *deployment, const uint8_t *secret)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s", deployment->conf->data_dir, SG_DEPLOY_SECRET_FILE);
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, secret, SG_DEPLOYMENT_SECRET_LEN) != SG_DEPLOYMENT_SECRET_LEN || fsync(fd) != 0 || close(fd) != 0 ||
        rename(tmp, path) != 0) {
        sg_log_warn("deployment: cannot cache the request-id secret in %s: %s", path, strerror(errno));
        unlink(tmp);
    }
}

/* Folds a record of the deployment topic: the first secret proposal in offset order wins. */
static void fold_deployment_record(sg_deployment_t *deployment, const rd_kafka_message_t *msg)
{
    static const char prefix[] = "secret/";
    if (deployment->have_winner || msg->payload == NULL || msg->key == NULL || msg->key_len < sizeof(prefix) - 1 ||
        memcmp(msg->key, prefix, sizeof(prefix) - 1) != 0)
        return; /* a later proposal, a tombstone, or a record of another kind (part B's members) */
    json_t *doc = json_loadb(msg->payload, msg->len, 0, NULL);
    const char *text = json_string_value(json_object_get(doc, "secret"));
    uint8_t secret[SG_DEPLOYMENT_SECRET_LEN + 3];
    char why[128];
    if (text != NULL && sg_b64url_decode(text, strlen(text), secret, why, sizeof(why)) == SG_DEPLOYMENT_SECRET_LEN) {
        memcpy(deployment->winner, secret, SG_DEPLOYMENT_SECRET_LEN);
        deployment->have_winner = 1;
    } else if (sg_log_once(&deployment->ignored_once, 1)) {
        sg_log_warn("deployment: %s offset %lld ignored: not a secret proposal (logged once)", deployment->topic,
                    (long long)msg->offset);
    }
    json_decref(doc);
}

static void propose_secret(sg_deployment_t *deployment)
{
    uint8_t claim[8];
    if (read_cached_secret(deployment, deployment->proposal) != 1 &&
        sg_random_bytes(deployment->proposal, SG_DEPLOYMENT_SECRET_LEN) != 0)
        sg_oom(); /* the kernel's random source does not fail once the process has started */
    if (sg_random_bytes(claim, sizeof(claim)) != 0)
        sg_oom();
    int n = snprintf(deployment->proposal_key, sizeof(deployment->proposal_key), "secret/");
    for (size_t i = 0; i < sizeof(claim); ++i)
        n += snprintf(deployment->proposal_key + n, sizeof(deployment->proposal_key) - (size_t)n, "%02x", claim[i]);
    char text[64];
    sg_b64url_encode(deployment->proposal, SG_DEPLOYMENT_SECRET_LEN, text);
    json_t *doc =
        json_pack("{s:i, s:s, s:s, s:I}", "v", 1, "secret", text, "by", deployment->instance, "at", (json_int_t)sg_now_ms());
    char *value = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (value == NULL)
        sg_oom();
    char err[256];
    atomic_store(&deployment->proposal_delivered, 0);
    if (sg_deployment_produce(deployment, deployment->producer_topic, 0, deployment->proposal_key, value, strlen(value),
                              &deployment->proposal_delivered, err, sizeof(err)) != 0) {
        sg_log_warn("deployment: cannot propose a request-id secret: %s (retrying)", err);
        deployment->proposal_retry_ms = sg_mono_ms() + SG_DEPLOY_PROPOSAL_RETRY_MS;
    } else {
        deployment->secret_state = SECRET_PROPOSED;
    }
    free(value);
}

static void settle_secret(sg_deployment_t *deployment)
{
    uint8_t cached[SG_DEPLOYMENT_SECRET_LEN];
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", deployment->conf->data_dir, SG_DEPLOY_SECRET_FILE);
    int have_cached = read_cached_secret(deployment, cached);
    if (have_cached != 1 || memcmp(cached, deployment->winner, SG_DEPLOYMENT_SECRET_LEN) != 0) {
        if (have_cached == 1)
            sg_log_warn("deployment %s: the request-id secret in %s differs from the deployment's (the first in %s): request ids "
                        "made with it are no longer valid; the file now holds the deployment's",
                        sg_deployment_name(deployment), path, deployment->topic);
        write_cached_secret(deployment, deployment->winner);
    }
    deployment->secret_state = SECRET_SETTLED;
    sg_log_info("deployment %s: request-id secret settled (the first in %s)", sg_deployment_name(deployment), deployment->topic);
    deployment->secret_cb(deployment->ctx, deployment->winner, SG_DEPLOYMENT_SECRET_LEN);
}

static void secret_progress(sg_deployment_t *deployment)
{
    if (!deployment->want_secret || deployment->secret_state == SECRET_SETTLED || !deployment->set_up)
        return;
    if (deployment->secret_state == SECRET_READING) {
        if (deployment->next_offset < deployment->start_high)
            return; /* what was there at setup is not all read yet */
        if (deployment->have_winner)
            settle_secret(deployment);
        else if (sg_mono_ms() >= deployment->proposal_retry_ms)
            propose_secret(deployment);
        return;
    }
    int delivered = atomic_load(&deployment->proposal_delivered);
    if (delivered < 0) {
        deployment->secret_state = SECRET_READING;
        deployment->proposal_retry_ms = sg_mono_ms() + SG_DEPLOY_PROPOSAL_RETRY_MS;
        return;
    }
    if (delivered == 0 || deployment->next_offset <= deployment->proposal_offset)
        return;
    if (!deployment->have_winner) { /* our proposal was read back but is gone (a topic recreated): again */
        deployment->secret_state = SECRET_READING;
        return;
    }
    if (memcmp(deployment->winner, deployment->proposal, SG_DEPLOYMENT_SECRET_LEN) != 0) {
        char err[256];
        if (sg_deployment_produce(deployment, deployment->producer_topic, 0, deployment->proposal_key, NULL, 0, NULL, err,
                                  sizeof(err)) != 0)
            sg_log_warn("deployment: cannot delete a losing secret proposal: %s", err);
    }
    settle_secret(deployment);
}

/* ---- the thread ---------------------------------------------------------------------------- */

int sg_deployment_produce(sg_deployment_t *deployment, rd_kafka_topic_t *topic, int32_t partition, const char *key,
                          const void *value, size_t len, void *op, char *err, size_t errlen)
{
    if (atomic_load(&deployment->stopping) || deployment->producer == NULL)
        return sg_errf(err, errlen, "the gateway is shutting down");
    rd_kafka_resp_err_t rkerr = rd_kafka_producev(deployment->producer, RD_KAFKA_V_RKT(topic), RD_KAFKA_V_PARTITION(partition),
                                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, strlen(key)),
                                                  RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_OPAQUE(op), RD_KAFKA_V_END);
    if (rkerr != RD_KAFKA_RESP_ERR_NO_ERROR)
        return sg_errf(err, errlen, "cannot produce to %s: %s", rd_kafka_topic_name(topic), rd_kafka_err2str(rkerr));
    return 0;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    sg_deployment_t *deployment = opaque;
    if (msg->_private == &deployment->proposal_delivered) {
        deployment->proposal_offset = msg->offset;
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            sg_log_warn("deployment: the secret proposal was not acknowledged: %s (retrying)", rd_kafka_err2str(msg->err));
        atomic_store(&deployment->proposal_delivered, msg->err == RD_KAFKA_RESP_ERR_NO_ERROR && msg->offset >= 0 ? 1 : -1);
    } else if (msg->_private != NULL) {
        sg_claims_delivered(deployment, msg->_private, msg);
    } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sg_log_warn("deployment: a record to %s was not acknowledged: %s", rd_kafka_topic_name(msg->rkt),
                    rd_kafka_err2str(msg->err));
    }
}

static int only_partition_zero(void *ctx, const char *topic, int32_t partition)
{
    return partition == 0;
}

/* Describes the topics and assigns them from the beginning: the deployment topic's partition 0
 * (for the secret) and every partition of the claims topic. Returns 0 or -1 (retry). */
static int setup(sg_deployment_t *deployment)
{
    sg_assign_topic_t topics[2];
    size_t n = 0;
    char err[512];
    int rc = 0;
    memset(topics, 0, sizeof(topics));
    if (deployment->want_secret && deployment->secret_state != SECRET_SETTLED) {
        if (sg_assign_describe(deployment->consumer, deployment->topic, only_partition_zero, NULL, SG_DEPLOY_METADATA_TIMEOUT_MS,
                               &deployment->stopping, &topics[n], err, sizeof(err)) != 0) {
            rc = -1;
        } else {
            for (size_t p = 0; p < topics[n].n_parts; ++p) {
                sg_assign_part_t *part = &topics[n].parts[p];
                if (part->partition == 0) {
                    deployment->next_offset = part->low;
                    deployment->start_high = part->high;
                    part->start = RD_KAFKA_OFFSET_BEGINNING;
                }
            }
            ++n;
        }
    }
    if (rc == 0 && deployment->claims) {
        if (sg_assign_describe(deployment->consumer, deployment->claims_topic, NULL, NULL, SG_DEPLOY_METADATA_TIMEOUT_MS,
                               &deployment->stopping, &topics[n], err, sizeof(err)) != 0) {
            rc = -1;
        } else {
            int parts = (int)topics[n].n_parts, known = atomic_load(&deployment->n_parts);
            if (known != 0 && known != parts)
                sg_log_error("deployment: %s went from %d to %d partitions: a key's claims may now be on two partitions, "
                             "whose order nothing defines; do not add partitions to it",
                             deployment->claims_topic, known, parts);
            free(deployment->claim_next);
            free(deployment->claim_start_high);
            deployment->claim_next = sg_calloc((size_t)parts, sizeof(int64_t));
            deployment->claim_start_high = sg_calloc((size_t)parts, sizeof(int64_t));
            for (size_t p = 0; p < topics[n].n_parts; ++p) {
                sg_assign_part_t *part = &topics[n].parts[p];
                if (part->partition >= parts) /* partitions are numbered 0..n-1 */
                    continue;
                deployment->claim_next[part->partition] = part->low;
                deployment->claim_start_high[part->partition] = part->high;
                part->start = RD_KAFKA_OFFSET_BEGINNING;
            }
            atomic_store(&deployment->n_parts, parts);
            ++n;
        }
    }
    if (rc == 0 && n > 0 && sg_assign_apply(deployment->consumer, topics, n, err, sizeof(err)) != 0)
        rc = -1;
    if (rc != 0)
        sg_log_warn("deployment: %s (retrying)", err);
    sg_assign_dispose(topics, n);
    return rc;
}

static void consume(sg_deployment_t *deployment)
{
    for (int i = 0; i < SG_DEPLOY_MAX_PER_ROUND; ++i) {
        rd_kafka_message_t *msg = rd_kafka_consume_queue(deployment->consumer_queue, 0);
        if (msg == NULL)
            return;
        int is_claims = strcmp(rd_kafka_topic_name(msg->rkt), deployment->claims_topic) == 0;
        int32_t p = msg->partition;
        int64_t *next = NULL;
        if (!is_claims && p == 0)
            next = &deployment->next_offset;
        else if (is_claims && p >= 0 && p < atomic_load(&deployment->n_parts))
            next = &deployment->claim_next[p];
        if (next == NULL) {
            /* not a partition we read */
        } else if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (msg->offset > *next && !(is_claims && deployment->broken))
                *next = msg->offset;
        } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            sg_log_warn("deployment: %s", rd_kafka_message_errstr(msg));
        } else if (msg->offset >= *next) {
            if (!is_claims) {
                fold_deployment_record(deployment, msg);
                *next = msg->offset + 1;
            } else if (!deployment->broken) {
                if (sg_claims_fold(deployment, msg->payload, msg->len, msg->offset) == 0)
                    *next = msg->offset + 1;
                else
                    deployment->broken = 1; /* nothing past a record the store refused is folded */
            }
        }
        rd_kafka_message_destroy(msg);
    }
    sg_wake(&deployment->wake); /* more than a round's worth: come back at once */
}

/* Whether every claims partition is folded up to where it ended at setup. */
static int claims_caught_up(const sg_deployment_t *deployment)
{
    int parts = atomic_load(&deployment->n_parts);
    for (int p = 0; p < parts; ++p)
        if (deployment->claim_next[p] < deployment->claim_start_high[p])
            return 0;
    return 1;
}

static const char *why_not_ready(const sg_deployment_t *deployment)
{
    if (!deployment->set_up)
        return "the deployment's internal topics are not assigned yet";
    if (deployment->want_secret && deployment->secret_state != SECRET_SETTLED)
        return "the deployment's request-id secret is not settled yet";
    if (deployment->claims && deployment->broken)
        return "the Idempotency-Key claims cannot be stored (the request store refuses writes)";
    if (deployment->claims && !claims_caught_up(deployment))
        return "the Idempotency-Key claims are not read up to where they were at start yet";
    return NULL;
}

/* Creates the topics on a real cluster (the embedded one has them from its start). On this
 * thread: the Admin API waits seconds for an answer, which must not hold up the start. Returns 0
 * once tried, -1 while the cluster does not answer. */
static int create_topics(sg_deployment_t *deployment)
{
    static const char *const compacted[] = {"cleanup.policy", "compact", NULL};
    const char *claims_config[8];
    char numbers[64];
    if (deployment->conf->kafka.embedded)
        return 0;
    sg_deployment_claims_topic_config(deployment->conf, claims_config, numbers);
    if (deployment->want_secret && sg_kafka_ensure_topic(deployment->producer, "deployment", deployment->topic, 1, compacted) != 0)
        return -1;
    if (deployment->claims && sg_kafka_ensure_topic(deployment->producer, "deployment", deployment->claims_topic,
                                                    SG_DEPLOYMENT_CLAIM_PARTITIONS, claims_config) != 0)
        return -1;
    return 0;
}

static void *deployment_main(void *arg)
{
    sg_deployment_t *deployment = arg;
    sg_thread_name("sg-deployment");
    int created = 0;
    while (!atomic_load(&deployment->stopping)) {
        if (!deployment->set_up) {
            if (!created)
                created = create_topics(deployment) == 0;
            if (!created || setup(deployment) != 0) {
                sg_bridge_sleep(&deployment->stopping, SG_DEPLOY_SETUP_RETRY_MS);
                continue;
            }
            deployment->set_up = 1;
            deployment->broken = 0;
        }
        sg_wake_wait(&deployment->wake, &deployment->stopping, SG_DEPLOY_POLL_MS);
        rd_kafka_poll(deployment->producer, 0);
        consume(deployment);
        secret_progress(deployment);
        sg_claims_progress(deployment);
        if (deployment->broken && sg_store_health(deployment->store, NULL, 0) == SG_STORAGE_OK) {
            sg_log_info("deployment: the request store takes writes again: folding %s again from its start",
                        deployment->claims_topic);
            deployment->set_up = 0;
        }
        const char *why = why_not_ready(deployment);
        atomic_store(&deployment->not_ready, why);
        atomic_store(&deployment->ready, why == NULL);
    }
    return NULL;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static rd_kafka_t *make_client(sg_deployment_t *deployment, const char *bootstraps, rd_kafka_type_t type, char *err, size_t errlen)
{
    const sg_conf_t *conf = deployment->conf;
    rd_kafka_conf_t *rkconf = sg_kafka_conf_new(bootstraps, "streamgate-deployment", err, errlen);
    if (rkconf == NULL)
        return NULL;
    int rc;
    if (type == RD_KAFKA_PRODUCER)
        rc = sg_kafka_conf_durable_producer(rkconf, conf->kafka.produce_timeout_ms, err, errlen);
    else
        rc = sg_kafka_conf_assigning_consumer(rkconf, "streamgate-deployment", 1, err, errlen) ||
             sg_kafka_conf_set(rkconf, "auto.offset.reset", "earliest", err, errlen);
    if (rc != 0 || sg_kafka_conf_apply(rkconf, conf, err, errlen) != 0) {
        rd_kafka_conf_destroy(rkconf);
        return NULL;
    }
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set_dr_msg_cb(rkconf, on_delivery);
        rd_kafka_conf_set_opaque(rkconf, deployment);
    }
    return sg_kafka_new(type, rkconf, type == RD_KAFKA_PRODUCER ? "deployment producer" : "deployment consumer", err, errlen);
}

sg_deployment_t *sg_deployment_create(const sg_conf_t *conf, const char *bootstraps, sg_store_t *store, char *err, size_t errlen)
{
    sg_deployment_t *deployment = sg_calloc(1, sizeof(*deployment));
    deployment->conf = conf;
    deployment->store = store;
    sg_wake_init(&deployment->wake);
    pthread_mutex_init(&deployment->ops_mutex, NULL);
    atomic_store(&deployment->not_ready, "the deployment thread has not started");
    sg_deployment_topics(conf, deployment->topic, deployment->claims_topic);
    deployment->instance =
        conf->deployment.instance != NULL ? sg_strdup(conf->deployment.instance) : instance_from_file(conf->data_dir, err, errlen);
    if (deployment->instance == NULL ||
        (deployment->producer = make_client(deployment, bootstraps, RD_KAFKA_PRODUCER, err, errlen)) == NULL ||
        (deployment->consumer = make_client(deployment, bootstraps, RD_KAFKA_CONSUMER, err, errlen)) == NULL) {
        sg_deployment_destroy(deployment);
        return NULL;
    }
    deployment->producer_topic = rd_kafka_topic_new(deployment->producer, deployment->topic, NULL);
    deployment->producer_claims_topic = rd_kafka_topic_new(deployment->producer, deployment->claims_topic, NULL);
    if (deployment->producer_topic == NULL || deployment->producer_claims_topic == NULL)
        sg_oom(); /* the names are valid: the config refuses any other deployment name */
    deployment->producer_queue = rd_kafka_queue_get_main(deployment->producer);
    rd_kafka_queue_cb_event_enable(deployment->producer_queue, sg_wake_on_queue_event, &deployment->wake);
    rd_kafka_poll_set_consumer(deployment->consumer);
    deployment->consumer_queue = rd_kafka_queue_get_consumer(deployment->consumer);
    rd_kafka_queue_cb_event_enable(deployment->consumer_queue, sg_wake_on_queue_event, &deployment->wake);
    return deployment;
}

int sg_deployment_start(sg_deployment_t *deployment, int want_secret, int claims, sg_deployment_secret_cb secret_cb,
                        sg_claims_completed_cb completed_cb, void *ctx, char *err, size_t errlen)
{
    if (deployment->thread_started)
        return sg_errf(err, errlen, "the deployment is already started");
    deployment->want_secret = want_secret;
    deployment->claims = claims;
    deployment->secret_cb = secret_cb;
    deployment->completed_cb = completed_cb;
    deployment->ctx = ctx;
    if (!want_secret && !claims) {
        atomic_store(&deployment->ready, 1);
        atomic_store(&deployment->not_ready, NULL);
        return 0;
    }
    int rc = pthread_create(&deployment->thread, NULL, deployment_main, deployment);
    if (rc != 0)
        return sg_errf(err, errlen, "cannot start the deployment thread: %s", strerror(rc));
    deployment->thread_started = 1;
    return 0;
}

int sg_deployment_is_ready(const sg_deployment_t *deployment)
{
    return atomic_load(&deployment->ready);
}

const char *sg_deployment_not_ready_because(const sg_deployment_t *deployment)
{
    if (atomic_load(&deployment->ready))
        return NULL;
    const char *why = atomic_load(&deployment->not_ready);
    return why != NULL ? why : "the deployment's internal topics are not read yet";
}

void sg_deployment_shutdown(sg_deployment_t *deployment, int64_t timeout_ms)
{
    atomic_store(&deployment->stopping, 1);
    if (deployment->thread_started) {
        sg_wake(&deployment->wake);
        pthread_join(deployment->thread, NULL);
        deployment->thread_started = 0;
    }
    if (deployment->producer != NULL) {
        /* Completions and releases still queued go out first (their reports now run on this
         * thread): they are what the other instances need. The rest is abandoned, and every
         * operation answered after the producer's last delivery report, so none finds a freed one. */
        rd_kafka_flush(deployment->producer, (int)timeout_ms);
        rd_kafka_purge(deployment->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(deployment->producer, 0);
    }
    sg_claims_fail_all(deployment, SG_CLAIMS_E_SHUTDOWN, "the gateway is shutting down");
}

void sg_deployment_destroy(sg_deployment_t *deployment)
{
    if (deployment == NULL)
        return;
    sg_deployment_shutdown(deployment, 0);
    if (deployment->consumer_queue != NULL)
        rd_kafka_queue_destroy(deployment->consumer_queue);
    if (deployment->consumer != NULL) {
        rd_kafka_consumer_close(deployment->consumer);
        rd_kafka_destroy(deployment->consumer);
    }
    if (deployment->producer_queue != NULL)
        rd_kafka_queue_destroy(deployment->producer_queue);
    if (deployment->producer_topic != NULL)
        rd_kafka_topic_destroy(deployment->producer_topic);
    if (deployment->producer_claims_topic != NULL)
        rd_kafka_topic_destroy(deployment->producer_claims_topic);
    if (deployment->producer != NULL)
        rd_kafka_destroy(deployment->producer);
    free(deployment->claim_next);
    free(deployment->claim_start_high);
    free(deployment->instance);
    pthread_mutex_destroy(&deployment->ops_mutex);
    sg_wake_dispose(&deployment->wake);
    free(deployment);
}
