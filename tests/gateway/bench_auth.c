/*
 * sg-auth-bench: what authentication costs per request (thread CPU time), printed, never asserted. A verify of a
 * token seen for the first time (RS256, ES256: the signature is checked), of one already cached
 * (the usual case: a client sends the same token until it expires), on one thread and on two,
 * an API key, and a rate-limit take. Run from the build directory:
 *   SG_SOURCE_ROOT=.. ./tests/gateway/sg-auth-bench
 * (It runs under cmocka only for the fixture's error handling.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>

#include "auth_fixture.h"
#include "sg_auth.h"
#include "sg_base.h"
#include "sg_ratelimit.h"

#define DISTINCT 300        /* tokens per algorithm, each verified once uncached */
#define CACHED_CALLS 400000 /* cached verifies per measurement */

/* CPU time of the calling thread: on a shared machine wall time mostly measures the neighbours. */
static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *nth(json_t *tokens, const char *prefix, int i, char *name, size_t size)
{
    snprintf(name, size, "%s%d", prefix, i);
    return fx_token(tokens, name);
}

typedef struct st_run_t {
    sg_auth_t *auth;
    json_t *tokens;
    const char *prefix;
    int calls;
    double ns;
} run_t;

static void *cached_loop(void *arg)
{
    run_t *run = arg;
    const char *list[16];
    char name[32];
    for (int i = 0; i < 16; i++)
        list[i] = nth(run->tokens, run->prefix, i, name, sizeof(name));
    int64_t now_ms = sg_now_ms(), start = cpu_ns();
    for (int i = 0; i < run->calls; i++) {
        sg_principal_t *principal;
        sg_auth_error_t error;
        const char *token = list[i % 16];
        if (sg_auth_verify_token(run->auth, token, strlen(token), now_ms, &principal, &error) != SG_AUTH_OK)
            fail_msg("cached verify failed: %s", error.detail);
        sg_principal_release(principal);
    }
    run->ns = (double)(cpu_ns() - start) / run->calls;
    return NULL;
}

static double uncached(sg_auth_t *auth, json_t *tokens, const char *prefix)
{
    char name[32];
    int64_t now_ms = sg_now_ms(), start = cpu_ns();
    for (int i = 0; i < DISTINCT; i++) {
        const char *token = nth(tokens, prefix, i, name, sizeof(name));
        sg_principal_t *principal;
        sg_auth_error_t error;
        if (sg_auth_verify_token(auth, token, strlen(token), now_ms, &principal, &error) != SG_AUTH_OK)
            fail_msg("verify failed: %s", error.detail);
        sg_principal_release(principal);
    }
    return (double)(cpu_ns() - start) / DISTINCT;
}

