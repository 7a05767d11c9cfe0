/*
 * Authentication, scopes and rate limits in the request path (DESIGN §6; access.h says where it
 * sits). The verifier (gateway/auth, made by main.c) and the rate limiter (made here, with or
 * without auth: the registry-writes default protects /registry either way) are shared by every
 * loop and take no lock on the way of a request that passes: a cached token is a hash and a
 * shard lookup, a limit one compare-and-swap.
 *
 * Which policies apply to which endpoint is worked out once, at start: per configured route, the
 * per-address and the per-principal policies that name it or name no route, in config order; the
 * other endpoints get those that name no route. Refusals are counted per cause and per policy for
 * /metrics; nothing a client sent as a credential ever reaches a log line or a response.
 */
#include "access.h"

#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway_int.h"
#include "respond.h"
#include "sg_ratelimit.h"

/* The policies one endpoint takes, in order: per address (before the credential), then per
 * principal (after it). Indices into the limiter's policies. */
typedef struct st_sg_policy_list_t {
    size_t *by_ip, n_by_ip;
    size_t *by_principal, n_by_principal;
} sg_policy_list_t;

#define SG_AUTH_CAUSES (SG_AUTH_KEYS_UNAVAILABLE + 1)

struct st_sg_access_t {
    sg_ratelimit_t *limiter;
    int registry_policy;     /* "registry-writes", or -1 when limits.registry_write_rate is off */
    sg_policy_list_t *route; /* per conf->routes[i]; [n_routes]: every other endpoint */
    atomic_long auth_refused[SG_AUTH_CAUSES];
    atomic_long scope_refused;
    atomic_long *rate_refused; /* per policy */
    size_t n_policies;
};

static char scope_tables_read[] = "tables:read";
static char *const tables_read[] = {scope_tables_read};

/* --- rules ----------------------------------------------------------------------------------- */

static sg_access_rule_t rule_of(const sg_access_conf_t *access, size_t route)
{
    return (sg_access_rule_t){.need = access->is_public ? SG_ACCESS_PUBLIC : SG_ACCESS_REQUIRED,
                              .scopes = access->scopes,
                              .n_scopes = access->n_scopes,
                              .route = route};
}

sg_access_rule_t sg_access_route_rule(const sg_server_t *server, size_t route)
{
    return rule_of(&server->conf->routes[route].access, route);
}

sg_access_rule_t sg_access_query_rule(const sg_server_t *server, size_t query)
{
    return rule_of(&server->conf->queries[query].access, SIZE_MAX);
}

sg_access_rule_t sg_access_table_rule(const sg_server_t *server, const sg_table_conf_t *table)
{
    sg_access_rule_t rule = {.need = SG_ACCESS_REQUIRED, .scopes = tables_read, .n_scopes = 1, .route = SIZE_MAX};
    if (table != NULL && (table->access.is_public || table->access.n_scopes > 0))
        rule = rule_of(&table->access, SIZE_MAX);
    return rule;
}

sg_access_rule_t sg_access_builtin_rule(const char *scope, bool registry_write)
{
    /* One static array per distinct scope: the rule keeps a pointer to it. */
    static char registry_read[] = "registry:read", registry_write_scope[] = "registry:write", metrics_read[] = "metrics:read";
    static char *const registry_read_scopes[] = {registry_read}, *const registry_write_scopes[] = {registry_write_scope},
                       *const metrics_scopes[] = {metrics_read};
    sg_access_rule_t rule = {.need = SG_ACCESS_REQUIRED, .route = SIZE_MAX, .registry_write = registry_write};
    if (scope == NULL)
        return rule;
    char *const *scopes = strcmp(scope, registry_read) == 0          ? registry_read_scopes
                          : strcmp(scope, registry_write_scope) == 0 ? registry_write_scopes
                          : strcmp(scope, metrics_read) == 0         ? metrics_scopes
                                                                     : NULL;
    rule.scopes = scopes;
    rule.n_scopes = scopes != NULL;
    return rule;
}

/* --- answers --------------------------------------------------------------------------------- */

static void add_rate_headers(h2o_req_t *req, const sg_rate_result_t *results, size_t n)
{
    if (n == 0)
        return;
    char *text = h2o_mem_alloc_pool(&req->pool, 512);
    size_t len = sg_ratelimit_format_policy(results, n, text, 512);
    if (len < 512)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("ratelimit-policy"), 0, NULL, text, len);
    text = h2o_mem_alloc_pool(&req->pool, 512);
    len = sg_ratelimit_format_state(results, n, text, 512);
    if (len < 512)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("ratelimit"), 0, NULL, text, len);
}

