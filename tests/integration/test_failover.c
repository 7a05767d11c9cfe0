/*
 * Failure tests on a real three-node Apache Kafka cluster (replication 3, min.insync.replicas=2;
 * `meson test --suite real-kafka-failover`, under tests/kafka/with-cluster --nodes 3): a leader
 * killed under load, the loss of a majority, gateway crash cycles, request-reply across a leader
 * failover, and the Idempotency-Key of a produce whose outcome is unknown.
 *
 * The invariants are asserted strictly (no acknowledged event lost, no outcome lost or crossed,
 * one event per key); timings are printed as figures and asserted only where the contract names
 * a bound (an answer within kafka.produce_timeout + 1 s), since the machine these run on is
 * shared and slow. Every wait is bounded.
 *
 * The load uses keep-alive connections of its own (a small blocking HTTP/1.1 client, one per
 * thread), as a client pool would, so 64 connections are 64 sockets for the whole run.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "harness.h"

#define PRODUCE_TIMEOUT_MS 5000
#define ANSWER_BOUND_MS (PRODUCE_TIMEOUT_MS + 1000)

static sg_test_proc_t cluster;

static int setup(void **state)
{
    if (sg_test_real_kafka() == NULL)
        return 0; /* every test skips itself */
    const char *args[] = {"--topic", "fo.load:3",   "--topic", "fc.rows:3",   "--topic", "rr.requests:3", "--topic", "rr.replies:3",
                          "--topic", "uk.events:2", "--topic", "ml.events:3", NULL};
    return sg_test_cluster_start(&cluster, args);
}

static int teardown(void **state)
{
    return sg_test_real_kafka() == NULL ? 0 : sg_test_stop_procs(&cluster, NULL);
}

/* --- the cluster's nodes ---------------------------------------------------------------------- */

/* Runs `tests/kafka/cluster VERB DIR ID` (its output to stderr); returns its exit status, or -1.
 * Not sg_test_run: restarting a node's JVM on a loaded machine can take longer than its 20 s
 * deadline. The script bounds its own waits (SG_KAFKA_UP_TIMEOUT); this bounds it at 300 s. */
static int node_cmd(const char *verb, int id)
{
    char script[512], idtext[16];
    snprintf(script, sizeof(script), "%s/tests/kafka/cluster", getenv("SG_SOURCE_ROOT"));
    snprintf(idtext, sizeof(idtext), "%d", id);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(2, 1);
        execl(script, script, verb, getenv("SG_TEST_KAFKA"), idtext, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    pid_t done = 0;
    for (int64_t deadline = sg_test_now_ms() + 300000; pid > 0 && (done = waitpid(pid, &status, WNOHANG)) == 0;) {
        if (sg_test_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        sg_test_sleep_ms(50);
    }
    int rc = done == pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (rc != 0)
        fprintf(stderr, "cluster %s %d: exit %d\n", verb, id, rc);
    return rc;
}

/* The node ids of the cluster (from SG_TEST_KAFKA/nodes). */
static int node_ids(int *ids, int max)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/nodes", getenv("SG_TEST_KAFKA"));
    FILE *fp = fopen(path, "r");
    int n = 0, id, pid, port;
    while (fp != NULL && n < max && fscanf(fp, "%d %d %d", &id, &pid, &port) == 3)
        ids[n++] = id;
    if (fp != NULL)
        fclose(fp);
    return n;
}

static rd_kafka_t *admin_client(void)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", cluster.bootstrap, err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(rk);
    return rk;
}

/* The leader of topic/partition and its ISR size (-1 when the metadata does not say). */
static int leader_of(const char *topic, int32_t partition, int *isr)
{
    rd_kafka_t *rk = admin_client();
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int leader = -1;
    *isr = 0;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1)
        for (int p = 0; p < md->topics[0].partition_cnt; ++p)
            if (md->topics[0].partitions[p].id == partition && md->topics[0].partitions[p].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                leader = md->topics[0].partitions[p].leader;
                *isr = md->topics[0].partitions[p].isr_cnt;
            }
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return leader;
}

/* Waits (bounded) until every partition of the topics has a leader and all three replicas in
 * sync, so that each test starts on a whole cluster. Returns the ms it took. */
static int64_t wait_healthy(const char *const *topics)
{
    int64_t start = sg_test_now_ms();
    for (;;) {
        int healthy = 1;
        for (size_t t = 0; topics[t] != NULL && healthy; ++t)
            for (int32_t p = 0; p < 3 && healthy; ++p) {
                int isr;
                healthy = leader_of(topics[t], p, &isr) >= 0 && isr >= 3;
            }
        if (healthy)
            return sg_test_now_ms() - start;
        if (sg_test_now_ms() - start > 120000)
            fail_msg("the cluster did not get every replica back in sync within 120 s");
        sg_test_sleep_ms(500);
    }
}

/* --- a keep-alive HTTP/1.1 client --------------------------------------------------------------- */

typedef struct {
    int fd;
    const sg_test_proc_t *gw;
} conn_t;

typedef struct {
    int status;
    char headers[4096]; /* raw, as received */
    char body[4096];
} answer_t;

static int conn_open(conn_t *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->gw->port)};
    inet_pton(AF_INET, c->gw->host, &addr.sin_addr);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

static void conn_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Value of header `name` (lower-case) in a raw header block, copied into buf; NULL when absent. */
static const char *header_of(const char *headers, const char *name, char *buf, size_t buflen)
{
    size_t len = strlen(name);
    for (const char *line = headers; line != NULL && *line != '\0';) {
        if (strncasecmp(line, name, len) == 0 && line[len] == ':') {
            const char *value = line + len + 1;
            while (*value == ' ')
                ++value;
            size_t n = strcspn(value, "\r\n");
            snprintf(buf, buflen, "%.*s", (int)n, value);
            return buf;
        }
        line = strstr(line, "\r\n");
        if (line != NULL)
            line += 2;
    }
    return NULL;
}

/* One request on the connection (opened if needed), answered within timeout_ms. Returns 0 and
 * fills ans, or -1 (no answer: the connection is closed). */
