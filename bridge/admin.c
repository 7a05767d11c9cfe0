/*
 * Internal topics (`_schemas`, the deployment's `_streamgate.<name>` topics) are created by the
 * gateway itself through the Admin API, whatever kafka.create_topics says: they are ours, and a
 * deployment should not need an operator step to start. A failure (no rights, a cluster that
 * does not implement CreateTopics, such as librdkafka's mock) is only logged: the topic may be
 * managed by an operator, and its readers wait for it either way.
 */
#include "bridge_int.h"

#include <string.h>

#define SG_ADMIN_METADATA_TIMEOUT_MS 2000
#define SG_ADMIN_REQUEST_TIMEOUT_MS 5000

void sg_kafka_ensure_topic(rd_kafka_t *rk, const char *who, const char *name, int partitions, const char *const *configs)
{
    const struct rd_kafka_metadata *md = NULL;
    int replication = 1;
    if (rd_kafka_metadata(rk, 0, NULL, &md, SG_ADMIN_METADATA_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int t = 0; t < md->topic_cnt; t++)
            if (strcmp(md->topics[t].topic, name) == 0 && md->topics[t].err == 0) {
                rd_kafka_metadata_destroy(md);
                return;
            }
        replication = md->broker_cnt >= 3 ? 3 : md->broker_cnt > 0 ? md->broker_cnt : 1;
        rd_kafka_metadata_destroy(md);
    }
    char rkerr[512];
    rd_kafka_NewTopic_t *topic = rd_kafka_NewTopic_new(name, partitions, replication, rkerr, sizeof(rkerr));
    if (topic == NULL) {
        sg_log_warn("%s: cannot create %s: %s", who, name, rkerr);
        return;
    }
    for (size_t i = 0; configs != NULL && configs[i] != NULL && configs[i + 1] != NULL; i += 2)
        rd_kafka_NewTopic_set_config(topic, configs[i], configs[i + 1]);
    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(options, SG_ADMIN_REQUEST_TIMEOUT_MS, rkerr, sizeof(rkerr));
    rd_kafka_CreateTopics(rk, &topic, 1, options, queue);
    rd_kafka_event_t *event = rd_kafka_queue_poll(queue, SG_ADMIN_REQUEST_TIMEOUT_MS + 1000);
    if (event != NULL) {
        const rd_kafka_CreateTopics_result_t *result = rd_kafka_event_CreateTopics_result(event);
        size_t n = 0;
        const rd_kafka_topic_result_t **results = result != NULL ? rd_kafka_CreateTopics_result_topics(result, &n) : NULL;
        for (size_t i = 0; i < n; i++) {
            rd_kafka_resp_err_t terr = rd_kafka_topic_result_error(results[i]);
            if (terr != RD_KAFKA_RESP_ERR_NO_ERROR && terr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                sg_log_warn("%s: cannot create %s: %s", who, name, rd_kafka_err2str(terr));
        }
        if (rd_kafka_event_error(event))
            sg_log_warn("%s: cannot create %s: %s", who, name, rd_kafka_event_error_string(event));
        rd_kafka_event_destroy(event);
    } else {
        sg_log_warn("%s: no answer to creating %s; waiting for it to exist", who, name);
    }
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(queue);
    rd_kafka_NewTopic_destroy(topic);
}
