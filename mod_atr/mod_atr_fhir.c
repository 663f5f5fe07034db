/* The FHIR REST handler. Each interaction reads like the protocol: parse → authenticate →
 * authorize → act → respond. /metadata and the authorization server's URLs (SMART discovery,
 * token) are public; everything else needs a Bearer token, a scope for the type and
 * interaction, and (Groups, member data) entitlement (mod_atr_authz.h). A Group the client
 * is not entitled to answers exactly like a missing one (D1: 404, never revealing it).
 * Bodies are streamed: a Bundle entry or a Group member goes to the client as it is
 * rendered, so memory does not grow with the answer. */
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include "http_protocol.h"
#include "http_request.h"
#include "atr_fhir.h"
#include "atr_json.h"
#include "atr_time.h"
#include "atr_store.h"
#include "atr_render.h"
#include "atr_search.h"
#include "atr_capability.h"
#include "atr_entitle.h"
#include "atr_scope.h"
#include "mod_atr.h"
#include "mod_atr_config.h"
#include "mod_atr_http.h"
#include "mod_atr_fhir.h"
#include "mod_atr_auth.h"
#include "mod_atr_authz.h"
#include "mod_atr_bulk.h"
#include "mod_atr_recon.h"

#define ALLOW_READ "GET, HEAD"

typedef struct fhir_req_t {
    request_rec *r;
    const char *base;            /* absolute FHIR base URL */
    apr_array_header_t *params;  /* query-string parameters */
    atr_authz_t *az;             /* the authenticated client (NULL on public endpoints) */
} fhir_req_t;

/* _summary and _elements of read and vread. NULL or an error message. */
static const char *read_opts(atr_render_opts_t *opts, fhir_req_t *fr)
{
    const char *summary = atr_http_param_get(fr->params, "_summary");
    const char *elements = atr_http_param_get(fr->params, "_elements");

    memset(opts, 0, sizeof(*opts));
    opts->member_page_size = atr_conf_member_page_size(fr->r->server);
    if (summary && *summary) {
        if (!strcmp(summary, "true")) opts->summary = ATR_SUMMARY_TRUE;
        else if (!strcmp(summary, "false")) opts->summary = ATR_SUMMARY_FALSE;
        else return "_summary must be true or false on a read";
    }
    if (elements && *elements) {
        char *tok, *last, *copy = apr_pstrdup(fr->r->pool, elements);
        apr_array_header_t *names = apr_array_make(fr->r->pool, 4, sizeof(const char *));
        for (tok = apr_strtok(copy, ",", &last); tok; tok = apr_strtok(NULL, ",", &last)) {
            const char *c;
            for (c = tok; *c; c++) {
                if (!apr_isalnum(*c) && *c != '_' && *c != '-') return "_elements: not an element name";
            }
            APR_ARRAY_PUSH(names, const char *) = tok;
        }
        opts->elements = names;
    }
    return NULL;
}

static const char *etag_of(const atr_resource_t *res, apr_pool_t *p)
{
    return apr_psprintf(p, "W/\"%d\"", res->version);
}

static void set_validators(request_rec *r, const atr_resource_t *res)
{
    apr_time_t t;
    apr_table_setn(r->headers_out, "ETag", etag_of(res, r->pool));
    if (res->last_updated && atr_time_parse_instant(&t, res->last_updated) == APR_SUCCESS) {
        ap_update_mtime(r, t);
        ap_set_last_modified(r);
    }
}

/* ---------------------------------------------------------------- metadata */

static int do_metadata(fhir_req_t *fr)
{
    request_rec *r = fr->r;
    json_t *cs = atr_capability_statement(fr->base, r->pool);
    ap_set_content_type(r, ATR_FHIR_JSON);
    if (!r->header_only) ap_rputs(atr_json_dump(cs, r->pool), r);
    return OK;
}

/* ---------------------------------------------------------------- read / vread */

