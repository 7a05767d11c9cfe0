/*
 * Config loader: YAML (or JSON) text → node tree → validated sg_conf_t.
 *
 * Loading happens in two steps. libyaml's event parser first builds a small tree of scalars,
 * lists and mappings, each carrying its 1-based line, so that every later message can name the
 * file, the line and the dotted key path. The tree is then mapped onto the model by one generic
 * walker driven by declarative property tables (name, type, offset, range, default, doc), in
 * the spirit of librdkafka's rdkafka_conf.c and nginx's ngx_command_t: adding an option is one
 * table row, defaults are written as config text and parsed by the same code as user input, and
 * the same tables free the model and print the Markdown reference. Checks that span several
 * keys (a route's key naming a path parameter, conflicting paths, references to schemas and
 * tables) run as per-struct hooks after the tables have filled a struct. Loading stops at the
 * first error; everything allocated so far is freed by the table-driven destructor, which is
 * why lists record their length before their elements are filled.
 */
#include "sg_conf.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "sg_base.h"
#include "sg_path.h"

/* Limits on what a config file may ask of the loader: every size a user controls is bounded. */
#define SG_CONF_MAX_FILE_BYTES (4u << 20) /* the whole file */
#define SG_CONF_MAX_DEPTH 32              /* nesting of lists and mappings */
#define SG_CONF_MAX_STRING 4096           /* one string value (names, paths, files) */
#define SG_CONF_MAX_PROPERTY 65536        /* one kafka property value (inline PEM fits) */
#define SG_CONF_MAX_NAME 128              /* route, table and schema names */
#define SG_CONF_MAX_PROPS_PER_STRUCT 32   /* rows in one property table */
#define KEYPATH_MAX 512                   /* dotted key path in messages (truncated beyond) */

/* ------------------------------------------------------------------------------------------ */
/* Node tree                                                                                  */

typedef enum { NODE_SCALAR, NODE_SEQ, NODE_MAP } node_kind_t;

typedef struct st_node_t node_t;
struct st_node_t {
    node_kind_t kind;
    unsigned line; /* 1-based */
    bool plain;    /* unquoted scalar: only those can be null */
    char *text;    /* scalar text, NUL-terminated (embedded NULs are refused at parse) */
    size_t len;
    node_t **items; /* list: the items; mapping: key, value, key, value, ... */
    size_t n, cap;
};

typedef struct st_ctx_t {
    const char *file; /* name used in messages */
    const char *dir;  /* directory relative files resolve against; NULL: leave them as given */
    char *err;
    size_t errlen;
} ctx_t;

