/*
 * sg-bench-h2o: the bare-H2O baseline that streamgate is benchmarked against. It does what the
 * gateway's HTTP edge does at minimum (N evloop threads, whole request body buffered by H2O,
 * 202 with a small JSON body) and nothing else: no routing, no Kafka, no storage. The gap
 * between its figures and streamgate's is the cost of everything streamgate adds. --status,
 * --body and --header change the fixed answer (the tables bench: GET 200 with a row-size body).
 * --hold never answers: each request stays open in H2O until its connection closes, so the
 * process's RSS per held request is the floor for the gateway's requests waiting for a reply;
 * main() then prints "held N" on stderr each second the count has changed, so a driver knows
 * when every request has arrived.
 *
 * --kafka embedded|BOOTSTRAP is the durable POST's floor without streamgate: each request's body
 * is produced (key = the body itself, so a wrk script that varies the body spreads the keys and
 * one that does not sends every event to one partition) by one idempotent producer with the
 * gateway's settings (acks=all, linger.ms=0, murmur2_random), and answered 202 only from its
 * delivery report, which a poll thread hands back to the request's loop (one wake-up per loop
 * per burst of reports, as the gateway does). `embedded` starts librdkafka's mock cluster in this
 * process (one broker, --topic with --partitions), as the gateway's `kafka.brokers: embedded`
 * does, so the broker's CPU is counted here too. --topic may be given again: the first is produced
 * to, the others only get a handle, as the gateway holds one for each route's topic (librdkafka's
 * producer then serves every partition of them on each wake-up of its broker thread). No JSON, routing, headers on the event, request
 * ids or tokens: the gap between this and the gateway is streamgate's own code.
 *
 * Listener choice: one listening socket per thread, all bound to the same address with
 * SO_REUSEPORT. The kernel then spreads new connections over the threads by hash, each accept
 * wakes exactly one loop, and the threads share no state at all. The alternative, one fd
 * registered in every loop, wakes every loop on each connection (thundering herd) and lets
 * whichever loop is least busy win, which skews the spread of wrk's few long-lived connections.
 * All sockets are bound in main() before any thread starts, so "listening on" is printed only
 * once every thread can accept, and port 0 resolves to one port shared by all of them.
 *
 * Shutdown: SIGTERM/SIGINT are blocked in every thread and taken by sigwait() in main(), which
 * raises a flag the loops poll between evloop runs (at most 100 ms apart). A stopped worker meets
 * main() at a barrier (which publishes its counters) and then parks instead of returning: H2O
 * 2.2.5 keeps recycled buffers in thread-local lists it has no API to free, so a thread that
 * exits would turn them into leaks under LeakSanitizer. exit() then ends the parked threads with
 * their loops, contexts and any still-open connections, which nothing else needs.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "h2o.h"

#define SG_BENCH_MAX_THREADS 256
#define SG_BENCH_LOOP_WAIT_MS 100

#define SG_BENCH_MAX_HEADERS 16
#define SG_BENCH_MAX_BODY 65536

static const char sg_bench_default_body[] = "{\"topic\":\"t\",\"partition\":0,\"offset\":0}";

/* The answer: 202 + sg_bench_default_body unless --status/--body/--header say otherwise (the
 * tables bench answers GETs 200 with a body and headers the size of a table row's). */
static int sg_bench_status = 202;
static const char *sg_bench_reason = "Accepted";
static h2o_iovec_t sg_bench_body;
static h2o_iovec_t sg_bench_header_names[SG_BENCH_MAX_HEADERS];
static h2o_iovec_t sg_bench_header_values[SG_BENCH_MAX_HEADERS];
static size_t sg_bench_header_count;
static bool sg_bench_hold;
static size_t sg_bench_buffer_bytes; /* --buffer-bytes: 0 leaves H2O's own (8 KB) */

/* --kafka: the producer, its topic, and the thread that polls its delivery reports. */
static rd_kafka_t *sg_bench_producer;
static rd_kafka_topic_t *sg_bench_topic;
#define SG_BENCH_MAX_TOPICS 8
static const char *sg_bench_topic_names[SG_BENCH_MAX_TOPICS];
static size_t sg_bench_topic_count;
static pthread_t sg_bench_poller;

