/*
 * The verifier: credentials in, principals out.
 *
 * A bearer token goes through the checks that cost least and trust least first: its size, the
 * cache (the token's bytes), its shape, its header (alg on the allow-list, no crit, a key
 * that fits the algorithm), the signature (cjose), and only then its claims: nothing a token
 * says is believed before its signature is, so an expired token with a bad signature is a bad
 * signature.
 *
 * The cache holds SG_AUTH_CACHE_ENTRIES verified tokens in 64 shards, each with its own mutex
 * held only to find or place an entry, never while a signature is checked. An entry keeps a copy
 * of the token it was verified for, and a hit is a token whose bytes are all equal to that copy:
 * the hash that picks the shard and the entry (SipHash-1-3 under a key drawn when the verifier
 * is made) only saves comparing against every entry, so a collision - chance or not - costs a
 * miss and a verify, never a principal for a token nobody verified. A hit costs that hash (~2.7
 * instructions per byte, plain integer code; the SHA-256 it replaced took ~19k instructions for
 * a 589-byte token without the CPU's SHA extensions, and a cached verify 0.45 us with them,
 * against 0.14 us now) and one memcmp of the token. An entry lives until the token's exp (plus
 * leeway) and only under the key set generation it was verified with, so a key removed from the
 * set stops being trusted at the next request. Evicted or expired principals stay valid for
 * whoever still holds them: principals are reference-counted.
 */
#include "auth_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "sg_base.h"
#include "sg_log.h"

#define CACHE_SHARDS 64
#define CACHE_WAYS (SG_AUTH_CACHE_ENTRIES / CACHE_SHARDS)
#define MAX_SCOPES 256
#define MAX_KID 256

struct st_sg_principal_t {
    atomic_int refs;
    bool api_key;
    int64_t expires_ms;
    char *name;
    char **scopes; /* point into scope_text */
    size_t n_scopes;
    char *scope_text;
    json_t *claims;
};

typedef struct st_cache_entry_t {
    char *token; /* the bytes that were verified (owned); NULL when free */
    size_t token_len;
    sg_principal_t *principal; /* NULL: free */
    int64_t valid_until_ms;    /* exp + leeway */
    uint64_t generation;       /* key set generation it was verified under */
    uint64_t last_used;        /* the shard's clock at the last hit */
} cache_entry_t;

typedef struct st_cache_shard_t {
    pthread_mutex_t lock;
    uint64_t clock;
    uint64_t hits;               /* counted under the lock held anyway: no shared counter for the loops to bounce */
    uint64_t hashes[CACHE_WAYS]; /* entries[i]'s token hash, apart so that a scan reads 8 lines */
    cache_entry_t entries[CACHE_WAYS];
} cache_shard_t;

typedef struct st_api_key_t {
    uint8_t sha256[32];
    sg_principal_t *principal;
} api_key_t;

struct st_sg_auth_t {
    const sg_auth_conf_t *conf;
    const sg_jwt_conf_t *jwt; /* NULL without auth.jwt */
    sg_keysource_t *keys;     /* NULL without jwks_file / jwks_url */
    cjose_jwk_t *hmac_key;    /* NULL without hmac_secret */
    api_key_t *api_keys;
    size_t n_api_keys;
    cache_shard_t *shards;
    sg_sipkey_t cache_key;                  /* random per verifier: nobody outside can aim tokens at one shard */
    bool collide;                           /* tests only (sg_auth_test_collide): every token hashes alike */
    atomic_uint_fast64_t verified, refused; /* cache hits: per shard */
};

/* ------------------------------------------------------------------------------------------ */
/* Principals                                                                                 */

/* Copies the scopes (space-separated strings, e.g. one "scope" claim or an array's items) into
 * one buffer, at most MAX_SCOPES of them. */
