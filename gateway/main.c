/*
 * streamgate's command line: run the gateway, check a config, or run only the embedded cluster.
 *
 * Signals are blocked in every thread (the mask is set before any thread, librdkafka's included,
 * is created) and taken synchronously by main() with sigwait(), so shutdown runs as ordinary
 * code on the main thread: stop accepting, let in-flight commands finish, flush the producer,
 * stop the loops.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server.h"
#include "sg_auth.h"
#include "sg_base.h"
#include "sg_bridge.h"
#include "sg_lookup.h"
#include "sg_log.h"
#include "sg_cluster.h"
#include "sg_conf.h"
#include "sg_deployment.h"
#include "sg_placement.h"
#include "sg_materializer.h"
#include "sg_registry.h"
#include "sg_table.h"

#define SG_EXIT_FAILURE 1
#define SG_EXIT_USAGE 2

static const char usage[] =
    "usage: streamgate CONFIG                 run the gateway\n"
    "       streamgate --check CONFIG         validate CONFIG and exit\n"
    "       streamgate cluster [--brokers N] [--bootstrap-file PATH] [--topic NAME:PARTITIONS ...]\n"
    "                          [--leader TOPIC:PARTITION:BROKER ...] [--follower TOPIC:PARTITION:BROKER ...]\n"
    "                          [--rtt BROKER:MS ...]\n"
    "                                         run only the embedded Kafka cluster until SIGTERM\n"
    "       streamgate --config-reference     print every config key with its type and default\n"
    "       streamgate --help | --version\n";

static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Waits for SIGTERM/SIGINT; every second without one, runs `tick` (if any) on this thread. */
static int wait_for_signal(const sigset_t *set, void (*tick)(void *), void *arg)
{
    for (;;) {
        struct timespec second = {1, 0};
        int sig = sigtimedwait(set, NULL, &second);
        if (sig > 0)
            return sig;
        if (tick != NULL)
            tick(arg);
    }
}

static void maintain(void *server)
{
    sg_server_maintain(server);
}

static int mkdir_p(const char *path, char *err, size_t errlen)
{
    char buf[4096];
    if (strlen(path) >= sizeof(buf)) {
        snprintf(err, errlen, "data_dir: path too long");
        return -1;
    }
    strcpy(buf, path);
    for (char *p = buf + 1; *p; ++p) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            goto fail;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "data_dir: cannot create %s: %s", buf, strerror(errno));
    return -1;
}

/* Writes `text` to `path` atomically (temp file + rename): readers such as tests and workers
 * polling for kafka.bootstrap or listen.addr never see a half-written file. */
