/*
 * sg-bench-responder: a worker that answers streamgate requests by the header contract
 * (DESIGN §3), for benches, integration tests and as a reference for worker authors.
 *
 * One thread, two librdkafka handles: a group consumer on the request topic(s) and an idempotent
 * producer (linger.ms=0) for the replies. A reply that must wait (--delay-ms) goes into a min-heap
 * ordered by due time; the poll loop produces every due reply and never sleeps past the next due
 * time, so one slow reply never holds up the others. On SIGTERM/SIGINT the replies still waiting
 * are produced at once (answered early rather than lost: their offsets may already be committed)
 * and the producer is flushed for at most 5 s.
 */
#include <ctype.h>
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
#define SG_HDR_REPLY_PARTITION "kafka_replyPartition"
#define SG_MAX_TOPICS 64
#define SG_FLUSH_MS 5000
#define SG_CLOSE_S 5
/* Every user-controlled size has a limit: a reply topic name is at most 249 bytes in Kafka. */
#define SG_MAX_TOPIC_NAME 249

static const char usage[] =
    "usage: sg-bench-responder (--brokers LIST | --bootstrap-file PATH) --topic NAME [--topic NAME ...]\n"
    "                          [--group ID] [--delay-ms N] [--status N] [--body TEXT]\n"
    "                          [--error-rate P] [--error-status N] [--count N] [--from-end] [--quiet]\n"
    "                          [--fetch-wait-ms N]\n"
    "\n"
    "  --brokers LIST        bootstrap servers (host:port,...)\n"
    "  --bootstrap-file PATH read the bootstrap servers from the first line of PATH\n"
    "                        (what `streamgate cluster --bootstrap-file` writes)\n"
    "  --topic NAME          request topic to consume (repeatable)\n"
    "  --group ID            consumer group id (default sg-responder)\n"
    "  --delay-ms N          reply N ms after the request was consumed (default 0)\n"
    "  --status N            :status header of the replies (default 200)\n"
    "  --body TEXT           fixed reply body instead of {\"ok\":true,\"echo\":...}\n"
    "  --error-rate P        fraction 0..1 of replies that get --error-status and {\"error\":\"injected\"}\n"
    "  --error-status N      status of the injected errors (default 500)\n"
    "  --count N             exit after N replies\n"
    "  --from-end            start a new group at the end of the topics (default: earliest)\n"
    "  --quiet               no start-up line, only the summary\n"
    "  --fetch-wait-ms N     consumer fetch.wait.max.ms (default 1; see bench/README.md)\n";

/* A reply waiting for its due time; owns every buffer it points to. */
typedef struct st_sg_reply_t {
    int64_t due_ns;
    uint64_t seq; /* ties broken by arrival order */
    char *topic;
    int32_t partition;
    void *correlation;
    size_t correlation_len;
    char status[8];
    char *body;
    size_t body_len;
} sg_reply_t;

typedef struct st_sg_reply_heap_t {
    sg_reply_t **items;
    size_t len, cap;
} sg_reply_heap_t;

typedef struct st_sg_options_t {
    const char *brokers;
    const char *topics[SG_MAX_TOPICS];
    int n_topics;
    const char *group;
    long delay_ms;
    int status;
    const char *body;
    double error_rate;
    int error_status;
    long long count;
    bool from_end;
    bool quiet;
    const char *fetch_wait_ms;
} sg_options_t;

typedef struct st_sg_stats_t {
    uint64_t requests, replies, skipped, delivered, failed, early;
} sg_stats_t;

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t exit_status;
static uint64_t rng_state;
static uint64_t reply_seq;
static sg_stats_t stats;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void on_alarm(int sig)
{
    _exit(exit_status);
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size != 0 ? size : 1);
    if (p == NULL)
        abort();
    return p;
}