static void refuse_rate(h2o_req_t *req, struct st_sg_access_t *access, size_t policy, const sg_rate_result_t *results, size_t n)
{
    atomic_fetch_add(&access->rate_refused[policy], 1);
    add_rate_headers(req, results, n);
    int64_t retry_s = sg_ratelimit_retry_after_s(results, n);
    sg_http_retry_after(req, (int)(retry_s > 86400 ? 86400 : retry_s));
    const sg_rate_result_t *refused = &results[n - 1];
    sg_problem(req, SG_PROBLEM_RATE_LIMITED, NULL, "rate limit %s (%" PRIu32 " per %" PRIu32 " s) is exhausted; retry in %lld s",
               refused->policy, refused->quota, refused->window_s, (long long)retry_s);
}

/* Which credential a refusal is about: the problem's `field`. */
static const char *credential_field(const sg_auth_credentials_t *credentials)
{
    return credentials->authorization != NULL ? "Authorization"
           : credentials->api_key != NULL     ? "X-API-Key"
           : credentials->cookie != NULL      ? "Cookie"
                                              : NULL;
}

static void refuse_credential(h2o_req_t *req, struct st_sg_access_t *access, const sg_auth_credentials_t *credentials,
                              const sg_auth_error_t *error)
{
    atomic_fetch_add(&access->auth_refused[error->cause < SG_AUTH_CAUSES ? error->cause : SG_AUTH_MALFORMED], 1);
    const char *cause = sg_auth_cause_name(error->cause);
    if (error->cause == SG_AUTH_KEYS_UNAVAILABLE) {
        sg_problem_member(req, SG_PROBLEM_KEYS_UNAVAILABLE, NULL, "cause", cause, "%s", error->detail);
        return;
    }
    char challenge[512]; /* "Bearer error=..." around a detail of at most 191 characters */
    size_t len = sg_auth_www_authenticate(error->cause, error->detail, challenge, sizeof(challenge));
    if (len >= sizeof(challenge))
        len = sizeof(challenge) - 1;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, h2o_strdup(&req->pool, challenge, len).base,
                   len);
    if (error->cause == SG_AUTH_MISSING_CREDENTIAL)
        sg_problem_member(req, SG_PROBLEM_MISSING_CREDENTIAL, NULL, "cause", cause, "%s", error->detail);
    else
        sg_problem_member(req, SG_PROBLEM_INVALID_CREDENTIAL, credential_field(credentials), "cause", cause, "%s: %s", cause,
                          error->detail);
}

static void refuse_scope(h2o_req_t *req, struct st_sg_access_t *access, const sg_access_rule_t *rule, const char *missing)
{
    atomic_fetch_add(&access->scope_refused, 1);
    char description[320], challenge[1024];
    snprintf(description, sizeof(description), "the credential lacks the scope %s", missing);
    size_t len = sg_auth_www_authenticate_scope(rule->scopes, rule->n_scopes, description, challenge, sizeof(challenge));
    if (len < sizeof(challenge))
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, h2o_strdup(&req->pool, challenge, len).base,
                       len);
    sg_problem_member(req, SG_PROBLEM_INSUFFICIENT_SCOPE, NULL, "scope", missing, "this endpoint needs the scope %s", missing);
}

/* --- the check ------------------------------------------------------------------------------- */

/* The client's address as a rate-limit key: IPv4 (also IPv4-mapped IPv6) by address, IPv6 by
 * its /64 (one host usually holds a whole /64). The socket's peer: X-Forwarded-For is a client's
 * say-so. Returns the key length. */
static size_t address_key(h2o_req_t *req, uint8_t key[9])
{
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof(sa));
    req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&sa);
    if (sa.ss_family == AF_INET6) {
        const uint8_t *bytes = ((const struct sockaddr_in6 *)&sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(bytes, mapped, sizeof(mapped)) != 0) {
            key[0] = '6';
            memcpy(key + 1, bytes, 8);
            return 9;
        }
        key[0] = '4';
        memcpy(key + 1, bytes + 12, 4);
        return 5;
    }
    key[0] = '4';
    if (sa.ss_family == AF_INET)
        memcpy(key + 1, &((const struct sockaddr_in *)&sa)->sin_addr, 4);
    else
        memset(key + 1, 0, 4); /* not an IP socket: one bucket for all such */
    return 5;
}

