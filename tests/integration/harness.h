/*
 * Integration-test harness: runs the real streamgate binary (and `streamgate cluster`) as child
 * processes, talks HTTP/1.1 to it over loopback with a small blocking client, and reads topics
 * back with a separate librdkafka consumer. Everything has a deadline: a hung gateway fails the
 * test instead of hanging the suite.
 *
 * The same tests run on two clusters. By default gateways use the embedded mock cluster and
 * sg_test_cluster_start runs `streamgate cluster`. With SG_TEST_KAFKA=DIR (a running
 * tests/kafka/cluster; tests/kafka/with-cluster sets it) they run on real Apache Kafka instead:
 * gateway configs without a broker list get `kafka: {brokers: <bootstrap>, create_topics: true}`,
 * sg_test_cluster_start hands out that cluster (creating the --topic topics through the Admin
 * API), and freezing "the cluster" stops every broker process. Tests that need the mock's knobs
 * call SG_TEST_MOCK_ONLY, which skips them there with the reason. with-cluster gives each test
 * binary a cluster of its own, so topic names need no per-run suffix (as with the mock).
 */
#ifndef SG_TEST_HARNESS_H
#define SG_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct st_sg_test_proc_t {
    pid_t pid;
    char dir[256]; /* temp dir: config, data_dir, logs */
    char host[64]; /* listening address */
    unsigned port;
    char bootstrap[256]; /* Kafka bootstrap list the gateway uses */
    int external;        /* a real cluster (SG_TEST_KAFKA) handed out: pid 0, stop leaves it running */
} sg_test_proc_t;

typedef struct st_sg_test_response_t {
    int status;
    char *headers; /* raw header block, lower-cased names, "name: value\r\n" lines */
    char *body;
    size_t body_len;
} sg_test_response_t;

typedef struct st_sg_test_record_t {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int64_t timestamp_ms;
    int log_append_time; /* timestamp_ms is the broker's LogAppendTime (else the producer's CreateTime) */
    char *header_names[16];
    char *header_values[16];
    size_t header_lens[16];
    size_t n_headers;
} sg_test_record_t;

/** Writes `config_yaml` (with "@DIR@" replaced by the temp dir) and starts the gateway on it.
 * Waits up to 20 s for <data_dir>/listen.addr and /readyz = 200. Returns 0 or -1. */
int sg_test_gateway_start(sg_test_proc_t *gw, const char *config_yaml);

/** As sg_test_gateway_start, but returns once the addresses are written, without waiting for
 * /readyz (for gateways that are not meant to become ready, or that speak only TLS). */
int sg_test_gateway_start_unready(sg_test_proc_t *gw, const char *config_yaml);

/** As sg_test_gateway_start, with @DIR@/data a symbolic link to data_dir (an existing directory,
 * e.g. on a small tmpfs), so the config's `data_dir: @DIR@/data` lives there. */
int sg_test_gateway_start_with_data(sg_test_proc_t *gw, const char *config_yaml, const char *data_dir);

/** Stops the gateway (SIGTERM, expecting exit 0) and starts it again on the same config and
 * data_dir. Returns 0 or -1. */
int sg_test_gateway_restart(sg_test_proc_t *gw);

/** Starts `streamgate cluster` with the given extra arguments (NULL-terminated) and waits for
 * its bootstrap file. On real Kafka: fills in the real cluster's bootstrap (external = 1) and
 * creates each `--topic NAME:PARTITIONS` with the broker's default replication; `--brokers` is
 * the real cluster's business, and the mock-only placement knobs (--leader, --follower, --rtt)
 * are an error. Returns 0 or -1. */
int sg_test_cluster_start(sg_test_proc_t *cluster, const char *const *args);

/** Freezes every broker of the cluster (SIGSTOP, waiting until all their threads are stopped):
 * the `streamgate cluster` process, or every node of the real cluster. Returns 0 or -1. */
int sg_test_cluster_freeze(const sg_test_proc_t *cluster);

/** Lets a frozen cluster go on (SIGCONT). Returns 0 or -1. */
int sg_test_cluster_thaw(const sg_test_proc_t *cluster);

/* --- real Kafka ------------------------------------------------------------------------------ */

/** The bootstrap list of the real cluster named by SG_TEST_KAFKA, or NULL when the tests run on
 * the embedded mock cluster. */
const char *sg_test_real_kafka(void);

