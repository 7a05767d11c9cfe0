/*
 * Unit tests of the registry without Kafka: schema resolution (compatibility), canonical
 * equality, applying `_schemas` records (the first claim in offset order wins), and each
 * compatibility level with a compatible and an incompatible evolution.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "sg_cluster.h"
#include "sg_registry.h"

#define REC(fields) "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\",\"fields\":[" fields "]}"
#define F_A "{\"name\":\"a\",\"type\":\"int\"}"
#define F_B_DEFAULT "{\"name\":\"b\",\"type\":\"string\",\"default\":\"x\"}"
#define F_B "{\"name\":\"b\",\"type\":\"string\"}"
#define F_C "{\"name\":\"c\",\"type\":\"long\"}"

static int can_read(const char *writer, const char *reader, char *err, size_t errlen)
{
    err[0] = '\0';
    return sg_schema_can_read(writer, strlen(writer), reader, strlen(reader), err, errlen);
}

static void test_resolution_rules(void **state)
{
    char err[512];
    /* primitives and promotions */
    assert_int_equal(can_read("\"int\"", "\"long\"", err, sizeof(err)), 1);
    assert_int_equal(can_read("\"int\"", "\"double\"", err, sizeof(err)), 1);
    assert_int_equal(can_read("\"string\"", "\"bytes\"", err, sizeof(err)), 1);
    assert_int_equal(can_read("\"long\"", "\"int\"", err, sizeof(err)), 0);
    assert_string_equal(err, "/: the writer's long cannot be read as int");
    /* a reader field missing from the writer needs a default */
    assert_int_equal(can_read(REC(F_A), REC(F_A "," F_B_DEFAULT), err, sizeof(err)), 1);
    assert_int_equal(can_read(REC(F_A), REC(F_A "," F_B), err, sizeof(err)), 0);
    assert_string_equal(err, "/b: the reader's field b is not in the writer's shop.Order and has no default");
    /* writer fields the reader lacks are skipped */
    assert_int_equal(can_read(REC(F_A "," F_C), REC(F_A), err, sizeof(err)), 1);
    /* a field type change is reported at its path */
    assert_int_equal(can_read(REC("{\"name\":\"a\",\"type\":\"string\"}"), REC(F_A), err, sizeof(err)), 0);
    assert_string_equal(err, "/a: the writer's string cannot be read as int");
    /* nested: arrays of records */
    const char *w = REC("{\"name\":\"items\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":"
                        "\"Item\",\"fields\":[{\"name\":\"price\",\"type\":\"double\"}]}}}");
    const char *r = REC("{\"name\":\"items\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":"
                        "\"Item\",\"fields\":[{\"name\":\"price\",\"type\":\"int\"}]}}}");
    assert_int_equal(can_read(w, r, err, sizeof(err)), 0);
    assert_string_equal(err, "/items/items/price: the writer's double cannot be read as int");
    /* records are matched by full name (or a reader alias) */
    const char *other = "{\"type\":\"record\",\"name\":\"Other\",\"namespace\":\"shop\",\"fields\":[" F_A "]}";
    assert_int_equal(can_read(REC(F_A), other, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "another name"));
    const char *aliased =
        "{\"type\":\"record\",\"name\":\"Other\",\"namespace\":\"shop\",\"aliases\":[\"Order\"],\"fields\":[" F_A "]}";
    assert_int_equal(can_read(REC(F_A), aliased, err, sizeof(err)), 1);
    /* enums: every writer symbol known to the reader, unless the reader has a default */
    const char *e2 = "{\"type\":\"enum\",\"name\":\"S\",\"symbols\":[\"A\",\"B\"]}";
    const char *e3 = "{\"type\":\"enum\",\"name\":\"S\",\"symbols\":[\"A\",\"B\",\"C\"]}";
    const char *e2d = "{\"type\":\"enum\",\"name\":\"S\",\"symbols\":[\"A\",\"B\"],\"default\":\"A\"}";
    assert_int_equal(can_read(e2, e3, err, sizeof(err)), 1);
    assert_int_equal(can_read(e3, e2, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "symbol C"));
    assert_int_equal(can_read(e3, e2d, err, sizeof(err)), 1);
    /* unions: a reader union needs one branch; a writer union needs every branch readable */
    assert_int_equal(can_read("\"string\"", "[\"null\",\"string\"]", err, sizeof(err)), 1);
    assert_int_equal(can_read("[\"null\",\"string\"]", "\"string\"", err, sizeof(err)), 0);
    assert_int_equal(can_read("[\"null\",\"int\"]", "[\"null\",\"long\"]", err, sizeof(err)), 1);
    assert_int_equal(can_read("[\"null\",\"int\"]", "[\"null\",\"string\"]", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "no branch for the writer's int"));
    /* fixed: size */
    assert_int_equal(can_read("{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}", "{\"type\":\"fixed\",\"name\":\"F\",\"size\":8}",
                              err, sizeof(err)),
                     0);
    /* recursive types terminate */
    const char *list = "{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}";
    assert_int_equal(can_read(list, list, err, sizeof(err)), 1);
    /* invalid schemas are -1 */
    assert_int_equal(can_read("{\"type\":\"nope\"}", "\"int\"", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "writer"));
}

