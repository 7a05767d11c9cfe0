/*
 * Schema compatibility by Avro schema resolution, the canonical text of a schema, and the names
 * of the compatibility levels (sg_compat.h).
 *
 * Why not Avro-C's resolver: avro_resolved_writer_new() (1.11) refuses a reader field that is
 * missing from the writer even when the field has a default ("TODO: Handle default values" in
 * resolved-writer.c), and Avro-C's schema model keeps neither defaults nor enum defaults. Adding a
 * field with a default is the canonical BACKWARD-compatible change, so the check walks the two
 * schemas' JSON here instead, following the specification's resolution rules: same primitive or a
 * promotion (int->long->float->double, string<->bytes); records by full name, each reader field
 * found in the writer (by name or alias) or defaulted; enums by name, every writer symbol known
 * to the reader (or the reader has a default symbol); fixed by name and size; arrays and maps by
 * their items; a writer union needs every branch readable, a reader union one matching branch.
 * Avro-C still validates every text first, so only valid schemas reach the walk.
 *
 * The walk is memoised per (writer, reader) pair of named definitions: a record that names the
 * record below it in ten fields, seven levels deep, is 10^7 comparisons walked naively but 7 pairs
 * memoised. A failure is always final and kept. A success may rest on the assumption that a pair
 * still being compared (a recursive type) is compatible, so successes recorded while a pair is
 * open are dropped again if that pair fails. Identical schemas are compatible without a walk.
 */
#include "sg_compat.h"

#include <avro.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sg_avro.h"
#include "sg_base.h"

#define NAME_MAX_LEN 512
#define PATH_MAX_LEN 512

typedef struct {
    json_t *doc;
    json_t *named; /* full name -> [definition, namespace inside it] */
} cschema_t;

typedef struct {
    const char *kind; /* "int", ..., "record", "enum", "fixed", "array", "map", "union" */
    const json_t *def;
    char ns[NAME_MAX_LEN];       /* namespace for names inside def */
    char fullname[NAME_MAX_LEN]; /* named types */
} tnode_t;

typedef struct st_pair_t {
    const json_t *writer, *reader;
    const struct st_pair_t *up;
} pair_t;

/* One memoised comparison; entries chain per bucket, newest first, so dropping the newest entries
 * (a failed pair's provisional successes) unlinks bucket heads. */
typedef struct {
    const json_t *writer, *reader;
    int ok;
    size_t next; /* index + 1 of the next entry in the bucket, 0 at the end */
} memo_entry_t;

#define MEMO_BUCKETS 1024

typedef struct {
    memo_entry_t *entries;
    size_t n, cap;
    size_t buckets[MEMO_BUCKETS]; /* index + 1 of the newest entry, 0 when empty */
} memo_t;

typedef struct {
    const cschema_t *w, *r;
    memo_t memo;
    char *err;
    size_t errlen;
    int quiet;           /* probing reader union branches: no message */
    unsigned long steps; /* comparisons made; bounded, since unions nested in records multiply */
    int exhausted;
} walk_t;

/* Unions of records of unions... make the pairwise walk exponential in the nesting (a 5 KB
 * schema took hours): past this many comparisons the check gives up, as incompatible. */
#define SG_COMPAT_MAX_STEPS 200000UL

static const char *const primitives[] = {"null", "boolean", "int", "long", "float", "double", "bytes", "string", NULL};

static const char *primitive(const char *name)
{
    for (size_t i = 0; primitives[i] != NULL; i++)
        if (strcmp(primitives[i], name) == 0)
            return primitives[i];
    return NULL;
}

/* The full name and inner namespace of a named definition seen in namespace `ns`. */
static void names_of(const json_t *def, const char *ns, char *fullname, char *inner_ns)
{
    const char *name = json_string_value(json_object_get(def, "name"));
    if (name == NULL)
        name = "";
    const char *dot = strrchr(name, '.');
    if (dot != NULL) {
        snprintf(fullname, NAME_MAX_LEN, "%s", name);
        snprintf(inner_ns, NAME_MAX_LEN, "%.*s", (int)(dot - name), name);
        return;
    }
    const char *own = json_string_value(json_object_get(def, "namespace"));
    snprintf(inner_ns, NAME_MAX_LEN, "%s", own != NULL ? own : ns);
    if (inner_ns[0] != '\0')
        snprintf(fullname, NAME_MAX_LEN, "%s.%s", inner_ns, name);
    else
        snprintf(fullname, NAME_MAX_LEN, "%s", name);
}

