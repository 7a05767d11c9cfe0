/*
 * Lookups of produced messages by correlation id (sg_lookup.h). One thread, one consumer without a
 * group that assigns the one partition a lookup reads, and a FIFO of jobs under a mutex. A lookup
 * is rare (it follows a produce whose outcome librdkafka could not tell), so simplicity wins over
 * sharing reads between jobs.
 */
#include "sg_lookup.h"

#include "bridge_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "sg_base.h"
#include "sg_log.h"

#define SG_LOOKUP_REQUEST_TIMEOUT_MS 5000
#define SG_LOOKUP_POLL_MS 100

typedef struct st_sg_lookup_job_t {
    struct st_sg_lookup_job_t *next;
    char *topic;
    int32_t partition;
    int64_t produced_ms;
    char *header_name;
    uint8_t id[SG_LOOKUP_MAX_ID];
    size_t idlen;
    int64_t not_before_ms; /* monotonic: submitted + settle */
    int64_t timeout_ms;
    sg_lookup_cb cb;
    void *opaque;
} sg_lookup_job_t;

struct st_sg_lookup_t {
    const sg_conf_t *conf;
    char *bootstraps;
    rd_kafka_t *rk;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sg_lookup_job_t *head, *tail;
    size_t pending;
    pthread_t thread;
    int started;
    atomic_int stopping;
};

sg_lookup_t *sg_lookup_create(const sg_conf_t *conf, const char *bootstraps, char *err, size_t errlen)
{
    rd_kafka_conf_t *rkconf = sg_kafka_conf_new(bootstraps, "streamgate", err, errlen);
    if (rkconf == NULL)
        return NULL;
    if (sg_kafka_conf_assigning_consumer(rkconf, "streamgate-lookup", 1, err, errlen) ||
        sg_kafka_conf_set(rkconf, "auto.offset.reset", "error", err, errlen) || sg_kafka_conf_apply(rkconf, conf, err, errlen)) {
        rd_kafka_conf_destroy(rkconf);
        return NULL;
    }
    sg_lookup_t *lookup = sg_calloc(1, sizeof(*lookup));
    lookup->conf = conf;
    lookup->bootstraps = sg_strdup(bootstraps);
    pthread_mutex_init(&lookup->lock, NULL);
    pthread_cond_init(&lookup->cond, NULL);
    if ((lookup->rk = sg_kafka_new(RD_KAFKA_CONSUMER, rkconf, "kafka lookup consumer", err, errlen)) == NULL) {
        sg_lookup_destroy(lookup);
        return NULL;
    }
    rd_kafka_poll_set_consumer(lookup->rk);
    return lookup;
}

static void free_job(sg_lookup_job_t *job)
{
    free(job->topic);
    free(job->header_name);
    free(job);
}