__attribute__((format(printf, 4, 5))) static int fail(ctx_t *c, unsigned line, const char *key, const char *fmt, ...)
{
    if (c->err == NULL || c->errlen == 0)
        return -1;
    int n = snprintf(c->err, c->errlen, "%s:%u: %s: ", c->file, line, key[0] != '\0' ? key : "(root)");
    if (n >= 0 && (size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Copies user text into buf for a message: quoted, control characters escaped, truncated. */
static const char *quote(char *buf, size_t size, const char *text)
{
    size_t o = 0;
    buf[o++] = '"';
    for (const char *p = text; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;
        /* Room for this character (up to 4 bytes escaped), "...", the quote and the NUL. */
        if (o + 4 + 3 + 2 > size) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (ch < 0x20 || ch == 0x7f) {
            snprintf(buf + o, size - o, "\\x%02x", ch);
            o += 4;
        } else {
            if (ch == '"' || ch == '\\')
                buf[o++] = '\\';
            buf[o++] = (char)ch;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static bool node_is_null(const node_t *n)
{
    return n->kind == NODE_SCALAR && n->plain &&
           (n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 || strcmp(n->text, "Null") == 0 ||
            strcmp(n->text, "NULL") == 0);
}

/* Describes what a node is, for "expected X, got Y" messages. */
static const char *node_what(const node_t *n, char *buf, size_t size)
{
    if (n->kind == NODE_MAP)
        return "a mapping";
    if (n->kind == NODE_SEQ)
        return "a list";
    if (node_is_null(n))
        return "nothing (null)";
    return quote(buf, size, n->text);
}

static node_t *node_new(node_kind_t kind, unsigned line)
{
    node_t *n = sg_calloc(1, sizeof(*n));
    n->kind = kind;
    n->line = line;
    return n;
}

static void node_free(node_t *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n; i++)
        node_free(n->items[i]);
    free(n->items);
    free(n->text);
    free(n);
}

static void node_append(node_t *parent, node_t *child)
{
    if (parent->n == parent->cap) {
        parent->cap = parent->cap ? parent->cap * 2 : 8;
        parent->items = sg_reallocarray(parent->items, parent->cap, sizeof(*parent->items));
    }
    parent->items[parent->n++] = child;
}

static const node_t *map_get(const node_t *map, const char *key)
{
    if (map == NULL || map->kind != NODE_MAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2)
        if (strcmp(map->items[i]->text, key) == 0)
            return map->items[i + 1];
    return NULL;
}

/* Line of map[key]'s value, or of the map itself when the key is absent (defaulted). */
static unsigned value_line(const node_t *map, const char *key)
{
    const node_t *v = map_get(map, key);
    return v != NULL ? v->line : map != NULL ? map->line : 1;
}

static const node_t *seq_item(const node_t *seq, size_t i)
{
    return seq != NULL && seq->kind == NODE_SEQ && i < seq->n ? seq->items[i] : NULL;
}

/* Key paths only feed messages: one longer than its buffer is cut short, never overflowed. */
__attribute__((format(printf, 3, 4))) static void format_into(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

static void path_key(char *buf, size_t size, const char *parent, const char *key)
{
    if (parent[0] != '\0')
        format_into(buf, size, "%s.%s", parent, key);
    else
        format_into(buf, size, "%s", key);
}

static void path_index(char *buf, size_t size, const char *parent, size_t i)
{
    format_into(buf, size, "%s[%zu]", parent, i);
}

/* Key path of the innermost open container, for syntax errors (libyaml knows only lines). */
static void stack_path(node_t *const *stack, size_t depth, char *buf, size_t size)
{
    char tmp[KEYPATH_MAX];
    buf[0] = '\0';
    for (size_t d = 0; d < depth; d++) {
        const node_t *frame = stack[d];
        bool deeper = d + 1 < depth;
        snprintf(tmp, sizeof(tmp), "%s", buf);
        if (frame->kind == NODE_MAP) {
            const node_t *key = NULL;
            if (deeper && frame->n >= 2)
                key = frame->items[frame->n - 2];
            else if (!deeper && frame->n % 2 == 1)
                key = frame->items[frame->n - 1];
            if (key != NULL)
                path_key(buf, size, tmp, key->text);
        } else if (deeper && frame->n > 0) {
            path_index(buf, size, tmp, frame->n - 1);
        }
    }
}

/* Builds the tree; *out is NULL when the stream holds no document (an empty file). */
static int tree_parse(ctx_t *c, const char *text, size_t len, node_t **out)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    node_t *stack[SG_CONF_MAX_DEPTH];
    size_t depth = 0;
    node_t *root = NULL;
    int documents = 0;
    char where[KEYPATH_MAX];

    if (!yaml_parser_initialize(&parser))
        sg_oom();
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (bool done = false; !done;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            if (parser.error == YAML_MEMORY_ERROR)
                sg_oom();
            stack_path(stack, depth, where, sizeof(where));
            if (parser.context != NULL)
                fail(c, (unsigned)parser.problem_mark.line + 1, where, "YAML syntax error: %s (%s at line %u)",
                     parser.problem ? parser.problem : "invalid YAML", parser.context, (unsigned)parser.context_mark.line + 1);
            else
                fail(c, (unsigned)parser.problem_mark.line + 1, where, "YAML syntax error: %s",
                     parser.problem ? parser.problem : "invalid YAML");
            goto fail;
        }
        unsigned line = (unsigned)ev.start_mark.line + 1;
        node_t *node = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_DOCUMENT_START_EVENT:
            if (documents++ > 0) {
                fail(c, line, "(root)", "only one YAML document is allowed in a config file");
                goto fail_event;
            }
            break;
        case YAML_ALIAS_EVENT:
            stack_path(stack, depth, where, sizeof(where));
            fail(c, line, where, "YAML aliases (*name) are not supported");
            goto fail_event;
        case YAML_SCALAR_EVENT:
            node = node_new(NODE_SCALAR, line);
            node->text = sg_memdup((const char *)ev.data.scalar.value, ev.data.scalar.length);
            node->len = ev.data.scalar.length;
            node->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            if (strlen(node->text) != node->len) {
                node_free(node);
                stack_path(stack, depth, where, sizeof(where));
                fail(c, line, where, "a value contains a NUL character");
                goto fail_event;
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (depth == SG_CONF_MAX_DEPTH) {
                stack_path(stack, depth, where, sizeof(where));
                fail(c, line, where, "nested more than %d levels deep", SG_CONF_MAX_DEPTH);
                goto fail_event;
            }
            node = node_new(ev.type == YAML_SEQUENCE_START_EVENT ? NODE_SEQ : NODE_MAP, line);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: depth--; break;
        default: break;
        }
        if (node != NULL) {
            if (depth == 0) {
                root = node;
            } else {
                node_t *parent = stack[depth - 1];
                if (parent->kind == NODE_MAP && parent->n % 2 == 0 && node->kind != NODE_SCALAR) {
                    node_free(node);
                    stack_path(stack, depth, where, sizeof(where));
                    fail(c, line, where, "mapping keys must be plain strings");
                    goto fail_event;
                }
                node_append(parent, node);
            }
            if (node->kind != NODE_SCALAR)
                stack[depth++] = node;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    *out = root;
    return 0;

fail_event:
    yaml_event_delete(&ev);
fail:
    yaml_parser_delete(&parser);
    node_free(root);
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Property tables                                                                            */

typedef enum {
    PT_STRING,     /* any non-empty string */
    PT_NAME,       /* route/table/schema name: [A-Za-z0-9._-], 1..128 */
    PT_TOPIC,      /* Kafka topic name */
    PT_FILE,       /* file name, resolved relative to the config file */
    PT_PATH,       /* path template, not under a reserved prefix */
    PT_STRENUM,    /* one of `enums`, case-insensitive, stored as the canonical char * */
    PT_ENUM,       /* one of `enums`, stored as an int-sized enum (index) */
    PT_INT,        /* integer in min..max, stored in `width` bytes */
    PT_BOOL,       /* true | false */
    PT_DURATION,   /* duration, stored as int64 milliseconds; min/max in ms */
    PT_DURATION_S, /* duration in whole seconds, stored as int64 seconds; min/max in ms */
    PT_SIZE,       /* byte size, stored as uint64; min/max in bytes */
    PT_KEYSPEC,    /* sg_key_spec_t */
    PT_HEADERS,    /* list of header names (char ** at offset, size_t count at aux) */
    PT_ORIGINS,    /* list of CORS origins (char ** at offset, size_t count at aux) */
    PT_PROPERTIES, /* mapping of string -> scalar (sg_kv_t * at offset, size_t count at aux) */
    PT_HOSTPORT,   /* "host:port": char *host at offset, uint16_t port at aux */
    PT_BROKERS,    /* "embedded" or a bootstrap list: char * at offset, bool embedded at aux */
    PT_SECTION,    /* nested mapping described by `sub`, at base + offset */
    PT_LIST,       /* list of `sub` structs: array pointer at offset, size_t count at aux */
    PT_PARTITIONS, /* list of unique partition numbers in min..max (int32_t * at offset, size_t at aux) */
    PT_SCOPES,     /* list of OAuth scope tokens (char ** at offset, size_t count at aux) */
    PT_NAMES,      /* list of names of other entries, e.g. routes (char ** at offset, size_t count at aux) */
    PT_ALGORITHMS, /* list of JWS algorithms, upper-cased (char ** at offset, size_t count at aux) */
    PT_SHA256,     /* 64 hex digits, stored as uint8_t[32] */
    PT_RATE,       /* "50/s", "3000/m", "100000/h" as sg_rate_t; count in min..max; "off" with P_ALLOW_OFF */
    PT_URL,        /* http:// or https:// URL, split into sg_url_t */
} prop_type_t;

#define P_REQUIRED 0x1u
#define P_PRESENCE 0x2u  /* PT_SECTION: bool at aux says whether it was given; no defaults if not */
#define P_ALLOW_OFF 0x4u /* PT_RATE: "off" stores a count of 0 */

typedef struct st_prop_t prop_t;
typedef struct st_struct_desc_t struct_desc_t;

struct st_prop_t {
    const char *name;
    prop_type_t type;
    size_t offset;
    size_t width;     /* sizeof the field at offset */
    size_t aux;       /* second field: list count, port, presence flag... (see prop_type_t) */
    int64_t min, max; /* numeric range; for lists and maps, the number of items */
    const char *def;  /* default, written as config text; NULL: none (zero) */
    unsigned flags;
    const struct_desc_t *sub; /* PT_SECTION, PT_LIST */
    const char *const *enums; /* PT_ENUM, PT_STRENUM; NULL-terminated */
    const char *unique;       /* PT_LIST: string field of `sub` that must be unique */
    const char *doc;
};

typedef int (*struct_check_cb)(ctx_t *c, void *elem, const node_t *map, const char *path);

struct st_struct_desc_t {
    const char *name; /* singular noun for messages and docs: "route" */
    size_t size;      /* element size, for lists */
    const prop_t *props;
    struct_check_cb check; /* cross-key checks after the rows are filled; NULL: none */
    const char *shorthand; /* a scalar item stands for {shorthand: item}; NULL: not allowed */
    bool has_line;
    size_t line_offset; /* unsigned line of the element, when has_line */
};

#define FIELD(type, member) .offset = offsetof(type, member), .width = sizeof(((type *)0)->member)

/* ------------------------------------------------------------------------------------------ */
/* Scalar parsers (public ones first)                                                         */

int sg_conf_parse_duration_ms(const char *text, int64_t *out)
{
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return -1;
    int64_t value = 0;
    const char *p = text;
    for (; isdigit((unsigned char)*p); p++) {
        int digit = *p - '0';
        if (value > (INT64_MAX - digit) / 10)
            return -1;
        value = value * 10 + digit;
    }
    int64_t mult;
    if (*p == '\0' || strcmp(p, "ms") == 0)
        mult = 1;
    else if (strcmp(p, "s") == 0)
        mult = 1000;
    else if (strcmp(p, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(p, "h") == 0)
        mult = 3600 * 1000;
    else
        return -1;
    if (value > INT64_MAX / mult)
        return -1;
    *out = value * mult;
    return 0;
}

int sg_conf_parse_size(const char *text, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KB", 1000},
        {"MB", 1000 * 1000},
        {"GB", 1000 * 1000 * 1000},
        {"KiB", 1024},
        {"MiB", 1024 * 1024},
        {"GiB", 1024 * 1024 * 1024},
    };
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return -1;
    uint64_t value = 0;
    const char *p = text;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned digit = (unsigned)(*p - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return -1;
        value = value * 10 + digit;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            if (value > UINT64_MAX / units[i].mult)
                return -1;
            *out = value * units[i].mult;
            return 0;
        }
    }
    return -1;
}

/* Formats a duration in the largest unit that divides it, as a user would write it. */
static const char *fmt_duration(char *buf, size_t size, int64_t ms)
{
    if (ms != 0 && ms % (3600 * 1000) == 0)
        snprintf(buf, size, "%" PRId64 "h", ms / (3600 * 1000));
    else if (ms != 0 && ms % (60 * 1000) == 0)
        snprintf(buf, size, "%" PRId64 "m", ms / (60 * 1000));
    else if (ms % 1000 == 0)
        snprintf(buf, size, "%" PRId64 "s", ms / 1000);
    else
        snprintf(buf, size, "%" PRId64 "ms", ms);
    return buf;
}

static const char *fmt_size(char *buf, size_t size, uint64_t bytes)
{
    if (bytes != 0 && bytes % (1024 * 1024 * 1024) == 0)
        snprintf(buf, size, "%" PRIu64 "GiB", bytes / (1024 * 1024 * 1024));
    else if (bytes != 0 && bytes % (1024 * 1024) == 0)
        snprintf(buf, size, "%" PRIu64 "MiB", bytes / (1024 * 1024));
    else if (bytes != 0 && bytes % 1024 == 0)
        snprintf(buf, size, "%" PRIu64 "KiB", bytes / 1024);
    else
        snprintf(buf, size, "%" PRIu64 "B", bytes);
    return buf;
}

static bool is_name_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '.' || ch == '_' || ch == '-';
}

static bool is_ident(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (const char *p = s + 1; *p != '\0'; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

/* RFC 9110 token characters: what a header field name may contain. */
static bool is_token(const char *s)
{
    if (s[0] == '\0')
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && strchr("!#$%&'*+-.^_`|~", *p) == NULL)
            return false;
    return true;
}

static char *lowercase_dup(const char *s)
{
    char *copy = sg_strdup(s);
    for (char *p = copy; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    return copy;
}

/* Parses a key spec into out (out->name owned). Returns NULL or the reason it is invalid. */
static const char *keyspec_parse(const char *text, sg_key_spec_t *out)
{
    static const char expected[] = "expected path:NAME, body:/json/pointer, header:NAME, claim:NAME or none";
    out->source = SG_KEY_NONE;
    out->name = NULL;
    if (strcmp(text, "none") == 0)
        return NULL;
    if (strncmp(text, "path:", 5) == 0) {
        if (!is_ident(text + 5))
            return "path:NAME needs a parameter name ([A-Za-z_][A-Za-z0-9_]*), e.g. path:id";
        out->source = SG_KEY_PATH;
        out->name = sg_strdup(text + 5);
        return NULL;
    }
    if (strncmp(text, "body:", 5) == 0) {
        const char *ptr = text + 5;
        if (ptr[0] != '\0' && ptr[0] != '/')
            return "body: needs a JSON pointer that is empty or starts with '/', e.g. body:/customerId";
        for (const char *p = ptr; *p != '\0'; p++)
            if (*p == '~' && p[1] != '0' && p[1] != '1')
                return "in a JSON pointer '~' must be followed by 0 or 1 (~0 is '~', ~1 is '/')";
        out->source = SG_KEY_BODY;
        out->name = sg_strdup(ptr);
        return NULL;
    }
    if (strncmp(text, "header:", 7) == 0) {
        if (!is_token(text + 7))
            return "header:NAME needs a valid HTTP header name, e.g. header:x-customer-id";
        out->source = SG_KEY_HEADER;
        out->name = lowercase_dup(text + 7);
        return NULL;
    }
    if (strncmp(text, "claim:", 6) == 0) {
        if (!is_token(text + 6))
            return "claim:NAME needs a claim name (letters, digits and !#$%&'*+-.^_`|~), e.g. claim:sub";
        out->source = SG_KEY_CLAIM;
        out->name = sg_strdup(text + 6);
        return NULL;
    }
    return expected;
}

/* Kafka's own rule for topic names; NULL or the reason. */
static const char *topic_check(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 249)
        return "a Kafka topic name has 1 to 249 characters";
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return "\".\" and \"..\" are not valid Kafka topic names";
    for (const char *p = name; *p != '\0'; p++)
        if (!is_name_char(*p))
            return "a Kafka topic name may only contain letters, digits, '.', '_' and '-'";
    return NULL;
}

/* The built-in endpoints own these first segments, whatever follows (README, "HTTP API"). */
const char *const sg_conf_reserved_prefixes[] = {"/requests", "/tables", "/registry",     "/metrics",
                                                 "/healthz",  "/readyz", "/openapi.json", NULL};

/* The reserved prefix (without its '/') that path's first segment is, or NULL. */
static const char *reserved_prefix(const char *path)
{
    const char *first = path + 1;
    size_t len = strcspn(first, "/");
    for (size_t i = 0; sg_conf_reserved_prefixes[i] != NULL; i++)
        if (strlen(sg_conf_reserved_prefixes[i] + 1) == len && memcmp(first, sg_conf_reserved_prefixes[i] + 1, len) == 0)
            return sg_conf_reserved_prefixes[i] + 1;
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Field access                                                                               */

static void *field(char *base, size_t offset)
{
    return base + offset;
}

static void set_string(char *base, size_t offset, char *value)
{
    memcpy(field(base, offset), &value, sizeof(value));
}

static char *get_string(const char *base, size_t offset)
{
    char *value;
    memcpy(&value, base + offset, sizeof(value));
    return value;
}

static void set_size_t(char *base, size_t offset, size_t value)
{
    memcpy(field(base, offset), &value, sizeof(value));
}

static size_t get_size_t(const char *base, size_t offset)
{
    size_t value;
    memcpy(&value, base + offset, sizeof(value));
    return value;
}

static void set_bool(char *base, size_t offset, bool value)
{
    memcpy(field(base, offset), &value, sizeof(value));
}

/* Stores an integer in a signed or unsigned field of 1, 2, 4 or 8 bytes. The value is in the
 * row's range, which fits the field, so the unsigned conversion keeps the right bits either way. */
static void set_int(char *base, size_t offset, size_t width, int64_t value)
{
    void *dst = field(base, offset);
    switch (width) {
    case 1: {
        uint8_t v = (uint8_t)value;
        memcpy(dst, &v, 1);
        break;
    }
    case 2: {
        uint16_t v = (uint16_t)value;
        memcpy(dst, &v, 2);
        break;
    }
    case 4: {
        uint32_t v = (uint32_t)value;
        memcpy(dst, &v, 4);
        break;
    }
    default: {
        uint64_t v = (uint64_t)value;
        memcpy(dst, &v, 8);
        break;
    }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Row parsers                                                                                */

typedef int (*prop_parse_cb)(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path);
typedef void (*prop_free_cb)(const prop_t *row, char *base);

static int parse_struct(ctx_t *c, const struct_desc_t *desc, const node_t *node, char *base, const char *path);
static void free_struct(const struct_desc_t *desc, char *base);

static int want_scalar(ctx_t *c, const node_t *value, const char *path, const char *what)
{
    char buf[80];
    if (value->kind != NODE_SCALAR || node_is_null(value))
        return fail(c, value->line, path, "expected %s, got %s", what, node_what(value, buf, sizeof(buf)));
    return 0;
}

static int want_string(ctx_t *c, const node_t *value, const char *path, size_t max)
{
    if (want_scalar(c, value, path, "a string") != 0)
        return -1;
    if (value->len == 0)
        return fail(c, value->line, path, "must not be empty");
    if (value->len > max)
        return fail(c, value->line, path, "longer than %zu bytes", max);
    return 0;
}

static int parse_string(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    if (want_string(c, value, path, SG_CONF_MAX_STRING) != 0)
        return -1;
    set_string(base, row->offset, sg_strdup(value->text));
    return 0;
}

static int parse_name(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80];
    if (want_string(c, value, path, SG_CONF_MAX_STRING) != 0)
        return -1;
    bool ok = value->len <= SG_CONF_MAX_NAME;
    for (const char *p = value->text; ok && *p != '\0'; p++)
        ok = is_name_char(*p);
    if (!ok)
        return fail(c, value->line, path, "invalid name %s: use 1 to %d letters, digits, '.', '_' or '-'",
                    quote(buf, sizeof(buf), value->text), SG_CONF_MAX_NAME);
    set_string(base, row->offset, sg_strdup(value->text));
    return 0;
}

static int parse_topic(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80];
    if (want_string(c, value, path, SG_CONF_MAX_STRING) != 0)
        return -1;
    const char *why = topic_check(value->text);
    if (why != NULL)
        return fail(c, value->line, path, "invalid topic name %s: %s", quote(buf, sizeof(buf), value->text), why);
    set_string(base, row->offset, sg_strdup(value->text));
    return 0;
}

static int parse_file(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    if (want_string(c, value, path, SG_CONF_MAX_STRING) != 0)
        return -1;
    char *resolved;
    if (value->text[0] == '/' || c->dir == NULL) {
        resolved = sg_strdup(value->text);
    } else {
        size_t dlen = strlen(c->dir);
        resolved = sg_calloc(dlen + 1 + value->len + 1, 1);
        memcpy(resolved, c->dir, dlen);
        resolved[dlen] = '/';
        memcpy(resolved + dlen + 1, value->text, value->len + 1);
    }
    set_string(base, row->offset, resolved);
    return 0;
}

static int parse_path(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80], why[160];
    if (want_string(c, value, path, SG_CONF_MAX_STRING) != 0)
        return -1;
    if (value->text[0] != '/')
        return fail(c, value->line, path, "path %s must start with '/'", quote(buf, sizeof(buf), value->text));
    sg_path_template_t *tmpl = sg_path_template_parse(value->text, why, sizeof(why));
    if (tmpl == NULL)
        return fail(c, value->line, path, "invalid path template %s: %s", quote(buf, sizeof(buf), value->text), why);
    sg_path_template_destroy(tmpl);
    const char *reserved = reserved_prefix(value->text);
    if (reserved != NULL)
        return fail(c, value->line, path, "path %s is under /%s, which is reserved for the built-in endpoints",
                    quote(buf, sizeof(buf), value->text), reserved);
    set_string(base, row->offset, sg_strdup(value->text));
    return 0;
}

static void enum_list(const char *const *enums, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; enums[i] != NULL && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "", enums[i]);
}

static int enum_lookup(ctx_t *c, const prop_t *row, const node_t *value, const char *path, size_t *index)
{
    char buf[80], list[160];
    if (want_scalar(c, value, path, "a string") != 0)
        return -1;
    for (size_t i = 0; row->enums[i] != NULL; i++) {
        if (strcasecmp(value->text, row->enums[i]) == 0) {
            *index = i;
            return 0;
        }
    }
    enum_list(row->enums, list, sizeof(list));
    return fail(c, value->line, path, "unknown %s %s (expected one of %s)", row->name, quote(buf, sizeof(buf), value->text), list);
}

static int parse_strenum(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    size_t index = 0; /* set by enum_lookup on success; gcc -O3 cannot see that */
    if (enum_lookup(c, row, value, path, &index) != 0)
        return -1;
    set_string(base, row->offset, sg_strdup(row->enums[index]));
    return 0;
}

static int parse_enum(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    size_t index = 0;
    if (enum_lookup(c, row, value, path, &index) != 0)
        return -1;
    set_int(base, row->offset, row->width, (int64_t)index);
    return 0;
}

static int parse_int(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80];
    if (want_scalar(c, value, path, "an integer") != 0)
        return -1;
    const char *text = value->text;
    char *end;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    if (!(isdigit((unsigned char)text[0]) || (text[0] == '-' && isdigit((unsigned char)text[1]))) || *end != '\0')
        return fail(c, value->line, path, "expected an integer, got %s", quote(buf, sizeof(buf), text));
    if (errno == ERANGE || parsed < row->min || parsed > row->max)
        return fail(c, value->line, path, "%s is out of range (%" PRId64 "..%" PRId64 ")", quote(buf, sizeof(buf), text), row->min,
                    row->max);
    set_int(base, row->offset, row->width, parsed);
    return 0;
}

static int parse_bool(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80];
    if (want_scalar(c, value, path, "true or false") != 0)
        return -1;
    const char *t = value->text;
    bool parsed;
    if (strcmp(t, "true") == 0 || strcmp(t, "True") == 0 || strcmp(t, "TRUE") == 0)
        parsed = true;
    else if (strcmp(t, "false") == 0 || strcmp(t, "False") == 0 || strcmp(t, "FALSE") == 0)
        parsed = false;
    else
        return fail(c, value->line, path, "expected true or false, got %s", quote(buf, sizeof(buf), t));
    set_bool(base, row->offset, parsed);
    return 0;
}

static int duration_value(ctx_t *c, const prop_t *row, const node_t *value, const char *path, int64_t *ms)
{
    char buf[80], lo[32], hi[32];
    if (want_scalar(c, value, path, "a duration") != 0)
        return -1;
    if (sg_conf_parse_duration_ms(value->text, ms) != 0)
        return fail(c, value->line, path, "expected a duration such as 250ms, 10s, 2m or 1h, got %s",
                    quote(buf, sizeof(buf), value->text));
    if (*ms < row->min || *ms > row->max)
        return fail(c, value->line, path, "%s is out of range (%s..%s)", quote(buf, sizeof(buf), value->text),
                    fmt_duration(lo, sizeof(lo), row->min), fmt_duration(hi, sizeof(hi), row->max));
    return 0;
}

static int parse_duration(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    int64_t ms;
    if (duration_value(c, row, value, path, &ms) != 0)
        return -1;
    set_int(base, row->offset, row->width, ms);
    return 0;
}

static int parse_duration_s(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80];
    int64_t ms;
    if (duration_value(c, row, value, path, &ms) != 0)
        return -1;
    /* A bare number is milliseconds everywhere else; "600" here would be 0.6s, so say so. */
    if (ms % 1000 != 0)
        return fail(c, value->line, path, "%s is not a whole number of seconds (write e.g. 600s)",
                    quote(buf, sizeof(buf), value->text));
    set_int(base, row->offset, row->width, ms / 1000);
    return 0;
}

static int parse_size(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80], lo[32], hi[32];
    uint64_t bytes;
    if (want_scalar(c, value, path, "a size") != 0)
        return -1;
    if (sg_conf_parse_size(value->text, &bytes) != 0)
        return fail(c, value->line, path, "expected a size such as 512, 64KiB, 1MiB or 10KB, got %s",
                    quote(buf, sizeof(buf), value->text));
    if (bytes < (uint64_t)row->min || bytes > (uint64_t)row->max)
        return fail(c, value->line, path, "%s is out of range (%s..%s)", quote(buf, sizeof(buf), value->text),
                    fmt_size(lo, sizeof(lo), (uint64_t)row->min), fmt_size(hi, sizeof(hi), (uint64_t)row->max));
    memcpy(field(base, row->offset), &bytes, sizeof(bytes));
    return 0;
}

static int parse_keyspec(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80];
    if (want_scalar(c, value, path, "a key spec (path:NAME, body:/json/pointer, header:NAME, claim:NAME or none)") != 0)
        return -1;
    if (value->len > SG_CONF_MAX_STRING)
        return fail(c, value->line, path, "longer than %d bytes", SG_CONF_MAX_STRING);
    sg_key_spec_t spec;
    const char *why = keyspec_parse(value->text, &spec);
    if (why != NULL)
        return fail(c, value->line, path, "%s, got %s", why, quote(buf, sizeof(buf), value->text));
    memcpy(field(base, row->offset), &spec, sizeof(spec));
    return 0;
}

