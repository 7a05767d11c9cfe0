/*
 * Authentication (gateway/auth): JWT verification with keys and tokens made by openssl and PyJWT,
 * every refusal with its cause, the cache, API keys, the credential headers and the
 * WWW-Authenticate text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>

#include "auth_fixture.h"
#include "auth_int.h" /* sg_auth_test_collide */
#include "sg_auth.h"
#include "sg_base.h"
#include "sg_log.h"

#define ISS "https://id.example"
#define AUD "streamgate"
#define IMPORTER_KEY "k-importer-0123456789"
#define IMPORTER_SHA256 "abb651124a4cbc8955fadf4ceab8365a9aa27a2eb193b76790a5644046f90cdf"
#define READER_KEY "k-reader-abcdef"
#define READER_SHA256 "46d12ae95e7832308fd6f89ff6a7a646008ec10fcbc459fb9a68173a598745bb"
#define HMAC_SECRET "an-hmac-secret-of-32-bytes-or-more!"

static fx_t fx;
static json_t *tokens;
static int64_t now_s;
static sg_conf_t *conf;
static sg_auth_t *auth;

static json_t *base_claims(void)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", ISS, "aud", AUD, "sub", "alice", "exp", (json_int_t)(now_s + 3600),
                     "iat", (json_int_t)now_s, "scope", "orders:write tables:read");
}

/* A token spec: alg, key, kid and the base claims with `set` (an object, stolen) merged in. */
static json_t *token_spec(const char *name, const char *alg, const char *key, const char *kid, json_t *set)
{
    json_t *claims = base_claims();
    if (set != NULL) {
        json_object_update(claims, set);
        json_decref(set);
    }
    return fx_token_spec(name, alg, key, kid, claims);
}

static sg_conf_t *load_conf(const char *text)
{
    char err[512];
    sg_conf_t *loaded = sg_conf_load_string("auth.yaml", text, strlen(text), err, sizeof(err));
    if (loaded == NULL)
        fail_msg("config refused: %s", err);
    return loaded;
}

static sg_auth_t *make_auth(sg_conf_t **out_conf, const char *fmt, ...)
{
    char text[2048], err[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    *out_conf = load_conf(text);
    sg_auth_t *made = sg_auth_create(&(*out_conf)->auth, err, sizeof(err));
    if (made == NULL)
        fail_msg("sg_auth_create: %s", err);
    return made;
}

static int setup(void **state)
{
    sg_log_set_level(SG_LOG_ERROR); /* skipped keys are logged as warnings on purpose */
    fx_init(&fx);
    now_s = (int64_t)time(NULL);
    fx_genkey(&fx, "rsa", "rsa2048");
    fx_genkey(&fx, "rsa2", "rsa2048");
    fx_genkey(&fx, "ec", "ec256");
    fx_genkey(&fx, "ec384", "ec384");
    fx_genkey(&fx, "small", "rsa1024");
    char path[128];
    json_t *spec = json_object();
    json_t *keys = json_object();
    static const char *const key_names[] = {"rsa", "rsa2", "ec", "ec384", "small"};
    for (size_t i = 0; i < SG_ARRAY_SIZE(key_names); i++) {
        char file[32];
        snprintf(file, sizeof(file), "%s.pem", key_names[i]);
        json_object_set_new(keys, key_names[i], json_string(fx_path(&fx, file, path, sizeof(path))));
    }
    json_object_set_new(spec, "keys", keys);
    json_t *jwks = json_array();
    json_array_append_new(jwks, json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]}", "out",
                                          fx_path(&fx, "jwks.json", path, sizeof(path)), "keys", "key", "rsa", "kid", "r1", "key",
                                          "ec", "kid", "e1", "key", "ec384", "kid", "e384"));
    json_array_append_new(jwks, json_pack("{s:s, s:[{s:s, s:s}]}", "out", fx_path(&fx, "small.json", path, sizeof(path)), "keys",
                                          "key", "small", "kid", "s1"));
    json_object_set_new(spec, "jwks", jwks);

    json_t *list = json_array();
    json_array_append_new(list, token_spec("rs", "RS256", "rsa", "r1", NULL));
    json_array_append_new(list, token_spec("es", "ES256", "ec", "e1", NULL));
    json_array_append_new(list, token_spec("rs-no-kid", "RS256", "rsa", NULL, NULL));
    json_array_append_new(list, token_spec("aud-array", "RS256", "rsa", "r1", json_pack("{s:[s,s]}", "aud", "other", AUD)));
    json_array_append_new(list, token_spec("scope-array", "ES256", "ec", "e1",
                                           json_pack("{s:s, s:[s,s,s]}", "sub", "bob", "scope", "a", "b:c", "tables:read")));
    json_array_append_new(list, token_spec("no-scope", "RS256", "rsa", "r1", json_pack("{s:n}", "scope")));
    json_t *none = token_spec("none", "none", NULL, NULL, NULL);
    json_array_append_new(list, none);
    json_t *hs_pem = token_spec("hs-rsa-pem", "HS256", NULL, "r1", NULL);
    json_object_set_new(hs_pem, "secret_public_pem", json_string("rsa"));
    json_array_append_new(list, hs_pem);
    json_t *hs = token_spec("hs", "HS256", NULL, NULL, NULL);
    json_object_set_new(hs, "secret", json_string(HMAC_SECRET));
    json_array_append_new(list, hs);
    json_t *hs_wrong = token_spec("hs-wrong", "HS256", NULL, NULL, NULL);
    json_object_set_new(hs_wrong, "secret", json_string("another-secret-of-32-bytes-or-more"));
    json_array_append_new(list, hs_wrong);
    json_array_append_new(
        list, token_spec("expired", "RS256", "rsa", "r1",
                         json_pack("{s:I, s:I}", "exp", (json_int_t)(now_s - 3600), "iat", (json_int_t)(now_s - 7200))));
    json_array_append_new(list,
                          token_spec("nbf-future", "RS256", "rsa", "r1", json_pack("{s:I}", "nbf", (json_int_t)(now_s + 600))));
    json_array_append_new(list,
                          token_spec("nbf-leeway", "RS256", "rsa", "r1", json_pack("{s:I}", "nbf", (json_int_t)(now_s + 20))));
    json_array_append_new(list,
                          token_spec("iat-future", "ES256", "ec", "e1", json_pack("{s:I}", "iat", (json_int_t)(now_s + 600))));
    json_array_append_new(list, token_spec("wrong-iss", "RS256", "rsa", "r1", json_pack("{s:s}", "iss", "https://evil.example")));
    json_array_append_new(list, token_spec("wrong-aud", "ES256", "ec", "e1", json_pack("{s:s}", "aud", "someone-else")));
    json_array_append_new(list, token_spec("wrong-aud-array", "ES256", "ec", "e1", json_pack("{s:[s]}", "aud", "x")));
    json_array_append_new(list, token_spec("unknown-kid", "RS256", "rsa2", "r9", NULL));
    json_array_append_new(list, token_spec("other-key-same-kid", "RS256", "rsa2", "r1", NULL));
    json_t *tampered = json_pack("{s:s, s:s, s:o}", "name", "tampered", "tamper", "rs", "claims", base_claims());
    json_object_set_new(json_object_get(tampered, "claims"), "sub", json_string("mallory"));
    json_array_append_new(list, tampered);
    json_array_append_new(list, token_spec("es-kid-of-rsa", "ES256", "ec", "r1", NULL));
    json_array_append_new(list, token_spec("es-p384-key", "ES256", "ec384", "e384", NULL));
    json_array_append_new(list, token_spec("rs384", "RS384", "rsa", "r1", NULL));
    json_array_append_new(list, token_spec("no-exp", "RS256", "rsa", "r1", json_pack("{s:n}", "exp")));
    json_array_append_new(list, token_spec("no-sub", "RS256", "rsa", "r1", json_pack("{s:I}", "sub", (json_int_t)42)));
    json_array_append_new(list, token_spec("bad-scope", "RS256", "rsa", "r1", json_pack("{s:{}}", "scope")));
    json_t *crit = token_spec("crit", "RS256", "rsa", "r1", NULL);
    json_object_set_new(crit, "header", json_pack("{s:[s], s:b}", "crit", "b64", "b64", 0));
    json_array_append_new(list, crit);
    json_t *typ = token_spec("typ-other", "RS256", "rsa", "r1", NULL);
    json_object_set_new(typ, "header", json_pack("{s:s}", "typ", "dpop+jwt"));
    json_array_append_new(list, typ);
    json_array_append_new(list, token_spec("short", "ES256", "ec", "e1", json_pack("{s:I}", "exp", (json_int_t)(now_s + 60))));
    json_object_set_new(spec, "tokens", list);
    tokens = fx_mint(&fx, spec);
    json_decref(spec);
    /* The tests take all three keys to be in the set: a skipped one (logged as a warning, which
     * is not shown) would surface only as refusals with the wrong cause. */
    json_t *set = json_load_file(fx_path(&fx, "jwks.json", path, sizeof(path)), 0, NULL);
    char *text = json_dumps(set, 0), err[256] = "";
    sg_keyset_t *keyset = text != NULL ? sg_keyset_parse(text, strlen(text), err, sizeof(err)) : NULL;
    if (keyset == NULL || keyset->n_keys != 3)
        fail_msg("the key set in %s has %zu usable keys of 3%s%s", path, keyset != NULL ? keyset->n_keys : 0,
                 err[0] != '\0' ? ": " : "", err);
    sg_keyset_release(keyset);
    free(text);
    json_decref(set);

    auth = make_auth(&conf,
                     "auth:\n"
                     "  jwt: {issuer: \"" ISS "\", audience: " AUD ", jwks_file: \"%s/jwks.json\"}\n"
                     "  api_keys:\n"
                     "    - {name: importer, sha256: " IMPORTER_SHA256 ", scopes: [\"orders:write\"]}\n"
                     "    - {name: reader, sha256: \"" READER_SHA256 "\"}\n",
                     fx.dir);
    return 0;
}

