/*
 * GET /openapi.json: an OpenAPI 3.1 description generated from the config (README, "What it does
 * today").
 *
 * Built once, on first request, from the immutable config and the registry's parsed
 * config schemas, and served as bytes afterwards. Request bodies of routes with a schema get a
 * JSON Schema derived from the Avro schema in the JSON form the gateway accepts (a null-union is
 * a plain value or null, decimals numbers or strings, timestamps integers or RFC 3339 strings);
 * named types are described once under components.schemas and referenced elsewhere.
 *
 * With auth, components.securitySchemes names the credentials the config accepts (bearer JWT,
 * X-API-Key, and the sg_token cookie of event streams) and each operation its `security`: the
 * scopes access.c enforces, from the same rules; public operations have an empty list.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway_int.h"
#include "respond.h"
#include "sg_jsonschema.h"
#include "sg_registry.h"

/* Built by the first request on any loop, under the lock; one server per process. */
static pthread_mutex_t document_lock = PTHREAD_MUTEX_INITIALIZER;
static char *document; /* lives until exit (reachable: not a leak) */
static size_t document_len;

static json_t *problem_response(const char *description)
{
    return json_pack("{s:s, s:{s:{s:{s:s}}}}", "description", description, "content", "application/problem+json", "schema", "$ref",
                     "#/components/schemas/Problem");
}

/* "/orders/{id}" -> its path parameters as OpenAPI parameter objects. */
static json_t *path_parameters(const char *path)
{
    json_t *params = json_array();
    for (const char *at = strchr(path, '{'); at != NULL; at = strchr(at + 1, '{')) {
        const char *end = strchr(at, '}');
        if (end == NULL)
            break;
        json_array_append_new(params, json_pack("{s:s%, s:s, s:b, s:{s:s}}", "name", at + 1, (size_t)(end - at - 1), "in", "path",
                                                "required", 1, "schema", "type", "string"));
    }
    return params;
}

static json_t *path_item(json_t *paths, const char *path)
{
    json_t *item = json_object_get(paths, path);
    if (item == NULL) {
        item = json_object();
        json_object_set_new(paths, path, item);
    }
    return item;
}

static json_t *read_responses(void)
{
    return json_pack("{s:{s:s, s:{s:{s:{}}}}, s:o, s:o, s:o}", "200", "description", "the row (JSON)", "content",
                     "application/json", "schema", "404", problem_response("no such row"), "400",
                     problem_response("invalid key, token or query"), "503",
                     problem_response("not caught up within the wait (carries the view's Consistency-Token)"));
}

static json_t *read_parameters(json_t *params, int scan)
{
    json_array_append_new(params, json_pack("{s:s, s:s, s:s, s:{s:s}}", "name", "Consistency-Token", "in", "header", "description",
                                            "read at least this position", "schema", "type", "string"));
    json_array_append_new(params, json_pack("{s:s, s:s, s:{s:s}}", "name", "token", "in", "query", "schema", "type", "string"));
    json_array_append_new(params, json_pack("{s:s, s:s, s:{s:s, s:[s]}}", "name", "fresh", "in", "query", "schema", "type",
                                            "string", "enum", "latest"));
    json_array_append_new(params, json_pack("{s:s, s:s, s:{s:s, s:i}}", "name", "min_stream_time", "in", "query", "schema", "type",
                                            "integer", "minimum", 0));
    if (scan) {
        const char *names[] = {"prefix", "from", "to", "cursor"};
        for (size_t i = 0; i < 4; ++i)
            json_array_append_new(params,
                                  json_pack("{s:s, s:s, s:{s:s}}", "name", names[i], "in", "query", "schema", "type", "string"));
        json_array_append_new(params, json_pack("{s:s, s:s, s:{s:s, s:i, s:i, s:i}}", "name", "limit", "in", "query", "schema",
                                                "type", "integer", "minimum", 1, "maximum", 1000, "default", 100));
    }
    return params;
}

/* The operation's security requirement and its 401/403/429 answers, from the rule access.c
 * applies to it. */
