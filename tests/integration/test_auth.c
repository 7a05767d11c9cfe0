/*
 * Authentication, scopes and rate limits end to end (DESIGN §6): the real gateway with an auth
 * section, keys made by the openssl command and tokens minted by Debian's python3-jwt
 * (tests/gateway/auth_tokens.py, shared with the unit tests), the embedded cluster read back with
 * a separate consumer. Every refusal is checked for its status, its WWW-Authenticate challenge,
 * its problem cause, and for having produced nothing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "auth_fixture.h"
#include "harness.h"

#define ISSUER "https://id.example"
#define AUDIENCE "streamgate"
/* printf %s sg-test-importer-key | sha256sum (and so on): the config holds only the hashes. */
#define IMPORTER_KEY "sg-test-importer-key"
#define IMPORTER_SHA256 "682ed2375f84d3b096e470850ff264a026fe4c2f846a6c09bf690d9fda34f0da"
#define METRICS_KEY "sg-test-metrics-key"
#define METRICS_SHA256 "895a84bf2a0a688a26a71bc73811531dd5d164e904f2b616633284632f548e41"
#define LIMITED_RATE 50 /* rate_limits "steady": per principal, 50/s, burst 10 */
#define LIMITED_BURST 10

static fx_t fx;
static sg_test_proc_t gw;
static json_t *tokens;
static sg_test_worker_t *worker;

static const char config_template[] =
    "listen: [\"127.0.0.1:0\"]\n"
    "threads: 2\n"
    "data_dir: @DIR@/data\n"
    "topics:\n"
    "  - {name: orders, partitions: 2}\n"
    "  - {name: opens, partitions: 1}\n"
    "  - {name: asks, partitions: 1}\n"
    "  - {name: asks.replies, partitions: 1}\n"
    "  - {name: profiles, partitions: 1}\n"
    "  - {name: secrets, partitions: 1}\n"
    "  - {name: limited, partitions: 2}\n"
    "routes:\n"
    "  - {name: place-order, method: POST, path: /orders, topic: orders, key: \"body:/id\", scopes: [\"orders:write\"]}\n"
    "  - {name: open, method: POST, path: /open, topic: opens, public: true}\n"
    "  - {name: ask, method: POST, path: /ask, topic: asks, scopes: [\"orders:write\"], reply: {topic: asks.replies, timeout: "
    "5s}}\n"
    "  - {name: put-me, method: PUT, path: /me, topic: profiles, key: \"claim:sub\", scopes: [\"profiles:write\"]}\n"
    "  - {name: ask-open, method: POST, path: /ask-open, topic: asks, public: true, reply: {topic: asks.replies}}\n"
    "  - {name: steady, method: POST, path: /steady, topic: limited}\n"
    "  - {name: bursty, method: POST, path: /bursty, topic: limited, public: true}\n"
    "tables:\n"
    "  - {name: profiles, topic: profiles}\n"
    "  - {name: secrets, topic: secrets, scopes: [\"secrets:read\"]}\n"
    "queries:\n"
    "  - {path: /me, table: profiles, key: \"claim:sub\"}\n"
    "auth:\n"
    "  jwt: {issuer: \"" ISSUER "\", audience: " AUDIENCE ", jwks_file: %s/jwks.json, jwks_min_refresh: 1s}\n"
    "  api_keys:\n"
    "    - {name: importer, sha256: \"" IMPORTER_SHA256 "\", scopes: [\"orders:write\"]}\n"
    "    - {name: scraper, sha256: \"" METRICS_SHA256 "\", scopes: [\"metrics:read\"]}\n"
    "rate_limits:\n"
    "  - {name: steady, routes: [steady], per: principal, rate: 50/s, burst: 10}\n"
    "  - {name: bursty, routes: [bursty], per: ip, rate: 1/m, burst: 2}\n"
    "cors: {origins: [\"http://app.example\"]}\n";

/* --- tokens ------------------------------------------------------------------------------------- */

/* A token spec with the standard claims (issuer, audience, an hour to live) plus `extra`. */
static json_t *token_spec(const char *name, const char *alg, const char *key, const char *kid, const char *sub, const char *scope,
                          json_t *extra)
{
    time_t now = time(NULL);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I}", "iss", ISSUER, "aud", AUDIENCE, "sub", sub, "exp", (json_int_t)now + 3600);
    if (scope != NULL)
        json_object_set_new(claims, "scope", json_string(scope));
    if (extra != NULL) {
        json_object_update(claims, extra);
        json_decref(extra);
    }
    return fx_token_spec(name, alg, key, kid, claims);
}

static void write_jwks(const char *file, int with_rotated)
{
    char path[128], rsa[128], ec[128], rot[128];
    json_t *keys = json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}]", "key", "rsa", "kid", "k-rsa", "alg", "RS256", "key", "ec", "kid",
                             "k-ec", "alg", "ES256");
    if (with_rotated)
        json_array_append_new(keys, json_pack("{s:s, s:s, s:s}", "key", "rot", "kid", "k-rot", "alg", "RS256"));
    json_t *spec = json_pack("{s:{s:s, s:s, s:s}, s:[{s:s, s:o}]}", "keys", "rsa", fx_path(&fx, "rsa.pem", rsa, sizeof(rsa)), "ec",
                             fx_path(&fx, "ec.pem", ec, sizeof(ec)), "rot", fx_path(&fx, "rot.pem", rot, sizeof(rot)), "jwks",
                             "out", fx_path(&fx, file, path, sizeof(path)), "keys", keys);
    json_decref(fx_mint(&fx, spec));
    json_decref(spec);
}

