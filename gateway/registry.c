/*
 * /registry: the Confluent Schema Registry REST subset, on the loop threads (bridge/sg_registry.h
 * holds the state and the log).
 *
 * Reads are answered at once from the registry's in-memory state. A write (register a schema,
 * set a level) must go through the `_schemas` log: the request is handed to the registry thread
 * and parked on its loop, guarded against the client going away (h2o_mem_alloc_shared) and bounded
 * by a deadline (h2o_timeout); the registry thread's answer comes back through the loop's
 * `registry_done` receiver. The parked record is freed only when that answer arrives: the registry
 * answers every operation it accepted exactly once (at the latest on shutdown).
 *
 * Status codes follow Confluent's (404 unknown subject/version/id, 409 incompatible, 422 invalid
 * schema or level), with RFC 9457 bodies like every other streamgate error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway_int.h"
#include "server.h"
#include "sg_path.h"
#include "sg_registry.h"

#define SG_REG_CONTENT_TYPE "application/vnd.schemaregistry.v1+json"
#define SG_REG_WAIT_MS 20000    /* longer than the registry's own deadline: it answers first */
#define SG_REG_MAX_WAITERS 1024 /* writes parked at once, all loops */
#define SG_REG_MAX_SEGMENTS 8

typedef enum { WAIT_REGISTER, WAIT_LEVEL } wait_kind_t;

typedef struct st_sg_reg_wait_t {
    h2o_multithread_message_t message; /* first: the registry thread sends the wait itself back */
    sg_loop_t *loop;
    h2o_req_t *req; /* NULL once answered by the deadline or the client is gone */
    struct st_sg_reg_wait_t **guard;
    h2o_timeout_entry_t timeout_entry;
    wait_kind_t kind;
    sg_compat_t level;
    int clear;
    sg_compat_t previous; /* DELETE /config/{s}: the level that was removed */
    /* the registry's answer */
    int err;
    char msg[1024];
    uint32_t id;
} sg_reg_wait_t;

/* --- responses ---------------------------------------------------------------------------- */

