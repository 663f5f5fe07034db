/* HTTP plumbing for the FHIR handler: content negotiation, OperationOutcome errors, a
 * streaming atr_out_t onto the response, form bodies. */
#ifndef MOD_ATR_HTTP_H
#define MOD_ATR_HTTP_H
#include "httpd.h"
#include "atr_out.h"
#include "atr_search.h"

#define ATR_FHIR_JSON "application/fhir+json; charset=utf-8"
#define ATR_FORM_MAX (64 * 1024)

/* 1 if the client accepts FHIR JSON: _format (json, application/json,
 * application/fhir+json) wins over Accept; Accept may be absent or allow
 * application/fhir+json, application/json, any application subtype, or any type. */
int atr_http_acceptable(request_rec *r, const char *format);

/* Answer status with an OperationOutcome of one issue; returns OK for the handler to return
 * (the status is in r->status). allow: the Allow header for 405, else NULL. */
int atr_http_oo(request_rec *r, int status, const char *code, const char *allow,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* 503 with a transient OperationOutcome: the store could not be opened or failed. Returns OK
 * like atr_http_oo. */
int atr_http_store_unavailable(request_rec *r);

/* The value of the last parameter called name (exact, modifier included) in params (of
 * atr_param_t; may be NULL), or NULL when there is none. */
const char *atr_http_param_get(const apr_array_header_t *params, const char *name);

/* A sink that streams onto the response through a brigade (flushed down the filter chain
 * in buffer-sized pieces, so memory stays constant whatever the size). */
typedef struct atr_http_out_t {
    request_rec *r;
    apr_bucket_brigade *bb;
    int started;      /* any byte written */
} atr_http_out_t;
void atr_http_out_init(atr_out_t *out, atr_http_out_t *ho, request_rec *r);
/* Pass what is buffered on. */
apr_status_t atr_http_out_finish(atr_http_out_t *ho);
/* A failure after bytes went out: the status line is gone, so make the response visibly
 * incomplete (no last chunk, connection closed) instead of a truncated "success". */
void atr_http_out_abort(atr_http_out_t *ho);

/* Write s as a JSON string literal (quoted, escaped). */
apr_status_t atr_http_json_str(atr_out_t *out, const char *s);

/* Read a body of at most max bytes whose Content-Type is one of types (NULL-terminated media
 * types, compared without parameters) into *pbody (NUL-terminated; NULL when the request has
 * no body at all). Returns OK, or an HTTP status (415 other type, 413 too large, 400) for the
 * caller to answer with. */
int atr_http_read_body(request_rec *r, const char *const *types, apr_size_t max, const char **pbody);

/* Read an application/x-www-form-urlencoded body of at most ATR_FORM_MAX bytes into *pbody.
 * Returns OK, or an HTTP status (413, 415, 400) for the caller to answer with. */
int atr_http_read_form(request_rec *r, const char **pbody);

/* 1 if the request says Prefer: handling=strict. */
int atr_http_prefer_strict(request_rec *r);
/* 1 if the request says Prefer: handling=lenient. */
int atr_http_prefer_lenient(request_rec *r);

#endif