static void mint_tokens(void)
{
    char rsa[128], ec[128], rot[128];
    time_t now = time(NULL);
    char pad[9001];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    json_t *list = json_array();
    json_array_append_new(list,
                          token_spec("alice", "RS256", "rsa", "k-rsa", "alice", "orders:write tables:read profiles:write", NULL));
    json_array_append_new(list, token_spec("bob", "ES256", "ec", "k-ec", "bob", "orders:write tables:read profiles:write", NULL));
    json_array_append_new(list, token_spec("carol", "RS256", "rsa", "k-rsa", "carol", "tables:read", NULL));
    json_array_append_new(list, token_spec("dave", "ES256", "ec", "k-ec", "dave", "profiles:write tables:read", NULL));
    json_array_append_new(list, token_spec("none", "none", NULL, NULL, "alice", "orders:write", NULL));
    json_t *hs = token_spec("hs256-public-key", "HS256", NULL, "k-rsa", "alice", "orders:write", NULL);
    json_object_set_new(hs, "secret_public_pem", json_string("rsa"));
    json_array_append_new(list, hs);
    json_array_append_new(list, token_spec("expired", "RS256", "rsa", "k-rsa", "alice", "orders:write",
                                           json_pack("{s:I}", "exp", (json_int_t)now - 3600)));
    json_array_append_new(list, token_spec("not-yet", "RS256", "rsa", "k-rsa", "alice", "orders:write",
                                           json_pack("{s:I}", "nbf", (json_int_t)now + 3600)));
    json_array_append_new(list, token_spec("wrong-iss", "RS256", "rsa", "k-rsa", "alice", "orders:write",
                                           json_pack("{s:s}", "iss", "https://evil.example")));
    json_array_append_new(
        list, token_spec("wrong-aud", "ES256", "ec", "k-ec", "alice", "orders:write", json_pack("{s:s}", "aud", "other")));
    json_array_append_new(list, token_spec("unknown-kid", "RS256", "rsa", "k-nope", "alice", "orders:write", NULL));
    json_t *tampered = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:I}}", "name", "tampered", "tamper", "alice", "claims", "iss",
                                 ISSUER, "aud", AUDIENCE, "sub", "mallory", "scope", "orders:write", "exp", (json_int_t)now + 3600);
    json_array_append_new(list, tampered);
    json_array_append_new(
        list, token_spec("oversized", "RS256", "rsa", "k-rsa", "alice", "orders:write", json_pack("{s:s}", "pad", pad)));
    json_array_append_new(list, token_spec("rotated", "RS256", "rot", "k-rot", "erin", "orders:write", NULL));
    json_t *spec =
        json_pack("{s:{s:s, s:s, s:s}, s:o}", "keys", "rsa", fx_path(&fx, "rsa.pem", rsa, sizeof(rsa)), "ec",
                  fx_path(&fx, "ec.pem", ec, sizeof(ec)), "rot", fx_path(&fx, "rot.pem", rot, sizeof(rot)), "tokens", list);
    tokens = fx_mint(&fx, spec);
    json_decref(spec);
}

static int setup(void **state)
{
    fx_init(&fx);
    fx_genkey(&fx, "rsa", "rsa2048");
    fx_genkey(&fx, "ec", "ec256");
    fx_genkey(&fx, "rot", "rsa2048");
    write_jwks("jwks.json", 0);
    mint_tokens();
    char config[sizeof(config_template) + 256];
    snprintf(config, sizeof(config), config_template, fx.dir);
    if (sg_test_gateway_start(&gw, config) != 0)
        return -1;
    worker = sg_test_worker_start(gw.bootstrap, "asks", 1);
    return worker != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    sg_test_worker_stop(worker);
    json_decref(tokens);
    int rc = sg_test_proc_stop(&gw);
    fx_cleanup(&fx);
    return rc == 0 ? 0 : -1;
}

/* --- requests ----------------------------------------------------------------------------------- */

/* "Authorization: Bearer <token>\r\n" for the token called `name` (a static buffer). */
static const char *bearer(const char *name)
{
    static char header[16384];
    snprintf(header, sizeof(header), "Authorization: Bearer %s\r\n", fx_token(tokens, name));
    return header;
}

static void http(const char *method, const char *path, const char *headers, const char *body, sg_test_response_t *res)
{
    assert_int_equal(sg_test_http(&gw, method, path, headers, body, body != NULL ? strlen(body) : 0, res), 0);
}

/* POST of a JSON body with `headers` (may be NULL) added. */
static void post(const char *path, const char *headers, const char *body, sg_test_response_t *res)
{
    char all[20000];
    snprintf(all, sizeof(all), "Content-Type: application/json\r\n%s", headers != NULL ? headers : "");
    http("POST", path, all, body, res);
}

/* The problem's type is urn:streamgate:problem:<type> and its member `name` (unless NULL) is `value`. */
static void expect_problem(const sg_test_response_t *res, int status, const char *type, const char *name, const char *value)
{
    if (res->status != status)
        fail_msg("expected %d %s, got %d: %s", status, type, res->status, res->body);
    json_t *doc = json_loads(res->body, 0, NULL);
    assert_non_null(doc);
    char urn[128];
    snprintf(urn, sizeof(urn), "urn:streamgate:problem:%s", type);
    assert_string_equal(json_string_value(json_object_get(doc, "type")), urn);
    assert_int_equal(json_integer_value(json_object_get(doc, "status")), status);
    if (name != NULL) {
        const char *found = json_string_value(json_object_get(doc, name));
        if (found == NULL || strcmp(found, value) != 0)
            fail_msg("problem member %s is %s, expected %s (%s)", name, found ? found : "absent", value, res->body);
    }
    json_decref(doc);
}

static void expect_header(const sg_test_response_t *res, const char *name, const char *expected)
{
    char value[1024];
    if (sg_test_header(res, name, value, sizeof(value)) == NULL)
        fail_msg("no %s header (status %d: %s)", name, res->status, res->body);
    if (strcmp(value, expected) != 0)
        fail_msg("%s is\n  %s\nexpected\n  %s", name, value, expected);
}

/* A 401 invalid-token for `cause`, its challenge exactly `challenge`: Bearer error="invalid_token"
 * with the description; `prefix` only for descriptions that hold a number of seconds. */
