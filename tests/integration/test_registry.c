/*
 * The built-in schema registry through the real binary: every /registry endpoint, each
 * compatibility level with a compatible and an incompatible evolution over HTTP, ids that stay
 * the same across a gateway restart and across two instances registering at once (on a separate
 * `streamgate cluster`, which keeps `_schemas`), the external mode pointed at another instance's
 * /registry, config schemas (registered at start, an incompatible change failing the start), and
 * Confluent's own Python client (py_registry.py) reading our answers and Confluent error codes.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"

#define CT "Content-Type: application/vnd.schemaregistry.v1+json\r\n"

#define REC(fields) "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":[" fields "]}"
#define F_A "{\"name\":\"a\",\"type\":\"int\"}"
#define F_B_DEFAULT "{\"name\":\"b\",\"type\":\"string\",\"default\":\"x\"}"
#define F_B "{\"name\":\"b\",\"type\":\"string\"}"
#define F_C "{\"name\":\"c\",\"type\":\"long\"}"
#define F_C_DEFAULT "{\"name\":\"c\",\"type\":\"long\",\"default\":0}"

static sg_test_proc_t cluster;
static sg_test_proc_t gw; /* the instance most tests talk to */

/* The suite registers in bulk from one address: the per-address write limit (on by default,
 * limits.registry_write_rate; tested in test_auth.c) would refuse it. */
static const char gw_config[] = "listen: [\"127.0.0.1:0\"]\n"
                                "data_dir: @DIR@/data\n"
                                "kafka: {brokers: \"%s\"}\n"
                                "limits: {registry_write_rate: \"off\"}\n"
                                "routes:\n"
                                "  - {name: r, method: POST, path: /r, topic: reg.orders}\n";

/* Without config schemas a gateway does not wait for its registry to catch up before it serves
 * (/readyz does not cover the registry yet): wait until /registry stops answering 503. */
static int registry_ready(const sg_test_proc_t *proc)
{
    for (int i = 0; i < 1000; i++) {
        sg_test_response_t res;
        if (sg_test_http(proc, "GET", "/registry/subjects", NULL, NULL, 0, &res) != 0)
            return -1;
        int status = res.status;
        sg_test_response_free(&res);
        if (status == 200)
            return 0;
        if (status != 503)
            return -1;
        sg_test_sleep_ms(10);
    }
    return -1;
}

static void start_on_cluster(sg_test_proc_t *proc, const char *extra_yaml)
{
    char config[4096];
    snprintf(config, sizeof(config), gw_config, cluster.bootstrap);
    if (extra_yaml != NULL)
        snprintf(config + strlen(config), sizeof(config) - strlen(config), "%s", extra_yaml);
    assert_int_equal(sg_test_gateway_start(proc, config), 0);
    assert_int_equal(registry_ready(proc), 0);
}

static int setup(void **state)
{
    /* No --topic _schemas: the first gateway creates it through the Admin API. */
    const char *args[] = {"--topic", "reg.orders:1", "--topic", "reg.other:1", NULL};
    if (sg_test_cluster_start(&cluster, args) != 0)
        return -1;
    char config[4096];
    snprintf(config, sizeof(config), gw_config, cluster.bootstrap);
    if (sg_test_gateway_start(&gw, config) != 0)
        return -1;
    return registry_ready(&gw);
}

static int teardown(void **state)
{
    return sg_test_stop_procs(&gw, &cluster, NULL);
}

/* One request; returns the status and (if JSON) the parsed body in *doc (may be NULL). */
static int call(const sg_test_proc_t *proc, const char *method, const char *path, const char *headers, const char *body,
                json_t **doc)
{
    sg_test_response_t res;
    assert_int_equal(sg_test_http(proc, method, path, headers, body, body ? strlen(body) : 0, &res), 0);
    int status = res.status;
    if (doc != NULL)
        *doc = res.body != NULL ? json_loadb(res.body, res.body_len, JSON_DECODE_ANY, NULL) : NULL;
    sg_test_response_free(&res);
    return status;
}

/* POST /registry/subjects/{subject}/versions; returns the status, *id when 200. */
static int post_schema(const sg_test_proc_t *proc, const char *subject, const char *schema, json_int_t *id)
{
    json_t *req = json_pack("{s:s}", "schema", schema);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    char path[512];
    snprintf(path, sizeof(path), "/registry/subjects/%s/versions", subject);
    json_t *doc;
    int status = call(proc, "POST", path, CT, body, &doc);
    free(body);
    if (status == 200) {
        assert_true(json_is_integer(json_object_get(doc, "id")));
        if (id != NULL)
            *id = json_integer_value(json_object_get(doc, "id"));
    }
    json_decref(doc);
    return status;
}

