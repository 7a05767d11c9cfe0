/*
 * The deployment (bridge/sg_deployment.h) on librdkafka's mock cluster, with instances in this
 * process, each with its own data_dir and request store: its identity; the request-id secret,
 * which instances starting at once agree on and later ones adopt (replacing a stale cached one);
 * and Idempotency-Key claims, where exactly one of two instances claiming a key at once wins,
 * both see the same holder, completions and releases travel to every instance, and an instance
 * started later folds the same state from the log.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "sg_base.h"
#include "sg_cluster.h"
#include "sg_deployment.h"

#include "../queries/tmpfs.h"

#define WAIT_MS 30000

typedef struct {
    char dir[256];
    sg_conf_t *conf;
    sg_store_t *store;
    sg_deployment_t *deployment;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint8_t secret[SG_DEPLOYMENT_SECRET_LEN];
    int have_secret;
    int completed; /* COMPLETE records folded */
    char completed_id[33];
    sg_claim_position_t completed_pos;
    char completed_topic[64];
} inst_t;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, rc;
    sg_idem_result_t result;
} answer_t;

static sg_cluster_t *cluster;

static int setup(void **state)
{
    char err[256];
    cluster = sg_cluster_create(1, err, sizeof(err));
    return cluster != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    sg_cluster_destroy(cluster);
    return 0;
}

static void on_secret(void *ctx, const uint8_t *secret, size_t len)
{
    inst_t *inst = ctx;
    assert_int_equal(len, SG_DEPLOYMENT_SECRET_LEN);
    pthread_mutex_lock(&inst->lock);
    memcpy(inst->secret, secret, len);
    inst->have_secret = 1;
    pthread_cond_broadcast(&inst->cond);
    pthread_mutex_unlock(&inst->lock);
}

static void on_completed(void *ctx, const char *route, const char *request_id, const sg_claim_position_t *pos)
{
    inst_t *inst = ctx;
    pthread_mutex_lock(&inst->lock);
    inst->completed++;
    memcpy(inst->completed_id, request_id, 32);
    inst->completed_pos = *pos;
    snprintf(inst->completed_topic, sizeof(inst->completed_topic), "%s", pos->topic);
    inst->completed_pos.topic = inst->completed_topic;
    pthread_cond_broadcast(&inst->cond);
    pthread_mutex_unlock(&inst->lock);
}

static void make_dir(inst_t *inst)
{
    snprintf(inst->dir, sizeof(inst->dir), "/tmp/sg-test-deployment-XXXXXX");
    assert_non_null(mkdtemp(inst->dir));
}

/* Creates an instance on its data_dir (made if inst->dir is empty) with `extra` config lines. */
static void create(inst_t *inst, const char *extra)
{
    if (inst->dir[0] == '\0')
        make_dir(inst);
    char text[1024], err[512];
    snprintf(text, sizeof(text), "data_dir: %s\nkafka: {brokers: \"%s\"}\n%s", inst->dir, sg_cluster_bootstraps(cluster),
             extra != NULL ? extra : "");
    inst->conf = sg_conf_load_string("t.yaml", text, strlen(text), err, sizeof(err));
    if (inst->conf == NULL)
        fail_msg("%s", err);
    char state_dir[512];
    snprintf(state_dir, sizeof(state_dir), "%s/state", inst->dir);
    inst->store = sg_store_open(state_dir, err, sizeof(err));
    assert_non_null(inst->store);
    inst->deployment = sg_deployment_create(inst->conf, sg_cluster_bootstraps(cluster), inst->store, err, sizeof(err));
    if (inst->deployment == NULL)
        fail_msg("%s", err);
    pthread_mutex_init(&inst->lock, NULL);
    pthread_cond_init(&inst->cond, NULL);
}

static void start(inst_t *inst, int want_secret, int claims)
{
    char err[256];
    assert_int_equal(sg_deployment_start(inst->deployment, want_secret, claims, on_secret, on_completed, inst, err, sizeof(err)),
                     0);
}

static void wait_ready(inst_t *inst)
{
    int64_t until = sg_mono_ms() + WAIT_MS;
    while (!sg_deployment_is_ready(inst->deployment) && sg_mono_ms() < until)
        sg_sleep_ms(10);
    if (!sg_deployment_is_ready(inst->deployment))
        fail_msg("not ready: %s", sg_deployment_not_ready_because(inst->deployment));
}