/** Skips the calling test (cmocka's skip) on real Kafka, saying why it needs the mock. */
#define SG_TEST_MOCK_ONLY(why)                                                                                                     \
    do {                                                                                                                           \
        if (sg_test_real_kafka() != NULL) {                                                                                        \
            fprintf(stderr, "skipped on real Kafka (mock cluster only): %s\n", why);                                               \
            skip();                                                                                                                \
        }                                                                                                                          \
    } while (0)

/** Skips the calling test on the mock cluster, saying what it needs of real Kafka. */
#define SG_TEST_REAL_ONLY(why)                                                                                                     \
    do {                                                                                                                           \
        if (sg_test_real_kafka() == NULL) {                                                                                        \
            fprintf(stderr, "skipped on the mock cluster (real Kafka only): %s\n", why);                                           \
            skip();                                                                                                                \
        }                                                                                                                          \
    } while (0)

/** Creates a topic through the Admin API (replication -1: the broker's default; `configs`: NULL or
 * NULL-terminated name, value pairs) and waits until every partition has a leader. An existing
 * topic is fine. Returns 0 or -1. */
int sg_test_create_topic(const char *bootstrap, const char *topic, int partitions, int replication, const char *const *configs);

/** The value of one config of a topic as the broker describes it (DescribeConfigs), into out.
 * Returns 0, or -1 when the broker did not answer in time or has no such config. */
int sg_test_topic_config(const char *bootstrap, const char *topic, const char *name, char *out, size_t outlen);

/** Sends SIGTERM and waits up to 20 s. Returns the exit status, or -1 on a signal or timeout
 * (then the process is killed). Removes the temp dir. */
int sg_test_proc_stop(sg_test_proc_t *proc);

/** Whether the process's log (<dir>/log) has a line containing text, waiting up to timeout_ms
 * (0: as it is now) for one to appear. Returns 1 or 0, or -1 when there is no log to read. */
int sg_test_log_has(const sg_test_proc_t *proc, const char *text, int timeout_ms);

/** A suite's teardown: stops each process given (NULL-terminated) in order, like sg_test_proc_stop;
 * one that was never started (or is stopped already) is passed over. Returns 0 when every one
 * exited 0 (a clean SIGTERM shutdown is part of what the suites check), else -1. */
int sg_test_stop_procs(sg_test_proc_t *first, ...);

/** One HTTP/1.1 request on a new connection (Connection: close). `headers` is a block of
 * "Name: value\r\n" lines or NULL. Returns 0 and fills res, or -1. 10 s deadline. */
int sg_test_http(const sg_test_proc_t *gw, const char *method, const char *path, const char *headers, const char *body,
                 size_t body_len, sg_test_response_t *res);

/** sg_test_http with method `method` and a JSON body (NUL-terminated): "Content-Type:
 * application/json" plus `headers` (more "Name: value\r\n" lines, or NULL). */
int sg_test_send_json(const sg_test_proc_t *gw, const char *method, const char *path, const char *headers, const char *body,
                      sg_test_response_t *res);

/** sg_test_send_json with POST. */
int sg_test_post_json(const sg_test_proc_t *gw, const char *path, const char *headers, const char *body, sg_test_response_t *res);

/** Asserts (cmocka) that res is an RFC 9457 problem: HTTP status and the body's "status" equal
 * `status`, Content-Type application/problem+json, "type" urn:streamgate:problem:<type>, a
 * "title" and a "detail" of more than 5 characters, and when `field` is not NULL, "field" equal to
 * it. Failures name the caller's line and print the response. */
#define sg_test_assert_problem(res, status, type, field)                                                                           \
    sg_test_assert_problem_at((res), (status), (type), (field), __FILE__, __LINE__)
void sg_test_assert_problem_at(const sg_test_response_t *res, int status, const char *type, const char *field, const char *file,
                               int line);

/** Monotonic clock (CLOCK_MONOTONIC) in milliseconds. */
int64_t sg_test_now_ms(void);

/** Sleeps ms milliseconds. */
void sg_test_sleep_ms(int ms);

/** Runs h2load: `requests` POSTs of the JSON `body` to `path` on gw, with the extra h2load
 * `options` (NULL-terminated: "--h1", "-c", "16", ...). Asserts (cmocka) that every request
 * succeeded with a 2xx, printing h2load's output otherwise. */
#define sg_test_h2load(gw, path, body, requests, options)                                                                          \
    sg_test_h2load_at((gw), (path), (body), (requests), (options), __FILE__, __LINE__)
void sg_test_h2load_at(const sg_test_proc_t *gw, const char *path, const char *body, int requests, const char *const *options,
                       const char *file, int line);

