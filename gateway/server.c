/*
 * The HTTP server: listeners, event-loop threads and the shutdown sequence.
 *
 * Each loop thread has its own listening socket per address, bound to the same port with
 * SO_REUSEPORT, so the kernel spreads connections evenly over the loops (a shared fd lets the
 * first loop to wake take most of them). The first socket binds the configured port (0 picks an
 * ephemeral one) and the others bind whatever port it got.
 *
 * The server knows no feature: it starts, drains and disposes them through the feature table
 * (dispatch.c). Shutdown is: stop accepting and drain every loop (each feature answers what it
 * has parked), wait until commands, parked requests and event streams are done (bounded), stop
 * the loops.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "gateway_int.h"

typedef struct st_sg_control_t {
    h2o_multithread_message_t super;
    enum { SG_CONTROL_STOP_ACCEPTING, SG_CONTROL_EXIT } kind;
} sg_control_t;

static int open_listener(const sg_listen_conf_t *listen_conf, uint16_t port, struct sockaddr_storage *bound, char *err,
                         size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    int gai = getaddrinfo(listen_conf->host, service, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "listen %s: %s", listen_conf->host, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(fd, 1024) != 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        snprintf(err, errlen, "listen %s:%u: %s", listen_conf->host, (unsigned)port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    socklen_t len = sizeof(*bound);
    getsockname(fd, (struct sockaddr *)bound, &len);
    return fd;
}

static uint16_t port_of(const struct sockaddr_storage *sa)
{
    return ntohs(sa->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                           : ((const struct sockaddr_in *)sa)->sin_port);
}

static SSL_CTX *create_ssl_ctx(const sg_listen_conf_t *listen_conf, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, listen_conf->cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, listen_conf->key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        char ssl_err[256];
        ERR_error_string_n(ERR_get_error(), ssl_err, sizeof(ssl_err));
        snprintf(err, errlen, "listen %s: TLS with cert %s and key %s: %s", listen_conf->host, listen_conf->cert, listen_conf->key,
                 ssl_err);
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
}

static void on_control(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    sg_loop_t *loop = H2O_STRUCT_FROM_MEMBER(sg_loop_t, control, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        sg_control_t *control = H2O_STRUCT_FROM_MEMBER(sg_control_t, super.link, messages->next);
        h2o_linklist_unlink(&control->super.link);
        if (control->kind == SG_CONTROL_STOP_ACCEPTING) {
            sg_features_drain(loop);
            for (size_t i = 0; i < loop->n_listeners; ++i) {
                if (loop->listeners[i] != NULL) {
                    h2o_socket_read_stop(loop->listeners[i]);
                    h2o_socket_close(loop->listeners[i]);
                    loop->listeners[i] = NULL;
                }
            }
        }
        /* SG_CONTROL_EXIT: the flag was set before sending; waking the loop is the point. */
        free(control);
    }
}

static void send_control(sg_loop_t *loop, int kind)
{
    sg_control_t *control = sg_calloc(1, sizeof(*control));
    control->kind = kind;
    h2o_multithread_send_message(&loop->control, &control->super);
}

/* A stopped loop thread halts (waits forever) instead of returning: H2O 2.2.5 keeps per-thread
 * buffer caches (h2o_mem_alloc_recycle) that it cannot free, so a thread that ended would leave
 * them behind as leaks. A halted thread still owns them; the process exit that follows ends it. */
static pthread_mutex_t loops_mutex = PTHREAD_MUTEX_INITIALIZER;
static void init_loop_on_its_thread(sg_loop_t *loop);
static pthread_cond_t loops_cond = PTHREAD_COND_INITIALIZER;

static void *loop_main(void *arg)
{
    sg_loop_t *loop = arg;
    char name[16];
    snprintf(name, sizeof(name), "sg-loop-%zu", loop->index);
    sg_thread_name(name);
    init_loop_on_its_thread(loop);
    pthread_mutex_lock(&loops_mutex);
    loop->initialized = 1;
    pthread_cond_broadcast(&loops_cond);
    pthread_mutex_unlock(&loops_mutex);
    while (!atomic_load(&loop->exit_requested))
        h2o_evloop_run(loop->ctx.loop, INT32_MAX);
    pthread_mutex_lock(&loops_mutex);
    loop->halted = 1;
    pthread_cond_broadcast(&loops_cond);
    for (;;)
        pthread_cond_wait(&loops_cond, &loops_mutex);
    return NULL;
}