static void principal_set_scopes(sg_principal_t *principal, const char *const *parts, size_t n_parts)
{
    size_t total = 1, count = 0;
    for (size_t i = 0; i < n_parts; i++) {
        total += strlen(parts[i]) + 1;
        for (const char *p = parts[i]; *p != '\0'; p++)
            count += *p != ' ' && (p == parts[i] || p[-1] == ' ');
    }
    principal->scope_text = sg_malloc(total);
    principal->scopes = sg_calloc(count < MAX_SCOPES ? count + 1 : MAX_SCOPES, sizeof(*principal->scopes));
    char *out = principal->scope_text;
    for (size_t i = 0; i < n_parts; i++) {
        for (const char *p = parts[i]; *p != '\0';) {
            size_t len = strcspn(p, " ");
            if (len > 0 && principal->n_scopes < MAX_SCOPES) {
                memcpy(out, p, len);
                out[len] = '\0';
                principal->scopes[principal->n_scopes++] = out;
                out += len + 1;
            }
            p += len;
            while (*p == ' ')
                p++;
        }
    }
}

static sg_principal_t *principal_new(const char *name, json_t *claims, int64_t expires_ms, bool api_key)
{
    sg_principal_t *principal = sg_calloc(1, sizeof(*principal));
    atomic_init(&principal->refs, 1);
    principal->name = sg_strdup(name);
    principal->claims = claims;
    principal->expires_ms = expires_ms;
    principal->api_key = api_key;
    return principal;
}

const char *sg_principal_name(const sg_principal_t *principal)
{
    return principal->name;
}

bool sg_principal_is_api_key(const sg_principal_t *principal)
{
    return principal->api_key;
}

bool sg_principal_has_scope(const sg_principal_t *principal, const char *scope)
{
    for (size_t i = 0; i < principal->n_scopes; i++)
        if (strcmp(principal->scopes[i], scope) == 0)
            return true;
    return false;
}

const char *sg_principal_missing_scope(const sg_principal_t *principal, char *const *required, size_t n_required)
{
    for (size_t i = 0; i < n_required; i++)
        if (!sg_principal_has_scope(principal, required[i]))
            return required[i];
    return NULL;
}

const char *sg_principal_claim(const sg_principal_t *principal, const char *name)
{
    return json_string_value(json_object_get(principal->claims, name));
}

int64_t sg_principal_expires_ms(const sg_principal_t *principal)
{
    return principal->expires_ms;
}

sg_principal_t *sg_principal_retain(sg_principal_t *principal)
{
    atomic_fetch_add(&principal->refs, 1);
    return principal;
}

void sg_principal_release(sg_principal_t *principal)
{
    if (principal == NULL || atomic_fetch_sub(&principal->refs, 1) != 1)
        return;
    free(principal->name);
    free(principal->scopes);
    free(principal->scope_text);
    json_decref(principal->claims);
    free(principal);
}

/* ------------------------------------------------------------------------------------------ */
/* Refusals                                                                                   */

__attribute__((format(printf, 4, 5))) static sg_auth_cause_t refuse(sg_auth_t *auth, sg_auth_error_t *error, sg_auth_cause_t cause,
                                                                    const char *fmt, ...)
{
    atomic_fetch_add(&auth->refused, 1);
    if (error != NULL) {
        error->cause = cause;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error->detail, sizeof(error->detail), fmt, ap);
        va_end(ap);
    }
    return cause;
}

