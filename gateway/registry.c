/*
 * /registry: the Confluent Schema Registry REST subset, on the loop threads (bridge/sg_registry.h
 * holds the state and the log).
 *
 * Requests are matched by the same router as configured routes (core/router.h), with /registry's
 * own templates. Reads are answered at once from the registry's in-memory state, except those that
 * parse a client's schema (a lookup, a compatibility check: a large schema's parse and walk must
 * not hold up an event loop). Those, and writes (register a schema, set a level), which must go
 * through the `_schemas` log, are handed to the registry thread and the request is parked on its
 * loop (park.h), bounded by a deadline; the registry thread's
 * answer comes back through the loop's `done` receiver. The record is freed only when that answer
 * arrives: the registry answers every operation it accepted exactly once (at the latest when it
 * is destroyed), even after the request was answered by its deadline, by shutdown, or left.
 *
 * Status codes follow Confluent's (404 unknown subject/version/id, 409 incompatible, 422 invalid
 * schema or level), with RFC 9457 bodies like every other streamgate error, which also carry
 * Confluent's "error_code" and "message" members (the feature's problem_members) for its clients.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway_int.h"
#include "http_text.h"
#include "park.h"
#include "registry_body.h"
#include "respond.h"
#include "sg_path.h"
#include "sg_registry.h"

#define SG_REG_CONTENT_TYPE "application/vnd.schemaregistry.v1+json"
#define SG_REG_WAIT_MS 20000    /* longer than the registry's own deadline: it answers first */
#define SG_REG_MAX_WAITERS 1024 /* writes waiting for the registry at once, all loops */

struct st_sg_registry_loop_t {
    h2o_linklist_t parked;           /* writes whose request waits */
    h2o_multithread_receiver_t done; /* the registry thread's answers */
};

/* What the request waits for: a change through the log, or a read that parses a schema (and, for
 * a check, walks two schemas) and so runs on the registry thread rather than on the loop. */
typedef enum { WAIT_REGISTER, WAIT_LEVEL, WAIT_CHECK, WAIT_FIND } wait_kind_t;

typedef struct st_sg_reg_wait_t {
    h2o_multithread_message_t message; /* the registry thread sends the wait itself back */
    sg_park_t park;
    sg_loop_t *loop;
    wait_kind_t kind;
    sg_compat_t level;
    int clear;
    sg_compat_t previous; /* DELETE /config/{s}: the level that was removed */
    char subject[SG_REGISTRY_MAX_SUBJECT_LEN + 1];
    /* the registry's answer */
    int err;
    char msg[1024];
    uint32_t id;
    int version;
} sg_reg_wait_t;

/* The templates, with what each names; the router reports the other methods of a path in Allow. */
enum {
    R_ROOT,
    R_SUBJECTS,
    R_SUBJECT,
    R_VERSIONS,
    R_VERSION,
    R_VERSION_SCHEMA,
    R_SCHEMA_BY_ID,
    R_COMPATIBILITY,
    R_CONFIG,
    R_SUBJECT_CONFIG,
};
static const struct {
    const char *methods[4];
    const char *path;
} registry_routes[] = {
    [R_ROOT] = {{"GET", "HEAD"}, "/registry"},
    [R_SUBJECTS] = {{"GET", "HEAD"}, "/registry/subjects"},
    [R_SUBJECT] = {{"POST"}, "/registry/subjects/{subject}"},
    [R_VERSIONS] = {{"GET", "HEAD", "POST"}, "/registry/subjects/{subject}/versions"},
    [R_VERSION] = {{"GET", "HEAD"}, "/registry/subjects/{subject}/versions/{version}"},
    [R_VERSION_SCHEMA] = {{"GET", "HEAD"}, "/registry/subjects/{subject}/versions/{version}/schema"},
    [R_SCHEMA_BY_ID] = {{"GET", "HEAD"}, "/registry/schemas/ids/{id}"},
    [R_COMPATIBILITY] = {{"POST"}, "/registry/compatibility/subjects/{subject}/versions/{version}"},
    [R_CONFIG] = {{"GET", "HEAD", "PUT"}, "/registry/config"},
    [R_SUBJECT_CONFIG] = {{"GET", "HEAD", "PUT", "DELETE"}, "/registry/config/{subject}"},
};

