/*
 * The key set: JWK Set documents parsed into cjose keys, each with what decides which tokens it
 * may verify, and the key source that keeps the current set fresh from jwks_file or jwks_url.
 *
 * cjose 0.6.2 does not check a key against the token's algorithm before using it: given an RSA
 * key and "alg": "HS256" it computes the HMAC with the RSA key's internal structure as the
 * secret, and it verifies ES256 with whatever curve the key has. So every key here carries its
 * type, curve, size and optional "alg", sg_keyset_find returns only a key that fits, and HMAC
 * secrets never come from a key set at all (auth.c uses jwt.hmac_secret alone for HS*).
 *
 * The source owns one refresh thread that does all file and network I/O. Verifying threads take
 * a reference to the current set under a mutex held for a pointer copy and an increment; the
 * thread builds a new set off to the side and swaps it in the same way, so no verify ever waits
 * for a fetch, and a failed fetch leaves the last good set in place.
 */
#include "auth_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include "sg_base.h"
#include "sg_log.h"

/* ------------------------------------------------------------------------------------------ */
/* Algorithms and hashing                                                                     */

int sg_auth_alg_curve(const char *alg)
{
    if (strcmp(alg, "ES256") == 0)
        return NID_X9_62_prime256v1;
    if (strcmp(alg, "ES384") == 0)
        return NID_secp384r1;
    if (strcmp(alg, "ES512") == 0)
        return NID_secp521r1;
    return 0;
}

size_t sg_auth_signature_len(const char *alg, size_t rsa_bits)
{
    const char *bits = alg + 2;
    switch (alg[0]) {
    case 'R':
    case 'P': return (rsa_bits + 7) / 8;
    case 'E': return strcmp(bits, "256") == 0 ? 64 : strcmp(bits, "384") == 0 ? 96 : 132; /* P-521: 2 x 66 */
    case 'H': return strcmp(bits, "256") == 0 ? 32 : strcmp(bits, "384") == 0 ? 48 : 64;
    default: return 0;
    }
}

/* Fetched once: a one-shot digest with EVP_sha256() looks the algorithm up on every call, which
 * costs more than hashing a whole token. The digest context is one per thread, kept (freed when
 * the thread exits): EVP_Digest would allocate, initialise and free one per call (every
 * authenticated request hashes its token to look it up in the cache). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static pthread_key_t sha256_ctx_key;
static bool sha256_ctx_key_ok;

static void sha256_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    sha256_ctx_key_ok = pthread_key_create(&sha256_ctx_key, sha256_ctx_free) == 0;
}

void sg_auth_sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned int out_len = 32;
    if (pthread_once(&sha256_once, sha256_fetch) != 0 || sha256_md == NULL)
        sg_oom();
    EVP_MD_CTX *ctx = sha256_ctx_key_ok ? pthread_getspecific(sha256_ctx_key) : NULL;
    if (ctx == NULL) {
        if (!sha256_ctx_key_ok) {
            if (EVP_Digest(data, len, out, &out_len, sha256_md, NULL) != 1)
                sg_oom(); /* hashing memory fails only when OpenSSL cannot allocate */
            return;
        }
        if ((ctx = EVP_MD_CTX_new()) == NULL)
            sg_oom();
        if (pthread_setspecific(sha256_ctx_key, ctx) != 0) {
            EVP_MD_CTX_free(ctx);
            sg_oom();
        }
    }
    if (EVP_DigestInit_ex2(ctx, sha256_md, NULL) != 1 || EVP_DigestUpdate(ctx, data, len) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &out_len) != 1)
        sg_oom(); /* hashing memory fails only when OpenSSL cannot allocate */
}

/* ------------------------------------------------------------------------------------------ */
/* Key sets                                                                                   */

static bool alg_fits_kty(const char *alg, cjose_jwk_kty_t kty)
{
    if (alg[0] == 'R' || alg[0] == 'P')
        return kty == CJOSE_JWK_KTY_RSA;
    if (alg[0] == 'E')
        return kty == CJOSE_JWK_KTY_EC;
    return false;
}