static void expect_refused(const sg_test_response_t *res, const char *cause, const char *description, int prefix)
{
    expect_problem(res, 401, "invalid-token", "cause", cause);
    char expected[512], value[1024];
    snprintf(expected, sizeof(expected), "Bearer error=\"invalid_token\", error_description=\"%s%s", description,
             prefix ? "" : "\"");
    assert_non_null(sg_test_header(res, "www-authenticate", value, sizeof(value)));
    if (prefix ? strncmp(value, expected, strlen(expected)) != 0 : strcmp(value, expected) != 0)
        fail_msg("www-authenticate is\n  %s\nexpected%s\n  %s", value, prefix ? " to start with" : "", expected);
}

static int64_t count(const char *topic)
{
    return sg_test_topic_count(gw.bootstrap, topic);
}

/* The 202 of a command: its partition and offset. */
static void accepted(const sg_test_response_t *res, int32_t *partition, int64_t *offset)
{
    if (res->status != 202)
        fail_msg("expected 202, got %d: %s", res->status, res->body);
    json_t *doc = json_loads(res->body, 0, NULL);
    json_int_t p = -1, o = -1;
    assert_int_equal(json_unpack(doc, "{s:I, s:I}", "partition", &p, "offset", &o), 0);
    json_decref(doc);
    *partition = (int32_t)p;
    *offset = o;
}

/* --- tokens that pass --------------------------------------------------------------------------- */

static void test_valid_tokens_and_keys_pass(void **state)
{
    sg_test_response_t res;
    int32_t partition;
    int64_t offset;
    char alice[4096], bob[4096];
    snprintf(alice, sizeof(alice), "%s", bearer("alice")); /* RS256 */
    snprintf(bob, sizeof(bob), "%s", bearer("bob"));       /* ES256 */
    const char *headers[] = {alice, bob, "X-API-Key: " IMPORTER_KEY "\r\n"};
    const char *expected[] = {"alice", "bob", "importer"};
    for (size_t i = 0; i < 3; ++i) {
        post("/orders", headers[i], "{\"id\":\"o-1\"}", &res);
        accepted(&res, &partition, &offset);
        sg_test_response_free(&res);
        sg_test_record_t rec;
        assert_int_equal(sg_test_consume(gw.bootstrap, "orders", partition, offset, &rec), 0);
        char value[256];
        assert_non_null(sg_test_record_header(&rec, "streamgate-principal", value, sizeof(value)));
        assert_string_equal(value, expected[i]);
        sg_test_record_free(&rec);
    }
    /* a table read with tables:read (the row is absent: 404 is the read's own answer) */
    http("GET", "/tables/profiles/nobody", alice, NULL, &res);
    expect_problem(&res, 404, "no-such-row", NULL, NULL);
    sg_test_response_free(&res);
    http("GET", "/tables/profiles/nobody", bob, NULL, &res);
    expect_problem(&res, 404, "no-such-row", NULL, NULL);
    sg_test_response_free(&res);
    /* public routes and the operational endpoints need nothing */
    post("/open", NULL, "{}", &res);
    assert_int_equal(res.status, 202);
    sg_test_response_free(&res);
    const char *open[] = {"/healthz", "/readyz", "/openapi.json"};
    for (size_t i = 0; i < 3; ++i) {
        http("GET", open[i], NULL, NULL, &res);
        assert_int_equal(res.status, 200);
        sg_test_response_free(&res);
    }
}

/* --- refusals ----------------------------------------------------------------------------------- */

static void test_bad_tokens_are_refused_and_produce_nothing(void **state)
{
    static const struct {
        const char *token, *cause, *description;
        int prefix;
    } cases[] = {
        {"none", "algorithm-not-allowed", "unsigned tokens (alg none) are never accepted", 0},
        {"hs256-public-key", "algorithm-not-allowed", "HS256 is not an allowed algorithm", 0},
        {"expired", "expired", "the token expired ", 1},
        {"not-yet", "not-yet-valid", "the token is not valid for another ", 1},
        {"wrong-iss", "wrong-issuer", "the token's issuer (iss) is not the one this gateway trusts", 0},
        {"wrong-aud", "wrong-audience", "the token's audience (aud) does not include streamgate", 0},
        {"unknown-kid", "unknown-key-id", "no key in the key set has the token's kid", 0},
        {"tampered", "bad-signature", "the signature does not verify", 0},
        {"oversized", "too-large", "the token is longer than 8192 bytes", 0},
    };
    int64_t before = count("orders");
    sg_test_response_t res;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        post("/orders", bearer(cases[i].token), "{\"id\":\"o-2\"}", &res);
        expect_refused(&res, cases[i].cause, cases[i].description, cases[i].prefix);
        expect_problem(&res, 401, "invalid-token", "field", "Authorization");
        sg_test_response_free(&res);
    }
    post("/orders", "Authorization: Bearer abc.def\r\n", "{\"id\":\"o-2\"}", &res);
    expect_refused(&res, "malformed", "the token is not a JWS in compact form (three base64url parts)", 0);
    sg_test_response_free(&res);
    post("/orders", "Authorization: Basic YWxpY2U6c2VjcmV0\r\n", "{\"id\":\"o-2\"}", &res);
    expect_refused(&res, "unsupported-credential", "only the Bearer scheme is accepted in Authorization", 0);
    sg_test_response_free(&res);
    /* no credential at all: RFC 6750 §3.1, a bare challenge */
    post("/orders", NULL, "{\"id\":\"o-2\"}", &res);
    expect_problem(&res, 401, "missing-credential", "cause", "missing-credential");
    expect_header(&res, "www-authenticate", "Bearer");
    sg_test_response_free(&res);
    /* API keys: a wrong one (one character off) and an unknown one */
    const char *keys[] = {"X-API-Key: sg-test-importer-keY\r\n", "X-API-Key: no-such-key\r\n"};
    for (size_t i = 0; i < 2; ++i) {
        post("/orders", keys[i], "{\"id\":\"o-2\"}", &res);
        expect_refused(&res, "unknown-api-key", "the API key is not known", 0);
        expect_problem(&res, 401, "invalid-token", "field", "X-API-Key");
        sg_test_response_free(&res);
    }
    /* two credentials at once are one too many */
    char both[4096];
    snprintf(both, sizeof(both), "%sX-API-Key: " IMPORTER_KEY "\r\n", bearer("alice"));
    post("/orders", both, "{\"id\":\"o-2\"}", &res);
    expect_refused(&res, "malformed", "send one credential: Authorization or X-API-Key, not both", 0);
    sg_test_response_free(&res);
    assert_int_equal(count("orders"), before);
}

