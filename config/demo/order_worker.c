/*
 * sg-demo-worker: the worker behind the demo's request-reply route (POST /orders). It is sample
 * code for worker authors: one file, librdkafka and jansson, nothing of streamgate linked in.
 *
 * It consumes orders.commands in a consumer group (start more copies to share the partitions),
 * prices each order from a small catalogue and replies by the header contract (README, "Writing a
 * worker"): the reply goes to the topic named by the request's kafka_replyTopic header (and the
 * partition in kafka_replyPartition, when present) with the same kafka_correlationId bytes, a
 * :status header and a content-type. The gateway answers the waiting HTTP request with it.
 *
 *   request  {"customerId": "c-1", "items": [{"sku": "book", "qty": 2}], "delayMs": 0}
 *   reply    201 {"orderId": "ord-3-0", "customerId": "c-1", "status": "confirmed", "currency": "EUR",
 *                 "lines": [{"sku": "book", "qty": 2, "unitPrice": "12.50", "amount": "25.00"}],
 *                 "total": "25.00"}
 *            422 application/problem+json with "field" (a JSON pointer) for an order it refuses
 *
 * "delayMs" (0..30000) makes the worker answer that late, so the demo can show a reply that
 * misses the route's timeout: the client gets a 202 + Location, then the outcome on the status
 * resource. Delayed replies wait in a list ordered by due time; the poll loop never sleeps past
 * the first one, so a slow order never holds up the others. Amounts are integer cents, printed
 * as decimal strings (no binary floating point for money).
 *
 * The consumer's fetch.wait.max.ms is 10 ms: the embedded (mock) cluster holds an idle fetch for
 * the whole wait even when a record arrives, so a larger value would delay every answer.
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

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#define HDR_CORRELATION "kafka_correlationId"
#define HDR_REPLY_TOPIC "kafka_replyTopic"
#define HDR_REPLY_PARTITION "kafka_replyPartition"
#define MAX_TOPIC_NAME 249 /* Kafka's own limit */
#define MAX_LINES 20
#define MAX_QTY 99
#define MAX_DELAY_MS 30000
#define MAX_WAITING 10000 /* delayed replies held at once; beyond it an order is answered at once */
#define FLUSH_MS 5000
#define CLOSE_S 5

static const char usage[] = "usage: sg-demo-worker (--bootstrap-file PATH | --brokers LIST) [--topic NAME] [--group ID]\n"
                            "\n"
                            "  --bootstrap-file PATH  read the bootstrap servers from PATH (the gateway writes\n"
                            "                         <data_dir>/kafka.bootstrap when it runs the embedded cluster)\n"
                            "  --brokers LIST         bootstrap servers, host:port,...\n"
                            "  --topic NAME           request topic (default orders.commands)\n"
                            "  --group ID             consumer group (default demo-order-worker)\n"
                            "\n"
                            "Prints \"ready\" once it has its partitions; SIGINT/SIGTERM stop it.\n";

/* The catalogue: what the demo shop sells, in cents. */
static const struct {
    const char *sku;
    long long cents;
} catalogue[] = {{"book", 1250}, {"pen", 120}, {"mug", 800}, {"tea", 475}};

/* A reply to produce at due_ms; owns its buffers. */
typedef struct st_reply_t {
    struct st_reply_t *next;
    int64_t due_ms;
    char topic[MAX_TOPIC_NAME + 1];
    int32_t partition;
    void *key, *correlation;
    size_t key_len, correlation_len;
    int status;
    char *body;
} reply_t;

static volatile sig_atomic_t stop_signal;
static reply_t *waiting; /* ordered by due_ms, earliest first */
static size_t n_waiting;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void on_alarm(int sig)
{
    _exit(1);
}

static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sg-demo-worker: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *memdup(const void *src, size_t len)
{
    void *copy = malloc(len != 0 ? len : 1);
    if (copy == NULL)
        abort();
    if (len != 0)
        memcpy(copy, src, len);
    return copy;
}

/* --- the business logic: an order in, a confirmation or a problem out ---------------------- */

