/*
 * sg-bench-client: a deterministic HTTP/1.1 load client for the benches that need an exact
 * request count or requests that differ per request, which neither wrk (no fixed count) nor
 * h2load (one body for all) gives. Two modes:
 *
 *  - count (default): C keep-alive connections, closed loop (one request in flight each), until
 *    exactly N requests have been answered. The path and body may hold {seq} (the request's
 *    number, 8 digits, so every body has the same length) and {key} (a key drawn below --keys by
 *    a generator seeded with --seed, 7 digits: the same sequence in every run). The instruction
 *    counting suite runs the servers under callgrind and divides by N, so N must be exact.
 *  - hold (--hold): C connections, each sends one request and then waits; "held C" is printed
 *    on stdout once every request is written, and the client stays until SIGTERM/SIGINT or
 *    --hold-seconds, counting answers. The memory suite reads the server's RSS meanwhile.
 *    Beyond ~28k connections the source port range of one address runs out: --hold spreads the
 *    connections over source addresses 127.0.0.1, .2, ... (loopback targets only).
 *
 * One thread, one epoll. Responses are parsed just enough to frame them: the status line, then
 * Content-Length or chunked transfer coding; anything else is an error. No TLS, no pipelining.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SG_CLIENT_MAX_HEADERS 16
#define SG_CLIENT_READ_MAX (1 << 20)
#define SG_CLIENT_PER_SOURCE 25000

typedef enum { SG_CONN_IDLE, SG_CONN_WRITING, SG_CONN_READING, SG_CONN_HELD } sg_conn_state_t;

typedef struct st_sg_client_conn_t {
    int fd;
    sg_conn_state_t state;
    char *out;
    size_t out_len, out_off;
    char *in;
    size_t in_len, in_cap;
} sg_client_conn_t;

/* What every request is made of; {seq} and {key} are filled in per request. */
static const char *method = "GET";
static const char *path_template = "/";
static const char *body_template;
static const char *header_lines[SG_CLIENT_MAX_HEADERS];
static size_t header_count;
static char host_header[128];
static uint64_t key_space = 1000000;
static uint64_t rng_state;

static uint64_t seq_base;
static uint64_t sent, answered, failed, status_2xx, status_other;
static volatile sig_atomic_t stop_requested;

static void on_signal(int signo)
{
    (void)signo;
    stop_requested = 1;
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL) {
        fprintf(stderr, "sg-bench-client: out of memory\n");
        abort();
    }
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --sweep: every key in turn (0, 1, ... K-1, 0, ...) instead of draws. */
static bool sweep;
static uint64_t sweep_next;

/* xorshift64*: the same keys in the same order for a given --seed, whatever the machine. */
static uint64_t next_key(void)
{
    if (sweep)
        return sweep_next++ % key_space;
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (rng_state * 2685821657736338717ULL) % key_space;
}

/* Appends template with {seq} and {key} expanded to buf (caller-sized: at most 2x + 64). */
static size_t expand(char *buf, const char *template, uint64_t seq, uint64_t key)
{
    size_t len = 0;
    for (const char *p = template; *p != '\0';) {
        if (strncmp(p, "{seq}", 5) == 0) {
            len += (size_t)sprintf(buf + len, "%08llu", (unsigned long long)(seq % 100000000ULL));
            p += 5;
        } else if (strncmp(p, "{key}", 5) == 0) {
            len += (size_t)sprintf(buf + len, "%07llu", (unsigned long long)key);
            p += 5;
        } else {
            buf[len++] = *p++;
        }
    }
    buf[len] = '\0';
    return len;
}

static size_t expanded_max(const char *template)
{
    return template == NULL ? 1 : strlen(template) * 2 + 64;
}

/* Builds the next request into conn->out. */
static void build_request(sg_client_conn_t *conn, uint64_t seq)
{
    seq += seq_base;
    bool needs_key = strstr(path_template, "{key}") != NULL || (body_template != NULL && strstr(body_template, "{key}") != NULL);
    uint64_t key = needs_key ? next_key() : 0;
    char *path = xmalloc(expanded_max(path_template));
    char *body = xmalloc(expanded_max(body_template));
    size_t path_len = expand(path, path_template, seq, key);
    size_t body_len = body_template != NULL ? expand(body, body_template, seq, key) : 0;
    size_t cap = path_len + body_len + 512 + strlen(host_header);
    for (size_t i = 0; i < header_count; ++i)
        cap += strlen(header_lines[i]) + 2;
    free(conn->out);
    conn->out = xmalloc(cap);
    size_t len = (size_t)sprintf(conn->out, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, host_header);
    for (size_t i = 0; i < header_count; ++i)
        len += (size_t)sprintf(conn->out + len, "%s\r\n", header_lines[i]);
    if (body_template != NULL)
        len += (size_t)sprintf(conn->out + len, "Content-Length: %zu\r\n", body_len);
    len += (size_t)sprintf(conn->out + len, "\r\n");
    memcpy(conn->out + len, body, body_len);
    conn->out_len = len + body_len;
    conn->out_off = 0;
    conn->in_len = 0;
    free(path);
    free(body);
}