static int teardown(void **state)
{
    sg_auth_destroy(auth);
    sg_conf_destroy(conf);
    json_decref(tokens);
    fx_cleanup(&fx);
    return 0;
}

/* Verifies token `name` now and checks the cause (and, refused, that there is a detail). */
static sg_principal_t *expect_cause_at(sg_auth_t *verifier, const char *token, sg_auth_cause_t cause, int line)
{
    sg_principal_t *principal = (sg_principal_t *)1;
    sg_auth_error_t error = {0};
    sg_auth_cause_t got = sg_auth_verify_token(verifier, token, strlen(token), sg_now_ms(), &principal, &error);
    if (got != cause)
        fail_msg("line %d: expected %s, got %s (%s)", line, sg_auth_cause_name(cause), sg_auth_cause_name(got), error.detail);
    if (cause != SG_AUTH_OK) {
        if (principal != NULL || error.cause != cause || error.detail[0] == '\0')
            fail_msg("line %d: a refusal needs no principal, its cause and a detail", line);
        if (strlen(token) > 20 && strstr(error.detail, token) != NULL)
            fail_msg("line %d: the detail quotes the token", line);
        return NULL;
    }
    assert_non_null(principal);
    return principal;
}
#define expect_cause(verifier, token, cause) expect_cause_at((verifier), (token), (cause), __LINE__)
#define expect_named(verifier, name, cause) expect_cause_at((verifier), fx_token(tokens, (name)), (cause), __LINE__)

/* ------------------------------------------------------------------------------------------ */

static void test_valid_tokens(void **state)
{
    sg_principal_t *principal = expect_named(auth, "rs", SG_AUTH_OK);
    assert_string_equal(sg_principal_name(principal), "alice");
    assert_false(sg_principal_is_api_key(principal));
    assert_true(sg_principal_has_scope(principal, "orders:write"));
    assert_true(sg_principal_has_scope(principal, "tables:read"));
    assert_false(sg_principal_has_scope(principal, "orders"));
    assert_int_equal(sg_principal_expires_ms(principal), (now_s + 3600) * 1000);
    assert_string_equal(sg_principal_claim(principal, "iss"), ISS);
    assert_string_equal(sg_principal_claim(principal, "sub"), "alice");
    assert_null(sg_principal_claim(principal, "exp")); /* not a string */
    assert_null(sg_principal_claim(principal, "nope"));
    sg_principal_release(principal);

    principal = expect_named(auth, "es", SG_AUTH_OK);
    assert_string_equal(sg_principal_name(principal), "alice");
    sg_principal_release(principal);

    /* Without a kid a token may use the only key that fits its algorithm. */
    sg_principal_release(expect_named(auth, "rs-no-kid", SG_AUTH_OK));
    sg_principal_release(expect_named(auth, "aud-array", SG_AUTH_OK));
    /* nbf 20 s ahead is within the 30 s leeway. */
    sg_principal_release(expect_named(auth, "nbf-leeway", SG_AUTH_OK));
}