static void add_security(json_t *operation, const sg_server_t *server, sg_access_rule_t rule)
{
    const sg_conf_t *conf = server->conf;
    json_t *responses = json_object_get(operation, "responses");
    if (conf->n_rate_limits > 0 || rule.registry_write)
        json_object_set_new(responses, "429", problem_response("rate limit exhausted (Retry-After, RateLimit, RateLimit-Policy)"));
    if (!conf->has_auth)
        return;
    json_t *security = json_array();
    if (rule.need == SG_ACCESS_REQUIRED || rule.need == SG_ACCESS_OPTIONAL) {
        if (rule.need == SG_ACCESS_OPTIONAL)
            json_array_append_new(security, json_object()); /* anonymous too */
        const char *schemes[] = {conf->auth.has_jwt ? "bearer" : NULL, conf->auth.n_api_keys > 0 ? "apiKey" : NULL};
        for (size_t i = 0; i < 2; ++i) {
            if (schemes[i] == NULL)
                continue;
            json_t *scopes = json_array();
            for (size_t j = 0; j < rule.n_scopes; ++j)
                json_array_append_new(scopes, json_string(rule.scopes[j]));
            json_array_append_new(security, json_pack("{s:o}", schemes[i], scopes));
        }
        json_object_set_new(responses, "401",
                            problem_response("missing-credential or invalid-token (WWW-Authenticate: Bearer, RFC 6750)"));
        if (rule.n_scopes > 0)
            json_object_set_new(responses, "403", problem_response("insufficient-scope (the missing scope is named)"));
    }
    json_object_set_new(operation, "security", security);
}

static json_t *security_schemes(const sg_conf_t *conf)
{
    json_t *schemes = json_object();
    if (conf->auth.has_jwt)
        json_object_set_new(schemes, "bearer",
                            json_pack("{s:s, s:s, s:s, s:s}", "type", "http", "scheme", "bearer", "bearerFormat", "JWT",
                                      "description",
                                      "Event streams (Accept: text/event-stream) may send the token in the "
                                      "sg_token cookie instead."));
    if (conf->auth.n_api_keys > 0)
        json_object_set_new(schemes, "apiKey", json_pack("{s:s, s:s, s:s}", "type", "apiKey", "in", "header", "name", "X-API-Key"));
    return schemes;
}