/* "1250" cents -> "12.50" */
static json_t *money(long long cents)
{
    char text[32];
    snprintf(text, sizeof(text), "%lld.%02lld", cents / 100, cents % 100);
    return json_string(text);
}

/* An RFC 9457 problem naming the offending field by JSON pointer, as the gateway's own are. */
static json_t *problem(const char *field, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "urn:demo:problem:invalid-order", "title", "Invalid order", "status", 422,
                     "detail", detail, "field", field);
}

static long long price_of(const char *sku)
{
    for (size_t i = 0; i < sizeof(catalogue) / sizeof(catalogue[0]); ++i)
        if (strcmp(catalogue[i].sku, sku) == 0)
            return catalogue[i].cents;
    return -1;
}

/* Prices one order. Returns the reply document (owned) and sets *status (201 or 422) and
 * *delay_ms. The order id is the request's position in the topic: unique, and stable if the
 * request is ever processed again. */
static json_t *handle_order(const char *value, size_t len, int32_t partition, int64_t offset, int *status, int64_t *delay_ms)
{
    *status = 422;
    *delay_ms = 0;
    json_error_t jerr;
    json_t *order = json_loadb(value != NULL ? value : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(order)) {
        json_decref(order);
        return problem("", "the order is not a JSON object");
    }
    json_t *result = NULL, *lines = json_array();
    json_t *delay = json_object_get(order, "delayMs");
    if (delay != NULL) {
        if (!json_is_integer(delay) || json_integer_value(delay) < 0 || json_integer_value(delay) > MAX_DELAY_MS) {
            result = problem("/delayMs", "expected an integer from 0 to %d", MAX_DELAY_MS);
            goto done;
        }
        *delay_ms = json_integer_value(delay);
    }
    const char *customer = json_string_value(json_object_get(order, "customerId"));
    if (customer == NULL || customer[0] == '\0') {
        result = problem("/customerId", "expected a non-empty string");
        goto done;
    }
    json_t *items = json_object_get(order, "items");
    if (!json_is_array(items) || json_array_size(items) == 0 || json_array_size(items) > MAX_LINES) {
        result = problem("/items", "expected an array of 1 to %d lines", MAX_LINES);
        goto done;
    }
    long long total = 0;
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        char field[64];
        const char *sku = json_string_value(json_object_get(item, "sku"));
        long long cents = sku != NULL ? price_of(sku) : -1;
        if (cents < 0) {
            snprintf(field, sizeof(field), "/items/%zu/sku", i);
            result = problem(field, "not in the catalogue (book, pen, mug, tea)");
            goto done;
        }
        json_t *qty = json_object_get(item, "qty");
        if (!json_is_integer(qty) || json_integer_value(qty) < 1 || json_integer_value(qty) > MAX_QTY) {
            snprintf(field, sizeof(field), "/items/%zu/qty", i);
            result = problem(field, "expected an integer from 1 to %d", MAX_QTY);
            goto done;
        }
        long long amount = cents * json_integer_value(qty);
        total += amount;
        json_array_append_new(lines, json_pack("{s:s, s:I, s:o, s:o}", "sku", sku, "qty", (json_int_t)json_integer_value(qty),
                                               "unitPrice", money(cents), "amount", money(amount)));
    }
    char order_id[48];
    snprintf(order_id, sizeof(order_id), "ord-%" PRId32 "-%" PRId64, partition, offset);
    *status = 201;
    result = json_pack("{s:s, s:s, s:s, s:s, s:O, s:o}", "orderId", order_id, "customerId", customer, "status", "confirmed",
                       "currency", "EUR", "lines", lines, "total", money(total));
done:
    json_decref(lines);
    json_decref(order);
    return result;
}

/* --- replying ------------------------------------------------------------------------------ */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        note("reply to %s not delivered: %s", rd_kafka_topic_name(msg->rkt), rd_kafka_err2str(msg->err));
}

