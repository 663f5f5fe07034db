/* Resource-server authorization: token → client → scope → entitlement. The token is an HS256
 * JWS we issued (atr_token.h), so verifying it needs no lookup; the registry lookup that
 * follows comes from the registry's TTL cache most of the time, so that disabling a client
 * takes effect within that TTL without costing an LDAP query per request.
 * Nothing here logs or echoes the token. */
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include "http_protocol.h"
#include "http_request.h"
#include "atr_entitle.h"
#include "atr_scope.h"
#include "atr_token.h"
#include "mod_atr.h"
#include "mod_atr_config.h"
#include "mod_atr_http.h"
#include "mod_atr_authz.h"

/* A quoted-string for WWW-Authenticate: RFC 6750 limits error_description to printable
 * ASCII without '"' and '\'. */
static const char *auth_quote(const char *s, apr_pool_t *p)
{
    char *q = apr_pstrdup(p, s ? s : ""), *c;
    for (c = q; *c; c++) {
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) *c = '\'';
    }
    return q;
}

static int answer_401(request_rec *r, const char *error_description)
{
    const char *realm = auth_quote(atr_conf_base_url(r), r->pool);
    if (error_description) {
        apr_table_setn(r->headers_out, "WWW-Authenticate",
                       apr_psprintf(r->pool, "Bearer realm=\"%s\", error=\"invalid_token\", "
                                    "error_description=\"%s\"", realm, auth_quote(error_description, r->pool)));
        atr_http_oo(r, HTTP_UNAUTHORIZED, "login", NULL, "the access token is not valid: %s",
                    error_description);
    }
    else {
        apr_table_setn(r->headers_out, "WWW-Authenticate", apr_psprintf(r->pool, "Bearer realm=\"%s\"", realm));
        atr_http_oo(r, HTTP_UNAUTHORIZED, "login", NULL,
                    "an access token is required (Authorization: Bearer); get one from the token endpoint");
    }
    /* a 401 must never be cached by an intermediary */
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return HTTP_UNAUTHORIZED;
}

/* The token of "Authorization: Bearer <token>" (scheme case-insensitive, RFC 6750 §2.1).
 * NULL when there is no Bearer credential at all; "" when it is there but empty. */
static const char *bearer_token(request_rec *r)
{
    const char *h = apr_table_get(r->headers_in, "Authorization");
    const char *t, *end;

    if (!h) return NULL;
    while (*h == ' ' || *h == '\t') h++;
    if (strncasecmp(h, "Bearer", 6) || (h[6] && h[6] != ' ' && h[6] != '\t')) return NULL;
    t = h + 6;
    while (*t == ' ' || *t == '\t') t++;
    for (end = t + strlen(t); end > t && (end[-1] == ' ' || end[-1] == '\t'); end--) ;
    return apr_pstrmemdup(r->pool, t, (apr_size_t)(end - t));
}

int atr_authz_request(request_rec *r, atr_authz_t **pauthz)
{
    const atr_token_key_t *key = atr_conf_token_key(r->server);
    atr_registry_t *reg = atr_conf_registry(r->server);
    atr_token_claims_t *claims = NULL;
    atr_client_t *client = NULL;
    atr_authz_t *az;
    const char *token, *err = NULL;
    apr_status_t rv;

    *pauthz = NULL;
    token = bearer_token(r);
    if (!token) return answer_401(r, NULL);
    if (!*token) return answer_401(r, "the Authorization header has no token");
    if (!key) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "ATR00602: no token key (ATRTokenKeyFile): "
                      "cannot verify access tokens; answering 503");
        atr_http_oo(r, HTTP_SERVICE_UNAVAILABLE, "transient", NULL,
                    "authorization is not available; try again later");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    rv = atr_token_verify(&claims, key, atr_conf_base_url(r), token, apr_time_now(), &err, r->pool);
    if (rv != APR_SUCCESS || !claims || !claims->client_id) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "ATR00603: access token refused: %s",
                      err ? err : "not valid");
        return answer_401(r, err ? err : "the token is not valid");
    }
    if (!reg) {
        rv = APR_EGENERAL;
    }
    else {
        rv = atr_registry_client_get(&client, reg, claims->client_id, r->pool);
    }
    if (rv == APR_NOTFOUND || (rv == APR_SUCCESS && (!client || client->disabled))) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "ATR00604: token of client %s refused: the client is %s",
                      claims->client_id, rv == APR_NOTFOUND || !client ? "not registered" : "disabled");
        return answer_401(r, rv == APR_NOTFOUND || !client ? "the client is not registered"
                          : "the client is disabled");
    }
    if (rv != APR_SUCCESS) {
        /* fail closed: an unreachable registry never grants access */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00605: the Consumer registry is %s: "
                      "answering 503 to client %s", reg ? "not reachable" : "not configured",
                      claims->client_id);
        apr_table_setn(r->headers_out, "Retry-After", "5");
        atr_http_oo(r, HTTP_SERVICE_UNAVAILABLE, "transient", NULL,
                    "the authorization service is not available; try again later");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    az = apr_pcalloc(r->pool, sizeof(*az));
    az->client_id = claims->client_id;
    az->claims = claims;
    az->client = client;
    apr_table_setn(r->notes, "atr-client-id", claims->client_id);
    *pauthz = az;
    return OK;
}