/* xorshift64*: the error injection only needs a cheap, roughly uniform draw in [0, 1). */
static double rng_uniform(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* --- the due-time heap -------------------------------------------------------------------- */

static bool reply_before(const sg_reply_t *a, const sg_reply_t *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void heap_push(sg_reply_heap_t *heap, sg_reply_t *reply)
{
    if (heap->len == heap->cap) {
        heap->cap = heap->cap != 0 ? heap->cap * 2 : 256;
        heap->items = realloc(heap->items, heap->cap * sizeof(*heap->items));
        if (heap->items == NULL)
            abort();
    }
    size_t at = heap->len++;
    while (at > 0) {
        size_t parent = (at - 1) / 2;
        if (!reply_before(reply, heap->items[parent]))
            break;
        heap->items[at] = heap->items[parent];
        at = parent;
    }
    heap->items[at] = reply;
}

static sg_reply_t *heap_pop(sg_reply_heap_t *heap)
{
    sg_reply_t *top = heap->items[0];
    sg_reply_t *last = heap->items[--heap->len];
    size_t at = 0;
    for (;;) {
        size_t child = 2 * at + 1;
        if (child >= heap->len)
            break;
        if (child + 1 < heap->len && reply_before(heap->items[child + 1], heap->items[child]))
            ++child;
        if (!reply_before(heap->items[child], last))
            break;
        heap->items[at] = heap->items[child];
        at = child;
    }
    if (heap->len > 0)
        heap->items[at] = last;
    return top;
}

static void reply_destroy(sg_reply_t *reply)
{
    if (reply == NULL)
        return;
    free(reply->topic);
    free(reply->correlation);
    free(reply->body);
    free(reply);
}

/* --- producing replies -------------------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ++stats.delivered;
        return;
    }
    ++stats.failed;
    sg_bench_log("reply to %s not delivered: %s", rd_kafka_topic_name(msg->rkt), rd_kafka_err2str(msg->err));
}

/* Produces one reply (librdkafka copies every buffer). Returns 0, or -1 when the producer
 * refused it (logged and counted as failed). */
static int produce_reply(rd_kafka_t *producer, const char *topic, int32_t partition, const void *correlation,
                         size_t correlation_len, const char *status, const char *body, size_t body_len)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE((void *)body, body_len), RD_KAFKA_V_HEADER(SG_HDR_CORRELATION, correlation, (ssize_t)correlation_len),
            RD_KAFKA_V_HEADER(":status", status, -1), RD_KAFKA_V_HEADER("content-type", "application/json", -1), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            ++stats.replies;
            return 0;
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            ++stats.failed;
            sg_bench_log("reply to %s [%" PRId32 "] refused: %s", topic, partition, rd_kafka_err2str(err));
            return -1;
        }
        /* The local queue drains as the broker acks: serve delivery reports and try again. */
        rd_kafka_poll(producer, 10);
    }
}

/* Whether the request value can be embedded as JSON without a parser: its first and last
 * non-blank bytes are {} or []. Anything else (text, numbers, an empty value) echoes null. */
static bool looks_like_json(const char *value, size_t len)
{
    size_t first = 0, last = len;
    while (first < len && isspace((unsigned char)value[first]))
        ++first;
    while (last > first && isspace((unsigned char)value[last - 1]))
        --last;
    if (last - first < 2)
        return false;
    return (value[first] == '{' && value[last - 1] == '}') || (value[first] == '[' && value[last - 1] == ']');
}

