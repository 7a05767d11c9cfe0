/*
 * Client connections, below HTTP: how many there may be, accepting them, and the clients that
 * stop reading or leave. H2O 2.2.5 has none of this: it accepts until the process runs out of
 * descriptors (then each loop spins on a listener that stays readable), it writes to a client
 * that does not read for ever, and an HTTP/1 connection is not read while its request is
 * handled, so a client that closes is noticed only when the answer is written.
 *
 * - limits.connections (checked against RLIMIT_NOFILE at start, which is raised to its hard limit
 *   when needed): one server-wide count, taken before each accept. At the limit a few more
 *   connections are taken (SG_CONN_OVERFLOW) that answer only /healthz and /readyz and 503
 *   too-many-connections to anything else, then close; beyond those, and when accept fails for
 *   want of descriptors or memory, the loop stops reading its listeners (connections wait in the
 *   kernel's backlog) until one of its connections closes or SG_CONN_RETRY_MS passes.
 * - Every connection is tracked through its socket's on_close hook, which H2O leaves to its user
 *   for server sockets. Once a second each loop looks at its connections: one whose pending write
 *   has made no progress (the client acknowledged nothing) for limits.write_timeout, or that holds
 *   more than limits.queued_bytes written and not yet acknowledged by the client (TCP_INFO), is
 *   shut down (SO_LINGER 0 + shutdown): H2O's pending write then fails and H2O closes the
 *   connection itself, through its own error path, disposing its requests (their parks end, event
 *   streams are freed). Counted in streamgate_slow_clients_closed_total.
 * - While a request is parked on an HTTP/1 connection, the socket is read by a callback of ours:
 *   end of stream or an error means the client left, and is handed to H2O's own HTTP/1 read
 *   callback, which closes the connection (and disposes the request) as if it had been reading;
 *   data (a pipelined request) stops the watch and stays in the buffer for H2O. H2O's callback is
 *   a static function: each loop learns its address once, from a connection to itself made at
 *   start (capture_http1_read_cb). HTTP/2 needs none of this: H2O always reads an HTTP/2
 *   connection, and a reset stream or a closed connection disposes the request (the park's guard).
 * Loop threads only, but for the RLIMIT check (main thread, at start).
 */
#include <errno.h>
#include <linux/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "gateway_int.h" /* h2o.h first: h2o/http1.h needs its types */
#include "park.h"
#include <h2o/http1.h>
#include "respond.h"

#define SG_CONN_RESERVED_FDS 256 /* descriptors left for Kafka clients, RocksDB, listeners, loops */
#define SG_CONN_AUTO_MAX 16384   /* limits.connections: 0 takes what RLIMIT_NOFILE allows, up to this */
#define SG_CONN_OVERFLOW 16      /* connections beyond the limit that still answer health probes */
#define SG_CONN_RETRY_MS 100     /* a paused loop tries its listeners again after this */
#define SG_CONN_SWEEP_MS 1000    /* how often each loop looks for clients that stopped reading */

typedef struct st_sg_conn_t {
    h2o_linklist_t link; /* in the loop's list */
    struct st_sg_conns_loop_t *state;
    h2o_socket_t *sock;
    sg_park_t *parked;       /* HTTP/1: the parked request whose socket is watched for the client leaving */
    uint64_t acked;          /* bytes the client acknowledged, at the last sweep */
    size_t written;          /* sock->bytes_written at the last sweep */
    int64_t stalled_ms;      /* how long a pending write has made no progress */
    uint32_t input_at_watch; /* sock->input->size when the watch began (a request head and body: < 4 GB) */
    unsigned overflow : 1;   /* beyond limits.connections: health probes only */
    unsigned closing : 1;    /* shut down for not reading; H2O closes it */
    /* 72 bytes: one 80-byte malloc chunk per connection, i.e. per waiting HTTP/1 request */
} sg_conn_t;

struct st_sg_conns_loop_t {
    sg_loop_t *loop;
    h2o_linklist_t conns;
    h2o_timeout_t sweep_timeout, retry_timeout;
    h2o_timeout_entry_t sweep, retry;
    int paused;
};

/* H2O's HTTP/1 read callback (lib/http1.c reqread_on_read): the same function for every HTTP/1
 * connection of every loop. */
static _Atomic(h2o_socket_cb) http1_read_cb;