static void destroy(inst_t *inst, int remove_dir)
{
    sg_deployment_destroy(inst->deployment);
    sg_store_close(inst->store);
    sg_conf_destroy(inst->conf);
    pthread_mutex_destroy(&inst->lock);
    pthread_cond_destroy(&inst->cond);
    if (remove_dir) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", inst->dir);
        assert_int_equal(system(cmd), 0);
        inst->dir[0] = '\0';
    }
}

static int read_file(const char *dir, const char *name, char *buf, size_t size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (int)n;
}

static void test_identity(void **state)
{
    inst_t a = {0};
    create(&a, NULL);
    char first[160], again[160];
    assert_true(read_file(a.dir, "instance.id", first, sizeof(first)) > 0);
    assert_int_equal(strlen(first), 12); /* "sg-" + 8 hex digits + "\n" */
    assert_memory_equal(first, "sg-", 3);
    assert_memory_equal(sg_deployment_instance(a.deployment), first, 11);
    assert_string_equal(sg_deployment_name(a.deployment), "default");
    /* a wildcard listener is advertised under the host name; others as they are bound */
    sg_deployment_set_advertise(a.deployment, "http://0.0.0.0:8080\n", "gw.example");
    assert_string_equal(sg_deployment_advertise(a.deployment), "http://gw.example:8080");
    sg_deployment_set_advertise(a.deployment, "https://[::]:8443\n", "gw.example");
    assert_string_equal(sg_deployment_advertise(a.deployment), "https://gw.example:8443");
    sg_deployment_set_advertise(a.deployment, "http://127.0.0.1:41234\nhttp://127.0.0.1:41235\n", "gw.example");
    assert_string_equal(sg_deployment_advertise(a.deployment), "http://127.0.0.1:41234");
    destroy(&a, 0);

    /* made once: the next start on this data_dir is the same instance */
    create(&a, NULL);
    assert_true(read_file(a.dir, "instance.id", again, sizeof(again)) > 0);
    assert_string_equal(again, first);
    assert_memory_equal(sg_deployment_instance(a.deployment), first, 11);
    destroy(&a, 0);

    /* the config names it: the file is not consulted; advertise from the config wins */
    create(&a, "deployment: {name: shop, instance: gw-1, advertise: \"http://10.0.0.7:8081\"}\n");
    assert_string_equal(sg_deployment_instance(a.deployment), "gw-1");
    assert_string_equal(sg_deployment_name(a.deployment), "shop");
    sg_deployment_set_advertise(a.deployment, "http://0.0.0.0:8080\n", "gw.example");
    assert_string_equal(sg_deployment_advertise(a.deployment), "http://10.0.0.7:8081");
    destroy(&a, 0);

    /* a file that does not hold a name stops the start, naming it */
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/instance.id", a.dir);
    FILE *f = fopen(path, "w");
    fputs("not a name\n", f);
    fclose(f);
    char text[512];
    snprintf(text, sizeof(text), "data_dir: %s\n", a.dir);
    sg_conf_t *conf = sg_conf_load_string("t.yaml", text, strlen(text), err, sizeof(err));
    assert_null(sg_deployment_create(conf, sg_cluster_bootstraps(cluster), NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "instance.id: not an instance name"));
    sg_conf_destroy(conf);
    snprintf(text, sizeof(text), "rm -rf %s", a.dir);
    assert_int_equal(system(text), 0);
}

static void wait_secret(inst_t *inst)
{
    int64_t until = sg_mono_ms() + WAIT_MS;
    pthread_mutex_lock(&inst->lock);
    while (!inst->have_secret && sg_mono_ms() < until) {
        pthread_mutex_unlock(&inst->lock);
        sg_sleep_ms(10);
        pthread_mutex_lock(&inst->lock);
    }
    int have = inst->have_secret;
    pthread_mutex_unlock(&inst->lock);
    if (!have)
        fail_msg("no secret: %s", sg_deployment_not_ready_because(inst->deployment));
}