/* Returns the length of one complete response at the start of in, 0 when more bytes are
 * needed, -1 when it cannot be framed. Sets *status. */
static long response_length(const char *in, size_t len, int *status)
{
    const char *end = memmem(in, len, "\r\n\r\n", 4);
    if (end == NULL)
        return len > 65536 ? -1 : 0;
    size_t head_len = (size_t)(end - in) + 4;
    if (len < 12 || memcmp(in, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(in + 9);
    long content_length = -1;
    bool chunked = false;
    const char *line = (const char *)memchr(in, '\n', head_len) + 1;
    while (line < end) {
        const char *line_end = (const char *)memchr(line, '\n', (size_t)(end - line) + 2);
        if (strncasecmp(line, "content-length:", 15) == 0)
            content_length = strtol(line + 15, NULL, 10);
        else if (strncasecmp(line, "transfer-encoding:", 18) == 0 && memmem(line, (size_t)(line_end - line), "chunked", 7) != NULL)
            chunked = true;
        line = line_end + 1;
    }
    if (*status == 204 || *status == 304 || (*status >= 100 && *status < 200))
        return (long)head_len;
    if (content_length >= 0)
        return len >= head_len + (size_t)content_length ? (long)(head_len + (size_t)content_length) : 0;
    if (!chunked)
        return -1;
    size_t off = head_len;
    for (;;) {
        const char *crlf = memmem(in + off, len - off, "\r\n", 2);
        if (crlf == NULL)
            return 0;
        long chunk = strtol(in + off, NULL, 16);
        off = (size_t)(crlf - in) + 2;
        if (chunk == 0) {
            /* No trailers expected: the final CRLF. */
            return len >= off + 2 ? (long)(off + 2) : 0;
        }
        if (len < off + (size_t)chunk + 2)
            return 0;
        off += (size_t)chunk + 2;
    }
}

static int open_conn(const struct sockaddr_in *target, uint32_t source_host, int epfd, sg_client_conn_t *conn)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (source_host != 0) {
        struct sockaddr_in source = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(source_host)};
        if (bind(fd, (struct sockaddr *)&source, sizeof(source)) != 0) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (const struct sockaddr *)target, sizeof(*target)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = conn};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    conn->fd = fd;
    return 0;
}

