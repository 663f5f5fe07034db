/* The reconciliation endpoints. Each reads like the protocol: method (D7: only POST) → scope
 * (D19: Group write for the changing operations, Group read for $attribution-status, Group
 * create for POST Group) → body (Parameters) → entitlement (a Group the client may not see
 * answers like a missing one, 404) → the change (atr_recon.h) → the answer. Every refusal is
 * an OperationOutcome. */
#include <string.h>
#include <apr_strings.h>
#include "http_protocol.h"
#include "http_request.h"
#include "http_log.h"
#include "atr_entitle.h"
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_recon.h"
#include "atr_render.h"
#include "atr_scope.h"
#include "atr_store.h"
#include "atr_time.h"
#include "mod_atr.h"
#include "mod_atr_config.h"
#include "mod_atr_http.h"
#include "mod_atr_recon.h"
#include "mod_atr_notify.h"

#define RECON_BODY_MAX (1024 * 1024)

/* Read an optional FHIR JSON body; OK or answered (returns the status answered, != OK). */
static int read_json_body(request_rec *r, const char *what, const char **pbody)
{
    static const char *const json_types[] = { "application/fhir+json", "application/json", NULL };
    int rc = atr_http_read_body(r, json_types, RECON_BODY_MAX, pbody);
    if (rc == OK) return OK;
    if (rc == HTTP_UNSUPPORTED_MEDIA_TYPE) {
        atr_http_oo(r, rc, "not-supported", NULL, "%s takes application/fhir+json", what);
    }
    else if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        atr_http_oo(r, rc, "too-costly", NULL, "the body is larger than 1 MiB");
    }
    else {
        atr_http_oo(r, HTTP_BAD_REQUEST, "invalid", NULL, "the body could not be read");
    }
    return rc == HTTP_UNSUPPORTED_MEDIA_TYPE || rc == HTTP_REQUEST_ENTITY_TOO_LARGE ? rc : HTTP_BAD_REQUEST;
}

static void set_version_headers(request_rec *r, const char *base, const atr_resource_t *res)
{
    apr_time_t t;
    apr_table_setn(r->headers_out, "ETag", apr_psprintf(r->pool, "W/\"%d\"", res->version));
    apr_table_setn(r->headers_out, "Content-Location",
                   apr_psprintf(r->pool, "%s/Group/%s/_history/%d", base, res->id, res->version));
    if (res->last_updated && atr_time_parse_instant(&t, res->last_updated) == APR_SUCCESS) {
        ap_update_mtime(r, t);
        ap_set_last_modified(r);
    }
}

/* Answer status with the current version of the Group (the result of $member-add and
 * $member-remove, D22; the created Group). */
static int answer_group(request_rec *r, const char *base, atr_db_t *db, const char *id, int status)
{
    atr_resource_t *res;
    atr_render_opts_t opts;
    atr_out_t out;
    atr_http_out_t ho;
    apr_status_t rv = atr_store_get(&res, db, "Group", id, 0, r->pool);

    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00850: reading Group/%s after a change failed: %s",
                      id, atr_db_error(db, rv));
        return atr_http_store_unavailable(r);
    }
    set_version_headers(r, base, res);
    r->status = status;
    ap_set_content_type(r, ATR_FHIR_JSON);
    if (r->header_only) return OK;
    memset(&opts, 0, sizeof(opts));
    opts.member_page_size = atr_conf_member_page_size(r->server);
    atr_http_out_init(&out, &ho, r);
    rv = atr_render_resource(&out, db, res, &opts, r->pool);
    if (rv == APR_SUCCESS) rv = atr_http_out_finish(&ho);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00851: sending Group/%s failed: %s", id,
                      atr_db_error(db, rv));
        if (!ho.started) return atr_http_store_unavailable(r);
        atr_http_out_abort(&ho);
    }
    return OK;
}

/* ---------------------------------------------------------------- POST Group */