static void collect(json_t *named, json_t *def, const char *ns, int depth)
{
    if (depth > SG_AVRO_MAX_DEPTH)
        return;
    if (json_is_array(def)) {
        size_t i;
        json_t *branch;
        json_array_foreach(def, i, branch) collect(named, branch, ns, depth + 1);
        return;
    }
    if (!json_is_object(def))
        return;
    json_t *type = json_object_get(def, "type");
    if (!json_is_string(type)) {
        collect(named, type, ns, depth + 1);
        return;
    }
    const char *kind = json_string_value(type);
    if (strcmp(kind, "record") == 0 || strcmp(kind, "error") == 0 || strcmp(kind, "enum") == 0 || strcmp(kind, "fixed") == 0) {
        char fullname[NAME_MAX_LEN], inner[NAME_MAX_LEN];
        names_of(def, ns, fullname, inner);
        json_t *entry = json_pack("[O,s]", def, inner);
        if (entry == NULL)
            sg_oom();
        json_object_set_new(named, fullname, entry);
        size_t i;
        json_t *field;
        json_array_foreach(json_object_get(def, "fields"), i, field)
            collect(named, json_object_get(field, "type"), inner, depth + 1);
    } else if (strcmp(kind, "array") == 0) {
        collect(named, json_object_get(def, "items"), ns, depth + 1);
    } else if (strcmp(kind, "map") == 0) {
        collect(named, json_object_get(def, "values"), ns, depth + 1);
    }
}

/* Parses and validates (through Avro-C) a schema text. Returns 0 or -1 with err. */
static int cschema_parse(cschema_t *cs, const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    cs->doc = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    cs->named = NULL;
    if (cs->doc == NULL) {
        sg_errf(err, errlen, "the schema is not JSON: %s (line %d)", jerr.text, jerr.line);
        return -1;
    }
    if (sg_avro_schema_check_names(cs->doc, err, errlen) != 0) { /* before Avro-C: it leaks on some errors */
        json_decref(cs->doc);
        return -1;
    }
    avro_schema_t schema;
    if (avro_schema_from_json_length(text, len, &schema) != 0) {
        sg_errf(err, errlen, "invalid Avro schema: %s", avro_strerror());
        json_decref(cs->doc);
        return -1;
    }
    avro_schema_decref(schema);
    if ((cs->named = json_object()) == NULL)
        sg_oom();
    collect(cs->named, cs->doc, "", 0);
    return 0;
}

static void cschema_dispose(cschema_t *cs)
{
    json_decref(cs->named);
    json_decref(cs->doc);
}

/* Resolves a schema node into what it is. Returns 0 or -1 (unknown name: cannot happen after
 * Avro-C accepted the schema, but a walk must not trust that). */
static int resolve(const cschema_t *cs, const json_t *def, const char *ns, tnode_t *out, int depth)
{
    out->ns[0] = out->fullname[0] = '\0';
    snprintf(out->ns, sizeof(out->ns), "%s", ns);
    if (depth > 8)
        return -1;
    if (json_is_array(def)) {
        out->kind = "union";
        out->def = def;
        return 0;
    }
    if (json_is_string(def)) {
        const char *name = json_string_value(def);
        if ((out->kind = primitive(name)) != NULL) {
            out->def = def;
            return 0;
        }
        char fullname[NAME_MAX_LEN];
        json_t *entry = NULL;
        if (strchr(name, '.') == NULL && ns[0] != '\0') {
            snprintf(fullname, sizeof(fullname), "%s.%s", ns, name);
            entry = json_object_get(cs->named, fullname);
        }
        if (entry == NULL) {
            snprintf(fullname, sizeof(fullname), "%s", name);
            entry = json_object_get(cs->named, fullname);
        }
        if (entry == NULL)
            return -1;
        return resolve(cs, json_array_get(entry, 0), json_string_value(json_array_get(entry, 1)), out, depth + 1) == 0 ? 0 : -1;
    }
    if (!json_is_object(def))
        return -1;
    const json_t *type = json_object_get(def, "type");
    if (!json_is_string(type))
        return resolve(cs, type, ns, out, depth + 1);
    const char *kind = json_string_value(type);
    out->def = def;
    if ((out->kind = primitive(kind)) != NULL)
        return 0;
    if (strcmp(kind, "array") == 0 || strcmp(kind, "map") == 0) {
        out->kind = strcmp(kind, "array") == 0 ? "array" : "map";
        return 0;
    }
    if (strcmp(kind, "record") == 0 || strcmp(kind, "error") == 0)
        out->kind = "record";
    else if (strcmp(kind, "enum") == 0)
        out->kind = "enum";
    else if (strcmp(kind, "fixed") == 0)
        out->kind = "fixed";
    else
        return resolve(cs, type, ns, out, depth + 1); /* a named reference in "type" */
    char inner[NAME_MAX_LEN];
    names_of(def, ns, out->fullname, inner);
    snprintf(out->ns, sizeof(out->ns), "%s", inner);
    return 0;
}