static void test_missing_scope_is_403_naming_it(void **state)
{
    int64_t before = count("orders");
    sg_test_response_t res;
    post("/orders", bearer("carol"), "{\"id\":\"o-3\"}", &res);
    expect_problem(&res, 403, "insufficient-scope", "scope", "orders:write");
    expect_header(&res, "www-authenticate",
                  "Bearer error=\"insufficient_scope\", error_description=\"the credential lacks the scope orders:write\", "
                  "scope=\"orders:write\"");
    sg_test_response_free(&res);
    /* an API key without the scope: the same */
    http("GET", "/tables/profiles/x", "X-API-Key: " IMPORTER_KEY "\r\n", NULL, &res);
    expect_problem(&res, 403, "insufficient-scope", "scope", "tables:read");
    sg_test_response_free(&res);
    /* a table's own scopes replace tables:read; built-ins have theirs */
    http("GET", "/tables/secrets/x", bearer("alice"), NULL, &res);
    expect_problem(&res, 403, "insufficient-scope", "scope", "secrets:read");
    sg_test_response_free(&res);
    http("GET", "/metrics", bearer("alice"), NULL, &res);
    expect_problem(&res, 403, "insufficient-scope", "scope", "metrics:read");
    sg_test_response_free(&res);
    http("GET", "/registry/subjects", bearer("alice"), NULL, &res);
    expect_problem(&res, 403, "insufficient-scope", "scope", "registry:read");
    sg_test_response_free(&res);
    post("/registry/subjects/s/versions", bearer("alice"), "{\"schema\":\"\\\"string\\\"\"}", &res);
    expect_problem(&res, 403, "insufficient-scope", "scope", "registry:write");
    sg_test_response_free(&res);
    http("GET", "/metrics", "X-API-Key: " METRICS_KEY "\r\n", NULL, &res);
    assert_int_equal(res.status, 200);
    sg_test_response_free(&res);
    assert_int_equal(count("orders"), before);
}

/* --- the principal in events -------------------------------------------------------------------- */

static void test_forged_principal_header_is_not_forwarded(void **state)
{
    char headers[8192];
    snprintf(headers, sizeof(headers), "%sStreamgate-Principal: admin\r\nstreamgate-principal: root\r\n", bearer("bob"));
    sg_test_response_t res;
    post("/orders", headers, "{\"id\":\"o-4\"}", &res);
    int32_t partition;
    int64_t offset;
    accepted(&res, &partition, &offset);
    sg_test_response_free(&res);
    sg_test_record_t rec;
    assert_int_equal(sg_test_consume(gw.bootstrap, "orders", partition, offset, &rec), 0);
    size_t seen = 0;
    for (size_t i = 0; i < rec.n_headers; ++i)
        if (strcmp(rec.header_names[i], "streamgate-principal") == 0) {
            ++seen;
            assert_int_equal(rec.header_lens[i], 3);
            assert_memory_equal(rec.header_values[i], "bob", 3);
        }
    assert_int_equal(seen, 1);
    sg_test_record_free(&rec);
    /* a public route's event has no principal, whatever the client sends */
    post("/open", "streamgate-principal: admin\r\n", "{}", &res);
    accepted(&res, &partition, &offset);
    sg_test_response_free(&res);
    assert_int_equal(sg_test_consume(gw.bootstrap, "opens", partition, offset, &rec), 0);
    char value[64];
    assert_null(sg_test_record_header(&rec, "streamgate-principal", value, sizeof(value)));
    sg_test_record_free(&rec);
}

/* --- claim:sub keys ----------------------------------------------------------------------------- */

static void test_me_shows_each_user_only_their_row(void **state)
{
    sg_test_response_t res;
    char alice[4096], bob[4096];
    snprintf(alice, sizeof(alice), "%sContent-Type: application/json\r\n", bearer("alice"));
    snprintf(bob, sizeof(bob), "%sContent-Type: application/json\r\n", bearer("bob"));
    http("PUT", "/me", alice, "{\"name\":\"Alice\"}", &res);
    int32_t partition;
    int64_t offset;
    accepted(&res, &partition, &offset);
    char token_a[512];
    assert_non_null(sg_test_header(&res, "consistency-token", token_a, sizeof(token_a)));
    sg_test_response_free(&res);
    sg_test_record_t rec;
    assert_int_equal(sg_test_consume(gw.bootstrap, "profiles", partition, offset, &rec), 0);
    assert_string_equal(rec.key, "alice"); /* the event key is the token's sub */
    sg_test_record_free(&rec);
    http("PUT", "/me", bob, "{\"name\":\"Bob\"}", &res);
    char token_b[512];
    assert_non_null(sg_test_header(&res, "consistency-token", token_b, sizeof(token_b)));
    sg_test_response_free(&res);

    char headers[8192];
    snprintf(headers, sizeof(headers), "%sConsistency-Token: %s\r\n", bearer("alice"), token_b); /* both rows applied */
    http("GET", "/me", headers, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"name\":\"Alice\"}");
    sg_test_response_free(&res);
    snprintf(headers, sizeof(headers), "%sConsistency-Token: %s\r\n", bearer("bob"), token_a);
    http("GET", "/me", headers, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"name\":\"Bob\"}");
    sg_test_response_free(&res);
    /* dave has no row: his own 404, never someone else's */
    http("GET", "/me", bearer("dave"), NULL, &res);
    expect_problem(&res, 404, "no-such-row", NULL, NULL);
    sg_test_response_free(&res);
    /* no credential, no row */
    http("GET", "/me", NULL, NULL, &res);
    expect_problem(&res, 401, "missing-credential", NULL, NULL);
    sg_test_response_free(&res);
}

/* --- request status belongs to its requester ---------------------------------------------------- */