typedef struct st_sg_bench_worker_t {
    pthread_t thread;
    int listen_fd;
    h2o_evloop_t *loop;
    h2o_context_t context;
    h2o_accept_ctx_t accept_ctx;
    h2o_multithread_receiver_t deliveries; /* --kafka: sg_bench_produced_t back from the poll thread */
    uint64_t requests;
    uint64_t body_bytes;
} sg_bench_worker_t;

/* --kafka: one produced request, heap-owned from the produce call to its delivery report. The
 * request may be gone by then (its client closed): `guard`, in the request's pool, clears `req`
 * when H2O disposes of it. */
typedef struct st_sg_bench_produced_t {
    h2o_multithread_message_t message;
    sg_bench_worker_t *worker;
    h2o_req_t *req;
    struct st_sg_bench_produced_t **guard;
    rd_kafka_resp_err_t err;
} sg_bench_produced_t;

static h2o_globalconf_t sg_bench_config;
static atomic_bool sg_bench_stopping;
static atomic_ullong sg_bench_held;
static pthread_barrier_t sg_bench_started, sg_bench_stopped;
static sg_bench_worker_t *sg_bench_workers;
static size_t sg_bench_worker_count;
/* Handlers run on their loop's thread, so per-thread counters need no atomics. */
static _Thread_local sg_bench_worker_t *sg_bench_current_worker;

static void respond(h2o_req_t *req, int status, const char *reason, h2o_iovec_t body)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = reason;
    /* h2o_start_response/h2o_send leave the length unset (chunked) unless we give it. */
    req->res.content_length = body.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    for (size_t i = 0; i < sg_bench_header_count; ++i)
        h2o_add_header_by_str(&req->pool, &req->res.headers, sg_bench_header_names[i].base, sg_bench_header_names[i].len, 0, NULL,
                              sg_bench_header_values[i].base, sg_bench_header_values[i].len);
    h2o_start_response(req, &generator);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

static void on_request_gone(void *guard)
{
    sg_bench_produced_t *produced = *(sg_bench_produced_t **)guard;
    if (produced != NULL)
        produced->req = NULL;
}

/* --kafka: the body goes to the topic; the answer waits for its delivery report. */
static int produce_request(sg_bench_worker_t *worker, h2o_req_t *req)
{
    sg_bench_produced_t *produced = calloc(1, sizeof(*produced)); /* the message link starts unlinked */
    if (produced == NULL)
        abort();
    produced->worker = worker;
    produced->req = req;
    produced->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*produced->guard), on_request_gone);
    *produced->guard = produced;
    h2o_iovec_t body = req->entity.base != NULL ? req->entity : h2o_iovec_init("", 0);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        sg_bench_producer, RD_KAFKA_V_RKT(sg_bench_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(body.base, body.len), RD_KAFKA_V_VALUE(body.base, body.len), RD_KAFKA_V_OPAQUE(produced), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        *produced->guard = NULL;
        free(produced);
        respond(req, 503, "Service Unavailable", h2o_iovec_init(H2O_STRLIT("{\"error\":\"produce\"}")));
    }
    return 0;
}

/* The poll thread: delivery reports go back to their request's loop. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    sg_bench_produced_t *produced = msg->_private;
    produced->err = msg->err;
    h2o_multithread_send_message(&produced->worker->deliveries, &produced->message);
}

static void *dr_main(void *arg)
{
    while (!atomic_load(&sg_bench_stopping))
        rd_kafka_poll(sg_bench_producer, SG_BENCH_LOOP_WAIT_MS);
    return NULL;
}

/* The loop: 202 for each acknowledged request still there. */
static void on_deliveries(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *message = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&message->link);
        sg_bench_produced_t *produced = H2O_STRUCT_FROM_MEMBER(sg_bench_produced_t, message, message);
        if (produced->req != NULL) {
            *produced->guard = NULL;
            if (produced->err == RD_KAFKA_RESP_ERR_NO_ERROR)
                respond(produced->req, sg_bench_status, sg_bench_reason, sg_bench_body);
            else
                respond(produced->req, 503, "Service Unavailable", h2o_iovec_init(H2O_STRLIT("{\"error\":\"delivery\"}")));
        }
        free(produced);
    }
}