/* One request whose answer must be the problem `type` with `status` (sg_test_assert_problem). */
#define call_problem(proc, method, path, headers, body, status, type)                                                              \
    call_problem_at((proc), (method), (path), (headers), (body), (status), (type), __FILE__, __LINE__)
static void call_problem_at(const sg_test_proc_t *proc, const char *method, const char *path, const char *headers, const char *body,
                            int status, const char *type, const char *file, int line)
{
    sg_test_response_t res;
    assert_int_equal(sg_test_http(proc, method, path, headers, body, body ? strlen(body) : 0, &res), 0);
    sg_test_assert_problem_at(&res, status, type, NULL, file, line);
    sg_test_response_free(&res);
}

static const char *problem_type(json_t *doc)
{
    const char *type = json_string_value(json_object_get(doc, "type"));
    return type != NULL ? type : "(none)";
}

static void put_level(const sg_test_proc_t *proc, const char *subject, const char *level)
{
    char path[512], body[128];
    snprintf(path, sizeof(path), subject != NULL ? "/registry/config/%s" : "/registry/config", subject);
    snprintf(body, sizeof(body), "{\"compatibility\":\"%s\"}", level);
    json_t *doc;
    assert_int_equal(call(proc, "PUT", path, CT, body, &doc), 200);
    assert_string_equal(json_string_value(json_object_get(doc, "compatibility")), level);
    json_decref(doc);
}