static void produce_reply(rd_kafka_t *producer, const reply_t *reply)
{
    char status[8];
    snprintf(status, sizeof(status), "%d", reply->status);
    const char *content_type = reply->status < 400 ? "application/json" : "application/problem+json";
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC(reply->topic), RD_KAFKA_V_PARTITION(reply->partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(reply->key, reply->key_len),
            RD_KAFKA_V_VALUE(reply->body, strlen(reply->body)),
            RD_KAFKA_V_HEADER(HDR_CORRELATION, reply->correlation, (ssize_t)reply->correlation_len),
            RD_KAFKA_V_HEADER(":status", status, -1), RD_KAFKA_V_HEADER("content-type", content_type, -1), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
                note("reply to %s refused: %s", reply->topic, rd_kafka_err2str(err));
            return;
        }
        rd_kafka_poll(producer, 10); /* the queue drains as the broker acknowledges */
    }
}

static void reply_destroy(reply_t *reply)
{
    free(reply->key);
    free(reply->correlation);
    free(reply->body);
    free(reply);
}

/* Queues the reply by due time (after others due at the same time), or produces it now. */
static void schedule(rd_kafka_t *producer, reply_t *reply)
{
    if (reply->due_ms <= now_ms() || n_waiting >= MAX_WAITING) {
        produce_reply(producer, reply);
        reply_destroy(reply);
        return;
    }
    reply_t **at = &waiting;
    while (*at != NULL && (*at)->due_ms <= reply->due_ms)
        at = &(*at)->next;
    reply->next = *at;
    *at = reply;
    ++n_waiting;
}

/* Produces every waiting reply due by `now` (all of them when now is INT64_MAX). */
static void produce_due(rd_kafka_t *producer, int64_t now)
{
    while (waiting != NULL && waiting->due_ms <= now) {
        reply_t *reply = waiting;
        waiting = reply->next;
        --n_waiting;
        produce_reply(producer, reply);
        reply_destroy(reply);
    }
}

/* One request record: read the contract headers, price the order, schedule the reply. A record
 * without the headers was not sent by a gateway waiting for an answer: skipped. */
static void handle_request(rd_kafka_t *producer, const rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *headers;
    const void *correlation, *topic, *partition_bytes;
    size_t correlation_len, topic_len, partition_len;
    if (rd_kafka_message_headers(msg, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(headers, HDR_CORRELATION, &correlation, &correlation_len) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        correlation == NULL ||
        rd_kafka_header_get_last(headers, HDR_REPLY_TOPIC, &topic, &topic_len) != RD_KAFKA_RESP_ERR_NO_ERROR || topic == NULL ||
        topic_len == 0 || topic_len > MAX_TOPIC_NAME) {
        note("skipped %s [%" PRId32 "] @%" PRId64 ": no %s or %s header", rd_kafka_topic_name(msg->rkt), msg->partition,
             msg->offset, HDR_CORRELATION, HDR_REPLY_TOPIC);
        return;
    }
    reply_t *reply = calloc(1, sizeof(*reply));
    if (reply == NULL)
        abort();
    memcpy(reply->topic, topic, topic_len);
    reply->partition = RD_KAFKA_PARTITION_UA; /* the reply topic's partitioner chooses */
    if (rd_kafka_header_get_last(headers, HDR_REPLY_PARTITION, &partition_bytes, &partition_len) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        partition_bytes != NULL && partition_len == 4) {
        const unsigned char *b = partition_bytes; /* 4-byte big-endian int */
        reply->partition = (int32_t)(((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3]);
    }
    reply->correlation = memdup(correlation, correlation_len);
    reply->correlation_len = correlation_len;
    reply->key = memdup(msg->key, msg->key_len);
    reply->key_len = msg->key_len;

    int64_t delay_ms;
    json_t *doc = handle_order(msg->payload, msg->len, msg->partition, msg->offset, &reply->status, &delay_ms);
    reply->body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (reply->body == NULL)
        abort();
    reply->due_ms = now_ms() + delay_ms;
    note("order %s [%" PRId32 "] @%" PRId64 ": %d%s", rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset, reply->status,
         delay_ms > 0 ? " (answered late, as asked)" : "");
    schedule(producer, reply);
}

/* --- setup --------------------------------------------------------------------------------- */

static int set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char err[256];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) == RD_KAFKA_CONF_OK)
        return 0;
    note("%s: %s", name, err);
    return -1;
}