static bool known_asymmetric_alg(const char *alg)
{
    static const char *const algs[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"};
    for (size_t i = 0; i < SG_ARRAY_SIZE(algs); i++)
        if (strcmp(alg, algs[i]) == 0)
            return true;
    return false;
}

/* RFC 7518 6.2.1.2: an EC coordinate is spelled at the curve's full size, leading zero bytes
 * included. Some key-set writers drop them (one P-256 or P-384 key in 128 has such a coordinate,
 * most P-521 keys: 521 bits in 66 bytes), and cjose refuses the key with a bare "invalid
 * argument": say which coordinate and why. Returns 0, or -1 with the reason in why. */
static int ec_coordinates_check(json_t *jwk, char *why, size_t whylen)
{
    static const struct {
        const char *crv;
        size_t bytes;
    } curves[] = {{"P-256", 32}, {"P-384", 48}, {"P-521", 66}};
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    size_t bytes = 0;
    for (size_t i = 0; crv != NULL && i < SG_ARRAY_SIZE(curves); i++)
        if (strcmp(crv, curves[i].crv) == 0)
            bytes = curves[i].bytes;
    if (bytes == 0)
        return 0; /* cjose names what is wrong with the curve */
    static const char *const coordinates[] = {"x", "y"};
    for (size_t i = 0; i < SG_ARRAY_SIZE(coordinates); i++) {
        const char *text = json_string_value(json_object_get(jwk, coordinates[i]));
        if (text == NULL)
            continue;
        size_t chars = strcspn(text, "=");
        if (chars != sg_b64url_encoded_len(bytes))
            return sg_errf(why, whylen,
                           "its %s has %zu base64url characters (%zu bytes), %s needs %zu (%zu bytes, leading zero bytes "
                           "included: RFC 7518 6.2.1.2)",
                           coordinates[i], chars, chars * 3 / 4, crv, sg_b64url_encoded_len(bytes), bytes);
    }
    return 0;
}

/* Fills *out from one JWK; returns 0, or -1 with the reason it is not used in why. */
static int jwk_load(json_t *jwk, sg_jwk_t *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(jwk))
        return sg_errf(why, whylen, "not a JSON object");
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    if (kty == NULL)
        return sg_errf(why, whylen, "no kty");
    if (strcmp(kty, "RSA") == 0)
        out->kty = CJOSE_JWK_KTY_RSA;
    else if (strcmp(kty, "EC") == 0)
        out->kty = CJOSE_JWK_KTY_EC;
    else if (strcmp(kty, "oct") == 0)
        return sg_errf(why, whylen, "symmetric keys in a key set are never used (HMAC takes jwt.hmac_secret)");
    else
        return sg_errf(why, whylen, "kty \"%.16s\" is not used (RSA and EC keys verify tokens)", kty);
    json_t *use = json_object_get(jwk, "use");
    if (use != NULL && !(json_is_string(use) && strcmp(json_string_value(use), "sig") == 0))
        return sg_errf(why, whylen, "its use is not \"sig\"");
    json_t *ops = json_object_get(jwk, "key_ops");
    if (ops != NULL) {
        bool verify = false;
        size_t i;
        json_t *op;
        json_array_foreach(ops, i, op) verify = verify || (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0);
        if (!verify)
            return sg_errf(why, whylen, "its key_ops has no \"verify\"");
    }
    json_t *alg = json_object_get(jwk, "alg");
    if (alg != NULL) {
        const char *name = json_string_value(alg);
        if (name == NULL || strlen(name) >= sizeof(out->alg) || !known_asymmetric_alg(name) || !alg_fits_kty(name, out->kty))
            return sg_errf(why, whylen, "its alg is not an RS, PS or ES algorithm for a %s key", kty);
        memcpy(out->alg, name, strlen(name) + 1);
    }
    json_t *kid = json_object_get(jwk, "kid");
    if (kid != NULL && (!json_is_string(kid) || json_string_length(kid) > 256))
        return sg_errf(why, whylen, "its kid is not a string of at most 256 bytes");
    if (out->kty == CJOSE_JWK_KTY_EC && ec_coordinates_check(jwk, why, whylen) != 0)
        return -1;
    cjose_err cerr = {0};
    out->key = cjose_jwk_import_json((cjose_header_t *)jwk, &cerr);
    if (out->key == NULL)
        return sg_errf(why, whylen, "cjose refused it: %s", cerr.message != NULL ? cerr.message : "invalid key");
    out->kid = kid != NULL ? sg_strdup(json_string_value(kid)) : NULL;
    if (out->kty == CJOSE_JWK_KTY_RSA) {
        out->bits = cjose_jwk_get_keysize(out->key, &cerr);
        if (out->bits < SG_AUTH_MIN_RSA_BITS)
            return sg_errf(why, whylen, "an RSA key of %zu bits (at least %d are needed)", out->bits, SG_AUTH_MIN_RSA_BITS);
    } else {
        out->curve = (int)cjose_jwk_EC_get_curve(out->key, &cerr);
        if (out->alg[0] != '\0' && sg_auth_alg_curve(out->alg) != out->curve)
            return sg_errf(why, whylen, "its curve is not the one %s needs", out->alg);
    }
    if (json_object_get(jwk, "d") != NULL)
        sg_log_warn("auth: key set: the key %s holds a private key (\"d\"): publish public keys only",
                    out->kid != NULL ? out->kid : "without kid");
    return 0;
}