/* Posts an async request as `who` (a header block) and returns its Location path. */
static void ask(const char *who, char *location, size_t size)
{
    char headers[8192];
    snprintf(headers, sizeof(headers), "%sPrefer: respond-async\r\n", who);
    sg_test_response_t res;
    post("/ask", headers, "{\"body\":{\"answer\":42}}", &res);
    if (res.status != 202)
        fail_msg("ask: %d %s", res.status, res.body);
    assert_non_null(sg_test_header(&res, "location", location, size));
    sg_test_response_free(&res);
}

/* GETs `location` as `who` until its state is done (5 s at most). */
static void wait_done(const char *location, const char *who)
{
    for (int i = 0; i < 100; ++i) {
        sg_test_response_t res;
        http("GET", location, who, NULL, &res);
        assert_int_equal(res.status, 200);
        int done = strstr(res.body, "\"state\":\"done\"") != NULL;
        sg_test_response_free(&res);
        if (done)
            return;
        usleep(50 * 1000);
    }
    fail_msg("%s never got done", location);
}

static void test_status_answers_only_its_requester(void **state)
{
    char alice[4096], bob[4096], location[128];
    snprintf(alice, sizeof(alice), "%s", bearer("alice"));
    snprintf(bob, sizeof(bob), "%s", bearer("bob"));
    ask(alice, location, sizeof(location));
    wait_done(location, alice);
    sg_test_response_t res;
    /* another principal, an API key, nobody: the 404 of an unknown id */
    const char *others[] = {bob, "X-API-Key: " IMPORTER_KEY "\r\n", NULL};
    for (size_t i = 0; i < 3; ++i) {
        http("GET", location, others[i], NULL, &res);
        expect_problem(&res, 404, "unknown-request", "field", "id");
        sg_test_response_free(&res);
        char headers[8192];
        snprintf(headers, sizeof(headers), "%sAccept: text/event-stream\r\n", others[i] != NULL ? others[i] : "");
        http("GET", location, headers, NULL, &res);
        expect_problem(&res, 404, "unknown-request", NULL, NULL);
        sg_test_response_free(&res);
    }
    /* a bad credential is still a 401, not a 404 */
    http("GET", location, bearer("expired"), NULL, &res);
    expect_problem(&res, 401, "invalid-token", "cause", "expired");
    sg_test_response_free(&res);
    /* a request made without a credential (a public route) is anyone's who holds its id */
    sg_test_response_t open;
    post("/ask-open", "Prefer: respond-async\r\n", "{\"body\":{\"answer\":7}}", &open);
    assert_int_equal(open.status, 202);
    assert_non_null(sg_test_header(&open, "location", location, sizeof(location)));
    sg_test_response_free(&open);
    wait_done(location, NULL);
    http("GET", location, bob, NULL, &res);
    assert_int_equal(res.status, 200);
    sg_test_response_free(&res);
    /* Idempotency-Keys are per principal: one never replays another's outcome */
    snprintf(alice, sizeof(alice), "%sIdempotency-Key: same-key\r\n", bearer("alice"));
    snprintf(bob, sizeof(bob), "%sIdempotency-Key: same-key\r\n", bearer("bob"));
    post("/orders", alice, "{\"id\":\"o-5\"}", &res);
    int32_t pa, pb;
    int64_t oa, ob;
    accepted(&res, &pa, &oa);
    sg_test_response_free(&res);
    post("/orders", bob, "{\"id\":\"o-5\"}", &res); /* same key, same body, another principal: its own event */
    accepted(&res, &pb, &ob);
    char value[16];
    assert_null(sg_test_header(&res, "idempotent-replayed", value, sizeof(value)));
    sg_test_response_free(&res);
    assert_true(pa != pb || oa != ob);
    post("/orders", alice, "{\"id\":\"o-5\"}", &res); /* alice again: her own first outcome */
    int32_t pr;
    int64_t orr;
    accepted(&res, &pr, &orr);
    expect_header(&res, "idempotent-replayed", "true");
    sg_test_response_free(&res);
    assert_int_equal(pr, pa);
    assert_int_equal(orr, oa);
}

/* --- the sg_token cookie ------------------------------------------------------------------------ */

/* Sends a GET and reads until `until` appears in what came back or 5 s pass; returns the bytes
 * read (owned). For event streams, which stay open. */
static char *read_stream(const char *path, const char *headers, const char *until)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gw.port)};
    inet_pton(AF_INET, gw.host, &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    char request[8192];
    int n = snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: %s:%u\r\n%s\r\n", path, gw.host, gw.port, headers);
    assert_int_equal(send(fd, request, (size_t)n, MSG_NOSIGNAL), n);
    size_t cap = 65536, len = 0;
    char *buf = calloc(1, cap);
    for (int waited = 0; waited < 5000 && strstr(buf, until) == NULL && len + 1 < cap;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0) {
            waited += 100;
            continue;
        }
        ssize_t got = recv(fd, buf + len, cap - len - 1, 0);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    return buf;
}