/* --- counting ----------------------------------------------------------------------------------- */

static int take(atomic_long *count, long limit)
{
    long n = atomic_load(count);
    do {
        if (n >= limit)
            return 0;
    } while (!atomic_compare_exchange_weak(count, &n, n + 1));
    return 1;
}

static int init_server(sg_server_t *server, char *err, size_t errlen)
{
    long wanted = server->conf->limits.connections;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return sg_errf(err, errlen, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
    rlim_t need = (rlim_t)(wanted > 0 ? wanted : SG_CONN_AUTO_MAX) + SG_CONN_RESERVED_FDS + SG_CONN_OVERFLOW;
    if (rl.rlim_cur < need) {
        struct rlimit raised = {.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = raised.rlim_cur;
    }
    long room = rl.rlim_cur > (rlim_t)(SG_CONN_RESERVED_FDS + SG_CONN_OVERFLOW)
                    ? (long)(rl.rlim_cur - SG_CONN_RESERVED_FDS - SG_CONN_OVERFLOW)
                    : 0;
    if (wanted > room)
        return sg_errf(err, errlen,
                       "limits.connections (%ld) needs %ld file descriptors; RLIMIT_NOFILE allows %llu (raise it, e.g. "
                       "ulimit -n, or lower limits.connections)",
                       wanted, wanted + SG_CONN_RESERVED_FDS + SG_CONN_OVERFLOW, (unsigned long long)rl.rlim_cur);
    if (wanted == 0 && room < 16)
        return sg_errf(err, errlen,
                       "RLIMIT_NOFILE (%llu) leaves no file descriptors for client connections (%d are kept "
                       "for Kafka, RocksDB and the listeners)",
                       (unsigned long long)rl.rlim_cur, SG_CONN_RESERVED_FDS + SG_CONN_OVERFLOW);
    server->max_connections = wanted > 0 ? wanted : room < SG_CONN_AUTO_MAX ? room : SG_CONN_AUTO_MAX;
    sg_log_info("serving up to %ld client connections (RLIMIT_NOFILE %llu)", server->max_connections,
                (unsigned long long)rl.rlim_cur);
    return 0;
}

/* --- accepting ---------------------------------------------------------------------------------- */

static void set_listening(struct st_sg_conns_loop_t *state, int on)
{
    sg_loop_t *loop = state->loop;
    for (size_t i = 0; i < loop->n_listeners; ++i) {
        if (loop->listeners[i] == NULL)
            continue;
        if (on)
            h2o_socket_read_start(loop->listeners[i], sg_conns_on_accept);
        else
            h2o_socket_read_stop(loop->listeners[i]);
    }
}

static void pause_accepting(struct st_sg_conns_loop_t *state)
{
    if (state->paused)
        return;
    state->paused = 1;
    atomic_fetch_add(&state->loop->server->accept_pauses, 1);
    set_listening(state, 0);
    if (!h2o_timeout_is_linked(&state->retry))
        h2o_timeout_link(state->loop->ctx.loop, &state->retry_timeout, &state->retry);
}

static void resume_accepting(struct st_sg_conns_loop_t *state)
{
    if (!state->paused || sg_server_is_draining(state->loop->server))
        return;
    state->paused = 0;
    if (h2o_timeout_is_linked(&state->retry))
        h2o_timeout_unlink(&state->retry);
    set_listening(state, 1); /* the backlog, if any, makes the listener readable again */
}

static void on_retry(h2o_timeout_entry_t *entry)
{
    resume_accepting(H2O_STRUCT_FROM_MEMBER(struct st_sg_conns_loop_t, retry, entry));
}

static void on_conn_close(void *data)
{
    sg_conn_t *conn = data;
    struct st_sg_conns_loop_t *state = conn->state;
    sg_server_t *server = state->loop->server;
    h2o_linklist_unlink(&conn->link);
    atomic_fetch_sub(conn->overflow ? &server->overflow_connections : &server->connections, 1);
    free(conn);
    resume_accepting(state);
}

static void track(struct st_sg_conns_loop_t *state, h2o_socket_t *sock, int overflow)
{
    sg_conn_t *conn = sg_calloc(1, sizeof(*conn));
    conn->state = state;
    conn->sock = sock;
    conn->overflow = overflow;
    sock->on_close.cb = on_conn_close;
    sock->on_close.data = conn;
    h2o_linklist_insert(&state->conns, &conn->link);
}

void sg_conns_on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_accept_ctx_t *accept_ctx = listener->data;
    sg_loop_t *loop = (sg_loop_t *)accept_ctx->ctx;
    sg_server_t *server = loop->server;
    /* A few at a time, so that one loop cannot starve its own requests. */
    for (int i = 0; i < 16; ++i) {
        int overflow = 0;
        if (!take(&server->connections, server->max_connections)) {
            if (!take(&server->overflow_connections, SG_CONN_OVERFLOW)) {
                pause_accepting(loop->conns);
                return;
            }
            overflow = 1;
        }
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL) {
            int error = errno;
            atomic_fetch_sub(overflow ? &server->overflow_connections : &server->connections, 1);
            /* Out of descriptors or memory: the listener stays readable, and accepting again at
             * once would spin. Wait for a connection to close, or a moment. */
            if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM)
                pause_accepting(loop->conns);
            return;
        }
        track(loop->conns, sock, overflow);
        h2o_accept(accept_ctx, sock);
    }
}

