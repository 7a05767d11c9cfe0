/*
 * The key set over HTTP(S) (gateway/auth/fetch.c, keys.c): the fetch against a tiny HTTP server
 * run by the test (Content-Length, chunked, close-delimited, errors, deadlines, size limit), a
 * key rotation picked up without a restart, refreshes rate-limited, the last good set kept, a
 * key set that is unreachable at start, and https against `openssl s_server` with a CA made by
 * the openssl command.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth_fixture.h"
#include "auth_int.h"
#include "sg_auth.h"
#include "sg_base.h"
#include "sg_log.h"

#define ISS "https://id.example"
#define AUD "streamgate"

/* ------------------------------------------------------------------------------------------ */
/* A one-connection-at-a-time HTTP server                                                     */

typedef enum { SERVE_LENGTH, SERVE_CHUNKED, SERVE_CLOSE, SERVE_BAD_CHUNK } serve_mode_t;

typedef struct st_server_t {
    int fd;
    uint16_t port;
    pthread_t thread;
    pthread_mutex_t lock;
    char *body;
    int status;
    serve_mode_t mode;
    int delay_ms;
    int requests;
    char last_request[1024];
    volatile int stop;
} server_t;

static void send_text(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        text += n;
        len -= (size_t)n;
    }
}

static void serve_one(server_t *server, int fd)
{
    char request[1024] = "";
    size_t len = 0;
    while (len + 1 < sizeof(request) && strstr(request, "\r\n\r\n") == NULL) {
        ssize_t n = recv(fd, request + len, sizeof(request) - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        request[len] = '\0';
    }
    pthread_mutex_lock(&server->lock);
    server->requests++;
    snprintf(server->last_request, sizeof(server->last_request), "%s", request);
    char *body = sg_strdup(server->body);
    int status = server->status, delay_ms = server->delay_ms;
    serve_mode_t mode = server->mode;
    pthread_mutex_unlock(&server->lock);
    if (delay_ms > 0)
        sg_sleep_ms(delay_ms);
    char head[256];
    size_t body_len = strlen(body);
    if (mode == SERVE_LENGTH) {
        snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n", status,
                 body_len);
        send_text(fd, head, strlen(head));
        send_text(fd, body, body_len);
    } else if (mode == SERVE_CLOSE) {
        snprintf(head, sizeof(head), "HTTP/1.0 %d X\r\n\r\n", status);
        send_text(fd, head, strlen(head));
        send_text(fd, body, body_len);
    } else {
        snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\ntransfer-encoding: Chunked\r\n\r\n", status);
        send_text(fd, head, strlen(head));
        for (size_t at = 0; at < body_len; at += 7) { /* small chunks, to cross reads */
            size_t chunk = body_len - at < 7 ? body_len - at : 7;
            snprintf(head, sizeof(head), "%zx;ext=1\r\n", chunk);
            send_text(fd, head, strlen(head));
            send_text(fd, body + at, chunk);
            send_text(fd, mode == SERVE_BAD_CHUNK ? "XX" : "\r\n", 2);
        }
        send_text(fd, "0\r\n\r\n", 5);
    }
    free(body);
    close(fd);
}

static void *server_main(void *arg)
{
    server_t *server = arg;
    while (!server->stop) {
        struct pollfd pfd = {.fd = server->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int fd = accept(server->fd, NULL, NULL);
        if (fd >= 0)
            serve_one(server, fd);
    }
    return NULL;
}

static int listen_any(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof(addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &addr_len) != 0)
        fail_msg("cannot listen on 127.0.0.1");
    *port = ntohs(addr.sin_port);
    return fd;
}

static void server_start(server_t *server, const char *body)
{
    memset(server, 0, sizeof(*server));
    pthread_mutex_init(&server->lock, NULL);
    server->body = sg_strdup(body);
    server->status = 200;
    server->fd = listen_any(&server->port);
    assert_int_equal(pthread_create(&server->thread, NULL, server_main, server), 0);
}

static void server_set(server_t *server, const char *body, int status, serve_mode_t mode, int delay_ms)
{
    pthread_mutex_lock(&server->lock);
    if (body != NULL) {
        free(server->body);
        server->body = sg_strdup(body);
    }
    server->status = status;
    server->mode = mode;
    server->delay_ms = delay_ms;
    pthread_mutex_unlock(&server->lock);
}