static void test_refusals(void **state)
{
    static const struct {
        const char *token;
        sg_auth_cause_t cause;
    } cases[] = {
        {"none", SG_AUTH_ALGORITHM_NOT_ALLOWED},
        {"hs-rsa-pem", SG_AUTH_ALGORITHM_NOT_ALLOWED}, /* HS256 is not allowed without hmac_secret */
        {"hs", SG_AUTH_ALGORITHM_NOT_ALLOWED},
        {"rs384", SG_AUTH_ALGORITHM_NOT_ALLOWED},
        {"es-kid-of-rsa", SG_AUTH_ALGORITHM_NOT_ALLOWED}, /* r1 is an RSA key */
        {"es-p384-key", SG_AUTH_ALGORITHM_NOT_ALLOWED},   /* e384 is on P-384, ES256 needs P-256 */
        {"expired", SG_AUTH_EXPIRED},
        {"nbf-future", SG_AUTH_NOT_YET_VALID},
        {"iat-future", SG_AUTH_NOT_YET_VALID},
        {"wrong-iss", SG_AUTH_WRONG_ISSUER},
        {"wrong-aud", SG_AUTH_WRONG_AUDIENCE},
        {"wrong-aud-array", SG_AUTH_WRONG_AUDIENCE},
        {"unknown-kid", SG_AUTH_UNKNOWN_KEY_ID},
        {"other-key-same-kid", SG_AUTH_BAD_SIGNATURE},
        {"tampered", SG_AUTH_BAD_SIGNATURE},
        {"no-exp", SG_AUTH_MALFORMED},
        {"no-sub", SG_AUTH_MALFORMED},
        {"bad-scope", SG_AUTH_MALFORMED},
        {"crit", SG_AUTH_MALFORMED},
        {"typ-other", SG_AUTH_MALFORMED},
    };
    for (size_t i = 0; i < SG_ARRAY_SIZE(cases); i++) {
        sg_auth_error_t error = {0};
        sg_principal_t *principal = NULL;
        const char *token = fx_token(tokens, cases[i].token);
        sg_auth_cause_t got = sg_auth_verify_token(auth, token, strlen(token), sg_now_ms(), &principal, &error);
        if (got != cases[i].cause || principal != NULL || error.cause != got || error.detail[0] == '\0')
            fail_msg("%s: expected %s, got %s (%s)", cases[i].token, sg_auth_cause_name(cases[i].cause), sg_auth_cause_name(got),
                     error.detail);
    }
    /* A few details, as a client will read them. */
    sg_auth_error_t error;
    sg_principal_t *principal;
    const char *token = fx_token(tokens, "none");
    sg_auth_verify_token(auth, token, strlen(token), sg_now_ms(), &principal, &error);
    assert_string_equal(error.detail, "unsigned tokens (alg none) are never accepted");
    token = fx_token(tokens, "hs-rsa-pem");
    sg_auth_verify_token(auth, token, strlen(token), sg_now_ms(), &principal, &error);
    assert_string_equal(error.detail, "HS256 is not an allowed algorithm");
    token = fx_token(tokens, "wrong-aud");
    sg_auth_verify_token(auth, token, strlen(token), sg_now_ms(), &principal, &error);
    assert_string_equal(error.detail, "the token's audience (aud) does not include streamgate");
    token = fx_token(tokens, "expired");
    sg_auth_verify_token(auth, token, strlen(token), sg_now_ms(), &principal, &error);
    assert_non_null(strstr(error.detail, "the token expired 3"));
}

static void test_malformed_and_oversized(void **state)
{
    static const char *const malformed[] = {
        "abc",
        "a.b",
        "a.b.c.d",
        ".eyJ9.c",
        "eyJhbGciOiJSUzI1NiJ9..c",
        "eyJhbGciOiJSUzI1NiJ9.e30.a!c",
        "bm90IGpzb24.e30.abcd",                          /* header "not json" */
        "WzFd.e30.abcd",                                 /* header [1] */
        "eyJhbGciOiJSUzI1NiJ9=.e30.abcd",                /* padding is not base64url */
        "eyJ0eXAiOiJKV1QifQ.e30.abcd",                   /* no alg */
        "eyJhbGciOiJSUzI1NiIsImFsZyI6Im5vbmUifQ.e30.ab", /* alg twice */
    };
    for (size_t i = 0; i < SG_ARRAY_SIZE(malformed); i++)
        expect_cause(auth, malformed[i], SG_AUTH_MALFORMED);
    sg_principal_t *principal;
    sg_auth_error_t error;
    assert_int_equal(sg_auth_verify_token(auth, "", 0, sg_now_ms(), &principal, &error), SG_AUTH_MALFORMED);

    char *big = sg_malloc(SG_AUTH_MAX_TOKEN + 2);
    memset(big, 'a', SG_AUTH_MAX_TOKEN + 1);
    big[SG_AUTH_MAX_TOKEN + 1] = '\0';
    expect_cause(auth, big, SG_AUTH_TOO_LARGE);
    free(big);

    /* A signature of the wrong length is refused before cjose sees it (cjose would read past a
     * short HMAC and split any ECDSA signature in half). */
    char *cut = sg_strdup(fx_token(tokens, "es"));
    cut[strlen(cut) - 4] = '\0';
    expect_cause(auth, cut, SG_AUTH_BAD_SIGNATURE);
    free(cut);
    /* Same for an unsigned token dressed up with RS256. */
    char forged[256];
    const char *rs = fx_token(tokens, "rs");
    snprintf(forged, sizeof(forged), "%.*s.", (int)(strrchr(rs, '.') - rs), rs);
    expect_cause(auth, forged, SG_AUTH_BAD_SIGNATURE);
}

static void test_scopes(void **state)
{
    sg_principal_t *principal = expect_named(auth, "scope-array", SG_AUTH_OK);
    assert_string_equal(sg_principal_name(principal), "bob");
    assert_true(sg_principal_has_scope(principal, "a"));
    assert_true(sg_principal_has_scope(principal, "b:c"));
    assert_true(sg_principal_has_scope(principal, "tables:read"));
    assert_false(sg_principal_has_scope(principal, "orders:write"));
    char *required[] = {"a", "tables:read", "orders:write"};
    assert_string_equal(sg_principal_missing_scope(principal, required, 3), "orders:write");
    assert_null(sg_principal_missing_scope(principal, required, 2));
    sg_principal_release(principal);

    principal = expect_named(auth, "rs", SG_AUTH_OK); /* "orders:write tables:read" */
    assert_null(sg_principal_missing_scope(principal, required + 1, 2));
    assert_string_equal(sg_principal_missing_scope(principal, required, 1), "a");
    sg_principal_release(principal);

    principal = expect_named(auth, "no-scope", SG_AUTH_OK);
    assert_false(sg_principal_has_scope(principal, "orders:write"));
    assert_null(sg_principal_missing_scope(principal, required, 0));
    sg_principal_release(principal);
}

