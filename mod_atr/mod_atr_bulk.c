/* The Bulk Data endpoints of a Group export (docs/bulk-export.md). Kick-off reads like the
 * protocol: method → headers (D16) → parameters → scopes on every exported type (SCOPE-04)
 * → entitlement to the Group → a job row → 202. The status URL and the files answer from
 * the job row alone, so any process of any node can answer them; a job of another client
 * answers exactly like a missing one (D18: 404). Files go out as file buckets: httpd's core
 * output sends them with sendfile (EnableSendfile On) or mmap, its byterange filter answers
 * Range, and mod_deflate (when loaded) gzips them for clients that ask. */
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_buckets.h>
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "atr_bulk_params.h"
#include "atr_entitle.h"
#include "atr_fhir.h"
#include "atr_job.h"
#include "atr_json.h"
#include "atr_scope.h"
#include "atr_search.h"
#include "atr_store.h"
#include "atr_time.h"
#include "mod_atr.h"
#include "mod_atr_bulk.h"
#include "mod_atr_config.h"
#include "mod_atr_http.h"

#define KICKOFF_BODY_MAX (1024 * 1024)
#define NDJSON "application/fhir+ndjson"

/* A success answer with an informational OperationOutcome (202 of kick-off and DELETE). */
static int info_answer(request_rec *r, int status, const char *text)
{
    json_t *oo = atr_json_pool_own(atr_oo_make("information", "informational", text), r->pool);
    r->status = status;
    ap_set_content_type(r, ATR_FHIR_JSON);
    if (!r->header_only) ap_rputs(atr_json_dump(oo, r->pool), r);
    return OK;
}

int atr_bulk_is_path(const char *path)
{
    const char *op;
    if (!strncmp(path, "/" ATR_BULK_STATUS_SEG "/", sizeof(ATR_BULK_STATUS_SEG) + 1)
        || !strncmp(path, "/" ATR_BULK_FILES_SEG "/", sizeof(ATR_BULK_FILES_SEG) + 1)) {
        return 1;
    }
    if (strncmp(path, "/Group/", 7)) return 0;
    op = strchr(path + 7, '/');
    return op && (!strcmp(op, "/$davinci-data-export") || !strcmp(op, "/$export"));
}

/* Read scope on every type (SCOPE-04, BULK-ST-07); answers 403 when one is missing. */
static int need_read_all(request_rec *r, atr_authz_t *az, const apr_array_header_t *types)
{
    int i;
    for (i = 0; i < types->nelts; i++) {
        int rc = atr_authz_need(r, az, APR_ARRAY_IDX(types, i, const char *), ATR_PERM_R);
        if (rc != OK) return rc;
    }
    return OK;
}

/* ---------------------------------------------------------------- kick-off */