/* Everything H2O allocates for a loop must be allocated on that loop's thread: socket buffers
 * remember the thread-local prototype (h2o_socket_buffer_prototype) of the thread that made
 * them and recycle into it, so a context built on the main thread would have two loops sharing
 * the main thread's free lists. main() waits for every loop to report ready. */
/* The capacity H2O's buffers start with (h2o_socket_buffer_prototype: 8 KB in H2O 2.2.5). Every
 * HTTP/2 stream with a body holds one for its body until it is answered, most of it unused for the
 * small JSON bodies of commands: with 1 KB a waiting HTTP/2 request takes ~3 KiB less RSS (9.7 ->
 * 6.6 KiB at 10k streams, bench/README.md, memory). A larger body grows its buffer by doubling as
 * before. Socket reads reserve 4 KB (H2O's evloop), so a connection's input buffer becomes a plain
 * 4 KB allocation instead of a recycled 8 KB one: reads of at most the free room, growing with
 * the buffer. */
#define SG_H2O_BUFFER_BYTES 1024

static void init_loop_on_its_thread(sg_loop_t *loop)
{
    sg_server_t *server = loop->server;
    /* Thread-local, and read when a buffer is first allocated: set before this loop makes any. */
    h2o_socket_buffer_prototype._initial_buf.capacity = SG_H2O_BUFFER_BYTES;
    h2o_context_init(&loop->ctx, h2o_evloop_create(), &server->globalconf);
    h2o_multithread_register_receiver(loop->ctx.queue, &loop->control, on_control);
    sg_features_init_loop(loop);
    for (size_t l = 0; l < loop->n_listeners; ++l) {
        loop->accept_ctxs[l] =
            (h2o_accept_ctx_t){.ctx = &loop->ctx, .hosts = server->globalconf.hosts, .ssl_ctx = server->ssl_ctxs[l]};
        loop->listeners[l] = h2o_evloop_socket_create(loop->ctx.loop, loop->listen_fds[l], H2O_SOCKET_FLAG_DONT_READ);
        loop->listeners[l]->data = &loop->accept_ctxs[l];
        h2o_socket_read_start(loop->listeners[l], sg_conns_on_accept);
    }
}

h2o_timeout_t *sg_loop_wait_timeout(sg_loop_t *loop, int64_t ms)
{
    /* H2O 2.2.5 timeouts have one fixed duration each; waits vary per request (Prefer: wait),
     * so keep one per 100 ms step up to the longest max_timeout, created when first needed. */
    size_t step = ms <= 0 ? 0 : (size_t)((ms + 99) / 100);
    if (step >= loop->n_wait_timeouts)
        step = loop->n_wait_timeouts - 1;
    if (loop->wait_timeouts[step] == NULL) {
        loop->wait_timeouts[step] = sg_malloc(sizeof(h2o_timeout_t));
        h2o_timeout_init(loop->ctx.loop, loop->wait_timeouts[step], (uint64_t)step * 100);
    }
    return loop->wait_timeouts[step];
}

static void prepare_loop(sg_server_t *server, sg_loop_t *loop, size_t index)
{
    loop->server = server;
    loop->index = index;
    const sg_conf_t *conf = server->conf;
    int64_t longest = 60 * 1000; /* long-polls of GET /requests/{id} wait up to a minute */
    if (conf->limits.token_wait_max_ms > longest)
        longest = conf->limits.token_wait_max_ms;
    if (conf->limits.token_wait_ms > longest)
        longest = conf->limits.token_wait_ms;
    for (size_t i = 0; i < conf->n_routes; ++i)
        if (conf->routes[i].has_reply && conf->routes[i].reply.max_timeout_ms > longest)
            longest = conf->routes[i].reply.max_timeout_ms;
    loop->n_wait_timeouts = (size_t)((longest + 99) / 100) + 1;
    loop->wait_timeouts = sg_calloc(loop->n_wait_timeouts, sizeof(*loop->wait_timeouts));
    loop->n_listeners = server->conf->n_listen;
    loop->listeners = sg_calloc(loop->n_listeners, sizeof(*loop->listeners));
    loop->listen_fds = sg_calloc(loop->n_listeners, sizeof(*loop->listen_fds));
    loop->accept_ctxs = sg_calloc(loop->n_listeners, sizeof(*loop->accept_ctxs));
    for (size_t l = 0; l < loop->n_listeners; ++l)
        loop->listen_fds[l] = -1;
}

