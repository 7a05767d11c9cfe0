/*
 * sg-bench-load: fills a table topic for the table benches. It produces N records (default
 * 1,000,000) keyed "k0000000", "k0000001", ... (key i is "k" + i in 7 digits, wider past 10^7)
 * with a small JSON value of a fixed size (default 100 bytes) that names its key, so every key of
 * the table holds one row and a point read of any "k%07d" below N finds it.
 *
 * Throughput first: one thread, RD_KAFKA_MSG_F_COPY, large batches (linger.ms, batch.size) and the
 * same durability as streamgate's producer (acks=all, idempotent), so that the topic looks like
 * one a gateway fed. A full local queue is waited out with rd_kafka_poll(), never dropped. The
 * output counts delivery reports, not produce calls: a record counts once the broker acked it.
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

#include <librdkafka/rdkafka.h>

#include "bench_util.h"

#define SG_LOAD_MAX_COUNT 100000000LL
#define SG_LOAD_MIN_VALUE 48 /* the JSON skeleton with a key of up to 9 digits fits */
#define SG_LOAD_MAX_VALUE 65536
#define SG_LOAD_FLUSH_MS 120000

static const char usage[] = "usage: sg-bench-load (--brokers LIST | --bootstrap-file PATH) --topic NAME [--count N]\n"
                            "                     [--value-size BYTES] [--linger-ms N] [--compression CODEC] [--json]\n"
                            "\n"
                            "  --brokers LIST        bootstrap servers (host:port,...)\n"
                            "  --bootstrap-file PATH read the bootstrap servers from the first line of PATH\n"
                            "  --topic NAME          the table topic (must exist)\n"
                            "  --count N             records, keys k0000000 .. k<N-1> (default 1000000)\n"
                            "  --value-size BYTES    size of each JSON value, 48..65536 (default 100)\n"
                            "  --linger-ms N         producer linger.ms (default 20)\n"
                            "  --compression CODEC   producer compression.codec (default none)\n"
                            "  --json                print one JSON line instead of the text summary\n";

typedef struct st_sg_options_t {
    const char *brokers;
    const char *topic;
    long long count;
    long value_size;
    const char *linger_ms;
    const char *compression;
    bool json;
} sg_options_t;

static volatile sig_atomic_t stop_signal;
static uint64_t delivered, delivered_bytes, failed;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (failed++ == 0)
            sg_bench_log("record not delivered: %s", rd_kafka_err2str(msg->err));
        return;
    }
    ++delivered;
    delivered_bytes += msg->key_len + msg->len;
}