typedef const char *(*item_check_cb)(const char *text);

static const char *header_check(const char *text)
{
    return is_token(text) ? NULL : "is not a valid HTTP header name";
}

static const char *origin_check(const char *text)
{
    if (strcmp(text, "*") == 0)
        return NULL;
    const char *host;
    if (strncmp(text, "http://", 7) == 0)
        host = text + 7;
    else if (strncmp(text, "https://", 8) == 0)
        host = text + 8;
    else
        return "is not an origin: expected \"*\" or scheme://host[:port], e.g. http://localhost:5173";
    /* Browsers send the origin without a path, so anything after the host could never match. */
    if (host[0] == '\0' || strpbrk(host, "/?# \t") != NULL)
        return "is not an origin: expected scheme://host[:port] with no path or trailing slash";
    return NULL;
}

static int parse_strlist(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path, item_check_cb check,
                         bool lower)
{
    char buf[80], item_path[KEYPATH_MAX];
    if (node_is_null(value))
        return 0;
    if (value->kind != NODE_SEQ)
        return fail(c, value->line, path, "expected a list, got %s", node_what(value, buf, sizeof(buf)));
    if ((int64_t)value->n > row->max)
        return fail(c, value->line, path, "more than %" PRId64 " items", row->max);
    char **items = sg_calloc(value->n, sizeof(*items));
    set_string(base, row->offset, (char *)items);
    set_size_t(base, row->aux, value->n);
    for (size_t i = 0; i < value->n; i++) {
        const node_t *item = value->items[i];
        path_index(item_path, sizeof(item_path), path, i);
        if (want_string(c, item, item_path, SG_CONF_MAX_STRING) != 0)
            return -1;
        const char *why = check(item->text);
        if (why != NULL)
            return fail(c, item->line, item_path, "%s %s", quote(buf, sizeof(buf), item->text), why);
        items[i] = lower ? lowercase_dup(item->text) : sg_strdup(item->text);
    }
    return 0;
}

static int parse_partitions(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80], item_path[KEYPATH_MAX];
    if (node_is_null(value))
        return 0;
    if (value->kind != NODE_SEQ)
        return fail(c, value->line, path, "expected a list of partition numbers, got %s", node_what(value, buf, sizeof(buf)));
    if (value->n > 1024)
        return fail(c, value->line, path, "more than 1024 partitions");
    int32_t *items = sg_calloc(value->n ? value->n : 1, sizeof(*items));
    set_string(base, row->offset, (char *)items);
    set_size_t(base, row->aux, value->n);
    for (size_t i = 0; i < value->n; i++) {
        const node_t *item = value->items[i];
        path_index(item_path, sizeof(item_path), path, i);
        if (want_scalar(c, item, item_path, "a partition number") != 0)
            return -1;
        char *end;
        errno = 0;
        long long parsed = strtoll(item->text, &end, 10);
        if (!isdigit((unsigned char)item->text[0]) || *end != '\0' || errno == ERANGE || parsed < row->min || parsed > row->max)
            return fail(c, item->line, item_path, "expected a partition number %" PRId64 "..%" PRId64 ", got %s", row->min,
                        row->max, quote(buf, sizeof(buf), item->text));
        for (size_t j = 0; j < i; j++)
            if (items[j] == (int32_t)parsed)
                return fail(c, item->line, item_path, "partition %lld is listed twice", parsed);
        items[i] = (int32_t)parsed;
    }
    return 0;
}

static void free_partitions(const prop_t *row, char *base)
{
    free(get_string(base, row->offset));
}

static int parse_headers(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    return parse_strlist(c, row, value, base, path, header_check, true);
}

static int parse_origins(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    if (parse_strlist(c, row, value, base, path, origin_check, false) != 0)
        return -1;
    if (value->kind == NODE_SEQ && value->n > 1) {
        for (size_t i = 0; i < value->n; i++)
            if (strcmp(value->items[i]->text, "*") == 0)
                return fail(c, value->items[i]->line, path, "\"*\" allows every origin and must be the only entry");
    }
    return 0;
}

static int parse_properties(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80], key_path[KEYPATH_MAX];
    if (node_is_null(value))
        return 0;
    if (value->kind != NODE_MAP)
        return fail(c, value->line, path, "expected a mapping of property names to values, got %s",
                    node_what(value, buf, sizeof(buf)));
    size_t n = value->n / 2;
    if ((int64_t)n > row->max)
        return fail(c, value->line, path, "more than %" PRId64 " properties", row->max);
    sg_kv_t *kvs = sg_calloc(n, sizeof(*kvs));
    set_string(base, row->offset, (char *)kvs);
    set_size_t(base, row->aux, n);
    for (size_t i = 0; i < n; i++) {
        const node_t *key = value->items[2 * i], *val = value->items[2 * i + 1];
        path_key(key_path, sizeof(key_path), path, key->text);
        if (key->len == 0 || key->len > SG_CONF_MAX_NAME)
            return fail(c, key->line, key_path, "a property name has 1 to %d characters", SG_CONF_MAX_NAME);
        for (size_t j = 0; j < i; j++)
            if (strcmp(kvs[j].key, key->text) == 0)
                return fail(c, key->line, key_path, "duplicate key %s (first at line %u)", quote(buf, sizeof(buf), key->text),
                            value->items[2 * j]->line);
        if (want_scalar(c, val, key_path, "a string, number or boolean") != 0)
            return -1;
        if (val->len > SG_CONF_MAX_PROPERTY)
            return fail(c, val->line, key_path, "longer than %d bytes", SG_CONF_MAX_PROPERTY);
        /* librdkafka wants "true"/"false"; YAML also spells them True and TRUE. */
        const char *text = val->text;
        if (val->plain && (strcmp(text, "True") == 0 || strcmp(text, "TRUE") == 0))
            text = "true";
        else if (val->plain && (strcmp(text, "False") == 0 || strcmp(text, "FALSE") == 0))
            text = "false";
        kvs[i].key = sg_strdup(key->text);
        kvs[i].value = sg_strdup(text);
    }
    return 0;
}

static int parse_hostport(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    static const char expected[] = "expected host:port, e.g. 127.0.0.1:8080 or [::1]:8080";
    char buf[80];
    if (want_string(c, value, path, SG_CONF_MAX_STRING) != 0)
        return -1;
    const char *text = value->text, *host, *port;
    size_t host_len;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return fail(c, value->line, path, "%s, got %s", expected, quote(buf, sizeof(buf), text));
        host = text + 1;
        host_len = (size_t)(close - host);
        port = close + 2;
        char addr[64];
        struct in6_addr in6;
        if (host_len == 0 || host_len >= sizeof(addr))
            return fail(c, value->line, path, "invalid IPv6 address in %s", quote(buf, sizeof(buf), text));
        memcpy(addr, host, host_len);
        addr[host_len] = '\0';
        if (inet_pton(AF_INET6, addr, &in6) != 1)
            return fail(c, value->line, path, "invalid IPv6 address in %s", quote(buf, sizeof(buf), text));
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL)
            return fail(c, value->line, path, "%s, got %s", expected, quote(buf, sizeof(buf), text));
        host = text;
        host_len = (size_t)(colon - text);
        port = colon + 1;
        if (memchr(host, ':', host_len) != NULL)
            return fail(c, value->line, path, "write an IPv6 address in brackets, e.g. [::1]:8080, got %s",
                        quote(buf, sizeof(buf), text));
        bool ok = host_len > 0 && host_len <= 253;
        for (size_t i = 0; ok && i < host_len; i++)
            ok = is_name_char(host[i]);
        if (!ok)
            return fail(c, value->line, path, "invalid host in %s (%s)", quote(buf, sizeof(buf), text), expected);
    }
    unsigned long port_value = 0;
    size_t digits = strspn(port, "0123456789");
    if (digits == 0 || digits > 5 || port[digits] != '\0' || (port_value = strtoul(port, NULL, 10)) > 65535)
        return fail(c, value->line, path, "invalid port in %s (0..65535)", quote(buf, sizeof(buf), text));
    set_string(base, row->offset, sg_memdup(host, host_len));
    uint16_t port16 = (uint16_t)port_value;
    memcpy(field(base, row->aux), &port16, sizeof(port16));
    return 0;
}

static int parse_brokers(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80];
    if (want_string(c, value, path, SG_CONF_MAX_STRING) != 0)
        return -1;
    if (strcmp(value->text, "embedded") == 0) {
        set_bool(base, row->aux, true);
        return 0;
    }
    /* Normalise "h1:9092, h2:9092" to "h1:9092,h2:9092": each entry trimmed, none empty. */
    char *list = sg_calloc(value->len + 1, 1);
    size_t o = 0;
    const char *p = value->text;
    for (;;) {
        size_t len = strcspn(p, ",");
        const char *start = p, *end = p + len;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        bool ok = start < end;
        for (const char *q = start; ok && q < end; q++)
            ok = *q > 0x20 && *q != 0x7f;
        if (!ok) {
            free(list);
            return fail(c, value->line, path, "expected \"embedded\" or a bootstrap list like \"h1:9092,h2:9092\", got %s",
                        quote(buf, sizeof(buf), value->text));
        }
        if (o > 0)
            list[o++] = ',';
        memcpy(list + o, start, (size_t)(end - start));
        o += (size_t)(end - start);
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    set_string(base, row->offset, list);
    set_bool(base, row->aux, false);
    return 0;
}

static int parse_section(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    if (row->flags & P_PRESENCE)
        set_bool(base, row->aux, true);
    return parse_struct(c, row->sub, value, base + row->offset, path);
}

static const prop_t *find_prop(const struct_desc_t *desc, const char *name)
{
    for (const prop_t *row = desc->props; row->name != NULL; row++)
        if (strcmp(row->name, name) == 0)
            return row;
    return NULL;
}

static int parse_list(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80], item_path[KEYPATH_MAX];
    const struct_desc_t *sub = row->sub;
    size_t n = 0;
    if (!node_is_null(value)) {
        if (value->kind != NODE_SEQ)
            return fail(c, value->line, path, "expected a list of %ss, got %s", sub->name, node_what(value, buf, sizeof(buf)));
        n = value->n;
    }
    if ((int64_t)n < row->min)
        return fail(c, value->line, path, "needs at least %" PRId64 " %s", row->min, sub->name);
    if ((int64_t)n > row->max)
        return fail(c, value->line, path, "more than %" PRId64 " %ss", row->max, sub->name);
    if (n == 0)
        return 0;
    /* The count is set before the elements are filled so that a failure halfway is freed. */
    char *array = sg_calloc(n, sub->size);
    set_string(base, row->offset, array);
    set_size_t(base, row->aux, n);
    for (size_t i = 0; i < n; i++) {
        char *elem = array + i * sub->size;
        path_index(item_path, sizeof(item_path), path, i);
        if (parse_struct(c, sub, value->items[i], elem, item_path) != 0)
            return -1;
        if (sub->has_line) {
            unsigned line = value->items[i]->line;
            memcpy(elem + sub->line_offset, &line, sizeof(line));
        }
    }
    if (row->unique != NULL) {
        const prop_t *key = find_prop(sub, row->unique);
        for (size_t i = 1; i < n; i++) {
            const char *name = get_string(array + i * sub->size, key->offset);
            for (size_t j = 0; j < i; j++) {
                if (strcmp(name, get_string(array + j * sub->size, key->offset)) == 0) {
                    path_index(item_path, sizeof(item_path), path, i);
                    char key_path[KEYPATH_MAX];
                    path_key(key_path, sizeof(key_path), item_path, row->unique);
                    return fail(c, value_line(value->items[i], row->unique), key_path, "duplicate %s %s %s (first at line %u)",
                                sub->name, row->unique, quote(buf, sizeof(buf), name), value_line(value->items[j], row->unique));
                }
            }
        }
    }
    return 0;
}

static void free_string(const prop_t *row, char *base)
{
    free(get_string(base, row->offset));
}

static void free_nothing(const prop_t *row, char *base)
{
}

static void free_keyspec(const prop_t *row, char *base)
{
    sg_key_spec_t spec;
    memcpy(&spec, base + row->offset, sizeof(spec));
    free(spec.name);
}

static void free_strlist(const prop_t *row, char *base)
{
    char **items = (char **)get_string(base, row->offset);
    size_t n = get_size_t(base, row->aux);
    for (size_t i = 0; items != NULL && i < n; i++)
        free(items[i]);
    free(items);
}

static void free_properties(const prop_t *row, char *base)
{
    sg_kv_t *kvs = (sg_kv_t *)get_string(base, row->offset);
    size_t n = get_size_t(base, row->aux);
    for (size_t i = 0; kvs != NULL && i < n; i++) {
        free(kvs[i].key);
        free(kvs[i].value);
    }
    free(kvs);
}

static void free_section(const prop_t *row, char *base)
{
    free_struct(row->sub, base + row->offset);
}

static void free_list(const prop_t *row, char *base)
{
    char *array = get_string(base, row->offset);
    size_t n = get_size_t(base, row->aux);
    for (size_t i = 0; array != NULL && i < n; i++)
        free_struct(row->sub, array + i * row->sub->size);
    free(array);
}

/* ------------------------------------------------------------------------------------------ */
/* Authentication and rate limits: value parsers (DESIGN §6)                                  */

#define SG_CONF_MAX_SCOPE 128 /* one scope token */

/* RFC 6749 §3.3 scope-token: printable ASCII except space, '"' and '\'. */
static const char *scope_check(const char *text)
{
    if (strlen(text) > SG_CONF_MAX_SCOPE)
        return "is longer than 128 characters";
    for (const char *p = text; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '"' || *p == '\\')
            return "is not a scope token: use printable ASCII without spaces, '\"' or '\\'";
    return NULL;
}

static const char *name_ref_check(const char *text)
{
    for (const char *p = text; *p != '\0'; p++)
        if (!is_name_char(*p))
            return "is not a name: use letters, digits, '.', '_' or '-'";
    return strlen(text) > SG_CONF_MAX_NAME ? "is longer than 128 characters" : NULL;
}

/* The JWS algorithms of RFC 7518 §3.1 that the auth module verifies; "none" is not one. */
static const char *const jws_algorithms[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                                             "ES384", "ES512", "HS256", "HS384", "HS512", NULL};

static const char *algorithm_check(const char *text)
{
    if (strcasecmp(text, "none") == 0)
        return "is never accepted: every token must be signed";
    for (size_t i = 0; jws_algorithms[i] != NULL; i++)
        if (strcasecmp(text, jws_algorithms[i]) == 0)
            return NULL;
    return "is not a supported algorithm (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, HS256, HS384, "
           "HS512)";
}

