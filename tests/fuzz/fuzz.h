/*
 * What the libFuzzer targets share: the entry point's declaration and CHECK, which turns a broken
 * property into a finding (abort) in every build type (assert() would vanish with NDEBUG).
 */
#ifndef SG_FUZZ_H
#define SG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            abort();                                                                                                               \
    } while (0)

#endif
