/* Kick-off parameters of a Group bulk export ($davinci-data-export, $export): from the query
 * string (GET) or a FHIR Parameters body (POST), checked as REQUIREMENTS.md §5/§6 and the
 * decisions D11..D16 say. Portable core (no httpd): the glue hands it the parsed query and
 * the body; what is wrong comes back as an HTTP status, an IssueType code and a sentence.
 * Under `Prefer: handling=lenient` a parameter we do not support is ignored and noted in
 * ->issues instead; the export worker writes those into the manifest's error file. */
#ifndef ATR_BULK_PARAMS_H
#define ATR_BULK_PARAMS_H
#include <apr_pools.h>
#include <apr_tables.h>
#include "atr_export.h"

#define ATR_EXPORT_TYPE_ATR "hl7.fhir.us.davinci-atr"

typedef enum {
    ATR_BULK_OP_DAVINCI,   /* $davinci-data-export (ATR 2.x): the minimum-types rule applies (EXP-04) */
    ATR_BULK_OP_EXPORT     /* $export (ATR STU1, plain Bulk Data clients) */
} atr_bulk_op_e;

typedef struct atr_bulk_params_t {
    apr_array_header_t *types;     /* const char *: the types to export, in atr_fhir_types order,
                                    * no duplicates; all 8 when _type was absent */
    const char *since, *until;     /* FHIR instants as given, or NULL */
    apr_array_header_t *patients;  /* const char * "Patient/<id>" (POST only); NULL when absent */
    apr_array_header_t *issues;    /* atr_export_issue_t: what lenient handling ignored or added
                                    * (never NULL; usually empty) */
} atr_bulk_params_t;

typedef struct atr_bulk_error_t {
    int status;            /* HTTP status: 400 (bad or unsupported parameter), 413, 415 */
    const char *code;      /* IssueType: invalid, not-supported, required, too-costly */
    const char *text;      /* what is wrong, for people (names the parameter) */
} atr_bulk_error_t;

/* Parse a kick-off.
 *   query:   atr_param_t entries of the query string (atr_query_parse); `_format` is
 *            ignored here (content negotiation handled it).
 *   body:    the POST body (NUL-terminated) or NULL for GET; it must be a FHIR Parameters
 *            resource (JSON). Every parameter of the body counts as if it were in the query;
 *            a parameter in both places is an error (400).
 *   lenient: 1 under `Prefer: handling=lenient`.
 * Rules: _type and its alias resourceTypes (repeated = comma list; case-sensitive names;
 * unknown type → 400 not-supported or, lenient, ignored + issue); for ATR_BULK_OP_DAVINCI a
 * _type without Group, Patient and Coverage → 400 (lenient: added + issue); _since/_until
 * FHIR instants (else 400 invalid; _until not before _since); _outputFormat one of
 * application/fhir+ndjson, application/ndjson, ndjson; exportType absent or
 * hl7.fhir.us.davinci-atr (D11, else 400 not-supported); patient only in a POST body
 * (valueReference.reference "Patient/<id>"; a GET patient → 400, lenient: ignored + issue;
 * a malformed reference → 400 invalid); _typeFilter, _elements, includeAssociatedData and
 * any other parameter → 400 not-supported (lenient: ignored + issue). A body that is not
 * JSON or not a Parameters resource → 400 invalid.
 * Details the rules above leave open, as implemented:
 *  - _since, _until, _outputFormat, exportType given twice → 400 invalid; an empty _type, or
 *    an empty item in its comma list → 400 invalid; a parameter in the query and in the body
 *    (aliases count as the same) → 400 invalid.
 *  - _outputFormat and exportType are refused even under lenient (files in another format,
 *    or other content, than asked would mislead); malformed values always are.
 *  - EXP-04 refusal: code "required". Lenient: only unknown types ignored and none left →
 *    $export refuses (400 not-supported), $davinci-data-export gets its three minimum types.
 *  - Issues: severity "warning", code "not-supported" (ignored) or "informational" (minimum
 *    types added); the text names the parameter; a repeated one is noted once.
 *  - Query values only: a value that fails as given is tried with its spaces read as '+'
 *    (an unescaped '+' in `+01:00` or `fhir+ndjson` arrives as a space).
 *  - Body entries: FHIR's one-of value[x]/resource/part; our string parameters take any
 *    primitive value[x] whose JSON is a string, patient only valueReference.reference
 *    "Patient/<id>"; an unknown element → 400 invalid; a modifierExtension → 400 not-supported.
 * Returns APR_SUCCESS with *pparams, or APR_EINVAL with *perr filled (status 400 here: 413
 * and 415 are the glue's). */
apr_status_t atr_bulk_params_parse(atr_bulk_params_t **pparams, atr_bulk_error_t *perr,
                                   atr_bulk_op_e op, const apr_array_header_t *query,
                                   const char *body, int lenient, apr_pool_t *p);

/* The parsed parameters as compact JSON (kept in the job row) and back:
 *   {"types":[...],"since":"...","until":"...","patients":[...],"issues":[{"severity":"...",
 *    "code":"...","text":"..."}]}   (since, until, patients only when set; patients never []).
 * from_json returns APR_EINVAL on text it did not write: anything whose re-serialization is
 * not byte-identical, or that breaks the parse invariants (types known, ordered, unique and
 * not empty; instants; _until not before _since; Patient/<id> references, unique). */
const char *atr_bulk_params_to_json(const atr_bulk_params_t *params, apr_pool_t *p);
apr_status_t atr_bulk_params_from_json(atr_bulk_params_t **pparams, const char *json, apr_pool_t *p);

#endif