sg_server_t *sg_server_create(const sg_conf_t *conf, sg_bridge_t *bridge, char *err, size_t errlen)
{
    sg_server_t *server = sg_calloc(1, sizeof(*server));
    server->conf = conf;
    server->bridge = bridge;
    uint8_t random_bytes[20];
    if (sg_random_bytes(random_bytes, sizeof(random_bytes)) != 0) {
        snprintf(err, errlen, "cannot read random bytes for request ids: %s", strerror(errno));
        free(server);
        return NULL;
    }
    memcpy(&server->instance_id, random_bytes, 4);
    /* Without requests.secret, the deployment's own comes later (sg_gateway_on_secret). */
    if (conf->requests.secret != NULL)
        sg_gateway_on_secret(server, (const uint8_t *)conf->requests.secret, strlen(conf->requests.secret));
    char state_dir[4096];
    snprintf(state_dir, sizeof(state_dir), "%s/state", conf->data_dir);
    if ((server->store = sg_store_open(state_dir, err, errlen)) == NULL) {
        free(server);
        return NULL;
    }
    if ((server->router = sg_router_create(conf, err, errlen)) == NULL || sg_features_init_server(server, err, errlen) != 0)
        goto fail;

    h2o_config_init(&server->globalconf);
    server->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("streamgate"));
    /* One byte over the limit reaches our handler, which answers 413 itself; larger bodies are
     * refused by H2O before they are read, and respond.c rewrites that answer. */
    server->globalconf.max_request_entity_size = (size_t)conf->limits.body_bytes + 1;
    h2o_hostconf_t *hostconf = h2o_config_register_host(&server->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    if (sg_access_log_open(server, err, errlen) != 0 || sg_dispatch_register(server, hostconf, err, errlen) != 0)
        goto fail;

    server->ssl_ctxs = sg_calloc(conf->n_listen, sizeof(*server->ssl_ctxs));
    for (size_t i = 0; i < conf->n_listen; ++i)
        if (conf->listen[i].cert != NULL && (server->ssl_ctxs[i] = create_ssl_ctx(&conf->listen[i], err, errlen)) == NULL)
            goto fail;

    server->n_loops = (size_t)conf->threads;
    server->loops = sg_calloc(server->n_loops, sizeof(*server->loops));
    for (size_t i = 0; i < server->n_loops; ++i)
        prepare_loop(server, &server->loops[i], i);

    for (size_t l = 0; l < conf->n_listen; ++l) {
        uint16_t port = conf->listen[l].port;
        for (size_t i = 0; i < server->n_loops; ++i) {
            struct sockaddr_storage bound;
            int fd = open_listener(&conf->listen[l], port, &bound, err, errlen);
            if (fd < 0)
                goto fail;
            port = port_of(&bound);
            server->loops[i].listen_fds[l] = fd;
        }
    }
    return server;

fail:
    sg_server_destroy(server);
    sg_server_close_store(server); /* the caller never sees this server: nobody else closes it */
    return NULL;
}

void sg_server_set_tables(sg_server_t *server, struct st_sg_tables_t *tables, struct st_sg_materializer_t *materializer)
{
    server->tables = tables;
    server->materializer = materializer;
}

void sg_server_set_registry(sg_server_t *server, struct st_sg_registry_t *registry)
{
    server->registry = registry;
}

void sg_server_set_deployment(sg_server_t *server, struct st_sg_deployment_t *deployment)
{
    server->deployment = deployment;
}

void sg_server_set_placement(sg_server_t *server, struct st_sg_placement_t *placement)
{
    server->placement = placement;
}

sg_store_t *sg_server_store(sg_server_t *server)
{
    return server->store;
}

void sg_gateway_on_secret(void *ctx, const uint8_t *secret, size_t len)
{
    sg_server_t *server = ctx;
    sg_reqid_key_derive(&server->reqid_key, secret, len);
    atomic_store_explicit(&server->request_key_ready, 1, memory_order_release);
}

void sg_server_set_auth(sg_server_t *server, struct st_sg_auth_t *auth)
{
    server->auth = auth;
}