static sg_conn_t *conn_of(h2o_req_t *req)
{
    if (req->conn->callbacks->get_socket == NULL)
        return NULL;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    return sock != NULL && sock->on_close.cb == on_conn_close ? sock->on_close.data : NULL;
}

int sg_conns_refuse_overflow(h2o_req_t *req, const char *path, size_t path_len)
{
    sg_conn_t *conn = conn_of(req);
    if (conn == NULL || !conn->overflow)
        return 0;
    req->http1_is_persistent = 0; /* one answer, then the connection gives its place back */
    if (h2o_memis(path, path_len, H2O_STRLIT("/healthz")) || h2o_memis(path, path_len, H2O_STRLIT("/readyz")))
        return 0;
    sg_server_t *server = sg_loop_of(req)->server;
    atomic_fetch_add(&server->connections_refused, 1);
    sg_problem(req, SG_PROBLEM_TOO_MANY_CONNECTIONS, NULL, "limits.connections (%ld) client connections are open; retry shortly",
               server->max_connections);
    return 1;
}

/* --- clients that stop reading ------------------------------------------------------------------- */

/* Bytes of this connection the client has acknowledged (TCP_INFO), or -1 when unknown. */
static int64_t acked_bytes(h2o_socket_t *sock)
{
    struct tcp_info info;
    socklen_t len = sizeof(info);
    memset(&info, 0, sizeof(info));
    int fd = h2o_socket_get_fd(sock);
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(info.tcpi_bytes_acked))
        return -1;
    return (int64_t)info.tcpi_bytes_acked;
}

/* Shuts the connection down under H2O, which notices (its pending write fails, or it reads the
 * end of the stream) and closes it; SO_LINGER 0 then drops what the kernel still holds for the
 * client with a reset. */
static void close_slow(sg_conn_t *conn, const char *why)
{
    int fd = h2o_socket_get_fd(conn->sock);
    conn->closing = 1;
    atomic_fetch_add(&conn->state->loop->server->slow_clients_closed, 1);
    sg_log_debug("closing a connection whose client does not read: %s", why);
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
    shutdown(fd, SHUT_RDWR);
}

void sg_conns_close_stalled(h2o_req_t *req, const char *why)
{
    sg_conn_t *conn = conn_of(req);
    if (conn != NULL && !conn->closing)
        close_slow(conn, why);
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    struct st_sg_conns_loop_t *state = H2O_STRUCT_FROM_MEMBER(struct st_sg_conns_loop_t, sweep, entry);
    const sg_conf_t *conf = state->loop->server->conf;
    for (h2o_linklist_t *at = state->conns.next; at != &state->conns; at = at->next) {
        sg_conn_t *conn = H2O_STRUCT_FROM_MEMBER(sg_conn_t, link, at);
        int64_t acked = conn->closing ? -1 : acked_bytes(conn->sock);
        if (acked < 0)
            continue;
        size_t written = conn->sock->bytes_written;
        int writing = conn->sock->_cb.write != NULL;
        /* No progress: a write is pending, nothing new was written and the client acknowledged
         * nothing since the last look. */
        if (writing && (uint64_t)acked == conn->acked && written == conn->written)
            conn->stalled_ms += SG_CONN_SWEEP_MS;
        else
            conn->stalled_ms = 0;
        conn->acked = (uint64_t)acked;
        conn->written = written;
        /* Written and not acknowledged: in H2O's buffers, the kernel's, and in flight (TLS counts
         * the plain text written against the records acknowledged: a slight underestimate). */
        uint64_t queued = written > (uint64_t)acked ? written - (uint64_t)acked : 0;
        if (conn->stalled_ms >= conf->limits.write_timeout_ms)
            close_slow(conn, "limits.write_timeout");
        else if (queued > conf->limits.queued_bytes)
            close_slow(conn, "limits.queued_bytes");
    }
    h2o_timeout_link(state->loop->ctx.loop, &state->sweep_timeout, &state->sweep);
}