static void close_conn(int epfd, sg_client_conn_t *conn)
{
    if (conn->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, conn->fd, NULL);
        close(conn->fd);
    }
    conn->fd = -1;
    conn->state = SG_CONN_IDLE;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sg-bench-client --url http://HOST:PORT/PATH [--method M] [--body TEXT] [--header 'N: V' ...]\n"
            "                       [--connections C] [--requests N] [--keys K] [--seed S | --sweep] [--first SEQ] [--json]\n"
            "                       [--hold [--hold-seconds S]]\n"
            "  PATH and TEXT may hold {seq} (request number from --first, 8 digits) and {key} (seeded draw below K, 7 digits;\n"
            "  --sweep: 0, 1, ... K-1 in turn, e.g. to read every row of a table once).\n"
            "  count mode: exactly N answered requests over C keep-alive connections (defaults 1000, 1).\n"
            "  hold mode: C connections, one request each, never read; prints 'held C' when all are written.\n");
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    long long connections = 1, requests = 1000, hold_seconds = 0, first = 0;
    unsigned long long seed = 1;
    bool hold = false, json = false;
    static const struct option options[] = {
        {"url", required_argument, NULL, 'u'},
        {"method", required_argument, NULL, 'm'},
        {"body", required_argument, NULL, 'b'},
        {"header", required_argument, NULL, 'H'},
        {"connections", required_argument, NULL, 'c'},
        {"requests", required_argument, NULL, 'n'},
        {"keys", required_argument, NULL, 'k'},
        {"seed", required_argument, NULL, 's'},
        {"hold", no_argument, NULL, 'o'},
        {"hold-seconds", required_argument, NULL, 'S'},
        {"json", no_argument, NULL, 'j'},
        {"first", required_argument, NULL, 'f'},
        {"sweep", no_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "u:m:b:H:c:n:k:s:oS:jf:wh", options, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 'u': url = optarg; break;
        case 'm': method = optarg; break;
        case 'b': body_template = optarg; break;
        case 'H':
            if (header_count == SG_CLIENT_MAX_HEADERS || strchr(optarg, ':') == NULL) {
                fprintf(stderr, "sg-bench-client: --header wants 'NAME: VALUE' (at most %d)\n", SG_CLIENT_MAX_HEADERS);
                return 2;
            }
            header_lines[header_count++] = optarg;
            break;
        case 'c': connections = strtoll(optarg, &end, 10); break;
        case 'n': requests = strtoll(optarg, &end, 10); break;
        case 'k': key_space = strtoull(optarg, &end, 10); break;
        case 's': seed = strtoull(optarg, &end, 10); break;
        case 'S': hold_seconds = strtoll(optarg, &end, 10); break;
        case 'o': hold = true; break;
        case 'f': first = strtoll(optarg, &end, 10); break;
        case 'j': json = true; break;
        case 'w': sweep = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (end != NULL && *end != '\0') {
            fprintf(stderr, "sg-bench-client: -%c wants a whole number\n", opt);
            return 2;
        }
    }
    if (url == NULL || optind != argc || connections < 1 || connections > 1000000 || requests < 1 || key_space < 1 ||
        hold_seconds < 0 || first < 0) {
        usage(stderr);
        return 2;
    }
    /* http://A.B.C.D:PORT/PATH: loopback benches only, so no name resolution. */
    char host[64];
    unsigned port = 0;
    int path_at = 0;
    if (sscanf(url, "http://%63[0-9.]:%u%n", host, &port, &path_at) != 2 || port == 0 || port > 65535) {
        fprintf(stderr, "sg-bench-client: --url wants http://A.B.C.D:PORT/PATH, got '%s'\n", url);
        return 2;
    }
    if (url[path_at] == '/')
        path_template = url + path_at;
    snprintf(host_header, sizeof(host_header), "%s:%u", host, port);
    struct sockaddr_in target = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &target.sin_addr) != 1) {
        fprintf(stderr, "sg-bench-client: bad address '%s'\n", host);
        return 2;
    }
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    seq_base = (uint64_t)first;
    if (!hold && connections > requests)
        connections = requests;

    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < (rlim_t)connections + 64) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
        if (nofile.rlim_cur < (rlim_t)connections + 64) {
            fprintf(stderr, "sg-bench-client: %lld connections need more open files than the limit (%llu)\n", connections,
                    (unsigned long long)nofile.rlim_cur);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    int epfd = epoll_create1(EPOLL_CLOEXEC);
    sg_client_conn_t *conns = calloc((size_t)connections, sizeof(*conns));
    if (epfd < 0 || conns == NULL) {
        fprintf(stderr, "sg-bench-client: setup failed\n");
        return 1;
    }
    uint32_t loopback_base = ntohl(target.sin_addr.s_addr);
    bool spread_sources = hold && connections > SG_CLIENT_PER_SOURCE && (loopback_base >> 24) == 127;
    double start = now_s();
    long long open_failures = 0;
    for (long long i = 0; i < connections; ++i) {
        conns[i].fd = -1;
        uint32_t source = spread_sources ? (127u << 24) + 1 + (uint32_t)(i / SG_CLIENT_PER_SOURCE) : 0;
        if (open_conn(&target, source, epfd, &conns[i]) != 0) {
            open_failures++;
            continue;
        }
        build_request(&conns[i], (uint64_t)sent++);
        conns[i].state = SG_CONN_WRITING;
    }
    if (open_failures > 0) {
        fprintf(stderr, "sg-bench-client: %lld of %lld connections failed to open: %s\n", open_failures, connections,
                strerror(errno));
        return 1;
    }

    long long written = 0;
    bool held_printed = false;
    struct epoll_event events[256];
    while (!stop_requested) {
        if (!hold && answered + failed >= (uint64_t)requests)
            break;
        if (hold && !held_printed && written == connections) {
            printf("held %lld\n", connections);
            fflush(stdout);
            held_printed = true;
        }
        if (hold && held_printed && hold_seconds > 0 && now_s() - start >= (double)hold_seconds)
            break;
        int n = epoll_wait(epfd, events, 256, 100);
        if (n < 0 && errno != EINTR)
            break;
        for (int e = 0; e < n; ++e) {
            sg_client_conn_t *conn = events[e].data.ptr;
            if (conn->fd < 0)
                continue;
            if (conn->state == SG_CONN_WRITING && (events[e].events & EPOLLOUT)) {
                while (conn->out_off < conn->out_len) {
                    ssize_t w = write(conn->fd, conn->out + conn->out_off, conn->out_len - conn->out_off);
                    if (w <= 0)
                        break;
                    conn->out_off += (size_t)w;
                }
                if (conn->out_off == conn->out_len) {
                    conn->state = hold ? SG_CONN_HELD : SG_CONN_READING;
                    written++;
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = conn};
                    epoll_ctl(epfd, EPOLL_CTL_MOD, conn->fd, &ev);
                }
            }
            if (!(events[e].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                continue;
            /* Read what is there; frame every complete response. */
            bool closed = false;
            for (;;) {
                if (conn->in_cap - conn->in_len < 16384) {
                    size_t cap = conn->in_cap == 0 ? 32768 : conn->in_cap * 2;
                    if (cap > SG_CLIENT_READ_MAX) {
                        closed = true;
                        break;
                    }
                    char *in = realloc(conn->in, cap);
                    if (in == NULL)
                        abort();
                    conn->in = in;
                    conn->in_cap = cap;
                }
                ssize_t r = read(conn->fd, conn->in + conn->in_len, conn->in_cap - conn->in_len);
                if (r > 0) {
                    conn->in_len += (size_t)r;
                    continue;
                }
                if (r == 0 || (errno != EAGAIN && errno != EINTR))
                    closed = true;
                break;
            }
            int status = 0;
            long len = conn->in_len > 0 ? response_length(conn->in, conn->in_len, &status) : 0;
            if (len > 0) {
                answered++;
                if (status >= 200 && status < 300)
                    status_2xx++;
                else
                    status_other++;
                if (hold) {
                    conn->in_len = 0;
                } else if (sent < (uint64_t)requests && !closed) {
                    build_request(conn, (uint64_t)sent++);
                    conn->state = SG_CONN_WRITING;
                    struct epoll_event ev = {.events = EPOLLOUT | EPOLLRDHUP, .data.ptr = conn};
                    epoll_ctl(epfd, EPOLL_CTL_MOD, conn->fd, &ev);
                } else {
                    close_conn(epfd, conn);
                    closed = false;
                    /* The server closed after a complete answer: open a fresh connection. */
                    if (sent < (uint64_t)requests && open_conn(&target, 0, epfd, conn) == 0) {
                        build_request(conn, (uint64_t)sent++);
                        conn->state = SG_CONN_WRITING;
                    }
                }
            } else if (len < 0 || closed) {
                failed++;
                close_conn(epfd, conn);
                if (!hold && sent < (uint64_t)requests && open_conn(&target, 0, epfd, conn) == 0) {
                    build_request(conn, (uint64_t)sent++);
                    conn->state = SG_CONN_WRITING;
                }
            }
        }
    }
    double seconds = now_s() - start;
    if (json)
        printf("{\"tool\":\"sg-bench-client\",\"mode\":\"%s\",\"connections\":%lld,\"sent\":%llu,\"answered\":%llu,"
               "\"status_2xx\":%llu,\"status_other\":%llu,\"failed\":%llu,\"seconds\":%.3f,\"rps\":%.1f}\n",
               hold ? "hold" : "count", connections, (unsigned long long)sent, (unsigned long long)answered,
               (unsigned long long)status_2xx, (unsigned long long)status_other, (unsigned long long)failed, seconds,
               seconds > 0 ? (double)answered / seconds : 0.0);
    else
        printf("sent %llu, answered %llu (2xx %llu, other %llu), failed %llu, %.3f s, %.1f req/s\n", (unsigned long long)sent,
               (unsigned long long)answered, (unsigned long long)status_2xx, (unsigned long long)status_other,
               (unsigned long long)failed, seconds, seconds > 0 ? (double)answered / seconds : 0.0);
    if (hold)
        return held_printed ? 0 : 1;
    return answered == (uint64_t)requests && failed == 0 ? 0 : 1;
}
