/* jansson helpers: pool-owned values, parsing with positioned errors, OperationOutcome. */
#ifndef ATR_JSON_H
#define ATR_JSON_H
#include <apr_pools.h>
#include <jansson.h>

/* Releases j (one reference) when pool p is cleared; returns j. */
json_t *atr_json_pool_own(json_t *j, apr_pool_t *p);

/* Parse one JSON value from buf[0..len). On failure *perr says what and where
 * ("line 1 column 7: unexpected token"), allocated from p. The result is pool-owned. */
apr_status_t atr_json_parse(json_t **pjson, const char *buf, apr_size_t len,
                            const char **perr, apr_pool_t *p);

/* Compact dump (insertion order) into p. */
const char *atr_json_dump(const json_t *j, apr_pool_t *p);

/* Convenience getters: NULL / default when absent or of another type. */
const char *atr_json_str(const json_t *obj, const char *key);
/* Walk a path of object keys: atr_json_path_str(o, "meta", "versionId", NULL). */
const char *atr_json_path_str(const json_t *obj, ...);
/* The first element of obj's "extension" array whose "url" is url, or NULL (also when obj
 * is NULL or not an object, or "extension" is absent or not an array). Borrowed reference. */
json_t *atr_json_ext_find(const json_t *obj, const char *url);

/* OperationOutcome with one issue. severity: fatal|error|warning|information;
 * code: a FHIR IssueType (invalid, not-found, not-supported, login, forbidden, ...). */
json_t *atr_oo_make(const char *severity, const char *code, const char *diagnostics);
/* Append another issue to an OperationOutcome. */
void atr_oo_add(json_t *oo, const char *severity, const char *code, const char *diagnostics);

#endif
