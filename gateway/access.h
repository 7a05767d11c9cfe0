/*
 * Who may call what, and how often (DESIGN §6): the one check every request passes before a
 * handler reads its body or anything reaches Kafka. dispatch.c asks each endpoint what it needs
 * (a rule) and runs sg_access_admit; handlers get the principal it found.
 *
 * Order (gateway/auth/README.md, "What the gateway must do"): per-address rate limits first (a
 * flood of bad tokens is refused before a signature is checked), then the credential, the
 * scopes, and the per-principal limits. Loop thread of the request only, but for the
 * server-wide hooks.
 */
#ifndef SG_ACCESS_H
#define SG_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include <h2o.h>

#include "sg_auth.h"

typedef struct st_sg_server_t sg_server_t;

typedef enum {
    SG_ACCESS_EXEMPT,   /* /healthz, /readyz: no limit, no credential */
    SG_ACCESS_PUBLIC,   /* per-address limits only: public: true, /openapi.json, preflights, 404s */
    SG_ACCESS_OPTIONAL, /* a credential is checked when one is sent (GET /requests/{id}) */
    SG_ACCESS_REQUIRED, /* a valid credential holding every scope */
} sg_access_need_t;

/* What one endpoint asks of a request. Without `auth` every need but EXEMPT is PUBLIC. */
typedef struct st_sg_access_rule_t {
    sg_access_need_t need;
    char *const *scopes; /* all required (static or the config's) */
    size_t n_scopes;
    size_t route; /* index of the command route (for rate_limits[].routes), or SIZE_MAX */
    bool registry_write;
} sg_access_rule_t;

/* The owner text stored with a request record: base64url of a SHA-256 (43 characters), or
 * SG_ACCESS_ANONYMOUS for a request made without a credential. */
#define SG_ACCESS_OWNER_LEN 43
#define SG_ACCESS_ANONYMOUS "anonymous"

/** Applies `rule` to req. Returns 0 when the request may go on, with *principal the credential's
 * principal (borrowed: held until the request is disposed) or NULL when there is none; -1 when it
 * was answered (429, 401, 403, 503). */
int sg_access_admit(h2o_req_t *req, const sg_access_rule_t *rule, sg_principal_t **principal);

/** The rule of configured route i / query i (what dispatch.c and openapi.c use). */
sg_access_rule_t sg_access_route_rule(const sg_server_t *server, size_t route);
sg_access_rule_t sg_access_query_rule(const sg_server_t *server, size_t query);
/** The rule of a /tables/{name} read: the table's own scopes or public, else tables:read (also for
 * an unknown table, NULL, so that a caller without the scope learns nothing of which exist). */
sg_access_rule_t sg_access_table_rule(const sg_server_t *server, const sg_table_conf_t *table);
/** The fixed rule of a built-in: `scope` (registry:read, registry:write or metrics:read; NULL:
 * any valid credential), and whether the registry-writes limit applies. */
sg_access_rule_t sg_access_builtin_rule(const char *scope, bool registry_write);

/** Writes the owner text of `principal` (NULL: anonymous) into out (SG_ACCESS_OWNER_LEN + 1 bytes),
 * or "" when the deployment has no auth (records then carry no owner). */
void sg_access_owner(const sg_server_t *server, const sg_principal_t *principal, char *out);

/** Why authentication cannot work yet (a key set not loaded), for /readyz; NULL when it can. */
const char *sg_access_not_ready(sg_server_t *server);

/** Appends the access metrics (refusals by cause and policy, key set and limiter counters) as
 * Prometheus text. Returns the length it needs (as snprintf). Any thread. */
size_t sg_access_metrics(sg_server_t *server, char *buf, size_t size);

#endif