static void jwk_dispose(sg_jwk_t *jwk)
{
    free(jwk->kid);
    if (jwk->key != NULL)
        cjose_jwk_release(jwk->key);
}

sg_keyset_t *sg_keyset_parse(const char *json, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        sg_errf(err, errlen, "not JSON: %s (line %d)", jerr.text, jerr.line);
        return NULL;
    }
    json_t *keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        json_decref(doc);
        sg_errf(err, errlen, "not a JWK Set: no \"keys\" array");
        return NULL;
    }
    size_t n = json_array_size(keys);
    if (n > SG_AUTH_MAX_KEYS) {
        sg_log_warn("auth: key set: %zu keys, only the first %d are used", n, SG_AUTH_MAX_KEYS);
        n = SG_AUTH_MAX_KEYS;
    }
    sg_keyset_t *set = sg_calloc(1, sizeof(*set) + n * sizeof(set->keys[0]));
    atomic_init(&set->refs, 1);
    for (size_t i = 0; i < n; i++) {
        char why[160];
        sg_jwk_t *jwk = &set->keys[set->n_keys];
        if (jwk_load(json_array_get(keys, i), jwk, why, sizeof(why)) == 0) {
            set->n_keys++;
            continue;
        }
        const char *kid = json_string_value(json_object_get(json_array_get(keys, i), "kid"));
        sg_log_warn("auth: key set: key %zu (kid %.64s) is skipped: %s", i, kid != NULL ? kid : "-", why);
        jwk_dispose(jwk);
        memset(jwk, 0, sizeof(*jwk));
    }
    json_decref(doc);
    if (set->n_keys == 0) {
        sg_keyset_release(set);
        sg_errf(err, errlen, "no usable key (RSA of 2048 bits or more, or EC P-256/384/521, for signatures)");
        return NULL;
    }
    sg_auth_sha256(json, len, set->digest);
    return set;
}

void sg_keyset_release(sg_keyset_t *keyset)
{
    if (keyset == NULL || atomic_fetch_sub(&keyset->refs, 1) != 1)
        return;
    for (size_t i = 0; i < keyset->n_keys; i++)
        jwk_dispose(&keyset->keys[i]);
    free(keyset);
}

static bool key_fits(const sg_jwk_t *jwk, const char *alg)
{
    if (jwk->alg[0] != '\0' && strcmp(jwk->alg, alg) != 0)
        return false;
    if (!alg_fits_kty(alg, jwk->kty))
        return false;
    return jwk->kty != CJOSE_JWK_KTY_EC || sg_auth_alg_curve(alg) == jwk->curve;
}

sg_key_lookup_t sg_keyset_find(const sg_keyset_t *keyset, const char *kid, const char *alg, const sg_jwk_t **found)
{
    const sg_jwk_t *match = NULL;
    size_t fitting = 0;
    bool named = false;
    for (size_t i = 0; i < keyset->n_keys; i++) {
        const sg_jwk_t *jwk = &keyset->keys[i];
        if (kid != NULL) {
            if (jwk->kid == NULL || strcmp(jwk->kid, kid) != 0)
                continue;
            named = true;
        }
        if (!key_fits(jwk, alg))
            continue;
        if (match == NULL)
            match = jwk;
        fitting++;
    }
    if (match == NULL)
        return named ? SG_JWK_MISMATCH : SG_JWK_NONE;
    /* Without a kid a token may only pick a key when exactly one could verify it. */
    if (kid == NULL && fitting > 1)
        return SG_JWK_AMBIGUOUS;
    *found = match;
    return SG_JWK_FOUND;
}

