/*
 * Internal topics (`_schemas`, the deployment's `_streamgate.<name>` topics) are created by the
 * gateway itself through the Admin API, whatever kafka.create_topics says: they are ours, and a
 * deployment should not need an operator step to start. Existence is checked on the list of all
 * topics, which never auto-creates one (a metadata request naming a missing topic would, on a
 * broker with auto.create.topics.enable, make it with the broker's defaults: not compacted). A
 * cluster that refuses CreateTopics (no rights, or librdkafka's mock cluster, which does not
 * implement it) gets one metadata request naming the topic, so a broker that auto-creates does;
 * what still fails is only logged: the topic may be managed by an operator, and its readers wait
 * for it either way.
 */
#include "bridge_int.h"

#include <string.h>

#define SG_ADMIN_METADATA_TIMEOUT_MS 2000
#define SG_ADMIN_REQUEST_TIMEOUT_MS 5000

/* Whether the cluster lists `name` (1 or 0), or -1 when it did not answer; the broker count in
 * *brokers. */
static int topic_exists(rd_kafka_t *rk, const char *name, rd_kafka_topic_t *only, int *brokers)
{
    const struct rd_kafka_metadata *md = NULL;
    *brokers = 0;
    if (rd_kafka_metadata(rk, only == NULL, only, &md, SG_ADMIN_METADATA_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    int found = 0;
    for (int t = 0; t < md->topic_cnt && !found; t++)
        found = strcmp(md->topics[t].topic, name) == 0 && md->topics[t].err == 0 && md->topics[t].partition_cnt > 0;
    *brokers = md->broker_cnt;
    rd_kafka_metadata_destroy(md);
    return found;
}

/* CreateTopics for one topic. Returns 0 created (or there already), or -1 with why. */
static int create_topic(rd_kafka_t *rk, const char *name, int partitions, int replication, const char *const *configs, char *why,
                        size_t whylen)
{
    char rkerr[512];
    rd_kafka_NewTopic_t *topic = rd_kafka_NewTopic_new(name, partitions, replication, rkerr, sizeof(rkerr));
    if (topic == NULL)
        return sg_errf(why, whylen, "%s", rkerr);
    for (size_t i = 0; configs != NULL && configs[i] != NULL && configs[i + 1] != NULL; i += 2)
        rd_kafka_NewTopic_set_config(topic, configs[i], configs[i + 1]);
    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(options, SG_ADMIN_REQUEST_TIMEOUT_MS, rkerr, sizeof(rkerr));
    rd_kafka_CreateTopics(rk, &topic, 1, options, queue);
    rd_kafka_event_t *event = rd_kafka_queue_poll(queue, SG_ADMIN_REQUEST_TIMEOUT_MS + 1000);
    int rc = 0;
    if (event == NULL) {
        rc = sg_errf(why, whylen, "no answer");
    } else if (rd_kafka_event_error(event)) {
        rc = sg_errf(why, whylen, "%s", rd_kafka_event_error_string(event));
    } else {
        const rd_kafka_CreateTopics_result_t *result = rd_kafka_event_CreateTopics_result(event);
        size_t n = 0;
        const rd_kafka_topic_result_t **results = result != NULL ? rd_kafka_CreateTopics_result_topics(result, &n) : NULL;
        for (size_t i = 0; i < n && rc == 0; i++) {
            rd_kafka_resp_err_t terr = rd_kafka_topic_result_error(results[i]);
            if (terr != RD_KAFKA_RESP_ERR_NO_ERROR && terr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                rc = sg_errf(why, whylen, "%s", rd_kafka_err2str(terr));
        }
    }
    if (event != NULL)
        rd_kafka_event_destroy(event);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(queue);
    rd_kafka_NewTopic_destroy(topic);
    return rc;
}

int sg_kafka_ensure_topic(rd_kafka_t *rk, const char *who, const char *name, int partitions, const char *const *configs)
{
    int brokers;
    int exists = topic_exists(rk, name, NULL, &brokers);
    if (exists != 0)
        return exists > 0 ? 0 : -1;
    int replication = brokers >= 3 ? 3 : brokers > 0 ? brokers : 1;
    char why[512];
    if (create_topic(rk, name, partitions, replication, configs, why, sizeof(why)) == 0)
        return 0;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, name, NULL);
    exists = rkt != NULL ? topic_exists(rk, name, rkt, &brokers) : 0;
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    if (exists <= 0)
        sg_log_warn("%s: cannot create %s: %s; waiting for it to exist", who, name, why);
    return 0;
}
