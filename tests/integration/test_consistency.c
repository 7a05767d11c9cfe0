/*
 * The consistency checker (DESIGN §2.4): two gateway processes on one `streamgate cluster`, both
 * materializing the same table from a 4-partition topic, and concurrent client threads that
 * write through either gateway and read through either, checking the token guarantees as they go:
 *
 * - write -> read-with-token: a PUT's Consistency-Token, carried to a gateway (often the other
 *   one), reads the write itself (a key has one writer thread that writes it only after its
 *   previous write was acknowledged, so offset order is seq order);
 * - read -> read-with-token (monotonic reads): the first answer's token, carried to either
 *   gateway, never reads an older seq, a 404 after a 200, or an earlier Stream-Time;
 * - session: each thread merges every token it receives into one session token and sends it with
 *   its session reads; they must never go backwards for any key the thread has seen, and each
 *   answer's token covers the token sent.
 *
 * Each thread keeps one HTTP/1.1 keep-alive connection per gateway (a small client of its own, so
 * ~30k requests need no new connections). 503 not-caught-up answers are not violations (the
 * gateway refused rather than answer from the past) but are counted and must stay rare.
 *
 * Built a second time with SG_SCALE_CHECK (test_scale_consistency; DESIGN §8): three instances of
 * one deployment share a `placement: partitioned` table (standbys 1), so most reads are forwarded
 * to the key's owner, and while the threads run one instance is SIGKILLed, later restarted on its
 * data, and a fourth joins. A gateway that is down (no answer) and 503 owner-unavailable,
 * partition-moved or not-ready are refusals, not violations; they are counted and bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"
#include "sg_token.h"

#ifdef SG_SCALE_CHECK
#define TOPIC "sc.kv"
#define PARTITIONS 12
#define N_GATEWAYS 4 /* three at the start, the fourth joins */
#define OPS_PER_THREAD 1500 /* 12,000 operations at least: the threads go on until the churn is over */
#define RUN_DEADLINE_MS 150000
#define CHURN_KILL_MS 6000     /* after the start: SIGKILL gateway 2 */
#define CHURN_RESTART_MS 16000 /* start it again on its data */
#define CHURN_JOIN_MS 28000    /* a fourth instance joins */
#else
#define TOPIC "cs.kv"
#define PARTITIONS 4
#define N_GATEWAYS 2
#define OPS_PER_THREAD 4000 /* 32,000 operations in all, unless the deadline stops them */
#define RUN_DEADLINE_MS 60000 /* a thread stops early past this (at least MIN_OPS must be done) */
#endif
#define N_THREADS 8
#define KEYS_PER_THREAD 4
#define N_KEYS (N_THREADS * KEYS_PER_THREAD)
#define MIN_OPS 10000
#define IO_DEADLINE_MS 30000  /* one request/response, including a token wait */
#define MAX_REPORTED 10

static sg_test_proc_t cluster;
static sg_test_proc_t gateways[N_GATEWAYS];
static atomic_int alive[N_GATEWAYS];       /* set once a gateway is ready, cleared before it is killed */
static atomic_int incarnation[N_GATEWAYS]; /* bumped when a gateway is killed: its connections are dead */
static atomic_int churn_done;

/* --- a keep-alive HTTP/1.1 client ---------------------------------------------------------- */

typedef struct {
    const sg_test_proc_t *gw;
    int fd;
    char buf[65536];
    size_t len;     /* bytes in buf */
    unsigned opens; /* connections opened: 1 unless the gateway closed one */
    int incarnation; /* of the gateway process it is connected to */
} conn_t;

typedef struct {
    int status;
    char token[2048]; /* Consistency-Token, "" when absent */
    int has_stream_time;
    int64_t stream_time;
    char body[4096];
    size_t body_len;
} reply_t;

static int conn_open(conn_t *c)
{
    c->incarnation = atomic_load(&incarnation[c->gw - gateways]);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->gw->port)};
    inet_pton(AF_INET, c->gw->host, &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->len = 0;
    ++c->opens;
    return 0;
}

static void conn_close(conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->len = 0;
}

