/*
 * See harness.h. The HTTP client is deliberately minimal (HTTP/1.1, Connection: close, reads
 * to EOF) so that what it checks is the gateway, not a client library's interpretation.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <dirent.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>

#include <cmocka.h>

#define DEADLINE_MS 20000
/* A gateway's start up to a 200 from /readyz. A deployment instance of a partitioned table is
 * ready once its group has assigned it partitions: 3.4-5.5 s alone under the sanitizers (the
 * mock's group waits 3 s for a first join, 5 s for the rest to rejoin), and well past 20 s in the
 * busiest part of tests/run-all, where cluster starts take six times as long as alone. */
#define START_DEADLINE_MS 60000

int64_t sg_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sg_test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

const char *sg_test_binary(void)
{
    const char *bin = getenv("SG_BINARY");
    return bin ? bin : "./gateway/streamgate";
}

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static int make_dir(sg_test_proc_t *proc)
{
    snprintf(proc->dir, sizeof(proc->dir), "/tmp/sg-test-XXXXXX");
    return mkdtemp(proc->dir) ? 0 : -1;
}

static pid_t spawn(const char *const *args, const char *log_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        /* A failed assertion skips the test's own cleanup: the child must not outlive us. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(args[0], (char *const *)args);
        _exit(127);
    }
    return pid;
}

static void dump_log(const sg_test_proc_t *proc)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/log", proc->dir);
    char *log = read_file(path);
    if (log != NULL) {
        fprintf(stderr, "---- %s ----\n%s---- end ----\n", path, log);
        free(log);
    }
}

static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t n = 0, flen = strlen(from), tlen = strlen(to);
    for (const char *p = strstr(text, from); p; p = strstr(p + flen, from))
        ++n;
    char *out = malloc(strlen(text) + n * tlen + 1), *o = out;
    const char *p = text;
    for (const char *hit = strstr(p, from); hit; hit = strstr(p, from)) {
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, to, tlen);
        o += tlen;
        p = hit + flen;
    }
    strcpy(o, p);
    return out;
}

static int run_gateway(sg_test_proc_t *gw, int wait_ready);

/* On real Kafka, a config that would start the embedded cluster (no `kafka:` line, or one without
 * `brokers:`) gets the real cluster's bootstrap and `create_topics: true`, so its declared topics
 * exist as they would in embedded mode. Configs naming brokers already are left alone. */
static char *on_real_kafka(char *config)
{
    const char *bootstrap = sg_test_real_kafka();
    if (bootstrap == NULL)
        return config;
    const char *line = strncmp(config, "kafka:", 6) == 0 ? config : strstr(config, "\nkafka:");
    if (line != NULL && *line == '\n')
        ++line;
    char kafka_line[1024] = "";
    if (line != NULL)
        snprintf(kafka_line, sizeof(kafka_line), "%.*s", (int)strcspn(line, "\n"), line);
    size_t len = strlen(config);
    char *out = malloc(len + strlen(bootstrap) + 128);
    if (line == NULL) {
        sprintf(out, "%s%skafka: {brokers: \"%s\", create_topics: true}\n", config, len > 0 && config[len - 1] != '\n' ? "\n" : "",
                bootstrap);
    } else if (strstr(kafka_line, "brokers:") == NULL && strchr(kafka_line, '{') != NULL) {
        const char *brace = strchr(line, '{');
        sprintf(out, "%.*sbrokers: \"%s\", create_topics: true, %s", (int)(brace + 1 - config), config, bootstrap, brace + 1);
    } else {
        free(out);
        return config;
    }
    free(config);
    return out;
}

static int start_gateway_with_data(sg_test_proc_t *gw, const char *config_yaml, const char *data_target, int wait_ready)
{
    memset(gw, 0, sizeof(*gw));
    if (make_dir(gw) != 0)
        return -1;
    if (data_target != NULL) {
        char link_path[512];
        snprintf(link_path, sizeof(link_path), "%s/data", gw->dir);
        if (symlink(data_target, link_path) != 0)
            return -1;
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/config.yaml", gw->dir);
    char *config = on_real_kafka(replace_all(config_yaml, "@DIR@", gw->dir));
    FILE *fp = fopen(path, "w");
    fputs(config, fp);
    fclose(fp);
    free(config);
    return run_gateway(gw, wait_ready);
}

static int start_gateway(sg_test_proc_t *gw, const char *config_yaml, int wait_ready)
{
    return start_gateway_with_data(gw, config_yaml, NULL, wait_ready);
}

int sg_test_gateway_start_with_data(sg_test_proc_t *gw, const char *config_yaml, const char *data_dir)
{
    return start_gateway_with_data(gw, config_yaml, data_dir, 1);
}

int sg_test_gateway_restart(sg_test_proc_t *gw)
{
    kill(gw->pid, SIGTERM);
    int status = 0;
    if (waitpid(gw->pid, &status, 0) != gw->pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        dump_log(gw);
        return -1;
    }
    char addr_path[512];
    snprintf(addr_path, sizeof(addr_path), "%s/data/listen.addr", gw->dir);
    unlink(addr_path);
    gw->port = 0;
    return run_gateway(gw, 1);
}

static int run_gateway(sg_test_proc_t *gw, int wait_ready)
{
    char path[512], log_path[512];
    snprintf(path, sizeof(path), "%s/config.yaml", gw->dir);
    snprintf(log_path, sizeof(log_path), "%s/log", gw->dir);
    const char *args[] = {sg_test_binary(), path, NULL};
    gw->pid = spawn(args, log_path);

    char addr_path[512];
    snprintf(addr_path, sizeof(addr_path), "%s/data/listen.addr", gw->dir);
    int64_t started = sg_test_now_ms(), deadline = started + START_DEADLINE_MS;
    while (sg_test_now_ms() < deadline) {
        if (waitpid(gw->pid, NULL, WNOHANG) == gw->pid) {
            fprintf(stderr, "gateway exited during start\n");
            dump_log(gw);
            gw->pid = 0;
            return -1;
        }
        char *addr = read_file(addr_path);
        if (addr != NULL) {
            /* "http://127.0.0.1:PORT\n" */
            char *host = strstr(addr, "://");
            char *colon = host ? strrchr(host, ':') : NULL;
            if (colon != NULL) {
                snprintf(gw->host, sizeof(gw->host), "%.*s", (int)(colon - host - 3), host + 3);
                gw->port = (unsigned)atoi(colon + 1);
            }
            free(addr);
            if (gw->port != 0)
                break;
        }
        sg_test_sleep_ms(20);
    }
    snprintf(path, sizeof(path), "%s/data/kafka.bootstrap", gw->dir);
    char *bootstrap = read_file(path);
    if (bootstrap == NULL && sg_test_real_kafka() != NULL)
        snprintf(gw->bootstrap, sizeof(gw->bootstrap), "%s", sg_test_real_kafka());
    if (bootstrap != NULL) {
        bootstrap[strcspn(bootstrap, "\n")] = '\0';
        snprintf(gw->bootstrap, sizeof(gw->bootstrap), "%s", bootstrap);
        free(bootstrap);
    }
    if (gw->port != 0 && !wait_ready)
        return 0;
    char why[512] = "no answer to GET /readyz";
    while (gw->port != 0 && sg_test_now_ms() < deadline) {
        sg_test_response_t res;
        if (sg_test_http(gw, "GET", "/readyz", NULL, NULL, 0, &res) == 0) {
            int status = res.status;
            snprintf(why, sizeof(why), "%d %.*s", status, (int)res.body_len, res.body);
            sg_test_response_free(&res);
            if (status == 200) {
                int64_t took = sg_test_now_ms() - started;
                if (took > START_DEADLINE_MS / 6) /* a CI log then shows how near the deadline starts came */
                    fprintf(stderr, "gateway ready after %.1f s (slow)\n", took / 1000.0);
                return 0;
            }
        }
        sg_test_sleep_ms(20);
    }
    fprintf(stderr, "gateway did not become ready in %d s; its last /readyz: %s\n", START_DEADLINE_MS / 1000, why);
    dump_log(gw);
    return -1;
}

int sg_test_gateway_start(sg_test_proc_t *gw, const char *config_yaml)
{
    return start_gateway(gw, config_yaml, 1);
}

int sg_test_gateway_start_unready(sg_test_proc_t *gw, const char *config_yaml)
{
    return start_gateway(gw, config_yaml, 0);
}

/* sg_test_cluster_start on real Kafka: the --topic topics, created with the broker defaults. */
static int hand_out_real_cluster(sg_test_proc_t *cluster, const char *const *extra)
{
    cluster->external = 1;
    snprintf(cluster->bootstrap, sizeof(cluster->bootstrap), "%s", sg_test_real_kafka());
    for (size_t i = 0; extra && extra[i]; ++i) {
        if (strcmp(extra[i], "--brokers") == 0 && extra[i + 1] != NULL) {
            ++i;
        } else if (strcmp(extra[i], "--topic") == 0 && extra[i + 1] != NULL) {
            const char *spec = extra[++i], *colon = strrchr(spec, ':');
            char name[256];
            snprintf(name, sizeof(name), "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
            if (sg_test_create_topic(cluster->bootstrap, name, colon ? atoi(colon + 1) : 1, -1, NULL) != 0)
                return -1;
        } else {
            fprintf(stderr, "sg_test_cluster_start: %s is a mock cluster knob (skip the test on real Kafka)\n", extra[i]);
            return -1;
        }
    }
    return 0;
}

int sg_test_cluster_start(sg_test_proc_t *cluster, const char *const *extra)
{
    memset(cluster, 0, sizeof(*cluster));
    if (sg_test_real_kafka() != NULL)
        return hand_out_real_cluster(cluster, extra);
    if (make_dir(cluster) != 0)
        return -1;
    char file[512], log_path[512];
    snprintf(file, sizeof(file), "%s/bootstrap", cluster->dir);
    snprintf(log_path, sizeof(log_path), "%s/log", cluster->dir);
    const char *args[32] = {sg_test_binary(), "cluster", "--bootstrap-file", file};
    size_t n = 4;
    for (size_t i = 0; extra && extra[i] && n < 31; ++i)
        args[n++] = extra[i];
    args[n] = NULL;
    cluster->pid = spawn(args, log_path);
    int64_t deadline = sg_test_now_ms() + DEADLINE_MS;
    while (sg_test_now_ms() < deadline) {
        char *text = read_file(file);
        if (text != NULL) {
            text[strcspn(text, "\n")] = '\0';
            snprintf(cluster->bootstrap, sizeof(cluster->bootstrap), "%s", text);
            free(text);
            return 0;
        }
        if (waitpid(cluster->pid, NULL, WNOHANG) == cluster->pid) {
            dump_log(cluster);
            cluster->pid = 0;
            return -1;
        }
        sg_test_sleep_ms(20);
    }
    return -1;
}

int sg_test_log_has(const sg_test_proc_t *proc, const char *text, int timeout_ms)
{
    char path[512], line[2048];
    snprintf(path, sizeof(path), "%s/log", proc->dir);
    for (int64_t deadline = sg_test_now_ms() + timeout_ms;; sg_test_sleep_ms(100)) {
        FILE *log = fopen(path, "r");
        int found = log != NULL ? 0 : -1;
        while (log != NULL && !found && fgets(line, sizeof(line), log) != NULL)
            found = strstr(line, text) != NULL;
        if (log != NULL)
            fclose(log);
        if (found == 1 || sg_test_now_ms() >= deadline)
            return found;
    }
}

int sg_test_proc_stop(sg_test_proc_t *proc)
{
    if (proc->external) {
        memset(proc, 0, sizeof(*proc));
        return 0;
    }
    int result = -1;
    if (proc->pid > 0) {
        kill(proc->pid, SIGTERM);
        int64_t deadline = sg_test_now_ms() + DEADLINE_MS;
        int status = 0;
        pid_t done = 0;
        while (sg_test_now_ms() < deadline && (done = waitpid(proc->pid, &status, WNOHANG)) == 0)
            sg_test_sleep_ms(10);
        if (done == proc->pid && WIFEXITED(status)) {
            result = WEXITSTATUS(status);
        } else {
            if (done != proc->pid) {
                kill(proc->pid, SIGKILL);
                waitpid(proc->pid, NULL, 0);
            }
            fprintf(stderr, "process %d did not exit cleanly (status %d)\n", (int)proc->pid, status);
        }
        if (result != 0)
            dump_log(proc);
        proc->pid = 0;
    }
    if (proc->dir[0] != '\0') {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", proc->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", proc->dir);
        proc->dir[0] = '\0';
    }
    return result;
}

int sg_test_stop_procs(sg_test_proc_t *first, ...)
{
    int rc = 0;
    va_list procs;
    va_start(procs, first);
    for (sg_test_proc_t *proc = first; proc != NULL; proc = va_arg(procs, sg_test_proc_t *))
        if ((proc->pid > 0 || proc->dir[0] != '\0' || proc->external) && sg_test_proc_stop(proc) != 0)
            rc = -1;
    va_end(procs);
    return rc;
}

static int connect_to(const sg_test_proc_t *gw)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gw->port)};
    inet_pton(AF_INET, gw->host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int parse_response(char *buf, size_t len, sg_test_response_t *res)
{
    memset(res, 0, sizeof(*res));
    char *end = NULL;
    for (size_t i = 0; i + 3 < len; ++i)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            end = buf + i;
            break;
        }
    if (end == NULL || len < 12 || memcmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    res->status = atoi(buf + 9);
    char *line_end = strstr(buf, "\r\n");
    size_t hlen = (size_t)(end - line_end);
    res->headers = malloc(hlen + 3);
    memcpy(res->headers, line_end + 2, hlen);
    res->headers[hlen] = '\0';
    for (char *p = res->headers; *p; ++p) { /* lower-case the names */
        char *colon = strchr(p, ':');
        char *eol = strstr(p, "\r\n");
        if (colon == NULL)
            break;
        for (char *q = p; q < colon; ++q)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        if (eol == NULL)
            break;
        p = eol + 1;
    }
    char *body = end + 4;
    size_t body_len = len - (size_t)(body - buf);
    char cl[32];
    if (sg_test_header(res, "transfer-encoding", cl, sizeof(cl)) != NULL) {
        /* de-chunk */
        char *out = malloc(body_len + 1);
        size_t o = 0;
        char *p = body;
        while (p < body + body_len) {
            size_t n = strtoul(p, NULL, 16);
            p = strstr(p, "\r\n");
            if (p == NULL || n == 0)
                break;
            p += 2;
            memcpy(out + o, p, n);
            o += n;
            p += n + 2;
        }
        out[o] = '\0';
        res->body = out;
        res->body_len = o;
        return 0;
    }
    res->body = malloc(body_len + 1);
    memcpy(res->body, body, body_len);
    res->body[body_len] = '\0';
    res->body_len = body_len;
    return 0;
}

static int exchange(const sg_test_proc_t *gw, const char *req, size_t req_len, sg_test_response_t *res)
{
    int fd = connect_to(gw);
    if (fd < 0)
        return -1;
    size_t sent = 0;
    while (sent < req_len) {
        ssize_t n = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may answer (413) and close before reading everything */
        sent += (size_t)n;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    int64_t deadline = sg_test_now_ms() + 10000;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - sg_test_now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    int rc = parse_response(buf, len, res);
    free(buf);
    return rc;
}

int sg_test_http(const sg_test_proc_t *gw, const char *method, const char *path, const char *headers, const char *body,
                 size_t body_len, sg_test_response_t *res)
{
    size_t cap = 1024 + strlen(path) + (headers ? strlen(headers) : 0) + body_len;
    char *req = malloc(cap);
    int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n%s", method, path, gw->host, gw->port,
                     headers ? headers : "");
    if (body != NULL)
        n += snprintf(req + n, cap - (size_t)n, "Content-Length: %zu\r\n", body_len);
    n += snprintf(req + n, cap - (size_t)n, "\r\n");
    if (body != NULL) {
        memcpy(req + n, body, body_len);
        n += (int)body_len;
    }
    int rc = exchange(gw, req, (size_t)n, res);
    free(req);
    return rc;
}

int sg_test_send_json(const sg_test_proc_t *gw, const char *method, const char *path, const char *headers, const char *body,
                      sg_test_response_t *res)
{
    size_t len = strlen("Content-Type: application/json\r\n") + (headers ? strlen(headers) : 0) + 1;
    char *all = malloc(len);
    snprintf(all, len, "Content-Type: application/json\r\n%s", headers ? headers : "");
    int rc = sg_test_http(gw, method, path, all, body, strlen(body), res);
    free(all);
    return rc;
}

int sg_test_post_json(const sg_test_proc_t *gw, const char *path, const char *headers, const char *body, sg_test_response_t *res)
{
    return sg_test_send_json(gw, "POST", path, headers, body, res);
}

void sg_test_assert_problem_at(const sg_test_response_t *res, int status, const char *type, const char *field, const char *file,
                               int line)
{
    char ct[128], want_type[160];
    snprintf(want_type, sizeof(want_type), "urn:streamgate:problem:%s", type);
    json_t *doc = res->body != NULL ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    const char *got_type = json_string_value(json_object_get(doc, "type"));
    const char *title = json_string_value(json_object_get(doc, "title"));
    const char *detail = json_string_value(json_object_get(doc, "detail"));
    const char *got_field = json_string_value(json_object_get(doc, "field"));
    const char *wrong = NULL;
    if (res->status != status)
        wrong = "HTTP status";
    else if (sg_test_header(res, "content-type", ct, sizeof(ct)) == NULL || strcmp(ct, "application/problem+json") != 0)
        wrong = "Content-Type (not application/problem+json)";
    else if (doc == NULL)
        wrong = "body (not JSON)";
    else if (got_type == NULL || strcmp(got_type, want_type) != 0)
        wrong = "type";
    else if (!json_is_integer(json_object_get(doc, "status")) || json_integer_value(json_object_get(doc, "status")) != status)
        wrong = "status member";
    else if (title == NULL)
        wrong = "title (missing)";
    else if (detail == NULL || strlen(detail) <= 5)
        wrong = "detail (missing or too short)";
    else if (field != NULL && (got_field == NULL || strcmp(got_field, field) != 0))
        wrong = "field";
    json_decref(doc);
    if (wrong != NULL) {
        fprintf(stderr, "%s:%d: expected a %d problem %s%s%s; wrong %s in: %d %s\n", file, line, status, want_type,
                field ? " with field " : "", field ? field : "", wrong, res->status, res->body ? res->body : "(no body)");
        _fail(file, line);
    }
}

void sg_test_h2load_at(const sg_test_proc_t *gw, const char *path, const char *body, int requests, const char *const *options,
                       const char *file, int line)
{
    char url[512], count[16], want_ok[64], want_2xx[64], out[8192];
    snprintf(url, sizeof(url), "http://%s:%u%s", gw->host, gw->port, path);
    snprintf(count, sizeof(count), "%d", requests);
    char *body_path = sg_test_write_temp("body.json", body);
    const char *args[40] = {"/usr/bin/h2load", "-n", count};
    size_t n = 3;
    for (size_t i = 0; options != NULL && options[i] != NULL && n < 32; ++i)
        args[n++] = options[i];
    const char *tail[] = {"-d", body_path, "-H", "content-type: application/json", url, NULL};
    memcpy(args + n, tail, sizeof(tail));
    int status = body_path != NULL ? sg_test_run(args, out, sizeof(out)) : -1;
    sg_test_remove_temp(body_path);
    snprintf(want_ok, sizeof(want_ok), "%d succeeded, 0 failed, 0 errored", requests);
    snprintf(want_2xx, sizeof(want_2xx), "status codes: %d 2xx", requests);
    if (status != 0 || strstr(out, want_ok) == NULL || strstr(out, want_2xx) == NULL) {
        fprintf(stderr, "%s:%d: h2load (exit %d) did not report \"%s\" and \"%s\":\n%s\n", file, line, status, want_ok, want_2xx,
                status == -1 ? "" : out);
        _fail(file, line);
    }
}

int sg_test_http_raw(const sg_test_proc_t *gw, const char *raw, size_t raw_len, sg_test_response_t *res)
{
    return exchange(gw, raw, raw_len, res);
}

const char *sg_test_header(const sg_test_response_t *res, const char *name, char *buf, size_t buflen)
{
    size_t nlen = strlen(name);
    for (const char *p = res->headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t llen = eol ? (size_t)(eol - p) : strlen(p);
        if (llen > nlen + 1 && strncmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (*v == ' ')
                ++v;
            snprintf(buf, buflen, "%.*s", (int)(p + llen - v), v);
            return buf;
        }
        p = eol ? eol + 2 : p + llen;
    }
    return NULL;
}

void sg_test_response_free(sg_test_response_t *res)
{
    free(res->headers);
    free(res->body);
    memset(res, 0, sizeof(*res));
}

static rd_kafka_t *new_consumer(const char *bootstrap)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "sg-test", err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL)
        rd_kafka_conf_destroy(conf);
    return rk;
}

