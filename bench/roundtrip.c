/*
 * sg-bench-roundtrip: the raw librdkafka request-reply round trip, no HTTP, that streamgate's
 * sync mode is measured against. It produces requests carrying kafka_correlationId and
 * kafka_replyTopic to a request topic; a responder (sg-bench-responder, started separately)
 * answers on the reply topic; this tool reads the reply topic and matches replies to requests.
 *
 * Closed loop, one thread: N slots (--concurrency), each with at most one request in flight; a
 * reply frees its slot, which sends the next request at once. The correlation id names the slot
 * and the slot's sequence number ("rt-<pid>-<slot>-<seq>"), so matching is an array index and a
 * compare, and a stale or foreign reply is recognised and counted. The reply consumer is assigned
 * every partition of the reply topic (no group, no rebalance) at the high watermarks it queried
 * before the first request, so no reply can slip in between "from the end" and the first send.
 * Latency runs from just before rd_kafka_producev() to the moment rd_kafka_consumer_poll() hands
 * the reply over.
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

#include <librdkafka/rdkafka.h>

#include "bench_util.h"

#define SG_HDR_CORRELATION "kafka_correlationId"
#define SG_HDR_REPLY_TOPIC "kafka_replyTopic"
#define SG_MAX_CONCURRENCY 100000

static const char usage[] = "usage: sg-bench-roundtrip (--brokers LIST | --bootstrap-file PATH) --topic NAME --reply-topic NAME\n"
                            "                          [--concurrency N] [--duration S | --count N] [--warmup S]\n"
                            "                          [--timeout-ms N] [--json] [--fetch-wait-ms N]\n"
                            "\n"
                            "  --brokers LIST        bootstrap servers (host:port,...)\n"
                            "  --bootstrap-file PATH read the bootstrap servers from the first line of PATH\n"
                            "  --topic NAME          request topic (a responder must be answering it)\n"
                            "  --reply-topic NAME    reply topic, sent as kafka_replyTopic and read from its end\n"
                            "  --concurrency N       requests in flight, closed loop (default 1)\n"
                            "  --duration S          measured seconds (default 10)\n"
                            "  --count N             measure N requests instead of a duration\n"
                            "  --warmup S            unmeasured seconds first (default 2)\n"
                            "  --timeout-ms N        a request without a reply after N ms is counted lost and its slot\n"
                            "                        reused (default 10000)\n"
                            "  --json                print one JSON line instead of the text summary\n"
                            "  --fetch-wait-ms N     reply consumer fetch.wait.max.ms (default 1; see bench/README.md)\n";

typedef struct st_sg_slot_t {
    uint64_t seq;
    int64_t sent_ns;
    bool busy;
    bool measured; /* sent after the warm-up: its latency is a sample */
} sg_slot_t;

typedef struct st_sg_options_t {
    const char *brokers;
    const char *topic;
    const char *reply_topic;
    long concurrency;
    double duration_s;
    long long count;
    double warmup_s;
    long timeout_ms;
    bool json;
    const char *fetch_wait_ms;
} sg_options_t;

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t exit_status;
static uint64_t produce_failed;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void on_alarm(int sig)
{
    _exit(exit_status);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (produce_failed++ == 0)
            sg_bench_log("request not delivered: %s", rd_kafka_err2str(msg->err));
    }
}

/* --- options ------------------------------------------------------------------------------ */

static bool parse_seconds(const char *text, double min, double *out)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(value >= min && value <= 86400))
        return false;
    *out = value;
    return true;
}

static int parse_options(int argc, char **argv, sg_options_t *opts)
{
    *opts = (sg_options_t){.fetch_wait_ms = "1", .concurrency = 1, .duration_s = 10, .warmup_s = 2, .timeout_ms = 10000};
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
        } else if (strcmp(arg, "--fetch-wait-ms") == 0) {
            if (!sg_bench_parse_long(value, 0, 60000, &num)) {
                sg_bench_log("--fetch-wait-ms wants 0..60000, not %s", value);
                return -1;
            }
            opts->fetch_wait_ms = value;
        } else if (strcmp(arg, "--topic") == 0) {
            opts->topic = value;
        } else if (strcmp(arg, "--reply-topic") == 0) {
            opts->reply_topic = value;
        } else if (strcmp(arg, "--concurrency") == 0) {
            if (!sg_bench_parse_long(value, 1, SG_MAX_CONCURRENCY, &num)) {
                sg_bench_log("--concurrency wants 1..%d, not %s", SG_MAX_CONCURRENCY, value);
                return -1;
            }
            opts->concurrency = (long)num;
        } else if (strcmp(arg, "--count") == 0) {
            if (!sg_bench_parse_long(value, 1, 1000000000, &num)) {
                sg_bench_log("--count wants 1..1000000000, not %s", value);
                return -1;
            }
            opts->count = num;
        } else if (strcmp(arg, "--timeout-ms") == 0) {
            if (!sg_bench_parse_long(value, 1, 3600000, &num)) {
                sg_bench_log("--timeout-ms wants 1..3600000, not %s", value);
                return -1;
            }
            opts->timeout_ms = (long)num;
        } else if (strcmp(arg, "--duration") == 0) {
            if (!parse_seconds(value, 0.001, &opts->duration_s)) {
                sg_bench_log("--duration wants seconds > 0, not %s", value);
                return -1;
            }
        } else if (strcmp(arg, "--warmup") == 0) {
            if (!parse_seconds(value, 0, &opts->warmup_s)) {
                sg_bench_log("--warmup wants seconds >= 0, not %s", value);
                return -1;
            }
        } else {
            sg_bench_log("unknown option %s", arg);
            return -1;
        }
    }
    if (opts->brokers == NULL || opts->topic == NULL || opts->reply_topic == NULL) {
        sg_bench_log("--brokers (or --bootstrap-file), --topic and --reply-topic are required");
        return -1;
    }
    return 0;
}