/* Reads more bytes into c->buf. Returns bytes read, 0 on EOF, -1 on error or deadline. */
static ssize_t conn_fill(conn_t *c, int64_t deadline)
{
    if (c->len >= sizeof(c->buf) - 1)
        return -1;
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int64_t left = deadline - sg_test_now_ms();
    if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
        return -1;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

static const char *find(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; ++i)
        if (memcmp(hay + i, needle, n) == 0)
            return hay + i;
    return NULL;
}

static int header_is(const char *line, size_t line_len, const char *name, const char **value, size_t *value_len)
{
    size_t n = strlen(name);
    if (line_len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return 0;
    const char *v = line + n + 1, *end = line + line_len;
    while (v < end && *v == ' ')
        ++v;
    *value = v;
    *value_len = (size_t)(end - v);
    return 1;
}

/* One exchange on the open connection. Returns 0 with out filled, 1 when the connection was
 * found closed before any response byte (the caller may reconnect and resend), -1 on error. */
static int conn_exchange(conn_t *c, const char *req, size_t req_len, reply_t *out)
{
    int64_t deadline = sg_test_now_ms() + IO_DEADLINE_MS;
    size_t sent = 0;
    while (sent < req_len) {
        ssize_t n = send(c->fd, req + sent, req_len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            return 1;
        sent += (size_t)n;
    }
    c->len = 0;
    const char *head_end = NULL;
    while ((head_end = find(c->buf, c->len, "\r\n\r\n")) == NULL) {
        ssize_t n = conn_fill(c, deadline);
        if (n == 0 && c->len == 0)
            return 1;
        if (n <= 0)
            return -1;
    }
    c->buf[c->len] = '\0';
    if (c->len < 12 || memcmp(c->buf, "HTTP/1.1 ", 9) != 0)
        return -1;
    memset(out, 0, sizeof(*out));
    out->status = atoi(c->buf + 9);
    long long content_length = -1;
    int chunked = 0, closing = 0;
    const char *line = strstr(c->buf, "\r\n") + 2;
    while (line < head_end) {
        const char *eol = strstr(line, "\r\n");
        size_t line_len = (size_t)(eol - line);
        const char *v;
        size_t vlen;
        if (header_is(line, line_len, "content-length", &v, &vlen))
            content_length = atoll(v);
        else if (header_is(line, line_len, "transfer-encoding", &v, &vlen))
            chunked = vlen >= 7 && strncasecmp(v, "chunked", 7) == 0;
        else if (header_is(line, line_len, "connection", &v, &vlen))
            closing = vlen >= 5 && strncasecmp(v, "close", 5) == 0;
        else if (header_is(line, line_len, "consistency-token", &v, &vlen) && vlen < sizeof(out->token))
            snprintf(out->token, sizeof(out->token), "%.*s", (int)vlen, v);
        else if (header_is(line, line_len, "stream-time", &v, &vlen)) {
            out->has_stream_time = 1;
            out->stream_time = atoll(v);
        }
        line = eol + 2;
    }
    size_t body_at = (size_t)(head_end + 4 - c->buf);
    if (chunked) {
        /* Simple de-chunking: read until the terminating "0\r\n\r\n", then decode. */
        while (find(c->buf + body_at, c->len - body_at, "0\r\n\r\n") == NULL)
            if (conn_fill(c, deadline) <= 0)
                return -1;
        c->buf[c->len] = '\0';
        const char *p = c->buf + body_at;
        for (;;) {
            size_t n = strtoul(p, NULL, 16);
            p = strstr(p, "\r\n");
            if (p == NULL || n == 0)
                break;
            p += 2;
            if (out->body_len + n < sizeof(out->body)) {
                memcpy(out->body + out->body_len, p, n);
                out->body_len += n;
            }
            p += n + 2;
        }
    } else if (content_length >= 0) {
        while (c->len - body_at < (size_t)content_length)
            if (conn_fill(c, deadline) <= 0)
                return -1;
        out->body_len = (size_t)content_length < sizeof(out->body) ? (size_t)content_length : sizeof(out->body) - 1;
        memcpy(out->body, c->buf + body_at, out->body_len);
    } else {
        return -1; /* keep-alive needs a framed body */
    }
    out->body[out->body_len] = '\0';
    if (closing)
        conn_close(c);
    return 0;
}

/* A request with one resend on a fresh connection when the kept-alive one turned out closed
 * before any answer (a PUT resent that way writes the same seq again: harmless to every check). */
static int conn_request(conn_t *c, const char *method, const char *path, const char *token, const char *body, reply_t *out)
{
    memset(out, 0, sizeof(*out));
    char req[4096];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: %s:%u\r\n", method, path, c->gw->host, c->gw->port);
    if (token != NULL && token[0] != '\0')
        n += snprintf(req + n, sizeof(req) - (size_t)n, "Consistency-Token: %s\r\n", token);
    if (body != NULL)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      strlen(body), body);
    else
        n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    if (n <= 0 || (size_t)n >= sizeof(req))
        return -1;
    if (c->fd >= 0 && c->incarnation != atomic_load(&incarnation[c->gw - gateways]))
        conn_close(c); /* kept alive to a process that was killed since */
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (c->fd < 0 && conn_open(c) != 0)
            return -1;
        int rc = conn_exchange(c, req, (size_t)n, out);
        if (rc == 0)
            return 0;
        conn_close(c);
        if (rc < 0)
            return -1;
    }
    return -1;
}

