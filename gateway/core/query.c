/*
 * See query.h.
 */
#include "query.h"

#include <stdlib.h>
#include <string.h>

#include "sg_path.h"

void sg_query_values_free(sg_query_value_t *values, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        free(values[i].value);
        values[i].value = NULL;
        values[i].len = 0;
    }
}

static sg_query_status_t fail(sg_query_status_t status, sg_query_value_t *values, size_t n)
{
    sg_query_values_free(values, n);
    return status;
}

sg_query_status_t sg_query_parse(const char *query, size_t len, const char *const *names, size_t n, sg_query_value_t *values,
                                 size_t *bad, size_t *bad_len)
{
    memset(values, 0, n * sizeof(*values));
    const char *at = query, *end = query + len;
    while (at < end) {
        const char *amp = memchr(at, '&', (size_t)(end - at));
        const char *stop = amp != NULL ? amp : end;
        const char *eq = memchr(at, '=', (size_t)(stop - at));
        size_t name_len = (size_t)((eq != NULL ? eq : stop) - at);
        if (name_len > 0) {
            size_t which = n;
            for (size_t i = 0; i < n && which == n; ++i)
                if (strlen(names[i]) == name_len && memcmp(names[i], at, name_len) == 0)
                    which = i;
            if (which == n) {
                *bad = (size_t)(at - query);
                *bad_len = name_len;
                return fail(SG_QUERY_UNKNOWN, values, n);
            }
            *bad = which;
            if (values[which].value != NULL)
                return fail(SG_QUERY_TWICE, values, n);
            const char *value = eq != NULL ? eq + 1 : stop;
            values[which].value = sg_path_decode(value, (size_t)(stop - value), &values[which].len);
            if (values[which].value == NULL)
                return fail(SG_QUERY_BAD_ENCODING, values, n);
        }
        at = stop + 1;
    }
    return SG_QUERY_OK;
}