static int do_read(fhir_req_t *fr, atr_db_t *db, const char *type, const char *id, int version)
{
    request_rec *r = fr->r;
    atr_resource_t *res;
    atr_render_opts_t opts;
    atr_out_t out;
    atr_http_out_t ho;
    const char *err;
    apr_status_t rv;
    int rc;

    if ((err = read_opts(&opts, fr)) != NULL) {
        return atr_http_oo(r, HTTP_BAD_REQUEST, "invalid", NULL, "%s", err);
    }
    if (!strcmp(type, "Group")) {
        /* before any store read: a Group the client may not see is a missing Group */
        const apr_array_header_t *groups;
        if (atr_authz_groups(&groups, fr->az, db, r) != APR_SUCCESS) return atr_http_store_unavailable(r);
        rv = atr_entitle_has(groups, id) ? atr_store_get(&res, db, type, id, version, r->pool) : APR_NOTFOUND;
    }
    else {
        rv = atr_store_get(&res, db, type, id, version, r->pool);
        if (rv == APR_SUCCESS) {
            int visible = 0;
            if (atr_authz_visible(&visible, fr->az, db, type, id, res->body, r) != APR_SUCCESS) {
                return atr_http_store_unavailable(r);
            }
            if (!visible) rv = APR_NOTFOUND;
        }
    }
    if (rv == APR_NOTFOUND) {
        return version
            ? atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "%s/%s has no version %d", type, id, version)
            : atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "%s/%s is not known", type, id);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00310: reading %s/%s failed: %s",
                      type, id, atr_db_error(db, rv));
        return atr_http_store_unavailable(r);
    }
    if (res->deleted) {
        return atr_http_oo(r, HTTP_GONE, "deleted", NULL, "%s/%s was deleted", type, id);
    }
    set_validators(r, res);
    if ((rc = ap_meets_conditions(r)) != OK) {
        if (rc == HTTP_NOT_MODIFIED) {
            /* keep ETag and Last-Modified: returning the status would send error headers */
            r->status = HTTP_NOT_MODIFIED;
            return OK;
        }
        return atr_http_oo(r, rc, "conflict", NULL, "precondition failed");
    }
    ap_set_content_type(r, ATR_FHIR_JSON);
    if (r->header_only) return OK;
    atr_http_out_init(&out, &ho, r);
    rv = atr_render_resource(&out, db, res, &opts, r->pool);
    if (rv == APR_SUCCESS) rv = atr_http_out_finish(&ho);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00311: sending %s/%s failed: %s",
                      type, id, atr_db_error(db, rv));
        if (!ho.started) return atr_http_store_unavailable(r);
        atr_http_out_abort(&ho);
    }
    return OK;
}

/* ---------------------------------------------------------------- history */

typedef struct history_ctx_t {
    request_rec *r;
    atr_db_t *db;
    atr_out_t out;
    atr_http_out_t ho;
    atr_render_opts_t opts;
    const char *base, *type, *id, *self;
    int n;
} history_ctx_t;

/* Written with the first entry (or at the end), so a store error before any entry can
 * still be answered with a clean 503. */
static apr_status_t history_head(history_ctx_t *hc)
{
    apr_status_t rv;
    ap_set_content_type(hc->r, ATR_FHIR_JSON);
    rv = atr_out_puts(&hc->out, "{\"resourceType\":\"Bundle\",\"type\":\"history\","
                      "\"link\":[{\"relation\":\"self\",\"url\":");
    if (rv == APR_SUCCESS) rv = atr_http_json_str(&hc->out, hc->self);
    if (rv == APR_SUCCESS) rv = atr_out_puts(&hc->out, "}],\"entry\":[");
    return rv;
}