/* Whether msg carries header_name with exactly the job's id (the last such header counts). */
static int matches(const sg_lookup_job_t *job, const rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *headers = NULL;
    if (rd_kafka_message_headers(msg, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    const void *value = NULL;
    size_t len = 0;
    if (rd_kafka_header_get_last(headers, job->header_name, &value, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    return len == job->idlen && value != NULL && memcmp(value, job->id, len) == 0;
}

/* The first offset of the partition whose timestamp is at least timestamp_ms (ListOffsets by
 * time): 0 and *offset (-1: no such record), or -1 when the brokers did not answer. */
static int offset_for_time(sg_lookup_t *lookup, const sg_lookup_job_t *job, int64_t timestamp_ms, int64_t *offset)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, job->topic, job->partition)->offset = timestamp_ms;
    rd_kafka_resp_err_t rkerr = rd_kafka_offsets_for_times(lookup->rk, list, SG_LOOKUP_REQUEST_TIMEOUT_MS);
    if (rkerr == RD_KAFKA_RESP_ERR_NO_ERROR)
        rkerr = list->elems[0].err;
    *offset = list->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(list);
    return rkerr == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

/* Where to start reading: the first offset with a timestamp >= the CreateTime. Kafka answers -1
 * when no record is that recent (then it is not there), but librdkafka's mock cluster answers -1
 * to every time: told apart by asking for time 0, which any Kafka answers with an offset on a
 * non-empty partition; then (and when the brokers do not answer) reading starts at the log start.
 * Returns 0, or 1 when no record is that recent (not found). */
static int start_offset(sg_lookup_t *lookup, const sg_lookup_job_t *job, int64_t low, int64_t high, int64_t *start)
{
    int64_t found = -1, first = -1;
    *start = low;
    if (offset_for_time(lookup, job, job->produced_ms, &found) != 0)
        return 0;
    if (found >= 0 && found < high) {
        *start = found > low ? found : low;
        return 0;
    }
    if (offset_for_time(lookup, job, 0, &first) == 0 && first >= 0)
        return 1; /* time lookups work: nothing that recent */
    return 0;
}

static int run_job(sg_lookup_t *lookup, const sg_lookup_job_t *job, int64_t *offset, int64_t *timestamp_ms)
{
    int64_t deadline = sg_mono_ms() + job->timeout_ms;
    int64_t low = -1, high = -1;
    if (rd_kafka_query_watermark_offsets(lookup->rk, job->topic, job->partition, &low, &high, SG_LOOKUP_REQUEST_TIMEOUT_MS) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        return SG_LOOKUP_ERROR;
    if (high <= low)
        return SG_LOOKUP_NOT_FOUND;
    int64_t start;
    int rc = start_offset(lookup, job, low, high, &start);
    if (rc != 0)
        return rc < 0 ? SG_LOOKUP_ERROR : SG_LOOKUP_NOT_FOUND;
    if (high - start > SG_LOOKUP_MAX_RECORDS) {
        sg_log_warn("lookup: %s [%d]: %lld records to read from offset %lld, over the bound of %d", job->topic, (int)job->partition,
                    (long long)(high - start), (long long)start, SG_LOOKUP_MAX_RECORDS);
        return SG_LOOKUP_ERROR;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, job->topic, job->partition)->offset = start;
    rd_kafka_resp_err_t rkerr = rd_kafka_assign(lookup->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (rkerr != RD_KAFKA_RESP_ERR_NO_ERROR)
        return SG_LOOKUP_ERROR;
    int result = SG_LOOKUP_ERROR;
    int64_t next = start;
    while (next < high && sg_mono_ms() < deadline && !atomic_load(&lookup->stopping)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(lookup->rk, SG_LOOKUP_POLL_MS);
        if (msg == NULL)
            continue;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (msg->offset >= high)
                next = msg->offset;
        } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            sg_log_warn("lookup: %s [%d]: %s", job->topic, (int)job->partition, rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            break;
        } else if (msg->partition == job->partition && strcmp(rd_kafka_topic_name(msg->rkt), job->topic) == 0) {
            next = msg->offset + 1;
            if (matches(job, msg)) {
                rd_kafka_timestamp_type_t tstype;
                *offset = msg->offset;
                *timestamp_ms = rd_kafka_message_timestamp(msg, &tstype);
                result = SG_LOOKUP_FOUND;
                rd_kafka_message_destroy(msg);
                break;
            }
        }
        rd_kafka_message_destroy(msg);
    }
    if (result == SG_LOOKUP_ERROR && next >= high)
        result = SG_LOOKUP_NOT_FOUND;
    rd_kafka_assign(lookup->rk, NULL);
    return result;
}

static void *lookup_main(void *arg)
{
    sg_lookup_t *lookup = arg;
    sg_thread_name("sg-lookup");
    pthread_mutex_lock(&lookup->lock);
    for (;;) {
        while (lookup->head == NULL && !atomic_load(&lookup->stopping))
            pthread_cond_wait(&lookup->cond, &lookup->lock);
        sg_lookup_job_t *job = lookup->head;
        if (job == NULL)
            break;
        lookup->head = job->next;
        if (lookup->head == NULL)
            lookup->tail = NULL;
        lookup->pending--;
        pthread_mutex_unlock(&lookup->lock);
        int64_t wait = job->not_before_ms - sg_mono_ms();
        if (wait > 0)
            sg_bridge_sleep(&lookup->stopping, wait);
        int64_t offset = -1, timestamp_ms = -1;
        int result = atomic_load(&lookup->stopping) ? SG_LOOKUP_ERROR : run_job(lookup, job, &offset, &timestamp_ms);
        job->cb(job->opaque, result, job->partition, offset, timestamp_ms);
        free_job(job);
        pthread_mutex_lock(&lookup->lock);
    }
    pthread_mutex_unlock(&lookup->lock);
    return NULL;
}

int sg_lookup_submit(sg_lookup_t *lookup, const char *topic, int32_t partition, int64_t produced_ms, const char *header_name,
                     const void *id, size_t idlen, int64_t settle_ms, int64_t timeout_ms, sg_lookup_cb cb, void *opaque)
{
    if (topic == NULL || topic[0] == '\0' || partition < 0 || produced_ms < 0 || header_name == NULL || id == NULL || idlen == 0 ||
        idlen > SG_LOOKUP_MAX_ID || settle_ms < 0 || timeout_ms <= 0 || cb == NULL)
        return -1;
    sg_lookup_job_t *job = sg_calloc(1, sizeof(*job));
    job->topic = sg_strdup(topic);
    job->partition = partition;
    job->produced_ms = produced_ms;
    job->header_name = sg_strdup(header_name);
    memcpy(job->id, id, idlen);
    job->idlen = idlen;
    job->not_before_ms = sg_mono_ms() + settle_ms;
    job->timeout_ms = timeout_ms;
    job->cb = cb;
    job->opaque = opaque;
    pthread_mutex_lock(&lookup->lock);
    int rc = 0;
    if (atomic_load(&lookup->stopping) || lookup->pending >= SG_LOOKUP_MAX_PENDING) {
        rc = -1;
    } else if (!lookup->started) {
        if (pthread_create(&lookup->thread, NULL, lookup_main, lookup) != 0)
            rc = -1;
        else
            lookup->started = 1;
    }
    if (rc == 0) {
        if (lookup->tail != NULL)
            lookup->tail->next = job;
        else
            lookup->head = job;
        lookup->tail = job;
        lookup->pending++;
        pthread_cond_signal(&lookup->cond);
    }
    pthread_mutex_unlock(&lookup->lock);
    if (rc != 0)
        free_job(job);
    return rc;
}

void sg_lookup_destroy(sg_lookup_t *lookup)
{
    if (lookup == NULL)
        return;
    pthread_mutex_lock(&lookup->lock);
    atomic_store(&lookup->stopping, 1);
    pthread_cond_signal(&lookup->cond);
    int started = lookup->started;
    pthread_mutex_unlock(&lookup->lock);
    if (started)
        pthread_join(lookup->thread, NULL);
    /* The thread answers what it took; what it never took is answered here. */
    for (sg_lookup_job_t *job = lookup->head; job != NULL;) {
        sg_lookup_job_t *next = job->next;
        job->cb(job->opaque, SG_LOOKUP_ERROR, job->partition, -1, -1);
        free_job(job);
        job = next;
    }
    if (lookup->rk != NULL) {
        rd_kafka_consumer_close(lookup->rk);
        rd_kafka_destroy(lookup->rk);
    }
    pthread_mutex_destroy(&lookup->lock);
    pthread_cond_destroy(&lookup->cond);
    free(lookup->bootstraps);
    free(lookup);
}