static void test_endpoints(void **state)
{
    json_t *doc;
    json_int_t id1, id2, again;
    const char *v1 = REC(F_A);
    /* register, then the same schema again (other layout, other key order): same id */
    assert_int_equal(post_schema(&gw, "ep-value", v1, &id1), 200);
    assert_int_equal(post_schema(&gw, "ep-value",
                                 "{ \"fields\": [ {\"type\": \"int\", \"name\": \"a\"} ], \"namespace\": "
                                 "\"shop\", \"name\": \"Order\", \"type\": \"record\" }",
                                 &again),
                     200);
    assert_int_equal(again, id1);
    /* a compatible evolution: a new id and version 2 */
    assert_int_equal(post_schema(&gw, "ep-value", REC(F_A "," F_B_DEFAULT), &id2), 200);
    assert_int_not_equal(id2, id1);
    /* the same schema under another subject keeps its global id */
    assert_int_equal(post_schema(&gw, "ep-other", v1, &again), 200);
    assert_int_equal(again, id1);

    /* listing */
    assert_int_equal(call(&gw, "GET", "/registry/subjects", NULL, NULL, &doc), 200);
    int seen = 0;
    size_t i;
    json_t *item;
    json_array_foreach(doc, i, item) seen +=
        strcmp(json_string_value(item), "ep-value") == 0 || strcmp(json_string_value(item), "ep-other") == 0;
    assert_int_equal(seen, 2);
    json_decref(doc);
    assert_int_equal(call(&gw, "GET", "/registry/subjects/ep-value/versions", NULL, NULL, &doc), 200);
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_string_equal(text, "[1,2]");
    free(text);
    json_decref(doc);

    /* by version, latest, raw schema */
    assert_int_equal(call(&gw, "GET", "/registry/subjects/ep-value/versions/1", NULL, NULL, &doc), 200);
    assert_string_equal(json_string_value(json_object_get(doc, "subject")), "ep-value");
    assert_int_equal(json_integer_value(json_object_get(doc, "version")), 1);
    assert_int_equal(json_integer_value(json_object_get(doc, "id")), id1);
    json_t *schema = json_loads(json_string_value(json_object_get(doc, "schema")), 0, NULL);
    json_t *expected = json_loads(v1, 0, NULL);
    assert_true(json_equal(schema, expected));
    json_decref(schema);
    json_decref(doc);
    assert_int_equal(call(&gw, "GET", "/registry/subjects/ep-value/versions/latest", NULL, NULL, &doc), 200);
    assert_int_equal(json_integer_value(json_object_get(doc, "version")), 2);
    assert_int_equal(json_integer_value(json_object_get(doc, "id")), id2);
    json_decref(doc);
    assert_int_equal(call(&gw, "GET", "/registry/subjects/ep-value/versions/1/schema", NULL, NULL, &doc), 200);
    assert_true(json_equal(doc, expected));
    json_decref(doc);

    /* by id */
    char path[256];
    snprintf(path, sizeof(path), "/registry/schemas/ids/%lld", (long long)id1);
    assert_int_equal(call(&gw, "GET", path, NULL, NULL, &doc), 200);
    schema = json_loads(json_string_value(json_object_get(doc, "schema")), 0, NULL);
    assert_true(json_equal(schema, expected));
    json_decref(schema);
    json_decref(doc);
    json_decref(expected);

    /* lookup under a subject */
    json_t *req = json_pack("{s:s}", "schema", v1);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    assert_int_equal(call(&gw, "POST", "/registry/subjects/ep-value", CT, body, &doc), 200);
    assert_int_equal(json_integer_value(json_object_get(doc, "version")), 1);
    assert_int_equal(json_integer_value(json_object_get(doc, "id")), id1);
    json_decref(doc);
    call_problem(&gw, "POST", "/registry/subjects/nobody-value", CT, body, 404, "unknown-subject");

    /* errors */
    call_problem(&gw, "GET", "/registry/subjects/nobody-value/versions", NULL, NULL, 404, "unknown-subject");
    call_problem(&gw, "GET", "/registry/subjects/ep-value/versions/9", NULL, NULL, 404, "unknown-version");
    call_problem(&gw, "GET", "/registry/subjects/ep-value/versions/first", NULL, NULL, 422, "invalid-version");
    call_problem(&gw, "GET", "/registry/schemas/ids/999999", NULL, NULL, 404, "unknown-schema");
    call_problem(&gw, "POST", "/registry/subjects/ep-value/versions", CT,
                 "{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"R\\\"}\"}", 422, "invalid-schema");
    assert_int_equal(call(&gw, "POST", "/registry/subjects/ep-value/versions", CT, "{\"schema\":", &doc), 400);
    json_decref(doc);
    assert_int_equal(call(&gw, "POST", "/registry/subjects/ep-value/versions", "Content-Type: text/plain\r\n", body, &doc), 415);
    json_decref(doc);
    assert_int_equal(call(&gw, "POST", "/registry/subjects/ep-value/versions", CT,
                          "{\"schema\":\"syntax = \\\"proto3\\\";\",\"schemaType\":\"PROTOBUF\"}", &doc),
                     422);
    assert_string_equal(problem_type(doc), "urn:streamgate:problem:unsupported-schema-type");
    json_decref(doc);
    call_problem(&gw, "POST", "/registry/subjects/bad%20subject/versions", CT, body, 422, "invalid-subject");
    assert_int_equal(call(&gw, "DELETE", "/registry/subjects/ep-value/versions", NULL, NULL, &doc), 405);
    json_decref(doc);
    assert_int_equal(call(&gw, "GET", "/registry/nothing-here", NULL, NULL, &doc), 404);
    json_decref(doc);
    free(body);

    /* compatibility checks against a version */
    req = json_pack("{s:s}", "schema", REC(F_A "," F_B));
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    assert_int_equal(call(&gw, "POST", "/registry/compatibility/subjects/ep-value/versions/latest", CT, body, &doc), 200);
    assert_true(json_is_true(json_object_get(doc, "is_compatible")));
    json_decref(doc);
    assert_int_equal(call(&gw, "POST", "/registry/compatibility/subjects/ep-value/versions/1", CT, body, &doc), 200);
    assert_true(json_is_false(json_object_get(doc, "is_compatible")));
    assert_non_null(strstr(json_string_value(json_array_get(json_object_get(doc, "messages"), 0)), "/b"));
    json_decref(doc);
    call_problem(&gw, "POST", "/registry/compatibility/subjects/ep-value/versions/7", CT, body, 404, "unknown-version");
    free(body);

    /* levels: global and per subject */
    assert_int_equal(call(&gw, "GET", "/registry/config", NULL, NULL, &doc), 200);
    assert_string_equal(json_string_value(json_object_get(doc, "compatibilityLevel")), "BACKWARD");
    json_decref(doc);
    call_problem(&gw, "GET", "/registry/config/ep-value", NULL, NULL, 404, "no-subject-level");
    assert_int_equal(call(&gw, "GET", "/registry/config/ep-value?defaultToGlobal=true", NULL, NULL, &doc), 200);
    assert_string_equal(json_string_value(json_object_get(doc, "compatibilityLevel")), "BACKWARD");
    json_decref(doc);
    put_level(&gw, "ep-value", "FULL");
    assert_int_equal(call(&gw, "GET", "/registry/config/ep-value", NULL, NULL, &doc), 200);
    assert_string_equal(json_string_value(json_object_get(doc, "compatibilityLevel")), "FULL");
    json_decref(doc);
    call_problem(&gw, "PUT", "/registry/config/ep-value", CT, "{\"compatibility\":\"SIDEWAYS\"}", 422,
                 "invalid-compatibility-level");
    assert_int_equal(call(&gw, "DELETE", "/registry/config/ep-value", NULL, NULL, &doc), 200);
    assert_string_equal(json_string_value(json_object_get(doc, "compatibilityLevel")), "FULL");
    json_decref(doc);
    assert_int_equal(call(&gw, "GET", "/registry/config/ep-value", NULL, NULL, &doc), 404);
    json_decref(doc);
}