static void respond_json(h2o_req_t *req, int status, json_t *doc)
{
    size_t len = json_dumpb(doc, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    char *body = h2o_mem_alloc_pool(&req->pool, len + 1);
    json_dumpb(doc, body, len, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(doc);
    sg_http_respond(req, status, status == 200 ? "OK" : "Accepted", SG_REG_CONTENT_TYPE, body, len);
}

static void problem_for(h2o_req_t *req, int err, const char *subject, const char *msg)
{
    switch (err) {
    case SG_REG_E_INVALID:
        sg_problem_send(req, 422, "Unprocessable Content", "invalid-schema", "Invalid Schema", "schema", "%s", msg);
        break;
    case SG_REG_E_INCOMPATIBLE:
        sg_problem_send(req, 409, "Conflict", "incompatible-schema", "Incompatible Schema", "schema", "%s", msg);
        break;
    case SG_REG_E_NO_SUBJECT:
        sg_problem_send(req, 404, "Not Found", "unknown-subject", "Unknown Subject", "subject", "no subject %s",
                        subject != NULL ? subject : "");
        break;
    case SG_REG_E_NO_VERSION:
        sg_problem_send(req, 404, "Not Found", "unknown-version", "Unknown Version", "version", "subject %s has no such version",
                        subject != NULL ? subject : "");
        break;
    case SG_REG_E_NO_SCHEMA:
        sg_problem_send(req, 404, "Not Found", "unknown-schema", "Unknown Schema", "schema", "%s",
                        msg != NULL && msg[0] != '\0' ? msg : "no such schema");
        break;
    case SG_REG_E_LIMIT:
        sg_problem_send(req, 422, "Unprocessable Content", "registry-limit", "Registry Limit", NULL, "%s", msg);
        break;
    case SG_REG_E_BAD_LEVEL:
        sg_problem_send(req, 422, "Unprocessable Content", "invalid-compatibility-level", "Invalid Compatibility Level",
                        "compatibility", "%s", msg);
        break;
    default:
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        sg_problem_send(req, 503, "Service Unavailable", "registry-unavailable", "Registry Unavailable", NULL, "%s",
                        msg != NULL && msg[0] != '\0' ? msg : "the registry could not confirm the change");
        break;
    }
}

static json_t *version_doc(const char *subject, int version, const sg_registry_schema_t *schema)
{
    json_t *doc = json_pack("{s:s, s:i, s:I, s:s}", "subject", subject, "version", version, "id",
                            (json_int_t)sg_registry_schema_id(schema), "schema", sg_registry_schema_text(schema, NULL));
    if (doc == NULL)
        abort();
    return doc;
}

/* --- parked writes ------------------------------------------------------------------------ */

static void wait_detach(sg_reg_wait_t *wait)
{
    if (wait->req != NULL)
        *wait->guard = NULL;
    wait->req = NULL;
    if (h2o_timeout_is_linked(&wait->timeout_entry))
        h2o_timeout_unlink(&wait->timeout_entry);
}

static void on_wait_timeout(h2o_timeout_entry_t *entry)
{
    sg_reg_wait_t *wait = H2O_STRUCT_FROM_MEMBER(sg_reg_wait_t, timeout_entry, entry);
    h2o_req_t *req = wait->req;
    wait_detach(wait);
    if (req != NULL)
        problem_for(req, SG_REG_E_UNAVAILABLE, NULL, "the registry did not confirm the change in time");
}

static void on_wait_guard_dispose(void *p)
{
    sg_reg_wait_t **guard = p;
    if (*guard != NULL) {
        (*guard)->req = NULL; /* the client is gone; the registry's answer frees the wait */
        if (h2o_timeout_is_linked(&(*guard)->timeout_entry))
            h2o_timeout_unlink(&(*guard)->timeout_entry);
    }
}

/* Registry thread: hand the answer to the loop that parked the request. */
static void on_registry_done(void *opaque, const sg_registry_result_t *result)
{
    sg_reg_wait_t *wait = opaque;
    wait->err = result->err;
    snprintf(wait->msg, sizeof(wait->msg), "%s", result->msg != NULL ? result->msg : "");
    wait->id = result->id;
    h2o_multithread_send_message(&wait->loop->registry_done, &wait->message);
}

static void answer(sg_reg_wait_t *wait)
{
    h2o_req_t *req = wait->req;
    wait_detach(wait);
    if (req == NULL)
        return;
    if (wait->err != SG_REG_OK) {
        problem_for(req, wait->err, NULL, wait->msg);
    } else if (wait->kind == WAIT_REGISTER) {
        respond_json(req, 200, json_pack("{s:I}", "id", (json_int_t)wait->id));
    } else if (wait->clear) {
        respond_json(req, 200, json_pack("{s:s}", "compatibilityLevel", sg_compat_name(wait->previous)));
    } else {
        respond_json(req, 200, json_pack("{s:s}", "compatibility", sg_compat_name(wait->level)));
    }
}

void sg_registry_on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        sg_reg_wait_t *wait = H2O_STRUCT_FROM_MEMBER(sg_reg_wait_t, message.link, messages->next);
        h2o_linklist_unlink(&wait->message.link);
        answer(wait);
        atomic_fetch_sub(&wait->loop->server->registry_waiters, 1);
        free(wait);
    }
}

static sg_reg_wait_t *wait_new(h2o_req_t *req, wait_kind_t kind)
{
    sg_loop_t *loop = sg_loop_of(req);
    if (atomic_fetch_add(&loop->server->registry_waiters, 1) >= SG_REG_MAX_WAITERS) {
        atomic_fetch_sub(&loop->server->registry_waiters, 1);
        problem_for(req, SG_REG_E_UNAVAILABLE, NULL, "too many registry changes are waiting; try again");
        return NULL;
    }
    sg_reg_wait_t *wait = calloc(1, sizeof(*wait));
    if (wait == NULL)
        abort();
    wait->loop = loop;
    wait->req = req;
    wait->kind = kind;
    wait->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*wait->guard), on_wait_guard_dispose);
    *wait->guard = wait;
    wait->timeout_entry.cb = on_wait_timeout;
    h2o_timeout_link(loop->ctx.loop, sg_loop_wait_timeout(loop, SG_REG_WAIT_MS), &wait->timeout_entry);
    return wait;
}

/* The registry refused the operation up front (it will not call back). */
static void wait_refused(sg_reg_wait_t *wait, int rc)
{
    h2o_req_t *req = wait->req;
    wait_detach(wait);
    atomic_fetch_sub(&wait->loop->server->registry_waiters, 1);
    free(wait);
    problem_for(req, rc, NULL, "the registry is not running");
}

/* --- request parsing ---------------------------------------------------------------------- */

