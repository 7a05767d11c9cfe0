/*
 * Inside the auth module: the key set (keys.c), the JWKS fetch (fetch.c) and what auth.c needs
 * of them. Not for other modules.
 */
#ifndef SG_AUTH_INT_H
#define SG_AUTH_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjose/cjose.h>

#include "sg_auth.h"

#define SG_AUTH_MIN_RSA_BITS 2048

/* One verification key of a JWK Set, with what decides which tokens it may verify. */
typedef struct st_sg_jwk_t {
    char *kid;           /* NULL when the JWK has none */
    cjose_jwk_t *key;    /* read-only after the set is built: cjose's refcount is not atomic */
    cjose_jwk_kty_t kty; /* CJOSE_JWK_KTY_RSA or CJOSE_JWK_KTY_EC */
    char alg[8];         /* the JWK's own "alg", or "" when it has none */
    int curve;           /* EC: the curve's NID */
    size_t bits;         /* RSA modulus bits */
} sg_jwk_t;

/* An immutable set of keys, shared by the verifying threads through a reference count. */
typedef struct st_sg_keyset_t {
    atomic_int refs;
    uint8_t digest[32]; /* SHA-256 of the document it came from: an unchanged document is not swapped in */
    size_t n_keys;
    sg_jwk_t keys[];
} sg_keyset_t;

typedef enum {
    SG_JWK_FOUND = 0,
    SG_JWK_NONE,      /* no key with that kid (or, without a kid, none for the algorithm) */
    SG_JWK_AMBIGUOUS, /* no kid and several keys fit */
    SG_JWK_MISMATCH,  /* the kid names a key of another type, curve or algorithm */
} sg_key_lookup_t;

/** Parses a JWK Set document. Keys that are not for signatures, of unsupported types, RSA under
 * 2048 bits or that cjose refuses are skipped (and logged); none left is an error. Returns owned
 * (refs = 1), or NULL with err. */
sg_keyset_t *sg_keyset_parse(const char *json, size_t len, char *err, size_t errlen);
void sg_keyset_release(sg_keyset_t *keyset);

/** Finds the key for a token with `kid` (NULL: none) and JWS `alg` (an allowed asymmetric one). */
sg_key_lookup_t sg_keyset_find(const sg_keyset_t *keyset, const char *kid, const char *alg, const sg_jwk_t **found);

/* Where the key set comes from (jwks_file or jwks_url), the current set, and the thread that
 * refreshes it. */
typedef struct st_sg_keysource_t sg_keysource_t;

/** Loads the set once (a file that fails is an error; a URL that fails is logged) and starts the
 * refresh thread. jwt is borrowed. Returns owned, or NULL with err. */
sg_keysource_t *sg_keysource_create(const sg_jwt_conf_t *jwt, char *err, size_t errlen);
void sg_keysource_destroy(sg_keysource_t *source);
/** The current set with a reference (sg_keyset_release), or NULL before any has loaded. Any thread. */
sg_keyset_t *sg_keysource_acquire(sg_keysource_t *source);
/** Changes whenever a different set is installed. Any thread, no lock. */
uint64_t sg_keysource_generation(sg_keysource_t *source);
/** Asks for a fetch now (an unknown kid): at most one per jwks_min_refresh, never blocks. Any thread. */
void sg_keysource_want_refresh(sg_keysource_t *source);
void sg_keysource_counts(sg_keysource_t *source, uint64_t *fetches, uint64_t *failures);

/** The curve NID ES256/384/512 needs, and the signature length of an algorithm for a key
 * (RS/PS: the modulus bytes; ES: twice the coordinate; HS: the digest). */
int sg_auth_alg_curve(const char *alg);
size_t sg_auth_signature_len(const char *alg, size_t rsa_bits);

/* sg_auth_sha256: in sg_auth.h (the gateway's request owners use it too). */

/** Tests only: from now on every token gets the same cache hash, so the cache can tell tokens
 * apart by their bytes alone (what a collision of the real hash would need). */
void sg_auth_test_collide(sg_auth_t *auth);

/* text.c: sg_auth_parse_bearer in two steps, so that a token found in the cache (which holds
 * only tokens that passed the strict compact-JWS parse) is not scanned byte by byte again. */
/** The token after "Bearer": 0 with a pointer into value, -1 another scheme, -2 no token. */
int sg_auth_bearer_span(const char *value, size_t len, const char **token, size_t *token_len);
/** Whether token[0..len) is an RFC 7235 token68 (what a Bearer token must be). */
bool sg_auth_is_token68(const char *token, size_t len);

/** GETs an http:// or https:// URL with one deadline over resolving, connecting, the TLS
 * handshake (certificates checked against the system store plus ca_file, if any, and the host
 * name) and reading; only a 200 with a body of at most max_bytes is a success. Blocking: for the
 * refresh thread only. Returns 0 with *body owned (NUL-terminated), or -1 with err. */
int sg_auth_http_get(const sg_url_t *url, const char *ca_file, int64_t timeout_ms, size_t max_bytes, char **body, size_t *body_len,
                     char *err, size_t errlen);

#endif
