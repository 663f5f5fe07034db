/* The Subscription endpoints (SUB-01..03): POST [base]/Subscription, PUT and GET
 * [base]/Subscription/<id>. A Subscription names one Group; a client may subscribe only to a
 * Group it is entitled to (SUB-02: 401 otherwise, the same answer for a Group that does not
 * exist). A Subscription of another client answers like a missing one. */
#include <string.h>
#include <apr_strings.h>
#include "http_protocol.h"
#include "http_request.h"
#include "atr_entitle.h"
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_recon.h"
#include "atr_scope.h"
#include "atr_subscription.h"
#include "mod_atr.h"
#include "mod_atr_config.h"
#include "mod_atr_http.h"
#include "mod_atr_notify.h"

#define SUB_BODY_MAX (64 * 1024)

static int answer(request_rec *r, const char *base, const atr_sub_t *sub, int status)
{
    apr_table_setn(r->headers_out, "Location", apr_pstrcat(r->pool, base, "/Subscription/", sub->id, NULL));
    r->status = status;
    ap_set_content_type(r, ATR_FHIR_JSON);
    if (!r->header_only) ap_rputs(atr_json_dump(atr_sub_resource(sub, r->pool), r->pool), r);
    return OK;
}

/* 1 when the client may subscribe to group_id; -1 on a store error. */
static int entitled(request_rec *r, atr_authz_t *az, atr_db_t *db, const char *group_id)
{
    const apr_array_header_t *groups;
    int owner = 0;
    if (atr_authz_groups(&groups, az, db, r) != APR_SUCCESS) return -1;
    if (atr_entitle_has(groups, group_id)) return 1;
    if (atr_recon_is_owner(&owner, db, group_id, az->client_id, r->pool) != APR_SUCCESS) return -1;
    return owner;
}

static int do_put(request_rec *r, const char *base, atr_authz_t *az, const char *id, int create)
{
    static const char *const json_types[] = { "application/fhir+json", "application/json", NULL };
    const char *body = NULL, *err;
    atr_sub_t *sub;
    atr_db_t *db;
    apr_status_t rv;
    int rc, ok, created = 0;

    if (atr_authz_need(r, az, "Subscription", create ? ATR_PERM_C : ATR_PERM_U) != OK) return OK;
    rc = atr_http_read_body(r, json_types, SUB_BODY_MAX, &body);
    if (rc == HTTP_UNSUPPORTED_MEDIA_TYPE) {
        return atr_http_oo(r, rc, "not-supported", NULL, "a Subscription is sent as application/fhir+json");
    }
    if (rc != OK) {
        return atr_http_oo(r, rc == HTTP_REQUEST_ENTITY_TOO_LARGE ? rc : HTTP_BAD_REQUEST,
                           rc == HTTP_REQUEST_ENTITY_TOO_LARGE ? "too-costly" : "invalid", NULL,
                           "the body could not be read (at most 64 KiB)");
    }
    if (atr_sub_parse(&sub, body, id, atr_conf_sub_allow_loopback_http(r->server), &err, r->pool) != APR_SUCCESS) {
        return atr_http_oo(r, HTTP_BAD_REQUEST, "invalid", NULL, "%s", err);
    }
    if (atr_mod_db(&db, r) != APR_SUCCESS) return atr_http_store_unavailable(r);
    ok = entitled(r, az, db, sub->group_id);
    if (ok < 0) return atr_http_store_unavailable(r);
    if (!ok) {
        /* SUB-02 says 401; a Group that does not exist answers the same (D1) */
        apr_table_setn(r->headers_out, "WWW-Authenticate",
                       apr_psprintf(r->pool, "Bearer realm=\"%s\"", atr_conf_base_url(r)));
        return atr_http_oo(r, HTTP_UNAUTHORIZED, "security", NULL,
                           "this client may not subscribe to Group/%s", sub->group_id);
    }
    sub->client_id = az->client_id;
    sub->base_url = base;
    rv = atr_sub_put(&created, db, sub, r->request_time, r->pool);
    if (rv == APR_EEXIST) {
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "Subscription/%s is not known", id);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00870: storing Subscription/%s failed: %s", id,
                      atr_db_error(db, rv));
        return atr_http_store_unavailable(r);
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "ATR00871: Subscription/%s on Group/%s %s by client %s", id,
                  sub->group_id, created ? "created" : "updated", az->client_id);
    return answer(r, base, sub, created ? HTTP_CREATED : HTTP_OK);
}

static int do_get(request_rec *r, const char *base, atr_authz_t *az, const char *id)
{
    atr_sub_t *sub = NULL;
    atr_db_t *db;
    apr_status_t rv;

    if (atr_authz_need(r, az, "Subscription", ATR_PERM_R) != OK) return OK;
    if (atr_mod_db(&db, r) != APR_SUCCESS) return atr_http_store_unavailable(r);
    rv = atr_sub_get(&sub, db, id, r->pool);
    if (rv != APR_SUCCESS && rv != APR_NOTFOUND) return atr_http_store_unavailable(r);
    if (rv == APR_NOTFOUND || strcmp(sub->client_id, az->client_id)) {
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "Subscription/%s is not known", id);
    }
    answer(r, base, sub, HTTP_OK);
    apr_table_unset(r->headers_out, "Location");
    return OK;
}

int atr_notify_route(request_rec *r, const char *base, atr_authz_t *az, const apr_array_header_t *seg)
{
    const char *id;
    if (!seg->nelts || strcmp(APR_ARRAY_IDX(seg, 0, const char *), "Subscription")) return DECLINED;
    if (seg->nelts == 1) {
        if (r->method_number != M_POST) {
            return atr_http_oo(r, HTTP_METHOD_NOT_ALLOWED, "not-supported", "POST",
                               "Subscriptions are created with POST (method %s is not allowed)", r->method);
        }
        return do_put(r, base, az, atr_recon_new_id(r->pool), 1);
    }
    id = APR_ARRAY_IDX(seg, 1, const char *);
    if (seg->nelts > 2 || !atr_fhir_is_id(id)) {
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "no such endpoint");
    }
    if (r->method_number == M_PUT) return do_put(r, base, az, id, 0);
    if (r->method_number == M_GET) return do_get(r, base, az, id);
    return atr_http_oo(r, HTTP_METHOD_NOT_ALLOWED, "not-supported", "GET, HEAD, PUT",
                       "method %s is not allowed here (allowed: GET, HEAD, PUT)", r->method);
}