static int fail(walk_t *walk, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(walk_t *walk, const char *path, const char *fmt, ...)
{
    if (walk->quiet)
        return 0;
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    sg_errf(walk->err, walk->errlen, "%s: %s", path[0] != '\0' ? path : "/", reason);
    return 0;
}

static int promotes(const char *writer, const char *reader)
{
    if (strcmp(writer, "int") == 0)
        return strcmp(reader, "long") == 0 || strcmp(reader, "float") == 0 || strcmp(reader, "double") == 0;
    if (strcmp(writer, "long") == 0)
        return strcmp(reader, "float") == 0 || strcmp(reader, "double") == 0;
    if (strcmp(writer, "float") == 0)
        return strcmp(reader, "double") == 0;
    if (strcmp(writer, "string") == 0)
        return strcmp(reader, "bytes") == 0;
    if (strcmp(writer, "bytes") == 0)
        return strcmp(reader, "string") == 0;
    return 0;
}

static const char *describe(const tnode_t *node)
{
    return node->fullname[0] != '\0' ? node->fullname : node->kind;
}

static int names_match(const tnode_t *w, const tnode_t *r)
{
    if (strcmp(w->fullname, r->fullname) == 0)
        return 1;
    /* The reader may name the writer's type among its aliases (relative to its namespace). */
    size_t i;
    const json_t *alias;
    json_array_foreach(json_object_get(r->def, "aliases"), i, alias)
    {
        const char *text = json_string_value(alias);
        char full[NAME_MAX_LEN];
        if (text == NULL)
            continue;
        if (strchr(text, '.') == NULL && r->ns[0] != '\0')
            snprintf(full, sizeof(full), "%s.%s", r->ns, text);
        else
            snprintf(full, sizeof(full), "%s", text);
        if (strcmp(full, w->fullname) == 0)
            return 1;
    }
    return 0;
}

static const json_t *writer_field(const json_t *wfields, const json_t *rfield)
{
    const char *name = json_string_value(json_object_get(rfield, "name"));
    size_t i, k;
    const json_t *field, *alias;
    json_array_foreach(wfields, i, field)
    {
        const char *wname = json_string_value(json_object_get(field, "name"));
        if (name != NULL && wname != NULL && strcmp(wname, name) == 0)
            return field;
    }
    json_array_foreach(json_object_get(rfield, "aliases"), k, alias)
    {
        json_array_foreach(wfields, i, field)
        {
            const char *wname = json_string_value(json_object_get(field, "name"));
            if (json_is_string(alias) && wname != NULL && strcmp(wname, json_string_value(alias)) == 0)
                return field;
        }
    }
    return NULL;
}

static int can_read(walk_t *walk, const json_t *wdef, const char *wns, const json_t *rdef, const char *rns, const char *path,
                    const pair_t *up, int depth);

static size_t memo_bucket(const json_t *writer, const json_t *reader)
{
    uintptr_t h = (uintptr_t)writer * 31u + (uintptr_t)reader;
    h ^= h >> 17;
    return (size_t)(h * 0x9e3779b1u) % MEMO_BUCKETS;
}

/* The memoised result of (writer, reader): 1, 0, or -1 when not known. */
static int memo_get(const memo_t *memo, const json_t *writer, const json_t *reader)
{
    for (size_t at = memo->buckets[memo_bucket(writer, reader)]; at != 0; at = memo->entries[at - 1].next)
        if (memo->entries[at - 1].writer == writer && memo->entries[at - 1].reader == reader)
            return memo->entries[at - 1].ok;
    return -1;
}

static void memo_put(memo_t *memo, const json_t *writer, const json_t *reader, int ok)
{
    if (memo->n == memo->cap) {
        memo->cap = memo->cap != 0 ? memo->cap * 2 : 64;
        memo->entries = sg_reallocarray(memo->entries, memo->cap, sizeof(*memo->entries));
    }
    size_t bucket = memo_bucket(writer, reader);
    memo->entries[memo->n] = (memo_entry_t){writer, reader, ok, memo->buckets[bucket]};
    memo->buckets[bucket] = ++memo->n;
}

/* Drops the successes recorded since the memo held `mark` entries (they may rest on the failed
 * pair); failures recorded since are true whatever was assumed, and are kept. */
static void memo_drop_successes(memo_t *memo, size_t mark)
{
    size_t kept = memo->n;
    memo_entry_t *failures = NULL;
    size_t n_failures = 0;
    for (size_t i = mark; i < kept; i++)
        if (!memo->entries[i].ok) {
            failures = sg_reallocarray(failures, n_failures + 1, sizeof(*failures));
            failures[n_failures++] = memo->entries[i];
        }
    while (memo->n > mark) { /* newest first: each is its bucket's head */
        memo_entry_t *entry = &memo->entries[memo->n - 1];
        memo->buckets[memo_bucket(entry->writer, entry->reader)] = entry->next;
        memo->n--;
    }
    for (size_t i = 0; i < n_failures; i++)
        memo_put(memo, failures[i].writer, failures[i].reader, 0);
    free(failures);
}

static int can_read_record(walk_t *walk, const tnode_t *w, const tnode_t *r, const char *path, const pair_t *up, int depth);

static int can_read_node(walk_t *walk, const tnode_t *w, const tnode_t *r, const char *path, const pair_t *up, int depth)
{
    char sub[PATH_MAX_LEN];
    if (strcmp(w->kind, "union") == 0) {
        size_t i;
        const json_t *branch;
        json_array_foreach(w->def, i, branch)
        {
            snprintf(sub, sizeof(sub), "%s", path);
            if (!can_read(walk, branch, w->ns, r->def, r->ns, sub, up, depth + 1))
                return 0;
        }
        return 1;
    }
    if (strcmp(r->kind, "union") == 0) {
        int quiet = walk->quiet;
        walk->quiet = 1;
        size_t i;
        const json_t *branch;
        int found = 0;
        json_array_foreach(r->def, i, branch)
        {
            if (can_read(walk, w->def, w->ns, branch, r->ns, path, up, depth + 1)) {
                found = 1;
                break;
            }
        }
        walk->quiet = quiet;
        return found ? 1 : fail(walk, path, "the reader's union has no branch for the writer's %s", describe(w));
    }
    if (primitive(w->kind) != NULL || primitive(r->kind) != NULL) {
        if (w->kind == r->kind || (primitive(w->kind) && primitive(r->kind) && promotes(w->kind, r->kind)))
            return 1;
        return fail(walk, path, "the writer's %s cannot be read as %s", describe(w), describe(r));
    }
    if (strcmp(w->kind, r->kind) != 0)
        return fail(walk, path, "the writer's %s %s cannot be read as %s %s", w->kind, describe(w), r->kind, describe(r));
    if (strcmp(w->kind, "array") == 0) {
        snprintf(sub, sizeof(sub), "%s/items", path);
        return can_read(walk, json_object_get(w->def, "items"), w->ns, json_object_get(r->def, "items"), r->ns, sub, up, depth + 1);
    }
    if (strcmp(w->kind, "map") == 0) {
        snprintf(sub, sizeof(sub), "%s/values", path);
        return can_read(walk, json_object_get(w->def, "values"), w->ns, json_object_get(r->def, "values"), r->ns, sub, up,
                        depth + 1);
    }
    if (!names_match(w, r))
        return fail(walk, path, "the writer's %s %s has another name than the reader's %s", w->kind, w->fullname, r->fullname);
    if (strcmp(w->kind, "fixed") == 0) {
        json_int_t wsize = json_integer_value(json_object_get(w->def, "size"));
        json_int_t rsize = json_integer_value(json_object_get(r->def, "size"));
        if (wsize != rsize)
            return fail(walk, path, "fixed %s changed size from %lld to %lld", r->fullname, (long long)wsize, (long long)rsize);
        return 1;
    }
    if (strcmp(w->kind, "enum") == 0) {
        const json_t *rsymbols = json_object_get(r->def, "symbols");
        if (json_object_get(r->def, "default") != NULL)
            return 1; /* unknown writer symbols read as the reader's default */
        size_t i, k;
        const json_t *wsym, *rsym;
        json_array_foreach(json_object_get(w->def, "symbols"), i, wsym)
        {
            int known = 0;
            json_array_foreach(rsymbols, k, rsym) known |= json_equal(wsym, rsym);
            if (!known)
                return fail(walk, path,
                            "the writer's enum %s has symbol %s, which the reader's lacks (and it has no "
                            "default)",
                            w->fullname, json_string_value(wsym));
        }
        return 1;
    }
    /* records: a pair already being compared is assumed compatible (recursive types) */
    for (const pair_t *p = up; p != NULL; p = p->up)
        if (p->writer == w->def && p->reader == r->def)
            return 1;
    int known = memo_get(&walk->memo, w->def, r->def);
    if (known == 1 || (known == 0 && walk->quiet))
        return known;
    /* (A known failure is walked again when its reason must be told: down one failing path.) */
    size_t mark = walk->memo.n;
    int ok = can_read_record(walk, w, r, path, up, depth);
    if (!ok && !walk->exhausted)
        memo_drop_successes(&walk->memo, mark);
    if (!walk->exhausted && known < 0)
        memo_put(&walk->memo, w->def, r->def, ok);
    return ok;
}

static int can_read_record(walk_t *walk, const tnode_t *w, const tnode_t *r, const char *path, const pair_t *up, int depth)
{
    char sub[PATH_MAX_LEN];
    pair_t here = {w->def, r->def, up};
    const json_t *wfields = json_object_get(w->def, "fields");
    size_t i;
    const json_t *rfield;
    json_array_foreach(json_object_get(r->def, "fields"), i, rfield)
    {
        const char *name = json_string_value(json_object_get(rfield, "name"));
        snprintf(sub, sizeof(sub), "%s/%s", path, name != NULL ? name : "?");
        const json_t *wfield = writer_field(wfields, rfield);
        if (wfield == NULL) {
            if (json_object_get(rfield, "default") != NULL)
                continue;
            return fail(walk, sub, "the reader's field %s is not in the writer's %s and has no default", name != NULL ? name : "?",
                        w->fullname);
        }
        if (!can_read(walk, json_object_get(wfield, "type"), w->ns, json_object_get(rfield, "type"), r->ns, sub, &here, depth + 1))
            return 0;
    }
    return 1;
}

static int can_read(walk_t *walk, const json_t *wdef, const char *wns, const json_t *rdef, const char *rns, const char *path,
                    const pair_t *up, int depth)
{
    if (depth > SG_AVRO_MAX_DEPTH * 2)
        return fail(walk, path, "schemas nested deeper than %d", SG_AVRO_MAX_DEPTH);
    if (walk->exhausted || ++walk->steps > SG_COMPAT_MAX_STEPS) {
        walk->exhausted = 1; /* every open comparison fails fast, probing or not */
        return 0;
    }
    tnode_t w, r;
    if (resolve(walk->w, wdef, wns, &w, 0) != 0)
        return fail(walk, path, "the writer's schema names an unknown type");
    if (resolve(walk->r, rdef, rns, &r, 0) != 0)
        return fail(walk, path, "the reader's schema names an unknown type");
    return can_read_node(walk, &w, &r, path, up, depth);
}

int sg_schema_can_read(const char *writer, size_t writer_len, const char *reader, size_t reader_len, char *err, size_t errlen)
{
    cschema_t w, r;
    char why[256];
    if (cschema_parse(&w, writer, writer_len, why, sizeof(why)) != 0) {
        sg_errf(err, errlen, "writer: %s", why);
        return -1;
    }
    if (cschema_parse(&r, reader, reader_len, why, sizeof(why)) != 0) {
        sg_errf(err, errlen, "reader: %s", why);
        cschema_dispose(&w);
        return -1;
    }
    /* A schema reads its own data, however large. */
    if (json_equal(w.doc, r.doc)) {
        cschema_dispose(&w);
        cschema_dispose(&r);
        return 1;
    }
    walk_t walk = {.w = &w, .r = &r, .err = err, .errlen = errlen};
    int ok = can_read(&walk, w.doc, "", r.doc, "", "", NULL, 0);
    free(walk.memo.entries);
    if (walk.exhausted) {
        ok = 0;
        sg_errf(err, errlen, "/: the schemas are too complex to check (more than %lu type comparisons)", SG_COMPAT_MAX_STEPS);
    }
    cschema_dispose(&w);
    cschema_dispose(&r);
    return ok ? 1 : 0;
}

char *sg_schema_canonical(const char *text, size_t len, char *err, size_t errlen)
{
    cschema_t cs;
    if (cschema_parse(&cs, text, len, err, errlen) != 0)
        return NULL;
    char *canonical = json_dumps(cs.doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    cschema_dispose(&cs);
    if (canonical == NULL)
        sg_oom();
    return canonical;
}

static const char *const level_names[] = {"NONE", "BACKWARD",       "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
                                          "FULL", "FULL_TRANSITIVE"};

const char *sg_compat_name(sg_compat_t level)
{
    return (size_t)level < SG_ARRAY_SIZE(level_names) ? level_names[level] : "?";
}

int sg_compat_parse(const char *text, sg_compat_t *level)
{
    for (size_t i = 0; text != NULL && i < SG_ARRAY_SIZE(level_names); i++)
        if (strcasecmp(text, level_names[i]) == 0) {
            *level = (sg_compat_t)i;
            return 0;
        }
    return -1;
}