static void test_cache(void **state)
{
    sg_conf_t *own_conf;
    sg_auth_t *verifier = make_auth(&own_conf,
                                    "auth:\n  jwt: {issuer: \"" ISS "\", audience: " AUD ", leeway: 5s, "
                                    "jwks_file: \"%s/jwks.json\"}\n",
                                    fx.dir);
    const char *token = fx_token(tokens, "short"); /* exp = now + 60 s */
    sg_auth_stats_t stats;
    sg_principal_t *first, *second, *third;
    sg_auth_error_t error;
    int64_t now_ms = sg_now_ms();
    assert_int_equal(sg_auth_verify_token(verifier, token, strlen(token), now_ms, &first, &error), SG_AUTH_OK);
    assert_int_equal(sg_auth_verify_token(verifier, token, strlen(token), now_ms + 1000, &second, &error), SG_AUTH_OK);
    assert_ptr_equal(first, second); /* the same principal, from the cache */
    sg_auth_stats(verifier, &stats);
    assert_int_equal(stats.verified, 1);
    assert_int_equal(stats.cache_hits, 1);

    /* Still cached within the leeway after exp, gone after it - with the token. */
    int64_t exp_ms = (now_s + 60) * 1000;
    assert_int_equal(sg_auth_verify_token(verifier, token, strlen(token), exp_ms + 4000, &third, &error), SG_AUTH_OK);
    assert_ptr_equal(third, first);
    sg_principal_release(third);
    assert_int_equal(sg_auth_verify_token(verifier, token, strlen(token), exp_ms + 5000, &third, &error), SG_AUTH_EXPIRED);
    assert_null(third);
    assert_int_equal(error.cause, SG_AUTH_EXPIRED);
    /* Once dropped the token is verified again, and is still expired at that time. */
    assert_int_equal(sg_auth_verify_token(verifier, token, strlen(token), exp_ms + 6000, &third, &error), SG_AUTH_EXPIRED);
    /* Principals already handed out stay usable after the cache let go of them. */
    assert_string_equal(sg_principal_name(first), "alice");
    sg_principal_release(first);
    sg_principal_release(second);

    /* Dropped once expired: a later (earlier-clocked) call verifies the token again. */
    sg_principal_t *fresh;
    assert_int_equal(sg_auth_verify_token(verifier, token, strlen(token), now_ms, &fresh, &error), SG_AUTH_OK);
    sg_auth_stats(verifier, &stats);
    assert_int_equal(stats.verified, 2);
    sg_principal_release(fresh);
    sg_auth_destroy(verifier);
    sg_conf_destroy(own_conf);
}

/* A copy of `token` with one character of its signature changed (to another base64url
 * character, away from the last one, whose low bits may not count). Returns owned. */
static char *with_signature_byte_changed(const char *token)
{
    char *copy = sg_strdup(token);
    char *at = copy + strlen(copy) - 10;
    assert_true(at > strrchr(copy, '.'));
    *at = *at == 'A' ? 'B' : 'A';
    return copy;
}

static void test_cache_compares_tokens(void **state)
{
    /* A hit is a token equal to the cached one, byte for byte: one character of the signature
     * changed after the token was verified and cached is another token, checked and refused. */
    sg_principal_release(expect_named(auth, "rs", SG_AUTH_OK));
    sg_principal_release(expect_named(auth, "rs", SG_AUTH_OK));
    char *forged = with_signature_byte_changed(fx_token(tokens, "rs"));
    expect_cause(auth, forged, SG_AUTH_BAD_SIGNATURE);
    free(forged);

    /* The same where the cache's hash cannot tell tokens apart: every token lands on the same
     * entry hash of the same shard, as two tokens whose keyed hashes collide would. */
    sg_conf_t *own_conf;
    sg_auth_t *verifier =
        make_auth(&own_conf, "auth:\n  jwt: {issuer: \"" ISS "\", audience: " AUD ", jwks_file: \"%s/jwks.json\"}\n", fx.dir);
    sg_auth_test_collide(verifier);
    sg_principal_t *alice = expect_named(verifier, "rs", SG_AUTH_OK);
    sg_principal_t *bob = expect_named(verifier, "scope-array", SG_AUTH_OK);
    assert_string_equal(sg_principal_name(alice), "alice");
    assert_string_equal(sg_principal_name(bob), "bob");
    sg_auth_stats_t stats;
    sg_auth_stats(verifier, &stats);
    assert_int_equal(stats.verified, 2); /* bob's token was not taken for alice's */
    assert_int_equal(stats.cache_hits, 0);
    for (int round = 0; round < 2; round++) {
        sg_principal_t *again = expect_named(verifier, "rs", SG_AUTH_OK);
        assert_ptr_equal(again, alice);
        sg_principal_release(again);
        again = expect_named(verifier, "scope-array", SG_AUTH_OK);
        assert_ptr_equal(again, bob);
        sg_principal_release(again);
    }
    sg_auth_stats(verifier, &stats);
    assert_int_equal(stats.verified, 2);
    assert_int_equal(stats.cache_hits, 4);
    /* Same hash, same length, one byte apart from a cached token: verified, and refused. */
    forged = with_signature_byte_changed(fx_token(tokens, "rs"));
    expect_cause(verifier, forged, SG_AUTH_BAD_SIGNATURE);
    /* A prefix of a cached token is not that token either. */
    const char *rs = fx_token(tokens, "rs");
    sg_principal_t *principal = NULL;
    sg_auth_error_t error;
    assert_int_not_equal(sg_auth_verify_token(verifier, rs, strlen(rs) - 1, sg_now_ms(), &principal, &error), SG_AUTH_OK);
    assert_null(principal);
    sg_auth_stats(verifier, &stats);
    assert_int_equal(stats.verified, 2);
    assert_int_equal(stats.cache_hits, 4);
    free(forged);
    sg_principal_release(alice);
    sg_principal_release(bob);
    sg_auth_destroy(verifier);
    sg_conf_destroy(own_conf);
}