/* A principal as a rate-limit key: API keys apart from token subjects of the same name. Not
 * NUL-terminated; a name is at most SG_AUTH_MAX_PRINCIPAL bytes (a token's, checked when it is
 * verified; an API key's name at most 128, by the config), so nothing is cut. memcpy, not
 * snprintf: this runs per request. */
static size_t principal_key(const sg_principal_t *principal, char key[SG_AUTH_MAX_PRINCIPAL + 2])
{
    const char *name = sg_principal_name(principal);
    size_t len = strnlen(name, SG_AUTH_MAX_PRINCIPAL);
    key[0] = sg_principal_is_api_key(principal) ? 'k' : 't';
    key[1] = ':';
    memcpy(key + 2, name, len);
    return len + 2;
}

static void on_principal_dispose(void *slot)
{
    sg_principal_release(*(sg_principal_t **)slot);
}

/* The first value of every header called `name` that holds the sg_token cookie, else the first. */
static h2o_iovec_t token_cookie(h2o_req_t *req)
{
    h2o_iovec_t first = {NULL, 0};
    for (ssize_t at = -1; (at = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, at)) >= 0;) {
        h2o_iovec_t value = req->headers.entries[at].value;
        const char *found;
        size_t found_len;
        if (sg_auth_find_cookie(value.base, value.len, SG_AUTH_COOKIE, &found, &found_len) == 0)
            return value;
        if (first.base == NULL)
            first = value;
    }
    return first;
}

int sg_access_admit(h2o_req_t *req, const sg_access_rule_t *rule, sg_principal_t **principal_out)
{
    *principal_out = NULL;
    if (rule->need == SG_ACCESS_EXEMPT)
        return 0;
    sg_server_t *server = sg_loop_of(req)->server;
    struct st_sg_access_t *access = server->access;
    const sg_policy_list_t *policies = &access->route[rule->route < server->conf->n_routes ? rule->route : server->conf->n_routes];
    int registry = rule->registry_write ? access->registry_policy : -1;
    size_t n_results = 0, max_results = policies->n_by_ip + policies->n_by_principal + (registry >= 0);
    sg_rate_result_t *results = max_results > 0 ? h2o_mem_alloc_pool(&req->pool, max_results * sizeof(*results)) : NULL;
    int64_t now_us = max_results > 0 ? sg_mono_us() : 0;

    /* 1. per address: before any signature is checked */
    if (policies->n_by_ip > 0 || registry >= 0) {
        uint8_t key[9];
        size_t key_len = address_key(req, key);
        for (size_t i = 0; i <= policies->n_by_ip; ++i) {
            size_t policy = i < policies->n_by_ip ? policies->by_ip[i] : (size_t)registry;
            if (i == policies->n_by_ip && registry < 0)
                break;
            sg_ratelimit_take(access->limiter, policy, key, key_len, now_us, &results[n_results++]);
            if (!results[n_results - 1].allowed) {
                refuse_rate(req, access, policy, results, n_results);
                return -1;
            }
        }
    }
    if (server->auth == NULL || rule->need == SG_ACCESS_PUBLIC) {
        add_rate_headers(req, results, n_results);
        return 0;
    }

    /* 2. the credential (the cookie only for event streams: a page's ordinary requests must not
     * be authorised by a cookie the browser adds by itself) */
    sg_auth_credentials_t credentials = {0};
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1); /* a token: no name compare */
    if (at >= 0) {
        credentials.authorization = req->headers.entries[at].value.base;
        credentials.authorization_len = req->headers.entries[at].value.len;
    }
    h2o_iovec_t value = sg_http_header(req, H2O_STRLIT("x-api-key"));
    credentials.api_key = value.base;
    credentials.api_key_len = value.len;
    if (sg_http_wants_event_stream(req)) {
        value = token_cookie(req);
        credentials.cookie = value.base;
        credentials.cookie_len = value.len;
    }
    sg_principal_t *principal = NULL;
    sg_auth_error_t error;
    sg_auth_cause_t cause = sg_auth_authenticate(server->auth, &credentials, sg_now_ms(), &principal, &error);
    if (cause == SG_AUTH_MISSING_CREDENTIAL && rule->need == SG_ACCESS_OPTIONAL) {
        add_rate_headers(req, results, n_results);
        return 0;
    }
    if (cause != SG_AUTH_OK) {
        refuse_credential(req, access, &credentials, &error);
        return -1;
    }
    /* Held by the request from here: released when its pool goes, whoever answers it. */
    sg_principal_t **slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_principal_dispose);
    *slot = principal;

    /* 3. scopes */
    const char *missing = sg_principal_missing_scope(principal, rule->scopes, rule->n_scopes);
    if (missing != NULL) {
        refuse_scope(req, access, rule, missing);
        return -1;
    }

    /* 4. per principal */
    if (policies->n_by_principal > 0) {
        char key[SG_AUTH_MAX_PRINCIPAL + 2];
        size_t key_len = principal_key(principal, key);
        for (size_t i = 0; i < policies->n_by_principal; ++i) {
            sg_ratelimit_take(access->limiter, policies->by_principal[i], key, key_len, now_us, &results[n_results++]);
            if (!results[n_results - 1].allowed) {
                refuse_rate(req, access, policies->by_principal[i], results, n_results);
                return -1;
            }
        }
    }
    add_rate_headers(req, results, n_results);
    *principal_out = principal;
    return 0;
}