static void bench(void **state)
{
    fx_t fx;
    fx_init(&fx);
    fx_genkey(&fx, "rsa", "rsa2048");
    fx_genkey(&fx, "ec", "ec256");
    char rsa[128], ec[128], jwks[128];
    int64_t now = (int64_t)time(NULL);
    json_t *list = json_array();
    for (int i = 0; i < DISTINCT; i++) {
        json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:i}", "iss", "https://id.example", "aud", "streamgate", "sub",
                                   "user-1234", "exp", (json_int_t)(now + 3600), "iat", (json_int_t)now, "scope",
                                   "orders:write tables:read profile", "jti", i);
        char name[32];
        snprintf(name, sizeof(name), "rs%d", i);
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:O}", "name", name, "alg", "RS256", "key", "rsa", "kid", "r1",
                                              "claims", claims));
        snprintf(name, sizeof(name), "es%d", i);
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s, s:s, s:o}", "name", name, "alg", "ES256", "key", "ec", "kid", "e1", "claims", claims));
    }
    json_t *spec = json_pack("{s:{s:s, s:s}, s:[{s:s, s:[{s:s, s:s}, {s:s, s:s}]}], s:o}", "keys", "rsa",
                             fx_path(&fx, "rsa.pem", rsa, sizeof(rsa)), "ec", fx_path(&fx, "ec.pem", ec, sizeof(ec)), "jwks", "out",
                             fx_path(&fx, "jwks.json", jwks, sizeof(jwks)), "keys", "key", "rsa", "kid", "r1", "key", "ec", "kid",
                             "e1", "tokens", list);
    json_t *tokens = fx_mint(&fx, spec);
    json_decref(spec);

    char text[512], err[256];
    snprintf(text, sizeof(text),
             "auth:\n  jwt: {issuer: \"https://id.example\", audience: streamgate, jwks_file: \"%s\"}\n"
             "  api_keys: [{name: k, sha256: abb651124a4cbc8955fadf4ceab8365a9aa27a2eb193b76790a5644046f90cdf}]\n",
             jwks);
    sg_conf_t *conf = sg_conf_load_string("bench.yaml", text, strlen(text), err, sizeof(err));
    /* The machine is shared: every figure is the best of ROUNDS, each round on a fresh verifier
     * (an empty cache). */
    enum { ROUNDS = 5, FIGURES = 8 };
    static const char *const labels[FIGURES] = {"RS256, first time (signature checked)",
                                                "ES256, first time (signature checked)",
                                                "RS256, cached, 1 thread",
                                                "ES256, cached, 1 thread",
                                                "RS256, cached, each of 2 threads",
                                                "ES256, cached, each of 2 threads",
                                                "API key",
                                                "rate limit take (with the clock read)"};
    double best[FIGURES];
    for (int i = 0; i < FIGURES; i++)
        best[i] = 1e30;
    for (int round = 0; round < ROUNDS; round++) {
        double ns[FIGURES];
        sg_auth_t *auth = sg_auth_create(&conf->auth, err, sizeof(err));
        if (auth == NULL)
            fail_msg("%s", err);
        ns[0] = uncached(auth, tokens, "rs");
        ns[1] = uncached(auth, tokens, "es");
        for (int threads = 1; threads <= 2; threads++) {
            static const char *const prefixes[] = {"rs", "es"};
            for (int p = 0; p < 2; p++) {
                run_t runs[2];
                pthread_t ids[2];
                for (int t = 0; t < threads; t++) {
                    runs[t] = (run_t){.auth = auth, .tokens = tokens, .prefix = prefixes[p], .calls = CACHED_CALLS};
                    pthread_create(&ids[t], NULL, cached_loop, &runs[t]);
                }
                double total = 0;
                for (int t = 0; t < threads; t++) {
                    pthread_join(ids[t], NULL);
                    total += runs[t].ns;
                }
                ns[2 + (threads - 1) * 2 + p] = total / threads;
            }
        }
        int64_t start = cpu_ns();
        for (int i = 0; i < CACHED_CALLS; i++) {
            sg_principal_t *principal;
            sg_auth_error_t error;
            sg_auth_verify_api_key(auth, "k-importer-0123456789", 21, &principal, &error);
            sg_principal_release(principal);
        }
        ns[6] = (double)(cpu_ns() - start) / CACHED_CALLS;
        sg_auth_destroy(auth);

        sg_rate_policy_t policy = {.name = "p", .count = 1000000, .period_ms = 1000, .burst = 1000000};
        sg_ratelimit_t *limiter = sg_ratelimit_create(&policy, 1, SG_RATELIMIT_DEFAULT_SLOTS, err, sizeof(err));
        start = cpu_ns();
        for (int i = 0; i < CACHED_CALLS; i++) {
            sg_rate_result_t result;
            sg_ratelimit_take(limiter, 0, "user-1234", 9, sg_mono_us(), &result);
        }
        ns[7] = (double)(cpu_ns() - start) / CACHED_CALLS;
        sg_ratelimit_destroy(limiter);
        for (int i = 0; i < FIGURES; i++)
            best[i] = ns[i] < best[i] ? ns[i] : best[i];
    }
    printf("token sizes: RS256 %zu bytes, ES256 %zu bytes; CPU time per call, best of %d rounds\n", strlen(fx_token(tokens, "rs0")),
           strlen(fx_token(tokens, "es0")), ROUNDS);
    for (int i = 0; i < FIGURES; i++)
        printf("%-40s %9.2f us\n", labels[i], best[i] / 1000);
    sg_conf_destroy(conf);
    json_decref(tokens);
    fx_cleanup(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(bench)};
    return cmocka_run_group_tests_name("sg-auth-bench", tests, NULL, NULL);
}