static int parse_options(int argc, char **argv, sg_options_t *opts)
{
    *opts = (sg_options_t){.count = 1000000, .value_size = 100, .linger_ms = "20", .compression = "none"};
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
        } else if (strcmp(arg, "--count") == 0) {
            if (!sg_bench_parse_long(value, 1, SG_LOAD_MAX_COUNT, &num)) {
                sg_bench_log("--count wants 1..%lld, not %s", SG_LOAD_MAX_COUNT, value);
                return -1;
            }
            opts->count = num;
        } else if (strcmp(arg, "--value-size") == 0) {
            if (!sg_bench_parse_long(value, SG_LOAD_MIN_VALUE, SG_LOAD_MAX_VALUE, &num)) {
                sg_bench_log("--value-size wants %d..%d, not %s", SG_LOAD_MIN_VALUE, SG_LOAD_MAX_VALUE, value);
                return -1;
            }
            opts->value_size = (long)num;
        } else if (strcmp(arg, "--linger-ms") == 0) {
            if (!sg_bench_parse_long(value, 0, 60000, &num)) {
                sg_bench_log("--linger-ms wants 0..60000, not %s", value);
                return -1;
            }
            opts->linger_ms = value;
        } else if (strcmp(arg, "--compression") == 0) {
            opts->compression = value;
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

/* Batching producer with streamgate's durability: idempotent, acks=all. batch.num.messages and
 * batch.size make message sets of ~1 MB; a long queue keeps the one thread from stalling on
 * QUEUE_FULL while the batches are in flight. Keys are partitioned as streamgate's producer and
 * Kafka's Java client do (murmur2), where a partitioned table looks for them. */
static rd_kafka_t *create_producer(const sg_options_t *opts)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (sg_bench_set_prop(conf, "bootstrap.servers", opts->brokers) || sg_bench_set_prop(conf, "client.id", "sg-bench-load") ||
        sg_bench_set_prop(conf, "enable.idempotence", "true") || sg_bench_set_prop(conf, "acks", "all") ||
        sg_bench_set_prop(conf, "linger.ms", opts->linger_ms) || sg_bench_set_prop(conf, "batch.num.messages", "10000") ||
        sg_bench_set_prop(conf, "batch.size", "1000000") || sg_bench_set_prop(conf, "queue.buffering.max.messages", "1000000") ||
        sg_bench_set_prop(conf, "queue.buffering.max.kbytes", "1048576") ||
        sg_bench_set_prop(conf, "compression.codec", opts->compression) ||
        sg_bench_set_prop(conf, "partitioner", "murmur2_random")) {
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

/* Writes key i and its value (exactly value_size bytes of JSON) into the buffers; returns the
 * key length. The value: {"id":"<key>","n":<i>,"score":<i*7919%100000>,"pad":"..."}, the pad
 * drawn from 64 letters by a generator seeded with i, so that values differ and do not compress
 * to nothing (a row of 'x's would make RocksDB's LZ4 and the disk figure meaningless). */
static int make_record(long long i, long value_size, char *key, size_t keycap, char *value)
{
    static const char letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int keylen = snprintf(key, keycap, "k%07lld", i);
    char head[128];
    int headlen = snprintf(head, sizeof(head), "{\"id\":\"%s\",\"n\":%lld,\"score\":%lld,\"pad\":\"", key, i, (i * 7919) % 100000);
    long pad = value_size - headlen - 2; /* the closing "} */
    if (pad < 0)
        pad = 0;
    memcpy(value, head, (size_t)headlen);
    uint64_t state = (uint64_t)i * 0x9E3779B97F4A7C15ULL + 1;
    for (long j = 0; j < pad; ++j) {
        state ^= state << 13; /* xorshift64 */
        state ^= state >> 7;
        state ^= state << 17;
        value[headlen + j] = letters[state & 63];
    }
    memcpy(value + headlen + pad, "\"}", 2);
    return keylen;
}

int main(int argc, char **argv)
{
    sg_bench_set_name("sg-bench-load");
    sg_options_t opts;
    if (parse_options(argc, argv, &opts) != 0) {
        fputs(usage, stderr);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    rd_kafka_t *rk = create_producer(&opts);
    if (rk == NULL)
        return 1;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, opts.topic, NULL);
    if (rkt == NULL) {
        sg_bench_log("%s: %s", opts.topic, rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(rk);
        return 1;
    }
    /* An unknown topic would only show as delivery failures after message.timeout.ms. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t mderr = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (mderr == RD_KAFKA_RESP_ERR_NO_ERROR && (md->topic_cnt != 1 || md->topics[0].err != 0))
        mderr = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (mderr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sg_bench_log("topic %s: %s", opts.topic, rd_kafka_err2str(mderr));
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        return 1;
    }

    char *value = malloc((size_t)opts.value_size);
    if (value == NULL)
        abort();
    char key[32];
    uint64_t refused = 0;
    long long produced = 0;
    const int64_t start_ns = sg_bench_now_ns();
    for (long long i = 0; i < opts.count && !stop_signal; ++i) {
        int keylen = make_record(i, opts.value_size, key, sizeof(key), value);
        for (;;) {
            if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, value, (size_t)opts.value_size, key,
                                 (size_t)keylen, NULL) == 0)
                break;
            rd_kafka_resp_err_t err = rd_kafka_last_error();
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || stop_signal) {
                if (refused++ == 0)
                    sg_bench_log("produce to %s: %s", opts.topic, rd_kafka_err2str(err));
                break;
            }
            rd_kafka_poll(rk, 10);
        }
        ++produced;
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    const int64_t produced_ns = sg_bench_now_ns();
    rd_kafka_resp_err_t flush_err = rd_kafka_flush(rk, stop_signal ? 5000 : SG_LOAD_FLUSH_MS);
    const int64_t end_ns = sg_bench_now_ns();
    if (flush_err != RD_KAFKA_RESP_ERR_NO_ERROR)
        sg_bench_log("flush: %s (%d record(s) still queued)", rd_kafka_err2str(flush_err), rd_kafka_outq_len(rk));
    free(value);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);

    double seconds = (double)(end_ns - start_ns) / 1e9;
    double rps = seconds > 0 ? (double)delivered / seconds : 0;
    double mbps = seconds > 0 ? (double)delivered_bytes / seconds / 1e6 : 0;
    if (opts.json)
        printf("{\"tool\":\"sg-bench-load\",\"topic\":\"%s\",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64
               ",\"seconds\":%.3f,\"produce_seconds\":%.3f,\"rps\":%.1f,\"mb_per_s\":%.2f,\"failed\":%" PRIu64
               ",\"refused\":%" PRIu64 "}\n",
               opts.topic, delivered, delivered_bytes, seconds, (double)(produced_ns - start_ns) / 1e9, rps, mbps, failed, refused);
    else
        printf("%s: %" PRIu64 " records acked, %" PRIu64 " key+value bytes in %.3f s: %.0f records/s, %.2f MB/s"
               " (failed %" PRIu64 ", refused %" PRIu64 ")\n",
               opts.topic, delivered, delivered_bytes, seconds, rps, mbps, failed, refused);
    if (failed != 0 || refused != 0 || flush_err != RD_KAFKA_RESP_ERR_NO_ERROR || stop_signal || delivered != (uint64_t)produced)
        return 1;
    return 0;
}