/* Each level: v1 {a}, v2 {a, b="x"}, then a compatible and an incompatible candidate. */
static void test_levels(void **state)
{
    static const struct {
        const char *level;
        const char *compatible;
        const char *incompatible;
    } cases[] = {
        {"BACKWARD", REC(F_A "," F_B_DEFAULT "," F_C_DEFAULT), REC(F_A "," F_B_DEFAULT "," F_C)},
        /* {a, b} reads v2's data but not v1's: refused only when transitive */
        {"BACKWARD_TRANSITIVE", REC(F_A "," F_B_DEFAULT "," F_C_DEFAULT), REC(F_A "," F_B)},
        {"FORWARD", REC(F_A "," F_B_DEFAULT "," F_C), REC(F_B_DEFAULT)},
        {"FORWARD_TRANSITIVE", REC(F_A "," F_B_DEFAULT "," F_C), REC(F_B_DEFAULT "," F_C)},
        {"FULL", REC(F_A "," F_B_DEFAULT "," F_C_DEFAULT), REC(F_A "," F_B_DEFAULT "," F_C)},
        {"FULL_TRANSITIVE", REC(F_A "," F_B_DEFAULT "," F_C_DEFAULT), REC(F_A "," F_B)},
        {"NONE", "\"string\"", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char subject[64];
        snprintf(subject, sizeof(subject), "lvl-%s", cases[i].level);
        json_int_t id;
        assert_int_equal(post_schema(&gw, subject, REC(F_A), &id), 200);
        assert_int_equal(post_schema(&gw, subject, REC(F_A "," F_B_DEFAULT), &id), 200);
        put_level(&gw, subject, cases[i].level);
        if (cases[i].incompatible != NULL) {
            char path[256];
            json_t *req = json_pack("{s:s}", "schema", cases[i].incompatible);
            char *body = json_dumps(req, JSON_COMPACT);
            json_decref(req);
            snprintf(path, sizeof(path), "/registry/subjects/%s/versions", subject);
            json_t *doc;
            assert_int_equal(call(&gw, "POST", path, CT, body, &doc), 409);
            assert_string_equal(problem_type(doc), "urn:streamgate:problem:incompatible-schema");
            const char *detail = json_string_value(json_object_get(doc, "detail"));
            if (strncmp(detail, cases[i].level, strlen(cases[i].level)) != 0)
                fail_msg("%s: detail %s", cases[i].level, detail);
            json_decref(doc);
            free(body);
        }
        json_int_t compatible_id;
        assert_int_equal(post_schema(&gw, subject, cases[i].compatible, &compatible_id), 200);
        assert_true(compatible_id > 0);
    }
    /* the non-transitive BACKWARD accepts what BACKWARD_TRANSITIVE refused */
    json_int_t id;
    assert_int_equal(post_schema(&gw, "lvl-plain", REC(F_A), &id), 200);
    assert_int_equal(post_schema(&gw, "lvl-plain", REC(F_A "," F_B_DEFAULT), &id), 200);
    assert_int_equal(post_schema(&gw, "lvl-plain", REC(F_A "," F_B), &id), 200);
}

static json_t *versions_map(const sg_test_proc_t *proc, const char *subject)
{
    /* {"1": id, "2": id, ...} */
    json_t *map = json_object(), *versions;
    char path[256];
    snprintf(path, sizeof(path), "/registry/subjects/%s/versions", subject);
    assert_int_equal(call(proc, "GET", path, NULL, NULL, &versions), 200);
    size_t i;
    json_t *v;
    json_array_foreach(versions, i, v)
    {
        json_t *doc;
        snprintf(path, sizeof(path), "/registry/subjects/%s/versions/%lld", subject, (long long)json_integer_value(v));
        assert_int_equal(call(proc, "GET", path, NULL, NULL, &doc), 200);
        char key[16];
        snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(v));
        json_object_set_new(map, key, json_pack("[O,O]", json_object_get(doc, "id"), json_object_get(doc, "schema")));
        json_decref(doc);
    }
    json_decref(versions);
    return map;
}