static void test_canonical_equality(void **state)
{
    char err[256];
    const char *a = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}";
    const char *b = "{ \"fields\" : [ { \"type\" : \"int\", \"name\" : \"a\" } ],\n  \"name\":\"R\", \"type\":\"record\" }";
    const char *c = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"long\"}]}";
    char *ca = sg_schema_canonical(a, strlen(a), err, sizeof(err));
    char *cb = sg_schema_canonical(b, strlen(b), err, sizeof(err));
    char *cc = sg_schema_canonical(c, strlen(c), err, sizeof(err));
    assert_non_null(ca);
    assert_non_null(cb);
    assert_non_null(cc);
    assert_string_equal(ca, cb);
    assert_string_equal(ca, "{\"fields\":[{\"name\":\"a\",\"type\":\"int\"}],\"name\":\"R\",\"type\":\"record\"}");
    assert_string_not_equal(ca, cc);
    free(ca);
    free(cb);
    free(cc);
    assert_null(sg_schema_canonical("{\"type\":", 8, err, sizeof(err)));
    assert_non_null(strstr(err, "not JSON"));

    /* registered under layout b, found under layout a: the same version and id */
    sg_registry_t *reg = sg_registry_create_local();
    char *key, *value;
    assert_int_equal(sg_registry_schema_record("s", 1, 1, b, strlen(b), &key, &value, err, sizeof(err)), 0);
    assert_int_equal(sg_registry_apply(reg, key, strlen(key), value, strlen(value), 0), 1);
    free(key);
    free(value);
    const sg_registry_schema_t *found;
    int version;
    assert_int_equal(sg_registry_find(reg, "s", a, strlen(a), &found, &version, err, sizeof(err)), SG_REG_OK);
    assert_int_equal(version, 1);
    assert_int_equal(sg_registry_schema_id(found), 1);
    assert_int_equal(sg_registry_find(reg, "s", c, strlen(c), &found, &version, err, sizeof(err)), SG_REG_E_NO_SCHEMA);
    assert_int_equal(sg_registry_find(reg, "t", a, strlen(a), &found, &version, err, sizeof(err)), SG_REG_E_NO_SUBJECT);
    sg_registry_destroy(reg);
}

/* Applies a claim; returns what sg_registry_apply returned. */
static int claim(sg_registry_t *reg, const char *subject, int version, uint32_t id, const char *text, int64_t offset)
{
    char err[256], *key, *value;
    assert_int_equal(sg_registry_schema_record(subject, version, id, text, strlen(text), &key, &value, err, sizeof(err)), 0);
    int changed = sg_registry_apply(reg, key, strlen(key), value, strlen(value), offset);
    free(key);
    free(value);
    return changed;
}

static void expect_version(sg_registry_t *reg, const char *subject, int version, uint32_t id, const char *text)
{
    const sg_registry_schema_t *schema;
    int got;
    assert_int_equal(sg_registry_get_version(reg, subject, version, &schema, &got), SG_REG_OK);
    assert_int_equal(got, version < 0 ? got : version);
    assert_int_equal(sg_registry_schema_id(schema), id);
    char err[256];
    char *canonical = sg_schema_canonical(text, strlen(text), err, sizeof(err));
    assert_string_equal(sg_registry_schema_text(schema, NULL), canonical);
    free(canonical);
}