static void test_cookie_only_for_event_streams(void **state)
{
    char cookie[8192], location[128];
    snprintf(cookie, sizeof(cookie), "Cookie: theme=dark; sg_token=%s; other=1\r\n", fx_token(tokens, "alice"));
    ask(bearer("alice"), location, sizeof(location));
    wait_done(location, bearer("alice"));
    /* an event stream takes the cookie: the requester's own status stream */
    char headers[9000];
    snprintf(headers, sizeof(headers), "%sAccept: text/event-stream\r\n", cookie);
    sg_test_response_t res;
    http("GET", location, headers, NULL, &res);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "event: done"));
    sg_test_response_free(&res);
    /* a table watch too (it stays open: read its first event) */
    char *stream = read_stream("/tables/profiles/alice", headers, "event: ");
    assert_non_null(strstr(stream, "HTTP/1.1 200"));
    assert_non_null(strstr(stream, "text/event-stream"));
    free(stream);
    /* a watch with a bad token in the cookie: 401 naming it */
    snprintf(headers, sizeof(headers), "Cookie: sg_token=%s\r\nAccept: text/event-stream\r\n", fx_token(tokens, "expired"));
    http("GET", "/tables/profiles/alice", headers, NULL, &res);
    expect_problem(&res, 401, "invalid-token", "field", "Cookie");
    sg_test_response_free(&res);
    /* not an event stream: the cookie is not a credential */
    http("GET", location, cookie, NULL, &res);
    expect_problem(&res, 404, "unknown-request", NULL, NULL);
    sg_test_response_free(&res);
    http("GET", "/tables/profiles/alice", cookie, NULL, &res);
    expect_problem(&res, 401, "missing-credential", NULL, NULL);
    expect_header(&res, "www-authenticate", "Bearer");
    sg_test_response_free(&res);
    int64_t before = count("orders");
    post("/orders", cookie, "{\"id\":\"o-6\"}", &res);
    expect_problem(&res, 401, "missing-credential", NULL, NULL);
    sg_test_response_free(&res);
    /* and never from the query string */
    char path[9000];
    snprintf(path, sizeof(path), "/tables/profiles/alice?access_token=%s", fx_token(tokens, "alice"));
    http("GET", path, "Accept: text/event-stream\r\n", NULL, &res);
    expect_problem(&res, 401, "missing-credential", NULL, NULL);
    sg_test_response_free(&res);
    assert_int_equal(count("orders"), before);
}

static void test_cors_with_credentials(void **state)
{
    sg_test_response_t res;
    http("OPTIONS", "/orders",
         "Origin: http://app.example\r\nAccess-Control-Request-Method: POST\r\n"
         "Access-Control-Request-Headers: authorization, x-api-key, content-type\r\n",
         NULL, &res);
    assert_int_equal(res.status, 204); /* a preflight carries no credential and needs none */
    expect_header(&res, "access-control-allow-origin", "http://app.example");
    expect_header(&res, "access-control-allow-credentials", "true");
    char allowed[512];
    assert_non_null(sg_test_header(&res, "access-control-allow-headers", allowed, sizeof(allowed)));
    assert_non_null(strstr(allowed, "Authorization"));
    assert_non_null(strstr(allowed, "X-API-Key"));
    sg_test_response_free(&res);
    /* built-ins too: a page's fetch of a table with Authorization is preceded by one */
    http("OPTIONS", "/tables/profiles/x",
         "Origin: http://app.example\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization\r\n",
         NULL, &res);
    assert_int_equal(res.status, 204);
    expect_header(&res, "access-control-allow-methods", "GET, HEAD");
    expect_header(&res, "access-control-allow-credentials", "true");
    sg_test_response_free(&res);
    /* a refusal is readable by the page too (exact origin, credentials, the challenge exposed) */
    http("GET", "/tables/profiles/x", "Origin: http://app.example\r\n", NULL, &res);
    assert_int_equal(res.status, 401);
    expect_header(&res, "access-control-allow-origin", "http://app.example");
    expect_header(&res, "access-control-allow-credentials", "true");
    char exposed[512];
    assert_non_null(sg_test_header(&res, "access-control-expose-headers", exposed, sizeof(exposed)));
    assert_non_null(strstr(exposed, "WWW-Authenticate"));
    sg_test_response_free(&res);
    /* another origin gets neither */
    http("GET", "/tables/profiles/x", "Origin: http://evil.example\r\n", NULL, &res);
    char value[128];
    assert_null(sg_test_header(&res, "access-control-allow-origin", value, sizeof(value)));
    assert_null(sg_test_header(&res, "access-control-allow-credentials", value, sizeof(value)));
    sg_test_response_free(&res);
}

/* --- rate limits -------------------------------------------------------------------------------- */

static void test_burst_over_the_limit_is_429(void **state)
{
    sg_test_response_t res;
    int64_t before = count("limited");
    for (int i = 0; i < 2; ++i) { /* burst 2 */
        post("/bursty", NULL, "{}", &res);
        assert_int_equal(res.status, 202);
        expect_header(&res, "ratelimit-policy", "\"bursty\";q=1;w=60");
        sg_test_response_free(&res);
    }
    post("/bursty", NULL, "{}", &res);
    expect_problem(&res, 429, "rate-limited", NULL, NULL);
    char retry[32];
    assert_non_null(sg_test_header(&res, "retry-after", retry, sizeof(retry)));
    assert_true(atoi(retry) >= 1 && atoi(retry) <= 60);
    expect_header(&res, "ratelimit-policy", "\"bursty\";q=1;w=60");
    char state_value[64];
    assert_non_null(sg_test_header(&res, "ratelimit", state_value, sizeof(state_value)));
    assert_int_equal(strncmp(state_value, "\"bursty\";r=0;t=", 15), 0);
    sg_test_response_free(&res);
    assert_int_equal(count("limited"), before + 2);
    /* counted by policy */
    http("GET", "/metrics", "X-API-Key: " METRICS_KEY "\r\n", NULL, &res);
    assert_non_null(strstr(res.body, "streamgate_ratelimit_refusals_total{policy=\"bursty\"} 1\n"));
    assert_non_null(strstr(res.body, "streamgate_auth_refusals_total{cause=\"expired\"} "));
    assert_null(strstr(res.body, "streamgate_auth_refusals_total{cause=\"expired\"} 0\n"));
    assert_non_null(strstr(res.body, "streamgate_auth_refusals_total{cause=\"insufficient-scope\"} "));
    sg_test_response_free(&res);
}

typedef struct {
    int64_t until_ms;
    char headers[8192];
    atomic_long accepted, refused, other;
} hammer_t;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *hammer(void *arg)
{
    hammer_t *h = arg;
    while (mono_ms() < h->until_ms) {
        sg_test_response_t res; /* a new connection each time: the kernel spreads them over both loops */
        if (sg_test_http(&gw, "POST", "/steady", h->headers, "{}", 2, &res) != 0) {
            atomic_fetch_add(&h->other, 1);
            continue;
        }
        atomic_fetch_add(res.status == 202 ? &h->accepted : res.status == 429 ? &h->refused : &h->other, 1);
        sg_test_response_free(&res);
    }
    return NULL;
}

