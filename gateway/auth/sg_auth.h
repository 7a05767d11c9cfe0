/*
 * Authentication (DESIGN §6): turns a request's credential - a JWT bearer token, an X-API-Key,
 * or the sg_token cookie of an event stream - into a principal with scopes and claims, or into
 * a specific cause the gateway maps to 401 (invalid-token) or 403 (insufficient-scope).
 *
 * H2O-free: the gateway hands in the header values it read. Signatures are checked by cjose
 * (on OpenSSL); this module only decides which key and algorithm may be used, which cjose 0.6
 * does not do itself, and checks the claims.
 *
 * Threads: sg_auth_create/destroy on one thread while no other call is running. Everything
 * else may be called from any number of threads at once (the gateway's event loops): verified
 * tokens are cached, bytes and all, in a sharded table whose locks are never held while a
 * signature is checked, and the key set is swapped by the module's own refresh thread (jwks_url or
 * jwks_file), which does all network and file I/O - a verify never blocks on it.
 */
#ifndef SG_AUTH_H
#define SG_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sg_conf.h"

#define SG_AUTH_MAX_TOKEN 8192       /* bytes of a bearer token; longer ones are SG_AUTH_TOO_LARGE */
#define SG_AUTH_MAX_API_KEY 256      /* bytes of an X-API-Key value */
#define SG_AUTH_MAX_PRINCIPAL 256    /* bytes of a principal name taken from a token */
#define SG_AUTH_COOKIE "sg_token"    /* cookie carrying a bearer token for event streams */
#define SG_AUTH_CACHE_ENTRIES 4096   /* verified tokens kept (each holds its bytes and claims: <= 8 KiB each) */
#define SG_AUTH_MAX_JWKS (256 << 10) /* bytes of a JWK Set document */
#define SG_AUTH_MAX_KEYS 64          /* keys used from one JWK Set */

typedef struct st_sg_auth_t sg_auth_t;
typedef struct st_sg_principal_t sg_principal_t;

/* Why a credential was refused. The gateway maps every cause but SG_AUTH_KEYS_UNAVAILABLE to
 * 401 invalid-token (SG_AUTH_MISSING_CREDENTIAL: 401 without an error code, RFC 6750 §3.1). */
typedef enum {
    SG_AUTH_OK = 0,
    SG_AUTH_MISSING_CREDENTIAL,     /* no Authorization, X-API-Key or (event streams) sg_token cookie */
    SG_AUTH_MALFORMED,              /* not a compact JWS, bad JSON, missing exp or principal claim... */
    SG_AUTH_TOO_LARGE,              /* token over SG_AUTH_MAX_TOKEN, key over SG_AUTH_MAX_API_KEY */
    SG_AUTH_ALGORITHM_NOT_ALLOWED,  /* none, an algorithm outside jwt.algorithms, or one the key is not for */
    SG_AUTH_UNKNOWN_KEY_ID,         /* no key in the set for the token's kid (a refresh is asked for) */
    SG_AUTH_BAD_SIGNATURE,          /* the signature does not verify (tampered, wrong key) */
    SG_AUTH_EXPIRED,                /* now >= exp + leeway */
    SG_AUTH_NOT_YET_VALID,          /* now + leeway < nbf, or iat in the future beyond leeway */
    SG_AUTH_WRONG_ISSUER,           /* iss is not jwt.issuer */
    SG_AUTH_WRONG_AUDIENCE,         /* aud (string or array) does not contain jwt.audience */
    SG_AUTH_UNKNOWN_API_KEY,        /* no configured key has this SHA-256 */
    SG_AUTH_UNSUPPORTED_CREDENTIAL, /* a scheme other than Bearer, or a kind of credential not configured */
    SG_AUTH_KEYS_UNAVAILABLE,       /* no key set loaded yet (jwks_url unreachable since start): 503 */
} sg_auth_cause_t;

/* A refusal: the cause and a sentence for problem+json `detail` and error_description. The
 * detail never contains the credential. */
typedef struct st_sg_auth_error_t {
    sg_auth_cause_t cause;
    char detail[192];
} sg_auth_error_t;

/* The credentials of one request as the gateway found them (NULL: header absent). All borrowed. */
typedef struct st_sg_auth_credentials_t {
    const char *authorization; /* Authorization header value */
    size_t authorization_len;
    const char *api_key; /* X-API-Key header value */
    size_t api_key_len;
    const char *cookie; /* Cookie header value: pass it only for event-stream requests */
    size_t cookie_len;
} sg_auth_credentials_t;

typedef struct st_sg_auth_stats_t {
    uint64_t verified;        /* tokens whose signature was checked and accepted */
    uint64_t cache_hits;      /* tokens answered from the cache */
    uint64_t refused;         /* credentials refused, any cause */
    uint64_t jwks_fetches;    /* key set fetches (or file reads), good or bad */
    uint64_t jwks_failures;   /* of which failed (the last good set was kept) */
    uint64_t jwks_generation; /* how many different key sets have been installed */
} sg_auth_stats_t;