int atr_bulk_kickoff(request_rec *r, const char *base, const apr_array_header_t *query,
                     atr_authz_t *az, const char *group_id, const char *op_name, const char *path)
{
    static const char *const json_types[] = { "application/fhir+json", "application/json", NULL };
    atr_bulk_op_e op = !strcmp(op_name, "$export") ? ATR_BULK_OP_EXPORT : ATR_BULK_OP_DAVINCI;
    const char *prefer = apr_table_get(r->headers_in, "Prefer");
    const char *body = NULL, *job_id, *request;
    const apr_array_header_t *groups;
    atr_bulk_params_t *bp;
    atr_bulk_error_t berr;
    atr_resource_t *g;
    atr_db_t *db;
    apr_status_t rv;
    int rc;

    if ((r->method_number != M_GET && r->method_number != M_POST) || r->header_only) {
        return atr_http_oo(r, HTTP_METHOD_NOT_ALLOWED, "not-supported", "GET, POST",
                           "method %s is not allowed here (allowed: GET, POST)", r->method);
    }
    /* D16: absent headers mean the defaults; contrary ones are refused */
    if (prefer && !ap_strcasestr(prefer, "respond-async")) {
        return atr_http_oo(r, HTTP_BAD_REQUEST, "invalid", NULL, "%s is asynchronous: send "
                           "Prefer: respond-async (or no Prefer header)", op_name);
    }
    if (!atr_http_acceptable(r, atr_http_param_get(query, "_format"))) {
        return atr_http_oo(r, HTTP_BAD_REQUEST, "invalid", NULL, "%s answers with FHIR JSON: the "
                           "Accept header must allow application/fhir+json", op_name);
    }
    if (r->method_number == M_POST) {
        rc = atr_http_read_body(r, json_types, KICKOFF_BODY_MAX, &body);
        if (rc == HTTP_UNSUPPORTED_MEDIA_TYPE) {
            return atr_http_oo(r, rc, "not-supported", NULL, "a %s POST takes a Parameters resource "
                               "as application/fhir+json", op_name);
        }
        if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
            return atr_http_oo(r, rc, "too-costly", NULL, "the Parameters body is larger than 1 MiB");
        }
        if (rc != OK) return atr_http_oo(r, HTTP_BAD_REQUEST, "invalid", NULL, "the body could not be read");
    }
    memset(&berr, 0, sizeof(berr));
    if (atr_bulk_params_parse(&bp, &berr, op, query, body, atr_http_prefer_lenient(r), r->pool)
        != APR_SUCCESS) {
        return atr_http_oo(r, berr.status ? berr.status : HTTP_BAD_REQUEST,
                           berr.code ? berr.code : "invalid", NULL, "%s",
                           berr.text ? berr.text : "invalid kick-off parameters");
    }
    if (need_read_all(r, az, bp->types) != OK) return OK;

    if (atr_mod_db(&db, r) != APR_SUCCESS) return atr_http_store_unavailable(r);
    if (atr_authz_groups(&groups, az, db, r) != APR_SUCCESS) return atr_http_store_unavailable(r);
    rv = atr_entitle_has(groups, group_id) ? atr_store_get(&g, db, "Group", group_id, 0, r->pool)
                                           : APR_NOTFOUND;
    if (rv == APR_NOTFOUND) {
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "Group/%s is not known", group_id);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00778: kick-off: reading Group/%s failed: %s",
                      group_id, atr_db_error(db, rv));
        return atr_http_store_unavailable(r);
    }
    if (g->deleted) return atr_http_oo(r, HTTP_GONE, "deleted", NULL, "Group/%s was deleted", group_id);

    /* BULK-ST-05: the kick-off URL; for a POST without the body's parameters */
    request = apr_pstrcat(r->pool, base, path, r->args ? "?" : "", r->args ? r->args : "", NULL);
    rv = atr_job_create(&job_id, db, az->client_id, group_id, request,
                        atr_bulk_params_to_json(bp, r->pool), r->request_time, r->pool);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00779: kick-off: cannot queue the export of "
                      "Group/%s: %s", group_id, atr_db_error(db, rv));
        return atr_http_store_unavailable(r);
    }
    if (!job_id) {
        apr_table_setn(r->headers_out, "Retry-After",
                       apr_itoa(r->pool, atr_conf_export_poll_interval(r->server) > 0
                                ? atr_conf_export_poll_interval(r->server) * 5 : 10));
        return atr_http_oo(r, HTTP_TOO_MANY_REQUESTS, "throttled", NULL, "an export of Group/%s by "
                           "this client is already in progress; poll its status URL, or delete it "
                           "before starting another", group_id);
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "ATR00780: export %s of Group/%s queued for client %s",
                  job_id, group_id, az->client_id);
    apr_table_setn(r->headers_out, "Content-Location",
                   apr_pstrcat(r->pool, base, "/" ATR_BULK_STATUS_SEG "/", job_id, NULL));
    return info_answer(r, HTTP_ACCEPTED, apr_psprintf(r->pool, "export of Group/%s accepted; poll "
                                                      "the Content-Location URL for its status",
                                                      group_id));
}

/* ---------------------------------------------------------------- status, delete */

/* The client's job, or NULL when it must answer 404 (missing, another client's, deleted,
 * or expired). *prv: a store error. */
static atr_job_t *client_job(apr_status_t *prv, atr_db_t *db, atr_authz_t *az, const char *id,
                             request_rec *r)
{
    atr_job_t *job = NULL;
    apr_status_t rv;
    const char *c;

    *prv = APR_SUCCESS;
    for (c = id; *c; c++) {
        if (!apr_isxdigit(*c)) return NULL;
    }
    if (c - id != 32) return NULL;
    rv = atr_job_get(&job, db, id, r->pool);
    if (rv == APR_NOTFOUND) return NULL;
    if (rv != APR_SUCCESS) {
        *prv = rv;
        return NULL;
    }
    if (strcmp(job->client_id, az->client_id) || !strcmp(job->state, "deleted")) return NULL;
    if ((!strcmp(job->state, "done") || !strcmp(job->state, "failed"))
        && job->expires < apr_time_as_msec(apr_time_now())) {
        return NULL;
    }
    return job;
}

static int no_such_job(request_rec *r)
{
    return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "no such export (it may have been "
                       "deleted or have expired)");
}

/* The job's exported types, for the scope check of status and file requests. */
static const apr_array_header_t *job_types(const atr_job_t *job, apr_pool_t *p)
{
    atr_bulk_params_t *bp;
    if (atr_bulk_params_from_json(&bp, job->params, p) != APR_SUCCESS) return NULL;
    return bp->types;
}

