/*
 * Route lookup. See router.h for the precedence rule; ties between templates of the same
 * specificity but different shapes ("/a/{x}/c" vs "/a/b/{y}") go to the one declared first.
 */
#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "sg_base.h"

typedef struct st_sg_router_entry_t {
    const char *method;
    size_t index; /* what sg_router_add was given: conf->routes / conf->queries index, or the caller's id */
    int is_query;
    sg_path_template_t *tmpl;
    size_t n_literals;
    size_t shape;                      /* index of the first entry of the same shape: entries of one shape share it */
    char allow[SG_ROUTER_ALLOW_BYTES]; /* the Allow list of the entry's shape, as a lookup reports it (rebuilt by each add) */
} sg_router_entry_t;

struct st_sg_router_t {
    sg_router_entry_t *entries;
    size_t n_entries;
    int with_options;
};

sg_router_t *sg_router_create_empty(int with_options)
{
    sg_router_t *router = sg_calloc(1, sizeof(*router));
    router->with_options = with_options;
    return router;
}

/* Appends what fits of `text` (the list stays NUL-terminated, truncated as snprintf would). */
static size_t append_text(char *allow, size_t size, size_t len, const char *text, size_t text_len)
{
    size_t room = size - 1 - len;
    if (text_len > room)
        text_len = room;
    memcpy(allow + len, text, text_len);
    allow[len + text_len] = '\0';
    return len + text_len;
}

static void append_method(char *allow, size_t size, const char *method)
{
    size_t len = strlen(allow), mlen = strlen(method);
    for (const char *item = allow; *item != '\0';) { /* listed already? whole words: not CHECKOUT in UNCHECKOUT */
        size_t ilen = strcspn(item, ",");
        if (ilen == mlen && memcmp(item, method, mlen) == 0)
            return;
        item += ilen;
        if (*item == ',')
            item += item[1] == ' ' ? 2 : 1; /* ", ", or a list cut right after its comma */
    }
    if (len > 0)
        len = append_text(allow, size, len, ", ", 2);
    append_text(allow, size, len, method, strlen(method));
}

/* The Allow list of one shape: every method of its entries in the order added, then OPTIONS. Made
 * when the router is built, not on each lookup (it was ~330 instructions of every routed request). */
static void build_allow(sg_router_t *router, size_t shape, char *allow, size_t size)
{
    allow[0] = '\0';
    for (size_t i = 0; i < router->n_entries; ++i)
        if (router->entries[i].shape == shape)
            append_method(allow, size, router->entries[i].method);
    if (router->with_options)
        append_method(allow, size, "OPTIONS");
}

int sg_router_add(sg_router_t *router, const char *method, const char *tmpl, size_t index, int is_query, char *err, size_t errlen)
{
    sg_path_template_t *parsed = sg_path_template_parse(tmpl, err, errlen);
    if (parsed == NULL)
        return -1;
    router->entries = sg_reallocarray(router->entries, router->n_entries + 1, sizeof(*router->entries));
    size_t added = router->n_entries++, shape = added;
    for (size_t i = 0; i < added && shape == added; ++i)
        if (sg_path_template_same_shape(router->entries[i].tmpl, parsed))
            shape = router->entries[i].shape;
    router->entries[added] = (sg_router_entry_t){.method = method,
                                                 .index = index,
                                                 .is_query = is_query,
                                                 .tmpl = parsed,
                                                 .n_literals = sg_path_template_n_literals(parsed),
                                                 .shape = shape};
    char allow[sizeof(router->entries[added].allow)];
    build_allow(router, shape, allow, sizeof(allow));
    for (size_t i = 0; i < router->n_entries; ++i)
        if (router->entries[i].shape == shape)
            memcpy(router->entries[i].allow, allow, sizeof(allow));
    return 0;
}

sg_router_t *sg_router_create(const sg_conf_t *conf, char *err, size_t errlen)
{
    sg_router_t *router = sg_router_create_empty(1);
    for (size_t i = 0; i < conf->n_routes; ++i)
        if (sg_router_add(router, conf->routes[i].method, conf->routes[i].path, i, 0, err, errlen) != 0)
            goto fail;
    for (size_t i = 0; i < conf->n_queries; ++i)
        if (sg_router_add(router, "GET", conf->queries[i].path, i, 1, err, errlen) != 0)
            goto fail;
    return router;
fail:
    sg_router_destroy(router);
    return NULL;
}

void sg_router_destroy(sg_router_t *router)
{
    if (router == NULL)
        return;
    for (size_t i = 0; i < router->n_entries; ++i)
        sg_path_template_destroy(router->entries[i].tmpl);
    free(router->entries);
    free(router);
}

sg_router_status_t sg_router_lookup(const sg_router_t *router, const char *method, size_t method_len, const char *path,
                                    size_t path_len, sg_router_result_t *result)
{
    memset(result, 0, sizeof(*result));
    const sg_router_entry_t *best = NULL;
    sg_path_match_t best_match = {0}; /* kept: the route found is most often the best entry itself */
    for (size_t i = 0; i < router->n_entries; ++i) {
        const sg_router_entry_t *entry = &router->entries[i];
        if (best != NULL && entry->n_literals <= best->n_literals)
            continue;
        sg_path_match_t probe;
        int matched = sg_path_template_match(entry->tmpl, path, path_len, &probe);
        if (matched < 0) {
            sg_path_match_dispose(&best_match);
            return result->status = SG_ROUTER_BAD_PATH;
        }
        if (matched > 0) {
            sg_path_match_dispose(&best_match);
            best_match = probe;
            best = entry;
        }
    }
    if (best == NULL)
        return result->status = SG_ROUTER_NOT_FOUND;

    /* The winning shape's routes (its Allow list made when it was added): one of them may match the method. */
    const sg_router_entry_t *found = NULL;
    for (size_t i = 0; i < router->n_entries; ++i) {
        const sg_router_entry_t *entry = &router->entries[i];
        if (entry->shape == best->shape && strlen(entry->method) == method_len && memcmp(entry->method, method, method_len) == 0)
            found = entry;
    }
    memcpy(result->allow, best->allow, sizeof(result->allow));
    if (found == NULL) {
        sg_path_match_dispose(&best_match);
        return result->status = SG_ROUTER_METHOD_NOT_ALLOWED;
    }
    result->route = found->index;
    result->is_query = found->is_query;
    if (found == best) {
        result->match = best_match;
        return result->status = SG_ROUTER_FOUND;
    }
    sg_path_match_dispose(&best_match);
    if (sg_path_template_match(found->tmpl, path, path_len, &result->match) <= 0)
        return result->status = SG_ROUTER_BAD_PATH; /* same shape matched above; defensive only */
    return result->status = SG_ROUTER_FOUND;
}