int sg_test_consume(const char *bootstrap, const char *topic, int32_t partition, int64_t offset, sg_test_record_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    rd_kafka_t *rk = new_consumer(bootstrap);
    if (rk == NULL)
        return -1;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = offset;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    int rc = -1;
    int64_t deadline = sg_test_now_ms() + 10000;
    while (rc != 0 && sg_test_now_ms() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 200);
        if (msg == NULL)
            continue;
        if (msg->err == 0 && msg->offset == offset) {
            rec->key_len = msg->key_len;
            rec->key = malloc(msg->key_len + 1);
            if (msg->key_len > 0)
                memcpy(rec->key, msg->key, msg->key_len);
            rec->key[msg->key_len] = '\0';
            rec->value_len = msg->len;
            rec->value = malloc(msg->len + 1);
            memcpy(rec->value, msg->payload, msg->len);
            rec->value[msg->len] = '\0';
            rd_kafka_timestamp_type_t tstype;
            rec->timestamp_ms = rd_kafka_message_timestamp(msg, &tstype);
            rec->log_append_time = tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME;
            rd_kafka_headers_t *hdrs = NULL;
            if (rd_kafka_message_headers(msg, &hdrs) == 0) {
                const char *name;
                const void *value;
                size_t size;
                for (size_t i = 0; i < 16 && rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == 0; ++i) {
                    rec->header_names[i] = strdup(name);
                    rec->header_values[i] = malloc(size + 1);
                    memcpy(rec->header_values[i], value, size);
                    rec->header_values[i][size] = '\0';
                    rec->header_lens[i] = size;
                    rec->n_headers = i + 1;
                }
            }
            rc = 0;
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

const char *sg_test_record_header(const sg_test_record_t *rec, const char *name, char *buf, size_t buflen)
{
    for (size_t i = 0; i < rec->n_headers; ++i)
        if (strcmp(rec->header_names[i], name) == 0) {
            snprintf(buf, buflen, "%s", rec->header_values[i]);
            return buf;
        }
    return NULL;
}

void sg_test_record_free(sg_test_record_t *rec)
{
    free(rec->key);
    free(rec->value);
    for (size_t i = 0; i < rec->n_headers; ++i) {
        free(rec->header_names[i]);
        free(rec->header_values[i]);
    }
    memset(rec, 0, sizeof(*rec));
}

int64_t sg_test_topic_count(const char *bootstrap, const char *topic)
{
    rd_kafka_t *rk = new_consumer(bootstrap);
    if (rk == NULL)
        return -1;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int64_t total = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0 && md->topic_cnt == 1 && md->topics[0].err == 0) {
        total = 0;
        for (int p = 0; p < md->topics[0].partition_cnt; ++p) {
            int64_t low, high;
            if (rd_kafka_query_watermark_offsets(rk, topic, md->topics[0].partitions[p].id, &low, &high, 10000) != 0) {
                total = -1;
                break;
            }
            total += high;
        }
    }
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return total;
}

int sg_test_run(const char *const *args, char *out, size_t outlen)
{
    char path[] = "/tmp/sg-run-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    pid_t pid = spawn(args, path);
    int status = 0;
    int64_t deadline = sg_test_now_ms() + DEADLINE_MS;
    pid_t done = 0;
    while (sg_test_now_ms() < deadline && (done = waitpid(pid, &status, WNOHANG)) == 0)
        sg_test_sleep_ms(10);
    if (done != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        unlink(path);
        return -1;
    }
    char *text = read_file(path);
    snprintf(out, outlen, "%s", text ? text : "");
    free(text);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

char *sg_test_write_temp(const char *name, const char *text)
{
    char dir[] = "/tmp/sg-file-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return NULL;
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = malloc(len);
    snprintf(path, len, "%s/%s", dir, name);
    char *content = replace_all(text, "@DIR@", dir);
    FILE *fp = fopen(path, "w");
    int ok = fp != NULL && fputs(content, fp) >= 0;
    if (fp != NULL)
        ok &= fclose(fp) == 0;
    free(content);
    if (!ok) {
        sg_test_remove_temp(path);
        return NULL;
    }
    return path;
}

void sg_test_remove_temp(char *path)
{
    if (path == NULL)
        return;
    char *slash = strrchr(path, '/');
    if (slash != NULL && slash != path) {
        *slash = '\0';
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", path);
    }
    free(path);
}

static int all_threads_stopped(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return 0;
    int stopped = 1;
    struct dirent *entry;
    while (stopped && (entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char stat_path[128], buf[512];
        snprintf(stat_path, sizeof(stat_path), "%s/%s/stat", path, entry->d_name);
        FILE *fp = fopen(stat_path, "r");
        if (fp == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        const char *close_paren = strrchr(buf, ')');
        stopped = close_paren != NULL && close_paren[1] == ' ' && (close_paren[2] == 'T' || close_paren[2] == 't');
    }
    closedir(dir);
    return stopped;
}

int sg_test_freeze(pid_t pid)
{
    if (kill(pid, SIGSTOP) != 0)
        return -1;
    for (int64_t deadline = sg_test_now_ms() + 5000; sg_test_now_ms() < deadline; sg_test_sleep_ms(1))
        if (all_threads_stopped(pid))
            return 0;
    return -1;
}

/* --- real Kafka ---------------------------------------------------------------------------- */

static int idempotence_stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    json_t *stats = json_loadb(json, json_len, 0, NULL);
    const char *state = json_string_value(json_object_get(json_object_get(stats, "eos"), "idemp_state"));
    if (state != NULL && strcmp(state, "Assigned") == 0)
        atomic_store((atomic_int *)opaque, 1);
    json_decref(stats);
    return 0;
}

/* A fresh cluster creates and loads __transaction_state when the first idempotent producer asks
 * for a producer id ("coordinator load in progress" until then): seconds on a loaded machine,
 * charged to whichever test produces first. Waits (bounded) until the cluster hands one out. */
static void warm_up(const char *bootstrap)
{
    static atomic_int assigned;
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "statistics.interval.ms", "50", err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rd_kafka_conf_set_stats_cb(conf, idempotence_stats_cb);
    rd_kafka_conf_set_opaque(conf, &assigned);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return;
    }
    int64_t start = sg_test_now_ms();
    while (!atomic_load(&assigned) && sg_test_now_ms() < start + 2 * DEADLINE_MS)
        rd_kafka_poll(rk, 20);
    if (!atomic_load(&assigned))
        fprintf(stderr, "real Kafka: no producer id after %d ms (going on)\n", 2 * DEADLINE_MS);
    rd_kafka_destroy(rk);
}

const char *sg_test_real_kafka(void)
{
    static char bootstrap[1024];
    static int loaded;
    if (!loaded) {
        loaded = 1;
        const char *dir = getenv("SG_TEST_KAFKA");
        if (dir != NULL && dir[0] != '\0') {
            char path[512];
            snprintf(path, sizeof(path), "%s/bootstrap", dir);
            char *text = read_file(path);
            if (text == NULL) {
                /* A test asked to run on a cluster that is not there: no silent fallback to the mock. */
                fprintf(stderr, "SG_TEST_KAFKA=%s: no %s (is the cluster up?)\n", dir, path);
                abort();
            }
            text[strcspn(text, "\n")] = '\0';
            snprintf(bootstrap, sizeof(bootstrap), "%s", text);
            free(text);
            warm_up(bootstrap);
        }
    }
    return bootstrap[0] != '\0' ? bootstrap : NULL;
}

/* PIDs of the real cluster's running nodes (from SG_TEST_KAFKA/nodes: "ID PID PORT"). */
static size_t real_kafka_pids(pid_t *pids, size_t max)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/nodes", getenv("SG_TEST_KAFKA"));
    FILE *fp = fopen(path, "r");
    size_t n = 0;
    int id, pid, port;
    while (fp != NULL && n < max && fscanf(fp, "%d %d %d", &id, &pid, &port) == 3)
        if (pid > 0)
            pids[n++] = pid;
    if (fp != NULL)
        fclose(fp);
    return n;
}

int sg_test_cluster_freeze(const sg_test_proc_t *cluster)
{
    if (!cluster->external)
        return sg_test_freeze(cluster->pid);
    pid_t pids[64];
    size_t n = real_kafka_pids(pids, 64);
    for (size_t i = 0; i < n; ++i)
        if (sg_test_freeze(pids[i]) != 0)
            return -1;
    return n > 0 ? 0 : -1;
}

int sg_test_cluster_thaw(const sg_test_proc_t *cluster)
{
    if (!cluster->external)
        return kill(cluster->pid, SIGCONT);
    pid_t pids[64];
    size_t n = real_kafka_pids(pids, 64);
    int rc = n > 0 ? 0 : -1;
    for (size_t i = 0; i < n; ++i)
        rc |= kill(pids[i], SIGCONT);
    return rc;
}

static rd_kafka_t *new_admin(const char *bootstrap)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL)
        rd_kafka_conf_destroy(conf);
    return rk;
}

