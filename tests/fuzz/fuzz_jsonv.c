/*
 * fuzz_jsonv: the allocation-free JSON validator (bridge/codec/jsonv.c), which the materializer
 * runs on every table record, against Jansson, the parser the rest of the gateway uses: both
 * accept and refuse the same texts (Jansson alone refuses numbers it cannot hold: an integer
 * beyond int64 or a real beyond a double), and a refusal's offset lies within the input. A raw
 * NUL byte is never JSON (not whitespace, not allowed in a string): the validator refuses it at
 * or before the first one (just after it when it follows a backslash: an escape is judged whole);
 * Jansson's reader skips such bytes, so it is not asked.
 * Inputs stay under 1026 bytes (tests/fuzz/run), the shortest valid text nested deeper than the
 * validator's SG_JSONV_MAX_DEPTH (512), which Jansson (2048) would accept.
 */
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "sg_jsonv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = SIZE_MAX;
    int ours = sg_jsonv_check(data, size, &at);
    CHECK(ours ? at == SIZE_MAX : at <= size);
    const uint8_t *nul = memchr(data, 0, size);
    if (nul != NULL) {
        CHECK(!ours && at <= (size_t)(nul - data) + 1);
        return 0;
    }
    json_error_t error;
    json_t *parsed = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    int theirs = parsed != NULL;
    json_decref(parsed);
    if (ours && !theirs)
        CHECK(strstr(error.text, "too big") != NULL || strstr(error.text, "overflow") != NULL);
    else
        CHECK(ours == theirs);
    return 0;
}