static int method_is(h2o_req_t *req, const char *method)
{
    return h2o_memis(req->method.base, req->method.len, method, strlen(method));
}

static int is_registry_media_type(h2o_iovec_t value)
{
    size_t len = 0;
    while (len < value.len && value.base[len] != ';' && value.base[len] != ' ' && value.base[len] != '\t')
        ++len;
    return h2o_lcstris(value.base, len, H2O_STRLIT("application/json")) ||
           h2o_lcstris(value.base, len, H2O_STRLIT("application/vnd.schemaregistry.v1+json")) ||
           h2o_lcstris(value.base, len, H2O_STRLIT("application/vnd.schemaregistry+json")) ||
           h2o_lcstris(value.base, len, H2O_STRLIT("application/octet-stream"));
}

/* The request's JSON object body, or NULL after answering the error. */
static json_t *body_object(h2o_req_t *req)
{
    const sg_conf_t *conf = sg_loop_of(req)->server->conf;
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (at < 0 || !is_registry_media_type(req->headers.entries[at].value)) {
        h2o_iovec_t value = at >= 0 ? req->headers.entries[at].value : h2o_iovec_init(H2O_STRLIT("absent"));
        sg_problem_send(req, 415, "Unsupported Media Type", "unsupported-media-type", "Unsupported Media Type", "Content-Type",
                        "Content-Type must be application/vnd.schemaregistry.v1+json or application/json, not %.*s",
                        (int)(value.len > 100 ? 100 : value.len), value.base);
        return NULL;
    }
    if (req->entity.len > conf->limits.body_bytes) {
        sg_problem_send(req, 413, "Content Too Large", "body-too-large", "Content Too Large", NULL,
                        "the request body is %zu bytes; limits.body_bytes is %llu", req->entity.len,
                        (unsigned long long)conf->limits.body_bytes);
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = req->entity.len > 0 ? json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        sg_problem_send(req, 400, "Bad Request", "invalid-json", "Invalid JSON", NULL, "%s",
                        req->entity.len == 0 ? "the request needs a JSON object body" : "the body is not a JSON object");
        return NULL;
    }
    return doc;
}

/* {"schema": "...", "schemaType": "AVRO", "references": []}: the schema text, or NULL after
 * answering the error. */
static const char *schema_of(h2o_req_t *req, json_t *doc, size_t *len)
{
    const json_t *type = json_object_get(doc, "schemaType");
    if (type != NULL && !(json_is_string(type) && strcmp(json_string_value(type), "AVRO") == 0)) {
        sg_problem_send(req, 422, "Unprocessable Content", "unsupported-schema-type", "Unsupported Schema Type", "schemaType",
                        "only AVRO schemas are supported");
        return NULL;
    }
    const json_t *refs = json_object_get(doc, "references");
    if (refs != NULL && !(json_is_array(refs) && json_array_size(refs) == 0)) {
        sg_problem_send(req, 422, "Unprocessable Content", "unsupported-references", "Unsupported References", "references",
                        "schema references are not supported");
        return NULL;
    }
    const json_t *schema = json_object_get(doc, "schema");
    if (!json_is_string(schema)) {
        sg_problem_send(req, 422, "Unprocessable Content", "invalid-schema", "Invalid Schema", "schema",
                        "the body needs \"schema\": the Avro schema as a JSON string");
        return NULL;
    }
    *len = json_string_length(schema);
    if (*len > SG_REGISTRY_MAX_SCHEMA_BYTES) {
        sg_problem_send(req, 413, "Content Too Large", "schema-too-large", "Schema Too Large", "schema",
                        "the schema is %zu bytes; at most %d are accepted", *len, SG_REGISTRY_MAX_SCHEMA_BYTES);
        return NULL;
    }
    return json_string_value(schema);
}

/* Decodes and checks a subject segment into the pool. NULL after answering the error. */
static const char *subject_of(h2o_req_t *req, h2o_iovec_t segment)
{
    size_t len = 0;
    char *decoded = sg_path_decode(segment.base, segment.len, &len);
    if (decoded == NULL || !sg_registry_subject_ok(decoded, len)) {
        free(decoded);
        sg_problem_send(req, 422, "Unprocessable Content", "invalid-subject", "Invalid Subject", "subject",
                        "a subject is 1..%d characters of A-Z a-z 0-9 . _ : @ + -", SG_REGISTRY_MAX_SUBJECT_LEN);
        return NULL;
    }
    char *copy = h2o_strdup(&req->pool, decoded, len).base;
    free(decoded);
    return copy;
}