static int conn_request(conn_t *c, const char *method, const char *path, const char *extra, const char *body, int timeout_ms,
                        answer_t *ans)
{
    if (c->fd < 0 && conn_open(c) != 0)
        return -1;
    char req[8192];
    int len = snprintf(req, sizeof(req),
                       "%s %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s", method,
                       path, extra != NULL ? extra : "", body != NULL ? strlen(body) : 0, body != NULL ? body : "");
    for (int sent = 0; sent < len;) {
        ssize_t n = send(c->fd, req + sent, (size_t)(len - sent), MSG_NOSIGNAL);
        if (n <= 0) {
            conn_close(c);
            return -1;
        }
        sent += (int)n;
    }
    char buf[16384];
    size_t have = 0;
    int64_t deadline = sg_test_now_ms() + timeout_ms;
    for (;;) {
        char *end = have > 0 ? strstr(buf, "\r\n\r\n") : NULL;
        if (end != NULL) {
            size_t head = (size_t)(end + 4 - buf);
            char value[32];
            *end = '\0';
            size_t body_len = header_of(buf, "content-length", value, sizeof(value)) ? strtoul(value, NULL, 10) : 0;
            *end = '\r';
            if (have >= head + body_len) {
                ans->status = atoi(buf + 9);
                snprintf(ans->headers, sizeof(ans->headers), "%.*s", (int)head, buf);
                snprintf(ans->body, sizeof(ans->body), "%.*s", (int)body_len, buf + head);
                if (have > head + body_len) /* nothing is pipelined: more is a protocol error */
                    conn_close(c);
                return 0;
            }
        }
        int64_t left = deadline - sg_test_now_ms();
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (left <= 0 || have + 1 >= sizeof(buf) || poll(&pfd, 1, (int)left) <= 0) {
            conn_close(c);
            return -1;
        }
        ssize_t n = recv(c->fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0) {
            conn_close(c);
            return -1;
        }
        have += (size_t)n;
        buf[have] = '\0';
    }
}

/* --- reading a topic back ------------------------------------------------------------------------ */

typedef struct {
    char *key;
    char *value;
} kv_t;

typedef struct {
    kv_t *records[8]; /* per partition, indexed by offset (from 0) */
    int64_t n[8];     /* high watermark per partition */
    int partitions;
} topic_dump_t;

/* Reads every record of the topic (partitions 0..partitions-1, up to the high watermarks). */
static void dump_topic(const char *topic, int partitions, topic_dump_t *dump)
{
    memset(dump, 0, sizeof(*dump));
    dump->partitions = partitions;
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", cluster.bootstrap, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "sg-test-dump", err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    int open = 0;
    for (int p = 0; p < partitions; ++p) {
        int64_t low = 0, high = 0;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        dump->n[p] = high;
        dump->records[p] = calloc((size_t)high + 1, sizeof(kv_t));
        if (high > 0) {
            rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
            ++open;
        }
    }
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    int done[8] = {0};
    int64_t deadline = sg_test_now_ms() + 60000;
    while (open > 0 && sg_test_now_ms() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 200);
        if (msg == NULL)
            continue;
        int p = msg->partition;
        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR && p >= 0 && p < partitions && msg->offset < dump->n[p]) {
            kv_t *kv = &dump->records[p][msg->offset];
            kv->key = msg->key ? strndup(msg->key, msg->key_len) : NULL;
            kv->value = msg->payload ? strndup(msg->payload, msg->len) : NULL;
        }
        if (p >= 0 && p < partitions && !done[p] &&
            ((msg->err == RD_KAFKA_RESP_ERR_NO_ERROR && msg->offset + 1 >= dump->n[p]) ||
             msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)) {
            done[p] = 1;
            --open;
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (open > 0)
        fail_msg("%s: %d partition(s) not read to their end within 60 s", topic, open);
}

static void dump_free(topic_dump_t *dump)
{
    for (int p = 0; p < dump->partitions; ++p) {
        for (int64_t o = 0; o < dump->n[p]; ++o) {
            free(dump->records[p][o].key);
            free(dump->records[p][o].value);
        }
        free(dump->records[p]);
    }
}

static const kv_t *dump_at(const topic_dump_t *dump, int partition, int64_t offset)
{
    if (partition < 0 || partition >= dump->partitions || offset < 0 || offset >= dump->n[partition])
        return NULL;
    return &dump->records[partition][offset];
}

/* --- the load: threads POSTing on keep-alive connections until a deadline ------------------------- */

typedef struct {
    int64_t sent_ms, answered_ms; /* answered_ms 0: no answer */
    int status;
    int partition;
    int64_t offset;
    char key[32];
    char body[96];
    char location[96];
    int replayed;
} outcome_t;

typedef struct {
    const sg_test_proc_t *gw;
    const char *method;
    const char *path_prefix; /* followed by the key when key_in_path */
    int key_in_path;
    int thread;
    int64_t until_ms;
    int keys; /* > 0: keys k0..k{keys-1} (upserts); 0: a new key per request */
    int cycle;
    int reply; /* the body asks the test worker to echo a nonce */
    int stop_on_error;
    outcome_t *outcomes;
    size_t n, cap;
} loader_t;

static void parse_position(const char *body, int *partition, int64_t *offset)
{
    json_t *doc = json_loads(body, 0, NULL);
    *partition = (int)json_integer_value(json_object_get(doc, "partition"));
    *offset = json_is_integer(json_object_get(doc, "offset")) ? json_integer_value(json_object_get(doc, "offset")) : -1;
    json_decref(doc);
}