static int on_request(h2o_handler_t *self, h2o_req_t *req)
{
    sg_bench_worker_t *worker = sg_bench_current_worker;

    /* H2O 2.2.5 calls the handler only once the whole request body is buffered in req->entity;
     * counting it keeps that explicit and gives a sanity figure at exit. */
    if (worker != NULL) {
        worker->requests++;
        if (req->entity.base != NULL)
            worker->body_bytes += req->entity.len;
    }
    /* Held: H2O keeps the request (and its pool) until the client goes away; nothing of ours to free. */
    if (sg_bench_hold) {
        atomic_fetch_add_explicit(&sg_bench_held, 1, memory_order_relaxed);
        return 0;
    }
    if (sg_bench_producer != NULL && worker != NULL)
        return produce_request(worker, req);
    respond(req, sg_bench_status, sg_bench_reason, sg_bench_body);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock == NULL)
        return;
    h2o_accept(listener->data, sock);
}

static void *worker_main(void *arg)
{
    sg_bench_worker_t *worker = arg;

    sg_bench_current_worker = worker;
    /* Thread-local: set on the thread that accepts, before its first socket (as the gateway does). */
    if (sg_bench_buffer_bytes > 0)
        h2o_socket_buffer_prototype._initial_buf.capacity = sg_bench_buffer_bytes;
    /* The loop and its context are made here, not in main(): H2O's sockets (the context's message
     * queue has one) recycle their buffers into the free lists of the thread that made them, so
     * contexts made on one thread would share its lists across the loops (a heap race once
     * --kafka's delivery reports come through the queues). */
    worker->loop = h2o_evloop_create();
    h2o_context_init(&worker->context, worker->loop, &sg_bench_config);
    worker->accept_ctx.ctx = &worker->context;
    worker->accept_ctx.hosts = sg_bench_config.hosts;
    h2o_multithread_register_receiver(worker->context.queue, &worker->deliveries, on_deliveries);
    h2o_socket_t *listener = h2o_evloop_socket_create(worker->loop, worker->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    listener->data = &worker->accept_ctx;
    h2o_socket_read_start(listener, on_accept);
    pthread_barrier_wait(&sg_bench_started);

    while (!atomic_load(&sg_bench_stopping))
        h2o_evloop_run(worker->loop, SG_BENCH_LOOP_WAIT_MS);

    h2o_socket_read_stop(listener);
    pthread_barrier_wait(&sg_bench_stopped);
    for (;;)
        pause(); /* never returns: every signal is blocked in this thread */
    return NULL;
}

/* Splits "HOST:PORT" or "[V6]:PORT" into caller buffers; returns 0 or -1. */
static int split_host_port(const char *address, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon[1] == '\0')
        return -1;
    const char *host_start = address;
    size_t host_len = (size_t)(colon - address);
    if (host_len >= 2 && address[0] == '[' && colon[-1] == ']') {
        host_start++;
        host_len -= 2;
    }
    size_t port_len = strlen(colon + 1);
    if (host_len == 0 || host_len >= hostlen || port_len >= portlen)
        return -1;
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    memcpy(port, colon + 1, port_len + 1);
    return 0;
}