static void test_secret_agreed(void **state)
{
    /* three instances of one deployment start at once, one with a secret cached from before */
    inst_t inst[3] = {{{0}}};
    const char *deploy = "deployment: {name: sec}\n";
    make_dir(&inst[2]);
    char path[512];
    snprintf(path, sizeof(path), "%s/request.secret", inst[2].dir);
    FILE *f = fopen(path, "wb");
    fwrite("0123456789abcdef0123456789abcdef", 1, 32, f);
    fclose(f);
    for (int i = 0; i < 3; ++i)
        create(&inst[i], deploy);
    for (int i = 0; i < 3; ++i)
        start(&inst[i], 1, 0);
    for (int i = 0; i < 3; ++i) {
        wait_secret(&inst[i]);
        wait_ready(&inst[i]);
    }
    assert_memory_equal(inst[0].secret, inst[1].secret, SG_DEPLOYMENT_SECRET_LEN);
    assert_memory_equal(inst[0].secret, inst[2].secret, SG_DEPLOYMENT_SECRET_LEN);
    /* every one caches it */
    char cached[64];
    for (int i = 0; i < 3; ++i) {
        assert_int_equal(read_file(inst[i].dir, "request.secret", cached, sizeof(cached)), SG_DEPLOYMENT_SECRET_LEN);
        assert_memory_equal(cached, inst[0].secret, SG_DEPLOYMENT_SECRET_LEN);
    }
    uint8_t agreed[SG_DEPLOYMENT_SECRET_LEN];
    memcpy(agreed, inst[0].secret, sizeof(agreed));
    for (int i = 0; i < 3; ++i)
        destroy(&inst[i], 1);

    /* later, an instance with another secret cached adopts the deployment's and replaces the file */
    inst_t late = {0};
    make_dir(&late);
    snprintf(path, sizeof(path), "%s/request.secret", late.dir);
    f = fopen(path, "wb");
    fwrite("ffffffffffffffffffffffffffffffff", 1, 32, f);
    fclose(f);
    create(&late, deploy);
    start(&late, 1, 0);
    wait_secret(&late);
    assert_memory_equal(late.secret, agreed, SG_DEPLOYMENT_SECRET_LEN);
    assert_int_equal(read_file(late.dir, "request.secret", cached, sizeof(cached)), SG_DEPLOYMENT_SECRET_LEN);
    assert_memory_equal(cached, agreed, SG_DEPLOYMENT_SECRET_LEN);
    destroy(&late, 1);

    /* another deployment on the same cluster has a secret of its own */
    inst_t other = {0};
    create(&other, "deployment: {name: other}\n");
    start(&other, 1, 0);
    wait_secret(&other);
    assert_memory_not_equal(other.secret, agreed, SG_DEPLOYMENT_SECRET_LEN);
    destroy(&other, 1);
}

static void on_claim(void *opaque, int rc, const sg_idem_result_t *result, const char *why)
{
    answer_t *answer = opaque;
    pthread_mutex_lock(&answer->lock);
    answer->rc = rc;
    if (result != NULL)
        answer->result = *result;
    answer->done = 1;
    pthread_cond_broadcast(&answer->cond);
    pthread_mutex_unlock(&answer->lock);
}

static void on_published(void *opaque, int rc)
{
    on_claim(opaque, rc, NULL, NULL);
}

static void answer_init(answer_t *answer)
{
    memset(answer, 0, sizeof(*answer));
    pthread_mutex_init(&answer->lock, NULL);
    pthread_cond_init(&answer->cond, NULL);
}

static void answer_wait(answer_t *answer)
{
    int64_t until = sg_mono_ms() + WAIT_MS;
    pthread_mutex_lock(&answer->lock);
    while (!answer->done && sg_mono_ms() < until) {
        pthread_mutex_unlock(&answer->lock);
        sg_sleep_ms(2);
        pthread_mutex_lock(&answer->lock);
    }
    int done = answer->done;
    pthread_mutex_unlock(&answer->lock);
    assert_true(done);
    pthread_mutex_destroy(&answer->lock);
    pthread_cond_destroy(&answer->cond);
}

static void sha(const char *text, uint8_t out[32])
{
    SHA256((const unsigned char *)text, strlen(text), out);
}

/* A request id of 32 characters, as the gateway's are. */
static void request_id(char out[33], const char *who, int n)
{
    snprintf(out, 33, "%-8s%024d", who, n);
}