static void test_accepted_rate_stays_at_the_limit(void **state)
{
    static hammer_t h;
    snprintf(h.headers, sizeof(h.headers), "Content-Type: application/json\r\n%s", bearer("dave"));
    h.until_ms = mono_ms() + 10000;
    pthread_t threads[2];
    for (int i = 0; i < 2; ++i)
        assert_int_equal(pthread_create(&threads[i], NULL, hammer, &h), 0);
    for (int i = 0; i < 2; ++i)
        pthread_join(threads[i], NULL);
    long accepted_n = atomic_load(&h.accepted), refused_n = atomic_load(&h.refused);
    print_message("steady: %ld accepted, %ld refused, %ld other in 10 s (limit %d/s, burst %d)\n", accepted_n, refused_n,
                  atomic_load(&h.other), LIMITED_RATE, LIMITED_BURST);
    assert_int_equal(atomic_load(&h.other), 0);
    assert_true(refused_n > accepted_n / 10); /* the limit was actually reached */
    double rate = (double)(accepted_n - LIMITED_BURST) / 10.0;
    assert_true(rate >= LIMITED_RATE * 0.9 && rate <= LIMITED_RATE * 1.1);
}

/* --- key rotation (last: it changes the key set) ------------------------------------------------ */

static void test_jwks_rotation_without_restart(void **state)
{
    sg_test_response_t res;
    post("/orders", bearer("rotated"), "{\"id\":\"o-7\"}", &res);
    expect_refused(&res, "unknown-key-id", "no key in the key set has the token's kid", 0);
    sg_test_response_free(&res);
    write_jwks("jwks.json.new", 1);
    char from[128], to[128];
    assert_int_equal(rename(fx_path(&fx, "jwks.json.new", from, sizeof(from)), fx_path(&fx, "jwks.json", to, sizeof(to))), 0);
    /* the unknown kid asks for a re-read, at most one per jwks_min_refresh (1 s) */
    int status = 0;
    for (int i = 0; i < 100 && status != 202; ++i) {
        usleep(100 * 1000);
        post("/orders", bearer("rotated"), "{\"id\":\"o-7\"}", &res);
        status = res.status;
        if (status != 202)
            expect_refused(&res, "unknown-key-id", "no key in the key set has the token's kid", 0);
        sg_test_response_free(&res);
    }
    assert_int_equal(status, 202);
    /* the keys that were there still work */
    post("/orders", bearer("alice"), "{\"id\":\"o-7\"}", &res);
    assert_int_equal(res.status, 202);
    sg_test_response_free(&res);
}

/* --- gateways of their own ------------------------------------------------------------------------ */

static void test_registry_writes_limited_without_auth(void **state)
{
    sg_test_proc_t plain;
    assert_int_equal(sg_test_gateway_start(&plain, "listen: [\"127.0.0.1:0\"]\nthreads: 2\ndata_dir: @DIR@/data\n"
                                                   "limits: {registry_write_rate: 5/s, registry_write_burst: 10}\n"),
                     0);
    int limited = 0, first_limited = -1;
    int64_t start = mono_ms();
    for (int i = 0; i < 40; ++i) {
        sg_test_response_t res;
        assert_int_equal(sg_test_http(&plain, "POST", "/registry/subjects/flood/versions",
                                      "Content-Type: application/vnd.schemaregistry.v1+json\r\n", "{\"schema\":\"{\"}", 14, &res),
                         0);
        if (res.status == 429) {
            ++limited;
            if (first_limited < 0)
                first_limited = i;
            char value[128];
            assert_non_null(sg_test_header(&res, "retry-after", value, sizeof(value)));
            assert_non_null(sg_test_header(&res, "ratelimit-policy", value, sizeof(value)));
            assert_string_equal(value, "\"registry-writes\";q=5;w=1");
        }
        sg_test_response_free(&res);
    }
    double elapsed_s = (double)(mono_ms() - start) / 1000.0;
    print_message("registry flood: first 429 at request %d, %d of 40 refused in %.1f s\n", first_limited, limited, elapsed_s);
    assert_true(first_limited >= 10); /* the burst passes */
    assert_true(limited > 0);
    assert_true(40 - limited <= 10 + 5 * elapsed_s + 1); /* then 5/s: no more passed than the bucket allows */
    sg_test_response_t res;                              /* reads are not limited */
    for (int i = 0; i < 15; ++i) {
        assert_int_equal(sg_test_http(&plain, "GET", "/registry/subjects", NULL, NULL, 0, &res), 0);
        assert_int_not_equal(res.status, 429);
        sg_test_response_free(&res);
    }
    assert_int_equal(sg_test_proc_stop(&plain), 0);
}

/* A one-document HTTP server on a thread: serves `body` to every GET until stopped. */
typedef struct {
    int fd;
    pthread_t thread;
    atomic_int stop;
    char body[16384];
} jwks_server_t;

static void *serve_jwks(void *arg)
{
    jwks_server_t *server = arg;
    while (!atomic_load(&server->stop)) {
        struct pollfd pfd = {.fd = server->fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int client = accept(server->fd, NULL, NULL);
        if (client < 0)
            continue;
        char request[4096];
        size_t len = 0;
        request[0] = '\0';
        while (len + 1 < sizeof(request) && strstr(request, "\r\n\r\n") == NULL) {
            struct pollfd cfd = {.fd = client, .events = POLLIN};
            ssize_t got = poll(&cfd, 1, 2000) > 0 ? recv(client, request + len, sizeof(request) - len - 1, 0) : -1;
            if (got <= 0)
                break;
            len += (size_t)got;
            request[len] = '\0';
        }
        char head[256];
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                         strlen(server->body));
        (void)!send(client, head, (size_t)n, MSG_NOSIGNAL);
        (void)!send(client, server->body, strlen(server->body), MSG_NOSIGNAL);
        close(client);
    }
    return NULL;
}