static void test_ids_stable_across_restart(void **state)
{
    json_int_t id1, id2;
    assert_int_equal(post_schema(&gw, "rs-value", REC(F_A), &id1), 200);
    assert_int_equal(post_schema(&gw, "rs-value", REC(F_A "," F_B_DEFAULT), &id2), 200);
    json_t *before = versions_map(&gw, "rs-value");
    assert_int_equal(sg_test_gateway_restart(&gw), 0);
    assert_int_equal(registry_ready(&gw), 0);
    json_t *after = versions_map(&gw, "rs-value");
    assert_true(json_equal(before, after));
    /* registering again after the restart answers the same ids */
    json_int_t again;
    assert_int_equal(post_schema(&gw, "rs-value", REC(F_A), &again), 200);
    assert_int_equal(again, id1);
    /* and a fresh instance on the same cluster sees the same */
    sg_test_proc_t other;
    start_on_cluster(&other, NULL);
    json_t *fresh = versions_map(&other, "rs-value");
    assert_true(json_equal(before, fresh));
    json_decref(before);
    json_decref(after);
    json_decref(fresh);
    assert_int_equal(sg_test_proc_stop(&other), 0);
}

typedef struct {
    const sg_test_proc_t *proc;
    int index;
    int statuses[6];
    json_int_t ids[6];
} racer_t;

static void *race(void *arg)
{
    racer_t *racer = arg;
    for (int i = 0; i < 6; i++) {
        char schema[256];
        /* instance-specific schemas, and one (i == 5) that both register */
        if (i < 5)
            snprintf(schema, sizeof(schema), "{\"type\":\"enum\",\"name\":\"E%d_%d\",\"symbols\":[\"A\"]}", racer->index, i);
        else
            snprintf(schema, sizeof(schema), "{\"type\":\"enum\",\"name\":\"Both\",\"symbols\":[\"A\"]}");
        racer->statuses[i] = post_schema(racer->proc, "race-value", schema, &racer->ids[i]);
    }
    return NULL;
}

static void test_two_instances_concurrently(void **state)
{
    sg_test_proc_t other;
    start_on_cluster(&other, NULL);
    put_level(&gw, "race-value", "NONE");
    racer_t a = {.proc = &gw, .index = 0}, b = {.proc = &other, .index = 1};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race, &a);
    pthread_create(&tb, NULL, race, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(a.statuses[i], 200);
        assert_int_equal(b.statuses[i], 200);
    }
    assert_int_equal(a.ids[5], b.ids[5]); /* the shared schema got one id */
    /* both instances agree on every version and id, and every answered id is in it. Each answered
     * its own registrations once it had read them back, but may not have read the other's last
     * ones yet (registry reads do not wait for the topic's end): wait, bounded, for both to have
     * all 11. */
    json_t *on_a = versions_map(&gw, "race-value");
    json_t *on_b = versions_map(&other, "race-value");
    for (int64_t deadline = sg_test_now_ms() + 10000;
         (json_object_size(on_a) < 11 || json_object_size(on_b) < 11) && sg_test_now_ms() < deadline;) {
        sg_test_sleep_ms(20);
        json_decref(on_a);
        json_decref(on_b);
        on_a = versions_map(&gw, "race-value");
        on_b = versions_map(&other, "race-value");
    }
    assert_true(json_equal(on_a, on_b));
    assert_int_equal(json_object_size(on_a), 11);
    for (int i = 0; i < 6; i++) {
        int found_a = 0, found_b = 0;
        const char *key;
        json_t *entry;
        json_object_foreach(on_a, key, entry)
        {
            found_a += json_integer_value(json_array_get(entry, 0)) == a.ids[i];
            found_b += json_integer_value(json_array_get(entry, 0)) == b.ids[i];
        }
        assert_int_equal(found_a, 1);
        assert_int_equal(found_b, 1);
    }
    json_decref(on_a);
    json_decref(on_b);
    assert_int_equal(sg_test_proc_stop(&other), 0);
}

/* A schema file in a new temp dir; returns its path (release with sg_test_remove_temp). */
static char *schema_file(const char *text)
{
    char *path = sg_test_write_temp("order.avsc", text);
    assert_non_null(path);
    return path;
}