static void test_cache_bounded(void **state)
{
    /* Twice as many distinct tokens as the cache holds: the first is pushed out, nothing grows. */
    enum { N = 2 * SG_AUTH_CACHE_ENTRIES };
    json_t *list = json_array();
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "t%d", i);
        json_t *spec = token_spec(name, "HS256", NULL, NULL, json_pack("{s:i}", "jti", i));
        json_object_set_new(spec, "secret", json_string(HMAC_SECRET));
        json_array_append_new(list, spec);
    }
    json_t *spec = json_pack("{s:o}", "tokens", list);
    json_t *many = fx_mint(&fx, spec);
    json_decref(spec);
    sg_conf_t *own_conf;
    sg_auth_t *verifier = make_auth(&own_conf, "auth:\n  jwt: {issuer: \"" ISS "\", audience: " AUD
                                               ", algorithms: [HS256], hmac_secret: \"" HMAC_SECRET "\"}\n");
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "t%d", i);
        sg_principal_release(expect_cause(verifier, fx_token(many, name), SG_AUTH_OK));
    }
    sg_auth_stats_t stats;
    sg_auth_stats(verifier, &stats);
    assert_int_equal(stats.verified, N);
    sg_principal_release(expect_cause(verifier, fx_token(many, "t0"), SG_AUTH_OK));
    sg_principal_release(expect_cause(verifier, fx_token(many, "t0"), SG_AUTH_OK));
    sg_auth_stats(verifier, &stats);
    assert_int_equal(stats.verified, N + 1); /* t0 had been evicted, then it is cached again */
    assert_int_equal(stats.cache_hits, 1);
    sg_auth_destroy(verifier);
    sg_conf_destroy(own_conf);
    json_decref(many);
}

static void test_api_keys(void **state)
{
    sg_principal_t *principal;
    sg_auth_error_t error;
    assert_int_equal(sg_auth_verify_api_key(auth, IMPORTER_KEY, strlen(IMPORTER_KEY), &principal, &error), SG_AUTH_OK);
    assert_string_equal(sg_principal_name(principal), "importer");
    assert_true(sg_principal_is_api_key(principal));
    assert_true(sg_principal_has_scope(principal, "orders:write"));
    assert_false(sg_principal_has_scope(principal, "tables:read"));
    assert_string_equal(sg_principal_claim(principal, "sub"), "importer");
    assert_int_equal(sg_principal_expires_ms(principal), 0);
    sg_principal_release(principal);
    assert_int_equal(sg_auth_verify_api_key(auth, READER_KEY, strlen(READER_KEY), &principal, &error), SG_AUTH_OK);
    assert_string_equal(sg_principal_name(principal), "reader");
    assert_false(sg_principal_has_scope(principal, "orders:write"));
    sg_principal_release(principal);

    /* Wrong, unknown, a prefix, a hash instead of the key: all unknown. */
    static const char *const wrong[] = {"k-importer-0123456788", "k-importer-012345678", "nope", IMPORTER_SHA256};
    for (size_t i = 0; i < SG_ARRAY_SIZE(wrong); i++) {
        assert_int_equal(sg_auth_verify_api_key(auth, wrong[i], strlen(wrong[i]), &principal, &error), SG_AUTH_UNKNOWN_API_KEY);
        assert_null(principal);
        assert_string_equal(error.detail, "the API key is not known");
    }
    assert_int_equal(sg_auth_verify_api_key(auth, "", 0, &principal, &error), SG_AUTH_MALFORMED);
    char big[SG_AUTH_MAX_API_KEY + 2];
    memset(big, 'k', sizeof(big));
    assert_int_equal(sg_auth_verify_api_key(auth, big, sizeof(big), &principal, &error), SG_AUTH_TOO_LARGE);
}

static void test_authenticate(void **state)
{
    sg_principal_t *principal;
    sg_auth_error_t error;
    char header[4096];
    snprintf(header, sizeof(header), "Bearer %s", fx_token(tokens, "es"));
    sg_auth_credentials_t bearer = {.authorization = header, .authorization_len = strlen(header)};
    assert_int_equal(sg_auth_authenticate(auth, &bearer, sg_now_ms(), &principal, &error), SG_AUTH_OK);
    assert_string_equal(sg_principal_name(principal), "alice");
    sg_principal_release(principal);

    sg_auth_credentials_t key = {.api_key = IMPORTER_KEY, .api_key_len = strlen(IMPORTER_KEY)};
    assert_int_equal(sg_auth_authenticate(auth, &key, sg_now_ms(), &principal, &error), SG_AUTH_OK);
    assert_string_equal(sg_principal_name(principal), "importer");
    sg_principal_release(principal);

    sg_auth_credentials_t both = bearer;
    both.api_key = IMPORTER_KEY;
    both.api_key_len = strlen(IMPORTER_KEY);
    assert_int_equal(sg_auth_authenticate(auth, &both, sg_now_ms(), &principal, &error), SG_AUTH_MALFORMED);
    assert_null(principal);

    sg_auth_credentials_t basic = {.authorization = "Basic YTpi", .authorization_len = 10};
    assert_int_equal(sg_auth_authenticate(auth, &basic, sg_now_ms(), &principal, &error), SG_AUTH_UNSUPPORTED_CREDENTIAL);
    sg_auth_credentials_t empty_bearer = {.authorization = "Bearer ", .authorization_len = 7};
    assert_int_equal(sg_auth_authenticate(auth, &empty_bearer, sg_now_ms(), &principal, &error), SG_AUTH_MALFORMED);
    /* A token68 is checked when the token is not in the cache: the cached one (verified above),
     * with a byte that is not token68 where it ends, is not the cached token. */
    char spaced[4096];
    snprintf(spaced, sizeof(spaced), "Bearer %s ;", fx_token(tokens, "es"));
    sg_auth_credentials_t bad_char = {.authorization = spaced, .authorization_len = strlen(spaced)};
    assert_int_equal(sg_auth_authenticate(auth, &bad_char, sg_now_ms(), &principal, &error), SG_AUTH_MALFORMED);
    assert_string_equal(error.detail, "the Bearer token is missing or has invalid characters");
    assert_int_equal(sg_auth_authenticate(auth, &bearer, sg_now_ms(), &principal, &error), SG_AUTH_OK); /* still cached */
    sg_principal_release(principal);

    /* Event streams: the token may come in the sg_token cookie - only when the caller passes it. */
    char cookie[4096];
    snprintf(cookie, sizeof(cookie), "theme=dark; sg_token=%s; other=1", fx_token(tokens, "rs"));
    sg_auth_credentials_t with_cookie = {.cookie = cookie, .cookie_len = strlen(cookie)};
    assert_int_equal(sg_auth_authenticate(auth, &with_cookie, sg_now_ms(), &principal, &error), SG_AUTH_OK);
    sg_principal_release(principal);
    sg_auth_credentials_t other_cookie = {.cookie = "theme=dark", .cookie_len = 10};
    assert_int_equal(sg_auth_authenticate(auth, &other_cookie, sg_now_ms(), &principal, &error), SG_AUTH_MISSING_CREDENTIAL);
    sg_auth_credentials_t nothing = {0};
    assert_int_equal(sg_auth_authenticate(auth, &nothing, sg_now_ms(), &principal, &error), SG_AUTH_MISSING_CREDENTIAL);
    assert_int_equal(error.cause, SG_AUTH_MISSING_CREDENTIAL);
    assert_string_equal(error.detail, "this endpoint needs a credential: Authorization: Bearer TOKEN or X-API-Key");
}