static int server_requests(server_t *server)
{
    pthread_mutex_lock(&server->lock);
    int requests = server->requests;
    pthread_mutex_unlock(&server->lock);
    return requests;
}

static void server_stop(server_t *server)
{
    server->stop = 1;
    pthread_join(server->thread, NULL);
    close(server->fd);
    free(server->body);
    pthread_mutex_destroy(&server->lock);
}

/* ------------------------------------------------------------------------------------------ */

static fx_t fx;
static json_t *tokens;
static char *jwks_r1, *jwks_r1_r2, *jwks_r2;

static char *read_text(const char *name)
{
    char path[128];
    FILE *f = fopen(fx_path(&fx, name, path, sizeof(path)), "rb");
    assert_non_null(f);
    char *text = sg_calloc(1 << 16, 1);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

static int setup(void **state)
{
    sg_log_set_level(SG_LOG_ERROR); /* failed fetches are logged as warnings on purpose */
    fx_init(&fx);
    fx_genkey(&fx, "rsa", "rsa2048");
    fx_genkey(&fx, "rsa2", "rsa2048");
    char path[128], a[128], b[128], c[128], rsa[128], rsa2[128];
    int64_t now = (int64_t)time(NULL);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I}", "iss", ISS, "aud", AUD, "sub", "alice", "exp", (json_int_t)(now + 3600));
    json_t *spec =
        json_pack("{s:{s:s, s:s}, s:[{s:s, s:[{s:s, s:s}]}, {s:s, s:[{s:s, s:s}, {s:s, s:s}]}, {s:s, s:[{s:s, s:s}]}],"
                  " s:[{s:s, s:s, s:s, s:s, s:O}, {s:s, s:s, s:s, s:s, s:O}, {s:s, s:s, s:s, s:s, s:O}]}",
                  "keys", "rsa", fx_path(&fx, "rsa.pem", rsa, sizeof(rsa)), "rsa2", fx_path(&fx, "rsa2.pem", rsa2, sizeof(rsa2)),
                  "jwks", "out", fx_path(&fx, "a.json", a, sizeof(a)), "keys", "key", "rsa", "kid", "r1", "out",
                  fx_path(&fx, "ab.json", b, sizeof(b)), "keys", "key", "rsa", "kid", "r1", "key", "rsa2", "kid", "r2", "out",
                  fx_path(&fx, "b.json", c, sizeof(c)), "keys", "key", "rsa2", "kid", "r2", "tokens", "name", "r1", "alg", "RS256",
                  "key", "rsa", "kid", "r1", "claims", claims, "name", "r2", "alg", "RS256", "key", "rsa2", "kid", "r2", "claims",
                  claims, "name", "r9", "alg", "RS256", "key", "rsa2", "kid", "r9", "claims", claims);
    assert_non_null(spec);
    json_decref(claims);
    tokens = fx_mint(&fx, spec);
    json_decref(spec);
    (void)path;
    jwks_r1 = read_text("a.json");
    jwks_r1_r2 = read_text("ab.json");
    jwks_r2 = read_text("b.json");
    return 0;
}

static int teardown(void **state)
{
    free(jwks_r1);
    free(jwks_r1_r2);
    free(jwks_r2);
    json_decref(tokens);
    fx_cleanup(&fx);
    return 0;
}

static sg_url_t url_of(const char *host, uint16_t port, const char *path, bool tls, char *text, size_t size)
{
    snprintf(text, size, "%s://%s:%u%s", tls ? "https" : "http", host, (unsigned)port, path);
    return (sg_url_t){.text = text, .tls = tls, .host = (char *)host, .port = port, .path = (char *)path};
}

static sg_auth_cause_t verify(sg_auth_t *auth, const char *name)
{
    const char *token = fx_token(tokens, name);
    sg_principal_t *principal;
    sg_auth_error_t error;
    sg_auth_cause_t cause = sg_auth_verify_token(auth, token, strlen(token), sg_now_ms(), &principal, &error);
    sg_principal_release(principal);
    return cause;
}