static void test_config_schemas(void **state)
{
    char *file = schema_file(REC(F_A));
    char extra[1024];
    snprintf(extra, sizeof(extra),
             "schemas: [{name: Order, file: \"%s\"}]\n"
             "routes:\n"
             "  - {name: o, method: POST, path: /o, topic: reg.other, schema: Order}\n",
             file);
    /* gw_config already has routes: use a config of its own */
    char config[4096];
    snprintf(config, sizeof(config), "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\nkafka: {brokers: \"%s\"}\n%s",
             cluster.bootstrap, extra);
    sg_test_proc_t proc;
    assert_int_equal(sg_test_gateway_start(&proc, config), 0);
    json_t *doc;
    assert_int_equal(call(&proc, "GET", "/registry/subjects/reg.other-value/versions/latest", NULL, NULL, &doc), 200);
    assert_int_equal(json_integer_value(json_object_get(doc, "version")), 1);
    json_int_t id = json_integer_value(json_object_get(doc, "id"));
    json_decref(doc);
    assert_int_equal(sg_test_proc_stop(&proc), 0);

    /* an incompatible change fails the start, naming both versions and the reason */
    FILE *fp = fopen(file, "w");
    fputs(REC(F_A "," F_B), fp);
    fclose(fp);
    char *config_path = sg_test_write_temp("gw.yaml", config);
    assert_non_null(config_path);
    const char *args[] = {sg_test_binary(), config_path, NULL};
    char out[8192];
    int status = sg_test_run(args, out, sizeof(out));
    assert_int_not_equal(status, 0);
    if (strstr(out, "incompatible with subject reg.other-value") == NULL || strstr(out, "registered version 1") == NULL ||
        strstr(out, "/b: the reader's field b") == NULL || strstr(out, "\"name\":\"b\"") == NULL)
        fail_msg("unexpected output: %s", out);

    /* a compatible change starts and becomes version 2; an invalid file fails naming it */
    fp = fopen(file, "w");
    fputs(REC(F_A "," F_B_DEFAULT), fp);
    fclose(fp);
    assert_int_equal(sg_test_gateway_start(&proc, config), 0);
    assert_int_equal(call(&proc, "GET", "/registry/subjects/reg.other-value/versions/latest", NULL, NULL, &doc), 200);
    assert_int_equal(json_integer_value(json_object_get(doc, "version")), 2);
    assert_int_not_equal(json_integer_value(json_object_get(doc, "id")), id);
    json_decref(doc);
    assert_int_equal(sg_test_proc_stop(&proc), 0);
    fp = fopen(file, "w");
    fputs("{\"type\":\"record\",\"name\":\"Order\",\"fields\":[{\"name\":\"a\"}]}", fp);
    fclose(fp);
    status = sg_test_run(args, out, sizeof(out));
    assert_int_not_equal(status, 0);
    if (strstr(out, "schemas[0] (Order)") == NULL || strstr(out, file) == NULL || strstr(out, "invalid Avro schema") == NULL)
        fail_msg("unexpected output: %s", out);
    /* --check parses schema files too */
    const char *check_args[] = {sg_test_binary(), "--check", config_path, NULL};
    assert_int_equal(sg_test_run(check_args, out, sizeof(out)), 2);
    if (strstr(out, "schemas[0] (Order)") == NULL || strstr(out, "Record field 0 must have a \"type\"") == NULL)
        fail_msg("unexpected output: %s", out);
    sg_test_remove_temp(config_path);
    sg_test_remove_temp(file);
}

static void test_external_registry(void **state)
{
    char *file = schema_file(REC(F_A ","
                                     "{\"name\":\"ext\",\"type\":\"string\"}"));
    char config[4096];
    /* an embedded-mode gateway whose registry is gw's /registry */
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\n"
             "schema_registry: {url: \"http://%s:%u/registry\"}\n"
             "topics: [{name: ext.orders}]\n"
             "schemas: [{name: Order, file: \"%s\"}]\n"
             "routes:\n"
             "  - {name: o, method: POST, path: /o, topic: ext.orders, schema: Order}\n",
             gw.host, gw.port, file);
    sg_test_proc_t client;
    assert_int_equal(sg_test_gateway_start(&client, config), 0);
    /* registered at gw */
    json_t *doc;
    assert_int_equal(call(&gw, "GET", "/registry/subjects/ext.orders-value/versions/latest", NULL, NULL, &doc), 200);
    assert_int_equal(json_integer_value(json_object_get(doc, "version")), 1);
    json_decref(doc);
    /* the client does not serve /registry and says where it is */
    assert_int_equal(call(&client, "GET", "/registry/subjects", NULL, NULL, &doc), 404);
    assert_string_equal(problem_type(doc), "urn:streamgate:problem:registry-external");
    char url[128];
    snprintf(url, sizeof(url), "http://%s:%u/registry", gw.host, gw.port);
    assert_non_null(strstr(json_string_value(json_object_get(doc, "detail")), url));
    json_decref(doc);
    assert_int_equal(sg_test_proc_stop(&client), 0);

    /* an incompatible change is refused by the external registry: the start fails with its reason */
    FILE *fp = fopen(file, "w");
    fputs(REC(F_A ","
                  "{\"name\":\"ext\",\"type\":\"string\"}," F_C),
          fp);
    fclose(fp);
    char *config_path = sg_test_write_temp("gw.yaml", config);
    const char *args[] = {sg_test_binary(), config_path, NULL};
    char out[8192];
    assert_int_not_equal(sg_test_run(args, out, sizeof(out)), 0);
    if (strstr(out, "HTTP 409") == NULL || strstr(out, "/c: the reader's field c") == NULL)
        fail_msg("unexpected output: %s", out);
    /* and an unreachable registry fails the start too */
    char bad[4096];
    snprintf(bad, sizeof(bad),
             "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\n"
             "schema_registry: {url: \"http://127.0.0.1:1/registry\"}\n"
             "topics: [{name: ext.orders}]\n"
             "schemas: [{name: Order, file: \"%s\"}]\n"
             "routes:\n"
             "  - {name: o, method: POST, path: /o, topic: ext.orders, schema: Order}\n",
             file);
    char *bad_path = sg_test_write_temp("gw.yaml", bad);
    const char *bad_args[] = {sg_test_binary(), bad_path, NULL};
    assert_int_not_equal(sg_test_run(bad_args, out, sizeof(out)), 0);
    if (strstr(out, "http://127.0.0.1:1/registry/subjects/ext.orders-value/versions") == NULL)
        fail_msg("unexpected output: %s", out);
    sg_test_remove_temp(bad_path);
    sg_test_remove_temp(config_path);
    sg_test_remove_temp(file);
}