/* --- the checker --------------------------------------------------------------------------- */

typedef struct {
    int id;
    unsigned rng;
    conn_t conns[N_GATEWAYS];
    sg_token_t *session;
    int64_t seq_issued[KEYS_PER_THREAD]; /* last seq written to each own key */
    int64_t seen[N_KEYS];                /* largest seq this thread has seen per key; -1 none */
    /* counts */
    unsigned ops, writes, reads, session_reads, pairs, not_caught_up, violations, errors, per_gw[N_GATEWAYS];
    unsigned unavailable; /* no answer from a gateway that was down, or 503 owner-unavailable et al. */
} worker_t;

/* What a violation broke; counted per kind for the report. */
enum { V_RYW, V_MONOTONIC, V_SESSION, V_STREAM_TIME, V_TOKEN, V_SHAPE, N_KINDS };
static const char *const kind_names[N_KINDS] = {"read-your-write", "monotonic read", "session read",
                                                "stream time",     "answer token",   "answer shape"};
static atomic_uint total_violations, total_reported, kind_counts[N_KINDS];

static unsigned next_rand(worker_t *w)
{
    w->rng = w->rng * 1103515245u + 12345u;
    return (w->rng >> 8) & 0xffffff;
}

/* A random gateway that is up, other than `not` when there is another (-1: any). */
static int pick_gateway(worker_t *w, int not)
{
    for (int attempt = 0; attempt < 64; ++attempt) {
        int g = (int)(next_rand(w) % N_GATEWAYS);
        if (atomic_load(&alive[g]) && (g != not || attempt >= 32))
            return g;
    }
    return 0;
}

/* A request that got no answer: a refusal when the gateway is (or was being) taken down. */
static int down_now(int g)
{
    return !atomic_load(&alive[g]);
}

/* 503s that say "not here, not now" rather than answering from the past (scale-out). */
static int refusal(const reply_t *r)
{
    return r->status == 503 && (strstr(r->body, "owner-unavailable") != NULL || strstr(r->body, "partition-moved") != NULL ||
                                strstr(r->body, "not-ready") != NULL || strstr(r->body, "shutting-down") != NULL);
}

static void key_name(int key, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "w%d-k%d", key / KEYS_PER_THREAD, key % KEYS_PER_THREAD);
}