static void *load_main(void *arg)
{
    loader_t *l = arg;
    conn_t conn = {.fd = -1, .gw = l->gw};
    for (unsigned seq = 0; sg_test_now_ms() < l->until_ms; ++seq) {
        if (l->n == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 1024;
            l->outcomes = realloc(l->outcomes, l->cap * sizeof(*l->outcomes));
        }
        outcome_t *o = &l->outcomes[l->n++];
        memset(o, 0, sizeof(*o));
        if (l->keys > 0)
            snprintf(o->key, sizeof(o->key), "k%u", (unsigned)((seq * 7919u + (unsigned)l->thread * 131u) % (unsigned)l->keys));
        else
            snprintf(o->key, sizeof(o->key), "t%d-%u", l->thread, seq);
        if (l->reply)
            snprintf(o->body, sizeof(o->body), "{\"body\":{\"nonce\":\"c%d-t%d-%u\"}}", l->cycle, l->thread, seq);
        else
            snprintf(o->body, sizeof(o->body), "{\"c\":%d,\"t\":%d,\"n\":%u,\"key\":\"%s\"}", l->cycle, l->thread, seq, o->key);
        char path[128];
        snprintf(path, sizeof(path), "%s%s", l->path_prefix, l->key_in_path ? o->key : "");
        answer_t ans;
        o->sent_ms = sg_test_now_ms();
        if (conn_request(&conn, l->method, path, NULL, o->body, 15000, &ans) != 0) {
            if (l->stop_on_error) {
                l->n--; /* the gateway is gone: this one was never answered, and nothing more is sent */
                break;
            }
            sg_test_sleep_ms(20);
            continue;
        }
        o->answered_ms = sg_test_now_ms();
        o->status = ans.status;
        if (ans.status == 202 && !l->reply)
            parse_position(ans.body, &o->partition, &o->offset);
        char value[96];
        if (header_of(ans.headers, "location", value, sizeof(value)) != NULL)
            snprintf(o->location, sizeof(o->location), "%s", value);
        if (l->reply && ans.status == 200) {
            /* the reply must be this request's: the worker echoes the nonce as the body */
            json_t *got = json_loads(ans.body, 0, NULL);
            json_t *sent = json_loads(o->body, 0, NULL);
            if (!json_equal(got, json_object_get(sent, "body")))
                fail_msg("crossed reply: sent %s, got %s", o->body, ans.body);
            json_decref(got);
            json_decref(sent);
        }
    }
    conn_close(&conn);
    return NULL;
}

/* Starts n loaders on the gateway until `until_ms`. */
static loader_t *start_load(pthread_t *threads, int n, const sg_test_proc_t *gw, const char *method, const char *prefix,
                            int key_in_path, int keys, int reply, int cycle, int64_t until_ms, int stop_on_error)
{
    loader_t *loaders = calloc((size_t)n, sizeof(*loaders));
    for (int i = 0; i < n; ++i) {
        loaders[i] = (loader_t){.gw = gw,
                                .method = method,
                                .path_prefix = prefix,
                                .key_in_path = key_in_path,
                                .thread = i,
                                .until_ms = until_ms,
                                .keys = keys,
                                .cycle = cycle,
                                .reply = reply,
                                .stop_on_error = stop_on_error};
        pthread_create(&threads[i], NULL, load_main, &loaders[i]);
    }
    return loaders;
}

static void join_load(pthread_t *threads, int n)
{
    for (int i = 0; i < n; ++i)
        pthread_join(threads[i], NULL);
}