/* ------------------------------------------------------------------------------------------ */
/* The key source and its refresh thread                                                      */

struct st_sg_keysource_t {
    const sg_jwt_conf_t *jwt;
    const char *origin;   /* the file or URL, for messages */
    pthread_mutex_t lock; /* guards every field below up to the counters */
    pthread_cond_t wake;
    sg_keyset_t *current;
    bool wanted; /* a verify met an unknown kid */
    bool stopping;
    int64_t last_fetch_ms; /* monotonic */
    unsigned failures;     /* consecutive failed fetches */
    pthread_t thread;
    bool thread_started;
    atomic_uint_fast64_t generation;
    atomic_int_fast64_t last_request_ms; /* monotonic time of the last accepted want_refresh */
    atomic_uint_fast64_t fetches, fetch_failures;
};

static int read_file(const char *path, char **doc, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return sg_errf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    char *text = sg_malloc(SG_AUTH_MAX_JWKS + 2);
    size_t got = fread(text, 1, SG_AUTH_MAX_JWKS + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed || got > SG_AUTH_MAX_JWKS) {
        free(text);
        return failed ? sg_errf(err, errlen, "cannot read %s", path)
                      : sg_errf(err, errlen, "%s is larger than %d bytes", path, SG_AUTH_MAX_JWKS);
    }
    text[got] = '\0';
    *doc = text;
    *len = got;
    return 0;
}

/* Fetches and parses the document; swaps the set in when it differs from the current one. */
static int refresh(sg_keysource_t *source, char *err, size_t errlen)
{
    char *doc = NULL;
    size_t len = 0;
    int rc = source->jwt->jwks_file != NULL
                 ? read_file(source->jwt->jwks_file, &doc, &len, err, errlen)
                 : sg_auth_http_get(&source->jwt->jwks_url, source->jwt->jwks_ca_file, source->jwt->jwks_timeout_ms,
                                    SG_AUTH_MAX_JWKS, &doc, &len, err, errlen);
    sg_keyset_t *set = rc == 0 ? sg_keyset_parse(doc, len, err, errlen) : NULL;
    free(doc);
    if (set == NULL) {
        atomic_fetch_add(&source->fetch_failures, 1);
        atomic_fetch_add(&source->fetches, 1);
        return -1;
    }
    pthread_mutex_lock(&source->lock);
    sg_keyset_t *old = source->current;
    bool same = old != NULL && memcmp(old->digest, set->digest, sizeof(set->digest)) == 0;
    if (!same)
        source->current = set;
    uint64_t generation = same ? 0 : atomic_fetch_add(&source->generation, 1) + 1;
    pthread_mutex_unlock(&source->lock);
    atomic_fetch_add(&source->fetches, 1); /* counted once the outcome is visible */
    if (same) {
        sg_keyset_release(set);
        return 0;
    }
    sg_log_info("auth: key set from %s: %zu key%s (generation %" PRIu64 ")", source->origin, set->n_keys,
                set->n_keys == 1 ? "" : "s", generation);
    sg_keyset_release(old);
    return 0;
}

/* When the next fetch is due (monotonic ms). Called with the lock held. */
static int64_t next_fetch_ms(const sg_keysource_t *source)
{
    int64_t min_gap = source->jwt->jwks_min_refresh_ms, period = source->jwt->jwks_refresh_ms;
    if (source->wanted)
        return source->last_fetch_ms + min_gap;
    if (source->failures > 0) {
        /* Retry soon, then less and less often, but never less often than the period. */
        int64_t backoff = min_gap << (source->failures < 16 ? source->failures - 1 : 15);
        return source->last_fetch_ms + (backoff < period ? backoff : period);
    }
    return source->last_fetch_ms + period;
}

