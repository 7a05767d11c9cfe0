/*
 * What the auth tests share: a temporary directory, keys made by the openssl command, and JWK
 * Sets and tokens made by auth_tokens.py (PyJWT) - independent of the code under test.
 */
#ifndef SG_TEST_AUTH_FIXTURE_H
#define SG_TEST_AUTH_FIXTURE_H

#include <jansson.h>
#include <stddef.h>

typedef struct st_fx_t {
    char dir[64];
} fx_t;

/** Makes the temporary directory; fails the test when it cannot. */
void fx_init(fx_t *fx);
/** Removes the directory and everything in it. */
void fx_cleanup(fx_t *fx);
/** DIR/name into buf. */
const char *fx_path(const fx_t *fx, const char *name, char *buf, size_t size);
/** Runs a shell command; fails the test unless it exits 0. */
void fx_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** Makes DIR/NAME.pem: kind "rsa2048", "rsa1024", "ec256" or "ec384". */
void fx_genkey(const fx_t *fx, const char *name, const char *kind);
/** Runs auth_tokens.py on `spec` (borrowed); returns the object {token name: token} (owned). */
json_t *fx_mint(const fx_t *fx, json_t *spec);
/** A token entry for fx_mint's spec: `name`, `alg`, `key` and `kid` (either may be NULL) and
 * `claims` (stolen). Returns owned. */
json_t *fx_token_spec(const char *name, const char *alg, const char *key, const char *kid, json_t *claims);
/** The token called `name` in `tokens`; fails the test when there is none. */
const char *fx_token(json_t *tokens, const char *name);
/** Writes text to DIR/name. */
void fx_write(const fx_t *fx, const char *name, const char *text);

#endif