/* --- responses ---------------------------------------------------------------------------- */

static void respond_json(h2o_req_t *req, json_t *doc)
{
    size_t len = json_dumpb(doc, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    char *body = h2o_mem_alloc_pool(&req->pool, len + 1);
    json_dumpb(doc, body, len, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(doc);
    sg_http_respond(req, 200, SG_REG_CONTENT_TYPE, body, len);
}

static void problem_for(h2o_req_t *req, int err, const char *subject, const char *msg)
{
    const char *name = subject != NULL ? subject : "";
    switch (err) {
    case SG_REG_E_INVALID: sg_problem(req, SG_PROBLEM_INVALID_SCHEMA, "schema", "%s", msg); break;
    case SG_REG_E_INCOMPATIBLE: sg_problem(req, SG_PROBLEM_INCOMPATIBLE_SCHEMA, "schema", "%s", msg); break;
    case SG_REG_E_NO_SUBJECT: sg_problem(req, SG_PROBLEM_UNKNOWN_SUBJECT, "subject", "no subject %s", name); break;
    case SG_REG_E_NO_VERSION: sg_problem(req, SG_PROBLEM_UNKNOWN_VERSION, "version", "subject %s has no such version", name); break;
    case SG_REG_E_NO_SCHEMA:
        sg_problem(req, SG_PROBLEM_UNKNOWN_SCHEMA, "schema", "%s", msg != NULL && msg[0] != '\0' ? msg : "no such schema");
        break;
    case SG_REG_E_LIMIT: sg_problem(req, SG_PROBLEM_REGISTRY_LIMIT, NULL, "%s", msg); break;
    case SG_REG_E_BAD_LEVEL: sg_problem(req, SG_PROBLEM_INVALID_COMPATIBILITY_LEVEL, "compatibility", "%s", msg); break;
    default:
        sg_problem(req, SG_PROBLEM_REGISTRY_UNAVAILABLE, NULL, "%s",
                   msg != NULL && msg[0] != '\0' ? msg : "the registry could not confirm the change");
        break;
    }
}

static json_t *version_doc(const char *subject, int version, const sg_registry_schema_t *schema)
{
    json_t *doc = json_pack("{s:s, s:i, s:I, s:s}", "subject", subject, "version", version, "id",
                            (json_int_t)sg_registry_schema_id(schema), "schema", sg_registry_schema_text(schema, NULL));
    if (doc == NULL)
        sg_oom(); /* the strings are valid UTF-8 the registry checked: only allocation fails */
    return doc;
}

/* --- parked writes ------------------------------------------------------------------------ */

static void on_wait_deadline(sg_park_t *park)
{
    problem_for(sg_park_finish(park), SG_REG_E_UNAVAILABLE, NULL, "the registry did not confirm the change in time");
}

/* Stopping: the change may still be applied (its record may be in the log already), so the
 * client is told to retry, which is safe: registering a known schema answers its id. */
static void on_wait_drain(sg_park_t *park)
{
    sg_problem(sg_park_finish(park), SG_PROBLEM_SHUTTING_DOWN, NULL,
               "the gateway is shutting down before the registry confirmed the change; retry (it may have been applied)");
}

static void on_wait_gone(sg_park_t *park)
{
    /* the registry's answer frees the wait */
}

static const sg_park_kind_t wait_park = {
    .metric = SG_PARKED_REGISTRY, .on_deadline = on_wait_deadline, .on_drain = on_wait_drain, .on_gone = on_wait_gone};

/* Registry thread: hand the answer to the loop that parked the request. */
static void on_registry_done(void *opaque, const sg_registry_result_t *result)
{
    sg_reg_wait_t *wait = opaque;
    wait->err = result->err;
    snprintf(wait->msg, sizeof(wait->msg), "%s", result->msg != NULL ? result->msg : "");
    wait->id = result->id;
    wait->version = result->version;
    h2o_multithread_send_message(&wait->loop->registry->done, &wait->message);
}

/* POST /subjects/{s}: the version found; its text is read now (versions are never removed). */
static void respond_found(h2o_req_t *req, const sg_reg_wait_t *wait)
{
    const sg_registry_schema_t *schema = sg_registry_lookup(wait->loop->server->registry, wait->id);
    if (schema == NULL)
        problem_for(req, SG_REG_E_NO_SCHEMA, wait->subject, "the schema is not registered under this subject");
    else
        respond_json(req, version_doc(wait->subject, wait->version, schema));
}

static void answer(sg_reg_wait_t *wait)
{
    h2o_req_t *req = sg_park_finish(&wait->park);
    if (req == NULL)
        return;
    if (wait->kind == WAIT_CHECK && wait->err == SG_REG_OK)
        respond_json(req, json_pack("{s:b}", "is_compatible", 1));
    else if (wait->kind == WAIT_CHECK && wait->err == SG_REG_E_INCOMPATIBLE)
        respond_json(req, json_pack("{s:b, s:[s]}", "is_compatible", 0, "messages", wait->msg));
    else if (wait->kind == WAIT_FIND && wait->err == SG_REG_E_NO_SCHEMA)
        problem_for(req, wait->err, wait->subject, "the schema is not registered under this subject");
    else if (wait->err != SG_REG_OK)
        problem_for(req, wait->err, wait->subject, wait->msg);
    else if (wait->kind == WAIT_FIND)
        respond_found(req, wait);
    else if (wait->kind == WAIT_REGISTER)
        respond_json(req, json_pack("{s:I}", "id", (json_int_t)wait->id));
    else if (wait->clear)
        respond_json(req, json_pack("{s:s}", "compatibilityLevel", sg_compat_name(wait->previous)));
    else
        respond_json(req, json_pack("{s:s}", "compatibility", sg_compat_name(wait->level)));
}

static void on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        sg_reg_wait_t *wait = H2O_STRUCT_FROM_MEMBER(sg_reg_wait_t, message.link, messages->next);
        h2o_linklist_unlink(&wait->message.link);
        answer(wait);
        atomic_fetch_sub(&wait->loop->server->registry_waiters, 1);
        free(wait);
    }
}