/* --- clients ------------------------------------------------------------------------------ */

/* The same producer settings as streamgate's bridge, so the baseline pays what it pays:
 * idempotent, acks=all, linger.ms=0 (a non-zero linger adds ~1 ms per idle request). */
static rd_kafka_t *create_producer(const sg_options_t *opts)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (sg_bench_set_prop(conf, "bootstrap.servers", opts->brokers) || sg_bench_set_prop(conf, "client.id", "sg-bench-roundtrip") ||
        sg_bench_set_prop(conf, "enable.idempotence", "true") || sg_bench_set_prop(conf, "acks", "all") ||
        sg_bench_set_prop(conf, "linger.ms", "0")) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_log_cb(conf, sg_bench_on_log);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        sg_bench_log("producer: %s", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* An assign-only consumer: rd_kafka_assign() needs a group.id, but without subscribe() the
 * handle never joins the group, and nothing is committed. fetch.wait.max.ms (default 1) and
 * fetch.min.bytes=1: an empty fetch is answered within that time, so the next one (which sees the
 * reply) goes out at once; the embedded cluster does not cut a waiting fetch short when data
 * arrives, so a larger wait would be measured as reply latency. */
static rd_kafka_t *create_consumer(const sg_options_t *opts)
{
    char group[64];
    snprintf(group, sizeof(group), "sg-bench-roundtrip-%ld", (long)getpid());
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (sg_bench_set_prop(conf, "bootstrap.servers", opts->brokers) || sg_bench_set_prop(conf, "client.id", "sg-bench-roundtrip") ||
        sg_bench_set_prop(conf, "group.id", group) || sg_bench_set_prop(conf, "enable.auto.commit", "false") ||
        sg_bench_set_prop(conf, "enable.auto.offset.store", "false") ||
        sg_bench_set_prop(conf, "fetch.wait.max.ms", opts->fetch_wait_ms) || sg_bench_set_prop(conf, "fetch.min.bytes", "1") ||
        sg_bench_set_prop(conf, "enable.partition.eof", "false")) {
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

/* Assigns every partition of the reply topic at its current high watermark. */
static int assign_reply_topic(rd_kafka_t *consumer, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(consumer, topic, NULL);
    if (rkt == NULL) {
        sg_bench_log("%s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(consumer, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topics[0].partition_cnt == 0) {
        sg_bench_log("reply topic %s: %s", topic,
                     rd_kafka_err2str(err != RD_KAFKA_RESP_ERR_NO_ERROR ? err
                                      : md->topic_cnt == 1 && md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR
                                          ? md->topics[0].err
                                          : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        return -1;
    }
    int partitions = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions);
    for (int i = 0; i < partitions; ++i) {
        int32_t partition = md->topics[0].partitions[i].id;
        int64_t low, high;
        err = rd_kafka_query_watermark_offsets(consumer, topic, partition, &low, &high, 10000);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            sg_bench_log("reply topic %s [%" PRId32 "] watermarks: %s", topic, partition, rd_kafka_err2str(err));
            rd_kafka_topic_partition_list_destroy(list);
            rd_kafka_metadata_destroy(md);
            return -1;
        }
        rd_kafka_topic_partition_list_add(list, topic, partition)->offset = high;
    }
    rd_kafka_metadata_destroy(md);
    err = rd_kafka_assign(consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sg_bench_log("assign %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* --- the loop ----------------------------------------------------------------------------- */

typedef struct st_sg_run_t {
    const sg_options_t *opts;
    rd_kafka_t *producer;
    sg_slot_t *slots;
    long in_flight;
    char id_prefix[32];
    int64_t *samples; /* latencies of measured requests, ns */
    size_t n_samples, cap_samples;
    long long measured_sent;
    uint64_t lost, errors, unmatched, refused;
} sg_run_t;

/* Sends the next request of slot `index`. Returns 0, or -1 if the producer refused it. */
static int send_request(sg_run_t *run, long index, bool measured)
{
    sg_slot_t *slot = &run->slots[index];
    char id[96], value[64];
    ++slot->seq;
    int id_len = snprintf(id, sizeof(id), "%s-%ld-%" PRIu64, run->id_prefix, index, slot->seq);
    int value_len = snprintf(value, sizeof(value), "{\"slot\":%ld,\"seq\":%" PRIu64 "}", index, slot->seq);
    for (;;) {
        slot->sent_ns = sg_bench_now_ns();
        rd_kafka_resp_err_t err =
            rd_kafka_producev(run->producer, RD_KAFKA_V_TOPIC(run->opts->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_VALUE(value, (size_t)value_len), RD_KAFKA_V_HEADER(SG_HDR_CORRELATION, id, id_len),
                              RD_KAFKA_V_HEADER(SG_HDR_REPLY_TOPIC, run->opts->reply_topic, -1), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (run->refused++ == 0)
                sg_bench_log("produce to %s: %s", run->opts->topic, rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(run->producer, 1);
    }
    slot->busy = true;
    slot->measured = measured;
    ++run->in_flight;
    if (measured)
        ++run->measured_sent;
    return 0;
}

static void add_sample(sg_run_t *run, int64_t latency_ns)
{
    if (run->n_samples == run->cap_samples) {
        run->cap_samples = run->cap_samples != 0 ? run->cap_samples * 2 : 65536;
        run->samples = realloc(run->samples, run->cap_samples * sizeof(*run->samples));
        if (run->samples == NULL)
            abort();
    }
    run->samples[run->n_samples++] = latency_ns;
}

/* Matches a reply to its slot; returns the slot index, or -1 for a reply that is not ours or
 * not for the request its slot is waiting on (counted as unmatched). */
static long match_reply(sg_run_t *run, const rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *headers = NULL;
    const void *value = NULL;
    size_t len = 0;
    if (rd_kafka_message_headers(msg, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(headers, SG_HDR_CORRELATION, &value, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || value == NULL ||
        len >= 96)
        return -1;
    char id[96];
    memcpy(id, value, len);
    id[len] = '\0';
    size_t prefix_len = strlen(run->id_prefix);
    if (strncmp(id, run->id_prefix, prefix_len) != 0 || id[prefix_len] != '-')
        return -1;
    char *end;
    long index = strtol(id + prefix_len + 1, &end, 10);
    if (*end != '-' || index < 0 || index >= run->opts->concurrency)
        return -1;
    uint64_t seq = strtoull(end + 1, &end, 10);
    if (*end != '\0' || !run->slots[index].busy || run->slots[index].seq != seq)
        return -1;
    /* A reply whose :status is not 2xx still completes the round trip; it is counted apart. */
    const void *status = NULL;
    size_t status_len = 0;
    if (rd_kafka_header_get_last(headers, ":status", &status, &status_len) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        (status_len == 0 || ((const char *)status)[0] != '2'))
        ++run->errors;
    return index;
}

static int cmp_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile (per_mille/1000) of the sorted samples, in ms. */
static double percentile_ms(const int64_t *sorted, size_t n, size_t per_mille)
{
    if (n == 0)
        return 0;
    size_t rank = (n * per_mille + 999) / 1000;
    if (rank < 1)
        rank = 1;
    return (double)sorted[rank - 1] / 1e6;
}

int main(int argc, char **argv)
{
    sg_bench_set_name("sg-bench-roundtrip");
    sg_options_t opts;
    if (parse_options(argc, argv, &opts) != 0) {
        fputs(usage, stderr);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    rd_kafka_t *producer = create_producer(&opts);
    if (producer == NULL)
        return 1;
    rd_kafka_t *consumer = create_consumer(&opts);
    if (consumer == NULL || assign_reply_topic(consumer, opts.reply_topic) != 0) {
        if (consumer != NULL)
            rd_kafka_destroy(consumer);
        rd_kafka_destroy(producer);
        return 1;
    }

    sg_run_t run = {.opts = &opts, .producer = producer};
    snprintf(run.id_prefix, sizeof(run.id_prefix), "rt-%ld", (long)getpid());
    run.slots = calloc((size_t)opts.concurrency, sizeof(*run.slots));
    if (run.slots == NULL)
        abort();

    const int64_t timeout_ns = (int64_t)opts.timeout_ms * 1000000;
    const int64_t start_ns = sg_bench_now_ns();
    int64_t measure_start_ns = start_ns + (int64_t)(opts.warmup_s * 1e9);
    const int64_t measure_end_ns = opts.count != 0 ? INT64_MAX : measure_start_ns + (int64_t)(opts.duration_s * 1e9);
    int64_t last_reply_ns = measure_start_ns, next_timeout_scan_ns = start_ns + 100000000;
    bool measuring = opts.warmup_s <= 0;

    /* Whether a freed slot should send again, and whether that request is measured. */
#define SG_ISSUING(now) (!stop_signal && (now) < measure_end_ns && (opts.count == 0 || run.measured_sent < opts.count))

    for (long i = 0; i < opts.concurrency; ++i)
        send_request(&run, i, measuring);
    for (;;) {
        int64_t now = sg_bench_now_ns();
        if (!measuring && now >= measure_start_ns)
            measuring = true;
        if (!SG_ISSUING(now) && run.in_flight == 0)
            break;
        if (stop_signal)
            break;
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, 10);
        while (msg != NULL) {
            int64_t received_ns = sg_bench_now_ns();
            if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                sg_bench_log("consume: %s", rd_kafka_message_errstr(msg));
            } else {
                long index = match_reply(&run, msg);
                if (index < 0) {
                    ++run.unmatched;
                } else {
                    sg_slot_t *slot = &run.slots[index];
                    slot->busy = false;
                    --run.in_flight;
                    if (slot->measured) {
                        add_sample(&run, received_ns - slot->sent_ns);
                        last_reply_ns = received_ns;
                    }
                    if (!measuring && received_ns >= measure_start_ns)
                        measuring = true;
                    if (SG_ISSUING(received_ns))
                        send_request(&run, index, measuring);
                }
            }
            rd_kafka_message_destroy(msg);
            msg = rd_kafka_consumer_poll(consumer, 0);
        }
        rd_kafka_poll(producer, 0);
        now = sg_bench_now_ns();
        if (now >= next_timeout_scan_ns) {
            next_timeout_scan_ns = now + 100000000;
            for (long i = 0; i < opts.concurrency; ++i) {
                sg_slot_t *slot = &run.slots[i];
                if (!slot->busy || now - slot->sent_ns < timeout_ns)
                    continue;
                slot->busy = false;
                --run.in_flight;
                ++run.lost;
                if (SG_ISSUING(now))
                    send_request(&run, i, measuring);
            }
        }
        /* A slot whose send was refused stays idle: retry it here rather than lose it. */
        if (run.refused != 0 && SG_ISSUING(now))
            for (long i = 0; i < opts.concurrency; ++i)
                if (!run.slots[i].busy)
                    send_request(&run, i, measuring);
    }
#undef SG_ISSUING

    qsort(run.samples, run.n_samples, sizeof(*run.samples), cmp_int64);
    double seconds = (double)(last_reply_ns - measure_start_ns) / 1e9;
    double rps = seconds > 0 ? (double)run.n_samples / seconds : 0;
    double p50 = percentile_ms(run.samples, run.n_samples, 500);
    double p90 = percentile_ms(run.samples, run.n_samples, 900);
    double p99 = percentile_ms(run.samples, run.n_samples, 990);
    double max = run.n_samples != 0 ? (double)run.samples[run.n_samples - 1] / 1e6 : 0;
    if (opts.json)
        printf("{\"tool\":\"sg-bench-roundtrip\",\"concurrency\":%ld,\"requests\":%zu,\"seconds\":%.3f,"
               "\"rps\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
               "\"lost\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"unmatched\":%" PRIu64 ",\"produce_failed\":%" PRIu64 "}\n",
               opts.concurrency, run.n_samples, seconds, rps, p50, p90, p99, max, run.lost, run.errors, run.unmatched,
               produce_failed + run.refused);
    else
        printf("sg-bench-roundtrip: concurrency %ld: %zu requests in %.2f s, %.1f req/s\n"
               "latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n"
               "lost %" PRIu64 ", non-2xx %" PRIu64 ", unmatched %" PRIu64 ", produce failed %" PRIu64 "\n",
               opts.concurrency, run.n_samples, seconds, rps, p50, p90, p99, max, run.lost, run.errors, run.unmatched,
               produce_failed + run.refused);
    fflush(stdout);
    free(run.samples);
    free(run.slots);
    exit_status = stop_signal ? 130 : run.n_samples != 0 ? 0 : 1;
    /* The figures are out; a cluster that went away must not keep the process from exiting
     * (librdkafka 2.0's consumer close has no bound). */
    struct sigaction alarm_sa = {.sa_handler = on_alarm};
    sigemptyset(&alarm_sa.sa_mask);
    sigaction(SIGALRM, &alarm_sa, NULL);
    alarm(5);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_flush(producer, 2000);
    rd_kafka_destroy(producer);
    return exit_status;
}