static apr_status_t history_entry(void *baton, const atr_resource_t *res, apr_pool_t *ptemp)
{
    history_ctx_t *hc = baton;
    atr_out_t *out = &hc->out;
    const char *rel = apr_pstrcat(ptemp, hc->type, "/", hc->id, NULL);
    const char *method, *status;
    apr_status_t rv = APR_SUCCESS;

    if (hc->n == 0) rv = history_head(hc);
    else rv = atr_out_puts(out, ",");
    hc->n++;
    if (rv != APR_SUCCESS) return rv;
    /* versions are written by id (update-as-create), so they read as PUTs */
    method = res->deleted ? "DELETE" : "PUT";
    status = res->deleted ? "204 No Content" : res->version == 1 ? "201 Created" : "200 OK";
    rv = atr_out_puts(out, "{\"fullUrl\":");
    if (rv == APR_SUCCESS) rv = atr_http_json_str(out, apr_pstrcat(ptemp, hc->base, "/", rel, NULL));
    if (rv == APR_SUCCESS && !res->deleted) {
        rv = atr_out_puts(out, ",\"resource\":");
        if (rv == APR_SUCCESS) rv = atr_render_resource(out, hc->db, res, &hc->opts, ptemp);
    }
    if (rv == APR_SUCCESS) {
        rv = atr_out_puts(out, apr_psprintf(ptemp, ",\"request\":{\"method\":\"%s\",\"url\":", method));
    }
    if (rv == APR_SUCCESS) rv = atr_http_json_str(out, rel);
    if (rv == APR_SUCCESS) {
        rv = atr_out_puts(out, apr_psprintf(ptemp, "},\"response\":{\"status\":\"%s\",\"etag\":", status));
    }
    if (rv == APR_SUCCESS) rv = atr_http_json_str(out, etag_of(res, ptemp));
    if (rv == APR_SUCCESS && res->last_updated) {
        rv = atr_out_puts(out, ",\"lastModified\":");
        if (rv == APR_SUCCESS) rv = atr_http_json_str(out, res->last_updated);
    }
    if (rv == APR_SUCCESS) rv = atr_out_puts(out, "}}");
    return rv;
}

static int do_history(fhir_req_t *fr, atr_db_t *db, const char *type, const char *id)
{
    request_rec *r = fr->r;
    history_ctx_t hc;
    const char *since = atr_http_param_get(fr->params, "_since");
    const char *count = atr_http_param_get(fr->params, "_count");
    const char *store_since = NULL;
    int max = atr_conf_search_default_count(r);
    apr_status_t rv;

    memset(&hc, 0, sizeof(hc));
    if (since && *since) {
        apr_time_t t;
        if (atr_time_parse_instant(&t, since) != APR_SUCCESS) {
            return atr_http_oo(r, HTTP_BAD_REQUEST, "invalid", NULL,
                               "_since must be a FHIR instant (e.g. 2024-01-31T12:00:00Z), not '%s'", since);
        }
        store_since = atr_time_instant(t, r->pool);
    }
    if (count && *count) {
        char *end;
        apr_int64_t n = apr_strtoi64(count, &end, 10);
        if (*end || n < 0 || !apr_isdigit(*count)) {
            return atr_http_oo(r, HTTP_BAD_REQUEST, "invalid", NULL,
                               "_count must be a non-negative integer, not '%s'", count);
        }
        max = n > atr_conf_search_max_count(r) ? atr_conf_search_max_count(r) : (int)n;
    }
    {
        /* visibility before anything is written; not visible = not known */
        int visible = 0;
        if (!strcmp(type, "Group")) {
            const apr_array_header_t *groups;
            if (atr_authz_groups(&groups, fr->az, db, r) != APR_SUCCESS) return atr_http_store_unavailable(r);
            visible = atr_entitle_has(groups, id);
        }
        else if (atr_entitle_is_member_data(type)) {
            atr_resource_t *cur;
            rv = atr_store_get(&cur, db, type, id, 0, r->pool);
            if (rv != APR_SUCCESS && rv != APR_NOTFOUND) return atr_http_store_unavailable(r);
            if (rv == APR_SUCCESS
                && atr_authz_visible(&visible, fr->az, db, type, id, cur->body, r) != APR_SUCCESS) {
                return atr_http_store_unavailable(r);
            }
        }
        else if (atr_authz_visible(&visible, fr->az, db, type, id, NULL, r) != APR_SUCCESS) {
            return atr_http_store_unavailable(r);
        }
        if (!visible) {
            return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "%s/%s is not known", type, id);
        }
    }
    hc.r = r;
    hc.db = db;
    hc.base = fr->base;
    hc.type = type;
    hc.id = id;
    hc.self = apr_pstrcat(r->pool, fr->base, "/", type, "/", id, "/_history",
                          r->args ? "?" : "", r->args ? r->args : "", NULL);
    hc.opts.member_page_size = atr_conf_member_page_size(r->server);
    atr_http_out_init(&hc.out, &hc.ho, r);

    rv = atr_store_history(db, type, id, store_since, max, history_entry, &hc, r->pool);
    if (rv == APR_NOTFOUND && hc.n == 0) {
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "%s/%s is not known", type, id);
    }
    if (rv == APR_SUCCESS && hc.n == 0) rv = history_head(&hc);
    if (rv == APR_SUCCESS) rv = atr_out_puts(&hc.out, "]}");
    if (rv == APR_SUCCESS) rv = atr_http_out_finish(&hc.ho);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00312: history of %s/%s failed: %s",
                      type, id, atr_db_error(db, rv));
        if (hc.n == 0) {
            apr_brigade_cleanup(hc.ho.bb);
            return atr_http_store_unavailable(r);
        }
        atr_http_out_abort(&hc.ho);
    }
    return OK;
}

