/* See auth_fixture.h. */
#include "auth_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

void fx_init(fx_t *fx)
{
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sg-auth-test-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        fail_msg("mkdtemp failed");
}

void fx_cleanup(fx_t *fx)
{
    if (fx->dir[0] != '\0')
        fx_run("rm -rf '%s'", fx->dir);
}

const char *fx_path(const fx_t *fx, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", fx->dir, name);
    return buf;
}

void fx_run(const char *fmt, ...)
{
    char command[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(command, sizeof(command), fmt, ap);
    va_end(ap);
    int rc = system(command);
    if (rc != 0)
        fail_msg("command failed (%d): %s", rc, command);
}

void fx_genkey(const fx_t *fx, const char *name, const char *kind)
{
    const char *options = strcmp(kind, "rsa2048") == 0   ? "-algorithm RSA -pkeyopt rsa_keygen_bits:2048"
                          : strcmp(kind, "rsa1024") == 0 ? "-algorithm RSA -pkeyopt rsa_keygen_bits:1024"
                          : strcmp(kind, "ec256") == 0   ? "-algorithm EC -pkeyopt ec_paramgen_curve:P-256"
                                                         : "-algorithm EC -pkeyopt ec_paramgen_curve:P-384";
    fx_run("openssl genpkey %s -out '%s/%s.pem' 2>/dev/null", options, fx->dir, name);
}

/* Debian's python3-jwt lives with /usr/bin/python3, which may not be the first python3 on PATH. */
static const char *python(void)
{
    const char *configured = getenv("SG_PYTHON3");
    if (configured != NULL)
        return configured;
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

json_t *fx_mint(const fx_t *fx, json_t *spec)
{
    char spec_path[128], out_path[128], script[1024];
    fx_path(fx, "spec.json", spec_path, sizeof(spec_path));
    fx_path(fx, "tokens.json", out_path, sizeof(out_path));
    const char *root = getenv("SG_SOURCE_ROOT");
    snprintf(script, sizeof(script), "%s/tests/gateway/auth_tokens.py", root != NULL ? root : ".");
    if (json_dump_file(spec, spec_path, 0) != 0)
        fail_msg("cannot write %s", spec_path);
    fx_run("%s '%s' < '%s' > '%s'", python(), script, spec_path, out_path);
    json_error_t jerr;
    json_t *tokens = json_load_file(out_path, 0, &jerr);
    if (!json_is_object(tokens))
        fail_msg("auth_tokens.py wrote no JSON object: %s", jerr.text);
    return tokens;
}

json_t *fx_token_spec(const char *name, const char *alg, const char *key, const char *kid, json_t *claims)
{
    json_t *spec = json_pack("{s:s, s:s, s:o}", "name", name, "alg", alg, "claims", claims);
    if (key != NULL)
        json_object_set_new(spec, "key", json_string(key));
    if (kid != NULL)
        json_object_set_new(spec, "kid", json_string(kid));
    return spec;
}

const char *fx_token(json_t *tokens, const char *name)
{
    const char *token = json_string_value(json_object_get(tokens, name));
    if (token == NULL)
        fail_msg("no token %s", name);
    return token;
}

void fx_write(const fx_t *fx, const char *name, const char *text)
{
    char path[128];
    FILE *f = fopen(fx_path(fx, name, path, sizeof(path)), "w");
    if (f == NULL)
        fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}