static void claim(inst_t *inst, const char *key_text, const char *body, const char *id, answer_t *answer)
{
    uint8_t key[32], body_sha[32];
    char err[256];
    sha(key_text, key);
    sha(body, body_sha);
    answer_init(answer);
    int64_t now = sg_now_ms();
    if (sg_claims_claim(inst->deployment, "orders", key, body_sha, id, 32, now, now + 3600000, on_claim, answer, err,
                        sizeof(err)) != 0)
        fail_msg("claim: %s", err);
}

/* The state of a key in inst's store, once it shows `kind` (or the wait ends). */
static int store_kind(inst_t *inst, const char *key_text, const char *body, int kind, sg_idem_result_t *result)
{
    uint8_t key[32], body_sha[32];
    char err[256];
    sha(key_text, key);
    sha(body, body_sha);
    int64_t until = sg_mono_ms() + WAIT_MS;
    int rc;
    do {
        rc = sg_store_idem_get(inst->store, "orders", key, 32, body_sha, sg_now_ms(), result, err, sizeof(err));
        if (rc == 0 && (int)result->kind == kind)
            return kind;
        if (rc == 1 && kind < 0)
            return kind;
        sg_sleep_ms(5);
    } while (sg_mono_ms() < until);
    return rc == 0 ? (int)result->kind : -1;
}