static void test_hmac(void **state)
{
    sg_conf_t *own_conf;
    sg_auth_t *verifier = make_auth(&own_conf,
                                    "auth:\n  jwt: {issuer: \"" ISS "\", audience: " AUD ", jwks_file: \"%s/jwks.json\", "
                                    "algorithms: [RS256, HS256], hmac_secret: \"" HMAC_SECRET "\"}\n",
                                    fx.dir);
    sg_principal_release(expect_named(verifier, "hs", SG_AUTH_OK));
    sg_principal_release(expect_named(verifier, "rs", SG_AUTH_OK));
    expect_named(verifier, "hs-wrong", SG_AUTH_BAD_SIGNATURE);
    /* The RSA public key (PEM) as the HMAC secret: HS256 only ever uses hmac_secret. */
    expect_named(verifier, "hs-rsa-pem", SG_AUTH_BAD_SIGNATURE);
    expect_named(verifier, "es", SG_AUTH_ALGORITHM_NOT_ALLOWED);
    /* A short HMAC is refused by length (cjose would compare past its end). */
    char *cut = sg_strdup(fx_token(tokens, "hs"));
    cut[strlen(cut) - 8] = '\0';
    expect_cause(verifier, cut, SG_AUTH_BAD_SIGNATURE);
    free(cut);
    sg_auth_destroy(verifier);
    sg_conf_destroy(own_conf);

    /* HMAC only: no key set at all. */
    verifier = make_auth(&own_conf, "auth:\n  jwt: {issuer: \"" ISS "\", audience: " AUD
                                    ", algorithms: [HS256], hmac_secret: \"" HMAC_SECRET "\"}\n");
    assert_true(sg_auth_keys_ready(verifier));
    sg_principal_release(expect_named(verifier, "hs", SG_AUTH_OK));
    expect_named(verifier, "rs", SG_AUTH_ALGORITHM_NOT_ALLOWED);
    sg_auth_destroy(verifier);
    sg_conf_destroy(own_conf);

    /* API keys only: bearer tokens are another kind of credential. */
    verifier = make_auth(&own_conf, "auth: {api_keys: [{name: k, sha256: " IMPORTER_SHA256 "}]}\n");
    expect_named(verifier, "rs", SG_AUTH_UNSUPPORTED_CREDENTIAL);
    sg_auth_destroy(verifier);
    sg_conf_destroy(own_conf);
}

/* The warnings logged while a test captures them (capture_warnings). */
static char warnings[2048];

static void capture_sink(void *ctx, sg_log_level_t level, const char *message, size_t len)
{
    (void)ctx;
    size_t used = strlen(warnings);
    if (level == SG_LOG_WARN && used + len + 2 < sizeof(warnings))
        snprintf(warnings + used, sizeof(warnings) - used, "%.*s\n", (int)len, message);
}

/* Captures the warnings (on) into `warnings`, or logs errors only again (off). */
static void capture_warnings(bool on)
{
    warnings[0] = '\0';
    sg_log_set_sink(on ? capture_sink : NULL, NULL);
    sg_log_set_level(on ? SG_LOG_WARN : SG_LOG_ERROR);
}

static void test_key_set_errors(void **state)
{
    char err[512], text[1024];
    /* A set whose only key is RSA-1024: nothing usable, so the start fails naming the file. */
    snprintf(text, sizeof(text), "auth:\n  jwt: {issuer: i, audience: a, jwks_file: \"%s/small.json\"}\n", fx.dir);
    sg_conf_t *own_conf = load_conf(text);
    assert_null(sg_auth_create(&own_conf->auth, err, sizeof(err)));
    assert_string_equal(err, "auth.jwt.jwks_file: no usable key (RSA of 2048 bits or more, or EC P-256/384/521, for signatures)");
    sg_conf_destroy(own_conf);

    snprintf(text, sizeof(text), "auth:\n  jwt: {issuer: i, audience: a, jwks_file: \"%s/missing.json\"}\n", fx.dir);
    own_conf = load_conf(text);
    assert_null(sg_auth_create(&own_conf->auth, err, sizeof(err)));
    char expected[512];
    snprintf(expected, sizeof(expected), "auth.jwt.jwks_file: cannot open %s/missing.json: No such file or directory", fx.dir);
    assert_string_equal(err, expected);
    sg_conf_destroy(own_conf);

    static const char *const bad_sets[] = {
        "not json",
        "{\"keys\": 3}",
        "{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}", /* never a source of HMAC secrets */
        "{\"keys\": [{\"kty\": \"RSA\", \"n\": \"AQAB\", \"e\": \"AQAB\"}]}",
        "{\"keys\": [], \"keys\": []}",
    };
    static const char *const reasons[] = {
        "auth.jwt.jwks_file: not JSON: ",
        "auth.jwt.jwks_file: not a JWK Set: no \"keys\" array",
        "auth.jwt.jwks_file: no usable key",
        "auth.jwt.jwks_file: no usable key",
        "auth.jwt.jwks_file: not JSON: duplicate object key",
    };
    for (size_t i = 0; i < SG_ARRAY_SIZE(bad_sets); i++) {
        fx_write(&fx, "bad.json", bad_sets[i]);
        snprintf(text, sizeof(text), "auth:\n  jwt: {issuer: i, audience: a, jwks_file: \"%s/bad.json\"}\n", fx.dir);
        own_conf = load_conf(text);
        assert_null(sg_auth_create(&own_conf->auth, err, sizeof(err)));
        if (strncmp(err, reasons[i], strlen(reasons[i])) != 0)
            fail_msg("set %zu: got %s", i, err);
        sg_conf_destroy(own_conf);
    }

    /* An EC coordinate not at its curve's size (a dropped leading zero byte, or one too many): the
     * key is skipped, and the log says which coordinate, not cjose's bare "invalid argument". */
    static const struct {
        const char *jwk, *said;
    } short_keys[] = {
        {"{\"kty\": \"EC\", \"kid\": \"short-x\", \"crv\": \"P-256\", \"x\": \"vUh7WmMIq4hqE2LTfi_Ef7IP71M3VZ3WOy1yNjjCdu\",\n"
         " \"y\": \"ADysf02iwzw__CdWNPXOSDEbK-f-2FjtSD_w6fRP3jg\"}",
         "key 0 (kid short-x) is skipped: its x has 42 base64url characters (31 bytes), P-256 needs 43 (32 bytes"},
        {"{\"kty\": \"EC\", \"kid\": \"short-y\", \"crv\": \"P-384\",\n"
         " \"x\": \"AH34janIWv0GLUX_s-sZ-v4_6LnSOLBRUVGi_kIOIXD2t_YoQO3md-uvZdTBA10P\",\n"
         " \"y\": \"uDXmuG8M39tufcz7pb6haa-OZ8Ycgau9NsEctsBXYoJgVLtk_LT4mXsJfKPqrrJ\"}",
         "key 0 (kid short-y) is skipped: its y has 63 base64url characters (47 bytes), P-384 needs 64 (48 bytes"},
        {"{\"kty\": \"EC\", \"kid\": \"long-x\", \"crv\": \"P-521\",\n"
         " \"x\": \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\n"
         " \"y\": \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
         "key 0 (kid long-x) is skipped: its x has 92 base64url characters (69 bytes), P-521 needs 88 (66 bytes"},
    };
    for (size_t i = 0; i < SG_ARRAY_SIZE(short_keys); i++) {
        snprintf(text, sizeof(text), "{\"keys\": [%s]}", short_keys[i].jwk);
        fx_write(&fx, "short.json", text);
        snprintf(text, sizeof(text), "auth:\n  jwt: {issuer: i, audience: a, jwks_file: \"%s/short.json\"}\n", fx.dir);
        own_conf = load_conf(text);
        capture_warnings(true);
        assert_null(sg_auth_create(&own_conf->auth, err, sizeof(err)));
        const char *said = strstr(warnings, short_keys[i].said);
        char seen[sizeof(warnings)];
        snprintf(seen, sizeof(seen), "%s", warnings);
        capture_warnings(false);
        if (said == NULL)
            fail_msg("key %zu: warnings: %s", i, seen);
        assert_non_null(strstr(err, "no usable key"));
        sg_conf_destroy(own_conf);
    }
}