/* Whether every partition of the topic has a leader, as the cluster's metadata says. */
static int topic_has_leaders(rd_kafka_t *rk, const char *topic, int partitions)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int ok = rd_kafka_metadata(rk, 0, rkt, &md, 5000) == 0 && md->topic_cnt == 1 && md->topics[0].err == 0 &&
             md->topics[0].partition_cnt == partitions;
    for (int p = 0; ok && p < md->topics[0].partition_cnt; ++p)
        ok = md->topics[0].partitions[p].err == 0 && md->topics[0].partitions[p].leader >= 0;
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return ok;
}

int sg_test_create_topic(const char *bootstrap, const char *topic, int partitions, int replication, const char *const *configs)
{
    rd_kafka_t *rk = new_admin(bootstrap);
    if (rk == NULL)
        return -1;
    char err[512];
    int rc = -1;
    rd_kafka_NewTopic_t *newtopic = rd_kafka_NewTopic_new(topic, partitions, replication, err, sizeof(err));
    if (newtopic == NULL) {
        fprintf(stderr, "topic %s: %s\n", topic, err);
        rd_kafka_destroy(rk);
        return -1;
    }
    for (size_t i = 0; configs != NULL && configs[i] != NULL && configs[i + 1] != NULL; i += 2)
        rd_kafka_NewTopic_set_config(newtopic, configs[i], configs[i + 1]);
    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &newtopic, 1, NULL, queue);
    rd_kafka_event_t *event = rd_kafka_queue_poll(queue, DEADLINE_MS);
    const rd_kafka_CreateTopics_result_t *result = event ? rd_kafka_event_CreateTopics_result(event) : NULL;
    size_t n = 0;
    const rd_kafka_topic_result_t **results = result ? rd_kafka_CreateTopics_result_topics(result, &n) : NULL;
    if (event == NULL || rd_kafka_event_error(event) != 0 || n != 1) {
        fprintf(stderr, "creating topic %s: %s\n", topic, event ? rd_kafka_event_error_string(event) : "no answer");
    } else if (rd_kafka_topic_result_error(results[0]) != 0 &&
               rd_kafka_topic_result_error(results[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        fprintf(stderr, "creating topic %s: %s\n", topic, rd_kafka_err2str(rd_kafka_topic_result_error(results[0])));
    } else {
        for (int64_t deadline = sg_test_now_ms() + DEADLINE_MS; rc != 0 && sg_test_now_ms() < deadline; sg_test_sleep_ms(50))
            if (topic_has_leaders(rk, topic, partitions))
                rc = 0;
        if (rc != 0)
            fprintf(stderr, "topic %s: partitions without a leader after %d ms\n", topic, DEADLINE_MS);
    }
    if (event != NULL)
        rd_kafka_event_destroy(event);
    rd_kafka_queue_destroy(queue);
    rd_kafka_NewTopic_destroy(newtopic);
    rd_kafka_destroy(rk);
    return rc;
}

int sg_test_topic_config(const char *bootstrap, const char *topic, const char *name, char *out, size_t outlen)
{
    rd_kafka_t *rk = new_admin(bootstrap);
    if (rk == NULL)
        return -1;
    rd_kafka_ConfigResource_t *resource = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, &resource, 1, NULL, queue);
    rd_kafka_event_t *event = rd_kafka_queue_poll(queue, DEADLINE_MS);
    const rd_kafka_DescribeConfigs_result_t *result = event != NULL ? rd_kafka_event_DescribeConfigs_result(event) : NULL;
    size_t n = 0;
    const rd_kafka_ConfigResource_t **described = result != NULL ? rd_kafka_DescribeConfigs_result_resources(result, &n) : NULL;
    int rc = -1;
    if (n == 1 && rd_kafka_ConfigResource_error(described[0]) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        size_t n_entries = 0;
        const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(described[0], &n_entries);
        for (size_t e = 0; e < n_entries && rc != 0; ++e)
            if (strcmp(rd_kafka_ConfigEntry_name(entries[e]), name) == 0 && rd_kafka_ConfigEntry_value(entries[e]) != NULL) {
                snprintf(out, outlen, "%s", rd_kafka_ConfigEntry_value(entries[e]));
                rc = 0;
            }
    }
    if (event != NULL)
        rd_kafka_event_destroy(event);
    rd_kafka_queue_destroy(queue);
    rd_kafka_ConfigResource_destroy(resource);
    rd_kafka_destroy(rk);
    return rc;
}