/* ---------------------------------------------------------------- Group search */

static const char *page_url(const char *base, const atr_search_t *s, int with_count, int offset,
                            apr_pool_t *p)
{
    const char *q = s->self_query;
    if (with_count) {
        q = apr_psprintf(p, "%s%s_count=%d", q, *q ? "&" : "", s->count);
    }
    if (offset > 0) {
        q = apr_psprintf(p, "%s%s_offset=%d", q, *q ? "&" : "", offset);
    }
    return apr_pstrcat(p, base, "/Group", *q ? "?" : "", q, NULL);
}

static apr_status_t write_link(atr_out_t *out, const char *rel, const char *url, int first)
{
    apr_status_t rv = atr_out_puts(out, first ? "{\"relation\":\"" : ",{\"relation\":\"");
    if (rv == APR_SUCCESS) rv = atr_out_puts(out, rel);
    if (rv == APR_SUCCESS) rv = atr_out_puts(out, "\",\"url\":");
    if (rv == APR_SUCCESS) rv = atr_http_json_str(out, url);
    if (rv == APR_SUCCESS) rv = atr_out_puts(out, "}");
    return rv;
}

static int do_search(fhir_req_t *fr, atr_db_t *db, const char *body)
{
    request_rec *r = fr->r;
    apr_array_header_t *params = fr->params, *ids;
    atr_search_t *s;
    atr_render_opts_t opts;
    atr_out_t out;
    atr_http_out_t ho;
    apr_pool_t *ptemp;
    const char *err;
    apr_status_t rv;
    int total, i, end, paging;

    if (body && *body) {
        apr_array_header_t *bparams;
        if (atr_query_parse(&bparams, body, &err, r->pool) != APR_SUCCESS) {
            return atr_http_oo(r, HTTP_BAD_REQUEST, "invalid", NULL, "request body: %s", err);
        }
        params = apr_array_append(r->pool, fr->params, bparams);
    }
    if (atr_search_parse(&s, params, atr_http_prefer_strict(r), atr_conf_search_max_count(r),
                         &err, r->pool) != APR_SUCCESS) {
        return atr_http_oo(r, HTTP_BAD_REQUEST, "invalid", NULL, "%s", err);
    }
    if (!s->count_given) s->count = atr_conf_search_default_count(r);
    if (atr_search_run(&ids, db, s, r->pool) != APR_SUCCESS) {
        return atr_http_store_unavailable(r);
    }
    {
        /* only entitled Groups exist for this client: total and paging count those alone */
        const apr_array_header_t *groups;
        if (atr_authz_groups(&groups, fr->az, db, r) != APR_SUCCESS) return atr_http_store_unavailable(r);
        ids = atr_entitle_filter(ids, groups, r->pool);
    }
    total = ids->nelts;
    paging = s->count_given || s->offset > 0 || s->offset + s->count < total;

    ap_set_content_type(r, ATR_FHIR_JSON);
    if (r->header_only) return OK;
    atr_http_out_init(&out, &ho, r);
    rv = atr_out_puts(&out, apr_psprintf(r->pool, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\","
                                         "\"total\":%d,\"link\":[", total));
    if (rv == APR_SUCCESS) rv = write_link(&out, "self", page_url(fr->base, s, paging, s->offset, r->pool), 1);
    if (s->summary != ATR_SUMMARY_COUNT) {
        if (rv == APR_SUCCESS && s->offset + s->count < total) {
            rv = write_link(&out, "next", page_url(fr->base, s, 1, s->offset + s->count, r->pool), 0);
        }
        if (rv == APR_SUCCESS && s->offset > 0) {
            int prev = s->offset > s->count ? s->offset - s->count : 0;
            rv = write_link(&out, "previous", page_url(fr->base, s, 1, prev, r->pool), 0);
        }
    }
    if (rv == APR_SUCCESS) rv = atr_out_puts(&out, "]");

    end = s->offset + s->count < total ? s->offset + s->count : total;
    if (s->summary != ATR_SUMMARY_COUNT && s->offset < end) {
        int n = 0;
        memset(&opts, 0, sizeof(opts));
        opts.summary = s->summary;
        opts.elements = s->elements;
        opts.member_page_size = atr_conf_member_page_size(r->server);
        apr_pool_create(&ptemp, r->pool);
        if (rv == APR_SUCCESS) rv = atr_out_puts(&out, ",\"entry\":[");
        for (i = s->offset; rv == APR_SUCCESS && i < end; i++) {
            const char *id = APR_ARRAY_IDX(ids, i, const char *);
            atr_resource_t *res;

            apr_pool_clear(ptemp);
            rv = atr_store_get(&res, db, "Group", id, 0, ptemp);
            if (rv == APR_NOTFOUND || (rv == APR_SUCCESS && res->deleted)) {
                /* gone between index and read: not a match any more */
                rv = APR_SUCCESS;
                continue;
            }
            if (rv == APR_SUCCESS) rv = atr_out_puts(&out, n++ ? ",{\"fullUrl\":" : "{\"fullUrl\":");
            if (rv == APR_SUCCESS) rv = atr_http_json_str(&out, apr_pstrcat(ptemp, fr->base, "/Group/", id, NULL));
            if (rv == APR_SUCCESS) rv = atr_out_puts(&out, ",\"resource\":");
            if (rv == APR_SUCCESS) rv = atr_render_resource(&out, db, res, &opts, ptemp);
            if (rv == APR_SUCCESS) rv = atr_out_puts(&out, ",\"search\":{\"mode\":\"match\"}}");
        }
        if (rv == APR_SUCCESS) rv = atr_out_puts(&out, "]");
        apr_pool_destroy(ptemp);
    }
    if (rv == APR_SUCCESS) rv = atr_out_puts(&out, "}");
    if (rv == APR_SUCCESS) rv = atr_http_out_finish(&ho);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00313: Group search failed: %s",
                      atr_db_error(db, rv));
        atr_http_out_abort(&ho);
    }
    return OK;
}