static int do_create(request_rec *r, const char *base, atr_authz_t *az)
{
    const char *body = NULL, *code, *err, *id;
    json_t *group;
    atr_db_t *db;
    apr_status_t rv;
    int version, rc;

    if (atr_authz_need(r, az, "Group", ATR_PERM_C) != OK) return OK;
    if ((rc = read_json_body(r, "POST Group", &body)) != OK) return OK;
    id = atr_recon_new_id(r->pool);
    if (atr_recon_new_group(&group, body, id, &code, &err, r->pool) != APR_SUCCESS) {
        return atr_http_oo(r, !strcmp(code, "business-rule") ? HTTP_UNPROCESSABLE_ENTITY : HTTP_BAD_REQUEST,
                           code, NULL, "%s", err);
    }
    if (atr_mod_db(&db, r) != APR_SUCCESS) return atr_http_store_unavailable(r);
    /* link first: a link to a Group that never got stored is harmless (entitlement only
     * counts existing Groups), a stored Group its creator cannot read is not */
    rv = atr_recon_link(atr_conf_registry(r->server), az->client_id, id, &err, r->pool);
    if (rv != APR_SUCCESS) {
        apr_table_setn(r->headers_out, "Retry-After", "5");
        return atr_http_oo(r, HTTP_SERVICE_UNAVAILABLE, "transient", NULL,
                           "the Consumer registry is not available; try again later");
    }
    rv = atr_recon_create(&version, db, group, az->client_id, r->request_time, &err, r->pool);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00852: creating Group/%s failed: %s", id, err ? err : "");
        return atr_http_store_unavailable(r);
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "ATR00853: Group/%s (%s) created by client %s", id,
                  atr_recon_list_status(group), az->client_id);
    apr_table_setn(r->headers_out, "Location", apr_psprintf(r->pool, "%s/Group/%s/_history/%d", base, id, version));
    return answer_group(r, base, db, id, HTTP_CREATED);
}

/* ---------------------------------------------------------------- operations */

static int op_of(const char *seg, atr_recon_op_e *pop)
{
    if (!strcmp(seg, "$member-add")) *pop = ATR_RECON_ADD;
    else if (!strcmp(seg, "$member-remove")) *pop = ATR_RECON_REMOVE;
    else if (!strcmp(seg, "$confirm-attribution-list")) *pop = ATR_RECON_CONFIRM;
    else if (!strcmp(seg, "$attribution-status")) *pop = ATR_RECON_STATUS;
    else return 0;
    return 1;
}

static int refusal(request_rec *r, atr_recon_op_e op, const atr_recon_result_t *res)
{
    const char *text = res->text ? res->text : "refused";
    switch (res->err) {
    case ATR_RECON_E_GROUP:
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "%s", text);
    case ATR_RECON_E_GONE:
        return atr_http_oo(r, HTTP_GONE, "deleted", NULL, "%s", text);
    case ATR_RECON_E_FINAL:
        return atr_http_oo(r, HTTP_UNPROCESSABLE_ENTITY, "business-rule", NULL, "%s", text);
    case ATR_RECON_E_UNKNOWN:
        return atr_http_oo(r, HTTP_UNPROCESSABLE_ENTITY, "not-found", NULL, "%s", text);
    case ATR_RECON_E_DUPLICATE:
        return atr_http_oo(r, HTTP_UNPROCESSABLE_ENTITY, "duplicate", NULL, "%s", text);
    case ATR_RECON_E_NO_MEMBER:
        /* OP-STAT-02: not a member is 404; OP-REM-05: nothing to remove is 422 */
        return atr_http_oo(r, op == ATR_RECON_STATUS ? HTTP_NOT_FOUND : HTTP_UNPROCESSABLE_ENTITY,
                           "not-found", NULL, "%s", text);
    default:
        return atr_http_store_unavailable(r);
    }
}

typedef struct read_baton_t {
    request_rec *r;
    atr_authz_t *az;
} read_baton_t;

static int can_read(void *baton, const char *type)
{
    read_baton_t *b = baton;
    return b->az->claims && atr_scope_allows(b->az->claims->scopes, type, ATR_PERM_R);
}

static int do_status(request_rec *r, const char *base, atr_authz_t *az, atr_db_t *db, const char *id,
                     const atr_recon_params_t *pa)
{
    atr_recon_status_t *st;
    atr_recon_result_t res;
    read_baton_t b;
    atr_out_t out;
    atr_http_out_t ho;
    apr_status_t rv;

    rv = atr_recon_status_prepare(&st, &res, db, id, pa, r->pool);
    if (rv != APR_SUCCESS || res.err != ATR_RECON_OK) return refusal(r, ATR_RECON_STATUS, &res);
    ap_set_content_type(r, ATR_FHIR_JSON);
    if (r->header_only) return OK;
    b.r = r;
    b.az = az;
    atr_http_out_init(&out, &ho, r);
    rv = atr_recon_status_write(&out, st, base, can_read, &b, r->pool);
    if (rv == APR_SUCCESS) rv = atr_http_out_finish(&ho);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00854: $attribution-status of Group/%s failed: %s", id,
                      atr_db_error(db, rv));
        if (!ho.started) return atr_http_store_unavailable(r);
        atr_http_out_abort(&ho);
    }
    return OK;
}

