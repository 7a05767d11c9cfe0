/*
 * libFuzzer target for what clients hand the table reads: consistency tokens (Consistency-Token,
 * ?token= and Last-Event-ID are all tokens) and scan pages (?prefix=, ?from=, ?to=, ?limit=,
 * ?cursor=). queries/token.c and queries/table.c are compiled into the target so that they are
 * instrumented; the scans run against a small RocksDB table made once in a temp dir. The first
 * input byte picks the mode:
 *
 *   even: the rest is a token text. Beyond "no crash", the property the strict decoder exists
 *     for: any input it accepts is exactly the canonical text of the decoded token, and that token
 *     behaves (dup, self-merge and self-cover leave it unchanged); every refusal says why.
 *   odd: the rest is LIMIT(1 byte) PREFIX \0 FROM \0 TO \0 CURSOR (an empty field is absent). A
 *     refused scan says why; an accepted one returns at most `limit` rows, each in the range and
 *     after the cursor's key, in key order; its next cursor, fed back, continues after the last
 *     row.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "sg_table.h"
#include "sg_token.h"

/* --- tokens ---------------------------------------------------------------------------------- */

static char *fuzz_encode(const sg_token_t *token, size_t *len)
{
    *len = sg_token_encode(token, NULL, 0);
    char *text = malloc(*len + 1);
    CHECK(text != NULL);
    CHECK(sg_token_encode(token, text, *len + 1) == *len);
    return text;
}

static void fuzz_token(const uint8_t *data, size_t size)
{
    char err[256];
    err[0] = '\0';
    sg_token_t *token = sg_token_decode((const char *)data, size, err, sizeof(err));
    if (token == NULL) {
        CHECK(err[0] != '\0'); /* every rejection must say why */
        return;
    }
    size_t len;
    char *text = fuzz_encode(token, &len);
    CHECK(len == size && memcmp(text, data, size) == 0);

    sg_token_t *copy = sg_token_dup(token);
    CHECK(sg_token_merge(copy, token) == 0 && sg_token_covers(copy, token, NULL, NULL));
    size_t copy_len;
    char *copy_text = fuzz_encode(copy, &copy_len);
    CHECK(copy_len == len && memcmp(copy_text, text, len) == 0);

    free(copy_text);
    free(text);
    sg_token_destroy(copy);
    sg_token_destroy(token);
}

/* --- scans ------------------------------------------------------------------------------------ */

static sg_tables_t *tables;
static char tables_dir[] = "/tmp/sg-fuzz-queries-XXXXXX";

static void cleanup(void)
{
    sg_tables_close(tables);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tables_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tables_dir);
}

/* One table of keys k00..k99 and a few odd ones (empty-looking, binary, long). */
static void init_once(void)
{
    if (tables != NULL)
        return;
    char err[256];
    CHECK(mkdtemp(tables_dir) != NULL);
    const char *const names[] = {"t"};
    tables = sg_tables_open(tables_dir, names, 1, err, sizeof(err));
    CHECK(tables != NULL);
    sg_table_batch_t *batch = sg_table_batch_new(tables, "t");
    int64_t offset = 0;
    for (int i = 0; i < 100; ++i) {
        char key[8];
        snprintf(key, sizeof(key), "k%02d", i);
        CHECK(sg_table_batch_put(batch, "t.topic", 0, offset++, 1000 + i, key, 3, "{\"v\":1}", 7, err, sizeof(err)) == 0);
    }
    static const char binary[] = {'k', 0, 1, (char)0xff};
    char longest[SG_TABLE_MAX_KEY];
    memset(longest, 'z', sizeof(longest));
    CHECK(sg_table_batch_put(batch, "t.topic", 0, offset++, 5000, binary, sizeof(binary), "2", 1, err, sizeof(err)) == 0);
    CHECK(sg_table_batch_put(batch, "t.topic", 0, offset++, 5001, longest, sizeof(longest), "3", 1, err, sizeof(err)) == 0);
    CHECK(sg_table_batch_commit(batch, err, sizeof(err)) == 0);
    sg_table_batch_destroy(batch);
    atexit(cleanup);
}