static void test_first_claim_wins(void **state)
{
    sg_registry_t *reg = sg_registry_create_local();
    /* two instances claim version 1 of s with id 1 for different schemas: the first applied wins */
    assert_int_equal(claim(reg, "s", 1, 1, REC(F_A), 0), 1);
    assert_int_equal(claim(reg, "s", 1, 1, REC(F_A "," F_B_DEFAULT), 1), 0);
    expect_version(reg, "s", 1, 1, REC(F_A));
    assert_null(sg_registry_lookup(reg, 2));
    /* the loser retries against the new state: version 2, id 2 */
    uint32_t id;
    int version;
    char err[256];
    const char *v2 = REC(F_A "," F_B_DEFAULT);
    assert_int_equal(sg_registry_next_claim(reg, "s", v2, strlen(v2), &id, &version, err, sizeof(err)), 0);
    assert_int_equal(id, 2);
    assert_int_equal(version, 2);
    assert_int_equal(claim(reg, "s", 2, 2, v2, 2), 1);
    expect_version(reg, "s", 2, 2, v2);
    expect_version(reg, "s", -1, 2, v2);
    /* the same schema under another subject reuses its global id; a different id for it loses */
    assert_int_equal(claim(reg, "t", 1, 3, REC(F_A), 3), 0);
    assert_int_equal(sg_registry_next_claim(reg, "t", REC(F_A), strlen(REC(F_A)), &id, &version, err, sizeof(err)), 0);
    assert_int_equal(id, 1);
    assert_int_equal(claim(reg, "t", 1, 1, REC(F_A), 4), 1);
    expect_version(reg, "t", 1, 1, REC(F_A));
    /* an id already used by another schema, an id beyond max+1, a version gap, a duplicate: ignored */
    assert_int_equal(claim(reg, "u", 1, 1, REC(F_C), 5), 0);
    assert_int_equal(claim(reg, "u", 1, 9, REC(F_C), 6), 0);
    assert_int_equal(claim(reg, "s", 4, 3, REC(F_C), 7), 0);
    assert_int_equal(claim(reg, "s", 3, 1, REC(F_A), 8), 0);
    assert_int_equal(claim(reg, "u", 1, 3, REC(F_C), 9), 1);
    /* garbage is ignored, never fatal */
    assert_int_equal(sg_registry_apply(reg, "nope", 4, "{}", 2, 10), 0);
    assert_int_equal(sg_registry_apply(reg, "{\"keytype\":\"SCHEMA\"}", 20, "{\"subject\":\"s\"}", 15, 11), 0);
    assert_int_equal(sg_registry_apply(reg, NULL, 0, NULL, 0, 12), 0);
    json_t *subjects = sg_registry_subjects_json(reg);
    char *text = json_dumps(subjects, JSON_COMPACT);
    assert_string_equal(text, "[\"s\",\"t\",\"u\"]");
    free(text);
    json_decref(subjects);
    json_t *versions = sg_registry_versions_json(reg, "s");
    text = json_dumps(versions, JSON_COMPACT);
    assert_string_equal(text, "[1,2]");
    free(text);
    json_decref(versions);
    assert_null(sg_registry_versions_json(reg, "nobody"));
    const sg_registry_schema_t *schema;
    int got;
    assert_int_equal(sg_registry_get_version(reg, "s", 3, &schema, &got), SG_REG_E_NO_VERSION);
    assert_int_equal(sg_registry_get_version(reg, "x", 1, &schema, &got), SG_REG_E_NO_SUBJECT);
    /* the parsed schema is usable for JSON <-> Avro */
    schema = sg_registry_lookup(reg, 1);
    json_t *doc = json_pack("{s:i}", "a", 7);
    void *avro;
    size_t avro_len;
    char path[64];
    assert_int_equal(
        sg_avro_from_json(sg_registry_schema_avro(schema), doc, &avro, &avro_len, path, sizeof(path), err, sizeof(err)), 0);
    assert_int_equal(avro_len, 1);
    free(avro);
    json_decref(doc);
    sg_registry_destroy(reg);
}

static void set_level(sg_registry_t *reg, const char *subject, sg_compat_t level, int clear, int64_t offset)
{
    char *key, *value;
    sg_registry_config_record(subject, level, clear, &key, &value);
    assert_int_equal(sg_registry_apply(reg, key, strlen(key), value, value != NULL ? strlen(value) : 0, offset), 1);
    free(key);
    free(value);
}

static int check(sg_registry_t *reg, const char *subject, const char *text, char *err, size_t errlen)
{
    err[0] = '\0';
    return sg_registry_check_register(reg, subject, text, strlen(text), err, errlen);
}