static void test_embedded_ids_in_config_order(void **state)
{
    /* In embedded mode `_schemas` dies with the process: ids are given again in config order. */
    SG_TEST_MOCK_ONLY("on a real cluster `_schemas` outlives the gateway, so ids continue where the earlier tests left them");
    char *first = schema_file(REC(F_A));
    char *second = schema_file("{\"type\":\"enum\",\"name\":\"Color\",\"symbols\":[\"RED\"]}");
    char config[4096];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\n"
             "topics: [{name: e1}, {name: e2}]\n"
             "schemas: [{name: One, file: \"%s\"}, {name: Two, file: \"%s\"}]\n"
             "routes:\n"
             "  - {name: one, method: POST, path: /one, topic: e1, schema: One}\n"
             "  - {name: two, method: POST, path: /two, topic: e2, schema: Two}\n",
             first, second);
    sg_test_proc_t proc;
    for (int round = 0; round < 2; round++) {
        if (round == 0)
            assert_int_equal(sg_test_gateway_start(&proc, config), 0);
        else
            assert_int_equal(sg_test_gateway_restart(&proc), 0);
        json_t *doc;
        assert_int_equal(call(&proc, "GET", "/registry/subjects/e1-value/versions/1", NULL, NULL, &doc), 200);
        assert_int_equal(json_integer_value(json_object_get(doc, "id")), 1);
        json_decref(doc);
        assert_int_equal(call(&proc, "GET", "/registry/subjects/e2-value/versions/1", NULL, NULL, &doc), 200);
        assert_int_equal(json_integer_value(json_object_get(doc, "id")), 2);
        json_decref(doc);
        assert_int_equal(call(&proc, "GET", "/readyz", NULL, NULL, NULL), 200);
    }
    assert_int_equal(sg_test_proc_stop(&proc), 0);
    sg_test_remove_temp(first);
    sg_test_remove_temp(second);
}

/* The "error_code" of a SchemaRegistryError that py_registry.py reported for `call`, after
 * checking its HTTP status. */
static json_int_t confluent_error(json_t *out, const char *call, int http_status)
{
    json_t *err = json_object_get(out, call);
    if (!json_is_object(err) || json_integer_value(json_object_get(err, "http_status")) != http_status)
        fail_msg("%s: expected a SchemaRegistryError with HTTP status %d, got %s", call, http_status,
                 err != NULL ? json_dumps(err, JSON_COMPACT) : "nothing");
    assert_true(strlen(json_string_value(json_object_get(err, "message"))) > 5);
    return json_integer_value(json_object_get(err, "error_code"));
}