/* An operation about to go to the registry thread: parked, or NULL after answering 503. */
static sg_reg_wait_t *wait_new(h2o_req_t *req, wait_kind_t kind, const char *subject)
{
    sg_loop_t *loop = sg_loop_of(req);
    if (sg_server_is_draining(loop->server)) {
        sg_problem(req, SG_PROBLEM_SHUTTING_DOWN, NULL, "the gateway is shutting down; retry on another instance");
        return NULL;
    }
    if (atomic_fetch_add(&loop->server->registry_waiters, 1) >= SG_REG_MAX_WAITERS) {
        atomic_fetch_sub(&loop->server->registry_waiters, 1);
        problem_for(req, SG_REG_E_UNAVAILABLE, NULL, "too many registry changes are waiting; try again");
        return NULL;
    }
    sg_reg_wait_t *wait = sg_calloc(1, sizeof(*wait));
    wait->loop = loop;
    wait->kind = kind;
    snprintf(wait->subject, sizeof(wait->subject), "%s", subject != NULL ? subject : "");
    sg_park_start(&wait->park, &wait_park, req, &loop->registry->parked, NULL);
    sg_park_set_deadline(&wait->park, SG_REG_WAIT_MS);
    return wait;
}

/* The registry refused the operation up front (it will not call back). */
static void wait_refused(sg_reg_wait_t *wait, int rc)
{
    h2o_req_t *req = sg_park_finish(&wait->park);
    atomic_fetch_sub(&wait->loop->server->registry_waiters, 1);
    free(wait);
    problem_for(req, rc, NULL, "the registry is not running");
}

/* --- request parsing ---------------------------------------------------------------------- */

static int is_registry_media_type(h2o_iovec_t value)
{
    static const char *const types[] = {"application/json", "application/vnd.schemaregistry.v1+json",
                                        "application/vnd.schemaregistry+json", "application/octet-stream"};
    for (size_t i = 0; i < SG_ARRAY_SIZE(types); ++i)
        if (sg_media_type_is(value.base, value.len, types[i]))
            return 1;
    return 0;
}