/* Write the manifest (BULK-ST-05) from the job's file list. */
static int send_manifest(request_rec *r, const char *base, const atr_job_t *job)
{
    json_t *files, *manifest;
    const char *kinds[] = { "output", "error" };
    const char *prefix = apr_pstrcat(r->pool, base, "/" ATR_BULK_FILES_SEG "/", job->id, "/", NULL);
    const char *err = NULL;
    int k;

    if (atr_json_parse(&files, job->files ? job->files : "", job->files ? strlen(job->files) : 0,
                       &err, r->pool) != APR_SUCCESS || !json_is_object(files)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "ATR00781: export %s: unreadable file list", job->id);
        return atr_http_oo(r, HTTP_INTERNAL_SERVER_ERROR, "exception", NULL, "the export's file list "
                           "is damaged; start a new export");
    }
    manifest = atr_json_pool_own(json_object(), r->pool);
    json_object_set_new(manifest, "transactionTime", json_string(job->tx_time));
    json_object_set_new(manifest, "request", json_string(job->request));
    json_object_set_new(manifest, "requiresAccessToken", json_true());
    for (k = 0; k < 2; k++) {
        json_t *list = json_object_get(files, kinds[k]), *out = json_array(), *f;
        size_t i;
        json_array_foreach(list, i, f) {
            json_array_append_new(out, json_pack("{s:s,s:s,s:I}",
                                                 "type", atr_json_str(f, "type"),
                                                 "url", apr_pstrcat(r->pool, prefix, atr_json_str(f, "name"), NULL),
                                                 "count", json_integer_value(json_object_get(f, "count"))));
        }
        json_object_set_new(manifest, kinds[k], out);
    }
    r->status = HTTP_OK;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Expires", ap_ht_time(r->pool, apr_time_from_msec(job->expires),
                                                         "%a, %d %b %Y %H:%M:%S GMT", 0));
    if (!r->header_only) ap_rputs(atr_json_dump(manifest, r->pool), r);
    return OK;
}

static int status_get(request_rec *r, const char *base, atr_db_t *db, atr_job_t *job)
{
    int interval = atr_conf_export_poll_interval(r->server);
    const char *retry = apr_itoa(r->pool, interval > 0 ? interval : 1);

    if (!strcmp(job->state, "done")) return send_manifest(r, base, job);
    if (!strcmp(job->state, "failed")) {
        return atr_http_oo(r, HTTP_INTERNAL_SERVER_ERROR, job->error_code ? job->error_code : "exception",
                           NULL, "%s", job->error ? job->error : "the export failed");
    }
    {
        int allowed = 1;
        /* half the interval: a client honouring Retry-After is never refused for jitter */
        apr_status_t rv = atr_job_poll(&allowed, db, job->id, apr_time_now(),
                                       apr_time_from_msec((apr_int64_t)interval * 500), r->pool);
        if (rv != APR_SUCCESS) return atr_http_store_unavailable(r);
        apr_table_setn(r->headers_out, "Retry-After", retry);
        if (!allowed) {
            return atr_http_oo(r, HTTP_TOO_MANY_REQUESTS, "throttled", NULL, "polled too often: wait "
                               "%s s (Retry-After) between status requests", retry);
        }
    }
    apr_table_setn(r->headers_out, "X-Progress", !strcmp(job->state, "queued") ? "queued"
                   : apr_psprintf(r->pool, "%" APR_INT64_T_FMT " resources written", job->progress));
    return info_answer(r, HTTP_ACCEPTED, apr_psprintf(r->pool, "the export is %s", job->state));
}

static int status_delete(request_rec *r, atr_db_t *db, atr_authz_t *az, atr_job_t *job)
{
    int found = 0;
    apr_status_t rv = atr_job_delete(&found, db, job->id, az->client_id, apr_time_now(), r->pool);

    if (rv != APR_SUCCESS) return atr_http_store_unavailable(r);
    if (!found) return no_such_job(r);
    if (!strcmp(job->state, "done") || !strcmp(job->state, "failed")) {
        /* nobody writes them any more: remove the files now (a running job's worker removes
         * its own when its next heartbeat finds the job deleted) */
        rv = atr_job_rmtree(apr_pstrcat(r->pool, atr_conf_export_dir(r->server), "/", job->id, NULL),
                            r->pool);
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, "ATR00782: export %s deleted, but its files "
                          "could not all be removed now (the sweeper will retry)", job->id);
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "ATR00783: export %s deleted by client %s", job->id,
                  az->client_id);
    return info_answer(r, HTTP_ACCEPTED, "the export was deleted");
}