/* --- the worker ------------------------------------------------------------------------- */

typedef struct st_due_t {
    int64_t due_ms;
    char *correlation;
    size_t correlation_len;
    char status[8];
    char *body;
    size_t body_len;
    char *content_type;
    char *header_name, *header_value;
    char reply_topic[256];   /* from kafka_replyTopic */
    int32_t reply_partition; /* from kafka_replyPartition, or -1 */
    struct st_due_t *next;
} due_t;

struct st_sg_test_worker_t {
    pthread_t thread;
    char bootstrap[256], request_topic[128];
    char correlation_header[128], reply_topic_header[128]; /* the names it reads and writes */
    int partitions;
    atomic_int stop;
    atomic_int ready;              /* the consumer has its partitions and their start offsets */
    _Atomic int64_t last_reply_ms; /* monotonic time of the last reply produced */
};

static void send_reply(sg_test_worker_t *worker, rd_kafka_t *producer, const due_t *due)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(4);
    rd_kafka_header_add(hdrs, worker->correlation_header, -1, due->correlation, (ssize_t)due->correlation_len);
    rd_kafka_header_add(hdrs, ":status", -1, due->status, -1);
    rd_kafka_header_add(hdrs, "content-type", -1, due->content_type, -1);
    if (due->header_name != NULL)
        rd_kafka_header_add(hdrs, due->header_name, -1, due->header_value, -1);
    rd_kafka_header_add(hdrs, "x-secret", -1, "not for clients", -1);
    rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(due->reply_topic),
                      RD_KAFKA_V_PARTITION(due->reply_partition >= 0 ? due->reply_partition : RD_KAFKA_PARTITION_UA),
                      RD_KAFKA_V_VALUE(due->body, due->body_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                      RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    atomic_store(&worker->last_reply_ms, sg_test_now_ms());
}