/* The request's JSON object body, or NULL after answering the error. */
static json_t *body_object(h2o_req_t *req)
{
    const sg_conf_t *conf = sg_loop_of(req)->server->conf;
    h2o_iovec_t type = sg_http_header(req, H2O_STRLIT("content-type"));
    if (type.base == NULL || !is_registry_media_type(type)) {
        h2o_iovec_t shown = type.base != NULL ? type : h2o_iovec_init(H2O_STRLIT("absent"));
        sg_problem(req, SG_PROBLEM_UNSUPPORTED_MEDIA_TYPE, "Content-Type",
                   "Content-Type must be application/vnd.schemaregistry.v1+json or application/json, not %.*s",
                   (int)(shown.len > 100 ? 100 : shown.len), shown.base);
        return NULL;
    }
    if (req->entity.len > conf->limits.body_bytes) {
        sg_problem(req, SG_PROBLEM_BODY_TOO_LARGE, NULL, "the request body is %zu bytes; limits.body_bytes is %llu",
                   req->entity.len, (unsigned long long)conf->limits.body_bytes);
        return NULL;
    }
    json_t *doc = sg_registry_body_object(req->entity.base, req->entity.len);
    if (doc == NULL) {
        sg_problem(req, SG_PROBLEM_INVALID_JSON, NULL, "%s",
                   req->entity.len == 0 ? "the request needs a JSON object body" : "the body is not a JSON object");
        return NULL;
    }
    return doc;
}

/* {"schema": "...", "schemaType": "AVRO", "references": []}: the schema text, or NULL after
 * answering the error. */
static const char *schema_of(h2o_req_t *req, json_t *doc, size_t *len)
{
    const char *schema = NULL;
    switch (sg_registry_body_schema(doc, SG_REGISTRY_MAX_SCHEMA_BYTES, &schema, len)) {
    case SG_REG_BODY_OK: return schema;
    case SG_REG_BODY_SCHEMA_TYPE:
        sg_problem(req, SG_PROBLEM_UNSUPPORTED_SCHEMA_TYPE, "schemaType", "only AVRO schemas are supported");
        return NULL;
    case SG_REG_BODY_REFERENCES:
        sg_problem(req, SG_PROBLEM_UNSUPPORTED_REFERENCES, "references", "schema references are not supported");
        return NULL;
    case SG_REG_BODY_NO_SCHEMA:
        sg_problem(req, SG_PROBLEM_INVALID_SCHEMA, "schema", "the body needs \"schema\": the Avro schema as a JSON string");
        return NULL;
    case SG_REG_BODY_TOO_LARGE:
        sg_problem(req, SG_PROBLEM_SCHEMA_TOO_LARGE, "schema", "the schema is %zu bytes; at most %d are accepted", *len,
                   SG_REGISTRY_MAX_SCHEMA_BYTES);
        return NULL;
    }
    return NULL;
}

static void invalid_subject(h2o_req_t *req)
{
    sg_problem(req, SG_PROBLEM_INVALID_SUBJECT, "subject", "a subject is 1..%d characters of A-Z a-z 0-9 . _ : @ + -",
               SG_REGISTRY_MAX_SUBJECT_LEN);
}

/* The matched {subject} (percent-decoded by the router), checked. NULL after answering 422. */
static const char *subject_of(h2o_req_t *req, const sg_path_match_t *match)
{
    const sg_path_param_t *param = sg_path_match_get(match, "subject");
    if (param == NULL || !sg_registry_subject_ok(param->value, param->len)) {
        invalid_subject(req);
        return NULL;
    }
    return h2o_strdup(&req->pool, param->value, param->len).base;
}

/* The matched {version}: "latest" or -1 -> -1; 1..INT32_MAX -> itself. Returns 0, or -1 after
 * answering 422. */