/* Returns a listening, non-blocking SO_REUSEPORT socket bound to addr, or -1 with errno set. */
static int open_listener(const struct sockaddr *addr, socklen_t addrlen)
{
    int fd = socket(addr->sa_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        /* Accepted sockets inherit TCP_NODELAY on Linux; small replies must not wait for ACKs. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 || bind(fd, addr, addrlen) != 0 ||
        listen(fd, SOMAXCONN) != 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sg-bench-h2o [--listen HOST:PORT] [--threads N] [--status CODE] [--body TEXT]\n"
            "                    [--header 'NAME: VALUE' ...] [--hold] [--buffer-bytes N]\n"
            "  Bare H2O server answering every request (any method, any path) with a small JSON body.\n"
            "  defaults: --listen 127.0.0.1:18080 --threads 2 --status 202\n"
            "            --body '{\"topic\":\"t\",\"partition\":0,\"offset\":0}'\n"
            "  --header adds a response header (up to %d; lower-case NAME).\n"
            "  --hold never answers: every request waits until its client goes away.\n"
            "  --buffer-bytes N: H2O's buffers start at N bytes (its default 8192; streamgate's loops 1024).\n"
            "  --kafka embedded|BOOTSTRAP: produce each body (as its key and value) to --topic (default\n"
            "    bench.commands) with an idempotent acks=all producer and answer only from its delivery\n"
            "    report; `embedded` starts librdkafka's mock cluster in this process with the topics on\n"
            "    --partitions (default 4) partitions. Another --topic (up to %d) only gets a handle.\n",
            SG_BENCH_MAX_HEADERS, SG_BENCH_MAX_TOPICS);
}

static int set_prop(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char err[256];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) == RD_KAFKA_CONF_OK)
        return 0;
    fprintf(stderr, "sg-bench-h2o: %s: %s\n", name, err);
    return -1;
}

/* --kafka embedded: librdkafka's mock cluster on a handle of its own (as the gateway's embedded
 * cluster), one broker, the topic created. Returns its bootstrap servers, or NULL. */
static const char *start_mock_cluster(int partitions)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];
    if (set_prop(conf, "bootstrap.servers", "") != 0 || set_prop(conf, "log_level", "3") != 0)
        return NULL;
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (host == NULL) {
        fprintf(stderr, "sg-bench-h2o: embedded cluster: %s\n", err);
        return NULL;
    }
    rd_kafka_mock_cluster_t *mock = rd_kafka_mock_cluster_new(host, 1);
    for (size_t i = 0; i < sg_bench_topic_count; ++i)
        if (mock == NULL || rd_kafka_mock_topic_create(mock, sg_bench_topic_names[i], partitions, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "sg-bench-h2o: embedded cluster: cannot start it or create %s\n", sg_bench_topic_names[i]);
            return NULL;
        }
    return rd_kafka_mock_cluster_bootstraps(mock); /* the cluster lives until exit() */
}

