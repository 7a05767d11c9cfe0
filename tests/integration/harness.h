/*
 * Integration-test harness: runs the real streamgate binary (and `streamgate cluster`) as child
 * processes, talks HTTP/1.1 to it over loopback with a small blocking client, and reads topics
 * back with a separate librdkafka consumer. Everything has a deadline: a hung gateway fails the
 * test instead of hanging the suite.
 */
#ifndef SG_TEST_HARNESS_H
#define SG_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct st_sg_test_proc_t {
    pid_t pid;
    char dir[256]; /* temp dir: config, data_dir, logs */
    char host[64]; /* listening address */
    unsigned port;
    char bootstrap[256]; /* Kafka bootstrap list the gateway uses */
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
 * its bootstrap file. Returns 0 or -1. */
int sg_test_cluster_start(sg_test_proc_t *cluster, const char *const *args);

/** Sends SIGTERM and waits up to 20 s. Returns the exit status, or -1 on a signal or timeout
 * (then the process is killed). Removes the temp dir. */
int sg_test_proc_stop(sg_test_proc_t *proc);

/** One HTTP/1.1 request on a new connection (Connection: close). `headers` is a block of
 * "Name: value\r\n" lines or NULL. Returns 0 and fills res, or -1. 10 s deadline. */
int sg_test_http(const sg_test_proc_t *gw, const char *method, const char *path, const char *headers, const char *body,
                 size_t body_len, sg_test_response_t *res);

/** Sends raw bytes and reads until close; for malformed-protocol tests. */
int sg_test_http_raw(const sg_test_proc_t *gw, const char *raw, size_t raw_len, sg_test_response_t *res);

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