static int version_of(h2o_req_t *req, const sg_path_match_t *match, int *version)
{
    const sg_path_param_t *param = sg_path_match_get(match, "version");
    h2o_iovec_t text = h2o_iovec_init(param->value, param->len);
    if (h2o_memis(text.base, text.len, H2O_STRLIT("latest")) || h2o_memis(text.base, text.len, H2O_STRLIT("-1"))) {
        *version = -1;
        return 0;
    }
    long value = 0;
    size_t i = 0;
    for (; i < text.len && i < 10 && text.base[i] >= '0' && text.base[i] <= '9'; i++)
        value = value * 10 + (text.base[i] - '0');
    if (i == 0 || i != text.len || value < 1 || value > INT32_MAX) {
        sg_problem(req, SG_PROBLEM_INVALID_VERSION, "version", "a version is \"latest\" or an integer 1..2147483647");
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
    if (rc == SG_REG_OK) {
        respond_json(req, json_pack("{s:I}", "id", (json_int_t)sg_registry_schema_id(known)));
    } else if (rc == SG_REG_E_INVALID) {
        problem_for(req, SG_REG_E_INVALID, subject, err);
    } else {
        sg_reg_wait_t *wait = wait_new(req, WAIT_REGISTER, subject);
        if (wait != NULL && (rc = sg_registry_register_async(reg, subject, text, len, on_registry_done, wait)) != 0)
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
        sg_reg_wait_t *wait = wait_new(req, WAIT_FIND, subject);
        int rc;
        if (wait != NULL && (rc = sg_registry_find_async(reg, subject, text, len, on_registry_done, wait)) != 0)
            wait_refused(wait, rc);
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
        sg_reg_wait_t *wait = wait_new(req, WAIT_CHECK, subject);
        int rc;
        if (wait != NULL && (rc = sg_registry_check_async(reg, subject, version, text, len, on_registry_done, wait)) != 0)
            wait_refused(wait, rc);
    }
    json_decref(doc);
}

static void handle_config(h2o_req_t *req, sg_registry_t *reg, const char *subject)
{
    sg_compat_t level;
    if (sg_http_is_get_or_head(req)) {
        if (sg_registry_get_level(reg, subject, &level) != SG_REG_OK) {
            if (!query_flag(req, "defaultToGlobal")) {
                sg_problem(
                    req, SG_PROBLEM_NO_SUBJECT_LEVEL, "subject",
                    "subject %s has no compatibility level of its own (the global one applies; ?defaultToGlobal=true shows it)",
                    subject);
                return;
            }
            sg_registry_get_level(reg, NULL, &level);
        }
        respond_json(req, json_pack("{s:s}", "compatibilityLevel", sg_compat_name(level)));
        return;
    }
    if (sg_http_method_is(req, "DELETE")) {
        sg_compat_t previous;
        if (sg_registry_get_level(reg, subject, &previous) != SG_REG_OK) {
            sg_problem(req, SG_PROBLEM_NO_SUBJECT_LEVEL, "subject", "subject %s has no compatibility level of its own", subject);
            return;
        }
        sg_reg_wait_t *wait = wait_new(req, WAIT_LEVEL, subject);
        if (wait == NULL)
            return;
        wait->clear = 1;
        wait->previous = previous;
        int rc = sg_registry_set_level_async(reg, subject, SG_COMPAT_BACKWARD, 1, on_registry_done, wait);
        if (rc != 0)
            wait_refused(wait, rc);
        return;
    }
    json_t *doc = body_object(req); /* PUT */
    if (doc == NULL)
        return;
    int parsed = sg_compat_parse(sg_registry_body_level(doc), &level);
    json_decref(doc);
    if (parsed != 0) {
        problem_for(req, SG_REG_E_BAD_LEVEL, subject,
                    "\"compatibility\" must be NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL "
                    "or FULL_TRANSITIVE");
        return;
    }
    sg_reg_wait_t *wait = wait_new(req, WAIT_LEVEL, subject);
    if (wait == NULL)
        return;
    wait->level = level;
    int rc = sg_registry_set_level_async(reg, subject, level, 0, on_registry_done, wait);
    if (rc != 0)
        wait_refused(wait, rc);
}

static void handle_schema_by_id(h2o_req_t *req, sg_registry_t *reg, const sg_path_match_t *match)
{
    const sg_path_param_t *param = sg_path_match_get(match, "id");
    uint64_t id = 0;
    size_t i = 0;
    for (; i < param->len && i < 10 && param->value[i] >= '0' && param->value[i] <= '9'; i++)
        id = id * 10 + (uint64_t)(param->value[i] - '0');
    const sg_registry_schema_t *schema =
        i == param->len && i > 0 && id <= UINT32_MAX ? sg_registry_lookup(reg, (uint32_t)id) : NULL;
    if (schema == NULL)
        sg_problem(req, SG_PROBLEM_UNKNOWN_SCHEMA, "id", "no schema has id %.*s", (int)(param->len > 20 ? 20 : param->len),
                   param->value);
    else
        respond_json(req, json_pack("{s:s}", "schema", sg_registry_schema_text(schema, NULL)));
}

static void handle_version(h2o_req_t *req, sg_registry_t *reg, const char *subject, const sg_path_match_t *match, int raw)
{
    int version;
    if (version_of(req, match, &version) != 0)
        return;
    const sg_registry_schema_t *schema;
    int found_version;
    int rc = sg_registry_get_version(reg, subject, version, &schema, &found_version);
    if (rc != SG_REG_OK)
        problem_for(req, rc, subject, NULL);
    else if (raw)
        respond_json(req, json_loads(sg_registry_schema_text(schema, NULL), JSON_DECODE_ANY, NULL));
    else
        respond_json(req, version_doc(subject, found_version, schema));
}

/* Answers a matched route. */
static void serve(h2o_req_t *req, sg_registry_t *reg, size_t route, const sg_path_match_t *match)
{
    const char *subject = NULL;
    if (sg_path_match_get(match, "subject") != NULL && (subject = subject_of(req, match)) == NULL)
        return;
    switch (route) {
    case R_ROOT: respond_json(req, json_object()); return;
    case R_SUBJECTS: respond_json(req, sg_registry_subjects_json(reg)); return;
    case R_SUBJECT: handle_lookup(req, reg, subject); return;
    case R_VERSIONS:
        if (sg_http_method_is(req, "POST")) {
            handle_register(req, reg, subject);
        } else {
            json_t *versions = sg_registry_versions_json(reg, subject);
            if (versions == NULL)
                problem_for(req, SG_REG_E_NO_SUBJECT, subject, NULL);
            else
                respond_json(req, versions);
        }
        return;
    case R_VERSION: handle_version(req, reg, subject, match, 0); return;
    case R_VERSION_SCHEMA: handle_version(req, reg, subject, match, 1); return;
    case R_SCHEMA_BY_ID: handle_schema_by_id(req, reg, match); return;
    case R_COMPATIBILITY: {
        int version;
        if (version_of(req, match, &version) == 0)
            handle_compatibility(req, reg, subject, version);
        return;
    }
    case R_CONFIG:
    case R_SUBJECT_CONFIG: handle_config(req, reg, subject); return;
    }
}

/* Reads need registry:read, writes registry:write, and writes are limited per client address
 * (limits.registry_write_rate) with or without auth. */
static sg_access_rule_t access_rule(sg_server_t *server, h2o_req_t *req, const char *path, size_t path_len)
{
    int read = sg_http_is_get_or_head(req);
    return sg_access_builtin_rule(read ? "registry:read" : "registry:write", !read);
}

static void handle(h2o_req_t *req, const char *path, size_t path_len, sg_principal_t *principal)
{
    sg_server_t *server = sg_loop_of(req)->server;
    sg_registry_t *reg = server->registry;
    if (reg == NULL || sg_registry_external_url(reg) != NULL) {
        sg_problem(req, SG_PROBLEM_REGISTRY_EXTERNAL, NULL,
                   "this gateway uses the schema registry at %s; send registry requests there",
                   reg != NULL ? sg_registry_external_url(reg) : "(none)");
        return;
    }
    if (!sg_registry_is_ready(reg)) {
        sg_problem(req, SG_PROBLEM_REGISTRY_NOT_READY, NULL,
                   "the registry has not yet read its log (%s) up to where it was at start", SG_REGISTRY_TOPIC);
        return;
    }
    size_t match_len = path_len > 1 && path[path_len - 1] == '/' ? path_len - 1 : path_len; /* a trailing slash is the same */
    sg_router_result_t found;
    switch (sg_router_lookup(server->registry_router, req->method.base, req->method.len, path, match_len, &found)) {
    case SG_ROUTER_FOUND:
        serve(req, reg, found.route, &found.match);
        sg_path_match_dispose(&found.match);
        return;
    case SG_ROUTER_METHOD_NOT_ALLOWED: sg_problem_method_not_allowed(req, found.allow); return;
    case SG_ROUTER_BAD_PATH: invalid_subject(req); return; /* subjects are the only free text in these paths */
    case SG_ROUTER_NOT_FOUND: break;
    }
    sg_problem(req, SG_PROBLEM_NOT_FOUND, NULL, "no registry resource at %.*s", (int)(path_len > 200 ? 200 : path_len), path);
}

/* --- the feature ---------------------------------------------------------------------------- */

static int init_server(sg_server_t *server, char *err, size_t errlen)
{
    server->registry_router = sg_router_create_empty(0);
    for (size_t r = 0; r < SG_ARRAY_SIZE(registry_routes); ++r)
        for (size_t m = 0; m < SG_ARRAY_SIZE(registry_routes[r].methods) && registry_routes[r].methods[m] != NULL; ++m)
            if (sg_router_add(server->registry_router, registry_routes[r].methods[m], registry_routes[r].path, r, 0, err, errlen) !=
                0)
                return -1;
    return 0;
}

static void dispose_server(sg_server_t *server)
{
    sg_router_destroy(server->registry_router);
    server->registry_router = NULL;
}

static void init_loop(sg_loop_t *loop)
{
    struct st_sg_registry_loop_t *state = sg_calloc(1, sizeof(*state));
    h2o_linklist_init_anchor(&state->parked);
    h2o_multithread_register_receiver(loop->ctx.queue, &state->done, on_done);
    loop->registry = state;
}

static void drain(sg_loop_t *loop)
{
    sg_park_drain(&loop->registry->parked);
}

/* Confluent's error codes (io.confluent.kafka.schemaregistry.rest.exceptions.Errors), which its
 * clients read from "error_code" (Java RestClientException.getErrorCode(), Python
 * SchemaRegistryError.error_code, Go's error_code): by problem type; any other problem carries its
 * HTTP status, as Confluent's generic errors do. */
static const struct {
    const char *type;
    int error_code;
} confluent_codes[] = {
    {"unknown-subject", 40401},         {"unknown-version", 40402},
    {"unknown-schema", 40403},          {"no-subject-level", 40408},
    {"incompatible-schema", 409},       {"invalid-schema", 42201},
    {"unsupported-schema-type", 42201}, {"unsupported-references", 42201},
    {"invalid-version", 42202},         {"invalid-compatibility-level", 42203},
    {"invalid-subject", 42208},         {"schema-too-large", 42209},
    {"registry-unavailable", 50001},    {"registry-not-ready", 50001},
    {"registry-external", 50003},
};

/* The same problem+json body, plus Confluent's "error_code" and "message" (the detail). */
static void problem_members(int status, const char *type, const char *detail, json_t *problem)
{
    int error_code = status;
    for (size_t i = 0; i < SG_ARRAY_SIZE(confluent_codes); ++i)
        if (strcmp(confluent_codes[i].type, type) == 0)
            error_code = confluent_codes[i].error_code;
    json_object_set_new(problem, "error_code", json_integer(error_code));
    json_object_set_new(problem, "message", json_string(detail != NULL ? detail : ""));
}

const sg_feature_t sg_feature_registry = {.prefix = "/registry",
                                          .methods = "GET, POST, PUT, DELETE",
                                          .access = access_rule,
                                          .problem_members = problem_members,
                                          .handle = handle,
                                          .init_server = init_server,
                                          .dispose_server = dispose_server,
                                          .init_loop = init_loop,
                                          .drain = drain};