static void build(const sg_server_t *server)
{
    const sg_conf_t *conf = server->conf;
    json_t *defs = json_object();
    json_object_set_new(defs, "Problem",
                        json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}}", "type", "object", "properties", "type",
                                  "type", "string", "title", "type", "string", "status", "type", "integer", "detail", "type",
                                  "string", "field", "type", "string"));
    json_t *paths = json_object();
    for (size_t i = 0; i < conf->n_routes; ++i) {
        const sg_route_conf_t *route = &conf->routes[i];
        json_t *body_schema = json_object();
        if (route->schema != NULL && server->registry != NULL) {
            const sg_registry_schema_t *schema = sg_registry_config_schema(server->registry, route->schema);
            size_t len = 0;
            const char *text = schema != NULL ? sg_registry_schema_text(schema, &len) : NULL;
            json_t *avro = text != NULL ? json_loadb(text, len, 0, NULL) : NULL;
            if (avro != NULL) {
                json_decref(body_schema);
                body_schema = sg_jsonschema_from_avro(avro, defs);
                json_decref(avro);
            }
        }
        json_t *responses = json_object();
        if (route->has_reply) {
            json_object_set_new(responses, "200",
                                json_pack("{s:s}", "description", "the worker's reply (status from its :status header)"));
            json_object_set_new(responses, "202",
                                json_pack("{s:s}", "description", "accepted; the reply did not come in time (Location)"));
        } else {
            json_object_set_new(responses, "202",
                                json_pack("{s:s, s:{s:{s:{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}}}}}}", "description",
                                          "durably in Kafka (Consistency-Token)", "content", "application/json", "schema", "type",
                                          "object", "properties", "topic", "type", "string", "partition", "type", "integer",
                                          "offset", "type", "integer"));
        }
        json_object_set_new(responses, "400", problem_response("malformed JSON, key or path"));
        json_object_set_new(responses, "413", problem_response("body over limits.body_bytes"));
        json_object_set_new(responses, "415", problem_response("not application/json"));
        if (route->schema != NULL)
            json_object_set_new(responses, "422", problem_response("the body does not match the schema (field)"));
        json_object_set_new(responses, "503", problem_response("Kafka did not acknowledge; retry (Retry-After)"));
        char method[16];
        size_t m = 0;
        for (; route->method[m] != '\0' && m + 1 < sizeof(method); ++m)
            method[m] = (char)(route->method[m] | 0x20);
        method[m] = '\0';
        json_t *operation = json_pack("{s:s, s:s, s:o, s:{s:b, s:{s:{s:o}}}, s:o}", "operationId", route->name, "summary",
                                      route->topic, "parameters", path_parameters(route->path), "requestBody", "required", 1,
                                      "content", "application/json", "schema", body_schema, "responses", responses);
        add_security(operation, server, sg_access_route_rule(server, i));
        json_object_set_new(path_item(paths, route->path), method, operation);
    }
    for (size_t i = 0; i < conf->n_queries; ++i) {
        const sg_query_conf_t *query = &conf->queries[i];
        json_t *params = read_parameters(path_parameters(query->path), query->key.source == SG_KEY_NONE);
        if (query->key.source == SG_KEY_HEADER)
            json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:{s:s}}", "name", query->key.name, "in", "header", "required",
                                                    1, "schema", "type", "string"));
        char summary[256];
        snprintf(summary, sizeof(summary), "table %s", query->table);
        json_t *operation = json_pack("{s:s, s:o, s:o}", "summary", summary, "parameters", params, "responses", read_responses());
        add_security(operation, server, sg_access_query_rule(server, i));
        json_object_set_new(path_item(paths, query->path), "get", operation);
    }
    /* /tables/{table}: tables:read, unless a table has its own scopes (named in the summary). */
    json_t *table_params = path_parameters("/tables/{table}/{key}");
    json_t *operation = json_pack("{s:s, s:o, s:o}", "summary", "read a row (Accept: text/event-stream watches it)", "parameters",
                                  read_parameters(table_params, 0), "responses", read_responses());
    add_security(operation, server, sg_access_table_rule(server, NULL));
    json_object_set_new(path_item(paths, "/tables/{table}/{key}"), "get", operation);
    operation = json_pack("{s:s, s:o, s:o}", "summary", "scan a table: {\"rows\":[{key,value}],\"next\"}", "parameters",
                          read_parameters(path_parameters("/tables/{table}"), 1), "responses", read_responses());
    add_security(operation, server, sg_access_table_rule(server, NULL));
    json_object_set_new(path_item(paths, "/tables/{table}"), "get", operation);
    operation = json_pack("{s:s, s:o, s:{s:{s:s}, s:o}}", "summary", "request status (with auth: only its requester's)",
                          "parameters", path_parameters("/requests/{id}"), "responses", "200", "description",
                          "{id, state, response?}", "404", problem_response("unknown or forged id, or another principal's"));
    add_security(operation, server, (sg_access_rule_t){.need = SG_ACCESS_OPTIONAL, .route = SIZE_MAX});
    json_object_set_new(path_item(paths, "/requests/{id}"), "get", operation);
    const char *ops[] = {"/healthz", "/readyz", "/metrics"};
    for (size_t i = 0; i < 3; ++i) {
        operation = json_pack("{s:{s:{s:s}}}", "responses", "200", "description", "ok");
        add_security(operation, server,
                     i == 2 ? sg_access_builtin_rule("metrics:read", false)
                            : (sg_access_rule_t){.need = SG_ACCESS_EXEMPT, .route = SIZE_MAX});
        json_object_set_new(path_item(paths, ops[i]), "get", operation);
    }
    json_t *components = json_pack("{s:o}", "schemas", defs);
    if (conf->has_auth)
        json_object_set_new(components, "securitySchemes", security_schemes(conf));
    json_t *doc = json_pack("{s:s, s:{s:s, s:s}, s:o, s:o}", "openapi", "3.1.0", "info", "title", "streamgate", "version",
                            SG_VERSION, "paths", paths, "components", components);
    document = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    if (document == NULL)
        sg_oom(); /* every string in it was accepted by Jansson already: only allocation fails */
    document_len = strlen(document);
}

/* Public: it describes what the config exposes, and clients need it before they have a credential. */
static sg_access_rule_t access_rule(sg_server_t *server, h2o_req_t *req, const char *path, size_t path_len)
{
    return (sg_access_rule_t){.need = SG_ACCESS_PUBLIC, .route = SIZE_MAX};
}

static void handle(h2o_req_t *req, const char *path, size_t path_len, sg_principal_t *principal)
{
    sg_server_t *server = sg_loop_of(req)->server;
    if (!h2o_memis(path, path_len, H2O_STRLIT("/openapi.json"))) {
        sg_problem(req, SG_PROBLEM_NOT_FOUND, NULL, "no resource at %.*s", (int)(path_len > 200 ? 200 : path_len), path);
        return;
    }
    if (!sg_http_is_get_or_head(req)) {
        sg_problem_method_not_allowed(req, "GET, HEAD");
        return;
    }
    pthread_mutex_lock(&document_lock);
    if (document == NULL)
        build(server);
    pthread_mutex_unlock(&document_lock);
    sg_http_respond(req, 200, "application/json", document, document_len);
}

const sg_feature_t sg_feature_openapi = {
    .prefix = "/openapi.json", .methods = "GET, HEAD", .access = access_rule, .handle = handle};