/* ---------------------------------------------------------------- routing */

static int wrong_method(request_rec *r, const char *allow)
{
    return atr_http_oo(r, HTTP_METHOD_NOT_ALLOWED, "not-supported", allow,
                       "method %s is not allowed here (allowed: %s)", r->method, allow);
}

static int is_get(request_rec *r)
{
    return r->method_number == M_GET;   /* HEAD is M_GET with header_only */
}

static int with_db(fhir_req_t *fr, atr_db_t **pdb)
{
    if (atr_mod_db(pdb, fr->r) != APR_SUCCESS) {
        atr_http_store_unavailable(fr->r);
        return 0;
    }
    return 1;
}

static int route(fhir_req_t *fr, const char *path)
{
    request_rec *r = fr->r;
    apr_array_header_t *seg = apr_array_make(r->pool, 4, sizeof(const char *));
    char *copy = apr_pstrdup(r->pool, path), *tok, *last;
    const char *type, *id;
    atr_db_t *db;
    int n;

    for (tok = apr_strtok(copy, "/", &last); tok; tok = apr_strtok(NULL, "/", &last)) {
        APR_ARRAY_PUSH(seg, const char *) = tok;
    }
    n = seg->nelts;
    if (n == 0) {
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "no resource type in the URL");
    }
    type = APR_ARRAY_IDX(seg, 0, const char *);
    if (n == 1 && !strcmp(type, "metadata")) {
        if (!is_get(r)) return wrong_method(r, ALLOW_READ);
        return do_metadata(fr);
    }
    /* everything below needs an authenticated, enabled client */
    if (atr_authz_request(r, &fr->az) != OK) return OK;
    /* the bulk export's status URLs and files (docs/bulk-export.md) */
    if (!strcmp(type, ATR_BULK_STATUS_SEG)) {
        if (n != 2) return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "no such endpoint");
        return atr_bulk_status(r, fr->base, fr->az, APR_ARRAY_IDX(seg, 1, const char *));
    }
    if (!strcmp(type, ATR_BULK_FILES_SEG)) {
        if (n != 3) return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "no such endpoint");
        return atr_bulk_file(r, fr->az, APR_ARRAY_IDX(seg, 1, const char *),
                             APR_ARRAY_IDX(seg, 2, const char *));
    }
    /* Group creation, reconciliation operations, Subscriptions (docs/reconciliation.md) */
    if (atr_recon_route(r, fr->base, fr->az, seg) != DECLINED) return OK;
    if (!atr_fhir_is_type(type)) {
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-supported", NULL,
                           "resource type '%s' is not served here", type);
    }
    if (n == 1) {
        if (!is_get(r)) return wrong_method(r, ALLOW_READ);
        if (strcmp(type, "Group")) {
            /* ATR needs search on Group only (CS-RES-06): the other types come through
             * export. We answer 400 not-supported rather than 404, as the type exists. */
            return atr_http_oo(r, HTTP_BAD_REQUEST, "not-supported", NULL,
                               "search is not supported on %s", type);
        }
        if (atr_authz_need(r, fr->az, type, ATR_PERM_S) != OK) return OK;
        if (!with_db(fr, &db)) return OK;
        return do_search(fr, db, NULL);
    }
    id = APR_ARRAY_IDX(seg, 1, const char *);
    if (n == 2 && !strcmp(type, "Group") && !strcmp(id, "_search")) {
        const char *body;
        int rc;
        if (r->method_number != M_POST) return wrong_method(r, "POST");
        if (atr_authz_need(r, fr->az, type, ATR_PERM_S) != OK) return OK;
        if ((rc = atr_http_read_form(r, &body)) != OK) {
            return atr_http_oo(r, rc, rc == HTTP_UNSUPPORTED_MEDIA_TYPE ? "not-supported"
                               : rc == HTTP_REQUEST_ENTITY_TOO_LARGE ? "too-costly" : "invalid", NULL,
                               rc == HTTP_UNSUPPORTED_MEDIA_TYPE
                               ? "POST _search takes an application/x-www-form-urlencoded body"
                               : rc == HTTP_REQUEST_ENTITY_TOO_LARGE
                               ? "the search body is larger than 64 KiB" : "the search body could not be read");
        }
        if (!with_db(fr, &db)) return OK;
        return do_search(fr, db, body);
    }
    if (n == 3 && !strcmp(type, "Group") && atr_fhir_is_id(id)
        && (!strcmp(APR_ARRAY_IDX(seg, 2, const char *), "$davinci-data-export")
            || !strcmp(APR_ARRAY_IDX(seg, 2, const char *), "$export"))) {
        return atr_bulk_kickoff(r, fr->base, fr->params, fr->az, id, APR_ARRAY_IDX(seg, 2, const char *),
                                path);
    }
    if (id[0] == '$' || (n >= 3 && APR_ARRAY_IDX(seg, 2, const char *)[0] == '$')) {
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-supported", NULL, "operation is not supported");
    }
    if (!atr_fhir_is_id(id)) {
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "'%s' is not a valid id", id);
    }
    if (n == 2) {
        if (!is_get(r)) return wrong_method(r, ALLOW_READ);
        if (atr_authz_need(r, fr->az, type, ATR_PERM_R) != OK) return OK;
        if (!with_db(fr, &db)) return OK;
        return do_read(fr, db, type, id, 0);
    }
    if (strcmp(APR_ARRAY_IDX(seg, 2, const char *), "_history") || n > 4) {
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "no such endpoint");
    }
    if (!is_get(r)) return wrong_method(r, ALLOW_READ);
    /* vread and instance history are "r" (SMART v2) */
    if (atr_authz_need(r, fr->az, type, ATR_PERM_R) != OK) return OK;
    if (n == 3) {
        if (!with_db(fr, &db)) return OK;
        return do_history(fr, db, type, id);
    }
    {
        const char *vid = APR_ARRAY_IDX(seg, 3, const char *), *c;
        int version;
        for (c = vid; *c; c++) {
            if (!apr_isdigit(*c)) break;
        }
        if (*c || c - vid > 9 || (version = atoi(vid)) < 1) {
            return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "'%s' is not a version id", vid);
        }
        if (!with_db(fr, &db)) return OK;
        return do_read(fr, db, type, id, version);
    }
}

