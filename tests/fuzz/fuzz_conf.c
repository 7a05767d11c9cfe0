/*
 * libFuzzer target for the config parser (config/conf.c, YAML and JSON through one libyaml
 * parser) and what the gateway builds from an accepted config first (the route table). The input
 * is the config text. An accepted config must give a route table (the validator checked its
 * templates and conflicts); a refused one must say where and why ("NAME:LINE: KEY: ...").
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "router.h"
#include "sg_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    err[0] = '\0';
    sg_conf_t *conf = sg_conf_load_string("fuzz.yaml", (const char *)data, size, err, sizeof(err));
    if (conf == NULL) {
        if (strncmp(err, "fuzz.yaml", 9) != 0) /* every refusal names the file */
            abort();
        return 0;
    }
    sg_router_t *router = sg_router_create(conf, err, sizeof(err));
    if (router == NULL)
        abort();
    sg_router_destroy(router);
    sg_conf_destroy(conf);
    return 0;
}