/* "latest" or -1 -> -1; 1..INT32_MAX -> itself. Returns 0, or -1 after answering 422. */
static int version_of(h2o_req_t *req, h2o_iovec_t segment, int *version)
{
    if (h2o_memis(segment.base, segment.len, H2O_STRLIT("latest")) || h2o_memis(segment.base, segment.len, H2O_STRLIT("-1"))) {
        *version = -1;
        return 0;
    }
    long value = 0;
    size_t i = 0;
    for (; i < segment.len && i < 10 && segment.base[i] >= '0' && segment.base[i] <= '9'; i++)
        value = value * 10 + (segment.base[i] - '0');
    if (i == 0 || i != segment.len || value < 1 || value > INT32_MAX) {
        sg_problem_send(req, 422, "Unprocessable Content", "invalid-version", "Invalid Version", "version",
                        "a version is \"latest\" or an integer 1..2147483647");
        return -1;
    }
    *version = (int)value;
    return 0;
}

static int query_flag(h2o_req_t *req, const char *name)
{
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *query = req->path.base + req->query_at + 1;
    size_t len = req->path.len - req->query_at - 1;
    char want[64];
    int n = snprintf(want, sizeof(want), "%s=true", name);
    for (size_t at = 0; at < len;) {
        size_t end = at;
        while (end < len && query[end] != '&')
            end++;
        if (end - at == (size_t)n && memcmp(query + at, want, (size_t)n) == 0)
            return 1;
        at = end + 1;
    }
    return 0;
}

/* --- handlers ----------------------------------------------------------------------------- */

static void handle_register(h2o_req_t *req, sg_registry_t *reg, const char *subject)
{
    json_t *doc = body_object(req);
    if (doc == NULL)
        return;
    size_t len;
    const char *text = schema_of(req, doc, &len);
    if (text == NULL) {
        json_decref(doc);
        return;
    }
    /* Invalid schemas are refused here, and a schema already under the subject (clients register
     * at every start) is answered here, without a trip through the registry thread: versions are
     * never removed, so what is found stays true. */
    char err[512];
    const sg_registry_schema_t *known;
    int known_version;
    int rc = sg_registry_find(reg, subject, text, len, &known, &known_version, err, sizeof(err));
    if (rc == SG_REG_E_INVALID || rc == SG_REG_OK) {
        json_decref(doc);
        if (rc == SG_REG_OK)
            respond_json(req, 200, json_pack("{s:I}", "id", (json_int_t)sg_registry_schema_id(known)));
        else
            problem_for(req, SG_REG_E_INVALID, subject, err);
        return;
    }
    sg_reg_wait_t *wait = wait_new(req, WAIT_REGISTER);
    if (wait != NULL) {
        rc = sg_registry_register_async(reg, subject, text, len, on_registry_done, wait);
        if (rc != 0)
            wait_refused(wait, rc);
    }
    json_decref(doc);
}

static void handle_lookup(h2o_req_t *req, sg_registry_t *reg, const char *subject)
{
    json_t *doc = body_object(req);
    if (doc == NULL)
        return;
    size_t len;
    const char *text = schema_of(req, doc, &len);
    if (text != NULL) {
        const sg_registry_schema_t *schema;
        int version;
        char err[512] = "";
        int rc = sg_registry_find(reg, subject, text, len, &schema, &version, err, sizeof(err));
        if (rc == SG_REG_OK)
            respond_json(req, 200, version_doc(subject, version, schema));
        else
            problem_for(req, rc, subject, rc == SG_REG_E_NO_SCHEMA ? "the schema is not registered under this subject" : err);
    }
    json_decref(doc);
}

static void handle_compatibility(h2o_req_t *req, sg_registry_t *reg, const char *subject, int version)
{
    json_t *doc = body_object(req);
    if (doc == NULL)
        return;
    size_t len;
    const char *text = schema_of(req, doc, &len);
    if (text != NULL) {
        char err[1024] = "";
        int rc = sg_registry_check(reg, subject, version, text, len, err, sizeof(err));
        if (rc == SG_REG_OK)
            respond_json(req, 200, json_pack("{s:b}", "is_compatible", 1));
        else if (rc == SG_REG_E_INCOMPATIBLE)
            respond_json(req, 200, json_pack("{s:b, s:[s]}", "is_compatible", 0, "messages", err));
        else
            problem_for(req, rc, subject, err);
    }
    json_decref(doc);
}