int atr_bulk_status(request_rec *r, const char *base, atr_authz_t *az, const char *job_id)
{
    const apr_array_header_t *types;
    atr_job_t *job;
    atr_db_t *db;
    apr_status_t rv;

    if (r->method_number != M_GET && r->method_number != M_DELETE) {
        return atr_http_oo(r, HTTP_METHOD_NOT_ALLOWED, "not-supported", "GET, HEAD, DELETE",
                           "method %s is not allowed here (allowed: GET, DELETE)", r->method);
    }
    if (atr_mod_db(&db, r) != APR_SUCCESS) return atr_http_store_unavailable(r);
    job = client_job(&rv, db, az, job_id, r);
    if (rv != APR_SUCCESS) return atr_http_store_unavailable(r);
    if (!job) return no_such_job(r);
    if ((types = job_types(job, r->pool)) != NULL && need_read_all(r, az, types) != OK) return OK;
    if (r->method_number == M_DELETE) return status_delete(r, db, az, job);
    return status_get(r, base, db, job);
}

/* ---------------------------------------------------------------- files */

/* 1 if name is one of the job's files. */
static int job_has_file(const atr_job_t *job, const char *name, apr_pool_t *p)
{
    const char *kinds[] = { "output", "error" };
    json_t *files, *f;
    const char *err;
    size_t i;
    int k;

    if (!job->files || atr_json_parse(&files, job->files, strlen(job->files), &err, p) != APR_SUCCESS) {
        return 0;
    }
    for (k = 0; k < 2; k++) {
        json_array_foreach(json_object_get(files, kinds[k]), i, f) {
            const char *n = atr_json_str(f, "name");
            if (n && !strcmp(n, name)) return 1;
        }
    }
    return 0;
}

static int wants_gzip(request_rec *r)
{
    const char *ae = apr_table_get(r->headers_in, "Accept-Encoding");
    return ae && ap_strcasestr(ae, "gzip") && !apr_table_get(r->headers_in, "Range")
           && ap_get_output_filter_handle("DEFLATE") != NULL;
}

int atr_bulk_file(request_rec *r, atr_authz_t *az, const char *job_id, const char *name)
{
    const apr_array_header_t *types;
    apr_bucket_brigade *bb;
    apr_file_t *fd;
    atr_job_t *job;
    atr_db_t *db;
    const char *path;
    apr_status_t rv;
    int rc;

    if (r->method_number != M_GET) {
        return atr_http_oo(r, HTTP_METHOD_NOT_ALLOWED, "not-supported", "GET, HEAD",
                           "method %s is not allowed here (allowed: GET, HEAD)", r->method);
    }
    if (atr_mod_db(&db, r) != APR_SUCCESS) return atr_http_store_unavailable(r);
    job = client_job(&rv, db, az, job_id, r);
    if (rv != APR_SUCCESS) return atr_http_store_unavailable(r);
    if (!job || strcmp(job->state, "done") || !job->outdir || !job_has_file(job, name, r->pool)) {
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "no such export file (the export may "
                           "have been deleted or have expired)");
    }
    if ((types = job_types(job, r->pool)) != NULL && need_read_all(r, az, types) != OK) return OK;

    path = apr_pstrcat(r->pool, atr_conf_export_dir(r->server), "/", job->outdir, "/", name, NULL);
    rv = apr_file_open(&fd, path, APR_FOPEN_READ | APR_FOPEN_BINARY | APR_FOPEN_SENDFILE_ENABLED
                       | APR_FOPEN_LARGEFILE, 0, r->pool);
    if (rv == APR_SUCCESS) rv = apr_file_info_get(&r->finfo, APR_FINFO_NORM, fd);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "ATR00784: export %s: cannot open %s", job->id, path);
        return atr_http_oo(r, HTTP_NOT_FOUND, "not-found", NULL, "the export file is no longer available");
    }
    /* the file's own validators: ETag from inode, size and mtime, as httpd's default handler */
    r->filename = apr_pstrdup(r->pool, path);
    ap_update_mtime(r, r->finfo.mtime);
    ap_set_last_modified(r);
    ap_set_etag(r);
    ap_set_accept_ranges(r);
    ap_set_content_type(r, NDJSON);
    if ((rc = ap_meets_conditions(r)) != OK) {
        apr_file_close(fd);
        r->status = rc;
        return OK;
    }
    if (ap_get_output_filter_handle("DEFLATE")) {
        /* the answer differs by Accept-Encoding, whichever this one gets */
        apr_table_mergen(r->headers_out, "Vary", "Accept-Encoding");
    }
    if (wants_gzip(r)) {
        ap_add_output_filter("DEFLATE", NULL, r, r->connection);
    }
    else {
        ap_set_content_length(r, r->finfo.size);
    }
    if (r->header_only) return OK;
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_brigade_insert_file(bb, fd, 0, r->finfo.size, r->pool);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(r->connection->bucket_alloc));
    rv = ap_pass_brigade(r->output_filters, bb);
    if (rv != APR_SUCCESS) {
        /* most often the client went away mid-download */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, "ATR00785: export %s: sending %s stopped", job->id,
                      name);
    }
    return OK;
}