/* Logs the partitions this copy answers for; "ready" tells scripts it now consumes. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, partitions);
        note("ready: %d partition(s) assigned", partitions->cnt);
    } else {
        rd_kafka_assign(rk, NULL);
        note("partitions revoked");
    }
}

static rd_kafka_t *create_client(rd_kafka_type_t type, const char *brokers, const char *group)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = set(conf, "bootstrap.servers", brokers) || set(conf, "client.id", "sg-demo-worker");
    if (type == RD_KAFKA_PRODUCER) {
        rc = rc || set(conf, "enable.idempotence", "true") || set(conf, "linger.ms", "0");
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    } else {
        rc = rc || set(conf, "group.id", group) || set(conf, "auto.offset.reset", "earliest") ||
             set(conf, "fetch.wait.max.ms", "10") || set(conf, "enable.partition.eof", "false");
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    }
    if (rc != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (rk == NULL) {
        note("%s", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* The first line of path, without its newline, or NULL (logged). Returns owned. */
static char *read_first_line(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        note("%s: %s", path, strerror(errno));
        return NULL;
    }
    char line[4096];
    char *got = fgets(line, sizeof(line), f);
    fclose(f);
    if (got == NULL || line[0] == '\n') {
        note("%s: empty", path);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return memdup(line, strlen(line) + 1);
}

int main(int argc, char **argv)
{
    const char *topic = "orders.commands", *group = "demo-order-worker";
    char *brokers = NULL;
    for (int i = 1; i < argc; ++i) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (value == NULL) {
            note("%s: unknown option, or missing its value", arg);
            fputs(usage, stderr);
            return 2;
        }
        ++i;
        if (strcmp(arg, "--bootstrap-file") == 0) {
            free(brokers);
            if ((brokers = read_first_line(value)) == NULL)
                return 1;
        } else if (strcmp(arg, "--brokers") == 0) {
            free(brokers);
            brokers = memdup(value, strlen(value) + 1);
        } else if (strcmp(arg, "--topic") == 0) {
            topic = value;
        } else if (strcmp(arg, "--group") == 0) {
            group = value;
        } else {
            note("%s: unknown option", arg);
            fputs(usage, stderr);
            return 2;
        }
    }
    if (brokers == NULL) {
        fputs(usage, stderr);
        return 2;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    rd_kafka_t *producer = create_client(RD_KAFKA_PRODUCER, brokers, NULL);
    rd_kafka_t *consumer = producer != NULL ? create_client(RD_KAFKA_CONSUMER, brokers, group) : NULL;
    if (consumer == NULL) {
        rd_kafka_destroy(producer);
        free(brokers);
        return 1;
    }
    rd_kafka_poll_set_consumer(consumer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        note("subscribe to %s: %s", topic, rd_kafka_err2str(err));
        rd_kafka_destroy(consumer);
        rd_kafka_destroy(producer);
        free(brokers);
        return 1;
    }
    note("answering %s (group %s) via %s", topic, group, brokers);

    while (!stop_signal) {
        int timeout_ms = 100;
        if (waiting != NULL) {
            int64_t until_due = waiting->due_ms - now_ms();
            timeout_ms = until_due <= 0 ? 0 : until_due < timeout_ms ? (int)until_due : timeout_ms;
        }
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, timeout_ms);
        if (msg != NULL) {
            if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
                handle_request(producer, msg);
            else
                note("consume: %s", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
        }
        produce_due(producer, now_ms());
        rd_kafka_poll(producer, 0); /* delivery reports */
    }

    /* Stopping: answer the late orders now rather than never (their offsets may be committed). */
    produce_due(producer, INT64_MAX);
    if (rd_kafka_flush(producer, FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
        note("%d reply(ies) not acknowledged after %d ms", rd_kafka_outq_len(producer), FLUSH_MS);
    /* Leaving the group commits the offsets; with the cluster gone it would wait forever. */
    struct sigaction alarm_sa = {.sa_handler = on_alarm};
    sigemptyset(&alarm_sa.sa_mask);
    sigaction(SIGALRM, &alarm_sa, NULL);
    alarm(CLOSE_S);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_destroy(producer);
    free(brokers);
    note("stopped");
    return 0;
}