static void test_levels(void **state)
{
    char err[1024];
    sg_registry_t *reg = sg_registry_create_local();
    sg_compat_t level;
    assert_int_equal(sg_registry_get_level(reg, NULL, &level), SG_REG_OK);
    assert_int_equal(level, SG_COMPAT_BACKWARD);
    assert_int_equal(claim(reg, "s", 1, 1, REC(F_A), 0), 1);

    /* BACKWARD (default): the new schema reads the latest's data */
    assert_int_equal(check(reg, "s", REC(F_A "," F_B_DEFAULT), err, sizeof(err)), SG_REG_OK);
    assert_int_equal(check(reg, "s", REC(F_A "," F_B), err, sizeof(err)), SG_REG_E_INCOMPATIBLE);
    assert_string_equal(err, "BACKWARD: the new schema cannot read data written with version 1: /b: the reader's field b "
                             "is not in the writer's shop.Order and has no default");

    /* FORWARD (subject level): the latest reads the new schema's data */
    set_level(reg, "s", SG_COMPAT_FORWARD, 0, 1);
    assert_int_equal(sg_registry_get_level(reg, "s", &level), SG_REG_OK);
    assert_int_equal(level, SG_COMPAT_FORWARD);
    assert_int_equal(check(reg, "s", REC(F_A "," F_B), err, sizeof(err)), SG_REG_OK);
    assert_int_equal(check(reg, "s", REC(F_B), err, sizeof(err)), SG_REG_E_INCOMPATIBLE);
    assert_non_null(strstr(err, "FORWARD: version 1 cannot read data written with the new schema: /a:"));

    /* FULL: both directions */
    set_level(reg, "s", SG_COMPAT_FULL, 0, 2);
    assert_int_equal(check(reg, "s", REC(F_A "," F_B_DEFAULT), err, sizeof(err)), SG_REG_OK);
    assert_int_equal(check(reg, "s", REC(F_A "," F_B), err, sizeof(err)), SG_REG_E_INCOMPATIBLE);
    assert_non_null(strstr(err, "FULL: the new schema cannot read"));
    assert_int_equal(check(reg, "s", REC(F_B_DEFAULT), err, sizeof(err)), SG_REG_E_INCOMPATIBLE);
    assert_non_null(strstr(err, "FULL: version 1 cannot read"));

    /* NONE: anything goes */
    set_level(reg, "s", SG_COMPAT_NONE, 0, 3);
    assert_int_equal(check(reg, "s", "\"string\"", err, sizeof(err)), SG_REG_OK);

    /* transitive levels check every version, the others only the latest:
     * v1 {a}, v2 {a, b="x"}; new {a, b} reads v2's data but not v1's */
    set_level(reg, "s", SG_COMPAT_BACKWARD, 1, 4); /* cleared: back to the global level */
    assert_int_equal(sg_registry_get_level(reg, "s", &level), SG_REG_E_NO_LEVEL);
    assert_int_equal(claim(reg, "s", 2, 2, REC(F_A "," F_B_DEFAULT), 5), 1);
    assert_int_equal(check(reg, "s", REC(F_A "," F_B), err, sizeof(err)), SG_REG_OK);
    set_level(reg, NULL, SG_COMPAT_BACKWARD_TRANSITIVE, 0, 6);
    assert_int_equal(check(reg, "s", REC(F_A "," F_B), err, sizeof(err)), SG_REG_E_INCOMPATIBLE);
    assert_non_null(strstr(err, "BACKWARD_TRANSITIVE: the new schema cannot read data written with version 1"));
    /* FORWARD_TRANSITIVE: v1 and v2 must read the new data: dropping b is fine for both (b has
     * a default in v2, v1 lacks it), dropping a is not */
    set_level(reg, NULL, SG_COMPAT_FORWARD_TRANSITIVE, 0, 7);
    assert_int_equal(check(reg, "s", REC(F_A), err, sizeof(err)), SG_REG_OK);
    assert_int_equal(check(reg, "s", REC(F_B_DEFAULT), err, sizeof(err)), SG_REG_E_INCOMPATIBLE);
    assert_non_null(strstr(err, "FORWARD_TRANSITIVE: version 2 cannot read"));
    /* FORWARD (not transitive) vs FORWARD_TRANSITIVE: new {a:int, b:int}: v2 (b:string) cannot
     * read it, so both fail; new {a, b="x", c}: both read it */
    set_level(reg, NULL, SG_COMPAT_FULL_TRANSITIVE, 0, 8);
    assert_int_equal(check(reg, "s",
                           REC(F_A "," F_B_DEFAULT ","
                                   "{\"name\":\"c\",\"type\":\"long\",\"default\":0}"),
                           err, sizeof(err)),
                     SG_REG_OK);
    assert_int_equal(check(reg, "s", REC(F_A "," F_B), err, sizeof(err)), SG_REG_E_INCOMPATIBLE);
    assert_non_null(strstr(err, "FULL_TRANSITIVE"));

    /* POST /compatibility against one version: direction of the level, no transitivity */
    set_level(reg, NULL, SG_COMPAT_BACKWARD, 0, 9);
    const char *text = REC(F_A "," F_B);
    assert_int_equal(sg_registry_check(reg, "s", -1, text, strlen(text), err, sizeof(err)), SG_REG_OK);
    assert_int_equal(sg_registry_check(reg, "s", 1, text, strlen(text), err, sizeof(err)), SG_REG_E_INCOMPATIBLE);
    assert_int_equal(sg_registry_check(reg, "s", 7, text, strlen(text), err, sizeof(err)), SG_REG_E_NO_VERSION);
    assert_int_equal(sg_registry_check(reg, "q", 1, text, strlen(text), err, sizeof(err)), SG_REG_E_NO_SUBJECT);
    assert_int_equal(sg_registry_check(reg, "s", 1, "{", 1, err, sizeof(err)), SG_REG_E_INVALID);
    /* a CONFIG value that is not a level is ignored */
    assert_int_equal(
        sg_registry_apply(reg, "{\"keytype\":\"CONFIG\",\"subject\":null}", 35, "{\"compatibilityLevel\":\"SIDEWAYS\"}", 33, 10),
        0);
    assert_int_equal(sg_registry_get_level(reg, NULL, &level), SG_REG_OK);
    assert_int_equal(level, SG_COMPAT_BACKWARD);
    sg_registry_destroy(reg);
}

