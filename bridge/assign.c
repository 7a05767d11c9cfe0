/*
 * Assigning partitions without a consumer group (bridge_int.h), as the reply consumer, the
 * materializer and the registry do: no group means no rebalance can ever pause a stream, at the
 * price of finding the partitions ourselves. Metadata names a topic's partitions, ListOffsets
 * gives their watermarks, the caller picks where each starts, and one rd_kafka_assign() takes
 * them all. Every broker request is bounded in time and tried a few times before the caller
 * hears of a failure; the caller retries the whole setup, at its own pace.
 */
#include "bridge_int.h"

#include <stdlib.h>
#include <string.h>

#include "sg_base.h"

void sg_bridge_sleep(const atomic_int *stopping, int64_t ms)
{
    for (int64_t slept = 0; slept < ms && (stopping == NULL || !atomic_load(stopping)); slept += 10)
        sg_sleep_ms(ms - slept < 10 ? ms - slept : 10);
}

static int stopped(const atomic_int *stopping)
{
    return stopping != NULL && atomic_load(stopping);
}

/* The topic's metadata, checked: it exists and has partitions. */
static rd_kafka_resp_err_t topic_metadata(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int timeout_ms,
                                          const struct rd_kafka_metadata **md)
{
    *md = NULL;
    rd_kafka_resp_err_t rkerr = rd_kafka_metadata(rk, 0, rkt, md, timeout_ms);
    if (rkerr != RD_KAFKA_RESP_ERR_NO_ERROR)
        return rkerr;
    const struct rd_kafka_metadata *got = *md;
    if (got->topic_cnt == 1 && got->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && got->topics[0].partition_cnt > 0)
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    rkerr = got->topic_cnt == 1 && got->topics[0].err ? got->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    rd_kafka_metadata_destroy(got);
    *md = NULL;
    return rkerr;
}

int sg_assign_describe(rd_kafka_t *rk, const char *topic, sg_assign_want_cb want, void *ctx, int timeout_ms,
                       const atomic_int *stopping, sg_assign_topic_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->name = topic;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rkerr = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    for (int attempt = 0; attempt < SG_ASSIGN_ATTEMPTS && !stopped(stopping); ++attempt) {
        if (attempt > 0)
            sg_bridge_sleep(stopping, SG_ASSIGN_RETRY_MS);
        if ((rkerr = topic_metadata(rk, rkt, timeout_ms, &md)) == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
    }
    rd_kafka_topic_destroy(rkt);
    if (md == NULL)
        return sg_errf(err, errlen, "topic %s: %s", topic, stopped(stopping) ? "stopping" : rd_kafka_err2str(rkerr));

    const struct rd_kafka_metadata_topic *mdt = &md->topics[0];
    out->n_parts = (size_t)mdt->partition_cnt;
    out->parts = sg_calloc(out->n_parts, sizeof(*out->parts));
    int rc = 0;
    for (size_t p = 0; p < out->n_parts && rc == 0; ++p) {
        sg_assign_part_t *part = &out->parts[p];
        part->partition = mdt->partitions[p].id;
        part->low = part->high = -1;
        part->start = SG_ASSIGN_SKIP;
        if (want != NULL && !want(ctx, topic, part->partition))
            continue;
        rkerr = RD_KAFKA_RESP_ERR__TIMED_OUT;
        for (int attempt = 0; attempt < SG_ASSIGN_ATTEMPTS && !stopped(stopping); ++attempt) {
            if (attempt > 0)
                sg_bridge_sleep(stopping, SG_ASSIGN_RETRY_MS);
            rkerr = rd_kafka_query_watermark_offsets(rk, topic, part->partition, &part->low, &part->high, timeout_ms);
            if (rkerr == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
        }
        if (rkerr != RD_KAFKA_RESP_ERR_NO_ERROR)
            rc = sg_errf(err, errlen, "topic %s [%d]: %s", topic, (int)part->partition,
                         stopped(stopping) ? "stopping" : rd_kafka_err2str(rkerr));
        part->start = part->high;
    }
    rd_kafka_metadata_destroy(md);
    if (rc != 0)
        sg_assign_dispose(out, 1);
    return rc;
}

int sg_assign_apply(rd_kafka_t *rk, const sg_assign_topic_t *topics, size_t n_topics, char *err, size_t errlen)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    for (size_t t = 0; t < n_topics; ++t)
        for (size_t p = 0; p < topics[t].n_parts; ++p)
            if (topics[t].parts[p].start != SG_ASSIGN_SKIP)
                rd_kafka_topic_partition_list_add(list, topics[t].name, topics[t].parts[p].partition)->offset =
                    topics[t].parts[p].start;
    rd_kafka_resp_err_t rkerr = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (rkerr != RD_KAFKA_RESP_ERR_NO_ERROR)
        return sg_errf(err, errlen, "assign: %s", rd_kafka_err2str(rkerr));
    return 0;
}

void sg_assign_dispose(sg_assign_topic_t *topics, size_t n_topics)
{
    for (size_t t = 0; t < n_topics; ++t) {
        free(topics[t].parts);
        topics[t].parts = NULL;
        topics[t].n_parts = 0;
    }
}