/* An algorithm name from a token may be quoted back only when it looks like one. */
static const char *printable_alg(const char *alg)
{
    size_t len = strlen(alg);
    if (len == 0 || len > 16 || strspn(alg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-_") != len)
        return "this algorithm";
    return alg;
}

/* ------------------------------------------------------------------------------------------ */
/* The cache                                                                                  */

/* The cache's hash of a token. Not a digest that stands for the token (a hit compares the bytes),
 * so a fast keyed hash is enough: under a key nobody outside the process knows, a client cannot
 * aim tokens at one shard or at a cached token's entry. */
static uint64_t token_hash(const sg_auth_t *auth, const char *token, size_t len)
{
    return auth->collide ? 42 : sg_siphash13(&auth->cache_key, token, len);
}

static cache_shard_t *shard_of(sg_auth_t *auth, uint64_t hash)
{
    return &auth->shards[hash % CACHE_SHARDS];
}

/* Whether the entry at `i` holds exactly this token.
 *
 * memcmp, not a constant-time comparison: its time says how many leading bytes of the presented
 * token equal the cached one's, and it only ever runs on an entry whose keyed hash equals the
 * presented token's. For a token the client does not already hold, that happens by chance
 * (2^-64 per entry: the key is secret, the hash's outputs never leave the process), so the
 * comparison's time tells nothing about other clients' tokens; for the client's own token it
 * tells the client what it sent. */
static bool entry_holds(const cache_shard_t *shard, size_t i, uint64_t hash, const char *token, size_t len)
{
    const cache_entry_t *entry = &shard->entries[i];
    return shard->hashes[i] == hash && entry->principal != NULL && entry->token_len == len && memcmp(entry->token, token, len) == 0;
}

/* A retained principal for a verified, unexpired token, or NULL. *expired: it was verified but
 * is past exp + leeway now (the entry is dropped). */
static sg_principal_t *cache_get(sg_auth_t *auth, uint64_t hash, const char *token, size_t len, int64_t now_ms, uint64_t generation,
                                 bool *expired)
{
    cache_shard_t *shard = shard_of(auth, hash);
    sg_principal_t *found = NULL, *dropped = NULL;
    char *dropped_token = NULL;
    pthread_mutex_lock(&shard->lock);
    for (size_t i = 0; i < CACHE_WAYS; i++) {
        if (!entry_holds(shard, i, hash, token, len))
            continue;
        cache_entry_t *entry = &shard->entries[i];
        if (entry->generation == generation && now_ms < entry->valid_until_ms) {
            entry->last_used = ++shard->clock;
            shard->hits++;
            found = sg_principal_retain(entry->principal);
        } else {
            *expired = entry->generation == generation;
            dropped = entry->principal;
            dropped_token = entry->token;
            entry->principal = NULL;
            entry->token = NULL;
            shard->hashes[i] = 0;
        }
        break;
    }
    pthread_mutex_unlock(&shard->lock);
    sg_principal_release(dropped);
    free(dropped_token);
    return found;
}

/* Caches `principal` for token[0..len), which it was just verified for (the bytes are copied). */
static void cache_put(sg_auth_t *auth, uint64_t hash, const char *token, size_t len, sg_principal_t *principal,
                      int64_t valid_until_ms, uint64_t generation, int64_t now_ms)
{
    cache_shard_t *shard = shard_of(auth, hash);
    char *copy = sg_memdup(token, len); /* before the lock: it is held for a scan, not a malloc */
    pthread_mutex_lock(&shard->lock);
    /* Same token (another thread verified it too), else a free or stale entry, else the least
     * recently used one. */
    size_t slot = CACHE_WAYS;
    for (size_t i = 0; i < CACHE_WAYS && slot == CACHE_WAYS; i++)
        if (entry_holds(shard, i, hash, token, len))
            slot = i;
    for (size_t i = 0; i < CACHE_WAYS && slot == CACHE_WAYS; i++) {
        const cache_entry_t *entry = &shard->entries[i];
        if (entry->principal == NULL || entry->generation != generation || now_ms >= entry->valid_until_ms)
            slot = i;
    }
    if (slot == CACHE_WAYS) {
        slot = 0;
        for (size_t i = 1; i < CACHE_WAYS; i++)
            if (shard->entries[i].last_used < shard->entries[slot].last_used)
                slot = i;
    }
    cache_entry_t *entry = &shard->entries[slot];
    sg_principal_t *old = entry->principal;
    char *old_token = entry->token;
    shard->hashes[slot] = hash;
    entry->token = copy;
    entry->token_len = len;
    entry->principal = sg_principal_retain(principal);
    entry->valid_until_ms = valid_until_ms;
    entry->generation = generation;
    entry->last_used = ++shard->clock;
    pthread_mutex_unlock(&shard->lock);
    sg_principal_release(old);
    free(old_token);
}

void sg_auth_test_collide(sg_auth_t *auth)
{
    auth->collide = true;
}

/* ------------------------------------------------------------------------------------------ */
/* Tokens                                                                                     */

typedef struct st_jws_parts_t {
    const char *part[3]; /* header, payload, signature (base64url) */
    size_t len[3];
} jws_parts_t;

/* Compact serialization: three base64url parts, the first two non-empty. */
static bool split_compact(const char *token, size_t len, jws_parts_t *parts)
{
    size_t start = 0, n = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && token[i] != '.') {
            if (sg_b64url_value((unsigned char)token[i]) < 0)
                return false;
            continue;
        }
        if (n == 3)
            return false;
        parts->part[n] = token + start;
        parts->len[n] = i - start;
        n++;
        start = i + 1;
    }
    return n == 3 && parts->len[0] > 0 && parts->len[1] > 0 && parts->len[2] % 4 != 1;
}

