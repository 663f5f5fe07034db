/* HTTP plumbing for the FHIR handler. */
#include <string.h>
#include <apr_strings.h>
#include <apr_buckets.h>
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "atr_json.h"
#include "mod_atr.h"
#include "mod_atr_http.h"

int atr_http_store_unavailable(request_rec *r)
{
    return atr_http_oo(r, HTTP_SERVICE_UNAVAILABLE, "transient", NULL,
                       "the store is not available; try again later");
}

const char *atr_http_param_get(const apr_array_header_t *params, const char *name)
{
    const char *v = NULL;
    int i;

    /* the last one wins, as the handlers always read repeated parameters */
    for (i = 0; params && i < params->nelts; i++) {
        const atr_param_t *pa = &APR_ARRAY_IDX(params, i, atr_param_t);
        if (!strcmp(pa->name, name)) v = pa->value;
    }
    return v;
}

static int json_media(const char *m, apr_size_t n)
{
    static const char *const ok[] = {
        "application/fhir+json", "application/json", "application/json+fhir", "application/*",
        "*/*", "json", NULL
    };
    int i;
    for (i = 0; ok[i]; i++) {
        if (strlen(ok[i]) == n && !strncasecmp(ok[i], m, n)) return 1;
    }
    return 0;
}

/* q=0 means "not acceptable" (RFC 9110 12.4.2). */
static int q_zero(const char *params)
{
    const char *q = ap_strcasestr(params, "q=");
    if (!q) return 0;
    q += 2;
    while (*q == '0' || *q == '.') q++;
    return *q == '\0' || *q == ';' || *q == ',' || *q == ' ';
}

int atr_http_acceptable(request_rec *r, const char *format)
{
    const char *accept, *s;

    if (format && *format) {
        apr_size_t n = strcspn(format, ";");
        while (n > 0 && format[n - 1] == ' ') n--;
        return json_media(format, n);
    }
    accept = apr_table_get(r->headers_in, "Accept");
    if (!accept || !*accept) return 1;
    for (s = accept; *s; ) {
        apr_size_t len = strcspn(s, ","), n;
        const char *m = s, *params;
        while (*m == ' ' || *m == '\t') m++;
        n = strcspn(m, ";, \t");
        params = apr_pstrmemdup(r->pool, m + n, len - (apr_size_t)(m - s) - n);
        if (json_media(m, n) && strncasecmp(m, "json", 4) && !q_zero(params)) return 1;
        s += len;
        if (*s == ',') s++;
    }
    return 0;
}

int atr_http_oo(request_rec *r, int status, const char *code, const char *allow,
                const char *fmt, ...)
{
    va_list ap;
    const char *msg;
    json_t *oo;

    va_start(ap, fmt);
    msg = apr_pvsprintf(r->pool, fmt, ap);
    va_end(ap);
    oo = atr_json_pool_own(atr_oo_make(status >= 500 ? "fatal" : "error", code, msg), r->pool);
    r->status = status;
    if (allow) apr_table_setn(r->headers_out, "Allow", allow);
    apr_table_unset(r->headers_out, "ETag");
    apr_table_unset(r->headers_out, "Last-Modified");
    ap_set_content_type(r, ATR_FHIR_JSON);
    if (!r->header_only) {
        const char *body = atr_json_dump(oo, r->pool);
        ap_rputs(body, r);
    }
    return OK;
}

static apr_status_t http_write(void *ctx, const char *data, apr_size_t len)
{
    atr_http_out_t *ho = ctx;
    ho->started = 1;
    if (ho->r->header_only) return APR_SUCCESS;
    /* apr_brigade_write buffers small writes and hands full buffers to ap_filter_flush */
    return apr_brigade_write(ho->bb, ap_filter_flush, ho->r->output_filters, data, len);
}

void atr_http_out_init(atr_out_t *out, atr_http_out_t *ho, request_rec *r)
{
    ho->r = r;
    ho->bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    ho->started = 0;
    out->write = http_write;
    out->ctx = ho;
}

apr_status_t atr_http_out_finish(atr_http_out_t *ho)
{
    apr_status_t rv = APR_SUCCESS;
    if (!APR_BRIGADE_EMPTY(ho->bb)) {
        rv = ap_pass_brigade(ho->r->output_filters, ho->bb);
        apr_brigade_cleanup(ho->bb);
    }
    return rv;
}

