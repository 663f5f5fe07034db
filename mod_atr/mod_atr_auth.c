/* The authorization server in httpd: SMART discovery, the token endpoint (client_credentials
 * with a private_key_jwt client assertion, SMART-TOK-01..11), and an authorize endpoint that
 * only says it is not supported (D26). The protocol work is in the core (atr_assertion,
 * atr_scope, atr_token); this file is parse → authenticate → authorize → respond. */
#include <string.h>
#include <apr_strings.h>
#include <jansson.h>
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "atr_assertion.h"
#include "atr_jwks_fetch.h"
#include "atr_json.h"
#include "atr_scope.h"
#include "atr_token.h"
#include "mod_atr.h"
#include "mod_atr_auth.h"
#include "mod_atr_config.h"

#define TOKEN_FORM_MAX (16 * 1024)
#define JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* The scopes this server grants access with (SMART-DISC-04: only what is enforced). */
static const char *const supported_types[] = {
    "Group", "Patient", "Coverage", "RelatedPerson", "Practitioner", "PractitionerRole",
    "Organization", "Location", NULL
};

/* ---------------------------------------------------------------- responses */

static int send_json(request_rec *r, int status, json_t *body, int no_store)
{
    const char *text = atr_json_dump(atr_json_pool_own(body, r->pool), r->pool);
    r->status = status;
    ap_set_content_type(r, "application/json");
    if (no_store) {
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
        apr_table_setn(r->headers_out, "Pragma", "no-cache");
    }
    if (!r->header_only) {
        ap_rputs(text, r);
        ap_rputs("\n", r);
    }
    return OK;
}

/* RFC 6749 §5.2 error (SMART-TOK-08). allow: the Allow header for 405. */
static int oauth_error(request_rec *r, int status, const char *error, const char *allow, const char *desc)
{
    if (allow) apr_table_setn(r->headers_out, "Allow", allow);
    if (status == HTTP_SERVICE_UNAVAILABLE) apr_table_setn(r->headers_out, "Retry-After", "5");
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "ATR00530: %s answered %d %s: %s", r->uri, status, error, desc);
    return send_json(r, status, json_pack("{s:s, s:s}", "error", error, "error_description", desc), 1);
}

/* ---------------------------------------------------------------- discovery */

static int handle_discovery(request_rec *r)
{
    const char *base = atr_conf_base_url(r);
    json_t *scopes = json_array(), *doc;
    int i;

    if (r->method_number != M_GET) {
        return oauth_error(r, HTTP_METHOD_NOT_ALLOWED, "invalid_request", "GET, HEAD",
                           "use GET for the SMART configuration");
    }
    json_array_append_new(scopes, json_string("system/*.read"));
    json_array_append_new(scopes, json_string("system/*.rs"));
    for (i = 0; supported_types[i]; i++) {
        json_array_append_new(scopes, json_string(apr_pstrcat(r->pool, "system/", supported_types[i], ".read", NULL)));
        json_array_append_new(scopes, json_string(apr_pstrcat(r->pool, "system/", supported_types[i], ".rs", NULL)));
    }
    json_array_append_new(scopes, json_string("system/Group.write"));
    json_array_append_new(scopes, json_string("system/Group.cud"));
    doc = json_pack("{s:s, s:s, s:[s], s:[s, s], s:[s], s:o, s:[s, s, s], s:[s]}",
                    "token_endpoint", apr_pstrcat(r->pool, base, ATR_AUTH_TOKEN_PATH, NULL),
                    "authorization_endpoint", apr_pstrcat(r->pool, base, ATR_AUTH_AUTHORIZE_PATH, NULL),
                    "token_endpoint_auth_methods_supported", "private_key_jwt",
                    "token_endpoint_auth_signing_alg_values_supported", "RS384", "ES384",
                    "grant_types_supported", "client_credentials",
                    "scopes_supported", scopes,
                    "capabilities", "client-confidential-asymmetric", "permission-v1", "permission-v2",
                    "code_challenge_methods_supported", "S256");
    return send_json(r, HTTP_OK, doc, 0);
}

/* ---------------------------------------------------------------- authorize */

static int handle_authorize(request_rec *r)
{
    return oauth_error(r, HTTP_BAD_REQUEST, "unsupported_response_type", NULL,
                       "this server supports SMART Backend Services only: use the client_credentials "
                       "grant at the token endpoint");
}

/* ---------------------------------------------------------------- token */