static size_t b64url_decoded_len(size_t len)
{
    return len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
}

static json_t *decode_json_part(const char *part, size_t len)
{
    char *buf = sg_malloc(len * 3 / 4 + 1);
    long n = sg_b64url_decode(part, len, buf, NULL, 0);
    json_t *value = n < 0 ? NULL : json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (value != NULL && !json_is_object(value)) {
        json_decref(value);
        value = NULL;
    }
    return value;
}

static bool alg_allowed(const sg_jwt_conf_t *jwt, const char *alg)
{
    for (size_t i = 0; i < jwt->n_algorithms; i++)
        if (strcmp(jwt->algorithms[i], alg) == 0) /* JWS algorithm names are case-sensitive */
            return true;
    return false;
}

/* A NumericDate claim in ms: 1 present and valid, 0 absent, -1 present but not a date. */
static int numeric_date_ms(json_t *claims, const char *name, int64_t *ms)
{
    json_t *value = json_object_get(claims, name);
    if (value == NULL)
        return 0;
    if (!json_is_number(value))
        return -1;
    double seconds = json_number_value(value);
    if (!(seconds >= 0 && seconds < 1e13)) /* also refuses NaN */
        return -1;
    *ms = (int64_t)(seconds * 1000);
    return 1;
}

static bool audience_contains(json_t *aud, const char *audience)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), audience) == 0;
    size_t i;
    json_t *item;
    json_array_foreach(aud, i, item) if (json_is_string(item) && strcmp(json_string_value(item), audience) == 0) return true;
    return false;
}

static bool usable_principal(const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > SG_AUTH_MAX_PRINCIPAL)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return false;
    return true;
}

/* Checks the claims of a token whose signature verified; on success *out is a new principal. */
static sg_auth_cause_t check_claims(sg_auth_t *auth, json_t *claims, int64_t now_ms, sg_principal_t **out, sg_auth_error_t *error)
{
    const sg_jwt_conf_t *jwt = auth->jwt;
    int64_t exp_ms = 0, nbf_ms = 0, iat_ms = 0;
    if (numeric_date_ms(claims, "exp", &exp_ms) != 1)
        return refuse(auth, error, SG_AUTH_MALFORMED, "the token has no valid exp claim");
    if (now_ms >= exp_ms + jwt->leeway_ms)
        return refuse(auth, error, SG_AUTH_EXPIRED, "the token expired %" PRId64 " s ago", (now_ms - exp_ms) / 1000);
    int has = numeric_date_ms(claims, "nbf", &nbf_ms);
    if (has < 0)
        return refuse(auth, error, SG_AUTH_MALFORMED, "the token's nbf claim is not a date");
    if (has > 0 && now_ms + jwt->leeway_ms < nbf_ms)
        return refuse(auth, error, SG_AUTH_NOT_YET_VALID, "the token is not valid for another %" PRId64 " s (nbf)",
                      (nbf_ms - now_ms + 999) / 1000);
    has = numeric_date_ms(claims, "iat", &iat_ms);
    if (has < 0)
        return refuse(auth, error, SG_AUTH_MALFORMED, "the token's iat claim is not a date");
    if (has > 0 && now_ms + jwt->leeway_ms < iat_ms)
        return refuse(auth, error, SG_AUTH_NOT_YET_VALID, "the token was issued %" PRId64 " s in the future (iat)",
                      (iat_ms - now_ms + 999) / 1000);
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (iss == NULL || strcmp(iss, jwt->issuer) != 0)
        return refuse(auth, error, SG_AUTH_WRONG_ISSUER, "the token's issuer (iss) is not the one this gateway trusts");
    if (!audience_contains(json_object_get(claims, "aud"), jwt->audience))
        return refuse(auth, error, SG_AUTH_WRONG_AUDIENCE, "the token's audience (aud) does not include %.64s", jwt->audience);
    const char *name = json_string_value(json_object_get(claims, jwt->principal_claim));
    if (!usable_principal(name))
        return refuse(auth, error, SG_AUTH_MALFORMED, "the token's %.32s claim is not a name of 1 to %d printable bytes",
                      jwt->principal_claim, SG_AUTH_MAX_PRINCIPAL);
    json_t *scope = json_object_get(claims, jwt->scopes_claim);
    const char *parts[MAX_SCOPES];
    size_t n_parts = 0;
    if (json_is_string(scope)) {
        parts[n_parts++] = json_string_value(scope);
    } else if (json_is_array(scope)) {
        size_t i;
        json_t *item;
        json_array_foreach(scope, i, item)
        {
            if (!json_is_string(item) || strchr(json_string_value(item), ' ') != NULL)
                return refuse(auth, error, SG_AUTH_MALFORMED, "the token's %.32s claim is not a list of scope strings",
                              jwt->scopes_claim);
            if (n_parts < MAX_SCOPES)
                parts[n_parts++] = json_string_value(item);
        }
    } else if (scope != NULL && !json_is_null(scope)) {
        return refuse(auth, error, SG_AUTH_MALFORMED, "the token's %.32s claim is neither a string nor an array",
                      jwt->scopes_claim);
    }
    sg_principal_t *principal = principal_new(name, json_incref(claims), exp_ms, false);
    principal_set_scopes(principal, parts, n_parts);
    *out = principal;
    return SG_AUTH_OK;
}