static void handle_config(h2o_req_t *req, sg_registry_t *reg, const char *subject)
{
    sg_compat_t level;
    if (method_is(req, "GET") || method_is(req, "HEAD")) {
        if (sg_registry_get_level(reg, subject, &level) != SG_REG_OK) {
            if (!query_flag(req, "defaultToGlobal")) {
                sg_problem_send(req, 404, "Not Found", "no-subject-level", "No Subject Level", "subject",
                                "subject %s has no compatibility level of its own (the global one applies; "
                                "?defaultToGlobal=true shows it)",
                                subject);
                return;
            }
            sg_registry_get_level(reg, NULL, &level);
        }
        respond_json(req, 200, json_pack("{s:s}", "compatibilityLevel", sg_compat_name(level)));
        return;
    }
    if (method_is(req, "DELETE") && subject != NULL) {
        sg_compat_t previous;
        if (sg_registry_get_level(reg, subject, &previous) != SG_REG_OK) {
            sg_problem_send(req, 404, "Not Found", "no-subject-level", "No Subject Level", "subject",
                            "subject %s has no compatibility level of its own", subject);
            return;
        }
        sg_reg_wait_t *wait = wait_new(req, WAIT_LEVEL);
        if (wait == NULL)
            return;
        wait->clear = 1;
        wait->previous = previous;
        int rc = sg_registry_set_level_async(reg, subject, SG_COMPAT_BACKWARD, 1, on_registry_done, wait);
        if (rc != 0)
            wait_refused(wait, rc);
        return;
    }
    if (!method_is(req, "PUT")) {
        sg_problem_method_not_allowed(req, subject != NULL ? "GET, PUT, DELETE" : "GET, PUT");
        return;
    }
    json_t *doc = body_object(req);
    if (doc == NULL)
        return;
    const char *name = json_string_value(json_object_get(doc, "compatibility"));
    if (name == NULL)
        name = json_string_value(json_object_get(doc, "compatibilityLevel"));
    if (sg_compat_parse(name, &level) != 0) {
        problem_for(req, SG_REG_E_BAD_LEVEL, subject,
                    "\"compatibility\" must be NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL "
                    "or FULL_TRANSITIVE");
        json_decref(doc);
        return;
    }
    json_decref(doc);
    sg_reg_wait_t *wait = wait_new(req, WAIT_LEVEL);
    if (wait == NULL)
        return;
    wait->level = level;
    int rc = sg_registry_set_level_async(reg, subject, level, 0, on_registry_done, wait);
    if (rc != 0)
        wait_refused(wait, rc);
}

static void not_found(h2o_req_t *req, const char *path, size_t path_len)
{
    sg_problem_send(req, 404, "Not Found", "not-found", "Not Found", NULL, "no registry resource at %.*s",
                    (int)(path_len > 200 ? 200 : path_len), path);
}

void sg_registry_handle(h2o_req_t *req, const char *path, size_t path_len)
{
    sg_server_t *server = sg_loop_of(req)->server;
    sg_registry_t *reg = server->registry;
    if (reg == NULL || sg_registry_external_url(reg) != NULL) {
        sg_problem_send(req, 404, "Not Found", "registry-external", "Registry Not Served Here", NULL,
                        "this gateway uses the schema registry at %s; send registry requests there",
                        reg != NULL ? sg_registry_external_url(reg) : "(none)");
        return;
    }
    if (!sg_registry_is_ready(reg)) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        sg_problem_send(req, 503, "Service Unavailable", "registry-not-ready", "Registry Not Ready", NULL,
                        "the registry has not yet read its log (%s) up to where it was at start", SG_REGISTRY_TOPIC);
        return;
    }
    /* Split what follows /registry into segments. */
    h2o_iovec_t seg[SG_REG_MAX_SEGMENTS];
    size_t n = 0;
    const char *p = path + sizeof("/registry") - 1, *end = path + path_len;
    while (p < end) {
        if (*p == '/')
            p++;
        const char *start = p;
        while (p < end && *p != '/')
            p++;
        if (p == start && p == end)
            break; /* a trailing slash */
        if (n == SG_REG_MAX_SEGMENTS) {
            not_found(req, path, path_len);
            return;
        }
        seg[n++] = h2o_iovec_init(start, (size_t)(p - start));
    }