/* The body of a form POST, at most TOKEN_FORM_MAX bytes. NULL + *perr when unreadable. */
static const char *read_body(request_rec *r, const char **perr)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    char *buf;
    apr_size_t len = 0;
    long n;

    if (cl) {
        char *end;
        apr_off_t v;
        if (apr_strtoff(&v, cl, &end, 10) != APR_SUCCESS || *end || v < 0) {
            *perr = "invalid Content-Length";
            return NULL;
        }
        if (v > TOKEN_FORM_MAX) {
            *perr = "request body too large";
            r->connection->keepalive = AP_CONN_CLOSE;
            return NULL;
        }
    }
    if (ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK) != OK) {
        *perr = "cannot read the request body";
        return NULL;
    }
    buf = apr_palloc(r->pool, TOKEN_FORM_MAX + 1);
    if (ap_should_client_block(r)) {
        while ((n = ap_get_client_block(r, buf + len, TOKEN_FORM_MAX + 1 - len)) > 0) {
            len += (apr_size_t)n;
            if (len > TOKEN_FORM_MAX) {
                *perr = "request body too large";
                r->connection->keepalive = AP_CONN_CLOSE;
                return NULL;
            }
        }
        if (n < 0) {
            *perr = "cannot read the request body";
            return NULL;
        }
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        *perr = "request body contains NUL bytes";
        return NULL;
    }
    return buf;
}

/* Parse the form into *pform (name → value); a parameter twice or a bad escape → *perr.
 * Parameters without a value count as omitted (RFC 6749 §3.1). */
static apr_status_t parse_form(apr_table_t **pform, char *body, const char **perr, apr_pool_t *p)
{
    apr_table_t *form = apr_table_make(p, 8);
    char *pair, *last = NULL;

    *pform = form;
    for (pair = apr_strtok(body, "&", &last); pair; pair = apr_strtok(NULL, "&", &last)) {
        char *eq = strchr(pair, '='), *name = pair, *value = (char *)"";
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        if (ap_unescape_urlencoded(name) != OK || ap_unescape_urlencoded(value) != OK
            || strlen(name) == 0) {
            *perr = "malformed form parameter";
            return APR_EINVAL;
        }
        if (apr_table_get(form, name)) {
            *perr = apr_psprintf(p, "parameter %s given more than once",
                                 strlen(name) <= 40 ? ap_escape_logitem(p, name) : "(long name)");
            return APR_EINVAL;
        }
        apr_table_setn(form, name, value);
    }
    return APR_SUCCESS;
}

static const char *form_get(apr_table_t *form, const char *name)
{
    const char *v = apr_table_get(form, name);
    return v && *v ? v : NULL;
}