/* --- owners ---------------------------------------------------------------------------------- */

void sg_access_owner(const sg_server_t *server, const sg_principal_t *principal, char *out)
{
    if (server->auth == NULL) {
        out[0] = '\0';
        return;
    }
    if (principal == NULL) {
        memcpy(out, SG_ACCESS_ANONYMOUS, sizeof(SG_ACCESS_ANONYMOUS));
        return;
    }
    /* A digest, not the name: the status store need not hold who the callers are. Kind and name
     * are length-prefixed apart, as for the rate-limit keys. */
    char input[SG_AUTH_MAX_PRINCIPAL + 2];
    size_t len = principal_key(principal, input);
    uint8_t digest[32];
    sg_auth_sha256(input, len, digest); /* the same digest as EVP_Digest(EVP_sha256()), without its look-up per call */
    sg_b64url_encode(digest, sizeof(digest), out);
}

/* --- readiness and metrics ------------------------------------------------------------------- */

const char *sg_access_not_ready(sg_server_t *server)
{
    if (server->auth == NULL || sg_auth_keys_ready(server->auth))
        return NULL;
    return "the JWT key set (auth.jwt.jwks_url) has not been loaded yet";
}

typedef struct st_sg_text_t {
    char *buf;
    size_t size, len;
} sg_text_t;

static void text_add(sg_text_t *text, const char *fmt, ...) SG_PRINTF(2, 3);
static void text_add(sg_text_t *text, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(text->len < text->size ? text->buf + text->len : NULL, text->len < text->size ? text->size - text->len : 0,
                      fmt, args);
    va_end(args);
    text->len += n > 0 ? (size_t)n : 0;
}

static void text_counter(sg_text_t *text, const char *name, const char *help, unsigned long long value)
{
    text_add(text, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, value);
}