static int parse_scopes(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    return parse_strlist(c, row, value, base, path, scope_check, false);
}

static int parse_names(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    return parse_strlist(c, row, value, base, path, name_ref_check, false);
}

static int parse_algorithms(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    if (parse_strlist(c, row, value, base, path, algorithm_check, false) != 0)
        return -1;
    if ((int64_t)get_size_t(base, row->aux) < row->min)
        return fail(c, value->line, path, "needs at least %" PRId64 " algorithm", row->min);
    char **items = (char **)get_string(base, row->offset);
    for (size_t i = 0; i < get_size_t(base, row->aux); i++)
        for (char *p = items[i]; *p != '\0'; p++)
            *p = (char)toupper((unsigned char)*p);
    return 0;
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The value is a hash, not the key, so messages may describe it but never need to. */
static int parse_sha256(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    if (want_scalar(c, value, path, "a SHA-256 as 64 hex digits") != 0)
        return -1;
    if (value->len != 64)
        return fail(c, value->line, path,
                    "expected the key's SHA-256 as 64 hex digits (printf %%s \"$KEY\" | sha256sum), got %zu "
                    "characters",
                    value->len);
    uint8_t digest[32];
    for (size_t i = 0; i < 64; i++) {
        int digit = hex_digit(value->text[i]);
        if (digit < 0)
            return fail(c, value->line, path, "expected the key's SHA-256 as 64 hex digits, character %zu is not one", i + 1);
        if (i % 2 == 0)
            digest[i / 2] = (uint8_t)(digit << 4);
        else
            digest[i / 2] |= (uint8_t)digit;
    }
    memcpy(field(base, row->offset), digest, sizeof(digest));
    return 0;
}

static int parse_rate(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80];
    if (want_scalar(c, value, path, "a rate such as 50/s") != 0)
        return -1;
    sg_rate_t rate = {.count = 0, .period_ms = 1000};
    const char *text = value->text;
    if ((row->flags & P_ALLOW_OFF) && strcmp(text, "off") == 0) {
        memcpy(field(base, row->offset), &rate, sizeof(rate));
        return 0;
    }
    size_t digits = strspn(text, "0123456789");
    const char *unit = text + digits;
    bool ok = digits > 0 && digits <= 9 && unit[0] == '/' && unit[1] != '\0' && unit[2] == '\0';
    if (ok && unit[1] == 's')
        rate.period_ms = 1000;
    else if (ok && unit[1] == 'm')
        rate.period_ms = 60 * 1000;
    else if (ok && unit[1] == 'h')
        rate.period_ms = 3600 * 1000;
    else
        return fail(c, value->line, path, "expected a rate such as 50/s, 3000/m or 100000/h%s, got %s",
                    row->flags & P_ALLOW_OFF ? " (or off)" : "", quote(buf, sizeof(buf), text));
    long long count = strtoll(text, NULL, 10);
    if (count < row->min || count > row->max)
        return fail(c, value->line, path, "%s is out of range (%" PRId64 "..%" PRId64 " per second, minute or hour)",
                    quote(buf, sizeof(buf), text), row->min, row->max);
    rate.count = (uint32_t)count;
    memcpy(field(base, row->offset), &rate, sizeof(rate));
    return 0;
}

/* Splits http(s)://HOST[:PORT][/PATH[?QUERY]]; NULL or the reason it is refused. */
static const char *url_split(const char *text, sg_url_t *url)
{
    static const char expected[] = "expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH";
    const char *host;
    if (strncmp(text, "https://", 8) == 0) {
        url->tls = true;
        host = text + 8;
    } else if (strncmp(text, "http://", 7) == 0) {
        url->tls = false;
        host = text + 7;
    } else {
        return expected;
    }
    for (const char *p = text; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == '#' || *p == '@')
            return "the URL must not contain spaces, control characters, '#' or user information ('@')";
    const char *host_end, *after;
    if (host[0] == '[') {
        host_end = strchr(host, ']');
        if (host_end == NULL)
            return "an IPv6 host needs its closing ']'";
        host++;
        after = host_end + 1;
    } else {
        host_end = host + strcspn(host, ":/?");
        after = host_end;
    }
    if (host_end == host)
        return "the URL has no host";
    url->port = url->tls ? 443 : 80;
    if (*after == ':') {
        size_t digits = strspn(after + 1, "0123456789");
        long port = digits > 0 && digits <= 5 ? strtol(after + 1, NULL, 10) : 0;
        if (port < 1 || port > 65535)
            return "the port must be 1..65535";
        url->port = (uint16_t)port;
        after += 1 + digits;
    }
    if (*after != '\0' && *after != '/' && *after != '?')
        return expected;
    url->host = sg_memdup(host, (size_t)(host_end - host));
    if (*after == '/') {
        url->path = sg_strdup(after);
    } else {
        url->path = sg_calloc(strlen(after) + 2, 1);
        url->path[0] = '/';
        memcpy(url->path + 1, after, strlen(after));
    }
    return NULL;
}

static int parse_url(ctx_t *c, const prop_t *row, const node_t *value, char *base, const char *path)
{
    char buf[80];
    if (want_string(c, value, path, SG_CONF_MAX_STRING) != 0)
        return -1;
    sg_url_t url = {0};
    const char *why = url_split(value->text, &url);
    if (why != NULL)
        return fail(c, value->line, path, "%s, got %s", why, quote(buf, sizeof(buf), value->text));
    url.text = sg_strdup(value->text);
    memcpy(field(base, row->offset), &url, sizeof(url));
    return 0;
}

static void free_url(const prop_t *row, char *base)
{
    sg_url_t url;
    memcpy(&url, base + row->offset, sizeof(url));
    free(url.text);
    free(url.host);
    free(url.path);
}

static const struct {
    const char *doc; /* type name in the reference */
    prop_parse_cb parse;
    prop_free_cb free;
} prop_types[] = {
    [PT_STRING] = {"string", parse_string, free_string},
    [PT_NAME] = {"name", parse_name, free_string},
    [PT_TOPIC] = {"topic name", parse_topic, free_string},
    [PT_FILE] = {"file", parse_file, free_string},
    [PT_PATH] = {"path template", parse_path, free_string},
    [PT_STRENUM] = {"enum", parse_strenum, free_string},
    [PT_ENUM] = {"enum", parse_enum, free_nothing},
    [PT_INT] = {"integer", parse_int, free_nothing},
    [PT_BOOL] = {"boolean", parse_bool, free_nothing},
    [PT_DURATION] = {"duration", parse_duration, free_nothing},
    [PT_DURATION_S] = {"duration (whole seconds)", parse_duration_s, free_nothing},
    [PT_SIZE] = {"size", parse_size, free_nothing},
    [PT_KEYSPEC] = {"key spec", parse_keyspec, free_keyspec},
    [PT_HEADERS] = {"list of header names", parse_headers, free_strlist},
    [PT_ORIGINS] = {"list of origins", parse_origins, free_strlist},
    [PT_PROPERTIES] = {"mapping of string to scalar", parse_properties, free_properties},
    [PT_HOSTPORT] = {"host:port", parse_hostport, free_string},
    [PT_BROKERS] = {"brokers", parse_brokers, free_string},
    [PT_SECTION] = {"mapping", parse_section, free_section},
    [PT_LIST] = {"list", parse_list, free_list},
    [PT_PARTITIONS] = {"list of partitions", parse_partitions, free_partitions},
    [PT_SCOPES] = {"list of scopes", parse_scopes, free_strlist},
    [PT_NAMES] = {"list of names", parse_names, free_strlist},
    [PT_ALGORITHMS] = {"list of JWS algorithms", parse_algorithms, free_strlist},
    [PT_SHA256] = {"SHA-256 (64 hex digits)", parse_sha256, free_nothing},
    [PT_RATE] = {"rate (N/s, N/m, N/h)", parse_rate, free_nothing},
    [PT_URL] = {"http(s) URL", parse_url, free_url},
};

/* Edit distance, for "did you mean" on unknown keys. Keys are short: a small fixed row. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int fail_unknown_key(ctx_t *c, const struct_desc_t *desc, const node_t *key, const char *path)
{
    char buf[80], list[512];
    const prop_t *best = NULL;
    size_t best_distance = 3; /* suggest only close typos */
    size_t o = 0;
    list[0] = '\0';
    for (const prop_t *row = desc->props; row->name != NULL; row++) {
        size_t d = edit_distance(key->text, row->name);
        if (d < best_distance && d < strlen(row->name)) {
            best = row;
            best_distance = d;
        }
        if (o < sizeof(list))
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", o ? ", " : "", row->name);
    }
    if (best != NULL)
        return fail(c, key->line, path, "unknown key %s (did you mean \"%s\"?)", quote(buf, sizeof(buf), key->text), best->name);
    return fail(c, key->line, path, "unknown key %s (valid keys: %s)", quote(buf, sizeof(buf), key->text), list);
}

/* Default values are config text, parsed by the same code as user input (line = the map's). */
static int apply_default(ctx_t *c, const prop_t *row, const node_t *map, char *base, const char *path)
{
    if (row->type == PT_SECTION) {
        if (row->flags & P_PRESENCE)
            return 0;
        node_t empty = {.kind = NODE_MAP, .line = map->line};
        return parse_struct(c, row->sub, &empty, base + row->offset, path);
    }
    if (row->def == NULL)
        return 0;
    if (row->def[0] == '[') {
        /* A list default ("[RS256, ES256]") is YAML flow text, parsed like the user's own. */
        node_t *list = NULL;
        int rc = tree_parse(c, row->def, strlen(row->def), &list);
        assert(rc == 0 && list != NULL); /* the tables' own text */
        list->line = map->line;
        for (size_t i = 0; i < list->n; i++)
            list->items[i]->line = map->line;
        rc = prop_types[row->type].parse(c, row, list, base, path);
        node_free(list);
        return rc;
    }
    node_t scalar = {.kind = NODE_SCALAR, .line = map->line, .text = (char *)row->def, .len = strlen(row->def)};
    if (row->type == PT_LIST) {
        node_t *items[1] = {&scalar};
        node_t seq = {.kind = NODE_SEQ, .line = map->line, .items = items, .n = 1};
        return prop_types[row->type].parse(c, row, &seq, base, path);
    }
    return prop_types[row->type].parse(c, row, &scalar, base, path);
}

static int parse_struct(ctx_t *c, const struct_desc_t *desc, const node_t *node, char *base, const char *path)
{
    char buf[80], child[KEYPATH_MAX];
    node_t short_key, short_map;
    node_t *short_items[2];
    if (node->kind == NODE_SCALAR && desc->shorthand != NULL && !node_is_null(node)) {
        /* A scalar item stands for {shorthand: item}; messages keep the item's own path. */
        short_key =
            (node_t){.kind = NODE_SCALAR, .line = node->line, .text = (char *)desc->shorthand, .len = strlen(desc->shorthand)};
        short_items[0] = &short_key;
        short_items[1] = (node_t *)node;
        short_map = (node_t){.kind = NODE_MAP, .line = node->line, .items = short_items, .n = 2};
        node = &short_map;
    }
    node_t empty = {.kind = NODE_MAP, .line = node->line};
    if (node_is_null(node))
        node = &empty;
    if (node->kind != NODE_MAP)
        return fail(c, node->line, path, "expected a mapping, got %s", node_what(node, buf, sizeof(buf)));

    const node_t *given[SG_CONF_MAX_PROPS_PER_STRUCT] = {0};
    for (size_t i = 0; i + 1 < node->n; i += 2) {
        const node_t *key = node->items[i], *value = node->items[i + 1];
        if (node == &short_map)
            snprintf(child, sizeof(child), "%s", path);
        else
            path_key(child, sizeof(child), path, key->text);
        const prop_t *row = find_prop(desc, key->text);
        if (row == NULL)
            return fail_unknown_key(c, desc, key, child);
        size_t index = (size_t)(row - desc->props);
        assert(index < SG_CONF_MAX_PROPS_PER_STRUCT); /* a table grew past `given` */
        if (given[index] != NULL)
            return fail(c, key->line, child, "duplicate key %s (first at line %u)", quote(buf, sizeof(buf), key->text),
                        given[index]->line);
        given[index] = key;
        if (prop_types[row->type].parse(c, row, value, base, child) != 0)
            return -1;
    }
    for (const prop_t *row = desc->props; row->name != NULL; row++) {
        if (given[row - desc->props] != NULL)
            continue;
        path_key(child, sizeof(child), path, row->name);
        if (row->flags & P_REQUIRED)
            return fail(c, node->line, child, "required key \"%s\" is missing", row->name);
        if (apply_default(c, row, node, base, child) != 0)
            return -1;
    }
    if (desc->check != NULL)
        return desc->check(c, base, node, path);
    return 0;
}

static void free_struct(const struct_desc_t *desc, char *base)
{
    for (const prop_t *row = desc->props; row->name != NULL; row++)
        prop_types[row->type].free(row, base);
}

/* ------------------------------------------------------------------------------------------ */
/* Cross-key checks                                                                           */

static int check_listen(ctx_t *c, void *elem, const node_t *map, const char *path)
{
    sg_listen_conf_t *listen = elem;
    char key_path[KEYPATH_MAX];
    if ((listen->cert == NULL) != (listen->key == NULL)) {
        const char *missing = listen->cert == NULL ? "cert" : "key";
        path_key(key_path, sizeof(key_path), path, missing);
        return fail(c, map->line, key_path, "a TLS listener needs both cert and key");
    }
    return 0;
}

static int check_key_param(ctx_t *c, const char *tmpl_text, const sg_key_spec_t *key, const node_t *map, const char *path)
{
    if (key->source != SG_KEY_PATH)
        return 0;
    sg_path_template_t *tmpl = sg_path_template_parse(tmpl_text, NULL, 0);
    int found = tmpl != NULL && sg_path_template_has_param(tmpl, key->name);
    sg_path_template_destroy(tmpl);
    if (found)
        return 0;
    char key_path[KEYPATH_MAX];
    path_key(key_path, sizeof(key_path), path, "key");
    return fail(c, value_line(map, "key"), key_path, "path:%s names no parameter of path \"%s\"", key->name, tmpl_text);
}

static int check_route(ctx_t *c, void *elem, const node_t *map, const char *path)
{
    sg_route_conf_t *route = elem;
    char key_path[KEYPATH_MAX], a[32], b[32];
    if (check_key_param(c, route->path, &route->key, map, path) != 0)
        return -1;
    if (route->format == SG_FORMAT_AVRO && route->schema == NULL) {
        path_key(key_path, sizeof(key_path), path, "format");
        return fail(c, value_line(map, "format"), key_path, "format avro needs a schema (add schema: NAME)");
    }
    if (route->has_reply && route->reply.max_timeout_ms < route->reply.timeout_ms) {
        const node_t *reply = map_get(map, "reply");
        char reply_path[KEYPATH_MAX];
        path_key(reply_path, sizeof(reply_path), path, "reply");
        bool explicit_max = map_get(reply, "max_timeout") != NULL;
        path_key(key_path, sizeof(key_path), reply_path, explicit_max ? "max_timeout" : "timeout");
        return fail(c, value_line(reply, explicit_max ? "max_timeout" : "timeout"), key_path,
                    "max_timeout (%s) is shorter than timeout (%s)", fmt_duration(a, sizeof(a), route->reply.max_timeout_ms),
                    fmt_duration(b, sizeof(b), route->reply.timeout_ms));
    }
    return 0;
}