/* EC keys whose public coordinate starts with a zero byte, as one EC key in 128 has (x on the
 * P-384 key, y on the P-256 one): fixed here, since a fresh key has one so rarely. Generated
 * (Python cryptography) until one turned up; for these tests only. */
static const char ZERO_X_P384[] = "-----BEGIN PRIVATE KEY-----\n"
                                  "MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDB15fQJeIKSHiKFi/T8\n"
                                  "cHOqhLmyjCPXaICINg/wTXFs6VlagZ7hm8+OTd98jA7WppShZANiAAQAffiNqcha\n"
                                  "/QYtRf+z6xn6/j/oudI4sFFRUaL+Qg4hcPa39ihA7eZ3669l1MEDXQ+4Nea4bwzf\n"
                                  "2259zPulvqFpr45nxhyBo902wRy2wFdigmBUu2T8tPiZewl8o+quskU=\n"
                                  "-----END PRIVATE KEY-----\n";
static const char ZERO_Y_P256[] = "-----BEGIN PRIVATE KEY-----\n"
                                  "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3qcwdycS9DTx+LmZ\n"
                                  "VVQK3XDQsmvgPQ41dl98Pej+CsehRANCAAS9SHtaYwiriGoTYtN+L8R/sg/vUzdV\n"
                                  "ndY7LXI2OMJ27gA8rH9NosM8P/wnVjT1zkgxGyvn/thY7Ug/8On0T944\n"
                                  "-----END PRIVATE KEY-----\n";

static void test_coordinates_with_leading_zeros(void **state)
{
    /* RFC 7518 6.2.1.2 spells such a coordinate in full, its zero included. When the key set
     * dropped it (auth_tokens.py through PyJWT 2.6) the key was skipped, and the tests that
     * rely on a key of that curve failed once in 128 runs, as unknown-key-id. */
    char zx[128], zy[128], rsa[128], out[128];
    fx_write(&fx, "zero-x.pem", ZERO_X_P384);
    fx_write(&fx, "zero-y.pem", ZERO_Y_P256);
    json_t *spec = json_pack("{s:{s:s, s:s, s:s}, s:[{s:s, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}]}], s:[o, o]}", "keys", "zx",
                             fx_path(&fx, "zero-x.pem", zx, sizeof(zx)), "zy", fx_path(&fx, "zero-y.pem", zy, sizeof(zy)), "rsa",
                             fx_path(&fx, "rsa.pem", rsa, sizeof(rsa)), "jwks", "out", fx_path(&fx, "zeros.json", out, sizeof(out)),
                             "keys", "key", "zx", "kid", "zx", "key", "zy", "kid", "zy", "key", "rsa", "kid", "r1", "tokens",
                             token_spec("zx", "ES384", "zx", "zx", NULL), token_spec("zy", "ES256", "zy", "zy", NULL));
    json_t *minted = fx_mint(&fx, spec);
    json_decref(spec);
    sg_conf_t *own_conf;
    sg_auth_t *verifier = make_auth(&own_conf,
                                    "auth:\n  jwt: {issuer: \"" ISS "\", audience: " AUD ", algorithms: [ES256, ES384], "
                                    "jwks_file: \"%s/zeros.json\"}\n",
                                    fx.dir);
    sg_principal_release(expect_cause(verifier, fx_token(minted, "zx"), SG_AUTH_OK));
    sg_principal_release(expect_cause(verifier, fx_token(minted, "zy"), SG_AUTH_OK));
    sg_auth_destroy(verifier);
    sg_conf_destroy(own_conf);
    json_decref(minted);
}

typedef struct st_worker_t {
    const char *token;
    sg_auth_cause_t expected;
    int failures;
} worker_t;