void sg_server_maintain(sg_server_t *server)
{
    char err[1024];
    size_t deleted = 0;
    /* Called every second: a failing sweep (a full disk; the sweep is also what reopens the
     * store) is logged when it starts failing, when its cause changes (why the reopen fails) and
     * when it works again, not every second in between; /readyz says why meanwhile. */
    int failing = sg_store_sweep(server->store, sg_now_ms(), 10000, &deleted, err, sizeof(err)) < 0;
    uint64_t cause = failing ? sg_log_cause_of(err) : 0;
    if (failing && cause != server->sweep_cause)
        sg_log_error("request store sweep: %s", err);
    else if (!failing && server->sweep_cause != 0)
        sg_log_info("request store sweep: works again");
    server->sweep_cause = cause;
}

void sg_server_close_store(sg_server_t *server)
{
    if (server == NULL)
        return;
    sg_store_close(server->store);
    server->store = NULL;
}

size_t sg_server_addresses(const sg_server_t *server, char *buf, size_t buflen)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t l = 0; l < server->conf->n_listen; ++l) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);
        char host[INET6_ADDRSTRLEN + 2] = "?";
        if (getsockname(server->loops[0].listen_fds[l], (struct sockaddr *)&sa, &len) != 0)
            continue;
        getnameinfo((struct sockaddr *)&sa, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST);
        int n = snprintf(buf + used, buflen - used, sa.ss_family == AF_INET6 ? "%s[%s]:%u\n" : "%s%s:%u\n",
                         server->ssl_ctxs[l] ? "https://" : "http://", host, (unsigned)port_of(&sa));
        if (n < 0 || (size_t)n >= buflen - used)
            break;
        used += (size_t)n;
    }
    return used;
}

int sg_server_start(sg_server_t *server, char *err, size_t errlen)
{
    for (size_t i = 0; i < server->n_loops; ++i) {
        if (pthread_create(&server->loops[i].thread, NULL, loop_main, &server->loops[i]) != 0) {
            snprintf(err, errlen, "cannot start event loop thread %zu", i);
            return -1;
        }
        server->loops[i].thread_started = 1;
    }
    /* Control messages may be sent only once every loop has registered its receivers. */
    pthread_mutex_lock(&loops_mutex);
    for (size_t i = 0; i < server->n_loops; ++i)
        while (!server->loops[i].initialized)
            pthread_cond_wait(&loops_cond, &loops_mutex);
    pthread_mutex_unlock(&loops_mutex);
    return 0;
}

void sg_server_stop_accepting(sg_server_t *server)
{
    atomic_store(&server->draining, 1);
    for (size_t i = 0; i < server->n_loops; ++i)
        send_control(&server->loops[i], SG_CONTROL_STOP_ACCEPTING);
}

/* Commands in flight, requests parked on any loop, event streams not yet ended. */
static long busy(sg_server_t *server)
{
    long count = atomic_load(&server->inflight) + atomic_load(&server->streams);
    for (size_t i = 0; i < server->n_loops; ++i)
        count += atomic_load(&server->loops[i].parked);
    return count;
}

long sg_server_wait_idle(sg_server_t *server, int64_t timeout_ms)
{
    int64_t until = sg_mono_ms() + timeout_ms;
    while (busy(server) > 0 && sg_mono_ms() < until)
        sg_sleep_ms(5);
    return busy(server);
}

void sg_server_stop(sg_server_t *server)
{
    for (size_t i = 0; i < server->n_loops; ++i) {
        sg_loop_t *loop = &server->loops[i];
        if (!loop->thread_started)
            continue;
        atomic_store(&loop->exit_requested, 1);
        send_control(loop, SG_CONTROL_EXIT);
        pthread_mutex_lock(&loops_mutex);
        while (!loop->halted)
            pthread_cond_wait(&loops_cond, &loops_mutex);
        pthread_mutex_unlock(&loops_mutex);
        loop->thread_started = 0;
    }
}

/* Loops, contexts and open connections are left to process exit: H2O 2.2.5 cannot dispose a
 * context that still has connections, and a server is destroyed only when the process ends.
 * Keeping them referenced here tells leak checkers they are still owned. */
static sg_server_t *retired_server;

void sg_server_destroy(sg_server_t *server)
{
    if (server == NULL)
        return;
    sg_server_stop(server);
    retired_server = server;
    for (size_t i = 0; server->ssl_ctxs != NULL && i < server->conf->n_listen; ++i)
        SSL_CTX_free(server->ssl_ctxs[i]);
    free(server->ssl_ctxs);
    server->ssl_ctxs = NULL;
    sg_features_dispose_server(server);
    sg_router_destroy(server->router);
    server->router = NULL;
}