void atr_http_out_abort(atr_http_out_t *ho)
{
    request_rec *r = ho->r;
    apr_bucket *e;

    apr_brigade_cleanup(ho->bb);
    r->connection->keepalive = AP_CONN_CLOSE;
    /* the chunk filter leaves out the last-chunk after a 502 error bucket (as mod_proxy
     * does for a broken backend), so the client sees the body is incomplete */
    e = ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, r->pool, r->connection->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(ho->bb, e);
    APR_BRIGADE_INSERT_TAIL(ho->bb, apr_bucket_eos_create(r->connection->bucket_alloc));
    ap_pass_brigade(r->output_filters, ho->bb);
    apr_brigade_cleanup(ho->bb);
}

apr_status_t atr_http_json_str(atr_out_t *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;
    apr_status_t rv;

    if ((rv = atr_out_write(out, "\"", 1)) != APR_SUCCESS) return rv;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[7];
        apr_size_t n = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\'; esc[1] = (char)c; n = 2;
        }
        else if (c < 0x20) {
            esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[c >> 4]; esc[5] = hex[c & 15]; n = 6;
        }
        if (n) {
            if ((rv = atr_out_write(out, run, (apr_size_t)(s - run))) != APR_SUCCESS) return rv;
            if ((rv = atr_out_write(out, esc, n)) != APR_SUCCESS) return rv;
            run = s + 1;
        }
    }
    if ((rv = atr_out_write(out, run, (apr_size_t)(s - run))) != APR_SUCCESS) return rv;
    return atr_out_write(out, "\"", 1);
}

/* 1 if the Content-Type's media type is one of types (NULL-terminated). */
static int media_type_is(const char *ct, const char *const *types)
{
    for (; *types; types++) {
        apr_size_t n = strlen(*types);
        if (!strncasecmp(ct, *types, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ')) return 1;
    }
    return 0;
}

int atr_http_read_body(request_rec *r, const char *const *types, apr_size_t max, const char **pbody)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    char *buf;
    apr_size_t len = 0;
    long n;
    int rc;

    *pbody = NULL;
    if (ct && media_type_is(ct, types)) {
        /* ok */
    }
    else if (!ct && (!cl || !strcmp(cl, "0")) && !apr_table_get(r->headers_in, "Transfer-Encoding")) {
        return OK;   /* no body at all */
    }
    else {
        return HTTP_UNSUPPORTED_MEDIA_TYPE;
    }
    if (cl) {
        char *end;
        apr_off_t v;
        if (apr_strtoff(&v, cl, &end, 10) != APR_SUCCESS || *end || v < 0) return HTTP_BAD_REQUEST;
        if ((apr_size_t)v > max) {
            r->connection->keepalive = AP_CONN_CLOSE;
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) return rc;
    if (!ap_should_client_block(r)) {
        *pbody = "";
        return OK;
    }
    buf = apr_palloc(r->pool, max + 1);
    while ((n = ap_get_client_block(r, buf + len, max + 1 - len)) > 0) {
        len += (apr_size_t)n;
        if (len > max) {
            /* drain nothing more: the connection will be closed after the error */
            r->connection->keepalive = AP_CONN_CLOSE;
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    if (n < 0) return HTTP_BAD_REQUEST;
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) return HTTP_BAD_REQUEST;
    *pbody = buf;
    return OK;
}

int atr_http_read_form(request_rec *r, const char **pbody)
{
    static const char *const form[] = { "application/x-www-form-urlencoded", NULL };
    int rc = atr_http_read_body(r, form, ATR_FORM_MAX, pbody);
    if (!*pbody) *pbody = "";
    return rc;
}

int atr_http_prefer_strict(request_rec *r)
{
    const char *prefer = apr_table_get(r->headers_in, "Prefer");
    return prefer && ap_strcasestr(prefer, "handling=strict") != NULL;
}

int atr_http_prefer_lenient(request_rec *r)
{
    const char *prefer = apr_table_get(r->headers_in, "Prefer");
    return prefer && ap_strcasestr(prefer, "handling=lenient") != NULL;
}