static void violation(worker_t *w, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void violation(worker_t *w, int kind, const char *fmt, ...)
{
    ++w->violations;
    atomic_fetch_add(&total_violations, 1);
    atomic_fetch_add(&kind_counts[kind], 1);
    if (atomic_fetch_add(&total_reported, 1) < MAX_REPORTED) {
        char text[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        fprintf(stderr, "VIOLATION (thread %d, op %u): %s\n", w->id, w->ops, text);
    }
}

/* Merges a token text into the session. Returns 0, or -1 when it does not decode. */
static int merge_into(sg_token_t *into, const char *text)
{
    char err[256];
    sg_token_t *token = sg_token_decode(text, strlen(text), err, sizeof(err));
    if (token == NULL)
        return -1;
    int rc = sg_token_merge(into, token);
    sg_token_destroy(token);
    return rc;
}

static int64_t max_stream_time(const sg_token_t *token)
{
    int64_t best = 0;
    for (size_t i = 0; i < sg_token_count(token); ++i) {
        const char *topic;
        int32_t partition;
        int64_t offset, stream_time;
        sg_token_entry(token, i, &topic, &partition, &offset, &stream_time);
        if (strcmp(topic, TOPIC) == 0 && stream_time > best)
            best = stream_time;
    }
    return best;
}

static int is_topic(const char *topic, void *arg)
{
    return strcmp(topic, TOPIC) == 0;
}

/* Whether the answer's token covers the token sent (an answer reflects at least what was asked). */
static int answer_covers(const reply_t *r, const char *sent)
{
    char err[256];
    sg_token_t *answer = sg_token_decode(r->token, strlen(r->token), err, sizeof(err));
    sg_token_t *want = sg_token_decode(sent, strlen(sent), err, sizeof(err));
    int covers = answer != NULL && want != NULL && sg_token_covers(answer, want, is_topic, NULL);
    sg_token_destroy(answer);
    sg_token_destroy(want);
    return covers;
}

typedef struct {
    int found;   /* 200 */
    int64_t seq; /* when found */
    int refused; /* 503 not-caught-up */
} row_t;

/* GET /tables/kv/<key> on gateway g with an optional token. Checks the shape of the answer and
 * that its token covers the one sent; merges the answer's token into the session. Returns 0 (row
 * filled), or -1 (an error or a violation, already counted). */
static int read_row(worker_t *w, int g, int key, const char *token, reply_t *r, row_t *row)
{
    char name[32], path[64];
    key_name(key, name, sizeof(name));
    snprintf(path, sizeof(path), "/tables/kv/%s", name);
    memset(row, 0, sizeof(*row));
    ++w->reads;
    ++w->per_gw[g];
    if (conn_request(&w->conns[g], "GET", path, token, NULL, r) != 0) {
        if (down_now(g)) {
            ++w->unavailable;
            return -1;
        }
        ++w->errors;
        fprintf(stderr, "thread %d: GET %s on gateway %d: no answer\n", w->id, path, g);
        return -1;
    }
    if (refusal(r)) {
        ++w->unavailable;
        return -1;
    }
    if (r->token[0] == '\0') {
        violation(w, V_TOKEN, "GET %s on gateway %d: %d without a Consistency-Token", path, g, r->status);
        return -1;
    }
    if (r->status == 503 && strstr(r->body, "not-caught-up") != NULL) {
        ++w->not_caught_up;
        row->refused = 1;
        return 0;
    }
    if (r->status != 200 && r->status != 404) {
        ++w->errors;
        fprintf(stderr, "thread %d: GET %s on gateway %d: %d %s\n", w->id, path, g, r->status, r->body);
        return -1;
    }
    if (!r->has_stream_time) {
        violation(w, V_SHAPE, "GET %s on gateway %d: %d without Stream-Time", path, g, r->status);
        return -1;
    }
    if (token != NULL && !answer_covers(r, token)) {
        violation(w, V_TOKEN, "GET %s on gateway %d: the answer's token %s does not cover the request's %s", path, g, r->token,
                  token);
        return -1;
    }
    if (merge_into(w->session, r->token) != 0) {
        violation(w, V_TOKEN, "GET %s on gateway %d: undecodable answer token %s", path, g, r->token);
        return -1;
    }
    if (r->status == 200) {
        json_t *doc = json_loadb(r->body, r->body_len, 0, NULL);
        json_t *writer = json_object_get(doc, "w"), *seq = json_object_get(doc, "seq");
        if (!json_is_integer(writer) || !json_is_integer(seq) || json_integer_value(writer) != key / KEYS_PER_THREAD) {
            violation(w, V_SHAPE, "GET %s on gateway %d: unexpected row %s", path, g, r->body);
            json_decref(doc);
            return -1;
        }
        row->found = 1;
        row->seq = json_integer_value(seq);
        json_decref(doc);
    }
    return 0;
}

/* Checks a read made with the session token against everything this thread has seen. */
static void check_session(worker_t *w, int g, int key, const row_t *row, int64_t seen_before, int64_t session_time,
                          const reply_t *r)
{
    char name[32];
    key_name(key, name, sizeof(name));
    if (seen_before >= 0 && !row->found)
        violation(w, V_SESSION, "session read of %s on gateway %d: 404 after this session saw seq %" PRId64, name, g, seen_before);
    else if (row->found && row->seq < seen_before)
        violation(w, V_SESSION, "session read of %s on gateway %d: seq %" PRId64 " after this session saw %" PRId64, name, g,
                  row->seq, seen_before);
    if (r->stream_time < session_time)
        violation(w, V_STREAM_TIME, "session read of %s on gateway %d: Stream-Time %" PRId64 " below the session's %" PRId64, name,
                  g, r->stream_time, session_time);
}

static void note_seen(worker_t *w, int key, const row_t *row)
{
    if (row->found && row->seq > w->seen[key])
        w->seen[key] = row->seq;
}

static char *session_text(worker_t *w)
{
    size_t len = sg_token_encode(w->session, NULL, 0);
    char *text = malloc(len + 1);
    sg_token_encode(w->session, text, len + 1);
    return text;
}

/* write -> read-with-token, on random gateways (3 times in 4 the other one). */
static void op_write_read(worker_t *w)
{
    int own = (int)(next_rand(w) % KEYS_PER_THREAD);
    int key = w->id * KEYS_PER_THREAD + own;
    int64_t seq = ++w->seq_issued[own];
    char name[32], path[64], body[128];
    key_name(key, name, sizeof(name));
    snprintf(path, sizeof(path), "/kv/%s", name);
    snprintf(body, sizeof(body), "{\"w\":%d,\"seq\":%" PRId64 ",\"pad\":\"%0*d\"}", w->id, seq, (int)(next_rand(w) % 64), 0);
    int gw = pick_gateway(w, -1);
    reply_t r;
    ++w->writes;
    ++w->per_gw[gw];
    int sent = conn_request(&w->conns[gw], "PUT", path, NULL, body, &r);
    if ((sent != 0 && down_now(gw)) || (sent == 0 && refusal(&r))) {
        ++w->unavailable; /* maybe written: a later seq of the key is written only after an acknowledged one */
        return;
    }
    if (sent != 0 || r.status != 202 || r.token[0] == '\0') {
        ++w->errors;
        fprintf(stderr, "thread %d: PUT %s on gateway %d: %d %s\n", w->id, path, gw, r.status, r.body);
        return;
    }
    char write_token[sizeof(r.token)];
    snprintf(write_token, sizeof(write_token), "%s", r.token);
    if (merge_into(w->session, write_token) != 0) {
        violation(w, V_TOKEN, "PUT %s: undecodable token %s", path, write_token);
        return;
    }
    int gr = next_rand(w) % 4 == 0 ? gw : pick_gateway(w, gw);
    row_t row;
    if (read_row(w, gr, key, write_token, &r, &row) != 0 || row.refused)
        return;
    if (!row.found)
        violation(w, V_RYW, "read-your-write of %s: PUT seq %" PRId64 " on gateway %d, token %s; GET on gateway %d: 404", name, seq,
                  gw, write_token, gr);
    else if (row.seq < seq || row.seq > w->seq_issued[own])
        violation(w, V_RYW, "read-your-write of %s: PUT seq %" PRId64 " on gateway %d, token %s; GET on gateway %d: seq %" PRId64,
                  name, seq, gw, write_token, gr, row.seq);
    note_seen(w, key, &row);
    if (seq > w->seen[key])
        w->seen[key] = seq; /* acknowledged: the session must see it from now on */
}

/* read -> read-with-token (monotonic reads). Half the first reads carry no token at all. */
static void op_read_pair(worker_t *w)
{
    int key = (int)(next_rand(w) % N_KEYS);
    int g1 = pick_gateway(w, -1), g2 = pick_gateway(w, -1);
    int with_session = next_rand(w) % 2;
    char *session = with_session ? session_text(w) : NULL;
    int64_t seen_before = w->seen[key], session_time = max_stream_time(w->session);
    reply_t r1, r2;
    row_t first, second;
    ++w->pairs;
    int rc = read_row(w, g1, key, session, &r1, &first);
    if (rc == 0 && !first.refused && with_session) {
        ++w->session_reads;
        check_session(w, g1, key, &first, seen_before, session_time, &r1);
    }
    free(session);
    if (rc != 0 || first.refused)
        return;
    note_seen(w, key, &first);
    if (read_row(w, g2, key, r1.token, &r2, &second) != 0 || second.refused)
        return;
    char name[32];
    key_name(key, name, sizeof(name));
    if (first.found && !second.found)
        violation(w, V_MONOTONIC, "monotonic read of %s: seq %" PRId64 " on gateway %d, then 404 on gateway %d with token %s", name,
                  first.seq, g1, g2, r1.token);
    else if (first.found && second.seq < first.seq)
        violation(w, V_MONOTONIC,
                  "monotonic read of %s: seq %" PRId64 " on gateway %d, then seq %" PRId64 " on gateway %d with token %s", name,
                  first.seq, g1, second.seq, g2, r1.token);
    if (r2.stream_time < r1.stream_time)
        violation(w, V_STREAM_TIME, "monotonic read of %s: Stream-Time %" PRId64 " on gateway %d, then %" PRId64 " on gateway %d",
                  name, r1.stream_time, g1, r2.stream_time, g2);
    note_seen(w, key, &second);
}

/* A read of any key with the session token. */
static void op_session_read(worker_t *w)
{
    int key = (int)(next_rand(w) % N_KEYS);
    int g = pick_gateway(w, -1);
    char *session = session_text(w);
    int64_t seen_before = w->seen[key], session_time = max_stream_time(w->session);
    reply_t r;
    row_t row;
    int rc = read_row(w, g, key, session, &r, &row);
    free(session);
    if (rc != 0 || row.refused)
        return;
    ++w->session_reads;
    check_session(w, g, key, &row, seen_before, session_time, &r);
    note_seen(w, key, &row);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    int64_t deadline = sg_test_now_ms() + RUN_DEADLINE_MS;
    while ((w->ops < OPS_PER_THREAD || !atomic_load(&churn_done)) && sg_test_now_ms() < deadline) {
        unsigned dice = next_rand(w) % 10;
        if (dice < 4)
            op_write_read(w);
        else if (dice < 7)
            op_read_pair(w);
        else
            op_session_read(w);
        ++w->ops;
    }
    return NULL;
}

static char config[2048];

#ifdef SG_SCALE_CHECK
/* Sum of streamgate_table_partitions{role} over the running gateways, or -1. */
static int partitions_with_role(const char *role, int n)
{
    int sum = 0;
    char needle[128];
    snprintf(needle, sizeof(needle), "streamgate_table_partitions{table=\"kv\",role=\"%s\"} ", role);
    for (int g = 0; g < n; ++g) {
        sg_test_response_t res;
        if (sg_test_http(&gateways[g], "GET", "/metrics", NULL, NULL, 0, &res) != 0)
            return -1;
        const char *at = res.body != NULL ? strstr(res.body, needle) : NULL;
        sum += at != NULL ? atoi(at + strlen(needle)) : 0;
        sg_test_response_free(&res);
    }
    return sum;
}
#endif

static int setup(void **state)
{
#ifdef SG_SCALE_CHECK
    const char *args[] = {"--topic", TOPIC ":12", NULL};
    const char *table = "tables: [{name: kv, topic: " TOPIC ", placement: partitioned, standbys: 1}]\n"
                        "deployment: {name: scc}\n";
    int started = 3;
#else
    const char *args[] = {"--brokers", "2", "--topic", TOPIC ":4", NULL};
    const char *table = "tables: [{name: kv, topic: " TOPIC "}]\n";
    int started = 2;
#endif
    if (sg_test_cluster_start(&cluster, args) != 0)
        return -1;
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\n"
             "data_dir: @DIR@/data\n"
             "kafka: {brokers: \"%s\"}\n"
             "limits: {token_wait: 10s}\n"
             "routes:\n"
             "  - {name: put-kv, method: PUT, path: \"/kv/{id}\", topic: " TOPIC ", key: \"path:id\"}\n"
             "%s",
             cluster.bootstrap, table);
    for (int g = 0; g < started; ++g) {
        if (sg_test_gateway_start(&gateways[g], config) != 0)
            return -1;
        atomic_store(&alive[g], 1);
    }
    atomic_store(&churn_done, N_GATEWAYS == started);
#ifdef SG_SCALE_CHECK
    /* The run starts once the group has placed every partition and every copy is ready. */
    int64_t deadline = sg_test_now_ms() + 60000;
    while (partitions_with_role("owner", started) != PARTITIONS ||
           partitions_with_role("ready", started) != PARTITIONS * 2)
        if (sg_test_now_ms() > deadline)
            return -1;
        else
            sg_test_sleep_ms(200);
#endif
    return 0;
}

static int teardown(void **state)
{
#ifdef SG_SCALE_CHECK
    return sg_test_stop_procs(&gateways[0], &gateways[1], &gateways[2], &gateways[3], &cluster, NULL);
#else
    return sg_test_stop_procs(&gateways[0], &gateways[1], &cluster, NULL);
#endif
}

#ifdef SG_SCALE_CHECK
/* Mid-run: SIGKILL gateway 2, start it again on its data, then a fourth instance joins. Returns
 * non-NULL when a step failed. */
static void *churn_main(void *arg)
{
    int64_t start = *(const int64_t *)arg;
    sg_test_sleep_ms((int)(start + CHURN_KILL_MS - sg_test_now_ms()));
    atomic_store(&alive[2], 0);
    sg_test_sleep_ms(50); /* threads that picked it have sent; what is in flight gets no answer */
    int killed = sg_test_proc_kill9(&gateways[2]);
    atomic_fetch_add(&incarnation[2], 1);
    fprintf(stderr, "churn: gateway 2 SIGKILLed at %.1f s (%d)\n", (double)(sg_test_now_ms() - start) / 1000.0, killed);
    sg_test_sleep_ms((int)(start + CHURN_RESTART_MS - sg_test_now_ms()));
    int rerun = sg_test_gateway_rerun(&gateways[2], 1);
    if (rerun == 0)
        atomic_store(&alive[2], 1);
    fprintf(stderr, "churn: gateway 2 restarted at %.1f s (%d)\n", (double)(sg_test_now_ms() - start) / 1000.0, rerun);
    sg_test_sleep_ms((int)(start + CHURN_JOIN_MS - sg_test_now_ms()));
    int joined = sg_test_gateway_start(&gateways[3], config);
    if (joined == 0)
        atomic_store(&alive[3], 1);
    fprintf(stderr, "churn: gateway 3 joined at %.1f s (%d)\n", (double)(sg_test_now_ms() - start) / 1000.0, joined);
    sg_test_sleep_ms(15000); /* the threads go on through the rebalance it causes, and after */
    atomic_store(&churn_done, 1);
    return (void *)(intptr_t)(killed != 0 || rerun != 0 || joined != 0);
}
#endif

static void test_no_violations_under_concurrency(void **state)
{
    static worker_t workers[N_THREADS];
    pthread_t threads[N_THREADS];
    int64_t start = sg_test_now_ms();
    for (int t = 0; t < N_THREADS; ++t) {
        worker_t *w = &workers[t];
        memset(w, 0, sizeof(*w));
        w->id = t;
        w->rng = 0x5eed0000u + (unsigned)t * 7919u + (unsigned)time(NULL);
        w->session = sg_token_create();
        for (int g = 0; g < N_GATEWAYS; ++g) {
            w->conns[g].gw = &gateways[g];
            w->conns[g].fd = -1;
        }
        for (int k = 0; k < N_KEYS; ++k)
            w->seen[k] = -1;
        assert_int_equal(pthread_create(&threads[t], NULL, worker_main, w), 0);
    }
#ifdef SG_SCALE_CHECK
    /* On this thread: a child's PR_SET_PDEATHSIG (harness.c) fires when the thread that forked
     * it ends, so the gateways it starts must be started by a thread that outlives them. */
    void *churn_failed = churn_main(&start);
#endif
    unsigned ops = 0, writes = 0, reads = 0, session_reads = 0, pairs = 0, not_caught_up = 0, violations = 0, errors = 0,
             reconnects = 0, unavailable = 0, per_gw[N_GATEWAYS] = {0};
    for (int t = 0; t < N_THREADS; ++t) {
        pthread_join(threads[t], NULL);
        worker_t *w = &workers[t];
        ops += w->ops;
        writes += w->writes;
        reads += w->reads;
        session_reads += w->session_reads;
        pairs += w->pairs;
        not_caught_up += w->not_caught_up;
        violations += w->violations;
        errors += w->errors;
        unavailable += w->unavailable;
        for (int g = 0; g < N_GATEWAYS; ++g) {
            per_gw[g] += w->per_gw[g];
            reconnects += w->conns[g].opens > 1 ? w->conns[g].opens - 1 : 0;
            conn_close(&w->conns[g]);
        }
        sg_token_destroy(w->session);
    }
    int64_t elapsed = sg_test_now_ms() - start;
    char spread[64] = "";
    for (int g = 0; g < N_GATEWAYS; ++g)
        snprintf(spread + strlen(spread), sizeof(spread) - strlen(spread), "%s%u", g > 0 ? "/" : "", per_gw[g]);
    fprintf(stderr,
            "consistency: %u operations (%u write->read, %u read pairs, %u session reads; %u reads) in %.1f s "
            "(%.0f ops/s), requests per gateway %s, %u reconnects; violations %u, 503 not-caught-up %u "
            "(%.3f%% of reads), unavailable (down or refused) %u, errors %u\n",
            ops, writes, pairs, session_reads, reads, (double)elapsed / 1000.0, elapsed > 0 ? ops * 1000.0 / (double)elapsed : 0.0,
            spread, reconnects, violations, not_caught_up, reads ? 100.0 * not_caught_up / reads : 0.0, unavailable, errors);
#ifdef SG_SCALE_CHECK
    assert_null(churn_failed);
    /* the kill and the rebalances cost a bounded share (1.8 % on real Kafka, 2.7 % on the mock,
     * 5.2 % under ASan, where the fixed refusal windows weigh more against fewer operations) */
    assert_true(unavailable * 10 < ops);
#else
    assert_int_equal(unavailable, 0);
#endif
    for (int k = 0; k < N_KINDS; ++k)
        if (atomic_load(&kind_counts[k]) > 0)
            fprintf(stderr, "  %u %s violations\n", atomic_load(&kind_counts[k]), kind_names[k]);
    assert_int_equal(violations, 0);
    assert_int_equal(atomic_load(&total_violations), 0);
    assert_int_equal(errors, 0);
    assert_true(ops >= MIN_OPS);
    assert_true(writes >= MIN_OPS / 4 && pairs >= MIN_OPS / 5 && session_reads >= MIN_OPS / 5);
    /* every gateway carried a real share of the traffic */
    unsigned total = 0;
    for (int g = 0; g < N_GATEWAYS; ++g)
        total += per_gw[g];
    for (int g = 0; g < N_GATEWAYS; ++g)
        assert_true(per_gw[g] > total / (N_GATEWAYS * (g < 3 ? 8 : 50))); /* the fourth joins late */
    /* refusals are allowed, not the rule: under 1% of reads */
    assert_true(not_caught_up * 100 < reads);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_violations_under_concurrency),
    };
#ifdef SG_SCALE_CHECK
    return cmocka_run_group_tests_name("integration-scale-consistency", tests, setup, teardown);
#else
    return cmocka_run_group_tests_name("integration-consistency", tests, setup, teardown);
#endif
}