static void test_names(void **state)
{
    sg_compat_t level;
    assert_int_equal(sg_compat_parse("full_transitive", &level), 0);
    assert_int_equal(level, SG_COMPAT_FULL_TRANSITIVE);
    assert_string_equal(sg_compat_name(level), "FULL_TRANSITIVE");
    assert_int_equal(sg_compat_parse("SOMETIMES", &level), -1);
    assert_int_equal(sg_registry_subject_ok("orders.commands-value", 21), 1);
    assert_int_equal(sg_registry_subject_ok("a/b", 3), 0);
    assert_int_equal(sg_registry_subject_ok("", 0), 0);
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name));
    assert_int_equal(sg_registry_subject_ok(long_name, SG_REGISTRY_MAX_SUBJECT_LEN), 1);
    assert_int_equal(sg_registry_subject_ok(long_name, SG_REGISTRY_MAX_SUBJECT_LEN + 1), 0);
}

/* ---- external mode: sg_registry_fetch against a scripted HTTP server -------------------- */

typedef struct {
    int listen_fd;
    int stop;
    int requests[16]; /* per schema id */
    pthread_t thread;
} fake_registry_t;

static void *fake_main(void *arg)
{
    fake_registry_t *fake = arg;
    while (!__atomic_load_n(&fake->stop, __ATOMIC_SEQ_CST)) {
        struct pollfd pfd = {.fd = fake->listen_fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int fd = accept(fake->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        char req[4096];
        size_t len = 0;
        req[0] = '\0';
        while (len < sizeof(req) - 1 && strstr(req, "\r\n\r\n") == NULL) {
            ssize_t n = recv(fd, req + len, sizeof(req) - 1 - len, 0);
            if (n <= 0)
                break;
            len += (size_t)n;
            req[len] = '\0';
        }
        unsigned id = 0;
        sscanf(req, "GET /prefix/schemas/ids/%u", &id);
        if (id < 16)
            __atomic_add_fetch(&fake->requests[id], 1, __ATOMIC_SEQ_CST);
        const char *resp;
        if (id == 11) { /* larger than the client accepts */
            static const char head[] = "HTTP/1.1 200 OK\r\n\r\n{\"schema\":\"";
            send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL);
            char block[4096];
            memset(block, 'x', sizeof(block));
            for (int i = 0; i < 400 && send(fd, block, sizeof(block), MSG_NOSIGNAL) > 0; i++)
                ;
            close(fd);
            continue;
        }
        switch (id) {
        case 7: /* chunked */
            resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
                   "5\r\n{\"sch\r\n"
                   "12\r\nema\":\"\\\"string\\\"\"}\r\n0\r\n\r\n";
            break;
        case 8: resp = "HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\n{\"schema\":\"\\\"long\\\"\"}"; break;
        case 9:
            resp = "HTTP/1.1 404 Not Found\r\nContent-Length: 49\r\n\r\n{\"error_code\":40403,\"message\":\"Schema not found\"}";
            break;
        default: resp = "HTTP/1.1 200 OK\r\n\r\nthis is not json"; break;
        }
        send(fd, resp, strlen(resp), MSG_NOSIGNAL);
        close(fd);
    }
    return NULL;
}

static void test_external_fetch(void **state)
{
    fake_registry_t fake = {0};
    fake.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fake.listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fake.listen_fd, 16), 0);
    socklen_t addrlen = sizeof(addr);
    getsockname(fake.listen_fd, (struct sockaddr *)&addr, &addrlen);
    pthread_create(&fake.thread, NULL, fake_main, &fake);

    char yaml[256], err[512];
    snprintf(yaml, sizeof(yaml), "schema_registry: {url: \"http://127.0.0.1:%u/prefix\"}\n", (unsigned)ntohs(addr.sin_port));
    sg_conf_t *conf = sg_conf_load_string("t.yaml", yaml, strlen(yaml), err, sizeof(err));
    assert_non_null(conf);
    sg_registry_t *reg = sg_registry_create(conf, NULL, err, sizeof(err));
    assert_non_null(reg);
    assert_string_equal(sg_registry_external_url(reg), conf->schema_registry.url);
    assert_int_equal(sg_registry_is_ready(reg), 1);
    assert_int_equal(sg_registry_register_async(reg, "s", "\"int\"", 5, NULL, NULL), SG_REG_E_EXTERNAL);

    /* the non-fetching lookup never asks; the fetching one does, once, then serves the cache */
    assert_null(sg_registry_lookup(reg, 7));
    const sg_registry_schema_t *schema = sg_registry_fetch(reg, 7, err, sizeof(err));
    if (schema == NULL)
        fail_msg("fetch 7: %s", err);
    assert_int_equal(sg_registry_schema_id(schema), 7);
    assert_string_equal(sg_registry_schema_text(schema, NULL), "\"string\"");
    assert_ptr_equal(sg_registry_fetch(reg, 7, err, sizeof(err)), schema);
    assert_ptr_equal(sg_registry_lookup(reg, 7), schema);
    assert_int_equal(__atomic_load_n(&fake.requests[7], __ATOMIC_SEQ_CST), 1);
    schema = sg_registry_fetch(reg, 8, err, sizeof(err));
    if (schema == NULL)
        fail_msg("fetch 8: %s", err);
    assert_non_null(schema);
    assert_string_equal(sg_registry_schema_text(schema, NULL), "\"long\"");

    /* failures are reported and remembered for a while: no second request */
    assert_null(sg_registry_fetch(reg, 9, err, sizeof(err)));
    assert_non_null(strstr(err, "/prefix/schemas/ids/9: HTTP 404"));
    assert_null(sg_registry_fetch(reg, 9, err, sizeof(err)));
    assert_non_null(strstr(err, "moments ago"));
    assert_int_equal(__atomic_load_n(&fake.requests[9], __ATOMIC_SEQ_CST), 1);
    assert_null(sg_registry_fetch(reg, 10, err, sizeof(err)));
    assert_non_null(strstr(err, "no schema in the answer"));
    assert_null(sg_registry_fetch(reg, 11, err, sizeof(err)));
    assert_non_null(strstr(err, "response larger than"));
    sg_registry_destroy(reg);
    sg_conf_destroy(conf);

    /* an unreachable registry fails fast with the address */
    snprintf(yaml, sizeof(yaml), "schema_registry: {url: \"http://127.0.0.1:1\"}\n");
    conf = sg_conf_load_string("t.yaml", yaml, strlen(yaml), err, sizeof(err));
    reg = sg_registry_create(conf, NULL, err, sizeof(err));
    assert_null(sg_registry_fetch(reg, 3, err, sizeof(err)));
    assert_non_null(strstr(err, "connect 127.0.0.1:1"));
    sg_registry_destroy(reg);
    sg_conf_destroy(conf);

    __atomic_store_n(&fake.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(fake.thread, NULL);
    close(fake.listen_fd);
}