static int write_file(const char *path, const char *text, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    FILE *fp = fopen(tmp, "w");
    int failed = fp == NULL;
    if (fp != NULL) {
        failed |= fputs(text, fp) < 0;
        failed |= fclose(fp) != 0;
    }
    if (failed || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int write_bootstrap_file(const sg_cluster_t *cluster, const char *path, char *err, size_t errlen)
{
    char text[4096];
    snprintf(text, sizeof(text), "%s\n", sg_cluster_bootstraps(cluster));
    return write_file(path, text, err, errlen);
}

/* --- streamgate cluster ------------------------------------------------------------------ */

static int parse_topic_arg(const char *arg, char *name, size_t namelen, int *partitions)
{
    const char *colon = strrchr(arg, ':');
    size_t len = colon ? (size_t)(colon - arg) : strlen(arg);
    if (len == 0 || len >= namelen)
        return -1;
    memcpy(name, arg, len);
    name[len] = '\0';
    *partitions = 1;
    if (colon != NULL) {
        char *end;
        long value = strtol(colon + 1, &end, 10);
        if (*end != '\0' || value < 1 || value > 10000)
            return -1;
        *partitions = (int)value;
    }
    return 0;
}

/* "TOPIC:PARTITION:BROKER" (topic names cannot contain ':'). */
static int parse_placement(const char *arg, char *topic, size_t topiclen, int32_t *partition, int32_t *broker)
{
    const char *first = strchr(arg, ':');
    const char *second = first ? strchr(first + 1, ':') : NULL;
    if (first == NULL || second == NULL || first == arg || (size_t)(first - arg) >= topiclen)
        return -1;
    char *end;
    long p = strtol(first + 1, &end, 10);
    if (end != second || p < 0 || p > 100000)
        return -1;
    long b = strtol(second + 1, &end, 10);
    if (*end != '\0' || b < 1 || b > 16)
        return -1;
    memcpy(topic, arg, (size_t)(first - arg));
    topic[first - arg] = '\0';
    *partition = (int32_t)p;
    *broker = (int32_t)b;
    return 0;
}

static int parse_rtt(const char *arg, int32_t *broker, int *rtt_ms)
{
    char *end;
    long b = strtol(arg, &end, 10);
    if (*end != ':' || b < -1 || b > 16 || b == 0)
        return -1;
    long ms = strtol(end + 1, &end, 10);
    if (*end != '\0' || ms < 0 || ms > 60000)
        return -1;
    *broker = (int32_t)b;
    *rtt_ms = (int)ms;
    return 0;
}

static int run_cluster(int argc, char **argv)
{
    static const struct option options[] = {
        {"brokers", required_argument, NULL, 'b'},  {"bootstrap-file", required_argument, NULL, 'f'},
        {"topic", required_argument, NULL, 't'},    {"leader", required_argument, NULL, 'l'},
        {"follower", required_argument, NULL, 'F'}, {"rtt", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    int brokers = 1;
    const char *bootstrap_file = NULL;
    char err[512];
    optind = 1;
    int opt;
    /* First pass: options other than topics, so topics are created on the right broker count. */
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'b': {
            char *end;
            long value = strtol(optarg, &end, 10);
            if (*end != '\0' || value < 1 || value > 16) {
                fprintf(stderr, "streamgate cluster: --brokers must be 1..16, not %s\n", optarg);
                return SG_EXIT_USAGE;
            }
            brokers = (int)value;
            break;
        }
        case 'f': bootstrap_file = optarg; break;
        case 't': {
            char name[256];
            int partitions;
            if (parse_topic_arg(optarg, name, sizeof(name), &partitions) != 0) {
                fprintf(stderr, "streamgate cluster: --topic expects NAME:PARTITIONS (1..10000), not %s\n", optarg);
                return SG_EXIT_USAGE;
            }
            break;
        }
        case 'l':
        case 'F': {
            char topic[256];
            int32_t partition, broker;
            if (parse_placement(optarg, topic, sizeof(topic), &partition, &broker) != 0) {
                fprintf(stderr, "streamgate cluster: --%s expects TOPIC:PARTITION:BROKER (broker 1..16), not %s\n",
                        opt == 'l' ? "leader" : "follower", optarg);
                return SG_EXIT_USAGE;
            }
            break;
        }
        case 'r': {
            int32_t broker;
            int rtt_ms;
            if (parse_rtt(optarg, &broker, &rtt_ms) != 0) {
                fprintf(stderr,
                        "streamgate cluster: --rtt expects BROKER:MS (broker 1..16 or -1 for all, "
                        "0..60000 ms), not %s\n",
                        optarg);
                return SG_EXIT_USAGE;
            }
            break;
        }
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return SG_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "streamgate cluster: unexpected argument %s\n%s", argv[optind], usage);
        return SG_EXIT_USAGE;
    }
    sigset_t set;
    block_signals(&set);
    sg_cluster_t *cluster = sg_cluster_create(brokers, err, sizeof(err));
    if (cluster == NULL) {
        sg_log_info("%s", err);
        return SG_EXIT_FAILURE;
    }
    /* Topics first, then placements and latencies (which refer to them), in command-line order. */
    for (int pass = 0; pass < 2; ++pass) {
        optind = 1;
        while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
            char name[256];
            int partitions, rtt_ms;
            int32_t partition, broker;
            int rc = 0;
            if (pass == 0 && opt == 't') {
                parse_topic_arg(optarg, name, sizeof(name), &partitions);
                rc = sg_cluster_create_topic(cluster, name, partitions, brokers, err, sizeof(err));
            } else if (pass == 1 && (opt == 'l' || opt == 'F')) {
                parse_placement(optarg, name, sizeof(name), &partition, &broker);
                rc = opt == 'l' ? sg_cluster_set_leader(cluster, name, partition, broker, err, sizeof(err))
                                : sg_cluster_set_follower(cluster, name, partition, broker, err, sizeof(err));
            } else if (pass == 1 && opt == 'r') {
                parse_rtt(optarg, &broker, &rtt_ms);
                rc = sg_cluster_set_rtt(cluster, broker, rtt_ms, err, sizeof(err));
            }
            if (rc != 0) {
                sg_log_info("%s", err);
                sg_cluster_destroy(cluster);
                return SG_EXIT_FAILURE;
            }
        }
    }
    if (bootstrap_file != NULL && write_bootstrap_file(cluster, bootstrap_file, err, sizeof(err)) != 0) {
        sg_log_info("%s", err);
        sg_cluster_destroy(cluster);
        return SG_EXIT_FAILURE;
    }
    printf("%s\n", sg_cluster_bootstraps(cluster));
    fflush(stdout);
    sg_log_info("embedded cluster with %d broker(s) at %s", brokers, sg_cluster_bootstraps(cluster));
    int sig = wait_for_signal(&set, NULL, NULL);
    sg_log_info("signal %d: stopping the cluster", sig);
    sg_cluster_destroy(cluster);
    return 0;
}

/* --- streamgate CONFIG -------------------------------------------------------------------- */

/* log.format: json. One object per line, {"ts","level","msg"}, written whole to standard error.
 * A message is not always valid UTF-8 (it may quote client or broker bytes): other bytes become
 * U+FFFD rather than an invalid line. */
static void json_log_sink(void *ctx, sg_log_level_t level, const char *message, size_t len)
{
    char line[SG_LOG_LINE_MAX * 6 + 128];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t o = strftime(line, 64, "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
    o += (size_t)snprintf(line + o, 96, ".%03ldZ\",\"level\":\"%s\",\"msg\":\"", now.tv_nsec / 1000000, sg_log_level_name(level));
    for (size_t i = 0; i < len; ++i) {
        unsigned char ch = (unsigned char)message[i];
        size_t seq = ch < 0x80 ? 1 : (ch & 0xe0) == 0xc0 ? 2 : (ch & 0xf0) == 0xe0 ? 3 : (ch & 0xf8) == 0xf0 ? 4 : 0;
        for (size_t k = 1; k < seq; ++k)
            if (i + k >= len || ((unsigned char)message[i + k] & 0xc0) != 0x80)
                seq = 0;
        if (ch == '"' || ch == '\\') {
            line[o++] = '\\';
            line[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(line + o, 8, "\\u%04x", ch);
        } else if (seq == 0) {
            memcpy(line + o, "\xef\xbf\xbd", 3); /* U+FFFD */
            o += 3;
        } else {
            memcpy(line + o, message + i, seq);
            o += seq;
            i += seq - 1;
        }
    }
    memcpy(line + o, "\"}\n", 3);
    o += 3;
    ssize_t ignored = write(STDERR_FILENO, line, o);
    (void)ignored;
}

static int has_route_schemas(const sg_conf_t *conf)
{
    for (size_t i = 0; i < conf->n_routes; ++i)
        if (conf->routes[i].schema != NULL)
            return 1;
    return 0;
}

static int run_gateway(const char *config_path)
{
    sigset_t set;
    block_signals(&set);
    char err[1024];
    sg_conf_t *conf = sg_conf_load(config_path, err, sizeof(err));
    if (conf == NULL) {
        sg_log_error("%s", err);
        return SG_EXIT_USAGE;
    }
    sg_log_set_level((sg_log_level_t)conf->log.level);
    if (conf->log.format == SG_LOG_FORMAT_JSON)
        sg_log_set_sink(json_log_sink, NULL); /* before any other thread starts */
    /* First: a key set file that cannot be used is a config error (a jwks_url that does not
     * answer yet only keeps the gateway unready). */
    sg_auth_t *auth = NULL;
    if (conf->has_auth && (auth = sg_auth_create(&conf->auth, err, sizeof(err))) == NULL) {
        sg_log_error("%s: auth: %s", config_path, err);
        sg_conf_destroy(conf);
        return SG_EXIT_USAGE;
    }
    int rc = SG_EXIT_FAILURE;
    sg_cluster_t *cluster = NULL;
    sg_bridge_t *bridge = NULL;
    sg_server_t *server = NULL;
    sg_tables_t *tables = NULL;
    sg_materializer_t *materializer = NULL;
    sg_registry_t *registry = NULL;
    sg_deployment_t *deployment = NULL;
    sg_placement_t *placement = NULL;
    sg_lookup_t *lookup = NULL;
    if (mkdir_p(conf->data_dir, err, sizeof(err)) != 0)
        goto done;

    const char *bootstraps = conf->kafka.brokers;
    if (conf->kafka.embedded) {
        if ((cluster = sg_cluster_create(conf->kafka.embedded_brokers, err, sizeof(err))) == NULL)
            goto done;
        for (size_t i = 0; i < conf->n_topics; ++i)
            if (sg_cluster_create_topic(cluster, conf->topics[i].name, conf->topics[i].partitions, conf->topics[i].replication, err,
                                        sizeof(err)) != 0)
                goto done;
        /* The built-in registry's log; it dies with the process, like every embedded topic, so
         * config schemas get their ids again in config order on every start. */
        int declared = 0;
        for (size_t i = 0; i < conf->n_topics; ++i)
            declared |= strcmp(conf->topics[i].name, SG_REGISTRY_TOPIC) == 0;
        if (!declared && conf->schema_registry.url == NULL &&
            sg_cluster_create_topic(cluster, SG_REGISTRY_TOPIC, 1, conf->kafka.embedded_brokers, err, sizeof(err)) != 0)
            goto done;
        /* The deployment's topics, which die with it too: the secret cached in data_dir is
         * proposed again, so ids survive a restart (README, "Deployments"). */
        char deployment_topic[SG_DEPLOYMENT_TOPIC_MAX], claims_topic[SG_DEPLOYMENT_TOPIC_MAX];
        sg_deployment_topics(conf, deployment_topic, claims_topic);
        char owners_topic[256];
        sg_placement_topic(conf, owners_topic);
        if (sg_cluster_create_topic(cluster, deployment_topic, 1, conf->kafka.embedded_brokers, err, sizeof(err)) != 0 ||
            sg_cluster_create_topic(cluster, owners_topic, 1, conf->kafka.embedded_brokers, err, sizeof(err)) != 0 ||
            sg_cluster_create_topic(cluster, claims_topic, SG_DEPLOYMENT_CLAIM_PARTITIONS, conf->kafka.embedded_brokers, err,
                                    sizeof(err)) != 0)
            goto done;
        bootstraps = sg_cluster_bootstraps(cluster);
        char path[4096];
        snprintf(path, sizeof(path), "%s/kafka.bootstrap", conf->data_dir);
        if (write_bootstrap_file(cluster, path, err, sizeof(err)) != 0)
            goto done;
        sg_log_info("embedded Kafka cluster (%d broker(s), in memory) at %s, written to %s", conf->kafka.embedded_brokers,
                    bootstraps, path);
    }
    if ((bridge = sg_bridge_create(conf, bootstraps, sg_gateway_on_delivery, sg_gateway_on_reply, err, sizeof(err))) == NULL)
        goto done;
    if (!conf->kafka.embedded && conf->kafka.create_topics && sg_bridge_create_topics(bridge, 10000, err, sizeof(err)) != 0)
        goto done;
    if ((registry = sg_registry_create(conf, bootstraps, err, sizeof(err))) == NULL)
        goto done;
    if ((server = sg_server_create(conf, bridge, err, sizeof(err))) == NULL)
        goto done;
    sg_server_set_registry(server, registry);
    if ((deployment = sg_deployment_create(conf, bootstraps, sg_server_store(server), err, sizeof(err))) == NULL)
        goto done;
    sg_server_set_deployment(server, deployment);
    sg_server_set_auth(server, auth);
    /* Settles produces whose outcome librdkafka could not tell (Idempotency-Key; its thread starts
     * on first use). */
    if ((lookup = sg_lookup_create(conf, bootstraps, err, sizeof(err))) == NULL)
        goto done;
    sg_server_set_lookup(server, lookup);
    if (conf->n_tables > 0) {
        const char *names[256];
        for (size_t i = 0; i < conf->n_tables && i < 256; ++i)
            names[i] = conf->tables[i].name;
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/tables", conf->data_dir);
        if ((tables = sg_tables_open(dir, names, conf->n_tables, err, sizeof(err))) == NULL)
            goto done;
        sg_tables_set_cache(tables, conf->limits.table_cache_bytes);
        if ((materializer = sg_materializer_create(conf, bootstraps, tables, err, sizeof(err))) == NULL)
            goto done;
        sg_server_set_tables(server, tables, materializer);
        placement = sg_placement_create(conf, bootstraps, sg_deployment_instance(deployment), err, sizeof(err));
        if (placement == NULL && err[0] != '\0')
            goto done;
        sg_materializer_set_placement(materializer, placement);
        sg_server_set_placement(server, placement);
    }
    /* Config schemas before the first request, and before the threads that decode by schema id
     * (reply consumer, materializer) start reading: the registry reads its log up to where it was at
     * start, then registers them (an incompatible change fails the start). Without config schemas
     * nothing waits for it, so a gateway without Kafka still starts (unready). */
    if (sg_registry_start(registry, err, sizeof(err)) != 0)
        goto done;
    if (has_route_schemas(conf) && (sg_registry_wait_ready(registry, 30000, err, sizeof(err)) != 0 ||
                                    sg_registry_register_config(registry, 30000, err, sizeof(err)) != 0))
        goto done;
    if (sg_bridge_start(bridge, server, err, sizeof(err)) != 0)
        goto done;
    if (materializer != NULL)
        sg_materializer_set_registry(materializer, registry); /* Confluent-framed values decode by schema id */
    if (materializer != NULL && sg_materializer_start(materializer, sg_gateway_on_table_progress, server, err, sizeof(err)) != 0)
        goto done;
    char addresses[2048], path[4096], hostname[256] = "";
    sg_server_addresses(server, addresses, sizeof(addresses));
    gethostname(hostname, sizeof(hostname) - 1);
    sg_deployment_set_advertise(deployment, addresses, hostname);
    /* Command routes may take an Idempotency-Key, which is claimed deployment-wide. */
    if (sg_deployment_start(deployment, conf->requests.secret == NULL, conf->n_routes > 0, sg_gateway_on_secret,
                            sg_gateway_on_claim_completed, server, err, sizeof(err)) != 0)
        goto done;
    sg_log_info("deployment %s: instance %s, advertised as %s", sg_deployment_name(deployment), sg_deployment_instance(deployment),
                sg_deployment_advertise(deployment));
    if (placement != NULL && sg_placement_start(placement, sg_deployment_advertise(deployment), err, sizeof(err)) != 0)
        goto done;
    snprintf(path, sizeof(path), "%s/listen.addr", conf->data_dir);
    if (write_file(path, addresses, err, sizeof(err)) != 0)
        goto done;
    if (sg_server_start(server, err, sizeof(err)) != 0)
        goto done;
    for (char *line = strtok(addresses, "\n"); line != NULL; line = strtok(NULL, "\n"))
        sg_log_info("listening on %s", line);

    int sig = wait_for_signal(&set, maintain, server);
    sg_log_info("signal %d: draining (up to %lld ms)", sig, (long long)conf->shutdown_timeout_ms);
    int64_t start_ms = sg_mono_ms();
    sg_server_stop_accepting(server);
    long left = sg_server_wait_idle(server, conf->shutdown_timeout_ms);
    int64_t spent = sg_mono_ms() - start_ms;
    int64_t remaining = conf->shutdown_timeout_ms > spent ? conf->shutdown_timeout_ms - spent : 0;
    int undelivered = sg_bridge_shutdown(bridge, remaining);
    /* Claims' completions and releases go out, what is left of them within a second; then the
     * loops answer what the bridge failed (503) and what waited for the deployment. */
    sg_deployment_shutdown(deployment, 1000);
    /* Hands this instance's partitions over (the groups rebalance) and deletes its ownership
     * records, once nothing is answered here any more. */
    sg_placement_shutdown(placement, 1000);
    sg_server_wait_idle(server, 1000);
    sg_server_stop(server);
    if (left > 0 || undelivered > 0)
        sg_log_info("stopped with %ld request(s) still waiting and %d event(s) unacknowledged", left, undelivered);
    else
        sg_log_info("stopped cleanly");
    rc = 0;

done:
    if (rc != 0)
        sg_log_error("%s", err);
    sg_server_destroy(server);
    sg_deployment_destroy(deployment); /* before the store its fold writes is closed */
    sg_materializer_destroy(materializer);
    sg_placement_destroy(placement); /* after the materializer and the loops, which ask it */
    sg_tables_close(tables);
    sg_bridge_destroy(bridge);
    /* After the loops and the bridge thread (they submit lookups), before the store (a lookup's
     * answer writes to it; those still queued are answered "unknown" here and looked up again by
     * the next retry after a restart). */
    sg_lookup_destroy(lookup);
    /* Last of the three: the loops (parked writes), the materializer and the bridge thread
     * (decoding by schema id) all use it until they are stopped. */
    sg_registry_destroy(registry);
    sg_server_close_store(server);
    sg_auth_destroy(auth); /* the loops that verify have stopped */
    sg_cluster_destroy(cluster);
    sg_conf_destroy(conf);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "cluster") == 0)
        return run_cluster(argc - 1, argv + 1);
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("streamgate %s\n", SG_VERSION);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--config-reference") == 0) {
        sg_conf_dump_reference(stdout);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--check") == 0) {
        char err[1024];
        sg_conf_t *conf = sg_conf_load(argv[2], err, sizeof(err));
        if (conf == NULL) {
            fprintf(stderr, "streamgate: %s\n", err);
            return SG_EXIT_USAGE;
        }
        if (sg_registry_check_files(conf, err, sizeof(err)) != 0) {
            fprintf(stderr, "streamgate: %s: %s\n", argv[2], err);
            sg_conf_destroy(conf);
            return SG_EXIT_USAGE;
        }
        printf("%s: ok (%zu route(s), %zu topic(s))\n", argv[2], conf->n_routes, conf->n_topics);
        sg_conf_destroy(conf);
        return 0;
    }
    if (argc == 2 && argv[1][0] != '-')
        return run_gateway(argv[1]);
    fputs(usage, stderr);
    return SG_EXIT_USAGE;
}