static void test_readyz_waits_for_the_jwks_url(void **state)
{
    /* A port nobody listens on yet. */
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sa_len = sizeof(sa);
    assert_int_equal(bind(probe, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(probe, (struct sockaddr *)&sa, &sa_len), 0);
    unsigned port = ntohs(sa.sin_port);
    close(probe);

    char config[1024];
    snprintf(config, sizeof(config),
             "listen: [\"127.0.0.1:0\"]\nthreads: 2\ndata_dir: @DIR@/data\ntopics: [{name: orders}]\n"
             "routes: [{name: o, method: POST, path: /o, topic: orders}]\n"
             "auth: {jwt: {issuer: \"" ISSUER "\", audience: " AUDIENCE ", jwks_url: \"http://127.0.0.1:%u/jwks\", "
             "jwks_min_refresh: 1s, jwks_refresh: 2s, jwks_timeout: 1s}}\n",
             port);
    sg_test_proc_t late;
    assert_int_equal(sg_test_gateway_start_unready(&late, config), 0);
    sg_test_response_t res;
    int status = 0;
    for (int i = 0; i < 100 && status != 503; ++i) { /* Kafka first, then the key set is what is missing */
        assert_int_equal(sg_test_http(&late, "GET", "/readyz", NULL, NULL, 0, &res), 0);
        status = res.status;
        if (status != 503 || strstr(res.body, "key set") == NULL)
            status = 0;
        else
            expect_problem(&res, 503, "not-ready", "detail", "the JWT key set (auth.jwt.jwks_url) has not been loaded yet");
        sg_test_response_free(&res);
        if (status != 503)
            usleep(100 * 1000);
    }
    assert_int_equal(status, 503);
    /* a token meanwhile: 503 keys-unavailable, not a 401 */
    assert_int_equal(sg_test_http(&late, "POST", "/o", "Content-Type: application/json\r\n", "{}", 2, &res), 0);
    expect_problem(&res, 401, "missing-credential", NULL, NULL); /* no credential is still a 401 */
    sg_test_response_free(&res);
    char headers[8192];
    snprintf(headers, sizeof(headers), "Content-Type: application/json\r\n%s", bearer("alice"));
    assert_int_equal(sg_test_http(&late, "POST", "/o", headers, "{}", 2, &res), 0);
    expect_problem(&res, 503, "keys-unavailable", "cause", "keys-unavailable");
    char retry[16];
    assert_non_null(sg_test_header(&res, "retry-after", retry, sizeof(retry)));
    sg_test_response_free(&res);

    /* The server comes up: the gateway gets ready by itself and the token passes. */
    jwks_server_t server = {0};
    char path[128];
    FILE *f = fopen(fx_path(&fx, "jwks.json", path, sizeof(path)), "r");
    assert_non_null(f);
    size_t n = fread(server.body, 1, sizeof(server.body) - 1, f);
    fclose(f);
    server.body[n] = '\0';
    server.fd = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1;
    setsockopt(server.fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    sa.sin_port = htons((uint16_t)port);
    assert_int_equal(bind(server.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(server.fd, 16), 0);
    assert_int_equal(pthread_create(&server.thread, NULL, serve_jwks, &server), 0);
    status = 0;
    for (int i = 0; i < 150 && status != 200; ++i) {
        usleep(100 * 1000);
        assert_int_equal(sg_test_http(&late, "GET", "/readyz", NULL, NULL, 0, &res), 0);
        status = res.status;
        sg_test_response_free(&res);
    }
    assert_int_equal(status, 200);
    assert_int_equal(sg_test_http(&late, "POST", "/o", headers, "{}", 2, &res), 0);
    assert_int_equal(res.status, 202);
    sg_test_response_free(&res);
    atomic_store(&server.stop, 1);
    pthread_join(server.thread, NULL);
    close(server.fd);
    assert_int_equal(sg_test_proc_stop(&late), 0);
}

/* A key set file that cannot be used fails the start (exit 2, naming it); --check refuses a
 * claim: key without an auth section. */
static void test_unusable_key_set_fails_the_start(void **state)
{
    char *config = sg_test_write_temp("c.yaml", "listen: [\"127.0.0.1:0\"]\ndata_dir: @DIR@/data\n"
                                                "auth: {jwt: {issuer: i, audience: a, jwks_file: @DIR@/jwks.json}}\n");
    assert_non_null(config);
    char jwks[512];
    snprintf(jwks, sizeof(jwks), "%.*s/jwks.json", (int)(strrchr(config, '/') - config), config);
    FILE *f = fopen(jwks, "w");
    assert_non_null(f);
    fputs("{\"keys\":[]}", f);
    fclose(f);
    char out[4096];
    const char *run[] = {sg_test_binary(), config, NULL};
    assert_int_equal(sg_test_run(run, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "auth: auth.jwt.jwks_file: no usable key"));
    sg_test_remove_temp(config);

    config = sg_test_write_temp("c.yaml", "topics: [{name: t}]\nroutes: [{name: a, method: POST, path: /a, topic: t, key: "
                                          "\"claim:sub\"}]\n");
    const char *check[] = {sg_test_binary(), "--check", config, NULL};
    assert_int_equal(sg_test_run(check, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "routes[0].key: claim:NAME needs an auth section"));
    sg_test_remove_temp(config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_tokens_and_keys_pass),
        cmocka_unit_test(test_bad_tokens_are_refused_and_produce_nothing),
        cmocka_unit_test(test_missing_scope_is_403_naming_it),
        cmocka_unit_test(test_forged_principal_header_is_not_forwarded),
        cmocka_unit_test(test_me_shows_each_user_only_their_row),
        cmocka_unit_test(test_status_answers_only_its_requester),
        cmocka_unit_test(test_cookie_only_for_event_streams),
        cmocka_unit_test(test_cors_with_credentials),
        cmocka_unit_test(test_burst_over_the_limit_is_429),
        cmocka_unit_test(test_accepted_rate_stays_at_the_limit),
        cmocka_unit_test(test_registry_writes_limited_without_auth),
        cmocka_unit_test(test_readyz_waits_for_the_jwks_url),
        cmocka_unit_test(test_jwks_rotation_without_restart),
        cmocka_unit_test(test_unusable_key_set_fails_the_start),
    };
    return cmocka_run_group_tests_name("integration-auth", tests, setup, teardown);
}