static int do_operation(request_rec *r, const char *base, atr_authz_t *az, const char *id, atr_recon_op_e op)
{
    const char *name = apr_pstrcat(r->pool, "$", atr_recon_op_name(op), NULL);
    const char *body = NULL, *code, *err;
    const apr_array_header_t *groups;
    atr_recon_params_t *pa;
    atr_recon_result_t res;
    atr_db_t *db;
    apr_status_t rv;
    int owner = 0;

    /* D7: POST only (the parameters are complex types, so there is no GET form either) */
    if (r->method_number != M_POST) {
        return atr_http_oo(r, HTTP_METHOD_NOT_ALLOWED, "not-supported", "POST",
                           "%s takes POST (method %s is not allowed)", name, r->method);
    }
    /* D19 */
    if (atr_authz_need(r, az, "Group", op == ATR_RECON_STATUS ? ATR_PERM_R : ATR_PERM_U) != OK) return OK;
    if (read_json_body(r, name, &body) != OK) return OK;
    if (atr_recon_params_parse(&pa, op, body, &code, &err, r->pool) != APR_SUCCESS) {
        return atr_http_oo(r, HTTP_BAD_REQUEST, code, NULL, "%s", err);
    }
    if (atr_mod_db(&db, r) != APR_SUCCESS) return atr_http_store_unavailable(r);
    if (atr_authz_groups(&groups, az, db, r) != APR_SUCCESS) return atr_http_store_unavailable(r);
    if (!atr_entitle_has(groups, id)) {
        /* its creator may reach it before every process's registry cache sees the link */
        if (atr_recon_is_owner(&owner, db, id, az->client_id, r->pool) != APR_SUCCESS) return atr_http_store_unavailable(r);
        if (!owner) return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "Group/%s is not known", id);
    }
    switch (op) {
    case ATR_RECON_ADD:
        rv = atr_recon_member_add(&res, db, id, pa, r->request_time, r->pool);
        break;
    case ATR_RECON_REMOVE:
        rv = atr_recon_member_remove(&res, db, id, pa, r->request_time, r->pool);
        break;
    case ATR_RECON_CONFIRM:
        rv = atr_recon_confirm(&res, db, id, r->request_time, r->pool);
        break;
    default:
        return do_status(r, base, az, db, id, pa);
    }
    if (rv != APR_SUCCESS || res.err != ATR_RECON_OK) {
        if (res.err == ATR_RECON_E_STORE || rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00855: %s on Group/%s failed: %s", name, id,
                          res.text ? res.text : "store error");
            return atr_http_store_unavailable(r);
        }
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "ATR00856: %s on Group/%s refused for client %s: %s", name, id,
                      az->client_id, res.text ? res.text : "");
        return refusal(r, op, &res);
    }
    if (op == ATR_RECON_CONFIRM) {
        /* OP-CONF-01, D23: 201 with an informational OperationOutcome */
        json_t *oo = atr_json_pool_own(atr_oo_make("information", "informational",
            apr_psprintf(r->pool, "Group/%s is confirmed: the attribution list is final (version %d)", id,
                         res.version)), r->pool);
        apr_table_setn(r->headers_out, "Location",
                       apr_psprintf(r->pool, "%s/Group/%s/_history/%d", base, id, res.version));
        apr_table_setn(r->headers_out, "ETag", apr_psprintf(r->pool, "W/\"%d\"", res.version));
        r->status = HTTP_CREATED;
        ap_set_content_type(r, ATR_FHIR_JSON);
        if (!r->header_only) ap_rputs(atr_json_dump(oo, r->pool), r);
        return OK;
    }
    return answer_group(r, base, db, id, HTTP_OK);
}

int atr_recon_route(request_rec *r, const char *base, atr_authz_t *az, const apr_array_header_t *seg)
{
    const char *type = seg->nelts ? APR_ARRAY_IDX(seg, 0, const char *) : "";
    atr_recon_op_e op;

    if (!strcmp(type, "Subscription")) return atr_notify_route(r, base, az, seg);
    if (strcmp(type, "Group")) return DECLINED;
    if (seg->nelts == 1 && r->method_number == M_POST) return do_create(r, base, az);
    if (seg->nelts == 3 && atr_fhir_is_id(APR_ARRAY_IDX(seg, 1, const char *))
        && op_of(APR_ARRAY_IDX(seg, 2, const char *), &op)) {
        return do_operation(r, base, az, APR_ARRAY_IDX(seg, 1, const char *), op);
    }
    return DECLINED;
}