static void *refresh_main(void *arg)
{
    sg_keysource_t *source = arg;
    sg_thread_name("sg-keys");
    pthread_mutex_lock(&source->lock);
    while (!source->stopping) {
        int64_t due = next_fetch_ms(source);
        if (sg_mono_ms() < due) {
            struct timespec until = {.tv_sec = due / 1000, .tv_nsec = (due % 1000) * 1000000};
            pthread_cond_timedwait(&source->wake, &source->lock, &until);
            continue;
        }
        source->wanted = false;
        bool had_keys = source->current != NULL;
        pthread_mutex_unlock(&source->lock);
        char err[256];
        int rc = refresh(source, err, sizeof(err));
        if (rc != 0)
            sg_log_warn("auth: key set from %s not loaded (%s): %s", source->origin,
                        had_keys ? "the last good one stays" : "tokens cannot be verified yet", err);
        pthread_mutex_lock(&source->lock);
        source->last_fetch_ms = sg_mono_ms();
        source->failures = rc == 0 ? 0 : source->failures + 1;
    }
    pthread_mutex_unlock(&source->lock);
    return NULL;
}

sg_keysource_t *sg_keysource_create(const sg_jwt_conf_t *jwt, char *err, size_t errlen)
{
    sg_keysource_t *source = sg_calloc(1, sizeof(*source));
    source->jwt = jwt;
    source->origin = jwt->jwks_file != NULL ? jwt->jwks_file : jwt->jwks_url.text;
    pthread_mutex_init(&source->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* the deadlines are sg_mono_ms() */
    pthread_cond_init(&source->wake, &attr);
    pthread_condattr_destroy(&attr);
    char why[256];
    if (refresh(source, why, sizeof(why)) != 0) {
        if (jwt->jwks_file != NULL) {
            sg_errf(err, errlen, "auth.jwt.jwks_file: %s", why);
            sg_keysource_destroy(source);
            return NULL;
        }
        sg_log_warn("auth: key set from %s not loaded (tokens cannot be verified until it is): %s", source->origin, why);
        source->failures = 1;
    }
    source->last_fetch_ms = sg_mono_ms();
    if (pthread_create(&source->thread, NULL, refresh_main, source) != 0) {
        sg_errf(err, errlen, "auth: cannot start the key set refresh thread: %s", strerror(errno));
        sg_keysource_destroy(source);
        return NULL;
    }
    source->thread_started = true;
    return source;
}

void sg_keysource_destroy(sg_keysource_t *source)
{
    if (source == NULL)
        return;
    if (source->thread_started) {
        pthread_mutex_lock(&source->lock);
        source->stopping = true;
        pthread_cond_signal(&source->wake);
        pthread_mutex_unlock(&source->lock);
        pthread_join(source->thread, NULL);
    }
    sg_keyset_release(source->current);
    pthread_cond_destroy(&source->wake);
    pthread_mutex_destroy(&source->lock);
    free(source);
}

sg_keyset_t *sg_keysource_acquire(sg_keysource_t *source)
{
    pthread_mutex_lock(&source->lock);
    sg_keyset_t *set = source->current;
    if (set != NULL)
        atomic_fetch_add(&set->refs, 1);
    pthread_mutex_unlock(&source->lock);
    return set;
}

uint64_t sg_keysource_generation(sg_keysource_t *source)
{
    return atomic_load(&source->generation);
}

void sg_keysource_want_refresh(sg_keysource_t *source)
{
    /* Unknown kids may arrive by the thousand (a rotation, or someone trying): only the first
     * per jwks_min_refresh takes the lock to wake the thread. */
    int64_t now = sg_mono_ms(), last = atomic_load(&source->last_request_ms);
    if (last != 0 && now - last < source->jwt->jwks_min_refresh_ms)
        return;
    if (!atomic_compare_exchange_strong(&source->last_request_ms, &last, now))
        return;
    pthread_mutex_lock(&source->lock);
    source->wanted = true;
    pthread_cond_signal(&source->wake);
    pthread_mutex_unlock(&source->lock);
}

void sg_keysource_counts(sg_keysource_t *source, uint64_t *fetches, uint64_t *failures)
{
    *fetches = atomic_load(&source->fetches);
    *failures = atomic_load(&source->fetch_failures);
}