typedef struct {
    const sg_table_scan_t *scan;
    const uint8_t *after; /* rows must come after this key (the cursor's), or NULL */
    size_t after_len;
    uint8_t *last; /* the last row's key (owned) */
    size_t last_len;
    size_t rows;
} scan_check_t;

static int compare(const void *a, size_t a_len, const void *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    return c != 0 ? c : (a_len > b_len) - (a_len < b_len);
}

static int on_row(void *arg, const void *key, size_t keylen, const void *value, size_t valuelen, const sg_table_version_t *version)
{
    scan_check_t *check = arg;
    const sg_table_scan_t *scan = check->scan;
    CHECK(++check->rows <= scan->limit);
    if (scan->prefix != NULL)
        CHECK(keylen >= scan->prefix_len && memcmp(key, scan->prefix, scan->prefix_len) == 0);
    if (scan->from != NULL)
        CHECK(compare(key, keylen, scan->from, scan->from_len) >= 0);
    if (scan->to != NULL)
        CHECK(compare(key, keylen, scan->to, scan->to_len) < 0);
    if (check->after != NULL)
        CHECK(compare(key, keylen, check->after, check->after_len) > 0);
    if (check->last != NULL)
        CHECK(compare(key, keylen, check->last, check->last_len) > 0); /* in key order */
    free(check->last);
    check->last = malloc(keylen + 1);
    CHECK(check->last != NULL);
    memcpy(check->last, key, keylen);
    check->last_len = keylen;
    return 0;
}

/* Runs one page; returns its next cursor (owned) or NULL. */
static char *scan_page(const sg_table_scan_t *scan, const uint8_t *after, size_t after_len, uint8_t **last, size_t *last_len)
{
    char err[256];
    err[0] = '\0';
    char *next = NULL;
    scan_check_t check = {.scan = scan, .after = after, .after_len = after_len};
    int rows = sg_tables_scan(tables, "t", scan, on_row, &check, &next, NULL, err, sizeof(err));
    if (rows < 0) {
        CHECK(err[0] != '\0' && next == NULL);
        free(check.last);
        return NULL;
    }
    CHECK((size_t)rows == check.rows);
    *last = check.last;
    *last_len = check.last_len;
    return next;
}

static void fuzz_scan(const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    size_t limit = data[0] % 20 + 1; /* small pages, so that cursors come back */
    const uint8_t *at = data + 1, *end = data + size;
    const uint8_t *field[4] = {NULL};
    size_t field_len[4] = {0};
    for (int i = 0; i < 4 && at <= end; ++i) {
        const uint8_t *nul = i < 3 ? memchr(at, 0, (size_t)(end - at)) : NULL;
        const uint8_t *stop = nul != NULL ? nul : end;
        if (stop > at) {
            field[i] = at;
            field_len[i] = (size_t)(stop - at);
        }
        at = stop + 1;
    }
    char *cursor = NULL;
    if (field[3] != NULL) {
        cursor = malloc(field_len[3] + 1);
        CHECK(cursor != NULL);
        memcpy(cursor, field[3], field_len[3]);
        cursor[field_len[3]] = '\0';
    }
    sg_table_scan_t scan = {.prefix = field[0],
                            .prefix_len = field_len[0],
                            .from = field[1],
                            .from_len = field_len[1],
                            .to = field[2],
                            .to_len = field_len[2],
                            .limit = limit,
                            .cursor = cursor};
    uint8_t *last = NULL;
    size_t last_len = 0;
    char *next = scan_page(&scan, NULL, 0, &last, &last_len);
    if (next != NULL && last != NULL) {
        /* The next page continues strictly after the last row of this one. */
        scan.cursor = next;
        uint8_t *last2 = NULL;
        size_t last2_len = 0;
        char *next2 = scan_page(&scan, last, last_len, &last2, &last2_len);
        free(next2);
        free(last2);
    }
    free(next);
    free(last);
    free(cursor);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0) {
        fuzz_token(data + 1, size - 1);
    } else {
        init_once();
        fuzz_scan(data + 1, size - 1);
    }
    return 0;
}
