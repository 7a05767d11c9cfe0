/*
 * libFuzzer target for sg_token_decode (built only with clang; see meson.build).
 *
 * Beyond "no crash", it checks the property the strict decoder exists for: any input it accepts
 * is exactly the canonical text of the decoded token, and that token behaves (dup, self-merge and
 * self-cover leave it unchanged).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sg_token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzz_encode(const sg_token_t *token, size_t *len)
{
    *len = sg_token_encode(token, NULL, 0);
    char *text = malloc(*len + 1);
    if (text == NULL)
        abort();
    if (sg_token_encode(token, text, *len + 1) != *len)
        abort();
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    err[0] = '\0';
    sg_token_t *token = sg_token_decode((const char *)data, size, err, sizeof(err));
    if (token == NULL) {
        if (err[0] == '\0') /* every rejection must say why */
            abort();
        return 0;
    }
    size_t len;
    char *text = fuzz_encode(token, &len);
    if (len != size || memcmp(text, data, size) != 0)
        abort();

    sg_token_t *copy = sg_token_dup(token);
    if (sg_token_merge(copy, token) != 0 || !sg_token_covers(copy, token, NULL, NULL))
        abort();
    size_t copy_len;
    char *copy_text = fuzz_encode(copy, &copy_len);
    if (copy_len != len || memcmp(copy_text, text, len) != 0)
        abort();

    free(copy_text);
    free(text);
    sg_token_destroy(copy);
    sg_token_destroy(token);
    return 0;
}