size_t sg_access_metrics(sg_server_t *server, char *buf, size_t size)
{
    struct st_sg_access_t *access = server->access;
    sg_text_t text = {.buf = buf, .size = size};
    if (size > 0)
        buf[0] = '\0';
    if (server->auth != NULL) {
        text_add(&text, "# HELP streamgate_auth_refusals_total Requests refused for their credential, by cause (401, or 503 "
                        "keys-unavailable; insufficient-scope is the 403).\n# TYPE streamgate_auth_refusals_total counter\n");
        for (int cause = SG_AUTH_MISSING_CREDENTIAL; cause < SG_AUTH_CAUSES; ++cause)
            text_add(&text, "streamgate_auth_refusals_total{cause=\"%s\"} %ld\n", sg_auth_cause_name((sg_auth_cause_t)cause),
                     atomic_load(&access->auth_refused[cause]));
        text_add(&text, "streamgate_auth_refusals_total{cause=\"insufficient-scope\"} %ld\n", atomic_load(&access->scope_refused));
        sg_auth_stats_t stats;
        sg_auth_stats(server->auth, &stats);
        text_counter(&text, "streamgate_auth_tokens_verified_total", "Tokens whose signature was checked and accepted.",
                     (unsigned long long)stats.verified);
        text_counter(&text, "streamgate_auth_token_cache_hits_total", "Tokens accepted from the verified-token cache.",
                     (unsigned long long)stats.cache_hits);
        text_counter(&text, "streamgate_auth_jwks_fetches_total", "Key set fetches or file reads, good or bad.",
                     (unsigned long long)stats.jwks_fetches);
        text_counter(&text, "streamgate_auth_jwks_failures_total", "Key set fetches that failed (the last good set was kept).",
                     (unsigned long long)stats.jwks_failures);
        text_add(&text,
                 "# HELP streamgate_auth_keys_ready Whether tokens can be verified (a key set is loaded).\n"
                 "# TYPE streamgate_auth_keys_ready gauge\nstreamgate_auth_keys_ready %d\n",
                 sg_auth_keys_ready(server->auth) ? 1 : 0);
    }
    if (access->n_policies > 0) {
        text_add(&text, "# HELP streamgate_ratelimit_refusals_total Requests refused 429, by rate limit policy.\n"
                        "# TYPE streamgate_ratelimit_refusals_total counter\n");
        for (size_t i = 0; i < access->n_policies; ++i) /* the limiter's order: rate_limits, then registry-writes */
            text_add(&text, "streamgate_ratelimit_refusals_total{policy=\"%s\"} %ld\n",
                     i < server->conf->n_rate_limits ? server->conf->rate_limits[i].name : "registry-writes",
                     atomic_load(&access->rate_refused[i]));
        sg_ratelimit_stats_t stats;
        sg_ratelimit_stats(access->limiter, &stats);
        text_counter(&text, "streamgate_ratelimit_busy_evictions_total",
                     "Rate limit buckets in use given to another key (the table is too small).",
                     (unsigned long long)stats.busy_evictions);
    }
    return text.len;
}

/* --- the feature ----------------------------------------------------------------------------- */

static bool names_route(const sg_rate_limit_conf_t *limit, const char *route)
{
    if (limit->n_routes == 0)
        return true;
    for (size_t i = 0; route != NULL && i < limit->n_routes; ++i)
        if (strcmp(limit->routes[i], route) == 0)
            return true;
    return false;
}

static void list_init(sg_policy_list_t *list, const sg_conf_t *conf, const char *route)
{
    list->by_ip = sg_calloc(conf->n_rate_limits + 1, sizeof(size_t));
    list->by_principal = sg_calloc(conf->n_rate_limits + 1, sizeof(size_t));
    for (size_t i = 0; i < conf->n_rate_limits; ++i) {
        if (!names_route(&conf->rate_limits[i], route))
            continue;
        if (conf->rate_limits[i].per == SG_RATE_PER_IP)
            list->by_ip[list->n_by_ip++] = i;
        else
            list->by_principal[list->n_by_principal++] = i;
    }
}

static int init_server(sg_server_t *server, char *err, size_t errlen)
{
    const sg_conf_t *conf = server->conf;
    struct st_sg_access_t *access = sg_calloc(1, sizeof(*access));
    server->access = access;
    if ((access->limiter = sg_ratelimit_create_from_conf(conf, SG_RATELIMIT_DEFAULT_SLOTS, err, errlen)) == NULL)
        return -1;
    access->registry_policy = sg_ratelimit_registry_policy(access->limiter);
    access->n_policies = conf->n_rate_limits + (access->registry_policy >= 0);
    access->rate_refused = sg_calloc(access->n_policies + 1, sizeof(*access->rate_refused));
    access->route = sg_calloc(conf->n_routes + 1, sizeof(*access->route));
    for (size_t i = 0; i < conf->n_routes; ++i)
        list_init(&access->route[i], conf, conf->routes[i].name);
    list_init(&access->route[conf->n_routes], conf, NULL);
    return 0;
}

static void dispose_server(sg_server_t *server)
{
    struct st_sg_access_t *access = server->access;
    if (access == NULL)
        return;
    for (size_t i = 0; access->route != NULL && i <= server->conf->n_routes; ++i) {
        free(access->route[i].by_ip);
        free(access->route[i].by_principal);
    }
    free(access->route);
    free((void *)access->rate_refused);
    sg_ratelimit_destroy(access->limiter);
    free(access);
    server->access = NULL;
}

const sg_feature_t sg_feature_access = {.init_server = init_server, .dispose_server = dispose_server};