static int check_query(ctx_t *c, void *elem, const node_t *map, const char *path)
{
    sg_query_conf_t *query = elem;
    if (query->key.source == SG_KEY_BODY) {
        char key_path[KEYPATH_MAX];
        path_key(key_path, sizeof(key_path), path, "key");
        return fail(c, value_line(map, "key"), key_path,
                    "a query is a GET without a body: take the key from path:NAME, header:NAME or claim:NAME (none: a scan)");
    }
    return check_key_param(c, query->path, &query->key, map, path);
}

static bool has_schema(const sg_conf_t *conf, const char *name)
{
    for (size_t i = 0; i < conf->n_schemas; i++)
        if (strcmp(conf->schemas[i].name, name) == 0)
            return true;
    return false;
}

static bool has_table(const sg_conf_t *conf, const char *name)
{
    for (size_t i = 0; i < conf->n_tables; i++)
        if (strcmp(conf->tables[i].name, name) == 0)
            return true;
    return false;
}

/* Two endpoints conflict when they answer the same method on paths of the same shape: the
 * router could not tell which one a request means. Queries are always GET. */
static int check_conflicts(ctx_t *c, const sg_conf_t *conf, const node_t *root)
{
    size_t n = conf->n_routes + conf->n_queries;
    sg_path_template_t **tmpls = sg_calloc(n, sizeof(*tmpls));
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const char *text = i < conf->n_routes ? conf->routes[i].path : conf->queries[i - conf->n_routes].path;
        tmpls[i] = sg_path_template_parse(text, NULL, 0); /* already validated */
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        bool i_route = i < conf->n_routes;
        const char *method_i = i_route ? conf->routes[i].method : "GET";
        for (size_t j = 0; j < i && rc == 0; j++) {
            const char *method_j = j < conf->n_routes ? conf->routes[j].method : "GET";
            if (strcmp(method_i, method_j) != 0 || !sg_path_template_same_shape(tmpls[i], tmpls[j]))
                continue;
            char item_path[KEYPATH_MAX], key_path[KEYPATH_MAX], other[160];
            if (j < conf->n_routes)
                snprintf(other, sizeof(other), "route \"%s\" (%s %s, line %u)", conf->routes[j].name, method_j,
                         conf->routes[j].path, conf->routes[j].line);
            else
                snprintf(other, sizeof(other), "query GET %s (line %u)", conf->queries[j - conf->n_routes].path,
                         conf->queries[j - conf->n_routes].line);
            size_t index = i_route ? i : i - conf->n_routes;
            const char *list = i_route ? "routes" : "queries";
            const node_t *item = seq_item(map_get(root, list), index);
            path_index(item_path, sizeof(item_path), list, index);
            path_key(key_path, sizeof(key_path), item_path, "path");
            rc = fail(c, value_line(item, "path"), key_path, "%s %s conflicts with %s", method_i,
                      i_route ? conf->routes[i].path : conf->queries[index].path, other);
        }
    }
    for (size_t i = 0; i < n; i++)
        sg_path_template_destroy(tmpls[i]);
    free(tmpls);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Authentication and rate limits: cross-key checks (DESIGN §6)                               */

/* Headers streamgate stamps on events itself: the principal header must not shadow one. */
static const char *const event_headers[] = {
    "kafka_correlationid", "kafka_replytopic", "kafka_replypartition", "content-type", "traceparent", "streamgate-route", NULL};

static int fail_at_item(ctx_t *c, const node_t *map, const char *path, const char *list, size_t index, const char *what)
{
    char list_path[KEYPATH_MAX], item_path[KEYPATH_MAX];
    path_key(list_path, sizeof(list_path), path, list);
    path_index(item_path, sizeof(item_path), list_path, index);
    const node_t *item = seq_item(map_get(map, list), index);
    return fail(c, item != NULL ? item->line : value_line(map, list), item_path, "%s", what);
}

static int check_jwt(ctx_t *c, void *elem, const node_t *map, const char *path)
{
    sg_jwt_conf_t *jwt = elem;
    char key_path[KEYPATH_MAX], why[256];
    bool hmac = false, asymmetric = false;
    for (size_t i = 0; i < jwt->n_algorithms; i++) {
        if (jwt->algorithms[i][0] != 'H') {
            asymmetric = true;
            continue;
        }
        hmac = true;
        if (jwt->hmac_secret == NULL) {
            snprintf(why, sizeof(why),
                     "%s needs hmac_secret: HMAC tokens are checked with that secret only, never with a "
                     "key from the key set",
                     jwt->algorithms[i]);
            return fail_at_item(c, map, path, "algorithms", i, why);
        }
    }
    if (jwt->hmac_secret != NULL && !hmac) {
        path_key(key_path, sizeof(key_path), path, "hmac_secret");
        return fail(c, value_line(map, "hmac_secret"), key_path,
                    "hmac_secret is set but algorithms allows no HS256, HS384 "
                    "or HS512");
    }
    if (jwt->hmac_secret != NULL && strlen(jwt->hmac_secret) < 32) {
        path_key(key_path, sizeof(key_path), path, "hmac_secret");
        return fail(c, value_line(map, "hmac_secret"), key_path, "an HMAC secret needs at least 32 bytes (RFC 7518 3.2)");
    }
    if (jwt->jwks_file != NULL && jwt->jwks_url.text != NULL) {
        path_key(key_path, sizeof(key_path), path, "jwks_url");
        return fail(c, value_line(map, "jwks_url"), key_path, "give jwks_file or jwks_url, not both");
    }
    if (asymmetric && jwt->jwks_file == NULL && jwt->jwks_url.text == NULL) {
        path_key(key_path, sizeof(key_path), path, "jwks_file");
        return fail(c, map->line, key_path, "algorithms other than HS256/384/512 need a key set: add jwks_file or jwks_url");
    }
    if (jwt->jwks_ca_file != NULL && !jwt->jwks_url.tls) {
        path_key(key_path, sizeof(key_path), path, "jwks_ca_file");
        return fail(c, value_line(map, "jwks_ca_file"), key_path, "jwks_ca_file is only used with an https:// jwks_url");
    }
    if (jwt->jwks_min_refresh_ms > jwt->jwks_refresh_ms) {
        path_key(key_path, sizeof(key_path), path, "jwks_min_refresh");
        return fail(c, value_line(map, "jwks_min_refresh"), key_path, "jwks_min_refresh is longer than jwks_refresh");
    }
    return 0;
}

static int check_auth(ctx_t *c, void *elem, const node_t *map, const char *path)
{
    sg_auth_conf_t *auth = elem;
    char key_path[KEYPATH_MAX], why[256];
    if (!auth->has_jwt && auth->n_api_keys == 0)
        return fail(c, map->line, path, "configure jwt, api_keys or both");
    path_key(key_path, sizeof(key_path), path, "principal_header");
    if (!is_token(auth->principal_header))
        return fail(c, value_line(map, "principal_header"), key_path, "is not a valid header name");
    for (char *p = auth->principal_header; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    for (size_t i = 0; event_headers[i] != NULL; i++)
        if (strcmp(auth->principal_header, event_headers[i]) == 0)
            return fail(c, value_line(map, "principal_header"), key_path, "%s is a header streamgate sets on events itself",
                        event_headers[i]);
    for (size_t i = 1; i < auth->n_api_keys; i++) {
        for (size_t j = 0; j < i; j++) {
            if (memcmp(auth->api_keys[i].sha256, auth->api_keys[j].sha256, 32) != 0)
                continue;
            char list_path[KEYPATH_MAX], item_path[KEYPATH_MAX];
            path_key(list_path, sizeof(list_path), path, "api_keys");
            path_index(item_path, sizeof(item_path), list_path, i);
            path_key(key_path, sizeof(key_path), item_path, "sha256");
            snprintf(why, sizeof(why), "the same key as api_keys[%zu] (\"%s\")", j, auth->api_keys[j].name);
            return fail(c, value_line(seq_item(map_get(map, "api_keys"), i), "sha256"), key_path, "%s", why);
        }
    }
    return 0;
}

static int check_rate_limit(ctx_t *c, void *elem, const node_t *map, const char *path)
{
    sg_rate_limit_conf_t *limit = elem;
    if (limit->burst == 0)
        limit->burst = limit->rate.count;
    return 0;
}

static const sg_route_conf_t *find_route(const sg_conf_t *conf, const char *name)
{
    for (size_t i = 0; i < conf->n_routes; i++)
        if (strcmp(conf->routes[i].name, name) == 0)
            return &conf->routes[i];
    return NULL;
}

/* One list's scopes/public against the auth section: `list` is "routes", "queries" or "tables". */
static int check_access_list(ctx_t *c, const sg_conf_t *conf, const node_t *root, const char *list, const char *base, size_t size,
                             size_t count, size_t access_offset)
{
    char item_path[KEYPATH_MAX], key_path[KEYPATH_MAX];
    for (size_t i = 0; i < count; i++) {
        const sg_access_conf_t *access = (const sg_access_conf_t *)(const void *)(base + i * size + access_offset);
        const char *key = NULL, *why = NULL;
        if (access->n_scopes > 0 && !conf->has_auth) {
            key = "scopes";
            why = "scopes need an auth section (without one no credential is checked)";
        } else if (access->n_scopes > 0 && access->is_public) {
            key = "public";
            why = "a public endpoint cannot require scopes";
        }
        if (key == NULL)
            continue;
        path_index(item_path, sizeof(item_path), list, i);
        path_key(key_path, sizeof(key_path), item_path, key);
        return fail(c, value_line(seq_item(map_get(root, list), i), key), key_path, "%s", why);
    }
    return 0;
}

/* A key taken from the caller's credential (claim:NAME) needs one; a key taken from a header that
 * carries a credential or the principal would copy it into an event or a lookup. */
static const char *key_access_problem(const sg_conf_t *conf, const sg_key_spec_t *key, const sg_access_conf_t *access)
{
    static const char *const credential_headers[] = {"authorization", "x-api-key", "cookie", NULL};
    if (key->source == SG_KEY_CLAIM && !conf->has_auth)
        return "claim:NAME needs an auth section (the claim comes from the caller's credential)";
    if (key->source == SG_KEY_CLAIM && access->is_public)
        return "a public endpoint has no credential to take claim:NAME from";
    if (key->source != SG_KEY_HEADER || !conf->has_auth)
        return NULL;
    for (size_t i = 0; credential_headers[i] != NULL; i++)
        if (strcmp(key->name, credential_headers[i]) == 0)
            return "this header carries a credential: it must not become a key";
    if (strcmp(key->name, conf->auth.principal_header) == 0)
        return "this is auth.principal_header, which clients cannot set: use claim:NAME";
    return NULL;
}

static int check_keys_access(ctx_t *c, const sg_conf_t *conf, const node_t *root)
{
    char item_path[KEYPATH_MAX], key_path[KEYPATH_MAX];
    for (size_t i = 0; i < conf->n_routes + conf->n_queries; i++) {
        bool is_route = i < conf->n_routes;
        size_t index = is_route ? i : i - conf->n_routes;
        const char *list = is_route ? "routes" : "queries";
        const char *why = is_route ? key_access_problem(conf, &conf->routes[index].key, &conf->routes[index].access)
                                   : key_access_problem(conf, &conf->queries[index].key, &conf->queries[index].access);
        if (why == NULL)
            continue;
        path_index(item_path, sizeof(item_path), list, index);
        path_key(key_path, sizeof(key_path), item_path, "key");
        return fail(c, value_line(seq_item(map_get(root, list), index), "key"), key_path, "%s", why);
    }
    return 0;
}

static int check_security(ctx_t *c, const sg_conf_t *conf, const node_t *root)
{
    if (check_keys_access(c, conf, root) != 0)
        return -1;
    if (check_access_list(c, conf, root, "routes", (const char *)conf->routes, sizeof(*conf->routes), conf->n_routes,
                          offsetof(sg_route_conf_t, access)) != 0 ||
        check_access_list(c, conf, root, "queries", (const char *)conf->queries, sizeof(*conf->queries), conf->n_queries,
                          offsetof(sg_query_conf_t, access)) != 0 ||
        check_access_list(c, conf, root, "tables", (const char *)conf->tables, sizeof(*conf->tables), conf->n_tables,
                          offsetof(sg_table_conf_t, access)) != 0)
        return -1;
    char item_path[KEYPATH_MAX], why[256];
    for (size_t i = 0; i < conf->n_rate_limits; i++) {
        const sg_rate_limit_conf_t *limit = &conf->rate_limits[i];
        const node_t *map = seq_item(map_get(root, "rate_limits"), i);
        path_index(item_path, sizeof(item_path), "rate_limits", i);
        if (strcmp(limit->name, "registry-writes") == 0) {
            char key_path[KEYPATH_MAX];
            path_key(key_path, sizeof(key_path), item_path, "name");
            return fail(c, value_line(map, "name"), key_path,
                        "registry-writes is the name of the built-in limit (limits.registry_write_rate)");
        }
        if (limit->per == SG_RATE_PER_PRINCIPAL && !conf->has_auth) {
            char key_path[KEYPATH_MAX];
            path_key(key_path, sizeof(key_path), item_path, "per");
            return fail(c, value_line(map, "per"), key_path, "per: principal needs an auth section (or use per: ip)");
        }
        for (size_t j = 0; j < limit->n_routes; j++) {
            const sg_route_conf_t *route = find_route(conf, limit->routes[j]);
            if (route == NULL)
                snprintf(why, sizeof(why), "unknown route \"%s\" (declare it under routes)", limit->routes[j]);
            else if (limit->per == SG_RATE_PER_PRINCIPAL && route->access.is_public)
                snprintf(why, sizeof(why), "route \"%s\" is public, so it has no principal to count: use per: ip",
                         limit->routes[j]);
            else
                continue;
            return fail_at_item(c, map, item_path, "routes", j, why);
        }
    }
    return 0;
}

static int check_conf(ctx_t *c, void *elem, const node_t *root, const char *path)
{
    const sg_conf_t *conf = elem;
    char item_path[KEYPATH_MAX], key_path[KEYPATH_MAX];
    for (size_t i = 0; i < conf->n_routes; i++) {
        const sg_route_conf_t *route = &conf->routes[i];
        if (route->schema != NULL && !has_schema(conf, route->schema)) {
            path_index(item_path, sizeof(item_path), "routes", i);
            path_key(key_path, sizeof(key_path), item_path, "schema");
            return fail(c, value_line(seq_item(map_get(root, "routes"), i), "schema"), key_path,
                        "unknown schema \"%s\" (declare it under schemas)", route->schema);
        }
    }
    for (size_t i = 0; i < conf->n_queries; i++) {
        const sg_query_conf_t *query = &conf->queries[i];
        if (!has_table(conf, query->table)) {
            path_index(item_path, sizeof(item_path), "queries", i);
            path_key(key_path, sizeof(key_path), item_path, "table");
            return fail(c, value_line(seq_item(map_get(root, "queries"), i), "table"), key_path,
                        "unknown table \"%s\" (declare it under tables)", query->table);
        }
    }
    for (size_t i = 0; i < conf->n_tables; i++) {
        if (conf->tables[i].placement != SG_PLACEMENT_PARTITIONED)
            continue;
        for (size_t j = 0; j < conf->n_tables; j++) {
            if (j == i || strcmp(conf->tables[i].topic, conf->tables[j].topic) != 0)
                continue;
            path_index(item_path, sizeof(item_path), "tables", i);
            path_key(key_path, sizeof(key_path), item_path, "placement");
            return fail(c, value_line(seq_item(map_get(root, "tables"), i), "placement"), key_path,
                        "a partitioned table must be the only table on its topic (%s is also table \"%s\")",
                        conf->tables[i].topic, conf->tables[j].name);
        }
    }
    if (check_conflicts(c, conf, root) != 0)
        return -1;
    if (conf->limits.inflight_bytes < conf->limits.body_bytes)
        return fail(c, value_line(map_get(root, "limits"), "inflight_bytes"), "limits.inflight_bytes",
                    "is smaller than limits.body_bytes: no body could ever be produced");
    return check_security(c, conf, root);
}

/* ------------------------------------------------------------------------------------------ */
/* The tables. Adding an option: add a field to sg_conf.h and one row here.                  */

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};
static const char *const formats[] = {"json", "avro", NULL};