/* Everything after the cache: header, key, signature, claims. */
static sg_auth_cause_t verify_uncached(sg_auth_t *auth, const char *token, size_t len, int64_t now_ms, sg_principal_t **out,
                                       sg_auth_error_t *error)
{
    jws_parts_t parts;
    if (!split_compact(token, len, &parts))
        return refuse(auth, error, SG_AUTH_MALFORMED, "the token is not a JWS in compact form (three base64url parts)");
    json_t *header = decode_json_part(parts.part[0], parts.len[0]);
    if (header == NULL)
        return refuse(auth, error, SG_AUTH_MALFORMED, "the token's header is not a JSON object");
    sg_auth_cause_t cause = SG_AUTH_OK;
    sg_keyset_t *keyset = NULL;
    cjose_jws_t *jws = NULL;
    json_t *claims = NULL;
    const char *alg = json_string_value(json_object_get(header, "alg"));
    json_t *kid_value = json_object_get(header, "kid"), *typ = json_object_get(header, "typ");
    const char *kid = json_string_value(kid_value);
    if (alg == NULL) {
        cause = refuse(auth, error, SG_AUTH_MALFORMED, "the token's header has no alg");
    } else if (strcasecmp(alg, "none") == 0) {
        cause = refuse(auth, error, SG_AUTH_ALGORITHM_NOT_ALLOWED, "unsigned tokens (alg none) are never accepted");
    } else if (!alg_allowed(auth->jwt, alg)) {
        cause = refuse(auth, error, SG_AUTH_ALGORITHM_NOT_ALLOWED, "%s is not an allowed algorithm", printable_alg(alg));
    } else if (json_object_get(header, "crit") != NULL) {
        cause = refuse(auth, error, SG_AUTH_MALFORMED, "the token has critical header extensions (crit), none are supported");
    } else if (typ != NULL && !(json_is_string(typ) && (strcasecmp(json_string_value(typ), "JWT") == 0 ||
                                                        strcasecmp(json_string_value(typ), "at+jwt") == 0 ||
                                                        strcasecmp(json_string_value(typ), "application/at+jwt") == 0))) {
        cause = refuse(auth, error, SG_AUTH_MALFORMED, "the token's typ is not JWT or at+jwt");
    } else if (kid_value != NULL && (kid == NULL || strlen(kid) > MAX_KID)) {
        cause = refuse(auth, error, SG_AUTH_MALFORMED, "the token's kid is not a string of at most %d bytes", MAX_KID);
    }
    if (cause != SG_AUTH_OK)
        goto done;

    /* Pick the key: HS* only ever uses hmac_secret; anything else only a key-set key that fits. */
    const cjose_jwk_t *key = NULL;
    size_t rsa_bits = 0;
    if (alg[0] == 'H') {
        key = auth->hmac_key;
    } else if ((keyset = sg_keysource_acquire(auth->keys)) == NULL) {
        cause = refuse(auth, error, SG_AUTH_KEYS_UNAVAILABLE, "the key set has not been loaded yet");
        goto done;
    } else {
        const sg_jwk_t *jwk = NULL;
        switch (sg_keyset_find(keyset, kid, alg, &jwk)) {
        case SG_JWK_FOUND:
            key = jwk->key;
            rsa_bits = jwk->bits;
            break;
        case SG_JWK_NONE:
            sg_keysource_want_refresh(auth->keys); /* perhaps a rotation we have not seen yet */
            cause = kid != NULL ? refuse(auth, error, SG_AUTH_UNKNOWN_KEY_ID, "no key in the key set has the token's kid")
                                : refuse(auth, error, SG_AUTH_UNKNOWN_KEY_ID, "the token has no kid and no key fits %s", alg);
            goto done;
        case SG_JWK_AMBIGUOUS:
            cause = refuse(auth, error, SG_AUTH_UNKNOWN_KEY_ID, "the token has no kid and several keys could verify it");
            goto done;
        case SG_JWK_MISMATCH:
            cause = refuse(auth, error, SG_AUTH_ALGORITHM_NOT_ALLOWED, "the key the token's kid names is not a %s key", alg);
            goto done;
        }
    }
    /* cjose compares an HMAC over the digest's length whatever the signature's length, and
     * splits an ECDSA signature in half whatever the curve: the length is checked here. */
    if (b64url_decoded_len(parts.len[2]) != sg_auth_signature_len(alg, rsa_bits)) {
        cause = refuse(auth, error, SG_AUTH_BAD_SIGNATURE, "the signature does not have the length %s needs", alg);
        goto done;
    }
    cjose_err cerr = {0};
    jws = cjose_jws_import(token, len, &cerr);
    if (jws == NULL) {
        cause = refuse(auth, error, SG_AUTH_MALFORMED, "the token cannot be read as a JWS");
        goto done;
    }
    if (!cjose_jws_verify(jws, key, &cerr)) {
        cause = refuse(auth, error, SG_AUTH_BAD_SIGNATURE, "the signature does not verify");
        goto done;
    }
    uint8_t *payload = NULL;
    size_t payload_len = 0;
    if (cjose_jws_get_plaintext(jws, &payload, &payload_len, &cerr))
        claims = json_loadb((const char *)payload, payload_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims)) {
        cause = refuse(auth, error, SG_AUTH_MALFORMED, "the token's claims are not a JSON object");
        goto done;
    }
    cause = check_claims(auth, claims, now_ms, out, error);