int atr_fhir_handler(request_rec *r)
{
    fhir_req_t fr;
    const char *base_path, *err, *path;
    apr_size_t blen;

    if (!r->handler || strcmp(r->handler, ATR_FHIR_HANDLER)) return DECLINED;

    fr.r = r;
    fr.base = atr_conf_base_url(r);
    fr.az = NULL;
    base_path = atr_conf_base_path(r);
    blen = strlen(base_path);
    if (strncmp(r->uri, base_path, blen) || (r->uri[blen] != '/' && r->uri[blen] != '\0')) {
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "no such endpoint");
    }
    path = r->uri + blen;
    /* the authorization server (SMART discovery, token, authorize) answers OAuth JSON, not
     * FHIR: it takes its URLs before FHIR content negotiation. It has answered when it
     * does not decline (the status it returns was sent). */
    if (atr_auth_handler(r, path) != DECLINED) return OK;
    if (atr_query_parse(&fr.params, r->args, &err, r->pool) != APR_SUCCESS) {
        return atr_http_oo(r, HTTP_BAD_REQUEST, "invalid", NULL, "%s", err);
    }
    /* bulk endpoints negotiate for themselves (kick-off headers per D16, NDJSON files) */
    if (!atr_bulk_is_path(path) && !atr_http_acceptable(r, atr_http_param_get(fr.params, "_format"))) {
        return atr_http_oo(r, HTTP_NOT_ACCEPTABLE, "not-supported", NULL,
                           "only FHIR JSON (application/fhir+json) is served");
    }
    return route(&fr, path);
}