static void due_free(due_t *due)
{
    free(due->correlation);
    free(due->body);
    free(due->content_type);
    free(due->header_name);
    free(due->header_value);
    free(due);
}

static void *worker_main(void *arg)
{
    sg_test_worker_t *worker = arg;
    const char *bootstrap = worker->bootstrap;
    char err[256];
    rd_kafka_conf_t *cconf = rd_kafka_conf_new();
    rd_kafka_conf_set(cconf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(cconf, "group.id", "test-worker", err, sizeof(err));
    /* The worker assigns its partitions itself and needs no committed offsets: with auto-commit,
     * closing it after its cluster went away (a gateway restart takes the embedded cluster with it)
     * waited ~45 s for a coordinator to commit to. */
    rd_kafka_conf_set(cconf, "enable.auto.commit", "false", err, sizeof(err));
    /* The mock cluster holds an empty fetch for the whole fetch.wait.max.ms (500 ms by default),
     * which would delay every reply; a real broker answers as soon as a record arrives, so there
     * the worker keeps librdkafka's defaults. */
    if (sg_test_real_kafka() == NULL)
        rd_kafka_conf_set(cconf, "fetch.wait.max.ms", "5", err, sizeof(err));
    rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof(err));
    rd_kafka_conf_t *pconf = rd_kafka_conf_new();
    rd_kafka_conf_set(pconf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(pconf, "linger.ms", "0", err, sizeof(err));
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof(err));
    /* Each partition from its low watermark, looked up before the assignment: once ready, the
     * worker is connected and fetching, so a test's first request does not wait for its start-up
     * (on a loaded machine that took longer than a 1.5 s reply timeout). */
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(worker->partitions);
    for (int p = 0; p < worker->partitions; ++p) {
        int64_t low = RD_KAFKA_OFFSET_BEGINNING, high;
        if (rd_kafka_query_watermark_offsets(consumer, worker->request_topic, p, &low, &high, DEADLINE_MS) != 0)
            low = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_topic_partition_list_add(parts, worker->request_topic, p)->offset = low;
    }
    rd_kafka_assign(consumer, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    atomic_store(&worker->ready, 1);

    due_t *pending = NULL;
    while (!atomic_load(&worker->stop)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, 5);
        rd_kafka_poll(producer, 0);
        if (msg != NULL && msg->err == 0) {
            rd_kafka_headers_t *hdrs = NULL;
            const void *corr = NULL, *reply_topic = NULL;
            size_t corr_len = 0, topic_len = 0;
            json_t *doc = json_loadb(msg->payload, msg->len, 0, NULL);
            if (rd_kafka_message_headers(msg, &hdrs) == 0 &&
                rd_kafka_header_get_last(hdrs, worker->correlation_header, &corr, &corr_len) == 0 &&
                rd_kafka_header_get_last(hdrs, worker->reply_topic_header, &reply_topic, &topic_len) == 0 && doc != NULL &&
                !json_is_true(json_object_get(doc, "no_reply"))) {
                due_t *due = calloc(1, sizeof(*due));
                due->correlation_len = corr_len;
                due->correlation = malloc(corr_len);
                memcpy(due->correlation, corr, corr_len);
                if (json_is_string(json_object_get(doc, "forge")))
                    memcpy(due->correlation, json_string_value(json_object_get(doc, "forge")),
                           corr_len < strlen(json_string_value(json_object_get(doc, "forge")))
                               ? corr_len
                               : strlen(json_string_value(json_object_get(doc, "forge"))));
                const char *status = json_string_value(json_object_get(doc, "status"));
                snprintf(due->status, sizeof(due->status), "%s", status ? status : "200");
                json_t *body = json_object_get(doc, "body");
                due->body = body ? json_dumps(body, JSON_ENCODE_ANY | JSON_COMPACT) : strdup("{\"ok\":true}");
                due->body_len = strlen(due->body);
                const char *hex = json_string_value(json_object_get(doc, "body_hex")); /* raw bytes */
                if (hex != NULL) {
                    due->body_len = strlen(hex) / 2;
                    free(due->body);
                    due->body = malloc(due->body_len + 1);
                    for (size_t i = 0; i < due->body_len; ++i) {
                        unsigned byte = 0;
                        sscanf(hex + 2 * i, "%2x", &byte);
                        due->body[i] = (char)byte;
                    }
                }
                const char *ct = json_string_value(json_object_get(doc, "content_type"));
                due->content_type = strdup(ct ? ct : "application/json");
                json_t *header = json_object_get(doc, "header");
                if (json_is_array(header) && json_array_size(header) == 2) {
                    due->header_name = strdup(json_string_value(json_array_get(header, 0)));
                    due->header_value = strdup(json_string_value(json_array_get(header, 1)));
                }
                snprintf(due->reply_topic, sizeof(due->reply_topic), "%.*s", (int)topic_len, (const char *)reply_topic);
                const void *pinned = NULL;
                size_t pinned_len = 0;
                due->reply_partition = -1;
                if (rd_kafka_header_get_last(hdrs, "kafka_replyPartition", &pinned, &pinned_len) == 0 && pinned_len == 4) {
                    const unsigned char *b = pinned;
                    due->reply_partition = (int32_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
                }
                due->due_ms = sg_test_now_ms() + json_integer_value(json_object_get(doc, "delay_ms"));
                due->next = pending;
                pending = due;
            }
            json_decref(doc);
        }
        if (msg != NULL)
            rd_kafka_message_destroy(msg);
        for (due_t **at = &pending; *at != NULL;) {
            due_t *due = *at;
            if (due->due_ms <= sg_test_now_ms()) {
                send_reply(worker, producer, due);
                *at = due->next;
                due_free(due);
            } else {
                at = &due->next;
            }
        }
    }
    while (pending != NULL) {
        due_t *next = pending->next;
        due_free(pending);
        pending = next;
    }
    rd_kafka_flush(producer, 2000);
    rd_kafka_destroy(producer);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    return NULL;
}

sg_test_worker_t *sg_test_worker_start(const char *bootstrap, const char *request_topic, int partitions)
{
    return sg_test_worker_start_named(bootstrap, request_topic, partitions, "kafka_correlationId", "kafka_replyTopic");
}

sg_test_worker_t *sg_test_worker_start_named(const char *bootstrap, const char *request_topic, int partitions,
                                             const char *correlation_header, const char *reply_topic_header)
{
    sg_test_worker_t *worker = calloc(1, sizeof(*worker));
    snprintf(worker->correlation_header, sizeof(worker->correlation_header), "%s", correlation_header);
    snprintf(worker->reply_topic_header, sizeof(worker->reply_topic_header), "%s", reply_topic_header);
    snprintf(worker->bootstrap, sizeof(worker->bootstrap), "%s", bootstrap);
    snprintf(worker->request_topic, sizeof(worker->request_topic), "%s", request_topic);
    worker->partitions = partitions;
    if (pthread_create(&worker->thread, NULL, worker_main, worker) != 0) {
        free(worker);
        return NULL;
    }
    for (int64_t deadline = sg_test_now_ms() + 2 * DEADLINE_MS; !atomic_load(&worker->ready) && sg_test_now_ms() < deadline;)
        sg_test_sleep_ms(5);
    return worker;
}

void sg_test_worker_stop(sg_test_worker_t *worker)
{
    if (worker == NULL)
        return;
    atomic_store(&worker->stop, 1);
    pthread_join(worker->thread, NULL);
    free(worker);
}

int64_t sg_test_worker_last_reply_ms(const sg_test_worker_t *worker)
{
    return atomic_load(&worker->last_reply_ms);
}

int sg_test_proc_kill9(sg_test_proc_t *proc)
{
    if (proc->pid <= 0)
        return -1;
    int status = 0;
    int killed = kill(proc->pid, SIGKILL) == 0 && waitpid(proc->pid, &status, 0) == proc->pid && WIFSIGNALED(status) &&
                 WTERMSIG(status) == SIGKILL;
    proc->pid = 0;
    return killed ? 0 : -1;
}

int sg_test_gateway_rerun(sg_test_proc_t *gw, int wait_ready)
{
    if (gw->pid > 0 || gw->dir[0] == '\0')
        return -1;
    char addr_path[512];
    snprintf(addr_path, sizeof(addr_path), "%s/data/listen.addr", gw->dir);
    unlink(addr_path); /* a killed gateway leaves its old one behind */
    gw->port = 0;
    return run_gateway(gw, wait_ready);
}

int sg_test_proc_terminate(sg_test_proc_t *proc)
{
    if (proc->pid <= 0)
        return -1;
    kill(proc->pid, SIGTERM);
    int64_t deadline = sg_test_now_ms() + DEADLINE_MS;
    int status = 0;
    pid_t done = 0;
    while (sg_test_now_ms() < deadline && (done = waitpid(proc->pid, &status, WNOHANG)) == 0)
        sg_test_sleep_ms(10);
    int exited = done == proc->pid && WIFEXITED(status);
    if (done != proc->pid) {
        kill(proc->pid, SIGKILL);
        waitpid(proc->pid, NULL, 0);
    }
    proc->pid = 0;
    if (!exited) {
        dump_log(proc);
        return -1;
    }
    if (WEXITSTATUS(status) != 0)
        dump_log(proc);
    return WEXITSTATUS(status);
}

char *sg_test_poll_done(const sg_test_proc_t *gw, const char *location, int timeout_ms)
{
    for (int64_t deadline = sg_test_now_ms() + timeout_ms; sg_test_now_ms() < deadline;) {
        sg_test_response_t res;
        if (sg_test_http(gw, "GET", location, "Prefer: wait=5\r\n", NULL, 0, &res) == 0) {
            json_t *doc = res.status == 200 ? json_loads(res.body, 0, NULL) : NULL;
            const char *state = json_string_value(json_object_get(doc, "state"));
            int done = state != NULL && strcmp(state, "done") == 0;
            json_decref(doc);
            if (done) {
                char *body = res.body;
                res.body = NULL;
                sg_test_response_free(&res);
                return body;
            }
            sg_test_response_free(&res);
        }
        sg_test_sleep_ms(200);
    }
    return NULL;
}