/* Unions of records of unions, with named types reused by reference: the pairwise walk grew
 * 16x per level (a 5 KB schema ran for hours, found in review; then it gave up as "too complex",
 * even against itself). Memoised per pair of named types it is quick, and exact. */
static void append_union(char *out, size_t cap, int level, int width, int depth)
{
    size_t len = strlen(out);
    if (level > depth) {
        snprintf(out + len, cap - len, "\"int\"");
        return;
    }
    snprintf(out + len, cap - len, "[");
    for (int i = 0; i < width; ++i) {
        len = strlen(out);
        snprintf(out + len, cap - len,
                 "%s{\"type\":\"record\",\"name\":\"R%d_%d\",\"fields\":[{\"name\":\"g\",\"type\":", i ? "," : "", level, i);
        if (i == 0) {
            append_union(out, cap, level + 1, width, depth);
        } else if (level + 1 > depth) {
            len = strlen(out);
            snprintf(out + len, cap - len, "\"int\"");
        } else {
            len = strlen(out);
            snprintf(out + len, cap - len, "[");
            for (int k = 0; k < width; ++k) {
                len = strlen(out);
                snprintf(out + len, cap - len, "%s\"R%d_%d\"", k ? "," : "", level + 1, k);
            }
            len = strlen(out);
            snprintf(out + len, cap - len, "]");
        }
        len = strlen(out);
        snprintf(out + len, cap - len, "}]}");
    }
    len = strlen(out);
    snprintf(out + len, cap - len, "]");
}