static const char *perm_name(unsigned perms)
{
    switch (perms) {
    case ATR_PERM_R: return "read";
    case ATR_PERM_S: return "search";
    case ATR_PERM_C: return "create";
    case ATR_PERM_U: return "update";
    case ATR_PERM_D: return "delete";
    default: return "this interaction";
    }
}

/* The scopes the registry allows the client now: a token keeps the scopes it was granted, but
 * an operator who narrows a client's scopes should not wait for its tokens to expire. */
static int registry_allows(request_rec *r, const atr_client_t *client, const char *type, unsigned perms)
{
    apr_array_header_t *allowed = apr_array_make(r->pool, 4, sizeof(atr_scope_t *));
    int i;
    for (i = 0; client && client->scopes && i < client->scopes->nelts; i++) {
        atr_scope_t *sc;
        if (atr_scope_parse(&sc, APR_ARRAY_IDX(client->scopes, i, const char *), r->pool) == APR_SUCCESS)
            APR_ARRAY_PUSH(allowed, atr_scope_t *) = sc;
    }
    return atr_scope_allows(allowed, type, perms);
}

int atr_authz_need(request_rec *r, atr_authz_t *az, const char *type, unsigned perms)
{
    const char *desc;

    if (az && az->claims && atr_scope_allows(az->claims->scopes, type, perms)
        && registry_allows(r, az->client, type, perms)) return OK;
    desc = apr_psprintf(r->pool, "the granted scopes do not allow %s on %s", perm_name(perms), type);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "ATR00606: client %s: %s",
                  az && az->client_id ? az->client_id : "?", desc);
    apr_table_setn(r->headers_out, "WWW-Authenticate",
                   apr_psprintf(r->pool, "Bearer realm=\"%s\", error=\"insufficient_scope\", "
                                "error_description=\"%s\"", auth_quote(atr_conf_base_url(r), r->pool),
                                auth_quote(desc, r->pool)));
    atr_http_oo(r, HTTP_FORBIDDEN, "forbidden", NULL, "%s", desc);
    return HTTP_FORBIDDEN;
}

apr_status_t atr_authz_groups(const apr_array_header_t **pids, atr_authz_t *az, atr_db_t *db,
                              request_rec *r)
{
    apr_array_header_t *ids = NULL;
    apr_status_t rv;

    *pids = NULL;
    if (az->groups) {
        *pids = az->groups;
        return APR_SUCCESS;
    }
    rv = atr_entitle_groups(&ids, db, az->client, r->pool);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00607: the Groups of client %s could not be "
                      "read from the store: %s", az->client_id, atr_db_error(db, rv));
        return rv;
    }
    az->groups = ids;
    *pids = ids;
    return APR_SUCCESS;
}

apr_status_t atr_authz_visible(int *pvisible, atr_authz_t *az, atr_db_t *db, const char *type,
                               const char *id, const char *body, request_rec *r)
{
    const apr_array_header_t *groups = NULL;
    apr_status_t rv;

    *pvisible = 0;
    if (atr_entitle_is_member_data(type)) {
        rv = atr_authz_groups(&groups, az, db, r);
        if (rv != APR_SUCCESS) return rv;
    }
    rv = atr_entitle_resource(pvisible, db, groups, type, id, body, r->pool);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00608: visibility of %s/%s for client %s: "
                      "store error: %s", type, id, az->client_id, atr_db_error(db, rv));
    }
    return rv;
}