/** Creates the verifier for `conf` (borrowed: it must outlive the result). Loads the key set
 * once: a jwks_file that cannot be read or holds no usable key is an error; a jwks_url that
 * fails is only logged (tokens are SG_AUTH_KEYS_UNAVAILABLE until a fetch succeeds). Starts the
 * refresh thread when there is a key set source. Returns owned, or NULL with err. */
sg_auth_t *sg_auth_create(const sg_auth_conf_t *conf, char *err, size_t errlen);

/** Stops the refresh thread and frees everything; principals still held stay valid. NULL: no-op. */
void sg_auth_destroy(sg_auth_t *auth);

/** Authenticates a request: Authorization (Bearer) or X-API-Key (both at once: SG_AUTH_MALFORMED),
 * else the sg_token cookie if `cookie` is given, else SG_AUTH_MISSING_CREDENTIAL. now_ms: wall
 * clock (sg_now_ms()). On SG_AUTH_OK *principal is owned by the caller (sg_principal_release);
 * otherwise *principal is NULL and *error says why. Any thread. */
sg_auth_cause_t sg_auth_authenticate(sg_auth_t *auth, const sg_auth_credentials_t *credentials, int64_t now_ms,
                                     sg_principal_t **principal, sg_auth_error_t *error);

/** Verifies a bearer token (the compact JWS alone, without "Bearer "). As sg_auth_authenticate. */
sg_auth_cause_t sg_auth_verify_token(sg_auth_t *auth, const char *token, size_t len, int64_t now_ms, sg_principal_t **principal,
                                     sg_auth_error_t *error);

/** Checks an API key against the configured SHA-256 hashes (constant-time compare). As above. */
sg_auth_cause_t sg_auth_verify_api_key(sg_auth_t *auth, const char *key, size_t len, sg_principal_t **principal,
                                       sg_auth_error_t *error);

/** Whether tokens can be verified now: jwt is configured with a loaded key set (or needs none).
 * For /readyz. Any thread. */
bool sg_auth_keys_ready(sg_auth_t *auth);

/** Copies the counters. Any thread. */
void sg_auth_stats(sg_auth_t *auth, sg_auth_stats_t *stats);

/* --- Principals: immutable and reference-counted; any thread may read and release them --- */

/** The principal's name: principal_claim of a token, or an API key's name. Valid while held. */
const char *sg_principal_name(const sg_principal_t *principal);
/** Whether it came from an API key (the gateway may keep "key:name" and "name" apart). */
bool sg_principal_is_api_key(const sg_principal_t *principal);
/** Whether the principal has `scope` (exact, case-sensitive). */
bool sg_principal_has_scope(const sg_principal_t *principal, const char *scope);
/** The first of `required` the principal lacks, or NULL when it has them all. */
const char *sg_principal_missing_scope(const sg_principal_t *principal, char *const *required, size_t n_required);
/** A string claim of the token (for `claim:NAME` keys), or NULL when absent or not a string. An
 * API key's principal has one claim, principal_claim, holding its name. Valid while held. */
const char *sg_principal_claim(const sg_principal_t *principal, const char *name);
/** When a token principal stops being valid (exp, ms since the epoch); 0 for API keys. */
int64_t sg_principal_expires_ms(const sg_principal_t *principal);
/** Adds a reference; returns `principal`. */
sg_principal_t *sg_principal_retain(sg_principal_t *principal);
/** Drops a reference; NULL is a no-op. */
void sg_principal_release(sg_principal_t *principal);

/* --- HTTP text helpers (pure string code, any thread) -------------------------------------- */

/** A stable short name of a cause: "expired", "bad-signature", ... */
const char *sg_auth_cause_name(sg_auth_cause_t cause);

/** SHA-256 of data into out[32]: the algorithm fetched once and a digest context kept per thread
 * (EVP_Digest with EVP_sha256() looks the algorithm up and allocates a context on every call). */
void sg_auth_sha256(const void *data, size_t len, uint8_t out[32]);

/** Writes the WWW-Authenticate value of a 401 for `cause` (RFC 6750 §3): `Bearer` for a missing
 * credential, else `Bearer error="invalid_token", error_description="DESCRIPTION"`, the
 * description reduced to the characters RFC 6750 allows. Returns the length it needs (as
 * snprintf; buf is NUL-terminated when size > 0). */
size_t sg_auth_www_authenticate(sg_auth_cause_t cause, const char *description, char *buf, size_t size);

/** The WWW-Authenticate value of a 403 insufficient-scope: `Bearer error="insufficient_scope",
 * error_description="DESCRIPTION", scope="S1 S2"` with the scopes the endpoint requires. */
size_t sg_auth_www_authenticate_scope(char *const *scopes, size_t n_scopes, const char *description, char *buf, size_t size);

/** Finds the token in an Authorization value: "Bearer" (any case), spaces, a token68. Returns 0
 * with a pointer into `value`, -1 for another scheme, -2 for a Bearer value without a valid token. */
int sg_auth_parse_bearer(const char *value, size_t len, const char **token, size_t *token_len);

/** Finds cookie `name` in a Cookie header value ("a=1; b=2"; a quoted value is unquoted).
 * Returns 0 with a pointer into `value`, or -1 when absent. */
int sg_auth_find_cookie(const char *value, size_t len, const char *name, const char **found, size_t *found_len);

#endif