static void test_exponential_schemas_are_bounded(void **state)
{
    static char schema[65536], promoted[65536];
    snprintf(schema, sizeof(schema), "{\"type\":\"record\",\"name\":\"Root\",\"fields\":[{\"name\":\"f\",\"type\":");
    append_union(schema, sizeof(schema), 1, 4, 12);
    size_t len = strlen(schema);
    snprintf(schema + len, sizeof(schema) - len, "}]}");
    assert_true(strlen(schema) < 8192);
    /* The same with every int a long: int data reads as long, not the other way round. */
    promoted[0] = '\0';
    for (const char *p = schema; *p != '\0';) {
        size_t used = strlen(promoted);
        if (strncmp(p, "\"int\"", 5) == 0) {
            snprintf(promoted + used, sizeof(promoted) - used, "\"long\"");
            p += 5;
        } else {
            promoted[used] = *p++;
            promoted[used + 1] = '\0';
        }
    }
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    char err[512] = "";
    assert_int_equal(sg_schema_can_read(schema, strlen(schema), schema, strlen(schema), err, sizeof(err)), 1);
    assert_int_equal(sg_schema_can_read(schema, strlen(schema), promoted, strlen(promoted), err, sizeof(err)), 1);
    assert_int_equal(sg_schema_can_read(promoted, strlen(promoted), schema, strlen(schema), err, sizeof(err)), 0);
    assert_string_equal(err, "/f: the reader's union has no branch for the writer's R1_0");
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    assert_true(seconds < 1.0); /* walked path by path, this takes hours */
}

/* The registry holds at most SG_REGISTRY_MAX_TOTAL_BYTES of schema text: a claim past it is
 * ignored when applied (so every instance refuses it alike), and a registration is refused. */
static void test_total_schema_bytes_are_bounded(void **state)
{
    sg_registry_t *reg = sg_registry_create_local();
    assert_non_null(reg);
    size_t doc_len = 250 * 1024;
    char *text = malloc(doc_len + 200);
    assert_non_null(text);
    size_t accepted = 0, total = 0;
    for (int i = 0; i < 200; ++i) {
        int n = snprintf(text, 200, "{\"type\":\"record\",\"name\":\"Big%d\",\"doc\":\"", i);
        memset(text + n, 'x', doc_len);
        snprintf(text + n + doc_len, 100, "\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}");
        char subject[32], err[256], *key = NULL, *value = NULL;
        snprintf(subject, sizeof(subject), "big-%d", i);
        uint32_t id;
        int version;
        assert_int_equal(sg_registry_next_claim(reg, subject, text, strlen(text), &id, &version, err, sizeof(err)), 0);
        assert_int_equal(sg_registry_schema_record(subject, version, id, text, strlen(text), &key, &value, err, sizeof(err)), 0);
        int applied = sg_registry_apply(reg, key, strlen(key), value, strlen(value), i);
        free(key);
        free(value);
        if (!applied)
            break;
        ++accepted;
        total += strlen(text);
    }
    assert_true(accepted >= 100 && accepted < 200);
    assert_true(total <= SG_REGISTRY_MAX_TOTAL_BYTES);
    assert_true(total + strlen(text) > SG_REGISTRY_MAX_TOTAL_BYTES);
    assert_null(sg_registry_lookup(reg, (uint32_t)accepted + 1));
    free(text);
    sg_registry_destroy(reg);
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int err;
    char msg[512];
    uint32_t id;
    int version;
    pthread_t thread;
} async_answer_t;

static void on_async(void *opaque, const sg_registry_result_t *result)
{
    async_answer_t *answer = opaque;
    pthread_mutex_lock(&answer->lock);
    answer->err = result->err;
    snprintf(answer->msg, sizeof(answer->msg), "%s", result->msg);
    answer->id = result->id;
    answer->version = result->version;
    answer->thread = pthread_self();
    answer->done = 1;
    pthread_cond_signal(&answer->cond);
    pthread_mutex_unlock(&answer->lock);
}

static void async_wait(async_answer_t *answer)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&answer->lock);
    while (!answer->done)
        assert_int_equal(pthread_cond_timedwait(&answer->cond, &answer->lock, &until), 0);
    pthread_mutex_unlock(&answer->lock);
    /* answered on the registry thread, not on the caller's */
    assert_false(pthread_equal(answer->thread, pthread_self()));
}