static const prop_t listen_props[] = {
    {.name = "address",
     .type = PT_HOSTPORT,
     FIELD(sg_listen_conf_t, host),
     .aux = offsetof(sg_listen_conf_t, port),
     .flags = P_REQUIRED,
     .doc = "Address to listen on: host:port, or [ipv6]:port; port 0 picks a free port."},
    {.name = "cert",
     .type = PT_FILE,
     FIELD(sg_listen_conf_t, cert),
     .doc = "TLS certificate chain (PEM), relative to the config file; needs key."},
    {.name = "key",
     .type = PT_FILE,
     FIELD(sg_listen_conf_t, key),
     .doc = "TLS private key (PEM), relative to the config file; needs cert."},
    {0},
};
static const struct_desc_t listen_desc = {
    .name = "listener", .size = sizeof(sg_listen_conf_t), .props = listen_props, .check = check_listen, .shorthand = "address"};

static const prop_t embedded_props[] = {
    {.name = "brokers",
     .type = PT_INT,
     FIELD(sg_conf_t, kafka.embedded_brokers),
     .min = 1,
     .max = 16,
     .def = "1",
     .doc = "Number of brokers of the embedded (in-process mock) cluster."},
    {0},
};
static const struct_desc_t embedded_desc = {.name = "embedded cluster", .props = embedded_props};

static const prop_t kafka_props[] = {
    {.name = "brokers",
     .type = PT_BROKERS,
     FIELD(sg_conf_t, kafka.brokers),
     .aux = offsetof(sg_conf_t, kafka.embedded),
     .def = "embedded",
     .doc = "\"embedded\" runs an in-process cluster for development; otherwise a bootstrap list \"h1:9092,h2:9092\"."},
    {.name = "embedded", .type = PT_SECTION, .sub = &embedded_desc, .doc = "Settings of the embedded cluster."},
    {.name = "create_topics",
     .type = PT_BOOL,
     FIELD(sg_conf_t, kafka.create_topics),
     .def = "false",
     .doc = "Create the declared topics through the Admin API on a real cluster."},
    {.name = "produce_timeout",
     .type = PT_DURATION,
     FIELD(sg_conf_t, kafka.produce_timeout_ms),
     .min = 1,
     .max = 300 * 1000,
     .def = "10s",
     .doc = "How long a produce may take before the request fails with 503."},
    {.name = "properties",
     .type = PT_PROPERTIES,
     FIELD(sg_conf_t, kafka.properties),
     .aux = offsetof(sg_conf_t, kafka.n_properties),
     .max = 256,
     .doc = "librdkafka properties passed as-is, in file order (SASL, TLS, tuning); values become strings."},
    {0},
};
static const struct_desc_t kafka_desc = {.name = "kafka", .props = kafka_props};

static const prop_t topic_props[] = {
    {.name = "name", .type = PT_TOPIC, FIELD(sg_topic_conf_t, name), .flags = P_REQUIRED, .doc = "Topic name."},
    {.name = "partitions",
     .type = PT_INT,
     FIELD(sg_topic_conf_t, partitions),
     .min = 1,
     .max = 10000,
     .def = "1",
     .doc = "Partition count when the topic is created."},
    {.name = "replication",
     .type = PT_INT,
     FIELD(sg_topic_conf_t, replication),
     .min = 1,
     .max = 32,
     .doc = "Replication factor when created. Default: the cluster's (default.replication.factor; 1 in embedded mode, "
            "where it is capped to the broker count)."},
    {.name = "config",
     .type = PT_PROPERTIES,
     FIELD(sg_topic_conf_t, config),
     .aux = offsetof(sg_topic_conf_t, n_config),
     .max = 64,
     .doc = "Topic configs set when the topic is created, as kafka-topics --config sets them (e.g. {cleanup.policy: "
            "compact} for a table's topic); the broker checks them. Not used by the embedded cluster."},
    {0},
};
static const struct_desc_t topic_desc = {.name = "topic", .size = sizeof(sg_topic_conf_t), .props = topic_props};

static const prop_t schema_props[] = {
    {.name = "name",
     .type = PT_NAME,
     FIELD(sg_schema_conf_t, name),
     .flags = P_REQUIRED,
     .doc = "Name routes use to refer to the schema."},
    {.name = "file",
     .type = PT_FILE,
     FIELD(sg_schema_conf_t, file),
     .flags = P_REQUIRED,
     .doc = "Avro schema file (.avsc), relative to the config file."},
    {0},
};
static const struct_desc_t schema_desc = {.name = "schema", .size = sizeof(sg_schema_conf_t), .props = schema_props};

static const prop_t reply_props[] = {
    {.name = "topic",
     .type = PT_TOPIC,
     FIELD(sg_reply_conf_t, topic),
     .flags = P_REQUIRED,
     .doc = "Topic the workers send replies to."},
    {.name = "timeout",
     .type = PT_DURATION,
     FIELD(sg_reply_conf_t, timeout_ms),
     .min = 1,
     .max = 3600 * 1000,
     .def = "10s",
     .doc = "How long a request waits for its reply before answering 202 with a status link."},
    {.name = "max_timeout",
     .type = PT_DURATION,
     FIELD(sg_reply_conf_t, max_timeout_ms),
     .min = 1,
     .max = 3600 * 1000,
     .def = "60s",
     .doc = "Longest wait a client may ask for with Prefer: wait=N (>= timeout)."},
    {.name = "headers",
     .type = PT_HEADERS,
     FIELD(sg_reply_conf_t, headers),
     .aux = offsetof(sg_reply_conf_t, n_headers),
     .max = 64,
     .doc = "Reply event headers copied to the HTTP response (lower-cased)."},
    {.name = "partitions",
     .type = PT_PARTITIONS,
     FIELD(sg_reply_conf_t, partitions),
     .aux = offsetof(sg_reply_conf_t, n_partitions),
     .min = 0,
     .max = 100000,
     .doc = "Pin this instance to these reply partitions: it reads only them and asks workers to reply there "
            "(kafka_replyPartition). Default: every partition, so any instance can answer for any request."},
    {.name = "correlation_header",
     .type = PT_STRING,
     FIELD(sg_reply_conf_t, correlation_header),
     .def = SG_HEADER_CORRELATION,
     .doc = "Event header carrying the request id (ASCII) on the request and, unchanged, on the reply. Default: Spring "
            "Kafka's. Routes may share a reply topic with different names: a reply is matched by any of them."},
    {.name = "reply_topic_header",
     .type = PT_STRING,
     FIELD(sg_reply_conf_t, reply_topic_header),
     .def = SG_HEADER_REPLY_TOPIC,
     .doc = "Request event header naming the reply topic. Default: Spring Kafka's."},
    {.name = "reply_partition_header",
     .type = PT_STRING,
     FIELD(sg_reply_conf_t, reply_partition_header),
     .def = SG_HEADER_REPLY_PARTITION,
     .doc = "Request event header with the reply partition (4-byte big-endian), sent with pinned partitions. Default: "
            "Spring Kafka's."},
    {0},
};
static const struct_desc_t reply_desc = {.name = "reply", .props = reply_props};

static const prop_t route_props[] = {
    {.name = "name",
     .type = PT_NAME,
     FIELD(sg_route_conf_t, name),
     .flags = P_REQUIRED,
     .doc = "Unique route name (metrics, event header)."},
    {.name = "method",
     .type = PT_STRENUM,
     FIELD(sg_route_conf_t, method),
     .flags = P_REQUIRED,
     .enums = methods,
     .doc = "HTTP method."},
    {.name = "path",
     .type = PT_PATH,
     FIELD(sg_route_conf_t, path),
     .flags = P_REQUIRED,
     .doc = "Path template, e.g. /orders/{id}; not under a reserved prefix."},
    {.name = "topic",
     .type = PT_TOPIC,
     FIELD(sg_route_conf_t, topic),
     .flags = P_REQUIRED,
     .doc = "Topic the request event is produced to."},
    {.name = "key",
     .type = PT_KEYSPEC,
     FIELD(sg_route_conf_t, key),
     .def = "none",
     .doc = "Event key: path:NAME, body:/json/pointer, header:NAME, claim:NAME (a string claim of the caller's credential; "
            "needs auth) or none."},
    {.name = "schema", .type = PT_NAME, FIELD(sg_route_conf_t, schema), .doc = "Schema (from schemas) of the body."},
    {.name = "format",
     .type = PT_ENUM,
     FIELD(sg_route_conf_t, format),
     .enums = formats,
     .def = "json",
     .doc = "Event value encoding; avro needs a schema."},
    {.name = "reply",
     .type = PT_SECTION,
     FIELD(sg_route_conf_t, reply),
     .aux = offsetof(sg_route_conf_t, has_reply),
     .flags = P_PRESENCE,
     .sub = &reply_desc,
     .doc = "Makes the route request-reply."},
    {.name = "scopes",
     .type = PT_SCOPES,
     FIELD(sg_route_conf_t, access.scopes),
     .aux = offsetof(sg_route_conf_t, access.n_scopes),
     .max = 32,
     .doc = "Scopes a credential must all have (with auth)."},
    {.name = "public",
     .type = PT_BOOL,
     FIELD(sg_route_conf_t, access.is_public),
     .def = "false",
     .doc = "Needs no credential even with auth (never with scopes)."},
    {0},
};
static const struct_desc_t route_desc = {.name = "route",
                                         .size = sizeof(sg_route_conf_t),
                                         .props = route_props,
                                         .check = check_route,
                                         .has_line = true,
                                         .line_offset = offsetof(sg_route_conf_t, line)};

static const char *const placements[] = {"global", "partitioned", NULL};

/* A partitioned table owns its topic's partitions through a consumer group of its own: another
 * table on the same topic would need other partitions of the same consumer. */
static int check_table(ctx_t *c, void *elem, const node_t *map, const char *path)
{
    sg_table_conf_t *table = elem;
    char key_path[KEYPATH_MAX];
    if (table->placement != SG_PLACEMENT_PARTITIONED && map_get(map, "standbys") != NULL && table->standbys > 0) {
        path_key(key_path, sizeof(key_path), path, "standbys");
        return fail(c, value_line(map, "standbys"), key_path,
                    "standbys needs placement: partitioned (a global table has every partition on every instance)");
    }
    return 0;
}

static const prop_t table_props[] = {
    {.name = "name",
     .type = PT_NAME,
     FIELD(sg_table_conf_t, name),
     .flags = P_REQUIRED,
     .doc = "Table name, served under /tables/NAME."},
    {.name = "topic",
     .type = PT_TOPIC,
     FIELD(sg_table_conf_t, topic),
     .flags = P_REQUIRED,
     .doc = "Topic the table is materialized from."},
    {.name = "placement",
     .type = PT_ENUM,
     FIELD(sg_table_conf_t, placement),
     .enums = placements,
     .def = "global",
     .doc = "global: every instance materializes every partition. partitioned: the deployment's instances share the "
            "partitions (a consumer group per table), and a read for a key another instance owns is forwarded to it."},
    {.name = "standbys",
     .type = PT_INT,
     FIELD(sg_table_conf_t, standbys),
     .min = 0,
     .max = 8,
     .def = "0",
     .doc = "partitioned: each instance also keeps copies of the partitions of this many other instances (the next ones "
            "in name order), which answer when their owner cannot and take over at once when they move here."},
    {.name = "scopes",
     .type = PT_SCOPES,
     FIELD(sg_table_conf_t, access.scopes),
     .aux = offsetof(sg_table_conf_t, access.n_scopes),
     .max = 32,
     .doc = "Scopes a credential must all have to read the table under /tables (with auth; default tables:read)."},
    {.name = "public",
     .type = PT_BOOL,
     FIELD(sg_table_conf_t, access.is_public),
     .def = "false",
     .doc = "Needs no credential even with auth (never with scopes)."},
    {0},
};
static const struct_desc_t table_desc = {.name = "table",
                                         .size = sizeof(sg_table_conf_t),
                                         .props = table_props,
                                         .check = check_table,
                                         .has_line = true,
                                         .line_offset = offsetof(sg_table_conf_t, line)};

static const prop_t query_props[] = {
    {.name = "path",
     .type = PT_PATH,
     FIELD(sg_query_conf_t, path),
     .flags = P_REQUIRED,
     .doc = "GET path template exposing the table."},
    {.name = "table", .type = PT_NAME, FIELD(sg_query_conf_t, table), .flags = P_REQUIRED, .doc = "Table (from tables) to read."},
    {.name = "key",
     .type = PT_KEYSPEC,
     FIELD(sg_query_conf_t, key),
     .flags = P_REQUIRED,
     .doc = "Row key: path:NAME, header:NAME or claim:NAME (the caller's own row, e.g. claim:sub; needs auth); none makes "
            "the path a scan of the table."},
    {.name = "scopes",
     .type = PT_SCOPES,
     FIELD(sg_query_conf_t, access.scopes),
     .aux = offsetof(sg_query_conf_t, access.n_scopes),
     .max = 32,
     .doc = "Scopes a credential must all have (with auth)."},
    {.name = "public",
     .type = PT_BOOL,
     FIELD(sg_query_conf_t, access.is_public),
     .def = "false",
     .doc = "Needs no credential even with auth (never with scopes)."},
    {0},
};
static const struct_desc_t query_desc = {.name = "query",
                                         .size = sizeof(sg_query_conf_t),
                                         .props = query_props,
                                         .check = check_query,
                                         .has_line = true,
                                         .line_offset = offsetof(sg_query_conf_t, line)};