/* Writes the reply body into *buf (grown as needed) and returns its length. */
static size_t build_body(const sg_options_t *opts, bool injected, const rd_kafka_message_t *msg, char **buf, size_t *cap)
{
    static const char head[] = "{\"ok\":true,\"echo\":";
    const char *fixed = NULL;
    if (injected)
        fixed = "{\"error\":\"injected\"}";
    else if (opts->body != NULL)
        fixed = opts->body;
    const char *value = msg->payload;
    bool echo = fixed == NULL && value != NULL && looks_like_json(value, msg->len);
    size_t need = fixed != NULL ? strlen(fixed) : sizeof(head) - 1 + (echo ? msg->len : 4) + 1;
    if (need > *cap) {
        *cap = need + 1024;
        free(*buf);
        *buf = xmalloc(*cap);
    }
    if (fixed != NULL) {
        memcpy(*buf, fixed, need);
        return need;
    }
    size_t at = sizeof(head) - 1;
    memcpy(*buf, head, at);
    if (echo) {
        memcpy(*buf + at, value, msg->len);
        at += msg->len;
    } else {
        memcpy(*buf + at, "null", 4);
        at += 4;
    }
    (*buf)[at++] = '}';
    return at;
}

/* Answers (or queues the answer to) one request record. */
static void handle_request(const sg_options_t *opts, rd_kafka_t *producer, sg_reply_heap_t *heap, const rd_kafka_message_t *msg,
                           char **body_buf, size_t *body_cap)
{
    ++stats.requests;
    rd_kafka_headers_t *headers = NULL;
    const void *correlation = NULL, *topic = NULL, *partition_bytes = NULL;
    size_t correlation_len = 0, topic_len = 0, partition_len = 0;
    if (rd_kafka_message_headers(msg, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(headers, SG_HDR_REPLY_TOPIC, &topic, &topic_len) != RD_KAFKA_RESP_ERR_NO_ERROR || topic == NULL ||
        topic_len == 0 || topic_len > SG_MAX_TOPIC_NAME ||
        rd_kafka_header_get_last(headers, SG_HDR_CORRELATION, &correlation, &correlation_len) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        correlation == NULL) {
        ++stats.skipped;
        return;
    }
    int32_t partition = RD_KAFKA_PARTITION_UA;
    if (rd_kafka_header_get_last(headers, SG_HDR_REPLY_PARTITION, &partition_bytes, &partition_len) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const unsigned char *b = partition_bytes;
        if (b == NULL || partition_len != 4) {
            ++stats.skipped;
            return;
        }
        partition = (int32_t)(((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3]);
        if (partition < 0) {
            ++stats.skipped;
            return;
        }
    }
    char topic_name[SG_MAX_TOPIC_NAME + 1];
    memcpy(topic_name, topic, topic_len);
    topic_name[topic_len] = '\0';

    bool injected = opts->error_rate > 0 && rng_uniform() < opts->error_rate;
    char status[8];
    snprintf(status, sizeof(status), "%d", injected ? opts->error_status : opts->status);
    size_t body_len = build_body(opts, injected, msg, body_buf, body_cap);

    if (opts->delay_ms <= 0) {
        produce_reply(producer, topic_name, partition, correlation, correlation_len, status, *body_buf, body_len);
        return;
    }
    sg_reply_t *reply = xmalloc(sizeof(*reply));
    reply->due_ns = sg_bench_now_ns() + (int64_t)opts->delay_ms * 1000000;
    reply->seq = reply_seq++;
    reply->topic = xmalloc(topic_len + 1);
    memcpy(reply->topic, topic_name, topic_len + 1);
    reply->partition = partition;
    reply->correlation = xmalloc(correlation_len);
    memcpy(reply->correlation, correlation, correlation_len);
    reply->correlation_len = correlation_len;
    memcpy(reply->status, status, sizeof(status));
    reply->body = xmalloc(body_len);
    memcpy(reply->body, *body_buf, body_len);
    reply->body_len = body_len;
    heap_push(heap, reply);
}

/* Produces every queued reply due by `now` (all of them when now is INT64_MAX). */
static void produce_due(rd_kafka_t *producer, sg_reply_heap_t *heap, int64_t now)
{
    while (heap->len > 0 && heap->items[0]->due_ns <= now) {
        sg_reply_t *reply = heap_pop(heap);
        produce_reply(producer, reply->topic, reply->partition, reply->correlation, reply->correlation_len, reply->status,
                      reply->body, reply->body_len);
        reply_destroy(reply);
    }
}

/* --- setup -------------------------------------------------------------------------------- */

static int parse_options(int argc, char **argv, sg_options_t *opts)
{
    *opts = (sg_options_t){.fetch_wait_ms = "1", .group = "sg-responder", .status = 200, .error_status = 500};
    for (int i = 1; i < argc; ++i) {
        const char *arg = argv[i];
        if (strcmp(arg, "--from-end") == 0) {
            opts->from_end = true;
            continue;
        }
        if (strcmp(arg, "--quiet") == 0) {
            opts->quiet = true;
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
            if (opts->n_topics == SG_MAX_TOPICS || value[0] == '\0') {
                sg_bench_log("--topic: at most %d non-empty names", SG_MAX_TOPICS);
                return -1;
            }
            opts->topics[opts->n_topics++] = value;
        } else if (strcmp(arg, "--group") == 0) {
            opts->group = value;
        } else if (strcmp(arg, "--body") == 0) {
            opts->body = value;
        } else if (strcmp(arg, "--delay-ms") == 0) {
            if (!sg_bench_parse_long(value, 0, 3600000, &num)) {
                sg_bench_log("--delay-ms wants 0..3600000, not %s", value);
                return -1;
            }
            opts->delay_ms = (long)num;
        } else if (strcmp(arg, "--status") == 0 || strcmp(arg, "--error-status") == 0) {
            if (!sg_bench_parse_long(value, 100, 999, &num)) {
                sg_bench_log("%s wants an HTTP status 100..999, not %s", arg, value);
                return -1;
            }
            if (strcmp(arg, "--status") == 0)
                opts->status = (int)num;
            else
                opts->error_status = (int)num;
        } else if (strcmp(arg, "--count") == 0) {
            if (!sg_bench_parse_long(value, 1, INT64_MAX, &num)) {
                sg_bench_log("--count wants N > 0, not %s", value);
                return -1;
            }
            opts->count = num;
        } else if (strcmp(arg, "--error-rate") == 0) {
            char *end;
            errno = 0;
            opts->error_rate = strtod(value, &end);
            if (errno != 0 || end == value || *end != '\0' || !(opts->error_rate >= 0 && opts->error_rate <= 1)) {
                sg_bench_log("--error-rate wants 0..1, not %s", value);
                return -1;
            }
        } else {
            sg_bench_log("unknown option %s", arg);
            return -1;
        }
    }
    if (opts->brokers == NULL || opts->n_topics == 0) {
        sg_bench_log("--brokers (or --bootstrap-file) and at least one --topic are required");
        return -1;
    }
    return 0;
}

static rd_kafka_t *create_producer(const sg_options_t *opts)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (sg_bench_set_prop(conf, "bootstrap.servers", opts->brokers) || sg_bench_set_prop(conf, "client.id", "sg-bench-responder") ||
        sg_bench_set_prop(conf, "enable.idempotence", "true") || sg_bench_set_prop(conf, "linger.ms", "0") ||
        sg_bench_set_prop(conf, "queue.buffering.max.messages", "1000000")) {
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

static rd_kafka_t *create_consumer(const sg_options_t *opts)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* fetch.wait.max.ms is how long a broker may hold an empty fetch; small, so that a request
     * is picked up as soon as it lands (the embedded cluster does not answer a waiting fetch
     * early when data arrives). */
    if (sg_bench_set_prop(conf, "bootstrap.servers", opts->brokers) || sg_bench_set_prop(conf, "client.id", "sg-bench-responder") ||
        sg_bench_set_prop(conf, "group.id", opts->group) ||
        sg_bench_set_prop(conf, "auto.offset.reset", opts->from_end ? "latest" : "earliest") ||
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
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(opts->n_topics);
    for (int i = 0; i < opts->n_topics; ++i)
        rd_kafka_topic_partition_list_add(topics, opts->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sg_bench_log("subscribe: %s", rd_kafka_err2str(rerr));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

int main(int argc, char **argv)
{
    sg_bench_set_name("sg-bench-responder");
    sg_options_t opts;
    if (parse_options(argc, argv, &opts) != 0) {
        fputs(usage, stderr);
        return 2;
    }
    rng_state = (uint64_t)sg_bench_now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    if (rng_state == 0)
        rng_state = 1;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    rd_kafka_t *producer = create_producer(&opts);
    if (producer == NULL)
        return 1;
    rd_kafka_t *consumer = create_consumer(&opts);
    if (consumer == NULL) {
        rd_kafka_destroy(producer);
        return 1;
    }
    if (!opts.quiet)
        sg_bench_log("answering %s%s (group %s) via %s: status %d, delay %ld ms, error rate %g", opts.topics[0],
                     opts.n_topics > 1 ? " and more" : "", opts.group, opts.brokers, opts.status, opts.delay_ms, opts.error_rate);

    sg_reply_heap_t heap = {0};
    char *body_buf = NULL;
    size_t body_cap = 0;
    while (!stop_signal && (opts.count == 0 || (long long)stats.replies < opts.count)) {
        int timeout_ms = 100;
        if (heap.len > 0) {
            int64_t wait_ns = heap.items[0]->due_ns - sg_bench_now_ns();
            /* Round up: waking before the due time would only spin. */
            int64_t wait_ms = wait_ns <= 0 ? 0 : (wait_ns + 999999) / 1000000;
            if (wait_ms < timeout_ms)
                timeout_ms = (int)wait_ms;
        }
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, timeout_ms);
        /* Drain what is already there without waiting, then serve the producer once. */
        while (msg != NULL) {
            if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
                handle_request(&opts, producer, &heap, msg, &body_buf, &body_cap);
            else
                sg_bench_log("consume: %s", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            if (stop_signal || (opts.count != 0 && (long long)stats.replies >= opts.count))
                break;
            msg = rd_kafka_consumer_poll(consumer, 0);
        }
        if (heap.len > 0)
            produce_due(producer, &heap, sg_bench_now_ns());
        rd_kafka_poll(producer, 0);
    }

    stats.early = heap.len;
    produce_due(producer, &heap, INT64_MAX);
    free(heap.items);
    free(body_buf);
    /* Flush before leaving the group: it needs only the partition leaders, and the summary
     * should count the acks. */
    rd_kafka_resp_err_t ferr = rd_kafka_flush(producer, SG_FLUSH_MS);
    if (ferr != RD_KAFKA_RESP_ERR_NO_ERROR)
        sg_bench_log("flush: %s (%d message(s) still queued after %d ms)", rd_kafka_err2str(ferr), rd_kafka_outq_len(producer),
                     SG_FLUSH_MS);
    printf("sg-bench-responder: requests %" PRIu64 ", replies %" PRIu64 " (delivered %" PRIu64 ", failed %" PRIu64
           ", sent early at shutdown %" PRIu64 "), skipped %" PRIu64 "\n",
           stats.requests, stats.replies, stats.delivered, stats.failed, stats.early, stats.skipped);
    fflush(stdout);
    exit_status = stats.failed != 0 || ferr != RD_KAFKA_RESP_ERR_NO_ERROR ? 1 : 0;
    /* Leaving the group commits the offsets. librdkafka 2.0 has no bounded consumer close, and
     * with the cluster gone rd_kafka_consumer_close() waits for the coordinator forever: bound it. */
    struct sigaction alarm_sa = {.sa_handler = on_alarm};
    sigemptyset(&alarm_sa.sa_mask);
    sigaction(SIGALRM, &alarm_sa, NULL);
    alarm(SG_CLOSE_S);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_destroy(producer);
    return exit_status;
}