/* Polls `name` until it verifies with `cause` (each failure may ask for a refresh); ms taken or -1. */
static int64_t wait_for(sg_auth_t *auth, const char *name, sg_auth_cause_t cause, int64_t limit_ms)
{
    int64_t start = sg_mono_ms();
    while (sg_mono_ms() - start < limit_ms) {
        if (verify(auth, name) == cause)
            return sg_mono_ms() - start;
        sg_sleep_ms(20);
    }
    return -1;
}

static void test_fetch(void **state)
{
    server_t server;
    server_start(&server, "{\"keys\": []}");
    char text[256], err[512];
    sg_url_t url = url_of("127.0.0.1", server.port, "/keys?x=1", false, text, sizeof(text));
    static const serve_mode_t modes[] = {SERVE_LENGTH, SERVE_CHUNKED, SERVE_CLOSE};
    for (size_t i = 0; i < SG_ARRAY_SIZE(modes); i++) {
        server_set(&server, jwks_r1_r2, 200, modes[i], 0);
        char *body = NULL;
        size_t len = 0;
        if (sg_auth_http_get(&url, NULL, 2000, SG_AUTH_MAX_JWKS, &body, &len, err, sizeof(err)) != 0)
            fail_msg("mode %zu: %s", i, err);
        assert_int_equal(len, strlen(jwks_r1_r2));
        assert_string_equal(body, jwks_r1_r2);
        free(body);
    }
    pthread_mutex_lock(&server.lock);
    assert_non_null(strstr(server.last_request, "GET /keys?x=1 HTTP/1.1\r\n"));
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%u\r\n", (unsigned)server.port);
    assert_non_null(strstr(server.last_request, host));
    pthread_mutex_unlock(&server.lock);

    char *body = NULL;
    size_t len;
    char expected[512];
    server_set(&server, "gone", 404, SERVE_LENGTH, 0);
    assert_int_equal(sg_auth_http_get(&url, NULL, 2000, SG_AUTH_MAX_JWKS, &body, &len, err, sizeof(err)), -1);
    snprintf(expected, sizeof(expected), "GET %s: HTTP status 404", text);
    assert_string_equal(err, expected);
    server_set(&server, jwks_r1_r2, 200, SERVE_LENGTH, 0);
    assert_int_equal(sg_auth_http_get(&url, NULL, 2000, 100, &body, &len, err, sizeof(err)), -1);
    snprintf(expected, sizeof(expected), "GET %s: the document is larger than 100 bytes", text);
    assert_string_equal(err, expected);
    server_set(&server, jwks_r1_r2, 200, SERVE_BAD_CHUNK, 0);
    assert_int_equal(sg_auth_http_get(&url, NULL, 2000, SG_AUTH_MAX_JWKS, &body, &len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, ": invalid chunked body"));

    /* The deadline covers the whole exchange: a server that answers late is given up on in time. */
    server_set(&server, jwks_r1_r2, 200, SERVE_LENGTH, 1500);
    int64_t start = sg_mono_ms();
    assert_int_equal(sg_auth_http_get(&url, NULL, 300, SG_AUTH_MAX_JWKS, &body, &len, err, sizeof(err)), -1);
    int64_t took = sg_mono_ms() - start;
    assert_true(took >= 300 && took < 1400); /* the server answers at 1500 ms */
    snprintf(expected, sizeof(expected), "GET %s: timed out", text);
    assert_string_equal(err, expected);
    server_stop(&server);

    /* Nobody listening. */
    assert_int_equal(sg_auth_http_get(&url, NULL, 1000, SG_AUTH_MAX_JWKS, &body, &len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot connect to 127.0.0.1"));
    sg_url_t nowhere = url_of("host.invalid", 80, "/", false, text, sizeof(text));
    assert_int_equal(sg_auth_http_get(&nowhere, NULL, 1000, SG_AUTH_MAX_JWKS, &body, &len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot resolve host.invalid"));
}

static sg_auth_t *url_auth(sg_conf_t **conf, const char *url_text, const char *extra)
{
    char text[1024], err[512];
    snprintf(text, sizeof(text),
             "auth:\n  jwt: {issuer: \"" ISS "\", audience: " AUD ", jwks_url: \"%s\", jwks_min_refresh: 200ms, "
             "jwks_refresh: 1h, jwks_timeout: 1s%s}\n",
             url_text, extra);
    *conf = sg_conf_load_string("t.yaml", text, strlen(text), err, sizeof(err));
    if (*conf == NULL)
        fail_msg("config: %s", err);
    sg_auth_t *auth = sg_auth_create(&(*conf)->auth, err, sizeof(err));
    if (auth == NULL)
        fail_msg("create: %s", err);
    return auth;
}

static sg_auth_t *server_auth(const server_t *server, sg_conf_t **conf)
{
    char text[256];
    snprintf(text, sizeof(text), "http://127.0.0.1:%u/jwks.json", (unsigned)server->port);
    return url_auth(conf, text, "");
}

/* Asks for fetches (tokens with an unknown kid) until one more has completed. */
static void refetch(sg_auth_t *auth, sg_auth_stats_t *stats)
{
    sg_auth_stats(auth, stats);
    uint64_t fetches = stats->jwks_fetches;
    for (int64_t deadline = sg_mono_ms() + 5000; stats->jwks_fetches == fetches && sg_mono_ms() < deadline;) {
        verify(auth, "r9");
        sg_sleep_ms(20);
        sg_auth_stats(auth, stats);
    }
    assert_true(stats->jwks_fetches > fetches);
}

static void test_rotation(void **state)
{
    server_t server;
    server_start(&server, jwks_r1);
    sg_conf_t *conf;
    sg_auth_t *auth = server_auth(&server, &conf);
    assert_true(sg_auth_keys_ready(auth));
    assert_int_equal(verify(auth, "r1"), SG_AUTH_OK);
    assert_int_equal(verify(auth, "r2"), SG_AUTH_UNKNOWN_KEY_ID);

    /* The identity provider adds r2: a token with r2 works soon after, without a restart. */
    server_set(&server, jwks_r1_r2, 200, SERVE_LENGTH, 0);
    int64_t took = wait_for(auth, "r2", SG_AUTH_OK, 5000);
    assert_true(took >= 0);
    print_message("rotation: the new kid verified after %lld ms\n", (long long)took);
    assert_int_equal(verify(auth, "r1"), SG_AUTH_OK);

    /* A flood of unknown kids makes at most one fetch per jwks_min_refresh (200 ms). */
    sg_sleep_ms(250);
    int before = server_requests(&server);
    int64_t start = sg_mono_ms();
    for (int i = 0; i < 200; i++)
        assert_int_equal(verify(auth, "r9"), SG_AUTH_UNKNOWN_KEY_ID);
    int64_t flood_ms = sg_mono_ms() - start;
    while (server_requests(&server) == before && sg_mono_ms() - start < 5000) /* the fetch it asked for */
        sg_sleep_ms(10);
    sg_sleep_ms(50);
    int fetched = server_requests(&server) - before;
    assert_true(fetched >= 1);
    assert_true(fetched <= 1 + flood_ms / 200);

    /* r1 is withdrawn: once the set is fetched again (here: asked for by an unknown kid), the
     * cached r1 token is no longer trusted either. */
    sg_auth_stats_t stats;
    sg_auth_stats(auth, &stats);
    uint64_t generation = stats.jwks_generation;
    server_set(&server, jwks_r2, 200, SERVE_CHUNKED, 0);
    refetch(auth, &stats);
    assert_int_equal(stats.jwks_generation, generation + 1);
    assert_int_equal(verify(auth, "r1"), SG_AUTH_UNKNOWN_KEY_ID);
    assert_int_equal(verify(auth, "r2"), SG_AUTH_OK);

    /* The provider fails: the last good set stays. */
    server_set(&server, "oops", 500, SERVE_LENGTH, 0);
    uint64_t failures = stats.jwks_failures;
    refetch(auth, &stats);
    assert_true(stats.jwks_failures > failures);
    assert_int_equal(stats.jwks_generation, generation + 1);
    assert_int_equal(verify(auth, "r2"), SG_AUTH_OK);
    assert_true(sg_auth_keys_ready(auth));
    sg_auth_destroy(auth);
    sg_conf_destroy(conf);
    server_stop(&server);
}

static void test_unreachable_at_start(void **state)
{
    /* The provider is down when the gateway starts: it starts anyway, says it is not ready, and
     * picks the keys up by itself once the provider is back. */
    server_t server;
    server_start(&server, "down");
    server_set(&server, NULL, 503, SERVE_LENGTH, 0);
    sg_conf_t *conf;
    sg_auth_t *auth = server_auth(&server, &conf);
    assert_false(sg_auth_keys_ready(auth));
    assert_int_equal(verify(auth, "r1"), SG_AUTH_KEYS_UNAVAILABLE);
    server_set(&server, jwks_r1, 200, SERVE_LENGTH, 0);
    int64_t start = sg_mono_ms();
    while (!sg_auth_keys_ready(auth) && sg_mono_ms() - start < 5000)
        sg_sleep_ms(20);
    assert_true(sg_auth_keys_ready(auth));
    assert_int_equal(verify(auth, "r1"), SG_AUTH_OK);
    sg_auth_destroy(auth);
    sg_conf_destroy(conf);
    server_stop(&server);
}

/* ------------------------------------------------------------------------------------------ */
/* https, against openssl s_server                                                            */

static pid_t start_s_server(uint16_t port)
{
    char accept_arg[16];
    snprintf(accept_arg, sizeof(accept_arg), "%u", (unsigned)port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(fx.dir) != 0)
            _exit(127);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("openssl", "openssl", "s_server", "-quiet", "-accept", accept_arg, "-cert", "server.pem", "-key", "server.key",
               "-WWW", (char *)NULL);
        _exit(127);
    }
    /* Ready once it accepts connections. */
    for (int i = 0; i < 250; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
        close(fd);
        if (rc == 0)
            return pid;
        sg_sleep_ms(20);
    }
    fail_msg("openssl s_server did not start");
    return -1;
}

static void test_https(void **state)
{
    /* A CA, and a server certificate it signed for 127.0.0.1 only. */
    fx_run("cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca "
           ">/dev/null 2>&1 && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 "
           ">/dev/null 2>&1 && printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && openssl x509 -req -in server.csr -CA ca.pem "
           "-CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext >/dev/null 2>&1 && cp ab.json jwks.json",
           fx.dir);
    uint16_t port;
    close(listen_any(&port)); /* a free port for s_server */
    pid_t pid = start_s_server(port);
    char text[256], err[512], ca[128];
    fx_path(&fx, "ca.pem", ca, sizeof(ca));
    sg_url_t url = url_of("127.0.0.1", port, "/jwks.json", true, text, sizeof(text));
    char *body = NULL;
    size_t len = 0;
    if (sg_auth_http_get(&url, ca, 3000, SG_AUTH_MAX_JWKS, &body, &len, err, sizeof(err)) != 0)
        fail_msg("https: %s", err);
    assert_string_equal(body, jwks_r1_r2);
    free(body);
    /* Without the CA the chain is not trusted; under another name the certificate does not match. */
    assert_int_equal(sg_auth_http_get(&url, NULL, 3000, SG_AUTH_MAX_JWKS, &body, &len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "TLS: certificate not trusted: "));
    sg_url_t by_name = url_of("localhost", port, "/jwks.json", true, text, sizeof(text));
    assert_int_equal(sg_auth_http_get(&by_name, ca, 3000, SG_AUTH_MAX_JWKS, &body, &len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "TLS: certificate not trusted: hostname mismatch"));

    /* And through the configuration, end to end. */
    char extra[256];
    snprintf(extra, sizeof(extra), ", jwks_ca_file: \"%s\"", ca);
    snprintf(text, sizeof(text), "https://127.0.0.1:%u/jwks.json", (unsigned)port);
    sg_conf_t *conf;
    sg_auth_t *auth = url_auth(&conf, text, extra);
    assert_int_equal(verify(auth, "r1"), SG_AUTH_OK);
    assert_int_equal(verify(auth, "r2"), SG_AUTH_OK);
    sg_auth_destroy(auth);
    sg_conf_destroy(conf);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_unreachable_at_start),
        cmocka_unit_test(test_https),
    };
    return cmocka_run_group_tests_name("gateway-jwks", tests, setup, teardown);
}