/* static: a URL prefix without parameters, and a directory that exists now (a typo fails the
 * start, not the first request). */
static int check_static(ctx_t *c, void *elem, const node_t *map, const char *path)
{
    const sg_static_conf_t *mount = elem;
    char key_path[KEYPATH_MAX], buf[80];
    size_t len = strlen(mount->path);
    path_key(key_path, sizeof(key_path), path, "path");
    if (strchr(mount->path, '{') != NULL)
        return fail(c, value_line(map, "path"), key_path, "a static path has no parameters: %s",
                    quote(buf, sizeof(buf), mount->path));
    if (len > 1 && mount->path[len - 1] == '/')
        return fail(c, value_line(map, "path"), key_path, "remove the trailing '/' from %s", quote(buf, sizeof(buf), mount->path));
    struct stat st;
    path_key(key_path, sizeof(key_path), path, "dir");
    if (stat(mount->dir, &st) != 0)
        return fail(c, value_line(map, "dir"), key_path, "%s: %s", quote(buf, sizeof(buf), mount->dir), strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return fail(c, value_line(map, "dir"), key_path, "%s is not a directory", quote(buf, sizeof(buf), mount->dir));
    return 0;
}

static const prop_t static_props[] = {
    {.name = "path",
     .type = PT_PATH,
     FIELD(sg_static_conf_t, path),
     .flags = P_REQUIRED,
     .doc = "URL path the directory is served under (\"/\" for the whole site); routes and built-ins win."},
    {.name = "dir",
     .type = PT_FILE,
     FIELD(sg_static_conf_t, dir),
     .flags = P_REQUIRED,
     .doc = "Directory of files (relative to the config file): MIME types, ETag/304, Range; index.html, no listing."},
    {0},
};
static const struct_desc_t static_desc = {.name = "static mount",
                                          .size = sizeof(sg_static_conf_t),
                                          .props = static_props,
                                          .check = check_static,
                                          .has_line = true,
                                          .line_offset = offsetof(sg_static_conf_t, line)};

static const prop_t limits_props[] = {
    {.name = "body_bytes",
     .type = PT_SIZE,
     FIELD(sg_conf_t, limits.body_bytes),
     .min = 1,
     .max = 64 << 20,
     .def = "1MiB",
     .doc = "Largest request body (413 beyond)."},
    {.name = "header_bytes",
     .type = PT_SIZE,
     FIELD(sg_conf_t, limits.header_bytes),
     .min = 1024,
     .max = 1 << 20,
     .def = "64KiB",
     .doc = "Largest request header section."},
    {.name = "pending",
     .type = PT_INT,
     FIELD(sg_conf_t, limits.pending),
     .min = 1,
     .max = 10000000,
     .def = "100000",
     .doc = "Requests waiting on Kafka at once, on all loops together: commands until the broker acknowledged them (and "
            "their reply came), long-polls and status streams, table reads waiting for their conditions, watches (503 "
            "beyond)."},
    {.name = "inflight_bytes",
     .type = PT_SIZE,
     FIELD(sg_conf_t, limits.inflight_bytes),
     .min = 1024,
     .max = INT64_C(64) << 30,
     .def = "256MiB",
     .doc = "Event bytes produced and not yet acknowledged by the broker, all commands together (503 beyond); at least "
            "body_bytes."},
    {.name = "connections",
     .type = PT_INT,
     FIELD(sg_conf_t, limits.connections),
     .min = 0,
     .max = 10000000,
     .def = "0",
     .doc = "Client connections at once (accepting pauses at the limit); 0: what RLIMIT_NOFILE allows after 512 "
            "descriptors for Kafka, RocksDB and the listeners, at most 16384. Checked against RLIMIT_NOFILE at start."},
    {.name = "write_timeout",
     .type = PT_DURATION,
     FIELD(sg_conf_t, limits.write_timeout_ms),
     .min = 100,
     .max = 3600 * 1000,
     .def = "30s",
     .doc = "A connection whose write makes no progress for this long (a client that stopped reading) is closed."},
    {.name = "queued_bytes",
     .type = PT_SIZE,
     FIELD(sg_conf_t, limits.queued_bytes),
     .min = 64 * 1024,
     .max = INT64_C(1) << 30,
     .def = "16MiB",
     .doc = "Bytes written to a connection and not yet read by its client; beyond, the connection is closed."},
    {.name = "token_wait",
     .type = PT_DURATION,
     FIELD(sg_conf_t, limits.token_wait_ms),
     .min = 0,
     .max = 600 * 1000,
     .def = "5s",
     .doc = "How long a table read waits for the view to reach its Consistency-Token (503 after)."},
    {.name = "token_wait_max",
     .type = PT_DURATION,
     FIELD(sg_conf_t, limits.token_wait_max_ms),
     .min = 0,
     .max = 600 * 1000,
     .def = "30s",
     .doc = "Longest such wait a client may ask for with Prefer: wait=N."},
    {.name = "table_cache",
     .type = PT_SIZE,
     FIELD(sg_conf_t, limits.table_cache_bytes),
     .min = 8 * 1024 * 1024,
     .max = INT64_C(1) << 40,
     .def = "512MiB",
     .doc = "Memory the tables keep for reads, all tables together: half RocksDB's block cache (uncompressed "
            "blocks, warmed after a restore while the tables fit), half its row cache (rows read recently). Both "
            "fill only as they are used; size it to the tables' data for reads from memory."},
    {.name = "registry_write_rate",
     .type = PT_RATE,
     FIELD(sg_conf_t, limits.registry_write_rate),
     .min = 1,
     .max = 1000000,
     .def = "10/s",
     .flags = P_ALLOW_OFF,
     .doc = "Schema registry writes per client address (429 beyond), with or without auth; off: no limit."},
    {.name = "registry_write_burst",
     .type = PT_INT,
     FIELD(sg_conf_t, limits.registry_write_burst),
     .min = 1,
     .max = 1000000,
     .def = "20",
     .doc = "Registry writes a client address may make at once before registry_write_rate applies."},
    {0},
};
static const struct_desc_t limits_desc = {.name = "limits", .props = limits_props};

static const prop_t cors_props[] = {
    {.name = "origins",
     .type = PT_ORIGINS,
     FIELD(sg_conf_t, cors.origins),
     .aux = offsetof(sg_conf_t, cors.n_origins),
     .max = 64,
     .doc = "Allowed origins (scheme://host[:port]), or a single \"*\"; none by default."},
    {.name = "max_age",
     .type = PT_DURATION_S,
     FIELD(sg_conf_t, cors.max_age_s),
     .min = 0,
     .max = 86400 * 1000,
     .def = "600s",
     .doc = "Access-Control-Max-Age of preflight answers."},
    {0},
};
static const struct_desc_t cors_desc = {.name = "cors", .props = cors_props};

static const prop_t requests_props[] = {
    {.name = "secret",
     .type = PT_STRING,
     FIELD(sg_conf_t, requests.secret),
     .doc = "Key for the MAC in request ids; every instance of a deployment needs the same one. Default: the "
            "deployment's own, made by its first instance and shared through its internal topic _streamgate.<name>."},
    {.name = "retention",
     .type = PT_DURATION,
     FIELD(sg_conf_t, requests.retention_ms),
     .min = 1000,
     .max = 30LL * 86400 * 1000,
     .def = "1h",
     .doc = "How long request outcomes and idempotency keys are kept."},
    {0},
};
static const struct_desc_t requests_desc = {.name = "requests", .props = requests_props};

/* ------------------------------------------------------------------------------------------ */
/* Deployment (DESIGN §8)                                                                     */

/* The name becomes part of internal topic names (_streamgate.<name>, _streamgate.<name>.idempotency),
 * so it may not hold a '.': "a.idempotency" would name another deployment's claims topic. */
static int check_deployment(ctx_t *c, void *elem, const node_t *map, const char *path)
{
    const sg_conf_t *conf = elem;
    char key_path[KEYPATH_MAX], buf[80];
    if (strchr(conf->deployment.name, '.') != NULL) {
        path_key(key_path, sizeof(key_path), path, "name");
        return fail(c, value_line(map, "name"), key_path,
                    "invalid deployment name %s: use letters, digits, '_' or '-' (it is part of internal topic names, "
                    "where a '.' would be ambiguous)",
                    quote(buf, sizeof(buf), conf->deployment.name));
    }
    if (conf->deployment.advertise.text != NULL && strchr(conf->deployment.advertise.text, '?') != NULL) {
        path_key(key_path, sizeof(key_path), path, "advertise");
        return fail(c, value_line(map, "advertise"), key_path, "an advertised URL is a base URL: no query string");
    }
    return 0;
}

static const prop_t deployment_props[] = {
    {.name = "name",
     .type = PT_NAME,
     FIELD(sg_conf_t, deployment.name),
     .def = "default",
     .doc = "The deployment: instances with the same name (on the same Kafka cluster) share the request-id secret "
            "and Idempotency-Key claims through the topics _streamgate.<name> and _streamgate.<name>.idempotency."},
    {.name = "instance",
     .type = PT_NAME,
     FIELD(sg_conf_t, deployment.instance),
     .doc = "This instance's name within the deployment. Default: one made once and kept in <data_dir>/instance.id."},
    {.name = "advertise",
     .type = PT_URL,
     FIELD(sg_conf_t, deployment.advertise),
     .doc = "The URL other instances reach this one at. Default: the first listen address (a wildcard host "
            "replaced by the host name)."},
    {0},
};
static const struct_desc_t deployment_desc = {.name = "deployment", .props = deployment_props, .check = check_deployment};

/* schema_registry.url: plain HTTP only (the client is a small blocking one used at start and by
 * the decode threads); host and port are checked here so a typo fails at start, not at first use. */
static int check_schema_registry(ctx_t *c, void *elem, const node_t *map, const char *path)
{
    const sg_conf_t *conf = elem;
    const char *url = conf->schema_registry.url;
    if (url == NULL)
        return 0;
    char key_path[KEYPATH_MAX];
    path_key(key_path, sizeof(key_path), path, "url");
    unsigned line = value_line(map, "url");
    if (strncmp(url, "http://", 7) != 0)
        return fail(c, line, key_path, "expected http://HOST[:PORT][/PREFIX]%s",
                    strncmp(url, "https://", 8) == 0 ? " (https is not supported)" : "");
    const char *host = url + 7, *end = host + strcspn(host, ":/");
    if (end == host)
        return fail(c, line, key_path, "the URL has no host");
    for (const char *p = url; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' || (unsigned char)*p >= 0x7f)
            return fail(c, line, key_path, "the URL must not contain spaces, control characters, '?' or '#'");
    if (*end == ':') {
        char *after;
        long port = strtol(end + 1, &after, 10);
        if (after == end + 1 || port < 1 || port > 65535 || (*after != '\0' && *after != '/'))
            return fail(c, line, key_path, "the port must be 1..65535");
        end = after;
    }
    if (strlen(end) > 0 && end[strlen(end) - 1] == '/')
        return fail(c, line, key_path, "remove the trailing '/'");
    return 0;
}

static const prop_t schema_registry_props[] = {
    {.name = "url",
     .type = PT_STRING,
     FIELD(sg_conf_t, schema_registry.url),
     .doc = "External Confluent-compatible schema registry, http://HOST[:PORT][/PREFIX]: config schemas are "
            "registered there and /registry is not served. Default: the built-in registry under /registry."},
    {0},
};
static const struct_desc_t schema_registry_desc = {
    .name = "schema_registry", .props = schema_registry_props, .check = check_schema_registry};

/* In sg_log_level_t order (config/base/sg_log.h). */
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL}; /* sg_log_format_t order */
/* Apache's combined format, then the request's duration (seconds, microsecond resolution). */
#define SG_CONF_ACCESS_FORMAT_DEFAULT "%h %l %u %t \"%r\" %s %b \"%{Referer}i\" \"%{User-agent}i\" %{duration}x"

static const prop_t log_props[] = {
    {.name = "level",
     .type = PT_ENUM,
     FIELD(sg_conf_t, log.level),
     .enums = log_levels,
     .def = "info",
     .doc = "Most verbose level written to the log: error, warn, info or debug."},
    {.name = "format",
     .type = PT_ENUM,
     FIELD(sg_conf_t, log.format),
     .enums = log_formats,
     .def = "text",
     .doc = "The gateway's own log lines: text (streamgate: LEVEL: message) or json ({\"ts\",\"level\",\"msg\"} per line)."},
    {.name = "access",
     .type = PT_STRING,
     FIELD(sg_conf_t, log.access),
     .doc = "Access log, a line per request: a file (appended; relative to the working directory) or - for standard "
            "output. Default: none."},
    {.name = "access_format",
     .type = PT_STRING,
     FIELD(sg_conf_t, log.access_format),
     .def = SG_CONF_ACCESS_FORMAT_DEFAULT,
     .doc = "H2O access-log format (%h %t %r %s %b %{Header}i %{duration}x ...): combined plus the request's "
            "duration in seconds by default; a format starting with { is escaped as JSON."},
    {0},
};
static const struct_desc_t log_desc = {.name = "log", .props = log_props};

/* ------------------------------------------------------------------------------------------ */
/* Authentication and rate limits: tables (DESIGN §6)                                         */

static const prop_t jwt_props[] = {
    {.name = "issuer",
     .type = PT_STRING,
     FIELD(sg_jwt_conf_t, issuer),
     .flags = P_REQUIRED,
     .doc = "The iss every token must carry."},
    {.name = "audience",
     .type = PT_STRING,
     FIELD(sg_jwt_conf_t, audience),
     .flags = P_REQUIRED,
     .doc = "A value the token's aud (string or array) must contain."},
    {.name = "jwks_file",
     .type = PT_FILE,
     FIELD(sg_jwt_conf_t, jwks_file),
     .doc = "JWK Set with the verification keys, relative to the config file (re-read like a URL)."},
    {.name = "jwks_url",
     .type = PT_URL,
     FIELD(sg_jwt_conf_t, jwks_url),
     .doc = "http(s) URL of the JWK Set, fetched off the event loops and refreshed; the last good set is kept."},
    {.name = "jwks_ca_file",
     .type = PT_FILE,
     FIELD(sg_jwt_conf_t, jwks_ca_file),
     .doc = "Extra CA certificates (PEM) trusted for an https jwks_url, besides the system store."},
    {.name = "jwks_refresh",
     .type = PT_DURATION,
     FIELD(sg_jwt_conf_t, jwks_refresh_ms),
     .min = 1000,
     .max = 86400 * 1000,
     .def = "5m",
     .doc = "How often the key set is fetched again."},
    {.name = "jwks_min_refresh",
     .type = PT_DURATION,
     FIELD(sg_jwt_conf_t, jwks_min_refresh_ms),
     .min = 100,
     .max = 3600 * 1000,
     .def = "5s",
     .doc = "Shortest time between two fetches (a token with an unknown kid asks for one)."},
    {.name = "jwks_timeout",
     .type = PT_DURATION,
     FIELD(sg_jwt_conf_t, jwks_timeout_ms),
     .min = 100,
     .max = 60 * 1000,
     .def = "5s",
     .doc = "Deadline of one key set fetch: connect, TLS handshake and read."},
    {.name = "algorithms",
     .type = PT_ALGORITHMS,
     FIELD(sg_jwt_conf_t, algorithms),
     .aux = offsetof(sg_jwt_conf_t, n_algorithms),
     .min = 1,
     .max = 12,
     .def = "[RS256, ES256]",
     .doc = "Accepted signature algorithms; none is never accepted, HS256/384/512 only with hmac_secret."},
    {.name = "leeway",
     .type = PT_DURATION,
     FIELD(sg_jwt_conf_t, leeway_ms),
     .min = 0,
     .max = 600 * 1000,
     .def = "30s",
     .doc = "Clock skew allowed when checking exp, nbf and iat."},
    {.name = "scopes_claim",
     .type = PT_STRING,
     FIELD(sg_jwt_conf_t, scopes_claim),
     .def = "scope",
     .doc = "Claim with the token's scopes: a space-separated string or an array of strings."},
    {.name = "principal_claim",
     .type = PT_STRING,
     FIELD(sg_jwt_conf_t, principal_claim),
     .def = "sub",
     .doc = "Claim naming the principal (a non-empty string)."},
    {.name = "hmac_secret",
     .type = PT_STRING,
     FIELD(sg_jwt_conf_t, hmac_secret),
     .doc = "Shared secret (>= 32 bytes) for HS256/384/512 tokens; the only way to allow them."},
    {0},
};
static const struct_desc_t jwt_desc = {.name = "jwt", .props = jwt_props, .check = check_jwt};

static const prop_t api_key_props[] = {
    {.name = "name", .type = PT_NAME, FIELD(sg_api_key_conf_t, name), .flags = P_REQUIRED, .doc = "The key's principal."},
    {.name = "sha256",
     .type = PT_SHA256,
     FIELD(sg_api_key_conf_t, sha256),
     .flags = P_REQUIRED,
     .doc = "SHA-256 of the key in hex (printf %s \"$KEY\" \\| sha256sum); the key itself is never stored."},
    {.name = "scopes",
     .type = PT_SCOPES,
     FIELD(sg_api_key_conf_t, scopes),
     .aux = offsetof(sg_api_key_conf_t, n_scopes),
     .max = 64,
     .doc = "Scopes the key grants."},
    {0},
};
static const struct_desc_t api_key_desc = {.name = "API key",
                                           .size = sizeof(sg_api_key_conf_t),
                                           .props = api_key_props,
                                           .has_line = true,
                                           .line_offset = offsetof(sg_api_key_conf_t, line)};

static const prop_t auth_props[] = {
    {.name = "jwt",
     .type = PT_SECTION,
     FIELD(sg_auth_conf_t, jwt),
     .aux = offsetof(sg_auth_conf_t, has_jwt),
     .flags = P_PRESENCE,
     .sub = &jwt_desc,
     .doc = "Bearer tokens (JWT) and how they are verified."},
    {.name = "api_keys",
     .type = PT_LIST,
     FIELD(sg_auth_conf_t, api_keys),
     .aux = offsetof(sg_auth_conf_t, n_api_keys),
     .max = 1000,
     .sub = &api_key_desc,
     .unique = "name",
     .doc = "Keys accepted in the X-API-Key header."},
    {.name = "principal_header",
     .type = PT_STRING,
     FIELD(sg_auth_conf_t, principal_header),
     .def = "streamgate-principal",
     .doc = "Event header carrying the authenticated principal (a client's own is never forwarded)."},
    {0},
};
static const struct_desc_t auth_desc = {.name = "auth", .props = auth_props, .check = check_auth};

static const char *const rate_pers[] = {"principal", "ip", NULL}; /* sg_rate_per_t order */

static const prop_t rate_limit_props[] = {
    {.name = "name",
     .type = PT_NAME,
     FIELD(sg_rate_limit_conf_t, name),
     .flags = P_REQUIRED,
     .doc = "Policy name, sent in RateLimit-Policy."},
    {.name = "routes",
     .type = PT_NAMES,
     FIELD(sg_rate_limit_conf_t, routes),
     .aux = offsetof(sg_rate_limit_conf_t, n_routes),
     .max = 1000,
     .doc = "Routes sharing this limit; none: every endpoint but /healthz and /readyz."},
    {.name = "per",
     .type = PT_ENUM,
     FIELD(sg_rate_limit_conf_t, per),
     .enums = rate_pers,
     .flags = P_REQUIRED,
     .doc = "Count each principal or each client address separately."},
    {.name = "rate",
     .type = PT_RATE,
     FIELD(sg_rate_limit_conf_t, rate),
     .min = 1,
     .max = 1000000,
     .flags = P_REQUIRED,
     .doc = "Sustained rate, e.g. 50/s, 3000/m or 100000/h."},
    {.name = "burst",
     .type = PT_INT,
     FIELD(sg_rate_limit_conf_t, burst),
     .min = 1,
     .max = 10000000,
     .doc = "Requests allowed at once before the rate applies; default: the rate's count."},
    {0},
};
static const struct_desc_t rate_limit_desc = {.name = "rate limit",
                                              .size = sizeof(sg_rate_limit_conf_t),
                                              .props = rate_limit_props,
                                              .check = check_rate_limit,
                                              .has_line = true,
                                              .line_offset = offsetof(sg_rate_limit_conf_t, line)};

static const prop_t root_props[] = {
    {.name = "listen",
     .type = PT_LIST,
     FIELD(sg_conf_t, listen),
     .aux = offsetof(sg_conf_t, n_listen),
     .min = 1,
     .max = 16,
     .def = "127.0.0.1:8080",
     .sub = &listen_desc,
     .doc = "Listeners: \"host:port\" strings or {address, cert, key} mappings."},
    {.name = "threads",
     .type = PT_INT,
     FIELD(sg_conf_t, threads),
     .min = 1,
     .max = SG_CONF_MAX_THREADS,
     .def = "2",
     .doc = "Event loop threads."},
    {.name = "data_dir",
     .type = PT_STRING,
     FIELD(sg_conf_t, data_dir),
     .def = "./data",
     .doc = "Directory for RocksDB state and kafka.bootstrap (relative to the working directory)."},
    {.name = "kafka", .type = PT_SECTION, .sub = &kafka_desc, .doc = "Kafka connection."},
    {.name = "topics",
     .type = PT_LIST,
     FIELD(sg_conf_t, topics),
     .aux = offsetof(sg_conf_t, n_topics),
     .max = 1000,
     .sub = &topic_desc,
     .unique = "name",
     .doc = "Topics created in embedded mode (or with create_topics)."},
    {.name = "schemas",
     .type = PT_LIST,
     FIELD(sg_conf_t, schemas),
     .aux = offsetof(sg_conf_t, n_schemas),
     .max = 1000,
     .sub = &schema_desc,
     .unique = "name",
     .doc = "Avro schemas routes can validate against."},
    {.name = "routes",
     .type = PT_LIST,
     FIELD(sg_conf_t, routes),
     .aux = offsetof(sg_conf_t, n_routes),
     .max = 1000,
     .sub = &route_desc,
     .unique = "name",
     .doc = "Command routes: HTTP request -> event."},
    {.name = "tables",
     .type = PT_LIST,
     FIELD(sg_conf_t, tables),
     .aux = offsetof(sg_conf_t, n_tables),
     .max = 256,
     .sub = &table_desc,
     .unique = "name",
     .doc = "Tables materialized from topics."},
    {.name = "queries",
     .type = PT_LIST,
     FIELD(sg_conf_t, queries),
     .aux = offsetof(sg_conf_t, n_queries),
     .max = 1000,
     .sub = &query_desc,
     .doc = "Extra GET paths reading a table."},
    {.name = "static",
     .type = PT_LIST,
     FIELD(sg_conf_t, statics),
     .aux = offsetof(sg_conf_t, n_statics),
     .max = 64,
     .sub = &static_desc,
     .unique = "path",
     .doc = "Directories served as static files when no route or built-in matches."},
    {.name = "limits", .type = PT_SECTION, .sub = &limits_desc, .doc = "Request limits."},
    {.name = "cors", .type = PT_SECTION, .sub = &cors_desc, .doc = "Cross-origin resource sharing."},
    {.name = "shutdown_timeout",
     .type = PT_DURATION,
     FIELD(sg_conf_t, shutdown_timeout_ms),
     .min = 0,
     .max = 3600 * 1000,
     .def = "10s",
     .doc = "Grace period for in-flight requests on SIGTERM."},
    {.name = "requests", .type = PT_SECTION, .sub = &requests_desc, .doc = "Request ids and request status."},
    {.name = "deployment",
     .type = PT_SECTION,
     .sub = &deployment_desc,
     .doc = "Which deployment this instance belongs to, its name in it, and its URL."},
    {.name = "log", .type = PT_SECTION, .sub = &log_desc, .doc = "The gateway's own log (standard error) and the access log."},
    {.name = "schema_registry",
     .type = PT_SECTION,
     .sub = &schema_registry_desc,
     .doc = "Where schemas are registered: built in (default) or an external registry."},
    {.name = "auth",
     .type = PT_SECTION,
     FIELD(sg_conf_t, auth),
     .aux = offsetof(sg_conf_t, has_auth),
     .flags = P_PRESENCE,
     .sub = &auth_desc,
     .doc = "Authentication; absent: none (every endpoint is open)."},
    {.name = "rate_limits",
     .type = PT_LIST,
     FIELD(sg_conf_t, rate_limits),
     .aux = offsetof(sg_conf_t, n_rate_limits),
     .max = 64,
     .sub = &rate_limit_desc,
     .unique = "name",
     .doc = "Token-bucket limits per principal or client address (429 beyond)."},
    {0},
};
static const struct_desc_t root_desc = {.name = "config", .size = sizeof(sg_conf_t), .props = root_props, .check = check_conf};

/* ------------------------------------------------------------------------------------------ */
/* Public API                                                                                 */

static sg_conf_t *load(ctx_t *c, const char *text, size_t len)
{
    if (len > SG_CONF_MAX_FILE_BYTES) {
        fail(c, 1, "(root)", "the config is larger than %u bytes", SG_CONF_MAX_FILE_BYTES);
        return NULL;
    }
    node_t *root;
    if (tree_parse(c, text, len, &root) != 0)
        return NULL;
    char buf[80];
    sg_conf_t *conf = NULL;
    if (root == NULL) {
        fail(c, 1, "(root)", "the config is empty");
        return NULL;
    }
    if (node_is_null(root)) {
        fail(c, 1, "(root)", "the config is empty");
        goto out;
    }
    if (root->kind != NODE_MAP) {
        fail(c, root->line, "(root)", "expected a mapping at the top level, got %s", node_what(root, buf, sizeof(buf)));
        goto out;
    }
    conf = sg_calloc(1, sizeof(*conf));
    conf->file = sg_strdup(c->file);
    if (parse_struct(c, &root_desc, root, (char *)conf, "") != 0) {
        sg_conf_destroy(conf);
        conf = NULL;
    }
out:
    node_free(root);
    return conf;
}

sg_conf_t *sg_conf_load_string(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    ctx_t c = {.file = name, .dir = NULL, .err = err, .errlen = errlen};
    return load(&c, text, len);
}

sg_conf_t *sg_conf_load(const char *path, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    /* Read one byte past the limit so that an oversized file is refused, not truncated. */
    char *text = sg_calloc(SG_CONF_MAX_FILE_BYTES + 2, 1);
    size_t len = fread(text, 1, SG_CONF_MAX_FILE_BYTES + 1, f);
    bool read_error = ferror(f) != 0;
    fclose(f);
    if (read_error) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        free(text);
        return NULL;
    }
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL ? NULL : slash == path ? sg_strdup("") : sg_memdup(path, (size_t)(slash - path));
    ctx_t c = {.file = path, .dir = dir, .err = err, .errlen = errlen};
    sg_conf_t *conf = load(&c, text, len);
    free(dir);
    free(text);
    return conf;
}