static void *verify_loop(void *arg)
{
    worker_t *worker = arg;
    for (int i = 0; i < 400; i++) {
        sg_principal_t *principal;
        sg_auth_error_t error;
        sg_auth_cause_t got;
        if (i % 7 == 0)
            got = sg_auth_verify_api_key(auth, IMPORTER_KEY, strlen(IMPORTER_KEY), &principal, &error);
        else
            got = sg_auth_verify_token(auth, worker->token, strlen(worker->token), sg_now_ms(), &principal, &error);
        if (i % 7 != 0 && got != worker->expected)
            worker->failures++;
        if (got == SG_AUTH_OK && principal == NULL)
            worker->failures++;
        sg_principal_release(principal);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    /* Event loops verify at once: cached, uncached-and-refused and API keys interleaved. */
    static const char *const names[] = {"rs", "es", "scope-array", "tampered", "expired", "rs"};
    static const sg_auth_cause_t causes[] = {SG_AUTH_OK,      SG_AUTH_OK, SG_AUTH_OK, SG_AUTH_BAD_SIGNATURE,
                                             SG_AUTH_EXPIRED, SG_AUTH_OK};
    pthread_t threads[SG_ARRAY_SIZE(names)];
    worker_t workers[SG_ARRAY_SIZE(names)];
    for (size_t i = 0; i < SG_ARRAY_SIZE(names); i++) {
        workers[i] = (worker_t){.token = fx_token(tokens, names[i]), .expected = causes[i]};
        assert_int_equal(pthread_create(&threads[i], NULL, verify_loop, &workers[i]), 0);
    }
    /* Every thread joined before any check: a failed check must not leave one verifying with
     * `auth` while teardown destroys it. */
    for (size_t i = 0; i < SG_ARRAY_SIZE(names); i++)
        pthread_join(threads[i], NULL);
    for (size_t i = 0; i < SG_ARRAY_SIZE(names); i++)
        if (workers[i].failures != 0)
            fail_msg("%s: %d of its verifies went wrong", names[i], workers[i].failures);
}

static void test_www_authenticate(void **state)
{
    char buf[256];
    assert_int_equal(sg_auth_www_authenticate(SG_AUTH_MISSING_CREDENTIAL, "whatever", buf, sizeof(buf)), 6);
    assert_string_equal(buf, "Bearer");
    sg_auth_www_authenticate(SG_AUTH_EXPIRED, "the token expired 3 s ago", buf, sizeof(buf));
    assert_string_equal(buf, "Bearer error=\"invalid_token\", error_description=\"the token expired 3 s ago\"");
    /* Only the characters RFC 6750 allows in error_description. */
    sg_auth_www_authenticate(SG_AUTH_MALFORMED, "a \"quoted\" \\ bit\n\xc3\xa9", buf, sizeof(buf));
    assert_string_equal(buf, "Bearer error=\"invalid_token\", error_description=\"a 'quoted' / bit???\"");
    sg_auth_www_authenticate(SG_AUTH_BAD_SIGNATURE, NULL, buf, sizeof(buf));
    assert_string_equal(buf, "Bearer error=\"invalid_token\", error_description=\"bad-signature\"");
    /* Truncation: the length it needs, a NUL-terminated prefix. */
    char small[10];
    size_t need = sg_auth_www_authenticate(SG_AUTH_EXPIRED, "x", small, sizeof(small));
    assert_int_equal(need, strlen("Bearer error=\"invalid_token\", error_description=\"x\""));
    assert_string_equal(small, "Bearer er");

    char *scopes[] = {"orders:write", "tables:read"};
    sg_auth_www_authenticate_scope(scopes, 2, "missing orders:write", buf, sizeof(buf));
    assert_string_equal(buf, "Bearer error=\"insufficient_scope\", error_description=\"missing orders:write\", "
                             "scope=\"orders:write tables:read\"");
    static const struct {
        sg_auth_cause_t cause;
        const char *name;
    } names[] = {{SG_AUTH_EXPIRED, "expired"},
                 {SG_AUTH_NOT_YET_VALID, "not-yet-valid"},
                 {SG_AUTH_BAD_SIGNATURE, "bad-signature"},
                 {SG_AUTH_WRONG_ISSUER, "wrong-issuer"},
                 {SG_AUTH_WRONG_AUDIENCE, "wrong-audience"},
                 {SG_AUTH_UNKNOWN_KEY_ID, "unknown-key-id"},
                 {SG_AUTH_ALGORITHM_NOT_ALLOWED, "algorithm-not-allowed"},
                 {SG_AUTH_MALFORMED, "malformed"},
                 {SG_AUTH_TOO_LARGE, "too-large"},
                 {SG_AUTH_MISSING_CREDENTIAL, "missing-credential"}};
    for (size_t i = 0; i < SG_ARRAY_SIZE(names); i++)
        assert_string_equal(sg_auth_cause_name(names[i].cause), names[i].name);
}

static void test_parse_headers(void **state)
{
    const char *token;
    size_t len;
    static const struct {
        const char *value;
        int rc;
        const char *token;
    } cases[] = {
        {"Bearer abc.def.ghi", 0, "abc.def.ghi"},
        {"bearer  abc-_~+/", 0, "abc-_~+/"},
        {"BEARER x==", 0, "x=="},
        {" Bearer tok ", 0, "tok"},
        {"Bearer", -2, NULL},
        {"Bearer ", -2, NULL},
        {"Bearer a b", -2, NULL},
        {"Bearer =abc", -2, NULL},
        {"Bearer a=b", -2, NULL},
        {"Bearerabc", -1, NULL},
        {"Basic YTpi", -1, NULL},
        {"", -1, NULL},
    };
    for (size_t i = 0; i < SG_ARRAY_SIZE(cases); i++) {
        int rc = sg_auth_parse_bearer(cases[i].value, strlen(cases[i].value), &token, &len);
        if (rc != cases[i].rc || (rc == 0 && (len != strlen(cases[i].token) || memcmp(token, cases[i].token, len) != 0)))
            fail_msg("\"%s\": got %d", cases[i].value, rc);
    }
    /* Every byte: a token68 character (RFC 7235) or not. */
    for (int byte = 1; byte < 256; byte++) {
        char value[] = "Bearer a?b";
        value[8] = (char)byte;
        int token68 = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') || (byte >= '0' && byte <= '9') ||
                      strchr("-._~+/", byte) != NULL;
        int rc = sg_auth_parse_bearer(value, 10, &token, &len);
        if (rc != (token68 ? 0 : -2))
            fail_msg("byte 0x%02x: got %d", (unsigned)byte, rc);
    }
    static const struct {
        const char *value;
        const char *found;
    } cookies[] = {
        {"sg_token=abc", "abc"},
        {"a=1; sg_token=abc.def; b=2", "abc.def"},
        {"a=1;sg_token=\"q\"", "q"},
        {"my_sg_token=x; sg_token=y", "y"},
        {"sg_token=", ""},
        {"sg_tokens=x", NULL},
        {"a=1", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < SG_ARRAY_SIZE(cookies); i++) {
        int rc = sg_auth_find_cookie(cookies[i].value, strlen(cookies[i].value), SG_AUTH_COOKIE, &token, &len);
        if (cookies[i].found == NULL ? rc != -1
                                     : rc != 0 || len != strlen(cookies[i].found) || memcmp(token, cookies[i].found, len) != 0)
            fail_msg("cookie \"%s\": got %d", cookies[i].value, rc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_tokens),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_malformed_and_oversized),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_cache_compares_tokens),
        cmocka_unit_test(test_cache_bounded),
        cmocka_unit_test(test_api_keys),
        cmocka_unit_test(test_authenticate),
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_key_set_errors),
        cmocka_unit_test(test_coordinates_with_leading_zeros),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_www_authenticate),
        cmocka_unit_test(test_parse_headers),
    };
    return cmocka_run_group_tests_name("gateway-auth", tests, setup, teardown);
}