static void test_claims_first_wins(void **state)
{
    inst_t a = {0}, b = {0};
    create(&a, "deployment: {name: claims}\n");
    create(&b, "deployment: {name: claims}\n");
    start(&a, 0, 1);
    start(&b, 0, 1);
    wait_ready(&a);
    wait_ready(&b);

    /* 50 keys, each claimed by both at once: exactly one wins, and both name the same holder */
    enum { KEYS = 50 };
    static answer_t on_a[KEYS], on_b[KEYS];
    char ids_a[KEYS][33], ids_b[KEYS][33];
    for (int k = 0; k < KEYS; ++k) {
        char key[32];
        snprintf(key, sizeof(key), "key-%d", k);
        request_id(ids_a[k], "a", k);
        request_id(ids_b[k], "b", k);
        if (k % 2 == 0) { /* who produces first alternates */
            claim(&a, key, "{\"n\":1}", ids_a[k], &on_a[k]);
            claim(&b, key, "{\"n\":1}", ids_b[k], &on_b[k]);
        } else {
            claim(&b, key, "{\"n\":1}", ids_b[k], &on_b[k]);
            claim(&a, key, "{\"n\":1}", ids_a[k], &on_a[k]);
        }
    }
    int won_a = 0, won_b = 0;
    for (int k = 0; k < KEYS; ++k) {
        answer_wait(&on_a[k]);
        answer_wait(&on_b[k]);
        assert_int_equal(on_a[k].rc, SG_CLAIMS_OK);
        assert_int_equal(on_b[k].rc, SG_CLAIMS_OK);
        int a_won = on_a[k].result.kind == SG_IDEM_CLAIMED, b_won = on_b[k].result.kind == SG_IDEM_CLAIMED;
        assert_int_equal(a_won + b_won, 1);
        answer_t *loser = a_won ? &on_b[k] : &on_a[k];
        const char *winner_id = a_won ? ids_a[k] : ids_b[k];
        assert_int_equal(loser->result.kind, SG_IDEM_IN_FLIGHT);
        assert_int_equal(loser->result.request_id_len, 32);
        assert_memory_equal(loser->result.request_id, winner_id, 32);
        won_a += a_won;
        won_b += b_won;
        /* both stores hold the winner */
        char key[32];
        snprintf(key, sizeof(key), "key-%d", k);
        sg_idem_result_t seen;
        for (inst_t *inst = &a; inst != NULL; inst = inst == &a ? &b : NULL) {
            assert_int_equal(store_kind(inst, key, "{\"n\":1}", SG_IDEM_IN_FLIGHT, &seen), SG_IDEM_IN_FLIGHT);
            assert_memory_equal(seen.request_id, winner_id, 32);
        }
    }
    assert_int_equal(won_a + won_b, KEYS);
    fprintf(stderr, "50 keys claimed by two instances at once: %d won on a, %d on b\n", won_a, won_b);

    /* the same key with another body: the holder, as a mismatch */
    answer_t answer;
    char id[33];
    request_id(id, "a", 1000);
    claim(&a, "key-0", "{\"n\":2}", id, &answer);
    answer_wait(&answer);
    assert_int_equal(answer.rc, SG_CLAIMS_OK);
    assert_int_equal(answer.result.kind, SG_IDEM_MISMATCH);

    /* the holder of key-1 completes: every instance folds the position, and sees it done */
    inst_t *holder = on_a[1].result.kind == SG_IDEM_CLAIMED ? &a : &b;
    const char *holder_id = holder == &a ? ids_a[1] : ids_b[1];
    uint8_t key1[32];
    sha("key-1", key1);
    sg_claim_position_t pos = {.topic = "orders.commands",
                               .partition = 2,
                               .offset = 41,
                               .timestamp_ms = 1700000000123,
                               .created_ms = 1700000000100,
                               .expires_ms = sg_now_ms() + 3600000};
    answer_init(&answer);
    assert_int_equal(sg_claims_complete(holder->deployment, "orders", key1, holder_id, 32, &pos, on_published, &answer), 0);
    answer_wait(&answer);
    assert_int_equal(answer.rc, SG_CLAIMS_OK);
    sg_idem_result_t seen;
    for (inst_t *inst = &a; inst != NULL; inst = inst == &a ? &b : NULL) {
        assert_int_equal(store_kind(inst, "key-1", "{\"n\":1}", SG_IDEM_DONE, &seen), SG_IDEM_DONE);
        pthread_mutex_lock(&inst->lock);
        assert_true(inst->completed >= 1);
        assert_memory_equal(inst->completed_id, holder_id, 32);
        assert_string_equal(inst->completed_pos.topic, "orders.commands");
        assert_int_equal(inst->completed_pos.partition, 2);
        assert_int_equal(inst->completed_pos.offset, 41);
        assert_int_equal(inst->completed_pos.timestamp_ms, 1700000000123);
        assert_int_equal(inst->completed_pos.created_ms, 1700000000100);
        pthread_mutex_unlock(&inst->lock);
    }

    /* the holder of key-2 releases it (its event never reached Kafka): the next claim wins */
    holder = on_a[2].result.kind == SG_IDEM_CLAIMED ? &a : &b;
    holder_id = holder == &a ? ids_a[2] : ids_b[2];
    uint8_t key2[32];
    sha("key-2", key2);
    assert_int_equal(sg_claims_release(holder->deployment, "orders", key2, holder_id, 32), 0);
    inst_t *other = holder == &a ? &b : &a;
    assert_int_equal(store_kind(other, "key-2", "{\"n\":1}", -1, &seen), -1);
    request_id(id, "c", 2);
    claim(other, "key-2", "{\"n\":1}", id, &answer);
    answer_wait(&answer);
    assert_int_equal(answer.rc, SG_CLAIMS_OK);
    assert_int_equal(answer.result.kind, SG_IDEM_CLAIMED);

    /* the holder of key-3 does not know whether its event is in Kafka: everyone sees "unknown" */
    holder = on_a[3].result.kind == SG_IDEM_CLAIMED ? &a : &b;
    holder_id = holder == &a ? ids_a[3] : ids_b[3];
    uint8_t key3[32];
    sha("key-3", key3);
    assert_int_equal(sg_claims_mark_unknown(holder->deployment, "orders", key3, holder_id, 32, 1, 1700000000200), 0);
    for (inst_t *inst = &a; inst != NULL; inst = inst == &a ? &b : NULL) {
        assert_int_equal(store_kind(inst, "key-3", "{\"n\":1}", SG_IDEM_UNKNOWN, &seen), SG_IDEM_UNKNOWN);
        assert_int_equal(seen.partition, 1);
        assert_int_equal(seen.produced_ms, 1700000000200);
    }

    /* an instance started later folds the same state from the log */
    inst_t c = {0};
    create(&c, "deployment: {name: claims}\n");
    start(&c, 0, 1);
    wait_ready(&c);
    for (int k = 4; k < KEYS; ++k) {
        char key[32];
        snprintf(key, sizeof(key), "key-%d", k);
        assert_int_equal(store_kind(&c, key, "{\"n\":1}", SG_IDEM_IN_FLIGHT, &seen), SG_IDEM_IN_FLIGHT);
        assert_memory_equal(seen.request_id, on_a[k].result.kind == SG_IDEM_CLAIMED ? ids_a[k] : ids_b[k], 32);
    }
    assert_int_equal(store_kind(&c, "key-1", "{\"n\":1}", SG_IDEM_DONE, &seen), SG_IDEM_DONE);
    assert_int_equal(store_kind(&c, "key-2", "{\"n\":1}", SG_IDEM_IN_FLIGHT, &seen), SG_IDEM_IN_FLIGHT);
    assert_memory_equal(seen.request_id, id, 32);
    assert_int_equal(store_kind(&c, "key-3", "{\"n\":1}", SG_IDEM_UNKNOWN, &seen), SG_IDEM_UNKNOWN);
    destroy(&c, 1);
    destroy(&a, 1);
    destroy(&b, 1);
}