static int is_form_type(const char *ct)
{
    apr_size_t n = sizeof("application/x-www-form-urlencoded") - 1;
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", n)) return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

static apr_status_t registry_get(atr_client_t **pclient, void *baton, const char *client_id, apr_pool_t *p)
{
    return atr_registry_client_get(pclient, baton, client_id, p);
}

static apr_status_t jwks_get(apr_array_header_t **pkeys, int *pfetched, void *baton, const char *url, int force,
                             const char **perr, apr_pool_t *p)
{
    return atr_jwks_cache_get(pkeys, pfetched, baton, url, force, perr, p);
}

static apr_status_t jti_remember(int *preplay, void *baton, const char *client_id, const char *jti,
                                 apr_time_t expires, apr_pool_t *p)
{
    request_rec *r = baton;
    atr_db_t *db;
    apr_status_t rv;
    *preplay = 0;
    if ((rv = atr_mod_db(&db, r)) != APR_SUCCESS) return rv;
    return atr_assertion_jti_db(preplay, db, client_id, jti, expires, p);
}

/* The client's allowed scopes (atrScope values, each possibly a list) parsed. */
static apr_array_header_t *client_scopes(const atr_client_t *client, apr_pool_t *p)
{
    apr_array_header_t *allowed = NULL;
    const char *joined = client->scopes ? apr_array_pstrcat(p, client->scopes, ' ') : "";
    if (atr_scope_parse_list(&allowed, NULL, joined, p) != APR_SUCCESS || !allowed) {
        allowed = apr_array_make(p, 1, sizeof(atr_scope_t *));
    }
    return allowed;
}

static int handle_token(request_rec *r)
{
    const char *err = NULL, *body, *grant, *atype, *assertion, *scope, *granted, *token = NULL, *base;
    apr_table_t *form;
    apr_array_header_t *requested = NULL;
    atr_assertion_ctx_t ctx;
    atr_client_t *client = NULL;
    const atr_token_key_t *key = atr_conf_token_key(r->server);
    apr_interval_time_t lifetime = atr_conf_token_lifetime(r->server);
    apr_status_t rv;

    /* parse */
    if (r->method_number != M_POST || r->header_only) {
        return oauth_error(r, HTTP_METHOD_NOT_ALLOWED, "invalid_request", "POST", "use POST for token requests");
    }
    if (!is_form_type(apr_table_get(r->headers_in, "Content-Type"))) {
        return oauth_error(r, HTTP_BAD_REQUEST, "invalid_request",
                           NULL, "Content-Type must be application/x-www-form-urlencoded");
    }
    if (!(body = read_body(r, &err))) return oauth_error(r, HTTP_BAD_REQUEST, "invalid_request", NULL, err);
    if (parse_form(&form, apr_pstrdup(r->pool, body), &err, r->pool) != APR_SUCCESS) {
        return oauth_error(r, HTTP_BAD_REQUEST, "invalid_request", NULL, err);
    }
    grant = form_get(form, "grant_type");
    atype = form_get(form, "client_assertion_type");
    assertion = form_get(form, "client_assertion");
    scope = form_get(form, "scope");
    if (!grant) return oauth_error(r, HTTP_BAD_REQUEST, "invalid_request", NULL, "grant_type is missing");
    if (strcmp(grant, "client_credentials")) {
        return oauth_error(r, HTTP_BAD_REQUEST, "unsupported_grant_type", NULL,
                           "only the client_credentials grant is supported");
    }
    if (!atype || strcmp(atype, JWT_BEARER)) {
        return oauth_error(r, HTTP_BAD_REQUEST, "invalid_request", NULL,
                           "client_assertion_type must be " JWT_BEARER);
    }
    if (!assertion) return oauth_error(r, HTTP_BAD_REQUEST, "invalid_request", NULL, "client_assertion is missing");
    if (!scope) return oauth_error(r, HTTP_BAD_REQUEST, "invalid_request", NULL, "scope is missing");
    if (!key || !atr_conf_registry(r->server)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "ATR00531: token endpoint not set up (%s); answering 503",
                      !key ? "no ATRTokenKeyFile" : "no Consumer registry in this process");
        return oauth_error(r, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", NULL,
                           "the authorization server is not available");
    }

    /* authenticate */
    base = atr_conf_base_url(r);
    memset(&ctx, 0, sizeof(ctx));
    ctx.token_url = apr_pstrcat(r->pool, base, ATR_AUTH_TOKEN_PATH, NULL);
    ctx.now = apr_time_now();
    ctx.client_get = registry_get;
    ctx.client_baton = atr_conf_registry(r->server);
    if (atr_conf_jwks_cache(r->server)) {
        ctx.jwks_get = jwks_get;
        ctx.jwks_baton = atr_conf_jwks_cache(r->server);
    }
    ctx.jti_remember = jti_remember;
    ctx.jti_baton = r;
    rv = atr_assertion_validate(&client, &ctx, assertion, &err, r->pool);
    if (rv == APR_EINVAL) return oauth_error(r, HTTP_UNAUTHORIZED, "invalid_client", NULL, err);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00532: token request not answered: %s", err);
        return oauth_error(r, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", NULL,
                           "the authorization server cannot check clients right now; retry later");
    }
    if (form_get(form, "client_id") && strcmp(form_get(form, "client_id"), client->client_id)) {
        return oauth_error(r, HTTP_UNAUTHORIZED, "invalid_client", NULL,
                           "client_id does not match the client assertion");
    }

    /* authorize: mediate the scopes (SMART-TOK-09, D31) */
    if (atr_scope_parse_list(&requested, NULL, scope, r->pool) != APR_SUCCESS || !requested) {
        requested = apr_array_make(r->pool, 1, sizeof(atr_scope_t *));
    }
    granted = atr_scope_mediate(requested, client_scopes(client, r->pool), r->pool);
    if (!granted || !*granted) {
        return oauth_error(r, HTTP_BAD_REQUEST, "invalid_scope", NULL,
                           "none of the requested scopes can be granted to this client");
    }

    /* act and respond */
    if (atr_token_issue(&token, key, base, client->client_id, granted, lifetime, ctx.now, r->pool) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "ATR00533: cannot issue an access token");
        return oauth_error(r, HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL, "cannot issue an access token");
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "ATR00534: access token issued to client %s for scope \"%s\"",
                  client->client_id, granted);
    return send_json(r, HTTP_OK, json_pack("{s:s, s:s, s:I, s:s}", "access_token", token, "token_type", "bearer",
                                           "expires_in", (json_int_t)apr_time_sec(lifetime), "scope", granted), 1);
}

int atr_auth_handler(request_rec *r, const char *path)
{
    if (!strcmp(path, ATR_AUTH_TOKEN_PATH)) return handle_token(r);
    if (!strcmp(path, ATR_AUTH_DISCOVERY_PATH)) return handle_discovery(r);
    if (!strcmp(path, ATR_AUTH_AUTHORIZE_PATH)) return handle_authorize(r);
    return DECLINED;
}