static void test_confluent_python_client(void **state)
{
    /* Confluent's SchemaRegistryClient (python3-confluent-kafka) drives every endpoint it has and
     * reads our errors as its own: SchemaRegistryError with the HTTP status and error_code. */
    char command[1024];
    const char *root = getenv("SG_SOURCE_ROOT");
    snprintf(command, sizeof(command), "/usr/bin/python3 %s/tests/integration/py_registry.py http://%s:%u/registry pyclient-value",
             root != NULL ? root : ".", gw.host, gw.port);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    static char text[65536];
    size_t len = fread(text, 1, sizeof(text) - 1, pipe);
    text[len] = '\0';
    int status = pclose(pipe);
    if (status != 0)
        fail_msg("%s: exit %d: %s", command, status, text);
    json_error_t jerr;
    json_t *out = json_loads(text, 0, &jerr);
    if (out == NULL)
        fail_msg("py_registry.py printed no JSON: %s", text);
    json_int_t v1 = json_integer_value(json_object_get(out, "register_v1"));
    json_int_t v2 = json_integer_value(json_object_get(out, "register_v2"));
    assert_true(v1 > 0 && v2 > 0 && v1 != v2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "schema_by_id"), "name")), "Reading");
    json_t *lookup = json_object_get(out, "lookup"), *latest = json_object_get(out, "latest");
    assert_int_equal(json_integer_value(json_array_get(lookup, 0)), v1);
    assert_int_equal(json_integer_value(json_array_get(lookup, 1)), 1);
    assert_string_equal(json_string_value(json_array_get(lookup, 2)), "pyclient-value");
    assert_int_equal(json_integer_value(json_array_get(latest, 0)), v2);
    assert_int_equal(json_integer_value(json_array_get(latest, 1)), 2);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(out, "version_1"), 0)), v1);
    json_t *versions = json_object_get(out, "versions");
    assert_int_equal(json_array_size(versions), 2);
    assert_int_equal(json_integer_value(json_array_get(versions, 1)), 2);
    int listed = 0;
    for (size_t i = 0; i < json_array_size(json_object_get(out, "subjects")); ++i)
        listed |= strcmp(json_string_value(json_array_get(json_object_get(out, "subjects"), i)), "pyclient-value") == 0;
    assert_true(listed);
    assert_true(json_is_true(json_object_get(out, "compatible")));
    assert_true(json_is_false(json_object_get(out, "incompatible")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "set_level"), "compatibility")), "FULL");
    assert_string_equal(json_string_value(json_object_get(out, "level")), "FULL");
    assert_true(json_is_string(json_object_get(out, "global_level")));
    assert_int_equal(confluent_error(out, "unknown_subject", 404), 40401);
    assert_int_equal(confluent_error(out, "unknown_version", 404), 40402);
    assert_int_equal(confluent_error(out, "unknown_schema", 404), 40403);
    assert_int_equal(confluent_error(out, "no_subject_level", 404), 40408);
    assert_int_equal(confluent_error(out, "register_incompatible", 409), 409);
    assert_int_equal(confluent_error(out, "register_invalid", 422), 42201);
    assert_int_equal(confluent_error(out, "invalid_version", 422), 42202);
    assert_int_equal(confluent_error(out, "invalid_level", 422), 42203);
    assert_int_equal(confluent_error(out, "invalid_subject", 422), 42208);
    json_decref(out);
}

static void test_not_ready_without_kafka(void **state)
{
    /* Nothing listens on port 1: the gateway starts (no config schemas to register) but its
     * registry cannot read `_schemas`, so /registry answers 503 rather than from an empty state. */
    sg_test_proc_t proc;
    assert_int_equal(sg_test_gateway_start_unready(&proc, "listen: [\"127.0.0.1:0\"]\n"
                                                          "data_dir: @DIR@/data\n"
                                                          "kafka: {brokers: \"127.0.0.1:1\"}\n"
                                                          "shutdown_timeout: 1s\n"),
                     0);
    json_t *doc;
    call_problem(&proc, "GET", "/registry/subjects", NULL, NULL, 503, "registry-not-ready");
    assert_int_equal(call(&proc, "GET", "/registry/subjects", NULL, NULL, &doc), 503);
    assert_int_equal(json_integer_value(json_object_get(doc, "error_code")), 50001); /* Confluent's store error */
    json_decref(doc);
    assert_int_equal(call(&proc, "POST", "/registry/subjects/x/versions", CT, "{\"schema\":\"\\\"int\\\"\"}", &doc), 503);
    json_decref(doc);
    assert_int_equal(sg_test_proc_stop(&proc), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_ids_stable_across_restart),
        cmocka_unit_test(test_two_instances_concurrently),
        cmocka_unit_test(test_config_schemas),
        cmocka_unit_test(test_external_registry),
        cmocka_unit_test(test_embedded_ids_in_config_order),
        cmocka_unit_test(test_confluent_python_client),
        cmocka_unit_test(test_not_ready_without_kafka),
    };
    return cmocka_run_group_tests_name("integration-registry", tests, setup, teardown);
}