/* A request store that refuses writes (a full disk) answers claims at once, while their records
 * are still on their way to the broker: the delivery reports that come after must find the
 * claims' operations still there (the sanitizer build caught them freed). */
static void test_claims_on_a_full_disk(void **state)
{
    sg_test_tmpfs_t fs;
    char why[512];
    if (sg_test_tmpfs_mount(&fs, 24, why, sizeof(why)) != 0) {
        print_message("skipped: %s\n", why);
        skip();
    }
    inst_t a = {0};
    snprintf(a.dir, sizeof(a.dir), "%s/a", fs.dir);
    assert_int_equal(mkdir(a.dir, 0700), 0);
    create(&a, "deployment: {name: full}\n");
    start(&a, 0, 1);
    wait_ready(&a);
    (void)sg_test_tmpfs_fill(&fs, 24); /* stops where the disk is full */

    /* the first claim's record is folded into a store that refuses it: the claims stop there */
    enum { CLAIMS = 20 };
    int refused = 0;
    for (int i = 0; i < CLAIMS; ++i) {
        char key[32], id[33];
        snprintf(key, sizeof(key), "full-%d", i);
        request_id(id, "a", i);
        answer_t answer;
        claim(&a, key, "{\"n\":1}", id, &answer);
        answer_wait(&answer);
        assert_true(answer.rc == SG_CLAIMS_E_STORE || answer.rc == SG_CLAIMS_E_UNAVAILABLE);
        refused += answer.rc == SG_CLAIMS_E_STORE;
    }
    assert_true(refused >= CLAIMS - 1);
    assert_string_equal(sg_deployment_not_ready_because(a.deployment),
                        "the Idempotency-Key claims cannot be stored (the request store refuses writes)");
    sg_sleep_ms(500); /* the last delivery reports */

    /* room again, and the store reopened (the gateway's once-a-second sweep does this): the
     * deployment folds its topic again and claims are decided */
    sg_test_tmpfs_free(&fs);
    char err[512] = "";
    int64_t until = sg_mono_ms() + WAIT_MS;
    int recovered;
    while ((recovered = sg_store_recover(a.store, err, sizeof(err))) != 0 && sg_mono_ms() < until)
        sg_sleep_ms(100); /* it tries at most once per SG_STORAGE_RECOVER_INTERVAL_MS */
    if (recovered != 0)
        fail_msg("the store did not come back: %s", err);
    wait_ready(&a);
    char id[33];
    request_id(id, "a", 100);
    answer_t answer;
    claim(&a, "full-after", "{\"n\":1}", id, &answer);
    answer_wait(&answer);
    assert_int_equal(answer.rc, SG_CLAIMS_OK);
    assert_int_equal(answer.result.kind, SG_IDEM_CLAIMED);
    destroy(&a, 1);
    sg_test_tmpfs_unmount(&fs);
}

static void test_claim_needs_the_topic(void **state)
{
    /* before the claims topic is read there is nothing to claim against: refused at once */
    inst_t a = {0};
    create(&a, "deployment: {name: early}\n");
    uint8_t key[32] = {1}, body[32] = {2};
    char err[256];
    assert_int_equal(sg_claims_claim(a.deployment, "orders", key, body, "0123456789abcdef0123456789abcdef", 32, 1, 2, on_claim,
                                     NULL, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "_streamgate.early.idempotency is not read yet");
    assert_string_equal(sg_deployment_not_ready_because(a.deployment), "the deployment thread has not started");
    destroy(&a, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_secret_agreed),
        cmocka_unit_test(test_claims_first_wins),
        cmocka_unit_test(test_claim_needs_the_topic),
        cmocka_unit_test(test_claims_on_a_full_disk),
    };
    return cmocka_run_group_tests_name("bridge-deployment", tests, setup, teardown);
}