done:
    /* cjose leaves OpenSSL errors in this thread's queue, where H2O's own TLS would find them. */
    ERR_clear_error();
    json_decref(claims);
    if (jws != NULL)
        cjose_jws_release(jws);
    sg_keyset_release(keyset);
    json_decref(header);
    return cause;
}

/* sg_auth_verify_token; `bearer`: the token came in Authorization, where it must be a token68.
 * That is checked only when the token is not in the cache: a cached token passed the strict
 * compact-JWS parse, and scanning hundreds of bytes on every request was a visible share of it. */
static sg_auth_cause_t verify_token(sg_auth_t *auth, const char *token, size_t len, int64_t now_ms, bool bearer,
                                    sg_principal_t **principal, sg_auth_error_t *error)
{
    *principal = NULL;
    if (auth->jwt == NULL)
        return refuse(auth, error, SG_AUTH_UNSUPPORTED_CREDENTIAL, "bearer tokens are not accepted here (use X-API-Key)");
    if (len == 0)
        return refuse(auth, error, SG_AUTH_MALFORMED, "the token is empty");
    if (len > SG_AUTH_MAX_TOKEN)
        return refuse(auth, error, SG_AUTH_TOO_LARGE, "the token is longer than %d bytes", SG_AUTH_MAX_TOKEN);
    uint64_t hash = token_hash(auth, token, len);
    uint64_t generation = auth->keys != NULL ? sg_keysource_generation(auth->keys) : 0;
    bool expired = false;
    sg_principal_t *cached = cache_get(auth, hash, token, len, now_ms, generation, &expired);
    if (cached != NULL) {
        *principal = cached;
        return SG_AUTH_OK;
    }
    if (bearer && !sg_auth_is_token68(token, len))
        return refuse(auth, error, SG_AUTH_MALFORMED, "the Bearer token is missing or has invalid characters");
    if (expired)
        return refuse(auth, error, SG_AUTH_EXPIRED, "the token has expired");
    sg_principal_t *verified = NULL;
    sg_auth_cause_t cause = verify_uncached(auth, token, len, now_ms, &verified, error);
    if (cause != SG_AUTH_OK)
        return cause;
    atomic_fetch_add(&auth->verified, 1);
    cache_put(auth, hash, token, len, verified, verified->expires_ms + auth->jwt->leeway_ms, generation, now_ms);
    *principal = verified;
    return SG_AUTH_OK;
}

