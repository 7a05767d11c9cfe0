/*
 * sg-bench-consume: the raw librdkafka read of a whole topic that streamgate's table restore is
 * measured against. It does what the materializer does to read a topic and nothing else: one
 * consumer, no consumer group (every partition assigned at the beginning), partition EOF events
 * on, fetch.wait.max.ms 10 and every other fetch setting at librdkafka's default (as
 * bridge/materializer.c sets them), messages taken from the consumer queue as the materializer
 * takes them: up to 256 already queued with rd_kafka_consume_batch_queue() without a wait, and a
 * wait with rd_kafka_consume_queue() only when none is (one call per message costs the reading
 * thread ~12 % more, which would flatter the gateway's ratio). It stops once every partition has
 * been read up to the high watermark it queried at start; nothing is written anywhere.
 *
 * The clock starts right after rd_kafka_new(), before the metadata and watermark queries, like
 * the materializer's "caught up in X s", which counts from the start of its thread (the handle
 * exists by then) and includes its own metadata round trips. The JSON line also gives the
 * process's CPU time (user + system, all threads) when the last record arrived, to set beside
 * the gateway's "process CPU" of the same moment.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/resource.h>

#include <librdkafka/rdkafka.h>

#include "bench_util.h"

#define SG_CONSUME_METADATA_TIMEOUT_MS 10000
#define SG_CONSUME_POLL_MS 100
#define SG_CONSUME_BATCH 256 /* as SG_MAT_CONSUME_BATCH */

static const char usage[] = "usage: sg-bench-consume (--brokers LIST | --bootstrap-file PATH) --topic NAME\n"
                            "                        [--fetch-wait-ms N] [--timeout S] [--json]\n"
                            "\n"
                            "  --brokers LIST        bootstrap servers (host:port,...)\n"
                            "  --bootstrap-file PATH read the bootstrap servers from the first line of PATH\n"
                            "  --topic NAME          topic to read from the beginning to its high watermarks\n"
                            "  --fetch-wait-ms N     fetch.wait.max.ms (default 10, the materializer's)\n"
                            "  --timeout S           give up after S seconds (default 600)\n"
                            "  --json                print one JSON line instead of the text summary\n";

typedef struct st_sg_options_t {
    const char *brokers;
    const char *topic;
    const char *fetch_wait_ms;
    long timeout_s;
    bool json;
} sg_options_t;

typedef struct st_sg_part_t {
    int32_t id;
    int64_t high; /* the target: the high watermark at start */
    int64_t next; /* next offset to read */
} sg_part_t;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int parse_options(int argc, char **argv, sg_options_t *opts)
{
    *opts = (sg_options_t){.fetch_wait_ms = "10", .timeout_s = 600};
    for (int i = 1; i < argc; ++i) {
        const char *arg = argv[i];
        if (strcmp(arg, "--json") == 0) {
            opts->json = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            sg_bench_log("%s needs a value (or is unknown)", arg);
            return -1;
        }
        const char *value = argv[++i];
        long long num;
        if (strcmp(arg, "--brokers") == 0) {
            opts->brokers = value;
        } else if (strcmp(arg, "--bootstrap-file") == 0) {
            if ((opts->brokers = sg_bench_read_bootstrap_file(value)) == NULL)
                return -1;
        } else if (strcmp(arg, "--topic") == 0) {
            opts->topic = value;
        } else if (strcmp(arg, "--fetch-wait-ms") == 0) {
            if (!sg_bench_parse_long(value, 0, 60000, &num)) {
                sg_bench_log("--fetch-wait-ms wants 0..60000, not %s", value);
                return -1;
            }
            opts->fetch_wait_ms = value;
        } else if (strcmp(arg, "--timeout") == 0) {
            if (!sg_bench_parse_long(value, 1, 86400, &num)) {
                sg_bench_log("--timeout wants 1..86400 seconds, not %s", value);
                return -1;
            }
            opts->timeout_s = (long)num;
        } else {
            sg_bench_log("unknown option %s", arg);
            return -1;
        }
    }
    if (opts->brokers == NULL || opts->topic == NULL) {
        sg_bench_log("--brokers (or --bootstrap-file) and --topic are required");
        return -1;
    }
    return 0;
}

/* The materializer's consumer settings (bridge/materializer.c): group.id only names the client
 * (rd_kafka_assign() wants one; no group is joined, nothing is committed), partition EOF on,
 * fetch.wait.max.ms 10, the other fetch settings at their defaults. */
static rd_kafka_t *create_consumer(const sg_options_t *opts)
{
    char group[64];
    snprintf(group, sizeof(group), "sg-bench-consume-%ld", (long)getpid());
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (sg_bench_set_prop(conf, "bootstrap.servers", opts->brokers) || sg_bench_set_prop(conf, "client.id", "sg-bench-consume") ||
        sg_bench_set_prop(conf, "group.id", group) || sg_bench_set_prop(conf, "enable.auto.commit", "false") ||
        sg_bench_set_prop(conf, "enable.auto.offset.store", "false") || sg_bench_set_prop(conf, "enable.partition.eof", "true") ||
        sg_bench_set_prop(conf, "auto.offset.reset", "earliest") ||
        sg_bench_set_prop(conf, "fetch.wait.max.ms", opts->fetch_wait_ms)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, sg_bench_on_log);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) {
        sg_bench_log("consumer: %s", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* Reads the topic's partitions and high watermarks into *parts and assigns every partition at
 * the beginning. Returns the partition count, or -1. */
static int assign_from_beginning(rd_kafka_t *rk, const char *topic, sg_part_t **parts)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt == NULL) {
        sg_bench_log("%s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, SG_CONSUME_METADATA_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR &&
        (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topics[0].partition_cnt == 0))
        err = md->topic_cnt == 1 && md->topics[0].err ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sg_bench_log("topic %s: %s", topic, rd_kafka_err2str(err));
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        return -1;
    }
    int n = md->topics[0].partition_cnt;
    *parts = calloc((size_t)n, sizeof(**parts));
    if (*parts == NULL)
        abort();
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n && err == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
        sg_part_t *part = &(*parts)[i];
        int64_t low;
        part->id = md->topics[0].partitions[i].id;
        err = rd_kafka_query_watermark_offsets(rk, topic, part->id, &low, &part->high, SG_CONSUME_METADATA_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            sg_bench_log("topic %s [%" PRId32 "] watermarks: %s", topic, part->id, rd_kafka_err2str(err));
            break;
        }
        part->next = low;
        rd_kafka_topic_partition_list_add(list, topic, part->id)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_metadata_destroy(md);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && (err = rd_kafka_assign(rk, list)) != RD_KAFKA_RESP_ERR_NO_ERROR)
        sg_bench_log("assign %s: %s", topic, rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        free(*parts);
        *parts = NULL;
        return -1;
    }
    return n;
}

