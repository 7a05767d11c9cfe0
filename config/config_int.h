/*
 * Private helpers shared by the config module's files (conf.c, path.c).
 *
 * Out of memory is not something a config loader or a router can recover from, so every
 * allocation in this module goes through these wrappers and a failure aborts in exactly one
 * place, sg_config_oom(). Callers never check for NULL.
 */
#ifndef SG_CONFIG_INT_H
#define SG_CONFIG_INT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn static inline void sg_config_oom(void)
{
    fputs("streamgate: out of memory\n", stderr);
    abort();
}

/** Zeroed array of n elements of `size` bytes; never NULL (n == 0 still allocates). */
static inline void *sg_config_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        sg_config_oom();
    return p;
}

/** Grows an array to n elements of `size` bytes; never NULL. */
static inline void *sg_config_realloc_array(void *p, size_t n, size_t size)
{
    if (size != 0 && n > (size_t)-1 / size)
        sg_config_oom();
    size_t bytes = n * size;
    p = realloc(p, bytes != 0 ? bytes : 1);
    if (p == NULL)
        sg_config_oom();
    return p;
}

/** NUL-terminated copy of the first len bytes of s; never NULL. */
static inline char *sg_config_strndup(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p == NULL)
        sg_config_oom();
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static inline char *sg_config_strdup(const char *s)
{
    return sg_config_strndup(s, strlen(s));
}

#endif