#define SEG_IS(i, text) h2o_memis(seg[i].base, seg[i].len, H2O_STRLIT(text))
    const char *subject = NULL;
    int version = 0;
    if (n == 0) {
        if (!method_is(req, "GET") && !method_is(req, "HEAD"))
            sg_problem_method_not_allowed(req, "GET, HEAD");
        else
            respond_json(req, 200, json_object());
        return;
    }
    if (SEG_IS(0, "subjects")) {
        if (n >= 2 && (subject = subject_of(req, seg[1])) == NULL)
            return;
        if (n == 1) {
            if (method_is(req, "GET") || method_is(req, "HEAD"))
                respond_json(req, 200, sg_registry_subjects_json(reg));
            else
                sg_problem_method_not_allowed(req, "GET, HEAD");
            return;
        }
        if (n == 2) {
            if (method_is(req, "POST"))
                handle_lookup(req, reg, subject);
            else
                sg_problem_method_not_allowed(req, "POST");
            return;
        }
        if (!SEG_IS(2, "versions") || n > 5 || (n == 5 && !SEG_IS(4, "schema"))) {
            not_found(req, path, path_len);
            return;
        }
        if (n == 3) {
            if (method_is(req, "POST")) {
                handle_register(req, reg, subject);
            } else if (method_is(req, "GET") || method_is(req, "HEAD")) {
                json_t *versions = sg_registry_versions_json(reg, subject);
                if (versions == NULL)
                    problem_for(req, SG_REG_E_NO_SUBJECT, subject, NULL);
                else
                    respond_json(req, 200, versions);
            } else {
                sg_problem_method_not_allowed(req, "GET, HEAD, POST");
            }
            return;
        }
        if (!method_is(req, "GET") && !method_is(req, "HEAD")) {
            sg_problem_method_not_allowed(req, "GET, HEAD");
            return;
        }
        if (version_of(req, seg[3], &version) != 0)
            return;
        const sg_registry_schema_t *schema;
        int found_version;
        int rc = sg_registry_get_version(reg, subject, version, &schema, &found_version);
        if (rc != SG_REG_OK)
            problem_for(req, rc, subject, NULL);
        else if (n == 5)
            respond_json(req, 200, json_loads(sg_registry_schema_text(schema, NULL), JSON_DECODE_ANY, NULL));
        else
            respond_json(req, 200, version_doc(subject, found_version, schema));
        return;
    }
    if (SEG_IS(0, "schemas")) {
        if (n != 3 || !SEG_IS(1, "ids")) {
            not_found(req, path, path_len);
            return;
        }
        if (!method_is(req, "GET") && !method_is(req, "HEAD")) {
            sg_problem_method_not_allowed(req, "GET, HEAD");
            return;
        }
        uint64_t id = 0;
        size_t i = 0;
        for (; i < seg[2].len && i < 10 && seg[2].base[i] >= '0' && seg[2].base[i] <= '9'; i++)
            id = id * 10 + (uint64_t)(seg[2].base[i] - '0');
        const sg_registry_schema_t *schema =
            i == seg[2].len && i > 0 && id <= UINT32_MAX ? sg_registry_lookup(reg, (uint32_t)id) : NULL;
        if (schema == NULL)
            sg_problem_send(req, 404, "Not Found", "unknown-schema", "Unknown Schema", "id", "no schema has id %.*s",
                            (int)(seg[2].len > 20 ? 20 : seg[2].len), seg[2].base);
        else
            respond_json(req, 200, json_pack("{s:s}", "schema", sg_registry_schema_text(schema, NULL)));
        return;
    }
    if (SEG_IS(0, "compatibility")) {
        if (n != 5 || !SEG_IS(1, "subjects") || !SEG_IS(3, "versions")) {
            not_found(req, path, path_len);
            return;
        }
        if ((subject = subject_of(req, seg[2])) == NULL || version_of(req, seg[4], &version) != 0)
            return;
        if (method_is(req, "POST"))
            handle_compatibility(req, reg, subject, version);
        else
            sg_problem_method_not_allowed(req, "POST");
        return;
    }
    if (SEG_IS(0, "config") && n <= 2) {
        if (n == 2 && (subject = subject_of(req, seg[1])) == NULL)
            return;
        handle_config(req, reg, subject);
        return;
    }
#undef SEG_IS
    not_found(req, path, path_len);
}