sg_auth_cause_t sg_auth_verify_token(sg_auth_t *auth, const char *token, size_t len, int64_t now_ms, sg_principal_t **principal,
                                     sg_auth_error_t *error)
{
    return verify_token(auth, token, len, now_ms, false, principal, error);
}

/* ------------------------------------------------------------------------------------------ */
/* API keys                                                                                   */

sg_auth_cause_t sg_auth_verify_api_key(sg_auth_t *auth, const char *key, size_t len, sg_principal_t **principal,
                                       sg_auth_error_t *error)
{
    *principal = NULL;
    if (auth->n_api_keys == 0)
        return refuse(auth, error, SG_AUTH_UNSUPPORTED_CREDENTIAL, "API keys are not accepted here (use a bearer token)");
    if (len == 0)
        return refuse(auth, error, SG_AUTH_MALFORMED, "the X-API-Key header is empty");
    if (len > SG_AUTH_MAX_API_KEY)
        return refuse(auth, error, SG_AUTH_TOO_LARGE, "the API key is longer than %d bytes", SG_AUTH_MAX_API_KEY);
    uint8_t digest[32];
    sg_auth_sha256(key, len, digest);
    /* The comparison is constant-time: every configured hash is compared, each with
     * CRYPTO_memcmp, so neither how long a comparison takes nor whether the loop stops early
     * says how many leading bytes of a guess matched. */
    size_t match = SIZE_MAX;
    for (size_t i = 0; i < auth->n_api_keys; i++)
        if (CRYPTO_memcmp(digest, auth->api_keys[i].sha256, sizeof(digest)) == 0)
            match = i;
    if (match == SIZE_MAX)
        return refuse(auth, error, SG_AUTH_UNKNOWN_API_KEY, "the API key is not known");
    *principal = sg_principal_retain(auth->api_keys[match].principal);
    return SG_AUTH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                   */

sg_auth_cause_t sg_auth_authenticate(sg_auth_t *auth, const sg_auth_credentials_t *credentials, int64_t now_ms,
                                     sg_principal_t **principal, sg_auth_error_t *error)
{
    *principal = NULL;
    if (credentials->authorization != NULL && credentials->api_key != NULL)
        return refuse(auth, error, SG_AUTH_MALFORMED, "send one credential: Authorization or X-API-Key, not both");
    const char *token;
    size_t token_len;
    if (credentials->authorization != NULL) {
        switch (sg_auth_bearer_span(credentials->authorization, credentials->authorization_len, &token, &token_len)) {
        case 0: return verify_token(auth, token, token_len, now_ms, true, principal, error);
        case -1: return refuse(auth, error, SG_AUTH_UNSUPPORTED_CREDENTIAL, "only the Bearer scheme is accepted in Authorization");
        default: return refuse(auth, error, SG_AUTH_MALFORMED, "the Bearer token is missing or has invalid characters");
        }
    }
    if (credentials->api_key != NULL)
        return sg_auth_verify_api_key(auth, credentials->api_key, credentials->api_key_len, principal, error);
    if (credentials->cookie != NULL &&
        sg_auth_find_cookie(credentials->cookie, credentials->cookie_len, SG_AUTH_COOKIE, &token, &token_len) == 0)
        return sg_auth_verify_token(auth, token, token_len, now_ms, principal, error);
    return refuse(auth, error, SG_AUTH_MISSING_CREDENTIAL,
                  "this endpoint needs a credential: Authorization: Bearer TOKEN or X-API-Key");
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle                                                                                 */

sg_auth_t *sg_auth_create(const sg_auth_conf_t *conf, char *err, size_t errlen)
{
    sg_auth_t *auth = sg_calloc(1, sizeof(*auth));
    auth->conf = conf;
    auth->shards = sg_calloc(CACHE_SHARDS, sizeof(*auth->shards));
    for (size_t i = 0; i < CACHE_SHARDS; i++)
        pthread_mutex_init(&auth->shards[i].lock, NULL);
    if (sg_random_bytes(&auth->cache_key, sizeof(auth->cache_key)) != 0)
        abort(); /* the kernel's random source does not fail on Linux once booted */
    const char *claim_name = "sub";
    if (conf->has_jwt) {
        auth->jwt = &conf->jwt;
        claim_name = conf->jwt.principal_claim;
        if (conf->jwt.hmac_secret != NULL) {
            cjose_err cerr = {0};
            auth->hmac_key =
                cjose_jwk_create_oct_spec((const uint8_t *)conf->jwt.hmac_secret, strlen(conf->jwt.hmac_secret), &cerr);
            if (auth->hmac_key == NULL)
                sg_oom(); /* an oct key from bytes fails only when memory does */
        }
        if (conf->jwt.jwks_file != NULL || conf->jwt.jwks_url.text != NULL) {
            auth->keys = sg_keysource_create(&conf->jwt, err, errlen);
            if (auth->keys == NULL) {
                sg_auth_destroy(auth);
                return NULL;
            }
        }
    }
    auth->api_keys = sg_calloc(conf->n_api_keys ? conf->n_api_keys : 1, sizeof(*auth->api_keys));
    for (size_t i = 0; i < conf->n_api_keys; i++) {
        const sg_api_key_conf_t *key = &conf->api_keys[i];
        json_t *claims = json_object();
        json_object_set_new(claims, claim_name, json_string(key->name));
        sg_principal_t *principal = principal_new(key->name, claims, 0, true);
        principal_set_scopes(principal, (const char *const *)key->scopes, key->n_scopes);
        memcpy(auth->api_keys[i].sha256, key->sha256, 32);
        auth->api_keys[i].principal = principal;
        auth->n_api_keys++;
    }
    return auth;
}

void sg_auth_destroy(sg_auth_t *auth)
{
    if (auth == NULL)
        return;
    sg_keysource_destroy(auth->keys);
    if (auth->hmac_key != NULL)
        cjose_jwk_release(auth->hmac_key);
    for (size_t i = 0; i < auth->n_api_keys; i++)
        sg_principal_release(auth->api_keys[i].principal);
    free(auth->api_keys);
    for (size_t i = 0; i < CACHE_SHARDS; i++) {
        for (size_t j = 0; j < CACHE_WAYS; j++) {
            sg_principal_release(auth->shards[i].entries[j].principal);
            free(auth->shards[i].entries[j].token);
        }
        pthread_mutex_destroy(&auth->shards[i].lock);
    }
    free(auth->shards);
    free(auth);
}

bool sg_auth_keys_ready(sg_auth_t *auth)
{
    if (auth->keys == NULL)
        return true;
    sg_keyset_t *keyset = sg_keysource_acquire(auth->keys);
    sg_keyset_release(keyset);
    return keyset != NULL;
}

void sg_auth_stats(sg_auth_t *auth, sg_auth_stats_t *stats)
{
    memset(stats, 0, sizeof(*stats));
    stats->verified = atomic_load(&auth->verified);
    for (size_t i = 0; i < CACHE_SHARDS; i++) {
        pthread_mutex_lock(&auth->shards[i].lock);
        stats->cache_hits += auth->shards[i].hits;
        pthread_mutex_unlock(&auth->shards[i].lock);
    }
    stats->refused = atomic_load(&auth->refused);
    if (auth->keys != NULL) {
        sg_keysource_counts(auth->keys, &stats->jwks_fetches, &stats->jwks_failures);
        stats->jwks_generation = sg_keysource_generation(auth->keys);
    }
}