static void free_load(loader_t *loaders, int n)
{
    for (int i = 0; i < n; ++i)
        free(loaders[i].outcomes);
    free(loaders);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Figures of a load: counts by status, the longest time without a 2xx answer within [from, to],
 * the slowest answer. */
typedef struct {
    long total, ok, unavailable, other, unanswered;
    int64_t gap_ms, gap_start_ms, slowest_ms;
} figures_t;

static figures_t figures_of(const loader_t *loaders, int n, int64_t from_ms, int64_t to_ms)
{
    figures_t f = {0};
    size_t cap = 0;
    for (int i = 0; i < n; ++i)
        cap += loaders[i].n;
    int64_t *ok_times = malloc((cap + 2) * sizeof(int64_t));
    size_t n_ok = 0;
    ok_times[n_ok++] = from_ms;
    for (int i = 0; i < n; ++i)
        for (size_t k = 0; k < loaders[i].n; ++k) {
            const outcome_t *o = &loaders[i].outcomes[k];
            ++f.total;
            if (o->answered_ms == 0) {
                ++f.unanswered;
                continue;
            }
            if (o->answered_ms - o->sent_ms > f.slowest_ms)
                f.slowest_ms = o->answered_ms - o->sent_ms;
            if (o->status >= 200 && o->status < 300) {
                ++f.ok;
                ok_times[n_ok++] = o->answered_ms;
            } else if (o->status == 503) {
                ++f.unavailable;
            } else {
                ++f.other;
            }
        }
    ok_times[n_ok++] = to_ms;
    qsort(ok_times, n_ok, sizeof(int64_t), cmp_i64);
    for (size_t k = 1; k < n_ok; ++k)
        if (ok_times[k] - ok_times[k - 1] > f.gap_ms) {
            f.gap_ms = ok_times[k] - ok_times[k - 1];
            f.gap_start_ms = ok_times[k - 1];
        }
    free(ok_times);
    return f;
}

/* Every 202 of a route without reply holds exactly its request's key and value in the topic.
 * Returns how many do not (acknowledged but lost or wrong). */
static long acknowledged_but_lost(const loader_t *loaders, int n, const topic_dump_t *dump)
{
    long lost = 0;
    for (int i = 0; i < n; ++i)
        for (size_t k = 0; k < loaders[i].n; ++k) {
            const outcome_t *o = &loaders[i].outcomes[k];
            if (o->status != 202)
                continue;
            const kv_t *kv = dump_at(dump, o->partition, o->offset);
            if (kv == NULL || kv->key == NULL || kv->value == NULL || strcmp(kv->key, o->key) != 0 ||
                strcmp(kv->value, o->body) != 0) {
                if (lost < 5)
                    fprintf(stderr, "acknowledged but not in the log: key %s at [%d] %lld: found %s = %s\n", o->key, o->partition,
                            (long long)o->offset, kv && kv->key ? kv->key : "(nothing)", kv && kv->value ? kv->value : "");
                ++lost;
            }
        }
    return lost;
}

/* What the log holds against what was sent (keys "t<thread>-<seq>": the outcome's index is seq). */
typedef struct {
    long foreign;            /* records whose key or value is no request's */
    long acked_missing;      /* 202'd requests with no record */
    long unavailable_in_log; /* 503'd requests with a record */
    long dup_acked, dup_unavailable;
} log_census_t;

static log_census_t census_of(const loader_t *loaders, int n, const topic_dump_t *dump)
{
    log_census_t census = {0};
    int *counts[256] = {0};
    for (int i = 0; i < n && i < 256; ++i)
        counts[i] = calloc(loaders[i].n + 1, sizeof(int));
    for (int p = 0; p < dump->partitions; ++p)
        for (int64_t o = 0; o < dump->n[p]; ++o) {
            const kv_t *kv = dump_at(dump, p, o);
            int thread;
            unsigned seq;
            if (kv->key == NULL || sscanf(kv->key, "t%d-%u", &thread, &seq) != 2 || thread < 0 || thread >= n ||
                seq >= loaders[thread].n || kv->value == NULL || strcmp(kv->value, loaders[thread].outcomes[seq].body) != 0) {
                ++census.foreign;
                continue;
            }
            counts[thread][seq]++;
        }
    for (int i = 0; i < n && i < 256; ++i) {
        for (size_t k = 0; k < loaders[i].n; ++k) {
            int status = loaders[i].outcomes[k].status, count = counts[i][k];
            census.acked_missing += status == 202 && count == 0;
            census.unavailable_in_log += status == 503 && count > 0;
            census.dup_acked += status == 202 && count > 1;
            census.dup_unavailable += status == 503 && count > 1;
        }
        free(counts[i]);
    }
    return census;
}

static void gateway_config(char *config, size_t len, const char *routes)
{
    snprintf(config, len,
             "listen: [\"127.0.0.1:0\"]\n"
             "threads: 2\n"
             "data_dir: @DIR@/data\n"
             "kafka: {brokers: \"%s\", create_topics: true, produce_timeout: %dms}\n"
             "%s",
             cluster.bootstrap, PRODUCE_TIMEOUT_MS, routes);
}

/* --- 1. a partition leader killed under load ------------------------------------------------------ */

static void test_leader_failover_under_load(void **state)
{
    SG_TEST_REAL_ONLY("kills and restarts a node of the three-node cluster");
    const char *topics[] = {"fo.load", NULL};
    wait_healthy(topics);
    char config[2048];
    gateway_config(config, sizeof(config),
                   "topics: [{name: fo.load, partitions: 3}]\n" /* replication unset: the cluster's 3 */
                   "routes:\n"
                   "  - {name: fo, method: POST, path: \"/fo/{id}\", topic: fo.load, key: \"path:id\"}\n");
    sg_test_proc_t gw;
    assert_int_equal(sg_test_gateway_start(&gw, config), 0);
    int isr;
    int victim = leader_of("fo.load", 0, &isr);
    assert_true(victim >= 0);
    assert_int_equal(isr, 3);

    enum { CONNS = 64 };
    pthread_t threads[CONNS];
    int64_t start = sg_test_now_ms();
    loader_t *loaders = start_load(threads, CONNS, &gw, "POST", "/fo/", 1, 0, 0, 0, start + 20000, 0);
    sg_test_sleep_ms((int)(start + 5000 - sg_test_now_ms()));
    int64_t killed_at = sg_test_now_ms();
    assert_int_equal(node_cmd("kill", victim), 0);
    int64_t wait = start + 12000 - sg_test_now_ms();
    if (wait > 0)
        sg_test_sleep_ms((int)wait);
    int64_t restart_at = sg_test_now_ms();
    assert_int_equal(node_cmd("start", victim), 0);
    int64_t restarted_in = sg_test_now_ms() - restart_at;
    join_load(threads, CONNS);
    int64_t end = sg_test_now_ms();
    int new_leader = leader_of("fo.load", 0, &isr);

    figures_t f = figures_of(loaders, CONNS, start, end);
    topic_dump_t dump;
    dump_topic("fo.load", 3, &dump);
    long lost = acknowledged_but_lost(loaders, CONNS, &dump);
    int64_t in_log = dump.n[0] + dump.n[1] + dump.n[2];
    log_census_t census = census_of(loaders, CONNS, &dump);
    fprintf(stderr,
            "leader failover under load: %d connections, %.1f s; node %d (leader of fo.load [0]) SIGKILLed at %.1f s, "
            "started again at %.1f s (serving after %.1f s); leader of [0] afterwards: node %d\n"
            "  requests %ld: 202 %ld, 503 %ld, other %ld, unanswered %ld; %.0f req/s; records in the topic %lld\n"
            "  failover gap (longest time without a 2xx) %lld ms, from %.1f s; slowest answer %lld ms (bound %d ms); "
            "acknowledged but lost: %ld\n",
            CONNS, (end - start) / 1000.0, victim, (killed_at - start) / 1000.0, (restart_at - start) / 1000.0,
            restarted_in / 1000.0, new_leader, f.total, f.ok, f.unavailable, f.other, f.unanswered,
            f.total * 1000.0 / (end - start), (long long)in_log, (long long)f.gap_ms, (f.gap_start_ms - start) / 1000.0,
            (long long)f.slowest_ms, ANSWER_BOUND_MS, lost);
    assert_int_equal(lost, 0);
    assert_int_equal(f.other, 0);
    assert_int_equal(f.unanswered, 0);
    assert_true(f.ok > 0);
    assert_true(f.slowest_ms <= ANSWER_BOUND_MS);
    fprintf(stderr,
            "  the log: %ld of the 503'd requests are in it (the 503 promised nothing); written twice: %ld requests "
            "answered 202, %ld answered 503 (duplicates: no Idempotency-Key); records of no request: %ld\n",
            census.unavailable_in_log, census.dup_acked, census.dup_unavailable, census.foreign);
    /* every record is one of the requests sent, and every 202'd request is in it */
    assert_int_equal(census.foreign, 0);
    assert_int_equal(census.acked_missing, 0);
    dump_free(&dump);
    free_load(loaders, CONNS);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
}

/* --- 2. the loss of a majority ---------------------------------------------------------------------- */

/* GET /readyz: its status, or 0 without an answer. */
static int readyz(const sg_test_proc_t *gw)
{
    sg_test_response_t res;
    if (sg_test_http(gw, "GET", "/readyz", NULL, NULL, 0, &res) != 0)
        return 0;
    int status = res.status;
    sg_test_response_free(&res);
    return status;
}

static void test_majority_loss(void **state)
{
    SG_TEST_REAL_ONLY("kills two of the three nodes");
    const char *topics[] = {"ml.events", NULL};
    wait_healthy(topics);
    char config[2048];
    gateway_config(config, sizeof(config),
                   "topics: [{name: ml.events, partitions: 3}]\n"
                   "routes:\n"
                   "  - {name: ml, method: POST, path: \"/ml/{id}\", topic: ml.events, key: \"path:id\"}\n");
    sg_test_proc_t gw;
    assert_int_equal(sg_test_gateway_start(&gw, config), 0);
    conn_t conn = {.fd = -1, .gw = &gw};
    answer_t ans;
    assert_int_equal(conn_request(&conn, "POST", "/ml/before", NULL, "{\"n\":0}", 15000, &ans), 0);
    assert_int_equal(ans.status, 202);

    int ids[8];
    assert_int_equal(node_ids(ids, 8), 3);
    int64_t start = sg_test_now_ms();
    assert_int_equal(node_cmd("kill", ids[1]), 0);
    assert_int_equal(node_cmd("kill", ids[2]), 0);
    int64_t killed = sg_test_now_ms();

    /* POSTs answer 503 (+ Retry-After) within the produce timeout; /readyz is watched meanwhile. */
    int64_t readyz_503_after = -1, slowest = 0;
    int posts = 0;
    while (sg_test_now_ms() - killed < 12000 || posts < 3) {
        char path[64];
        snprintf(path, sizeof(path), "/ml/k%d", posts++);
        int64_t sent = sg_test_now_ms();
        assert_int_equal(conn_request(&conn, "POST", path, NULL, "{\"n\":1}", 15000, &ans), 0);
        int64_t took = sg_test_now_ms() - sent;
        slowest = took > slowest ? took : slowest;
        if (ans.status != 503)
            fail_msg("POST %s with two of three nodes down: %d %s", path, ans.status, ans.body);
        char value[32];
        assert_non_null(header_of(ans.headers, "retry-after", value, sizeof(value)));
        if (took > ANSWER_BOUND_MS)
            fail_msg("POST %s with two of three nodes down answered after %lld ms (bound %d ms)", path, (long long)took,
                     ANSWER_BOUND_MS);
        if (readyz_503_after < 0 && readyz(&gw) == 503)
            readyz_503_after = sg_test_now_ms() - killed;
    }
    for (int64_t until = killed + 15000; readyz_503_after < 0 && sg_test_now_ms() < until; sg_test_sleep_ms(250))
        if (readyz(&gw) == 503)
            readyz_503_after = sg_test_now_ms() - killed;

    /* The nodes come back; the same gateway recovers without a restart. */
    int64_t back_at = sg_test_now_ms();
    assert_int_equal(node_cmd("start", ids[1]), 0);
    assert_int_equal(node_cmd("start", ids[2]), 0);
    int64_t nodes_up = sg_test_now_ms();
    int64_t first_202 = -1, ready_again = -1;
    for (int n = 0; (first_202 < 0 || ready_again < 0) && sg_test_now_ms() - nodes_up < 90000; ++n) {
        char path[64];
        snprintf(path, sizeof(path), "/ml/r%d", n);
        if (first_202 < 0 && conn_request(&conn, "POST", path, NULL, "{\"n\":2}", 15000, &ans) == 0 && ans.status == 202)
            first_202 = sg_test_now_ms() - nodes_up;
        if (ready_again < 0 && readyz(&gw) == 200)
            ready_again = sg_test_now_ms() - nodes_up;
        if (first_202 < 0 || ready_again < 0)
            sg_test_sleep_ms(200);
    }
    conn_close(&conn);
    fprintf(stderr,
            "majority loss: nodes %d and %d SIGKILLed at %.1f s; %d POSTs answered 503 + Retry-After, slowest %lld ms "
            "(bound %d ms); /readyz 503 after %lld ms%s; nodes started again in %.1f s; then first 202 after %lld ms, "
            "/readyz 200 after %lld ms (no gateway restart)\n",
            ids[1], ids[2], (killed - start) / 1000.0, posts, (long long)slowest, ANSWER_BOUND_MS, (long long)readyz_503_after,
            readyz_503_after < 0 ? " (never, within 15 s)" : "", (nodes_up - back_at) / 1000.0, (long long)first_202,
            (long long)ready_again);
    assert_true(first_202 >= 0);
    assert_true(ready_again >= 0);
    assert_true(readyz_503_after >= 0 && readyz_503_after <= 10000);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
}

/* --- 3. gateway crash cycles ------------------------------------------------------------------------ */

/* The table's rows, read through GET /tables/fc (paged), as one JSON object key -> value. */
static json_t *table_rows(const sg_test_proc_t *gw)
{
    json_t *rows = json_object();
    char path[512] = "/tables/fc?limit=1000";
    for (int page = 0; page < 100; ++page) {
        sg_test_response_t res;
        assert_int_equal(sg_test_http(gw, "GET", path, NULL, NULL, 0, &res), 0);
        assert_int_equal(res.status, 200);
        json_t *doc = json_loads(res.body, 0, NULL);
        assert_non_null(doc);
        size_t i;
        json_t *row;
        json_array_foreach(json_object_get(doc, "rows"), i, row)
            json_object_set(rows, json_string_value(json_object_get(row, "key")), json_object_get(row, "value"));
        const char *next = json_string_value(json_object_get(doc, "next"));
        if (next != NULL)
            snprintf(path, sizeof(path), "/tables/fc?limit=1000&cursor=%s", next);
        json_decref(doc);
        sg_test_response_free(&res);
        if (next == NULL)
            return rows;
    }
    fail_msg("GET /tables/fc: more than 100 pages");
    return rows;
}

/* What a rebuild from the beginning of the topic gives: each key's last value. */
static json_t *fold_of(const topic_dump_t *dump)
{
    json_t *rows = json_object();
    for (int p = 0; p < dump->partitions; ++p)
        for (int64_t o = 0; o < dump->n[p]; ++o) {
            const kv_t *kv = dump_at(dump, p, o);
            if (kv->key == NULL)
                continue;
            if (kv->value == NULL)
                json_object_del(rows, kv->key);
            else
                json_object_set_new(rows, kv->key, json_loads(kv->value, 0, NULL));
        }
    return rows;
}

static void test_gateway_crash_cycles(void **state)
{
    SG_TEST_REAL_ONLY("the durability of 202s across SIGKILLs of the gateway, on replicated topics");
    const char *topics[] = {"fc.rows", NULL};
    wait_healthy(topics);
    char config[2048];
    gateway_config(config, sizeof(config),
                   "topics: [{name: fc.rows, partitions: 3}]\n"
                   "routes:\n"
                   "  - {name: fc, method: PUT, path: \"/fc/{id}\", topic: fc.rows, key: \"path:id\"}\n"
                   "tables: [{name: fc, topic: fc.rows}]\n");
    sg_test_proc_t gw;
    assert_int_equal(sg_test_gateway_start(&gw, config), 0);
    enum { CONNS = 8, CYCLES = 10 };
    loader_t *all[CYCLES];
    long acked = 0;
    int64_t restart_ms[CYCLES];
    for (int cycle = 0; cycle < CYCLES; ++cycle) {
        pthread_t threads[CONNS];
        int64_t start = sg_test_now_ms();
        all[cycle] = start_load(threads, CONNS, &gw, "PUT", "/fc/", 1, 200, 0, cycle, start + 5000, 1);
        sg_test_sleep_ms(1000 + 97 * cycle); /* the kill lands at a different point of the load each time */
        assert_int_equal(sg_test_proc_kill9(&gw), 0);
        join_load(threads, CONNS);
        int64_t rerun = sg_test_now_ms();
        assert_int_equal(sg_test_gateway_rerun(&gw, 1), 0);
        restart_ms[cycle] = sg_test_now_ms() - rerun;

        /* Every 202 so far is in the topic, and the restarted table equals a rebuild. */
        topic_dump_t dump;
        dump_topic("fc.rows", 3, &dump);
        long lost = 0, this_cycle = 0;
        for (int c = 0; c <= cycle; ++c)
            lost += acknowledged_but_lost(all[c], CONNS, &dump);
        for (int i = 0; i < CONNS; ++i)
            for (size_t k = 0; k < all[cycle][i].n; ++k)
                this_cycle += all[cycle][i].outcomes[k].status == 202;
        acked += this_cycle;
        json_t *expected = fold_of(&dump);
        json_t *got = table_rows(&gw);
        int equal = json_equal(expected, got);
        fprintf(stderr,
                "crash cycle %d: %ld 202s, SIGKILL after %d ms of load, ready again after %lld ms; topic %lld records, "
                "table %zu rows (rebuild: %zu)%s; acknowledged but lost: %ld\n",
                cycle + 1, this_cycle, 1000 + 97 * cycle, (long long)restart_ms[cycle],
                (long long)(dump.n[0] + dump.n[1] + dump.n[2]), json_object_size(got), json_object_size(expected),
                equal ? "" : " DIFFERENT", lost);
        json_decref(expected);
        json_decref(got);
        dump_free(&dump);
        assert_int_equal(lost, 0);
        assert_true(equal);
        assert_true(this_cycle > 0);
    }
    fprintf(stderr, "gateway crash cycles: %d cycles, %ld 202s in all, every one in the topic\n", CYCLES, acked);
    for (int c = 0; c < CYCLES; ++c)
        free_load(all[c], CONNS);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
}

/* --- 4. request-reply across a leader failover ------------------------------------------------------ */

/* The done status document of location (owned), or NULL. */
static json_t *poll_done(const sg_test_proc_t *gw, const char *location, int64_t deadline)
{
    int64_t left = deadline - sg_test_now_ms();
    char *text = left > 0 ? sg_test_poll_done(gw, location, (int)left) : NULL;
    json_t *doc = text != NULL ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return doc;
}

static void test_request_reply_across_failover(void **state)
{
    SG_TEST_REAL_ONLY("kills the leader of a request partition while sync requests wait");
    const char *topics[] = {"rr.requests", "rr.replies", NULL};
    wait_healthy(topics);
    sg_test_worker_t *worker = sg_test_worker_start(cluster.bootstrap, "rr.requests", 3);
    assert_non_null(worker);
    char config[2048];
    gateway_config(config, sizeof(config),
                   "topics: [{name: rr.requests, partitions: 3}, {name: rr.replies, partitions: 3}]\n"
                   "routes:\n"
                   "  - {name: rr, method: POST, path: /rr, topic: rr.requests, reply: {topic: rr.replies, timeout: 3s}}\n");
    sg_test_proc_t gw;
    assert_int_equal(sg_test_gateway_start(&gw, config), 0);
    int isr;
    int victim = leader_of("rr.requests", 0, &isr);
    assert_true(victim >= 0);

    enum { CONNS = 16 };
    pthread_t threads[CONNS];
    int64_t start = sg_test_now_ms();
    loader_t *loaders = start_load(threads, CONNS, &gw, "POST", "/rr", 0, 0, 1, 0, start + 15000, 0);
    sg_test_sleep_ms(3000);
    int64_t killed_at = sg_test_now_ms();
    assert_int_equal(node_cmd("kill", victim), 0);
    int64_t wait = start + 9000 - sg_test_now_ms();
    if (wait > 0)
        sg_test_sleep_ms((int)wait);
    assert_int_equal(node_cmd("start", victim), 0);
    join_load(threads, CONNS);
    int64_t end = sg_test_now_ms();

    /* Every 202 is done when polled, with its own reply; every 200 was checked by the loader. */
    long replied = 0, degraded = 0, unavailable = 0, other = 0, unanswered = 0, done = 0;
    int64_t deadline = sg_test_now_ms() + 120000;
    for (int i = 0; i < CONNS; ++i)
        for (size_t k = 0; k < loaders[i].n; ++k) {
            const outcome_t *o = &loaders[i].outcomes[k];
            if (o->answered_ms == 0) {
                ++unanswered;
            } else if (o->status == 200) {
                ++replied;
            } else if (o->status == 202) {
                ++degraded;
                if (o->location[0] != '/')
                    fail_msg("202 without a Location");
                json_t *doc = poll_done(&gw, o->location, deadline);
                if (doc == NULL)
                    fail_msg("%s is not done within 120 s of the load's end", o->location);
                json_t *sent = json_loads(o->body, 0, NULL);
                json_t *response = json_object_get(doc, "response");
                json_t *body = json_object_get(response, "body");
                json_t *body_doc = json_is_string(body) ? json_loads(json_string_value(body), 0, NULL) : json_incref(body);
                if (json_integer_value(json_object_get(response, "status")) != 200 ||
                    !json_equal(body_doc, json_object_get(sent, "body"))) {
                    char *text = json_dumps(doc, JSON_COMPACT);
                    fail_msg("%s: crossed or wrong outcome for %s: %s", o->location, o->body, text);
                }
                ++done;
                json_decref(body_doc);
                json_decref(sent);
                json_decref(doc);
            } else if (o->status == 503) {
                ++unavailable;
            } else {
                ++other;
            }
        }
    figures_t f = figures_of(loaders, CONNS, start, end);
    fprintf(stderr,
            "request-reply across a failover: %d connections, %.1f s, node %d (leader of rr.requests [0]) SIGKILLed at %.1f s: "
            "%ld requests: %ld replied, %ld degraded to 202 + Location (all %ld done when polled, none crossed), %ld 503, "
            "%ld other, %ld unanswered; gap without a 2xx %lld ms; slowest answer %lld ms\n",
            CONNS, (end - start) / 1000.0, victim, (killed_at - start) / 1000.0, f.total, replied, degraded, done, unavailable,
            other, unanswered, (long long)f.gap_ms, (long long)f.slowest_ms);
    assert_int_equal(other, 0);
    assert_int_equal(unanswered, 0);
    assert_int_equal(done, degraded);
    assert_true(replied > 0);
    free_load(loaders, CONNS);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
    sg_test_worker_stop(worker);
}

/* Prints the gateway's log lines that contain `what`. */
static void print_log_lines(const sg_test_proc_t *gw, const char *what)
{
    char path[512], line[2048];
    snprintf(path, sizeof(path), "%s/log", gw->dir);
    FILE *log = fopen(path, "r");
    while (log != NULL && fgets(line, sizeof(line), log) != NULL)
        if (strstr(line, what) != NULL)
            fprintf(stderr, "  gateway: %s", line);
    if (log != NULL)
        fclose(log);
}

/* --- 5. a produce whose outcome is unknown, and its Idempotency-Key ---------------------------------- */

typedef struct {
    const sg_test_proc_t *gw;
    int index;
    int first_status, retry_status;
    char first_type[64], retry_type[64];
    int retry_after_first, retry_after_retry;
} uk_client_t;

static void problem_type(const answer_t *ans, char *out, size_t len)
{
    json_t *doc = json_loads(ans->body, 0, NULL);
    const char *type = json_string_value(json_object_get(doc, "type"));
    snprintf(out, len, "%s", type != NULL && strrchr(type, ':') ? strrchr(type, ':') + 1 : "");
    json_decref(doc);
}

static void uk_send(const uk_client_t *c, answer_t *ans, int *status, char *type, size_t type_len, int *retry_after)
{
    conn_t conn = {.fd = -1, .gw = c->gw};
    char path[64], key[64], body[64];
    snprintf(path, sizeof(path), "/uk/k%d", c->index);
    snprintf(key, sizeof(key), "Idempotency-Key: uk-%d\r\n", c->index);
    snprintf(body, sizeof(body), "{\"i\":%d}", c->index);
    *status = conn_request(&conn, "POST", path, key, body, 15000, ans) == 0 ? ans->status : 0;
    char value[32];
    *retry_after = *status != 0 && header_of(ans->headers, "retry-after", value, sizeof(value)) != NULL;
    if (type != NULL)
        problem_type(ans, type, type_len);
    conn_close(&conn);
}

static void *uk_first(void *arg)
{
    uk_client_t *c = arg;
    answer_t ans;
    uk_send(c, &ans, &c->first_status, c->first_type, sizeof(c->first_type), &c->retry_after_first);
    return NULL;
}

static void *uk_retry(void *arg)
{
    uk_client_t *c = arg;
    answer_t ans;
    uk_send(c, &ans, &c->retry_status, c->retry_type, sizeof(c->retry_type), &c->retry_after_retry);
    return NULL;
}

static void test_unknown_outcome_keeps_the_key(void **state)
{
    SG_TEST_REAL_ONLY("SIGSTOPs every node so that produces are sent and never answered");
    const char *topics[] = {"uk.events", NULL};
    (void)topics;
    char config[2048];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\nthreads: 2\ndata_dir: @DIR@/data\n"
             "kafka: {brokers: \"%s\", create_topics: true, produce_timeout: 2s}\n"
             "topics: [{name: uk.events, partitions: 2}]\n"
             "routes:\n"
             "  - {name: uk, method: POST, path: \"/uk/{id}\", topic: uk.events, key: \"path:id\"}\n",
             cluster.bootstrap);
    sg_test_proc_t gw;
    assert_int_equal(sg_test_gateway_start(&gw, config), 0);
    int64_t before = sg_test_topic_count(cluster.bootstrap, "uk.events");

    enum { KEYS = 24 };
    uk_client_t clients[KEYS];
    pthread_t threads[KEYS];
    assert_int_equal(sg_test_cluster_freeze(&cluster), 0);
    for (int i = 0; i < KEYS; ++i) {
        clients[i] = (uk_client_t){.gw = &gw, .index = i};
        pthread_create(&threads[i], NULL, uk_first, &clients[i]);
    }
    join_load(threads, KEYS);
    for (int i = 0; i < KEYS; ++i)
        pthread_create(&threads[i], NULL, uk_retry, &clients[i]);
    join_load(threads, KEYS);
    int64_t thawed = sg_test_now_ms();
    assert_int_equal(sg_test_cluster_thaw(&cluster), 0);

    /* Then every key is retried until it is answered 202 (a replay, or its first produce). */
    int unknown_first = 0, unavailable_first = 0, claim_refused_first = 0, unknown_retry = 0, in_flight_retry = 0, replays = 0;
    int64_t settled_ms[KEYS];
    for (int i = 0; i < KEYS; ++i) {
        uk_client_t *c = &clients[i];
        if (c->first_status != 503 || !c->retry_after_first)
            fail_msg("key %d: first attempt with every broker stopped: %d %s", i, c->first_status, c->first_type);
        unknown_first += strcmp(c->first_type, "outcome-unknown") == 0;
        unavailable_first += strcmp(c->first_type, "kafka-unavailable") == 0;
        claim_refused_first += strcmp(c->first_type, "store-unavailable") == 0;
        /* while still stopped: 503 outcome-unknown (the key is kept), 409, or (first not sent) a
         * second produce that fails the same way */
        if (!((c->retry_status == 503 && c->retry_after_retry) || c->retry_status == 409))
            fail_msg("key %d: retry with every broker stopped: %d %s", i, c->retry_status, c->retry_type);
        /* an unknown outcome keeps the key: the retry is not produced (409 while the delivery
         * report is still due, outcome-unknown after it) */
        if (strcmp(c->first_type, "outcome-unknown") == 0 && strcmp(c->retry_type, "outcome-unknown") != 0 &&
            c->retry_status != 409)
            fail_msg("key %d: first outcome unknown, yet the retry got %d %s", i, c->retry_status, c->retry_type);
        unknown_retry += strcmp(c->retry_type, "outcome-unknown") == 0;
        in_flight_retry += c->retry_status == 409;
    }
    for (int i = 0; i < KEYS; ++i) {
        int status = 0, retry_after;
        answer_t ans;
        int64_t deadline = thawed + 120000;
        while (status != 202 && sg_test_now_ms() < deadline) {
            uk_send(&clients[i], &ans, &status, NULL, 0, &retry_after);
            if (status != 202) {
                if (!((status == 503 && retry_after) || status == 409))
                    fail_msg("key %d: retry after the brokers came back: %d %s", i, status, ans.body);
                sg_test_sleep_ms(500);
            }
        }
        if (status != 202)
            fail_msg("key %d: no 202 within 120 s of the brokers' return", i);
        char value[16];
        replays += header_of(ans.headers, "idempotent-replayed", value, sizeof(value)) != NULL;
        settled_ms[i] = sg_test_now_ms() - thawed;
    }

    /* One event per key, always. */
    topic_dump_t dump;
    dump_topic("uk.events", 2, &dump);
    int counts[KEYS] = {0};
    for (int p = 0; p < 2; ++p)
        for (int64_t o = 0; o < dump.n[p]; ++o) {
            const kv_t *kv = dump_at(&dump, p, o);
            int index;
            if (kv->key != NULL && sscanf(kv->key, "k%d", &index) == 1 && index >= 0 && index < KEYS)
                counts[index]++;
        }
    int dupes = 0, missing = 0;
    for (int i = 0; i < KEYS; ++i) {
        dupes += counts[i] > 1;
        missing += counts[i] == 0;
    }
    qsort(settled_ms, KEYS, sizeof(int64_t), cmp_i64);
    fprintf(stderr,
            "unknown outcome: %d keys POSTed with every broker stopped (produce_timeout 2 s): first answers 503 "
            "outcome-unknown %d, kafka-unavailable %d, store-unavailable (claim not published) %d; retries while stopped: outcome-unknown %d, 409 %d; after SIGCONT all 202 "
            "(%d replayed), the last after %.1f s (median %.1f s); events per key: %d duplicated, %d missing "
            "(records %lld before, %lld after)\n",
            KEYS, unknown_first, unavailable_first, claim_refused_first, unknown_retry, in_flight_retry, replays, settled_ms[KEYS - 1] / 1000.0,
            settled_ms[KEYS / 2] / 1000.0, dupes, missing, (long long)before, (long long)(dump.n[0] + dump.n[1]));
    if (dupes > 0 || missing > 0) {
        for (int i = 0; i < KEYS; ++i)
            if (counts[i] != 1)
                fprintf(stderr, "  key k%d: %d event(s); first %d %s, retry %d %s\n", i, counts[i], clients[i].first_status,
                        clients[i].first_type, clients[i].retry_status, clients[i].retry_type);
        print_log_lines(&gw, "Idempotency-Key");
    }
    dump_free(&dump);
    /* Every first attempt ended in a state that keeps its key safe: the claim could not be
     * published to the deployment's claims topic (claims are deployment-wide and made before the
     * produce, so with every node stopped nothing is produced), or it was and the produce's outcome
     * is unknown. A plain kafka-unavailable after a produce was sent would have released the key. */
    assert_int_equal(unknown_first + claim_refused_first, KEYS);
    assert_int_equal(dupes, 0);
    assert_int_equal(missing, 0);
    assert_int_equal(sg_test_proc_stop(&gw), 0);
}

int main(void)
{
    if (getenv("SG_TEST_ONLY") != NULL) /* one test by name (a glob), when working on it */
        cmocka_set_test_filter(getenv("SG_TEST_ONLY"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_outcome_keeps_the_key),
        cmocka_unit_test(test_leader_failover_under_load),
        cmocka_unit_test(test_request_reply_across_failover),
        cmocka_unit_test(test_gateway_crash_cycles),
        cmocka_unit_test(test_majority_loss),
    };
    return cmocka_run_group_tests_name("failover", tests, setup, teardown);
}