static async_answer_t *async_new(void)
{
    async_answer_t *answer = calloc(1, sizeof(*answer));
    assert_non_null(answer);
    pthread_mutex_init(&answer->lock, NULL);
    pthread_cond_init(&answer->cond, NULL);
    return answer;
}

static void async_free(async_answer_t *answer)
{
    pthread_mutex_destroy(&answer->lock);
    pthread_cond_destroy(&answer->cond);
    free(answer);
}

/* Compatibility checks and lookups by text run on the registry thread (the gateway must not parse
 * a 256 KiB schema or walk a compatibility check on an event loop), with the same answers as the
 * synchronous calls. */
static void test_checks_off_the_caller_thread(void **state)
{
    (void)state;
    char err[512] = "";
    sg_cluster_t *cluster = sg_cluster_create(1, err, sizeof(err));
    assert_non_null(cluster);
    assert_int_equal(sg_cluster_create_topic(cluster, SG_REGISTRY_TOPIC, 1, 1, err, sizeof(err)), 0);
    sg_conf_t *conf = sg_conf_load_string("t.yaml", "{}", 2, err, sizeof(err));
    assert_non_null(conf);
    sg_registry_t *reg = sg_registry_create(conf, sg_cluster_bootstraps(cluster), err, sizeof(err));
    assert_non_null(reg);
    assert_int_equal(sg_registry_start(reg, err, sizeof(err)), 0);
    assert_int_equal(sg_registry_wait_ready(reg, 20000, err, sizeof(err)), 0);
    const char *v1 = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}";
    const char *v2_ok = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"long\"},"
                        "{\"name\":\"b\",\"type\":\"string\",\"default\":\"\"}]}";
    const char *v2_bad = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
                         "{\"name\":\"b\",\"type\":\"string\"}]}";
    uint32_t id = 0;
    int version = 0;
    assert_int_equal(sg_registry_register(reg, "s", v1, strlen(v1), 20000, &id, &version, err, sizeof(err)), SG_REG_OK);

    async_answer_t *answer = async_new();
    assert_int_equal(sg_registry_check_async(reg, "s", -1, v2_ok, strlen(v2_ok), on_async, answer), 0);
    async_wait(answer);
    assert_int_equal(answer->err, SG_REG_OK);
    async_free(answer);

    answer = async_new();
    assert_int_equal(sg_registry_check_async(reg, "s", 1, v2_bad, strlen(v2_bad), on_async, answer), 0);
    async_wait(answer);
    assert_int_equal(answer->err, SG_REG_E_INCOMPATIBLE);
    assert_int_equal(sg_registry_check(reg, "s", 1, v2_bad, strlen(v2_bad), err, sizeof(err)), SG_REG_E_INCOMPATIBLE);
    assert_string_equal(answer->msg, err);
    async_free(answer);

    answer = async_new();
    assert_int_equal(sg_registry_check_async(reg, "nobody", -1, v1, strlen(v1), on_async, answer), 0);
    async_wait(answer);
    assert_int_equal(answer->err, SG_REG_E_NO_SUBJECT);
    async_free(answer);

    answer = async_new();
    assert_int_equal(sg_registry_check_async(reg, "s", -1, "{nope", 5, on_async, answer), 0);
    async_wait(answer);
    assert_int_equal(answer->err, SG_REG_E_INVALID);
    async_free(answer);

    answer = async_new();
    assert_int_equal(sg_registry_find_async(reg, "s", v1, strlen(v1), on_async, answer), 0);
    async_wait(answer);
    assert_int_equal(answer->err, SG_REG_OK);
    assert_int_equal(answer->id, id);
    assert_int_equal(answer->version, 1);
    async_free(answer);

    answer = async_new();
    assert_int_equal(sg_registry_find_async(reg, "s", v2_ok, strlen(v2_ok), on_async, answer), 0);
    async_wait(answer);
    assert_int_equal(answer->err, SG_REG_E_NO_SCHEMA);
    async_free(answer);

    sg_registry_destroy(reg);
    sg_conf_destroy(conf);
    sg_cluster_destroy(cluster);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolution_rules),
        cmocka_unit_test(test_canonical_equality),
        cmocka_unit_test(test_first_claim_wins),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_external_fetch),
        cmocka_unit_test(test_exponential_schemas_are_bounded),
        cmocka_unit_test(test_total_schema_bytes_are_bounded),
        cmocka_unit_test(test_checks_off_the_caller_thread),
    };
    return cmocka_run_group_tests_name("bridge-registry", tests, NULL, NULL);
}