void sg_conf_destroy(sg_conf_t *conf)
{
    if (conf == NULL)
        return;
    free_struct(&root_desc, (char *)conf);
    free(conf->file);
    free(conf);
}

static const char *type_doc(const prop_t *row, char *buf, size_t size)
{
    char lo[32], hi[32], list[160];
    switch (row->type) {
    case PT_INT: snprintf(buf, size, "integer %" PRId64 "..%" PRId64, row->min, row->max); break;
    case PT_DURATION:
    case PT_DURATION_S:
        snprintf(buf, size, "%s %s..%s", prop_types[row->type].doc, fmt_duration(lo, sizeof(lo), row->min),
                 fmt_duration(hi, sizeof(hi), row->max));
        break;
    case PT_SIZE:
        snprintf(buf, size, "size %s..%s", fmt_size(lo, sizeof(lo), (uint64_t)row->min),
                 fmt_size(hi, sizeof(hi), (uint64_t)row->max));
        break;
    case PT_ENUM:
    case PT_STRENUM: {
        size_t o = 0;
        list[0] = '\0';
        for (size_t i = 0; row->enums[i] != NULL && o < sizeof(list); i++)
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? " \\| " : "", row->enums[i]);
        snprintf(buf, size, "%s", list);
        break;
    }
    case PT_LIST: snprintf(buf, size, "list of %s (max %" PRId64 ")", row->sub->name, row->max); break;
    default: snprintf(buf, size, "%s", prop_types[row->type].doc); break;
    }
    return buf;
}

static void dump_struct(FILE *out, const struct_desc_t *desc, const char *prefix)
{
    char key[KEYPATH_MAX], type[256], sub_prefix[KEYPATH_MAX + 8];
    for (const prop_t *row = desc->props; row->name != NULL; row++) {
        snprintf(key, sizeof(key), "%s%s", prefix, row->name);
        const char *def = row->flags & P_REQUIRED ? "required" : NULL;
        fprintf(out, "| `%s` | %s | ", key, type_doc(row, type, sizeof(type)));
        if (def != NULL)
            fprintf(out, "%s", def);
        else if (row->def != NULL)
            fprintf(out, "`%s`", row->def);
        fprintf(out, " | %s |\n", row->doc);
        if (row->type == PT_SECTION) {
            snprintf(sub_prefix, sizeof(sub_prefix), "%s.", key);
            dump_struct(out, row->sub, sub_prefix);
        } else if (row->type == PT_LIST) {
            snprintf(sub_prefix, sizeof(sub_prefix), "%s[].", key);
            dump_struct(out, row->sub, sub_prefix);
        }
    }
}

void sg_conf_dump_reference(void *out)
{
    FILE *f = out;
    fputs("# streamgate configuration reference\n\n"
          "Durations: 250ms, 10s, 2m, 1h (a bare number is milliseconds). "
          "Sizes: 512, 10KB (1000), 64KiB (1024), MB/MiB, GB/GiB.\n\n"
          "| Key | Type | Default | Description |\n"
          "|---|---|---|---|\n",
          f);
    dump_struct(f, &root_desc, "");
}