/* The gateway's producer settings (bridge.c, kafka_conf.c), the poll thread started. */
static int start_producer(const char *bootstraps)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];
    if (set_prop(conf, "bootstrap.servers", bootstraps) != 0 || set_prop(conf, "enable.idempotence", "true") != 0 ||
        set_prop(conf, "acks", "all") != 0 || set_prop(conf, "linger.ms", "0") != 0 ||
        set_prop(conf, "partitioner", "murmur2_random") != 0 || set_prop(conf, "message.timeout.ms", "5000") != 0 ||
        set_prop(conf, "queue.buffering.max.messages", "1000000") != 0)
        return -1;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    if ((sg_bench_producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sg-bench-h2o: producer: %s\n", err);
        return -1;
    }
    for (size_t i = sg_bench_topic_count; i-- > 0;) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(sg_bench_producer, sg_bench_topic_names[i], NULL);
        /* Connected and the leaders known before "listening on": no request waits for that. */
        const struct rd_kafka_metadata *md = NULL;
        if (rkt == NULL || rd_kafka_metadata(sg_bench_producer, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "sg-bench-h2o: no metadata for topic %s from %s\n", sg_bench_topic_names[i], bootstraps);
            return -1;
        }
        rd_kafka_metadata_destroy(md);
        sg_bench_topic = rkt; /* the first one's, in the end; the others stay until exit() */
    }
    if (pthread_create(&sg_bench_poller, NULL, dr_main, NULL) != 0) {
        fprintf(stderr, "sg-bench-h2o: cannot start the poll thread\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *listen_address = "127.0.0.1:18080";
    long thread_count = 2;
    static const struct option long_options[] = {
        {"listen", required_argument, NULL, 'l'}, {"threads", required_argument, NULL, 't'},
        {"status", required_argument, NULL, 's'}, {"body", required_argument, NULL, 'b'},
        {"header", required_argument, NULL, 'H'}, {"hold", no_argument, NULL, 'o'},
        {"buffer-bytes", required_argument, NULL, 'B'}, {"kafka", required_argument, NULL, 'k'},
        {"topic", required_argument, NULL, 'T'}, {"partitions", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *kafka = NULL;
    long partitions = 4;
    int opt;
    sg_bench_body = h2o_iovec_init(sg_bench_default_body, sizeof(sg_bench_default_body) - 1);
    while ((opt = getopt_long(argc, argv, "l:t:s:b:H:oB:k:T:p:h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'l': listen_address = optarg; break;
        case 't': {
            char *end;
            thread_count = strtol(optarg, &end, 10);
            if (*end != '\0' || thread_count < 1 || thread_count > SG_BENCH_MAX_THREADS) {
                fprintf(stderr, "sg-bench-h2o: --threads must be 1..%d\n", SG_BENCH_MAX_THREADS);
                return 2;
            }
        } break;
        case 's': {
            char *end;
            long status = strtol(optarg, &end, 10);
            if (*end != '\0' || status < 200 || status > 599) {
                fprintf(stderr, "sg-bench-h2o: --status must be 200..599\n");
                return 2;
            }
            sg_bench_status = (int)status;
            sg_bench_reason = status == 200 ? "OK" : status == 202 ? "Accepted" : "Status";
        } break;
        case 'b':
            if (strlen(optarg) > SG_BENCH_MAX_BODY) {
                fprintf(stderr, "sg-bench-h2o: --body is limited to %d bytes\n", SG_BENCH_MAX_BODY);
                return 2;
            }
            sg_bench_body = h2o_iovec_init(optarg, strlen(optarg));
            break;
        case 'H': {
            const char *colon = strchr(optarg, ':');
            if (colon == NULL || colon == optarg || sg_bench_header_count == SG_BENCH_MAX_HEADERS) {
                fprintf(stderr, "sg-bench-h2o: --header wants 'NAME: VALUE' (at most %d)\n", SG_BENCH_MAX_HEADERS);
                return 2;
            }
            const char *value = colon + 1;
            while (*value == ' ')
                ++value;
            sg_bench_header_names[sg_bench_header_count] = h2o_iovec_init(optarg, (size_t)(colon - optarg));
            sg_bench_header_values[sg_bench_header_count] = h2o_iovec_init(value, strlen(value));
            ++sg_bench_header_count;
        } break;
        case 'o': sg_bench_hold = true; break;
        case 'B': {
            char *end;
            long bytes = strtol(optarg, &end, 10);
            if (*end != '\0' || bytes < 64 || bytes > 1 << 20) {
                fprintf(stderr, "sg-bench-h2o: --buffer-bytes must be 64..1048576\n");
                return 2;
            }
            sg_bench_buffer_bytes = (size_t)bytes;
        } break;
        case 'k': kafka = optarg; break;
        case 'T':
            if (sg_bench_topic_count == SG_BENCH_MAX_TOPICS) {
                fprintf(stderr, "sg-bench-h2o: at most %d --topic\n", SG_BENCH_MAX_TOPICS);
                return 2;
            }
            sg_bench_topic_names[sg_bench_topic_count++] = optarg;
            break;
        case 'p': {
            char *end;
            partitions = strtol(optarg, &end, 10);
            if (*end != '\0' || partitions < 1 || partitions > 1000) {
                fprintf(stderr, "sg-bench-h2o: --partitions must be 1..1000\n");
                return 2;
            }
        } break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || (kafka != NULL && sg_bench_hold)) {
        usage(stderr);
        return 2;
    }

    char host[256], port[16];
    if (split_host_port(listen_address, host, sizeof(host), port, sizeof(port)) != 0) {
        fprintf(stderr, "sg-bench-h2o: --listen wants HOST:PORT, got '%s'\n", listen_address);
        return 2;
    }
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *resolved;
    int gai = getaddrinfo(host, port, &hints, &resolved);
    if (gai != 0) {
        fprintf(stderr, "sg-bench-h2o: %s: %s\n", listen_address, gai_strerror(gai));
        return 2;
    }
    struct sockaddr_storage bind_addr;
    socklen_t bind_addrlen = resolved->ai_addrlen;
    memcpy(&bind_addr, resolved->ai_addr, bind_addrlen);
    freeaddrinfo(resolved);

    /* Block the stop signals before any thread exists so that only sigwait() below sees them. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    h2o_config_init(&sg_bench_config);
    h2o_hostconf_t *hostconf = h2o_config_register_host(&sg_bench_config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_request;

    sg_bench_worker_count = (size_t)thread_count;
    sg_bench_workers = calloc(sg_bench_worker_count, sizeof(*sg_bench_workers));
    if (sg_bench_workers == NULL) {
        fprintf(stderr, "sg-bench-h2o: out of memory\n");
        abort();
    }

    for (size_t i = 0; i < sg_bench_worker_count; ++i) {
        sg_bench_worker_t *worker = &sg_bench_workers[i];
        worker->listen_fd = open_listener((struct sockaddr *)&bind_addr, bind_addrlen);
        if (worker->listen_fd < 0) {
            fprintf(stderr, "sg-bench-h2o: cannot listen on %s: %s\n", listen_address, strerror(errno));
            return 1;
        }
        if (i == 0) {
            /* With port 0 the kernel picks one; every other socket must join that same port. */
            if (getsockname(worker->listen_fd, (struct sockaddr *)&bind_addr, &bind_addrlen) != 0) {
                fprintf(stderr, "sg-bench-h2o: getsockname: %s\n", strerror(errno));
                return 1;
            }
        }
    }
    if (kafka != NULL) {
        if (sg_bench_topic_count == 0)
            sg_bench_topic_names[sg_bench_topic_count++] = "bench.commands";
        const char *bootstraps = strcmp(kafka, "embedded") == 0 ? start_mock_cluster((int)partitions) : kafka;
        if (bootstraps == NULL || start_producer(bootstraps) != 0)
            return 1;
    }

    char bound_host[NI_MAXHOST], bound_port[NI_MAXSERV];
    if (getnameinfo((struct sockaddr *)&bind_addr, bind_addrlen, bound_host, sizeof(bound_host), bound_port, sizeof(bound_port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(bound_host, sizeof(bound_host), "%s", host);
        snprintf(bound_port, sizeof(bound_port), "%s", port);
    }

    if (pthread_barrier_init(&sg_bench_started, NULL, (unsigned)sg_bench_worker_count + 1) != 0 ||
        pthread_barrier_init(&sg_bench_stopped, NULL, (unsigned)sg_bench_worker_count + 1) != 0) {
        fprintf(stderr, "sg-bench-h2o: pthread_barrier_init failed\n");
        return 1;
    }
    for (size_t i = 0; i < sg_bench_worker_count; ++i) {
        int rc = pthread_create(&sg_bench_workers[i].thread, NULL, worker_main, &sg_bench_workers[i]);
        if (rc != 0) {
            fprintf(stderr, "sg-bench-h2o: pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }
    pthread_barrier_wait(&sg_bench_started); /* every loop accepts */
    if (strchr(bound_host, ':') != NULL)
        fprintf(stderr, "listening on [%s]:%s\n", bound_host, bound_port);
    else
        fprintf(stderr, "listening on %s:%s\n", bound_host, bound_port);

    int signo;
    if (sg_bench_hold) {
        /* Once a second: the count of held requests, when it moved. */
        unsigned long long reported = 0;
        struct timespec second = {.tv_sec = 1};
        while ((signo = sigtimedwait(&stop_signals, NULL, &second)) < 0) {
            unsigned long long held = atomic_load_explicit(&sg_bench_held, memory_order_relaxed);
            if (held != reported) {
                fprintf(stderr, "held %llu\n", held);
                reported = held;
            }
        }
    } else {
        while (sigwait(&stop_signals, &signo) != 0)
            ;
    }
    atomic_store(&sg_bench_stopping, true);

    pthread_barrier_wait(&sg_bench_stopped);

    uint64_t requests = 0, body_bytes = 0;
    for (size_t i = 0; i < sg_bench_worker_count; ++i) {
        requests += sg_bench_workers[i].requests;
        body_bytes += sg_bench_workers[i].body_bytes;
    }
    fprintf(stderr, "sg-bench-h2o: stopped by signal %d after %llu requests, %llu body bytes\n", signo,
            (unsigned long long)requests, (unsigned long long)body_bytes);
    return 0;
}