static sg_part_t *find_part(sg_part_t *parts, int n, int32_t id)
{
    for (int i = 0; i < n; ++i)
        if (parts[i].id == id)
            return &parts[i];
    return NULL;
}

int main(int argc, char **argv)
{
    sg_bench_set_name("sg-bench-consume");
    sg_options_t opts;
    if (parse_options(argc, argv, &opts) != 0) {
        fputs(usage, stderr);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    rd_kafka_t *rk = create_consumer(&opts);
    if (rk == NULL)
        return 1;
    const int64_t start_ns = sg_bench_now_ns();
    sg_part_t *parts = NULL;
    int n_parts = assign_from_beginning(rk, opts.topic, &parts);
    if (n_parts < 0) {
        rd_kafka_destroy(rk);
        return 1;
    }
    const int64_t assigned_ns = sg_bench_now_ns();
    int64_t target = 0;
    int left = 0; /* partitions not read up to their high watermark yet */
    for (int i = 0; i < n_parts; ++i) {
        target += parts[i].high - parts[i].next;
        if (parts[i].next < parts[i].high)
            ++left;
    }

    rd_kafka_queue_t *queue = rd_kafka_queue_get_consumer(rk);
    const int64_t deadline_ns = start_ns + (int64_t)opts.timeout_s * 1000000000;
    uint64_t records = 0, bytes = 0, errors = 0, checksum = 0;
    rd_kafka_message_t *msgs[SG_CONSUME_BATCH];
    ssize_t n = 0, i = 0;
    while (left > 0 && !stop_signal && sg_bench_now_ns() < deadline_ns) {
        if (i == n) {
            i = 0;
            n = rd_kafka_consume_batch_queue(queue, 0, msgs, SG_CONSUME_BATCH);
            if (n <= 0 && (msgs[0] = rd_kafka_consume_queue(queue, SG_CONSUME_POLL_MS)) != NULL)
                n = 1;
            if (n <= 0) {
                n = 0;
                continue;
            }
        }
        rd_kafka_message_t *msg = msgs[i++];
        sg_part_t *part = find_part(parts, n_parts, msg->partition);
        int64_t next = -1;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            next = msg->offset;
        } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (errors++ == 0)
                sg_bench_log("consume: %s", rd_kafka_message_errstr(msg));
        } else {
            ++records;
            bytes += msg->key_len + msg->len;
            /* Touch the bytes a table would read, so nothing is optimised into a count. */
            if (msg->len > 0)
                checksum += ((const unsigned char *)msg->payload)[msg->len - 1];
            next = msg->offset + 1;
        }
        if (part != NULL && next > part->next) {
            bool was_left = part->next < part->high;
            part->next = next;
            if (was_left && part->next >= part->high)
                --left;
        }
        rd_kafka_message_destroy(msg);
    }
    while (i < n) /* what a stop or the deadline left of a batch */
        rd_kafka_message_destroy(msgs[i++]);
    const int64_t end_ns = sg_bench_now_ns();
    struct rusage self;
    double cpu_seconds = getrusage(RUSAGE_SELF, &self) == 0
                             ? (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
                                   (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6
                             : -1.0;
    rd_kafka_queue_destroy(queue);
    free(parts);
    rd_kafka_destroy(rk);

    double seconds = (double)(end_ns - start_ns) / 1e9;
    double rps = seconds > 0 ? (double)records / seconds : 0;
    if (opts.json)
        printf("{\"tool\":\"sg-bench-consume\",\"topic\":\"%s\",\"partitions\":%d,\"records\":%" PRIu64 ",\"target\":%" PRId64
               ",\"bytes\":%" PRIu64 ",\"seconds\":%.3f,\"setup_seconds\":%.3f,\"cpu_seconds\":%.3f,"
               "\"rps\":%.1f,\"errors\":%" PRIu64 ",\"complete\":%s,\"checksum\":%" PRIu64 "}\n",
               opts.topic, n_parts, records, target, bytes, seconds, (double)(assigned_ns - start_ns) / 1e9, cpu_seconds, rps, errors,
               left == 0 ? "true" : "false", checksum);
    else
        printf("%s: %" PRIu64 " of %" PRId64 " records (%" PRIu64 " key+value bytes, %d partitions) in %.3f s"
               " (%.3f s metadata and assign): %.0f records/s%s\n",
               opts.topic, records, target, bytes, n_parts, seconds, (double)(assigned_ns - start_ns) / 1e9, rps,
               left == 0 ? "" : " (INCOMPLETE)");
    return left == 0 ? 0 : 1;
}