/** Sends raw bytes and reads until close; for malformed-protocol tests. */
int sg_test_http_raw(const sg_test_proc_t *gw, const char *raw, size_t raw_len, sg_test_response_t *res);

/** Polls GET `location` (a /requests/{id} path; long-polls of 5 s) until its state is "done",
 * within timeout_ms. Returns the status document's text (owned; free()) or NULL. */
char *sg_test_poll_done(const sg_test_proc_t *gw, const char *location, int timeout_ms);

/** Value of a response header (name lower-case), copied into buf; NULL when absent. */
const char *sg_test_header(const sg_test_response_t *res, const char *name, char *buf, size_t buflen);

void sg_test_response_free(sg_test_response_t *res);

/** Reads the record at topic/partition/offset with a fresh consumer (10 s deadline). */
int sg_test_consume(const char *bootstrap, const char *topic, int32_t partition, int64_t offset, sg_test_record_t *rec);

/** Record header value by name, NUL-terminated copy in buf; NULL when absent. */
const char *sg_test_record_header(const sg_test_record_t *rec, const char *name, char *buf, size_t buflen);

void sg_test_record_free(sg_test_record_t *rec);

/** Sum of the high watermarks of every partition of `topic` (number of records produced). */
int64_t sg_test_topic_count(const char *bootstrap, const char *topic);

/** Runs the binary with args (NULL-terminated), capturing stdout+stderr into out. Returns the
 * exit status or -1. */
int sg_test_run(const char *const *args, char *out, size_t outlen);

/** Writes `text` (with "@DIR@" replaced by the directory) to NAME in a new temp directory.
 * Returns the file's path (owned; release with sg_test_remove_temp) or NULL. */
char *sg_test_write_temp(const char *name, const char *text);

/** Removes the temp directory holding `path` and frees `path`. */
void sg_test_remove_temp(char *path);

/** SIGSTOPs a process and waits (up to 5 s) until every one of its threads is stopped, so the
 * caller knows it cannot answer anything any more. Returns 0 or -1. */
int sg_test_freeze(pid_t pid);

/** A worker on a thread of the test process (librdkafka consumer + producer) that answers
 * requests on `request_topic` (partitions 0..partitions-1, from the beginning) by the header
 * contract: to kafka_replyTopic, and to kafka_replyPartition when present. Each request's JSON body says how: {"status": "201",
 * "delay_ms": N, "body": <json>, "content_type": "...", "header": [name, value],
 * "no_reply": true, "forge": "text overwriting the start of the correlation id", "body_hex": "00..."
 * (raw reply bytes instead of body)}. It always
 * adds an "x-secret" header (a route must not copy it unless allowed). */
typedef struct st_sg_test_worker_t sg_test_worker_t;
sg_test_worker_t *sg_test_worker_start(const char *bootstrap, const char *request_topic, int partitions);
/* (sg_test_worker_start returns once the worker's consumer is assigned from the partitions'
 * start offsets, or after 40 s.) */
/** As sg_test_worker_start, with other header names for the correlation id (read, and written
 * back on the reply) and the reply topic (a route's reply.correlation_header and
 * reply.reply_topic_header). */
sg_test_worker_t *sg_test_worker_start_named(const char *bootstrap, const char *request_topic, int partitions,
                                             const char *correlation_header, const char *reply_topic_header);
void sg_test_worker_stop(sg_test_worker_t *worker);
/** Monotonic ms (CLOCK_MONOTONIC) when the worker last produced a reply. */
int64_t sg_test_worker_last_reply_ms(const sg_test_worker_t *worker);

/** Path of the streamgate binary under test. */
const char *sg_test_binary(void);

/** Kills the process with SIGKILL (no shutdown of any kind) and reaps it; its temp dir stays.
 * Returns 0 when it died of SIGKILL, -1 otherwise (it had already exited, or no process). */
int sg_test_proc_kill9(sg_test_proc_t *proc);

/** Starts a gateway again on its own config and data_dir after it exited or was killed (see
 * sg_test_proc_kill9, sg_test_proc_terminate); waits for /readyz = 200 only when wait_ready.
 * Returns 0 or -1. */
int sg_test_gateway_rerun(sg_test_proc_t *gw, int wait_ready);

/** Sends SIGTERM and waits up to 20 s like sg_test_proc_stop, but keeps the temp dir (its data
 * can then be inspected; sg_test_proc_stop removes it later). Returns the exit status, or -1. */
int sg_test_proc_terminate(sg_test_proc_t *proc);

#endif
