/*
 * GET /openapi.json: an OpenAPI 3.1 description generated from the config (README, "What it does
 * today").
 *
 * Built once, on first request, from the immutable config and the registry's parsed
 * config schemas, and served as bytes afterwards. Request bodies of routes with a schema get a
 * JSON Schema derived from the Avro schema in the JSON form the gateway accepts (a null-union is
 * a plain value or null, decimals numbers or strings, timestamps integers or RFC 3339 strings);
 * named types are described once under components.schemas and referenced elsewhere.
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
        json_object_set_new(path_item(paths, query->path), "get",
                            json_pack("{s:s, s:o, s:o}", "summary", summary, "parameters", params, "responses", read_responses()));
    }
    json_t *table_params = path_parameters("/tables/{table}/{key}");
    json_object_set_new(path_item(paths, "/tables/{table}/{key}"), "get",
                        json_pack("{s:s, s:o, s:o}", "summary", "read a row (Accept: text/event-stream watches it)", "parameters",
                                  read_parameters(table_params, 0), "responses", read_responses()));
    json_object_set_new(path_item(paths, "/tables/{table}"), "get",
                        json_pack("{s:s, s:o, s:o}", "summary", "scan a table: {\"rows\":[{key,value}],\"next\"}", "parameters",
                                  read_parameters(path_parameters("/tables/{table}"), 1), "responses", read_responses()));
    json_object_set_new(path_item(paths, "/requests/{id}"), "get",
                        json_pack("{s:s, s:o, s:{s:{s:s}, s:o}}", "summary", "request status", "parameters",
                                  path_parameters("/requests/{id}"), "responses", "200", "description", "{id, state, response?}",
                                  "404", problem_response("unknown or forged id")));
    const char *ops[] = {"/healthz", "/readyz", "/metrics"};
    for (size_t i = 0; i < 3; ++i)
        json_object_set_new(path_item(paths, ops[i]), "get", json_pack("{s:{s:{s:s}}}", "responses", "200", "description", "ok"));
    json_t *doc = json_pack("{s:s, s:{s:s, s:s}, s:o, s:{s:o}}", "openapi", "3.1.0", "info", "title", "streamgate", "version",
                            SG_VERSION, "paths", paths, "components", "schemas", defs);
    document = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    if (document == NULL)
        sg_oom(); /* every string in it was accepted by Jansson already: only allocation fails */
    document_len = strlen(document);
}

static void handle(h2o_req_t *req, const char *path, size_t path_len)
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

const sg_feature_t sg_feature_openapi = {.prefix = "/openapi.json", .handle = handle};