/* --- HTTP/1 clients that leave while their request is parked ------------------------------------ */

static void on_parked_read(h2o_socket_t *sock, const char *err)
{
    sg_conn_t *conn = sock->on_close.data;
    if (err == NULL) {
        if (sock->input->size > conn->input_at_watch) {
            /* A pipelined request: H2O reads it once this one is answered. */
            h2o_socket_read_stop(sock);
            conn->parked = NULL;
        }
        return;
    }
    /* The client closed its side, or the connection failed: what H2O's HTTP/1 connection does
     * when it reads that, it does now (close the connection, dispose the request). */
    conn->parked = NULL;
    atomic_fetch_add(&conn->state->loop->server->clients_gone, 1);
    h2o_socket_read_stop(sock);
    atomic_load (&http1_read_cb)(sock, err);
}

void sg_conns_watch_parked(sg_park_t *park)
{
    h2o_req_t *req = park->req;
    if (req->version >= 0x200 || atomic_load(&http1_read_cb) == NULL)
        return;
    sg_conn_t *conn = conn_of(req);
    /* Only while H2O does not read the socket itself (it does not while a request is handled). */
    if (conn == NULL || conn->parked != NULL || conn->sock->_cb.read != NULL)
        return;
    conn->parked = park;
    conn->input_at_watch = (uint32_t)conn->sock->input->size;
    h2o_socket_read_start(conn->sock, on_parked_read);
}

void sg_conns_unwatch_parked(sg_park_t *park)
{
    sg_conn_t *conn = park->req != NULL ? conn_of(park->req) : NULL;
    if (conn == NULL || conn->parked != park)
        return;
    conn->parked = NULL;
    if (conn->sock->_cb.read == on_parked_read)
        h2o_socket_read_stop(conn->sock);
}

/* An HTTP/1 connection to ourselves, over a socket pair: H2O starts reading it with its HTTP/1
 * read callback, whose address is what we want. Closing our end makes H2O close its own. */
static void capture_http1_read_cb(sg_loop_t *loop)
{
    if (atomic_load(&http1_read_cb) != NULL)
        return;
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        sg_log_warn("socketpair: %s (clients leaving parked HTTP/1 requests are noticed when answered)", strerror(errno));
        return;
    }
    h2o_socket_t *sock = h2o_evloop_socket_create(loop->ctx.loop, fds[0], 0);
    h2o_accept_ctx_t accept_ctx = {.ctx = &loop->ctx, .hosts = loop->server->globalconf.hosts};
    struct timeval now;
    gettimeofday(&now, NULL);
    h2o_http1_accept(&accept_ctx, sock, now);
    atomic_store(&http1_read_cb, sock->_cb.read);
    close(fds[1]);
}

static void init_loop(sg_loop_t *loop)
{
    struct st_sg_conns_loop_t *state = sg_calloc(1, sizeof(*state));
    state->loop = loop;
    h2o_linklist_init_anchor(&state->conns);
    h2o_timeout_init(loop->ctx.loop, &state->sweep_timeout, SG_CONN_SWEEP_MS);
    h2o_timeout_init(loop->ctx.loop, &state->retry_timeout, SG_CONN_RETRY_MS);
    state->sweep.cb = on_sweep;
    state->retry.cb = on_retry;
    h2o_timeout_link(loop->ctx.loop, &state->sweep_timeout, &state->sweep);
    loop->conns = state;
    capture_http1_read_cb(loop);
}

const sg_feature_t sg_feature_connections = {.init_server = init_server, .init_loop = init_loop};
